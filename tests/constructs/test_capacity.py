"""CapacityOptions: ODCRs, reservation groups and Capacity Blocks on TrainingCluster (both engines) and InferenceFleet.

Expected values are written out by hand from the sources in mlcdk/presets/data/capacity.json and the price data
(trn1.32xlarge on demand in us-east-1: $21.50/h), not computed by the code under test.
"""
from __future__ import annotations

import re

import aws_cdk as cdk
import pytest

from mlcdk import CapacityOptions, InferenceFleet, ModelOptions, PurchaseOptions, TrainingCluster
from tests.harness import assert_refused, cli_context, lint, nag_problems, synth

REGION = "us-east-1"
CR = "cr-0123456789abcdef0"
GROUP = "arn:aws:resource-groups:us-east-1:123456789012:group/ml-reservations"
BLOCK_END = "2030-01-08T11:30:00+00:00"
#: What a launch template holds for a reservation ID (EC2 accepts a target only with this preference).
ODCR_TARGET = {"CapacityReservationPreference": "capacity-reservations-only",
               "CapacityReservationTarget": {"CapacityReservationId": CR}}

#: stack id -> (construct, kwargs)
SHAPES = {
    "OdcrBatch": ("cluster", dict(instance_type="trn1.32xlarge", nodes=2,
                                  capacity=CapacityOptions(reservation_id=CR, availability_zone_id="use1-az5"))),
    "OdcrNodes": ("cluster", dict(instance_type="trn1.32xlarge", nodes=2, engine="nodes",
                                  capacity=CapacityOptions(reservation_id=CR, availability_zone_id="use1-az5"))),
    "GroupBatch": ("cluster", dict(instance_type="p4d.24xlarge", nodes=2,
                                   capacity=CapacityOptions(reservation_group_arn=GROUP))),
    "OpenNodes": ("cluster", dict(instance_type="p4d.24xlarge", nodes=2, engine="nodes",
                                  capacity=CapacityOptions(preference="open"))),
    "BlockPriced": ("cluster", dict(instance_type="p5.48xlarge", nodes=2, engine="nodes",
                                    checkpoint_grace_period=cdk.Duration.minutes(15),
                                   capacity=CapacityOptions(reservation_id=CR, capacity_block=True,
                                                            availability_zone_id="use1-az6", hourly_price_usd=31.464))),
    "BlockNodes": ("cluster", dict(instance_type="p5.48xlarge", nodes=2, engine="nodes",
                                   capacity=CapacityOptions(reservation_id=CR, capacity_block=True,
                                                            availability_zone_id="use1-az6", block_end=BLOCK_END))),
    "OdcrFleet": ("fleet", dict(instance_type="inf2.xlarge", min_capacity=1, max_capacity=4,
                                model=ModelOptions(source="TinyLlama/TinyLlama-1.1B-Chat-v1.0"),
                                capacity=CapacityOptions(reservation_id=CR, availability_zone_id="use1-az6",
                                                         reserved_instances=2))),
}


@pytest.fixture(scope="module")
def built():
    constructs = {}

    def build(app):
        stacks = []
        for name, (kind, kwargs) in SHAPES.items():
            stack = cdk.Stack(app, name, env=cdk.Environment(region=REGION))
            make = TrainingCluster if kind == "cluster" else InferenceFleet
            constructs[name] = make(stack, "C", **kwargs)
            stacks.append(stack)
        return stacks

    return synth(build, cli_context()), constructs


def resources(template: dict, kind: str) -> dict[str, dict]:
    return {k: r.get("Properties", {}) for k, r in template["Resources"].items() if r["Type"] == kind}


def launch_data(template: dict) -> dict:
    (props,) = resources(template, "AWS::EC2::LaunchTemplate").values()
    return props["LaunchTemplateData"]


def warnings(construct) -> list[str]:
    return [str(m.data) for c in construct.node.find_all() for m in c.node.metadata if m.type == "aws:cdk:warning"]


def subnet_az_ids(template: dict) -> dict[str, str]:
    return {k: p["AvailabilityZoneId"] for k, p in resources(template, "AWS::EC2::Subnet").items() if "AvailabilityZoneId" in p}


