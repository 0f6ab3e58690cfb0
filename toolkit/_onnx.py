"""ONNX Runtime inference for the toolkit's ONNX exports: :class:`OnnxModel` (an exported model called like a
Hugging Face model), reading an export's ``toolkit_export.json``, the backend a loader picks for a directory, the
optional-dependency check, and the CPU facts (cores, int8 instruction sets).

This is all that loading an export needs, and it imports none of the export's modules: the export itself is
:mod:`toolkit._onnx_export` (graph export, fusions, int8 quantization, and why these libraries), the source model's
directory :mod:`toolkit._onnx_source`, the accuracy gate :mod:`toolkit._onnx_gate`.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from ._errors import ToolkitInputError

INSTALL_HINT = "pip install 'toolkit[onnx]'"
EXPORT_INFO = "toolkit_export.json"  # marks a directory as a toolkit ONNX export
ONNX_FILE = "model.onnx"
EXPORT_FORMAT = 1
KINDS = ("encoder", "classifier", "token_classifier")
# Session-time fusions turned off: ONNX Runtime's CPU SkipLayerNormalization kernel ran 6x slower than the Add,
# Add, LayerNormalization it replaces (570 against 94 us on [32, 18, 384], ONNX Runtime 1.32, 2 threads).
DISABLED_FUSIONS = ("SkipLayerNormFusion",)


# ----------------------------------------------------------------------------------- optional dependency
def require_onnx(*, export: bool = False) -> SimpleNamespace:
    """``onnxruntime`` (and, to export, ``onnx`` and ``onnxscript``, which ``torch.onnx`` needs), or a
    :class:`ToolkitInputError` that says how to install them: they are an optional extra, never a core
    dependency, so the message must name the command.

    Raises:
        ToolkitInputError: a package missing.
    """
    names = ["onnxruntime", *(["onnx", "onnxscript"] if export else [])]
    modules, missing = {}, []
    for name in names:
        try:
            modules[name] = __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ToolkitInputError(
            f"ONNX {'export' if export else 'inference'} needs {', '.join(missing)}, which is not installed: "
            f"{INSTALL_HINT}"
        )
    return SimpleNamespace(**modules)


# ----------------------------------------------------------------------------------- export directories
def is_onnx_export(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a directory written by :func:`export_model`."""
    return (Path(path) / EXPORT_INFO).is_file()


def read_export_info(path: str | os.PathLike) -> dict:
    """The ``toolkit_export.json`` of an export directory.

    Raises:
        ToolkitInputError: not an export, or an unreadable file.
    """
    info_path = Path(path) / EXPORT_INFO
    if not info_path.is_file():
        raise ToolkitInputError(
            f"{path} is not an ONNX export (no {EXPORT_INFO}): make one with "
            f"python recipes/export.py MODEL_DIR --output {path}"
        )
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ToolkitInputError(f"{info_path}: cannot read it ({err}); export the model again") from None
    if not isinstance(info, dict) or info.get("kind") not in KINDS:
        raise ToolkitInputError(f"{info_path}: not a toolkit export description; export the model again")
    return info


def check_backend(model_dir: str | os.PathLike, backend: str, kind: str) -> str:
    """Which backend a loader runs ``model_dir`` on: ``"onnx"`` for an export of ``kind`` (with ``backend``
    ``"auto"`` or ``"onnx"``), ``"torch"`` for anything else (``"auto"`` or ``"torch"``).

    Raises:
        ToolkitInputError: an unknown ``backend``, ``"torch"`` for an export (it has no PyTorch weights),
            ``"onnx"`` for a directory that is not an export, or an export of another kind of model.
    """
    if backend not in ("auto", "torch", "onnx"):
        raise ToolkitInputError(f"backend must be one of auto, torch, onnx; got {backend!r}")
    if not is_onnx_export(model_dir):
        if backend == "onnx":
            raise ToolkitInputError(
                f"{model_dir} is not an ONNX export: make one with python recipes/export.py {model_dir} "
                "--output OUT, then load OUT (or use backend='torch')"
            )
        return "torch"
    if backend == "torch":
        raise ToolkitInputError(
            f"{model_dir} is an ONNX export (no PyTorch weights): use backend='onnx' (or 'auto'), or load the "
            "model it was exported from"
        )
    found = read_export_info(model_dir)["kind"]
    if found != kind:
        names = {
            "encoder": "an encoder",
            "classifier": "a sequence classifier",
            "token_classifier": "a tagger",
        }
        raise ToolkitInputError(
            f"{model_dir} is an ONNX export of {names[found]}, not of {names[kind]}: load it with "
            + {
                "encoder": "encode_sentences",
                "classifier": "TextClassifier",
                "token_classifier": "NERTagger",
            }[found]
        )
    return "onnx"


