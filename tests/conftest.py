"""Shared fixtures: small bilingual data written by the project, a trained tokenizer, a tiny config."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hub_server import ALICE, local_hub  # noqa: F401  (fixture for every test file)

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


def torchrun(port: int) -> list[str]:
    """The launcher prefix that starts a script on two local processes (gloo on CPU); each test its own port."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(port),
    ]


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory) -> Path:
    from toolkit.demo import write_demo_corpus

    directory = tmp_path_factory.mktemp("corpus")
    write_demo_corpus(directory, n_lines=300)
    return directory


@pytest.fixture(scope="session")
def corpus_lines(corpus_dir) -> list[str]:
    return (corpus_dir / "train.txt").read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="session")
def tokenizer(corpus_lines):
    from toolkit import train_wordpiece_tokenizer

    return train_wordpiece_tokenizer(corpus_lines, vocab_size=400, show_progress=False, model_max_length=64)


@pytest.fixture(scope="session")
def fixed_tokenizer_dir(corpus_lines, tmp_path_factory) -> Path:
    """A tokenizer with a vocabulary fixed by the corpus alone (WordPiece training breaks ties in hash
    order, so trained vocabularies can differ between runs): for tests that pin numbers."""
    from toolkit import is_cjk_char
    from toolkit._tokenizer import SPECIAL_TOKENS, build_wordpiece_tokenizer

    text = " ".join(corpus_lines).lower()
    chars = sorted({c for c in text if not c.isspace()})
    words = sorted({w.strip(".,") for w in text.split() if w.isascii()} - {""})
    vocab = [
        *SPECIAL_TOKENS,
        *chars,
        *(f"##{c}" for c in chars if not is_cjk_char(c)),
        *(w for w in words if w not in chars),
    ]
    directory = tmp_path_factory.mktemp("fixed_tokenizer")
    build_wordpiece_tokenizer(vocab, model_max_length=64).save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_config(tokenizer):
    from toolkit import load_preset

    return load_preset(
        "tiny",
        vocab_size=len(tokenizer),
        overrides={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_attention_heads": 2,
            "max_position_embeddings": 64,
        },
        pad_token_id=tokenizer.pad_token_id,
    )


def is_valid_bio(tags) -> bool:
    """No ``I-X`` after ``O``, at the start, or after another type."""
    return all(
        not tag.startswith("I-") or prev in (f"B-{tag[2:]}", tag)
        for prev, tag in zip(["O", *tags], tags, strict=False)  # each tag with the one before it
    )


def tiny_recipe_flags(corpus_dir: Path, output_dir: Path, *extra: str) -> list[str]:
    """Flags for recipes/pretrain.py on the fixture corpus with a 2-layer, hidden-32 model."""
    return [
        "--train_files", str(corpus_dir / "train.txt"),
        "--validation_files", str(corpus_dir / "valid.txt"),
        "--output_dir", str(output_dir),
        "--preset", "tiny",
        "--config_overrides", "hidden_size=32,intermediate_size=64,num_attention_heads=2,max_position_embeddings=64,"
        "hidden_dropout_prob=0.1,attention_probs_dropout_prob=0.1",
        "--vocab_size", "400",
        "--block_size", "32",
        "--max_steps", "4",
        "--per_device_train_batch_size", "8",
        "--per_device_eval_batch_size", "8",
        "--learning_rate", "0.001",
        "--adam_beta2", "0.999",  # the fixture pins every setting a preset would fill in (its losses are pinned)
        "--weight_decay", "0.0",
        "--warmup_steps", "0",
        "--position_init", "random",
        "--logging_steps", "1",
        "--save_strategy", "no",
        "--report_to", "none",
        "--disable_tqdm", "true",
        "--seed", "7",
        "--languages", "en", "zh",
        *extra,
    ]  # fmt: skip


@pytest.fixture(scope="session")
def tiny_mlm_dir(tokenizer, tiny_config, tmp_path_factory) -> Path:
    """A 2-layer, hidden-32 BERT masked-LM saved with its tokenizer, as the pretraining recipe writes it."""
    import torch
    from transformers import BertForMaskedLM

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tiny_mlm")
    BertForMaskedLM(tiny_config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture()
def hub_env(local_hub, monkeypatch, tmp_path):  # noqa: F811
    """Point huggingface_hub at the local hub, with Alice's token and an empty login cache."""
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "ENDPOINT", local_hub.url)
    monkeypatch.setenv("HF_ENDPOINT", local_hub.url)
    monkeypatch.setenv("HF_TOKEN", ALICE)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no_token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "no_tokens"))
    return local_hub


def scores_from_prediction_files(output_dir: Path) -> dict:
    """What the files a fine-tuning run wrote say its test scores are: accuracy recomputed from
    ``test_predictions.jsonl`` (classification) or entity F1 from ``test_predictions.conll`` (NER), so a test
    can check the reported numbers against the predictions instead of only their range."""
    import json

    out = {}
    jsonl = output_dir / "test_predictions.jsonl"
    conll = output_dir / "test_predictions.conll"
    if conll.is_file():
        from toolkit._metrics import load_metric

        blocks = [b.splitlines() for b in conll.read_text(encoding="utf-8").strip().split("\n\n")]
        gold = [[line.split("\t")[1] for line in b] for b in blocks]
        predicted = [[line.split("\t")[2] for line in b] for b in blocks]
        out["overall_f1"] = load_metric("entity_f1").compute(predictions=predicted, references=gold)[
            "overall_f1"
        ]
    elif jsonl.is_file():
        rows = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]
        out["accuracy"] = sum(r["predicted"] == r["gold"] for r in rows) / len(rows)
    return out


NER_LABELS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]


@pytest.fixture(scope="session")
def tiny_tagger_dir(tokenizer, tmp_path_factory) -> Path:
    """A random 2-layer, hidden-32 token classifier over ``NER_LABELS`` with the fixture tokenizer."""
    import torch
    from transformers import BertConfig, BertForTokenClassification

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=len(NER_LABELS),
        id2label=dict(enumerate(NER_LABELS)),
        label2id={lab: i for i, lab in enumerate(NER_LABELS)},
    )
    out = tmp_path_factory.mktemp("tagger")
    BertForTokenClassification(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def write_sentence_transformers_dir(directory: Path, tokenizer, *, seed: int = 1, layers: int = 2):
    """The layout of all-MiniLM-L6-v2 with a random hidden-32 encoder of ``layers`` layers: a ``BertModel`` (keys without
    "bert.") and its tokenizer at the root, ``modules.json``, ``sentence_bert_config.json`` and ``1_Pooling/``.
    Returns ``(directory, encoder)``."""
    import json

    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        pad_token_id=tokenizer.pad_token_id,
    )
    encoder = BertModel(config)
    encoder.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    (directory / "modules.json").write_text(json.dumps(modules))
    (directory / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 64}))
    (directory / "1_Pooling").mkdir()
    (directory / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": 32, "pooling_mode_mean_tokens": True})
    )
    return directory, encoder
