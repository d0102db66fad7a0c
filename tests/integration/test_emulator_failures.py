"""An emulator run's failure messages name the failing step and its cause (never "see above", never a bare
exception class): start moto, synth, bootstrap, deploy, read back, submit, wait for job, destroy.

Most checks call the emulator's functions with stand-ins (a fake cdk or mlcdk script, a closed port); the last one
runs `make deploy`'s whole driver into a synth that fails (trn1.32xlarge is offered in no EU region).
"""
from __future__ import annotations

import re
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from mlcdk.emulator import cdk, jobcheck, server
from mlcdk.emulator.checks import CommandCheck, Deployment
from mlcdk.emulator.failures import Failure, step
from tests.harness import ROOT
from tests.integration.runs import environment, kill_leftovers, wait_until_gone

pytestmark = pytest.mark.integration


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def _env(tmp_path: Path) -> dict[str, str]:
    env = cdk.environment("http://localhost:1", "us-east-1", directory=tmp_path, tmp=tmp_path,
                          run_id=f"failure-test-{uuid.uuid4().hex}")
    env["PATH"] = f"{tmp_path}:{env['PATH']}"
    return env


def test_moto_server_that_exits_names_the_step_exit_code_and_its_log(tmp_path):
    log = tmp_path / "moto.log"
    log.write_text("Traceback (most recent call last):\nOSError: [Errno 98] Address already in use\n")
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    process.wait()
    with pytest.raises(Failure) as error:
        server.wait_until_up("http://127.0.0.1:1", process, log, timeout=5)
    assert str(error.value) == ("start moto failed: the moto server exited (exit 3) before answering on "
                                "http://127.0.0.1:1; its log ends: Traceback (most recent call last): / "
                                "OSError: [Errno 98] Address already in use")


def test_unreachable_moto_api_names_the_step_and_the_exception():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends: nothing listens there
    with pytest.raises(Failure) as error:
        with step("start moto"):
            server.moto_api(f"http://127.0.0.1:{port}", "/moto-api/config", {"batch": {"use_docker": False}})
    assert re.fullmatch(r"start moto failed: URLError: <urlopen error \[Errno 111\] Connection refused>",
                        str(error.value))


def test_unexpected_exception_inside_a_step_keeps_its_class_and_message():
    with pytest.raises(Failure, match=r"^read back failed: KeyError: 'Stacks'$"):
        with step("read back"):
            {}["Stacks"]


@pytest.mark.parametrize(("output", "reason"), [
    ('echo "TrainingStack: deploying... [1/2]"\necho "❌  TrainingStack failed: Error: boom" >&2\nexit 1\n',
     "cdk deploy TrainingStack (exit 1): ❌  TrainingStack failed: Error: boom"),
    ('echo "one"\necho "two"\necho "three"\necho "four"\nexit 4\n',
     "cdk deploy TrainingStack (exit 4): its output ends: two / three / four"),
    ('kill -TERM $$\n', "cdk deploy TrainingStack (exit 143: killed by SIGTERM): its output ends: (it printed nothing)"),
    # What npm's "latest" aws-cdk (an old 3.0.0 build) says about aws-cdk-lib 2.27x's assembly (shared/FACTS.md):
    # the hint says which CLI to install.
    ('echo "Maximum schema version supported is 43.x.x, but found 55.0.0" >&2\nexit 1\n',
     "cdk deploy TrainingStack (exit 1): its output ends: Maximum schema version supported is 43.x.x, but found "
     "55.0.0; this CDK CLI is older than the app's aws-cdk-lib: install the CDK CLI mlcdk is tested with in the "
     "app's directory: npm install --save-dev aws-cdk@^2.1148.1 (npm's 'latest' is an old 3.0.0 build that cannot "
     "read aws-cdk-lib 2.27x's cloud assembly)"),
])
def test_failing_cdk_names_the_step_and_its_last_lines(tmp_path, output, reason):
    fake = _script(tmp_path / "cdk", output)
    with pytest.raises(Failure) as error:
        cdk.run_cdk(cdk.CdkCli(str(fake), "test"), "deploy", "cdk deploy TrainingStack", ["deploy"], _env(tmp_path),
                    cwd=tmp_path)
    assert str(error.value) == f"deploy failed: {reason}"
    assert "see above" not in str(error.value)


