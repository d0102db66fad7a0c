"""Container images: the default AWS Deep Learning Containers, and whether an image can drive an accelerator.

Pure Python (no aws_cdk). The images come from ``data/containers.json``, which :mod:`mlcdk.fetch.image_lists`
generates from the published DLC lists (``mlcdk images refresh``); what each accelerator needs comes from
``data/accelerator_software.json``. ``MLCDK_IMAGES`` names another containers.json (one that ``mlcdk images
refresh`` wrote) to read instead of the bundled one.

The rule (:func:`image_problem`): an image drives an instance type when it is built for the type's CPU
architecture and accelerator kind, and

- NVIDIA: the image's CUDA is at least the first CUDA that targets the GPU's architecture (Blackwell B200: 12.8,
  B300: 12.9), and at most the last CUDA whose PyTorch builds still carry it (Volta V100: 12.6);
- Neuron: the image is torch-neuronx for NeuronCore v2 and later (torch-neuron for Inf1), its Neuron SDK is at
  least the first that supports the generation (Inf2: 2.8.0, Trn1: 2.3.0, Trn2: 2.21.0), and, where the Neuron
  DLC list names the instance families an image supports, the type's family is one of them.

An image reference that a user passes is inspected through its tag when it follows the DLC convention
(``...-cu128-...``, ``...-neuronx-...-sdk2.21.0-...``); other references cannot be inspected.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from mlcdk.errors import ConfigurationError
from mlcdk.presets import datafile
from mlcdk.presets.catalog import DATA_DIR, InstanceSpec
from mlcdk.presets.datafile import EntryReader, read_mapping

#: The environment variable naming a refreshed containers.json to read instead of the bundled one.
IMAGES_ENV = "MLCDK_IMAGES"


def version_key(text: str | None) -> tuple[int, ...]:
    """"2.13" -> (2, 13); "0.24.0.1.1.0" -> (0, 24, 0, 1, 1, 0); None -> ()."""
    return tuple(int(part) for part in re.findall(r"\d+", text or ""))


def cuda_version(token: str | None) -> str | None:
    """The CUDA version a DLC tag part or ``cuda`` field names: "cu133" -> "13.3", "cu124" -> "12.4"."""
    found = re.fullmatch(r"cu(\d+)(\d)", token or "")
    return f"{int(found.group(1))}.{found.group(2)}" if found else None


@dataclass(frozen=True)
class ContainerImage:
    """A container image and what it was built with; ``source`` names the list entry it came from."""

    name: str
    uri: str
    role: str = "training"  #: "training" or "serving"
    kind: str = "gpu"  #: the catalog's accelerator kind: gpu, neuron or none (CPU)
    architecture: str | None = "x86_64"  #: None: unknown (an image a user passes)
    framework: str | None = None
    framework_version: str | None = None
    cuda: str | None = None  #: "13.3"
    neuron_sdk: str | None = None  #: "2.30.0"
    neuron_flavor: str | None = None  #: "neuronx" (torch-neuronx) or "neuron" (torch-neuron, Inf1)
    neuron_instances: tuple[str, ...] = ()  #: families the Neuron DLC list says it supports; () unknown
    released: str | None = None
    end_of_patch: str | None = None
    source: str = ""
    reason: str = ""

    @property
    def describe(self) -> str:
        """"PyTorch 2.13 with CUDA 13.3", "PyTorch 2.9.0 with Neuron SDK 2.30.0"."""
        what = " ".join(filter(None, (self.framework, self.framework_version))) or self.uri
        build = f"CUDA {self.cuda}" if self.cuda else f"Neuron SDK {self.neuron_sdk}" if self.neuron_sdk else None
        return f"{what} with {build}" if build else what


@dataclass(frozen=True)
class CudaNeeds:
    """What an NVIDIA GPU needs of an image's CUDA."""

    gpu: str
    compute_capability: str
    architecture: str
    minimum_cuda: str
    maximum_cuda: str | None
    source: str


