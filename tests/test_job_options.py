"""Job options and lifecycle (issue #23, point 3; #25's job-command cases): --env, --timeout, --retries, --depends-on,
--array, --wait, --json, `mlcdk shell`, and their bad inputs. Requests are read back as sent (moto's recorder);
how moto falls short, and how the tests move a job along in moto's own model, is in tests/jobs_cloud.py."""
from __future__ import annotations

import json
import re

import boto3
import pytest

from mlcdk.aws.jobs import follow
from mlcdk.aws.jobs import submit as submitting
from mlcdk.cli import job_control
from mlcdk.launch import inline_command
from tests.harness import cli_context, nag_problems, synth
from tests.jobs_cloud import (  # noqa: F401 (fixtures)
    ACCOUNT, BUCKET, CMD, REGION, USER_COMMAND, add_node_job, cloud, error_line, invoke, job_definition,
    moto_gaps, moto_job, sent, set_status, submit,
)

HF_TOKEN = "hf_" + "A1b2C3d4" * 5
SECRET_ARN = "arn:aws:secretsmanager:us-west-2:123456789012:secret:hf-token-AbCdEf"


@pytest.fixture
def no_aws(monkeypatch):
    """Fails the test if a boto3 session or client is made: these inputs are refused before any AWS client exists."""
    def refuse(*args, **kwargs):
        raise AssertionError("an AWS client was made before the command line was checked")
    monkeypatch.setattr(boto3, "Session", refuse)
    monkeypatch.setattr(boto3, "client", refuse)


BEFORE_ANY_CLIENT = [
    (["submit", "--env", "LR", *CMD], "--env 'LR' has no '=': write --env NAME=VALUE"),
    (["submit", "--env", "NOTE=two\nlines", *CMD], "--env 'NOTE': the value holds a line break or a NUL character"),
    (["submit", "--env", "NOTE=carriage\rreturn", *CMD], "--env 'NOTE': the value holds a line break"),
    (["submit", "--env", "1LR=3", *CMD], "--env '1LR' is not an environment variable name"),
    (["submit", "--env", "AWS_BATCH_JOB_ID=x", *CMD], "--env 'AWS_BATCH_JOB_ID' starts with AWS_BATCH, which is "
                                                      "reserved for the variables that Batch sets"),
    (["submit", "--env", "MLCDK_WORKDIR_URI=s3://x/y", *CMD], "--env 'MLCDK_WORKDIR_URI' is set by `mlcdk submit "
                                                              "--workdir`"),
    (["submit", "--env", "A=1", "--env", "A=2", *CMD], "--env 'A' is given twice"),
    (["submit", "--env", f"HF_TOKEN={HF_TOKEN}", *CMD], "--env 'HF_TOKEN': the name says TOKEN, so the value looks "
                                                        "like a secret; put the value in AWS Secrets Manager"),
    (["submit", "--env", f"MODEL_ACCESS={HF_TOKEN}", *CMD], "--env 'MODEL_ACCESS': the value looks like a secret "
                                                            "(hugging-face-token)"),
    (["submit", "--env", "WANDB_API_KEY=0123", *CMD], "--env 'WANDB_API_KEY': the name says API_KEY"),
    (["submit", "--env", "K=AKIAIOSFODNN7EXAMPLE", *CMD], "--env 'K': the value looks like a secret (aws-access-key-id)"),
    (["submit", "--timeout", "30s", *CMD], "--timeout '30s' must be a duration from 60 s (Batch's minimum) to 14 days"),
    (["submit", "--timeout", "15d", *CMD], "--timeout '15d' must be a duration from 60 s"),
    (["submit", "--timeout", "soon", *CMD], "--timeout 'soon' must be a duration"),
    (["submit", "--timeout", "2h\n", *CMD], "--timeout '2h\\n' must be a duration"),
    (["submit", "--retries", "10", *CMD], "--retries 10 is out of range: 0 to 9 (Batch makes at most 10 attempts)"),
    (["submit", "--retries", "-1", *CMD], "--retries -1 is out of range: 0 to 9"),
    (["submit", "--array", "1", *CMD], "--array 1 is out of range: 2 to 10,000 child jobs (Batch's array sizes)"),
    (["submit", "--array", "10001", *CMD], "--array 10001 is out of range: 2 to 10,000"),
    (["submit", "--depends-on", "not a job id", *CMD], "--depends-on 'not a job id' is not a Batch job ID"),
    ([("submit"), *[a for i in range(21) for a in ("--depends-on", f"job-{i}")], *CMD],
     "--depends-on is given 21 times: a Batch job may depend on at most 20 jobs"),
    (["submit", "--region", "", *CMD], "--region: unknown region ''"),
    (["submit", "--region", "us-west-9", *CMD], "--region: unknown region 'us-west-9'; did you mean"),
    (["jobs", "--region", "us-west-2\n"], "--region: unknown region 'us-west-2\\n'"),
    (["submit", "--image", "trainer:1\n", *CMD], "--image 'trainer:1\\n' is not a valid image reference"),
    (["submit", "--cluster", "", *CMD], "--cluster '' is not a cluster's name as `mlcdk clusters` lists it"),
    (["jobs", "--cluster", " TrainingStack/Cluster"], "--cluster ' TrainingStack/Cluster' is not a cluster's name"),
    (["jobs", "--cluster", "a", "--stack", "b"], "--stack is the older spelling of --cluster: give one of them"),
    (["submit", "--workdir", "", *CMD], "--workdir '' is empty: give a directory, e.g. --workdir ."),
    (["submit", "--workdir", "/nonexistent/mlcdk-workdir", *CMD], "--workdir /nonexistent/mlcdk-workdir: no such "
                                                                  "directory"),
    (["logs", "job id with spaces"], "JOB 'job id with spaces' is not a Batch job ID"),
    (["shell", "0bd3c0b5-7b6c-4b1b-9c59-1f6f3c1f6f3c", "--command", " "], "--command must not be empty"),
]


