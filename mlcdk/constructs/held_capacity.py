"""Capacity you already hold (CapacityOptions): the rules, the launch template settings and the block's events.

One home for TrainingCluster (both engines) and InferenceFleet. Facts and sources: mlcdk/presets/data/capacity.json.

- An ODCR or group target: ``CapacityReservationSpecification`` with the target and the
  ``capacity-reservations-only`` preference (the only preference EC2 accepts beside a target), or ``open``
  with no target.
- A Capacity Block: the same target plus ``InstanceMarketOptions.MarketType = capacity-block``; no placement
  group (EC2 places a block's instances close together), and the block's AZ.
- EC2 terminates a block's instances from 30 minutes before its end and sends an expiration warning 40 minutes
  before it: a rule forwards the warning to the alarm topic, and with ``block_end`` on engine="nodes" a
  scheduled action scales the group to zero early enough for the checkpoint lifecycle hook.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

import aws_cdk as cdk
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_sns as sns
from constructs import Construct

from mlcdk.constructs import security
from mlcdk.constructs.options import CapacityOptions, PurchaseOptions
from mlcdk.constructs.validation import check, concrete
from mlcdk.constructs.warning_registry import warn
from mlcdk.errors import shown
from mlcdk.presets import capacity_blocks
from mlcdk.presets import workloads
from mlcdk.presets.catalog import InstanceSpec
from mlcdk.presets.counts import MAX_CAPACITY
from mlcdk.presets.identifiers import arn_problem, reservation_id_problem


def parse_block_end(value: str | None) -> dt.datetime | None:
    """``capacity.block_end`` as an aware UTC datetime (ConfigurationError for anything else)."""
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        parsed = None
    check([(parsed is None or parsed.tzinfo is None,
            f"capacity.block_end ({value!r}) must be an ISO 8601 date and time with a UTC offset, e.g. "
            "'2026-12-08T11:30:00+00:00' (the block's end as EC2 shows it)")])
    return parsed.astimezone(dt.timezone.utc)


def validate(capacity: CapacityOptions | None, *, spec: InstanceSpec, purchase: PurchaseOptions, region: str | None,
             az_id: str | None, placement_group: bool | None, engine: str | None = None,
             account: str | None = None) -> None:
    """Every rule on CapacityOptions and between it and the other options, before any resource exists; with
    ``engine``, also whether that engine can launch into the capacity (data/capacity.json "engines"). A group ARN
    must be in the stack's partition and region (and account, when both are known): EC2 launches only into
    reservations of its own region."""
    if capacity is None:
        return
    c, name = capacity, spec.instance_type  # types were checked by mlcdk.params; these are the ranges and rules
    preferences = capacity_blocks.facts().reservation_preferences
    rid, group = c.reservation_id, c.reservation_group_arn
    group_problem = arn_problem(group, dataclasses.replace(capacity_blocks.RESERVATION_GROUP, region=region, account=account)
                                ) if group is not None and concrete(group) else None
    check([
        (rid is not None and reservation_id_problem(rid) is not None,
         f"capacity.reservation_id ({shown(rid)}) {reservation_id_problem(rid)}"),
        (group_problem is not None, f"capacity.reservation_group_arn ({shown(group)}) {group_problem}"),
        (rid is not None and group is not None,
         "capacity: give reservation_id or reservation_group_arn, not both (EC2 takes one target)"),
        (c.preference is not None and c.preference not in preferences,
         f"capacity.preference ({c.preference!r}) must be one of {', '.join(preferences)}"),
        (c.preference == "open" and c.targeted,
         "capacity.preference ('open') cannot go with a reservation target: EC2 accepts a target only with "
         "'capacity-reservations-only'; drop the target to use any open reservation, or drop preference"),
        (c.preference == "capacity-reservations-only" and not c.targeted,
         "capacity.preference ('capacity-reservations-only') needs reservation_id or reservation_group_arn"),
        (c.hourly_price_usd is not None and c.hourly_price_usd <= 0,
         f"capacity.hourly_price_usd ({c.hourly_price_usd!r}) must be a positive number of USD per instance-hour"),
        (c.reserved_instances is not None and not 1 <= c.reserved_instances <= MAX_CAPACITY,
         f"capacity.reserved_instances ({c.reserved_instances!r}) must be a whole number from 1 to {MAX_CAPACITY}"),
        (c.reserved_instances is not None and not c.targeted,
         "capacity.reserved_instances needs reservation_id or reservation_group_arn (it counts their instances)"),
        (c.availability_zone_id is not None and not _is_az_id(c.availability_zone_id),
         f"capacity.availability_zone_id ({c.availability_zone_id!r}) must be an AZ ID such as 'use1-az4' "
         "(the reservation's, from `aws ec2 describe-capacity-reservations`)"),
        (purchase.uses_spot,
         f"purchase ({purchase.option!r}) with capacity: reserved capacity runs on-demand nodes; use "
         "purchase.option='on-demand', or drop capacity"),
        (az_id is not None and c.availability_zone_id is not None and az_id != c.availability_zone_id,
         f"availability_zone_id ({az_id}) differs from capacity.availability_zone_id ({c.availability_zone_id}): "
         "the nodes must launch in the reservation's AZ"),
        (c.targeted and bool(purchase.fallback_instance_types),
         f"purchase.fallback_instance_types with a capacity reservation: a reservation holds {name} only; drop "
         "the fallbacks"),
    ])
    if c.capacity_block:
        check([
            (rid is None, "capacity.capacity_block needs capacity.reservation_id (the block's reservation; a "
                          "reservation group cannot hold a block)"),
            (c.availability_zone_id is None,
             "capacity.capacity_block needs capacity.availability_zone_id, the block's AZ ID (EC2 launches a "
             "block's instances only in its AZ)"),
            (not capacity_blocks.sells_capacity_blocks(spec),
             f"capacity.capacity_block: Capacity Blocks for ML are not sold for {name}; they are for "
             f"{', '.join(capacity_blocks.capacity_block_types())} (the EC2 API's supported usage classes)"),
            (placement_group is True,
             "placement_group=True with a Capacity Block: EC2 places a block's instances close together and a "
             "cluster placement group must not be used; drop placement_group"),
        ])
    else:
        check([(c.block_end is not None, "capacity.block_end is for a Capacity Block: set capacity_block=True")])
    parse_block_end(c.block_end)
    if region is not None and c.availability_zone_id is not None and spec.offered_in(region):
        problem = workloads.offering_problem(spec, region, c.availability_zone_id)
        check([(problem is not None, f"capacity.availability_zone_id: {problem}")])
    engine_problem = engine and capacity_blocks.engine_capacity_problem(engine, capacity_block=c.capacity_block,
                                                               targeted=c.targeted)
    check([(bool(engine_problem), engine_problem or "")])



def reservation_fallbacks(scope: Construct, capacity: CapacityOptions | None, spec: InstanceSpec,
                          fallbacks: tuple[str, ...]) -> tuple[str, ...]:
    """The fallback types a group may still use with ``capacity``: none with a targeted reservation, which holds
    ``spec``'s type only (warned as ``mlcdk:capacityFallbacksUnused``). One home for both constructs."""
    if capacity is None or not capacity.targeted or not fallbacks:
        return fallbacks
    warn(scope, "capacityFallbacksUnused", fallbacks=", ".join(fallbacks), instance_type=spec.instance_type)
    return ()


