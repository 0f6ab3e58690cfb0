"""Loading any BERT-like checkpoint as an encoder (a model directory, a sentence-transformers directory, a
single weights file with its vocabulary, or a hub id), and encoding sentences with it."""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from tokenizers import normalizers
from tqdm.auto import tqdm
from transformers import (
    AutoConfig,
    AutoModel,
    AutoTokenizer,
    BertConfig,
    BertModel,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from ._checkpoint import WEIGHT_FILES, read_state_dict
from ._errors import ToolkitInputError
from ._io import check_text_file
from ._text import tokenizer_safe
from ._tokenizer import build_wordpiece_tokenizer

logger = logging.getLogger(__name__)


SentencePooling = Literal["mean", "cls", "max"]
SENTENCE_POOLINGS = ("mean", "cls", "max")
Backend = Literal["auto", "torch", "onnx"]
BACKENDS = ("auto", "torch", "onnx")
ONNX_EXPORT_INFO = (
    "toolkit_export.json"  # what marks an export of recipes/export.py (toolkit._onnx.EXPORT_INFO)
)


# Sentences tokenized per call in encode_sentences, in batches: one call spreads over the cores, and the chunk
# bounds the memory the token lists take on a large input.
TOKENIZE_CHUNK_BATCHES = 64
ENCODER_TYPES = {
    "bert", "roberta", "xlm-roberta", "camembert", "distilbert", "electra", "albert", "ernie", "mpnet",
    "deberta", "deberta-v2", "megatron-bert", "nezha", "roformer", "modernbert",
}  # fmt: skip


# --------------------------------------------------------------------------------------------- loading
@dataclass
class Encoder:
    """A loaded encoder: model (eval mode), tokenizer, where it came from, and its sentence defaults.

    ``default_pooling`` and ``normalize`` are what :func:`encode_sentences` does when the caller does not
    say: for a sentence-transformers directory, what its ``modules.json`` asks for (so the vectors match
    ``SentenceTransformer.encode``); ``sentence_config`` records what was read from that directory and where.
    ``default_pooling`` may hold a sentence-transformers mode the toolkit cannot reproduce (e.g.
    ``weightedmean``): encoding then fails unless ``pooling=`` is given, rather than silently differing.
    """

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    source: str
    default_pooling: SentencePooling | str = "mean"
    loading_report: dict = field(default_factory=dict)
    normalize: bool = False
    sentence_config: dict = field(default_factory=dict)
    backend: str = "torch"  # "onnx": ``model`` is a toolkit._onnx.OnnxModel (an export, last layer only)

    @property
    def num_layers(self) -> int:
        return int(self.model.config.num_hidden_layers)


def _check_encoder_type(model_type: str, where: str) -> None:
    if model_type not in ENCODER_TYPES:
        raise ToolkitInputError(
            f"{where} is a {model_type!r} model, not a BERT-like encoder (supported: {', '.join(sorted(ENCODER_TYPES))})"
        )


_VOCAB_SUFFIXES = (".txt", ".json", ".model")  # a name ending so is a missing file, not a hub id


def _tokenizer_from(source: str | os.PathLike) -> PreTrainedTokenizerBase:
    """A tokenizer from a ``vocab.txt``, a tokenizer directory, or a hub id.

    Raises:
        ToolkitInputError: a missing path, a directory without tokenizer files, a vocabulary file that is
            not UTF-8 text or lacks the special tokens, or a tokenizer that cannot be loaded.
    """
    path = Path(source)
    if path.is_file():  # a bare vocab.txt
        try:
            check_text_file(path)
        except ToolkitInputError as err:
            raise ToolkitInputError(f"vocabulary: {err}") from None
        vocab = path.read_text(encoding="utf-8").split("\n")
        vocab = [token.rstrip("\r") for token in (vocab[:-1] if vocab and vocab[-1] == "" else vocab)]
        try:
            return build_wordpiece_tokenizer(vocab, lowercase=True)
        except ToolkitInputError as err:
            raise ToolkitInputError(
                f"vocabulary {path}: {err}; expected a WordPiece vocab.txt (one token per line) or a tokenizer "
                "directory"
            ) from None
    if path.is_dir() and not _has_tokenizer(path):
        raise ToolkitInputError(
            f"vocabulary: {path} is a directory without tokenizer files (tokenizer.json, vocab.txt, "
            "tokenizer_config.json): pass a vocab.txt or the directory of a saved tokenizer"
        )
    hub_id = re.fullmatch(r"[\w.-]+(/[\w.-]+)?", str(source)) and path.suffix not in _VOCAB_SUFFIXES
    if not path.exists() and not hub_id:
        raise ToolkitInputError(
            f"vocabulary: {source} does not exist (expected a vocab.txt or a tokenizer directory)"
        )
    try:
        return AutoTokenizer.from_pretrained(str(source))
    except (OSError, ValueError, TypeError) as err:
        raise ToolkitInputError(f"cannot load a tokenizer from {str(source)!r}: {err}") from None


def _has_tokenizer(path: Path) -> bool:
    return any(
        (path / n).is_file()
        for n in ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "sentencepiece.bpe.model")
    )


