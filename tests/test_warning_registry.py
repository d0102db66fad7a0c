"""The warning registry: every mlcdk:* warning comes from its one table, through warn(), and the README lists them."""
from __future__ import annotations

import ast
import importlib.util

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Annotations, Match

from mlcdk import InferenceFleet
from mlcdk.constructs import warning_registry
from mlcdk.constructs.warning_registry import WARNINGS, message, warn
from tests.harness import ROOT, cli_context

_spec = importlib.util.spec_from_file_location("readme_warnings", ROOT / "scripts" / "readme_warnings.py")
readme_warnings = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(readme_warnings)

#: The IDs users acknowledge today (the README, the tests and the released code before the registry): written out
#: here, not read from the table, so that renaming one fails.
ACKNOWLEDGED_IDS = {
    "batchFallbacksUnused", "capacityBlockGrace", "capacityBlockPrice", "capacityFallbacksUnused",
    "defaultSecurityGroupOpened", "efaOff", "fsxBucketKey", "jobImageUnchecked", "noAccessLogs", "noEfa",
    "noFsxPrice", "noModelServer", "noPrice", "placementGroupOff", "placementWithReservation",
    "presetFallbacksDropped", "publicWithoutTls", "publicWithoutWaf", "regionalArnInEnvAgnosticStack",
    "serverImageUnchecked", "singleAzFleet", "taskNetworkUnmanaged", "trainingTypeForServing",
    "unpinnedAvailabilityZones", "unverifiedAz", "warmupShorterThanStartup",
}


def _calls() -> list[tuple[str, ast.Call]]:
    """Every call of a function or method named ``warn`` or ``add_warning_v2`` in mlcdk/, with its file."""
    found = []
    for path in sorted((ROOT / "mlcdk").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Call):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
                if name in ("warn", "add_warning_v2"):
                    found.append((str(path.relative_to(ROOT)), node))
    return found


def _warn_calls() -> list[tuple[str, ast.Call]]:
    return [(path, call) for path, call in _calls() if path != "mlcdk/constructs/warning_registry.py"]


def test_the_table_holds_each_id_users_acknowledge_once():
    ids = [w.id for w in WARNINGS]
    assert len(ids) == len(set(ids))
    assert set(ids) == ACKNOWLEDGED_IDS


def test_every_entry_says_what_and_why():
    for entry in WARNINGS:
        assert entry.id[0].islower() and entry.id.isalnum(), entry.id  # mlcdk:camelCaseId
        assert entry.summary.endswith(".") and len(entry.summary) >= 20, entry.id
        assert entry.why[0].isupper() and entry.why.endswith(".") and len(entry.why) >= 40, entry.id
        assert "<" not in entry.summary + entry.why and "|" not in entry.summary + entry.why, entry.id  # a README table cell
        assert entry.template and not entry.template.endswith(" "), entry.id


def test_only_the_registry_calls_add_warning_v2():
    assert [(path, call.lineno) for path, call in _calls()
            if getattr(call.func, "attr", None) == "add_warning_v2"
            and path != "mlcdk/constructs/warning_registry.py"] == []


def test_every_call_site_names_a_table_id_with_exactly_its_placeholders():
    calls = _warn_calls()
    assert len(calls) >= 26
    for path, call in calls:
        where = f"{path}:{call.lineno}"
        assert len(call.args) == 2 and isinstance(call.args[1], ast.Constant), where  # warn(scope, "literalId", ...)
        entry = warning_registry.rule(call.args[1].value)
        assert all(k.arg is not None for k in call.keywords), where  # no **values: the names are checked here
        assert {k.arg for k in call.keywords} == entry.placeholders, where


def test_every_table_entry_is_raised_somewhere_in_mlcdk():
    used = {call.args[1].value for _, call in _warn_calls()}
    assert {w.id for w in WARNINGS} - used == set()


def test_warn_adds_the_prefixed_id_and_the_formatted_message():
    stack = cdk.Stack(cdk.App(), "Warned")
    warn(stack, "noPrice", instance_type="p5.48xlarge", region="eu-north-1")
    (found,) = Annotations.from_stack(stack).find_warning("/Warned", Match.any_value())
    assert found.entry.data == ("no catalog price for p5.48xlarge in eu-north-1: no cost metric, and the budget "
                                "needs monthly_budget_usd [ack: mlcdk:noPrice]")


