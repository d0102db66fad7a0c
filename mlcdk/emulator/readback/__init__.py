"""Read back what a deployed stack created, section by section, and after teardown what is still there.

A section (:class:`Section`) is a name, a ``describe(view)`` function that prints what the stack created of one
kind (through ``view.line``) and remembers each thing it found (``view.keep``), and optionally a
``still_there(clients, ids)`` function that answers, after teardown, which of those still exist. The read-back
of a stack is a header (what was created, what moto skipped) and then every section of :data:`SECTIONS`, in order.

To read back a new kind of resource, write a module beside these (``readback/ecs.py``) that defines its
functions and ``SECTIONS = (Section(...), ...)``, and add it to the list below: no other code changes. Code
outside the package (a script, a test) can call :func:`register` instead.
"""
from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Any

from mlcdk.emulator.readback import batch, compute, cost, ecs, events, network, storage, tasknetwork
from mlcdk.emulator.readback._view import Clients, Created, Kept, Section, StackView, command_text, counted

__all__ = ["SECTIONS", "Clients", "Created", "Kept", "Section", "StackView", "command_text", "describe_stack",
           "register", "still_there"]

#: Every section, in the order the read-back prints them.
SECTIONS: list[Section] = [*compute.SECTIONS, *batch.SECTIONS, *tasknetwork.SECTIONS, *ecs.SECTIONS, *events.SECTIONS,
                           *network.SECTIONS, *storage.SECTIONS, *cost.SECTIONS]


def register(section: Section, *, before: str | None = None) -> None:
    """Add ``section`` to the read-back: at the end, or before the section named ``before``."""
    if any(s.name == section.name for s in SECTIONS):
        raise ValueError(f"a read-back section named {section.name!r} exists already")
    names = [s.name for s in SECTIONS]
    SECTIONS.insert(names.index(before) if before is not None else len(SECTIONS), section)


def describe_stack(clients: Clients, name: str, display_name: str, template: dict[str, Any]) -> StackView:
    """Print one deployed stack as the emulator holds it (header, then every section); return the view, with what
    each section kept for the leftover check."""
    cfn = clients("cloudformation")
    description = cfn.describe_stacks(StackName=name)["Stacks"][0]
    resources = cfn.describe_stack_resources(StackName=name)["StackResources"]
    created = [Created(r["LogicalResourceId"], r.get("PhysicalResourceId", ""), r["ResourceType"])
               for r in resources if r.get("LogicalResourceId") and r.get("ResourceType")]
    declared = template.get("Resources", {})
    view = StackView(clients, name, display_name, description, declared, created)
    made = {c.logical for c in created}
    skipped = [v["Type"] for k, v in declared.items() if k not in made]
    shown = display_name if display_name == name else f"{display_name} (stack {name})"
    print()
    view.line(f"{shown}: {description['StackStatus']}  ({len(created)} of {len(declared)} template resources "
              "created in the emulator)")
    view.line("  resources: " + counted([c.type for c in created]))
    if skipped:
        view.line("  not modelled by moto (skipped, not created): " + counted(skipped))
    for section in SECTIONS:
        section.describe(view)
    return view


def still_there(clients: Clients, kept: Sequence[Kept]) -> tuple[list[Kept], list[Kept]]:
    """After teardown: (what is left that should be gone, what is left because its template retains it)."""
    by_section: dict[str, list[Kept]] = collections.defaultdict(list)
    for each in kept:
        by_section[each.section].append(each)
    left: list[Kept] = []
    for section in SECTIONS:
        if section.still_there is None or section.name not in by_section:
            continue
        present = set(section.still_there(clients, [k.physical for k in by_section[section.name]]))
        left += [k for k in by_section[section.name] if k.physical in present]
    return [k for k in left if not k.retained], [k for k in left if k.retained]
