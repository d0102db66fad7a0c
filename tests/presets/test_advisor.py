"""The advisor: the top pick is the cheapest fit in the whole catalog, checked against a brute-force search."""
from __future__ import annotations

import dataclasses
import json
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlcdk import ConfigurationError
from mlcdk.presets import advisor, catalog, workloads
from mlcdk.presets.advisor import advise
from mlcdk.presets.catalog import Catalog, RegionPrice
from mlcdk.presets.sizing import DATA_DIR, Workload
from tests.harness import cdk_modules_loaded_by

CATALOG = catalog.default_catalog()
REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
SIZES = {"1B": 1e9, "7B": 7e9, "13B": 13e9, "70B": 70e9, "405B": 405e9}
TASKS = ("training", "fine-tuning", "lora", "inference")
PREFERENCES = ("any", "trainium", "inferentia", "nvidia", "cpu")
TFLOPS = {name: entry["dense_bf16_tflops"]
          for name, entry in json.loads((DATA_DIR / "accelerators.json").read_text())["accelerators"].items()}


# --------------------------------------------------------------------------------------------
# An independent brute force: every (type, region, node count) in the catalog, by the documented rules
# --------------------------------------------------------------------------------------------


def need_bytes(task: str, params: float, precision: str = "bf16") -> float:
    per_param = {"fp32": 4, "bf16": 2, "fp16": 2, "fp8": 1, "int8": 1, "int4": 0.5}[precision]
    if task in ("training", "fine-tuning"):
        return params * 16 * 1.2
    if task == "lora":
        return (params * per_param + params * 0.02 * 16) * 1.2
    return params * per_param * 1.1  # a bare count: no KV cache


def node_bytes(spec) -> int:
    if spec.accelerator is None:
        return spec.memory_mib * 2**20
    return spec.accelerator.count * (spec.accelerator.memory_mib_per_device or 0) * 2**20


def eligible(spec, task: str, preference: str, needs_tflops: bool) -> bool:
    acc = spec.accelerator
    if acc is None:
        return preference == "cpu" and not needs_tflops and _deployable(spec)
    if preference == "cpu" or acc.kind == "other" or acc.count == 0:
        return False
    if task != "inference" and acc.name.startswith("Inferentia"):
        return False
    wanted = {"any": True, "trainium": acc.name.startswith("Trainium"),
              "inferentia": acc.name.startswith("Inferentia"), "nvidia": acc.manufacturer == "NVIDIA"}[preference]
    return wanted and _deployable(spec) and (not needs_tflops or acc.name in TFLOPS)


def _deployable(spec) -> bool:
    try:
        workloads.default_machine_image(spec)
    except ConfigurationError:
        return False
    return True


def brute_force(workload: Workload, need: float) -> list[tuple[float, str, str, int]]:
    """Every fitting (cost, type, region, nodes), with cost per hour or per job."""
    spot = workload.purchase_option == "spot"
    flops = None if workload.training_tokens is None else 6 * workload.params * workload.training_tokens
    found = []
    for spec in CATALOG:
        if not eligible(spec, workload.task, workload.accelerator, flops is not None):
            continue
        for region in workload.regions:
            if region not in spec.offerings or (spot and "spot" not in spec.usage_classes):
                continue
            prices = spec.prices.get(region)
            if prices is None:
                continue
            price = (min(prices.spot_by_az.values()) if prices.spot_by_az else None) if spot else prices.on_demand
            if price is None:
                continue
            for nodes in range(1, workload.max_nodes + 1):
                if nodes > 1 and (workload.task == "inference" or not spec.efa_supported):
                    break
                if nodes * node_bytes(spec) >= need:
                    hourly = nodes * price
                    if workload.max_price_per_hour_usd is None or hourly <= workload.max_price_per_hour_usd:
                        cost = hourly
                        if flops is not None:
                            device_flops = spec.accelerator.count * TFLOPS[spec.accelerator.name] * 1e12
                            cost = hourly * flops / (nodes * device_flops * 0.4) / 3600
                        found.append((cost, spec.instance_type, region, nodes))
                    break
    return found


