"""Bounded memory on long inputs: contextual extraction, NER prediction and MLM packing stream a line or
sentence of any length window by window (or piece by piece), with the results of the whole-line computation.

Each "bounded" test spies on the model's forward and on the tokenizer: a call that covers the whole input
(as before streaming) fails at once, so the test fails quickly instead of exhausting memory. Peak RSS is
measured by ``python -m benchmarks.memory``, not here.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict

import datasets
import numpy as np
import pytest
import torch
from conftest import NER_LABELS

from toolkit import NERTagger, bio_entities, decode_tags, extract_vectors, load_encoder, prepare_mlm_dataset
from toolkit._masking import IGNORE_INDEX
from toolkit._packing import pack_into_blocks, segment_word_starts, tokenize_and_pack, word_start_flags
from toolkit._tagger import split_words
from toolkit._tagging import AlignmentAudit, make_windows, merge_window_scores, token_owners, word_pieces
from toolkit.demo import chinese_sentences, english_sentences

LABELS = NER_LABELS
L2I = {lab: i for i, lab in enumerate(LABELS)}


def long_text(n_chars: int, *, seed: int = 0, spaced: bool = True) -> str:
    """Project-written English and Chinese sentences on one line, about ``n_chars`` characters."""
    rng = random.Random(seed)
    pool = english_sentences(400, seed=seed) + chinese_sentences(400, seed=seed + 1)
    parts, size = [], 0
    while size < n_chars:
        parts.append(rng.choice(pool))
        size += len(parts[-1]) + spaced
    return (" " if spaced else "").join(parts)


class Spy:
    """Records the calls of a tokenizer and a model forward, in order, and fails a call over the bound."""

    def __init__(self, monkeypatch, tokenizer, model, *, max_text_chars: int, max_texts: int, max_batch: int):
        self.events: list[tuple[str, int]] = []
        tok_call = type(tokenizer).__call__
        forward = model.forward

        def spy_tokenizer(this, text=None, *args, **kwargs):
            texts = [text] if isinstance(text, str) else list(text or [])
            chars = sum(len(t) for t in texts)
            self.events.append(("tokenize", chars))
            assert chars <= max_text_chars, f"tokenizer called on {chars:,} characters at once"
            assert len(texts) <= max_texts, f"tokenizer called on {len(texts):,} texts at once"
            return tok_call(this, text, *args, **kwargs)

        def spy_forward(*args, **kwargs):
            ids = kwargs.get("input_ids", args[0] if args else None)
            self.events.append(("forward", int(ids.shape[0])))
            assert ids.shape[0] <= max_batch, f"{ids.shape[0]} windows through the model at once"
            return forward(*args, **kwargs)

        monkeypatch.setattr(type(tokenizer), "__call__", spy_tokenizer)
        monkeypatch.setattr(model, "forward", spy_forward)

    def interleaved(self) -> bool:
        """Whether the model ran before the tokenizer's last call: windows streamed, not built all first."""
        kinds = [k for k, _ in self.events]
        return "forward" in kinds and kinds.index("forward") < len(kinds) - 1 - kinds[::-1].index("tokenize")

    def batches(self) -> list[int]:
        return [n for k, n in self.events if k == "forward"]


