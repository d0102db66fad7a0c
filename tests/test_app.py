"""The example app (app.py): its stacks pass cdk-nag and cfn-lint, and the CDK CLI works offline."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from mlcdk.presets import catalog
from tests.harness import ROOT, cdk_modules_loaded_by, cli_context, lint, nag_problems, synth

#: (variant id, context region). The app's stacks always have a region (mlcdk.settings.resolve_region); `cdk synth`
#: with no flag and no AWS configuration gets us-east-1 from the CLI (test_cdk_ls_lists_both_stacks_offline).
APP_VARIANTS = [("us-east-1", "us-east-1"), ("us-west-2", "us-west-2"), ("us-east-2", "us-east-2")]


def build_app(app):
    from mlcdk.stacks import add_stacks, settings_from_context

    return add_stacks(app, settings_from_context(app, environ={}))


@pytest.fixture(scope="module", params=APP_VARIANTS, ids=[v[0] for v in APP_VARIANTS])
def app_synth(request):
    _, region = request.param
    return region, synth(build_app, cli_context(region=region))


def lint_regions(stack, region: str) -> list[str]:
    """The region a stack targets: its own (the app never builds env-agnostic stacks)."""
    return [region]


def test_app_defines_training_and_inference_stacks(app_synth):
    _, result = app_synth
    assert sorted(result.stacks) == ["InferenceStack", "TrainingStack"]


def test_every_app_stack_passes_cdk_nag_aws_solutions(app_synth):
    _, result = app_synth
    assert nag_problems(result) == []


def test_every_app_stack_passes_cfn_lint_in_each_target_region(app_synth):
    region, result = app_synth
    for name, stack in result.stacks.items():
        assert lint(result.template_paths[name], lint_regions(stack, region)) == [], name


def test_stacks_stay_well_under_the_cloudformation_resource_limit(app_synth):
    _, result = app_synth
    for name, template in result.templates.items():
        assert len(template["Resources"]) < 250, name


def test_regional_stacks_pin_subnets_to_az_ids_that_offer_the_instance_type(app_synth):
    region, result = app_synth
    for name, stack in result.stacks.items():
        offered = set(catalog.get(stack.workload.instance_type).offered_azs(region))
        subnets = [r["Properties"] for r in result.templates[name]["Resources"].values() if r["Type"] == "AWS::EC2::Subnet"]
        assert subnets and all("AvailabilityZone" not in s for s in subnets), name
        assert {s["AvailabilityZoneId"] for s in subnets} <= offered, name


def test_app_stacks_are_never_env_agnostic(app_synth):
    region, result = app_synth
    for stack in result.stacks.values():
        assert stack.environment == f"aws://unknown-account/{region}" and stack.region == region


def test_the_app_without_any_region_stops_with_one_line(tmp_path):
    """`python3 app.py` outside the CDK CLI, with no -c region, no CDK_DEFAULT_REGION and no AWS configuration."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CDK_"))}
    env.update(AWS_CONFIG_FILE="/nonexistent", AWS_SHARED_CREDENTIALS_FILE="/nonexistent")
    result = subprocess.run([sys.executable, "app.py"], cwd=ROOT, env={**env, "CDK_OUTDIR": str(tmp_path)},
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: region: none given and none configured; pass -c region=REGION, set CDK_DEFAULT_REGION, or configure "
        "one for the AWS CLI (aws configure set region REGION): the stacks pin their subnets to the AZ IDs of that "
        "region that offer the instance type"]


