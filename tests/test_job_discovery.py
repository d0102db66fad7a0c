"""Clusters found by name in any stack (issue #23, point 1).

A user's own stack, holding a TrainingCluster under a construct ID of its own and no stack outputs, is synthesized,
deployed to moto in-process (as tests/integration/test_inprocess_deploy.py deploys this repo's stacks), and then
`mlcdk clusters`, `submit`, `jobs`, `logs` and `cancel` work against it, found by the tags on its job queue alone.
The template's tags are checked by value; the selection rules (`--cluster`, one cluster, two) against tagged queues.
"""
from __future__ import annotations

import json

import boto3
import pytest

from mlcdk.launch import inline_command
from mlcdk.presets import discovery
from tests.harness import cli_context, synth
from tests.jobs_cloud import (  # noqa: F401 (fixtures)
    CLUSTER, CMD, REGION, USER_COMMAND, Cloud, add_node_job, aws_environment, cloud, error_line, invoke,
    load_moto_fixes, moto_gaps, sent, set_status,
)

ACCOUNT = "123456789012"
STACK, CONSTRUCT = "ResearchStack", "Pretrain"


def _user_app(app):
    """A third party's stack: a TrainingCluster under its own construct ID, no outputs; the AMI is one moto knows."""
    import aws_cdk as cdk
    from aws_cdk import aws_ec2 as ec2

    from mlcdk import StorageOptions, TrainingCluster
    from mlcdk.settings import EMULATOR_AMI_PARAMETER

    stack = cdk.Stack(app, STACK, env=cdk.Environment(account=ACCOUNT, region=REGION))
    TrainingCluster(stack, CONSTRUCT, instance_type="trn1.32xlarge", nodes=2, removal_policy=cdk.RemovalPolicy.DESTROY,
                    machine_image=ec2.MachineImage.from_ssm_parameter(EMULATOR_AMI_PARAMETER),
                    storage=StorageOptions(root_device_name="/dev/xvda"))
    return [stack]


@pytest.fixture(scope="module")
def user_app():
    return synth(_user_app, cli_context(), nag=False)


def _logical(template: dict, kind: str, part: str = "") -> str:
    """The one resource of type ``kind`` whose logical ID holds ``part``."""
    (found,) = [name for name, resource in template["Resources"].items() if resource["Type"] == kind and part in name]
    return found


def test_the_job_queue_and_definition_carry_what_the_job_commands_need(user_app):
    template = user_app.templates[STACK]
    queue = template["Resources"][_logical(template, "AWS::Batch::JobQueue")]["Properties"]
    definition = template["Resources"][_logical(template, "AWS::Batch::JobDefinition")]["Properties"]
    tags = {key: value for key, value in queue["Tags"].items() if key in discovery.QUEUE_TAGS}
    container = definition["NodeProperties"]["NodeRangeProperties"][0]["Container"]
    environment = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert tags == {
        "mlcdk:cluster": "ResearchStack/Pretrain",
        "mlcdk:job-definition": {"Ref": _logical(template, "AWS::Batch::JobDefinition")},
        "mlcdk:log-group": {"Ref": _logical(template, "AWS::Logs::LogGroup", "JobLogs")},
        "mlcdk:max-nodes": "2",
        "mlcdk:bucket": environment["MLCDK_CHECKPOINT_BUCKET"],  # {"Ref": the checkpoint bucket}
    }
    assert list(environment["MLCDK_CHECKPOINT_BUCKET"]) == ["Ref"]
    assert definition["Tags"]["mlcdk:cluster"] == "ResearchStack/Pretrain"
    assert "Outputs" not in template or not any(key.startswith("Job") for key in template["Outputs"])
    assert user_app.stacks[STACK].node.find_child(CONSTRUCT).cli_name == "ResearchStack/Pretrain"


@pytest.mark.parametrize(("stack_name", "path", "name"), [
    ("TrainingStack", "Cluster", "TrainingStack/Cluster"),
    ("Prod-Training", "Team/Pretrain", "Prod-Training/Team/Pretrain"),
    ("S", "My Cluster (v2)!", "S/My Cluster -v2--"),  # ( ) ! are not tag characters
])
def test_cluster_names_are_the_stack_and_construct_path_in_tag_characters(stack_name, path, name):
    assert discovery.cluster_name(stack_name, path) == name


def test_a_name_longer_than_a_tag_value_is_refused():
    with pytest.raises(ValueError, match="longer than the 256 characters of a Batch tag value"):
        discovery.cluster_name("S" * 128, "C" * 128)
    assert len(discovery.cluster_name("S" * 128, "C" * 127)) == 256