def check_top_is_cheapest(workload: Workload) -> None:
    need = need_bytes(workload.task, workload.params, workload.precision)
    advice = advise(workload)
    assert advice.memory.total_bytes == pytest.approx(need)
    expected = brute_force(workload, need)
    if not expected:
        assert len(advice) == 0, f"{workload}: advisor found {advice[0]}, brute force found nothing"
        return
    assert len(advice) == len(expected), workload
    best = min(cost for cost, *_ in expected)
    top = advice[0]
    score = top.estimated_job_cost_usd if workload.training_tokens else top.hourly_cost_usd
    assert score == pytest.approx(best, rel=1e-9), workload
    ties = {(name, region, nodes) for cost, name, region, nodes in expected if cost == pytest.approx(best, rel=1e-9)}
    assert (top.instance_type, top.region, top.nodes) in ties, workload


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("size", sorted(SIZES))
def test_top_recommendation_is_the_cheapest_fit_in_the_catalog(size, task):
    for region in REGIONS:
        for purchase in ("on-demand", "spot"):
            for preference in PREFERENCES:
                if preference == "inferentia" and task != "inference":
                    continue
                check_top_is_cheapest(Workload(task=task, params=size, regions=region, purchase_option=purchase,
                                               accelerator=preference))


@pytest.mark.parametrize("size", ["1B", "7B", "70B", "405B"])
def test_top_recommendation_under_limits_is_the_cheapest_fit(size):
    for region in REGIONS:
        for max_nodes, max_price in ((1, None), (4, None), (8, 60.0), (64, 5.0)):
            for task in ("training", "inference"):
                check_top_is_cheapest(Workload(task=task, params=size, regions=(region, "us-east-2"),
                                               max_nodes=max_nodes, max_price_per_hour_usd=max_price))


@pytest.mark.parametrize("preference", ["any", "trainium", "nvidia"])
def test_with_training_tokens_the_top_pick_has_the_cheapest_job(preference):
    for size in ("1B", "7B", "70B"):
        for region in REGIONS:
            check_top_is_cheapest(Workload(task="training", params=size, training_tokens="1T", regions=region,
                                           accelerator=preference))


# --------------------------------------------------------------------------------------------
# Known answers
# --------------------------------------------------------------------------------------------


def test_full_training_of_70b_in_bf16_needs_multiple_nodes_of_the_usual_types():
    advice = advise(Workload(task="training", params="70B", regions="us-east-1"))
    assert advice.memory.total_bytes == pytest.approx(1.344e12)
    assert advice[0].nodes > 1 and advice[0].efa
    for recommendation in advice:
        assert recommendation.memory_available_gib * 2**30 >= 1.344e12
        if recommendation.nodes == 1:  # only the largest nodes hold 1.25 TiB: B200, B300 or Trainium2
            assert recommendation.accelerator.split("x ")[1] in ("B200", "B300", "Trainium2")


def test_seven_billion_in_bf16_is_served_by_one_24_gb_gpu():
    advice = advise(Workload(task="inference", params="7B", regions="us-east-1", accelerator="nvidia"))
    by_type = {r.instance_type: r for r in advice}
    assert by_type["g5.xlarge"].nodes == 1 and by_type["g6.xlarge"].nodes == 1
    assert all(r.nodes == 1 for r in advice)


def test_seventy_billion_on_trainium_needs_three_trn1_nodes():
    advice = advise(Workload(task="training", params="70B", regions="us-east-1", accelerator="trainium"))
    assert (advice[0].instance_type, advice[0].nodes) == ("trn1.32xlarge", 3)  # 1,251.7 GiB over 512 GiB nodes
    assert advice[0].hourly_cost_usd == pytest.approx(3 * 21.5)
    assert advice[0].monthly_cost_usd == pytest.approx(3 * 21.5 * 730)


def test_job_estimate_follows_flops_over_the_dense_peak_at_40_percent():
    advice = advise(Workload(task="training", params="70B", training_tokens="1T", regions="us-east-1",
                             accelerator="trainium"))
    top = advice[0]
    seconds = 6 * 70e9 * 1e12 / (3 * 16 * 190e12 * 0.4)
    assert (top.instance_type, top.nodes) == ("trn1.32xlarge", 3)
    assert top.estimated_days == pytest.approx(seconds / 86400)
    assert top.estimated_job_cost_usd == pytest.approx(3 * 21.5 * seconds / 3600)
    assert advice.ranking == advisor.RANK_BY_JOB_COST


