"""The public API: everything in toolkit.__all__ exists, and every public name of the private modules is
either exported or deliberately private."""

from __future__ import annotations

import importlib
import pkgutil

import toolkit


def test_all_names_exist():
    missing = [name for name in toolkit.__all__ if not hasattr(toolkit, name)]
    assert not missing


def test_public_functions_and_classes_are_exported():
    unexported = []
    for info in pkgutil.iter_modules(toolkit.__path__):
        if not info.name.startswith("_") or info.name == "_demo":
            continue
        module = importlib.import_module(f"toolkit.{info.name}")
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            if callable(obj) and name not in toolkit.__all__:
                unexported.append(f"{info.name}.{name}")
    assert not unexported, f"public but not in toolkit.__all__: {unexported}"
