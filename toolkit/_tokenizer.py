"""WordPiece vocabulary training (CJK aware), tokenizer loading, and a health report.

The report exists because a broken tokenizer does not crash: it turns words into ``[UNK]`` and training
"works" with a meaningless loss. Two traps this module guards against:

* ``limit_alphabet``: the WordPiece trainer keeps only the N most frequent characters (1000 in the classic
  BERT scripts), which silently maps thousands of Chinese characters to ``[UNK]``. We compute the alphabet
  ourselves (every character at or above ``char_min_frequency``) and pass it whole.
* transformers 5 tokenizer construction from a ``vocab_file`` argument can yield a tokenizer holding only
  the special tokens. We build from a ``tokenizers.Tokenizer`` object and, after every save/load, check the
  reloaded vocabulary size and the ``[UNK]`` rate on real text.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, BertTokenizerFast, PreTrainedTokenizerBase

from ._errors import ToolkitInputError
from ._text import is_cjk_char, tokenizer_safe

logger = logging.getLogger(__name__)

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
# The same tokens by role, as the tokenizer classes take them.
SPECIAL_TOKEN_ROLES = {
    "pad_token": "[PAD]",
    "unk_token": "[UNK]",
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "mask_token": "[MASK]",
}


@dataclass
class TokenizerReport:
    """How well a tokenizer covers a text sample.

    Attributes:
        vocab_size: entries in the vocabulary (special tokens included).
        n_tokens: tokens produced on the sample (special tokens excluded).
        unk_rate: fraction of those tokens that are ``[UNK]``.
        n_chars: non-space characters in the sample.
        char_coverage: fraction of those character occurrences the tokenizer represents without ``[UNK]``.
        n_distinct_chars: distinct non-space characters in the sample.
        n_distinct_uncovered: distinct characters that become ``[UNK]``.
        uncovered_chars: the most frequent uncovered characters with their counts.
        n_removed_chars: character occurrences the normalizer deletes (control and zero-width characters);
            they are not lost by accident but reported here.
    """

    vocab_size: int
    n_tokens: int
    unk_rate: float
    n_chars: int
    char_coverage: float
    n_distinct_chars: int
    n_distinct_uncovered: int
    uncovered_chars: list[tuple[str, int]] = field(default_factory=list)
    n_removed_chars: int = 0

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        top = ", ".join(f"{c!r}×{n}" for c, n in self.uncovered_chars[:10]) or "none"
        return (
            f"vocab {self.vocab_size:,} | [UNK] rate {self.unk_rate:.4%} over {self.n_tokens:,} tokens | "
            f"char coverage {self.char_coverage:.4%} ({self.n_distinct_uncovered} of {self.n_distinct_chars:,} "
            f"distinct chars uncovered: {top}) | removed by normalizer {self.n_removed_chars}"
        )


def _normalizer(*, lowercase: bool, strip_accents: bool | None) -> normalizers.Normalizer:
    return normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=strip_accents, lowercase=lowercase
    )


def train_wordpiece_tokenizer(
    texts: Iterable[str],
    *,
    vocab_size: int = 30_000,
    min_frequency: int = 2,
    char_min_frequency: int = 1,
    lowercase: bool = True,
    strip_accents: bool | None = None,
    model_max_length: int = 512,
    show_progress: bool = True,
) -> BertTokenizerFast:
    """Train a BERT WordPiece tokenizer whose alphabet keeps every character seen often enough.

    Each CJK character is its own pre-token (so Chinese is tokenized character by character, as in BERT's
    Chinese models); the alphabet is every normalized character with at least ``char_min_frequency``
    occurrences, so no frequent Chinese character falls back to ``[UNK]``.

    Args:
        texts: training documents (a list or any re-iterable; iterated twice).
        vocab_size: target vocabulary size including special tokens.
        min_frequency: minimum pair frequency for a WordPiece merge.
        char_min_frequency: characters rarer than this are left out of the alphabet (they become ``[UNK]``
            and show up in the report).
        lowercase: lower-case the text.
        strip_accents: strip accents (``None``: follow ``lowercase``, as BERT does).
        model_max_length: saved as the tokenizer's maximum length.
        show_progress: show the trainer's progress bars.

    Returns:
        A ``BertTokenizerFast`` ready for ``save_pretrained``.

    Raises:
        ToolkitInputError: empty text, or ``vocab_size`` smaller than the alphabet plus special tokens.

    Example:
        >>> tok = train_wordpiece_tokenizer(["我爱北京", "hello world"] * 10, vocab_size=100)
        >>> tok.tokenize("我爱 hello")
        ['我', '爱', 'hello']
    """
    texts = texts if isinstance(texts, list) else list(texts)
    normalizer = _normalizer(lowercase=lowercase, strip_accents=strip_accents)
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(normalizer.normalize_str(text))
    for ws in [c for c in counts if c.isspace()]:
        del counts[ws]
    if not counts:
        raise ToolkitInputError("cannot train a tokenizer: the training text is empty")
    alphabet = sorted(c for c, n in counts.items() if n >= char_min_frequency)
    # Characters that occur inside words need a "##c" continuation entry as well; CJK characters never do.
    n_needed = len(SPECIAL_TOKENS) + len(alphabet) + sum(1 for c in alphabet if not is_cjk_char(c))
    if vocab_size < len(SPECIAL_TOKENS) + len(alphabet):
        raise ToolkitInputError(
            f"--vocab_size {vocab_size} is smaller than the alphabet: the text has {len(alphabet):,} distinct "
            f"characters with frequency >= {char_min_frequency} (+{len(SPECIAL_TOKENS)} special tokens). "
            f"Raise --vocab_size to at least {n_needed:,} or raise --char_min_frequency"
        )
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        # The trap: a small limit_alphabet drops rare-but-real characters. Keep the whole alphabet.
        limit_alphabet=len(alphabet),
        initial_alphabet=alphabet,
        continuing_subword_prefix="##",
        show_progress=show_progress,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer, length=len(texts))
    # The trainer numbers tokens in hash-map order, so two runs on the same text can give the same tokens
    # different ids. WordPiece matching does not depend on ids: renumber canonically (special tokens
    # first, then sorted), so the same token set always gets the same ids.
    vocab = [t for t in sorted(tokenizer.get_vocab()) if t not in SPECIAL_TOKENS]
    return build_wordpiece_tokenizer(
        list(SPECIAL_TOKENS) + vocab,
        lowercase=lowercase,
        strip_accents=strip_accents,
        model_max_length=model_max_length,
    )


def build_wordpiece_tokenizer(
    vocab: Sequence[str],
    *,
    lowercase: bool = True,
    strip_accents: bool | None = None,
    model_max_length: int = 512,
) -> BertTokenizerFast:
    """Build a BERT WordPiece tokenizer from a vocabulary list (id = position), e.g. a ``vocab.txt``.

    This goes through a ``tokenizers.Tokenizer`` object rather than ``BertTokenizerFast(vocab_file=...)``,
    which in transformers 5 can silently produce a vocabulary of only the special tokens.

    Args:
        vocab: tokens in id order; must contain ``[PAD] [UNK] [CLS] [SEP] [MASK]``.
        lowercase: lower-case input text.
        strip_accents: strip accents (``None``: follow ``lowercase``).
        model_max_length: saved as the tokenizer's maximum length.

    Raises:
        ToolkitInputError: a special token is missing or a token is repeated.

    Example:
        >>> tok = build_wordpiece_tokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "play", "##ing"])
        >>> tok.tokenize("playing")
        ['play', '##ing']
    """
    missing = [t for t in SPECIAL_TOKENS if t not in vocab]
    if missing:
        raise ToolkitInputError(f"vocabulary lacks the special tokens {missing}")
    if len(set(vocab)) != len(vocab):
        raise ToolkitInputError("vocabulary has repeated tokens")
    tokenizer = Tokenizer(
        models.WordPiece(
            vocab={t: i for i, t in enumerate(vocab)}, unk_token="[UNK]", max_input_chars_per_word=100
        )
    )
    tokenizer.normalizer = _normalizer(lowercase=lowercase, strip_accents=strip_accents)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    return BertTokenizerFast(
        tokenizer_object=tokenizer,
        do_lower_case=lowercase,
        strip_accents=strip_accents,
        tokenize_chinese_chars=True,
        model_max_length=model_max_length,
        **SPECIAL_TOKEN_ROLES,
    )


def load_tokenizer(name_or_path: str | os.PathLike) -> PreTrainedTokenizerBase:
    """Load an existing tokenizer (a tokenizer or model directory, or a hub id) for masked-LM use.

    Raises:
        ToolkitInputError: the path has no tokenizer, or the tokenizer lacks a mask/pad token.
    """
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(name_or_path))
    except (OSError, ValueError) as err:
        raise ToolkitInputError(f"cannot load a tokenizer from {str(name_or_path)!r}: {err}") from None
    for attr in ("mask_token", "pad_token", "cls_token", "sep_token"):
        if getattr(tokenizer, attr) is None:
            raise ToolkitInputError(
                f"tokenizer {str(name_or_path)!r} has no {attr}: it cannot be used for BERT MLM"
            )
    return tokenizer


# Warn when more than this share of the user's text is [UNK] (tokens, or words for NER): the vocabulary does
# not cover the text, and the model sees all of it alike.
UNK_WARN_SHARE = 0.05


def warn_if_uncovered(report: TokenizerReport, where: str, *, threshold: float = UNK_WARN_SHARE) -> bool:
    """Log a warning, with the remedy, when more than ``threshold`` of the tokens of ``where`` are ``[UNK]``.

    Returns:
        Whether it warned.
    """
    if report.unk_rate <= threshold:
        return False
    top = ", ".join(f"{c!r}×{n}" for c, n in report.uncovered_chars[:10]) or "none"
    logger.warning(
        "%s: %.1f%% of the tokens are [UNK] (most frequent uncovered characters: %s): the checkpoint's vocabulary "
        "does not cover this text, and the model sees all of it alike. Use a checkpoint whose vocabulary covers "
        "it, or pretrain one on this text (recipes/pretrain.py)",
        where,
        100 * report.unk_rate,
        top,
    )
    return True


def tokenizer_report(
    tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], *, max_chars: int = 5_000_000, top: int = 20
) -> TokenizerReport:
    """Measure vocabulary size, ``[UNK]`` rate and character coverage of ``tokenizer`` on ``texts``.

    Args:
        tokenizer: a fast tokenizer.
        texts: sample documents (read until ``max_chars`` characters).
        max_chars: cap on the sample size.
        top: how many uncovered characters to list.

    Returns:
        A :class:`TokenizerReport`.
    """
    sample: list[str] = []
    total = 0
    for t in texts:
        sample.append(t)
        total += len(t)
        if total >= max_chars:
            break
    unk_id = tokenizer.unk_token_id
    safe = [tokenizer_safe(t) for t in sample]
    ids = tokenizer(safe, add_special_tokens=False, verbose=False)["input_ids"] if sample else []
    n_tokens = sum(len(x) for x in ids)
    n_unk = sum(x.count(unk_id) for x in ids)
    char_counts: Counter[str] = Counter()
    for t in sample:
        char_counts.update(t)
    for ws in [c for c in char_counts if c.isspace()]:
        del char_counts[ws]
    distinct = list(char_counts)
    per_char = (
        tokenizer([tokenizer_safe(c) for c in distinct], add_special_tokens=False)["input_ids"]
        if distinct
        else []
    )
    uncovered = Counter(
        {c: char_counts[c] for c, toks in zip(distinct, per_char, strict=True) if unk_id in toks}
    )
    removed = sum(char_counts[c] for c, toks in zip(distinct, per_char, strict=True) if not toks)
    n_chars = sum(char_counts.values())
    n_uncovered = sum(uncovered.values())
    return TokenizerReport(
        vocab_size=len(tokenizer),
        n_tokens=n_tokens,
        unk_rate=n_unk / n_tokens if n_tokens else 0.0,
        n_chars=n_chars,
        char_coverage=1.0 - n_uncovered / n_chars if n_chars else 1.0,
        n_distinct_chars=len(distinct),
        n_distinct_uncovered=len(uncovered),
        uncovered_chars=uncovered.most_common(top),
        n_removed_chars=removed,
    )


def check_tokenizer_health(
    report: TokenizerReport, *, max_unk_rate: float = 0.05, where: str = "tokenizer"
) -> None:
    """Refuse a tokenizer that is plainly broken on the training text.

    Raises:
        ToolkitInputError: a vocabulary holding little more than the special tokens (the transformers 5
            ``vocab_file`` trap), no tokens at all on the sample, or an ``[UNK]`` rate above ``max_unk_rate``.
    """
    if report.vocab_size <= len(SPECIAL_TOKENS) + 1:
        raise ToolkitInputError(
            f"{where} is broken: its vocabulary has only {report.vocab_size} entries (the special tokens). "
            "Build tokenizers from a tokenizer.json / tokenizer object, not from a bare vocab_file"
        )
    if report.n_tokens == 0:
        raise ToolkitInputError(f"{where} produces no tokens on the training text")
    if report.unk_rate > max_unk_rate:
        raise ToolkitInputError(
            f"{where} maps {report.unk_rate:.2%} of training tokens to [UNK] (limit {max_unk_rate:.2%}; "
            f"{report.summary()}). Train a new vocabulary on this text, lower --char_min_frequency, or raise "
            "--max_unk_rate if this is intended"
        )
