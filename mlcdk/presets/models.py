"""Model architectures: the known names of ``data/models.json``, Hugging Face IDs, and ``config.json`` files read
offline (pure Python, no aws_cdk, no network).

A model is named in one of four ways, tried in this order by :func:`get_model`:

1. a known alias from ``data/models.json`` (``llama-3.1-8b``);
2. a Hugging Face ID listed with a known alias (``meta-llama/Llama-3.1-8B-Instruct``), any case;
3. a path to a ``config.json`` file, or to a directory holding one;
4. any other Hugging Face ID whose ``config.json`` is in the local Hugging Face cache (``$HF_HUB_CACHE``, else
   ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``), as ``huggingface-cli download ORG/NAME config.json`` leaves
   it. Nothing is downloaded: the advisor never touches the network.

From a config the layers, hidden size, attention and key-value heads, head size, MLP width, experts and context
length are read, and the parameters are counted: embeddings (twice unless tied), per layer the query, key, value
and output projections and the MLP (three matrices when gated, two when not, times the experts, plus the router),
and the final norm. Biases and per-layer norms are left out (under 0.1% of a 7B model).

>>> get_model("meta-llama/Llama-3.1-8B-Instruct").name
'llama-3.1-8b'
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from mlcdk.errors import ConfigurationError, shown, unknown_name
from mlcdk.presets import datafile
from mlcdk.presets.datafile import DATA_DIR
from mlcdk.presets.datafile import EntryReader, read_mapping

#: A config.json larger than this is not a model config (real ones are a few KB); refused before it is parsed.
MAX_CONFIG_BYTES = 1_000_000
CONFIG_LIMITS = datafile.Limits(max_bytes=MAX_CONFIG_BYTES)
#: model_type values whose MLP has two matrices (up and down); every other family read here is gated (three).
PLAIN_MLP_TYPES = ("gpt2", "gpt_neox", "gptj", "opt", "falcon", "bloom", "starcoder2")
#: config.json keys for each field, first match wins (Llama/Mistral/Qwen names, then GPT-2's).
_CONFIG_KEYS = {
    "layers": ("num_hidden_layers", "n_layer", "num_layers"),
    "hidden_size": ("hidden_size", "n_embd", "d_model"),
    "attention_heads": ("num_attention_heads", "n_head"),
    "kv_heads": ("num_key_value_heads", "num_kv_heads"),
    "head_dim": ("head_dim",),
    "intermediate_size": ("intermediate_size", "n_inner", "ffn_dim"),
    "max_context_tokens": ("max_position_embeddings", "n_positions", "n_ctx", "max_seq_len"),
    "vocab_size": ("vocab_size",),
    "experts": ("num_local_experts",),
    "experts_per_token": ("num_experts_per_tok",),
}


@dataclass(frozen=True)
class ModelArchitecture:
    """A model's size and shape, from its published config."""

    name: str
    params: float
    layers: int
    hidden_size: int
    attention_heads: int
    kv_heads: int
    head_dim: int
    max_context_tokens: int
    source: str
    note: str
    active_params: float | None = None  #: mixture-of-experts: parameters a token passes through
    intermediate_size: int | None = None  #: the MLP's width (per expert)
    experts: int = 1  #: mixture-of-experts: experts per layer
    gated_mlp: bool = True  #: three MLP matrices (gate, up, down) rather than two
    hf_ids: tuple[str, ...] = ()  #: Hugging Face repositories with this config

    def kv_cache_bytes(self, context_tokens: int, sequences: int, bytes_per_value: float) -> float:
        """Keys and values of every layer for ``sequences`` sequences of ``context_tokens`` tokens."""
        return 2 * self.layers * self.kv_heads * self.head_dim * context_tokens * sequences * bytes_per_value

    def kv_bytes_per_token(self, bytes_per_value: float) -> float:
        return self.kv_cache_bytes(1, 1, bytes_per_value)

    def lora_adapter_params(self, rank: int) -> float:
        """LoRA adapter parameters at ``rank`` on every linear layer of every block (QLoRA's "all" modules,
        https://arxiv.org/abs/2305.14314): a d_in x d_out matrix gets rank x (d_in + d_out) parameters (A and B,
        Hu et al. 2021, https://arxiv.org/abs/2106.09685). The embeddings, the output head and the router are not
        adapted."""
        h, q, kv = self.hidden_size, self.attention_heads * self.head_dim, self.kv_heads * self.head_dim
        width = self.intermediate_size or 4 * h
        attention = (h + q) + 2 * (h + kv) + (q + h)
        mlp = (3 if self.gated_mlp else 2) * (h + width)
        return rank * self.layers * (attention + self.experts * mlp)


