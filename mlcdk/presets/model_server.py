"""What an InferenceFleet's model server runs with: image, source, server arguments and start-up time (pure Python).

Everything here is derived from the catalog (devices, NeuronCores, memory, network), the model's published shape
(``data/models.json``, read by :mod:`mlcdk.presets.sizing`), the serving images of :mod:`mlcdk.presets.images`
(role "serving" in ``data/containers.json``, generated from the DLC lists with their provenance and refreshed by
``mlcdk images refresh``) and the sourced facts of ``data/model_server.json``; nothing is guessed:

- **Image:** the vLLM DLC for NVIDIA GPUs; for Neuron, the vLLM DLC of the instance's generation (the Neuron
  docs give trn1/inf2 and trn2/trn3 different images), through the images' "drives the accelerator" rule.
  :func:`default_serving_image`.
- **Tensor parallel size:** every GPU, or every (logical) NeuronCore of the instance. vLLM requires the model's
  attention heads to divide over the GPUs; a model whose heads do not is refused, naming the sizes that work.
- **dtype** from the precision (``--dtype``; fp8 quantizes bf16 weights on load), **max model length** (the
  context), **max concurrent sequences** (compiled into the model on Neuron), **port** and **served model name**.
- **Start-up estimate:** downloading the checkpoint (bounded by the node's network baseline and the cache volume's
  throughput), loading it (the volume, and on Neuron the device load rate), and on Neuron compiling it, times a
  safety factor: the ECS service's health-check grace period.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from mlcdk.errors import ConfigurationError, shown
from mlcdk.presets import identifiers, images, secrets
from mlcdk.presets.catalog import DATA_DIR, InstanceSpec
from mlcdk.presets.datafile import EntryReader, read_mapping
from mlcdk.presets.sizing import PRECISION_BYTES, ModelArchitecture, models

SERVING_FILE = DATA_DIR / "model_server.json"
#: The server flavours an image runs: vLLM on CUDA, vLLM with NxD Inference (Neuron, trn1/inf2), vLLM Neuron (trn2+).
SERVERS = ("vllm", "vllm-nxdi", "vllm-neuron")
#: S3 bucket names (S3 user guide, "General purpose bucket naming rules"): 3-63 characters of lower-case letters,
#: digits, dots and hyphens, starting and ending with a letter or digit.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
#: Hugging Face repository IDs (huggingface_hub utils/_validators.py, validate_repo_id): "name" or
#: "namespace/name", ASCII letters, digits, '-', '_' and '.', at most 96 characters per part, no "--" or "..",
#: not starting or ending with '-' or '.', not ending in ".git".
_HF_PART = r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9_])?"
_HF_REPO = re.compile(rf"^(?:{_HF_PART}/)?{_HF_PART}$")
#: A Secrets Manager secret's complete ARN: one rule for the model's token and the job's secrets (mlcdk.presets.secrets).
SECRET_ARN = secrets.SECRET_ARN
#: Bytes per parameter of the checkpoint on disk, where it differs from the served precision: fp8 is quantized
#: while a 16-bit checkpoint loads.
_CHECKPOINT_BYTES = MappingProxyType({"fp8": 2.0})
GB = 1e9
MIB = 1024 * 1024


@dataclass(frozen=True)
class ServingFacts:
    """The sourced facts of data/model_server.json."""

    entry_point: tuple[str, ...]
    health_path: str
    metrics_path: str
    queue_metric: str
    environment: Mapping[str, str]
    dtypes: Mapping[str, str]
    dtype_arguments: Mapping[str, tuple[str, ...]]
    neuron_precisions: tuple[str, ...]
    neuron_max_num_seqs: int
    neuron_block_size: int
    logical_core_ratio: Mapping[str, int]  #: accelerator name -> physical NeuronCores per logical core
    compile_seconds_per_gb: float
    neuron_load_gb_per_second: float
    vllm_neuron_from: str  #: the first vLLM version of the Neuron images that is the vLLM Neuron plugin
    safety_factor: float
    gated_organizations: tuple[str, ...]
    downloader_image: str
    reserved_ports: tuple[int, ...]
    default_model: str  #: the model InferenceStack serves unless told otherwise
    default_model_licence: str


@functools.lru_cache(maxsize=1)
def facts() -> ServingFacts:
    """data/model_server.json, read once; an error names the file, the section and the field."""
    path = SERVING_FILE
    section = functools.partial(_section, path)
    server = section("server", {"entry_point": list, "health_path": str, "metrics_path": str, "queue_metric": str,
                                "environment": dict})
    dtypes = section("dtypes", {"entries": dict, "arguments": dict})
    neuron = section("neuron", {"precisions": list, "max_num_seqs": int, "block_size": int,
                                "logical_core_ratio": dict, "compile_seconds_per_gb": (int, float),
                                "load_gb_per_second": (int, float), "vllm_neuron_from": str})
    startup = section("startup", {"safety_factor": (int, float)})
    downloader = section("model_downloader", {"image": str})
    ports = section("ecs_reserved_ports", {"ports": list})
    default = section("default_model", {"model": str, "licence": str})
    gated = read_mapping(path, "gated_organizations")
    return ServingFacts(
        tuple(server["entry_point"]), server["health_path"], server["metrics_path"], server["queue_metric"],
        MappingProxyType(dict(server["environment"])), MappingProxyType(dict(dtypes["entries"])),
        MappingProxyType({k: tuple(v) for k, v in dtypes["arguments"].items()}), tuple(neuron["precisions"]),
        neuron["max_num_seqs"], neuron["block_size"], MappingProxyType(dict(neuron["logical_core_ratio"])),
        float(neuron["compile_seconds_per_gb"]), float(neuron["load_gb_per_second"]), neuron["vllm_neuron_from"],
        float(startup["safety_factor"]), tuple(gated), downloader["image"], tuple(ports["ports"]), default["model"],
        default["licence"])


def _section(path, key: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    entry = read_mapping(path, key)
    read = EntryReader(path, key, entry, {**fields, "source": str, "reason": str})
    values = {name: read(name, kind) for name, kind in fields.items()}
    read("source", str)
    read("reason", str)
    return values


def default_serving_image(spec: InstanceSpec) -> images.ContainerImage:
    """The vLLM DLC that drives ``spec``'s accelerator: the first serving image of data/containers.json that
    :func:`mlcdk.presets.images.image_problem` accepts (ConfigurationError when none does, e.g. CPU-only types)."""
    try:
        return images.default_image([spec], role="serving", parameter="model.image")
    except ConfigurationError as error:
        raise ConfigurationError(
            f"instance_type: no vLLM Deep Learning Container serves {spec.instance_type} ({error}); give "
            "model=ModelOptions(image=..., command=...) for your own server image, or use engine='nodes' with "
            "model_server_command") from None


def serves(spec: InstanceSpec) -> bool:
    """Whether a vLLM DLC serves ``spec``."""
    return any(image.role == "serving" and images.image_problem(image, spec) is None for image in images.book().images)


def server_of(image: images.ContainerImage) -> str:
    """The server flavour an image runs (SERVERS): vLLM on CUDA; on Neuron, vLLM Neuron from the version that
    introduced the plugin (data/model_server.json), else vLLM with NxD Inference."""
    if image.kind != "neuron":
        return "vllm"
    newer = images.version_key(image.framework_version) >= images.version_key(facts().vllm_neuron_from)
    return "vllm-neuron" if newer else "vllm-nxdi"


def fallback_problem(primary: InstanceSpec, fallback: InstanceSpec) -> str | None:
    """Why ``fallback`` cannot run ``primary``'s server task (one task definition for the whole group), or None: it
    must take the same image and shard the model over as many devices, and hold the task's memory."""
    image = default_serving_image(primary)
    if images.image_problem(image, fallback) is not None:
        return f"the server image of {primary.instance_type} ({image.name}) does not run it"
    devices = (neuron_cores(primary), neuron_cores(fallback)) if image.kind == "neuron" else (
        primary.accelerator.count, fallback.accelerator.count)
    if devices[0] != devices[1]:
        unit = "NeuronCores" if image.kind == "neuron" else "GPUs"
        return f"it has {devices[1]} {unit}, and the server is sharded over {devices[0]}"
    if fallback.memory_mib < primary.memory_mib:
        return f"it has {fallback.memory_gib:g} GiB of memory, less than the {primary.memory_gib:g} GiB the task is sized for"
    return None


