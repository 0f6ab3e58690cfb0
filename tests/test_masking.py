from __future__ import annotations

import copy
import math

import datasets
import pytest
import torch
from transformers import BertForMaskedLM

from toolkit import MLMCollator, prepare_mlm_dataset
from toolkit._masking import mask_tokens
from toolkit.pretrain import IGNORE_INDEX, SparseHeadBertForMaskedLM


def _special_mask(ids, special=(0, 1, 2)):
    return torch.isin(ids, torch.tensor(special))


def test_masking_rate_and_80_10_10_split():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 1000, (200, 128))
    ids[:, 0] = 1
    ids[:, -1] = 2
    corrupted, labels = mask_tokens(
        ids,
        special_mask=_special_mask(ids),
        mask_token_id=4,
        random_token_ids=torch.arange(5, 1000),
        mlm_probability=0.15,
        generator=g,
    )
    selected = labels != IGNORE_INDEX
    rate = selected.float().mean().item()
    assert 0.14 < rate < 0.16
    as_mask = (corrupted == 4) & selected
    unchanged = (corrupted == ids) & selected
    assert 0.77 < as_mask.sum() / selected.sum() < 0.83
    assert 0.08 < unchanged.sum() / selected.sum() < 0.12
    assert torch.equal(labels[selected], ids[selected])
    assert torch.equal(corrupted[~selected], ids[~selected])  # unselected tokens are never touched


def test_special_tokens_are_never_masked():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 3, (50, 40))
    ids[:, ::2] = 7
    special = _special_mask(ids)
    corrupted, labels = mask_tokens(
        ids,
        special_mask=special,
        mask_token_id=4,
        random_token_ids=torch.arange(5, 10),
        mlm_probability=0.9,
        generator=g,
    )
    assert (labels[special] == IGNORE_INDEX).all()
    assert torch.equal(corrupted[special], ids[special])


def _three_piece_words(
    share: float, seed: int, *, rows: int = 100, words: int = 20, mlm_probability: float = 0.15
) -> torch.Tensor:
    """Selected pieces per word, ``(rows, words)``, for words of three pieces with ``whole_word_share=share``."""
    ids = torch.randint(5, 100, (rows, 3 * words))
    starts = torch.zeros_like(ids)
    starts[:, ::3] = 1
    _, labels = mask_tokens(
        ids,
        special_mask=torch.zeros_like(ids, dtype=torch.bool),
        mask_token_id=4,
        random_token_ids=torch.arange(5, 100),
        word_starts=starts,
        mlm_probability=mlm_probability,
        generator=torch.Generator().manual_seed(seed),
        whole_word_share=share,
    )
    return (labels != IGNORE_INDEX).view(rows, words, 3).sum(-1)


def test_whole_words_are_masked_together():
    per_word = _three_piece_words(1.0, seed=2)  # the default share: plain whole-word masking
    assert ((per_word == 0) | (per_word == 3)).all()
    assert 0.12 < per_word.sum().item() / 6000 < 0.18


def test_whole_word_share_mixes_whole_words_and_single_pieces():
    pieces = _three_piece_words(0.0, seed=2)
    # share 0: pieces drawn one by one, so most selected words have one of their three pieces selected.
    assert (pieces == 1).sum() > 5 * (pieces == 3).sum()
    mixed = _three_piece_words(0.5, seed=2)
    partial, complete = ((mixed == 1) | (mixed == 2)).sum().item(), (mixed == 3).sum().item()
    # Half the words are whole (~15% of them fully selected), half piece by piece (~39% with 1 or 2).
    assert 0.5 * 0.15 * 2000 * 0.6 < complete < 0.5 * 0.15 * 2000 * 1.4
    assert 0.5 * 0.39 * 2000 * 0.7 < partial < 0.5 * 0.39 * 2000 * 1.3
    for counts in (pieces, mixed):  # the token selection rate stays mlm_probability
        assert 0.12 < counts.sum().item() / 6000 < 0.18


def test_collator_rejects_a_share_outside_0_1_or_without_whole_words(tokenizer):
    with pytest.raises(ValueError, match=r"must be in \[0, 1\]"):
        MLMCollator(tokenizer, whole_word_mask=True, whole_word_share=1.5)
    with pytest.raises(ValueError, match="only applies with --whole_word_mask"):
        MLMCollator(tokenizer, whole_word_share=0.5)


