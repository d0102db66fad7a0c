"""Security invariants, asserted directly on every launch template, group and policy the app synthesizes."""
from __future__ import annotations

import re

import aws_cdk as cdk
import pytest

from tests.harness import cli_context, synth
from tests.test_app import build_app

#: The SSM agent's Session Manager actions (Systems Manager user guide, "Step 2: Verify or add instance
#: permissions for Session Manager"): the four ssmmessages channel actions have no resource type, and
#: the instance that registers does not exist when the role is made.
SESSION_MANAGER = {"ssm:UpdateInstanceInformation", "ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
                   "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel"}
#: Actions that support no resource-level permissions, so AWS requires Resource "*".
STAR_RESOURCE_ALLOWED = {"cloudwatch:PutMetricData", "ec2:DescribeTags", "ecs:DiscoverPollEndpoint",
                         "ecr:GetAuthorizationToken", *SESSION_MANAGER}

#: AWS managed policies that may be attached to a role in an mlcdk stack, each with the one role it may be on
#: and why. Anything else (AmazonSSMManagedInstanceCore, AmazonEC2ContainerServiceforEC2Role, ...) fails.
MANAGED_POLICIES_ALLOWED = {
    "service-role/AWSLambdaBasicExecutionRole": (
        "vpc-default-sg-handler",
        "aws-cdk's own handler that empties the VPC's default security group (restrict_default_security_group): "
        "logs:CreateLogGroup, CreateLogStream and PutLogEvents for the function's own logs; it runs only when the "
        "VPC is created, updated or deleted"),
}

#: Condition keys that tie a service principal's grant to this account or to one source resource.
SOURCE_CONDITION_KEYS = {"aws:SourceArn", "aws:SourceAccount", "kms:EncryptionContext:aws:logs:arn", "kms:ViaService"}
#: Resource-policy grants to a service principal that carry no source condition, and why they may.
UNCONDITIONED_SERVICE_GRANTS = {
    # aws-cdk's ApplicationLoadBalancer.log_access_logs writes these (inference_fleet.py); their resources are
    # the account's own AWSLogs/<account>/ prefix. Regional stacks only (env-agnostic fleets have no ELB logs).
    ("delivery.logs.amazonaws.com", "s3:PutObject"),
    ("delivery.logs.amazonaws.com", "s3:GetBucketAcl"),
}


# The app's stacks always have a region (mlcdk.settings.resolve_region); three of them.
@pytest.fixture(scope="module", params=["us-east-1", "us-west-2", "us-east-2"])
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


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def test_roles_carry_no_aws_managed_policy_except_the_listed_ones(templates):
    """The node roles use Session Manager through their own policy, not AmazonSSMManagedInstanceCore (which
    grants ssm:GetParameter(s) on every parameter, reachable from containers through IMDS hop limit 2)."""
    for name, template in templates.items():
        resources = template["Resources"]
        # the role of aws-cdk's default-security-group handler: Custom::VpcRestrictDefaultSG -> function -> role
        handlers = {resources[r["Properties"]["ServiceToken"]["Fn::GetAtt"][0]]["Properties"]["Role"]["Fn::GetAtt"][0]
                    for r in resources.values() if r["Type"] == "Custom::VpcRestrictDefaultSG"}
        assert len(handlers) == 1, name
        for role_id, role in of_type(template, "AWS::IAM::Role").items():
            for arn in role.get("ManagedPolicyArns", []):
                policy = re.search(r":iam::aws:policy/(.+)$", _flat(arn)).group(1)
                assert policy in MANAGED_POLICIES_ALLOWED, f"{name}/{role_id}: AWS managed policy {policy}"
                assert role_id in handlers, f"{name}/{role_id}: {policy} is allowed only on the default-SG handler role"
        node_roles = [k for k, r in of_type(template, "AWS::IAM::Role").items()
                      if "ec2.amazonaws.com" in str(r["AssumeRolePolicyDocument"])]
        assert node_roles and not [k for k in node_roles if of_type(template, "AWS::IAM::Role")[k].get("ManagedPolicyArns")]


