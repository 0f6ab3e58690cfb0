#!/usr/bin/env python
"""The results table: each preset pretrained on real text, then fine-tuned, against the same architecture
from random initialisation with the same fine-tuning budget. One command reproduces every row.

    python -m benchmarks.results                                   # tiny + mini, en + zh (hours on a CPU)
    python -m benchmarks.results --presets tiny --languages zh --pretrain_steps 1500 --finetune_steps 900
    python -m benchmarks.results --smoke --output_dir /tmp/r       # minutes: data the project writes, a few steps
    python -m benchmarks.results --presets tiny --languages en --seeds 42 43 --resume   # add a seed to a finished row
    python -m benchmarks.results --presets tiny --languages zh --learning_rates 3e-4 1e-3   # per-row rate, chosen on dev
    python -m benchmarks.results --presets tiny --languages zh --learning_rates 3e-4 1e-3 msra=1e-3,3e-3   # per task
    python -m benchmarks.results --merge ROW.json ROW.json --output_dir benchmarks/results   # the shipped table

Per language and preset: (1) pretrain with recipes/configs/pretrain/{preset}_{lang}.yaml (budget: --pretrain_steps);
(2) save a random-init twin (same config, same tokenizer); (3) fine-tune both on the language's tasks with the
shipped configs (en: sst2 dev accuracy, conll2003 test entity F1; zh: chnsenticorp test accuracy, msra test
entity F1), same budget (--finetune_steps, or the configs' epochs), once per --seeds seed; with --learning_rates,
each row fine-tunes at every rate and keeps, per seed, the run with the best validation score (tasks with a
validation split of their own, a file or a held-out part of the training file: selecting on the split that is
reported would flatter both rows); TASK=RATE,RATE gives one task its own grid. Writes
<output_dir>/results.json (every figure with the exact command that produced it), TABLE.md (the table, a
generated file) and results_curves.png (validation loss against tokens seen). --resume reuses the stages an earlier results.json in <output_dir> records with the
same command and config file (and, for fine-tuning, the same starting checkpoint); every finished stage is also
recorded at once in <output_dir>/progress.json, so that --resume after a crash or a kill in the middle of a row
loses only the stage that was running; a pretraining killed midway goes on from its last checkpoint (its time
is then estimated from the last call's throughput, marked ≈ in the table).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import shlex
import statistics
import time
from pathlib import Path

from benchmarks._common import RECIPES
from recipes import pretrain, train_classifier, train_ner
from toolkit.config import options_to_argv
from toolkit.presets import finetune_settings

# Each recipe is called as ``recipe.main(**options)``; the flags it stands for are recorded.

CONFIGS = RECIPES / "configs"
TASKS = {
    # sst2.yaml scores GLUE dev as its test split (rates are chosen on 5% held out of training).
    "en": [("sst2", "classify", "test", "accuracy"), ("conll2003", "ner", "test", "overall_f1")],
    "zh": [("chnsenticorp", "classify", "test", "accuracy"), ("msra", "ner", "test", "overall_f1")],
}
# What the table calls a reported split where the file scored is not named after it.
SPLIT_NAMES = {("sst2", "test"): "dev"}
PROGRESS = "progress.json"
TABLE = "TABLE.md"
CURVES = "results_curves.png"


def _cmd(script: str, options: dict) -> str:
    """The command line ``recipe.main(**options)`` stands for (what results.json records and --resume
    matches)."""
    return " ".join(shlex.quote(x) for x in ["python", f"recipes/{script}.py", *options_to_argv(options)])


def smoke_data(directory: Path) -> dict:
    """Small stand-ins for the real sets, written by the project (for --smoke and the tests)."""
    from toolkit.demo import write_demo_corpus, write_demo_labelled

    corpus = write_demo_corpus(directory / "corpus", n_lines=300)
    labelled = write_demo_labelled(directory / "labelled", n=80)
    return {"corpus": corpus, "labelled": labelled}


def pretrain_options(preset: str, lang: str, out: Path, opts, smoke: dict | None) -> dict:
    """``recipes/pretrain.py``'s options for one row, in the order their flags are recorded (values whose
    flags read differently from ``str(value)`` are given as those strings: ``"true"``)."""
    if smoke:
        options = {
            "train_files": str(smoke["corpus"]["train"]),
            "validation_files": str(smoke["corpus"]["validation"]),
            "preset": preset,
            "config_overrides": "hidden_size=32,intermediate_size=64,num_attention_heads=2",
            "vocab_size": 400,
            "block_size": 32,
            "per_device_train_batch_size": 8,
            "eval_strategy": "steps",
            "eval_steps": max(1, opts.pretrain_steps // 2),
            "logging_steps": 1,
            "save_strategy": "no",
            "report_to": "none",
            "languages": [lang],
        }
    else:
        options = {
            "config": os.path.relpath(CONFIGS / "pretrain" / f"{preset}_{lang}.yaml"),
            "save_strategy": "no",
            "report_to": "none",
        }
    options.update(output_dir=str(out), disable_tqdm="true", max_steps=opts.pretrain_steps or None)
    return options


def finetune_options(
    task: str,
    kind: str,
    model: Path,
    out: Path,
    opts,
    smoke: dict | None,
    seed: int = 42,
    learning_rate: float | None = None,
) -> dict:
    """A fine-tuning recipe's options, in the order their flags are recorded; the learning rate is given as
    ``f"{rate:g}"``, the figure the recorded command shows (and the run trains at)."""
    if smoke:
        lab = smoke["labelled"]
        prefix = "topic" if kind == "classify" else "ner"
        options = {
            "train_file": str(lab[f"{prefix}_train"]),
            "validation_file": str(lab[f"{prefix}_dev"]),
            "test_file": str(lab[f"{prefix}_test"]),
            "per_device_train_batch_size": 8,
            "report_to": "none",
            "save_strategy": "no",
            "max_length": 32,
        }
    else:
        options = {"config": os.path.relpath(CONFIGS / kind / f"{task}.yaml")}
    options.update(
        model_name_or_path=str(model),
        output_dir=str(out),
        disable_tqdm="true",
        seed=seed,
        max_steps=opts.finetune_steps or None,
        learning_rate=None if learning_rate is None else f"{learning_rate:g}",
    )
    return options


def task_config(task: str, kind: str) -> dict:
    import yaml

    return yaml.safe_load((CONFIGS / kind / f"{task}.yaml").read_text(encoding="utf-8"))


def config_rate(config: dict | None, preset: str, kind: str) -> float:
    """The rate a task's run trains at without an override: its config's (YAML reads ``1e-3``, without a dot,
    as a string), else the one the recipe takes for a checkpoint of ``preset``'s size. ``config`` is None for
    --smoke, whose fine-tuning runs read no config."""
    rate = (config or {}).get("learning_rate")
    task = "ner" if kind == "ner" else "classification"
    return finetune_settings(preset, task)["learning_rate"] if rate is None else float(rate)


def parse_rate_grid(items: list[str] | None) -> tuple[list[float], dict[str, list[float]]]:
    """``--learning_rates`` items: plain rates form the grid of every task, ``TASK=RATE,RATE`` replaces
    it for one task (``3e-4 1e-3 msra=1e-3,3e-3``)."""
    default: list[float] = []
    per_task: dict[str, list[float]] = {}
    known = {task for tasks in TASKS.values() for task, *_ in tasks}
    for item in map(str, items or []):
        task, _, rates = item.rpartition("=")
        if task and task not in known:
            raise SystemExit(f"--learning_rates {item}: unknown task {task!r} (known: {sorted(known)})")
        try:
            values = [float(rate) for rate in rates.split(",")]
        except ValueError:
            values = []
        if not values or not all(math.isfinite(v) and v > 0 for v in values) or item.startswith("="):
            raise SystemExit(f"--learning_rates {item}: expected RATE or TASK=RATE[,RATE...], rates > 0")
        if task:
            per_task[task] = values
        else:
            default.extend(values)
    return default, per_task


def learning_rate_grid(task: str, split: str, config: dict | None, opts, own: float) -> list[float | None]:
    """The rates to try on ``task``; ``None`` stands for its own rate ``own`` (see :func:`config_rate`: run
    without an override, so its command matches a run made without a grid and ``--resume`` can reuse it)."""
    default, per_task = parse_rate_grid(opts.learning_rates)
    grid = per_task.get(task, default)
    if not grid:
        return [None]
    if split == "validation":
        print(f"{task}: the reported split is the validation split; using the config's learning rate only")
        return [None]
    if config is not None and not (config.get("validation_file") or config.get("validation_split")):
        print(f"{task}: no validation split to choose a learning rate on; using the config's rate only")
        return [None]
    rates = [None if abs(rate - own) <= 1e-12 * own else rate for rate in grid]
    return list(dict.fromkeys(rates))  # a rate given twice (or as the config's) runs once


def validation_score(run: dict, metric: str) -> float | None:
    """A fine-tuning run's validation score: recorded, or read back from the run's metrics.json (runs
    recorded before the score was)."""
    if "validation_score" in run:
        return run["validation_score"]
    argv = shlex.split(run["command"])
    path = Path(argv[argv.index("--output_dir") + 1]) / "metrics.json"
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("validation", {}).get(metric)
    except (OSError, ValueError):
        return None


def finetune_or_reuse(
    recipe,
    options: dict,
    *,
    label: str,
    seed: int,
    split: str,
    metric: str,
    done: dict,
    start_sha256: str | None,
    progress: Path | None = None,
) -> dict:
    """One fine-tuning run's record (``recipe.main(**options)``): reused from ``done`` (keyed by command, config digest and
    ``start_sha256``, the :func:`start_digest` of the checkpoint it starts from) or run now (and then added
    to the ``progress`` file, see :func:`record_progress`)."""
    # The script's name (the module may be ``recipes.train_ner`` or ``train_ner``).
    key = (_cmd(Path(recipe.__file__).stem, options), config_digest(options), start_sha256)
    decoding = ner_decoding(recipe, options)
    if key in done and done[key].get("decoding") == decoding:
        print(f"--resume: reusing {key[0]}", flush=True)
        return dict(done[key])
    begin = time.time()
    result = recipe.main(**options)
    run = {
        "label": label,
        "seed": seed,
        "score": result[split][metric],
        "seconds": round(time.time() - begin, 1),
        "command": key[0],
        "config_sha256": key[1],
        "start_sha256": key[2],
    }
    if decoding is not None:
        run["decoding"] = decoding
    if "validation" in result:
        run["validation_score"] = result["validation"][metric]
    # The run's mean training loss: tells underfitting from a generalisation gap.
    if "train_loss" in result.get("train", {}):
        run["train_loss"] = round(result["train"]["train_loss"], 4)
    if progress is not None:
        record_progress(progress, "finetune", run)
    return run


def ner_decoding(recipe, options: dict) -> str | None:
    """How an NER run decodes its tags (None for classification): part of what ``--resume`` matches, since
    the default changed (runs recorded without it were decoded tag by tag, and are rerun)."""
    if recipe is not train_ner:
        return None
    from transformers import TrainingArguments

    from toolkit.config import FinetuneArguments, parse_config
    from toolkit.ner import DECODINGS

    ft, _ = parse_config([FinetuneArguments, TrainingArguments], options_to_argv(options))
    return DECODINGS[ft.constrained_decoding]


def record_progress(path: Path, stage: str, record: dict) -> None:
    """Add one finished stage (``stage``: ``"pretrain"`` or ``"finetune"``) to the progress file at
    ``path`` at once: ``results.json`` is written only when a whole row is done (hours), and
    :func:`earlier_runs` reads both. Written to a temporary file first, so a kill cannot leave half a file."""
    progress = read_progress(path)
    progress[stage].append(record)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(progress, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def read_progress(path: Path) -> dict:
    """The progress file's records, ``{"pretrain": [...], "finetune": [...]}`` (empty when there is none)."""
    if not path.is_file():
        return {"pretrain": [], "finetune": []}
    try:
        progress = json.loads(path.read_text(encoding="utf-8"))
        return {stage: list(progress[stage]) for stage in ("pretrain", "finetune")}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise SystemExit(f"cannot read {path}: {err} (delete it to start the row afresh)") from err


