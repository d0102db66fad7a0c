#!/usr/bin/env python3
"""Redraw the README's diagram of each stack of the example app (`make diagrams`); --check only compares.

The app is synthesized in-process as `cdk synth` would build it: cdk.json's and cdk.context.json's context plus the
values the CDK CLI adds by default (path metadata, version reporting), so the pictures equal
`mlcdk diagram STACK --synth`. Each picture sits between a begin marker naming its stack and END in README.md.
tests/test_diagram.py fails when they drift from the app.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
STACKS = ("TrainingStack", "InferenceStack")
COMMAND = "make diagrams"
BEGIN = "<!-- diagram: {stack} (drawn by `" + COMMAND + "` from the example app; do not edit) -->"
END = "<!-- /diagram -->"
#: What the CDK CLI puts in every app's context unless told otherwise (aws-cdk's cxapi: PATH_METADATA_ENABLE_CONTEXT,
#: ANALYTICS_REPORTING_ENABLED_CONTEXT, ASSET_RESOURCE_METADATA_ENABLED_CONTEXT, BUNDLING_STACKS).
CLI_CONTEXT = {"aws:cdk:enable-path-metadata": True, "aws:cdk:version-reporting": True,
               "aws:cdk:enable-asset-metadata": True, "aws:cdk:bundling-stacks": ["**"]}
#: The region the CDK CLI gives an app when no AWS configuration names one (CDK_DEFAULT_REGION, us-east-1), so the
#: pictures do not depend on the machine that draws them.
CLI_ENVIRON = {"CDK_DEFAULT_REGION": "us-east-1"}


def synth_example(outdir: Path) -> Any:
    """Synthesize app.py's stacks into ``outdir`` with the CLI's context; the app, for callers that inspect it."""
    import aws_cdk as cdk

    from mlcdk.stacks import add_stacks, settings_from_context

    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    context.update(json.loads((ROOT / "cdk.context.json").read_text()))
    app = cdk.App(context={**context, **CLI_CONTEXT}, outdir=str(outdir))
    add_stacks(app, settings_from_context(app, environ=CLI_ENVIRON))
    app.synth()
    return app


def blocks(assembly: Path) -> dict[str, str]:
    """Each stack's README block: its markers around a ```mermaid fence."""
    from mlcdk.diagram import mermaid, read

    return {stack: f"{BEGIN.format(stack=stack)}\n```mermaid\n{mermaid.render(read(assembly, stack))}```\n{END}"
            for stack in STACKS}


def readme_blocks(text: str) -> dict[str, str]:
    """The blocks the README holds now, by stack."""
    found = {}
    for stack in STACKS:
        match = re.search(re.escape(BEGIN.format(stack=stack)) + ".*?" + re.escape(END), text, flags=re.S)
        if match:
            found[stack] = match[0]
    return found


def main(argv: list[str]) -> int:
    check = argv == ["--check"]
    text = README.read_text()
    with tempfile.TemporaryDirectory(prefix="mlcdk-diagrams-") as outdir:
        synth_example(Path(outdir))
        wanted = blocks(Path(outdir))
    current = readme_blocks(text)
    missing = [stack for stack in STACKS if stack not in current]
    if missing:
        print(f"README.md has no place for {', '.join(missing)}: add the line {BEGIN.format(stack=missing[0])!r} "
              f"and, below it, {END!r}", file=sys.stderr)
        return 1
    stale = [stack for stack in STACKS if current[stack] != wanted[stack]]
    if check:
        print(f"stale: {', '.join(stale)}; run `{COMMAND}`" if stale else "README diagrams are current")
        return 1 if stale else 0
    for stack in stale:
        text = text.replace(current[stack], wanted[stack])
    README.write_text(text)
    print(f"redrew {', '.join(stale)}" if stale else "README diagrams are current")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main(sys.argv[1:]))