def _infer_bert_config(state: dict[str, torch.Tensor]) -> BertConfig:
    word = state["embeddings.word_embeddings.weight"]
    layers = {int(m.group(1)) for k in state if (m := re.match(r"encoder\.layer\.(\d+)\.", k))}
    hidden = word.shape[1]
    return BertConfig(
        vocab_size=word.shape[0],
        hidden_size=hidden,
        num_hidden_layers=max(layers) + 1 if layers else 0,
        num_attention_heads=max(1, hidden // 64),
        intermediate_size=state["encoder.layer.0.intermediate.dense.weight"].shape[0]
        if layers
        else 4 * hidden,
        max_position_embeddings=state["embeddings.position_embeddings.weight"].shape[0],
        type_vocab_size=state["embeddings.token_type_embeddings.weight"].shape[0]
        if "embeddings.token_type_embeddings.weight" in state
        else 2,
    )


def _load_from_file(
    path: Path, tokenizer: PreTrainedTokenizerBase | None, config: str | os.PathLike | None
) -> Encoder:
    state = read_state_dict(path)
    # Strip task-model prefixes (bert., roberta., model.) and keep encoder weights only.
    encoder_state = {}
    for key, value in state.items():
        for prefix in ("bert.", "model.", "encoder_model.", ""):
            if key.startswith(prefix) and key[len(prefix) :].startswith(
                ("embeddings.", "encoder.", "pooler.")
            ):
                encoder_state[key[len(prefix) :]] = value
                break
    if "embeddings.word_embeddings.weight" not in encoder_state:
        raise ToolkitInputError(
            f"{str(path)!r} holds no BERT encoder weights (no embeddings.word_embeddings.weight)"
        )
    config_path = Path(config) if config else path.parent / "config.json"
    if config_path.is_file():
        bert_config = AutoConfig.from_pretrained(str(config_path))
        _check_encoder_type(bert_config.model_type, str(config_path))
    else:
        bert_config = _infer_bert_config(encoder_state)
    if tokenizer is None:
        if not _has_tokenizer(path.parent):
            raise ToolkitInputError(
                f"{str(path)!r} has no tokenizer beside it: pass vocab= (a vocab.txt or tokenizer directory)"
            )
        tokenizer = _tokenizer_from(path.parent)
    model = BertModel(bert_config, add_pooling_layer="pooler.dense.weight" in encoder_state)
    result = model.load_state_dict(encoder_state, strict=False)
    report = {"missing": list(result.missing_keys), "unexpected": list(result.unexpected_keys)}
    if any(k.startswith("encoder.") or k.startswith("embeddings.") for k in result.missing_keys):
        raise ToolkitInputError(
            f"{str(path)!r}: encoder weights missing from the file: {result.missing_keys[:5]}"
        )
    return Encoder(model.eval(), tokenizer, str(path), "mean", report)


# ------------------------------------------------------------------ sentence-transformers directories
# A sentence-transformers directory states how its vectors are made (window, lower-casing, pooling,
# normalisation) in files beside the weights; they are read here as sentence-transformers 6 reads them
# (sentence_transformers/base/modules/transformer.py, .../modules/pooling.py, normalize.py), so that
# encode_sentences gives the vectors SentenceTransformer.encode gives.

# The Transformer module's settings file: the first of these that exists (Transformer.load_config).
ST_MODULE_CONFIGS = (
    "sentence_bert_config.json", "sentence_roberta_config.json", "sentence_distilbert_config.json",
    "sentence_camembert_config.json", "sentence_albert_config.json", "sentence_xlm-roberta_config.json",
    "sentence_xlnet_config.json",
)  # fmt: skip

# Pooling configs written before sentence-transformers 5.4 hold one boolean per mode; several true modes are
# concatenated, in this order (_LEGACY_POOLING_MODE_KWARGS in pooling.py); none true means mean.
_ST_LEGACY_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}


