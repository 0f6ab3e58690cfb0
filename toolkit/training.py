"""Training plumbing shared by the recipes: Trainer with throughput/ETA logs, resume, metrics, plots."""

from __future__ import annotations

import ctypes
import json
import logging
import math
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import SequentialSampler
from transformers import Trainer, TrainingArguments
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint, has_length

from ._errors import HubError, ToolkitInputError
from ._presets import DEFAULT_SAVE_TOTAL_LIMIT
from ._secrets import install_log_redaction, redact, redact_argv
from .config import options_to_argv
from .rundir import read_run_record, write_run_record

__all__ = [
    "ToolkitTrainer",
    "check_precision",
    "format_duration",
    "perplexity",
    "plot_loss_curve",
    "prepare_training_args",
    "print_run_summary",
    "reuse_freed_memory",
    "run_cli",
    "set_threads",
    "setup_cli_logging",
    "setup_logging",
    "training_command",
]

logger = logging.getLogger(__name__)


def format_duration(seconds: float) -> str:
    """``3725`` → ``"1:02:05"``."""
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class ToolkitTrainer(Trainer):
    """``Trainer`` that adds interval throughput (tokens/s, samples/s) and an ETA to every training log.

    The values go wherever logs go: the progress bar, ``trainer_state.json``, TensorBoard (``report_to``).
    """

    def __init__(self, *args, report_perplexity: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self._last_log: tuple[float, int, int] | None = None
        self._timed = (0.0, 0)  # seconds and steps of the training intervals timed so far
        self.report_perplexity = report_perplexity  # exp(eval_loss) means something for language models only
        self._loss_sum_before = 0.0  # summed step losses of the run's earlier segments (resumed runs)
        self._resumed = False

    def train(self, resume_from_checkpoint: str | bool | None = None, **kwargs):
        """``Trainer.train``; after a resume, ``train_loss`` is the whole run's mean training loss (Trainer's
        covers only this call's steps, which is kept as ``train_loss_this_run``)."""
        if resume_from_checkpoint is True:
            resume_from_checkpoint = get_last_checkpoint(self.args.output_dir)
        self._resumed = bool(resume_from_checkpoint)
        self._loss_sum_before = _loss_sum_at(resume_from_checkpoint) if resume_from_checkpoint else 0.0
        output = super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)
        # log() already corrected the final metrics (the same dict): the returned loss follows them
        return output._replace(training_loss=output.metrics.get("train_loss", output.training_loss))

    def _save_checkpoint(self, model, trial) -> None:
        # Each checkpoint carries the run's definition (which run it belongs to) and the summed loss of every
        # step so far, so a resumed run can report the whole run's mean loss.
        super()._save_checkpoint(model, trial)
        if not self.args.should_save:
            return
        folder = os.path.join(
            self._get_output_dir(trial=trial), f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        )
        record = read_run_record(self.args.output_dir) or {}
        record["train_loss_sum"] = self._loss_sum_before + self._total_loss_scalar + self._tr_loss.item()
        write_run_record(folder, record)

    def _get_eval_sampler(self, eval_dataset):
        # transformers 5 applies train_sampling_strategy="group_by_length" to evaluation and prediction too,
        # which returns predictions in a shuffled order. The recipes map predictions back to examples (and
        # NER windows back to sentences) by position, so evaluation always runs in dataset order.
        if eval_dataset is None or not has_length(eval_dataset):
            return None
        return SequentialSampler(eval_dataset) if self.args.world_size <= 1 else None

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "train_loss" in logs and self._resumed and self.state.global_step > 0:
            # The final metrics of a resumed run: the whole run's mean loss, in trainer_state.json, TensorBoard
            # and the returned metrics alike (Trainer's covers only this call's steps).
            logs["train_loss_this_run"] = logs["train_loss"]
            logs["train_loss"] = (self._loss_sum_before + self._total_loss_scalar) / self.state.global_step
        if "loss" in logs:
            now, step, tokens = time.perf_counter(), self.state.global_step, self.state.num_input_tokens_seen
            if self._last_log is not None and step > self._last_log[1]:
                t0, s0, k0 = self._last_log
                elapsed = now - t0
                if tokens > k0:
                    logs["tokens_per_second"] = round((tokens - k0) / elapsed, 1)
                # The ETA uses the mean pace of every interval timed so far (evaluations excluded): one slow or
                # fast interval (a busy neighbour, warm-up) does not swing it.
                self._timed = (self._timed[0] + elapsed, self._timed[1] + step - s0)
                remaining = max(0, self.state.max_steps - step) * self._timed[0] / self._timed[1]
                logs["eta_seconds"] = round(remaining, 1)
                logger.info(
                    "step %d/%d | loss %.4f | %s tokens/s | ETA %s",
                    step,
                    self.state.max_steps,
                    logs["loss"],
                    f"{logs.get('tokens_per_second', float('nan')):,.0f}",
                    format_duration(remaining),
                )
            self._last_log = (now, step, tokens)
        elif self._last_log is not None and any(k.startswith("eval_") for k in logs):
            # Evaluation time is not training throughput: restart the interval after it, from this step.
            self._last_log = (time.perf_counter(), self.state.global_step, self.state.num_input_tokens_seen)
        if self.report_perplexity and "eval_loss" in logs and "eval_perplexity" not in logs:
            logs["eval_perplexity"] = perplexity(logs["eval_loss"])
        super().log(logs, start_time)


