"""Read saved copies of the AWS Deep Learning Container lists and build ``data/containers.json`` from them.

Offline and deterministic: the inputs are ``data/image_choices.json`` (hand-curated: which repository and
variant each default image comes from, with a source and a reason) and the saved copies that
:mod:`mlcdk.fetch.image_fetch` writes (``data/image_lists/<list>.json``). For every choice, the newest listed
image that matches it and is still in patch support on the list's date is taken, and stamped with the list
entry's own provenance: the file and commit it came from, its framework, CUDA or Neuron SDK version, and its
GA and end-of-patch dates where the list gives them. The output is canonical JSON, so that the committed file
is exactly what :func:`build` produces from the committed inputs (a test rebuilds it and compares bytes).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlcdk.errors import ConfigurationError
from mlcdk.presets import datafile, yaml_loader
from mlcdk.presets.catalog import DATA_DIR
from mlcdk.presets.images import cuda_version, version_key

LISTS_DIR = DATA_DIR / "image_lists"
CHOICES = DATA_DIR / "image_choices.json"
CONTAINERS = DATA_DIR / "containers.json"
#: The catalog's accelerator kinds an image can be for (the DLC lists say gpu, cpu or neuronx).
KINDS = {"gpu": "gpu", "cpu": "none", "neuronx": "neuron"}
ROLES = ("training", "serving")
#: Where the DLC list's images are published on ECR Public (its docs/src/data files say public_registry: true).
DLC_PUBLIC_REGISTRY = "public.ecr.aws/deep-learning-containers"


@dataclass(frozen=True)
class ListedImage:
    """One image as a list gives it."""

    list: str  #: "dlc" or "neuron-dlc"
    repository: str  #: e.g. "pytorch", "pytorch-training-neuronx"
    uri: str | None  #: None when the list names no public registry for it
    kind: str  #: the catalog's accelerator kind: gpu, neuron or none
    framework: str
    framework_version: str
    platform: str | None  #: "ec2" or "sagemaker" (DLC list only)
    operating_system: str | None
    cuda: str | None  #: "13.3"
    neuron_sdk: str | None  #: "2.30.0"
    neuron_instances: tuple[str, ...]  #: "Supported EC2 Instance Types" of the Neuron list, e.g. ("inf2", "trn1")
    released: str | None  #: GA date
    end_of_patch: str | None
    source: str  #: the list file, at the commit read


def _blob(copy: Mapping[str, Any], path: str) -> str:
    return f"https://github.com/{copy['repository']}/blob/{copy['commit']}/{path}"


def dlc_images(copy: Mapping[str, Any]) -> list[ListedImage]:
    """The images of a saved DLC list (one YAML file per image under docs/src/data/<repository>/)."""
    found = []
    for path, text in sorted(copy["files"].items()):
        try:  # the one YAML loader, within a preset file's limits (a list file is a few hundred bytes)
            entry = yaml_loader.load(text, datafile.PRESET_FILE)
        except ValueError as exc:  # yaml_loader.Refused; yaml.YAMLError is not a ValueError
            raise ConfigurationError(f"the saved DLC list's {path}: {exc}") from None
        except Exception as exc:
            raise ConfigurationError(f"the saved DLC list's {path}: not valid YAML: {exc}") from None
        repository = path.split("/")[-2]
        tags = entry.get("tags") or []
        public = bool(entry.get("public_registry")) and bool(tags)
        registry_repository = entry.get("ecr_repository") or repository  # vllm-server images live in "vllm"
        found.append(ListedImage(
            list="dlc", repository=repository,
            uri=f"{DLC_PUBLIC_REGISTRY}/{registry_repository}:{tags[0]}" if public else None,
            kind=KINDS.get(str(entry.get("accelerator")), "other"), framework=str(entry.get("framework")),
            framework_version=str(entry.get("version")), platform=entry.get("platform"),
            operating_system=entry.get("os"), cuda=cuda_version(entry.get("cuda")), neuron_sdk=entry.get("sdk"),
            neuron_instances=(), released=entry.get("ga"), end_of_patch=entry.get("eop"), source=_blob(copy, path)))
    return found


_SECTION = re.compile(r"^### (\S+)\s*$")


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def neuron_images(copy: Mapping[str, Any]) -> list[ListedImage]:
    """The images of the saved Neuron DLC list: the README's table under each ``### <repository>`` heading."""
    found, repository, header = [], None, None
    for line in copy["files"]["README.md"].splitlines():
        if (section := _SECTION.match(line)) is not None:
            repository, header = section.group(1), None
        elif repository and line.startswith("|") and not set(line) <= set("|-: "):
            cells = _cells(line)
            if header is None:
                header = cells
                continue
            row = dict(zip(header, cells))
            framework = re.match(r"\[?([A-Za-z]+) ([0-9][0-9.]*)", row["Framework"])
            found.append(ListedImage(
                list="neuron-dlc", repository=repository, uri=row["ECR Public URL"], kind="neuron",
                framework=framework.group(1), framework_version=framework.group(2), platform=None,
                operating_system=(re.search(r"(ubuntu[0-9.]+)$", row["ECR Public URL"]) or [None, None])[1],
                cuda=None, neuron_sdk=row["Neuron SDK Version"].replace("Neuron", "").strip(),
                neuron_instances=tuple(sorted(i.strip() for i in row["Supported EC2 Instance Types"].split(","))),
                released=None, end_of_patch=None, source=_blob(copy, "README.md") + f" ({repository})"))
    return found


