"""Sizing: parameter counts, workloads checked on construction, and the memory rules with their defaults."""
from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlcdk import ConfigurationError
from mlcdk.advice.estimates import estimate_memory, training_flops
from mlcdk.presets import sizing
from mlcdk.presets.sizing import SizingRules, Workload, parse_count


@pytest.mark.parametrize(("text", "expected"), [
    ("7B", 7e9), ("70b", 70e9), ("1.5T", 1.5e12), ("350M", 350e6), (" 13B ", 13e9), ("2k", 2e3),
    ("70e9", 70e9), ("7_000_000_000", 7e9), (70e9, 70e9), (7_000_000_000, 7e9), ("405", 405.0),
])
def test_parse_count_reads_suffixes_and_numbers(text, expected):
    assert parse_count(text, "params") == expected


@given(st.integers(min_value=1, max_value=10**6), st.sampled_from([("k", 10**3), ("M", 10**6), ("b", 10**9),
                                                                   ("B", 10**9), ("T", 10**12)]))
def test_any_whole_count_with_a_suffix_parses_exactly(number, suffix):
    letter, scale = suffix
    assert parse_count(f"{number}{letter}", "params") == number * scale


@pytest.mark.parametrize("bad", ["7Q", "-3B", "abc", "", "0B", "B", "1e999B", True, None, float("nan"), float("inf"),
                                 -5, [7]])
def test_parse_count_rejects_with_the_parameter_and_value(bad):
    with pytest.raises(ConfigurationError, match=r"^params \(") as error:
        parse_count(bad, "params")
    assert repr(bad) in str(error.value) and "7B" in str(error.value)


def test_a_count_without_suffix_below_a_million_parameters_is_a_mistake():
    with pytest.raises(ConfigurationError, match="did you forget a suffix"):
        Workload(task="training", params="7")


