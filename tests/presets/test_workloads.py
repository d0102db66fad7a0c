"""Workload presets and AMIs: the curated table, and user preset files with clear errors."""
from __future__ import annotations

import json

import pytest

from mlcdk import ConfigurationError
from mlcdk.presets import catalog, workloads

BUILTIN = workloads.builtin_presets()


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_builtin_preset_is_deployable_somewhere_with_a_known_price(name):
    preset = BUILTIN[name]
    spec = catalog.get(preset.instance_type)
    priced = [r for r in spec.regions if spec.on_demand_price(r) is not None]
    assert priced, f"{name}: {preset.instance_type} has no priced region"
    assert preset.source.startswith("https://") and len(preset.reason) > 30
    assert workloads.machine_images()[preset.ami].problem_with(spec) is None
    if preset.purchase_option != "on-demand":
        assert spec.spot_supported
    for fallback in preset.fallback_instance_types:
        problem = workloads.fallback_problem(spec, catalog.get(fallback),
                                             same_accelerator_model=preset.task != "inference")
        assert problem is None, f"{name}: {fallback}: {problem}"
    if preset.task == "inference":
        assert 0 <= preset.min_capacity <= preset.max_capacity
    elif preset.nodes > 1:
        assert spec.efa_supported and spec.supports_placement("cluster"), f"{name}: multi-node needs EFA"


def test_the_table_covers_the_workloads_the_issue_names():
    by_type = {(p.task, p.instance_type) for p in BUILTIN.values()}
    assert ("training", "trn1.32xlarge") in by_type and BUILTIN["llm-pretrain-trainium"].nodes > 1
    assert ("training", "p5.48xlarge") in by_type
    assert {("fine-tuning", t) for t in ("trn1.2xlarge", "g6e.12xlarge", "g5.12xlarge")} <= by_type
    assert catalog.get(BUILTIN["llm-serving-inferentia2"].instance_type).family == "inf2"
    assert catalog.get(BUILTIN["serving-nvidia"].instance_type).family in ("g5", "g6")
    assert catalog.get(BUILTIN["cpu-inference"].instance_type).family == "c7g"
    assert "cv-training-nvidia" in BUILTIN


@pytest.mark.parametrize(("instance_type", "image"), [
    ("trn1.32xlarge", "neuron-dlami"), ("inf2.xlarge", "neuron-dlami"), ("p5.48xlarge", "nvidia-dlami"),
    ("g5g.xlarge", "nvidia-dlami-arm64"), ("c7g.xlarge", "al2023-arm64"), ("c7i.xlarge", "al2023"),
])
def test_default_ami_follows_accelerator_and_architecture(instance_type, image):
    assert workloads.default_machine_image(catalog.get(instance_type)).name == image


@pytest.mark.parametrize(("instance_type", "why"), [
    ("inf1.xlarge", "neuron-dlami: it no longer supports the inf1 family"),
    ("dl2q.24xlarge", "nvidia-dlami: it is for gpu instances, and dl2q.24xlarge is other"),
])
def test_types_without_a_catalog_ami_ask_for_machine_image(instance_type, why):
    with pytest.raises(ConfigurationError, match=rf"pass machine_image= explicitly .*{why}"):
        workloads.default_machine_image(catalog.get(instance_type))


@pytest.mark.parametrize(("primary", "fallback", "same_model", "problem"), [
    ("g5.12xlarge", "g5.48xlarge", True, None),
    ("g6.xlarge", "g5.xlarge", False, None),
    ("g6.xlarge", "g5.xlarge", True, "its accelerator is A10G, not L4"),
    ("g5.12xlarge", "g5.xlarge", True, "it has 22.3516 GiB of accelerator memory, less than 89.4062 GiB"),
    ("g5.xlarge", "inf2.xlarge", False, "its accelerator is AWS Inferentia2, not NVIDIA A10G"),
    ("c7g.xlarge", "c7i.xlarge", False, "it is x86_64, not arm64"),
    ("c7g.xlarge", "g5g.xlarge", False, "one has an accelerator and the other does not"),
])
def test_fallback_rules(primary, fallback, same_model, problem):
    assert workloads.fallback_problem(catalog.get(primary), catalog.get(fallback), same_accelerator_model=same_model) == problem


