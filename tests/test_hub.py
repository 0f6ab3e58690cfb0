"""Publishing: model cards, pre-flight failures, token hygiene, and round trips through a local hub."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import tiny_recipe_flags
from hub_server import ALICE, BOB
from huggingface_hub import ModelCard, hf_hub_download

from recipes import extract_vectors, pretrain, push_to_hub, train_classifier, train_ner
from toolkit import HubError, ToolkitInputError, VectorSet, preflight
from toolkit.demo import write_demo_labelled
from toolkit.hub import describe_output


def _all_text(paths) -> str:
    out = []
    for root in paths:
        for p in Path(root).rglob("*"):
            if p.is_file():
                out.append(p.read_bytes().decode("utf-8", "replace"))
    return "\n".join(out)


def _load_and_predict(hub, repo_id: str, token: str) -> list:
    """Load a model by repo id from the local hub in a fresh process (no toolkit) and return logits."""
    script = f"""
import json, torch
from transformers import AutoModelForMaskedLM, AutoTokenizer
tok = AutoTokenizer.from_pretrained({repo_id!r})
model = AutoModelForMaskedLM.from_pretrained({repo_id!r}).eval()
with torch.no_grad():
    logits = model(**tok("北京是中国的[MASK]都。", return_tensors="pt")).logits
