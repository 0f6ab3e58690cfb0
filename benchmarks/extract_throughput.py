#!/usr/bin/env python
"""Vector-extraction speed.

    python -m benchmarks.extract_throughput

1. Static character vectors for every distinct character of a ~10 MB English + Chinese corpus from
   ../shared/data (reuters21578_raw, zhwiki_sample, cluecorpussmall_sample), from a base-sized BERT
   (768 dims, random weights, vocabulary trained on the corpus): reading + counting + lookup + writing a
   word2vec text file, in seconds (target < 10 s). Loading the checkpoint is timed separately.
2. Sentence encoding vs sentence-transformers ``encode`` on the same model: a randomly initialised
   MiniLM-L6-shaped BERT (6 layers, hidden 384) saved in sentence-transformers layout, mean pooling,
   batch 32, the first 2,000 SST-2 training sentences. Alternating rounds, medians; sentences/s of each,
   the ratio (target >= 1.0) and the minimum cosine between the two outputs (target >= 0.9999).

Figures are printed and written to benchmarks/results/extract_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from transformers import BertConfig, BertModel

from benchmarks._common import DATA, RESULTS_DIR, data_missing, write_results
from toolkit import encode_sentences, extract_vectors, load_encoder, load_preset, train_wordpiece_tokenizer

CORPUS = [
    DATA / "reuters21578_raw" / "train.txt",
    DATA / "zhwiki_sample" / "tencentpretrain_zhwiki_sampled.txt",
    DATA / "zhwiki_sample" / "wikiextractor_AA_wiki_00.txt",
    DATA / "cluecorpussmall_sample" / "corpus.txt",
]
SST2 = DATA / "sst2" / "train.jsonl"
RESULTS = RESULTS_DIR / "extract_throughput.json"


def bench_static(workdir: Path) -> dict:
    corpus_dir = workdir / "corpus"
    corpus_dir.mkdir()
    for p in CORPUS:
        (corpus_dir / p.name).write_bytes(p.read_bytes())
    size = sum(p.stat().st_size for p in corpus_dir.iterdir())
    texts = [line for p in corpus_dir.iterdir() for line in p.read_text(encoding="utf-8").splitlines()[:3000]]
    tokenizer = train_wordpiece_tokenizer(texts, vocab_size=21128, show_progress=False)
    ckpt = workdir / "base"
    torch.manual_seed(0)
    BertModel(load_preset("base", vocab_size=len(tokenizer))).save_pretrained(ckpt)
    tokenizer.save_pretrained(ckpt)
    t0 = time.perf_counter()
    encoder = load_encoder(ckpt)
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    vs = extract_vectors(encoder, inputs=[str(corpus_dir)], unit="char", mode="static", missing="skip")
    out = vs.save(workdir / "chars.vec")
    t_extract = time.perf_counter() - t0
    return {
        "corpus_bytes": size,
        "distinct_chars": vs.coverage["n_items"],
        "vectors_written": len(vs),
        "dim": vs.dim,
        "missing_chars": vs.coverage["n_missing"],
        "output_bytes": out.stat().st_size,
        "load_seconds": round(t_load, 2),
        "read_count_lookup_write_seconds": round(t_extract, 2),
        "target_seconds": 10.0,
        "meets_target": t_extract < 10.0,
    }


def bench_sentences(workdir: Path, *, n: int, batch: int, rounds: int) -> dict:
    from sentence_transformers import SentenceTransformer, models

    sentences = [json.loads(line)["text"] for line in SST2.read_text(encoding="utf-8").splitlines()[:n]]
    tokenizer = train_wordpiece_tokenizer(sentences, vocab_size=8000, show_progress=False)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=384,
        num_hidden_layers=6,
        num_attention_heads=12,
        intermediate_size=1536,
        max_position_embeddings=512,
    )
    hf_dir, st_dir = workdir / "minilm_hf", workdir / "minilm_st"
    torch.manual_seed(0)
    BertModel(config).save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    transformer = models.Transformer(str(hf_dir), max_seq_length=256)
    SentenceTransformer(modules=[transformer, models.Pooling(384, "mean")], device="cpu").save(str(st_dir))
    st_model = SentenceTransformer(str(st_dir), device="cpu")
    encoder = load_encoder(st_dir)
    times: dict[str, list[float]] = {"toolkit": [], "sentence_transformers": []}
    outputs = {}
    for r in range(rounds):
        for name in (
            ("sentence_transformers", "toolkit") if r % 2 == 0 else ("toolkit", "sentence_transformers")
        ):
            t0 = time.perf_counter()
            if name == "toolkit":
                outputs[name] = encode_sentences(encoder, sentences, batch_size=batch, max_length=256)
            else:
                outputs[name] = st_model.encode(sentences, batch_size=batch, convert_to_numpy=True)
            times[name].append(time.perf_counter() - t0)
            print(f"round {r + 1} {name:22s}: {n / times[name][-1]:,.0f} sentences/s")
    a, b = outputs["toolkit"], outputs["sentence_transformers"]
    cosine = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    rates = {k: n / statistics.median(v) for k, v in times.items()}
    return {
        "sentences": n,
        "batch_size": batch,
        "model": "random BERT, 6 layers, hidden 384 (MiniLM-L6 shape)",
        "sentences_per_second": {k: round(v, 1) for k, v in rates.items()},
        "ratio_toolkit_over_st": round(rates["toolkit"] / rates["sentence_transformers"], 3),
        "min_cosine": float(cosine.min()),
        "target_ratio": 1.0,
        "target_cosine": 0.9999,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", default=str(RESULTS))
    opts = parser.parse_args(argv)
    if data_missing([*CORPUS, SST2]):
        return {}
    result = {"threads": torch.get_num_threads(), "torch": torch.__version__}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        result["static_chars"] = bench_static(workdir)
        s = result["static_chars"]
        print(
            f"static char vectors: {s['corpus_bytes'] / 1e6:.1f} MB corpus, {s['distinct_chars']:,} distinct chars, "
            f"read+count+lookup+write {s['read_count_lookup_write_seconds']} s (target < 10 s; checkpoint load "
            f"{s['load_seconds']} s)"
        )
        result["sentence_encoding"] = bench_sentences(
            workdir, n=opts.sentences, batch=opts.batch_size, rounds=opts.rounds
        )
        e = result["sentence_encoding"]
        print(
            f"sentence encoding: toolkit {e['sentences_per_second']['toolkit']:,.0f} vs sentence-transformers "
            f"{e['sentences_per_second']['sentence_transformers']:,.0f} sentences/s, ratio "
            f"{e['ratio_toolkit_over_st']:.2f} (target >= 1.0), min cosine {e['min_cosine']:.6f}"
        )
    write_results(result, opts.output)
    return result


if __name__ == "__main__":
    main()
