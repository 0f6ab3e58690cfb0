"""Distillation from the recipe's side (``recipes/distill.py``): which task a command line asks for, the
option checks, the student (a checkpoint, a fresh preset, or cut out of the teacher), the teacher's scores of
every split (cached), the training sets that carry them, and the share of the teacher's score the student
keeps. The losses, the collator and the trainer are in ``toolkit._distill``."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import datasets
import numpy as np
import yaml
from transformers import (
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    TrainingArguments,
)

from ._distill import (
    TEACHER_LOGITS,
    TEACHER_POSITIONS,
    DistillationCollator,
    DistillationTrainer,
    attach_sentence_scores,
    attach_word_scores,
    cache_key,
    cached_arrays,
    default_layer_map,
    hard_label_loss,
    kept_share,
    parse_layer_map,
    predict_logits,
    read_unlabelled,
    same_vocabulary,
    soft_label_loss,
    teacher_labels,
)
from ._errors import ToolkitInputError
from ._masking import IGNORE_INDEX
from ._presets import PRESET_NAMES, apply_settings, finetune_settings, load_preset
from ._students import cut_student
from .classify import classification_metrics, encode_classification
from .config import DistillArguments, FinetuneArguments
from .ner import encode_ner_dataset, ner_scores, windows_dataset, word_scores

__all__ = [
    "PIPELINE_TAG",
    "STUDENT_USAGE",
    "TEACHER_CACHE",
    "TeacherComparison",
    "compare_with_teacher",
    "DistillationCollator",
    "DistillationTrainer",
    "Student",
    "TeacherScores",
    "attach_sentence_scores",
    "attach_word_scores",
    "build_student",
    "check_hidden_loss",
    "hidden_layer_map",
    "distill_task",
    "distillation_fingerprint",
    "hard_label_loss",
    "kept_share",
    "read_unlabelled",
    "same_vocabulary",
    "soft_label_loss",
    "teacher_labels",
    "teacher_metrics",
    "teacher_scores",
    "training_set",
    "validate_distill_options",
]

logger = logging.getLogger(__name__)

AUTO_CLASS = {"classification": AutoModelForSequenceClassification, "ner": AutoModelForTokenClassification}
HEADLINE = {"classification": "accuracy", "ner": "overall_f1"}
TEACHER_CACHE = "teacher_cache"  # the default cache, inside the output directory (never pushed)
PIPELINE_TAG = {"classification": "text-classification", "ner": "token-classification"}
STUDENT_USAGE = {  # the model card's usage block
    "classification": 'from transformers import pipeline\n\nclf = pipeline("text-classification", model="MODEL")\n'
    'print(clf("an example sentence"))',
    "ner": 'from toolkit import NERTagger\n\ntagger = NERTagger("MODEL")\nprint(tagger("..."))\n\n'
    "# or, without the toolkit (each token's best tag):\nfrom transformers import pipeline\n"
    'ner = pipeline("token-classification", model="MODEL", aggregation_strategy="first")',
}


# ------------------------------------------------------------------------------------------ options
def distill_task(argv: Sequence[str] | None, options: dict) -> str:
    """The ``--task`` of a distillation command line (flag, keyword option or ``--config`` file), read
    before parsing because it decides which options exist.

    Raises:
        ToolkitInputError: no task, or not 'classification' / 'ner'.
    """
    argv = list(argv or [])
    task = options.get("task")
    for i, arg in enumerate(argv):
        if arg == "--task" and i + 1 < len(argv):
            task = task or argv[i + 1]
        elif arg.startswith("--task="):
            task = task or arg.split("=", 1)[1]
    config = options.get("config")
    if "--config" in argv and argv.index("--config") + 1 < len(argv):
        config = argv[argv.index("--config") + 1]
    config = config or next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")), None)
    if task is None and config and os.path.isfile(config):
        with open(config, encoding="utf-8") as fh:
            task = (yaml.safe_load(fh) or {}).get("task")
    if task not in AUTO_CLASS:
        raise ToolkitInputError(
            f"--task must be 'classification' or 'ner'{f', got {task!r}' if task else ''} (see --help)"
        )
    return task


def validate_distill_options(ft: FinetuneArguments, dist: DistillArguments, *, task: str) -> None:
    """Check the distillation options together, before anything is loaded. A student cut from the teacher
    or a fresh preset reads the teacher's tokenizer: ``ft.model_name_or_path`` is set to the teacher.

    Raises:
        ToolkitInputError: naming the options at fault.
    """
    if not dist.teacher:
        raise ToolkitInputError(
            "--teacher is required (a fine-tuned classifier or token-classifier directory)"
        )
    origins = [
        name
        for name, given in (
            ("--model_name_or_path", ft.model_name_or_path),
            ("--student_layers", dist.student_layers),
            ("--student_preset", dist.student_preset),
        )
        if given
    ]
    if len(origins) != 1:
        raise ToolkitInputError(
            "give exactly one student: --model_name_or_path (a checkpoint), --student_layers (cut from the "
            f"teacher) or --student_preset (fresh){'; got ' + ', '.join(origins) if origins else ''}"
        )
    if dist.student_preset and dist.student_preset not in PRESET_NAMES:
        raise ToolkitInputError(f"--student_preset must be one of {', '.join(PRESET_NAMES)}")
    if dist.temperature <= 0:
        raise ToolkitInputError(f"--temperature must be positive, got {dist.temperature}")
    if not 0.0 <= dist.hard_label_weight <= 1.0:
        raise ToolkitInputError(f"--hard_label_weight must be in [0, 1], got {dist.hard_label_weight}")
    if dist.hidden_weight < 0:
        raise ToolkitInputError(f"--hidden_weight must be >= 0, got {dist.hidden_weight}")
    if dist.layer_map and not dist.hidden_weight:
        raise ToolkitInputError("--layer_map pairs layers for the hidden-state loss: add --hidden_weight")
    if task == "ner" and (ft.encoder != "transformer" or ft.crf or ft.bilstm_hidden):
        raise ToolkitInputError(
            "a distilled tagger is a transformer token classifier: drop --encoder bilstm / --crf / --bilstm_hidden"
        )
    if dist.student_layers or dist.student_preset:
        ignored = [
            f"--{name}"
            for name in ("dropout", "embedding_rms", "position_rms_ratio")
            if getattr(ft, name, None) is not None
        ] + [
            f"--{name}"
            for name in ("freeze_embeddings", "freeze_layers", "uniform_top_attention")
            if getattr(ft, name, None)
        ]
        if ignored:
            origin = "--student_layers" if dist.student_layers else "--student_preset"
            raise ToolkitInputError(
                f"{' '.join(ignored)}: options of a checkpoint student (--model_name_or_path), not of {origin}"
            )
    if dist.unlabelled_files and (ft.multi_label or getattr(ft, "text_pair_column", None)):
        raise ToolkitInputError(
            "--unlabelled_files holds single texts: not for --multi_label or sentence pairs"
        )
    if not ft.model_name_or_path:
        ft.model_name_or_path = dist.teacher  # the tokenizer (and size settings) of a student made from it


def distillation_fingerprint(dist: DistillArguments) -> dict:
    """The distillation options that define a run (for resuming), beside the fine-tuning ones."""
    fields = ("teacher", "student_layers", "student_preset", "temperature", "hard_label_weight")
    fields += ("hidden_weight", "layer_map", "unlabelled_files")
    values = {name: getattr(dist, name) for name in fields}
    values["teacher"] = os.path.realpath(dist.teacher) if os.path.exists(dist.teacher) else dist.teacher
    return values


# ------------------------------------------------------------------------------------------ the student
@dataclass
class Student:
    """The student model, where it came from (for the card), its loading report and, for a student cut
    from the teacher, the teacher layers it kept."""

    model: PreTrainedModel
    origin: str
    report: dict
    kept_layers: list[int] | None = None


def build_student(
    ft: FinetuneArguments,
    dist: DistillArguments,
    labels: Sequence[str],
    *,
    task: str,
    tokenizer: PreTrainedTokenizerBase,
    args: TrainingArguments,
) -> Student:
    """The student: cut from the teacher (its head kept: the labels are the teacher's, in its order), a
    fresh preset of the teacher's vocabulary (with that preset's fine-tuning settings wherever the user set
    none), or a checkpoint with a new head (:func:`toolkit.finetune.finetune_model`)."""
    from .finetune import finetune_model

    problem_type = "multi_label_classification" if getattr(ft, "multi_label", False) else None
    if dist.student_layers:
        model, report = cut_student(dist.teacher, layers=dist.student_layers)
        model.train()
        origin = f"cut from the teacher, keeping its layers {', '.join(map(str, report.kept_layers))}"
        return Student(model, origin, report.as_dict(), report.kept_layers)
    if dist.student_preset:
        settings = apply_settings(
            args, finetune_settings(dist.student_preset, task), source=f"{dist.student_preset} preset"
        )
        logger.info("Training settings of a fresh %s student: %s", dist.student_preset, settings)
        config = load_preset(
            dist.student_preset, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id
        )
        config.num_labels = len(labels)
        config.id2label = dict(enumerate(labels))
        config.label2id = {lab: i for i, lab in enumerate(labels)}
        config.problem_type = problem_type
        model = AUTO_CLASS[task].from_config(config)
        return Student(
            model, f"a fresh {dist.student_preset} model (random weights, the teacher's tokenizer)", {}
        )
    model, report, _ = finetune_model(AUTO_CLASS[task], ft, labels, problem_type=problem_type)
    return Student(model, f"{ft.model_name_or_path} with a new head", report)


def check_hidden_loss(dist: DistillArguments, student_tokenizer: PreTrainedTokenizerBase) -> None:
    """The hidden-state loss pairs positions token by token: refuse it when the teacher's tokenizer is not the
    student's (checked only with ``--hidden_weight``).

    Raises:
        ToolkitInputError: ``--hidden_weight`` with a student whose tokenizer is not the teacher's, or a
            teacher whose tokenizer does not load.
    """
    if not dist.hidden_weight:
        return
    try:
        teacher_tokenizer = AutoTokenizer.from_pretrained(dist.teacher)
    except (OSError, ValueError) as err:
        raise ToolkitInputError(f"--teacher {dist.teacher}: cannot load its tokenizer: {err}") from None
    if not same_vocabulary(teacher_tokenizer, student_tokenizer):
        raise ToolkitInputError(
            "--hidden_weight matches hidden states token by token, so teacher and student need one tokenizer; "
            "this student has its own (the soft labels still align per sentence / per word: drop --hidden_weight)"
        )


def hidden_layer_map(dist: DistillArguments, student: Student, teacher_depth: int) -> list[tuple[int, int]]:
    """The ``(student, teacher)`` layer pairs of the hidden-state loss: ``--layer_map``, else the kept layers
    of a cut student, else evenly spread."""
    depth = student.model.config.num_hidden_layers
    if dist.layer_map:
        return parse_layer_map(dist.layer_map, student_layers=depth, teacher_layers=teacher_depth)
    if student.kept_layers:
        return list(enumerate(student.kept_layers))
    return default_layer_map(depth, teacher_depth)


# ----------------------------------------------------------------------------------- the teacher's scores
@dataclass
class TeacherScores:
    """The teacher's label scores of each split: one ``(C,)`` row per example (classification) or one
    ``(n_words, C)`` array per sentence (NER), columns in the labels' order; and the teacher itself."""

    scores: dict[str, list[np.ndarray]]
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase


