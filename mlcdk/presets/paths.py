"""The path registry of a node: every mount point and volume a construct puts on a node (or in a Batch job's
container) is a :class:`Claim`, and :func:`check_claims` refuses any claim that breaks a path's syntax, lands on a
path that the OS, Docker, ECS, an AWS agent or mlcdk owns (``data/node_paths.json``, each with its source), or
collides with another claim (the same directory, or one inside the other: the later mount would hide the
earlier one, or the earlier one would hold the later one's mount point).

Pure Python (no aws_cdk). A construct lists its claims (the data volume, the shared file system, and what the
other option groups add: a model cache, a work directory) and calls ``check_claims`` once, before any resource
exists:

>>> from mlcdk.presets.paths import Claim, check_claims
>>> check_claims([Claim("/data", "storage.data_mount_point", "the data volume"),
...               Claim("/data", "shared_storage.mount_point", "the shared file system")])
Traceback (most recent call last):
...
mlcdk.errors.ConfigurationError: shared_storage.mount_point ('/data') is the same directory as storage.data_mount_point ('/data'), where the data volume is mounted: each mount needs its own directory, neither inside the other
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from mlcdk.errors import ConfigurationError, shown
from mlcdk.presets import datafile
from mlcdk.presets.datafile import DATA_DIR

DATA_FILE = DATA_DIR / "node_paths.json"
#: Letters, digits, '.', '_', '-' and '/': safe unquoted in an fstab line and in a shell command. Each component
#: starts with '/' and holds none, so the match is linear.
_PATH = re.compile(r"(?:/[A-Za-z0-9._-]{1,255})+")
#: Linux's PATH_MAX.
MAX_PATH = 4096


@dataclass(frozen=True)
class Claim:
    """One path a construct puts on a node: where, which parameter chose it, and what is mounted there."""

    path: str
    parameter: str
    what: str


@dataclass(frozen=True)
class Owned:
    path: str
    owner: str
    reason: str
    source: str
    whole_tree: bool  #: True: nothing at, inside or above it; False: nothing at it only


@functools.cache
def owned_paths() -> Mapping[str, Owned]:
    """Every owned path of the data file, by path."""
    with datafile.reading(DATA_FILE):
        document = datafile.read_document(DATA_FILE)
        found = {}
        for section, whole in (("owned", True), ("content", False)):
            for path, entry in document[section].items():
                found[path] = Owned(path, entry["owner"], entry["reason"], entry["source"], whole)
        return MappingProxyType(found)


def _inside(path: str, parent: str) -> bool:
    return path.startswith(parent + "/")


def path_problem(path: object) -> str | None:
    """Why ``path`` cannot be a mount point (or volume path) on a node, or None."""
    allowed = ("must be an absolute path of letters, digits, '.', '_', '-' and '/' (no spaces, quotes or shell "
               "characters, no trailing '/'), such as /data")
    if path == "/":
        return "must not be / (the root file system); choose a directory such as /data"
    if not isinstance(path, str) or len(path) > MAX_PATH or not _PATH.fullmatch(path):
        return allowed
    if any(part in (".", "..") for part in path.split("/")[1:]):
        return "must not contain '.' or '..' components; give the plain absolute path, such as /data"
    for owned in owned_paths().values():
        if path == owned.path or (owned.whole_tree and _inside(path, owned.path)):
            where = "is" if path == owned.path else f"lies inside {owned.path}, which is"
            return f"{where} owned by {owned.owner} ({owned.reason}); choose another directory, such as /data"
        if owned.whole_tree and _inside(owned.path, path):
            return (f"would hide {owned.path}, owned by {owned.owner} ({owned.reason}); choose another directory, "
                    "such as /data")
    return None


def check_claims(claims: Iterable[Claim]) -> None:
    """ConfigurationError for the first claim that :func:`path_problem` refuses, or that collides with an
    earlier claim (the same directory, or one inside the other)."""
    seen: list[Claim] = []
    for claim in claims:
        problem = path_problem(claim.path)
        if problem:
            raise ConfigurationError(f"{claim.parameter} ({shown(claim.path)}) {problem}")
        for other in seen:
            if claim.path == other.path:
                relation = "is the same directory as"
            elif _inside(claim.path, other.path):
                relation = "lies inside"
            elif _inside(other.path, claim.path):
                relation = "holds"
            else:
                continue
            raise ConfigurationError(
                f"{claim.parameter} ({claim.path!r}) {relation} {other.parameter} ({other.path!r}), where "
                f"{other.what} is mounted: each mount needs its own directory, neither inside the other")
        seen.append(claim)
