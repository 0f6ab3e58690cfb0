"""Copy parameters from a checkpoint into any ``torch.nn.Module``, by name mapping or pattern.

Answers two old user requests: "load only part of a pretrained model's parameters" and "take one layer's
parameters from a pretrained model and assign them to a layer of my network".
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ._checkpoint import WEIGHT_FILES, read_state_dict
from ._errors import ToolkitInputError

logger = logging.getLogger(__name__)


@dataclass
class TransferReport:
    """Outcome of :func:`transfer_weights`.

    Attributes:
        copied: ``target name <- source name`` pairs copied.
        missing: target parameters/buffers that received nothing.
        unexpected: source tensors that were not used.
        shape_mismatch: ``(target, source, target shape, source shape)`` pairs skipped.
    """

    copied: list[tuple[str, str]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    shape_mismatch: list[tuple[str, str, tuple, tuple]] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"copied {len(self.copied)}, missing {len(self.missing)}, unexpected {len(self.unexpected)}, "
            f"shape mismatches {len(self.shape_mismatch)}"
        )


def _source_state(source) -> dict[str, torch.Tensor]:
    if isinstance(source, torch.nn.Module):
        return source.state_dict()
    if isinstance(source, Mapping):
        return dict(source)
    path = Path(source)
    if path.is_dir():
        for name in WEIGHT_FILES:
            if (path / name).is_file() and not name.endswith(".index.json"):
                return read_state_dict(path / name)
        raise ToolkitInputError(f"{str(path)!r} has no single weights file ({', '.join(WEIGHT_FILES[:2])})")
    return read_state_dict(path)


def transfer_weights(
    source: str | os.PathLike | torch.nn.Module | Mapping[str, torch.Tensor],
    target: torch.nn.Module,
    *,
    mapping: Mapping[str, str] | None = None,
    patterns: Sequence[tuple[str, str]] | None = None,
    strict_shapes: bool = False,
) -> TransferReport:
    """Copy tensors from ``source`` into ``target`` in place, and report what happened.

    Names are matched, in this order of precedence: ``mapping`` (target name → source name), then
    ``patterns`` (regex on the source name → replacement giving the target name, ``re.sub`` syntax), then
    identical names. Nothing is copied when shapes differ.

    Args:
        source: a checkpoint directory, a ``.safetensors``/``.bin`` file, a module or a state dict.
        target: the module to fill.
        mapping: explicit ``{"embedding.weight": "bert.embeddings.word_embeddings.weight"}`` pairs.
        patterns: ``[(r"^bert\\.encoder\\.layer\\.0\\.(.*)", r"block.\\1")]`` rules.
        strict_shapes: raise instead of skipping on a shape mismatch.

    Returns:
        A :class:`TransferReport`.

    Raises:
        ToolkitInputError: a mapping naming a tensor absent from source or target, or a shape mismatch
            under ``strict_shapes``.

    Example:
        >>> report = transfer_weights("out/tiny", my_lstm, mapping={"emb.weight": "bert.embeddings.word_embeddings.weight"})  # doctest: +SKIP
        >>> print(report.summary())  # doctest: +SKIP
    """
    state = _source_state(source)
    target_state = target.state_dict()
    pairs: dict[str, str] = {}
    for tname, sname in (mapping or {}).items():
        if tname not in target_state:
            raise ToolkitInputError(f"mapping target {tname!r} is not a parameter of the target module")
        if sname not in state:
            raise ToolkitInputError(f"mapping source {sname!r} is not in the checkpoint")
        pairs[tname] = sname
    compiled = [(re.compile(p), r) for p, r in (patterns or [])]
    for sname in state:
        for regex, repl in compiled:
            if regex.search(sname):
                tname = regex.sub(repl, sname)
                if tname in target_state and tname not in pairs:
                    pairs[tname] = sname
                break
    for tname in target_state:
        if tname not in pairs and tname in state:
            pairs[tname] = tname
    report = TransferReport()
    used: set[str] = set()
    with torch.no_grad():
        for tname, sname in pairs.items():
            src, dst = state[sname], target_state[tname]
            if tuple(src.shape) != tuple(dst.shape):
                if strict_shapes:
                    raise ToolkitInputError(
                        f"shape mismatch: {tname} {tuple(dst.shape)} <- {sname} {tuple(src.shape)}"
                    )
                report.shape_mismatch.append((tname, sname, tuple(dst.shape), tuple(src.shape)))
                continue
            dst.copy_(src.to(dtype=dst.dtype))
            report.copied.append((tname, sname))
            used.add(sname)
    copied_targets = {t for t, _ in report.copied}
    report.missing = [t for t in target_state if t not in copied_targets]
    report.unexpected = [s for s in state if s not in used]
    logger.info("Weight transfer: %s", report.summary())
    return report
