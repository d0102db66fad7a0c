"""The benchmarks stay runnable (`make bench` is not run in CI), and the synth floor replays what the app made."""
from __future__ import annotations

import importlib.util
import py_compile
import sys

from tests.harness import ROOT

BENCHMARKS = ROOT / "benchmarks"


def test_every_benchmark_compiles():
    scripts = sorted(BENCHMARKS.glob("*.py"))
    assert {p.name for p in scripts} >= {"synth.py", "catalog.py", "advisor.py", "_timing.py"}
    for path in scripts:
        py_compile.compile(str(path), doraise=True)


def test_the_replay_input_drops_only_what_the_synthesizer_adds_back():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location("bench_synth", BENCHMARKS / "synth.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    template = {
        "Parameters": {"BootstrapVersion": {"Type": "AWS::SSM::Parameter::Value<String>"}, "Price": {"Type": "Number"}},
        "Rules": {"CheckBootstrapVersion": {"Assertions": []}},
        "Conditions": {"CDKMetadataAvailable": {"Fn::Or": []}},
        "Resources": {"CDKMetadata": {"Type": "AWS::CDK::Metadata"}, "Key": {"Type": "AWS::KMS::Key"}},
        "Outputs": {"X": {"Value": "y"}},
    }
    assert module.strip_synthesizer(template) == {
        "Parameters": {"Price": {"Type": "Number"}},
        "Resources": {"Key": {"Type": "AWS::KMS::Key"}},
        "Outputs": {"X": {"Value": "y"}},
    }
    assert "CDKMetadata" in template["Resources"]  # the input is not modified
