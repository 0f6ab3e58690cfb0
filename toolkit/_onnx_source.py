"""The source model of an ONNX export: which kind of model a directory holds (:func:`detect_model_kind`), its
PyTorch model (for the export and the gate), and the files besides the weights that an export copies (config,
tokenizer, a sentence-transformers directory's module files)."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ._errors import ToolkitInputError
from ._onnx import is_onnx_export

# What the directory of a source model holds besides the weights, copied into the export.
_TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json", "added_tokens.json",
    "vocab.json", "merges.txt", "sentencepiece.bpe.model", "spiece.model", "spm.model", "chat_template.jinja",
)  # fmt: skip
_ST_ROOT_FILES = ("modules.json", "config_sentence_transformers.json")


# ------------------------------------------------------------------------------------------ model kinds
@dataclass
class ModelSource:
    """What a model directory holds: its kind, where its config and weights are (``model_dir``: the
    Transformer module's directory for a sentence-transformers layout), and its config."""

    path: Path
    kind: str
    model_dir: Path
    config: object
    sentence_transformers: bool = False
    architecture: str = ""


def detect_model_kind(model_dir: str | os.PathLike) -> ModelSource:
    """Which kind of model a directory holds, from ``modules.json`` (sentence-transformers) and
    ``config.architectures``: a sequence classifier, a token classifier, or an encoder (a base model, a
    masked LM or a sentence-transformers directory: its encoder is exported).

    Raises:
        ToolkitInputError: not a directory, no ``config.json`` or weights, an architecture that is not a
            BERT-like encoder (e.g. GPT-2), or a task head the export does not support (e.g. question answering).
    """
    from transformers import AutoConfig

    from ._checkpoint import WEIGHT_FILES
    from ._encoder import ENCODER_TYPES, _read_st_layout

    path = Path(model_dir)
    if not path.is_dir():
        raise ToolkitInputError(
            f"{path} is not a directory: pass a model directory (config.json and weights)"
        )
    if is_onnx_export(path):
        raise ToolkitInputError(f"{path} is already an ONNX export: export its source model instead")
    sentence_transformers = (path / "modules.json").is_file()
    inner = _read_st_layout(path).model_dir if sentence_transformers else path
    if not (inner / "config.json").is_file():
        raise ToolkitInputError(
            f"{inner} has no config.json: not a model directory (expected a recipe's output directory, a Hugging "
            "Face model directory or a sentence-transformers directory)"
        )
    if not any((inner / n).is_file() for n in WEIGHT_FILES):
        raise ToolkitInputError(
            f"{inner} has no weights ({' or '.join(WEIGHT_FILES)}): not a model directory"
        )
    try:
        config = AutoConfig.from_pretrained(str(inner))
    except (OSError, ValueError) as err:
        raise ToolkitInputError(f"{inner / 'config.json'}: cannot load the model config ({err})") from None
    if config.model_type not in ENCODER_TYPES:
        raise ToolkitInputError(
            f"{inner} holds a {config.model_type!r} model: ONNX export supports BERT-like encoders "
            f"({', '.join(sorted(ENCODER_TYPES))}) and their classifiers and taggers"
        )
    if getattr(config, "tagger_head", None):
        raise ToolkitInputError(
            f"{inner} is a tagger with CRF / BiLSTM output layers (train_ner.py --crf / --bilstm_hidden), which the "
            "ONNX export does not carry: tag with NERTagger on PyTorch, or export a tagger trained without them"
        )
    architecture = (getattr(config, "architectures", None) or [""])[0]
    if sentence_transformers:
        kind = "encoder"
    elif architecture.endswith("ForSequenceClassification"):
        kind = "classifier"
    elif architecture.endswith("ForTokenClassification"):
        kind = "token_classifier"
    elif not architecture or architecture.endswith(("Model", "ForMaskedLM", "ForPreTraining")):
        kind = "encoder"
    else:
        raise ToolkitInputError(
            f"{inner}: a {architecture} has a task head the export does not support: export a sequence "
            "classifier, a token classifier, or an encoder (base model, masked LM, sentence-transformers)"
        )
    return ModelSource(path, kind, inner, config, sentence_transformers, architecture)


def _load_torch_model(source: ModelSource):
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoModelForTokenClassification

    auto = {
        "encoder": AutoModel,
        "classifier": AutoModelForSequenceClassification,
        "token_classifier": AutoModelForTokenClassification,
    }[source.kind]
    return auto.from_pretrained(str(source.model_dir)).eval()


# ------------------------------------------------------------------------------- files an export copies
def _copy_support_files(source: ModelSource, staged: Path) -> Path:
    """Copy what inference needs besides the weights: the config, the tokenizer files and, for a
    sentence-transformers directory, its module files (same relative layout, so the same readers apply).
    Returns the directory in the export that stands for the source's ``model_dir``."""
    inner = staged / source.model_dir.relative_to(source.path)
    inner.mkdir(parents=True, exist_ok=True)
    for directory, target in {source.path: staged, source.model_dir: inner}.items():
        for name in ("config.json", *_TOKENIZER_FILES):
            if (directory / name).is_file():
                shutil.copyfile(directory / name, target / name)
    if source.sentence_transformers:
        for name in _ST_ROOT_FILES:
            if (source.path / name).is_file():
                shutil.copyfile(source.path / name, staged / name)
        for path in source.path.glob("sentence_*_config.json"):
            shutil.copyfile(path, staged / path.name)
        for path in source.model_dir.glob("sentence_*_config.json"):
            shutil.copyfile(path, inner / path.name)
        for entry in json.loads((source.path / "modules.json").read_text(encoding="utf-8")):
            sub = str(entry.get("path", "") if isinstance(entry, dict) else "")
            module = source.path / sub
            if sub and module.is_dir() and module != source.model_dir:
                for path in module.glob("*.json"):
                    (staged / sub).mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(path, staged / sub / path.name)
    return inner
