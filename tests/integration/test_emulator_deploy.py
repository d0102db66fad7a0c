"""The README's deploy job end to end: `make deploy` (scripts/emulator.py, a thin use of mlcdk.emulator) runs the
real CDK CLI against a local moto server, submits a 2-node job with the real `mlcdk submit`, runs `mlcdk check`, and
tears everything down, leaving no process and no temporary file behind.

It needs no AWS account and no internet (dummy credentials, 127.0.0.1). About 15 s on an idle machine.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid

import pytest

from mlcdk.emulator.fixes import FIXES
from tests.harness import ROOT
from tests.integration.runs import environment, kill_leftovers, wait_until_gone

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> subprocess.CompletedProcess:
    run_id = f"deploy-test-{uuid.uuid4().hex}"
    tmpdir = tmp_path_factory.mktemp("deploy-tmpdir")
    started = time.monotonic()
    try:
        result = subprocess.run([sys.executable, str(ROOT / "scripts" / "emulator.py")], cwd=ROOT,
                                env=environment(run_id, tmpdir), capture_output=True, text=True, timeout=400)
        result.wall_time = time.monotonic() - started
        result.left, _ = wait_until_gone(run_id, timeout=5) if sys.platform.startswith("linux") else ({}, 0)
        result.tmp_left = sorted(p.name for p in tmpdir.iterdir())
    finally:
        if sys.platform.startswith("linux"):
            kill_leftovers(run_id)
    print(result.stdout, result.stderr, sep="\n")
    return result


def _section(stdout: str, stack: str) -> str:
    """The read-back block of one stack: from its status line to the next blank line."""
    found = re.search(rf"^{stack}: (\S+).*?(?=^\s*$)", stdout, re.M | re.S)
    assert found, f"no read-back section for {stack}"
    return found.group(0)


def test_exits_zero_without_error(run):
    assert run.returncode == 0, run.stderr
    assert "error:" not in run.stderr
    assert re.search(r"^Total wall time: \d+\.\d s$", run.stdout, re.M)


def test_prints_every_moto_fix_of_the_table(run):
    for fix in FIXES:
        assert f"    - {fix.name}: {fix.why}" in run.stdout


def test_synthesizes_once_and_deploys_the_assembly_s_stacks(run):
    assert re.search(r"^==> cdk synth \.\.\.\n    ok \(\d+\.\d s\)\n    stacks: TrainingStack, InferenceStack \(of 2 in "
                     r"the assembly\)$", run.stdout, re.M)


def test_both_stacks_reach_create_complete(run):
    assert re.search(r"^==> cdk bootstrap aws://123456789012/us-east-1 \.\.\.\n    ok ", run.stdout, re.M)
    assert re.search(r"^==> cdk deploy TrainingStack InferenceStack \.\.\.\n    ok ", run.stdout, re.M)
    for stack in ("TrainingStack", "InferenceStack"):
        assert _section(run.stdout, stack).startswith(f"{stack}: CREATE_COMPLETE")


def test_training_launch_template_has_8_efa_devices_a_free_card_0_slot_and_imdsv2(run):
    training = _section(run.stdout, "TrainingStack")
    # The Batch compute environment's launch template, read back at the version the environment pins.
    assert re.search(r"  Batch compute environment \S+\n(?:    .*\n)*?    launch template lt-\w+ version \d+: "
                     r"trn1\.32xlarge,", training)
    # The Batch layout: an efa primary and one efa-only interface per further card (trn1.32xlarge: 8 cards of 5).
    assert re.search(r"network interfaces: 8 \(1 efa, 7 efa-only\); EFA devices: 8; public IP: no;", training)
    assert ("network card 0: 1 of 5 interface slots used (efa at device 0); free for the job containers' awsvpc task "
            "interface: 4") in training
    assert "HttpTokens=required, HttpPutResponseHopLimit=1" in training
    assert re.search(r"volume \S+: \d+ GiB gp3, encrypted True, KMS key arn:aws:kms:\S+ \(ClusterKey", training)


def test_reads_back_the_job_containers_security_group_and_the_runnable_limits(run):
    training = _section(run.stdout, "TrainingStack")
    block = re.search(r"    job containers' task interface: security group (sg-\w+) \(the default group of vpc-\w+\)\n"
                      r"((?:      .*\n)+)", training)
    assert block, training
    rules = block.group(2)
    assert "ingress: all traffic itself (self reference)" in rules
    assert re.search(r"ingress: all traffic .*sg-\w+", rules)  # from the nodes' group
    assert "egress (declared; moto does not model AWS::EC2::SecurityGroupEgress): all traffic 0.0.0.0/0" in rules
    assert "CANCEL a job RUNNABLE for 14400 s with reason CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY" in training


def test_reads_back_security_groups_keys_buckets_and_cost(run):
    training = _section(run.stdout, "TrainingStack")
    assert "ingress: all traffic itself (self reference)" in training
    assert re.search(r"KMS key \S+ \(ClusterKey\w+\): Enabled, rotation on", training)
    assert re.search(r"S3 bucket \S*checkpoints\S*: encryption aws:kms", training)
    cost = re.search(r"estimated monthly cost: \$([\d,]+\.\d\d)  - .*prices as of (\d{4}-\d\d-\d\d)", training)
    assert cost and float(cost.group(1).replace(",", "")) > 0


def test_shared_storage_is_deployed_and_its_fsx_resources_are_reported_as_skipped(run):
    """make deploy turns the shared file system on; moto's CloudFormation does not model FSx, and the read-back says
    so instead of faking it. The file system's security group and its Lustre rules are created."""
    training = _section(run.stdout, "TrainingStack")
    skipped = re.search(r"^  not modelled by moto \(skipped, not created\): (.*)$", training, re.M)
    assert skipped and "1 FSx::FileSystem" in skipped.group(1) and "1 FSx::DataRepositoryAssociation" in skipped.group(1)
    assert re.search(r"security group \S+ \(Cluster shared file system: Lustre \(TCP 988, 1018-1023\) with the nodes "
                     r"only\)\n    ingress: tcp 988-988 ", training)
    assert re.search(r"estimated monthly cost: .*; plus FSx for Lustre PERSISTENT_2 125 MB/s/TiB 1200 GiB .*: "
                     r"\$174\.00/month", training)


