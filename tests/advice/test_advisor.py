"""The advisor: what it recommends matches an independent brute-force search over the catalog, by the documented rules."""
from __future__ import annotations

import dataclasses
import json
import math
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlcdk import ConfigurationError
from mlcdk.advice import advisor
from mlcdk.advice.advisor import advise
from mlcdk.presets import catalog, workloads
from mlcdk.presets.catalog import Catalog, RegionPrice
from mlcdk.presets.datafile import DATA_DIR
from mlcdk.presets.sizing import Workload
from tests.harness import cdk_modules_loaded_by

CATALOG = catalog.default_catalog()
REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
TASKS = ("training", "fine-tuning", "lora", "inference", "batch-inference")
TRAINING = ("training", "fine-tuning", "lora")
PREFERENCES = ("any", "trainium", "inferentia", "nvidia", "gpu", "cpu")
PRECISIONS = ("fp32", "bf16", "fp16", "fp8", "int8", "int4")
BYTES = {"fp32": 4, "bf16": 2, "fp16": 2, "fp8": 1, "int8": 1, "int4": 0.5}
#: Read straight from the data files: the oracle interprets them itself.
LEVELS = {name: {p: entry[p] for p in PRECISIONS}
          for name, entry in json.loads((DATA_DIR / "precision.json").read_text())["accelerators"].items()}
TFLOPS = {name: entry["dense_tflops"]
          for name, entry in json.loads((DATA_DIR / "accelerators.json").read_text())["accelerators"].items()}
GIB, MIB = 2**30, 2**20


# --------------------------------------------------------------------------------------------
# An independent brute force: every (type, region, node count) in the catalog, by the documented rules
# --------------------------------------------------------------------------------------------


MODELS = json.loads((DATA_DIR / "models.json").read_text())["models"]
UTILIZATION = json.loads((DATA_DIR / "utilization.json").read_text())["training"]
CPU_FAMILIES = json.loads((DATA_DIR / "precision.json").read_text())["cpu_families"]
ACCELERATORS = json.loads((DATA_DIR / "accelerators.json").read_text())["accelerators"]


def stand_in(params: float) -> dict:
    """The models.json entry nearest in log parameters: LoRA's shape for a bare count."""
    name = min(MODELS, key=lambda n: (abs(math.log(MODELS[n]["params"] / params)), n))
    return MODELS[name]


def lora_adapters(params: float, rank: int = 16) -> float:
    m = stand_in(params)
    h, q, kv, width = m["hidden_size"], m["attention_heads"] * m["head_dim"], m["kv_heads"] * m["head_dim"], \
        m["intermediate_size"]
    per_layer = (h + q) + 2 * (h + kv) + (q + h) + m.get("experts", 1) * (3 if m.get("gated_mlp", True) else 2) * (
        h + width)
    return rank * m["layers"] * per_layer * params / m["params"]


def need_bytes(task: str, params: float, precision: str = "bf16") -> float:
    if task in ("training", "fine-tuning"):
        return params * 16 * 1.2
    if task == "lora":
        m = stand_in(params)
        frozen = params * BYTES[precision] + (params * 0.127 / 8 if precision == "int4" else 0)
        adapters = lora_adapters(params) * (4 if precision == "int4" else 16)
        return frozen + adapters + 4096 * m["hidden_size"] * (2 * m["layers"] + 34)
    return params * BYTES[precision] * 1.1  # a bare count: no KV cache


def host_bytes(workload: Workload) -> float:
    paged = lora_adapters(workload.params) * 8 if workload.task == "lora" and workload.precision == "int4" else 0
    return workload.params * BYTES[workload.precision] + paged


def level(spec, precision: str) -> str:
    name = CPU_FAMILIES.get(spec.family, "CPU") if spec.accelerator is None else spec.accelerator.name
    return LEVELS.get(name, {}).get(precision, "unknown")


def math_precision(spec, workload: Workload) -> str | None:
    """The precision the job computes in on ``spec``: weight-only storage computes in bf16 or else fp16."""
    frozen = workload.task in ("lora", "inference", "batch-inference")
    if level(spec, workload.precision) == "native" and not (workload.task == "lora"
                                                            and workload.precision.startswith("int")):
        return workload.precision
    if not frozen:
        return workload.precision
    return next((p for p in ("bf16", "fp16") if level(spec, p) == "native"), None)


def runs_precision(spec, workload: Workload) -> bool:
    found = level(spec, workload.precision)
    serving = workload.task in ("inference", "batch-inference")
    weight_only = found == "weight-only" and (
        (workload.task in ("lora", "inference", "batch-inference") and workload.precision in ("int8", "int4"))
        or (serving and workload.precision == "fp8"))
    return (found == "native" or weight_only) and math_precision(spec, workload) is not None


def deployable(spec) -> bool:
    try:
        workloads.default_machine_image(spec)
    except ConfigurationError:
        return False
    acc = spec.accelerator
    return acc is None or acc.kind != "gpu" or acc.manufacturer == "NVIDIA"


