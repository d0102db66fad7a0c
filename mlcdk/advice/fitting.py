"""The advisor's rules for one instance type: can it run the workload at all, at what price, and on how few nodes
does the workload fit in memory (pure Python, no aws_cdk). :mod:`mlcdk.advice.advisor` applies them to the catalog.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from mlcdk.presets.catalog import InstanceSpec
from mlcdk.presets.precision import describe_problem, device_name, precision_problem, training_problem
from mlcdk.presets.sizing import GIB, Workload

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
OVER_QUOTA = "over vCPU quota"
OVER_BUDGET = "over budget"
OVER_MAX_DAYS = "over max days"
OVER_MAX_COST = "over job budget"
UNDER_TARGET = "under target throughput"
EXCLUSION_KINDS = (UNSUPPORTED_ACCELERATOR, NOT_PREFERRED, INFERENCE_ONLY, FRACTIONAL_GPU, PRECISION_UNSUPPORTED,
                   NO_AMI, NOT_OFFERED, NO_SPOT, NO_PRICE, DOES_NOT_FIT, HOST_MEMORY, NO_EFA, OVER_MAX_NODES,
                   OVER_QUOTA, OVER_BUDGET, OVER_MAX_DAYS, OVER_MAX_COST, UNDER_TARGET)


@dataclass(frozen=True)
class Fit:
    """How few nodes hold the workload in memory, or why none do."""

    nodes: int  #: 0 when the device memory is unknown
    devices_per_node: int
    device_bytes: int
    host_bytes: int
    host_bound: bool  #: the host-memory rule, not the device rule, set the node count
    problem: tuple[str, str] | None
    limit: int = 0  #: the most nodes allowed: max_nodes, and the vCPU quota when known


def device_label(acc: Any) -> str:
    name, maker = acc.name or "unnamed accelerator", acc.manufacturer or ""
    return name if name.startswith(maker) else f"{maker} {name}"


def matches_preference(spec: InstanceSpec, preference: str) -> bool:
    acc = spec.accelerator
    if preference == "cpu":
        return acc is None
    if acc is None:
        return False
    name = acc.name or ""
    return {"any": True, "trainium": name.startswith("Trainium"), "inferentia": name.startswith("Inferentia"),
            "nvidia": acc.manufacturer == "NVIDIA"}[preference]


def spec_problem(spec: InstanceSpec, workload: Workload, images: tuple) -> tuple[str, str, str | None, Any] | None:
    """Why ``spec`` can never serve ``workload`` in any region, or None: (kind, reason, parameter, alternative)."""
    acc = spec.accelerator
    if acc is not None and acc.kind == "other":
        return UNSUPPORTED_ACCELERATOR, (f"{device_label(acc)} is an FPGA, media or other accelerator that the "
                                         "advisor cannot size"), None, None
    if not matches_preference(spec, workload.accelerator):
        what = "CPU-only" if acc is None else device_label(acc)
        hint = " (CPU types are considered only with accelerator 'cpu')" if acc is None else ""
        return NOT_PREFERRED, f"{what} does not match accelerator {workload.accelerator!r}{hint}", None, None
    if acc is not None and training_problem(acc.name) is not None and workload.trains:
        return INFERENCE_ONLY, f"{acc.name} is inference-only; it cannot run {workload.task}", None, None
    if acc is not None and acc.count == 0:
        return FRACTIONAL_GPU, f"a fraction of one {acc.name}; the advisor sizes whole devices", None, None
    name = device_name(spec)
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


def price_in(spec: InstanceSpec, region: str, spot: bool) -> tuple[float | None, tuple[str, str] | None]:
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


def devices(spec: InstanceSpec) -> tuple[int, int]:
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


def node_limit(spec: InstanceSpec, workload: Workload) -> int:
    """The most nodes of ``spec`` a configuration may use: max_nodes, and the vCPU quota when it is known."""
    if workload.vcpu_quota is None:
        return workload.max_nodes
    return min(workload.max_nodes, workload.vcpu_quota // spec.vcpus)


def fit(spec: InstanceSpec, workload: Workload, need: float, host_need: float) -> Fit:
    """The fewest nodes that hold ``need`` within the headroom and hold ``host_need`` (the weights while they load,
    plus any paged optimizer state) in host memory."""
    keep = 1 - workload.memory_headroom
    count, device = devices(spec)
    host = spec.memory_mib * MIB
    by_device = nodes_for(need, count * device * keep)
    by_host = nodes_for(host_need, host * keep) if spec.accelerator is not None else 1
    limit = node_limit(spec, workload)
    if by_device == 0:
        return Fit(0, count, device, host, False, (DOES_NOT_FIT, "its accelerator memory is unknown"), limit)
    nodes = max(by_device, by_host)
    host_bound = by_host > by_device
    holds = f"{count} x {keep * device / GIB:,.1f} GiB ({keep:.0%} of {count} x {device / GIB:,.1f} GiB)"
    what = f"the {workload.precision} weights while they load" + (
        ", and the paged optimizer states" if host_need > workload.weight_bytes else "")
    host_text = (f"a node's {host / GIB:,.1f} GiB of host memory may hold {keep * host / GIB:,.1f} GiB ({keep:.0%}) "
                 f"of the {host_need / GIB:,.1f} GiB it must hold ({what})")
    why = host_text if host_bound else f"needs {need / GIB:,.1f} GiB; a node holds {holds}"
    problem = None
    if nodes > 1 and not workload.trains:
        problem = (DOES_NOT_FIT, f"needs {need / GIB:,.1f} GiB; one node holds {holds}, and a serving replica runs "
                                 "on one node") if by_device > 1 else (HOST_MEMORY, f"{host_text}, and a serving "
                                                                                    "replica runs on one node")
    elif nodes > 1 and not spec.efa_supported:
        problem = NO_EFA, f"{why}: {nodes} nodes, and it has no EFA to join them"
    elif nodes > workload.max_nodes:
        problem = OVER_MAX_NODES, f"{why}: {nodes} nodes; max_nodes is {workload.max_nodes}"
    elif nodes > limit:
        problem = OVER_QUOTA, (f"{why}: {nodes} nodes of {spec.vcpus} vCPUs; the vCPU quota of {workload.vcpu_quota} "
                               f"allows {limit}")
    return Fit(nodes, count, device, host, host_bound, problem, limit)
