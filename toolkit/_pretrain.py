"""Pretraining steps worth a unit test, used by ``recipes/pretrain.py``."""

from __future__ import annotations

import dataclasses
import json
import logging
import os

import datasets
import torch
from transformers import BertConfig, PreTrainedTokenizerBase, TrainingArguments

from ._config import CorpusArguments, MLMArguments, TokenizerArguments
from ._corpus import iter_texts
from ._errors import ToolkitInputError
from ._model import DEFAULT_POSITION_RMS, check_position_init
from ._rundir import input_files, option_group, run_fingerprint
from ._tokenizer import check_tokenizer_health, load_tokenizer, tokenizer_report, train_wordpiece_tokenizer

logger = logging.getLogger(__name__)

# A streamed corpus may not fit in memory: its vocabulary is trained on a prefix of this many documents.
STREAMING_TOKENIZER_SAMPLES = 200_000


def validate_pretrain_options(
    corpus: CorpusArguments, tok: TokenizerArguments, mlm: MLMArguments, args: TrainingArguments
) -> None:
    """Reject conflicting or impossible flag combinations before any data is read.

    Raises:
        ToolkitInputError: naming the flags in conflict.
    """
    if corpus.streaming and args.max_steps <= 0:
        raise ToolkitInputError("--streaming needs --max_steps N: a stream has no length to count epochs by")
    if corpus.streaming and mlm.num_proc and mlm.num_proc > 1:
        raise ToolkitInputError("--num_proc applies to in-memory data; streaming tokenizes on the fly")
    if mlm.model_name_or_path and mlm.config_overrides:
        raise ToolkitInputError("--config_overrides applies to a fresh --preset, not to --model_name_or_path")
    if mlm.model_name_or_path and mlm.preset not in (None, "tiny"):
        raise ToolkitInputError(
            "give either --preset (train from scratch) or --model_name_or_path (continue), not both"
        )
    if mlm.model_name_or_path and mlm.position_init != "random":
        raise ToolkitInputError("--position_init applies to a fresh --preset, not to --model_name_or_path")
    check_position_init(mlm.position_init, mlm.position_init_rms)
    if mlm.position_init_rms is not None and mlm.position_init == "random":
        # e.g. `--position_init random` over a config that sets both: a deliberate override, not a mistake
        logger.warning("--position_init_rms %s is unused: --position_init is random", mlm.position_init_rms)
    if mlm.chinese_segmenter and not mlm.whole_word_mask:
        raise ToolkitInputError("--chinese_segmenter only applies with --whole_word_mask true")
    if not 0.0 < mlm.mlm_probability < 1.0:
        raise ToolkitInputError(f"--mlm_probability must be in (0, 1), got {mlm.mlm_probability}")
    if not 0.0 <= mlm.whole_word_share <= 1.0:
        raise ToolkitInputError(f"--whole_word_share must be in [0, 1], got {mlm.whole_word_share}")
    if mlm.whole_word_share != 1.0 and not mlm.whole_word_mask:
        raise ToolkitInputError("--whole_word_share only applies with --whole_word_mask true")
    if mlm.block_size < 8:
        raise ToolkitInputError(f"--block_size {mlm.block_size} is too small (at least 8)")
    if args.bf16 and (args.use_cpu or not torch.cuda.is_available()):
        raise ToolkitInputError(
            "--bf16 on CPU: a CPU bf16 matmul is far slower than fp32 here; train in fp32"
        )
    if args.eval_strategy != "no" and not (
        corpus.validation_files or corpus.validation_split or corpus.dataset_name
    ):
        raise ToolkitInputError(
            "--eval_strategy needs validation data: --validation_split or --validation_files"
        )
    if corpus.encoding_errors not in ("strict", "replace"):
        raise ToolkitInputError(
            f"--encoding_errors must be 'strict' or 'replace', got {corpus.encoding_errors!r}"
        )


