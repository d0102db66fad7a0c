"""A pytest plugin that records the CPU seconds of every test: ``python -m pytest -p tests.cputime``.

Wall time means little on a shared machine, so this counts CPU (user + system) of the test process, of the
children it has waited for (cfn-lint, checkov, the CDK CLI, torchrun...), and of its live descendants (the jsii
Node process, a moto server), sampled around each test's setup, call and teardown. A module's fixtures are
billed to the test that first needs them, so per-module totals are the figure to compare. Each process
(each xdist worker) writes ``cpu-<worker>.json`` to ``$MLCDK_TEST_CPU_DIR``; ``benchmarks/tests.py`` runs
the suite with the plugin and adds the files up. Linux only (it reads /proc).
"""
from __future__ import annotations

import json
import os
import resource
from pathlib import Path

import pytest

_TICKS = os.sysconf("SC_CLK_TCK")
_SECONDS: dict[str, float] = {}


def _descendants(root: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def _live_cpu(pid: int) -> float:
    """utime + stime + the waited-for children's of one live process (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(f) for f in fields[11:15]) / _TICKS  # utime, stime, cutime, cstime


def cpu_seconds() -> float:
    """CPU seconds so far of this process, its waited-for children, and its live descendants."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    total = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    return total + sum(_live_cpu(pid) for pid in _descendants(os.getpid()))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    start = cpu_seconds()
    yield
    _SECONDS[item.nodeid] = _SECONDS.get(item.nodeid, 0.0) + cpu_seconds() - start


def pytest_sessionfinish(session):
    directory = os.environ.get("MLCDK_TEST_CPU_DIR")
    if not directory or not _SECONDS:
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    Path(directory).mkdir(parents=True, exist_ok=True)
    (Path(directory) / f"cpu-{worker}.json").write_text(json.dumps({"total": cpu_seconds(), "tests": _SECONDS}))
