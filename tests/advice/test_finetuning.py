"""Fine-tuning as fine-tuning: LoRA adapters from the rank and the model's dimensions, QLoRA's memory, FLOPs without
the frozen weights' gradients, a sourced default token count, and the ranking by job cost. Expected figures are
published numbers or formulas worked here."""
from __future__ import annotations

import pytest

from mlcdk.advice.advisor import PRECISION_UNSUPPORTED, RANK_BY_JOB_COST, advise
from mlcdk.advice.estimates import estimate_memory, lora_adapter_params, training_flops
from mlcdk.presets import catalog
from mlcdk.presets.precision import alternatives
from mlcdk.presets.sizing import FULL_TRAINING_PRECISIONS, GIB, SizingRules, Workload


def test_lora_adapters_match_peft_for_llama_2_7b_at_rank_8():
    """PEFT's print_trainable_parameters for Llama-2-7b, r=8 on q,k,v,o,gate,up,down: 19,988,480 trainable."""
    assert lora_adapter_params(Workload(task="lora", model="llama-2-7b", lora_rank=8)) == 19_988_480


def test_lora_adapters_by_hand_for_a_grouped_query_model():
    # Llama 3 8B: hidden 4,096, 32 heads and 8 KV heads of 128, MLP 14,336, 32 layers
    h, q, kv, mlp = 4096, 32 * 128, 8 * 128, 14336
    per_layer = (h + q) + 2 * (h + kv) + (q + h) + 3 * (h + mlp)
    assert lora_adapter_params(Workload(task="lora", model="llama-3-8b", lora_rank=16)) == 16 * 32 * per_layer


def test_lora_memory_is_frozen_weights_adapters_and_checkpointed_activations():
    workload = Workload(task="lora", model="llama-2-70b", lora_rank=16)
    adapters = 16 * 80 * ((8192 + 8192) + 2 * (8192 + 1024) + (8192 + 8192) + 3 * (8192 + 28672))
    activations = 4096 * 8192 * (2 * 80 + 34)  # per-layer inputs (2 B) + one recomputed layer (34 B per value)
    expected = 69e9 * 2 + adapters * 16 + activations
    assert estimate_memory(workload).total_bytes == pytest.approx(expected)
    assert estimate_memory(workload).host_bytes == 0


def test_qlora_65b_fits_one_48_gb_gpu_as_the_paper_says():
    """QLoRA (arXiv 2305.14314): a 65B model fine-tuned on one 48 GB GPU. The recipe is artidoro/qlora's
    finetune_guanaco_65b.sh: NF4 with double quantization, r=64 on all linear layers, batch 4 of up to 16 + 512
    tokens, gradient checkpointing, paged 32-bit AdamW."""
    workload = Workload(task="lora", model="llama-65b", precision="int4", lora_rank=64, regions="us-east-1",
                        accelerator="nvidia")
    rules = SizingRules(tokens_per_device_step=4 * (16 + 512))
    memory = estimate_memory(workload, rules)
    adapters = 64 * 80 * (4 * (8192 + 8192) + 3 * (8192 + 22016))  # 799.5M
    device = 65.2e9 * 0.5 + 65.2e9 * 0.127 / 8 + adapters * 4 + 2112 * 8192 * (2 * 80 + 34)
    assert memory.total_bytes == pytest.approx(device) and memory.host_bytes == pytest.approx(adapters * 8)
    assert device / GIB < 0.9 * 45776 / 1024  # under 90% of one L40S (45,776 MiB)
    one_gpu = [r for r in advise(workload, rules=rules) if r.devices == 1]
    assert one_gpu and {r.accelerator for r in one_gpu} >= {"1x L40S"}
    # with every default (rank 16, 4,096 tokens per device) it fits one L40S too
    defaults = advise(Workload(task="lora", model="llama-65b", precision="int4", regions="us-east-1"))
    assert any(r.accelerator == "1x L40S" for r in defaults)


