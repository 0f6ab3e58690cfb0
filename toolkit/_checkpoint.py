"""Checkpoint files: the names weights are saved under, reading a state dict from any of them, and the bare
encoder under a task head."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ._errors import ToolkitInputError

# Weight files a model directory may hold, in the order transformers prefers them.
WEIGHT_FILES = (
    "model.safetensors",
    "pytorch_model.bin",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
)


def base_model(model: torch.nn.Module) -> torch.nn.Module:
    """The bare encoder under a task head (``model.bert`` for a ``BertFor...``), or the model itself."""
    return getattr(model, getattr(model, "base_model_prefix", ""), model)


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a ``.safetensors`` file, or a PyTorch pickle (``.bin``/``.pt``) with ``weights_only=True``.

    Raises:
        ToolkitInputError: a missing or unreadable file.
    """
    path = Path(path)
    if not path.is_file():
        raise ToolkitInputError(f"weights file {str(path)!r} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any reader failure becomes one clear message
        raise ToolkitInputError(f"cannot read weights from {str(path)!r}: {err}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ToolkitInputError(f"{str(path)!r} does not hold a state dict")
    return state