@pytest.mark.parametrize(("kwargs", "pattern"), [
    ({"task": "trainig", "params": "7B"}, r"task \('trainig'\) must be one of training, fine-tuning, lora, "
                                           r"inference, batch-inference; did you mean 'training'\?"),
    ({"task": "training", "params": "7B", "precision": "bf17"}, r"precision \('bf17'\) must be one of fp32, bf16, "
                                                                r"fp16, fp8, int8, int4"),
    ({"task": "training", "params": "7B", "precision": "int4"}, r"precision \('int4'\) .* allowed: fp32, bf16"),
    ({"task": "inference", "model": "llama3-8b"}, r"model: unknown model 'llama3-8b'; did you mean 'llama-3-8b'"),
    ({"task": "inference"}, "params or model is required"),
    ({"task": "inference", "model": "llama-3-8b", "params": "70B"}, r"params \('70B'\) contradicts model"),
    ({"task": "training", "params": "7B", "accelerator": "tpu"}, r"accelerator \('tpu'\) must be one of any, "
                                                                 r"trainium, inferentia, nvidia, cpu"),
    ({"task": "training", "params": "7B", "accelerator": "inferentia"}, "Inferentia is inference-only"),
    ({"task": "lora", "params": "7B", "accelerator": "inferentia"}, "Inferentia is inference-only"),
    ({"task": "training", "params": "7B", "max_nodes": 0}, r"max_nodes \(0\) must be a whole number of at least 1"),
    ({"task": "training", "params": "7B", "max_nodes": True}, r"max_nodes \(True\)"),
    ({"task": "training", "params": "7B", "max_price_per_hour_usd": 0}, r"max_price_per_hour_usd \(0\) must be"),
    ({"task": "training", "params": "7B", "max_price_per_hour_usd": -5.0}, r"max_price_per_hour_usd \(-5.0\)"),
    ({"task": "training", "params": "7B", "purchase_option": "mixed"}, r"purchase_option \('mixed'\) must be one "
                                                                      r"of on-demand, spot"),
    ({"task": "training", "params": "7B", "context_tokens": 4096}, "context_tokens .* applies to serving tasks only"),
    ({"task": "inference", "params": "7B", "training_tokens": "1T"}, "training_tokens .* applies to training"),
    ({"task": "training", "params": "7B", "training_tokens": "lots"}, r"training_tokens \('lots'\) is not a count"),
    ({"task": "inference", "params": "7B", "sequences": 0}, r"sequences \(0\) must be a whole number"),
    ({"task": "inference", "model": "gpt2-xl", "context_tokens": 4096}, "exceeds gpt2-xl's maximum context of 1024"),
    ({"task": "inference", "params": "7B", "regions": ["us-east-1", ""]}, "regions .* must be region names"),
    ({"task": "inference", "params": "7B", "regions": ""}, r"regions \(''\) must be region names.*blank"),
    ({"task": "inference", "params": "7B", "regions": "  "}, r"regions \('  '\) must be region names"),
    ({"task": "inference", "params": "7B", "regions": "us-east-1,"}, r"regions \('us-east-1,'\) must be"),
    ({"task": "inference", "params": "7B", "regions": "all,us-east-1"}, "'all' already means every region"),
    ({"task": "inference", "params": "7B", "regions": 5}, r"regions \(5\) must be region names"),
    ({"task": "training", "params": "1e40"}, r"params \('1e40'\) is over the maximum of 1e15"),
    ({"task": "training", "params": 2e15}, r"params \(2000000000000000.0\) is over the maximum of 1e15"),
    ({"task": "training", "params": "7B", "training_tokens": "1e30"}, r"training_tokens \('1e30'\) is over"),
    ({"task": "inference", "params": "7B", "sequences": 10**7}, r"sequences \(10000000\) must be a whole number of "
                                                                r"at least 1 and at most 1,000,000"),
    ({"task": "inference", "params": "7B", "context_tokens": 10**9}, r"context_tokens \(1000000000\) must be"),
    ({"task": "training", "params": "7B", "memory_headroom": 0.6}, r"memory_headroom \(0.6\) must be a fraction "
                                                                   r"from 0 to 0.5"),
    ({"task": "training", "params": "7B", "memory_headroom": -0.1}, r"memory_headroom \(-0.1\)"),
    ({"task": "training", "params": "7B", "memory_headroom": float("nan")}, r"memory_headroom \(nan\)"),
    ({"task": "training", "params": "7B", "memory_headroom": "10%"}, r"memory_headroom \('10%'\)"),
    ({"task": "training", "params": "7B", "memory_headroom": True}, r"memory_headroom \(True\)"),
    ({"task": "training", "params": "7B", "rank_by": "weekly"}, r"rank_by \('weekly'\) must be one of job, tokens, hourly"),
    ({"task": "inference", "params": "7B", "rank_by": "job"}, r"rank_by \('job'\) ranks training tasks"),
    ({"task": "training", "params": "7B", "max_days": 0}, r"max_days \(0\) must be a number above 0"),
    ({"task": "training", "params": "7B", "max_days": float("inf")}, r"max_days \(inf\)"),
    ({"task": "training", "params": "7B", "max_days": "3"}, r"max_days \('3'\)"),
    ({"task": "inference", "params": "7B", "max_days": 3}, "max_days .* applies to training tasks"),
    ({"task": "training", "params": "7B", "accelerator": ["nvidia"]}, r"accelerator \(\['nvidia'\]\) must be"),
])
def test_bad_workloads_name_the_parameter_the_value_and_what_is_allowed(kwargs, pattern):
    with pytest.raises(ConfigurationError, match=pattern):
        Workload(**kwargs)


def test_workload_fields_are_normalized():
    workload = Workload(task="Inference", model="LLAMA-3-8B", precision="BF16", regions="us-east-1, us-west-2",
                        accelerator="NVIDIA")
    assert (workload.task, workload.model, workload.precision, workload.accelerator) == (
        "inference", "llama-3-8b", "bf16", "nvidia")
    assert workload.params == 8.03e9 and workload.regions == ("us-east-1", "us-west-2")
    assert (workload.context_tokens, workload.sequences, workload.max_nodes) == (4096, 1, 64)
    assert Workload(task="inference", model="gpt2-xl").context_tokens == 1024  # the model's maximum is smaller


def test_full_training_of_70b_in_bf16_needs_about_1_3_tb():
    estimate = estimate_memory(Workload(task="training", params="70B"))
    assert estimate.total_bytes == pytest.approx(70e9 * 16 * 1.2)  # 1.344e12 bytes
    assert 1.3e12 < estimate.total_bytes < 1.4e12


def test_full_fine_tuning_is_sized_like_training():
    assert estimate_memory(Workload(task="fine-tuning", params="13B")).total_bytes == pytest.approx(13e9 * 16 * 1.2)


