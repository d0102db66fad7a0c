"""What a read-back section sees of one deployed stack (:class:`StackView`), and what a section is (:class:`Section`)."""
from __future__ import annotations

import collections
import shlex
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

#: A boto3 client factory bound to the emulator: ``clients("ec2")``.
Clients = Callable[[str], Any]
#: DeletionPolicy values with which CloudFormation keeps a resource when its stack is deleted.
RETAINING = frozenset({"Retain", "RetainExceptOnCreate"})


@dataclass(frozen=True)
class Created:
    logical: str
    physical: str
    type: str


@dataclass(frozen=True)
class Kept:
    """Something a section read back, remembered for the leftover check after teardown."""

    section: str
    stack: str
    physical: str
    #: How the leftover check names it: "security group sg-0123".
    label: str
    #: The template keeps it on delete (DeletionPolicy Retain), as CloudFormation would: not a leftover.
    retained: bool


@dataclass
class StackView:
    """One deployed stack, as the emulator holds it, for the read-back sections."""

    clients: Clients
    #: The stack's name and the name the app gives it (``Stage/Stack``).
    name: str
    display_name: str
    #: DescribeStacks' answer for it.
    description: dict[str, Any]
    #: The synthesized template's Resources.
    declared: dict[str, dict[str, Any]]
    created: list[Created]
    kept: list[Kept] = field(default_factory=list)
    printed: list[str] = field(default_factory=list)
    #: Sections may leave notes here for later sections and for checks (e.g. the Batch queues found).
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def outputs(self) -> dict[str, str]:
        return {o["OutputKey"]: o["OutputValue"] for o in self.description.get("Outputs", [])}

    def of_type(self, resource_type: str) -> list[Created]:
        return [c for c in self.created if c.type == resource_type]

    def properties(self, logical: str) -> dict[str, Any]:
        return self.declared.get(logical, {}).get("Properties", {})

    def declared_of_type(self, resource_type: str) -> list[dict[str, Any]]:
        return [r for r in self.declared.values() if r.get("Type") == resource_type]

    def key_names(self) -> dict[str, str]:
        """KMS key ID -> its logical ID, for naming keys in other resources' lines."""
        return {c.physical: c.logical for c in self.of_type("AWS::KMS::Key")}

    def key_label(self, key: str) -> str:
        """A key ARN or ID, with the logical ID of the stack's key it is, if any: " (ClusterKey...)"."""
        key_id = key.rsplit("/", 1)[-1]
        names = self.key_names()
        return f" ({names[key_id]})" if key_id in names else ""

    def line(self, text: str) -> None:
        """Print one line of the read-back (indented by the caller)."""
        self.printed.append(text)
        print(text)

    def keep(self, section: str, physical: str, label: str, logical: str | None = None) -> None:
        """Remember ``physical`` for ``section``'s leftover check after teardown."""
        by_physical = {c.physical: c.logical for c in self.created}
        logical = logical or by_physical.get(physical, "")
        policy = self.declared.get(logical, {}).get("DeletionPolicy")
        self.kept.append(Kept(section, self.name, physical, label, policy in RETAINING))


@dataclass(frozen=True)
class Section:
    """One part of the read-back: prints what the stack created of some kind, and after teardown says which of the
    things it kept (:meth:`StackView.keep`) still exist."""

    name: str
    describe: Callable[[StackView], None]
    #: Given the physical IDs this section kept, the subset that still exists after teardown.
    still_there: Callable[[Clients, Collection[str]], Collection[str]] | None = None


def counted(types: Sequence[str]) -> str:
    """"7 EC2::Subnet, 2 IAM::Role": resource types with their counts, most first."""
    counts = collections.Counter(types)
    return ", ".join(f"{n} {t.replace('AWS::', '')}" for t, n in counts.most_common())


def command_text(command: Sequence[str]) -> str:
    """A container command for one line: long inline scripts (the mlcdk launcher's bootstrap) abbreviated."""
    return " ".join(f"<{len(arg)}-character inline script>" if len(arg) > 60 else shlex.quote(arg)
                    for arg in command) or "(none)"
