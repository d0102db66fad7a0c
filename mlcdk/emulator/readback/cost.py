"""Read-back of mlcdk's cost estimate: the stack's ``...EstimatedMonthlyCostUsd`` outputs, with their price date."""
from __future__ import annotations

from mlcdk.emulator.readback._view import Section, StackView

COST_OUTPUT = "EstimatedMonthlyCostUsd"


def describe_cost(view: StackView) -> None:
    costs = [o for o in view.description.get("Outputs", []) if COST_OUTPUT in o["OutputKey"]]
    for output in costs:
        view.line(f"  estimated monthly cost: ${float(output['OutputValue']):,.2f}  - {output.get('Description', '')}")
    if not costs:
        view.line("  estimated monthly cost: none (this stack has no cost output)")


SECTIONS = (Section("cost", describe_cost),)
