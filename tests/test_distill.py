"""Distillation: the losses move a student toward its teacher, teacher and student scores meet per word across
different tokenizers, recipes/distill.py end to end for both tasks (stock pipelines reload the students), the
teacher's scores are cached, and bad inputs fail before training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoConfig, BertConfig, BertForMaskedLM, BertForSequenceClassification, pipeline

import toolkit.distill
from recipes import distill, train_classifier, train_ner
from toolkit import ToolkitInputError
from toolkit._labelled import NERSentence
from toolkit._tokenizer import build_wordpiece_tokenizer
from toolkit.demo import write_demo_labelled
from toolkit.distill import (
    DistillationCollator,
    attach_word_scores,
    distill_task,
    hard_label_loss,
    soft_label_loss,
    teacher_labels,
)
from toolkit.ner import encode_ner_dataset

QUICK = [
    "--max_steps", "6",
    "--per_device_train_batch_size", "8",
    "--learning_rate", "1e-3",
    "--report_to", "none",
    "--save_strategy", "no",
    "--disable_tqdm", "true",
    "--seed", "3",
]  # fmt: skip


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    return write_demo_labelled(tmp_path_factory.mktemp("labelled"), n=120)


def _teacher(recipe, base_model: Path, train_file: Path, out: Path) -> Path:
    recipe.main(
        [
            "--model_name_or_path",
            str(base_model),
            "--train_file",
            str(train_file),
            "--output_dir",
            str(out),
            *QUICK,
        ]
    )
    return out


@pytest.fixture(scope="module")
def clf_teacher(tiny_mlm_dir, labelled, tmp_path_factory) -> Path:
    return _teacher(
        train_classifier, tiny_mlm_dir, labelled["topic_train"], tmp_path_factory.mktemp("clf_teacher")
    )


@pytest.fixture(scope="module")
def ner_teacher(tiny_mlm_dir, labelled, tmp_path_factory) -> Path:
    return _teacher(train_ner, tiny_mlm_dir, labelled["ner_train"], tmp_path_factory.mktemp("ner_teacher"))


def _char_tokenizer(texts):
    """A second tokenizer, of characters only: it splits every word differently from the fixture's."""
    chars = sorted({c for t in texts for c in t.lower() if not c.isspace()})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *(f"##{c}" for c in chars)]
    return build_wordpiece_tokenizer(vocab, model_max_length=64)


@pytest.fixture(scope="module")
def char_student_dir(labelled, tmp_path_factory) -> Path:
    """A tiny masked-LM with its own, character-level tokenizer: a student that shares no vocabulary."""
    texts = [
        line
        for name in ("topic_train", "ner_train")
        for line in Path(labelled[name]).read_text(encoding="utf-8").splitlines()
    ]
    tok = _char_tokenizer(texts)
    config = BertConfig(
        vocab_size=len(tok),
        hidden_size=24,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=48,
        max_position_embeddings=128,
    )
    torch.manual_seed(1)
    out = tmp_path_factory.mktemp("char_student")
    BertForMaskedLM(config).save_pretrained(out)
    tok.save_pretrained(out)
    return out


# ------------------------------------------------------------------------------------------------ losses
def test_soft_labels_pull_the_student_toward_the_teacher():
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=3,
    )
    student = BertForSequenceClassification(config)
    inputs = {"input_ids": torch.randint(5, 50, (8, 6)), "attention_mask": torch.ones(8, 6, dtype=torch.long)}
    teacher = torch.randn(8, 3) * 3
    optimiser = torch.optim.Adam(student.parameters(), lr=1e-2)

    def kl() -> float:
        with torch.no_grad():
            return soft_label_loss(student(**inputs).logits, teacher, temperature=1.0).item()

    before = kl()
    for _ in range(20):
        optimiser.zero_grad()
        soft_label_loss(student(**inputs).logits, teacher, temperature=2.0).backward()
        optimiser.step()
    assert kl() < 0.5 * before
    # the student's most probable labels now follow the teacher's
    assert (student(**inputs).logits.argmax(-1) == teacher.argmax(-1)).float().mean() >= 0.75


def test_soft_label_loss_is_zero_at_the_teacher_and_scaled_by_t_squared():
    logits = torch.randn(4, 5)
    assert soft_label_loss(logits, logits, temperature=3.0).item() == pytest.approx(0.0, abs=1e-6)
    student, teacher = torch.randn(4, 5), torch.randn(4, 5)
    # KL(teacher || student) of the softened distributions, times T^2, averaged over rows
    p_t = (teacher / 2).softmax(-1)
    expected = (p_t * (p_t.log() - (student / 2).log_softmax(-1))).sum(-1).mean() * 4
    assert soft_label_loss(student, teacher, temperature=2.0).item() == pytest.approx(
        expected.item(), rel=1e-5
    )


