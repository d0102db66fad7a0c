"""The README's deploy job end to end: scripts/emulator.py runs the real CDK CLI against a local moto server.

It needs no AWS account and no internet (dummy credentials, 127.0.0.1). About 20 s.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

from tests.harness import ROOT

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def run() -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PATH"] = os.pathsep.join([str(ROOT / ".venv" / "bin"), str(ROOT / "node_modules" / ".bin"), env.get("PATH", "")])
    started = time.monotonic()
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "emulator.py")], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=240)
    result.wall_time = time.monotonic() - started
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


def test_both_stacks_reach_create_complete(run):
    assert re.search(r"^==> cdk bootstrap aws://123456789012/us-east-1 \.\.\.\n    ok ", run.stdout, re.M)
    assert re.search(r"^==> cdk deploy TrainingStack InferenceStack \.\.\.\n    ok ", run.stdout, re.M)
    for stack in ("TrainingStack", "InferenceStack"):
        assert _section(run.stdout, stack).startswith(f"{stack}: CREATE_COMPLETE")


def test_training_launch_template_has_8_efa_only_interfaces_and_imdsv2(run):
    training = _section(run.stdout, "TrainingStack")
    assert re.search(r"launch template lt-\w+ version \d+: trn1\.32xlarge,", training)
    assert re.search(r"network interfaces: 9 \(.*\); efa-only: 8; public IP: no;", training)
    assert "HttpTokens=required" in training
    assert re.search(r"volume \S+: \d+ GiB gp3, encrypted True, KMS key arn:aws:kms:\S+ \(ClusterKey", training)


def test_reads_back_security_groups_keys_buckets_and_cost(run):
    training = _section(run.stdout, "TrainingStack")
    assert "ingress: all traffic itself (self reference)" in training
    assert re.search(r"KMS key \S+ \(ClusterKey\w+\): Enabled, rotation on", training)
    assert re.search(r"S3 bucket \S*checkpoints\S*: encryption aws:kms", training)
    cost = re.search(r"estimated monthly cost: \$([\d,]+\.\d\d)  - .*prices as of (\d{4}-\d\d-\d\d)", training)
    assert cost and float(cost.group(1).replace(",", "")) > 0


def test_teardown_deletes_both_stacks_and_leaves_nothing(run):
    assert re.search(r"^==> cdk destroy TrainingStack InferenceStack \.\.\.\n    ok ", run.stdout, re.M)
    for stack in ("TrainingStack", "InferenceStack"):
        assert f"    {stack}: DELETE_COMPLETE" in run.stdout
    assert "    left behind: nothing" in run.stdout
    assert "    teardown: cdk destroy" in run.stdout
    assert "FALLBACK" not in run.stdout
    assert re.search(r"^==> moto server stopped \(pid (\d+)", run.stdout, re.M)


def test_moto_server_process_is_gone(run):
    pid = int(re.search(r"moto server stopped \(pid (\d+)", run.stdout).group(1))
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_runs_within_two_minutes(run):
    assert run.wall_time < 120
