"""The model's plan step: checks ModelOptions for the instance type and derives its server. Pure (no aws_cdk).

:func:`plan_model` runs before any resource exists. It resolves the source (an S3 prefix or a Hugging Face repo),
the model's size (a known architecture, or a parameter count), refuses a model that does not fit the instance
type by the advisor's own memory rule (:func:`mlcdk.advice.advisor.fit_problem`, with the numbers), and derives
the server (image, ``vllm serve`` arguments, start-up estimate) from :mod:`mlcdk.presets.model_server`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlcdk.advice.advisor import fit_problem
from mlcdk.advice.estimates import estimate_memory
from mlcdk.constructs.validation import check
from mlcdk.errors import ConfigurationError
from mlcdk.presets import images, model_server
from mlcdk.presets.catalog import InstanceSpec
from mlcdk.presets.sizing import ModelArchitecture, Workload, get_model, models
from mlcdk.presets.workloads import image_reference_problem

if TYPE_CHECKING:  # the option group's module imports aws_cdk (a Secrets Manager type); this one must not
    from mlcdk.constructs.model import ModelOptions

GIB = 1024**3
#: Where the node's model cache is mounted in the server's containers.
CONTAINER_CACHE = "/models"


def s3_model_path(source: model_server.ModelSource) -> str:
    """Where an S3 model's files appear in the container: the copy of s3://bucket/prefix in the cache."""
    return f"{CONTAINER_CACHE}/s3/{source.bucket}/{source.prefix}".rstrip("/")


@dataclass(frozen=True)
class ModelPlan:
    """What plan_model decided: the workload it sized, the image and command, and the start-up estimate."""

    options: ModelOptions
    source: model_server.ModelSource
    workload: Workload
    image: str
    server: str | None  #: a model_server.SERVERS flavour; None for a custom command
    settings: model_server.ServerSettings | None  #: None for a custom command
    entry_point: tuple[str, ...]
    command: tuple[str, ...]
    checkpoint_bytes: float
    startup: model_server.StartupEstimate
    memory_summary: str
    image_inspected: bool = True  #: False: a given image whose tag names no CUDA or Neuron SDK version

    @property
    def served_model_name(self) -> str:
        return self.settings.served_model_name if self.settings else (
            self.options.served_model_name or self.source.default_served_name)


@dataclass(frozen=True)
class CacheVolume:
    """Where the node keeps model files: the data volume when there is one, else the root volume."""

    size_gib: int
    throughput_mib_per_second: float
    host_path: str


def plan_model(model: ModelOptions, spec: InstanceSpec, *, port: int, cache: CacheVolume) -> ModelPlan:
    """Check ``model`` for ``spec`` and derive its server (an S3 model is served from its copy in the cache, a
    Hugging Face model by its ID). Raises ConfigurationError naming the field."""
    source = model_server.parse_source(model.source)
    architecture = _architecture(model, source)
    neuron = spec.accelerator is not None and spec.accelerator.kind == "neuron"
    check(_option_rows(model, source, neuron))
    sequences = model.max_concurrent_sequences
    if sequences is None and neuron and model.command is None:
        sequences = model_server.facts().neuron_max_num_seqs
    workload = _workload(model, architecture, spec, sequences)
    memory = estimate_memory(workload)
    problem = fit_problem(spec, workload)
    check([(problem is not None, f"model: {workload.describe()} ({_shape(workload)}) does not fit "
                                 f"{spec.instance_type}: {problem}")])
    weights = model_server.checkpoint_bytes(workload.params, workload.precision)
    check([(weights > cache.size_gib * GIB,
            f"model: the checkpoint ({weights / GIB:,.1f} GiB) does not fit the node's {cache.size_gib} GiB model "
            "cache volume; raise storage.root_volume_size_gib, or give storage.data_volume_size_gib")])
    image, server, inspected = _image(model, spec)
    settings = None if model.command is not None else model_server.ServerSettings(
        model=s3_model_path(source) if source.kind == "s3" else source.text,
        served_model_name=model.served_model_name or source.default_served_name,
        tensor_parallel_size=model_server.tensor_parallel_size(spec, architecture), precision=workload.precision,
        max_model_len=workload.context_tokens, max_num_seqs=sequences, port=port, server=server)
    entry_point = tuple(model.command) if model.command is not None else model_server.facts().entry_point
    return ModelPlan(model, source, workload, image, server, settings, entry_point,
                     tuple(settings.arguments()) if settings else (), weights,
                     model_server.startup_estimate(spec, weights, cache.throughput_mib_per_second), memory.summary(),
                     inspected)


def _architecture(model: ModelOptions, source: model_server.ModelSource) -> ModelArchitecture | None:
    if model.architecture is not None:
        return get_model(model.architecture, "model.architecture")
    return model_server.architecture_for(source) if model.params is None else None


