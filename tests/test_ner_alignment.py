from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from conftest import NER_LABELS, is_valid_bio

from toolkit import NERTagger, ToolkitInputError, bio_entities, decode_tags
from toolkit._tagger import split_words
from toolkit._tagging import (
    AlignmentAudit,
    bio_transitions,
    encode_sentence,
    make_windows,
    merge_window_scores,
    token_owners,
)

LABELS = NER_LABELS
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


def test_windowing_round_trip_equals_parts(tiny_tagger_dir):
    """Without overlap, predictions for a long sentence equal those for its parts encoded alone.

    Each word's best tag (``constrained=False``): valid-BIO decoding ties a word to its neighbours, so a
    part's first word could not be ``I-`` alone but can be in the whole sentence."""
    tagger = NERTagger(tiny_tagger_dir, stride=0, constrained=False)
    tagger.max_length = 12  # windows of 10 tokens
    words = list("北京是中国的首都小明在学校吃苹果今天下雨")  # one token per character
    whole = tagger.predict_words([words])[0]
    parts = tagger.predict_words([words[i : i + 10] for i in range(0, len(words), 10)])
    assert whole == [t for part in parts for t in part]


def test_merge_window_scores():
    windows = [{"word_index": [-1, 0, 1, -1]}, {"word_index": [-1, -1, 2, -1]}]
    logits = [np.eye(4)[[0, 1, 2, 0]], np.eye(4)[[0, 0, 3, 0]]]
    np.testing.assert_array_equal(merge_window_scores(windows, logits, 3), np.eye(4)[[1, 2, 3]])
    with pytest.raises(RuntimeError):
        merge_window_scores(windows, logits, 4)  # word 3 received no prediction
    with pytest.raises(RuntimeError):
        merge_window_scores(windows, logits, 2)  # word 2 lies outside the sentence


def test_bio_transitions():
    allowed, may_start = bio_transitions(LABELS + ["I-MISC", "E-ORG"])  # I-MISC has no B-: unconstrained
    names = LABELS + ["I-MISC", "E-ORG"]
    ok = {(names[i], names[j]) for i, j in zip(*np.nonzero(allowed), strict=True)}
    assert ("B-PER", "I-PER") in ok and ("I-PER", "I-PER") in ok
    assert ("O", "I-PER") not in ok and ("B-LOC", "I-PER") not in ok and ("I-LOC", "I-PER") not in ok
    assert ("O", "I-MISC") in ok and ("I-PER", "E-ORG") in ok and ("I-PER", "B-LOC") in ok
    assert [n for n, s in zip(names, may_start, strict=True) if not s] == ["I-LOC", "I-PER"]


def test_decode_tags_finds_the_best_valid_sequence():
    """Viterbi equals an exhaustive search over every valid BIO sequence; argmax decoding is each word's best
    tag, which is invalid BIO on these scores."""
    rng = np.random.default_rng(0)
    n_invalid = 0
    for n_words in (1, 2, 3, 4, 5):
        for _ in range(20):
            scores = rng.normal(size=(n_words, len(LABELS))) * 3
            logp = scores - np.log(np.exp(scores).sum(-1, keepdims=True))
            best = max(
                (seq for seq in itertools.product(range(len(LABELS)), repeat=n_words)
                 if is_valid_bio([LABELS[i] for i in seq])),
                key=lambda seq: sum(logp[t, i] for t, i in enumerate(seq)),
            )  # fmt: skip
            assert decode_tags(scores, LABELS) == list(best)
            argmax = decode_tags(scores, LABELS, constrained=False)
            assert argmax == scores.argmax(-1).tolist()
            n_invalid += not is_valid_bio([LABELS[i] for i in argmax])
    assert n_invalid > 10  # the constraint had work to do
    assert decode_tags(np.zeros((0, len(LABELS))), LABELS) == []


def test_decode_tags_mends_a_broken_entity():
    """北京市 scored B-LOC, O, I-LOC word by word: the valid sequence keeps one entity, not two."""
    p = np.full((3, len(LABELS)), 0.01)
    p[0, L2I["B-LOC"]], p[1, L2I["O"]], p[1, L2I["I-LOC"]], p[2, L2I["I-LOC"]] = 0.9, 0.5, 0.45, 0.9
    scores = np.log(p)
    assert [LABELS[i] for i in decode_tags(scores, LABELS, constrained=False)] == ["B-LOC", "O", "I-LOC"]
    assert [LABELS[i] for i in decode_tags(scores, LABELS)] == ["B-LOC", "I-LOC", "I-LOC"]


