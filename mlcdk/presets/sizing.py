"""How much memory and how much work a workload needs, by explicit and configurable rules (pure Python, no aws_cdk).

A :class:`Workload` says what to run: the task, the model (a parameter count such as ``"70B"``, a known name, a
Hugging Face ID or a ``config.json``, see :mod:`mlcdk.presets.models`), the precision, and the limits the advisor
must respect. :func:`mlcdk.advice.estimates.estimate_memory` turns it into bytes with :class:`SizingRules`:

- ``training`` (pre-training) and ``fine-tuning`` (full fine-tuning): 16 bytes per parameter (bf16 weights and
  gradients, fp32 master weights and two Adam moments), plus an activation allowance of 20%.
- ``lora``: the frozen weights at the precision's bytes per parameter (int4 is QLoRA: NF4 plus its double-quantized
  constants), adapters of ``lora_rank`` on every linear layer sized from the model's dimensions, and activations
  with gradient checkpointing. QLoRA's paged optimizer keeps the adapters' Adam moments in host memory.
- ``inference`` and ``batch-inference``: the weights at the precision's bytes per parameter (fp32 4, bf16/fp16 2,
  fp8/int8 1, int4 0.5), plus the KV cache for ``concurrency`` sequences of ``context_tokens`` when the architecture
  is known, plus 10% runtime overhead.

>>> from mlcdk.advice.estimates import estimate_memory
>>> estimate_memory(Workload(task="training", params="70B")).total_bytes
1344000000000.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from mlcdk.errors import ConfigurationError
from mlcdk.presets import checks
from mlcdk.presets.checks import parse_count
from mlcdk.presets.models import ModelArchitecture, get_model, load_models, models
from mlcdk.presets.workloads import PURCHASE_OPTIONS as _PURCHASE_OPTIONS

__all__ = ["ModelArchitecture", "SizingRules", "Workload", "get_model", "load_models", "models", "parse_count"]

#: Every task the advisor sizes: training = pre-training; fine-tuning = full fine-tuning; lora = low-rank adapters
#: on frozen weights (int4 is QLoRA); inference = a serving replica; batch-inference = offline generation, ranked by
#: throughput per dollar.
TASKS = ("training", "fine-tuning", "lora", "inference", "batch-inference")
TRAINING_TASKS = ("training", "fine-tuning", "lora")
SERVING_TASKS = ("inference", "batch-inference")
PRECISION_BYTES: Mapping[str, float] = MappingProxyType(
    {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5})
#: Full training keeps optimizer state in floating point; integer formats only store frozen or served weights.
FULL_TRAINING_PRECISIONS = ("fp32", "bf16", "fp16", "fp8")
ACCELERATOR_PREFERENCES = ("any", "trainium", "inferentia", "nvidia", "cpu")
#: Words accepted for an accelerator preference and what they mean: every GPU the stacks can deploy is NVIDIA.
ACCELERATOR_ALIASES: Mapping[str, str] = MappingProxyType({"gpu": "nvidia"})
#: How advice is ranked: by the whole job's cost (training tasks), by the cost per million output tokens (serving
#: tasks), or by hourly cost.
RANKINGS = ("job", "tokens", "hourly")
#: What a workload may be priced at: every purchase option but "mixed", which the advisor does not price.
ADVISED_PURCHASE_OPTIONS = tuple(o for o in _PURCHASE_OPTIONS if o != "mixed")
DEFAULT_CONTEXT_TOKENS = 4096
#: A serving request when none is described: vLLM's serving benchmark's random dataset defaults, 1,024 tokens in
#: and 128 out (benchmarks/benchmark_serving.py, --random-input-len and --random-output-len,
#: https://github.com/vllm-project/vllm/blob/main/benchmarks/README.md).
DEFAULT_INPUT_TOKENS = 1024
DEFAULT_OUTPUT_TOKENS = 128
#: Batch inference runs as many sequences as memory holds, up to vLLM's default scheduler limit of 256 sequences per
#: step (--max-num-seqs, https://docs.vllm.ai/en/v0.6.3.post1/models/engine_args.html).
MAX_BATCH_SEQUENCES = 256
DEFAULT_MAX_NODES = 64
#: LoRA rank when none is given: between PEFT's default of 8 (LoraConfig.r) and QLoRA's 64.
DEFAULT_LORA_RANK = 16
MAX_LORA_RANK = 65536
#: The fine-tuning job when no token count is given: Stanford Alpaca's recipe, 52,002 instruction examples of at most
#: 512 tokens for 3 epochs (https://github.com/tatsu-lab/stanford_alpaca, "Fine-tuning"; the dataset card,
#: https://huggingface.co/datasets/tatsu-lab/alpaca, has 52,002 rows): 79.9M tokens, an upper bound for that set.
FINE_TUNING_REFERENCE_TOKENS = 52_002 * 512 * 3
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


@dataclass(frozen=True)
class SizingRules:
    """The assumptions behind every estimate. Each default is the behavior when it is left out."""

    #: Full training: bf16 weights (2) and gradients (2), fp32 master weights (4) and Adam moments (4 + 4).
    training_bytes_per_param: float = 16.0
    #: Full training's activations, as a fraction of the training state (a fixed allowance).
    activation_allowance: float = 0.20
    #: LoRA adapters as PEFT trains them: fp32 weights (4) and gradients (4) and Adam moments (4 + 4).
    lora_adapter_bytes_per_param: float = 16.0
    #: QLoRA adapters on the device: bf16 weights and gradients (artidoro/qlora's qlora.py casts LoRA layers to bf16).
    qlora_adapter_bytes_per_param: float = 4.0
    #: QLoRA's paged 32-bit AdamW keeps two fp32 moments per adapter parameter in host memory when the device is full
    #: (QLoRA, "Paged Optimizers", https://arxiv.org/abs/2305.14314; qlora.py's default optim paged_adamw_32bit).
    qlora_paged_bytes_per_param: float = 8.0
    #: NF4 with double quantization stores 0.127 bits of constants per parameter (QLoRA, section 3).
    int4_constant_bits_per_param: float = 0.127
    #: Tokens one device processes per micro-batch (one 4,096-token sequence, Llama 2's context): LoRA activations
    #: and FSDP's per-micro-batch communication are sized for it.
    tokens_per_device_step: int = 4096
    #: Inference runtime overhead (CUDA/Neuron context, buffers, fragmentation) on weights plus KV cache.
    inference_overhead: float = 0.10
    #: Bytes per KV cache value. Default: the precision's bytes, but at least 1 (caches are not kept in 4 bits).
    kv_cache_bytes_per_value: float | None = None
    #: Full training FLOPs per parameter per token: forward 2 + backward 4 (Kaplan et al. 2020).
    flops_per_param_token: float = 6.0
    #: LoRA FLOPs per frozen parameter per token: forward 2 + the activation gradients 2; the frozen weights' own
    #: gradients (the other 2) are never computed. The adapters add 6 per adapter parameter.
    lora_flops_per_param_token: float = 4.0
    #: Model FLOPs utilization for every configuration, instead of the sourced table by accelerator and model size
    #: (data/utilization.json). Default: the table.
    utilization: float | None = None
    #: Share of the compute time that communication can hide behind (FSDP prefetches the next layer's parameters
    #: while the current one computes, Zhao et al. 2023, https://arxiv.org/abs/2304.11277): 1 overlaps fully, 0 not
    #: at all (compute plus communication).
    communication_overlap: float = 1.0

    def __post_init__(self) -> None:
        for name in ("training_bytes_per_param", "lora_adapter_bytes_per_param", "qlora_adapter_bytes_per_param",
                     "flops_per_param_token", "lora_flops_per_param_token"):
            checks.positive_number(name, getattr(self, name))
        for name in ("activation_allowance", "inference_overhead"):
            checks.fraction(name, getattr(self, name), high=10)
        for name in ("qlora_paged_bytes_per_param", "int4_constant_bits_per_param"):
            checks.fraction(name, getattr(self, name), high=64)
        checks.positive_int("tokens_per_device_step", self.tokens_per_device_step, MAX_CONTEXT_TOKENS)
        checks.fraction("communication_overlap", self.communication_overlap)
        if self.utilization is not None:
            checks.fraction("utilization", self.utilization, zero=False)
        if self.kv_cache_bytes_per_value is not None:
            checks.positive_number("kv_cache_bytes_per_value", self.kv_cache_bytes_per_value)


@dataclass(frozen=True, kw_only=True)
class Workload:
    """What to run, and the limits of the answer. Checked on construction (ConfigurationError).

    After construction the fields are normalized: ``params`` is a float (taken from the architecture when ``model``
    is given), ``model`` the known name (or the ID or path given), counts are floats or None, ``regions`` a tuple.
    """

    task: str  #: training, fine-tuning (full), lora, inference or batch-inference
    params: float | int | str | None = None  #: "7B", "70b", "1.5T", 70e9. Default: the model's count.
    #: A name from data/models.json ("llama-3-70b"), a Hugging Face ID ("meta-llama/Llama-3.1-8B-Instruct") or a
    #: config.json path. Needed when params is not given.
    model: str | None = None
    precision: str = "bf16"  #: fp32, bf16, fp16, fp8, int8 or int4
    #: Serving: tokens per sequence the KV cache holds. Default: input + output tokens when given, else 4,096 (or the
    #: model's maximum if smaller).
    context_tokens: int | None = None
    sequences: int | None = None  #: Serving: the older name of concurrency.
    #: Serving: sequences served at once (the KV cache holds them all). Default: 1; batch-inference: as many as fit,
    #: up to 256.
    concurrency: int | None = None
    input_tokens: int | None = None  #: Serving: prompt tokens per request. Default: 1,024.
    output_tokens: int | None = None  #: Serving: generated tokens per request. Default: 128.
    #: Training tasks: "1T", "300B". Default: training 20 tokens per parameter; fine-tuning and lora 79.9M (Alpaca).
    training_tokens: float | int | str | None = None
    lora_rank: int | None = None  #: lora: adapter rank on every linear layer. Default: 16.
    #: Serving: keep configurations that generate at least this many output tokens per second. Default: no floor.
    target_tokens_per_second: float | None = None
    #: region names, or one comma-separated string; "all" (or an empty tuple) means every region. Default: every region.
    regions: tuple[str, ...] | str = ()
    purchase_option: str = "on-demand"  #: on-demand or spot
    accelerator: str = "any"  #: any (every GPU and Neuron type), trainium, inferentia, nvidia (or gpu) or cpu
    max_nodes: int = DEFAULT_MAX_NODES  #: the most nodes one configuration may use
    #: The account's vCPU quota for the type's family (Service Quotas; `mlcdk preflight` reads it): at most
    #: quota // vCPUs per node nodes. Default: not known, no limit.
    vcpu_quota: int | None = None
    max_price_per_hour_usd: float | None = None  #: Default: no price cap.
    max_cost_usd: float | None = None  #: Training tasks: the most the whole job may cost. Default: no budget.
    #: Share of each device's memory kept free, from 0 to 0.5. Default: 0.10.
    memory_headroom: float = DEFAULT_MEMORY_HEADROOM
    #: "job", "tokens" or "hourly". Default: job for training tasks, tokens for serving.
    rank_by: str | None = None
    #: Training tasks: finish the job in this many days, adding nodes up to max_nodes. Default: no deadline.
    max_days: float | None = None
    _architecture: ModelArchitecture | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        task = checks.choice("task", self.task, TASKS)
        object.__setattr__(self, "task", task)
        _check_precision(self)
        _check_model(self)
        checks.only_for(self, ("context_tokens", "sequences", "concurrency", "input_tokens", "output_tokens",
                               "target_tokens_per_second"), task in SERVING_TASKS, "serving tasks only")
        checks.only_for(self, ("training_tokens", "max_days", "max_cost_usd"), task in TRAINING_TASKS,
                        "training tasks")
        checks.only_for(self, ("lora_rank",), task == "lora", "lora")
        _check_serving(self)
        _check_limits(self)

    @property
    def architecture(self) -> ModelArchitecture | None:
        return self._architecture

    @property
    def trains(self) -> bool:
        """True for training, fine-tuning and lora (which may span nodes)."""
        return self.task in TRAINING_TASKS

    @property
    def serves(self) -> bool:
        """True for inference and batch-inference."""
        return self.task in SERVING_TASKS

    @property
    def job_tokens(self) -> float | None:
        """Training tasks: the tokens of the job that is costed: ``training_tokens``, or the reference job (20 tokens
        per parameter for training; Alpaca's 79.9M tokens for fine-tuning and lora). None for serving."""
        if not self.trains:
            return None
        if self.training_tokens is not None:
            return self.training_tokens
        return REFERENCE_TOKENS_PER_PARAM * self.params if self.task == "training" else float(
            FINE_TUNING_REFERENCE_TOKENS)

    @property
    def weight_bytes(self) -> float:
        """The weights at the workload's precision: what a node's host memory holds while loading them."""
        return self.params * PRECISION_BYTES[self.precision]

    def describe(self) -> str:
        """A short label, e.g. "training 70B bf16" or "inference llama-3-8b int4"."""
        scale = next((unit, size) for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6)) if self.params >= size)
        size = self.model or f"{self.params / scale[1]:.4g}{scale[0]}"
        return f"{self.task} {size} {self.precision}"