def mark_selected(candidates: list[dict], task: str, metric: str) -> list[dict]:
    """Mark the run with the best validation score among one row's runs at different rates (a tie keeps
    the earlier rate); a single run is selected as it is."""
    if len(candidates) == 1:
        candidates[0]["selected"] = True
        return candidates
    dev = [validation_score(run, metric) for run in candidates]
    if None in dev:
        raise SystemExit(f"{task}: a run has no validation {metric} to choose a rate on")
    best = max(range(len(candidates)), key=dev.__getitem__)
    for i, (run, score) in enumerate(zip(candidates, dev, strict=True)):
        run["validation_score"], run["selected"] = score, i == best
    return candidates


def random_twin(pretrained: Path, out: Path) -> Path:
    """Same architecture and tokenizer as ``pretrained``, freshly initialised — the same way its pretraining
    started, so a sinusoidal position start (``config.position_init``) is given to both rows."""
    import torch
    from transformers import AutoConfig, AutoTokenizer, BertForMaskedLM

    from toolkit import init_position_embeddings

    torch.manual_seed(0)
    config = AutoConfig.from_pretrained(pretrained)
    model = BertForMaskedLM(config)
    init_position_embeddings(
        model, getattr(config, "position_init", "random"), getattr(config, "position_init_rms", None)
    )
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(pretrained).save_pretrained(out)
    return out