def _is_az_id(value) -> bool:
    return capacity_blocks.AZ_ID.fullmatch(value) is not None


def apply(launch_template: ec2.LaunchTemplate, capacity: CapacityOptions | None) -> None:
    """The launch template's CapacityReservationSpecification and, for a block, its market type."""
    if capacity is None:
        return
    template = launch_template.node.default_child
    spec: dict = {"CapacityReservationPreference": capacity.resolved_preference}
    if capacity.reservation_id is not None:
        spec["CapacityReservationTarget"] = {"CapacityReservationId": capacity.reservation_id}
    elif capacity.reservation_group_arn is not None:
        spec["CapacityReservationTarget"] = {"CapacityReservationResourceGroupArn": capacity.reservation_group_arn}
    template.add_property_override("LaunchTemplateData.CapacityReservationSpecification", spec)
    if capacity.capacity_block:
        template.add_property_override("LaunchTemplateData.InstanceMarketOptions", {"MarketType": "capacity-block"})


def placement_default(capacity: CapacityOptions | None, placement_group: bool | None, multi_node: bool,
                      spec: InstanceSpec) -> bool:
    """A cluster placement group by default for multi-node clusters, but not with held capacity: a block
    needs none, and a new group cannot hold an existing reservation (eksctl #7949)."""
    if placement_group is not None:
        return placement_group
    return multi_node and spec.supports_placement("cluster") and capacity is None


