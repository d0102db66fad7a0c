"""Security invariants, asserted directly on every launch template, group and policy the app synthesizes."""
from __future__ import annotations

import re

import pytest

from tests.harness import cli_context, synth
from tests.test_app import build_app

#: Actions that support no resource-level permissions, so AWS requires Resource "*".
STAR_RESOURCE_ALLOWED = {"cloudwatch:PutMetricData", "ec2:DescribeTags", "ecs:DiscoverPollEndpoint", "ecr:GetAuthorizationToken"}


@pytest.fixture(scope="module", params=[None, "us-east-1", "us-west-2"], ids=["env-agnostic", "us-east-1", "us-west-2"])
def templates(request):
    return synth(build_app, cli_context(region=request.param), nag=False).templates


def of_type(template, kind):
    return {k: r.get("Properties", {}) for k, r in template["Resources"].items() if r["Type"] == kind}


def test_imdsv2_is_required_on_every_launch_template(templates):
    for template in templates.values():
        for lt in of_type(template, "AWS::EC2::LaunchTemplate").values():
            assert lt["LaunchTemplateData"]["MetadataOptions"]["HttpTokens"] == "required"


def test_every_volume_is_encrypted_with_the_construct_key(templates):
    for template in templates.values():
        keys = of_type(template, "AWS::KMS::Key")
        for lt_id, lt in of_type(template, "AWS::EC2::LaunchTemplate").items():
            owner = re.split("NodeGroup|Batch", lt_id)[0]  # e.g. "Cluster" or "Fleet"
            for mapping in lt["LaunchTemplateData"]["BlockDeviceMappings"]:
                key_ref = mapping["Ebs"]["KmsKeyId"]["Fn::GetAtt"][0]
                assert mapping["Ebs"]["Encrypted"] is True and key_ref in keys and key_ref.startswith(owner + "Key")


def test_no_ingress_from_the_internet(templates):
    """The app's fleet is internal: no 0.0.0.0/0 ingress anywhere (a public fleet's listener is the one
    deliberate exception, covered in test_inference_fleet)."""
    for template in templates.values():
        rules = [r for g in of_type(template, "AWS::EC2::SecurityGroup").values() for r in g.get("SecurityGroupIngress", [])]
        rules += list(of_type(template, "AWS::EC2::SecurityGroupIngress").values())
        assert rules
        assert not [r for r in rules if r.get("CidrIp") == "0.0.0.0/0" or r.get("CidrIpv6") == "::/0"]
        assert not [r for r in rules if r.get("FromPort") == 22]


def test_nodes_get_no_public_ips(templates):
    for template in templates.values():
        subnets = of_type(template, "AWS::EC2::Subnet")
        for asg in of_type(template, "AWS::AutoScaling::AutoScalingGroup").values():
            for ref in asg["VPCZoneIdentifier"]:
                subnet_id = ref["Ref"]
                assert "Private" in subnet_id and subnets[subnet_id].get("MapPublicIpOnLaunch") is False
        for lt in of_type(template, "AWS::EC2::LaunchTemplate").values():
            for nic in lt["LaunchTemplateData"].get("NetworkInterfaces", []):
                assert nic.get("AssociatePublicIpAddress") in (None, False)


def test_node_policies_use_star_resources_only_where_aws_requires_it(templates):
    for template in templates.values():
        node_roles = {k for k, r in of_type(template, "AWS::IAM::Role").items()
                      if "ec2.amazonaws.com" in str(r["AssumeRolePolicyDocument"])}
        assert node_roles
        for policy in of_type(template, "AWS::IAM::Policy").values():
            if not {r.get("Ref") for r in policy.get("Roles", [])} & node_roles:
                continue
            for statement in policy["PolicyDocument"]["Statement"]:
                resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                if "*" in resources:
                    assert set(actions) <= STAR_RESOURCE_ALLOWED, actions
                assert not [a for a in actions if a == "*" or a.endswith(":*")]