@dataclass
class _SentenceTransformersLayout:
    """What a sentence-transformers directory asks for, and in which file it says so."""

    model_dir: Path
    pooling: str = "mean"
    pooling_source: str = "sentence-transformers default (no Pooling module)"
    normalize: bool = False
    normalize_source: str = "no Normalize module in modules.json"
    window: int | None = None  # truncation length in tokens, [CLS] and [SEP] included
    window_source: str = "tokenizer's model_max_length, capped at the model's positions"
    do_lower_case: bool = False
    config_file: str | None = None
    ignored_modules: list[str] = field(default_factory=list)
    prompt: str | None = None

    def as_dict(self) -> dict:
        return {
            "pooling": self.pooling,
            "pooling_source": self.pooling_source,
            "normalize": self.normalize,
            "normalize_source": self.normalize_source,
            "max_seq_length": self.window,
            "max_seq_length_source": self.window_source,
            "do_lower_case": self.do_lower_case,
            "config_file": self.config_file,
            "ignored_modules": list(self.ignored_modules),
        }


def _read_json(path: Path, expected: type) -> object:
    """A JSON file of the directory, or a :class:`ToolkitInputError` naming it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ToolkitInputError(
            f"{path}: cannot read this sentence-transformers file ({err}); re-save the model with "
            "SentenceTransformer.save or restore the file"
        ) from None
    if not isinstance(data, expected):
        raise ToolkitInputError(
            f"{path}: expected a JSON {expected.__name__}, got {type(data).__name__}; re-save the model with "
            "SentenceTransformer.save or restore the file"
        )
    return data


def _st_pooling_mode(config_path: Path) -> str:
    """The pooling a sentence-transformers Pooling config asks for: ``pooling_mode`` (sentence-transformers
    >= 5.4: a mode or a list of modes) or the legacy ``pooling_mode_*`` booleans. Several modes (which
    sentence-transformers concatenates) come back joined by ``+``."""
    config = _read_json(config_path, dict) if config_path.is_file() else {}
    mode = config.get("pooling_mode")
    if mode is None:
        mode = [name for key, name in _ST_LEGACY_POOLING_KEYS.items() if config.get(key)] or ["mean"]
    modes = [mode] if isinstance(mode, str) else list(mode) if isinstance(mode, list) else None
    if not modes or not all(isinstance(m, str) for m in modes):
        raise ToolkitInputError(
            f"{config_path}: pooling_mode must be a mode name or a list of them, got {mode!r}; re-save the model "
            "with SentenceTransformer.save or fix the file"
        )
    return "+".join(modes)


def _st_window(config: dict, config_path: Path) -> tuple[int | None, str]:
    """The truncation length the Transformer module applies, and what set it. As in Transformer.__init__
    and preprocess: ``processor_kwargs`` (or the legacy ``tokenizer_args``) ``model_max_length`` wins over
    ``max_seq_length``, and a ``processing_kwargs`` text (or common) ``max_length`` over both. The length
    counts the special tokens ([CLS] ... [SEP]), as Hugging Face truncation does."""
    window, source = None, None
    processor_kwargs = config.get("processor_kwargs") or config.get("tokenizer_args") or {}
    processing = config.get("processing_kwargs") or {}
    candidates = [
        ((processing.get("text") or {}).get("max_length"), "processing_kwargs.text.max_length"),
        ((processing.get("common") or {}).get("max_length"), "processing_kwargs.common.max_length"),
        (processor_kwargs.get("model_max_length"), "processor_kwargs.model_max_length"),
        (config.get("max_seq_length"), "max_seq_length"),
    ]
    for value, key in candidates:
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ToolkitInputError(
                f"{config_path}: {key} must be a positive number of tokens, got {value!r}; fix the file"
            )
        window, source = value, f"{key} in {config_path}"
        break
    return window, source or "tokenizer's model_max_length, capped at the model's positions"


def _read_st_layout(path: Path) -> _SentenceTransformersLayout:
    """Read ``modules.json`` and the module files it names.

    Raises:
        ToolkitInputError: unreadable or malformed files, or a bad window length.
    """
    modules_path = path / "modules.json"
    entries = _read_json(modules_path, list)
    layout = _SentenceTransformersLayout(model_dir=path)
    seen_pooling = False
    for entry in entries:
        if not isinstance(entry, dict):
            raise ToolkitInputError(
                f"{modules_path}: each module must be an object with 'type' and 'path', got {entry!r}"
            )
        kind = str(entry.get("type", "")).rsplit(".", 1)[-1]
        module_dir = path / str(entry.get("path", ""))
        if kind == "Transformer":
            layout.model_dir = module_dir
        elif kind == "Pooling":
            layout.pooling = _st_pooling_mode(module_dir / "config.json")
            layout.pooling_source = str(module_dir / "config.json")
            seen_pooling = True
        elif kind == "Normalize" and seen_pooling:
            config = (
                _read_json(module_dir / "config.json", dict) if (module_dir / "config.json").is_file() else {}
            )
            if config.get("module_input_name", "sentence_embedding") == "sentence_embedding":
                layout.normalize = True
                layout.normalize_source = f"{entry.get('path') or kind} module in {modules_path}"
            else:
                layout.ignored_modules.append(f"{kind} of {config.get('module_input_name')}")
        else:
            layout.ignored_modules.append(f"{kind or entry!r} ({entry.get('path', '')})")
    config_file = next(
        (layout.model_dir / n for n in ST_MODULE_CONFIGS if (layout.model_dir / n).is_file()), None
    )
    if config_file is not None:
        config = _read_json(config_file, dict)
        layout.config_file = str(config_file)
        layout.window, layout.window_source = _st_window(config, config_file)
        lower = config.get("do_lower_case", False)
        if not isinstance(lower, bool):
            raise ToolkitInputError(f"{config_file}: do_lower_case must be true or false, got {lower!r}")
        layout.do_lower_case = lower
    st_config = path / "config_sentence_transformers.json"
    if st_config.is_file():
        config = _read_json(st_config, dict)
        name = config.get("default_prompt_name")
        if name and (config.get("prompts") or {}).get(name):
            layout.prompt = f"{name}: {config['prompts'][name]!r}"
    return layout


def _has_lowercase(normalizer: object) -> bool:
    return isinstance(normalizer, normalizers.Lowercase) or (
        isinstance(normalizer, normalizers.Sequence)
        and any(isinstance(n, normalizers.Lowercase) for n in normalizer)
    )


def _lowercase_tokenizer(tokenizer: PreTrainedTokenizerBase, where: str) -> None:
    """Make the tokenizer lower-case its input, as sentence-transformers' Transformer module does for
    ``do_lower_case``: a ``Lowercase`` step in front of the fast tokenizer's normalizer (rather than
    ``text.lower()``), so character offsets still point into the original text and special tokens written
    in the text stay special."""
    if getattr(tokenizer, "is_fast", False):
        backend = tokenizer.backend_tokenizer
        current = backend.normalizer
        if not _has_lowercase(current):
            steps: list = [normalizers.Lowercase()]
            if isinstance(current, normalizers.Sequence):
                steps += list(current)
            elif current is not None:
                steps.append(current)
            backend.normalizer = normalizers.Sequence(steps)
        return
    try:
        tokenizer.do_lower_case = True
    except AttributeError:
        basic = getattr(tokenizer, "basic_tokenizer", None)
        if basic is None:
            logger.warning(
                "%s asks for do_lower_case but the %s tokenizer cannot be made to lower-case: lower-case the "
                "texts before encoding them",
                where,
                type(tokenizer).__name__,
            )
            return
        basic.do_lower_case = True


def _apply_st_layout(encoder: Encoder, layout: _SentenceTransformersLayout, path: Path) -> None:
    """Give the encoder the directory's window, lower-casing, pooling and normalisation; log them once."""
    tokenizer, positions = encoder.tokenizer, getattr(encoder.model.config, "max_position_embeddings", None)
    if layout.window is not None:
        if positions and layout.window > positions:
            logger.warning(
                "%s asks for a window of %d tokens but the model has %d positions: truncating to %d",
                layout.window_source,
                layout.window,
                positions,
                positions,
            )
            layout.window = positions
        # As sentence-transformers does; extract_vectors reads the window from here too.
        tokenizer.model_max_length = layout.window
    if layout.do_lower_case:
        _lowercase_tokenizer(tokenizer, layout.config_file or str(path))
    encoder.default_pooling = layout.pooling
    encoder.normalize = layout.normalize
    encoder.sentence_config = layout.as_dict()
    window = layout.window or min(getattr(tokenizer, "model_max_length", 512), positions or 512)
    logger.info(
        "sentence-transformers directory %s: window %d tokens incl. [CLS]/[SEP] (%s), do_lower_case %s, "
        "pooling %s (%s), normalize %s (%s)",
        path,
        window,
        layout.window_source,
        layout.do_lower_case,
        layout.pooling,
        layout.pooling_source,
        layout.normalize,
        layout.normalize_source,
    )
    if layout.pooling not in SENTENCE_POOLINGS:
        logger.warning(
            "%s: pooling %r is not one the toolkit reproduces (%s): encode_sentences needs pooling= given",
            layout.pooling_source,
            layout.pooling,
            ", ".join(SENTENCE_POOLINGS),
        )
    if layout.ignored_modules:
        logger.warning(
            "%s lists modules the toolkit does not apply (%s): sentence vectors will differ from "
            "SentenceTransformer.encode",
            path / "modules.json",
            ", ".join(layout.ignored_modules),
        )
    if layout.prompt:
        logger.warning(
            "%s: sentence-transformers prepends the default prompt %s to every text; the toolkit encodes the "
            "texts as given: prepend it yourself for the same vectors",
            path / "config_sentence_transformers.json",
            layout.prompt,
        )


