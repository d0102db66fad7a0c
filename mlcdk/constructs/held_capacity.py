"""Capacity you already hold (CapacityOptions): the launch template settings and the block's events.

One home for TrainingCluster (both engines) and InferenceFleet; the rules are in mlcdk.constructs.capacity_rules,
which the plan steps call. Facts and sources: mlcdk/presets/data/capacity.json.

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

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_sns as sns
from constructs import Construct

from mlcdk.constructs import security
from mlcdk.constructs.capacity_rules import block_scale_in
from mlcdk.constructs.options import CapacityOptions
from mlcdk.presets import capacity_blocks as facts


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


@dataclass(frozen=True)
class BlockEnd:
    """How a construct meets a Capacity Block's end: the topic for the expiration warning, the construct's label,
    the grace its nodes need to stop, and what scales in: the Auto Scaling group (engine="nodes" with
    ``block_end``), or ``on_block_end(stop)`` for an engine that scales something else, such as an ECS service."""

    topic: sns.ITopic
    label: str
    grace: cdk.Duration
    auto_scaling_group: autoscaling.AutoScalingGroup | None
    on_block_end: Callable[[dt.datetime], None] | None = None


def events_and_schedule(scope: Construct, capacity: CapacityOptions | None, block: BlockEnd) -> None:
    """For a block: the expiration warning to the topic, and the early scale-in (the plan step checked its time and
    warned where the checkpoint cannot fit: capacity_rules.block_scale_in, note_block_grace)."""
    if capacity is None or not capacity.capacity_block:
        return
    topic, label, grace = block.topic, block.label, block.grace
    auto_scaling_group, on_block_end = block.auto_scaling_group, block.on_block_end
    f = facts.facts()
    events.Rule(scope, "CapacityBlockExpiring",
                description=f"{label}: the Capacity Block ends in {f.warning_minutes_before_end} minutes",
                event_pattern=events.EventPattern(
                    source=["aws.ec2"], detail_type=list(f.warning_detail_types),
                    detail={"capacity-reservation-id": [capacity.reservation_id]}),
                targets=[security.TopicTarget(topic)])
    grace_minutes = grace.to_minutes(integral=False)
    stop = block_scale_in(capacity, grace_minutes)  # checked by the plan step already
    if stop is not None and on_block_end is not None:
        on_block_end(stop)
    elif stop is not None and auto_scaling_group is not None:
        # One time (no recurrence): the L2's scale_on_schedule always recurs.
        autoscaling.CfnScheduledAction(
            scope, "CapacityBlockEnd", auto_scaling_group_name=auto_scaling_group.auto_scaling_group_name,
            start_time=stop.strftime("%Y-%m-%dT%H:%M:%SZ"), min_size=0, desired_capacity=0)