def _flat(value) -> str:
    """An ARN as text: "arn:${AWS::Partition}:iam::aws:policy/X" from its Fn::Sub or Fn::Join form."""
    if isinstance(value, str):
        return value
    if "Fn::Sub" in value:
        return value["Fn::Sub"]
    if "Fn::Join" in value:
        return value["Fn::Join"][0].join(_flat(part) if not isinstance(part, dict) or "Ref" not in part
                                         else "${" + part["Ref"] + "}" for part in value["Fn::Join"][1])
    raise AssertionError(f"unexpected ARN form {value!r}")


#: ECS Exec's task role actions (ECS Developer Guide, "Using Amazon ECS Exec"): the Batch job role gets these four,
#: for `mlcdk shell` (JobOptions.shell, on by default), and nothing else of Systems Manager.
ECS_EXEC_ACTIONS = ["ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
                    "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel"]


def test_node_roles_get_the_session_manager_actions_only(templates):
    """Node roles: Session Manager's five actions. Batch job roles: ECS Exec's four channel actions. No other role."""
    for name, template in templates.items():
        roles = of_type(template, "AWS::IAM::Role")
        node_roles = {k for k, r in roles.items() if "ec2.amazonaws.com" in str(r["AssumeRolePolicyDocument"])}
        job_roles = {k for k, r in roles.items()  # the Batch engine's JobRole; its execution role gets none
                     if "ecs-tasks.amazonaws.com" in str(r["AssumeRolePolicyDocument"]) and "BatchJobRole" in k}
        ssm_statements = {}
        for policy in of_type(template, "AWS::IAM::Policy").values():
            for statement in policy["PolicyDocument"]["Statement"]:
                actions = set(as_list(statement["Action"]))
                if {a.split(":")[0] for a in actions} & {"ssm", "ssmmessages", "ec2messages"}:
                    for role in policy["Roles"]:
                        ssm_statements.setdefault(role["Ref"], []).append(statement)
        assert set(ssm_statements) == node_roles | job_roles, name
        for role, statements in ssm_statements.items():
            expected = (["ssm:UpdateInstanceInformation", *ECS_EXEC_ACTIONS] if role in node_roles else ECS_EXEC_ACTIONS)
            assert statements == [{"Effect": "Allow", "Resource": "*", "Action": expected}], f"{name}/{role}"


def resource_policy_statements(template):
    """(resource id, kind, statement) of every bucket, topic and key policy statement in ``template``."""
    for resource_id, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        document = {"AWS::S3::BucketPolicy": "PolicyDocument", "AWS::SNS::TopicPolicy": "PolicyDocument",
                    "AWS::KMS::Key": "KeyPolicy"}.get(resource["Type"])
        if document:
            for statement in properties[document]["Statement"]:
                yield resource_id, resource["Type"], statement


def test_every_service_principal_grant_is_conditioned_on_this_account_or_its_source(templates):
    """logging.s3, events, budgets, cloudwatch and CloudWatch Logs may act only for this account's resources:
    a grant to a service principal without aws:SourceArn/aws:SourceAccount (or the KMS equivalents) lets the
    service act for any account (the confused deputy)."""
    unconditioned = set()
    for name, template in templates.items():
        for resource_id, kind, statement in resource_policy_statements(template):
            services = as_list(statement.get("Principal", {}).get("Service", [])) if isinstance(
                statement.get("Principal"), dict) else []
            if statement["Effect"] != "Allow" or not services:
                continue
            keys = {key for operator in statement.get("Condition", {}).values() for key in operator}
            if keys & SOURCE_CONDITION_KEYS:
                continue
            for service in services:
                for action in as_list(statement["Action"]):
                    grant = (service if isinstance(service, str) else str(service), action)
                    assert grant in UNCONDITIONED_SERVICE_GRANTS, f"{name}/{resource_id} ({kind}): {statement}"
                    unconditioned.add(grant)
    # the listed exceptions are the regional fleet's ELB log delivery, nothing more
    assert unconditioned <= UNCONDITIONED_SERVICE_GRANTS


