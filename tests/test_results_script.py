"""benchmarks/results.py runs end to end on project-written data (a few steps per stage)."""

from __future__ import annotations

import json
import sys

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
    assert row["pretrain"]["command"].startswith("python recipes/pretrain.py")
    assert [t["task"] for t in row["tasks"]] == ["chnsenticorp", "msra"]
    for t in row["tasks"]:
        assert 0.0 <= t["pretrained"] <= 1.0 and 0.0 <= t["random_init"] <= 1.0
        assert t["margin"] == t["pretrained"] - t["random_init"]
        assert "--model_name_or_path" in t["pretrained_command"]
    saved = json.loads((tmp_path / "r" / "results.json").read_text())
    assert saved["table"].count("\n") == 1 + len(row["tasks"])  # header + separator + one line per task
    assert (tmp_path / "r" / "pretrain_curves.png").is_file()
    text = readme.read_text()
    assert (
        "old" not in text
        and "| zh | tiny |" in text
        and text.startswith("intro")
        and text.rstrip().endswith("outro")
    )
