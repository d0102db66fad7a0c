"""`mlcdk submit|jobs|logs|cancel` against moto: a queue, a multinode job definition and a stack publishing them.

moto 5.2.5 models Batch multi-node jobs only in part; where it falls short the test says so and works around
it through moto itself (its request recorder, its own job model), never with a hand-rolled AWS stand-in:
- SubmitJob drops nodeOverrides and DescribeJobDefinitions leaves out nodeProperties (which `submit --image`
  copies): the `moto_gaps` fixture applies the emulator's own fixes (scripts/moto_fixes.py), and the request as
  sent is also read back from moto's recorder;
- a multi-node job has no node jobs `<id>#<n>` (real Batch's carry each node's log stream): `add_node_job` adds one;
- jobs finish at once (use_docker False), so tests that need a queued or running job set its status in moto's model.
"""
from __future__ import annotations

import base64
import importlib.util
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.batch.models import Job, batch_backends
from moto.moto_api import recorder
from typer.testing import CliRunner

from mlcdk.cli import app, jobs
from mlcdk.launch import inline_command

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-west-2"
ACCOUNT = "123456789012"  # moto's
IMAGE = "123456789012.dkr.ecr.us-west-2.amazonaws.com/train:1"
LOG_GROUP = "/mlcdk/TrainingStack/jobs"
USER_COMMAND = ["python", "train.py", "--lr", "3e-4"]


@dataclass
class Cloud:
    batch: Any
    logs: Any
    cloudformation: Any
    queue: str
    definition: str

    def stack(self, name: str, outputs: dict[str, str]) -> None:
        template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
                    "Outputs": {key: {"Value": value} for key, value in outputs.items()}}
        self.cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))

    def job(self, job_id: str) -> dict[str, Any]:
        return self.batch.describe_jobs(jobs=[job_id])["jobs"][0]

    def write_log(self, stream: str, *messages: str) -> None:
        now = int(time.time() * 1000)
        events = [{"timestamp": now + i, "message": m} for i, m in enumerate(messages)]
        self.logs.put_log_events(logGroupName=LOG_GROUP, logStreamName=stream, logEvents=events)


def moto_job(job_id: str) -> Job:
    return batch_backends[ACCOUNT][REGION].get_job_by_id(job_id)


def set_status(job_id: str, status: str) -> None:
    """moto's jobs succeed at once; a test that needs a queued or running job sets its status in moto's model."""
    moto_job(job_id).status = status


def add_node_job(cloud: Cloud, job_id: str, node: int) -> str:
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
    cloud.logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=node_job.log_stream_name)
    return node_job.log_stream_name


@pytest.fixture
def moto_gaps():
    """The emulator's fixes of moto 5.2.5 (scripts/moto_fixes.py), among them: DescribeJobDefinitions returns
    nodeProperties, and SubmitJob keeps nodeOverrides, as real Batch does."""
    spec = importlib.util.spec_from_file_location("mlcdk_moto_fixes_cli", ROOT / "scripts" / "moto_fixes.py")
    fixes = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fixes)
    with fixes.moto_fixes():
        yield


