"""Text rules shared by every reader and writer: what counts as a CJK character, the one way tokens are
joined back into text, text the Rust tokenizers accept, and the Chinese word segmenter."""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

from ._errors import ToolkitInputError


def is_cjk_char(ch: str) -> bool:
    """True for CJK ideographs (the ranges BERT's tokenizer isolates as one token each)."""
    cp = ord(ch)
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


def _wide(char: str) -> bool:
    """A character East Asian text writes without spaces around it: wide or full-width, except emoji and
    other pictographs (wide too, but written between spaced words: ``ok 👍 thanks``)."""
    return unicodedata.east_asian_width(char) in ("W", "F") and unicodedata.category(char) not in ("So", "Sk")


def join_tokens(tokens: Sequence[str]) -> str:
    """Join tokens back into text: no space next to a wide (CJK) character, one space between other tokens.

    Example:
        >>> join_tokens(["《", "红", "楼", "梦", "》"]), join_tokens(["北京", "，", "上海"]), join_tokens(["EU", "rejects"])
        ('《红楼梦》', '北京，上海', 'EU rejects')
    """
    out: list[str] = []
    for token in tokens:
        if out and token and not (_wide(out[-1][-1]) or _wide(token[0])):
            out.append(" ")
        out.append(token)
    return "".join(out)


_SURROGATE = re.compile("[\ud800-\udfff]")


def tokenizer_safe(text: str) -> str:
    """Replace lone surrogates (which the Rust tokenizers reject) by U+FFFD, one character for one, so
    character offsets stay valid; the original text is still what the coverage report names."""
    return _SURROGATE.sub("\ufffd", text)


# Full-width digits and Latin letters (０-９, Ａ-Ｚ, ａ-ｚ) and their ASCII twins. Full-width punctuation (，。！)
# is how Chinese text is written, the same in every file: it is left alone.
_HALF_WIDTH = {
    cp: cp - 0xFEE0
    for lo, hi in ((0xFF10, 0xFF19), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A))
    for cp in range(lo, hi + 1)
}


def fold_width(text: str) -> str:
    """Full-width digits and Latin letters as their ASCII twins, one character for one (offsets stay valid).

    Chinese text writes digits and Latin letters either way (MSRA's training file has ``12A``, its test file
    ``１２Ａ``); a tokenizer trained on one form maps the other to rare pieces or ``[UNK]``. The NER words meet
    the tokenizer through this fold, in training and in :class:`~toolkit.NERTagger` alike.

    Example:
        >>> fold_width("１２Ａ，ｂ")
        '12A，b'
    """
    return text.translate(_HALF_WIDTH)


@lru_cache(maxsize=1)
def load_jieba():
    """The jieba segmenter (quiet), or a clear error naming the extra to install."""
    try:
        import jieba
    except ImportError:
        raise ToolkitInputError(
            "Chinese whole-word masking needs jieba: pip install 'toolkit[zh]' (or pip install jieba)"
        ) from None
    jieba.setLogLevel(logging.WARNING)
    return jieba
