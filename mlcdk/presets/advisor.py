"""The advisor: the cheapest configurations that fit a workload, out of the whole catalog (pure Python, no aws_cdk).

For every instance type and region, :func:`advise` decides whether the workload fits, on how many nodes, and
at what cost, under these rules:

- **Memory.** A node offers its total accelerator memory (devices x memory per device); CPU-only types offer
  their system memory. A configuration fits when nodes x memory per node covers the
  :func:`~mlcdk.presets.sizing.estimate_memory` need. The node count is the smallest that fits.
- **Nodes.** More than one node only for training tasks (training, fine-tuning, lora), only on EFA-capable
  types, and never more than ``workload.max_nodes``. Inference runs on one node (one replica).
- **Accelerators.** ``any`` means every GPU and Neuron type: CPU-only types are considered only with
  ``cpu``, because fitting in memory says nothing about speed, and a CPU that "fits" a training job is no
  answer. ``trainium`` and ``inferentia`` match the accelerator name, ``nvidia`` the manufacturer.
  Inferentia never trains (it is inference-only); Trainium may serve. Types the advisor cannot reason about
  are excluded with a reason: FPGA, media and other accelerators; fractional GPUs (g6f); types no catalog
  AMI runs (inf1), because the stacks could not deploy them.
- **Prices.** On-demand, or the lowest spot sample of the region's AZs. An unknown price excludes the
  candidate; it is never taken as free.
- **Ranking.** By hourly cost (nodes x price). With ``training_tokens``, by the whole job's cost: the
  FLOPs (:func:`~mlcdk.presets.sizing.training_flops`) over the devices' dense bf16 peak from
  ``data/accelerators.json`` at ``rules.utilization``; accelerators without a sourced figure are excluded.
  ``target_tokens_per_second`` does not change the ranking: the catalog has no sourced per-instance
  serving throughput, so inference is ranked by hourly cost, and the advice says so in its notes.

``advise(workload)[0]`` is the cheapest configuration that fits; ``advise(workload, explain=True).exclusions``
says why every other candidate was left out.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, overload

from mlcdk.errors import ConfigurationError
from mlcdk.presets import catalog as catalog_module
from mlcdk.presets.catalog import Catalog, InstanceSpec
from mlcdk.presets.sizing import (DATA_DIR, FULL_TRAINING_PRECISIONS, GIB, PRECISION_BYTES, MemoryEstimate,
                                  SizingRules, Workload, estimate_memory, training_flops)
from mlcdk.presets.workloads import _EntryReader, _load_mapping, machine_images

HOURS_PER_MONTH = 730
RANK_BY_HOURLY_COST = "hourly cost"
RANK_BY_JOB_COST = "job cost"

# Why a candidate was excluded, in the order the checks run.
UNSUPPORTED_ACCELERATOR = "unsupported accelerator"
NOT_PREFERRED = "accelerator preference"
INFERENCE_ONLY = "inference-only"
FRACTIONAL_GPU = "fractional GPU"
NO_AMI = "no catalog AMI"
NO_THROUGHPUT_FIGURE = "no throughput figure"
NOT_OFFERED = "not offered"
NO_SPOT = "no spot"
NO_PRICE = "no price"
DOES_NOT_FIT = "does not fit"
NO_EFA = "no EFA for multi-node"
OVER_MAX_NODES = "over max nodes"
OVER_BUDGET = "over budget"
EXCLUSION_KINDS = (UNSUPPORTED_ACCELERATOR, NOT_PREFERRED, INFERENCE_ONLY, FRACTIONAL_GPU, NO_AMI,
                   NO_THROUGHPUT_FIGURE, NOT_OFFERED, NO_SPOT, NO_PRICE, DOES_NOT_FIT, NO_EFA, OVER_MAX_NODES,
                   OVER_BUDGET)


@dataclass(frozen=True)
class AcceleratorThroughput:
    """One accelerator's dense bf16 peak per device, with its source."""

    name: str
    dense_bf16_tflops: float
    source: str
    note: str


