"""Knowledge distillation for text classification and NER: a fine-tuned teacher's scores become soft labels
for a smaller student, whatever tokenizer each of them uses.

The teacher is run once over every example (its scores cached on disk, keyed by the teacher's weights, the
texts and the windowing), so a student step costs only the student's forward and backward pass. Teacher and
student meet where their tokenizers cannot disagree: the whole input for classification, the word for NER
(each word's score sits at the first sub-token of the window that owns it, in the teacher's windows and in the
student's alike). Intermediate hidden states are matched token by token, which needs one shared tokenizer.

Loss per batch (``alpha``: ``--hard_label_weight``, ``T``: ``--temperature``)::

    alpha * CE(student, gold) + (1 - alpha) * T^2 * KL(softmax(teacher / T) || softmax(student / T))
      + hidden_weight * mean_j MSE(proj_j(student layer j), teacher layer map[j])

Unlabelled examples (``--unlabelled_files``) carry no gold label: only the teacher's term trains on them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AutoConfig, PreTrainedModel, PreTrainedTokenizerBase

from ._checkpoint import WEIGHT_FILES
from ._errors import ToolkitInputError
from ._io import check_text_file, text_decoding
from ._labelled import ClassificationExample, NERSentence
from ._masking import IGNORE_INDEX
from ._tagger import split_words
from .training import ToolkitTrainer

logger = logging.getLogger(__name__)

TEACHER_LOGITS = "teacher_logits"  # classification: (C,) per example; NER: (positions, C) per window
TEACHER_POSITIONS = "teacher_positions"  # NER: the window positions that carry a teacher score
PROJECTIONS = "distill_projections"  # the hidden-state projections, attached to the student while it trains
HEAD_SUFFIX = {"classification": "ForSequenceClassification", "ner": "ForTokenClassification"}
RECIPE_OF = {"classification": "recipes/train_classifier.py", "ner": "recipes/train_ner.py"}


# ------------------------------------------------------------------------------------------- the teacher
def teacher_labels(teacher: str | os.PathLike, data_labels: Sequence[str], *, task: str) -> list[str]:
    """Check that ``teacher`` is a fine-tuned model of ``task`` whose label set is the data's, and return its
    labels in the teacher's id order (the student adopts that order, so its scores line up with the teacher's).

    Raises:
        ToolkitInputError: no model at ``teacher``, a model without this task's head, CRF/BiLSTM tagger layers
            (their emissions are not per-word scores), or label sets that differ (both named).
    """
    try:
        config = AutoConfig.from_pretrained(str(teacher))
    except (OSError, ValueError) as err:
        raise ToolkitInputError(f"--teacher {teacher}: cannot read a model config: {err}") from None
    heads = config.architectures or []
    if not any(a.endswith(HEAD_SUFFIX[task]) for a in heads) and config.model_type != "toolkit_bilstm":
        raise ToolkitInputError(
            f"--teacher {teacher} is not a fine-tuned {task} model (architectures: {heads or 'none'}); "
            f"fine-tune it first with {RECIPE_OF[task]} (a student of it without a head: recipes/cut_student.py)"
        )
    if getattr(config, "tagger_head", None) or getattr(config, "crf", False):
        raise ToolkitInputError(
            f"--teacher {teacher} has CRF/BiLSTM tagger layers ({config.tagger_head or 'crf'}): distillation "
            "needs per-word label scores, which a CRF's emission scores are not; use a teacher trained without "
            "--crf / --bilstm_hidden"
        )
    labels = [config.id2label[i] for i in range(config.num_labels)]
    missing, extra = sorted(set(data_labels) - set(labels)), sorted(set(labels) - set(data_labels))
    if missing or extra:
        raise ToolkitInputError(
            f"the teacher's labels and the data's differ: only in the data {missing or 'none'}, only in the "
            f"teacher {extra or 'none'} (teacher {teacher}: {labels})"
        )
    return labels


def _weights_identity(directory: str | os.PathLike) -> dict:
    """What identifies a checkpoint's weights cheaply: its path and each weights file's size and time."""
    path = Path(directory)
    files = {
        name: [(path / name).stat().st_size, (path / name).stat().st_mtime_ns]
        for name in WEIGHT_FILES
        if (path / name).is_file()
    }
    return {"path": str(path.resolve()), "files": files}


def cache_key(teacher: str | os.PathLike, texts: Sequence, **settings) -> str:
    """A key for the teacher's scores of ``texts`` (any JSON-able items) under ``settings``."""
    digest = hashlib.sha256()
    digest.update(json.dumps([_weights_identity(teacher), settings], sort_keys=True).encode())
    for item in texts:
        digest.update(json.dumps(item, ensure_ascii=False).encode())
        digest.update(b"\x00")
    return digest.hexdigest()[:24]


