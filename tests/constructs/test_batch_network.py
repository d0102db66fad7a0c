"""The job containers' network on the Batch engine (issue #21, point 1) and the Batch node's metadata and shutdown
settings (points 6 and 7), followed through the synthesized template.

The chain: the compute environment carries no SecurityGroupIds (Batch refuses them beside the launch template's
EFA interfaces), so Batch gives each multi-node job container's awsvpc interface the VPC's default security group
(Batch user guide, "Compute environment considerations for MNP"). The test walks compute environment -> subnet ->
VPC -> DefaultSecurityGroup and asserts every rule that group has, and the nodes' group's rules for the same traffic.
"""
from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2

from mlcdk import TrainingCluster
from mlcdk.constructs.batch_network import TASK_RULES
from mlcdk.constructs.nag import acknowledge
from tests.harness import cli_context, lint, nag_problems, synth

REGION = "us-east-1"


@pytest.fixture(scope="module")
def built():
    clusters = {}

    def build(app):
        own = cdk.Stack(app, "Own", env=cdk.Environment(region=REGION))
        clusters["own"] = TrainingCluster(own, "Cluster", instance_type="p5.48xlarge", nodes=2)
        brought = cdk.Stack(app, "Brought", env=cdk.Environment(region=REGION))
        vpc = ec2.Vpc(brought, "Vpc", max_azs=2, restrict_default_security_group=True)
        # The app owner's own VPC: its findings are the owner's to answer, as they would in their app.
        acknowledge(vpc, ("NIST.800.53.R5-VPCFlowLogsEnabled", "AwsSolutions-VPC7"), "test fixture: a VPC the app "
                    "owner brings; its flow logs are the owner's decision, not the cluster's")
        for subnet in vpc.public_subnets:
            acknowledge(subnet, ("NIST.800.53.R5-VPCSubnetAutoAssignPublicIpDisabled",
                                 "NIST.800.53.R5-VPCNoUnrestrictedRouteToIGW"), "test fixture: the owner's "
                        "public subnets hold only the NAT gateway; the cluster's nodes are in private subnets")
        clusters["brought"] = TrainingCluster(brought, "Cluster", instance_type="p4d.24xlarge", nodes=2, vpc=vpc)
        nodes = cdk.Stack(app, "Nodes", env=cdk.Environment(region=REGION))
        clusters["nodes"] = TrainingCluster(nodes, "Cluster", instance_type="p5.48xlarge", nodes=2, engine="nodes")
        return [own, brought, nodes]

    return synth(build, cli_context()), clusters


def resources(template: dict, kind: str) -> dict[str, dict]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def rules_of(template: dict, group: dict) -> list[tuple]:
    """Every rule on ``group`` (a GetAtt/Ref as it appears in the template): explicit rule resources and the
    group resource's inline rules. (direction, protocol, peer), sorted."""
    found = []
    for kind, direction, peer_keys in (("AWS::EC2::SecurityGroupIngress", "ingress", ("SourceSecurityGroupId", "CidrIp")),
                                       ("AWS::EC2::SecurityGroupEgress", "egress", ("DestinationSecurityGroupId", "CidrIp"))):
        for resource in resources(template, kind).values():
            props = resource["Properties"]
            if props["GroupId"] == group:
                found.append((direction, props["IpProtocol"], next(props[k] for k in peer_keys if k in props)))
    if "Fn::GetAtt" in group and group["Fn::GetAtt"][1] == "GroupId":
        inline = template["Resources"][group["Fn::GetAtt"][0]]["Properties"]
        found += [("egress", r["IpProtocol"], r["CidrIp"]) for r in inline.get("SecurityGroupEgress", [])]
        found += [("ingress", r["IpProtocol"], r.get("CidrIp") or r["SourceSecurityGroupId"])
                  for r in inline.get("SecurityGroupIngress", [])]
    return sorted(found, key=repr)


def chain(template: dict) -> tuple[dict, dict, str]:
    """compute environment -> its subnet -> the subnet's VPC -> that VPC's default group; and the nodes' group
    (on the launch template's interfaces)."""
    (environment,) = resources(template, "AWS::Batch::ComputeEnvironment").values()
    compute = environment["Properties"]["ComputeResources"]
    assert "SecurityGroupIds" not in compute  # so the task interface falls back to the VPC's default group
    (subnet,) = compute["Subnets"]
    vpc = template["Resources"][subnet["Ref"]]["Properties"]["VpcId"]["Ref"]
    (launch_template,) = resources(template, "AWS::EC2::LaunchTemplate").values()
    interfaces = launch_template["Properties"]["LaunchTemplateData"]["NetworkInterfaces"]
    node_group = interfaces[0]["Groups"][0]
    assert all(n["Groups"] == [node_group] for n in interfaces)
    return {"Fn::GetAtt": [vpc, "DefaultSecurityGroup"]}, node_group, vpc


