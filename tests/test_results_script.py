"""benchmarks/results.py runs end to end on project-written data (a few steps per stage)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))

import results  # noqa: E402


def test_results_script_smoke(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{results.MARK_START}\nold\n{results.MARK_END}\noutro\n", encoding="utf-8")
    out = results.main(
        [
            "--smoke",
            "--presets",
            "tiny",
            "--languages",
            "zh",
            "--output_dir",
            str(tmp_path / "r"),
            "--readme",
            str(readme),
        ]
    )
    (row,) = out["rows"]
    assert row["pretrain"]["tokens_seen"] > 0 and row["pretrain"]["curve"]
    assert row["command"].startswith("python benchmarks/results.py --presets tiny --languages zh")
    assert "--smoke" in row["command"] and row["hardware"].endswith("cores")
    assert row["pretrain"]["command"].startswith("python recipes/pretrain.py")
    assert [t["task"] for t in row["tasks"]] == ["chnsenticorp", "msra"]
    for t in row["tasks"]:
        assert 0.0 <= t["pretrained"] <= 1.0 and 0.0 <= t["random_init"] <= 1.0
        assert t["margin"] == t["pretrained"] - t["random_init"]
        assert "--model_name_or_path" in t["pretrained_command"]
        assert t["pretrained_seconds"] > 0 and t["random_init_seconds"] > 0
        assert all(r["train_loss"] > 0 for r in t["runs"])  # recorded per run, from the recipe's metrics
    saved = json.loads((tmp_path / "r" / "results.json").read_text())
    saved_copy = tmp_path / "first.json"
    saved_copy.write_text(json.dumps(saved), encoding="utf-8")
    assert saved["table"].count("\n") == 1 + len(row["tasks"])  # header + separator + one line per task
    assert (tmp_path / "r" / "pretrain_curves.png").is_file()
    text = readme.read_text()
    assert (
        "old" not in text
        and "| zh | tiny |" in text
        and text.startswith("intro")
        and text.rstrip().endswith("outro")
    )

    # --resume with a second seed: pretraining and the seed-42 fine-tuning runs are reused, not rerun.
    resumed = results.main(
        ["--smoke", "--presets", "tiny", "--languages", "zh", "--output_dir", str(tmp_path / "r")]
        + ["--seeds", "42", "7", "--resume"]
    )["rows"][0]
    assert resumed["pretrain"] == row["pretrain"]  # same record, wall time included: not retrained
    assert "--seeds 42 7" in resumed["command"] and "--resume" not in resumed["command"]
    for before, after in zip(row["tasks"], resumed["tasks"], strict=True):
        first = {(r["label"], r["seed"]): r for r in before["runs"]}
        again = {(r["label"], r["seed"]): r for r in after["runs"]}
        assert set(again) == {(label, s) for label in ("pretrained", "random_init") for s in (42, 7)}
        for key, run in first.items():
            assert again[key] == run  # reused: same score, same recorded seconds
        assert "--seed 7" in again["pretrained", 7]["command"]
        assert len(after["margins_per_seed"]) == 2
        assert after["pretrained"] == (again["pretrained", 42]["score"] + again["pretrained", 7]["score"]) / 2
    assert "2 seeds" in json.loads((tmp_path / "r" / "results.json").read_text())["table"]

    # A pretraining rerun with another setting writes new weights under the same directory name, so the
    # pretrained row's fine-tuning commands are unchanged: --resume must rerun them (their starting checkpoint
    # changed). The random-init twin keeps its weights; its runs are reused exactly when its retrained
    # tokenizer came out the same (the WordPiece trainer does not promise that).
    changed = results.main(
        ["--smoke", "--presets", "tiny", "--languages", "zh", "--output_dir", str(tmp_path / "r")]
        + ["--seeds", "42", "7", "--pretrain_steps", "6", "--resume"]
    )["rows"][0]
    assert changed["pretrain"]["command"] != resumed["pretrain"]["command"]
    for before, after in zip(resumed["tasks"], changed["tasks"], strict=True):
        first = {(r["label"], r["seed"]): r for r in before["runs"]}
        again = {(r["label"], r["seed"]): r for r in after["runs"]}
        for seed in (42, 7):
            old_run, new_run = first["pretrained", seed], again["pretrained", seed]
            assert new_run["command"] == old_run["command"]
            assert new_run.get("start_sha256") != old_run.get("start_sha256")  # rerun, not reused
            old_twin, new_twin = first["random_init", seed], again["random_init", seed]
            if new_twin["start_sha256"] == old_twin["start_sha256"]:
                assert new_twin == old_twin

    # --merge renders rows run separately (one command per row) into one table without training anything.
    merged_readme = tmp_path / "MERGED.md"
    merged_readme.write_text(f"{results.MARK_START}\n{results.MARK_END}\n", encoding="utf-8")
    other = json.loads(json.dumps(saved))
    other["rows"][0]["language"], other["rows"][0]["preset"] = "en", "mini"
    (tmp_path / "other.json").write_text(json.dumps(other), encoding="utf-8")
    merged = results.main(
        [
            "--merge",
            str(saved_copy),
            str(tmp_path / "other.json"),
            "--output_dir",
            str(tmp_path / "m"),
            "--readme",
            str(merged_readme),
        ]
    )
    assert [(r["language"], r["preset"]) for r in merged["rows"]] == [("zh", "tiny"), ("en", "mini")]
    assert merged["table"].count("\n") == 1 + 2 * len(row["tasks"])
    assert "| en | mini |" in merged_readme.read_text() and (tmp_path / "m" / "pretrain_curves.png").is_file()


def test_start_digest_covers_weights_config_and_tokenizer(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    for name in results.START_FILES:
        (model / name).write_bytes(name.encode())
    before = results.start_digest(model)
    assert before == results.start_digest(model)  # deterministic
    for name in results.START_FILES:
        (model / name).write_bytes(b"changed")
        assert results.start_digest(model) != before, name
        (model / name).write_bytes(name.encode())
    assert results.start_digest(tmp_path / "missing") is None  # no checkpoint there


def test_random_twin_starts_positions_as_its_pretraining_did(tiny_mlm_dir, tmp_path):
    import torch
    from transformers import AutoTokenizer, BertForMaskedLM

    from toolkit import init_position_embeddings, sinusoidal_positions

    def positions(path):
        return BertForMaskedLM.from_pretrained(path).bert.embeddings.position_embeddings.weight.detach()

    plain = results.random_twin(tiny_mlm_dir, tmp_path / "plain_twin")
    assert not hasattr(BertForMaskedLM.from_pretrained(plain).config, "position_init")
    assert positions(plain).std().item() == pytest.approx(0.02, rel=0.1)  # BERT's normal init

    sine = BertForMaskedLM.from_pretrained(tiny_mlm_dir)
    init_position_embeddings(sine, "sinusoidal", 0.03)
    with torch.no_grad():  # as pretraining would: the saved table has moved away from its start
        sine.bert.embeddings.position_embeddings.weight.add_(1.0)
    sine.save_pretrained(tmp_path / "sine")
    AutoTokenizer.from_pretrained(tiny_mlm_dir).save_pretrained(tmp_path / "sine")
    twin = results.random_twin(tmp_path / "sine", tmp_path / "sine_twin")
    table = positions(twin)
    torch.testing.assert_close(table, sinusoidal_positions(*table.shape, rms=0.03))  # the start, not the end
    assert BertForMaskedLM.from_pretrained(twin).config.position_init == "sinusoidal"


def test_pretraining_time_of_a_resumed_run_is_estimated_from_its_last_call():
    whole = {"train_tokens_seen": 1000, "train_tokens_this_run": 1000, "train_runtime": 10.0}
    assert results.pretrain_timing(whole, 12.0) == {"wall_seconds": 12.0, "tokens_per_second": 100.0}
    # Resumed at step 30 for the last 400 tokens: 400 / 8 s = 50 tokens/s, not 1000 / 8; the whole run at that
    # rate is 20 s, plus this call's 2 s of start-up.
    resumed = {**whole, "train_tokens_this_run": 400, "train_runtime": 8.0, "resumed_from_step": 30}
    timing = results.pretrain_timing(resumed, 10.0)
    assert timing == {
        "wall_seconds": 22.0,
        "tokens_per_second": 50.0,
        "wall_seconds_estimated": True,
        "resumed_from_step": 30,
    }
    # Metrics written before train_tokens_this_run existed: every token was this call's.
    assert (
        results.pretrain_timing({"train_tokens_seen": 500, "train_runtime": 5.0}, 6.0)["tokens_per_second"]
        == 100
    )
    row = {
        "language": "en",
        "preset": "mini",
        "pretrain": {
            "params": 7.5e6,
            "tokens_seen": 4.4e7,
            "eval_loss": 4.0,
            "eval_perplexity": 54.6,
            **timing,
        },
        "tasks": [
            {
                "task": "sst2",
                "split": "validation",
                "metric": "accuracy",
                "pretrained": 0.8,
                "random_init": 0.79,
                "margin": 0.01,
                "runs": [],
            }
        ],
    }
    assert "| ≈0 min | 50 |" in results.render_table([row])
    assert "| 0 min | 50 |" in results.render_table(
        [{**row, "pretrain": {**row["pretrain"], "wall_seconds_estimated": False}}]
    )


def test_results_merge_rejects_unreadable_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{}", encoding="utf-8")
    with pytest.raises(SystemExit, match="cannot read rows"):
        results.main(["--merge", str(bad), "--output_dir", str(tmp_path / "out")])


def test_learning_rate_grid_uses_the_configs_rate_once():
    opts = argparse.Namespace(learning_rates=[3e-4, 1e-3, 0.001])
    # conll2003.yaml's own rate (0.001) runs without an override (None), and only once.
    conll, sst2, msra = (
        results.task_config("conll2003", "ner"),
        results.task_config("sst2", "classify"),
        results.task_config("msra", "ner"),
    )
    assert results.learning_rate_grid("conll2003", "test", conll, opts) == [3e-4, None]
    # sst2.yaml scores GLUE dev as its test split and holds out part of training to choose on.
    assert sst2["validation_split"] > 0 and "validation_file" not in sst2
    assert sst2["test_file"].endswith("dev.jsonl")
    assert results.learning_rate_grid("sst2", "test", sst2, opts) == [3e-4, None]
    # A task that reports its validation split never chooses on it.
    assert results.learning_rate_grid("sst2", "validation", sst2, opts) == [None]
    assert msra["validation_split"] > 0 and "validation_file" not in msra  # a held-out part chooses
    assert results.learning_rate_grid("msra", "test", msra, opts) == [3e-4, None]
    assert results.config_rate(msra) == 0.001
    no_dev = {key: value for key, value in msra.items() if key != "validation_split"}
    assert results.learning_rate_grid("msra", "test", no_dev, opts) == [None]  # nothing to choose on
    # A task's own grid replaces the common one for that task only.
    opts = argparse.Namespace(learning_rates=["3e-4", "1e-3", "msra=1e-3,3e-3"])
    assert results.learning_rate_grid("msra", "test", msra, opts) == [None, 3e-3]
    assert results.learning_rate_grid("conll2003", "test", conll, opts) == [3e-4, None]


@pytest.mark.parametrize(
    "item", ["msra=", "nosuchtask=1e-3", "fast", "msra=1e-3,x", "-1e-3", "nan", "inf", "=1e-3", "msra=0"]
)
def test_rate_grid_rejects_malformed_items(item):
    with pytest.raises(SystemExit, match="--learning_rates"):
        results.parse_rate_grid(["1e-3", item])


def test_results_learning_rate_grid_selects_on_validation(tmp_path, monkeypatch):
    # Fake fine-tuning: dev and test disagree on the best rate, so reporting the wrong split or the wrong
    # run changes the figures. (pretrained?, rate) -> (validation score, test score)
    scores = {(True, 1e-3): (0.5, 0.9), (True, 3e-2): (0.7, 0.6), (False, 1e-3): (0.6, 0.4)}
    scores[False, 3e-2] = (0.3, 0.8)
    calls = []

    def fake_main(argv):
        rate = float(argv[argv.index("--learning_rate") + 1]) if "--learning_rate" in argv else None
        pretrained = "pretrain_" in argv[argv.index("--model_name_or_path") + 1]
        dev, test = scores.get((pretrained, rate), (0.5, 0.5))
        calls.append((pretrained, rate))
        metrics = {
            "validation": {"overall_f1": dev, "accuracy": dev},
            "test": {"overall_f1": test, "accuracy": test},
        }
        out = Path(argv[argv.index("--output_dir") + 1])
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
        return metrics

    monkeypatch.setattr(results.train_ner, "main", fake_main)
    monkeypatch.setattr(results.train_classifier, "main", fake_main)
    argv = ["--smoke", "--presets", "tiny", "--languages", "en", "--output_dir", str(tmp_path / "g")]
    argv += ["--learning_rates", "1e-3", "3e-2"]
    (row,) = results.main(argv)["rows"]
    assert "--learning_rates 0.001 0.03" in row["command"]
    by_task = {t["task"]: t for t in row["tasks"]}
    conll, sst2 = by_task["conll2003"], by_task["sst2"]
    # 2 tasks x 2 rows x 2 rates
    assert len(conll["runs"]) == 4 and len(sst2["runs"]) == 4 and len(calls) == 8
    assert (sst2["pretrained"], sst2["random_init"]) == (0.6, 0.4)  # the same choice on sst2
    # Chosen on dev, reported on test: pretrained picks 3e-2 (test 0.6), random init picks 1e-3 (test 0.4).
    assert (conll["pretrained"], conll["random_init"]) == (0.6, 0.4)
    assert conll["pretrained_learning_rates"] == [3e-2] and conll["random_init_learning_rates"] == [1e-3]
    assert conll["margin"] == 0.6 - 0.4
    assert (
        "--learning_rate 0.03"
        in next(r for r in conll["runs"] if r["selected"] and r["label"] == "pretrained")["command"]
    )
    line = next(line for line in results.render_table([row]).splitlines() if "conll2003" in line)
    assert "60.00% (lr 0.03)" in line and "40.00% (lr 0.001)" in line

    # --resume with runs recorded without their validation score (older results.json): nothing is rerun,
    # the scores are read back from each run's metrics.json and the same runs are chosen.
    saved = json.loads((tmp_path / "g" / "results.json").read_text(encoding="utf-8"))
    for task in saved["rows"][0]["tasks"]:
        for run in task["runs"]:
            run.pop("validation_score", None)
    (tmp_path / "g" / "results.json").write_text(json.dumps(saved), encoding="utf-8")
    calls.clear()
    (again,) = results.main([*argv, "--resume"])["rows"]
    assert calls == []
    conll = next(t for t in again["tasks"] if t["task"] == "conll2003")
    assert (conll["pretrained"], conll["random_init"]) == (0.6, 0.4)


def test_results_resume_after_a_crash_mid_row(tmp_path, monkeypatch):
    """Each finished stage is recorded in progress.json at once: after a crash in the middle of a row
    (results.json not yet written), --resume reruns only what had not finished."""
    calls, crash_at = [], [3]

    def fake_main(argv):
        calls.append(argv[argv.index("--output_dir") + 1])
        if len(calls) == crash_at[0]:
            raise RuntimeError("machine shut down")
        metrics = {
            "validation": {"overall_f1": 0.5, "accuracy": 0.5},
            "test": {"overall_f1": 0.5, "accuracy": 0.5},
        }
        return metrics

    pretrainings = []
    real_pretrain = results.pretrain.main
    monkeypatch.setattr(results.pretrain, "main", lambda argv: pretrainings.append(1) or real_pretrain(argv))
    monkeypatch.setattr(results.train_ner, "main", fake_main)
    monkeypatch.setattr(results.train_classifier, "main", fake_main)
    out = tmp_path / "r"
    argv = ["--smoke", "--presets", "tiny", "--languages", "en", "--output_dir", str(out)]
    with pytest.raises(RuntimeError, match="shut down"):
        results.main(argv)
    assert not (out / "results.json").exists()
    progress = json.loads((out / results.PROGRESS).read_text(encoding="utf-8"))
    assert len(progress["pretrain"]) == 1 and len(progress["finetune"]) == 2
    finished, crashed = calls[:2], calls[2]

    calls.clear()
    crash_at[0] = 0  # no crash this time
    (row,) = results.main([*argv, "--resume"])["rows"]
    assert len(pretrainings) == 1  # the pretraining was reused, not rerun
    assert calls[0] == crashed and not set(finished) & set(calls)  # only unfinished runs ran
    assert len(calls) == 2 and sum(len(t["runs"]) for t in row["tasks"]) == 4
    assert row["pretrain"] == progress["pretrain"][0]


def test_ner_runs_recorded_without_their_decoding_are_rerun(monkeypatch, tmp_path):
    """NER runs recorded before constrained decoding (no "decoding" in the record) were decoded tag by tag:
    --resume reruns them; a run recorded with the same decoding is reused."""
    calls = []

    def fake_main(argv):
        calls.append(argv)
        return {"test": {"overall_f1": 0.7, "decoding": "most probable valid BIO sequence"}}

    monkeypatch.setattr(results.train_ner, "main", fake_main)
    opts = argparse.Namespace(finetune_steps=None)
    flags = results.finetune_flags("conll2003", "ner", tmp_path / "m", tmp_path / "o", opts, None)
    key = (results._cmd("train_ner", flags), results.config_digest(flags), "abc")
    old = {"label": "pretrained", "seed": 42, "score": 0.5, "seconds": 1.0, "command": key[0]}
    common = dict(label="pretrained", seed=42, split="test", metric="overall_f1", start_sha256="abc")
    run = results.finetune_or_reuse(results.train_ner, flags, done={key: old}, **common)
    assert len(calls) == 1 and run["score"] == 0.7 and run["decoding"] == "most probable valid BIO sequence"
    again = results.finetune_or_reuse(results.train_ner, flags, done={key: run}, **common)
    assert len(calls) == 1 and again == run  # same decoding: reused
    off = [*flags, "--constrained_decoding", "false"]
    assert results.ner_decoding(results.train_ner, off) == "best tag per word"
    assert results.ner_decoding(results.train_classifier, flags) is None
