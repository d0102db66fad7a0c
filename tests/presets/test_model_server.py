"""mlcdk.presets.model_server: sources, images, tensor-parallel sizes, start-up estimates and the fallback rule, pure Python.

Expected values are worked by hand from the sources data/model_server.json names (see each test), never from the code."""
from __future__ import annotations

import json
import math

import pytest

from mlcdk import ConfigurationError
from mlcdk.advice.advisor import EXCLUSION_KINDS, advise, fit_problem
from mlcdk.presets import catalog, images, model_server
from mlcdk.presets.sizing import Workload, models
from tests.harness import cdk_modules_loaded_by


@pytest.mark.parametrize(("text", "kind", "bucket", "prefix", "repo", "served"), [
    ("s3://acme-models/llama/8b/", "s3", "acme-models", "llama/8b", None, "8b"),
    ("s3://acme.models", "s3", "acme.models", "", None, "acme.models"),
    ("TinyLlama/TinyLlama-1.1B-Chat-v1.0", "huggingface", None, "", "TinyLlama/TinyLlama-1.1B-Chat-v1.0",
     "TinyLlama/TinyLlama-1.1B-Chat-v1.0"),
    ("gpt2", "huggingface", None, "", "gpt2", "gpt2"),
])
def test_sources_are_an_s3_prefix_or_a_hugging_face_repo(text, kind, bucket, prefix, repo, served):
    source = model_server.parse_source(text)
    assert (source.kind, source.bucket, source.prefix, source.repo, source.default_served_name) == (
        kind, bucket, prefix, repo, served)


@pytest.mark.parametrize("text", [
    "s3://ab", "s3://Upper/x", "s3://acme_models/x", "s3://-acme/x", "s3://acme-/x", "s3://192.168.1.1/x",
    "s3://acme..models/x", "s3://acme/a//b", "s3://acme/a b", "s3://acme/a\tb", "s3:/acme/x", "https://hf.co/a/b",
    "a/b/c", "org/-name", "org/name-", "org/na--me", "org/na..me", "org/name.git", "org /name", " org/name",
    "org/name\n", "", "o/" + "x" * 97,
])
def test_malformed_sources_are_refused_naming_the_value(text):
    with pytest.raises(ConfigurationError, match=r"model.source \("):
        model_server.parse_source(text)


def test_a_hugging_face_repo_maps_to_its_known_architecture_by_its_config_json():
    assert model_server.architecture_for(model_server.parse_source("tinyllama/tinyllama-1.1b-chat-v1.0")).name == "tinyllama-1.1b"
    assert model_server.architecture_for(model_server.parse_source("Qwen/Qwen2.5-7B")).name == "qwen2.5-7b"
    assert model_server.architecture_for(model_server.parse_source("Qwen/Qwen2.5-7B-Instruct")).name == "qwen2.5-7b"
    assert model_server.architecture_for(model_server.parse_source("Qwen/Qwen2.5-14B-Instruct-AWQ")) is None
    assert model_server.architecture_for(model_server.parse_source("s3://acme/qwen")) is None


def test_meta_llama_is_gated_and_tinyllama_is_not():
    assert model_server.gated(model_server.parse_source("meta-llama/Llama-3.1-8B-Instruct"))
    assert not model_server.gated(model_server.parse_source("TinyLlama/TinyLlama-1.1B-Chat-v1.0"))
    assert model_server.facts().default_model == "TinyLlama/TinyLlama-1.1B-Chat-v1.0"
    assert model_server.facts().default_model_licence == "Apache-2.0"


#: type -> (image, tensor parallel size). NeuronCores: 2 per Inferentia2 or Trainium chip (1 or 12 or 16 chips);
#: a Trainium2 chip has 8 physical NeuronCores, 4 logical ones at the default LNC=2, so 16 chips give 64.
@pytest.mark.parametrize(("instance_type", "image", "server", "tp"), [
    ("inf2.xlarge", "vllm-neuronx", "vllm-nxdi", 2), ("inf2.48xlarge", "vllm-neuronx", "vllm-nxdi", 24),
    ("trn1.32xlarge", "vllm-neuronx", "vllm-nxdi", 32), ("trn1n.32xlarge", "vllm-neuronx", "vllm-nxdi", 32),
    ("trn2.48xlarge", "vllm-neuronx-trn2", "vllm-neuron", 64),
    ("g6e.12xlarge", "vllm-cuda", "vllm", 4), ("p5.48xlarge", "vllm-cuda", "vllm", 8), ("g6.xlarge", "vllm-cuda", "vllm", 1),
])
def test_image_and_tensor_parallel_size_per_type(instance_type, image, server, tp):
    spec = catalog.get(instance_type)
    chosen = model_server.default_serving_image(spec)
    assert (chosen.name, model_server.server_of(chosen)) == (image, server)
    assert model_server.tensor_parallel_size(spec, models()["llama-3.1-8b"]) == tp