@pytest.mark.parametrize(("precision", "frozen_bytes", "adapter_bytes"), [("bf16", 2, 16), ("fp32", 4, 16),
                                                                          ("int4", 0.5 + 0.127 / 8, 4)])
def test_lora_counts_frozen_weights_at_the_precision_plus_adapters_and_their_optimizer(precision, frozen_bytes,
                                                                                       adapter_bytes):
    estimate = estimate_memory(Workload(task="lora", model="llama-2-7b", precision=precision))
    adapters = 16 * 32 * (4 * (4096 + 4096) + 3 * (4096 + 11008))  # rank 16 on every linear layer
    activations = 4096 * 4096 * (2 * 32 + 34)
    assert estimate.total_bytes == pytest.approx(6.74e9 * frozen_bytes + adapters * adapter_bytes + activations)


@pytest.mark.parametrize(("precision", "per_param"), [("fp32", 4), ("bf16", 2), ("fp16", 2), ("fp8", 1), ("int8", 1),
                                                      ("int4", 0.5)])
def test_inference_weights_at_the_precision_plus_ten_percent(precision, per_param):
    estimate = estimate_memory(Workload(task="inference", params="7B", precision=precision))
    assert estimate.total_bytes == pytest.approx(7e9 * per_param * 1.1)
    assert "KV cache not counted" in estimate.notes[0]


def test_seven_billion_in_bf16_fits_one_24_gb_gpu():
    assert estimate_memory(Workload(task="inference", params="7B")).total_bytes == pytest.approx(15.4e9)
    assert 15.4e9 < 24e9


def test_inference_of_a_known_architecture_counts_the_kv_cache():
    # Llama 3 8B (model card): 32 layers, 8 KV heads of 128 dimensions; bf16 keys and values.
    workload = Workload(task="inference", model="llama-3-8b", context_tokens=8192, sequences=8)
    kv = 2 * 32 * 8 * 128 * 8192 * 8 * 2
    assert estimate_memory(workload).total_bytes == pytest.approx((8.03e9 * 2 + kv) * 1.1)
    assert estimate_memory(workload).notes == ()


def test_the_kv_cache_is_never_stored_below_one_byte_per_value_by_default():
    workload = Workload(task="inference", model="llama-3-8b", precision="int4", context_tokens=8192)
    kv = 2 * 32 * 8 * 128 * 8192 * 1 * 1
    assert estimate_memory(workload).total_bytes == pytest.approx((8.03e9 * 0.5 + kv) * 1.1)
    rules = SizingRules(kv_cache_bytes_per_value=2)
    assert estimate_memory(workload, rules).total_bytes == pytest.approx((8.03e9 * 0.5 + 2 * kv) * 1.1)


def test_rules_are_configurable():
    workload = Workload(task="training", params="10B")
    assert estimate_memory(workload, SizingRules(activation_allowance=0)).total_bytes == pytest.approx(160e9)
    assert estimate_memory(workload, SizingRules(training_bytes_per_param=18)).total_bytes == pytest.approx(10e9 * 18 * 1.2)
    lora = Workload(task="lora", model="llama-2-7b", lora_rank=8)
    adapters = 19_988_480  # PEFT's count for Llama-2-7b at rank 8 on every linear layer
    assert estimate_memory(lora, SizingRules(lora_adapter_bytes_per_param=12, tokens_per_device_step=512)
                           ).total_bytes == pytest.approx(6.74e9 * 2 + adapters * 12 + 512 * 4096 * (2 * 32 + 34))


@pytest.mark.parametrize(("field", "value"), [("utilization", 0), ("utilization", 1.5), ("activation_allowance", -0.1),
                                              ("training_bytes_per_param", 0), ("communication_overlap", 2),
                                              ("kv_cache_bytes_per_value", -1)])
def test_bad_rules_are_rejected_by_name(field, value):
    with pytest.raises(ConfigurationError, match=rf"^{field} \("):
        SizingRules(**{field: value})


def test_training_flops_are_six_per_parameter_per_token():
    assert training_flops(Workload(task="training", params="70B", training_tokens="1T")) == pytest.approx(6 * 70e9 * 1e12)
    # without a token count, the reference job: 20 tokens per parameter (1.4T tokens for 70B)
    assert training_flops(Workload(task="training", params="70B")) == pytest.approx(6 * 70e9 * 1.4e12)
    assert training_flops(Workload(task="inference", params="70B")) is None


