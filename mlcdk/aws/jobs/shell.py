"""``mlcdk shell JOB [--node N]``: a shell in a running job's container, through Amazon ECS Exec.

Why ECS Exec, and not Session Manager on the node: AWS Batch runs jobs as ECS tasks and supports ECS Exec for them
(AWS What's New, 2025-04, "AWS Batch now supports Amazon ECS Exec and AWS FireLens log router"; the job definition's
``enableExecuteCommand``, in container and multi-node node-range properties alike, Batch API reference
"ContainerProperties"), and the ECS-optimized AMIs the Batch engine runs carry the agent binaries ECS Exec mounts into
the container (aws/amazon-ecs-ami, scripts/install-exec-dependencies.sh). Those AMIs are built from the minimal
Amazon Linux 2023 AMI without the host SSM agent (aws/amazon-ecs-ami, generate-release-vars.sh and
check-update-security.sh, which installs the agent itself), so a Session Manager session to a Batch node has no
agent to talk to. ECS Exec lands in the job's own container, with its environment, on any node of the job.

It needs, as the ECS Developer Guide ("Using Amazon ECS Exec for debugging") lists: ``enableExecuteCommand`` on the
job definition and the ``ssmmessages`` channel actions on the job role (the Batch engine sets both unless
``JobOptions(shell=False)``); ``ecs:ExecuteCommand`` for you; and the AWS CLI with the Session Manager plugin on
your machine. The session is the AWS CLI's ``aws ecs execute-command``, which this module builds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlcdk.aws.jobs.aws import JobsError
from mlcdk.aws.jobs.clusters import Connection, find_job
from mlcdk.aws.jobs.follow import container_details, node_count, node_job


@dataclass(frozen=True)
class ShellTarget:
    """Where ``aws ecs execute-command`` connects: the ECS cluster and task of one node of a job."""

    region: str
    ecs_cluster: str
    task: str

    def command(self, program: str) -> list[str]:
        return ["aws", "ecs", "execute-command", "--region", self.region, "--cluster", self.ecs_cluster,
                "--task", self.task, "--interactive", "--command", program]


def _exec_enabled(connection: Connection, job: dict[str, Any]) -> bool:
    found = connection.batch.describe_job_definitions(jobDefinitions=[job["jobDefinition"]])["jobDefinitions"]
    definition = found[0] if found else {}
    containers = [definition.get("containerProperties") or {}] + [
        r.get("container") or {} for r in definition.get("nodeProperties", {}).get("nodeRangeProperties", [])]
    return any(container.get("enableExecuteCommand") for container in containers)


def _ecs_cluster(connection: Connection, task: str) -> str:
    """The ECS cluster of ``task``: named in the task's ARN (arn:...:task/<cluster>/<id>), else the queue's
    compute environment's."""
    parts = task.split(":", 5)[-1].split("/")
    if len(parts) == 3 and parts[0] == "task":
        return parts[1]
    queues = connection.batch.describe_job_queues(jobQueues=[connection.cluster.queue])["jobQueues"]
    environments = [e["computeEnvironment"] for q in queues for e in q.get("computeEnvironmentOrder", [])]
    clusters = [e.get("ecsClusterArn") for e in connection.batch.describe_compute_environments(
        computeEnvironments=environments)["computeEnvironments"] if e.get("ecsClusterArn")]
    if len(clusters) != 1:
        raise JobsError(f"cannot tell which ECS cluster runs task {task}")
    return clusters[0]


def target(connection: Connection, job_id: str, node: int) -> ShellTarget:
    """The ECS task of node ``node`` of running job ``job_id``; JobsError when there is no shell to open."""
    job = find_job(connection, job_id)
    if not 0 <= node < node_count(job):
        raise JobsError(f"--node {node} is out of range: job {job_id} has node(s) 0 to {node_count(job) - 1}")
    if job["status"] != "RUNNING":
        raise JobsError(f"job {job_id} is {job['status']}: a shell opens in a RUNNING job's container")
    if not _exec_enabled(connection, job):
        raise JobsError(f"job {job_id}'s job definition has ECS Exec off (enableExecuteCommand): the cluster was built "
                        "with JobOptions(shell=False), or before mlcdk turned it on; deploy it again to turn it on")
    task = container_details(node_job(connection, job, node)).get("taskArn")
    if not task:
        raise JobsError(f"node {node} of job {job_id} has no ECS task yet; try again when it has started")
    return ShellTarget(connection.cluster.region, _ecs_cluster(connection, task), task)
