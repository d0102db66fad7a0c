"""The advisor: the configurations that fit a workload, out of the whole catalog, best first (pure Python, no aws_cdk).

For every instance type and region, :func:`advise` decides whether the workload fits, on how many nodes, and
at what cost, under these rules:

- **Precision.** The accelerator must run the workload's precision (``data/precision.json``, each entry sourced):
  natively, or as weight-only storage where the weights are frozen (lora, inference). Unknown support counts as
  none. The exclusion names the best precision the accelerator does run ("T4 has no bf16; use precision fp16").
- **Memory, with headroom.** A configuration fits when its need divided over all its devices is at most
  ``1 - workload.memory_headroom`` (default 90%) of each device's memory; CPU-only types count system memory as
  one device. A node's host memory must also hold that node's share of the weights while they load (weights /
  nodes, within the same headroom). The node count is the smallest that satisfies both, computed in constant
  time, never stepped.
- **Nodes.** More than one node only for training tasks (training, fine-tuning, lora), only on EFA-capable
  types, and never more than ``workload.max_nodes``. Inference runs on one node (one replica).
- **Accelerators.** ``any`` means every GPU and Neuron type: CPU-only types are considered only with ``cpu``.
  ``trainium`` and ``inferentia`` match the accelerator name, ``nvidia`` the manufacturer. Inferentia never
  trains (``"training": false`` in ``data/precision.json``, read through ``Accelerator.trains``). Excluded with a reason: FPGA, media and other accelerators; fractional GPUs; types no catalog AMI runs
  (inf1; GPUs whose maker is not NVIDIA: the GPU AMIs list the makers whose drivers they carry).
- **Prices.** On-demand, or the lowest spot sample of the region's AZs. An unknown price excludes the
  candidate; it is never taken as free.
- **Ranking.** ``rank_by="job"`` (the default for training tasks): by the cost of the whole job, FLOPs
  (:func:`~mlcdk.presets.sizing.training_flops`, for ``training_tokens`` or a reference job of 20 tokens per
  parameter) over the devices' dense peak at the job's precision (``data/accelerators.json``) at
  ``rules.utilization``. Cost per effective FLOP gives the same order for any token count. Configurations whose
  accelerator has no sourced figure follow every one that has, by hourly cost: never ranked as if free.
  ``rank_by="hourly"`` (the default for inference): by nodes x price.
- **Limits.** ``max_price_per_hour_usd`` and ``max_days`` (a configuration without a throughput figure cannot be
  shown to finish in time, so it is excluded under ``max_days``).

``advise(workload)[0]`` is the top pick; ``advise(workload, explain=True).exclusions`` says why every other
candidate was left out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from mlcdk.presets import catalog as catalog_module
from mlcdk.presets.catalog import HOURS_PER_MONTH, Catalog, InstanceSpec
from mlcdk.presets.precision import (AcceleratorThroughput, accelerator_throughputs, compute_precision,
                                     describe_problem, load_accelerator_throughputs, precision_problem, support)
from mlcdk.presets.sizing import (GIB, REFERENCE_TOKENS_PER_PARAM, MemoryEstimate, SizingRules, Workload,
                                  estimate_memory, training_flops)
from mlcdk.presets.workloads import machine_images

__all__ = ["AcceleratorThroughput", "Advice", "Baseline", "Exclusion", "Recommendation", "Suggestion", "advise",
           "accelerator_throughputs", "load_accelerator_throughputs"]

RANK_BY_HOURLY_COST = "hourly cost"
RANK_BY_JOB_COST = "job cost"
MIB = 1024 * 1024

# Why a candidate was excluded, in the order the checks run.
UNSUPPORTED_ACCELERATOR = "unsupported accelerator"
NOT_PREFERRED = "accelerator preference"
INFERENCE_ONLY = "inference-only"
FRACTIONAL_GPU = "fractional GPU"
PRECISION_UNSUPPORTED = "precision unsupported"
NO_AMI = "no catalog AMI"
NOT_OFFERED = "not offered"
NO_SPOT = "no spot"
NO_PRICE = "no price"
DOES_NOT_FIT = "does not fit"
HOST_MEMORY = "host memory"
NO_EFA = "no EFA for multi-node"
OVER_MAX_NODES = "over max nodes"
OVER_BUDGET = "over budget"
OVER_MAX_DAYS = "over max days"
EXCLUSION_KINDS = (UNSUPPORTED_ACCELERATOR, NOT_PREFERRED, INFERENCE_ONLY, FRACTIONAL_GPU, PRECISION_UNSUPPORTED,
                   NO_AMI, NOT_OFFERED, NO_SPOT, NO_PRICE, DOES_NOT_FIT, HOST_MEMORY, NO_EFA, OVER_MAX_NODES,
                   OVER_BUDGET, OVER_MAX_DAYS)
#: The warning every multi-node spot recommendation carries (the presets' reason for on-demand training).
MULTI_NODE_SPOT_WARNING = (
    "spot on {nodes} nodes: losing one spot node stalls every node of a collective job. Checkpoint often enough to "
    "lose little at each interruption (2 minutes' notice), write checkpoints to S3 (the cluster's checkpoint "
    "bucket), and resume from the last one; or use on-demand")


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
    estimated_days: float | None  #: training tasks with a sourced throughput figure
    estimated_job_cost_usd: float | None  #: the same
    reason: str
    devices: int = 1  #: accelerators over all nodes (1 per node for CPU-only types)
    memory_needed_per_device_gib: float = 0.0  #: the need divided over every device
    memory_per_device_gib: float = 0.0  #: each device's capacity (system memory for CPU-only types)
    memory_limit_per_device_gib: float = 0.0  #: capacity x (1 - headroom): the most a device may be given
    host_memory_per_node_gib: float = 0.0
    weights_per_node_gib: float = 0.0  #: the node's share of the weights that its host memory holds while loading
    precision: str = ""  #: the workload's precision
    precision_support: str = ""  #: "native" or "weight-only" on this accelerator
    throughput_known: bool = False  #: a sourced dense figure at the job's precision exists (training tasks)
    previous_generation: bool = False
    speedup_vs_baseline: float | None = None  #: baseline job time / this job time
    cost_vs_baseline: float | None = None  #: this job's cost / the baseline's (hourly cost for inference)
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Exclusion:
    """A candidate (instance type in a region) that was left out, and why."""

    instance_type: str
    region: str
    kind: str  #: one of EXCLUSION_KINDS
    reason: str
    nodes_needed: int | None = None
    hourly_cost_usd: float | None = None  #: the cost it would have had (over max nodes, over budget)
    parameter: str | None = None  #: the Workload field the reason tells the user to change, if any
    alternative: Any = None  #: the value it suggests for that field


@dataclass(frozen=True)
class Baseline:
    """The instance type that recommendations are compared with, and its figures for the same job."""

    instance_type: str
    accelerator: str
    job_seconds: float | None  #: one node of it at its dense peak x utilization (None: no figure)
    prices: Mapping[str, float]  #: region -> price per hour at the workload's purchase option
    reason: str | None  #: why its figures are missing, if they are


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
    job_tokens: float | None = None  #: training tasks: the tokens the job figures are for
    reference_job: bool = False  #: True when job_tokens is the 20-tokens-per-parameter reference, not given
    baseline: Baseline | None = None

    @overload
    def __getitem__(self, index: int) -> Recommendation: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[Recommendation, ...]: ...
    def __getitem__(self, index: int | slice) -> Recommendation | tuple[Recommendation, ...]:
        return self.recommendations[index]

    def __len__(self) -> int:
        return len(self.recommendations)

    def suggestion(self) -> Suggestion | None:
        """When nothing fits: the first single change (more nodes, a higher price cap, more days, on-demand, any
        region, any accelerator, another precision) that makes something fit. None when something already fits or
        no single change helps."""
        from mlcdk.presets.suggestions import rerun, suggest

        if self.recommendations:
            return None
        return suggest(self if self.explained else rerun(self, explain=True))


@dataclass(frozen=True)
class _Fit:
    nodes: int  #: 0 when the device memory is unknown
    devices_per_node: int
    device_bytes: int
    host_bytes: int
    host_bound: bool  #: the host-memory rule, not the device rule, set the node count
    problem: tuple[str, str] | None


def advise(workload: Workload, *, rules: SizingRules | None = None, explain: bool = False,
           catalog: Catalog | None = None, baseline: str | None = None) -> Advice:
    """Every configuration that fits ``workload``, best first (see the module docstring for the rules).

    ``rules``: default :class:`SizingRules` defaults. ``explain``: also record each excluded candidate and
    why (default off, which is faster). ``catalog``: default the bundled snapshot. ``baseline``: an instance type
    to compare each recommendation with for the same job (default: none). Raises ConfigurationError for a region
    or baseline the catalog does not know.
    """
    rules = rules or SizingRules()
    book = catalog or catalog_module.default_catalog()
    for region in workload.regions:
        book.check_region(region, "regions")
    base_spec = None if baseline is None else book.get(baseline, "baseline")
    regions = workload.regions or book.regions()
    memory = estimate_memory(workload, rules)
    need, weights = memory.total_bytes, workload.weight_bytes
    flops = training_flops(workload, rules)
    by_job = workload.rank_by == "job"
    spot = workload.purchase_option == "spot"
    cap, max_days = workload.max_price_per_hour_usd, workload.max_days
    images = tuple(machine_images().values())
    fits: list[tuple[tuple, InstanceSpec, str, _Fit, float, float | None]] = []
    excluded: list[Exclusion] = []

    for spec in book:
        static = _spec_problem(spec, workload, images)
        if static is not None:
            if explain:
                excluded.extend(Exclusion(spec.instance_type, region, *static[:2], parameter=static[2],
                                          alternative=static[3]) for region in regions)
            continue
        fit = _fit(spec, workload, need, weights)
        nodes = fit.nodes
        seconds = _job_seconds(spec, nodes, flops, workload, rules) if fit.problem is None else None
        for region in regions:
            price, verdict = _price(spec, region, spot)
            if verdict is None and fit.problem is not None:
                verdict = (*fit.problem, nodes or None, nodes * price if nodes else None)
            elif verdict is None and cap is not None and nodes * price > cap:
                verdict = (OVER_BUDGET, f"${nodes * price:,.2f}/h for {nodes} node(s) is over the cap of ${cap:,.2f}/h",
                           nodes, nodes * price)
            elif verdict is None and max_days is not None and (seconds is None or seconds / 86400 > max_days):
                verdict = (OVER_MAX_DAYS, f"no sourced throughput figure, so it cannot be shown to finish in "
                                          f"{max_days:g} days" if seconds is None else
                           f"the job takes {seconds / 86400:,.1f} days on {nodes} node(s), over max_days "
                           f"({max_days:g})", nodes, nodes * price)
            if verdict is not None:
                if explain:
                    excluded.append(Exclusion(spec.instance_type, region, *verdict))
                continue
            hourly = nodes * price
            if by_job and seconds is not None:
                key: tuple = (0, hourly * seconds / 3600, seconds, hourly, spec.instance_type, region)
            elif by_job:  # no sourced figure: after every configuration with one, by hourly cost
                key = (1, hourly, nodes, spec.instance_type, region)
            else:
                key = (hourly, nodes, spec.instance_type, region)
            fits.append((key, spec, region, fit, price, seconds))

    fits.sort(key=lambda item: item[0])
    base = None if base_spec is None else _baseline(base_spec, workload, flops, rules, regions, spot)
    ranking = RANK_BY_JOB_COST if by_job else RANK_BY_HOURLY_COST
    best = _score(fits[0], by_job) if fits else None
    recommendations = tuple(
        _recommendation(spec, region, fit, price, seconds, need, weights, workload, book.provenance.prices_as_of,
                        rank, len(fits), best, _score(item, by_job), ranking, base)
        for rank, item in enumerate(fits) for (_, spec, region, fit, price, seconds) in [item])
    tokens = workload.job_tokens
    return Advice(workload, memory, ranking, book.provenance.prices_as_of, recommendations, tuple(excluded),
                  memory.notes + _notes(workload, recommendations, rules, base), explain, rules, book, tokens,
                  tokens is not None and workload.training_tokens is None, base)


def _score(item: tuple, by_job: bool) -> tuple[int, float]:
    """(group, cost) of a sorted fit: group 0 has a job cost, group 1 only an hourly cost."""
    key = item[0]
    return (key[0], key[1]) if by_job else (0, key[0])


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


def _spec_problem(spec: InstanceSpec, workload: Workload,
                  images: tuple) -> tuple[str, str, str | None, Any] | None:
    """Why ``spec`` can never serve ``workload`` in any region, or None: (kind, reason, parameter, alternative)."""
    acc = spec.accelerator
    if acc is not None and acc.kind == "other":
        return UNSUPPORTED_ACCELERATOR, (f"{_device(acc)} is an FPGA, media or other accelerator that the advisor "
                                         "cannot size"), None, None
    if not _matches_preference(spec, workload.accelerator):
        what = "CPU-only" if acc is None else _device(acc)
        hint = " (CPU types are considered only with accelerator 'cpu')" if acc is None else ""
        return NOT_PREFERRED, f"{what} does not match accelerator {workload.accelerator!r}{hint}", None, None
    if acc is not None and not acc.trains and workload.trains:
        return INFERENCE_ONLY, f"{acc.name} is inference-only; it cannot run {workload.task}", None, None
    if acc is not None and acc.count == 0:
        return FRACTIONAL_GPU, f"a fraction of one {acc.name}; the advisor sizes whole devices", None, None
    name = None if acc is None else acc.name
    problem = precision_problem(name, workload.precision, workload.task)
    if problem is not None:
        level, alternative = problem
        return (PRECISION_UNSUPPORTED, describe_problem(name, workload.precision, workload.task, level, alternative),
                "precision" if alternative else None, alternative)
    problems = [(image, image.problem_with(spec)) for image in images]
    if all(problem for _, problem in problems):
        # The AMI built for this kind of accelerator explains best (e.g. it carries NVIDIA drivers, not AMD's).
        kind = acc.kind if acc is not None else "none"
        why = next((problem for image, problem in problems if kind in image.accelerator_kinds), None)
        return NO_AMI, "no catalog AMI runs it" + (f" ({why})" if why else "") + ", so the stacks could not deploy it", \
            None, None
    return None


def _price(spec: InstanceSpec, region: str, spot: bool) -> tuple[float | None, tuple[str, str] | None]:
    """The price per node in ``region``, or why there is none (not offered, no spot, unknown price)."""
    if not spec.offered_in(region):
        return None, (NOT_OFFERED, f"not offered in {region}")
    if spot and not spec.spot_supported:
        return None, (NO_SPOT, "cannot run on spot")
    price = spec.spot_price(region) if spot else spec.on_demand_price(region)
    if price is None:
        return None, (NO_PRICE, f"no {'spot price sample' if spot else 'on-demand price'} known in {region}"
                                + (" (a previous-generation type)" if spec.previous_generation else ""))
    return price, None


def _devices(spec: InstanceSpec) -> tuple[int, int]:
    """(devices per node, bytes per device): accelerators, or the system memory as one device for CPU-only types."""
    acc = spec.accelerator
    if acc is None:
        return 1, spec.memory_mib * MIB
    return acc.count, (acc.memory_mib_per_device or 0) * MIB


def nodes_for(need: float, per_node: float) -> int:
    """The smallest n >= 1 with n x per_node >= need, in constant time (0 when a node offers nothing).

    One correction step each way absorbs the float rounding of the division; no input can make it loop.
    """
    if per_node <= 0:
        return 0
    nodes = max(1, math.ceil(need / per_node))
    if nodes * per_node < need:
        nodes += 1
    if nodes > 1 and (nodes - 1) * per_node >= need:
        nodes -= 1
    return nodes


def _fit(spec: InstanceSpec, workload: Workload, need: float, weights: float) -> _Fit:
    """The fewest nodes that hold ``need`` within the headroom and load the weights through host memory."""
    keep = 1 - workload.memory_headroom
    count, device = _devices(spec)
    host = spec.memory_mib * MIB
    by_device = nodes_for(need, count * device * keep)
    by_host = nodes_for(weights, host * keep) if spec.accelerator is not None else 1
    if by_device == 0:
        return _Fit(0, count, device, host, False, (DOES_NOT_FIT, "its accelerator memory is unknown"))
    nodes = max(by_device, by_host)
    host_bound = by_host > by_device
    holds = f"{count} x {keep * device / GIB:,.1f} GiB ({keep:.0%} of {count} x {device / GIB:,.1f} GiB)"
    host_text = (f"a node's {host / GIB:,.1f} GiB of host memory may hold {keep * host / GIB:,.1f} GiB ({keep:.0%}) "
                 f"of the {weights / GIB:,.1f} GiB of {workload.precision} weights while they load")
    why = host_text if host_bound else f"needs {need / GIB:,.1f} GiB; a node holds {holds}"
    problem = None
    if nodes > 1 and not workload.trains:
        problem = (DOES_NOT_FIT, f"needs {need / GIB:,.1f} GiB; one node holds {holds}, and inference runs on one "
                                 "node") if by_device > 1 else (HOST_MEMORY, f"{host_text}, and inference runs on "
                                                                               "one node")
    elif nodes > 1 and not spec.efa_supported:
        problem = NO_EFA, f"{why}: {nodes} nodes, and it has no EFA to join them"
    elif nodes > workload.max_nodes:
        problem = OVER_MAX_NODES, f"{why}: {nodes} nodes; max_nodes is {workload.max_nodes}"
    return _Fit(nodes, count, device, host, host_bound, problem)


def _job_seconds(spec: InstanceSpec, nodes: int, flops: float | None, workload: Workload,
                 rules: SizingRules) -> float | None:
    """Seconds the job takes on ``nodes`` nodes, or None (inference, or no sourced figure at the job's precision)."""
    acc = spec.accelerator
    if flops is None or acc is None or nodes == 0:
        return None
    precision = compute_precision(acc.name, workload.precision, workload.task)
    figure = accelerator_throughputs().get(acc.name)
    tflops = None if figure is None or precision is None else figure.dense_tflops.get(precision)
    if tflops is None:
        return None
    return flops / (nodes * acc.count * tflops * 1e12 * rules.utilization)


def _baseline(spec: InstanceSpec, workload: Workload, flops: float | None, rules: SizingRules,
              regions: Sequence[str], spot: bool) -> Baseline:
    """One node of ``spec`` running the same job, whether or not the job fits it (a yardstick, not a fit)."""
    acc = spec.accelerator
    name = None if acc is None else acc.name
    prices = {r: p for r in regions for p, problem in [_price(spec, r, spot)] if problem is None and p is not None}
    seconds = _job_seconds(spec, 1, flops, workload, rules)
    if flops is None:
        reason = "inference has no job, so only the hourly cost is compared"
    elif acc is None:
        reason = f"{spec.instance_type} is CPU-only, and the catalog has no sourced CPU throughput figure"
    elif precision_problem(name, workload.precision, workload.task) is not None:
        reason = f"{name} cannot run {workload.task} in {workload.precision} (data/precision.json)"
    elif seconds is None:
        reason = f"no sourced {workload.precision} throughput figure for {name}"
    else:
        reason = None
    if not prices:
        where = ", ".join(regions) if len(regions) <= 3 else f"any of {len(regions)} regions"
        reason = (f"{reason}; " if reason else "") + f"it has no price in {where}, so no cost is compared"
    return Baseline(spec.instance_type, "CPU" if acc is None else f"{acc.count}x {name}",
                    seconds, prices,
                    reason)


def _recommendation(spec: InstanceSpec, region: str, fit: _Fit, price: float, seconds: float | None, need: float,
                    weights: float, workload: Workload, prices_as_of: str, rank: int, total: int,
                    best: tuple[int, float] | None, score: tuple[int, float], ranking: str,
                    base: Baseline | None) -> Recommendation:
    acc = spec.accelerator
    nodes, keep = fit.nodes, 1 - workload.memory_headroom
    devices = nodes * fit.devices_per_node
    available = devices * fit.device_bytes
    hourly = nodes * price
    job = None if seconds is None else hourly * seconds / 3600
    utilization = 100 * need / available
    fit_text = f"fits at {utilization:.0f}% of each device (limit {keep:.0%})"
    if fit.host_bound:
        fit_text += "; host memory for loading the weights sets the nodes"
    if rank == 0:
        standing = (f"cheapest {'job' if ranking == RANK_BY_JOB_COST and score[0] == 0 else 'per hour'} "
                    f"of {total} that fit")
    elif score[0] == 1 and best is not None and best[0] == 0:
        standing = "no sourced throughput figure: ranked after those with one, by hourly cost"
    elif best is not None and best[1] > 0 and score[0] == best[0]:
        standing = f"{score[1] / best[1]:.2f}x the top pick's {ranking}"
    else:
        standing = "ties the top pick"
    level = support(None if acc is None else acc.name, workload.precision)
    extra = "; previous generation" if spec.previous_generation else ""
    if level == "weight-only":
        extra += f"; {workload.precision} as weight-only storage"
    warnings = (MULTI_NODE_SPOT_WARNING.format(nodes=nodes),) if nodes > 1 and workload.purchase_option == "spot" \
        else ()
    speedup = cost_ratio = None
    if base is not None:
        base_price = base.prices.get(region)
        if base.job_seconds is not None and seconds is not None:
            speedup = base.job_seconds / seconds
            if base_price is not None and job is not None:
                cost_ratio = job / (base_price * base.job_seconds / 3600)
        elif not workload.trains and base_price is not None:
            cost_ratio = hourly / base_price
    return Recommendation(
        instance_type=spec.instance_type,
        accelerator="CPU" if acc is None else f"{acc.count}x {acc.name}",
        nodes=nodes, region=region, az_ids=spec.offered_azs(region), price_kind=workload.purchase_option,
        price_per_node_usd=price, hourly_cost_usd=hourly, monthly_cost_usd=hourly * HOURS_PER_MONTH,
        price_as_of=prices_as_of, memory_needed_gib=need / GIB, memory_available_gib=available / GIB,
        memory_utilization_pct=utilization, efa=spec.efa_supported,
        estimated_days=None if seconds is None else seconds / 86400, estimated_job_cost_usd=job,
        reason=f"{fit_text}; {standing}{extra}",
        devices=devices, memory_needed_per_device_gib=need / devices / GIB,
        memory_per_device_gib=fit.device_bytes / GIB, memory_limit_per_device_gib=keep * fit.device_bytes / GIB,
        host_memory_per_node_gib=fit.host_bytes / GIB, weights_per_node_gib=weights / nodes / GIB,
        precision=workload.precision, precision_support=level, throughput_known=seconds is not None,
        previous_generation=spec.previous_generation, speedup_vs_baseline=speedup, cost_vs_baseline=cost_ratio,
        warnings=warnings)


def _notes(workload: Workload, recommendations: Sequence[Recommendation], rules: SizingRules,
           base: Baseline | None) -> tuple[str, ...]:
    notes = [f"a configuration fits when its need per device is at most {1 - workload.memory_headroom:.0%} of each "
             f"device's memory (memory_headroom {workload.memory_headroom:.0%}: runtime context, collective buffers, "
             "fragmentation), and a node's host memory holds its share of the weights while they load"]
    if workload.trains:
        tokens = workload.job_tokens
        if workload.training_tokens is None:
            notes.append(f"days and job cost are for a reference job of {REFERENCE_TOKENS_PER_PARAM} tokens per "
                         f"parameter ({_count(tokens)} tokens; Hoffmann et al. 2022); give the job's token count "
                         "for yours: the ranking is the same for any count")
        notes.append(f"job time = {rules.flops_per_param_token:g} x parameters x tokens over the devices' dense peak "
                     f"at the job's precision x {rules.utilization:.0%} utilization; days are for the node count "
                     "shown, the fewest that fit, and n times the nodes take about 1/n of the days for the same cost")
        unknown = sorted({r.accelerator.split("x ", 1)[-1] for r in recommendations if not r.throughput_known})
        if unknown:
            order = ("ranked after every configuration with one, by hourly cost"
                     if workload.rank_by == "job" else "ranked by hourly cost like the rest")
            notes.append(f"no sourced throughput figure for {', '.join(unknown)} at {workload.precision}: their days "
                         f"and job cost are unknown, and they are {order}")
    if workload.target_tokens_per_second is not None:
        notes.append("target_tokens_per_second does not change the ranking: the catalog has no sourced per-instance "
                     "serving throughput, so configurations are ranked by hourly cost")
    if base is not None:
        if base.reason is not None:
            notes.append(f"baseline {base.instance_type}: {base.reason}")
        elif workload.trains:
            notes.append(f"baseline {base.instance_type} ({base.accelerator}): one node takes "
                         f"{base.job_seconds / 86400:,.1f} days for the job, whether or not the job fits its memory")
    return tuple(notes)


def _count(value: float) -> str:
    scale = next(((unit, size) for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6)) if value >= size), ("", 1))
    return f"{value / scale[1]:.4g}{scale[0]}"
