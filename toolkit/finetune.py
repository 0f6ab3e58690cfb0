"""What the classification and NER recipes share: the start of a run (checks, tokenizer, hub pre-flight,
output directory), the splits (hold-out, sample caps), label maps, the model (loaded with a report, then its
embedding options and freezing), the collator, and the saved outputs."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from transformers import (
    AutoConfig,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    TrainingArguments,
    set_seed,
)

from ._corpus import in_validation_split
from ._errors import ToolkitInputError
from ._labelled import ClassificationExample, NERSentence
from ._presets import (
    FINETUNE_DROPOUT,
    LIGHT_TAGGER_DROPOUT,
    LIGHT_TAGGER_SETTINGS,
    apply_settings,
    finetune_settings,
    preset_of,
)
from ._report import save_finetune_outputs
from ._surgery import adjust_embeddings, freeze_parameters, uniform_top_attention
from ._vectors import VECTOR_EXTENSIONS
from .config import FinetuneArguments, RunArguments
from .hub import HubTarget, hub_target_from_args
from .rundir import input_files, option_group, prepare_output_dir, run_fingerprint
from .training import (
    check_precision,
    prepare_training_args,
    reuse_freed_memory,
    set_threads,
    setup_logging,
)

__all__ = [
    "apply_finetuning_settings",
    "DropColumns",
    "FinetuneStart",
    "TASKS",
    "build_label_map",
    "check_labels_known",
    "content_key",
    "finetune_model",
    "finetuning_fingerprint",
    "finish_splits",
    "hold_out_validation",
    "light_tagger",
    "load_checkpoint_tokenizer",
    "load_finetune_model",
    "padded_collator",
    "save_finetune_outputs",
    "start_finetuning",
    "validate_finetune_options",
    "validate_tagger_options",
]

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------- start of a run
# Options that do not change what a fine-tuning run trains: free to change when it resumes.
_NOT_THE_RUN = ("test_file", "max_eval_samples", "constrained_decoding", "languages")


def finetuning_fingerprint(ft: FinetuneArguments) -> dict:
    """What defines a fine-tuning run (see ``prepare_output_dir``): its options and the identity of its
    training and validation files."""
    # Files by content, not by how their paths were spelt; only existing files (the readers report a missing
    # path or a directory, with the remedy).
    named = [("train_file", ft.train_file), ("validation_file", ft.validation_file)]
    if getattr(ft, "vectors", None):  # the light tagger's vocabulary comes from it too
        named.append(("vectors", ft.vectors))
    files = {name: input_files([path]) if path and os.path.isfile(path) else path for name, path in named}
    start = ft.model_name_or_path
    options = option_group(
        dataclasses.asdict(ft), ignore=(*_NOT_THE_RUN, "train_file", "validation_file", "vectors")
    )
    options["model_name_or_path"] = os.path.realpath(start) if start and os.path.exists(start) else start
    return run_fingerprint(inputs=files, options=options)


TASKS = ("classification", "ner")


def validate_finetune_options(ft: FinetuneArguments, args: TrainingArguments, *, task: str) -> None:
    """Reject missing or conflicting fine-tuning options before anything is loaded.

    Raises:
        ToolkitInputError: naming the options at fault.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    if task == "ner":
        validate_tagger_options(ft)
    light = light_tagger(ft)
    if light and ft.model_name_or_path:
        raise ToolkitInputError(
            "--encoder bilstm trains a light tagger from scratch: drop --model_name_or_path (its embeddings can "
            "start from --vectors)"
        )
    if not light and not ft.model_name_or_path:
        raise ToolkitInputError(
            "--model_name_or_path is required (a pretrained output dir or any BERT-like checkpoint), or "
            "--encoder bilstm for the light tagger"
        )
    if task == "classification" and bool(ft.train_file) == bool(ft.dataset_name):
        raise ToolkitInputError("give exactly one of --train_file and --dataset_name")
    if task == "ner" and not ft.train_file:
        raise ToolkitInputError("--train_file is required (CoNLL or JSON Lines)")
    if task == "ner" and ft.uniform_top_attention:
        raise ToolkitInputError("--uniform_top_attention is for classification: NER reads every position")
    if ft.validation_split and ft.validation_file:
        raise ToolkitInputError("give either --validation_file or --validation_split, not both")
    check_precision(args)


