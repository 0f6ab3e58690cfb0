#!/usr/bin/env python
"""Cut a student from a teacher: the same architecture with fewer layers, chosen from the teacher's.

    python recipes/cut_student.py outputs/pretrain/small --output_dir outputs/small_half     # every other layer
    python recipes/cut_student.py outputs/classify/sst2 --output_dir sst2_3l --student_layers 0,2,4
    python recipes/cut_student.py outputs/pretrain/small --output_dir fresh --embeddings_only --num_layers 2

TEACHER_DIR is a masked-LM, a classifier or tagger, or a sentence-transformers directory with the model at
its root: any model whose layers are named *.encoder.layer.N (BERT, RoBERTa, ELECTRA, ...). Student layer j is
the j-th teacher layer of --student_layers; the embeddings and the task head (labels included) are copied.
With --embeddings_only only the embeddings are copied and the layers start fresh. --output_dir gets a plain
model directory (AutoModelFor...from_pretrained, pipeline), the teacher's tokenizer and cut_report.json (what
was kept and copied). From Python: ``main(teacher="DIR", output_dir="OUT", student_layers="0,2")``.
Exit status: 0 saved, 2 bad input.
"""

from __future__ import annotations

import argparse
import sys


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    p.add_argument("teacher", nargs="?", metavar="TEACHER_DIR", help="the teacher's model directory")
    p.add_argument("--output_dir", help="where the student goes (required; refused if it holds files)")
    p.add_argument(
        "--student_layers",
        default="every_other",
        help="teacher layers to keep, 0-based and increasing: '0,2,4', or every_other (default)",
    )
    p.add_argument(
        "--embeddings_only", action="store_true", help="copy only the embeddings; layers and head start fresh"
    )
    p.add_argument(
        "--num_layers", type=int, help="layers of an --embeddings_only student (default: as --student_layers)"
    )
    p.add_argument("--overwrite", action="store_true", help="write into an --output_dir that holds files")
    return p


if __name__ == "__main__" and {"-h", "--help"} & set(sys.argv[1:]):  # before the heavy imports below
    make_parser().parse_args()

from toolkit import ToolkitInputError
from toolkit.students import cut_student, save_student
from toolkit.training import run_cli, setup_cli_logging


def main(argv: list[str] | None = None, **options) -> dict:
    # 1. Options: flags, then keyword options from Python (which win).
    args = make_parser().parse_args([] if argv is None and options else argv)
    unknown = sorted(set(options) - set(vars(args)))
    if unknown:
        raise ToolkitInputError(f"unknown options: {', '.join(unknown)} (see --help)")
    vars(args).update(options)
    if not args.teacher or not args.output_dir:
        raise ToolkitInputError("give the teacher's directory and --output_dir (see --help)")
    setup_cli_logging()

    # 2. Cut: the teacher's class and config with fewer layers, the kept layers copied.
    student, report = cut_student(
        args.teacher,
        layers=args.student_layers,
        embeddings_only=args.embeddings_only,
        num_layers=args.num_layers,
    )

    # 3. Save: a plain model directory with the teacher's tokenizer and cut_report.json.
    out = save_student(student, args.output_dir, report=report, overwrite=args.overwrite)
    print(f"student of {args.teacher} ({report.summary()}) -> {out}")
    return {**report.record(), "output_dir": str(out)}


if __name__ == "__main__":
    run_cli(main)
