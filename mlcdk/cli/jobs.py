"""`mlcdk clusters|submit|jobs`: jobs on a deployed TrainingCluster's AWS Batch queue (logs, cancel and shell are in
mlcdk.cli.job_control).

The commands find a cluster by the tags on its job queue (mlcdk.presets.discovery), so they work on a
TrainingCluster in any stack. ``--cluster NAME`` selects one; with one cluster in the region it is not needed. The
AWS calls live in mlcdk.aws.jobs; this module checks the command line (before any AWS client exists) and formats.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Optional

import typer
from rich.table import Table

from mlcdk.aws.jobs import JobsError, follow, inputs
from mlcdk.cli._common import PlainFlagsCommand, err, fail, out, print_json

app = typer.Typer()

CLUSTER = typer.Option(None, "--cluster", help="The cluster, as `mlcdk clusters` lists it (or its stack's name). "
                                               "Default: the region's only cluster.")
STACK = typer.Option(None, "--stack", hidden=True, help="Same as --cluster STACK (kept for scripts).")
REGION = typer.Option(None, "--region", help="AWS region. Default: boto3's configured region.")
JSON = typer.Option(False, "--json", metavar="", help="Print JSON instead of a table.")


@contextmanager
def handled() -> Iterator[None]:
    """Library errors become one line: exit 2 for what the user can fix, 1 for an AWS error nobody expected."""
    from mlcdk.aws.jobs.aws import aws_errors

    try:
        with aws_errors():
            yield
    except JobsError as error:
        fail(str(error), error.code)


def target(cluster: str | None, stack: str | None, region: str | None) -> tuple[str | None, str | None]:
    """(--cluster, --region) checked, before any AWS client exists."""
    if cluster is not None and stack is not None:
        fail("--stack is the older spelling of --cluster: give one of them")
    try:
        return inputs.cluster(cluster if stack is None else stack), inputs.region(region)
    except JobsError as error:
        fail(str(error), error.code)


def connect(cluster: str | None, region: str | None):
    from mlcdk.aws.jobs.clusters import connect as connect_to

    return connect_to(region, cluster)


@app.command("clusters", cls=PlainFlagsCommand)
def clusters(region: Optional[str] = REGION, as_json: bool = JSON) -> None:
    """The TrainingClusters (AWS Batch engine) in a region, found by the tags on their job queues."""
    from mlcdk.aws.jobs.aws import session
    from mlcdk.aws.jobs.clusters import list_clusters

    _, region = target(None, None, region)
    with handled():
        found_session = session(region)
        found = list_clusters(found_session.client("batch"), found_session.region_name)
    if as_json:
        print_json({"region": found_session.region_name, "clusters": [
            {"name": c.name, "queue": c.queue, "state": c.state, "status": c.status, "jobDefinition": c.definition,
             "logGroup": c.log_group, "maxNodes": c.max_nodes or None, "bucket": c.bucket, "problem": c.problem}
            for c in found]})
        return
    table = Table(title=f"{len(found)} cluster(s) in {found_session.region_name}")
    for column in ("name", "max nodes", "queue", "state", "job definition", "log group"):
        table.add_column(column, justify="right" if column == "max nodes" else "left", overflow="fold")
    for c in found:
        table.add_row(c.name, str(c.max_nodes or "-"), c.queue.rsplit("/", 1)[-1],
                      c.state if c.problem is None else f"{c.state}; {c.problem}", c.definition.rsplit("/", 1)[-1],
                      c.log_group)
    out.print(table, highlight=False)


def _request(command: list[str], options: dict) -> "JobRequest":
    """The submit command line as a JobRequest, every value checked (before any AWS client exists)."""
    from mlcdk.aws.jobs import workdir
    from mlcdk.aws.jobs.submit import JobRequest

    if not command:
        raise JobsError("no command to run: put it after --, e.g. `mlcdk submit -- python train.py`")
    name = options["name"] or f"mlcdk-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}"
    if options["nodes"] is not None and options["nodes"] < 1:
        raise JobsError(f"--nodes {options['nodes']} must be at least 1")
    return JobRequest(
        command=tuple(command), name=inputs.job_name(name), nodes=options["nodes"], image=inputs.image(options["image"]),
        env=inputs.environment(options["env"]), timeout_s=inputs.duration_seconds(options["timeout"]),
        retries=inputs.retries(options["retries"]), depends_on=inputs.dependencies(options["depends_on"]),
        array_size=inputs.array_size(options["array"]),
        workdir=workdir.pack(options["workdir"]) if options["workdir"] is not None else None)


@app.command("submit", cls=PlainFlagsCommand, context_settings={"allow_interspersed_args": False})
def submit(
    command: Optional[list[str]] = typer.Argument(
        None, metavar="COMMAND", show_default=False,
        help="What every node runs, e.g. -- python train.py; the mlcdk launcher starts it under torchrun."),
    cluster: Optional[str] = CLUSTER,
    region: Optional[str] = REGION,
    workdir: Optional[str] = typer.Option(
        None, "--workdir", help="Send this directory (the files git tracks, else all but caches; at most 100 MiB) and "
                                "run COMMAND in it on every node."),
    nodes: Optional[int] = typer.Option(None, help="Nodes for this job, 1 to the cluster's limit. Default: the limit."),
    env: list[str] = typer.Option([], "--env", metavar="NAME=VALUE", show_default=False,
                                  help="An environment variable for the job (repeatable). No secrets: see README."),
    timeout: Optional[str] = typer.Option(None, help="Stop an attempt after this long, e.g. 90m, 2h, 1.5d "
                                                     "(60 s to 14 days). Default: the cluster's."),
    retries: Optional[int] = typer.Option(None, help="Retries after the first attempt (0-9), on the cluster's "
                                                     "rules (host failures). Default: the cluster's."),
    depends_on: list[str] = typer.Option([], "--depends-on", metavar="JOB", show_default=False,
                                         help="Start only after this job succeeds (repeatable, at most 20)."),
    array: Optional[int] = typer.Option(None, help="An array of N child jobs (2-10,000), each with "
                                                   "AWS_BATCH_JOB_ARRAY_INDEX; one-node clusters only."),
    image: Optional[str] = typer.Option(
        None, help="Run this image instead: registers a revision of the job definition with it."),
    name: Optional[str] = typer.Option(None, help="Job name. Default: mlcdk-<UTC timestamp>."),
    wait: bool = typer.Option(False, "--wait", metavar="", help="Follow the job, print node 0's log, and exit with "
                                                               "the job's exit code."),
    as_json: bool = typer.Option(False, "--json", metavar="", help="Print JSON instead of the job ID."),
    stack: Optional[str] = STACK,
) -> None:
    """Submit a job to the cluster's queue and print its ID."""
    from mlcdk.aws.jobs.submit import submit as submit_job

    options = dict(nodes=nodes, image=image, name=name, env=env, timeout=timeout, retries=retries,
                   depends_on=depends_on, array=array, workdir=workdir)
    cluster, region = target(cluster, stack, region)
    try:
        request = _request(command or [], options)
    except JobsError as error:
        fail(str(error), error.code)
    for note in request.workdir.left_out if request.workdir else ():
        err.print(f"--workdir: left out {note}", highlight=False, markup=False)
    with handled():
        connection = connect(cluster, region)
        done = submit_job(connection, request)
    _report(done, request, connection.cluster.definition, as_json)
    if wait:
        try:
            with handled():
                code = wait_for(connection, done.job_id, array=done.array_size is not None, log_to_stderr=as_json)
        except KeyboardInterrupt:
            err.print(f"stopped following job {done.job_id}; it goes on (stop it with: mlcdk cancel {done.job_id})",
                      highlight=False, markup=False)
            raise typer.Exit(130) from None
        raise typer.Exit(code)


