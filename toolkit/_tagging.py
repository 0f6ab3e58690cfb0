"""Word tagging on sub-word models, the parts training and inference share: words tokenized one by one
(each keeps at least one token), label alignment, overlapping windows over long sentences with an owner for
every token, merging window scores back into words, the audit that proves no label was lost, and BIO
decoding (the most probable valid sequence) and entity extraction.

Sentences longer than the model's window are split into overlapping windows; every token is *owned* by
the window in which it sits farthest from an edge, is labelled there for training, and is predicted from
there. Nothing is truncated.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from transformers import PreTrainedTokenizerBase

from ._errors import ToolkitInputError
from ._masking import IGNORE_INDEX
from ._text import tokenizer_safe
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
        tokenizer([tokenizer_safe(w) for w in words], add_special_tokens=False, verbose=False)["input_ids"]
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
    """For each token, the window where it sits farthest from an edge (ties: the earlier window)."""
    owners = []
    for t in range(n_tokens):
        best, best_margin = -1, -1
        for w, (s, e) in enumerate(windows):
            if s <= t < e:
                margin = min(t - s, e - 1 - t)
                if margin > best_margin:
                    best, best_margin = w, margin
        owners.append(best)
    return owners


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
    """
    audit = audit if audit is not None else AlignmentAudit()
    pieces = word_pieces(words, tokenizer, audit)
    ids: list[int] = []
    word_of: list[int] = []
    first: list[bool] = []
    for w, p in enumerate(pieces):
        ids.extend(p)
        word_of.extend([w] * len(p))
        first.extend([True] + [False] * (len(p) - 1))
    windows = make_windows(len(ids), max_tokens=max_length - 2, stride=stride)
    owners = token_owners(len(ids), windows)
    audit.n_sentences += 1
    audit.n_words += len(words)
    audit.n_windows += len(windows)
    if len(windows) > 1:
        audit.n_windowed_sentences += 1
    labelled_words: set[int] = set()
    out = []
    for k, (s, e) in enumerate(windows):
        word_index = [-1] + [word_of[t] if first[t] and owners[t] == k else -1 for t in range(s, e)] + [-1]
        item = {
            "input_ids": [tokenizer.cls_token_id, *ids[s:e], tokenizer.sep_token_id],
            "attention_mask": [1] * (e - s + 2),
            "word_index": word_index,
            "window": k,
        }
        if tags is not None:
            labels = [IGNORE_INDEX]
            for t in range(s, e):
                tag = tags[word_of[t]]
                if owners[t] != k:
                    labels.append(IGNORE_INDEX)
                elif first[t]:
                    labels.append(label2id[tag])
                    labelled_words.add(word_of[t])
                elif label_all_tokens:
                    labels.append(
                        label2id.get("I-" + tag[2:], label2id[tag]) if tag.startswith("B-") else label2id[tag]
                    )
                else:
                    labels.append(IGNORE_INDEX)
            item["labels"] = labels + [IGNORE_INDEX]
        out.append(item)
    if tags is not None:
        audit.n_labels_lost += len(words) - len(labelled_words)
    return out


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


def decode_tags(scores: np.ndarray, labels: Sequence[str], *, constrained: bool = True) -> list[int]:
    """Label ids of one sentence from its word-level scores ``(n_words, n_labels)``.

    ``constrained`` (default) returns the most probable tag sequence that is valid BIO (Viterbi over each
    word's log-softmax, no ``I-X`` after ``O`` or after another type); otherwise each word's best tag. The
    token classifier scores every word on its own, so its best tags can break an entity into pieces, each
    counted as a false positive.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if not constrained or len(scores) == 0:
        return scores.argmax(-1).tolist()
    logp = scores - scores.max(-1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
    allowed, may_start = bio_transitions(labels)
    transition = np.where(allowed, 0.0, -np.inf)
    best = np.where(may_start, logp[0], -np.inf)
    back = np.empty((len(logp), len(labels)), dtype=np.int64)
    for t in range(1, len(logp)):
        candidates = best[:, None] + transition  # previous tag x next tag
        back[t] = candidates.argmax(0)
        best = candidates.max(0) + logp[t]
    path = [int(best.argmax())]
    for t in range(len(logp) - 1, 0, -1):
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
