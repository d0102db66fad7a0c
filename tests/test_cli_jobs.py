"""`mlcdk submit|jobs|logs|cancel` against moto: a cluster's tagged job queue, its multinode job definition and log
group (tests/jobs_cloud.py); how moto falls short and how the tests work around it is said there."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from mlcdk.aws.jobs import follow
from mlcdk.launch import inline_command
from tests.jobs_cloud import (  # noqa: F401 (fixtures)
    CMD, IMAGE, REGION, USER_COMMAND, add_node_job, cloud, error_line, invoke,
    job_definition, moto_gaps, moto_job, sent, set_status, submit,
)


# --------------------------------------------------------------------------------------------
# submit
# --------------------------------------------------------------------------------------------


def test_submit_to_a_single_node_cluster_overrides_the_container(cloud, sent):
    """A one-node cluster (and every spot one) has a container job definition: no node overrides there."""
    single = job_definition(cloud.batch, "mlcdk-single", nodes=1)
    queue = cloud.add_cluster("SingleStack/Finetune", definition=single, max_nodes="1")
    result = invoke("submit", "--cluster", "SingleStack/Finetune", "--name", "finetune", "--", *USER_COMMAND)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    [request] = sent("submitjob")
    assert request == {"jobName": "finetune", "jobQueue": queue, "jobDefinition": single,
                       "containerOverrides": {"command": inline_command(["--", *USER_COMMAND])}}
    line = error_line(invoke("submit", "--cluster", "SingleStack", "--nodes", "2", *CMD))
    assert line == "error: --nodes 2 is out of range: 1 to 1 (cluster 'SingleStack/Finetune''s node limit)"


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

    monkeypatch.setattr(follow.time, "sleep", sleep)
    result = invoke("logs", job_id, "--follow")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["step 1", "step 2", "done"]
    assert f"waiting for node 0 of job {job_id} to start (RUNNABLE)" in result.stderr
    assert polls == [1.0, 1.0, 2.0]  # back to 1 s after output, doubling while quiet
    assert all(follow.POLL_SECONDS[0] <= p <= follow.POLL_SECONDS[1] for p in polls)


def test_logs_follow_exits_130_on_ctrl_c(cloud, monkeypatch):
    job_id = submit()
    set_status(job_id, "RUNNING")

    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(follow.time, "sleep", interrupt)
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


@pytest.mark.parametrize("status", ["SUCCEEDED", "FAILED"])
def test_cancel_of_a_finished_job_changes_nothing(cloud, sent, status):
    """#25: a FAILED job is finished too: TerminateJob is not sent (it would only rewrite its status reason)."""
    job_id = submit()
    set_status(job_id, status)
    result = invoke("cancel", job_id)
    assert result.exit_code == 0 and result.stdout.strip() == f"job {job_id} already {status}; nothing to cancel"
    assert sent("terminatejob") == []
    assert follow.FINISHED == ("SUCCEEDED", "FAILED")


# --------------------------------------------------------------------------------------------
# Bad input: exit 2, one line naming the flag or value; exit 1 for AWS errors nobody expected
# --------------------------------------------------------------------------------------------

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
CHECKED_AGAINST_THE_CLUSTER = [
    (["jobs", "--cluster", "Nope"], "--cluster 'Nope': no such cluster in us-west-2; clusters there: "
                                    "TrainingStack/Cluster"),
    (["jobs", "--cluster", "TrainingStack/Clustr"], "--cluster 'TrainingStack/Clustr': no such cluster in us-west-2; "
                                                   "did you mean 'TrainingStack/Cluster'?"),
    (["jobs", "--stack", "Nope"], "--cluster 'Nope': no such cluster in us-west-2"),
    (["submit", "--nodes", "0", *CMD], "--nodes 0 must be at least 1"),
    (["submit", "--nodes", "5", *CMD], "--nodes 5 is out of range: 1 to 4 (cluster 'TrainingStack/Cluster''s node "
                                       "limit)"),
    (["logs", "no-such-job"], "no job 'no-such-job' in us-west-2"),
    (["cancel", "no-such-job"], "no job 'no-such-job' in us-west-2"),
]


@pytest.mark.parametrize(("args", "message"), CHECKED_FIRST,
                         ids=[f"{a[0]}#{i}" for i, (a, _) in enumerate(CHECKED_FIRST)])
def test_bad_input_exits_2_with_one_line_naming_it(args, message):
    line = error_line(invoke(*args))
    assert line.startswith(f"error: {message}"), line


@pytest.mark.parametrize(("args", "message"), CHECKED_AGAINST_THE_CLUSTER,
                         ids=[f"{a[0]}#{i}" for i, (a, _) in enumerate(CHECKED_AGAINST_THE_CLUSTER)])
def test_bad_input_for_the_cluster_exits_2_with_one_line_naming_it(cloud, args, message):
    line = error_line(invoke(*args))
    assert line.startswith(f"error: {message}"), line


def test_logs_of_a_node_the_job_does_not_have(cloud):
    job_id = submit()
    assert error_line(invoke("logs", job_id, "--node", "4")) == (
        f"error: --node 4 is out of range: job {job_id} has node(s) 0 to 3")


def test_a_job_of_another_cluster_is_refused(cloud):
    job_id = submit()
    cloud.add_cluster("OtherStack/Cluster")
    line = error_line(invoke("cancel", job_id, "--cluster", "OtherStack/Cluster"))
    assert f"job {job_id} runs on {cloud.queue}, not on cluster 'OtherStack/Cluster''s queue" in line


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


def test_a_cluster_whose_job_definition_is_gone_exits_2_naming_it(cloud):
    gone = "arn:aws:batch:us-west-2:123456789012:job-definition/gone:1"
    cloud.add_cluster("Broken/Cluster", definition=gone)
    line = error_line(invoke("submit", "--cluster", "Broken/Cluster", *CMD))
    assert line == f"error: cluster 'Broken/Cluster': its job definition {gone} does not exist (deregistered?); " \
                   "deploy the cluster again"


def test_an_unexpected_aws_error_exits_1_with_its_code_on_one_line(cloud, tmp_path):
    (tmp_path / "train.py").write_text("print('hi')\n")
    cloud.add_cluster("NoBucket/Cluster", bucket="no-such-bucket")
    line = error_line(invoke("submit", "--cluster", "NoBucket/Cluster", "--workdir", str(tmp_path), *CMD), code=1)
    assert line.startswith("error: NoSuchBucket: ")


def test_catalog_and_advise_never_load_boto3():
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom mlcdk.cli import app\n"
            "for args in (['advise','--task','training','--params','7B','--top','1'], ['catalog','list'],\n"
            "             ['catalog','show','trn1.32xlarge'], ['presets','list']):\n"
            "    assert CliRunner().invoke(app, args).exit_code == 0\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'boto3', 'botocore', 'aws_cdk', 'jsii'}))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