def load_encoder(
    source: str | os.PathLike,
    *,
    vocab: str | os.PathLike | None = None,
    config: str | os.PathLike | None = None,
    backend: Backend = "auto",
    threads: int | None = None,
) -> Encoder:
    """Load the encoder of a BERT-like checkpoint for vector extraction.

    Args:
        source: a Hugging Face model directory (base model, masked-LM or fine-tuned classifier: its encoder
            is used), a sentence-transformers directory, a single ``.safetensors`` / ``pytorch_model.bin``
            file, or a hub id (when the hub is reachable or cached). A sentence-transformers directory's
            settings are honoured as ``SentenceTransformer`` honours them, so that :func:`encode_sentences`
            gives its vectors: the window (``max_seq_length`` in ``sentence_bert_config.json`` becomes the
            tokenizer's ``model_max_length``), ``do_lower_case``, the pooling (``1_Pooling/config.json``) and
            a ``Normalize`` module become the defaults; what was read is logged and kept in
            ``Encoder.sentence_config``.
        vocab: for a single weights file without a tokenizer beside it: a ``vocab.txt`` or tokenizer directory.
        config: for a single weights file: its ``config.json`` (default: beside the file, else inferred from
            the weight shapes).
        backend: ``"auto"`` (an ONNX export made by ``recipes/export.py`` runs on ONNX Runtime, anything else on
            PyTorch), ``"torch"`` or ``"onnx"`` (the source must then be an export). An export keeps the
            source's settings (window, pooling, normalisation), so its vectors are the source's to the gate's
            tolerance.
        threads: ONNX Runtime's CPU threads for an export (default: the cores this process may use).

    Returns:
        An :class:`Encoder`.

    Raises:
        ToolkitInputError: no weights, no tokenizer, a non-BERT-like architecture, unreadable files; a
            ``vocab`` that does not exist, a directory without tokenizer files, or an unreadable vocab file;
            a malformed sentence-transformers file (``modules.json``, ``sentence_bert_config.json``, a
            pooling config).

    Example:
        >>> enc = load_encoder("outputs/pretrain/tiny_zh")  # doctest: +SKIP
        >>> enc.num_layers  # doctest: +SKIP
        2
    """
    path = Path(source)
    if backend not in BACKENDS:
        raise ToolkitInputError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    if path.is_dir() and (path / ONNX_EXPORT_INFO).is_file():
        if backend == "torch":
            raise ToolkitInputError(
                f"{path} is an ONNX export (no PyTorch weights): use backend='onnx' (or 'auto'), or load the "
                "source model it was exported from"
            )
        return _load_onnx_encoder(path, vocab, threads)
    if backend == "onnx":
        raise ToolkitInputError(
            f"{source} is not an ONNX export: make one with python recipes/export.py {source} --output OUT, "
            "then load OUT (or use backend='torch')"
        )
    tokenizer = _tokenizer_from(vocab) if vocab else None  # a bad vocab fails before any weights are read
    if path.is_file():
        return _load_from_file(path, tokenizer, config)
    layout: _SentenceTransformersLayout | None = None
    if path.is_dir():
        model_dir = path
        if (path / "modules.json").is_file():  # sentence-transformers layout
            layout = _read_st_layout(path)
            model_dir = layout.model_dir
        if not (model_dir / "config.json").is_file():
            raise ToolkitInputError(f"{str(model_dir)!r} has no config.json: not a model directory")
        if not any((model_dir / n).is_file() for n in WEIGHT_FILES):
            raise ToolkitInputError(
                f"{str(model_dir)!r} has no weights (model.safetensors or pytorch_model.bin)"
            )
        if not vocab and not _has_tokenizer(model_dir) and not _has_tokenizer(path):
            raise ToolkitInputError(
                f"{str(path)!r} has no tokenizer files: pass vocab= (a vocab.txt or tokenizer directory)"
            )
        name = str(model_dir)
        tokenizer_source = vocab or (model_dir if _has_tokenizer(model_dir) else path)
    else:
        name = str(source)
        tokenizer_source = vocab or name
        if os.sep in name and not re.fullmatch(r"[\w.-]+/[\w.-]+", name):
            raise ToolkitInputError(f"checkpoint {name!r} does not exist")
    try:
        config_obj = AutoConfig.from_pretrained(name)
    except (OSError, ValueError) as err:
        raise ToolkitInputError(f"cannot load a model config from {name!r}: {err}") from None
    _check_encoder_type(config_obj.model_type, name)
    tokenizer = tokenizer or _tokenizer_from(tokenizer_source)
    model, info = AutoModel.from_pretrained(name, output_loading_info=True)
    report = {
        k: list(v) for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys")
    }
    encoder = Encoder(model.eval(), tokenizer, name, "mean", report)
    if layout is not None:
        _apply_st_layout(encoder, layout, path)
    return encoder