def cached_arrays(
    cache_dir: str | os.PathLike | None, key: str, compute: Callable[[], list[np.ndarray]]
) -> list[np.ndarray]:
    """``compute()`` once: its arrays are stored as ``<cache_dir>/<key>.npz`` and read back on later calls."""
    if cache_dir is None:
        return compute()
    path = Path(cache_dir) / f"{key}.npz"
    if path.is_file():
        with np.load(path) as stored:
            lengths, flat = stored["lengths"], stored["flat"]
        logger.info("Teacher scores read from the cache: %s", path)
        return list(np.split(flat, np.cumsum(lengths)[:-1])) if len(lengths) else []
    arrays = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
    lengths = np.array([len(a) for a in arrays], dtype=np.int64)
    width = arrays[0].shape[-1] if arrays else 0
    flat = np.concatenate(arrays) if arrays else np.zeros((0, width), np.float32)
    np.savez(tmp, lengths=lengths, flat=flat.astype(np.float32))
    os.replace(tmp, path)
    return arrays


@torch.no_grad()
def predict_logits(
    model: PreTrainedModel,
    features: Sequence[dict],
    *,
    pad_id: int,
    batch_size: int = 64,
    desc: str = "teacher",
) -> list[np.ndarray]:
    """The model's logits for each feature (``input_ids``, ``attention_mask``, optional ``token_type_ids``),
    in batches of similar length; token-level logits come back unpadded, ``(length, C)`` per feature."""
    from tqdm.auto import tqdm

    model.eval()
    device = next(model.parameters()).device
    order = sorted(range(len(features)), key=lambda i: len(features[i]["input_ids"]))
    out: list[np.ndarray | None] = [None] * len(features)
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if features and k in features[0]]
    for lo in tqdm(range(0, len(order), batch_size), desc=desc, unit="batch", disable=len(order) < 2000):
        rows = order[lo : lo + batch_size]
        width = max(len(features[i]["input_ids"]) for i in rows)
        batch = {}
        for k in keys:
            fill = pad_id if k == "input_ids" else 0
            batch[k] = torch.tensor(
                [list(features[i][k]) + [fill] * (width - len(features[i][k])) for i in rows], device=device
            )
        logits = model(**batch).logits.float().cpu().numpy()
        for j, i in enumerate(rows):
            out[i] = logits[j] if logits.ndim == 2 else logits[j, : len(features[i]["input_ids"])]
    return out  # type: ignore[return-value]


