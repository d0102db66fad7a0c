"""How much accelerator memory a workload needs, by explicit and configurable rules (pure Python, no aws_cdk).

A :class:`Workload` says what to run: the task, the model (a parameter count such as ``"70B"`` or a named
architecture from ``data/models.json``), the precision, and the limits the advisor must respect.
:func:`estimate_memory` turns it into bytes with :class:`SizingRules`:

- ``training`` (pre-training) and ``fine-tuning`` (full fine-tuning): 16 bytes per parameter (bf16 weights and
  gradients, fp32 master weights and two Adam moments), plus an activation allowance of 20%.
- ``lora``: the frozen weights at the precision's bytes per parameter (2 for bf16; int4 gives QLoRA), plus
  adapters of 2% of the parameters trained at 16 bytes each, plus the same 20% activation allowance.
- ``inference``: the weights at the precision's bytes per parameter (fp32 4, bf16/fp16 2, fp8/int8 1, int4 0.5),
  plus the KV cache when the architecture is known (2 x layers x KV heads x head size x context x sequences x
  bytes per value), plus 10% runtime overhead.

>>> estimate_memory(Workload(task="training", params="70B")).total_bytes
1344000000000.0
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import MappingProxyType
from typing import Any

from mlcdk.errors import ConfigurationError, close_matches, unknown_name
from mlcdk.presets.catalog import DATA_DIR
from mlcdk.presets.workloads import PURCHASE_OPTIONS as _PURCHASE_OPTIONS
from mlcdk.presets.workloads import TASKS, _EntryReader, _load_mapping

TRAINING_TASKS = ("training", "fine-tuning", "lora")
PRECISION_BYTES: Mapping[str, float] = MappingProxyType(
    {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5})
#: Full training keeps optimizer state in floating point; integer formats only store frozen or served weights.
FULL_TRAINING_PRECISIONS = ("fp32", "bf16", "fp16", "fp8")
ACCELERATOR_PREFERENCES = ("any", "trainium", "inferentia", "nvidia", "cpu")
#: Words accepted for an accelerator preference and what they mean: every GPU the stacks can deploy is NVIDIA.
ACCELERATOR_ALIASES: Mapping[str, str] = MappingProxyType({"gpu": "nvidia"})
#: How advice is ranked: by the whole job's cost (training tasks) or by hourly cost.
RANKINGS = ("job", "hourly")
#: What a workload may be priced at: every purchase option but "mixed", which the advisor does not price.
ADVISED_PURCHASE_OPTIONS = tuple(o for o in _PURCHASE_OPTIONS if o != "mixed")
DEFAULT_CONTEXT_TOKENS = 4096
DEFAULT_MAX_NODES = 64
#: Smaller counts are almost always a missing suffix ("7" meant as 7B).
MIN_PARAMS = 1e6
#: A quadrillion parameters: a thousand times the largest published dense models, so a larger count is a typo.
MAX_PARAMS = 1e15
#: A billion billion tokens: far beyond any training corpus.
MAX_TRAINING_TOKENS = 1e18
#: Bounds that keep the KV-cache arithmetic finite: ten million tokens per sequence, a million sequences.
MAX_CONTEXT_TOKENS = 10_000_000
MAX_SEQUENCES = 1_000_000
#: Share of each device's memory left free by default (runtime context, collective buffers, fragmentation).
DEFAULT_MEMORY_HEADROOM = 0.10
#: The most headroom that makes sense: beyond half of each device, the margin is the workload.
MAX_MEMORY_HEADROOM = 0.50
#: The reference job when no token count is given: 20 tokens per parameter, the compute-optimal ratio of
#: Hoffmann et al. 2022, "Training Compute-Optimal Large Language Models" (https://arxiv.org/abs/2203.15556).
REFERENCE_TOKENS_PER_PARAM = 20
GIB = 1024**3

_COUNT = re.compile(r"^([+-]?[0-9][0-9_]*(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?)\s*([kmbt]?)$", re.IGNORECASE)
_SUFFIX = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9, "t": 10**12}


def parse_count(value: Any, parameter: str, *, minimum: float = 1.0, maximum: float | None = None) -> float:
    """A positive count from a number or a string with an optional K, M, B or T suffix ("7B", "1.5T", "70e9").

    ConfigurationError names ``parameter`` and the value when it is unparseable, not positive, below ``minimum``
    or above ``maximum``.
    """
    usage = "use a number with an optional K, M, B or T suffix, e.g. 7B, 1.5T, 350M or 70e9"
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConfigurationError(f"{parameter} ({value!r}) is not a count; {usage}")
    if isinstance(value, str):
        match = _COUNT.match(value.strip())
        if match is None:
            raise ConfigurationError(f"{parameter} ({value!r}) is not a count; {usage}")
        try:
            number = float(Decimal(match[1].replace("_", "")) * _SUFFIX[match[2].lower()])
        except (InvalidOperation, OverflowError):
            raise ConfigurationError(f"{parameter} ({value!r}) is not a count; {usage}") from None
    else:
        number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ConfigurationError(f"{parameter} ({value!r}) must be a positive, finite count; {usage}")
    if number < minimum:
        raise ConfigurationError(f"{parameter} ({value!r}) is under the minimum of {minimum:,.0f}; "
                                 "did you forget a suffix, as in 7B?")
    if maximum is not None and number > maximum:
        bound = f"{maximum:.0e}".replace("e+", "e")
        raise ConfigurationError(f"{parameter} ({value!r}) is over the maximum of {bound}; "
                                 "use a number with an optional K, M, B or T suffix, e.g. 7B or 1.5T")
    return number


def _choice(parameter: str, value: Any, allowed: Iterable[str]) -> str:
    allowed = tuple(allowed)
    text = value.strip().lower() if isinstance(value, str) else value
    if text not in allowed:
        matches = close_matches(str(value), allowed)
        hint = f"; did you mean {' or '.join(repr(m) for m in matches)}?" if matches else ""
        raise ConfigurationError(f"{parameter} ({value!r}) must be one of {', '.join(allowed)}{hint}")
    return text


def _positive_int(parameter: str, value: Any, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or (maximum is not None and value > maximum):
        upto = f" and at most {maximum:,}" if maximum is not None else ""
        raise ConfigurationError(f"{parameter} ({value!r}) must be a whole number of at least 1{upto}")
    return value


def _positive_number(parameter: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigurationError(f"{parameter} ({value!r}) must be a number above 0")
    return float(value)


# --------------------------------------------------------------------------------------------
# Model architectures (data/models.json)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelArchitecture:
    """A well-known model's size and attention shape, from its published config."""

    name: str
    params: float
    layers: int
    hidden_size: int
    attention_heads: int
    kv_heads: int
    head_dim: int
    max_context_tokens: int
    source: str
    note: str
    active_params: float | None = None  #: mixture-of-experts: parameters a token passes through

    def kv_cache_bytes(self, context_tokens: int, sequences: int, bytes_per_value: float) -> float:
        """Keys and values of every layer for ``sequences`` sequences of ``context_tokens`` tokens."""
        return 2 * self.layers * self.kv_heads * self.head_dim * context_tokens * sequences * bytes_per_value


