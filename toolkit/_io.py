"""Reading and writing files: readable-text checks with clear messages (missing, directory, binary, not in
the expected encoding with line, byte offset, a guess of the encoding and the remedy), JSON Lines, and JSON
written the toolkit's way.

Every reader decodes the same way (:func:`text_decoding`): UTF-8 by default, with or without a byte-order
mark; ``encoding`` names another (``gb18030`` for most Chinese files that are not UTF-8); with
``encoding_errors="replace"`` undecodable bytes become U+FFFD and are counted instead of stopping the run."""

from __future__ import annotations

import codecs
import glob
import hashlib
import io
import json
import logging
import os
import re
import sys
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ._errors import ToolkitInputError
from ._secrets import redact
from ._text import is_cjk_char

logger = logging.getLogger(__name__)

TEXT_EXTENSIONS = (".txt",)
ENCODING_ERRORS = ("strict", "replace")
LENIENT = "--encoding_errors replace"  # the option every recipe has to read past undecodable bytes


JSON_EXTENSIONS = (".jsonl", ".json")


@dataclass
class FileScan:
    """What scanning one file found: sizes, line counts and the bytes replaced under lenient decoding."""

    path: str
    n_bytes: int
    n_lines: int
    n_empty_lines: int  # blank lines; for JSON Lines also records whose text is blank (all are skipped)
    n_replaced: int = 0


# ------------------------------------------------------------------------------- readable text files
def text_decoding(encoding: str = "utf-8", encoding_errors: str = "strict") -> str:
    """Check a reader's ``encoding`` and ``encoding_errors`` and return the codec name to open files with:
    ``utf-8-sig`` for UTF-8 (a byte-order mark, as Excel writes, is skipped rather than read as text).

    Raises:
        ToolkitInputError: an unknown encoding, one that does not keep ASCII bytes as they are (UTF-16 and
            UTF-32: lines and byte offsets cannot be found in them; convert such a file), or an
            ``encoding_errors`` other than ``strict`` / ``replace``.
    """
    if encoding_errors not in ENCODING_ERRORS:
        raise ToolkitInputError(f"--encoding_errors must be 'strict' or 'replace', got {encoding_errors!r}")
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise ToolkitInputError(
            f"--encoding {encoding!r} is not an encoding Python knows (e.g. utf-8, gb18030, big5, latin-1)"
        ) from None
    if "\n".encode(name) != b"\n" or "a".encode(name) != b"a":
        raise ToolkitInputError(
            f"--encoding {encoding}: files in {name} cannot be read line by line; convert them to UTF-8, "
            f"e.g. iconv -f {name.upper()} -t UTF-8 in.txt > in.utf8.txt"
        )
    return "utf-8-sig" if name in ("utf-8", "utf-8-sig") else name


def count_replaced(path: str | os.PathLike, encoding: str, encoding_errors: str) -> int:
    """With ``encoding_errors="replace"``: how many bytes of ``path`` do not decode (each becomes U+FFFD),
    logged as a warning when there are any; the file is otherwise checked as :func:`check_text_file` does.
    With ``"strict"``: the check alone (an undecodable byte is an error), and 0."""
    if encoding_errors == "strict":
        check_text_file(path, encoding=encoding)
        return 0
    n = scan_text_file(path, encoding=encoding, encoding_errors="replace").n_replaced
    if n:
        logger.warning(
            "%s: %d byte(s) are not %s and were replaced with U+FFFD (--encoding_errors replace)",
            path,
            n,
            "UTF-8" if text_decoding(encoding) == "utf-8-sig" else encoding,
        )
    return n


_BINARY_MAGIC = (
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or .docx / .xlsx)"),
    (b"\x1f\x8b", "a gzip archive: decompress it first"),
    (b"BZh", "a bzip2 archive: decompress it first"),
    (b"\xfd7zXZ", "an xz archive: decompress it first"),
    (b"7z\xbc\xaf", "a 7z archive"),
    (b"PAR1", "a Parquet file"),
    (b"SQLite format 3", "an SQLite database"),
)


_HEAD_BYTES = 64


