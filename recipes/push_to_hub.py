#!/usr/bin/env python
"""Push an existing output directory — a model from any recipe, or a vector set — to a model hub.

    python recipes/push_to_hub.py outputs/classify/sst2 alice/tiny-sst2
    python recipes/push_to_hub.py vectors/ alice/zh-char-vectors --private --revision v1

The token comes from HF_TOKEN or the login cache (`hf auth login`) and is never printed or saved. The
endpoint is HF_ENDPOINT (default huggingface.co). A vector set without a README.md gets a card built from
its provenance and coverage report. Exit status: 0 pushed, 2 bad input or failed pre-flight, 3 upload failed
(the command to retry is printed).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    p.add_argument("output_dir", help="a recipe's output directory, or a directory holding a vector set")
    p.add_argument("repo_id", help="'name' (in your namespace) or 'namespace/name'")
    p.add_argument("--private", action="store_true", help="create the repository as private")
    p.add_argument("--revision", help="branch to push to (created from main if missing)")
    p.add_argument("--commit_message", help="commit message")
    return p


if __name__ == "__main__" and {"-h", "--help"} & set(sys.argv[1:]):  # before the heavy imports below
    make_parser().parse_args()

from toolkit.hub import describe_output, ensure_vector_card, preflight, push_output_dir
from toolkit.training import run_cli, setup_cli_logging


def main(argv: list[str] | None = None) -> str:
    args = make_parser().parse_args(argv)
    setup_cli_logging()
    # 1. What is being pushed (fails before any network call if there is nothing to push).
    kind = describe_output(args.output_dir)
    # 2. Pre-flight: token, repo id, permissions.
    target = preflight(args.repo_id, private=args.private, revision=args.revision)
    # 3. A vector set gets a card from its provenance if it has none.
    out = Path(args.output_dir)
    if kind == "vectors":
        ensure_vector_card(out)
    # 4. Upload.
    url = push_output_dir(out, target, commit_message=args.commit_message)
    print(f"pushed {kind} {out} -> {target.repo_id}: {url}")
    return url


if __name__ == "__main__":
    run_cli(main)
