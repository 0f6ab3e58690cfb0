"""The accuracy gate of an ONNX export: the export scored against its source on a held sample (an eval file's
first items, else project-written probe texts): the mean cosine of sentence vectors for an encoder, accuracy and
macro-F1 for a classifier, entity F1 for a tagger. Each gate returns its figures; :func:`toolkit.export_model`
compares the drop with ``max_drop``.

:func:`tag_words` and :func:`tagger_window` tag pre-split sentences as :class:`~toolkit.NERTagger` does, with any
model called like a Hugging Face token classifier (PyTorch, or :class:`~toolkit._onnx.OnnxModel`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ._errors import ToolkitInputError
from ._onnx import OnnxModel, available_cores
from ._onnx_source import ModelSource, _load_torch_model

logger = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------- held sample
def probe_texts(n: int) -> list[str]:
    """Project-written English and Chinese lines (toolkit.demo's templates) for a gate without a file."""
    from .demo import chinese_sentences, english_sentences

    return [t for pair in zip(english_sentences(n), chinese_sentences(n), strict=True) for t in pair][:n]


def _read_eval_texts(path: Path, n: int, text_column: str) -> list[str]:
    from ._io import read_texts

    extensions = (".txt", ".jsonl", ".json", ".tsv", ".csv")
    if path.suffix.lower() in (".csv", ".tsv"):
        from ._labelled import read_classification

        return [e.text for e in read_classification(path, text_column=text_column, require_labels=False)][:n]
    texts, _ = read_texts([str(path)], extensions=extensions, text_field=text_column)
    return texts[:n]


# --------------------------------------------------------------------------------------------- tagging
def tag_words(
    model,
    tokenizer,
    sentences: Sequence[Sequence[str]],
    labels: Sequence[str],
    *,
    max_length: int,
    stride: int,
    batch_size: int = 16,
    constrained: bool = True,
) -> list[list[str]]:
    """BIO tags for pre-split sentences, as :class:`~toolkit.NERTagger` predicts them (overlapping windows
    merged back, valid-BIO decoding), with any model called like a Hugging Face token classifier: a PyTorch
    model or an :class:`OnnxModel`. Windows are sorted by length so batches pad little."""
    import torch

    from ._tagging import decode_tags, encode_sentence, merge_window_scores

    encoded = [
        encode_sentence(s, None, tokenizer, label2id=None, max_length=max_length, stride=stride)
        for s in sentences
    ]
    flat = [w for windows in encoded for w in windows]
    order = sorted(range(len(flat)), key=lambda i: -len(flat[i]["input_ids"]))
    logits: list[np.ndarray | None] = [None] * len(flat)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            width = max(len(flat[i]["input_ids"]) for i in idx)
            ids = torch.full((len(idx), width), tokenizer.pad_token_id)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for r, i in enumerate(idx):
                n = len(flat[i]["input_ids"])
                ids[r, :n] = torch.tensor(flat[i]["input_ids"])
                mask[r, :n] = 1
            out = model(input_ids=ids, attention_mask=mask).logits.float().numpy()
            for r, i in enumerate(idx):
                logits[i] = out[r, : len(flat[i]["input_ids"])]
    results, pos = [], 0
    for sentence, windows in zip(sentences, encoded, strict=True):
        scores = merge_window_scores(windows, logits[pos : pos + len(windows)], len(sentence))
        pos += len(windows)
        results.append([labels[i] for i in decode_tags(scores, labels, constrained=constrained)])
    return results


def tagger_window(config, tokenizer) -> tuple[int, int]:
    """The window and stride a token classifier was fine-tuned with (``ner_max_length``, ``ner_stride`` in its
    config, as :class:`~toolkit.NERTagger` reads them), else the model's limit and 16."""
    limit = min(config.max_position_embeddings, getattr(tokenizer, "model_max_length", 512), 512)
    window = getattr(config, "ner_max_length", None) or limit
    stride = getattr(config, "ner_stride", None)
    return int(window), int(16 if stride is None else stride)


# ------------------------------------------------------------------------------------------------ gates
def _set_torch_threads(threads: int | None) -> int:
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads or available_cores())
    return previous


