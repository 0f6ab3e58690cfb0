"""Issue #39: input faults that used to lose data silently or give misleading advice.

Each test feeds one fault and pins what the user now sees: an error naming file and line with the remedy,
a warning with a count, or a count in a report.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

from toolkit import (
    ToolkitInputError,
    encode_sentences,
    load_corpus,
    load_encoder,
    read_classification,
    read_conll,
    read_ner_jsonl,
    read_texts,
    read_word_list,
    train_wordpiece_tokenizer,
)
from toolkit._io import check_text_file, decode_text_bytes, scan_jsonl_file
from toolkit._tagging import UNKNOWN_WORD_WARN_SHARE, AlignmentAudit, encode_sentence, word_pieces

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10" + bytes(range(256))
GB18030_LINE = json.dumps({"text": "北京是中国的首都", "label": "geo"}, ensure_ascii=False).encode("gb18030")


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------------ parsers that lost data silently
def test_conll_line_with_an_extra_column_is_refused(tmp_path):
    path = _write(tmp_path / "c.txt", "I\tO\nlove\tO\n\nNew York B-LOC\nis O\nbig O\n")
    with pytest.raises(ToolkitInputError) as err:
        read_conll(path)
    assert str(err.value) == (
        f"{path}:4: 3 columns, but the file's other lines have 2 (e.g. line 1): 'New York B-LOC'. "
        "A token containing a space? Separate the columns with tabs (token<TAB>tag), or fix the line"
    )


def test_conll_odd_first_line_is_the_one_named(tmp_path):
    path = _write(tmp_path / "c.txt", "New York B-LOC\nis O\nbig O\n\nyes O\n")
    with pytest.raises(ToolkitInputError, match=r"c.txt:1: 3 columns, but the file's other lines have 2"):
        read_conll(path)


def test_conll_consistent_columns_and_tab_separated_spaces_still_read(tmp_path):
    conll2003 = _write(tmp_path / "a.txt", "-DOCSTART- -X- O O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n")
    assert read_conll(conll2003)[0].tags == ["B-ORG", "O"]
    tabbed = _write(tmp_path / "b.txt", "New York\tB-LOC\nis\tO\n")
    assert read_conll(tabbed)[0].tokens == ["New York", "is"]


def test_csv_row_with_more_fields_than_the_header_is_refused(tmp_path):
    path = _write(tmp_path / "a.csv", "text,label\nhello, world,pos\nbye,neg\n")
    with pytest.raises(ToolkitInputError) as err:
        read_classification(path)
    assert str(err.value) == (
        f'{path}:2: 3 fields, but the header has 2 (text, label). A text containing a comma? Quote the field: "like, this"'
    )


def test_csv_and_tsv_rows_with_fewer_fields_are_refused(tmp_path):
    path = _write(tmp_path / "a.csv", "text,label\nok,pos\nno label here\n")
    with pytest.raises(ToolkitInputError, match=r"a.csv:3: 1 field, but the header has 2 \(text, label\)"):
        read_classification(path)
    tsv = _write(tmp_path / "a.tsv", "text\tlabel\none\ttwo\tthree\n")
    with pytest.raises(ToolkitInputError, match=r"a.tsv:2: 3 fields, .* A text containing a tab\? Quote"):
        read_classification(tsv)


def test_quoted_comma_and_byte_order_mark_still_read(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(b'\xef\xbb\xbftext,label\n"hello, world",pos\n')
    assert [(e.text, e.labels) for e in read_classification(path)] == [("hello, world", ["pos"])]


def test_jsonl_list_label_needs_multi_label(tmp_path):
    path = _write(tmp_path / "a.jsonl", '{"text": "x", "label": "a"}\n{"text": "y", "label": ["a", "b"]}\n')
    with pytest.raises(ToolkitInputError) as err:
        read_classification(path)
    assert str(err.value) == (
        f"{path}:2: label ['a', 'b'] is a list: several labels per example need --multi_label "
        "(multi_label=True); for one label per example give a single value"
    )
    assert read_classification(path, multi_label=True)[1].labels == ["a", "b"]


def test_pretraining_jsonl_counts_empty_texts(tmp_path):
    path = _write(tmp_path / "a.jsonl", '{"text": "one"}\n{"text": ""}\n\n{"text": "  "}\n{"text": "two"}\n')
    corpus, report = load_corpus(train_files=[str(path)])
    assert corpus["train"]["text"] == ["one", "two"]
    assert report.as_dict()["n_empty_lines_skipped"] == 3  # a blank line and two blank texts


@pytest.fixture(scope="module")
def encoder(tiny_mlm_dir):
    return load_encoder(tiny_mlm_dir)


def test_encode_sentences_counts_and_reports_truncation(encoder, caplog):
    report: dict = {}
    with caplog.at_level(logging.WARNING, logger="toolkit._encoder"):
        vectors = encode_sentences(
            encoder,
            ["北京是中国的首都。" * 4, "小明", "paris is the capital of france ."],
            max_length=8,
            report=report,
        )
    assert vectors.shape == (3, encoder.model.config.hidden_size)
    assert report == {"n_sentences": 3, "n_truncated": 2, "max_length": 8}
    assert (
        "2 of 3 sentences are longer than the model's window of 8 tokens and were truncated: only their "
        "beginning is encoded. Split long texts (e.g. one sentence per line)"
    ) in caplog.text
    caplog.clear()
    encode_sentences(encoder, ["小明"], report=report)
    assert report["n_truncated"] == 0 and "truncated" not in caplog.text


def test_ner_audit_warns_when_many_words_are_unknown(tokenizer, caplog):
    audit = AlignmentAudit()
    encode_sentence(list("猫狗在北京"), None, tokenizer, label2id=None, max_length=64, audit=audit)
    assert (audit.n_words, audit.n_words_unk) == (5, 2)
    with caplog.at_level(logging.WARNING, logger="toolkit._tagging"):
        assert audit.warn_if_unknown("train")
    assert (
        "NER train: 2 of 5 words (40.0%) contain [UNK] pieces (e.g. '猫', '狗'): the tokenizer's vocabulary "
        "does not cover them, so the model sees them all alike. Use a vocabulary that covers this text: "
        "pretrain on it (recipes/pretrain.py, e.g. with --conll_files) or use another checkpoint"
    ) in caplog.text
    caplog.clear()
    covered = AlignmentAudit()
    encode_sentence(list("北京是中国的首都"), None, tokenizer, label2id=None, max_length=64, audit=covered)
    assert not covered.warn_if_unknown("validation") and not caplog.text


def test_demo_ner_data_and_showcase_are_covered_by_the_demo_vocabulary(tmp_path):
    from recipes import demo
    from toolkit.config import TokenizerArguments
    from toolkit.demo import write_demo_corpus, write_demo_labelled

    config = yaml.safe_load((ROOT / "recipes" / "configs" / "pretrain" / "demo.yaml").read_text())
    corpus = write_demo_corpus(tmp_path / "corpus")
    tok = train_wordpiece_tokenizer(
        corpus["train"].read_text(encoding="utf-8").splitlines(),
        vocab_size=config["vocab_size"],
        min_frequency=config.get("min_frequency", TokenizerArguments.min_frequency),
        show_progress=False,
    )
    for text in demo.NER_EXAMPLES:
        assert tok.unk_token not in tok.tokenize(text), text
    audit = AlignmentAudit()
    for sentence in read_conll(write_demo_labelled(tmp_path / "labelled")["ner_train"]):
        audit.n_words += len(sentence.tokens)
        word_pieces(sentence.tokens, tok, audit)
    assert audit.n_words > 1000 and audit.unknown_share < UNKNOWN_WORD_WARN_SHARE / 10


# ----------------------------------------------------------------------------------- misleading messages
def test_non_utf8_files_name_the_place_the_likely_encoding_and_every_remedy(tmp_path):
    jsonl = tmp_path / "gb.jsonl"
    jsonl.write_bytes(b'{"text": "ok", "label": "geo"}\n' + GB18030_LINE + b"\n")
    with pytest.raises(ToolkitInputError) as err:
        read_classification(jsonl)
    assert str(err.value) == (
        f"{jsonl}: invalid UTF-8 at byte offset 41 (line 2): invalid start byte. The file is not UTF-8: "
        f"this line reads as GB18030: pass --encoding gb18030, or convert the file, e.g. iconv -f GB18030 -t "
        f"UTF-8 {jsonl} > {tmp_path / 'gb.utf8.jsonl'}; or pass --encoding_errors replace to replace bad bytes "
        "with U+FFFD (they are counted)"
    )
    conll = tmp_path / "gb.txt"
    conll.write_bytes("北\tB-LOC\n京\tI-LOC\n".encode("gb18030"))
    readers = (
        read_conll,
        lambda p: read_classification(p, file_format="tsv"),
        lambda p: read_texts([str(p)]),
    )
    for read in readers:
        with pytest.raises(
            ToolkitInputError, match=r"gb.txt: invalid UTF-8 at byte offset 0 \(line 1\)"
        ) as err:
            read(conll)
        assert "--encoding gb18030" in str(err.value) and "--encoding_errors replace" in str(err.value)
    text = tmp_path / "gb.text"
    text.write_bytes("北京\n".encode("gb18030"))
    with pytest.raises(ToolkitInputError, match="pass --encoding gb18030"):
        load_corpus(train_files=[str(text)], extensions=[".text"])
    latin = tmp_path / "fr.csv"
    latin.write_bytes("text,label\ncafé crème,pos\n".encode("latin-1"))  # not taken for Chinese
    with pytest.raises(ToolkitInputError, match="reads as Windows-1252: pass --encoding windows-1252"):
        read_classification(latin)


def test_every_reader_takes_an_encoding(tmp_path):
    gb = "gb18030"
    csv_file = tmp_path / "a.csv"
    csv_file.write_bytes("text,label\n今天天气很好,pos\n".encode(gb))
    conll = tmp_path / "a.conll"
    conll.write_bytes("北\tB-LOC\n京\tI-LOC\n".encode(gb))
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_bytes('{"text": "北京是首都", "label": "geo"}\n'.encode(gb))
    ner_jsonl = tmp_path / "n.jsonl"
    ner_jsonl.write_bytes('{"tokens": ["北", "京"], "tags": ["B-LOC", "I-LOC"]}\n'.encode(gb))
    words = tmp_path / "w.txt"
    words.write_bytes("北京\n上海\n".encode(gb))
    assert read_classification(csv_file, encoding=gb)[0].text == "今天天气很好"
    assert read_classification(jsonl, encoding=gb)[0].text == "北京是首都"
    assert read_conll(conll, encoding=gb)[0].tokens == ["北", "京"]
    assert read_ner_jsonl(ner_jsonl, encoding=gb)[0].tokens == ["北", "京"]
    assert read_word_list(words, encoding=gb) == ["北京", "上海"]
    assert read_texts([str(words), str(jsonl)], extensions=[".txt", ".jsonl"], encoding=gb)[0] == [
        "北京",
        "上海",
        "北京是首都",
    ]
    for streaming in (False, True):
        corpus, _ = load_corpus(
            train_files=[str(words), str(jsonl)], conll_files=[str(conll)], encoding=gb, streaming=streaming
        )
        assert sorted(row["text"] for row in corpus["train"]) == sorted(
            ["北京", "上海", "北京是首都", "北京"]
        )
    with pytest.raises(ToolkitInputError, match="cannot be read line by line; convert them to UTF-8"):
        read_classification(csv_file, encoding="utf-16")
    with pytest.raises(ToolkitInputError, match="not an encoding Python knows"):
        read_conll(conll, encoding="gbk2")


def test_encoding_errors_replace_works_for_every_format_and_counts(tmp_path, caplog):
    bad = "\xff".encode("latin-1")
    csv_file = tmp_path / "a.csv"
    csv_file.write_bytes(b"text,label\nab" + bad + b"c,pos\n")
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_bytes(b'{"text": "ab' + bad + b'c", "label": "pos"}\n')
    conll = tmp_path / "a.conll"
    conll.write_bytes(b"ab" + bad + b"c\tO\n")
    with caplog.at_level("WARNING"):
        assert read_classification(csv_file, encoding_errors="replace")[0].text == "ab\ufffdc"
        assert read_classification(jsonl, encoding_errors="replace")[0].text == "ab\ufffdc"
        assert read_conll(conll, encoding_errors="replace")[0].tokens == ["ab\ufffdc"]
        assert read_texts([str(conll)], extensions=[".conll"], encoding_errors="replace")[0] == [
            "ab\ufffdc\tO"
        ]
    assert caplog.text.count("1 byte(s) are not UTF-8 and were replaced") == 3
    _, report = load_corpus(train_files=[str(jsonl)], text_field="text", encoding_errors="replace")
    assert report.n_replaced == 1


def test_excel_csv_bom_crlf_and_huge_fields_and_missing_labels(tmp_path):
    excel = tmp_path / "excel.csv"
    excel.write_bytes('\ufefftext,label\r\n"a, b",pos\r\nc,neg\r\n'.encode("utf-8"))
    assert [(e.text, e.labels) for e in read_classification(excel)] == [("a, b", ["pos"]), ("c", ["neg"])]
    huge = tmp_path / "huge.tsv"
    huge.write_text("text\tlabel\n" + "word " * 100_000 + "\tpos\n", encoding="utf-8")  # 500 KB field
    assert len(read_classification(huge)[0].text) == 500_000
    for value in ("NaN", "null"):
        missing = tmp_path / f"{value}.jsonl"
        missing.write_text(
            f'{{"text": "ok", "label": "a"}}\n{{"text": "hi", "label": {value}}}\n', encoding="utf-8"
        )
        with pytest.raises(ToolkitInputError, match=rf"{value}.jsonl:2: (missing|empty) label"):
            read_classification(missing)
    no_text = tmp_path / "no_text.jsonl"
    no_text.write_text('{"text": NaN, "label": "a"}\n', encoding="utf-8")
    with pytest.raises(ToolkitInputError, match="no_text.jsonl:1: empty or non-text 'text'"):
        read_classification(no_text)


def test_pretraining_conll_files_honour_encoding_errors_replace(tmp_path):
    conll = tmp_path / "ner.txt"
    conll.write_bytes(b"ab\xffc\tO\nd\tO\n")
    corpus, report = load_corpus(conll_files=[str(conll)], encoding_errors="replace")
    assert corpus["train"]["text"] == ["ab\ufffdc d"] and report.n_replaced == 1


def test_binary_files_are_called_binary(tmp_path):
    png = tmp_path / "photo.png"
    png.write_bytes(PNG)
    expected = (
        f"{png}: looks like a binary file (a PNG image), not text (invalid UTF-8 at byte offset 0, line 1)"
    )
    for read in (
        lambda p: read_classification(p, file_format="jsonl"),
        lambda p: read_conll(p),
        lambda p: load_corpus(train_files=[str(p)]),
        lambda p: read_texts([str(p)]),
        read_word_list,
    ):
        with pytest.raises(ToolkitInputError) as err:
            read(png)
        assert str(err.value) == expected
    with pytest.raises(ToolkitInputError, match=r"standard input: looks like a binary file \(a PNG image\)"):
        decode_text_bytes(PNG, name="standard input")
    gz = tmp_path / "train.jsonl"
    gz.write_bytes(b"\x1f\x8b\x08\x00" + bytes(range(128, 256)))
    with pytest.raises(ToolkitInputError, match=r"a gzip archive: decompress it first"):
        read_ner_jsonl(gz)


def test_utf16_is_named_with_its_conversion(tmp_path):
    path = tmp_path / "u.csv"
    path.write_bytes("text,label\nhi,pos\n".encode("utf-16"))
    with pytest.raises(ToolkitInputError) as err:
        check_text_file(path)
    assert str(err.value) == (
        f"{path}: looks like UTF-16 text, not UTF-8 (NUL byte at byte offset 3, line 1): convert it, "
        f"e.g. iconv -f UTF-16 -t UTF-8 {path} > {tmp_path / 'u.utf8.csv'}"
    )


def test_a_json_array_is_told_apart_from_broken_json(tmp_path):
    records = [{"text": "a", "label": "x"}, {"text": "b", "label": "y"}]
    pretty = _write(tmp_path / "pretty.jsonl", json.dumps(records, indent=2))
    one_line = _write(tmp_path / "one.json", json.dumps(records))
    for path in (pretty, one_line):
        with pytest.raises(ToolkitInputError) as err:
            read_classification(path)
        assert str(err.value) == (
            f"{path}:1: this file looks like one JSON array ([{{...}}, {{...}}]), but JSON Lines is expected: "
            f"one JSON object per line. Convert it, e.g. jq -c '.[]' {path} > "
            f"{path.with_name(path.stem + '.lines' + path.suffix)}"
        )
    with pytest.raises(ToolkitInputError, match=r"pretty.jsonl:1: this file looks like one JSON array"):
        scan_jsonl_file(pretty, text_field="text")
    spread = _write(tmp_path / "spread.jsonl", '{\n  "text": "a"\n}\n')
    with pytest.raises(ToolkitInputError, match=r"spread.jsonl:1: not valid JSON .*: a JSON object spread"):
        read_classification(spread)


def test_a_directory_given_as_a_file_is_called_a_directory(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    _write(data / "train.jsonl", '{"text": "x", "label": "a"}\n')
    for read in (read_classification, read_conll, read_ner_jsonl, read_word_list):
        with pytest.raises(ToolkitInputError) as err:
            read(data)
        assert (
            str(err.value)
            == f"{data}: is a directory, but a file is expected here: name one file (it holds train.jsonl)"
        )


# -------------------------------------------------------------------------- word lists and vocabularies
def test_read_word_list(tmp_path):
    path = tmp_path / "w.txt"
    path.write_bytes(b"\xe5\x8c\x97\r\n\r\n  cat \r\n")
    assert read_word_list(path) == ["北", "cat"]
    with pytest.raises(ToolkitInputError, match=r"missing.txt: file does not exist"):
        read_word_list(tmp_path / "missing.txt")
    _write(path, "\n \n")
    with pytest.raises(
        ToolkitInputError, match=r"w.txt: the word list is empty \(expected one item per line\)"
    ):
        read_word_list(path)
    path.write_bytes("北\n京\n".encode() + "上海\n".encode("gb18030"))
    with pytest.raises(ToolkitInputError, match=r"w.txt: invalid UTF-8 at byte offset 8 \(line 3\)"):
        read_word_list(path)


@pytest.fixture()
def bare_weights(tiny_mlm_dir, tmp_path):
    """A weights file with a config but no tokenizer beside it: it needs vocab=."""
    shutil.copy(tiny_mlm_dir / "model.safetensors", tmp_path / "model.safetensors")
    shutil.copy(tiny_mlm_dir / "config.json", tmp_path / "config.json")
    return tmp_path / "model.safetensors"


def test_load_encoder_vocab_errors_are_input_errors(bare_weights, tiny_mlm_dir, tmp_path):
    with pytest.raises(ToolkitInputError) as err:
        load_encoder(bare_weights, vocab=tmp_path / "nope" / "vocab.txt")
    assert str(err.value) == (
        f"vocabulary: {tmp_path / 'nope' / 'vocab.txt'} does not exist (expected a vocab.txt or a tokenizer directory)"
    )
    empty_dir = tmp_path / "tok"
    empty_dir.mkdir()
    with pytest.raises(ToolkitInputError, match=r"tok is a directory without tokenizer files"):
        load_encoder(bare_weights, vocab=empty_dir)
    with pytest.raises(ToolkitInputError, match=r"tok is a directory without tokenizer files"):
        load_encoder(tiny_mlm_dir, vocab=empty_dir)  # a model directory with a bad vocab= as well
    binary = tmp_path / "vocab.bin"
    binary.write_bytes(PNG)
    with pytest.raises(ToolkitInputError, match=r"^vocabulary: .*vocab.bin: looks like a binary file"):
        load_encoder(bare_weights, vocab=binary)
    gb = tmp_path / "vocab.txt"
    gb.write_bytes("[PAD]\n[UNK]\n北\n".encode("gb18030"))
    with pytest.raises(ToolkitInputError, match=r"vocab.txt: invalid UTF-8 at byte offset 12 \(line 3\)"):
        load_encoder(bare_weights, vocab=gb)
    _write(gb, "a\nb\n")
    with pytest.raises(
        ToolkitInputError, match=r"^vocabulary .*vocab.txt: vocabulary lacks the special tokens"
    ):
        load_encoder(bare_weights, vocab=gb)
    vocab = load_encoder(tiny_mlm_dir).tokenizer.get_vocab()
    _write(gb, "".join(f"{token}\n" for token in sorted(vocab, key=vocab.get)))
    assert load_encoder(bare_weights, vocab=gb).tokenizer.tokenize("北京") == ["北", "京"]
