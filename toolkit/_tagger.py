"""NER inference on raw text: words split with character offsets, windows over long sentences, valid BIO
decoding, entity spans. The window is the one the model was fine-tuned with (saved in its config).

A sentence of any length streams its windows: they are built a few at a time
(:func:`~toolkit._tagging.iter_sentence_windows`), go through the model ``batch_size`` at a time, and each
leaves only its words' scores behind, so memory holds the batch of windows plus a few numbers per word (the
scores and the tags the caller gets), never every window of the sentence.
"""

from __future__ import annotations

import itertools
import os
import re
from array import array
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from transformers import AutoTokenizer

from ._onnx import OnnxModel, check_backend
from ._tagger_heads import crf_scores, load_token_classifier
from ._tagging import bio_entities, decode_tags, iter_sentence_windows
from ._text import is_cjk_char

_WORD = re.compile(r"[^\W\d_]+|\d+|\S", re.UNICODE)


def iter_words(text: str) -> Iterator[tuple[str, int, int]]:
    """Words of raw text with character offsets, one at a time (see :func:`split_words`)."""
    for m in _WORD.finditer(text):
        word = m.group()
        if not any(is_cjk_char(c) for c in word):
            yield word, m.start(), m.end()
            continue
        run_start = None  # a letter run mixing CJK and Latin: CJK characters alone, Latin runs whole
        for i, c in enumerate([*word, "\u4e00"]):
            if is_cjk_char(c) or i == len(word):
                if run_start is not None:
                    yield word[run_start:i], m.start() + run_start, m.start() + i
                    run_start = None
                if i < len(word):
                    yield c, m.start() + i, m.start() + i + 1
            elif run_start is None:
                run_start = i


def split_words(text: str) -> list[tuple[str, int, int]]:
    """Words of raw text with character offsets: each CJK character alone, Latin words and numbers whole,
    any other non-space character alone."""
    return list(iter_words(text))


