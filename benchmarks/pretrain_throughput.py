#!/usr/bin/env python
"""Pretraining throughput: this toolkit's path vs the stock Hugging Face path, side by side.

    python -m benchmarks.pretrain_throughput                 # throughput ratio (a few minutes)
    python -m benchmarks.pretrain_throughput --streaming_rss # + peak RSS streaming a >= 1 GB text file

(a) toolkit: SparseHeadBertForMaskedLM (MLM head and loss only at masked positions) + MLMCollator + Trainer
(b) stock, as run_mlm.py does it: BertForMaskedLM (dense head) + DataCollatorForLanguageModeling + Trainer

Same text, tokenizer (>= 20k entries), packed blocks, preset (mini), sequence length 128, batch 32, fp32,
SDPA attention in both. Each path runs in alternating rounds; per round the first steps are warm-up and
the median step time of the rest is kept; the reported figure is the median over rounds. Model FLOP
utilisation is against a measured fp32 matmul peak. Figures go to benchmarks/results/pretrain_throughput.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import datasets
import psutil
import torch
from transformers import (
    BertForMaskedLM,
    DataCollatorForLanguageModeling,
    Trainer,
    TrainingArguments,
    set_seed,
)

from benchmarks._common import DATA, RECIPES, RESULTS_DIR, StepTimer, data_missing, write_results
from toolkit import (
    MLMCollator,
    count_size,
    load_preset,
    load_tokenizer,
    prepare_mlm_dataset,
    train_wordpiece_tokenizer,
)
from toolkit.pretrain import SparseHeadBertForMaskedLM  # the path under test

CORPUS = [DATA / "reuters21578_raw" / "train.txt", *sorted((DATA / "gutenberg_nltk").glob("*.txt"))]
RESULTS = RESULTS_DIR / "pretrain_throughput.json"


def matmul_peak_flops(n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def run_path(
    name: str, blocks, tokenizer, config, *, batch: int, steps: int, warmup: int, workdir: str
) -> float:
    """Median seconds per optimizer step of one path (after warm-up)."""
    set_seed(0)
    if name == "toolkit":
        model = SparseHeadBertForMaskedLM._from_config(config, attn_implementation="sdpa")
        collator = MLMCollator(tokenizer, mlm_probability=0.15, seed=0)
    else:
        model = BertForMaskedLM._from_config(config, attn_implementation="sdpa")
        collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)
    timer = StepTimer()
    args = TrainingArguments(
        output_dir=os.path.join(workdir, name),
        max_steps=warmup + steps,
        per_device_train_batch_size=batch,
        learning_rate=5e-4,
        save_strategy="no",
        report_to="none",
        logging_strategy="no",
        disable_tqdm=True,
        use_cpu=True,
        remove_unused_columns=False,
        dataloader_pin_memory=False,
        seed=0,
    )
    Trainer(model=model, args=args, train_dataset=blocks, data_collator=collator, callbacks=[timer]).train()
    return statistics.median(timer.times[warmup:])


def peak_rss_streaming(tokenizer_dir: str, workdir: str, *, size_gb: float, steps: int) -> dict:
    """Repeat the corpus into a >= size_gb file and pretrain from it in streaming mode; sample the RSS of
    the whole process tree every 0.2 s."""
    big = Path(workdir) / "big.txt"
    text = "".join(p.read_text(encoding="utf-8") for p in CORPUS[:1])
    with open(big, "w", encoding="utf-8") as fh:
        while fh.tell() < size_gb * 1e9:
            fh.write(text)
    size = big.stat().st_size
    cmd = [
        sys.executable,
        str(RECIPES / "pretrain.py"),
        "--train_files",
        str(big),
        "--streaming",
        "true",
        "--tokenizer_name_or_path",
        tokenizer_dir,
        "--preset",
        "mini",
        "--block_size",
        "128",
        "--per_device_train_batch_size",
        "32",
        "--max_steps",
        str(steps),
        "--output_dir",
        str(Path(workdir) / "rss"),
        "--save_strategy",
        "no",
        "--report_to",
        "none",
        "--disable_tqdm",
        "true",
        "--logging_steps",
        "50",
    ]
    start = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = 0
    done = threading.Event()

    def sample():
        nonlocal peak
        root = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                rss = root.memory_info().rss + sum(c.memory_info().rss for c in root.children(recursive=True))
                peak = max(peak, rss)
            except psutil.Error:
                pass
            time.sleep(0.2)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    _, err = proc.communicate()
    done.set()
    thread.join()
    big.unlink()
    if proc.returncode:
        raise RuntimeError(f"streaming run failed:\n{err[-3000:]}")
    return {
        "file_bytes": size,
        "steps": steps,
        "peak_rss_bytes": peak,
        "peak_rss_gb": round(peak / 1e9, 3),
        "wall_seconds": round(time.time() - start, 1),
        "target_gb": 3.0,
        "meets_target": peak < 3e9,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="mini")
    parser.add_argument("--vocab_size", type=int, default=30000)
    parser.add_argument("--seq_len", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=15, help="timed steps per round")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--streaming_rss", action="store_true", help="also measure peak RSS streaming >= 1 GB"
    )
    parser.add_argument("--rss_gb", type=float, default=1.05)
    parser.add_argument("--rss_steps", type=int, default=300)
    parser.add_argument("--output", default=str(RESULTS))
    opts = parser.parse_args(argv)
    if data_missing(CORPUS):
        return {}
    torch.manual_seed(0)
    texts = [line for p in CORPUS for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    with tempfile.TemporaryDirectory() as workdir:
        tokenizer = train_wordpiece_tokenizer(
            texts, vocab_size=opts.vocab_size, show_progress=False, model_max_length=opts.seq_len
        )
        tokenizer.save_pretrained(os.path.join(workdir, "tok"))
        tokenizer = load_tokenizer(os.path.join(workdir, "tok"))
        print(f"tokenizer vocabulary: {len(tokenizer):,} entries")
        if len(tokenizer) < 20000:
            raise SystemExit("the benchmark needs a vocabulary of at least 20,000 entries")
        n_blocks = opts.batch * (opts.steps + opts.warmup) * 2
        ds = datasets.Dataset.from_dict({"text": texts[:20000]})
        blocks = prepare_mlm_dataset(ds, tokenizer, block_size=opts.seq_len)
        blocks = blocks.select(range(min(n_blocks, len(blocks))))
        config = load_preset(opts.preset, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id)
        size = count_size(config, seq_len=opts.seq_len)
        times: dict[str, list[float]] = {"toolkit": [], "stock": []}
        for r in range(opts.rounds):
            for name in ("stock", "toolkit") if r % 2 == 0 else ("toolkit", "stock"):
                t = run_path(
                    name,
                    blocks,
                    tokenizer,
                    config,
                    batch=opts.batch,
                    steps=opts.steps,
                    warmup=opts.warmup,
                    workdir=workdir,
                )
                times[name].append(t)
                print(f"round {r + 1} {name:8s}: {t * 1000:.0f} ms/step")
        peak = matmul_peak_flops()
        tokens_per_step = opts.batch * opts.seq_len
        result = {
            "preset": opts.preset,
            "vocab_size": len(tokenizer),
            "seq_len": opts.seq_len,
            "batch": opts.batch,
            "threads": torch.get_num_threads(),
            "cpu": platform.processor() or platform.machine(),
            "torch": torch.__version__,
            "matmul_peak_gflops": round(peak / 1e9, 1),
            "paths": {},
        }
        flops = {"toolkit": size.train_flops_per_token_sparse_head, "stock": size.train_flops_per_token}
        for name, ts in times.items():
            step = statistics.median(ts)
            tps = tokens_per_step / step
            result["paths"][name] = {
                "seconds_per_step": round(step, 4),
                "tokens_per_second": round(tps, 1),
                "train_flops_per_token": flops[name],
                "mfu_executed_flops": round(tps * flops[name] / peak, 4),
                "mfu_dense_model_flops": round(tps * size.train_flops_per_token / peak, 4),
            }
        result["ratio_toolkit_over_stock"] = round(
            result["paths"]["toolkit"]["tokens_per_second"] / result["paths"]["stock"]["tokens_per_second"], 3
        )
        result["target_ratio"] = 2.0
        if opts.streaming_rss:
            result["streaming_rss"] = peak_rss_streaming(
                os.path.join(workdir, "tok"), workdir, size_gb=opts.rss_gb, steps=opts.rss_steps
            )
    for name, p in result["paths"].items():
        print(
            f"{name:8s}: {p['tokens_per_second']:>9,.0f} tokens/s  MFU {p['mfu_executed_flops']:.1%} "
            f"(executed FLOPs), {p['mfu_dense_model_flops']:.1%} (dense-model FLOPs)"
        )
    print(
        f"ratio toolkit/stock: {result['ratio_toolkit_over_stock']:.2f}x (target >= 2.0); "
        f"matmul peak {result['matmul_peak_gflops']} GFLOP/s on {result['threads']} threads"
    )
    if "streaming_rss" in result:
        r = result["streaming_rss"]
        print(
            f"streaming {r['file_bytes'] / 1e9:.2f} GB for {r['steps']} steps: peak RSS {r['peak_rss_gb']} GB "
            f"(target < 3 GB)"
        )
    write_results(result, opts.output)
    return result


if __name__ == "__main__":
    main()
