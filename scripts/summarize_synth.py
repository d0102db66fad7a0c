#!/usr/bin/env python3
"""Print a short summary of a cloud assembly: each stack's environment, resources, outputs and gates."""
from __future__ import annotations

import collections
import json
import sys
from pathlib import Path


def main(outdir: str = "cdk.out") -> int:
    root = Path(outdir)
    manifest = json.loads((root / "manifest.json").read_text())
    stacks = {name: a for name, a in manifest["artifacts"].items() if a["type"] == "aws:cloudformation:stack"}
    report_path = root / "validation-report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {"pluginReports": []}
    for name, artifact in sorted(stacks.items()):
        template = json.loads((root / artifact["properties"]["templateFile"]).read_text())
        resources = template.get("Resources", {})
        types = collections.Counter(r["Type"] for r in resources.values())
        print(f"{name}  ({artifact['environment']})")
        print(f"  {len(resources)} resources (CloudFormation limit 500): "
              + ", ".join(f"{n} {t.split('::', 1)[1]}" for t, n in types.most_common(8)))
        for key, output in template.get("Outputs", {}).items():
            if isinstance(output.get("Value"), str):
                print(f"  {key}: {output['Value']}")
    for plugin in report["pluginReports"]:
        print(f"{plugin['pluginName']}: {plugin['conclusion']}, {len(plugin['violations'])} finding(s), "
              f"{len(plugin.get('suppressedViolations', []))} acknowledged")
    if not report["pluginReports"]:
        print("cdk-nag AwsSolutions: no findings")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