def test_failing_check_names_the_step_the_command_and_its_last_lines(tmp_path):
    deployment = Deployment("http://localhost:1", "us-east-1", _env(tmp_path), tmp_path, lambda service: None, {})
    with pytest.raises(Failure) as error:
        CommandCheck("echo one; echo two >&2; echo three; exit 3").run(deployment)
    assert str(error.value) == "check failed: echo one; echo two >&2; echo three; exit 3 (exit 3): one / two / three"


SUBMIT = ("submit", "--stack", "TrainingStack", "--json", "--", "python3", "train.py")


def test_failing_submit_names_the_step_and_the_cli_error(tmp_path):
    _script(tmp_path / "mlcdk", "echo \"error: --stack: there is no stack 'TrainingStack' in us-east-1\" >&2\nexit 2\n")
    with pytest.raises(Failure) as error:
        jobcheck.submit(SUBMIT, _env(tmp_path), tmp_path)
    assert str(error.value) == ("submit failed: mlcdk submit (exit 2): error: --stack: there is no stack "
                                "'TrainingStack' in us-east-1")


def test_submit_that_prints_no_json_names_the_step(tmp_path):
    _script(tmp_path / "mlcdk", "echo 'not json'\n")
    with pytest.raises(Failure, match=r"^submit failed: mlcdk submit --json printed no job: "
                                       r"JSONDecodeError: .*; its output ends: not json$"):
        jobcheck.submit(SUBMIT, _env(tmp_path), tmp_path)


class _Batch:
    def __init__(self, *statuses: str) -> None:
        self.statuses = list(statuses)

    def describe_jobs(self, jobs):
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return {"jobs": [{"jobId": jobs[0], "status": status, "statusReason": "Essential container in task exited"}]}


def test_job_that_never_finishes_names_the_step_and_the_statuses_seen():
    batch = _Batch("SUBMITTED", "RUNNABLE")
    with pytest.raises(Failure, match=r"^wait for job failed: job j-1 is still RUNNABLE after 1 s "
                                       r"\(statuses seen: SUBMITTED -> RUNNABLE\)$"):
        jobcheck.wait_for_job(lambda service: batch, "j-1", timeout=1)


def test_failed_job_names_the_step_and_the_reason():
    batch = _Batch("RUNNING", "FAILED")
    with pytest.raises(Failure, match=r"^wait for job failed: job j-2 FAILED: Essential container in task "
                                       r"exited$"):
        jobcheck.wait_for_job(lambda service: batch, "j-2", timeout=5)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_failing_run_ends_with_one_line_and_leaves_nothing(tmp_path):
    run_id = f"failure-run-{uuid.uuid4().hex}"
    try:
        result = subprocess.run([sys.executable, str(ROOT / "scripts" / "emulator.py"), "--region", "eu-north-1"],
                                cwd=ROOT, env=environment(run_id, tmp_path), capture_output=True, text=True,
                                timeout=300)
        left, _ = wait_until_gone(run_id, timeout=5)
    finally:
        kill_leftovers(run_id)
    print(result.stdout, result.stderr, sep="\n")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert errors[0].startswith("error: synth failed: cdk synth (exit 1): ")
    assert "trn1.32xlarge is not offered in eu-north-1" in errors[0]
    assert re.search(r"^==> moto server stopped \(pid \d+, exit 0\)$", result.stdout, re.M)
    assert re.search(r"^    removed the run's directory \S+ \(pass --keep to keep it\)$", result.stdout, re.M)
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    assert not left, f"processes of the failed run still running: {left}"
