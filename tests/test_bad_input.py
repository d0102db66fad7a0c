"""Bad input never becomes a broken deploy: one table of invalid configurations across the constructs,
preset files, the app's context flags and the CLI. Each is a ConfigurationError (or, from the CLI, exit
2 with one line and no traceback) whose message names the parameter, the bad value and what is allowed.
"""
from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from mlcdk import (
    CapacityOptions, ConfigurationError, InferenceFleet, LoadBalancerOptions, PurchaseOptions, ScalingOptions, StorageOptions, TrainingCluster,
)
from mlcdk.cli import app as cli
from mlcdk.constructs.options import DataRepositoryLink, ExistingFileSystem, SharedStorageOptions
from mlcdk.presets import workloads
from mlcdk.settings import read_settings
from tests.harness import cli_context


def training(**kwargs):
    region = kwargs.pop("region", "us-east-1")
    stack = cdk.Stack(cdk.App(context=cli_context()), "Bad", env=cdk.Environment(region=region))
    TrainingCluster(stack, "Cluster", **kwargs)


def training_in_vpc(vpc_id, **kwargs):
    stack = cdk.Stack(cdk.App(context=cli_context()), "Bad", env=cdk.Environment(region="us-east-1"))
    vpc = ec2.Vpc.from_vpc_attributes(stack, "Vpc", vpc_id=vpc_id, availability_zones=["us-east-1a"],
                                      private_subnet_ids=["subnet-0aaa"])
    TrainingCluster(stack, "Cluster", vpc=vpc, **kwargs)


def fleet(**kwargs):
    region = kwargs.pop("region", "us-east-1")
    stack = cdk.Stack(cdk.App(context=cli_context()), "Bad", env=cdk.Environment(region=region))
    InferenceFleet(stack, "Fleet", **kwargs)


def preset_file(tmp_path, entry):
    path = tmp_path / "presets.json"
    path.write_text(json.dumps({"presets": {"team": entry}}))
    return workloads.load_presets(path)


GOOD_PRESET = {"description": "d", "task": "inference", "instance_type": "g6.xlarge", "purchase_option": "spot",
               "min_capacity": 1, "max_capacity": 2, "source": "https://example.com", "reason": "r"}

