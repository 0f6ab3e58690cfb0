"""`make demo`'s job runs end to end (with few pretraining steps) and writes its summary."""

from __future__ import annotations

import json

import pytest
from conftest import scores_from_prediction_files

from recipes import demo


def test_demo_end_to_end(tmp_path, capsys):
    summary = demo.main(["--output_dir", str(tmp_path), "--max_steps", "20"])
    out = capsys.readouterr().out
    assert "[4/4] done" in out and "->" in out
    for name in ("pretrained", "classifier", "ner"):
        assert (tmp_path / name / "model.safetensors").is_file()
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved == summary
    # The reported scores are those of the predictions the demo wrote.
    assert summary["classifier_test_accuracy"] == pytest.approx(
        scores_from_prediction_files(tmp_path / "classifier")["accuracy"]
    )
    assert summary["ner_test_entity_f1"] == pytest.approx(
        scores_from_prediction_files(tmp_path / "ner")["overall_f1"]
    )