def test_eventbridge_may_publish_to_the_alarm_topic_only_from_the_stacks_own_rules(templates):
    for name, template in templates.items():
        resources = template["Resources"]
        for topic_policy in of_type(template, "AWS::SNS::TopicPolicy").values():
            (topic,) = topic_policy["Topics"]
            rules = sorted(k for k, r in of_type(template, "AWS::Events::Rule").items()
                           if {"Ref": topic["Ref"]} in [t["Arn"] for t in r["Targets"]])
            from_events = [s for s in topic_policy["PolicyDocument"]["Statement"]
                           if s.get("Principal") == {"Service": "events.amazonaws.com"}]
            assert sorted(s["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::GetAtt"][0] for s in from_events) == rules
            for statement in from_events:
                assert statement["Action"] == "sns:Publish" and statement["Resource"] == topic
                assert set(statement["Condition"]) == {"ArnEquals"}
            assert all(resources[r]["Properties"]["Targets"][0].get("RoleArn") is None for r in rules)
    # the Batch cluster's job-state rule is there in every variant of the app
    assert any(of_type(t, "AWS::Events::Rule") for t in templates.values())


# --------------------------------------------------------------------------------------------
# A security group the caller brings gets the EFA self rule
# --------------------------------------------------------------------------------------------


def test_a_callers_security_group_gets_all_traffic_ingress_and_egress_from_and_to_itself():
    from aws_cdk import aws_ec2 as ec2

    from mlcdk import PrivateNetwork, TrainingCluster

    app = cdk.App(context=cli_context())
    stack = cdk.Stack(app, "Brought", env=cdk.Environment(region="us-east-1"))
    network = PrivateNetwork(stack, "Network", availability_zone_ids=["use1-az4", "use1-az5"])
    group = ec2.SecurityGroup(stack, "CallerGroup", vpc=network.vpc, description="caller nodes",
                              allow_all_outbound=False)
    cluster = TrainingCluster(stack, "Cluster", instance_type="trn1.32xlarge", nodes=2, engine="nodes",
                              vpc=network.vpc, security_group=group)
    assert cluster.security_group is group
    resources = cdk.assertions.Template.from_stack(stack).to_json()["Resources"]
    logical = lambda element: stack.resolve(stack.get_logical_id(element))  # noqa: E731
    group_id = {"Fn::GetAtt": [logical(group.node.default_child), "GroupId"]}

    (ingress,) = [c for c in group.node.children if isinstance(c, ec2.CfnSecurityGroupIngress)]
    assert resources[logical(ingress)] == {"Type": "AWS::EC2::SecurityGroupIngress", "Properties": {
        "GroupId": group_id, "SourceSecurityGroupId": group_id, "IpProtocol": "-1",
        "Description": "EFA/NCCL/Neuron collectives between nodes"}}
    egress = cluster.node.find_child("SecurityGroupSelfEgress")
    assert resources[logical(egress)] == {"Type": "AWS::EC2::SecurityGroupEgress", "Properties": {
        "GroupId": group_id, "DestinationSecurityGroupId": group_id, "IpProtocol": "-1",
        "Description": "EFA/NCCL/Neuron collectives between nodes"}}
    # nothing else opens the caller's group, and the cluster made no group of its own
    assert [k for k, r in resources.items() if r["Type"] == "AWS::EC2::SecurityGroupIngress"
            and r["Properties"]["GroupId"] == group_id] == [logical(ingress)]
    assert [k for k, r in resources.items() if r["Type"] == "AWS::EC2::SecurityGroup"] == [logical(group.node.default_child)]
