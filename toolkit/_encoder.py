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


ENCODER_TYPES = {
    "bert", "roberta", "xlm-roberta", "camembert", "distilbert", "electra", "albert", "ernie", "mpnet",
    "deberta", "deberta-v2", "megatron-bert", "nezha", "roformer", "modernbert",
}  # fmt: skip


# --------------------------------------------------------------------------------------------- loading
@dataclass
class Encoder:
    """A loaded encoder: model (eval mode), tokenizer, where it came from, and its default pooling."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    source: str
    default_pooling: SentencePooling = "mean"
    loading_report: dict = field(default_factory=dict)

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


def load_encoder(
    source: str | os.PathLike,
    *,
    vocab: str | os.PathLike | None = None,
    config: str | os.PathLike | None = None,
) -> Encoder:
    """Load the encoder of a BERT-like checkpoint for vector extraction.

    Args:
        source: a Hugging Face model directory (base model, masked-LM or fine-tuned classifier: its encoder
            is used), a sentence-transformers directory (its pooling becomes the default), a single
            ``.safetensors`` / ``pytorch_model.bin`` file, or a hub id (when the hub is reachable or cached).
        vocab: for a single weights file without a tokenizer beside it: a ``vocab.txt`` or tokenizer directory.
        config: for a single weights file: its ``config.json`` (default: beside the file, else inferred from
            the weight shapes).

    Returns:
        An :class:`Encoder`.

    Raises:
        ToolkitInputError: no weights, no tokenizer, a non-BERT-like architecture, unreadable files; a
            ``vocab`` that does not exist, a directory without tokenizer files, or an unreadable vocab file.

    Example:
        >>> enc = load_encoder("outputs/pretrain/tiny_zh")  # doctest: +SKIP
        >>> enc.num_layers  # doctest: +SKIP
        2
    """
    path = Path(source)
    tokenizer = _tokenizer_from(vocab) if vocab else None  # a bad vocab fails before any weights are read
    if path.is_file():
        return _load_from_file(path, tokenizer, config)
    default_pooling: SentencePooling = "mean"
    if path.is_dir():
        model_dir = path
        modules = path / "modules.json"
        if modules.is_file():  # sentence-transformers layout
            entries = json.loads(modules.read_text(encoding="utf-8"))
            for entry in entries:
                if entry.get("type", "").endswith("Transformer"):
                    model_dir = path / entry.get("path", "")
                elif entry.get("type", "").endswith("Pooling"):
                    pcfg = path / entry.get("path", "") / "config.json"
                    if pcfg.is_file():
                        pooling = json.loads(pcfg.read_text(encoding="utf-8"))
                        if pooling.get("pooling_mode_cls_token"):
                            default_pooling = "cls"
                        elif pooling.get("pooling_mode_max_tokens"):
                            default_pooling = "max"
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
    return Encoder(model.eval(), tokenizer, name, default_pooling, report)


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
    normalize: bool = False,
    batch_size: int = 32,
    max_length: int | None = None,
    show_progress: bool = False,
    report: dict | None = None,
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
        normalize: L2-normalise each vector.
        batch_size: sentences per forward pass; sentences are sorted by length so batches pad little.
        max_length: truncation length (default: the model's maximum).
        show_progress: show a progress bar.
        report: a dict filled with ``n_sentences``, ``n_truncated`` (sentences longer than the window) and
            ``max_length`` (the window, in tokens).

    Returns:
        ``(len(sentences), hidden)`` float32 array, in input order.

    Example:
        >>> report = {}
        >>> vecs = encode_sentences("outputs/pretrain/tiny_en", ["a cat", "a dog"], report=report)  # doctest: +SKIP
        >>> report  # doctest: +SKIP
        {'n_sentences': 2, 'n_truncated': 0, 'max_length': 128}
    """
    enc = encoder if isinstance(encoder, Encoder) else load_encoder(encoder)
    pooling = pooling or enc.default_pooling
    if pooling not in SENTENCE_POOLINGS:
        raise ToolkitInputError(
            f"sentence pooling must be one of {', '.join(SENTENCE_POOLINGS)}; got {pooling!r}"
        )
    layer_list = _layer_indices(enc, layers)
    need_all = layer_list != [enc.num_layers]
    limit = max_length or min(
        getattr(enc.tokenizer, "model_max_length", 512), enc.model.config.max_position_embeddings
    )
    order = sorted(range(len(sentences)), key=lambda i: -len(sentences[i]))
    out = np.empty((len(sentences), enc.model.config.hidden_size), dtype=np.float32)
    n_truncated = 0
    for start in tqdm(range(0, len(order), batch_size), desc="Encoding", disable=not show_progress):
        idx = order[start : start + batch_size]
        texts = [tokenizer_safe(sentences[i]) for i in idx]
        batch = enc.tokenizer(texts, padding=True, truncation=True, max_length=limit, return_tensors="pt")
        n_truncated += _count_truncated(enc.tokenizer, texts, batch, limit)
        inputs = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        result = enc.model(**inputs, output_hidden_states=need_all)
        if need_all:
            hidden = torch.stack([result.hidden_states[layer] for layer in layer_list]).mean(0)
        else:
            hidden = result.last_hidden_state
        mask = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        if pooling == "mean":
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        elif pooling == "cls":
            pooled = hidden[:, 0]
        else:
            pooled = hidden.masked_fill(mask == 0, torch.finfo(hidden.dtype).min).max(1).values
        if normalize:
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
        out[idx] = pooled.float().numpy()
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


def _count_truncated(tokenizer: PreTrainedTokenizerBase, texts: list[str], batch, limit: int) -> int:
    """How many of ``texts`` the (truncating) ``batch`` encoding cut short."""
    if batch.encodings is not None:  # fast tokenizers keep what truncation removed
        return sum(bool(e.overflowing) for e in batch.encodings)
    lengths = [len(ids) for ids in tokenizer(texts, truncation=False, verbose=False)["input_ids"]]
    return sum(n > limit for n in lengths)