_MODEL_FIELDS = {"params": (int, float), "active_params": (int, float), "layers": int, "hidden_size": int,
                 "attention_heads": int, "kv_heads": int, "head_dim": int, "max_context_tokens": int,
                 "source": str, "note": str}


def load_models(path: Path) -> dict[str, ModelArchitecture]:
    """Read a models file; an error names the file, the entry and the field."""
    models = {}
    for name, entry in _load_mapping(path, "models").items():
        read = _EntryReader(path, f"models[{name!r}]", entry, _MODEL_FIELDS)
        values = {key: read(key, kind, None if key == "active_params" else ...) for key, kind in _MODEL_FIELDS.items()}
        for key, value in values.items():
            if key not in ("source", "note") and value is not None and value <= 0:
                raise read.error(key, f"is {value!r}; it must be positive")
        if not values["source"].startswith("https://"):
            raise read.error("source", f"is {values['source']!r}; it must be an https:// URL")
        if values["kv_heads"] > values["attention_heads"]:
            raise read.error("kv_heads", f"({values['kv_heads']}) exceeds attention_heads ({values['attention_heads']})")
        models[name] = ModelArchitecture(name=name, **values)
    return models


@functools.lru_cache(maxsize=1)
def models() -> Mapping[str, ModelArchitecture]:
    """The bundled architectures of ``data/models.json``, loaded once."""
    return MappingProxyType(load_models(DATA_DIR / "models.json"))


