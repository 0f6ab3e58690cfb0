"""NLP toolkit on the Hugging Face stack: pretrain, fine-tune, extract vectors, publish.

The public API is re-exported here; modules starting with ``_`` are private.
"""

from ._card import training_command, write_mlm_model_card
from ._config import CorpusArguments, MLMArguments, TokenizerArguments, parse_config, yaml_to_argv
from ._corpus import (
    CorpusReport,
    FileScan,
    in_validation_split,
    iter_texts,
    load_corpus,
    resolve_files,
    scan_jsonl_file,
    scan_text_file,
)
from ._errors import ToolkitInputError
from ._extract import (
    CoverageReport,
    Encoder,
    count_items,
    encode_sentences,
    extract_vectors,
    load_encoder,
    read_state_dict,
    read_texts,
    resolve_items,
    tokenizer_safe,
)
from ._masking import IGNORE_INDEX, CollatorEpochCallback, MLMCollator, mask_tokens, premask_for_eval
from ._model import SparseHeadBertForMaskedLM, build_mlm_model
from ._packing import (
    pack_into_blocks,
    prepare_mlm_dataset,
    segment_word_starts,
    split_lines_into_blocks,
    tokenize_and_pack,
    word_start_flags,
)
from ._presets import (
    PRESET_NAMES,
    ModelSize,
    count_size,
    format_preset_table,
    load_preset,
    parse_overrides,
    preset_path,
    preset_table,
)
from ._pretrain import block_stats, check_block_size, obtain_tokenizer, validate_pretrain_options
from ._tokenizer import (
    SPECIAL_TOKENS,
    TokenizerReport,
    build_wordpiece_tokenizer,
    check_tokenizer_health,
    is_cjk_char,
    load_tokenizer,
    tokenizer_report,
    train_wordpiece_tokenizer,
)
from ._training import (
    ToolkitTrainer,
    format_duration,
    perplexity,
    plot_loss_curve,
    resolve_resume_checkpoint,
    setup_logging,
    write_json,
)
from ._transfer import TransferReport, transfer_weights
from ._vectors import FORMATS, VectorSet, escape_token, json_text, unescape_token

__version__ = "0.1.0"

__all__ = [
    "in_validation_split",
    "tokenizer_safe",
    "preset_path",
    "CoverageReport",
    "Encoder",
    "count_items",
    "encode_sentences",
    "extract_vectors",
    "load_encoder",
    "read_state_dict",
    "read_texts",
    "resolve_items",
    "TransferReport",
    "transfer_weights",
    "FORMATS",
    "json_text",
    "VectorSet",
    "escape_token",
    "unescape_token",
    "IGNORE_INDEX",
    "PRESET_NAMES",
    "SPECIAL_TOKENS",
    "CollatorEpochCallback",
    "CorpusArguments",
    "CorpusReport",
    "FileScan",
    "MLMArguments",
    "MLMCollator",
    "ModelSize",
    "SparseHeadBertForMaskedLM",
    "TokenizerArguments",
    "TokenizerReport",
    "ToolkitInputError",
    "ToolkitTrainer",
    "block_stats",
    "build_mlm_model",
    "build_wordpiece_tokenizer",
    "check_block_size",
    "check_tokenizer_health",
    "count_size",
    "format_duration",
    "format_preset_table",
    "is_cjk_char",
    "iter_texts",
    "load_corpus",
    "load_preset",
    "load_tokenizer",
    "mask_tokens",
    "obtain_tokenizer",
    "pack_into_blocks",
    "parse_config",
    "parse_overrides",
    "perplexity",
    "plot_loss_curve",
    "premask_for_eval",
    "prepare_mlm_dataset",
    "preset_table",
    "resolve_files",
    "resolve_resume_checkpoint",
    "scan_jsonl_file",
    "scan_text_file",
    "segment_word_starts",
    "setup_logging",
    "split_lines_into_blocks",
    "tokenize_and_pack",
    "tokenizer_report",
    "train_wordpiece_tokenizer",
    "training_command",
    "validate_pretrain_options",
    "word_start_flags",
    "write_json",
    "write_mlm_model_card",
    "yaml_to_argv",
    "__version__",
]
