"""Vocabulary growth for continued pretraining: add what a corpus needs to a WordPiece vocabulary, and the
rows for it to a masked-LM model.

New entries go into the WordPiece vocabulary itself (appended, so every old token keeps its id), not in as
``tokenizer.add_tokens`` "added tokens". Added tokens are cut out of the text *before* pre-tokenization and
WordPiece: an added ``play`` splits ``display`` into ``dis`` + ``play``, an added ``é`` splits ``café`` into
``caf`` + ``é`` (the ``caf`` then read as a word start), and an added word never takes part in the
longest-match search with the other pieces. A vocabulary entry is matched by WordPiece like every other
piece, after the tokenizer's own normalisation, and is written to ``tokenizer.json`` and ``vocab.txt`` as any
BERT tool expects. WordPiece needs two forms of a character: ``é`` at the start of a word and ``##é`` inside
one; a CJK character (or a punctuation mark) is always a word of its own to BERT's pre-tokenizer, so it needs
only the first. :func:`find_new_tokens` finds the forms a corpus needs by where the characters occur.

A new row starts from the mean of the rows of the pieces the old tokenizer made of the new token (the input
embedding, the MLM decoder row and its bias alike), so a new word starts where its pieces pointed. A token
the old tokenizer could only map to ``[UNK]`` starts from the mean of all old rows plus Gaussian noise at the
old rows' own spread per dimension (``fallback_noise``; its bias: the mean bias): identical rows would leave
such tokens indistinguishable to the model until training has pulled them apart, which for an English
checkpoint grown by thousands of Chinese characters takes far longer than a continued-pretraining run.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence, Sized
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path

import torch
from tokenizers import models
from tqdm.auto import tqdm
from transformers import AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from ._errors import ToolkitInputError
from ._text import tokenizer_safe
from ._tokenizer import tokenizer_report

logger = logging.getLogger(__name__)

# A word "splits badly" when the old vocabulary needs at least this many pieces for it.
MIN_WORD_PIECES = 3
# How many of the added tokens a report lists.
REPORT_TOKENS = 50


@dataclass
class VocabularyGrowth:
    """What :func:`extend_vocabulary` (or :func:`extend_embeddings`) added.

    Attributes:
        old_size: rows (ids) before.
        new_size: rows (ids) after.
        added: the new vocabulary entries, in id order (ids ``old_size``, ``old_size + 1``, ...).
        from_pieces: new rows started from the mean of the rows of their old pieces.
        fallback: new rows started from the mean of all old rows (the old tokenizer made only ``[UNK]``), plus
            noise of ``fallback_noise`` times the old rows' spread per dimension.
        fallback_noise: that noise scale (0: every fallback row is the mean row).
    """

    old_size: int
    new_size: int
    added: list[str] = field(default_factory=list)
    from_pieces: int = 0
    fallback: int = 0
    fallback_noise: float = 0.0

    def as_dict(self, *, top: int = REPORT_TOKENS) -> dict:
        """The report for ``metrics.json``: counts, and the first ``top`` added entries."""
        out = asdict(self)
        out["n_added"] = len(self.added)
        out["added"] = self.added[:top]
        return out

    def summary(self) -> str:
        shown = " ".join(self.added[:20]) + (" ..." if len(self.added) > 20 else "")
        return (
            f"{len(self.added)} entries added ({self.old_size:,} -> {self.new_size:,}): {shown or 'none'} | "
            f"rows from their old pieces {self.from_pieces}, from the mean row {self.fallback}"
            + (
                f" (+ noise x{self.fallback_noise:g} of the rows' spread)"
                if self.fallback and self.fallback_noise
                else ""
            )
        )


def _wordpiece(tokenizer: PreTrainedTokenizerBase) -> tuple[dict, models.WordPiece]:
    """The ``tokenizer.json`` content of a fast WordPiece tokenizer, and its WordPiece model."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ToolkitInputError(
            f"vocabulary growth needs a fast (tokenizers) tokenizer; {type(tokenizer).__name__} is not one"
        )
    data = json.loads(backend.to_str())
    if data["model"]["type"] != "WordPiece":
        raise ToolkitInputError(
            f"vocabulary growth supports WordPiece (BERT) tokenizers; this one is {data['model']['type']}"
        )
    return data, backend.model


