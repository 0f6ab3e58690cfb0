"""A training run's output directory: checked before any work, resumed only by the same run.

Every training recipe records what defines its run (recipe, inputs, tokenizer and model options) in
``toolkit_run.json`` in its output directory and in each checkpoint. Re-running into that directory with
the same definition resumes from the last checkpoint (after a crash or ``kill -9``); a changed definition, a
directory of another recipe, or one holding a user's own files is refused unless ``--overwrite_output_dir``
says to start over. Output paths are checked for writability before anything long starts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from transformers import TrainingArguments
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint

from ._checkpoint import WEIGHT_FILES
from ._errors import ToolkitInputError
from ._io import resolve_files
from ._secrets import redact

__all__ = [
    "RUN_FILE",
    "check_output_files",
    "check_writable",
    "file_identity",
    "input_files",
    "last_complete_checkpoint",
    "option_group",
    "prepare_output_dir",
    "read_run_record",
    "run_fingerprint",
    "write_run_record",
]

logger = logging.getLogger(__name__)

RUN_FILE = "toolkit_run.json"
# What Trainer itself leaves in an output directory: such a directory is a run, not a user's files.
_TRAINER_ENTRIES = ("runs", "trainer_state.json", "training_args.bin")
# What a finished run leaves: a directory holding one of these is worth protecting.
_RESULTS = (*WEIGHT_FILES, "metrics.json", "README.md")
# What --overwrite_output_dir removes from another run of the toolkit, beside its checkpoints.
_RUN_OUTPUTS = (*_RESULTS, "trainer_state.json", "training_args.bin", "runs", "loss_curve.png")
_RESUME_LATEST = ("true", "1", "yes", "last")
_SAMPLE_BYTES = 1 << 20


def file_identity(path: str | os.PathLike) -> dict:
    """What identifies an input file's content cheaply: name, size and a digest of its first and last MiB
    (the whole file when it is smaller than 2 MiB). A renamed directory or a new working directory does not
    change it; an edited, appended or replaced file does."""
    path = Path(path)
    size = path.stat().st_size
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        digest.update(fh.read(_SAMPLE_BYTES))
        if size > _SAMPLE_BYTES:
            fh.seek(max(_SAMPLE_BYTES, size - _SAMPLE_BYTES))
            digest.update(fh.read())
    return {"name": path.name, "size": size, "sha256_sample": digest.hexdigest()[:16]}


def run_fingerprint(**groups: dict) -> dict:
    """A JSON-safe definition of a run from named option groups (``inputs=…, tokenizer=…, model=…``)."""
    return json.loads(json.dumps(groups, sort_keys=True, default=str))


def _differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    changes = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changes += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            changes.append(
                f"{prefix}{key}: {json.dumps(a, ensure_ascii=False)} -> {json.dumps(b, ensure_ascii=False)}"
            )
    return changes


def read_run_record(directory: str | os.PathLike) -> dict | None:
    """The ``toolkit_run.json`` of an output directory or checkpoint, or ``None``."""
    path = Path(directory) / RUN_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def check_writable(directory: str | os.PathLike, *, what: str = "output directory") -> Path:
    """Create ``directory`` if needed and prove a file can be written in it, before any work starts.

    Raises:
        ToolkitInputError: it is a file, it cannot be created, or it is not writable (with the OS reason).
    """
    path = Path(directory)
    if path.exists() and not path.is_dir():
        raise ToolkitInputError(f"{what} {str(path)!r} is a file, not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write_test_"):
            pass
    except OSError as err:
        raise ToolkitInputError(
            f"{what} {str(path)!r} is not writable ({err.strerror or type(err).__name__}): choose a directory "
            "you can write to"
        ) from None
    return path


def _user_entries(path: Path) -> list[str]:
    return sorted(
        p.name
        for p in path.iterdir()
        if not p.name.startswith(".")
        and not p.name.startswith(f"{PREFIX_CHECKPOINT_DIR}-")
        and p.name not in (*_TRAINER_ENTRIES, RUN_FILE)
    )


def _refuse(output_dir: Path, reason: str) -> ToolkitInputError:
    return ToolkitInputError(
        f"--output_dir {str(output_dir)!r} {reason}. Nothing was changed: choose another --output_dir, or "
        "pass --overwrite_output_dir true to start over there (its checkpoints are deleted, its files written over)"
    )


def _check_same_run(record: dict | None, recipe: str, fingerprint: dict) -> str | None:
    """Why ``record`` is not this run, or ``None`` when it is (or holds no record: an older toolkit's run)."""
    if record is None or "recipe" not in record:  # an older toolkit's run, or a Trainer used as a library
        return None
    if record.get("recipe") != recipe:
        return f"holds a run of {record.get('recipe')!r}, not of {recipe!r}"
    changes = _differences(record.get("fingerprint", {}), fingerprint)
    if changes:
        shown = "; ".join(changes[:8]) + (f"; and {len(changes) - 8} more" if len(changes) > 8 else "")
        return f"holds a different run (what changed: {shown})"
    return None


def prepare_output_dir(
    args: TrainingArguments, *, recipe: str, fingerprint: dict, overwrite: bool = False
) -> str | None:
    """Check and claim a run's output directory before any data is read; return the checkpoint to resume.

    - a new or empty directory: a fresh run;
    - a previous run of the same recipe with the same definition: resume from its last checkpoint (also
      after ``kill -9``), or from ``--resume_from_checkpoint PATH``;
    - a changed definition (inputs, tokenizer or model options), another recipe's run, or a user's own
      files: refused, unless ``overwrite`` (``--overwrite_output_dir``) says to start over.

    The run's definition is then written to ``toolkit_run.json`` (main process), and each checkpoint gets a
    copy (see ``ToolkitTrainer``), so a checkpoint copied elsewhere still knows which run it belongs to.

    Args:
        args: the run's ``TrainingArguments`` (``output_dir``, ``resume_from_checkpoint``).
        recipe: the recipe's name, e.g. ``"pretrain"``.
        fingerprint: what defines the run, from :func:`run_fingerprint`.
        overwrite: start over in a directory that holds something else.

    Returns:
        The checkpoint directory to resume from, or ``None``.

    Raises:
        ToolkitInputError: an unwritable directory, a refused directory (the message lists what changed),
            a resume path that does not exist or belongs to another run.
    """
    # local=False: on several nodes sharing a file system, one process checks and writes before the others look
    with args.main_process_first(desc="output directory", local=args.save_on_each_node):
        return _prepare(args, recipe=recipe, fingerprint=fingerprint, overwrite=overwrite)


def _prepare(args: TrainingArguments, *, recipe: str, fingerprint: dict, overwrite: bool) -> str | None:
    output_dir = check_writable(args.output_dir)
    explicit = args.resume_from_checkpoint
    latest_wanted = bool(explicit) and str(explicit).lower() in _RESUME_LATEST
    if explicit and overwrite:
        raise ToolkitInputError("--resume_from_checkpoint and --overwrite_output_dir contradict each other")
    checkpoints = sorted(output_dir.glob(f"{PREFIX_CHECKPOINT_DIR}-*"))
    if overwrite:
        if args.should_save:
            # A toolkit run's outputs go with its checkpoints, so that none can pass for the new run's; a
            # user's own files are written over only where the new run writes the same names.
            ours = read_run_record(output_dir) is not None
            for path in [*checkpoints, *((output_dir / n for n in _RUN_OUTPUTS) if ours else ())]:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
            (output_dir / RUN_FILE).unlink(missing_ok=True)
        if checkpoints or _user_entries(output_dir):
            logger.warning("--overwrite_output_dir: starting over in %s", output_dir)
        resume_from = None
    else:
        record, entries = read_run_record(output_dir), _user_entries(output_dir)
        problem = _check_same_run(record, recipe, fingerprint)
        if problem and not checkpoints and not any((output_dir / name).exists() for name in _RESULTS):
            # that run ended before its first checkpoint or result (bad input, a crash): nothing to keep
            logger.info(
                "%s: the run recorded there left no checkpoint or result; starting this run", output_dir
            )
            problem = None
        if problem is None and not record and entries:
            shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
            problem = f"is not empty and holds no run of this toolkit ({shown})"
        if problem:
            raise _refuse(output_dir, problem)
        resume_from = None
        if explicit and not latest_wanted:
            if not os.path.isdir(explicit):
                raise ToolkitInputError(f"--resume_from_checkpoint {explicit!r} is not a directory")
            resume_from = str(explicit)
        else:
            resume_from = last_complete_checkpoint(output_dir)
            if latest_wanted and resume_from is None:
                raise ToolkitInputError(
                    f"--resume_from_checkpoint {explicit}: no checkpoint-* folder in {str(output_dir)!r}"
                )
        if resume_from:
            problem = _check_same_run(read_run_record(resume_from), recipe, fingerprint)
            if problem:
                raise ToolkitInputError(
                    f"cannot resume from {resume_from!r}: it {problem}. Resume with the options it was started "
                    "with, or start a new run in another --output_dir"
                )
            logger.info("Resuming from %s", resume_from)
    if args.should_save:
        write_run_record(output_dir, {"recipe": recipe, "fingerprint": fingerprint})
    return resume_from


def last_complete_checkpoint(output_dir: str | os.PathLike) -> str | None:
    """The newest ``checkpoint-N`` whose save finished: ``ToolkitTrainer`` writes the run record into each
    checkpoint last, so a folder without it was cut short (``kill -9`` during the save) and is passed over.
    Checkpoints of a plain ``Trainer`` (no record in any) count once their ``trainer_state.json`` is there."""
    found = get_last_checkpoint(str(output_dir))
    if found is None:
        return None
    checkpoints = sorted(
        (p for p in Path(output_dir).glob(f"{PREFIX_CHECKPOINT_DIR}-*") if p.name.split("-")[-1].isdigit()),
        key=lambda p: int(p.name.split("-")[-1]),
        reverse=True,
    )
    marker = RUN_FILE if any((p / RUN_FILE).is_file() for p in checkpoints) else "trainer_state.json"
    for checkpoint in checkpoints:
        if (checkpoint / marker).is_file() and (checkpoint / "trainer_state.json").is_file():
            if checkpoint != checkpoints[0]:
                logger.warning("%s was cut short while saving: resuming from %s", checkpoints[0], checkpoint)
            return str(checkpoint)
    return None


def write_run_record(directory: str | os.PathLike, record: dict) -> None:
    """Write ``toolkit_run.json`` (no secret can be in it: it holds options without hub settings)."""
    text = json.dumps(record, indent=2, ensure_ascii=False, default=str)
    (Path(directory) / RUN_FILE).write_text(redact(text) + "\n", encoding="utf-8")


def input_files(specs: Iterable[str | os.PathLike | None], **resolve_kwargs) -> list[dict]:
    """:func:`file_identity` of every local input file named by ``specs`` (files, directories, globs)."""
    names = [str(s) for s in specs if s]
    return [file_identity(p) for p in resolve_files(names, **resolve_kwargs)] if names else []


def option_group(values: dict, *, ignore: Sequence[str] = ()) -> dict:
    """An option group for :func:`run_fingerprint`: ``values`` without the keys that do not change a run's
    result (progress, languages shown on the card, speed switches)."""
    return {k: v for k, v in values.items() if k not in ignore}


def check_output_files(
    outputs: Sequence[str | os.PathLike],
    *,
    inputs: Sequence[str | os.PathLike] = (),
    overwrite: bool = False,
) -> None:
    """Check, before any work, that a recipe may write ``outputs``: none of them is one of its ``inputs``
    (whatever the spelling of the path), none exists unless ``overwrite``, and their directories exist and
    are writable.

    Raises:
        ToolkitInputError: the first output that would destroy an input or an existing file, or that cannot
            be written, with the remedy.
    """
    taken = {Path(p).resolve() for p in inputs}
    for out in map(Path, outputs):
        if out.resolve() in taken:
            raise ToolkitInputError(
                f"output {str(out)!r} is one of the inputs: writing it would destroy that input"
            )
        if out.is_dir():
            raise ToolkitInputError(f"output {str(out)!r} is a directory: give a file name inside it")
        if out.exists() and not overwrite:
            raise ToolkitInputError(
                f"output {str(out)!r} already exists: pass --overwrite to replace it, or choose another name"
            )
        if not out.parent.is_dir():
            raise ToolkitInputError(f"output directory {str(out.parent)!r} does not exist")
        check_writable(out.parent)
        if out.exists() and not os.access(out, os.W_OK):
            raise ToolkitInputError(f"output {str(out)!r} is not writable")
