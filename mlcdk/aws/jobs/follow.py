"""A job's state, its nodes' logs and its exit code, for ``mlcdk jobs``, ``logs``, ``cancel`` and ``submit --wait``.

A multi-node job runs as node jobs ``<id>#0``, ``<id>#1``...; each has its own log stream, and the job's status,
status reason and exit code are the main node's (Batch User Guide, "Multi-node parallel jobs"). An array job's
children are ``<id>:0``, ``<id>:1``...
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from mlcdk.aws.jobs.aws import JobsError, error_code
from mlcdk.aws.jobs.clusters import Connection, find_job

STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")
QUEUED = ("SUBMITTED", "PENDING", "RUNNABLE")  # not started: TerminateJob cancels these
FINISHED = ("SUCCEEDED", "FAILED")  # nothing left to stop: `mlcdk cancel` sends nothing
POLL_SECONDS = (1.0, 10.0)  # polls every second, backing off to every 10 s while nothing new arrives


def when(epoch_ms: int | None) -> str | None:
    return None if epoch_ms is None else dt.datetime.fromtimestamp(epoch_ms / 1000, dt.timezone.utc).isoformat(
        timespec="seconds").replace("+00:00", "Z")


def list_jobs(connection: Connection, statuses: tuple[str, ...] = STATUSES) -> list[dict[str, Any]]:
    """The queue's jobs in ``statuses``, newest first, as rows with the status reason (why a job waits or failed)."""
    pages = connection.batch.get_paginator("list_jobs")
    found = {job["jobId"]: job for status in statuses  # a job that changes status between two calls is listed once
             for page in pages.paginate(jobQueue=connection.cluster.queue, jobStatus=status)
             for job in page["jobSummaryList"]}
    return [{"jobId": job["jobId"], "jobName": job["jobName"], "status": job["status"],
             "nodes": job.get("nodeProperties", {}).get("numNodes"), "createdAt": when(job.get("createdAt")),
             "statusReason": job.get("statusReason")}
            for job in sorted(found.values(), key=lambda job: job.get("createdAt", 0), reverse=True)]


def node_count(job: dict[str, Any]) -> int:
    return job.get("nodeProperties", {}).get("numNodes", 1)


def node_job(connection: Connection, job: dict[str, Any], node: int) -> dict[str, Any] | None:
    """Node ``node`` of a multi-node job (``<id>#<node>``, None before it exists); a single-node job itself."""
    if "nodeProperties" not in job:
        return job
    found = connection.batch.describe_jobs(jobs=[f"{job['jobId']}#{node}"])["jobs"]
    return found[0] if found else None


def container_details(job: dict[str, Any] | None) -> dict[str, Any]:
    """The job's container details, or its last attempt's."""
    if job is None:
        return {}
    attempts = job.get("attempts") or [{}]
    return {**attempts[-1].get("container", {}), **job.get("container", {})}


def log_stream(connection: Connection, job: dict[str, Any], node: int) -> str | None:
    return container_details(node_job(connection, job, node)).get("logStreamName")


def exit_code(connection: Connection, job: dict[str, Any]) -> int | None:
    """The job's exit code: its main node's for a multi-node job; None when no container exited."""
    main = job.get("nodeProperties", {}).get("mainNode", 0)
    return container_details(node_job(connection, job, main)).get("exitCode")


def read_events(logs: Any, group: str, stream: str, token: str | None) -> tuple[str | None, list[str]]:
    """The stream's messages after ``token``, and the token to read on from."""
    messages: list[str] = []
    while True:
        request = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
        if token:
            request["nextToken"] = token
        try:
            page = logs.get_log_events(**request)
        except Exception as error:  # botocore ClientError
            if error_code(error) == "ResourceNotFoundException":
                return token, messages  # the container has not written its first line yet
            raise
        messages += [event["message"].rstrip("\n") for event in page["events"]]
        if page["nextForwardToken"] == token:
            return token, messages
        token = page["nextForwardToken"]


@dataclass(frozen=True)
class Update:
    """One look at a followed job: its description, its node's log stream, and the log lines new since the last."""

    job: dict[str, Any]
    stream: str | None
    lines: tuple[str, ...]

    @property
    def finished(self) -> bool:
        return self.job["status"] in FINISHED


def follow(connection: Connection, job_id: str, node: int = 0, *, keep_going: bool = True,
           sleep: Callable[[float], None] | None = None) -> Iterator[Update]:
    """Look at job ``job_id`` and node ``node``'s log until it finishes (once, without ``keep_going``)."""
    job = find_job(connection, job_id)
    if "arrayProperties" in job and "nodeProperties" not in job and job.get("arrayProperties", {}).get("size"):
        raise JobsError(f"job {job_id} is an array job: each child has its own log; read one with `mlcdk logs "
                        f"{job_id}:INDEX`")
    if not 0 <= node < node_count(job):
        raise JobsError(f"--node {node} is out of range: job {job_id} has node(s) 0 to {node_count(job) - 1}")
    logs, group = connection.client("logs"), connection.cluster.log_group
    stream, token, pause = None, None, POLL_SECONDS[0]
    while True:
        stream = stream or log_stream(connection, job, node)
        lines: list[str] = []
        if stream:
            token, lines = read_events(logs, group, stream, token)
        update = Update(job, stream, tuple(lines))
        yield update
        if update.finished or not keep_going:
            return
        pause = POLL_SECONDS[0] if lines else pause
        (sleep or time.sleep)(pause)
        pause = min(pause * 2, POLL_SECONDS[1])
        job = find_job(connection, job_id)


def wait_array(connection: Connection, job_id: str, sleep: Callable[[float], None] | None = None) -> Iterator[Update]:
    """Look at an array job until it finishes (its children's counts are in arrayProperties.statusSummary)."""
    pause = POLL_SECONDS[0]
    while True:
        job = find_job(connection, job_id)
        yield Update(job, None, ())
        if job["status"] in FINISHED:
            return
        (sleep or time.sleep)(pause)
        pause = min(pause * 2, POLL_SECONDS[1])


def cancel(connection: Connection, job_id: str, reason: str) -> tuple[str, bool]:
    """Stop a job: TerminateJob for a queued, starting or running one (Batch cancels a queued one, and stops the
    containers of a started one). Returns the status it had, and whether anything was sent: nothing for a job that
    has finished (SUCCEEDED or FAILED)."""
    status = find_job(connection, job_id)["status"]
    if status in FINISHED:
        return status, False
    connection.batch.terminate_job(jobId=job_id, reason=reason)
    return status, True
