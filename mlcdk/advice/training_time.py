"""How long a training job takes on n nodes of a type: compute at a sourced utilization, plus the communication that
fully sharded data parallelism needs over the node's links (pure Python, no aws_cdk).

**Compute.** FLOPs (:func:`~mlcdk.presets.sizing.training_flops`) over devices x dense peak at the job's precision
(``data/accelerators.json``) x model FLOPs utilization. The utilization comes from ``data/utilization.json``: published
runs by accelerator, precision and model size, interpolated linearly in log10(parameters) and held flat outside the
published sizes; ``SizingRules.utilization`` (``--mfu``) replaces it.

**Communication.** FSDP (Zhao et al. 2023, https://arxiv.org/abs/2304.11277) and ZeRO stage 3 (Rajbhandari et al.
2020, https://arxiv.org/abs/1910.02054) shard parameters, gradients and optimizer state over every device. For each
micro-batch a device all-gathers the parameters for the forward pass and again for the backward pass, and
reduce-scatters the gradients: 3 x parameters x bytes per value (ZeRO-3's 1.5x of data parallelism's 2x). LoRA
gathers its frozen weights twice and reduces only the adapters' gradients. A ring all-gather or reduce-scatter of S
bytes over D devices moves S x (D - 1) / D through each device's slowest link: NCCL's bus bandwidth
(nccl-tests doc/PERFORMANCE.md, https://github.com/NVIDIA/nccl-tests/blob/master/doc/PERFORMANCE.md, "busbw =
algbw x (n-1)/n" for both). That link is the intra-node one (NVLink, NeuronLink, or PCIe) inside one node, and the
node's network (``InstanceSpec.network_gbps``, EFA or not) once a ring leaves the node, whichever is slower: every
ring crosses each node boundary once, and NCCL spreads its rings over all of a node's NICs.

**Overlap.** FSDP prefetches the next layer's parameters while the current one computes, so communication hides
behind compute up to ``SizingRules.communication_overlap`` (1: fully). The job takes compute + the communication
that does not hide, and the larger of the two is the bound: "compute", "network" or "intra-node link".
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from mlcdk.advice.estimates import lora_adapter_params
from mlcdk.errors import ConfigurationError
from mlcdk.presets.catalog import DATA_DIR, InstanceSpec
from mlcdk.presets.datafile import EntryReader, read_mapping
from mlcdk.presets.precision import accelerator_throughputs, compute_precision
from mlcdk.presets.sizing import PRECISION_BYTES, SizingRules, Workload

COMPUTE, NETWORK, INTRA_NODE = "compute", "network", "intra-node link"
#: The most nodes a deadline search considers when it says what would meet a deadline.
SEARCH_LIMIT_NODES = 10**7


@dataclass(frozen=True)
class UtilizationPoint:
    params: float
    utilization: float
    source: str
    reason: str


@dataclass(frozen=True)
class TrainingPlan:
    """One configuration's job: its node count, time and what bounds it."""

    nodes: int
    seconds: float | None  #: the job's wall time; None without a sourced throughput figure
    compute_seconds: float | None = None
    communication_seconds: float = 0.0
    bound: str | None = None  #: COMPUTE, NETWORK or INTRA_NODE
    utilization: float | None = None
    utilization_basis: str = ""  #: where the utilization comes from
    bus_gb_s: float | None = None  #: the collectives' bus bandwidth, GB/s per device
    link: str = ""  #: the link that sets it: "the nodes' 40 Gbit/s network", "NVLink 4 (NVSwitch)"


def load_utilization(path: Path) -> dict[str, dict[str, tuple[UtilizationPoint, ...]]]:
    """Read a utilization file; an error names the file, the entry and the field."""
    table: dict[str, dict[str, tuple[UtilizationPoint, ...]]] = {}
    for accelerator, curves in read_mapping(path, "training").items():
        if not isinstance(curves, dict) or not curves:
            raise ConfigurationError(f"{path}: training[{accelerator!r}]: expected precision -> list of points")
        table[accelerator] = {}
        for precision, points in curves.items():
            where = f"training[{accelerator!r}][{precision!r}]"
            if precision not in PRECISION_BYTES or not isinstance(points, list) or not points:
                raise ConfigurationError(f"{path}: {where}: expected a precision and a non-empty list of points")
            read_points = []
            for index, point in enumerate(points):
                read = EntryReader(path, f"{where}[{index}]", point, {"params": (int, float),
                                    "utilization": (int, float), "source": str, "reason": str})
                value = read("utilization", (int, float))
                if not 0 < value <= 1 or not read("params", (int, float)) > 0:
                    raise read.error("utilization", f"is {value!r}; it must be a fraction above 0 and at most 1")
                if not read("source", str).startswith("https://"):
                    raise read.error("source", "must be an https:// URL")
                read_points.append(UtilizationPoint(float(read("params")), float(value), read("source"),
                                                    read("reason")))
            table[accelerator][precision] = tuple(sorted(read_points, key=lambda p: p.params))
    if "default" not in table or "bf16" not in table["default"]:
        raise ConfigurationError(f"{path}: training needs a 'default' entry with 'bf16' points")
    return table


@functools.lru_cache(maxsize=1)
def utilization_table() -> Mapping[str, Mapping[str, tuple[UtilizationPoint, ...]]]:
    """The bundled ``data/utilization.json``, loaded once."""
    return MappingProxyType(load_utilization(DATA_DIR / "utilization.json"))