def test_hard_label_loss_ignores_unlabelled_rows():
    logits = torch.randn(3, 4, requires_grad=True)
    labels = torch.tensor([2, -100, 1])
    expected = torch.nn.functional.cross_entropy(logits[[0, 2]], labels[[0, 2]])
    assert hard_label_loss(logits, labels).item() == pytest.approx(expected.item())
    none = hard_label_loss(logits, torch.full((3,), -100))
    assert none.item() == 0.0
    none.backward()  # no NaN, a graph that still runs
    assert torch.isfinite(logits.grad).all()


# ------------------------------------------------------------------------------ alignment across tokenizers
def test_teacher_and_student_meet_per_word_across_tokenizers(tokenizer):
    sentences = [
        NERSentence(
            tokens=["Supercalifragilisticexpialidocious", "met", "🙂", "alice", "in", "北", "京"],
            tags=["O"] * 7,
        ),
        NERSentence(tokens=["日", "本", "🐱🐶", "bob", "x" * 40, "."] * 5, tags=["O"] * 30),  # windowed below
    ]
    other = _char_tokenizer([w for s in sentences for w in s.tokens])
    teacher_w, _, _ = encode_ner_dataset(sentences, tokenizer, label2id=None, max_length=16, stride=4)
    student_w, owner, _ = encode_ner_dataset(sentences, other, label2id=None, max_length=24, stride=6)
    assert sum(len(w["input_ids"]) for w in teacher_w) != sum(len(w["input_ids"]) for w in student_w)
    # each word's teacher row says which sentence and word it belongs to
    scores = [
        np.array([[k, w, 0.5] for w in range(len(s.tokens))], dtype=np.float32)
        for k, s in enumerate(sentences)
    ]
    rows = attach_word_scores(student_w, owner, scores)
    seen = {k: [] for k in range(len(sentences))}
    for row, k in zip(rows, owner, strict=True):
        for p, logit in zip(row["teacher_positions"], row["teacher_logits"], strict=True):
            word = row["word_index"][p]
            assert logit[:2] == [k, word]
            seen[k].append(word)
    for k, s in enumerate(
        sentences
    ):  # every word exactly once, even where a window boundary cuts the sentence
        assert sorted(seen[k]) == list(range(len(s.tokens)))
    assert max(owner.count(k) for k in owner) > 1  # the second sentence really was windowed


def test_collator_places_word_scores_at_their_positions(tokenizer):
    from transformers import DataCollatorForTokenClassification

    features = [
        {
            "input_ids": [2, 7, 8, 3],
            "attention_mask": [1] * 4,
            "labels": [-100, 1, 0, -100],
            "teacher_positions": [1, 2],
            "teacher_logits": [[1.0, 2.0], [3.0, 4.0]],
        },
        {
            "input_ids": [2, 9, 3],
            "attention_mask": [1] * 3,
            "labels": [-100, -100, -100],
            "teacher_positions": [1],
            "teacher_logits": [[5.0, 6.0]],
        },
    ]
    batch = DistillationCollator(DataCollatorForTokenClassification(tokenizer))(features)
    assert batch["teacher_logits"].shape == (2, 4, 2)
    assert batch["teacher_mask"].tolist() == [[False, True, True, False], [False, True, False, False]]
    assert batch["teacher_logits"][1, 1].tolist() == [5.0, 6.0]
    assert "teacher_positions" not in batch


# ------------------------------------------------------------------------------------------ the recipe
def _read(out: Path) -> tuple[dict, str]:
    return json.loads((out / "metrics.json").read_text()), (out / "README.md").read_text(encoding="utf-8")