def _report(done, request, definition: str, as_json: bool) -> None:
    if done.registered:
        err.print(f"--image: registered {done.registered}, a copy of {definition} with image {request.image}",
                  highlight=False, markup=False)
    if done.workdir_uri:
        err.print(f"--workdir: {'uploaded' if done.uploaded else 'already uploaded'} {done.workdir_uri}",
                  highlight=False, markup=False)
    if as_json:
        print_json({"jobId": done.job_id, "jobName": done.name, "queue": done.queue, "definition": done.definition,
                    "nodes": done.nodes, "arraySize": done.array_size, "workdir": done.workdir_uri})
        return
    typer.echo(done.job_id)
    shape = f"an array of {done.array_size}" if done.array_size else f"{done.nodes} node(s)"
    err.print(f"submitted {done.name} on {shape}; follow it with: mlcdk logs {done.job_id} --follow",
              highlight=False, markup=False)


def wait_for(connection, job_id: str, array: bool = False, log_to_stderr: bool = False) -> int:
    """Follow job ``job_id`` (status changes on stderr, node 0's log on stdout, or on stderr after --json's
    document); return its exit code."""
    started, last = time.monotonic(), None
    updates = follow.wait_array(connection, job_id) if array else follow.follow(connection, job_id)
    with err.status("", spinner="dots") if err.is_terminal else _nothing() as status:
        for update in updates:
            job = update.job
            summary = job.get("arrayProperties", {}).get("statusSummary")
            state = job["status"] + (f" ({job['statusReason']})" if job.get("statusReason") else "")
            state += f" {summary}" if summary else ""
            line = f"[{time.monotonic() - started:6.0f} s] job {job_id}: {state}"
            if status is not None:
                status.update(line)
            elif state != last:
                err.print(line, highlight=False, markup=False)
            last = state
            for text in update.lines:
                typer.echo(text, err=log_to_stderr)
    code = None if array else follow.exit_code(connection, job)
    return _exit_status(job_id, job, code)


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