@pytest.mark.parametrize(("args", "message"), BEFORE_ANY_CLIENT,
                         ids=[f"{a[0]}#{i}" for i, (a, _) in enumerate(BEFORE_ANY_CLIENT)])
def test_bad_input_is_one_line_and_exit_2_before_any_aws_client(no_aws, args, message):
    line = error_line(invoke(*args))
    assert line.startswith(f"error: {message}"), line
    assert HF_TOKEN not in line and "AKIAIOSFODNN7EXAMPLE" not in line  # a secret is never echoed


def test_an_empty_workdir_and_one_over_the_limit_are_refused_before_any_client(no_aws, tmp_path):
    (tmp_path / "empty").mkdir()
    assert error_line(invoke("submit", "--workdir", str(tmp_path / "empty"), *CMD)) == (
        f"error: --workdir {tmp_path / 'empty'}: it holds no file (after the excludes); there is nothing to send")
    (tmp_path / "big").mkdir()
    with open(tmp_path / "big" / "data.bin", "wb") as big:
        big.truncate(150 * 1024 * 1024)
    assert error_line(invoke("submit", "--workdir", str(tmp_path / "big"), *CMD)).startswith(
        f"error: --workdir {tmp_path / 'big'} is over the 100.0 MiB limit (at least 150.0 MiB; largest: data.bin")


@pytest.mark.parametrize("command", ["clusters", "submit", "jobs", "logs", "cancel", "shell"])
def test_flags_are_flags_in_help(command):
    """`--json` (and every other flag) is a flag, shown without a `<bool>` value."""
    shown = invoke(command, "--help").stdout
    assert "<bool>" not in shown
    if command in ("clusters", "submit", "jobs"):
        assert re.search(r"--json\s+Print JSON", shown), shown


# --------------------------------------------------------------------------------------------
# What submit sends
# --------------------------------------------------------------------------------------------