PARSERS = {"dlc": dlc_images, "neuron-dlc": neuron_images}
#: What image_fetch writes into a saved copy.
COPY_FIELDS = ("list", "repository", "branch", "commit", "committed", "files")


def load_copies(directory: Path = LISTS_DIR) -> dict[str, dict[str, Any]]:
    """The saved copies in ``directory``, by list name."""
    copies = {}
    for name in PARSERS:
        path = Path(directory) / f"{name}.json"
        copy = datafile.read_document(path, datafile.DATA_FILE)
        missing = [key for key in COPY_FIELDS if not isinstance(copy, dict) or key not in copy]
        if missing:
            raise datafile.error(path, f"not a saved {name} list: it lacks {', '.join(missing)}; fetch it again with "
                                       "`mlcdk images refresh`")
        copies[name] = copy
    return copies


@dataclass(frozen=True)
class Choice:
    """Which list entry one default image comes from (an entry of data/image_choices.json)."""

    name: str
    role: str
    kind: str
    architecture: str
    list: str
    repository: str
    match: Mapping[str, Any]
    source: str
    reason: str

    def accepts(self, image: ListedImage) -> bool:
        if (image.list, image.repository, image.kind) != (self.list, self.repository, self.kind):
            return False
        for field, wanted in self.match.items():
            value = getattr(image, field)
            if field == "neuron_instances" and not set(wanted) <= set(value):
                return False
            if field != "neuron_instances" and value != wanted:
                return False
        return True


CHOICE_FIELDS = ("name", "role", "kind", "architecture", "list", "repository", "match", "source", "reason")
MATCH_FIELDS = ("platform", "operating_system", "neuron_instances")


def load_choices(path: Path = CHOICES) -> list[Choice]:
    document = datafile.read_document(path)
    entries = document.get("choices") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise datafile.error(path, "expected a top-level 'choices' list")
    choices = []
    for index, entry in enumerate(entries):
        where = f"{path}: choices[{index}]"
        if not isinstance(entry, dict) or sorted(entry) != sorted(CHOICE_FIELDS):
            raise ConfigurationError(f"{where}: expected exactly the fields {', '.join(CHOICE_FIELDS)}")
        problems = [(entry["role"] not in ROLES, f"role {entry['role']!r} is not one of {', '.join(ROLES)}"),
                    (entry["list"] not in PARSERS, f"list {entry['list']!r} is not one of {', '.join(PARSERS)}"),
                    (not set(entry["match"]) <= set(MATCH_FIELDS),
                     f"match may name only {', '.join(MATCH_FIELDS)}")]
        for bad, message in problems:
            if bad:
                raise ConfigurationError(f"{where}: {message}")
        choices.append(Choice(**{**entry, "match": dict(entry["match"])}))
    return choices


def pick(choice: Choice, listed: Sequence[ListedImage], on: str) -> ListedImage:
    """The newest image ``choice`` accepts that has a public URI and is in patch support on date ``on``."""
    candidates = [i for i in listed if choice.accepts(i) and i.uri
                  and (i.end_of_patch is None or str(i.end_of_patch) >= on)]
    if not candidates:
        raise ConfigurationError(f"image choice {choice.name!r}: no image of {choice.list} repository "
                                 f"{choice.repository} matches {dict(choice.match)} and is in patch support on {on}")
    return max(candidates, key=lambda i: (version_key(i.framework_version), version_key(i.neuron_sdk),
                                          version_key(i.cuda)))


def build(choices: Sequence[Choice], copies: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """containers.json's document: one image per choice, in the choices' order (the order of preference)."""
    listed = {name: PARSERS[name](copy) for name, copy in copies.items()}
    images = []
    for choice in choices:
        copy = copies[choice.list]
        image = pick(choice, listed[choice.list], copy["committed"])
        images.append({
            "name": choice.name, "role": choice.role, "kind": choice.kind, "architecture": choice.architecture,
            "uri": image.uri, "framework": image.framework, "framework_version": image.framework_version,
            "cuda": image.cuda, "neuron_sdk": image.neuron_sdk, "neuron_instances": list(image.neuron_instances),
            "released": None if image.released is None else str(image.released),
            "end_of_patch": None if image.end_of_patch is None else str(image.end_of_patch),
            "source": image.source, "choice_source": choice.source, "reason": choice.reason})
    return {
        "description": "Generated by `mlcdk images refresh` from image_choices.json and the saved lists in "
                       "image_lists/; do not edit by hand.",
        "lists": {name: {"repository": copy["repository"], "commit": copy["commit"], "committed": copy["committed"]}
                  for name, copy in sorted(copies.items())},
        "images": images,
    }
