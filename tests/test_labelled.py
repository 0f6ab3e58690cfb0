from __future__ import annotations

import json

import pytest

from toolkit import ToolkitInputError, read_classification, read_conll, read_ner_jsonl
from toolkit._labelled import class_balance, detect_scheme, normalise_schemes, spans_to_bio, to_bio
from toolkit.finetune import build_label_map, check_labels_known


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_classification_formats(tmp_path):
    csv_path = _write(tmp_path / "a.csv", 'sentence,label\n"good, really",pos\nbad,neg\n')
    tsv_path = _write(tmp_path / "a.tsv", "sentence\tlabel\ngood\tpos\n")
    jsonl = _write(tmp_path / "a.jsonl", json.dumps({"sentence": "好", "label": 1}) + "\n")
    assert [e.text for e in read_classification(csv_path, text_column="sentence")] == ["good, really", "bad"]
    assert read_classification(tsv_path, text_column="sentence")[0].labels == ["pos"]
    assert read_classification(jsonl, text_column="sentence")[0].labels == ["1"]


def test_multi_label_and_pairs(tmp_path):
    path = _write(tmp_path / "m.jsonl", json.dumps({"a": "x", "b": "y", "tags": ["t1", "t2"]}) + "\n")
    ex = read_classification(
        path, text_column="a", text_pair_column="b", label_column="tags", multi_label=True
    )[0]
    assert ex.text_pair == "y" and ex.labels == ["t1", "t2"]
    csv_path = _write(tmp_path / "m.csv", "text,label\nx,a|b\n")
    assert read_classification(csv_path, multi_label=True, label_separator="|")[0].labels == ["a", "b"]


@pytest.mark.parametrize(
    ("content", "kwargs", "message"),
    [
        ('{"txt": "x", "label": 1}\n', {}, r"a.jsonl:1: no column 'text' \(found \['label', 'txt'\]\)"),
        (
            '{"text": "x", "label": 1}\n{"text": "y", "label": "pos"}\n',
            {},
            r"a.jsonl:2: label column 'label' mixes",
        ),
        ('{"text": "", "label": 1}\n', {}, r"a.jsonl:1: empty"),
        ("\n\n", {}, "no example"),
        ('{"text": "x"}\n', {}, r"a.jsonl:1: no column 'label'"),
    ],
)
def test_classification_bad_input(tmp_path, content, kwargs, message):
    path = _write(tmp_path / "a.jsonl", content)
    with pytest.raises(ToolkitInputError, match=message):
        read_classification(path, **kwargs)


def test_unlabelled_test_file_is_allowed(tmp_path):
    path = _write(tmp_path / "t.jsonl", '{"text": "x"}\n')
    assert read_classification(path, require_labels=False)[0].labels == []


def test_label_map_and_unknown_labels():
    assert build_label_map(["10", "2", "1"]) == ["1", "2", "10"]
    assert build_label_map(["I-PER", "B-PER", "O", "B-LOC", "I-LOC"]) == [
        "O",
        "B-LOC",
        "I-LOC",
        "B-PER",
        "I-PER",
    ]
    with pytest.raises(
        ToolkitInputError, match=r"dev.txt:7: label 'B-MISC' does not occur in the training data"
    ):
        check_labels_known([("dev.txt", 7, ["O", "B-MISC"])], ["O", "B-PER"])


def test_class_balance():
    from toolkit import ClassificationExample

    assert class_balance([ClassificationExample("a", ["x"]), ClassificationExample("b", ["x", "y"])]) == {
        "x": 2,
        "y": 1,
    }


def test_conll_reader_columns_docstart_and_errors(tmp_path):
    path = _write(
        tmp_path / "c.txt", "-DOCSTART- -X- O O\n\nEU NNP B-ORG\nrejects VBZ O\n\n\nGerman JJ B-MISC\n"
    )
    sents = read_conll(path)
    assert [s.tokens for s in sents] == [["EU", "rejects"], ["German"]]
    assert sents[1].tags == ["B-MISC"] and sents[1].line == 7
    bad = _write(tmp_path / "bad.txt", "北\tB-LOC\n京\n")
    with pytest.raises(ToolkitInputError, match=r"bad.txt:2: expected a token and a tag"):
        read_conll(bad)
    bad_tag = _write(tmp_path / "badtag.txt", "x\tPER\n")
    with pytest.raises(ToolkitInputError, match=r"badtag.txt:1: tag 'PER' is not O or PREFIX-TYPE"):
        read_conll(bad_tag)
    with pytest.raises(ToolkitInputError, match="no sentence"):
        read_conll(_write(tmp_path / "empty.txt", "\n\n"))


