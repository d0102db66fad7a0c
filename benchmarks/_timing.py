"""Timing helpers shared by the benchmarks: medians of subprocess runs, measured against a same-run baseline."""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def median_seconds(command: list[str], runs: int, env: dict[str, str] | None = None, cwd: Path = ROOT) -> float:
    """Median wall time of ``runs`` executions of ``command`` (each must succeed)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, cwd=cwd, env=env or environment(), check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def median_in_process(function, runs: int) -> float:
    """Median wall time of ``runs`` in-process calls of ``function``."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def report(label: str, seconds: float, baseline: float, target: float | None = None) -> None:
    ratio = seconds / baseline
    verdict = "" if target is None else ("  OK" if ratio <= target else f"  OVER target {target}x")
    print(f"{label:<48} {seconds * 1000:9.0f} ms  {ratio:6.2f}x{verdict}")


def interpreter_floor(python: str, runs: int) -> float:
    """Print and return the cold-start floor (a bare interpreter) that CLI timings are measured against."""
    print(f"cold processes, median of {runs}")
    bare = median_seconds([python, "-c", "pass"], runs)
    report("python -c pass (interpreter floor)", bare, bare)
    return bare
