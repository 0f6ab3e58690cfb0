"""Word-level NER, from the recipe's side: the splits read and converted to BIO, encoded into windows
(alignment: ``toolkit._tagging``), valid-BIO decoding, entity scores under both decodings, prediction
files, and the window recorded for inference (``toolkit.NERTagger``, in ``toolkit._tagger``).

Words are tokenized one by one, so every word keeps at least one token: a word the tokenizer maps to
nothing (a space, a zero-width or control character, an unknown symbol) becomes ``[UNK]`` and is counted.
Nothing is truncated: long sentences are windowed and merged back, and the audit proves no label was lost.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
from transformers import (
    AutoModelForTokenClassification,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    TrainingArguments,
)

from ._labelled import NERSentence, normalise_schemes, read_conll, read_ner_jsonl
from ._metrics import load_metric
from ._presets import LIGHT_TAGGER_DROPOUT
from ._tagger_heads import attach_tagger_head, crf_scores, has_tagger_head, head_description
from ._tagging import AlignmentAudit, bio_entities, decode_tags, encode_sentence, merge_window_scores
from ._text import join_tokens
from .config import FinetuneArguments, NERArguments
from .finetune import build_label_map, check_labels_known, finetune_model, finish_splits

__all__ = [
    "CRF_DECODING",
    "DECODINGS",
    "MODEL_INPUTS",
    "NERSplits",
    "build_ner_model",
    "decoding_name",
    "encode_ner_dataset",
    "encode_ner_splits",
    "ner_scores",
    "read_ner_split",
    "read_ner_splits",
    "record_window",
    "score_ner_split",
    "score_ner_splits",
    "windows_dataset",
    "word_predictions",
    "word_scores",
    "write_ner_predictions",
]

logger = logging.getLogger(__name__)

LIGHT_TAGGER_LSTM = 128  # LSTM units per direction of the light tagger when --bilstm_hidden is not given


# ------------------------------------------------------------------------------------------------ NER
def encode_ner_dataset(
    sentences: Sequence[NERSentence],
    tokenizer: PreTrainedTokenizerBase,
    *,
    label2id: dict[str, int] | None,
    max_length: int,
    stride: int,
    label_all_tokens: bool = False,
) -> tuple[list[dict], list[int], AlignmentAudit]:
    """Encode sentences into windows. Returns ``(windows, sentence_index_of_each_window, audit)``."""
    audit = AlignmentAudit()
    windows, owner = [], []
    for k, s in enumerate(sentences):
        for w in encode_sentence(
            s.tokens,
            s.tags if label2id is not None and s.tags else None,
            tokenizer,
            label2id=label2id,
            max_length=max_length,
            stride=stride,
            label_all_tokens=label_all_tokens,
            audit=audit,
        ):
            windows.append(w)
            owner.append(k)
    if audit.n_labels_lost:
        raise RuntimeError(f"alignment lost {audit.n_labels_lost} labels: this is a bug, please report it")
    return windows, owner, audit


def word_scores(
    windows: Sequence[dict],
    owner: Sequence[int],
    logits: np.ndarray | Sequence[np.ndarray],
    sentence_lengths: Sequence[int],
) -> list[np.ndarray]:
    """Word-level label scores ``(n_words, n_labels)`` per sentence (``sentence_lengths``: words per
    sentence) from window logits: padded ``(n_windows, L, n_labels)``, or one ``(length, n_labels)`` array per
    window; ``owner[i]`` is window i's sentence."""
    rows: list[list[int]] = [[] for _ in sentence_lengths]
    for row, k in enumerate(owner):
        rows[k].append(row)
    return [
        merge_window_scores([windows[r] for r in sentence_rows], [logits[r] for r in sentence_rows], n_words)
        for sentence_rows, n_words in zip(rows, sentence_lengths, strict=True)
    ]


def word_predictions(
    windows: Sequence[dict],
    owner: Sequence[int],
    logits: np.ndarray,
    sentence_lengths: Sequence[int],
    labels: Sequence[str],
    *,
    constrained: bool = True,
    crf: tuple | None = None,
) -> list[list[str]]:
    """Predicted tags per sentence from padded window logits (see :func:`word_scores`), decoded by
    :func:`~toolkit.decode_tags` (valid BIO sequences unless ``constrained=False``; a CRF's Viterbi with
    ``crf``)."""
    return _decode_all(word_scores(windows, owner, logits, sentence_lengths), labels, constrained, crf)


