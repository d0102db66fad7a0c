"""Training time: utilization from published runs by accelerator and model size, FSDP communication over the
node's links, the bound that dominates, and deadlines that add nodes. Every expected figure is worked by hand here
from the formula or from the published number, never read back from the advisor."""
from __future__ import annotations

import math

import pytest

from mlcdk import ConfigurationError
from mlcdk.advice import training_time
from mlcdk.advice.advisor import OVER_MAX_COST, OVER_MAX_DAYS, OVER_QUOTA, RANK_BY_JOB_COST, advise
from mlcdk.advice.estimates import training_flops
from mlcdk.presets import catalog
from mlcdk.presets.sizing import SizingRules, Workload

DAY = 86400
#: Dense bf16 peaks (datasheets): H100 989, L4 121, L40S 362.05, A100 312, Trainium 190, B200 2,250 TFLOPS.
H100, L4, A100, TRAINIUM = 989e12, 121e12, 312e12, 190e12


def h100_gpu_hours(params: float, tokens: float, utilization: float) -> float:
    return 6 * params * tokens / (H100 * utilization) / 3600


def h100_curve(params: float) -> float:
    """The H100 bf16 points worked from the Llama 3.1 card (13.9% at 8.03B, 25.5% at 70.6B), interpolated in
    log10(parameters): the figure every accelerator without its own runs uses."""
    share = math.log10(params / 8.03e9) / math.log10(70.6e9 / 8.03e9)
    return 0.139 + share * (0.255 - 0.139)


# --------------------------------------------------------------------------------------------
# Utilization by accelerator and model size, from published runs
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("params", "published_hours"), [
    # Llama 3.1 model card, "Training Time (GPU hours)" on H100-80GB, for about 15T tokens
    (8.03e9, 1.46e6), (70.6e9, 7.0e6), (405.85e9, 30.84e6)])
def test_h100_utilization_reproduces_metas_published_gpu_hours(params, published_hours):
    utilization, _ = training_time.utilization_for("H100", "bf16", params, SizingRules())
    assert h100_gpu_hours(params, 15e12, utilization) == pytest.approx(published_hours, rel=0.005)


@pytest.mark.parametrize(("params", "published_hours"), [
    # Llama 2 paper, Table 2: A100-80GB GPU hours for 2.0T tokens
    (6.74e9, 184_320), (13.0e9, 368_640), (69e9, 1_720_320)])
def test_a100_utilization_reproduces_the_llama_2_gpu_hours(params, published_hours):
    utilization, _ = training_time.utilization_for("A100", "bf16", params, SizingRules())
    assert 6 * params * 2e12 / (A100 * utilization) / 3600 == pytest.approx(published_hours, rel=0.005)


def test_small_models_are_no_longer_three_times_too_fast_on_h100():
    """Issue 24: at one 40% the estimates were 0.35x Meta's hours for 8B and 0.64x for 70B."""
    advice = advise(Workload(task="training", model="llama-3.1-8b", training_tokens="15T", regions="us-east-1",
                             accelerator="nvidia"))
    p5 = next(r for r in advice if r.instance_type == "p5.48xlarge")
    gpu_hours = p5.estimated_days * 24 * p5.devices
    assert gpu_hours == pytest.approx(1.46e6, rel=0.01)  # the model card's figure, not 0.35x of it


def test_between_published_sizes_the_table_interpolates_in_log_parameters():
    # H100 bf16: 13.9% at 8.03B and 25.5% at 70.6B; 13B sits log10(13/8.03)/log10(70.6/8.03) of the way
    share = math.log10(13e9 / 8.03e9) / math.log10(70.6e9 / 8.03e9)
    expected = 0.139 + share * (0.255 - 0.139)
    assert training_time.utilization_for("H100", "bf16", 13e9, SizingRules())[0] == pytest.approx(expected)
    # outside the published sizes the nearest point holds
    assert training_time.utilization_for("H100", "bf16", 1e9, SizingRules())[0] == pytest.approx(0.139)
    assert training_time.utilization_for("H100", "bf16", 2e12, SizingRules())[0] == pytest.approx(0.333)


def test_an_accelerator_without_its_own_runs_uses_the_h100_figures_and_says_so():
    value, basis = training_time.utilization_for("L4", "bf16", 70.6e9, SizingRules())
    assert value == pytest.approx(0.255) and "no published run for this device" in basis
    value, basis = training_time.utilization_for("H100", "fp8", 70.6e9, SizingRules())
    assert value == pytest.approx(719 / 1979, abs=5e-4)  # NeMo: 719 model TFLOPS per GPU of 1,979 at FP8


