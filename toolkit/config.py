"""Typed configuration: dataclasses parsed by ``HfArgumentParser``, with ``--config file.yaml`` as a base.

Values from the YAML file come first and command-line flags after them, so flags win. Unknown keys in a
YAML file are errors, not silently ignored.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, get_type_hints

import torch
import yaml
from transformers import HfArgumentParser, TrainingArguments

from ._errors import ToolkitInputError
from ._presets import DEFAULT_SAVE_TOTAL_LIMIT, FINETUNE_SETTINGS, PRETRAIN_SETTINGS, finetune_settings
from ._secrets import redact_argv

__all__ = [
    "ClassifierArguments",
    "CorpusArguments",
    "DistillArguments",
    "ExtractArguments",
    "FinetuneArguments",
    "MLMArguments",
    "NERArguments",
    "RunArguments",
    "TokenizerArguments",
    "answer_help",
    "options_to_argv",
    "parse_config",
    "yaml_to_argv",
]


def _encoding_field():
    return field(
        default="utf-8",
        metadata={
            "help": "Encoding of the input files: UTF-8 (with or without a byte-order mark) by default; e.g. "
            "gb18030 for Chinese files saved as GBK/GB2312, big5, shift_jis, latin-1."
        },
    )


def _encoding_errors_field():
    return field(
        default="strict",
        metadata={
            "help": "'strict': stop at an undecodable byte (naming file, line, byte offset and the likely "
            "encoding); 'replace': replace it with U+FFFD and count."
        },
    )


@dataclass
class CorpusArguments:
    """Where the raw text comes from."""

    train_files: list[str] | None = field(
        default=None, metadata={"help": "Text/JSONL files, directories (recursive) or globs.", "nargs": "+"}
    )
    conll_files: list[str] | None = field(
        default=None,
        metadata={
            "help": "CoNLL files (one token per line, e.g. an NER training set): their sentences' text is added "
            "as training documents; tags are ignored.",
            "nargs": "+",
        },
    )
    dataset_name: str | None = field(default=None, metadata={"help": "A hub dataset name instead of files."})
    dataset_config: str | None = field(default=None, metadata={"help": "Config name of the hub dataset."})
    text_field: str = field(default="text", metadata={"help": "Text column of JSONL files / hub datasets."})
    extensions: list[str] = field(
        default_factory=lambda: [".txt", ".jsonl", ".json"],
        metadata={"help": "Extensions kept when walking directories.", "nargs": "+"},
    )
    validation_files: list[str] | None = field(
        default=None, metadata={"help": "Held-out files for validation.", "nargs": "+"}
    )
    validation_split: float = field(
        default=0.0, metadata={"help": "Fraction of documents held out for validation (by content hash)."}
    )
    streaming: bool = field(
        default=False, metadata={"help": "Stream the corpus (larger than memory); needs --max_steps."}
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Use only the first N training documents."}
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Use only the first N validation documents."}
    )
    encoding: str = _encoding_field()
    encoding_errors: str = _encoding_errors_field()


@dataclass
class TokenizerArguments:
    """Train a WordPiece vocabulary, or reuse an existing tokenizer."""

    tokenizer_name_or_path: str | None = field(
        default=None, metadata={"help": "Reuse this tokenizer (directory or hub id) instead of training one."}
    )
    vocab_size: int = field(
        default=30_000, metadata={"help": "Target vocabulary size (special tokens included)."}
    )
    min_frequency: int = field(default=2, metadata={"help": "Minimum frequency of a WordPiece merge."})
    char_min_frequency: int = field(
        default=1, metadata={"help": "Characters rarer than this stay out of the alphabet."}
    )
    lowercase: bool = field(default=True, metadata={"help": "Lower-case text (uncased model)."})
    strip_accents: bool | None = field(
        default=None, metadata={"help": "Strip accents (default: as lowercase)."}
    )
    tokenizer_train_samples: int | None = field(
        default=None, metadata={"help": "Train the vocabulary on the first N documents only (default: all)."}
    )
    max_unk_rate: float = field(
        default=0.05, metadata={"help": "Refuse a tokenizer with a higher [UNK] rate."}
    )


@dataclass
class MLMArguments:
    """Model size and masked-LM objective."""

    preset: str | None = field(
        default=None,
        metadata={
            "help": "Size preset (tiny/mini/small/medium/base) or YAML of a fresh model (default: tiny)."
        },
    )
    config_overrides: str | None = field(
        default=None,
        metadata={
            "help": "BertConfig overrides, e.g. 'num_hidden_layers=3,hidden_dropout_prob=0.1'. A fresh model of a "
            "preset's size pretrains without dropout (hidden_dropout_prob=0, attention_probs_dropout_prob=0) "
            "unless these set it."
        },
    )
    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Continue pretraining this BERT checkpoint instead of a fresh preset."},
    )
    extend_vocab: bool = field(
        default=False,
        metadata={
            "help": "With --model_name_or_path: add the corpus' characters its vocabulary maps to [UNK] (in the "
            "--tokenizer_train_samples documents), new rows from the mean of their old pieces' rows; [UNK] rate "
            "and chars per token before and after go to metrics.json."
        },
    )
    extend_vocab_min_count: int = field(
        default=5, metadata={"help": "With --extend_vocab: fewest occurrences for a new entry."}
    )
    extend_vocab_noise: float = field(
        default=1.0,
        metadata={
            "help": "With --extend_vocab: an entry the old vocabulary maps only to [UNK] starts from the mean row "
            "plus Gaussian noise of this many times the rows' spread per dimension, so that new characters start "
            "apart (0: all equal to the mean row). The noise is seeded apart from --seed: the same rows on every run."
        },
    )
    extend_vocab_words: bool = field(
        default=False,
        metadata={
            "help": "With --extend_vocab: also add frequent words the vocabulary splits into 3+ pieces."
        },
    )
    block_size: int = field(default=128, metadata={"help": "Tokens per training block."})
    line_by_line: bool = field(
        default=False, metadata={"help": "One example per line instead of packed blocks."}
    )
    mlm_probability: float = field(
        default=0.15, metadata={"help": "Share of tokens selected for prediction."}
    )
    whole_word_mask: bool = field(default=False, metadata={"help": "Mask all pieces of a word together."})
    whole_word_share: float = field(
        default=1.0,
        metadata={
            "help": "With --whole_word_mask: share of words drawn as a unit; the other words' tokens are "
            "drawn one by one, at the same rate (1.0: all whole; e.g. 0.5 mixes the two)."
        },
    )
    position_init: str = field(
        default="random",
        metadata={
            "help": "Start of a fresh model's position embeddings: 'random' (normal, BERT's) or 'sinusoidal' "
            "(sine/cosine table, still trained; lets attention find relative offsets from the first step). "
            "Default: sinusoidal for a fresh model of a preset's size, else random."
        },
    )
    position_init_rms: float | None = field(
        default=None,
        metadata={
            "help": "Root-mean-square size of a sinusoidal start (default 0.1; 0.02 is the word embeddings' "
            "starting size, 0.3 measured to drown them)."
        },
    )
    chinese_segmenter: str | None = field(
        default=None, metadata={"help": "Word segmenter for Chinese whole-word masking: 'jieba'."}
    )
    sparse_head: bool = field(
        default=True, metadata={"help": "Compute the MLM head only at masked positions."}
    )
    attn_implementation: str = field(default="sdpa", metadata={"help": "'sdpa' or 'eager' attention."})
    num_proc: int | None = field(
        default=None, metadata={"help": "Processes for tokenization (in-memory data)."}
    )
    fill_mask_examples: list[str] | None = field(
        default=None,
        metadata={"help": "Sentences with [MASK] to show predictions for after training.", "nargs": "+"},
    )
    languages: list[str] = field(
        default_factory=list,
        metadata={"help": "Languages of the corpus for the model card, e.g. en zh.", "nargs": "+"},
    )
    dry_run: bool = field(default=False, metadata={"help": "Check inputs, build everything, train nothing."})


@dataclass
class FinetuneArguments:
    """Data, model and task options of the fine-tuning recipes (training options: ``TrainingArguments``)."""

    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Starting checkpoint (ours or any BERT-like)."}
    )
    dataset_name: str | None = field(
        default=None, metadata={"help": "Hub dataset instead of files (classification)."}
    )
    dataset_config: str | None = field(default=None, metadata={"help": "Config of the hub dataset."})
    train_file: str | None = field(
        default=None, metadata={"help": "Training file (CSV/TSV/JSONL, or CoNLL/JSONL for NER)."}
    )
    validation_file: str | None = field(default=None, metadata={"help": "Validation file."})
    validation_split: float = field(
        default=0.0,
        metadata={
            "help": "Without a validation file: hold out this fraction of the training examples as the "
            "validation split, chosen by content hash (deterministic; duplicates stay on one side)."
        },
    )
    test_file: str | None = field(
        default=None, metadata={"help": "Test file: scored if labelled, predictions written."}
    )
    file_format: str | None = field(
        default=None, metadata={"help": "csv, tsv, jsonl or conll (default: from extension)."}
    )
    encoding: str = _encoding_field()
    encoding_errors: str = _encoding_errors_field()
    text_column: str = field(default="text", metadata={"help": "Text column (classification)."})
    text_pair_column: str | None = field(
        default=None, metadata={"help": "Second text column (sentence pairs)."}
    )
    label_column: str = field(default="label", metadata={"help": "Label column (classification)."})
    multi_label: bool = field(
        default=False, metadata={"help": "Several labels per example (classification)."}
    )
    label_separator: str = field(default=",", metadata={"help": "Separator of labels in one CSV/TSV cell."})
    token_column: int = field(default=0, metadata={"help": "Token column of CoNLL files."})
    tag_column: int = field(default=-1, metadata={"help": "Tag column of CoNLL files."})
    tagging_scheme: str = field(
        default="auto", metadata={"help": "auto, BIO, IOB1 or BIOES (converted to BIO)."}
    )
    label_all_tokens: bool = field(
        default=False, metadata={"help": "NER: label every sub-token, not only the first."}
    )
    stride: int = field(
        default=16, metadata={"help": "NER: tokens shared by consecutive windows of long sentences."}
    )
    constrained_decoding: bool = field(
        default=True,
        metadata={
            "help": "NER: predict the most probable valid BIO tag sequence (no I-X after O or another type) "
            "instead of each word's best tag. Both are scored; this one is the headline."
        },
    )
    max_length: int = field(
        default=128, metadata={"help": "Maximum tokens per example/window (special tokens included)."}
    )
    pad_to_max_length: bool = field(
        default=False, metadata={"help": "Pad every batch to max_length (stock default; slow)."}
    )
    group_by_length: bool = field(
        default=True, metadata={"help": "Batch examples of similar length (less padding)."}
    )
    dropout: float | None = field(
        default=None,
        metadata={
            "help": "Hidden and attention dropout while fine-tuning (default: 0.1 for a checkpoint of a preset's "
            "size or one pretrained without dropout, else the checkpoint's own)."
        },
    )
    uniform_top_attention: bool = field(
        default=False,
        metadata={
            "help": "Classification: zero the top encoder layer's attention queries before fine-tuning, so "
            "that its attention output at [CLS] starts as the mean of the sequence (masked-LM pretraining "
            "never trains [CLS] to summarise its input); fine-tuning learns the queries back. The saved "
            "model is a stock one."
        },
    )
    embedding_rms: float | None = field(
        default=None,
        metadata={
            "help": "Before fine-tuning, if the word embeddings' RMS is above this value, scale the word, "
            "position and token-type tables down together until it is (0.02 is BERT's initialisation). The "
            "layer normalisation that follows them makes this leave the model's function unchanged, but "
            "Adam moves every weight by about the learning rate per step, so embeddings that grew 20x in "
            "pretraining adapt 20x slower than fresh ones: this gives them back the random init's pace. "
            "A no-op for a model that has not grown."
        },
    )
    position_rms_ratio: float | None = field(
        default=None,
        metadata={
            "help": "Before fine-tuning, if the position table's RMS (over the first max_length positions) is "
            "below this multiple of the word table's, scale the position table up until it is not (1.0 is a "
            "fresh initialisation's balance). Masked-LM pretraining grows the word table several times more "
            "than the position table, so the order signal reaches the first layer much weaker than the "
            "content signal; this restores the balance. Unlike --embedding_rms it changes the model's "
            "function. A no-op for a model whose position table is already large enough."
        },
    )
    freeze_embeddings: bool = field(default=False, metadata={"help": "Freeze the embedding layer."})
    freeze_layers: int = field(default=0, metadata={"help": "Freeze the first N encoder layers."})
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Use only the first N training examples."}
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Use only the first N validation/test examples."}
    )
    languages: list[str] = field(
        default_factory=list, metadata={"help": "Languages, for the model card.", "nargs": "+"}
    )


# Options that only one fine-tuning recipe reads: the other recipe's --help hides them and its parser refuses
# them (silently ignoring them would let a user believe they had an effect).
TASK_OPTIONS = {
    "classification": (
        "dataset_name",
        "dataset_config",
        "text_column",
        "text_pair_column",
        "label_column",
        "multi_label",
        "label_separator",
        "uniform_top_attention",
    ),
    "ner": (
        "token_column",
        "tag_column",
        "tagging_scheme",
        "label_all_tokens",
        "stride",
        "constrained_decoding",
    ),
}
RECIPE_OF_TASK = {"classification": "train_classifier.py", "ner": "train_ner.py"}


@dataclass
class ClassifierArguments(FinetuneArguments):
    """Data, model and task options of the text-classification recipe."""

    task: ClassVar[str] = "classification"


@dataclass
class NERArguments(FinetuneArguments):
    """Data, model and task options of the named-entity recognition recipe."""

    task: ClassVar[str] = "ner"
    encoder: str = field(
        default="transformer",
        metadata={
            "help": "'transformer' (fine-tune --model_name_or_path) or 'bilstm': the light tagger, an embedding "
            "layer and a BiLSTM trained from scratch on the training file (vocabulary built from it), with a "
            "CRF; --vectors initialises its embeddings. Much faster on a CPU."
        },
    )
    crf: bool | None = field(
        default=None,
        metadata={
            "help": "A CRF output layer: learned tag-transition scores trained with the sequence likelihood, "
            "Viterbi decoding of valid BIO (default: on for --encoder bilstm, off for a transformer)."
        },
    )
    bilstm_hidden: int | None = field(
        default=None,
        metadata={
            "help": "LSTM units per direction of a BiLSTM between the transformer and the tag scores "
            "(BERT-BiLSTM-CRF; default none), or of the light tagger (default 128)."
        },
    )
    vectors: str | None = field(
        default=None,
        metadata={
            "help": "--encoder bilstm: initialise the embeddings from this vector file (recipes/extract_vectors.py "
            "output, or any word2vec text / .npy / .safetensors VectorSet); its items join the vocabulary."
        },
    )
    embedding_dim: int = field(
        default=128, metadata={"help": "--encoder bilstm without --vectors: embedding width."}
    )
    bigram_dim: int = field(
        default=0,
        metadata={
            "help": "--encoder bilstm: also embed each token's bigrams with its left and right neighbours, this "
            "wide each (0: off): the classic character-bigram feature of Chinese taggers. Bigrams seen "
            "--min_word_count times in training get their own row, the rest share one."
        },
    )
    min_word_count: int = field(
        default=2,
        metadata={
            "help": "--encoder bilstm: words seen fewer times in training are spelt out in characters (so the "
            "model learns to read unknown words)."
        },
    )


@dataclass
class DistillArguments:
    """The teacher, the student's origin and the distillation loss (``recipes/distill.py``)."""

    task: str | None = field(
        default=None, metadata={"help": "'classification' or 'ner' (required: it decides the other options)."}
    )
    teacher: str | None = field(
        default=None,
        metadata={
            "help": "The fine-tuned teacher: any classifier (--task classification) or token classifier (--task "
            "ner) directory, ours or anyone's. Its label set must be the data's."
        },
    )
    student_layers: str | None = field(
        default=None,
        metadata={
            "help": "Cut the student out of the teacher, keeping these encoder layers ('0,2,4', or "
            "'every_other'); it starts with the teacher's embeddings, layers and head. Instead of "
            "--model_name_or_path (a student checkpoint, which may use another tokenizer) or --student_preset."
        },
    )
    student_preset: str | None = field(
        default=None,
        metadata={
            "help": "A fresh student of this size preset (tiny/mini/...) with the teacher's tokenizer."
        },
    )
    temperature: float = field(
        default=2.0, metadata={"help": "Softens the teacher's and the student's score distributions."}
    )
    hard_label_weight: float = field(
        default=0.5,
        metadata={
            "help": "Weight of the gold labels' cross-entropy; the teacher's soft labels get the rest."
        },
    )
    hidden_weight: float = field(
        default=0.0,
        metadata={
            "help": "Weight of an intermediate hidden-state loss (mean squared error, through a learned "
            "projection where widths differ); needs one tokenizer for teacher and student. Runs the teacher "
            "at every step."
        },
    )
    layer_map: str | None = field(
        default=None,
        metadata={
            "help": "Hidden-state pairs 'student:teacher' (0-based), e.g. '0:1,1:3,2:5' (default: the kept "
            "layers of a cut student, else evenly spread, last to last)."
        },
    )
    unlabelled_files: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Plain-text files, one example per line, that the teacher labels: distillation-only data.",
            "nargs": "+",
        },
    )
    teacher_cache: str | None = field(
        default=None,
        metadata={
            "help": "Directory caching the teacher's scores, keyed by its weights, the texts and the windowing "
            "(default: <output_dir>/teacher_cache); point several students at one directory to score once."
        },
    )
    teacher_batch_size: int = field(
        default=64, metadata={"help": "Batch size of the teacher's scoring pass."}
    )


