"""Character, word and sentence vectors from any BERT-like checkpoint.

The classic "BERT char-vector" tool, as a library: read a checkpoint, collect every character (or word) in
the user's files, and return their vectors with a coverage report. Three modes:

* ``static``: rows of the input-embedding matrix (an item split into several pieces is pooled);
* ``contextual``: the hidden state of each item averaged over its occurrences in the corpus (lines are
  streamed window by window, so a one-line file of megabytes takes the memory of a batch of windows);
* sentences: :func:`encode_sentences` (mean / cls / max pooling).
"""

from __future__ import annotations

import bisect
import datetime as _dt
import hashlib
import itertools
import logging
import os
import re
import unicodedata
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import (
    PreTrainedTokenizerBase,
)

from ._encoder import Encoder, _layer_indices, encode_sentences, load_encoder
from ._errors import ToolkitInputError
from ._io import read_texts
from ._tagging import PIECE_CHARS, piece_groups, text_pieces
from ._text import load_jieba, tokenizer_safe
from ._vectors import VectorSet

logger = logging.getLogger(__name__)

Pooling = Literal["first", "last", "mean"]
ITEM_POOLINGS = ("first", "last", "mean")


MissingPolicy = Literal["skip", "unk", "zeros"]


def lowercases(tokenizer: PreTrainedTokenizerBase) -> bool:
    """Whether ``tokenizer`` lower-cases its input (an uncased model), tried on a sample."""
    return tokenizer.tokenize("ABC XYZ") == tokenizer.tokenize("abc xyz")


def fold_case(counts: Counter) -> tuple[Counter, dict[str, str]]:
    """Merge case variants into their lower-case form, summing counts (for an uncased model, whose vectors
    for ``Good`` and ``good`` are one row). Compatibility forms (full-width ``Ａ``) are left to the coverage
    report's NFKC matching. Returns the folded counts and each merged variant's row."""
    folded: Counter[str] = Counter()
    merged: dict[str, str] = {}
    for item, n in counts.items():
        lower = item.lower()
        if lower != item and unicodedata.normalize("NFKC", item) == item:
            merged[item] = lower
            item = lower
        folded[item] += n
    return folded, merged


