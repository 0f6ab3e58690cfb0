"""Print the size-preset table: ``python -m toolkit.presets [--vocab_size N] [--seq_len N]``."""

from __future__ import annotations

import argparse

from ._presets import finetune_settings, format_preset_table, preset_table

__all__ = ["finetune_settings", "main"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vocab_size", type=int, default=30_000, help="vocabulary size for the counts")
    parser.add_argument("--seq_len", type=int, default=128, help="sequence length for the attention FLOPs")
    args = parser.parse_args(argv)
    print(format_preset_table(preset_table(vocab_size=args.vocab_size, seq_len=args.seq_len)))


if __name__ == "__main__":
    main()
