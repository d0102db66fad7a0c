"""moto fixes for AWS Batch: its CloudFormation handlers, and the API calls `mlcdk submit` makes.

Source lines are moto 5.2.5's (moto/batch/models.py and responses.py). Each function applies one fix; ``FIXES``
lists them in the order they apply.
"""
from __future__ import annotations

import copy
import json
from typing import Any

from mlcdk.emulator.fixes._patch import Fix, Patcher, fix

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


def _backend(account_id: str, region_name: str) -> Any:
    from moto.batch.models import batch_backends

    return batch_backends[account_id][region_name]


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


@fix("batch-compute-environment-create",
     patches="moto.batch.models.ComputeEnvironment.create_from_cloudformation_json",
     why="""AWS::Batch::ComputeEnvironment is created as the template says: Type 'managed' as MANAGED, no
     ServiceRole meaning Batch's service-linked role AWSServiceRoleForBatch (created if absent, as Batch does),
     Tags passed on, the keys of ComputeResources' user maps (Tags) kept as written. moto raised KeyError
     'ServiceRole' (cdk then reported an XML parse error of moto's HTML error page) and rejected 'managed'.""",
     source="moto/batch/models.py:119-122 passes Type as written and reads properties['ServiceRole']")
def batch_compute_environment_create(patch: Patcher) -> None:
    from moto.batch import models

    def create(cls: type, resource_name: str, cloudformation_json: dict[str, Any], account_id: str,
               region_name: str, **kwargs: Any) -> Any:
        properties = cloudformation_json["Properties"]
        resources = properties.get("ComputeResources")
        backend = _backend(account_id, region_name)
        return backend.create_compute_environment(
            resource_name, str(properties["Type"]).upper(), properties.get("State", "ENABLED"),
            api_shape(resources) if resources is not None else None,
            properties.get("ServiceRole") or _batch_service_role(backend), tags=properties.get("Tags"))
    patch.set(models.ComputeEnvironment, "create_from_cloudformation_json", classmethod(create))


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


@fix("batch-launch-template-groups", patches="moto.batch.models.BatchBackend._validate_compute_resources",
     why="""Compute resources without SecurityGroupIds take the security groups of their launch template's
     network interfaces, as Batch does. moto demanded SecurityGroupIds, which Batch refuses next to a launch
     template with network interfaces (aws-cdk #21577). With no group in either place it still refuses.""",
     source="moto/batch/models.py:1521-1528 reads cr['securityGroupIds'] unconditionally")
def batch_launch_template_groups(patch: Patcher) -> None:
    from moto.batch import models
    from moto.batch.exceptions import InvalidParameterValueException

    original = models.BatchBackend._validate_compute_resources

    def validate(self: Any, resources: dict[str, Any]) -> None:
        if (not resources.get("securityGroupIds") and resources.get("launchTemplate")
                and "FARGATE" not in str(resources.get("type", ""))):
            groups = _launch_template_groups(self.ec2_backend, resources["launchTemplate"])
            if not groups:
                raise InvalidParameterValueException(
                    "At least 1 security group must be provided, in securityGroupIds or in the launch template")
            resources = dict(resources, securityGroupIds=groups)  # for the check only: stored as the template says
        original(self, resources)
    patch.set(models.BatchBackend, "_validate_compute_resources", validate)


@fix("batch-job-queue-create", patches="moto.batch.models.JobQueue.create_from_cloudformation_json",
     why="""AWS::Batch::JobQueue's Tags and SchedulingPolicyArn reach CreateJobQueue. moto dropped both, so a
     queue's tags (which job tools find clusters by) read back empty.""",
     source="moto/batch/models.py:209-215 calls create_job_queue without tags and with schedule_policy=None")
def batch_job_queue_create(patch: Patcher) -> None:
    from moto.batch import models

    def create(cls: type, resource_name: str, cloudformation_json: dict[str, Any], account_id: str,
               region_name: str, **kwargs: Any) -> Any:
        properties = cloudformation_json["Properties"]
        return _backend(account_id, region_name).create_job_queue(
            queue_name=resource_name, priority=properties["Priority"], state=properties.get("State", "ENABLED"),
            compute_env_order=api_shape(properties["ComputeEnvironmentOrder"]),
            schedule_policy=properties.get("SchedulingPolicyArn"), tags=properties.get("Tags"))
    patch.set(models.JobQueue, "create_from_cloudformation_json", classmethod(create))