# --------------------------------------------------------------------------------- unlabelled examples
def read_unlabelled(
    paths: Sequence[str],
    *,
    task: str,
    encoding: str = "utf-8",
    errors: str = "strict",
    limit: int | None = None,
) -> list:
    """Distillation-only examples from plain-text files, one per non-blank line: a
    :class:`ClassificationExample` without labels, or an :class:`NERSentence` of the line's words (each CJK
    character alone, as :class:`~toolkit.NERTagger` splits raw text) with no tags. ``limit`` caps the examples
    read, over all files (``--max_train_samples``).

    Raises:
        ToolkitInputError: a missing file, a bad byte (named by line and offset), or a file without text.
    """
    examples: list = []
    for path in paths:
        if not os.path.isfile(path):
            raise ToolkitInputError(f"--unlabelled_files {path}: no such file")
        if errors == "strict":
            check_text_file(path, encoding=encoding)  # a bad byte: named by line and offset, with the remedy
        n = 0
        with open(path, encoding=text_decoding(encoding, errors), errors=errors) as f:
            for number, line in enumerate(f, start=1):
                if limit is not None and len(examples) >= limit:
                    break
                text = line.strip()
                if not text:
                    continue
                n += 1
                if task == "classification":
                    examples.append(ClassificationExample(text=text, labels=[], line=number))
                else:
                    words = [w for w, _, _ in split_words(text)]
                    examples.append(NERSentence(tokens=words, tags=[], line=number, source=path))
        if not n and (limit is None or len(examples) < limit):
            raise ToolkitInputError(f"--unlabelled_files {path}: no text (one example per non-blank line)")
        logger.info("Unlabelled examples from %s: %d", path, n)
    return examples


# ------------------------------------------------------------------------------ teacher scores on student inputs
def attach_sentence_scores(features: list[dict], scores: Sequence[np.ndarray]) -> list[dict]:
    """Classification: each feature gets its example's teacher scores (``teacher_logits``, one row)."""
    if len(features) != len(scores):
        raise RuntimeError(f"{len(features)} examples but {len(scores)} teacher scores")
    return [
        f | {TEACHER_LOGITS: np.asarray(s, dtype=np.float32).tolist()}
        for f, s in zip(features, scores, strict=True)
    ]


def attach_word_scores(
    windows: Sequence[dict], owner: Sequence[int], scores: Sequence[np.ndarray]
) -> list[dict]:
    """NER: each student window gets the teacher's score of every word it owns, at that word's first
    sub-token (``teacher_positions``, ``teacher_logits``); ``scores[k]`` is sentence k's ``(n_words, C)``.

    The words are the dataset's, so two tokenizers that split a word differently (into other pieces, or
    into ``[UNK]``) still meet at the word."""
    out = []
    for window, k in zip(windows, owner, strict=True):
        positions = [p for p, w in enumerate(window["word_index"]) if w >= 0]
        words = [window["word_index"][p] for p in positions]
        if words and max(words) >= len(scores[k]):
            raise RuntimeError(f"sentence {k}: word {max(words)} of {len(scores[k])} scored: alignment bug")
        rows = np.asarray(scores[k], dtype=np.float32)[words] if words else np.zeros((0, 0), np.float32)
        out.append(window | {TEACHER_POSITIONS: positions, TEACHER_LOGITS: rows.tolist()})
    return out


class DistillationCollator:
    """Wraps a fine-tuning collator: the teacher's scores are taken out of each feature before it pads the
    rest, then added as tensors: ``teacher_logits`` ``(B, C)`` for classification, or ``(B, L, C)`` with
    ``teacher_mask`` ``(B, L)`` for NER. Features without teacher scores (evaluation) pass through."""

    def __init__(self, collator) -> None:
        self.collator = collator

    def __call__(self, features: list[dict]) -> dict:
        if not features or TEACHER_LOGITS not in features[0]:
            return self.collator(features)
        teacher = [f[TEACHER_LOGITS] for f in features]
        positions = [f.get(TEACHER_POSITIONS) for f in features]
        rest = [
            {k: v for k, v in f.items() if k not in (TEACHER_LOGITS, TEACHER_POSITIONS)} for f in features
        ]
        batch = self.collator(rest)
        if positions[0] is None:
            batch[TEACHER_LOGITS] = torch.tensor(teacher, dtype=torch.float32)
            return batch
        width = batch["input_ids"].shape[1]
        n_labels = next((len(rows[0]) for rows in teacher if len(rows)), 1)
        logits = torch.zeros(len(features), width, n_labels)
        mask = torch.zeros(len(features), width, dtype=torch.bool)
        for i, (pos, rows) in enumerate(zip(positions, teacher, strict=True)):
            if pos:
                logits[i, pos] = torch.tensor(rows, dtype=torch.float32)
                mask[i, pos] = True
        batch[TEACHER_LOGITS], batch["teacher_mask"] = logits, mask
        return batch