def eligible(spec, workload: Workload) -> bool:
    acc, preference = spec.accelerator, workload.accelerator
    if acc is None:
        return preference == "cpu" and runs_precision(spec, workload) and deployable(spec)
    if preference == "cpu" or acc.kind == "other" or acc.count == 0:
        return False
    if workload.task not in ("inference", "batch-inference") and acc.name.startswith("Inferentia"):
        return False
    wanted = {"any": True, "trainium": acc.name.startswith("Trainium"),
              "inferentia": acc.name.startswith("Inferentia"), "nvidia": acc.manufacturer == "NVIDIA"}[preference]
    return wanted and runs_precision(spec, workload) and deployable(spec)


def fewest_nodes(spec, workload: Workload, need: float) -> int | None:
    """Stepping node counts one by one: the first that meets the headroom and the host-memory rule."""
    keep = 1 - workload.memory_headroom
    acc = spec.accelerator
    devices, device = (1, spec.memory_mib * MIB) if acc is None else (acc.count, acc.memory_mib_per_device * MIB)
    host = host_bytes(workload)
    for nodes in range(1, workload.max_nodes + 1):
        if nodes > 1 and (workload.task in ("inference", "batch-inference") or not spec.efa_supported):
            return None
        if need / (nodes * devices) <= keep * device and (acc is None or host / nodes <= keep * spec.memory_mib * MIB):
            return nodes
    return None


def utilization(name: str, precision: str, params: float) -> float:
    curves = UTILIZATION.get(name, {})
    points = curves.get(precision) or curves.get("bf16") or UTILIZATION["default"]["bf16"]
    points = sorted((p["params"], p["utilization"]) for p in points)
    if params <= points[0][0]:
        return points[0][1]
    if params >= points[-1][0]:
        return points[-1][1]
    for (p0, u0), (p1, u1) in zip(points, points[1:]):
        if p0 <= params <= p1:
            return u0 + math.log10(params / p0) / math.log10(p1 / p0) * (u1 - u0)


def job_seconds(spec, workload: Workload, nodes: int) -> float | None:
    """Compute at the published utilization, or FSDP's ring collectives over the slowest link if longer."""
    acc = spec.accelerator
    if workload.task in ("inference", "batch-inference") or acc is None:
        return None
    precision = math_precision(spec, workload)
    figure = TFLOPS.get(acc.name, {}).get(precision)
    if figure is None:
        return None
    if workload.task == "training":
        tokens = workload.training_tokens if workload.training_tokens is not None else 20 * workload.params
    else:
        tokens = workload.training_tokens if workload.training_tokens is not None else 52_002 * 512 * 3
    if workload.task == "lora":
        flops, volume = (4 * workload.params + 6 * lora_adapters(workload.params)) * tokens, \
            2 * workload.params * BYTES[workload.precision] + lora_adapters(workload.params) * BYTES[precision]
    else:
        flops, volume = 6 * workload.params * tokens, 3 * workload.params * BYTES[precision]
    devices = nodes * acc.count
    compute = flops / (devices * figure * 1e12 * utilization(acc.name, precision, workload.params))
    link = ACCELERATORS.get(acc.name, {}).get("intra_node_gb_s")
    bus = link if nodes == 1 else min(x for x in (link, spec.network_gbps / 8) if x is not None)
    if devices == 1 or bus is None:
        return compute
    communication = tokens / (devices * 4096) * volume * (devices - 1) / devices / (bus * 1e9)
    return max(compute, communication)


def deadline_nodes(spec, workload: Workload, nodes: int) -> int | None:
    """Stepping from the fewest nodes that fit: the first count that finishes within max_days (None if none)."""
    for count in range(nodes, workload.max_nodes + 1):
        if count > 1 and not spec.efa_supported:
            return None
        seconds = job_seconds(spec, workload, count)
        if seconds is None:
            return None
        if seconds <= workload.max_days * 86400:
            return count
    return None


def brute_force(workload: Workload) -> list[tuple[tuple, str, str, int]]:
    """Every fitting (ranking key, type, region, nodes), best first."""
    need = need_bytes(workload.task, workload.params, workload.precision)
    spot = workload.purchase_option == "spot"
    regions = workload.regions or CATALOG.regions()
    found = []
    for spec in CATALOG:
        if not eligible(spec, workload):
            continue
        nodes = fewest_nodes(spec, workload, need)
        if nodes is not None and workload.max_days is not None:
            nodes = deadline_nodes(spec, workload, nodes)
        if nodes is None:
            continue
        seconds = job_seconds(spec, workload, nodes)
        for region in regions:
            if region not in spec.offerings or (spot and "spot" not in spec.usage_classes):
                continue
            prices = spec.prices.get(region)
            if prices is None:
                continue
            samples = {az: usd for az, usd in prices.spot_by_az.items() if az.count("-") == 1}  # regional AZs only
            price = (min(samples.values()) if samples else None) if spot else prices.on_demand
            if price is None:
                continue
            hourly = nodes * price
            if workload.max_price_per_hour_usd is not None and hourly > workload.max_price_per_hour_usd:
                continue
            if workload.rank_by == "hourly":
                key = (0, hourly)
            elif workload.rank_by == "tokens":
                key = (1, hourly)  # a bare count has no attention shape, so no serving figure
            else:
                key = (0, hourly * seconds / 3600) if seconds is not None else (1, hourly)
            found.append((key, spec.instance_type, region, nodes))
    return sorted(found)