def load_accelerator_throughputs(path: Path) -> dict[str, AcceleratorThroughput]:
    """Read an accelerators file; an error names the file, the entry and the field."""
    table = {}
    for name, entry in _load_mapping(path, "accelerators").items():
        read = _EntryReader(path, f"accelerators[{name!r}]", entry,
                            {"dense_bf16_tflops": (int, float), "source": str, "note": str})
        tflops = read("dense_bf16_tflops", (int, float))
        if tflops <= 0:
            raise read.error("dense_bf16_tflops", f"is {tflops!r}; it must be positive")
        if not read("source", str).startswith("https://"):
            raise read.error("source", "must be an https:// URL")
        table[name] = AcceleratorThroughput(name, float(tflops), read("source", str), read("note", str))
    return table


@functools.lru_cache(maxsize=1)
def accelerator_throughputs() -> Mapping[str, AcceleratorThroughput]:
    """The bundled figures of ``data/accelerators.json``, keyed by the catalog's accelerator name."""
    return MappingProxyType(load_accelerator_throughputs(DATA_DIR / "accelerators.json"))


@dataclass(frozen=True)
class Recommendation:
    """One configuration that fits: what to run, where, and what it costs."""

    instance_type: str
    accelerator: str  #: e.g. "8x H100", or "CPU" for CPU-only types
    nodes: int
    region: str
    az_ids: tuple[str, ...]  #: AZ IDs of the region that offer the type
    price_kind: str  #: "on-demand" or "spot" (the lowest dated spot sample among the region's AZs)
    price_per_node_usd: float
    hourly_cost_usd: float
    monthly_cost_usd: float  #: 730 hours
    price_as_of: str
    memory_needed_gib: float
    memory_available_gib: float  #: over all nodes
    memory_utilization_pct: float
    efa: bool  #: the type supports EFA (used between nodes when nodes > 1)
    estimated_days: float | None  #: with training_tokens only
    estimated_job_cost_usd: float | None  #: with training_tokens only
    reason: str


@dataclass(frozen=True)
class Exclusion:
    """A candidate (instance type in a region) that was left out, and why."""

    instance_type: str
    region: str
    kind: str  #: one of EXCLUSION_KINDS
    reason: str
    nodes_needed: int | None = None
    hourly_cost_usd: float | None = None  #: the cost it would have had (over max nodes, over budget)


@dataclass(frozen=True)
class Suggestion:
    """The smallest change to the workload that makes something fit, and the configuration it gives."""

    parameter: str  #: a Workload field
    value: Any
    top: Recommendation
    template: str  #: with "{name}" where the parameter's name goes

    def message(self, names: Mapping[str, str] | None = None) -> str:
        """One line; ``names`` maps Workload fields to the words to use (e.g. CLI flags). Default: field names."""
        return self.template.format(name=(names or {}).get(self.parameter, self.parameter))


@dataclass(frozen=True)
class Advice(Sequence[Recommendation]):
    """Recommendations best first (indexable like a tuple), with the estimate behind them.

    ``exclusions`` is filled only when :func:`advise` ran with ``explain=True``.
    """

    workload: Workload
    memory: MemoryEstimate
    ranking: str  #: RANK_BY_HOURLY_COST or RANK_BY_JOB_COST
    prices_as_of: str
    recommendations: tuple[Recommendation, ...]
    exclusions: tuple[Exclusion, ...] = ()
    notes: tuple[str, ...] = ()
    explained: bool = False
    rules: SizingRules = field(default_factory=SizingRules)
    catalog: Catalog | None = field(default=None, repr=False, compare=False)

    @overload
    def __getitem__(self, index: int) -> Recommendation: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[Recommendation, ...]: ...
    def __getitem__(self, index: int | slice) -> Recommendation | tuple[Recommendation, ...]:
        return self.recommendations[index]

    def __len__(self) -> int:
        return len(self.recommendations)

    def suggestion(self) -> Suggestion | None:
        """When nothing fits: the first single change (more nodes, a higher price cap, on-demand, any region,
        any accelerator, a lower precision) that makes something fit. None when something already fits or
        no single change helps."""
        if self.recommendations:
            return None
        return _suggest(self if self.explained else _rerun(self, explain=True))


