"""Build the app in-process exactly as the CDK CLI would, and run the gates every stack must pass.

- :func:`cli_context` is the context `cdk synth` sees: cdk.json's context plus cdk.context.json.
- :func:`synth` runs cdk-nag as policy-validation plugins: AwsSolutions and NIST 800-53 rev 5, which every
  mlcdk app runs, and the opt-in HIPAA Security and PCI DSS 3.2.1 packs (:data:`GATE_PACKS`), so every shape
  the tests synthesize answers to all four. :func:`nag_problems` cross-checks the report against the raw
  findings (an acknowledgement with a malformed id hides findings without recording them, so "synth
  succeeded" alone proves nothing).
- :func:`lint` runs cfn-lint on a synthesized template for the regions the stack targets.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: cfn-lint findings that come from CDK's own generated code, not from mlcdk.
IGNORED_LINT_RULES = {"W3005"}


#: Where synth() writes cloud assemblies: pytest's per-session temporary directory (set by tests/conftest.py),
#: which pytest prunes itself, so runs leave nothing in /tmp. None outside pytest: the system's temp dir.
OUTPUT_ROOT: Path | None = None

#: The opt-in packs the gate adds to the default ones (mlcdk.constructs.nag.add_checks' keywords): all of them.
GATE_PACKS = {"hipaa": True, "pci_dss": True}

#: The modules that mean "aws_cdk and its jsii kernel were loaded".
CDK_MODULES = ("aws_cdk", "jsii", "constructs")


def cdk_modules_loaded_by(code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter and return which of CDK_MODULES it ended up importing."""
    return modules_loaded_by(code, CDK_MODULES)


