"""Character, word and sentence vectors from any BERT-like checkpoint.

The classic "BERT char-vector" tool, as a library: read a checkpoint, collect every character (or word) in
the user's files, and return their vectors with a coverage report. Three modes:

* ``static``: rows of the input-embedding matrix (an item split into several pieces is pooled);
* ``contextual``: the hidden state of each item averaged over its occurrences in the corpus;
* sentences: :func:`encode_sentences` (mean / cls / max pooling).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
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

from ._corpus import resolve_files
from ._errors import ToolkitInputError
from ._vectors import VectorSet

logger = logging.getLogger(__name__)

Pooling = Literal["first", "last", "mean"]
SentencePooling = Literal["mean", "cls", "max"]
MissingPolicy = Literal["skip", "unk", "zeros"]
ENCODER_TYPES = {
    "bert", "roberta", "xlm-roberta", "camembert", "distilbert", "electra", "albert", "ernie", "mpnet",
    "deberta", "deberta-v2", "megatron-bert", "nezha", "roformer", "modernbert",
}  # fmt: skip
_WEIGHT_FILES = (
    "model.safetensors",
    "pytorch_model.bin",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
)


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


def _tokenizer_from(path: str | os.PathLike) -> PreTrainedTokenizerBase:
    path = Path(path)
    if path.is_file():  # a bare vocab.txt
        from ._tokenizer import build_wordpiece_tokenizer

        vocab = path.read_text(encoding="utf-8").split("\n")
        vocab = vocab[:-1] if vocab and vocab[-1] == "" else vocab
        return build_wordpiece_tokenizer(vocab, lowercase=True)
    return AutoTokenizer.from_pretrained(str(path))


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


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a ``.safetensors`` file, or a PyTorch pickle (``.bin``/``.pt``) with ``weights_only=True``.

    Raises:
        ToolkitInputError: a missing or unreadable file.
    """
    path = Path(path)
    if not path.is_file():
        raise ToolkitInputError(f"weights file {str(path)!r} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any reader failure becomes one clear message
        raise ToolkitInputError(f"cannot read weights from {str(path)!r}: {err}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ToolkitInputError(f"{str(path)!r} does not hold a state dict")
    return state


def _load_from_file(path: Path, vocab: str | os.PathLike | None, config: str | os.PathLike | None) -> Encoder:
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
    vocab_source = vocab or (path.parent if _has_tokenizer(path.parent) else None)
    if vocab_source is None:
        raise ToolkitInputError(
            f"{str(path)!r} has no tokenizer beside it: pass vocab= (a vocab.txt or tokenizer directory)"
        )
    tokenizer = _tokenizer_from(vocab_source)
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
        ToolkitInputError: no weights, no tokenizer, a non-BERT-like architecture, unreadable files.

    Example:
        >>> enc = load_encoder("outputs/pretrain/tiny_zh")  # doctest: +SKIP
        >>> enc.num_layers  # doctest: +SKIP
        2
    """
    path = Path(source)
    if path.is_file():
        return _load_from_file(path, vocab, config)
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
        if not any((model_dir / n).is_file() for n in _WEIGHT_FILES):
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
    model, info = AutoModel.from_pretrained(name, output_loading_info=True)
    try:
        tokenizer = _tokenizer_from(tokenizer_source)
    except (OSError, ValueError) as err:
        raise ToolkitInputError(f"cannot load a tokenizer from {str(tokenizer_source)!r}: {err}") from None
    report = {
        k: list(v) for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys")
    }
    return Encoder(model.eval(), tokenizer, name, default_pooling, report)


# ------------------------------------------------------------------------------------------ vocabulary
def read_texts(
    inputs: Sequence[str | os.PathLike] | str, *, extensions: Sequence[str] = (".txt",)
) -> tuple[list[str], str]:
    """Read lines from files, directories (recursive, by extension) and ``-`` (standard input).

    Returns:
        ``(lines, sha256)``: non-empty lines, and a hash of the bytes read (for provenance).

    Raises:
        ToolkitInputError: missing paths, empty input, binary or non-UTF-8 files (naming the byte offset).
    """
    from ._corpus import scan_text_file

    inputs = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    digest = hashlib.sha256()
    lines: list[str] = []
    files = [i for i in inputs if str(i) != "-"]
    for path in resolve_files([str(f) for f in files], extensions=extensions) if files else []:
        scan_text_file(path)
        data = path.read_bytes()
        digest.update(data)
        lines.extend(line for line in data.decode("utf-8").split("\n") if line.strip())
    if any(str(i) == "-" for i in inputs):
        data = sys.stdin.buffer.read()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise ToolkitInputError(f"standard input: invalid UTF-8 at byte offset {err.start}") from None
        digest.update(data)
        lines.extend(line for line in text.split("\n") if line.strip())
    if not lines:
        raise ToolkitInputError("the input holds no text")
    return lines, digest.hexdigest()


def _segment(line: str, unit: str, segmenter: str | None) -> list[tuple[str, int, int]]:
    """Items of a line as (item, start, end) character spans."""
    if unit == "char":
        return [(c, i, i + 1) for i, c in enumerate(line) if not c.isspace()]
    if segmenter:
        from ._packing import _jieba

        return [(w, s, e) for w, s, e in _jieba().tokenize(line) if w.strip()]
    return [(m.group(), m.start(), m.end()) for m in re.finditer(r"\S+", line)]


def count_items(
    lines: Iterable[str], *, unit: Literal["char", "word"] = "char", segmenter: str | None = None
) -> Counter:
    """Count every distinct character (``unit="char"``) or word (whitespace, or ``segmenter="jieba"``)."""
    counts: Counter[str] = Counter()
    if unit == "char":
        for line in lines:
            counts.update(line)
        for c in [c for c in counts if c.isspace()]:
            del counts[c]
        return counts
    for line in lines:
        counts.update(w for w, _, _ in _segment(line, unit, segmenter))
    return counts


# -------------------------------------------------------------------------------------------- coverage
@dataclass
class CoverageReport:
    """What became of each requested item.

    Attributes:
        n_items: distinct items requested; ``n_occurrences`` their total count in the corpus.
        n_found: items the tokenizer represents without ``[UNK]``.
        normalized: items found only after NFKC / case folding, with the form that matched.
        missing: items not representable (``[UNK]``, or mapped to no token at all), with counts.
        unk_rate: share of item occurrences that are missing.
        policy: what was done with missing items (``skip``, ``unk``, ``zeros``).
    """

    n_items: int = 0
    n_occurrences: int = 0
    n_found: int = 0
    normalized: dict[str, str] = field(default_factory=dict)
    missing: dict[str, int] = field(default_factory=dict)
    unk_rate: float = 0.0
    policy: str = "skip"

    def as_dict(self) -> dict:
        d = asdict(self)
        d["n_normalized"] = len(self.normalized)
        d["n_missing"] = len(self.missing)
        d["missing"] = dict(Counter(self.missing).most_common(200))
        return d


_SURROGATE = re.compile("[\ud800-\udfff]")


def tokenizer_safe(text: str) -> str:
    """Replace lone surrogates (which the Rust tokenizers reject) by U+FFFD, one character for one, so
    character offsets stay valid; the original text is still what the coverage report names."""
    return _SURROGATE.sub("\ufffd", text)


def _piece_ids(tokenizer: PreTrainedTokenizerBase, items: list[str]) -> list[list[int]]:
    safe = [tokenizer_safe(i) for i in items]
    return tokenizer(safe, add_special_tokens=False, verbose=False)["input_ids"] if items else []


def resolve_items(
    tokenizer: PreTrainedTokenizerBase, counts: Counter, *, missing: MissingPolicy = "skip"
) -> tuple[list[str], list[list[int] | None], CoverageReport]:
    """Map items to tokenizer ids, trying NFKC and case-folded forms for items that become ``[UNK]``.

    Returns:
        ``(items, ids, report)``: ``ids[i]`` is the piece ids of ``items[i]``, or ``None`` for a missing
        item kept under the ``unk``/``zeros`` policy. Skipped items are not in ``items``.
    """
    if missing not in ("skip", "unk", "zeros"):
        raise ToolkitInputError(f"missing policy must be skip, unk or zeros; got {missing!r}")
    unk = tokenizer.unk_token_id
    items = list(counts)
    report = CoverageReport(n_items=len(items), n_occurrences=sum(counts.values()), policy=missing)

    def ok(ids: list[int]) -> bool:
        return bool(ids) and unk not in ids

    out_items, out_ids = [], []
    for item, ids in zip(items, _piece_ids(tokenizer, items), strict=True):
        if not ok(ids):
            for form in dict.fromkeys(
                (
                    unicodedata.normalize("NFKC", item),
                    item.casefold(),
                    unicodedata.normalize("NFKC", item).casefold(),
                )
            ):
                if form != item and form.strip():
                    alt = _piece_ids(tokenizer, [form])[0]
                    if ok(alt):
                        report.normalized[item] = form
                        ids = alt
                        break
        if ok(ids):
            report.n_found += 1
            out_items.append(item)
            out_ids.append(ids)
        else:
            report.missing[item] = counts[item]
            if missing != "skip":
                out_items.append(item)
                out_ids.append(None)
    report.unk_rate = sum(report.missing.values()) / report.n_occurrences if report.n_occurrences else 0.0
    return out_items, out_ids, report


def _pool_rows(rows: torch.Tensor, pooling: Pooling) -> torch.Tensor:
    if pooling == "first":
        return rows[0]
    if pooling == "last":
        return rows[-1]
    if pooling == "mean":
        return rows.mean(0)
    raise ToolkitInputError(f"sub-token pooling must be first, last or mean; got {pooling!r}")


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


# ------------------------------------------------------------------------------------------ extraction
def extract_vectors(
    encoder: Encoder | str | os.PathLike,
    *,
    inputs: Sequence[str | os.PathLike] | str | None = None,
    texts: Sequence[str] | None = None,
    words: Sequence[str] | None = None,
    unit: Literal["char", "word"] = "char",
    mode: Literal["static", "contextual"] = "static",
    layers: Sequence[int] = (-1,),
    pooling: Pooling = "mean",
    min_count: int = 1,
    segmenter: str | None = None,
    missing: MissingPolicy = "skip",
    extensions: Sequence[str] = (".txt",),
    batch_size: int = 32,
    max_length: int | None = None,
    show_progress: bool = True,
) -> VectorSet:
    """Vectors for the characters or words of a corpus (or for a word list) from a checkpoint.

    Args:
        encoder: an :class:`Encoder` or anything :func:`load_encoder` takes.
        inputs: files, directories or ``-`` (stdin) holding the corpus; or pass ``texts``.
        texts: the corpus as lines.
        words: a given item list instead of collecting items from the corpus (``contextual`` still needs
            a corpus to find their occurrences).
        unit: ``"char"`` (every distinct character) or ``"word"`` (whitespace, or ``segmenter``).
        mode: ``"static"`` (input-embedding rows) or ``"contextual"`` (hidden states averaged over the
            item's occurrences in the corpus).
        layers: hidden-state layers averaged in contextual mode (0 = embeddings output, -1 = last).
        pooling: how the pieces of an item split into several tokens are pooled: first, last, mean.
        min_count: ignore items rarer than this in the corpus.
        segmenter: ``"jieba"`` for Chinese words.
        missing: what to do with items the tokenizer cannot represent: ``skip`` (leave out, reported),
            ``unk`` (use the ``[UNK]`` vector), ``zeros``.
        extensions: file extensions read from directories.
        batch_size, max_length: contextual-mode batching and window length (default: the model's maximum).
        show_progress: progress bar in contextual mode.

    Returns:
        A :class:`VectorSet` with provenance and coverage.

    Raises:
        ToolkitInputError: no corpus, empty input, a layer out of range, bad options.

    Example:
        >>> vs = extract_vectors("outputs/pretrain/tiny_zh", inputs=["my_corpus/"])  # doctest: +SKIP
        >>> vs.save("chars.vec")  # doctest: +SKIP
    """
    if unit not in ("char", "word"):
        raise ToolkitInputError(f"unit must be 'char' or 'word', got {unit!r}")
    if mode not in ("static", "contextual"):
        raise ToolkitInputError(f"mode must be 'static' or 'contextual', got {mode!r}")
    enc = encoder if isinstance(encoder, Encoder) else load_encoder(encoder)
    corpus_hash = None
    lines: list[str] | None = None
    if inputs is not None:
        lines, corpus_hash = read_texts(inputs, extensions=extensions)
    elif texts is not None:
        lines = [t for t in texts if t.strip()]
        corpus_hash = hashlib.sha256("\n".join(lines).encode("utf-8", "surrogatepass")).hexdigest()
    if words is not None:
        counts = Counter({w: 1 for w in words})
        if lines is not None:
            occurrences = count_items(lines, unit=unit, segmenter=segmenter)
            counts = Counter({w: max(1, occurrences.get(w, 0)) for w in words})
    elif lines is not None:
        counts = count_items(lines, unit=unit, segmenter=segmenter)
        counts = Counter({k: v for k, v in counts.items() if v >= min_count})
    else:
        raise ToolkitInputError("give a corpus (inputs= or texts=) or a word list (words=)")
    if mode == "contextual" and lines is None:
        raise ToolkitInputError(
            "contextual vectors need a corpus in which the items occur (inputs= or texts=)"
        )
    if not counts:
        raise ToolkitInputError("no item to extract (empty input, or min_count too high)")
    items, ids, report = resolve_items(enc.tokenizer, counts, missing=missing)
    if mode == "static":
        vectors = _static_vectors(enc, ids, pooling=pooling, missing=missing)
        layer_list: list[int] = []
    else:
        layer_list = _layer_indices(enc, layers)
        vectors, seen = _contextual_vectors(
            enc,
            lines,
            items,
            ids,
            unit=unit,
            segmenter=segmenter,
            layers=layer_list,
            pooling=pooling,
            missing=missing,
            batch_size=batch_size,
            max_length=max_length,
            show_progress=show_progress,
        )
        keep = [i for i, s in enumerate(seen) if s or ids[i] is None]
        if len(keep) < len(items):  # given words that never occur in the corpus have no contextual vector
            for i in set(range(len(items))) - set(keep):
                report.missing[items[i]] = 0
            items = [items[i] for i in keep]
            vectors = vectors[keep]
    provenance = {
        "checkpoint": enc.source, "mode": mode, "unit": unit, "layers": layer_list, "pooling": pooling,
        "segmenter": segmenter, "min_count": min_count, "corpus_sha256": corpus_hash, "missing_policy": missing,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "toolkit": "toolkit.extract_vectors",
    }  # fmt: skip
    return VectorSet(items, vectors, provenance, report.as_dict())


def _unk_vector(
    enc: Encoder, missing: MissingPolicy, dim: int, table: torch.Tensor | None = None
) -> np.ndarray:
    if missing == "zeros":
        return np.zeros(dim, dtype=np.float32)
    table = enc.model.get_input_embeddings().weight if table is None else table
    return table[enc.tokenizer.unk_token_id].detach().float().numpy()


@torch.inference_mode()
def _static_vectors(
    enc: Encoder, ids: list[list[int] | None], *, pooling: Pooling, missing: MissingPolicy
) -> np.ndarray:
    table = enc.model.get_input_embeddings().weight.detach().float()
    out = np.empty((len(ids), table.shape[1]), dtype=np.float32)
    single = [i for i, x in enumerate(ids) if x is not None and len(x) == 1]
    if single:  # the common case (characters): one gather for all
        out[single] = table[torch.tensor([ids[i][0] for i in single])].numpy()
    for i, x in enumerate(ids):
        if x is None:
            out[i] = _unk_vector(enc, missing, table.shape[1], table)
        elif len(x) > 1:
            out[i] = _pool_rows(table[torch.tensor(x)], pooling).numpy()
    return out


@torch.inference_mode()
def _contextual_vectors(
    enc: Encoder,
    lines: list[str],
    items: list[str],
    ids: list[list[int] | None],
    *,
    unit: str,
    segmenter: str | None,
    layers: list[int],
    pooling: Pooling,
    missing: MissingPolicy,
    batch_size: int,
    max_length: int | None,
    show_progress: bool,
) -> tuple[np.ndarray, list[bool]]:
    tok = enc.tokenizer
    index = {item: i for i, item in enumerate(items)}
    hidden_size = enc.model.config.hidden_size
    sums = torch.zeros(len(items), hidden_size, dtype=torch.float64)
    counts = torch.zeros(len(items), dtype=torch.float64)
    limit = max_length or min(
        getattr(tok, "model_max_length", 512), enc.model.config.max_position_embeddings, 512
    )
    enc_kwargs = dict(
        add_special_tokens=True,
        truncation=True,
        max_length=limit,
        stride=min(32, limit // 4),
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding=True,
        return_tensors="pt",
    )
    bar = tqdm(total=len(lines), desc="Contextual vectors", unit="line", disable=not show_progress)
    for start in range(0, len(lines), batch_size):
        batch = lines[start : start + batch_size]
        encoded = tok([tokenizer_safe(line) for line in batch], **enc_kwargs)
        sample_map = encoded.pop("overflow_to_sample_mapping").tolist()
        offsets = encoded.pop("offset_mapping")
        model_inputs = {
            k: v for k, v in encoded.items() if k in ("input_ids", "attention_mask", "token_type_ids")
        }
        out = enc.model(**model_inputs, output_hidden_states=True)
        hidden = torch.stack([out.hidden_states[layer] for layer in layers]).mean(0).double()  # (W, L, H)
        special = torch.zeros_like(model_inputs["input_ids"], dtype=torch.bool)
        for sid in tok.all_special_ids:
            special |= model_inputs["input_ids"] == sid
        rows, weights, targets = [], [], []
        seen_spans: set[tuple[int, int, int]] = set()  # windows overlap: count each occurrence once
        for w, sample in enumerate(sample_map):
            line = batch[sample]
            starts = offsets[w, :, 0].tolist()
            ends = offsets[w, :, 1].tolist()
            valid = [
                (t, s, e)
                for t, (s, e) in enumerate(zip(starts, ends, strict=True))
                if e > s and not special[w, t]
            ]
            if not valid:
                continue
            window_start, window_end = valid[0][1], valid[-1][2]
            for item, s, e in _segment(line, unit, segmenter):
                if s < window_start or e > window_end or (sample, s, e) in seen_spans or item not in index:
                    continue
                i = index[item]
                if ids[i] is None:
                    continue
                toks = [t for t, ts, te in valid if ts < e and te > s]
                if not toks:
                    continue
                seen_spans.add((sample, s, e))
                chosen = {"first": toks[:1], "last": toks[-1:], "mean": toks}[pooling]
                for t in chosen:
                    rows.append(w * hidden.shape[1] + t)
                    weights.append(1.0 / len(chosen))
                    targets.append(i)
                counts[i] += 1
        if rows:
            flat = hidden.reshape(-1, hidden_size)
            contrib = flat[torch.tensor(rows)] * torch.tensor(weights, dtype=torch.float64).unsqueeze(1)
            sums.index_add_(0, torch.tensor(targets), contrib)
        bar.update(len(batch))
    bar.close()
    vectors = (sums / counts.clamp(min=1).unsqueeze(1)).float().numpy()
    for i, x in enumerate(ids):
        if x is None:
            vectors[i] = _unk_vector(enc, missing, hidden_size)
    return vectors, (counts > 0).tolist()


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
) -> np.ndarray:
    """Encode sentences into vectors.

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

    Returns:
        ``(len(sentences), hidden)`` float32 array, in input order.

    Example:
        >>> vecs = encode_sentences("outputs/pretrain/tiny_en", ["a cat", "a dog"])  # doctest: +SKIP
    """
    enc = encoder if isinstance(encoder, Encoder) else load_encoder(encoder)
    pooling = pooling or enc.default_pooling
    if pooling not in ("mean", "cls", "max"):
        raise ToolkitInputError(f"sentence pooling must be mean, cls or max; got {pooling!r}")
    layer_list = _layer_indices(enc, layers)
    need_all = layer_list != [enc.num_layers]
    limit = max_length or min(
        getattr(enc.tokenizer, "model_max_length", 512), enc.model.config.max_position_embeddings
    )
    order = sorted(range(len(sentences)), key=lambda i: -len(sentences[i]))
    out = np.empty((len(sentences), enc.model.config.hidden_size), dtype=np.float32)
    for start in tqdm(range(0, len(order), batch_size), desc="Encoding", disable=not show_progress):
        idx = order[start : start + batch_size]
        batch = enc.tokenizer(
            [tokenizer_safe(sentences[i]) for i in idx],
            padding=True,
            truncation=True,
            max_length=limit,
            return_tensors="pt",
        )
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
    return out
