"""A synthesized stack as a picture's data: every resource with its layer and key figures, grouped by construct.

- **Layers** (the resource's colour in a picture) come from its CloudFormation type: network, engine (what runs the
  work: Batch, Auto Scaling, ECS, launch templates), storage, security, guardrails (alarms, budgets, the alarm
  topic, event rules) and other (CDK's own helpers).
- **Boxes** are constructs: the stack, and every construct with at least BOX_MIN_RESOURCES resources under it. A
  resource sits in its innermost box, named by its construct path from that box ("PublicSubnet1/Subnet"), without
  the trailing "Resource" that aws-cdk gives an L2's own resource.
- **Figures**: instance types, node and vCPU counts, EFA interfaces, file system sizes, read from the resources'
  literal properties (a value only known at deploy time is left out).
- **Arrows** go from each engine resource to the resources it references (Ref, Fn::GetAtt, Fn::Sub): what the
  engine runs on.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from mlcdk.diagram import figures
from mlcdk.diagram.assembly import StackTemplate

LAYERS = ("network", "engine", "storage", "security", "guardrails", "other")
#: A construct becomes a box when it holds this many resources; with fewer they stay in the box above.
BOX_MIN_RESOURCES = 3
#: Layer by CloudFormation type: the longest matching prefix wins; types matching none are "other".
LAYER_BY_TYPE = {
    "AWS::EC2::": "network", "AWS::ElasticLoadBalancingV2::": "network", "AWS::Route53": "network",
    "AWS::EC2::LaunchTemplate": "engine", "AWS::EC2::PlacementGroup": "engine", "AWS::EC2::Instance": "engine",
    "AWS::EC2::CapacityReservation": "engine", "AWS::Batch::": "engine", "AWS::AutoScaling::": "engine",
    "AWS::ECS::": "engine", "AWS::ApplicationAutoScaling::": "engine", "AWS::SageMaker::": "engine",
    "AWS::EC2::Volume": "storage", "AWS::S3::": "storage", "AWS::FSx::": "storage", "AWS::EFS::": "storage",
    "AWS::Logs::": "storage", "AWS::ECR::": "storage",
    "AWS::EC2::SecurityGroup": "security", "AWS::IAM::": "security", "AWS::KMS::": "security",
    "AWS::WAFv2::": "security", "AWS::CertificateManager::": "security", "AWS::SecretsManager::": "security",
    "Custom::VpcRestrictDefaultSG": "security",
    "AWS::CloudWatch::": "guardrails", "AWS::Budgets::": "guardrails", "AWS::SNS::": "guardrails",
    "AWS::Events::": "guardrails",
}
_OWN_RESOURCE = "Resource"  # aws-cdk's ID for an L2 construct's own CloudFormation resource
_SUB_NAME = re.compile(r"\$\{(?!!)([A-Za-z0-9]+)(?:\.[^}]*)?\}")


@dataclass(frozen=True)
class Resource:
    """One resource of the template."""

    logical_id: str
    type: str  #: the CloudFormation type, e.g. "AWS::Batch::ComputeEnvironment"
    path: str  #: its construct path, e.g. "TrainingStack/Cluster/Batch/ComputeEnvironment/Resource"
    name: str  #: the path from its box, e.g. "ComputeEnvironment"
    layer: str  #: one of LAYERS
    figures: tuple[str, ...] = ()  #: e.g. ("trn1.32xlarge", "0-256 vCPUs")


@dataclass(frozen=True)
class Box:
    """A construct drawn as a box: the resources directly in it, then the boxes inside it."""

    path: str
    name: str
    resources: tuple[Resource, ...]
    boxes: tuple[Box, ...] = ()

    def walk(self) -> Iterator[Resource]:
        """Every resource in this box and the boxes inside it."""
        yield from self.resources
        for box in self.boxes:
            yield from box.walk()


@dataclass(frozen=True)
class StackDiagram:
    """A stack's picture as data: read it with :func:`diagram`, draw it with mlcdk.diagram.mermaid or .dot."""

    stack: str
    template_file: str
    root: Box
    edges: tuple[tuple[str, str], ...]  #: (from logical ID, to logical ID): an engine resource and what it uses

    @property
    def resources(self) -> tuple[Resource, ...]:
        return tuple(self.root.walk())


