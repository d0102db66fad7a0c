"""Every moto fix of mlcdk.emulator.fixes is needed and works: for each, a small witness (a template deployed with
moto's CloudFormation in-process, or the Batch calls `mlcdk submit` makes) holds with every fix applied and fails
with every fix but that one. The same fixes run in the emulator's server process.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable

import boto3
import pytest
from moto import mock_aws

from mlcdk.emulator.fixes import FIXES, moto_fixes

pytestmark = pytest.mark.integration

REGION = "us-east-1"
DOCKERLESS = {"batch": {"use_docker": False}, "lambda": {"use_docker": False}}
ALARM = {"Type": "AWS::CloudWatch::Alarm", "Properties": {
    "MetricName": "CPUUtilization", "Namespace": "AWS/EC2", "Statistic": "Average", "Period": 60,
    "EvaluationPeriods": 1, "Threshold": 90, "ComparisonOperator": "GreaterThanThreshold"}}
POLICY = {"Version": "2012-10-17", "Statement": [{"Sid": "Root", "Effect": "Allow", "Action": "kms:*", "Resource": "*",
                                                  "Principal": {"AWS": "arn:aws:iam::123456789012:root"}}]}


def client(service: str):
    return boto3.client(service, region_name=REGION)


def deploy(resources: dict, outputs: dict | None = None, parameters: dict | None = None, name: str = "Witness") -> dict:
    """create_stack with ``resources``; fail unless CREATE_COMPLETE; return the stack's description."""
    template = {"Resources": resources, **({"Outputs": outputs} if outputs else {})}
    cfn = client("cloudformation")
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(template), Capabilities=["CAPABILITY_IAM"],
                     Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in (parameters or {}).items()])
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    events = [e.get("ResourceStatusReason") for e in cfn.describe_stack_events(StackName=name)["StackEvents"]
              if e.get("ResourceStatusReason")]
    assert stack["StackStatus"] == "CREATE_COMPLETE", f"{stack['StackStatus']}: {events}"
    return stack


def physical(stack: str, logical: str) -> str:
    return client("cloudformation").describe_stack_resource(StackName=stack, LogicalResourceId=logical)[
        "StackResourceDetail"]["PhysicalResourceId"]


def network() -> dict[str, str]:
    """A VPC, a subnet and a security group for Batch compute environments; their IDs as template parameters."""
    ec2 = client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="nodes", Description="nodes", VpcId=vpc)["GroupId"]
    role = client("iam").create_role(RoleName="nodes", AssumeRolePolicyDocument=json.dumps(POLICY))["Role"]["Arn"]
    profile = client("iam").create_instance_profile(InstanceProfileName="nodes")["InstanceProfile"]["Arn"]
    return {"subnet": subnet, "group": group, "role": role, "profile": profile}


def compute_environment(ids: dict[str, str], **resources) -> dict:
    """An AWS::Batch::ComputeEnvironment as CDK writes it: Type 'managed' (lower case), no ServiceRole."""
    return {"Type": "AWS::Batch::ComputeEnvironment", "Properties": {
        "Type": "managed", "State": "ENABLED", "ComputeResources": {
            "Type": "EC2", "MinvCpus": 0, "MaxvCpus": 256, "InstanceTypes": ["trn1.32xlarge"],
            "Subnets": [ids["subnet"]], "InstanceRole": ids["profile"], **resources}}}


def queue(environment: dict, **properties) -> dict:
    return {"Type": "AWS::Batch::JobQueue", "Properties": {
        "Priority": 1, "State": "ENABLED", "ComputeEnvironmentOrder": [{"Order": 1, "ComputeEnvironment": environment}],
        **properties}}


MULTINODE = {"Type": "AWS::Batch::JobDefinition", "Properties": {
    "Type": "multinode", "PlatformCapabilities": ["EC2"], "Timeout": {"AttemptDurationSeconds": 3600},
    "NodeProperties": {"NumNodes": 2, "MainNode": 0, "NodeRangeProperties": [{"TargetNodes": "0:", "Container": {
        "Image": "public.ecr.aws/neuron/pytorch-training-neuronx:2.1.2", "Command": ["python3", "train.py"],
        "ResourceRequirements": [{"Type": "VCPU", "Value": "128"}, {"Type": "MEMORY", "Value": "471859"}],
        "LinuxParameters": {"Devices": [{"HostPath": "/dev/infiniband/uverbs0"}]},
        "LogConfiguration": {"LogDriver": "awslogs", "Options": {"awslogs-group": "jobs"}}}}]}}}


