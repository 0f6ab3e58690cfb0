"""recipes/train_classifier.py and recipes/train_ner.py end to end on a tiny model; stock pipelines reload
the outputs without the toolkit; shipped configs parse; bad input fails before training."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ROOT, is_valid_bio, scores_from_prediction_files, torchrun
from transformers import TrainingArguments

import toolkit.finetune
from recipes import train_classifier, train_ner
from toolkit import ToolkitInputError
from toolkit.config import ClassifierArguments, FinetuneArguments, NERArguments, parse_config
from toolkit.demo import write_demo_labelled

CONFIGS = ROOT / "recipes" / "configs"
BLOCK_TOOLKIT = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "toolkit" or name.startswith("toolkit."):
            raise ImportError("toolkit is blocked in this test")
sys.meta_path.insert(0, Block())
"""


@pytest.fixture(scope="module")
def base_model(tiny_mlm_dir):
    return tiny_mlm_dir


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    return write_demo_labelled(tmp_path_factory.mktemp("labelled"), n=120)


def _common(out: Path) -> list[str]:
    return [
        "--output_dir",
        str(out),
        "--max_steps",
        "6",
        "--per_device_train_batch_size",
        "8",
        "--learning_rate",
        "1e-3",
        "--report_to",
        "none",
        "--save_strategy",
        "no",
        "--disable_tqdm",
        "true",
        "--logging_steps",
        "2",
        "--seed",
        "3",
    ]


def _run_without_toolkit(script: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_TOOLKIT + script],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.fixture(scope="module")
def classifier(base_model, labelled, tmp_path_factory):
    out = tmp_path_factory.mktemp("clf")
    results = train_classifier.main(
        [
            "--model_name_or_path",
            str(base_model),
            "--train_file",
            str(labelled["topic_train"]),
            "--validation_file",
            str(labelled["topic_dev"]),
            "--test_file",
            str(labelled["topic_test"]),
            "--freeze_layers",
            "1",
            "--languages",
            "en",
            "zh",
            *_common(out),
        ]
    )
    return out, results