def _minutes(task: dict) -> str:
    seconds = [task.get(f"{label}_seconds") for label in ("pretrained", "random_init")]
    if None in seconds:
        return "n/a"
    return f"{max(seconds) / 60:.0f} min" if max(seconds) >= 60 else f"{max(seconds):.0f} s"


def _margin(task: dict) -> str:
    """``+1.2 pt``, or with several seeds the mean and the per-seed range: ``+1.2 pt (+0.4 … +2.0, 2 seeds)``."""
    text = f"{task['margin'] * 100:+.1f} pt"
    per_seed = task.get("margins_per_seed") or []
    if len(per_seed) > 1:
        text += f" ({min(per_seed) * 100:+.1f} … {max(per_seed) * 100:+.1f}, {len(per_seed)} seeds)"
    return text


def _rates(task: dict, label: str) -> str:
    """`` (lr 1e-3)`` after a score when a learning-rate grid chose among several rates, else nothing."""
    if len({r.get("learning_rate") for r in task.get("runs", []) if r["label"] == label}) < 2:
        return ""
    chosen = sorted(set(task[f"{label}_learning_rates"]))
    return " (lr " + " / ".join(f"{rate:g}".replace("e-0", "e-") for rate in chosen) + ")"


def hardware() -> str:
    """CPU model and core count, e.g. ``Intel(R) Xeon(R) ... (x86_64), 2 cores``."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = f"{line.split(':', 1)[1].strip()} ({platform.machine()})"
                break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores"


def render_table(rows: list[dict]) -> str:
    lines = [
        "| language | preset | params | pretraining tokens | pretraining time | tokens/s | val. MLM loss (ppl) | "
        "task | fine-tuning time (median run) | pretrained | random init | margin |",
        "|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        p = r["pretrain"]
        for t in r["tasks"]:
            lines.append(
                f"| {r['language']} | {r['preset']} | {p['params'] / 1e6:.1f} M | {p['tokens_seen'] / 1e6:.1f} M | "
                f"{'≈' if p.get('wall_seconds_estimated') else ''}{p['wall_seconds'] / 60:.0f} min | "
                f"{p['tokens_per_second']:,.0f} | {p['eval_loss']:.2f} "
                f"({p['eval_perplexity']:.0f}) | {t['task']} {SPLIT_NAMES.get((t['task'], t['split']), t['split'])} "
                f"{t['metric']} | {_minutes(t)} | "
                f"{t['pretrained']:.2%}{_rates(t, 'pretrained')} | "
                f"{t['random_init']:.2%}{_rates(t, 'random_init')} | {_margin(t)} |"
            )
    return "\n".join(lines)


def plot_curves(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for r in rows:
        curve = r["pretrain"]["curve"]
        if curve:
            ax.plot(
                [c[0] / 1e6 for c in curve],
                [c[1] for c in curve],
                marker="o",
                label=f"{r['preset']} {r['language']}",
            )
    ax.set_xlabel("tokens seen (millions)")
    ax.set_ylabel("validation MLM loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def config_digest(options: dict) -> str | None:
    """SHA-256 (first 16 hex digits) of the YAML a recipe's ``options`` read with ``config`` (``--config``
    in the recorded command): the command string alone does not show an edited config file."""
    if options.get("config") is None:
        return None
    return file_digest(Path(options["config"]))


START_FILES = ("model.safetensors", "config.json", "tokenizer.json")


def start_digest(start: Path) -> str | None:
    """SHA-256 (first 16 hex digits) of the checkpoint a fine-tuning command starts from — its weights,
    config and tokenizer: the command names a directory, and a pretraining rerun writes a new model (and a
    retrained tokenizer, which the WordPiece trainer does not reproduce bit for bit) under the same name.
    None when the directory holds none of them."""
    files = [start / name for name in START_FILES if (start / name).is_file()]
    return file_digest(*files) if files else None


def file_digest(*paths: Path) -> str:
    """SHA-256 of the files' contents, one after another, first 16 hex digits (read in 1 MiB chunks)."""
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def earlier_runs(out: Path) -> dict:
    """What an earlier run in ``out`` finished (its ``results.json``, and its ``progress.json`` for rows
    that did not), for ``--resume``.

    Returns ``{"pretrain": {key: pretrain record}, "finetune": {key: run record}}`` keyed by
    ``(command, config digest)`` for pretraining and ``(command, config digest, start-checkpoint digest)``
    for fine-tuning: a stage is reused only if its command, its config file and (for fine-tuning) the
    checkpoint it starts from are unchanged.
    """
    pretrainings, runs = [], []
    path = out / "results.json"
    if path.is_file():
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))["rows"]
        except (OSError, ValueError, KeyError) as err:
            raise SystemExit(f"--resume: cannot read {path}: {err}") from err
        pretrainings = [row["pretrain"] for row in rows]
        runs = [run for row in rows for t in row["tasks"] for run in t.get("runs", [])]
    progress = read_progress(out / PROGRESS)  # later than results.json: its records win
    found: dict = {"pretrain": {}, "finetune": {}}
    for p in pretrainings + progress["pretrain"]:
        found["pretrain"][p["command"], p.get("config_sha256")] = p
    for run in runs + progress["finetune"]:
        found["finetune"][run["command"], run.get("config_sha256"), run.get("start_sha256")] = run
    return found


