"""The rules on capacity you already hold (CapacityOptions), checked before any resource exists.

Pure (no aws_cdk): the plan steps call these; mlcdk.constructs.held_capacity writes the launch template settings and
the block's events. Facts and sources: mlcdk/presets/data/capacity.json.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

from mlcdk.constructs.options import CapacityOptions, PurchaseOptions
from mlcdk.constructs.plan_warnings import PlanWarning, warn
from mlcdk.constructs.validation import check, concrete
from mlcdk.errors import shown
from mlcdk.presets import capacity_blocks as facts
from mlcdk.presets import workloads
from mlcdk.presets.catalog import InstanceSpec
from mlcdk.presets.identifiers import arn_problem, reservation_id_problem
from mlcdk.presets.counts import MAX_CAPACITY


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


@dataclass(frozen=True)
class CapacityContext:
    """What capacity is checked against: the type, how nodes are bought, where they go, and the engine.

    ``engine``: also check whether that engine can launch into the capacity (data/capacity.json "engines").
    ``account``: the stack's account, when known (a group ARN must be in it)."""

    spec: InstanceSpec
    purchase: PurchaseOptions
    region: str | None
    az_id: str | None = None
    placement_group: bool | None = None
    engine: str | None = None
    account: str | None = None


def validate(capacity: CapacityOptions | None, context: CapacityContext) -> None:
    """Every rule on CapacityOptions and between it and the other options, before any resource exists. A group ARN
    must be in the stack's partition and region (and account, when both are known): EC2 launches only into
    reservations of its own region."""
    if capacity is None:
        return
    check(_target_rows(capacity, context))
    check(_block_rows(capacity, context.spec, context.placement_group) if capacity.capacity_block else
          [(capacity.block_end is not None, "capacity.block_end is for a Capacity Block: set capacity_block=True")])
    parse_block_end(capacity.block_end)
    region = context.region
    if region is not None and capacity.availability_zone_id is not None and context.spec.offered_in(region):
        problem = workloads.offering_problem(context.spec, region, capacity.availability_zone_id)
        check([(problem is not None, f"capacity.availability_zone_id: {problem}")])
    engine_problem = context.engine and facts.engine_capacity_problem(
        context.engine, capacity_block=capacity.capacity_block, targeted=capacity.targeted)
    check([(bool(engine_problem), engine_problem or "")])


def _target_rows(c: CapacityOptions, context: CapacityContext) -> list[tuple[bool, str]]:
    """The target, the preference, the price and count, the AZ, and the purchase (types were checked by
    mlcdk.params; these are the ranges and rules)."""
    preferences = facts.facts().reservation_preferences
    rid, group, purchase, az_id = c.reservation_id, c.reservation_group_arn, context.purchase, context.az_id
    group_problem = arn_problem(group, dataclasses.replace(facts.RESERVATION_GROUP, region=context.region,
                                                           account=context.account)
                                ) if group is not None and concrete(group) else None
    return [
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
         f"purchase.fallback_instance_types with a capacity reservation: a reservation holds {context.spec.instance_type} "
         "only; drop the fallbacks"),
    ]


def _block_rows(c: CapacityOptions, spec: InstanceSpec, placement_group: bool | None) -> list[tuple[bool, str]]:
    """A Capacity Block's own rules."""
    return [
        (c.reservation_id is None, "capacity.capacity_block needs capacity.reservation_id (the block's reservation; a "
                                   "reservation group cannot hold a block)"),
        (c.availability_zone_id is None,
         "capacity.capacity_block needs capacity.availability_zone_id, the block's AZ ID (EC2 launches a "
         "block's instances only in its AZ)"),
        (not facts.sells_capacity_blocks(spec),
         f"capacity.capacity_block: Capacity Blocks for ML are not sold for {spec.instance_type}; they are for "
         f"{', '.join(facts.capacity_block_types())} (the EC2 API's supported usage classes)"),
        (placement_group is True,
         "placement_group=True with a Capacity Block: EC2 places a block's instances close together and a "
         "cluster placement group must not be used; drop placement_group"),
    ]