def test_classifier_outputs(classifier):
    out, results = classifier
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "metrics.json",
        "README.md",
        "test_predictions.jsonl",
        "validation_confusion.png",
        "test_confusion.png",
    ):
        assert (out / name).is_file(), name
    config = json.loads((out / "config.json").read_text())
    assert set(config["id2label"].values()) == {"geo", "animal", "daily"}
    assert set(results["class_balance"]) == {"geo", "animal", "daily"}
    matrix = results["validation"]["confusion_matrix"]
    assert len(matrix) == 3 and sum(map(sum, matrix)) == 30
    assert results["validation"]["accuracy"] == pytest.approx(sum(matrix[i][i] for i in range(3)) / 30)
    assert results["test"]["accuracy"] == pytest.approx(scores_from_prediction_files(out)["accuracy"])
    assert "classifier.weight" in results["loading_report"]["newly_initialised"]
    assert any(k.startswith("cls.predictions") for k in results["loading_report"]["unused"])
    rows = [json.loads(line) for line in (out / "test_predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 30 and {"text", "predicted", "scores", "gold"} <= set(rows[0])
    assert "pipeline_tag: text-classification" in (out / "README.md").read_text()


def test_classifier_predictions_file_matches_the_model(classifier, labelled):
    """Rows of test_predictions.jsonl pair each test text with the model's own prediction for it, even
    though training batches were grouped by length."""
    out, _ = classifier
    from transformers import pipeline

    clf = pipeline("text-classification", model=str(out), device=-1)
    rows = [json.loads(line) for line in (out / "test_predictions.jsonl").read_text().splitlines()]
    texts = [json.loads(line)["text"] for line in labelled["topic_test"].read_text().splitlines()]
    assert [r["text"] for r in rows] == texts
    expected = [{p["label"]: p["score"] for p in scores} for scores in clf(texts, top_k=None)]
    for row, exp in zip(rows, expected, strict=True):
        assert row["scores"] == pytest.approx(exp, abs=2e-5)  # the file keeps 5 decimals
        assert row["predicted"] == max(exp, key=exp.get)


def test_classifier_pipeline_without_toolkit(classifier):
    out, _ = classifier
    stdout = _run_without_toolkit(f"""
from transformers import pipeline
clf = pipeline("text-classification", model={str(out)!r}, device=-1)
pred = clf("北京是中国的首都。")[0]
assert pred["label"] in ("geo", "animal", "daily"), pred
print("ok")
""")
    assert stdout.startswith("ok")


def test_multi_label_and_pair_classification(base_model, tmp_path):
    path = tmp_path / "ml.jsonl"
    rows = [
        {"a": "the cat", "b": "in the garden", "tags": ["animal", "place"] if i % 2 else ["place"]}
        for i in range(20)
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    results = train_classifier.main(
        [
            "--model_name_or_path",
            str(base_model),
            "--train_file",
            str(path),
            "--validation_file",
            str(path),
            "--text_column",
            "a",
            "--text_pair_column",
            "b",
            "--label_column",
            "tags",
            "--multi_label",
            "true",
            "--max_length",
            "6",
            *_common(tmp_path / "o"),
        ]
    )
    assert "micro_f1" in results["validation"]
    assert (
        results["truncated"]["train"] == 20
    )  # [CLS] the cat [SEP] in the garden [SEP] > 6 tokens: all truncated, counted
    assert (
        json.loads((tmp_path / "o" / "config.json").read_text())["problem_type"]
        == "multi_label_classification"
    )


@pytest.fixture(scope="module")
def tagger(base_model, labelled, tmp_path_factory):
    out = tmp_path_factory.mktemp("ner")
    results = train_ner.main(
        [
            "--model_name_or_path",
            str(base_model),
            "--train_file",
            str(labelled["ner_train"]),
            "--validation_file",
            str(labelled["ner_dev"]),
            "--test_file",
            str(labelled["ner_test"]),
            "--max_length",
            "12",
            "--stride",
            "3",
            *_common(out),
        ]
    )
    return out, results


def test_ner_outputs_and_audit(tagger):
    out, results = tagger
    for name in (
        "config.json",
        "model.safetensors",
        "metrics.json",
        "README.md",
        "test_predictions.conll",
        "test_predictions.jsonl",
        "validation_predictions.conll",
    ):
        assert (out / name).is_file(), name
    assert results["labels"] == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    audit = results["alignment"]["train"]
    assert (
        audit["n_labels_lost"] == 0 and audit["n_windowed_sentences"] > 0
    )  # 12-token windows split sentences
    assert results["test"]["overall_f1"] == pytest.approx(scores_from_prediction_files(out)["overall_f1"])
    p, r = results["test"]["overall_precision"], results["test"]["overall_recall"]
    assert results["test"]["overall_f1"] == pytest.approx(2 * p * r / (p + r) if p + r else 0.0)
    assert results["test"]["strict_overall_f1"] <= results["test"]["overall_f1"] + 1e-9
    conll = (out / "test_predictions.conll").read_text().strip().split("\n\n")
    assert len(conll) == 30 and all(len(line.split("\t")) == 3 for line in conll[0].splitlines())


def test_ner_predictions_match_the_tagger(tagger, labelled):
    """The recipe's evaluation (windows merged back after Trainer.predict) gives the same tags as tagging
    each test sentence directly."""
    from toolkit import NERTagger, read_conll

    out, _ = tagger
    sentences = read_conll(labelled["ner_test"])
    direct = NERTagger(out, stride=3)
    direct.max_length = 12
    expected = direct.predict_words([s.tokens for s in sentences])
    blocks = (out / "test_predictions.conll").read_text().strip().split("\n\n")
    predicted = [[line.split("\t")[2] for line in block.splitlines()] for block in blocks]
    assert predicted == expected


def test_ner_pipeline_without_toolkit(tagger):
    out, _ = tagger
    stdout = _run_without_toolkit(f"""
from transformers import pipeline
ner = pipeline("token-classification", model={str(out)!r}, aggregation_strategy="simple", device=-1)
ents = ner("张三在北京工作。")
assert isinstance(ents, list) and all(e["entity_group"] in ("LOC", "PER") for e in ents), ents
print("ok")
""")
    assert stdout.startswith("ok")


def test_ner_scores_both_decodings(tagger):
    """The headline is the configured decoding (valid BIO sequences by default); the other is recorded
    beside it, from the same logits, and the predictions written are the headline's."""
    out, results = tagger
    for name in ("validation", "test"):
        assert results[name]["decoding"] == "most probable valid BIO sequence"
        other = results[name]["other_decoding"]
        assert other["decoding"] == "best tag per word"
        assert set(other) >= {"overall_f1", "overall_precision", "overall_recall", "strict_overall_f1"}
    blocks = (out / "test_predictions.conll").read_text().strip().split("\n\n")
    for block in blocks:
        tags = [line.split("\t")[2] for line in block.splitlines()]
        assert is_valid_bio(tags), tags
    assert "most probable valid BIO sequence" in (out / "README.md").read_text()


def test_ner_validation_split_held_out_of_training(base_model, labelled, tmp_path):
    """--validation_split scores a held-out part of the training file (chosen by content hash) when there is
    no validation file; with one it is refused."""
    from toolkit import read_conll
    from toolkit.finetune import hold_out_validation

    flags = ["--model_name_or_path", str(base_model), "--train_file", str(labelled["ner_train"])]
    results = train_ner.main([*flags, "--validation_split", "0.3", *_common(tmp_path / "o")])
    expected = hold_out_validation({"train": read_conll(labelled["ner_train"])}, 0.3)
    assert results["alignment"]["validation"]["n_sentences"] == len(expected["validation"]) > 0
    assert results["alignment"]["train"]["n_sentences"] == len(expected["train"])
    assert "overall_f1" in results["validation"] and "validation" in results["alignment"]
    assert "held out for validation" in (tmp_path / "o" / "README.md").read_text()
    with pytest.raises(ToolkitInputError, match="not both"):
        train_ner.main(
            [*flags, "--validation_file", str(labelled["ner_dev"]), "--validation_split", "0.3"]
            + _common(tmp_path / "p")
        )


def test_ner_bioes_jsonl_input(base_model, tmp_path):
    path = tmp_path / "n.jsonl"
    rows = [{"tokens": ["alice", "lives", "in", "paris"], "tags": ["S-PER", "O", "O", "S-LOC"]}] * 10
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    results = train_ner.main(
        [
            "--model_name_or_path",
            str(base_model),
            "--train_file",
            str(path),
            "--validation_file",
            str(path),
            *_common(tmp_path / "o"),
        ]
    )
    assert results["schemes"]["train"]["scheme"] == "BIOES" and results["labels"] == ["O", "B-LOC", "B-PER"]


def test_finetune_bad_input(base_model, labelled, tmp_path):
    unseen = tmp_path / "dev.txt"
    unseen.write_text("x\tB-MISC\n", encoding="utf-8")
    with pytest.raises(
        ToolkitInputError, match=r"dev.txt:1: label 'B-MISC' does not occur in the training data"
    ):
        train_ner.main(
            [
                "--model_name_or_path",
                str(base_model),
                "--train_file",
                str(labelled["ner_train"]),
                "--validation_file",
                str(unseen),
                *_common(tmp_path / "o"),
            ]
        )
    mismatch = tmp_path / "bad.txt"
    mismatch.write_text("x\tO\ny\n", encoding="utf-8")
    with pytest.raises(ToolkitInputError, match=r"bad.txt:2: expected a token and a tag"):
        train_ner.main(
            ["--model_name_or_path", str(base_model), "--train_file", str(mismatch), *_common(tmp_path / "o")]
        )
    with pytest.raises(ToolkitInputError, match="no column 'sentence'"):
        train_classifier.main(
            [
                "--model_name_or_path",
                str(base_model),
                "--train_file",
                str(labelled["topic_train"]),
                "--text_column",
                "sentence",
                *_common(tmp_path / "o"),
            ]
        )
    with pytest.raises(ToolkitInputError, match="--freeze_layers 5 but the model has 2 layers"):
        train_classifier.main(
            [
                "--model_name_or_path",
                str(base_model),
                "--train_file",
                str(labelled["topic_train"]),
                "--freeze_layers",
                "5",
                *_common(tmp_path / "o"),
            ]
        )
    with pytest.raises(
        ToolkitInputError, match="neither a local directory nor a model on the hub .*pretrain.py"
    ):
        train_classifier.main(
            [
                "--model_name_or_path",
                str(tmp_path / "none"),
                "--train_file",
                str(labelled["topic_train"]),
                *_common(tmp_path / "o"),
            ]
        )
    assert not (tmp_path / "o" / "model.safetensors").exists()


@pytest.mark.parametrize(
    "path",
    sorted((CONFIGS / "classify").glob("*.yaml")) + sorted((CONFIGS / "ner").glob("*.yaml")),
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_every_shipped_finetune_config_parses(path):
    ft_type = NERArguments if path.parent.name == "ner" else ClassifierArguments
    ft, args = parse_config([ft_type, TrainingArguments], ["--config", str(path), "--output_dir", "unused"])
    assert ft.max_length <= 512 and not args.bf16
    for f in (ft.train_file, ft.validation_file, ft.test_file):
        if f:
            assert f.startswith("../shared/data/")
    if ft.train_file and getattr(ft, "encoder", "transformer") == "transformer":
        assert ft.model_name_or_path.startswith("outputs/pretrain/")
    elif ft.train_file:  # the light tagger trains from scratch
        assert ft.model_name_or_path is None


def test_classifier_from_a_datasets_repository(base_model, labelled, tmp_path):
    # --dataset_name takes anything datasets.load_dataset takes: here a local folder laid out like a hub repo.
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "train.jsonl").write_text(labelled["topic_train"].read_text(encoding="utf-8"), encoding="utf-8")
    (repo / "validation.jsonl").write_text(
        labelled["topic_dev"].read_text(encoding="utf-8"), encoding="utf-8"
    )
    results = train_classifier.main(
        ["--model_name_or_path", str(base_model), "--dataset_name", str(repo), *_common(tmp_path / "o")]
    )
    assert set(results["class_balance"]) == {"geo", "animal", "daily"} and "validation" in results


def test_dropout_override_reaches_the_model(base_model):
    from transformers import AutoConfig, AutoModelForTokenClassification

    from toolkit.finetune import load_finetune_model

    assert AutoConfig.from_pretrained(base_model).hidden_dropout_prob != 0.3
    model, _ = load_finetune_model(
        AutoModelForTokenClassification, str(base_model), labels=["O", "B-X"], dropout=0.3
    )
    assert model.config.hidden_dropout_prob == model.config.attention_probs_dropout_prob == 0.3
    dropouts = {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)}
    assert dropouts == {0.3}
    kept, _ = load_finetune_model(AutoModelForTokenClassification, str(base_model), labels=["O", "B-X"])
    assert kept.config.hidden_dropout_prob == AutoConfig.from_pretrained(base_model).hidden_dropout_prob
    with pytest.raises(ToolkitInputError, match="--dropout must be in"):
        load_finetune_model(AutoModelForTokenClassification, str(base_model), labels=["O"], dropout=1.5)


def _top_attention_and_value_mean(model, batch):
    """The top layer's attention output and the mean of its values over each row's unmasked tokens."""
    attention = model.base_model.encoder.layer[-1].attention.self
    seen = {}
    pre = attention.register_forward_pre_hook(
        lambda m, args, kw: seen.update(x=(args or (kw["hidden_states"],))[0]), with_kwargs=True
    )
    post = attention.register_forward_hook(lambda m, args, out: seen.update(out=out[0]))
    try:
        with torch.no_grad():
            model(**batch)
            values = attention.value(seen["x"])
    finally:
        pre.remove()
        post.remove()
    mask = batch["attention_mask"].unsqueeze(-1).float()
    mean = (values * mask).sum(1) / mask.sum(1)  # (batch, hidden)
    return seen["out"], mean


def test_uniform_top_attention_starts_every_position_as_the_mean(base_model):
    """With the top layer's queries zeroed, each position's attention output there (the [CLS] one that the
    classifier reads included) is the mean of the values over the row's unmasked tokens; nothing else in the
    model changes. Before the call it is not the mean, so the test sees the option's effect."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from toolkit import uniform_top_attention
    from toolkit.finetune import load_finetune_model

    model, _ = load_finetune_model(AutoModelForSequenceClassification, str(base_model), labels=["a", "b"])
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    batch = tokenizer(["the capital of france is paris", "北京"], padding=True, return_tensors="pt")
    batch.pop("token_type_ids", None)
    with torch.no_grad():  # the fixture model is barely trained, its attention nearly uniform: sharpen it
        for layer in model.base_model.encoder.layer:
            layer.attention.self.query.weight.mul_(100)
            layer.attention.self.query.bias.add_(0.5)
    out, mean = _top_attention_and_value_mean(model, batch)
    assert not torch.allclose(out[:, 0], mean, atol=1e-3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    n_zeroed = uniform_top_attention(model)
    out, mean = _top_attention_and_value_mean(model, batch)
    lengths = batch["attention_mask"].sum(1)
    for row, n in enumerate(lengths.tolist()):
        expected = mean[row].view(1, -1).expand(n, -1)
        torch.testing.assert_close(out[row, :n], expected, atol=1e-5, rtol=1e-5)
    changed = sorted(k for k, v in model.state_dict().items() if not torch.equal(v, before[k]))
    top = model.config.num_hidden_layers - 1
    assert changed == [f"bert.encoder.layer.{top}.attention.self.query.{p}" for p in ("bias", "weight")]
    assert n_zeroed == model.config.hidden_size * (model.config.hidden_size + 1)
    with pytest.raises(ToolkitInputError, match="needs a BERT-style encoder"):
        uniform_top_attention(torch.nn.Linear(2, 2))


def test_uniform_top_attention_in_the_recipes(base_model, labelled, tmp_path, monkeypatch):
    """The classifier recipe applies it to the model it trains and says so in the model card (the saved model
    is stock); the NER recipe refuses it before reading any data."""
    from toolkit import uniform_top_attention

    applied = []

    def spy(model):
        applied.append(type(model).__name__)
        return uniform_top_attention(model)

    monkeypatch.setattr(toolkit.finetune, "uniform_top_attention", spy)
    flags = ["--model_name_or_path", str(base_model), "--uniform_top_attention", "true"]
    results = train_classifier.main(
        [*flags, "--train_file", str(labelled["topic_train"]), *_common(tmp_path / "clf")]
    )
    assert "train" in results and applied == ["BertForSequenceClassification"]
    assert "| top-layer attention started uniform | True |" in (tmp_path / "clf" / "README.md").read_text()
    with pytest.raises(
        ToolkitInputError, match="--uniform_top_attention .* is an option of train_classifier.py only"
    ):
        train_ner.main([*flags, "--train_file", str(tmp_path / "absent.txt"), *_common(tmp_path / "ner")])


@pytest.mark.parametrize("recipe", ["train_classifier", "train_ner"])
def test_two_process_finetuning_with_a_test_file(recipe, base_model, labelled, tmp_path):
    """Under torchrun every rank must take part in each predict (it gathers across processes): a test-set
    prediction run on the main process alone fails in the gather once the other rank has left (or waits for it
    until the group times out). The test
    predictions written by the main process are the gathered ones, in the test file's order."""
    out = tmp_path / "ddp"
    task = "topic" if recipe == "train_classifier" else "ner"
    cmd = [
        *torchrun(29521 if recipe == "train_classifier" else 29522),
        str(ROOT / "recipes" / f"{recipe}.py"),
        "--model_name_or_path",
        str(base_model),
        "--train_file",
        str(labelled[f"{task}_train"]),
        "--validation_file",
        str(labelled[f"{task}_dev"]),
        "--test_file",
        str(labelled[f"{task}_test"]),
        "--ddp_timeout",
        "90",  # a rank left waiting fails the run in 90 s instead of 30 minutes
        *_common(out),
    ]
    result = subprocess.run(
        cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert result.returncode == 0, result.stderr[-4000:]
    test = json.loads((out / "metrics.json").read_text())["test"]
    rows = [json.loads(line) for line in (out / "test_predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 30
    if recipe == "train_classifier":
        texts = [json.loads(line)["text"] for line in labelled["topic_test"].read_text().splitlines()]
        assert [r["text"] for r in rows] == texts
        accuracy = sum(r["predicted"] == r["gold"] for r in rows) / len(rows)
        assert accuracy == pytest.approx(test["accuracy"])
    else:
        assert test["overall_f1"] == pytest.approx(scores_from_prediction_files(out)["overall_f1"])
        assert (out / "test_predictions.conll").read_text().strip().count("\n\n") == 29


def test_rescale_embeddings_keeps_the_function_and_caps_the_rms(base_model):
    """Grown embeddings are scaled down to the cap with the layer's output unchanged (the layer norm after the
    sum absorbs the common factor); position and token-type tables shrink by the same factor, so scaling the
    word table alone, which would change the output, is not what happens. A fresh model is left alone."""
    from transformers import AutoModelForTokenClassification

    from toolkit import rescale_embeddings
    from toolkit.finetune import load_finetune_model

    model, _ = load_finetune_model(
        AutoModelForTokenClassification, str(base_model), labels=["O", "B-X", "I-X"]
    )
    model.eval()
    emb = model.bert.embeddings
    with torch.no_grad():  # as pretraining does: tables far above the initialisation's 0.02
        emb.word_embeddings.weight.mul_(20)
        emb.position_embeddings.weight.mul_(5)
        emb.token_type_embeddings.weight.mul_(5)
    ids = torch.tensor([[2, 5, 9, 14, 3], [2, 7, 7, 3, 0]])
    types = torch.tensor([[0, 0, 0, 1, 1], [0, 0, 0, 0, 0]])
    before_out = emb(input_ids=ids, token_type_ids=types)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    word_rms = emb.word_embeddings.weight.pow(2).mean().sqrt().item()
    factor = rescale_embeddings(model, 0.02)
    assert factor == pytest.approx(0.02 / word_rms)
    assert emb.word_embeddings.weight.pow(2).mean().sqrt().item() == pytest.approx(0.02, rel=1e-4)
    for name in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
        key = f"bert.embeddings.{name}.weight"
        torch.testing.assert_close(model.state_dict()[key], before[key] * factor)
    torch.testing.assert_close(emb(input_ids=ids, token_type_ids=types), before_out, atol=1e-4, rtol=1e-4)
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {
        f"bert.embeddings.{n}.weight"
        for n in ("word_embeddings", "position_embeddings", "token_type_embeddings")
    }
    # Scaling the word table alone would have changed the output: the test can tell the two apart.
    with torch.no_grad():
        emb.word_embeddings.weight.mul_(0.5)
    assert not torch.allclose(emb(input_ids=ids, token_type_ids=types), before_out, atol=1e-3)
    # At or below the cap: nothing changes.
    snapshot = {k: v.clone() for k, v in model.state_dict().items()}
    assert rescale_embeddings(model, 0.02) == 1.0
    assert all(torch.equal(v, snapshot[k]) for k, v in model.state_dict().items())
    with pytest.raises(ToolkitInputError, match="must be positive"):
        rescale_embeddings(model, 0.0)
    with pytest.raises(ToolkitInputError, match="BERT-style embedding layer"):
        rescale_embeddings(torch.nn.Linear(2, 2), 0.02)


def test_raise_position_embeddings_restores_the_balance(base_model):
    """A position table pretraining left small beside the word table is scaled up to the asked ratio,
    measured over the rows fine-tuning uses; nothing else changes, the output does (unlike the RMS cap), and a
    table already large enough is left alone."""
    from transformers import AutoModelForTokenClassification

    from toolkit import raise_position_embeddings, rescale_embeddings
    from toolkit.finetune import load_finetune_model

    model, _ = load_finetune_model(
        AutoModelForTokenClassification, str(base_model), labels=["O", "B-X", "I-X"]
    )
    model.eval()
    emb = model.bert.embeddings
    with torch.no_grad():  # as masked-LM pretraining leaves them: words 3x the trained positions
        emb.word_embeddings.weight.mul_(20)
        emb.position_embeddings.weight[:8].mul_(20 / 3)
    rms = lambda w: w.pow(2).mean().sqrt().item()  # noqa: E731
    ratio_before = rms(emb.position_embeddings.weight[:8]) / rms(emb.word_embeddings.weight)
    ids = torch.tensor([[2, 5, 9, 14, 3]])
    before_out = emb(input_ids=ids)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    factor = raise_position_embeddings(model, 1.0, positions=8)
    assert factor == pytest.approx(1.0 / ratio_before, rel=1e-4) and factor > 2
    assert rms(emb.position_embeddings.weight[:8]) == pytest.approx(rms(emb.word_embeddings.weight), rel=1e-4)
    key = "bert.embeddings.position_embeddings.weight"
    torch.testing.assert_close(model.state_dict()[key], before[key] * factor)
    assert {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])} == {key}
    assert not torch.allclose(emb(input_ids=ids), before_out, atol=1e-3)
    # The cap keeps the ratio, so the two compose: the ratio holds after it, and a second call is a no-op.
    rescale_embeddings(model, 0.02)
    snapshot = {k: v.clone() for k, v in model.state_dict().items()}
    assert raise_position_embeddings(model, 0.99, positions=8) == 1.0
    assert all(torch.equal(v, snapshot[k]) for k, v in model.state_dict().items())
    with pytest.raises(ToolkitInputError, match="must be positive"):
        raise_position_embeddings(model, 0.0)
    with pytest.raises(ToolkitInputError, match="at least 1"):
        raise_position_embeddings(model, 1.0, positions=0)
    with pytest.raises(ToolkitInputError, match="absolute position table"):
        raise_position_embeddings(torch.nn.Linear(2, 2), 1.0)


@pytest.mark.parametrize("recipe", ["train_classifier", "train_ner"])
def test_embedding_rms_in_the_recipes(recipe, base_model, labelled, tmp_path, monkeypatch):
    """Both recipes apply the cap and the position floor to the model they train (through
    toolkit.adjust_embeddings), record the factors in metrics.json and name the options in the model card;
    without the options the embeddings are not touched."""
    import toolkit._surgery as surgery_module
    from toolkit import rescale_embeddings

    module = {"train_classifier": train_classifier, "train_ner": train_ner}[recipe]
    calls = []

    def spy(model, rms):
        calls.append((type(model).__name__, rms))
        return rescale_embeddings(model, rms)

    monkeypatch.setattr(surgery_module, "rescale_embeddings", spy)
    train = labelled["topic_train"] if recipe == "train_classifier" else labelled["ner_train"]
    flags = ["--model_name_or_path", str(base_model), "--train_file", str(train)]
    on = ["--embedding_rms", "0.001", "--position_rms_ratio", "3.0"]
    results = module.main([*flags, *on, *_common(tmp_path / "on")])
    head = "SequenceClassification" if recipe == "train_classifier" else "TokenClassification"
    assert calls == [(f"BertFor{head}", 0.001)]
    assert 0 < results["loading_report"]["embedding_scale"] < 1  # the fixture's tables are above 0.001
    # A fresh model's position and word tables are the same size: ratio 3 scales positions about 3x.
    assert 2.5 < results["loading_report"]["position_scale"] < 3.5
    saved = json.loads((tmp_path / "on" / "metrics.json").read_text())
    assert saved["loading_report"]["embedding_scale"] == results["loading_report"]["embedding_scale"]
    assert saved["loading_report"]["position_scale"] == results["loading_report"]["position_scale"]
    card = (tmp_path / "on" / "README.md").read_text()
    assert "| embedding RMS cap | 0.001 |" in card and "| position/word RMS floor | 3.0 |" in card
    results = module.main([*flags, *_common(tmp_path / "off")])
    assert len(calls) == 1 and "embedding_scale" not in results["loading_report"]
    assert "position_scale" not in results["loading_report"]


def test_classifier_reports_and_warns_about_unk(base_model, tmp_path, caplog):
    """Text the checkpoint's vocabulary does not cover: the [UNK] rate and the uncovered characters are
    logged and saved, with a warning that says what to do."""
    train = tmp_path / "train.csv"
    rows = ["text,label"] + [f"齉龘靐{i} 齾爩,{'a' if i % 2 else 'b'}" for i in range(16)]
    train.write_text("\n".join(rows) + "\n", encoding="utf-8")
    results = train_classifier.main(
        ["--model_name_or_path", str(base_model), "--train_file", str(train), *_common(tmp_path / "o")]
    )
    coverage = json.loads((tmp_path / "o" / "metrics.json").read_text())["tokenizer_coverage"]
    assert coverage["unk_rate"] > 0.5 and coverage["unk_rate"] == results["tokenizer_coverage"]["unk_rate"]
    assert "齉" in {c for c, _ in coverage["uncovered_chars"]}
    assert "of the tokens are [UNK]" in caplog.text and "pretrain one on this text" in caplog.text


def test_finetuning_settings_follow_the_checkpoint_size(tmp_path, caplog):
    """A tiny-sized checkpoint fine-tunes at tiny's rate (not the stock 5e-5) unless told otherwise; NER gets
    more epochs; a checkpoint of no preset's size keeps the stock settings."""
    from transformers import BertConfig, TrainingArguments

    from toolkit import load_preset
    from toolkit.config import parse_config
    from toolkit.finetune import apply_finetuning_settings

    load_preset("tiny", vocab_size=100).save_pretrained(tmp_path / "tiny")
    ft, args = parse_config(
        [FinetuneArguments, TrainingArguments], model_name_or_path=tmp_path / "tiny", output_dir="o"
    )
    caplog.set_level("INFO")
    apply_finetuning_settings(ft, args, task="classification")
    assert (args.learning_rate, args.num_train_epochs, args.warmup_steps, ft.dropout) == (1e-3, 3, 0.06, 0.1)
    assert "learning_rate = 0.001 (tiny-size checkpoint)" in caplog.text
    ft, args = parse_config(
        [FinetuneArguments, TrainingArguments],
        model_name_or_path=tmp_path / "tiny",
        output_dir="o",
        learning_rate=3e-4,
    )
    apply_finetuning_settings(ft, args, task="ner")
    assert (args.learning_rate, args.num_train_epochs) == (3e-4, 10)
    BertConfig(hidden_size=48, num_hidden_layers=1, num_attention_heads=2).save_pretrained(tmp_path / "odd")
    ft, args = parse_config(
        [FinetuneArguments, TrainingArguments], model_name_or_path=tmp_path / "odd", output_dir="o"
    )
    assert apply_finetuning_settings(ft, args, task="classification") == {} and args.learning_rate == 5e-5


def test_settings_respect_code_and_dropout_free_checkpoints(tmp_path):
    """Arguments built in code keep their values; a checkpoint of no preset's size pretrained without
    dropout fine-tunes with dropout 0.1."""
    from transformers import BertConfig, TrainingArguments

    from toolkit.config import parse_config
    from toolkit.finetune import apply_finetuning_settings

    BertConfig(
        hidden_size=48, num_hidden_layers=3, num_attention_heads=2, hidden_dropout_prob=0.0
    ).save_pretrained(tmp_path / "odd")
    ft = FinetuneArguments(model_name_or_path=str(tmp_path / "odd"), dropout=0.0)
    args = TrainingArguments(output_dir=str(tmp_path / "o"), learning_rate=3e-5)
    assert apply_finetuning_settings(ft, args, task="classification") == {}
    assert (ft.dropout, args.learning_rate) == (0.0, 3e-5)
    ft, args = parse_config(
        [FinetuneArguments, TrainingArguments], model_name_or_path=tmp_path / "odd", output_dir="o"
    )
    apply_finetuning_settings(ft, args, task="classification")
    assert ft.dropout == 0.1 and args.learning_rate == 5e-5


def test_config_file_given_with_an_equals_sign(tmp_path):
    from toolkit.config import parse_config

    (tmp_path / "c.yaml").write_text("max_length: 77\n")
    (ft,) = parse_config([FinetuneArguments], [f"--config={tmp_path / 'c.yaml'}"])
    assert ft.max_length == 77 and ft.option_sources["max_length"].startswith("config file")