def test_an_acknowledged_warning_is_not_reported():
    stack = cdk.Stack(cdk.App(), "Acked")
    cdk.Annotations.of(stack).acknowledge_warning("mlcdk:noAccessLogs", "no logs wanted in this test")
    warn(stack, "noAccessLogs")
    assert Annotations.from_stack(stack).find_warning("*", Match.any_value()) == []


def test_format_specs_in_a_template_apply():
    assert message("warmupShorterThanStartup", warmup_seconds=60.0, estimate="about 7 min").startswith(
        "scaling.warmup (60 s) is shorter than the model's estimated first start (about 7 min)")


def test_warn_refuses_an_unknown_id():
    stack = cdk.Stack(cdk.App(), "Unknown")
    with pytest.raises(KeyError, match="unknown mlcdk warning ID 'noPrices'"):
        warn(stack, "noPrices", instance_type="p5.48xlarge", region="us-east-1")
    with pytest.raises(KeyError, match="'mlcdk:noPrice'"):  # the ID goes without its prefix
        warn(stack, "mlcdk:noPrice", instance_type="p5.48xlarge", region="us-east-1")
    assert Annotations.from_stack(stack).find_warning("*", Match.any_value()) == []


def test_warn_refuses_a_missing_or_an_extra_value():
    stack = cdk.Stack(cdk.App(), "Values")
    with pytest.raises(TypeError, match="takes instance_type, region; missing: region; extra: none"):
        warn(stack, "noPrice", instance_type="p5.48xlarge")
    with pytest.raises(TypeError, match="missing: none; extra: nodes"):
        warn(stack, "noPrice", instance_type="p5.48xlarge", region="us-east-1", nodes=2)
    with pytest.raises(TypeError, match="takes no values; missing: none; extra: port"):
        warn(stack, "noAccessLogs", port=80)
    assert Annotations.from_stack(stack).find_warning("*", Match.any_value()) == []


def test_the_readme_lists_every_warning_as_the_table_says():
    current = readme_warnings.readme_block((ROOT / "README.md").read_text())
    assert current == readme_warnings.block(), "the README's warnings are stale: run `make warnings`"
    assert current.count("| `mlcdk:") == len(ACKNOWLEDGED_IDS)
    assert ("| `mlcdk:capacityBlockGrace` | A checkpoint grace period longer than a Capacity Block's warning leaves. "
            "| EC2 warns 40 minutes before a block's end") in current


def test_the_readme_check_fails_on_a_stale_list(tmp_path, monkeypatch):
    stale = (ROOT / "README.md").read_text().replace("| `mlcdk:noPrice` |", "| `mlcdk:noPrices` |")
    monkeypatch.setattr(readme_warnings, "README", tmp_path / "README.md")
    (tmp_path / "README.md").write_text(stale)
    assert readme_warnings.main(["--check"]) == 1
    assert readme_warnings.main([]) == 0
    assert readme_warnings.main(["--check"]) == 0
    assert "| `mlcdk:noPrice` |" in (tmp_path / "README.md").read_text()


def test_the_fleet_words_dropped_fallbacks_as_the_cluster_does():
    """One entry, one wording: the fleet's copy said "the preset's fallback types not used:", without the type
    (tests/constructs/test_training_cluster.py checks the cluster's)."""
    stack = cdk.Stack(cdk.App(context=cli_context()), "Eu", env=cdk.Environment(region="eu-west-1"))
    fleet = InferenceFleet(stack, "Fleet", preset="serving-nvidia", instance_type="g5.xlarge", engine="nodes")
    assert fleet.instance_types == ("g5.xlarge", "g5.2xlarge")
    (found,) = Annotations.from_stack(stack).find_warning("/Eu/Fleet", Match.string_like_regexp(".*fallback.*"))
    assert found.entry.data == ("preset fallback types not used with g5.xlarge: g6.2xlarge (it is not offered in "
                                "eu-west-1) [ack: mlcdk:presetFallbacksDropped]")