def check_resume_position_init(checkpoint: str | os.PathLike, mlm: MLMArguments) -> None:
    """A resumed fresh-preset run must ask for the position start its checkpoint was begun with.

    The checkpoint's weights replace the new model's, but ``config.json`` (and so the model card and a
    random-init twin) would record this run's flags: a mismatch is refused rather than mislabelled.

    Raises:
        ToolkitInputError: naming both starts and the ways out.
    """
    path = os.path.join(checkpoint, "config.json")
    if mlm.model_name_or_path or not os.path.isfile(path):
        return
    with open(path, encoding="utf-8") as f:
        saved = json.load(f)

    def start(scheme: str, rms: float | None) -> str:
        return scheme if scheme == "random" else f"{scheme} (rms {rms})"

    was = start(saved.get("position_init", "random"), saved.get("position_init_rms"))
    asked = start(mlm.position_init, mlm.position_init_rms or DEFAULT_POSITION_RMS)
    if was != asked:
        raise ToolkitInputError(
            f"resuming from {checkpoint}, which began with position embeddings {was}, but this run asks for "
            f"{asked}: pass the checkpoint's --position_init/--position_init_rms, or start afresh in another "
            "--output_dir (or remove its checkpoint-* folders)"
        )


# Options that change how fast or how verbosely a run goes, not what it trains: free to change on a resume.
_NOT_THE_RUN = (
    "dry_run",
    "fill_mask_examples",
    "num_proc",
    "languages",
    "attn_implementation",
    "sparse_head",
)


def pretraining_fingerprint(
    corpus: CorpusArguments, tokenizer: TokenizerArguments, mlm: MLMArguments
) -> dict:
    """What defines a pretraining run (see ``prepare_output_dir``): the corpus options and the identity of
    every local input file, the tokenizer options, and the model and masking options."""
    local = [*(corpus.train_files or []), *(corpus.validation_files or []), *(corpus.conll_files or [])]
    return run_fingerprint(
        inputs={**dataclasses.asdict(corpus), "files": input_files(local, extensions=corpus.extensions)},
        tokenizer=dataclasses.asdict(tokenizer),
        model=option_group(dataclasses.asdict(mlm), ignore=_NOT_THE_RUN),
    )


def check_block_size(config: BertConfig, block_size: int) -> None:
    """A block must fit the model's position embeddings."""
    if block_size > config.max_position_embeddings:
        raise ToolkitInputError(
            f"--block_size {block_size} exceeds max_position_embeddings {config.max_position_embeddings} of the model"
        )


def obtain_tokenizer(
    tok: TokenizerArguments,
    *,
    train_texts: datasets.Dataset | datasets.IterableDataset,
    model_name_or_path: str | None,
    model_max_length: int,
) -> tuple[PreTrainedTokenizerBase, dict]:
    """Reuse (``--tokenizer_name_or_path`` / the checkpoint's) or train a tokenizer, then check its health.

    Returns:
        ``(tokenizer, report_dict)``; the report is also logged.

    Raises:
        ToolkitInputError: a broken tokenizer (see :func:`toolkit.check_tokenizer_health`).
    """
    source = tok.tokenizer_name_or_path or model_name_or_path
    if source:
        tokenizer = load_tokenizer(source)
        where = f"tokenizer {source!r}"
    else:
        limit = tok.tokenizer_train_samples
        if limit is None and isinstance(train_texts, datasets.IterableDataset):
            limit = STREAMING_TOKENIZER_SAMPLES
            logger.info(
                "Streaming corpus: training the vocabulary on its first %d documents "
                "(--tokenizer_train_samples to change)",
                limit,
            )
        texts = list(iter_texts(train_texts, limit=limit))
        logger.info("Training a WordPiece vocabulary of %d on %d documents", tok.vocab_size, len(texts))
        tokenizer = train_wordpiece_tokenizer(
            texts,
            vocab_size=tok.vocab_size,
            min_frequency=tok.min_frequency,
            char_min_frequency=tok.char_min_frequency,
            lowercase=tok.lowercase,
            strip_accents=tok.strip_accents,
            model_max_length=model_max_length,
        )
        where = "the trained tokenizer"
    sample = iter_texts(train_texts, limit=20_000)
    report = tokenizer_report(tokenizer, list(sample))
    logger.info("Tokenizer: %s", report.summary())
    check_tokenizer_health(report, max_unk_rate=tok.max_unk_rate, where=where)
    return tokenizer, report.as_dict()


