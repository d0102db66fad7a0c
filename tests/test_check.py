"""mlcdk check: the submission, the threshold, the reading of the nodes' logs and the named causes, with AWS Batch
and CloudWatch Logs under botocore's Stubber (the real run of the script is tests/test_check_torchrun.py)."""
from __future__ import annotations

import ast
import base64
import sys
import zlib
from pathlib import Path

import boto3
import pytest
from botocore.stub import ANY, Stubber
from typer.testing import CliRunner

from mlcdk import allreduce, launch
from mlcdk.aws import check
from mlcdk.aws.jobs import JobsError
from mlcdk.aws.jobs.clusters import Cluster, Connection
from mlcdk.cli import app

ROOT = Path(__file__).resolve().parent.parent
P5 = check.ClusterFacts("p5.48xlarge", "gpu", True, True)
DEFINITION = "arn:aws:batch:us-east-1:123456789012:job-definition/Cluster-JobDefinition:1"
QUEUE = "arn:aws:batch:us-east-1:123456789012:job-queue/Cluster-JobQueue"
GROUP = "TrainingStack-JobLogs"


def test_bus_bandwidth_is_nccl_tests_all_reduce_formula():
    # NVIDIA/nccl-tests doc/PERFORMANCE.md: busBw = algBw * 2(n-1)/n
    assert allreduce.bus_bandwidth(100.0, 16) == 187.5
    assert allreduce.bus_bandwidth(10.0, 2) == 10.0
    assert allreduce.bus_bandwidth(10.0, 1) == 0.0


@pytest.mark.parametrize(("facts", "nodes", "network", "minimum"), [
    (P5, 2, 400.0, 100.0),  # 32 cards x 100 Gbit/s baseline = 3200 Gbit/s = 400 GB/s; 25% with EFA
    (check.ClusterFacts("trn1.32xlarge", "neuron", True, True), 4, 100.0, 25.0),  # 8 x 100 Gbit/s
    (check.ClusterFacts("g5.12xlarge", "gpu", False, True), 2, 5.0, 0.25),  # 40 Gbit/s, no EFA: 5%
    (P5, 1, 400.0, None),  # one node sends nothing over the network
])
def test_threshold_is_a_share_of_the_catalog_network_figure(facts, nodes, network, minimum):
    expected = check.expectation(facts, nodes)
    assert (expected.network_gbytes, expected.minimum_gbytes) == (network, minimum)


def test_submission_runs_the_check_script_through_the_launcher():
    expected = check.expectation(P5, 2)
    request = check.submission(P5, 2, expected, check.Options())
    (override,) = request["nodeOverrides"]["nodePropertyOverrides"]
    assert request["nodeOverrides"]["numNodes"] == 2 and override["targetNodes"] == "0:"
    command = override["containerOverrides"]["command"]
    assert command == launch.inline_command([
        "--rendezvous-timeout", "600", "--", "python3", "-c", check.BOOT, "--bytes", str(256 * 2**20),
        "--iterations", "20", "--warmup", "5", "--timeout", "600", "--min-busbw-gbytes", "100"])
    (variable,) = override["containerOverrides"]["environment"]
    assert variable["name"] == "MLCDK_CHECK"
    assert zlib.decompress(base64.b64decode(variable["value"])) == (ROOT / "mlcdk" / "allreduce.py").read_bytes()
    single = check.submission(check.ClusterFacts("g5.12xlarge", "gpu", False, False), 1,
                              check.expectation(P5, 1), check.Options(size_bytes=2**20))
    assert "--min-busbw-gbytes" not in single["containerOverrides"]["command"]
    assert "1048576" in single["containerOverrides"]["command"]


