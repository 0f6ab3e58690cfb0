#!/usr/bin/env python
"""Pretrain a small BERT masked-LM (and its WordPiece vocabulary) on raw text.

    python recipes/pretrain.py --config recipes/configs/pretrain/tiny_en.yaml
    python recipes/pretrain.py --train_files corpus/ --preset mini --output_dir out --max_steps 1000
    torchrun --nproc_per_node 2 recipes/pretrain.py --config ...     # same recipe, distributed

Every option: ``python recipes/pretrain.py --help``. Flags override ``--config`` values.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

from transformers import TrainingArguments, pipeline, set_seed

from toolkit import (
    CollatorEpochCallback,
    CorpusArguments,
    MLMArguments,
    MLMCollator,
    RunArguments,
    TokenizerArguments,
    ToolkitTrainer,
    block_stats,
    build_mlm_model,
    check_block_size,
    check_resume_position_init,
    count_size,
    hub_target_from_args,
    init_position_embeddings,
    load_corpus,
    load_preset,
    obtain_tokenizer,
    parse_config,
    parse_overrides,
    perplexity,
    premask_for_eval,
    prepare_mlm_dataset,
    prepare_output_dir,
    prepare_training_args,
    pretraining_fingerprint,
    push_output_dir,
    run_cli,
    save_pretraining_report,
    setup_logging,
    training_command,
    validate_pretrain_options,
)

logger = logging.getLogger("pretrain")


def main(argv: list[str] | None = None) -> dict:
    # 1. Configuration: YAML base, flags win; impossible combinations fail here, before any data is read.
    corpus_args, tok_args, mlm_args, run, args = parse_config(
        [CorpusArguments, TokenizerArguments, MLMArguments, RunArguments, TrainingArguments], argv
    )
    prepare_training_args(args)  # keeps word_starts for the collator; counts tokens for tokens/s
    setup_logging(args)
    validate_pretrain_options(corpus_args, tok_args, mlm_args, args)
    hub = hub_target_from_args(args)  # token, repo id and permissions checked now, not after training
    # The output directory: writable, and either new, or this same run to resume (a changed run is refused).
    resume_from = prepare_output_dir(
        args,
        recipe="pretrain",
        fingerprint=pretraining_fingerprint(corpus_args, tok_args, mlm_args),
        overwrite=run.overwrite_output_dir,
    )
    set_seed(args.seed)  # before the model is built: its random init is part of the run
    start_step, start_tokens = 0, 0
    if resume_from:
        check_resume_position_init(resume_from, mlm_args)  # the start config.json will record must be true
        state = json.loads((Path(resume_from) / "trainer_state.json").read_text(encoding="utf-8"))
        start_step, start_tokens = state["global_step"], state.get("num_input_tokens_seen", 0)
    if resume_from and not (tok_args.tokenizer_name_or_path or mlm_args.model_name_or_path):
        tok_args.tokenizer_name_or_path = (
            resume_from  # a resumed run must keep the vocabulary it started with
        )

    # 2. Corpus: local files are checked (existence, UTF-8, JSONL fields) before anything else.
    corpus, corpus_report = load_corpus(**dataclasses.asdict(corpus_args))  # fields = load_corpus arguments
    logger.info("Corpus: %s", corpus_report.as_dict())

    # 3. Tokenizer: trained on the main process first, then loaded by the others from the output dir.
    with args.main_process_first(desc="tokenizer"):
        reuse = tok_args.tokenizer_name_or_path or mlm_args.model_name_or_path
        if not args.should_save and not reuse:
            tok_args.tokenizer_name_or_path = args.output_dir
        tokenizer, tokenizer_report = obtain_tokenizer(
            tok_args,
            train_texts=corpus["train"],
            model_name_or_path=mlm_args.model_name_or_path,
            model_max_length=mlm_args.block_size,
        )
        if args.should_save:
            tokenizer.save_pretrained(args.output_dir)

    # 4. Model: a fresh size preset, or a checkpoint to continue from; sparse MLM head for training.
    if mlm_args.model_name_or_path:
        model = build_mlm_model(
            checkpoint=mlm_args.model_name_or_path,
            sparse_head=mlm_args.sparse_head,
            attn_implementation=mlm_args.attn_implementation,
        )
    else:
        config = load_preset(
            mlm_args.preset or "tiny",
            vocab_size=len(tokenizer),
            overrides=parse_overrides(mlm_args.config_overrides),
            pad_token_id=tokenizer.pad_token_id,
        )
        model = build_mlm_model(
            config=config, sparse_head=mlm_args.sparse_head, attn_implementation=mlm_args.attn_implementation
        )
        init_position_embeddings(model, mlm_args.position_init, mlm_args.position_init_rms)
    check_block_size(model.config, mlm_args.block_size)
    size = count_size(model.config, seq_len=mlm_args.block_size, mlm_probability=mlm_args.mlm_probability)
    logger.info(
        "Model: %.2f M parameters (%.2f M without embeddings)",
        size.params / 1e6,
        size.params_non_embedding / 1e6,
    )

    # 5. Tokenize and pack (once, on the main process first; the others reuse the datasets cache).
    masking = dict(
        mlm_probability=mlm_args.mlm_probability,
        whole_word_mask=mlm_args.whole_word_mask,
        whole_word_share=mlm_args.whole_word_share,
    )
    collator = MLMCollator(tokenizer, **masking, seed=args.seed)
    prep = dict(
        block_size=mlm_args.block_size,
        line_by_line=mlm_args.line_by_line,
        whole_word_mask=mlm_args.whole_word_mask,
        segmenter=mlm_args.chinese_segmenter,
        num_proc=mlm_args.num_proc,
    )
    with args.main_process_first(desc="tokenize and pack"):
        train_blocks = prepare_mlm_dataset(corpus["train"], tokenizer, **prep)
        eval_blocks = None
        if "validation" in corpus:
            eval_collator = MLMCollator(tokenizer, **masking, seed=args.seed + 1)
            eval_blocks = prepare_mlm_dataset(corpus["validation"], tokenizer, **prep)
            eval_blocks = eval_blocks.map(
                premask_for_eval,
                batched=True,
                fn_kwargs={"collator": eval_collator},
                remove_columns=eval_blocks.column_names,
            )
    stats = {}
    if not corpus_args.streaming:
        stats = block_stats(
            train_blocks,
            pad_id=tokenizer.pad_token_id,
            block_size=mlm_args.block_size,
            packed=not mlm_args.line_by_line,
        )
        logger.info("Training blocks: %s", stats)

    # 6. Train through Trainer (accelerate underneath: torchrun / accelerate launch need no code change).
    trainer = ToolkitTrainer(
        model=model,
        args=args,
        train_dataset=train_blocks,
        eval_dataset=eval_blocks,
        processing_class=tokenizer,
        data_collator=collator,
        callbacks=[CollatorEpochCallback(collator)],
        report_perplexity=True,
    )
    if mlm_args.dry_run:
        logger.info("Dry run: inputs checked, data prepared, model built; no training.")
        return {"dry_run": True, "tokenizer": tokenizer_report, **stats}
    train_result = trainer.train(resume_from_checkpoint=resume_from)

    # 7. Evaluate: validation MLM loss and perplexity on fixed masks.
    metrics = dict(train_result.metrics)
    metrics["train_tokens_seen"] = trainer.state.num_input_tokens_seen
    # train_runtime times this call only: after a resume, its throughput is this call's tokens over it.
    metrics["train_tokens_this_run"] = trainer.state.num_input_tokens_seen - start_tokens
    if resume_from:
        metrics["resumed_from_step"] = start_step
    if eval_blocks is not None:
        metrics.update(trainer.evaluate())
        metrics["eval_perplexity"] = perplexity(metrics["eval_loss"])

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
            block_stats=stats,
            command=training_command(argv, script="recipes/pretrain.py"),
        )

        # 9. Show fill-mask predictions from the saved directory, loaded as a stock pipeline.
        if mlm_args.fill_mask_examples:
            fill = pipeline("fill-mask", model=args.output_dir, device=-1)
            for sentence in mlm_args.fill_mask_examples:
                preds = fill(sentence.replace("[MASK]", tokenizer.mask_token), top_k=5)
                preds = preds[0] if preds and isinstance(preds[0], list) else preds
                print(
                    f"{sentence}\n    -> " + ", ".join(f"{p['token_str']} ({p['score']:.2f})" for p in preds)
                )

        # 10. Push (the local output is complete before any upload starts).
        if hub:
            push_output_dir(args.output_dir, hub)
    return metrics


if __name__ == "__main__":
    run_cli(main)
