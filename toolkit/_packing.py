"""Tokenize documents and pack them into fixed-length blocks for masked-LM training.

Packing concatenates documents separated by ``[SEP]`` and cuts the stream into blocks of ``block_size``
tokens, each starting with ``[CLS]``; only the last block of each ``.map`` batch is padded, so padding is
a tiny fraction of tokens and no token is dropped. A ``word_starts`` column (1 where a token begins a word)
travels with the ids so the masking collator can mask whole words.

Memory is bounded by the ``.map`` batch, not by a document: a long document (a file that is one line) is
tokenized in pieces cut where the tokenizer cuts anyway (:func:`toolkit._tagging.text_pieces`), at most
:data:`TOKENIZE_CHARS` characters per tokenizer call, and the token stream is held as NumPy arrays; only the
blocks themselves become Python lists, as ``datasets`` expects.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import datasets
import numpy as np
from transformers import PreTrainedTokenizerBase

from ._errors import ToolkitInputError
from ._tagging import PIECE_CHARS, piece_groups
from ._text import load_jieba

logger = logging.getLogger(__name__)

# Characters of text given to the tokenizer in one call: a batch of long documents is tokenized in several
# calls, so the tokenizer's per-token objects (and their Python lists) never cover more than this.
TOKENIZE_CHARS = 1 << 18


def segment_word_starts(text: str, segmenter: str) -> set[int]:
    """Character offsets where a word starts, according to ``segmenter`` (``"jieba"``)."""
    if segmenter != "jieba":
        raise ToolkitInputError(f"unknown Chinese segmenter {segmenter!r}: supported: jieba")
    return {start for _, start, _ in load_jieba().tokenize(text)}


def word_start_flags(
    word_ids: Sequence[int | None], offsets: Sequence[tuple[int, int]], segment_starts: set[int] | None = None
) -> list[int]:
    """Mark tokens that begin a word (1) versus continue one (0).

    A token continues the previous word when the tokenizer's pre-tokenizer put both in one word (``##``
    pieces of an English word), or, with a Chinese segmenter, when its first character is not at a
    segmenter word boundary (the second character of 北京).

    Args:
        word_ids: the encoding's ``word_ids()`` (pre-tokenizer words).
        offsets: character offsets of each token in the original text.
        segment_starts: word-start offsets from a segmenter, or ``None``.

    Returns:
        One flag per token.
    """
    flags = []
    prev = None
    for i, (wid, (start, _)) in enumerate(zip(word_ids, offsets, strict=True)):
        if i == 0:
            flags.append(1)
        else:
            same_word = wid is not None and wid == prev
            inside_segment = segment_starts is not None and start not in segment_starts
            flags.append(0 if same_word or inside_segment else 1)
        prev = wid
    return flags


def pack_into_blocks(
    ids: Sequence[Sequence[int]],
    word_starts: Sequence[Sequence[int]] | None,
    *,
    block_size: int,
    cls_id: int,
    sep_id: int,
    pad_id: int,
) -> dict[str, list[list[int]]]:
    """Concatenate documents (each followed by ``[SEP]``) and cut into ``[CLS]``-prefixed blocks.

    Args:
        ids: token ids of each document, without special tokens.
        word_starts: per-token word-start flags of each document, or ``None``.
        block_size: tokens per block, ``[CLS]`` included.
        cls_id, sep_id, pad_id: special token ids.

    Returns:
        ``{"input_ids": blocks}`` (plus ``"word_starts"``). All blocks have ``block_size`` tokens; the last
        one is padded with ``pad_id`` if the stream does not fill it. Empty input gives no blocks.

    Example:
        >>> pack_into_blocks([[5, 6], [7]], None, block_size=4, cls_id=1, sep_id=2, pad_id=0)
        {'input_ids': [[1, 5, 6, 2], [1, 7, 2, 0]]}
    """
    if block_size < 2:
        raise ToolkitInputError(f"block_size must be at least 2, got {block_size}")
    kept = [i for i, doc in enumerate(ids) if len(doc)]
    if not kept:
        result: dict[str, list[list[int]]] = {"input_ids": []}
        if word_starts is not None:
            result["word_starts"] = []
        return result
    sep = np.array([sep_id], dtype=np.int64)
    stream = np.concatenate([part for i in kept for part in (np.asarray(ids[i], dtype=np.int64), sep)])
    body = block_size - 1
    n_blocks = -(-len(stream) // body)
    pad = n_blocks * body - len(stream)

    def blocks(values: np.ndarray, first: int, fill: int) -> list[list[int]]:
        out = np.empty((n_blocks, block_size), dtype=np.int64)
        out[:, 0] = first
        out[:, 1:] = np.concatenate([values, np.full(pad, fill, dtype=np.int64)]).reshape(n_blocks, body)
        return out.tolist()

    result = {"input_ids": blocks(stream, cls_id, pad_id)}
    if word_starts is not None:
        one = np.ones(1, dtype=np.int64)
        starts = np.concatenate(
            [part for i in kept for part in (np.asarray(word_starts[i], dtype=np.int64), one)]
        )
        result["word_starts"] = blocks(starts, 1, 1)
    return result


def split_lines_into_blocks(
    ids: Sequence[Sequence[int]],
    word_starts: Sequence[Sequence[int]] | None,
    *,
    block_size: int,
    cls_id: int,
    sep_id: int,
) -> dict[str, list[list[int]]]:
    """Line-by-line mode: each document becomes ``[CLS] doc [SEP]``; a document longer than the block is
    split into several examples (never truncated). Examples have varying length (padded by the collator)."""
    body = block_size - 2
    out_ids, out_starts = [], []
    for i, doc in enumerate(ids):
        doc = np.asarray(doc, dtype=np.int64)  # lists or arrays in, Python ints out
        flags = None if word_starts is None else np.asarray(word_starts[i], dtype=np.int64)
        for begin in range(0, len(doc), body):
            out_ids.append([cls_id, *doc[begin : begin + body].tolist(), sep_id])
            if flags is not None:
                out_starts.append([1, *flags[begin : begin + body].tolist(), 1])
    result = {"input_ids": out_ids}
    if word_starts is not None:
        result["word_starts"] = out_starts
    return result


def tokenize_documents(
    texts: Sequence[str],
    tokenizer: PreTrainedTokenizerBase,
    *,
    with_word_starts: bool = False,
    segmenter: str | None = None,
    piece_chars: int | None = None,
    call_chars: int | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
    """Token ids (and word-start flags) of each document, without special tokens, as NumPy arrays.

    A document longer than ``piece_chars`` is tokenized in pieces cut where the tokenizer cuts anyway, and
    pieces are tokenized at most ``call_chars`` characters per call: the tokenizer's per-token objects and
    the Python lists they become (tens of times the text's size) never cover more than one call, whatever a
    document's length (defaults: :data:`~toolkit._tagging.PIECE_CHARS` and :data:`TOKENIZE_CHARS`). The ids
    are those of tokenizing each document whole; a piece's first token starts a word, as it does in the
    whole document at such a cut.
    """
    piece_chars = piece_chars or PIECE_CHARS
    call_chars = call_chars or TOKENIZE_CHARS
    ids: list[list[np.ndarray]] = [[] for _ in texts]
    starts: list[list[np.ndarray]] | None = [[] for _ in texts] if with_word_starts else None
    for group in piece_groups(texts, piece_chars, call_chars):
        pieces = [texts[d][a:b] for d, a, b in group]
        # verbose=False: documents longer than a block are expected here (packed or split, not truncated)
        enc = tokenizer(
            pieces,
            add_special_tokens=False,
            return_offsets_mapping=with_word_starts,
            return_attention_mask=False,
            return_token_type_ids=False,
            verbose=False,
        )
        for k, (d, _, _) in enumerate(group):
            ids[d].append(np.asarray(enc["input_ids"][k], dtype=np.int64))
            if starts is not None:
                segment = segment_word_starts(pieces[k], segmenter) if segmenter else None
                flags = word_start_flags(enc.word_ids(k), enc["offset_mapping"][k], segment)
                starts[d].append(np.asarray(flags, dtype=np.int64))
    empty = np.zeros(0, dtype=np.int64)

    def join(parts: list[np.ndarray]) -> np.ndarray:
        return parts[0] if len(parts) == 1 else np.concatenate(parts) if parts else empty

    return [join(p) for p in ids], None if starts is None else [join(p) for p in starts]


def tokenize_and_pack(
    batch: dict,
    *,
    tokenizer: PreTrainedTokenizerBase,
    block_size: int,
    line_by_line: bool = False,
    with_word_starts: bool = False,
    segmenter: str | None = None,
) -> dict[str, list[list[int]]]:
    """``datasets.map`` function: tokenize ``batch["text"]`` and pack (or split line by line), with memory
    bounded by the batch's blocks whatever a document's length (see :func:`tokenize_documents`)."""
    ids, starts = tokenize_documents(
        batch["text"], tokenizer, with_word_starts=with_word_starts, segmenter=segmenter
    )
    if line_by_line:
        return split_lines_into_blocks(
            ids,
            starts,
            block_size=block_size,
            cls_id=tokenizer.cls_token_id,
            sep_id=tokenizer.sep_token_id,
        )
    return pack_into_blocks(
        ids,
        starts,
        block_size=block_size,
        cls_id=tokenizer.cls_token_id,
        sep_id=tokenizer.sep_token_id,
        pad_id=tokenizer.pad_token_id,
    )


def prepare_mlm_dataset(
    ds: datasets.Dataset | datasets.IterableDataset,
    tokenizer: PreTrainedTokenizerBase,
    *,
    block_size: int,
    line_by_line: bool = False,
    whole_word_mask: bool = False,
    segmenter: str | None = None,
    num_proc: int | None = None,
    map_batch_size: int = 1000,
) -> datasets.Dataset | datasets.IterableDataset:
    """Tokenize a ``text`` dataset and pack it into blocks (cached by the datasets fingerprint).

    Args:
        ds: dataset with a ``text`` column (in-memory or streaming).
        tokenizer: a fast tokenizer with ``[CLS]``/``[SEP]``/``[PAD]``.
        block_size: tokens per block.
        line_by_line: one example per document instead of packing.
        whole_word_mask: also produce ``word_starts`` for whole-word masking.
        segmenter: Chinese word segmenter for whole-word masking (``"jieba"``) or ``None``.
        num_proc: worker processes for ``.map`` (in-memory datasets only).
        map_batch_size: documents per ``.map`` batch; one padded block per batch at most.

    Returns:
        A dataset with ``input_ids`` (and ``word_starts``).

    Raises:
        ToolkitInputError: ``block_size`` above the tokenizer's maximum length.
    """
    max_len = getattr(tokenizer, "model_max_length", None)
    if max_len is not None and max_len < 1_000_000 and block_size > max_len:
        raise ToolkitInputError(
            f"--block_size {block_size} exceeds the tokenizer's model_max_length {max_len}"
        )
    if segmenter and not whole_word_mask:
        raise ToolkitInputError("--chinese_segmenter only applies with --whole_word_mask")
    if segmenter:
        segment_word_starts("预热", segmenter)  # fail now, not inside a worker, if jieba is missing
    fn_kwargs = {
        "tokenizer": tokenizer,
        "block_size": block_size,
        "line_by_line": line_by_line,
        "with_word_starts": whole_word_mask,
        "segmenter": segmenter,
    }
    columns = ds.column_names or ["text"]
    if isinstance(ds, datasets.IterableDataset):
        return ds.map(
            tokenize_and_pack,
            batched=True,
            batch_size=map_batch_size,
            fn_kwargs=fn_kwargs,
            remove_columns=columns,
        )
    return ds.map(
        tokenize_and_pack,
        batched=True,
        batch_size=map_batch_size,
        fn_kwargs=fn_kwargs,
        remove_columns=columns,
        num_proc=num_proc if num_proc and num_proc > 1 else None,
        desc=f"Tokenizing and {'splitting lines' if line_by_line else 'packing'} into blocks of {block_size}",
    )
