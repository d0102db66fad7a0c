#!/usr/bin/env python3
"""Advisor speed: ranking the whole catalog in every region, its worst case, and the CLI's cold start, each
against a baseline measured in the same run.

Targets (issue 7): advise() over every instance type in every region in under 20 ms in-process. Issue 17: `mlcdk advise`
starts cold in at most 0.3 s. Issue 13: the worst case (the largest model allowed, 1e15 parameters, every region,
every exclusion explained, a baseline, 64 nodes allowed) costs a small constant factor over a typical call,
because node counts are computed, never stepped; and `--params 1e40` is refused as fast as any bad option.
Baselines: one pass over the catalog that reads every type's price in every region (the floor of any search),
and a bare interpreter.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import interpreter_floor, median_in_process, median_seconds, report  # noqa: E402

from mlcdk.advice.advisor import advise  # noqa: E402
from mlcdk.presets.catalog import default_catalog  # noqa: E402
from mlcdk.presets.sizing import MAX_PARAMS, Workload  # noqa: E402



def one_pass_over_the_catalog() -> int:
    """Read every type's on-demand price in every region: what any exhaustive search must at least do."""
    book = default_catalog()
    regions = book.regions()
    return sum(1 for spec in book for region in regions if spec.on_demand_price(region) is not None)


def main() -> int:
    runs = 30
    default_catalog()  # loaded once and cached, as in any process that advises
    book = default_catalog()
    candidates = len(book) * len(book.regions())
    cases = {
        "advise(): training 70B, every region": Workload(task="training", params="70B"),
        "advise(): inference 7B, every region": Workload(task="inference", params="7B"),
        "advise(): training 70B + 1T tokens, every region": Workload(task="training", params="70B",
                                                                    training_tokens="1T"),
    }
    baseline = median_in_process(one_pass_over_the_catalog, runs)
    print(f"in-process, median of {runs}; {len(book)} types x {len(book.regions())} regions = {candidates} candidates")
    report("one pass over the catalog (floor)", baseline, baseline)
    print(f"  (the floor is {baseline * 1e6:.0f} us; the ratios below are against it)")
    slowest = 0.0
    for label, workload in cases.items():
        seconds = median_in_process(lambda w=workload: advise(w), runs)
        slowest = max(slowest, seconds)
        report(label, seconds, baseline)
    explained = median_in_process(lambda: advise(cases["advise(): training 70B, every region"], explain=True), runs)
    report("advise(explain=True): training 70B, every region", explained, baseline)
    print(f"  target: under 20 ms -> {'OK' if slowest < 0.020 else 'OVER'} (slowest {slowest * 1000:.1f} ms)")
    typical = median_in_process(lambda: advise(cases["advise(): training 70B, every region"]), runs)
    worst = Workload(task="training", params=MAX_PARAMS, regions="all", max_nodes=64, memory_headroom=0.5,
                     max_days=1)
    worst_case = median_in_process(lambda: advise(worst, explain=True, baseline="p3.2xlarge").suggestion(), 5)
    report("worst case: 1e15 params, explain, baseline, suggestion", worst_case, baseline)
    ratio = worst_case / typical
    print(f"  target: within 25x a typical call (suggestion() re-runs the advisor per candidate change) -> "
          f"{'OK' if ratio < 25 else 'OVER'} ({ratio:.1f}x)")

    python = sys.executable
    cold_runs = 7
    bare = interpreter_floor(python, cold_runs)
    cold = median_seconds([python, "-m", "mlcdk.cli", "advise", "--task", "inference", "--params", "7B",
                           "--region", "us-east-1"], cold_runs)
    report("mlcdk advise --task inference --params 7B", cold, bare)
    print(f"  target: at most 0.3 s (issue 17) -> {'OK' if cold <= 0.3 else 'OVER'} ({cold * 1000:.0f} ms)")
    refused = median_seconds([python, "-c", "import subprocess, sys; sys.exit(subprocess.run([sys.executable, '-m', "
                              "'mlcdk.cli', 'advise', '--task', 'training', '--params', '1e40']).returncode != 2)"],
                             cold_runs)
    report("mlcdk advise --params 1e40 (refused, via a wrapper)", refused, bare)
    print(f"  target: refused, not hung: under 2x the cold start -> {'OK' if refused < 2 * cold + bare else 'OVER'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
