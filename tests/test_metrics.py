"""The shipped evaluate modules agree with scikit-learn and seqeval."""

from __future__ import annotations

import random

import pytest

from toolkit._metrics import load_metric

sklearn_metrics = pytest.importorskip("sklearn.metrics")


def _random_tags(rng, n, types=("PER", "LOC", "ORG")):
    return [rng.choice(["O", "O", "O"] + [f"{p}-{t}" for p in "BI" for t in types]) for _ in range(n)]


def test_classification_scores_equal_sklearn():
    rng = random.Random(0)
    gold = [rng.randrange(4) for _ in range(300)]
    pred = [g if rng.random() < 0.6 else rng.randrange(4) for g in gold]
    scores = load_metric("classification_scores").compute(predictions=pred, references=gold)
    assert scores["accuracy"] == pytest.approx(sklearn_metrics.accuracy_score(gold, pred))
    assert scores["macro_f1"] == pytest.approx(sklearn_metrics.f1_score(gold, pred, average="macro"))
    p, r, f, s = sklearn_metrics.precision_recall_fscore_support(gold, pred, zero_division=0)
    for c in range(4):
        assert scores["per_class"][c]["precision"] == pytest.approx(p[c])
        assert scores["per_class"][c]["recall"] == pytest.approx(r[c])
        assert scores["per_class"][c]["f1"] == pytest.approx(f[c])
        assert scores["per_class"][c]["support"] == s[c]
    assert scores["confusion_matrix"] == sklearn_metrics.confusion_matrix(gold, pred).tolist()


def test_multilabel_scores_equal_sklearn():
    rng = random.Random(1)
    gold = [[int(rng.random() < 0.3) for _ in range(5)] for _ in range(200)]
    pred = [[g if rng.random() < 0.8 else 1 - g for g in row] for row in gold]
    scores = load_metric("classification_scores", "multilabel").compute(predictions=pred, references=gold)
    assert scores["micro_f1"] == pytest.approx(sklearn_metrics.f1_score(gold, pred, average="micro"))
    assert scores["macro_f1"] == pytest.approx(
        sklearn_metrics.f1_score(gold, pred, average="macro", zero_division=0)
    )
    assert scores["accuracy"] == pytest.approx(sklearn_metrics.accuracy_score(gold, pred))


@pytest.mark.parametrize("mode", ["default", "strict"])
def test_entity_f1_equals_seqeval(mode):
    seqeval_metrics = pytest.importorskip("seqeval.metrics")
    from seqeval.scheme import IOB2

    rng = random.Random(2)
    gold = [_random_tags(rng, rng.randint(1, 25)) for _ in range(200)]
    pred = [
        [t if rng.random() < 0.7 else rng.choice(["O", "B-PER", "I-PER", "I-LOC"]) for t in row]
        for row in gold
    ]
    kwargs = {"mode": "strict", "scheme": IOB2} if mode == "strict" else {}
    ours = load_metric("entity_f1").compute(predictions=pred, references=gold, mode=mode)
    assert ours["overall_f1"] == pytest.approx(seqeval_metrics.f1_score(gold, pred, **kwargs))
    assert ours["overall_precision"] == pytest.approx(seqeval_metrics.precision_score(gold, pred, **kwargs))
    assert ours["overall_recall"] == pytest.approx(seqeval_metrics.recall_score(gold, pred, **kwargs))
    report = seqeval_metrics.classification_report(gold, pred, output_dict=True, **kwargs)
    for typ in ("PER", "LOC", "ORG"):
        assert ours[typ]["f1"] == pytest.approx(report[typ]["f1-score"])
        assert ours[typ]["number"] == report[typ]["support"]