@pytest.fixture
def cloud(monkeypatch, moto_gaps):
    """A queue, a multinode job definition, a log group, and stack TrainingStack whose outputs name them."""
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(var, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
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
        queue = batch.create_job_queue(jobQueueName="mlcdk-queue", state="ENABLED", priority=1, computeEnvironmentOrder=[
            {"order": 1, "computeEnvironment": environment}])["jobQueueArn"]
        container = {"image": IMAGE, "command": ["true"], "environment": [{"name": "MLCDK_NPROC_PER_NODE", "value": "8"}],
                     "resourceRequirements": [{"type": "VCPU", "value": "4"}, {"type": "MEMORY", "value": "8192"}]}
        definition = batch.register_job_definition(jobDefinitionName="mlcdk-train", type="multinode", nodeProperties={
            "numNodes": 4, "mainNode": 0, "nodeRangeProperties": [{"targetNodes": "0:", "container": container}]},
        )["jobDefinitionArn"]
        logs = boto3.client("logs")
        logs.create_log_group(logGroupName=LOG_GROUP)
        cloud = Cloud(batch, logs, boto3.client("cloudformation"), queue, definition)
        cloud.stack("TrainingStack", {"JobQueue": queue, "JobDefinition": definition, "JobLogGroup": LOG_GROUP,
                                      "MaxNodes": "4"})
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


# --------------------------------------------------------------------------------------------
# submit
# --------------------------------------------------------------------------------------------


def test_submit_to_a_single_node_cluster_overrides_the_container(cloud, sent):
    """A one-node cluster (and every spot one) has a container job definition: no node overrides there."""
    single = cloud.batch.register_job_definition(jobDefinitionName="mlcdk-single", type="container",
                                                 containerProperties={"image": IMAGE, "command": ["true"],
                                                     "resourceRequirements": [{"type": "VCPU", "value": "4"},
                                                                              {"type": "MEMORY", "value": "8192"}]},
                                                 )["jobDefinitionArn"]
    cloud.stack("SingleStack", {"JobQueue": cloud.queue, "JobDefinition": single, "JobLogGroup": LOG_GROUP,
                                "MaxNodes": "1"})
    result = invoke("submit", "--stack", "SingleStack", "--name", "finetune", "--", *USER_COMMAND)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    [request] = sent("submitjob")
    assert request == {"jobName": "finetune", "jobQueue": cloud.queue, "jobDefinition": single,
                       "containerOverrides": {"command": inline_command(["--", *USER_COMMAND])}}
    line = error_line(invoke("submit", "--stack", "SingleStack", "--nodes", "2", *CMD))
    assert line == "error: --nodes 2 is out of range: 1 to 1 (stack 'SingleStack''s MaxNodes)"


def test_submit_runs_the_command_under_the_launcher_on_every_node(cloud, sent):
    result = invoke("submit", "--nodes", "2", "--name", "llama-pretrain_1", "--", *USER_COMMAND)
    assert result.exit_code == 0, result.output
    job_id = result.stdout.strip()
    assert f"mlcdk logs {job_id} --follow" in result.stderr

    [request] = sent("submitjob")
    assert request == {"jobName": "llama-pretrain_1", "jobQueue": cloud.queue, "jobDefinition": cloud.definition,
                       "nodeOverrides": {"numNodes": 2, "nodePropertyOverrides": [{"targetNodes": "0:",
                           "containerOverrides": {"command": inline_command(["--", *USER_COMMAND])}}]}}
    command = request["nodeOverrides"]["nodePropertyOverrides"][0]["containerOverrides"]["command"]
    launcher = inline_command([])
    assert command[:len(launcher)] == launcher and command[len(launcher):] == ["--", *USER_COMMAND]

    job = cloud.job(job_id)
    assert (job["jobName"], job["jobQueue"], job["jobDefinition"]) == ("llama-pretrain_1", cloud.queue, cloud.definition)
    # moto drops nodeOverrides: its job shows the definition's nodeProperties (4 nodes, command ["true"]), so the
    # request above is the evidence of what Batch is asked to run.
    assert job["nodeProperties"]["nodeRangeProperties"][0]["container"]["image"] == IMAGE


def test_submit_defaults_to_max_nodes_and_a_timestamped_name_and_prints_json(cloud, sent):
    result = invoke("submit", "--json", "--", "python", "train.py")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["nodes"] == 4 and sent("submitjob")[0]["nodeOverrides"]["numNodes"] == 4
    assert document["jobName"].startswith("mlcdk-") and document["jobName"].endswith("Z")
    assert (document["queue"], document["definition"]) == (cloud.queue, cloud.definition)
    assert cloud.job(document["jobId"])["jobName"] == document["jobName"]


def test_submit_with_image_registers_a_revision_that_runs_it(cloud, sent):
    image = "public.ecr.aws/acme/trainer@sha256:" + "ab" * 32
    result = invoke("submit", "--image", image, "--json", "--", *USER_COMMAND)
    assert result.exit_code == 0, result.output
    revision = json.loads(result.stdout)["definition"]
    assert revision == cloud.definition.rsplit(":", 1)[0] + ":2"
    assert f"--image: registered {revision}" in result.stderr and image in result.stderr

    [registered] = sent("registerjobdefinition")
    [described] = cloud.batch.describe_job_definitions(jobDefinitions=[revision])["jobDefinitions"]
    [original] = cloud.batch.describe_job_definitions(jobDefinitions=[cloud.definition])["jobDefinitions"]
    assert registered["type"] == "multinode" and registered["jobDefinitionName"] == "mlcdk-train"
    for definition in (registered, described):
        container = definition["nodeProperties"]["nodeRangeProperties"][0]["container"]
        assert container == {**original["nodeProperties"]["nodeRangeProperties"][0]["container"], "image": image}
    assert sent("submitjob")[0]["jobDefinition"] == revision
    job = cloud.job(json.loads(result.stdout)["jobId"])
    assert job["jobDefinition"] == revision
    assert job["nodeProperties"]["nodeRangeProperties"][0]["container"]["image"] == image


# --------------------------------------------------------------------------------------------
# jobs
# --------------------------------------------------------------------------------------------


def test_jobs_lists_the_queue_newest_first_as_a_table_and_json(cloud):
    first = submit("--name", "first")
    time.sleep(0.01)  # createdAt is in milliseconds
    second = submit("--name", "second")
    set_status(second, "RUNNING")

    document = json.loads(invoke("jobs", "--json").stdout)
    assert document["queue"] == cloud.queue
    assert [(j["jobId"], j["jobName"], j["status"]) for j in document["jobs"]] == [
        (second, "second", "RUNNING"), (first, "first", "SUCCEEDED")]
    assert document["jobs"][0]["createdAt"].endswith("Z")
    # moto's ListJobs summaries have no nodeProperties (Batch's carry numNodes), so nodes is null here.
    assert set(document["jobs"][0]) == {"jobId", "jobName", "status", "nodes", "createdAt", "statusReason"}

    running = json.loads(invoke("jobs", "--status", "running", "--json").stdout)["jobs"]
    assert [j["jobId"] for j in running] == [second]

    table = invoke("jobs")
    assert table.exit_code == 0
    assert "2 job(s)" in table.stdout and "RUNNING" in table.stdout and "SUCCEEDED" in table.stdout
    assert table.stdout.index(second) < table.stdout.index(first)


# --------------------------------------------------------------------------------------------
# logs
# --------------------------------------------------------------------------------------------


def test_logs_prints_the_node_log_stream(cloud):
    job_id = submit()
    stream = add_node_job(cloud, job_id, 1)
    assert cloud.job(f"{job_id}#1")["container"]["logStreamName"] == stream
    cloud.write_log(stream, "node 1 up", "step 1 loss 2.5")
    result = invoke("logs", job_id, "--node", "1")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["node 1 up", "step 1 loss 2.5"]


def test_logs_of_a_node_without_a_log_stream_says_so(cloud):
    job_id = submit()
    set_status(job_id, "RUNNABLE")
    result = invoke("logs", job_id)
    assert result.exit_code == 0 and result.stdout == ""
    assert result.stderr.strip() == f"job {job_id} is RUNNABLE: node 0 has no log stream yet; --follow waits for it"


def test_logs_follow_polls_until_the_job_finishes(cloud, monkeypatch):
    job_id = submit()
    set_status(job_id, "RUNNABLE")
    polls = []

    def sleep(seconds: float) -> None:  # each poll moves the job along, as Batch would
        polls.append(seconds)
        if len(polls) == 1:
            set_status(job_id, "RUNNING")
            cloud.write_log(add_node_job(cloud, job_id, 0), "step 1")
        elif len(polls) == 3:
            cloud.write_log(moto_job(f"{job_id}#0").log_stream_name, "step 2", "done")
            set_status(job_id, "SUCCEEDED")

    monkeypatch.setattr(jobs.time, "sleep", sleep)
    result = invoke("logs", job_id, "--follow")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["step 1", "step 2", "done"]
    assert f"waiting for node 0 of job {job_id} to start (RUNNABLE)" in result.stderr
    assert polls == [1.0, 1.0, 2.0]  # back to 1 s after output, doubling while quiet
    assert all(jobs.POLL_SECONDS[0] <= p <= jobs.POLL_SECONDS[1] for p in polls)


def test_logs_follow_exits_130_on_ctrl_c(cloud, monkeypatch):
    job_id = submit()
    set_status(job_id, "RUNNING")

    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(jobs.time, "sleep", interrupt)
    result = invoke("logs", job_id, "-f")
    assert result.exit_code == 130 and "Traceback" not in result.output


# --------------------------------------------------------------------------------------------
# cancel
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "said"), [("RUNNABLE", "cancelled job {}: it was RUNNABLE, so it never starts"),
                                              ("RUNNING", "terminating job {}: it was RUNNING; Batch stops its nodes")])