@dataclass
class ExtractArguments:
    """Vector extraction (``recipes/extract_vectors.py``): checkpoint, inputs, output, mode."""

    checkpoint: str = field(
        default=None,
        metadata={"help": "Model dir, sentence-transformers dir, weights file or hub id (required)."},
    )
    output: str = field(default=None, metadata={"help": "Output file; its directory must exist (required)."})
    input: list[str] | None = field(
        default=None, metadata={"help": "Files, directories (recursive) or - for stdin.", "nargs": "+"}
    )
    vocab: str | None = field(
        default=None, metadata={"help": "vocab.txt or tokenizer dir, for a weights file without a tokenizer."}
    )
    words_file: str | None = field(
        default=None,
        metadata={"help": "Extract exactly these items (one per line) instead of collecting them."},
    )
    extensions: list[str] = field(
        default_factory=lambda: [".txt"], metadata={"help": "Extensions read from directories.", "nargs": "+"}
    )
    text_field: str = field(default="text", metadata={"help": "Text field of JSON Lines inputs."})
    encoding: str = _encoding_field()
    encoding_errors: str = _encoding_errors_field()
    overwrite: bool = field(default=False, metadata={"help": "Replace an existing output file."})
    format: str | None = field(
        default=None,
        metadata={
            "help": "Output format (default: from the extension: .vec/.txt, .bin, .npy, .safetensors).",
            "choices": ["word2vec", "word2vec-binary", "npy", "safetensors"],
        },
    )
    unit: str = field(
        default="char", metadata={"help": "What gets a vector.", "choices": ["char", "word", "sentence"]}
    )
    mode: str = field(
        default="static",
        metadata={
            "help": "Input-embedding rows, or hidden states averaged.",
            "choices": ["static", "contextual"],
        },
    )
    layers: list[int] = field(
        default_factory=lambda: [-1],
        metadata={"help": "Hidden layers averaged (contextual, sentence); -1 = last.", "nargs": "+"},
    )
    pooling: str | None = field(
        default=None,
        metadata={
            "help": "Pieces of an item: first/last/mean (default mean); sentences: mean/cls/max (default: the "
            "checkpoint's, else mean).",
            "choices": ["first", "last", "mean", "cls", "max"],
        },
    )
    normalize: bool | None = field(
        default=None,
        metadata={
            "help": "L2-normalise sentence vectors (default: as the checkpoint says: yes for a "
            "sentence-transformers directory with a Normalize module, as SentenceTransformer.encode does; "
            "else no)."
        },
    )
    min_count: int = field(default=1, metadata={"help": "Ignore items rarer than this."})
    segmenter: str | None = field(
        default=None, metadata={"help": "Chinese word segmentation for --unit word.", "choices": ["jieba"]}
    )
    missing: str = field(
        default="skip",
        metadata={"help": "Items not in the vocabulary.", "choices": ["skip", "unk", "zeros"]},
    )
    whitespace: str = field(
        default="escape", metadata={"help": "Tokens containing whitespace.", "choices": ["escape", "refuse"]}
    )
    batch_size: int = field(default=32, metadata={"help": "Batch size (contextual, sentence)."})
    threads: int | None = field(
        default=None,
        metadata={
            "help": "CPU threads for PyTorch (default: the cores this process may use). Beside another busy process, "
            "set it to the free cores: on 2 cores with one taken, 1 thread trains 2.2x faster than 2 "
            "(benchmarks/results/threads.json)."
        },
    )
    push_to_hub: bool = field(
        default=False, metadata={"help": "Push the vector set (with a card) after saving."}
    )
    hub_model_id: str | None = field(
        default=None, metadata={"help": "Repository: 'name' or 'namespace/name'."}
    )
    hub_private_repo: bool = field(default=False, metadata={"help": "Create the repository as private."})
    hub_revision: str | None = field(default=None, metadata={"help": "Branch to push to."})


