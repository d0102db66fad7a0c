"""Children of scripts/emulator.py end with it, even when it is killed with SIGKILL (no finally block runs).

The driver starts the moto server and every cdk / mlcdk run so that they end with it: Linux's PR_SET_PDEATHSIG,
and a lifeline pipe whose only write end the driver holds, watched by the moto server and by a guard that leads
each command's process group (cdk's node and python children included). These tests kill the driver and check
that nothing from that run is left. A run's processes are found by the unique value of MLCDK_EMULATOR_RUN in
their environment, which the driver passes to everything it starts; only processes carrying it are ever killed
here (in clean-up, if a test failed).
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid

import pytest

from tests.harness import ROOT

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to find the run's processes")]

MARKER = "MLCDK_EMULATOR_RUN"
SCRIPT = ROOT / "scripts" / "emulator.py"
#: How long the run's processes may take to go once the driver is dead (guards give SIGTERM 5 s before SIGKILL).
GONE_WITHIN_S = 15


def marked(run_id: str) -> dict[int, str]:
    """PID -> command line of every live process whose environment has MLCDK_EMULATOR_RUN=<run_id>."""
    needle = f"{MARKER}={run_id}".encode()
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as environ:
                if needle not in environ.read().split(b"\0"):
                    continue
            with open(f"/proc/{entry.name}/cmdline", "rb") as cmdline:
                found[int(entry.name)] = cmdline.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return {pid: command for pid, command in found.items() if command}  # zombies have no command line


def wait_until_gone(run_id: str, timeout: float = GONE_WITHIN_S) -> tuple[dict[int, str], float]:
    started = time.monotonic()
    while True:
        left = marked(run_id)
        if not left or time.monotonic() - started > timeout:
            return left, time.monotonic() - started
        time.sleep(0.1)


def kill_leftovers(run_id: str) -> None:
    """Clean-up after a failed test: SIGKILL only processes that carry this run's marker."""
    for pid in marked(run_id):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def environment(run_id: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PATH"] = os.pathsep.join([str(ROOT / ".venv" / "bin"), str(ROOT / "node_modules" / ".bin"), env.get("PATH", "")])
    env[MARKER] = run_id
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Driver:
    """scripts/emulator.py in its own session, its output collected line by line."""

    def __init__(self, run_id: str) -> None:
        self.lines: list[str] = []
        self.changed = threading.Condition()
        self.process = subprocess.Popen([sys.executable, str(SCRIPT)], cwd=ROOT, env=environment(run_id),
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


@pytest.mark.parametrize("when", ["moto server up", "mid-deploy"])
def test_sigkill_of_the_driver_leaves_nothing(when: str):
    run_id = f"kill-test-{uuid.uuid4().hex}"
    driver = Driver(run_id)
    try:
        server_pid = int(driver.wait_for(r"^==> moto \S+ server on \S+ \(pid (\d+)", 60).group(1))
        if when == "moto server up":
            driver.wait_for(r"^==> cdk bootstrap ", 60)  # printed once the server answers
        else:
            driver.wait_for(r"^==> cdk deploy ", 120)
            # cdk is synthesizing: node (the CLI), `python3 app.py` and its jsii node kernel are all running.
            _wait_for_process(run_id, "app.py", 60)
        before = marked(run_id)
        assert server_pid in before, f"the moto server (pid {server_pid}) is not among the run's processes: {before}"
        assert driver.process.pid in before
        if when == "mid-deploy":
            assert any("cdk" in c and "deploy" in c for c in before.values()), before
            assert sum("node" in c for c in before.values()) >= 2, before  # the CLI and the jsii kernel

        driver.process.send_signal(signal.SIGKILL)
        driver.process.wait(10)
        left, took = wait_until_gone(run_id)
        print(f"{when}: {len(before) - 1} process(es) besides the driver; all gone {took:.1f} s after its SIGKILL")
        assert not left, f"still running {GONE_WITHIN_S} s after the driver's SIGKILL: {left}"
    finally:
        if driver.process.poll() is None:
            driver.process.kill()
            driver.process.wait(10)
        kill_leftovers(run_id)
        for line in driver.lines:  # the killed driver could not remove its temp dir
            if found := re.search(r"log (/\S+/mlcdk-emulator-\w+)/moto\.log", line):
                shutil.rmtree(found.group(1), ignore_errors=True)


GUARDED_PARENT = textwrap.dedent("""
    import importlib.util, sys, time
    spec = importlib.util.spec_from_file_location("emulator", sys.argv[1])
    emulator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(emulator)
    import os
    child = emulator.spawn(["sh", "-c", "sleep 600 & sleep 600 & wait"], env=dict(os.environ), cwd=emulator.ROOT)
    print("spawned", child.pid, flush=True)
    time.sleep(600)
""")


@pytest.mark.parametrize("prctl", ["pdeathsig and lifeline", "lifeline only"])
def test_guarded_command_group_ends_with_its_parent(prctl: str):
    """spawn()'s guard ends the command's whole group (a shell and its two background sleeps) when the parent is
    SIGKILLed, also where prctl is unavailable (MLCDK_EMULATOR_NO_PRCTL=1: the lifeline pipe alone)."""
    run_id = f"guard-test-{uuid.uuid4().hex}"
    env = environment(run_id)
    if prctl == "lifeline only":
        env["MLCDK_EMULATOR_NO_PRCTL"] = "1"
    parent = subprocess.Popen([sys.executable, "-c", GUARDED_PARENT, str(SCRIPT)], env=env, stdout=subprocess.PIPE,
                              text=True, start_new_session=True)
    try:
        assert parent.stdout.readline().startswith("spawned")
        deadline = time.monotonic() + 10
        while sum("sleep 600" == c for c in marked(run_id).values()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        before = marked(run_id)
        assert sum(c == "sleep 600" for c in before.values()) == 2, before
        assert any("--guard" in c for c in before.values()), before
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