def test_training_reads_back_the_batch_compute_environment_queue_and_job_definition(run):
    training = _section(run.stdout, "TrainingStack")
    assert "Auto Scaling group" not in training  # the Batch engine is the default
    assert re.search(r"MANAGED EC2, state ENABLED, status VALID; vCPUs: min 0, max 256; instance types: "
                     r"trn1\.32xlarge;", training)  # 2 x trn1.32xlarge x 128 vCPUs
    assert "SecurityGroupIds: none (the launch template network interfaces carry the group)" in training
    # Shown, not hidden: moto drops the cluster placement group the template asks for.
    assert "placement group: none (the template asks for a cluster placement group; moto does not model" in training
    version = re.search(r"launch template version: (\d+) \(pinned; the template's latest is (\d+)\)", training)
    assert version and version.group(1) == version.group(2)
    assert re.search(r"Batch job queue \S+: state ENABLED, status VALID, priority 1; compute environments: "
                     r"TrainingStack-\S*ComputeEnvironment\S* \(order 1\)", training)
    assert re.search(r"Batch job definition \S+:1: type multinode, status ACTIVE, NumNodes 2 \(main node 0\); "
                     r"platform EC2; retry attempts \d+; timeout \d+ s", training)
    assert re.search(r'node range "0:": image \S+; 128 vCPUs, \d+ MiB; 24 host devices;', training)  # 8 EFA + 16 Neuron
    assert re.search(r"log group \S*JobLogs\S*: KMS key arn:aws:kms:\S+ \(ClusterKey\w+\), retention \d+ days", training)
    assert re.search(r"EventBridge rule \S+: ENABLED; Batch Job State Change with status FAILED/SUCCEEDED on "
                     r"\S*JobQueue\S*; targets: \S*AlarmTopic", training)


def test_inference_reads_back_the_ecs_service_that_serves_the_default_model(run):
    """InferenceStack serves TinyLlama with vLLM on ECS: the cluster's capacity provider is the fleet's Auto Scaling
    group, the service sits behind the load balancer with the circuit breaker and the startup grace, and its task
    definition runs the Neuron vLLM image on inf2.xlarge's one device with tensor parallelism 2."""
    inference = _section(run.stdout, "InferenceStack")
    assert re.search(r"  ECS cluster \S+: status ACTIVE; capacity providers: (\S+); default strategy: \1 \(weight 1\)\n"
                     r"    capacity provider \1: Auto Scaling group InferenceStack-\S*NodesASG\S+; managed scaling "
                     r"ENABLED \(target 100%\), managed termination protection ENABLED, managed draining ENABLED",
                     inference)
    assert re.search(r"  ECS service \S+ in \S+: desired 1, capacity provider \S*CapacityProvider\S*; load balancer: "
                     r"Server:8080 -> targetgroup/\S+\n    deployments: 100-200%, circuit breaker on with rollback; "
                     r"health-check grace 360 s", inference)
    assert re.search(r"task definition \S+:1: network mode bridge, task role \S*TaskRole", inference)
    assert re.search(r"container Server \(essential\): public\.ecr\.aws/neuron/pytorch-inference-vllm-neuronx:\S+\n"
                     r"        command: vllm serve TinyLlama/TinyLlama-1\.1B-Chat-v1\.0 .*--tensor-parallel-size 2 ",
                     inference)
    assert re.search(r"memory 14745 MiB, shared memory 7372 MiB; accelerators: /dev/neuron0; ports: 8080->8080",
                     inference)
    assert "instance metadata: HttpTokens=required, HttpPutResponseHopLimit=1" in inference


