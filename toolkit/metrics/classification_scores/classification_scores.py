"""Classification scores as an evaluate module, shipped inside the toolkit and loaded by path (offline).

Single-label: accuracy, macro-F1, per-class precision / recall / F1 / support and the confusion matrix.
Multi-label (config ``multilabel``: predictions and references are 0/1 indicator rows): exact-match
accuracy, micro- and macro-F1 and per-class scores. Numbers equal scikit-learn's (zero_division=0).
"""

import datasets
import evaluate

_DESCRIPTION = (
    "Accuracy, macro-F1, per-class precision/recall/F1 and confusion matrix (scikit-learn compatible)."
)
_KWARGS = """
Args:
    predictions: label ids (single-label) or 0/1 indicator lists (multilabel).
    references: same shape as predictions.
    num_labels: number of classes (default: inferred).
Returns:
    accuracy, macro_f1, (micro_f1 for multilabel), per_class: list of {precision, recall, f1, support},
    confusion_matrix (single-label; rows = gold, columns = predicted).
"""


def _prf(tp, fp, fn):
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def single_label_scores(predictions, references, num_labels=None):
    n = num_labels or (max(list(predictions) + list(references)) + 1 if references else 0)
    matrix = [[0] * n for _ in range(n)]
    for p, g in zip(predictions, references, strict=True):
        matrix[g][p] += 1
    per_class = []
    for c in range(n):
        tp = matrix[c][c]
        fp = sum(matrix[g][c] for g in range(n)) - tp
        fn = sum(matrix[c]) - tp
        p, r, f = _prf(tp, fp, fn)
        per_class.append({"precision": p, "recall": r, "f1": f, "support": sum(matrix[c])})
    present = [c for c in range(n) if per_class[c]["support"] or any(matrix[g][c] for g in range(n))]
    total = len(references)
    return {
        "accuracy": sum(matrix[c][c] for c in range(n)) / total if total else 0.0,
        "macro_f1": sum(per_class[c]["f1"] for c in present) / len(present) if present else 0.0,
        "per_class": per_class,
        "confusion_matrix": matrix,
    }


def multi_label_scores(predictions, references):
    n = len(references[0]) if references else 0
    per_class, tps, fps, fns = [], 0, 0, 0
    for c in range(n):
        tp = sum(1 for p, g in zip(predictions, references, strict=True) if p[c] and g[c])
        fp = sum(1 for p, g in zip(predictions, references, strict=True) if p[c] and not g[c])
        fn = sum(1 for p, g in zip(predictions, references, strict=True) if not p[c] and g[c])
        tps, fps, fns = tps + tp, fps + fp, fns + fn
        p, r, f = _prf(tp, fp, fn)
        per_class.append({"precision": p, "recall": r, "f1": f, "support": tp + fn})
    exact = sum(1 for p, g in zip(predictions, references, strict=True) if list(p) == list(g))
    return {
        "accuracy": exact / len(references) if references else 0.0,
        "macro_f1": sum(c["f1"] for c in per_class) / n if n else 0.0,
        "micro_f1": _prf(tps, fps, fns)[2],
        "per_class": per_class,
    }


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class ClassificationScores(evaluate.Metric):
    def _info(self):
        value = (
            datasets.Sequence(datasets.Value("int32"))
            if self.config_name == "multilabel"
            else datasets.Value("int32")
        )
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS,
            features=datasets.Features({"predictions": value, "references": value}),
        )

    def _compute(self, predictions, references, num_labels=None):
        if self.config_name == "multilabel":
            return multi_label_scores(predictions, references)
        return single_label_scores(predictions, references, num_labels)
