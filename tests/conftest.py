"""Shared test set-up. The jsii kernel must run on the virtualenv's Node 24, so PATH is fixed first."""
from __future__ import annotations

import os
import sys
from pathlib import Path

_BIN = Path(sys.executable).parent
if (_BIN / "node").exists():
    os.environ["PATH"] = f"{_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
# Tests never use real AWS credentials, nor a region from the developer's shell (the app resolves its region from
# CDK_DEFAULT_REGION and the AWS configuration: tests give it explicitly).
for _var in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION",
             "AWS_REGION", "CDK_DEFAULT_REGION", "CDK_DEFAULT_ACCOUNT"):
    os.environ.pop(_var, None)
# Tests read the bundled catalog snapshot, never a refreshed one a developer exported.
os.environ.pop("MLCDK_CATALOG", None)
os.environ.setdefault("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/mlcdk-tests")
os.environ.setdefault("AWS_CONFIG_FILE", "/nonexistent/mlcdk-tests")
# In-process synths skip aws-cdk-lib's built-in CloudFormation validation (AppProps.builtinCloudFormationValidation,
# read from CDK_VALIDATION by the jsii kernel this process starts): it checks each template against the resource
# schemas, which cfn-lint (the gate, tests/harness.py:lint) also checks on every shape the gate tests synthesize,
# and it was 20-30% of the suite's synth CPU (issue 26). The real CLI keeps it on, as a user's shell has it: the
# example app's `cdk synth` (tests/test_app.py:run_cdk) and every `mlcdk emulate`/`make deploy` run
# (tests/integration/runs.py:environment) drop the variable again.
os.environ["CDK_VALIDATION"] = "false"
# Apps built without an outdir make aws-cdk write to a temporary directory of its own (cdk.outXXXX); the jsii
# Node process, started on the first aws_cdk import, inherits TMPDIR, so those land here and go at exit.
import atexit  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402

_SCRATCH = tempfile.mkdtemp(prefix="mlcdk-tests-")
os.environ["TMPDIR"] = tempfile.tempdir = _SCRATCH
atexit.register(shutil.rmtree, _SCRATCH, ignore_errors=True)


import pytest  # noqa: E402


def _share_botocore_models() -> None:
    """Every botocore session of this test process reads the service models through one loader.

    The CLI and preflight make a fresh ``boto3.Session()`` per command, as they should; each new session gets
    a new ``botocore.loaders.Loader`` and parses the service's JSON model again (about 0.2 s per service and
    session, 20-40 s over the moto-backed tests). The loader only reads botocore's own data files, whose
    content a test never changes, so sharing it changes no request or answer. Sessions with another data
    path (``AWS_DATA_PATH``) get a loader of their own.
    """
    import botocore.loaders
    import botocore.session

    create_loader, loaders = botocore.loaders.create_loader, {}

    def shared_loader(search_path_string=None):
        if search_path_string not in loaders:
            loaders[search_path_string] = create_loader(search_path_string)
        return loaders[search_path_string]

    botocore.session.create_loader = shared_loader


_share_botocore_models()


@pytest.fixture
def moto_without_sample_amis(monkeypatch):
    """moto's EC2 backend makes its ~5,200 sample AMIs for every region it touches (about 0.2 s per region, 6 s
    for a walk over the catalog's 30 regions) unless MOTO_EC2_LOAD_DEFAULT_AMIS is false (moto/settings.py).
    For tests that read instance types, offerings, prices or zones and launch nothing: RunInstances needs
    them (moto checks the image exists), so the deploys keep them."""
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")


@pytest.fixture(scope="session", autouse=True)
def _synth_output_under_pytest_tmp(tmp_path_factory):
    """Cloud assemblies go under pytest's temporary directory (kept for the last 3 runs), not loose in /tmp."""
    from tests import harness

    harness.OUTPUT_ROOT = tmp_path_factory.mktemp("synth")
    yield


#: CPU seconds per test module in a whole-suite run (``python benchmarks/tests.py --write-weights``), read to start
#: the slowest modules first.
MODULE_CPU = Path(__file__).with_name("module_cpu.json")
#: The weight of a module the file does not know yet (a new one): about a median module's.
NEW_MODULE_CPU = 5.0


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    """Slowest modules first, each module's tests in their own order.

    ``make test`` hands whole modules to the xdist workers (``--dist loadfile``) in collection order
    (``--no-loadscope-reorder``: xdist would otherwise order them by their number of tests, which puts the
    400 one-millisecond advisor tests before the 40 CDK CLI runs of tests/test_app.py). Longest first keeps a
    heavy module from starting last and running alone while the other CPU idles.
    """
    import json

    if config.getoption("failedfirst", False) or config.getoption("newfirst", False):
        return  # --ff / --nf asked for their own order
    weights = json.loads(MODULE_CPU.read_text())["modules"] if MODULE_CPU.exists() else {}
    items.sort(key=lambda item: -weights.get(item.nodeid.split("::", 1)[0], NEW_MODULE_CPU))


def pytest_configure(config):
    """xdist keeps the order above (see pytest_collection_modifyitems) instead of sorting by number of tests."""
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False