def _words(tokenizer: PreTrainedTokenizerBase, text: str) -> list[str]:
    """``text`` as the tokenizer's WordPiece model sees it: normalised, then cut into pre-tokens."""
    backend = tokenizer.backend_tokenizer
    text = tokenizer_safe(text)
    if backend.normalizer is not None:
        text = backend.normalizer.normalize_str(text)
    if backend.pre_tokenizer is None:
        return text.split()
    return [word for word, _ in backend.pre_tokenizer.pre_tokenize_str(text)]


def find_new_tokens(
    texts: Iterable[str],
    tokenizer: PreTrainedTokenizerBase,
    *,
    min_count: int = 5,
    words: bool = False,
    min_pieces: int = MIN_WORD_PIECES,
    max_new: int | None = None,
    max_texts: int | None = None,
    show_progress: bool = True,
) -> list[str]:
    """The WordPiece entries a corpus needs that ``tokenizer`` lacks, most frequent first.

    The texts are read one at a time (a generator or a streamed dataset's texts will do), normalised and cut
    into words as the tokenizer itself does (lower-casing and accent stripping of an uncased BERT, one word
    per CJK character and per punctuation mark), and counted by distinct word.

    * Characters: a word the tokenizer maps to ``[UNK]`` lacks an entry for one of its characters in the
      form WordPiece needs there: ``c`` at the start of a word, ``##c`` inside one. Each missing form is
      counted (once per occurrence of the word) and returned when it occurs at least ``min_count`` times. A
      CJK character is a word of its own, so only ``c`` is ever asked for.
    * Words (``words=True``): a word "splits badly" when the tokenizer needs ``min_pieces`` or more
      WordPiece pieces for it (e.g. ``token ##iza ##tion``); such words occurring at least ``min_count``
      times are returned after the characters. Words the tokenizer maps to ``[UNK]`` are not candidates:
      their characters are.

    Args:
        texts: the corpus' documents.
        tokenizer: a fast BERT WordPiece tokenizer.
        min_count: fewest occurrences for an entry to be returned (at least 1).
        words: also return frequent words that split badly.
        min_pieces: with ``words``, the pieces from which a word splits badly.
        max_new: return at most this many entries (characters first, then words).
        max_texts: read at most this many documents (a sample of a large corpus).
        show_progress: a progress bar over the documents.

    Returns:
        New vocabulary entries in the tokenizer's normalised form (``"龍"``, ``"##é"``, ``"tokenization"``).

    Raises:
        ToolkitInputError: ``min_count`` below 1, or a tokenizer that is not a fast WordPiece one.

    Example:
        >>> find_new_tokens(["龍 café"] * 5, tokenizer)  # an English uncased BERT, accents kept  # doctest: +SKIP
        ['龍', '##é']
    """
    if min_count < 1:
        raise ToolkitInputError(f"min_count must be at least 1, got {min_count}")
    _, model = _wordpiece(tokenizer)
    vocab = tokenizer.backend_tokenizer.get_vocab(with_added_tokens=False)
    prefix, unk = model.continuing_subword_prefix, model.unk_token
    total = len(texts) if isinstance(texts, Sized) else None
    if max_texts is not None:
        texts, total = islice(texts, max_texts), min(total or max_texts, max_texts)
    word_counts: Counter[str] = Counter()
    n_texts = 0
    for text in tqdm(
        texts, total=total, desc="Scanning for new vocabulary", unit="text", disable=not show_progress
    ):
        word_counts.update(_words(tokenizer, text))
        n_texts += 1
    chars: Counter[str] = Counter()
    split_words: Counter[str] = Counter()
    for word, n in word_counts.items():
        pieces = [t.value for t in model.tokenize(word)]
        if (
            pieces == [unk] and len(word) <= model.max_input_chars_per_word
        ):  # (longer: [UNK] whatever it holds)
            for i, ch in enumerate(word):
                form = ch if i == 0 else prefix + ch
                if form not in vocab:
                    chars[form] += n
        elif words and len(pieces) >= min_pieces and n >= min_count:
            split_words[word] = n
    found = [t for t, n in chars.most_common() if n >= min_count]
    found += [w for w, _ in split_words.most_common()]
    logger.info(
        "Vocabulary scan: %d documents, %d distinct words; %d missing character entries%s (min count %d)",
        n_texts,
        len(word_counts),
        sum(1 for n in chars.values() if n >= min_count),
        f", {len(split_words)} words of {min_pieces}+ pieces" if words else "",
        min_count,
    )
    return found[:max_new] if max_new is not None else found