def test_ner_jsonl_tokens_and_spans(tmp_path):
    path = _write(
        tmp_path / "n.jsonl",
        "\n".join(
            [
                json.dumps({"tokens": ["New", "York"], "tags": ["B-LOC", "I-LOC"]}),
                json.dumps(
                    {
                        "text": "张三在北京",
                        "spans": [
                            {"start": 0, "end": 2, "label": "PER"},
                            {"start": 3, "end": 5, "label": "LOC"},
                        ],
                    },
                    ensure_ascii=False,
                ),
                json.dumps(
                    {"text": "I love New York", "entities": [{"start": 7, "end": 15, "label": "LOC"}]}
                ),
            ]
        )
        + "\n",
    )
    a, b, c = read_ner_jsonl(path)
    assert a.tags == ["B-LOC", "I-LOC"]
    assert b.tokens == list("张三在北京") and b.tags == ["B-PER", "I-PER", "O", "B-LOC", "I-LOC"]
    assert c.tokens == ["I", "love", "New", "York"] and c.tags == ["O", "O", "B-LOC", "I-LOC"]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"tokens": ["a", "b"], "tags": ["O"]}, r"n.jsonl:1: 2 tokens but 1 tags"),
        ({"text": "abc def", "spans": [{"start": 1, "end": 3, "label": "X"}]}, "token boundaries"),
        ({"text": "abc", "spans": [{"start": 0, "end": 9, "label": "X"}]}, "outside the text"),
        (
            {
                "text": "甲乙",
                "spans": [{"start": 0, "end": 2, "label": "X"}, {"start": 1, "end": 2, "label": "Y"}],
            },
            "overlaps",
        ),
        ({"words": ["a"]}, "expected 'tokens'"),
        ({"tokens": [], "tags": []}, "empty sentence"),
    ],
)
def test_ner_jsonl_errors(tmp_path, record, message):
    path = _write(tmp_path / "n.jsonl", json.dumps(record, ensure_ascii=False) + "\n")
    with pytest.raises(ToolkitInputError, match=message):
        read_ner_jsonl(path)


def test_scheme_conversion():
    assert to_bio(["S-PER", "O", "B-LOC", "I-LOC", "E-LOC"], "BIOES") == (
        ["B-PER", "O", "B-LOC", "I-LOC", "I-LOC"],
        0,
    )
    assert to_bio(["I-PER", "I-PER", "B-PER", "O", "I-LOC"], "IOB1") == (
        ["B-PER", "I-PER", "B-PER", "O", "B-LOC"],
        0,
    )
    # invalid BIO: an I- with no B- is repaired and counted
    assert to_bio(["O", "I-PER", "I-PER", "B-LOC", "I-PER"], "BIO") == (
        ["O", "B-PER", "I-PER", "B-LOC", "B-PER"],
        2,
    )


def test_normalise_schemes_detects_and_counts(tmp_path):
    sents = read_conll(_write(tmp_path / "c.txt", "a\tS-PER\nb\tO\n\nc\tI-LOC\n"))
    assert detect_scheme(sents) == "BIOES"
    report = normalise_schemes(sents)
    assert report.scheme == "BIOES" and report.n_repaired == 1
    assert sents[0].tags == ["B-PER", "O"] and sents[1].tags == ["B-LOC"]
    with pytest.raises(ToolkitInputError, match="tagging scheme"):
        normalise_schemes(sents, scheme="BILOU2")


def test_spans_to_bio_whitespace_and_char():
    assert spans_to_bio("北京 欢迎你", [{"start": 0, "end": 2, "label": "LOC"}]) == (
        list("北京欢迎你"),
        ["B-LOC", "I-LOC", "O", "O", "O"],
    )


def test_hold_out_validation_is_by_content():
    from toolkit import ClassificationExample, NERSentence
    from toolkit.finetune import hold_out_validation

    train = [NERSentence(list(f"第{i}句话"), ["O"] * (3 + len(str(i))), line=i) for i in range(400)]
    train += [NERSentence(list("重复的句子"), ["O"] * 5, line=1000 + i) for i in range(5)]  # duplicates
    split = hold_out_validation({"train": train, "test": ["kept as is"]}, 0.2)
    assert split["test"] == ["kept as is"] and len(split["train"]) + len(split["validation"]) == len(train)
    assert 40 < len(split["validation"]) < 120  # about 20%
    # The same examples in another order: the same split (not positional).
    again = hold_out_validation({"train": train[::-1]}, 0.2)
    assert {s.line for s in again["validation"]} == {s.line for s in split["validation"]}
    # Duplicates all land on one side, so validation never scores a sentence trained on.
    seen = {tuple(s.tokens) for s in split["train"]}
    assert not any(tuple(s.tokens) in seen for s in split["validation"])
    # Classification examples hash on text and pair, not on labels.
    pos = [ClassificationExample(f"review {i}", ["pos"]) for i in range(200)]
    neg = [ClassificationExample(f"review {i}", ["neg"]) for i in range(200)]
    pairs = [ClassificationExample(f"review {i}", ["pos"], text_pair="why") for i in range(200)]
    held = [[e.text for e in hold_out_validation({"train": x}, 0.3)["validation"]] for x in (pos, neg, pairs)]
    assert held[0] == held[1] and 30 < len(held[0]) < 90
    assert held[2] != held[0] and 30 < len(held[2]) < 90


@pytest.mark.parametrize(
    "data, fraction, message",
    [
        ({"train": [1]}, 0.0, r"in \(0, 1\)"),
        ({"train": [1]}, 1.0, r"in \(0, 1\)"),
        ({"train": [1], "validation": [2]}, 0.1, "not both"),
    ],
)
def test_hold_out_validation_errors(data, fraction, message):
    from toolkit.finetune import hold_out_validation

    with pytest.raises(ToolkitInputError, match=message):
        hold_out_validation(data, fraction)


def test_hold_out_validation_refuses_an_empty_side():
    from toolkit import NERSentence
    from toolkit.finetune import hold_out_validation

    with pytest.raises(ToolkitInputError, match="both must be non-empty"):
        hold_out_validation({"train": [NERSentence(["a"], ["O"])]}, 0.01, source="one.txt")