# ------------------------------------------------------------------------------------------------ losses
def soft_label_loss(
    student: torch.Tensor, teacher: torch.Tensor, *, temperature: float, multi_label: bool = False
) -> torch.Tensor:
    """Temperature-scaled distillation loss over rows of label scores (``(N, C)`` each), scaled by ``T²`` so
    that its gradients keep their size as ``T`` changes: the KL divergence from the teacher's softened
    distribution, or for multi-label the binary cross-entropy to the teacher's softened probabilities."""
    if student.numel() == 0:
        return student.sum() * 0.0
    t = temperature
    if multi_label:
        return F.binary_cross_entropy_with_logits(student / t, torch.sigmoid(teacher / t)) * t * t
    return (
        F.kl_div(
            F.log_softmax(student / t, dim=-1),
            F.log_softmax(teacher / t, dim=-1),
            log_target=True,
            reduction="batchmean",
        )
        * t
        * t
    )


def hard_label_loss(logits: torch.Tensor, labels: torch.Tensor, *, multi_label: bool = False) -> torch.Tensor:
    """Cross-entropy to the gold labels over the rows that have one (``IGNORE_INDEX`` marks the others; a
    multi-label row without labels is all ``IGNORE_INDEX``); zero when none has."""
    if multi_label:
        keep = (labels != IGNORE_INDEX).all(dim=-1)
        if not keep.any():
            return logits.sum() * 0.0
        return F.binary_cross_entropy_with_logits(logits[keep], labels[keep].to(logits.dtype))
    logits, labels = logits.reshape(-1, logits.shape[-1]), labels.reshape(-1)
    if not (labels != IGNORE_INDEX).any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX)


def default_layer_map(student_layers: int, teacher_layers: int) -> list[tuple[int, int]]:
    """Student layer j matched to teacher layer ``round((j + 1) * T / S) - 1``: evenly spread, last to last."""
    return [(j, max(0, round((j + 1) * teacher_layers / student_layers) - 1)) for j in range(student_layers)]


def parse_layer_map(spec: str, *, student_layers: int, teacher_layers: int) -> list[tuple[int, int]]:
    """``"0:1,1:3,2:5"`` (student layer : teacher layer, 0-based) as pairs, checked against both depths.

    Raises:
        ToolkitInputError: a malformed pair or a layer out of range.
    """
    pairs = []
    for item in spec.split(","):
        try:
            s, t = (int(x) for x in item.split(":"))
        except ValueError:
            raise ToolkitInputError(
                f"--layer_map {spec!r}: expected 'student:teacher' pairs such as '0:1,1:3,2:5'"
            ) from None
        if not (0 <= s < student_layers and 0 <= t < teacher_layers):
            raise ToolkitInputError(
                f"--layer_map {item}: the student has layers 0-{student_layers - 1}, the teacher "
                f"0-{teacher_layers - 1}"
            )
        pairs.append((s, t))
    return pairs


def same_vocabulary(a: PreTrainedTokenizerBase, b: PreTrainedTokenizerBase) -> bool:
    """Whether two tokenizers map every token to the same id (hidden states then align token by token)."""
    return a.get_vocab() == b.get_vocab() and type(a.backend_tokenizer.normalizer) is type(
        b.backend_tokenizer.normalizer
    )