def test_env_timeout_retries_and_dependencies_reach_the_request(cloud, sent):
    first = submit("--name", "prepare")
    set_status(first, "RUNNING")
    result = invoke("submit", "--env", "LR=3e-4", "--env", "DATA=s3://data/train=1", "--timeout", "90m",
                    "--retries", "2", "--depends-on", first, "--nodes", "2", "--", *USER_COMMAND)
    assert result.exit_code == 0, result.output
    request = sent("submitjob")[-1]
    run = request["nodeOverrides"]["nodePropertyOverrides"][0]["containerOverrides"]
    assert run == {"command": inline_command(["--", *USER_COMMAND]),
                   "environment": [{"name": "LR", "value": "3e-4"}, {"name": "DATA", "value": "s3://data/train=1"}]}
    assert request["timeout"] == {"attemptDurationSeconds": 90 * 60}
    # SubmitJob's retry strategy replaces the definition's: its rules (retry host failures, exit on any code) stay.
    # (moto hands the actions back in lower case; Batch's API takes them in either case.)
    strategy = request["retryStrategy"]
    assert strategy["attempts"] == 3
    assert [{**rule, "action": rule["action"].upper()} for rule in strategy["evaluateOnExit"]] == [
        {"action": "RETRY", "onStatusReason": "Host EC2*"}, {"action": "EXIT", "onExitCode": "*"}]
    assert request["dependsOn"] == [{"jobId": first}]


@pytest.mark.parametrize(("given", "seconds"), [("60", 60), ("45m", 2700), ("2h", 7200), ("1.5d", 129600),
                                                ("3600s", 3600), ("14d", 1209600)])
def test_timeouts_are_read_in_their_units(cloud, sent, given, seconds):
    submit("--timeout", given)
    assert sent("submitjob")[-1]["timeout"] == {"attemptDurationSeconds": seconds}


def test_an_array_runs_on_a_one_node_cluster(cloud, sent):
    single = job_definition(cloud.batch, "mlcdk-single", nodes=1)
    queue = cloud.add_cluster("Sweep/Cluster", definition=single, max_nodes="1")
    result = invoke("submit", "--cluster", "Sweep/Cluster", "--array", "4", "--json", "--", *USER_COMMAND)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["arraySize"] == 4
    request = sent("submitjob")[-1]
    assert (request["jobQueue"], request["arrayProperties"]) == (queue, {"size": 4})
    assert request["containerOverrides"] == {"command": inline_command(["--", *USER_COMMAND])}


def test_an_array_on_a_multi_node_cluster_is_refused_with_batchs_reason(cloud, sent):
    assert error_line(invoke("submit", "--array", "4", *CMD)) == (
        "error: --array 4: the cluster runs multi-node parallel jobs; Batch runs array jobs of single-node job "
        "definitions only (SubmitJob answers a multi-node parallel job with arrayProperties: \"Multinode Array Job "
        "not supported\"); use a one-node TrainingCluster for arrays")
    assert sent("submitjob") == []


def test_a_dependency_on_an_unknown_or_failed_job_is_refused(cloud, sent):
    unknown = "0bd3c0b5-7b6c-4b1b-9c59-1f6f3c1f6f3c"
    assert error_line(invoke("submit", "--depends-on", unknown, *CMD)) == (
        f"error: --depends-on {unknown}: no such job in us-west-2")
    failed = submit()
    set_status(failed, "FAILED")
    assert error_line(invoke("submit", "--depends-on", failed, *CMD)) == (
        f"error: --depends-on {failed}: that job FAILED, so this one would fail at once (Batch User Guide, "
        "\"Job dependencies\")")
    assert len(sent("submitjob")) == 1  # only the job made to fail


