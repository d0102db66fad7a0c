"""Workarounds for moto 5.2.5 bugs that stop a CDK stack from deploying or deleting in the local emulator.

Each fix is listed in MOTO_FIXES (printed on every emulator run). None changes what a template asks for.
They are applied in the moto server process that scripts/emulator.py starts, and by
tests/integration/test_inprocess_deploy.py around mock_aws(), and undone on exit.
"""
from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Iterator
from typing import Any

# --------------------------------------------------------------------------------------------------
# moto fixes. Each works around a bug or gap of moto 5.2.5 that stops a CDK stack from deploying or
# deleting; none changes what the templates ask for. They are applied in the moto server process
# (``--serve-moto``) and by tests/integration/test_inprocess_deploy.py around mock_aws().
# --------------------------------------------------------------------------------------------------

MOTO_FIXES = (
    "AWS::KMS::Key Tags: CloudFormation's Key/Value tags are passed to moto's KMS tagger as TagKey/TagValue "
    "(moto raised KeyError 'TagKey', so every tagged key failed as 'Fn::GetAtt references undefined resource')",
    "AWS::KMS::Key KeyPolicy: stored as JSON text (moto stored the template's object, and every later "
    "DescribeKey on the key answered HTTP 500: 'the JSON object must be str ... not dict')",
    "Fn::GetAtt on a resource type moto does not model (AWS::CloudWatch::Alarm, AWS::EC2::PlacementGroup, "
    "AWS::FSx::FileSystem's LustreMountName in the node user data) returns a placeholder "
    "'arn:aws:moto-unmodeled:...' string instead of failing the stack",
    "ExecuteChangeSet (how cdk deploy creates a stack) also installs the change set's template on the stack, "
    "so DescribeStacks returns its Outputs and Exports (moto kept the empty placeholder template: no outputs at all)",
    "AWS::EC2::RouteTable is deleted with its stack (moto kept it, so the VPC's deletion failed with "
    "DependencyViolation)",
    "AWS::Batch::ComputeEnvironment: created as the template says: Type 'managed' as MANAGED, no ServiceRole meaning "
    "Batch's service-linked role AWSServiceRoleForBatch (created if absent, as Batch does), Tags passed on, "
    "ComputeResources' map keys (Tags) kept as written (moto raised KeyError 'ServiceRole' and rejected 'managed')",
    "Batch compute resources without SecurityGroupIds take the security groups of their launch template's network "
    "interfaces, as Batch does (moto demanded SecurityGroupIds, which Batch refuses next to a launch template "
    "with network interfaces); with no group in either place it still refuses",
    "Fn::GetAtt ComputeEnvironmentArn / JobQueueArn on AWS::Batch::ComputeEnvironment / JobQueue return the ARN "
    "(moto's Batch models have no GetAtt at all: AttributeError, the stack failed)",
    "AWS::Batch::JobDefinition: Type, NodeProperties, PlatformCapabilities, PropagateTags, RetryStrategy, Timeout "
    "and Tags reach RegisterJobDefinition in the API's shape (camelCase, nested; user maps such as log options and "
    "tags kept as written) (moto hardcoded Type 'container', dropped the rest and required RetryStrategy, so a "
    "multinode definition failed)",
    "DescribeJobDefinitions returns a multinode definition's nodeProperties (moto left them out, so a client "
    "could not see the node ranges, their container or the node count)",
    "AWS::Batch::ComputeEnvironment, JobQueue and JobDefinition are deleted with their stack (the definition "
    "deregistered to INACTIVE; a compute environment only once no queue uses it) (moto kept all three)",
    "AWS::Logs::LogGroup KmsKeyId reaches the log group (moto read only 'kmsKeyId', so a KMS-encrypted log group "
    "was created unencrypted)",
    "SubmitJob nodeOverrides: kept, checked as Batch checks numNodes (an open node range, main node and range "
    "starts below it), and shown by DescribeJobs in the job's nodeProperties (numNodes, and the container "
    "overrides of the node range with the same targetNodes) (moto dropped nodeOverrides: every job showed the "
    "definition's node count and command)",
)

_BATCH_SERVICE = "batch.amazonaws.com"
_BATCH_SERVICE_ROLE = "AWSServiceRoleForBatch"
#: CloudFormation properties whose values are maps with user-chosen keys (tag keys, log driver options, job
#: parameters, Kubernetes labels): their keys stay as written when the rest becomes the API's camelCase.
_USER_KEY_MAPS = frozenset({"Tags", "Options", "Parameters", "Labels", "Annotations", "Limits", "Requests"})