def run_row(preset: str, lang: str, out: Path, opts, smoke: dict | None, done: dict | None = None) -> dict:
    """Pretrain one preset on one language, build its random-init twin and fine-tune both on every task
    with every seed. ``done`` (from :func:`earlier_runs`) names stages to reuse instead of rerunning."""
    done = done or {"pretrain": {}, "finetune": {}}
    # 1. Pretrain (or reuse a finished pretraining with the same command whose model is still there).
    model_dir = out / f"pretrain_{preset}_{lang}"
    options = pretrain_options(preset, lang, model_dir, opts, smoke)
    command = _cmd("pretrain", options)
    key = (command, config_digest(options))
    if key in done["pretrain"] and (model_dir / "config.json").is_file():
        print(f"--resume: reusing the finished pretraining in {model_dir}", flush=True)
        pretrain_record = done["pretrain"][key]
    else:
        start = time.time()
        metrics = pretrain.main(**options)
        wall = time.time() - start
        state = json.loads((model_dir / "trainer_state.json").read_text())
        saved = json.loads((model_dir / "metrics.json").read_text())
        # The final evaluation repeats the last periodic one: keep each point once.
        points = dict.fromkeys(
            (h["num_input_tokens_seen"], h["eval_loss"])
            for h in state["log_history"]
            if "eval_loss" in h and "num_input_tokens_seen" in h
        )
        curve = [list(point) for point in points]  # as JSON stores it
        pretrain_record = {
            "command": command,
            "config_sha256": key[1],
            "params": saved["model"]["params"],
            "tokens_seen": metrics["train_tokens_seen"],
            **pretrain_timing(metrics, wall),
            "eval_loss": metrics["eval_loss"],
            "eval_perplexity": metrics["eval_perplexity"],
            "curve": curve,
        }
        record_progress(out / PROGRESS, "pretrain", pretrain_record)
    row = {
        "language": lang,
        "preset": preset,
        "hardware": hardware(),
        "command": row_command(preset, lang, out, opts),
        "pretrain": pretrain_record,
        "tasks": [],
    }
    # 2. Random-init twin (deterministic: rebuilding it gives the same weights).
    twin = random_twin(model_dir, out / f"random_{preset}_{lang}")
    # Hashed once per row: fine-tuning never writes to the two starting checkpoints.
    start_sha256 = {"pretrained": start_digest(model_dir), "random_init": start_digest(twin)}
    # 3. Fine-tune both with the same budget, once per seed.
    for task, kind, split, metric in TASKS[lang]:
        recipe = train_classifier if kind == "classify" else train_ner
        config = None if smoke else task_config(task, kind)
        own_rate = config_rate(config, preset, kind)
        rates = learning_rate_grid(task, split, config, opts, own_rate)
        runs = []
        for seed in opts.seeds:
            for label, start_from in (("pretrained", model_dir), ("random_init", twin)):
                candidates = []
                base = f"{kind}_{task}_{preset}_{lang}_{label}" + ("" if seed == 42 else f"_seed{seed}")
                for rate in rates:
                    name = base if rate is None else f"{base}_lr{rate:g}"
                    ft_options = finetune_options(task, kind, start_from, out / name, opts, smoke, seed, rate)
                    run = finetune_or_reuse(
                        recipe,
                        ft_options,
                        label=label,
                        seed=seed,
                        split=split,
                        metric=metric,
                        done=done["finetune"],
                        start_sha256=start_sha256[label],
                        progress=out / PROGRESS,
                    )
                    run["learning_rate"] = own_rate if rate is None else rate
                    candidates.append(run)
                runs.extend(mark_selected(candidates, task, metric))
        scores = {}
        for label in ("pretrained", "random_init"):
            mine = [r for r in runs if r["label"] == label and r["selected"]]
            scores[label] = statistics.fmean(r["score"] for r in mine)
            # Median over all of the row's runs (every rate and seed has the same budget): one slowed run
            # (another job on the machine) does not set the column.
            spent = [r["seconds"] for r in runs if r["label"] == label]
            scores[f"{label}_seconds"] = round(statistics.median(spent), 1)
            scores[f"{label}_command"] = mine[0]["command"]
            scores[f"{label}_learning_rates"] = [r["learning_rate"] for r in mine]
        by_seed = {(r["label"], r["seed"]): r["score"] for r in runs if r["selected"]}
        margins = [by_seed["pretrained", s] - by_seed["random_init", s] for s in opts.seeds]
        row["tasks"].append(
            {
                "task": task,
                "split": split,
                "metric": metric,
                **scores,
                "seeds": list(opts.seeds),
                "margin": scores["pretrained"] - scores["random_init"],
                "margins_per_seed": margins,
                "runs": runs,
            }
        )
    return row