def _load_onnx_encoder(path: Path, vocab: str | os.PathLike | None, threads: int | None) -> Encoder:
    """An export directory as an :class:`Encoder` run by ONNX Runtime, with the sentence-transformers settings
    read from the files the export copied (the same reader as for the source)."""
    from ._onnx import OnnxModel, read_export_info

    info = read_export_info(path)
    if info["kind"] != "encoder":
        raise ToolkitInputError(
            f"{path} is an ONNX export of a {info['kind']}, not of an encoder: use TextClassifier or NERTagger"
        )
    onnx_file = path / info.get("onnx_file", "model.onnx")
    model_dir = onnx_file.parent
    layout = _read_st_layout(path) if (path / "modules.json").is_file() else None
    try:
        config_obj = AutoConfig.from_pretrained(str(model_dir))
    except (OSError, ValueError) as err:
        raise ToolkitInputError(f"cannot load the model config of the export {path}: {err}") from None
    tokenizer = _tokenizer_from(vocab or (model_dir if _has_tokenizer(model_dir) else path))
    model = OnnxModel(onnx_file, config_obj, threads=threads)
    encoder = Encoder(model, tokenizer, str(path), "mean", {}, backend="onnx")
    if layout is not None:
        _apply_st_layout(encoder, layout, path)
    return encoder