def teacher_scores(
    teacher: str,
    data: dict[str, list],
    *,
    task: str,
    max_length: int,
    stride: int = 16,
    batch_size: int = 64,
    cache_dir: str | os.PathLike | None = None,
    multi_label: bool = False,
    device: str = "cpu",
) -> TeacherScores:
    """Run the teacher (with its own tokenizer) once over every split of ``data`` (examples or sentences);
    scores are cached in ``cache_dir`` (see :func:`toolkit._distill.cache_key`).

    Raises:
        ToolkitInputError: a teacher that does not load.
    """
    try:
        model = AUTO_CLASS[task].from_pretrained(teacher).to(device)
        tokenizer = AutoTokenizer.from_pretrained(teacher)
    except (OSError, ValueError) as err:
        raise ToolkitInputError(f"--teacher {teacher}: cannot load it: {err}") from None
    scores = {}
    for name, items in data.items():
        if task == "classification":
            texts = [[e.text, e.text_pair] for e in items]
            key = cache_key(teacher, texts, task=task, max_length=max_length)

            def compute(items=items, name=name):
                features, _ = encode_classification(
                    [e.__class__(text=e.text, labels=[], text_pair=e.text_pair) for e in items],
                    tokenizer,
                    label2id={},
                    multi_label=multi_label,
                    max_length=max_length,
                )
                return predict_logits(
                    model,
                    features,
                    pad_id=tokenizer.pad_token_id or 0,
                    batch_size=batch_size,
                    desc=f"teacher ({name})",
                )

        else:
            texts = [s.tokens for s in items]
            key = cache_key(teacher, texts, task=task, max_length=max_length, stride=stride)

            def compute(items=items, name=name):
                windows, owner, _ = encode_ner_dataset(
                    items, tokenizer, label2id=None, max_length=max_length, stride=stride
                )
                logits = predict_logits(
                    model,
                    windows,
                    pad_id=tokenizer.pad_token_id or 0,
                    batch_size=batch_size,
                    desc=f"teacher ({name})",
                )
                return word_scores(windows, owner, logits, [len(s.tokens) for s in items])

        scores[name] = cached_arrays(cache_dir, f"{task}-{key}", compute)
        logger.info(
            "Teacher scores (%s): %d %s",
            name,
            len(items),
            "examples" if task == "classification" else "sentences",
        )
    return TeacherScores(scores, model, tokenizer)