def test_workdir_is_uploaded_once_by_content_and_named_to_the_launcher(cloud, sent, tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "train.py").write_text("print('step')\n")
    first = invoke("submit", "--workdir", str(source), "--json", "--", "python", "train.py")
    assert first.exit_code == 0, first.output
    uri = json.loads(first.stdout)["workdir"]
    digest = re.fullmatch(rf"s3://{BUCKET}/mlcdk/workdirs/([0-9a-f]{{64}})\.tar\.gz", uri).group(1)
    assert f"--workdir: uploaded {uri}" in first.stderr
    environment = sent("submitjob")[-1]["nodeOverrides"]["nodePropertyOverrides"][0]["containerOverrides"][
        "environment"]
    assert environment == [{"name": "MLCDK_WORKDIR_URI", "value": uri}, {"name": "MLCDK_WORKDIR_SHA256", "value": digest},
                           {"name": "MLCDK_WORKDIR_REGION", "value": REGION}]
    body = cloud.s3.get_object(Bucket=BUCKET, Key=uri.split("/", 3)[3])["Body"].read()
    import hashlib
    assert hashlib.sha256(body).hexdigest() == digest
    again = invoke("submit", "--workdir", str(source), "--", "python", "train.py")
    assert f"--workdir: already uploaded {uri}" in again.stderr


# --------------------------------------------------------------------------------------------
# --wait
# --------------------------------------------------------------------------------------------


def _moves(cloud, monkeypatch, steps):
    """Make each poll of --wait move the job one step, as Batch would; returns the job ID holder."""
    real, job = submitting.submit, {}

    def submitted_then_queued(connection, request):
        done = real(connection, request)
        job["id"] = done.job_id
        set_status(done.job_id, "RUNNABLE")
        return done

    def sleep(seconds):
        steps.pop(0)(job["id"])

    monkeypatch.setattr(submitting, "submit", submitted_then_queued)
    monkeypatch.setattr(follow.time, "sleep", sleep)
    return job


def test_wait_follows_the_status_streams_the_log_and_exits_with_the_jobs_code(cloud, monkeypatch):
    def start(job_id):
        set_status(job_id, "RUNNING")
        cloud.write_log(add_node_job(cloud, job_id, 0), "epoch 1", "loss 2.1")

    def fail(job_id):
        set_status(job_id, "FAILED", "Essential container in task exited")
        moto_job(f"{job_id}#0").attempts = [{"container": {"exitCode": 3}}]  # the main node's exit code

    job = _moves(cloud, monkeypatch, [start, fail])
    result = invoke("submit", "--wait", "--", *USER_COMMAND)
    assert result.exit_code == 3, result.output
    assert result.stdout.splitlines() == [job["id"], "epoch 1", "loss 2.1"]
    progress = [line.split("] ", 1)[1] for line in result.stderr.splitlines() if line.startswith("[")]
    assert progress == [f"job {job['id']}: RUNNABLE", f"job {job['id']}: RUNNING",
                        f"job {job['id']}: FAILED (Essential container in task exited)"]
    assert result.stderr.splitlines()[-1] == (
        f"job {job['id']} FAILED: Essential container in task exited (exit code 3)")


def test_wait_with_json_keeps_stdout_one_document_and_ctrl_c_leaves_the_job_running(cloud, monkeypatch):
    def start(job_id):
        set_status(job_id, "RUNNING")
        cloud.write_log(add_node_job(cloud, job_id, 0), "epoch 1")

    def interrupt(job_id):
        raise KeyboardInterrupt

    job = _moves(cloud, monkeypatch, [start, interrupt])
    result = invoke("submit", "--wait", "--json", "--", *USER_COMMAND)
    assert result.exit_code == 130 and "Traceback" not in result.output
    assert json.loads(result.stdout)["jobId"] == job["id"]  # the log went to stderr
    assert "epoch 1" in result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"stopped following job {job['id']}; it goes on (stop it with: mlcdk cancel {job['id']})")


def test_wait_exits_0_when_the_job_succeeds(cloud, monkeypatch):
    job = _moves(cloud, monkeypatch, [lambda job_id: set_status(job_id, "SUCCEEDED")])
    result = invoke("submit", "--wait", "--", *USER_COMMAND)
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[-1] == f"job {job['id']} SUCCEEDED"