# --------------------------------------------------------------------------------------------
# The launch template of each shape
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "expected"), [
    ("OdcrBatch", ODCR_TARGET),
    ("OdcrNodes", ODCR_TARGET),
    ("GroupBatch", {"CapacityReservationPreference": "capacity-reservations-only",
                    "CapacityReservationTarget": {"CapacityReservationResourceGroupArn": GROUP}}),
    ("OpenNodes", {"CapacityReservationPreference": "open"}),
    ("BlockPriced", ODCR_TARGET),
    ("BlockNodes", ODCR_TARGET),
    ("OdcrFleet", ODCR_TARGET),
])
def test_launch_template_targets_the_reservation(built, name, expected):
    data = launch_data(built[0].templates[name])
    assert data["CapacityReservationSpecification"] == expected
    block = name.startswith("Block")
    assert data.get("InstanceMarketOptions") == ({"MarketType": "capacity-block"} if block else None)


@pytest.mark.parametrize("name", ["OdcrBatch", "OdcrNodes", "GroupBatch", "OpenNodes", "BlockPriced", "BlockNodes"])
def test_no_placement_group_with_held_capacity(built, name):
    template = built[0].templates[name]
    assert resources(template, "AWS::EC2::PlacementGroup") == {}
    assert "Placement" not in launch_data(template)
    for props in resources(template, "AWS::Batch::ComputeEnvironment").values():
        assert "PlacementGroup" not in props["ComputeResources"]


def test_without_capacity_the_placement_group_stays(built):
    app = cdk.App(context=cli_context())
    stack = cdk.Stack(app, "Plain", env=cdk.Environment(region=REGION))
    TrainingCluster(stack, "C", instance_type="p5.48xlarge", nodes=2, engine="nodes")
    template = app.synth().get_stack_by_name("Plain").template
    assert len(resources(template, "AWS::EC2::PlacementGroup")) == 1


@pytest.mark.parametrize(("name", "az"), [("OdcrBatch", "use1-az5"), ("BlockPriced", "use1-az6"),
                                          ("OdcrNodes", "use1-az5"), ("BlockNodes", "use1-az6")])
def test_nodes_launch_in_the_reservations_az(built, name, az):
    result, constructs = built
    template = result.templates[name]
    cluster = constructs[name]
    assert cluster.availability_zone_id == az
    subnet_ids = subnet_az_ids(template)
    if name.endswith("Batch"):
        (ce,) = resources(template, "AWS::Batch::ComputeEnvironment").values()
        (ref,) = ce["ComputeResources"]["Subnets"]
    else:
        (group,) = resources(template, "AWS::AutoScaling::AutoScalingGroup").values()
        (ref,) = group["VPCZoneIdentifier"]
    assert subnet_ids[ref["Ref"]] == az


def test_fleet_servers_run_in_the_reservations_az_only(built):
    result, constructs = built
    template = result.templates["OdcrFleet"]
    (group,) = resources(template, "AWS::AutoScaling::AutoScalingGroup").values()
    assert [subnet_az_ids(template)[r["Ref"]] for r in group["VPCZoneIdentifier"]] == ["use1-az6"]
    assert any("the model servers run in one AZ (use1-az6)" in w for w in warnings(constructs["OdcrFleet"]))


# --------------------------------------------------------------------------------------------
# A block's end: the warning event, the early scale-in, and the checkpoint window
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["BlockPriced", "BlockNodes"])
def test_block_expiration_warning_reaches_the_alarm_topic(built, name):
    template = built[0].templates[name]
    rules = [p for p in resources(template, "AWS::Events::Rule").values()
             if p["EventPattern"].get("detail", {}).get("capacity-reservation-id")]
    assert len(rules) == 1
    pattern = rules[0]["EventPattern"]
    assert pattern["source"] == ["aws.ec2"]
    assert pattern["detail"] == {"capacity-reservation-id": [CR]}
    assert set(pattern["detail-type"]) == {"Capacity Block Reservation Expiration Warning",
                                           "Capacity Block Expiration Warning"}
    (target,) = rules[0]["Targets"]
    assert "Ref" in target["Arn"] and "AlarmTopic" in target["Arn"]["Ref"]


def test_block_end_scales_the_group_in_before_ec2_terminates(built):
    template = built[0].templates["BlockNodes"]
    (action,) = resources(template, "AWS::AutoScaling::ScheduledAction").values()
    # 11:30 end - 30 min (EC2 starts terminating) - 10 min (the default checkpoint grace period) = 10:50, once.
    assert action["StartTime"] == "2030-01-08T10:50:00Z"
    assert action["DesiredCapacity"] == 0 and action["MinSize"] == 0
    assert "Recurrence" not in action and "EndTime" not in action


def test_block_without_end_warns_when_the_grace_period_cannot_fit(built):
    messages = warnings(built[1]["BlockPriced"])
    assert any("checkpoint_grace_period (15 min) does not fit a Capacity Block's end" in w
               and "give capacity.block_end so the group scales in early" in w for w in messages)
    assert not any("capacityBlockGrace" in w or "does not fit" in w for w in warnings(built[1]["BlockNodes"]))


