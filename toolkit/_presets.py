"""Size presets (tiny ... base): YAML files whose keys are ``BertConfig`` keyword arguments."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml
from transformers import BertConfig

from ._errors import ToolkitInputError

PRESET_DIR = Path(__file__).parent / "presets"
PRESET_NAMES = ("tiny", "mini", "small", "medium", "base")
DEFAULT_PRESET = "tiny"  # a fresh model's size when no --preset is given
_BERT_KEYS = set(BertConfig().to_dict())

# How each preset trains when the user sets nothing else (flags, config files and keyword options win).
# tiny and mini: the shipped configs' settings, measured on 2 CPU cores (benchmarks/RESULTS.md, "Pretraining
# options, measured"); larger presets: the rates published for models of their size, not measured here.
_PRETRAIN_COMMON = {"adam_beta2": 0.98, "weight_decay": 0.01, "warmup_steps": 0.05}
PRETRAIN_SETTINGS = {
    "tiny": {"learning_rate": 2e-3, "per_device_train_batch_size": 16, **_PRETRAIN_COMMON},
    "mini": {"learning_rate": 1e-3, "per_device_train_batch_size": 16, **_PRETRAIN_COMMON},
    "small": {"learning_rate": 5e-4, "per_device_train_batch_size": 32, **_PRETRAIN_COMMON},
    "medium": {"learning_rate": 3e-4, "per_device_train_batch_size": 32, **_PRETRAIN_COMMON},
    "base": {"learning_rate": 1e-4, "per_device_train_batch_size": 32, **_PRETRAIN_COMMON},
}
# A fresh model's start for pretraining: sine/cosine position table, no dropout (the fine-tuning settings
# below put dropout back).
PRETRAIN_MODEL_SETTINGS = {
    "position_init": "sinusoidal",
    "config_overrides": {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0},
}
# Fine-tuning by the size of the starting checkpoint: tiny's rates were chosen on dev sets (the shipped
# classification and NER configs); BERT-base's are the published 2e-5..5e-5.
_FINETUNE_COMMON = {
    "per_device_train_batch_size": 32,
    "weight_decay": 0.01,
    "warmup_steps": 0.06,
    "num_train_epochs": 3,
}
FINETUNE_SETTINGS = {
    "tiny": {**_FINETUNE_COMMON, "learning_rate": 1e-3},
    "mini": {**_FINETUNE_COMMON, "learning_rate": 5e-4},
    "small": {**_FINETUNE_COMMON, "learning_rate": 2e-4},
    "medium": {**_FINETUNE_COMMON, "learning_rate": 1e-4},
    "base": {**_FINETUNE_COMMON, "learning_rate": 5e-5},
}
# NER on a tiny checkpoint: the NER configs' budget (3 epochs left the tagger underfitted).
FINETUNE_NER_SETTINGS = {"tiny": {"num_train_epochs": 10}}
FINETUNE_DROPOUT = 0.1
# The light tagger (NER --encoder bilstm), trained from scratch: Adam at the classic BiLSTM-CRF's rate, no decay
# or warm-up, dropout 0.5 (Lample et al. 2016).
LIGHT_TAGGER_SETTINGS = {
    "per_device_train_batch_size": 32,
    "learning_rate": 2e-3,
    "weight_decay": 0.0,
    "warmup_steps": 0,
    "num_train_epochs": 10,
}
LIGHT_TAGGER_DROPOUT = 0.5
DEFAULT_SAVE_TOTAL_LIMIT = 3  # checkpoints kept when --save_total_limit is not set (every recipe)


def finetune_settings(size: str, task: str) -> dict:
    """The fine-tuning settings for a checkpoint of preset size ``size`` on ``task`` ("classification" or
    "ner"): what the recipes use wherever the user set nothing."""
    return FINETUNE_SETTINGS[size] | (FINETUNE_NER_SETTINGS.get(size, {}) if task == "ner" else {})


def preset_of(config) -> str | None:
    """The size preset a model config matches (layers and width), or ``None``."""
    for name in PRESET_NAMES:
        with open(PRESET_DIR / f"{name}.yaml", encoding="utf-8") as fh:
            values = yaml.safe_load(fh)
        if (values["num_hidden_layers"], values["hidden_size"]) == (
            getattr(config, "num_hidden_layers", None),
            getattr(config, "hidden_size", None),
        ):
            return name
    return None


def apply_settings(target, settings: dict, *, source: str) -> dict[str, str]:
    """Set each of ``settings`` on ``target`` (an arguments dataclass from ``parse_config``) unless the user
    gave it; return where every one of them came from (``source``, or the user's config file or flag).
    Arguments built in code (not parsed) are left as they are: nothing says which values were chosen.
    DeepSpeed's copy of the training settings ("auto" values) is refreshed after a change."""
    if not hasattr(target, "explicit_options"):  # built in code, not parsed: every value is the caller's
        return {}
    given = target.explicit_options
    origins = getattr(target, "option_sources", {})
    report = {}
    for key, value in settings.items():
        if key in given:
            report[key] = f"{getattr(target, key)!r} ({origins.get(key, 'given')})"
        else:
            setattr(target, key, value)
            report[key] = f"{value!r} ({source})"
    deepspeed = getattr(target, "hf_deepspeed_config", None)
    if deepspeed is not None and report:
        deepspeed.trainer_config_process(target)
    return report


def preset_path(name_or_path: str | os.PathLike) -> Path:
    """The YAML file for a preset name (``"mini"``) or an explicit path to a preset YAML."""
    candidate = PRESET_DIR / f"{name_or_path}.yaml"
    if candidate.is_file():
        return candidate
    path = Path(name_or_path)
    if path.is_file():
        return path
    raise ToolkitInputError(
        f"unknown size preset {str(name_or_path)!r}: choose from {', '.join(PRESET_NAMES)} or a YAML path"
    )


def load_preset(
    name_or_path: str | os.PathLike, *, vocab_size: int | None = None, overrides: dict | None = None, **kwargs
) -> BertConfig:
    """Build a ``BertConfig`` from a size preset plus overrides.

    Args:
        name_or_path: ``tiny``, ``mini``, ``small``, ``medium``, ``base``, or a YAML file of ``BertConfig`` keys.
        vocab_size: the tokenizer's vocabulary size.
        overrides: ``BertConfig`` fields replacing the preset's (e.g. ``{"num_hidden_layers": 6}``).
        **kwargs: further ``BertConfig`` fields (e.g. ``pad_token_id``), applied last.

    Returns:
        The ``BertConfig``.

    Raises:
        ToolkitInputError: unknown preset, a key that is not a ``BertConfig`` field, or a hidden size not
            divisible by the number of heads.

    Example:
        >>> load_preset("tiny", vocab_size=1000, overrides={"num_hidden_layers": 1}).num_hidden_layers
        1
    """
    path = preset_path(name_or_path)
    with open(path, encoding="utf-8") as fh:
        values = yaml.safe_load(fh) or {}
    if not isinstance(values, dict):
        raise ToolkitInputError(f"{path}: a preset must be a mapping of BertConfig fields")
    values.update(overrides or {})
    values.update(kwargs)
    if vocab_size is not None:
        values["vocab_size"] = vocab_size
    unknown = sorted(set(values) - _BERT_KEYS)
    if unknown:
        raise ToolkitInputError(f"{path}: not BertConfig fields: {unknown}")
    config = BertConfig(**values)
    if config.hidden_size % config.num_attention_heads:
        raise ToolkitInputError(
            f"hidden_size {config.hidden_size} is not divisible by num_attention_heads {config.num_attention_heads}"
        )
    return config


def parse_overrides(text: str | None) -> dict:
    """Parse ``"num_hidden_layers=6,hidden_dropout_prob=0.0"`` into a dict (values read as YAML scalars)."""
    out: dict = {}
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise ToolkitInputError(f"--config_overrides item {item!r} is not key=value")
        out[key.strip()] = yaml.safe_load(value)
    return out


@dataclass(frozen=True)
class ModelSize:
    """Parameter and FLOP counts of a BERT masked-LM configuration."""

    params: int
    params_non_embedding: int
    train_flops_per_token: float
    train_flops_per_token_sparse_head: float


def count_size(config: BertConfig, *, seq_len: int = 128, mlm_probability: float = 0.15) -> ModelSize:
    """Count parameters and training FLOPs per token of ``BertForMaskedLM`` under ``config``.

    FLOPs count matrix multiplies only (2 per multiply-add) and training as 3× forward (backward ≈ 2×
    forward). The MLM head (transform + tied decoder) is counted at every position for the stock dense head
    and at ``mlm_probability`` of positions for the sparse head.

    Returns:
        A :class:`ModelSize`. ``params`` counts the tied decoder matrix once, as the saved model does.
    """
    h, i, n_layers, v = (
        config.hidden_size,
        config.intermediate_size,
        config.num_hidden_layers,
        config.vocab_size,
    )
    embeddings = (v + config.max_position_embeddings + config.type_vocab_size) * h + 2 * h
    # attention Q/K/V/output + LayerNorm, FFN in/out + LayerNorm (BertForMaskedLM has no pooler)
    per_layer = 4 * (h * h + h) + 2 * h + (h * i + i) + (i * h + h) + 2 * h
    head = h * h + h + 2 * h + v  # transform dense + LayerNorm + decoder bias (decoder weight is tied)
    params = embeddings + n_layers * per_layer + head
    layer_matmul = 2 * (4 * h * h + 2 * h * i) + 2 * 2 * seq_len * h  # projections/FFN + QK^T and AV
    head_matmul = 2 * (h * h + h * v)
    forward = n_layers * layer_matmul
    return ModelSize(
        params=params,
        params_non_embedding=params - embeddings,
        train_flops_per_token=3.0 * (forward + head_matmul),
        train_flops_per_token_sparse_head=3.0 * (forward + mlm_probability * head_matmul),
    )


def preset_table(*, vocab_size: int = 30_000, seq_len: int = 128) -> list[dict]:
    """One row per shipped preset: layers, hidden, heads, parameters and training FLOPs per token."""
    rows = []
    for name in PRESET_NAMES:
        config = load_preset(name, vocab_size=vocab_size)
        size = count_size(config, seq_len=seq_len)
        rows.append(
            {
                "preset": name,
                "layers": config.num_hidden_layers,
                "hidden": config.hidden_size,
                "heads": config.num_attention_heads,
                "intermediate": config.intermediate_size,
                "params": size.params,
                "params_non_embedding": size.params_non_embedding,
                "train_flops_per_token": size.train_flops_per_token,
                "train_flops_per_token_sparse_head": size.train_flops_per_token_sparse_head,
            }
        )
    return rows


def format_preset_table(rows: list[dict]) -> str:
    """Render :func:`preset_table` rows as a Markdown table."""
    lines = [
        "| preset | layers | hidden | heads | params | params w/o embeddings | train GFLOPs/token (dense head) "
        "| train GFLOPs/token (sparse head) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['preset']} | {r['layers']} | {r['hidden']} | {r['heads']} | {r['params'] / 1e6:.2f} M "
            f"| {r['params_non_embedding'] / 1e6:.2f} M | {r['train_flops_per_token'] / 1e9:.3f} "
            f"| {r['train_flops_per_token_sparse_head'] / 1e9:.3f} |"
        )
    return "\n".join(lines)