def _put(workload: Workload, **values: Any) -> None:
    for name, value in values.items():
        object.__setattr__(workload, name, value)


def _check_precision(workload: Workload) -> None:
    precision = checks.choice("precision", workload.precision, PRECISION_BYTES)
    if workload.task in ("training", "fine-tuning") and precision not in FULL_TRAINING_PRECISIONS:
        raise ConfigurationError(
            f"precision ({workload.precision!r}) cannot hold optimizer state for {workload.task}; allowed: "
            f"{', '.join(FULL_TRAINING_PRECISIONS)} (integer formats suit lora and inference)")
    _put(workload, precision=precision)


def _check_model(workload: Workload) -> None:
    if workload.model is None and workload.params is None:
        raise ConfigurationError("params or model is required: a parameter count such as '7B', a model name such as "
                                 f"'llama-3-8b' (known: {', '.join(models())}), a Hugging Face ID or a config.json path")
    architecture = get_model(workload.model) if workload.model is not None else None
    given = None if workload.params is None else parse_count(workload.params, "params", minimum=MIN_PARAMS,
                                                             maximum=MAX_PARAMS)
    known = architecture is not None and architecture.name in models()
    if known and given is not None and given != architecture.params:
        raise ConfigurationError(f"params ({workload.params!r}) contradicts model {architecture.name!r}, which has "
                                 f"{architecture.params:g}; give one of them")
    if architecture is not None and not known:
        checks.parse_count(architecture.params, "params", minimum=MIN_PARAMS, maximum=MAX_PARAMS)
    params = given if given is not None else architecture.params
    _put(workload, model=architecture.name if architecture else None, params=params, _architecture=architecture)