def check_against_brute_force(workload: Workload) -> None:
    advice = advise(workload)
    expected = brute_force(workload)
    assert advice.memory.total_bytes == pytest.approx(need_bytes(workload.task, workload.params, workload.precision))
    for recommendation in advice:
        seconds = job_seconds(catalog.get(recommendation.instance_type), workload, recommendation.nodes)
        assert (recommendation.estimated_days is None) == (seconds is None)
        if seconds is not None:
            assert recommendation.estimated_days == pytest.approx(seconds / 86400, rel=1e-9)
    assert {(t, r, n) for _, t, r, n in expected} == {(a.instance_type, a.region, a.nodes) for a in advice}, workload
    if not expected:
        return
    best = expected[0][0]
    top = advice[0]
    ties = {(t, r, n) for key, t, r, n in expected if key[0] == best[0] and key[1] == pytest.approx(best[1], rel=1e-9)}
    assert (top.instance_type, top.region, top.nodes) in ties, workload


def check_every_recommendation(workload: Workload) -> None:
    """The invariants, on every recommendation: precision, headroom, host memory, order."""
    advice = advise(workload)
    keep = 1 - workload.memory_headroom
    for r in advice:
        spec = catalog.get(r.instance_type)
        assert runs_precision(spec, workload), (r.instance_type, workload.precision)
        assert r.precision_support in ("native", "weight-only")
        assert r.memory_needed_per_device_gib <= keep * r.memory_per_device_gib * (1 + 1e-12), r
        if workload.task != "batch-inference":  # batch inference sizes its cache for the sequences that fit
            assert r.memory_needed_per_device_gib * r.devices * GIB == pytest.approx(advice.memory.total_bytes)
        if spec.accelerator is not None:
            assert r.weights_per_node_gib <= keep * spec.memory_gib * (1 + 1e-12), r
        assert 1 <= r.nodes <= workload.max_nodes
        if r.nodes > 1:
            assert r.efa and workload.task in TRAINING
            if workload.purchase_option == "spot":
                assert any("stalls every node" in w and "heckpoint" in w for w in r.warnings)
    if workload.rank_by in ("job", "tokens"):
        known = [r.throughput_known for r in advice]
        assert known == sorted(known, reverse=True), "configurations without a figure must follow all with one"
        field = "estimated_job_cost_usd" if workload.rank_by == "job" else "cost_per_million_tokens_usd"
        costs = [getattr(r, field) for r in advice if r.throughput_known]
        assert costs == sorted(costs)
        assert [r.hourly_cost_usd for r in advice if not r.throughput_known] == sorted(
            r.hourly_cost_usd for r in advice if not r.throughput_known)
    else:
        hourly = [r.hourly_cost_usd for r in advice]
        assert hourly == sorted(hourly)


def grid():
    for task in TASKS:
        for precision in PRECISIONS:
            if task in ("training", "fine-tuning") and precision.startswith("int"):
                continue
            for preference in PREFERENCES:
                if preference == "inferentia" and task in TRAINING:
                    continue
                for rank in ("job", "tokens", "hourly"):
                    if (rank == "job" and task not in TRAINING) or (rank == "tokens" and task in TRAINING):
                        continue
                    yield task, precision, preference, rank


@pytest.mark.parametrize(("task", "precision", "preference", "rank"), list(grid()))
def test_brute_force_over_precisions_tasks_accelerators_regions_and_rankings(task, precision, preference, rank):
    for regions in ("us-east-1", "all"):
        for size in ("1B", "70B"):
            workload = Workload(task=task, params=size, precision=precision, accelerator=preference, regions=regions,
                                rank_by=rank)
            check_against_brute_force(workload)
            check_every_recommendation(workload)


@pytest.mark.parametrize("size", ["7B", "70B", "405B"])
def test_brute_force_under_limits_spot_headroom_and_days(size):
    for region in REGIONS:
        for max_nodes, max_price, max_days, headroom in ((1, None, None, 0.1), (4, None, 30, 0.0),
                                                         (8, 60.0, None, 0.5), (64, None, 365, 0.2)):
            for purchase in ("on-demand", "spot"):
                workload = Workload(task="training", params=size, regions=(region, "us-east-2"), max_nodes=max_nodes,
                                    max_price_per_hour_usd=max_price, max_days=max_days, memory_headroom=headroom,
                                    purchase_option=purchase, training_tokens="300B")
                check_against_brute_force(workload)
                check_every_recommendation(workload)


# --------------------------------------------------------------------------------------------
# Precision support: the sourced table, and what it excludes
# --------------------------------------------------------------------------------------------