@dataclass(frozen=True)
class NeuronNeeds:
    """What a Neuron generation needs of an image."""

    accelerator: str
    instances: str  #: the family name the Neuron DLC list uses: trn1, trn2, inf2, inf1
    flavor: str
    minimum_sdk: str | None
    source: str


@dataclass(frozen=True)
class SoftwareFacts:
    cuda: Mapping[str, CudaNeeds]
    neuron: Mapping[str, NeuronNeeds]
    cuda_driver: Mapping[str, int]  #: CUDA major version -> the oldest NVIDIA driver release it runs on
    host_driver: int  #: the NVIDIA driver major version of the ECS GPU AMI (Batch's ECS_AL2023_NVIDIA) the containers run on


@functools.lru_cache(maxsize=1)
def software_facts() -> SoftwareFacts:
    path = DATA_DIR / "accelerator_software.json"
    cuda, neuron = {}, {}
    for name, entry in read_mapping(path, "nvidia").items():
        read = EntryReader(path, f"nvidia[{name!r}]", entry, dict.fromkeys(
            ("compute_capability", "architecture", "minimum_cuda", "maximum_cuda", "source", "reason")))
        cuda[name] = CudaNeeds(name, read("compute_capability", str), read("architecture", str),
                               read("minimum_cuda", str), read("maximum_cuda", (str, type(None))), read("source", str))
    for name, entry in read_mapping(path, "neuron").items():
        read = EntryReader(path, f"neuron[{name!r}]", entry, dict.fromkeys(
            ("instances", "flavor", "minimum_sdk", "source", "reason")))
        neuron[name] = NeuronNeeds(name, read("instances", str), read("flavor", str),
                                   read("minimum_sdk", (str, type(None))), read("source", str))
    drivers = {major: EntryReader(path, f"cuda_driver[{major!r}]", entry, dict.fromkeys(
        ("minimum_driver", "source", "reason")))("minimum_driver", int)
        for major, entry in read_mapping(path, "cuda_driver").items()}
    host = read_mapping(path, "host_driver").get("ECS_AL2023_NVIDIA")
    host_major = EntryReader(path, "host_driver['ECS_AL2023_NVIDIA']", host, dict.fromkeys(
        ("driver_major", "source", "reason")))("driver_major", int)
    return SoftwareFacts(MappingProxyType(cuda), MappingProxyType(neuron), MappingProxyType(drivers), host_major)


# --------------------------------------------------------------------------------------------
# The bundled images
# --------------------------------------------------------------------------------------------

IMAGE_FIELDS = ("name", "role", "kind", "architecture", "uri", "framework", "framework_version", "cuda",
                "neuron_sdk", "neuron_instances", "released", "end_of_patch", "source", "choice_source", "reason")


@dataclass(frozen=True)
class ImageBook:
    """containers.json, read: the images in order of preference, and the lists they came from."""

    images: tuple[ContainerImage, ...]
    lists: Mapping[str, Mapping[str, str]]  #: list name -> repository, commit, committed (date)
    path: Path


def images_path() -> Path:
    return Path(os.environ[IMAGES_ENV]) if os.environ.get(IMAGES_ENV) else DATA_DIR / "containers.json"


def _image(path: Path, index: int, entry: Any) -> ContainerImage:
    read = EntryReader(path, f"images[{index}]", entry, dict.fromkeys(IMAGE_FIELDS))
    values = {field: read(field) for field in IMAGE_FIELDS if field != "choice_source"}
    values["neuron_instances"] = tuple(values["neuron_instances"] or ())
    flavor = "neuronx" if "neuronx" in values["uri"] else "neuron" if values["kind"] == "neuron" else None
    return ContainerImage(neuron_flavor=flavor, **values)


@functools.lru_cache(maxsize=4)
def _book(path: Path) -> ImageBook:
    document = datafile.read_document(path, datafile.DATA_FILE)
    entries = document.get("images") if isinstance(document, dict) else None
    lists = document.get("lists") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not isinstance(lists, dict):
        raise datafile.error(path, "not a containers.json from `mlcdk images refresh` (no 'images' list and 'lists' "
                                   "mapping)")
    return ImageBook(tuple(_image(path, i, e) for i, e in enumerate(entries)), MappingProxyType(lists), path)