class _TextWords(Sequence[str]):
    """The words of a text as a sequence that holds only their offsets (16 bytes a word, not a string and a
    tuple each): the words of a multi-megabyte line are cut out of it as the tagger reads them."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts, self.ends = array("q"), array("q")
        for _, start, end in iter_words(text):
            self.starts.append(start)
            self.ends.append(end)

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int | slice) -> str | list[str]:  # type: ignore[override]
        if isinstance(i, slice):
            return [self.text[a:b] for a, b in zip(self.starts[i], self.ends[i], strict=True)]
        return self.text[self.starts[i] : self.ends[i]]


DEFAULT_STRIDE = 16  # window overlap for a model without a recorded one


def _first_set(*values):
    return next(v for v in values if v is not None)


class NERTagger:
    """Entity spans with character offsets from raw text, using a saved token-classification model.

    Tags are decoded as the most probable valid BIO sequence (``constrained=False``: each word's best tag); a
    model trained with a CRF layer (``--crf true``) decodes with its learned transitions, and one with a BiLSTM
    (``--bilstm_hidden``, or the light tagger of ``--encoder bilstm``) runs it.
    Sentences longer than the window are split into overlapping windows and merged back; the window and its
    overlap default to those of fine-tuning (``ner_max_length``, ``ner_stride`` in the model's config).

    An ONNX export of the model (``recipes/export.py``) loads the same way and runs on ONNX Runtime; ``threads``
    sets the CPU threads of either backend.

    Example:
        >>> tagger = NERTagger("outputs/ner/msra")  # doctest: +SKIP
        >>> tagger("张三在北京工作。")  # doctest: +SKIP
        [{'label': 'PER', 'start': 0, 'end': 2, 'text': '张三'}, {'label': 'LOC', 'start': 3, 'end': 5, 'text': '北京'}]
    """

    def __init__(
        self,
        model_dir: str | os.PathLike,
        *,
        max_length: int | None = None,
        stride: int | None = None,
        batch_size: int = 16,
        constrained: bool = True,
        backend: str = "auto",
        threads: int | None = None,
    ) -> None:
        # An export of recipes/export.py runs on ONNX Runtime (OnnxModel is called like the PyTorch model);
        # backend="torch" or "onnx" insists on one.
        if check_backend(model_dir, backend, "token_classifier") == "onnx":
            self.model = OnnxModel.from_export(model_dir, threads=threads)
        else:
            self.model = load_token_classifier(model_dir)  # with its CRF / BiLSTM layers, if any
            if threads is not None:
                torch.set_num_threads(threads)
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        id2label = {int(k): v for k, v in self.model.config.id2label.items()}
        self.labels = [id2label[i] for i in range(len(id2label))]
        self.constrained = constrained  # valid BIO sequences only (see decode_tags)
        self.crf = crf_scores(self.model)  # a CRF layer's transitions decode, when the model has one
        # The window the model was fine-tuned with (recorded by the NER recipe), else the model's limit.
        config = self.model.config
        limit = min(config.max_position_embeddings, getattr(self.tokenizer, "model_max_length", 512), 512)
        self.max_length = _first_set(max_length, getattr(config, "ner_max_length", None), limit)
        self.stride = _first_set(stride, getattr(config, "ner_stride", None), DEFAULT_STRIDE)
        self.batch_size = batch_size

    @torch.inference_mode()
    def predict_words(self, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
        """BIO tags for pre-split sentences (lists of words)."""
        return [[self.labels[i] for i in ids] for ids in self._predict_ids(sentences)]

    def _windows(self, sentences: Sequence[Sequence[str]]) -> Iterator[tuple[int, dict]]:
        for n, sentence in enumerate(sentences):
            for window in iter_sentence_windows(
                sentence, None, self.tokenizer, label2id=None, max_length=self.max_length, stride=self.stride
            ):
                yield n, window

    @torch.inference_mode()
    def _predict_ids(self, sentences: Sequence[Sequence[str]]) -> list[list[int]]:
        """Label ids per word: windows stream through the model ``batch_size`` at a time, each writing the
        scores of the words it owns, then each sentence is decoded."""
        scores = [np.zeros((len(s), len(self.labels)), dtype=np.float32) for s in sentences]
        seen = [np.zeros(len(s), dtype=bool) for s in sentences]
        windows = self._windows(sentences)
        while chunk := list(itertools.islice(windows, self.batch_size)):
            width = max(len(w["input_ids"]) for _, w in chunk)
            ids = torch.full((len(chunk), width), self.tokenizer.pad_token_id)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for r, (_, w) in enumerate(chunk):
                ids[r, : len(w["input_ids"])] = torch.tensor(w["input_ids"])
                mask[r, : len(w["input_ids"])] = 1
            out = self.model(input_ids=ids, attention_mask=mask).logits.numpy()
            for r, (n, w) in enumerate(chunk):
                index = np.asarray(w["word_index"])
                owned = np.flatnonzero(index >= 0)
                words = index[owned]
                if len(words) and words.max() >= len(scores[n]):
                    raise RuntimeError(
                        f"word {words.max()} of a {len(scores[n])}-word sentence: windowing bug"
                    )
                scores[n][words] = out[r, owned]
                seen[n][words] = True
        results = []
        for n in range(len(sentences)):
            missing = np.flatnonzero(~seen[n]).tolist()
            if missing:
                raise RuntimeError(f"words {missing[:5]} received no prediction: windowing bug")
            results.append(decode_tags(scores[n], self.labels, constrained=self.constrained, crf=self.crf))
            scores[n] = seen[n] = None  # decoded: free the sentence's scores
        return results

    def __call__(self, text: str) -> list[dict]:
        """Entity spans in ``text``: ``{"label", "start", "end", "text"}`` (character offsets, end exclusive)."""
        words = _TextWords(text)
        if not len(words):
            return []
        ids = self._predict_ids([words])[0]
        return [
            {
                "label": kind,
                "start": words.starts[a],
                "end": words.ends[b - 1],
                "text": text[words.starts[a] : words.ends[b - 1]],
            }
            for kind, a, b in bio_entities([self.labels[i] for i in ids])
        ]