def layer_of(resource_type: str) -> str:
    matches = [prefix for prefix in LAYER_BY_TYPE if resource_type.startswith(prefix)]
    return LAYER_BY_TYPE[max(matches, key=len)] if matches else "other"


def diagram(stack: StackTemplate) -> StackDiagram:
    """The picture's data for one stack of a cloud assembly (see mlcdk.diagram.assembly.read_stack)."""
    resources: Mapping[str, Any] = stack.template.get("Resources", {})
    root = stack.construct_path
    tree = _Tree(root, resources, {logical_id: _segments(stack.paths.get(logical_id), root, logical_id)
                                   for logical_id in resources})
    edges = tuple(sorted((source, target) for source, definition in resources.items()
                         if layer_of(str(definition.get("Type", ""))) == "engine"
                         for target in sorted(references(definition.get("Properties", {})))
                         if target in resources and target != source))
    return StackDiagram(stack.name, str(stack.template_file), _box(tree, root, (), list(resources)), edges)


def _segments(path: str | None, root: str, logical_id: str) -> tuple[str, ...]:
    """The path below the stack, as segments; a resource without a path (or outside the stack) by its logical ID."""
    if path is None:
        return (logical_id,)
    return tuple((path[len(root) + 1:] if path.startswith(root + "/") else path).split("/"))


@dataclass(frozen=True)
class _Tree:
    root: str  #: the stack's construct path
    resources: Mapping[str, Any]  #: logical ID -> the template's resource
    segments: Mapping[str, tuple[str, ...]]  #: logical ID -> its construct path below the stack


def _box(tree: _Tree, name: str, prefix: tuple[str, ...], members: list[str]) -> Box:
    """The box for the construct at ``prefix`` holding ``members``: sub-boxes for children with enough resources."""
    children: dict[str, list[str]] = {}
    for logical_id in members:
        rest = tree.segments[logical_id][len(prefix):]
        if len(rest) > 1:
            children.setdefault(rest[0], []).append(logical_id)
    boxed = [child for child, ids in children.items() if len(ids) >= BOX_MIN_RESOURCES]
    own = tuple(_resource(tree, logical_id, name, prefix) for logical_id in members
                if tree.segments[logical_id][len(prefix)] not in boxed
                or len(tree.segments[logical_id]) == len(prefix) + 1)
    boxes = tuple(_box(tree, child, (*prefix, child), children[child]) for child in boxed)
    return Box("/".join((tree.root, *prefix)), name, own, boxes)


def _resource(tree: _Tree, logical_id: str, box_name: str, prefix: tuple[str, ...]) -> Resource:
    segments = tree.segments[logical_id]
    rest = list(segments[len(prefix):])
    if rest[-1] == _OWN_RESOURCE and len(rest) > 1:
        rest.pop()
    name = box_name if rest == [_OWN_RESOURCE] else "/".join(rest)
    definition = tree.resources[logical_id]
    resource_type = str(definition.get("Type", ""))
    return Resource(logical_id, resource_type, "/".join((tree.root, *segments)), name, layer_of(resource_type),
                    figures.of(resource_type, definition.get("Properties") or {}))


def references(value: Any) -> set[str]:
    """The logical IDs (and parameters) that ``value`` refers to through Ref, Fn::GetAtt and Fn::Sub."""
    found: set[str] = set()
    if isinstance(value, Mapping):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt":
                found.add(inner[0] if isinstance(inner, list) else str(inner).split(".")[0])
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) else inner
                found.update(_SUB_NAME.findall(text) if isinstance(text, str) else ())
            found |= references(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= references(inner)
    return found