def test_default_masks_are_pinned():
    """Selections recorded before --whole_word_share existed: its default (1.0) draws the same masks, so
    earlier runs (and resumed ones) keep theirs."""
    ids = (torch.arange(48).reshape(4, 12) * 7) % 90 + 5
    ids[:, 0], ids[:, -1] = 1, 2
    starts = torch.tensor([[1, 1, 0, 1, 0, 0, 1, 1, 0, 1, 1, 1]] * 4)
    expected = {
        "whole_word": [[0, 3], [0, 4], [0, 5], [0, 7], [0, 8], [0, 10], [1, 1], [1, 2], [1, 7], [1, 8],
                       [2, 3], [2, 4], [2, 5], [2, 9], [3, 3], [3, 4], [3, 5], [3, 9]],
        "token": [[0, 2], [0, 4], [0, 6], [0, 7], [0, 8], [1, 1], [1, 4], [2, 2], [2, 5], [3, 2], [3, 5]],
    }  # fmt: skip
    for name, word_starts in (("whole_word", starts), ("token", None)):
        _, labels = mask_tokens(
            ids,
            special_mask=_special_mask(ids),
            mask_token_id=4,
            random_token_ids=torch.arange(5, 100),
            word_starts=word_starts,
            mlm_probability=0.3,
            generator=torch.Generator().manual_seed(123),
        )
        assert (labels != IGNORE_INDEX).nonzero().tolist() == expected[name], name


def test_fallback_selection_follows_the_word_s_draw_mode():
    """A row with nothing selected gets one prediction: its whole word when the word is drawn as a unit,
    a single token when mixed masking drew that word token by token."""
    counts = {
        share: _three_piece_words(share, seed=4, rows=64, words=2, mlm_probability=1e-6).sum(-1)
        for share in (1.0, 0.0)
    }
    assert (counts[1.0] == 3).all() and (counts[0.0] == 1).all()


def test_every_row_gets_at_least_one_prediction():
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(5, 100, (64, 6))
    _, labels = mask_tokens(
        ids,
        special_mask=torch.zeros_like(ids, dtype=torch.bool),
        mask_token_id=4,
        random_token_ids=torch.arange(5, 100),
        mlm_probability=0.01,
        generator=g,
    )
    assert ((labels != IGNORE_INDEX).sum(1) >= 1).all()


def test_collator_is_deterministic_per_epoch_and_dynamic_across_epochs(tokenizer, corpus_lines):
    blocks = prepare_mlm_dataset(
        datasets.Dataset.from_dict({"text": corpus_lines[:60]}), tokenizer, block_size=32
    )
    features = [blocks[i] for i in range(8)]
    collator = MLMCollator(tokenizer, seed=5)
    first = collator(features)
    again = MLMCollator(tokenizer, seed=5)(features)
    assert torch.equal(first["labels"], again["labels"])
    collator.set_epoch(1)
    assert not torch.equal(collator(features)["labels"], first["labels"])
    assert first["input_ids"].shape == (8, 32) and first["attention_mask"].all()


def test_collator_chinese_whole_word_masking_with_jieba(tokenizer):
    text = ["北京是中国的首都。小明在学校吃苹果。"] * 4
    blocks = prepare_mlm_dataset(
        datasets.Dataset.from_dict({"text": text}),
        tokenizer,
        block_size=64,
        whole_word_mask=True,
        segmenter="jieba",
        line_by_line=True,
    )
    collator = MLMCollator(tokenizer, whole_word_mask=True, mlm_probability=0.5, seed=0)
    tokens = tokenizer.convert_ids_to_tokens(blocks[0]["input_ids"])
    for epoch in range(10):
        collator.set_epoch(epoch)
        labels = collator([blocks[0]])["labels"][0]
        masked = {tokens[i] for i in range(len(tokens)) if labels[i] != IGNORE_INDEX}
        for a, b in [("北", "京"), ("中", "国"), ("首", "都"), ("学", "校"), ("苹", "果")]:
            assert (a in masked) == (b in masked), (epoch, masked)


def test_collator_pads_line_by_line_examples(tokenizer):
    collator = MLMCollator(tokenizer)
    batch = collator([{"input_ids": [2, 10, 11, 3]}, {"input_ids": [2, 12, 3]}])
    assert batch["input_ids"].shape == (2, 4)
    assert batch["attention_mask"].tolist()[1] == [1, 1, 1, 0]
    assert batch["labels"][1, 3] == IGNORE_INDEX