def test_wait_on_a_job_that_fails_without_an_exit_code_exits_1(cloud, monkeypatch):
    job = _moves(cloud, monkeypatch, [lambda job_id: set_status(job_id, "FAILED", "Job attempt duration exceeded")])
    result = invoke("submit", "--wait", "--", *USER_COMMAND)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == f"job {job['id']} FAILED: Job attempt duration exceeded"


# --------------------------------------------------------------------------------------------
# jobs shows why a job waits or failed
# --------------------------------------------------------------------------------------------


def test_jobs_shows_each_jobs_whole_status_reason(cloud):
    """A queue's time limit (JobStateTimeLimitActions) cancels a stuck RUNNABLE job with a reason like this one."""
    reason = ("CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - Service cannot fulfill the capacity requested for "
              "instance type [trn1.32xlarge]; cancelled after 4 hours RUNNABLE")
    job_id = submit()
    set_status(job_id, "FAILED", reason)
    document = json.loads(invoke("jobs", "--json").stdout)
    assert document["jobs"][0]["statusReason"] == reason
    table = invoke("jobs").stdout
    assert f"{job_id} FAILED: {reason}\n" in table, table  # whole, on its own line, never cut off by a column


# --------------------------------------------------------------------------------------------
# mlcdk shell
# --------------------------------------------------------------------------------------------

TASK = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/AWSBatch-mlcdk-ce-1a2b3c/0f1e2d3c4b5a69788796a5b4c3d2e1f0"


@pytest.fixture
def exec_calls(monkeypatch):
    calls = []
    monkeypatch.setattr(job_control.shutil, "which", lambda tool: f"/usr/local/bin/{tool}")
    monkeypatch.setattr(job_control.os, "execvp", lambda program, argv: calls.append(argv))
    return calls


def _running_with_task(cloud, node: int = 1) -> str:
    job_id = submit()
    set_status(job_id, "RUNNING")
    add_node_job(cloud, job_id, node)
    moto_job(f"{job_id}#{node}").attempts = [{"container": {"taskArn": TASK}}]
    return job_id


def test_shell_opens_ecs_exec_in_the_nodes_task(cloud, exec_calls):
    cloud.add_cluster("Exec/Cluster", definition=job_definition(cloud.batch, "exec", enableExecuteCommand=True))
    job_id = submit("--cluster", "Exec/Cluster")
    set_status(job_id, "RUNNING")
    add_node_job(cloud, job_id, 1)
    moto_job(f"{job_id}#1").attempts = [{"container": {"taskArn": TASK}}]
    result = invoke("shell", job_id, "--node", "1", "--cluster", "Exec/Cluster")
    assert result.exit_code == 0, result.output
    assert exec_calls == [["aws", "ecs", "execute-command", "--region", REGION, "--cluster", "AWSBatch-mlcdk-ce-1a2b3c",
                           "--task", TASK, "--interactive", "--command", "/bin/bash"]]


def test_shell_is_refused_where_ecs_exec_is_off_or_the_job_is_not_running(cloud, exec_calls):
    job_id = _running_with_task(cloud)  # the fixture's definition has no enableExecuteCommand
    assert error_line(invoke("shell", job_id, "--node", "1")).startswith(
        f"error: job {job_id}'s job definition has ECS Exec off (enableExecuteCommand)")
    set_status(job_id, "RUNNABLE")
    assert error_line(invoke("shell", job_id)) == (
        f"error: job {job_id} is RUNNABLE: a shell opens in a RUNNING job's container")
    assert error_line(invoke("shell", job_id, "--node", "7")) == (
        f"error: --node 7 is out of range: job {job_id} has node(s) 0 to 3")
    assert exec_calls == []


def test_shell_says_which_tools_are_missing(no_aws, monkeypatch):
    monkeypatch.setattr(job_control.shutil, "which", lambda tool: None if tool == "session-manager-plugin" else "/x")
    line = error_line(invoke("shell", "0bd3c0b5-7b6c-4b1b-9c59-1f6f3c1f6f3c"))
    assert line.startswith("error: `mlcdk shell` runs `aws ecs execute-command`, which needs the Session Manager plugin")


