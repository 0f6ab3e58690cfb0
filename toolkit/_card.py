"""Model cards (``README.md`` in the output directory) generated from what the run knows."""

from __future__ import annotations

import os
import shlex
import sys

from huggingface_hub import ModelCard, ModelCardData


def training_command(argv: list[str] | None = None) -> str:
    """The command line that produced this run, shell-quoted (tokens are never part of argv)."""
    argv = sys.argv if argv is None else argv
    return " ".join(shlex.quote(a) for a in ["python", *argv])


def _table(header: str, rows: dict) -> str:
    body = "\n".join(f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in rows.items())
    return f"| {header} | value |\n|---|---|\n{body}"


def _write_card(
    output_dir: str | os.PathLike,
    *,
    card_data: ModelCardData,
    intro: str,
    data_description: str,
    command: str,
    hyperparameters: dict,
    metrics: dict,
    usage: str,
    limitations: str,
) -> ModelCard:
    name = os.path.basename(os.path.abspath(output_dir))
    content = f"""---
{card_data.to_yaml()}
---

# {name}

{intro}

## Training data

{data_description}

## Training procedure

```bash
{command}
```

{_table("hyper-parameter", hyperparameters)}

## Results

{_table("metric", metrics)}

## How to use

```python
{usage.replace("MODEL", name)}
```

## Limitations

{limitations}
"""
    card = ModelCard(content)
    card.save(os.path.join(output_dir, "README.md"))
    return card


def write_mlm_model_card(
    output_dir: str | os.PathLike,
    *,
    languages: list[str],
    preset: str | None,
    params: int,
    params_non_embedding: int,
    config_summary: dict,
    data_description: str,
    tokenizer_summary: str,
    hyperparameters: dict,
    metrics: dict,
    command: str,
    base_model: str | None = None,
    license: str = "apache-2.0",
) -> ModelCard:
    """Write a model card for a pretrained masked-LM and return it.

    The YAML header carries ``language``, ``license``, ``library_name``, ``tags``, ``pipeline_tag`` and
    ``base_model``; the body says what the model is, its size, data, tokenizer, hyper-parameters, results,
    how to load it, and its limitations.
    """
    size_line = f"`{preset}` size preset" if preset else "continued from a checkpoint"
    cfg = ", ".join(f"{k}={v}" for k, v in config_summary.items())
    return _write_card(
        output_dir,
        card_data=ModelCardData(language=languages or None, license=license, library_name="transformers",
                                tags=["bert", "fill-mask", "masked-lm", "toolkit"], pipeline_tag="fill-mask",
                                base_model=base_model),
        intro=f"A BERT-style masked language model ({size_line}: {cfg}) with its own WordPiece vocabulary, "
              f"pretrained by the toolkit's `recipes/pretrain.py`. **{params / 1e6:.2f} M parameters** "
              f"({params_non_embedding / 1e6:.2f} M without embeddings).",
        data_description=f"{data_description}\n\nTokenizer: {tokenizer_summary}",
        command=command,
        hyperparameters=hyperparameters,
        metrics=metrics,
        usage='from transformers import pipeline\n\nfill = pipeline("fill-mask", model="MODEL")\n'
              'print(fill("Paris is the [MASK] of France."))',
        limitations="A small model trained on a small corpus with a small compute budget: its predictions reflect "
                    "that corpus only, and its masked-LM perplexity is far above that of published BERT checkpoints. "
                    "It is meant as a starting point for fine-tuning on the same domain, not as a general-purpose "
                    "language model.",
    )


def write_finetune_model_card(
    output_dir: str | os.PathLike,
    *,
    task: str,
    pipeline_tag: str,
    languages: list[str],
    base_model: str | None,
    labels: list[str],
    params: int,
    data_description: str,
    hyperparameters: dict,
    metrics: dict,
    command: str,
    usage: str,
    license: str = "apache-2.0",
) -> ModelCard:
    """Write a model card for a fine-tuned classifier or tagger and return it."""
    shown = ", ".join(labels[:20]) + (", ..." if len(labels) > 20 else "")
    return _write_card(
        output_dir,
        card_data=ModelCardData(language=languages or None, license=license, library_name="transformers",
                                tags=["bert", pipeline_tag, "toolkit"], pipeline_tag=pipeline_tag, base_model=base_model),
        intro=f"A {task} model fine-tuned by the toolkit from `{base_model}`: **{params / 1e6:.2f} M parameters**, "
              f"{len(labels)} labels ({shown}).",
        data_description=data_description,
        command=command,
        hyperparameters=hyperparameters,
        metrics=metrics,
        usage=usage,
        limitations="Trained on the data above only; expect lower scores on other domains. Labels are those of the "
                    "training set; anything else cannot be predicted.",
    )
