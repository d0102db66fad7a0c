"""How many output tokens per second one serving replica generates (pure Python, no aws_cdk).

A node runs as many replicas as its devices allow: each replica holds the model on the fewest devices that fit it
(tensor parallel over a power-of-two share of the node, or the whole node), as vLLM and TensorRT-LLM deployments do,
and the node's ``concurrency`` requests of ``input_tokens`` in and ``output_tokens`` out are spread over the replicas.
Each replica serves its share batch after batch:

- **Prefill** (the prompt) is compute-bound: 2 x active parameters x input tokens per request, plus attention's
  2 x layers x input^2 x (heads x head size), over the devices' dense peak (``data/accelerators.json``) at the
  precision the math runs in, times the compute share that serving reaches.
- **Decode** (one token for every sequence per step) is memory-bound: each step reads the weights (a mixture of
  experts reads at most the active parameters per sequence) and every sequence's KV cache, over the devices' memory
  bandwidth times the share that serving reaches; or compute-bound at 2 x active parameters per sequence, whichever
  is slower. The KV cache read is the average over the generation: input + output / 2 tokens per sequence.
- A batch takes the prefill plus output_tokens decode steps, so the replica generates
  concurrency x output_tokens / (prefill + output_tokens x step) tokens per second.

The shares (``data/utilization.json``, ``serving``) come from each vendor's own published serving benchmark; the
checks against other published benchmarks, and how close they come, are in docs/advisor.md. Configurations whose
accelerator has no sourced bandwidth or peak have no figure (None), never a guess.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from mlcdk.advice.estimates import kv_bytes_per_value
from mlcdk.errors import ConfigurationError
from mlcdk.presets.catalog import DATA_DIR, InstanceSpec
from mlcdk.presets.datafile import EntryReader, read_mapping
from mlcdk.presets.precision import accelerator_throughputs, compute_precision
from mlcdk.presets.sizing import MAX_BATCH_SEQUENCES, PRECISION_BYTES, SizingRules, Workload

MEMORY_BANDWIDTH, COMPUTE = "memory bandwidth", "compute"


@dataclass(frozen=True)
class ServingShare:
    """The share of an accelerator's memory-bandwidth and compute peaks that serving reaches, with its source."""

    memory_bandwidth: float
    compute: float
    source: str
    reason: str


@dataclass(frozen=True)
class Replicas:
    """How a node is split into serving replicas."""

    devices: int  #: devices per replica (the tensor-parallel degree)
    replicas: int  #: replicas on the node
    sequences: int  #: sequences each busy replica serves at once
    busy: int  #: replicas with work: at most the concurrency


@dataclass(frozen=True)
class ServingEstimate:
    """One node's throughput at a concurrency, and the figures behind it."""

    concurrency: int
    tokens_per_second: float  #: output tokens per second over the node
    sequence_tokens_per_second: float  #: one sequence's decode speed (1 / time per output token)
    prefill_seconds: float  #: the batch's prompt processing (its time to first token)
    step_seconds: float  #: one decode step
    bound: str  #: MEMORY_BANDWIDTH or COMPUTE, for decode
    devices_per_replica: int = 1
    replicas: int = 1


def load_serving_shares(path: Path) -> dict[str, ServingShare]:
    """Read the ``serving`` section of a utilization file; an error names the file, the entry and the field."""
    table = {}
    for name, entry in read_mapping(path, "serving").items():
        read = EntryReader(path, f"serving[{name!r}]", entry, {"memory_bandwidth": (int, float),
                            "compute": (int, float), "source": str, "reason": str})
        for key in ("memory_bandwidth", "compute"):
            if not 0 < read(key, (int, float)) <= 1:
                raise read.error(key, f"is {read(key)!r}; it must be a fraction above 0 and at most 1")
        if not read("source", str).startswith("https://"):
            raise read.error("source", "must be an https:// URL")
        table[name] = ServingShare(float(read("memory_bandwidth")), float(read("compute")), read("source"),
                                   read("reason"))
    if "default" not in table:
        raise ConfigurationError(f"{path}: serving needs a 'default' entry")
    return table


@functools.lru_cache(maxsize=1)
def serving_shares() -> Mapping[str, ServingShare]:
    return MappingProxyType(load_serving_shares(DATA_DIR / "utilization.json"))