def test_submits_a_two_node_job_with_the_cli_and_moto_marks_it_succeeded(run):
    assert re.search(r"^==> mlcdk submit --stack TrainingStack --region us-east-1 --nodes 2 --name "
                     r"mlcdk-emulator-check --json -- python3 train.py \.\.\.\n    ok \(\d+\.\d s\): job \S+ on 2 "
                     r"node\(s\)", run.stdout, re.M)
    job = re.search(r"^  job (\S+) \(mlcdk-emulator-check\): (\S+)\n((?:    .*\n)+)", run.stdout, re.M)
    assert job, "no job read-back"
    assert job.group(2) == "SUCCEEDED"
    details = job.group(3)
    assert re.search(r"^    nodes: 2 \(main node 0\);", details, re.M)
    assert re.search(r"job definition \S+: type multinode, revision 1", details)
    assert re.search(r'node range "0:": command python3 -c <\d+-character inline script> -- python3 train\.py$',
                     details, re.M)
    assert re.search(r"^      image \S+neuron\S+$", details, re.M)
    assert "moto marks Batch jobs SUCCEEDED without running them" in details and "no container ran" in details


def test_teardown_deletes_both_stacks_and_leaves_nothing(run):
    assert re.search(r"^==> cdk destroy TrainingStack InferenceStack \.\.\.\n    ok ", run.stdout, re.M)
    for stack in ("TrainingStack", "InferenceStack"):
        assert f"    {stack}: DELETE_COMPLETE" in run.stdout
    assert "    left behind: nothing (checked: ACTIVE Batch job definition, Auto Scaling group, Batch compute " \
           "environment, Batch job queue, ECS capacity provider, ECS cluster, ECS service, EventBridge rule, KMS key, " \
           "S3 bucket, launch template, log group, security group)" in run.stdout
    assert "kept, as CloudFormation keeps them" not in run.stdout  # -c removal_policy=destroy: nothing is retained
    assert "    CDKToolkit (us-east-1): DELETE_COMPLETE" in run.stdout
    assert "    teardown: cdk destroy" in run.stdout
    assert "FALLBACK" not in run.stdout
    assert re.search(r"^==> moto server stopped \(pid (\d+)", run.stdout, re.M)


def test_moto_server_process_is_gone(run):
    pid = int(re.search(r"moto server stopped \(pid (\d+)", run.stdout).group(1))
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_no_process_of_the_run_is_left(run):
    assert not run.left, f"processes of the run still running after it exited: {run.left}"


def test_no_temporary_file_or_directory_is_left(run):
    """The run's directory (moto.log, cdk.out, and the TMPDIR of cdk, the app and its jsii kernel) is gone."""
    removed = re.search(r"^    removed the run's directory (\S+)$", run.stdout, re.M)
    assert removed and not os.path.exists(removed.group(1))
    assert run.tmp_left == [], f"left in the run's TMPDIR: {run.tmp_left}"


def test_runs_within_two_minutes(run):
    assert run.wall_time < 120


def test_runs_mlcdk_check_and_says_that_moto_ran_no_container(run):
    assert re.search(r"^==> mlcdk check --stack TrainingStack --region us-east-1 --nodes 2 --timeout-minutes 2 "
                     r"--json \.\.\.\n    job \S+: SUCCEEDED on 2 node\(s\) of trn1\.32xlarge \(neuron, EFA\); threshold: 25% "
                     r"of 100 GB/s \(trn1\.32xlarge's network figure\) over EFA\n    NOTE: moto marks Batch jobs SUCCEEDED "
                     r"without running them: no node ran the all-reduce, so no bandwidth was measured", run.stdout, re.M)
