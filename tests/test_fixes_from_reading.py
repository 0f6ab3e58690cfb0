"""The faults a maintainer's reading found (issue 33, item 6), each fixed and pinned here."""

from __future__ import annotations

import json

import pytest
from conftest import tiny_recipe_flags

from recipes import extract_vectors, pretrain, train_classifier, train_ner
from toolkit import NERTagger, ToolkitInputError
from toolkit import extract_vectors as extract
from toolkit.demo import write_demo_labelled


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    return write_demo_labelled(tmp_path_factory.mktemp("labelled"), n=60)


def _quick(out) -> list[str]:
    return ["--output_dir", str(out), "--max_steps", "2", "--per_device_train_batch_size", "8"] + [
        "--report_to", "none", "--save_strategy", "no", "--disable_tqdm", "true"
    ]  # fmt: skip


def _repo(tmp_path, labelled, validation_text: str | None = None):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "train.jsonl").write_text(labelled["topic_train"].read_text(encoding="utf-8"), encoding="utf-8")
    (repo / "validation.jsonl").write_text(
        validation_text or labelled["topic_dev"].read_text(encoding="utf-8"), encoding="utf-8"
    )
    return repo


def test_dry_run_creates_no_hub_repository(hub_env, corpus_dir, tmp_path):
    flags = ["--push_to_hub", "true", "--hub_model_id", "dry", "--dry_run", "true"]
    assert pretrain.main(tiny_recipe_flags(corpus_dir, tmp_path / "o", *flags))["dry_run"]
    assert "alice/dry" not in hub_env.repos


def test_item_pooling_is_checked_and_the_cli_offers_choices(tiny_mlm_dir, corpus_dir, tmp_path):
    with pytest.raises(
        ToolkitInputError, match="pooling of an item's pieces must be one of first, last, mean"
    ):
        extract(tiny_mlm_dir, texts=["北京"], mode="contextual", pooling="cls")
    with pytest.raises(ToolkitInputError, match="invalid choice: 'bogus'"):
        extract_vectors.main(
            ["--checkpoint", str(tiny_mlm_dir), "--input", "x", "--output", "y", "--pooling", "bogus"]
        )


def test_unknown_label_in_a_hub_dataset_is_named_by_split_and_line(tiny_mlm_dir, labelled, tmp_path):
    repo = _repo(tmp_path, labelled, validation_text='{"text": "北京", "label": "never-seen"}\n')
    with pytest.raises(ToolkitInputError, match=r"\[validation\]:1: label 'never-seen'") as err:
        train_classifier.main(
            ["--model_name_or_path", str(tiny_mlm_dir), "--dataset_name", str(repo), *_quick(tmp_path / "o")]
        )
    assert "Dataset(" not in str(err.value)


def test_an_explicit_validation_file_wins_over_the_datasets_split(tiny_mlm_dir, labelled, tmp_path):
    repo = _repo(tmp_path, labelled)
    mine = tmp_path / "mine.jsonl"
    mine.write_text(
        "".join(labelled["topic_dev"].read_text(encoding="utf-8").splitlines(True)[:7]), encoding="utf-8"
    )
    flags = [
        "--model_name_or_path",
        str(tiny_mlm_dir),
        "--dataset_name",
        str(repo),
        "--validation_file",
        str(mine),
    ]
    results = train_classifier.main([*flags, *_quick(tmp_path / "o")])
    assert sum(map(sum, results["validation"]["confusion_matrix"])) == 7


def test_evaluation_without_validation_data_fails_before_training(tiny_mlm_dir, labelled, tmp_path):
    flags = ["--model_name_or_path", str(tiny_mlm_dir), "--train_file", str(labelled["topic_train"])]
    with pytest.raises(ToolkitInputError, match="--eval_strategy steps needs validation data"):
        train_classifier.main([*flags, "--eval_strategy", "steps", *_quick(tmp_path / "o")])
    assert not (tmp_path / "o" / "model.safetensors").exists()


def test_an_unlabelled_ner_test_file_is_predicted_not_refused(tiny_mlm_dir, labelled, tmp_path):
    test = tmp_path / "test.txt"
    blocks = labelled["ner_test"].read_text(encoding="utf-8").strip().split("\n\n")[:5]
    test.write_text("\n\n".join("\n".join(line.split()[0] for line in b.splitlines()) for b in blocks) + "\n")
    flags = [
        "--model_name_or_path",
        str(tiny_mlm_dir),
        "--train_file",
        str(labelled["ner_train"]),
        "--test_file",
        str(test),
    ]
    results = train_ner.main([*flags, "--max_length", "12", "--stride", "3", *_quick(tmp_path / "o")])
    assert "test" not in results  # nothing to score
    predicted = (tmp_path / "o" / "test_predictions.conll").read_text().strip().split("\n\n")
    assert len(predicted) == 5
    # NERTagger predicts with the window the model was fine-tuned with, recorded in its config.
    config = json.loads((tmp_path / "o" / "config.json").read_text())
    assert (config["ner_max_length"], config["ner_stride"]) == (12, 3)
    tagger = NERTagger(tmp_path / "o")
    assert (tagger.max_length, tagger.stride) == (12, 3)


def test_a_missing_relative_checkpoint_gets_the_hint(labelled, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        ToolkitInputError, match="'out/mini' is neither a local directory .*pretrain.py first"
    ):
        train_classifier.main(
            ["--model_name_or_path", "out/mini", "--train_file", str(labelled["topic_train"])] + _quick("o")
        )
