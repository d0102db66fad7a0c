"""The constructs take a team's own preset file, through the documented loader mlcdk.load_presets."""
from __future__ import annotations

import aws_cdk as cdk

from mlcdk import InferenceFleet, ModelOptions, TrainingCluster, load_presets
from tests.harness import cli_context, cdk_modules_loaded_by

TEAM = """
presets:
  team-finetune:
    description: our 7B fine-tune
    task: fine-tuning
    instance_type: g6e.12xlarge
    purchase_option: on-demand
    nodes: 2
    source: https://example.com/our-runbook
    reason: what our runs fit on
  team-serving:
    description: our 8B server
    task: inference
    instance_type: g6.xlarge
    purchase_option: on-demand
    min_capacity: 2
    max_capacity: 3
    source: https://example.com/our-runbook
    reason: cheapest that serves p99 under 1 s
"""


def test_a_preset_file_drives_both_constructs(tmp_path):
    path = tmp_path / "team.yaml"
    path.write_text(TEAM)
    presets = load_presets(path)
    stack = cdk.Stack(cdk.App(context=cli_context()), "Team", env=cdk.Environment(region="us-east-1"))
    cluster = TrainingCluster(stack, "Tune", preset=presets["team-finetune"])
    fleet = InferenceFleet(stack, "Serve", preset=presets["team-serving"],
                           model=ModelOptions(source="TinyLlama/TinyLlama-1.1B-Chat-v1.0"))
    assert (cluster.spec.instance_type, cluster.nodes) == ("g6e.12xlarge", 2)
    assert (fleet.spec.instance_type, fleet.min_capacity, fleet.max_capacity) == ("g6.xlarge", 2, 3)


def test_loading_presets_does_not_load_aws_cdk():
    assert cdk_modules_loaded_by("from mlcdk import load_presets") == []
