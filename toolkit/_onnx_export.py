"""ONNX export for fast CPU inference, optional dynamic int8 quantization, and the accuracy gate that refuses an
export whose task figures dropped.

Why these libraries (measured on all-MiniLM-L6-v2, 2-core AMD EPYC with AVX-512 VNNI, SST-2 sentences):

* BERT models (every model the toolkit trains, and BERT-layout checkpoints such as MiniLM) are written straight
  to a graph of ONNX Runtime's fused operators (:mod:`toolkit._onnx_bert`: one ``Attention`` per layer, which
  int8 quantization turns into ``QAttention``), checked against PyTorch before it is used. ``torch.onnx``'s
  graph leaves attention as some twenty primitive operators per layer that ONNX Runtime's optimizer does not
  fuse. int8 sessions, ONNX Runtime alone, one run: the fused graph 1,075 sentences/s against 840 for the
  exported graph (912 with the SkipLayerNormalization fusion left on), with the same cosine to PyTorch.
* Other architectures: ``torch.onnx.export(dynamo=True)`` (needs ``onnxscript``). The TorchScript exporter
  (``dynamo=False``) still runs under torch 2.13 but, with transformers 5's attention-mask code, traces
  shape-dependent branches as constants: its graph gave hidden states off by up to 2.2 on any other batch
  shape. The dynamo graph matches PyTorch to 3e-6 on every shape tried. ``optimum-onnx`` (what
  sentence-transformers' ONNX backend uses) pins ``transformers<4.58`` and cannot be installed beside
  transformers 5.
* ONNX Runtime runs the graph (``onnxruntime.transformers`` fuses layer norms and Bias-GELU in a ``torch.onnx``
  graph; ONNX Runtime's own CPU optimisations are applied when a session starts, for the CPU it runs on, except
  the SkipLayerNormalization fusion: see :data:`toolkit._onnx.DISABLED_FUSIONS`) and quantizes it
  (``quantize_dynamic``).
* int8 settings, by measured cosine to fp32 (sentence vectors, 512 SST-2 sentences): per-tensor weights
  0.954 mean; per-channel 0.9906; per-channel with the first layer's feed-forward output projection kept in
  fp32 0.9924 (keeping it costs about 1/18 of the int8 matrix work; the first layer's error runs through every
  later layer, so it matters most: 0.9924 > 0.9914 > ... > 0.9907 for layers 1..6); every feed-forward output
  in fp32 0.9945 but 15-20% slower. The embedding Gather is not quantized (a lookup: nothing to speed up).
  ``reduce_range`` (7-bit weights) is used only on x86 CPUs without VNNI, where ONNX Runtime's u8s8 kernels
  can saturate (ONNX Runtime's advice); with VNNI it only loses accuracy (0.9893).

The export's parts live beside this module: the ONNX Runtime side that loads an export (:mod:`toolkit._onnx`),
the source model's directory (:mod:`toolkit._onnx_source`) and the accuracy gate (:mod:`toolkit._onnx_gate`).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ._errors import ToolkitInputError
from ._onnx import EXPORT_FORMAT, EXPORT_INFO, ONNX_FILE, cpu_features, is_onnx_export, require_onnx
from ._onnx_gate import _GATES
from ._onnx_source import _copy_support_files, _load_torch_model, detect_model_kind

logger = logging.getLogger(__name__)

OPSET = 18
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# Default --max_drop by kind, in points of the gate's metric: the targets (an encoder's mean cosine to
# the source >= 0.99; a classifier's or tagger's metric within 0.5 point).
DEFAULT_MAX_DROP = {"encoder": 1.0, "classifier": 0.5, "token_classifier": 0.5}
DEFAULT_SAMPLE = 500


# ------------------------------------------------------------------------------------------------ export
@dataclass
class ExportResult:
    """What :func:`export_model` made: where the export is, its kind and precision, and the gate's figures
    (``gate["passed"]``; ``False`` only with ``force``, else the export was refused)."""

    output_dir: Path
    kind: str
    precision: str
    gate: dict
    metrics: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return bool(self.gate.get("passed"))


def _model_input_names(model, tokenizer) -> list[str]:
    import inspect

    accepted = set(inspect.signature(model.forward).parameters)
    wanted = set(getattr(tokenizer, "model_input_names", MODEL_INPUTS))
    return [n for n in MODEL_INPUTS if n in accepted and (n in wanted or n == "input_ids")]


def _torch_export(model, tokenizer, input_names: list[str], output: str, path: Path, opset: int) -> None:
    """Export to ONNX with the dynamo exporter (dynamic batch and sequence axes)."""
    import torch

    class Wrapper(torch.nn.Module):  # positional inputs in a fixed order, one tensor out
        def __init__(self, inner) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                kwargs["token_type_ids"] = token_type_ids
            return getattr(self.inner(**kwargs), output)

    sample = tokenizer(
        ["an example sentence for the export", "short"], padding=True, return_tensors="pt", truncation=True
    )
    args = tuple(sample[n] if n in sample else torch.zeros_like(sample["input_ids"]) for n in input_names)
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    dynamic = tuple({0: batch, 1: sequence} for _ in input_names)
    log = io.StringIO()
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(log),
        contextlib.redirect_stderr(log),
        _quiet_loggers(),  # the exporter logs its passes and the torchvision ops it skips
    ):
        warnings.simplefilter("ignore")
        try:
            program = torch.onnx.export(
                Wrapper(model).eval(),
                args,
                dynamo=True,
                input_names=list(input_names),
                output_names=[output],
                dynamic_shapes=dynamic,
                opset_version=opset,
                verbose=False,
            )
            program.save(str(path))
        except Exception as err:  # the exporter raises many types; the message says what failed
            raise ToolkitInputError(
                f"torch.onnx could not export this {type(model).__name__} ({type(err).__name__}: "
                f"{str(err)[:300]}); the exporter's log: {log.getvalue()[-500:]}"
            ) from None
    logger.debug("torch.onnx log:\n%s", log.getvalue())


FUSED_EXPORTER = "toolkit fused BERT graph (ONNX Runtime contrib operators)"
# The largest difference from PyTorch the fused graph may show on the check batch (fp32; ~4e-6 measured).
FUSED_TOLERANCE = 1e-3


def _fused_graph(model, kind, tokenizer, input_names, output_name, path: Path, opset: int):
    """Write the fused BERT graph (:mod:`toolkit._onnx_bert`) and check it against PyTorch on a padded batch.

    Returns:
        ``(exporter name, details)``, or ``(None, details with the reason)`` when the model is not covered or
        the check fails, and the caller exports with ``torch.onnx`` instead.
    """
    from ._onnx_bert import build_fused_bert, fused_bert_unsupported

    reason = fused_bert_unsupported(model, kind)
    if reason:
        logger.info("the fused graph does not cover this model (%s): exporting with torch.onnx", reason)
        return None, {"fused_graph": f"not used: {reason}"}
    try:
        ops = build_fused_bert(model, kind, input_names, output_name, path, opset)
    except Exception as err:  # onnx's checker and the weights' shapes raise many types; torch.onnx still can
        logger.warning("the fused graph could not be built (%s): exporting with torch.onnx instead", err)
        return None, {"fused_graph": f"not used: {type(err).__name__}: {str(err)[:200]}"}
    try:
        diff = _max_diff_to_pytorch(model, tokenizer, input_names, output_name, path)
    except Exception as err:  # a session or model that cannot run the check: torch.onnx still can
        logger.warning("the fused graph could not be checked (%s): exporting with torch.onnx instead", err)
        return None, {"fused_graph": f"not used: the check failed ({type(err).__name__}: {str(err)[:200]})"}
    if not diff <= FUSED_TOLERANCE:
        logger.warning(
            "the fused graph differs from PyTorch by %.3g (more than %g): exporting with torch.onnx instead",
            diff,
            FUSED_TOLERANCE,
        )
        return None, {"fused_graph": f"not used: differs from PyTorch by {diff:.3g}"}
    return FUSED_EXPORTER, {"optimizer": "built fused", "operators": ops, "max_diff_to_pytorch": diff}


def _max_diff_to_pytorch(model, tokenizer, input_names, output_name, path: Path) -> float:
    """The largest difference between the graph at ``path`` and the PyTorch model on a padded batch of three
    texts, over the positions that are not padding (``inf`` when the shapes differ)."""
    import numpy as np
    import torch

    from ._onnx import OnnxModel

    batch = tokenizer(
        ["a check that the fused graph computes what the model does", "short", "一个中文句子"],
        padding=True,
        return_tensors="np",
    )
    feed = {
        n: batch[n].astype(np.int64) if n in batch else np.zeros_like(batch["input_ids"]) for n in input_names
    }
    with torch.inference_mode():
        outputs = model(**{n: torch.from_numpy(v) for n, v in feed.items()})
        expected = getattr(outputs, output_name).float().numpy()
    got = OnnxModel(path, model.config, threads=1).run(feed)
    if got.shape != expected.shape:
        return float("inf")
    if got.ndim == 3:  # per-token outputs: padded positions are not defined the same way; compare the rest
        keep = feed["attention_mask"].astype(bool)
        expected, got = expected[keep], got[keep]
    return float(np.abs(expected - got).max())


def _optimize_for_cpu(raw: Path, out: Path, config) -> dict:
    """ONNX Runtime's transformer fusions (layer norm, Bias-GELU, ...; not SkipLayerNorm), hardware-independent
    (``opt_level=0``: ONNX Runtime applies its CPU-specific passes when a session starts). Falls back to the
    exported graph when the optimizer fails."""
    try:
        from onnxruntime.transformers.optimizer import optimize_model

        with warnings.catch_warnings(), _quiet_loggers():
            warnings.simplefilter("ignore")
            from onnxruntime.transformers.fusion_options import FusionOptions

            fusions = FusionOptions("bert")
            fusions.enable_skip_layer_norm = False  # slower than its parts on CPU: see DISABLED_FUSIONS
            model = optimize_model(
                str(raw),
                model_type="bert",
                num_heads=int(getattr(config, "num_attention_heads", 0) or 0),
                hidden_size=int(getattr(config, "hidden_size", 0) or 0),
                opt_level=0,
                optimization_options=fusions,
            )
            fused = {k: v for k, v in model.get_fused_operator_statistics().items() if v}
            model.save_model_to_file(str(out))
        return {"optimizer": "onnxruntime.transformers (bert fusions)", "fused": fused}
    except Exception as err:  # keep the plain graph: the fusions are a speed-up, not a requirement
        logger.warning(
            "ONNX Runtime's transformer optimizer failed (%s): the exported graph is kept as is", err
        )
        shutil.copyfile(raw, out)
        return {"optimizer": None, "error": str(err)[:200]}


@contextlib.contextmanager
def _quiet_loggers():
    """Silence ONNX Runtime's optimizer and quantizer, which log every fusion and a pre-processing hint at
    INFO/WARNING from module-level loggers (``fusion_base``, ``onnx_model``, the root logger)."""
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def _kept_fp32(model_path: Path, config) -> tuple[list[str], list[str]]:
    """The MatMuls int8 leaves in fp32: the first layer's feed-forward output (the first MatMul, nodes being in
    topological order, whose weight is an (intermediate, hidden) initializer), and the fused graph's task head
    (:data:`toolkit._onnx_bert.HEAD_MATMULS`: a few multiply-adds per text, and the last word on the label:
    ``torch.onnx``'s graphs leave it fp32 too, as a Gemm). Returns ``(first feed-forward, head)`` node names."""
    import onnx

    from ._onnx_bert import HEAD_MATMULS

    model = onnx.load(str(model_path), load_external_data=False)
    shapes = {i.name: tuple(i.dims) for i in model.graph.initializer}
    target = (int(getattr(config, "intermediate_size", 0) or 0), int(getattr(config, "hidden_size", 0) or 0))
    matmuls = [n for n in model.graph.node if n.op_type == "MatMul" and len(n.input) == 2]
    first = next((n.name for n in matmuls if shapes.get(n.input[1]) == target), None)
    return ([first] if first else []), [n.name for n in matmuls if n.name in HEAD_MATMULS]


def quantize_int8(fp32: Path, int8: Path, config, cpu: dict | None = None) -> dict:
    """Dynamic int8 quantization of the MatMul and fused Attention weights (``QAttention``), per output
    channel; the MatMuls of :func:`_kept_fp32` stay fp32 and the embedding lookups are not quantized (see the
    module docstring for the measurements); 7-bit weights (``reduce_range``) on x86 CPUs without VNNI.

    Returns:
        The settings used, for ``toolkit_export.json``.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    cpu = cpu or cpu_features()
    reduce_range = bool(cpu["x86"] and not cpu["vnni"])
    first_ffn, head = _kept_fp32(fp32, config)
    excluded = first_ffn + head
    settings = {
        "method": "onnxruntime.quantization.quantize_dynamic",
        "weights": "int8 symmetric, per channel",
        "activations": "uint8, dynamic per-tensor range",
        "op_types": ["MatMul", "Attention"],
        "kept_fp32": {
            "nodes": excluded,
            "why": "first layer's feed-forward output projection"
            + (", the task head (pooler, classifier)" if head else ""),
        },
        # ONNX Runtime's quantizer gives QAttention 7-bit weights whatever reduce_range says
        "attention_weights": "int8 per channel, 7-bit (ONNX Runtime's QAttention quantizer)",
        "reduce_range": reduce_range,
    }
    with warnings.catch_warnings(), _quiet_loggers():
        warnings.simplefilter("ignore")
        quantize_dynamic(
            fp32,
            int8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=reduce_range,
            op_types_to_quantize=["MatMul", "Attention"],
            nodes_to_exclude=excluded,
            extra_options={"MatMulConstBOnly": True},
        )
    return settings


# ------------------------------------------------------------------------------------------ the export
def _prepare_output(output: Path) -> tuple[Path, Path]:
    """The staging and rejection directories beside ``output``; refuses to overwrite what is not an export."""
    if output.exists() and (not output.is_dir() or (any(output.iterdir()) and not is_onnx_export(output))):
        raise ToolkitInputError(
            f"--output {output} exists and is not an earlier export: choose another directory or remove it"
        )
    rejected = output.with_name(output.name + ".rejected")
    if rejected.exists() and not is_onnx_export(rejected):
        raise ToolkitInputError(f"{rejected} exists and is not a rejected export: remove it first")
    staged = output.with_name(output.name + ".partial")
    if staged.exists():
        if not (staged / ".toolkit_partial").is_file():
            raise ToolkitInputError(f"{staged} exists and is not a partial export: remove it first")
        shutil.rmtree(staged)
    staged.mkdir(parents=True)
    (staged / ".toolkit_partial").write_text("an export in progress\n", encoding="utf-8")
    return staged, rejected


def _replace_dir(src: Path, dst: Path) -> None:
    if dst.exists():
        shutil.rmtree(dst)
    src.rename(dst)


def export_model(
    model_dir: str | os.PathLike,
    output: str | os.PathLike,
    *,
    quantize: str | None = None,
    max_drop: float | None = None,
    force: bool = False,
    eval_file: str | os.PathLike | None = None,
    sample: int = DEFAULT_SAMPLE,
    threads: int | None = None,
    text_column: str = "text",
    text_pair_column: str | None = None,
    label_column: str = "label",
    opset: int = OPSET,
) -> ExportResult:
    """Export a classifier, a token classifier, or an encoder (base model, masked LM's encoder,
    sentence-transformers directory) to ONNX for CPU inference, optionally int8-quantized, and gate it.

    The graph has dynamic batch and sequence axes; the config and tokenizer (and a sentence-transformers
    directory's module files) are copied, so :func:`~toolkit.encode_sentences`, :class:`~toolkit.TextClassifier`
    and :class:`~toolkit.NERTagger` load the export as they load the source. The gate scores the export against
    the source on a held sample (``eval_file``'s first ``sample`` items, else project-written probe texts):
    the mean cosine of sentence vectors for an encoder, accuracy and macro-F1 for a classifier, entity F1 for
    a tagger (against the file's labels when it has them, else agreement with the source's predictions). The
    figures go to ``metrics.json`` and the ``README.md`` card; an export whose drop exceeds ``max_drop`` points
    is moved to ``OUTPUT.rejected`` and refused unless ``force``.

    Args:
        model_dir: the source model directory.
        output: the export directory (an earlier export there is replaced).
        quantize: ``None`` (fp32) or ``"int8"`` (dynamic int8, see :func:`quantize_int8`).
        max_drop: the largest drop allowed, in points of the gate's metric (default: 1.0 for an encoder, i.e.
            a mean cosine of at least 0.99; 0.5 for a classifier or tagger).
        force: keep an export that fails the gate (its card says so).
        eval_file: a held-out file: texts (``.txt``, ``.jsonl``) for an encoder; a classification file
            (``text_column``, ``label_column``) for a classifier; CoNLL or NER JSON Lines for a tagger.
        sample: how many items of the file (or probe texts) the gate scores.
        threads: CPU threads for the gate's runs (default: the cores this process may use).
        opset: the ONNX opset.

    Returns:
        An :class:`ExportResult`.

    Raises:
        ToolkitInputError: onnx / onnxruntime / onnxscript missing (naming ``pip install 'toolkit[onnx]'``), not
            a model directory, an unsupported architecture or head, a bad flag or file, or the gate refused the
            export (the message gives the figures and where the files were kept).
    """
    deps = require_onnx(export=True)
    if quantize not in (None, "int8"):
        raise ToolkitInputError(f"--quantize must be int8 (or left out for fp32), got {quantize!r}")
    if sample < 1:
        raise ToolkitInputError(f"--sample must be at least 1, got {sample}")
    if threads is not None and threads < 1:
        raise ToolkitInputError(f"--threads must be at least 1, got {threads}")
    if max_drop is not None and max_drop < 0:
        raise ToolkitInputError(f"--max_drop must be 0 or more points, got {max_drop}")
    eval_path = Path(eval_file) if eval_file is not None else None
    if eval_path is not None and not eval_path.is_file():
        raise ToolkitInputError(f"--eval_file {eval_path} does not exist or is not a file")
    source = detect_model_kind(model_dir)
    output = Path(output)
    limit = DEFAULT_MAX_DROP[source.kind] if max_drop is None else float(max_drop)
    staged, rejected = _prepare_output(output)
    gate_args = {
        "eval_file": eval_path,
        "sample": sample,
        "threads": threads,
        "text_column": text_column,
        "text_pair_column": text_pair_column,
        "label_column": label_column,
    }
    try:
        return _export(source, output, staged, rejected, deps, quantize, limit, force, gate_args, opset)
    finally:
        if staged.exists():  # a failure before the gate's verdict: nothing half-written is left behind
            shutil.rmtree(staged, ignore_errors=True)


def _export(source, output, staged, rejected, deps, quantize, limit, force, gate_args, opset) -> ExportResult:
    import tempfile

    import torch
    import transformers
    from transformers import AutoTokenizer

    logger.info("exporting %s (%s, %s) to %s", source.path, source.kind, source.architecture, output)
    inner = _copy_support_files(source, staged)
    tokenizer = AutoTokenizer.from_pretrained(str(source.model_dir))
    model = _load_torch_model(source)
    output_name = "last_hidden_state" if source.kind == "encoder" else "logits"
    input_names = _model_input_names(model, tokenizer)
    cpu = cpu_features()
    with tempfile.TemporaryDirectory(prefix="toolkit_onnx_") as tmp:
        raw, fp32 = Path(tmp) / "exported.onnx", Path(tmp) / "fp32.onnx"
        start = time.perf_counter()
        exporter, optimisation = _fused_graph(
            model, source.kind, tokenizer, input_names, output_name, fp32, opset
        )
        if exporter is None:
            exporter = "torch.onnx.export(dynamo=True)"
            _torch_export(model, tokenizer, input_names, output_name, raw, opset)
            optimisation.update(_optimize_for_cpu(raw, fp32, source.config))
        seconds = time.perf_counter() - start
        del model
        quantization = None
        if quantize == "int8":
            start = time.perf_counter()
            quantization = quantize_int8(fp32, inner / ONNX_FILE, source.config, cpu)
            quantization["seconds"] = round(time.perf_counter() - start, 2)
        else:
            shutil.copyfile(fp32, inner / ONNX_FILE)
        info = {
            "format": EXPORT_FORMAT,
            "kind": source.kind,
            "source": str(source.path.resolve()),
            "architecture": source.architecture,
            "sentence_transformers": source.sentence_transformers,
            "precision": quantize or "fp32",
            "onnx_file": str((inner / ONNX_FILE).relative_to(staged)),
            "opset": opset,
            "inputs": input_names,
            "output": output_name,
            "dynamic_axes": {"batch": 0, "sequence": 1},
            "exporter": exporter,
            "export_seconds": round(seconds, 2),
            "optimisation": optimisation,
            "quantization": quantization,
            "cpu": cpu,
            "versions": {
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "onnx": deps.onnx.__version__,
                "onnxruntime": deps.onnxruntime.__version__,
                "onnxscript": getattr(deps.onnxscript, "__version__", "?"),
            },
        }
        (staged / EXPORT_INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        gate = _GATES[source.kind](source, staged, fp32 if quantize else None, gate_args)
    drop = round(gate["source"] - gate["export"], 6)
    passed = drop <= limit
    gate.update(drop=drop, max_drop=limit, passed=passed, forced=bool(force and not passed))
    _speed_note(gate, quantize)
    info["gate"] = {
        k: gate[k] for k in ("metric", "source", "export", "drop", "max_drop", "passed", "forced")
    }
    (staged / EXPORT_INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    metrics = {"kind": source.kind, "precision": info["precision"], "source": info["source"], "gate": gate}
    (staged / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    (staged / "README.md").write_text(_card(info, gate), encoding="utf-8")
    (staged / ".toolkit_partial").unlink()
    result = ExportResult(output, source.kind, info["precision"], gate, metrics)
    if passed or force:
        _replace_dir(staged, output)
        if not passed:
            logger.warning("export gate failed (%s) but --force keeps %s", _figures(gate), output)
        logger.info("export written to %s: %s", output, _figures(gate))
        return result
    _replace_dir(staged, rejected)
    result.output_dir = rejected
    raise ToolkitInputError(
        f"export refused: {_figures(gate)} exceeds --max_drop {limit} points. The export is kept aside in "
        f"{rejected} (metrics.json, README.md) for inspection; {output} was not written. Export in fp32 "
        "(without --quantize), allow a larger --max_drop, or pass --force to keep it anyway"
    )


def _figures(gate: dict) -> str:
    return (
        f"{gate['metric']}: source {gate['source']:.4f}, export {gate['export']:.4f}, drop {gate['drop']:.4f} "
        f"points on {gate['reference']}"
    )


def _speed_note(gate: dict, quantize: str | None) -> None:
    """Warn when int8 runs slower than fp32 here (dynamic quantization can, on some CPUs): the figures are
    one pass over the sample, a hint rather than a benchmark."""
    seconds = gate.get("seconds", {})
    if quantize and seconds.get("onnx_fp32") and seconds.get("export"):
        ratio = seconds["onnx_fp32"] / max(seconds["export"], 1e-9)
        gate["int8_speed_over_onnx_fp32"] = round(ratio, 2)
        if ratio < 1.0:
            logger.warning(
                "int8 ran %.2fx the speed of fp32 on this CPU over the gate's sample: int8 kernels may be slow "
                "here; compare both with benchmarks/export_throughput.py and export fp32 if int8 stays slower",
                ratio,
            )


def _card(info: dict, gate: dict) -> str:
    usage = {
        "encoder": 'from toolkit import encode_sentences\n\nvectors = encode_sentences("EXPORT", ["a sentence"])',
        "classifier": 'from toolkit import TextClassifier\n\nclf = TextClassifier("EXPORT")\nprint(clf("a sentence"))',
        "token_classifier": 'from toolkit import NERTagger\n\ntagger = NERTagger("EXPORT")\nprint(tagger("张三在北京工作。"))',
    }[info["kind"]]
    status = (
        "passed"
        if gate["passed"]
        else ("FAILED, kept with --force" if gate["forced"] else "FAILED: refused, kept aside for inspection")
    )
    rows = [
        ("metric", gate["metric"]),
        ("held sample", gate["reference"]),
        ("source (PyTorch fp32)", f"{gate['source']:.4f}"),
        (f"export (ONNX {info['precision']})", f"{gate['export']:.4f}"),
        ("drop (points)", f"{gate['drop']:.4f} (allowed: {gate['max_drop']})"),
        ("gate", status),
    ]
    extra = {
        k: gate[k]
        for k in ("min_cosine", "accuracy", "macro_f1", "label_agreement", "tag_agreement")
        if k in gate
    }
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    quant = info["quantization"]
    how = (
        f"dynamic int8 ({quant['weights']}; activations {quant['activations']}; kept in fp32: "
        f"{', '.join(quant['kept_fp32']['nodes']) or 'nothing'}; reduce_range {quant['reduce_range']})"
        if quant
        else "fp32"
    )
    return (
        f"# ONNX export ({info['kind']}, {info['precision']})\n\n"
        f"Exported from `{info['source']}` ({info['architecture'] or 'encoder'}) with {info['exporter']}, opset "
        f"{info['opset']}, dynamic batch and sequence axes; ONNX Runtime {info['versions']['onnxruntime']} "
        f"transformer fusions; {how}.\n\n"
        f"## Accuracy gate\n\n| | |\n|---|---|\n{table}\n\n"
        + "".join(f"- {k}: {v}\n" for k, v in extra.items())
        + f"\nAll figures: `metrics.json`.\n\n## Use\n\n```python\n{usage}\n```\n\n"
        "Needs `pip install 'toolkit[onnx]'`. Threads: `threads=` on the loaders.\n"
    )