def test_cancel_terminates_the_job_and_says_what_happened(cloud, sent, status, said):
    job_id = submit()
    set_status(job_id, status)
    result = invoke("cancel", job_id, "--reason", "wrong learning rate")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == said.format(job_id)
    assert sent("terminatejob") == [{"jobId": job_id, "reason": "wrong learning rate"}]
    assert cloud.job(job_id)["statusReason"] == "wrong learning rate"


def test_cancel_of_a_finished_job_changes_nothing(cloud, sent):
    job_id = submit()
    result = invoke("cancel", job_id)
    assert result.exit_code == 0 and result.stdout.strip() == f"job {job_id} already SUCCEEDED; nothing to cancel"
    assert sent("terminatejob") == []


# --------------------------------------------------------------------------------------------
# Bad input: exit 2, one line naming the flag or value; exit 1 for AWS errors nobody expected
# --------------------------------------------------------------------------------------------

CMD = ["--", "python", "train.py"]
CHECKED_FIRST = [  # refused before any AWS call: no credentials, region or stack needed
    (["submit", "--image", "trainer:latest:v2", *CMD], "--image 'trainer:latest:v2' is not a valid image reference"),
    (["submit", "--image", "Trainer Image", *CMD], "--image 'Trainer Image' is not a valid image reference"),
    (["submit", "--image", "trainer@sha256:abc", *CMD], "--image 'trainer@sha256:abc' is not a valid image reference"),
    (["submit", "--name", "-leading-hyphen", *CMD], "--name '-leading-hyphen' is not a Batch job name"),
    (["submit", "--name", "x" * 129, *CMD], f"--name '{'x' * 129}' is not a Batch job name"),
    (["submit", "--name", "has.dot", *CMD], "--name 'has.dot' is not a Batch job name"),
    (["submit"], "no command to run: put it after --"),
    (["submit", "--nodes", "2", "--"], "no command to run: put it after --"),
    (["jobs", "--status", "DONE"], "--status 'DONE' is not a job status"),
    (["cancel", "any", "--reason", " "], "--reason must not be empty"),
]
CHECKED_AGAINST_THE_STACK = [
    (["jobs", "--stack", "Nope"], "--stack: there is no stack 'Nope' in us-west-2"),
    (["submit", "--stack", "NodesStack", *CMD], "stack 'NodesStack' in us-west-2 has no Batch job queue"),
    (["submit", "--stack", "NoMaxNodes", *CMD], "stack 'NoMaxNodes' in us-west-2 has no MaxNodes output"),
    (["submit", "--nodes", "0", *CMD], "--nodes 0 is out of range: 1 to 4"),
    (["submit", "--nodes", "5", *CMD], "--nodes 5 is out of range: 1 to 4"),
    (["logs", "no-such-job"], "no job 'no-such-job' in us-west-2"),
    (["cancel", "no-such-job"], "no job 'no-such-job' in us-west-2"),
]


