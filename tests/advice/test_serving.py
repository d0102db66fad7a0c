"""Serving throughput and cost per million tokens: prefill at peak FLOPs, decode at memory bandwidth, the KV cache
sized for the concurrency, checked against published serving benchmarks that did not set the model's shares."""
from __future__ import annotations

import dataclasses

import pytest

from mlcdk import ConfigurationError
from mlcdk.advice import serving
from mlcdk.advice.advisor import RANK_BY_HOURLY_COST, RANK_BY_TOKEN_COST, UNDER_TARGET, advise
from mlcdk.advice.estimates import estimate_memory
from mlcdk.presets import catalog
from mlcdk.presets.sizing import SizingRules, Workload

RULES = SizingRules()


def one_device(instance_type: str, count: int = 1):
    """A node of ``instance_type`` cut to ``count`` devices: a benchmark's tensor-parallel group."""
    spec = catalog.get(instance_type)
    return dataclasses.replace(spec, accelerator=dataclasses.replace(spec.accelerator, count=count))


def throughput(spec, model: str, precision: str, batch: int, inputs: int, outputs: int) -> float:
    workload = Workload(task="inference", model=model, precision=precision, concurrency=batch, input_tokens=inputs,
                        output_tokens=outputs)
    return serving.estimate(spec, workload, RULES, batch, one_replica=True).tokens_per_second


@pytest.mark.parametrize(("label", "spec", "model", "precision", "batch", "inputs", "outputs", "published"), [
    # TensorRT-LLM's published "Peak Throughput" tables (docs/source/performance.md, v0.6.1): output tokens/s, TP 1
    ("TensorRT-LLM, H100 FP8, LLaMA 7B", one_device("p5.48xlarge"), "llama-2-7b", "fp8", 112, 128, 2048, 6818),
    ("TensorRT-LLM, L40S FP8, LLaMA 7B", one_device("g6e.xlarge"), "llama-2-7b", "fp8", 64, 128, 2048, 1622),
    ("TensorRT-LLM, H100 FP8, LLaMA 7B, long prompt", one_device("p5.48xlarge"), "llama-2-7b", "fp8", 48, 2048,
     2048, 2740),
    # Neuron SDK's published inf2 decoder throughput (about-neuron/benchmarks/inf2/throughput_data_decoder.csv)
    ("Neuron 2.18, inf2.48xlarge, Llama-3-70B bf16", catalog.get("inf2.48xlarge"), "llama-3-70b", "bf16", 1, 2048,
     2048, 28.84),
])
def test_the_model_agrees_with_published_serving_benchmarks(label, spec, model, precision, batch, inputs, outputs,
                                                            published):
    """The NVIDIA shares come from TensorRT-LLM's A100 rows and the Neuron shares from another Neuron row, so these
    H100, L40S and Llama 3 rows are independent checks: within 10% each (docs/advisor.md lists more rows)."""
    assert throughput(spec, model, precision, batch, inputs, outputs) == pytest.approx(published, rel=0.10), label


def test_decode_is_bound_by_memory_bandwidth_by_hand():
    # one H100 (3,350 GB/s at the default 0.79 share), Llama 3 8B in bf16, 1 sequence of 1,024 in and 128 out
    workload = Workload(task="inference", model="llama-3-8b", input_tokens=1024, output_tokens=128)
    estimate = serving.estimate(catalog.get("p5.4xlarge"), workload, RULES, 1)
    kv_per_token = 2 * 32 * 8 * 128 * 2
    step = (8.03e9 * 2 + (1024 + 64) * kv_per_token) / (3350e9 * 0.79)
    prefill = (2 * 8.03e9 * 1024 + 2 * 32 * 1024**2 * 32 * 128) / (989e12 * 0.69)
    assert estimate.step_seconds == pytest.approx(step) and estimate.prefill_seconds == pytest.approx(prefill)
    assert estimate.tokens_per_second == pytest.approx(128 / (prefill + 128 * step))
    assert estimate.bound == serving.MEMORY_BANDWIDTH