def require_file(path: str | os.PathLike) -> Path:
    """``path`` as a :class:`~pathlib.Path` if it names an existing file.

    Raises:
        ToolkitInputError: the path does not exist, or is a directory (naming a few files inside it).
    """
    path = Path(path)
    if path.is_dir():
        inside = sorted(p.name for p in path.iterdir() if p.is_file())[:3]
        hint = f" (it holds {', '.join(inside)}{', ...' if len(inside) == 3 else ''})" if inside else ""
        raise ToolkitInputError(f"{path}: is a directory, but a file is expected here: name one file{hint}")
    if not path.exists():
        raise ToolkitInputError(f"{path}: file does not exist")
    return path


def _not_text(name: str, head: bytes, where: str) -> ToolkitInputError | None:
    """The error for a file whose first bytes show it is not UTF-8 text (binary, UTF-16), else ``None``."""
    sample = head[:_HEAD_BYTES]
    sample = sample[: len(sample) & ~1]
    # UTF-16 without a byte-order mark: in mostly-ASCII text, ASCII and NUL bytes alternate.
    ascii_half = [sample[0::2], sample[1::2]]
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or any(
        len(sample) >= 4 and not any(zeros) and all(9 <= b < 127 for b in text)
        for text, zeros in (ascii_half, ascii_half[::-1])
    ):
        return ToolkitInputError(
            f"{name}: looks like UTF-16 text, not UTF-8 ({where}): convert it, "
            f"e.g. iconv -f UTF-16 -t UTF-8 {name} > {_renamed(name, 'utf8')}"
        )
    for magic, kind in _BINARY_MAGIC:
        if sample.startswith(magic):
            return ToolkitInputError(f"{name}: looks like a binary file ({kind}), not text ({where})")
    return None


def _renamed(name: str | os.PathLike, tag: str) -> str:
    """``dir/a.jsonl`` -> ``dir/a.{tag}.jsonl``: where a suggested conversion writes its output."""
    path = Path(name)
    return str(path.with_name(f"{path.stem}.{tag}{path.suffix}"))


def _encodable(text: str, codec: str) -> bool:
    try:
        text.encode(codec)
    except UnicodeEncodeError:
        return False
    return True


def _cjk_or_punctuation(c: str) -> bool:
    return is_cjk_char(c) or unicodedata.category(c).startswith(("P", "Zs"))


def _kana(c: str) -> bool:
    return unicodedata.name(c, "").startswith(("HIRAGANA", "KATAKANA"))


def _cyrillic_words(text: str) -> bool:
    """Cyrillic letters, never in one word with ASCII letters (``café`` read as Windows-1251 is ``cafй``)."""
    words = re.findall(r"\w+", text)
    cyrillic = [any(unicodedata.name(c, "").startswith("CYRILLIC") for c in w) for w in words]
    return any(cyrillic) and not any(
        c and re.search("[A-Za-z]", w) for c, w in zip(cyrillic, words, strict=True)
    )


# The legacy encodings a line that is not UTF-8 is most often in, each with what its decoding of the line
# must look like to be a good bet. Checked in order; a line that fits none gets no guess.
_GUESSES = (
    # simplified Chinese: every non-ASCII character a common one (in GB2312's 6,763)
    ("GB18030", lambda line, t: all(_cjk_or_punctuation(c) and _encodable(c, "gb2312") for c in t)),
    ("Big5", lambda line, t: all(_cjk_or_punctuation(c) for c in t)),
    ("Shift_JIS", lambda line, t: all(_cjk_or_punctuation(c) or _kana(c) for c in t) and any(map(_kana, t))),
    ("Windows-1251", lambda line, t: _cyrillic_words(line)),
    # accented Latin letters in mostly-ASCII words
    ("Windows-1252", lambda line, t: all(c.isalpha() or c in "\u00a0«»°·€–—‘’“”…" for c in t)),
)


def _guess_encoding(line: bytes, tried: str) -> str | None:
    """The legacy encoding the undecodable line most likely is in (see ``_GUESSES``), or ``None``."""
    for name, fits in _GUESSES:
        if codecs.lookup(name).name == codecs.lookup(tried).name:
            continue
        try:
            text = line.decode(name)
        except UnicodeDecodeError:
            continue
        non_ascii = "".join(c for c in text if not c.isascii())
        if non_ascii and fits(text, non_ascii):
            return name
    return None


_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # universal newlines, as Python's text mode reads lines


