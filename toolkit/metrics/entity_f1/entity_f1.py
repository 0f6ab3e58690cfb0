"""Entity-level precision / recall / F1 for BIO-tagged sequences (seqeval-compatible), as an evaluate module.

Shipped inside the toolkit and loaded by path, so it works offline:
``evaluate.load(".../toolkit/metrics/entity_f1")``. Modes: ``default`` (conlleval rules: an ``I-X`` after
something other than ``X`` starts an entity) and ``strict`` (IOB2: an entity must start with ``B-X`` and
continue with ``I-X``; anything else is not an entity).
"""

import datasets
import evaluate

_DESCRIPTION = (
    "Entity-level precision, recall and F1 (overall and per type) for BIO tags; seqeval-compatible."
)
_KWARGS = """
Args:
    predictions: list of tag sequences, e.g. [["B-PER", "I-PER", "O"]].
    references: list of gold tag sequences of the same lengths.
    mode: "default" or "strict".
Returns:
    overall_precision, overall_recall, overall_f1, overall_accuracy (token level), and for each type a dict
    with precision, recall, f1 and number (gold entities of that type).
"""


def get_entities(tags, mode="default"):
    """Entities as (type, start, end_exclusive) tuples."""
    entities = []
    start, kind = None, None
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, _, typ = tag.partition("-") if tag != "O" else ("O", "", "")
        if mode == "strict":
            ends = start is not None and not (prefix == "I" and typ == kind)
            if ends:
                entities.append((kind, start, i))
                start, kind = None, None
            if prefix == "B":
                start, kind = i, typ
        else:
            ends = start is not None and (prefix in ("O", "B") or typ != kind)
            if ends:
                entities.append((kind, start, i))
                start, kind = None, None
            if prefix in ("B", "I") and start is None:
                start, kind = i, typ
    return entities


def entity_scores(predictions, references, mode="default"):
    if mode not in ("default", "strict"):
        raise ValueError(f"mode must be 'default' or 'strict', got {mode!r}")
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predicted sequences but {len(references)} references")
    true_pos, n_pred, n_gold = {}, {}, {}
    correct_tokens = total_tokens = 0
    for k, (pred, gold) in enumerate(zip(predictions, references, strict=True)):
        if len(pred) != len(gold):
            raise ValueError(f"sequence {k}: {len(pred)} predicted tags but {len(gold)} gold tags")
        correct_tokens += sum(p == g for p, g in zip(pred, gold, strict=True))
        total_tokens += len(gold)
        p_set, g_set = set(get_entities(pred, mode)), set(get_entities(gold, mode))
        for typ, _, _ in p_set:
            n_pred[typ] = n_pred.get(typ, 0) + 1
        for typ, _, _ in g_set:
            n_gold[typ] = n_gold.get(typ, 0) + 1
        for typ, _, _ in p_set & g_set:
            true_pos[typ] = true_pos.get(typ, 0) + 1

    def prf(tp, np_, ng):
        p = tp / np_ if np_ else 0.0
        r = tp / ng if ng else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        return p, r, f

    out = {}
    for typ in sorted(set(n_pred) | set(n_gold)):
        p, r, f = prf(true_pos.get(typ, 0), n_pred.get(typ, 0), n_gold.get(typ, 0))
        out[typ] = {"precision": p, "recall": r, "f1": f, "number": n_gold.get(typ, 0)}
    p, r, f = prf(sum(true_pos.values()), sum(n_pred.values()), sum(n_gold.values()))
    out.update(
        {
            "overall_precision": p,
            "overall_recall": r,
            "overall_f1": f,
            "overall_accuracy": correct_tokens / total_tokens if total_tokens else 0.0,
        }
    )
    return out


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class EntityF1(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("string")),
                    "references": datasets.Sequence(datasets.Value("string")),
                }
            ),
        )

    def _compute(self, predictions, references, mode="default"):
        return entity_scores(predictions, references, mode)
