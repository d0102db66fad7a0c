"""`mlcdk submit|jobs|logs|cancel`: multi-node jobs on a deployed cluster's AWS Batch queue.

The commands find the queue, the job definition and the log group through the CloudFormation stack's outputs
(JobQueue, JobDefinition, JobLogGroup, MaxNodes), so they work on any stack that publishes them. boto3 is
imported inside the commands only, so `mlcdk advise` and `mlcdk catalog` never load it.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Optional

import typer
from rich.table import Table

from mlcdk.cli._common import err, fail, out, print_json

app = typer.Typer()

STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")
QUEUED = ("SUBMITTED", "PENDING", "RUNNABLE")  # not started: TerminateJob cancels these
FINISHED = ("SUCCEEDED", "FAILED")
DEFAULT_LOG_GROUP = "/aws/batch/job"  # Batch's own, for stacks without a JobLogGroup output
POLL_SECONDS = (1.0, 10.0)  # --follow polls every second, backing off to every 10 s while nothing new arrives

JOB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
STACK = typer.Option("TrainingStack", "--stack", help="The CloudFormation stack of the cluster.")
REGION = typer.Option(None, "--region", help="AWS region. Default: boto3's configured region.")


@dataclass
class Cluster:
    """A deployed stack's Batch resources, found through its outputs."""

    session: Any
    stack: str
    region: str
    outputs: dict[str, str]

    @classmethod
    def find(cls, session: Any, stack: str) -> Cluster:
        from botocore.exceptions import ClientError

        region = session.region_name
        try:
            found = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
        except ClientError as exc:
            if "does not exist" in exc.response.get("Error", {}).get("Message", ""):
                fail(f"--stack: there is no stack {stack!r} in {region}; deploy it, or pass --stack or --region")
            raise
        outputs = {o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", [])}
        if "JobQueue" not in outputs:
            fail(f"stack {stack!r} in {region} has no Batch job queue (no JobQueue output); "
                 "was it deployed with engine=nodes?")
        return cls(session, stack, region, outputs)

    @cached_property
    def batch(self) -> Any:
        return self.session.client("batch")

    @property
    def queue(self) -> str:
        return self.outputs["JobQueue"]

    def output(self, key: str) -> str:
        if key not in self.outputs:
            fail(f"stack {self.stack!r} in {self.region} has no {key} output")
        return self.outputs[key]

    @property
    def max_nodes(self) -> int:
        value = self.output("MaxNodes")
        if not value.isdigit() or int(value) < 1:
            fail(f"stack {self.stack!r}: its MaxNodes output {value!r} is not a positive whole number")
        return int(value)

    def job(self, job_id: str) -> dict[str, Any]:
        """The job's description; exit 2 when there is none, or when it runs on another stack's queue."""
        found = self.batch.describe_jobs(jobs=[job_id])["jobs"]
        if not found:
            fail(f"no job {job_id!r} in {self.region}; `mlcdk jobs` lists the recent ones")
        queue = found[0].get("jobQueue", "")
        if queue.rsplit("/", 1)[-1] != self.queue.rsplit("/", 1)[-1]:
            fail(f"job {job_id} runs on {queue}, not on stack {self.stack!r}'s queue; pass the --stack it belongs to")
        return found[0]

    def log_stream(self, job: dict[str, Any], node: int) -> str | None:
        """The log stream of one node of ``job`` (its child job ``<id>#<node>``), or None before it starts."""
        if "nodeProperties" in job:
            found = self.batch.describe_jobs(jobs=[f"{job['jobId']}#{node}"])["jobs"]
            if not found:
                return None
            job = found[0]
        attempts = job.get("attempts") or [{}]
        return job.get("container", {}).get("logStreamName") or attempts[-1].get("container", {}).get("logStreamName")


@contextmanager
def connect(stack: str, region: str | None) -> Iterator[Cluster]:
    """The stack's cluster. AWS errors become one line: exit 2 for what the user can fix, 1 for the unexpected."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ProfileNotFound

    try:
        session = boto3.Session(region_name=region)
        if session.region_name is None:
            fail("no AWS region: pass --region, or configure one (AWS_DEFAULT_REGION or `aws configure`)")
        yield Cluster.find(session, stack)
    except NoCredentialsError:
        fail("no AWS credentials found: configure them (aws configure, AWS_PROFILE, or environment variables)")
    except ProfileNotFound as exc:
        fail(str(exc))
    except ClientError as exc:
        error = exc.response.get("Error", {})
        fail(f"{error.get('Code', 'ClientError')}: {error.get('Message', exc)}", code=1)
    except BotoCoreError as exc:
        fail(str(exc), code=1)


def _definition(batch: Any, definition: str) -> dict[str, Any]:
    found = batch.describe_job_definitions(jobDefinitions=[definition])["jobDefinitions"]
    if not found:
        fail(f"job definition {definition} (the stack's JobDefinition output) does not exist")
    return found[0]


def _with_image(batch: Any, found: dict[str, Any], image: str) -> str:
    """Register a revision of job definition ``found`` that runs ``image`` in every container; return its ARN."""
    definition = found["jobDefinitionArn"]
    if found.get("type") == "container":
        containers = [found["containerProperties"]] if "containerProperties" in found else []
    else:
        ranges = found.get("nodeProperties", {}).get("nodeRangeProperties", [])
        containers = [r["container"] for r in ranges if "container" in r]
        containers = containers if len(containers) == len(ranges) else []
    if not containers:
        fail(f"--image: job definition {definition} has no containers to run the image in")
    accepted = batch.meta.service_model.operation_model("RegisterJobDefinition").input_shape.members
    revision = {key: value for key, value in found.items() if key in accepted}
    for container in containers:
        container["image"] = image
    arn = batch.register_job_definition(**revision)["jobDefinitionArn"]
    err.print(f"--image: registered {arn}, a copy of {definition} with image {image}", highlight=False, markup=False)
    return arn


@app.command("submit", context_settings={"allow_interspersed_args": False})
def submit(
    command: Optional[list[str]] = typer.Argument(
        None, metavar="COMMAND", show_default=False,
        help="What every node runs, e.g. -- python train.py; the mlcdk launcher starts it under torchrun."),
    stack: str = STACK,
    region: Optional[str] = REGION,
    nodes: Optional[int] = typer.Option(None, help="Nodes for this job, 1 to MaxNodes. Default: the stack's MaxNodes."),
    image: Optional[str] = typer.Option(
        None, help="Run this image instead: registers a revision of the job definition with it."),
    name: Optional[str] = typer.Option(None, help="Job name. Default: mlcdk-<UTC timestamp>."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of the job ID."),
) -> None:
    """Submit a multi-node job to the stack's queue and print its ID."""
    from mlcdk.launch import inline_command
    from mlcdk.presets.workloads import image_reference_problem

    if not command:
        fail("no command to run: put it after --, e.g. `mlcdk submit -- python train.py`")
    name = name or f"mlcdk-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}"
    if not JOB_NAME.fullmatch(name):
        fail(f"--name {name!r} is not a Batch job name: up to 128 letters, digits, hyphens and underscores, "
             "starting with a letter or digit")
    if image is not None and (problem := image_reference_problem(image)) is not None:
        fail(f"--image {image!r} {problem}")
    with connect(stack, region) as cluster:
        limit = cluster.max_nodes
        nodes = limit if nodes is None else nodes
        if not 1 <= nodes <= limit:
            fail(f"--nodes {nodes} is out of range: 1 to {limit} (stack {stack!r}'s MaxNodes)")
        found = _definition(cluster.batch, cluster.output("JobDefinition"))
        definition = found["jobDefinitionArn"] if image is None else _with_image(cluster.batch, found, image)
        run = {"command": inline_command(["--", *command])}
        if found.get("type") == "container":  # a one-node cluster (also the spot one): a single-node job
            request = {"containerOverrides": run}
        else:
            request = {"nodeOverrides": {"numNodes": nodes, "nodePropertyOverrides": [
                {"targetNodes": "0:", "containerOverrides": run}]}}
        job_id = cluster.batch.submit_job(jobName=name, jobQueue=cluster.queue, jobDefinition=definition,
                                          **request)["jobId"]
    if as_json:
        print_json({"jobId": job_id, "jobName": name, "queue": cluster.queue, "definition": definition, "nodes": nodes})
        return
    typer.echo(job_id)
    err.print(f"submitted {name} on {nodes} node(s); follow it with: mlcdk logs {job_id} --follow",
              highlight=False, markup=False)


def _when(epoch_ms: int | None) -> str | None:
    return None if epoch_ms is None else dt.datetime.fromtimestamp(epoch_ms / 1000, dt.timezone.utc).isoformat(
        timespec="seconds").replace("+00:00", "Z")


@app.command("jobs")
def list_jobs(
    stack: str = STACK,
    region: Optional[str] = REGION,
    status: Optional[str] = typer.Option(None, help=f"Only jobs in this status: {', '.join(STATUSES)}. Default: all."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Recent jobs on the stack's queue, newest first."""
    wanted = STATUSES if status is None else (status.upper(),)
    if wanted[0] not in STATUSES:
        fail(f"--status {status!r} is not a job status; use one of {', '.join(STATUSES)}")
    with connect(stack, region) as cluster:
        pages = cluster.batch.get_paginator("list_jobs")
        found = {job["jobId"]: job for s in wanted  # a job that changes status between two calls is listed once
                 for page in pages.paginate(jobQueue=cluster.queue, jobStatus=s) for job in page["jobSummaryList"]}
    rows = [{"jobId": job["jobId"], "jobName": job["jobName"], "status": job["status"],
             "nodes": job.get("nodeProperties", {}).get("numNodes"), "createdAt": _when(job.get("createdAt")),
             "statusReason": job.get("statusReason")}
            for job in sorted(found.values(), key=lambda job: job.get("createdAt", 0), reverse=True)]
    if as_json:
        print_json({"queue": cluster.queue, "jobs": rows})
        return
    table = Table(title=f"{len(rows)} job(s) on {cluster.queue}")
    for column in ("id", "name", "status", "nodes", "created (UTC)", "status reason"):
        table.add_column(column, justify="right" if column == "nodes" else "left")
    for row in rows:
        table.add_row(row["jobId"], row["jobName"], row["status"], str(row["nodes"] or "-"),
                      row["createdAt"] or "-", row["statusReason"] or "")
    out.print(table, highlight=False)


def _print_events(logs: Any, group: str, stream: str, token: str | None) -> tuple[str | None, int]:
    """Print the stream's events after ``token``; return the token to read on from and how many were printed."""
    from botocore.exceptions import ClientError

    printed = 0
    while True:
        request = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
        if token:
            request["nextToken"] = token
        try:
            page = logs.get_log_events(**request)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return token, printed  # the container has not written its first line yet
            raise
        for event in page["events"]:
            typer.echo(event["message"].rstrip("\n"))
        printed += len(page["events"])
        if page["nextForwardToken"] == token:
            return token, printed
        token = page["nextForwardToken"]


@app.command("logs")
def logs(
    job_id: str = typer.Argument(..., help="The job ID that `mlcdk submit` printed."),
    node: int = typer.Option(0, help="Which node's log: 0 (the main node) to the job's node count - 1."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing until the job succeeds or fails."),
    stack: str = STACK,
    region: Optional[str] = REGION,
) -> None:
    """Print one node's CloudWatch log of a job."""
    with connect(stack, region) as cluster:
        job = cluster.job(job_id)
        count = job.get("nodeProperties", {}).get("numNodes", 1)
        if not 0 <= node < count:
            fail(f"--node {node} is out of range: job {job_id} has node(s) 0 to {count - 1}")
        group = cluster.outputs.get("JobLogGroup", DEFAULT_LOG_GROUP)
        client = cluster.session.client("logs")
        stream, token, total, pause, waiting = None, None, 0, POLL_SECONDS[0], False
        try:
            while True:
                finished = job["status"] in FINISHED
                stream = stream or cluster.log_stream(job, node)
                printed = 0
                if stream:
                    token, printed = _print_events(client, group, stream, token)
                    total += printed
                if finished or not follow:
                    break
                if stream is None and not waiting:
                    waiting = True
                    err.print(f"waiting for node {node} of job {job_id} to start ({job['status']})...", highlight=False)
                pause = POLL_SECONDS[0] if printed else pause
                time.sleep(pause)
                pause = min(pause * 2, POLL_SECONDS[1])
                job = cluster.job(job_id)
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
    state = job["status"] + (f" ({job['statusReason']})" if job.get("statusReason") else "")
    if stream is None:
        err.print(f"job {job_id} is {state}: node {node} has no log stream"
                  + ("" if finished else " yet; --follow waits for it"), highlight=False, markup=False)
    elif total == 0:
        err.print(f"job {job_id} is {state}: no log events in {group} {stream}", highlight=False, markup=False)


@app.command("cancel")
def cancel(
    job_id: str = typer.Argument(..., help="The job ID that `mlcdk submit` printed."),
    stack: str = STACK,
    region: Optional[str] = REGION,
    reason: str = typer.Option("cancelled with mlcdk cancel", help="Why; Batch shows it as the job's status reason."),
) -> None:
    """Stop a job: a queued one is cancelled, a starting or running one terminated."""
    if not reason.strip():
        fail("--reason must not be empty")
    with connect(stack, region) as cluster:
        status = cluster.job(job_id)["status"]
        if status in FINISHED:
            out.print(f"job {job_id} already {status}; nothing to cancel", highlight=False)
            return
        cluster.batch.terminate_job(jobId=job_id, reason=reason)
    if status in QUEUED:
        out.print(f"cancelled job {job_id}: it was {status}, so it never starts", highlight=False)
    else:
        out.print(f"terminating job {job_id}: it was {status}; Batch stops its nodes", highlight=False)