# ------------------------------------------------------------------------------------------------------------------
# One witness per fix: it returns when moto behaves as AWS does, and raises when it does not.
# ------------------------------------------------------------------------------------------------------------------

def kms_key_tags() -> None:
    stack = deploy({"Key": {"Type": "AWS::KMS::Key", "Properties": {
        "KeyPolicy": json.dumps(POLICY), "Tags": [{"Key": "team", "Value": "ml"}]}}})
    key = physical(stack["StackName"], "Key")
    assert client("kms").list_resource_tags(KeyId=key)["Tags"] == [{"TagKey": "team", "TagValue": "ml"}]


def kms_key_policy() -> None:
    stack = deploy({"Key": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": POLICY}}})
    kms, key = client("kms"), physical(stack["StackName"], "Key")
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Enabled"
    assert json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"]) == POLICY


def getatt_unmodeled() -> None:
    """A dashboard with an alarm widget, as mlcdk's guardrails build it: its body reads the (skipped) alarm's ARN."""
    body = {"Fn::Join": ["", ['{"widgets":[{"type":"alarm","properties":{"alarms":["', {"Fn::GetAtt": ["Alarm", "Arn"]},
                              '"]}}]}']]}
    deploy({"Alarm": ALARM, "Board": {"Type": "AWS::CloudWatch::Dashboard", "Properties": {
        "DashboardName": "witness", "DashboardBody": body}}})
    widget = json.loads(client("cloudwatch").get_dashboard(DashboardName="witness")["DashboardBody"])["widgets"][0]
    assert widget["properties"]["alarms"] == ["arn:aws:moto-unmodeled:::AWS::CloudWatch::Alarm/Alarm/Arn"]


def change_set_outputs() -> None:
    cfn = client("cloudformation")
    template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
                "Outputs": {"TopicArn": {"Value": {"Ref": "Topic"}, "Export": {"Name": "witness-topic"}}}}
    cfn.create_change_set(StackName="Witness", ChangeSetName="create", ChangeSetType="CREATE",
                          TemplateBody=json.dumps(template))
    cfn.execute_change_set(StackName="Witness", ChangeSetName="create")
    outputs = cfn.describe_stacks(StackName="Witness")["Stacks"][0].get("Outputs", [])
    assert [o["OutputKey"] for o in outputs] == ["TopicArn"], outputs
    assert [e["Name"] for e in cfn.list_exports()["Exports"]] == ["witness-topic"]


def route_table_delete() -> None:
    stack = deploy({"Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.1.0.0/16"}},
                    "Routes": {"Type": "AWS::EC2::RouteTable", "Properties": {"VpcId": {"Ref": "Vpc"}}}})
    vpc, routes = physical(stack["StackName"], "Vpc"), physical(stack["StackName"], "Routes")
    client("cloudformation").delete_stack(StackName="Witness")
    ec2 = client("ec2")
    assert routes not in {t["RouteTableId"] for t in ec2.describe_route_tables()["RouteTables"]}
    assert vpc not in {v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]}