@dataclass
class RunArguments:
    """What to do with an output directory that already holds something; how many CPU threads to use and how
    freed CPU memory is kept."""

    threads: int | None = field(
        default=None,
        metadata={
            "help": "CPU threads for PyTorch (default: the cores this process may use). Beside another busy process, "
            "set it to the free cores: on 2 cores with one taken, 1 thread trains 2.2x faster than 2 "
            "(benchmarks/results/threads.json)."
        },
    )

    reuse_freed_memory: bool | None = field(
        default=None,
        metadata={
            "help": "Keep the CPU memory each training step frees for the next step instead of returning it to "
            "the system (Linux/glibc); takes true/false. Default: on in pretraining (1.1x faster on CPU), off in "
            "fine-tuning (no gain measured there). Process-wide: once on, later runs in the same process "
            "(e.g. the demo's fine-tuning after its pretraining) keep it. See benchmarks/RESULTS.md#speed."
        },
    )

    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Start over in an --output_dir that holds another run or other files: its checkpoints are "
            "deleted and its files written over. Without it such a directory is refused, and a re-run of the "
            "same run resumes from its last checkpoint."
        },
    )


def yaml_to_argv(path: str | os.PathLike) -> list[str]:
    """Turn a YAML mapping into command-line flags (lists become repeated values, mappings JSON strings).

    A mapping is for the ``TrainingArguments`` options that take a dict, such as ``lr_scheduler_kwargs``.
    """
    try:
        with open(path, encoding="utf-8") as fh:
            values = yaml.safe_load(fh) or {}
    except FileNotFoundError:
        raise ToolkitInputError(f"config file {str(path)!r} does not exist") from None
    except yaml.YAMLError as err:  # the position and the problem, not the line itself (it may hold a token)
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ToolkitInputError(
            f"config file {str(path)!r} is not valid YAML{where}: {getattr(err, 'problem', None) or 'unreadable'}"
        ) from None
    if not isinstance(values, dict):
        raise ToolkitInputError(f"config file {str(path)!r} must be a mapping of option names to values")
    return options_to_argv(values)


