"""What a finished training run writes: ``metrics.json``, the loss curve, the model card and the console
summary (main process), then the push when a hub target was checked at start."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import torch

from ._card import write_finetune_model_card, write_mlm_model_card
from ._io import write_json
from ._presets import DEFAULT_PRESET
from .config import CorpusArguments, FinetuneArguments, MLMArguments
from .hub import push_output_dir
from .training import plot_loss_curve, print_run_summary, training_command

logger = logging.getLogger(__name__)


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
        preset=None if mlm_args.model_name_or_path else (mlm_args.preset or DEFAULT_PRESET),
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


def card_metrics(results: dict) -> dict[str, float]:
    """Every scalar score of the validation and test splits, named ``"<split> <metric>"`` (for cards)."""
    return {
        f"{split} {k}": v
        for split in ("validation", "test")
        if split in results
        for k, v in results[split].items()
        if isinstance(v, float)
    }


def headline_split(results: dict) -> str | None:
    """The split whose scores head a run's report: ``"test"`` if it was scored, else ``"validation"``."""
    return next((split for split in ("test", "validation") if split in results), None)


_HEADLINE = ("accuracy", "macro_f1", "overall_f1", "strict_overall_f1")


def headline_metrics(results: dict, keys: Sequence[str]) -> dict[str, float]:
    """The ``keys`` of the test split's scores if there is one, else the validation split's (for cards)."""
    split = headline_split(results)
    return {k: results[split][k] for k in keys if k in results[split]} if split else {}


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """``(total, trainable)`` parameter counts."""
    return sum(p.numel() for p in model.parameters()), sum(
        p.numel() for p in model.parameters() if p.requires_grad
    )


def save_finetune_outputs(
    trainer,
    ft: FinetuneArguments,
    results: dict,
    *,
    argv: list[str] | None,
    options: dict | None = None,
    script: str,
    task: str,
    pipeline_tag: str,
    labels: list[str],
    data_description: str,
    hyperparameters: dict,
    headline_keys: Sequence[str],
    usage: str,
    how_to_load: str,
    hub=None,
) -> None:
    """The last step of both fine-tuning recipes: save the plain model directory, ``metrics.json`` and the
    model card (main process only), then push when a hub target was checked at start."""
    args = trainer.args
    trainer.save_model()
    if not trainer.is_world_process_zero():
        return
    write_json(results, os.path.join(args.output_dir, "metrics.json"))
    total, _ = count_parameters(trainer.model)
    write_finetune_model_card(
        args.output_dir,
        task=task,
        pipeline_tag=pipeline_tag,
        languages=ft.languages,
        base_model=ft.model_name_or_path,
        labels=labels,
        params=total,
        data_description=data_description,
        hyperparameters={
            "epochs / max_steps": args.max_steps if args.max_steps > 0 else args.num_train_epochs,
            "batch size": args.per_device_train_batch_size,
            "learning rate": args.learning_rate,
            **hyperparameters,
        },
        metrics=card_metrics(results),
        command=training_command(argv, script=script, options=options),
        dataset_name=ft.dataset_name or os.path.basename(os.path.dirname(os.path.abspath(ft.train_file))),
        eval_metrics=headline_metrics(results, headline_keys),
        usage=usage,
    )
    if hub:
        push_output_dir(args.output_dir, hub)
    figures = {"train_loss": results.get("train", {}).get("train_loss")}
    split = headline_split(results)
    if split:
        scores = results[split].items()
        figures |= {f"{split} {k}": v for k, v in scores if k in _HEADLINE and isinstance(v, float)}
    print_run_summary(
        f"Fine-tuning done ({task})", figures, args.output_dir, how_to_load.replace("MODEL", args.output_dir)
    )
