"""The figures a picture shows beside a resource: instance types, node and vCPU counts, EFA interfaces, storage size.

Read from the template's literal values only: a property that is a CloudFormation function (known at deploy time)
is left out rather than guessed. Property names are CloudFormation's (AWS resource and property types reference).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Properties = Mapping[str, Any]


def _literal(value: Any) -> str | None:
    """A literal string or whole number as text; None for a CloudFormation function or anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) or (isinstance(value, str) and value.strip()):
        return str(value)
    return None


def _mapping(value: Any) -> Properties:
    return value if isinstance(value, Mapping) else {}


def _types(values: Any) -> tuple[str, ...]:
    literals = (_literal(v) for v in (values if isinstance(values, list) else []))
    return tuple(dict.fromkeys(v for v in literals if v))


def _span(low: Any, high: Any, unit: str) -> tuple[str, ...]:
    low, high = _literal(low), _literal(high)
    if low is None and high is None:
        return ()
    if low == high or low is None or high is None:
        return (f"{low or high} {unit}",)
    return (f"{low}-{high} {unit}",)


def _launch_template(properties: Properties) -> tuple[str, ...]:
    data = _mapping(properties.get("LaunchTemplateData"))
    interfaces = data.get("NetworkInterfaces") if isinstance(data.get("NetworkInterfaces"), list) else []
    efa = sum(1 for i in interfaces if isinstance(i, Mapping) and i.get("InterfaceType") in ("efa", "efa-only"))
    return tuple(f for f in (_literal(data.get("InstanceType")), f"{efa} EFA interfaces" if efa else None) if f)


def _compute_environment(properties: Properties) -> tuple[str, ...]:
    resources = _mapping(properties.get("ComputeResources"))
    kind = _literal(resources.get("Type"))
    return (_types(resources.get("InstanceTypes")) + _span(resources.get("MinvCpus"), resources.get("MaxvCpus"), "vCPUs")
            + ((kind,) if kind else ()))


def _job_definition(properties: Properties) -> tuple[str, ...]:
    nodes = _literal(_mapping(properties.get("NodeProperties")).get("NumNodes"))
    return (f"{nodes} nodes per job",) if nodes else ()


def _auto_scaling_group(properties: Properties) -> tuple[str, ...]:
    mixed = _mapping(_mapping(properties.get("MixedInstancesPolicy")).get("LaunchTemplate"))
    overrides = mixed.get("Overrides") if isinstance(mixed.get("Overrides"), list) else []
    overrides = [o.get("InstanceType") for o in overrides if isinstance(o, Mapping)]
    desired = _literal(properties.get("DesiredCapacity"))
    return (_types(overrides) + _span(properties.get("MinSize"), properties.get("MaxSize"), "nodes")
            + ((f"desired {desired}",) if desired else ()))


def _ecs_service(properties: Properties) -> tuple[str, ...]:
    tasks = _literal(properties.get("DesiredCount"))
    return (f"{tasks} tasks",) if tasks else ()


def _file_system(properties: Properties) -> tuple[str, ...]:
    size = _literal(properties.get("StorageCapacity"))
    deployment = _literal(_mapping(properties.get("LustreConfiguration")).get("DeploymentType"))
    return tuple(f for f in (f"{size} GiB" if size else None, deployment) if f)


def _placement_group(properties: Properties) -> tuple[str, ...]:
    strategy = _literal(properties.get("Strategy"))
    return (f"{strategy} placement",) if strategy else ()


def _instance(properties: Properties) -> tuple[str, ...]:
    instance_type = _literal(properties.get("InstanceType"))
    return (instance_type,) if instance_type else ()


_BY_TYPE: Mapping[str, Callable[[Properties], tuple[str, ...]]] = {
    "AWS::EC2::LaunchTemplate": _launch_template,
    "AWS::Batch::ComputeEnvironment": _compute_environment,
    "AWS::Batch::JobDefinition": _job_definition,
    "AWS::AutoScaling::AutoScalingGroup": _auto_scaling_group,
    "AWS::ECS::Service": _ecs_service,
    "AWS::FSx::FileSystem": _file_system,
    "AWS::EC2::PlacementGroup": _placement_group,
    "AWS::EC2::Instance": _instance,
}


def of(resource_type: str, properties: Any) -> tuple[str, ...]:
    """The figures to show for a resource of ``resource_type`` (none for most types)."""
    reader = _BY_TYPE.get(resource_type)
    return reader(properties) if reader and isinstance(properties, Mapping) else ()