@pytest.mark.parametrize("name", ["own", "brought"])
def test_the_task_interface_gets_all_traffic_with_the_job_and_the_nodes_and_egress(built, name):
    template = built[0].templates["Own" if name == "own" else "Brought"]
    default_group, node_group, _ = chain(template)
    assert rules_of(template, default_group) == sorted([
        ("egress", "-1", "0.0.0.0/0"),
        ("ingress", "-1", default_group),   # the job's other containers
        ("ingress", "-1", node_group),      # the cluster's nodes
    ], key=repr)
    # Whichever group Batch gives the task interface, the same traffic passes: the nodes' group has it too.
    assert rules_of(template, node_group) == sorted([
        ("egress", "-1", "0.0.0.0/0"),
        ("egress", "-1", default_group),
        ("egress", "-1", node_group),
        ("ingress", "-1", default_group),
        ("ingress", "-1", node_group),
    ], key=repr)


def test_the_rules_come_after_the_revocation_of_the_default_rules(built):
    template = built[0].templates["Own"]
    default_group, node_group, vpc = chain(template)
    (revoke,) = [k for k, r in resources(template, "Custom::VpcRestrictDefaultSG").items()
                 if r["Properties"]["DefaultSecurityGroupId"] == default_group]
    rules = [r for kind in ("AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress")
             for r in resources(template, kind).values()
             if default_group in (r["Properties"]["GroupId"], r["Properties"].get("SourceSecurityGroupId"),
                                  r["Properties"].get("DestinationSecurityGroupId"))]
    assert len(rules) == 5 and all(revoke in r["DependsOn"] for r in rules)


def test_a_vpc_you_bring_is_opened_with_a_warning_and_an_imported_one_is_left_with_the_rules_to_add(built):
    brought = built[1]["brought"]
    assert brought.task_network.managed is True
    assert any("mlcdk:defaultSecurityGroupOpened" in str(m.data) or "now allows all traffic from itself" in str(m.data)
               for c in brought.node.find_all() for m in c.node.metadata if m.type == "aws:cdk:warning")
    app = cdk.App(context=cli_context())
    stack = cdk.Stack(app, "Imported", env=cdk.Environment(region=REGION))
    vpc = ec2.Vpc.from_vpc_attributes(stack, "Vpc", vpc_id="vpc-0123456789abcdef0", availability_zones=["us-east-1a"],
                                      private_subnet_ids=["subnet-0123456789abcdef0"])
    cluster = TrainingCluster(stack, "Cluster", instance_type="p4d.24xlarge", nodes=2, vpc=vpc)
    assert cluster.task_network.managed is False and cluster.task_network.group_id is None
    texts = [str(m.data) for c in cluster.node.find_all() for m in c.node.metadata if m.type == "aws:cdk:warning"]
    assert any("cannot change the default group of an imported VPC: give it ingress of all traffic from itself and "
               "from the cluster's group" in t for t in texts)


def test_engine_nodes_leaves_the_default_group_closed(built):
    template = built[0].templates["Nodes"]
    (vpc,) = resources(template, "AWS::EC2::VPC")
    default_group = {"Fn::GetAtt": [vpc, "DefaultSecurityGroup"]}
    assert rules_of(template, default_group) == []
    assert built[1]["nodes"].task_network is None


def test_the_card_0_slot_and_the_rule_names_are_reported(built):
    network = built[1]["own"].task_network
    assert network.card0_free_slots == 1 and network.managed is True
    assert [direction for direction, _, _ in TASK_RULES] == ["ingress", "ingress", "egress"]


# --------------------------------------------------------------------------------------------
# The Batch node's metadata hop limit and shutdown behavior (points 6 and 7)
# --------------------------------------------------------------------------------------------


def launch_data(template: dict) -> dict:
    (launch_template,) = resources(template, "AWS::EC2::LaunchTemplate").values()
    return launch_template["Properties"]["LaunchTemplateData"]


def test_batch_nodes_keep_containers_one_hop_away_from_imds_and_terminate_on_shutdown(built):
    data = launch_data(built[0].templates["Own"])
    assert data["MetadataOptions"] == {"HttpPutResponseHopLimit": 1,
                                       "HttpTokens": "required", "InstanceMetadataTags": "enabled"}
    assert data["InstanceInitiatedShutdownBehavior"] == "terminate"
    nodes = launch_data(built[0].templates["Nodes"])
    assert nodes["MetadataOptions"]["HttpPutResponseHopLimit"] == 2  # persistent nodes: the role is the workload's
    assert "InstanceInitiatedShutdownBehavior" not in nodes


def test_gates(built):
    result = built[0]
    assert nag_problems(result) == []
    for name in ("Own", "Brought"):
        assert lint(result.template_paths[name], [REGION]) == []


# --------------------------------------------------------------------------------------------
# Point 7: the instance role keeps only what the host needs; the job role is the job's identity
# --------------------------------------------------------------------------------------------