def test_the_serving_images_are_the_dlc_lists_vllm_images():
    uris = {i.name: i.uri for i in images.book().images if i.role == "serving"}
    assert uris == {
        "vllm-cuda": "public.ecr.aws/deep-learning-containers/vllm:0.27.1-gpu-py312-cu130-ubuntu22.04-ec2",
        "vllm-neuronx-trn2": "public.ecr.aws/neuron/pytorch-inference-vllm-neuronx:0.24.0.1.1.0-neuronx-py313-sdk2.32.0-ubuntu24.04",
        "vllm-neuronx": "public.ecr.aws/neuron/pytorch-inference-vllm-neuronx:0.16.0-neuronx-py312-sdk2.31.1-ubuntu24.04"}


def test_a_cuda_13_image_cannot_serve_a_v100():
    # CUDA 13.0 dropped Volta: the images' rule (data/accelerator_software.json) refuses it for p3.
    with pytest.raises(ConfigurationError, match=r"no vLLM Deep Learning Container serves p3.2xlarge"):
        model_server.default_serving_image(catalog.get("p3.2xlarge"))


@pytest.mark.parametrize("instance_type", ["c7g.xlarge", "c7i.2xlarge", "inf1.xlarge", "g4ad.xlarge"])
def test_types_no_vllm_dlc_drives_are_refused_with_the_way_out(instance_type):
    with pytest.raises(ConfigurationError, match=rf"no vLLM Deep Learning Container serves {instance_type}.*engine='nodes'"):
        model_server.default_serving_image(catalog.get(instance_type))


def test_every_serving_image_is_a_pinned_reference_with_its_source():
    for image in (i for i in images.book().images if i.role == "serving"):
        assert ":" in image.uri.rsplit("/", 1)[-1] and not image.uri.endswith((":latest", ":server-cuda"))
        assert image.source.startswith("https://") and len(image.reason) > 40


def test_server_arguments_per_flavour():
    gpu = model_server.ServerSettings("Qwen/Qwen2.5-7B", "qwen", 4, "fp8", 8192, None, 8000, "vllm")
    assert gpu.arguments() == ["Qwen/Qwen2.5-7B", "--served-model-name", "qwen", "--host", "0.0.0.0", "--port", "8000",
                               "--tensor-parallel-size", "4", "--dtype", "bfloat16", "--quantization", "fp8",
                               "--max-model-len", "8192"]
    nxdi = model_server.ServerSettings("m", "m", 2, "fp16", 2048, 8, 8080, "vllm-nxdi")
    assert nxdi.arguments()[-6:] == ["--max-num-seqs", "8", "--block-size", "32", "--num-gpu-blocks-override", "8"]
    assert "--dtype" in nxdi.arguments() and nxdi.arguments()[nxdi.arguments().index("--dtype") + 1] == "float16"
    trn2 = model_server.ServerSettings("m", "m", 64, "bf16", 4096, 4, 8080, "vllm-neuron")
    assert "--num-gpu-blocks-override" not in trn2.arguments()


def test_start_up_estimate_worked_by_hand():
    # inf2.xlarge: 2.2e9 B over min(2.083 Gbit/s = 260.4 MB/s, 125 MiB/s = 131.07 MB/s) = 16.785 s; load the same;
    # compile 2.2 GB x 60 s = 132 s; 2 x 165.57 = 331.14 s -> 360 s.
    estimate = model_server.startup_estimate(catalog.get("inf2.xlarge"), 2.2e9, 125)
    assert [label for label, _ in estimate.parts] == ["download", "load", "Neuron compile"]
    assert [round(s, 2) for _, s in estimate.parts] == [16.78, 16.78, 132.0]
    assert estimate.grace_seconds == 360
    # g6.xlarge (2.5 Gbit/s = 312.5 MB/s) reading 15.22e9 B from a 1,000 MiB/s volume: download at the network,
    # 48.70 s; load 14.51 s; no compile; 2 x 63.22 = 126.4 s -> 180 s.
    gpu = model_server.startup_estimate(catalog.get("g6.xlarge"), 15.22e9, 1000)
    assert [round(s, 2) for _, s in gpu.parts] == [48.7, 14.51] and gpu.grace_seconds == 180
    assert gpu.summary() == "180 s = 2 x (download 49 s + load 15 s), rounded up to a minute"


