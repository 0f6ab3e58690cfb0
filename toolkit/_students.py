"""A student cut from a teacher: the same architecture with fewer encoder layers, chosen from the teacher's.

A classic start for distillation ("take every other layer of BERT-base"). The student keeps the teacher's
config (labels, problem type, sizes) except ``num_hidden_layers``, its class (so a classifier stays a
classifier), its embeddings and its task head; student layer ``j`` is teacher layer ``layers[j]``. With
``embeddings_only`` only the embeddings (and the masked-LM decoder tied to them) are copied and every layer
starts fresh. The copy goes through :func:`~toolkit.transfer_weights`, whose report says what was copied.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from transformers import PreTrainedModel

from ._errors import ToolkitInputError
from ._transfer import TransferReport, transfer_weights

logger = logging.getLogger(__name__)

__all__ = ["CutReport", "cut_student", "save_student"]

REPORT_FILE = "cut_report.json"
EVERY_OTHER = "every_other"

# A layer of any BERT-like encoder (BERT, RoBERTa, ELECTRA, XLM-R, DeBERTa, ...): ``[prefix.]encoder.layer.N.``
_LAYER = re.compile(r"^((?:.*\.)?encoder\.layer\.)(\d+)\.")
# The embeddings module: ``[prefix.]embeddings.`` (word, position, token-type embeddings and their LayerNorm).
_EMBEDDINGS = re.compile(r"(?:^|\.)embeddings\.")

# Task heads by the suffix of ``config.architectures[0]``, with the Auto class that loads them.
_AUTO_CLASS_OF_HEAD = {
    "ForMaskedLM": "AutoModelForMaskedLM",
    "ForPreTraining": "AutoModelForPreTraining",
    "ForSequenceClassification": "AutoModelForSequenceClassification",
    "ForTokenClassification": "AutoModelForTokenClassification",
    "ForQuestionAnswering": "AutoModelForQuestionAnswering",
    "ForMultipleChoice": "AutoModelForMultipleChoice",
}
# A sentence-transformers directory's own files, besides the transformer's (copied to a student of one).
_ST_ROOT_FILES = ("modules.json", "config_sentence_transformers.json")


@dataclass
class CutReport(TransferReport):
    """What :func:`cut_student` did: a :class:`~toolkit.TransferReport` plus the cut itself.

    Attributes:
        teacher: the teacher's directory, or its ``name_or_path`` (class name) for a model in memory.
        teacher_layers: the teacher's number of encoder layers.
        kept_layers: the teacher layers copied, in student order (student layer ``j`` is teacher layer
            ``kept_layers[j]``); empty with ``embeddings_only``.
        student_layers: the student's number of encoder layers.
        embeddings_only: only the embeddings were copied; the layers and the head are fresh.
    """

    teacher: str = ""
    teacher_layers: int = 0
    kept_layers: list[int] = field(default_factory=list)
    student_layers: int = 0
    embeddings_only: bool = False

    def summary(self) -> str:
        if self.embeddings_only:
            cut = f"embeddings only, {self.student_layers} fresh layers"
        else:
            kept = ", ".join(map(str, self.kept_layers))
            cut = f"kept layers {kept} of {self.teacher_layers}"
        return f"{cut}; {super().summary()}"

    def record(self) -> dict:
        """What ``cut_report.json`` holds: the cut, and the transfer's summary and lists (without the long
        list of copied pairs, counted instead)."""
        return {
            "teacher": self.teacher,
            "teacher_layers": self.teacher_layers,
            "kept_layers": self.kept_layers,
            "student_layers": self.student_layers,
            "embeddings_only": self.embeddings_only,
            "summary": self.summary(),
            "n_copied": len(self.copied),
            "missing": self.missing,
            "unexpected": self.unexpected,
            "shape_mismatch": [list(m) for m in self.shape_mismatch],
        }


def _parse_layers(spec: Sequence[int] | str, n_teacher: int) -> list[int]:
    """``spec`` as a list of teacher layer indices, validated against a teacher of ``n_teacher`` layers."""

    def bad(why: str) -> ToolkitInputError:
        return ToolkitInputError(
            f"student layers {spec!r}: {why}; the teacher has {n_teacher} layers (0 to {n_teacher - 1}). "
            f"Give strictly increasing 0-based indices such as '0,2,4', or '{EVERY_OTHER}'"
        )

    if isinstance(spec, str):
        text = spec.strip()
        if text.lower().replace("-", "_").replace(" ", "_") == EVERY_OTHER:
            return list(range(0, n_teacher, 2))
        parts = [p.strip() for p in text.replace(" ", ",").split(",") if p.strip()]
        if not all(re.fullmatch(r"-?\d+", p) for p in parts):
            raise bad("not a list of layer numbers")
        layers = [int(p) for p in parts]
    else:
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in spec):
            raise bad("not a list of layer numbers")
        layers = list(spec)
    if not layers:
        raise bad("no layer given")
    out_of_range = [i for i in layers if not 0 <= i < n_teacher]
    if out_of_range:
        raise bad(f"layer {out_of_range[0]} is out of range")
    if any(b <= a for a, b in zip(layers, layers[1:], strict=False)):
        raise bad("the indices must be strictly increasing (each layer once, in order)")
    return layers


def _load_teacher(path: Path) -> PreTrainedModel:
    """The model a directory holds, with its task head: the Auto class its ``architectures`` names."""
    import transformers

    if not (path / "config.json").is_file():
        hint = (
            ": this sentence-transformers directory keeps its transformer in a subfolder; give that folder"
            if (path / "modules.json").is_file()
            else ""
        )
        raise ToolkitInputError(f"teacher {str(path)!r} has no config.json{hint}")
    try:
        config = transformers.AutoConfig.from_pretrained(str(path))
    except (OSError, ValueError) as err:
        raise ToolkitInputError(f"cannot read the teacher's config in {str(path)!r}: {err}") from None
    if getattr(config, "tagger_head", None):  # a tagger with CRF / BiLSTM layers (train_ner.py)
        from ._tagger_heads import load_token_classifier

        return load_token_classifier(path)
    architecture = (getattr(config, "architectures", None) or [""])[0]
    auto = next((a for s, a in _AUTO_CLASS_OF_HEAD.items() if architecture.endswith(s)), "AutoModel")
    try:
        return getattr(transformers, auto).from_pretrained(str(path), config=config)
    except (OSError, ValueError) as err:
        raise ToolkitInputError(f"cannot load the teacher from {str(path)!r}: {err}") from None


def cut_student(
    teacher: str | os.PathLike | PreTrainedModel,
    *,
    layers: Sequence[int] | str = EVERY_OTHER,
    embeddings_only: bool = False,
    num_layers: int | None = None,
) -> tuple[PreTrainedModel, CutReport]:
    """A smaller model of the teacher's architecture, made by keeping chosen encoder layers.

    The student has the teacher's class and config except ``num_hidden_layers``: a masked-LM stays a
    masked-LM, a classifier keeps its labels and head. Student layer ``j`` receives teacher layer
    ``layers[j]`` (never teacher layer ``j`` unless it is kept there); embeddings, pooler and task head are
    copied by name. Any model whose layers are named ``*.encoder.layer.N.`` works (BERT, RoBERTa, ELECTRA, ...).
    The teacher is not changed.

    Args:
        teacher: a model directory (a masked-LM, a classifier or tagger, or a sentence-transformers directory
            holding a plain ``BertModel`` at its root) or a model in memory.
        layers: the teacher layers to keep, 0-based and strictly increasing: a list, a string ``"0,2,4"``,
            or ``"every_other"`` (0, 2, 4, ...).
        embeddings_only: copy only the embeddings (and the masked-LM decoder tied to them); the encoder
            layers, pooler and task head start from random initialisation.
        num_layers: with ``embeddings_only``, the student's number of layers (default: as many as
            ``layers`` names, i.e. half the teacher's for ``"every_other"``); otherwise, if given, it must
            equal the number of layers kept.

    Returns:
        ``(student, report)``: the student (in eval mode, the teacher's dtype) and a :class:`CutReport`.

    Raises:
        ToolkitInputError: a bad layer specification (the message names the teacher's layer count), a
            teacher whose layers are not ``*.encoder.layer.N.``, or an unreadable teacher directory.

    Example:
        >>> student, report = cut_student("outputs/classify/sst2", layers="0,2,4")  # doctest: +SKIP
        >>> print(report.summary())  # doctest: +SKIP
        kept layers 0, 2, 4 of 6; copied 57, missing 0, unexpected 48, shape mismatches 0
        >>> save_student(student, "outputs/sst2_3layers", report=report)  # doctest: +SKIP
    """
    if isinstance(teacher, PreTrainedModel):
        model, name = teacher, str(getattr(teacher, "name_or_path", "") or type(teacher).__name__)
    else:
        path = Path(teacher)
        if not path.is_dir():
            raise ToolkitInputError(f"teacher {str(path)!r} is not a model directory")
        model, name = _load_teacher(path), str(path)
    n_teacher = getattr(model.config, "num_hidden_layers", None)
    state = model.state_dict()
    layer_of = {k: int(m.group(2)) for k in state if (m := _LAYER.match(k))}
    if not isinstance(n_teacher, int) or not layer_of or max(layer_of.values()) + 1 != n_teacher:
        raise ToolkitInputError(
            f"teacher {name!r} ({type(model).__name__}): cutting layers needs a model whose config has "
            "num_hidden_layers and whose layers are named '*.encoder.layer.N.' (BERT, RoBERTa, ELECTRA, ...)"
        )
    kept = _parse_layers(layers, n_teacher)
    if embeddings_only:
        n_student = len(kept) if num_layers is None else num_layers
        if n_student < 1:
            raise ToolkitInputError(f"num_layers must be at least 1, got {num_layers}")
    else:
        if num_layers is not None and num_layers != len(kept):
            raise ToolkitInputError(
                f"num_layers {num_layers} does not match the {len(kept)} layers kept ({kept}); num_layers sets "
                "the size of an embeddings-only student: leave it out, or choose the layers to keep"
            )
        n_student = len(kept)

    # 1. The student: the teacher's class and config, fewer layers, random initialisation.
    config = copy.deepcopy(model.config)
    config.num_hidden_layers = n_student
    student = type(model)(config).to(dtype=model.dtype).eval()

    # 2. What it receives. Teacher layers that are not kept are left out of the source, so that no student
    # layer can take one by its name (transfer_weights falls back to identical names).
    if embeddings_only:
        embedding_storage = {t.data_ptr() for k, t in student.state_dict().items() if _EMBEDDINGS.search(k)}
        tied = {k for k, t in student.state_dict().items() if t.data_ptr() in embedding_storage}
        source = {k: t for k, t in state.items() if _EMBEDDINGS.search(k) or k in tied}
        patterns: list[tuple[str, str]] = []
        kept = []
    else:
        source = {k: t for k, t in state.items() if k not in layer_of or layer_of[k] in kept}
        patterns = [(rf"^((?:.*\.)?encoder\.layer\.){i}\.", rf"\g<1>{j}.") for j, i in enumerate(kept)]
    result = transfer_weights(source, student, patterns=patterns)
    report = CutReport(
        copied=result.copied,
        missing=result.missing,
        unexpected=[k for k in state if k not in {s for _, s in result.copied}],
        shape_mismatch=result.shape_mismatch,
        teacher=name,
        teacher_layers=n_teacher,
        kept_layers=kept,
        student_layers=n_student,
        embeddings_only=embeddings_only,
    )
    logger.info("Student cut from %s: %s", name, report.summary())
    return student, report


def _copy_sentence_transformers_files(teacher_dir: Path, output_dir: Path) -> None:
    """A student of a sentence-transformers directory (transformer at the root) keeps its modules: pooling,
    normalisation, dense layers (their sizes depend on the hidden size, which the cut keeps)."""
    modules = json.loads((teacher_dir / "modules.json").read_text(encoding="utf-8"))
    for name in _ST_ROOT_FILES:
        if (teacher_dir / name).is_file():
            shutil.copyfile(teacher_dir / name, output_dir / name)
    for path in teacher_dir.glob("sentence_*_config.json"):
        shutil.copyfile(path, output_dir / path.name)
    for entry in modules if isinstance(modules, list) else []:
        sub = str(entry.get("path", "") if isinstance(entry, dict) else "")
        if sub and (teacher_dir / sub).is_dir():
            shutil.copytree(teacher_dir / sub, output_dir / sub, dirs_exist_ok=True)


def save_student(
    student: PreTrainedModel,
    output_dir: str | os.PathLike,
    *,
    report: CutReport,
    tokenizer=None,
    overwrite: bool = False,
) -> Path:
    """Save a student as a plain model directory: weights and config, the teacher's tokenizer, and
    ``cut_report.json`` (teacher, kept layers, the transfer's summary and its missing/unexpected lists).

    The directory loads with ``AutoModelFor...from_pretrained`` and, for a classifier, in
    ``transformers.pipeline``. A student of a sentence-transformers directory also gets its module files
    (``modules.json``, pooling, ...).

    Args:
        student: the model from :func:`cut_student`.
        output_dir: where to write; created if needed.
        report: the :class:`CutReport` from :func:`cut_student`.
        tokenizer: a tokenizer or a directory holding one (default: the teacher's directory).
        overwrite: write into a directory that already holds files.

    Returns:
        The output directory.

    Raises:
        ToolkitInputError: the output is the teacher's directory, or holds files and ``overwrite`` is not
            set, or no tokenizer can be found. Checked before anything is written.

    Example:
        >>> student, report = cut_student("outputs/pretrain/base", layers="every_other")  # doctest: +SKIP
        >>> save_student(student, "outputs/pretrain/base_half", report=report)  # doctest: +SKIP
    """
    from transformers import AutoTokenizer

    out = Path(output_dir)
    teacher_dir = Path(report.teacher) if report.teacher and Path(report.teacher).is_dir() else None
    if teacher_dir is not None and out.resolve() == teacher_dir.resolve():
        raise ToolkitInputError(f"output directory {str(out)!r} is the teacher's: choose another")
    if out.exists() and not out.is_dir():
        raise ToolkitInputError(f"output directory {str(out)!r} is a file")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ToolkitInputError(
            f"output directory {str(out)!r} is not empty: choose another, or pass --overwrite to write over it"
        )
    source = tokenizer if tokenizer is not None else teacher_dir
    if source is None:
        raise ToolkitInputError(
            "the teacher was a model in memory: pass tokenizer= (a tokenizer or its directory)"
        )
    if isinstance(source, (str, os.PathLike)):
        try:
            source = AutoTokenizer.from_pretrained(str(source))
        except (OSError, ValueError) as err:
            raise ToolkitInputError(f"no tokenizer could be loaded from {str(source)!r}: {err}") from None
    out.mkdir(parents=True, exist_ok=True)
    student.save_pretrained(out)
    source.save_pretrained(out)
    if teacher_dir is not None and (teacher_dir / "modules.json").is_file():
        _copy_sentence_transformers_files(teacher_dir, out)
    (out / REPORT_FILE).write_text(
        json.dumps(report.record(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    logger.info("Student saved to %s (%s)", out, report.summary())
    return out