def test_lora_flops_drop_the_frozen_weights_gradient_work():
    workload = Workload(task="lora", model="llama-2-70b", training_tokens="100M")
    adapters = lora_adapter_params(workload)
    assert training_flops(workload) == pytest.approx((4 * 69e9 + 6 * adapters) * 100e6)
    full = Workload(task="fine-tuning", model="llama-2-70b", training_tokens="100M")
    assert training_flops(full) == pytest.approx(6 * 69e9 * 100e6)


def test_fine_tuning_defaults_to_a_fine_tuning_dataset_not_a_pretraining_reference():
    """Stanford Alpaca: 52,002 examples, max length 512, 3 epochs (tatsu-lab/stanford_alpaca README)."""
    for task in ("fine-tuning", "lora"):
        assert Workload(task=task, params="70B").job_tokens == 52_002 * 512 * 3
    assert Workload(task="training", params="70B").job_tokens == 20 * 70e9


def test_lora_on_70b_is_priced_as_a_fine_tuning_job():
    """Issue 24: LoRA on 70B got the 1.4T-token pretraining reference and '961 days, $2.6M'."""
    advice = advise(Workload(task="lora", params="70B", regions="us-east-1", accelerator="nvidia"))
    p5 = next(r for r in advice if r.instance_type == "p5.48xlarge")
    assert advice.job_tokens == 52_002 * 512 * 3 and advice.reference_job
    assert p5.estimated_days < 2 and p5.estimated_job_cost_usd < 3_000


# --------------------------------------------------------------------------------------------
# Issue 25, point 4: the two advisor promises no test guarded
# --------------------------------------------------------------------------------------------


def test_fine_tuning_never_suggests_a_precision_fine_tuning_refuses():
    """fp8 on A100 (weight-only, serving only) once yielded "use int8", which fine-tuning refuses."""
    advice = advise(Workload(task="fine-tuning", params="7B", precision="fp8", regions="us-east-1"), explain=True)
    a100 = next(e for e in advice.exclusions if e.instance_type == "p4d.24xlarge")
    assert a100.kind == PRECISION_UNSUPPORTED and (a100.parameter, a100.alternative) == ("precision", "bf16")
    assert a100.reason == "A100 runs fp8 only as weight-only storage, and fine-tuning computes in it; use precision bf16"
    offered = {e.alternative for e in advice.exclusions if e.alternative is not None and e.parameter == "precision"}
    assert offered and offered <= set(FULL_TRAINING_PRECISIONS)
    for task in ("training", "fine-tuning"):
        assert set(alternatives("fp8", task)) <= set(FULL_TRAINING_PRECISIONS)


@pytest.mark.parametrize("task", ["fine-tuning", "lora"])
def test_fine_tuning_and_lora_rank_by_job_cost_not_silently_by_the_hour(task):
    workload = Workload(task=task, params="13B", regions="us-east-1", accelerator="nvidia")
    assert workload.rank_by == "job"
    advice = advise(workload)
    hourly = advise(Workload(task=task, params="13B", regions="us-east-1", accelerator="nvidia", rank_by="hourly"))
    assert advice.ranking == RANK_BY_JOB_COST
    costs = [r.estimated_job_cost_usd for r in advice if r.throughput_known]
    assert costs == sorted(costs)
    assert advice[0].instance_type != hourly[0].instance_type  # the two orders differ for this workload
    assert advice[0].estimated_job_cost_usd < next(
        r.estimated_job_cost_usd for r in advice if r.instance_type == hourly[0].instance_type)


def test_a_bare_count_lora_is_sized_on_the_nearest_known_shape_and_says_so():
    workload = Workload(task="lora", params="70B")
    memory = estimate_memory(workload)
    assert any("sized on llama-3-70b's shape" in note for note in memory.notes)
    assert lora_adapter_params(workload) == pytest.approx(
        lora_adapter_params(Workload(task="lora", model="llama-3-70b")) * 70e9 / 70.6e9)
    assert catalog.get("p5.48xlarge")  # the catalog still loads alongside