#: (id, call, expected message): (parameter, bad value, what is allowed) all appear in the message.
CASES = [
    # misspelled instance types and presets
    ("cluster-type-typo", lambda t: training(instance_type="p5.48xlage"), "instance_type: unknown instance type 'p5.48xlage'; did you mean 'p5.48xlarge'"),
    ("cluster-preset-typo", lambda t: training(preset="finetune-trainum"), "preset: unknown preset 'finetune-trainum'; did you mean 'finetune-trainium'"),
    ("fleet-type-typo", lambda t: fleet(instance_type="g6x.large"), "instance_type: unknown instance type 'g6x.large'"),
    ("fleet-preset-typo", lambda t: fleet(preset="serving-nvida"), "preset: unknown preset 'serving-nvida'; did you mean 'serving-nvidia'"),
    ("context-type-typo", lambda t: read_settings({"instance_type": "trn1.32xl"}), "instance_type: unknown instance type 'trn1.32xl'"),
    ("context-preset-typo", lambda t: read_settings({"inference_preset": "cpu-inferense"}), "inference_preset: unknown preset 'cpu-inferense'; did you mean 'cpu-inference'"),
    # types not offered in the region or AZ
    ("cluster-not-in-region", lambda t: training(instance_type="trn1.32xlarge", region="eu-west-1"), "trn1.32xlarge is not offered in eu-west-1; it is offered in ap-south-1"),
    ("cluster-not-in-az", lambda t: training(instance_type="trn1.32xlarge", availability_zone_id="use1-az2"), "availability_zone_id: trn1.32xlarge is not offered in use1-az2; in us-east-1 it is offered in use1-az4"),
    ("fleet-not-in-region", lambda t: fleet(instance_type="inf2.xlarge", region="af-south-1"), "inf2.xlarge is not offered in af-south-1"),
    ("fleet-one-az", lambda t: fleet(instance_type="trn1n.32xlarge"), "trn1n.32xlarge is offered in only one AZ of us-east-1"),
    ("context-not-in-region", lambda t: read_settings({"region": "eu-west-1"}), "instance_type: trn1.32xlarge is not offered in eu-west-1"),
    ("context-unknown-region", lambda t: read_settings({"region": "us-easst-1"}), "region: unknown region 'us-easst-1'; did you mean 'us-east-1'"),
    # zero, negative and huge counts; min > max
    ("cluster-zero-nodes", lambda t: training(instance_type="g5.xlarge", nodes=0), "nodes (0) must be a whole number from 1 to 512"),
    ("cluster-negative-nodes", lambda t: training(instance_type="g5.xlarge", nodes=-1), "nodes (-1) must be a whole number from 1 to 512"),
    ("cluster-huge-nodes", lambda t: training(instance_type="g5.xlarge", nodes=100000), "nodes (100000) must be a whole number from 1 to 512"),
    ("cluster-fractional-nodes", lambda t: training(instance_type="g5.xlarge", nodes=2.5), "nodes (2.5) must be a whole number"),
    ("fleet-min-over-max", lambda t: fleet(instance_type="g6.xlarge", min_capacity=4, max_capacity=2), "min_capacity (4) must not exceed max_capacity (2)"),
    ("fleet-negative-min", lambda t: fleet(instance_type="g6.xlarge", min_capacity=-2), "min_capacity (-2) must be a whole number of at least 0"),
    ("fleet-huge-max", lambda t: fleet(instance_type="g6.xlarge", max_capacity=5000), "max_capacity (5000) must be a whole number from 1 to 1000"),
    ("context-nodes-word", lambda t: read_settings({"nodes": "four"}), "nodes ('four') must be a whole number from 1 to 512"),
    ("context-nodes-zero", lambda t: read_settings({"nodes": "0"}), "nodes (0) must be from 1 to 512"),
    ("context-min-over-max", lambda t: read_settings({"min_capacity": "9", "max_capacity": "3"}), "min_capacity (9) must not exceed max_capacity (3)"),
    ("context-capacity-float", lambda t: read_settings({"max_capacity": "2.5"}), "max_capacity ('2.5') must be a whole number from 1 to 1000"),
    # bad e-mails, ports, paths and budgets
    ("cluster-bad-email", lambda t: training(instance_type="g5.xlarge", alarm_emails=["team@"]), "alarm_emails ('team@') is not an e-mail address"),
    ("fleet-bad-email", lambda t: fleet(instance_type="g6.xlarge", alarm_emails=["a b@c.com"]), "alarm_emails ('a b@c.com') is not an e-mail address"),
    ("context-bad-email", lambda t: read_settings({"alarm_email": "ops.example.com"}), "alarm_email ('ops.example.com') is not an e-mail address"),
    ("fleet-port-zero", lambda t: fleet(instance_type="g6.xlarge", port=0), "port (0) must be from 1 to 65535"),
    ("fleet-port-huge", lambda t: fleet(instance_type="g6.xlarge", port=65536), "port (65536) must be from 1 to 65535"),
    ("fleet-path-relative", lambda t: fleet(instance_type="g6.xlarge", health_check_path="ping"), "health_check_path ('ping') must start with '/'"),
    ("cluster-mount-relative", lambda t: training(instance_type="g5.xlarge", storage=StorageOptions(data_volume_size_gib=10, data_mount_point="scratch")), "storage.data_mount_point ('scratch') must be an absolute path"),
    ("cluster-volume-huge", lambda t: training(instance_type="g5.xlarge", storage=StorageOptions(data_volume_size_gib=70000)), "storage.data_volume_size_gib (70000) must be from 1 to 16384"),
    ("cluster-root-tiny", lambda t: training(instance_type="g5.xlarge", storage=StorageOptions(root_volume_size_gib=2)), "storage.root_volume_size_gib (2) must be from 8 to 16384"),
    ("cluster-negative-budget", lambda t: training(instance_type="g5.xlarge", max_hourly_cost_usd=-1), "guardrails.max_hourly_cost_usd (-1) must be positive"),
    ("cluster-zero-budget", lambda t: training(instance_type="g5.xlarge", max_hourly_cost_usd=0), "guardrails.max_hourly_cost_usd (0) must be positive"),
    # options that contradict the type
    ("cluster-efa-unsupported", lambda t: training(instance_type="g5.2xlarge", efa=True), "efa: g5.2xlarge does not support EFA"),
    ("cluster-bad-purchase", lambda t: training(instance_type="g5.xlarge", purchase=PurchaseOptions(option="savings")), "purchase.option ('savings') must be one of on-demand, spot, mixed"),
    ("cluster-amd-gpu", lambda t: training(instance_type="g4ad.4xlarge"), "instance_type: TrainingCluster runs NVIDIA GPUs, AWS Neuron devices or CPUs; g4ad.4xlarge has AMD Radeon Pro V520 accelerators"),
    ("fleet-gaudi", lambda t: fleet(instance_type="dl1.24xlarge"), "instance_type: InferenceFleet runs NVIDIA GPUs, AWS Neuron devices or CPUs; dl1.24xlarge has Habana Gaudi HL-205 accelerators"),
    # capacity you hold: reservations and Capacity Blocks
    ("capacity-bad-id", lambda t: training(instance_type="p5.48xlarge", nodes=2, capacity=CapacityOptions(reservation_id="cr-12")), "capacity.reservation_id ('cr-12') must be 'cr-' followed by 17 lowercase hexadecimal digits"),
    ("capacity-block-no-type", lambda t: training(instance_type="g6.xlarge", capacity=CapacityOptions(reservation_id="cr-0123456789abcdef0", capacity_block=True, availability_zone_id="use1-az1")), "capacity.capacity_block: Capacity Blocks for ML are not sold for g6.xlarge"),
    ("capacity-block-placement", lambda t: training(instance_type="p5.48xlarge", nodes=2, placement_group=True, capacity=CapacityOptions(reservation_id="cr-0123456789abcdef0", capacity_block=True, availability_zone_id="use1-az6")), "placement_group=True with a Capacity Block"),
    ("capacity-block-other-az", lambda t: training(instance_type="p5.48xlarge", nodes=2, availability_zone_id="use1-az1", capacity=CapacityOptions(reservation_id="cr-0123456789abcdef0", capacity_block=True, availability_zone_id="use1-az6")), "availability_zone_id (use1-az1) differs from capacity.availability_zone_id (use1-az6)"),
    ("capacity-spot", lambda t: training(instance_type="g5.xlarge", purchase=PurchaseOptions(option="spot"), capacity=CapacityOptions(reservation_id="cr-0123456789abcdef0")), "purchase ('spot') with capacity: reserved capacity runs on-demand nodes"),
    ("capacity-open-target", lambda t: training(instance_type="g5.xlarge", capacity=CapacityOptions(reservation_id="cr-0123456789abcdef0", preference="open")), "capacity.preference ('open') cannot go with a reservation target"),
    ("capacity-price-inf", lambda t: training(instance_type="g5.xlarge", capacity=CapacityOptions(reservation_id="cr-0123456789abcdef0", hourly_price_usd=float("inf"))), "capacity.hourly_price_usd (inf) must be a positive, finite number"),
    ("fleet-capacity-no-az", lambda t: fleet(instance_type="inf2.xlarge", capacity=CapacityOptions(reservation_id="cr-0123456789abcdef0")), "capacity: a fleet with a reservation target needs capacity.availability_zone_id"),
    # shared storage (FSx for Lustre)
    ("storage-capacity", lambda t: training(instance_type="g5.xlarge", shared_storage=SharedStorageOptions(storage_capacity_gib=1000)), "shared_storage.storage_capacity_gib (1000) must be 1200, 2400 or a multiple of 2400 GiB for PERSISTENT_2"),
    ("storage-throughput", lambda t: training(instance_type="g5.xlarge", shared_storage=SharedStorageOptions(throughput_mbps_per_tib=100)), "shared_storage.throughput_mbps_per_tib (100) must be one of 125, 250, 500, 1000 for PERSISTENT_2"),
    ("storage-nine-links", lambda t: training(instance_type="g5.xlarge", shared_storage=SharedStorageOptions(data_repositories=tuple(DataRepositoryLink(f"s3://example-data-{i}/", f"/data{i}") for i in range(8)))), "shared_storage: 9 data repository associations (the checkpoint link and 8 data_repositories) is more than FSx allows (8)"),
    ("storage-relative-path", lambda t: training(instance_type="g5.xlarge", shared_storage=SharedStorageOptions(data_repositories=(DataRepositoryLink("s3://example-data/", "data"),))), "shared_storage.data_repositories[0].path ('data') must be an absolute file-system path"),
    ("storage-scratch-1-links", lambda t: training(instance_type="g5.xlarge", shared_storage=SharedStorageOptions(deployment_type="SCRATCH_1")), "shared_storage.deployment_type ('SCRATCH_1') cannot have data repository associations"),
    ("storage-other-vpc", lambda t: training_in_vpc("vpc-0aaa", instance_type="g5.xlarge", shared_storage=SharedStorageOptions(existing_file_system=ExistingFileSystem("fs-0123456789abcdef0", "fs.example", "abcdefgh", "sg-0123456789abcdef0", vpc_id="vpc-0bbb"))), "shared_storage.existing_file_system.vpc_id (vpc-0bbb) is not the cluster's VPC (vpc-0aaa)"),
    ("context-storage-capacity", lambda t: read_settings({"shared_storage_gib": "3000"}), "shared_storage_gib (3000) must be 1200, 2400 or a multiple of 2400 GiB"),
    ("fleet-public-no-tls", lambda t: fleet(instance_type="g6.xlarge", load_balancer=LoadBalancerOptions(internet_facing=True)), "load_balancer: an internet-facing fleet needs a certificate"),
    ("fleet-waf-on-nlb", lambda t: fleet(instance_type="g6.xlarge", scaling=ScalingOptions(signal="cpu"), load_balancer=LoadBalancerOptions(kind="network", web_acl_arn="arn:aws:wafv2:us-east-1:123456789012:regional/webacl/api/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b")), "load_balancer.web_acl_arn: AWS WAF protects application load balancers only"),
    ("fleet-waf-not-an-arn", lambda t: fleet(instance_type="g6.xlarge", load_balancer=LoadBalancerOptions(web_acl_arn="my-acl")), "load_balancer.web_acl_arn ('my-acl') must be a regional WAFv2 web ACL ARN"),
    ("context-bad-purchase", lambda t: read_settings({"purchase_option": "reserved"}), "purchase_option ('reserved') must be one of on-demand, spot, mixed"),
    ("context-bad-account", lambda t: read_settings({"region": "us-east-1", "account": "abc"}), "account ('abc') must be a 12-digit AWS account ID"),
    ("context-bad-stacks", lambda t: read_settings({"stacks": "Training"}), "stacks ('Training') must be TrainingStack and/or InferenceStack"),
    # malformed custom preset files
    ("preset-unknown-field", lambda t: preset_file(t, {**GOOD_PRESET, "gpu": 1}), "presets['team']: unknown field 'gpu'"),
    ("preset-wrong-type", lambda t: preset_file(t, {**GOOD_PRESET, "min_capacity": "1"}), "presets['team']: field 'min_capacity' should be int, got '1'"),
    ("preset-unknown-type", lambda t: preset_file(t, {**GOOD_PRESET, "instance_type": "g9.xlarge"}), "presets['team']: field 'instance_type' is invalid: "),
    ("preset-missing-field", lambda t: preset_file(t, {k: v for k, v in GOOD_PRESET.items() if k != "task"}), "presets['team']: missing field 'task'"),
]


