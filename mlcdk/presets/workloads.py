"""Named workload presets and the AMIs they run, from curated data files (pure Python, no aws_cdk).

Built-in presets live in ``data/presets.json``; users can add their own from a YAML or JSON file with
the same shape (``{"presets": {name: {...}}}``). Every entry is checked against the catalog when it is
loaded, and a bad entry gets an error naming the file, the entry and the field.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from mlcdk.errors import ConfigurationError, shown, unknown_name
from mlcdk.presets import bounds, catalog, datafile
from mlcdk.presets.catalog import DATA_DIR, InstanceSpec
from mlcdk.presets.datafile import EntryReader, read_mapping

#: Every task: training = pre-training; fine-tuning = full fine-tuning; lora = low-rank adapters on frozen weights.
TASKS = ("training", "fine-tuning", "lora", "inference")
#: Tasks a preset may name (a preset sizes whole-model work; lora is sized by the advisor only).
PRESET_TASKS = ("training", "fine-tuning", "inference")
#: Where a TrainingCluster runs work: AWS Batch multi-node jobs, or an Auto Scaling group of persistent nodes.
ENGINES = ("batch", "nodes")
#: What runs an InferenceFleet's servers: Amazon ECS (vLLM in containers, the default) or the group's own nodes.
FLEET_ENGINES = ("ecs", "nodes")
PURCHASE_OPTIONS = ("on-demand", "spot", "mixed")


@dataclass(frozen=True)
class AlarmThresholds:
    """Default alarm thresholds a preset hands to the guardrails."""

    low_utilization_percent: float = 10
    low_utilization_hours: float = 2
    high_memory_percent: float = 90


@dataclass(frozen=True)
class WorkloadPreset:
    """A named, sourced choice of instance type, size and purchase option for one kind of workload."""

    name: str
    description: str
    task: str
    instance_type: str
    purchase_option: str
    ami: str
    source: str
    reason: str
    nodes: int = 1  #: training and fine-tuning
    min_capacity: int = 1  #: inference
    max_capacity: int = 1  #: inference
    on_demand_base_capacity: int = 0  #: "mixed" only
    fallback_instance_types: tuple[str, ...] = ()
    alarms: AlarmThresholds = field(default_factory=AlarmThresholds)

    @property
    def spec(self) -> InstanceSpec:
        return catalog.get(self.instance_type)


@dataclass(frozen=True)
class MachineImage:
    """An AMI resolved at deploy time from an SSM public parameter."""

    name: str
    parameter: str
    architecture: str
    accelerator_kinds: tuple[str, ...]
    excluded_families: tuple[str, ...]
    root_device_name: str  #: where the root volume mapping goes (/dev/sda1 on Ubuntu, /dev/xvda on AL2023)
    source: str
    reason: str
    engine: str = "nodes"  #: "nodes" (a DLAMI for persistent nodes) or "batch" (an ECS-optimized AMI)
    #: accelerator makers whose drivers the image carries (NVIDIA, AWS); empty: no accelerator drivers
    accelerator_manufacturers: tuple[str, ...] = ()

    def problem_with(self, spec: InstanceSpec) -> str | None:
        """Why this image cannot run ``spec``, or None when it can."""
        kind = spec.accelerator.kind if spec.accelerator else "none"
        if self.architecture not in spec.architectures:
            return f"it is built for {self.architecture}, and {spec.instance_type} is {'/'.join(spec.architectures)}"
        if kind not in self.accelerator_kinds:
            return f"it is for {'/'.join(self.accelerator_kinds)} instances, and {spec.instance_type} is {kind}"
        maker = spec.accelerator.manufacturer if spec.accelerator else None
        if maker is not None and self.accelerator_manufacturers and maker not in self.accelerator_manufacturers:
            return (f"it carries {'/'.join(self.accelerator_manufacturers)} drivers, and {spec.instance_type} has "
                    f"{maker} {spec.accelerator.name} accelerators")
        if spec.family in self.excluded_families:
            return f"it no longer supports the {spec.family} family"
        return None


# --------------------------------------------------------------------------------------------
# AMIs
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def machine_images() -> Mapping[str, MachineImage]:
    path = DATA_DIR / "amis.json"
    entries = read_mapping(path, "amis")
    images = {}
    for name, entry in entries.items():
        read = EntryReader(path, f"amis[{name!r}]", entry, {
            "parameter": str, "architecture": str, "accelerator_kinds": list, "excluded_families": list,
            "root_device_name": str, "source": str, "reason": str, "engine": str, "accelerator_manufacturers": list})
        if read("engine") not in ENGINES:
            raise read.error("engine", f"is {shown(read('engine'))}; allowed: {', '.join(ENGINES)}")
        images[name] = MachineImage(name, read("parameter"), read("architecture"), tuple(read("accelerator_kinds")),
                                    tuple(read("excluded_families")), read("root_device_name"), read("source"),
                                    read("reason"), read("engine"), tuple(read("accelerator_manufacturers")))
    return MappingProxyType(images)


def default_machine_image(spec: InstanceSpec, engine: str = "nodes") -> MachineImage:
    """The catalog's AMI for ``spec`` on ``engine``: for persistent nodes the Neuron DLAMI, NVIDIA DLAMI or
    Amazon Linux 2023; for AWS Batch the matching ECS-optimized AMI (by accelerator and CPU)."""
    problems = []
    for image in (i for i in machine_images().values() if i.engine == engine):
        problem = image.problem_with(spec)
        if problem is None:
            return image
        problems.append(f"{image.name}: {problem}")
    raise ConfigurationError(
        f"instance_type: no catalog AMI runs {spec.instance_type}; pass machine_image= explicitly "
        f"({'; '.join(problems)})"
    )


# --------------------------------------------------------------------------------------------
# Job containers (the AWS Batch engine); the images themselves are in mlcdk.presets.images
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EfaRdmaFacts:
    """The families whose EFA supports RDMA read (data/efa_rdma.json)."""

    families: tuple[str, ...]
    source: str


@functools.lru_cache(maxsize=1)
def efa_rdma_facts() -> EfaRdmaFacts:
    path = DATA_DIR / "efa_rdma.json"
    read = EntryReader(path, "efa_device_rdma", read_mapping(path, "efa_device_rdma"),
                        {"families": list, "source": str, "reason": str})
    return EfaRdmaFacts(tuple(read("families")), read("source"))


#: A container image reference: [registry[:port]/]repository[/path...][:tag][@sha256:digest] (the Docker/OCI
#: distribution reference grammar, lower-case repository components, tags of up to 128 characters). Anchored with
#: ``\Z``: ``$`` would also match before a trailing newline, and "image:tag\n" would be registered as an image.
_IMAGE_REFERENCE = re.compile(
    r"^(?:(?P<registry>[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::[0-9]+)?)/)?"
    r"(?P<repository>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@sha256:(?P<digest>[a-f0-9]{64}))?\Z")
#: A private ECR repository: <account>.dkr.ecr.<region>.amazonaws.com/<repository>
_ECR_REGISTRY = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?\Z")


def image_reference_problem(uri: object) -> str | None:
    """Why ``uri`` is not a container image reference (registry/repository:tag or @sha256:digest), or None."""
    if not isinstance(uri, str) or not uri.strip():
        return "must be a non-empty image reference such as public.ecr.aws/org/image:tag"
    if len(uri) > 255 or _IMAGE_REFERENCE.match(uri) is None:
        return "is not a valid image reference ([registry/]repository[:tag][@sha256:digest], lower-case repository)"
    return None


def ecr_repository(uri: str) -> tuple[str, str, str] | None:
    """(account, region, repository) when ``uri`` names a private ECR repository, else None."""
    found = _IMAGE_REFERENCE.match(uri)
    registry = _ECR_REGISTRY.match(found.group("registry") or "") if found else None
    return (registry.group("account"), registry.group("region"), found.group("repository")) if registry else None


def preset_task_problem(preset: WorkloadPreset, *, inference: bool, needed_by: str) -> str | None:
    """Why ``preset`` does not suit ``needed_by`` (an inference construct or flag when ``inference``, else a
    training one), or None. One home for the rule and its wording, shared by the constructs and the context
    flags: "is an inference preset; TrainingCluster needs a training or fine-tuning preset"."""
    if (preset.task == "inference") == inference:
        return None
    article = "an" if preset.task[0] in "aeiou" else "a"
    wanted = "an inference" if inference else "a training or fine-tuning"
    return f"is {article} {preset.task} preset; {needed_by} needs {wanted} preset"


def offering_problem(spec: InstanceSpec, region: str | None, az_id: str | None = None) -> str | None:
    """Why ``spec`` cannot run in ``region`` (or in its AZ ``az_id``), naming where it is offered, or None. One
    home for the region-offering rule of the constructs and the context flags. None when ``region`` is None."""
    if region is None:
        return None
    if not spec.offered_in(region):
        return (f"{spec.instance_type} is not offered in {region}; it is offered in "
                f"{', '.join(spec.regions) or 'no region in the catalog'}")
    if az_id is not None and az_id not in spec.offered_azs(region):
        return f"{spec.instance_type} is not offered in {az_id}; in {region} it is offered in {', '.join(spec.offered_azs(region))}"
    return None


def purchase_problem(option: object, spec: InstanceSpec) -> str | None:
    """Why purchase ``option`` cannot buy ``spec``, or None: one of PURCHASE_OPTIONS, and spot only where the
    type has spot capacity. Shared by the constructs, the context flags and preset files."""
    if option not in PURCHASE_OPTIONS:
        return f"must be one of {', '.join(PURCHASE_OPTIONS)}"
    if option != "on-demand" and not spec.spot_supported:
        return f"{spec.instance_type} cannot run on spot"
    return None


def engine_purchase_problem(engine: str, option: str, nodes: int) -> str | None:
    """Why ``engine`` cannot buy ``nodes`` nodes with purchase ``option``, or None. One home for the rule that
    the constructs and the context flags share."""
    if engine != "batch":
        return None
    if option == "mixed":
        return ("with engine='batch': a Batch compute environment is either spot or on-demand; use 'spot' "
                "(one node) or 'on-demand', or engine='nodes' for an on-demand base with spot above it")
    if option == "spot" and nodes > 1:
        return ("with engine='batch': AWS Batch runs multi-node parallel jobs on on-demand capacity only (Batch "
                "user guide, 'Multi-node parallel jobs'); use on-demand, one node for a spot job, or engine='nodes' "
                "for a spot Auto Scaling group")
    return None


def efa_device_rdma(spec: InstanceSpec) -> bool:
    """Whether libfabric may use the EFA device's RDMA (FI_EFA_USE_DEVICE_RDMA=1) on ``spec``."""
    return spec.efa_supported and spec.family in efa_rdma_facts().families


