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
    CapacityOptions, ConfigurationError, FleetAlarmOptions, GuardrailOptions, InferenceFleet, JobOptions, LoadBalancerOptions,
    PrivateNetwork, PurchaseOptions, ScaleSchedule, ScalingOptions, StorageOptions, TrainingCluster,
)
from mlcdk.cli import app as cli
from mlcdk.constructs.nag import add_checks
from mlcdk.constructs.options import DataRepositoryLink, ExistingFileSystem, SharedStorageOptions
from mlcdk.presets import catalog, workloads
from mlcdk.presets.sizing import Workload
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
    """The fleet rows test the group engine's options (the ECS engine's bad input is in test_model_options.py)."""
    region = kwargs.pop("region", "us-east-1")
    kwargs.setdefault("engine", "nodes")
    stack = cdk.Stack(cdk.App(context=cli_context()), "Bad", env=cdk.Environment(region=region))
    InferenceFleet(stack, "Fleet", **kwargs)


def preset_file(tmp_path, entry):
    path = tmp_path / "presets.json"
    path.write_text(json.dumps({"presets": {"team": entry}}))
    return workloads.load_presets(path)


def token_nodes():
    stack = cdk.Stack(cdk.App(context=cli_context()), "Bad", env=cdk.Environment(region="us-east-1"))
    nodes = cdk.CfnParameter(stack, "Nodes", type="Number", default=2).value_as_number
    TrainingCluster(stack, "Cluster", instance_type="g5.xlarge", nodes=nodes, engine="nodes")


def preset_file_named(tmp_path, name):
    path = tmp_path / "presets.json"
    path.write_text(json.dumps({"presets": {name: GOOD_PRESET}}))
    return workloads.load_presets(path)


def corrupt_catalog(tmp_path, name, text):
    """A snapshot directory whose ``name`` is replaced by ``text`` (None: removed), loaded as a refreshed one."""
    from mlcdk.presets import catalog

    for file in catalog.SNAPSHOT_FILES:
        (tmp_path / file).write_text((catalog.DATA_DIR / file).read_text())
    if text is None:
        (tmp_path / name).unlink()
    else:
        (tmp_path / name).write_text(text)
    catalog.load_catalog(tmp_path)


def raw_preset_file(tmp_path, content: bytes):
    path = tmp_path / "presets.json"
    path.write_bytes(content)
    return workloads.load_presets(path)


