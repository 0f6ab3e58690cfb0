"""Smaller models made from a checkpoint: a student of the teacher's architecture that keeps chosen layers
(``recipes/cut_student.py``), saved as a plain model directory.

Example:
    >>> from toolkit.students import cut_student, save_student  # doctest: +SKIP
    >>> student, report = cut_student("outputs/classify/sst2", layers="every_other")  # doctest: +SKIP
    >>> save_student(student, "outputs/sst2_half", report=report)  # doctest: +SKIP
"""

from __future__ import annotations

from ._students import CutReport, cut_student, save_student

__all__ = ["CutReport", "cut_student", "save_student"]
