"""Helpers shared by the benchmark scripts (not part of the library)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from transformers import TrainerCallback

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS_DIR = ROOT / "benchmarks" / "results"
RECIPES = ROOT / "recipes"


class StepTimer(TrainerCallback):
    """Wall time of every optimizer step (waiting for the GPU first, where there is one)."""

    def __init__(self):
        self.times: list[float] = []
        self._start = 0.0

    @staticmethod
    def _sync() -> None:
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()

    def on_step_begin(self, args, state, control, **kwargs):
        self._sync()
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self._sync()
        self.times.append(time.perf_counter() - self._start)


def data_missing(paths) -> bool:
    """Report (and return True) when benchmark data from ../shared/data is absent."""
    missing = [str(p) for p in paths if not Path(p).exists()]
    if missing:
        print(f"benchmark data not found ({missing[0]}): it lives in ../shared/data", file=sys.stderr)
    return bool(missing)


def write_results(result: dict, path: str | Path) -> None:
    """Write the figures as JSON and say where."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"written to {path}")
