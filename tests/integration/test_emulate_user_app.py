"""`mlcdk emulate` on apps that are not this repo's, run as a user would run it (a subprocess in the app's own
directory, a CDK CLI on PATH), leaving nothing behind: no process, no temporary file, nothing in the app's
directory.

1. A minimal third-party app: its own directory, app.py and cdk.json; one stack holding a TrainingCluster under
   its own construct ID ("Trainer") and a plain S3 bucket. No emulator context: the cluster's default AMI
   parameter (the ECS-optimized Neuron AMI) is one moto preloads.
2. A synthesized cloud assembly given as --app, with a stage: --stack selects a stage's stack, and the stack it
   depends on comes too, in the region the stage names; a pattern that matches nothing is a one-line usage error.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from tests.harness import ROOT
from tests.integration.runs import environment, kill_leftovers, wait_until_gone

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to find the run's processes")]

USER_APP = textwrap.dedent("""\
    import aws_cdk as cdk
    from aws_cdk import aws_s3 as s3
    from mlcdk import TrainingCluster

    app = cdk.App()
    stack = cdk.Stack(app, "ResearchStack", env=cdk.Environment(region="us-east-1"))
    TrainingCluster(stack, "Trainer", preset="llm-pretrain-trainium", nodes=2)
    s3.Bucket(stack, "Datasets", enforce_ssl=True)
    app.synth()
