"""Word tagging on sub-word models, the parts training and inference share: words tokenized one by one
(each keeps at least one token), label alignment, overlapping windows over long sentences with an owner for
every token, merging window scores back into words, the audit that proves no label was lost, and BIO
decoding (the most probable valid sequence) and entity extraction.

Sentences longer than the model's window are split into overlapping windows; every token is *owned* by
the window in which it sits farthest from an edge, is labelled there for training, and is predicted from
there. Nothing is truncated.

Memory stays bounded by the window on arbitrarily long inputs: :func:`iter_sentence_windows` tokenizes a
sentence's words in chunks and yields each window as soon as every window overlapping it is known (owners
need the neighbours), keeping only a few windows' tokens; :func:`text_pieces` cuts a long text where a
tokenizer or segmenter cuts anyway, for the readers that must tokenize raw text piece by piece.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from transformers import PreTrainedTokenizerBase

from ._errors import ToolkitInputError
from ._masking import IGNORE_INDEX
from ._text import fold_width, is_cjk_char, tokenizer_safe
from ._tokenizer import UNK_WARN_SHARE

logger = logging.getLogger(__name__)


# Warn when more than this share of a split's words hold an [UNK] piece: the vocabulary does not cover the text.
UNKNOWN_WORD_WARN_SHARE = UNK_WARN_SHARE  # of words, for NER


@dataclass
class AlignmentAudit:
    """Accounting of word → sub-token alignment over a dataset.

    Attributes:
        n_sentences, n_words: what was encoded.
        n_words_without_subtokens: words the tokenizer mapped to nothing, encoded as ``[UNK]``.
        unk_examples: a few of those words (repr'd, so invisible characters show).
        n_words_unk: words containing an ``[UNK]`` piece (the vocabulary does not cover them).
        unk_word_examples: a few of those words.
        n_windowed_sentences: sentences longer than one window, split into several.
        n_windows: examples produced.
        n_labels_lost: labelled words whose label reached no window (must be 0).
    """

    n_sentences: int = 0
    n_words: int = 0
    n_words_without_subtokens: int = 0
    unk_examples: list[str] = field(default_factory=list)
    n_words_unk: int = 0
    unk_word_examples: list[str] = field(default_factory=list)
    n_windowed_sentences: int = 0
    n_windows: int = 0
    n_labels_lost: int = 0

    def as_dict(self) -> dict:
        return asdict(self)

    def merge(self, other: AlignmentAudit) -> None:
        for k, v in asdict(other).items():
            if isinstance(v, list):
                mine = getattr(self, k)
                mine.extend(v[: max(0, 10 - len(mine))])
            else:
                setattr(self, k, getattr(self, k) + v)

    @property
    def unknown_share(self) -> float:
        """Share of the words that hold an ``[UNK]`` piece."""
        return self.n_words_unk / self.n_words if self.n_words else 0.0

    def warn_if_unknown(self, name: str, *, threshold: float = UNKNOWN_WORD_WARN_SHARE) -> bool:
        """Log a warning when more than ``threshold`` of the words hold an ``[UNK]`` piece.

        Such words all look alike to the model, so their labels cannot be learned from the words
        themselves. The remedy is a vocabulary that covers the text.

        Args:
            name: what was audited, for the message (e.g. ``"train"``).
            threshold: the share above which to warn.

        Returns:
            Whether it warned.

        Example:
            >>> audit = AlignmentAudit(n_words=100, n_words_unk=30)
            >>> audit.warn_if_unknown("train")
            True
        """
        if self.unknown_share <= threshold:
            return False
        logger.warning(
            "NER %s: %d of %d words (%.1f%%) contain [UNK] pieces (e.g. %s): the tokenizer's vocabulary does "
            "not cover them, so the model sees them all alike. Use a vocabulary that covers this text: "
            "pretrain on it (recipes/pretrain.py, e.g. with --conll_files) or use another checkpoint",
            name,
            self.n_words_unk,
            self.n_words,
            100 * self.unknown_share,
            ", ".join(self.unk_word_examples[:5]) or "none kept",
        )
        return True


def word_pieces(
    words: Sequence[str], tokenizer: PreTrainedTokenizerBase, audit: AlignmentAudit | None = None
) -> list[list[int]]:
    """Token ids of each word; a word with no token gets ``[UNK]`` (counted in ``audit``)."""
    ids = (
        tokenizer([tokenizer_safe(fold_width(w)) for w in words], add_special_tokens=False, verbose=False)[
            "input_ids"
        ]
        if words
        else []
    )
    out = []
    for word, pieces in zip(words, ids, strict=True):
        if not pieces:
            pieces = [tokenizer.unk_token_id]
            if audit is not None:
                audit.n_words_without_subtokens += 1
                if len(audit.unk_examples) < 10:
                    audit.unk_examples.append(repr(word))
        elif audit is not None and tokenizer.unk_token_id in pieces:
            audit.n_words_unk += 1
            if len(audit.unk_word_examples) < 10 and repr(word) not in audit.unk_word_examples:
                audit.unk_word_examples.append(repr(word))
        out.append(list(pieces))
    return out


def make_windows(n_tokens: int, *, max_tokens: int, stride: int) -> list[tuple[int, int]]:
    """Cover ``n_tokens`` with windows of at most ``max_tokens``, consecutive windows sharing ``stride`` tokens.

    Example:
        >>> make_windows(10, max_tokens=4, stride=1)
        [(0, 4), (3, 7), (6, 10)]
    """
    if max_tokens < 1 or not 0 <= stride < max_tokens:
        raise ToolkitInputError(f"need 0 <= stride < window length; got stride {stride}, window {max_tokens}")
    if n_tokens <= max_tokens:
        return [(0, n_tokens)]
    step = max_tokens - stride
    windows = []
    start = 0
    while True:
        end = min(start + max_tokens, n_tokens)
        windows.append((start, end))
        if end == n_tokens:
            return windows
        start += step


def token_owners(n_tokens: int, windows: Sequence[tuple[int, int]]) -> list[int]:
    """For each token, the window where it sits farthest from an edge (ties: the earlier window).

    One pass over each window's own tokens (time proportional to the tokens times the overlap), not over
    every window for every token: a million-token sentence has thousands of windows.
    """
    owners = [-1] * n_tokens
    margins = [-1] * n_tokens
    for w, (s, e) in enumerate(windows):
        for t in range(max(s, 0), min(e, n_tokens)):
            margin = min(t - s, e - 1 - t)
            if margin > margins[t]:  # strict: on a tie the earlier window keeps the token
                owners[t], margins[t] = w, margin
    return owners


# Words tokenized per tokenizer call when windowing a sentence: bounds the memory of one call on a sentence
# of any length (every word is tokenized alone, so the chunking changes no piece).
WORD_CHUNK = 1024


def encode_sentence(
    words: Sequence[str],
    tags: Sequence[str] | None,
    tokenizer: PreTrainedTokenizerBase,
    *,
    label2id: dict[str, int] | None,
    max_length: int,
    stride: int = 16,
    label_all_tokens: bool = False,
    audit: AlignmentAudit | None = None,
) -> list[dict]:
    """Encode one sentence into one or more windows with aligned labels.

    Args:
        words: the sentence's words (characters for Chinese).
        tags: BIO tags per word, or ``None`` at prediction time.
        label2id: tag → id (needed with ``tags``).
        max_length: model window including ``[CLS]`` and ``[SEP]``.
        stride: tokens shared by consecutive windows.
        label_all_tokens: label every sub-token (continuations of ``B-X`` get ``I-X``) instead of only
            the first.
        audit: accumulates the alignment audit.

    Returns:
        Windows as dicts: ``input_ids``, ``attention_mask``, ``labels`` (if tags), ``word_index`` (the word
        whose first sub-token sits at each position and is owned by this window, else -1), ``window``.
        The list of what :func:`iter_sentence_windows` yields; use that for sentences of any length.
    """
    return list(
        iter_sentence_windows(
            words,
            tags,
            tokenizer,
            label2id=label2id,
            max_length=max_length,
            stride=stride,
            label_all_tokens=label_all_tokens,
            audit=audit,
        )
    )


class _TokenBuffer:
    """The tokens of a sentence between the first window not yet yielded and the last token read, with each
    token's best window so far (``owner``) and its distance from that window's edge (``margin``)."""

    def __init__(self) -> None:
        self.base = 0  # sentence position of the first buffered token
        self.ids: list[int] = []
        self.word_of: list[int] = []
        self.first: list[bool] = []
        self.owner: list[int] = []
        self.margin: list[int] = []

    @property
    def end(self) -> int:
        return self.base + len(self.ids)

    def add_word(self, w: int, pieces: list[int]) -> None:
        self.ids.extend(pieces)
        self.word_of.extend([w] * len(pieces))
        self.first.extend([True] + [False] * (len(pieces) - 1))
        self.owner.extend([-1] * len(pieces))
        self.margin.extend([-1] * len(pieces))

    def claim(self, k: int, s: int, e: int) -> None:
        """Window ``k`` = tokens ``[s, e)`` takes the tokens where it sits farther from an edge than the
        windows before it (the rule of :func:`token_owners`, applied window by window in order)."""
        for t in range(s, e):
            margin = min(t - s, e - 1 - t)
            i = t - self.base
            if margin > self.margin[i]:
                self.owner[i], self.margin[i] = k, margin

    def drop_before(self, position: int) -> None:
        cut = position - self.base
        if cut > 0:
            for column in (self.ids, self.word_of, self.first, self.owner, self.margin):
                del column[:cut]
            self.base = position


def iter_sentence_windows(
    words: Sequence[str],
    tags: Sequence[str] | None,
    tokenizer: PreTrainedTokenizerBase,
    *,
    label2id: dict[str, int] | None,
    max_length: int,
    stride: int = 16,
    label_all_tokens: bool = False,
    audit: AlignmentAudit | None = None,
    chunk_words: int = WORD_CHUNK,
) -> Iterator[dict]:
    """The windows of :func:`encode_sentence`, one at a time, with memory bounded by the window.

    The words are tokenized ``chunk_words`` at a time; a window is yielded once every window that overlaps
    it is known (a token's owner depends on them), and the tokens no later window holds are dropped. A
    sentence of any length thus keeps about two windows' tokens and one chunk of words in memory, and
    ``words`` may be a lazy sequence (only slices of ``chunk_words`` are taken). The windows, owners and
    labels are those of :func:`make_windows` and :func:`token_owners` over the whole sentence.

    Raises:
        ToolkitInputError: ``stride`` not below the window's token count.
    """
    audit = audit if audit is not None else AlignmentAudit()
    body = max_length - 2
    if body < 1 or not 0 <= stride < body:
        raise ToolkitInputError(f"need 0 <= stride < window length; got stride {stride}, window {body}")
    if chunk_words < 1:
        raise ToolkitInputError(f"chunk_words must be at least 1, got {chunk_words}")
    step = body - stride
    n_words = len(words)
    audit.n_sentences += 1
    audit.n_words += n_words
    buf = _TokenBuffer()
    n_claimed = 0  # windows whose tokens were claimed (their bounds are known)
    n_yielded = 0
    n_labelled = 0
    n_total: int | None = None  # tokens in the sentence, once all words are read

    def window_end(k: int) -> int:
        return k * step + body if n_total is None else min(k * step + body, n_total)

    def exists(k: int) -> bool:  # a window follows one that has not reached the end
        return k == 0 or n_total is None or (k - 1) * step + body < n_total

    def known(k: int) -> bool:  # its end no longer depends on tokens not read yet
        return n_total is not None or buf.end >= k * step + body

    def make(k: int) -> dict:
        nonlocal n_labelled
        s, e = k * step, window_end(k)
        lo, hi = s - buf.base, e - buf.base
        ids, word_of, first, owner = buf.ids[lo:hi], buf.word_of[lo:hi], buf.first[lo:hi], buf.owner[lo:hi]
        mine = [f and o == k for f, o in zip(first, owner, strict=True)]
        item = {
            "input_ids": [tokenizer.cls_token_id, *ids, tokenizer.sep_token_id],
            "attention_mask": [1] * (e - s + 2),
            "word_index": [-1, *(w if m else -1 for w, m in zip(word_of, mine, strict=True)), -1],
            "window": k,
        }
        if tags is not None:
            labels = [IGNORE_INDEX]
            for w, f, o, m in zip(word_of, first, owner, mine, strict=True):
                tag = tags[w]
                if o != k:
                    labels.append(IGNORE_INDEX)
                elif m:
                    labels.append(label2id[tag])
                    n_labelled += 1
                elif label_all_tokens and not f:
                    labels.append(
                        label2id.get("I-" + tag[2:], label2id[tag]) if tag.startswith("B-") else label2id[tag]
                    )
                else:
                    labels.append(IGNORE_INDEX)
            item["labels"] = labels + [IGNORE_INDEX]
        return item

    def ready() -> Iterator[dict]:
        nonlocal n_claimed, n_yielded
        while exists(n_claimed) and known(n_claimed):
            buf.claim(n_claimed, n_claimed * step, window_end(n_claimed))
            n_claimed += 1
        # A window is final when no window still unclaimed can overlap it.
        while n_yielded < n_claimed and (
            n_claimed * step >= window_end(n_yielded) or (n_total is not None and not exists(n_claimed))
        ):
            yield make(n_yielded)
            n_yielded += 1
            buf.drop_before(n_yielded * step)

    for c in range(0, n_words, chunk_words):
        for w, pieces in enumerate(word_pieces(words[c : c + chunk_words], tokenizer, audit), start=c):
            buf.add_word(w, pieces)
        yield from ready()
    n_total = buf.end
    yield from ready()
    audit.n_windows += n_yielded
    if n_yielded > 1:
        audit.n_windowed_sentences += 1
    if tags is not None:
        audit.n_labels_lost += n_words - n_labelled


def merge_window_scores(windows: Sequence[dict], logits: Sequence[np.ndarray], n_words: int) -> np.ndarray:
    """Word-level label scores ``(n_words, n_labels)`` of one sentence from its windows' logits (each word
    scored by the window that owns it)."""
    out = np.zeros((n_words, np.shape(logits[0])[-1] if len(logits) else 0), dtype=np.float32)
    seen = np.zeros(n_words, dtype=bool)
    for window, scores in zip(windows, logits, strict=True):
        for pos, w in enumerate(window["word_index"]):
            if w >= 0:
                if w >= n_words:
                    raise RuntimeError(f"word {w} of a {n_words}-word sentence: windowing bug")
                out[w], seen[w] = scores[pos], True
    missing = np.flatnonzero(~seen).tolist()
    if missing:
        raise RuntimeError(f"words {missing[:5]} received no prediction: windowing bug")
    return out


def bio_transitions(labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Which tags may follow which in valid BIO, and which may start a sentence.

    ``I-X`` may only follow ``B-X`` or ``I-X`` and may not start a sentence; every other tag may follow any
    tag. Types without a ``B-`` label (or label sets in another scheme) are left unconstrained.

    Returns:
        ``(allowed, may_start)``: ``allowed[i, j]`` is whether ``labels[j]`` may follow ``labels[i]``.
    """
    n = len(labels)
    allowed = np.ones((n, n), dtype=bool)
    may_start = np.ones(n, dtype=bool)
    begins = {lab[2:] for lab in labels if lab.startswith("B-")}
    for j, lab in enumerate(labels):
        if lab.startswith("I-") and lab[2:] in begins:
            may_start[j] = False
            allowed[:, j] = [prev in (f"B-{lab[2:]}", lab) for prev in labels]
    return allowed, may_start


_DECODE_BLOCK = 1 << 14  # words whose log-softmax is held at once while decoding


def decode_tags(
    scores: np.ndarray, labels: Sequence[str], *, constrained: bool = True, crf: tuple | None = None
) -> list[int]:
    """Label ids of one sentence from its word-level scores ``(n_words, n_labels)``.

    ``constrained`` (default) returns the most probable tag sequence that is valid BIO (Viterbi over each
    word's log-softmax, no ``I-X`` after ``O`` or after another type); otherwise each word's best tag. The
    token classifier scores every word on its own, so its best tags can break an entity into pieces, each
    counted as a false positive. With ``crf`` (``(transitions, start, end)`` of a model's CRF layer, ``-inf``
    where forbidden; see :func:`toolkit._tagger_heads.crf_scores`) the constrained decoding is the CRF's
    Viterbi over the raw scores and its learned transitions.
    """
    if not constrained or len(scores) == 0:
        return np.asarray(scores).argmax(-1).tolist()
    if crf is not None:
        from ._crf import viterbi

        return viterbi(np.asarray(scores), *crf)
    allowed, may_start = bio_transitions(labels)
    transition = np.where(allowed, 0.0, -np.inf)
    # Back-pointers of the smallest integer type, and the log-softmax computed a block of words at a time:
    # a sentence of a million words decodes in one byte per word and label beyond its scores.
    back = np.empty((len(scores), len(labels)), dtype=np.min_scalar_type(max(len(labels) - 1, 0)))
    best = None
    for begin in range(0, len(scores), _DECODE_BLOCK):
        logp = np.array(scores[begin : begin + _DECODE_BLOCK], dtype=np.float64)
        logp -= logp.max(-1, keepdims=True)
        logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
        for t, row in enumerate(logp, start=begin):
            if t == 0:
                best = np.where(may_start, row, -np.inf)
                continue
            candidates = best[:, None] + transition  # previous tag x next tag
            back[t] = candidates.argmax(0)
            best = candidates.max(0) + row
    path = [int(best.argmax())]
    for t in range(len(scores) - 1, 0, -1):
        path.append(int(back[t, path[-1]]))
    return path[::-1]


def bio_entities(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """BIO tags → ``(type, first word, last word + 1)``; an ``I-X`` not continuing ``X`` starts an entity."""
    entities = []
    start, kind = None, None
    for i, tag in enumerate([*tags, "O"]):
        prefix, typ = (tag[:1], tag[2:]) if tag != "O" else ("O", "")
        if start is not None and (prefix in ("O", "B") or typ != kind):
            entities.append((kind, start, i))
            start = None
        if prefix in ("B", "I") and start is None:
            start, kind = i, typ
    return entities


# ------------------------------------------------------------------------------------------ long texts
# Characters of raw text tokenized (or segmented) per call when a reader cuts a long line into pieces.
PIECE_CHARS = 1 << 14

_SPACE_BEFORE_WORD = re.compile(r"\s(?=\S)")
_JOINING = frozenset(".%-#&_+")  # punctuation jieba keeps inside a word (3.14, 50%, e-mail)


def _punctuation(c: str) -> bool:
    return unicodedata.category(c).startswith("P") and c not in _JOINING


def _cut(text: str, lo: int, hi: int) -> int:
    """Where to end a piece: the last position in ``(lo, hi]`` that every tokenizer and segmenter the
    toolkit uses also treats as a boundary, best first: before the last space of a run ahead of a word
    (WordPiece, byte-level BPE and SentencePiece all start a word there, and so does jieba); between a
    punctuation mark and what follows (BERT and byte-level BPE split punctuation off; jieba too); before a CJK
    character (BERT isolates each one); else ``hi``, stepped back off combining marks and joiners so no
    character sequence is broken."""
    last = None
    for m in _SPACE_BEFORE_WORD.finditer(text, lo + 1, hi + 1):
        last = m.start()
    if last is not None:
        return last
    for p in range(hi, lo, -1):
        if _punctuation(text[p - 1]) and not _punctuation(text[p]) and not text[p].isspace():
            return p
    for p in range(hi, lo, -1):
        if is_cjk_char(text[p]):
            return p
    p = hi
    while p > lo + 1 and (unicodedata.category(text[p]).startswith("M") or text[p] in "\u200c\u200d"):
        p -= 1
    return p


def text_pieces(text: str, max_chars: int = PIECE_CHARS) -> Iterator[tuple[int, int]]:
    """``(start, end)`` spans that cut ``text`` into consecutive pieces of at most ``max_chars`` characters.

    Tokenizing (or segmenting) a whole multi-megabyte line at once takes memory proportional to the line,
    many times its size; piece by piece it is bounded by the piece. Pieces end where a tokenizer cuts anyway
    (see :func:`_cut`), so their tokens are the tokens of the whole line; a text no longer than
    ``max_chars`` is one piece. Only a run of ``max_chars // 2`` characters with no space, no punctuation and
    no CJK character (no natural text) is cut where it stands.

    Example:
        >>> list(text_pieces("aaa bbb ccc", max_chars=5))
        [(0, 3), (3, 7), (7, 11)]
    """
    if max_chars < 2:
        raise ToolkitInputError(f"max_chars must be at least 2, got {max_chars}")
    start, n = 0, len(text)
    while n - start > max_chars:
        end = _cut(text, start + max_chars // 2, start + max_chars)
        yield start, end
        start = end
    if n > start or n == 0:
        yield start, n


def piece_groups(
    texts: Sequence[str], piece_chars: int, call_chars: int
) -> Iterator[list[tuple[int, int, int]]]:
    """``(text, start, end)`` pieces of every text (see :func:`text_pieces`), grouped into runs of at most
    ``call_chars`` characters (a piece is never split further), in order: one tokenizer call per group keeps
    the memory of a call bounded whatever a text's length."""
    group: list[tuple[int, int, int]] = []
    size = 0
    for n, text in enumerate(texts):
        for start, end in text_pieces(text, piece_chars):
            if group and size + end - start > call_chars:
                yield group
                group, size = [], 0
            group.append((n, start, end))
            size += end - start
    if group:
        yield group