class DistillationTrainer(ToolkitTrainer):
    """``ToolkitTrainer`` whose training loss is the distillation loss (module docstring).

    Args:
        temperature: softens both score distributions.
        hard_label_weight: weight of the gold-label term (the teacher's term gets the rest).
        multi_label: sigmoid scores (multi-label classification) instead of softmax.
        teacher: the teacher model, needed only for ``hidden_weight > 0`` (run alongside the student).
        hidden_weight: weight of the hidden-state term.
        layer_map: ``(student layer, teacher layer)`` pairs of the hidden-state term.

    Evaluation batches (no teacher scores) get the plain gold-label loss.
    """

    def __init__(
        self,
        *args,
        temperature: float = 2.0,
        hard_label_weight: float = 0.5,
        multi_label: bool = False,
        teacher: PreTrainedModel | None = None,
        hidden_weight: float = 0.0,
        layer_map: Sequence[tuple[int, int]] = (),
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.temperature, self.hard_label_weight, self.multi_label = (
            temperature,
            hard_label_weight,
            multi_label,
        )
        self.hidden_weight, self.layer_map = hidden_weight, list(layer_map)
        self.teacher = teacher.eval().requires_grad_(False) if teacher is not None else None
        if hidden_weight > 0:
            if teacher is None or not self.layer_map:
                raise ValueError("a hidden-state loss needs the teacher and a layer map")
            s_width, t_width = self.model.config.hidden_size, teacher.config.hidden_size
            # Learned projections where the widths differ: a submodule of the student while it trains (so the
            # optimizer, gradient clipping and DDP all see them), never saved, and removed after training.
            self.model.add_module(
                PROJECTIONS,
                torch.nn.ModuleList(
                    torch.nn.Linear(s_width, t_width) if s_width != t_width else torch.nn.Identity()
                    for _ in self.layer_map
                ).to(self.args.device),
            )
            self.model._keys_to_ignore_on_save = [
                *(self.model._keys_to_ignore_on_save or []),
                rf"^{PROJECTIONS}\.",
            ]
            self.teacher.to(self.args.device)
        self.model_accepts_loss_kwargs = (
            False  # the loss is a per-batch mean: Trainer scales it for accumulation
        )

    def train(self, *args, **kwargs):
        try:
            return super().train(*args, **kwargs)
        finally:  # the student leaves as the stock model it came in as
            if hasattr(self.model, PROJECTIONS):
                delattr(self.model, PROJECTIONS)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if TEACHER_LOGITS not in inputs:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        teacher_logits = inputs.pop(TEACHER_LOGITS)
        teacher_mask = inputs.pop("teacher_mask", None)
        labels = inputs.pop("labels", None)
        hidden = self.hidden_weight > 0
        outputs = model(**inputs, output_hidden_states=hidden)
        logits = outputs.logits
        if teacher_mask is not None:  # NER: the words' first sub-tokens
            soft = soft_label_loss(
                logits[teacher_mask], teacher_logits[teacher_mask], temperature=self.temperature
            )
        else:
            soft = soft_label_loss(
                logits, teacher_logits, temperature=self.temperature, multi_label=self.multi_label
            )
        loss = (1.0 - self.hard_label_weight) * soft
        if labels is not None and self.hard_label_weight > 0:
            loss = loss + self.hard_label_weight * hard_label_loss(
                logits, labels, multi_label=self.multi_label
            )
        if hidden:
            loss = loss + self.hidden_weight * self._hidden_loss(outputs.hidden_states, inputs)
        return (loss, outputs) if return_outputs else loss

    def _hidden_loss(self, student_states, inputs) -> torch.Tensor:
        with torch.no_grad():
            teacher_states = self.teacher(
                **{k: v for k, v in inputs.items() if k in ("input_ids", "attention_mask", "token_type_ids")},
                output_hidden_states=True,
            ).hidden_states
        mask = inputs["attention_mask"].unsqueeze(-1).to(student_states[0].dtype)
        total = 0.0
        projections = getattr(self.accelerator.unwrap_model(self.model), PROJECTIONS)
        for proj, (s, t) in zip(projections, self.layer_map, strict=True):
            diff = (proj(student_states[s + 1]) - teacher_states[t + 1]) * mask  # [0] is the embeddings
            total = total + diff.pow(2).sum() / (mask.sum() * diff.shape[-1])
        return total / len(self.layer_map)


def kept_share(student: float | None, teacher: float | None) -> float | None:
    """Student score / teacher score (None where either is missing or the teacher scored 0)."""
    if student is None or not teacher:
        return None
    return student / teacher
