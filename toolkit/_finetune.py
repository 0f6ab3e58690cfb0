"""Fine-tuning plumbing shared by the classification and NER recipes: label maps, model loading with a
report, freezing, encoding with truncation counts, metrics, prediction files."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers import AutoConfig, PreTrainedModel, PreTrainedTokenizerBase

from ._corpus import in_validation_split
from ._errors import ToolkitInputError
from ._labelled import ClassificationExample, NERSentence
from ._metrics import load_metric
from ._ner import AlignmentAudit, decode_tags, encode_sentence, merge_window_scores
from ._rundir import input_files, option_group, run_fingerprint

logger = logging.getLogger(__name__)


@dataclass
class FinetuneArguments:
    """Data, model and task options of the fine-tuning recipes (training options: ``TrainingArguments``)."""

    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Starting checkpoint (ours or any BERT-like)."}
    )
    dataset_name: str | None = field(
        default=None, metadata={"help": "Hub dataset instead of files (classification)."}
    )
    dataset_config: str | None = field(default=None, metadata={"help": "Config of the hub dataset."})
    train_file: str | None = field(
        default=None, metadata={"help": "Training file (CSV/TSV/JSONL, or CoNLL/JSONL for NER)."}
    )
    validation_file: str | None = field(default=None, metadata={"help": "Validation file."})
    validation_split: float = field(
        default=0.0,
        metadata={
            "help": "Without a validation file: hold out this fraction of the training examples as the "
            "validation split, chosen by content hash (deterministic; duplicates stay on one side)."
        },
    )
    test_file: str | None = field(
        default=None, metadata={"help": "Test file: scored if labelled, predictions written."}
    )
    file_format: str | None = field(
        default=None, metadata={"help": "csv, tsv, jsonl or conll (default: from extension)."}
    )
    text_column: str = field(default="text", metadata={"help": "Text column (classification)."})
    text_pair_column: str | None = field(
        default=None, metadata={"help": "Second text column (sentence pairs)."}
    )
    label_column: str = field(default="label", metadata={"help": "Label column (classification)."})
    multi_label: bool = field(
        default=False, metadata={"help": "Several labels per example (classification)."}
    )
    label_separator: str = field(default=",", metadata={"help": "Separator of labels in one CSV/TSV cell."})
    token_column: int = field(default=0, metadata={"help": "Token column of CoNLL files."})
    tag_column: int = field(default=-1, metadata={"help": "Tag column of CoNLL files."})
    tagging_scheme: str = field(
        default="auto", metadata={"help": "auto, BIO, IOB1 or BIOES (converted to BIO)."}
    )
    label_all_tokens: bool = field(
        default=False, metadata={"help": "NER: label every sub-token, not only the first."}
    )
    stride: int = field(
        default=16, metadata={"help": "NER: tokens shared by consecutive windows of long sentences."}
    )
    constrained_decoding: bool = field(
        default=True,
        metadata={
            "help": "NER: predict the most probable valid BIO tag sequence (no I-X after O or another type) "
            "instead of each word's best tag. Both are scored; this one is the headline."
        },
    )
    max_length: int = field(
        default=128, metadata={"help": "Maximum tokens per example/window (special tokens included)."}
    )
    pad_to_max_length: bool = field(
        default=False, metadata={"help": "Pad every batch to max_length (stock default; slow)."}
    )
    group_by_length: bool = field(
        default=True, metadata={"help": "Batch examples of similar length (less padding)."}
    )
    dropout: float | None = field(
        default=None,
        metadata={
            "help": "Hidden and attention dropout while fine-tuning (default: the checkpoint's own). Lets a "
            "model pretrained without dropout be fine-tuned with it."
        },
    )
    uniform_top_attention: bool = field(
        default=False,
        metadata={
            "help": "Classification: zero the top encoder layer's attention queries before fine-tuning, so "
            "that its attention output at [CLS] starts as the mean of the sequence (masked-LM pretraining "
            "never trains [CLS] to summarise its input); fine-tuning learns the queries back. The saved "
            "model is a stock one."
        },
    )
    embedding_rms: float | None = field(
        default=None,
        metadata={
            "help": "Before fine-tuning, if the word embeddings' RMS is above this value, scale the word, "
            "position and token-type tables down together until it is (0.02 is BERT's initialisation). The "
            "layer normalisation that follows them makes this leave the model's function unchanged, but "
            "Adam moves every weight by about the learning rate per step, so embeddings that grew 20x in "
            "pretraining adapt 20x slower than fresh ones: this gives them back the random init's pace. "
            "A no-op for a model that has not grown."
        },
    )
    position_rms_ratio: float | None = field(
        default=None,
        metadata={
            "help": "Before fine-tuning, if the position table's RMS (over the first max_length positions) is "
            "below this multiple of the word table's, scale the position table up until it is not (1.0 is a "
            "fresh initialisation's balance). Masked-LM pretraining grows the word table several times more "
            "than the position table, so the order signal reaches the first layer much weaker than the "
            "content signal; this restores the balance. Unlike --embedding_rms it changes the model's "
            "function. A no-op for a model whose position table is already large enough."
        },
    )
    freeze_embeddings: bool = field(default=False, metadata={"help": "Freeze the embedding layer."})
    freeze_layers: int = field(default=0, metadata={"help": "Freeze the first N encoder layers."})
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Use only the first N training examples."}
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Use only the first N validation/test examples."}
    )
    languages: list[str] = field(
        default_factory=list, metadata={"help": "Languages, for the model card.", "nargs": "+"}
    )


# ------------------------------------------------------------------------------------------ label maps
# Options that do not change what a fine-tuning run trains: free to change when it resumes.
_NOT_THE_RUN = ("test_file", "max_eval_samples", "constrained_decoding", "languages")


def finetuning_fingerprint(ft: FinetuneArguments) -> dict:
    """What defines a fine-tuning run (see ``prepare_output_dir``): its options and the identity of its
    training and validation files."""
    return run_fingerprint(
        # only existing files: the readers report a missing path or a directory, with the remedy
        inputs={
            "files": input_files([f for f in (ft.train_file, ft.validation_file) if f and os.path.isfile(f)])
        },
        options=option_group(dataclasses.asdict(ft), ignore=_NOT_THE_RUN),
    )


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
    from transformers import AutoTokenizer

    looks_local = os.path.isabs(checkpoint) or checkpoint.startswith(".") or checkpoint.count("/") > 1
    if looks_local and not os.path.exists(checkpoint):
        raise ToolkitInputError(
            f"checkpoint {checkpoint!r} does not exist (train one with recipes/pretrain.py first?)"
        )
    try:
        return AutoTokenizer.from_pretrained(checkpoint)
    except (OSError, ValueError) as err:
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


def freeze_parameters(model: PreTrainedModel, *, embeddings: bool = False, layers: int = 0) -> int:
    """Freeze the embeddings and/or the first ``layers`` encoder layers. Returns the frozen parameter count.

    Raises:
        ToolkitInputError: more layers than the model has.
    """
    base = _base_model(model)
    n_layers = model.config.num_hidden_layers
    if layers > n_layers:
        raise ToolkitInputError(f"--freeze_layers {layers} but the model has {n_layers} layers")
    modules = []
    if embeddings:
        modules.append(base.embeddings)
    if layers:
        modules.extend(base.encoder.layer[:layers])
    frozen = 0
    for module in modules:
        for p in module.parameters():
            if p.requires_grad:
                p.requires_grad = False
                frozen += p.numel()
    if frozen:
        logger.info("Froze %d parameters (embeddings=%s, first %d layers)", frozen, embeddings, layers)
    return frozen


def _base_model(model: torch.nn.Module) -> torch.nn.Module:
    """The bare encoder under a task head (``model.bert`` for a ``BertFor...``), or the model itself."""
    return getattr(model, getattr(model, "base_model_prefix", ""), model)


def _rms(weight: torch.Tensor) -> float:
    """Root mean square of a weight, in fp32, outside autograd."""
    return weight.detach().float().pow(2).mean().sqrt().item()


def rescale_embeddings(model: PreTrainedModel, rms: float) -> float:
    """Scale a BERT-style embedding layer down, without changing what it computes, so that its word
    embeddings' root mean square is at most ``rms``.

    The word, position and token-type tables are summed and then layer-normalised, so multiplying all three by
    the same factor leaves the layer's output unchanged (up to the normalisation's epsilon, ~1e-12 against a
    variance of ~4e-4 at RMS 0.02). What it changes is the pace of fine-tuning: Adam moves each weight by
    about the learning rate per step whatever its size, so a table that pretraining grew from RMS 0.02 to 0.4
    turns 20 times more slowly than a freshly initialised one at the same rate, and a model that is mostly
    embedding table (the ``tiny`` preset: 1.6 M of its 2.0 M parameters) then fine-tunes more slowly than
    its own random-init twin. Tables already at or below ``rms`` are left as they are (factor 1.0), so a
    random-init model is unchanged.

    Args:
        model: a BERT-style model whose base has ``embeddings.word_embeddings`` and ``embeddings.LayerNorm``
            (BERT, RoBERTa, ELECTRA, ...).
        rms: the largest word-embedding RMS to keep; positive.

    Returns:
        The factor applied (1.0 where nothing changed).

    Raises:
        ToolkitInputError: ``rms`` not positive, or a model without that layout.

    Example:
        >>> import torch
        >>> from transformers import BertConfig, BertModel
        >>> model = BertModel(BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        ...     intermediate_size=64, vocab_size=100))
        >>> with torch.no_grad():
        ...     _ = model.embeddings.word_embeddings.weight.mul_(10)
        >>> round(rescale_embeddings(model, 0.02), 1)
        0.1
    """
    if not rms > 0:
        raise ToolkitInputError(f"--embedding_rms must be positive, got {rms}")
    embeddings = getattr(_base_model(model), "embeddings", None)
    word = getattr(embeddings, "word_embeddings", None)
    if not isinstance(word, torch.nn.Embedding) or not isinstance(
        getattr(embeddings, "LayerNorm", None), torch.nn.LayerNorm
    ):
        raise ToolkitInputError(
            f"--embedding_rms needs a BERT-style embedding layer (embeddings.word_embeddings followed by "
            f"embeddings.LayerNorm); {type(model).__name__} has none"
        )
    current = _rms(word.weight)
    if current <= rms:
        logger.info(
            "Word-embedding RMS %.4f is within --embedding_rms %g: embeddings unchanged", current, rms
        )
        return 1.0
    factor = rms / current
    tables = [
        table.weight
        for name in ("word_embeddings", "position_embeddings", "token_type_embeddings")
        if isinstance(table := getattr(embeddings, name, None), torch.nn.Embedding)
    ]
    with torch.no_grad():
        for weight in tables:
            weight.mul_(factor)
    logger.info(
        "Embedding tables scaled by %.4f (word-embedding RMS %.4f -> %g; %d tables, same output)",
        factor,
        current,
        rms,
        len(tables),
    )
    return factor


def raise_position_embeddings(model: PreTrainedModel, ratio: float, positions: int | None = None) -> float:
    """Scale a BERT-style position table up until its RMS is at least ``ratio`` times the word table's.

    The word and position tables are summed before the embedding layer norm, so their relative size is how
    much of what the first layer sees is content and how much is order. A fresh initialisation draws both at
    the same scale (ratio 1); masked-LM pretraining of the small presets grows the word table to about three
    times the position table's size (Chinese ``tiny``: RMS 0.45 against 0.15), so a fine-tuned tagger starts
    from inputs in which order is a faint signal, where the random-init twin starts from a strong one. This
    brings the position table back to ``ratio`` times the word table's RMS. It changes the model's function
    (the encoder sees a stronger position signal than it was pretrained on), so it is a fine-tuning choice to
    measure, not a reparametrisation like :func:`rescale_embeddings` (which keeps the ratio: the two compose
    in either order).

    Args:
        model: a BERT-style model whose base has ``embeddings.word_embeddings`` and
            ``embeddings.position_embeddings`` (absolute positions).
        ratio: the smallest position/word RMS ratio to keep; positive.
        positions: measure the position table's RMS over its first ``positions`` rows (the ones fine-tuning
            uses; rows past the pretraining length never trained); default all. The whole table is scaled.

    Returns:
        The factor applied to the position table (1.0 where nothing changed).

    Raises:
        ToolkitInputError: ``ratio`` or ``positions`` not positive, or a model without that layout.

    Example:
        >>> import torch
        >>> from transformers import BertConfig, BertModel
        >>> model = BertModel(BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        ...     intermediate_size=64, vocab_size=100))
        >>> with torch.no_grad():
        ...     _ = model.embeddings.position_embeddings.weight.mul_(0.25)
        >>> round(raise_position_embeddings(model, 1.0), 0)
        4.0
    """
    if not ratio > 0:
        raise ToolkitInputError(f"--position_rms_ratio must be positive, got {ratio}")
    if positions is not None and positions < 1:
        raise ToolkitInputError(f"positions must be at least 1, got {positions}")
    embeddings = getattr(_base_model(model), "embeddings", None)
    word = getattr(embeddings, "word_embeddings", None)
    position = getattr(embeddings, "position_embeddings", None)
    if not isinstance(word, torch.nn.Embedding) or not isinstance(position, torch.nn.Embedding):
        raise ToolkitInputError(
            f"--position_rms_ratio needs a BERT-style embedding layer with an absolute position table "
            f"(embeddings.word_embeddings and embeddings.position_embeddings); {type(model).__name__} has none"
        )
    word_rms = _rms(word.weight)
    position_rms = _rms(position.weight[:positions])
    if position_rms <= 0:
        raise ToolkitInputError("--position_rms_ratio: the position table is all zeros; nothing to scale")
    if position_rms >= ratio * word_rms:
        logger.info(
            "Position-table RMS %.4f is at least %g x the word table's %.4f: position table unchanged",
            position_rms,
            ratio,
            word_rms,
        )
        return 1.0
    factor = ratio * word_rms / position_rms
    with torch.no_grad():
        position.weight.mul_(factor)
    logger.info(
        "Position table scaled by %.3f (RMS %.4f -> %.4f, %g x the word table's %.4f; the model's output changes)",
        factor,
        position_rms,
        position_rms * factor,
        ratio,
        word_rms,
    )
    return factor


def adjust_embeddings(model: PreTrainedModel, ft: FinetuneArguments) -> tuple[dict, dict]:
    """Apply the fine-tuning options that act on a loaded model's embedding tables, in order:
    ``--embedding_rms`` (:func:`rescale_embeddings`, same function) then ``--position_rms_ratio``
    (:func:`raise_position_embeddings`, measured over the first ``max_length`` positions).

    Returns:
        ``(report, card)``: the factors applied, for the loading report (``embedding_scale``,
        ``position_scale``), and the options set, for the model card's hyperparameter table; both empty when
        neither option is set.
    """
    report, card = {}, {}
    if ft.embedding_rms is not None:
        report["embedding_scale"] = rescale_embeddings(model, ft.embedding_rms)
        card["embedding RMS cap"] = ft.embedding_rms
    if ft.position_rms_ratio is not None:
        report["position_scale"] = raise_position_embeddings(model, ft.position_rms_ratio, ft.max_length)
        card["position/word RMS floor"] = ft.position_rms_ratio
    return report, card


def uniform_top_attention(model: PreTrainedModel) -> int:
    """Zero the query projection of the top encoder layer, so that its attention starts uniform.

    With zero queries every attention score in that layer is 0, so the attention output at each position,
    ``[CLS]`` included, starts as the average of the layer's values over the unmasked tokens (the layer's
    residual path and feed-forward block still carry the position's own state). A model pretrained by masked-LM
    alone has never used its ``[CLS]`` output: what the pretrained attention puts there need not summarise
    the input (on ChnSentiCorp a linear probe on the ``[CLS]`` vector of the Chinese ``tiny`` model scores
    no higher than on a random-init model's, while on mean-pooled vectors it scores 5 points higher), and the
    sequence classifier reads only ``[CLS]``. Started this way it reads the mean of the pretrained features
    from the first step. Fine-tuning learns the queries back: their gradient is not zero, because the keys
    are not (with every layer frozen, ``--freeze_layers`` = the model's depth, they stay zero for good). Only
    the top layer is changed, and only at the start, so the saved model is a stock one; for token
    classification, which reads every position of the top layer, the option makes no sense.

    Args:
        model: a BERT-style model (BERT, RoBERTa, ELECTRA, ...: ``encoder.layer[-1].attention.self.query``).

    Returns:
        The number of parameters set to zero.

    Raises:
        ToolkitInputError: a model without that layout.

    Example:
        >>> from transformers import BertConfig, BertForSequenceClassification
        >>> model = BertForSequenceClassification(BertConfig(hidden_size=32, num_hidden_layers=2,
        ...     num_attention_heads=2, intermediate_size=64, vocab_size=100))
        >>> uniform_top_attention(model)
        1056
    """
    base = _base_model(model)
    try:
        query = base.encoder.layer[-1].attention.self.query
    except (AttributeError, IndexError, TypeError):
        raise ToolkitInputError(
            f"--uniform_top_attention needs a BERT-style encoder (encoder.layer[-1].attention.self.query); "
            f"{type(model).__name__} has none"
        ) from None
    with torch.no_grad():
        for p in query.parameters():
            p.zero_()
    zeroed = sum(p.numel() for p in query.parameters())
    logger.info("Top encoder layer's attention queries zeroed (%d parameters): it starts uniform", zeroed)
    return zeroed


# ------------------------------------------------------------------------------------- classification
def encode_classification(
    examples: Sequence[ClassificationExample],
    tokenizer: PreTrainedTokenizerBase,
    *,
    label2id: dict[str, int],
    multi_label: bool,
    max_length: int,
) -> tuple[list[dict], int]:
    """Tokenize examples (truncating to ``max_length``) and attach labels.

    Returns:
        ``(features, n_truncated)``: features carry ``input_ids``, ``attention_mask``, (``token_type_ids``),
        ``labels`` (an id, or a 0/1 float vector for multi-label, or absent when unlabelled) and ``length``.
    """
    texts = [e.text for e in examples]
    pairs = [e.text_pair for e in examples] if examples and examples[0].text_pair is not None else None
    full = tokenizer(texts, pairs, verbose=False)
    too_long = [i for i, ids in enumerate(full["input_ids"]) if len(ids) > max_length]
    if too_long:
        short = tokenizer(
            [texts[i] for i in too_long],
            [pairs[i] for i in too_long] if pairs else None,
            truncation=True,
            max_length=max_length,
        )
        for k in full:
            for j, i in enumerate(too_long):
                full[k][i] = short[k][j]
    features = []
    for i, e in enumerate(examples):
        feat = {k: full[k][i] for k in full}
        feat["length"] = len(feat["input_ids"])
        if e.labels:
            if multi_label:
                vec = [0.0] * len(label2id)
                for label in e.labels:
                    vec[label2id[label]] = 1.0
                feat["labels"] = vec
            else:
                feat["labels"] = label2id[e.labels[0]]
        features.append(feat)
    return features, len(too_long)


def classification_metrics(
    logits: np.ndarray, labels: np.ndarray, *, multi_label: bool, num_labels: int
) -> dict:
    """Accuracy, macro-F1, per-class scores and confusion matrix from logits (shipped offline metric)."""
    if multi_label:
        preds = (logits > 0).astype(int).tolist()
        return load_metric("classification_scores", "multilabel").compute(
            predictions=preds, references=labels.astype(int).tolist()
        )
    preds = logits.argmax(-1).tolist()
    return load_metric("classification_scores").compute(
        predictions=preds, references=labels.tolist(), num_labels=num_labels
    )


class DropColumns:
    """Collator wrapper removing feature keys the model does not take (e.g. ``length``, which only feeds
    length grouping)."""

    def __init__(self, collator, columns: Sequence[str]) -> None:
        self.collator = collator
        self.columns = set(columns)

    def __call__(self, features: list[dict]):
        return self.collator([{k: v for k, v in f.items() if k not in self.columns} for f in features])


class ClassificationMetrics:
    """``compute_metrics`` for ``Trainer``: flat accuracy / F1 values from an ``EvalPrediction``."""

    def __init__(self, *, multi_label: bool, id2label: dict[int, str]) -> None:
        self.multi_label = multi_label
        self.id2label = id2label

    def __call__(self, eval_pred) -> dict:
        scores = classification_metrics(
            np.asarray(eval_pred.predictions),
            np.asarray(eval_pred.label_ids),
            multi_label=self.multi_label,
            num_labels=len(self.id2label),
        )
        return flat_metrics(scores, self.id2label)


def card_metrics(results: dict) -> dict[str, float]:
    """Every scalar score of the validation and test splits, named ``"<split> <metric>"`` (for cards)."""
    return {
        f"{split} {k}": v
        for split in ("validation", "test")
        if split in results
        for k, v in results[split].items()
        if isinstance(v, float)
    }


def headline_metrics(results: dict, keys: Sequence[str]) -> dict[str, float]:
    """The ``keys`` of the test split's scores if there is one, else the validation split's (for cards)."""
    for split in ("test", "validation"):
        if split in results:
            return {k: results[split][k] for k in keys if k in results[split]}
    return {}


def flat_metrics(scores: dict, id2label: dict[int, str], prefix: str = "") -> dict:
    """Scalar metrics for Trainer logs: accuracy, macro/micro F1 and per-class F1 by label name."""
    out = {f"{prefix}{k}": v for k, v in scores.items() if isinstance(v, float)}
    for i, c in enumerate(scores.get("per_class", [])):
        out[f"{prefix}f1_{id2label[i]}"] = c["f1"]
    return out


def write_classification_predictions(
    examples: Sequence[ClassificationExample],
    logits: np.ndarray,
    labels: Sequence[str],
    multi_label: bool,
    path,
) -> None:
    """Write one JSON line per example: text (and pair), predicted label(s), per-label scores, gold if known."""
    probs = torch.sigmoid(torch.tensor(logits)) if multi_label else torch.softmax(torch.tensor(logits), -1)
    with open(path, "w", encoding="utf-8") as fh:
        for e, p in zip(examples, probs.numpy(), strict=True):
            predicted = (
                [labels[i] for i in np.flatnonzero(p > 0.5)] if multi_label else labels[int(p.argmax())]
            )
            row = {
                "text": e.text,
                "predicted": predicted,
                "scores": {lab: round(float(s), 5) for lab, s in zip(labels, p, strict=True)},
            }
            if e.text_pair is not None:
                row["text_pair"] = e.text_pair
            if e.labels:
                row["gold"] = e.labels if multi_label else e.labels[0]
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def plot_confusion_matrix(
    matrix: Sequence[Sequence[int]], labels: Sequence[str], path: str | os.PathLike
) -> Path:
    """Write a confusion-matrix heat map (rows: gold, columns: predicted) to PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(labels)
    fig, ax = plt.subplots(figsize=(max(4, 0.6 * n + 2), max(3.5, 0.6 * n + 1.5)))
    image = ax.imshow(np.asarray(matrix), cmap="Blues")
    ax.set_xticks(range(n), labels, rotation=45, ha="right")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    top = max((max(row) for row in matrix), default=0)
    for i in range(n):
        for j in range(n):
            color = "white" if matrix[i][j] > top / 2 else "black"  # readable on dark and light cells
            ax.text(j, i, str(matrix[i][j]), ha="center", va="center", fontsize=8, color=color)
    fig.colorbar(image)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


# ------------------------------------------------------------------------------------------------ NER
def encode_ner_dataset(
    sentences: Sequence[NERSentence],
    tokenizer: PreTrainedTokenizerBase,
    *,
    label2id: dict[str, int] | None,
    max_length: int,
    stride: int,
    label_all_tokens: bool = False,
) -> tuple[list[dict], list[int], AlignmentAudit]:
    """Encode sentences into windows. Returns ``(windows, sentence_index_of_each_window, audit)``."""
    audit = AlignmentAudit()
    windows, owner = [], []
    for k, s in enumerate(sentences):
        for w in encode_sentence(
            s.tokens,
            s.tags if label2id is not None and s.tags else None,
            tokenizer,
            label2id=label2id,
            max_length=max_length,
            stride=stride,
            label_all_tokens=label_all_tokens,
            audit=audit,
        ):
            windows.append(w)
            owner.append(k)
    if audit.n_labels_lost:
        raise RuntimeError(f"alignment lost {audit.n_labels_lost} labels: this is a bug, please report it")
    return windows, owner, audit


def word_scores(
    windows: Sequence[dict], owner: Sequence[int], logits: np.ndarray, sentence_lengths: Sequence[int]
) -> list[np.ndarray]:
    """Word-level label scores ``(n_words, n_labels)`` per sentence (``sentence_lengths``: words per
    sentence) from padded window logits ``(n_windows, L, n_labels)``; ``owner[i]`` is window i's sentence."""
    rows: list[list[int]] = [[] for _ in sentence_lengths]
    for row, k in enumerate(owner):
        rows[k].append(row)
    return [
        merge_window_scores([windows[r] for r in sentence_rows], logits[sentence_rows], n_words)
        for sentence_rows, n_words in zip(rows, sentence_lengths, strict=True)
    ]


def word_predictions(
    windows: Sequence[dict],
    owner: Sequence[int],
    logits: np.ndarray,
    sentence_lengths: Sequence[int],
    labels: Sequence[str],
    *,
    constrained: bool = True,
) -> list[list[str]]:
    """Predicted tags per sentence from padded window logits (see :func:`word_scores`), decoded by
    :func:`~toolkit.decode_tags` (valid BIO sequences unless ``constrained=False``)."""
    return _decode_all(word_scores(windows, owner, logits, sentence_lengths), labels, constrained)


def _decode_all(scores: Sequence[np.ndarray], labels: Sequence[str], constrained: bool) -> list[list[str]]:
    return [[labels[i] for i in decode_tags(s, labels, constrained=constrained)] for s in scores]


def ner_scores(predicted: Sequence[Sequence[str]], gold: Sequence[Sequence[str]]) -> dict:
    """Entity-level scores in the default and strict modes (shipped offline metric)."""
    metric = load_metric("entity_f1")
    default = metric.compute(predictions=[list(p) for p in predicted], references=[list(g) for g in gold])
    strict = metric.compute(
        predictions=[list(p) for p in predicted], references=[list(g) for g in gold], mode="strict"
    )
    out = {k: v for k, v in default.items() if k.startswith("overall_")}
    out.update({f"strict_{k}": v for k, v in strict.items() if k.startswith("overall_")})
    out["per_type"] = {k: v for k, v in default.items() if not k.startswith("overall_")}
    return out


DECODINGS = {True: "most probable valid BIO sequence", False: "best tag per word"}


def score_ner_split(
    windows: Sequence[dict],
    owner: Sequence[int],
    logits: np.ndarray,
    sentences: Sequence[NERSentence],
    labels: Sequence[str],
    *,
    constrained: bool = True,
) -> tuple[dict, list[list[str]]]:
    """Entity scores of one split under both decodings, from one set of window logits.

    The ``constrained`` one (see :func:`~toolkit.decode_tags`) is the headline: its scores are the top-level
    keys and its tags are returned; the other decoding's overall scores are kept under ``other_decoding``,
    so what the constraint changes is measured on every run.

    Returns:
        ``(scores, predicted tags per sentence)``; ``scores["decoding"]`` names the headline decoding.
    """
    gold = [s.tags for s in sentences]
    scores_per_word = word_scores(windows, owner, logits, [len(s.tokens) for s in sentences])
    headline, other = (_decode_all(scores_per_word, labels, c) for c in (constrained, not constrained))
    scores = ner_scores(headline, gold) | {"decoding": DECODINGS[constrained]}
    other_scores = ner_scores(other, gold)
    scores["other_decoding"] = {"decoding": DECODINGS[not constrained]} | {
        k: v for k, v in other_scores.items() if k != "per_type"
    }
    return scores, headline


def join_tokens(tokens: Sequence[str]) -> str:
    """Join words with spaces, characters of Chinese text without: ``["巴", "黎"]`` → ``"巴黎"``."""
    from ._tokenizer import is_cjk_char

    out = ""
    for i, tok in enumerate(tokens):
        cjk_pair = i and is_cjk_char(tokens[i - 1][-1:] or " ") and is_cjk_char(tok[:1] or " ")
        out += tok if i == 0 or cjk_pair else " " + tok
    return out


def write_ner_predictions(
    sentences: Sequence[NERSentence],
    predicted: Sequence[Sequence[str]],
    output_dir: str | os.PathLike,
    name: str,
) -> None:
    """Write ``<name>_predictions.conll`` (token, gold, predicted) and ``<name>_predictions.jsonl`` (spans)."""
    from ._ner import bio_entities

    output_dir = Path(output_dir)
    with open(output_dir / f"{name}_predictions.conll", "w", encoding="utf-8") as conll, \
            open(output_dir / f"{name}_predictions.jsonl", "w", encoding="utf-8") as spans:  # fmt: skip
        for s, tags in zip(sentences, predicted, strict=True):
            gold = s.tags or ["O"] * len(s.tokens)
            for token, g, p in zip(s.tokens, gold, tags, strict=True):
                conll.write(f"{token}\t{g}\t{p}\n")
            conll.write("\n")
            entities = [
                {"label": kind, "start": a, "end": b, "text": join_tokens(s.tokens[a:b])}
                for kind, a, b in bio_entities(tags)
            ]
            spans.write(json.dumps({"tokens": s.tokens, "entities": entities}, ensure_ascii=False) + "\n")


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """``(total, trainable)`` parameter counts."""
    return sum(p.numel() for p in model.parameters()), sum(
        p.numel() for p in model.parameters() if p.requires_grad
    )


def save_finetune_outputs(
    trainer,
    ft: FinetuneArguments,
    results: dict,
    *,
    argv: list[str] | None,
    script: str,
    task: str,
    pipeline_tag: str,
    labels: list[str],
    data_description: str,
    hyperparameters: dict,
    headline_keys: Sequence[str],
    usage: str,
    hub=None,
) -> None:
    """The last step of both fine-tuning recipes: save the plain model directory, ``metrics.json`` and the
    model card (main process only), then push when a hub target was checked at start."""
    from ._card import training_command, write_finetune_model_card
    from ._hub import push_output_dir
    from ._training import write_json

    args = trainer.args
    trainer.save_model()
    if not trainer.is_world_process_zero():
        return
    write_json(results, os.path.join(args.output_dir, "metrics.json"))
    total, _ = count_parameters(trainer.model)
    write_finetune_model_card(
        args.output_dir,
        task=task,
        pipeline_tag=pipeline_tag,
        languages=ft.languages,
        base_model=ft.model_name_or_path,
        labels=labels,
        params=total,
        data_description=data_description,
        hyperparameters={
            "epochs / max_steps": args.max_steps if args.max_steps > 0 else args.num_train_epochs,
            "batch size": args.per_device_train_batch_size,
            "learning rate": args.learning_rate,
            **hyperparameters,
        },
        metrics=card_metrics(results),
        command=training_command(argv, script=script),
        dataset_name=ft.dataset_name or os.path.basename(os.path.dirname(os.path.abspath(ft.train_file))),
        eval_metrics=headline_metrics(results, headline_keys),
        usage=usage,
    )
    if hub:
        push_output_dir(args.output_dir, hub)
