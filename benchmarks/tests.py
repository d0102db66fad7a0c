#!/usr/bin/env python3
"""Where the test suite's time goes, in CPU seconds per module and per test (wall time is noisy on a shared machine).

    python benchmarks/tests.py [pytest arguments...]      # default: the whole suite as `make test` runs it
    python benchmarks/tests.py --from DIR                 # re-read the files of an earlier run
    python benchmarks/tests.py --write-weights [...]      # also write tests/module_cpu.json (conftest.py runs
                                                          # the slowest modules first)

It runs pytest with the tests/cputime.py plugin, which counts the CPU of each worker, the children it waited
for (cfn-lint, checkov, the CDK CLI, torchrun) and its live descendants (the jsii Node process, moto servers),
and prints the modules by CPU, the slowest tests, the session's CPU and wall time.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import ROOT, environment  # noqa: E402

DEFAULT_ARGS = ["-n", "auto", "--dist", "loadfile", "-q"]
WEIGHTS = ROOT / "tests" / "module_cpu.json"


def run(arguments: list[str], directory: Path) -> tuple[float, float, int]:
    """Run pytest with the plugin; return its wall seconds, the CPU of the whole process tree, and its exit code."""
    env = dict(environment(), MLCDK_TEST_CPU_DIR=str(directory))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    code = subprocess.run([sys.executable, "-m", "pytest", "-p", "tests.cputime", *arguments], cwd=ROOT, env=env).returncode
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), code


def per_test(directory: Path) -> dict[str, float]:
    tests: dict[str, float] = {}
    for path in sorted(directory.glob("cpu-*.json")):
        tests.update(json.loads(path.read_text())["tests"])
    return tests


def write_weights(directory: Path) -> None:
    """tests/module_cpu.json: CPU seconds per module of a whole-suite run, the order conftest.py starts them in."""
    modules: dict[str, float] = defaultdict(float)
    for nodeid, seconds in per_test(directory).items():
        modules[nodeid.split("::", 1)[0]] += seconds
    document = {"source": "python benchmarks/tests.py --write-weights (CPU seconds per module, tests/cputime.py)",
                "modules": {m: round(s, 1) for m, s in sorted(modules.items(), key=lambda kv: (-kv[1], kv[0]))}}
    WEIGHTS.write_text(json.dumps(document, indent=1) + "\n")
    print(f"wrote {WEIGHTS.relative_to(ROOT)} ({len(modules)} modules)")


def summarize(directory: Path, top: int = 25) -> None:
    tests: dict[str, float] = {}
    workers = {}
    for path in sorted(directory.glob("cpu-*.json")):
        data = json.loads(path.read_text())
        workers[path.stem.removeprefix("cpu-")] = data["total"]
        tests.update(data["tests"])
    modules: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for nodeid, seconds in tests.items():
        module = nodeid.split("::", 1)[0]
        modules[module] += seconds
        counts[module] += 1
    print(f"\n{len(tests)} tests, {sum(tests.values()):.0f} CPU s in tests; per worker (session total, imports "
          f"included): " + ", ".join(f"{w} {s:.0f} s" for w, s in sorted(workers.items())))
    print(f"\n{'module':<58} {'tests':>5} {'CPU s':>7}")
    for module, seconds in sorted(modules.items(), key=lambda kv: -kv[1]):
        print(f"{module:<58} {counts[module]:>5} {seconds:7.1f}")
    print(f"\nthe {top} tests that took the most CPU (a module's fixtures count in its first test)")
    for nodeid, seconds in sorted(tests.items(), key=lambda kv: -kv[1])[:top]:
        print(f"{seconds:7.1f}  {nodeid}")


def main(argv: list[str]) -> int:
    weights = "--write-weights" in argv
    argv = [a for a in argv if a != "--write-weights"]
    if argv[:1] == ["--from"]:
        summarize(Path(argv[1]))
        if weights:
            write_weights(Path(argv[1]))
        return 0
    directory = Path(tempfile.mkdtemp(prefix="mlcdk-test-cpu-"))
    wall, cpu, code = run(argv or DEFAULT_ARGS, directory)
    summarize(directory)
    if weights:
        write_weights(directory)
    print(f"\npytest: exit {code}, wall {wall:.0f} s, CPU {cpu:.0f} s (every process of the run); files in {directory}")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