def advise(workload: Workload, *, rules: SizingRules | None = None, explain: bool = False,
           catalog: Catalog | None = None) -> Advice:
    """Every configuration that fits ``workload``, cheapest first (see the module docstring for the rules).

    ``rules``: default :class:`SizingRules` defaults. ``explain``: also record each excluded candidate and
    why (default off, which is faster). ``catalog``: default the bundled snapshot. Raises ConfigurationError
    for a region the catalog does not know.
    """
    rules = rules or SizingRules()
    book = catalog or catalog_module.default_catalog()
    for region in workload.regions:
        book.check_region(region, "regions")
    regions = workload.regions or book.regions()
    memory = estimate_memory(workload, rules)
    need = memory.total_bytes
    flops = training_flops(workload, rules)
    throughputs = accelerator_throughputs() if flops is not None else {}
    spot = workload.purchase_option == "spot"
    cap = workload.max_price_per_hour_usd
    images = tuple(machine_images().values())
    fits: list[tuple[tuple, InstanceSpec, str, int, float, float | None]] = []
    excluded: list[Exclusion] = []

    for spec in book:
        static = _spec_problem(spec, workload, images, throughputs if flops is not None else None)
        if static is not None:
            if explain:
                excluded.extend(Exclusion(spec.instance_type, region, *static) for region in regions)
            continue
        per_node = _memory_per_node(spec)
        nodes = _nodes_needed(need, per_node)
        problem = _fit_problem(spec, workload, need, per_node, nodes)
        for region in regions:
            price, verdict = _price(spec, region, spot)
            if verdict is None and problem is not None:
                verdict = (*problem, nodes or None, nodes * price if nodes else None)
            elif verdict is None and cap is not None and nodes * price > cap:
                verdict = (OVER_BUDGET, f"${nodes * price:,.2f}/h for {nodes} node(s) is over the cap of ${cap:,.2f}/h",
                           nodes, nodes * price)
            if verdict is not None:
                if explain:
                    excluded.append(Exclusion(spec.instance_type, region, *verdict))
                continue
            hourly = nodes * price
            seconds = None
            if flops is not None:
                peak = throughputs[spec.accelerator.name].dense_bf16_tflops * 1e12 * spec.accelerator.count
                seconds = flops / (nodes * peak * rules.utilization)
                key = (hourly * seconds / 3600, seconds, hourly, spec.instance_type, region)
            else:
                key = (hourly, nodes, spec.instance_type, region)
            fits.append((key, spec, region, nodes, price, seconds))

    fits.sort(key=lambda item: item[0])
    provenance = book.provenance
    ranking = RANK_BY_JOB_COST if flops is not None else RANK_BY_HOURLY_COST
    recommendations = tuple(
        _recommendation(spec, region, nodes, price, seconds, need, workload, provenance.prices_as_of,
                        rank, len(fits), fits[0][0][0], key[0], ranking)
        for rank, (key, spec, region, nodes, price, seconds) in enumerate(fits))
    notes = memory.notes
    if flops is not None:
        notes += ("days are for the node count shown, the fewest that fit; n times the nodes take about 1/n of "
                  "the days for the same job cost, as long as utilization holds",)
    if workload.target_tokens_per_second is not None:
        notes += ("target_tokens_per_second does not change the ranking: the catalog has no sourced per-instance "
                  "serving throughput, so configurations are ranked by hourly cost",)
    return Advice(workload, memory, ranking, provenance.prices_as_of, recommendations, tuple(excluded), notes,
                  explain, rules, book)


# --------------------------------------------------------------------------------------------
# The rules, one check each
# --------------------------------------------------------------------------------------------


def _device(acc: Any) -> str:
    name, maker = acc.name or "unnamed accelerator", acc.manufacturer or ""
    return name if name.startswith(maker) else f"{maker} {name}"


def _matches_preference(spec: InstanceSpec, preference: str) -> bool:
    acc = spec.accelerator
    if preference == "cpu":
        return acc is None
    if acc is None:
        return False
    name = acc.name or ""
    return {"any": True, "trainium": name.startswith("Trainium"), "inferentia": name.startswith("Inferentia"),
            "nvidia": acc.manufacturer == "NVIDIA"}[preference]


