#!/usr/bin/env python
"""What does a checkpoint's encoder know about a classification task before fine-tuning? A linear probe.

Each sentence becomes one vector (mean of the last layer's hidden states, or of ``--layers``;
:func:`toolkit.encode_sentences`); a logistic regression is fitted on the training vectors and scored on the
evaluation split. The encoder is never updated, so the score measures the features pretraining left, not what
fine-tuning can build. Needs scikit-learn (the ``bench`` or ``test`` extra). Give several ``--model``
directories to compare them on the same data (e.g. a pretrained model and its random-init twin): the
accuracies are printed and written to JSON.

    python -m benchmarks.linear_probe --model outputs/results_en_tiny_v2/pretrain_tiny_en \\
        outputs/results_en_tiny_v2/random_tiny_en --train_file ../shared/data/sst2/train.jsonl \\
        --eval_file ../shared/data/sst2/dev.jsonl --output outputs/sweep/linear_probe_sst2.json

Mean pooling by default, not ``[CLS]``: a model pretrained with masked-LM alone never trains its ``[CLS]``
position to summarise the input. ``--pooling cls`` probes that position anyway, because it is the one a
sequence classifier reads (see ``--uniform_top_attention`` in the classification recipe).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks._common import write_results
from toolkit import encode_sentences, load_encoder, read_classification


def probe(
    model_dir: str,
    train: tuple[list[str], list[str]],
    evaluation: tuple[list[str], list[str]],
    *,
    layers: tuple[int, ...] = (-1,),
    pooling: str = "mean",
    max_iter: int = 2000,
    seed: int = 0,
) -> dict:
    """Fit a logistic regression on the model's sentence vectors (hidden states of ``layers``, averaged; 0 is
    the embedding layer's output; pooled by ``pooling``); accuracy on both splits."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    begin = time.time()
    encoder = load_encoder(model_dir)
    x_train = encode_sentences(encoder, train[0], pooling=pooling, layers=layers, batch_size=128)
    x_eval = encode_sentences(encoder, evaluation[0], pooling=pooling, layers=layers, batch_size=128)
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter, random_state=seed))
    classifier.fit(x_train, train[1])
    return {
        "model": model_dir,
        "dim": int(x_train.shape[1]),
        "train_accuracy": round(float(classifier.score(x_train, train[1])), 4),
        "eval_accuracy": round(float(classifier.score(x_eval, evaluation[1])), 4),
        "seconds": round(time.time() - begin, 1),
    }


def _load(path: str, text_column: str, label_column: str, limit: int | None) -> tuple[list[str], list[str]]:
    examples = read_classification(path, text_column=text_column, label_column=label_column)[:limit]
    return [e.text for e in examples], [e.labels[0] for e in examples]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", nargs="+", required=True, help="checkpoint directories to compare")
    parser.add_argument("--train_file", required=True, help="labelled CSV/TSV/JSONL the probe is fitted on")
    parser.add_argument("--eval_file", required=True, help="labelled CSV/TSV/JSONL it is scored on")
    parser.add_argument("--text_column", default="text")
    parser.add_argument("--label_column", default="label")
    parser.add_argument("--max_train_samples", type=int, default=None, help="use the first N training rows")
    parser.add_argument(
        "--layers", type=int, nargs="+", default=[-1], help="hidden-state layers averaged (0 = embeddings)"
    )
    parser.add_argument(
        "--pooling",
        choices=["mean", "cls"],
        default="mean",
        help="sentence vector: mean over the tokens, or the [CLS] position (what a sequence classifier reads)",
    )
    parser.add_argument("--output", required=True, help="JSON file for the figures")
    opts = parser.parse_args(argv)
    train = _load(opts.train_file, opts.text_column, opts.label_column, opts.max_train_samples)
    evaluation = _load(opts.eval_file, opts.text_column, opts.label_column, None)
    majority = max(set(evaluation[1]), key=evaluation[1].count)
    result = {
        "train_file": opts.train_file,
        "eval_file": opts.eval_file,
        "n_train": len(train[0]),
        "n_eval": len(evaluation[0]),
        "majority_accuracy": round(float(np.mean([y == majority for y in evaluation[1]])), 4),
        "pooling": opts.pooling,
        "layers": opts.layers,
        "probes": [
            probe(model, train, evaluation, layers=tuple(opts.layers), pooling=opts.pooling)
            for model in opts.model
        ],
    }
    print(
        f"linear probe, {result['n_train']:,} training / {result['n_eval']:,} evaluation sentences "
        f"(majority class {result['majority_accuracy']:.2%}):"
    )
    for p in result["probes"]:
        print(f"  {p['model']}: {p['eval_accuracy']:.2%} (train {p['train_accuracy']:.2%}, {p['seconds']} s)")
    write_results(result, opts.output)
    return result


if __name__ == "__main__":
    main()
