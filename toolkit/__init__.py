"""NLP toolkit on the Hugging Face stack: pretrain, fine-tune, extract vectors, publish.

What a user calls is exported here, grouped by task. The recipes' plumbing lives in public submodules
(``toolkit.config``, ``toolkit.training``, ``toolkit.rundir``, ``toolkit.pretrain``, ``toolkit.finetune``,
``toolkit.classify``, ``toolkit.ner``, ``toolkit.hub``, ``toolkit.demo``), each with its own ``__all__``, as
do ``toolkit.taggers`` and ``toolkit.students`` (a smaller model cut from a checkpoint's layers); modules
starting with ``_`` are private.

The names below are imported on first use (PEP 562), so ``import toolkit.config`` (which every recipe's
``--help`` needs) does not load PyTorch models, ``datasets`` and the Trainer: ``--help`` answers in about two
seconds instead of five. ``from toolkit import X`` and ``toolkit.X`` work as with eager imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# Where each exported name lives, grouped by task as in ``__all__``.
_EXPORTS = {
    # errors: bad input is reported before any long run, naming the file, line or flag
    "ToolkitInputError": "_errors",
    # raw text and labelled files
    "ClassificationExample": "_labelled",
    "CorpusReport": "_corpus",
    "NERSentence": "_labelled",
    "load_corpus": "_corpus",
    "read_classification": "_labelled",
    "read_conll": "_labelled",
    "read_ner_jsonl": "_labelled",
    "resolve_files": "_corpus",
    # tokenizers and text rules (CJK)
    "is_cjk_char": "_text",
    "join_tokens": "_text",
    "load_tokenizer": "_tokenizer",
    "tokenizer_report": "_tokenizer",
    "train_wordpiece_tokenizer": "_tokenizer",
    # masked-LM pretraining: sizes, model, data, masking
    "MLMCollator": "_masking",
    "PRESET_NAMES": "_presets",
    "build_mlm_model": "_model",
    "count_size": "_presets",
    "load_preset": "_presets",
    "prepare_mlm_dataset": "_packing",
    # model surgery before training
    "freeze_parameters": "_surgery",
    "init_position_embeddings": "_surgery",
    "raise_position_embeddings": "_surgery",
    "rescale_embeddings": "_surgery",
    "uniform_top_attention": "_surgery",
    # named-entity recognition
    "NERTagger": "_tagger",
    "bio_entities": "_tagging",
    "decode_tags": "_tagging",
    # vectors and weight transfer
    "Encoder": "_encoder",
    "TransferReport": "_transfer",
    "VectorSet": "_vectors",
    "encode_sentences": "_encoder",
    "extract_sentence_vectors": "_extract",
    "extract_vectors": "_extract",
    "load_encoder": "_encoder",
    "read_texts": "_io",
    "read_word_list": "_io",
    "transfer_weights": "_transfer",
    # fast CPU inference: ONNX export (optional extra toolkit[onnx]) and predictors on either backend
    "ExportResult": "_onnx_export",
    "OnnxModel": "_onnx",
    "TextClassifier": "_classifier",
    "export_model": "_onnx_export",
    # training and publishing
    "HubError": "_errors",
    "ToolkitTrainer": "training",
    "preflight": "hub",
    "push_output_dir": "hub",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'toolkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # what type checkers and IDEs see: the same names, imported eagerly
    from ._classifier import TextClassifier
    from ._corpus import CorpusReport, load_corpus, resolve_files
    from ._encoder import Encoder, encode_sentences, load_encoder
    from ._errors import HubError, ToolkitInputError
    from ._extract import extract_sentence_vectors, extract_vectors
    from ._io import read_texts, read_word_list
    from ._labelled import ClassificationExample, NERSentence, read_classification, read_conll, read_ner_jsonl
    from ._masking import MLMCollator
    from ._model import build_mlm_model
    from ._onnx import OnnxModel
    from ._onnx_export import ExportResult, export_model
    from ._packing import prepare_mlm_dataset
    from ._presets import PRESET_NAMES, count_size, load_preset
    from ._surgery import (
        freeze_parameters,
        init_position_embeddings,
        raise_position_embeddings,
        rescale_embeddings,
        uniform_top_attention,
    )
    from ._tagger import NERTagger
    from ._tagging import bio_entities, decode_tags
    from ._text import is_cjk_char, join_tokens
    from ._tokenizer import load_tokenizer, tokenizer_report, train_wordpiece_tokenizer
    from ._transfer import TransferReport, transfer_weights
    from ._vectors import VectorSet
    from .hub import preflight, push_output_dir
    from .training import ToolkitTrainer
