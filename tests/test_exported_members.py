"""The public API is a decision: the top-level names and the public submodules are pinned here (httpx style),
so adding or removing one is a deliberate change to this file."""

from __future__ import annotations

import importlib
import pkgutil
import re

import toolkit

TOP_LEVEL = [
    "ToolkitInputError",
    # raw text and labelled files
    "ClassificationExample", "CorpusReport", "NERSentence", "load_corpus", "read_classification", "read_conll",
    "read_ner_jsonl", "resolve_files",
    # tokenizers and text rules
    "is_cjk_char", "join_tokens", "load_tokenizer", "tokenizer_report", "train_wordpiece_tokenizer",
    # masked-LM pretraining
    "MLMCollator", "PRESET_NAMES", "build_mlm_model", "count_size", "load_preset", "prepare_mlm_dataset",
    # model surgery
    "freeze_parameters", "init_position_embeddings", "raise_position_embeddings", "rescale_embeddings",
    "uniform_top_attention",
    # named-entity recognition
    "NERTagger", "bio_entities", "decode_tags",
    # vectors and weight transfer
    "Encoder", "TransferReport", "VectorSet", "encode_sentences", "extract_sentence_vectors", "extract_vectors",
    "load_encoder", "read_texts", "read_word_list", "transfer_weights",
    # fast CPU inference
    "ExportResult", "OnnxModel", "TextClassifier", "export_model",
    # training and publishing
    "HubError", "ToolkitTrainer", "preflight", "push_output_dir",
]  # fmt: skip

PUBLIC_SUBMODULES = [
    "classify", "config", "demo", "distill", "finetune", "hub", "ner", "presets", "pretrain", "rundir", "students",
    "taggers", "training",
]  # fmt: skip


def test_top_level_api_is_pinned():
    assert toolkit.__all__ == TOP_LEVEL
    assert all(hasattr(toolkit, name) for name in toolkit.__all__)


def test_public_submodules_are_pinned_and_their_names_exist():
    public = sorted(m.name for m in pkgutil.iter_modules(toolkit.__path__) if not m.name.startswith("_"))
    assert public == PUBLIC_SUBMODULES
    for name in public:
        module = importlib.import_module(f"toolkit.{name}")
        exported = getattr(module, "__all__", [])
        assert name == "presets" or exported, f"toolkit.{name} has no __all__"
        missing = [n for n in exported if not hasattr(module, n)]
        assert not missing, f"toolkit.{name}.__all__ names what it lacks: {missing}"


def test_no_public_module_imports_a_private_name_from_outside_the_package():
    """Recipes and benchmarks use the public API only (tests may reach into private modules). The GPU
    benchmark is an exception: the GPU image lacks ``datasets``, which ``import toolkit`` needs, so it reads
    the four modules it uses directly. The NER benchmark is the other: it switches the internal full-width fold
    off once, to measure what the fold is worth (no user option does that)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    offenders = [
        str(p.relative_to(root))
        for folder in ("recipes", "benchmarks")
        for p in sorted((root / folder).glob("*.py"))
        if re.search(r"toolkit\._[a-z]", p.read_text(encoding="utf-8"))
        and p.name not in ("gpu_pretrain_throughput.py", "ner_quality.py")
    ]
    assert not offenders