def test_distil_a_classifier_into_a_cut_student(clf_teacher, labelled, tmp_path):
    unlabelled = tmp_path / "raw.txt"
    unlabelled.write_text("the capital of peru is lima.\n小狗在公园玩。\n", encoding="utf-8")
    out = tmp_path / "student"
    results = distill.main(
        [
            "--task", "classification",
            "--teacher", str(clf_teacher),
            "--student_layers", "1",
            "--hidden_weight", "1.0",
            "--unlabelled_files", str(unlabelled),
            "--train_file", str(labelled["topic_train"]),
            "--test_file", str(labelled["topic_test"]),
            "--output_dir", str(out),
            *QUICK,
        ]
    )  # fmt: skip
    assert AutoConfig.from_pretrained(out).num_hidden_layers == 1
    assert results["unlabelled_examples"] == 2
    assert len((out / "test_predictions.jsonl").read_text().splitlines()) == len(
        Path(labelled["topic_test"]).read_text().splitlines()
    )
    assert results["kept_share"] > 0 and results["kept_share_split"] == "test"
    assert "accuracy" in results["teacher"]["test"]
    metrics, card = _read(out)
    assert metrics["student"]["origin"].startswith("cut from the teacher, keeping its layers 1")
    assert str(clf_teacher) in card and "keeps" in card
    from safetensors import safe_open

    with safe_open(str(out / "model.safetensors"), "pt") as f:  # the projections stay out of the saved model
        assert all(k.startswith(("bert.", "classifier.")) for k in f.keys())  # noqa: SIM118
    clf = pipeline("text-classification", model=str(out))
    assert clf("the capital of france is paris.")[0]["label"] in {"geo", "animal", "daily"}


def test_distil_a_tagger_into_a_student_with_another_tokenizer(
    ner_teacher, char_student_dir, labelled, tmp_path, monkeypatch
):
    unlabelled = tmp_path / "raw.txt"
    unlabelled.write_text("alice lives in paris.\n\n张三在北京吃饭。\n", encoding="utf-8")
    out = tmp_path / "student"
    results = distill.main(
        [
            "--task", "ner",
            "--teacher", str(ner_teacher),
            "--model_name_or_path", str(char_student_dir),
            "--unlabelled_files", str(unlabelled),
            "--train_file", str(labelled["ner_train"]),
            "--validation_file", str(labelled["ner_dev"]),
            "--output_dir", str(out),
            "--teacher_cache", str(tmp_path / "cache"),
            *QUICK,
        ]
    )  # fmt: skip
    assert results["unlabelled_examples"] == 2
    assert results["kept_share_split"] == "validation"
    assert "overall_f1" in results["validation"] and "overall_f1" in results["teacher"]["validation"]
    ner = pipeline("token-classification", model=str(out), aggregation_strategy="first")
    assert isinstance(ner("alice lives in paris."), list)
    # a second student reads the teacher's scores from the cache: the teacher does not run again
    cached = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(cached) == 2  # train (+ unlabelled) and validation
    monkeypatch.setattr(toolkit.distill, "predict_logits", _refuse)
    distill.main(
        task="ner", teacher=str(ner_teacher), model_name_or_path=str(char_student_dir),
        unlabelled_files=[str(unlabelled)], train_file=str(labelled["ner_train"]),
        validation_file=str(labelled["ner_dev"]), output_dir=str(tmp_path / "again"),
        teacher_cache=str(tmp_path / "cache"), max_steps=2, report_to="none", save_strategy="no",
    )  # fmt: skip


def _refuse(*args, **kwargs):
    raise AssertionError("the teacher ran although its scores were cached")


# ------------------------------------------------------------------------------------------ bad inputs
def test_task_is_required_and_read_from_a_config_file(tmp_path):
    with pytest.raises(ToolkitInputError, match="--task"):
        distill_task(["--teacher", "x"], {})
    config = tmp_path / "d.yaml"
    config.write_text("task: ner\nteacher: x\n")
    assert distill_task(["--config", str(config)], {}) == "ner"
    assert distill_task(["--task=classification"], {}) == "classification"


def test_label_sets_must_agree(clf_teacher):
    with pytest.raises(
        ToolkitInputError, match=r"only in the data \['sports'\].*only in the teacher \['daily'\]"
    ):
        teacher_labels(clf_teacher, ["geo", "animal", "sports"], task="classification")
    assert sorted(teacher_labels(clf_teacher, ["geo", "animal", "daily"], task="classification")) == [
        "animal",
        "daily",
        "geo",
    ]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"teacher": "TINY_MLM", "student_layers": "0"}, "not a fine-tuned classification model"),
        ({"teacher": "CLF", "student_layers": "0", "model_name_or_path": "TINY_MLM"}, "exactly one student"),
        ({"teacher": "CLF"}, "exactly one student"),
        ({"teacher": "CLF", "model_name_or_path": "CHAR", "hidden_weight": 1.0}, "need one tokenizer"),
        ({"teacher": "CLF", "student_layers": "5"}, "layer 5 is out of range; the teacher has 2 layers"),
        (
            {"teacher": "CLF", "student_layers": "0", "freeze_layers": 1},
            "--freeze_layers: options of a checkpoint student",
        ),
        ({"teacher": "CLF", "student_layers": "0", "temperature": 0.0}, "--temperature"),
    ],
)
def test_bad_distillation_inputs(
    extra, message, clf_teacher, tiny_mlm_dir, char_student_dir, labelled, tmp_path
):
    paths = {"TINY_MLM": str(tiny_mlm_dir), "CLF": str(clf_teacher), "CHAR": str(char_student_dir)}
    options = {k: paths.get(v, v) if isinstance(v, str) else v for k, v in extra.items()}
    with pytest.raises(ToolkitInputError, match=message):
        distill.main(
            task="classification", train_file=str(labelled["topic_train"]), output_dir=str(tmp_path / "o"),
            max_steps=1, report_to="none", **options,
        )  # fmt: skip
    assert not (tmp_path / "o" / "model.safetensors").exists()


