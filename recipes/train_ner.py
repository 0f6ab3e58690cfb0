#!/usr/bin/env python
"""Fine-tune a BERT-like checkpoint for named-entity recognition (Chinese by character, English by word).

    python recipes/train_ner.py --config recipes/configs/ner/msra.yaml
    python recipes/train_ner.py --model_name_or_path out/tiny_en --train_file train.txt --validation_file dev.txt \
        --tagging_scheme BIOES --output_dir out/ner

Input: CoNLL-style files (``--token_column``, ``--tag_column``), or JSON Lines with tokens + tags or text +
character spans. BIO, IOB1 and BIOES are converted to BIO; invalid I- tags are repaired and counted.
Sentences longer than the model's window are split into overlapping windows and merged back: no truncation.
"""

from __future__ import annotations

import logging
from pathlib import Path

import datasets
from transformers import (
    AutoModelForTokenClassification,
    DataCollatorForTokenClassification,
    TrainingArguments,
    set_seed,
)

from toolkit import (
    DECODINGS,
    DropColumns,
    FinetuneArguments,
    RunArguments,
    ToolkitInputError,
    ToolkitTrainer,
    adjust_embeddings,
    build_label_map,
    check_labels_known,
    encode_ner_dataset,
    finetuning_fingerprint,
    freeze_parameters,
    hold_out_validation,
    hub_target_from_args,
    load_checkpoint_tokenizer,
    load_finetune_model,
    normalise_schemes,
    parse_config,
    prepare_output_dir,
    prepare_training_args,
    read_conll,
    read_ner_jsonl,
    run_cli,
    save_finetune_outputs,
    score_ner_split,
    setup_logging,
    write_ner_predictions,
)

logger = logging.getLogger("train_ner")
MODEL_INPUTS = ("input_ids", "attention_mask", "labels")


def read_split(path: str, ft: FinetuneArguments, *, labelled: bool):
    fmt = (ft.file_format or Path(path).suffix.lstrip(".")).lower()
    if fmt in ("jsonl", "json"):
        return read_ner_jsonl(path)
    return read_conll(path, token_column=ft.token_column, tag_column=ft.tag_column, require_tags=labelled)