# --------------------------------------------------------------------------------------------
# Fallback compatibility (shared with the constructs)
# --------------------------------------------------------------------------------------------


def fallback_problem(primary: InstanceSpec, fallback: InstanceSpec, *, same_accelerator_model: bool) -> str | None:
    """Why ``fallback`` cannot stand in for ``primary`` in one Auto Scaling group, or None if it can.

    It must share the CPU architecture (one AMI), the accelerator kind and manufacturer (the same
    driver stack), the accelerator model when ``same_accelerator_model`` (collective training needs
    identical devices), and have at least the primary's accelerator memory (the model must still fit).
    """
    if not set(primary.architectures) & set(fallback.architectures):
        return f"it is {'/'.join(fallback.architectures)}, not {'/'.join(primary.architectures)}"
    a, b = primary.accelerator, fallback.accelerator
    if (a is None) != (b is None):
        return "one has an accelerator and the other does not"
    if a is None or b is None:
        return None if fallback.memory_mib >= primary.memory_mib else "it has less memory"
    if (a.kind, a.manufacturer) != (b.kind, b.manufacturer):
        return f"its accelerator is {b.manufacturer} {b.name}, not {a.manufacturer} {a.name}"
    if same_accelerator_model and a.name != b.name:
        return f"its accelerator is {b.name}, not {a.name}"
    if b.total_memory_gib < a.total_memory_gib:
        return f"it has {b.total_memory_gib:g} GiB of accelerator memory, less than {a.total_memory_gib:g} GiB"
    return None


