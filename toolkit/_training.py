"""Training plumbing shared by the recipes: Trainer with throughput/ETA logs, resume, metrics, plots."""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path

from transformers import Trainer, TrainingArguments
from transformers.trainer_utils import get_last_checkpoint

from ._errors import ToolkitInputError

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
        self.report_perplexity = report_perplexity  # exp(eval_loss) means something for language models only

    def _get_eval_sampler(self, eval_dataset):
        # transformers 5 applies train_sampling_strategy="group_by_length" to evaluation and prediction too,
        # which returns predictions in a shuffled order. The recipes map predictions back to examples (and
        # NER windows back to sentences) by position, so evaluation always runs in dataset order.
        from torch.utils.data import SequentialSampler
        from transformers.trainer_utils import has_length

        if eval_dataset is None or not has_length(eval_dataset):
            return None
        return SequentialSampler(eval_dataset) if self.args.world_size <= 1 else None

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:
            now, step, tokens = time.perf_counter(), self.state.global_step, self.state.num_input_tokens_seen
            if self._last_log is not None and step > self._last_log[1]:
                t0, s0, k0 = self._last_log
                elapsed = now - t0
                if tokens > k0:
                    logs["tokens_per_second"] = round((tokens - k0) / elapsed, 1)
                seconds_per_step = elapsed / (step - s0)
                remaining = max(0, self.state.max_steps - step) * seconds_per_step
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


def resolve_resume_checkpoint(args: TrainingArguments) -> str | None:
    """Find the checkpoint to resume from.

    ``--resume_from_checkpoint PATH`` resumes from PATH; ``--resume_from_checkpoint true`` or simply
    re-running into an output directory that holds ``checkpoint-*`` folders resumes from the latest one.

    Raises:
        ToolkitInputError: an explicit checkpoint path that does not exist, or ``true`` with none present.
    """
    explicit = args.resume_from_checkpoint
    if explicit and str(explicit).lower() not in ("true", "1", "yes", "last"):
        if not os.path.isdir(explicit):
            raise ToolkitInputError(f"--resume_from_checkpoint {explicit!r} is not a directory")
        return str(explicit)
    last = get_last_checkpoint(args.output_dir) if os.path.isdir(args.output_dir) else None
    if explicit and last is None:
        raise ToolkitInputError(
            f"--resume_from_checkpoint {explicit}: no checkpoint-* folder in {args.output_dir!r}"
        )
    if last:
        logger.info("Resuming from %s", last)
    return last


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


def write_json(data: dict, path: str | os.PathLike) -> None:
    """Write ``data`` as indented UTF-8 JSON (non-ASCII kept readable)."""
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, ensure_ascii=False, default=str)
        fh.write("\n")


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


def prepare_training_args(args: TrainingArguments, *, group_by_length: bool = False) -> TrainingArguments:
    """Recipe-wide ``TrainingArguments`` adjustments, in one place.

    Keeps every dataset column for the collators (they drop what the model does not take), counts input
    tokens (for tokens/s in the logs) unless told otherwise, and turns on length-grouped batches when asked
    and no other sampling strategy was chosen.
    """
    args.remove_unused_columns = False
    if args.include_num_input_tokens_seen == "no":
        args.include_num_input_tokens_seen = "non_padding"
    if group_by_length and args.train_sampling_strategy == "random":
        args.train_sampling_strategy = "group_by_length"
    return args


def run_cli(main) -> None:
    """Run a recipe's ``main()``: bad input ends with ``error: ...`` on stderr and exit status 2, a failed hub
    push (output kept, retry command shown) with status 3; no traceback for either."""
    import sys

    from ._hub import HubError

    try:
        main()
    except ToolkitInputError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except HubError as err:
        print(f"error: {err}", file=sys.stderr)
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
