#!/usr/bin/env python
"""Peak memory on long inputs, for a 1x and a 3x input: does it grow with the input?

    python -m benchmarks.memory                      # ~5 min on 2 cores; figures printed and written to JSON
    python -m benchmarks.memory --extract_kb 300 --ner_kb 300 --corpus_mb 30 --one_line_mb 3   # quick

Each case runs in a fresh process, which reports its peak resident set size (``ru_maxrss``) and its RSS once
the model is loaded and the input is ready (the baseline); the difference is what the work itself took.

1. ``extract``: contextual character vectors (``extract_vectors(mode="contextual")``) of a file that is a
   single line of ``--extract_kb`` KB of project-written English and Chinese text.
2. ``ner``: ``NERTagger`` on that kind of text as one sentence of ``--ner_kb`` KB. The entities it returns
   are output that grows with the text (a dict each); the random classifier's ``O`` score is raised so that
   it marks entities at a realistic rate (a few % of words; the count is in the results) rather than at
   random (about 40%).
3. ``pretrain_stream``: the streaming pretraining data pipeline, ``load_corpus(streaming=True)`` +
   ``prepare_mlm_dataset`` (blocks of 128) + iterating ``--blocks`` blocks, on a corpus file of
   ``--corpus_mb`` MB of ordinary lines.
4. ``pretrain_one_line``: the same pipeline on a file that is one line of ``--one_line_mb`` MB (every
   block of it comes out of the first ``.map`` batch).

The models are BERTs with random weights built in code (hidden 128, 2 layers, 512 positions) with a WordPiece
vocabulary trained on the generated sentences; nothing is downloaded. Inputs are written under the system temporary
directory and deleted afterwards. Figures are printed and written to benchmarks/results/memory.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._common import RESULTS_DIR, ROOT, write_results

RESULTS = RESULTS_DIR / "memory.json"
LABELS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
CASES = ("extract", "ner", "pretrain_stream", "pretrain_one_line")


def _rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _sentences(seed: int) -> list[str]:
    from toolkit.demo import chinese_sentences, english_sentences

    return english_sentences(2000, seed=seed) + chinese_sentences(2000, seed=seed + 1)


def write_one_line(path: Path, n_bytes: int, *, seed: int = 0) -> int:
    """A file that is a single line of about ``n_bytes`` bytes (English words spaced, Chinese not)."""
    rng = random.Random(seed)
    pool = _sentences(seed)
    with open(path, "w", encoding="utf-8") as fh:
        size = 0
        while size < n_bytes:
            part = "".join(rng.choice(pool) + " " for _ in range(1000))
            fh.write(part)
            size += len(part.encode("utf-8"))
    return path.stat().st_size


def write_corpus(path: Path, n_bytes: int, *, seed: int = 0) -> int:
    """A corpus of ordinary lines (1 to 6 sentences each), about ``n_bytes`` bytes: a block of 20,000
    generated lines written over and over."""
    rng = random.Random(seed)
    pool = _sentences(seed)
    lines = [" ".join(rng.choice(pool) for _ in range(rng.randint(1, 6))) for _ in range(20_000)]
    chunk = ("\n".join(lines) + "\n").encode("utf-8")
    with open(path, "wb") as fh:
        while n_bytes - fh.tell() > len(chunk):
            fh.write(chunk)
        fh.write(chunk[: chunk.rfind(b"\n", 0, n_bytes - fh.tell()) + 1])  # whole lines, up to the size
    return path.stat().st_size


def build_models(workdir: Path) -> None:
    """A WordPiece tokenizer trained on the generated sentences, a random BERT encoder (masked LM) and a
    random token classifier, both hidden 128, 2 layers, 512 positions."""
    import torch
    from transformers import BertConfig, BertForMaskedLM, BertForTokenClassification

    from toolkit import train_wordpiece_tokenizer

    tokenizer = train_wordpiece_tokenizer(
        _sentences(0), vocab_size=3000, show_progress=False, model_max_length=512
    )
    sizes = dict(
        vocab_size=len(tokenizer),
        hidden_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=512,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    BertForMaskedLM(BertConfig(**sizes)).save_pretrained(workdir / "mlm")
    tokenizer.save_pretrained(workdir / "mlm")
    config = BertConfig(
        **sizes,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={k: i for i, k in enumerate(LABELS)},
    )
    tagger = BertForTokenClassification(config)
    with torch.no_grad():  # a realistic entity rate (a few % of words), not a random model's ~40%: see above
        tagger.classifier.bias[LABELS.index("O")] += 0.8
    tagger.save_pretrained(workdir / "ner")
    tokenizer.save_pretrained(workdir / "ner")


# ------------------------------------------------------------------------------ one case, in a child
def run_case(case: str, path: Path, workdir: Path, *, blocks: int) -> dict:
    """Run one case in this (fresh) process and return its figures."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    import torch  # noqa: F401  (imported before the baseline, as every case needs it)
    from transformers import AutoTokenizer

    from toolkit import NERTagger, extract_vectors, load_corpus, load_encoder, prepare_mlm_dataset

    result: dict = {}
    if case == "extract":
        encoder = load_encoder(workdir / "mlm")
        baseline = _rss_mb()
        start = time.perf_counter()
        vs = extract_vectors(encoder, inputs=[str(path)], mode="contextual", unit="char", show_progress=False)
        result |= {"items": len(vs), "occurrences": vs.coverage["n_occurrences"]}
    elif case == "ner":
        tagger = NERTagger(workdir / "ner")
        text = path.read_text(encoding="utf-8")
        baseline = _rss_mb()
        start = time.perf_counter()
        entities = tagger(text)
        result |= {"characters": len(text), "entities": len(entities)}
    else:
        tokenizer = AutoTokenizer.from_pretrained(workdir / "mlm")
        baseline = _rss_mb()
        start = time.perf_counter()
        corpus, report = load_corpus(train_files=[str(path)], streaming=True)
        packed = prepare_mlm_dataset(corpus["train"], tokenizer, block_size=128)
        n = 0
        for _ in packed:
            n += 1
            if n >= blocks:
                break
        result |= {"blocks": n, "lines": report.n_lines}
    result |= {
        "seconds": round(time.perf_counter() - start, 1),
        "baseline_rss_mb": round(baseline),
        "peak_rss_mb": round(_rss_mb()),
    }
    result["work_rss_mb"] = result["peak_rss_mb"] - result["baseline_rss_mb"]
    return result