""")
#: The --check: boto3 in the app's directory, against the emulator (the run's AWS_ENDPOINT_URL), lists the buckets.
LIST_BUCKETS = "python3 -c 'import boto3; print(sorted(b[\"Name\"] for b in boto3.client(\"s3\").list_buckets()[\"Buckets\"]))'"


def _mlcdk_emulate(arguments: list[str], cwd: Path, tmpdir: Path, timeout: float = 400) -> subprocess.CompletedProcess:
    run_id = f"user-app-{uuid.uuid4().hex}"
    try:
        result = subprocess.run([str(ROOT / ".venv" / "bin" / "mlcdk"), "emulate", *arguments], cwd=cwd,
                                env=environment(run_id, tmpdir), capture_output=True, text=True, timeout=timeout)
        result.left, _ = wait_until_gone(run_id, timeout=10)
    finally:
        kill_leftovers(run_id)
    result.tmp_left = sorted(str(p) for p in tmpdir.rglob("*"))
    print(result.stdout, result.stderr, sep="\n")
    return result


@pytest.fixture(scope="module")
def user_app(tmp_path_factory) -> subprocess.CompletedProcess:
    directory = tmp_path_factory.mktemp("research-app")
    (directory / "app.py").write_text(USER_APP)
    (directory / "cdk.json").write_text('{"app": "python3 app.py"}\n')
    result = _mlcdk_emulate(["--check", LIST_BUCKETS], directory, tmp_path_factory.mktemp("user-app-tmpdir"))
    result.app_files = sorted(p.name for p in directory.iterdir())
    return result


def _stack(stdout: str) -> str:
    found = re.search(r"^ResearchStack: (\S+).*?(?=^\s*$)", stdout, re.M | re.S)
    assert found, "no read-back section for ResearchStack"
    return found.group(0)


def test_deploys_the_app_of_cdk_json_with_the_cdk_cli_on_path(user_app):
    assert user_app.returncode == 0, user_app.stderr
    assert "error:" not in user_app.stderr
    assert f"CDK CLI {ROOT / 'node_modules' / '.bin' / 'cdk'} (from PATH)" in user_app.stdout
    assert re.search(r"^==> cdk synth \.\.\.\n    ok \(\d+\.\d s\)\n    stacks: ResearchStack \(of 1 in the "
                     r"assembly\)$", user_app.stdout, re.M)
    assert re.search(r"^==> cdk bootstrap aws://123456789012/us-east-1 \.\.\.\n    ok ", user_app.stdout, re.M)
    assert re.search(r"^==> cdk deploy ResearchStack \.\.\.\n    ok ", user_app.stdout, re.M)


def test_reads_back_what_was_created_and_what_moto_skipped(user_app):
    stack = _stack(user_app.stdout)
    assert re.match(r"ResearchStack: CREATE_COMPLETE  \(\d+ of \d+ template resources created in the emulator\)", stack)
    skipped = re.search(r"^  not modelled by moto \(skipped, not created\): (.*)$", stack, re.M).group(1)
    for kind in ("CloudWatch::Alarm", "EC2::PlacementGroup", "Budgets::Budget", "S3::BucketPolicy"):
        assert kind in skipped
    created = re.search(r"^  resources: (.*)$", stack, re.M).group(1)
    assert "3 S3::Bucket" in created  # the checkpoint bucket, its access-log bucket, and the app's own


def test_reads_back_the_training_cluster_under_its_own_construct_id(user_app):
    stack = _stack(user_app.stdout)
    assert re.search(r"  Batch compute environment ResearchStack-Trainer\S+\n    MANAGED EC2, state ENABLED, status "
                     r"VALID; vCPUs: min 0, max 256; instance types: trn1\.32xlarge;", stack)
    assert re.search(r"image: ECS_AL2023 ami-[0-9a-f]+;", stack)  # the ECS-optimized Neuron AMI moto preloads
    assert re.search(r"network interfaces: 8 \(1 efa, 7 efa-only\); EFA devices: 8; public IP: no;", stack)
    assert "HttpTokens=required" in stack
    assert re.search(r"Batch job queue ResearchStack-TrainerBatchJobQueue\S+: state ENABLED, status VALID", stack)
    assert re.search(r"Batch job definition ResearchStack-TrainerBatchJobDefinition\S+:1: type multinode, status "
                     r"ACTIVE, NumNodes 2 \(main node 0\)", stack)
    assert re.search(r"S3 bucket researchstack-trainercheckpoints[0-9a-f]{8}-\S+: encryption aws:kms with key", stack)
    # 2 nodes x $21.50/h (trn1.32xlarge on demand in us-east-1) x 730 h = $31,390.00
    assert "  estimated monthly cost: $31,390.00  - Trainer at full size: 2 x trn1.32xlarge" in stack


def test_reads_back_the_plain_bucket(user_app):
    assert re.search(r"^  S3 bucket researchstack-datasets[0-9a-f]{8}-\S+: encryption none set by the template \(moto "
                     r"answers ServerSideEncryptionConfigurationNotFoundError; S3 itself applies SSE-S3 to every "
                     r"bucket\); versioning not enabled$", _stack(user_app.stdout), re.M)


def test_runs_the_check_against_the_emulator(user_app):
    check = re.search(r"^==> check: python3 -c .*\n    \| (\[.*\])\n    ok ", user_app.stdout, re.M)
    assert check, "no check output"
    assert re.search(r"'researchstack-datasets[0-9a-f]{8}-\w+'", check.group(1))


def test_tears_down_and_names_what_the_template_retains(user_app):
    assert re.search(r"^==> cdk destroy ResearchStack \.\.\.\n    ok ", user_app.stdout, re.M)
    assert "    ResearchStack: DELETE_COMPLETE" in user_app.stdout
    assert "    left behind: nothing (checked: " in user_app.stdout
    # RemovalPolicy.RETAIN, the default of s3.Bucket and of the cluster's key, bucket and job log group, writes
    # DeletionPolicy Retain: CloudFormation keeps them, and so does the emulator, which says so.
    kept = re.search(r"^    kept, as CloudFormation keeps them \(their template's DeletionPolicy is Retain; they go "
                     r"with the emulator\):\n((?:      .*\n)+)", user_app.stdout, re.M)
    assert kept
    labels = sorted(re.sub(r" \S+$", "", line.strip()) for line in kept.group(1).splitlines())
    assert labels == ["ResearchStack: KMS key", "ResearchStack: S3 bucket", "ResearchStack: S3 bucket",
                      "ResearchStack: S3 bucket", "ResearchStack: log group"]
    assert re.search(r"^      ResearchStack: S3 bucket researchstack-datasets", kept.group(1), re.M)
    assert "    CDKToolkit (us-east-1): DELETE_COMPLETE" in user_app.stdout
    assert "FALLBACK" not in user_app.stdout


def test_leaves_no_process_no_temporary_file_and_nothing_in_the_app_directory(user_app):
    assert not user_app.left, f"processes of the run still running after it exited: {user_app.left}"
    assert user_app.tmp_left == []
    assert user_app.app_files == ["app.py", "cdk.json"]  # no cdk.out, no cdk.context.json


STAGED_APP = textwrap.dedent("""\
    import sys
    import aws_cdk as cdk
    from aws_cdk import aws_s3 as s3, aws_sns as sns

    app = cdk.App(outdir=sys.argv[1])
    cdk.Stack(app, "Other", env=cdk.Environment(region="us-east-1"))
    prod = cdk.Stage(app, "Prod", env=cdk.Environment(region="us-west-2"))
    data = cdk.Stack(prod, "Data")
    s3.Bucket(data, "Raw", removal_policy=cdk.RemovalPolicy.DESTROY)
    jobs = cdk.Stack(prod, "Jobs")
    sns.Topic(jobs, "Done")
    jobs.add_dependency(data)
    app.synth()
