"""Raw-text corpus loading: files, directories, globs, JSON Lines and hub datasets.

Every local file is checked before anything is tokenized: it must exist, be non-empty and be valid UTF-8
(or, with ``encoding_errors="replace"``, have its bad bytes counted). JSON Lines files must have the text
field on every line.

This module also owns the checks every reader of a user's text file shares (:func:`require_file`,
:func:`check_text_file`): a directory, a binary file, UTF-16 or another encoding each get their own message,
naming the line and byte offset and the remedy.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import datasets

from ._errors import ToolkitInputError
from ._io import (
    JSON_EXTENSIONS,
    LENIENT,
    TEXT_EXTENSIONS,
    FileScan,
    resolve_files,
    scan_jsonl_file,
    scan_text_file,
    text_decoding,
)
from ._labelled import read_conll
from ._text import join_tokens

logger = logging.getLogger(__name__)

# The pretraining option that reads bad bytes of text files leniently (JSON Lines are always strict).


@dataclass
class CorpusReport:
    """Summary of the local files of a corpus, logged before training and saved in ``metrics.json``."""

    files: list[FileScan] = field(default_factory=list)

    @property
    def n_bytes(self) -> int:
        return sum(f.n_bytes for f in self.files)

    @property
    def n_lines(self) -> int:
        return sum(f.n_lines for f in self.files)

    @property
    def n_empty_lines(self) -> int:
        return sum(f.n_empty_lines for f in self.files)

    @property
    def n_replaced(self) -> int:
        return sum(f.n_replaced for f in self.files)

    def as_dict(self) -> dict:
        return {
            "n_files": len(self.files),
            "n_bytes": self.n_bytes,
            "n_lines": self.n_lines,
            "n_empty_lines_skipped": self.n_empty_lines,
            "n_bytes_replaced": self.n_replaced,
        }


def _load_local(
    files: list[Path],
    *,
    text_field: str,
    streaming: bool,
    encoding: str,
    encoding_errors: str,
    report: CorpusReport,
) -> datasets.Dataset | datasets.IterableDataset:
    text_files = [str(p) for p in files if not p.name.lower().endswith(JSON_EXTENSIONS)]
    json_files = [str(p) for p in files if p.name.lower().endswith(JSON_EXTENSIONS)]
    decoding = {"encoding": encoding, "encoding_errors": encoding_errors}
    load = dict(
        split="train",
        streaming=streaming,
        encoding=text_decoding(**decoding),
        encoding_errors=encoding_errors,
    )
    parts = []
    if text_files:
        report.files.extend(scan_text_file(p, lenient_option=LENIENT, **decoding) for p in text_files)
        parts.append(datasets.load_dataset("text", data_files=text_files, **load))
    if json_files:
        report.files.extend(scan_jsonl_file(p, text_field=text_field, **decoding) for p in json_files)
        ds = datasets.load_dataset("json", data_files=json_files, **load)
        if text_field != "text":
            ds = ds.rename_column(text_field, "text")
        ds = ds.select_columns(["text"])
        parts.append(ds)
    return parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)


def _load_conll_text(
    files: list[Path], *, streaming: bool, encoding: str, encoding_errors: str, report: CorpusReport
) -> datasets.Dataset | datasets.IterableDataset:
    report.files.extend(
        scan_text_file(p, encoding=encoding, encoding_errors=encoding_errors, lenient_option=LENIENT)
        for p in files
    )
    texts = [
        join_tokens(s.tokens)
        for p in files
        for s in read_conll(p, require_tags=False, encoding=encoding, encoding_errors=encoding_errors)
    ]
    ds = datasets.Dataset.from_dict(
        {"text": texts}, features=datasets.Features({"text": datasets.Value("string")})
    )
    logger.info(
        "CoNLL text: %d sentences from %d file(s) added as training documents", len(texts), len(files)
    )
    return ds.to_iterable_dataset() if streaming else ds


def in_validation_split(text: str, fraction: float) -> bool:
    """Deterministic split by content hash: the same text always lands on the same side.

    Works identically for in-memory and streaming datasets, and keeps duplicated lines out of both sides.
    """
    return (zlib.crc32(text.encode("utf-8", "surrogatepass")) % 1_000_000) < fraction * 1_000_000


def _validation_filter(batch: dict, *, fraction: float, keep_validation: bool) -> list[bool]:
    return [in_validation_split(t, fraction) == keep_validation for t in batch["text"]]


def _non_empty(batch: dict) -> list[bool]:
    return [bool(t and t.strip()) for t in batch["text"]]


def _hub_splits(name: str, config: str | None, text_field: str, *, streaming: bool):
    """A hub dataset's ``train`` and ``validation`` (or ``None``) splits, as a single ``text`` column."""
    raw = datasets.load_dataset(name, config, streaming=streaming)
    if "train" not in raw:
        raise ToolkitInputError(f"dataset {name!r} has no 'train' split (has {list(raw)})")
    if text_field not in raw["train"].column_names:
        raise ToolkitInputError(
            f"dataset {name!r} has no column {text_field!r} (has {raw['train'].column_names}); set --text_field"
        )
    splits = {k: v.rename_column(text_field, "text") if text_field != "text" else v for k, v in raw.items()}
    splits = {k: v.select_columns(["text"]) for k, v in splits.items()}
    return splits["train"], splits.get("validation")