GOOD = {"description": "Mine", "task": "inference", "instance_type": "g6.xlarge", "purchase_option": "spot",
        "min_capacity": 0, "max_capacity": 3, "fallback_instance_types": ["g6.2xlarge"],
        "source": "https://example.com/capacity-plan", "reason": "Team serving plan"}


def test_user_presets_load_from_yaml_and_join_the_builtins(tmp_path):
    path = tmp_path / "presets.yaml"
    path.write_text("presets:\n  team-serving:\n" + "".join(f"    {k}: {json.dumps(v)}\n" for k, v in GOOD.items()))
    preset = workloads.get("team-serving", path)
    assert (preset.instance_type, preset.ami, preset.max_capacity) == ("g6.xlarge", "nvidia-dlami", 3)
    assert "llm-pretrain-trainium" in workloads.all_presets(path)


@pytest.mark.parametrize(("change", "message"), [
    ({"gpus": 4}, r"presets\['team'\]: unknown field 'gpus'; allowed: "),
    ({"max_capacity": "3"}, r"presets\['team'\]: field 'max_capacity' should be int, got '3'"),
    ({"instance_type": "g6.xlarg"}, r"presets\['team'\]: field 'instance_type' is invalid: .*did you mean 'g6.xlarge'"),
    ({"task": "serving"}, r"presets\['team'\]: field 'task' is 'serving'; allowed: training, fine-tuning, inference"),
    ({"purchase_option": "reserved"}, r"field 'purchase_option' is 'reserved'; allowed: on-demand, spot, mixed"),
    ({"min_capacity": 5}, r"field 'min_capacity' \(5\) exceeds max_capacity \(3\)"),
    ({"fallback_instance_types": ["c7g.xlarge"]}, r"field 'fallback_instance_types' lists c7g.xlarge, which cannot replace g6.xlarge"),
    ({"ami": "al2023-arm64"}, r"field 'ami' is 'al2023-arm64', which cannot run g6.xlarge: it is built for arm64"),
    ({"ami": "ubuntu"}, r"field 'ami' is 'ubuntu'; allowed: neuron-dlami, nvidia-dlami"),
    ({"alarms": {"low_utilisation": 5}}, r"presets\['team'\].alarms: unknown field 'low_utilisation'"),
])
def test_bad_user_preset_names_the_file_entry_and_field(tmp_path, change, message):
    path = tmp_path / "presets.json"
    path.write_text(json.dumps({"presets": {"team": {**GOOD, **change}}}))
    with pytest.raises(ConfigurationError, match=message) as error:
        workloads.load_presets(path)
    assert str(path) in str(error.value)


def test_missing_required_field_and_bad_syntax_are_named(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"presets": {"team": {k: v for k, v in GOOD.items() if k != "source"}}}))
    with pytest.raises(ConfigurationError, match=r"presets\['team'\]: missing field 'source'"):
        workloads.load_presets(path)
    bad_yaml = tmp_path / "p.yaml"
    bad_yaml.write_text("presets:\n  team: [unclosed\n")
    with pytest.raises(ConfigurationError, match=rf"{bad_yaml}: not valid YAML"):
        workloads.load_presets(bad_yaml)
    top = tmp_path / "top.json"
    top.write_text("[]")
    with pytest.raises(ConfigurationError, match="expected a top-level 'presets' mapping"):
        workloads.load_presets(top)


def test_user_preset_cannot_reuse_a_builtin_name(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"presets": {"serving-nvidia": GOOD}}))
    with pytest.raises(ConfigurationError, match=r"presets\['serving-nvidia'\]: a built-in preset already has this name"):
        workloads.all_presets(path)