def share_for(accelerator: str) -> ServingShare:
    return serving_shares().get(accelerator, serving_shares()["default"])


def replicas(spec: InstanceSpec, workload: Workload, rules: SizingRules, concurrency: int | None) -> Replicas:
    """The split of one node of ``spec`` into replicas for ``concurrency`` sequences (None: batch inference, as many
    as memory holds per replica, up to MAX_BATCH_SEQUENCES)."""
    acc = spec.accelerator
    count = acc.count if acc is not None else 1
    device = (acc.memory_mib_per_device or 0) * 1024**2 if acc is not None else spec.memory_mib * 1024**2
    keep, overhead = 1 - workload.memory_headroom, 1 + rules.inference_overhead
    architecture = workload.architecture
    per_sequence = 0.0 if architecture is None else architecture.kv_cache_bytes(
        workload.context_tokens, 1, kv_bytes_per_value(workload, rules))
    shares = sorted({d for d in (1, 2, 4, 8, 16, 32) if count % d == 0} | {count})
    for devices in shares:
        room = keep * devices * device / overhead - workload.weight_bytes
        if room < per_sequence or room <= 0:
            continue
        held = MAX_BATCH_SEQUENCES if per_sequence == 0 else int(room // per_sequence)
        copies = count // devices
        if concurrency is None:
            sequences = max(1, min(MAX_BATCH_SEQUENCES, held))
            return Replicas(devices, copies, sequences, copies)
        sequences = -(-concurrency // copies)
        if sequences <= held:
            return Replicas(devices, copies, sequences, -(-concurrency // sequences))
    return Replicas(count, 1, concurrency or 1, 1)


def estimate(spec: InstanceSpec, workload: Workload, rules: SizingRules, concurrency: int | None,
             one_replica: bool = False) -> ServingEstimate | None:
    """``workload`` served by one node of ``spec`` at ``concurrency`` sequences (None: batch inference), or None
    without sourced figures. ``one_replica``: one replica on every device of the node (as a benchmark that ran
    tensor parallel over the whole node did), instead of as many replicas as fit."""
    acc = spec.accelerator
    figure = accelerator_throughputs().get(acc.name) if acc is not None else None
    architecture = workload.architecture
    if figure is None or architecture is None:
        return None
    bandwidth = figure.memory_bandwidth(acc.memory_mib_per_device)
    precision = compute_precision(acc.name, workload.precision, workload.task)
    tflops = figure.dense_tflops.get(precision or "") or next(
        (figure.dense_tflops[p] for p in ("bf16", "fp16") if p in figure.dense_tflops), None)
    if bandwidth is None or tflops is None:
        return None
    split = Replicas(acc.count, 1, concurrency or 1, 1) if one_replica else replicas(spec, workload, rules,
                                                                                         concurrency)
    share = share_for(acc.name)
    memory_rate = split.devices * bandwidth * 1e9 * share.memory_bandwidth
    compute_rate = split.devices * tflops * 1e12 * share.compute
    active, batch = architecture.active_params or workload.params, split.sequences
    inputs, outputs = workload.input_tokens, workload.output_tokens
    attention = 2 * architecture.layers * inputs**2 * architecture.attention_heads * architecture.head_dim
    prefill = batch * (2 * active * inputs + attention) / compute_rate
    weights_read = min(workload.params, active * batch) * PRECISION_BYTES[workload.precision]
    kv_read = batch * (inputs + outputs / 2) * architecture.kv_bytes_per_token(kv_bytes_per_value(workload, rules))
    by_memory = (weights_read + kv_read) / memory_rate
    by_compute = 2 * active * batch / compute_rate
    step = max(by_memory, by_compute)
    rate = split.busy * batch * outputs / (prefill + outputs * step)
    return ServingEstimate(split.busy * batch, rate, 1 / step, prefill, step,
                           MEMORY_BANDWIDTH if by_memory >= by_compute else COMPUTE, split.devices, split.replicas)


def cost_per_million_tokens(hourly_usd: float, tokens_per_second: float) -> float:
    """USD per million output tokens at ``hourly_usd`` for a replica generating ``tokens_per_second``."""
    return hourly_usd / (tokens_per_second * 3600) * 1e6
