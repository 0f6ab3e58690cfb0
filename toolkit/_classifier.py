"""Text classification inference on raw text, on PyTorch or on an ONNX export, with the same output either way.

A classifier fine-tuned by ``recipes/train_classifier.py`` is a plain Hugging Face directory (labels in
``config.id2label``; ``config.problem_type`` is ``multi_label_classification`` for a multi-label one); its
export by ``recipes/export.py`` keeps that config, so one predictor serves both.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ._errors import ToolkitInputError
from ._text import tokenizer_safe

MULTI_LABEL = "multi_label_classification"
THRESHOLD = 0.5  # a multi-label model predicts every label whose sigmoid probability is above this


class TextClassifier:
    """Labels and scores for texts from a fine-tuned sequence classifier or its ONNX export.

    ``backend="auto"`` runs an export (a directory with ``toolkit_export.json``) on ONNX Runtime and anything
    else on PyTorch. Texts are tokenized once, sorted by length and batched (a batch pads to its own longest
    text, so short texts are not padded to a long one's length); results come back in input order.

    A single-label model gives each text its most probable label with the softmax probability; a multi-label
    model (``config.problem_type == "multi_label_classification"``) gives every label whose sigmoid
    probability is above 0.5, most probable first (possibly none).

    Args:
        model_dir: a classifier directory (``recipes/train_classifier.py``) or its export.
        backend: ``"auto"``, ``"torch"`` or ``"onnx"``.
        threads: CPU threads (ONNX Runtime's intra-op threads for an export, else PyTorch's, set while
            predicting and restored after; default: the cores this process may use for ONNX Runtime,
            PyTorch's own setting otherwise).
        batch_size: texts per forward pass.
        max_length: truncation length in tokens (default: the tokenizer's ``model_max_length``, capped at the
            model's positions).

    Example:
        >>> clf = TextClassifier("outputs/export/sst2_int8")  # doctest: +SKIP
        >>> clf("a gorgeous, witty, seductive movie.")  # doctest: +SKIP
        [{'label': '1', 'score': 0.9871}]
        >>> clf(["dull", "moving"])  # doctest: +SKIP
        [[{'label': '0', 'score': 0.93}], [{'label': '1', 'score': 0.88}]]
    """

    def __init__(
        self,
        model_dir: str | os.PathLike,
        *,
        backend: str = "auto",
        threads: int | None = None,
        batch_size: int = 32,
        max_length: int | None = None,
    ) -> None:
        from transformers import AutoConfig, AutoTokenizer

        from ._onnx import OnnxModel, check_backend

        path = Path(model_dir)
        if batch_size < 1:
            raise ToolkitInputError(f"batch_size must be at least 1, got {batch_size}")
        if threads is not None and threads < 1:
            raise ToolkitInputError(f"threads must be at least 1, got {threads}")
        if not path.is_dir() or not (path / "config.json").is_file():
            raise ToolkitInputError(
                f"{path} is not a classifier directory (no config.json): pass the output directory of "
                "recipes/train_classifier.py or its export by recipes/export.py"
            )
        exported = check_backend(path, backend, "classifier") == "onnx"
        self.backend = "onnx" if exported else "torch"
        self.threads = threads
        self.batch_size = batch_size
        self.config = AutoConfig.from_pretrained(str(path))
        architecture = (getattr(self.config, "architectures", None) or [""])[0]
        if exported:
            self.model = OnnxModel.from_export(path, threads=threads)
        else:
            if not architecture.endswith("ForSequenceClassification"):
                raise ToolkitInputError(
                    f"{path} holds a {architecture or 'model without architectures'}, not a sequence "
                    "classifier: pass the output directory of recipes/train_classifier.py"
                )
            from transformers import AutoModelForSequenceClassification

            self.model = AutoModelForSequenceClassification.from_pretrained(str(path)).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        id2label = {int(k): v for k, v in self.config.id2label.items()}
        self.labels = [id2label[i] for i in range(len(id2label))]
        self.multi_label = getattr(self.config, "problem_type", None) == MULTI_LABEL
        positions = getattr(self.config, "max_position_embeddings", 512)
        self.max_length = max_length or min(getattr(self.tokenizer, "model_max_length", 512), positions)

    def logits(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> np.ndarray:
        """Raw scores ``(len(texts), n_labels)`` in input order (``pairs``: second texts of sentence pairs)."""
        import torch

        if isinstance(texts, str):
            raise ToolkitInputError("logits() takes a list of texts; wrap a single text in a list")
        if pairs is not None and len(pairs) != len(texts):
            raise ToolkitInputError(f"{len(texts)} texts but {len(pairs)} pairs: give one pair per text")
        if not len(texts):
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        encoded = self.tokenizer(
            [tokenizer_safe(t) for t in texts],
            [tokenizer_safe(p) for p in pairs] if pairs is not None else None,
            truncation=True,
            max_length=self.max_length,
            verbose=False,
        )
        names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in encoded]
        order = sorted(range(len(texts)), key=lambda i: -len(encoded["input_ids"][i]))
        out = np.empty((len(texts), len(self.labels)), dtype=np.float32)
        previous = torch.get_num_threads()
        if self.threads is not None and self.backend == "torch":
            torch.set_num_threads(self.threads)
        try:
            with torch.inference_mode():
                for start in range(0, len(order), self.batch_size):
                    idx = order[start : start + self.batch_size]
                    batch = self.tokenizer.pad(
                        {n: [encoded[n][i] for i in idx] for n in names}, return_tensors="pt"
                    )
                    out[idx] = self.model(**{n: batch[n] for n in names}).logits.float().numpy()
        finally:
            torch.set_num_threads(previous)
        return out

    def predict(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> list[list[dict]]:
        """Per text, its labels with scores (see the class docstring)."""
        logits = self.logits(texts, pairs)
        if self.multi_label:
            probs = 1.0 / (1.0 + np.exp(-logits))
            return [
                [
                    {"label": self.labels[i], "score": float(p[i])}
                    for i in sorted(np.flatnonzero(p > THRESHOLD), key=lambda i: -p[i])
                ]
                for p in probs
            ]
        shifted = np.exp(logits - logits.max(-1, keepdims=True))
        probs = shifted / shifted.sum(-1, keepdims=True)
        return [[{"label": self.labels[int(p.argmax())], "score": float(p.max())}] for p in probs]

    def __call__(
        self, texts: str | Sequence[str], pairs: str | Sequence[str] | None = None
    ) -> list[dict] | list[list[dict]]:
        """One text: its list of ``{"label", "score"}``; a list of texts: one such list per text."""
        if isinstance(texts, str):
            if pairs is not None and not isinstance(pairs, str):
                raise ToolkitInputError("one text takes one pair text (a string)")
            return self.predict([texts], [pairs] if pairs is not None else None)[0]
        return self.predict(list(texts), list(pairs) if pairs is not None else None)