def test_a_mixture_of_experts_trains_at_its_active_parameters_but_is_held_whole():
    workload = Workload(task="training", model="mixtral-8x7b", training_tokens="1T")
    assert training_flops(workload) == pytest.approx(6 * 12.9e9 * 1e12)
    assert estimate_memory(workload).total_bytes == pytest.approx(46.7e9 * 16 * 1.2)


@pytest.mark.parametrize("name", sorted(sizing.models()))
def test_every_model_entry_is_sourced_and_self_consistent(name):
    model = sizing.models()[name]
    assert model.source.startswith("https://huggingface.co/") and model.source.endswith("config.json")
    assert model.attention_heads * model.head_dim == model.hidden_size
    assert model.attention_heads % model.kv_heads == 0
    # a sanity bound: every decoder block holds more than 4 x hidden^2 weights (attention plus MLP)
    assert model.params > model.layers * model.hidden_size**2 * 4
    assert model.active_params is None or model.active_params < model.params


def test_the_table_has_the_models_the_issue_names():
    assert {"llama-3-8b", "llama-3-70b", "llama-3.1-405b", "mixtral-8x7b", "qwen2.5-72b", "gpt2-xl"} <= set(
        sizing.models())


@pytest.mark.parametrize(("entry", "message"), [
    ({"params": 7e9}, r"models\['bad'\]: missing field 'layers'"),
    ({**{"params": "7B"}}, r"models\['bad'\]: field 'params' should be int/float"),
    ({"params": 7e9, "layers": 32, "hidden_size": 4096, "attention_heads": 32, "kv_heads": 8, "head_dim": 128,
      "intermediate_size": 11008, "max_context_tokens": 0, "source": "https://example.com", "note": "x"},
     "field 'max_context_tokens' is 0"),
    ({"params": 7e9, "layers": 32, "hidden_size": 4096, "attention_heads": 32, "kv_heads": 8, "head_dim": 128,
      "intermediate_size": 11008, "max_context_tokens": 8, "source": "a paper", "note": "x"},
     "field 'source' .* https://"),
    ({"params": 7e9, "colour": "blue"}, "unknown field 'colour'"),
])
def test_a_corrupt_models_file_names_the_file_entry_and_field(tmp_path, entry, message):
    path = tmp_path / "models.json"
    path.write_text(json.dumps({"models": {"bad": entry}}))
    with pytest.raises(ConfigurationError, match=message) as error:
        sizing.load_models(path)
    assert str(path) in str(error.value)


def test_describe_uses_the_largest_unit():
    assert Workload(task="inference", params="2T").describe() == "inference 2T bf16"
    assert Workload(task="lora", params="350M", precision="int4").describe() == "lora 350M int4"
    assert Workload(task="inference", model="llama-3-8b").describe() == "inference llama-3-8b bf16"
    assert math.isclose(Workload(task="inference", params=1.5e9).params, 1.5e9)


def test_new_limits_default_and_normalize():
    training = Workload(task="training", params="7B")
    assert (training.memory_headroom, training.rank_by, training.max_days) == (0.10, "job", None)
    assert training.job_tokens == pytest.approx(140e9)  # 20 tokens per parameter
    inference = Workload(task="inference", params="7B", memory_headroom=0)
    assert (inference.memory_headroom, inference.rank_by, inference.job_tokens) == (0.0, "tokens", None)
    assert Workload(task="lora", params="7B", rank_by=" Hourly ", max_days=2).rank_by == "hourly"
    assert Workload(task="training", params="1e15").params == 1e15  # the bound itself is allowed


def test_gpu_means_nvidia_and_all_means_every_region():
    assert Workload(task="inference", params="7B", accelerator="GPU").accelerator == "nvidia"
    assert Workload(task="inference", params="7B", regions="all").regions == ()
    assert Workload(task="inference", params="7B", regions=("ALL",)).regions == ()
    assert Workload(task="inference", params="7B", regions="us-east-1, eu-west-1").regions == ("us-east-1", "eu-west-1")


def test_weights_at_the_precision_are_what_a_host_loads():
    assert Workload(task="inference", model="mixtral-8x7b", precision="int4").weight_bytes == pytest.approx(23.35e9)
    assert Workload(task="training", params="7B").weight_bytes == pytest.approx(14e9)