def test_layer_maps():
    from toolkit._distill import default_layer_map, parse_layer_map

    assert default_layer_map(3, 6) == [(0, 1), (1, 3), (2, 5)]  # evenly spread, last to last
    assert default_layer_map(2, 2) == [(0, 0), (1, 1)]
    assert parse_layer_map("0:1,1:5", student_layers=2, teacher_layers=6) == [(0, 1), (1, 5)]
    with pytest.raises(ToolkitInputError, match="the student has layers 0-1, the teacher 0-5"):
        parse_layer_map("2:1", student_layers=2, teacher_layers=6)
    with pytest.raises(ToolkitInputError, match="student:teacher"):
        parse_layer_map("0-1", student_layers=2, teacher_layers=6)


def test_a_teacher_whose_label_order_is_not_sorted(clf_teacher, labelled, tmp_path):
    """The student adopts the teacher's id order; the teacher's own score does not depend on it."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    teacher = AutoModelForSequenceClassification.from_pretrained(clf_teacher)
    order = [teacher.config.id2label[i] for i in range(teacher.config.num_labels)]
    permutation = list(reversed(range(len(order))))
    with torch.no_grad():
        teacher.classifier.weight.copy_(teacher.classifier.weight[permutation])
        teacher.classifier.bias.copy_(teacher.classifier.bias[permutation])
    teacher.config.id2label = {i: order[j] for i, j in enumerate(permutation)}
    teacher.config.label2id = {label: i for i, label in teacher.config.id2label.items()}
    permuted = tmp_path / "permuted"
    teacher.save_pretrained(permuted)
    AutoTokenizer.from_pretrained(clf_teacher).save_pretrained(permuted)
    runs = {}
    for name, directory in (("sorted", clf_teacher), ("permuted", permuted)):
        runs[name] = distill.main(
            task="classification", teacher=str(directory), student_layers="0,1",
            train_file=str(labelled["topic_train"]), test_file=str(labelled["topic_test"]),
            output_dir=str(tmp_path / f"student_{name}"), max_steps=1, report_to="none", save_strategy="no",
        )  # fmt: skip
    assert runs["permuted"]["teacher"]["test"]["accuracy"] == runs["sorted"]["teacher"]["test"]["accuracy"]
    student = AutoConfig.from_pretrained(tmp_path / "student_permuted")
    assert [student.id2label[i] for i in range(len(order))] == list(reversed(order))
    clf = pipeline("text-classification", model=str(tmp_path / "student_permuted"))
    assert clf("the capital of france is paris.")[0]["label"] in order


def test_hidden_states_through_a_projection_to_a_wider_teacher(clf_teacher, labelled, tmp_path):
    """A fresh student of another width: the projections train with it and stay out of what is saved."""
    from safetensors import safe_open

    out = tmp_path / "student"
    distill.main(
        task="classification", teacher=str(clf_teacher), student_preset="tiny", hidden_weight=1.0,
        train_file=str(labelled["topic_train"]), output_dir=str(out), max_steps=3, report_to="none",
        save_strategy="no", learning_rate=1e-3,
    )  # fmt: skip
    assert (
        AutoConfig.from_pretrained(out).hidden_size
        == 128
        != AutoConfig.from_pretrained(clf_teacher).hidden_size
    )
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        assert not [k for k in f.keys() if "projection" in k]  # noqa: SIM118
    assert pipeline("text-classification", model=str(out))("a sentence")[0]["label"] in {
        "geo",
        "animal",
        "daily",
    }


def test_unlabelled_files_name_an_undecodable_line(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine line\n\xff\xfe broken\n")
    with pytest.raises(ToolkitInputError, match=r"bad.txt.*line 2"):
        toolkit.distill.read_unlabelled([str(bad)], task="classification")
    assert len(toolkit.distill.read_unlabelled([str(bad)], task="ner", errors="replace")) == 2
    assert len(toolkit.distill.read_unlabelled([str(bad)], task="ner", errors="replace", limit=1)) == 1
