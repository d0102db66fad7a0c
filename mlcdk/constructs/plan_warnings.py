"""Warnings a plan step notes before the construct exists. Pure (no aws_cdk): the plan steps run without jsii.

:func:`warn` takes a warning's ID and the values its message names, as
:func:`mlcdk.constructs.warning_registry.warn` does, and notes them on the plan; the construct raises them on
itself once it exists (``warning_registry.warn_noted``), with the table's message. tests/test_warning_registry.py
checks these calls against the table like every other ``warn`` call.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PlanWarning:
    """A noted warning: its ID (without the ``mlcdk:`` prefix) and the values its template names, sorted by name."""

    id: str
    values: tuple[tuple[str, object], ...] = ()

    def value(self, name: str) -> object:
        return dict(self.values)[name]


def warn(noted: list[PlanWarning], warning_id: str, /, **values: object) -> None:
    """Note warning ``mlcdk:<warning_id>`` with ``values`` for the construct to raise."""
    noted.append(PlanWarning(warning_id, tuple(sorted(values.items()))))