def _check_serving(workload: Workload) -> None:
    if not workload.serves:
        return
    concurrency = workload.concurrency
    if workload.sequences is not None:
        checks.positive_int("sequences", workload.sequences, MAX_SEQUENCES)
        if concurrency is not None and concurrency != workload.sequences:
            raise ConfigurationError(f"sequences ({workload.sequences}) and concurrency ({concurrency}) name the same "
                                     "thing; give one of them")
        concurrency = workload.sequences
    if concurrency is not None:
        checks.positive_int("concurrency", concurrency, MAX_SEQUENCES)
    elif workload.task == "inference":
        concurrency = 1
    limit = workload.architecture.max_context_tokens if workload.architecture else None
    given = {n: checks.positive_int(n, getattr(workload, n), MAX_CONTEXT_TOKENS)
             for n in ("context_tokens", "input_tokens", "output_tokens") if getattr(workload, n) is not None}
    output = given.get("output_tokens", DEFAULT_OUTPUT_TOKENS)
    described = "input_tokens" in given or "output_tokens" in given
    context = given.get("context_tokens") or (given.get("input_tokens", DEFAULT_INPUT_TOKENS) + output if described
                                               else min(DEFAULT_CONTEXT_TOKENS, limit or DEFAULT_CONTEXT_TOKENS))
    if limit is not None and context > limit:
        raise ConfigurationError(f"context_tokens ({context}) exceeds {workload.architecture.name}'s maximum context "
                                 f"of {limit} tokens")
    default_input = max(1, min(DEFAULT_INPUT_TOKENS, context - output))
    request = given.get("input_tokens", default_input) + output
    if request > context:
        raise ConfigurationError(f"input_tokens + output_tokens ({request}) exceed context_tokens ({context}): the KV "
                                 "cache must hold a whole request")
    if workload.target_tokens_per_second is not None:
        checks.positive_number("target_tokens_per_second", workload.target_tokens_per_second)
    _put(workload, context_tokens=context, concurrency=concurrency, sequences=concurrency,
         input_tokens=given.get("input_tokens", default_input), output_tokens=output)