def test_checkpoint_bytes_per_precision():
    assert model_server.checkpoint_bytes(1e9, "bf16") == 2e9
    assert model_server.checkpoint_bytes(1e9, "fp8") == 2e9  # quantized while a 16-bit checkpoint loads
    assert model_server.checkpoint_bytes(1e9, "int4") == 0.5e9


@pytest.mark.parametrize(("primary", "fallback", "problem"), [
    ("inf2.xlarge", "inf2.8xlarge", None),
    ("g6.xlarge", "g5.xlarge", None),
    ("inf2.xlarge", "inf2.24xlarge", "it has 12 NeuronCores, and the server is sharded over 2"),
    ("g6e.12xlarge", "g6e.xlarge", "it has 1 GPUs, and the server is sharded over 4"),
    ("g6.2xlarge", "g6.xlarge", "it has 16 GiB of memory, less than the 32 GiB the task is sized for"),
    ("trn1.32xlarge", "trn2.48xlarge", "it has 64 NeuronCores, and the server is sharded over 32"),
    ("trn2.48xlarge", "trn1.32xlarge", "the server image of trn2.48xlarge (vllm-neuronx-trn2) does not run it"),
])
def test_a_fallback_must_run_the_same_server_task(primary, fallback, problem):
    assert model_server.fallback_problem(catalog.get(primary), catalog.get(fallback)) == problem


def test_the_fleets_fit_check_and_advise_share_one_memory_rule():
    """For every inference type, known model and sequence count, fit_problem refuses exactly the candidates that
    advise() leaves out for an accelerator, precision, memory or host-memory reason."""
    memory_kinds = {"does not fit", "host memory", "precision unsupported", "unsupported accelerator",
                    "accelerator preference", "fractional GPU", "no catalog AMI"}
    assert memory_kinds <= set(EXCLUSION_KINDS)
    region = "us-east-1"
    for name in ("tinyllama-1.1b", "llama-3.1-8b", "qwen2.5-72b"):
        for sequences in (1, 16):
            workload = Workload(task="inference", model=name, sequences=sequences, regions=(region,))
            advice = advise(workload, explain=True)
            fits = {r.instance_type for r in advice}
            refused = {e.instance_type for e in advice.exclusions if e.kind in memory_kinds}
            for spec in catalog.default_catalog():
                if not spec.offered_in(region) or spec.on_demand_price(region) is None:
                    continue
                problem = fit_problem(spec, workload)
                if spec.instance_type in fits:
                    assert problem is None, (spec.instance_type, name, sequences)
                if spec.instance_type in refused:
                    assert problem is not None, (spec.instance_type, name, sequences)


def test_data_file_errors_name_the_file_and_the_field(tmp_path, monkeypatch):
    broken = json.loads(model_server.SERVING_FILE.read_text())
    broken["neuron"]["max_num_seqs"] = "four"
    path = tmp_path / "model_server.json"
    path.write_text(json.dumps(broken))
    monkeypatch.setattr(model_server, "SERVING_FILE", path)
    model_server.facts.cache_clear()
    try:
        with pytest.raises(ConfigurationError, match=r"model_server.json: neuron: field 'max_num_seqs' should be int"):
            model_server.facts()
    finally:
        model_server.facts.cache_clear()


def test_the_serving_facts_load_without_aws_cdk():
    assert cdk_modules_loaded_by("from mlcdk.presets import catalog, model_server; model_server.facts(); "
                                 "model_server.default_serving_image(catalog.get('inf2.xlarge'))") == []


def test_the_grace_is_never_a_fixed_constant():
    """Doubling the checkpoint doubles every part; a faster volume shortens the download and the load."""
    spec = catalog.get("inf2.48xlarge")
    small, large = (model_server.startup_estimate(spec, b, 125).seconds for b in (10e9, 20e9))
    assert math.isclose(large, 2 * small)
    slow, fast = (model_server.startup_estimate(spec, 10e9, t).seconds for t in (125, 1000))
    assert fast < slow


def test_the_model_bounds_are_the_advisors_own():
    """ModelOptions' context and sequence bounds (bounds.json, checked by mlcdk.params) are the advisor's ceilings."""
    from mlcdk.presets import bounds, sizing

    assert bounds.number("context_tokens").high == sizing.MAX_CONTEXT_TOKENS
    assert bounds.number("max_concurrent_sequences").high == sizing.MAX_SEQUENCES