def test_trainium_may_serve_and_inferentia_never_trains():
    served = {r.instance_type for r in advise(Workload(task="inference", model="llama-3-8b", regions="us-east-1"))}
    assert "trn1.2xlarge" in served and "inf2.xlarge" in served
    training = advise(Workload(task="lora", params="7B", regions="us-east-1"), explain=True)
    assert not any(r.instance_type.startswith("inf") for r in training)
    kinds = {e.kind for e in training.exclusions if e.instance_type == "inf2.xlarge"}
    assert kinds == {advisor.INFERENCE_ONLY}


# --------------------------------------------------------------------------------------------
# Exclusions, explained
# --------------------------------------------------------------------------------------------


def exclusions_of(advice, instance_type):
    return [e for e in advice.exclusions if e.instance_type == instance_type]


def test_explain_says_why_each_candidate_was_left_out():
    advice = advise(Workload(task="training", params="70B", regions="us-east-1", max_nodes=4,
                             max_price_per_hour_usd=60), explain=True)
    assert len(advice) + len(advice.exclusions) == len(CATALOG)  # one verdict per type in the one region
    kind = {e.instance_type: e for e in advice.exclusions}
    assert kind["f2.48xlarge"].kind == advisor.UNSUPPORTED_ACCELERATOR
    assert kind["g6f.large"].kind == advisor.FRACTIONAL_GPU
    assert kind["c7g.large"].kind == advisor.NOT_PREFERRED
    assert kind["inf2.48xlarge"].kind == advisor.INFERENCE_ONLY
    assert kind["p5e.48xlarge"].kind == advisor.NOT_OFFERED
    assert kind["g6e.xlarge"].kind == advisor.NO_EFA  # one 44.7 GiB L40S and no EFA to join 29 of them
    assert (kind["g4dn.metal"].kind, kind["g4dn.metal"].nodes_needed) == (advisor.OVER_MAX_NODES, 10)  # 128 GiB
    over = kind["p4d.24xlarge"]  # 320 GiB: 4 nodes at $21.96 each
    assert (over.kind, over.nodes_needed) == (advisor.OVER_BUDGET, 4)
    assert over.hourly_cost_usd == pytest.approx(4 * catalog.get("p4d.24xlarge").on_demand_price("us-east-1"))
    assert kind["trn1.32xlarge"].kind == advisor.OVER_BUDGET  # 3 nodes at $21.50
    assert [(r.instance_type, r.nodes) for r in advice] == [("p4de.24xlarge", 2)]  # 2 x 640 GiB for $54.89


def test_over_max_nodes_records_the_nodes_needed():
    advice = advise(Workload(task="training", params="70B", regions="us-east-1", accelerator="trainium",
                             max_nodes=2), explain=True)
    assert len(advice) == 0
    (over,) = [e for e in exclusions_of(advice, "trn1.32xlarge")]
    assert (over.kind, over.nodes_needed) == (advisor.OVER_MAX_NODES, 3)
    assert over.hourly_cost_usd == pytest.approx(3 * 21.5)


def test_an_unknown_price_excludes_the_candidate_and_is_never_free():
    unpriced = next((spec, region) for spec in CATALOG for region in spec.offerings
                    if spec.accelerator and spec.accelerator.manufacturer == "NVIDIA" and spec.accelerator.count
                    and spec.on_demand_price(region) is None)
    spec, region = unpriced
    advice = advise(Workload(task="inference", params="1B", regions=region, accelerator="nvidia"), explain=True)
    assert spec.instance_type not in {r.instance_type for r in advice}
    assert [e.kind for e in exclusions_of(advice, spec.instance_type)] == [advisor.NO_PRICE]


