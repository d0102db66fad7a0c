"""Every stack of app.py, in three regions, deployed and deleted in-process with moto.mock_aws() and boto3.

For each region the app is synthesized as `cdk synth` would (tests.harness.cli_context, explicit env, emulator
context); then, per stack, in a fresh mock_aws():

1. publish the stack's file assets to the bootstrap bucket, exactly as listed in ``<Stack>.assets.json``
   (``cdk-hnb659fds-assets-<account>-<region>``): the template itself and the zipped Lambda code of CDK's
   VPC restrict-default-security-group custom resource, which the template reads from that bucket;
2. create the ``/cdk-bootstrap/hnb659fds/version`` SSM parameter that the template's BootstrapVersion
   parameter resolves (moto resolves the default of every SSM-typed parameter; the AMI parameter of the
   emulator context, an Amazon Linux one, is preloaded by moto);
3. ``create_stack`` from the published TemplateURL, then answer the custom resource the way its Lambda's
   cfn-response would (a SUCCESS PUT to the ResponseURL moto hands it): moto runs Lambda code only in Docker,
   which CI lacks, so without that answer the stack stays CREATE_IN_PROGRESS;
4. read back the ASG, launch template, security groups and KMS keys and compare them with the template;
5. ``delete_stack`` to DELETE_COMPLETE and check that no ASG, launch template or security group is left and
   that the keys are deleted, disabled or pending deletion.

moto 5.2.5 needs the fixes of scripts/emulator.py (``moto_fixes``): CloudFormation tags on KMS keys, Fn::GetAtt on
the CloudWatch alarms it does not model, and route-table deletion. Without them create_stack or delete_stack fails.
"""
from __future__ import annotations

import importlib.util
import io
import json
import zipfile
from pathlib import Path

import pytest

from tests.harness import ROOT, cli_context, synth

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
_SYNTHS: dict[str, object] = {}


def _emulator_module():
    spec = importlib.util.spec_from_file_location("mlcdk_emulator_script", ROOT / "scripts" / "emulator.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


EMULATOR = _emulator_module()


def _synth(region: str):
    if region not in _SYNTHS:
        from mlcdk.presets import catalog
        from mlcdk.stacks import add_stacks, settings_from_context

        extra = REGIONS[region]
        context = cli_context(region=region, account=ACCOUNT, emulator="true", removal_policy="destroy", **extra)
        result = synth(lambda app: add_stacks(app, settings_from_context(app, environ={})), context, nag=False)
        training = result.stacks["TrainingStack"].workload.instance_type
        inference = result.stacks["InferenceStack"].workload.instance_type
        assert catalog.get(training).offered_in(region) and catalog.get(inference).offered_in(region)
        _SYNTHS[region] = result
    return _SYNTHS[region]


def test_app_defines_exactly_the_stacks_under_test():
    assert tuple(_synth("us-east-1").stacks) == STACKS


def test_eu_region_uses_offered_types():
    from mlcdk.presets import catalog
    result = _synth(EU_REGION)
    assert not catalog.get("trn1.32xlarge").offered_in(EU_REGION)  # why the EU case changes the preset
    assert result.stacks["TrainingStack"].workload.instance_type == "p5.48xlarge"
    assert result.stacks["InferenceStack"].workload.instance_type == "inf2.xlarge"


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


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("region", list(REGIONS))
def test_create_read_back_and_delete(region: str, stack: str):
    import boto3
    from moto import mock_aws

    result = _synth(region)
    template = result.templates[stack]
    with EMULATOR.moto_fixes(), mock_aws(config={"lambda": {"use_docker": False}}):
        client = lambda service: boto3.client(service, region_name=region)  # noqa: E731
        cfn, ec2, autoscaling, kms = client("cloudformation"), client("ec2"), client("autoscaling"), client("kms")
        client("ssm").put_parameter(Name="/cdk-bootstrap/hnb659fds/version", Value="30", Type="String")
        template_url = _publish_assets(client("s3"), result.outdir, stack, region)

        stack_id = cfn.create_stack(StackName=stack, TemplateURL=template_url,
                                    Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"])["StackId"]
        assert _answer_custom_resources(template, stack_id, region), "expected CDK's restrict-default-SG resource"
        assert cfn.describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"

        physical = {r["LogicalResourceId"]: r["PhysicalResourceId"]
                    for r in cfn.describe_stack_resources(StackName=stack_id)["StackResources"]
                    if r.get("LogicalResourceId") and r.get("PhysicalResourceId")}
        keys = {physical[k] for k in _of_type(template, "AWS::KMS::Key")}
        groups = {physical[k] for k in _of_type(template, "AWS::EC2::SecurityGroup")}
        asg_names = {physical[k] for k in _of_type(template, "AWS::AutoScaling::AutoScalingGroup")}
        lt_ids = {physical[k] for k in _of_type(template, "AWS::EC2::LaunchTemplate")}
        assert keys and groups and len(asg_names) == 1 and len(lt_ids) == 1

        # Keys: enabled, rotating.
        for key_id in keys:
            assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
            assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True

        # ASG and its launch template version, against what the template asked for.
        (asg_logical, asg_resource), = _of_type(template, "AWS::AutoScaling::AutoScalingGroup").items()
        group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=list(asg_names))["AutoScalingGroups"][0]
        assert group["MaxSize"] == int(asg_resource["Properties"]["MaxSize"])
        subnets = group["VPCZoneIdentifier"].split(",")
        assert subnets and all(ec2.describe_subnets(SubnetIds=[s])["Subnets"][0]["VpcId"] for s in subnets)
        # moto answers an empty MixedInstancesPolicy for a group with a plain LaunchTemplate.
        spec = group.get("MixedInstancesPolicy", {}).get("LaunchTemplate", {}).get("LaunchTemplateSpecification") \
            or group["LaunchTemplate"]
        assert spec["LaunchTemplateId"] in lt_ids
        data = ec2.describe_launch_template_versions(LaunchTemplateId=spec["LaunchTemplateId"])[
            "LaunchTemplateVersions"][0]["LaunchTemplateData"]
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
            efa_only = sum(n.get("InterfaceType") == "efa-only" for n in got_nics)
            from mlcdk.presets import catalog
            assert efa_only == catalog.get(data["InstanceType"]).maximum_efa_interfaces > 0
            if data["InstanceType"] == "trn1.32xlarge":
                assert efa_only == 8
        volumes = data["BlockDeviceMappings"]
        assert volumes and all(v["Ebs"]["Encrypted"] is True for v in volumes)
        assert all(v["Ebs"]["KmsKeyId"].rsplit("/", 1)[-1] in keys for v in volumes)

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
        for key_id in keys:
            # Real CloudFormation schedules a key's deletion; moto removes it at once. Either way: not usable.
            try:
                state = kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"]
            except kms.exceptions.NotFoundException:
                continue
            assert state in ("PendingDeletion", "Disabled"), f"{key_id} is {state} after delete_stack"