def api_shape(value: Any) -> Any:
    """CloudFormation's PascalCase properties in the Batch API's camelCase, recursively (MaxvCpus -> maxvCpus,
    NodeProperties.NodeRangeProperties[].Container.LinuxParameters.Devices[].HostPath -> ...hostPath), except
    the keys of user maps (_USER_KEY_MAPS)."""
    if isinstance(value, dict):
        return {key[:1].lower() + key[1:]: copy.deepcopy(item) if key in _USER_KEY_MAPS and isinstance(item, dict)
                else api_shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [api_shape(item) for item in value]
    return value


def _batch_service_role(batch_backend: Any) -> str:
    """The ARN of Batch's service-linked role, created in moto's IAM if absent (Batch creates it itself)."""
    from moto.iam.exceptions import NotFoundException

    iam = batch_backend.iam_backend
    try:
        return iam.get_role(_BATCH_SERVICE_ROLE).arn
    except NotFoundException:
        policy = {"Version": "2012-10-17", "Statement": [
            {"Action": ["sts:AssumeRole"], "Effect": "Allow", "Principal": {"Service": [_BATCH_SERVICE]}}]}
        return iam.create_role(_BATCH_SERVICE_ROLE, json.dumps(policy), f"/aws-service-role/{_BATCH_SERVICE}/",
                               permissions_boundary=None, description="AWS Batch service-linked role", tags=[],
                               max_session_duration="3600", linked_service=_BATCH_SERVICE).arn


def _launch_template_groups(ec2_backend: Any, spec: dict[str, Any]) -> list[str]:
    """The security groups of a compute environment's launch template version (network interfaces or top level)."""
    if spec.get("launchTemplateId"):
        template = ec2_backend.get_launch_template(spec["launchTemplateId"])
    else:
        template = ec2_backend.get_launch_template_by_name(spec["launchTemplateName"])
    data = template.get_version(spec.get("version", "$Default")).data
    groups = list(data.get("SecurityGroupIds", []))
    for interface in data.get("NetworkInterfaces", []):
        groups += [g for g in interface.get("Groups", []) if g not in groups]
    return groups


def _check_node_overrides(definition: Any, overrides: dict[str, Any]) -> None:
    """Batch's conditions for a numNodes override (SubmitJob NodeOverrides)."""
    from moto.batch.exceptions import ClientException

    if definition.type != "multinode":
        raise ClientException("nodeOverrides can only be used with a multinode job definition")
    properties = definition.node_properties or {}
    count = overrides.get("numNodes")
    if count is None:
        return
    ranges = [r.get("targetNodes", "") for r in properties.get("nodeRangeProperties", [])]
    if not any(r.endswith(":") for r in ranges):
        raise ClientException("numNodes can only be overridden when a node range has an open upper bound (n:)")
    starts = [int(r.split(":")[0] or 0) for r in ranges]
    if int(properties.get("mainNode", 0)) >= count or any(start >= count for start in starts):
        raise ClientException(f"numNodes {count} must be greater than the main node index and every node range start")


def _apply_node_overrides(properties: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The job's node properties: the definition's, with the submitted numNodes and container overrides."""
    properties = copy.deepcopy(properties)
    if overrides.get("numNodes") is not None:
        properties["numNodes"] = overrides["numNodes"]
    for override in overrides.get("nodePropertyOverrides", []):
        changes = override.get("containerOverrides", {})
        for node_range in properties.get("nodeRangeProperties", []):
            if node_range.get("targetNodes") != override.get("targetNodes"):
                continue
            container = node_range.setdefault("container", {})
            for key in ("command", "vcpus", "memory", "instanceType"):
                if key in changes:
                    container[key] = copy.deepcopy(changes[key])
            if "environment" in changes:
                merged = {e["name"]: e for e in container.get("environment", [])}
                merged.update({e["name"]: e for e in changes["environment"]})
                container["environment"] = list(merged.values())
            if "resourceRequirements" in changes:
                merged = {r["type"]: r for r in container.get("resourceRequirements", [])}
                merged.update({r["type"]: r for r in changes["resourceRequirements"]})
                container["resourceRequirements"] = list(merged.values())
    return properties


@contextlib.contextmanager
def moto_fixes() -> Iterator[None]:
    """Apply the MOTO_FIXES to the moto modules of this process; undo them on exit."""
    from moto.batch import models as batch_models
    from moto.batch.exceptions import ClientException, InvalidParameterValueException
    from moto.batch.responses import BatchResponse
    from moto.cloudformation import parsing
    from moto.cloudformation.exceptions import UnformattedGetAttTemplateException
    from moto.cloudformation.models import ChangeSet
    from moto.ec2.models.route_tables import RouteTable
    from moto.kms.models import Key
    from moto.logs.models import LogGroup

    undo: list[tuple[Any, str, Any]] = []

    def patch(owner: Any, name: str, value: Any) -> None:
        """Set ``owner.name``; on exit restore what the class itself held (or remove it if it held nothing)."""
        undo.append((owner, name, owner.__dict__.get(name, _ABSENT)))
        setattr(owner, name, value)

    original_key_create = Key.__dict__["create_from_cloudformation_json"]
    original_clean_json = parsing.clean_json

    def key_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        properties = dict(cloudformation_json.get("Properties", {}))
        properties["Tags"] = [{"TagKey": t["Key"], "TagValue": t["Value"]} if "Key" in t else t
                              for t in properties.get("Tags", [])]
        if isinstance(properties.get("KeyPolicy"), dict):
            properties["KeyPolicy"] = json.dumps(properties["KeyPolicy"])
        fixed = dict(cloudformation_json, Properties=properties)
        return original_key_create.__func__(cls, resource_name, fixed, account_id, region_name, **kwargs)

    def clean_json(resource_json: Any, resources_map: Any) -> Any:
        if isinstance(resource_json, dict) and "Fn::GetAtt" in resource_json:
            name, attribute = resource_json["Fn::GetAtt"][0], resource_json["Fn::GetAtt"][1]
            declared = resources_map._resource_json_map.get(name)
            if declared is not None and parsing.resource_class_from_type(declared["Type"]) is None:
                return f"arn:aws:moto-unmodeled:::{declared['Type']}/{name}/{attribute}"
        return original_clean_json(resource_json, resources_map)

    def route_table_delete(self, account_id: str, region_name: str) -> None:
        from moto.ec2.models import ec2_backends
        backend = ec2_backends[account_id][region_name]
        if self.id in backend.route_tables:
            backend.delete_route_table(self.id)  # DependencyViolation while associated: moto retries later

    original_apply = ChangeSet.apply

    def change_set_apply(self) -> None:
        original_apply(self)
        stack = self.stack
        stack.template, stack.template_dict = self.template, self.template_dict
        stack.description = self.template_dict.get("Description")
        stack.output_map = stack._create_output_map()
        from moto.cloudformation.models import cloudformation_backends
        backend = cloudformation_backends[stack.account_id][stack.region_name]
        for export in stack.exports:  # as create_stack registers them (delete_stack removes them)
            backend.exports[export.name] = export

    # ---- AWS Batch ---------------------------------------------------------------------------------
    backends = batch_models.batch_backends

    def compute_environment_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        properties = cloudformation_json["Properties"]
        resources = properties.get("ComputeResources")
        backend = backends[account_id][region_name]
        return backend.create_compute_environment(
            resource_name, str(properties["Type"]).upper(), properties.get("State", "ENABLED"),
            api_shape(resources) if resources is not None else None,
            properties.get("ServiceRole") or _batch_service_role(backend), tags=properties.get("Tags"))

    original_validate = batch_models.BatchBackend._validate_compute_resources

    def validate_compute_resources(self, resources: dict[str, Any]) -> None:
        if (not resources.get("securityGroupIds") and resources.get("launchTemplate")
                and "FARGATE" not in str(resources.get("type", ""))):
            groups = _launch_template_groups(self.ec2_backend, resources["launchTemplate"])
            if not groups:
                raise InvalidParameterValueException(
                    "At least 1 security group must be provided, in securityGroupIds or in the launch template")
            resources = dict(resources, securityGroupIds=groups)  # for the check only: stored as the template says
        original_validate(self, resources)

    def compute_environment_delete(self, account_id: str, region_name: str) -> None:
        backend = backends[account_id][region_name]
        users = [q.name for q in backend._job_queues.values() if any(e.arn == self.arn for e in q.environments)]
        if users:  # as Batch: a compute environment in use by a queue cannot go; moto retries after the queue
            raise ClientException(f"compute environment {self.name} is used by job queue(s) {', '.join(users)}")
        backend.delete_compute_environment(self.arn)

    def job_queue_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        properties = cloudformation_json["Properties"]
        return backends[account_id][region_name].create_job_queue(
            queue_name=resource_name, priority=properties["Priority"], state=properties.get("State", "ENABLED"),
            compute_env_order=api_shape(properties["ComputeEnvironmentOrder"]),
            schedule_policy=properties.get("SchedulingPolicyArn"), tags=properties.get("Tags"))

    def job_queue_delete(self, account_id: str, region_name: str) -> None:
        backends[account_id][region_name].delete_job_queue(self.arn)

    def job_definition_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        properties = cloudformation_json["Properties"]

        def shaped(key: str) -> Any:
            return api_shape(properties[key]) if key in properties else None
        return backends[account_id][region_name].register_job_definition(
            def_name=resource_name, parameters=dict(properties.get("Parameters", {})), _type=properties["Type"],
            tags=dict(properties.get("Tags", {})), retry_strategy=shaped("RetryStrategy"),
            container_properties=shaped("ContainerProperties"), node_properties=shaped("NodeProperties"),
            eks_properties=shaped("EksProperties"), timeout=shaped("Timeout"),
            platform_capabilities=properties.get("PlatformCapabilities", ["EC2"]),
            propagate_tags=bool(properties.get("PropagateTags", False)))

    def job_definition_delete(self, account_id: str, region_name: str) -> None:
        backends[account_id][region_name].deregister_job_definition(self.arn)

    def arn_attribute(name: str):
        def has_cfn_attr(cls, attribute: str) -> bool:
            return attribute == name

        def get_cfn_attribute(self, attribute: str) -> str:
            if attribute == name:
                return self.arn
            raise UnformattedGetAttTemplateException()
        return classmethod(has_cfn_attr), get_cfn_attribute

    original_definition_describe = batch_models.JobDefinition.describe

    def job_definition_describe(self) -> dict[str, Any]:
        result = original_definition_describe(self)
        if self.node_properties is not None:
            result.setdefault("nodeProperties", self.node_properties)
        return result

    original_submit = BatchResponse.submitjob

    def submit_job(self) -> str:
        overrides = self._get_param("nodeOverrides")
        if overrides:
            definition = self.batch_backend.get_job_definition(self._get_param("jobDefinition"))
            if definition is not None:
                _check_node_overrides(definition, overrides)
        body = original_submit(self)
        if overrides:
            self.batch_backend._jobs[json.loads(body)["jobId"]].node_overrides = copy.deepcopy(overrides)
        return body

    original_job_describe = batch_models.Job.describe

    def job_describe(self) -> dict[str, Any]:
        result = original_job_describe(self)
        overrides = self.__dict__.get("node_overrides")
        if overrides and result.get("nodeProperties") is not None:
            result["nodeProperties"] = _apply_node_overrides(result["nodeProperties"], overrides)
        return result

    original_log_group_create = LogGroup.__dict__["create_from_cloudformation_json"]

    def log_group_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        properties = dict(cloudformation_json.get("Properties", {}))
        if "KmsKeyId" in properties:
            properties["kmsKeyId"] = properties["KmsKeyId"]
        fixed = dict(cloudformation_json, Properties=properties)
        return original_log_group_create.__func__(cls, resource_name, fixed, account_id, region_name, **kwargs)

    patch(ChangeSet, "apply", change_set_apply)
    patch(Key, "create_from_cloudformation_json", classmethod(key_create))
    patch(parsing, "clean_json", clean_json)
    if "delete" not in RouteTable.__dict__:
        patch(RouteTable, "delete", route_table_delete)
    patch(batch_models.ComputeEnvironment, "create_from_cloudformation_json", classmethod(compute_environment_create))
    patch(batch_models.BatchBackend, "_validate_compute_resources", validate_compute_resources)
    patch(batch_models.JobQueue, "create_from_cloudformation_json", classmethod(job_queue_create))
    patch(batch_models.JobDefinition, "create_from_cloudformation_json", classmethod(job_definition_create))
    for model, attribute in ((batch_models.ComputeEnvironment, "ComputeEnvironmentArn"),
                             (batch_models.JobQueue, "JobQueueArn")):
        has_attr, get_attr = arn_attribute(attribute)
        patch(model, "has_cfn_attr", has_attr)
        patch(model, "get_cfn_attribute", get_attr)
    for model, delete in ((batch_models.ComputeEnvironment, compute_environment_delete),
                          (batch_models.JobQueue, job_queue_delete),
                          (batch_models.JobDefinition, job_definition_delete)):
        if "delete" not in model.__dict__:
            patch(model, "delete", delete)
    patch(batch_models.JobDefinition, "describe", job_definition_describe)
    patch(BatchResponse, "submitjob", submit_job)
    patch(batch_models.Job, "describe", job_describe)
    patch(LogGroup, "create_from_cloudformation_json", classmethod(log_group_create))
    try:
        yield
    finally:
        for owner, name, previous in reversed(undo):
            if previous is _ABSENT:
                delattr(owner, name)
            else:
                setattr(owner, name, previous)


_ABSENT = object()