def test_a_catalog_with_a_missing_price_still_ranks_by_known_prices():
    cheap, priced = catalog.get("trn1.2xlarge"), catalog.get("g5.xlarge")
    unknown = dataclasses.replace(cheap, prices=MappingProxyType(
        {"us-east-1": RegionPrice(on_demand=None, spot_by_az=MappingProxyType({}))}))
    book = Catalog({unknown.instance_type: unknown, priced.instance_type: priced}, CATALOG.provenance)
    advice = advise(Workload(task="inference", params="7B", regions="us-east-1"), catalog=book, explain=True)
    assert [r.instance_type for r in advice] == ["g5.xlarge"]
    assert [e.kind for e in advice.exclusions] == [advisor.NO_PRICE]


def test_spot_ranks_at_the_lowest_spot_sample_of_the_region():
    advice = advise(Workload(task="inference", params="7B", regions="us-west-2", purchase_option="spot"))
    for recommendation in advice[:10]:
        spec = catalog.get(recommendation.instance_type)
        assert recommendation.price_kind == "spot"
        assert recommendation.price_per_node_usd == min(spec.spot_prices("us-west-2").values())


def test_cpu_types_count_system_memory_and_only_when_asked():
    cpu = advise(Workload(task="inference", params="7B", regions="us-east-1", accelerator="cpu"))
    assert cpu and all(r.accelerator == "CPU" for r in cpu)
    spec = catalog.get(cpu[0].instance_type)
    assert cpu[0].memory_available_gib == spec.memory_gib and spec.memory_gib * 2**30 >= 15.4e9
    assert all(r.accelerator != "CPU" for r in advise(Workload(task="inference", params="7B", regions="us-east-1")))


def test_recommendations_carry_offered_azs_and_the_price_date():
    top = advise(Workload(task="training", params="7B", regions="us-west-2"))[0]
    assert top.az_ids == catalog.get(top.instance_type).offered_azs("us-west-2") and top.az_ids
    assert top.price_as_of == CATALOG.provenance.prices_as_of
    assert top.reason.startswith("fits on")


# --------------------------------------------------------------------------------------------
# When nothing fits, the advice says what would
# --------------------------------------------------------------------------------------------


def test_suggests_the_smallest_max_nodes_that_fits():
    workload = Workload(task="training", params="70B", regions="us-east-1", accelerator="trainium", max_nodes=2)
    suggestion = advise(workload).suggestion()
    assert (suggestion.parameter, suggestion.value) == ("max_nodes", 3)  # 1,251.7 GiB over 512 GiB trn1 nodes
    assert suggestion.message({"max_nodes": "--max-nodes"}).startswith("nothing fits in 2 node(s); raise --max-nodes to 3")
    assert advise(dataclasses.replace(workload, max_nodes=3))[0].instance_type == suggestion.top.instance_type


def test_suggests_the_price_that_buys_the_cheapest_fit():
    workload = Workload(task="training", params="7B", regions="us-east-1", max_price_per_hour_usd=1)
    suggestion = advise(workload).suggestion()
    cheapest = advise(dataclasses.replace(workload, max_price_per_hour_usd=None))[0]
    assert suggestion.parameter == "max_price_per_hour_usd" and suggestion.top == cheapest
    assert cheapest.hourly_cost_usd <= suggestion.value < cheapest.hourly_cost_usd + 0.01
    assert f"raise max_price_per_hour_usd to {suggestion.value:.2f}" in suggestion.message()
    capped = advise(dataclasses.replace(workload, max_price_per_hour_usd=suggestion.value))[0]
    assert (capped.instance_type, capped.region, capped.nodes) == (cheapest.instance_type, cheapest.region, cheapest.nodes)


def test_suggests_another_region_where_the_preference_is_offered():
    suggestion = advise(Workload(task="inference", model="llama-3-8b", regions="eu-west-1",
                                 accelerator="trainium")).suggestion()
    assert suggestion.parameter == "regions" and catalog.get(suggestion.top.instance_type).family.startswith("trn")
    assert suggestion.value == (suggestion.top.region,) and suggestion.top.region in suggestion.message()


def test_suggests_a_lower_precision_when_no_single_node_holds_the_model():
    suggestion = advise(Workload(task="inference", params="2T", precision="fp32", regions="us-east-1")).suggestion()
    assert suggestion.parameter == "precision"
    assert need_bytes("inference", 2e12, suggestion.value) <= suggestion.top.memory_available_gib * 2**30


