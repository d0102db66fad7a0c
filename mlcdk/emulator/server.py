"""The moto server: started on loopback on a free port, with the moto fixes, Docker-less, tied to the driver.

If the driver dies, the server also removes the run's temporary directory before it exits (the driver cannot):
it waits until nothing has recreated it for a second, at most until the guards have SIGKILLed their groups. It
tells the two apart by the signal: the driver stops it with SIGINT; SIGTERM comes from Linux's parent-death signal
or from its own lifeline watch, once the driver is gone.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlcdk.emulator import processes
from mlcdk.emulator.failures import failed

#: moto's own configuration for the run: Lambda functions (CDK's custom-resource providers) are stored but never
#: run, and Batch jobs are marked SUCCEEDED without running: no Docker.
DOCKERLESS = {"batch": {"use_docker": False}, "lambda": {"use_docker": False}}
START_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class MotoServer:
    process: subprocess.Popen
    port: int
    log: Path

    @property
    def endpoint(self) -> str:
        """What clients use: moto recognises only ``localhost`` in S3 TemplateURLs."""
        return f"http://localhost:{self.port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(work: Path, env: dict[str, str], *, port: int, clean_up: Path | None) -> MotoServer:
    """Start ``python -m mlcdk.emulator serve`` on ``port`` (see :func:`free_port`), its output in
    ``work/moto.log``; if the driver dies, the server removes ``clean_up``."""
    log = work / "moto.log"
    command = [sys.executable, "-m", "mlcdk.emulator", "serve", str(port), "--lifeline-fd", str(processes.lifeline()),
               "--driver", str(os.getpid())]
    if clean_up is not None:
        command += ["--clean-up", str(clean_up)]
    with open(log, "w") as log_file:
        process = processes.start_tied(command, env=dict(env, MOTO_PORT=str(port)), cwd=work,
                                       stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT)
    return MotoServer(process, port, log)


def wait_until_up(url: str, process: subprocess.Popen, log: Path, timeout: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = processes.last_lines(log.read_text(errors="replace") if log.exists() else "", 3)
            raise failed("start moto", f"the moto server exited ({processes.exit_text(process.returncode)}) before "
                                       f"answering on {url}; its log ends: {tail}")
        try:
            with urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=2):
                return
        except OSError as error:
            last = error
            time.sleep(0.2)
    raise failed("start moto", f"the moto server did not answer on {url} within {timeout:.0f} s "
                               f"(last attempt: {type(last).__name__}: {last})")


def moto_api(url: str, path: str, body: dict | None = None, *, method: str = "POST") -> Any:
    """Call moto's own API (/moto-api/...); return its JSON answer, if any."""
    data = json.dumps(body or {}).encode() if method == "POST" else None
    request = urllib.request.Request(f"{url}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read().decode() or "null"
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def configure(server: MotoServer) -> None:
    """Docker-less Batch and Lambda, read back to be sure moto took it."""
    moto_api(server.url, "/moto-api/config", DOCKERLESS)
    config = moto_api(server.url, "/moto-api/config", method="GET")
    if config.get("batch", {}).get("use_docker") is not False:
        raise failed("start moto", f"moto did not take the Docker-less Batch config: it answers {config}")


def remove_when_quiet(path: Path, *, quiet_s: float = 1.0, limit_s: float = processes.GUARD_GRACE_S + 1) -> None:
    """Remove ``path``, again and again while the run's dying processes may still write into it, until it has
    stayed gone for ``quiet_s`` (at most ``limit_s``: by then the guards have SIGKILLed their groups)."""
    started = gone_since = time.monotonic()
    while time.monotonic() - started < limit_s:
        if path.exists():
            shutil.rmtree(path, ignore_errors=True)
            gone_since = time.monotonic()
        elif time.monotonic() - gone_since >= quiet_s:
            return
        time.sleep(0.1)
    shutil.rmtree(path, ignore_errors=True)


def serve(port: int, lifeline_fd: int, driver: int, clean_up: Path | None) -> None:
    """The server process: ``moto_server -H 127.0.0.1 -p PORT`` with the moto fixes. The driver stops it with
    SIGINT (:func:`stop`). SIGTERM means the driver is gone (pdeathsig, or EOF on the lifeline): then it removes
    ``clean_up`` before it exits, since nobody else will."""
    from moto import server

    from mlcdk.emulator.fixes import moto_fixes

    received: list[int] = []

    def on_signal(signum: int, _frame: Any) -> None:  # what moto's own handler does, remembering the signal
        for each in (signal.SIGINT, signal.SIGTERM):  # the second SIGTERM (pdeathsig and lifeline) must not cut
            signal.signal(each, signal.SIG_IGN)       # the clean-up short
        received.append(signum)
        sys.exit(0)

    processes.die_with_parent(signal.SIGTERM, driver)
    processes.watch_lifeline(lifeline_fd, lambda: os.kill(os.getpid(), signal.SIGTERM))
    try:
        with moto_fixes(), _replaced(server, "signal_handler", on_signal):
            server.main(["-H", "127.0.0.1", "-p", str(port)])
    finally:
        if clean_up is not None and signal.SIGINT not in received:
            print("moto server: the driver is gone; removing the run's files and exiting", file=sys.stderr,
                  flush=True)
            remove_when_quiet(clean_up)


@contextlib.contextmanager
def _replaced(owner: Any, name: str, value: Any) -> Iterator[None]:
    previous = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, previous)


def stop(moto: MotoServer) -> None:
    """The driver's own stop: SIGINT (the server then leaves the run's directory to the driver), then as any child."""
    if moto.process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            moto.process.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            moto.process.wait(10)
    processes.stop(moto.process)
