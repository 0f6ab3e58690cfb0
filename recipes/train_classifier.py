#!/usr/bin/env python
r"""Fine-tune a BERT-like checkpoint for text classification: single-label, multi-label or sentence pairs.

    python recipes/train_classifier.py --config recipes/configs/classify/sst2.yaml
    python recipes/train_classifier.py --model_name_or_path out/tiny_en --train_file train.csv \
        --validation_file dev.csv --text_column sentence --label_column label --output_dir out/clf

From Python: ``main(config="recipes/configs/classify/sst2.yaml", max_steps=100)`` (keyword options win).
Every option: ``python recipes/train_classifier.py --help``. Flags override ``--config`` values.
"""

from __future__ import annotations

import logging
import os

from transformers import TrainingArguments

from toolkit.config import ClassifierArguments, RunArguments, answer_help, parse_config

OPTIONS = [ClassifierArguments, RunArguments, TrainingArguments]
if __name__ == "__main__":  # --help before the heavy imports below: about 2 s instead of 5
    answer_help(OPTIONS, __doc__)

from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding

from toolkit import ToolkitTrainer
from toolkit.classify import (
    ClassificationMetrics,
    encode_classification_splits,
    read_classification_splits,
    score_classification,
    write_classification_predictions,
)
from toolkit.finetune import finetune_model, padded_collator, save_finetune_outputs, start_finetuning
from toolkit.training import run_cli

logger = logging.getLogger("train_classifier")


def main(argv: list[str] | None = None, **options) -> dict:
    # 1. Configuration, option checks, tokenizer, hub pre-flight and output directory: before any data.
    ft, run, args = parse_config(OPTIONS, argv, description=__doc__, **options)
    start = start_finetuning(ft, run, args, recipe="train_classifier", task="classification")

    # 2. Data: read and validate every split; labels come from the training split; hold-out and caps.
    data, labels, balance = read_classification_splits(ft, args)

    # 3. Encode (long inputs truncated to max_length, and counted); the [UNK] rate is reported.
    encoded, truncated, coverage = encode_classification_splits(data, start.tokenizer, labels=labels, ft=ft)

    # 4. Model: the checkpoint's encoder + a new classification head; report what loaded.
    model, loading, embedding_card = finetune_model(
        AutoModelForSequenceClassification,
        ft,
        labels,
        problem_type="multi_label_classification" if ft.multi_label else None,
    )

    # 5. Train with dynamic padding and length grouping (or the stock pad-to-max-length).
    trainer = ToolkitTrainer(
        model=model,
        args=args,
        train_dataset=encoded["train"],
        eval_dataset=encoded.get("validation"),
        processing_class=start.tokenizer,
        data_collator=padded_collator(DataCollatorWithPadding, start.tokenizer, ft),
        compute_metrics=ClassificationMetrics(multi_label=ft.multi_label, id2label=dict(enumerate(labels))),
    )
    train_result = trainer.train(resume_from_checkpoint=start.resume_from)

    # 6. Evaluate: accuracy, macro-F1, per-class scores, confusion matrix (JSON + PNG).
    results = {
        "train": train_result.metrics,
        "class_balance": balance,
        "truncated": truncated,
        "tokenizer_coverage": coverage,
        "loading_report": loading,
    }
    scores, test_logits = score_classification(trainer, encoded, labels, multi_label=ft.multi_label)
    results.update(scores)

    # 7. Predictions for the test set (labelled or not), from the logits above.
    if test_logits is not None and trainer.is_world_process_zero():
        path = os.path.join(args.output_dir, "test_predictions.jsonl")
        write_classification_predictions(data["test"], test_logits, labels, ft.multi_label, path)

    # 8. Save a plain model directory (labels in config.id2label) + metrics + model card; push if asked.
    save_finetune_outputs(
        trainer,
        ft,
        results,
        argv=argv,
        options=options,
        script="recipes/train_classifier.py",
        task="text-classification",
        pipeline_tag="text-classification",
        labels=labels,
        data_description=f"{ft.dataset_name or ft.train_file}: {len(data['train']):,} training examples"
        + (f" ({ft.validation_split:.0%} of the file held out for validation)" if ft.validation_split else "")
        + f"; class balance {balance}.",
        hyperparameters={
            "max length": ft.max_length,
            "multi-label": ft.multi_label,
            "top-layer attention started uniform": ft.uniform_top_attention,
            **embedding_card,
        },
        headline_keys=("accuracy", "macro_f1"),
        usage='from transformers import pipeline\n\nclf = pipeline("text-classification", model="MODEL")\n'
        'print(clf("an example sentence"))',
        how_to_load='pipeline("text-classification", model="MODEL")',
        hub=start.hub,
    )
    return results


if __name__ == "__main__":
    run_cli(main)