@pytest.mark.integration
def test_a_user_stack_deployed_to_moto_takes_jobs_by_cluster_name(user_app, monkeypatch, sent):
    """The deployed stack has no outputs: clusters, submit, jobs, logs and cancel find it by its queue's tags."""
    from moto import mock_aws

    from tests.integration.test_inprocess_deploy import _answer_custom_resources, _publish_assets

    aws_environment(monkeypatch)
    with load_moto_fixes().moto_fixes(), mock_aws(config={"lambda": {"use_docker": False},
                                                          "batch": {"use_docker": False}}):
        cfn = boto3.client("cloudformation")
        boto3.client("ssm").put_parameter(Name="/cdk-bootstrap/hnb659fds/version", Value="30", Type="String")
        url = _publish_assets(boto3.client("s3"), user_app.outdir, STACK, REGION)
        stack_id = cfn.create_stack(StackName=STACK, TemplateURL=url, Capabilities=["CAPABILITY_IAM"])["StackId"]
        _answer_custom_resources(user_app.templates[STACK], stack_id, REGION)
        assert cfn.describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
        physical = {r["LogicalResourceId"]: r["PhysicalResourceId"]
                    for r in cfn.describe_stack_resources(StackName=stack_id)["StackResources"] if r.get("PhysicalResourceId")}
        template = user_app.templates[STACK]
        queue = boto3.client("batch").describe_job_queues(jobQueues=[physical[_logical(template, "AWS::Batch::JobQueue")]])[
            "jobQueues"][0]["jobQueueArn"]
        definition = physical[_logical(template, "AWS::Batch::JobDefinition")]
        group = physical[_logical(template, "AWS::Logs::LogGroup", "JobLogs")]

        listed = json.loads(invoke("clusters", "--json").stdout)
        assert listed["region"] == REGION
        (cluster,) = listed["clusters"]
        assert (cluster["name"], cluster["queue"], cluster["jobDefinition"], cluster["logGroup"], cluster["maxNodes"],
                cluster["problem"]) == ("ResearchStack/Pretrain", queue, definition, group, 2, None)

        submitted = invoke("submit", "--name", "from-user-stack", "--json", "--", *USER_COMMAND)  # the only cluster
        assert submitted.exit_code == 0, submitted.output
        job_id = json.loads(submitted.stdout)["jobId"]
        [request] = sent("submitjob")
        assert (request["jobQueue"], request["jobDefinition"], request["nodeOverrides"]["numNodes"]) == (
            queue, definition, 2)
        assert request["nodeOverrides"]["nodePropertyOverrides"][0]["containerOverrides"]["command"] == inline_command(
            ["--", *USER_COMMAND])

        listed_jobs = json.loads(invoke("jobs", "--cluster", "ResearchStack/Pretrain", "--json").stdout)
        assert [(j["jobId"], j["jobName"]) for j in listed_jobs["jobs"]] == [(job_id, "from-user-stack")]

        cloud = Cloud(boto3.client("batch"), boto3.client("logs"), boto3.client("s3"), queue, definition, "")
        stream = add_node_job(cloud, job_id, 1, group=group)
        cloud.write_log(stream, "node 1: step 1", group=group)
        logs = invoke("logs", job_id, "--node", "1", "--cluster", STACK)  # a stack's name selects its one cluster
        assert (logs.exit_code, logs.stdout.splitlines()) == (0, ["node 1: step 1"]), logs.output

        set_status(job_id, "RUNNING")
        cancelled = invoke("cancel", job_id, "--reason", "wrong data")
        assert cancelled.stdout.strip() == f"terminating job {job_id}: it was RUNNING; Batch stops its nodes"
        assert sent("terminatejob") == [{"jobId": job_id, "reason": "wrong data"}]


def test_clusters_lists_every_tagged_queue_and_skips_others(cloud):
    cloud.add_cluster("OtherStack/Finetune", max_nodes="1")
    cloud.batch.create_job_queue(jobQueueName="not-mlcdk", state="ENABLED", priority=1, computeEnvironmentOrder=[
        {"order": 1, "computeEnvironment": cloud.environment}])
    cloud.add_cluster("Broken/Cluster", max_nodes="many")
    listed = json.loads(invoke("clusters", "--json").stdout)["clusters"]
    assert [(c["name"], c["maxNodes"], c["problem"]) for c in listed] == [
        ("Broken/Cluster", None, "its job queue's tag mlcdk:max-nodes='many' is not a positive whole number"),
        ("OtherStack/Finetune", 1, None),
        (CLUSTER, 4, None)]
    table = invoke("clusters")
    assert table.exit_code == 0 and "3 cluster(s) in us-west-2" in table.stdout
    assert "OtherStack/Finetune" in table.stdout and "not-mlcdk" not in table.stdout
    assert error_line(invoke("jobs", "--cluster", "Broken/Cluster")) == (
        "error: cluster 'Broken/Cluster' in us-west-2: its job queue's tag mlcdk:max-nodes='many' is not a positive "
        "whole number")


def test_two_clusters_need_cluster_and_one_does_not(cloud):
    assert invoke("jobs").exit_code == 0  # one cluster in the region: no --cluster needed
    cloud.add_cluster("OtherStack/Finetune")
    assert error_line(invoke("submit", *CMD)) == (
        "error: 2 clusters in us-west-2 (OtherStack/Finetune, TrainingStack/Cluster): pass --cluster NAME")
    assert invoke("jobs", "--cluster", "OtherStack/Finetune").exit_code == 0
    cloud.add_cluster("OtherStack/Second")
    assert error_line(invoke("jobs", "--cluster", "OtherStack")) == (
        "error: --cluster 'OtherStack': stack OtherStack holds 2 clusters (OtherStack/Finetune, OtherStack/Second); "
        "pass one of those names")


def test_no_cluster_in_the_region_says_how_to_get_one(cloud, monkeypatch):
    assert error_line(invoke("jobs", "--region", "eu-west-1")) == (
        "error: no mlcdk cluster in eu-west-1: no AWS Batch job queue there has the mlcdk:cluster tag; deploy a "
        "TrainingCluster with engine='batch', or pass --region")