def book() -> ImageBook:
    """The images: ``MLCDK_IMAGES``'s file when set, else the bundled data/containers.json."""
    return _book(images_path())


# --------------------------------------------------------------------------------------------
# The rule
# --------------------------------------------------------------------------------------------


def _kind(spec: InstanceSpec) -> str:
    return spec.accelerator.kind if spec.accelerator else "none"


def _cuda_problem(image: ContainerImage, spec: InstanceSpec) -> str | None:
    gpu = spec.accelerator
    if gpu.manufacturer != "NVIDIA":
        return f"it is a CUDA image, and {spec.instance_type} has {gpu.manufacturer} {gpu.name} GPUs"
    needs = software_facts().cuda.get(gpu.name)
    if needs is None:
        return f"mlcdk has no CUDA facts for the {gpu.name} (data/accelerator_software.json)"
    if image.cuda is None:
        return "it carries no CUDA version"
    arch = f"{gpu.name} ({needs.architecture}, compute capability {needs.compute_capability})"
    if version_key(image.cuda) < version_key(needs.minimum_cuda):
        return f"it has CUDA {image.cuda}, and the {arch} needs CUDA {needs.minimum_cuda} or later"
    if needs.maximum_cuda and version_key(image.cuda) > version_key(needs.maximum_cuda):
        return (f"it has CUDA {image.cuda}, and PyTorch builds for CUDA above {needs.maximum_cuda} no longer carry "
                f"the {arch}")
    return _driver_problem(image.cuda)


def _driver_problem(cuda: str) -> str | None:
    """The container uses the host's NVIDIA driver: CUDA X.y runs on the oldest driver release of the X family or
    newer (NVIDIA, minor version compatibility), and the ECS GPU AMI installs one driver major version only."""
    facts = software_facts()
    major = cuda.split(".")[0]
    minimum = facts.cuda_driver.get(major)
    host = f"the ECS GPU AMI the containers run on installs driver r{facts.host_driver} (data/accelerator_software.json)"
    if minimum is None:
        return f"it has CUDA {cuda}, mlcdk knows no NVIDIA driver release that runs CUDA {major}, and {host}"
    if minimum > facts.host_driver:
        return f"it has CUDA {cuda}, which needs NVIDIA driver r{minimum} or newer, and {host}"
    return None


def _neuron_problem(image: ContainerImage, spec: InstanceSpec) -> str | None:
    device = spec.accelerator
    needs = software_facts().neuron.get(device.name)
    if needs is None:
        return f"mlcdk has no Neuron facts for {device.name} (data/accelerator_software.json)"
    if image.neuron_flavor is not None and image.neuron_flavor != needs.flavor:
        return f"it is a {image.neuron_flavor} image, and {device.name} ({needs.instances}) needs {needs.flavor}"
    if needs.minimum_sdk and version_key(image.neuron_sdk) < version_key(needs.minimum_sdk):
        have = f"Neuron SDK {image.neuron_sdk}" if image.neuron_sdk else "no known Neuron SDK"
        return f"it has {have}, and {device.name} ({needs.instances}) needs Neuron SDK {needs.minimum_sdk} or later"
    if image.neuron_instances and needs.instances not in image.neuron_instances:
        return (f"the Neuron DLC list supports it on {', '.join(image.neuron_instances)} only, not "
                f"{needs.instances} ({device.name})")
    return None


def image_problem(image: ContainerImage, spec: InstanceSpec) -> str | None:
    """Why ``image`` cannot drive ``spec``'s accelerator, or None when it can."""
    kind = _kind(spec)
    if image.architecture is not None and image.architecture not in spec.architectures:
        return f"it is built for {image.architecture}, and {spec.instance_type} is {'/'.join(spec.architectures)}"
    if image.kind != kind:
        return f"it is for {image.kind} instances, and {spec.instance_type} is {kind}"
    if kind == "gpu":
        return _cuda_problem(image, spec)
    if kind == "neuron":
        return _neuron_problem(image, spec)
    return None