print(json.dumps(logits[0, :4, :6].tolist()))
"""
    env = {
        **os.environ,
        "HF_ENDPOINT": hub.url,
        "HF_TOKEN": token,
        "HF_HUB_OFFLINE": "0",
        "HF_HOME": str(
            Path(os.environ.get("TMPDIR", "/tmp")) / f"hf_home_{os.getpid()}_{repo_id.replace('/', '_')}"
        ),
    }
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_pretrain_push_round_trip_and_token_hygiene(hub_env, corpus_dir, tmp_path, capsys, caplog):
    out = tmp_path / "mlm"
    pretrain.main(
        tiny_recipe_flags(
            corpus_dir,
            out,
            "--push_to_hub",
            "true",
            "--hub_model_id",
            "tiny-mlm",
            "--hub_token",
            ALICE,
            "--hub_revision",
            "v1",
        )
    )
    assert "alice/tiny-mlm" in hub_env.repos
    assert set(hub_env.repos["alice/tiny-mlm"]["branches"]) >= {"main", "v1"}
    pushed = hub_env.repos["alice/tiny-mlm"]["branches"]["v1"]["files"]
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md"} <= set(pushed)
    assert not any(
        name.startswith(("checkpoint-", "runs/")) or name == "training_args.bin" for name in pushed
    )
    # The token appears nowhere: output files, pushed files, logs, printed output.
    captured = capsys.readouterr()
    assert ALICE not in _all_text([out]) + captured.out + captured.err + caplog.text
    assert all(ALICE.encode() not in data for data in pushed.values())
    # Loading back by repo id gives identical predictions.
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(out)
    with torch.no_grad():
        local = (
            AutoModelForMaskedLM.from_pretrained(out)
            .eval()(**tok("北京是中国的[MASK]都。", return_tensors="pt"))
            .logits
        )
    hub_env.repos["alice/tiny-mlm"]["branches"]["main"] = hub_env.repos["alice/tiny-mlm"]["branches"]["v1"]
    remote = _load_and_predict(hub_env, "alice/tiny-mlm", ALICE)
    torch.testing.assert_close(torch.tensor(remote), local[0, :4, :6])


def test_cards_parse_with_model_index(hub_env, corpus_dir, tmp_path, tokenizer):
    out = tmp_path / "mlm"
    pretrain.main(tiny_recipe_flags(corpus_dir, out, "--eval_strategy", "steps", "--eval_steps", "2"))
    card = ModelCard.load(out / "README.md")
    assert card.data.pipeline_tag == "fill-mask" and card.data.library_name == "transformers"
    assert card.data.language == ["en", "zh"] and card.data.license == "apache-2.0"
    assert card.data.datasets == ["train.txt"] and "toolkit" in card.data.tags
    assert card.data.eval_results[0].metric_type == "perplexity"
    labelled = write_demo_labelled(tmp_path / "data", n=40)
    common = [
        "--max_steps",
        "2",
        "--per_device_train_batch_size",
        "8",
        "--report_to",
        "none",
        "--save_strategy",
        "no",
        "--model_name_or_path",
        str(out),
    ]
    train_classifier.main(
        [
            "--train_file",
            str(labelled["topic_train"]),
            "--test_file",
            str(labelled["topic_test"]),
            "--output_dir",
            str(tmp_path / "clf"),
            *common,
        ]
    )
    train_ner.main(
        [
            "--train_file",
            str(labelled["ner_train"]),
            "--test_file",
            str(labelled["ner_test"]),
            "--output_dir",
            str(tmp_path / "ner"),
            *common,
        ]
    )
    for name, tag, metric in (
        ("clf", "text-classification", "accuracy"),
        ("ner", "token-classification", "overall_f1"),
    ):
        card = ModelCard.load(tmp_path / name / "README.md")
        assert (
            card.data.pipeline_tag == tag
            and card.data.base_model is None  # a local start is named in the text, not as a hub base_model
            and card.data.datasets == ["data"]
        )
        assert metric in {r.metric_type for r in card.data.eval_results}
        text = (tmp_path / name / "README.md").read_text()
        assert "## Results" in text and "## How to use" in text and "recipes/" in text


@pytest.mark.parametrize(
    ("token", "repo_id", "message"),
    [
        (None, "alice/x", "needs a hub token"),
        ("hf_not_a_real_token", "alice/x", "invalid or expired"),
        (ALICE, "bad repo id!!", "malformed repo id"),
        (ALICE, "a/b/c", "malformed repo id"),
        (ALICE, "bob/x", "cannot write to namespace 'bob'"),
        (ALICE, "", "needs --hub_model_id"),
    ],
)
def test_preflight_failures(hub_env, monkeypatch, token, repo_id, message):
    if token is None:
        monkeypatch.delenv("HF_TOKEN")
    else:
        monkeypatch.setenv("HF_TOKEN", token)
    with pytest.raises(ToolkitInputError, match=message):
        preflight(repo_id)


def test_preflight_unreachable_hub(hub_env, monkeypatch):
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(ToolkitInputError, match="cannot reach the hub"):
        preflight("alice/x")


def test_preflight_fails_before_training(hub_env, corpus_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", BOB)
    with pytest.raises(ToolkitInputError, match="cannot write to namespace 'alice'"):
        pretrain.main(
            tiny_recipe_flags(
                corpus_dir, tmp_path / "o", "--push_to_hub", "true", "--hub_model_id", "alice/m"
            )
        )
    assert not (tmp_path / "o" / "model.safetensors").exists()


def test_network_error_keeps_output_and_prints_retry(hub_env, corpus_dir, tmp_path):
    out = tmp_path / "mlm"
    hub_env.fail_next_commit = True
    with pytest.raises(HubError, match="retry with") as err:
        pretrain.main(
            tiny_recipe_flags(
                corpus_dir,
                out,
                "--push_to_hub",
                "true",
                "--hub_model_id",
                "alice/flaky",
                "--hub_private_repo",
                "true",
            )
        )
    assert (out / "model.safetensors").is_file() and (out / "README.md").is_file()
    retry = str(err.value).splitlines()[-1].split()
    assert retry[:2] == ["python", "recipes/push_to_hub.py"] and "--private" in retry
    push_to_hub.main(retry[2:])
    assert "model.safetensors" in hub_env.repos["alice/flaky"]["branches"]["main"]["files"]
    assert hub_env.repos["alice/flaky"]["private"] is True


def test_push_refuses_output_without_weights(hub_env, tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ToolkitInputError, match="no weights"):
        describe_output(tmp_path)
    with pytest.raises(ToolkitInputError, match="does not exist"):
        push_to_hub.main([str(tmp_path / "missing"), "alice/x"])


def test_vector_set_round_trip(hub_env, corpus_dir, tokenizer, tmp_path):
    import torch
    from transformers import BertConfig, BertModel

    ckpt = tmp_path / "ckpt"
    BertModel(
        BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=64,
        )
    ).save_pretrained(ckpt)
    tokenizer.save_pretrained(ckpt)
    vec_dir = tmp_path / "vectors"
    vec_dir.mkdir()
    (vec_dir / "unrelated.txt").write_text("not part of the set")
    vs = extract_vectors.main(
        [
            "--checkpoint",
            str(ckpt),
            "--input",
            str(corpus_dir / "train.txt"),
            "--output",
            str(vec_dir / "chars.vec"),
            "--push_to_hub",
            "--hub_model_id",
            "alice/chars",
        ]
    )
    files = hub_env.repos["alice/chars"]["branches"]["main"]["files"]
    assert set(files) == {"chars.vec", "chars.vec.coverage.json", "README.md"}
    card = files["README.md"].decode()
    assert "## Provenance" in card and str(ckpt) in card and "corpus_sha256" in card
    path = hf_hub_download("alice/chars", "chars.vec", cache_dir=tmp_path / "cache")
    back = VectorSet.load(path)
    assert back.tokens == vs.tokens
    torch.testing.assert_close(torch.from_numpy(back.vectors), torch.from_numpy(vs.vectors))
    # an existing vector directory pushed by the script gets a card built from the safetensors provenance
    other = tmp_path / "other"
    other.mkdir()
    vs.save(other / "chars.safetensors")
    (other / "chars.safetensors.coverage.json").write_text(json.dumps(vs.coverage))
    push_to_hub.main([str(other), "alice/chars-st"])
    assert "README.md" in hub_env.repos["alice/chars-st"]["branches"]["main"]["files"]


@pytest.mark.parametrize("rate", [1e-5, 2e-5, 5e-5, 1e-4, 3e-4, 1e-3])
def test_cards_print_hyperparameters_as_given_and_scores_rounded(rate, tmp_path):
    from toolkit._card import write_finetune_model_card

    card = write_finetune_model_card(
        tmp_path,
        task="text classification",
        pipeline_tag="text-classification",
        languages=["en"],
        base_model=str(tmp_path),
        labels=["a", "b"],
        params=1000,
        data_description="d",
        hyperparameters={"learning rate": rate},
        metrics={"test accuracy": 0.912345678},
        command="python recipes/train_classifier.py",
        usage="",
    )
    text = (tmp_path / "README.md").read_text()
    assert f"| learning rate | {rate!r} |" in text and "| test accuracy | 0.9123 |" in text
    assert card.data.base_model is None  # a local directory is no hub base_model


def test_base_model_is_a_hub_id_only(tmp_path):
    from toolkit._card import hub_model_id

    assert hub_model_id("bert-base-chinese") == "bert-base-chinese"
    assert hub_model_id("alice/tiny-zh") == "alice/tiny-zh"
    assert hub_model_id(str(tmp_path)) is None and hub_model_id("./out/mini") is None
    assert hub_model_id("out/mini/checkpoint-3") is None