def _spec_problem(spec: InstanceSpec, workload: Workload, images: tuple,
                  throughputs: Mapping[str, AcceleratorThroughput] | None) -> tuple[str, str] | None:
    """Why ``spec`` can never serve ``workload`` in any region, or None."""
    acc = spec.accelerator
    if acc is not None and acc.kind == "other":
        return UNSUPPORTED_ACCELERATOR, f"{_device(acc)} is an FPGA, media or other accelerator that the " \
                                        "advisor cannot size"
    if not _matches_preference(spec, workload.accelerator):
        what = "CPU-only" if acc is None else _device(acc)
        hint = " (CPU types are considered only with accelerator 'cpu')" if acc is None else ""
        return NOT_PREFERRED, f"{what} does not match accelerator {workload.accelerator!r}{hint}"
    if acc is not None and (acc.name or "").startswith("Inferentia") and workload.trains:
        return INFERENCE_ONLY, f"{acc.name} is inference-only; it cannot run {workload.task}"
    if acc is not None and acc.count == 0:
        return FRACTIONAL_GPU, f"a fraction of one {acc.name}; the advisor sizes whole devices"
    if all(image.problem_with(spec) for image in images):
        return NO_AMI, "no catalog AMI runs it, so the stacks could not deploy it"
    if throughputs is not None and (acc is None or acc.name not in throughputs):
        return NO_THROUGHPUT_FIGURE, (f"no sourced dense bf16 figure for {acc.name if acc else 'CPUs'}, so the job "
                                      "time cannot be estimated")
    return None


def _price(spec: InstanceSpec, region: str, spot: bool) -> tuple[float | None, tuple[str, str] | None]:
    """The price per node in ``region``, or why there is none (not offered, no spot, unknown price)."""
    if not spec.offered_in(region):
        return None, (NOT_OFFERED, f"not offered in {region}")
    if spot and not spec.spot_supported:
        return None, (NO_SPOT, "cannot run on spot")
    price = spec.spot_price(region) if spot else spec.on_demand_price(region)
    if price is None:
        return None, (NO_PRICE, f"no {'spot price sample' if spot else 'on-demand price'} known in {region}")
    return price, None


def _memory_per_node(spec: InstanceSpec) -> int:
    """Bytes a node offers: accelerator memory, or system memory for CPU-only types."""
    acc = spec.accelerator
    if acc is None:
        return spec.memory_mib * 1024 * 1024
    return (acc.memory_mib_per_device or 0) * acc.count * 1024 * 1024


def _nodes_needed(need: float, per_node: int) -> int:
    """The smallest n >= 1 with n x per_node >= need (0 when a node offers no memory)."""
    if per_node <= 0:
        return 0
    nodes = max(1, math.ceil(need / per_node))
    while nodes * per_node < need:
        nodes += 1
    while nodes > 1 and (nodes - 1) * per_node >= need:
        nodes -= 1
    return nodes


def _fit_problem(spec: InstanceSpec, workload: Workload, need: float, per_node: int,
                 nodes: int) -> tuple[str, str] | None:
    """Why the workload does not fit ``spec`` within the node rules, or None."""
    need_gib, node_gib = need / GIB, per_node / GIB
    if nodes == 0:
        return DOES_NOT_FIT, "its accelerator memory is unknown"
    if nodes > 1 and not workload.trains:
        return DOES_NOT_FIT, (f"needs {need_gib:,.1f} GiB; one node has {node_gib:,.1f} GiB, and inference runs "
                              "on one node")
    if nodes > 1 and not spec.efa_supported:
        return NO_EFA, f"needs {nodes} nodes of {node_gib:,.1f} GiB, and it has no EFA to join them"
    if nodes > workload.max_nodes:
        return OVER_MAX_NODES, f"needs {nodes} nodes of {node_gib:,.1f} GiB; max_nodes is {workload.max_nodes}"
    return None


