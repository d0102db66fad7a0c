"""Children of an emulator run end with its driver, even when the driver is killed with SIGKILL (no finally block
runs), and the run's temporary directory goes with them.

The driver (here `make deploy`'s scripts/emulator.py, which runs mlcdk.emulator) starts the moto server and every
cdk / mlcdk run so that they end with it: Linux's PR_SET_PDEATHSIG, and a lifeline pipe whose only write end the
driver holds, watched by the moto server and by a guard that leads each command's process group (cdk's node and
python children included). The moto server, the last to go, removes the run's directory (moto.log, cdk.out and
the children's TMPDIR). These tests kill the driver and check that nothing from that run is left. A run's
processes are found by the unique value of MLCDK_EMULATOR_RUN in their environment, which the driver passes to
everything it starts; only processes carrying it are ever killed here (in clean-up, if a test failed).
"""
from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.harness import ROOT
from tests.integration.runs import (GONE_WITHIN_S, environment, kill_leftovers, marked, wait_until_empty,
                                    wait_until_gone)

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to find the run's processes")]

SCRIPT = ROOT / "scripts" / "emulator.py"


class Driver:
    """scripts/emulator.py in its own session, its output collected line by line."""

    def __init__(self, run_id: str, tmpdir: Path) -> None:
        self.lines: list[str] = []
        self.changed = threading.Condition()
        self.process = subprocess.Popen([sys.executable, str(SCRIPT)], cwd=ROOT, env=environment(run_id, tmpdir),
                                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            with self.changed:
                self.lines.append(line.rstrip("\n"))
                self.changed.notify_all()

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for line in self.lines:
                    if found := re.search(pattern, line):
                        return found
                left = deadline - time.monotonic()
                if left <= 0 or self.process.poll() is not None:
                    raise AssertionError(f"no line matching {pattern!r} within {timeout} s; output:\n"
                                         + "\n".join(self.lines))
                self.changed.wait(min(left, 0.5))


def _wait_for_process(run_id: str, needle: str, timeout: float) -> dict[int, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = marked(run_id)
        if any(needle in command for command in found.values()):
            return found
        time.sleep(0.05)
    raise AssertionError(f"no process of run {run_id} runs {needle!r} after {timeout} s: {marked(run_id)}")


@pytest.mark.parametrize("when", ["moto server up", "mid-synth", "mid-deploy"])
def test_sigkill_of_the_driver_leaves_nothing(when: str, tmp_path: Path):
    run_id = f"kill-test-{uuid.uuid4().hex}"
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    driver = Driver(run_id, tmpdir)
    try:
        started = driver.wait_for(r"^==> moto \S+ server on \S+ \(pid (\d+), log (\S+)/moto\.log", 60)
        server_pid, work = int(started.group(1)), Path(started.group(2))
        assert work.parent == tmpdir  # the run's directory is under the test's TMPDIR
        if when == "moto server up":
            driver.wait_for(r"^==> cdk synth ", 60)  # printed once the server answers
        elif when == "mid-synth":
            driver.wait_for(r"^==> cdk synth ", 120)
            # cdk is synthesizing: node (the CLI), `python3 app.py` and its jsii node kernel are all running.
            _wait_for_process(run_id, "app.py", 60)
        else:
            driver.wait_for(r"^==> cdk deploy ", 240)
            _wait_for_process(run_id, "deploy", 60)
        before = marked(run_id)
        assert server_pid in before, f"the moto server (pid {server_pid}) is not among the run's processes: {before}"
        assert driver.process.pid in before
        if when == "mid-synth":
            assert any("cdk" in c and "synth" in c for c in before.values()), before
            assert sum("node" in c for c in before.values()) >= 2, before  # the CLI and the jsii kernel
        if when == "mid-deploy":
            assert any("cdk" in c and " deploy " in c for c in before.values()), before
        assert work.is_dir()

        driver.process.send_signal(signal.SIGKILL)
        driver.process.wait(10)
        left, took = wait_until_gone(run_id)
        print(f"{when}: {len(before) - 1} process(es) besides the driver; all gone {took:.1f} s after its SIGKILL")
        assert not left, f"still running {GONE_WITHIN_S} s after the driver's SIGKILL: {left}"
        left_files = wait_until_empty(tmpdir)
        assert not left_files, f"the killed run left in its TMPDIR: {sorted(str(p) for p in tmpdir.rglob('*'))[:20]}"
    finally:
        if driver.process.poll() is None:
            driver.process.kill()
            driver.process.wait(10)
        kill_leftovers(run_id)
        for child in tmpdir.iterdir():
            shutil.rmtree(child, ignore_errors=True)


GUARDED_PARENT = textwrap.dedent("""
    import os, time
    from mlcdk.emulator import processes
    child = processes.spawn(["sh", "-c", "sleep 600 & sleep 600 & wait"], env=dict(os.environ), cwd=os.getcwd())
    print("spawned", child.pid, flush=True)
    time.sleep(600)
""")


@pytest.mark.parametrize("prctl", ["pdeathsig and lifeline", "lifeline only"])
def test_guarded_command_group_ends_with_its_parent(prctl: str, tmp_path: Path):
    """spawn()'s guard ends the command's whole group (a shell and its two background sleeps) when the parent is
    SIGKILLed, also where prctl is unavailable (MLCDK_EMULATOR_NO_PRCTL=1: the lifeline pipe alone)."""
    run_id = f"guard-test-{uuid.uuid4().hex}"
    env = environment(run_id, tmp_path)
    if prctl == "lifeline only":
        env["MLCDK_EMULATOR_NO_PRCTL"] = "1"
    parent = subprocess.Popen([sys.executable, "-c", GUARDED_PARENT], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                              text=True, start_new_session=True)
    try:
        assert parent.stdout.readline().startswith("spawned")
        deadline = time.monotonic() + 10
        while sum("sleep 600" == c for c in marked(run_id).values()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        before = marked(run_id)
        assert sum(c == "sleep 600" for c in before.values()) == 2, before
        assert any(" guard " in c for c in before.values()), before
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        left, took = wait_until_gone(run_id)
        assert not left, f"{prctl}: still running after the parent's SIGKILL: {left}"
        assert took < GONE_WITHIN_S
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)
        kill_leftovers(run_id)
