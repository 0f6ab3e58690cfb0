#!/usr/bin/env python
"""Export a model to ONNX for fast CPU inference, optionally int8-quantized, behind an accuracy gate.

    python recipes/export.py outputs/classify/sst2 --output outputs/export/sst2_int8 --quantize int8 \\
        --eval_file data/sst2/dev.jsonl
    python recipes/export.py all-MiniLM-L6-v2/ --output minilm_int8 --quantize int8
    python recipes/export.py outputs/ner/msra --output outputs/export/msra --eval_file msra/test.txt

MODEL_DIR is a classifier (recipes/train_classifier.py), a token classifier (recipes/train_ner.py), a
masked-LM (its encoder is exported) or a sentence-transformers directory. The export has dynamic batch and
sequence axes and keeps the config and tokenizer; encode_sentences, TextClassifier and NERTagger load it as
they load the source.

The gate scores the export against the source on a held sample (the first --sample items of --eval_file,
else project-written probe texts): the mean cosine of sentence vectors for an encoder, accuracy and macro-F1
for a classifier, entity F1 for a tagger (the file's labels when it has them, else agreement with the source's
predictions). The figures go to OUT/metrics.json and OUT/README.md. A drop above --max_drop points (default
1.0 for an encoder: mean cosine >= 0.99; 0.5 for a classifier or tagger) is refused: the export is moved to
OUT.rejected and the exit status is 2, unless --force.

Needs the optional extra: pip install 'toolkit[onnx]'. Exit status: 0 exported, 2 bad input or refused.
"""

from __future__ import annotations

import argparse
import sys


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    p.add_argument("model_dir", help="the model directory to export")
    p.add_argument(
        "--output", required=True, help="the export directory (an earlier export there is replaced)"
    )
    p.add_argument("--quantize", choices=["int8"], help="dynamic int8 quantization (default: fp32)")
    p.add_argument(
        "--max_drop",
        type=float,
        help="largest allowed drop of the gate's metric, in points (default: 1.0 encoder, 0.5 classifier/tagger)",
    )
    p.add_argument("--force", action="store_true", help="keep an export that fails the gate")
    p.add_argument(
        "--eval_file",
        help="held-out file for the gate: texts (.txt/.jsonl) for an encoder, a classification file "
        "(csv/tsv/jsonl) for a classifier, CoNLL or NER JSON Lines for a tagger",
    )
    p.add_argument("--sample", type=int, default=500, help="items of the file (or probe texts) scored (500)")
    p.add_argument("--threads", type=int, help="CPU threads for the gate's runs (default: all available)")
    p.add_argument("--text_column", default="text", help="text column of --eval_file (text)")
    p.add_argument("--text_pair_column", help="second text column of a sentence-pair --eval_file")
    p.add_argument("--label_column", default="label", help="label column of a classification --eval_file")
    return p


if __name__ == "__main__" and {"-h", "--help"} & set(sys.argv[1:]):  # before the heavy imports below
    make_parser().parse_args()

from toolkit import export_model
from toolkit.training import run_cli, setup_cli_logging


def main(argv: list[str] | None = None) -> dict:
    args = make_parser().parse_args(argv)
    setup_cli_logging()
    result = export_model(
        args.model_dir,
        args.output,
        quantize=args.quantize,
        max_drop=args.max_drop,
        force=args.force,
        eval_file=args.eval_file,
        sample=args.sample,
        threads=args.threads,
        text_column=args.text_column,
        text_pair_column=args.text_pair_column,
        label_column=args.label_column,
    )
    gate = result.gate
    verdict = "passed" if result.passed else "FAILED (kept with --force)"
    print(
        f"exported {result.kind} ({result.precision}) to {result.output_dir}: {gate['metric']} source "
        f"{gate['source']:.4f}, export {gate['export']:.4f}, drop {gate['drop']:.4f} points "
        f"(max {gate['max_drop']}): gate {verdict}"
    )
    return result.metrics


if __name__ == "__main__":
    run_cli(main)