def _check_limits(workload: Workload) -> None:
    task = workload.task
    tokens = None if workload.training_tokens is None else parse_count(workload.training_tokens, "training_tokens",
                                                                       maximum=MAX_TRAINING_TOKENS)
    accelerator = workload.accelerator
    if isinstance(accelerator, str) and accelerator.strip().lower() in ACCELERATOR_ALIASES:
        accelerator = ACCELERATOR_ALIASES[accelerator.strip().lower()]
    accelerator = checks.choice("accelerator", accelerator, ACCELERATOR_PREFERENCES)
    if accelerator == "inferentia" and task in TRAINING_TASKS:
        raise ConfigurationError(f"accelerator ('inferentia') cannot run {task}: Inferentia is inference-only; "
                                 "use trainium, nvidia or any")
    headroom = workload.memory_headroom
    if isinstance(headroom, bool) or not isinstance(headroom, (int, float)) or not math.isfinite(headroom) or \
            not 0 <= headroom <= MAX_MEMORY_HEADROOM:
        raise ConfigurationError(f"memory_headroom ({headroom!r}) must be a fraction from 0 to "
                                 f"{MAX_MEMORY_HEADROOM:g} (0.1 keeps 10% of each device's memory free)")
    rank_by = ("job" if task in TRAINING_TASKS else "tokens") if workload.rank_by is None else checks.choice(
        "rank_by", workload.rank_by, RANKINGS)
    if rank_by == "job" and task not in TRAINING_TASKS:
        raise ConfigurationError(f"rank_by ('job') ranks training tasks by the cost of their job; {task} has no job: "
                                 "use tokens or hourly")
    if rank_by == "tokens" and task not in SERVING_TASKS:
        raise ConfigurationError(f"rank_by ('tokens') ranks serving by the cost per million output tokens; {task} "
                                 "generates none: use job or hourly")
    optional = {name: None if getattr(workload, name) is None else checks.positive_number(name, getattr(workload, name))
                for name in ("max_price_per_hour_usd", "max_cost_usd", "max_days")}
    _put(workload, training_tokens=tokens, regions=checks.regions(workload.regions), accelerator=accelerator,
         purchase_option=checks.choice("purchase_option", workload.purchase_option, ADVISED_PURCHASE_OPTIONS),
         max_nodes=checks.positive_int("max_nodes", workload.max_nodes), memory_headroom=float(headroom),
         rank_by=rank_by, lora_rank=(checks.positive_int("lora_rank", workload.lora_rank, MAX_LORA_RANK)
                                     if workload.lora_rank is not None else
                                     DEFAULT_LORA_RANK if task == "lora" else None),
         vcpu_quota=None if workload.vcpu_quota is None else checks.positive_int("vcpu_quota", workload.vcpu_quota),
         **optional)