def _decode_all(
    scores: Sequence[np.ndarray], labels: Sequence[str], constrained: bool, crf: tuple | None = None
) -> list[list[str]]:
    return [[labels[i] for i in decode_tags(s, labels, constrained=constrained, crf=crf)] for s in scores]


def ner_scores(predicted: Sequence[Sequence[str]], gold: Sequence[Sequence[str]]) -> dict:
    """Entity-level scores in the default and strict modes (shipped offline metric)."""
    metric = load_metric("entity_f1")
    default = metric.compute(predictions=[list(p) for p in predicted], references=[list(g) for g in gold])
    strict = metric.compute(
        predictions=[list(p) for p in predicted], references=[list(g) for g in gold], mode="strict"
    )
    out = {k: v for k, v in default.items() if k.startswith("overall_")}
    out.update({f"strict_{k}": v for k, v in strict.items() if k.startswith("overall_")})
    out["per_type"] = {k: v for k, v in default.items() if not k.startswith("overall_")}
    return out


DECODINGS = {True: "most probable valid BIO sequence", False: "best tag per word"}
CRF_DECODING = "CRF Viterbi (learned transitions, valid BIO)"


def decoding_name(constrained: bool, crf: bool) -> str:
    return CRF_DECODING if constrained and crf else DECODINGS[constrained]


def score_ner_split(
    windows: Sequence[dict],
    owner: Sequence[int],
    logits: np.ndarray,
    sentences: Sequence[NERSentence],
    labels: Sequence[str],
    *,
    constrained: bool = True,
    crf: tuple | None = None,
) -> tuple[dict, list[list[str]]]:
    """Entity scores of one split under both decodings, from one set of window logits.

    The ``constrained`` one (see :func:`~toolkit.decode_tags`) is the headline: its scores are the top-level
    keys and its tags are returned; the other decoding's overall scores are kept under ``other_decoding``,
    so what the constraint changes is measured on every run. With ``crf`` (a model's CRF layer, see
    :func:`~toolkit._tagger_heads.crf_scores`) the constrained decoding is the CRF's Viterbi.

    Returns:
        ``(scores, predicted tags per sentence)``; ``scores["decoding"]`` names the headline decoding.
    """
    gold = [s.tags for s in sentences]
    scores_per_word = word_scores(windows, owner, logits, [len(s.tokens) for s in sentences])
    headline, other = (_decode_all(scores_per_word, labels, c, crf) for c in (constrained, not constrained))
    scores = ner_scores(headline, gold) | {"decoding": decoding_name(constrained, crf is not None)}
    other_scores = ner_scores(other, gold)
    scores["other_decoding"] = {"decoding": decoding_name(not constrained, crf is not None)} | {
        k: v for k, v in other_scores.items() if k != "per_type"
    }
    return scores, headline


def write_ner_predictions(
    sentences: Sequence[NERSentence],
    predicted: Sequence[Sequence[str]],
    output_dir: str | os.PathLike,
    name: str,
) -> None:
    """Write ``<name>_predictions.conll`` (token, gold, predicted) and ``<name>_predictions.jsonl`` (spans)."""
    output_dir = Path(output_dir)
    with open(output_dir / f"{name}_predictions.conll", "w", encoding="utf-8") as conll, \
            open(output_dir / f"{name}_predictions.jsonl", "w", encoding="utf-8") as spans:  # fmt: skip
        for s, tags in zip(sentences, predicted, strict=True):
            gold = s.tags or ["O"] * len(s.tokens)
            for token, g, p in zip(s.tokens, gold, tags, strict=True):
                conll.write(f"{token}\t{g}\t{p}\n")
            conll.write("\n")
            entities = [
                {"label": kind, "start": a, "end": b, "text": join_tokens(s.tokens[a:b])}
                for kind, a, b in bio_entities(tags)
            ]
            spans.write(json.dumps({"tokens": s.tokens, "entities": entities}, ensure_ascii=False) + "\n")


MODEL_INPUTS = ("input_ids", "attention_mask", "labels")


