"""What each accelerator computes in, and how fast: the sourced tables behind the advisor's precision and job rules.

Pure Python (no aws_cdk). Two hand-curated files in ``data/``, keyed by the catalog's accelerator name:

- ``precision.json``: for each model, fp32, fp16, bf16, fp8, int8 and int4 are ``native`` (the hardware computes
  in it), ``weight-only`` (weights are stored in it and expanded to 16 bits for the math), ``no`` (a source says
  it is absent) or ``unknown``. Unknown counts as unsupported: the advisor never guesses in the user's favour.
- ``accelerators.json``: dense peak TFLOPS per device and per precision, where a datasheet gives one.

>>> support("T4", "bf16")
'no'
>>> precision_problem("T4", "bf16", "training")
('no', 'fp16')
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from mlcdk.presets.catalog import DATA_DIR
from mlcdk.presets.sizing import FULL_TRAINING_PRECISIONS, PRECISION_BYTES
from mlcdk.presets.workloads import _EntryReader, _load_mapping

PRECISIONS = tuple(PRECISION_BYTES)
LEVELS = ("native", "weight-only", "no", "unknown")
#: The entry that stands for CPU-only instance types (no accelerator).
CPU = "CPU"
#: Tasks whose weights are frozen, so a weight-only format serves them.
FROZEN_WEIGHT_TASKS = ("lora", "inference")


@dataclass(frozen=True)
class PrecisionSupport:
    """One accelerator model's support level for each precision, with its sources."""

    name: str
    levels: Mapping[str, str]  #: precision -> one of LEVELS
    sources: tuple[str, ...]
    note: str
    training: bool = True  #: False: the accelerator is inference-only (the file's ``training`` field)
    training_source: str | None = None  #: where ``training: false`` comes from


@dataclass(frozen=True)
class AcceleratorThroughput:
    """One accelerator's dense peak TFLOPS per device, per precision, with its source."""

    name: str
    dense_tflops: Mapping[str, float]  #: precision -> dense peak; a missing precision has no sourced figure
    source: str
    note: str

    @property
    def dense_bf16_tflops(self) -> float | None:
        return self.dense_tflops.get("bf16")


def load_precision_support(path: Path) -> dict[str, PrecisionSupport]:
    """Read a precision file; an error names the file, the entry and the field."""
    table = {}
    fields = {**{p: str for p in PRECISIONS}, "sources": list, "note": str, "training": bool, "training_source": str}
    for name, entry in _load_mapping(path, "accelerators").items():
        read = _EntryReader(path, f"accelerators[{name!r}]", entry, fields)
        levels = {}
        for precision in PRECISIONS:
            level = read(precision, str)
            if level not in LEVELS:
                raise read.error(precision, f"is {level!r}; it must be one of {', '.join(LEVELS)}")
            levels[precision] = level
        sources = read("sources", list)
        if not sources or not all(isinstance(s, str) and s.startswith("https://") for s in sources):
            raise read.error("sources", "must be a non-empty list of https:// URLs")
        training, training_source = read("training", bool, True), read("training_source", str, None)
        if not training and not (training_source or "").startswith("https://"):
            raise read.error("training_source", "must be an https:// URL that says the accelerator cannot train")
        table[name] = PrecisionSupport(name, MappingProxyType(levels), tuple(sources), read("note", str),
                                       training, training_source)
    return table


def load_accelerator_throughputs(path: Path) -> dict[str, AcceleratorThroughput]:
    """Read an accelerators file; an error names the file, the entry and the field."""
    table = {}
    for name, entry in _load_mapping(path, "accelerators").items():
        read = _EntryReader(path, f"accelerators[{name!r}]", entry, {"dense_tflops": dict, "source": str, "note": str})
        figures = read("dense_tflops", dict)
        for precision, tflops in figures.items():
            if precision not in PRECISIONS:
                raise read.error("dense_tflops", f"has {precision!r}; precisions are {', '.join(PRECISIONS)}")
            if isinstance(tflops, bool) or not isinstance(tflops, (int, float)) or not tflops > 0:
                raise read.error("dense_tflops", f"[{precision!r}] is {tflops!r}; it must be a positive number")
        if not read("source", str).startswith("https://"):
            raise read.error("source", "must be an https:// URL")
        table[name] = AcceleratorThroughput(name, MappingProxyType({k: float(v) for k, v in figures.items()}),
                                            read("source", str), read("note", str))
    return table


