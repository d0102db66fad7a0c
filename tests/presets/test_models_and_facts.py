"""Models from Hugging Face IDs and config.json files read offline; CPU and weight-only precision; regional AZs only;
and every built-in preset accepted by the advisor for the workload its description claims."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlcdk import ConfigurationError
from mlcdk.advice.advisor import advise
from mlcdk.presets import catalog, models, precision, workloads
from mlcdk.presets.catalog import load_catalog, regional_az_id
from mlcdk.presets.sizing import Workload

#: Llama 3.1 8B's config.json as published (https://huggingface.co/meta-llama/Llama-3.1-8B/blob/main/config.json).
LLAMA_31_8B = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
               "intermediate_size": 14336, "num_attention_heads": 32, "num_hidden_layers": 32,
               "num_key_value_heads": 8, "max_position_embeddings": 131072, "vocab_size": 128256,
               "tie_word_embeddings": False, "torch_dtype": "bfloat16"}


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "alias"), [
    ("meta-llama/Llama-3.1-8B-Instruct", "llama-3.1-8b"), ("META-LLAMA/LLAMA-3.1-8B", "llama-3.1-8b"),
    ("meta-llama/Llama-3.3-70B-Instruct", "llama-3.3-70b"), ("mistralai/Mixtral-8x7B-Instruct-v0.1", "mixtral-8x7b"),
    ("llama-3.3-70b", "llama-3.3-70b")])
def test_hugging_face_ids_and_aliases_name_the_known_models(name, alias):
    assert Workload(task="inference", model=name).model == alias


def test_a_local_config_json_is_read_and_its_parameters_counted(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(LLAMA_31_8B))
    workload = Workload(task="inference", model=str(path))
    # the model card's 8.03B: 128,256 x 4,096 x 2 embeddings + 32 x (attention 41.9M + MLP 176.2M) + norms
    assert workload.params == pytest.approx(8.03e9, rel=0.001)
    assert workload.architecture.kv_heads == 8 and workload.context_tokens == 4096
    assert Workload(task="inference", model=str(tmp_path)).params == workload.params  # the directory works too


def test_a_mixture_of_experts_config_counts_total_and_active_parameters(tmp_path):
    config = {"model_type": "mixtral", "hidden_size": 4096, "intermediate_size": 14336, "num_attention_heads": 32,
              "num_hidden_layers": 32, "num_key_value_heads": 8, "max_position_embeddings": 32768, "vocab_size": 32000,
              "num_local_experts": 8, "num_experts_per_tok": 2, "tie_word_embeddings": False}
    (tmp_path / "config.json").write_text(json.dumps(config))
    architecture = models.get_model(str(tmp_path / "config.json"))
    # Mistral's announcement: 46.7B total, 12.9B used per token
    assert architecture.params == pytest.approx(46.7e9, rel=0.002)
    assert architecture.active_params == pytest.approx(12.9e9, rel=0.01)


def test_a_hugging_face_id_is_read_from_the_local_cache_offline(tmp_path, monkeypatch):
    snapshot = tmp_path / "models--acme--tiny-llama" / "snapshots" / "0123abc"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps({**LLAMA_31_8B, "num_hidden_layers": 16}))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    workload = Workload(task="inference", model="acme/tiny-llama")
    assert workload.model == "acme/tiny-llama" and workload.architecture.layers == 16
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    with pytest.raises(ConfigurationError, match=r"not in the local Hugging Face cache; download it "
                                                 r"\(huggingface-cli download acme/tiny-llama config.json\)"):
        Workload(task="inference", model="acme/tiny-llama")


@pytest.mark.parametrize(("content", "message"), [
    ("not json", "not valid JSON"), ("[1, 2]", "must hold a JSON object"),
    ('{"hidden_size": 1, "hidden_size": 2}', "appears twice in one mapping"),
    (json.dumps({"hidden_size": 4096}), "has no num_hidden_layers"),
    (json.dumps({**LLAMA_31_8B, "num_hidden_layers": -2}), r"num_hidden_layers \(-2\) must be a whole number"),
    (json.dumps({**LLAMA_31_8B, "num_key_value_heads": 64}), "is not a valid attention shape")])
def test_a_bad_config_json_is_refused_with_the_file_named(tmp_path, content, message):
    path = tmp_path / "config.json"
    path.write_text(content)
    with pytest.raises(ConfigurationError, match=message) as error:
        Workload(task="inference", model=str(path))
    assert str(path) in str(error.value)


def test_an_oversized_config_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(" " * (models.MAX_CONFIG_BYTES + 1))
    with pytest.raises(ConfigurationError, match="is larger than 1,000,000 bytes"):
        models.get_model(str(path))


@pytest.mark.parametrize("name", sorted(models.models()))
def test_every_known_model_counts_to_its_published_parameters(name):
    """The count from each entry's own shape agrees with its card's figure within 0.5% (vocabularies from the
    configs; gpt2-xl ties its embeddings)."""
    vocab = {"gpt2-xl": 50257, "llama-65b": 32000, "llama-2-7b": 32000, "llama-2-13b": 32000, "llama-2-70b": 32000,
             "mistral-7b-v0.3": 32768, "mixtral-8x7b": 32000, "qwen2.5-7b": 152064, "qwen2.5-72b": 152064,
             "tinyllama-1.1b": 32000}
    model = models.models()[name]
    counted = models.count_params(model, vocab.get(name, 128256), name == "gpt2-xl", model.experts)
    assert counted == pytest.approx(model.params, rel=0.005)


# --------------------------------------------------------------------------------------------
# Precision: CPU bf16 and weight-only fp8
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("family", "bf16"), [("c7g", "native"), ("c7gn", "native"), ("c7i", "native"),
                                              ("c6i", "unknown"), ("m5a", "unknown")])
def test_cpu_bf16_follows_the_processor(family, bf16):
    spec = next(s for s in catalog.default_catalog() if s.family == family)
    assert precision.support(precision.device_name(spec), "bf16") == bf16


def test_bf16_serves_on_graviton3_and_sapphire_rapids():
    advice = advise(Workload(task="inference", params="1B", regions="us-east-1", accelerator="cpu"))
    assert {r.instance_type.split(".")[0] for r in advice} == {"c7g", "c7gn", "c7i"}


def test_fp8_checkpoints_serve_on_ampere_as_weight_only():
    advice = advise(Workload(task="inference", model="llama-3-70b", precision="fp8", regions="us-east-1"))
    a100 = next(r for r in advice if r.instance_type == "p4d.24xlarge")
    assert a100.precision_support == "weight-only" and "fp8 as weight-only storage" in a100.reason
    training = advise(Workload(task="training", params="7B", precision="fp8", regions="us-east-1"), explain=True)
    assert "p4d.24xlarge" not in {r.instance_type for r in training}


# --------------------------------------------------------------------------------------------
# Offerings: only the region's own AZs
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("az_id", "regional"), [("use1-az4", True), ("usw2-az1", True), ("apse2-az3", True),
                                                 ("use1-atl2-az1", False), ("usw2-lax1-az1", False),
                                                 ("use1-wl1-bos-wlz1", False)])
def test_regional_az_ids_are_told_from_local_and_wavelength_zones(az_id, regional):
    assert regional_az_id(az_id) is regional


def test_spot_never_prices_a_local_zone():
    """Issue 24: --spot picked p5.48xlarge at $10.24, the use1-atl2-az1 Local Zone sample; the lowest regional AZ
    (prices.json, us-east-1) was $17.63."""
    spec = catalog.get("p5.48xlarge")
    assert "use1-atl2-az1" not in spec.spot_prices("us-east-1")
    assert spec.spot_price("us-east-1") == 17.6289
    advice = advise(Workload(task="training", params="7B", regions="us-east-1", purchase_option="spot"))
    assert next(r for r in advice if r.instance_type == "p5.48xlarge").price_per_node_usd == 17.6289


def test_a_refreshed_catalog_with_local_zone_offerings_keeps_only_regional_azs(tmp_path):
    source = catalog.DATA_DIR
    for name in catalog.SNAPSHOT_FILES:
        (tmp_path / name).write_text((source / name).read_text())
    offerings = json.loads((tmp_path / "offerings.json").read_text())
    offerings["offerings"]["p5.48xlarge"]["us-east-1"].append("use1-atl2-az1")
    (tmp_path / "offerings.json").write_text(json.dumps(offerings))
    spec = load_catalog(Path(tmp_path)).get("p5.48xlarge")
    assert "use1-atl2-az1" not in spec.offered_azs("us-east-1") and "use1-az4" in spec.offered_azs("us-east-1")


# --------------------------------------------------------------------------------------------
# Every built-in preset, accepted for the workload its description claims
# --------------------------------------------------------------------------------------------

#: What each preset's description and reason claim, as a workload the advisor must accept the preset's type for.
PRESET_CLAIMS = {
    "llm-pretrain-trainium": ({"task": "training", "model": "llama-3-70b", "accelerator": "trainium"}, ">1"),
    "llm-pretrain-nvidia": ({"task": "training", "model": "llama-3-70b", "accelerator": "nvidia"}, ">1"),
    "finetune-trainium": ({"task": "lora", "model": "llama-2-7b", "accelerator": "trainium"}, "1"),
    "finetune-nvidia-l40s": ({"task": "fine-tuning", "model": "llama-2-7b"}, "1"),
    "finetune-nvidia-a10g": ({"task": "lora", "model": "llama-2-7b"}, "1"),
    "cv-training-nvidia": ({"task": "training", "params": "300M"}, "1"),  # ViT-L/16 is 304M parameters
    "llm-serving-inferentia2": ({"task": "inference", "model": "mistral-7b-v0.3", "accelerator": "inferentia"}, "1"),
    "serving-nvidia": ({"task": "inference", "model": "mistral-7b-v0.3", "accelerator": "nvidia"}, "1"),
    "cpu-inference": ({"task": "inference", "params": "1B", "accelerator": "cpu"}, "1"),
}


def test_every_builtin_preset_has_a_claim():
    assert set(PRESET_CLAIMS) == set(workloads.builtin_presets())


@pytest.mark.parametrize("name", sorted(PRESET_CLAIMS))
def test_the_advisor_accepts_each_preset_for_the_workload_it_claims(name):
    preset = workloads.builtin_presets()[name]
    claim, nodes = PRESET_CLAIMS[name]
    region = next(r for r in ("us-east-1", "us-west-2", "us-east-2") if preset.spec.offered_in(r))
    advice = advise(Workload(**claim, regions=region), explain=True)
    mine = [r for r in advice if r.instance_type == preset.instance_type]
    why = [e.reason for e in advice.exclusions if e.instance_type == preset.instance_type]
    assert mine, f"{name}: {preset.instance_type} excluded: {why}"
    assert (mine[0].nodes > 1) if nodes == ">1" else mine[0].nodes == 1
    assert (claim["task"] == "inference") == (preset.task == "inference")


def test_inf2_xlarge_cannot_load_an_8b_model_and_its_preset_says_so():
    """Issue 24: the preset claimed 7B-class serving and the advisor excluded it for llama-3-8b. The host rule
    stands (16 GiB of host memory, 15 GiB of weights); the preset now states its limit and its fallback."""
    preset = workloads.builtin_presets()["llm-serving-inferentia2"]
    assert "8B model" in preset.reason and "inf2.8xlarge" in preset.reason
    assert "inf2.8xlarge" in preset.fallback_instance_types
