#!/usr/bin/env python
r"""Fine-tune a BERT-like checkpoint for named-entity recognition (Chinese by character, English by word).

    python recipes/train_ner.py --config recipes/configs/ner/msra.yaml
    python recipes/train_ner.py --model_name_or_path out/tiny_en --train_file train.txt --validation_file dev.txt \
        --tagging_scheme BIOES --output_dir out/ner

Input: CoNLL-style files (``--token_column``, ``--tag_column``), or JSON Lines with tokens + tags or text +
character spans. BIO, IOB1 and BIOES are converted to BIO; invalid I- tags are repaired and counted.
Sentences longer than the model's window are split into overlapping windows and merged back: no truncation.
From Python: ``main(config="recipes/configs/ner/msra.yaml", max_steps=100)`` (keyword options win).
"""

from __future__ import annotations

import logging

from transformers import TrainingArguments

from toolkit.config import NERArguments, RunArguments, answer_help, parse_config

OPTIONS = [NERArguments, RunArguments, TrainingArguments]
if __name__ == "__main__":  # --help before the heavy imports below: about 2 s instead of 5
    answer_help(OPTIONS, __doc__)

from transformers import AutoModelForTokenClassification, DataCollatorForTokenClassification

from toolkit import ToolkitTrainer
from toolkit.finetune import finetune_model, padded_collator, save_finetune_outputs, start_finetuning
from toolkit.ner import (
    DECODINGS,
    encode_ner_splits,
    read_ner_splits,
    record_window,
    score_ner_splits,
    windows_dataset,
)
from toolkit.training import run_cli

logger = logging.getLogger("train_ner")


def main(argv: list[str] | None = None, **options) -> dict:
    # 1. Configuration, option checks, tokenizer, hub pre-flight and output directory: before any data.
    ft, run, args = parse_config(OPTIONS, argv, description=__doc__, **options)
    start = start_finetuning(ft, run, args, recipe="train_ner", task="ner")

    # 2. Data: read, validate, convert every split to BIO (repairs counted), labels from training.
    splits = read_ner_splits(ft, args)

    # 3. Align word labels to sub-tokens; window long sentences; audit the alignment.
    encoded, audits = encode_ner_splits(splits, start.tokenizer, ft)

    # 4. Model: the checkpoint's encoder + a new token-classification head; report what loaded.
    model, loading, embedding_card = finetune_model(AutoModelForTokenClassification, ft, splits.labels)
    record_window(model, max_length=ft.max_length, stride=ft.stride)  # NERTagger predicts with this window

    # 5. Train (dynamic padding, length grouping).
    trainer = ToolkitTrainer(
        model=model,
        args=args,
        train_dataset=windows_dataset(encoded["train"][0]),
        eval_dataset=windows_dataset(encoded["validation"][0]) if "validation" in encoded else None,  # loss
        processing_class=start.tokenizer,
        data_collator=padded_collator(DataCollatorForTokenClassification, start.tokenizer, ft),
    )
    train_result = trainer.train(resume_from_checkpoint=start.resume_from)

    # 6. Evaluate at entity level (default and strict; both decodings), merging windows back into sentences;
    #    predictions as CoNLL and JSONL spans (an unlabelled test file is predicted, not scored).
    results = {
        "train": train_result.metrics,
        "labels": splits.labels,
        "schemes": splits.schemes,
        "alignment": audits,
        "loading_report": loading,
    }
    results.update(score_ner_splits(trainer, encoded, splits, constrained=ft.constrained_decoding))

    # 7. Save a plain model directory (labels in config.id2label) + metrics + model card; push if asked.
    save_finetune_outputs(
        trainer,
        ft,
        results,
        argv=argv,
        options=options,
        script="recipes/train_ner.py",
        task="named-entity recognition",
        pipeline_tag="token-classification",
        labels=splits.labels,
        data_description=f"{ft.train_file}: {len(splits.data['train']):,} sentences"
        + (f" ({ft.validation_split:.0%} of the file held out for validation)" if ft.validation_split else "")
        + f", tags converted from {splits.schemes['train']['scheme']} to BIO.",
        hyperparameters={
            "window (tokens)": ft.max_length,
            "window stride": ft.stride,
            "label all sub-tokens": ft.label_all_tokens,
            "decoding": DECODINGS[ft.constrained_decoding],
            **embedding_card,
        },
        headline_keys=("overall_f1", "overall_precision", "overall_recall"),
        usage='from transformers import pipeline\n\nner = pipeline("token-classification", model="MODEL", '
        'aggregation_strategy="first")\nprint(ner("..."))\n\n# The pipeline takes each token\'s best tag; the '
        "scores above decode valid BIO sequences, as NERTagger does\n# (with character offsets for Chinese "
        'and English, and no truncation):\n# from toolkit import NERTagger; NERTagger("MODEL")("...")',
        how_to_load='NERTagger("MODEL") (from toolkit), or pipeline("token-classification", model="MODEL", '
        'aggregation_strategy="first")',
        hub=start.hub,
    )
    return results


if __name__ == "__main__":
    run_cli(main)