def test_no_suggestion_when_something_fits():
    assert advise(Workload(task="inference", params="7B", regions="us-east-1")).suggestion() is None


# --------------------------------------------------------------------------------------------
# Properties, inputs and purity
# --------------------------------------------------------------------------------------------


@st.composite
def workloads_strategy(draw):
    task = draw(st.sampled_from(TASKS))
    precisions = ("fp32", "bf16", "fp8") if task in ("training", "fine-tuning") else ("bf16", "int8", "int4")
    preference = draw(st.sampled_from([p for p in PREFERENCES if p != "inferentia" or task == "inference"]))
    return Workload(task=task, params=draw(st.integers(min_value=100, max_value=2_000_000)) * 1e6,
                    precision=draw(st.sampled_from(precisions)), regions=draw(st.sampled_from(REGIONS)),
                    purchase_option=draw(st.sampled_from(("on-demand", "spot"))), accelerator=preference,
                    max_nodes=draw(st.integers(min_value=1, max_value=64)),
                    training_tokens=draw(st.sampled_from([None, "300B"])) if task != "inference" else None)


@settings(max_examples=150, deadline=None)
@given(workloads_strategy())
def test_every_recommendation_fits_respects_the_limits_and_is_sorted(workload):
    advice = advise(workload)
    need = need_bytes(workload.task, workload.params, workload.precision)
    for recommendation in advice:
        assert recommendation.memory_available_gib * 2**30 >= need * (1 - 1e-12)
        assert 1 <= recommendation.nodes <= workload.max_nodes
        if recommendation.nodes > 1:
            assert recommendation.efa and workload.task != "inference"
    keys = [r.estimated_job_cost_usd if workload.training_tokens else r.hourly_cost_usd for r in advice]
    assert keys == sorted(keys)


def test_an_unknown_region_is_an_error_with_close_matches():
    with pytest.raises(ConfigurationError, match=r"regions: unknown region 'us-east-9'; did you mean .*'us-east-1'"):
        advise(Workload(task="inference", params="7B", regions="us-east-9"))


def test_advice_is_a_sequence_and_defaults_to_every_region():
    advice = advise(Workload(task="inference", params="7B"))
    assert advice[0] is advice.recommendations[0] and list(advice)[:2] == list(advice[:2])
    assert {r.region for r in advice} > set(REGIONS)
    assert advice.exclusions == ()  # only with explain=True


@pytest.mark.parametrize(("entry", "message"), [
    ({"dense_bf16_tflops": "fast", "source": "https://x", "note": "n"}, "field 'dense_bf16_tflops' should be"),
    ({"dense_bf16_tflops": -1, "source": "https://x", "note": "n"}, "field 'dense_bf16_tflops' is -1"),
    ({"dense_bf16_tflops": 10, "note": "n"}, "missing field 'source'"),
])
def test_a_corrupt_accelerators_file_names_the_file_and_entry(tmp_path, entry, message):
    path = tmp_path / "accelerators.json"
    path.write_text(json.dumps({"accelerators": {"X1": entry}}))
    with pytest.raises(ConfigurationError, match=rf"accelerators\['X1'\]: .*{message}") as error:
        advisor.load_accelerator_throughputs(path)
    assert str(path) in str(error.value)


def test_every_throughput_figure_names_a_catalog_accelerator_and_a_source():
    names = {spec.accelerator.name for spec in CATALOG if spec.accelerator}
    for name, figure in advisor.accelerator_throughputs().items():
        assert name in names and figure.source.startswith("https://") and figure.dense_bf16_tflops > 0


def test_the_advisor_never_imports_aws_cdk():
    code = ("from mlcdk.presets.advisor import advise\nfrom mlcdk.presets.sizing import Workload\n"
            "advise(Workload(task='training', params='70B', training_tokens='1T'), explain=True)\n"
            "advise(Workload(task='inference', params='9T', regions='us-east-1')).suggestion()\n")
    assert cdk_modules_loaded_by(code) == []