def extend_tokenizer(
    tokenizer: PreTrainedTokenizerBase, new_tokens: Sequence[str]
) -> PreTrainedTokenizerBase:
    """A copy of ``tokenizer`` whose WordPiece vocabulary also holds ``new_tokens``, with ids appended.

    Every old entry keeps its id; the new ones get ``len(tokenizer)``, ``len(tokenizer) + 1``, ... in the
    order given (entries already in the vocabulary are skipped). The copy is made by saving and loading, so
    it is what ``AutoTokenizer.from_pretrained`` gives for its saved directory.

    Args:
        tokenizer: a fast BERT WordPiece tokenizer.
        new_tokens: entries in the tokenizer's normalised form (see :func:`find_new_tokens`).

    Returns:
        The extended tokenizer.

    Raises:
        ToolkitInputError: not a fast WordPiece tokenizer, or one whose ids are not ``0..len - 1``.
    """
    data, _ = _wordpiece(tokenizer)
    vocab: dict[str, int] = data["model"]["vocab"]
    start = len(tokenizer)
    ids = [*vocab.values(), *(t["id"] for t in data.get("added_tokens", []))]
    if ids and max(ids) >= start:
        raise ToolkitInputError(f"the tokenizer uses ids up to {max(ids)} but has {start} entries")
    fresh = [t for t in dict.fromkeys(new_tokens) if t not in vocab]
    for i, token in enumerate(fresh):
        vocab[token] = start + i
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save_pretrained(tmp)
        Path(tmp, "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        vocab_txt = Path(tmp, "vocab.txt")
        if vocab_txt.is_file():  # kept in step for tools that read it (slow tokenizers, vector extraction)
            with vocab_txt.open("a", encoding="utf-8") as fh:
                fh.writelines(f"{t}\n" for t in fresh)
        extended = AutoTokenizer.from_pretrained(tmp)
    extended.name_or_path = tokenizer.name_or_path
    if len(extended) != start + len(fresh):
        raise ToolkitInputError(
            f"the extended tokenizer has {len(extended)} entries, expected {start + len(fresh)}"
        )
    return extended


def _old_pieces(
    token: str, old: models.WordPiece, old_vocab: dict[str, int], *, prefix: str, unk: str, skip: set[int]
) -> list[int]:
    """Ids of the pieces the old vocabulary makes of ``token`` ([UNK] and special pieces left out)."""
    surface = token[len(prefix) :] if token.startswith(prefix) else token
    ids = [t.id for t in old.tokenize(surface) if t.value != unk and t.id not in skip]
    if not ids and len(surface) == 1:  # a character the old vocabulary had in its other form only
        other = surface if token.startswith(prefix) else prefix + surface
        ids = [old_vocab[other]] if other in old_vocab else []
    return ids


def _plan(tokenizer: PreTrainedTokenizerBase, old_size: int) -> tuple[VocabularyGrowth, list[list[int]]]:
    """The entries of ``tokenizer`` from id ``old_size`` on, and the ids of the pieces the old vocabulary (the
    entries below ``old_size``) makes of each; an empty list where it makes only ``[UNK]``."""
    data, model_wp = _wordpiece(tokenizer)
    new_size = len(tokenizer)
    if new_size < old_size:
        raise ToolkitInputError(
            f"the tokenizer has {new_size} entries, fewer than the model's {old_size} rows"
        )
    vocab: dict[str, int] = data["model"]["vocab"]
    new_entries = sorted((i, t) for t, i in vocab.items() if i >= old_size)
    if [i for i, _ in new_entries] != list(range(old_size, new_size)):
        raise ToolkitInputError(
            f"the tokenizer's ids {old_size}..{new_size - 1} are not all vocabulary entries"
        )
    report = VocabularyGrowth(old_size=old_size, new_size=new_size, added=[t for _, t in new_entries])
    prefix, unk = model_wp.continuing_subword_prefix, model_wp.unk_token
    old_vocab = {t: i for t, i in vocab.items() if i < old_size}
    old = models.WordPiece(
        vocab=old_vocab,
        unk_token=unk,
        continuing_subword_prefix=prefix,
        max_input_chars_per_word=model_wp.max_input_chars_per_word,
    )
    skip = set(tokenizer.all_special_ids)
    pieces = [_old_pieces(t, old, old_vocab, prefix=prefix, unk=unk, skip=skip) for t in report.added]
    report.from_pieces = sum(1 for p in pieces if p)
    report.fallback = len(pieces) - report.from_pieces
    return report, pieces


def describe_growth(
    tokenizer: PreTrainedTokenizerBase, old_size: int, *, fallback_noise: float = 1.0
) -> VocabularyGrowth:
    """What growing a vocabulary of ``old_size`` entries to ``tokenizer`` adds, and where the new rows of
    :func:`extend_embeddings` start from (without touching a model) with that ``fallback_noise``.

    Raises:
        ToolkitInputError: ``tokenizer`` is smaller than ``old_size``, or its ids beyond it have gaps.
    """
    report = _plan(tokenizer, old_size)[0]
    report.fallback_noise = float(fallback_noise)
    return report


def _start_rows(
    old_rows: torch.Tensor,
    pieces: list[list[int]],
    noise: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """New rows (or bias entries), one per entry of ``pieces``: the mean of those old rows, else the mean of
    all plus ``noise`` times their standard deviation (per dimension) times a standard normal draw."""
    rows = old_rows.float()
    mean = rows.mean(dim=0)
    new = torch.stack([rows[p].mean(dim=0) if p else mean for p in pieces])
    fallback = torch.tensor([not p for p in pieces], device=rows.device)
    if noise and bool(fallback.any()):
        spread = rows.std(dim=0) if rows.shape[0] > 1 else torch.zeros_like(mean)
        draw = torch.randn(
            (int(fallback.sum()), *mean.shape), generator=generator
        )  # on the CPU: seeded there
        new[fallback] += noise * spread * draw.to(rows.device)
    return new.to(old_rows.dtype)


def extend_embeddings(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, *, fallback_noise: float = 1.0, seed: int = 0
) -> VocabularyGrowth:
    """Grow ``model``'s input embeddings and MLM decoder (weight and bias) to ``len(tokenizer)`` rows.

    The model's current rows are the old vocabulary (ids below its row count); each tokenizer entry beyond
    them gets a row starting from the mean of the rows of the pieces the old vocabulary makes of it (its
    bias: the mean of their biases). An entry whose old pieces are only ``[UNK]`` starts from the mean of all
    old rows plus Gaussian noise of ``fallback_noise`` times their standard deviation in each dimension (its
    bias: the mean bias), so that such entries start apart. Old rows are not touched; a decoder tied to the
    input embeddings stays tied.

    Args:
        model: a masked-LM (or encoder) model whose vocabulary ``tokenizer`` extends.
        tokenizer: the extended tokenizer (see :func:`extend_tokenizer`).
        fallback_noise: the noise scale of rows started from the mean row (0: all of them equal to it).
        seed: seeds the noise (the same seed, the same rows; ``--extend_vocab`` keeps 0 whatever ``--seed``).

    Returns:
        A :class:`VocabularyGrowth` report (nothing added when the sizes already agree).

    Raises:
        ToolkitInputError: the tokenizer is smaller than the model's vocabulary, its new ids have gaps, or
            ``fallback_noise`` is negative.
    """
    if not fallback_noise >= 0:
        raise ToolkitInputError(f"the fallback rows' noise scale must be 0 or more, got {fallback_noise}")
    embeddings = model.get_input_embeddings()
    report, pieces = _plan(tokenizer, embeddings.num_embeddings)
    report.fallback_noise = float(fallback_noise)
    old_n, new_n = report.old_size, report.new_size
    if new_n == old_n:
        return report
    output = model.get_output_embeddings()
    tied = output is not None and output.weight is embeddings.weight
    old_input = embeddings.weight.detach().clone()
    old_output = None if output is None or tied else output.weight.detach().clone()
    old_bias = None if output is None or output.bias is None else output.bias.detach().clone()
    model.resize_token_embeddings(new_n, mean_resizing=False)  # copies the old rows; new ones set below
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.get_input_embeddings().weight[old_n:] = _start_rows(
            old_input, pieces, fallback_noise, generator
        )
        output = model.get_output_embeddings()
        if old_output is not None:
            output.weight[old_n:] = _start_rows(old_output, pieces, fallback_noise, generator)
        if old_bias is not None:
            output.bias[old_n:] = _start_rows(old_bias, pieces)
    if tied and output.weight is not model.get_input_embeddings().weight:  # would be a transformers change
        raise RuntimeError("resizing untied the MLM decoder from the word embeddings")
    logger.info("New embedding and MLM decoder rows: %s", report.summary())
    return report


def extend_vocabulary(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    new_tokens: Sequence[str],
    *,
    fallback_noise: float = 1.0,
    seed: int = 0,
) -> tuple[PreTrainedTokenizerBase, VocabularyGrowth]:
    """Add ``new_tokens`` to ``tokenizer``'s WordPiece vocabulary and rows for them to ``model``.

    See :func:`extend_tokenizer` (ids appended, old ids kept) and :func:`extend_embeddings` (new rows from
    the mean of their old pieces' rows, else the mean row plus noise at the rows' spread; old rows
    unchanged). The model is changed in place; ``tokenizer`` is not.

    Args:
        model: the masked-LM model of ``tokenizer`` (one row per entry).
        tokenizer: its fast BERT WordPiece tokenizer.
        new_tokens: entries to add, e.g. from :func:`find_new_tokens`.
        fallback_noise: see :func:`extend_embeddings`.
        seed: see :func:`extend_embeddings`.

    Returns:
        ``(extended_tokenizer, report)``.

    Raises:
        ToolkitInputError: the model's rows and the tokenizer's entries differ in number, or the tokenizer
            is not a fast WordPiece one.

    Example:
        >>> new = find_new_tokens(texts, tokenizer, min_count=5)  # doctest: +SKIP
        >>> tokenizer, report = extend_vocabulary(model, tokenizer, new)  # doctest: +SKIP
        >>> tokenizer.save_pretrained(out); model.save_pretrained(out)  # doctest: +SKIP
    """
    if not fallback_noise >= 0:
        raise ToolkitInputError(f"the fallback rows' noise scale must be 0 or more, got {fallback_noise}")
    rows = model.get_input_embeddings().num_embeddings
    if rows != len(tokenizer):
        raise ToolkitInputError(
            f"the model has {rows} embedding rows for a tokenizer of {len(tokenizer)} entries: new entries are "
            "appended after the last id, so vocabulary growth needs the two to agree"
        )
    extended = extend_tokenizer(tokenizer, new_tokens)
    return extended, extend_embeddings(model, extended, fallback_noise=fallback_noise, seed=seed)


def coverage_report(
    tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], *, max_chars: int = 5_000_000
) -> dict:
    """How well ``tokenizer`` covers ``texts``: ``[UNK]`` rate and characters per token (and the counts).

    A thin view of :func:`toolkit.tokenizer_report` for before/after comparisons.

    Args:
        tokenizer: a fast tokenizer.
        texts: sample documents (read until ``max_chars`` characters).
        max_chars: cap on the sample size.

    Returns:
        ``{"vocab_size", "n_tokens", "unk_rate", "chars_per_token", "char_coverage", "n_distinct_uncovered"}``;
        characters are non-space ones, tokens exclude special tokens.
    """
    return coverage_of(tokenizer_report(tokenizer, texts, max_chars=max_chars).as_dict())


def coverage_of(report: dict) -> dict:
    """The coverage figures (see :func:`coverage_report`) of a ``TokenizerReport.as_dict()``."""
    n_tokens = report["n_tokens"]
    return {
        "vocab_size": report["vocab_size"],
        "n_tokens": n_tokens,
        "unk_rate": report["unk_rate"],
        "chars_per_token": report["n_chars"] / n_tokens if n_tokens else 0.0,
        "char_coverage": report["char_coverage"],
        "n_distinct_uncovered": report["n_distinct_uncovered"],
    }


def same_old_vocabulary(old: PreTrainedTokenizerBase, grown: PreTrainedTokenizerBase) -> bool:
    """Whether ``grown`` holds every entry of ``old`` under the same id (it extends ``old``)."""
    grown_vocab = grown.get_vocab()
    return len(grown) >= len(old) and all(grown_vocab.get(t) == i for t, i in old.get_vocab().items())