def test_block_without_price_warns_and_uses_the_on_demand_rate(built):
    assert any("give capacity.hourly_price_usd" in w for w in warnings(built[1]["BlockNodes"]))


# --------------------------------------------------------------------------------------------
# Guardrails price the reservation
# --------------------------------------------------------------------------------------------


def cost_output(template: dict) -> dict:
    (output,) = [o for k, o in template["Outputs"].items() if "EstimatedMonthlyCostUsd" in k]
    return output


def test_odcr_is_priced_at_the_on_demand_rate_used_or_not(built):
    template = built[0].templates["OdcrBatch"]
    output = cost_output(template)
    assert output["Value"] == "31390.00"  # 2 x $21.50 x 730 h
    assert "reserved at on-demand rate" in output["Description"]
    (budget,) = resources(template, "AWS::Budgets::Budget").values()
    assert budget["Budget"]["BudgetLimit"]["Amount"] == 31390.0
    idle = [p for k, p in resources(template, "AWS::CloudWatch::Alarm").items() if "Idle" in k and "Cpu" not in k]
    (alarm,) = idle
    assert alarm["TreatMissingData"] == "breaching"
    assert "the reservation's 2 instances are paid whether used or not" in alarm["AlarmDescription"]
    expressions = [m.get("Expression", "") for m in alarm["Metrics"]]
    assert "FILL(busy, 0) * IF(FILL(inservice, 0) > 2, 2, FILL(inservice, 0)) / 2" in expressions


def test_block_is_priced_at_its_given_price(built):
    output = cost_output(built[0].templates["BlockPriced"])
    assert output["Value"] == "45937.44"  # 2 x $31.464 x 730 h
    assert "Capacity Block price from capacity.hourly_price_usd" in output["Description"]


def test_fleet_counts_the_reserved_instances(built):
    fleet = built[1]["OdcrFleet"]
    assert fleet.guardrails.reserved_nodes == 2
    assert "IF(FILL(inservice, 0) > 2, FILL(inservice, 0), 2)" in str(
        cdk.Stack.of(fleet).resolve(fleet.guardrails.metric_hourly_cost.expression))


def test_open_preference_prices_on_demand_by_instances_in_service(built):
    cluster = built[1]["OpenNodes"]
    assert cluster.guardrails.reserved_nodes == 0
    assert cluster.guardrails.price.kind == "on-demand"


# --------------------------------------------------------------------------------------------
# Gates on every shape
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SHAPES))
def test_cfn_lint_passes(built, name):
    assert lint(built[0].template_paths[name], [REGION]) == []


def test_nag_packs_pass(built):
    assert nag_problems(built[0]) == []


# --------------------------------------------------------------------------------------------
# Rules: bad input and contradictions, each refused before any resource exists
# --------------------------------------------------------------------------------------------

P5 = dict(instance_type="p5.48xlarge", nodes=2)
BLOCK = dict(reservation_id=CR, capacity_block=True, availability_zone_id="use1-az6")