def _scan_lines(
    lines: Iterator[bytes],
    name: str,
    *,
    encoding_errors: str,
    lenient_option: str | None,
    encoding: str = "utf-8",
) -> FileScan:
    """Check a stream of byte lines: NUL bytes (binary), UTF-16, known binary formats and bytes that are not
    ``encoding`` are reported with line and byte offset (lines ended by LF); counts bytes, lines, blank lines
    and (lenient) replaced bytes. Lines are counted as the readers read them, with Python's universal
    newlines: a lone carriage return (old Mac files) ends a line too."""
    codec = text_decoding(encoding, encoding_errors)
    label = "UTF-8" if codec == "utf-8-sig" else encoding
    offset = n_lines = n_records = n_empty = n_replaced = 0
    head = b""
    decoder = codecs.getdecoder(codec)
    for n_lines, line in enumerate(lines, 1):
        if len(head) < _HEAD_BYTES:
            head += line[: _HEAD_BYTES - len(head)]
        nul = line.find(b"\x00")
        if nul >= 0:
            where = f"NUL byte at byte offset {offset + nul}, line {n_lines}"
            raise _not_text(name, head, where) or ToolkitInputError(
                f"{name}: NUL byte at byte offset {offset + nul} (line {n_lines}): "
                "this looks like a binary file, not text"
            )
        try:
            text = decoder(line)[0]
        except UnicodeDecodeError as err:
            where = f"invalid {label} at byte offset {offset + err.start}, line {n_lines}"
            if encoding_errors == "strict":
                not_text = _not_text(name, head, where)
                if not_text is not None:
                    raise not_text from None
                sample = _undecodable_sample(line, lines, decoder)
                raise _not_encoding(
                    name, sample, err, offset, n_lines, encoding, label, lenient_option
                ) from None
            text = decoder(line, "replace")[0]
            n_replaced += text.count("\ufffd") - decoder(line, "ignore")[0].count("\ufffd")
        if "\r" in text.rstrip("\r\n"):  # lone carriage returns inside: several lines as readers see them
            pieces = _LINE_BREAK.split(text.removesuffix("\n").removesuffix("\r"))
        else:
            pieces = [text]
        n_records += len(pieces)
        n_empty += sum(not piece.strip() for piece in pieces)
        offset += len(line)
    return FileScan(name, offset, n_records, n_empty, n_replaced)


def _undecodable_sample(line: bytes, rest: Iterator[bytes], decoder, limit: int = 1 << 16) -> bytes:
    """The undecodable ``line`` and the next undecodable lines of the file (up to ``limit`` bytes): a
    single short line (one Russian word) can read as Chinese; more text settles which encoding it is."""
    sample = [line]
    size = len(line)
    for more in rest:
        if size >= limit:
            break
        try:
            decoder(more)
        except UnicodeDecodeError:
            sample.append(more)
            size += len(more)
    return b"\n".join(x.rstrip(b"\r\n") for x in sample)


def _not_encoding(
    name: str,
    line: bytes,
    err: UnicodeDecodeError,
    offset: int,
    lineno: int,
    encoding: str,
    label: str,
    lenient_option: str | None,
) -> ToolkitInputError:
    """The error for a line that does not decode: where, what the bytes look like, and the remedies."""
    guess = _guess_encoding(line, encoding)
    if guess:
        remedy = (
            f"this line reads as {guess}: pass --encoding {guess.lower()}, or convert the file, e.g. "
            f"iconv -f {guess} -t UTF-8 {name} > {_renamed(name, 'utf8')}"
        )
    else:
        remedy = (
            "pass its encoding with --encoding (e.g. gb18030, big5, shift_jis, latin-1), or convert it to UTF-8 "
            f"with iconv -f ENCODING -t UTF-8 {name} > {_renamed(name, 'utf8')}"
        )
    if lenient_option:
        remedy += f"; or pass {lenient_option} to replace bad bytes with U+FFFD (they are counted)"
    return ToolkitInputError(
        f"{name}: invalid {label} at byte offset {offset + err.start} (line {lineno}): {err.reason}. "
        f"The file is not {label}: {remedy}"
    )