# --------------------------------------------------------------------------------------------
# The job definition: ECS Exec and secrets
# --------------------------------------------------------------------------------------------


def _cluster_template(job):
    import aws_cdk as cdk

    from mlcdk import TrainingCluster

    def build(app):
        stack = cdk.Stack(app, "Jobs", env=cdk.Environment(account=ACCOUNT, region=REGION))
        TrainingCluster(stack, "Cluster", instance_type="trn1.32xlarge", nodes=2, job=job)
        return [stack]
    return synth(build, cli_context())


@pytest.fixture(scope="module")
def default_and_locked():
    from mlcdk import JobOptions

    return (_cluster_template(JobOptions(secrets={"HF_TOKEN": SECRET_ARN})),
            _cluster_template(JobOptions(shell=False)))


def _of_type(template, kind):
    return {k: v["Properties"] for k, v in template["Resources"].items() if v["Type"] == kind}


def test_ecs_exec_and_secrets_are_in_the_job_definition_with_least_privilege(default_and_locked):
    result = default_and_locked[0]
    template = result.templates["Jobs"]
    (definition,) = _of_type(template, "AWS::Batch::JobDefinition").values()
    container = definition["NodeProperties"]["NodeRangeProperties"][0]["Container"]
    assert container["EnableExecuteCommand"] is True
    assert container["Secrets"] == [{"Name": "HF_TOKEN", "ValueFrom": SECRET_ARN}]
    assert "HF_TOKEN" not in {e["Name"] for e in container["Environment"]}
    policies = {name: p["PolicyDocument"]["Statement"] for name, p in _of_type(template, "AWS::IAM::Policy").items()}
    (job_role_default,) = [s for name, s in policies.items() if "JobRoleDefaultPolicy" in name]
    assert job_role_default == [{"Action": ["ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
                                            "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel"],
                                 "Effect": "Allow", "Resource": "*"}]
    (execution,) = [s for name, s in policies.items() if "ExecutionRoleDefaultPolicy" in name]
    assert {"Action": ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"], "Effect": "Allow",
            "Resource": SECRET_ARN} in execution
    assert nag_problems(result) == []


def test_shell_off_leaves_no_ecs_exec_and_no_ssmmessages(default_and_locked):
    template = default_and_locked[1].templates["Jobs"]
    (definition,) = _of_type(template, "AWS::Batch::JobDefinition").values()
    assert definition["NodeProperties"]["NodeRangeProperties"][0]["Container"]["EnableExecuteCommand"] is False
    assert "ssmmessages" not in json.dumps([p for name, p in _of_type(template, "AWS::IAM::Policy").items()
                                            if "JobRole" in name])


@pytest.mark.parametrize(("secrets", "says"), [
    ({"HF_TOKEN": SECRET_ARN[:-7]}, "job.secrets: HF_TOKEN: 'arn:aws:secretsmanager:us-west-2:123456789012:secret:"
                                    "hf-token' is not a Secrets Manager secret's complete ARN"),
    ({"HF TOKEN": SECRET_ARN}, "job.secrets: the name 'HF TOKEN' is not an environment variable name"),
    ({"AWS_BATCH_X": SECRET_ARN}, "job.secrets: the name 'AWS_BATCH_X' starts with AWS_BATCH"),
    ({"MLCDK_LAUNCHER": SECRET_ARN}, "job.secrets: the name 'MLCDK_LAUNCHER' starts with MLCDK_"),
    ({"HF_TOKEN": SECRET_ARN + "\n"}, "job.secrets ({'HF_TOKEN': "),  # mlcdk.params refuses padded strings
])
def test_bad_secrets_are_refused_before_any_resource_exists(secrets, says):
    from mlcdk import JobOptions, TrainingCluster
    from tests.harness import assert_refused

    assert_refused(TrainingCluster, re.escape(says), region=REGION, instance_type="trn1.32xlarge", nodes=2,
                   job=JobOptions(secrets=secrets))
