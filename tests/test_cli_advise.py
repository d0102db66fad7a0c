"""`mlcdk advise`: a table or JSON of the library's advice, deploy flags for the top pick, exit 2 when nothing fits."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from mlcdk.cli import app
from mlcdk.presets import catalog
from mlcdk.presets.advisor import advise
from mlcdk.presets.sizing import Workload
from mlcdk.settings import read_settings
from tests.harness import cdk_modules_loaded_by

runner = CliRunner()
PRICES_AS_OF = catalog.default_catalog().provenance.prices_as_of


def invoke(*args: str):
    return runner.invoke(app, ["advise", *args])


def one_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


def test_table_shows_the_top_pick_its_cost_and_the_price_date():
    result = invoke("--task", "training", "--params", "70B", "--region", "us-east-1", "--top", "3")
    assert result.exit_code == 0, result.output
    top = advise(Workload(task="training", params="70B", regions="us-east-1"))[0]
    assert top.instance_type in result.output and f"${top.hourly_cost_usd:,.2f}" in result.output
    assert f"Prices: on-demand, as of {PRICES_AS_OF}." in result.output
    assert "Memory: 1,251.7 GiB" in result.output  # 70e9 x 16 x 1.2 bytes
    assert "3 of " in result.output


def test_json_lists_the_top_recommendations_in_order():
    result = invoke("--task", "inference", "--model", "llama-3-8b", "--region", "us-west-2", "--top", "4", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    expected = advise(Workload(task="inference", model="llama-3-8b", regions="us-west-2"))
    assert [r["instance_type"] for r in document["recommendations"]] == [r.instance_type for r in expected[:4]]
    assert document["prices_as_of"] == PRICES_AS_OF and document["ranking"] == "hourly cost"
    assert document["memory"]["total_gib"] == pytest.approx(expected.memory.total_gib)
    assert document["fitting_configurations"] == len(expected) and "exclusions" not in document


def test_json_with_explain_includes_every_exclusion():
    result = invoke("--task", "training", "--params", "7B", "--region", "eu-west-1", "--json", "--explain")
    document = json.loads(result.output)
    catalog_size = len(catalog.default_catalog())
    assert document["fitting_configurations"] + len(document["exclusions"]) == catalog_size
    assert {"instance_type", "region", "kind", "reason"} <= set(document["exclusions"][0])


def test_explain_table_groups_exclusions_by_reason():
    result = invoke("--task", "lora", "--params", "7B", "--region", "us-east-1", "--explain")
    assert result.exit_code == 0, result.output
    for reason in ("inference-only", "unsupported accelerator", "fractional GPU", "accelerator preference"):
        assert reason in result.output


def test_tokens_rank_by_job_cost_and_show_days():
    result = invoke("--task", "training", "--params", "70B", "--region", "us-east-1", "--tokens", "1T",
                    "--accelerator", "trainium", "--json")
    top = json.loads(result.output)["recommendations"][0]
    seconds = 6 * 70e9 * 1e12 / (3 * 16 * 190e12 * 0.4)  # 3 trn1.32xlarge, 16 chips of 190 TFLOPS, 40%
    assert (top["instance_type"], top["nodes"]) == ("trn1.32xlarge", 3)
    assert top["estimated_days"] == pytest.approx(seconds / 86400)
    table = invoke("--task", "training", "--params", "70B", "--region", "us-east-1", "--tokens", "1T")
    assert "days" in table.output and "job $" in table.output and "cheapest job first" in table.output


def test_spot_ranks_at_spot_prices():
    document = json.loads(invoke("--task", "inference", "--params", "7B", "--region", "us-east-1", "--spot",
                                 "--json").output)
    top = document["recommendations"][0]
    assert top["price_kind"] == "spot"
    assert top["price_per_node_usd"] == catalog.get(top["instance_type"]).spot_price("us-east-1")


def test_regions_can_be_repeated_or_comma_separated():
    repeated = json.loads(invoke("--task", "inference", "--params", "7B", "--region", "eu-west-1", "--region",
                                 "us-west-2", "--top", "50", "--json").output)
    commas = json.loads(invoke("--task", "inference", "--params", "7B", "--region", "eu-west-1,us-west-2", "--top",
                               "50", "--json").output)
    assert repeated == commas
    assert {r["region"] for r in repeated["recommendations"]} == {"eu-west-1", "us-west-2"}


def test_emit_context_prints_the_deploy_flags_for_training():
    result = invoke("--task", "training", "--params", "70B", "--region", "us-east-1", "--emit-context")
    assert result.exit_code == 0, result.output
    top = advise(Workload(task="training", params="70B", regions="us-east-1"))[0]
    line = result.stdout.strip()
    assert line == (f"cdk deploy TrainingStack -c instance_type={top.instance_type} -c nodes={top.nodes} "
                    f"-c purchase_option=on-demand -c region=us-east-1 -c stacks=TrainingStack")
    context = dict(flag.split("=", 1) for flag in line.split(" -c ")[1:])
    settings = read_settings(context)  # the app accepts these flags as they are
    assert (settings.training.instance_type, settings.training.nodes) == (top.instance_type, top.nodes)


def test_emit_context_for_multi_node_spot_training_chooses_the_nodes_engine():
    """Batch runs multi-node jobs on demand only: spot training on several nodes needs -c engine=nodes."""
    result = invoke("--task", "training", "--params", "70B", "--region", "us-east-1", "--spot", "--emit-context")
    assert result.exit_code == 0, result.output
    top = advise(Workload(task="training", params="70B", regions="us-east-1", purchase_option="spot"))[0]
    assert top.nodes > 1
    context = dict(flag.split("=", 1) for flag in result.stdout.strip().split(" -c ")[1:])
    assert (context["purchase_option"], context["engine"]) == ("spot", "nodes")
    assert read_settings(context).engine == "nodes"  # accepted as it stands
    assert "warning" not in result.stderr


def test_emit_context_for_inference_targets_the_inference_stack():
    result = invoke("--task", "inference", "--model", "llama-3-8b", "--region", "us-east-1", "--emit-context")
    top = advise(Workload(task="inference", model="llama-3-8b", regions="us-east-1"))[0]
    assert result.stdout.strip() == (f"cdk deploy InferenceStack -c inference_instance_type={top.instance_type} "
                                     "-c inference_purchase_option=on-demand -c region=us-east-1 -c stacks=InferenceStack")
    context = dict(flag.split("=", 1) for flag in result.stdout.strip().split(" -c ")[1:])
    assert read_settings(context).inference.instance_type == top.instance_type


def test_emitted_inference_context_is_accepted_where_the_training_default_is_not_offered():
    result = invoke("--task", "inference", "--params", "7B", "--region", "eu-west-1", "--spot", "--emit-context")
    assert result.exit_code == 0, result.output
    context = dict(flag.split("=", 1) for flag in result.stdout.strip().split(" -c ")[1:])
    settings = read_settings(context)  # would fail on TrainingStack's trn1.32xlarge without stacks=InferenceStack
    assert settings.stacks == ("InferenceStack",) and settings.inference.purchase_option == "spot"
    assert "warning" not in result.stderr


def test_nothing_fits_exits_2_and_says_how_many_nodes_would():
    result = invoke("--task", "training", "--params", "70B", "--region", "us-east-1", "--accelerator", "trainium",
                    "--max-nodes", "2")
    assert result.exit_code == 2
    line = one_line(result)
    assert line.startswith("error: training 70B bf16 needs 1,251.7 GiB; nothing fits in 2 node(s); "
                           "raise --max-nodes to 3 (then: 3 x trn1.32xlarge in us-east-1")


def test_nothing_under_the_price_cap_exits_2_with_the_price_that_would_do():
    result = invoke("--task", "training", "--params", "7B", "--region", "us-east-1", "--max-price", "1")
    assert result.exit_code == 2
    cheapest = advise(Workload(task="training", params="7B", regions="us-east-1"))[0]
    line = one_line(result)
    assert f"is over the cap of $1.00/h; raise --max-price to " in line and cheapest.instance_type in line


@pytest.mark.parametrize(("args", "message"), [
    (["--task", "training", "--params", "7Q"], "params ('7Q') is not a count"),
    (["--task", "training", "--params", "-3B"], "params ('-3B') must be a positive"),
    (["--task", "training", "--params", "7B", "--precision", "bf17"], "precision ('bf17') must be one of"),
    (["--task", "training", "--params", "7B", "--region", "us-east-9"], "unknown region 'us-east-9'"),
    (["--task", "inference", "--model", "llama3-8b"], "did you mean 'llama-3-8b'"),
    (["--task", "pretraining", "--params", "7B"], "task ('pretraining') must be one of"),
    (["--task", "training", "--params", "7B", "--max-nodes", "0"], "max_nodes (0) must be"),
    (["--task", "training", "--params", "7B", "--max-price", "0"], "max_price_per_hour_usd (0.0) must be"),
    (["--task", "training", "--params", "7B", "--accelerator", "tpu"], "accelerator ('tpu') must be one of"),
    (["--task", "training"], "params or model is required"),
])
def test_bad_options_exit_2_with_one_line(args, message):
    result = invoke(*args)
    assert result.exit_code == 2
    line = one_line(result)
    assert line.startswith("error: ") and message in line


def test_advise_never_imports_aws_cdk():
    code = ("from typer.testing import CliRunner\nfrom mlcdk.cli import app\n"
            "runs = (['advise','--task','training','--params','70B','--explain'],\n"
            "        ['advise','--task','inference','--params','7B','--region','us-east-1','--emit-context'],\n"
            "        ['advise','--task','training','--params','70B','--max-nodes','1','--accelerator','trainium'])\n"
            "assert [CliRunner().invoke(app, args).exit_code for args in runs] == [0, 0, 2]\n")
    assert cdk_modules_loaded_by(code) == []


def test_console_script_advises():
    result = subprocess.run([sys.executable, "-m", "mlcdk.cli", "advise", "--task", "inference", "--params", "7B",
                             "--region", "us-east-1", "--json", "--top", "1"], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout)["recommendations"][0]["nodes"] == 1
