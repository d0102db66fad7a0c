"""The advisor: the configurations that fit a workload, out of the whole catalog, best first (pure Python, no aws_cdk).

For every instance type and region, :func:`advise` decides whether the workload fits, on how many nodes, how fast
it runs and what it costs, under these rules (each in its own module):

- **Can it run at all** (:mod:`~mlcdk.presets.fitting`): the accelerator preference; Inferentia never trains; no
  FPGA, media or fractional accelerator; the precision must be supported (``data/precision.json``: natively, or as
  weight-only storage where the weights are frozen, integer weights for lora and serving, fp8 for serving); a
  catalog AMI must run the type.
- **Memory, with headroom** (:mod:`~mlcdk.presets.fitting`): the need over all devices is at most
  ``1 - memory_headroom`` of each device's memory, and a node's host memory holds its share of the weights while
  they load (and QLoRA's paged optimizer states). The fewest nodes that do so are computed, never stepped. More than
  one node only for training tasks, only with EFA, at most ``max_nodes`` and the vCPU quota when known.
- **Time** for training tasks (:mod:`~mlcdk.presets.training_time`): compute at the sourced utilization for the
  accelerator and model size, plus FSDP's all-gathers and reduce-scatters over the intra-node link and the network
  where they do not overlap compute; the bound ("compute", "network", "intra-node link") is reported. With
  ``max_days`` the node count grows until the job finishes in time.
- **Throughput** for serving tasks (:mod:`~mlcdk.presets.serving`): prefill bound by peak FLOPs, decode by memory
  bandwidth, at the workload's concurrency (batch-inference: as many sequences as memory holds, up to 256).
- **Prices**: on-demand, or the lowest spot sample of the region's own AZs (Local and Wavelength Zones never count).
  An unknown price excludes the candidate; it is never taken as free.
- **Ranking**: training tasks by the whole job's cost (``rank_by="job"``); serving by the cost per million output
  tokens (``"tokens"``); either by hourly cost (``"hourly"``). Configurations without a sourced figure follow every
  one that has one, by hourly cost: never ranked as if free.
- **Limits**: ``max_price_per_hour_usd``, ``max_cost_usd`` (the whole job), ``max_days``, ``target_tokens_per_second``.

``advise(workload)[0]`` is the top pick; ``advise(workload, explain=True).exclusions`` says why every other
candidate was left out, and ``Advice.suggestion()`` what single change would make something fit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from mlcdk.presets import catalog as catalog_module
from mlcdk.presets.catalog import HOURS_PER_MONTH, Catalog, InstanceSpec
from mlcdk.presets.fitting import (DOES_NOT_FIT, EXCLUSION_KINDS, FRACTIONAL_GPU, HOST_MEMORY,  # noqa: F401
                                   INFERENCE_ONLY, NO_AMI, NO_EFA, NO_PRICE, NO_SPOT, NOT_OFFERED, NOT_PREFERRED,
                                   OVER_BUDGET, OVER_MAX_COST, OVER_MAX_DAYS, OVER_MAX_NODES, OVER_QUOTA,
                                   PRECISION_UNSUPPORTED, UNDER_TARGET, UNSUPPORTED_ACCELERATOR, nodes_for)
from mlcdk.presets.precision import (AcceleratorThroughput, accelerator_throughputs,  # noqa: F401
                                     load_accelerator_throughputs)
from mlcdk.presets.sizing import (REFERENCE_TOKENS_PER_PARAM, MemoryEstimate, SizingRules, Workload,  # noqa: F401
                                  estimate_memory)
from mlcdk.presets.workloads import machine_images

__all__ = ["AcceleratorThroughput", "Advice", "Baseline", "Exclusion", "Recommendation", "Suggestion", "advise",
           "accelerator_throughputs", "fit_problem", "load_accelerator_throughputs", "nodes_for"]

RANK_BY_HOURLY_COST = "hourly cost"
RANK_BY_JOB_COST = "job cost"
RANK_BY_TOKEN_COST = "cost per million output tokens"
RANKINGS = {"job": RANK_BY_JOB_COST, "tokens": RANK_BY_TOKEN_COST, "hourly": RANK_BY_HOURLY_COST}
#: The warning every multi-node spot recommendation carries (the presets' reason for on-demand training).
MULTI_NODE_SPOT_WARNING = (
    "spot on {nodes} nodes: losing one spot node stalls every node of a collective job. Checkpoint often enough to "
    "lose little at each interruption (2 minutes' notice), write checkpoints to S3 (the cluster's checkpoint "
    "bucket), and resume from the last one; or use on-demand")


@dataclass(frozen=True)
class Recommendation:
    """One configuration that fits: what to run, where, how fast, and what it costs."""

    instance_type: str
    accelerator: str  #: e.g. "8x H100", or "CPU" for CPU-only types
    nodes: int
    region: str
    az_ids: tuple[str, ...]  #: the region's own AZ IDs that offer the type
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
    throughput_known: bool = False  #: a sourced time (training) or throughput (serving) figure exists
    previous_generation: bool = False
    speedup_vs_baseline: float | None = None  #: baseline job time / this job time
    cost_vs_baseline: float | None = None  #: this job's cost / the baseline's (hourly cost for serving)
    warnings: tuple[str, ...] = ()
    nodes_for_memory: int = 1  #: the fewest nodes that hold the workload; more when a deadline needs them
    bound: str | None = None  #: "compute", "network", "intra-node link" (training); "memory bandwidth" (serving)
    bound_detail: str = ""  #: one line on what bounds the time or the throughput
    utilization: float | None = None  #: the model FLOPs utilization the job time assumes
    compute_days: float | None = None
    communication_days: float | None = None  #: FSDP's collectives, before overlap with compute
    concurrency: int | None = None  #: serving: sequences at once
    tokens_per_second: float | None = None  #: serving: output tokens per second of the replica
    sequence_tokens_per_second: float | None = None  #: serving: one sequence's decode speed
    cost_per_million_tokens_usd: float | None = None  #: serving: hourly cost over output tokens


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
    job_seconds: float | None  #: one node of it (None: no figure)
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
    ranking: str  #: RANK_BY_JOB_COST, RANK_BY_TOKEN_COST or RANK_BY_HOURLY_COST
    prices_as_of: str
    recommendations: tuple[Recommendation, ...]
    exclusions: tuple[Exclusion, ...] = ()
    notes: tuple[str, ...] = ()
    explained: bool = False
    rules: SizingRules = field(default_factory=SizingRules)
    catalog: Catalog | None = field(default=None, repr=False, compare=False)
    job_tokens: float | None = None  #: training tasks: the tokens the job figures are for
    reference_job: bool = False  #: True when job_tokens is the reference job, not given
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
        """When nothing fits: the first single change (more nodes, a higher price cap or budget, more days, on-demand,
        any region, any accelerator, another precision) that makes something fit. None when something already fits
        or no single change helps."""
        from mlcdk.presets.suggestions import rerun, suggest

        if self.recommendations:
            return None
        return suggest(self if self.explained else rerun(self, explain=True))


def advise(workload: Workload, *, rules: SizingRules | None = None, explain: bool = False,
           catalog: Catalog | None = None, baseline: str | None = None) -> Advice:
    """Every configuration that fits ``workload``, best first (see the module docstring for the rules).

    ``rules``: default :class:`SizingRules` defaults. ``explain``: also record each excluded candidate and why
    (default off, which is faster). ``catalog``: default the bundled snapshot (or ``$MLCDK_CATALOG``). ``baseline``:
    an instance type to compare each recommendation with for the same job (default: none). Raises
    ConfigurationError for a region or baseline the catalog does not know.
    """
    from mlcdk.presets.candidates import Context, evaluate, recommendation, sort_key
    from mlcdk.presets.notes import advice_notes, baseline_for

    rules = rules or SizingRules()
    book = catalog or catalog_module.default_catalog()
    for region in workload.regions:
        book.check_region(region, "regions")
    base_spec = None if baseline is None else book.get(baseline, "baseline")
    context = Context.of(workload, rules, book, tuple(machine_images().values()))
    fits, excluded = [], []
    for spec in book:
        evaluated, exclusions = evaluate(spec, context, explain)
        fits.extend(evaluated)
        excluded.extend(exclusions)
    fits.sort(key=sort_key)
    base = None if base_spec is None else baseline_for(base_spec, context)
    ranking = RANKINGS[workload.rank_by]
    recommendations = tuple(recommendation(item, context, rank, fits, base) for rank, item in enumerate(fits))
    tokens = workload.job_tokens
    return Advice(workload, context.memory, ranking, book.provenance.prices_as_of, recommendations, tuple(excluded),
                  context.memory.notes + advice_notes(context, recommendations, base), explain, rules, book, tokens,
                  tokens is not None and workload.training_tokens is None, base)


def spot_warnings(workload: Workload, nodes: int) -> tuple[str, ...]:
    """The multi-node spot warning, for a spot configuration of more than one node."""
    return (MULTI_NODE_SPOT_WARNING.format(nodes=nodes),) if nodes > 1 and workload.purchase_option == "spot" else ()


def fit_problem(spec: InstanceSpec, workload: Workload, rules: SizingRules | None = None) -> str | None:
    """Why ``workload`` cannot run on ``spec`` by :func:`advise`'s own rules, with the numbers, or None when it fits:
    :func:`~mlcdk.presets.fitting.spec_problem` (accelerator, precision, AMI), then
    :func:`~mlcdk.presets.fitting.fit` on the need :func:`advise` computes (device memory within the headroom, host
    memory for the weights while they load, one node for a serving replica). The construct-side twin of ``advise``:
    InferenceFleet refuses a model this way, so the fleet and the advisor share one rule. Region, price and offering
    are not checked here (the constructs check them themselves)."""
    from mlcdk.presets import fitting
    from mlcdk.presets.candidates import Context

    context = Context.of(workload, rules or SizingRules(), catalog_module.default_catalog(),
                         tuple(machine_images().values()))
    static = fitting.spec_problem(spec, workload, context.images)
    if static is not None:
        return static[1]
    problem = fitting.fit(spec, workload, context.need, context.host_need).problem
    return None if problem is None else problem[1]


def monthly(hourly: float) -> float:
    return hourly * HOURS_PER_MONTH
