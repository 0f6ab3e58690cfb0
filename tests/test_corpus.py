from __future__ import annotations

import json

import datasets
import pytest

from toolkit import ToolkitInputError, load_corpus, resolve_files
from toolkit._io import scan_jsonl_file, scan_text_file
from toolkit.pretrain import iter_texts


@pytest.fixture()
def tree(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "b").mkdir()
    (tmp_path / "a" / "one.txt").write_text("first doc\n\nsecond doc\n", encoding="utf-8")
    (tmp_path / "a" / "b" / "two.txt").write_text("第三篇文档\n", encoding="utf-8")
    (tmp_path / "a" / "b" / "skip.md").write_text("not a corpus file\n", encoding="utf-8")
    with open(tmp_path / "docs.jsonl", "w", encoding="utf-8") as fh:
        for i in range(4):
            fh.write(json.dumps({"body": f"json doc {i}", "id": i}) + "\n")
    return tmp_path


def test_resolve_files_directory_recursive_with_extension_filter(tree):
    files = resolve_files([str(tree / "a")], extensions=[".txt"])
    assert sorted(p.name for p in files) == ["one.txt", "two.txt"]


def test_resolve_files_glob_and_dedup(tree):
    files = resolve_files([str(tree / "a" / "*.txt"), str(tree / "a" / "one.txt")])
    assert [p.name for p in files] == ["one.txt"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("missing.txt", "does not exist"),
        ("nomatch*.txt", "matches no file"),
        ("emptydir", "contains no file"),
    ],
)
def test_resolve_files_errors(tmp_path, spec, message):
    (tmp_path / "emptydir").mkdir()
    with pytest.raises(ToolkitInputError, match=message):
        resolve_files([str(tmp_path / spec)])


def test_scan_reports_byte_offset_and_line_of_invalid_utf8(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes("good line\nsecond ok\nbad \xff here\n".encode("latin-1"))
    with pytest.raises(ToolkitInputError, match=r"bad.txt: invalid UTF-8 at byte offset 24 \(line 3\)"):
        scan_text_file(path)
    scan = scan_text_file(path, encoding_errors="replace")
    assert scan.n_replaced == 1 and scan.n_lines == 3


def test_scan_rejects_empty_whitespace_and_binary(tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "blank.txt").write_text("\n  \n", encoding="utf-8")
    (tmp_path / "bin.txt").write_bytes(b"abc\x00def")
    with pytest.raises(ToolkitInputError, match="empty"):
        scan_text_file(tmp_path / "empty.txt")
    with pytest.raises(ToolkitInputError, match="only whitespace"):
        scan_text_file(tmp_path / "blank.txt")
    with pytest.raises(ToolkitInputError, match="NUL byte at byte offset 3"):
        scan_text_file(tmp_path / "bin.txt")


def test_jsonl_errors_name_file_and_line(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"text": "ok"}\n{"txt": "wrong key"}\n', encoding="utf-8")
    with pytest.raises(ToolkitInputError, match=r"x.jsonl:2: no field 'text'"):
        scan_jsonl_file(path, text_field="text")
    path.write_text('{"text": "ok"}\n{"text": 3}\n', encoding="utf-8")
    with pytest.raises(ToolkitInputError, match=r"x.jsonl:2: field 'text' is int"):
        scan_jsonl_file(path, text_field="text")
    path.write_text('{"text": "ok"}\nnot json\n', encoding="utf-8")
    with pytest.raises(ToolkitInputError, match=r"x.jsonl:2: not valid JSON"):
        scan_jsonl_file(path, text_field="text")


def test_load_corpus_mixes_text_and_jsonl_and_skips_blank_lines(tree):
    corpus, report = load_corpus(
        train_files=[str(tree / "a"), str(tree / "docs.jsonl")], text_field="body", extensions=[".txt"]
    )
    texts = corpus["train"]["text"]
    assert sorted(texts) == sorted(
        ["first doc", "second doc", "第三篇文档"] + [f"json doc {i}" for i in range(4)]
    )
    assert report.n_empty_lines == 1 and len(report.files) == 3


def test_validation_split_is_deterministic_and_disjoint(corpus_dir):
    a, _ = load_corpus(train_files=[str(corpus_dir / "train.txt")], validation_split=0.2)
    b, _ = load_corpus(train_files=[str(corpus_dir / "train.txt")], validation_split=0.2)
    assert a["validation"]["text"] == b["validation"]["text"]
    assert not set(a["validation"]["text"]) & set(a["train"]["text"])
    total = len(a["train"]) + len(a["validation"])
    assert 0.1 < len(a["validation"]) / total < 0.3


def test_streaming_gives_same_documents_and_split(corpus_dir):
    eager, _ = load_corpus(train_files=[str(corpus_dir / "train.txt")], validation_split=0.2)
    lazy, _ = load_corpus(train_files=[str(corpus_dir / "train.txt")], validation_split=0.2, streaming=True)
    assert isinstance(lazy["train"], datasets.IterableDataset)
    assert list(iter_texts(lazy["validation"])) == eager["validation"]["text"]
    assert list(iter_texts(lazy["train"], limit=5)) == eager["train"]["text"][:5]


def test_max_samples_and_validation_files(corpus_dir):
    corpus, _ = load_corpus(
        train_files=[str(corpus_dir / "train.txt")],
        validation_files=[str(corpus_dir / "valid.txt")],
        max_train_samples=10,
        max_eval_samples=3,
    )
    assert len(corpus["train"]) == 10 and len(corpus["validation"]) == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of"),
        ({"validation_split": 0.1, "validation_files": ["x"]}, "mutually exclusive"),
        ({"validation_split": 1.5}, r"must be in \[0, 1\)"),
    ],
)
def test_conflicting_options(corpus_dir, kwargs, message):
    if kwargs:
        kwargs = {"train_files": [str(corpus_dir / "train.txt")], **kwargs}
    with pytest.raises(ToolkitInputError, match=message):
        load_corpus(**kwargs)


def test_same_file_for_train_and_validation_is_refused(corpus_dir):
    path = str(corpus_dir / "train.txt")
    with pytest.raises(ToolkitInputError, match="both training and validation"):
        load_corpus(train_files=[path], validation_files=[path])


def test_conll_files_add_their_sentences_as_text(tree):
    zh = tree / "msra_like.txt"
    zh.write_text("当\tO\n希\tO\n望\tO\n\n北\tB-LOC\n京\tI-LOC\n，\tO\nA\tO\nI\tO\n", encoding="utf-8")
    en = tree / "conll_like.txt"
    en.write_text(
        "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n.  . O O\n", encoding="utf-8"
    )
    corpus, report = load_corpus(
        train_files=[str(tree / "docs.jsonl")], conll_files=[str(zh), str(en)], text_field="body"
    )
    texts = corpus["train"]["text"]
    assert texts[:4] == [f"json doc {i}" for i in range(4)]
    assert texts[4:] == ["当希望", "北京，A I", "EU rejects ."]
    assert report.as_dict()["n_files"] == 3
    alone, _ = load_corpus(conll_files=[str(zh)], streaming=True)
    assert list(iter_texts(alone["train"])) == ["当希望", "北京，A I"]
    with pytest.raises(ToolkitInputError, match="both as text and as CoNLL"):
        load_corpus(train_files=[str(zh)], conll_files=[str(zh)])
    with pytest.raises(ToolkitInputError, match="exactly one of"):
        load_corpus(conll_files=[str(zh)], dataset_name="some/hub_dataset")