def events_and_schedule(scope: Construct, capacity: CapacityOptions | None, *, topic: sns.ITopic, label: str,
                        grace: cdk.Duration, auto_scaling_group: autoscaling.AutoScalingGroup | None,
                        engine: str, on_block_end: Callable[[dt.datetime], None] | None = None) -> None:
    """For a block: the expiration warning to the topic, the early scale-in (engine="nodes" with
    ``block_end``, or ``on_block_end(stop)`` for an engine that scales something else, such as an ECS service),
    and a warning where the checkpoint cannot fit."""
    if capacity is None or not capacity.capacity_block:
        return
    f = capacity_blocks.facts()
    events.Rule(scope, "CapacityBlockExpiring",
                description=f"{label}: the Capacity Block ends in {f.warning_minutes_before_end} minutes",
                event_pattern=events.EventPattern(
                    source=["aws.ec2"], detail_type=list(f.warning_detail_types),
                    detail={"capacity-reservation-id": [capacity.reservation_id]}),
                targets=[security.TopicTarget(topic)])
    grace_minutes = grace.to_minutes(integral=False)
    end = parse_block_end(capacity.block_end)
    if end is not None and (auto_scaling_group is not None or on_block_end is not None):
        stop = end - dt.timedelta(minutes=f.termination_minutes_before_end + grace_minutes)
        # EC2 Auto Scaling rejects a scheduled action in the past.
        check([(stop <= dt.datetime.now(dt.timezone.utc),
                f"capacity.block_end ({capacity.block_end!r}): the scale-in before the block's end would be at "
                f"{stop:%Y-%m-%d %H:%M} UTC, which has passed; drop block_end for a block that is ending")])
        if on_block_end is not None:
            on_block_end(stop)
            return
        # One time (no recurrence): the L2's scale_on_schedule always recurs.
        autoscaling.CfnScheduledAction(
            scope, "CapacityBlockEnd", auto_scaling_group_name=auto_scaling_group.auto_scaling_group_name,
            start_time=stop.strftime("%Y-%m-%dT%H:%M:%SZ"), min_size=0, desired_capacity=0)
        return
    if grace_minutes > f.checkpoint_window_minutes:
        how = ("give capacity.block_end so the group scales in early" if engine == "nodes" and end is None else
               "cancel the job (`mlcdk cancel`) when the expiration warning arrives")
        warn(scope, "capacityBlockGrace", grace_minutes=grace_minutes, warning_minutes=f.warning_minutes_before_end,
             termination_minutes=f.termination_minutes_before_end, window_minutes=f.checkpoint_window_minutes,
             remedy=how)


def az_for(capacity: CapacityOptions | None, az_id: str | None) -> str | None:
    """The AZ ID the nodes must use: the reservation's when given, else the cluster's."""
    if capacity is not None and capacity.availability_zone_id is not None:
        return capacity.availability_zone_id
    return az_id