def test_cost_per_million_tokens_is_the_hourly_cost_over_tokens_per_hour():
    advice = advise(Workload(task="inference", model="llama-3-8b", concurrency=32, regions="us-east-1"))
    for r in advice:
        if r.tokens_per_second:
            assert r.cost_per_million_tokens_usd == pytest.approx(r.hourly_cost_usd / (r.tokens_per_second * 3600) * 1e6)
    assert advice.ranking == RANK_BY_TOKEN_COST
    known = [r.cost_per_million_tokens_usd for r in advice if r.cost_per_million_tokens_usd is not None]
    assert known == sorted(known)


def test_rank_hourly_keeps_the_hourly_order():
    advice = advise(Workload(task="inference", model="llama-3-8b", regions="us-east-1", rank_by="hourly"))
    assert advice.ranking == RANK_BY_HOURLY_COST
    hourly = [r.hourly_cost_usd for r in advice]
    assert hourly == sorted(hourly)


def test_the_kv_cache_is_sized_for_the_concurrency():
    workload = Workload(task="inference", model="llama-3-8b", concurrency=16, input_tokens=2000, output_tokens=500)
    assert (workload.context_tokens, workload.sequences) == (2500, 16)
    kv = 2 * 32 * 8 * 128 * 2500 * 16 * 2
    assert estimate_memory(workload).total_bytes == pytest.approx((8.03e9 * 2 + kv) * 1.1)


def test_mixtral_is_not_served_on_t4s_when_ranked_by_tokens():
    """Issue 24: ranked by the hour, Mixtral landed on 4 x T4."""
    advice = advise(Workload(task="inference", model="mixtral-8x7b", precision="fp16", regions="us-east-1",
                             concurrency=16))
    assert "T4" not in advice[0].accelerator


def test_batch_inference_ranks_by_throughput_per_dollar_with_as_many_sequences_as_fit():
    advice = advise(Workload(task="batch-inference", model="llama-3-8b", regions="us-east-1"))
    assert advice.ranking == RANK_BY_TOKEN_COST
    per_dollar = [r.tokens_per_second * 3600 / r.hourly_cost_usd for r in advice if r.tokens_per_second]
    assert per_dollar == sorted(per_dollar, reverse=True)
    g6e = next(r for r in advice if r.instance_type == "g6e.xlarge")
    # one L40S: 90% of 45,776 MiB over 1.1, less the 16.06 GB of weights, over 512 KiB x 4,096 tokens per sequence
    room = 0.9 * 45776 * 2**20 / 1.1 - 8.03e9 * 2
    assert g6e.concurrency == int(room // (2 * 32 * 8 * 128 * 4096 * 2))


def test_a_throughput_floor_excludes_slower_configurations():
    advice = advise(Workload(task="inference", model="llama-3-8b", concurrency=32, regions="us-east-1",
                             target_tokens_per_second=2000), explain=True)
    assert advice and all(r.tokens_per_second >= 2000 for r in advice)
    assert any(e.kind == UNDER_TARGET for e in advice.exclusions)


def test_serving_inputs_are_checked():
    with pytest.raises(ConfigurationError, match=r"sequences \(4\) and concurrency \(8\) name the same thing"):
        Workload(task="inference", params="7B", sequences=4, concurrency=8)
    with pytest.raises(ConfigurationError, match=r"input_tokens \+ output_tokens \(5000\) exceed context_tokens"):
        Workload(task="inference", model="llama-3-8b", context_tokens=4096, input_tokens=4000, output_tokens=1000)
    with pytest.raises(ConfigurationError, match=r"rank_by \('tokens'\) ranks serving"):
        Workload(task="training", params="7B", rank_by="tokens")
    with pytest.raises(ConfigurationError, match=r"concurrency \(8\) applies to serving tasks only"):
        Workload(task="training", params="7B", concurrency=8)