@pytest.mark.parametrize(("args", "message"), CHECKED_FIRST,
                         ids=[f"{a[0]}#{i}" for i, (a, _) in enumerate(CHECKED_FIRST)])
def test_bad_input_exits_2_with_one_line_naming_it(args, message):
    line = error_line(invoke(*args))
    assert line.startswith(f"error: {message}"), line


@pytest.mark.parametrize(("args", "message"), CHECKED_AGAINST_THE_STACK,
                         ids=[f"{a[0]}#{i}" for i, (a, _) in enumerate(CHECKED_AGAINST_THE_STACK)])
def test_bad_input_for_the_stack_exits_2_with_one_line_naming_it(cloud, args, message):
    cloud.stack("NodesStack", {"ClusterName": "nodes"})
    cloud.stack("NoMaxNodes", {"JobQueue": cloud.queue, "JobDefinition": cloud.definition})
    line = error_line(invoke(*args))
    assert line.startswith(f"error: {message}"), line


def test_a_stack_without_a_queue_asks_about_the_engine(cloud):
    cloud.stack("NodesStack", {"ClusterName": "nodes"})
    assert "was it deployed with engine=nodes?" in error_line(invoke("jobs", "--stack", "NodesStack"))


def test_logs_of_a_node_the_job_does_not_have(cloud):
    job_id = submit()
    assert error_line(invoke("logs", job_id, "--node", "4")) == (
        f"error: --node 4 is out of range: job {job_id} has node(s) 0 to 3")


