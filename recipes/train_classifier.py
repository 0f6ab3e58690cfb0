#!/usr/bin/env python
"""Fine-tune a BERT-like checkpoint for text classification: single-label, multi-label or sentence pairs.

    python recipes/train_classifier.py --config recipes/configs/classify/sst2.yaml
    python recipes/train_classifier.py --model_name_or_path out/tiny_en --train_file train.csv \
        --validation_file dev.csv --text_column sentence --label_column label --output_dir out/clf

Every option: ``python recipes/train_classifier.py --help``. Flags override ``--config`` values.
"""

from __future__ import annotations

import logging
import os

import datasets
from transformers import (
    AutoModelForSequenceClassification,
    DataCollatorWithPadding,
    TrainingArguments,
    set_seed,
)

from toolkit import (
    ClassificationMetrics,
    DropColumns,
    FinetuneArguments,
    RunArguments,
    ToolkitInputError,
    ToolkitTrainer,
    adjust_embeddings,
    build_label_map,
    check_labels_known,
    class_balance,
    classification_metrics,
    encode_classification,
    finetuning_fingerprint,
    flat_metrics,
    freeze_parameters,
    hold_out_validation,
    hub_target_from_args,
    load_checkpoint_tokenizer,
    load_finetune_model,
    parse_config,
    plot_confusion_matrix,
    prepare_output_dir,
    prepare_training_args,
    read_classification,
    run_cli,
    save_finetune_outputs,
    setup_logging,
    uniform_top_attention,
    write_classification_predictions,
)

logger = logging.getLogger("train_classifier")


def main(argv: list[str] | None = None) -> dict:
    # 1. Configuration.
    ft, run, args = parse_config([FinetuneArguments, RunArguments, TrainingArguments], argv)
    setup_logging(args)
    set_seed(args.seed)
    if not ft.model_name_or_path:
        raise ToolkitInputError(
            "--model_name_or_path is required (a pretrained output dir or any BERT-like checkpoint)"
        )
    if bool(ft.train_file) == bool(ft.dataset_name):
        raise ToolkitInputError("give exactly one of --train_file and --dataset_name")
    tokenizer = load_checkpoint_tokenizer(ft.model_name_or_path)  # fail early on a bad checkpoint path
    prepare_training_args(args, group_by_length=ft.group_by_length)
    hub = hub_target_from_args(args)  # token, repo id and permissions checked now, not after training
    # The output directory: writable, and either new, or this same run to resume (a changed run is refused).
    resume_from = prepare_output_dir(
        args,
        recipe="train_classifier",
        fingerprint=finetuning_fingerprint(ft),
        overwrite=run.overwrite_output_dir,
    )

    # 2. Data: read and validate every split before anything else; labels come from the training split.
    read = dict(
        text_column=ft.text_column,
        text_pair_column=ft.text_pair_column,
        label_column=ft.label_column,
        multi_label=ft.multi_label,
        label_separator=ft.label_separator,
        file_format=ft.file_format,
    )
    hub_data = datasets.load_dataset(ft.dataset_name, ft.dataset_config) if ft.dataset_name else {}
    splits = {
        "train": hub_data.get("train") or ft.train_file,
        "validation": hub_data.get("validation") or ft.validation_file,
        "test": hub_data.get("test") or ft.test_file,
    }
    data = {
        name: read_classification(src, require_labels=name != "test", **read)
        for name, src in splits.items()
        if src is not None
    }
    if ft.validation_split:
        source = ft.dataset_name or ft.train_file
        data = hold_out_validation(data, ft.validation_split, source=source)
        splits["validation"] = f"{source} (held-out part)"
    for name, limit in (
        ("train", ft.max_train_samples),
        ("validation", ft.max_eval_samples),
        ("test", ft.max_eval_samples),
    ):
        if name in data and limit:
            data[name] = data[name][:limit]
    labels = build_label_map([lab for e in data["train"] for lab in e.labels])
    for name in ("validation", "test"):
        if name in data:
            check_labels_known([(str(splits[name]), e.line, e.labels) for e in data[name]], labels)
    label2id = {lab: i for i, lab in enumerate(labels)}
    balance = class_balance(data["train"])
    logger.info("Class balance (train): %s", balance)

    # 3. Tokenizer and encoding (long inputs truncated to max_length, and counted).
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

    # 4. Model: the checkpoint's encoder + a new classification head; report what loaded.
    model, loading = load_finetune_model(
        AutoModelForSequenceClassification,
        ft.model_name_or_path,
        labels=labels,
        problem_type="multi_label_classification" if ft.multi_label else None,
        dropout=ft.dropout,
    )
    embedding_report, embedding_card = adjust_embeddings(model, ft)  # --embedding_rms, --position_rms_ratio
    loading.update(embedding_report)
    if ft.uniform_top_attention:
        uniform_top_attention(model)  # [CLS]'s top-layer attention starts as the mean of the sequence
        if ft.freeze_layers >= model.config.num_hidden_layers:
            logger.warning("--uniform_top_attention with every layer frozen: the queries stay zero for good")
    freeze_parameters(model, embeddings=ft.freeze_embeddings, layers=ft.freeze_layers)

    # 5. Train with dynamic padding and length grouping (or the stock pad-to-max-length).
    collator = DataCollatorWithPadding(
        tokenizer,
        padding="max_length" if ft.pad_to_max_length else "longest",
        max_length=ft.max_length if ft.pad_to_max_length else None,
    )
    trainer = ToolkitTrainer(
        model=model,
        args=args,
        train_dataset=encoded["train"],
        eval_dataset=encoded.get("validation"),
        processing_class=tokenizer,
        data_collator=DropColumns(collator, ["length"]),
        compute_metrics=ClassificationMetrics(multi_label=ft.multi_label, id2label=dict(enumerate(labels))),
    )
    train_result = trainer.train(resume_from_checkpoint=resume_from)

    # 6. Evaluate: accuracy, macro-F1, per-class scores, confusion matrix (JSON + PNG).
    results = {
        "train": train_result.metrics,
        "class_balance": balance,
        "truncated": truncated,
        "loading_report": loading,
    }
    # Every rank runs predict (it gathers across processes); files are written by the main process only.
    test_logits = None
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
            out.predictions, out.label_ids, multi_label=ft.multi_label, num_labels=len(labels)
        )
        results[name] = scores
        logger.info(
            "%s: %s", name, {k: round(v, 4) for k, v in flat_metrics(scores, dict(enumerate(labels))).items()}
        )
        if "confusion_matrix" in scores and trainer.is_world_process_zero():
            plot_confusion_matrix(
                scores["confusion_matrix"], labels, os.path.join(args.output_dir, f"{name}_confusion.png")
            )

    # 7. Predictions for the test set (labelled or not), from the logits above.
    if test_logits is not None and trainer.is_world_process_zero():
        write_classification_predictions(
            data["test"],
            test_logits,
            labels,
            ft.multi_label,
            os.path.join(args.output_dir, "test_predictions.jsonl"),
        )

    # 8. Save a plain model directory (labels in config.id2label) + metrics + model card; push if asked.
    save_finetune_outputs(
        trainer,
        ft,
        results,
        argv=argv,
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
        hub=hub,
    )
    return results


if __name__ == "__main__":
    run_cli(main)