def block_stats(blocks: datasets.Dataset, *, pad_id: int, block_size: int, packed: bool) -> dict:
    """Count blocks, tokens and padding of a prepared in-memory dataset.

    Raises:
        ToolkitInputError: no block at all, or (packed mode) a corpus that does not fill one block.
    """
    n = len(blocks)
    if n == 0:
        raise ToolkitInputError("the corpus produced no training example (is every document empty?)")
    n_tokens = n_pad = 0
    for start in range(0, n, 10_000):
        for row in blocks[start : start + 10_000]["input_ids"]:
            n_tokens += len(row)
            n_pad += row.count(pad_id)
    if packed and n_tokens - n_pad < block_size:
        raise ToolkitInputError(
            f"the corpus has {n_tokens - n_pad} tokens, fewer than one block of {block_size}: "
            "add text or lower --block_size"
        )
    return {
        "n_blocks": n,
        "n_tokens": n_tokens,
        "n_padding_tokens": n_pad,
        "padding_fraction": n_pad / n_tokens,
    }


def save_pretraining_report(
    trainer,
    corpus_args: CorpusArguments,
    mlm_args: MLMArguments,
    *,
    metrics: dict,
    size,
    tokenizer_report: dict,
    corpus_report,
    block_stats: dict,
    command: str,
) -> None:
    """Write ``metrics.json``, ``loss_curve.png`` and the model card of a pretraining run (main process)."""
    import os

    from ._card import write_mlm_model_card
    from ._training import plot_loss_curve, write_json

    args, config = trainer.args, trainer.model.config
    results = {
        "metrics": metrics,
        "model": {
            "params": size.params,
            "params_non_embedding": size.params_non_embedding,
            "train_flops_per_token_sparse_head": size.train_flops_per_token_sparse_head,
        },
        "tokenizer": tokenizer_report,
        "corpus": corpus_report.as_dict(),
        "blocks": block_stats,
    }
    write_json(results, os.path.join(args.output_dir, "metrics.json"))
    plot_loss_curve(trainer.state.log_history, os.path.join(args.output_dir, "loss_curve.png"))
    local = [*(corpus_args.train_files or []), *(f"{f} (CoNLL text)" for f in corpus_args.conll_files or [])]
    source = corpus_args.dataset_name or ", ".join(local)
    write_mlm_model_card(
        args.output_dir,
        languages=mlm_args.languages,
        preset=None if mlm_args.model_name_or_path else (mlm_args.preset or "tiny"),
        params=size.params,
        params_non_embedding=size.params_non_embedding,
        config_summary={
            k: getattr(config, k)
            for k in ("num_hidden_layers", "hidden_size", "num_attention_heads", "vocab_size")
        },
        data_description=f"{source} ({corpus_report.n_bytes:,} bytes, {block_stats.get('n_tokens', 'streamed')} "
        f"tokens in blocks of {mlm_args.block_size}).",
        tokenizer_summary=f"WordPiece, {tokenizer_report['vocab_size']:,} entries, [UNK] rate "
        f"{tokenizer_report['unk_rate']:.4%} on the training text.",
        hyperparameters={
            "max_steps / epochs": args.max_steps if args.max_steps > 0 else args.num_train_epochs,
            "batch size per device": args.per_device_train_batch_size,
            "learning rate": args.learning_rate,
            "block size": mlm_args.block_size,
            "mlm probability": mlm_args.mlm_probability,
            "whole-word masking": mlm_args.whole_word_mask,
            **(
                {"position embeddings start": f"{config.position_init} (rms {config.position_init_rms})"}
                if getattr(config, "position_init", "random") != "random"
                else {}
            ),
            **(
                {"share of words drawn whole": mlm_args.whole_word_share}
                if mlm_args.whole_word_mask and mlm_args.whole_word_share < 1.0
                else {}
            ),
        },
        metrics={k: v for k, v in metrics.items() if k.startswith("eval_") or k == "train_loss"},
        command=command,
        base_model=mlm_args.model_name_or_path,
        dataset_name=corpus_args.dataset_name
        or os.path.basename(os.path.normpath((corpus_args.train_files or corpus_args.conll_files)[0])),
    )
