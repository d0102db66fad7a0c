"""Constructs built from a workload use the advisor's top recommendation for the stack's region."""
from __future__ import annotations

import aws_cdk as cdk
import pytest

from mlcdk import ConfigurationError, InferenceFleet, TrainingCluster
from mlcdk.advice.advisor import advise
from mlcdk.presets.sizing import Workload
from tests.harness import cli_context


def stack(region: str | None = "us-east-1") -> cdk.Stack:
    return cdk.Stack(cdk.App(context=cli_context()), "W", env=cdk.Environment(region=region) if region else None)


def test_training_cluster_from_a_70b_workload_is_the_advisors_multi_node_pick_for_the_region():
    workload = Workload(task="training", params="70B", accelerator="trainium")
    cluster = TrainingCluster.from_workload(stack("us-west-2"), "Pretrain", workload=workload)
    top = advise(Workload(task="training", params="70B", accelerator="trainium", regions="us-west-2"))[0]
    assert (cluster.spec.instance_type, cluster.nodes) == (top.instance_type, top.nodes)
    assert cluster.nodes > 1 and cluster.efa and cluster.recommendation.region == "us-west-2"


def test_spot_workloads_become_spot_clusters():
    cluster = TrainingCluster.from_workload(stack(), "Tune", workload=Workload(task="lora", params="7B",
                                                                                accelerator="nvidia", purchase_option="spot",
                                                                                rank_by="hourly"))
    assert cluster.purchase.option == "spot"


def test_inference_fleet_from_a_workload():
    workload = Workload(task="inference", model="llama-3-8b", accelerator="inferentia")
    fleet = InferenceFleet.from_workload(stack("us-east-1"), "Serve", workload=workload, max_capacity=3,
                                         engine="nodes")
    top = advise(Workload(task="inference", model="llama-3-8b", accelerator="inferentia", regions="us-east-1"))[0]
    assert fleet.spec.instance_type == top.instance_type and fleet.max_capacity == 3


@pytest.mark.parametrize(("build", "message"), [
    (lambda: TrainingCluster.from_workload(stack(), "X", workload=Workload(task="inference", params="7B")),
     r"workload.task \('inference'\) does not suit TrainingCluster"),
    (lambda: TrainingCluster.from_workload(stack(None), "X", workload=Workload(task="training", params="7B")),
     r"workload.regions: the stack is env-agnostic"),
    (lambda: TrainingCluster.from_workload(stack("us-east-1"), "X", workload=Workload(
        task="training", params="70B", accelerator="trainium", max_nodes=2)),
     r"workload \(training 70B bf16 in us-east-1\): nothing fits in 2 node\(s\); raise max_nodes to 3 "
     r"\(then: 3 x trn1.32xlarge in us-east-1"),
])
def test_workloads_that_cannot_be_realized_fail_at_construction(build, message):
    with pytest.raises(ConfigurationError, match=message):
        build()


def test_a_workload_for_another_region_than_the_stacks_is_refused():
    workload = Workload(task="training", params="7B", accelerator="nvidia", regions="eu-west-1")
    with pytest.raises(ConfigurationError, match=r"workload.regions \(eu-west-1\) does not include the stack's region "
                                                 r"\(us-west-2\); give the workload regions='us-west-2'"):
        TrainingCluster.from_workload(stack("us-west-2"), "X", workload=workload)
    cluster = TrainingCluster.from_workload(stack("eu-west-1"), "Y", workload=workload)
    assert cluster.recommendation.region == "eu-west-1"