def pretrain_timing(metrics: dict, wall: float) -> dict:
    """Pretraining throughput and time from ``recipes/pretrain.py``'s metrics and this call's wall time.

    A pretraining stopped and resumed (rerunning the same command goes on from its last checkpoint) is
    timed by its last call only: throughput is that call's tokens over its ``train_runtime``, and the time
    of the whole run is estimated at that rate (``wall_seconds_estimated``), plus this call's start-up.
    """
    this_run = metrics.get("train_tokens_this_run", metrics["train_tokens_seen"])
    rate = this_run / metrics["train_runtime"]
    timing = {"wall_seconds": round(wall, 1), "tokens_per_second": round(rate, 1)}
    if "resumed_from_step" in metrics:
        setup = max(0.0, wall - metrics["train_runtime"])
        timing["wall_seconds"] = round(metrics["train_tokens_seen"] / rate + setup, 1)
        timing["wall_seconds_estimated"] = True
        timing["resumed_from_step"] = metrics["resumed_from_step"]
    return timing


def row_command(preset: str, lang: str, out: Path, opts) -> str:
    """The one command that reproduces a row."""
    parts = ["python", "-m", "benchmarks.results", "--presets", preset, "--languages", lang]
    for flag in ("pretrain_steps", "finetune_steps"):
        if getattr(opts, flag):
            parts += [f"--{flag}", str(getattr(opts, flag))]
    if list(opts.seeds) != [42]:
        parts += ["--seeds", *map(str, opts.seeds)]
    if opts.learning_rates:
        default, per_task = parse_rate_grid(opts.learning_rates)
        parts += ["--learning_rates", *(f"{rate:g}" for rate in default)]
        parts += [f"{task}=" + ",".join(f"{rate:g}" for rate in rates) for task, rates in per_task.items()]
    if opts.smoke:
        parts.append("--smoke")
    return " ".join(shlex.quote(x) for x in [*parts, "--output_dir", str(out)])


