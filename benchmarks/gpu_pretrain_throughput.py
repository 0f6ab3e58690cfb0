#!/usr/bin/env python
"""Pretraining throughput of the ``base`` preset on a GPU: bf16, SDPA, sparse MLM head vs the stock dense head.

    python -m benchmarks.gpu_pretrain_throughput                 # on a CUDA machine
    python -m benchmarks.gpu_pretrain_throughput --smoke         # a few tiny steps on CPU (script check)

Through ``transformers.Trainer`` as the recipe trains (``bf16=True``, AdamW), random token blocks (speed does
not depend on the text), the toolkit's MLMCollator for the sparse path and DataCollatorForLanguageModeling for
the stock path. Reports tokens/s (median step time after warm-up), model FLOP utilisation against a
measured bf16 matmul peak and against the card's dense bf16 spec, and the GPU name. Writes
benchmarks/results/gpu_pretrain_throughput.json.

Imports the toolkit's modules without its package ``__init__`` so that the GPU image needs no ``datasets``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import types
from pathlib import Path

import torch

from benchmarks._common import RESULTS_DIR, ROOT, StepTimer

# The toolkit's package __init__ imports datasets, which the GPU image lacks: its modules are read directly.
_pkg = types.ModuleType("toolkit")
_pkg.__path__ = [str(ROOT / "toolkit")]
sys.modules.setdefault("toolkit", _pkg)

from transformers import (  # noqa: E402
    BertForMaskedLM,
    DataCollatorForLanguageModeling,
    PreTrainedTokenizerFast,
    Trainer,
    TrainingArguments,
)

from toolkit._masking import MLMCollator  # noqa: E402
from toolkit._model import SparseHeadBertForMaskedLM  # noqa: E402
from toolkit._presets import count_size, load_preset  # noqa: E402
from toolkit._tokenizer import SPECIAL_TOKENS, build_wordpiece_tokenizer  # noqa: E402

SPEC_BF16_DENSE = {"H100": 989e12, "H200": 989e12, "A100": 312e12}  # vendor dense bf16 tensor-core peaks


class RandomBlocks(torch.utils.data.Dataset):
    def __init__(self, n: int, seq_len: int, vocab: int, cls_id: int, sep_id: int, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.data = torch.randint(len(SPECIAL_TOKENS), vocab, (n, seq_len), generator=g)
        self.data[:, 0] = cls_id
        self.data[:, -1] = sep_id

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        return {"input_ids": self.data[i].tolist()}


def matmul_peak(dtype=torch.bfloat16, n: int = 8192) -> float:
    if not torch.cuda.is_available():
        return float("nan")
    a = torch.randn(n, n, device="cuda", dtype=dtype)
    b = torch.randn(n, n, device="cuda", dtype=dtype)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(10):
        a @ b
    torch.cuda.synchronize()
    return 10 * 2 * n**3 / (time.perf_counter() - start)


def run(
    path: str, *, preset: str, vocab: int, seq_len: int, batch: int, steps: int, warmup: int, smoke: bool
) -> float:
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=build_wordpiece_tokenizer(
            [*SPECIAL_TOKENS, *(f"t{i}" for i in range(vocab - len(SPECIAL_TOKENS)))]
        ).backend_tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    config = load_preset(
        preset,
        vocab_size=vocab,
        pad_token_id=tokenizer.pad_token_id,
        overrides={"max_position_embeddings": max(512, seq_len)},
    )
    cls = SparseHeadBertForMaskedLM if path == "sparse" else BertForMaskedLM
    model = cls._from_config(config, attn_implementation="sdpa")
    collator = (
        MLMCollator(tokenizer, seed=0) if path == "sparse" else DataCollatorForLanguageModeling(tokenizer)
    )
    data = RandomBlocks(
        batch * (steps + warmup), seq_len, vocab, tokenizer.cls_token_id, tokenizer.sep_token_id
    )
    timer = StepTimer()
    args = TrainingArguments(
        output_dir=f"/tmp/gpu_bench_{path}",
        max_steps=steps + warmup,
        per_device_train_batch_size=batch,
        learning_rate=1e-4,
        bf16=not smoke,
        use_cpu=smoke,
        save_strategy="no",
        report_to="none",
        logging_strategy="no",
        disable_tqdm=True,
        remove_unused_columns=False,
        dataloader_num_workers=0 if smoke else 4,
        optim="adamw_torch_fused" if not smoke else "adamw_torch",
        seed=0,
    )
    Trainer(model=model, args=args, train_dataset=data, data_collator=collator, callbacks=[timer]).train()
    return statistics.median(timer.times[warmup:])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="base")
    parser.add_argument("--vocab", type=int, default=30522)
    parser.add_argument("--shapes", default="128x256,512x64", help="seq_len x batch pairs")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=8)
    parser.add_argument("--smoke", action="store_true", help="tiny CPU run to check the script")
    parser.add_argument("--output", default=str(RESULTS_DIR / "gpu_pretrain_throughput.json"))
    opts = parser.parse_args(argv)
    if opts.smoke:
        opts.preset, opts.vocab, opts.shapes, opts.steps, opts.warmup = "tiny", 2000, "32x4", 2, 1
    elif not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run with --smoke to check the script on CPU")
    name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    peak = matmul_peak()
    spec = next((v for k, v in SPEC_BF16_DENSE.items() if k in name), float("nan"))
    result = {
        "device": name,
        "torch": torch.__version__,
        "preset": opts.preset,
        "vocab": opts.vocab,
        "precision": "bf16 autocast" if not opts.smoke else "fp32",
        "attention": "sdpa",
        "matmul_peak_bf16_tflops": round(peak / 1e12, 1),
        "spec_dense_bf16_tflops": spec / 1e12,
        "runs": [],
    }
    for shape in opts.shapes.split(","):
        seq_len, batch = (int(x) for x in shape.split("x"))
        size = count_size(load_preset(opts.preset, vocab_size=opts.vocab), seq_len=seq_len)
        for path in ("stock", "sparse"):
            step = run(
                path,
                preset=opts.preset,
                vocab=opts.vocab,
                seq_len=seq_len,
                batch=batch,
                steps=opts.steps,
                warmup=opts.warmup,
                smoke=opts.smoke,
            )
            tps = batch * seq_len / step
            executed = (
                size.train_flops_per_token_sparse_head if path == "sparse" else size.train_flops_per_token
            )
            row = {
                "path": path,
                "seq_len": seq_len,
                "batch": batch,
                "seconds_per_step": round(step, 5),
                "tokens_per_second": round(tps),
                "mfu_measured_peak": round(tps * executed / peak, 4),
                "mfu_spec_peak": round(tps * executed / spec, 4),
                "mfu_dense_model_flops_spec": round(tps * size.train_flops_per_token / spec, 4),
            }
            result["runs"].append(row)
            print(json.dumps(row), flush=True)
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}))
    Path(opts.output).parent.mkdir(parents=True, exist_ok=True)
    Path(opts.output).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