def modules_loaded_by(code: str, modules: Iterable[str]) -> list[str]:
    """Run ``code`` in a fresh interpreter and return which of ``modules`` it ended up importing."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(m for m in {tuple(modules)!r} if m in sys.modules)))\n"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def cli_context(**extra: Any) -> dict[str, Any]:
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    context.update(json.loads((ROOT / "cdk.context.json").read_text()))
    context.update({k: v for k, v in extra.items() if v is not None})
    return context


@dataclass
class Synthesized:
    app: Any
    stacks: dict[str, Any]
    templates: dict[str, dict]
    template_paths: dict[str, Path]
    report: dict
    outdir: Path


def synth(build: Callable[[Any], Iterable[Any]], context: Mapping[str, Any] | None = None, *, nag: bool = True) -> Synthesized:
    """Build an app with ``build(app) -> stacks``, synthesize it with the four cdk-nag packs attached (unless
    ``nag`` is false), and load the results."""
    import aws_cdk as cdk

    from mlcdk.constructs.nag import add_checks

    outdir = Path(tempfile.mkdtemp(prefix="mlcdk-synth-", dir=OUTPUT_ROOT))
    app = cdk.App(context=dict(context if context is not None else cli_context()), outdir=str(outdir))
    stacks = {s.stack_name: s for s in build(app)}
    if nag:
        add_checks(app, **GATE_PACKS)
    assembly = app.synth()
    templates, paths = {}, {}
    for name in stacks:
        artifact = assembly.get_stack_by_name(name)
        templates[name] = artifact.template
        paths[name] = Path(artifact.template_full_path)
    report_path = outdir / "validation-report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {"pluginReports": []}
    return Synthesized(app, stacks, templates, paths, report, outdir)


def nag_problems(result: Synthesized) -> list[str]:
    """Everything wrong with the cdk-nag results of ``result``; empty means the gate passes.

    Every raw finding of every pack (the four of :func:`synth`) (``validate_scope`` ignores acknowledgements) must appear in the synth
    report as suppressed, acknowledged with a full "<pack>::<rule>" id, a specific reason, and on a
    construct below the stack (not blanket at the stack or app).
    """
    from mlcdk.constructs.nag import ALL_PACKS, checks

    problems = acknowledgement_problems(result)
    suppressed: dict[tuple[str, str], dict] = {}
    for plugin in result.report["pluginReports"]:
        if plugin["pluginName"] not in ALL_PACKS:  # e.g. CDK's own report of add_warning_v2 warnings
            continue
        for violation in plugin["violations"]:
            paths = [c["constructPath"] for c in violation["violatingConstructs"]]
            problems.append(f"unacknowledged {violation['ruleName']}: {violation['description']} at {paths}")
        for violation in plugin.get("suppressedViolations", []):
            for construct in violation["violatingConstructs"]:
                suppressed[(violation["ruleName"], construct["constructPath"])] = violation
    for stack_name, stack in result.stacks.items():
        for pack in checks(**GATE_PACKS):
            for violation in pack.validate_scope(stack).violations:
                for resource in violation.violating_resources:
                    key = (violation.rule_name, resource.construct_path)
                    ack = suppressed.get(key)
                    if ack is None:
                        problems.append(f"{violation.rule_name} at {resource.construct_path} is hidden without a "
                                        "recorded acknowledgement (malformed acknowledgement id?)")
                        continue
                    if not ack["acknowledgedId"].startswith(f"{pack.name}::"):
                        problems.append(f"{key}: acknowledgement id {ack['acknowledgedId']!r} lacks the pack prefix")
                    if len(ack.get("reason", "").strip()) < 20:
                        problems.append(f"{key}: acknowledgement reason {ack.get('reason')!r} is not specific")
                    if ack["acknowledgedAt"] in ("", stack_name):
                        problems.append(f"{key}: acknowledged at the stack root, not on the construct")
    return problems


def acknowledgement_problems(result: Synthesized) -> list[str]:
    """Check every acknowledgement recorded in the construct tree.

    CDK stores ``Validations.acknowledge`` ids under the ``aws:cdk:acknowledged-rules`` metadata. An id
    without the pack prefix ("AwsSolutions-S1") is stored as ``Annotation::AwsSolutions-S1``: cdk-nag
    still honours it, but neither its raw findings nor the synth report show the finding any more.

    A stack's constructs are read from the metadata file the synth wrote for it (``<stack>.metadata.json``:
    every metadata entry of every construct of the stack, by path), not one jsii call per construct (0.7 s
    for the example app's 319 constructs); the constructs outside any stack (the app, a stage) through jsii.
    """
    import aws_cdk as cdk

    filed = _filed_metadata(result.outdir)
    problems: list[str] = []

    def visit(construct: Any) -> None:
        if isinstance(construct, cdk.Stack):
            root = "/" + construct.node.path
            for path, entries in filed.items():
                if path == root or path.startswith(root + "/"):
                    problems.extend(_acknowledgement_problems_at(path[1:], entries, at_root=path == root))
            return
        entries = [{"type": entry.type, "data": entry.data} for entry in construct.node.metadata]
        problems.extend(_acknowledgement_problems_at(construct.node.path, entries, construct.node.scope is None))
        for child in construct.node.children:
            visit(child)

    visit(result.app)
    return problems


def _filed_metadata(outdir: Path) -> dict[str, list[dict]]:
    """The metadata entries of every construct of every stack of the assembly (nested assemblies too), by path."""
    filed: dict[str, list[dict]] = {}
    for path in sorted(Path(outdir).rglob("*.metadata.json")):
        for construct_path, entries in json.loads(path.read_text()).items():
            filed.setdefault(construct_path, []).extend(entries)
    return filed


def _acknowledgement_problems_at(where: str, entries: Iterable[Mapping], at_root: bool) -> list[str]:
    """What is wrong with the acknowledgements among one construct's metadata ``entries``; ``at_root``: the
    construct is an app or a stack."""
    import aws_cdk as cdk

    from mlcdk.constructs.nag import ALL_PACKS

    problems = []
    for entry in entries:
        if entry["type"] != cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
            continue
        for rule_id, reason in dict(entry["data"]).items():
            if not any(f"{pack}-" in rule_id for pack in ALL_PACKS):
                continue
            if rule_id.startswith("Annotation::"):
                problems.append(f"{where}: {rule_id!r} hides a finding without a recorded acknowledgement; "
                                "use the '<pack>::<rule>' id")
            if len(str(reason).strip()) < 20:
                problems.append(f"{where}: acknowledgement {rule_id!r} reason {reason!r} is not specific")
            if at_root:
                problems.append(f"{where}: {rule_id!r} acknowledged at the stack root, not on the construct")
    return problems


def lint(template_path: Path, regions: Iterable[str]) -> list[str]:
    """cfn-lint errors and warnings (less IGNORED_LINT_RULES) for ``regions``, as readable lines."""
    from cfnlint.api import ManualArgs, lint_file

    matches = lint_file(Path(template_path), config=ManualArgs(regions=sorted(set(regions))))
    return [f"{m.rule.id} {m.message} ({m.path_string if hasattr(m, 'path_string') else ''})"
            for m in matches
            if m.rule.id not in IGNORED_LINT_RULES and m.rule.id[0] in "EW" and not _cfn_lint_data_lags(m)]


def _cfn_lint_data_lags(match) -> bool:
    """E3628 ("instance type not in region") where the EC2 API snapshot shows the type offered there.

    cfn-lint's region data trails the EC2 API: with cfn-lint 1.58 it lacks trn1.32xlarge in ap-south-1,
    ap-southeast-2 and ap-southeast-4, which DescribeInstanceTypeOfferings lists. Only that exact case
    passes; any type the catalog does not show in that region still fails.
    """
    import re

    from mlcdk.presets import catalog

    if match.rule.id != "E3628":
        return False
    found = re.match(r"^'([^']+)' is not one of .* in '([a-z0-9-]+)'$", match.message)
    return bool(found) and found.group(1) in catalog.default_catalog() and catalog.get(found.group(1)).offered_in(found.group(2))


def nothing_built(stack: Any, construct_id: str) -> bool:
    """True when the construct ``construct_id`` of ``stack`` left no resource behind: it was refused before its
    first child (or before it existed at all, when the parameter check refused the call)."""
    child = stack.node.try_find_child(construct_id)
    return child is None or not child.node.children


def assert_refused(construct: Any, message: str, *, region: str = "us-east-1", construct_id: str = "Cluster",
                   check_nothing_built: bool = True, **kwargs: Any) -> Any:
    """Build ``construct(stack, construct_id, **kwargs)`` in a fresh regional stack and assert that it raises a
    ConfigurationError matching ``message`` and (unless told otherwise) left no resource behind. Returns the stack."""
    import aws_cdk as cdk
    import pytest

    from mlcdk import ConfigurationError

    stack = cdk.Stack(cdk.App(context=cli_context()), "Bad", env=cdk.Environment(region=region))
    with pytest.raises(ConfigurationError, match=message):
        construct(stack, construct_id, **kwargs)
    if check_nothing_built:
        assert nothing_built(stack, construct_id)
    return stack
