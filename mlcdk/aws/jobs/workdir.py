"""``mlcdk submit --workdir DIR``: pack a directory, and upload the pack under the cluster's bucket by its SHA-256.

What goes in:

- DIR inside a git work tree: the files git tracks under DIR (``git ls-files``), as they are on disk, uncommitted
  changes included. Untracked files are left out, and said so (``git add`` them to send them).
- any other DIR: every file under it, except :data:`EXCLUDED_DIRS`, :data:`EXCLUDED_SUFFIXES` and
  :data:`EXCLUDED_NAMES` (caches, virtual environments, version control).

A symbolic link is packed as the file it points to; one to a folder, or to nothing, is left out and said so. The
files may hold at most ``mlcdk.launch.WORKDIR_MAX_BYTES`` (100 MiB) before compression: a workdir is code and
configuration; data belongs in S3 or on the shared file system. The pack is a gzip-compressed tar with fixed times,
owners and modes (0644, or 0755 for executables), in name order, so the same files give the same bytes and the same
SHA-256: it is uploaded once, to ``s3://<bucket>/mlcdk/workdirs/<sha256>.tar.gz``, and every node's launcher
fetches it with the job role's credentials, checks the SHA-256 and unpacks it into the container's working
directory (mlcdk.launch.fetch_workdir; exit code 4 when that fails). Packs stay in the bucket until removed
(``aws s3 rm --recursive s3://<bucket>/mlcdk/workdirs/``).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlcdk.aws.jobs.aws import JobsError, error_code
from mlcdk.launch import WORKDIR_ENV, WORKDIR_MAX_BYTES

EXCLUDED_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", ".venv", "venv", "node_modules",
                           ".ipynb_checkpoints", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".tox", "cdk.out"})
EXCLUDED_SUFFIXES = (".pyc", ".pyo")
EXCLUDED_NAMES = frozenset({".DS_Store"})
#: A workdir of more files than this is not code: it is refused before reading them.
MAX_FILES = 20_000
PREFIX = "mlcdk/workdirs/"
GIT_TIMEOUT_S = 30


@dataclass(frozen=True)
class Pack:
    """A packed work directory: the tar.gz bytes, their SHA-256, and what went in or was left out."""

    directory: Path
    source: str  #: "git" (the files git tracks) or "directory" (every file but the excludes)
    files: int
    size: int  #: bytes of the files, before compression
    data: bytes
    digest: str
    left_out: tuple[str, ...] = ()  #: notes on files left out (untracked, links to folders)

    @property
    def key(self) -> str:
        return f"{PREFIX}{self.digest}.tar.gz"


def _size(count: int) -> str:
    return f"{count / 1024 / 1024:,.1f} MiB" if count >= 1024 * 1024 else f"{count:,} bytes"


def _git_files(directory: Path) -> tuple[list[str], int] | None:
    """(tracked files, untracked files) under ``directory`` when it is in a git work tree, else None."""
    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(directory), *args], capture_output=True, timeout=GIT_TIMEOUT_S)
    try:
        inside = git("rev-parse", "--is-inside-work-tree")
    except (OSError, subprocess.TimeoutExpired):  # no git here: a plain directory
        return None
    if inside.returncode != 0 or inside.stdout.strip() != b"true":
        return None
    tracked, untracked = git("ls-files", "-z", "--cached"), git("ls-files", "-z", "--others", "--exclude-standard")
    if tracked.returncode != 0:
        raise JobsError(f"--workdir {directory}: git ls-files failed: {tracked.stderr.decode(errors='replace').strip()}")
    names = sorted({os.fsdecode(name) for name in tracked.stdout.split(b"\0") if name})
    return names, len([name for name in untracked.stdout.split(b"\0") if name])


def _walk(directory: Path) -> list[str]:
    found = []
    for root, folders, files in os.walk(directory):
        relative = Path(root).relative_to(directory)
        links = [f for f in folders if os.path.islink(os.path.join(root, f))]  # not followed: said to be left out
        folders[:] = sorted(f for f in folders if f not in EXCLUDED_DIRS and f not in links)
        found += [(relative / name).as_posix() for name in sorted(files + links)
                  if name not in EXCLUDED_NAMES and not name.endswith(EXCLUDED_SUFFIXES)]
        if len(found) > MAX_FILES:
            raise JobsError(f"--workdir {directory} holds more than {MAX_FILES:,} files: a workdir is code; put data "
                            "in S3 or on the shared file system")
    return found


def _readable(directory: Path, names: list[str]) -> tuple[list[tuple[str, Path]], list[str]]:
    """The files to pack as (name in the pack, path on disk), and notes on those left out; errors over the limit."""
    chosen, left_out, total, largest = [], [], 0, ("", 0)
    for name in names:
        path = directory / name
        if not path.is_file():  # a link to a folder or to nothing, or a file deleted since git indexed it
            left_out.append(f"{name} (a link to a folder or to nothing)" if path.is_symlink() else f"{name} (missing)")
            continue
        size = path.stat().st_size
        total += size
        largest = max(largest, (name, size), key=lambda item: item[1])
        if total > WORKDIR_MAX_BYTES:
            raise JobsError(f"--workdir {directory} is over the {_size(WORKDIR_MAX_BYTES)} limit (at least "
                            f"{_size(total)}; largest: {largest[0]}, {_size(largest[1])}): a workdir is code and "
                            "configuration; put data in S3 or on the shared file system")
        chosen.append((name, path))
    return chosen, left_out


def _tar_gz(files: list[tuple[str, Path]]) -> bytes:
    """A reproducible tar.gz: name order, time 0, owner root, mode 0644 or 0755."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, filename="") as compressed, \
            tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, path in files:
            data = path.read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.uname, info.gname = len(data), 0, "", ""
            info.mode = 0o755 if os.access(path, os.X_OK) else 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def pack(directory: str) -> Pack:
    """Pack ``directory`` (see the module docstring); JobsError names the problem in one line."""
    if not directory.strip():
        raise JobsError("--workdir '' is empty: give a directory, e.g. --workdir .")
    path = Path(directory).expanduser()
    if not path.is_dir():
        raise JobsError(f"--workdir {directory}: {'not a directory' if path.exists() else 'no such directory'}")
    path = path.resolve()
    from_git = _git_files(path)
    names = from_git[0] if from_git is not None else _walk(path)
    files, left_out = _readable(path, names)
    if from_git is not None and from_git[1]:
        left_out.append(f"{from_git[1]} untracked file(s) (git add them to send them)")
    if not files:
        what = "git tracks no file under it" if from_git is not None else "it holds no file (after the excludes)"
        raise JobsError(f"--workdir {directory}: {what}; there is nothing to send")
    data = _tar_gz(files)
    return Pack(path, "git" if from_git is not None else "directory", len(files),
                sum(p.stat().st_size for _, p in files), data, hashlib.sha256(data).hexdigest(), tuple(left_out))


def upload(s3: Any, bucket: str, packed: Pack) -> bool:
    """Put the pack at its content address under ``bucket``; False when it was already there (same SHA-256)."""
    try:
        s3.head_object(Bucket=bucket, Key=packed.key)
        return False
    except Exception as error:  # botocore ClientError: 404 means it is not there yet
        if error_code(error) not in ("404", "NoSuchKey", "NotFound"):
            raise
    s3.put_object(Bucket=bucket, Key=packed.key, Body=packed.data, ContentType="application/gzip")
    return True


def environment(bucket: str, region: str, packed: Pack) -> dict[str, str]:
    """What the launcher reads to fetch the pack (mlcdk.launch.WORKDIR_ENV)."""
    return dict(zip(WORKDIR_ENV, (f"s3://{bucket}/{packed.key}", packed.digest, region)))
