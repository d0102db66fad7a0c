"""``mlcdk check`` on a deployed training cluster, as far as the emulator allows.

The check submits one job whose nodes run an all-reduce bandwidth test (mlcdk.aws.check). moto marks Batch jobs
SUCCEEDED without running them, so no node prints a bandwidth, and the check reports exactly that and exits 1.
This step accepts that outcome, and only that one: it proves the cluster is found, the job definition is an
mlcdk cluster's, the submission (launcher, check script, threshold) is accepted and the job's logs are read, and
it says plainly that nothing was measured.
"""
from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from mlcdk.emulator import processes
from mlcdk.emulator.checks import Deployment
from mlcdk.emulator.failures import failed, step

CHECK_TIMEOUT_S = 180
#: The one outcome the emulator can give: the job SUCCEEDED and no node printed a result (mlcdk.aws.check.judge).
NO_CONTAINER = "the job succeeded but no node printed a result"


def _run(arguments: list[str], deployment: Deployment) -> tuple[int | None, str, str]:
    """``mlcdk <arguments>`` against the emulator: (exit code, stdout, stderr)."""
    mlcdk = shutil.which("mlcdk", path=deployment.env["PATH"])
    if mlcdk is None:
        raise failed("mlcdk check", "the mlcdk command is not on the run's PATH (install mlcdk in the environment)")
    with step("mlcdk check"):
        process = processes.spawn([mlcdk, *arguments], env=deployment.env, cwd=deployment.directory, text=True,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        stdout, stderr = process.communicate(timeout=CHECK_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise failed("mlcdk check", f"it did not finish within {CHECK_TIMEOUT_S} s (stopped it)") from None
    finally:
        processes.stop(process)
    return process.returncode, stdout or "", stderr or ""


def _report(code: int | None, stdout: str, stderr: str) -> dict[str, Any]:
    """The JSON report, when the check ended as the emulator makes it end; a Failure otherwise."""
    try:
        report = json.loads(stdout)
        notes = report["notes"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise failed("mlcdk check", f"({processes.exit_text(code)}) printed no report: {type(error).__name__}: "
                                    f"{error}; {processes.last_lines(stderr or stdout)}") from None
    expected = code == 1 and report["status"] == "SUCCEEDED" and not report["results"] and any(
        note.startswith(NO_CONTAINER) for note in notes)
    if not expected:
        cause = report.get("cause") or {}
        raise failed("mlcdk check", f"({processes.exit_text(code)}) job {report.get('job_id')} "
                                    f"{report.get('status')}: {cause.get('summary') or report.get('status_reason')}")
    return report


@dataclass(frozen=True)
class AcceptanceCheck:
    """Run ``mlcdk check <arguments> --json`` and accept the emulator's outcome: a job that ran no container."""

    arguments: tuple[str, ...]

    @property
    def name(self) -> str:
        return "mlcdk check"

    def run(self, deployment: Deployment) -> None:
        arguments = ["check", *self.arguments, "--json"]
        print(f"\n==> {shlex.join(['mlcdk', *arguments])} ...", flush=True)
        started = time.monotonic()
        report = _report(*_run(arguments, deployment))
        facts, expected = report["facts"], report["expected"]
        path = "EFA" if facts["efa"] else "TCP"
        print(f"    job {report['job_id']}: {report['status']} on {report['nodes']} node(s) of "
              f"{facts['instance_type']} ({facts['accelerator']}, {path}); threshold: {expected['why']}")
        print("    NOTE: moto marks Batch jobs SUCCEEDED without running them: no node ran the all-reduce, so no "
              "bandwidth was measured, and `mlcdk check` says so and exits 1, as it would on AWS if no node printed "
              "a result. This proves the cluster lookup, the submission and the log reading, not the network; run "
              f"`mlcdk check` after a real deploy ({time.monotonic() - started:.1f} s)", flush=True)