def test_the_check_script_is_standard_library_at_import():
    imported = set()
    for node in ast.walk(ast.parse((ROOT / "mlcdk" / "allreduce.py").read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split(".")[0])
    assert imported - set(sys.stdlib_module_names) - {"__future__"} == {"torch", "torch_xla"}


LOG_0 = 'noise\nMLCDK_CHECK {"algbw_gbytes": 170.1, "backend": "nccl", "busbw_gbytes": 318.9, "bytes": 268435456, ' \
        '"node": 0, "nodes": 2, "ok": true, "ranks": 16, "seconds": 0.001578}\n'
LOG_1 = LOG_0.replace('"node": 0', '"node": 1').replace("318.9", "41.2")


def test_parse_reads_result_and_failure_lines_and_ignores_the_rest():
    results, failures = check.parse(LOG_0 + 'MLCDK_CHECK {"node": 1, "cut' + "\n"
                                    + 'MLCDK_CHECK_FAILED {"node": 1, "stage": "init", "error": "DistNetworkError: x"}')
    assert results == [check.NodeResult(0, 318.9, 170.1, 0.001578, 268435456, 16, "nccl")]
    assert failures == [check.StageFailure(1, "init", "DistNetworkError: x")]


@pytest.mark.parametrize(("text", "cause"), [
    ("CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - There is no capacity", "capacity"),
    ("MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - The job resource requirement", "misconfiguration"),
    ("CannotPullContainerError: pull image manifest has been retried 5 time(s)", "image"),
    ("mlcdk.launch: error: shared storage MLCDK_SHARED_STORAGE=/fsx is not a mount point: ...", "shared storage"),
    ("exit code 3", "shared storage"),
    ("mlcdk.launch: error: AWS_BATCH_JOB_NODE_INDEX='9' is not an integer", "launcher"),
    ("NET/OFI Unable to find a provider: fi_getinfo returned -61", "EFA device"),
    ("nrt_init failed: NRT:nrt_allocate_neuron_cores No Neuron device", "Neuron device"),
    ("torch.distributed.DistNetworkError: The client socket has timed out after 10000ms while trying to connect to "
     "(10.0.1.7, 29500).", "rendezvous"),
    ("Host EC2 (instance i-0abc) terminated.", "host"),
    ("timed out waiting for the job after 60 minutes (RUNNABLE)", "timeout"),
])
def test_diagnose_names_the_likely_cause(text, cause):
    found = check.diagnose(["", text])
    assert found is not None and found.name == cause


def test_judge_fails_a_node_below_the_threshold_and_names_the_efa_fallback():
    expected = check.expectation(P5, 2)
    report = check.judge({"jobId": "j", "status": "SUCCEEDED"}, P5, 2, expected, [LOG_0, LOG_1], [])
    assert not report.passed
    assert report.cause.name == "bandwidth" and "node(s) 1" in report.cause.summary
    good = check.judge({"jobId": "j", "status": "SUCCEEDED"}, P5, 2, expected, [LOG_0, LOG_0.replace(
        '"node": 0', '"node": 1')], [])
    assert good.passed and good.cause is None
    missing = check.judge({"jobId": "j", "status": "SUCCEEDED"}, P5, 2, expected, [LOG_0, ""], [])
    assert not missing.passed


def test_judge_says_when_no_container_ran():
    report = check.judge({"jobId": "j", "status": "SUCCEEDED"}, P5, 2, check.expectation(P5, 2), ["", ""], [])
    assert not report.passed
    assert report.notes == ("the job succeeded but no node printed a result: its containers did not run the check (a "
                            "local emulator such as moto marks Batch jobs SUCCEEDED without running them)",)


# ------------------------------------------------------------------------------------------------
# run(): SubmitJob, DescribeJobs, GetLogEvents under Stubber
# ------------------------------------------------------------------------------------------------


def definition(job_type: str = "multinode") -> dict:
    environment = [{"name": "MLCDK_INSTANCE_TYPE", "value": "p5.48xlarge"}, {"name": "MLCDK_ACCELERATOR",
                                                                           "value": "gpu"},
                   {"name": "MLCDK_EFA", "value": "1"}]
    body = {"jobDefinitionName": "Cluster-JobDefinition", "jobDefinitionArn": DEFINITION, "revision": 1,
            "type": job_type}
    if job_type == "multinode":
        body["nodeProperties"] = {"numNodes": 2, "mainNode": 0, "nodeRangeProperties": [
            {"targetNodes": "0:", "container": {"image": "i", "environment": environment}}]}
    else:
        body["containerProperties"] = {"image": "i", "environment": environment}
    return body


def job(status: str, **extra) -> dict:
    return {"jobName": "mlcdk-check", "jobId": "job-1", "jobQueue": QUEUE, "status": status, "startedAt": 1,
            "jobDefinition": DEFINITION, "nodeProperties": {"numNodes": 2, "mainNode": 0, "nodeRangeProperties": []},
            **extra}


def child(node: int, stream: str | None, exit_code: int = 0) -> dict:
    container = {"exitCode": exit_code, **({"logStreamName": stream} if stream else {})}
    return {"jobName": "mlcdk-check", "jobId": f"job-1#{node}", "jobQueue": QUEUE, "status": "SUCCEEDED",
            "startedAt": 1, "jobDefinition": DEFINITION, "container": container}


def clients():
    batch = boto3.client("batch", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
    logs = boto3.client("logs", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
    return batch, logs


def connection(batch, logs) -> Connection:
    """A cluster as the job commands find it (its queue's tags), with the stubbed clients."""
    cluster = Cluster("TrainingStack/Cluster", "us-east-1", QUEUE, "ENABLED", "VALID", DEFINITION, GROUP, 2, "bucket")
    return Connection(None, cluster, {"batch": batch, "logs": logs})


def stub_start(batch_stub: Stubber) -> None:
    batch_stub.add_response("describe_job_definitions", {"jobDefinitions": [definition()]},
                            {"jobDefinitions": [DEFINITION]})
    batch_stub.add_response("submit_job", {"jobName": "mlcdk-check", "jobId": "job-1", "jobArn": "arn:job-1"},
                            {"jobName": "mlcdk-check", "jobQueue": QUEUE, "jobDefinition": DEFINITION,
                             "nodeOverrides": ANY})


def stub_log(logs_stub: Stubber, stream: str, text: str) -> None:
    events = [{"timestamp": 1, "message": line, "ingestionTime": 1} for line in text.splitlines()]
    logs_stub.add_response("get_log_events", {"events": events, "nextForwardToken": "f/1", "nextBackwardToken": "b"},
                           {"logGroupName": GROUP, "logStreamName": stream, "startFromHead": True})
    logs_stub.add_response("get_log_events", {"events": [], "nextForwardToken": "f/1", "nextBackwardToken": "b"},
                           {"logGroupName": GROUP, "logStreamName": stream, "startFromHead": True,
                            "nextToken": "f/1"})


def test_run_submits_waits_and_reads_every_nodes_log():
    batch, logs = clients()
    with Stubber(batch) as b, Stubber(logs) as lg:
        stub_start(b)
        b.add_response("describe_jobs", {"jobs": [job("RUNNING")]}, {"jobs": ["job-1"]})
        b.add_response("describe_jobs", {"jobs": [job("SUCCEEDED")]}, {"jobs": ["job-1"]})
        for node, text in enumerate([LOG_0, LOG_0.replace('"node": 0', '"node": 1')]):
            b.add_response("describe_jobs", {"jobs": [child(node, f"mlcdk/default/n{node}")]},
                           {"jobs": [f"job-1#{node}"]})
            stub_log(lg, f"mlcdk/default/n{node}", text)
        slept = []
        report = check.run(connection(batch, logs), sleep=slept.append,
                           clock=lambda: 0.0)
        b.assert_no_pending_responses()
        lg.assert_no_pending_responses()
    assert report.passed and slept == [1.0]
    assert [(r.node, r.busbw_gbytes) for r in report.results] == [(0, 318.9), (1, 318.9)]
    assert (report.expected.network_gbytes, report.expected.minimum_gbytes) == (400.0, 100.0)


def test_run_cancels_a_job_still_waiting_for_capacity_and_says_so():
    batch, logs = clients()
    waiting = job("RUNNABLE", statusReason="CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - no capacity in use1-az4")
    times = iter([0.0, 3601.0])
    with Stubber(batch) as b, Stubber(logs):
        stub_start(b)
        b.add_response("describe_jobs", {"jobs": [waiting]}, {"jobs": ["job-1"]})
        b.add_response("terminate_job", {}, {"jobId": "job-1", "reason": ANY})
        for node in range(2):
            b.add_response("describe_jobs", {"jobs": []}, {"jobs": [f"job-1#{node}"]})
        report = check.run(connection(batch, logs), sleep=lambda s: None,
                           clock=lambda: next(times))
        b.assert_no_pending_responses()
    assert not report.passed and report.status == "FAILED"
    assert report.cause.name == "capacity"
    assert report.status_reason.startswith("timed out waiting for the job after 60 minutes (RUNNABLE: CAPACITY:")


def test_run_names_a_failed_rendezvous_from_a_nodes_log():
    batch, logs = clients()
    failed = job("FAILED", statusReason="Essential container in main node exited")
    with Stubber(batch) as b, Stubber(logs) as lg:
        stub_start(b)
        b.add_response("describe_jobs", {"jobs": [failed]}, {"jobs": ["job-1"]})
        b.add_response("describe_jobs", {"jobs": [child(0, "s0", 1)]}, {"jobs": ["job-1#0"]})
        stub_log(lg, "s0", "torch.distributed.DistNetworkError: The client socket has timed out after 600000ms "
                           "while trying to connect to (10.0.1.7, 29500).")
        b.add_response("describe_jobs", {"jobs": [child(1, None, 1)]}, {"jobs": ["job-1#1"]})
        report = check.run(connection(batch, logs), sleep=lambda s: None,
                           clock=lambda: 0.0)
    assert not report.passed
    assert report.cause.name == "rendezvous"
    assert "security group" in report.cause.advice


def test_run_refuses_a_node_count_beyond_the_cluster():
    batch, logs = clients()
    with Stubber(batch) as b:
        b.add_response("describe_job_definitions", {"jobDefinitions": [definition()]},
                       {"jobDefinitions": [DEFINITION]})
        with pytest.raises(JobsError, match=r"--nodes 3 is out of range: 1 to 2 \(cluster 'TrainingStack/Cluster'"):
            check.run(connection(batch, logs), check.Options(nodes=3))


@pytest.mark.parametrize(("args", "message"), [
    (["--iterations", "0"], "--iterations 0 is out of range: 1 to 1000"),
    (["--nodes", "0"], "--nodes 0 must be at least 1"),  # #25: checked before any AWS client, not after connecting
    (["--timeout-minutes", "nan"], "--timeout-minutes nan is out of range: 1 to 1440"),
])
def test_cli_check_usage_errors_are_one_line_and_exit_2(monkeypatch, args, message):
    import boto3

    def refuse(*args, **kwargs):
        raise AssertionError("an AWS client was made before the command line was checked")
    monkeypatch.setattr(boto3, "Session", refuse)
    monkeypatch.setattr(boto3, "client", refuse)
    result = CliRunner().invoke(app, ["check", *args, "--region", "us-east-1"])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [f"error: {message}"], result.output


def test_cli_prints_each_node_beside_the_network_figure(capsys):
    from mlcdk.cli import check as command

    expected = check.expectation(P5, 2)
    report = check.judge({"jobId": "job-1", "status": "SUCCEEDED"}, P5, 2, expected, [LOG_0, LOG_1], [])
    command.show(report)
    text = capsys.readouterr().out
    assert "job job-1: 2 x p5.48xlarge, NCCL over EFA (SUCCEEDED)" in text
    assert "318.90" in text and "400.00" in text and "80%" in text and "100.00" in text and "LOW" in text
    assert "threshold: 25% of 400 GB/s (p5.48xlarge's network figure) over EFA" in text
    assert "FAILED (bandwidth): bus bandwidth below 100 GB/s on node(s) 1" in text