def _local_splits(train_files, conll_files, validation_files, *, extensions: Sequence[str], **read):
    """Local text / JSON Lines files and CoNLL files as the training split (each file checked first), and
    the validation files, if any, as the validation split; a file may not serve twice."""
    files = resolve_files(train_files, extensions=extensions) if train_files else []
    conll = resolve_files(conll_files, extensions=extensions) if conll_files else []
    overlap = {p.resolve() for p in files} & {p.resolve() for p in conll}
    if overlap:
        raise ToolkitInputError(f"files given both as text and as CoNLL: {sorted(map(str, overlap))}")
    parts = []
    if files:
        parts.append(_load_local(files, **read))
    if conll:
        parts.append(
            _load_conll_text(
                conll,
                streaming=read["streaming"],
                encoding=read["encoding"],
                encoding_errors=read["encoding_errors"],
                report=read["report"],
            )
        )
    train = parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)
    if not validation_files:
        return train, None
    vfiles = resolve_files(validation_files, extensions=extensions)
    overlap = {p.resolve() for p in vfiles} & {p.resolve() for p in files + conll}
    if overlap:
        raise ToolkitInputError(f"files used for both training and validation: {sorted(map(str, overlap))}")
    return train, _load_local(vfiles, **read)


def _finish_splits(train, validation, *, validation_split, max_train_samples, max_eval_samples, streaming):
    """Blank documents removed (counted in the report, never tokenized), the validation share held out by
    content hash, the sample caps applied, and empty splits refused."""
    train = _filter(train, _non_empty, streaming)
    if validation is not None:
        validation = _filter(validation, _non_empty, streaming)
    if validation_split:
        validation = _filter(
            train, _validation_filter, streaming, fraction=validation_split, keep_validation=True
        )
        train = _filter(
            train, _validation_filter, streaming, fraction=validation_split, keep_validation=False
        )
    train = _first(train, max_train_samples, streaming)
    if validation is not None:
        validation = _first(validation, max_eval_samples, streaming)
    if not streaming:
        if len(train) == 0:
            raise ToolkitInputError(
                "the training split is empty after removing blank lines and the validation split"
            )
        if validation is not None and len(validation) == 0:
            raise ToolkitInputError(
                "the validation split is empty: raise --validation_split or give --validation_files"
            )
    return train, validation


def _first(ds, n: int | None, streaming: bool):
    if n is None:
        return ds
    return ds.take(n) if streaming else ds.select(range(min(n, len(ds))))


