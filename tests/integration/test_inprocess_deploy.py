"""Every stack of app.py, in three regions, deployed and deleted in-process with moto.mock_aws() and boto3.

For each region (and training engine) the app is synthesized as `cdk synth` would (tests.harness.cli_context,
explicit env, emulator context); then, per stack, in a fresh mock_aws():

1. publish the stack's file assets to the bootstrap bucket, exactly as listed in ``<Stack>.assets.json``
   (``cdk-hnb659fds-assets-<account>-<region>``): the template itself and the zipped Lambda code of CDK's
   VPC restrict-default-security-group custom resource, which the template reads from that bucket;
2. create the ``/cdk-bootstrap/hnb659fds/version`` SSM parameter that the template's BootstrapVersion
   parameter resolves (moto resolves the default of every SSM-typed parameter; the AMI parameter of the
   emulator context, an Amazon Linux one, is preloaded by moto);
3. ``create_stack`` from the published TemplateURL, then answer the custom resource the way its Lambda's
   cfn-response would (a SUCCESS PUT to the ResponseURL moto hands it): moto runs Lambda code only in Docker,
   which CI lacks, so without that answer the stack stays CREATE_IN_PROGRESS;
4. read back the launch template, security groups and KMS keys and compare them with the template; then, with
   the Batch engine (TrainingStack's default), the compute environment (min 0 vCPUs, max nodes x vCPUs, the
   launch template's latest version), the job queue, the multinode job definition, the KMS-encrypted job log
   group and the job-state rule, and submit a 2-node job as `mlcdk submit` does (moto marks it SUCCEEDED without
   running it); with the Auto Scaling engine (``-c engine=nodes``, and InferenceStack) the group;
5. ``delete_stack`` to DELETE_COMPLETE and check that nothing the stack created is left (group, launch template,
   security groups, Batch compute environment and queue, active job definition, log group, rule) and that the
   keys are deleted, disabled or pending deletion.

moto 5.2.5 needs the emulator's fixes (mlcdk.emulator.fixes, the same ones its server applies): without them
create_stack or delete_stack fails (KMS tags, GetAtt on alarms, route tables, and every AWS::Batch resource) or
reads back wrong (log group keys, job node overrides).
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from mlcdk.emulator.fixes import api_shape, moto_fixes
from tests.harness import cli_context, synth

pytestmark = pytest.mark.integration

ACCOUNT = "123456789012"
#: Region -> extra training context. trn1.32xlarge (the default training type) is offered in no EU region, so
#: the EU case trains with preset llm-pretrain-nvidia (p5.48xlarge). eu-north-1 offers p5.48xlarge and offers
#: inf2.xlarge (the default inference type) in two AZs, which an inference fleet needs (eu-west-2 has one).
#: eu-north-1 also lacks AWS::Budgets::Budget, so the stacks' no-budget path is deployed too.
EU_REGION = "eu-north-1"
REGIONS = {
    "us-east-1": {},
    "us-west-2": {},
    EU_REGION: {"preset": "llm-pretrain-nvidia"},
}
STACKS = ("TrainingStack", "InferenceStack")
#: (region, stack, training engine): every stack in every region with the default engine (Batch), and the
#: Auto Scaling engine (-c engine=nodes) for TrainingStack on Trainium (us-east-1) and on GPUs (EU).
CASES = ([(region, stack, "batch") for region in REGIONS for stack in STACKS]
         + [("us-east-1", "TrainingStack", "nodes"), (EU_REGION, "TrainingStack", "nodes")])
_SYNTHS: dict[tuple[str, str], object] = {}


def _synth(region: str, engine: str = "batch"):
    if (region, engine) not in _SYNTHS:
        from mlcdk.presets import catalog
        from mlcdk.stacks import add_stacks, settings_from_context

        extra = dict(REGIONS[region], engine=engine)
        context = cli_context(region=region, account=ACCOUNT, emulator="true", removal_policy="destroy", **extra)
        result = synth(lambda app: add_stacks(app, settings_from_context(app, environ={})), context, nag=False)
        training = result.stacks["TrainingStack"].workload.instance_type
        inference = result.stacks["InferenceStack"].workload.instance_type
        assert catalog.get(training).offered_in(region) and catalog.get(inference).offered_in(region)
        _SYNTHS[(region, engine)] = result
    return _SYNTHS[(region, engine)]


def test_app_defines_exactly_the_stacks_under_test():
    assert tuple(_synth("us-east-1").stacks) == STACKS


def test_eu_region_uses_offered_types():
    from mlcdk.presets import catalog
    result = _synth(EU_REGION)
    assert not catalog.get("trn1.32xlarge").offered_in(EU_REGION)  # why the EU case changes the preset
    assert result.stacks["TrainingStack"].workload.instance_type == "p5.48xlarge"
    assert result.stacks["InferenceStack"].workload.instance_type == "inf2.xlarge"


def test_engines_differ_as_expected():
    batch = _synth("us-east-1", "batch").templates["TrainingStack"]
    nodes = _synth("us-east-1", "nodes").templates["TrainingStack"]
    assert _of_type(batch, "AWS::Batch::JobDefinition") and not _of_type(batch, "AWS::AutoScaling::AutoScalingGroup")
    assert _of_type(nodes, "AWS::AutoScaling::AutoScalingGroup") and not _of_type(nodes, "AWS::Batch::JobDefinition")


def test_moto_fixes_are_undone_on_exit():
    from moto.batch import models as batch_models
    from moto.batch.responses import BatchResponse
    from moto.cloudformation import parsing
    from moto.logs.models import LogGroup

    watched = [(batch_models.ComputeEnvironment, "create_from_cloudformation_json"),
               (batch_models.ComputeEnvironment, "delete"), (batch_models.JobQueue, "get_cfn_attribute"),
               (batch_models.JobQueue, "create_from_cloudformation_json"),
               (batch_models.JobDefinition, "create_from_cloudformation_json"), (batch_models.Job, "describe"),
               (batch_models.BatchBackend, "_validate_compute_resources"), (BatchResponse, "submitjob"),
               (LogGroup, "create_from_cloudformation_json"), (parsing, "clean_json")]
    before = [owner.__dict__.get(name) for owner, name in watched]
    with moto_fixes():
        assert [owner.__dict__.get(name) for owner, name in watched] != before
    assert [owner.__dict__.get(name) for owner, name in watched] == before


def test_api_shape_converts_keys_but_keeps_user_maps():
    shaped = api_shape({"MaxvCpus": 256, "Tags": {"Name": "x"}, "NodeRangeProperties": [
        {"TargetNodes": "0:", "Container": {"LinuxParameters": {"Devices": [{"HostPath": "/dev/neuron0"}]},
                                            "LogConfiguration": {"LogDriver": "awslogs",
                                                                 "Options": {"awslogs-group": "g"}}}}]})
    assert shaped == {"maxvCpus": 256, "tags": {"Name": "x"}, "nodeRangeProperties": [
        {"targetNodes": "0:", "container": {"linuxParameters": {"devices": [{"hostPath": "/dev/neuron0"}]},
                                            "logConfiguration": {"logDriver": "awslogs",
                                                                 "options": {"awslogs-group": "g"}}}}]}


def _publish_assets(s3, outdir: Path, stack: str, region: str) -> str:
    """Upload the stack's file assets like cdk-assets does; return the template's URL."""
    manifest = json.loads((outdir / f"{stack}.assets.json").read_text())
    template_url = None
    for asset in manifest["files"].values():
        source = outdir / asset["source"]["path"]
        if asset["source"].get("packaging") == "zip":
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w") as archive:
                for path in sorted(source.rglob("*")) if source.is_dir() else [source]:
                    archive.write(path, path.relative_to(source) if source.is_dir() else path.name)
            body = buffer.getvalue()
        else:
            body = source.read_bytes()
        for destination in asset["destinations"].values():
            assert destination["region"] == region
            bucket, key = destination["bucketName"], destination["objectKey"]
            existing = {b["Name"] for b in s3.list_buckets()["Buckets"]}
            if bucket not in existing:
                config = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
                s3.create_bucket(Bucket=bucket, **config)
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            if asset["source"]["path"] == f"{stack}.template.json":
                template_url = f"https://{bucket}.s3.{region}.amazonaws.com/{key}"
    assert template_url, f"{stack}.assets.json lists no template"
    return template_url


def _answer_custom_resources(template: dict, stack_id: str, region: str) -> list[str]:
    import requests

    answered = []
    for logical_id, resource in template["Resources"].items():
        if resource["Type"].startswith("Custom::") or resource["Type"] == "AWS::CloudFormation::CustomResource":
            response = requests.put(
                f"https://cloudformation.{region}.amazonaws.com/cloudformation_{region}/cfnresponse?stack={stack_id}",
                json={"Status": "SUCCESS", "StackId": stack_id, "LogicalResourceId": logical_id,
                      "PhysicalResourceId": logical_id, "RequestId": "test", "Data": {}}, timeout=10)
            assert response.status_code == 200, response.text
            answered.append(logical_id)
    return answered


def _stack_status(cfn, stack_id: str) -> str:
    summaries = [s for page in cfn.get_paginator("list_stacks").paginate() for s in page["StackSummaries"]
                 if s["StackId"] == stack_id]
    assert len(summaries) == 1, summaries
    return summaries[0]["StackStatus"]


def _of_type(template: dict, kind: str) -> dict[str, dict]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def _check_auto_scaling_group(template, autoscaling, ec2, asg_names, lt_ids):
    (asg_resource,) = _of_type(template, "AWS::AutoScaling::AutoScalingGroup").values()
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=list(asg_names))["AutoScalingGroups"][0]
    assert group["MaxSize"] == int(asg_resource["Properties"]["MaxSize"])
    subnets = group["VPCZoneIdentifier"].split(",")
    assert subnets and all(ec2.describe_subnets(SubnetIds=[s])["Subnets"][0]["VpcId"] for s in subnets)
    # moto answers an empty MixedInstancesPolicy for a group with a plain LaunchTemplate.
    spec = group.get("MixedInstancesPolicy", {}).get("LaunchTemplate", {}).get("LaunchTemplateSpecification") \
        or group["LaunchTemplate"]
    assert spec["LaunchTemplateId"] in lt_ids


def _check_batch(client, template, result, stack, physical, keys, lt_ids, outputs) -> dict[str, set[str]]:
    """The Batch side against the template; submit a 2-node job as `mlcdk submit` does. Returns what was made."""
    from mlcdk.presets import catalog

    batch, ec2, logs, events = client("batch"), client("ec2"), client("logs"), client("events")
    workload = result.stacks[stack].workload
    spec = catalog.get(workload.instance_type)
    nodes = result.stacks[stack].cluster.nodes
    assert nodes == 2  # both presets under test train on two nodes

    (ce_logical, ce_resource), = _of_type(template, "AWS::Batch::ComputeEnvironment").items()
    (environment,) = batch.describe_compute_environments(computeEnvironments=[physical[ce_logical]])[
        "computeEnvironments"]
    resources = environment["computeResources"]
    assert (environment["type"], environment["state"], resources["type"]) == ("MANAGED", "ENABLED", "EC2")
    assert resources["minvCpus"] == 0
    assert resources["maxvCpus"] == ce_resource["Properties"]["ComputeResources"]["MaxvCpus"] == nodes * spec.vcpus
    if workload.instance_type == "trn1.32xlarge":
        assert resources["maxvCpus"] == 256  # 2 x 128 vCPUs
    assert resources["instanceTypes"] == [workload.instance_type]
    assert "securityGroupIds" not in resources  # aws-cdk #21577: the launch template's interfaces carry the group
    template_spec = resources["launchTemplate"]
    assert template_spec["launchTemplateId"] in lt_ids
    latest = ec2.describe_launch_templates(LaunchTemplateIds=[template_spec["launchTemplateId"]])[
        "LaunchTemplates"][0]["LatestVersionNumber"]
    assert str(template_spec["version"]) == str(latest)  # an explicit version, not $Default (aws-cdk #28137)
    assert environment["serviceRole"].endswith("/AWSServiceRoleForBatch")

    (queue_logical,) = _of_type(template, "AWS::Batch::JobQueue")
    (queue,) = batch.describe_job_queues(jobQueues=[physical[queue_logical]])["jobQueues"]
    assert queue["state"] == "ENABLED"
    assert [c["computeEnvironment"] for c in queue["computeEnvironmentOrder"]] == [environment["computeEnvironmentArn"]]
    assert outputs["JobQueue"] == queue["jobQueueArn"]

    (definition_logical,) = _of_type(template, "AWS::Batch::JobDefinition")
    (definition,) = batch.describe_job_definitions(jobDefinitions=[physical[definition_logical]])["jobDefinitions"]
    assert outputs["JobDefinition"] == definition["jobDefinitionArn"]
    assert (definition["type"], definition["status"]) == ("multinode", "ACTIVE")
    assert definition["platformCapabilities"] == ["EC2"] and definition["propagateTags"] is True
    assert definition["retryStrategy"]["attempts"] >= 1 and definition["timeout"]["attemptDurationSeconds"] > 0
    node_properties = definition["nodeProperties"]
    assert (node_properties["numNodes"], node_properties["mainNode"]) == (2, 0)
    (node_range,) = node_properties["nodeRangeProperties"]
    container = node_range["container"]
    assert node_range["targetNodes"] == "0:"
    assert container["image"] and container["instanceType"] == workload.instance_type
    needs = {r["type"]: r["value"] for r in container["resourceRequirements"]}
    assert int(needs["VCPU"]) == spec.vcpus and 0 < int(needs["MEMORY"]) < spec.memory_mib
    devices = {d["hostPath"] for d in container["linuxParameters"]["devices"]}
    assert {f"/dev/infiniband/uverbs{i}" for i in range(spec.maximum_efa_interfaces)} <= devices
    assert container["logConfiguration"]["options"]["awslogs-group"] == outputs["JobLogGroup"]
    assert outputs["MaxNodes"] == "2" and "AutoScalingGroup" not in outputs

    (group,) = [g for g in logs.describe_log_groups(logGroupNamePrefix=outputs["JobLogGroup"])["logGroups"]
                if g["logGroupName"] == outputs["JobLogGroup"]]
    assert group["kmsKeyId"].rsplit("/", 1)[-1] in keys

    (rule_logical,) = _of_type(template, "AWS::Events::Rule")
    pattern = json.loads(events.describe_rule(Name=physical[rule_logical])["EventPattern"])
    assert pattern["detail"]["jobQueue"] == [queue["jobQueueArn"]]

    # A 2-node job, shaped as `mlcdk submit --nodes 2 -- python3 train.py` sends it.
    submitted = batch.submit_job(jobName="inprocess-check", jobQueue=outputs["JobQueue"],
                                 jobDefinition=outputs["JobDefinition"], nodeOverrides={
                                     "numNodes": 2, "nodePropertyOverrides": [
                                         {"targetNodes": "0:", "containerOverrides": {"command": ["python3", "train.py"]}}]})
    (job,) = batch.describe_jobs(jobs=[submitted["jobId"]])["jobs"]
    assert job["status"] == "SUCCEEDED"  # moto's Docker-less Batch: nothing ran
    assert job["nodeProperties"]["numNodes"] == 2
    assert job["nodeProperties"]["nodeRangeProperties"][0]["container"]["command"] == ["python3", "train.py"]
    with pytest.raises(batch.exceptions.ClientException, match="numNodes"):
        batch.submit_job(jobName="too-few", jobQueue=outputs["JobQueue"], jobDefinition=outputs["JobDefinition"],
                         nodeOverrides={"numNodes": 0})
    return {"environments": {environment["computeEnvironmentArn"]}, "queues": {queue["jobQueueArn"]},
            "definitions": {definition["jobDefinitionArn"]}, "log_groups": {outputs["JobLogGroup"]},
            "rules": {physical[rule_logical]}}


@pytest.mark.parametrize(("region", "stack", "engine"), CASES)
def test_create_read_back_and_delete(region: str, stack: str, engine: str):
    import boto3
    from moto import mock_aws

    result = _synth(region, engine)
    template = result.templates[stack]
    config = {"lambda": {"use_docker": False}, "batch": {"use_docker": False}}
    with moto_fixes(), mock_aws(config=config):
        client = lambda service: boto3.client(service, region_name=region)  # noqa: E731
        cfn, ec2, autoscaling, kms = client("cloudformation"), client("ec2"), client("autoscaling"), client("kms")
        client("ssm").put_parameter(Name="/cdk-bootstrap/hnb659fds/version", Value="30", Type="String")
        template_url = _publish_assets(client("s3"), result.outdir, stack, region)

        stack_id = cfn.create_stack(StackName=stack, TemplateURL=template_url,
                                    Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"])["StackId"]
        assert _answer_custom_resources(template, stack_id, region), "expected CDK's restrict-default-SG resource"
        description = cfn.describe_stacks(StackName=stack_id)["Stacks"][0]
        assert description["StackStatus"] == "CREATE_COMPLETE"
        outputs = {o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs", [])}

        physical = {r["LogicalResourceId"]: r["PhysicalResourceId"]
                    for r in cfn.describe_stack_resources(StackName=stack_id)["StackResources"]
                    if r.get("LogicalResourceId") and r.get("PhysicalResourceId")}
        keys = {physical[k] for k in _of_type(template, "AWS::KMS::Key")}
        groups = {physical[k] for k in _of_type(template, "AWS::EC2::SecurityGroup")}
        asg_names = {physical[k] for k in _of_type(template, "AWS::AutoScaling::AutoScalingGroup")}
        lt_ids = {physical[k] for k in _of_type(template, "AWS::EC2::LaunchTemplate")}
        uses_batch = stack == "TrainingStack" and engine == "batch"
        assert keys and groups and len(lt_ids) == 1
        assert len(asg_names) == (0 if uses_batch else 1)

        # Keys: enabled, rotating.
        for key_id in keys:
            assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
            assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True

        # The launch template's version, against what the template asked for.
        (lt_id,) = lt_ids
        data = ec2.describe_launch_template_versions(LaunchTemplateId=lt_id)["LaunchTemplateVersions"][0][
            "LaunchTemplateData"]
        (lt_resource,) = _of_type(template, "AWS::EC2::LaunchTemplate").values()
        wanted = lt_resource["Properties"]["LaunchTemplateData"]
        assert data["InstanceType"] == result.stacks[stack].workload.instance_type
        assert data["MetadataOptions"]["HttpTokens"] == "required"
        wanted_nics = wanted.get("NetworkInterfaces", [])
        got_nics = data.get("NetworkInterfaces", [])
        assert [n.get("InterfaceType") for n in got_nics] == [n.get("InterfaceType") for n in wanted_nics]
        assert not any(n.get("AssociatePublicIpAddress") for n in got_nics)
        assert all(set(n["Groups"]) <= groups for n in got_nics)
        if stack == "TrainingStack":
            efa_devices = sum(n.get("InterfaceType") in ("efa", "efa-only") for n in got_nics)
            from mlcdk.presets import catalog
            assert efa_devices == catalog.get(data["InstanceType"]).maximum_efa_interfaces > 0
            if data["InstanceType"] == "trn1.32xlarge":
                assert efa_devices == 8  # one per network card (EC2's trn1 page: 8 cards, 8 EFA)
        volumes = data["BlockDeviceMappings"]
        assert volumes and all(v["Ebs"]["Encrypted"] is True for v in volumes)
        assert all(v["Ebs"]["KmsKeyId"].rsplit("/", 1)[-1] in keys for v in volumes)

        # How the nodes run: a Batch compute environment, queue and job definition, or an Auto Scaling group.
        made: dict[str, set[str]] = {}
        if uses_batch:
            made = _check_batch(client, template, result, stack, physical, keys, lt_ids, outputs)
        else:
            _check_auto_scaling_group(template, autoscaling, ec2, asg_names, lt_ids)
            if stack == "TrainingStack":
                assert "AutoScalingGroup" in outputs and "JobQueue" not in outputs

        # Security groups: training nodes allow all traffic from their own group (EFA).
        described = {g["GroupId"]: g for g in ec2.describe_security_groups(GroupIds=list(groups))["SecurityGroups"]}
        assert set(described) == groups
        if stack == "TrainingStack":
            (node_group,) = groups
            assert any(pair["GroupId"] == node_group
                       for rule in described[node_group]["IpPermissions"] if rule["IpProtocol"] == "-1"
                       for pair in rule["UserIdGroupPairs"])

        # Delete, and check nothing is left behind.
        cfn.delete_stack(StackName=stack_id)
        assert _stack_status(cfn, stack_id) == "DELETE_COMPLETE"
        assert not {g["AutoScalingGroupName"] for g in autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"]} & asg_names
        assert not {t["LaunchTemplateId"] for t in ec2.describe_launch_templates()["LaunchTemplates"]} & lt_ids
        assert not {g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]} & groups
        if made:
            batch, logs, events = client("batch"), client("logs"), client("events")
            assert not {e["computeEnvironmentArn"] for e in batch.describe_compute_environments()[
                "computeEnvironments"]} & made["environments"]
            assert not {q["jobQueueArn"] for q in batch.describe_job_queues()["jobQueues"]} & made["queues"]
            assert {d["status"] for d in batch.describe_job_definitions()["jobDefinitions"]
                    if d["jobDefinitionArn"] in made["definitions"]} == {"INACTIVE"}
            assert not {g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]} & made["log_groups"]
            assert not {r["Name"] for r in events.list_rules()["Rules"]} & made["rules"]
        for key_id in keys:
            # Real CloudFormation schedules a key's deletion; moto removes it at once. Either way: not usable.
            try:
                state = kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"]
            except kms.exceptions.NotFoundException:
                continue
            assert state in ("PendingDeletion", "Disabled"), f"{key_id} is {state} after delete_stack"
