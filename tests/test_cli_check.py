"""`mlcdk check` end to end against moto, as in the emulator's main job: moto marks the job SUCCEEDED without
running a container, so no node reports a bandwidth, and the check says so and fails (exit 1). The request it
sends is read back from moto's recorder. (The judging of real results is tested in tests/test_check.py, the
script itself in tests/test_check_torchrun.py.)"""
from __future__ import annotations

import base64
import json
import zlib

from mlcdk.aws import check
from mlcdk.launch import inline_command
from tests.jobs_cloud import cloud, invoke, job_definition, moto_gaps, sent  # noqa: F401 - the fixtures

ENVIRONMENT = [{"name": "MLCDK_INSTANCE_TYPE", "value": "p5.48xlarge"}, {"name": "MLCDK_ACCELERATOR", "value": "gpu"},
               {"name": "MLCDK_EFA", "value": "1"}, {"name": "MLCDK_NPROC_PER_NODE", "value": "8"}]


def test_check_in_the_emulator_submits_the_script_and_says_no_container_ran(cloud, sent):
    definition = job_definition(cloud.batch, "mlcdk-p5", nodes=2, environment=ENVIRONMENT)
    cloud.add_cluster("P5Stack/Cluster", definition=definition, max_nodes="2")
    result = invoke("check", "--cluster", "P5Stack/Cluster", "--json", "--timeout-minutes", "5")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    report = json.loads(result.stdout)
    assert (report["status"], report["passed"], report["nodes"], report["results"]) == ("SUCCEEDED", False, 2, [])
    assert report["notes"] == ["the job succeeded but no node printed a result: its containers did not run the check "
                               "(a local emulator such as moto marks Batch jobs SUCCEEDED without running them)"]
    assert report["expected"] == {"network_gbytes": 400.0, "minimum_gbytes": 100.0,
                                  "why": "25% of 400 GB/s (p5.48xlarge's network figure) over EFA"}
    [request] = sent("submitjob")
    (override,) = request["nodeOverrides"]["nodePropertyOverrides"]
    assert request["nodeOverrides"]["numNodes"] == 2 and request["jobDefinition"] == definition
    assert override["containerOverrides"]["command"] == inline_command([
        "--rendezvous-timeout", "600", "--", "python3", "-c", check.BOOT, "--bytes", str(256 * 2**20),
        "--iterations", "20", "--warmup", "5", "--timeout", "600", "--min-busbw-gbytes", "100"])
    (variable,) = override["containerOverrides"]["environment"]
    assert variable["name"] == "MLCDK_CHECK" and zlib.decompress(base64.b64decode(variable["value"])).startswith(
        b'"""The all-reduce bandwidth test')


def test_check_refuses_a_cluster_that_is_not_mlcdks(cloud):
    # the fixture's job definition carries no MLCDK_INSTANCE_TYPE
    result = invoke("check", "--cluster", "TrainingStack/Cluster", "--timeout-minutes", "5")
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "cluster 'TrainingStack/Cluster': job definition" in result.stderr
    assert "is not an mlcdk cluster's: its container has no MLCDK_INSTANCE_TYPE" in result.stderr
