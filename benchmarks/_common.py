"""Helpers shared by the benchmark scripts (not part of the library)."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path
from types import ModuleType

from transformers import TrainerCallback

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS_DIR = ROOT / "benchmarks" / "results"
RECIPES = ROOT / "recipes"


def load_recipe(name: str) -> ModuleType:
    """The recipe ``recipes/{name}.py`` as a module: ``recipes.{name}`` where ``recipes/`` is a package, else
    loaded from its file.

    A module loaded from its file is registered in ``sys.modules`` under ``name`` before it runs (its
    dataclasses need that), so a second call gets the same module object.

    Args:
        name: the recipe's file name without ``.py`` (``"pretrain"``, ``"train_ner"``).

    Returns:
        The executed module; its ``main(argv)`` runs the recipe.

    Raises:
        ImportError: no such recipe, or another module of that name is already imported.

    Example:
        >>> load_recipe("pretrain").main.__name__
        'main'
    """
    if (RECIPES / "__init__.py").is_file():
        return importlib.import_module(f"recipes.{name}")
    path = RECIPES / f"{name}.py"
    loaded = sys.modules.get(name)
    if loaded is not None:
        if Path(getattr(loaded, "__file__", None) or "").resolve() == path.resolve():
            return loaded
        raise ImportError(f"cannot load {path}: another module named {name!r} is already imported")
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None or not path.is_file():
        raise ImportError(f"no recipe {name!r}: {path} does not exist")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


class StepTimer(TrainerCallback):
    """Wall time of every optimizer step (waiting for the GPU, where there is one)."""

    def __init__(self):
        self.times: list[float] = []

    @staticmethod
    def _sync():
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()

    def on_step_begin(self, args, state, control, **kwargs):
        self._sync()
        self._t = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self._sync()
        self.times.append(time.perf_counter() - self._t)


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
