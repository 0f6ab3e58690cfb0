from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from toolkit import (
    ToolkitInputError,
    is_cjk_char,
    load_tokenizer,
    tokenizer_report,
    train_wordpiece_tokenizer,
)
from toolkit._tokenizer import check_tokenizer_health


def _many_chinese_chars(n: int) -> list[str]:
    # n distinct CJK characters, each frequent enough, in short "sentences".
    chars = [chr(0x4E00 + 7 * i) for i in range(n)]
    return ["".join(chars[i : i + 10]) for i in range(0, n, 10)] * 3


def test_every_frequent_chinese_character_is_covered_beyond_limit_alphabet():
    # 1500 distinct characters: more than the classic limit_alphabet=1000 would keep.
    texts = _many_chinese_chars(1500)
    tok = train_wordpiece_tokenizer(texts, vocab_size=1600, show_progress=False)
    report = tokenizer_report(tok, texts)
    assert report.n_distinct_chars == 1500
    assert report.unk_rate == 0.0
    assert report.char_coverage == 1.0


def test_cjk_characters_are_single_tokens_and_english_is_wordpiece(tokenizer):
    pieces = tokenizer.tokenize("北京是中国的首都 the capital")
    assert pieces[:8] == list("北京是中国的首都")
    assert all(len(p) == 1 for p in pieces[:8])
    assert "the" in pieces
    assert is_cjk_char("中") and not is_cjk_char("a") and not is_cjk_char("。")


def test_save_and_reload_with_autotokenizer_keeps_vocabulary(tokenizer, tmp_path):
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert len(reloaded) == len(tokenizer) > 100
    text = "the capital of france is paris. 北京是中国的首都。"
    assert reloaded(text)["input_ids"] == tokenizer(text)["input_ids"]
    assert reloaded.unk_token_id not in reloaded(text)["input_ids"]
    assert reloaded.mask_token == "[MASK]"


def test_cased_tokenizer_stays_cased_after_reload(tmp_path):
    texts = ["Paris Paris paris London london"] * 20
    tok = train_wordpiece_tokenizer(texts, vocab_size=80, lowercase=False, show_progress=False)
    tok.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert reloaded.tokenize("Paris paris") == ["Paris", "paris"]


def test_lowercase_and_accent_stripping():
    tok = train_wordpiece_tokenizer(
        ["Café CAFÉ café"] * 5, vocab_size=60, lowercase=True, show_progress=False
    )
    assert tok.tokenize("CAFÉ") == tok.tokenize("cafe")


def test_report_counts_unknown_and_removed_characters(tokenizer):
    report = tokenizer_report(tokenizer, ["the cat 猫 ☃ a\u200bb"])
    uncovered = dict(report.uncovered_chars)
    assert "猫" in uncovered and "☃" in uncovered
    assert report.n_distinct_uncovered >= 2
    assert report.unk_rate > 0
    assert report.char_coverage < 1.0
    assert report.n_removed_chars == 1  # the zero-width space is deleted by the normalizer, and counted


def test_vocab_smaller_than_alphabet_is_refused():
    with pytest.raises(ToolkitInputError, match="smaller than the alphabet"):
        train_wordpiece_tokenizer(_many_chinese_chars(300), vocab_size=100, show_progress=False)


def test_empty_text_is_refused():
    with pytest.raises(ToolkitInputError, match="empty"):
        train_wordpiece_tokenizer(["", "   "], vocab_size=100, show_progress=False)


def test_broken_tokenizer_is_refused(tokenizer):
    report = tokenizer_report(tokenizer, ["猫狗鱼鸟 ☃☃☃ ☂☂"])
    with pytest.raises(ToolkitInputError, match="UNK"):
        check_tokenizer_health(report, max_unk_rate=0.05)
    report.vocab_size = 5  # the transformers-5 vocab_file trap: only the special tokens
    with pytest.raises(ToolkitInputError, match="only 5 entries"):
        check_tokenizer_health(report)


def test_healthy_tokenizer_passes(tokenizer, corpus_lines):
    report = tokenizer_report(tokenizer, corpus_lines)
    check_tokenizer_health(report)
    assert report.unk_rate == 0.0
    assert report.vocab_size == len(tokenizer)


def test_load_tokenizer_errors(tmp_path):
    with pytest.raises(ToolkitInputError, match="cannot load a tokenizer"):
        load_tokenizer(tmp_path / "missing")