def _segment(line: str, unit: str, segmenter: str | None) -> list[tuple[str, int, int]]:
    """Items of a line as (item, start, end) character spans."""
    if unit == "char":
        return [(c, i, i + 1) for i, c in enumerate(line) if not c.isspace()]
    if segmenter:
        return [(w, s, e) for w, s, e in load_jieba().tokenize(line) if w.strip()]
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
    for line in lines:  # piece by piece: a one-line file of megabytes is never segmented at once
        for start, end in text_pieces(line):
            counts.update(w for w, _, _ in _segment(line[start:end], unit, segmenter))
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
        case_folded: case variants merged into their lower-case form's row (static vectors of an uncased
            model), each with that form.
    """

    n_items: int = 0
    n_occurrences: int = 0
    n_found: int = 0
    normalized: dict[str, str] = field(default_factory=dict)
    missing: dict[str, int] = field(default_factory=dict)
    unk_rate: float = 0.0
    policy: str = "skip"
    case_folded: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["n_normalized"] = len(self.normalized)
        d["n_missing"] = len(self.missing)
        d["n_case_folded"] = len(self.case_folded)
        d["missing"] = dict(Counter(self.missing).most_common(200))
        return d


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
    text_field: str = "text",
    encoding: str = "utf-8",
    encoding_errors: str = "strict",
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
        text_field: the field of JSON Lines records that holds the text.
        encoding, encoding_errors: how input files are decoded (see :func:`~toolkit.read_texts`).
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
    if pooling not in ITEM_POOLINGS:
        raise ToolkitInputError(
            f"pooling of an item's pieces must be one of {', '.join(ITEM_POOLINGS)}, got {pooling!r} "
            "(cls and max pool sentences: --unit sentence)"
        )
    enc = encoder if isinstance(encoder, Encoder) else load_encoder(encoder)
    corpus_hash = None
    lines: list[str] | None = None
    if inputs is not None:
        lines, corpus_hash = read_texts(
            inputs,
            extensions=extensions,
            text_field=text_field,
            encoding=encoding,
            encoding_errors=encoding_errors,
        )
    elif texts is not None:
        lines = [t for t in texts if t.strip()]
        digest = hashlib.sha256()  # the hash of the lines joined by newlines, without building that string
        for n, line in enumerate(lines):
            digest.update(("\n" if n else "").encode() + line.encode("utf-8", "surrogatepass"))
        corpus_hash = digest.hexdigest()
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
    case_folded: dict[str, str] = {}
    if mode == "static" and lowercases(enc.tokenizer):
        counts, case_folded = fold_case(counts)  # an uncased model gives Good and GOOD good's row: keep one
    items, ids, report = resolve_items(enc.tokenizer, counts, missing=missing)
    report.case_folded = case_folded
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


def _special_wrapping(tok: PreTrainedTokenizerBase) -> tuple[list[int], list[int]]:
    """The special tokens the tokenizer puts before and after a single text (``[CLS]`` / ``[SEP]``), read
    off its own output, so windows built from token ids match what it would build itself."""
    inner = tok("a", add_special_tokens=False)["input_ids"]
    full = tok("a", add_special_tokens=True)["input_ids"]
    for k in range(len(full) - len(inner) + 1):
        if inner and full[k : k + len(inner)] == inner:
            return full[:k], full[k + len(inner) :]
    cls, sep = tok.cls_token_id, tok.sep_token_id
    return ([cls] if cls is not None else []), ([sep] if sep is not None else [])


@dataclass
class _Window:
    """One window of a line: its token ids (special tokens excluded) and the item occurrences it
    contributes, as ``(item index, positions of the pooled tokens in the window)``."""

    ids: list[int]
    picks: list[tuple[int, list[int]]]


class _LineWindows:
    """Windows over one line fed piece by piece, as the tokenizer's overflowing windows over the whole line
    (``body`` tokens each, consecutive windows sharing ``stride``), keeping only the tokens of the window
    being filled and the occurrences not yet placed.

    Each occurrence goes to the first window that holds its whole span, pooled over the window's tokens
    that overlap it, as before streaming; windows, tokens and placements are those of the whole line."""

    def __init__(self, *, body: int, stride: int, special: set[int], pooling: Pooling) -> None:
        self.body, self.step, self.special, self.pooling = body, body - stride, special, pooling
        self.ids: list[int] = []
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.base = 0  # line position of the first buffered token
        self.next_start = 0  # line position of the next window's first token
        self.covered = 0  # end of the last window made
        self.pending: deque[tuple[int, int, int]] = deque()  # (item, start, end) not placed, by start

    def feed(
        self,
        ids: list[int],
        offsets: list[tuple[int, int]],
        shift: int,
        occurrences: Iterable[tuple[int, int, int]],
    ) -> Iterator[_Window]:
        """Add a piece's tokens (offsets relative to the piece, which starts at ``shift`` in the line) and
        its occurrences; yield the windows now complete."""
        self.ids.extend(ids)
        self.starts.extend(a + shift for a, _ in offsets)
        self.ends.extend(b + shift for _, b in offsets)
        self.pending.extend(occurrences)
        while self.base + len(self.ids) >= self.next_start + self.body:
            yield from self._make(self.next_start, self.next_start + self.body)
            self.next_start += self.step

    def finish(self) -> Iterator[_Window]:
        """The last window (the tokens after the last complete one), if any."""
        n = self.base + len(self.ids)
        if n > self.covered:  # also a line shorter than one window (nothing covered yet)
            yield from self._make(self.next_start, n)

    def _make(self, start: int, end: int) -> Iterator[_Window]:
        self.covered = end
        lo, hi = start - self.base, end - self.base
        ids, starts, ends = self.ids[lo:hi], self.starts[lo:hi], self.ends[lo:hi]
        next_lo = self.next_start + self.step - self.base  # tokens before the next window are done with
        if next_lo > 0:
            del self.ids[:next_lo], self.starts[:next_lo], self.ends[:next_lo]
            self.base += next_lo
        valid = [t for t in range(len(ids)) if ends[t] > starts[t] and ids[t] not in self.special]
        if not valid:
            return
        first_char, last_char = starts[valid[0]], ends[valid[-1]]
        v_starts = [starts[t] for t in valid]
        v_ends = [ends[t] for t in valid]
        ordered = all(a <= b for a, b in zip(v_starts, v_starts[1:], strict=False)) and all(
            a <= b for a, b in zip(v_ends, v_ends[1:], strict=False)
        )
        pending = self.pending
        while pending and pending[0][1] < first_char:  # begins before this window: no later one holds it
            pending.popleft()
        picks, kept = [], []
        while pending and pending[0][1] < last_char:
            occ = pending.popleft()
            i, s, e = occ
            if e <= last_char:
                if ordered:  # tokens overlapping [s, e): those starting before e and ending after s
                    toks = valid[bisect.bisect_right(v_ends, s) : bisect.bisect_left(v_starts, e)]
                else:
                    toks = [t for t, ts, te in zip(valid, v_starts, v_ends, strict=True) if ts < e and te > s]
                if toks:
                    picks.append((i, {"first": toks[:1], "last": toks[-1:], "mean": toks}[self.pooling]))
                    continue
            kept.append(occ)
        pending.extendleft(reversed(kept))
        if picks:
            yield _Window(ids, picks)


def _iter_windows(
    tok: PreTrainedTokenizerBase,
    lines: Sequence[str],
    index: dict[str, int],
    *,
    unit: str,
    segmenter: str | None,
    body: int,
    stride: int,
    pooling: Pooling,
    piece_chars: int,
    call_chars: int,
    on_line_done: Callable[[], object] | None = None,
) -> Iterator[_Window]:
    """The windows of every line, in order, each with the occurrences it places. Lines are read in pieces
    tokenized at most ``call_chars`` characters per call, and windows are yielded as their tokens arrive, so
    neither the tokenizer's output nor the segmentation ever covers more than that, whatever a line's
    length."""
    special = set(tok.all_special_ids)
    state: _LineWindows | None = None
    current = -1
    for group in piece_groups(lines, piece_chars, call_chars):
        enc = tok(
            [tokenizer_safe(lines[n][a:b]) for n, a, b in group],
            add_special_tokens=False,
            return_offsets_mapping=True,
            return_attention_mask=False,
            return_token_type_ids=False,
            verbose=False,
        )
        for k, (n, a, b) in enumerate(group):
            if n != current:
                if state is not None:
                    yield from state.finish()
                    if on_line_done:
                        on_line_done()
                state, current = _LineWindows(body=body, stride=stride, special=special, pooling=pooling), n
            occurrences = [
                (index[item], s + a, e + a)
                for item, s, e in _segment(lines[n][a:b], unit, segmenter)
                if item in index
            ]
            yield from state.feed(enc["input_ids"][k], enc["offset_mapping"][k], a, occurrences)
    if state is not None:
        yield from state.finish()
        if on_line_done:
            on_line_done()


@torch.inference_mode()
def _contextual_vectors(
    enc: Encoder,
    lines: Sequence[str],
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
    piece_chars: int | None = None,
) -> tuple[np.ndarray, list[bool]]:
    """Hidden states of every occurrence, averaged per item, streaming windows: at most ``batch_size``
    windows go through the model at once and a line is tokenized piece by piece, so memory is bounded by
    the batch of windows, not by the length of a line (a one-line file of megabytes has thousands of
    windows). The windows are the tokenizer's overflowing windows over the whole line."""
    tok = enc.tokenizer
    piece_chars = piece_chars or PIECE_CHARS
    index = {item: i for i, item in enumerate(items) if ids[i] is not None}
    hidden_size = enc.model.config.hidden_size
    sums = torch.zeros(len(items), hidden_size, dtype=torch.float64)
    counts = torch.zeros(len(items), dtype=torch.float64)
    limit = max_length or min(
        getattr(tok, "model_max_length", 512), enc.model.config.max_position_embeddings, 512
    )
    prefix, suffix = _special_wrapping(tok)
    body = limit - len(prefix) - len(suffix)
    stride = min(32, limit // 4)
    if body <= stride:
        raise ToolkitInputError(
            f"max_length {limit} leaves {body} tokens per window after the special tokens: too few"
        )
    with_types = "token_type_ids" in getattr(tok, "model_input_names", ())
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0
    bar = tqdm(total=len(lines), desc="Contextual vectors", unit="line", disable=not show_progress)
    windows = _iter_windows(
        tok,
        lines,
        index,
        unit=unit,
        segmenter=segmenter,
        body=body,
        stride=stride,
        pooling=pooling,
        piece_chars=piece_chars,
        call_chars=max(piece_chars, 8 * limit * batch_size),
        on_line_done=lambda: bar.update(1),
    )
    while batch := list(itertools.islice(windows, batch_size)):
        width = max(len(w.ids) for w in batch) + len(prefix) + len(suffix)
        input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        rows, weights, targets = [], [], []
        for r, w in enumerate(batch):
            seq = [*prefix, *w.ids, *suffix]
            input_ids[r, : len(seq)] = torch.tensor(seq, dtype=torch.long)
            mask[r, : len(seq)] = 1
            for i, toks in w.picks:
                for t in toks:
                    rows.append(r * width + len(prefix) + t)
                    weights.append(1.0 / len(toks))
                    targets.append(i)
                counts[i] += 1
        model_inputs = {"input_ids": input_ids, "attention_mask": mask}
        if with_types:
            model_inputs["token_type_ids"] = torch.zeros_like(input_ids)
        out = enc.model(**model_inputs, output_hidden_states=True)
        hidden = torch.stack([out.hidden_states[layer] for layer in layers]).mean(0)  # (W, L, H)
        flat = hidden.reshape(-1, hidden_size)[torch.tensor(rows)].double()
        contrib = flat * torch.tensor(weights, dtype=torch.float64).unsqueeze(1)
        sums.index_add_(0, torch.tensor(targets), contrib)
    bar.close()
    vectors = (sums / counts.clamp(min=1).unsqueeze(1)).float().numpy()
    for i, x in enumerate(ids):
        if x is None:
            vectors[i] = _unk_vector(enc, missing, hidden_size)
    return vectors, (counts > 0).tolist()


def extract_sentence_vectors(
    encoder: Encoder | str | os.PathLike,
    inputs: Sequence[str | os.PathLike] | str,
    *,
    pooling: str | None = None,
    layers: Sequence[int] = (-1,),
    normalize: bool | None = None,
    extensions: Sequence[str] = (".txt",),
    text_field: str = "text",
    encoding: str = "utf-8",
    encoding_errors: str = "strict",
    batch_size: int = 32,
) -> VectorSet:
    """One vector per non-empty input line (``sentence_0``, ``sentence_1``, ...), with provenance and a
    coverage report that counts the lines longer than the model's window (truncated, and warned about).
    ``normalize=None`` L2-normalises when the checkpoint asks for it (a sentence-transformers directory with
    a ``Normalize`` module), as ``SentenceTransformer.encode`` does; the provenance records what was done.

    Example:
        >>> vs = extract_sentence_vectors("st_model/", ["sentences.txt"], normalize=True)  # doctest: +SKIP
    """
    enc = encoder if isinstance(encoder, Encoder) else load_encoder(encoder)
    lines, digest = read_texts(
        inputs,
        extensions=extensions,
        text_field=text_field,
        encoding=encoding,
        encoding_errors=encoding_errors,
    )
    report: dict = {}
    vectors = encode_sentences(
        enc,
        lines,
        pooling=pooling,
        layers=layers,
        normalize=normalize,
        batch_size=batch_size,
        show_progress=True,
        report=report,
    )
    provenance = {
        "checkpoint": enc.source,
        "mode": "sentence",
        "layers": list(layers),
        "pooling": pooling or enc.default_pooling,
        "normalize": enc.normalize if normalize is None else normalize,
        "corpus_sha256": digest,
    }
    return VectorSet(
        [f"sentence_{i}" for i in range(len(lines))], vectors, provenance, {"n_items": len(lines), **report}
    )
