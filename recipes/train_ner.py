#!/usr/bin/env python
r"""Fine-tune a BERT-like checkpoint for named-entity recognition (Chinese by character, English by word), or
train the light BiLSTM-CRF tagger from scratch.

    python recipes/train_ner.py --config recipes/configs/ner/msra.yaml
    python recipes/train_ner.py --model_name_or_path out/tiny_en --train_file train.txt --validation_file dev.txt \
        --tagging_scheme BIOES --output_dir out/ner
    python recipes/train_ner.py --model_name_or_path out/tiny_zh --crf true --bilstm_hidden 128 ...  # BERT-BiLSTM-CRF
    python recipes/train_ner.py --encoder bilstm --vectors chars.vec --train_file train.txt ...  # light tagger

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

from transformers import DataCollatorForTokenClassification

from toolkit import ToolkitTrainer
from toolkit.finetune import padded_collator, save_finetune_outputs, start_finetuning
from toolkit.ner import (
    build_ner_model,
    decoding_name,
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

    # 3. Model: the checkpoint's encoder + a new token-classification head (report what loaded), or the light
    #    tagger with its vocabulary built from the training split; then the CRF / BiLSTM layers asked for.
    model, tokenizer, loading, model_card = build_ner_model(ft, splits, start.tokenizer)
    record_window(model, max_length=ft.max_length, stride=ft.stride)  # NERTagger predicts with this window

    # 4. Align word labels to sub-tokens; window long sentences; audit the alignment.
    encoded, audits = encode_ner_splits(splits, tokenizer, ft)

    # 5. Train (dynamic padding, length grouping).
    trainer = ToolkitTrainer(
        model=model,
        args=args,
        train_dataset=windows_dataset(encoded["train"][0]),
        eval_dataset=windows_dataset(encoded["validation"][0]) if "validation" in encoded else None,  # loss
        processing_class=tokenizer,
        data_collator=padded_collator(DataCollatorForTokenClassification, tokenizer, ft),
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
    light, crf = ft.encoder == "bilstm", bool(ft.crf)

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
            "decoding": decoding_name(ft.constrained_decoding, crf),
            **model_card,
        },
        headline_keys=("overall_f1", "overall_precision", "overall_recall"),
        usage=ner_usage(light=light, crf=crf, bilstm=bool(ft.bilstm_hidden) and not light),
        how_to_load='NERTagger("MODEL") (from toolkit)'
        + (
            ""
            if light
            else ', or pipeline("token-classification", model="MODEL", aggregation_strategy="first")'
        ),
        hub=start.hub,
    )
    return results


def ner_usage(*, light: bool, crf: bool, bilstm: bool) -> str:
    """The model card's usage block: what runs the model, and what a stock pipeline loses."""
    tagger = 'from toolkit import NERTagger\n\ntagger = NERTagger("MODEL")\nprint(tagger("..."))  # spans with character offsets'
    if light:
        return (
            f"{tagger}\n\n# A light BiLSTM{'-CRF' if crf else ''} tagger (model type toolkit_bilstm): the toolkit "
            "registers it with transformers' Auto classes on import, so no trust_remote_code is needed; a stock "
            "pipeline needs `import toolkit.taggers` first and then takes each token's best tag"
            + (
                ", without the CRF's transitions: the emission scores of a CRF are not trained to stand alone, "
                "so expect far lower scores ('other_decoding' in metrics.json)"
                if crf
                else ""
            )
            + "."
        )
    pipeline = (
        'from transformers import pipeline\n\nner = pipeline("token-classification", model="MODEL", '
        'aggregation_strategy="first")\nprint(ner("..."))'
    )
    if bilstm:
        loses = (
            "the BiLSTM"
            + (" and the CRF" if crf else "")
            + " (it runs the encoder's own classifier, trained beside them)"
        )
    elif crf:
        loses = (
            "the CRF's learned transitions (it takes each token's best emission score, which a CRF does not train "
            "to stand alone: 'other_decoding' in metrics.json scores it)"
        )
    else:
        loses = "the valid-BIO decoding (it takes each token's best tag)"
    return (
        f"{tagger}\n\n# NERTagger runs the whole model (windows, no truncation, decoding as scored above).\n"
        f"# A stock pipeline loads the emission model only and loses {loses}:\n# {pipeline.replace(chr(10), chr(10) + '# ')}"
    )


if __name__ == "__main__":
    run_cli(main)
