"""Every process the emulator starts ends with the driver, however the driver ends (SIGKILL included).

Two ties, either of which is enough:

- **pdeathsig.** Each child is started with a ``preexec_fn`` that asks Linux (``prctl(PR_SET_PDEATHSIG,
  SIGTERM)``) to SIGTERM it when the driver dies, and SIGTERMs itself at once if the driver died before that took
  effect. Skipped where prctl is unavailable (not Linux, or ``MLCDK_EMULATOR_NO_PRCTL=1``, which the tests use).
- **The lifeline.** The driver opens one pipe and keeps its write end; no child inherits that end. When the driver
  dies the kernel closes it, and every child reading the other end sees EOF.

Commands (cdk, mlcdk, a user's check) run under a guard (``python -m mlcdk.emulator guard FD -- COMMAND``) that
leads a new process group: on EOF on the lifeline, or on SIGTERM, it ends the whole group (cdk's node CLI, ``sh -c
python3 app.py``, the app and its jsii kernel), SIGTERM first and SIGKILL :data:`GUARD_GRACE_S` later. Every child
carries ``MLCDK_EMULATOR_RUN=<run id>`` in its environment; tests find a run's processes by it.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Environment variable naming the run in the environment of every process it starts.
RUN_MARKER = "MLCDK_EMULATOR_RUN"
#: How long a guard gives its process group between SIGTERM and SIGKILL.
GUARD_GRACE_S = 5.0
PR_SET_PDEATHSIG = 1

_children: list[subprocess.Popen] = []
_lifeline: tuple[int, int] | None = None


def _load_prctl() -> Callable[..., int] | None:
    """libc's prctl on Linux, else None (then only the lifeline pipe ties children to the driver)."""
    if not sys.platform.startswith("linux") or os.environ.get("MLCDK_EMULATOR_NO_PRCTL") == "1":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        return libc.prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()


def has_pdeathsig() -> bool:
    return _PRCTL is not None


def die_with_parent(sig: int = signal.SIGTERM, parent: int | None = None) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent dies (PR_SET_PDEATHSIG); False where unavailable.
    With ``parent``, a parent that died before the request took effect is caught too."""
    if _PRCTL is None or _PRCTL(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        return False
    if parent is not None and os.getppid() != parent:
        os.kill(os.getpid(), sig)
    return True


def preexec_die_with(parent: int) -> Callable[[], None]:
    """A preexec_fn (runs in the child between fork and exec): SIGTERM the child when ``parent`` dies."""
    def preexec() -> None:
        die_with_parent(signal.SIGTERM, parent)
    return preexec


def lifeline() -> int:
    """The read end of a pipe whose only write end this driver holds (both ends are non-inheritable, so no
    child holds the write end): a child that reads EOF on it knows the driver is gone, however it died."""
    global _lifeline
    if _lifeline is None:
        _lifeline = os.pipe()
    return _lifeline[0]


def watch_lifeline(fd: int, on_eof: Callable[[], None]) -> None:
    """Call ``on_eof`` (in a daemon thread) once the driver's end of the lifeline closes."""
    def watch() -> None:
        while True:
            try:
                if not os.read(fd, 64):
                    break
            except InterruptedError:
                continue
            except OSError:
                break
        on_eof()
    threading.Thread(target=watch, name="lifeline", daemon=True).start()


def start_tied(command: Sequence[str], **popen: Any) -> subprocess.Popen:
    """Start ``command`` (a Python entry of this package) in its own session, tied to this driver by pdeathsig and
    handed the lifeline; it is stopped with the others by :func:`stop_all`."""
    fd = lifeline()
    process = subprocess.Popen(list(command), start_new_session=True, pass_fds=(fd,),
                               preexec_fn=preexec_die_with(os.getpid()), **popen)
    _children.append(process)
    return process


def spawn(command: Sequence[str], *, env: dict[str, str], cwd: Path, **popen: Any) -> subprocess.Popen:
    """Start ``command`` under a guard that leads a new process group and ends that whole group when the driver
    dies (pdeathsig and lifeline) or stops it. Returns the guard's Popen."""
    guarded = [sys.executable, "-m", "mlcdk.emulator", "guard", str(lifeline()), "--", *command]
    return start_tied(guarded, env=env, cwd=cwd, **popen)


