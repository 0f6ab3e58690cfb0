#!/usr/bin/env python
"""The main job of ``make demo``: pretrain a tiny bilingual BERT on a corpus the project writes itself.

    python recipes/demo.py --output_dir demo_output

1. write a small English + Chinese sample corpus,
2. train a WordPiece vocabulary and a tiny masked-LM on it (recipes/pretrain.py with the demo config),
3. report validation loss/perplexity and show fill-mask predictions from the saved model.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pretrain  # noqa: E402  (the recipe next to this file)

from toolkit._demo import write_demo_corpus  # noqa: E402

CONFIG = Path(__file__).resolve().parent / "configs" / "pretrain" / "demo.yaml"
FILL_MASK = [
    "paris is the capital of [MASK].",
    "the capital of japan is [MASK].",
    "the dog [MASK] in the garden.",
    "北京是[MASK]国的首都。",
    "小明在学校吃[MASK]果。",
]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", default="demo_output", help="where the corpus and the model go")
    parser.add_argument("--max_steps", type=int, default=None, help="override the demo's training steps")
    opts = parser.parse_args(argv)
    start = time.time()

    # 1. A sample corpus written by the project (no download).
    paths = write_demo_corpus(os.path.join(opts.output_dir, "data"))
    print(f"[1/3] sample corpus: {paths['train']} and {paths['validation']}")

    # 2. Vocabulary + tiny masked-LM.
    model_dir = os.path.join(opts.output_dir, "pretrained")
    flags = ["--config", str(CONFIG), "--train_files", str(paths["train"]), "--validation_files",
             str(paths["validation"]), "--output_dir", model_dir, "--fill_mask_examples", *FILL_MASK]
    if opts.max_steps:
        flags += ["--max_steps", str(opts.max_steps)]
    print("[2/3] pretraining: python recipes/pretrain.py " + " ".join(flags))
    metrics = pretrain.main(flags)

    # 3. Summary.
    summary = {k: metrics[k] for k in ("eval_loss", "eval_perplexity", "train_loss", "train_tokens_seen") if k in metrics}
    print(f"[3/3] done in {time.time() - start:.0f} s; model in {model_dir}")
    print(json.dumps(summary, indent=2))
    return metrics


if __name__ == "__main__":
    main()