def _layer_indices(encoder: Encoder, layers: Sequence[int]) -> list[int]:
    n = encoder.num_layers
    out = []
    for layer in layers:
        if not -(n + 1) <= layer <= n:
            raise ToolkitInputError(
                f"layer {layer} out of range: the model has {n} layers (0 = embeddings, 1..{n}, or -1..-{n + 1})"
            )
        out.append(layer if layer >= 0 else n + 1 + layer)
    return out


@torch.inference_mode()
def encode_sentences(
    encoder: Encoder | str | os.PathLike,
    sentences: Sequence[str],
    *,
    pooling: SentencePooling | None = None,
    layers: Sequence[int] = (-1,),
    normalize: bool | None = None,
    batch_size: int = 32,
    max_length: int | None = None,
    show_progress: bool = False,
    report: dict | None = None,
    backend: Backend = "auto",
    threads: int | None = None,
) -> np.ndarray:
    """Encode sentences into vectors.

    A sentence longer than the window (``max_length`` tokens) is truncated: only its beginning is encoded.
    Truncated sentences are counted, logged as a warning, and reported in ``report``.

    Args:
        encoder: an :class:`Encoder` or anything :func:`load_encoder` takes.
        sentences: the texts.
        pooling: ``mean`` (over all tokens the attention mask keeps, special tokens included, as
            sentence-transformers does), ``cls`` or ``max``; default: the checkpoint's own (from a
            sentence-transformers pooling config) or ``mean``.
        layers: hidden-state layers averaged before pooling (-1 = last).
        normalize: L2-normalise each vector; default (``None``): as the checkpoint says (yes for a
            sentence-transformers directory with a ``Normalize`` module, else no).
        batch_size: sentences per forward pass; sentences are sorted by length so batches pad little.
        max_length: truncation length in tokens, [CLS] and [SEP] included (default: the tokenizer's
            ``model_max_length``, which a sentence-transformers directory sets to its ``max_seq_length``,
            capped at the model's positions).
        show_progress: show a progress bar.
        report: a dict filled with ``n_sentences``, ``n_truncated`` (sentences longer than the window) and
            ``max_length`` (the window, in tokens).
        backend: ``"auto"``, ``"torch"`` or ``"onnx"`` (see :func:`load_encoder`); an export made by
            ``recipes/export.py`` runs on ONNX Runtime with the same pooling, normalisation and window. An
            export holds the last layer only: ``layers`` other than the last need the PyTorch model.
        threads: CPU threads for this call (ONNX Runtime's for an export, else PyTorch's, restored after).

    Returns:
        ``(len(sentences), hidden)`` float32 array, in input order.

    Raises:
        ToolkitInputError: an unknown ``pooling``, a checkpoint whose own pooling the toolkit cannot
            reproduce (e.g. sentence-transformers' ``weightedmean``) and no ``pooling`` given, a bad layer.

    Example:
        >>> report = {}
        >>> vecs = encode_sentences("outputs/pretrain/tiny_en", ["a cat", "a dog"], report=report)  # doctest: +SKIP
        >>> report  # doctest: +SKIP
        {'n_sentences': 2, 'n_truncated': 0, 'max_length': 128}
    """
    if isinstance(encoder, Encoder):
        enc = encoder
        if backend not in BACKENDS or backend not in ("auto", enc.backend):
            raise ToolkitInputError(
                f"backend={backend!r} but the encoder was loaded for {enc.backend!r}: load it with "
                f"load_encoder(..., backend={backend!r})"
            )
    else:
        enc = load_encoder(encoder, backend=backend, threads=threads)
    if pooling is None and enc.default_pooling not in SENTENCE_POOLINGS:
        where = enc.sentence_config.get("pooling_source") or enc.source
        raise ToolkitInputError(
            f"{where}: the checkpoint's pooling {enc.default_pooling!r} is not supported (supported: "
            f"{', '.join(SENTENCE_POOLINGS)}, one at a time); pass pooling= to choose one (the vectors will then "
            "differ from SentenceTransformer.encode)"
        )
    pooling = pooling or enc.default_pooling
    normalize = enc.normalize if normalize is None else normalize
    if pooling not in SENTENCE_POOLINGS:
        raise ToolkitInputError(
            f"sentence pooling must be one of {', '.join(SENTENCE_POOLINGS)}; got {pooling!r}"
        )
    layer_list = _layer_indices(enc, layers)
    need_all = layer_list != [enc.num_layers]
    if need_all and enc.backend == "onnx":
        raise ToolkitInputError(
            f"{enc.source} is an ONNX export, which holds the last layer only: layers={list(layers)} needs the "
            "PyTorch model it was exported from"
        )
    if threads is not None and threads < 1:
        raise ToolkitInputError(f"threads must be at least 1, got {threads}")
    args = (
        enc,
        sentences,
        pooling,
        normalize,
        layer_list,
        need_all,
        batch_size,
        max_length,
        show_progress,
        report,
    )
    if enc.backend == "onnx":
        if threads is not None:
            enc.model.set_threads(threads)
        return _encode_batches(*args)
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _encode_batches(*args)
    finally:
        torch.set_num_threads(previous)


