"""When nothing fits: the single change to a workload that makes something fit (pure Python, no aws_cdk).

:meth:`mlcdk.presets.advisor.Advice.suggestion` calls :func:`suggest`, which tries each candidate change by
running the advisor again with it, in a fixed order: more nodes, a higher price cap, more days, a precision the
excluded accelerators run, on-demand, any region, any accelerator, a lower precision.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from mlcdk.errors import ConfigurationError
from mlcdk.presets.advisor import (OVER_BUDGET, OVER_MAX_DAYS, OVER_MAX_NODES, PRECISION_UNSUPPORTED, Advice,
                                   Recommendation, Suggestion, advise)
from mlcdk.presets.precision import alternatives
from mlcdk.presets.sizing import PRECISION_BYTES

def rerun(advice: Advice, explain: bool = False, **changes: Any) -> Advice:
    workload = dataclasses.replace(advice.workload, **changes)
    return advise(workload, rules=advice.rules, explain=explain, catalog=advice.catalog)


def _describe(top: Recommendation) -> str:
    return f"{top.nodes} x {top.instance_type} in {top.region} at ${top.hourly_cost_usd:,.2f}/h"


def suggest(advice: Advice) -> Suggestion | None:
    workload, kinds = advice.workload, {e.kind for e in advice.exclusions}
    tries: list[tuple[str, Any]] = []
    # the precisions that excluded accelerators do run, best stand-in first: kept to the user's other choices
    offered = {e.alternative for e in advice.exclusions if e.kind == PRECISION_UNSUPPORTED and e.alternative}
    runnable = [p for p in alternatives(workload.precision, workload.task) if p in offered]
    tries.extend(("precision", p) for p in runnable)
    over_nodes = [e.nodes_needed for e in advice.exclusions if e.kind == OVER_MAX_NODES and e.nodes_needed]
    if over_nodes:
        tries.append(("max_nodes", min(over_nodes)))
    if OVER_BUDGET in kinds:
        tries.append(("max_price_per_hour_usd", None))
    if OVER_MAX_DAYS in kinds:
        tries.append(("max_days", None))
    if workload.purchase_option == "spot":
        tries.append(("purchase_option", "on-demand"))
    if workload.regions:
        tries.append(("regions", ()))
    if workload.accelerator != "any":
        tries.append(("accelerator", "any"))
    # The same size first, then smaller ones, largest first: a bigger format would need more memory.
    tries.extend(("precision", p) for p in alternatives(workload.precision, workload.task)
                 if PRECISION_BYTES[p] <= PRECISION_BYTES[workload.precision] and p not in runnable)
    for parameter, value in tries:
        try:
            relaxed = rerun(advice, **{parameter: value})
        except ConfigurationError:
            continue
        if relaxed.recommendations:
            top = relaxed[0]
            # a price cap in cents that admits the top pick; the one region that has it; the days it needs
            days = None if top.estimated_days is None else math.ceil(top.estimated_days * 10) / 10
            value = {"max_price_per_hour_usd": math.ceil(top.hourly_cost_usd * 100) / 100,
                     "regions": (top.region,), "max_days": days}.get(parameter, value)
            if parameter == "max_days" and value is None:
                continue
            return Suggestion(parameter, value, top, _template(advice, relaxed, parameter, value, top,
                                                               parameter == "precision" and value in runnable))
    return None


def _template(advice: Advice, relaxed: Advice, parameter: str, value: Any, top: Recommendation,
              runs: bool = False) -> str:
    workload, need = advice.workload, advice.memory.total_gib
    where = ", ".join(workload.regions) or "any region"
    if parameter == "max_nodes":
        return f"nothing fits in {workload.max_nodes} node(s); raise {{name}} to {value} (then: {_describe(top)})"
    if parameter == "max_price_per_hour_usd":
        return (f"the cheapest fit, {_describe(top)}, is over the cap of ${workload.max_price_per_hour_usd:,.2f}/h; "
                f"raise {{name}} to {value:.2f}")
    if parameter == "max_days":
        return (f"nothing finishes the job in {workload.max_days:g} days; raise {{name}} to {value:g} "
                f"(then: {_describe(top)}, {top.estimated_days:,.1f} days)")
    if parameter == "purchase_option":
        return f"no spot configuration fits in {where}; switch {{name}} to on-demand (then: {_describe(top)})"
    if parameter == "regions":
        return f"nothing fits in {where}; the best fit elsewhere is {_describe(top)}: set {{name}} {top.region}"
    if parameter == "accelerator":
        return (f"no {workload.accelerator} configuration fits in {where}; set {{name}} any "
                f"(then: {_describe(top)}, {top.accelerator})")
    if runs:
        return (f"nothing that fits in {where} runs {workload.precision} (--explain says why); set {{name}} {value} "
                f"(then: {_describe(top)}, {top.accelerator})")
    return (f"nothing in {where} holds {need:,.1f} GiB at {workload.precision}; at {value} it needs "
            f"{relaxed.memory.total_gib:,.1f} GiB: set {{name}} {value} (then: {_describe(top)})")