# --------------------------------------------------------------------------------------------
# Model sources
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSource:
    """Where the model files come from: an S3 prefix (read by the fleet's task role) or a Hugging Face repo."""

    text: str
    kind: str  #: "s3" or "huggingface"
    bucket: str | None = None
    prefix: str = ""  #: without leading or trailing "/"
    repo: str | None = None

    @property
    def organization(self) -> str | None:
        return self.repo.split("/", 1)[0] if self.repo and "/" in self.repo else None

    @property
    def default_served_name(self) -> str:
        """The repo ID, or the last part of the S3 prefix (the bucket for a whole bucket)."""
        if self.repo is not None:
            return self.repo
        return self.prefix.rsplit("/", 1)[-1] if self.prefix else str(self.bucket)


def parse_source(value: object, parameter: str = "model.source") -> ModelSource:
    """``s3://bucket[/prefix]`` or a Hugging Face repo ID ("org/name"); ConfigurationError names what is wrong."""
    usage = ("must be s3://<bucket>/<prefix> (a folder of model files: config.json, tokenizer, *.safetensors) or "
             "a Hugging Face model ID such as TinyLlama/TinyLlama-1.1B-Chat-v1.0")
    if not isinstance(value, str) or value != value.strip() or not value:
        raise ConfigurationError(f"{parameter} ({value!r}) {usage}")
    if value.startswith("s3://"):
        bucket, _, prefix = value[len("s3://"):].partition("/")
        prefix = prefix.strip("/")
        bad = (not _BUCKET.fullmatch(bucket) or ".." in bucket or re.fullmatch(r"[0-9.]+", bucket) is not None
               or "//" in prefix or any(c.isspace() or ord(c) < 32 for c in prefix) or len(prefix) > 1024)
        if bad:
            raise ConfigurationError(f"{parameter} ({value!r}) is not an S3 URI of a bucket (3-63 lower-case letters, "
                                     "digits, dots and hyphens) and an optional prefix; " + usage)
        _check_s3_source(value, prefix, parameter)
        return ModelSource(value, "s3", bucket=bucket, prefix=prefix)
    if "://" in value or not _HF_REPO.fullmatch(value) or "--" in value or ".." in value or value.endswith(".git"):
        raise ConfigurationError(f"{parameter} ({value!r}) {usage}")
    return ModelSource(value, "huggingface", repo=value)


