from __future__ import annotations

import datasets
import pytest

from toolkit import ToolkitInputError, prepare_mlm_dataset
from toolkit._packing import pack_into_blocks, segment_word_starts, split_lines_into_blocks, word_start_flags


def test_pack_into_blocks_keeps_every_token_and_pads_only_the_last_block():
    docs = [[10, 11, 12], [], [13, 14], [15]]
    out = pack_into_blocks(docs, None, block_size=4, cls_id=1, sep_id=2, pad_id=0)
    assert out["input_ids"] == [[1, 10, 11, 12], [1, 2, 13, 14], [1, 2, 15, 2]]
    out = pack_into_blocks([[10, 11, 12, 13]], None, block_size=4, cls_id=1, sep_id=2, pad_id=0)
    assert out["input_ids"] == [[1, 10, 11, 12], [1, 13, 2, 0]]
    body = [t for block in out["input_ids"] for t in block[1:] if t not in (0, 2)]
    assert body == [10, 11, 12, 13]


def test_pack_carries_word_starts_aligned_with_ids():
    out = pack_into_blocks([[10, 11], [12]], [[1, 0], [1]], block_size=3, cls_id=1, sep_id=2, pad_id=0)
    assert out["input_ids"] == [[1, 10, 11], [1, 2, 12], [1, 2, 0]]
    assert out["word_starts"] == [[1, 1, 0], [1, 1, 1], [1, 1, 1]]


def test_line_by_line_splits_long_lines_instead_of_truncating():
    out = split_lines_into_blocks([[10, 11, 12, 13, 14], [15]], None, block_size=4, cls_id=1, sep_id=2)
    assert out["input_ids"] == [[1, 10, 11, 2], [1, 12, 13, 2], [1, 14, 2], [1, 15, 2]]


def test_word_start_flags_english_pieces_and_chinese_segments():
    # "playing": play ##ing share a pre-tokenizer word.
    assert word_start_flags([0, 0, 1], [(0, 4), (4, 7), (8, 10)]) == [1, 0, 1]
    # 北京 欢迎: each character its own pre-token; the segmenter joins 北京 and 欢迎.
    starts = segment_word_starts("北京欢迎你", "jieba")
    flags = word_start_flags([0, 1, 2, 3, 4], [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)], starts)
    assert flags == [1, 0, 1, 0, 1]


def test_prepare_mlm_dataset_packs_full_blocks(tokenizer, corpus_lines):
    ds = datasets.Dataset.from_dict({"text": corpus_lines[:200]})
    blocks = prepare_mlm_dataset(ds, tokenizer, block_size=32, whole_word_mask=True, segmenter="jieba")
    assert set(blocks.column_names) == {"input_ids", "word_starts"}
    lengths = {len(r) for r in blocks["input_ids"]}
    assert lengths == {32}
    n_tokens = sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in corpus_lines[:200])
    n_body = sum(1 for r in blocks["input_ids"] for t in r if t not in tokenizer.all_special_ids)
    assert n_body == n_tokens  # nothing dropped
    n_pad = sum(r.count(tokenizer.pad_token_id) for r in blocks["input_ids"])
    assert n_pad < 32  # one map batch: at most one padded block


def test_prepare_mlm_dataset_streaming_matches_in_memory(tokenizer, corpus_lines):
    ds = datasets.Dataset.from_dict({"text": corpus_lines[:50]})
    eager = prepare_mlm_dataset(ds, tokenizer, block_size=32)
    lazy = prepare_mlm_dataset(ds.to_iterable_dataset(), tokenizer, block_size=32)
    assert [r["input_ids"] for r in lazy] == eager["input_ids"]


def test_block_size_above_tokenizer_limit_is_refused(tokenizer):
    ds = datasets.Dataset.from_dict({"text": ["a b c"]})
    with pytest.raises(ToolkitInputError, match="model_max_length"):
        prepare_mlm_dataset(ds, tokenizer, block_size=4096)


def test_segmenter_without_whole_word_mask_is_refused(tokenizer):
    ds = datasets.Dataset.from_dict({"text": ["a b c"]})
    with pytest.raises(ToolkitInputError, match="whole_word_mask"):
        prepare_mlm_dataset(ds, tokenizer, block_size=16, segmenter="jieba")