def load_corpus(
    *,
    train_files: Sequence[str] | None = None,
    conll_files: Sequence[str] | None = None,
    dataset_name: str | None = None,
    dataset_config: str | None = None,
    text_field: str = "text",
    extensions: Sequence[str] = TEXT_EXTENSIONS + JSON_EXTENSIONS,
    validation_files: Sequence[str] | None = None,
    validation_split: float = 0.0,
    streaming: bool = False,
    max_train_samples: int | None = None,
    max_eval_samples: int | None = None,
    encoding: str = "utf-8",
    encoding_errors: str = "strict",
) -> tuple[datasets.DatasetDict | datasets.IterableDatasetDict, CorpusReport]:
    """Load a raw-text corpus as a ``DatasetDict`` with a ``text`` column and ``train`` (+ ``validation``) splits.

    Args:
        train_files: local files, directories or globs (``.txt``: one document per line; ``.jsonl``: one
            object per line with ``text_field``).
        conll_files: token-per-line files (CoNLL, e.g. an NER training set; blank lines between sentences):
            each sentence's tokens, joined back into text, become a training document; tags are ignored.
            Alone or added to ``train_files``.
        dataset_name: a hub dataset name instead of local files (``dataset_config`` selects a config).
        text_field: the column holding the text (JSON Lines and hub datasets).
        extensions: file extensions kept when walking directories.
        validation_files: held-out files; mutually exclusive with ``validation_split``.
        validation_split: fraction of documents held out, chosen by content hash (deterministic, works when
            streaming).
        streaming: stream the corpus instead of materialising it (for corpora larger than memory).
        max_train_samples: keep only the first N training documents (quick runs).
        max_eval_samples: keep only the first N validation documents.
        encoding: the local files' encoding (UTF-8, with or without a byte-order mark, by default; e.g.
            ``gb18030``).
        encoding_errors: ``"strict"`` or ``"replace"`` for undecodable bytes in local files (replaced bytes
            are counted in the report).

    Returns:
        ``(corpus, report)``: the splits, and a :class:`CorpusReport` of the local files read.

    Raises:
        ToolkitInputError: bad paths, empty or undecodable files, malformed JSON Lines, conflicting options.

    Example:
        >>> corpus, report = load_corpus(train_files=["data/"], validation_split=0.01)  # doctest: +SKIP
        >>> corpus["train"][0]["text"]  # doctest: +SKIP
    """
    if bool(train_files or conll_files) == bool(dataset_name):
        raise ToolkitInputError("give exactly one of --train_files (and/or --conll_files) and --dataset_name")
    if validation_files and validation_split:
        raise ToolkitInputError("--validation_files and --validation_split are mutually exclusive")
    if not 0.0 <= validation_split < 1.0:
        raise ToolkitInputError(f"--validation_split must be in [0, 1), got {validation_split}")
    report = CorpusReport()
    if dataset_name:
        train, validation = _hub_splits(dataset_name, dataset_config, text_field, streaming=streaming)
        validation = None if validation_split else validation
    else:
        read = dict(
            text_field=text_field,
            streaming=streaming,
            encoding=encoding,
            encoding_errors=encoding_errors,
            report=report,
        )
        train, validation = _local_splits(
            train_files, conll_files, validation_files, extensions=extensions, **read
        )
    train, validation = _finish_splits(
        train,
        validation,
        validation_split=validation_split,
        max_train_samples=max_train_samples,
        max_eval_samples=max_eval_samples,
        streaming=streaming,
    )
    out = {"train": train} if validation is None else {"train": train, "validation": validation}
    cls = datasets.IterableDatasetDict if streaming else datasets.DatasetDict
    return cls(out), report


def _filter(ds, fn, streaming: bool, **fn_kwargs):
    kwargs = {} if streaming else {"desc": "Filtering documents"}
    return ds.filter(fn, batched=True, fn_kwargs=fn_kwargs, **kwargs)


def iter_texts(ds: datasets.Dataset | datasets.IterableDataset, *, limit: int | None = None) -> Iterable[str]:
    """Yield the ``text`` column of a dataset, at most ``limit`` documents, without materialising it."""
    if isinstance(ds, datasets.Dataset):
        n = len(ds) if limit is None else min(limit, len(ds))
        for start in range(0, n, 1000):
            yield from ds[start : min(start + 1000, n)]["text"]
    else:
        for i, row in enumerate(ds):
            if limit is not None and i >= limit:
                return
            yield row["text"]