def _has_accelerator() -> bool:
    if torch.cuda.is_available():
        return True
    for name in ("xpu", "mps", "npu"):
        backend = getattr(torch, name, None) or getattr(torch.backends, name, None)
        if backend is not None and getattr(backend, "is_available", lambda: False)():
            return True
    return False


# The TrainingArguments options most runs set: ``--help`` lists these, ``--help-all`` all of them.
COMMON_TRAINING_OPTIONS = (
    "output_dir",
    "max_steps",
    "num_train_epochs",
    "learning_rate",
    "per_device_train_batch_size",
    "per_device_eval_batch_size",
    "gradient_accumulation_steps",
    "warmup_steps",
    "weight_decay",
    "adam_beta2",
    "lr_scheduler_type",
    "eval_strategy",
    "eval_steps",
    "save_strategy",
    "save_steps",
    "save_total_limit",
    "logging_steps",
    "seed",
    "report_to",
    "push_to_hub",
    "hub_model_id",
    "hub_token",
    "hub_private_repo",
)
HELP_FLAGS = ("-h", "--help", "--help-all")


def _training_defaults(dataclass_types: Sequence[type]) -> dict[str, str]:
    """What ``--help`` says about the defaults the recipes fill in (``toolkit._presets``), in place of
    ``TrainingArguments``' stock ones, which those recipes do not use."""

    def by_size(table: dict, key: str) -> str:
        values = {name: f"{settings[key]:g}" for name, settings in table.items()}
        if len(set(values.values())) == 1:
            return f"{next(iter(values.values()))} for every preset"
        return ", ".join(f"{name} {value}" for name, value in values.items())

    notes = {
        "logging_steps": "about max_steps/20 when max_steps is set",
        "save_total_limit": str(DEFAULT_SAVE_TOTAL_LIMIT),
    }
    if MLMArguments in dataclass_types:
        some = next(iter(PRETRAIN_SETTINGS.values()))
        notes |= {key: f"by --preset: {by_size(PRETRAIN_SETTINGS, key)}" for key in some}
    elif any(issubclass(t, FinetuneArguments) for t in dataclass_types):
        task = "ner" if NERArguments in dataclass_types else "classification"
        table = {name: finetune_settings(name, task) for name in FINETUNE_SETTINGS}
        notes |= {
            key: f"by the checkpoint's size: {by_size(table, key)}; stock for other sizes"
            for key in next(iter(table.values()))
        }
    return notes


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help as a user reads it: each option once (``--max_steps N``, not also ``--max-steps``), a default only
    where it says something, the recipe's docstring with its examples as written."""

    def _format_action_invocation(self, action):
        if not action.option_strings:
            return super()._format_action_invocation(action)
        name = action.option_strings[-1] if action.option_strings[0] == "-h" else action.option_strings[0]
        if action.nargs == 0:
            return name
        metavar = action.metavar or action.dest.upper()
        if action.choices is not None:
            metavar = "{" + ",".join(map(str, action.choices)) + "}"
        if action.nargs == "?":
            return f"{name} [true|false]" if action.const is True else f"{name} [{metavar}]"
        if action.nargs == "+":
            return f"{name} {metavar} [...]"
        return f"{name} {metavar}"

    def _get_help_string(self, action):
        text = action.help or ""
        shown = action.default not in (None, argparse.SUPPRESS, "") and action.nargs != 0
        if shown and "default" not in text.lower():
            text += " (default: %(default)s)"
        return text


