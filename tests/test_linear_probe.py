"""benchmarks.linear_probe: a probe on frozen mean-pooled vectors finds a label that one word decides, and
finds nothing once the training labels are shuffled (so the labels really reach the classifier)."""

from __future__ import annotations

import json
import random

import pytest

from benchmarks import linear_probe

pytest.importorskip("sklearn")


def _write(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def test_probe_separates_a_one_word_label_and_not_shuffled_labels(tiny_mlm_dir, corpus_lines, tmp_path):
    rng = random.Random(0)
    words = {w for line in corpus_lines[:50] for w in line.split() if w.isascii() and w.isalpha()}
    filler = sorted(words - {"capital", "animal"})  # the two label words appear nowhere else

    def rows(n):
        out = []
        for i in range(n):
            label = i % 2
            words = rng.sample(filler, 6) + ["capital" if label else "animal"]
            rng.shuffle(words)
            out.append({"text": " ".join(words), "label": label})
        return out

    train, dev = rows(300), rows(100)
    _write(tmp_path / "train.jsonl", train)
    _write(tmp_path / "dev.jsonl", dev)
    shuffled = [dict(r, label=rng.randint(0, 1)) for r in train]
    _write(tmp_path / "shuffled.jsonl", shuffled)
    flags = ["--model", str(tiny_mlm_dir), "--eval_file", str(tmp_path / "dev.jsonl")]
    result = linear_probe.main(
        [*flags, "--train_file", str(tmp_path / "train.jsonl"), "--output", str(tmp_path / "p.json")]
    )
    assert json.loads((tmp_path / "p.json").read_text()) == json.loads(json.dumps(result))
    assert result["n_train"] == 300 and result["n_eval"] == 100 and result["majority_accuracy"] == 0.5
    (probe,) = result["probes"]
    assert probe["dim"] == 32 and probe["eval_accuracy"] >= 0.9
    noise = linear_probe.main(
        [*flags, "--train_file", str(tmp_path / "shuffled.jsonl"), "--output", str(tmp_path / "n.json")]
    )
    assert noise["probes"][0]["eval_accuracy"] < 0.75
    embeddings = linear_probe.main(
        [
            *flags,
            "--train_file",
            str(tmp_path / "train.jsonl"),
            "--layers",
            "0",
            "--output",
            str(tmp_path / "e.json"),
        ]
    )
    assert embeddings["layers"] == [0] and embeddings["probes"][0]["eval_accuracy"] >= 0.9
    # [CLS] of the embedding layer is the same vector for every sentence: nothing to learn from it.
    cls = linear_probe.main(
        [
            *flags,
            "--train_file",
            str(tmp_path / "train.jsonl"),
            "--layers",
            "0",
            "--pooling",
            "cls",
            "--output",
            str(tmp_path / "c.json"),
        ]
    )
    assert cls["pooling"] == "cls" and cls["probes"][0]["eval_accuracy"] <= 0.6
