#!/usr/bin/env python3
"""Catalog load time and CLI cold start, each against a baseline measured in the same run.

Targets: the catalog loads in under 100 ms; `mlcdk catalog show trn1.32xlarge` starts cold in well
under a second. Baselines: json.loads of the same files (the parsing floor) and a bare interpreter.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import interpreter_floor, median_in_process, median_seconds, report  # noqa: E402

from mlcdk.presets import catalog  # noqa: E402
from mlcdk.presets.catalog import load_catalog  # noqa: E402



def main() -> int:
    runs = 20
    parse = median_in_process(lambda: [json.loads((catalog.DATA_DIR / f).read_text()) for f in catalog.SNAPSHOT_FILES], runs)
    load = median_in_process(load_catalog, runs)
    print(f"in-process, median of {runs}")
    report("json.loads of the three snapshot files (floor)", parse, parse)
    report("load_catalog() into frozen dataclasses", load, parse)
    print(f"  target: under 100 ms -> {'OK' if load < 0.100 else 'OVER'} ({load * 1000:.0f} ms)")

    python = sys.executable
    cold_runs = 7
    bare = interpreter_floor(python, cold_runs)
    show = median_seconds([python, "-m", "mlcdk.cli", "catalog", "show", "trn1.32xlarge"], cold_runs)
    report("mlcdk catalog show trn1.32xlarge", show, bare)
    listing = median_seconds([python, "-m", "mlcdk.cli", "catalog", "list", "--region", "us-east-1"], cold_runs)
    report("mlcdk catalog list --region us-east-1", listing, bare)
    print(f"  target: well under 1 s -> {'OK' if show < 0.5 else 'CHECK'} ({show * 1000:.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
