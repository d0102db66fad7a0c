"""Submitting a job to a cluster's queue: every node runs the command under the mlcdk launcher (mlcdk.launch).

Everything that can be checked is checked before anything is changed: the node count against the cluster's
limit, ``--array`` against the job definition's type, each ``--depends-on`` job against Batch. Only then is the
work directory uploaded, a job definition revision registered (``--image``) and the job submitted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlcdk.aws.jobs import workdir as workdirs
from mlcdk.aws.jobs.aws import JobsError
from mlcdk.aws.jobs.clusters import Connection
from mlcdk.aws.jobs.workdir import Pack
from mlcdk.launch import inline_command

#: Why ``--array`` is refused on a multi-node cluster: SubmitJob answers a multi-node parallel job with
#: arrayProperties with "Multinode Array Job not supported" (quoted in apache/airflow pull request #29522), and the
#: Batch User Guide ("Array jobs") describes array children as single-node ("basic") jobs.
ARRAY_ON_MULTINODE = ("Batch runs array jobs of single-node job definitions only (SubmitJob answers a multi-node "
                      "parallel job with arrayProperties: \"Multinode Array Job not supported\"); use a one-node "
                      "TrainingCluster for arrays")


@dataclass(frozen=True)
class JobRequest:
    """What to run and how; every value already checked by mlcdk.aws.jobs.inputs."""

    command: tuple[str, ...]
    name: str
    nodes: int | None = None  #: default: the cluster's node limit
    image: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    timeout_s: int | None = None
    retries: int | None = None  #: retries after the first attempt
    depends_on: tuple[str, ...] = ()
    array_size: int | None = None
    workdir: Pack | None = None


@dataclass(frozen=True)
class Submitted:
    job_id: str
    name: str
    queue: str
    definition: str
    nodes: int
    array_size: int | None
    workdir_uri: str | None
    uploaded: bool  #: False when the same pack was already in the bucket
    registered: str | None  #: the job definition revision --image registered


def definition_of(connection: Connection) -> dict[str, Any]:
    found = connection.batch.describe_job_definitions(jobDefinitions=[connection.cluster.definition])["jobDefinitions"]
    if not found:
        raise JobsError(f"cluster {connection.cluster.name!r}: its job definition {connection.cluster.definition} does "
                        "not exist (deregistered?); deploy the cluster again")
    return found[0]


def _containers(found: dict[str, Any]) -> list[dict[str, Any]]:
    if found.get("type") == "container":
        return [found["containerProperties"]] if "containerProperties" in found else []
    ranges = found.get("nodeProperties", {}).get("nodeRangeProperties", [])
    containers = [r["container"] for r in ranges if "container" in r]
    return containers if len(containers) == len(ranges) else []


def with_image(batch: Any, found: dict[str, Any], image: str) -> str:
    """Register a revision of job definition ``found`` that runs ``image`` in every container; return its ARN."""
    containers = _containers(found)
    if not containers:
        raise JobsError(f"--image: job definition {found['jobDefinitionArn']} has no containers to run the image in")
    accepted = batch.meta.service_model.operation_model("RegisterJobDefinition").input_shape.members
    revision = {key: value for key, value in found.items() if key in accepted}
    for container in containers:
        container["image"] = image
    return batch.register_job_definition(**revision)["jobDefinitionArn"]


def _check_dependencies(connection: Connection, job_ids: tuple[str, ...]) -> None:
    if not job_ids:
        return
    found = {job["jobId"]: job for job in connection.batch.describe_jobs(jobs=list(job_ids))["jobs"]}
    for job_id in job_ids:
        if job_id not in found:
            raise JobsError(f"--depends-on {job_id}: no such job in {connection.cluster.region}")
        if found[job_id]["status"] == "FAILED":
            raise JobsError(f"--depends-on {job_id}: that job FAILED, so this one would fail at once (Batch User Guide, "
                            "\"Job dependencies\")")


def _nodes(request: JobRequest, found: dict[str, Any], connection: Connection) -> int:
    multinode, limit = found.get("type") != "container", connection.cluster.max_nodes
    nodes = limit if request.nodes is None else request.nodes
    if not 1 <= nodes <= limit:
        raise JobsError(f"--nodes {nodes} is out of range: 1 to {limit} (cluster {connection.cluster.name!r}'s node "
                        "limit)")
    if request.array_size is not None and multinode:
        raise JobsError(f"--array {request.array_size}: the cluster runs multi-node parallel jobs; {ARRAY_ON_MULTINODE}")
    return nodes


def _overrides(request: JobRequest, found: dict[str, Any], nodes: int, env: Mapping[str, str]) -> dict[str, Any]:
    run: dict[str, Any] = {"command": inline_command(["--", *request.command])}
    if env:
        run["environment"] = [{"name": name, "value": value} for name, value in env.items()]
    if found.get("type") == "container":  # a one-node cluster (also every spot one): a single-node job
        extra = {"containerOverrides": run}
    else:
        extra = {"nodeOverrides": {"numNodes": nodes, "nodePropertyOverrides": [
            {"targetNodes": "0:", "containerOverrides": run}]}}
    if request.timeout_s is not None:
        extra["timeout"] = {"attemptDurationSeconds": request.timeout_s}
    if request.retries is not None:  # a SubmitJob retry strategy replaces the definition's: keep its rules
        rules = (found.get("retryStrategy") or {}).get("evaluateOnExit")
        extra["retryStrategy"] = {"attempts": request.retries + 1, **({"evaluateOnExit": rules} if rules else {})}
    if request.depends_on:
        extra["dependsOn"] = [{"jobId": job_id} for job_id in request.depends_on]
    if request.array_size is not None:
        extra["arrayProperties"] = {"size": request.array_size}
    return extra


def submit(connection: Connection, request: JobRequest) -> Submitted:
    """Check, then upload the workdir, register an --image revision if asked, and submit the job."""
    cluster, batch = connection.cluster, connection.batch
    found = definition_of(connection)
    nodes = _nodes(request, found, connection)
    _check_dependencies(connection, request.depends_on)
    env, uploaded, uri = dict(request.env), False, None
    if request.workdir is not None:
        uploaded = workdirs.upload(connection.client("s3"), cluster.bucket, request.workdir)
        env.update(workdirs.environment(cluster.bucket, cluster.region, request.workdir))
        uri = f"s3://{cluster.bucket}/{request.workdir.key}"
    registered = with_image(batch, found, request.image) if request.image is not None else None
    definition = registered or found["jobDefinitionArn"]
    job_id = batch.submit_job(jobName=request.name, jobQueue=cluster.queue, jobDefinition=definition,
                              **_overrides(request, found, nodes, env))["jobId"]
    return Submitted(job_id, request.name, cluster.queue, definition, nodes, request.array_size, uri, uploaded,
                     registered)