@pytest.mark.parametrize(("call", "message"), [(c, m) for _, c, m in CASES], ids=[i for i, _, _ in CASES])
def test_invalid_configuration_is_a_configuration_error_naming_the_value(tmp_path, call, message):
    with pytest.raises(ConfigurationError) as error:
        call(tmp_path)
    assert message in str(error.value)


def test_the_table_has_at_least_40_cases_and_the_readme_says_how_many():
    import re
    from pathlib import Path

    assert len(CASES) >= 40
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert re.search(r"a table of (\d+) invalid configurations", readme).group(1) == str(len(CASES))


CLI_CASES = [
    (["catalog", "show", "trn1.32xlarg"], "error: instance_type: unknown instance type 'trn1.32xlarg'"),
    (["catalog", "list", "--region", "mars-1"], "error: --region: unknown region 'mars-1'"),
    (["presets", "show", "nope"], "error: preset: unknown preset 'nope'"),
    (["advise", "--task", "training", "--params", "-3B", "--region", "us-east-1"], "error: --params"),
    (["advise", "--task", "teaching", "--params", "7B"], "error: --task"),
    (["advise", "--task", "inference", "--params", "7B", "--precision", "fp7"], "error: --precision"),
]


@pytest.mark.parametrize(("args", "first_line"), CLI_CASES, ids=[" ".join(a[:2]) + f"#{i}" for i, (a, _) in enumerate(CLI_CASES)])
def test_cli_exits_2_with_one_clear_line_and_no_traceback(args, first_line):
    result = CliRunner().invoke(cli, args)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2
    assert len(lines) == 1 and lines[0].startswith(first_line), result.output
    assert "Traceback" not in result.output


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=st.sampled_from(["nodes", "min_capacity", "max_capacity"]),
       value=st.one_of(st.integers(max_value=-1), st.integers(min_value=100_001), st.text(min_size=1).filter(
           lambda s: not s.strip().lstrip("+-").isdecimal() or int(s) < 0 or int(s) > 100_000)))
def test_any_invalid_count_in_context_is_a_configuration_error(key, value):
    with pytest.raises(ConfigurationError):
        read_settings({key: value})


@settings(max_examples=40, deadline=None)
@given(name=st.text(min_size=1, max_size=20).filter(lambda s: s.strip() and s not in workloads.builtin_presets()))
def test_any_unknown_preset_name_is_a_configuration_error(name):
    with pytest.raises(ConfigurationError, match="preset"):
        read_settings({"preset": name})