def read_ner_split(path: str, ft: FinetuneArguments, *, labelled: bool = True) -> list[NERSentence]:
    """One split: JSON Lines (by ``--file_format`` or the extension) or CoNLL columns; with
    ``labelled=False`` a CoNLL file may be unlabelled (tokens only), and its tags are read if it has them."""
    fmt = (ft.file_format or Path(path).suffix.lstrip(".")).lower()
    decoding = {"encoding": ft.encoding, "encoding_errors": ft.encoding_errors}
    if fmt in ("jsonl", "json"):
        return read_ner_jsonl(path, **decoding)
    return read_conll(
        path,
        token_column=ft.token_column,
        tag_column=ft.tag_column,
        require_tags=True if labelled else None,
        **decoding,
    )


@dataclass
class NERSplits:
    """The sentences of each split (tags converted to BIO), where each came from, the label list (from the
    training split), and the scheme conversion report of each split."""

    data: dict[str, list[NERSentence]]
    sources: dict[str, str]
    labels: list[str]
    schemes: dict[str, dict]


def read_ner_splits(ft: FinetuneArguments, args: TrainingArguments) -> NERSplits:
    """Read and validate every split, hold out and cap (:func:`~toolkit.finetune.finish_splits`), convert
    tags to BIO (repairs counted), and build the label map from the training split. The test file may be
    unlabelled: it is then predicted, not scored.

    Raises:
        ToolkitInputError: a bad file or line, or a validation/test tag that training never saw.
    """
    sources = {"train": ft.train_file, "validation": ft.validation_file, "test": ft.test_file}
    data = {name: read_ner_split(path, ft, labelled=name != "test") for name, path in sources.items() if path}
    data = finish_splits(data, ft, args, source=ft.train_file)
    if ft.validation_split:
        sources["validation"] = f"{ft.train_file} (held-out part)"
    schemes = {
        name: normalise_schemes(sents, scheme=ft.tagging_scheme).__dict__ for name, sents in data.items()
    }
    labels = build_label_map([t for s in data["train"] for t in s.tags])
    for name in ("validation", "test"):
        if name in data:
            check_labels_known([(sources[name], s.line, s.tags) for s in data[name] if s.tags], labels)
    return NERSplits(data, {k: v for k, v in sources.items() if v}, labels, schemes)


def encode_ner_splits(
    splits: NERSplits, tokenizer: PreTrainedTokenizerBase, ft: FinetuneArguments
) -> tuple[dict[str, tuple[list[dict], list[int]]], dict[str, dict]]:
    """Align word labels to sub-tokens and window long sentences for every split (:func:`encode_ner_dataset`);
    each split's alignment audit is logged, and a warning is given where many words are ``[UNK]``.

    Returns:
        ``(windows and owning sentence of each window, by split; audits by split)``.
    """
    label2id = {lab: i for i, lab in enumerate(splits.labels)}
    encoded, audits = {}, {}
    for name, sentences in splits.data.items():
        windows, owner, audit = encode_ner_dataset(
            sentences,
            tokenizer,
            label2id=label2id,
            max_length=ft.max_length,
            stride=ft.stride,
            label_all_tokens=ft.label_all_tokens,
        )
        encoded[name] = (windows, owner)
        audits[name] = audit.as_dict()
        logger.info("Alignment audit (%s): %s", name, audits[name])
        audit.warn_if_unknown(name)
    return encoded, audits


def windows_dataset(windows: Sequence[dict], extra: Sequence[str] = ()) -> datasets.Dataset:
    """Windows as a dataset of model inputs (and the ``extra`` keys) plus the ``length`` that feeds length
    grouping."""
    keep = (*MODEL_INPUTS, *extra)
    rows = [{k: w[k] for k in keep if k in w} | {"length": len(w["input_ids"])} for w in windows]
    return datasets.Dataset.from_list(rows)


