"""mlcdk in a user's own app: no feature flags at all (``cdk.App(context={})``), not this repo's cdk.json.

aws-cdk's feature flags change what its L2s emit. Without ``@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy`` a
bucket that receives server access logs gets the legacy LogDeliveryWrite ACL (cfn-lint W3045), and without
``@aws-cdk/aws-ec2:restrictDefaultSecurityGroup`` a VPC's default security group keeps its rules (NIST
VPCDefaultSecurityGroupClosed). mlcdk sets both behaviours itself; this module holds every construct shape
and the app's own stacks, synthesized with no context, to cdk-nag (the four packs of tests/harness.py:
AwsSolutions, NIST 800-53 rev 5, HIPAA Security, PCI DSS 3.2.1) and cfn-lint.
"""
from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Annotations, Match

from mlcdk import InferenceFleet, ModelOptions, PrivateNetwork, ScalingOptions, TrainingCluster
from tests.harness import lint, nag_problems, synth

REGION = "us-east-1"
#: Regional construct stacks (stack name -> what they hold); the app adds TrainingStack and InferenceStack.
CONSTRUCT_STACKS = ("TrainingBatch", "TrainingNodes", "Inference")


def build(app) -> list[cdk.Stack]:
    from mlcdk.stacks import add_stacks, settings_from_context

    env = cdk.Environment(region=REGION)
    stacks = []
    for engine, name in (("batch", "TrainingBatch"), ("nodes", "TrainingNodes")):
        stack = cdk.Stack(app, name, env=env)
        TrainingCluster(stack, "Cluster", instance_type="trn1.32xlarge", nodes=2, engine=engine)
        stacks.append(stack)
    stack = cdk.Stack(app, "Inference", env=env)  # regional: the fleet's ALB gets its access-log bucket
    InferenceFleet(stack, "Fleet", instance_type="g5.xlarge", scaling=ScalingOptions(signal="queue"),
                   model=ModelOptions(source="s3://acme-models/qwen2.5-7b", architecture="qwen2.5-7b",
                                      max_concurrent_sequences=2))
    stacks.append(stack)
    return stacks + add_stacks(app, settings_from_context(app, environ={"CDK_DEFAULT_REGION": "us-east-1"}))  # as the CDK CLI sets it


@pytest.fixture(scope="module")
def no_flags():
    result = synth(build, context={})
    assert result.app.node.try_get_context("@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy") is None
    assert result.app.node.try_get_context("@aws-cdk/aws-ec2:restrictDefaultSecurityGroup") is None
    assert sorted(result.stacks) == sorted([*CONSTRUCT_STACKS, "InferenceStack", "TrainingStack"])
    return result


def logical_id(element) -> str:
    stack = cdk.Stack.of(element)
    return stack.resolve(stack.get_logical_id(element))


def networks(result) -> dict[str, PrivateNetwork]:
    """The PrivateNetwork of each stack: the construct's own (regional stacks), or the app stack's."""
    found = {}
    for name, stack in result.stacks.items():
        (network,) = [c for c in stack.node.find_all() if isinstance(c, PrivateNetwork)]
        found[name] = network
    return found


def access_log_buckets(result) -> dict[str, list]:
    """Each stack's access-log buckets, found by construct path: the checkpoint bucket's and the ALB's."""
    found = {}
    for name, stack in result.stacks.items():
        buckets = [c.node.default_child for c in stack.node.find_all()
                   if c.node.id in ("CheckpointsAccessLogs", "AccessLogs") and c.node.default_child is not None]
        found[name] = buckets
    return found


# --------------------------------------------------------------------------------------------
# The gates
# --------------------------------------------------------------------------------------------


def test_both_nag_packs_pass_in_an_app_without_feature_flags(no_flags):
    assert nag_problems(no_flags) == []


@pytest.mark.parametrize("name", [*CONSTRUCT_STACKS, "TrainingStack", "InferenceStack"])
def test_cfn_lint_passes_in_an_app_without_feature_flags(no_flags, name):
    stack = no_flags.stacks[name]
    assert lint(no_flags.template_paths[name], [REGION]) == []  # the app's stacks: the CLI's region, us-east-1