def _encode_batches(
    enc: Encoder,
    sentences: Sequence[str],
    pooling: str,
    normalize: bool,
    layer_list: list[int],
    need_all: bool,
    batch_size: int,
    max_length: int | None,
    show_progress: bool,
    report: dict | None,
) -> np.ndarray:
    """The batches of :func:`encode_sentences` on either backend (an :class:`~toolkit._onnx.OnnxModel` is called
    like the PyTorch model). Sentences are tokenized a chunk of :data:`TOKENIZE_CHUNK_BATCHES` batches at a time
    (one call to the tokenizer: the Rust tokenizers spread it over the cores), ordered by token count within the
    chunk, longest first, so batches pad little; memory stays bounded by the chunk on any input size."""
    limit = max_length or min(
        getattr(enc.tokenizer, "model_max_length", 512), enc.model.config.max_position_embeddings
    )
    order = sorted(range(len(sentences)), key=lambda i: -len(sentences[i]))
    out = np.empty((len(sentences), enc.model.config.hidden_size), dtype=np.float32)
    n_truncated = 0
    chunk = batch_size * TOKENIZE_CHUNK_BATCHES
    progress = tqdm(total=-(-len(order) // batch_size), desc="Encoding", disable=not show_progress)
    for chunk_start in range(0, len(order), chunk):
        chunk_idx = order[chunk_start : chunk_start + chunk]
        texts = [tokenizer_safe(sentences[i]) for i in chunk_idx]
        encoded = enc.tokenizer(texts, truncation=True, max_length=limit, verbose=False)
        n_truncated += _count_truncated(enc.tokenizer, texts, encoded, limit)
        names = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded]
        columns = {k: encoded[k] for k in names}
        lengths = [len(ids) for ids in columns["input_ids"]]
        by_length = sorted(range(len(chunk_idx)), key=lambda j: -lengths[j])
        for start in range(0, len(by_length), batch_size):
            rows = by_length[start : start + batch_size]
            inputs = _pad_rows(enc.tokenizer, columns, rows, lengths)
            pooled = _pool_batch(enc, inputs, pooling, normalize, layer_list, need_all)
            out[[chunk_idx[j] for j in rows]] = pooled
            progress.update(1)
    progress.close()
    if n_truncated:
        logger.warning(
            "%d of %d sentences are longer than the model's window of %d tokens and were truncated: only "
            "their beginning is encoded. Split long texts (e.g. one sentence per line)",
            n_truncated,
            len(sentences),
            limit,
        )
    if report is not None:
        report.update(n_sentences=len(sentences), n_truncated=n_truncated, max_length=limit)
    return out


def _pad_rows(tokenizer, columns: dict, rows: list[int], lengths: list[int]) -> dict[str, np.ndarray]:
    """``rows`` of the tokenized ``columns``, padded to the longest (on the tokenizer's padding side) as
    int64 arrays, with the attention mask the padding implies."""
    width = max(lengths[j] for j in rows)
    pad_values = {"input_ids": tokenizer.pad_token_id or 0, "token_type_ids": tokenizer.pad_token_type_id}
    left = getattr(tokenizer, "padding_side", "right") == "left"
    batch = {}
    for name in {*columns, "attention_mask"}:
        array = np.full((len(rows), width), pad_values.get(name, 0), dtype=np.int64)
        for r, j in enumerate(rows):
            n = lengths[j]
            target = array[r, width - n :] if left else array[r, :n]
            target[:] = 1 if name == "attention_mask" else columns[name][j]
        batch[name] = array
    return batch


def _pool_batch(
    enc: Encoder, inputs: dict, pooling: str, normalize: bool, layer_list: list[int], need_all: bool
) -> np.ndarray:
    """One padded batch (int64 arrays) through the model, pooled to sentence vectors in NumPy, for both
    backends. An ONNX export so runs in NumPy from end to end: a PyTorch operation here would leave PyTorch's
    OpenMP workers spinning on the cores ONNX Runtime needs next (measured in a process that also runs PyTorch:
    931 sentences/s with PyTorch pooling, 1,318 without; all-MiniLM-L6-v2 int8, 2 cores)."""
    if enc.backend == "onnx":
        hidden = enc.model.run(inputs)
    else:
        tensors = {k: torch.from_numpy(v) for k, v in inputs.items()}
        result = enc.model(**tensors, output_hidden_states=need_all)
        if need_all:
            hidden = torch.stack([result.hidden_states[layer] for layer in layer_list]).mean(0)
        else:
            hidden = result.last_hidden_state
        hidden = hidden.float().numpy()
    mask = inputs["attention_mask"][..., None].astype(hidden.dtype)
    if pooling == "mean":
        pooled = (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)
    elif pooling == "cls":
        pooled = hidden[:, 0]
    else:
        pooled = np.where(mask > 0, hidden, np.finfo(hidden.dtype).min).max(1)
    if normalize:
        pooled = pooled / np.maximum(np.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12)
    return pooled.astype(np.float32, copy=False)


def _count_truncated(tokenizer: PreTrainedTokenizerBase, texts: list[str], batch, limit: int) -> int:
    """How many of ``texts`` the (truncating) ``batch`` encoding cut short."""
    if batch.encodings is not None:  # fast tokenizers keep what truncation removed
        return sum(bool(e.overflowing) for e in batch.encodings)
    lengths = [len(ids) for ids in tokenizer(texts, truncation=False, verbose=False)["input_ids"]]
    return sum(n > limit for n in lengths)
