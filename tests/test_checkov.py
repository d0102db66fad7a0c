"""checkov on the synthesized templates: every failed check is skipped, with its reason, in checkov-skips.yaml.

checkov runs from its own virtualenv (.venv/checkov, made by `make test`; it pins a boto3 that moto
cannot use), offline, once over every template below. The gate is two-sided: a failure that no skip
entry covers fails, and so does a skip entry that no longer matches anything.
"""
from __future__ import annotations

import fnmatch
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.harness import ROOT, cli_context, synth

SKIPS_FILE = ROOT / "checkov-skips.yaml"
CHECKOV = Path(os.environ.get("MLCDK_CHECKOV", ROOT / ".venv" / "checkov" / "bin" / "checkov"))


@dataclass(frozen=True)
class Failure:
    check: str
    name: str
    path: str  # the CDK construct path of the resource
    template: str


def run_checkov(templates: list[Path]) -> tuple[list[Failure], dict]:
    """Failed checks of ``templates`` (one checkov run), by construct path; and the summed summary."""
    if not CHECKOV.exists():
        pytest.fail(f"checkov is not installed at {CHECKOV}; `make test` (scripts/bootstrap.sh --with-checkov) "
                    "installs it")
    args = [str(CHECKOV), "--framework", "cloudformation", "--output", "json", "--quiet", "--skip-download"]
    for template in templates:
        args += ["--file", str(template)]
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE"}  # offline: no guideline download from the vendor's API
    run = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode in (0, 1), f"checkov exited {run.returncode}: {run.stderr[-2000:]}"
    reports = json.loads(run.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    summary = {"passed": 0, "failed": 0, "parsing_errors": 0}
    failures = []
    for report in reports:
        for key in summary:
            summary[key] += report["summary"][key]
        for failed in report["results"].get("failed_checks", []):
            template = json.loads(Path(failed["file_abs_path"]).read_text())
            logical_id = failed["resource"].split(".", 1)[1]
            path = template["Resources"][logical_id].get("Metadata", {}).get("aws:cdk:path", logical_id)
            failures.append(Failure(failed["check_id"], failed["check_name"], path, Path(failed["file_abs_path"]).name))
    return failures, summary


def load_skips(path: Path = SKIPS_FILE) -> list[dict]:
    entries = yaml.safe_load(path.read_text())
    assert isinstance(entries, list) and entries, f"{path.name} must be a list of skip entries"
    for entry in entries:
        assert set(entry) == {"check", "resources", "reason"}, f"{path.name}: entry {entry} needs check, resources, reason"
        assert entry["check"].startswith("CKV_"), f"{path.name}: {entry['check']!r} is not a checkov check id"
        assert entry["resources"] and all("/" in r for r in entry["resources"]), \
            f"{path.name}: {entry['check']} must name construct paths, not skip a check everywhere"
        assert len(entry["reason"].split()) >= 8, f"{path.name}: {entry['check']} needs a specific reason"
    return entries


def unskipped(failures: list[Failure], skips: list[dict]) -> tuple[list[Failure], list[str]]:
    """Failures no skip entry covers, and skip patterns that cover no failure."""
    used: set[tuple[str, str]] = set()
    left = []
    for failure in failures:
        matches = [(e["check"], pattern) for e in skips if e["check"] == failure.check
                   for pattern in e["resources"] if fnmatch.fnmatchcase(failure.path, pattern)]
        used.update(matches)
        if not matches:
            left.append(failure)
    stale = [f"{e['check']} {pattern}" for e in skips for pattern in e["resources"] if (e["check"], pattern) not in used]
    return left, stale


# ------------------------------------------------------------------------------------------------
# What is scanned: the example app in three shapes, and the fleet's other load-balancer shapes.

def _app(app):
    from mlcdk.stacks import add_stacks, settings_from_context

    return add_stacks(app, settings_from_context(app, environ={"CDK_DEFAULT_REGION": "us-east-1"}))  # as the CDK CLI sets it


def _fleets(app):
    import aws_cdk as cdk
    from aws_cdk import aws_certificatemanager as acm

    from mlcdk import InferenceFleet, LoadBalancerOptions, ModelOptions, ScalingOptions

    env = cdk.Environment(account="123456789012", region="us-east-1")
    public = cdk.Stack(app, "PublicFleet", env=env)
    certificate = acm.Certificate.from_certificate_arn(
        public, "Certificate", "arn:aws:acm:us-east-1:123456789012:certificate/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b")
    InferenceFleet(public, "Fleet", preset="llm-serving-inferentia2",
                   model=ModelOptions(source="s3://acme-models/tinyllama", architecture="tinyllama-1.1b"),
                   load_balancer=LoadBalancerOptions(
        internet_facing=True, certificate=certificate,
        web_acl_arn="arn:aws:wafv2:us-east-1:123456789012:regional/webacl/api/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"))
    grpc = cdk.Stack(app, "GrpcFleet", env=env)
    InferenceFleet(grpc, "Fleet", instance_type="g6.xlarge", port=50051, removal_policy=cdk.RemovalPolicy.DESTROY,
                   load_balancer=LoadBalancerOptions(kind="network"), engine="nodes",
                   scaling=ScalingOptions(signal="cpu"), model_server_command="/opt/server/bin/serve --port 50051")
    return [public, grpc]


SCANNED = {
    "app, us-east-1": (_app, dict(region="us-east-1", account="123456789012")),
    "app, the CLI's default region": (_app, {}),
    "app, us-west-2, GPU spot": (_app, dict(region="us-west-2", account="123456789012", preset="llm-pretrain-nvidia",
                                            purchase_option="spot", inference_purchase_option="mixed", engine="nodes",
                                            removal_policy="destroy")),
    "fleets: public HTTPS+WAF, internal NLB": (_fleets, {}),
    "training, us-east-1, nodes, FSx for Lustre": (_app, dict(region="us-east-1", account="123456789012",
                                                            stacks="TrainingStack", engine="nodes",
                                                            shared_storage_gib="1200")),
}


@pytest.fixture(scope="module")
def scanned():
    templates = []
    for build, context in SCANNED.values():
        result = synth(build, cli_context(**{"aws:cdk:enable-path-metadata": True, **context}))
        templates += result.template_paths.values()
    return run_checkov(templates)


def test_every_failed_check_is_skipped_with_a_reason_and_every_skip_is_used(scanned):
    failures, summary = scanned
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 500, summary  # checkov really evaluated the templates
    left, stale = unskipped(failures, load_skips())
    assert not left, "checkov failures not in checkov-skips.yaml:\n" + "\n".join(
        f"  {f.check} ({f.name}) at {f.path} [{f.template}]" for f in left)
    assert not stale, f"checkov-skips.yaml entries that match nothing any more: {stale}"


def test_the_skip_file_is_specific_and_the_readme_counts_it():
    import re

    skips = load_skips()
    assert len({e["check"] for e in skips}) == len(skips), "one entry per check"
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"There\s+are (\d+) entries", readme).group(1) == str(len(skips))
    assert not [p for e in skips for p in e["resources"] if p.strip("*/") == ""], "no skip may cover everything"


def test_the_gate_catches_a_failure_nobody_skipped(tmp_path):
    """An unencrypted, unversioned, unlogged bucket fails checks that checkov-skips.yaml does not cover."""
    template = {"Resources": {"Loose": {"Type": "AWS::S3::Bucket", "Properties": {},
                                        "Metadata": {"aws:cdk:path": "Demo/Loose/Resource"}}}}
    path = tmp_path / "Demo.template.json"
    path.write_text(json.dumps(template))
    failures, _ = run_checkov([path])
    left, _ = unskipped(failures, load_skips())
    assert {f.check for f in left} >= {"CKV_AWS_18", "CKV_AWS_21"}  # access logging, versioning
    assert {f.path for f in left} == {"Demo/Loose/Resource"}