def check_text_file(path: str | os.PathLike, *, encoding: str = "utf-8") -> Path:
    """Check that ``path`` is an existing text file in ``encoding`` (UTF-8 by default) before a reader opens
    it.

    The whole file is validated at C speed; only when a problem is found is it scanned line by line, so
    the message can name the line and byte offset. For readers that have no lenient option (fine-tuning
    sets, word lists, vocabularies): the remedy is to convert the file.

    Returns:
        The path.

    Raises:
        ToolkitInputError: a missing path, a directory, a binary file (NUL bytes, or an image, archive, ...),
            UTF-16, or invalid UTF-8 (with line, byte offset and an ``iconv`` command).

    Example:
        >>> check_text_file("data/train.jsonl")  # doctest: +SKIP
    """
    path = require_file(path)
    decoder = codecs.getincrementaldecoder(text_decoding(encoding))()
    with open(path, "rb") as fh:
        try:
            while chunk := fh.read(1 << 20):
                if b"\x00" in chunk:
                    raise ValueError("NUL byte")
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except ValueError:  # UnicodeDecodeError included: rescan for the line, offset and kind
            fh.seek(0)
            _scan_lines(fh, str(path), encoding_errors="strict", lenient_option=LENIENT, encoding=encoding)
            raise ToolkitInputError(f"{path}: not {encoding} text") from None
    return path


def decode_text_bytes(
    data: bytes, *, name: str, encoding: str = "utf-8", encoding_errors: str = "strict"
) -> str:
    """``data`` decoded, or an error as :func:`check_text_file` words it (e.g. for standard input)."""
    codec = text_decoding(encoding, encoding_errors)
    try:
        if b"\x00" not in data:
            return data.decode(codec, encoding_errors)
    except UnicodeDecodeError:
        pass
    _scan_lines(io.BytesIO(data), name, encoding_errors="strict", lenient_option=None, encoding=encoding)
    raise ToolkitInputError(f"{name}: not UTF-8 text")


def scan_text_file(
    path: str | os.PathLike,
    *,
    encoding_errors: str = "strict",
    lenient_option: str | None = None,
    encoding: str = "utf-8",
) -> FileScan:
    """Check that a file is non-empty, decodable text (UTF-8 unless ``encoding`` says otherwise), reading it
    in bounded chunks.

    Args:
        path: the file.
        encoding: its encoding (a UTF-8 byte-order mark is accepted).
        encoding_errors: ``"strict"`` (raise on the first bad byte) or ``"replace"`` (count bad bytes; they
            become U+FFFD when the file is read for training).
        lenient_option: the caller's option that reads bad bytes leniently (e.g. ``"--encoding_errors
            replace"``), suggested beside converting the file; ``None`` where no such option applies.

    Returns:
        A :class:`FileScan` with byte, line and replacement counts.

    Raises:
        ToolkitInputError: a missing path or a directory, an empty file, a binary file (NUL bytes or a known
            binary format), UTF-16, or (strict) invalid UTF-8, with the byte offset and line number of the
            first bad byte.
    """
    text_decoding(encoding, encoding_errors)
    path = require_file(path)
    with open(path, "rb") as fh:
        scan = _scan_lines(
            fh, str(path), encoding_errors=encoding_errors, lenient_option=lenient_option, encoding=encoding
        )
    if scan.n_bytes == 0:
        raise ToolkitInputError(f"{path}: file is empty")
    if scan.n_empty_lines == scan.n_lines:
        raise ToolkitInputError(f"{path}: file contains only whitespace")
    return scan


def _json_error(path, lineno: int, line: str, detail: str, first: bool) -> ToolkitInputError:
    stripped = line.strip()
    if first and stripped.startswith("["):
        return ToolkitInputError(
            f"{path}:{lineno}: this file looks like one JSON array ([{{...}}, {{...}}]), but JSON Lines is "
            f"expected: one JSON object per line. Convert it, e.g. jq -c '.[]' {path} > {_renamed(path, 'lines')}"
        )
    if stripped == "{":
        return ToolkitInputError(
            f"{path}:{lineno}: {detail}: a JSON object spread over several lines? JSON Lines is expected: "
            f"each object on one line (e.g. jq -c . {path})"
        )
    return ToolkitInputError(f"{path}:{lineno}: {detail}")