# --------------------------------------------------------------------------------------------
# Access-log buckets: bucket policy and object ownership, never the LogDeliveryWrite ACL (W3045)
# --------------------------------------------------------------------------------------------


def test_no_bucket_has_an_acl_and_every_access_log_bucket_enforces_bucket_ownership(no_flags):
    buckets = access_log_buckets(no_flags)
    # one per cluster (its checkpoint bucket's logs) and one per fleet (its load balancer's logs)
    assert {name: len(found) for name, found in buckets.items()} == dict.fromkeys(no_flags.stacks, 1)
    for name, found in buckets.items():
        resources = no_flags.templates[name]["Resources"]
        assert not [k for k, r in resources.items() if r["Type"] == "AWS::S3::Bucket" and "AccessControl" in r["Properties"]]
        for bucket in found:
            properties = resources[logical_id(bucket)]["Properties"]
            assert properties["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}, name


@pytest.mark.parametrize("name", ["TrainingBatch", "TrainingNodes", "TrainingStack"])
def test_checkpoint_access_logs_are_granted_to_the_logging_service_for_that_bucket_only(no_flags, name):
    stack = no_flags.stacks[name]
    (cluster,) = [c for c in stack.node.find_all() if isinstance(c, TrainingCluster)]
    resources = no_flags.templates[name]["Resources"]
    checkpoints = logical_id(cluster.checkpoint_bucket.node.default_child)
    logs = logical_id(cluster.node.find_child("CheckpointsAccessLogs").node.default_child)
    key = logical_id(cluster.encryption_key.node.default_child)
    assert resources[checkpoints]["Properties"]["LoggingConfiguration"] == {
        "DestinationBucketName": {"Ref": logs}, "LogFilePrefix": "checkpoints/"}
    (policy,) = [r["Properties"] for r in resources.values()
                 if r["Type"] == "AWS::S3::BucketPolicy" and r["Properties"]["Bucket"] == {"Ref": logs}]
    grants = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert grants == [{
        "Sid": "S3ServerAccessLogs", "Effect": "Allow", "Action": "s3:PutObject",
        "Principal": {"Service": "logging.s3.amazonaws.com"},
        "Resource": {"Fn::Join": ["", [{"Fn::GetAtt": [logs, "Arn"]}, "/checkpoints/*"]]},
        "Condition": {"ArnLike": {"aws:SourceArn": {"Fn::GetAtt": [checkpoints, "Arn"]}},
                      "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
    }]
    key_grants = [s for s in resources[key]["Properties"]["KeyPolicy"]["Statement"]
                  if s["Principal"] == {"Service": "logging.s3.amazonaws.com"}]
    assert key_grants == [{
        "Sid": "S3ServerAccessLogsToEncryptedBucket", "Effect": "Allow", "Resource": "*",
        "Action": ["kms:GenerateDataKey*", "kms:Decrypt"], "Principal": {"Service": "logging.s3.amazonaws.com"},
        "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
    }]


# --------------------------------------------------------------------------------------------
# The VPC's default security group (NIST VPCDefaultSecurityGroupClosed)
# --------------------------------------------------------------------------------------------


def test_every_vpc_restricts_its_default_security_group_without_the_feature_flag(no_flags):
    for name, network in networks(no_flags).items():
        resources = no_flags.templates[name]["Resources"]
        vpc = logical_id(network.vpc.node.default_child)
        (restrict,) = [r["Properties"] for r in resources.values() if r["Type"] == "Custom::VpcRestrictDefaultSG"]
        assert restrict["DefaultSecurityGroupId"] == {"Fn::GetAtt": [vpc, "DefaultSecurityGroup"]}, name
        # CDK's handler: its role may change the rules of this VPC's default group and nothing else.
        handler = resources[restrict["ServiceToken"]["Fn::GetAtt"][0]]["Properties"]
        role = resources[handler["Role"]["Fn::GetAtt"][0]]["Properties"]
        (inline,) = role["Policies"]
        region = [f":ec2:{REGION}:"]  # every stack here has a region, the app's too
        assert inline["PolicyDocument"]["Statement"] == [{
            "Effect": "Allow",
            "Action": ["ec2:AuthorizeSecurityGroupIngress", "ec2:AuthorizeSecurityGroupEgress",
                       "ec2:RevokeSecurityGroupIngress", "ec2:RevokeSecurityGroupEgress"],
            "Resource": [{"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, *region, {"Ref": "AWS::AccountId"},
                                            ":security-group/", {"Fn::GetAtt": [vpc, "DefaultSecurityGroup"]}]]}],
        }], name