#: Literal expectations per accelerator: (fp32, fp16, bf16, fp8, int8, int4), from the vendors' documents.
EXPECTED_SUPPORT = {
    "T4": ("native", "native", "no", "no", "native", "native"),
    "T4g": ("native", "native", "no", "no", "native", "unknown"),
    "V100": ("native", "native", "no", "no", "native", "unknown"),
    "M60": ("native", "no", "no", "no", "no", "no"),
    "K80": ("native", "no", "no", "no", "no", "no"),
    # Ampere: no FP8 math, but vLLM serves FP8 checkpoints weight-only (W8A16, FP8 Marlin; vLLM's FP8 docs)
    "A10G": ("native", "native", "native", "weight-only", "native", "native"),
    "A100": ("native", "native", "native", "weight-only", "native", "native"),
    "L4": ("native", "native", "native", "native", "native", "weight-only"),
    "L40S": ("native", "native", "native", "native", "native", "native"),
    "H100": ("native", "native", "native", "native", "native", "weight-only"),
    "H200": ("native", "native", "native", "native", "native", "weight-only"),
    "B200": ("native", "native", "native", "native", "native", "weight-only"),
    "Inferentia2": ("native", "native", "native", "native", "weight-only", "unknown"),
    "Trainium": ("native", "native", "native", "native", "weight-only", "unknown"),
    "Trainium2": ("native", "native", "native", "native", "weight-only", "unknown"),
    "Radeon Pro V520": ("native", "native", "unknown", "unknown", "unknown", "unknown"),
    "Gaudi HL-205": ("native", "unknown", "native", "unknown", "unknown", "unknown"),
    "CPU": ("native", "unknown", "unknown", "unknown", "unknown", "unknown"),
    # AWS's Graviton and C7i pages, Intel's AMX overview: bf16 on Graviton3 and Sapphire Rapids, not documented on
    # Ice Lake
    "CPU: AWS Graviton3": ("native", "native", "native", "unknown", "native", "unknown"),
    "CPU: AWS Graviton4": ("native", "native", "native", "unknown", "native", "unknown"),
    "CPU: Intel Xeon Sapphire Rapids": ("native", "native", "native", "unknown", "native", "unknown"),
    "CPU: Intel Xeon Ice Lake": ("native", "unknown", "unknown", "unknown", "native", "unknown"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED_SUPPORT))
def test_precision_support_matches_the_sourced_entries(name):
    from mlcdk.presets import precision

    expected = dict(zip(("fp32", "fp16", "bf16", "fp8", "int8", "int4"), EXPECTED_SUPPORT[name]))
    entry = precision.precision_support()[name]
    assert dict(entry.levels) == expected
    assert entry.sources and all(s.startswith("https://") for s in entry.sources) and entry.note


def test_every_accelerator_the_advisor_can_size_has_a_precision_entry():
    from mlcdk.presets import precision

    table = precision.precision_support()
    names = {spec.accelerator.name for spec in CATALOG if spec.accelerator and spec.accelerator.kind != "other"}
    assert names <= set(table), sorted(names - set(table))


def test_every_throughput_figure_names_a_catalog_accelerator_a_source_and_a_supported_precision():
    from mlcdk.presets import precision

    names = {spec.accelerator.name for spec in CATALOG if spec.accelerator}
    for name, figure in precision.accelerator_throughputs().items():
        assert name in names and figure.source.startswith("https://")
        for form, tflops in figure.dense_tflops.items():
            assert tflops > 0 and precision.support(name, form) == "native", (name, form)


@pytest.mark.parametrize(("accelerator", "precision", "task", "expected"), [
    ("T4", "bf16", "training", "T4 has no bf16; use precision fp16"),
    ("V100", "bf16", "fine-tuning", "V100 has no bf16; use precision fp16"),
    ("A100", "fp8", "fine-tuning", "A100 runs fp8 only as weight-only storage, and fine-tuning computes in it; use "
                                   "precision bf16"),
    ("T4", "fp8", "inference", "T4 has no fp8; use precision int8"),
    ("M60", "bf16", "training", "M60 has no bf16; use precision fp32"),
    ("Inferentia2", "int4", "inference", "Inferentia2 int4 support is unknown (no sourced statement), so it is not "
                                         "assumed; use precision int8"),
    (None, "bf16", "inference", "a CPU-only type bf16 support is unknown (no sourced statement), so it is not "
                                "assumed; use precision fp32"),
])
def test_an_unsupported_precision_is_explained_with_the_best_alternative(accelerator, precision, task, expected):
    from mlcdk.presets.precision import describe_problem, precision_problem

    level, alternative = precision_problem(accelerator, precision, task)
    assert describe_problem(accelerator, precision, task, level, alternative) == expected


def test_seven_billion_bf16_training_on_nvidia_picks_no_t4_v100_or_t4g():
    """Issue 13: g4dn.metal (8 T4) was the top pick for bf16 training."""
    advice = advise(Workload(task="training", params="7B", regions="us-east-1", accelerator="nvidia"), explain=True)
    assert advice and not {r.accelerator.split("x ")[1] for r in advice} & {"T4", "V100", "T4g", "M60"}
    by_type = {e.instance_type: e for e in advice.exclusions}
    assert by_type["g4dn.metal"].kind == advisor.PRECISION_UNSUPPORTED
    assert by_type["g4dn.metal"].reason == "T4 has no bf16; use precision fp16"
    assert (by_type["g4dn.metal"].parameter, by_type["g4dn.metal"].alternative) == ("precision", "fp16")


def test_seventy_billion_fp8_inference_serves_ampere_weight_only_and_no_t4():
    advice = advise(Workload(task="inference", model="llama-3-70b", precision="fp8", regions="us-east-1"),
                    explain=True)
    a10g = [r for r in advice if "A10G" in r.accelerator]
    assert a10g and all(r.precision_support == "weight-only" for r in a10g)
    assert {e.reason for e in advice.exclusions if e.instance_type == "g4dn.12xlarge"} == {
        "T4 has no fp8; use precision int8"}


def test_mixtral_int4_is_not_served_by_inf2_without_a_sourced_int4_statement():
    advice = advise(Workload(task="inference", model="mixtral-8x7b", precision="int4", regions="us-east-1"),
                    explain=True)
    assert advice and all(not r.instance_type.startswith("inf2") for r in advice)
    (excluded,) = [e for e in advice.exclusions if e.instance_type == "inf2.xlarge"]
    assert excluded.kind == advisor.PRECISION_UNSUPPORTED and "Inferentia2 int4 support is unknown" in excluded.reason