def _timed(fn: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def _gate_encoder(source: ModelSource, staged: Path, fp32_file: Path | None, args: dict) -> dict:
    from dataclasses import replace

    from ._encoder import encode_sentences, load_encoder

    texts = (
        _read_eval_texts(args["eval_file"], args["sample"], args["text_column"])
        if args["eval_file"]
        else probe_texts(args["sample"])
    )
    # Both sides through encode_sentences with the directory's own settings (window, pooling, normalisation):
    # the gate checks what a user of the export gets.
    reference = load_encoder(source.path, backend="torch")
    exported = load_encoder(staged, backend="onnx", threads=args["threads"])
    ref, t_ref = _timed(lambda: encode_sentences(reference, texts, threads=args["threads"]))
    out, t_out = _timed(lambda: encode_sentences(exported, texts))
    cos = _cosines(ref, out)
    gate = {
        "metric": "mean cosine to the source's sentence vectors (x100)",
        "reference": f"{len(texts)} texts from {args['eval_file']}"
        if args["eval_file"]
        else f"{len(texts)} project-written probe texts (toolkit.demo)",
        "n": len(texts),
        "source": 100.0,
        "export": round(100 * float(cos.mean()), 6),
        "min_cosine": round(float(cos.min()), 6),
        "mean_cosine": round(float(cos.mean()), 6),
        "seconds": {"source_pytorch": round(t_ref, 3), "export": round(t_out, 3)},
    }
    if fp32_file is not None:
        fp32 = replace(exported, model=OnnxModel(fp32_file, exported.model.config, threads=args["threads"]))
        out32, t32 = _timed(lambda: encode_sentences(fp32, texts))
        gate["fp32_mean_cosine"] = round(float(_cosines(ref, out32).mean()), 6)
        gate["seconds"]["onnx_fp32"] = round(t32, 3)
    return gate


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return (a * b).sum(1) / np.maximum(norms, 1e-12)


def _gate_classifier(source: ModelSource, staged: Path, fp32_file: Path | None, args: dict) -> dict:
    from ._classifier import TextClassifier
    from .classify import classification_metrics

    reference = TextClassifier(source.path, backend="torch", threads=args["threads"])
    exported = TextClassifier(staged, backend="onnx", threads=args["threads"])
    multi = reference.multi_label
    texts, pairs, gold = _classifier_sample(args, reference)
    ref_logits, t_ref = _timed(lambda: reference.logits(texts, pairs))
    out_logits, t_out = _timed(lambda: exported.logits(texts, pairs))
    if gold is None:  # agreement with the source: its predictions are the references
        gold = (ref_logits > 0).astype(int) if multi else ref_logits.argmax(-1)
        where = f"agreement with the source model on {len(texts)} " + (
            f"texts from {args['eval_file']}" if args["eval_file"] else "project-written probe texts"
        )
    else:
        where = f"{len(texts)} labelled examples from {args['eval_file']}"
    n_labels = len(reference.labels)
    scores = {
        name: classification_metrics(logits, np.asarray(gold), multi_label=multi, num_labels=n_labels)
        for name, logits in (("source", ref_logits), ("export", out_logits))
    }
    drops = {k: 100 * (scores["source"][k] - scores["export"][k]) for k in ("accuracy", "macro_f1")}
    worst = max(drops, key=drops.get)
    gate = {
        "metric": f"{worst} (x100; the larger drop of accuracy and macro-F1)",
        "reference": where,
        "n": len(texts),
        "source": round(100 * scores["source"][worst], 6),
        "export": round(100 * scores["export"][worst], 6),
        "accuracy": {k: round(100 * scores[k]["accuracy"], 4) for k in scores},
        "macro_f1": {k: round(100 * scores[k]["macro_f1"], 4) for k in scores},
        "label_agreement": round(100 * _agreement(ref_logits, out_logits, multi), 4),
        "seconds": {"source_pytorch": round(t_ref, 3), "export": round(t_out, 3)},
    }
    if fp32_file is not None:
        exported.model = OnnxModel(fp32_file, exported.config, threads=args["threads"])
        fp32_logits, t32 = _timed(lambda: exported.logits(texts, pairs))
        gate["fp32_max_abs_diff"] = float(np.abs(fp32_logits - ref_logits).max())
        gate["seconds"]["onnx_fp32"] = round(t32, 3)
    else:
        gate["fp32_max_abs_diff"] = float(np.abs(out_logits - ref_logits).max())
    return gate


def _agreement(a: np.ndarray, b: np.ndarray, multi: bool) -> float:
    if multi:
        return float(((a > 0) == (b > 0)).all(-1).mean())
    return float((a.argmax(-1) == b.argmax(-1)).mean())


def _classifier_sample(args: dict, classifier) -> tuple[list[str], list[str] | None, object]:
    """Texts (and pairs) for the classifier gate, with gold labels (ids, or multi-hot rows) when the file
    has them."""
    path = args["eval_file"]
    if path is None:
        return probe_texts(args["sample"]), None, None
    from ._labelled import read_classification

    examples = read_classification(
        path,
        text_column=args["text_column"],
        text_pair_column=args.get("text_pair_column"),
        label_column=args["label_column"],
        multi_label=classifier.multi_label,
        require_labels=False,
    )[: args["sample"]]
    texts = [e.text for e in examples]
    pairs = [e.text_pair or "" for e in examples] if args.get("text_pair_column") else None
    if not all(e.labels for e in examples):
        return texts, pairs, None
    label2id = {label: i for i, label in enumerate(classifier.labels)}
    unknown = sorted({lab for e in examples for lab in e.labels} - set(label2id))
    if unknown:
        raise ToolkitInputError(
            f"{path}: labels {unknown[:5]} are not among the model's labels ({', '.join(classifier.labels)}): "
            "pass the model's own test file, or --label_column naming the right column"
        )
    if classifier.multi_label:
        gold = np.zeros((len(examples), len(label2id)), dtype=int)
        for r, e in enumerate(examples):
            for lab in e.labels:
                gold[r, label2id[lab]] = 1
        return texts, pairs, gold
    return texts, pairs, np.array([label2id[e.labels[0]] for e in examples])


def _gate_tagger(source: ModelSource, staged: Path, fp32_file: Path | None, args: dict) -> dict:
    from transformers import AutoTokenizer

    from ._tagger import split_words
    from .ner import ner_scores

    tokenizer = AutoTokenizer.from_pretrained(str(source.model_dir))
    config = source.config
    labels = [config.id2label[i] for i in range(len(config.id2label))]
    window, stride = tagger_window(config, tokenizer)
    path = args["eval_file"]
    gold = None
    if path is not None:
        sentences = _read_ner_sample(path, args["sample"])
        words = [s.tokens for s in sentences]
        if all(s.tags for s in sentences):
            gold = [s.tags for s in sentences]
    else:
        words = [[w for w, _, _ in split_words(t)] for t in probe_texts(args["sample"])]
        words = [w for w in words if w]

    def tag(model) -> list[list[str]]:
        return tag_words(model, tokenizer, words, labels, max_length=window, stride=stride)

    reference = _load_torch_model(source)
    previous = _set_torch_threads(args["threads"])
    try:
        ref_tags, t_ref = _timed(lambda: tag(reference))
    finally:
        _set_torch_threads(previous)
    exported = OnnxModel.from_export(staged, threads=args["threads"])
    out_tags, t_out = _timed(lambda: tag(exported))
    references = gold if gold is not None else ref_tags
    source_f1 = ner_scores(ref_tags, references)["overall_f1"]
    export_f1 = ner_scores(out_tags, references)["overall_f1"]
    n_entities = sum(t.startswith("B-") for s in references for t in s)
    tags_equal = sum(
        a == b for x, y in zip(ref_tags, out_tags, strict=True) for a, b in zip(x, y, strict=True)
    )
    gate = {
        "metric": "entity F1 (x100)",
        "reference": f"{len(words)} labelled sentences from {path}"
        if gold is not None
        else f"agreement with the source model on {len(words)} "
        + (f"sentences from {path}" if path else "project-written probe texts"),
        "n": len(words),
        "n_reference_entities": n_entities,
        "source": round(100 * source_f1, 6),
        "export": round(100 * export_f1, 6),
        "tag_agreement": round(100 * tags_equal / max(1, sum(len(s) for s in words)), 4),
        "window": window,
        "stride": stride,
        "seconds": {"source_pytorch": round(t_ref, 3), "export": round(t_out, 3)},
    }
    if n_entities == 0:
        gate["warning"] = (
            "the references hold no entity: the F1 gate cannot see a drop; pass --eval_file with a labelled "
            "test file"
        )
        logger.warning("export gate: %s", gate["warning"])
    if fp32_file is not None:
        fp32 = OnnxModel(fp32_file, config, threads=args["threads"])
        _, t32 = _timed(lambda: tag(fp32))
        gate["seconds"]["onnx_fp32"] = round(t32, 3)
    return gate


def _read_ner_sample(path: Path, n: int):
    from ._labelled import normalise_schemes, read_conll, read_ner_jsonl

    if path.suffix.lower() in (".jsonl", ".json"):
        sentences = read_ner_jsonl(path)
    else:
        sentences = read_conll(path, require_tags=None)
    sentences = sentences[:n]
    if sentences and all(s.tags for s in sentences):
        normalise_schemes(sentences, scheme="auto")
    return sentences


_GATES = {"encoder": _gate_encoder, "classifier": _gate_classifier, "token_classifier": _gate_tagger}
