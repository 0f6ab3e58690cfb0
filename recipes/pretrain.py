#!/usr/bin/env python
r"""Pretrain a small BERT masked-LM (and its WordPiece vocabulary) on raw text.

    python recipes/pretrain.py --config recipes/configs/pretrain/tiny_en.yaml
    python recipes/pretrain.py --train_files corpus/ --preset mini --output_dir out --max_steps 1000
    torchrun --nproc_per_node 2 recipes/pretrain.py --config ...     # same recipe, distributed

From Python: ``main(config="recipes/configs/pretrain/tiny_en.yaml", max_steps=100)`` (keyword options win).
Every option: ``python recipes/pretrain.py --help``. Flags override ``--config`` values.
"""

from __future__ import annotations

import dataclasses
import logging

from transformers import TrainingArguments

from toolkit.config import (
    CorpusArguments,
    MLMArguments,
    RunArguments,
    TokenizerArguments,
    answer_help,
    parse_config,
)

OPTIONS = [CorpusArguments, TokenizerArguments, MLMArguments, RunArguments, TrainingArguments]
if __name__ == "__main__":  # --help before the heavy imports below: about 2 s instead of 5
    answer_help(OPTIONS, __doc__)

from transformers import set_seed

from toolkit import load_corpus
from toolkit.hub import hub_target_from_args, push_output_dir
from toolkit.pretrain import (
    apply_pretraining_settings,
    check_validation_data,
    pretraining_data,
    pretraining_fingerprint,
    pretraining_metrics,
    pretraining_model,
    pretraining_tokenizer,
    pretraining_trainer,
    resume_point,
    save_pretraining_report,
    show_fill_mask,
    validate_pretrain_options,
)
from toolkit.rundir import prepare_output_dir
from toolkit.training import (
    prepare_training_args,
    print_run_summary,
    reuse_freed_memory,
    run_cli,
    set_threads,
    setup_logging,
    training_command,
)

logger = logging.getLogger("pretrain")


def main(argv: list[str] | None = None, **options) -> dict:
    # 1. Configuration: YAML base, flags win; impossible combinations fail here, before any data is read.
    corpus_args, tok_args, mlm_args, run, args = parse_config(OPTIONS, argv, description=__doc__, **options)
    setup_logging(args)
    set_threads(run.threads)
    reuse_freed_memory(run.reuse_freed_memory is not False)  # on unless turned off: 1.1x on CPU
    apply_pretraining_settings(mlm_args, args)  # the preset's tuned settings where the user set none
    prepare_training_args(args)  # keeps word_starts for the collator; counts tokens for tokens/s
    validate_pretrain_options(corpus_args, tok_args, mlm_args, args)
    # The output directory: writable, and either new, or this same run to resume (a changed run is refused).
    checkpoint = prepare_output_dir(
        args,
        recipe="pretrain",
        fingerprint=pretraining_fingerprint(corpus_args, tok_args, mlm_args),
        overwrite=run.overwrite_output_dir,
    )
    hub = hub_target_from_args(args, dry_run=mlm_args.dry_run)  # checked now, not after training
    start = resume_point(checkpoint, tok_args, mlm_args)  # a resumed run keeps its vocabulary
    set_seed(args.seed)  # before the model is built: its random init is part of the run

    # 2. Corpus: local files are checked (existence, UTF-8, JSONL fields) before anything else.
    corpus, corpus_report = load_corpus(**dataclasses.asdict(corpus_args))  # fields = load_corpus arguments
    logger.info("Corpus: %s", corpus_report.as_dict())
    check_validation_data(corpus, args)

    # 3. Tokenizer: trained on the main process first, then loaded by the others from the output dir.
    #    --extend_vocab: the checkpoint's vocabulary grows by what the corpus lacks (coverage before/after).
    tokenizer, tokenizer_report = pretraining_tokenizer(
        tok_args, mlm_args, args, corpus["train"], resume_from=start.checkpoint
    )

    # 4. Model: a fresh size preset, or a checkpoint to continue from (its new rows from their old pieces);
    #    sparse MLM head for training.
    model, size = pretraining_model(mlm_args, tokenizer)

    # 5. Tokenize and pack; validation blocks masked once, with a fixed seed.
    data = pretraining_data(corpus, tokenizer, mlm_args, args, streaming=corpus_args.streaming)

    # 6. Train through Trainer (accelerate underneath: torchrun / accelerate launch need no code change).
    trainer = pretraining_trainer(model, tokenizer, data, args)
    if mlm_args.dry_run:
        logger.info("Dry run: inputs checked, data prepared, model built; no training.")
        return {"dry_run": True, "tokenizer": tokenizer_report, **data.stats}
    train_result = trainer.train(resume_from_checkpoint=start.checkpoint)

    # 7. Evaluate: validation MLM loss and perplexity on the fixed masks.
    metrics = pretraining_metrics(trainer, train_result.metrics, start)

    # 8. Save: plain BertForMaskedLM + tokenizer + metrics.json + loss curve + model card.
    trainer.save_model()
    trainer.save_state()
    if trainer.is_world_process_zero():
        save_pretraining_report(
            trainer,
            corpus_args,
            mlm_args,
            metrics=metrics,
            size=size,
            tokenizer_report=tokenizer_report,
            corpus_report=corpus_report,
            block_stats=data.stats,
            command=training_command(argv, script="recipes/pretrain.py", options=options),
        )
        # 9. Fill-mask predictions from the saved directory, loaded as a stock pipeline.
        if mlm_args.fill_mask_examples:
            show_fill_mask(args.output_dir, mlm_args.fill_mask_examples)
        # 10. Push (the local output is complete before any upload starts).
        if hub:
            push_output_dir(args.output_dir, hub)
        print_run_summary(
            "Pretraining done",
            {k: metrics.get(k) for k in ("train_loss", "eval_loss", "eval_perplexity", "train_tokens_seen")},
            args.output_dir,
            f'pipeline("fill-mask", model="{args.output_dir}")',
        )
    return metrics


if __name__ == "__main__":
    run_cli(main)
