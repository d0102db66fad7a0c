"""scripts/emulator.py's failure messages name the failing step and its cause (never "see above", never a bare
exception class): start moto, bootstrap, deploy, read back, submit, wait for job, destroy.

Most checks call the driver's functions with stand-ins (a fake cdk or mlcdk script, a closed port); the last one
runs the whole driver into a deploy that fails (trn1.32xlarge is offered in no EU region).
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.harness import ROOT
from tests.integration.test_emulator_kill import MARKER, kill_leftovers, wait_until_gone

pytestmark = pytest.mark.integration


def _emulator():
    spec = importlib.util.spec_from_file_location("mlcdk_emulator_failures", ROOT / "scripts" / "emulator.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


EMULATOR = _emulator()


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def _env(tmp_path: Path) -> dict[str, str]:
    env = EMULATOR.emulator_environment("http://localhost:1", "us-east-1", run_id=f"failure-test-{uuid.uuid4().hex}")
    env["PATH"] = os.pathsep.join([str(tmp_path), env["PATH"]])
    return env


def test_moto_server_that_exits_names_the_step_exit_code_and_its_log(tmp_path):
    log = tmp_path / "moto.log"
    log.write_text("Traceback (most recent call last):\nOSError: [Errno 98] Address already in use\n")
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    process.wait()
    with pytest.raises(EMULATOR.Failure) as error:
        EMULATOR.wait_until_up("http://127.0.0.1:1", process, log, timeout=5)
    assert str(error.value) == ("start moto failed: the moto server exited (exit 3) before answering on "
                                "http://127.0.0.1:1; its log ends: Traceback (most recent call last): / "
                                "OSError: [Errno 98] Address already in use")


def test_unreachable_moto_api_names_the_step_and_the_exception(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends: nothing listens there
    with pytest.raises(EMULATOR.Failure) as error:
        with EMULATOR.step("start moto"):
            EMULATOR.moto_api(f"http://127.0.0.1:{port}", "/moto-api/config", {"batch": {"use_docker": False}})
    assert re.fullmatch(r"start moto failed: URLError: <urlopen error \[Errno 111\] Connection refused>",
                        str(error.value))


def test_unexpected_exception_inside_a_step_keeps_its_class_and_message():
    with pytest.raises(EMULATOR.Failure, match=r"^read back failed: KeyError: 'Stacks'$"):
        with EMULATOR.step("read back"):
            {}["Stacks"]


@pytest.mark.parametrize(("output", "reason"), [
    ('echo "TrainingStack: deploying... [1/2]"\necho "❌  TrainingStack failed: Error: boom" >&2\nexit 1\n',
     "cdk deploy TrainingStack (exit 1): ❌  TrainingStack failed: Error: boom"),
    ('echo "one"\necho "two"\necho "three"\necho "four"\nexit 4\n',
     "cdk deploy TrainingStack (exit 4): its output ends: two / three / four"),
    ('kill -TERM $$\n', "cdk deploy TrainingStack (exit 143: killed by SIGTERM): its output ends: (it printed nothing)"),
])
def test_failing_cdk_names_the_step_and_its_last_lines(tmp_path, monkeypatch, output, reason):
    fake = _script(tmp_path / "cdk", output)
    monkeypatch.setattr(EMULATOR, "cdk_binary", lambda: str(fake))
    with pytest.raises(EMULATOR.Failure) as error:
        EMULATOR.run_cdk("deploy", "cdk deploy TrainingStack", ["deploy"], _env(tmp_path), cwd=tmp_path)
    assert str(error.value) == f"deploy failed: {reason}"
    assert "see above" not in str(error.value)


def test_failing_submit_names_the_step_and_the_cli_error(tmp_path):
    _script(tmp_path / "mlcdk", "echo \"error: --stack: there is no stack 'TrainingStack' in us-east-1\" >&2\nexit 2\n")
    with pytest.raises(EMULATOR.Failure) as error:
        EMULATOR.submit_job(_env(tmp_path), "us-east-1")
    assert str(error.value) == ("submit failed: mlcdk submit (exit 2): error: --stack: there is no stack "
                                "'TrainingStack' in us-east-1")


def test_submit_that_prints_no_json_names_the_step(tmp_path):
    _script(tmp_path / "mlcdk", "echo 'not json'\n")
    with pytest.raises(EMULATOR.Failure, match=r"^submit failed: mlcdk submit --json printed no job: "
                                                r"JSONDecodeError: .*; its output ends: not json$"):
        EMULATOR.submit_job(_env(tmp_path), "us-east-1")


class _Batch:
    def __init__(self, *statuses: str) -> None:
        self.statuses = list(statuses)

    def describe_jobs(self, jobs):
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return {"jobs": [{"jobId": jobs[0], "status": status, "statusReason": "Essential container in task exited"}]}


def test_job_that_never_finishes_names_the_step_and_the_statuses_seen():
    batch = _Batch("SUBMITTED", "RUNNABLE")
    with pytest.raises(EMULATOR.Failure, match=r"^wait for job failed: job j-1 is still RUNNABLE after 1 s "
                                                r"\(statuses seen: SUBMITTED -> RUNNABLE\)$"):
        EMULATOR.wait_for_job(lambda service: batch, "j-1", timeout=1)


def test_failed_job_names_the_step_and_the_reason():
    batch = _Batch("RUNNING", "FAILED")
    with pytest.raises(EMULATOR.Failure, match=r"^wait for job failed: job j-2 FAILED: Essential container in task "
                                                r"exited$"):
        EMULATOR.wait_for_job(lambda service: batch, "j-2", timeout=5)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_failing_deploy_ends_the_run_with_one_line_and_leaves_nothing():
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PATH"] = os.pathsep.join([str(ROOT / ".venv" / "bin"), str(ROOT / "node_modules" / ".bin"), env.get("PATH", "")])
    env[MARKER] = run_id = f"failure-run-{uuid.uuid4().hex}"
    try:
        result = subprocess.run([sys.executable, str(ROOT / "scripts" / "emulator.py"), "--region", "eu-north-1"],
                                cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
        left, _ = wait_until_gone(run_id, timeout=5)
    finally:
        kill_leftovers(run_id)
    print(result.stdout, result.stderr, sep="\n")
    kept = re.search(r"kept for inspection: (\S+) ", result.stdout)
    assert kept, "the failed run does not say where its moto.log and cdk.out are"
    shutil.rmtree(kept.group(1), ignore_errors=True)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert errors[0].startswith("error: deploy failed: cdk deploy TrainingStack InferenceStack (exit 1): ")
    assert "trn1.32xlarge is not offered in eu-north-1" in errors[0]
    assert re.search(r"^==> moto server stopped \(pid \d+, exit 0\)$", result.stdout, re.M)
    assert not left, f"processes of the failed run still running: {left}"