def perplexity(loss: float) -> float:
    """``exp(loss)``, capped instead of overflowing."""
    return math.exp(loss) if loss < 700 else float("inf")


def _loss_sum_at(checkpoint: str | os.PathLike) -> float:
    """Summed training loss of every step up to ``checkpoint``: recorded by :class:`ToolkitTrainer`, or, for a
    checkpoint without the record, rebuilt from its logged interval means."""
    record = read_run_record(checkpoint) or {}
    if "train_loss_sum" in record:
        return float(record["train_loss_sum"])
    state_file = Path(checkpoint) / "trainer_state.json"
    if not state_file.is_file():
        return 0.0
    total, last_step = 0.0, 0
    for entry in json.loads(state_file.read_text(encoding="utf-8")).get("log_history", []):
        if "loss" in entry and "step" in entry:
            total += entry["loss"] * (entry["step"] - last_step)
            last_step = entry["step"]
    return total


def plot_loss_curve(log_history: list[dict], path: str | os.PathLike, *, x_key: str = "step") -> Path | None:
    """Write training and validation loss against ``x_key`` to a PNG. Returns the path, or ``None``
    when the history holds no loss yet."""
    train = [(h[x_key], h["loss"]) for h in log_history if "loss" in h and x_key in h]
    evals = [(h[x_key], h["eval_loss"]) for h in log_history if "eval_loss" in h and x_key in h]
    if not train and not evals:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    if train:
        ax.plot(*zip(*train, strict=True), label="training loss")
    if evals:
        ax.plot(*zip(*evals, strict=True), marker="o", label="validation loss")
    ax.set_xlabel("tokens seen" if x_key == "num_input_tokens_seen" else "optimizer step")
    ax.set_ylabel("MLM loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def setup_logging(args: TrainingArguments) -> None:
    """Configure logging once, rank-aware: INFO on the main process, warnings only on the others."""
    import datasets
    import transformers

    level = logging.INFO if args.should_log else logging.WARNING
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S", level=level
    )
    logging.getLogger("toolkit").setLevel(level)
    transformers.utils.logging.set_verbosity(logging.WARNING if args.should_log else logging.ERROR)
    datasets.utils.logging.set_verbosity(logging.WARNING)
    install_log_redaction()


def print_run_summary(title: str, figures: dict, output_dir: str | os.PathLike, how_to_load: str) -> str:
    """Print (and return) the few lines a run ends with on the console: its final figures, where the model
    was saved, and how to load it. ``None`` figures are left out; floats are shown with 4 decimals."""
    shown = ", ".join(
        f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items() if v is not None
    )
    text = f"\n{title}: {shown}\nSaved to {output_dir}\nLoad it with: {how_to_load}\n"
    print(text)
    return text


def set_threads(threads: int | None = None) -> int:
    """Use ``threads`` CPU threads in PyTorch (default: the cores this process may use, which a container or
    ``taskset`` can make fewer than the machine's); log and return the number.

    Raises:
        ToolkitInputError: ``threads`` below 1.
    """
    if threads is not None and threads < 1:
        raise ToolkitInputError(f"--threads must be at least 1, got {threads}")
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    n = threads or available
    torch.set_num_threads(n)
    logger.info(
        "PyTorch CPU threads: %d (%s; %d cores available)",
        n,
        "--threads" if threads else "default",
        available,
    )
    return n


# glibc's mallopt parameters; a block above the mmap threshold is mapped on allocation and unmapped on free.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
REUSE_LIMIT_BYTES = 1 << 30  # blocks up to 1 GiB come from the heap and stay there once freed


