"""Offline metrics: the evaluate modules shipped in ``toolkit/metrics/`` loaded by path (no hub access)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

METRICS_DIR = Path(__file__).parent / "metrics"


@cache
def load_metric(name: str, config_name: str | None = None):
    """Load a shipped metric (``"entity_f1"`` or ``"classification_scores"``; ``config_name="multilabel"``
    for multi-label classification) with ``evaluate.load`` by path, so it works offline.

    Example:
        >>> load_metric("entity_f1").compute(predictions=[["B-PER", "O"]], references=[["B-PER", "O"]])["overall_f1"]
        1.0
    """
    import evaluate

    path = METRICS_DIR / name
    if not (path / f"{name}.py").is_file():
        raise ValueError(
            f"no shipped metric {name!r}; available: {sorted(p.name for p in METRICS_DIR.iterdir() if p.is_dir())}"
        )
    return evaluate.load(str(path), config_name)
