"""TrainingCluster(engine="batch"): the job's image must drive the cluster's accelerator, checked at synth.

The default image is the first DLC of data/containers.json that drives every type the compute environment may
launch; an image the user passes is checked through its DLC-style tag, and warned about when it has none.
"""
from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match

from mlcdk import JobOptions, TrainingCluster
from mlcdk.fetch import image_lists
from mlcdk.presets import images
from tests.harness import assert_refused, cli_context

REGION = "us-east-1"
CUDA_13_3 = "public.ecr.aws/deep-learning-containers/pytorch:2.13.0-cu133-amzn2023"
OLD_CUDA = "public.ecr.aws/deep-learning-containers/pytorch-training:2.5.1-gpu-py311-cu124-ubuntu22.04-ec2"
OLD_NEURON = "public.ecr.aws/neuron/pytorch-training-neuronx:2.1.2-neuronx-py310-sdk2.18.2-ubuntu20.04"


def stack(name: str = "Jobs") -> cdk.Stack:
    return cdk.Stack(cdk.App(context=cli_context()), name, env=cdk.Environment(region=REGION))


def job_image(cluster: TrainingCluster) -> str:
    definition = cdk.Stack.of(cluster).resolve(cluster.job_definition.node.default_child.node_properties)
    return definition["nodeRangeProperties"][0]["container"]["image"]


def warnings(scope: cdk.Stack) -> list[str]:
    return [str(w.entry.data) for w in cdk.assertions.Annotations.from_stack(scope).find_warning(
        "*", Match.any_value())]


def test_p6_b200_runs_the_cuda_13_image():
    cluster = TrainingCluster(stack(), "Cluster", instance_type="p6-b200.48xlarge", nodes=2)
    assert job_image(cluster) == CUDA_13_3


def test_a_default_image_too_old_for_blackwell_is_refused_at_synth(tmp_path, monkeypatch):
    """Were the bundled GPU default still CUDA 12.4 (PyTorch 2.5.1), a p6-b200 cluster must not synthesize."""
    document = json.loads(image_lists.CONTAINERS.read_text())
    document["images"][0].update(uri=OLD_CUDA, cuda="12.4")
    (tmp_path / "containers.json").write_text(json.dumps(document))
    monkeypatch.setenv(images.IMAGES_ENV, str(tmp_path / "containers.json"))
    assert_refused(TrainingCluster, r"instance_type: no default training image drives p6-b200.48xlarge: .*"
                                    r"it has CUDA 12.4, and the B200 .* needs CUDA 12.8 or later",
                   instance_type="p6-b200.48xlarge", nodes=2)


@pytest.mark.parametrize(("instance_type", "image", "says"), [
    ("p6-b200.48xlarge", OLD_CUDA, r"job.image \('.*cu124.*'\) cannot drive p6-b200.48xlarge: it has CUDA 12.4, and "
                                   r"the B200 \(Blackwell, compute capability 10.0\) needs CUDA 12.8 or later"),
    ("trn2.48xlarge", OLD_NEURON, r"cannot drive trn2.48xlarge: it has Neuron SDK 2.18.2, and Trainium2 \(trn2\) "
                                  r"needs Neuron SDK 2.21.0 or later"),
    ("p5.48xlarge", OLD_NEURON, r"cannot drive p5.48xlarge: it is for neuron instances, and p5.48xlarge is gpu"),
])
def test_a_given_dlc_image_that_cannot_drive_the_accelerator_is_refused(instance_type, image, says):
    region = "us-east-2" if instance_type.startswith("trn2") else REGION  # trn2: ap-south-2 and us-east-2
    assert_refused(TrainingCluster, says, region=region, instance_type=instance_type, nodes=2,
                   job=JobOptions(image=image))


def test_volta_has_no_default_image_and_a_cuda_12_6_image_is_accepted():
    assert_refused(TrainingCluster, r"instance_type: no default training image drives p3.16xlarge: .*PyTorch "
                                    r"builds for CUDA above 12.6 no longer carry the V100.* Pass job.image",
                   instance_type="p3.16xlarge", nodes=2)
    cluster = TrainingCluster(stack(), "Cluster", instance_type="p3.16xlarge", nodes=2,
                              job=JobOptions(image="public.ecr.aws/acme/train:2.6.0-gpu-py312-cu126-ubuntu22.04"))
    assert job_image(cluster) == "public.ecr.aws/acme/train:2.6.0-gpu-py312-cu126-ubuntu22.04"


def test_an_image_that_cannot_be_inspected_is_used_with_a_warning_naming_what_it_needs():
    scope = stack("Unchecked")
    cluster = TrainingCluster(scope, "Cluster", instance_type="p6-b200.48xlarge", nodes=2,
                              job=JobOptions(image="nvcr.io/nvidia/pytorch:25.01-py3"))
    assert job_image(cluster) == "nvcr.io/nvidia/pytorch:25.01-py3"
    assert [w for w in warnings(scope) if w.startswith(
        "job.image (nvcr.io/nvidia/pytorch:25.01-py3) cannot be inspected at synth: its tag names no CUDA (cuNNN) or "
        "Neuron SDK (sdkX.Y.Z) version. To drive p6-b200.48xlarge it needs CUDA 12.8 or later (B200, compute "
        "capability 10.0); `mlcdk check` tests it on the deployed cluster")]
    default = stack("Default")
    TrainingCluster(default, "Cluster", instance_type="p6-b200.48xlarge", nodes=2)
    assert not [w for w in warnings(default) if "cannot be inspected" in w]


def test_the_nodes_engine_runs_no_container_so_volta_is_fine_there():
    cluster = TrainingCluster(stack(), "Cluster", engine="nodes", instance_type="p3.16xlarge", nodes=2)
    assert cluster.job_definition is None
