"""A run killed with ``kill -9`` after a checkpoint, then started again with the same command, ends where an
uninterrupted run ends: the same losses from the checkpoint on and the same final weights.

The killed run is a real process: each training step is slowed (in that process only) so that the kill lands
after the first complete checkpoint and before the end; nothing in the toolkit knows about the test.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import ROOT, tiny_recipe_flags

from recipes import pretrain, train_classifier
from toolkit.demo import write_demo_labelled

SLOW_RUN = """
import json, runpy, sys, time
from transformers import Trainer
step = Trainer.training_step
def slow(self, *args, **kwargs):
    time.sleep(0.4)
    return step(self, *args, **kwargs)
Trainer.training_step = slow
script, flags = json.loads(sys.argv[1])
sys.argv = [script, *flags]
runpy.run_path(script, run_name="__main__")
"""


def kill_after_checkpoint(script: str, flags: list[str], out: Path, step: int) -> None:
    """Run ``script`` in a process, ``kill -9`` it once ``checkpoint-{step}`` is complete (its run record is
    written last), and check that it was indeed cut short."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_RUN, json.dumps([str(ROOT / "recipes" / script), flags])],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    record = out / f"checkpoint-{step}" / "toolkit_run.json"
    deadline = time.monotonic() + 240
    while not record.exists():
        if proc.poll() is not None:
            raise AssertionError(
                f"the run ended before checkpoint-{step}: {proc.stderr.read().decode()[-2000:]}"
            )
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"no checkpoint-{step} after 240 s")
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "model.safetensors").exists()  # killed mid-run: the final model was never written


def losses(out: Path) -> dict[int, float]:
    state = json.loads((out / "trainer_state.json").read_text())
    return {h["step"]: h["loss"] for h in state["log_history"] if "loss" in h}


def test_pretraining_killed_after_a_checkpoint_resumes_to_the_same_model(
    corpus_dir, fixed_tokenizer_dir, tmp_path
):
    # A fixed tokenizer: WordPiece training is not reproduced bit for bit from one process to the next, so
    # two runs that each train one would differ from the first step, killed or not.
    common = ("--max_steps", "12", "--save_strategy", "steps", "--save_steps", "3")
    common += ("--tokenizer_name_or_path", str(fixed_tokenizer_dir))
    full = pretrain.main(tiny_recipe_flags(corpus_dir, tmp_path / "full", *common))

    flags = tiny_recipe_flags(corpus_dir, tmp_path / "killed", *common)
    kill_after_checkpoint("pretrain.py", flags, tmp_path / "killed", step=3)
    again = pretrain.main(flags)  # the same command, run again

    assert again["resumed_from_step"] >= 3
    a, b = losses(tmp_path / "full"), losses(tmp_path / "killed")
    after = [s for s in a if s > again["resumed_from_step"]]
    assert after and set(after) <= set(b)
    torch.testing.assert_close(torch.tensor([b[s] for s in after]), torch.tensor([a[s] for s in after]))
    assert again["eval_loss"] == pytest.approx(full["eval_loss"], rel=1e-5)
    assert again["train_loss"] == pytest.approx(full["train_loss"], rel=1e-5)  # the whole run's mean
    assert (tmp_path / "full" / "model.safetensors").read_bytes() == (
        tmp_path / "killed" / "model.safetensors"
    ).read_bytes()


def test_finetuning_killed_after_a_checkpoint_resumes_to_the_same_scores(tiny_mlm_dir, tmp_path):
    data = write_demo_labelled(tmp_path / "data", n=80)

    def flags(out: Path) -> list[str]:
        return [
            "--model_name_or_path", str(tiny_mlm_dir),
            "--train_file", str(data["topic_train"]),
            "--validation_file", str(data["topic_dev"]),
            "--output_dir", str(out),
            "--max_steps", "10",
            "--per_device_train_batch_size", "8",
            "--learning_rate", "1e-3",
            "--save_strategy", "steps",
            "--save_steps", "3",
            "--logging_steps", "1",
            "--report_to", "none",
            "--disable_tqdm", "true",
            "--seed", "3",
        ]  # fmt: skip

    full = train_classifier.main(flags(tmp_path / "full"))
    kill_after_checkpoint("train_classifier.py", flags(tmp_path / "killed"), tmp_path / "killed", step=3)
    again = train_classifier.main(flags(tmp_path / "killed"))

    a, b = losses(tmp_path / "full" / "checkpoint-10"), losses(tmp_path / "killed" / "checkpoint-10")
    assert sorted(a) == sorted(b) == list(range(1, 11))  # the killed run's history up to its checkpoint, kept
    torch.testing.assert_close(torch.tensor([b[s] for s in a]), torch.tensor([a[s] for s in a]))
    assert again["validation"] == full["validation"]  # accuracy, macro-F1, per class, confusion matrix
    assert again["train"]["train_loss"] == pytest.approx(full["train"]["train_loss"], rel=1e-5)
    assert (tmp_path / "full" / "model.safetensors").read_bytes() == (
        tmp_path / "killed" / "model.safetensors"
    ).read_bytes()
