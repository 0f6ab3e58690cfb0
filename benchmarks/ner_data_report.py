#!/usr/bin/env python
"""Why do the small transformer taggers score ~82 entity F1 on MSRA's held-out part but ~70 on its test file?
A report on the data alone: no model is loaded or trained.

    python benchmarks/ner_data_report.py                 # ~20 s on 2 cores; data read in place from ../shared/data
    python benchmarks/ner_data_report.py --data_dir /elsewhere/data

For MSRA (train = the 95% the recipe trains on, held_out = the 5% it holds out, test) and, as a reference
where dev and test are other documents than train, CoNLL-2003 (train / dev / test), it measures:

1. sentence lengths in tokens and how many sentences need more than one window of the recipe (``max_length``
   128 = 126 tokens + [CLS] + [SEP], ``stride`` 16);
2. the label distribution, entity counts and lengths by type, the share of tokens inside entities;
3. entity surface overlap: the share of a split's entity mentions (type + surface string) that also occur as
   an entity in the training part;
4. for MSRA, full-width characters (U+FF01-U+FF5E and U+3000) and ASCII digits / Latin letters inside Chinese
   text, raw and after full-width -> half-width folding (SOURCE.md: the test file keeps full-width digits
   and letters that train has in half-width);
5. for MSRA, how sentences end (train is cut into chunks of at most 100 characters, test is real sentences);
6. long n-gram overlap with the training part (repeated text, e.g. the same story twice in the file).

The held-out part is the recipe's own: ``read_conll`` then ``hold_out_validation`` with the
``validation_split`` of recipes/configs/ner/msra.yaml (by content hash, ``content_key``), as
``recipes/train_ner.py`` does it. Figures are printed and written to benchmarks/results/ner_data_report.json.
"""

from __future__ import annotations

import argparse
import json
import math
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import yaml

from toolkit import NERSentence, read_conll
from toolkit.finetune import content_key, hold_out_validation
from toolkit.ner import normalise_schemes

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results" / "ner_data_report.json"
MSRA_CONFIG = ROOT / "recipes" / "configs" / "ner" / "msra.yaml"

MAX_LENGTH, STRIDE = 128, 16  # the recipe's window (toolkit/config.py defaults; msra.yaml keeps them)
BODY = MAX_LENGTH - 2  # tokens of a sentence in one window: [CLS] and [SEP] take two
PERCENTILES = (50, 90, 99)
FINAL = set("。！？；…!?;")  # sentence-final punctuation
CLOSERS = set("”’」』）)》\"'")  # may follow the final mark (。” ends a sentence)
CHUNK_CAP = 100  # train.txt's chunks are at most 100 characters (SOURCE.md), bar 6 re-joined ones
NEAR_CAP = 90  # "near 100": 90 to 100 tokens
NGRAM = {"zh": 20, "en": 8}  # long n-grams (characters for Chinese, words for English)


# ------------------------------------------------------------------------------------------------ helpers
FOLD_TABLE = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


def fold(text: str) -> str:
    """Full-width -> half-width: U+FF01-U+FF5E to U+0021-U+007E, U+3000 (ideographic space) to a space."""
    return text.translate(FOLD_TABLE)


def is_full_width(c: str) -> bool:
    return 0xFF01 <= ord(c) <= 0xFF5E or c == "\u3000"


def is_full_width_alnum(c: str) -> bool:
    """A full-width digit or Latin letter (the characters train.txt has in half-width)."""
    return 0xFF10 <= ord(c) <= 0xFF19 or 0xFF21 <= ord(c) <= 0xFF3A or 0xFF41 <= ord(c) <= 0xFF5A


def is_ascii_alnum(text: str) -> bool:
    return text.isascii() and text.isalnum()


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of ``values`` (sorted or not)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] if ordered else 0


def spread(values: Sequence[float]) -> dict:
    return {
        "mean": round(sum(values) / len(values), 2) if values else 0,
        **{f"p{p}": percentile(values, p) for p in PERCENTILES},
        "max": max(values, default=0),
    }


def share(part: float, whole: float) -> float:
    """``part / whole`` in percent, 2 decimals (0 when ``whole`` is 0)."""
    return round(100 * part / whole, 2) if whole else 0.0


