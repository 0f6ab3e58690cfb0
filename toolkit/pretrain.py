"""Pretraining steps worth a unit test, used by ``recipes/pretrain.py``."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import datasets
from transformers import BertConfig, BertForMaskedLM, PreTrainedTokenizerBase, TrainingArguments, pipeline

from ._corpus import iter_texts
from ._errors import ToolkitInputError
from ._io import text_decoding
from ._masking import (
    IGNORE_INDEX,
    CollatorEpochCallback,
    MLMCollator,
    check_masking_options,
    premask_for_eval,
)
from ._model import SparseHeadBertForMaskedLM, build_mlm_model
from ._packing import prepare_mlm_dataset
from ._presets import (
    DEFAULT_PRESET,
    PRESET_NAMES,
    PRETRAIN_MODEL_SETTINGS,
    PRETRAIN_SETTINGS,
    ModelSize,
    apply_settings,
    count_size,
    load_preset,
    parse_overrides,
    preset_of,
)
from ._report import save_pretraining_report
from ._surgery import DEFAULT_POSITION_RMS, check_position_init, init_position_embeddings
from ._tokenizer import check_tokenizer_health, load_tokenizer, tokenizer_report, train_wordpiece_tokenizer
from ._vocab_growth import (
    VocabularyGrowth,
    coverage_of,
    coverage_report,
    describe_growth,
    extend_embeddings,
    extend_tokenizer,
    extend_vocabulary,
    find_new_tokens,
    same_old_vocabulary,
)
from .config import CorpusArguments, MLMArguments, TokenizerArguments
from .rundir import input_files, option_group, run_fingerprint
from .training import ToolkitTrainer, check_precision, perplexity

__all__ = [
    # the building blocks the pretraining steps use, for scripts that compose their own
    "IGNORE_INDEX",
    "CollatorEpochCallback",
    "SparseHeadBertForMaskedLM",
    "iter_texts",
    "premask_for_eval",
    # vocabulary growth (--extend_vocab)
    "VocabularyGrowth",
    "coverage_report",
    "extend_vocabulary",
    "find_new_tokens",
    # the steps
    "apply_pretraining_settings",
    "check_validation_data",
    "PretrainingData",
    "ResumePoint",
    "STREAMING_TOKENIZER_SAMPLES",
    "block_stats",
    "check_block_size",
    "check_resume_position_init",
    "grow_pretraining_vocabulary",
    "obtain_tokenizer",
    "pretraining_data",
    "pretraining_fingerprint",
    "pretraining_metrics",
    "pretraining_model",
    "pretraining_tokenizer",
    "pretraining_trainer",
    "resume_point",
    "save_pretraining_report",
    "show_fill_mask",
    "validate_pretrain_options",
]

logger = logging.getLogger(__name__)

# A streamed corpus may not fit in memory: its vocabulary is trained on a prefix of this many documents.
STREAMING_TOKENIZER_SAMPLES = 200_000
# The tokenizer's coverage ([UNK] rate, chars per token) is measured on this many training documents.
TOKENIZER_REPORT_SAMPLES = 20_000


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
    if mlm.model_name_or_path and mlm.preset:
        raise ToolkitInputError(
            "give either --preset (train from scratch) or --model_name_or_path (continue), not both"
        )
    if mlm.model_name_or_path and mlm.position_init != "random":
        raise ToolkitInputError("--position_init applies to a fresh --preset, not to --model_name_or_path")
    if mlm.extend_vocab and not mlm.model_name_or_path:
        raise ToolkitInputError(
            "--extend_vocab grows a checkpoint's vocabulary: it needs --model_name_or_path (a fresh --preset "
            "trains its vocabulary on the corpus anyway)"
        )
    if mlm.extend_vocab_words and not mlm.extend_vocab:
        raise ToolkitInputError("--extend_vocab_words only applies with --extend_vocab true")
    noise_default = next(f.default for f in dataclasses.fields(mlm) if f.name == "extend_vocab_noise")
    if mlm.extend_vocab_noise != noise_default and not mlm.extend_vocab:
        raise ToolkitInputError("--extend_vocab_noise only applies with --extend_vocab true")
    if not mlm.extend_vocab_noise >= 0:
        raise ToolkitInputError(f"--extend_vocab_noise must be 0 or more, got {mlm.extend_vocab_noise}")
    if mlm.extend_vocab_min_count < 1:
        raise ToolkitInputError(
            f"--extend_vocab_min_count must be at least 1, got {mlm.extend_vocab_min_count}"
        )
    check_position_init(mlm.position_init, mlm.position_init_rms)
    if mlm.position_init_rms is not None and mlm.position_init == "random":
        # e.g. `--position_init random` over a config that sets both: a deliberate override, not a mistake
        logger.warning("--position_init_rms %s is unused: --position_init is random", mlm.position_init_rms)
    if mlm.chinese_segmenter and not mlm.whole_word_mask:
        raise ToolkitInputError("--chinese_segmenter only applies with --whole_word_mask true")
    check_masking_options(
        mlm_probability=mlm.mlm_probability,
        whole_word_mask=mlm.whole_word_mask,
        whole_word_share=mlm.whole_word_share,
    )
    if mlm.block_size < 8:
        raise ToolkitInputError(f"--block_size {mlm.block_size} is too small (at least 8)")
    check_precision(args)
    if args.eval_strategy != "no" and not (
        corpus.validation_files or corpus.validation_split or corpus.dataset_name
    ):
        raise ToolkitInputError(
            "--eval_strategy needs validation data: --validation_split or --validation_files"
        )
    if corpus.dataset_name and corpus.validation_files:
        raise ToolkitInputError(
            "--validation_files applies to local files; with --dataset_name use --validation_split or the "
            "dataset's own validation split"
        )
    text_decoding(corpus.encoding, corpus.encoding_errors)  # a known encoding, strict or replace


def apply_pretraining_settings(mlm: MLMArguments, args: TrainingArguments) -> dict[str, str]:
    """Fill in the preset's training settings (rate, batch, Adam's beta2, weight decay, warmup) and, for a fresh
    model, its start (sinusoidal positions, no dropout) wherever the user set nothing; log every value with
    where it came from (the preset, the config file or a flag). A continued checkpoint gets the training
    settings of the preset its size matches.

    Returns:
        ``{setting: "value (source)"}``, as logged.
    """
    if mlm.model_name_or_path:
        try:
            name = preset_of(BertConfig.from_pretrained(mlm.model_name_or_path))
        except (OSError, ValueError):
            name = None  # build_mlm_model reports a bad checkpoint
    else:
        name = mlm.preset or DEFAULT_PRESET
        if name not in PRESET_NAMES:  # a preset YAML of one's own: the settings of the preset of its size
            name = preset_of(load_preset(name)) or name
    report = apply_settings(args, PRETRAIN_SETTINGS.get(name, {}), source=f"{name} preset")
    if not mlm.model_name_or_path and name in PRESET_NAMES:
        report |= apply_settings(
            mlm, {"position_init": PRETRAIN_MODEL_SETTINGS["position_init"]}, source=f"{name} preset"
        )
        given = parse_overrides(mlm.config_overrides)
        added = {k: v for k, v in PRETRAIN_MODEL_SETTINGS["config_overrides"].items() if k not in given}
        if added:
            mlm.config_overrides = ",".join(
                [*(f"{k}={v}" for k, v in added.items()), mlm.config_overrides or ""]
            ).strip(",")
            report |= {k: f"{v!r} ({name} preset)" for k, v in added.items()}
    if report:
        logger.info("Training settings: %s", "; ".join(f"{k} = {v}" for k, v in report.items()))
    return report


def check_validation_data(corpus: dict, args: TrainingArguments) -> None:
    """After loading: evaluation during training needs a validation split (a hub dataset may have none).

    Raises:
        ToolkitInputError: ``--eval_strategy`` set and no validation split, before any tokenizer is trained.
    """
    if args.eval_strategy != "no" and "validation" not in corpus:
        raise ToolkitInputError(
            f"--eval_strategy {getattr(args.eval_strategy, 'value', args.eval_strategy)} needs validation data, and the corpus has none: the dataset "
            "has no validation split; give --validation_split"
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
    # Files by content, not by how their paths were spelt (./corpus, corpus/, another working directory).
    paths = ("train_files", "validation_files", "conll_files")
    files = {name: input_files(getattr(corpus, name) or [], extensions=corpus.extensions) for name in paths}
    # Without --extend_vocab its settings define nothing (and runs recorded before it existed still resume).
    unused = (
        ()
        if mlm.extend_vocab
        else ("extend_vocab", "extend_vocab_min_count", "extend_vocab_words", "extend_vocab_noise")
    )
    return run_fingerprint(
        inputs={**option_group(dataclasses.asdict(corpus), ignore=paths), **files},
        tokenizer=dataclasses.asdict(tokenizer),
        model=option_group(dataclasses.asdict(mlm), ignore=(*_NOT_THE_RUN, *unused)),
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
    check_health: bool = True,
) -> tuple[PreTrainedTokenizerBase, dict]:
    """Reuse (``--tokenizer_name_or_path`` / the checkpoint's) or train a tokenizer, then check its health
    (unless ``check_health`` is false: a vocabulary about to grow is checked after growing).

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
    sample = iter_texts(train_texts, limit=TOKENIZER_REPORT_SAMPLES)
    report = tokenizer_report(tokenizer, list(sample))
    logger.info("Tokenizer: %s", report.summary())
    if check_health:
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


@dataclass
class ResumePoint:
    """Where a resumed pretraining run starts: its checkpoint, step and tokens seen (all zero for a new run)."""

    checkpoint: str | None = None
    step: int = 0
    tokens: int = 0


def resume_point(checkpoint: str | None, tok: TokenizerArguments, mlm: MLMArguments) -> ResumePoint:
    """Read where ``checkpoint`` stopped and make the run keep what it started with: the position start its
    ``config.json`` records (checked), and its vocabulary (``tok.tokenizer_name_or_path`` is set to the
    checkpoint when the run trained its own tokenizer)."""
    if not checkpoint:
        return ResumePoint()
    check_resume_position_init(checkpoint, mlm)
    state = json.loads((Path(checkpoint) / "trainer_state.json").read_text(encoding="utf-8"))
    if not (tok.tokenizer_name_or_path or mlm.model_name_or_path):
        tok.tokenizer_name_or_path = checkpoint
    return ResumePoint(checkpoint, state["global_step"], state.get("num_input_tokens_seen", 0))


def pretraining_tokenizer(
    tok: TokenizerArguments,
    mlm: MLMArguments,
    args: TrainingArguments,
    train_texts: datasets.Dataset | datasets.IterableDataset,
    *,
    resume_from: str | None = None,
) -> tuple[PreTrainedTokenizerBase, dict]:
    """:func:`obtain_tokenizer` on the main process first, saved to the output directory; the other
    processes of a distributed run then load it from there instead of training their own. With
    ``--extend_vocab`` the checkpoint's vocabulary grows by what the corpus needs
    (:func:`grow_pretraining_vocabulary`); the other processes, and a run resumed from ``resume_from``, reuse
    the grown vocabulary saved there rather than growing it again."""
    with args.main_process_first(desc="tokenizer"):
        reuse = tok.tokenizer_name_or_path or mlm.model_name_or_path
        if not args.should_save and not reuse:
            tok = dataclasses.replace(tok, tokenizer_name_or_path=args.output_dir)
        tokenizer, report = obtain_tokenizer(
            tok,
            train_texts=train_texts,
            model_name_or_path=mlm.model_name_or_path,
            model_max_length=mlm.block_size,
            check_health=not mlm.extend_vocab,
        )
        if mlm.extend_vocab:
            tokenizer, report = grow_pretraining_vocabulary(
                tokenizer,
                train_texts,
                tok=tok,
                mlm=mlm,
                before=report,
                grown_in=resume_from or (None if args.should_save else args.output_dir),
                show_progress=not args.disable_tqdm,
            )
        if args.should_save:
            tokenizer.save_pretrained(args.output_dir)
    return tokenizer, report


def grow_pretraining_vocabulary(
    tokenizer: PreTrainedTokenizerBase,
    train_texts: datasets.Dataset | datasets.IterableDataset,
    *,
    tok: TokenizerArguments,
    mlm: MLMArguments,
    before: dict,
    grown_in: str | os.PathLike | None = None,
    show_progress: bool = True,
) -> tuple[PreTrainedTokenizerBase, dict]:
    """``--extend_vocab``: the checkpoint's tokenizer with the entries the corpus needs appended (see
    :func:`find_new_tokens`: characters it maps to ``[UNK]`` and, with ``--extend_vocab_words``, words it
    splits into 3+ pieces, each seen ``--extend_vocab_min_count`` times in the ``--tokenizer_train_samples``
    documents), or the grown tokenizer already saved in ``grown_in`` (a resumed run, or the main process's
    for the others). The model's rows follow in :func:`pretraining_model`.

    Args:
        tokenizer: the checkpoint's tokenizer.
        train_texts: the training corpus.
        tok: tokenizer options (the sample size and the [UNK] rate limit).
        mlm: model options (the checkpoint and the growth options).
        before: the checkpoint tokenizer's report on the training sample (from :func:`obtain_tokenizer`).
        grown_in: a directory holding this run's grown tokenizer, to reuse instead of growing again.
        show_progress: a progress bar over the scanned documents.

    Returns:
        ``(grown_tokenizer, report)``: the report of the grown tokenizer, with ``"vocabulary_growth"``
        holding the coverage before and after (``unk_rate``, ``chars_per_token``, ...), the entries added and
        where their rows start from; logged as well.

    Raises:
        ToolkitInputError: the checkpoint's embedding rows and its tokenizer's entries differ in number,
            ``grown_in`` holds a tokenizer that does not extend the checkpoint's, or the grown tokenizer
            still maps more than ``--max_unk_rate`` of the sample to ``[UNK]``.
    """
    try:
        rows = BertConfig.from_pretrained(mlm.model_name_or_path).vocab_size
    except (OSError, ValueError) as err:
        raise ToolkitInputError(
            f"cannot read a model config from {mlm.model_name_or_path!r}: {err}"
        ) from None
    if rows != len(tokenizer):
        raise ToolkitInputError(
            f"--extend_vocab: {mlm.model_name_or_path!r} has {rows} embedding rows but its tokenizer has "
            f"{len(tokenizer)} entries; new entries are appended after the last id, so the two must agree"
        )
    if grown_in:
        grown = load_tokenizer(grown_in)
        if not same_old_vocabulary(tokenizer, grown):
            raise ToolkitInputError(
                f"the tokenizer in {str(grown_in)!r} does not extend the vocabulary of "
                f"{mlm.model_name_or_path!r}: start this run afresh in another --output_dir"
            )
        logger.info("Vocabulary grown earlier: reusing the %d entries of %s", len(grown), grown_in)
    else:
        limit = tok.tokenizer_train_samples
        if limit is None and isinstance(train_texts, datasets.IterableDataset):
            limit = STREAMING_TOKENIZER_SAMPLES
        new_tokens = find_new_tokens(
            iter_texts(train_texts, limit=limit),
            tokenizer,
            min_count=mlm.extend_vocab_min_count,
            words=mlm.extend_vocab_words,
            show_progress=show_progress,
        )
        grown = extend_tokenizer(tokenizer, new_tokens)
    after = tokenizer_report(grown, list(iter_texts(train_texts, limit=TOKENIZER_REPORT_SAMPLES)))
    growth = {
        "before": coverage_of(before),
        "after": coverage_of(after.as_dict()),
        **describe_growth(grown, len(tokenizer), fallback_noise=mlm.extend_vocab_noise).as_dict(),
        "min_count": mlm.extend_vocab_min_count,
        "words": mlm.extend_vocab_words,
    }
    was, now = growth["before"], growth["after"]
    logger.info(
        "Vocabulary growth: %d entries added (%d rows from their old pieces, %d from the mean row%s); [UNK] rate "
        "%.4f%% -> %.4f%%, chars per token %.3f -> %.3f",
        growth["n_added"],
        growth["from_pieces"],
        growth["fallback"],
        f" + noise x{mlm.extend_vocab_noise:g} of the rows' spread"
        if growth["fallback"] and mlm.extend_vocab_noise
        else "",
        100 * was["unk_rate"],
        100 * now["unk_rate"],
        was["chars_per_token"],
        now["chars_per_token"],
    )
    logger.info("Grown tokenizer: %s", after.summary())
    check_tokenizer_health(
        after, max_unk_rate=tok.max_unk_rate, where=f"the tokenizer of {mlm.model_name_or_path!r}, grown"
    )
    return grown, {**after.as_dict(), "vocabulary_growth": growth}


def pretraining_model(
    mlm: MLMArguments, tokenizer: PreTrainedTokenizerBase
) -> tuple[BertForMaskedLM, ModelSize]:
    """A fresh size preset (with its position start) sized to ``tokenizer``, or the checkpoint to continue
    (with ``--extend_vocab``, grown to ``tokenizer``: :func:`extend_embeddings`); with the sparse MLM head for
    training. Returns the model and its size (logged)."""
    if mlm.model_name_or_path:
        model = build_mlm_model(
            checkpoint=mlm.model_name_or_path,
            sparse_head=mlm.sparse_head,
            attn_implementation=mlm.attn_implementation,
        )
        if mlm.extend_vocab:  # rows for the entries grow_pretraining_vocabulary added
            extend_embeddings(model, tokenizer, fallback_noise=mlm.extend_vocab_noise)
    else:
        config = load_preset(
            mlm.preset or DEFAULT_PRESET,
            vocab_size=len(tokenizer),
            overrides=parse_overrides(mlm.config_overrides),
            pad_token_id=tokenizer.pad_token_id,
        )
        model = build_mlm_model(
            config=config, sparse_head=mlm.sparse_head, attn_implementation=mlm.attn_implementation
        )
        init_position_embeddings(model, mlm.position_init, mlm.position_init_rms)
    check_block_size(model.config, mlm.block_size)
    size = count_size(model.config, seq_len=mlm.block_size, mlm_probability=mlm.mlm_probability)
    logger.info(
        "Model: %.2f M parameters (%.2f M without embeddings)",
        size.params / 1e6,
        size.params_non_embedding / 1e6,
    )
    return model, size


@dataclass
class PretrainingData:
    """The packed training blocks, the pre-masked validation blocks (or ``None``), the training collator and
    the block statistics (empty for a streamed corpus)."""

    train: datasets.Dataset | datasets.IterableDataset
    validation: datasets.Dataset | None
    collator: MLMCollator
    stats: dict


def pretraining_data(
    corpus: dict,
    tokenizer: PreTrainedTokenizerBase,
    mlm: MLMArguments,
    args: TrainingArguments,
    *,
    streaming: bool = False,
) -> PretrainingData:
    """Tokenize and pack the corpus (once, on the main process first; the others reuse the datasets cache)
    and mask the validation blocks once with a fixed seed, so every evaluation scores the same masks."""
    masking = dict(
        mlm_probability=mlm.mlm_probability,
        whole_word_mask=mlm.whole_word_mask,
        whole_word_share=mlm.whole_word_share,
    )
    prep = dict(
        block_size=mlm.block_size,
        line_by_line=mlm.line_by_line,
        whole_word_mask=mlm.whole_word_mask,
        segmenter=mlm.chinese_segmenter,
        num_proc=mlm.num_proc,
    )
    with args.main_process_first(desc="tokenize and pack"):
        train = prepare_mlm_dataset(corpus["train"], tokenizer, **prep)
        validation = None
        if "validation" in corpus:
            validation = prepare_mlm_dataset(corpus["validation"], tokenizer, **prep)
            validation = validation.map(
                premask_for_eval,
                batched=True,
                fn_kwargs={"collator": MLMCollator(tokenizer, **masking, seed=args.seed + 1)},
                remove_columns=validation.column_names,
            )
    stats = {}
    if not streaming:
        stats = block_stats(
            train, pad_id=tokenizer.pad_token_id, block_size=mlm.block_size, packed=not mlm.line_by_line
        )
        logger.info("Training blocks: %s", stats)
    return PretrainingData(train, validation, MLMCollator(tokenizer, **masking, seed=args.seed), stats)


def pretraining_trainer(
    model: BertForMaskedLM, tokenizer: PreTrainedTokenizerBase, data: PretrainingData, args: TrainingArguments
) -> ToolkitTrainer:
    """``ToolkitTrainer`` for masked-LM pretraining: the collator's epoch follows the trainer's (fresh masks
    each epoch, reproducible on resume), and perplexity is reported beside the validation loss."""
    return ToolkitTrainer(
        model=model,
        args=args,
        train_dataset=data.train,
        eval_dataset=data.validation,
        processing_class=tokenizer,
        data_collator=data.collator,
        callbacks=[CollatorEpochCallback(data.collator)],
        report_perplexity=True,
    )


def pretraining_metrics(trainer: ToolkitTrainer, train_metrics: dict, start: ResumePoint) -> dict:
    """The run's metrics: training (whole run), tokens seen (in all and in this call, whose runtime
    ``train_runtime`` times), the step a resumed run started from, and the validation loss and perplexity
    on the fixed masks when there is validation data."""
    metrics = dict(train_metrics)
    metrics["train_tokens_seen"] = trainer.state.num_input_tokens_seen
    metrics["train_tokens_this_run"] = trainer.state.num_input_tokens_seen - start.tokens
    if start.checkpoint:
        metrics["resumed_from_step"] = start.step
    if trainer.eval_dataset is not None:
        metrics.update(trainer.evaluate())
        metrics["eval_perplexity"] = perplexity(metrics["eval_loss"])
    return metrics


def show_fill_mask(model_dir: str | os.PathLike, sentences: list[str], *, top_k: int = 5) -> None:
    """Print the ``top_k`` predictions for each ``[MASK]`` sentence, from ``model_dir`` loaded as a stock
    ``fill-mask`` pipeline (what a user of the saved model gets)."""
    fill = pipeline("fill-mask", model=str(model_dir), device=-1)
    for sentence in sentences:
        preds = fill(sentence.replace("[MASK]", fill.tokenizer.mask_token), top_k=top_k)
        preds = preds[0] if preds and isinstance(preds[0], list) else preds
        print(f"{sentence}\n    -> " + ", ".join(f"{p['token_str']} ({p['score']:.2f})" for p in preds))