""")


@pytest.fixture(scope="module")
def staged_assembly(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("staged-app")
    subprocess.run([sys.executable, "-c", STAGED_APP, str(directory / "cdk.out")], cwd=directory, check=True,
                   capture_output=True, text=True)
    return directory


def test_a_stage_s_stack_deploys_with_the_stack_it_depends_on(staged_assembly, tmp_path):
    result = _mlcdk_emulate(["--app", "cdk.out", "--stack", "Prod/Jobs"], staged_assembly, tmp_path)
    assert result.returncode == 0, result.stderr
    assert re.search(r"^==> cloud assembly \S+/cdk\.out \(copied; no synth\)\n    stacks: Prod/Data, Prod/Jobs \(of 3 "
                     r"in the assembly\)$", result.stdout, re.M)
    assert re.search(r"^==> cdk bootstrap aws://123456789012/us-west-2 \.\.\.\n", result.stdout, re.M)
    assert re.search(r"^==> cdk deploy Prod/Data Prod/Jobs \.\.\.\n    ok ", result.stdout, re.M)
    assert re.search(r"^Prod/Data \(stack Prod-Data\): CREATE_COMPLETE  \(1 of 1 template resources", result.stdout, re.M)
    assert re.search(r"^  S3 bucket prod-data-raw\S+: ", result.stdout, re.M)
    assert re.search(r"^Prod/Jobs \(stack Prod-Jobs\): CREATE_COMPLETE  \(1 of 1 template resources", result.stdout, re.M)
    assert "Other" not in result.stdout.split("stacks: ")[1].splitlines()[0]
    assert "    Prod/Data: DELETE_COMPLETE\n    Prod/Jobs: DELETE_COMPLETE\n    left behind: nothing" in result.stdout
    assert "kept, as CloudFormation keeps them" not in result.stdout  # RemovalPolicy.DESTROY: nothing retained
    assert "    CDKToolkit (us-west-2): DELETE_COMPLETE" in result.stdout
    assert not result.left and result.tmp_left == []


def test_a_pattern_that_matches_no_stack_is_a_usage_error(staged_assembly, tmp_path):
    result = _mlcdk_emulate(["--app", "cdk.out", "--stack", "Dev/*", "--keep"], staged_assembly, tmp_path)
    assert result.returncode == 2
    assert result.stderr == ("error: --stack: 'Dev/*' matches no stack of the app; its stacks: Prod/Data, Prod/Jobs, "
                             "Other\n")
    assert not result.left
    kept = Path(re.search(r"^    kept: (\S+) \(moto\.log, cdk\.out\)$", result.stdout, re.M).group(1))
    assert kept.parent == tmp_path  # --keep: the run's directory stays, and says where
    assert (kept / "moto.log").is_file() and (kept / "cdk.out" / "manifest.json").is_file()
    shutil.rmtree(kept)
    assert list(tmp_path.iterdir()) == []
