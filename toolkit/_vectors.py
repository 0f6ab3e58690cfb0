"""A set of named vectors (characters, words or sentences) with provenance, coverage and file formats.

Formats: word2vec text and binary (loadable by gensim's ``KeyedVectors.load_word2vec_format``), ``.npy``
matrix + ``.vocab.txt`` + ``.json`` provenance, and safetensors with provenance in the metadata.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from ._errors import ToolkitInputError
from ._io import json_text

logger = logging.getLogger(__name__)

VectorFormat = Literal["word2vec", "word2vec-binary", "npy", "safetensors"]
FORMATS: tuple[str, ...] = ("word2vec", "word2vec-binary", "npy", "safetensors")
VECTOR_EXTENSIONS = {
    ".txt": "word2vec",
    ".vec": "word2vec",
    ".bin": "word2vec-binary",
    ".npy": "npy",
    ".safetensors": "safetensors",
}


def escape_token(token: str) -> str:
    """Make a token safe for whitespace-separated formats: ``\\`` → ``\\\\``, each whitespace character
    (space, tab, newline, U+2028, ...) → ``\\uXXXX``. Reversed by :func:`unescape_token`."""
    if not any(c.isspace() or c == "\\" for c in token):
        return token
    out = []
    for c in token:
        if c == "\\":
            out.append("\\\\")
        elif c.isspace():
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
    return "".join(out)


def unescape_token(token: str) -> str:
    """Inverse of :func:`escape_token`."""
    if "\\" not in token:
        return token
    out, i = [], 0
    while i < len(token):
        if token[i] == "\\" and token[i + 1 : i + 2] == "\\":
            out.append("\\")
            i += 2
        elif token[i] == "\\" and token[i + 1 : i + 2] == "u":
            out.append(chr(int(token[i + 2 : i + 6], 16)))
            i += 6
        else:
            out.append(token[i])
            i += 1
    return "".join(out)


def _safe_text(token: str) -> str:
    # Lone surrogates cannot be encoded as UTF-8: keep them visible as escapes instead of crashing.
    return token.encode("utf-8", "backslashreplace").decode("utf-8")


@dataclass
class VectorSet:
    """Named vectors: ``tokens[i]`` has vector ``vectors[i]``.

    Attributes:
        tokens: the items (characters, words or sentences ids), unique.
        vectors: ``(len(tokens), dim)`` float32 matrix.
        provenance: where the vectors come from (checkpoint, mode, layers, pooling, corpus hash, date...).
        coverage: the coverage report of the extraction (see :class:`toolkit.CoverageReport`), as a dict.

    Example:
        >>> vs = VectorSet(["a", "b"], np.eye(2, dtype=np.float32))
        >>> vs["b"].tolist()
        [0.0, 1.0]
    """

    tokens: list[str]
    vectors: np.ndarray
    provenance: dict = field(default_factory=dict)
    coverage: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.vectors = np.ascontiguousarray(self.vectors, dtype=np.float32)
        if self.vectors.ndim != 2 or self.vectors.shape[0] != len(self.tokens):
            raise ValueError(
                f"vectors must be (len(tokens), dim); got {self.vectors.shape} for {len(self.tokens)} tokens"
            )
        if len(set(self.tokens)) != len(self.tokens):
            raise ValueError("tokens must be unique")
        self._index = {t: i for i, t in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self._index

    def __getitem__(self, token: str) -> np.ndarray:
        return self.vectors[self._index[token]]

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    # ----------------------------------------------------------------------------------------- saving
    def save(
        self,
        path: str | os.PathLike,
        *,
        format: VectorFormat | None = None,
        whitespace: str = "escape",
        coverage_file: bool = False,
    ) -> Path:
        """Save the vectors.

        Args:
            path: output file (its directory must exist). The ``npy`` format also writes
                ``<stem>.vocab.txt`` and ``<stem>.json`` beside it.
            format: ``word2vec`` (text), ``word2vec-binary``, ``npy`` or ``safetensors``; default from the
                extension (``.txt``/``.vec``, ``.bin``, ``.npy``, ``.safetensors``).
            coverage_file: also write the coverage report to ``<path>.coverage.json`` (what
                ``recipes/push_to_hub.py`` recognises a vector set by).
            whitespace: tokens containing whitespace are ``"escape"``-d (reversibly, see
                :func:`escape_token`) or ``"refuse"``-d with an error. They never corrupt the file.

        Returns:
            The path written.

        Raises:
            ToolkitInputError: missing output directory, unknown format, or a refused token.
        """
        path = Path(path)
        fmt = format or VECTOR_EXTENSIONS.get(path.suffix.lower())
        if fmt not in FORMATS:
            raise ToolkitInputError(
                f"unknown vector format {fmt or path.suffix!r}: choose from {', '.join(FORMATS)}"
            )
        if not path.parent.is_dir():
            raise ToolkitInputError(f"output directory {str(path.parent)!r} does not exist")
        if whitespace not in ("escape", "refuse"):
            raise ToolkitInputError(f"whitespace must be 'escape' or 'refuse', got {whitespace!r}")
        spaced = [t for t in self.tokens if any(c.isspace() for c in t)]
        if spaced and whitespace == "refuse":
            raise ToolkitInputError(
                f"{len(spaced)} tokens contain whitespace (e.g. {spaced[0]!r}); use whitespace='escape'"
            )
        names = [_safe_text(escape_token(t)) for t in self.tokens]
        meta = {"provenance": self.provenance, "coverage": self.coverage, "escaped_tokens": len(spaced)}
        if fmt == "word2vec":
            with open(path, "w", encoding="utf-8", newline="\n") as fh:
                fh.write(f"{len(self)} {self.dim}\n")
                for name, row in zip(names, self.vectors, strict=True):
                    fh.write(name + " " + " ".join(map(repr, row.tolist())) + "\n")
        elif fmt == "word2vec-binary":
            with open(path, "wb") as fh:
                fh.write(f"{len(self)} {self.dim}\n".encode())
                little = self.vectors.astype("<f4", copy=False)
                for name, row in zip(names, little, strict=True):
                    fh.write(name.encode("utf-8") + b" " + row.tobytes() + b"\n")
        elif fmt == "npy":
            with open(path, "wb") as fh:  # np.save(path) would append .npy to another name
                np.save(fh, self.vectors)
            stem = path.with_suffix("")
            Path(f"{stem}.vocab.txt").write_text("".join(n + "\n" for n in names), encoding="utf-8")
            Path(f"{stem}.json").write_text(json_text(meta), encoding="utf-8")
        else:
            from safetensors.torch import save_file

            save_file(
                {"vectors": torch.from_numpy(self.vectors)},
                str(path),
                metadata={"tokens": json_text(names), **{k: json_text(v) for k, v in meta.items()}},
            )
        if coverage_file:
            Path(f"{path}.coverage.json").write_text(json_text(self.coverage or {}), encoding="utf-8")
        return path

    @staticmethod
    def files_written(path: str | os.PathLike, *, format: VectorFormat | None = None) -> list[Path]:
        """Every file :meth:`save` writes for ``path`` (``npy`` writes two sidecars beside it)."""
        path = Path(path)
        if (format or VECTOR_EXTENSIONS.get(path.suffix.lower())) == "npy":
            stem = path.with_suffix("")
            return [path, Path(f"{stem}.vocab.txt"), Path(f"{stem}.json")]
        return [path]

    @classmethod
    def load(cls, path: str | os.PathLike, *, format: VectorFormat | None = None) -> VectorSet:
        """Load vectors saved by :meth:`save` (or any word2vec text/binary file).

        Raises:
            ToolkitInputError: missing file, unknown format, or a malformed file.
        """
        path = Path(path)
        if not path.is_file():
            raise ToolkitInputError(f"vector file {str(path)!r} does not exist")
        fmt = format or VECTOR_EXTENSIONS.get(path.suffix.lower())
        if fmt not in FORMATS:
            raise ToolkitInputError(f"cannot tell the format of {str(path)!r}: pass format=")
        provenance: dict = {}
        coverage: dict = {}
        if fmt == "word2vec":
            with open(path, encoding="utf-8", newline="\n") as fh:
                n, dim = _header(fh.readline(), path)
                tokens, rows = [], np.empty((n, dim), dtype=np.float32)
                for i in range(n):
                    parts = fh.readline().rstrip("\n").split(" ")
                    if len(parts) != dim + 1:
                        raise ToolkitInputError(f"{path}:{i + 2}: expected a token and {dim} numbers")
                    tokens.append(unescape_token(parts[0]))
                    rows[i] = np.asarray(parts[1:], dtype=np.float32)
        elif fmt == "word2vec-binary":
            with open(path, "rb") as fh:
                n, dim = _header(fh.readline().decode("utf-8"), path)
                tokens, rows = [], np.empty((n, dim), dtype=np.float32)
                for i in range(n):
                    word = bytearray()
                    while True:
                        ch = fh.read(1)
                        if not ch:
                            raise ToolkitInputError(f"{path}: truncated at entry {i}")
                        if ch == b" ":
                            break
                        if ch != b"\n" or word:
                            word += ch
                    tokens.append(unescape_token(word.decode("utf-8")))
                    rows[i] = np.frombuffer(fh.read(4 * dim), dtype="<f4")
        elif fmt == "npy":
            rows = np.load(path)
            stem = path.with_suffix("")
            tokens = [
                unescape_token(t)
                for t in Path(f"{stem}.vocab.txt").read_text(encoding="utf-8").split("\n")[:-1]
            ]
            meta_path = Path(f"{stem}.json")
            if meta_path.is_file():
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
                provenance, coverage = meta.get("provenance", {}), meta.get("coverage", {})
        else:
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as fh:
                rows = fh.get_tensor("vectors").numpy()
                meta = fh.metadata() or {}
            tokens = [unescape_token(t) for t in json.loads(meta.get("tokens", "[]"))]
            provenance = json.loads(meta.get("provenance", "{}"))
            coverage = json.loads(meta.get("coverage", "{}"))
        return cls(tokens, rows, provenance, coverage)

    # ------------------------------------------------------------------------------------- embedding
    def to_embedding(
        self,
        vocab: list[str] | dict[str, int],
        *,
        padding_token: str | None = "[PAD]",
        unknown_token: str | None = "[UNK]",
        freeze: bool = False,
        seed: int = 0,
    ) -> tuple[torch.nn.Embedding, dict]:
        """An ``nn.Embedding`` whose rows follow ``vocab`` (a token list in id order, or token → id).

        Rows of tokens in this set are copied; the padding row is zeros (and ``padding_idx``); the unknown
        row is this set's ``unknown_token`` vector if present, else the mean vector; other tokens get
        random rows with this set's standard deviation.

        Returns:
            ``(embedding, report)`` where the report counts copied, random, padding and unknown rows and
            lists up to 20 tokens that got random rows.

        Example:
            >>> emb, report = vs.to_embedding(["[PAD]", "[UNK]", "a", "b"])  # doctest: +SKIP
        """
        index = vocab if isinstance(vocab, dict) else {t: i for i, t in enumerate(vocab)}
        size = max(index.values()) + 1
        gen = np.random.default_rng(seed)
        std = float(self.vectors.std()) or 0.02
        weight = gen.normal(0.0, std, size=(size, self.dim)).astype(np.float32)
        copied, random_tokens = 0, []
        for token, i in index.items():
            if token in self._index:
                weight[i] = self.vectors[self._index[token]]
                copied += 1
            elif token not in (padding_token, unknown_token):
                random_tokens.append(token)
        padding_idx = index.get(padding_token) if padding_token is not None else None
        if padding_idx is not None:
            weight[padding_idx] = 0.0
        if unknown_token is not None and unknown_token in index and unknown_token not in self._index:
            weight[index[unknown_token]] = self.vectors.mean(axis=0)
        embedding = torch.nn.Embedding.from_pretrained(
            torch.from_numpy(weight), freeze=freeze, padding_idx=padding_idx
        )
        report = {
            "rows": size,
            "copied": copied,
            "random": len(random_tokens),
            "random_examples": random_tokens[:20],
            "padding_idx": padding_idx,
            "unknown_idx": index.get(unknown_token) if unknown_token else None,
        }
        return embedding, report


def _header(line: str, path: Path) -> tuple[int, int]:
    try:
        n, dim = (int(x) for x in line.split())
    except ValueError:
        raise ToolkitInputError(f"{path}: first line must be '<count> <dim>', got {line.strip()!r}") from None
    return n, dim
