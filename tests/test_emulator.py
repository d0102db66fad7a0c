"""mlcdk.emulator's parts that need no emulator run: reading a cloud assembly and choosing stacks, finding the CDK
CLI, the children's environment, the options' checks, the read-back's extension points, and `mlcdk emulate`'s
one-line usage errors. (The runs themselves are in tests/integration.)"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlcdk.cli import app
from mlcdk.emulator import assembly, cdk, readback
from mlcdk.emulator.failures import Unavailable
from mlcdk.emulator.fixes import markdown_table
from mlcdk.emulator.options import EmulateOptions, validate
from mlcdk.emulator.readback import Section, StackView
from mlcdk.errors import ConfigurationError
from tests.harness import ROOT

runner = CliRunner()


def _manifest(directory: Path, artifacts: dict) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "manifest.json").write_text(json.dumps({"version": "55.0.0", "artifacts": artifacts}))


def _stack(environment: str, template: str, dependencies: tuple[str, ...] = (), **properties) -> dict:
    return {"type": "aws:cloudformation:stack", "environment": environment, "dependencies": list(dependencies),
            "properties": {"templateFile": template, **properties}}


@pytest.fixture
def staged(tmp_path: Path) -> Path:
    """An assembly like the CDK writes for: a top-level stack with its region open, and a stage "Prod" (a nested
    assembly) whose Jobs stack depends on its Data stack, in us-west-2."""
    _manifest(tmp_path, {
        "Base.assets": {"type": "cdk:asset-manifest"},
        "Base": _stack("aws://unknown-account/unknown-region", "Base.template.json", ("Base.assets",)),
        "assembly-Prod": {"type": "cdk:cloud-assembly", "properties": {"directoryName": "assembly-Prod",
                                                                       "displayName": "Prod"}},
        "Tree": {"type": "cdk:tree"}})
    _manifest(tmp_path / "assembly-Prod", {
        "ProdData": {**_stack("aws://111111111111/us-west-2", "ProdData.template.json", stackName="Prod-Data"),
                     "displayName": "Prod/Data"},
        "ProdJobs": {**_stack("aws://111111111111/us-west-2", "ProdJobs.template.json", ("ProdData",),
                              stackName="Prod-Jobs"), "displayName": "Prod/Jobs"}})
    return tmp_path


def test_reads_every_stack_of_the_assembly_and_its_stages(staged: Path):
    stacks = assembly.read(staged, "eu-west-1")
    assert [(s.artifact, s.display_name, s.name, s.account, s.region, s.depends_on) for s in stacks] == [
        ("Base", "Base", "Base", "123456789012", "eu-west-1", ()),  # open account and region: the emulator's
        ("ProdData", "Prod/Data", "Prod-Data", "111111111111", "us-west-2", ()),
        ("ProdJobs", "Prod/Jobs", "Prod-Jobs", "111111111111", "us-west-2", ("ProdData",))]
    assert stacks[2].template_file == staged / "assembly-Prod" / "ProdJobs.template.json"


def test_selects_every_stack_by_default_and_a_pattern_s_stacks_with_their_dependencies(staged: Path):
    stacks = assembly.read(staged, "us-east-1")
    assert assembly.select(stacks, ()) == stacks
    assert [s.display_name for s in assembly.select(stacks, ("Prod/Jobs",))] == ["Prod/Data", "Prod/Jobs"]
    assert [s.display_name for s in assembly.select(stacks, ("Prod/*",))] == ["Prod/Data", "Prod/Jobs"]
    assert [s.display_name for s in assembly.select(stacks, ("ProdData", "Base"))] == ["Base", "Prod/Data"]


def test_a_pattern_that_matches_nothing_lists_the_stacks(staged: Path):
    with pytest.raises(Unavailable, match=r"^--stack: 'Dev/\*' matches no stack of the app; its stacks: Base, "
                                          r"Prod/Data, Prod/Jobs$"):
        assembly.select(assembly.read(staged, "us-east-1"), ("Dev/*",))


def test_stacks_of_two_accounts_are_refused(staged: Path):
    stacks = assembly.read(staged, "us-east-1")
    assert assembly.accounts(stacks[1:]) == "111111111111"
    with pytest.raises(Unavailable, match=r"several accounts \(111111111111, 123456789012\)"):
        assembly.accounts(stacks)


def test_stacks_of_another_account_than_the_emulator_s_are_refused(staged: Path, tmp_path: Path):
    from mlcdk.emulator import run
    from mlcdk.emulator.session import Session

    options = EmulateOptions(directory=staged, app=".", stacks=("Prod/*",))
    session = Session(options, cdk.CdkCli("cdk", "test"), tmp_path / "work", "r1")
    with pytest.raises(Unavailable, match=r"^stack\(s\) Prod/Data, Prod/Jobs deploy to account 111111111111; the "
                                          r"emulator plays 123456789012: pass --account 111111111111$"):
        run._synth(session)  # the assembly is copied, not synthesized: no CDK CLI runs


def _executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_finds_the_cdk_cli_in_the_documented_order(tmp_path: Path, monkeypatch):
    on_path = _executable(tmp_path / "bin" / "cdk")
    local = _executable(tmp_path / "app" / "node_modules" / ".bin" / "cdk")
    chosen = _executable(tmp_path / "mine" / "cdk")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.delenv("MLCDK_CDK", raising=False)
    assert cdk.find_cdk(None, tmp_path / "elsewhere") == cdk.CdkCli(str(on_path), "PATH")
    assert cdk.find_cdk(None, tmp_path / "app") == cdk.CdkCli(str(local), "the app directory's node_modules")
    monkeypatch.setenv("MLCDK_CDK", str(chosen))
    assert cdk.find_cdk(None, tmp_path / "app") == cdk.CdkCli(str(chosen), "MLCDK_CDK")
    assert cdk.find_cdk(str(on_path), tmp_path / "app") == cdk.CdkCli(str(on_path), "--cdk")


def test_no_cdk_cli_says_what_to_install(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("MLCDK_CDK", raising=False)
    with pytest.raises(Unavailable, match=r"no CDK CLI found .*npm install --save-dev aws-cdk@\^2\.1148\.1"):
        cdk.find_cdk(None, tmp_path)
    with pytest.raises(Unavailable, match=r"^--cdk: '/no/such/cdk' is not an executable file$"):
        cdk.find_cdk("/no/such/cdk", tmp_path)


def test_the_cli_version_mlcdk_recommends_is_the_one_package_json_pins():
    pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]["aws-cdk"]
    assert cdk.CDK_CLI_PACKAGE == f"aws-cdk@{pinned}"


def test_children_get_dummy_credentials_and_none_of_the_user_s_aws_settings(tmp_path: Path, monkeypatch):
    for name, value in {"AWS_PROFILE": "prod", "AWS_ENDPOINT_URL_S3": "https://s3.example.com",
                        "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.170.23/creds",
                        "CDK_DEFAULT_ACCOUNT": "999999999999", "STAGE": "dev"}.items():
        monkeypatch.setenv(name, value)
    env = cdk.environment("http://localhost:5000", "us-west-2", directory=tmp_path, tmp=tmp_path / "tmp",
                          run_id="r1")
    assert {k: v for k, v in env.items() if k.startswith(("AWS_", "CDK_"))} == {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-west-2", "AWS_REGION": "us-west-2", "AWS_ENDPOINT_URL": "http://localhost:5000",
        "AWS_CONFIG_FILE": "/nonexistent/mlcdk-emulator-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/mlcdk-emulator-credentials",
        "AWS_EC2_METADATA_DISABLED": "true", "CDK_DISABLE_CLI_TELEMETRY": "true", "CDK_DISABLE_VERSION_CHECK": "true"}
    assert (env["STAGE"], env["TMPDIR"], env["MLCDK_EMULATOR_RUN"]) == ("dev", str(tmp_path / "tmp"), "r1")
    assert env["PATH"].split(os.pathsep)[:2] == [str(Path(sys.executable).parent),
                                                 str(tmp_path / "node_modules" / ".bin")]


@pytest.mark.parametrize(("options", "message"), [
    (EmulateOptions(context=("nodes",)), r"^--context \('nodes'\) must be KEY=VALUE, with a key without spaces$"),
    (EmulateOptions(context=("my key=1",)), r"^--context \('my key=1'\) must be KEY=VALUE"),
    (EmulateOptions(account="1234"), r"^--account \('1234'\) must be a 12-digit AWS account ID$"),
    (EmulateOptions(region="us-eats-1"), r"^--region: unknown region 'us-eats-1'; did you mean 'us-east-1'"),
    (EmulateOptions(stacks="TrainingStack"), r"^options\.stacks \('TrainingStack'\) must be a list or tuple"),
    (EmulateOptions(keep="yes"), r"^options\.keep \('yes'\) must be True or False"),
])
def test_wrong_options_are_refused_with_the_flag_s_name(options: EmulateOptions, message: str):
    names = {"context": "--context", "account": "--account", "region": "--region"}
    with pytest.raises(ConfigurationError, match=message):
        validate(options, names)


def test_a_section_can_be_added_to_the_read_back_without_editing_it(monkeypatch):
    monkeypatch.setattr(readback, "SECTIONS", list(readback.SECTIONS))
    probe = Section("probe", lambda view: view.line("  probe"))
    readback.register(probe, before="security groups")
    names = [s.name for s in readback.SECTIONS]
    assert names.index("probe") == names.index("security groups") - 1
    with pytest.raises(ValueError, match="a read-back section named 'probe' exists already"):
        readback.register(probe)


def test_what_a_template_retains_is_not_a_leftover():
    view = StackView(lambda service: None, "S", "S", {"StackStatus": "CREATE_COMPLETE"},
                     {"Data": {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain"},
                      "Logs": {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Delete"}},
                     [readback.Created("Data", "data-1", "AWS::S3::Bucket"),
                      readback.Created("Logs", "logs-1", "AWS::S3::Bucket")])
    view.keep("s3 buckets", "data-1", "S3 bucket data-1")
    view.keep("s3 buckets", "logs-1", "S3 bucket logs-1")
    left, retained = readback.still_there(lambda service: _Buckets({"data-1", "logs-1"}), view.kept)
    assert [k.physical for k in left] == ["logs-1"] and [k.physical for k in retained] == ["data-1"]


class _Buckets:
    def __init__(self, names: set[str]) -> None:
        self.names = names

    def list_buckets(self) -> dict:
        return {"Buckets": [{"Name": n} for n in sorted(self.names)]}


def test_docs_show_the_table_of_fixes():
    assert markdown_table() in (ROOT / "docs" / "emulator.md").read_text()


# ------------------------------------------------------------------------------------------------------------------
# `mlcdk emulate`: usage errors are one line and exit 2, before anything starts
# ------------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("arguments", "message"), [
    (["-c", "nodes"], "error: --context ('nodes') must be KEY=VALUE, with a key without spaces"),
    (["--account", "12345678901"], "error: --account ('12345678901') must be a 12-digit AWS account ID"),
    (["--region", "us-eats-1"], "error: --region: unknown region 'us-eats-1'; did you mean 'us-east-1' or "
                                "'us-west-1' or 'us-east-2'?"),
])
def test_emulate_refuses_wrong_flags_in_one_line(arguments: list[str], message: str):
    result = runner.invoke(app, ["emulate", *arguments])
    assert result.exit_code == 2
    assert result.output.strip() == message


def _cli(arguments: list[str], cwd: Path, prelude: str = "", **env: str) -> subprocess.CompletedProcess:
    code = f"import sys\n{prelude}\nfrom mlcdk.cli import main\nsys.argv = ['mlcdk', *sys.argv[1:]]\nmain()\n"
    return subprocess.run([sys.executable, "-c", code, *arguments], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=60)


def test_emulate_without_an_app_is_one_line(tmp_path: Path):
    result = _cli(["emulate"], tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"error: no --app given and no cdk.json in {tmp_path}\n"


def test_emulate_without_the_extra_says_what_to_install(tmp_path: Path):
    (tmp_path / "cdk.json").write_text('{"app": "python3 app.py"}')
    result = _cli(["emulate"], tmp_path, prelude="sys.modules['moto'] = None")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith("error: mlcdk emulate needs the emulator extra (moto): "
                                    "pip install 'mlcdk[emulator]' (")
    assert len(result.stderr.splitlines()) == 1


def test_emulate_without_a_cdk_cli_says_what_to_install(tmp_path: Path):
    (tmp_path / "cdk.json").write_text('{"app": "python3 app.py"}')
    result = _cli(["emulate"], tmp_path, PATH=str(Path(sys.executable).parent), MLCDK_CDK="")
    assert result.returncode == 2
    assert result.stderr == (f"error: no CDK CLI found (looked at --cdk, MLCDK_CDK, {tmp_path}/node_modules/.bin/cdk "
                             f"and PATH); {cdk.INSTALL_HINT}\n")
