"""Readers and validation for labelled data: classification (CSV / TSV / JSONL) and NER (CoNLL / JSONL).

Every error names the file and line and says what was expected, before any training starts.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import re
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ._errors import ToolkitInputError
from ._io import count_replaced, iter_jsonl, require_file, text_decoding
from ._text import is_cjk_char

logger = logging.getLogger(__name__)

SCHEMES = ("auto", "BIO", "IOB1", "BIOES")


# ----------------------------------------------------------------------------------------- classification
@dataclass
class ClassificationExample:
    text: str
    labels: list[str]
    text_pair: str | None = None
    line: int = 0


def _format_of(path: Path, file_format: str | None) -> str:
    fmt = (file_format or path.suffix.lstrip(".")).lower()
    fmt = {"jsonl": "jsonl", "json": "jsonl", "csv": "csv", "tsv": "tsv", "txt": "tsv"}.get(fmt)
    if fmt is None:
        raise ToolkitInputError(
            f"{path}: cannot tell the format from the extension; use .csv, .tsv or .jsonl"
        )
    return fmt


# A CSV field may be as long as the file (the csv module's default limit, 128 KiB, ends a long document).
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def _rows(path: Path, fmt: str, *, encoding: str = "utf-8", encoding_errors: str = "strict"):
    """Yield (line number, record dict) from a CSV / TSV / JSONL file, decoded as ``encoding`` (a UTF-8
    byte-order mark and CRLF line ends, as Excel writes them, are accepted).

    A CSV / TSV row must have as many fields as the header: an unquoted separator inside a text would
    otherwise shift the label column silently.
    """
    count_replaced(path, encoding, encoding_errors)  # checks the file; counts and logs replaced bytes
    if fmt == "jsonl":
        yield from iter_jsonl(path, encoding=encoding, encoding_errors=encoding_errors)
        return
    separator = "," if fmt == "csv" else "\t"
    codec = text_decoding(encoding, encoding_errors)  # utf-8-sig: a byte-order mark is not a column name
    with open(path, encoding=codec, errors=encoding_errors, newline="") as fh:
        reader = csv.reader(fh, delimiter=separator)
        header = next(reader, None)
        if header is None:
            return
        if not any(name.strip() for name in header):
            raise ToolkitInputError(
                f"{path}:{reader.line_num}: no header: the first line must name the columns, e.g. text,label"
            )
        for row in reader:
            if not row:  # a blank line
                continue
            if len(row) != len(header):
                name = "comma" if separator == "," else "tab"
                raise ToolkitInputError(
                    f"{path}:{reader.line_num}: {_plural(len(row), 'field')}, but the header has {len(header)} "
                    f"({', '.join(header)}). "
                    + (
                        f'A text containing a {name}? Quote the field: "like{separator} this"'
                        if len(row) > len(header)
                        else "Fill in the missing fields (an empty one is written as two separators)"
                    )
                )
            yield reader.line_num, dict(zip(header, row, strict=True))


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _split_labels(value, multi_label: bool, separator: str) -> list:
    if isinstance(value, list):
        return value
    if multi_label and isinstance(value, str):
        return [v.strip() for v in value.split(separator) if v.strip()]
    return [value]


def read_classification(
    path: str | os.PathLike | Sequence[dict],
    *,
    text_column: str = "text",
    text_pair_column: str | None = None,
    label_column: str = "label",
    multi_label: bool = False,
    label_separator: str = ",",
    file_format: str | None = None,
    require_labels: bool = True,
    encoding: str = "utf-8",
    encoding_errors: str = "strict",
) -> list[ClassificationExample]:
    """Read a classification file (CSV, TSV or JSONL) and validate it.

    Args:
        path: the file.
        text_column, text_pair_column: input columns (a pair for sentence-pair tasks).
        label_column: the label column; for multi-label a list (JSONL) or ``label_separator``-joined string.
        multi_label: several labels per example.
        file_format: ``csv``, ``tsv`` or ``jsonl`` (default: from the extension).
        require_labels: a test file without labels is allowed with ``False``.
        encoding, encoding_errors: how the file is decoded (UTF-8 with or without a byte-order mark by
            default; ``"replace"`` turns undecodable bytes into U+FFFD and logs how many).

    Returns:
        The examples, with labels as strings.

    Raises:
        ToolkitInputError: a missing file or a directory, a file that is not UTF-8 text, a CSV / TSV row whose
            field count differs from the header's, a missing column (naming the columns found), an empty
            text, a list label without ``multi_label``, a label column of mixed types (e.g. numbers and
            words), or no example at all.
    """
    if isinstance(path, (str, os.PathLike)):
        path = require_file(path)
        rows = _rows(path, _format_of(path, file_format), encoding=encoding, encoding_errors=encoding_errors)
    else:  # a hub dataset split (or any sequence of records): "line" is the row number
        rows = ((i + 1, dict(r)) for i, r in enumerate(path))
        path = getattr(path, "info", None) and f"hub:{path.info.dataset_name}:{path.split}" or "records"
    examples: list[ClassificationExample] = []
    label_types: dict[str, int] = {}
    for lineno, record in rows:
        for column in [text_column, text_pair_column] + ([label_column] if require_labels else []):
            if column and column not in record:
                raise ToolkitInputError(
                    f"{path}:{lineno}: no column {column!r} (found {sorted(record)}); "
                    "set --text_column / --text_pair_column / --label_column"
                )
        text = record[text_column]
        if not isinstance(text, str) or not text.strip():
            raise ToolkitInputError(f"{path}:{lineno}: empty or non-text {text_column!r}")
        pair = record[text_pair_column] if text_pair_column else None
        labels: list[str] = []
        if label_column in record and record[label_column] not in (None, ""):
            if isinstance(record[label_column], list) and not multi_label:
                raise ToolkitInputError(
                    f"{path}:{lineno}: label {record[label_column]!r} is a list: several labels per example "
                    "need --multi_label (multi_label=True); for one label per example give a single value"
                )
            raw = _split_labels(record[label_column], multi_label, label_separator)
            for value in raw:
                if value is None or (isinstance(value, float) and math.isnan(value)):
                    raise ToolkitInputError(
                        f"{path}:{lineno}: missing label ({value!r}) in column {label_column!r}: give every "
                        "training and validation example a label"
                    )
                kind = (
                    "number"
                    if isinstance(value, (int, float))
                    or (isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()))
                    else "text"
                )
                label_types.setdefault(kind, lineno)
                if len(label_types) > 1:
                    raise ToolkitInputError(
                        f"{path}:{lineno}: label column {label_column!r} mixes numbers (first at line "
                        f"{label_types.get('number')}) and words (first at line {label_types.get('text')})"
                    )
                labels.append(str(value).strip())
        elif require_labels:
            raise ToolkitInputError(f"{path}:{lineno}: empty label in column {label_column!r}")
        examples.append(ClassificationExample(text, labels, pair, lineno))
    if not examples:
        raise ToolkitInputError(f"{path}: no example (empty split)")
    return examples


def class_balance(examples: Sequence[ClassificationExample]) -> dict[str, int]:
    """Label → number of examples carrying it, most frequent first."""
    return dict(Counter(label for e in examples for label in e.labels).most_common())


# -------------------------------------------------------------------------------------------------- NER
@dataclass
class NERSentence:
    tokens: list[str]
    tags: list[str]
    line: int = 0
    source: str = ""


@dataclass
class SchemeReport:
    """What converting to BIO did: the source scheme and the invalid ``I-`` tags repaired."""

    scheme: str = "BIO"
    n_repaired: int = 0
    examples: list[str] = field(default_factory=list)


def _check_tag(tag: str, where: str) -> None:
    if tag != "O" and not re.fullmatch(r"[BIESU]-.+", tag):
        raise ToolkitInputError(f"{where}: tag {tag!r} is not O or PREFIX-TYPE (B-, I-, E-, S-)")


def read_conll(
    path: str | os.PathLike,
    *,
    token_column: int = 0,
    tag_column: int = -1,
    separator: str | None = None,
    require_tags: bool | None = True,
    encoding: str = "utf-8",
    encoding_errors: str = "strict",
) -> list[NERSentence]:
    """Read a CoNLL-style file: one token per line, columns split by ``separator`` (default: any
    whitespace, or tab when the line has one), blank lines between sentences, ``-DOCSTART-`` ignored.

    Every token line must have as many columns as the file's other lines: a token holding a space in a
    whitespace-separated file (``New York B-LOC``) would otherwise lose its second half. Separate the
    columns with tabs to keep such tokens whole.

    Args:
        path: the file.
        token_column, tag_column: column indices (default: first and last).
        separator: the column separator (default: tab on lines that have one, else any whitespace).
        require_tags: ``True``: every line has a tag; ``None``: tags are read where the file has a tag
            column (a test file may be unlabelled); ``False``: tags, if any, are ignored (text only).
        encoding: the file's encoding (UTF-8, with or without a byte-order mark, by default).
        encoding_errors: ``"strict"`` or ``"replace"`` (bad bytes become U+FFFD; counted in the log).

    Raises:
        ToolkitInputError: a missing file or a directory, a file that is not UTF-8 text, a line whose
            column count differs from the file's, a line without the tag column, a malformed tag, or no
            sentence at all; naming file and line.
    """
    path = require_file(path)
    count_replaced(path, encoding, encoding_errors)
    sentences: list[NERSentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    start = 0
    columns: Counter[int] = Counter()  # token lines by column count
    first_with: dict[int, tuple[int, str]] = {}  # column count -> its first (line number, line)
    with open(path, encoding=text_decoding(encoding, encoding_errors), errors=encoding_errors) as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.rstrip("\n").rstrip("\r")
            if not line.strip() or line.startswith("-DOCSTART-"):
                if tokens:
                    sentences.append(NERSentence(tokens, tags, start, str(path)))
                    tokens, tags = [], []
                continue
            sep = separator or ("\t" if "\t" in line else None)
            parts = line.split(sep)
            columns[len(parts)] += 1
            first_with.setdefault(len(parts), (lineno, line))
            if not tokens:
                start = lineno
            if require_tags or (require_tags is None and len(parts) >= 2):
                if len(parts) < 2:
                    raise ToolkitInputError(f"{path}:{lineno}: expected a token and a tag, got {line!r}")
                tag = parts[tag_column].strip()
                _check_tag(tag, f"{path}:{lineno}")
                tags.append(tag)
            tokens.append(parts[token_column] if parts[token_column] != "" else " ")
        if tokens:
            sentences.append(NERSentence(tokens, tags, start, str(path)))
    _check_columns(path, columns, first_with)
    if not sentences:
        raise ToolkitInputError(f"{path}: no sentence (empty split)")
    return sentences


def _check_columns(path: Path, columns: Counter, first_with: dict[int, tuple[int, str]]) -> None:
    """Every token line of a CoNLL file has the same number of columns (the most common count, ties: the
    count seen first); name the first line with another count."""
    if len(columns) < 2:
        return
    usual = max(columns, key=lambda n: (columns[n], -first_with[n][0]))
    (lineno, line), n = min((first_with[n], n) for n in columns if n != usual)
    n_odd = sum(columns.values()) - columns[usual]
    more = f" (and {_plural(n_odd - 1, 'more line')})" if n_odd > 1 else ""
    raise ToolkitInputError(
        f"{path}:{lineno}: {_plural(n, 'column')}, but the file's other lines have {usual} (e.g. line "
        f"{first_with[usual][0]}): {line!r}{more}. A token containing a space? Separate the columns with "
        "tabs (token<TAB>tag), or fix the line"
    )


def read_ner_jsonl(
    path: str | os.PathLike,
    *,
    span_tokenization: str = "auto",
    encoding: str = "utf-8",
    encoding_errors: str = "strict",
) -> list[NERSentence]:
    """Read NER JSON Lines: ``{"tokens": [...], "tags": [...]}`` or ``{"text": ..., "spans": [{"start",
    "end", "label"}]}`` (character offsets, end exclusive; ``entities`` is accepted for ``spans``).

    Text with spans becomes characters (``span_tokenization="char"``; the default for text holding CJK) or
    whitespace-separated words (``"whitespace"``), tagged BIO.

    Raises:
        ToolkitInputError: token/tag count mismatch, spans outside the text or overlapping, spans not on
            token boundaries, missing fields; naming file and line.
    """
    path = Path(path)
    sentences = []
    for lineno, record in _rows(path, "jsonl", encoding=encoding, encoding_errors=encoding_errors):
        where = f"{path}:{lineno}"
        if "tokens" in record:
            tokens, tags = record["tokens"], record.get("tags", record.get("ner_tags"))
            if tags is None:
                raise ToolkitInputError(f"{where}: 'tokens' without 'tags'")
            if len(tokens) != len(tags):
                raise ToolkitInputError(f"{where}: {len(tokens)} tokens but {len(tags)} tags")
            for tag in tags:
                _check_tag(tag, where)
        elif "text" in record:
            tokens, tags = spans_to_bio(
                record["text"],
                record.get("spans", record.get("entities", [])),
                tokenization=span_tokenization,
                where=where,
            )
        else:
            raise ToolkitInputError(
                f"{where}: expected 'tokens' + 'tags' or 'text' + 'spans' (found {sorted(record)})"
            )
        if not tokens:
            raise ToolkitInputError(f"{where}: empty sentence")
        sentences.append(NERSentence(list(tokens), list(tags), lineno, str(path)))
    if not sentences:
        raise ToolkitInputError(f"{path}: no sentence (empty split)")
    return sentences


def spans_to_bio(
    text: str, spans: Sequence[dict], *, tokenization: str = "auto", where: str = ""
) -> tuple[list[str], list[str]]:
    """Character spans over ``text`` → tokens and BIO tags."""
    if tokenization == "auto":
        tokenization = "char" if any(is_cjk_char(c) for c in text) else "whitespace"
    if tokenization == "char":
        pieces = [(c, i, i + 1) for i, c in enumerate(text) if not c.isspace()]
    elif tokenization == "whitespace":
        pieces = [(m.group(), m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    else:
        raise ToolkitInputError(f"span tokenization must be auto, char or whitespace; got {tokenization!r}")
    tags = ["O"] * len(pieces)
    taken = [False] * len(pieces)
    for span in spans:
        try:
            start, end, label = int(span["start"]), int(span["end"]), str(span["label"])
        except (KeyError, TypeError, ValueError):
            raise ToolkitInputError(
                f"{where}: a span needs integer 'start', 'end' and a 'label'; got {span!r}"
            ) from None
        if not 0 <= start < end <= len(text):
            raise ToolkitInputError(f"{where}: span {start}-{end} is outside the text (length {len(text)})")
        inside = [k for k, (_, s, e) in enumerate(pieces) if s < end and e > start]
        if not inside or pieces[inside[0]][1] != start or pieces[inside[-1]][2] != end:
            raise ToolkitInputError(
                f"{where}: span {start}-{end} ({text[start:end]!r}) does not fall on token boundaries"
            )
        if any(taken[k] for k in inside):
            raise ToolkitInputError(f"{where}: span {start}-{end} overlaps another span")
        for n, k in enumerate(inside):
            tags[k] = ("B-" if n == 0 else "I-") + label
            taken[k] = True
    return [p[0] for p in pieces], tags


def detect_scheme(sentences: Sequence[NERSentence]) -> str:
    """``BIOES`` if any ``E-``/``S-`` tag occurs, else ``BIO``. (IOB1 looks like invalid BIO: name it.)"""
    for s in sentences:
        if any(t[:2] in ("E-", "S-") for t in s.tags):
            return "BIOES"
    return "BIO"


def to_bio(tags: Sequence[str], scheme: str) -> tuple[list[str], int]:
    """Convert one sentence's tags from ``scheme`` to BIO (IOB2) and repair invalid sequences.

    An ``I-X`` that does not continue an ``X`` entity becomes ``B-X`` (the repair is counted). IOB1's
    ``I-`` at an entity start is its normal form and is not counted as a repair.

    Returns:
        ``(bio_tags, n_repaired)``.
    """
    out: list[str] = []
    repaired = 0
    prev = "O"
    for tag in tags:
        prefix, _, kind = tag.partition("-")
        if scheme == "BIOES":
            prefix = {"S": "B", "E": "I", "U": "B", "L": "I"}.get(prefix, prefix)
        if prefix == "I":
            continues = prev != "O" and prev[2:] == kind
            if not continues:
                prefix = "B"
                if scheme != "IOB1":
                    repaired += 1
        new = "O" if tag == "O" else f"{prefix}-{kind}"
        out.append(new)
        prev = new
    return out, repaired


def normalise_schemes(sentences: Sequence[NERSentence], *, scheme: str = "auto") -> SchemeReport:
    """Convert every sentence to BIO in place; warn about and count repaired tags."""
    if scheme not in SCHEMES:
        raise ToolkitInputError(f"tagging scheme must be one of {', '.join(SCHEMES)}; got {scheme!r}")
    scheme = detect_scheme(sentences) if scheme == "auto" else scheme
    report = SchemeReport(scheme=scheme)
    for s in sentences:
        s.tags, n = to_bio(s.tags, scheme)
        if n:
            report.n_repaired += n
            if len(report.examples) < 5:
                report.examples.append(f"{s.source}:{s.line}")
    if report.n_repaired:
        logger.warning(
            "Repaired %d invalid I- tags (an I- with no B- before it), e.g. at %s",
            report.n_repaired,
            ", ".join(report.examples),
        )
    return report
