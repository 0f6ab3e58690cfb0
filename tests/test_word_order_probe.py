"""benchmarks/word_order_probe.py: the shuffled-positions loss moves each label with its token, so a model
without position information scores the same on shuffled blocks (gap 0) and one with it does not."""

from __future__ import annotations

import json
import sys

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))

import word_order_probe  # noqa: E402


def test_word_order_gap_is_zero_only_for_a_model_blind_to_order(tiny_mlm_dir, corpus_dir, tmp_path):
    import torch
    from transformers import AutoTokenizer, BertForMaskedLM

    files = [str(corpus_dir / "valid.txt")]
    result = word_order_probe.main(
        [
            "--model",
            str(tiny_mlm_dir),
            "--files",
            *files,
            "--blocks",
            "20",
            "--block_size",
            "32",
            "--output",
            str(tmp_path / "p.json"),
        ]
    )
    assert json.loads((tmp_path / "p.json").read_text()) == json.loads(json.dumps(result))
    assert result["n_blocks"] > 0 and result["n_labelled"] > 0
    assert result["word_order_gap"] == round(
        result["whole_word_loss_shuffled"] - result["whole_word_loss"], 4
    )
    assert abs(result["word_order_gap"]) > 1e-3  # random position embeddings: order changes the output

    blind = tmp_path / "blind"
    model = BertForMaskedLM.from_pretrained(tiny_mlm_dir)
    with torch.no_grad():
        model.bert.embeddings.position_embeddings.weight.zero_()
    model.save_pretrained(blind)
    AutoTokenizer.from_pretrained(tiny_mlm_dir).save_pretrained(blind)
    orderless = word_order_probe.probe(str(blind), files, n_blocks=20, block_size=32)
    assert abs(orderless["word_order_gap"]) < 1e-3
    assert orderless["n_labelled"] == result["n_labelled"]  # same masks: same positions scored