def measure(case: str, path: Path, workdir: Path, *, blocks: int) -> dict:
    """``run_case`` in a fresh Python process (peak RSS is per process)."""
    cmd = [sys.executable, "-m", "benchmarks.memory", "--child", case, "--path", str(path)]
    cmd += ["--workdir", str(workdir), "--blocks", str(blocks)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if out.returncode:
        raise RuntimeError(f"{case} on {path.name} failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _summary(row: dict) -> str:
    return (
        f"{row['input_bytes'] / 1e6:7.1f} MB: peak {row['peak_rss_mb']:6,} MB "
        f"(work {row['work_rss_mb']:5,} MB, {row['seconds']:5.1f} s)"
    )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--extract_kb", type=float, default=1000, help="1x line for contextual extraction")
    parser.add_argument("--ner_kb", type=float, default=1000, help="1x sentence for NER")
    parser.add_argument("--corpus_mb", type=float, default=100, help="1x corpus for streaming pretraining")
    parser.add_argument("--one_line_mb", type=float, default=10, help="1x one-line corpus for pretraining")
    parser.add_argument("--factor", type=float, default=3.0, help="the larger input, as a multiple")
    parser.add_argument("--blocks", type=int, default=20_000, help="blocks iterated in the pretraining cases")
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--output", default=str(RESULTS))
    parser.add_argument("--child", choices=CASES, help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    if opts.child:
        print(json.dumps(run_case(opts.child, Path(opts.path), Path(opts.workdir), blocks=opts.blocks)))
        return {}

    sizes = {
        "extract": (opts.extract_kb * 1e3, write_one_line),
        "ner": (opts.ner_kb * 1e3, write_one_line),
        "pretrain_stream": (opts.corpus_mb * 1e6, write_corpus),
        "pretrain_one_line": (opts.one_line_mb * 1e6, write_one_line),
    }
    result: dict = {
        "factor": opts.factor,
        "blocks": opts.blocks,
        "cpu": platform.processor() or platform.machine(),
        "cpus_available": len(os.sched_getaffinity(0)),
        "date": time.strftime("%Y-%m-%d"),
        "cases": {},
    }
    with tempfile.TemporaryDirectory(prefix="toolkit_memory_") as tmp:
        workdir = Path(tmp)
        build_models(workdir)
        for case in opts.cases:
            size, write = sizes[case]
            rows = {}
            for label, n_bytes in (("1x", size), (f"{opts.factor:g}x", size * opts.factor)):
                path = workdir / f"{case}_{label}.txt"
                written = write(path, int(n_bytes))
                rows[label] = {"input_bytes": written, **measure(case, path, workdir, blocks=opts.blocks)}
                path.unlink()
            line = " | ".join(f"{label} {_summary(row)}" for label, row in rows.items())
            small, large = rows.values()
            rows["peak_ratio"] = round(large["peak_rss_mb"] / small["peak_rss_mb"], 3)
            rows["work_ratio"] = round(large["work_rss_mb"] / max(small["work_rss_mb"], 1), 3)
            result["cases"][case] = rows
            print(f"{case:18s} {line} | peak ratio {rows['peak_ratio']:.2f}", flush=True)
    write_results(result, opts.output)
    return result


if __name__ == "__main__":
    main()
