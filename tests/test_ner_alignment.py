from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertForTokenClassification

from toolkit import (
    AlignmentAudit,
    NERTagger,
    ToolkitInputError,
    bio_entities,
    encode_sentence,
    make_windows,
    merge_window_predictions,
    split_words,
    token_owners,
)

LABELS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
L2I = {lab: i for i, lab in enumerate(LABELS)}


def test_first_subtoken_labelled_rest_ignored(tokenizer):
    words, tags = ["gardenhorse", "北", "京"], ["B-LOC", "I-LOC", "I-LOC"]
    (window,) = encode_sentence(words, tags, tokenizer, label2id=L2I, max_length=64)
    n_pieces = len(tokenizer.tokenize("gardenhorse"))
    assert n_pieces > 1
    assert window["labels"][0] == -100 and window["labels"][-1] == -100
    assert window["labels"][1] == L2I["B-LOC"]
    assert window["labels"][2 : 1 + n_pieces] == [-100] * (n_pieces - 1)
    (all_window,) = encode_sentence(
        words, tags, tokenizer, label2id=L2I, max_length=64, label_all_tokens=True
    )
    assert all_window["labels"][2 : 1 + n_pieces] == [L2I["I-LOC"]] * (n_pieces - 1)


ODD_WORDS = ["😀", "\u200b", "a\u200db", "\u2028", "e\u0301", "ＡＢＣ", "\x07", " ", "北"]


def test_odd_unicode_never_loses_a_word(tokenizer):
    audit = AlignmentAudit()
    tags = ["B-PER"] + ["O"] * (len(ODD_WORDS) - 1)
    windows = encode_sentence(ODD_WORDS, tags, tokenizer, label2id=L2I, max_length=64, audit=audit)
    owned = [w for window in windows for w in window["word_index"] if w >= 0]
    assert sorted(owned) == list(range(len(ODD_WORDS)))  # every word has a token and a prediction slot
    assert audit.n_labels_lost == 0
    assert audit.n_words_without_subtokens >= 3  # zero-width, \u2028, control character, space -> [UNK]
    assert "'\\u200b'" in audit.unk_examples


def test_make_windows_and_owners():
    assert make_windows(5, max_tokens=8, stride=2) == [(0, 5)]
    windows = make_windows(20, max_tokens=8, stride=2)
    assert windows[0] == (0, 8) and windows[-1][1] == 20
    assert all(b[0] == a[1] - 2 for a, b in zip(windows, windows[1:], strict=False))
    owners = token_owners(20, windows)
    assert owners[6] == 0 and owners[7] == 1  # the shared tokens go to the window where they are central
    with pytest.raises(ToolkitInputError):
        make_windows(10, max_tokens=4, stride=4)


def test_long_sentence_is_windowed_without_losing_labels(tokenizer):
    words = list("北京是中国的首都") * 12
    tags = ["B-LOC", "I-LOC"] + ["O"] * 6
    audit = AlignmentAudit()
    windows = encode_sentence(words, tags * 12, tokenizer, label2id=L2I, max_length=16, stride=4, audit=audit)
    assert len(windows) > 1 and audit.n_windowed_sentences == 1 and audit.n_labels_lost == 0
    assert all(len(w["input_ids"]) <= 16 for w in windows)
    labelled = sum(1 for w in windows for lab in w["labels"] if lab != -100)
    assert labelled == len(words)


@pytest.fixture(scope="module")
def tagger_dir(tokenizer, tmp_path_factory):
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id=L2I,
    )
    out = tmp_path_factory.mktemp("tagger")
    BertForTokenClassification(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def test_windowing_round_trip_equals_parts(tagger_dir):
    """Without overlap, predictions for a long sentence equal those for its parts encoded alone."""
    tagger = NERTagger(tagger_dir, stride=0)
    tagger.max_length = 12  # windows of 10 tokens
    words = list("北京是中国的首都小明在学校吃苹果今天下雨")  # one token per character
    whole = tagger.predict_words([words])[0]
    parts = tagger.predict_words([words[i : i + 10] for i in range(0, len(words), 10)])
    assert whole == [t for part in parts for t in part]


def test_merge_window_predictions():
    windows = [{"word_index": [-1, 0, 1, -1]}, {"word_index": [-1, -1, 2, -1]}]
    logits = [np.eye(4)[[0, 1, 2, 0]], np.eye(4)[[0, 0, 3, 0]]]
    assert merge_window_predictions(windows, logits, 3) == [1, 2, 3]
    with pytest.raises(RuntimeError):
        merge_window_predictions(windows, logits, 4)


def test_split_words_and_entities():
    words = split_words("张三在New York工作, 2024年。")
    assert [w for w, _, _ in words] == ["张", "三", "在", "New", "York", "工", "作", ",", "2024", "年", "。"]
    assert words[3] == ("New", 3, 6)
    assert bio_entities(["B-PER", "I-PER", "O", "I-LOC", "B-LOC"]) == [
        ("PER", 0, 2),
        ("LOC", 3, 4),
        ("LOC", 4, 5),
    ]


def test_tagger_returns_character_spans(tagger_dir):
    tagger = NERTagger(tagger_dir)
    text = "张三在北京工作。 alice lives in paris."
    spans = tagger(text)
    for span in spans:
        assert text[span["start"] : span["end"]] == span["text"]
        assert span["label"] in ("LOC", "PER")
    assert tagger("") == []