# --------------------------------------------------------------------------------------------
# Presets
# --------------------------------------------------------------------------------------------

_PRESET_FIELDS: dict[str, tuple[type | tuple[type, ...], bool]] = {
    # field: (type, required)
    "description": (str, True),
    "task": (str, True),
    "instance_type": (str, True),
    "purchase_option": (str, True),
    "ami": (str, False),
    "source": (str, True),
    "reason": (str, True),
    "nodes": (int, False),
    "min_capacity": (int, False),
    "max_capacity": (int, False),
    "on_demand_base_capacity": (int, False),
    "fallback_instance_types": (list, False),
    "alarms": (dict, False),
}
_ALARM_FIELDS = {"low_utilization_percent", "low_utilization_hours", "high_memory_percent"}


def _preset(path: Path, name: str, entry: Any) -> WorkloadPreset:
    where = f"presets[{shown(name)}]"
    read = EntryReader(path, where, entry, _PRESET_FIELDS)
    values = {f: read(f, kind, ... if required else None) for f, (kind, required) in _PRESET_FIELDS.items()}
    task, purchase = values["task"], values["purchase_option"]
    if task not in PRESET_TASKS:
        raise read.error("task", f"is {shown(task)}; allowed: {', '.join(PRESET_TASKS)}")
    if purchase not in PURCHASE_OPTIONS:
        raise read.error("purchase_option", f"is {shown(purchase)}; allowed: {', '.join(PURCHASE_OPTIONS)}")
    try:
        spec = catalog.get(values["instance_type"])
    except ConfigurationError as exc:
        raise read.error("instance_type", f"is invalid: {exc}") from None
    if problem := purchase_problem(purchase, spec):
        raise read.error("purchase_option", f"is {shown(purchase)}, but {problem}")
    for number in ("nodes", "min_capacity", "max_capacity", "on_demand_base_capacity"):
        problem = bounds.number(number).problem(values[number], whole=True) if values[number] is not None else None
        if problem:  # the ranges the constructs' parameters have (data/bounds.json)
            raise read.error(number, f"is {shown(values[number])}; it {problem}")
    if task == "inference":
        for required in ("min_capacity", "max_capacity"):
            if values[required] is None:
                raise read.error(required, "is required for an inference preset")
        if values["min_capacity"] > values["max_capacity"]:
            raise read.error("min_capacity", f"({values['min_capacity']}) exceeds max_capacity ({values['max_capacity']})")
    fallbacks = []
    for fallback in values["fallback_instance_types"] or []:
        try:
            fallback_spec = catalog.get(fallback)
        except ConfigurationError as exc:
            raise read.error("fallback_instance_types", f"is invalid: {exc}") from None
        problem = fallback_problem(spec, fallback_spec, same_accelerator_model=task != "inference")
        if problem:
            raise read.error("fallback_instance_types",
                             f"lists {fallback}, which cannot replace {spec.instance_type}: {problem}")
        fallbacks.append(fallback)
    ami = values["ami"]
    if ami is None:
        ami = default_machine_image(spec).name
    elif ami not in machine_images() or machine_images()[ami].engine != "nodes":
        allowed = ", ".join(n for n, i in machine_images().items() if i.engine == "nodes")
        raise read.error("ami", f"is {shown(ami)}; allowed: {allowed}")
    elif problem := machine_images()[ami].problem_with(spec):
        raise read.error("ami", f"is {shown(ami)}, which cannot run {spec.instance_type}: {problem}")
    alarms = AlarmThresholds()
    if values["alarms"] is not None:
        alarm_read = EntryReader(path, f"{where}.alarms", values["alarms"], dict.fromkeys(_ALARM_FIELDS))
        given = {k: alarm_read(k, (int, float)) for k in values["alarms"]}
        for field_name, value in given.items():
            if problem := bounds.number(field_name).problem(value, whole=False):
                raise alarm_read.error(field_name, f"is {shown(value)}; it {problem}")
        alarms = AlarmThresholds(**given)
    return WorkloadPreset(
        name=name, description=values["description"], task=task, instance_type=spec.instance_type,
        purchase_option=purchase, ami=ami, source=values["source"], reason=values["reason"],
        nodes=values["nodes"] or 1, min_capacity=values["min_capacity"] if values["min_capacity"] is not None else 1,
        max_capacity=values["max_capacity"] if values["max_capacity"] is not None else 1,
        on_demand_base_capacity=values["on_demand_base_capacity"] or 0,
        fallback_instance_types=tuple(fallbacks), alarms=alarms,
    )


