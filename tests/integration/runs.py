"""Helpers for tests that run the emulator as a user would: find a run's processes, and start runs in an
environment whose TMPDIR is the test's own (so that "nothing left behind" can be checked)."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from tests.harness import ROOT

MARKER = "MLCDK_EMULATOR_RUN"
#: How long the run's processes may take to go once the driver is dead (guards give SIGTERM 5 s before SIGKILL).
GONE_WITHIN_S = 15


def marked(run_id: str) -> dict[int, str]:
    """PID -> command line of every live process whose environment has MLCDK_EMULATOR_RUN=<run_id>."""
    needle = f"{MARKER}={run_id}".encode()
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as environ:
                if needle not in environ.read().split(b"\0"):
                    continue
            with open(f"/proc/{entry.name}/cmdline", "rb") as cmdline:
                found[int(entry.name)] = cmdline.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return {pid: command for pid, command in found.items() if command}  # zombies have no command line


def wait_until_gone(run_id: str, timeout: float = GONE_WITHIN_S) -> tuple[dict[int, str], float]:
    started = time.monotonic()
    while True:
        left = marked(run_id)
        if not left or time.monotonic() - started > timeout:
            return left, time.monotonic() - started
        time.sleep(0.1)


def wait_until_empty(directory: Path, timeout: float = GONE_WITHIN_S) -> list[str]:
    """What is still in ``directory`` after at most ``timeout`` s (an empty list once it is empty)."""
    deadline = time.monotonic() + timeout
    while True:
        left = sorted(p.name for p in directory.iterdir())
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def kill_leftovers(run_id: str) -> None:
    """Clean-up after a failed test: SIGKILL only processes that carry this run's marker."""
    for pid in marked(run_id):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def environment(run_id: str, tmpdir: Path) -> dict[str, str]:
    """The environment of a user's shell: the virtualenv and the pinned CDK CLI on PATH, no AWS variables, no
    CDK_VALIDATION (tests/conftest.py sets it for in-process synths; a user's `cdk` validates), the
    run's marker, and ``tmpdir`` as TMPDIR (the test checks that it is empty after the run)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "CDK_VALIDATION"}
    env["PATH"] = os.pathsep.join([str(ROOT / ".venv" / "bin"), str(ROOT / "node_modules" / ".bin"), env.get("PATH", "")])
    env[MARKER] = run_id
    env["PYTHONUNBUFFERED"] = "1"
    env["TMPDIR"] = str(tmpdir)
    return env
