"""What the job command tests share: a cluster in moto, as a TrainingCluster's tags describe it, and CLI helpers.

moto 5.2.5 models Batch multi-node jobs only in part; where it falls short the tests say so and work around it
through moto itself (its request recorder, its own job model), never with a hand-rolled AWS stand-in:
- SubmitJob drops nodeOverrides and DescribeJobDefinitions leaves out nodeProperties (which `submit --image`
  copies): the `moto_gaps` fixture applies the emulator's own fixes (mlcdk.emulator.fixes), and the request as
  sent is also read back from moto's recorder;
- a multi-node job has no node jobs `<id>#<n>` (real Batch's carry each node's log stream): `add_node_job` adds one;
- jobs finish at once (use_docker False), so tests that need a queued or running job set its status in moto's model.
"""
from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.batch.models import Job, batch_backends
from moto.moto_api import recorder
from typer.testing import CliRunner

from mlcdk.cli import app

REGION = "us-west-2"
ACCOUNT = "123456789012"  # moto's
IMAGE = "123456789012.dkr.ecr.us-west-2.amazonaws.com/train:1"
LOG_GROUP = "/mlcdk/TrainingStack/jobs"
BUCKET = "trainingstack-checkpoints"
CLUSTER = "TrainingStack/Cluster"
USER_COMMAND = ["python", "train.py", "--lr", "3e-4"]
CMD = ["--", "python", "train.py"]


@dataclass
class Cloud:
    batch: Any
    logs: Any
    s3: Any
    queue: str
    definition: str
    environment: str

    def add_cluster(self, name: str, *, definition: str | None = None, max_nodes: str = "4", queue_name: str = "",
                    **tags: str) -> str:
        """A job queue tagged as a TrainingCluster tags its own (mlcdk.presets.discovery); returns its ARN."""
        from mlcdk.presets import discovery

        values = {discovery.CLUSTER_TAG: name, discovery.DEFINITION_TAG: definition or self.definition,
                  discovery.LOG_GROUP_TAG: LOG_GROUP, discovery.MAX_NODES_TAG: max_nodes, discovery.BUCKET_TAG: BUCKET}
        values.update({f"mlcdk:{key.replace('_', '-')}": value for key, value in tags.items()})
        return self.batch.create_job_queue(
            jobQueueName=queue_name or name.replace("/", "-") + "-queue", state="ENABLED", priority=1,
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": self.environment}],
            tags={k: v for k, v in values.items() if v is not None})["jobQueueArn"]

    def job(self, job_id: str) -> dict[str, Any]:
        return self.batch.describe_jobs(jobs=[job_id])["jobs"][0]

    def write_log(self, stream: str, *messages: str, group: str = LOG_GROUP) -> None:
        now = int(time.time() * 1000)
        events = [{"timestamp": now + i, "message": m} for i, m in enumerate(messages)]
        self.logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)


def moto_job(job_id: str) -> Job:
    return batch_backends[ACCOUNT][REGION].get_job_by_id(job_id)


def set_status(job_id: str, status: str, reason: str | None = None) -> None:
    """moto's jobs succeed at once; a test that needs a queued or running job sets its status in moto's model."""
    moto_job(job_id).status = status
    if reason is not None:
        moto_job(job_id).job_stopped_reason = reason


def add_node_job(cloud: Cloud, job_id: str, node: int, group: str = LOG_GROUP) -> str:
    """Add node job `<id>#<node>` with a log stream, which moto lacks; return the stream's name.

    Real Batch starts a multi-node job as node jobs `<id>#0`, `<id>#1`, ..., each with its own log stream;
    moto runs it as one job. The node job here is moto's own model, kept off the queue's listing as in Batch.
    """
    backend, parent = batch_backends[ACCOUNT][REGION], moto_job(job_id)
    node_job = Job(parent.job_name, parent.job_definition, parent.job_queue, backend, log_backend=backend.logs_backend,
                   container_overrides=None, eks_properties_override=None, depends_on=None, parameters=None,
                   all_jobs=backend._jobs, timeout=None, array_properties={}, provided_job_id=f"{job_id}#{node}")
    parent.job_queue.jobs.remove(node_job)
    node_job.log_stream_name = node_job._stream_name
    backend._jobs[node_job.job_id] = node_job
    cloud.logs.create_log_stream(logGroupName=group, logStreamName=node_job.log_stream_name)
    return node_job.log_stream_name


