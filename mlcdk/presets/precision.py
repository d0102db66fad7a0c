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
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from mlcdk.errors import ConfigurationError
from mlcdk.presets.catalog import DATA_DIR, InstanceSpec
from mlcdk.presets.datafile import EntryReader, read_mapping
from mlcdk.presets.sizing import FULL_TRAINING_PRECISIONS, PRECISION_BYTES

PRECISIONS = tuple(PRECISION_BYTES)
LEVELS = ("native", "weight-only", "no", "unknown")
#: The entry that stands for CPU-only instance types (no accelerator).
CPU = "CPU"
#: Tasks whose weights are frozen, so a weight-only format serves them: integer weights for lora and serving,
#: weight-only fp8 (vLLM's W8A16 on Ampere) for serving only.
FROZEN_WEIGHT_TASKS = ("lora", "inference", "batch-inference")
SERVING_TASKS = ("inference", "batch-inference")


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
    """One accelerator's per-device facts: dense peak TFLOPS per precision, memory bandwidth and the link between
    the devices of one instance, with their sources."""

    name: str
    dense_tflops: Mapping[str, float]  #: precision -> dense peak; a missing precision has no sourced figure
    source: str
    note: str
    memory_bandwidth_gb_s: float | None = None  #: device memory bandwidth, GB/s
    #: device memory (MiB) -> bandwidth, where one model comes in two memory sizes (A100 40 GB and 80 GB)
    memory_bandwidth_by_device_mib: Mapping[int, float] = field(default_factory=lambda: MappingProxyType({}))
    intra_node_link: str | None = None  #: "NVLink 4 (NVSwitch)", "PCIe 4.0 x16 (no NVLink)", "NeuronLink-v2"
    intra_node_gb_s: float | None = None  #: the link's GB/s per device in one direction; None when unpublished
    interconnect_source: str | None = None

    @property
    def dense_bf16_tflops(self) -> float | None:
        return self.dense_tflops.get("bf16")

    def memory_bandwidth(self, device_mib: int | None) -> float | None:
        """GB/s of device memory bandwidth for a device of ``device_mib`` MiB (None when unpublished)."""
        return self.memory_bandwidth_by_device_mib.get(device_mib or 0, self.memory_bandwidth_gb_s)


def load_precision_support(path: Path) -> dict[str, PrecisionSupport]:
    """Read a precision file; an error names the file, the entry and the field."""
    table = {}
    fields = {**{p: str for p in PRECISIONS}, "sources": list, "note": str, "training": bool, "training_source": str}
    for name, entry in read_mapping(path, "accelerators").items():
        read = EntryReader(path, f"accelerators[{name!r}]", entry, fields)
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


_ACCELERATOR_FIELDS = {"dense_tflops": dict, "source": str, "note": str, "memory_bandwidth_gb_s": (int, float),
                       "memory_bandwidth_gb_s_by_device_mib": dict, "intra_node_link": str,
                       "intra_node_gb_s": (int, float, type(None)), "interconnect_source": str,
                       "interconnect_note": str}


def _positive(read: EntryReader, name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise read.error(name, f"is {value!r}; it must be a positive number")
    return float(value)


def load_accelerator_throughputs(path: Path) -> dict[str, AcceleratorThroughput]:
    """Read an accelerators file; an error names the file, the entry and the field."""
    table = {}
    for name, entry in read_mapping(path, "accelerators").items():
        read = EntryReader(path, f"accelerators[{name!r}]", entry, _ACCELERATOR_FIELDS)
        figures = read("dense_tflops", dict)
        for precision, tflops in figures.items():
            if precision not in PRECISIONS:
                raise read.error("dense_tflops", f"has {precision!r}; precisions are {', '.join(PRECISIONS)}")
            if isinstance(tflops, bool) or not isinstance(tflops, (int, float)) or not tflops > 0:
                raise read.error("dense_tflops", f"[{precision!r}] is {tflops!r}; it must be a positive number")
        for key in ("source", "interconnect_source"):
            if not (read(key, str, "https://") or "").startswith("https://"):
                raise read.error(key, "must be an https:// URL")
        bandwidth = read("memory_bandwidth_gb_s", (int, float), None)
        variants = {int(mib) if str(mib).isdigit() else _bad_mib(read, mib): _positive(
            read, "memory_bandwidth_gb_s_by_device_mib", gb)
            for mib, gb in read("memory_bandwidth_gb_s_by_device_mib", dict, {}).items()}
        link = read("intra_node_gb_s", (int, float, type(None)), None)
        table[name] = AcceleratorThroughput(
            name, MappingProxyType({k: float(v) for k, v in figures.items()}), read("source", str), read("note", str),
            None if bandwidth is None else _positive(read, "memory_bandwidth_gb_s", bandwidth),
            MappingProxyType(variants), read("intra_node_link", str, None),
            None if link is None else _positive(read, "intra_node_gb_s", link), read("interconnect_source", str, None))
    return table


def _bad_mib(read: EntryReader, key: object) -> int:
    raise read.error("memory_bandwidth_gb_s_by_device_mib", f"has {key!r}; keys are device memory in MiB, e.g. '40960'")


@functools.lru_cache(maxsize=1)
def precision_support() -> Mapping[str, PrecisionSupport]:
    """The bundled ``data/precision.json``, loaded once."""
    return MappingProxyType(load_precision_support(DATA_DIR / "precision.json"))


@functools.lru_cache(maxsize=1)
def accelerator_throughputs() -> Mapping[str, AcceleratorThroughput]:
    """The bundled ``data/accelerators.json``, keyed by the catalog's accelerator name, loaded once."""
    return MappingProxyType(load_accelerator_throughputs(DATA_DIR / "accelerators.json"))


@functools.lru_cache(maxsize=1)
def cpu_processors() -> Mapping[str, str]:
    """Instance family -> the precision entry of its processor (``cpu_families`` in ``data/precision.json``)."""
    path = DATA_DIR / "precision.json"
    families = read_mapping(path, "cpu_families")
    table = precision_support()
    for family, entry in families.items():
        if entry not in table:
            raise ConfigurationError(f"{path}: cpu_families[{family!r}] names {entry!r}, which has no entry")
    return MappingProxyType(dict(families))


def device_name(spec: InstanceSpec) -> str | None:
    """The name precision support is looked up by: the accelerator's, or for a CPU-only type its processor's entry
    (None when the family's processor is not listed: the generic CPU entry)."""
    if spec.accelerator is not None:
        return spec.accelerator.name
    return cpu_processors().get(spec.family)


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
    where the weights are frozen: integer weights for lora and serving, fp8 (W8A16) for serving only."""
    if level == "native":
        return True
    if level != "weight-only" or task not in FROZEN_WEIGHT_TASKS:
        return False
    return precision in ("int8", "int4") or (precision == "fp8" and task in SERVING_TASKS)


def compute_precision(accelerator: str | None, precision: str, task: str) -> str | None:
    """The precision the math runs in: the workload's own where the hardware computes in it; weights stored
    weight-only (lora on integer weights, fp8 or integer weights served on hardware without that math) expand to
    bf16 (or fp16 where bf16 is not native). None when neither is native."""
    if support(accelerator, precision) == "native" and (task != "lora" or precision not in ("int8", "int4")):
        return precision
    if task not in FROZEN_WEIGHT_TASKS:
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