def _recommendation(spec: InstanceSpec, region: str, nodes: int, price: float, seconds: float | None, need: float,
                    workload: Workload, prices_as_of: str, rank: int, total: int, best: float, score: float,
                    ranking: str) -> Recommendation:
    acc = spec.accelerator
    available = nodes * _memory_per_node(spec)
    hourly = nodes * price
    job = None if seconds is None else hourly * seconds / 3600
    utilization = 100 * need / available
    fit = f"fits on {nodes} EFA nodes" if nodes > 1 else "fits on 1 node"
    if rank == 0:
        standing = f"cheapest {'job' if job is not None else 'per hour'} of {total} that fit"
    else:
        standing = f"{score / best:.2f}x the top pick's {ranking}" if best > 0 else "ties the top pick"
    return Recommendation(
        instance_type=spec.instance_type,
        accelerator="CPU" if acc is None else f"{acc.count}x {acc.name}",
        nodes=nodes, region=region, az_ids=spec.offered_azs(region), price_kind=workload.purchase_option,
        price_per_node_usd=price, hourly_cost_usd=hourly, monthly_cost_usd=hourly * HOURS_PER_MONTH,
        price_as_of=prices_as_of, memory_needed_gib=need / GIB, memory_available_gib=available / GIB,
        memory_utilization_pct=utilization, efa=spec.efa_supported,
        estimated_days=None if seconds is None else seconds / 86400, estimated_job_cost_usd=job,
        reason=f"{fit} using {utilization:.0f}% of memory; {standing}")


# --------------------------------------------------------------------------------------------
# When nothing fits: the change that would help
# --------------------------------------------------------------------------------------------


def _rerun(advice: Advice, explain: bool = False, **changes: Any) -> Advice:
    workload = dataclasses.replace(advice.workload, **changes)
    return advise(workload, rules=advice.rules, explain=explain, catalog=advice.catalog)


def _describe(top: Recommendation) -> str:
    return f"{top.nodes} x {top.instance_type} in {top.region} at ${top.hourly_cost_usd:,.2f}/h"


def _suggest(advice: Advice) -> Suggestion | None:
    workload, kinds = advice.workload, {e.kind for e in advice.exclusions}
    tries: list[tuple[str, Any]] = []
    over_nodes = [e.nodes_needed for e in advice.exclusions if e.kind == OVER_MAX_NODES and e.nodes_needed]
    if over_nodes:
        tries.append(("max_nodes", min(over_nodes)))
    if OVER_BUDGET in kinds:
        tries.append(("max_price_per_hour_usd", None))
    if workload.purchase_option == "spot":
        tries.append(("purchase_option", "on-demand"))
    if workload.regions:
        tries.append(("regions", ()))
    if workload.accelerator != "any":
        tries.append(("accelerator", "any"))
    allowed = FULL_TRAINING_PRECISIONS if workload.task in ("training", "fine-tuning") else tuple(PRECISION_BYTES)
    for precision in sorted(allowed, key=lambda p: -PRECISION_BYTES[p]):
        if PRECISION_BYTES[precision] < PRECISION_BYTES[workload.precision]:
            tries.append(("precision", precision))
    for parameter, value in tries:
        try:
            relaxed = _rerun(advice, **{parameter: value})
        except ConfigurationError:
            continue
        if relaxed.recommendations:
            top = relaxed[0]
            # a price cap in cents that admits the top pick; the one region that has it
            value = {"max_price_per_hour_usd": math.ceil(top.hourly_cost_usd * 100) / 100,
                     "regions": (top.region,)}.get(parameter, value)
            return Suggestion(parameter, value, top, _template(advice, relaxed, parameter, value, top))
    return None


def _template(advice: Advice, relaxed: Advice, parameter: str, value: Any, top: Recommendation) -> str:
    workload, need = advice.workload, advice.memory.total_gib
    where = ", ".join(workload.regions) or "any region"
    if parameter == "max_nodes":
        return f"nothing fits in {workload.max_nodes} node(s); raise {{name}} to {value} (then: {_describe(top)})"
    if parameter == "max_price_per_hour_usd":
        return (f"the cheapest fit, {_describe(top)}, is over the cap of ${workload.max_price_per_hour_usd:,.2f}/h; "
                f"raise {{name}} to {value:.2f}")
    if parameter == "purchase_option":
        return f"no spot configuration fits in {where}; switch {{name}} to on-demand (then: {_describe(top)})"
    if parameter == "regions":
        return f"nothing fits in {where}; the cheapest fit elsewhere is {_describe(top)}: set {{name}} {top.region}"
    if parameter == "accelerator":
        return (f"no {workload.accelerator} configuration fits in {where}; set {{name}} any "
                f"(then: {_describe(top)}, {top.accelerator})")
    return (f"nothing in {where} holds {need:,.1f} GiB at {workload.precision}; at {value} it needs "
            f"{relaxed.memory.total_gib:,.1f} GiB: set {{name}} {value} (then: {_describe(top)})")
