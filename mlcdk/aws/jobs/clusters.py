"""Clusters found by name: the Batch job queues that carry the ``mlcdk:cluster`` tag (mlcdk.presets.discovery)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlcdk.aws.jobs.aws import JobsError, session
from mlcdk.errors import close_matches
from mlcdk.presets import discovery


@dataclass(frozen=True)
class Cluster:
    """One TrainingCluster as its job queue's tags describe it. ``problem`` says why it cannot take jobs (a tag
    missing or malformed), else None."""

    name: str
    region: str
    queue: str  #: the job queue's ARN
    state: str  #: ENABLED or DISABLED
    status: str  #: VALID, INVALID, CREATING...
    definition: str  #: the job definition's ARN, with its revision
    log_group: str
    max_nodes: int
    bucket: str  #: the checkpoint bucket: `--workdir` packs go under it
    problem: str | None = None

    @property
    def stack(self) -> str:
        return self.name.split("/", 1)[0]

    def require_usable(self) -> None:
        if self.problem is not None:
            raise JobsError(f"cluster {self.name!r} in {self.region}: {self.problem}")


def from_queue(queue: dict[str, Any], region: str) -> Cluster | None:
    """The cluster a DescribeJobQueues entry belongs to, or None for a queue without the cluster tag."""
    tags = queue.get("tags") or {}
    if discovery.CLUSTER_TAG not in tags:
        return None
    missing = [key for key in discovery.QUEUE_TAGS if not tags.get(key)]
    nodes = tags.get(discovery.MAX_NODES_TAG, "")
    problem = None
    if missing:
        problem = f"its job queue lacks the tag(s) {', '.join(missing)}; deploy the cluster again with mlcdk"
    elif not nodes.isdigit() or int(nodes) < 1:
        problem = f"its job queue's tag {discovery.MAX_NODES_TAG}={nodes!r} is not a positive whole number"
    return Cluster(tags[discovery.CLUSTER_TAG], region, queue["jobQueueArn"], queue.get("state", ""),
                   queue.get("status", ""), tags.get(discovery.DEFINITION_TAG, ""),
                   tags.get(discovery.LOG_GROUP_TAG, ""), int(nodes) if problem is None else 0,
                   tags.get(discovery.BUCKET_TAG, ""), problem)


def list_clusters(batch: Any, region: str) -> list[Cluster]:
    """Every cluster in the region of ``batch`` (a boto3 Batch client), sorted by name."""
    found = [from_queue(queue, region) for page in batch.get_paginator("describe_job_queues").paginate()
             for queue in page["jobQueues"]]
    return sorted((cluster for cluster in found if cluster is not None), key=lambda cluster: cluster.name)


def choose(clusters: list[Cluster], region: str, name: str | None) -> Cluster:
    """The cluster named ``name`` (or, for a name without "/", the one cluster of the stack of that name); with no
    name, the region's only cluster. JobsError names what is there when that is not one cluster."""
    names = [cluster.name for cluster in clusters]
    if not clusters:
        raise JobsError(f"no mlcdk cluster in {region}: no AWS Batch job queue there has the {discovery.CLUSTER_TAG} "
                        "tag; deploy a TrainingCluster with engine='batch', or pass --region")
    if name is None:
        if len(clusters) > 1:
            raise JobsError(f"{len(clusters)} clusters in {region} ({', '.join(names)}): pass --cluster NAME")
        return clusters[0]
    matches = [c for c in clusters if c.name == name] or [c for c in clusters if "/" not in name and c.stack == name]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise JobsError(f"--cluster {name!r}: stack {name} holds {len(matches)} clusters "
                        f"({', '.join(c.name for c in matches)}); pass one of those names")
    hint = close_matches(name, names)
    raise JobsError(f"--cluster {name!r}: no such cluster in {region}; "
                    + (f"did you mean {' or '.join(map(repr, hint))}?" if hint else f"clusters there: {', '.join(names)}"))


@dataclass
class Connection:
    """A session in one region, and the cluster the job commands work on."""

    session: Any
    cluster: Cluster
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service)
        return self._clients[service]

    @property
    def batch(self) -> Any:
        return self.client("batch")


def connect(region: str | None, name: str | None) -> Connection:
    """The cluster ``name`` (see :func:`choose`) in ``region``. Call inside :func:`mlcdk.aws.jobs.aws.aws_errors`."""
    found = session(region)
    batch = found.client("batch")
    cluster = choose(list_clusters(batch, found.region_name), found.region_name, name)
    cluster.require_usable()
    connection = Connection(found, cluster)
    connection._clients["batch"] = batch
    return connection


def find_job(connection: Connection, job_id: str) -> dict[str, Any]:
    """The job's description; JobsError when there is none, or when it runs on another cluster's queue."""
    found = connection.batch.describe_jobs(jobs=[job_id])["jobs"]
    cluster = connection.cluster
    if not found:
        raise JobsError(f"no job {job_id!r} in {cluster.region}; `mlcdk jobs` lists the recent ones")
    queue = found[0].get("jobQueue", "")
    if queue.rsplit("/", 1)[-1] != cluster.queue.rsplit("/", 1)[-1]:
        raise JobsError(f"job {job_id} runs on {queue}, not on cluster {cluster.name!r}'s queue; pass the --cluster it "
                        "belongs to")
    return found[0]
