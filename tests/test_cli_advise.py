"""`mlcdk advise`: a table or JSON of the library's advice, deploy flags for the top pick, exit 2 with one line."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from mlcdk.advice.advisor import advise
from mlcdk.cli import app
from mlcdk.cli.advise import flags, headroom_fraction
from mlcdk.errors import ConfigurationError
from mlcdk.presets import catalog
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


def document(*args: str) -> dict:
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def context_of(line: str) -> dict[str, str]:
    return dict(flag.split("=", 1) for flag in line.strip().split(" -c ")[1:])


# --------------------------------------------------------------------------------------------
# Tables and JSON
# --------------------------------------------------------------------------------------------


def test_table_shows_the_top_pick_its_job_and_the_per_device_fit():
    result = invoke("--task", "training", "--params", "70B", "--region", "us-east-1", "--top", "3")
    assert result.exit_code == 0, result.output
    top = advise(Workload(task="training", params="70B", regions="us-east-1"))[0]
    assert top.instance_type in result.output and f"${top.hourly_cost_usd:,.2f}" in result.output
    assert f"{top.memory_needed_per_device_gib:,.1f}/{top.memory_per_device_gib:,.1f}" in result.output
    for words in ("cheapest job first", "days", "job $", "GiB/device need/cap", "in us-east-1",
                  f"Prices: on-demand, as of {PRICES_AS_OF}.", "Memory: 1,251.7 GiB",
                  "reference job of 20 tokens per parameter (1.4T tokens",
                  "at most 90% of each device's memory (--memory-headroom 10%"):
        assert words in result.output, words


def test_json_carries_the_per_device_need_and_capacity():
    doc = document("--task", "inference", "--model", "llama-3-8b", "--region", "us-west-2", "--top", "4", "--rank",
                   "hourly")
    expected = advise(Workload(task="inference", model="llama-3-8b", regions="us-west-2", rank_by="hourly"))
    assert [r["instance_type"] for r in doc["recommendations"]] == [r.instance_type for r in expected[:4]]
    assert doc["prices_as_of"] == PRICES_AS_OF and doc["ranking"] == "hourly cost"
    first = doc["recommendations"][0]
    assert first["memory_needed_per_device_gib"] == pytest.approx(expected.memory.total_gib / first["devices"])
    assert first["memory_per_device_gib"] == pytest.approx(22888 / 1024)  # an L4 or A10G: 22,888 MiB
    assert first["memory_limit_per_device_gib"] == pytest.approx(0.9 * 22888 / 1024)
    assert doc["workload"]["memory_headroom"] == 0.1 and "exclusions" not in doc


def test_json_with_explain_includes_every_exclusion():
    doc = document("--task", "training", "--params", "7B", "--region", "eu-west-1", "--explain")
    assert doc["fitting_configurations"] + len(doc["exclusions"]) == len(catalog.default_catalog())
    assert {"instance_type", "region", "kind", "reason"} <= set(doc["exclusions"][0])


def test_explain_table_shows_the_precision_exclusion_in_flag_words():
    result = invoke("--task", "training", "--params", "7B", "--region", "us-east-1", "--accelerator", "gpu",
                    "--explain", "--top", "1")
    assert result.exit_code == 0, result.output
    assert "precision unsupported" in result.output
    assert "M60 has no bf16; use" in result.output and "--precision fp32" in result.output


def test_tokens_show_days_and_dollars_for_those_tokens():
    doc = document("--task", "training", "--params", "70B", "--region", "us-east-1", "--tokens", "1T",
                   "--accelerator", "trainium")
    top = doc["recommendations"][0]
    # 3 trn1.32xlarge, 16 chips of 190 TFLOPS at Neuron's published utilization for 70B: 19.5% at 8.03B and
    # 28.3% at 70.6B, interpolated in log10(parameters)
    utilization = 0.195 + math.log10(70e9 / 8.03e9) / math.log10(70.6e9 / 8.03e9) * (0.283 - 0.195)
    seconds = 6 * 70e9 * 1e12 / (3 * 16 * 190e12 * utilization)
    assert (top["instance_type"], top["nodes"]) == ("trn1.32xlarge", 3)
    assert top["estimated_days"] == pytest.approx(seconds / 86400)
    assert doc["job_tokens"] == 1e12 and doc["reference_job"] is False and doc["ranking"] == "job cost"


def test_without_tokens_the_reference_job_is_named():
    result = invoke("--task", "fine-tuning", "--params", "7B", "--region", "us-east-1", "--top", "2")
    assert result.exit_code == 0, result.output
    assert "reference fine-tuning job of 79.88M tokens (Stanford Alpaca" in " ".join(result.output.split())
    training = invoke("--task", "training", "--params", "7B", "--region", "us-east-1", "--top", "2")
    assert "reference job of 20 tokens per parameter (140B tokens" in " ".join(training.output.split())


def test_rank_hourly_keeps_the_old_order_for_training():
    doc = document("--task", "training", "--params", "13B", "--region", "us-east-1", "--max-price", "50",
                   "--rank", "hourly", "--top", "50")
    hourly = [r["hourly_cost_usd"] for r in doc["recommendations"]]
    assert doc["ranking"] == "hourly cost" and hourly == sorted(hourly)
    job = document("--task", "training", "--params", "13B", "--region", "us-east-1", "--max-price", "50")
    assert job["ranking"] == "job cost" and job["recommendations"][0]["instance_type"] != \
        doc["recommendations"][0]["instance_type"]


def test_unknown_throughput_is_shown_as_n_a_and_said():
    result = invoke("--task", "training", "--params", "7B", "--region", "us-east-1", "--accelerator", "nvidia",
                    "--top", "40")
    assert result.exit_code == 0, result.output
    assert "n/a" in result.output and "no sourced throughput figure for A10G" in " ".join(result.output.split())


def test_max_days_keeps_what_finishes():
    doc = document("--task", "training", "--params", "7B", "--tokens", "100B", "--region", "us-east-1",
                   "--max-days", "30", "--top", "50")
    assert doc["recommendations"] and all(r["estimated_days"] <= 30 for r in doc["recommendations"])


def test_memory_headroom_takes_a_percent():
    spec = catalog.get("g6.2xlarge")
    params = str(0.91 * spec.accelerator.memory_mib_per_device * 2**20 / 2.2)  # 91% of one L4
    base = ("--task", "inference", "--params", params, "--region", "us-east-1", "--accelerator", "nvidia",
            "--top", "100")
    assert "g6.2xlarge" not in {r["instance_type"] for r in document(*base)["recommendations"]}
    for given in ("5", "5%", " 5 % "):
        fitted = {r["instance_type"]: r for r in document(*base, "--memory-headroom", given)["recommendations"]}
        assert fitted["g6.2xlarge"]["memory_utilization_pct"] == pytest.approx(91)


@pytest.mark.parametrize(("text", "fraction"), [("10", 0.1), ("10%", 0.1), ("0", 0.0), ("50", 0.5), ("0.5%", 0.005),
                                                ("12.5", 0.125)])
def test_headroom_percent_parsing(text, fraction):
    assert headroom_fraction(text) == pytest.approx(fraction)


@pytest.mark.parametrize(("text", "message"), [
    ("0.1", r"--memory-headroom \('0.1'\) is a percent, so 0.1 means 0.1%, not 10%; write 10 for 10%"),
    ("60", r"--memory-headroom \('60'\) must be a percent from 0 to 50"),
    ("-5", r"--memory-headroom \('-5'\) must be a percent"),
    ("ten", r"--memory-headroom \('ten'\) must be"),
    ("nan", r"--memory-headroom \('nan'\) must be"),
])
def test_bad_headroom_percents(text, message):
    with pytest.raises(ConfigurationError, match=message):
        headroom_fraction(text)


def test_baseline_adds_speed_up_and_cost_ratio_columns():
    result = invoke("--task", "training", "--params", "7B", "--precision", "fp16", "--region", "us-east-1",
                    "--baseline", "p3.2xlarge", "--top", "3")
    assert result.exit_code == 0, result.output
    assert "speed-up" in result.output and "cost ratio" in result.output
    assert "Baseline: p3.2xlarge (1x V100)" in result.output
    doc = document("--task", "training", "--params", "7B", "--precision", "fp16", "--region", "us-east-1",
                   "--baseline", "p3.2xlarge", "--top", "50")
    p5 = next(r for r in doc["recommendations"] if r["instance_type"] == "p5.48xlarge")
    assert p5["speedup_vs_baseline"] == pytest.approx(8 * 989 / 125)


def test_a_cpu_baseline_is_n_a_with_the_reason():
    result = invoke("--task", "training", "--params", "7B", "--region", "us-east-1", "--baseline", "m5a.large",
                    "--top", "2")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "n/a: m5a.large is CPU-only, and the catalog has no sourced CPU throughput figure" in text


def test_spot_ranks_at_spot_prices():
    top = document("--task", "inference", "--params", "7B", "--region", "us-east-1", "--spot")["recommendations"][0]
    assert top["price_kind"] == "spot"
    assert top["price_per_node_usd"] == catalog.get(top["instance_type"]).spot_price("us-east-1")


def test_multi_node_spot_shows_the_checkpoint_warning():
    result = invoke("--task", "training", "--params", "70B", "--region", "us-east-1", "--spot", "--top", "3",
                    "--accelerator", "trainium")
    assert result.exit_code == 0, result.output
    assert "Warning: spot on" in result.output and "losing one spot node stalls every node" in result.output


# --------------------------------------------------------------------------------------------
# Regions
# --------------------------------------------------------------------------------------------


def test_regions_can_be_repeated_or_comma_separated():
    repeated = document("--task", "inference", "--params", "7B", "--region", "eu-west-1", "--region", "us-west-2",
                        "--top", "50")
    commas = document("--task", "inference", "--params", "7B", "--region", "eu-west-1,us-west-2", "--top", "50")
    assert repeated == commas
    assert {r["region"] for r in repeated["recommendations"]} == {"eu-west-1", "us-west-2"}


def test_region_all_ranks_across_every_region_and_shows_each_picks_region():
    result = invoke("--task", "inference", "--params", "7B", "--region", "all", "--top", "5")
    assert result.exit_code == 0, result.output
    assert "across" in result.output and "region" in result.output
    doc = document("--task", "inference", "--params", "7B", "--region", "all", "--top", "200")
    assert len({r["region"] for r in doc["recommendations"]}) > 5
    assert doc["workload"]["regions"] == []


def test_emit_context_names_the_region_of_the_pick_across_regions():
    result = invoke("--task", "training", "--params", "70B", "--region", "us-west-2,us-east-1", "--emit-context")
    assert result.exit_code == 0, result.output
    top = advise(Workload(task="training", params="70B", regions="us-west-2,us-east-1"))[0]
    context = context_of(result.stdout)
    assert context["region"] == top.region and context["instance_type"] == top.instance_type
    assert read_settings(context).region == top.region


# --------------------------------------------------------------------------------------------
# --emit-context
# --------------------------------------------------------------------------------------------


def test_emit_context_prints_the_deploy_flags_for_training():
    result = invoke("--task", "training", "--params", "70B", "--region", "us-east-1", "--emit-context")
    assert result.exit_code == 0, result.output
    top = advise(Workload(task="training", params="70B", regions="us-east-1"))[0]
    line = result.stdout.strip()
    assert line.startswith(f"cdk deploy TrainingStack -c instance_type={top.instance_type} -c nodes={top.nodes} "
                           "-c purchase_option=on-demand")
    assert line.endswith("-c region=us-east-1 -c stacks=TrainingStack")
    settings = read_settings(context_of(line))  # the app accepts these flags as they are
    assert (settings.training.instance_type, settings.training.nodes) == (top.instance_type, top.nodes)


def test_emit_context_for_multi_node_spot_training_warns_and_chooses_the_nodes_engine():
    result = invoke("--task", "training", "--params", "70B", "--region", "us-east-1", "--spot", "--emit-context",
                    "--accelerator", "trainium")
    assert result.exit_code == 0, result.output
    top = advise(Workload(task="training", params="70B", regions="us-east-1", purchase_option="spot",
                          accelerator="trainium"))[0]
    assert top.nodes > 1
    context = context_of(result.stdout)
    assert (context["purchase_option"], context["engine"]) == ("spot", "nodes")
    assert read_settings(context).engine == "nodes"  # accepted as it stands
    assert result.stderr.startswith(f"warning: spot on {top.nodes} nodes: losing one spot node stalls every node")
    assert "heckpoint" in result.stderr and "rejects" not in result.stderr


def test_emit_context_for_inference_targets_the_inference_stack():
    result = invoke("--task", "inference", "--model", "llama-3-8b", "--region", "us-east-1", "--emit-context")
    top = advise(Workload(task="inference", model="llama-3-8b", regions="us-east-1"))[0]
    assert result.stdout.strip() == (f"cdk deploy InferenceStack -c inference_instance_type={top.instance_type} "
                                     "-c inference_purchase_option=on-demand -c region=us-east-1 -c stacks=InferenceStack")
    assert read_settings(context_of(result.stdout)).inference.instance_type == top.instance_type


def test_json_with_emit_context_is_an_error():
    result = invoke("--task", "inference", "--params", "7B", "--json", "--emit-context")
    assert result.exit_code == 2
    assert one_line(result).startswith("error: --json and --emit-context cannot be combined")


# --------------------------------------------------------------------------------------------
# Nothing fits
# --------------------------------------------------------------------------------------------


def test_nothing_fits_exits_2_and_says_how_many_nodes_would():
    result = invoke("--task", "training", "--params", "70B", "--region", "us-east-1", "--accelerator", "trainium",
                    "--max-nodes", "2")
    assert result.exit_code == 2
    assert one_line(result).startswith("error: training 70B bf16 needs 1,251.7 GiB; nothing fits in 2 node(s); "
                                       "raise --max-nodes to 3 (then: 3 x trn1.32xlarge in us-east-1")


def test_nothing_under_the_price_cap_exits_2_with_the_price_that_would_do():
    result = invoke("--task", "training", "--params", "7B", "--region", "us-east-1", "--max-price", "1",
                    "--rank", "hourly")
    assert result.exit_code == 2
    cheapest = advise(Workload(task="training", params="7B", regions="us-east-1", rank_by="hourly"))[0]
    line = one_line(result)
    assert "is over the cap of $1.00/h; raise --max-price to " in line and cheapest.instance_type in line


def test_a_precision_no_accelerator_runs_suggests_one_that_does():
    result = invoke("--task", "inference", "--params", "7B", "--region", "us-east-1", "--accelerator", "cpu",
                    "--precision", "fp8")
    assert result.exit_code == 2
    line = one_line(result)  # no source says any CPU runs fp8; Graviton3 and Intel AMX run int8
    assert "runs fp8" in line and "set --precision int8" in line


def test_nothing_finishing_in_time_suggests_the_nodes_that_would_do():
    result = invoke("--task", "training", "--params", "70B", "--tokens", "1T", "--region", "us-east-1",
                    "--max-days", "1")
    assert result.exit_code == 2
    assert "nothing finishes the job in 1 days on 64 node(s); raise --max-nodes to" in one_line(result)
    capped = invoke("--task", "training", "--params", "70B", "--tokens", "1T", "--region", "us-east-1",
                    "--max-days", "1", "--accelerator", "cpu", "--precision", "fp32")
    assert capped.exit_code == 2 and one_line(capped).startswith("error: ")


# --------------------------------------------------------------------------------------------
# Bad input: one line, exit 2, the flag's name
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "message"), [
    (["--task", "training", "--params", "7Q"], "--params ('7Q') is not a count"),
    (["--task", "training", "--params", "-3B"], "--params ('-3B') must be a positive"),
    (["--task", "training", "--params", "1e40"], "--params ('1e40') is over the maximum of 1e15"),
    (["--task", "training", "--params", "7B", "--precision", "bf17"], "--precision ('bf17') must be one of"),
    (["--task", "training", "--params", "7B", "--region", "us-east-9"], "--region: unknown region 'us-east-9'"),
    (["--task", "training", "--params", "7B", "--region", ""], "--region ('') must be region names"),
    (["--task", "training", "--params", "7B", "--region", "   "], "--region ('   ') must be region names"),
    (["--task", "training", "--params", "7B", "--region", "us-east-1,"], "--region ('us-east-1,') must be"),
    (["--task", "training", "--params", "7B", "--region", "all,us-east-1"], "'all' already means every region"),
    (["--task", "inference", "--model", "llama3-8b"], "--model: unknown model 'llama3-8b'; did you mean 'llama-3-8b'"),
    (["--task", "pretraining", "--params", "7B"], "--task ('pretraining') must be one of"),
    (["--task", "training", "--params", "7B", "--max-nodes", "0"], "--max-nodes (0) must be"),
    (["--task", "training", "--params", "7B", "--max-price", "0"], "--max-price (0.0) must be"),
    (["--task", "training", "--params", "7B", "--max-price", "nan"], "--max-price (nan) must be"),
    (["--task", "training", "--params", "7B", "--max-price", "inf"], "--max-price (inf) must be"),
    (["--task", "training", "--params", "7B", "--accelerator", "tpu"], "--accelerator ('tpu') must be one of"),
    (["--task", "training"], "--params or --model is required"),
    (["--task", "training", "--params", "7B", "--tokens", "lots"], "--tokens ('lots') is not a count"),
    (["--task", "inference", "--params", "7B", "--tokens", "1T"], "--tokens ('1T') applies to training tasks"),
    (["--task", "inference", "--model", "llama-3-8b", "--context-tokens", "99999"],
     "--context-tokens (99999) exceeds llama-3-8b's maximum context"),
    (["--task", "training", "--params", "7B", "--context-tokens", "4096"], "--context-tokens (4096) applies to"),
    (["--task", "inference", "--params", "7B", "--sequences", "0"], "--concurrency (0) must be a whole number"),
    (["--task", "training", "--params", "7B", "--rank", "weekly"], "--rank ('weekly') must be one of job, tokens, "
                                                                   "hourly"),
    (["--task", "training", "--params", "7B", "--mfu", "0.4"], "--mfu ('0.4') is a percent, so 0.4 means 0.4%"),
    (["--task", "training", "--params", "7B", "--mfu", "101"], "--mfu ('101') must be a percent from 0 to 100"),
    (["--task", "training", "--params", "7B", "--max-cost", "0"], "--max-cost (0.0) must be a number above 0"),
    (["--task", "inference", "--params", "7B", "--max-cost", "10"], "--max-cost (10.0) applies to training"),
    (["--task", "training", "--params", "7B", "--vcpu-quota", "0"], "--vcpu-quota (0) must be a whole number"),
    (["--task", "training", "--params", "7B", "--lora-rank", "8"], "--lora-rank (8) applies to lora"),
    (["--task", "lora", "--params", "7B", "--lora-rank", "0"], "--lora-rank (0) must be a whole number"),
    (["--task", "training", "--params", "7B", "--concurrency", "8"], "--concurrency (8) applies to --task "
                                                                     "inference and batch-inference only"),
    (["--task", "inference", "--model", "llama-3-8b", "--input-tokens", "9000"],
     "--context-tokens (9128) exceeds llama-3-8b's maximum context"),
    (["--task", "inference", "--model", "nobody/none"], "--model ('nobody/none') is not a known model"),
    (["--task", "inference", "--model", "a" * 300], "--model: unknown model 'aaaaaaaa"),  # longer than a file name
    (["--task", "inference", "--model", "org/" + "a" * 300], "(304 characters); "),  # shown bounded, not whole
    (["--task", "inference", "--params", "7B", "--rank", "job"], "--rank ('job') ranks training tasks"),
    (["--task", "training", "--params", "7B", "--max-days", "0"], "--max-days (0.0) must be a number above 0"),
    (["--task", "training", "--params", "7B", "--max-days", "nan"], "--max-days (nan) must be"),
    (["--task", "inference", "--params", "7B", "--max-days", "3"], "--max-days (3.0) applies to training tasks"),
    (["--task", "training", "--params", "7B", "--memory-headroom", "0.1"], "--memory-headroom ('0.1') is a percent"),
    (["--task", "training", "--params", "7B", "--memory-headroom", "51"], "--memory-headroom ('51') must be a percent"),
    (["--task", "training", "--params", "7B", "--baseline", "m5a.larg"], "--baseline: unknown instance type 'm5a.larg'"),
])
def test_bad_options_exit_2_with_one_line_naming_the_flag(args, message):
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    line = one_line(result)
    assert line.startswith("error: ") and message in line, line


@pytest.mark.parametrize(("args", "message"), [
    (["advise", "--bogus"], "error: No such option: --bogus"),
    (["advise", "--task", "training", "--params", "7B", "--max-nodes", "x"], "error: Invalid value for '--max-nodes'"),
    (["advise", "--task", "training", "--params", "7B", "--top", "0"], "error: Invalid value for '--top'"),
    (["advise", "--params", "7B"], "error: Missing option '--task'"),
    (["advise", "--task"], "error: Option '--task' requires an argument"),
    (["catalog", "show"], "error: Missing argument"),
    (["catalog", "list", "--nope"], "error: No such option: --nope"),
    (["nope"], "error: No such command 'nope'"),
])
def test_usage_errors_print_one_line_on_stderr_for_every_command(args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    line = one_line(result)
    assert line.startswith(message), line
    assert "╭" not in result.output and "Usage:" not in result.output
    assert result.stdout == ""


def test_a_usage_error_from_the_console_script_is_one_line_on_stderr():
    result = subprocess.run([sys.executable, "-m", "mlcdk.cli", "advise", "--bogus"], capture_output=True, text=True)
    assert result.returncode == 2 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: No such option: --bogus; see '") and line.endswith(" advise --help'")


def test_flags_are_plain_in_the_help():
    result = invoke("--help")
    assert result.exit_code == 0
    assert "<bool>" not in result.output
    for flag in ("--json", "--spot", "--explain", "--emit-context", "--memory-headroom", "--rank", "--max-days",
                 "--baseline", "--context-tokens"):
        assert flag in result.output, flag


def test_gpu_means_nvidia():
    gpu = document("--task", "inference", "--params", "7B", "--region", "us-east-1", "--accelerator", "gpu",
                   "--top", "100")
    nvidia = document("--task", "inference", "--params", "7B", "--region", "us-east-1", "--accelerator", "nvidia",
                      "--top", "100")
    assert gpu["recommendations"] == nvidia["recommendations"] and gpu["workload"]["accelerator"] == "nvidia"


def test_the_issues_reproductions():
    seven = document("--task", "training", "--params", "7B", "--region", "us-east-1", "--accelerator", "nvidia",
                     "--top", "100")
    assert not any(r["accelerator"].endswith((" T4", " V100", " T4g")) for r in seven["recommendations"])
    fp8 = document("--task", "inference", "--model", "llama-3-70b", "--precision", "fp8", "--region", "us-east-1",
                   "--top", "100")
    assert fp8["recommendations"] and all(r["precision_support"] == "weight-only" for r in fp8["recommendations"]
                                          if "A10G" in r["accelerator"] or "A100" in r["accelerator"])
    int4 = document("--task", "inference", "--model", "mixtral-8x7b", "--precision", "int4", "--region", "us-east-1",
                    "--top", "100")
    assert int4["recommendations"] and not any(r["instance_type"] == "inf2.xlarge" for r in int4["recommendations"])
    for args in (["--params", "1e40"], ["--params", "7B", "--region", ""]):
        result = invoke("--task", "training", *args)
        assert result.exit_code == 2 and one_line(result).startswith("error: --")


def test_flag_words_replace_field_names():
    assert flags("max_price_per_hour_usd (0.0) must be a number above 0") == "--max-price (0.0) must be a number above 0"
    assert flags("regions: unknown region 'x'") == "--region: unknown region 'x'"
    assert flags("T4 has no bf16; use precision fp16") == "T4 has no bf16; use --precision fp16"
    assert flags("context_tokens (9) exceeds") == "--context-tokens (9) exceeds"
    assert flags("the weights of the model") == "the weights of the model"


# --------------------------------------------------------------------------------------------
# Purity and the console script
# --------------------------------------------------------------------------------------------


def test_advise_never_imports_aws_cdk():
    code = ("from typer.testing import CliRunner\nfrom mlcdk.cli import app\n"
            "runs = (['advise','--task','training','--params','70B','--explain','--baseline','p3.2xlarge'],\n"
            "        ['advise','--task','inference','--params','7B','--region','us-east-1','--emit-context'],\n"
            "        ['advise','--task','training','--params','70B','--max-nodes','1','--accelerator','trainium'],\n"
            "        ['advise','--bogus'])\n"
            "assert [CliRunner().invoke(app, args).exit_code for args in runs] == [0, 0, 2, 2]\n")
    assert cdk_modules_loaded_by(code) == []


def test_console_script_advises():
    result = subprocess.run([sys.executable, "-m", "mlcdk.cli", "advise", "--task", "inference", "--params", "7B",
                             "--region", "us-east-1", "--json", "--top", "1"], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout)["recommendations"][0]["nodes"] == 1


# --------------------------------------------------------------------------------------------
# Issue 24: what the table shows
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("days", "text"), [(None, "n/a"), (30 / 1440, "30 min"), (0.1 / 1440, "<1 min"),
                                            (5.5 / 24, "5.5 h"), (1.5, "36.0 h"), (2.0, "2.0 days"),
                                            (1234.56, "1,234.6 days")])
def test_times_read_in_minutes_and_hours_when_small(days, text):
    from mlcdk.cli.advise_table import duration

    assert duration(days) == text


@pytest.mark.parametrize(("usd", "text"), [(None, "n/a"), (0.0042, "0.42¢"), (0.758, "75.8¢"), (21.01, "$21.01"),
                                           (2_919_146.2, "$2,919,146")])
def test_costs_read_in_cents_when_small(usd, text):
    from mlcdk.cli.advise_table import usd as format_usd

    assert format_usd(usd) == text


def test_a_short_job_shows_minutes_and_dollars_and_cents_not_zero():
    """Issue 24: small jobs printed "0.0 days, $0"."""
    result = invoke("--task", "fine-tuning", "--params", "7B", "--region", "us-east-1", "--top", "1")
    assert result.exit_code == 0, result.output
    top = advise(Workload(task="fine-tuning", params="7B", regions="us-east-1"))[0]
    assert top.estimated_days < 1 / 24  # under an hour: Alpaca's 79.9M tokens on 8 A100s
    assert f"{top.estimated_days * 1440:,.0f} min" in result.output
    assert f"${top.estimated_job_cost_usd:,.2f}" in result.output and "0.0 days" not in result.output


def test_explain_says_network_bound():
    result = invoke("--task", "training", "--params", "70B", "--tokens", "1T", "--region", "us-east-1",
                    "--accelerator", "nvidia", "--max-price", "80", "--explain")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "Bound #1 (16 x g6.12xlarge): network-bound:" in text and "(the nodes' 40 Gbit/s network)" in text


def test_serving_shows_tokens_per_second_and_cost_per_million_tokens():
    doc = document("--task", "inference", "--model", "meta-llama/Llama-3.1-8B-Instruct", "--concurrency", "32",
                   "--region", "us-east-1", "--top", "3")
    assert doc["ranking"] == "cost per million output tokens" and doc["workload"]["model"] == "llama-3.1-8b"
    top = doc["recommendations"][0]
    assert top["cost_per_million_tokens_usd"] == pytest.approx(
        top["hourly_cost_usd"] / (top["tokens_per_second"] * 3600) * 1e6)
    result = invoke("--task", "inference", "--model", "llama-3.1-8b", "--concurrency", "32", "--region", "us-east-1",
                    "--top", "3")
    assert "tokens/s" in result.output and "$/M tokens" in result.output


def test_a_whole_job_budget_is_shown_against_the_top_pick():
    result = invoke("--task", "training", "--params", "7B", "--region", "us-east-1", "--max-cost", "100000",
                    "--top", "1")
    assert result.exit_code == 0, result.output
    assert "of the $100,000 allowed for the whole job (--max-cost)" in " ".join(result.output.split())


def test_mfu_and_micro_batch_tokens_reach_the_rules():
    doc = document("--task", "training", "--params", "70B", "--tokens", "1T", "--region", "us-east-1",
                   "--accelerator", "trainium", "--mfu", "50%")
    top = doc["recommendations"][0]
    assert top["utilization"] == 0.5
    assert top["compute_days"] == pytest.approx(6 * 70e9 * 1e12 / (48 * 190e12 * 0.5) / 86400)
    lora = document("--task", "lora", "--model", "llama-65b", "--precision", "int4", "--lora-rank", "64",
                    "--micro-batch-tokens", "2112", "--region", "us-east-1", "--accelerator", "nvidia")
    assert lora["memory"]["total_gib"] == pytest.approx(
        (65.2e9 * (0.5 + 0.127 / 8) + 799_539_200 * 4 + 2112 * 8192 * (2 * 80 + 34)) / 2**30)