def light_tagger(ft: FinetuneArguments) -> bool:
    """Whether the run trains the light tagger (NER ``--encoder bilstm``) rather than a checkpoint."""
    return getattr(ft, "encoder", "transformer") == "bilstm"


def validate_tagger_options(ft: FinetuneArguments) -> None:
    """The NER recipe's encoder and output-layer options (``--encoder``, ``--crf``, ``--bilstm_hidden``,
    ``--vectors``) checked together; ``--crf`` defaults to on for the light tagger.

    Raises:
        ToolkitInputError: naming the options at fault.
    """
    if ft.encoder not in ("transformer", "bilstm"):
        raise ToolkitInputError(f"--encoder must be 'transformer' or 'bilstm', got {ft.encoder!r}")
    light = ft.encoder == "bilstm"
    if ft.crf is None:
        ft.crf = light
    if ft.vectors and not light:
        raise ToolkitInputError(
            "--vectors initialises the light tagger's embeddings: add --encoder bilstm (a transformer brings "
            "its own embeddings)"
        )
    if ft.vectors and not os.path.isfile(ft.vectors):
        raise ToolkitInputError(f"--vectors {ft.vectors}: no such file")
    if ft.vectors and Path(ft.vectors).suffix.lower() not in VECTOR_EXTENSIONS:
        raise ToolkitInputError(
            f"--vectors {ft.vectors}: the format is read from the extension, one of "
            f"{', '.join(sorted(VECTOR_EXTENSIONS))} (rename the file)"
        )
    if light:
        ignored = [
            f"--{name}" for name in ("embedding_rms", "position_rms_ratio") if getattr(ft, name) is not None
        ] + (["--uniform_top_attention"] if ft.uniform_top_attention else [])
        if ignored:
            raise ToolkitInputError(
                f"{' '.join(ignored)}: for a transformer checkpoint, not --encoder bilstm"
            )
    if ft.bigram_dim and not light:
        raise ToolkitInputError(
            "--bigram_dim adds bigram embeddings to the light tagger: add --encoder bilstm (a transformer reads "
            "its neighbours through attention)"
        )
    if ft.bigram_dim < 0:
        raise ToolkitInputError(f"--bigram_dim must be 0 (off) or a positive width, got {ft.bigram_dim}")
    if ft.bilstm_hidden is not None and ft.bilstm_hidden < (1 if light else 0):
        raise ToolkitInputError(f"--bilstm_hidden must be a positive number of units, got {ft.bilstm_hidden}")
    if ft.crf and ft.label_all_tokens:
        raise ToolkitInputError(
            "--crf scores each word once (its first sub-token): drop --label_all_tokens or --crf"
        )
    if light and (ft.freeze_layers or ft.freeze_embeddings and not ft.vectors):
        raise ToolkitInputError(
            "--freeze_layers / --freeze_embeddings (without --vectors) are for checkpoints"
        )


def apply_finetuning_settings(ft: FinetuneArguments, args: TrainingArguments, *, task: str) -> dict[str, str]:
    """Fill in the settings that suit the starting checkpoint's size (rate, batch, warmup, weight decay,
    epochs, dropout; see ``toolkit._presets.FINETUNE_SETTINGS``) wherever the user set nothing, and log every
    value with where it came from. A checkpoint of no preset's size keeps the stock settings, except that one
    pretrained without dropout gets it back.

    Returns:
        ``{setting: "value (source)"}``, as logged.
    """
    if light_tagger(ft):
        report = apply_settings(args, LIGHT_TAGGER_SETTINGS, source="light tagger")
        # No position limit: a window holds a whole sentence far more often.
        report |= apply_settings(
            ft, {"dropout": LIGHT_TAGGER_DROPOUT, "max_length": 512}, source="light tagger"
        )
        logger.info("Training settings: %s", "; ".join(f"{k} = {v}" for k, v in report.items()))
        return report
    try:
        config = AutoConfig.from_pretrained(ft.model_name_or_path)
    except (OSError, ValueError):
        return {}  # load_finetune_model reports a bad checkpoint
    name = preset_of(config)
    if name is None:
        # A checkpoint pretrained without dropout (as the toolkit pretrains) fine-tunes with it, whatever its size.
        report = {}
        if getattr(config, "hidden_dropout_prob", None) == 0:
            report = apply_settings(
                ft, {"dropout": FINETUNE_DROPOUT}, source="checkpoint pretrained without dropout"
            )
        logger.info(
            "Training settings: %s matches no size preset; stock TrainingArguments defaults%s",
            ft.model_name_or_path,
            f"; dropout = {report['dropout']}" if report else "",
        )
        return report
    settings = finetune_settings(name, task)
    report = apply_settings(args, settings, source=f"{name}-size checkpoint")
    report |= apply_settings(ft, {"dropout": FINETUNE_DROPOUT}, source=f"{name}-size checkpoint")
    logger.info("Training settings: %s", "; ".join(f"{k} = {v}" for k, v in report.items()))
    return report