def iter_jsonl(path: str | os.PathLike, *, encoding: str = "utf-8", encoding_errors: str = "strict"):
    """Yield ``(line number, object)`` for each non-empty line of a JSON Lines file (in ``encoding``; a
    byte-order mark is skipped).

    Raises:
        ToolkitInputError: a missing file or a directory, a file that is not UTF-8 text, a JSON array file
            instead of JSON Lines, or a line that is not a JSON object, naming file and line.
    """
    path = require_file(path)
    codec = text_decoding(encoding, encoding_errors)
    first = True
    try:
        with open(path, encoding=codec, errors=encoding_errors) as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as err:
                    if "\x00" in line:
                        check_text_file(path, encoding=encoding)  # raises: a binary file
                    raise _json_error(path, lineno, line, f"not valid JSON ({err.msg})", first) from None
                if not isinstance(record, dict):
                    raise _json_error(
                        path, lineno, line, f"expected a JSON object, got {type(record).__name__}", first
                    )
                first = False
                yield lineno, record
    except UnicodeDecodeError:
        check_text_file(path, encoding=encoding)  # raises with the line, byte offset and remedy
        raise


def scan_jsonl_file(
    path: str | os.PathLike, *, text_field: str, encoding: str = "utf-8", encoding_errors: str = "strict"
) -> FileScan:
    """Check that every non-empty line of a JSON Lines file is an object with a string ``text_field``.

    Records whose text is empty or blank are counted with the blank lines (``n_empty_lines``): training
    skips both.

    Raises:
        ToolkitInputError: naming the file and line of the first malformed record.
    """
    scan = scan_text_file(path, encoding=encoding, encoding_errors=encoding_errors, lenient_option=LENIENT)
    for lineno, record in iter_jsonl(path, encoding=encoding, encoding_errors=encoding_errors):
        if text_field not in record:
            raise ToolkitInputError(
                f"{path}:{lineno}: no field {text_field!r} (found {sorted(record)}); set --text_field"
            )
        if not isinstance(record[text_field], str):
            raise ToolkitInputError(
                f"{path}:{lineno}: field {text_field!r} is {type(record[text_field]).__name__}, expected a string"
            )
        if not record[text_field].strip():
            scan.n_empty_lines += 1
    return scan


def write_json(data: dict, path: str | os.PathLike) -> None:
    """Write ``data`` as indented UTF-8 JSON (non-ASCII kept readable; any known token masked)."""
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    Path(path).write_text(redact(text) + "\n", encoding="utf-8")


def json_text(obj) -> str:
    """JSON that is always valid UTF-8: readable non-ASCII, but ``\\uXXXX`` escapes where the data holds
    lone surrogates (which UTF-8 cannot encode)."""
    text = json.dumps(obj, ensure_ascii=False, indent=2, default=str)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(obj, ensure_ascii=True, indent=2, default=str)
    return text


def resolve_files(
    specs: Sequence[str] | str, *, extensions: Sequence[str] = TEXT_EXTENSIONS + JSON_EXTENSIONS
) -> list[Path]:
    """Expand files, directories (recursively, filtered by extension) and glob patterns into a file list.

    Args:
        specs: paths, directories or glob patterns (``data/*.txt``, ``corpus/**/*.txt``).
        extensions: extensions kept when walking a directory (a file named explicitly is always kept).

    Returns:
        Sorted, de-duplicated list of files, in the order the specs were given.

    Raises:
        ToolkitInputError: a path that does not exist, a glob that matches nothing, or a directory with no
            file of the wanted extensions.

    Example:
        >>> resolve_files(["corpus/", "extra/*.jsonl"])  # doctest: +SKIP
    """
    if isinstance(specs, str):
        specs = [specs]
    if not specs:
        raise ToolkitInputError("no input files given: pass --train_files PATH [PATH ...] or --dataset_name")
    exts = tuple(e if e.startswith(".") else f".{e}" for e in extensions)
    found: list[Path] = []
    for spec in specs:
        spec = os.path.expanduser(spec)
        if glob.has_magic(spec):
            matches = [Path(p) for p in sorted(glob.glob(spec, recursive=True)) if Path(p).is_file()]
            if not matches:
                raise ToolkitInputError(f"glob pattern {spec!r} matches no file")
            found.extend(matches)
        elif os.path.isdir(spec):
            matches = sorted(
                p for p in Path(spec).rglob("*") if p.is_file() and p.name.lower().endswith(exts)
            )
            if not matches:
                raise ToolkitInputError(
                    f"directory {spec!r} contains no file ending in {', '.join(exts)} (searched recursively); "
                    "use --extensions to change the filter"
                )
            found.extend(matches)
        elif os.path.isfile(spec):
            found.append(Path(spec))
        else:
            raise ToolkitInputError(f"input path {spec!r} does not exist")
    seen: set[Path] = set()
    unique = []
    for p in found:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


