"""Model cards (``README.md`` in the output directory) generated from what the run knows."""

from __future__ import annotations

import os

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ._secrets import redact


def _save(content: str, output_dir: str | os.PathLike) -> ModelCard:
    card = ModelCard(redact(content))  # a card is pushed to a public place: no token, however it got in
    card.save(os.path.join(output_dir, "README.md"))
    return card


def _table(header: str, rows: dict, *, decimals: int | None = None) -> str:
    """A two-column markdown table; floats as given (``5e-05``, ``0.02``), or rounded to ``decimals`` places
    (measured scores)."""
    body = "\n".join(f"| {k} | {_number(v, decimals)} |" for k, v in rows.items())
    return f"| {header} | value |\n|---|---|\n{body}"


def _number(value, decimals: int | None) -> str:
    if not isinstance(value, float):
        return str(value)
    return f"{value:.{decimals}f}" if decimals is not None else repr(value)


def hub_model_id(name_or_path: str | os.PathLike | None) -> str | None:
    """``name_or_path`` if it names a hub model (``namespace/name``), else ``None``: a local directory is no
    ``base_model`` another user can follow."""
    if not name_or_path or os.path.exists(name_or_path):
        return None
    name = str(name_or_path)
    parts = name.split("/")
    return name if len(parts) <= 2 and all(parts) and not name.startswith((".", "~")) else None


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
    eval_results: list[EvalResult] | None = None,
) -> ModelCard:
    name = os.path.basename(os.path.abspath(output_dir))
    if eval_results:  # the model-index block of the YAML header
        card_data.eval_results = eval_results
        card_data.model_name = name
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

{_table("metric", metrics, decimals=4)}

## How to use

```python
{usage.replace("MODEL", name)}
```

## Limitations

{limitations}
"""
    return _save(content, output_dir)


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
    dataset_name: str = "custom text",
) -> ModelCard:
    """Write a model card for a pretrained masked-LM and return it.

    The YAML header carries ``language``, ``license``, ``library_name``, ``tags``, ``pipeline_tag`` and
    ``base_model``; the body says what the model is, its size, data, tokenizer, hyper-parameters, results,
    how to load it, and its limitations.
    """
    size_line = f"`{preset}` size preset" if preset else f"continued from `{base_model}`"
    cfg = ", ".join(f"{k}={v}" for k, v in config_summary.items())
    return _write_card(
        output_dir,
        card_data=ModelCardData(
            language=languages or None,
            license=license,
            library_name="transformers",
            tags=["bert", "fill-mask", "masked-lm", "toolkit"],
            pipeline_tag="fill-mask",
            base_model=hub_model_id(base_model),
            datasets=[dataset_name],
        ),
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
        eval_results=[
            EvalResult(
                task_type="fill-mask",
                dataset_type="text",
                dataset_name=dataset_name,
                dataset_split="validation",
                metric_type="perplexity",
                metric_name="perplexity",
                metric_value=round(float(metrics["eval_perplexity"]), 4),
            )
        ]
        if "eval_perplexity" in metrics
        else None,
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
    dataset_name: str = "custom",
    eval_metrics: dict[str, float] | None = None,
) -> ModelCard:
    """Write a model card for a fine-tuned classifier or tagger and return it.

    ``eval_metrics`` (e.g. ``{"accuracy": 0.9, "f1": 0.88}``, on the test split if there is one, else
    validation) become the ``model-index`` of the YAML header.
    """
    shown = ", ".join(labels[:20]) + (", ..." if len(labels) > 20 else "")
    return _write_card(
        output_dir,
        card_data=ModelCardData(
            language=languages or None,
            license=license,
            library_name="transformers",
            tags=["bert", pipeline_tag, "toolkit"],
            pipeline_tag=pipeline_tag,
            base_model=hub_model_id(base_model),
            datasets=[dataset_name],
        ),
        intro=f"A {task} model fine-tuned by the toolkit from `{base_model}`: **{params / 1e6:.2f} M parameters**, "
        f"{len(labels)} labels ({shown}).",
        data_description=data_description,
        command=command,
        hyperparameters=hyperparameters,
        metrics=metrics,
        usage=usage,
        limitations="Trained on the data above only; expect lower scores on other domains. Labels are those of the "
        "training set; anything else cannot be predicted.",
        eval_results=[
            EvalResult(
                task_type=pipeline_tag,
                dataset_type=dataset_name,
                dataset_name=dataset_name,
                metric_type=k,
                metric_name=k,
                metric_value=round(float(v), 4),
            )
            for k, v in (eval_metrics or {}).items()
        ]
        or None,
    )


def write_vector_card(
    output_dir: str | os.PathLike,
    vector_file: str | os.PathLike,
    *,
    provenance: dict,
    coverage: dict,
    n_vectors: int,
    dim: int,
    license: str = "apache-2.0",
) -> ModelCard:
    """Write ``README.md`` for a vector set: provenance, coverage report, and how to load it."""
    name = os.path.basename(str(vector_file))
    card_data = ModelCardData(
        license=license,
        library_name="toolkit",
        tags=["embeddings", "word-vectors", "toolkit"],
        base_model=hub_model_id(provenance.get("checkpoint")),
    )
    cov = {k: v for k, v in coverage.items() if not isinstance(v, (dict, list))}
    missing = ", ".join(f"{k!r}×{v}" for k, v in list(coverage.get("missing", {}).items())[:20]) or "none"
    content = f"""---
{card_data.to_yaml()}
---

# {os.path.basename(os.path.abspath(output_dir))}

{n_vectors:,} vectors of dimension {dim} (`{name}`) extracted by the toolkit's vector-extraction utility.

## Provenance

{_table("field", {k: v for k, v in provenance.items()})}

## Coverage

{_table("field", cov)}

Missing items (most frequent first): {missing}.

## How to load

```python
from huggingface_hub import hf_hub_download
from gensim.models import KeyedVectors        # word2vec text / binary files

path = hf_hub_download("REPO_ID", "{name}")
vectors = KeyedVectors.load_word2vec_format(path, binary=path.endswith(".bin"))
# or, any format, with provenance: from toolkit import VectorSet; VectorSet.load(path)
```
"""
    return _save(content, output_dir)
