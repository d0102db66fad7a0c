"""`mlcdk logs|cancel|shell`: one job of a cluster (mlcdk.cli.jobs finds the cluster the same way)."""

from __future__ import annotations

import os
import shutil
from typing import Optional

import typer

from mlcdk.aws.jobs import JobsError, follow, inputs
from mlcdk.cli._common import PlainFlagsCommand, err, fail, out
from mlcdk.cli.jobs import CLUSTER, REGION, STACK, connect, handled, target

app = typer.Typer()

JOB = typer.Argument(..., help="The job ID that `mlcdk submit` printed.")
#: What `mlcdk shell` needs on this machine besides boto3 (ECS Developer Guide, "Using Amazon ECS Exec").
SHELL_TOOLS = {"aws": "the AWS CLI (https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html)",
               "session-manager-plugin": "the Session Manager plugin (https://docs.aws.amazon.com/systems-manager/"
                                         "latest/userguide/session-manager-working-with-install-plugin.html)"}


def _job(job_id: str) -> str:
    try:
        return inputs.job_id(job_id)
    except JobsError as error:
        fail(str(error), error.code)


@app.command("logs", cls=PlainFlagsCommand)
def logs(
    job_id: str = JOB,
    node: int = typer.Option(0, help="Which node's log: 0 (the main node) to the job's node count - 1."),
    follow_log: bool = typer.Option(False, "--follow", "-f", metavar="",
                                    help="Keep printing until the job succeeds or fails."),
    cluster: Optional[str] = CLUSTER,
    region: Optional[str] = REGION,
    stack: Optional[str] = STACK,
) -> None:
    """Print one node's CloudWatch log of a job."""
    job_id = _job(job_id)
    cluster, region = target(cluster, stack, region)
    update, total, waiting = None, 0, False
    with handled():
        connection = connect(cluster, region)
        try:
            for update in follow.follow(connection, job_id, node, keep_going=follow_log):
                for line in update.lines:
                    typer.echo(line)
                total += len(update.lines)
                if update.stream is None and follow_log and not update.finished and not waiting:
                    waiting = True
                    err.print(f"waiting for node {node} of job {job_id} to start ({update.job['status']})...",
                              highlight=False, markup=False)
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
    job = update.job
    state = job["status"] + (f" ({job['statusReason']})" if job.get("statusReason") else "")
    if update.stream is None:
        err.print(f"job {job_id} is {state}: node {node} has no log stream"
                  + ("" if update.finished else " yet; --follow waits for it"), highlight=False, markup=False)
    elif total == 0:
        err.print(f"job {job_id} is {state}: no log events in {connection.cluster.log_group} {update.stream}",
                  highlight=False, markup=False)


@app.command("cancel", cls=PlainFlagsCommand)
def cancel(
    job_id: str = JOB,
    reason: str = typer.Option("cancelled with mlcdk cancel", help="Why; Batch shows it as the job's status reason."),
    cluster: Optional[str] = CLUSTER,
    region: Optional[str] = REGION,
    stack: Optional[str] = STACK,
) -> None:
    """Stop a job: a queued one is cancelled, a starting or running one terminated; a finished one is left alone."""
    job_id = _job(job_id)
    if not reason.strip():
        fail("--reason must not be empty")
    cluster, region = target(cluster, stack, region)
    with handled():
        status, sent = follow.cancel(connect(cluster, region), job_id, reason)
    if not sent:
        out.print(f"job {job_id} already {status}; nothing to cancel", highlight=False)
    elif status in follow.QUEUED:
        out.print(f"cancelled job {job_id}: it was {status}, so it never starts", highlight=False)
    else:
        out.print(f"terminating job {job_id}: it was {status}; Batch stops its nodes", highlight=False)


@app.command("shell", cls=PlainFlagsCommand)
def shell(
    job_id: str = JOB,
    node: int = typer.Option(0, help="Which node: 0 (the main node) to the job's node count - 1."),
    command: str = typer.Option("/bin/bash", help="What to run in the container."),
    cluster: Optional[str] = CLUSTER,
    region: Optional[str] = REGION,
    stack: Optional[str] = STACK,
) -> None:
    """A shell in a running job's container on one node, through Amazon ECS Exec (`aws ecs execute-command`)."""
    from mlcdk.aws.jobs.shell import target as shell_target

    job_id = _job(job_id)
    if not command.strip():
        fail("--command must not be empty")
    cluster, region = target(cluster, stack, region)
    missing = [what for tool, what in SHELL_TOOLS.items() if shutil.which(tool) is None]
    if missing:
        fail(f"`mlcdk shell` runs `aws ecs execute-command`, which needs {' and '.join(missing)}")
    with handled():
        argv = shell_target(connect(cluster, region), job_id, node).command(command)
    err.print(f"running: {' '.join(argv)}", highlight=False, markup=False)
    os.execvp(argv[0], argv)
