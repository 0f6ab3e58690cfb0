#!/usr/bin/env python
"""Pretraining throughput: this toolkit's path vs the stock Hugging Face path, side by side.

    python -m benchmarks.pretrain_throughput                 # throughput ratio (about 8 minutes)
    python -m benchmarks.pretrain_throughput --profile       # + top operators of the toolkit path, before/after
    python -m benchmarks.pretrain_throughput --extra_paths compile no_dropout   # options measured, not defaults
    python -m benchmarks.pretrain_throughput --streaming_rss # + peak RSS streaming a 1 GB and a 3 GB text file

Paths (each step of the ladder measured side by side):
  stock        run_mlm.py's way: BertForMaskedLM (dense head) + DataCollatorForLanguageModeling + Trainer
  sparse_head  + SparseHeadBertForMaskedLM (MLM head and loss only at masked positions) + MLMCollator
  toolkit      the pretraining recipe's path: + freed CPU memory kept for reuse (reuse_freed_memory) and
               the recipe's trainer (pretraining_trainer)
Optional (--extra_paths): compile (toolkit + torch.compile of the model), no_dropout (toolkit and stock with
the dropout a fresh model pretrains with in the recipe: none).

Same text, tokenizer (>= 20k entries), packed blocks, preset (mini, its dropout 0.1 unless no_dropout),
sequence length 128, batch 32, fp32, SDPA attention. Every (path, round) runs in a fresh process, so a
process-wide setting (threads, the allocator) reaches only the path that makes it; rounds alternate the
order. Per run the first steps are warm-up and the median step time of the rest is kept; the reported
figure is the median over rounds. Model FLOP utilisation is against a measured fp32 matmul peak. Figures go
to benchmarks/results/pretrain_throughput.json.
"""

from __future__ import annotations

import argparse
import json
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
    BertConfig,
    BertForMaskedLM,
    DataCollatorForLanguageModeling,
    Trainer,
    TrainerCallback,
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
from toolkit.pretrain import PretrainingData, build_mlm_model, pretraining_trainer
from toolkit.training import prepare_training_args, reuse_freed_memory

CORPUS = [DATA / "reuters21578_raw" / "train.txt", *sorted((DATA / "gutenberg_nltk").glob("*.txt"))]
RESULTS = RESULTS_DIR / "pretrain_throughput.json"
PATHS = ("stock", "sparse_head", "toolkit")
EXTRA_PATHS = {"compile": ("toolkit_compile",), "no_dropout": ("stock_no_dropout", "toolkit_no_dropout")}
TARGET_RATIO = 3.0
RSS_TARGET_GB = 2.0


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


class _Profile(TrainerCallback):
    """torch.profiler over optimizer steps [start, start + n): self CPU time per operator."""

    def __init__(self, start: int, n: int):
        self.start, self.n, self.prof = start, n, None

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step == self.start:
            self.prof = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
            self.prof.start()

    def on_step_end(self, args, state, control, **kwargs):
        if self.prof is not None and state.global_step == self.start + self.n:
            self.prof.stop()

    def top(self, k: int = 12) -> list[dict]:
        events = sorted(self.prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
        total = sum(e.self_cpu_time_total for e in events)
        return [
            {
                "op": e.key,
                "ms_per_step": round(e.self_cpu_time_total / 1000 / self.n, 1),
                "share": round(e.self_cpu_time_total / total, 4),
            }
            for e in events[:k]
        ]


def run_path(name: str, workdir: str, *, batch: int, steps: int, warmup: int, profile: int = 0) -> dict:
    """One path in this process: median seconds per optimizer step after warm-up (or, with ``profile``, the
    top operators over that many steps after warm-up)."""
    toolkit = name.startswith("toolkit")
    if toolkit:
        reuse_freed_memory()  # what the recipe does first; process-wide, so before anything is allocated
    tokenizer = load_tokenizer(os.path.join(workdir, "tok"))
    blocks = datasets.load_from_disk(os.path.join(workdir, "blocks"))
    config = BertConfig.from_pretrained(os.path.join(workdir, "config"))
    if name.endswith("no_dropout"):
        config.hidden_dropout_prob = config.attention_probs_dropout_prob = 0.0
    set_seed(0)
    args = TrainingArguments(
        output_dir=os.path.join(workdir, name),
        max_steps=warmup + (profile or steps),
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
        torch_compile=name.endswith("compile"),
    )
    if name == "stock":
        model = BertForMaskedLM._from_config(config, attn_implementation="sdpa")
        collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)
    else:
        model = build_mlm_model(config=config, sparse_head=True)
        collator = MLMCollator(tokenizer, mlm_probability=0.15, seed=0)
    if toolkit:
        data = PretrainingData(blocks, None, collator, {})
        trainer = pretraining_trainer(model, tokenizer, data, prepare_training_args(args))
    else:
        trainer = Trainer(model=model, args=args, train_dataset=blocks, data_collator=collator)
    probe = _Profile(warmup, profile) if profile else StepTimer()
    trainer.add_callback(probe)
    trainer.train()
    if profile:
        return {"top_ops": probe.top()}
    return {"seconds_per_step": statistics.median(probe.times[warmup:])}


