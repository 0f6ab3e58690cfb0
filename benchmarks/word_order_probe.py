#!/usr/bin/env python
"""Does a masked-LM use word order? Its validation MLM loss with and without the tokens of each block shuffled.

A model that has only learned which words occur together (the "bag-of-words" stage of MLM training) scores
the same on shuffled blocks; one that uses position and syntax scores much worse on them. The gap (shuffled
minus normal loss, in nats) is the figure; it is printed and written to JSON.

    python -m benchmarks.word_order_probe --model outputs/results_en_tiny/pretrain_tiny_en \\
        --files ../shared/data/reuters21578_raw/test.txt
    python -m benchmarks.word_order_probe --model outputs/results_zh_tiny/pretrain_tiny_zh --segmenter jieba \\
        --files ../shared/data/zhwiki_sample ../shared/data/cluecorpussmall_sample --validation_split 0.02

Blocks are packed as in pretraining (128 tokens, whole-word boundaries); masks are drawn once with a fixed
seed, so two models with the same tokenizer are scored on the same positions. The shuffle permutes every
position of a block, masked ones included, keeping each label with its token.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import datasets
import torch
import torch.nn.functional as F

from toolkit import MLMCollator, load_corpus, prepare_mlm_dataset
from toolkit.pretrain import IGNORE_INDEX, iter_texts, premask_for_eval


def masked_loss(
    model, input_ids: torch.Tensor, labels: torch.Tensor, *, pad_id: int, batch_size: int
) -> tuple[float, int]:
    """Summed cross-entropy over labelled positions, and their count (padding is attended to by no one)."""
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(input_ids), batch_size):
            x, y = input_ids[i : i + batch_size], labels[i : i + batch_size]
            logits = model(input_ids=x, attention_mask=(x != pad_id).long()).logits
            total += F.cross_entropy(
                logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="sum", ignore_index=IGNORE_INDEX
            ).item()
            count += int((y != IGNORE_INDEX).sum())
    return total, count


def probe(
    model_dir: str,
    files: list[str],
    *,
    segmenter: str | None = None,
    validation_split: float = 0.0,
    n_blocks: int = 400,
    block_size: int = 128,
    batch_size: int = 100,
    seed: int = 0,
) -> dict:
    """Validation MLM loss (whole-word and token masking) and the whole-word loss on shuffled blocks.

    ``files`` are scored whole, or with ``validation_split`` only the documents pretraining held out with the
    same fraction (the split is by content hash).
    """
    from transformers import AutoTokenizer, BertForMaskedLM

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = BertForMaskedLM.from_pretrained(model_dir).eval()
    corpus, _ = load_corpus(train_files=files, validation_split=validation_split)
    split = corpus["validation"] if validation_split else corpus["train"]
    texts = datasets.Dataset.from_dict({"text": list(iter_texts(split, limit=20 * n_blocks))})
    blocks = prepare_mlm_dataset(
        texts, tokenizer, block_size=block_size, whole_word_mask=True, segmenter=segmenter
    )
    blocks = blocks.select(range(min(n_blocks, len(blocks))))
    generator = torch.Generator().manual_seed(seed)
    result: dict = {"model": model_dir, "files": files, "n_blocks": len(blocks)}
    for name, whole_word in (("whole_word", True), ("token", False)):
        collator = MLMCollator(tokenizer, mlm_probability=0.15, whole_word_mask=whole_word, seed=seed + 7)
        masked = blocks.map(
            premask_for_eval,
            batched=True,
            fn_kwargs={"collator": collator},
            remove_columns=blocks.column_names,
        )
        ids, labels = torch.tensor(masked["input_ids"]), torch.tensor(masked["labels"])
        total, count = masked_loss(model, ids, labels, pad_id=tokenizer.pad_token_id, batch_size=batch_size)
        result[f"{name}_loss"] = round(total / count, 4)
        if whole_word:
            perm = torch.stack([torch.randperm(ids.size(1), generator=generator) for _ in range(len(ids))])
            total, count = masked_loss(
                model,
                ids.gather(1, perm),
                labels.gather(1, perm),
                pad_id=tokenizer.pad_token_id,
                batch_size=batch_size,
            )
            result["whole_word_loss_shuffled"] = round(total / count, 4)
            result["n_labelled"] = count
    result["word_order_gap"] = round(result["whole_word_loss_shuffled"] - result["whole_word_loss"], 4)
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="a BertForMaskedLM directory (with its tokenizer)")
    parser.add_argument(
        "--files", nargs="+", required=True, help="validation text (files, directories, globs)"
    )
    parser.add_argument("--segmenter", default=None, help="jieba for Chinese whole-word masking")
    parser.add_argument(
        "--validation_split",
        type=float,
        default=0.0,
        help="score only the documents a pretraining run with this --validation_split held out",
    )
    parser.add_argument("--blocks", type=int, default=400, help="blocks scored")
    parser.add_argument("--block_size", type=int, default=128, help="tokens per block, as in pretraining")
    parser.add_argument("--output", default=None, help="JSON file (default: <model>/word_order_probe.json)")
    opts = parser.parse_args(argv)
    result = probe(
        opts.model,
        opts.files,
        segmenter=opts.segmenter,
        validation_split=opts.validation_split,
        n_blocks=opts.blocks,
        block_size=opts.block_size,
    )
    out = Path(opts.output or Path(opts.model) / "word_order_probe.json")
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(
        f"{opts.model}: MLM loss {result['whole_word_loss']:.3f} (whole-word masking), "
        f"{result['whole_word_loss_shuffled']:.3f} with positions shuffled: word-order gap "
        f"{result['word_order_gap']:.3f} nats; token masking {result['token_loss']:.3f}  -> {out}"
    )
    return result


if __name__ == "__main__":
    main()