def get_model(name: str, parameter: str = "model") -> ModelArchitecture:
    """The architecture called ``name`` (ConfigurationError with close matches when unknown)."""
    table = models()
    if not isinstance(name, str) or name.strip().lower() not in table:
        raise unknown_name("model", name, table, parameter)
    return table[name.strip().lower()]


# --------------------------------------------------------------------------------------------
# Rules and workloads
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SizingRules:
    """The assumptions behind every estimate. Each default is the behavior when it is left out."""

    #: Full training: bf16 weights (2) and gradients (2), fp32 master weights (4) and Adam moments (4 + 4).
    training_bytes_per_param: float = 16.0
    #: Activations, as a fraction of the training state (a fixed allowance; real use depends on batch and sequence).
    activation_allowance: float = 0.20
    #: LoRA adapters' size as a fraction of the model's parameters (rank 16-64 on every projection is 0.5-3%).
    lora_adapter_fraction: float = 0.02
    #: LoRA adapters are trained like full training: 16 bytes per adapter parameter.
    lora_adapter_bytes_per_param: float = 16.0
    #: Inference runtime overhead (CUDA/Neuron context, buffers, fragmentation) on weights plus KV cache.
    inference_overhead: float = 0.10
    #: Bytes per KV cache value. Default: the precision's bytes, but at least 1 (caches are not kept in 4 bits).
    kv_cache_bytes_per_value: float | None = None
    #: Training FLOPs per parameter per token (forward 2 + backward 4). Kept at 6 for LoRA too, a slight overestimate.
    flops_per_param_token: float = 6.0
    #: Share of the dense peak at the job's precision that a real job sustains (model FLOPs utilization). 40% is
    #: inside the 38-43% bf16 MFU that Meta reports for Llama 3 405B on H100s (Llama 3 paper, Table 4,
    #: https://arxiv.org/abs/2407.21783), and under PaLM's 46% (https://arxiv.org/abs/2204.02311).
    utilization: float = 0.40

    def __post_init__(self) -> None:
        for name in ("training_bytes_per_param", "lora_adapter_bytes_per_param", "flops_per_param_token"):
            _positive_number(name, getattr(self, name))
        for name in ("activation_allowance", "inference_overhead"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 10:
                raise ConfigurationError(f"{name} ({value!r}) must be a fraction from 0 to 10 (0.2 means 20%)")
        for name in ("lora_adapter_fraction", "utilization"):
            value = _positive_number(name, getattr(self, name))
            if value > 1:
                raise ConfigurationError(f"{name} ({value!r}) must be a fraction above 0 and at most 1")
        if self.kv_cache_bytes_per_value is not None:
            _positive_number("kv_cache_bytes_per_value", self.kv_cache_bytes_per_value)


@dataclass(frozen=True, kw_only=True)
class Workload:
    """What to run, and the limits of the answer. Checked on construction (ConfigurationError).

    After construction the fields are normalized: ``params`` is a float (taken from the architecture when
    ``model`` is given), ``training_tokens`` a float or None, ``regions`` a tuple, names lower-case.
    """

    task: str  #: training, fine-tuning (full), lora or inference
    params: float | int | str | None = None  #: "7B", "70b", "1.5T", 70e9. Default: the model's count.
    model: str | None = None  #: a name from data/models.json, e.g. "llama-3-70b". Needed when params is not given.
    precision: str = "bf16"  #: fp32, bf16, fp16, fp8, int8 or int4
    #: Inference only: tokens per sequence in the KV cache. Default: 4096, or the model's maximum if smaller.
    context_tokens: int | None = None
    sequences: int | None = None  #: Inference only: sequences served at once. Default: 1.
    #: Training tasks: "1T", "300B". Default: a reference job of 20 tokens per parameter (the ranking is the same).
    training_tokens: float | int | str | None = None
    target_tokens_per_second: float | None = None  #: Inference: recorded; see the advisor on throughput figures.
    #: region names, or one comma-separated string; "all" (or an empty tuple) means every region. Default: every region.
    regions: tuple[str, ...] | str = ()
    purchase_option: str = "on-demand"  #: on-demand or spot
    accelerator: str = "any"  #: any (every GPU and Neuron type), trainium, inferentia, nvidia (or gpu) or cpu
    max_nodes: int = DEFAULT_MAX_NODES  #: the most nodes one configuration may use
    max_price_per_hour_usd: float | None = None  #: Default: no price cap.
    #: Share of each device's memory kept free, from 0 to 0.5: a configuration fits when its need per device is at
    #: most (1 - memory_headroom) of the device's memory. Default: 0.10.
    memory_headroom: float = DEFAULT_MEMORY_HEADROOM
    #: "job" (the whole job's cost) or "hourly". Default: job for training tasks, hourly for inference.
    rank_by: str | None = None
    #: Training tasks: keep only configurations that finish the job in this many days. Default: no limit.
    max_days: float | None = None

    def __post_init__(self) -> None:
        put = functools.partial(object.__setattr__, self)
        task = _choice("task", self.task, TASKS)
        precision = _choice("precision", self.precision, PRECISION_BYTES)
        if task in ("training", "fine-tuning") and precision not in FULL_TRAINING_PRECISIONS:
            raise ConfigurationError(
                f"precision ({self.precision!r}) cannot hold optimizer state for {task}; allowed: "
                f"{', '.join(FULL_TRAINING_PRECISIONS)} (integer formats suit lora and inference)")
        if self.model is None and self.params is None:
            raise ConfigurationError("params or model is required: a parameter count such as '7B', or a model "
                                     f"name such as 'llama-3-8b' (known: {', '.join(models())})")
        architecture = get_model(self.model) if self.model is not None else None
        given = None if self.params is None else parse_count(self.params, "params", minimum=MIN_PARAMS,
                                                             maximum=MAX_PARAMS)
        if architecture is not None and given is not None and given != architecture.params:
            raise ConfigurationError(f"params ({self.params!r}) contradicts model {architecture.name!r}, which has "
                                     f"{architecture.params:g}; give one of them")
        params = architecture.params if architecture is not None else given
        inference = task == "inference"
        for name in ("context_tokens", "sequences", "target_tokens_per_second"):  # checked before the tokens
            if not inference and getattr(self, name) is not None:
                raise ConfigurationError(f"{name} ({getattr(self, name)!r}) applies to inference only; task is {task!r}")
        for name in ("training_tokens", "max_days"):
            if inference and getattr(self, name) is not None:
                raise ConfigurationError(f"{name} ({getattr(self, name)!r}) applies to training tasks; "
                                         "task is 'inference'")
        context = sequences = None
        if inference:
            limit = architecture.max_context_tokens if architecture else None
            context = _positive_int("context_tokens", self.context_tokens, MAX_CONTEXT_TOKENS) if (
                self.context_tokens is not None) else (
                min(DEFAULT_CONTEXT_TOKENS, limit or DEFAULT_CONTEXT_TOKENS))
            if limit is not None and context > limit:
                raise ConfigurationError(f"context_tokens ({context}) exceeds {architecture.name}'s maximum "
                                         f"context of {limit} tokens")
            sequences = _positive_int("sequences", self.sequences, MAX_SEQUENCES) if self.sequences is not None else 1
        tokens = None if self.training_tokens is None else parse_count(self.training_tokens, "training_tokens",
                                                                       maximum=MAX_TRAINING_TOKENS)
        if self.target_tokens_per_second is not None:
            _positive_number("target_tokens_per_second", self.target_tokens_per_second)
        regions = _regions(self.regions)
        accelerator = self.accelerator
        if isinstance(accelerator, str) and accelerator.strip().lower() in ACCELERATOR_ALIASES:
            accelerator = ACCELERATOR_ALIASES[accelerator.strip().lower()]
        accelerator = _choice("accelerator", accelerator, ACCELERATOR_PREFERENCES)
        if accelerator == "inferentia" and task != "inference":
            raise ConfigurationError(f"accelerator ('inferentia') cannot run {task}: Inferentia is inference-only; "
                                     "use trainium, nvidia or any")
        max_nodes = _positive_int("max_nodes", self.max_nodes)
        max_price = None if self.max_price_per_hour_usd is None else _positive_number(
            "max_price_per_hour_usd", self.max_price_per_hour_usd)
        headroom = self.memory_headroom
        if isinstance(headroom, bool) or not isinstance(headroom, (int, float)) or not math.isfinite(headroom) or \
                not 0 <= headroom <= MAX_MEMORY_HEADROOM:
            raise ConfigurationError(f"memory_headroom ({headroom!r}) must be a fraction from 0 to "
                                     f"{MAX_MEMORY_HEADROOM:g} (0.1 keeps 10% of each device's memory free)")
        rank_by = ("job" if task in TRAINING_TASKS else "hourly") if self.rank_by is None else _choice(
            "rank_by", self.rank_by, RANKINGS)
        if rank_by == "job" and inference:
            raise ConfigurationError("rank_by ('job') ranks training tasks by the cost of their job; inference has "
                                     "no job: use hourly")
        max_days = None if self.max_days is None else _positive_number("max_days", self.max_days)
        put("task", task)
        put("precision", precision)
        put("model", architecture.name if architecture else None)
        put("params", params)
        put("context_tokens", context)
        put("sequences", sequences)
        put("training_tokens", tokens)
        put("regions", regions)
        put("purchase_option", _choice("purchase_option", self.purchase_option, ADVISED_PURCHASE_OPTIONS))
        put("accelerator", accelerator)
        put("max_nodes", max_nodes)
        put("max_price_per_hour_usd", max_price)
        put("memory_headroom", float(headroom))
        put("rank_by", rank_by)
        put("max_days", max_days)

    @property
    def architecture(self) -> ModelArchitecture | None:
        return None if self.model is None else models()[self.model]

    @property
    def trains(self) -> bool:
        """True for training, fine-tuning and lora (which may span nodes)."""
        return self.task in TRAINING_TASKS

    @property
    def job_tokens(self) -> float | None:
        """Training tasks: the tokens of the job that is costed, ``training_tokens`` or the reference job of
        REFERENCE_TOKENS_PER_PARAM tokens per parameter. None for inference."""
        if not self.trains:
            return None
        return self.training_tokens if self.training_tokens is not None else REFERENCE_TOKENS_PER_PARAM * self.params

    @property
    def weight_bytes(self) -> float:
        """The weights at the workload's precision: what a node's host memory holds while loading them."""
        return self.params * PRECISION_BYTES[self.precision]

    def describe(self) -> str:
        """A short label, e.g. "training 70B bf16" or "inference llama-3-8b int4"."""
        scale = next((unit, size) for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6)) if self.params >= size)
        size = self.model or f"{self.params / scale[1]:.4g}{scale[0]}"
        return f"{self.task} {size} {self.precision}"