def main(argv: list[str] | None = None) -> dict:
    # 1. Configuration.
    ft, run, args = parse_config([FinetuneArguments, RunArguments, TrainingArguments], argv)
    setup_logging(args)
    set_seed(args.seed)
    if not ft.model_name_or_path or not ft.train_file:
        raise ToolkitInputError("--model_name_or_path and --train_file are required")
    if ft.uniform_top_attention:
        raise ToolkitInputError("--uniform_top_attention is for classification: NER reads every position")
    tokenizer = load_checkpoint_tokenizer(ft.model_name_or_path)  # fail early on a bad checkpoint path
    prepare_training_args(args, group_by_length=ft.group_by_length)
    hub = hub_target_from_args(args)  # token, repo id and permissions checked now, not after training
    # The output directory: writable, and either new, or this same run to resume (a changed run is refused).
    resume_from = prepare_output_dir(
        args, recipe="train_ner", fingerprint=finetuning_fingerprint(ft), overwrite=run.overwrite_output_dir
    )

    # 2. Data: read, validate, convert every split to BIO (repairs counted), labels from training.
    files = {"train": ft.train_file, "validation": ft.validation_file, "test": ft.test_file}
    data = {name: read_split(path, ft, labelled=True) for name, path in files.items() if path}
    if ft.validation_split:
        data = hold_out_validation(data, ft.validation_split, source=ft.train_file)
        files["validation"] = f"{ft.train_file} (held-out part)"
    for name, limit in (
        ("train", ft.max_train_samples),
        ("validation", ft.max_eval_samples),
        ("test", ft.max_eval_samples),
    ):
        if name in data and limit:
            data[name] = data[name][:limit]
    schemes = {
        name: normalise_schemes(sents, scheme=ft.tagging_scheme).__dict__ for name, sents in data.items()
    }
    labels = build_label_map([t for s in data["train"] for t in s.tags])
    for name in ("validation", "test"):
        if name in data:
            check_labels_known([(files[name], s.line, s.tags) for s in data[name]], labels)
    label2id = {lab: i for i, lab in enumerate(labels)}

    # 3. Tokenizer; align word labels to sub-tokens; window long sentences; audit the alignment.
    encoded, audits = {}, {}
    for name, sents in data.items():
        windows, owner, audit = encode_ner_dataset(
            sents,
            tokenizer,
            label2id=label2id,
            max_length=ft.max_length,
            stride=ft.stride,
            label_all_tokens=ft.label_all_tokens,
        )
        encoded[name] = (windows, owner)
        audits[name] = audit.as_dict()
        logger.info("Alignment audit (%s): %s", name, audits[name])

    def as_dataset(name):
        rows = [{k: w[k] for k in MODEL_INPUTS} | {"length": len(w["input_ids"])} for w in encoded[name][0]]
        return datasets.Dataset.from_list(rows)

    # 4. Model: the checkpoint's encoder + a new token-classification head; report what loaded.
    model, loading = load_finetune_model(
        AutoModelForTokenClassification, ft.model_name_or_path, labels=labels, dropout=ft.dropout
    )
    embedding_report, embedding_card = adjust_embeddings(model, ft)  # --embedding_rms, --position_rms_ratio
    loading.update(embedding_report)
    freeze_parameters(model, embeddings=ft.freeze_embeddings, layers=ft.freeze_layers)

    # 5. Train (dynamic padding, length grouping).
    collator = DataCollatorForTokenClassification(
        tokenizer,
        padding="max_length" if ft.pad_to_max_length else "longest",
        max_length=ft.max_length if ft.pad_to_max_length else None,
    )
    trainer = ToolkitTrainer(
        model=model,
        args=args,
        train_dataset=as_dataset("train"),
        processing_class=tokenizer,
        data_collator=DropColumns(collator, ["length"]),
    )
    train_result = trainer.train(resume_from_checkpoint=resume_from)

    # 6. Evaluate at entity level (default and strict; both decodings), merging windows back into sentences.
    results = {
        "train": train_result.metrics,
        "labels": labels,
        "schemes": schemes,
        "alignment": audits,
        "loading_report": loading,
    }
    for name in ("validation", "test"):
        if name not in data:
            continue
        windows, owner = encoded[name]
        logits = trainer.predict(as_dataset(name)).predictions
        results[name], predicted = score_ner_split(
            windows, owner, logits, data[name], labels, constrained=ft.constrained_decoding
        )
        other = results[name]["other_decoding"]
        logger.info(
            "%s: entity F1 %.4f (strict %.4f); with %s: %.4f",
            name,
            results[name]["overall_f1"],
            results[name]["strict_overall_f1"],
            other["decoding"],
            other["overall_f1"],
        )
        if trainer.is_world_process_zero():
            write_ner_predictions(data[name], predicted, args.output_dir, name)

    # 7. Save a plain model directory (labels in config.id2label) + metrics + model card; push if asked.
    save_finetune_outputs(
        trainer,
        ft,
        results,
        argv=argv,
        script="recipes/train_ner.py",
        task="named-entity recognition",
        pipeline_tag="token-classification",
        labels=labels,
        data_description=f"{ft.train_file}: {len(data['train']):,} sentences"
        + (f" ({ft.validation_split:.0%} of the file held out for validation)" if ft.validation_split else "")
        + f", tags converted from {schemes['train']['scheme']} to BIO.",
        hyperparameters={
            "window (tokens)": ft.max_length,
            "window stride": ft.stride,
            "label all sub-tokens": ft.label_all_tokens,
            "decoding": DECODINGS[ft.constrained_decoding],
            **embedding_card,
        },
        headline_keys=("overall_f1", "overall_precision", "overall_recall"),
        usage='from transformers import pipeline\n\nner = pipeline("token-classification", model="MODEL", '
        'aggregation_strategy="simple")\nprint(ner("..."))\n\n# The pipeline takes each token\'s best tag; the '
        "scores above decode valid BIO sequences, as NERTagger does\n# (with character offsets for Chinese "
        'and English, and no truncation):\n# from toolkit import NERTagger; NERTagger("MODEL")("...")',
        hub=hub,
    )
    return results


if __name__ == "__main__":
    run_cli(main)