def test_a_cpu_needs_a_sourced_precision_too():
    advice = advise(Workload(task="inference", params="7B", regions="us-east-1", accelerator="cpu"), explain=True)
    assert {r.instance_type.split(".")[0] for r in advice} <= {"c7g", "c7gn", "c7i"}  # Graviton3, AMX: bf16
    by_type = {e.instance_type: e for e in advice.exclusions}
    assert by_type["m5a.8xlarge"].reason == ("a CPU-only type bf16 support is unknown (no sourced statement), so it "
                                             "is not assumed; use precision fp32")
    assert by_type["c6i.8xlarge"].reason.startswith("CPU: Intel Xeon Ice Lake bf16 support is unknown")
    cpu = advise(Workload(task="inference", params="7B", precision="fp32", regions="us-east-1", accelerator="cpu"))
    assert cpu and all(r.accelerator == "CPU" for r in cpu)
    spec = catalog.get(cpu[0].instance_type)  # 7e9 x 4 x 1.1 = 30.8e9 bytes within 90% of system memory
    assert cpu[0].memory_per_device_gib == spec.memory_gib and 0.9 * spec.memory_gib * GIB >= 30.8e9


# --------------------------------------------------------------------------------------------
# Memory headroom, per device and per host
# --------------------------------------------------------------------------------------------


def test_a_workload_at_91_percent_of_a_device_does_not_fit_it_by_default_and_fits_at_5_percent():
    spec = catalog.get("g6.2xlarge")  # one L4 of 22,888 MiB; 32 GiB of host memory
    device = spec.accelerator.memory_mib_per_device * MIB
    params = 0.91 * device / (2 * 1.1)  # bf16 inference of a bare count: params x 2 x 1.1 bytes
    workload = Workload(task="inference", params=params, regions="us-east-1", accelerator="nvidia")
    default = advise(workload, explain=True)
    assert "g6.2xlarge" not in {r.instance_type for r in default}
    (why,) = [e for e in default.exclusions if e.instance_type == "g6.2xlarge"]
    assert why.kind == advisor.DOES_NOT_FIT and "90% of 1 x 22.4 GiB" in why.reason
    relaxed = {r.instance_type: r for r in advise(dataclasses.replace(workload, memory_headroom=0.05))}
    assert relaxed["g6.2xlarge"].memory_utilization_pct == pytest.approx(91)
    assert relaxed["g6.2xlarge"].memory_limit_per_device_gib == pytest.approx(0.95 * 22888 / 1024)


def test_the_top_pick_never_exceeds_the_margin():
    for workload in (Workload(task="training", params="70B", regions="us-east-1"),
                     Workload(task="inference", model="llama-3-70b", regions="us-east-1"),
                     Workload(task="lora", params="13B", regions="us-west-2", memory_headroom=0.3)):
        top = advise(workload)[0]
        assert top.memory_utilization_pct <= 100 * (1 - workload.memory_headroom) + 1e-9
        assert top.memory_needed_per_device_gib <= top.memory_limit_per_device_gib * (1 + 1e-12)


def test_seventy_billion_training_node_counts_leave_ten_percent_free():
    advice = advise(Workload(task="training", params="70B", regions="us-east-1", rank_by="hourly"), explain=True)
    by_type = {r.instance_type: r for r in advice}
    # 1,251.7 GiB over trn1.32xlarge nodes that may use 16 x 28.8 GiB = 460.8 GiB: 3 nodes (2 would be 921.6)
    assert by_type["trn1.32xlarge"].nodes == 3
    # p4d.24xlarge: 8 x 40 GiB x 0.9 = 288 GiB per node: 5 nodes (4 would hold 1,152)
    excluded = {e.instance_type: e for e in advice.exclusions}
    p4d = by_type.get("p4d.24xlarge") or excluded["p4d.24xlarge"]
    assert (p4d.nodes if hasattr(p4d, "nodes") else p4d.nodes_needed) == 5


def test_host_memory_must_hold_the_nodes_share_of_the_weights_while_loading():
    """inf2.xlarge has 16 GiB of host memory: 90% is 14.4 GiB, less than llama-3-8b's 15.0 GiB of bf16 weights."""
    advice = advise(Workload(task="inference", model="llama-3-8b", regions="us-east-1"), explain=True)
    assert "inf2.xlarge" not in {r.instance_type for r in advice}
    (why,) = [e for e in advice.exclusions if e.instance_type == "inf2.xlarge"]
    assert why.kind == advisor.HOST_MEMORY and "16.0 GiB of host memory" in why.reason
    served = {r.instance_type: r for r in advice}
    assert served["inf2.8xlarge"].weights_per_node_gib == pytest.approx(8.03e9 * 2 / GIB)


def test_node_counts_are_computed_not_stepped():
    assert advisor.nodes_for(1e40, 1.0) == pytest.approx(1e40)  # one division, whatever the size
    assert advisor.nodes_for(10.0, 5.0) == 2 and advisor.nodes_for(10.000001, 5.0) == 3
    assert advisor.nodes_for(1.0, 0) == 0 and advisor.nodes_for(0.0, 5.0) == 1