_MODEL_FIELDS = {"params": (int, float), "active_params": (int, float), "layers": int, "hidden_size": int,
                 "attention_heads": int, "kv_heads": int, "head_dim": int, "max_context_tokens": int,
                 "intermediate_size": int, "experts": int, "gated_mlp": bool, "hf_ids": list, "source": str,
                 "note": str}
_OPTIONAL = {"active_params": None, "experts": 1, "gated_mlp": True, "hf_ids": []}


def load_models(path: Path) -> dict[str, ModelArchitecture]:
    """Read a models file; an error names the file, the entry and the field."""
    models = {}
    for name, entry in read_mapping(path, "models").items():
        read = EntryReader(path, f"models[{name!r}]", entry, _MODEL_FIELDS)
        values = {key: read(key, kind, _OPTIONAL.get(key, ...)) for key, kind in _MODEL_FIELDS.items()}
        for key, value in values.items():
            if key not in ("source", "note", "gated_mlp", "hf_ids") and value is not None and value <= 0:
                raise read.error(key, f"is {value!r}; it must be positive")
        if not values["source"].startswith("https://"):
            raise read.error("source", f"is {values['source']!r}; it must be an https:// URL")
        if values["kv_heads"] > values["attention_heads"]:
            raise read.error("kv_heads", f"({values['kv_heads']}) exceeds attention_heads ({values['attention_heads']})")
        if not all(isinstance(i, str) and i.count("/") == 1 for i in values["hf_ids"]):
            raise read.error("hf_ids", "must be a list of Hugging Face IDs such as 'org/name'")
        values["hf_ids"] = tuple(values["hf_ids"])
        models[name] = ModelArchitecture(name=name, **values)
    return models


@functools.lru_cache(maxsize=1)
def models() -> Mapping[str, ModelArchitecture]:
    """The bundled architectures of ``data/models.json``, loaded once."""
    return MappingProxyType(load_models(DATA_DIR / "models.json"))


@functools.lru_cache(maxsize=1)
def _hub_ids() -> Mapping[str, str]:
    return MappingProxyType({i.lower(): m.name for m in models().values() for i in m.hf_ids})


#: The longest Hugging Face repository ID: two parts of at most 96 characters (huggingface_hub, validate_repo_id).
MAX_HUB_ID = 96 + 1 + 96