def test_the_node_role_cannot_reach_the_checkpoints_on_batch(built):
    template, cluster = built[0].templates["Own"], built[1]["own"]
    stack = cdk.Stack.of(cluster)
    node_role = stack.get_logical_id(cluster.role.node.default_child)
    bucket = stack.get_logical_id(cluster.checkpoint_bucket.node.default_child)
    key = stack.get_logical_id(cluster.encryption_key.node.default_child)
    node_policies = [r["Properties"]["PolicyDocument"] for r in resources(template, "AWS::IAM::Policy").values()
                     if {"Ref": node_role} in r["Properties"]["Roles"]]
    text = repr(node_policies)
    assert node_policies and bucket not in text and key not in text
    actions = sorted({a for p in node_policies for s in p["Statement"] for a in
                      (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])})
    assert not [a for a in actions if a.startswith(("s3:", "kms:"))], actions
    # Grants made through the cluster reach the job role, the only identity a job has.
    assert cluster.grant_principal.role_arn == cluster.job_role.role_arn
    nodes = built[1]["nodes"]
    assert nodes.grant_principal.role_arn == nodes.role.role_arn  # persistent nodes: the node role is the workload's


# --------------------------------------------------------------------------------------------
# Point 9: S3 through a gateway endpoint on the private subnets' route tables
# --------------------------------------------------------------------------------------------


def test_s3_goes_through_a_gateway_endpoint_on_the_private_route_tables(built):
    template = built[0].templates["Own"]
    (endpoint,) = resources(template, "AWS::EC2::VPCEndpoint").values()
    props = endpoint["Properties"]
    assert props["VpcEndpointType"] == "Gateway"
    assert props["ServiceName"] == {"Fn::Join": ["", ["com.amazonaws.", {"Ref": "AWS::Region"}, ".s3"]]}
    private_tables = {k for k, r in resources(template, "AWS::EC2::RouteTable").items() if "Private" in k}
    assert len(private_tables) == 3 and {t["Ref"] for t in props["RouteTableIds"]} == private_tables


# --------------------------------------------------------------------------------------------
# Point 10: jobs held in RUNNABLE are cancelled, and the cancellation reaches the alarm topic
# --------------------------------------------------------------------------------------------


def test_the_queue_cancels_jobs_held_for_capacity_or_misconfiguration(built):
    (queue,) = resources(built[0].templates["Own"], "AWS::Batch::JobQueue").values()
    assert queue["Properties"]["JobStateTimeLimitActions"] == [
        {"Action": "CANCEL", "MaxTimeSeconds": 14_400, "Reason": "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY",
         "State": "RUNNABLE"},
        {"Action": "CANCEL", "MaxTimeSeconds": 600, "Reason": "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE",
         "State": "RUNNABLE"},
        {"Action": "CANCEL", "MaxTimeSeconds": 600, "Reason": "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT",
         "State": "RUNNABLE"},
    ]


def test_a_cancelled_job_event_matches_the_alarm_topics_rule(built):
    """The rule's pattern routes the event Batch sends for a job cancelled by the time limit (status FAILED, the
    statusReason the Batch user guide gives) and nothing from another queue: put on moto's EventBridge, whose rule
    delivers to a queue standing in for the topic."""
    import json

    import boto3
    from moto import mock_aws

    template = built[0].templates["Own"]
    (queue_id,) = resources(template, "AWS::Batch::JobQueue")
    (rule,) = [r["Properties"] for r in resources(template, "AWS::Events::Rule").values()
               if r["Properties"]["EventPattern"]["source"] == ["aws.batch"]]
    queue_arn = "arn:aws:batch:us-east-1:123456789012:job-queue/mlcdk-queue"
    pattern = json.loads(json.dumps(rule["EventPattern"]).replace(
        json.dumps({"Fn::GetAtt": [queue_id, "JobQueueArn"]}), json.dumps(queue_arn)))

    def entry(queue: str) -> dict:
        return {"Source": "aws.batch", "DetailType": "Batch Job State Change", "Detail": json.dumps({
            "jobName": "pretrain", "jobId": "0b1", "jobQueue": queue, "status": "FAILED",
            "statusReason": "Canceled by JobStateTimeLimit action due to reason: CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY"})}

    keys = dict(region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
    with mock_aws():
        events, sqs = boto3.client("events", **keys), boto3.client("sqs", **keys)
        inbox = sqs.create_queue(QueueName="alarm-topic")["QueueUrl"]
        inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="JobStateChanges", EventPattern=json.dumps(pattern))
        events.put_targets(Rule="JobStateChanges", Targets=[{"Id": "topic", "Arn": inbox_arn}])
        events.put_events(Entries=[entry(queue_arn + "-other"), entry(queue_arn)])
        messages = sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10).get("Messages", [])
    (message,) = messages
    detail = json.loads(message["Body"])["detail"]
    assert detail["jobQueue"] == queue_arn and detail["statusReason"].startswith("Canceled by JobStateTimeLimit")


def test_the_capacity_wait_is_the_job_options():
    from mlcdk.constructs.batch_engine import runnable_limits

    limits = runnable_limits(60)
    assert [(a.reason.name, a.max_time.to_seconds()) for a in limits] == [
        ("INSUFFICIENT_INSTANCE_CAPACITY", 3600), ("COMPUTE_ENVIRONMENT_MAX_RESOURCE", 600),
        ("JOB_RESOURCE_REQUIREMENT", 600)]
