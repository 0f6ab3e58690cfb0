#!/usr/bin/env python
"""Fine-tuning throughput: dynamic padding + length grouping vs padding every batch to max_length.

    python -m benchmarks.finetune_throughput

Same data (the first 4,000 SST-2 training sentences from ../shared/data), tokenizer, model (``mini`` preset,
random init: speed does not depend on the weights), batch size 32, max_length 128, fp32, one Trainer each:
(a) this toolkit's default: DataCollatorWithPadding("longest") + length-grouped batches;
(b) the stock script default: every batch padded to max_length (pad_to_max_length), random order.
Alternating rounds; per round the first steps are warm-up and the mean step time of the rest is kept
(batches differ in length, so a mean over many steps is the fair figure); the median over rounds is reported.
Prints examples/s of each and the ratio (target >= 1.5); writes benchmarks/results/finetune_throughput.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile

import datasets
import torch
from transformers import (
    AutoModelForSequenceClassification,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
    set_seed,
)

from benchmarks._common import DATA, RESULTS_DIR, StepTimer, data_missing, write_results
from toolkit import load_preset, read_classification, train_wordpiece_tokenizer
from toolkit.classify import encode_classification
from toolkit.finetune import DropColumns

SST2 = DATA / "sst2" / "train.jsonl"
RESULTS = RESULTS_DIR / "finetune_throughput.json"


def run(
    name: str,
    data,
    tokenizer,
    model_dir: str,
    *,
    batch: int,
    max_length: int,
    steps: int,
    warmup: int,
    workdir: str,
):
    set_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2)
    dynamic = name == "dynamic_grouped"
    collator = DataCollatorWithPadding(
        tokenizer, padding="longest" if dynamic else "max_length", max_length=None if dynamic else max_length
    )
    timer = StepTimer()
    args = TrainingArguments(
        output_dir=os.path.join(workdir, name),
        max_steps=warmup + steps,
        per_device_train_batch_size=batch,
        learning_rate=1e-4,
        save_strategy="no",
        report_to="none",
        logging_strategy="no",
        disable_tqdm=True,
        use_cpu=True,
        remove_unused_columns=False,
        dataloader_pin_memory=False,
        seed=0,
        train_sampling_strategy="group_by_length" if dynamic else "random",
    )
    Trainer(
        model=model,
        args=args,
        train_dataset=data,
        data_collator=DropColumns(collator, ["length"]),
        callbacks=[timer],
    ).train()
    # Mean, not median: length-grouped batches vary in length, and every batch of the epoch must be paid for.
    return statistics.fmean(timer.times[warmup:])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--max_length", type=int, default=128)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", default=str(RESULTS))
    opts = parser.parse_args(argv)
    if data_missing([SST2]):
        return {}
    examples = read_classification(SST2)[: opts.n]
    with tempfile.TemporaryDirectory() as workdir:
        tokenizer = train_wordpiece_tokenizer(
            [e.text for e in examples], vocab_size=8000, show_progress=False, model_max_length=opts.max_length
        )
        feats, truncated = encode_classification(
            examples, tokenizer, label2id={"0": 0, "1": 1}, multi_label=False, max_length=opts.max_length
        )
        data = datasets.Dataset.from_list(feats)
        lengths = [f["length"] for f in feats]
        model_dir = os.path.join(workdir, "model")
        torch.manual_seed(0)
        AutoModelForSequenceClassification.from_config(
            load_preset("mini", vocab_size=len(tokenizer))
        ).save_pretrained(model_dir)
        times: dict[str, list[float]] = {"dynamic_grouped": [], "pad_to_max_length": []}
        for r in range(opts.rounds):
            for name in (
                ("pad_to_max_length", "dynamic_grouped")
                if r % 2 == 0
                else ("dynamic_grouped", "pad_to_max_length")
            ):
                t = run(
                    name,
                    data,
                    tokenizer,
                    model_dir,
                    batch=opts.batch,
                    max_length=opts.max_length,
                    steps=opts.steps,
                    warmup=opts.warmup,
                    workdir=workdir,
                )
                times[name].append(t)
                print(f"round {r + 1} {name:18s}: {opts.batch / t:,.0f} examples/s")
    rates = {k: opts.batch / statistics.median(v) for k, v in times.items()}
    result = {
        "data": f"SST-2 train (first {len(examples)} sentences)",
        "mean_tokens": sum(lengths) / len(lengths),
        "max_tokens": max(lengths),
        "truncated": truncated,
        "batch": opts.batch,
        "max_length": opts.max_length,
        "preset": "mini",
        "threads": torch.get_num_threads(),
        "examples_per_second": {k: round(v, 1) for k, v in rates.items()},
        "ratio_dynamic_over_padded": round(rates["dynamic_grouped"] / rates["pad_to_max_length"], 3),
        "target_ratio": 1.5,
    }
    print(
        f"dynamic padding + length grouping: {rates['dynamic_grouped']:,.0f} examples/s; pad to {opts.max_length}: "
        f"{rates['pad_to_max_length']:,.0f} examples/s; ratio {result['ratio_dynamic_over_padded']:.2f}x (target >= 1.5)"
    )
    write_results(result, opts.output)
    return result


if __name__ == "__main__":
    main()
