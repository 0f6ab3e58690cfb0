"""What a user reads before running anything: each recipe's --help (grouped, its own options only, answered
before the heavy imports) and the shipped configs (only what differs from the settings the recipes fill in)."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from transformers import TrainingArguments

from toolkit import ToolkitInputError, load_preset
from toolkit._secrets import install_log_redaction
from toolkit.config import (
    ClassifierArguments,
    CorpusArguments,
    MLMArguments,
    NERArguments,
    RunArguments,
    TokenizerArguments,
    parse_config,
)
from toolkit.finetune import apply_finetuning_settings
from toolkit.pretrain import apply_pretraining_settings
from toolkit.training import prepare_training_args

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "recipes" / "configs"


def recipe_help(recipe: str, flag: str = "--help") -> str:
    out = subprocess.run(
        [sys.executable, str(ROOT / "recipes" / f"{recipe}.py"), flag],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture(scope="module")
def helps() -> dict[str, str]:
    return {r: recipe_help(r) for r in ("pretrain", "train_classifier", "train_ner", "extract_vectors")}


def test_help_is_grouped_short_and_shows_each_recipes_own_options(helps):
    clf, ner, pre = helps["train_classifier"], helps["train_ner"], helps["pretrain"]
    for text in (clf, ner, pre):
        assert text.startswith("usage: ") and "[--config FILE] [options]" in text.splitlines()[0]
        assert "Training (the most used options):" in text and "--help-all" in text
        assert len(text.splitlines()) < 300  # was ~760 lines: every TrainingArguments option in one list
        assert "--optim " not in text and "--fsdp" not in text  # the rest wait for --help-all
        assert "--max-steps" not in text  # each option once, not also in its dash spelling
    # each fine-tuning recipe lists only its own task's options
    assert "--text_column" in clf and "--stride" not in clf and "--tag_column" not in clf
    assert "--stride" in ner and "--tag_column" in ner and "--text_column" not in ner
    assert "Data, model and task:" in clf and "Corpus:" in pre and "Tokenizer:" in pre
    # defaults the recipes fill in are the ones shown, not TrainingArguments' stock ones
    assert "by --preset: tiny 0.002, mini 0.001" in pre
    assert "by the checkpoint's size: tiny 0.001" in clf
    assert "tiny 10, mini 3" in ner  # NER trains a tiny checkpoint for 10 epochs
    # the recipe's docstring heads the help, its continued example lines intact
    assert "--tagging_scheme BIOES --output_dir out/ner" in ner
    assert "--segmenter jieba \\\n" in helps["extract_vectors"]


def test_help_all_lists_every_training_option():
    text = recipe_help("train_classifier", "--help-all")
    assert "--optim " in text and "--gradient_checkpointing" in text
    assert "Training (TrainingArguments):" in text
    assert "--stride" not in text  # still the classifier's own options only


@pytest.mark.parametrize(
    "recipe",
    [
        "pretrain",
        "train_classifier",
        "train_ner",
        "extract_vectors",
        "push_to_hub",
        "export",
        "distill",
        "cut_student",
    ],
)
def test_help_is_answered_before_the_heavy_imports(recipe):
    """``--help`` must not load the Trainer, model classes or ``datasets`` (that took it from ~2 s to ~5 s)."""
    probe = (
        "import runpy, sys\n"
        f"sys.argv = ['{recipe}.py', '--help']\n"
        "try:\n"
        f"    runpy.run_path({str(ROOT / 'recipes' / f'{recipe}.py')!r}, run_name='__main__')\n"
        "except SystemExit as e:\n"
        "    assert e.code in (0, None), e.code\n"
        "heavy = [m for m in ('datasets', 'transformers.trainer', 'transformers.modeling_utils') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout, out.stdout[-300:]


def test_an_option_of_the_other_task_is_refused_not_ignored(tmp_path):
    with pytest.raises(ToolkitInputError, match=r"--stride \(flag\) is an option of train_ner.py only"):
        parse_config([ClassifierArguments, TrainingArguments], ["--stride", "8", "--output_dir", "o"])
    config = tmp_path / "c.yaml"
    config.write_text("text_column: sentence\n", encoding="utf-8")
    with pytest.raises(
        ToolkitInputError, match=r"--text_column \(config file .*c.yaml\) is an option of train_cl"
    ):
        parse_config([NERArguments, TrainingArguments], ["--config", str(config), "--output_dir", "o"])
    (ft,) = parse_config([NERArguments], ["--stride", "8"])  # its own options parse as before
    assert ft.stride == 8


def test_third_party_colour_codes_do_not_reach_the_log():
    """transformers writes its load report with terminal colour codes even into a file or a pipe."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    lib = logging.getLogger("transformers")
    lib.addHandler(handler)
    try:
        install_log_redaction()
        logging.getLogger("transformers.modeling_utils").warning(
            "\x1b[1mBertForSequenceClassification LOAD REPORT\x1b[0m from: %s", "ckpt"
        )
    finally:
        lib.removeHandler(handler)
    assert stream.getvalue() == "BertForSequenceClassification LOAD REPORT from: ckpt\n"


# --- shipped configs state only what differs ------------------------------------------------------------

# Keys kept although removing them changes nothing in the parsed settings here, and why.
KEPT_ON_PURPOSE = {
    # TrainingArguments derives its default from the log level at parse time; the demo wants bars either way
    "disable_tqdm",
    # equal to the stock 500 only because eval_steps defaults to logging_steps before the recipe scales it
    "eval_steps",
}


def resolve(kind: str, values: dict, checkpoint: Path) -> dict:
    """Every setting a recipe would run with, after the preset's or checkpoint size's settings are applied."""
    argv = []
    for key, value in values.items():
        argv.append(f"--{key}")
        argv += [str(v) for v in value] if isinstance(value, list) else [str(value)]
    if kind == "pretrain":
        types = [CorpusArguments, TokenizerArguments, MLMArguments, RunArguments, TrainingArguments]
        *parts, args = parse_config(types, argv)
        apply_pretraining_settings(parts[2], args)
        prepare_training_args(args)
    else:
        ft_type, task = (
            (ClassifierArguments, "classification") if kind == "classify" else (NERArguments, "ner")
        )
        *parts, args = parse_config(
            [ft_type, RunArguments, TrainingArguments], argv + ["--model_name_or_path", str(checkpoint)]
        )
        apply_finetuning_settings(parts[0], args, task=task)
        prepare_training_args(args, group_by_length=parts[0].group_by_length)
    settings = {k: v for part in parts for k, v in dataclasses.asdict(part).items()}
    return settings | json.loads(args.to_json_string())


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*/*.yaml")), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_each_shipped_config_states_only_what_differs(path, tmp_path):
    """A key whose removal leaves every setting unchanged repeats a preset's default: it is left out, so that
    the config says what is particular to its data and budget (and a preset change reaches it)."""
    checkpoint = tmp_path / "tiny"  # the fine-tuning configs start from tiny checkpoints
    load_preset("tiny").save_pretrained(checkpoint)
    values = yaml.safe_load(path.read_text(encoding="utf-8"))
    values.pop("model_name_or_path", None)
    kind = path.parent.name
    full = resolve(kind, values, checkpoint)
    redundant = [
        key
        for key in values
        if key not in KEPT_ON_PURPOSE
        and resolve(kind, {k: v for k, v in values.items() if k != key}, checkpoint) == full
    ]
    assert not redundant, f"{path.name} repeats what the recipe would use anyway: {redundant}"
