"""Text classification: the splits read and checked, encoding with truncation counts, metrics (shipped
offline), scoring after training, prediction files and the confusion-matrix plot."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import datasets
import numpy as np
import torch
from transformers import PreTrainedTokenizerBase, TrainingArguments

from ._labelled import ClassificationExample, class_balance, read_classification
from ._metrics import load_metric
from ._text import tokenizer_safe
from ._tokenizer import tokenizer_report, warn_if_uncovered
from .config import FinetuneArguments
from .finetune import build_label_map, check_labels_known, finish_splits

__all__ = [
    "ClassificationMetrics",
    "classification_metrics",
    "encode_classification",
    "encode_classification_splits",
    "flat_metrics",
    "plot_confusion_matrix",
    "read_classification_splits",
    "score_classification",
    "write_classification_predictions",
]

logger = logging.getLogger(__name__)


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
    texts = [tokenizer_safe(e.text) for e in examples]  # a lone surrogate (JSON "\udcff") becomes U+FFFD
    pairs = (
        [tokenizer_safe(e.text_pair) for e in examples]
        if examples and examples[0].text_pair is not None
        else None
    )
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


def read_classification_splits(
    ft: FinetuneArguments, args: TrainingArguments
) -> tuple[dict[str, list[ClassificationExample]], list[str], dict[str, int]]:
    """Read and validate every split (files, or a hub dataset's splits; an explicit ``--validation_file`` or
    ``--test_file`` wins over the dataset's split), hold out and cap (:func:`~toolkit.finetune.finish_splits`),
    and build the label map from the training split.

    Returns:
        ``(splits, labels, class balance of the training split)``.

    Raises:
        ToolkitInputError: a bad file or row, or a validation/test label that training never saw (named by
            file and line, or dataset and split).
    """
    read = dict(
        text_column=ft.text_column,
        text_pair_column=ft.text_pair_column,
        label_column=ft.label_column,
        multi_label=ft.multi_label,
        label_separator=ft.label_separator,
        file_format=ft.file_format,
        encoding=ft.encoding,
        encoding_errors=ft.encoding_errors,
    )
    hub_data = datasets.load_dataset(ft.dataset_name, ft.dataset_config) if ft.dataset_name else {}
    sources = {
        "train": ft.train_file or hub_data.get("train"),
        "validation": ft.validation_file or hub_data.get("validation"),
        "test": ft.test_file or hub_data.get("test"),
    }
    names = {
        split: src if isinstance(src, str) else f"{ft.dataset_name}[{split}]"
        for split, src in sources.items()
    }
    data = {
        split: read_classification(src, require_labels=split != "test", **read)
        for split, src in sources.items()
        if src is not None
    }
    source = ft.train_file or ft.dataset_name
    data = finish_splits(data, ft, args, source=source)
    if ft.validation_split:
        names["validation"] = f"{source} (held-out part)"
    labels = build_label_map([lab for e in data["train"] for lab in e.labels])
    for split in ("validation", "test"):
        if split in data:
            check_labels_known([(names[split], e.line, e.labels) for e in data[split]], labels)
    balance = class_balance(data["train"])
    logger.info("Class balance (train): %s", balance)
    return data, labels, balance


def encode_classification_splits(
    data: dict[str, list[ClassificationExample]],
    tokenizer: PreTrainedTokenizerBase,
    *,
    labels: Sequence[str],
    ft: FinetuneArguments,
) -> tuple[dict[str, datasets.Dataset], dict[str, int]]:
    """:func:`encode_classification` for every split, as datasets; inputs truncated to ``--max_length`` are
    counted per split and logged.

    The training texts' ``[UNK]`` rate and most frequent uncovered characters are logged, with a warning
    above :data:`~toolkit._tokenizer.UNK_WARN_SHARE` (a checkpoint whose vocabulary misses the language).

    Returns:
        ``(datasets by split, truncated count by split, tokenizer coverage of the training texts)``.
    """
    label2id = {lab: i for i, lab in enumerate(labels)}
    texts = [t for e in data["train"] for t in (e.text, e.text_pair) if t]
    coverage = tokenizer_report(tokenizer, texts)
    logger.info("Tokenizer coverage (train): %s", coverage.summary())
    warn_if_uncovered(coverage, "classification train")
    encoded, truncated = {}, {}
    for name, examples in data.items():
        feats, truncated[name] = encode_classification(
            examples, tokenizer, label2id=label2id, multi_label=ft.multi_label, max_length=ft.max_length
        )
        encoded[name] = datasets.Dataset.from_list(feats)
        if truncated[name]:
            logger.warning(
                "%s: %d of %d inputs longer than %d tokens were truncated",
                name,
                truncated[name],
                len(feats),
                ft.max_length,
            )
    return encoded, truncated, coverage.as_dict()


def score_classification(
    trainer, encoded: dict[str, datasets.Dataset], labels: Sequence[str], *, multi_label: bool
) -> tuple[dict, np.ndarray | None]:
    """Predict the validation and test splits; score the labelled ones (and plot their confusion matrices,
    main process only). Every rank predicts: ``predict`` gathers across processes.

    Returns:
        ``(scores by split, the test split's logits or None)``.
    """
    results, test_logits = {}, None
    for name in ("validation", "test"):
        if name not in encoded:
            continue
        labelled = "labels" in encoded[name].column_names
        if not labelled and name == "validation":
            continue
        out = trainer.predict(encoded[name])
        if name == "test":
            test_logits = out.predictions
        if not labelled:
            continue
        scores = classification_metrics(
            out.predictions, out.label_ids, multi_label=multi_label, num_labels=len(labels)
        )
        results[name] = scores
        shown = {k: round(v, 4) for k, v in flat_metrics(scores, dict(enumerate(labels))).items()}
        logger.info("%s: %s", name, shown)
        if "confusion_matrix" in scores and trainer.is_world_process_zero():
            path = os.path.join(trainer.args.output_dir, f"{name}_confusion.png")
            plot_confusion_matrix(scores["confusion_matrix"], labels, path)
    return results, test_logits