def test_mfu_overrides_the_table():
    workload = Workload(task="training", params="70B", training_tokens="1T", regions="us-east-1",
                        accelerator="trainium")
    top = advise(workload, rules=SizingRules(utilization=0.5))[0]
    assert (top.instance_type, top.nodes, top.utilization) == ("trn1.32xlarge", 3, 0.5)
    assert top.compute_days == pytest.approx(6 * 70e9 * 1e12 / (48 * TRAINIUM * 0.5) / DAY)
    with pytest.raises(ConfigurationError, match=r"^utilization \(1.5\)"):
        SizingRules(utilization=1.5)


# --------------------------------------------------------------------------------------------
# FSDP communication over the node's links
# --------------------------------------------------------------------------------------------


def test_sixteen_l4_nodes_on_40_gbit_are_network_bound_by_the_ring_formula():
    """Issue 24: 16 nodes of 4 x L4 on 40 Gbit/s got the same utilization as H100s on EFA."""
    workload = Workload(task="training", params="70B", training_tokens="1T", regions="us-east-1")
    spec = catalog.get("g6.12xlarge")
    plan = training_time.plan(spec, 16, training_flops(workload), workload, SizingRules())
    devices, bus = 64, 40e9 / 8  # 40 Gbit/s of network per node, below PCIe's 32 GB/s
    micro_batches = 1e12 / (devices * 4096)
    communication = micro_batches * 3 * 70e9 * 2 * (devices - 1) / devices / bus
    compute = 6 * 70e9 * 1e12 / (devices * L4 * h100_curve(70e9))
    assert plan.bound == training_time.NETWORK and plan.bus_gb_s == pytest.approx(5.0)
    assert plan.communication_seconds == pytest.approx(communication)
    assert plan.compute_seconds == pytest.approx(compute)
    assert plan.seconds == pytest.approx(max(compute, communication)) and communication > compute


def test_h100_nodes_on_efa_stay_compute_bound_with_nvlink_and_3200_gbit():
    workload = Workload(task="training", params="70B", training_tokens="1T")
    plan = training_time.plan(catalog.get("p5.48xlarge"), 3, training_flops(workload), workload, SizingRules())
    assert plan.bus_gb_s == pytest.approx(400)  # 3,200 Gbit/s of EFA per node, under NVLink's 450 GB/s each way
    assert plan.bound == training_time.COMPUTE
    assert plan.seconds == pytest.approx(6 * 70e9 * 1e12 / (24 * H100 * h100_curve(70e9)))


def test_inside_one_node_the_intra_node_link_carries_the_collectives():
    workload = Workload(task="training", params="7B", training_tokens="100B")
    plan = training_time.plan(catalog.get("g6.12xlarge"), 1, training_flops(workload), workload, SizingRules())
    assert plan.bus_gb_s == pytest.approx(32)  # PCIe 4.0 x16: 64 GB/s both ways
    expected = 100e9 / (4 * 4096) * 3 * 7e9 * 2 * 3 / 4 / 32e9
    assert plan.communication_seconds == pytest.approx(expected)
    assert training_time.plan(catalog.get("p5.4xlarge"), 1, training_flops(workload), workload,
                              SizingRules()).communication_seconds == 0  # one device: nothing to gather


def test_no_overlap_adds_the_communication_to_compute():
    workload = Workload(task="training", params="70B", training_tokens="1T")
    flops = training_flops(workload)
    full = training_time.plan(catalog.get("p5.48xlarge"), 3, flops, workload, SizingRules())
    none = training_time.plan(catalog.get("p5.48xlarge"), 3, flops, workload, SizingRules(communication_overlap=0))
    assert none.seconds == pytest.approx(full.compute_seconds + full.communication_seconds)


def test_network_bound_configurations_rank_after_h100s_for_70b():
    advice = advise(Workload(task="training", params="70B", training_tokens="1T", regions="us-east-1"))
    by_type = {r.instance_type: r for r in advice}
    assert by_type["g6.12xlarge"].bound == "network" and "network-bound" in by_type["g6.12xlarge"].reason
    assert by_type["g6.12xlarge"].estimated_job_cost_usd > 1.4 * by_type["p5.48xlarge"].estimated_job_cost_usd
    assert "network-bound: " in by_type["g6.12xlarge"].bound_detail
    assert any(note.startswith("network-bound or link-bound") for note in advice.notes)
    assert advice.ranking == RANK_BY_JOB_COST