@fix("batch-getatt-arns", patches="moto.batch.models.ComputeEnvironment/JobQueue.has_cfn_attr, get_cfn_attribute",
     why="""Fn::GetAtt ComputeEnvironmentArn / JobQueueArn return the ARN. moto's Batch models have no GetAtt at
     all: the queue's GetAtt on its compute environment (and an output's GetAtt on the queue) failed the stack
     with AttributeError.""",
     source="moto/batch/models.py: ComputeEnvironment and JobQueue define no get_cfn_attribute")
def batch_getatt_arns(patch: Patcher) -> None:
    from moto.batch import models
    from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

    def arn_attribute(name: str) -> tuple[Any, Any]:
        def has_cfn_attr(cls: type, attribute: str) -> bool:
            return attribute == name

        def get_cfn_attribute(self: Any, attribute: str) -> str:
            if attribute == name:
                return self.arn
            raise UnformattedGetAttTemplateException()
        return classmethod(has_cfn_attr), get_cfn_attribute

    for model, attribute in ((models.ComputeEnvironment, "ComputeEnvironmentArn"),
                             (models.JobQueue, "JobQueueArn")):
        has_attr, get_attr = arn_attribute(attribute)
        patch.set(model, "has_cfn_attr", has_attr)
        patch.set(model, "get_cfn_attribute", get_attr)


@fix("batch-job-definition-create", patches="moto.batch.models.JobDefinition.create_from_cloudformation_json",
     why="""AWS::Batch::JobDefinition's Type, NodeProperties, ContainerProperties, EksProperties, RetryStrategy,
     Timeout, Parameters, Tags, PlatformCapabilities (default EC2, as the API) and PropagateTags reach
     RegisterJobDefinition in the API's camelCase, nested, with user maps (log options, tags) kept as written.
     moto hardcoded type 'container', required RetryStrategy, read 'timeout' in lower case and dropped the rest,
     so a multinode definition failed.""",
     source="moto/batch/models.py:494-512 (_type='container', properties['RetryStrategy'], "
            "properties.get('timeout'))")
def batch_job_definition_create(patch: Patcher) -> None:
    from moto.batch import models

    def create(cls: type, resource_name: str, cloudformation_json: dict[str, Any], account_id: str,
               region_name: str, **kwargs: Any) -> Any:
        properties = cloudformation_json["Properties"]

        def shaped(key: str) -> Any:
            return api_shape(properties[key]) if key in properties else None
        return _backend(account_id, region_name).register_job_definition(
            def_name=resource_name, parameters=dict(properties.get("Parameters", {})), _type=properties["Type"],
            tags=dict(properties.get("Tags", {})), retry_strategy=shaped("RetryStrategy"),
            container_properties=shaped("ContainerProperties"), node_properties=shaped("NodeProperties"),
            eks_properties=shaped("EksProperties"), timeout=shaped("Timeout"),
            platform_capabilities=properties.get("PlatformCapabilities", ["EC2"]),
            propagate_tags=bool(properties.get("PropagateTags", False)))
    patch.set(models.JobDefinition, "create_from_cloudformation_json", classmethod(create))


@fix("batch-describe-node-properties", patches="moto.batch.models.JobDefinition.describe",
     why="""DescribeJobDefinitions returns a multinode definition's nodeProperties. moto left them out, so no
     client could see the node ranges, their container or the node count (and mlcdk submit --image could not
     copy them).""",
     source="moto/batch/models.py:445-465 (JobDefinition.describe) omits node_properties")
def batch_describe_node_properties(patch: Patcher) -> None:
    from moto.batch import models

    original = models.JobDefinition.describe

    def describe(self: Any) -> dict[str, Any]:
        result = original(self)
        if self.node_properties is not None:
            result.setdefault("nodeProperties", self.node_properties)
        return result
    patch.set(models.JobDefinition, "describe", describe)