def _is_az_id(value) -> bool:
    return facts.AZ_ID.fullmatch(value) is not None


def placement_default(capacity: CapacityOptions | None, placement_group: bool | None, multi_node: bool,
                      spec: InstanceSpec) -> bool:
    """A cluster placement group by default for multi-node clusters, but not with held capacity: a block
    needs none, and a new group cannot hold an existing reservation (eksctl #7949)."""
    if placement_group is not None:
        return placement_group
    return multi_node and spec.supports_placement("cluster") and capacity is None


def az_for(capacity: CapacityOptions | None, az_id: str | None) -> str | None:
    """The AZ ID the nodes must use: the reservation's when given, else the cluster's."""
    if capacity is not None and capacity.availability_zone_id is not None:
        return capacity.availability_zone_id
    return az_id


def block_scale_in(capacity: CapacityOptions | None, grace_minutes: float) -> dt.datetime | None:
    """When a group on a Capacity Block must scale in so that its nodes checkpoint (``grace_minutes``) before EC2
    starts terminating the block's instances; None without a block or its ``block_end``. EC2 Auto Scaling rejects a
    scheduled action in the past, so a time that has passed is refused."""
    if capacity is None or not capacity.capacity_block:
        return None
    end = parse_block_end(capacity.block_end)
    if end is None:
        return None
    stop = end - dt.timedelta(minutes=facts.facts().termination_minutes_before_end + grace_minutes)
    check([(stop <= dt.datetime.now(dt.timezone.utc),
            f"capacity.block_end ({capacity.block_end!r}): the scale-in before the block's end would be at "
            f"{stop:%Y-%m-%d %H:%M} UTC, which has passed; drop block_end for a block that is ending")])
    return stop


@dataclass(frozen=True)
class BlockGrace:
    """How a group meets a Capacity Block's end: the checkpoint grace its nodes need, the engine, and whether
    something scales in early when ``block_end`` is given (an Auto Scaling group or an ECS service)."""

    grace_minutes: float
    engine: str
    scales_in: bool


def note_block_grace(noted: list[PlanWarning], capacity: CapacityOptions | None, block: BlockGrace) -> None:
    """Warn (``mlcdk:capacityBlockGrace``) when the nodes' checkpoint cannot fit a Capacity Block's end: nothing
    scales in early (no ``block_end``, or nothing to scale) and the grace period is longer than the window between
    EC2's warning and its terminations."""
    if capacity is None or not capacity.capacity_block:
        return
    f = facts.facts()
    end = parse_block_end(capacity.block_end)
    if (end is not None and block.scales_in) or block.grace_minutes <= f.checkpoint_window_minutes:
        return
    how = ("give capacity.block_end so the group scales in early" if block.engine == "nodes" and end is None else
           "cancel the job (`mlcdk cancel`) when the expiration warning arrives")
    warn(noted, "capacityBlockGrace", grace_minutes=block.grace_minutes, warning_minutes=f.warning_minutes_before_end,
         termination_minutes=f.termination_minutes_before_end, window_minutes=f.checkpoint_window_minutes, remedy=how)


def reservation_fallbacks(noted: list[PlanWarning], capacity: CapacityOptions | None, spec: InstanceSpec,
                          fallbacks: tuple[str, ...]) -> tuple[str, ...]:
    """The fallback types a group may still use with ``capacity``: none with a targeted reservation, which holds
    ``spec``'s type only (warned as ``mlcdk:capacityFallbacksUnused``). One home for both constructs."""
    if capacity is None or not capacity.targeted or not fallbacks:
        return fallbacks
    warn(noted, "capacityFallbacksUnused", fallbacks=", ".join(fallbacks), instance_type=spec.instance_type)
    return ()