#: A preset name: what `-c preset=NAME` and `mlcdk presets show NAME` take.
_PRESET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def load_presets(path: Path) -> dict[str, WorkloadPreset]:
    """Read and check a preset file (JSON, or YAML by its .yaml/.yml suffix), within the limits of
    mlcdk.presets.datafile: no repeated or non-string names, a bounded size, depth and alias count."""
    path = Path(path)
    entries = read_mapping(path, "presets")
    for name in entries:
        if not _PRESET_NAME.fullmatch(name):
            raise datafile.error(path, f"presets: the name {shown(name)} must be 1 to 64 letters, digits, '.', '_' "
                                       "or '-', beginning with a letter or digit")
    return {name: _preset(path, name, entry) for name, entry in entries.items()}


@functools.lru_cache(maxsize=1)
def builtin_presets() -> Mapping[str, WorkloadPreset]:
    return MappingProxyType(load_presets(DATA_DIR / "presets.json"))


def all_presets(extra_file: Path | str | None = None) -> dict[str, WorkloadPreset]:
    """Built-in presets, plus those of ``extra_file``; a user preset may not reuse a built-in name."""
    presets = dict(builtin_presets())
    if extra_file is not None:
        for name, preset in load_presets(Path(extra_file)).items():
            if name in presets:
                raise ConfigurationError(
                    f"{extra_file}: presets[{name!r}]: a built-in preset already has this name; choose another")
            presets[name] = preset
    return presets


def get(name: str, extra_file: Path | str | None = None, parameter: str = "preset") -> WorkloadPreset:
    """The preset called ``name`` (ConfigurationError with close matches if unknown)."""
    presets = all_presets(extra_file)
    if name not in presets:
        raise unknown_name("preset", name, presets, parameter)
    return presets[name]