def text_file(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return workloads.load_presets(path)


def edited_catalog(tmp_path, name, edit):
    """A snapshot directory whose ``name`` is the bundled one after ``edit(document)``, loaded as a refreshed one."""
    document = json.loads((catalog.DATA_DIR / name).read_text())
    edit(document)
    corrupt_catalog(tmp_path, name, json.dumps(document))


def in_account(**kwargs):
    stack = cdk.Stack(cdk.App(context=cli_context()), "Bad", env=cdk.Environment(account="123456789012",
                                                                                  region="us-east-1"))
    TrainingCluster(stack, "Cluster", **kwargs)


def _negative_efa(document):
    document["instance_types"]["p5.48xlarge"]["maximum_efa_interfaces"] = -1


GROUP_ARN = "arn:aws:resource-groups:us-east-1:123456789012:group/reservations"
CR = "cr-0123456789abcdef0"
DEEP = "a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 10)
                                                  + "]\n" for i in range(9))

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
    ("fleet-negative-min", lambda t: fleet(instance_type="g6.xlarge", min_capacity=-2), "min_capacity (-2) must be a whole number from 0 to 1000"),
    ("fleet-huge-max", lambda t: fleet(instance_type="g6.xlarge", max_capacity=5000), "max_capacity (5000) must be a whole number from 1 to 1000"),
    ("context-nodes-word", lambda t: read_settings({"nodes": "four"}), "nodes ('four') must be a whole number from 1 to 512"),
    ("context-nodes-zero", lambda t: read_settings({"nodes": "0"}), "nodes (0) must be from 1 to 512"),
    ("context-min-over-max", lambda t: read_settings({"min_capacity": "9", "max_capacity": "3"}), "min_capacity (9) must not exceed max_capacity (3)"),
    ("context-capacity-float", lambda t: read_settings({"max_capacity": "2.5"}), "max_capacity ('2.5') must be a whole number from 1 to 1000"),
    # bad e-mails, ports, paths and budgets
    ("cluster-bad-email", lambda t: training(instance_type="g5.xlarge", alarm_emails=["team@"]), "alarm_emails ('team@') is not an e-mail address"),
    ("fleet-bad-email", lambda t: fleet(instance_type="g6.xlarge", alarm_emails=["a b@c.com"]), "alarm_emails ('a b@c.com') is not an e-mail address"),
    ("context-bad-email", lambda t: read_settings({"alarm_email": "ops.example.com"}), "alarm_email ('ops.example.com') is not an e-mail address"),
    ("fleet-port-zero", lambda t: fleet(instance_type="g6.xlarge", port=0), "port (0) must be a whole number from 1 to 65535 (a TCP port"),
    ("fleet-port-huge", lambda t: fleet(instance_type="g6.xlarge", port=65536), "port (65536) must be a whole number from 1 to 65535"),
    ("fleet-path-relative", lambda t: fleet(instance_type="g6.xlarge", health_check_path="ping"), "health_check_path ('ping') must start with '/'"),
    ("cluster-mount-relative", lambda t: training(instance_type="g5.xlarge", storage=StorageOptions(data_volume_size_gib=10, data_mount_point="scratch")), "storage.data_mount_point ('scratch') must be an absolute path"),
    ("cluster-volume-huge", lambda t: training(instance_type="g5.xlarge", storage=StorageOptions(data_volume_size_gib=70000)), "storage.data_volume_size_gib (70000) must be a whole number from 1 to 16384 (gp3 volumes are 1 GiB to 16 TiB)"),
    ("cluster-root-tiny", lambda t: training(instance_type="g5.xlarge", storage=StorageOptions(root_volume_size_gib=2)), "storage.root_volume_size_gib (2) must be a whole number from 8 to 16384"),
    ("cluster-negative-budget", lambda t: training(instance_type="g5.xlarge", max_hourly_cost_usd=-1), "max_hourly_cost_usd (-1) must be a number above 0 and at most 1000000"),
    ("cluster-zero-budget", lambda t: training(instance_type="g5.xlarge", max_hourly_cost_usd=0), "max_hourly_cost_usd (0) must be a number above 0 and at most 1000000"),
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
    ("capacity-price-inf", lambda t: training(instance_type="g5.xlarge", capacity=CapacityOptions(reservation_id="cr-0123456789abcdef0", hourly_price_usd=float("inf"))), "capacity.hourly_price_usd (inf) must be a finite number (not NaN or infinity)"),
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
    ("context-bad-compliance-pack", lambda t: read_settings({"compliance_packs": "hipaa,pci"}), "compliance_packs ('pci') must be hipaa and/or pci_dss"),
    ("context-empty-compliance-packs", lambda t: read_settings({"compliance_packs": " , "}), "compliance_packs (' , ') must name hipaa and/or pci_dss"),
    ("type-add-checks-string", lambda t: add_checks(cdk.App(), hipaa="true"), "hipaa ('true') must be True or False"),
    ("type-add-checks-none", lambda t: add_checks(cdk.App(), pci_dss=None), "pci_dss (None) must be True or False"),
    # wrong types, caught by the one parameter check (mlcdk.params) before any resource exists
    ("type-efa-string", lambda t: training(instance_type="g5.xlarge", efa="false"), "efa ('false') must be True or False"),
    ("type-placement-string", lambda t: training(instance_type="p5.48xlarge", nodes=2, placement_group="no"), "placement_group ('no') must be True or False"),
    ("type-nodes-string", lambda t: training(instance_type="g5.xlarge", nodes="4"), "nodes ('4') must be a whole number"),
    ("type-nodes-float", lambda t: training(instance_type="g5.xlarge", nodes=2.0), "nodes (2.0) must be a whole number"),
    ("type-instance-type-blank", lambda t: training(instance_type=""), "instance_type ('') must be a non-blank string"),
    ("type-instance-type-spaces", lambda t: training(instance_type="g5.xlarge "), "instance_type ('g5.xlarge ') must be a string without leading or trailing whitespace"),
    ("type-emails-none", lambda t: training(instance_type="g5.xlarge", alarm_emails=None), "alarm_emails (None) must be a list or tuple of a string"),
    ("type-emails-one-string", lambda t: training(instance_type="g5.xlarge", alarm_emails="ops@example.com"), "alarm_emails ('ops@example.com') must be a list or tuple of a string, not one string"),
    ("type-user-data-string", lambda t: training(instance_type="g5.xlarge", user_data_commands="echo hi"), "user_data_commands ('echo hi') must be a list or tuple of a string, not one string"),
    ("type-removal-policy-string", lambda t: training(instance_type="g5.xlarge", removal_policy="destroy"), "removal_policy ('destroy') must be an aws-cdk RemovalPolicy"),
    ("type-grace-seconds", lambda t: training(instance_type="g5.xlarge", checkpoint_grace_period=600), "checkpoint_grace_period (600) must be an aws-cdk Duration"),
    ("type-purchase-dict", lambda t: training(instance_type="g5.xlarge", purchase={"option": "spot"}), "purchase ({'option': 'spot'}) must be a PurchaseOptions(...) or None"),
    ("type-fallbacks-one-string", lambda t: training(instance_type="g5.xlarge", purchase=PurchaseOptions(fallback_instance_types="g5.2xlarge")), "purchase.fallback_instance_types ('g5.2xlarge') must be a list or tuple of a string, not one string"),
    ("type-base-capacity-string", lambda t: training(instance_type="g5.xlarge", purchase=PurchaseOptions(on_demand_base_capacity="1")), "purchase.on_demand_base_capacity ('1') must be a whole number"),
    ("type-cost-inf", lambda t: training(instance_type="g5.xlarge", max_hourly_cost_usd=float("inf")), "max_hourly_cost_usd (inf) must be a finite number (not NaN or infinity)"),
    ("type-threshold-nan", lambda t: training(instance_type="g5.xlarge", guardrails=GuardrailOptions(high_memory_percent=float("nan"))), "guardrails.high_memory_percent (nan) must be a finite number"),
    ("type-root-volume-float", lambda t: training(instance_type="g5.xlarge", storage=StorageOptions(root_volume_size_gib=100.5)), "storage.root_volume_size_gib (100.5) must be a whole number"),
    ("type-vpc-id-string", lambda t: training(instance_type="g5.xlarge", vpc="vpc-0123"), "vpc ('vpc-0123') must be an aws-cdk ec2.IVpc"),
    ("type-unknown-keyword", lambda t: training(instance_type="g5.xlarge", gpus=8), "TrainingCluster: got an unexpected keyword argument 'gpus'"),
    ("type-fleet-port-string", lambda t: fleet(instance_type="g6.xlarge", port="8080"), "port ('8080') must be a whole number"),
    ("type-fleet-tls-string", lambda t: fleet(instance_type="g6.xlarge", load_balancer=LoadBalancerOptions(allow_public_without_tls="false")), "load_balancer.allow_public_without_tls ('false') must be True or False"),
    ("type-fleet-scaling-dict", lambda t: fleet(instance_type="g6.xlarge", scaling={"signal": "cpu"}), "scaling ({'signal': 'cpu'}) must be a ScalingOptions(...) or None"),
    # the fleet: deploy-time limits and refusals (tests/constructs/test_inference_fleet.py has more)
    ("fleet-warm-pool-preset-fallbacks", lambda t: fleet(preset="serving-nvidia", purchase=PurchaseOptions(), scaling=ScalingOptions(warm_pool=True)), "scaling.warm_pool cannot be used with fallback instance types (g6.2xlarge, g5.xlarge, g5.2xlarge, the preset's)"),
    ("fleet-warm-pool-explicit-fallbacks", lambda t: fleet(instance_type="g6.xlarge", scaling=ScalingOptions(warm_pool=True), purchase=PurchaseOptions(fallback_instance_types=("g6.2xlarge",))), "scaling.warm_pool cannot be used with fallback instance types (g6.2xlarge, from purchase.fallback_instance_types)"),
    ("fleet-warm-pool-spot", lambda t: fleet(instance_type="g6.xlarge", scaling=ScalingOptions(warm_pool=True), purchase=PurchaseOptions(option="spot")), "scaling.warm_pool cannot be used with purchase option 'spot'"),
    ("fleet-public-nlb-ssh", lambda t: fleet(instance_type="g6.xlarge", port=22, scaling=ScalingOptions(signal="cpu"), load_balancer=LoadBalancerOptions(kind="network", internet_facing=True, allow_public_without_tls=True)), "port (22) is the usual port of SSH"),
    ("fleet-public-alb-postgres", lambda t: fleet(instance_type="g6.xlarge", port=5432, load_balancer=LoadBalancerOptions(internet_facing=True, allow_public_without_tls=True)), "port (5432) is the usual port of PostgreSQL"),
    ("fleet-waf-other-region", lambda t: fleet(instance_type="g6.xlarge", load_balancer=LoadBalancerOptions(web_acl_arn="arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/api/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b")), "is in eu-west-1; a load balancer in us-east-1 can use only a web ACL of us-east-1"),
    ("fleet-certificate-other-region", lambda t: fleet(instance_type="g6.xlarge", load_balancer=LoadBalancerOptions(certificate="arn:aws:acm:eu-west-1:123456789012:certificate/abc")), "is in eu-west-1; a load balancer in us-east-1 can use only an ACM certificate of us-east-1"),
    ("fleet-certificate-not-an-arn", lambda t: fleet(instance_type="g6.xlarge", load_balancer=LoadBalancerOptions(certificate="my-cert")), "load_balancer.certificate ('my-cert') must be an ACM certificate or its ARN"),
    ("fleet-p99-negative", lambda t: fleet(instance_type="g6.xlarge", fleet_alarms=FleetAlarmOptions(p99_latency_seconds=-1)), "fleet_alarms.p99_latency_seconds (-1) must be a number above 0 and at most 4000"),
    ("fleet-p99-nan", lambda t: fleet(instance_type="g6.xlarge", fleet_alarms=FleetAlarmOptions(p99_latency_seconds=float("nan"))), "fleet_alarms.p99_latency_seconds (nan) must be a finite number"),
    ("fleet-error-rate-above-100", lambda t: fleet(instance_type="g6.xlarge", fleet_alarms=FleetAlarmOptions(error_rate_percent=150)), "fleet_alarms.error_rate_percent (150) must be a number above 0 and at most 100"),
    ("fleet-error-rate-inf", lambda t: fleet(instance_type="g6.xlarge", fleet_alarms=FleetAlarmOptions(error_rate_percent=float("inf"))), "fleet_alarms.error_rate_percent (inf) must be a finite number"),
    ("fleet-scaling-target-above-100-percent", lambda t: fleet(instance_type="g6.xlarge", scaling=ScalingOptions(signal="cpu", target=150)), "scaling.target (150) must be positive and at most 100"),
    ("fleet-warm-pool-string", lambda t: fleet(instance_type="g6.xlarge", scaling=ScalingOptions(warm_pool="false")), "scaling.warm_pool ('false') must be True or False"),
    # the training cluster: deploy-time limits and refusals (tests/constructs/test_training_cluster.py has more)
    ("cluster-cron-words", lambda t: training(instance_type="g5.xlarge", engine="nodes", schedule=ScaleSchedule(stop="every night", start="0 7 * * 1-5")), "schedule.stop ('every night') has 2 field(s); Auto Scaling takes five cron fields"),
    ("cluster-cron-eventbridge", lambda t: training(instance_type="g5.xlarge", engine="nodes", schedule=ScaleSchedule(stop="cron(0 20 * * ? *)", start="0 7 * * 1-5")), "schedule.stop ('cron(0 20 * * ? *)') is EventBridge schedule syntax"),
    ("cluster-time-zone", lambda t: training(instance_type="g5.xlarge", engine="nodes", schedule=ScaleSchedule(stop="0 20 * * 1-5", start="0 7 * * 1-5", time_zone="Mars/Base")), "schedule.time_zone ('Mars/Base') is not an IANA time zone name"),
    ("cluster-grace-3h", lambda t: training(instance_type="g5.xlarge", engine="nodes", checkpoint_grace_period=cdk.Duration.hours(3)), "checkpoint_grace_period (3 hours) must be a whole number of seconds from 30 s to 7,200 s"),
    ("cluster-gp3-iops-per-gib", lambda t: training(instance_type="g5.xlarge", storage=StorageOptions(data_volume_size_gib=10, data_volume_iops=6000)), "storage.data_volume_iops (6000) exceeds gp3's 500 IOPS per GiB"),
    ("cluster-gp3-throughput", lambda t: training(instance_type="g5.xlarge", storage=StorageOptions(data_volume_size_gib=100, data_volume_throughput_mibs=1000)), "storage.data_volume_throughput_mibs (1000) exceeds gp3's 0.25 MiB/s per IOPS"),
    ("cluster-mount-space", lambda t: training(instance_type="g5.xlarge", storage=StorageOptions(data_volume_size_gib=100, data_mount_point="/my data")), "storage.data_mount_point ('/my data') must be an absolute path of letters"),
    ("cluster-mount-etc", lambda t: training(instance_type="g5.xlarge", storage=StorageOptions(data_volume_size_gib=100, data_mount_point="/etc")), "storage.data_mount_point ('/etc') is owned by the OS (host configuration"),
    ("cluster-percent-150", lambda t: training(instance_type="g5.xlarge", guardrails=GuardrailOptions(high_memory_percent=150)), "guardrails.high_memory_percent (150) must be a number above 0 and at most 100"),
    ("cluster-inferentia", lambda t: training(instance_type="inf2.48xlarge", nodes=2), "instance_type: inf2.48xlarge cannot train: Inferentia2 is inference-only"),
    ("cluster-az-id-unpinned-vpc", lambda t: training_in_vpc("vpc-0aaa", instance_type="g5.xlarge", availability_zone_id="use1-az4"), "availability_zone_id (use1-az4): the VPC you brought does not pin its subnets by AZ ID"),
    ("cluster-token-nodes", lambda t: token_nodes(), "nodes: a deploy-time token cannot size a training cluster"),
    ("workload-other-region", lambda t: TrainingCluster.from_workload(cdk.Stack(cdk.App(context=cli_context()), "W", env=cdk.Environment(region="us-west-2")), "X", workload=Workload(task="training", params="7B", accelerator="nvidia", regions="eu-west-1")), "workload.regions (eu-west-1) does not include the stack's region (us-west-2)"),
    # corrupt data files: a refreshed catalog (MLCDK_CATALOG) or a preset file that cannot be read
    ("data-catalog-not-json", lambda t: corrupt_catalog(t, "instance_types.json", "{not json"), "instance_types.json"),
    ("data-catalog-wrong-shape", lambda t: corrupt_catalog(t, "offerings.json", json.dumps({"offerings": []})), "offerings.json"),
    ("data-catalog-missing-file", lambda t: corrupt_catalog(t, "prices.json", None), "prices.json"),
    ("preset-not-utf8", lambda t: raw_preset_file(t, b'{"presets": {"team": "\xff\xfe"}}'), "not UTF-8 text"),
    ("preset-not-json", lambda t: raw_preset_file(t, b"{presets: "), "not valid JSON"),
    # malformed custom preset files
    ("preset-unknown-field", lambda t: preset_file(t, {**GOOD_PRESET, "gpu": 1}), "presets['team']: unknown field 'gpu'"),
    ("preset-wrong-type", lambda t: preset_file(t, {**GOOD_PRESET, "min_capacity": "1"}), "presets['team']: field 'min_capacity' should be int, got '1'"),
    ("preset-unknown-type", lambda t: preset_file(t, {**GOOD_PRESET, "instance_type": "g9.xlarge"}), "presets['team']: field 'instance_type' is invalid: "),
    ("preset-missing-field", lambda t: preset_file(t, {k: v for k, v in GOOD_PRESET.items() if k != "task"}), "presets['team']: missing field 'task'"),
    # issue 25: two things on one path (the node's path registry, mlcdk.presets.paths)
    ("path-volume-and-lustre-on-data", lambda t: training(instance_type="g5.xlarge", storage=StorageOptions(data_volume_size_gib=100), shared_storage=SharedStorageOptions(mount_point="/data")), "shared_storage.mount_point ('/data') is the same directory as storage.data_mount_point ('/data'), where the data volume is mounted"),
    ("path-volume-inside-lustre", lambda t: training(instance_type="g5.xlarge", storage=StorageOptions(data_volume_size_gib=100, data_mount_point="/fsx/scratch"), shared_storage=SharedStorageOptions()), "shared_storage.mount_point ('/fsx') holds storage.data_mount_point ('/fsx/scratch')"),
    ("path-lustre-on-docker", lambda t: training(instance_type="g5.xlarge", shared_storage=SharedStorageOptions(mount_point="/var/lib/docker")), "shared_storage.mount_point ('/var/lib/docker') is owned by Docker"),
    ("path-volume-inside-ecs", lambda t: training(instance_type="g5.xlarge", storage=StorageOptions(data_volume_size_gib=100, data_mount_point="/var/lib/ecs/data")), "storage.data_mount_point ('/var/lib/ecs/data') lies inside /var/lib/ecs, which is owned by Amazon ECS"),
    ("path-lustre-above-docker", lambda t: training(instance_type="g5.xlarge", shared_storage=SharedStorageOptions(mount_point="/var/lib")), "shared_storage.mount_point ('/var/lib') would hide /var/lib/docker"),
    ("path-volume-on-opt", lambda t: fleet(instance_type="g6.xlarge", storage=StorageOptions(data_volume_size_gib=100, data_mount_point="/opt/aws/neuron")), "storage.data_mount_point ('/opt/aws/neuron') lies inside /opt/aws, which is owned by AWS agents"),
    ("path-volume-on-home", lambda t: training(instance_type="g5.xlarge", storage=StorageOptions(data_volume_size_gib=100, data_mount_point="/home")), "storage.data_mount_point ('/home') is owned by the OS (users' home directories)"),
    # issue 25: values without upper bounds (data/bounds.json, checked by mlcdk.params)
    ("bound-reservation-price", lambda t: training(instance_type="g5.xlarge", capacity=CapacityOptions(reservation_id=CR, hourly_price_usd=1e12)), "capacity.hourly_price_usd (1000000000000.0) must be a number above 0 and at most 1000 (above every EC2 on-demand price"),
    ("bound-lustre-capacity", lambda t: training(instance_type="g5.xlarge", shared_storage=SharedStorageOptions(storage_capacity_gib=2_400_000_000)), "shared_storage.storage_capacity_gib (2400000000) must be a whole number from 1 to 2400000"),
    ("bound-nodes-1e30", lambda t: training(instance_type="g5.xlarge", nodes=10**30), "nodes (1000000000000000000000000000000) must be a whole number from 1 to 512"),
    ("bound-nodes-5000-digits", lambda t: training(instance_type="g5.xlarge", nodes=10**5000), "nodes (<an integer of about 5,001 digits>) must be a whole number from 1 to 512"),
    ("bound-budget", lambda t: training(instance_type="g5.xlarge", guardrails=GuardrailOptions(monthly_budget_usd=1.46e15)), "guardrails.monthly_budget_usd (1460000000000000.0) must be a number above 0 and at most 730000000"),
    ("bound-hourly-cost", lambda t: training(instance_type="g5.xlarge", max_hourly_cost_usd=1e9), "max_hourly_cost_usd (1000000000.0) must be a number above 0 and at most 1000000"),
    ("bound-reserved-instances", lambda t: training(instance_type="g5.xlarge", capacity=CapacityOptions(reservation_id=CR, reserved_instances=10**6)), "capacity.reserved_instances (1000000) must be a whole number from 1 to 1000"),
    ("bound-job-timeout", lambda t: training(instance_type="g5.xlarge", job=JobOptions(timeout_hours=1e6)), "job.timeout_hours (1000000.0) must be a number from 0.0166667 to 336"),
    ("bound-p99-latency", lambda t: fleet(instance_type="g6.xlarge", fleet_alarms=FleetAlarmOptions(p99_latency_seconds=1e9)), "fleet_alarms.p99_latency_seconds (1000000000.0) must be a number above 0 and at most 4000"),
    ("bound-scaling-target", lambda t: fleet(instance_type="g6.xlarge", scaling=ScalingOptions(target=1e12)), "scaling.target (1000000000000.0) must be a number above 0 and at most 1000000"),
    ("bound-warmup", lambda t: fleet(instance_type="g6.xlarge", scaling=ScalingOptions(warmup=cdk.Duration.hours(2))), "scaling.warmup (2 hours) must be a whole number of seconds from 0 s to 3,600 s"),
    ("bound-nat-gateways", lambda t: PrivateNetwork(cdk.Stack(cdk.App(), "N"), "Net", nat_gateways=100), "nat_gateways (100) must be a whole number from 0 to 6"),
    ("bound-health-check-path-2001", lambda t: fleet(instance_type="g6.xlarge", health_check_path="/" + "h" * 2000), "health_check_path ('/hhhhhhh"),
    ("bound-health-check-path-says-why", lambda t: fleet(instance_type="g6.xlarge", health_check_path="/" + "h" * 2000), "... (2,001 characters)) must be at most 1,024 characters (HealthCheckPath takes 1 to 1,024 characters)"),
    ("bound-user-data-command", lambda t: training(instance_type="g5.xlarge", user_data_commands=["echo " + "x" * 20_000]), "user_data_commands[0] ('echo xxxx"),
    ("text-trailing-newline", lambda t: training(instance_type="g5.xlarge", availability_zone_id="use1-az4\n"), "availability_zone_id ('use1-az4\\n') must be a string without leading or trailing whitespace"),
    ("text-nul", lambda t: training(instance_type="g5.xlarge", capacity=CapacityOptions(reservation_id="cr-0123456789\x00abcdef0")), "must be a string without control or format characters (it holds '\\x00'"),
    ("text-bidi-override", lambda t: training(instance_type="g5.xlarge", alarm_emails=["ops@example.com\u202e"]), "alarm_emails[0] ('ops@example.com\\u202e') must be a string without control or format characters"),
    ("text-huge-value-is-cut", lambda t: training(instance_type="g5" + "x" * 100_000), "... (100,002 characters)) must be at most 2,048 characters"),
    # issue 25: identifiers (mlcdk.presets.identifiers)
    ("arn-group-other-region", lambda t: training(instance_type="g5.xlarge", capacity=CapacityOptions(reservation_group_arn="arn:aws:resource-groups:eu-west-1:123456789012:group/reservations")), "capacity.reservation_group_arn ('arn:aws:resource-groups:eu-west-1:123456789012:group/reservations') is in eu-west-1; the stack is in us-east-1"),
    ("arn-group-other-partition", lambda t: training(instance_type="g5.xlarge", capacity=CapacityOptions(reservation_group_arn="arn:aws-cn:resource-groups:us-east-1:123456789012:group/r")), "names the partition aws-cn, but us-east-1 is in aws"),
    ("arn-group-other-account", lambda t: in_account(instance_type="g5.xlarge", capacity=CapacityOptions(reservation_group_arn="arn:aws:resource-groups:us-east-1:210987654321:group/r")), "belongs to the account 210987654321; the stack deploys to 123456789012"),
    ("arn-group-not-a-group", lambda t: training(instance_type="g5.xlarge", capacity=CapacityOptions(reservation_group_arn="arn:aws:ec2:us-east-1:123456789012:capacity-reservation/cr-0123456789abcdef0")), "must be an ARN, arn:PARTITION:resource-groups:REGION:ACCOUNT:group/NAME"),
    ("s3-bucket-ip-address", lambda t: training(instance_type="g5.xlarge", shared_storage=SharedStorageOptions(data_repositories=(DataRepositoryLink("s3://192.168.5.4/data/", "/datasets"),))), "shared_storage.data_repositories[0].s3_uri ('s3://192.168.5.4/data/') has the bucket '192.168.5.4', which must not be formatted as an IP address"),
    ("s3-bucket-shell", lambda t: training(instance_type="g5.xlarge", shared_storage=SharedStorageOptions(data_repositories=(DataRepositoryLink("s3://$(reboot)/data/", "/datasets"),))), "has the bucket '$(reboot)', which may hold only lowercase letters, digits, '.' and '-'"),
    ("s3-key-shell", lambda t: training(instance_type="g5.xlarge", shared_storage=SharedStorageOptions(data_repositories=(DataRepositoryLink("s3://my-data/$(reboot)/", "/datasets"),))), "its key holds '$'"),
    ("s3-bucket-reserved", lambda t: training(instance_type="g5.xlarge", shared_storage=SharedStorageOptions(data_repositories=(DataRepositoryLink("s3://xn--data/", "/datasets"),))), "has the bucket 'xn--data', which must not begin with xn--"),
    ("email-double-dot", lambda t: training(instance_type="g5.xlarge", alarm_emails=["ops@example..com"]), "alarm_emails ('ops@example..com') is not an e-mail address like ml-team@example.com (its domain is not valid)"),
    ("email-double-dot-context", lambda t: read_settings({"alarm_email": "ops@example..com"}), "alarm_email ('ops@example..com') is not an e-mail address"),
    # issue 25: point 4 promises that no test guarded
    ("capacity-open-group-target", lambda t: training(instance_type="g5.xlarge", capacity=CapacityOptions(reservation_group_arn=GROUP_ARN, preference="open")), "capacity.preference ('open') cannot go with a reservation target: EC2 accepts a target only with 'capacity-reservations-only'"),
    ("server-command-whitespace", lambda t: fleet(instance_type="g6.xlarge", model_server_command=" \n\t "), "model_server_command (' \\n\\t ') must be a non-blank string"),
    # issue 25: preset files (mlcdk.presets.datafile)
    ("preset-duplicate-name-json", lambda t: raw_preset_file(t, ('{"presets": {"team": %s, "team": %s}}' % (json.dumps(GOOD_PRESET), json.dumps(GOOD_PRESET))).encode()), "the key 'team' appears twice in one mapping (the last would silently win)"),
    ("preset-duplicate-name-yaml", lambda t: text_file(t, "p.yaml", "presets:\n  team: {}\n  team: {}\n"), "the key 'team' appears twice in one mapping (line 3"),
    ("preset-int-name", lambda t: text_file(t, "p.yaml", "presets:\n  1: {}\n"), "the key '1' at line 2 is read as an integer, not a name; quote it"),
    ("preset-null-name", lambda t: text_file(t, "p.yaml", "presets:\n  null: {}\n"), "the key 'null' at line 2 is read as null, not a name"),
    ("preset-dev-zero", lambda t: workloads.load_presets("/dev/zero"), "/dev/zero: is not a regular file"),
    ("preset-too-large", lambda t: text_file(t, "p.json", " " * 300_000), "is larger than 262,144 bytes"),
    ("preset-billion-laughs", lambda t: text_file(t, "p.yaml", DEEP), "expands to more than 100,000 values through its aliases"),
    ("preset-deep-nesting", lambda t: text_file(t, "p.yaml", "presets: " + "[" * 5000), "is nested more than 32 levels deep (line 1)"),
    ("preset-huge-integer", lambda t: text_file(t, "p.json", '{"presets": {"team": {"nodes": %s}}}' % ("9" * 5000)), "has more than 30 digits"),
    ("preset-nan", lambda t: text_file(t, "p.json", '{"presets": {"team": {"nodes": NaN}}}'), "NaN is not a number that mlcdk takes"),
    ("preset-name-with-newline", lambda t: preset_file_named(t, "team\n"), "presets: the name 'team\\n' must be 1 to 64 letters"),
    ("preset-count-unbounded", lambda t: preset_file(t, {**GOOD_PRESET, "max_capacity": 10**9}), "field 'max_capacity' is 1000000000; it must be a whole number from 1 to 1000"),
    # issue 25: data files name the file and the fix
    ("data-catalog-truncated", lambda t: corrupt_catalog(t, "instance_types.json", (catalog.DATA_DIR / "instance_types.json").read_text()[:4000]), "; rebuild the catalog snapshot with `mlcdk catalog refresh`"),
    ("data-catalog-negative-efa", lambda t: edited_catalog(t, "instance_types.json", _negative_efa), "instance_types['p5.48xlarge']: field 'maximum_efa_interfaces' is -1; it must be at least 0; rebuild the catalog snapshot with `mlcdk catalog refresh`"),
]