# --------------------------------------------------------------------------------- contextual vectors
def reference_contextual(
    enc, line: str, *, unit: str, layers: list[int], pooling: str
) -> dict[str, np.ndarray]:
    """The non-streamed computation: the tokenizer's overflowing windows over the whole line, all through
    the model at once, each occurrence taken from the first window that holds its whole span."""
    tok = enc.tokenizer
    limit = min(tok.model_max_length, enc.model.config.max_position_embeddings, 512)
    encoded = tok(
        line,
        truncation=True,
        max_length=limit,
        stride=min(32, limit // 4),
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding=True,
        return_tensors="pt",
    )
    offsets = encoded.pop("offset_mapping")
    inputs = {k: v for k, v in encoded.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
    with torch.inference_mode():
        out = enc.model(**inputs, output_hidden_states=True)
    hidden = torch.stack([out.hidden_states[i] for i in layers]).mean(0).double()
    special = torch.isin(inputs["input_ids"], torch.tensor(tok.all_special_ids))
    if unit == "char":
        spans = [(c, i, i + 1) for i, c in enumerate(line) if not c.isspace()]
    else:
        spans = [(m.group(), m.start(), m.end()) for m in re.finditer(r"\S+", line)]
    sums: dict[str, torch.Tensor] = defaultdict(lambda: torch.zeros(hidden.shape[-1], dtype=torch.float64))
    counts: dict[str, int] = defaultdict(int)
    seen: set[tuple[int, int]] = set()
    for w in range(len(offsets)):
        valid = [(t, s, e) for t, (s, e) in enumerate(offsets[w].tolist()) if e > s and not special[w, t]]
        if not valid:
            continue
        for item, s, e in spans:
            if s < valid[0][1] or e > valid[-1][2] or (s, e) in seen:
                continue
            toks = [t for t, ts, te in valid if ts < e and te > s]
            if toks:
                seen.add((s, e))
                chosen = {"first": toks[:1], "last": toks[-1:], "mean": toks}[pooling]
                sums[item] += hidden[w, chosen].mean(0)
                counts[item] += 1
    return {item: (sums[item] / counts[item]).float().numpy() for item in counts}


@pytest.mark.parametrize(("unit", "pooling", "layers"), [("char", "mean", [-1]), ("word", "first", [0, -1])])
def test_contextual_long_line_in_pieces_equals_the_whole_line(
    tiny_mlm_dir, monkeypatch, unit, pooling, layers
):
    """A line of dozens of windows, read in many small pieces and a few windows per batch, gives the vectors
    of the whole-line computation (same windows, same occurrences, same pooling)."""
    monkeypatch.setattr("toolkit._extract.PIECE_CHARS", 150, raising=False)  # ~25 pieces
    enc = load_encoder(tiny_mlm_dir)
    line = long_text(4000, seed=3)
    vs = extract_vectors(
        enc, texts=[line], unit=unit, mode="contextual", layers=layers, pooling=pooling, batch_size=3,
        show_progress=False,
    )  # fmt: skip
    expected = reference_contextual(
        enc, line, unit=unit, layers=[enc.num_layers + 1 + i if i < 0 else i for i in layers], pooling=pooling
    )
    assert len(vs) > 50 and set(vs.tokens) <= set(expected)
    for item in vs.tokens:
        np.testing.assert_allclose(vs[item], expected[item], rtol=1e-4, atol=1e-5, err_msg=item)


def test_contextual_very_long_line_streams_its_windows(tiny_mlm_dir, monkeypatch):
    """A 300,000-character line (thousands of windows) never reaches the tokenizer whole, goes through the
    model a batch of windows at a time, interleaved with tokenizing; cutting it elsewhere changes nothing."""
    enc = load_encoder(tiny_mlm_dir)
    line = long_text(300_000, seed=5, spaced=False)  # Chinese runs without spaces, English with them
    spy = Spy(monkeypatch, enc.tokenizer, enc.model, max_text_chars=65_536, max_texts=10_000, max_batch=8)
    vs = extract_vectors(enc, texts=[line], mode="contextual", batch_size=8, show_progress=False)
    assert max(spy.batches()) <= 8 and len(spy.batches()) > 100
    assert spy.interleaved()
    assert vs.coverage["n_occurrences"] == sum(not c.isspace() for c in line)
    assert np.isfinite(vs.vectors).all() and len(vs) == vs.coverage["n_found"]
    monkeypatch.setattr("toolkit._extract.PIECE_CHARS", 1000, raising=False)
    again = extract_vectors(enc, texts=[line], mode="contextual", batch_size=8, show_progress=False)
    assert again.tokens == vs.tokens
    np.testing.assert_allclose(again.vectors, vs.vectors, rtol=1e-5, atol=1e-6)


def test_text_pieces_cut_where_the_tokenizer_cuts(tokenizer):
    from toolkit._tagging import text_pieces

    text = long_text(20_000, seed=7) + " " + long_text(5_000, seed=8, spaced=False)
    pieces = list(text_pieces(text, max_chars=300))
    assert pieces[0][0] == 0 and pieces[-1][1] == len(text)
    assert all(a == b for (_, b), (a, _) in zip(pieces, pieces[1:], strict=False))  # contiguous
    assert all(0 < b - a <= 300 for a, b in pieces)
    whole = tokenizer(text, add_special_tokens=False)["input_ids"]
    parts = tokenizer([text[a:b] for a, b in pieces], add_special_tokens=False)["input_ids"]
    assert [t for p in parts for t in p] == whole
    assert list(text_pieces("short")) == [(0, 5)]


# ------------------------------------------------------------------------------------------------- NER
def reference_windows(words, tags, tokenizer, *, max_length, stride, label_all_tokens=False):
    """Windows built from the whole sentence at once (make_windows + token_owners), as before streaming."""
    pieces = word_pieces(words, tokenizer)
    ids = [t for p in pieces for t in p]
    word_of = [w for w, p in enumerate(pieces) for _ in p]
    first = [k == 0 for p in pieces for k in range(len(p))]
    windows = make_windows(len(ids), max_tokens=max_length - 2, stride=stride)
    owners = token_owners(len(ids), windows)
    out = []
    for k, (s, e) in enumerate(windows):
        item = {
            "input_ids": [tokenizer.cls_token_id, *ids[s:e], tokenizer.sep_token_id],
            "attention_mask": [1] * (e - s + 2),
            "word_index": [-1]
            + [word_of[t] if first[t] and owners[t] == k else -1 for t in range(s, e)]
            + [-1],
            "window": k,
        }
        if tags is not None:
            labels = [IGNORE_INDEX]
            for t in range(s, e):
                tag = tags[word_of[t]]
                if owners[t] != k:
                    labels.append(IGNORE_INDEX)
                elif first[t]:
                    labels.append(L2I[tag])
                elif label_all_tokens:
                    labels.append(L2I.get("I-" + tag[2:], L2I[tag]) if tag.startswith("B-") else L2I[tag])
                else:
                    labels.append(IGNORE_INDEX)
            item["labels"] = labels + [IGNORE_INDEX]
        out.append(item)
    return out


def test_streamed_windows_equal_whole_sentence_windows(tokenizer):
    from toolkit._tagging import iter_sentence_windows

    rng = random.Random(11)
    for case in range(60):
        words = [w for w, _, _ in split_words(long_text(rng.randint(0, 600), seed=case))]
        tags = [rng.choice(LABELS) for _ in words]
        max_length = rng.randint(3, 40)
        stride = rng.randint(0, max_length - 3)
        audit = AlignmentAudit()
        streamed = list(
            iter_sentence_windows(
                words, tags, tokenizer, label2id=L2I, max_length=max_length, stride=stride,
                label_all_tokens=bool(case % 2), audit=audit, chunk_words=rng.randint(1, 50),
            )
        )  # fmt: skip
        expected = reference_windows(
            words, tags, tokenizer, max_length=max_length, stride=stride, label_all_tokens=bool(case % 2)
        )
        assert streamed == expected, (case, len(words), max_length, stride)
        assert audit.n_windows == len(expected) and audit.n_labels_lost == 0 and audit.n_words == len(words)


def test_windows_are_made_lazily(tokenizer, monkeypatch):
    """The first window of a 20,000-word sentence comes after tokenizing a chunk of words, not all."""
    from toolkit._tagging import iter_sentence_windows

    words = [w for w, _, _ in split_words(long_text(60_000, seed=2))]
    assert len(words) > 20_000
    tokenized = []
    real = word_pieces

    def spy(chunk, tok, audit=None):
        tokenized.append(len(chunk))
        return real(chunk, tok, audit)

    monkeypatch.setattr("toolkit._tagging.word_pieces", spy)
    windows = iter_sentence_windows(
        words, None, tokenizer, label2id=None, max_length=32, stride=8, chunk_words=500
    )
    first = next(windows)
    assert first["window"] == 0 and sum(tokenized) <= 1000
    assert sum(1 for _ in windows) > 1000 and sum(tokenized) == len(words)


def reference_entities(tagger: NERTagger, text: str) -> tuple[list[str], list[tuple[str, int, int]]]:
    """Every window of the whole sentence built first, all through the model, then merged and decoded."""
    words = [w for w, _, _ in split_words(text)]
    windows = reference_windows(
        words, None, tagger.tokenizer, max_length=tagger.max_length, stride=tagger.stride
    )
    width = max(len(w["input_ids"]) for w in windows)
    ids = torch.full((len(windows), width), tagger.tokenizer.pad_token_id)
    mask = torch.zeros_like(ids)
    for r, w in enumerate(windows):
        ids[r, : len(w["input_ids"])] = torch.tensor(w["input_ids"])
        mask[r, : len(w["input_ids"])] = 1
    with torch.inference_mode():
        logits = tagger.model(input_ids=ids, attention_mask=mask).logits.numpy()
    scores = merge_window_scores(
        windows, [logits[r, : len(w["input_ids"])] for r, w in enumerate(windows)], len(words)
    )
    tags = [LABELS[i] for i in decode_tags(scores, LABELS)]
    return tags, bio_entities(tags)


def test_ner_very_long_sentence_streams_its_windows(tiny_tagger_dir, monkeypatch):
    """A 60,000-character sentence: words tokenized a chunk at a time, windows through the model a batch at
    a time as they are made, and the entities of the whole-sentence computation."""
    text = long_text(60_000, seed=9)
    tagger = NERTagger(tiny_tagger_dir, max_length=24, stride=6, batch_size=8)
    expected_tags, expected = reference_entities(tagger, text)
    spy = Spy(monkeypatch, tagger.tokenizer, tagger.model, max_text_chars=10**9, max_texts=4096, max_batch=8)
    entities = tagger(text)
    assert len(spy.batches()) > 100 and spy.interleaved()
    words = split_words(text)
    assert [(e["start"], e["end"], e["label"]) for e in entities] == [
        (words[a][1], words[b - 1][2], kind) for kind, a, b in expected
    ]
    assert all(e["text"] == text[e["start"] : e["end"]] for e in entities)
    assert tagger.predict_words([[w for w, _, _ in words]])[0] == expected_tags


# ---------------------------------------------------------------------------------------------- packing
def reference_pack(texts, tokenizer, *, block_size, segmenter):
    """Each document tokenized whole, as before streaming."""
    enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
    starts = [
        word_start_flags(enc.word_ids(i), enc["offset_mapping"][i], segment_word_starts(t, segmenter))
        for i, t in enumerate(texts)
    ]
    return pack_into_blocks(
        enc["input_ids"], starts, block_size=block_size, cls_id=tokenizer.cls_token_id,
        sep_id=tokenizer.sep_token_id, pad_id=tokenizer.pad_token_id,
    )  # fmt: skip


def test_packing_a_long_document_tokenizes_it_in_bounded_calls(tokenizer, monkeypatch):
    """A 100,000-character document among short ones is tokenized in calls of at most 5,000 characters,
    and packs into the blocks (and whole-word flags) of tokenizing it whole."""
    texts = [
        "北京是中国的首都。",
        long_text(100_000, seed=4),
        "",
        "the cat sleeps.",
        long_text(20_000, seed=6, spaced=False),
    ]
    expected = reference_pack(texts, tokenizer, block_size=32, segmenter="jieba")
    monkeypatch.setattr("toolkit._packing.TOKENIZE_CHARS", 5000, raising=False)
    monkeypatch.setattr("toolkit._packing.PIECE_CHARS", 1000, raising=False)

    class NoModel(torch.nn.Module):
        def forward(self, input_ids=None):  # packing runs no model: the spy only watches the tokenizer
            raise AssertionError("no model here")

    spy = Spy(monkeypatch, tokenizer, NoModel(), max_text_chars=5000, max_texts=10_000, max_batch=0)
    out = tokenize_and_pack(
        {"text": texts}, tokenizer=tokenizer, block_size=32, with_word_starts=True, segmenter="jieba"
    )
    assert out == expected
    assert len([e for e in spy.events if e[0] == "tokenize"]) >= 24


def test_streaming_packing_of_a_long_document(tokenizer, monkeypatch):
    monkeypatch.setattr("toolkit._packing.TOKENIZE_CHARS", 5000, raising=False)
    texts = [long_text(50_000, seed=1), "a short line."]
    lazy = prepare_mlm_dataset(
        datasets.Dataset.from_dict({"text": texts}).to_iterable_dataset(), tokenizer, block_size=32
    )
    blocks = [r["input_ids"] for r in lazy]
    assert blocks == reference_pack(texts, tokenizer, block_size=32, segmenter="jieba")["input_ids"]