@functools.lru_cache(maxsize=1)
def precision_support() -> Mapping[str, PrecisionSupport]:
    """The bundled ``data/precision.json``, loaded once."""
    return MappingProxyType(load_precision_support(DATA_DIR / "precision.json"))


@functools.lru_cache(maxsize=1)
def accelerator_throughputs() -> Mapping[str, AcceleratorThroughput]:
    """The bundled ``data/accelerators.json``, keyed by the catalog's accelerator name, loaded once."""
    return MappingProxyType(load_accelerator_throughputs(DATA_DIR / "accelerators.json"))


def support(accelerator: str | None, precision: str) -> str:
    """The support level of ``precision`` on ``accelerator`` (None: a CPU-only type); ``unknown`` when unlisted."""
    entry = precision_support().get(CPU if accelerator is None else accelerator)
    return "unknown" if entry is None else entry.levels[precision]


def training_problem(accelerator: str | None) -> str | None:
    """Why ``accelerator`` (a catalog accelerator name; None: CPU-only) cannot train at all, or None. The one
    home of the rule that Inferentia is inference-only: the advisor and TrainingCluster both ask here."""
    entry = precision_support().get(CPU if accelerator is None else accelerator)
    if entry is None or entry.training:
        return None
    return f"{accelerator} is inference-only (source: {entry.training_source})"


def runs(level: str, precision: str, task: str) -> bool:
    """Whether a support ``level`` lets ``task`` run in ``precision``: native always; weight-only formats only
    where the weights are frozen (inference, lora), and only for integer weights."""
    return level == "native" or (level == "weight-only" and task in FROZEN_WEIGHT_TASKS
                                 and precision in ("int8", "int4"))


def compute_precision(accelerator: str | None, precision: str, task: str) -> str | None:
    """The precision the math runs in: the workload's own, except lora on integer weights, whose adapters and
    expanded weights compute in bf16 (or fp16 where bf16 is not native). None when neither is native."""
    if task != "lora" or precision not in ("int8", "int4"):
        return precision
    return next((p for p in ("bf16", "fp16") if support(accelerator, p) == "native"), None)


def alternatives(precision: str, task: str) -> tuple[str, ...]:
    """Precisions ``task`` allows, best stand-in for ``precision`` first: the same bytes, then more bytes (it still
    fits where memory allows, and loses nothing), then fewer."""
    allowed = FULL_TRAINING_PRECISIONS if task in ("training", "fine-tuning") else PRECISIONS
    size = PRECISION_BYTES[precision]
    others = [p for p in allowed if p != precision]
    integer = precision.startswith("int")
    return tuple(sorted(others, key=lambda p: (0 if PRECISION_BYTES[p] == size else 1 if PRECISION_BYTES[p] > size else 2,
                                               abs(PRECISION_BYTES[p] - size), p.startswith("int") != integer,
                                               PRECISIONS.index(p))))


def precision_problem(accelerator: str | None, precision: str, task: str) -> tuple[str, str | None] | None:
    """None when ``accelerator`` runs ``task`` in ``precision``; else (its level, the best supported alternative
    or None)."""
    level = support(accelerator, precision)
    if runs(level, precision, task) and compute_precision(accelerator, precision, task) is not None:
        return None
    for other in alternatives(precision, task):
        if runs(support(accelerator, other), other, task) and compute_precision(accelerator, other, task):
            return level, other
    return level, None


def describe_problem(accelerator: str | None, precision: str, task: str, level: str, alternative: str | None) -> str:
    """One line, e.g. "T4 has no bf16; use precision fp16"."""
    name = "a CPU-only type" if accelerator is None else accelerator
    if level == "no":
        what = f"{name} has no {precision}"
    elif level == "weight-only":
        what = f"{name} runs {precision} only as weight-only storage, and {task} computes in it"
    elif level == "native":  # lora on integer weights with no 16-bit float math for the adapters
        what = f"{name} has no native bf16 or fp16 for the adapters of {task} on {precision} weights"
    else:
        what = f"{name} {precision} support is unknown (no sourced statement), so it is not assumed"
    return what + (f"; use precision {alternative}" if alternative else f"; no precision {task} allows runs on it")

