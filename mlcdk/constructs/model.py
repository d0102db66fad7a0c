"""ModelOptions: the model an InferenceFleet serves (the option group; mlcdk.constructs.model_plan checks it and
derives its server)."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_secretsmanager as secretsmanager


@dataclass(frozen=True)
class ModelOptions:
    """The model an InferenceFleet serves with vLLM's OpenAI-compatible server (``engine="ecs"``).

    :param source: ``s3://bucket/prefix`` (a folder of Hugging Face model files: config.json, the tokenizer and
        ``*.safetensors``; copied to the node by the task role, which may read that prefix only) or a Hugging Face
        model ID such as ``"TinyLlama/TinyLlama-1.1B-Chat-v1.0"`` (downloaded by the server). Model files never
        pass through CloudFormation.
    :param architecture: the model's shape for sizing, a name from ``mlcdk catalog``'s models (``data/models.json``),
        e.g. "llama-3.1-8b". Default: the known model whose Hugging Face repository is ``source``; otherwise
        ``params`` is required.
    :param params: the parameter count ("8B", 7.6e9) when the architecture is not known (the KV cache then cannot
        be counted). Default: the architecture's.
    :param precision: bf16, fp16, fp32, fp8 (bf16 weights quantized on load; NVIDIA only), int8 or int4 (a
        checkpoint quantized beforehand, NVIDIA only). Sets ``--dtype``. Default: bf16.
    :param context_tokens: the longest sequence served (``--max-model-len``), at most the model's own context.
        Default: 4,096, or the model's context if shorter.
    :param max_concurrent_sequences: sequences batched at once (``--max-num-seqs``), whose KV cache the fit check
        counts. Default: 4 on Neuron (it is compiled into the model), vLLM's own default on GPUs (the fit check
        then counts one full-length sequence; vLLM queues what its KV cache cannot hold).
    :param served_model_name: the name clients put in requests' ``model`` field. Default: the repo ID, or the
        last part of the S3 prefix.
    :param hf_token_secret: a Secrets Manager secret (``secretsmanager.ISecret``, or its complete ARN) whose plain
        text is a Hugging Face token, for gated models. ECS injects it as ``HF_TOKEN`` when the container starts;
        the task execution role may read that one secret. Never put a token itself anywhere in the app. Default:
        none (required for a gated model).
    :param gated: whether the repo needs an accepted licence and a token. Default: True for organizations that
        gate every model (meta-llama), else False.
    :param image: the server image. Default: the vLLM Deep Learning Container for the instance's accelerator
        (``data/containers.json``). A custom image without ``command`` must run ``vllm serve``.
    :param command: the container's whole command line (its entry point), replacing ``vllm serve`` and the derived
        arguments; it must serve the fleet's ``health_check_path`` on its ``port``. Default: derived.
    """

    source: str
    architecture: str | None = None
    params: float | int | str | None = None
    precision: str = "bf16"
    context_tokens: int | None = None
    max_concurrent_sequences: int | None = None
    served_model_name: str | None = None
    hf_token_secret: secretsmanager.ISecret | str | None = None
    gated: bool | None = None
    image: str | None = None
    command: tuple[str, ...] | None = None