class _Parser(HfArgumentParser):
    """One argument group per dataclass, defaults as the recipes fill them in, options of another task hidden;
    argument errors (a bad value, a missing one) as :class:`ToolkitInputError`, so that recipes report them as
    every other input error, with any token masked, instead of argparse printing them itself."""

    GROUP_TITLES: ClassVar[dict[str, str]] = {
        "CorpusArguments": "Corpus",
        "TokenizerArguments": "Tokenizer",
        "MLMArguments": "Model and masked-LM objective",
        "ClassifierArguments": "Data, model and task",
        "NERArguments": "Data, model and task",
        "FinetuneArguments": "Data, model and task",
        "ExtractArguments": "Extraction",
        "DistillArguments": "Distillation",
        "RunArguments": "Run",
    }

    def __init__(self, dataclass_types: Sequence[type], *, full_help: bool = False, **kwargs):
        self.full_help = full_help
        self.training_notes = _training_defaults(dataclass_types)
        self.hidden_task_options: set[str] = set()
        super().__init__(list(dataclass_types), formatter_class=_HelpFormatter, allow_abbrev=False, **kwargs)
        if TrainingArguments in dataclass_types:
            self.add_argument(
                "--help-all", action="help", help="Show every option, all of TrainingArguments'."
            )
        self.add_argument(  # only for --help: parse_config reads the file before parsing
            "--config",
            metavar="FILE",
            default=argparse.SUPPRESS,
            help="YAML file of option values; flags win over it.",
        )

    def _add_dataclass_arguments(self, dtype):
        training = dtype is TrainingArguments
        if training:
            title = "Training (TrainingArguments)" if self.full_help else "Training (the most used options)"
        else:
            title = self.GROUP_TITLES.get(dtype.__name__, dtype.__name__)
        group = self.add_argument_group(title)
        task = getattr(dtype, "task", None)
        hidden = {n for other, names in TASK_OPTIONS.items() if task and other != task for n in names}
        self.hidden_task_options |= hidden
        hints = get_type_hints(dtype)
        for f in dataclasses.fields(dtype):
            if not f.init:
                continue
            f.type = hints[f.name]
            metadata = dict(f.metadata)
            if training and f.name in self.training_notes:
                metadata["help"] = (
                    f"{metadata.get('help', '')} (default: {self.training_notes[f.name]})".strip()
                )
            if f.name in hidden or (
                training and not self.full_help and f.name not in COMMON_TRAINING_OPTIONS
            ):
                metadata["help"] = argparse.SUPPRESS
            before = len(group._group_actions)
            self._parse_dataclass_field(group, _with(f, metadata))
            for action in group._group_actions[before + 1 :]:  # the --no_X twin of a True-by-default flag
                action.help = argparse.SUPPRESS
            if len(group._group_actions) > before + 1 and metadata.get("help") not in (
                None,
                argparse.SUPPRESS,
            ):
                group._group_actions[before].help = f"{metadata['help']} Turn off with --no_{f.name}."

    def format_usage(self):
        return f"usage: {self.prog} [--config FILE] [options]\n"

    def format_help(self):
        text = super().format_help().replace(super().format_usage(), self.format_usage(), 1)
        if any(a.dest == "learning_rate" for a in self._actions) and not self.full_help:
            text += "\nOnly the most used training options are listed: --help-all shows all of TrainingArguments'.\n"
        return text

    def error(self, message: str):
        raise ToolkitInputError(f"{message} (see --help)")