@dataclass
class FinetuneStart:
    """What the start of a fine-tuning run settles: the checkpoint's tokenizer, the checked hub target (or
    ``None``) and the checkpoint to resume from (or ``None``)."""

    tokenizer: PreTrainedTokenizerBase | None  # None for the light tagger until its vocabulary is built
    hub: HubTarget | None
    resume_from: str | None


def start_finetuning(
    ft: FinetuneArguments,
    run: RunArguments,
    args: TrainingArguments,
    *,
    recipe: str,
    task: str,
    more_options: dict | None = None,
) -> FinetuneStart:
    """The first step of the fine-tuning recipes, in seconds and before any data is read: logging, option
    checks, the seed, the starting checkpoint's tokenizer, the hub pre-flight and the output directory
    (writable, and new or this same run to resume; see :func:`toolkit.rundir.prepare_output_dir`).
    ``more_options``: options of the recipe's own that also define the run (a resumed run must keep them)."""
    setup_logging(args)
    set_threads(run.threads)
    reuse_freed_memory(bool(run.reuse_freed_memory))  # off unless asked: no gain measured here
    validate_finetune_options(ft, args, task=task)
    # The light tagger's vocabulary is built from the training file, once it is read.
    tokenizer = None if light_tagger(ft) else load_checkpoint_tokenizer(ft.model_name_or_path)
    apply_finetuning_settings(ft, args, task=task)
    set_seed(args.seed)
    prepare_training_args(args, group_by_length=ft.group_by_length)
    resume_from = prepare_output_dir(
        args,
        recipe=recipe,
        fingerprint=finetuning_fingerprint(ft) | ({"recipe_options": more_options} if more_options else {}),
        overwrite=run.overwrite_output_dir,
    )
    hub = hub_target_from_args(args)  # after the output directory: a refused run creates no repository
    return FinetuneStart(tokenizer, hub, resume_from)


def finish_splits(
    data: dict[str, list], ft: FinetuneArguments, args: TrainingArguments, *, source: str
) -> dict:
    """Hold out ``--validation_split`` of the training data (by content hash), apply the sample caps, and
    check that evaluation during training has a validation split to evaluate on.

    Raises:
        ToolkitInputError: ``--eval_strategy`` without validation data, or a bad split (see
            :func:`hold_out_validation`).
    """
    if ft.validation_split:
        data = hold_out_validation(data, ft.validation_split, source=source)
    for name, limit in (
        ("train", ft.max_train_samples),
        ("validation", ft.max_eval_samples),
        ("test", ft.max_eval_samples),
    ):
        if name in data and limit:
            data[name] = data[name][:limit]
    if args.eval_strategy != "no" and "validation" not in data:
        raise ToolkitInputError(
            f"--eval_strategy {getattr(args.eval_strategy, 'value', args.eval_strategy)} needs validation data: {source} has no validation split; "
            "give --validation_file or --validation_split"
        )
    return data


def finetune_model(
    auto_class, ft: FinetuneArguments, labels: Sequence[str], *, problem_type: str | None = None
) -> tuple[PreTrainedModel, dict, dict]:
    """The checkpoint's encoder with a new task head (:func:`load_finetune_model`), then the options that act
    on it before training: ``--embedding_rms`` and ``--position_rms_ratio``, ``--uniform_top_attention``,
    and freezing.

    Returns:
        ``(model, loading report, card entries for the options set)``.
    """
    model, loading = load_finetune_model(
        auto_class, ft.model_name_or_path, labels=labels, problem_type=problem_type, dropout=ft.dropout
    )
    report, card = adjust_embeddings(
        model,
        embedding_rms=ft.embedding_rms,
        position_rms_ratio=ft.position_rms_ratio,
        max_length=ft.max_length,
    )
    loading.update(report)
    if ft.uniform_top_attention:
        uniform_top_attention(model)  # [CLS]'s top-layer attention starts as the mean of the sequence
        if ft.freeze_layers >= model.config.num_hidden_layers:
            logger.warning("--uniform_top_attention with every layer frozen: the queries stay zero for good")
    freeze_parameters(model, embeddings=ft.freeze_embeddings, layers=ft.freeze_layers)
    return model, loading, card


