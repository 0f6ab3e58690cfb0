from __future__ import annotations

import datasets
import pytest
import torch
from transformers import BertForMaskedLM

from toolkit import IGNORE_INDEX, MLMCollator, SparseHeadBertForMaskedLM, mask_tokens, prepare_mlm_dataset


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


def test_whole_words_are_masked_together():
    g = torch.Generator().manual_seed(2)
    ids = torch.randint(5, 100, (100, 60))
    starts = torch.zeros_like(ids)
    starts[:, ::3] = 1  # words of three pieces
    _, labels = mask_tokens(
        ids,
        special_mask=torch.zeros_like(ids, dtype=torch.bool),
        mask_token_id=4,
        random_token_ids=torch.arange(5, 100),
        word_starts=starts,
        mlm_probability=0.15,
        generator=g,
    )
    selected = (labels != IGNORE_INDEX).view(100, 20, 3)
    assert ((selected.sum(-1) == 0) | (selected.sum(-1) == 3)).all()
    assert 0.12 < selected.float().mean().item() < 0.18


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
