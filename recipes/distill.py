#!/usr/bin/env python
r"""Distil a fine-tuned classifier or tagger (the teacher) into a smaller student.

    # a 3-layer student cut out of the teacher
    python recipes/distill.py --task classification --teacher out/teacher_sst2 --student_layers 0,2,4 \
        --train_file train.jsonl --validation_split 0.05 --test_file dev.jsonl --output_dir out/student
    # a student pretrained by recipes/pretrain.py (its own tokenizer: teacher and student meet per word)
    python recipes/distill.py --task ner --teacher out/teacher_conll --model_name_or_path out/tiny_en \
        --train_file train.txt --validation_file dev.txt --test_file test.txt --output_dir out/tiny_ner

The student learns from the gold labels and from the teacher's temperature-softened scores (and, optionally,
its hidden states); --unlabelled_files adds text that only the teacher labels. The output is a stock
AutoModelFor... directory, its card naming the teacher and the share of its score the student keeps.
From Python: ``main(task="ner", teacher=..., ...)``. Every option: ``python recipes/distill.py --task ner --help``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys

from transformers import TrainingArguments

from toolkit.config import (
    ClassifierArguments,
    DistillArguments,
    NERArguments,
    RunArguments,
    answer_help,
    parse_config,
)

TASK_ARGUMENTS = {"classification": ClassifierArguments, "ner": NERArguments}


def options_of(task: str) -> list:
    return [TASK_ARGUMENTS[task], DistillArguments, RunArguments, TrainingArguments]


if __name__ == "__main__":  # --help before the heavy imports below
    answer_help(options_of("ner" if {"ner", "--task=ner"} & set(sys.argv) else "classification"), __doc__)

from transformers import DataCollatorForTokenClassification, DataCollatorWithPadding

from toolkit.classify import (
    encode_classification_splits,
    read_classification_splits,
    score_classification,
    write_classification_predictions,
)
from toolkit.distill import (
    PIPELINE_TAG,
    STUDENT_USAGE,
    TEACHER_CACHE,
    DistillationCollator,
    DistillationTrainer,
    build_student,
    check_hidden_loss,
    compare_with_teacher,
    distill_task,
    distillation_fingerprint,
    hidden_layer_map,
    read_unlabelled,
    teacher_labels,
    teacher_scores,
    training_set,
    validate_distill_options,
)
from toolkit.finetune import padded_collator, save_finetune_outputs, start_finetuning
from toolkit.ner import encode_ner_splits, read_ner_splits, score_ner_splits, windows_dataset
from toolkit.training import run_cli

logger = logging.getLogger("distill")


def main(argv: list[str] | None = None, **options) -> dict:
    # 1. Configuration: the task decides the options; checks, tokenizer, hub pre-flight, output directory.
    task = distill_task(argv if argv is not None else sys.argv[1:], options)
    ft, dist, run, args = parse_config(options_of(task), argv, description=__doc__, **options)
    validate_distill_options(ft, dist, task=task)
    start = start_finetuning(
        ft, run, args, recipe="distill", task=task, more_options=distillation_fingerprint(dist)
    )
    check_hidden_loss(dist, start.tokenizer)

    # 2. Data: every split read and checked as the fine-tuning recipes do; the labels are the teacher's (same
    #    set, else a clear error), in its order; unlabelled text joins the training set for the teacher's term.
    if task == "classification":
        data, labels, _ = read_classification_splits(ft, args)
    else:
        splits = read_ner_splits(ft, args)
        data, labels = splits.data, splits.labels
    labels = teacher_labels(dist.teacher, labels, task=task)
    if task == "ner":
        splits.labels = labels
    unlabelled = read_unlabelled(
        dist.unlabelled_files,
        task=task,
        encoding=ft.encoding,
        errors=ft.encoding_errors,
        limit=ft.max_train_samples,
    )

    # 3. The student: cut from the teacher, a fresh preset, or a checkpoint with a new head.
    student = build_student(ft, dist, labels, task=task, tokenizer=start.tokenizer, args=args)

    # 4. The teacher scores every split once, with its own tokenizer (cached by weights, texts, windowing).
    with args.main_process_first(desc="teacher scores"):  # one process scores, the others read the cache
        teacher = teacher_scores(
            dist.teacher,
            {"train": data["train"] + unlabelled} | {k: v for k, v in data.items() if k != "train"},
            task=task,
            max_length=ft.max_length,
            stride=ft.stride,
            batch_size=dist.teacher_batch_size,
            cache_dir=dist.teacher_cache or os.path.join(args.output_dir, TEACHER_CACHE),
            multi_label=ft.multi_label,
            device=str(args.device),
        )
    layer_map = (
        hidden_layer_map(dist, student, teacher.model.config.num_hidden_layers) if dist.hidden_weight else []
    )

    # 5. Encode with the student's tokenizer; the training examples carry the teacher's scores.
    train = training_set(
        task, data["train"], unlabelled, teacher.scores["train"], start.tokenizer, labels=labels, ft=ft
    )
    if task == "classification":
        encoded, _, coverage = encode_classification_splits(data, start.tokenizer, labels=labels, ft=ft)
        evaluation = encoded.get("validation")
        inner = padded_collator(DataCollatorWithPadding, start.tokenizer, ft)
    else:
        held_out = dataclasses.replace(splits, data={k: v for k, v in data.items() if k != "train"})
        encoded, audits = encode_ner_splits(held_out, start.tokenizer, ft)
        evaluation = windows_dataset(encoded["validation"][0]) if "validation" in encoded else None
        inner = padded_collator(DataCollatorForTokenClassification, start.tokenizer, ft)

    # 6. Train on the distillation loss (the evaluation loss is the gold labels').
    trainer = DistillationTrainer(
        model=student.model,
        args=args,
        train_dataset=train,
        eval_dataset=evaluation,
        processing_class=start.tokenizer,
        data_collator=DistillationCollator(inner),
        temperature=dist.temperature,
        hard_label_weight=dist.hard_label_weight,
        multi_label=ft.multi_label,
        teacher=teacher.model if dist.hidden_weight else None,
        hidden_weight=dist.hidden_weight,
        layer_map=layer_map,
    )
    train_result = trainer.train(resume_from_checkpoint=start.resume_from)

    # 7. Score the student, and the teacher on the same splits: the share of its score the student keeps.
    if task == "classification":
        scores, test_logits = score_classification(trainer, encoded, labels, multi_label=ft.multi_label)
    else:
        scores, test_logits = (
            score_ner_splits(trainer, encoded, splits, constrained=ft.constrained_decoding),
            None,
        )
    comparison = compare_with_teacher(
        scores,
        teacher,
        data,
        labels,
        task=task,
        multi_label=ft.multi_label,
        constrained=getattr(ft, "constrained_decoding", True),
    )
    if test_logits is not None and trainer.is_world_process_zero():  # predictions, labelled or not
        path = os.path.join(args.output_dir, "test_predictions.jsonl")
        write_classification_predictions(data["test"], test_logits, labels, ft.multi_label, path)
    results = {
        "train": train_result.metrics,
        "student": {"origin": student.origin, "loading_report": student.report},
        **scores,
        "teacher": {"path": dist.teacher, **comparison.teacher_scores},
        "kept_share": comparison.kept,
        "kept_share_split": comparison.split,
        "unlabelled_examples": len(unlabelled),
        **({"tokenizer_coverage": coverage} if task == "classification" else {"alignment": audits}),
    }

    # 8. Save a stock model directory + metrics + a card naming the teacher and the share kept; push if asked.
    n_train = len(data["train"])
    save_finetune_outputs(
        trainer,
        ft,
        results,
        argv=argv,
        options=options,
        script="recipes/distill.py",
        task="text classification" if task == "classification" else "named-entity recognition",
        pipeline_tag=PIPELINE_TAG[task],
        labels=labels,
        data_description=f"Distilled from the teacher {dist.teacher}; student: {student.origin}. "
        f"{ft.train_file or ft.dataset_name}: {n_train:,} labelled training examples"
        + (f" and {len(unlabelled):,} unlabelled ones that the teacher labelled" if unlabelled else "")
        + f". {comparison.sentence()}",
        hyperparameters={
            "teacher": dist.teacher,
            "temperature": dist.temperature,
            "gold-label weight": dist.hard_label_weight,
            "hidden-state weight": dist.hidden_weight,
            **(
                {"layer map (student:teacher)": ",".join(f"{s}:{t}" for s, t in layer_map)}
                if layer_map
                else {}
            ),
            "max length": ft.max_length,
        },
        headline_keys=(comparison.metric,),
        usage=STUDENT_USAGE[task],
        how_to_load=f'pipeline("{PIPELINE_TAG[task]}", model="MODEL")',
        hub=start.hub,
    )
    return results


if __name__ == "__main__":
    run_cli(main)