def reuse_freed_memory(enabled: bool = True) -> bool:
    """Keep the CPU memory PyTorch frees for reuse by the next allocation, instead of handing it back.

    glibc's ``malloc`` maps a large block fresh from the system and unmaps it on ``free``: every block above
    32 MiB, and smaller ones above a threshold it adapts (128 KiB at first). A training step allocates and frees the same large activations and gradients every
    step, so each step pays again for the system to zero and fault in every page of them: a fresh 74 MB
    tensor takes 3.5x longer to fill than one reused (benchmarks/RESULTS.md#speed). With
    ``enabled``, blocks up to :data:`REUSE_LIMIT_BYTES` come from the heap and freed memory stays in it
    (glibc's ``M_MMAP_THRESHOLD`` and ``M_TRIM_THRESHOLD``). The heap keeps its high-water mark (the largest
    step's memory, plus any fragmentation) until the process ends, instead of shrinking between steps.

    Process-wide, for the rest of the process: a later call with ``enabled`` false does not undo it (glibc's
    adaptive threshold cannot be restored). A no-op off Linux/glibc (macOS, musl, Windows), on a glibc that
    refuses the threshold, and when ``enabled`` is false. GPU memory is PyTorch's own caching allocator and unaffected.

    Returns:
        Whether the setting was applied.
    """
    if not enabled or sys.platform != "linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(None)  # the C library this process runs on
        applied = bool(
            libc.mallopt(_M_MMAP_THRESHOLD, REUSE_LIMIT_BYTES)
            and libc.mallopt(_M_TRIM_THRESHOLD, 2 * REUSE_LIMIT_BYTES - 1)
        )
    except (OSError, AttributeError):
        applied = False
    logger.debug("Freed CPU memory kept for reuse: %s", applied)
    return applied


def check_precision(args: TrainingArguments) -> None:
    """Refuse bf16 training on a CPU (its bf16 matmul is far slower than fp32), for every training recipe.

    Raises:
        ToolkitInputError: ``--bf16`` without a CUDA device.
    """
    if args.bf16 and (args.use_cpu or not torch.cuda.is_available()):
        raise ToolkitInputError(
            "--bf16 on CPU: a CPU bf16 matmul is far slower than fp32 here; train in fp32"
        )


def setup_cli_logging() -> None:
    """Logging for the recipes without ``TrainingArguments`` (extraction, push): INFO, with tokens redacted."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    install_log_redaction()


def prepare_training_args(args: TrainingArguments, *, group_by_length: bool = False) -> TrainingArguments:
    """Recipe-wide ``TrainingArguments`` adjustments, in one place.

    Keeps every dataset column for the collators (they drop what the model does not take), logs about twenty
    times a run and keeps the last three checkpoints unless ``logging_steps`` / ``save_total_limit`` were
    set, counts input tokens (for tokens/s in the logs) unless told otherwise, and turns on length-grouped
    batches when asked and no other sampling strategy was chosen.
    """
    args.remove_unused_columns = False
    explicit = getattr(args, "explicit_options", set())
    if "logging_steps" not in explicit and args.max_steps > 0:
        # a loss line about twenty times a run (the stock 500 steps shows none in a 200-step run)
        args.logging_steps = max(1, min(int(args.logging_steps), args.max_steps // 20))
    if "save_total_limit" not in explicit and args.save_total_limit is None:
        args.save_total_limit = DEFAULT_SAVE_TOTAL_LIMIT  # checkpoints are for resuming: the last few suffice
    if args.include_num_input_tokens_seen == "no":
        args.include_num_input_tokens_seen = "non_padding"
    if group_by_length and args.train_sampling_strategy == "random":
        args.train_sampling_strategy = "group_by_length"
    return args


def run_cli(main) -> None:
    """Run a recipe's ``main()``: bad input ends with ``error: ...`` on stderr and exit status 2, a failed hub
    push (output kept, retry command shown) with status 3; no traceback for either."""
    import sys

    try:
        main()
    except ToolkitInputError as err:
        print(f"error: {redact(str(err))}", file=sys.stderr)
        sys.exit(2)
    except HubError as err:
        print(f"error: {redact(str(err))}", file=sys.stderr)
        sys.exit(3)
    finally:
        _close_process_group()


def _close_process_group() -> None:
    """Under torchrun/accelerate, end the run with the process group torn down by hand: a rank that leaves
    the interpreter with gloo's threads still alive can be killed by ``terminate called without an active
    exception`` (SIGABRT), and the launcher then reports the whole run as failed although every rank
    finished. Gloo only (the CPU backend): there destroying is local, so a rank that finished does not wait
    behind the main process's report or hub push, nor a rank that failed behind peers stuck in a collective;
    NCCL's destroy can block on the other ranks, and is left to the launcher."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_backend() == "gloo":
        dist.destroy_process_group()


def training_command(
    argv: list[str] | None = None, *, script: str | None = None, options: dict | None = None
) -> str:
    """The command line that produced this run, shell-quoted, with every token replaced by ``***``: the value
    of any token flag however it is spelled, and any known token wherever it appears (see ``_secrets``).

    Args:
        argv: the recipe's flags (default: ``sys.argv[1:]``).
        script: the recipe path shown (default: ``sys.argv[0]``).
        options: keyword options the recipe was called with from Python, shown as the flags they stand for.
    """
    flags = [*(sys.argv[1:] if argv is None and not options else argv or []), *options_to_argv(options or {})]
    argv = redact_argv([script or sys.argv[0], *flags])
    return " ".join(shlex.quote(a) for a in ["python", *argv])
