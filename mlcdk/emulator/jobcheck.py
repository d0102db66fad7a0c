"""A job on a deployed training cluster, submitted with the real ``mlcdk submit`` against the emulator.

moto marks Batch jobs SUCCEEDED without running them (Docker-less Batch): no container runs, no node starts and
the command is never executed. The check proves the stack, the CLI and the job's shape, not training.
"""
from __future__ import annotations

import json
import shlex
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlcdk.emulator import processes
from mlcdk.emulator.checks import Deployment
from mlcdk.emulator.failures import failed, step
from mlcdk.emulator.readback import Clients, command_text

JOB_WAIT_S = 60.0
SUBMIT_TIMEOUT_S = 120


def submit(arguments: Sequence[str], env: dict[str, str], cwd: Path) -> dict[str, Any]:
    """``mlcdk <arguments>`` (a ``submit ... --json -- COMMAND``) against the emulator; return its JSON answer."""
    mlcdk = shutil.which("mlcdk", path=env["PATH"])
    if mlcdk is None:
        raise failed("submit", "the mlcdk command is not on the run's PATH (install mlcdk in the environment)")
    print(f"==> {shlex.join(['mlcdk', *arguments])} ...", flush=True)
    started = time.monotonic()
    result = processes.run([mlcdk, *arguments], env=env, cwd=cwd, step=processes.Step("submit", "mlcdk submit", SUBMIT_TIMEOUT_S),
                           merge_output=False)
    stdout, stderr = result.stdout, result.stderr
    if result.returncode != 0:
        raise failed("submit", f"mlcdk submit ({processes.exit_text(result.returncode)}): "
                               f"{processes.last_lines(stderr or stdout)}")
    try:
        answer = json.loads(stdout)
        answer["jobId"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise failed("submit", f"mlcdk submit --json printed no job: {type(error).__name__}: {error}; "
                               f"its output ends: {processes.last_lines(stdout)}") from None
    print(f"    ok ({time.monotonic() - started:.1f} s): job {answer['jobId']} on {answer.get('nodes')} node(s), "
          f"queue {str(answer.get('queue', '?')).rsplit('/', 1)[-1]}", flush=True)
    return answer


def wait_for_job(clients: Clients, job_id: str, timeout: float = JOB_WAIT_S) -> dict[str, Any]:
    """Poll DescribeJobs until the job SUCCEEDED or FAILED (at most ``timeout`` s); return its description."""
    batch = clients("batch")
    print(f"==> waiting for job {job_id} (DescribeJobs every 0.5 s, at most {timeout:.0f} s) ...", flush=True)
    started = time.monotonic()
    seen: list[str] = []
    while True:
        found = batch.describe_jobs(jobs=[job_id])["jobs"]
        if not found:
            raise failed("wait for job", f"DescribeJobs does not know job {job_id}")
        job = found[0]
        if not seen or seen[-1] != job["status"]:
            seen.append(job["status"])
        if job["status"] in ("SUCCEEDED", "FAILED"):
            break
        if time.monotonic() - started > timeout:
            raise failed("wait for job", f"job {job_id} is still {job['status']} after {timeout:.0f} s "
                                         f"(statuses seen: {' -> '.join(seen)})")
        time.sleep(0.5)
    print(f"    {job['status']} after {time.monotonic() - started:.1f} s (statuses seen: {' -> '.join(seen)})")
    if job["status"] != "SUCCEEDED":
        raise failed("wait for job", f"job {job_id} FAILED: {job.get('statusReason', 'no reason given')}")
    return job


def describe_job(clients: Clients, job: dict[str, Any]) -> None:
    """Print what the emulator recorded for the job, and say plainly that nothing ran."""
    definition = clients("batch").describe_job_definitions(jobDefinitions=[job["jobDefinition"]])["jobDefinitions"][0]
    nodes = job.get("nodeProperties", {})
    print(f"  job {job['jobId']} ({job['jobName']}): {job['status']}")
    print(f"    nodes: {nodes.get('numNodes', 1)} (main node {nodes.get('mainNode', 0)}); queue "
          f"{job.get('jobQueue', '?').rsplit('/', 1)[-1]}; attempts: {len(job.get('attempts', []))}")
    print(f"    job definition {definition['jobDefinitionName']}: type {definition['type']}, revision "
          f"{definition['revision']}")
    for node_range in nodes.get("nodeRangeProperties", []):
        container = node_range.get("container", {})
        print(f"    node range \"{node_range.get('targetNodes')}\": command {command_text(container.get('command', []))}")
        print(f"      image {container.get('image')}")
    if "container" in job and not nodes:
        print(f"    command {command_text(job['container'].get('command', []))}")
    print("    NOTE: moto marks Batch jobs SUCCEEDED without running them (Docker-less Batch, use_docker=false): "
          "no container ran, no node started and the command was not executed. This checks the stack, the CLI and "
          "the job's shape, not training.")


@dataclass(frozen=True)
class SubmitJobCheck:
    """Submit a job with ``mlcdk <arguments>`` (which must include ``--json``), wait for it, print it."""

    arguments: tuple[str, ...]
    wait_s: float = JOB_WAIT_S

    @property
    def name(self) -> str:
        return "submit"

    def run(self, deployment: Deployment) -> None:
        print()
        answer = submit(self.arguments, deployment.env, deployment.directory)
        with step("wait for job"):
            job = wait_for_job(deployment.clients, answer["jobId"], self.wait_s)
        with step("read back the job"):
            describe_job(deployment.clients, job)