def _with(f: dataclasses.Field, metadata: dict) -> dataclasses.Field:
    """A copy of dataclass field ``f`` with other metadata (the parser reads its help from there)."""
    copy = dataclasses.field(default=f.default, default_factory=f.default_factory, metadata=metadata)
    copy.name, copy.type = f.name, f.type
    return copy


def answer_help(dataclass_types: Sequence[type], description: str | None = None) -> None:
    """If the command line asks for help (``-h``, ``--help``, ``--help-all``), print it and exit.

    A recipe calls this before its heavy imports (models, ``datasets``, the Trainer), so that ``--help``
    answers in about two seconds rather than five; the text is the one :func:`parse_config` prints.
    """
    if any(a in HELP_FLAGS for a in sys.argv[1:]):
        parse_config(dataclass_types, description=description)


def options_to_argv(options: dict) -> list[str]:
    """Python option values as command-line flags: ``{"max_steps": 4, "languages": ["en", "zh"]}`` →
    ``["--max_steps", "4", "--languages", "en", "zh"]`` (``None`` values are left out; a ``config`` key
    becomes ``--config``; mappings become JSON, as in :func:`yaml_to_argv`)."""
    argv: list[str] = []
    for key, value in options.items():
        if value is None:
            continue
        argv.append(f"--{key}")
        if isinstance(value, (list, tuple)):
            argv.extend(str(v) for v in value)
        elif isinstance(value, dict):
            argv.append(json.dumps(value))
        else:
            argv.append(str(value))
    return argv


