"""When nothing fits: the single change to a workload that makes something fit (pure Python, no aws_cdk).

:meth:`mlcdk.advice.results.Advice.suggestion` calls :func:`suggest`, which tries each candidate change by
running the advisor again with it, in a fixed order: a precision the excluded accelerators run; the node count a
deadline needs (more nodes, or the vCPU quota for them); more nodes for memory; a higher price cap, job budget or
deadline; a lower throughput target; on-demand; any region; any accelerator; a lower precision.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

from mlcdk.advice.fitting import (OVER_BUDGET, OVER_MAX_COST, OVER_MAX_DAYS, OVER_MAX_NODES, OVER_QUOTA,
                                   PRECISION_UNSUPPORTED, UNDER_TARGET)
from mlcdk.advice.results import Advice, Recommendation, Suggestion
from mlcdk.errors import ConfigurationError
from mlcdk.presets import catalog
from mlcdk.presets.precision import alternatives
from mlcdk.presets.sizing import PRECISION_BYTES


#: :func:`mlcdk.advice.advisor.advise`, which the advisor hands to :func:`suggest` (the advisor imports this module,
#: so this module takes the advisor as an argument rather than importing it back).
Advisor = Callable[..., Advice]


def rerun(advice: Advice, advise: Advisor, explain: bool = False, **changes: Any) -> Advice:
    workload = dataclasses.replace(advice.workload, **changes)
    return advise(workload, rules=advice.rules, explain=explain, catalog=advice.catalog)


def _describe(top: Recommendation) -> str:
    return f"{top.nodes} x {top.instance_type} in {top.region} at ${top.hourly_cost_usd:,.2f}/h"


def _least(advice: Advice, kind: str, parameter: str) -> Any:
    """The smallest value that exclusions of ``kind`` suggest for ``parameter`` (None when none do)."""
    values = [e.alternative for e in advice.exclusions if e.kind == kind and e.parameter == parameter
              and e.alternative is not None]
    return min(values) if values else None


def _tries(advice: Advice) -> list[tuple[str, Any]]:
    workload, kinds = advice.workload, {e.kind for e in advice.exclusions}
    tries: list[tuple[str, Any]] = []
    # the precisions that excluded accelerators do run, best stand-in first: kept to the user's other choices
    offered = {e.alternative for e in advice.exclusions if e.kind == PRECISION_UNSUPPORTED and e.alternative}
    tries.extend(("precision", p) for p in alternatives(workload.precision, workload.task) if p in offered)
    for kind, parameter in ((OVER_MAX_DAYS, "max_nodes"), (OVER_MAX_DAYS, "vcpu_quota")):
        value = _least(advice, kind, parameter)
        if value is not None:
            tries.append((parameter, value))
    over_nodes = [e.nodes_needed for e in advice.exclusions if e.kind == OVER_MAX_NODES and e.nodes_needed]
    if over_nodes:
        tries.append(("max_nodes", min(over_nodes)))
    over_quota = [e.nodes_needed for e in advice.exclusions if e.kind == OVER_QUOTA and e.nodes_needed]
    if over_quota:
        tries.append(("vcpu_quota", None))
    tries += [(parameter, None) for kind, parameter in ((OVER_BUDGET, "max_price_per_hour_usd"),
                                                        (OVER_MAX_COST, "max_cost_usd"), (OVER_MAX_DAYS, "max_days"),
                                                        (UNDER_TARGET, "target_tokens_per_second")) if kind in kinds]
    if workload.purchase_option == "spot":
        tries.append(("purchase_option", "on-demand"))
    if workload.regions:
        tries.append(("regions", ()))
    if workload.accelerator != "any":
        tries.append(("accelerator", "any"))
    # The same size first, then smaller ones, largest first: a bigger format would need more memory.
    tries.extend(("precision", p) for p in alternatives(workload.precision, workload.task)
                 if PRECISION_BYTES[p] <= PRECISION_BYTES[workload.precision] and ("precision", p) not in tries)
    return tries


def suggest(advice: Advice, advise: Advisor) -> Suggestion | None:
    """The first change of :func:`_tries` with which ``advise`` finds something (None when none does). ``advice``
    is explained first (its exclusions say which changes to try) when it was not."""
    if not advice.explained:
        advice = rerun(advice, advise, explain=True)
    runnable = {e.alternative for e in advice.exclusions if e.kind == PRECISION_UNSUPPORTED and e.alternative}
    for parameter, value in _tries(advice):
        try:
            relaxed = rerun(advice, advise, **{parameter: value})
        except ConfigurationError:
            continue
        if not relaxed.recommendations:
            continue
        top = relaxed[0]
        if parameter == "target_tokens_per_second":  # the fastest configuration, not the cheapest
            top = max((r for r in relaxed if r.tokens_per_second), key=lambda r: r.tokens_per_second, default=top)
        value = _value_for(parameter, value, top)
        if value is None and parameter in ("max_days", "max_cost_usd", "target_tokens_per_second", "vcpu_quota"):
            continue
        return Suggestion(parameter, value, top, _template(advice, relaxed, parameter, value, top,
                                                           parameter == "precision" and value in runnable))
    return None


def _value_for(parameter: str, value: Any, top: Recommendation) -> Any:
    """The value to suggest, read from the configuration the relaxed run put first."""
    if parameter == "max_price_per_hour_usd":
        return math.ceil(top.hourly_cost_usd * 100) / 100
    if parameter == "regions":
        return (top.region,)
    if parameter == "max_days":
        return None if top.estimated_days is None else math.ceil(top.estimated_days * 10) / 10
    if parameter == "max_cost_usd":
        return None if top.estimated_job_cost_usd is None else math.ceil(top.estimated_job_cost_usd * 100) / 100
    if parameter == "target_tokens_per_second":
        return None if top.tokens_per_second is None else math.floor(top.tokens_per_second)
    if parameter == "vcpu_quota" and value is None:
        return top.nodes * catalog.get(top.instance_type).vcpus
    return value


def _template(advice: Advice, relaxed: Advice, parameter: str, value: Any, top: Recommendation,
              runs: bool = False) -> str:
    workload, need = advice.workload, advice.memory.total_gib
    where = ", ".join(workload.regions) or "any region"
    days = f", {top.estimated_days:,.1f} days" if top.estimated_days is not None else ""
    if parameter == "max_nodes" and workload.max_days is not None and top.nodes > top.nodes_for_memory:
        return (f"nothing finishes the job in {workload.max_days:g} days on {workload.max_nodes} node(s); raise {{name}} "
                f"to {value} (then: {_describe(top)}{days})")
    if parameter == "max_nodes":
        return f"nothing fits in {workload.max_nodes} node(s); raise {{name}} to {value} (then: {_describe(top)})"
    if parameter == "vcpu_quota":
        return (f"the vCPU quota of {workload.vcpu_quota} allows too few nodes; a quota of {value:,} vCPUs would do "
                f"(then: {_describe(top)}{days}); request it in Service Quotas")
    if parameter == "max_price_per_hour_usd":
        return (f"the cheapest fit, {_describe(top)}, is over the cap of ${workload.max_price_per_hour_usd:,.2f}/h; "
                f"raise {{name}} to {value:.2f}")
    if parameter == "max_cost_usd":
        return (f"no job costs under ${workload.max_cost_usd:,.2f}; raise {{name}} to {value:,.2f} "
                f"(then: {_describe(top)}{days})")
    if parameter == "max_days":
        return f"nothing finishes the job in {workload.max_days:g} days; raise {{name}} to {value:g} (then: " \
               f"{_describe(top)}{days})"
    if parameter == "target_tokens_per_second":
        return (f"nothing reaches {workload.target_tokens_per_second:,g} output tokens/s; the fastest that fits "
                f"makes {value:,} (then: {_describe(top)}): lower {{name}} to {value}")
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
