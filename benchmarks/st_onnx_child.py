#!/usr/bin/env python
"""sentence-transformers' own ONNX backends, timed in another Python environment (run by
``benchmarks/export_throughput.py --st_python PYTHON``, not by hand).

sentence-transformers' ``backend="onnx"`` and ``export_dynamic_quantized_onnx_model`` need ``optimum-onnx``,
which pins ``transformers<4.58`` and so cannot be installed beside the toolkit's transformers 5. This script
imports neither the toolkit nor transformers 5: it runs under the interpreter of an environment that has
``sentence-transformers[onnx]``, exports the model there once (``--prepare``: the ONNX graph and its
``avx512_vnni`` dynamic-int8 export, as sentence-transformers' documentation does it), and times one backend
per call: a warm-up pass, then ``--rounds`` timed passes of ``encode`` over the texts. It writes the seconds of
each pass and the vectors to ``--out`` (JSON and ``.npy``).

    PYTHON benchmarks/st_onnx_child.py --prepare --model DIR --work WORK
    PYTHON benchmarks/st_onnx_child.py --backend int8 --work WORK --texts texts.json --out result
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

INT8_FILE = "onnx/model_qint8_avx512_vnni.onnx"


def load(work: Path, backend: str):
    """sentence-transformers' model on its ONNX backend, with its own session settings (ONNX Runtime's default
    threads: the physical cores)."""
    from sentence_transformers import SentenceTransformer

    kwargs = {"file_name": INT8_FILE if backend == "int8" else "onnx/model.onnx"}
    return SentenceTransformer(
        str(work / "st_onnx_model"),
        device="cpu",
        backend="onnx",
        model_kwargs={**kwargs, "provider": "CPUExecutionProvider"},
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", required=True, type=Path)
    p.add_argument("--prepare", action="store_true", help="export the ONNX and int8 models into --work")
    p.add_argument("--model", help="the sentence-transformers directory (with --prepare)")
    p.add_argument("--backend", choices=["onnx", "int8"])
    p.add_argument("--texts", type=Path, help="a JSON list of texts")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--out", type=Path, help="result prefix: OUT.json and OUT.npy")
    args = p.parse_args()
    if args.prepare:
        from sentence_transformers import SentenceTransformer, export_dynamic_quantized_onnx_model

        model = SentenceTransformer(args.model, device="cpu", backend="onnx")
        model.save(str(args.work / "st_onnx_model"))
        export_dynamic_quantized_onnx_model(model, "avx512_vnni", str(args.work / "st_onnx_model"))
        import importlib.metadata as md

        versions = {
            n: md.version(n) for n in ("sentence-transformers", "transformers", "optimum-onnx", "onnxruntime")
        }
        (args.work / "st_versions.json").write_text(json.dumps(versions), encoding="utf-8")
        return
    import numpy as np

    texts = json.loads(args.texts.read_text(encoding="utf-8"))
    model = load(args.work, args.backend)
    vectors = model.encode(texts, batch_size=args.batch_size, convert_to_numpy=True)  # warm-up
    seconds = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        model.encode(texts, batch_size=args.batch_size, convert_to_numpy=True)
        seconds.append(time.perf_counter() - start)
    np.save(str(args.out) + ".npy", np.asarray(vectors, dtype=np.float32))
    Path(str(args.out) + ".json").write_text(json.dumps({"seconds": seconds}), encoding="utf-8")


if __name__ == "__main__":
    main()
