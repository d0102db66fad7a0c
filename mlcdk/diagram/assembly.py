"""Read one stack of a CDK cloud assembly (a ``cdk.out`` folder) without aws_cdk: its template, and the construct
path of every resource.

A cloud assembly is what ``cdk synth`` writes: ``manifest.json`` lists the artifacts; each stack artifact
(``aws:cloudformation:stack``) names its template file and carries metadata keyed by construct path. Every
resource's path comes from the template's ``aws:cdk:path`` metadata when the app wrote it (the CDK CLI turns it on
by default), else from the ``aws:cdk:logicalId`` entries of the stack's metadata, which aws-cdk writes for every
resource either inline in the manifest (``metadata``) or, since cloud-assembly schema 41, in the file named by
``additionalMetadataFile``. Nested assemblies (``cdk:cloud-assembly`` artifacts, one per Stage) are searched too.
Schema: aws-cdk's ``@aws-cdk/cloud-assembly-schema``, ``schema/cloud-assembly.schema.json``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlcdk.errors import ConfigurationError, unknown_name

STACK_ARTIFACT = "aws:cloudformation:stack"
NESTED_ASSEMBLY = "cdk:cloud-assembly"
PATH_METADATA = "aws:cdk:path"
LOGICAL_ID_METADATA = "aws:cdk:logicalId"


@dataclass(frozen=True)
class StackTemplate:
    """One synthesized stack: its artifact ID, its template, and the construct path of each logical ID."""

    name: str  #: the artifact ID, e.g. "TrainingStack"
    construct_path: str  #: the stack's own construct path, e.g. "TrainingStack", or "Prod/Api" in a Stage
    template_file: Path
    template: Mapping[str, Any]
    paths: Mapping[str, str]  #: logical ID -> construct path without a leading slash, e.g. "Stack/Vpc/Resource"


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigurationError(f"{what} {path} does not exist") from None
    except (OSError, ValueError) as error:
        raise ConfigurationError(f"{what} {path} cannot be read as JSON: {error}") from None


def _stack_artifacts(directory: Path) -> Iterator[tuple[str, Path, Mapping[str, Any]]]:
    """(artifact ID, assembly folder, artifact) for every stack, nested assemblies included."""
    manifest = _read_json(directory / "manifest.json", "the cloud assembly manifest")
    for artifact_id, artifact in sorted(manifest.get("artifacts", {}).items()):
        if artifact.get("type") == STACK_ARTIFACT:
            yield artifact_id, directory, artifact
        elif artifact.get("type") == NESTED_ASSEMBLY:
            nested = artifact.get("properties", {}).get("directoryName")
            if nested:
                yield from _stack_artifacts(directory / nested)


def _manifest_exists(directory: Path) -> None:
    if not (directory / "manifest.json").is_file():
        raise ConfigurationError(f"no cloud assembly at {directory} (no manifest.json); run `cdk synth` there "
                                 "first, or pass --synth to run it")


def stack_names(directory: Path) -> tuple[str, ...]:
    """Every stack of the assembly at ``directory``, by artifact ID."""
    _manifest_exists(directory)
    return tuple(name for name, _, _ in _stack_artifacts(directory))


def read_stack(directory: Path, stack: str) -> StackTemplate:
    """The template of ``stack`` (an artifact ID or a stack's display name) and every resource's construct path.

    Raises ConfigurationError when there is no assembly at ``directory`` or no such stack.
    """
    _manifest_exists(directory)
    artifacts = list(_stack_artifacts(directory))
    for name, folder, artifact in artifacts:
        if stack in (name, artifact.get("displayName")):
            template_file = folder / artifact.get("properties", {}).get("templateFile", f"{name}.template.json")
            template = _read_json(template_file, "the stack template")
            _check_template(template, template_file)
            return StackTemplate(name, str(artifact.get("displayName") or name), template_file, template,
                                 _resource_paths(template, folder, artifact))
    raise unknown_name("stack", stack, [name for name, _, _ in artifacts] or ["(none: the assembly has no stack)"],
                       "STACK")


def _check_template(template: Any, template_file: Path) -> None:
    resources = template.get("Resources", {}) if isinstance(template, Mapping) else None
    if not isinstance(resources, Mapping) or not all(isinstance(r, Mapping) for r in resources.values()):
        raise ConfigurationError(f"{template_file} is not a CloudFormation template: 'Resources' must map logical "
                                 "IDs to resource objects")


def _resource_paths(template: Mapping[str, Any], folder: Path, artifact: Mapping[str, Any]) -> dict[str, str]:
    """Logical ID -> construct path: the template's own path metadata first, then the artifact's metadata."""
    paths: dict[str, str] = {}
    for path, entries in _metadata(folder, artifact).items():
        for entry in entries:
            if isinstance(entry, Mapping) and entry.get("type") == LOGICAL_ID_METADATA and isinstance(entry.get("data"), str):
                paths[entry["data"]] = path.lstrip("/")
    for logical_id, resource in template.get("Resources", {}).items():
        metadata = resource.get("Metadata")
        path = metadata.get(PATH_METADATA) if isinstance(metadata, Mapping) else None
        if isinstance(path, str):
            paths[logical_id] = path
    return paths


def _metadata(folder: Path, artifact: Mapping[str, Any]) -> Mapping[str, list[Mapping[str, Any]]]:
    metadata = {path: list(entries) for path, entries in (artifact.get("metadata") or {}).items()
                if isinstance(entries, list)}
    extra = artifact.get("additionalMetadataFile")
    if extra and (folder / extra).is_file():
        document = _read_json(folder / extra, "the stack metadata file")
        for path, entries in (document.items() if isinstance(document, Mapping) else ()):
            metadata[path] = [*metadata.get(path, []), *(entries if isinstance(entries, list) else [])]
    return metadata
