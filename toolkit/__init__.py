"""NLP toolkit on the Hugging Face stack: pretrain, fine-tune, extract vectors, publish.

What a user calls is exported here, grouped by task. The recipes' plumbing lives in public submodules
(``toolkit.config``, ``toolkit.training``, ``toolkit.rundir``, ``toolkit.pretrain``, ``toolkit.finetune``,
``toolkit.classify``, ``toolkit.ner``, ``toolkit.hub``, ``toolkit.demo``), each with its own ``__all__``;
modules starting with ``_`` are private.
"""

# Raw text and labelled files
from ._corpus import CorpusReport, load_corpus, resolve_files

# Vector extraction and weight transfer
from ._encoder import Encoder, encode_sentences, load_encoder

# Errors: bad input is reported before any long run, naming the file, line or flag
from ._errors import HubError, ToolkitInputError
from ._extract import extract_sentence_vectors, extract_vectors
from ._io import read_texts, read_word_list
from ._labelled import ClassificationExample, NERSentence, read_classification, read_conll, read_ner_jsonl

# Masked-LM pretraining: sizes, model, data, masking
from ._masking import MLMCollator
from ._model import build_mlm_model
from ._packing import prepare_mlm_dataset
from ._presets import PRESET_NAMES, count_size, load_preset

# Model surgery before training
from ._surgery import (
    freeze_parameters,
    init_position_embeddings,
    raise_position_embeddings,
    rescale_embeddings,
    uniform_top_attention,
)

# Named-entity recognition
from ._tagger import NERTagger
from ._tagging import bio_entities, decode_tags

# Text rules (CJK)
from ._text import is_cjk_char, join_tokens

# Tokenizers
from ._tokenizer import load_tokenizer, tokenizer_report, train_wordpiece_tokenizer
from ._transfer import TransferReport, transfer_weights
from ._vectors import VectorSet

# Training and publishing
from .hub import preflight, push_output_dir
from .training import ToolkitTrainer

__version__ = "0.1.0"

__all__ = [
    # errors
    "ToolkitInputError",
    # raw text and labelled files
    "ClassificationExample",
    "CorpusReport",
    "NERSentence",
    "load_corpus",
    "read_classification",
    "read_conll",
    "read_ner_jsonl",
    "resolve_files",
    # tokenizers and text rules
    "is_cjk_char",
    "join_tokens",
    "load_tokenizer",
    "tokenizer_report",
    "train_wordpiece_tokenizer",
    # masked-LM pretraining
    "MLMCollator",
    "PRESET_NAMES",
    "build_mlm_model",
    "count_size",
    "load_preset",
    "prepare_mlm_dataset",
    # model surgery
    "freeze_parameters",
    "init_position_embeddings",
    "raise_position_embeddings",
    "rescale_embeddings",
    "uniform_top_attention",
    # named-entity recognition
    "NERTagger",
    "bio_entities",
    "decode_tags",
    # vectors and weight transfer
    "Encoder",
    "TransferReport",
    "VectorSet",
    "encode_sentences",
    "extract_sentence_vectors",
    "extract_vectors",
    "load_encoder",
    "read_texts",
    "read_word_list",
    "transfer_weights",
    # training and publishing
    "HubError",
    "ToolkitTrainer",
    "preflight",
    "push_output_dir",
]