def test_sparse_head_loss_equals_dense_head_loss(tiny_config, tokenizer, corpus_lines):
    torch.manual_seed(0)
    sparse = SparseHeadBertForMaskedLM(tiny_config).eval()
    dense = BertForMaskedLM(tiny_config).eval()
    dense.load_state_dict(sparse.state_dict())
    blocks = prepare_mlm_dataset(
        datasets.Dataset.from_dict({"text": corpus_lines[:40]}), tokenizer, block_size=32
    )
    batch = MLMCollator(tokenizer, seed=0)([blocks[i] for i in range(6)])
    loss_sparse = sparse(**batch).loss
    loss_dense = dense(**batch).loss
    torch.testing.assert_close(loss_sparse, loss_dense, rtol=1e-5, atol=1e-6)
    # gradients agree too
    loss_sparse.backward()
    loss_dense.backward()
    for (name, p), q in zip(sparse.named_parameters(), dense.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-6, msg=name)
    # without labels it is the stock dense forward
    with torch.no_grad():
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        torch.testing.assert_close(sparse(**inputs).logits, dense(**inputs).logits)


def test_mlm_probability_out_of_range(tokenizer):
    with pytest.raises(ValueError, match="mlm_probability"):
        MLMCollator(tokenizer, mlm_probability=1.5)


def test_sinusoidal_positions_shift_by_one_linear_map(tiny_config):
    from toolkit import ToolkitInputError, init_position_embeddings
    from toolkit._surgery import sinusoidal_positions

    table = sinusoidal_positions(64, 32, rms=0.02).double()
    assert table.pow(2).mean().sqrt().item() == pytest.approx(0.02, rel=1e-6)
    for k in (1, 5):  # one matrix maps every position p to p + k: relative offsets are linear
        shift = torch.linalg.lstsq(table[:-k], table[k:]).solution
        torch.testing.assert_close(table[:-k] @ shift, table[k:], atol=1e-7, rtol=0)  # float32 table
    # A normal draw has no such map (its rows are nearly orthogonal): the residual is of the table's size.
    normal = torch.randn(64, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 0.02
    shift = torch.linalg.lstsq(normal[:-1], normal[1:]).solution
    assert (normal[:-1] @ shift - normal[1:]).pow(2).mean().sqrt() > 0.01

    model = BertForMaskedLM(tiny_config)
    before = model.bert.embeddings.position_embeddings.weight.detach().clone()
    init_position_embeddings(model, "random")  # the preset's own init, untouched and unrecorded
    assert torch.equal(model.bert.embeddings.position_embeddings.weight, before)
    assert not hasattr(model.config, "position_init")
    with pytest.raises(ToolkitInputError, match="must be one of"):
        init_position_embeddings(model, "rotary")
    sine = BertForMaskedLM(copy.deepcopy(tiny_config))  # a copy: the fixture's config is shared
    init_position_embeddings(sine, "sinusoidal")  # no size given: DEFAULT_POSITION_RMS, recorded
    assert (sine.config.position_init, sine.config.position_init_rms) == ("sinusoidal", 0.1)
    table = sine.bert.embeddings.position_embeddings.weight.detach()
    torch.testing.assert_close(table, sinusoidal_positions(*table.shape, rms=0.1))

    # The values themselves, by hand: column pair i of row p is (sin p*w_i, cos p*w_i), w_i = 10000^(-2i/dim);
    # an odd size ends with a lone sine column. Position 0's first cosine (cos 0 = 1) gives the scale.
    for dim in (32, 7):
        table = sinusoidal_positions(8, dim, rms=0.1).double()
        assert table.pow(2).mean().sqrt().item() == pytest.approx(0.1, rel=1e-6)
        table = table / table[0, 1]
        for p in range(8):
            for col in range(dim):
                angle = p * 10000.0 ** (-2 * (col // 2) / dim)
                expected = math.sin(angle) if col % 2 == 0 else math.cos(angle)
                assert table[p, col].item() == pytest.approx(expected, abs=1e-6), (dim, p, col)
    # Even size: every pair has mean square 1/2, so the scale is exactly rms * sqrt(2).
    assert sinusoidal_positions(8, 32, rms=0.1)[0, 1].item() == pytest.approx(0.1 * math.sqrt(2), rel=1e-6)
