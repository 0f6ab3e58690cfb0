"""Every reader against a generated set of bad and unusual inputs: each case ends in a clear error that names
the file (and line, where there is one) or in a correct result, with every record in accounted for.

The inputs are written here, per format: text (``.txt``: pretraining, extraction, word lists), CSV and JSON
Lines (classification; JSON Lines also for pretraining and extraction) and CoNLL (NER; pretraining text).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from toolkit import (
    ToolkitInputError,
    join_tokens,
    load_corpus,
    read_classification,
    read_conll,
    read_ner_jsonl,
    read_texts,
    read_word_list,
)

# Lines a user's text really holds: emoji with skin tone, a ZWJ family, the line and paragraph separators
# (not line ends in any of our formats), combining marks, full-width forms, right-to-left scripts, NEL, tabs.
ODD_UNICODE = [
    "emoji 😀👍🏽 ok",
    "family 👨\u200d👩\u200d👧 ZWJ",
    "line\u2028separator inside",
    "paragraph\u2029separator inside",
    "combining e\u0301 and a\u0308",
    "ＦＵＬＬ－ＷＩＤＴＨ　全角字符",
    "RTL עברית مرحبا",
    "NEL\x85inside",
    "tab\tinside",
]
LEGACY = {  # encoding -> a line in it that is not UTF-8, and the encoding the message must suggest
    "gbk": ("今天天气很好，我们去公园", "gb18030"),
    "big5": ("台灣的天氣很好", "big5"),
    "shift_jis": ("日本語のテキストです", "shift_jis"),
    "cp1251": ("Привет мир", "windows-1251"),
    "latin-1": ("café crème brûlée", "windows-1252"),
}


def _csv(lines: list[str]) -> str:
    return "text,label\n" + "".join(f'"{t.replace(chr(34), chr(34) * 2)}",pos\n' for t in lines)


def _jsonl(lines: list[str]) -> str:
    return "".join(json.dumps({"text": t, "label": "pos"}, ensure_ascii=False) + "\n" for t in lines)


def _conll(lines: list[str]) -> str:
    return "".join("".join(f"{w}\tO\n" for w in t.split()) + "\n" for t in lines)


FORMATS = {
    ".txt": lambda lines: "".join(t + "\n" for t in lines),
    ".csv": _csv,
    ".jsonl": _jsonl,
    ".conll": _conll,
}

# What each reader returns as records, for counting: one per line / example / sentence.
READERS = {
    ".txt": {
        "extraction (read_texts)": lambda p, **kw: read_texts([str(p)], **kw)[0],
        "pretraining (load_corpus)": lambda p, **kw: list(
            load_corpus(train_files=[str(p)], **kw)[0]["train"]["text"]
        ),
        "pretraining, streamed": lambda p, **kw: [
            r["text"] for r in load_corpus(train_files=[str(p)], streaming=True, **kw)[0]["train"]
        ],
        "word list": lambda p, **kw: read_word_list(p, **{k: v for k, v in kw.items() if k == "encoding"}),
    },
    ".csv": {"classification": lambda p, **kw: [e.text for e in read_classification(p, **kw)]},
    ".jsonl": {
        "classification": lambda p, **kw: [e.text for e in read_classification(p, **kw)],
        "pretraining (load_corpus)": lambda p, **kw: list(
            load_corpus(train_files=[str(p)], **kw)[0]["train"]["text"]
        ),
        "extraction (read_texts)": lambda p, **kw: read_texts([str(p)], extensions=[".jsonl"], **kw)[0],
    },
    ".conll": {
        "NER (read_conll)": lambda p, **kw: [" ".join(s.tokens) for s in read_conll(p, **kw)],
        "pretraining text": lambda p, **kw: list(load_corpus(conll_files=[str(p)], **kw)[0]["train"]["text"]),
    },
}
CASES = [(fmt, name) for fmt, readers in READERS.items() for name in readers]


def _write(tmp_path: Path, stem: str, fmt: str, data: bytes) -> Path:
    path = tmp_path / f"{stem}{fmt}"
    path.write_bytes(data)
    return path


def _expected(lines: list[str], fmt: str, reader: str) -> list[str]:
    """What a reader should give back for ``lines``: CoNLL sentences are tokens joined by spaces (the
    pretraining reader joins Chinese tokens without them); a word list strips each line."""
    if fmt == ".conll":
        # the pretraining reader joins tokens back into text CJK-aware; the NER reader keeps the tokens
        return [(join_tokens if reader == "pretraining text" else " ".join)(t.split()) for t in lines]
    if reader == "word list":
        return [t.strip() for t in lines]
    return lines


@pytest.mark.parametrize(("fmt", "reader"), CASES)
def test_odd_unicode_reads_back_exactly_one_record_per_line(fmt, reader, tmp_path):
    lines = ODD_UNICODE if fmt != ".conll" else [t for t in ODD_UNICODE if "\x85" not in t]
    path = _write(tmp_path, "odd", fmt, FORMATS[fmt](lines).encode("utf-8"))
    got = READERS[fmt][reader](path)
    assert got == _expected(lines, fmt, reader)


@pytest.mark.parametrize(("fmt", "reader"), CASES)
def test_excel_bom_and_crlf_are_read_silently(fmt, reader, tmp_path):
    lines = ["first line", "北京是首都", "third"]
    data = ("\ufeff" + FORMATS[fmt](lines).replace("\n", "\r\n")).encode("utf-8")
    assert READERS[fmt][reader](_write(tmp_path, "excel", fmt, data)) == _expected(lines, fmt, reader)


@pytest.mark.parametrize("encoding", LEGACY)
@pytest.mark.parametrize(("fmt", "reader"), CASES)
def test_legacy_encodings_are_named_and_read_with_encoding(fmt, reader, encoding, tmp_path):
    line, suggested = LEGACY[encoding]
    lines = ["plain ascii first", line]
    path = _write(tmp_path, "legacy", fmt, FORMATS[fmt](lines).encode(encoding))
    with pytest.raises(ToolkitInputError) as err:
        READERS[fmt][reader](path)
    message = str(err.value)
    first_bad = next(i for i, raw in enumerate(path.read_bytes().split(b"\n"), 1) if not raw.isascii())
    assert message.startswith(str(path)) and f"(line {first_bad})" in message
    assert f"--encoding {suggested}" in message and "iconv" in message
    assert READERS[fmt][reader](path, encoding=suggested) == _expected(lines, fmt, reader)


@pytest.mark.parametrize(("fmt", "reader"), [c for c in CASES if c[1] != "word list"])
def test_replace_keeps_every_record_and_counts_the_bad_bytes(fmt, reader, tmp_path, caplog):
    lines = ["good line", "bad \udcff byte", "another good line"]
    data = FORMATS[fmt](lines).encode("utf-8", "surrogateescape")  # "\udcff" -> the lone byte 0xff
    path = _write(tmp_path, "bad", fmt, data)
    with pytest.raises(ToolkitInputError, match=r"invalid UTF-8 at byte offset \d+ \(line \d\)"):
        READERS[fmt][reader](path)
    with caplog.at_level(logging.WARNING):
        got = READERS[fmt][reader](path, encoding_errors="replace")
    assert got == _expected([t.replace("\udcff", "\ufffd") for t in lines], fmt, reader)


@pytest.mark.parametrize(("fmt", "reader"), CASES)
@pytest.mark.parametrize(
    ("kind", "data", "message"),
    [
        ("utf16", "a line\n".encode("utf-16"), "looks like UTF-16 text, not UTF-8"),
        ("png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "binary file"),
        ("nul", b"text\x00more\n", "binary"),
        ("zip", b"PK\x03\x04" + b"\x00" * 40, "binary file"),
        ("empty", b"", r"empty|no example|no sentence|holds no text"),
        ("blank", b" \n\t\n\n", r"only whitespace|empty|no example|no sentence|holds no text|no header"),
    ],
)
def test_unreadable_files_are_named_for_what_they_are(fmt, reader, kind, data, message, tmp_path):
    path = _write(tmp_path, kind, fmt, data)
    with pytest.raises(ToolkitInputError, match=message) as err:
        READERS[fmt][reader](path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize(("fmt", "reader"), [c for c in CASES if c[1] != "word list"])
def test_a_huge_line_is_one_record(fmt, reader, tmp_path):
    long = " ".join(f"w{i}" for i in range(150_000))  # ~1 MB on one line (one CSV field, one JSON string)
    lines = ["short", long, "short again"]
    got = READERS[fmt][reader](_write(tmp_path, "huge", fmt, FORMATS[fmt](lines).encode("utf-8")))
    assert got == _expected(lines, fmt, reader)


def test_broken_structure_is_named_by_line(tmp_path):
    broken = tmp_path / "broken.jsonl"
    broken.write_text(_jsonl(["a", "b"]) + '{"text": "c", "label": \n' + _jsonl(["d"]), encoding="utf-8")
    for read in (
        read_classification,
        lambda p: load_corpus(train_files=[str(p)]),
        lambda p: read_texts([str(p)]),
    ):
        with pytest.raises(ToolkitInputError, match=r"broken.jsonl:3: not valid JSON"):
            read(broken)
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("text,label\nok,pos\nnot, quoted,pos\n", encoding="utf-8")
    with pytest.raises(ToolkitInputError, match=r"ragged.csv:3: 3 fields, but the header has 2"):
        read_classification(ragged)
    conll = tmp_path / "ragged.conll"
    conll.write_text("北\tB-LOC\n京\tI-LOC\n\nNew York\tB-LOC extra\nx\tO\n", encoding="utf-8")
    assert [s.tokens for s in read_conll(conll)][0] == ["北", "京"]  # tabs keep "New York B-LOC extra" whole
    spaced = tmp_path / "spaced.conll"
    spaced.write_text("John B-PER\nNew York B-LOC\n", encoding="utf-8")
    with pytest.raises(
        ToolkitInputError, match=r"spaced.conll:2: 3 columns, but the file's other lines have 2"
    ):
        read_conll(spaced)


def test_lone_surrogates_in_json_do_not_reach_the_tokenizer(tmp_path, tiny_mlm_dir):
    """JSON may escape a lone surrogate ("\\udcff"); the Rust tokenizers reject it with a TypeError."""
    from recipes import train_classifier

    data = tmp_path / "s.jsonl"
    rows = [{"text": f"text {i} \udcff here", "label": "ab"[i % 2]} for i in range(16)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    ner = tmp_path / "n.jsonl"
    ner.write_text(json.dumps({"tokens": ["a\udcff", "b"], "tags": ["B-PER", "O"]}) + "\n", encoding="utf-8")
    assert read_ner_jsonl(ner)[0].tokens == ["a\udcff", "b"]
    results = train_classifier.main(
        [
            "--model_name_or_path",
            str(tiny_mlm_dir),
            "--train_file",
            str(data),
            "--output_dir",
            str(tmp_path / "out"),
            "--max_steps",
            "1",
            "--report_to",
            "none",
            "--save_strategy",
            "no",
            "--disable_tqdm",
            "true",
        ]  # fmt: skip
    )
    assert results["train"]["train_loss"] > 0


def test_every_recipe_names_the_encoding_and_reads_with_it(tiny_mlm_dir, corpus_dir, tmp_path):
    """A GBK file through each training recipe: refused with the option to pass, then read with it."""
    from conftest import tiny_recipe_flags

    from recipes import extract_vectors, pretrain, train_classifier, train_ner
    from toolkit.demo import write_demo_labelled

    gbk = tmp_path / "gbk"
    gbk.mkdir()
    for name in ("train.txt", "valid.txt"):  # one --encoding for every input of a run
        (gbk / name).write_bytes((corpus_dir / name).read_text(encoding="utf-8").encode("gb18030"))
    data = write_demo_labelled(tmp_path / "labelled", n=40)
    for name in ("topic_train", "ner_train"):
        raw = data[name].read_text(encoding="utf-8")
        (gbk / data[name].name).write_bytes(raw.encode("gb18030"))
    quick = ["--max_steps", "1", "--report_to", "none", "--save_strategy", "no", "--disable_tqdm", "true"]
    runs = {
        "pretrain": lambda *extra: pretrain.main(
            [*tiny_recipe_flags(gbk, tmp_path / "p", "--max_steps", "1"), *extra]
        ),
        "train_classifier": lambda *extra: train_classifier.main(
            ["--model_name_or_path", str(tiny_mlm_dir), "--train_file", str(gbk / data["topic_train"].name)]
            + ["--output_dir", str(tmp_path / "c"), *quick, *extra]
        ),
        "train_ner": lambda *extra: train_ner.main(
            ["--model_name_or_path", str(tiny_mlm_dir), "--train_file", str(gbk / data["ner_train"].name)]
            + ["--output_dir", str(tmp_path / "n"), "--max_length", "16", "--stride", "4", *quick, *extra]
        ),
    }
    runs["extract_vectors"] = lambda *extra: extract_vectors.main(
        [
            "--checkpoint",
            str(tiny_mlm_dir),
            "--input",
            str(gbk / "train.txt"),
            "--output",
            str(tmp_path / "v.vec"),
        ]
        + [a for a in extra if a != "true"]
    )
    for recipe, run in runs.items():
        with pytest.raises(ToolkitInputError, match="reads as GB18030: pass --encoding gb18030"):
            run()
        overwrite = "--overwrite" if recipe == "extract_vectors" else "--overwrite_output_dir"
        assert run("--encoding", "gb18030", overwrite, "true"), recipe
