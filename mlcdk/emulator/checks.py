"""Checks: what a run does with the deployed stacks before it tears them down.

A check is any object with a ``name`` (the step its failures name) and ``run(deployment)``; it raises
:class:`~mlcdk.emulator.failures.Failure` (``failed(step, why)``) to fail the run. ``mlcdk emulate --check CMD``
runs a :class:`CommandCheck`; ``make deploy`` adds a :class:`~mlcdk.emulator.jobcheck.SubmitJobCheck`.
"""
from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from mlcdk.emulator import processes
from mlcdk.emulator.failures import failed, step
from mlcdk.emulator.readback import Clients, StackView

CHECK_TIMEOUT_S = 600


@dataclass(frozen=True)
class Deployment:
    """What a check sees: the emulator, and every deployed stack as the read-back found it."""

    #: The emulator's endpoint (``AWS_ENDPOINT_URL``) and default region.
    endpoint: str
    region: str
    #: The environment to run commands in against the emulator (dummy credentials, endpoint, run marker).
    env: dict[str, str]
    #: The app's directory.
    directory: Path
    #: boto3 clients on the emulator, in the default region.
    clients: Clients
    #: The read-back of each deployed stack, by the name the app gives it.
    stacks: dict[str, StackView]


@runtime_checkable
class Check(Protocol):
    name: str

    def run(self, deployment: Deployment) -> None: ...


@dataclass(frozen=True)
class CommandCheck:
    """A shell command run in the app's directory against the emulator; it passes when it exits 0."""

    command: str

    @property
    def name(self) -> str:
        return "check"

    def run(self, deployment: Deployment) -> None:
        print(f"\n==> check: {self.command} ...", flush=True)
        started = time.monotonic()
        with step("check"):
            process = processes.spawn(["/bin/sh", "-c", self.command], env=deployment.env, cwd=deployment.directory,
                                      text=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT)
        try:
            output, _ = process.communicate(timeout=CHECK_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise failed("check", f"{self.command} did not finish within {CHECK_TIMEOUT_S} s (stopped it)") from None
        finally:
            processes.stop(process)
        for line in (output or "").splitlines():
            print(f"    | {line}")
        if process.returncode != 0:
            raise failed("check", f"{self.command} ({processes.exit_text(process.returncode)}): "
                                  f"{processes.last_lines(output or '')}")
        print(f"    ok ({time.monotonic() - started:.1f} s)", flush=True)