def log_group_kms_key() -> None:
    key = client("kms").create_key(Policy=json.dumps(POLICY))["KeyMetadata"]["Arn"]
    stack = deploy({"Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {"KmsKeyId": key}}})
    name = physical(stack["StackName"], "Logs")
    (group,) = [g for g in client("logs").describe_log_groups()["logGroups"] if g["logGroupName"] == name]
    assert group.get("kmsKeyId") == key


def batch_compute_environment_create() -> None:
    ids = network()
    stack = deploy({"Nodes": compute_environment(ids, SecurityGroupIds=[ids["group"]])})
    (environment,) = client("batch").describe_compute_environments(
        computeEnvironments=[physical(stack["StackName"], "Nodes")])["computeEnvironments"]
    assert (environment["type"], environment["computeResources"]["maxvCpus"]) == ("MANAGED", 256)
    assert environment["serviceRole"].endswith(":role/aws-service-role/batch.amazonaws.com/AWSServiceRoleForBatch")


def _launch_template(ids: dict[str, str]) -> dict:
    return {"Type": "AWS::EC2::LaunchTemplate", "Properties": {"LaunchTemplateData": {"NetworkInterfaces": [
        {"DeviceIndex": 0, "NetworkCardIndex": 0, "InterfaceType": "efa", "Groups": [ids["group"]]}]}}}


def batch_launch_template_groups() -> None:
    ids = network()
    stack = deploy({"Template": _launch_template(ids), "Nodes": compute_environment(ids, LaunchTemplate={
        "LaunchTemplateId": {"Ref": "Template"}, "Version": {"Fn::GetAtt": ["Template", "LatestVersionNumber"]}})})
    (environment,) = client("batch").describe_compute_environments(
        computeEnvironments=[physical(stack["StackName"], "Nodes")])["computeEnvironments"]
    assert "securityGroupIds" not in environment["computeResources"]  # stored as the template wrote it


def batch_job_queue_create() -> None:
    ids = network()
    stack = deploy({"Nodes": compute_environment(ids, SecurityGroupIds=[ids["group"]]),
                    "Queue": queue({"Ref": "Nodes"}, Tags={"mlcdk:cluster": "Trainer"})})
    arn = physical(stack["StackName"], "Queue")
    assert client("batch").list_tags_for_resource(resourceArn=arn)["tags"] == {"mlcdk:cluster": "Trainer"}


def batch_getatt_arns() -> None:
    ids = network()
    stack = deploy({"Nodes": compute_environment(ids, SecurityGroupIds=[ids["group"]]),
                    "Queue": queue({"Fn::GetAtt": ["Nodes", "ComputeEnvironmentArn"]})},
                   outputs={"QueueArn": {"Value": {"Fn::GetAtt": ["Queue", "JobQueueArn"]}}})
    assert stack["Outputs"][0]["OutputValue"] == physical(stack["StackName"], "Queue")


def batch_job_definition_create() -> None:
    stack = deploy({"Job": MULTINODE})
    definitions = client("batch").describe_job_definitions(jobDefinitions=[physical(stack["StackName"], "Job")])
    (definition,) = definitions["jobDefinitions"]
    assert (definition["type"], definition["timeout"], definition["platformCapabilities"]) == (
        "multinode", {"attemptDurationSeconds": 3600}, ["EC2"])


def batch_describe_node_properties() -> None:
    batch = client("batch")
    batch.register_job_definition(jobDefinitionName="job", type="multinode", nodeProperties={
        "numNodes": 2, "mainNode": 0, "nodeRangeProperties": [{"targetNodes": "0:", "container": {
            "image": "busybox", "command": ["true"], "resourceRequirements": [{"type": "VCPU", "value": "1"}]}}]})
    (definition,) = batch.describe_job_definitions(jobDefinitionName="job")["jobDefinitions"]
    assert definition.get("nodeProperties", {}).get("numNodes") == 2, definition


def batch_delete_with_stack() -> None:
    ids = network()
    stack = deploy({"Nodes": compute_environment(ids, SecurityGroupIds=[ids["group"]]),
                    "Queue": queue({"Ref": "Nodes"}), "Job": MULTINODE})
    made = {name: physical(stack["StackName"], name) for name in ("Nodes", "Queue", "Job")}
    client("cloudformation").delete_stack(StackName="Witness")
    batch = client("batch")
    assert not batch.describe_compute_environments(computeEnvironments=[made["Nodes"]])["computeEnvironments"]
    assert not batch.describe_job_queues(jobQueues=[made["Queue"]])["jobQueues"]
    (definition,) = batch.describe_job_definitions(jobDefinitions=[made["Job"]])["jobDefinitions"]
    assert definition["status"] == "INACTIVE"


def batch_submit_node_overrides() -> None:
    ids = network()
    batch = client("batch")
    environment = batch.create_compute_environment(computeEnvironmentName="nodes", type="UNMANAGED",
                                                   serviceRole=ids["role"])["computeEnvironmentArn"]
    job_queue = batch.create_job_queue(jobQueueName="q", priority=1, state="ENABLED", computeEnvironmentOrder=[
        {"order": 1, "computeEnvironment": environment}])["jobQueueArn"]
    definition = batch.register_job_definition(jobDefinitionName="job", type="multinode", nodeProperties={
        "numNodes": 2, "mainNode": 0, "nodeRangeProperties": [{"targetNodes": "0:", "container": {
            "image": "busybox", "command": ["true"], "resourceRequirements": [{"type": "VCPU", "value": "1"}]}}]})[
        "jobDefinitionArn"]
    job = batch.submit_job(jobName="j", jobQueue=job_queue, jobDefinition=definition, nodeOverrides={
        "numNodes": 3, "nodePropertyOverrides": [{"targetNodes": "0:", "containerOverrides": {
            "command": ["python3", "train.py"]}}]})["jobId"]
    (described,) = batch.describe_jobs(jobs=[job])["jobs"]
    assert described["nodeProperties"]["numNodes"] == 3, described.get("nodeProperties")
    assert described["nodeProperties"]["nodeRangeProperties"][0]["container"]["command"] == ["python3", "train.py"]
    with pytest.raises(batch.exceptions.ClientException, match="numNodes 0 must be greater than the main node"):
        batch.submit_job(jobName="j", jobQueue=job_queue, jobDefinition=definition, nodeOverrides={"numNodes": 0})


#: An InferenceFleet's ECS resources as CDK writes them (the service depends on the association).
ECS = {
    "Cluster": {"Type": "AWS::ECS::Cluster"},
    "Provider": {"Type": "AWS::ECS::CapacityProvider", "Properties": {"AutoScalingGroupProvider": {
        "AutoScalingGroupArn": "fleet-nodes", "ManagedScaling": {"Status": "ENABLED", "TargetCapacity": 100},
        "ManagedTerminationProtection": "ENABLED", "ManagedDraining": "ENABLED"}}},
    "Providers": {"Type": "AWS::ECS::ClusterCapacityProviderAssociations", "Properties": {
        "Cluster": {"Ref": "Cluster"}, "CapacityProviders": [{"Ref": "Provider"}],
        "DefaultCapacityProviderStrategy": [{"CapacityProvider": {"Ref": "Provider"}, "Weight": 1}]}},
    "Task": {"Type": "AWS::ECS::TaskDefinition", "Properties": {
        "Family": "serving", "NetworkMode": "bridge", "RequiresCompatibilities": ["EC2"],
        "TaskRoleArn": "arn:aws:iam::123456789012:role/servers",
        "ContainerDefinitions": [{"Name": "Server", "Image": "public.ecr.aws/neuron/vllm:0.16", "Memory": 14745,
                                  "EntryPoint": ["vllm", "serve"], "Command": ["TinyLlama/TinyLlama-1.1B-Chat-v1.0"],
                                  "LinuxParameters": {"Devices": [{"HostPath": "/dev/neuron0"}]}}]}},
    "Service": {"Type": "AWS::ECS::Service", "DependsOn": ["Providers"], "Properties": {
        "Cluster": {"Ref": "Cluster"}, "TaskDefinition": {"Ref": "Task"}, "HealthCheckGracePeriodSeconds": 360,
        "CapacityProviderStrategy": [{"CapacityProvider": {"Ref": "Provider"}, "Weight": 1}],
        "DeploymentConfiguration": {"DeploymentCircuitBreaker": {"Enable": True, "Rollback": True},
                                    "MaximumPercent": 200, "MinimumHealthyPercent": 100},
        "LoadBalancers": [{"ContainerName": "Server", "ContainerPort": 8080,
                           "TargetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/t/1"}]}}}


def ecs_capacity_providers() -> None:
    stack = deploy(ECS)
    ecs, cluster = client("ecs"), physical(stack["StackName"], "Cluster")
    provider = physical(stack["StackName"], "Provider")
    (found,) = ecs.describe_capacity_providers(capacityProviders=[provider])["capacityProviders"]
    assert found["autoScalingGroupProvider"]["managedTerminationProtection"] == "ENABLED"
    assert ecs.describe_clusters(clusters=[cluster])["clusters"][0]["capacityProviders"] == [provider]
    client("cloudformation").delete_stack(StackName=stack["StackName"])
    assert ecs.describe_capacity_providers(capacityProviders=[provider])["capacityProviders"] == []


def ecs_service_properties() -> None:
    stack = deploy(ECS)
    cluster, service = (physical(stack["StackName"], name) for name in ("Cluster", "Service"))
    (found,) = client("ecs").describe_services(cluster=cluster, services=[service])["services"]
    assert found.get("healthCheckGracePeriodSeconds") == 360
    assert found["deploymentConfiguration"]["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    assert found["loadBalancers"][0]["containerPort"] == 8080
    assert found["desiredCount"] == 1  # no DesiredCount in the template: CloudFormation creates it with 1 task


def ecs_task_definition_properties() -> None:
    stack = deploy(ECS)
    definition = client("ecs").describe_task_definition(taskDefinition=physical(stack["StackName"], "Task"))
    assert definition["taskDefinition"].get("taskRoleArn") == "arn:aws:iam::123456789012:role/servers"
    assert definition["taskDefinition"]["networkMode"] == "bridge"
    assert definition["taskDefinition"]["containerDefinitions"][0]["linuxParameters"]["devices"][0]["hostPath"] == (
        "/dev/neuron0")


def ecs_delete_with_stack() -> None:
    stack = deploy(ECS)
    ecs = client("ecs")
    made = {name: physical(stack["StackName"], name) for name in ("Cluster", "Service", "Task")}
    client("cloudformation").delete_stack(StackName=stack["StackName"])
    assert ecs.describe_clusters(clusters=[made["Cluster"]])["clusters"][0]["status"] == "INACTIVE"
    (service,) = ecs.describe_services(cluster=made["Cluster"], services=[made["Service"]])["services"]
    assert service["status"] == "INACTIVE"
    assert ecs.describe_task_definition(taskDefinition=made["Task"])["taskDefinition"]["status"] == "INACTIVE"


#: Fix -> (its witness, what goes wrong without the fix: a pattern the failure's text matches).
WITNESSES: dict[str, tuple[Callable[[], None], str]] = {
    "kms-key-tags": (kms_key_tags, r"CREATE_FAILED|TagKey"),
    "kms-key-policy": (kms_key_policy, r"500|JSON object must be str"),
    "getatt-unmodeled": (getatt_unmodeled, r"references undefined resource Alarm"),
    "change-set-outputs": (change_set_outputs, r"assert \[\] == \['TopicArn'\]"),
    "route-table-delete": (route_table_delete, r"DependencyViolation|assert 'vpc-|assert 'rtb-"),
    "log-group-kms-key": (log_group_kms_key, r"assert None == 'arn:aws:kms:"),
    "batch-compute-environment-create": (batch_compute_environment_create, r"ServiceRole|managed"),
    "batch-launch-template-groups": (batch_launch_template_groups, r"KeyError: 'securityGroupIds'"),
    "batch-job-queue-create": (batch_job_queue_create, r"assert \{\} == \{'mlcdk:cluster': 'Trainer'\}"),
    "batch-getatt-arns": (batch_getatt_arns, r"get_cfn_attribute|has_cfn_attr|CREATE_FAILED"),
    "batch-job-definition-create": (batch_job_definition_create, r"RetryStrategy|container"),
    "batch-describe-node-properties": (batch_describe_node_properties, r"assert None == 2"),
    "batch-delete-with-stack": (batch_delete_with_stack, r"assert not \[\{"),
    "batch-submit-node-overrides": (batch_submit_node_overrides, r"assert 2 == 3|KeyError: 'nodeProperties'"),
    # Without the fix the stack holds no Provider: moto's DescribeStackResource fails on it.
    "ecs-capacity-providers": (ecs_capacity_providers, r"has no attribute 'logical_resource_id'|not enough values"),
    "ecs-service-properties": (ecs_service_properties, r"assert None == 360"),
    "ecs-task-definition-properties": (ecs_task_definition_properties, r"assert None == 'arn:aws:iam::"),
    "ecs-delete-with-stack": (ecs_delete_with_stack, r"assert 'ACTIVE' == 'INACTIVE'"),
}


def test_every_fix_has_a_witness():
    assert list(WITNESSES) == [f.name for f in FIXES]


@pytest.mark.parametrize("name", list(WITNESSES))
def test_the_witness_holds_with_every_fix(name: str, monkeypatch):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(var, "testing")
    with moto_fixes(), mock_aws(config=DOCKERLESS):
        WITNESSES[name][0]()


@pytest.mark.parametrize("name", list(WITNESSES))
def test_the_witness_fails_without_its_fix(name: str, monkeypatch):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(var, "testing")
    witness, broken = WITNESSES[name]
    with moto_fixes(without=[name]), mock_aws(config=DOCKERLESS):
        with pytest.raises(Exception) as error:
            witness()
    assert re.search(broken, f"{type(error.value).__name__}: {error.value}"), f"{type(error.value).__name__}: {error.value}"


def test_unknown_fix_names_are_refused():
    with pytest.raises(ValueError, match="unknown moto fix"):
        with moto_fixes(without=["kms-key-tag"]):
            pass