@fix("batch-delete-with-stack", patches="moto.batch.models.ComputeEnvironment/JobQueue/JobDefinition.delete",
     why="""A stack's compute environment, job queue and job definition are deleted with it: the queue, the
     compute environment once no queue uses it (moto retries it after the queue, like Batch's own dependency),
     and the definition deregistered to INACTIVE, as CloudFormation does. moto kept all three.""",
     source="moto/batch/models.py: ComputeEnvironment, JobQueue and JobDefinition define no delete()")
def batch_delete_with_stack(patch: Patcher) -> None:
    from moto.batch import models
    from moto.batch.exceptions import ClientException

    def compute_environment_delete(self: Any, account_id: str, region_name: str) -> None:
        backend = _backend(account_id, region_name)
        users = [q.name for q in backend._job_queues.values() if any(e.arn == self.arn for e in q.environments)]
        if users:  # as Batch: a compute environment in use by a queue cannot go; moto retries after the queue
            raise ClientException(f"compute environment {self.name} is used by job queue(s) {', '.join(users)}")
        backend.delete_compute_environment(self.arn)

    def job_queue_delete(self: Any, account_id: str, region_name: str) -> None:
        _backend(account_id, region_name).delete_job_queue(self.arn)

    def job_definition_delete(self: Any, account_id: str, region_name: str) -> None:
        _backend(account_id, region_name).deregister_job_definition(self.arn)

    patch.set_if_missing(models.ComputeEnvironment, "delete", compute_environment_delete)
    patch.set_if_missing(models.JobQueue, "delete", job_queue_delete)
    patch.set_if_missing(models.JobDefinition, "delete", job_definition_delete)


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


def _merge_by(key: str, old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    merged = {entry[key]: entry for entry in old}
    merged.update({entry[key]: entry for entry in new})
    return list(merged.values())


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
                container["environment"] = _merge_by("name", container.get("environment", []), changes["environment"])
            if "resourceRequirements" in changes:
                container["resourceRequirements"] = _merge_by("type", container.get("resourceRequirements", []),
                                                              changes["resourceRequirements"])
    return properties


@fix("batch-submit-node-overrides", patches="moto.batch.responses.BatchResponse.submitjob, moto.batch.models.Job.describe",
     why="""SubmitJob's nodeOverrides are kept, checked as Batch checks numNodes (an open node range, the main node
     and every range start below it), and shown by DescribeJobs in the job's nodeProperties (numNodes, and the
     container overrides of the node range with the same targetNodes). moto dropped nodeOverrides: every job
     showed the definition's node count and command.""",
     source="moto/batch/responses.py:188-211 (submitjob) never reads nodeOverrides")
def batch_submit_node_overrides(patch: Patcher) -> None:
    from moto.batch import models
    from moto.batch.responses import BatchResponse

    original_submit = BatchResponse.submitjob
    original_describe = models.Job.describe

    def submit_job(self: Any) -> str:
        overrides = self._get_param("nodeOverrides")
        if overrides:
            definition = self.batch_backend.get_job_definition(self._get_param("jobDefinition"))
            if definition is not None:
                _check_node_overrides(definition, overrides)
        body = original_submit(self)
        if overrides:
            self.batch_backend._jobs[json.loads(body)["jobId"]].node_overrides = copy.deepcopy(overrides)
        return body

    def job_describe(self: Any) -> dict[str, Any]:
        result = original_describe(self)
        overrides = self.__dict__.get("node_overrides")
        if overrides and result.get("nodeProperties") is not None:
            result["nodeProperties"] = _apply_node_overrides(result["nodeProperties"], overrides)
        return result

    patch.set(BatchResponse, "submitjob", submit_job)
    patch.set(models.Job, "describe", job_describe)


FIXES: tuple[Fix, ...] = (batch_compute_environment_create, batch_launch_template_groups, batch_job_queue_create,
                          batch_getatt_arns, batch_job_definition_create, batch_describe_node_properties,
                          batch_delete_with_stack, batch_submit_node_overrides)
