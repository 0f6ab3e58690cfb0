"""benchmarks/results.py runs end to end on project-written data (a few steps per stage)."""

from __future__ import annotations

import json
import sys

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


def test_results_merge_rejects_unreadable_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{}", encoding="utf-8")
    with pytest.raises(SystemExit, match="cannot read rows"):
        results.main(["--merge", str(bad), "--output_dir", str(tmp_path / "out")])


def test_results_learning_rate_grid_selects_on_validation(tmp_path):
    out = results.main(
        ["--smoke", "--presets", "tiny", "--languages", "en", "--output_dir", str(tmp_path / "g")]
        + ["--learning_rates", "1e-3", "3e-2"]
    )
    (row,) = out["rows"]
    assert "--learning_rates 0.001 0.03" in row["command"]
    by_task = {t["task"]: t for t in row["tasks"]}
    # sst2 reports its validation split: choosing a rate on it would flatter both rows, so no grid there.
    assert [r["learning_rate"] for r in by_task["sst2"]["runs"]] == [None, None]
    conll = by_task["conll2003"]
    assert len(conll["runs"]) == 4  # two rows x two rates, one seed
    for label in ("pretrained", "random_init"):
        mine = [r for r in conll["runs"] if r["label"] == label]
        assert sorted(r["learning_rate"] for r in mine) == [1e-3, 3e-2]
        assert "--learning_rate 0.03" in next(r for r in mine if r["learning_rate"] == 3e-2)["command"]
        (chosen,) = [r for r in mine if r["selected"]]
        assert chosen["validation_score"] == max(r["validation_score"] for r in mine)
        assert conll[label] == chosen["score"] and conll[f"{label}_learning_rates"] == [
            chosen["learning_rate"]
        ]
    assert conll["margin"] == conll["pretrained"] - conll["random_init"]
    line = next(line for line in out["table"].splitlines() if "conll2003" in line)
    assert line.count("(lr ") == 2