def interpolate(points: Sequence[UtilizationPoint], params: float) -> float:
    """Linear in log10(parameters) between the published points around ``params``; the nearest end outside them."""
    if params <= points[0].params:
        return points[0].utilization
    if params >= points[-1].params:
        return points[-1].utilization
    for low, high in zip(points, points[1:]):
        if low.params <= params <= high.params:
            share = math.log10(params / low.params) / math.log10(high.params / low.params)
            return low.utilization + share * (high.utilization - low.utilization)
    return points[-1].utilization  # pragma: no cover - the points are sorted


def utilization_for(accelerator: str, precision: str, params: float, rules: SizingRules) -> tuple[float, str]:
    """The utilization for ``params`` on ``accelerator`` at ``precision``, and where it comes from."""
    if rules.utilization is not None:
        return rules.utilization, f"{rules.utilization:.0%} as given (--mfu)"
    table = utilization_table()
    curves = table.get(accelerator, {})
    key = (accelerator, precision) if precision in curves else (accelerator, "bf16") if "bf16" in curves else (
        "default", "bf16")
    points = table[key[0]][key[1]]
    value = interpolate(points, params)
    label = f"{key[0]} {key[1]}" if key[0] != "default" else "the H100 bf16 figures (no published run for this device)"
    return value, f"{value:.1%} from {label} at {params / 1e9:,.4g}B parameters"


def communication_bytes(workload: Workload, compute: str) -> float:
    """Bytes each micro-batch gathers and reduces across the sharded model (see the module docstring)."""
    per_value = PRECISION_BYTES[compute]
    if workload.task == "lora":
        return 2 * workload.params * PRECISION_BYTES[workload.precision] + lora_adapter_params(workload) * per_value
    return 3 * workload.params * per_value


def bus_bandwidth(spec: InstanceSpec, nodes: int) -> tuple[float | None, str, str]:
    """GB/s per device that a ring collective over ``nodes`` nodes of ``spec`` sustains, the kind of link that sets
    it (INTRA_NODE or NETWORK), and the link's name."""
    figure = accelerator_throughputs().get(spec.accelerator.name) if spec.accelerator else None
    intra = figure.intra_node_gb_s if figure else None
    inside = (INTRA_NODE, figure.intra_node_link if figure and figure.intra_node_link else "the intra-node link")
    network = spec.network_gbps / 8 if spec.network_gbps and nodes > 1 else None
    if network is None or (intra is not None and intra < network):
        return (intra, *inside)
    return network, NETWORK, f"the nodes' {spec.network_gbps:,g} Gbit/s network"


def plan(spec: InstanceSpec, nodes: int, flops: float | None, workload: Workload, rules: SizingRules) -> TrainingPlan:
    """The job on ``nodes`` nodes of ``spec``: seconds, the bound, and the figures behind them."""
    acc = spec.accelerator
    figure = accelerator_throughputs().get(acc.name) if acc is not None else None
    precision = compute_precision(acc.name, workload.precision, workload.task) if acc is not None else None
    tflops = figure.dense_tflops.get(precision) if figure is not None and precision is not None else None
    if flops is None or tflops is None or nodes < 1:
        return TrainingPlan(nodes, None)
    devices = nodes * acc.count
    architecture = workload.architecture
    active = architecture.active_params if architecture and architecture.active_params else workload.params
    utilization, basis = utilization_for(acc.name, precision, active, rules)
    compute = flops / (devices * tflops * 1e12 * utilization)
    bus, link, name = bus_bandwidth(spec, nodes)
    communication = 0.0
    if devices > 1 and bus is not None:
        micro_batches = workload.job_tokens / (devices * rules.tokens_per_device_step)
        communication = micro_batches * communication_bytes(workload, precision) * (devices - 1) / devices / (bus * 1e9)
    exposed = max(0.0, communication - rules.communication_overlap * compute)
    bound = link if communication > compute else COMPUTE
    return TrainingPlan(nodes, compute + exposed, compute, communication, bound, utilization, basis, bus, name)


def nodes_for_deadline(spec: InstanceSpec, nodes: tuple[int, int], flops: float | None, workload: Workload,
                       rules: SizingRules, days: float) -> tuple[TrainingPlan, int | None]:
    """The plan on the fewest nodes from ``first`` to ``limit`` (``nodes``) that finishes in ``days`` (else the plan
    at ``limit``), and the node count that would finish in time (None when none up to SEARCH_LIMIT_NODES would, or
    the job has no figure). Past two nodes the time only falls as nodes are added, so a bisection finds it."""
    first, limit = nodes
    seconds = days * 86400
    start = plan(spec, first, flops, workload, rules)
    if start.seconds is None or start.seconds <= seconds:
        return start, (first if start.seconds is not None else None)
    low = max(first + 1, 2)

    def fits(n: int) -> bool:
        time = plan(spec, n, flops, workload, rules).seconds
        return time is not None and time <= seconds

    needed = _first_true(fits, low, SEARCH_LIMIT_NODES)
    chosen = needed if needed is not None and needed <= limit else limit
    return plan(spec, max(chosen, first), flops, workload, rules), needed


def _first_true(predicate, low: int, high: int) -> int | None:
    """The smallest n in [low, high] with ``predicate(n)`` for a predicate that stays true once true; None if none.
    At most about 24 steps for the default range: never a scan."""
    if low > high or not predicate(high):
        return None
    while low < high:
        middle = (low + high) // 2
        if predicate(middle):
            high = middle
        else:
            low = middle + 1
    return low


__all__ = ["COMPUTE", "INTRA_NODE", "NETWORK", "TrainingPlan", "UtilizationPoint", "bus_bandwidth",
           "communication_bytes", "interpolate", "load_utilization", "nodes_for_deadline", "plan",
           "utilization_for", "utilization_table"]