BAD = [
    (dict(P5, capacity=CapacityOptions(reservation_id="cr-123")), r"capacity.reservation_id \('cr-123'\) must be 'cr-' followed by 17"),
    (dict(P5, capacity=CapacityOptions(reservation_id="CR-0123456789ABCDEF0")), r"capacity.reservation_id \('CR-0123456789ABCDEF0'\)"),
    (dict(P5, capacity=CapacityOptions(reservation_id=17)), r"capacity.reservation_id \(17\) must be a string or None"),
    (dict(P5, capacity=CapacityOptions(reservation_group_arn="my-group")), r"capacity.reservation_group_arn \('my-group'\) must be an ARN, arn:PARTITION:resource-groups:REGION:ACCOUNT:group/NAME"),
    (dict(P5, capacity=CapacityOptions(reservation_id=CR, reservation_group_arn=GROUP)), r"give reservation_id or reservation_group_arn, not both"),
    (dict(P5, capacity=CapacityOptions(preference="none")), r"capacity.preference \('none'\) must be one of capacity-reservations-only, open"),
    (dict(P5, capacity=CapacityOptions(reservation_id=CR, preference="open")), r"capacity.preference \('open'\) cannot go with a reservation target"),
    (dict(P5, capacity=CapacityOptions(preference="capacity-reservations-only")), r"'capacity-reservations-only'\) needs reservation_id"),
    (dict(P5, capacity=CapacityOptions(reservation_id=CR, capacity_block="yes")), r"capacity.capacity_block \('yes'\) must be True or False \(a bool"),
    (dict(P5, capacity=CapacityOptions(reservation_id=CR, hourly_price_usd=float("nan"))), r"capacity.hourly_price_usd \(nan\) must be a finite number \(not NaN or infinity\)"),
    (dict(P5, capacity=CapacityOptions(reservation_id=CR, hourly_price_usd=0)), r"capacity.hourly_price_usd \(0\) must be a number above 0 and at most 1000"),
    (dict(P5, capacity=CapacityOptions(reservation_id=CR, hourly_price_usd="31")), r"capacity.hourly_price_usd \('31'\) must be a finite number or None"),
    (dict(P5, capacity=CapacityOptions(reservation_id=CR, reserved_instances=0)), r"capacity.reserved_instances \(0\) must be a whole number"),
    (dict(P5, capacity=CapacityOptions(reserved_instances=2)), r"capacity.reserved_instances needs reservation_id"),
    (dict(P5, capacity=CapacityOptions(reservation_id=CR, availability_zone_id="us-east-1a")),
     r"capacity.availability_zone_id \('us-east-1a'\) must be an AZ ID such as 'use1-az4'"),
    (dict(instance_type="trn1.32xlarge", nodes=2, capacity=CapacityOptions(reservation_id=CR, availability_zone_id="use1-az1")),
     r"capacity.availability_zone_id: trn1.32xlarge is not offered in use1-az1; in us-east-1 it is offered in use1-az4, use1-az5, use1-az6"),
    (dict(instance_type="g5.12xlarge", nodes=1, purchase=PurchaseOptions(option="spot"), capacity=CapacityOptions(reservation_id=CR)),
     r"purchase \('spot'\) with capacity: reserved capacity runs on-demand nodes"),
    (dict(P5, engine="nodes", purchase=PurchaseOptions(option="mixed"), capacity=CapacityOptions(reservation_id=CR)),
     r"purchase \('mixed'\) with capacity"),
    (dict(P5, engine="nodes", purchase=PurchaseOptions(fallback_instance_types=("p5e.48xlarge",)), capacity=CapacityOptions(reservation_id=CR)),
     r"purchase.fallback_instance_types with a capacity reservation: a reservation holds p5.48xlarge only"),
    (dict(P5, capacity=CapacityOptions(capacity_block=True, availability_zone_id="use1-az6")), r"capacity.capacity_block needs capacity.reservation_id"),
    (dict(P5, capacity=CapacityOptions(reservation_id=CR, capacity_block=True)), r"capacity.capacity_block needs capacity.availability_zone_id"),
    (dict(instance_type="g5.12xlarge", nodes=1, capacity=CapacityOptions(**BLOCK)),
     r"capacity.capacity_block: Capacity Blocks for ML are not sold for g5.12xlarge; they are for p4d.24xlarge"),
    (dict(P5, placement_group=True, capacity=CapacityOptions(**BLOCK)), r"placement_group=True with a Capacity Block"),
    (dict(P5, availability_zone_id="use1-az4", capacity=CapacityOptions(**BLOCK)),
     r"availability_zone_id \(use1-az4\) differs from capacity.availability_zone_id \(use1-az6\)"),
    (dict(P5, capacity=CapacityOptions(reservation_id=CR, block_end=BLOCK_END)), r"capacity.block_end is for a Capacity Block"),
    (dict(P5, capacity=CapacityOptions(**BLOCK, block_end="next tuesday")), r"capacity.block_end \('next tuesday'\) must be an ISO 8601"),
    (dict(P5, capacity=CapacityOptions(**BLOCK, block_end="2030-01-08T11:30:00")), r"capacity.block_end \('2030-01-08T11:30:00'\) must be an ISO 8601 date and time with a UTC offset"),
    (dict(P5, engine="nodes", capacity=CapacityOptions(**BLOCK, block_end="2020-01-08T11:30:00+00:00")),
     r"the scale-in before the block's end would be at 2020-01-08 10:50 UTC, which has passed"),
    (dict(P5, capacity={"reservation_id": CR}), r"capacity \(\{'reservation_id': '.*'\}\) must be a CapacityOptions\(...\) or None"),
    # No AWS Batch documentation says Batch launches into a Capacity Block; it ignores instance market options.
    (dict(P5, capacity=CapacityOptions(**BLOCK)),
     r"capacity.capacity_block with engine='batch': no AWS Batch documentation says Batch launches into a Capacity "
     r"Block, and Batch ignores the launch template's instance market options .*; use engine='nodes'"),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD, ids=[re.sub(r"\W+", "-", m[:50]) for _, m in BAD])
