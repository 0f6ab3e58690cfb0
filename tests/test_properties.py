"""Property-based tests (hypothesis): for any input the readers and converters can be given, what goes in
comes back out: texts through the CSV / JSON Lines / text readers, entity spans through BIO tags."""

from __future__ import annotations

import csv
import json
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolkit import bio_entities, read_classification, read_ner_jsonl, read_texts

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# Any text a user may have: every Unicode character except lone surrogates (no UTF-8 file can hold them)
# and NUL (a file holding one is taken for binary, by design).
ANY_CHAR = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
TEXT = st.text(ANY_CHAR, min_size=1, max_size=40).filter(lambda t: t.strip())
LABEL = st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=8).filter(
    lambda t: not t.lstrip("-").isdigit()
)
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


@SETTINGS
@given(rows=st.lists(st.tuples(TEXT, LABEL), min_size=1, max_size=12), excel=st.booleans())
def test_csv_round_trip(tmp_path_factory, rows, excel):
    """Quotes, separators, line breaks inside a field, BOM and CRLF: the text read is the text written."""
    path = tmp_path_factory.mktemp("csv") / "data.csv"
    with open(path, "w", encoding="utf-8-sig" if excel else "utf-8", newline="") as fh:
        # as spreadsheets write: CRLF and minimal quoting (a field with CR or LF quoted), or LF and all quoted
        if excel:
            writer = csv.writer(fh, lineterminator="\r\n")
        else:
            writer = csv.writer(fh, lineterminator="\n", quoting=csv.QUOTE_ALL)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    got = read_classification(path)
    assert [(e.text, e.labels) for e in got] == [(t, [lab.strip()]) for t, lab in rows]


@SETTINGS
@given(rows=st.lists(st.tuples(TEXT, LABEL), min_size=1, max_size=12))
def test_jsonl_round_trip(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("jsonl") / "data.jsonl"
    path.write_text(
        "".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in rows), encoding="utf-8"
    )
    assert [(e.text, e.labels) for e in read_classification(path)] == [(t, [lab.strip()]) for t, lab in rows]


@SETTINGS
@given(lines=st.lists(st.text(ANY_CHAR, min_size=1, max_size=40), min_size=1, max_size=12))
def test_text_reader_keeps_every_non_blank_line(tmp_path_factory, lines):
    """One record per line ended by LF, CRLF or CR (Python's universal newlines); every other character,
    U+2028 and NEL included, is text."""
    lines = [t.replace("\n", " ").replace("\r", " ") for t in lines]
    path = tmp_path_factory.mktemp("txt") / "data.txt"
    path.write_bytes("\n".join(lines).encode("utf-8"))
    kept = [t for t in lines if t.strip()]
    if not kept:
        return
    assert read_texts([str(path)])[0] == kept


@st.composite
def text_with_spans(draw):
    """A text and non-overlapping entity spans on it (character offsets, end exclusive)."""
    text = draw(
        st.text(st.characters(blacklist_categories=("Cs", "Zs", "Cc", "Zl", "Zp")), min_size=1, max_size=30)
    )
    cuts = sorted(draw(st.sets(st.integers(0, len(text)), max_size=8)))
    spans = []
    for start, end in zip(cuts[::2], cuts[1::2], strict=False):
        if end > start:
            spans.append({"start": start, "end": end, "label": draw(st.sampled_from(["PER", "LOC", "ORG"]))})
    return text, spans


@SETTINGS
@given(example=text_with_spans())
def test_character_spans_survive_bio_and_back(tmp_path_factory, example):
    """Spans → character BIO tags (the NER reader) → spans (the decoder) is the identity."""
    text, spans = example
    path = tmp_path_factory.mktemp("ner") / "spans.jsonl"
    path.write_text(json.dumps({"text": text, "spans": spans}) + "\n", encoding="utf-8")
    (sentence,) = read_ner_jsonl(path, span_tokenization="char")
    assert "".join(sentence.tokens) == text
    back = sorted((s["label"], s["start"], s["end"]) for s in spans)
    assert sorted(bio_entities(sentence.tags)) == back


@SETTINGS
@given(tags=st.lists(st.sampled_from(["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]), max_size=30))
def test_bio_decoding_covers_every_entity_word_once(tags):
    """Every B-/I- word is in exactly one entity, every O word in none, and entities do not overlap."""
    entities = bio_entities(tags)
    covered = [i for _, start, end in entities for i in range(start, end)]
    assert len(covered) == len(set(covered))
    assert sorted(covered) == [i for i, t in enumerate(tags) if t != "O"]
    for kind, start, end in entities:
        assert all(tags[i][2:] == kind for i in range(start, end))
