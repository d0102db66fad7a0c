"""Estimates for a :class:`~mlcdk.presets.sizing.Workload`: the memory it needs, part by part, and the FLOPs of its
job (pure Python, no aws_cdk). The rules are :class:`~mlcdk.presets.sizing.SizingRules`; see
:mod:`mlcdk.presets.sizing` for what each task holds."""

from __future__ import annotations

from dataclasses import dataclass, field

from mlcdk.presets.models import ModelArchitecture, nearest_known
from mlcdk.presets.sizing import GIB, PRECISION_BYTES, SizingRules, Workload


@dataclass(frozen=True)
class MemoryPart:
    label: str
    bytes: float


@dataclass(frozen=True)
class MemoryEstimate:
    """The memory a workload needs, part by part, with notes on what was not counted."""

    parts: tuple[MemoryPart, ...]
    notes: tuple[str, ...] = field(default=())
    #: Bytes that live in each job's host memory rather than on the devices (QLoRA's paged optimizer states).
    host_bytes: float = 0.0

    @property
    def total_bytes(self) -> float:
        return sum(part.bytes for part in self.parts)

    @property
    def total_gib(self) -> float:
        return self.total_bytes / GIB

    def summary(self) -> str:
        """One line: the total and its parts, in GiB."""
        parts = " + ".join(f"{p.bytes / GIB:,.1f} {p.label}" for p in self.parts)
        host = f"; {self.host_bytes / GIB:,.1f} GiB of paged optimizer states in host memory" if self.host_bytes else ""
        return f"{self.total_gib:,.1f} GiB = {parts}{host}"


def estimate_memory(workload: Workload, rules: SizingRules | None = None) -> MemoryEstimate:
    """The accelerator memory ``workload`` needs under ``rules`` (default: :class:`SizingRules` defaults)."""
    rules = rules or SizingRules()
    if workload.task in ("training", "fine-tuning"):
        state = workload.params * rules.training_bytes_per_param
        return MemoryEstimate((
            MemoryPart(f"weights, gradients and Adam state ({rules.training_bytes_per_param:g} B/param)", state),
            MemoryPart(f"activations ({rules.activation_allowance:.0%})", state * rules.activation_allowance)))
    if workload.task == "lora":
        return _lora_memory(workload, rules)
    return _serving_memory(workload, rules, workload.concurrency or 1)


def lora_shape(workload: Workload) -> tuple[ModelArchitecture, bool]:
    """The architecture that sizes LoRA adapters and activations, and whether it is the model's own (False: the
    known model nearest in parameter count stands in for a bare count, scaled to it)."""
    if workload.architecture is not None:
        return workload.architecture, True
    return nearest_known(workload.params), False


def lora_adapter_params(workload: Workload) -> float:
    """Adapter parameters of ``workload`` (lora): from the model's dimensions, or a stand-in's scaled to the count."""
    shape, own = lora_shape(workload)
    adapters = shape.lora_adapter_params(workload.lora_rank)
    return adapters if own else adapters * workload.params / shape.params


def _lora_memory(workload: Workload, rules: SizingRules) -> MemoryEstimate:
    params, precision, rank = workload.params, workload.precision, workload.lora_rank
    shape, own = lora_shape(workload)
    adapters = lora_adapter_params(workload)
    qlora = precision == "int4"
    per_adapter = rules.qlora_adapter_bytes_per_param if qlora else rules.lora_adapter_bytes_per_param
    tokens = rules.tokens_per_device_step
    # Gradient checkpointing keeps each layer's input (2 bytes per value), and recomputes one layer at a time, whose
    # activations take 34 bytes per token per hidden unit (Korthikanti et al. 2022, https://arxiv.org/abs/2205.05198,
    # sbh(34 + 5as/h) with flash attention's O(s) attention memory dropping the 5as/h term).
    activations = tokens * shape.hidden_size * (2 * shape.layers + 34)
    parts = [MemoryPart(f"frozen weights ({precision}, {PRECISION_BYTES[precision]:g} B/param)",
                        params * PRECISION_BYTES[precision])]
    if qlora:
        parts.append(MemoryPart(f"NF4 quantization constants ({rules.int4_constant_bits_per_param:g} bits/param)",
                                params * rules.int4_constant_bits_per_param / 8))
    parts += [MemoryPart(f"rank-{rank} adapters ({adapters / 1e6:,.0f}M params at {per_adapter:g} B)",
                         adapters * per_adapter),
              MemoryPart(f"checkpointed activations ({tokens:,} tokens per device)", activations)]
    notes = () if own else (f"no model dimensions for a bare count: adapters and activations are sized on "
                            f"{shape.name}'s shape (adapters scaled to the count); name the model for its own",)
    return MemoryEstimate(tuple(parts), notes, adapters * rules.qlora_paged_bytes_per_param if qlora else 0.0)


def kv_bytes_per_value(workload: Workload, rules: SizingRules) -> float:
    return rules.kv_cache_bytes_per_value or max(PRECISION_BYTES[workload.precision], 1.0)


def _serving_memory(workload: Workload, rules: SizingRules, sequences: int) -> MemoryEstimate:
    weight_bytes = PRECISION_BYTES[workload.precision]
    weights = workload.params * weight_bytes
    architecture = workload.architecture
    parts = [MemoryPart(f"weights ({workload.precision}, {weight_bytes:g} B/param)", weights)]
    kv, notes = 0.0, ()
    if architecture is None:
        notes = ("KV cache not counted: a bare parameter count has no attention shape; name the model to count it",)
    else:
        kv = architecture.kv_cache_bytes(workload.context_tokens, sequences, kv_bytes_per_value(workload, rules))
        parts.append(MemoryPart(f"KV cache ({workload.context_tokens} tokens x {sequences} sequence(s))", kv))
    parts.append(MemoryPart(f"runtime overhead ({rules.inference_overhead:.0%})", (weights + kv) * rules.inference_overhead))
    return MemoryEstimate(tuple(parts), notes)


def serving_memory(workload: Workload, rules: SizingRules, sequences: int) -> MemoryEstimate:
    """The memory of ``workload`` served at ``sequences`` sequences at once (batch inference sizes its own)."""
    return _serving_memory(workload, rules, sequences)


def training_flops(workload: Workload, rules: SizingRules | None = None) -> float | None:
    """FLOPs of the whole job, or None for serving. The tokens are ``workload.job_tokens``.

    Training and fine-tuning: rules.flops_per_param_token (6) x params x tokens. LoRA: the frozen weights' forward
    and activation gradients (rules.lora_flops_per_param_token, 4) plus the adapters' full 6, per token. A mixture of
    experts counts the parameters a token passes through (``active_params``).
    """
    tokens = workload.job_tokens
    if tokens is None:
        return None
    rules = rules or SizingRules()
    architecture = workload.architecture
    params = architecture.active_params if architecture and architecture.active_params else workload.params
    if workload.task == "lora":
        return (rules.lora_flops_per_param_token * params + 6 * lora_adapter_params(workload)) * tokens
    return rules.flops_per_param_token * params * tokens