def test_score_ner_split_scores_both_decodings():
    """北京市 scored B-LOC / O / I-LOC across two windows (the second word in both, owned by the first),
    then 张三 scored I-PER / I-PER in a one-window sentence: the headline decoding's tags are returned and
    scored, the other decoding is scored beside it, and constrained=False swaps the two."""
    from toolkit import NERSentence
    from toolkit.ner import ner_scores, score_ner_split

    def logits_for(*tags):
        p = np.full((len(tags), len(LABELS)), 0.02)
        for row, tag in enumerate(tags):
            for name, prob in tag.items():
                p[row, L2I[name]] = prob
        return np.log(p)

    windows = [
        {"word_index": [-1, 0, 1, -1]},  # [CLS] 北 京 [SEP]; 京 is owned here
        {"word_index": [-1, -1, 2, -1]},  # [CLS] 京 市 [SEP]
        {"word_index": [-1, 0, 1, -1]},  # [CLS] 张 三 [SEP]
    ]
    cls = {"O": 0.9}
    logits = np.stack(
        [
            logits_for(cls, {"B-LOC": 0.9}, {"O": 0.5, "I-LOC": 0.4}, cls),
            logits_for(cls, {"I-LOC": 0.9}, {"I-LOC": 0.9}, cls),  # its 京 is not the owner's: ignored
            logits_for(cls, {"I-PER": 0.6, "B-PER": 0.3}, {"I-PER": 0.9}, cls),
        ]
    )
    sentences = [
        NERSentence(list("北京市"), ["B-LOC", "I-LOC", "I-LOC"]),
        NERSentence(list("张三"), ["B-PER", "I-PER"]),
    ]
    scores, tags = score_ner_split(windows, [0, 0, 1], logits, sentences, LABELS)
    assert tags == [["B-LOC", "I-LOC", "I-LOC"], ["B-PER", "I-PER"]]
    assert scores["overall_f1"] == 1.0 and scores["decoding"] == "most probable valid BIO sequence"
    per_word = [["B-LOC", "O", "I-LOC"], ["I-PER", "I-PER"]]
    other = scores["other_decoding"]
    assert other["decoding"] == "best tag per word"
    expected = ner_scores(per_word, [s.tags for s in sentences])
    assert other["overall_f1"] == expected["overall_f1"] < 1.0 and "per_type" not in other
    swapped, swapped_tags = score_ner_split(windows, [0, 0, 1], logits, sentences, LABELS, constrained=False)
    assert swapped_tags == per_word and swapped["overall_f1"] == other["overall_f1"]
    assert swapped["other_decoding"]["overall_f1"] == 1.0


def test_tagger_constrained_and_per_word_decoding(tiny_tagger_dir):
    """NERTagger decodes valid BIO by default; constrained=False gives each word's best tag."""
    words = list("小明去了北京和上海") * 3  # one token per character, one window
    (constrained,) = NERTagger(tiny_tagger_dir).predict_words([words])
    tagger = NERTagger(tiny_tagger_dir, constrained=False)
    (per_word,) = tagger.predict_words([words])
    ids = tagger.tokenizer(words, is_split_into_words=True, return_tensors="pt")
    assert ids["input_ids"].shape[1] == len(words) + 2
    with torch.no_grad():
        best = tagger.model(**ids).logits[0, 1:-1].argmax(-1).tolist()
    assert per_word == [LABELS[i] for i in best]
    assert is_valid_bio(constrained) and len(constrained) == len(words)
    assert (constrained == per_word) == is_valid_bio(per_word)


def test_split_words_and_entities():
    words = split_words("张三在New York工作, 2024年。")
    assert [w for w, _, _ in words] == ["张", "三", "在", "New", "York", "工", "作", ",", "2024", "年", "。"]
    assert words[3] == ("New", 3, 6)
    assert bio_entities(["B-PER", "I-PER", "O", "I-LOC", "B-LOC"]) == [
        ("PER", 0, 2),
        ("LOC", 3, 4),
        ("LOC", 4, 5),
    ]


def test_tagger_returns_character_spans(tiny_tagger_dir):
    tagger = NERTagger(tiny_tagger_dir)
    text = "张三在北京工作。 alice lives in paris."
    spans = tagger(text)
    for span in spans:
        assert text[span["start"] : span["end"]] == span["text"]
        assert span["label"] in ("LOC", "PER")
    assert tagger("") == []