# --------------------------------------------------------------------------------------------
# PrivateNetwork without AZ IDs says which AZs it took
# --------------------------------------------------------------------------------------------


def unpinned_warnings(stack: cdk.Stack, path: str) -> list[str]:
    found = Annotations.from_stack(stack).find_warning(path, Match.string_like_regexp(".*no availability_zone_ids.*"))
    return [str(w.entry.data) for w in found]


def subnet_zones(network: PrivateNetwork) -> list:
    """The AvailabilityZone of each private subnet, in order, as synthesized."""
    resources = cdk.assertions.Template.from_stack(cdk.Stack.of(network)).to_json()["Resources"]
    return [resources[logical_id(s.node.default_child)]["Properties"]["AvailabilityZone"] for s in network.private_subnets]


def test_an_env_agnostic_network_without_az_ids_warns_that_it_takes_the_first_two_azs_of_fn_getazs():
    stack = cdk.Stack(cdk.App(context={}), "Agnostic")
    network = PrivateNetwork(stack, "Net")
    (warning,) = unpinned_warnings(stack, "/Agnostic/Net")
    assert warning.startswith("no availability_zone_ids: the subnets are in the first 2 AZs that Fn::GetAZs returns "
                              "in the deploy region (the stack is env-agnostic, so CDK cannot name them), and nothing "
                              "guarantees that these AZs offer the instance type")
    assert "[ack: mlcdk:unpinnedAvailabilityZones]" in warning
    assert subnet_zones(network) == [{"Fn::Select": [i, {"Fn::GetAZs": ""}]} for i in (0, 1)]


def test_a_regional_network_without_az_ids_names_the_two_azs_it_took():
    lookup = "availability-zones:account=123456789012:region=us-east-1"
    context = {lookup: ["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d"]}
    stack = cdk.Stack(cdk.App(context=context), "Regional",
                      env=cdk.Environment(account="123456789012", region="us-east-1"))
    network = PrivateNetwork(stack, "Net")
    (warning,) = unpinned_warnings(stack, "/Regional/Net")
    assert warning.startswith("no availability_zone_ids: the subnets are in us-east-1a, us-east-1b (by name; AZ "
                              "names map to different AZ IDs in each account), and nothing guarantees")
    assert subnet_zones(network) == ["us-east-1a", "us-east-1b"]


def test_a_network_pinned_by_az_id_does_not_warn():
    stack = cdk.Stack(cdk.App(context={}), "Pinned", env=cdk.Environment(region="us-east-1"))
    PrivateNetwork(stack, "Net", availability_zone_ids=["use1-az4", "use1-az6"])
    assert unpinned_warnings(stack, "/Pinned/Net") == []


def test_no_stack_of_the_app_or_the_constructs_is_left_with_an_unpinned_network(no_flags):
    """The app's stacks always resolve a region (mlcdk.settings.resolve_region) and pin their AZ IDs; the
    constructs pin their own networks by the catalog's AZ IDs."""
    for name in (*CONSTRUCT_STACKS, "TrainingStack", "InferenceStack"):
        assert unpinned_warnings(no_flags.stacks[name], "*") == [], name


def test_the_restriction_is_set_on_the_vpc_itself_not_read_from_context():
    """An app that turns the flag off explicitly still gets its VPC's default security group emptied."""
    stack = cdk.Stack(cdk.App(context={"@aws-cdk/aws-ec2:restrictDefaultSecurityGroup": False}), "FlagOff")
    network = PrivateNetwork(stack, "Net")
    resources = cdk.assertions.Template.from_stack(stack).to_json()["Resources"]
    (restrict,) = [r["Properties"] for r in resources.values() if r["Type"] == "Custom::VpcRestrictDefaultSG"]
    assert restrict["DefaultSecurityGroupId"] == {"Fn::GetAtt": [logical_id(network.vpc.node.default_child),
                                                                 "DefaultSecurityGroup"]}