@dataclass(frozen=True)
class Step:
    """A step of a run: its name (in a failure), what runs (in messages) and how long it may take, in seconds."""

    name: str
    label: str
    timeout: float


def run(command: Sequence[str], *, env: dict[str, str], cwd: Path, step: Step,
        merge_output: bool = True) -> subprocess.CompletedProcess:
    """Run ``command`` under a guard (:func:`spawn`) to its end, its output captured (stderr into stdout unless
    ``merge_output`` is False); stop it and fail the step after ``step.timeout`` s."""
    from mlcdk.emulator.failures import failed
    from mlcdk.emulator.failures import step as in_step

    with in_step(step.name):
        process = spawn(command, env=env, cwd=cwd, text=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT if merge_output else subprocess.PIPE)
    try:
        stdout, stderr = process.communicate(timeout=step.timeout)
    except subprocess.TimeoutExpired:
        raise failed(step.name, f"{step.label} did not finish within {step.timeout:.0f} s (stopped it)") from None
    finally:
        stop(process)
    return subprocess.CompletedProcess(list(command), process.returncode, stdout or "", stderr or "")


def guard(fd: int, command: Sequence[str]) -> int:
    """Run ``command`` in this process's group (it leads a new one); end the whole group when the driver is gone
    (EOF on the lifeline ``fd``, or SIGTERM from pdeathsig or from the driver's stop), or when the command exits
    (stragglers). Returns the command's exit code (128 + N for a command killed by signal N, as shells do)."""
    ending = threading.Event()

    def end_group(*_: Any) -> None:
        if ending.is_set():
            return
        ending.set()
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the guard outlives its group's SIGTERM, to SIGKILL it
        with contextlib.suppress(ProcessLookupError):
            os.killpg(0, signal.SIGTERM)
        timer = threading.Timer(GUARD_GRACE_S, lambda: os.killpg(0, signal.SIGKILL))
        timer.daemon = True
        timer.start()

    signal.signal(signal.SIGTERM, end_group)
    signal.signal(signal.SIGINT, end_group)
    die_with_parent(signal.SIGTERM)
    try:
        child = subprocess.Popen(list(command), stdin=subprocess.DEVNULL)
    except OSError as error:
        print(f"guard: cannot start {command[0]}: {type(error).__name__}: {error}", file=sys.stderr)
        return 127
    watch_lifeline(fd, lambda: os.kill(os.getpid(), signal.SIGTERM))
    code = child.wait()
    if ending.is_set():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(0, signal.SIGKILL)  # the group's stragglers, and this guard
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(0, signal.SIGTERM)  # anything the command left behind in its group
    return code if code >= 0 else 128 - code


def stop(process: subprocess.Popen, timeout: float = 10) -> None:
    """Stop one child we started, by its PID (and its process group, which it leads); forget it."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5)):
        if process.poll() is not None:
            break
        try:
            if os.getpgid(process.pid) == process.pid:
                os.killpg(process.pid, sig)  # it leads its own group: its children (node, python app.py) too
            else:
                process.send_signal(sig)
        except ProcessLookupError:
            break
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(wait)
    if process in _children:
        _children.remove(process)


def stop_all() -> None:
    """Stop every child this driver started and has not stopped yet, newest first."""
    for process in reversed(list(_children)):
        stop(process)


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def exit_text(code: int | None) -> str:
    """An exit status in words: "exit 1", "killed by SIGKILL" (a negative Popen returncode)."""
    if code is None:
        return "still running"
    if code < 0:
        return f"killed by {signal_name(-code)}"
    if 128 < code < 128 + 65:  # a guard reports a command killed by signal N as exit 128+N, as shells do
        return f"exit {code}: killed by {signal_name(code - 128)}"
    return f"exit {code}"


def last_lines(text: str, count: int = 3) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return " / ".join(lines[-count:]) if lines else "(it printed nothing)"