# --------------------------------------------------------------------------------------------
# Ranking training by the job's cost
# --------------------------------------------------------------------------------------------


def trainium_utilization(params: float) -> float:
    """Neuron's published trn1 runs: 19.5% at 8.03B and 28.3% at 70.6B (training_data_decoder.csv), interpolated in
    log10(parameters)."""
    share = math.log10(params / 8.03e9) / math.log10(70.6e9 / 8.03e9)
    return 0.195 + share * (0.283 - 0.195)


def test_job_estimate_follows_flops_over_the_dense_peak_at_the_published_utilization():
    advice = advise(Workload(task="training", params="70B", training_tokens="1T", regions="us-east-1",
                             accelerator="trainium"))
    top = advice[0]
    seconds = 6 * 70e9 * 1e12 / (3 * 16 * 190e12 * trainium_utilization(70e9))
    assert (top.instance_type, top.nodes) == ("trn1.32xlarge", 3)
    assert top.estimated_days == pytest.approx(seconds / 86400)
    assert top.estimated_job_cost_usd == pytest.approx(3 * 21.5 * seconds / 3600)
    assert advice.ranking == advisor.RANK_BY_JOB_COST and not advice.reference_job


def test_without_tokens_training_is_ranked_by_a_reference_job_of_20_tokens_per_parameter():
    advice = advise(Workload(task="training", params="70B", regions="us-east-1", accelerator="trainium"))
    seconds = 6 * 70e9 * 1.4e12 / (3 * 16 * 190e12 * trainium_utilization(70e9))
    assert advice.ranking == advisor.RANK_BY_JOB_COST and advice.reference_job and advice.job_tokens == 1.4e12
    assert advice[0].estimated_days == pytest.approx(seconds / 86400)
    assert any("reference job of 20 tokens per parameter (1.4T tokens" in note for note in advice.notes)


def test_the_job_ranking_is_the_same_for_any_token_count():
    per_token = [[r.estimated_job_cost_usd / tokens for r in advise(Workload(
        task="training", params="13B", regions="us-east-1", training_tokens=tokens)) if r.throughput_known]
        for tokens in (1e9, 260e9, 5e12)]
    assert len(per_token[0]) > 10
    assert per_token[0] == pytest.approx(per_token[1], rel=1e-9) and per_token[1] == pytest.approx(per_token[2], rel=1e-9)


def test_a_faster_costlier_type_beats_slow_cheap_nodes_on_the_job():
    """Issue 13: by the hour, 13B under $50/h put 3 x g6.12xlarge (L4) first; by the job, faster hardware wins."""
    hourly = advise(Workload(task="training", params="13B", regions="us-east-1", max_price_per_hour_usd=50,
                             rank_by="hourly"))
    job = advise(Workload(task="training", params="13B", regions="us-east-1", max_price_per_hour_usd=50))
    assert hourly[0].instance_type.startswith("g6.")
    assert job[0].estimated_job_cost_usd < next(r for r in job if r.instance_type == hourly[0].instance_type
                                                and r.nodes == hourly[0].nodes).estimated_job_cost_usd
    assert job[0].instance_type in ("trn1.32xlarge", "p4d.24xlarge", "p5.48xlarge", "p5.4xlarge", "g6e.12xlarge",
                                    "g6e.24xlarge", "g6e.48xlarge", "p4de.24xlarge")


def test_accelerators_without_a_figure_rank_after_those_with_one_and_the_advice_says_so():
    advice = advise(Workload(task="training", params="7B", regions="us-east-1", accelerator="nvidia"))
    a10g = [i for i, r in enumerate(advice) if "A10G" in r.accelerator]
    known = [i for i, r in enumerate(advice) if r.throughput_known]
    assert a10g and known and min(a10g) > max(known)
    assert all(advice[i].estimated_days is None and advice[i].estimated_job_cost_usd is None for i in a10g)
    assert "ranked after those with one" in advice[a10g[0]].reason
    assert any(note.startswith("no sourced throughput figure for A10G at bf16") for note in advice.notes)


def test_max_days_adds_nodes_until_the_job_finishes_in_time():
    # 7B x 100B tokens = 4.2e21 FLOPs. One p5.48xlarge at 8 x 989 TFLOPS x 13.9% (the H100 figure held below
    # 8.03B) takes 44.2 days, so two nodes (22.1 days); one trn1.32xlarge at 16 x 190 x 19.5% takes 82 days, so 3.
    advice = advise(Workload(task="training", params="7B", training_tokens="100B", regions="us-east-1", max_days=30),
                    explain=True)
    assert advice and all(r.estimated_days <= 30 for r in advice)
    by_type = {r.instance_type: r for r in advice}
    assert (by_type["p5.48xlarge"].nodes, by_type["p5.48xlarge"].nodes_for_memory) == (2, 1)
    assert by_type["p5.48xlarge"].compute_days == pytest.approx(4.2e21 / (16 * 989e12 * 0.139) / 86400)
    assert by_type["trn1.32xlarge"].nodes == 3
    over = {e.instance_type: e for e in advice.exclusions if e.kind == advisor.OVER_MAX_DAYS}
    assert "cannot be shown to finish in 30 days" in over["g5.48xlarge"].reason  # A10G: no sourced figure
    none = advise(Workload(task="training", params="70B", training_tokens="1T", regions="us-east-1", max_days=1))
    suggestion = none.suggestion()
    assert len(none) == 0 and suggestion.parameter == "max_nodes" and suggestion.top.estimated_days <= 1


