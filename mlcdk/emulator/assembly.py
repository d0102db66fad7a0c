"""The stacks a synthesized cloud assembly names (``manifest.json``), and which of them a run deploys.

Nested assemblies (CDK stages) are read too: their stacks go by ``Stage/Stack``, as the CDK CLI shows them.
"""
from __future__ import annotations

import fnmatch
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlcdk.emulator.cdk import ACCOUNT
from mlcdk.emulator.failures import Unavailable

STACK_TYPE = "aws:cloudformation:stack"
NESTED_TYPE = "cdk:cloud-assembly"
UNKNOWN = ("unknown-account", "unknown-region")


@dataclass(frozen=True)
class Stack:
    #: The artifact's ID in the assembly (what other stacks' dependencies name).
    artifact: str
    #: How the CDK CLI names it (a pattern on the command line matches this): ``Stack`` or ``Stage/Stack``.
    display_name: str
    #: The CloudFormation stack's name.
    name: str
    #: The account and region it deploys to (the emulator's account and the run's region where the app left them
    #: open).
    account: str
    region: str
    template_file: Path
    depends_on: tuple[str, ...]

    def template(self) -> dict[str, Any]:
        return json.loads(self.template_file.read_text())


def _environment(artifact: dict[str, Any], region: str) -> tuple[str, str]:
    _, _, where = str(artifact.get("environment", "aws://unknown-account/unknown-region")).partition("aws://")
    account, _, named_region = where.partition("/")
    return (ACCOUNT if account in UNKNOWN else account), (region if named_region in UNKNOWN else named_region)


def read(directory: Path, region: str) -> list[Stack]:
    """Every stack of the assembly in ``directory`` (and its nested assemblies), in manifest order."""
    manifest = json.loads((directory / "manifest.json").read_text())
    artifacts = manifest.get("artifacts", {})
    found: list[Stack] = []
    for artifact_id, artifact in artifacts.items():
        properties = artifact.get("properties", {})
        if artifact.get("type") == NESTED_TYPE:
            found += read(directory / properties["directoryName"], region)
        elif artifact.get("type") == STACK_TYPE:
            account, where = _environment(artifact, region)
            stacks = [d for d in artifact.get("dependencies", []) if artifacts.get(d, {}).get("type") == STACK_TYPE]
            found.append(Stack(artifact_id, artifact.get("displayName", artifact_id),
                               properties.get("stackName", artifact_id), account, where,
                               directory / properties["templateFile"], tuple(stacks)))
    return found


def select(stacks: Sequence[Stack], patterns: Sequence[str]) -> list[Stack]:
    """The stacks that match ``patterns`` (CDK CLI globs on the display name; none means all), with every stack
    they depend on, in manifest order. A pattern that matches nothing is a usage error that lists the stacks."""
    if not stacks:
        raise Unavailable("the app's cloud assembly names no stack")
    if not patterns:
        return list(stacks)
    by_artifact = {s.artifact: s for s in stacks}
    chosen: set[str] = set()
    for pattern in patterns:
        matched = [s for s in stacks if fnmatch.fnmatchcase(s.display_name, pattern)
                   or fnmatch.fnmatchcase(s.artifact, pattern)]
        if not matched:
            raise Unavailable(f"--stack: {pattern!r} matches no stack of the app; its stacks: "
                              + ", ".join(s.display_name for s in stacks))
        chosen.update(s.artifact for s in matched)
    pending = list(chosen)
    while pending:
        for dependency in by_artifact[pending.pop()].depends_on:
            if dependency in by_artifact and dependency not in chosen:
                chosen.add(dependency)
                pending.append(dependency)
    return [s for s in stacks if s.artifact in chosen]


def accounts(stacks: Sequence[Stack]) -> str:
    """The one account the stacks deploy to (moto plays it). Several accounts are a usage error."""
    named = sorted({s.account for s in stacks})
    if len(named) > 1:
        raise Unavailable(f"the stacks deploy to several accounts ({', '.join(named)}); the emulator plays one: "
                          "select stacks of one account with --stack")
    return named[0]
