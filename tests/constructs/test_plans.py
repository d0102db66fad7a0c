"""The plan steps (issue #26): plan_training and plan_fleet resolve and check everything before any construct exists.

No synth here. Expected values are literals from the data files: presets.json (types, node counts, purchase,
fallbacks, alarm thresholds), offerings.json (trn1.32xlarge in us-east-1: use1-az4, -az5, -az6; trn1n.32xlarge
only in use1-az6; g5.12xlarge in us-west-2: usw2-az1..3; g6.xlarge in us-east-1: use1-az1, -az2, -az4, -az5,
-az6) and amis.json (the SSM parameters and root devices).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from mlcdk.constructs.limits import GraceInput
from mlcdk.constructs.options import CapacityOptions, JobOptions, PurchaseOptions, ScaleSchedule
from mlcdk.constructs.placement import VpcFacts
from mlcdk.constructs.plan_training import Environment, TrainingRequest, plan_training
from mlcdk.errors import ConfigurationError

US_EAST_1 = Environment(region="us-east-1")
CR = "cr-0123456789abcdef0"
NEURON_ECS_AMI = "/aws/service/ecs/optimized-ami/amazon-linux-2023/neuron/recommended/image_id"
NEURON_DLAMI = "/aws/service/neuron/dlami/multi-framework/ubuntu-22.04/latest/image_id"
NVIDIA_DLAMI = "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id"


def warning_ids(plan) -> list[str]:
    """The IDs of the warnings the plan noted (mlcdk.constructs.plan_warnings; the construct adds "mlcdk:")."""
    return [w.id for w in plan.warnings]


def test_plans_import_and_run_without_aws_cdk() -> None:
    code = ("import sys\n"
            "from mlcdk.constructs import plan_fleet\n"
            "from mlcdk.constructs.plan_training import Environment, TrainingRequest, plan_training\n"
            "plan = plan_training(TrainingRequest(preset='llm-pretrain-trainium'), Environment(region='us-east-1'))\n"
            "assert plan.spec.instance_type == 'trn1.32xlarge', plan\n"
            "print(sorted(m for m in sys.modules if m.startswith(('aws_cdk', 'jsii', 'constructs'))))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]"


def test_trainium_preset_plans_two_efa_nodes_in_a_placement_group_on_batch() -> None:
    plan = plan_training(TrainingRequest(preset="llm-pretrain-trainium"), US_EAST_1)
    assert (plan.spec.instance_type, plan.nodes, plan.engine, plan.efa, plan.cluster_placement) == (
        "trn1.32xlarge", 2, "batch", True, True)
    assert plan.purchase == PurchaseOptions(option="on-demand", on_demand_base_capacity=0)
    assert plan.network_az_ids == ("use1-az4", "use1-az5", "use1-az6")
    assert plan.az_id == "use1-az4"
    # The preset's fallback is not offered in the cluster's AZ (trn1n.32xlarge: use1-az6 only).
    assert plan.fallbacks == ()
    assert warning_ids(plan) == ["presetFallbacksDropped"]
    assert plan.warnings[0].values == (("dropped", "trn1n.32xlarge (it is not offered in the cluster's AZ use1-az4)"),
                                       ("instance_type", "trn1.32xlarge"))
    assert (plan.ami.parameter, plan.root_device_name) == (NEURON_ECS_AMI, "/dev/xvda")
    assert plan.job.image.startswith("public.ecr.aws/neuron/pytorch-training-neuronx:")
    assert (plan.thresholds.low_utilization_percent, plan.thresholds.low_utilization_hours,
            plan.thresholds.high_memory_percent) == (10, 2, 95)
    assert plan.grace_seconds == 600


def test_a_batch_job_runs_one_type_so_the_preset_fallback_is_warned_about_not_used() -> None:
    plan = plan_training(TrainingRequest(preset="llm-pretrain-trainium", availability_zone_id="use1-az6"), US_EAST_1)
    assert (plan.az_id, plan.fallbacks, warning_ids(plan)) == ("use1-az6", (), ["batchFallbacksUnused"])


def test_persistent_nodes_keep_the_preset_fallback_where_it_is_offered() -> None:
    plan = plan_training(TrainingRequest(preset="llm-pretrain-trainium", engine="nodes",
                                         availability_zone_id="use1-az6"), US_EAST_1)
    assert plan.instance_types == ("trn1.32xlarge", "trn1n.32xlarge")
    assert (plan.ami.parameter, plan.root_device_name, plan.job) == (NEURON_DLAMI, "/dev/sda1", None)
    assert warning_ids(plan) == []


def test_single_node_spot_preset_has_no_efa_nor_placement_group_and_keeps_its_fallbacks() -> None:
    plan = plan_training(TrainingRequest(preset="finetune-nvidia-a10g", engine="nodes"), Environment(region="us-west-2"))
    assert (plan.spec.instance_type, plan.nodes, plan.efa, plan.cluster_placement) == ("g5.12xlarge", 1, False, False)
    assert plan.purchase.option == "spot"
    assert plan.fallbacks == ("g5.24xlarge", "g5.48xlarge")
    assert (plan.network_az_ids, plan.az_id) == (("usw2-az1", "usw2-az2", "usw2-az3"), "usw2-az1")
    assert plan.ami.parameter == NVIDIA_DLAMI


def test_explicit_arguments_override_the_preset() -> None:
    plan = plan_training(TrainingRequest(preset="llm-pretrain-trainium", nodes=4, max_hourly_cost_usd=100,
                                         job=JobOptions(retry_attempts=1)), US_EAST_1)
    assert (plan.nodes, plan.guardrails.max_hourly_cost_usd, plan.job.retry_attempts) == (4, 100, 1)


def test_an_env_agnostic_stack_gets_no_network_azs_and_no_pinned_az() -> None:
    plan = plan_training(TrainingRequest(instance_type="trn1.32xlarge", nodes=2))
    assert (plan.network_az_ids, plan.az_id, plan.region) == ((), None, None)


def test_a_reservation_pins_the_az_and_turns_the_placement_group_off() -> None:
    plan = plan_training(TrainingRequest(instance_type="trn1.32xlarge", nodes=2, capacity=CapacityOptions(
        reservation_id=CR, availability_zone_id="use1-az5")), US_EAST_1)
    assert (plan.az_id, plan.cluster_placement) == ("use1-az5", False)
    assert warning_ids(plan) == ["placementGroupOff"]


def test_a_brought_vpc_pinned_by_az_id_places_the_nodes_in_its_offered_az() -> None:
    vpc = VpcFacts(vpc_id="vpc-0123", az_ids=("use1-az1", "use1-az5"))
    plan = plan_training(TrainingRequest(instance_type="trn1.32xlarge", nodes=2), Environment("us-east-1", vpc=vpc))
    assert (plan.network_az_ids, plan.az_id) == ((), "use1-az5")


def test_a_block_without_its_end_warns_when_the_checkpoint_cannot_fit() -> None:
    block = CapacityOptions(reservation_id=CR, capacity_block=True, availability_zone_id="use1-az6")
    plan = plan_training(TrainingRequest(instance_type="p5.48xlarge", engine="nodes", capacity=block,
                                         grace=GraceInput(900_000, "15 minutes")), US_EAST_1)
    (warning,) = [w for w in plan.warnings if w.id == "capacityBlockGrace"]
    # capacity.json: EC2 warns 40 minutes before the end and terminates from 30 minutes before it (10 apart).
    assert dict(warning.values) == {"grace_minutes": 15.0, "warning_minutes": 40, "termination_minutes": 30,
                                    "window_minutes": 10, "remedy": "give capacity.block_end so the group scales in early"}


@pytest.mark.parametrize(("request_", "environment", "match"), [
    (TrainingRequest(instance_type="trn1.32xlarge", nodes=0), US_EAST_1, r"nodes \(0\) must be a whole number from 1"),
    (TrainingRequest(instance_type="trn1.32xlarge", engine="k8s"), US_EAST_1, r"engine \('k8s'\) must be one of"),
    (TrainingRequest(instance_type="trn1.32xlarge", nodes=2, purchase=PurchaseOptions(option="spot")), US_EAST_1,
     r"purchase \('spot'\)"),
    (TrainingRequest(instance_type="trn1.32xlarge", schedule=ScaleSchedule(stop="0 20 * * 1-5", start="0 8 * * 1-5")),
     US_EAST_1, "schedule with engine='batch'"),
    (TrainingRequest(instance_type="trn1.32xlarge", engine="nodes", job=JobOptions()), US_EAST_1,
     "job: JobOptions configure the Batch job definition"),
    (TrainingRequest(instance_type="trn1.32xlarge", engine="nodes", purchase=PurchaseOptions(option="spot"),
                     capacity=CapacityOptions(reservation_id=CR, availability_zone_id="use1-az5")), US_EAST_1,
     r"purchase \('spot'\) with capacity"),
    (TrainingRequest(instance_type="trn1.32xlarge", availability_zone_id="use1-az4"),
     Environment("us-east-1", vpc=VpcFacts(vpc_id="vpc-0123", az_ids=None)),
     r"availability_zone_id \(use1-az4\): the VPC you brought does not pin its subnets by AZ ID"),
    (TrainingRequest(instance_type="trn1.32xlarge", availability_zone_id="use1-az4"), Environment(),
     r"availability_zone_id \(use1-az4\): the stack is env-agnostic"),
    (TrainingRequest(instance_type="trn1.32xlarge", engine="batch", grace=GraceInput(None, "a token")), US_EAST_1,
     "checkpoint_grace_period: engine='batch' writes it"),
    (TrainingRequest(instance_type="trn1.32xlarge", grace=GraceInput(10_000, "10 seconds")), US_EAST_1,
     r"checkpoint_grace_period \(10 seconds\) must be a whole number of seconds from 30 s"),
    (TrainingRequest(instance_type="inf2.xlarge"), US_EAST_1, "inf2.xlarge cannot train"),
    (TrainingRequest(instance_type="trn1.32xlarge"),
     Environment("us-east-1", vpc=VpcFacts(vpc_id="vpc-0123", az_ids=None, private_subnets=0, isolated_subnets=0)),
     "vpc has no private or isolated subnets; cluster nodes never get public IPs"),
    # 11:30 end - 30 min (EC2 starts terminating) - 10 min (the default grace) = 10:50, in 2020: refused.
    (TrainingRequest(instance_type="p5.48xlarge", engine="nodes", capacity=CapacityOptions(
        reservation_id=CR, capacity_block=True, availability_zone_id="use1-az6", block_end="2020-01-08T11:30:00+00:00")),
     US_EAST_1, r"the scale-in before the block's end would be at 2020-01-08 10:50 UTC, which has passed"),
])
def test_a_bad_combination_is_refused_by_the_plan(request_: TrainingRequest, environment: Environment,
                                                  match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        plan_training(request_, environment)


# --------------------------------------------------------------------------------------------
# plan_fleet: its option groups (LoadBalancerOptions, ScalingOptions, FleetAlarmOptions) live in modules that
# import aws_cdk for their Duration and certificate fields, so these tests load it; nothing is synthesized.
# --------------------------------------------------------------------------------------------

def fleet_request(**given):
    from mlcdk.constructs.fleet_options import FleetAlarmOptions, LoadBalancerOptions, ScalingOptions
    from mlcdk.constructs.plan_fleet import FleetRequest

    return FleetRequest(LoadBalancerOptions(), given.pop("scaling", ScalingOptions()), FleetAlarmOptions(), **given)


def test_nvidia_serving_preset_plans_a_mixed_fleet_across_the_offered_azs() -> None:
    from mlcdk.constructs.model_plan import CacheVolume
    from mlcdk.constructs.plan_fleet import plan_fleet

    plan = plan_fleet(fleet_request(preset="serving-nvidia", engine="nodes", model_server_command="serve"), US_EAST_1)
    assert (plan.spec.instance_type, plan.min_capacity, plan.max_capacity) == ("g6.xlarge", 1, 4)
    assert plan.purchase == PurchaseOptions(option="mixed", on_demand_base_capacity=1)
    assert plan.fallbacks == ("g6.2xlarge", "g5.xlarge", "g5.2xlarge")
    assert plan.network_az_ids == plan.subnet_az_ids == ("use1-az1", "use1-az2", "use1-az4")
    assert (plan.ami.parameter, plan.grace_seconds, plan.model) == (NVIDIA_DLAMI, 600, None)
    assert plan.cache == CacheVolume(200, 125, "/var/lib/mlcdk/models")
    assert warning_ids(plan) == []


def test_a_fleet_with_a_reservation_runs_in_its_one_az_and_says_so() -> None:
    from mlcdk.constructs.plan_fleet import plan_fleet

    plan = plan_fleet(fleet_request(instance_type="g6.xlarge", engine="nodes", model_server_command="serve",
                                    capacity=CapacityOptions(reservation_id=CR, availability_zone_id="use1-az2")),
                      US_EAST_1)
    assert plan.subnet_az_ids == ("use1-az2",)
    assert warning_ids(plan) == ["singleAzFleet"]
    assert plan.warnings[0].value("az_id") == "use1-az2"


def test_nodes_engine_without_a_server_command_is_warned_about() -> None:
    from mlcdk.constructs.plan_fleet import plan_fleet

    plan = plan_fleet(fleet_request(instance_type="g6.xlarge", engine="nodes"), US_EAST_1)
    assert warning_ids(plan) == ["noModelServer"]


@pytest.mark.parametrize(("given", "match"), [
    (dict(instance_type="g6.xlarge", engine="nodes", capacity=CapacityOptions(reservation_id=CR)),
     "a fleet with a reservation target needs capacity.availability_zone_id"),
    (dict(instance_type="g6.xlarge", engine="ecs"), "model: engine='ecs' .the default. serves a model with vLLM"),
    (dict(instance_type="g6.xlarge", engine="nodes", min_capacity=3, max_capacity=2),
     r"min_capacity \(3\) must not exceed max_capacity \(2\)"),
    (dict(preset="llm-pretrain-trainium"), "InferenceFleet"),
    (dict(instance_type="g6.xlarge", engine="nodes", vpc=True), "vpc has no private subnets; model servers never"),
])
def test_a_bad_fleet_is_refused_by_the_plan(given: dict, match: str) -> None:
    from mlcdk.constructs.plan_fleet import plan_fleet

    environment, given = US_EAST_1, dict(given)
    if given.pop("vpc", False):  # a brought VPC with only public subnets
        environment = Environment("us-east-1", vpc=VpcFacts(vpc_id="vpc-0123", az_ids=None, private_subnets=0,
                                                            isolated_subnets=2))
    with pytest.raises(ConfigurationError, match=match):
        plan_fleet(fleet_request(**given), environment)