def _check_s3_source(value: str, prefix: str, parameter: str) -> None:
    """The S3 naming rules of mlcdk.presets.identifiers (the one home: reserved bucket names, shell and URL characters
    in the key, '.' and '..' segments), and no IAM wildcard: the prefix becomes the task role's resource
    ``arn:aws:s3:::bucket/prefix/*`` and its ``s3:prefix`` StringLike condition, where '*' would widen read access
    beyond the model (IAM User Guide, "IAM JSON policy elements: Resource", wildcards in ARNs)."""
    problem = identifiers.s3_uri_problem(value)
    if problem is None and "*" in prefix:
        problem = "holds '*', which IAM reads as a wildcard in the task role's read access: name the model's folder"
    if problem:
        raise ConfigurationError(f"{parameter} ({shown(value)}) {problem}")


def architecture_for(source: ModelSource) -> ModelArchitecture | None:
    """The data/models.json entry that lists this Hugging Face repo among its ``hf_ids`` (case-insensitive, as
    the advisor reads them), if any. Only the bundled entries: a synth never reads a local Hugging Face cache."""
    if source.repo is None:
        return None
    repo = source.repo.lower()
    return next((m for m in models().values() if repo in (i.lower() for i in m.hf_ids)), None)


def gated(source: ModelSource) -> bool:
    """Whether the repo's organization gates every model behind a licence (data/model_server.json)."""
    return source.organization is not None and source.organization in facts().gated_organizations


# --------------------------------------------------------------------------------------------
# Server arguments
# --------------------------------------------------------------------------------------------


def neuron_cores(spec: InstanceSpec) -> int:
    """The instance's logical NeuronCores: physical cores over the generation's default Logical NeuronCore
    Configuration (2 on Trainium2 and Trainium3, else 1)."""
    acc = spec.accelerator
    ratio = facts().logical_core_ratio.get(acc.name or "", 1)
    return (acc.neuron_cores or acc.count) // ratio