def load_moto_fixes():
    """The emulator's moto fixes (mlcdk.emulator.fixes: ``moto_fixes()``, the same as its server applies)."""
    from mlcdk.emulator import fixes

    return fixes


@pytest.fixture
def moto_gaps():
    """The emulator's fixes of moto 5.2.5 (mlcdk.emulator.fixes), among them: DescribeJobDefinitions returns
    nodeProperties, and SubmitJob keeps nodeOverrides, as real Batch does."""
    with load_moto_fixes().moto_fixes():
        yield


def aws_environment(monkeypatch) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(var, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    # moto's EC2 backend otherwise makes its ~5,200 sample AMIs for every region it touches (0.3-0.7 s per test);
    # these tests run no instance and read no AMI (moto's documented setting; moto/settings.py).
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")


def job_definition(batch: Any, name: str = "mlcdk-train", nodes: int = 4, **container: Any) -> str:
    body = {"image": IMAGE, "command": ["true"], "environment": [{"name": "MLCDK_NPROC_PER_NODE", "value": "8"}],
            "resourceRequirements": [{"type": "VCPU", "value": "4"}, {"type": "MEMORY", "value": "8192"}], **container}
    if nodes == 1:
        return batch.register_job_definition(jobDefinitionName=name, type="container", containerProperties=body,
                                             tags={"mlcdk:cluster": name})["jobDefinitionArn"]
    return batch.register_job_definition(
        jobDefinitionName=name, type="multinode", tags={"mlcdk:cluster": name},
        retryStrategy={"attempts": 3, "evaluateOnExit": [{"action": "RETRY", "onStatusReason": "Host EC2*"},
                                                         {"action": "EXIT", "onExitCode": "*"}]},
        nodeProperties={"numNodes": nodes, "mainNode": 0, "nodeRangeProperties": [{"targetNodes": "0:",
                                                                                    "container": body}]},
    )["jobDefinitionArn"]


@pytest.fixture
def cloud(monkeypatch, moto_gaps):
    """A compute environment, a multinode job definition, a log group, a bucket, and the job queue of cluster
    TrainingStack/Cluster, tagged as a deployed TrainingCluster tags it."""
    aws_environment(monkeypatch)
    with mock_aws(config={"batch": {"use_docker": False}}):
        ec2, iam, batch = boto3.client("ec2"), boto3.client("iam"), boto3.client("batch")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
        group = ec2.create_security_group(GroupName="jobs", Description="jobs", VpcId=vpc)["GroupId"]
        role = iam.create_role(RoleName="batch", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        profile = iam.create_instance_profile(InstanceProfileName="ecs")["InstanceProfile"]["Arn"]
        environment = batch.create_compute_environment(
            computeEnvironmentName="mlcdk-ce", type="MANAGED", state="ENABLED", serviceRole=role,
            computeResources={"type": "EC2", "minvCpus": 0, "maxvCpus": 256, "instanceTypes": ["c5.large"],
                              "subnets": [subnet], "securityGroupIds": [group], "instanceRole": profile},
        )["computeEnvironmentArn"]
        definition = job_definition(batch)
        logs, s3 = boto3.client("logs"), boto3.client("s3")
        logs.create_log_group(logGroupName=LOG_GROUP)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        cloud = Cloud(batch, logs, s3, "", definition, environment)
        cloud.queue = cloud.add_cluster(CLUSTER, queue_name="mlcdk-queue")
        yield cloud


@pytest.fixture
def sent(tmp_path, monkeypatch):
    """The bodies of the Batch requests of one kind that reached moto, as sent (moto's request recorder)."""
    monkeypatch.setattr(recorder, "_location", str(tmp_path / "requests.jsonl"))
    recorder.reset_recording()
    recorder.start_recording()

    def bodies(action: str) -> list[dict[str, Any]]:
        entries = [json.loads(line) for line in recorder.download_recording().splitlines()]
        return [json.loads(base64.b64decode(e["body"]) if e["body_encoded"] else e["body"])
                for e in entries if e["url"].endswith(f"/v1/{action}")]

    yield bodies
    recorder.stop_recording()


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def error_line(result, code: int = 2) -> str:
    """The one line on stderr of a command that failed with ``code``; nothing on stdout, no traceback."""
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert result.stdout == "" and "Traceback" not in result.output
    return lines[0]


def submit(*args: str) -> str:
    result = invoke("submit", *args, "--", *USER_COMMAND)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result.stdout.strip()