@pytest.mark.parametrize(("call", "message"), [(c, m) for _, c, m in CASES], ids=[i for i, _, _ in CASES])
def test_invalid_configuration_is_a_configuration_error_naming_the_value(tmp_path, call, message):
    with pytest.raises(ConfigurationError) as error:
        call(tmp_path)
    assert message in str(error.value)


def test_the_table_has_at_least_100_cases_and_the_readme_says_how_many():
    import re
    from pathlib import Path

    assert len(CASES) >= 100
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert re.search(r"a table of (\d+) invalid configurations", readme).group(1) == str(len(CASES))


CLI_CASES = [
    (["catalog", "show", "trn1.32xlarg"], "error: instance_type: unknown instance type 'trn1.32xlarg'"),
    (["catalog", "list", "--region", "mars-1"], "error: --region: unknown region 'mars-1'"),
    (["presets", "show", "nope"], "error: preset: unknown preset 'nope'"),
    (["advise", "--task", "training", "--params", "-3B", "--region", "us-east-1"], "error: --params"),
    (["advise", "--task", "teaching", "--params", "7B"], "error: --task"),
    (["advise", "--task", "inference", "--params", "7B", "--precision", "fp7"], "error: --precision"),
    (["advise", "--task", "training", "--params", "1e40"], "error: --params ('1e40') is over the maximum"),
    (["advise", "--task", "training", "--params", "7B", "--region", ""], "error: --region ('')"),
    (["advise", "--task", "training", "--params", "7B", "--json", "--emit-context"], "error: --json and --emit-context cannot be combined"),
    (["advise", "--task", "training", "--params", "7B", "--memory-headroom", "80"], "error: --memory-headroom"),
    (["catalog", "list", "--family", "p9"], "error: --family: unknown family 'p9'"),
    (["preflight", "--region", "us-east-1", "--instance-type", "p5.48xlarge", "--nodes", "0"], "error: --nodes"),
    (["preflight", "--region", "us-east-1", "--instance-type", "p5.48xlarge", "--nodes", "2", "--reservation-id", "cr-123"], "error: --reservation-id"),
    (["preflight", "--region", "us-east-1", "--instance-type", "p5.48xlarge", "--nodes", "2", "--availability-zone-id", "use1az4"], "error: --availability-zone-id"),
    (["presets", "list", "--file", "/dev/zero"], "error: /dev/zero: is not a regular file"),
    (["presets", "show", "x" * 5000], "error: preset: unknown preset 'xxxxxxxx"),
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