def default_image(specs: Sequence[InstanceSpec], role: str = "training", parameter: str = "job.image") -> ContainerImage:
    """The first image of ``role`` that drives every type of ``specs`` (a primary type and its fallbacks).

    ConfigurationError naming each candidate's problem, and ``parameter``, when there is none."""
    candidates = [image for image in book().images if image.role == role]
    problems = []
    for image in candidates:
        found = [(spec, image_problem(image, spec)) for spec in specs]
        if all(problem is None for _, problem in found):
            return image
        spec, problem = next((s, p) for s, p in found if p is not None)
        if image.kind == _kind(spec):
            problems.append(f"{image.uri} cannot drive {spec.instance_type}: {problem}")
    names = ", ".join(spec.instance_type for spec in specs)
    detail = "; ".join(problems) or f"there is none for {_kind(specs[0])} instances"
    raise ConfigurationError(f"instance_type: no default {role} image drives {names}: {detail}. Pass "
                             f"{parameter} with an image built for it (see `mlcdk images list`)")


# --------------------------------------------------------------------------------------------
# Images users pass
# --------------------------------------------------------------------------------------------

_CUDA_TAG = re.compile(r"(?:^|[-_.])(cu\d{2,3})(?=$|[-_.])")
_SDK_TAG = re.compile(r"(?:^|-)sdk(\d+\.\d+(?:\.\d+)?)(?=$|-)")


def inspect_reference(uri: str) -> ContainerImage | None:
    """What a reference's tag says it was built with, when it follows the DLC tag convention
    (``2.5.1-gpu-py311-cu124-ubuntu22.04-ec2``: CUDA 12.4; ``2.1.2-neuronx-py310-sdk2.18.2-ubuntu20.04``: Neuron
    SDK 2.18.2), else None: the image cannot be inspected. The CPU architecture stays unknown."""
    repository, _, tag = uri.split("@")[0].rpartition(":")
    if not repository or "/" in tag:
        return None
    if (cuda := _CUDA_TAG.search(tag)) is not None:
        return ContainerImage(name="given", uri=uri, kind="gpu", architecture=None, cuda=cuda_version(cuda.group(1)),
                              source="its tag")
    if (sdk := _SDK_TAG.search(tag)) is not None:
        flavor = "neuronx" if "neuronx" in uri else "neuron" if re.search(r"(?:^|-)neuron(?:-|$)", tag) else None
        return ContainerImage(name="given", uri=uri, kind="neuron", architecture=None, neuron_sdk=sdk.group(1),
                              neuron_flavor=flavor, source="its tag")
    return None


def given_image_problem(uri: str, specs: Sequence[InstanceSpec]) -> tuple[bool, str | None]:
    """(inspected, problem) for an image a user passes: whether its tag told its CUDA or Neuron SDK, and if so
    why it cannot drive one of ``specs`` (None when it can)."""
    image = inspect_reference(uri)
    if image is None:
        return False, None
    for spec in specs:
        if (problem := image_problem(image, spec)) is not None:
            return True, f"{spec.instance_type}: {problem}"
    return True, None


def needs_of(spec: InstanceSpec) -> str:
    """What an image must carry to drive ``spec``, in words, for warnings: "CUDA 12.8 or later (B200)"."""
    acc = spec.accelerator
    if acc is None or acc.kind not in ("gpu", "neuron"):
        return f"a {'/'.join(spec.architectures)} build"
    if acc.kind == "gpu":
        needs = software_facts().cuda.get(acc.name)
        if needs is None:
            return f"a CUDA build for the {acc.name}"
        upper = f" and at most {needs.maximum_cuda}" if needs.maximum_cuda else ""
        return f"CUDA {needs.minimum_cuda} or later{upper} ({acc.name}, compute capability {needs.compute_capability})"
    needs = software_facts().neuron.get(acc.name)
    if needs is None:
        return f"a Neuron build for {acc.name}"
    sdk = f" from Neuron SDK {needs.minimum_sdk}" if needs.minimum_sdk else ""
    return f"torch-{needs.flavor}{sdk} ({acc.name}, {needs.instances})"
