"""Typed configuration: dataclasses parsed by ``HfArgumentParser``, with ``--config file.yaml`` as a base.

Values from the YAML file come first and command-line flags after them, so flags win. Unknown keys in a
YAML file are errors, not silently ignored.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import yaml
from transformers import HfArgumentParser, TrainingArguments

from ._errors import ToolkitInputError


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
    encoding_errors: str = field(
        default="strict",
        metadata={"help": "'strict': stop at a non-UTF-8 byte; 'replace': replace with U+FFFD and count."},
    )


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
        default="tiny", metadata={"help": "Size preset (tiny/mini/small/medium/base) or YAML."}
    )
    config_overrides: str | None = field(
        default=None,
        metadata={"help": "BertConfig overrides, e.g. 'num_hidden_layers=3,hidden_dropout_prob=0'."},
    )
    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Continue pretraining this BERT checkpoint instead of a fresh preset."},
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
            "(sine/cosine table, still trained; lets attention find relative offsets from the first step)."
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
class RunArguments:
    """What to do with an output directory that already holds something."""

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
    except yaml.YAMLError as err:
        raise ToolkitInputError(f"config file {str(path)!r} is not valid YAML: {err}") from None
    if not isinstance(values, dict):
        raise ToolkitInputError(f"config file {str(path)!r} must be a mapping of option names to values")
    argv: list[str] = []
    for key, value in values.items():
        if value is None:
            continue
        argv.append(f"--{key}")
        if isinstance(value, list):
            argv.extend(str(v) for v in value)
        elif isinstance(value, dict):
            argv.append(json.dumps(value))
        else:
            argv.append(str(value))
    return argv


def _has_accelerator() -> bool:
    if torch.cuda.is_available():
        return True
    for name in ("xpu", "mps", "npu"):
        backend = getattr(torch, name, None) or getattr(torch.backends, name, None)
        if backend is not None and getattr(backend, "is_available", lambda: False)():
            return True
    return False


def parse_config(dataclass_types: Sequence[type], argv: Sequence[str] | None = None) -> tuple:
    """Parse ``argv`` (default ``sys.argv[1:]``) into the given dataclasses, honouring ``--config FILE``.

    Args:
        dataclass_types: the argument dataclasses (``TrainingArguments`` among them).
        argv: the flags.

    Returns:
        One instance per dataclass, in order.

    Raises:
        ToolkitInputError: unknown options (from the file or the command line) or an unreadable file.

    Example:
        >>> corpus, = parse_config([CorpusArguments], ["--train_files", "a.txt"])
        >>> corpus.train_files
        ['a.txt']
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--config" in argv:
        i = argv.index("--config")
        if i + 1 >= len(argv):
            raise ToolkitInputError("--config needs a YAML file path")
        argv = yaml_to_argv(argv[i + 1]) + argv[:i] + argv[i + 2 :]
    if TrainingArguments in dataclass_types and not _has_accelerator():
        # Without use_cpu, accelerate does not recognise a CPU-only torchrun/accelerate launch as distributed:
        # each process would silently train alone. Flags given later still win.
        argv = ["--use_cpu", "true", *argv]
    # No prefix matching: an abbreviation (--hub_tok) must be an error, not an option that no check has seen.
    parser = HfArgumentParser(list(dataclass_types), allow_abbrev=False)
    parsed = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
    *instances, remaining = parsed
    if remaining:
        # Only the option names: a value given to a misspelt option may be a secret.
        names = [r.split("=", 1)[0] for r in remaining if r.startswith("-")] or ["(values without an option)"]
        raise ToolkitInputError(f"unknown options: {' '.join(names)} (options are spelt in full: see --help)")
    return tuple(instances)
