"""Torch CPU threads against training speed, alone and beside a busy neighbour process.

Trains the `tiny` preset (sparse MLM head, blocks of 128, batch 16, random tokens) for a fixed number of
steps in a fresh process per setting, with ``torch.set_num_threads(t)``; "busy" runs one CPU-bound process
beside it (another job on a small machine). Each setting is repeated; the median tokens/s is reported.

    python -m benchmarks.threads                 # ~3 min on 2 cores; figures printed and written to JSON
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from benchmarks._common import RESULTS_DIR

WORKER = """
import sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
from toolkit import build_mlm_model, load_preset
torch.manual_seed(0)
model = build_mlm_model(config=load_preset("tiny", vocab_size=8000))
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
ids = torch.randint(5, 8000, (16, 128))
labels = torch.where(torch.rand(16, 128) < 0.15, ids, torch.full_like(ids, -100))
for step in range(int(sys.argv[2]) + 3):
    if step == 3:
        start = time.perf_counter()  # three warm-up steps
    loss = model(input_ids=ids, labels=labels).loss
    loss.backward(); opt.step(); opt.zero_grad()
print(16 * 128 * int(sys.argv[2]) / (time.perf_counter() - start))
"""
BURN = "import time\nend = time.time() + 600\nwhile time.time() < end:\n    pass\n"


def tokens_per_second(threads: int, steps: int, busy: bool) -> float:
    neighbour = subprocess.Popen([sys.executable, "-c", BURN]) if busy else None
    try:
        out = subprocess.run(
            [sys.executable, "-c", WORKER, str(threads), str(steps)],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        if neighbour:
            neighbour.kill()
            neighbour.wait()
    return float(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default=str(RESULTS_DIR / "threads.json"))
    opts = parser.parse_args(argv)
    rows = []
    for busy in (False, True):
        for threads in opts.threads:  # interleaved repeats: a slow spell on the machine hits every setting
            rates = [tokens_per_second(threads, opts.steps, busy) for _ in range(opts.repeats)]
            rows.append(
                {
                    "threads": threads,
                    "busy_neighbour": busy,
                    "tokens_per_second": statistics.median(rates),
                    "runs": rates,
                }
            )
            print(
                f"threads {threads}, {'beside a busy process' if busy else 'alone'}: {statistics.median(rates):,.0f} tokens/s"
            )
    result = {
        "cpus_available": len(os.sched_getaffinity(0)),
        "steps": opts.steps,
        "repeats": opts.repeats,
        "date": time.strftime("%Y-%m-%d"),
        "rows": rows,
    }
    with open(opts.output, "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=1)
        fh.write("\n")
    return result


if __name__ == "__main__":
    main()
