"""NER inference on raw text: words split with character offsets, windows over long sentences, valid BIO
decoding, entity spans. The window is the one the model was fine-tuned with (saved in its config)."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

import numpy as np
import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer

from ._tagging import bio_entities, decode_tags, encode_sentence, merge_window_scores
from ._text import is_cjk_char

_WORD = re.compile(r"[^\W\d_]+|\d+|\S", re.UNICODE)


def split_words(text: str) -> list[tuple[str, int, int]]:
    """Words of raw text with character offsets: each CJK character alone, Latin words and numbers whole,
    any other non-space character alone."""
    out = []
    for m in _WORD.finditer(text):
        word = m.group()
        if not any(is_cjk_char(c) for c in word):
            out.append((word, m.start(), m.end()))
            continue
        run_start = None  # a letter run mixing CJK and Latin: CJK characters alone, Latin runs whole
        for i, c in enumerate([*word, "\u4e00"]):
            if is_cjk_char(c) or i == len(word):
                if run_start is not None:
                    out.append((word[run_start:i], m.start() + run_start, m.start() + i))
                    run_start = None
                if i < len(word):
                    out.append((c, m.start() + i, m.start() + i + 1))
            elif run_start is None:
                run_start = i
    return out


DEFAULT_STRIDE = 16  # window overlap for a model without a recorded one


def _first_set(*values):
    return next(v for v in values if v is not None)


class NERTagger:
    """Entity spans with character offsets from raw text, using a saved token-classification model.

    Tags are decoded as the most probable valid BIO sequence (``constrained=False``: each word's best tag).
    Sentences longer than the window are split into overlapping windows and merged back; the window and its
    overlap default to those of fine-tuning (``ner_max_length``, ``ner_stride`` in the model's config).

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
    ) -> None:
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        self.model = AutoModelForTokenClassification.from_pretrained(str(model_dir)).eval()
        id2label = {int(k): v for k, v in self.model.config.id2label.items()}
        self.labels = [id2label[i] for i in range(len(id2label))]
        self.constrained = constrained  # valid BIO sequences only (see decode_tags)
        # The window the model was fine-tuned with (recorded by the NER recipe), else the model's limit.
        config = self.model.config
        limit = min(config.max_position_embeddings, getattr(self.tokenizer, "model_max_length", 512), 512)
        self.max_length = _first_set(max_length, getattr(config, "ner_max_length", None), limit)
        self.stride = _first_set(stride, getattr(config, "ner_stride", None), DEFAULT_STRIDE)
        self.batch_size = batch_size

    @torch.inference_mode()
    def predict_words(self, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
        """BIO tags for pre-split sentences (lists of words)."""
        encoded = [
            encode_sentence(
                s, None, self.tokenizer, label2id=None, max_length=self.max_length, stride=self.stride
            )
            for s in sentences
        ]
        flat = [w for windows in encoded for w in windows]
        logits: list[np.ndarray] = []
        for i in range(0, len(flat), self.batch_size):
            chunk = flat[i : i + self.batch_size]
            width = max(len(w["input_ids"]) for w in chunk)
            ids = torch.full((len(chunk), width), self.tokenizer.pad_token_id)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for r, w in enumerate(chunk):
                ids[r, : len(w["input_ids"])] = torch.tensor(w["input_ids"])
                mask[r, : len(w["input_ids"])] = 1
            out = self.model(input_ids=ids, attention_mask=mask).logits.numpy()
            logits.extend(out[r, : len(w["input_ids"])] for r, w in enumerate(chunk))
        results, pos = [], 0
        for sentence, windows in zip(sentences, encoded, strict=True):
            scores = merge_window_scores(windows, logits[pos : pos + len(windows)], len(sentence))
            pos += len(windows)
            ids = decode_tags(scores, self.labels, constrained=self.constrained)
            results.append([self.labels[i] for i in ids])
        return results

    def __call__(self, text: str) -> list[dict]:
        """Entity spans in ``text``: ``{"label", "start", "end", "text"}`` (character offsets, end exclusive)."""
        words = split_words(text)
        if not words:
            return []
        tags = self.predict_words([[w for w, _, _ in words]])[0]
        return [
            {
                "label": kind,
                "start": words[a][1],
                "end": words[b - 1][2],
                "text": text[words[a][1] : words[b - 1][2]],
            }
            for kind, a, b in bio_entities(tags)
        ]