def test_a_job_of_another_stack_is_refused(cloud):
    job_id = submit()
    [queue] = cloud.batch.describe_job_queues()["jobQueues"]
    other = cloud.batch.create_job_queue(jobQueueName="other-queue", state="ENABLED", priority=1,
                                         computeEnvironmentOrder=queue["computeEnvironmentOrder"])["jobQueueArn"]
    cloud.stack("Other", {"JobQueue": other})
    line = error_line(invoke("cancel", job_id, "--stack", "Other"))
    assert f"job {job_id} runs on {cloud.queue}, not on stack 'Other'" in line


def test_no_region_is_a_clear_error(cloud, monkeypatch):
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # botocore would ask the instance metadata service
    assert error_line(invoke("jobs")).startswith("error: no AWS region: pass --region")
    assert invoke("jobs", "--region", REGION).exit_code == 0


def test_no_credentials_is_a_clear_error(monkeypatch):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    line = error_line(invoke("jobs", "--region", REGION))
    assert line.startswith("error: no AWS credentials found: configure them")


def test_a_stack_whose_job_definition_is_gone_exits_2_naming_it(cloud):
    cloud.stack("Broken", {"JobQueue": cloud.queue, "JobDefinition": "arn:aws:batch:us-west-2:123456789012:"
                           "job-definition/gone:1", "MaxNodes": "2"})
    line = error_line(invoke("submit", "--stack", "Broken", *CMD))
    assert line == "error: job definition arn:aws:batch:us-west-2:123456789012:job-definition/gone:1 (the stack's " \
                   "JobDefinition output) does not exist"


def test_an_unexpected_aws_error_exits_1_with_its_code_on_one_line(cloud):
    cloud.stack("NoQueue", {"JobQueue": "arn:aws:batch:us-west-2:123456789012:job-queue/gone",
                            "JobDefinition": cloud.definition, "MaxNodes": "2"})
    line = error_line(invoke("submit", "--stack", "NoQueue", *CMD), code=1)
    assert line.startswith("error: ClientException: ")


def test_catalog_and_advise_never_load_boto3():
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom mlcdk.cli import app\n"
            "for args in (['advise','--task','training','--params','7B','--top','1'], ['catalog','list'],\n"
            "             ['catalog','show','trn1.32xlarge'], ['presets','list']):\n"
            "    assert CliRunner().invoke(app, args).exit_code == 0\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'boto3', 'botocore', 'aws_cdk', 'jsii'}))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