def teacher_metrics(
    scores: Sequence[np.ndarray],
    items: Sequence,
    labels: Sequence[str],
    *,
    task: str,
    multi_label: bool = False,
    constrained: bool = True,
) -> dict:
    """The teacher's own scores on a labelled split, as the recipe scores the student."""
    if task == "classification":
        label2id = {lab: i for i, lab in enumerate(labels)}
        if multi_label:
            gold = np.array([[float(lab in e.labels) for lab in labels] for e in items])
        else:
            gold = np.array([label2id[e.labels[0]] for e in items])
        return classification_metrics(np.stack(scores), gold, multi_label=multi_label, num_labels=len(labels))
    from ._tagging import decode_tags

    predicted = [[labels[i] for i in decode_tags(s, labels, constrained=constrained)] for s in scores]
    return ner_scores(predicted, [s.tags for s in items])


@dataclass
class TeacherComparison:
    """The teacher's scores on the splits the student was scored on, and the share of the headline metric
    the student keeps on ``split`` (test if scored, else validation; ``kept`` None where the teacher scored 0)."""

    teacher_scores: dict[str, dict]
    metric: str
    split: str | None
    student: float | None
    teacher: float | None
    kept: float | None

    def sentence(self) -> str:
        """One sentence for the model card."""
        if self.kept is None:
            return "No labelled split scored both models." if self.split is None else ""
        return (
            f"On the {self.split} split the student keeps {self.kept:.1%} of the teacher's {self.metric} "
            f"({self.student:.4f} against {self.teacher:.4f})."
        )


