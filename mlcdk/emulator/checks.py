"""Checks: what a run does with the deployed stacks before it tears them down.

A check is any object with a ``name`` (the step its failures name) and ``run(deployment)``; it raises
:class:`~mlcdk.emulator.failures.Failure` (``failed(step, why)``) to fail the run. ``mlcdk emulate --check CMD``
runs a :class:`CommandCheck`; ``make deploy`` adds a :class:`~mlcdk.emulator.jobcheck.SubmitJobCheck`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from mlcdk.emulator import processes
from mlcdk.emulator.failures import failed
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
        result = processes.run(["/bin/sh", "-c", self.command], env=deployment.env, cwd=deployment.directory,
                               step=processes.Step("check", self.command, CHECK_TIMEOUT_S))
        output = result.stdout
        for line in output.splitlines():
            print(f"    | {line}")
        if result.returncode != 0:
            raise failed("check", f"{self.command} ({processes.exit_text(result.returncode)}): "
                                  f"{processes.last_lines(output)}")
        print(f"    ok ({time.monotonic() - started:.1f} s)", flush=True)
