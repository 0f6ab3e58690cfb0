"""benchmarks.distill's own logic: in-domain sentences cut from documents, and which run a top-level key reads."""

from __future__ import annotations

import pytest

from benchmarks import distill


def test_news_sentences_cuts_documents_at_sentence_ends(tmp_path):
    source = tmp_path / "docs.txt"
    source.write_text(
        "Shares rose 5.3 pct in early trade on Monday. The U.S. dollar fell. Analysts said the outlook "
        "for the year was mixed, dealers said.\n"
        "Too short. Prices of crude oil rose sharply on Tuesday after the cartel met in Vienna!\n",
        encoding="utf-8",
    )
    target = distill.news_sentences(source, tmp_path / "out.txt", 3, min_words=5)
    assert target.read_text(encoding="utf-8").splitlines() == [
        "Shares rose 5.3 pct in early trade on Monday.",  # "5.3" and "U.S." are not sentence ends
        "Analysts said the outlook for the year was mixed, dealers said.",  # "The U.S. dollar fell." is short
        "Prices of crude oil rose sharply on Tuesday after the cartel met in Vienna!",
    ]
    with pytest.raises(SystemExit, match="holds only 3 sentences"):
        distill.news_sentences(source, tmp_path / "out.txt", 4, min_words=5)


def _runs(*, unlabelled: bool) -> dict:
    runs = {
        "teacher": {"test": 90.0},
        "cut_distilled": {"test": 88.0, "kept": 0.98},
        "tiny_plain": {"test": 70.0},
        "tiny_distilled": {"test": 71.5},
    }
    if unlabelled:
        runs["tiny_distilled_unlabelled"] = {"test": 74.25}
    return {"runs": runs, "command": "python -m benchmarks.distill --stage conll2003"}


def test_the_gain_reads_the_run_with_teacher_labelled_text_where_there_is_one():
    assert distill.summary({"conll2003": _runs(unlabelled=False)})["tiny_distilled_gain_conll2003"] == 1.5
    keys = distill.summary({"conll2003": _runs(unlabelled=True)})
    assert keys["tiny_distilled_gain_conll2003"] == 4.25
    assert keys["commands"]["tiny_distilled_gain_conll2003"].startswith("python -m benchmarks.distill")
    assert keys["tiny_distilled_gain_sst2"] is None


def test_recorded_commands_show_paths_as_typed_from_the_project_root():
    root = distill.ROOT
    assert distill._shown(str(root / "outputs" / "distill")) == "outputs/distill"
    assert distill._shown(str(root.parent / "shared" / "data")) == "../shared/data"
    # a path that merely shares the parent's spelling is left whole (/tmp/zh/work was once cut to "/tmp/zh..")
    elsewhere = f"{root.parent}x/minilm"
    assert distill._shown(elsewhere) == elsewhere
    assert distill._shown(str(root.parent)) == ".." and distill._shown(str(root)) == "."
    assert distill._shown("1e-4") == "1e-4"
