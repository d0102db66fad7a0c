"""What the advisor returns: recommendations, exclusions, the baseline, a suggestion and the Advice that holds them
(pure Python, no aws_cdk).

The advisor's modules (candidates, notes, suggestions, advisor) all build on these types, and none of them on
another's: the one place that runs the advisor again (:mod:`mlcdk.advice.suggestions`) is handed the advisor as a
function.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from mlcdk.advice.estimates import MemoryEstimate
from mlcdk.presets.catalog import HOURS_PER_MONTH, Catalog
from mlcdk.presets.sizing import SizingRules, Workload

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
    #: What :meth:`suggestion` asks: :func:`mlcdk.advice.suggestions.suggest` bound to the advisor that made this
    #: Advice (passed in, so that the result types need not import the advisor that reruns them).
    suggester: Callable[[Advice], Suggestion | None] | None = field(default=None, repr=False, compare=False)

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
        or no single change helps (or when this Advice was built without a ``suggester``: :func:`advise` always
        gives it :func:`mlcdk.advice.suggestions.suggest`)."""
        if self.recommendations or self.suggester is None:
            return None
        return self.suggester(self)


def spot_warnings(workload: Workload, nodes: int) -> tuple[str, ...]:
    """The multi-node spot warning, for a spot configuration of more than one node."""
    return (MULTI_NODE_SPOT_WARNING.format(nodes=nodes),) if nodes > 1 and workload.purchase_option == "spot" else ()


def monthly(hourly: float) -> float:
    return hourly * HOURS_PER_MONTH