def test_bad_capacity_is_refused_before_any_resource(kwargs, message):
    past_end = "block_end=" in repr(kwargs) and "2020" in repr(kwargs)  # that check runs at scheduling
    assert_refused(TrainingCluster, message, region=REGION, check_nothing_built=not past_end, **kwargs)


FLEET_BAD = [
    (dict(capacity=CapacityOptions(reservation_id=CR)), r"a fleet with a reservation target needs capacity.availability_zone_id"),
    (dict(capacity=CapacityOptions(reservation_id=CR, availability_zone_id="use1-az6"),
          scaling=__import__("mlcdk").ScalingOptions(warm_pool=True)), r"scaling.warm_pool with a capacity reservation"),
    (dict(purchase=PurchaseOptions(option="spot"), capacity=CapacityOptions(reservation_id=CR, availability_zone_id="use1-az6")),
     r"purchase \('spot'\) with capacity"),
]


@pytest.mark.parametrize(("kwargs", "message"), FLEET_BAD, ids=[m[:40] for _, m in FLEET_BAD])
def test_bad_fleet_capacity_is_refused(kwargs, message):
    assert_refused(InferenceFleet, message, region=REGION, construct_id="Fleet", check_nothing_built=False,
                   instance_type="inf2.xlarge", model=ModelOptions(source="TinyLlama/TinyLlama-1.1B-Chat-v1.0"), **kwargs)


def test_preset_fallbacks_are_dropped_with_a_reason():
    app = cdk.App(context=cli_context())
    stack = cdk.Stack(app, "Warn", env=cdk.Environment(region=REGION))
    cluster = TrainingCluster(stack, "C", preset="llm-pretrain-trainium", engine="nodes", availability_zone_id="use1-az6",
                              capacity=CapacityOptions(reservation_id=CR))
    assert cluster.instance_types == ("trn1.32xlarge",)
    messages = warnings(cluster)
    assert any("the preset's fallback types (trn1n.32xlarge) are not used: the capacity reservation holds "
               "trn1.32xlarge only" in w for w in messages)
    assert any("a reservation made outside it cannot serve nodes placed in a new one" in w for w in messages)


def test_forced_placement_group_with_a_reservation_warns():
    app = cdk.App(context=cli_context())
    stack = cdk.Stack(app, "Warn", env=cdk.Environment(region=REGION))
    cluster = TrainingCluster(stack, "C", instance_type="p5.48xlarge", nodes=2, placement_group=True,
                              capacity=CapacityOptions(reservation_id=CR))
    assert cluster.placement_group is not None
    assert any("nodes in this new placement group match only a reservation made in it" in w for w in warnings(cluster))


@pytest.mark.parametrize(("instance_type", "sold"), [
    # EC2 User Guide, "Capacity Blocks for ML", supported instance types; g5 and inf2 are not among them.
    ("p5.48xlarge", True), ("p4d.24xlarge", True), ("p5en.48xlarge", True), ("trn1.32xlarge", True),
    ("trn2.48xlarge", True), ("p6-b200.48xlarge", True), ("trn1n.32xlarge", False), ("g5.48xlarge", False),
    ("inf2.48xlarge", False), ("p3.16xlarge", False),
])
def test_capacity_block_support_is_the_apis_usage_class(instance_type, sold):
    from mlcdk.presets import capacity_blocks, catalog

    assert capacity_blocks.sells_capacity_blocks(catalog.get(instance_type)) is sold


@pytest.mark.parametrize(("kwargs", "parameter"), [
    (dict(P5, engine="nodes", capacity=CapacityOptions(**BLOCK)), "capacity.availability_zone_id"),
    (dict(P5, capacity=CapacityOptions(reservation_id=CR, availability_zone_id="use1-az6")), "capacity.availability_zone_id"),
    (dict(P5, availability_zone_id="use1-az6"), "availability_zone_id"),
])
def test_an_az_id_on_an_env_agnostic_stack_is_refused_never_ignored(kwargs, parameter):
    """Without a region, the network mlcdk builds cannot be pinned by AZ ID: its subnets would go to the first AZs of
    Fn::GetAZs, wherever the block or reservation is. Refused, naming the fix."""
    from tests.harness import nothing_built

    stack = cdk.Stack(cdk.App(context=cli_context()), "Agnostic")
    with pytest.raises(__import__("mlcdk").ConfigurationError,
                       match=rf"^{re.escape(parameter)} \(use1-az6\): the stack is env-agnostic, so mlcdk cannot build "
                             r"a network in that AZ .*give the stack a region"):
        TrainingCluster(stack, "Cluster", **kwargs)
    assert nothing_built(stack, "Cluster")