class DropColumns:
    """Collator wrapper removing feature keys the model does not take (e.g. ``length``, which only feeds
    length grouping)."""

    def __init__(self, collator, columns: Sequence[str]) -> None:
        self.collator = collator
        self.columns = set(columns)

    def __call__(self, features: list[dict]):
        return self.collator([{k: v for k, v in f.items() if k not in self.columns} for f in features])


def padded_collator(collator_class, tokenizer: PreTrainedTokenizerBase, ft: FinetuneArguments) -> DropColumns:
    """``collator_class`` (``DataCollatorWithPadding`` or ``DataCollatorForTokenClassification``) padding to
    the longest example of each batch, or to ``--max_length`` with ``--pad_to_max_length`` (the stock way);
    the ``length`` column that feeds length grouping is dropped before the model sees the batch."""
    collator = collator_class(
        tokenizer,
        padding="max_length" if ft.pad_to_max_length else "longest",
        max_length=ft.max_length if ft.pad_to_max_length else None,
    )
    return DropColumns(collator, ["length"])


# ------------------------------------------------------------------------------------------ label maps
def build_label_map(train_labels: Sequence[str]) -> list[str]:
    """Sorted label list: numerically when every label is an integer, else alphabetically (``O`` first for
    NER tags)."""
    labels = set(train_labels)
    if all(lab.lstrip("-").isdigit() for lab in labels):
        return sorted(labels, key=int)
    return sorted(
        labels,
        key=lambda lab: (lab != "O", lab[2:], lab[:1]) if lab[1:2] == "-" or lab == "O" else (True, lab, ""),
    )


def check_labels_known(
    labels_by_line: Sequence[tuple[str, int, Sequence[str]]], known: Sequence[str]
) -> None:
    """Raise on the first label absent from training: ``(file, line, labels)`` triples."""
    known_set = set(known)
    for path, line, labels in labels_by_line:
        for label in labels:
            if label not in known_set:
                raise ToolkitInputError(
                    f"{path}:{line}: label {label!r} does not occur in the training data "
                    f"(known: {sorted(known_set)[:20]})"
                )


def content_key(example: ClassificationExample | NERSentence) -> str:
    """The text an example is hashed on by :func:`hold_out_validation` (labels excluded)."""
    if isinstance(example, NERSentence):
        return "\x1f".join(example.tokens)
    return example.text if example.text_pair is None else f"{example.text}\x1f{example.text_pair}"


def hold_out_validation(data: dict[str, list], fraction: float, *, source: str = "training data") -> dict:
    """Move a ``fraction`` of ``data["train"]`` into a new ``data["validation"]`` split.

    Examples are chosen by a hash of their text (:func:`content_key`), not by position: the split is the
    same on every run and machine and whatever the file's order, and repeated examples land on one side,
    so the validation split never scores sentences the model was trained on.

    Args:
        data: splits by name (``"train"`` required); not modified.
        fraction: share to hold out, in (0, 1).
        source: what the training data is, for error messages.

    Returns:
        A new dict with the smaller ``train`` and the held-out ``validation``.

    Raises:
        ToolkitInputError: ``fraction`` outside (0, 1), a validation split already there, or a side empty.

    Example:
        >>> from toolkit import NERSentence
        >>> train = [NERSentence(list(f"句子{i}"), ["O"] * (2 + len(str(i)))) for i in range(100)]
        >>> split = hold_out_validation({"train": train}, 0.1)
        >>> len(split["train"]) + len(split["validation"]), 0 < len(split["validation"]) < 30
        (100, True)
    """
    if not 0.0 < fraction < 1.0:
        raise ToolkitInputError(f"--validation_split must be in (0, 1), got {fraction}")
    if data.get("validation") is not None:
        raise ToolkitInputError("give either a validation file or --validation_split, not both")
    held = [in_validation_split(content_key(e), fraction) for e in data["train"]]
    kept = [e for e, h in zip(data["train"], held, strict=True) if not h]
    validation = [e for e, h in zip(data["train"], held, strict=True) if h]
    if not kept or not validation:
        raise ToolkitInputError(
            f"--validation_split {fraction:g} of {len(held):,} examples in {source} leaves "
            f"{len(kept):,} for training and {len(validation):,} for validation; both must be non-empty"
        )
    logger.info(
        "Validation split: %d of %d training examples held out (%.1f%%, by content hash)",
        len(validation),
        len(held),
        100 * len(validation) / len(held),
    )
    return {**data, "train": kept, "validation": validation}