def score_ner_splits(
    trainer, encoded: dict, splits: NERSplits, *, constrained: bool = True
) -> dict[str, dict]:
    """Predict the validation and test windows, merge them back into sentences, score the labelled splits
    under both decodings (:func:`score_ner_split`) and write each split's predictions (main process).

    Returns:
        Scores by split (labelled splits only).
    """
    results = {}
    crf = crf_scores(trainer.model)
    for name in ("validation", "test"):
        if name not in splits.data:
            continue
        windows, owner = encoded[name]
        logits = trainer.predict(windows_dataset(windows)).predictions
        sentences = splits.data[name]
        if all(s.tags for s in sentences):
            results[name], predicted = score_ner_split(
                windows, owner, logits, sentences, splits.labels, constrained=constrained, crf=crf
            )
            other = results[name]["other_decoding"]
            logger.info(
                "%s: entity F1 %.4f (strict %.4f); with %s: %.4f",
                name,
                results[name]["overall_f1"],
                results[name]["strict_overall_f1"],
                other["decoding"],
                other["overall_f1"],
            )
        else:  # an unlabelled test file: predictions only
            lengths = [len(s.tokens) for s in sentences]
            predicted = word_predictions(
                windows, owner, logits, lengths, splits.labels, constrained=constrained, crf=crf
            )
        if trainer.is_world_process_zero():
            write_ner_predictions(sentences, predicted, trainer.args.output_dir, name)
    return results


def build_ner_model(
    ft: NERArguments, splits: NERSplits, tokenizer: PreTrainedTokenizerBase | None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, dict, dict]:
    """The model the run trains: the checkpoint's encoder with a new token-classification head
    (:func:`~toolkit.finetune.finetune_model`), or the light tagger (``--encoder bilstm``: vocabulary built from
    the training split, embeddings from ``--vectors`` if given); then the CRF and BiLSTM layers asked for
    (:func:`~toolkit._tagger_heads.attach_tagger_head`).

    Returns:
        ``(model, tokenizer, loading report, card entries)``.
    """
    if ft.encoder == "bilstm":
        from ._light_tagger import bigram_vocabulary, build_word_tokenizer, new_light_tagger
        from ._vectors import VectorSet

        vectors = VectorSet.load(ft.vectors) if ft.vectors else None
        tokenizer, vocabulary = build_word_tokenizer(
            (s.tokens for s in splits.data["train"]),
            min_count=ft.min_word_count,
            extra_words=vectors.tokens if vectors is not None else (),
            max_length=ft.max_length,
        )
        bigrams, bigram_report = (
            bigram_vocabulary(
                tokenizer, (s.tokens for s in splits.data["train"]), min_count=ft.min_word_count
            )
            if ft.bigram_dim
            else (None, None)
        )
        model, embeddings = new_light_tagger(
            tokenizer,
            splits.labels,
            embedding_dim=ft.embedding_dim,
            lstm_hidden=ft.bilstm_hidden or LIGHT_TAGGER_LSTM,
            dropout=ft.dropout if ft.dropout is not None else LIGHT_TAGGER_DROPOUT,
            vectors=vectors,
            bigram_dim=ft.bigram_dim,
            bigram_keys=bigrams,
        )
        if ft.freeze_embeddings:  # the vectors as they are (the options check refuses it without --vectors)
            model.embeddings.weight.requires_grad_(False)
        loading = {"vocabulary": vocabulary, "embeddings": embeddings}
        if bigram_report is not None:
            loading["bigrams"] = bigram_report | {"dim": ft.bigram_dim}
        bigram_note = (
            f" and left/right bigram embeddings ({ft.bigram_dim} each, {len(bigrams):,} bigrams)"
            if ft.bigram_dim
            else ""
        )
        card = {
            "encoder": f"light tagger: embeddings ({model.config.hidden_size}){bigram_note} + BiLSTM "
            f"({model.config.lstm_hidden} per direction), trained from scratch",
            "embeddings from": ft.vectors or "random initialisation",
        }
        model = attach_tagger_head(model, crf=ft.crf)
    else:
        model, loading, card = finetune_model(AutoModelForTokenClassification, ft, splits.labels)
        model = attach_tagger_head(model, crf=ft.crf, bilstm_hidden=ft.bilstm_hidden or 0)
    if has_tagger_head(model.config):
        tokenizer.padding_side = "right"  # the BiLSTM reads each row's first tokens; padding goes after them
    card["output layers"] = head_description(model.config)
    logger.info("Tagger: %s", "; ".join(f"{k}: {v}" for k, v in card.items()))
    return model, tokenizer, loading, card


def record_window(model, *, max_length: int, stride: int) -> None:
    """Record the fine-tuning window in the model's config (``ner_max_length``, ``ner_stride``), so that
    :class:`~toolkit.NERTagger` predicts with the windows the model was trained on."""
    model.config.ner_max_length = max_length
    model.config.ner_stride = stride