def get_model(name: str, parameter: str = "model") -> ModelArchitecture:
    """The architecture ``name`` stands for (see the module docstring); ConfigurationError naming ``parameter``
    when it is none of them."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigurationError(f"{parameter} ({shown(name)}) must be a model name, a Hugging Face ID or a "
                                 "config.json path")
    key = name.strip().lower()
    table = models()
    if key in table:
        return table[key]
    if key in _hub_ids():
        return table[_hub_ids()[key]]
    path = Path(name.strip()).expanduser()
    try:
        folder = path.is_dir()
        local = path.suffix == ".json" or folder or os.sep in name.strip() and path.exists()
    except OSError:  # a name the file system cannot hold (ENAMETOOLONG): no local path, so a name or an ID
        folder = local = False
    if local:
        return read_config(path / "config.json" if folder else path, parameter)
    if name.count("/") == 1 and len(name.strip()) <= MAX_HUB_ID:
        cached = _cached_config(name.strip())
        if cached is not None:
            return read_config(cached, parameter, name=name.strip())
        raise ConfigurationError(
            f"{parameter} ({shown(name)}) is not a known model and its config.json is not in the local Hugging Face "
            f"cache; download it (huggingface-cli download {name.strip()} config.json) or pass the "
            "config.json's path")
    raise unknown_name("model", name, table, parameter)


def _cached_config(repo: str) -> Path | None:
    """The newest cached config.json of Hugging Face repository ``repo``, or None (offline; nothing downloaded)."""
    hub = os.environ.get("HF_HUB_CACHE") or (
        str(Path(os.environ["HF_HOME"]) / "hub") if os.environ.get("HF_HOME") else "~/.cache/huggingface/hub")
    snapshots = Path(hub).expanduser() / f"models--{repo.replace('/', '--')}" / "snapshots"
    try:
        found = [p / "config.json" for p in snapshots.iterdir() if (p / "config.json").is_file()]
    except OSError:
        return None
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def read_config(path: Path, parameter: str = "model", *, name: str | None = None) -> ModelArchitecture:
    """The architecture described by a Hugging Face ``config.json`` at ``path``, parameters counted from its shape."""
    try:  # the one data-file reader: a regular file of bounded size and depth, finite numbers, no repeated keys
        document = datafile.read_document(path, CONFIG_LIMITS)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{parameter}: {exc}") from None
    if not isinstance(document, dict):
        raise ConfigurationError(f"{parameter}: {path} must hold a JSON object (a Hugging Face config.json)")
    config = document.get("text_config") if isinstance(document.get("text_config"), dict) else document
    shape = {field: _config_int(config, keys, path, parameter) for field, keys in _CONFIG_KEYS.items()}
    for needed in ("layers", "hidden_size", "attention_heads", "vocab_size", "max_context_tokens"):
        if shape[needed] is None:
            keys = " or ".join(_CONFIG_KEYS[needed])
            raise ConfigurationError(f"{parameter}: {path} has no {keys}; it does not describe a decoder language model")
    heads, hidden = shape["attention_heads"], shape["hidden_size"]
    kv_heads = shape["kv_heads"] or heads
    head_dim = shape["head_dim"] or hidden // heads
    if kv_heads > heads or head_dim < 1:
        raise ConfigurationError(f"{parameter}: {path}: {kv_heads} key-value heads for {heads} attention heads, or a "
                                 f"head size of {head_dim}, is not a valid attention shape")
    model_type = str(config.get("model_type", "")).lower()
    architecture = ModelArchitecture(
        name=name or str(path), params=0.0, layers=shape["layers"], hidden_size=hidden, attention_heads=heads,
        kv_heads=kv_heads, head_dim=head_dim, max_context_tokens=shape["max_context_tokens"],
        source=path.resolve().as_uri(), note=f"read from {path} (model_type {model_type or 'unknown'})",
        intermediate_size=shape["intermediate_size"] or 4 * hidden, experts=shape["experts"] or 1,
        gated_mlp=model_type not in PLAIN_MLP_TYPES)
    tied = config.get("tie_word_embeddings", True) is not False  # Hugging Face's PretrainedConfig default is True
    total = count_params(architecture, shape["vocab_size"], tied, architecture.experts)
    active = count_params(architecture, shape["vocab_size"], tied, shape["experts_per_token"] or architecture.experts)
    return replace(architecture, params=total, active_params=active if active < total else None)


def _config_int(config: Mapping[str, Any], keys: tuple[str, ...], path: Path, parameter: str) -> int | None:
    for key in keys:
        value = config.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 10**9:
            raise ConfigurationError(f"{parameter}: {path}: {key} ({value!r}) must be a whole number above 0")
        return value
    return None


def count_params(shape: ModelArchitecture, vocab: int, tied: bool, experts: int) -> float:
    """Parameters of a decoder with ``shape``, ``vocab`` tokens and ``experts`` experts per token path."""
    h, q, kv = shape.hidden_size, shape.attention_heads * shape.head_dim, shape.kv_heads * shape.head_dim
    width = shape.intermediate_size or 4 * h
    attention = h * q + 2 * h * kv + q * h
    mlp = (3 if shape.gated_mlp else 2) * h * width * experts + (h * shape.experts if shape.experts > 1 else 0)
    embeddings = vocab * h * (1 if tied else 2)
    return float(embeddings + shape.layers * (attention + mlp) + h)


def nearest_known(params: float) -> ModelArchitecture:
    """The bundled architecture closest to ``params`` in log scale: the stand-in shape for a bare parameter count."""
    return min(models().values(), key=lambda m: (abs(math.log(m.params / params)), m.name))