def _option_rows(model: ModelOptions, source: model_server.ModelSource, neuron: bool) -> list[tuple[bool, str]]:
    f = model_server.facts()
    gated = model.gated if model.gated is not None else model_server.gated(source)
    secret = model.hf_token_secret
    return [
        (model.architecture is None and model.params is None and model_server.architecture_for(source) is None,
         f"model: mlcdk cannot size {source.text!r} (not a known model): give model.architecture (one of "
         f"{', '.join(models())}) or model.params (e.g. '8B')"),
        (gated and secret is None and source.kind == "huggingface",
         f"model.hf_token_secret: {source.text} is a gated model (its licence must be accepted and a token sent); "
         "put a Hugging Face token in a Secrets Manager secret and pass it here"),
        (secret is not None and source.kind == "s3",
         "model.hf_token_secret is for Hugging Face downloads; an S3 model is read with the task role"),
        (isinstance(secret, str) and not model_server.SECRET_ARN.fullmatch(secret),
         f"model.hf_token_secret ({_redacted(secret)}) must be a Secrets Manager secret or its complete ARN "
         "(arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 characters>); never the token itself"),
        (model.image is not None and image_reference_problem(model.image) is not None,
         f"model.image ({model.image!r}) {image_reference_problem(model.image)}"),
        (model.command is not None and not model.command, "model.command must name a program to run, or be None"),
        (model.served_model_name is not None and model.served_model_name.startswith("-"),
         f"model.served_model_name ({(model.served_model_name or '')[:60]!r}) must not begin with '-': it follows "
         "--served-model-name on the server's command line, where vLLM would read it as an option of its own"),
        (neuron and model.command is None and model.precision not in f.neuron_precisions,
         f"model.precision ({model.precision!r}): the Neuron vLLM server is derived for "
         f"{' or '.join(f.neuron_precisions)}; quantized Neuron models are configured through the Neuron config "
         "(give model.command)"),
    ]


def _redacted(value: object) -> str:
    """A string given where a secret's ARN belongs, shown without the rest of what may be the token itself."""
    return f"{value[:6]!r}... ({len(value):,} characters)" if isinstance(value, str) and len(value) > 6 else repr(value)


def _workload(model: ModelOptions, architecture: ModelArchitecture | None, spec: InstanceSpec,
              sequences: int | None) -> Workload:
    """The advisor's inference workload for this model on this type (its checks name Workload's fields)."""
    return _make_workload(model, architecture, sequences, accelerator="cpu" if spec.accelerator is None else "any")


def model_workload(model: ModelOptions, *, regions=()) -> Workload:
    """The inference workload the advisor sizes for ``model`` before a type is chosen (InferenceFleet.from_workload):
    its architecture or parameters, precision, context and concurrent sequences (one when not given)."""
    source = model_server.parse_source(model.source)
    check(_option_rows(model, source, False)[:1])
    return _make_workload(model, _architecture(model, source), model.max_concurrent_sequences, regions=regions)


def _make_workload(model: ModelOptions, architecture: ModelArchitecture | None, sequences: int | None,
                   **extra) -> Workload:
    try:
        return Workload(task="inference", model=architecture.name if architecture else None,
                        params=None if architecture else model.params, precision=model.precision,
                        context_tokens=model.context_tokens, sequences=sequences or 1, **extra)
    except ConfigurationError as error:
        raise ConfigurationError(f"model.{error}") from None


def _shape(workload: Workload) -> str:
    return (f"{workload.context_tokens:,}-token context x {workload.sequences} sequence(s)"
            if workload.architecture else "weights only: the KV cache of an unknown architecture is not counted")


def _image(model: ModelOptions, spec: InstanceSpec) -> tuple[str, str | None, bool]:
    """(image, server flavour, inspected): the vLLM DLC that drives the accelerator (images' rule), or the given
    image, refused when its tag shows it cannot drive the type (CUDA or Neuron SDK), unchecked when it cannot be
    inspected. A given image without a command runs ``vllm serve`` like the DLC the type would get."""
    if model.image is None:
        image = model_server.default_serving_image(spec)  # refuses types no DLC serves, naming the way out
        return image.uri, model_server.server_of(image), True
    inspected, problem = images.given_image_problem(model.image, [spec])
    check([(problem is not None, f"model.image ({model.image!r}) cannot drive {problem}; leave model.image out for "
                                 "the vLLM Deep Learning Container, or pass one built for it (`mlcdk images list`)")])
    if model.command is not None:
        return model.image, None, inspected
    server = model_server.server_of(model_server.default_serving_image(spec)) if model_server.serves(spec) else "vllm"
    return model.image, server, inspected