@pytest.mark.parametrize(("name", "link", "gb_s"), [
    # the datasheets' both-ways figures halved: NVLink 900/600/300/1,800 GB/s per GPU; PCIe Gen4 x16 64, Gen3 32
    ("H100", "NVLink", 450), ("H200", "NVLink", 450), ("A100", "NVLink", 300), ("V100", "NVLink", 150),
    ("B200", "NVLink", 900), ("L4", "PCIe 4.0", 32), ("L40S", "PCIe 4.0", 32), ("A10G", "PCIe 4.0", 32),
    ("T4", "PCIe 3.0", 16), ("Trainium", "NeuronLink-v2", None), ("Trainium2", "NeuronLink-v3", None)])
def test_the_intra_node_link_is_a_sourced_catalog_fact(name, link, gb_s):
    from mlcdk.presets.precision import accelerator_throughputs

    figure = accelerator_throughputs()[name]
    assert figure.intra_node_link.startswith(link) and figure.intra_node_gb_s == gb_s
    assert figure.interconnect_source.startswith("https://")


# --------------------------------------------------------------------------------------------
# Deadlines and budgets
# --------------------------------------------------------------------------------------------


def test_a_deadline_adds_nodes_until_the_job_finishes_in_time():
    """Issue 24: 405B on 15T tokens in 60 days answered 'raise --max-days to 9786.2'."""
    workload = Workload(task="training", model="llama-3.1-405b", training_tokens="15T", max_days=60, max_nodes=2000,
                        regions="us-east-1")
    advice = advise(workload)
    assert advice and all(r.estimated_days <= 60 for r in advice)
    top = advice[0]
    assert top.instance_type == "p6-b200.48xlarge" and top.nodes > top.nodes_for_memory
    # by hand: B200 at 2,250 TFLOPS, 33.3% (no published B200 bf16 run: the H100 figure), compute-bound
    node_seconds = 6 * 405.85e9 * 15e12 / (8 * 2250e12 * 0.333)
    assert top.nodes == math.ceil(node_seconds / (60 * DAY))
    assert "to finish in 60 days" in top.reason


def test_an_unmeetable_deadline_says_how_many_nodes_would_meet_it():
    workload = Workload(task="training", model="llama-3.1-405b", training_tokens="15T", max_days=60, max_nodes=1000,
                        regions="us-east-1")
    advice = advise(workload, explain=True)
    assert len(advice) == 0
    b200 = next(e for e in advice.exclusions if e.instance_type == "p6-b200.48xlarge")
    needed = math.ceil(6 * 405.85e9 * 15e12 / (8 * 2250e12 * 0.333) / (60 * DAY))
    assert (b200.kind, b200.parameter, b200.alternative) == (OVER_MAX_DAYS, "max_nodes", needed)
    suggestion = advice.suggestion()
    assert (suggestion.parameter, suggestion.value) == ("max_nodes", needed)
    assert suggestion.message({"max_nodes": "--max-nodes"}).startswith(
        f"nothing finishes the job in 60 days on 1000 node(s); raise --max-nodes to {needed}")


def test_a_known_vcpu_quota_caps_the_nodes_and_says_what_quota_would_do():
    workload = Workload(task="training", params="70B", training_tokens="1T", regions="us-east-1",
                        accelerator="trainium", vcpu_quota=256, max_days=2000)
    advice = advise(workload, explain=True)
    trn = [e for e in advice.exclusions if e.instance_type == "trn1.32xlarge"]
    assert trn and trn[0].kind == OVER_QUOTA  # 3 nodes of 128 vCPUs need 384; the quota allows 2
    assert advice.suggestion().parameter == "vcpu_quota" and advice.suggestion().value == 384


def test_a_whole_job_budget_excludes_what_costs_more_and_names_the_budget_that_would_do():
    workload = Workload(task="training", params="70B", training_tokens="1T", regions="us-east-1",
                        accelerator="trainium")
    cheapest = advise(workload)[0].estimated_job_cost_usd
    tight = advise(Workload(task="training", params="70B", training_tokens="1T", regions="us-east-1",
                            accelerator="trainium", max_cost_usd=cheapest * 0.9), explain=True)
    assert len(tight) == 0 and {e.kind for e in tight.exclusions if e.instance_type == "trn1.32xlarge"} == {
        OVER_MAX_COST}
    suggestion = tight.suggestion()
    assert suggestion.parameter == "max_cost_usd" and suggestion.value == pytest.approx(cheapest, abs=0.01)
    loose = advise(Workload(task="training", params="70B", training_tokens="1T", regions="us-east-1",
                            accelerator="trainium", max_cost_usd=cheapest * 1.01))
    assert loose[0].estimated_job_cost_usd == pytest.approx(cheapest)


def test_the_deadline_search_is_a_bisection_not_a_scan():
    calls = []
    assert training_time._first_true(lambda n: calls.append(n) or n >= 123_456, 2, 10**7) == 123_456
    assert len(calls) < 30