def write_outputs(rows: list[dict], out: Path) -> dict:
    """results.json, TABLE.md and results_curves.png in ``out``, from ``rows``."""
    table = render_table(rows)
    plot_curves(rows, out / CURVES)
    hardware_seen = sorted({r.get("hardware", "unknown") for r in rows})
    result = {"hardware": "; ".join(hardware_seen), "rows": rows, "table": table}
    (out / "results.json").write_text(
        json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    # A file of its own, regenerated on every run: nothing else is rewritten.
    header = "<!-- generated by python -m benchmarks.results; each row's command is in results.json -->"
    (out / TABLE).write_text(f"{header}\n\n{table}\n", encoding="utf-8")
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--presets", nargs="+", default=["tiny", "mini"])
    parser.add_argument("--languages", nargs="+", default=["en", "zh"], choices=["en", "zh"])
    parser.add_argument("--pretrain_steps", type=int, default=None, help="override the configs' max_steps")
    parser.add_argument("--finetune_steps", type=int, default=None, help="override the configs' epochs")
    parser.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=[42],
        help="fine-tuning seeds: each task is fine-tuned once per seed (both rows); the table shows the means",
    )
    parser.add_argument(
        "--learning_rates",
        nargs="+",
        default=None,
        metavar="RATE | TASK=RATE,RATE",
        help="fine-tune each row at every rate and keep, per row and seed, the run with the best validation "
        "score (tasks with a validation split, a file or a held-out part of training; the others use their "
        "config's rate); TASK=RATE,RATE gives one task a grid of its own: 3e-4 1e-3 msra=1e-3,3e-3",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="reuse the pretraining and fine-tuning runs that output_dir's results.json records with the "
        "same command and an unchanged config file, and for fine-tuning the same starting checkpoint "
        "(weights, config, tokenizer; runs recorded without that digest are rerun) (e.g. add a seed to a "
        "finished row, or go on after a crash: every finished stage is also in output_dir's progress.json; "
        "without --resume that file is started afresh)",
    )
    parser.add_argument("--output_dir", default="outputs/results")
    parser.add_argument("--smoke", action="store_true", help="project-written data, tiny models, a few steps")
    parser.add_argument(
        "--merge",
        nargs="+",
        default=None,
        metavar="RESULTS_JSON",
        help="train nothing: combine the rows of earlier results.json files (one per row, run separately)",
    )
    opts = parser.parse_args(argv)
    parse_rate_grid(opts.learning_rates)  # a malformed grid fails now, not after hours of pretraining
    out = Path(opts.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    if opts.merge:
        for path in opts.merge:
            try:
                rows.extend(json.loads(Path(path).read_text(encoding="utf-8"))["rows"])
            except (OSError, ValueError, KeyError) as err:
                raise SystemExit(f"--merge: cannot read rows from {path}: {err}") from err
        result = write_outputs(rows, out)
    else:
        if opts.smoke:
            opts.pretrain_steps = opts.pretrain_steps or 4
            opts.finetune_steps = opts.finetune_steps or 3
        smoke = smoke_data(out / "smoke_data") if opts.smoke else None
        done = earlier_runs(out) if opts.resume else None
        if not opts.resume:
            (out / PROGRESS).unlink(missing_ok=True)  # a fresh run: nothing earlier is reused
        for lang in opts.languages:
            for preset in opts.presets:
                rows.append(run_row(preset, lang, out, opts, smoke, done))
                result = write_outputs(rows, out)  # after every row: a crash later keeps the finished ones
    print(result["table"])
    return result


if __name__ == "__main__":
    main()