def compare_with_teacher(
    student_scores: dict[str, dict],
    teacher: TeacherScores,
    data: dict[str, list],
    labels: Sequence[str],
    *,
    task: str,
    multi_label: bool = False,
    constrained: bool = True,
) -> TeacherComparison:
    """Score the teacher on every split the student was scored on (:func:`teacher_metrics`, from its cached
    scores) and compute the share of the headline metric (accuracy; entity F1) that the student keeps."""
    metric = HEADLINE[task]
    teacher_results = {
        name: teacher_metrics(
            teacher.scores[name],
            data[name],
            labels,
            task=task,
            multi_label=multi_label,
            constrained=constrained,
        )
        for name in student_scores
    }
    split = next((name for name in ("test", "validation") if name in student_scores), None)
    s = student_scores[split][metric] if split else None
    t = teacher_results[split][metric] if split else None
    comparison = TeacherComparison(teacher_results, metric, split, s, t, kept_share(s, t))
    if comparison.kept is not None:
        logger.info("%s", comparison.sentence())
    return comparison


# ------------------------------------------------------------------------------------ the training set
def training_set(
    task: str,
    labelled: Sequence,
    unlabelled: Sequence,
    scores: Sequence[np.ndarray],
    tokenizer: PreTrainedTokenizerBase,
    *,
    labels: Sequence[str],
    ft: FinetuneArguments,
) -> datasets.Dataset:
    """The student's training set: the labelled examples (gold labels) then the unlabelled ones (no gold:
    ``IGNORE_INDEX``), encoded with the student's tokenizer, each carrying the teacher's scores (``scores``:
    labelled then unlabelled, as :func:`teacher_scores` gave them for the same list)."""
    label2id = {lab: i for i, lab in enumerate(labels)}
    items = [*labelled, *unlabelled]
    if task == "classification":
        features, truncated = encode_classification(
            items, tokenizer, label2id=label2id, multi_label=ft.multi_label, max_length=ft.max_length
        )
        for f in features[len(labelled) :]:
            f["labels"] = [IGNORE_INDEX] * len(labels) if ft.multi_label else IGNORE_INDEX
        if truncated:
            logger.warning(
                "train: %d of %d inputs longer than %d tokens were truncated",
                truncated,
                len(items),
                ft.max_length,
            )
        return datasets.Dataset.from_list(attach_sentence_scores(features, scores))
    windows, owner, audit = encode_ner_dataset(
        labelled,
        tokenizer,
        label2id=label2id,
        max_length=ft.max_length,
        stride=ft.stride,
        label_all_tokens=ft.label_all_tokens,
    )
    if unlabelled:
        extra, extra_owner, _ = encode_ner_dataset(
            unlabelled, tokenizer, label2id=None, max_length=ft.max_length, stride=ft.stride
        )
        for w in extra:
            w["labels"] = [IGNORE_INDEX] * len(w["input_ids"])
        windows += extra
        owner += [k + len(labelled) for k in extra_owner]
    logger.info("Alignment audit (train, labelled part): %s", audit.as_dict())
    return windows_dataset(
        attach_word_scores(windows, owner, scores), extra=(TEACHER_POSITIONS, TEACHER_LOGITS)
    )