def test_vpc_flow_logs_go_to_a_kms_encrypted_log_group_with_a_rotating_key(app_synth):
    _, result = app_synth
    for template in result.templates.values():
        resources = template["Resources"]
        flow_logs = [r for r in resources.values() if r["Type"] == "AWS::EC2::FlowLog"]
        assert len(flow_logs) == 1 and flow_logs[0]["Properties"]["TrafficType"] == "ALL"
        groups = {k: r["Properties"] for k, r in resources.items() if r["Type"] == "AWS::Logs::LogGroup"}
        assert all("KmsKeyId" in g for g in groups.values())  # the flow logs' and the Batch jobs' logs
        assert groups[flow_logs[0]["Properties"]["LogGroupName"]["Ref"]]["RetentionInDays"] == 365
        keys = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::KMS::Key"]
        assert keys and all(k["EnableKeyRotation"] is True for k in keys)


def test_no_subnet_assigns_public_ips(app_synth):
    _, result = app_synth
    for template in result.templates.values():
        for resource in template["Resources"].values():
            if resource["Type"] == "AWS::EC2::Subnet":
                assert resource["Properties"].get("MapPublicIpOnLaunch", False) is False


# --------------------------------------------------------------------------------------------
# The real CDK CLI, offline and without credentials
# --------------------------------------------------------------------------------------------