def test_multi_node_spot_recommendations_warn_about_checkpointing():
    advice = advise(Workload(task="training", params="70B", regions="us-east-1", purchase_option="spot"))
    multi = [r for r in advice if r.nodes > 1]
    assert multi and all(r.warnings == (advisor.MULTI_NODE_SPOT_WARNING.format(nodes=r.nodes),) for r in multi)
    assert all(r.warnings == () for r in advice if r.nodes == 1)
    assert "losing one spot node stalls every node" in multi[0].warnings[0]


def test_several_regions_rank_together_and_all_means_every_region():
    both = advise(Workload(task="inference", params="7B", regions="us-east-1,eu-west-1"))
    assert {r.region for r in both} == {"us-east-1", "eu-west-1"}
    every = advise(Workload(task="inference", params="7B", regions="all"))
    assert {r.region for r in every} > set(REGIONS)
    hourly = [r.hourly_cost_usd for r in every]
    assert hourly == sorted(hourly)


# --------------------------------------------------------------------------------------------
# A baseline for the same job
# --------------------------------------------------------------------------------------------


def test_a_gpu_baseline_gives_speed_up_and_cost_ratio_for_the_same_job():
    advice = advise(Workload(task="training", params="7B", precision="fp16", regions="us-east-1"),
                    baseline="p3.2xlarge")
    base_seconds = 6 * 7e9 * 140e9 / (1 * 125e12 * 0.139)  # one V100 at 125 fp16 TFLOPS, the H100 figure at 7B
    assert advice.baseline.job_seconds == pytest.approx(base_seconds) and advice.baseline.reason is None
    p5 = next(r for r in advice if r.instance_type == "p5.48xlarge")
    assert p5.speedup_vs_baseline == pytest.approx(8 * 989 / 125)
    p3_price = catalog.get("p3.2xlarge").on_demand_price("us-east-1")
    assert p5.cost_vs_baseline == pytest.approx(p5.estimated_job_cost_usd / (p3_price * base_seconds / 3600))


def test_a_cpu_baseline_has_no_figure_and_says_why():
    advice = advise(Workload(task="training", params="7B", regions="us-east-1"), baseline="M5A.Large")
    assert advice.baseline.instance_type == "m5a.large" and advice.baseline.job_seconds is None
    assert "CPU-only" in advice.baseline.reason
    assert all(r.speedup_vs_baseline is None and r.cost_vs_baseline is None for r in advice)
    with pytest.raises(ConfigurationError, match=r"baseline: unknown instance type 'm5a.larg'"):
        advise(Workload(task="training", params="7B"), baseline="m5a.larg")


# --------------------------------------------------------------------------------------------
# Exclusions, prices and suggestions
# --------------------------------------------------------------------------------------------


def test_explain_gives_one_verdict_per_type_and_region():
    advice = advise(Workload(task="training", params="70B", regions="us-east-1", max_nodes=4,
                             max_price_per_hour_usd=60), explain=True)
    assert len(advice) + len(advice.exclusions) == len(CATALOG)
    kind = {e.instance_type: e for e in advice.exclusions}
    assert kind["f2.48xlarge"].kind == advisor.UNSUPPORTED_ACCELERATOR
    assert kind["g6f.large"].kind == advisor.FRACTIONAL_GPU
    assert kind["c7g.large"].kind == advisor.NOT_PREFERRED
    assert kind["inf2.48xlarge"].kind == advisor.INFERENCE_ONLY
    assert kind["g4dn.metal"].kind == advisor.PRECISION_UNSUPPORTED
    assert kind["g6e.xlarge"].kind == advisor.NO_EFA
    assert (kind["trn1.32xlarge"].kind, kind["trn1.32xlarge"].nodes_needed) == (advisor.OVER_BUDGET, 3)


def test_an_unknown_price_excludes_the_candidate_and_is_never_free():
    cheap, priced = catalog.get("trn1.2xlarge"), catalog.get("g6e.xlarge")
    unknown = dataclasses.replace(cheap, prices=MappingProxyType(
        {"us-east-1": RegionPrice(on_demand=None, spot_by_az=MappingProxyType({}))}))
    book = Catalog({unknown.instance_type: unknown, priced.instance_type: priced}, CATALOG.provenance)
    advice = advise(Workload(task="inference", params="7B", regions="us-east-1"), catalog=book, explain=True)
    assert [r.instance_type for r in advice] == ["g6e.xlarge"]
    assert [e.kind for e in advice.exclusions] == [advisor.NO_PRICE]


def test_spot_ranks_at_the_lowest_spot_sample_of_the_region():
    advice = advise(Workload(task="inference", params="7B", regions="us-west-2", purchase_option="spot"))
    for recommendation in advice[:10]:
        spec = catalog.get(recommendation.instance_type)
        assert recommendation.price_kind == "spot"
        assert recommendation.price_per_node_usd == min(spec.spot_prices("us-west-2").values())


def test_suggests_the_smallest_max_nodes_that_fits():
    workload = Workload(task="training", params="70B", regions="us-east-1", accelerator="trainium", max_nodes=2)
    suggestion = advise(workload).suggestion()
    assert (suggestion.parameter, suggestion.value) == ("max_nodes", 3)
    assert suggestion.message({"max_nodes": "--max-nodes"}).startswith("nothing fits in 2 node(s); raise --max-nodes to 3")