def _exit_status(job_id: str, job: dict, code: int | None) -> int:
    reason = f": {job['statusReason']}" if job.get("statusReason") else ""
    if job["status"] == "SUCCEEDED":
        err.print(f"job {job_id} SUCCEEDED", highlight=False, markup=False)
        return code or 0
    said = f" (exit code {code})" if code is not None else ""
    err.print(f"job {job_id} FAILED{reason}{said}", highlight=False, markup=False)
    return code if code else 1


@app.command("jobs", cls=PlainFlagsCommand)
def list_jobs(
    cluster: Optional[str] = CLUSTER,
    region: Optional[str] = REGION,
    status: Optional[str] = typer.Option(None, help=f"Only jobs in this status: {', '.join(follow.STATUSES)}. "
                                                    "Default: all."),
    as_json: bool = JSON,
    stack: Optional[str] = STACK,
) -> None:
    """Recent jobs on the cluster's queue, newest first, with each job's status reason."""
    wanted = follow.STATUSES if status is None else (status.upper(),)
    if wanted[0] not in follow.STATUSES:
        fail(f"--status {status!r} is not a job status; use one of {', '.join(follow.STATUSES)}")
    cluster, region = target(cluster, stack, region)
    with handled():
        connection = connect(cluster, region)
        rows = follow.list_jobs(connection, wanted)
    queue = connection.cluster.queue
    if as_json:
        print_json({"cluster": connection.cluster.name, "queue": queue, "jobs": rows})
        return
    table = Table(title=f"{len(rows)} job(s) on cluster {connection.cluster.name} ({queue.rsplit('/', 1)[-1]})")
    for column in ("id", "name", "status", "nodes", "created (UTC)"):
        table.add_column(column, justify="right" if column == "nodes" else "left", no_wrap=column == "id")
    for row in rows:
        table.add_row(row["jobId"], row["jobName"], row["status"], str(row["nodes"] or "-"), row["createdAt"] or "-")
    out.print(table, highlight=False)
    # Status reasons are why a job waits, failed or was cancelled (a queue's time limit gives a long one): printed
    # whole, below the table, where no column width can cut them.
    for row in rows:
        if row["statusReason"]:
            out.print(f"{row['jobId']} {row['status']}: {row['statusReason']}", highlight=False, markup=False,
                      soft_wrap=True)