# ---------------------------------------------------------------------------------------------- model
def load_checkpoint_tokenizer(checkpoint: str) -> PreTrainedTokenizerBase:
    """The tokenizer of a starting checkpoint, with a clear error for a missing path or tokenizer.

    Raises:
        ToolkitInputError: a local path that does not exist, or no loadable tokenizer there.
    """
    if os.path.isfile(checkpoint):
        raise ToolkitInputError(f"checkpoint {checkpoint!r} is a file: give the model's directory")
    try:
        return AutoTokenizer.from_pretrained(checkpoint)
    except (OSError, ValueError) as err:
        if not os.path.exists(checkpoint):
            raise ToolkitInputError(
                f"checkpoint {checkpoint!r} is neither a local directory nor a model on the hub "
                "(train one with recipes/pretrain.py first?)"
            ) from None
        raise ToolkitInputError(f"cannot load a tokenizer from {checkpoint!r}: {err}") from None


def load_finetune_model(
    auto_class,
    checkpoint: str,
    *,
    labels: Sequence[str],
    problem_type: str | None = None,
    dropout: float | None = None,
) -> tuple[PreTrainedModel, dict]:
    """Load ``checkpoint`` into a task model with this task's labels and report what loaded.

    ``dropout``, if given, replaces the checkpoint's hidden and attention dropout probabilities (and the
    classifier's, which otherwise follows the hidden one).

    A pretrained encoder without a task head is the normal case: the head is reported as newly
    initialised. Heads of another shape (another label set) are re-initialised and reported as mismatched.

    Returns:
        ``(model, report)`` with ``loaded``, ``newly_initialised``, ``unused`` and ``shape_mismatch`` lists.

    Raises:
        ToolkitInputError: no config or weights at ``checkpoint``.
    """
    try:
        config = AutoConfig.from_pretrained(checkpoint)
    except (OSError, ValueError) as err:
        raise ToolkitInputError(f"cannot load a model config from {checkpoint!r}: {err}") from None
    if dropout is not None:
        if not 0.0 <= dropout < 1.0:
            raise ToolkitInputError(f"--dropout must be in [0, 1), got {dropout}")
        for key in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            if hasattr(config, key):
                setattr(config, key, dropout)
        if getattr(config, "classifier_dropout", None) is not None:
            config.classifier_dropout = dropout
    config.num_labels = len(labels)
    config.id2label = dict(enumerate(labels))
    config.label2id = {label: i for i, label in enumerate(labels)}
    if problem_type:
        config.problem_type = problem_type
    try:
        model, info = auto_class.from_pretrained(
            checkpoint, config=config, ignore_mismatched_sizes=True, output_loading_info=True
        )
    except OSError as err:
        raise ToolkitInputError(f"cannot load weights from {checkpoint!r}: {err}") from None
    missing = sorted(info.get("missing_keys", []))
    mismatched = [k if isinstance(k, str) else k[0] for k in info.get("mismatched_keys", [])]
    loaded = sorted(set(model.state_dict()) - set(missing) - set(mismatched))
    report = {
        "loaded": len(loaded),
        "newly_initialised": missing,
        "unused": sorted(info.get("unexpected_keys", [])),
        "shape_mismatch": mismatched,
    }
    logger.info(
        "Loading report for %s: %d tensors loaded; newly initialised: %s; unused: %d%s; shape mismatch: %s",
        checkpoint,
        len(loaded),
        missing or "none",
        len(report["unused"]),
        f" (e.g. {report['unused'][:3]})" if report["unused"] else "",
        mismatched or "none",
    )
    if not loaded:
        raise ToolkitInputError(f"nothing in {checkpoint!r} matches a {auto_class.__name__} model")
    return model, report
