#!/usr/bin/env python3
"""Synth time of the example app against the jsii floor, and its growth with the number of clusters.

Each figure is a median of subprocess runs, and every ratio is against a baseline measured in this same
run (the machine is shared, so absolute times drift). Targets: the example app within 1.25x of a bare
CDK app with one empty stack; 50 clusters within 2x of one.

A "cluster" here is one TrainingStack as app.py builds it (each in its own stack, well under the
500-resource limit), so the figure follows the stack as it grows.
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import ROOT, environment, median_seconds, report  # noqa: E402

BARE = """
import aws_cdk as cdk
app = cdk.App()
# CloudFormation refuses a stack with no resources (CDK's own validation says so too): one no-op handle.
cdk.CfnWaitConditionHandle(cdk.Stack(app, "Empty"), "Nothing")
app.synth()
"""

MANY = """
import sys
import aws_cdk as cdk
from mlcdk.stacks import TrainingStack, settings_from_context
app = cdk.App()
settings = settings_from_context(app, environ={})
for index in range(int(sys.argv[1])):
    TrainingStack(app, f"Training{index}", workload=settings.training)
app.synth()
"""


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    work = Path(tempfile.mkdtemp(prefix="mlcdk-bench-"))
    (work / "bare.py").write_text(BARE)
    (work / "many.py").write_text(MANY)
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    context.update(json.loads((ROOT / "cdk.context.json").read_text()))
    env = environment()
    env.update(CDK_OUTDIR=str(work / "out"), CDK_CONTEXT_JSON=json.dumps(context))
    python = sys.executable

    print(f"median of {runs} runs each; ratios against a baseline from this run")
    bare = median_seconds([python, str(work / "bare.py")], runs, env)
    report("bare CDK app, one empty stack (jsii floor)", bare, bare)
    example = median_seconds([python, "app.py"], runs, env)
    report("example app (python app.py, cdk.json context)", example, bare, target=1.25)
    one = median_seconds([python, str(work / "many.py"), "1"], runs, env)
    report("1 cluster", one, one)
    for count in (10, 50):
        report(f"{count} clusters ({count} stacks)", median_seconds([python, str(work / "many.py"), str(count)], runs, env),
               one, target=2.0 if count == 50 else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
