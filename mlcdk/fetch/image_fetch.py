"""Fetch the AWS Deep Learning Container lists from GitHub into saved copies (``mlcdk images refresh``).

This module only downloads; :mod:`mlcdk.fetch.image_lists` reads a saved copy and never touches the network,
so the bundled image choices are rebuilt and tested offline from ``data/image_lists/``.

The two lists, as their publishers keep them:

- ``dlc``: aws/deep-learning-containers. Its "Available Images" page
  (https://aws.github.io/deep-learning-containers/reference/available_images/) is generated from one YAML file
  per image under ``docs/src/data/<repository>/`` (``docs/src/templates/reference/available_images.template.md``);
  those files carry the tags, the CUDA version, and the GA and end-of-patch dates. The copy keeps the
  repositories in :data:`DLC_REPOSITORIES`.
- ``neuron-dlc``: aws-neuron/deep-learning-containers. Its ``README.md`` tables list every Neuron DLC with its
  Neuron SDK version, supported EC2 instance types and ECR Public URL.

A saved copy is one JSON document: the repository, the commit read, that commit's date, and the text of every
file read, by path. Standard library only (urllib).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: GET a URL, return its body (tests pass a function that serves a saved copy instead of the network).
Getter = Callable[[str], bytes]

API = "https://api.github.com/repos"
RAW = "https://raw.githubusercontent.com"
#: The DLC repositories kept in the saved copy: the PyTorch training images (pytorch from 2.11, pytorch-training
#: before it) and the vLLM serving images (vllm on Ubuntu, vllm-server on Amazon Linux 2023).
DLC_REPOSITORIES = ("pytorch", "pytorch-training", "vllm", "vllm-server")


@dataclass(frozen=True)
class ListSource:
    """Where one list lives: a GitHub repository and branch, and the directories or files that make the list."""

    name: str
    repository: str
    branch: str
    directories: tuple[str, ...] = ()
    files: tuple[str, ...] = ()


LISTS: Mapping[str, ListSource] = {
    "dlc": ListSource("dlc", "aws/deep-learning-containers", "main",
                      directories=tuple(f"docs/src/data/{name}" for name in DLC_REPOSITORIES)),
    "neuron-dlc": ListSource("neuron-dlc", "aws-neuron/deep-learning-containers", "main", files=("README.md",)),
}


def http_get(url: str) -> bytes:
    """GET ``url`` over HTTPS (GitHub's API answers unauthenticated calls, 60 an hour)."""
    request = urllib.request.Request(url, headers={"User-Agent": "mlcdk-images-refresh",
                                                   "Accept": "application/vnd.github+json"})
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - fixed https URLs
        return response.read()


def _json(get: Getter, url: str) -> Any:
    return json.loads(get(url).decode("utf-8"))


def fetch_list(source: ListSource, get: Getter = http_get) -> dict[str, Any]:
    """The saved copy of one list: the branch's newest commit, and every file of ``source`` at that commit."""
    head = _json(get, f"{API}/{source.repository}/commits/{source.branch}")
    commit, date = head["sha"], head["commit"]["committer"]["date"][:10]
    paths = list(source.files)
    for directory in source.directories:
        listing = _json(get, f"{API}/{source.repository}/contents/{directory}?ref={commit}")
        paths += sorted(entry["path"] for entry in listing if entry.get("type") == "file"
                        and entry["path"].endswith((".yml", ".yaml")))
    files = {path: get(f"{RAW}/{source.repository}/{commit}/{path}").decode("utf-8") for path in paths}
    return {"list": source.name, "repository": source.repository, "branch": source.branch, "commit": commit,
            "committed": date, "files": files}


def fetch_lists(names: Iterable[str] = tuple(LISTS), get: Getter = http_get) -> dict[str, dict[str, Any]]:
    """Saved copies of the named lists (default: both), by list name."""
    return {name: fetch_list(LISTS[name], get) for name in names}