def tensor_parallel_size(spec: InstanceSpec, architecture: ModelArchitecture | None) -> int:
    """Every GPU or logical NeuronCore of ``spec``. On GPUs vLLM needs the attention heads to divide evenly over
    the tensor-parallel ranks; a model whose heads do not is refused with the sizes that would work."""
    acc = spec.accelerator
    if acc.kind == "neuron":
        return neuron_cores(spec)
    size = acc.count
    if architecture is not None and architecture.attention_heads % size:
        from mlcdk.presets.catalog import default_catalog

        counts = {t.accelerator.count for t in default_catalog()
                  if t.accelerator and t.accelerator.kind == "gpu" and t.accelerator.count}
        fits = [n for n in sorted(counts) if n < size and architecture.attention_heads % n == 0]
        raise ConfigurationError(
            f"model: {architecture.name} has {architecture.attention_heads} attention heads, which do not divide over "
            f"the {size} GPUs of {spec.instance_type} (vLLM shards heads evenly across tensor-parallel ranks); choose "
            f"a type with {' or '.join(map(str, fits))} GPU(s), or give model.command for another layout")
    return size


def dtype_arguments(precision: str) -> list[str]:
    """``--dtype`` for the precision, plus the quantization flag fp8 needs."""
    f = facts()
    return ["--dtype", f.dtypes[precision], *f.dtype_arguments.get(precision, ())]


@dataclass(frozen=True)
class ServerSettings:
    """The derived arguments of one vLLM server."""

    model: str  #: a Hugging Face repo ID or a path in the container
    served_model_name: str
    tensor_parallel_size: int
    precision: str
    max_model_len: int
    max_num_seqs: int | None  #: None: vLLM's own default (GPU)
    port: int
    server: str  #: one of SERVERS

    def arguments(self) -> list[str]:
        """``vllm serve`` arguments, in a fixed order (the task definition's command)."""
        args = [self.model, "--served-model-name", self.served_model_name, "--host", "0.0.0.0",
                "--port", str(self.port), "--tensor-parallel-size", str(self.tensor_parallel_size),
                *dtype_arguments(self.precision), "--max-model-len", str(self.max_model_len)]
        if self.max_num_seqs is not None:
            args += ["--max-num-seqs", str(self.max_num_seqs)]
        if self.server == "vllm-nxdi":  # the contiguous KV layout: exactly max_num_seqs blocks (known issue 2)
            args += ["--block-size", str(facts().neuron_block_size),
                     "--num-gpu-blocks-override", str(self.max_num_seqs)]
        return args


def checkpoint_bytes(params: float, precision: str) -> float:
    """The model files on disk: parameters times the checkpoint's bytes per parameter."""
    return params * _CHECKPOINT_BYTES.get(precision, PRECISION_BYTES[precision])


# --------------------------------------------------------------------------------------------
# Start-up time (the health-check grace period)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StartupEstimate:
    """How long a new server takes to answer /health the first time on a fresh node, part by part."""

    parts: tuple[tuple[str, float], ...]  #: (label, seconds)
    safety_factor: float

    @property
    def seconds(self) -> float:
        return sum(seconds for _, seconds in self.parts)

    @property
    def grace_seconds(self) -> int:
        """The estimate times the safety factor, rounded up to a whole minute."""
        return 60 * math.ceil(self.seconds * self.safety_factor / 60)

    def summary(self) -> str:
        parts = " + ".join(f"{label} {seconds:,.0f} s" for label, seconds in self.parts)
        return f"{self.grace_seconds} s = {self.safety_factor:g} x ({parts}), rounded up to a minute"


def startup_estimate(spec: InstanceSpec, model_bytes: float, disk_mib_per_second: float) -> StartupEstimate:
    """Download at the slower of the node's network baseline (network card 0) and the cache volume's throughput,
    load from the volume (on Neuron also at most the device load rate), and on Neuron compile
    (``compile_seconds_per_gb`` per GB of checkpoint). Sources: data/model_server.json."""
    f = facts()
    disk = disk_mib_per_second * MIB
    network = (spec.network_cards[0].baseline_bandwidth_gbps or 0) * GB / 8 if spec.network_cards else 0
    download = model_bytes / min(disk, network) if network else model_bytes / disk
    neuron = spec.accelerator is not None and spec.accelerator.kind == "neuron"
    load = model_bytes / (min(disk, f.neuron_load_gb_per_second * GB) if neuron else disk)
    parts = [("download", download), ("load", load)]
    if neuron:
        parts.append(("Neuron compile", model_bytes / GB * f.compile_seconds_per_gb))
    return StartupEstimate(tuple(parts), f.safety_factor)