def _child(name: str, workdir: str, opts, *, profile: int = 0) -> dict:
    """Run one path in a fresh process and return what it printed last (JSON)."""
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.pretrain_throughput",
        "--_child",
        name,
        "--_workdir",
        workdir,
        "--batch",
        str(opts.batch),
        "--steps",
        str(opts.steps),
        "--warmup",
        str(opts.warmup),
        "--_profile",
        str(profile),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    if done.returncode:
        raise RuntimeError(f"path {name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


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
        str(Path(workdir) / f"rss_{size_gb}"),
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
        "target_gb": RSS_TARGET_GB,
        "meets_target": peak <= RSS_TARGET_GB * 1e9,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="mini")
    parser.add_argument("--vocab_size", type=int, default=30000)
    parser.add_argument("--seq_len", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=15, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--extra_paths", nargs="*", default=[], choices=sorted(EXTRA_PATHS))
    parser.add_argument("--profile", action="store_true", help="top operators of sparse_head and toolkit")
    parser.add_argument(
        "--streaming_rss", action="store_true", help="also measure peak RSS streaming large files"
    )
    parser.add_argument("--rss_gb", type=float, nargs="+", default=[1.05, 3.1])
    parser.add_argument("--rss_steps", type=int, default=300)
    parser.add_argument("--output", default=str(RESULTS))
    parser.add_argument("--_child", help=argparse.SUPPRESS)
    parser.add_argument("--_workdir", help=argparse.SUPPRESS)
    parser.add_argument("--_profile", type=int, default=0, help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    if opts._child:  # one path in this fresh process; its figures as the last line
        figures = run_path(
            opts._child,
            opts._workdir,
            batch=opts.batch,
            steps=opts.steps,
            warmup=opts.warmup,
            profile=opts._profile,
        )
        print(json.dumps(figures))
        return figures
    if data_missing(CORPUS):
        return {}
    paths = [*PATHS, *(p for extra in opts.extra_paths for p in EXTRA_PATHS[extra])]
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
        blocks.select(range(min(n_blocks, len(blocks)))).save_to_disk(os.path.join(workdir, "blocks"))
        config = load_preset(opts.preset, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id)
        config.save_pretrained(os.path.join(workdir, "config"))
        size = count_size(config, seq_len=opts.seq_len)
        times: dict[str, list[float]] = {name: [] for name in paths}
        for r in range(opts.rounds):
            for name in paths if r % 2 == 0 else paths[::-1]:
                t = _child(name, workdir, opts)["seconds_per_step"]
                times[name].append(t)
                print(f"round {r + 1} {name:18s}: {t * 1000:.0f} ms/step", flush=True)
        profiles = {}
        if opts.profile:
            for name in ("sparse_head", "toolkit"):
                profiles[name] = _child(name, workdir, opts, profile=3)["top_ops"]
        peak = matmul_peak_flops()
        tokens_per_step = opts.batch * opts.seq_len
        result = {
            "preset": opts.preset,
            "vocab_size": len(tokenizer),
            "seq_len": opts.seq_len,
            "batch": opts.batch,
            "rounds": opts.rounds,
            "threads": torch.get_num_threads(),
            "cpu": _cpu_name(),
            "torch": torch.__version__,
            "matmul_peak_gflops": round(peak / 1e9, 1),
            "paths": {},
        }
        for name, ts in times.items():
            step = statistics.median(ts)
            tps = tokens_per_step / step
            executed = (
                size.train_flops_per_token
                if name.startswith("stock")
                else size.train_flops_per_token_sparse_head
            )
            result["paths"][name] = {
                "seconds_per_step": round(step, 4),
                "seconds_per_step_rounds": [round(t, 4) for t in ts],
                "tokens_per_second": round(tps, 1),
                "train_flops_per_token": executed,
                "mfu_executed_flops": round(tps * executed / peak, 4),
                "mfu_dense_model_flops": round(tps * size.train_flops_per_token / peak, 4),
            }
        speed = {name: p["tokens_per_second"] for name, p in result["paths"].items()}
        result["ratio_toolkit_over_stock"] = round(speed["toolkit"] / speed["stock"], 3)
        result["ratio_sparse_head_over_stock"] = round(speed["sparse_head"] / speed["stock"], 3)
        result["ratio_toolkit_over_sparse_head"] = round(speed["toolkit"] / speed["sparse_head"], 3)
        if "toolkit_compile" in speed:
            result["ratio_compile_over_toolkit"] = round(speed["toolkit_compile"] / speed["toolkit"], 3)
        if "toolkit_no_dropout" in speed:
            result["ratio_toolkit_over_stock_no_dropout"] = round(
                speed["toolkit_no_dropout"] / speed["stock_no_dropout"], 3
            )
        result["target_ratio"] = TARGET_RATIO
        if profiles:
            result["profile_top_ops"] = profiles
        if opts.streaming_rss:
            result["streaming_rss"] = [
                peak_rss_streaming(os.path.join(workdir, "tok"), workdir, size_gb=gb, steps=opts.rss_steps)
                for gb in opts.rss_gb
            ]
    for name, p in result["paths"].items():
        print(
            f"{name:18s}: {p['tokens_per_second']:>9,.0f} tokens/s  MFU {p['mfu_executed_flops']:.1%} "
            f"(executed FLOPs), {p['mfu_dense_model_flops']:.1%} (dense-model FLOPs)"
        )
    print(
        f"ratio toolkit/stock: {result['ratio_toolkit_over_stock']:.2f}x (target >= {TARGET_RATIO}); "
        f"sparse head alone {result['ratio_sparse_head_over_stock']:.2f}x; "
        f"matmul peak {result['matmul_peak_gflops']} GFLOP/s on {result['threads']} threads"
    )
    for r in result.get("streaming_rss", []):
        print(
            f"streaming {r['file_bytes'] / 1e9:.2f} GB for {r['steps']} steps: peak RSS {r['peak_rss_gb']} GB "
            f"(target <= {RSS_TARGET_GB} GB)"
        )
    write_results(result, opts.output)
    return result


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    main()