def test_suggests_a_precision_the_accelerators_run():
    suggestion = advise(Workload(task="training", params="7B", regions="us-east-1", accelerator="nvidia",
                                 max_price_per_hour_usd=8)).suggestion()
    assert suggestion is not None
    none = advise(Workload(task="inference", params="2T", precision="fp32", regions="us-east-1")).suggestion()
    assert none.parameter == "precision"
    assert need_bytes("inference", 2e12, none.value) <= 0.9 * none.top.memory_available_gib * GIB


def test_no_suggestion_when_something_fits():
    assert advise(Workload(task="inference", params="7B", regions="us-east-1")).suggestion() is None


# --------------------------------------------------------------------------------------------
# Properties, inputs and purity
# --------------------------------------------------------------------------------------------


@st.composite
def workloads_strategy(draw):
    task = draw(st.sampled_from(TASKS))
    precisions = ("fp32", "bf16", "fp16", "fp8") if task in ("training", "fine-tuning") else PRECISIONS
    preference = draw(st.sampled_from([p for p in PREFERENCES if p != "inferentia" or task not in TRAINING]))
    return Workload(task=task, params=draw(st.integers(min_value=100, max_value=2_000_000)) * 1e6,
                    precision=draw(st.sampled_from(precisions)), regions=draw(st.sampled_from(REGIONS + ("all",))),
                    purchase_option=draw(st.sampled_from(("on-demand", "spot"))), accelerator=preference,
                    max_nodes=draw(st.integers(min_value=1, max_value=64)),
                    memory_headroom=draw(st.sampled_from((0.0, 0.05, 0.1, 0.5))),
                    rank_by=draw(st.sampled_from(("job", "hourly"))) if task in TRAINING else None,
                    training_tokens=draw(st.sampled_from([None, "300B"])) if task in TRAINING else None)


@settings(max_examples=120, deadline=None)
@given(workloads_strategy())
def test_every_recommendation_keeps_every_rule(workload):
    check_every_recommendation(workload)


def test_an_unknown_region_is_an_error_with_close_matches():
    with pytest.raises(ConfigurationError, match=r"regions: unknown region 'us-east-9'; did you mean .*'us-east-1'"):
        advise(Workload(task="inference", params="7B", regions="us-east-9"))


def test_a_huge_model_is_an_error_not_a_hang():
    with pytest.raises(ConfigurationError, match=r"params \('1e40'\) is over the maximum of 1e15"):
        Workload(task="training", params="1e40")
    advice = advise(Workload(task="training", params="1e15", regions="us-east-1"))  # the bound itself: computed
    assert len(advice) == 0


@pytest.mark.parametrize(("entry", "message"), [
    ({"dense_tflops": {"bf16": "fast"}, "source": "https://x", "note": "n"}, "must be a positive number"),
    ({"dense_tflops": {"bf16": -1}, "source": "https://x", "note": "n"}, "is -1"),
    ({"dense_tflops": {"bf17": 1}, "source": "https://x", "note": "n"}, "has 'bf17'"),
    ({"dense_tflops": {"bf16": 10}, "note": "n"}, "missing field 'source'"),
])
def test_a_corrupt_accelerators_file_names_the_file_and_entry(tmp_path, entry, message):
    path = tmp_path / "accelerators.json"
    path.write_text(json.dumps({"accelerators": {"X1": entry}}))
    with pytest.raises(ConfigurationError, match=rf"accelerators\['X1'\]: .*{message}") as error:
        advisor.load_accelerator_throughputs(path)
    assert str(path) in str(error.value)


@pytest.mark.parametrize(("change", "message"), [
    ({"bf16": "maybe"}, "field 'bf16' is 'maybe'; it must be one of native, weight-only, no, unknown"),
    ({"sources": []}, "field 'sources' must be a non-empty list of https:// URLs"),
    ({"sources": ["http://x"]}, "field 'sources' must be a non-empty list"),
    ({"fp4": "native"}, "unknown field 'fp4'"),
])
def test_a_corrupt_precision_file_names_the_file_entry_and_field(tmp_path, change, message):
    from mlcdk.presets.precision import load_precision_support

    entry = {**{p: "native" for p in PRECISIONS}, "sources": ["https://x"], "note": "n", **change}
    path = tmp_path / "precision.json"
    path.write_text(json.dumps({"accelerators": {"X1": entry}}))
    with pytest.raises(ConfigurationError, match=rf"accelerators\['X1'\]: {message}"):
        load_precision_support(path)


def test_the_advisor_never_imports_aws_cdk():
    code = ("from mlcdk.advice.advisor import advise\nfrom mlcdk.presets.sizing import Workload\n"
            "advise(Workload(task='training', params='70B', training_tokens='1T'), explain=True, baseline='p3.2xlarge')\n"
            "advise(Workload(task='inference', params='9T', regions='us-east-1')).suggestion()\n")
    assert cdk_modules_loaded_by(code) == []


def test_reference_constants_are_what_the_docs_say():
    assert math.isclose(advisor.REFERENCE_TOKENS_PER_PARAM, 20)
    assert advisor.HOURS_PER_MONTH == 730