# ------------------------------------------------------------------------------------------ vocabulary
def read_texts(
    inputs: Sequence[str | os.PathLike] | str,
    *,
    extensions: Sequence[str] = (".txt",),
    text_field: str = "text",
    encoding: str = "utf-8",
    encoding_errors: str = "strict",
) -> tuple[list[str], str]:
    """Read lines from files, directories (recursive, by extension) and ``-`` (standard input). A JSON Lines
    file (``.jsonl``/``.json``) gives the ``text_field`` of each record, as the pretraining reader does.
    Files are decoded as ``encoding`` (see :func:`text_decoding`; with ``encoding_errors="replace"`` bad bytes
    become U+FFFD and are counted in the log).

    Returns:
        ``(lines, sha256)``: non-empty lines, and a hash of the bytes read (for provenance).

    Raises:
        ToolkitInputError: missing paths, empty input, binary or non-UTF-8 files (naming the byte offset),
            a JSON Lines record without a string ``text_field`` (naming file and line).
    """
    inputs = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    digest = hashlib.sha256()
    lines: list[str] = []
    files = [i for i in inputs if str(i) != "-"]
    codec = text_decoding(encoding, encoding_errors)
    for path in resolve_files([str(f) for f in files], extensions=extensions) if files else []:
        scan = scan_text_file(
            path, encoding=encoding, encoding_errors=encoding_errors, lenient_option=LENIENT
        )
        if scan.n_replaced:
            logger.warning("%s: %d undecodable byte(s) replaced with U+FFFD", path, scan.n_replaced)
        data = path.read_bytes()
        digest.update(data)
        if path.suffix.lower() in JSON_EXTENSIONS:
            texts = _jsonl_texts(path, text_field, encoding=encoding, encoding_errors=encoding_errors)
            lines.extend(text for text in texts if text.strip())
        else:
            lines.extend(
                line for line in _LINE_BREAK.split(data.decode(codec, encoding_errors)) if line.strip()
            )
    if any(str(i) == "-" for i in inputs):
        data = sys.stdin.buffer.read()
        text = decode_text_bytes(
            data, name="standard input", encoding=encoding, encoding_errors=encoding_errors
        )
        digest.update(data)
        lines.extend(line for line in _LINE_BREAK.split(text) if line.strip())
    if not lines:
        raise ToolkitInputError("the input holds no text")
    return lines, digest.hexdigest()


def _jsonl_texts(path, text_field: str, **decoding):
    for lineno, record in iter_jsonl(path, **decoding):
        text = record.get(text_field)
        if not isinstance(text, str):
            raise ToolkitInputError(
                f"{path}:{lineno}: no string field {text_field!r} (fields: {sorted(record)}); set --text_field"
            )
        yield from text.split("\n")


def read_word_list(path: str | os.PathLike, *, encoding: str = "utf-8") -> list[str]:
    """The items of a word list, one per line (surrounding whitespace and blank lines dropped), in order.

    Raises:
        ToolkitInputError: a missing file, a directory, a binary or non-UTF-8 file (naming line and byte
            offset), or a list with no item.

    Example:
        >>> words = read_word_list("words.txt")  # doctest: +SKIP
        >>> vs = extract_vectors("outputs/pretrain/tiny_zh", words=words)  # doctest: +SKIP
    """
    path = check_text_file(path, encoding=encoding)
    text = path.read_text(encoding=text_decoding(encoding))
    words = [w.strip() for w in _LINE_BREAK.split(text) if w.strip()]  # not splitlines(): U+2028 is text
    if not words:
        raise ToolkitInputError(f"{path}: the word list is empty (expected one item per line)")
    return words