def windows(n_tokens: int) -> int:
    """Windows the recipe cuts a sentence of ``n_tokens`` into (``BODY`` tokens each, ``STRIDE`` shared)."""
    return 1 if n_tokens <= BODY else 1 + math.ceil((n_tokens - BODY) / (BODY - STRIDE))


def entities(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """``(type, start, end)`` of each entity of a BIO sequence (end exclusive)."""
    spans: list[tuple[str, int, int]] = []
    kind, start = None, 0
    for i, tag in enumerate([*tags, "O"]):
        if kind is not None and not (tag[:2] == "I-" and tag[2:] == kind):
            spans.append((kind, start, i))
            kind = None
        if tag[:2] == "B-" or (tag[:2] == "I-" and kind is None):
            kind, start = tag[2:], i
    return spans


@dataclass
class Part:
    """One split's sentences and what several figures need from them, computed once."""

    sentences: list[NERSentence]
    joiner: str  # between tokens of a surface string: "" for Chinese characters, " " for English words
    normalise: Callable[[str], str] = str
    spans: list[list[tuple[str, int, int]]] = field(init=False)
    _ngrams: dict[int, set[int]] = field(init=False, default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.spans = [entities(s.tags) for s in self.sentences]

    def mentions(self, normalise: Callable[[str], str] = str) -> list[tuple[str, str]]:
        """Every entity mention as ``(type, surface string)``."""
        return [
            (kind, normalise(self.joiner.join(s.tokens[a:b])))
            for s, spans in zip(self.sentences, self.spans, strict=True)
            for kind, a, b in spans
        ]

    @cached_property
    def raw_mentions(self) -> list[tuple[str, str]]:
        return self.mentions()

    @cached_property
    def normalised_mentions(self) -> list[tuple[str, str]]:
        return self.mentions(self.normalise)

    def grams(self, s: NERSentence, n: int) -> list[str]:
        """The sentence's n-grams of (normalised) tokens."""
        units = [self.normalise(t) for t in s.tokens]
        text = self.joiner.join(units)
        if not self.joiner and len(text) == len(units):  # one character per token: slice the string
            return [text[i : i + n] for i in range(len(text) - n + 1)]
        return [self.joiner.join(units[i : i + n]) for i in range(len(units) - n + 1)]

    @cached_property
    def texts(self) -> set[str]:
        return {self.joiner.join(self.normalise(t) for t in s.tokens) for s in self.sentences}

    def ngram_keys(self, n: int) -> set[int]:
        """Hashes of every n-gram of the part (Python's string hash: stable within one run)."""
        if n not in self._ngrams:
            self._ngrams[n] = {hash(g) for s in self.sentences for g in self.grams(s, n)}
        return self._ngrams[n]


# ------------------------------------------------------------------------------------------------ figures
def lengths_and_windows(part: Part) -> dict:
    lengths = [len(s.tokens) for s in part.sentences]
    long = [n for n in lengths if n > BODY]
    n_entities = sum(map(len, part.spans))
    in_long = sum(len(sp) for n, sp in zip(lengths, part.spans, strict=True) if n > BODY)
    return {
        "sentences": len(lengths),
        "tokens": sum(lengths),
        "characters": sum(len(t) for s in part.sentences for t in s.tokens),
        "sentence_length_tokens": spread(lengths),
        f"sentences_over_{BODY}_tokens": len(long),
        f"sentences_over_{BODY}_tokens_pct": share(len(long), len(lengths)),
        f"tokens_in_sentences_over_{BODY}_pct": share(sum(long), sum(lengths)),
        f"entities_in_sentences_over_{BODY}_pct": share(in_long, n_entities),
        f"sentences_over_{CHUNK_CAP}_tokens_pct": share(sum(n > CHUNK_CAP for n in lengths), len(lengths)),
        "recipe_windows": sum(windows(n) for n in lengths),
    }


def labels(part: Part) -> dict:
    tags = Counter(t for s in part.sentences for t in s.tags)
    n_tokens = sum(tags.values())
    spans = [(kind, b - a) for sp in part.spans for kind, a, b in sp]
    by_type = Counter(kind for kind, _ in spans)
    return {
        "tag_share_pct": {t: share(n, n_tokens) for t, n in sorted(tags.items())},
        "entities": len(spans),
        "entities_by_type": dict(sorted(by_type.items())),
        "entity_type_share_pct": {k: share(n, len(spans)) for k, n in sorted(by_type.items())},
        "entities_per_1000_tokens": round(1000 * len(spans) / n_tokens, 2) if n_tokens else 0,
        "sentences_without_entity_pct": share(sum(not sp for sp in part.spans), len(part.spans)),
        "tokens_inside_entities_pct": share(sum(n for _, n in spans), n_tokens),
        "entity_length_tokens": {
            "all": spread([n for _, n in spans]),
            **{k: spread([n for kind, n in spans if kind == k]) for k in sorted(by_type)},
        },
    }


def overlap(split: Sequence[tuple[str, str]], references: Sequence[Sequence[tuple[str, str]]]) -> dict:
    """How many of ``split``'s mentions (type, surface) occur as an entity in the reference parts."""
    known = {m for ref in references for m in ref}
    known_surfaces = {surface for _, surface in known}
    same = [m in known for m in split]
    other = [not hit and m[1] in known_surfaces for m, hit in zip(split, same, strict=True)]
    distinct = set(split)
    by_type: dict[str, list[bool]] = {}
    for (kind, _), hit in zip(split, same, strict=True):
        by_type.setdefault(kind, []).append(hit)
    return {
        "mentions": len(split),
        "seen_same_type_pct": share(sum(same), len(split)),
        "seen_only_as_other_type_pct": share(sum(other), len(split)),
        "never_seen_pct": share(len(split) - sum(same) - sum(other), len(split)),
        "distinct_entities": len(distinct),
        "distinct_seen_same_type_pct": share(len(distinct & known), len(distinct)),
        "seen_same_type_pct_by_type": {k: share(sum(v), len(v)) for k, v in sorted(by_type.items())},
    }


def characters(part: Part) -> dict:
    """Full-width characters and ASCII digits / Latin letters (Chinese data: one character per token)."""
    tokens = [t for s in part.sentences for t in s.tokens]
    inside = [False] * len(tokens)
    entity_tokens: list[list[str]] = []
    k = 0
    for s, spans in zip(part.sentences, part.spans, strict=True):
        for _, a, b in spans:
            inside[k + a : k + b] = [True] * (b - a)
            entity_tokens.append(s.tokens[a:b])
        k += len(s.tokens)
    fw = [any(map(is_full_width, t)) for t in tokens]
    fw_alnum = [any(map(is_full_width_alnum, t)) for t in tokens]
    alnum = [is_ascii_alnum(fold(t)) for t in tokens]
    digits = sum(a and fold(t).isdigit() for t, a in zip(tokens, alnum, strict=True))
    nfkc = Counter(t for t in tokens if not t.isascii() and is_ascii_alnum(unicodedata.normalize("NFKC", t)))
    n_fw = sum(sum(map(is_full_width, t)) for t in tokens)
    n_fw_alnum = sum(sum(map(is_full_width_alnum, t)) for t in tokens)
    with_alnum = sum(any(is_ascii_alnum(fold(t)) for t in s.tokens) for s in part.sentences)
    n_entities = len(entity_tokens)
    return {
        "full_width_chars": n_fw,
        "full_width_digits_letters": n_fw_alnum,
        "full_width_other_chars": n_fw - n_fw_alnum,  # punctuation and U+3000
        "full_width_chars_inside_entities": sum(
            sum(map(is_full_width, t)) for t, i in zip(tokens, inside, strict=True) if i
        ),
        "full_width_digits_letters_inside_entities": sum(
            sum(map(is_full_width_alnum, t)) for t, i in zip(tokens, inside, strict=True) if i
        ),
        "nfkc_digit_letter_tokens": sum(nfkc.values()),  # also circled digits, Roman numerals...
        "nfkc_digit_letter_tokens_outside_full_width_range": {
            t: n for t, n in nfkc.most_common() if not is_full_width_alnum(t)
        },
        "tokens_changed_by_folding": sum(fw),
        "tokens_changed_by_folding_digits_letters_only": sum(fw_alnum),
        "entities_with_full_width_char_pct": share(
            sum(any(is_full_width(c) for t in e for c in t) for e in entity_tokens), n_entities
        ),
        "entities_with_full_width_digit_letter_pct": share(
            sum(any(is_full_width_alnum(c) for t in e for c in t) for e in entity_tokens), n_entities
        ),
        "ascii_digit_letter_tokens_raw": sum(map(is_ascii_alnum, tokens)),
        "ascii_digit_letter_tokens_after_folding": sum(alnum),
        "ascii_digit_tokens_after_folding": digits,
        "ascii_letter_tokens_after_folding": sum(alnum) - digits,
        "ascii_digit_letter_tokens_pct": share(sum(alnum), len(tokens)),
        "ascii_digit_letter_runs": sum(a and (i == 0 or not alnum[i - 1]) for i, a in enumerate(alnum)),
        "ascii_digit_letter_tokens_inside_entities": sum(a and i for a, i in zip(alnum, inside, strict=True)),
        "entities_with_digit_letter_pct": share(
            sum(any(is_ascii_alnum(fold(t)) for t in e) for e in entity_tokens), n_entities
        ),
        "sentences_with_digit_letter": with_alnum,
        "sentences_with_digit_letter_pct": share(with_alnum, len(part.sentences)),
    }


def endings(part: Part) -> dict:
    """Sentences whose last token (after closing quotes / brackets) is not sentence-final punctuation, and how
    many of those are near the 100-character chunk cap of train.txt."""

    def open_end(s: NERSentence) -> bool:
        tokens = list(s.tokens)
        while len(tokens) > 1 and tokens[-1] in CLOSERS:
            tokens.pop()
        return tokens[-1] not in FINAL

    sentences = part.sentences
    cut = [len(s.tokens) for s in sentences if open_end(s)]
    near = sum(NEAR_CAP <= n <= CHUNK_CAP for n in cut)
    return {
        "final_punctuation": "".join(sorted(FINAL)),
        "not_ending_in_final_punctuation": len(cut),
        "not_ending_in_final_punctuation_pct": share(len(cut), len(sentences)),
        f"of_which_{NEAR_CAP}_to_{CHUNK_CAP}_tokens": near,
        f"of_which_{NEAR_CAP}_to_{CHUNK_CAP}_tokens_pct_of_all_sentences": share(near, len(sentences)),
        f"of_which_under_{NEAR_CAP}_tokens": sum(n < NEAR_CAP for n in cut),
        f"of_which_over_{CHUNK_CAP}_tokens": sum(n > CHUNK_CAP for n in cut),
        f"all_sentences_{NEAR_CAP}_to_{CHUNK_CAP}_tokens_pct": share(
            sum(NEAR_CAP <= len(s.tokens) <= CHUNK_CAP for s in sentences), len(sentences)
        ),
        "last_token_counts_top10": dict(Counter(s.tokens[-1] for s in sentences).most_common(10)),
    }


def ngram_overlap(part: Part, references: Sequence[Part], n: int) -> dict:
    """Share of the split's long n-grams (and of its sentences with at least one) found in the references,
    and of its sentences identical to a reference sentence."""
    keys = [ref.ngram_keys(n) for ref in references]
    hits = total = with_hit = eligible = 0
    for s in part.sentences:
        found = [any(hash(g) in k for k in keys) for g in part.grams(s, n)]
        hits, total = hits + sum(found), total + len(found)
        eligible += bool(found)
        with_hit += any(found)
    exact = sum(any(t in ref.texts for ref in references) for t in part.texts)
    return {
        "n": n,
        "ngrams_in_reference_pct": share(hits, total),
        f"sentences_with_a_shared_{n}_gram_pct": share(with_hit, eligible),
        "sentences_long_enough": eligible,
        "distinct_sentences_identical_to_a_reference_sentence": exact,
    }


# ------------------------------------------------------------------------------------------------ datasets
def read(path: Path) -> list[NERSentence]:
    sentences = read_conll(path)
    normalise_schemes(sentences)  # as the recipe does (both files are already valid BIO)
    return sentences


def report_dataset(
    parts: dict[str, Part], references: dict[str, dict[str, list[str]]], *, language: str
) -> dict:
    """Every figure for each split; ``references[split]`` maps a name to the training parts its entities and
    n-grams are compared with (e.g. ``{"full_train_file": ["train", "held_out"]}``)."""
    out: dict[str, dict] = {}
    for name, part in parts.items():
        figures: dict = {"lengths": lengths_and_windows(part), "labels": labels(part)}
        if language == "zh":
            figures["characters"] = characters(part)
            figures["sentence_endings"] = endings(part)
        for ref_name, ref_parts in references.get(name, {}).items():
            refs = [parts[r] for r in ref_parts]
            entry = {"entity_overlap": overlap(part.raw_mentions, [r.raw_mentions for r in refs])}
            if part.normalise is not str:
                entry["entity_overlap_after_folding"] = overlap(
                    part.normalised_mentions, [r.normalised_mentions for r in refs]
                )
            entry["long_ngram_overlap"] = ngram_overlap(part, refs, NGRAM[language])
            figures[f"vs_{ref_name}"] = entry
        out[name] = figures
    return out


def msra(data_dir: Path, fraction: float) -> tuple[dict, dict]:
    full = read(data_dir / "msra_ner" / "train.txt")
    split = hold_out_validation({"train": full}, fraction, source="msra_ner/train.txt")
    kept = {content_key(s) for s in split["train"]}  # repeated chunks land on one side only: expect 0
    leaked = sum(content_key(s) in kept for s in split["validation"])
    test = read(data_dir / "msra_ner" / "test.txt")
    parts = {
        name: Part(sentences, "", fold)
        for name, sentences in (("train", split["train"]), ("held_out", split["validation"]), ("test", test))
    }
    references = {
        "held_out": {"train": ["train"]},  # the 95% the recipe trains on
        "test": {"train": ["train"], "full_train_file": ["train", "held_out"]},
    }
    info = {
        "train_file_sentences": len(full),
        "validation_split": fraction,
        "held_out_sentences": len(split["validation"]),
        "train_sentences": len(split["train"]),
        "held_out_sentences_also_in_train": leaked,
    }
    return report_dataset(parts, references, language="zh"), info


def conll(data_dir: Path) -> dict:
    parts = {
        name: Part(read(data_dir / "conll2003" / f"{name}.txt"), " ") for name in ("train", "dev", "test")
    }
    references = {"dev": {"train": ["train"]}, "test": {"train": ["train"]}}
    return report_dataset(parts, references, language="en")


# ------------------------------------------------------------------------------------------------ findings
def findings(m: dict, c: dict) -> list[str]:
    tr, ho, te = m["train"], m["held_out"], m["test"]
    ho_o = ho["vs_train"]["entity_overlap"]
    te_raw = te["vs_full_train_file"]["entity_overlap"]
    te_fold = te["vs_full_train_file"]["entity_overlap_after_folding"]
    te_95 = te["vs_train"]["entity_overlap_after_folding"]
    cd, ct = c["dev"]["vs_train"]["entity_overlap"], c["test"]["vs_train"]["entity_overlap"]
    L = {k: v["lengths"] for k, v in m.items()}
    big = f"sentences_over_{BODY}_tokens_pct"
    ch_tr, ch_te = tr["characters"], te["characters"]
    e_tr, e_te = tr["sentence_endings"], te["sentence_endings"]
    lab = {k: v["labels"] for k, v in m.items()}
    out = [
        f"{te_fold['seen_same_type_pct']:.1f}% of MSRA test entity mentions (type + surface, after full-width "
        f"folding) occur as entities in the full train file ({te_95['seen_same_type_pct']:.1f}% in the 95% the "
        f"recipe trains on) vs {ho_o['seen_same_type_pct']:.1f}% of held-out mentions in the remaining 95%; "
        f"without folding the test figure is {te_raw['seen_same_type_pct']:.1f}%.",
        f"{te_95['never_seen_pct']:.1f}% of MSRA test entity mentions were never seen as an entity of any type in "
        f"the 95% training part vs {ho_o['never_seen_pct']:.1f}% of held-out mentions; by type, seen: test "
        + ", ".join(f"{k} {v:.1f}%" for k, v in te_95["seen_same_type_pct_by_type"].items())
        + " vs held-out "
        + ", ".join(f"{k} {v:.1f}%" for k, v in ho_o["seen_same_type_pct_by_type"].items())
        + ".",
        f"CoNLL-2003 for reference: {ct['seen_same_type_pct']:.1f}% of test and {cd['seen_same_type_pct']:.1f}% "
        "of dev entity mentions occur as entities in train.",
        f"MSRA sentence length (tokens) p50/p90/p99/max: train {_pcts(L['train'])}, held-out "
        f"{_pcts(L['held_out'])}, test {_pcts(L['test'])}; {L['test'][big]:.1f}% of test sentences "
        f"({L['test'][f'tokens_in_sentences_over_{BODY}_pct']:.1f}% of test tokens, "
        f"{L['test'][f'entities_in_sentences_over_{BODY}_pct']:.1f}% of test entities) exceed one {BODY}-token "
        f"window vs {L['held_out'][big]:.2f}% of held-out and {L['train'][big]:.2f}% of train sentences.",
        f"{L['test'][f'sentences_over_{CHUNK_CAP}_tokens_pct']:.1f}% of MSRA test sentences are longer than "
        f"{CHUNK_CAP} tokens vs {L['train'][f'sentences_over_{CHUNK_CAP}_tokens_pct']:.2f}% of train chunks and "
        f"{L['held_out'][f'sentences_over_{CHUNK_CAP}_tokens_pct']:.2f}% of held-out chunks.",
        f"{e_tr['not_ending_in_final_punctuation_pct']:.1f}% of MSRA train chunks "
        f"({e_tr['not_ending_in_final_punctuation']:,}) end without sentence-final punctuation, "
        f"{e_tr[f'of_which_{NEAR_CAP}_to_{CHUNK_CAP}_tokens']:,} of them {NEAR_CAP}-{CHUNK_CAP} tokens long (the "
        f"100-character chunking); {e_te['not_ending_in_final_punctuation_pct']:.1f}% of test sentences do.",
        f"The MSRA test file has {ch_te['full_width_digits_letters']:,} full-width digits/letters "
        f"({ch_te['full_width_digits_letters_inside_entities']:,} inside entities; "
        f"{ch_te['nfkc_digit_letter_tokens']:,} tokens NFKC maps to a digit/letter, circled digits included) vs "
        f"{ch_tr['full_width_digits_letters']:,} in the train part; folding digits/letters changes "
        f"{ch_te['tokens_changed_by_folding_digits_letters_only']:,} test tokens "
        f"({ch_te['tokens_changed_by_folding']:,} with full-width punctuation too, which train also keeps: "
        f"{ch_tr['full_width_other_chars']:,} such characters there).",
        f"{ch_te['entities_with_full_width_digit_letter_pct']:.2f}% of MSRA test entities contain a full-width "
        f"digit/letter ({ch_te['entities_with_full_width_char_pct']:.2f}% any full-width character).",
        f"After folding, {ch_te['ascii_digit_letter_tokens_pct']:.2f}% of MSRA test tokens are ASCII digits/letters "
        f"({ch_te['ascii_digit_letter_tokens_after_folding']:,}; raw half-width: "
        f"{ch_te['ascii_digit_letter_tokens_raw']:,}), in {ch_te['sentences_with_digit_letter']:,} test sentences "
        f"({ch_te['sentences_with_digit_letter_pct']:.1f}%), vs {ch_tr['ascii_digit_letter_tokens_pct']:.2f}% of "
        f"train tokens in {ch_tr['sentences_with_digit_letter_pct']:.1f}% of train chunks.",
        "MSRA entity types (share of entities): "
        + "; ".join(
            f"{name} " + ", ".join(f"{k} {v:.1f}%" for k, v in lab[name]["entity_type_share_pct"].items())
            for name in ("train", "held_out", "test")
        )
        + f"; tokens inside entities: train {lab['train']['tokens_inside_entities_pct']:.1f}%, held-out "
        f"{lab['held_out']['tokens_inside_entities_pct']:.1f}%, test {lab['test']['tokens_inside_entities_pct']:.1f}%.",
        "MSRA mean entity length (tokens): "
        + "; ".join(
            f"{name} "
            + ", ".join(
                f"{k} {v['mean']:.2f}" for k, v in lab[name]["entity_length_tokens"].items() if k != "all"
            )
            for name in ("train", "held_out", "test")
        )
        + ".",
        f"Long repeated text: {ho['vs_train']['long_ngram_overlap']['sentences_with_a_shared_20_gram_pct']:.1f}% of "
        "MSRA held-out chunks share a 20-character string with the 95% training part vs "
        f"{te['vs_train']['long_ngram_overlap']['sentences_with_a_shared_20_gram_pct']:.1f}% of test sentences "
        f"(after folding); {te['vs_full_train_file']['long_ngram_overlap']['distinct_sentences_identical_to_a_reference_sentence']}"
        " distinct test sentences are identical to a train chunk.",
    ]
    return out


def _pcts(lengths: dict) -> str:
    s = lengths["sentence_length_tokens"]
    return "/".join(str(s[k]) for k in ("p50", "p90", "p99", "max"))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data_dir", default=str(DATA), help="folder holding msra_ner/ and conll2003/")
    parser.add_argument("--output", default=str(RESULTS))
    opts = parser.parse_args(argv)
    start = time.perf_counter()
    data_dir = Path(opts.data_dir)
    fraction = float(yaml.safe_load(MSRA_CONFIG.read_text(encoding="utf-8"))["validation_split"])
    msra_figures, msra_info = msra(data_dir, fraction)
    conll_figures = conll(data_dir)
    result = {
        "notes": [
            "Command: python benchmarks/ner_data_report.py (data read in place from ../shared/data relative to "
            "the repository root; --data_dir to change). Reads text files only: no model, no tokenizer.",
            f"MSRA held_out = the recipe's own {fraction:.0%} of msra_ner/train.txt (recipes/configs/ner/msra.yaml "
            "validation_split; toolkit.finetune.hold_out_validation on read_conll's sentences, by content_key "
            "hash); MSRA train = the remaining part the recipe trains on; full_train_file = the whole file.",
            f"Lengths are in file tokens. For MSRA one token is one character, and the recipe's Chinese "
            f"tokenizer gives one token per character, so lengths approximate model tokens well; for CoNLL "
            f"they are words (WordPiece gives more tokens). One window of the recipe (max_length {MAX_LENGTH}, "
            f"stride {STRIDE}) holds {BODY} tokens; recipe_windows counts windows of "
            f"{BODY} tokens overlapping by {STRIDE}.",
            "Percentiles are nearest-rank. Entity overlap: a mention (type, surface string) counts as seen when "
            "the same type and string occur as an entity in the reference part; 'seen only as other type' when "
            "the string occurs only with another type. Surfaces are characters joined without space (MSRA) or "
            "words joined with a space (CoNLL).",
            "Folding: U+FF01-U+FF5E -> U+0021-U+007E, U+3000 -> space. Full-width digits/letters are "
            "U+FF10-FF19, U+FF21-FF3A, U+FF41-FF5A; the rest of the range is punctuation, which train.txt keeps "
            "full-width too. MSRA entity_overlap_after_folding and long_ngram_overlap fold both sides.",
            f"Sentence endings: the last token (after closing quotes/brackets) is not one of "
            f"{''.join(sorted(FINAL))}; 'near 100' = {NEAR_CAP}-{CHUNK_CAP} tokens (train.txt was cut into chunks "
            "of at most 100 characters, test.txt keeps real sentences).",
            f"Long n-gram overlap: share of a split's {NGRAM['zh']}-character (MSRA) / {NGRAM['en']}-word (CoNLL) "
            "n-grams that occur anywhere in the reference part, and of its sentences with at least one.",
        ],
        "msra": {"split": msra_info, **msra_figures},
        "conll2003": conll_figures,
    }
    result["findings"] = findings(msra_figures, conll_figures)
    result["seconds"] = round(time.perf_counter() - start, 1)
    for line in result["findings"]:
        print("-", line)
    print(f"{result['seconds']} s")
    path = Path(opts.output)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"written to {path}")
    return result


if __name__ == "__main__":
    main()