def run_cdk(*args: str, cwd: Path = ROOT, timeout: int = 240) -> subprocess.CompletedProcess:
    # A user's shell: no AWS settings, and aws-cdk-lib's built-in validation on (tests/conftest.py turns it off
    # for in-process synths only).
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AWS_") and k not in ("CDK_DEFAULT_ACCOUNT", "CDK_VALIDATION")}
    env.update(AWS_SHARED_CREDENTIALS_FILE="/nonexistent", AWS_CONFIG_FILE="/nonexistent", CI="true")
    cdk = ROOT / "node_modules" / ".bin" / "cdk"
    return subprocess.run([str(cdk), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def cdk_out(tmp_path_factory):
    return tmp_path_factory.mktemp("cdk-out")


@pytest.fixture(scope="module")
def default_synth(cdk_out) -> tuple[subprocess.CompletedProcess, Path]:
    """`cdk synth --quiet` of both stacks with cdk.json's context alone (engine batch, the default), run once for
    the tests that read it: the CLI's region and the deprecation check of the Batch engine."""
    out = cdk_out / "default"
    return run_cdk("synth", "--quiet", "--output", str(out)), out


def test_cdk_ls_lists_both_stacks_offline(cdk_out):
    result = run_cdk("ls", "--output", str(cdk_out / "ls"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["TrainingStack", "InferenceStack"]


def test_cdk_synth_without_aws_configuration_uses_the_clis_region(default_synth):
    """With no AWS configuration the CDK CLI sets CDK_DEFAULT_REGION=us-east-1 itself; the app takes it, and pins
    the subnets to the AZ IDs of us-east-1 that offer the type."""
    result, out = default_synth
    assert result.returncode == 0, result.stderr
    template = json.loads((out / "TrainingStack.template.json").read_text())
    azs = {r["Properties"]["AvailabilityZoneId"] for r in template["Resources"].values() if r["Type"] == "AWS::EC2::Subnet"}
    assert azs == {"use1-az4", "use1-az5", "use1-az6"}  # trn1.32xlarge's AZ IDs in us-east-1 (the catalog)


def nag_reports(out: Path) -> dict[str, tuple[int, int]]:
    """(unacknowledged, acknowledged) findings per cdk-nag pack in a CLI synth's validation report."""
    report = json.loads((out / "validation-report.json").read_text())
    return {p["pluginName"]: (len(p["violations"]), len(p.get("suppressedViolations", [])))
            for p in report["pluginReports"] if p["pluginName"] != "Construct Annotations"}


def test_cdk_synth_for_a_region_works_offline_pins_offered_azs_and_runs_the_compliance_packs_asked_for(cdk_out):
    out = cdk_out / "us-west-2"
    result = run_cdk("synth", "TrainingStack", "-c", "region=us-west-2", "-c", "compliance_packs=hipaa,pci_dss",
                     "--quiet", "--output", str(out))
    assert result.returncode == 0, result.stderr
    template = json.loads((out / "TrainingStack.template.json").read_text())
    azs = {r["Properties"]["AvailabilityZoneId"] for r in template["Resources"].values() if r["Type"] == "AWS::EC2::Subnet"}
    assert azs == set(catalog.get("trn1.32xlarge").offered_azs("us-west-2"))
    # app.py added the two opt-in packs: each ran, and every finding of theirs is acknowledged
    reports = nag_reports(out)
    assert list(reports) == ["AwsSolutions", "NIST.800.53.R5", "HIPAA.Security", "PCI.DSS.321"]
    assert all(unacknowledged == 0 and acknowledged > 0 for unacknowledged, acknowledged in reports.values()), reports


def test_synth_prints_no_deprecation_warning_and_runs_only_the_default_packs(cdk_out, default_synth):
    """Both stacks with both engines (shared storage on the second): a deprecated aws-cdk API prints
    "[WARNING] ... is deprecated" at synth. Without -c compliance_packs, app.py runs AwsSolutions and NIST
    800-53 rev 5 only (what the synth benchmarks measure). The Batch engine is the default: its synth is the
    module's default one."""
    for engine, extra in (("batch", None), ("nodes", ["-c", "shared_storage_gib=1200"])):
        if extra is None:
            result, out = default_synth
        else:
            out = cdk_out / f"deprecation-{engine}"
            result = run_cdk("synth", "--quiet", "-c", f"engine={engine}", *extra, "--output", str(out))
        assert result.returncode == 0, result.stderr
        assert "deprecated" not in result.stdout + result.stderr, engine
        assert list(nag_reports(out)) == ["AwsSolutions", "NIST.800.53.R5"], engine


INVALID_TEMPLATE_APP = """
import aws_cdk as cdk
app = cdk.App()
stack = cdk.Stack(app, "Invalid", env=cdk.Environment(region="us-east-1"))
cdk.CfnResource(stack, "Bucket", type="AWS::S3::Bucket", properties={"NoSuchBucketProperty": "x"})
app.synth()
"""


def test_the_cli_synth_keeps_aws_cdks_built_in_validation_as_a_gate(cdk_out, tmp_path):
    """cdk.json's @aws-cdk/core:validateAgainstDefaultRules makes aws-cdk's built-in CloudFormation validation fail a
    `cdk synth` on a template the resource schema refuses; tests/conftest.py's CDK_VALIDATION=false (in-process
    synths only) is what turns it off, and run_cdk, like a user's shell, does not carry it."""
    app = tmp_path / "invalid_app.py"
    app.write_text(INVALID_TEMPLATE_APP)
    result = run_cdk("synth", "--app", f"{sys.executable} {app}", "--quiet", "--output", str(cdk_out / "invalid"))
    assert result.returncode != 0, result.stdout + result.stderr
    assert "NoSuchBucketProperty: Additional properties are not allowed" in result.stderr
    assert "(CloudFormation Validate)" in result.stderr
    # The same app and flag with the tests' setting: only CDK_VALIDATION differs, and the synth passes.
    flag = json.dumps({"@aws-cdk/core:validateAgainstDefaultRules": True})
    unvalidated = subprocess.run([sys.executable, str(app)], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                                 env=dict(os.environ, CDK_VALIDATION="false", CDK_CONTEXT_JSON=flag))
    assert unvalidated.returncode == 0, unvalidated.stderr[-2000:]


def test_cdk_synth_with_a_bad_context_flag_fails_with_one_clear_line(cdk_out):
    result = run_cdk("synth", "-c", "nodes=four", "--quiet", "--output", str(cdk_out / "bad"))
    assert result.returncode != 0
    assert "error: nodes ('four') must be a whole number from 1 to 512" in result.stderr
    assert "Traceback" not in result.stderr and "jsii" not in result.stderr


# --------------------------------------------------------------------------------------------
# Packaging
# --------------------------------------------------------------------------------------------


def test_importing_mlcdk_does_not_load_aws_cdk_or_start_jsii():
    assert cdk_modules_loaded_by("import mlcdk, mlcdk.presets.catalog, mlcdk.settings, mlcdk.cli") == []


def test_wheel_ships_data_and_its_constructs_synthesize_in_another_app(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True, timeout=300)
    wheel = next(tmp_path.glob("mlcdk-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for expected in ("mlcdk/py.typed", "mlcdk/presets/data/instance_types.json", "mlcdk/presets/data/presets.json",
                     "mlcdk/constructs/network.py"):
        assert expected in names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    other_app = tmp_path / "other_app.py"
    other_app.write_text(
        "import aws_cdk as cdk, mlcdk\n"
        "from mlcdk import PrivateNetwork\n"
        "assert mlcdk.__file__.startswith(%r), mlcdk.__file__\n"
        "app = cdk.App(outdir=%r)\n"
        "stack = cdk.Stack(app, 'Other', env=cdk.Environment(region='us-east-1'))\n"
        "PrivateNetwork(stack, 'Net', availability_zone_ids=['use1-az4', 'use1-az6'])\n"
        "print(len(app.synth().get_stack_by_name('Other').template['Resources']))\n" % (str(site), str(tmp_path / "out"))
    )
    env = dict(os.environ, PYTHONPATH=str(site))
    result = subprocess.run([sys.executable, str(other_app)], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert int(result.stdout.split()[-1]) > 10


def test_committed_cdk_context_json_matches_its_generator():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "generate_context.py"), "--check"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lookups = json.loads((ROOT / "cdk.context.json").read_text())
    assert {k.rsplit("region=", 1)[1] for k in lookups} == set(catalog.regions())


def test_ci_script_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_emulator_context_changes_only_the_ami_parameter():
    def template(**extra):
        return synth(build_app, cli_context(region="us-east-1", **extra), nag=False).templates["TrainingStack"]

    real, emulated = template(), template(emulator="true")
    real_params = {k: v for k, v in real["Parameters"].items() if k.startswith("SsmParameterValue")}
    emulated_params = {k: v for k, v in emulated["Parameters"].items() if k.startswith("SsmParameterValue")}
    assert [p["Default"] for p in real_params.values()] == ["/aws/service/ecs/optimized-ami/amazon-linux-2023/neuron/recommended/image_id"]
    assert [p["Default"] for p in emulated_params.values()] == ["/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"]
    (real_name,), (emulated_name,) = real_params, emulated_params
    assert json.dumps(emulated, sort_keys=True).replace(emulated_name, real_name).replace(
        "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
        "/aws/service/ecs/optimized-ami/amazon-linux-2023/neuron/recommended/image_id") == json.dumps(real, sort_keys=True)


def test_shared_storage_flag_adds_a_file_system_that_passes_the_gates():
    result = synth(build_app, cli_context(region="us-east-1", stacks="TrainingStack", shared_storage_gib="2400"))
    template = result.templates["TrainingStack"]
    (fs,) = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::FSx::FileSystem"]
    assert (fs["StorageCapacity"], fs["LustreConfiguration"]["DeploymentType"]) == (2400, "PERSISTENT_2")
    assert "SharedFileSystem" in template["Outputs"]
    (cost,) = [o for k, o in template["Outputs"].items() if k.startswith("ClusterGuardrailsEstimatedMonthlyCostUsd")]
    assert "plus FSx for Lustre PERSISTENT_2 125 MB/s/TiB 2400 GiB at $0.145/GB-month" in cost["Description"]
    assert "$348.00/month" in cost["Description"]  # 2,400 GiB x $0.145
    assert nag_problems(result) == []
    assert lint(result.template_paths["TrainingStack"], ["us-east-1"]) == []
    assert not [r for r in synth(build_app, cli_context(region="us-east-1", stacks="TrainingStack"), nag=False)
                .templates["TrainingStack"]["Resources"].values() if r["Type"].startswith("AWS::FSx::")]  # off by default