def _regions(value: Any) -> tuple[str, ...]:
    """Region names from a tuple or a comma-separated string; "all" alone means every region (an empty tuple)."""
    usage = "must be region names such as us-east-1, a comma-separated list of them, or all"
    parts = value.split(",") if isinstance(value, str) else value
    if isinstance(parts, (str, bytes)) or not isinstance(parts, Iterable):
        raise ConfigurationError(f"regions ({value!r}) {usage}")
    parts = tuple(parts)
    if not all(isinstance(r, str) and r.strip() for r in parts) or (isinstance(value, str) and not parts):
        raise ConfigurationError(f"regions ({value!r}) {usage}; a blank name is not a region")
    names = tuple(dict.fromkeys(r.strip() for r in parts))
    if any(name.lower() == "all" for name in names):
        if len(names) > 1:
            raise ConfigurationError(f"regions ({value!r}): 'all' already means every region; give it alone")
        return ()
    return names


# --------------------------------------------------------------------------------------------
# Estimates
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemoryPart:
    label: str
    bytes: float


@dataclass(frozen=True)
class MemoryEstimate:
    """The memory a workload needs, part by part, with notes on what was not counted."""

    parts: tuple[MemoryPart, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def total_bytes(self) -> float:
        return sum(part.bytes for part in self.parts)

    @property
    def total_gib(self) -> float:
        return self.total_bytes / GIB

    def summary(self) -> str:
        """One line: the total and its parts, in GiB."""
        parts = " + ".join(f"{p.bytes / GIB:,.1f} {p.label}" for p in self.parts)
        return f"{self.total_gib:,.1f} GiB = {parts}"


def estimate_memory(workload: Workload, rules: SizingRules | None = None) -> MemoryEstimate:
    """The accelerator memory ``workload`` needs under ``rules`` (default: :class:`SizingRules` defaults)."""
    rules = rules or SizingRules()
    params, precision = workload.params, workload.precision
    weight_bytes = PRECISION_BYTES[precision]
    allowance = f"activations ({rules.activation_allowance:.0%})"
    if workload.task in ("training", "fine-tuning"):
        state = params * rules.training_bytes_per_param
        return MemoryEstimate((
            MemoryPart(f"weights, gradients and Adam state ({rules.training_bytes_per_param:g} B/param)", state),
            MemoryPart(allowance, state * rules.activation_allowance)))
    if workload.task == "lora":
        frozen = params * weight_bytes
        adapters = params * rules.lora_adapter_fraction * rules.lora_adapter_bytes_per_param
        return MemoryEstimate((
            MemoryPart(f"frozen weights ({precision}, {weight_bytes:g} B/param)", frozen),
            MemoryPart(f"adapters and their Adam state ({rules.lora_adapter_fraction:.1%} of params at "
                       f"{rules.lora_adapter_bytes_per_param:g} B)", adapters),
            MemoryPart(allowance, (frozen + adapters) * rules.activation_allowance)))
    weights = params * weight_bytes
    architecture, notes = workload.architecture, ()
    kv = 0.0
    if architecture is None:
        notes = ("KV cache not counted: a bare parameter count has no attention shape; name the model to count it",)
    else:
        per_value = rules.kv_cache_bytes_per_value or max(weight_bytes, 1.0)
        kv = architecture.kv_cache_bytes(workload.context_tokens, workload.sequences, per_value)
    parts = [MemoryPart(f"weights ({precision}, {weight_bytes:g} B/param)", weights)]
    if architecture is not None:
        parts.append(MemoryPart(f"KV cache ({workload.context_tokens} tokens x {workload.sequences} sequence(s))", kv))
    parts.append(MemoryPart(f"runtime overhead ({rules.inference_overhead:.0%})", (weights + kv) * rules.inference_overhead))
    return MemoryEstimate(tuple(parts), notes)


def training_flops(workload: Workload, rules: SizingRules | None = None) -> float | None:
    """FLOPs of the whole job (rules.flops_per_param_token x params x tokens), or None for inference.

    The tokens are ``workload.job_tokens``: the given count, or the reference job of 20 tokens per parameter.
    Mixture-of-experts models count the parameters a token passes through (``active_params``).
    """
    tokens = workload.job_tokens
    if tokens is None:
        return None
    rules = rules or SizingRules()
    architecture = workload.architecture
    params = architecture.active_params if architecture and architecture.active_params else workload.params
    return rules.flops_per_param_token * params * tokens
