"""Publishing to a model hub: pre-flight checks before training, pushes that fail safely after it.

Tokens come from ``HF_TOKEN`` (or ``HUGGING_FACE_HUB_TOKEN``) or the standard login cache
(``hf auth login``); they are never printed, logged or written to any file the toolkit produces.
"""

from __future__ import annotations

import logging
import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import HfApi, get_token
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from ._card import write_vector_card
from ._checkpoint import WEIGHT_FILES
from ._errors import HubError, ToolkitInputError
from ._secrets import TOKEN_ENV_VARS, register_secret
from ._vectors import VECTOR_EXTENSIONS, VectorSet

__all__ = [
    "write_vector_card",
    "HubError",
    "HubTarget",
    "IGNORE_PATTERNS",
    "describe_output",
    "ensure_vector_card",
    "get_hub_token",
    "hub_target_from_args",
    "preflight",
    "push_output_dir",
    "retry_command",
    "vector_files",
    "vector_sets",
]

logger = logging.getLogger(__name__)

# Never pushed: intermediate checkpoints, TensorBoard logs, the pickled TrainingArguments, a distillation
# teacher's cached scores of the training data.
IGNORE_PATTERNS = [
    "checkpoint-*",
    "checkpoint-*/*",
    "runs/*",
    "runs/**",
    "training_args.bin",
    "*.lock",
    "teacher_cache/*",
    "teacher_cache/**",
]


@dataclass
class HubTarget:
    """Where a run will be pushed, resolved and checked by :func:`preflight`."""

    repo_id: str
    private: bool = False
    revision: str | None = None
    endpoint: str | None = None


def get_hub_token() -> str | None:
    """The token from ``HF_TOKEN`` / ``HUGGING_FACE_HUB_TOKEN`` or the login cache, or ``None``; remembered as
    a secret, so that no file or log line the toolkit writes afterwards can hold it."""
    token = next((os.environ[name] for name in TOKEN_ENV_VARS if os.environ.get(name)), None) or get_token()
    register_secret(token)
    return token


def _api(endpoint: str | None, token: str):
    return HfApi(endpoint=endpoint, token=token)


def _status(err: Exception) -> int | None:
    response = getattr(err, "response", None)
    return getattr(response, "status_code", None)


def preflight(
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    endpoint: str | None = None,
    create: bool = True,
) -> HubTarget:
    """Check, in seconds and before any long run, that a push to ``repo_id`` can succeed.

    Checks that a token is available and valid, that the repo id is well-formed (a bare name is put in the
    token owner's namespace), that the namespace is the user's or one of their organisations, and that
    the repository exists or can be created (it is created, empty, if missing).

    Args:
        repo_id: ``"name"`` or ``"namespace/name"``.
        private: create the repository as private.
        revision: a branch to push to (created from main at push time if missing).
        endpoint: the hub URL (default: ``HF_ENDPOINT`` or huggingface.co).
        create: create the repository if it is missing (``False`` for a dry run: check only).

    Returns:
        The resolved :class:`HubTarget`.

    Raises:
        ToolkitInputError: no token, invalid token, malformed repo id, a namespace the token cannot
            write to, an unreachable hub.
    """
    token = get_hub_token()
    if not token:
        raise ToolkitInputError(
            "--push_to_hub needs a hub token: set HF_TOKEN or log in with `hf auth login`"
        )
    if not repo_id:
        raise ToolkitInputError("--push_to_hub needs --hub_model_id (the repository to push to)")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise ToolkitInputError(f"malformed repo id {repo_id!r}: {err}") from None
    if repo_id.count("/") > 1:
        raise ToolkitInputError(f"malformed repo id {repo_id!r}: expected 'name' or 'namespace/name'")
    api = _api(endpoint, token)
    try:
        me = api.whoami()
    except Exception as err:  # noqa: BLE001 - any failure here is reported in one clear sentence
        if _status(err) == 401:
            raise ToolkitInputError(
                "the hub token is invalid or expired (HTTP 401): set a valid HF_TOKEN"
            ) from None
        raise ToolkitInputError(f"cannot reach the hub at {api.endpoint}: {type(err).__name__}") from None
    user = me.get("name")
    namespaces = {user, *(o.get("name") for o in me.get("orgs", []))}
    if "/" not in repo_id:
        repo_id = f"{user}/{repo_id}"
    namespace = repo_id.split("/")[0]
    if namespace not in namespaces:
        raise ToolkitInputError(
            f"the token belongs to {user!r}, who cannot write to namespace {namespace!r} "
            f"(writable: {', '.join(sorted(n for n in namespaces if n))})"
        )
    role = (me.get("auth", {}).get("accessToken") or {}).get("role")
    if role == "read":
        raise ToolkitInputError("the hub token is read-only: create a token with write access")
    try:
        if create:
            api.create_repo(repo_id, private=private, exist_ok=True)
    except Exception as err:  # noqa: BLE001
        code = _status(err)
        raise ToolkitInputError(
            f"cannot create or write to {repo_id!r} (HTTP {code or type(err).__name__})"
        ) from None
    logger.info(
        "Hub pre-flight ok: will push to %s/%s%s",
        api.endpoint,
        repo_id,
        f" (branch {revision})" if revision else "",
    )
    return HubTarget(repo_id=repo_id, private=private, revision=revision, endpoint=endpoint)