def parse_config(
    dataclass_types: Sequence[type],
    argv: Sequence[str] | None = None,
    *,
    description: str | None = None,
    **options,
) -> tuple:
    """Parse ``argv`` (default ``sys.argv[1:]``) into the given dataclasses, honouring ``--config FILE``.

    ``--help`` prints the options grouped by dataclass (of ``TrainingArguments`` only the most used ones;
    ``--help-all`` prints all) and exits.

    Args:
        dataclass_types: the argument dataclasses (``TrainingArguments`` among them).
        argv: the flags.
        description: shown at the top of ``--help`` (a recipe passes its docstring).
        **options: option values from Python (``output_dir="out", max_steps=4``), parsed as the flags they
            stand for and winning over ``argv`` and the config file; ``config="x.yaml"`` names the file.

    Returns:
        One instance per dataclass, in order.

    Raises:
        ToolkitInputError: unknown options (from the file or the command line) or an unreadable file.

    Example:
        >>> corpus, = parse_config([CorpusArguments], ["--train_files", "a.txt"])
        >>> corpus.train_files
        ['a.txt']
    """
    argv = list(sys.argv[1:] if argv is None and not options else argv or [])
    sources = dict.fromkeys(_names(argv), "flag") | dict.fromkeys(
        _names(options_to_argv(options)), "keyword option"
    )
    argv += options_to_argv(options)
    argv = [p for a in argv for p in (a.split("=", 1) if a.startswith("--config=") else [a])]  # --config=FILE
    if "--config" in argv:
        i = argv.index("--config")
        if i + 1 >= len(argv):
            raise ToolkitInputError("--config needs a YAML file path")
        from_file = yaml_to_argv(argv[i + 1])
        sources = dict.fromkeys(_names(from_file), f"config file {argv[i + 1]}") | sources
        argv = from_file + argv[:i] + argv[i + 2 :]
    if TrainingArguments in dataclass_types and not _has_accelerator():
        # Without use_cpu, accelerate does not recognise a CPU-only torchrun/accelerate launch as distributed:
        # each process would silently train alone. Flags given later still win.
        argv = ["--use_cpu", "true", *argv]
    redact_argv(argv)  # remembers any token given by flag or config file: no message below can show it
    # No prefix matching: an abbreviation (--hub_tok) must be an error, not an option that no check has seen.
    parser = _Parser(dataclass_types, full_help="--help-all" in argv, description=description)
    parsed = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
    *instances, remaining = parsed
    if remaining:
        # Only the option names: a value given to a misspelt option may be a secret.
        names = [r.split("=", 1)[0] for r in remaining if r.startswith("-")] or ["(values without an option)"]
        raise ToolkitInputError(f"unknown options: {' '.join(names)} (options are spelt in full: see --help)")
    # Which options the user set (config file, flags or keyword options): defaults may adapt to the run only
    # where they were not (see prepare_training_args).
    sources.pop("config", None)
    foreign = sorted(set(sources) & parser.hidden_task_options)
    if foreign:
        owner = {n: task for task, names in TASK_OPTIONS.items() for n in names}
        raise ToolkitInputError(
            "; ".join(
                f"--{n} ({sources[n]}) is an option of {RECIPE_OF_TASK[owner[n]]} only" for n in foreign
            )
            + ": this recipe would ignore it"
        )
    for instance in instances:
        fields = {f.name for f in dataclasses.fields(instance)}
        instance.explicit_options = set(sources) & fields
        instance.option_sources = {k: v for k, v in sources.items() if k in fields}
    return tuple(instances)


def _names(argv: Sequence[str]) -> list[str]:
    """The option names in a command line (``--max-steps=4`` → ``max_steps``)."""
    return [a[2:].split("=", 1)[0].replace("-", "_") for a in argv if a.startswith("--")]