# ---------------------------------------------------------------------------------------------- runtime
def available_cores() -> int:
    """The cores this process may use (a container or ``taskset`` can make them fewer than the machine's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def cpu_features() -> dict:
    """The CPU's architecture and the instruction sets that decide the int8 kernels ONNX Runtime uses."""
    flags: set[str] = set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith(("flags", "Features")):
                flags = set(line.split(":", 1)[1].split())
                break
    machine = platform.machine().lower()
    return {
        "machine": machine,
        "avx2": "avx2" in flags,
        "avx512": "avx512f" in flags,
        "vnni": bool({"avx512_vnni", "avx_vnni", "amx_int8"} & flags),
        "x86": machine in ("x86_64", "amd64", "i686", "x86"),
    }


def session_options(ort, threads: int, *, spinning: bool = False):
    """The ONNX Runtime session options of :class:`OnnxModel`: ``threads`` intra-op threads, every graph
    optimisation (with :data:`DISABLED_FUSIONS` passed to the session), and idle pool threads that sleep unless
    ``spinning``: between batches this thread tokenizes and pools, and spinning workers take the cores from it
    (measured end to end with ``encode_sentences``, all-MiniLM-L6-v2 int8, 2 cores: 1,154 sentences/s
    sleeping against 773 spinning)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return options


class OnnxModel:
    """An exported model run by ONNX Runtime on the CPU, called like a Hugging Face model.

    ``model(input_ids=..., attention_mask=..., token_type_ids=...)`` takes PyTorch tensors or NumPy arrays and
    returns an object with ``logits`` (classifiers, taggers) or ``last_hidden_state`` (encoders) as PyTorch
    tensors, so the toolkit's PyTorch inference loops run it unchanged; :meth:`run` is the NumPy path.
    ``config`` is the source model's config (labels, sizes). The thread count is ONNX Runtime's intra-op
    threads (default: the cores this process may use); :meth:`set_threads` changes it. ``spinning=True`` keeps
    idle pool threads spinning between runs (see :func:`session_options`: slower end to end here).

    Example:
        >>> model = OnnxModel.from_export("outputs/export/sst2_int8")  # doctest: +SKIP
        >>> model.run({"input_ids": ids, "attention_mask": mask}).shape  # doctest: +SKIP
        (2, 2)
    """

    def __init__(
        self,
        onnx_file: str | os.PathLike,
        config,
        *,
        threads: int | None = None,
        output: str | None = None,
        spinning: bool = False,
    ) -> None:
        self.onnx_file = Path(onnx_file)
        if not self.onnx_file.is_file():
            raise ToolkitInputError(f"{self.onnx_file} does not exist: export the model again")
        self.config = config
        self._ort = require_onnx().onnxruntime
        self.threads = 0
        self.spinning = spinning
        self._session = None
        self.set_threads(threads)
        self.input_names = [i.name for i in self._session.get_inputs()]
        self.output_name = output or self._session.get_outputs()[0].name

    @classmethod
    def from_export(cls, directory: str | os.PathLike, *, threads: int | None = None) -> OnnxModel:
        """The model of an export directory (see :func:`export_model`)."""
        from transformers import AutoConfig

        info = read_export_info(directory)
        onnx_file = Path(directory) / info.get("onnx_file", ONNX_FILE)
        return cls(onnx_file, AutoConfig.from_pretrained(str(onnx_file.parent)), threads=threads)

    def set_threads(self, threads: int | None) -> None:
        """Run with ``threads`` intra-op threads (``None``: the cores this process may use)."""
        if threads is not None and threads < 1:
            raise ToolkitInputError(f"threads must be at least 1, got {threads}")
        threads = threads or available_cores()
        if threads == self.threads and self._session is not None:
            return
        options = session_options(self._ort, threads, spinning=self.spinning)
        try:
            self._session = self._ort.InferenceSession(
                str(self.onnx_file),
                options,
                providers=["CPUExecutionProvider"],
                disabled_optimizers=list(DISABLED_FUSIONS),
            )
        except Exception as err:  # onnxruntime raises its own exception types
            raise ToolkitInputError(f"{self.onnx_file}: ONNX Runtime cannot load it ({err})") from None
        self.threads = threads

    def eval(self) -> OnnxModel:  # the PyTorch loops call model.eval(); nothing to do
        return self

    def run(self, inputs: dict) -> np.ndarray:
        """The first output for ``inputs`` (NumPy or PyTorch ``input_ids``, ``attention_mask``, optionally
        ``token_type_ids``: zeros when the graph takes them and they are not given)."""
        feed = {}
        for name in self.input_names:
            value = inputs.get(name)
            if value is None:
                if name != "token_type_ids":
                    raise ToolkitInputError(f"{self.onnx_file} needs the input {name!r}")
                value = np.zeros_like(np.asarray(_numpy(inputs["input_ids"])))
            feed[name] = np.ascontiguousarray(_numpy(value), dtype=np.int64)
        return self._session.run([self.output_name], feed)[0]

    def __call__(self, **inputs) -> SimpleNamespace:
        import torch

        inputs.pop("output_hidden_states", None)
        inputs.pop("return_dict", None)
        out = torch.from_numpy(self.run(inputs))
        return SimpleNamespace(**{self.output_name: out})


def _numpy(value) -> np.ndarray:
    return (
        value.numpy() if hasattr(value, "numpy") and not isinstance(value, np.ndarray) else np.asarray(value)
    )