def describe_output(output_dir: str | os.PathLike) -> str:
    """``"model"`` or ``"vectors"``: what an output directory holds.

    Raises:
        ToolkitInputError: a missing directory, or one with neither model weights nor a vector file.
    """
    path = Path(output_dir)
    if not path.is_dir():
        raise ToolkitInputError(f"output directory {str(path)!r} does not exist")
    if (path / "config.json").is_file():
        if not any((path / name).is_file() for name in WEIGHT_FILES):
            raise ToolkitInputError(
                f"{str(path)!r} has a config.json but no weights (model.safetensors): nothing to push"
            )
        return "model"
    if vector_sets(path):
        return "vectors"
    raise ToolkitInputError(f"{str(path)!r} holds neither a model (config.json + weights) nor a vector set")


def vector_files(output_dir: str | os.PathLike) -> list[str]:
    """Files of the vector sets in ``output_dir`` (each vector file with its sidecars), plus ``README.md``."""
    path = Path(output_dir)
    names = []
    for p in vector_sets(path):
        names += [f.name for f in VectorSet.files_written(p) if f.is_file()] + [f"{p.name}.coverage.json"]
    if (path / "README.md").is_file():
        names.append("README.md")
    return names


def vector_sets(output_dir: str | os.PathLike) -> list[Path]:
    """The vector files in ``output_dir``: files of a vector format with a ``<file>.coverage.json`` beside."""
    return [
        p
        for p in sorted(Path(output_dir).iterdir())
        if p.suffix.lower() in VECTOR_EXTENSIONS and Path(f"{p}.coverage.json").is_file()
    ]


def ensure_vector_card(output_dir: str | os.PathLike) -> None:
    """Give a vector-set directory without a ``README.md`` a card built from its first set's provenance and
    coverage report."""
    out = Path(output_dir)
    if (out / "README.md").is_file():
        return
    vector_file = vector_sets(out)[0]
    vs = VectorSet.load(vector_file)
    write_vector_card(
        out, vector_file, provenance=vs.provenance, coverage=vs.coverage or {}, n_vectors=len(vs), dim=vs.dim
    )


def retry_command(output_dir: str | os.PathLike, target: HubTarget) -> str:
    """The exact command that retries a push."""
    parts = ["python", "recipes/push_to_hub.py", str(output_dir), target.repo_id]
    if target.private:
        parts.append("--private")
    if target.revision:
        parts += ["--revision", target.revision]
    return " ".join(shlex.quote(p) for p in parts)


def push_output_dir(
    output_dir: str | os.PathLike, target: HubTarget, *, commit_message: str | None = None
) -> str:
    """Upload an output directory (model or vector set) to ``target``; the local directory is only read.

    Intermediate checkpoints, TensorBoard logs and ``training_args.bin`` stay local.

    Returns:
        The URL of the commit.

    Raises:
        ToolkitInputError: nothing to push (see :func:`describe_output`).
        HubError: the upload failed; the message holds the exact command to retry.
    """
    kind = describe_output(output_dir)
    token = get_hub_token()
    if not token:
        raise ToolkitInputError("no hub token: set HF_TOKEN or log in with `hf auth login`")
    api = _api(target.endpoint, token)
    try:
        if target.revision and target.revision != "main":
            api.create_branch(target.repo_id, branch=target.revision, exist_ok=True)
        info = api.upload_folder(
            repo_id=target.repo_id,
            folder_path=str(output_dir),
            revision=target.revision,
            commit_message=commit_message or f"Upload {kind} from the toolkit",
            ignore_patterns=IGNORE_PATTERNS,
            # a vector set may share its directory with other files: push only the set and its card
            allow_patterns=vector_files(output_dir) if kind == "vectors" else None,
        )
    except Exception as err:  # noqa: BLE001 - any failure: keep the local output, say how to retry
        raise HubError(
            f"pushing {str(output_dir)!r} to {target.repo_id!r} failed ({type(err).__name__}"
            f"{f', HTTP {_status(err)}' if _status(err) else ''}). The local output is intact; retry with:\n"
            f"    {retry_command(output_dir, target)}"
        ) from None
    logger.info("Pushed %s to %s", output_dir, info.commit_url)
    return info.commit_url


def hub_target_from_args(args, *, dry_run: bool = False) -> HubTarget | None:
    """Take the hub options of ``TrainingArguments`` for the toolkit's own pre-flight and push.

    Trainer's own push is switched off (the toolkit pushes once, after the model card is written), and
    ``hub_token`` is removed from the arguments so it cannot reach ``training_args.bin``; a token given on
    the command line is moved to ``HF_TOKEN`` for this process.

    Returns:
        The checked :class:`HubTarget`, or ``None`` without ``--push_to_hub``.
    """
    if args.hub_token:
        register_secret(args.hub_token)
        os.environ["HF_TOKEN"] = args.hub_token
        args.hub_token = None
    if not args.push_to_hub:
        return None
    args.push_to_hub = False
    target = preflight(
        args.hub_model_id or "",
        private=bool(args.hub_private_repo),
        revision=args.hub_revision,
        create=not dry_run,  # a dry run checks the token and the namespace, and creates nothing
    )
    return target
