"""Dynamic masking for masked-LM training: token-level, whole-word or a mix, 80/10/10 replacement.

Masks are drawn from a generator seeded by (seed, epoch, batch contents), not from the global RNG. The
same batch in the same epoch is therefore masked the same way whether the run was interrupted and resumed
or not, on any number of processes, and each epoch still sees fresh masks (dynamic masking).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from transformers import PreTrainedTokenizerBase, TrainerCallback

from ._errors import ToolkitInputError

IGNORE_INDEX = -100  # the label of a position that takes no loss (PyTorch's cross-entropy default)


def check_masking_options(*, mlm_probability: float, whole_word_mask: bool, whole_word_share: float) -> None:
    """The one check of the masking options, for the collator and the recipe's pre-flight alike.

    Raises:
        ToolkitInputError: a rate outside its range, or a whole-word share without whole-word masking.
    """
    if not 0.0 < mlm_probability < 1.0:
        raise ToolkitInputError(f"--mlm_probability must be in (0, 1), got {mlm_probability}")
    if not 0.0 <= whole_word_share <= 1.0:
        raise ToolkitInputError(f"--whole_word_share must be in [0, 1], got {whole_word_share}")
    if whole_word_share != 1.0 and not whole_word_mask:
        raise ToolkitInputError("--whole_word_share only applies with --whole_word_mask true")


def mask_tokens(
    input_ids: torch.Tensor,
    *,
    special_mask: torch.Tensor,
    mask_token_id: int,
    random_token_ids: torch.Tensor,
    mlm_probability: float = 0.15,
    word_starts: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    mask_replace_prob: float = 0.8,
    random_replace_prob: float = 0.1,
    whole_word_share: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Choose positions to predict and corrupt them (BERT's 80% ``[MASK]`` / 10% random / 10% unchanged).

    Args:
        input_ids: ``(batch, length)`` token ids.
        special_mask: ``(batch, length)`` bool, True for ``[CLS]``, ``[SEP]``, ``[PAD]`` (never selected).
        mask_token_id: id of ``[MASK]``.
        random_token_ids: ids a position may be replaced with in the "random" case (special tokens excluded).
        mlm_probability: selection probability per token (per word with ``word_starts``).
        word_starts: ``(batch, length)`` 1 where a token begins a word: all tokens of a selected word are
            selected together (whole-word masking).
        generator: random generator (for reproducible masks).
        mask_replace_prob: share of selected positions replaced with ``[MASK]``.
        random_replace_prob: share replaced with a random token (the rest keep their token).
        whole_word_share: with ``word_starts``, the share of words drawn as a unit (selected whole with
            ``mlm_probability``); the tokens of the other words are drawn one by one, each with
            ``mlm_probability``. 1.0 is plain whole-word masking; in between mixes the two, word by word.

    Returns:
        ``(corrupted_ids, labels)``: labels hold the original id at selected positions and -100 elsewhere.
        Every row with at least one maskable token has at least one selected position.
    """
    batch, length = input_ids.shape
    whole = None  # per token: is its word drawn as a unit (mixed masking only)
    if word_starts is not None:
        # Word index of each token; a random draw per word, gathered back to its tokens.
        word_index = torch.cumsum(word_starts.to(torch.long), dim=1) - 1
        word_of_token = word_index.clamp(min=0)
        word_draw = torch.rand((batch, length), generator=generator)
        draw = torch.gather(word_draw, 1, word_of_token)
        if whole_word_share < 1.0:
            # One coin per word: heads, the word is drawn as a unit; tails, each of its tokens on its own.
            coin = torch.rand((batch, length), generator=generator)
            whole = torch.gather(coin, 1, word_of_token) < whole_word_share
            draw = torch.where(whole, draw, torch.rand((batch, length), generator=generator))
    else:
        draw = torch.rand((batch, length), generator=generator)
    draw = draw.masked_fill(special_mask, 2.0)
    selected = draw < mlm_probability
    # A row with nothing selected would contribute no loss: select its lowest-draw token instead.
    empty = ~selected.any(dim=1) & ~special_mask.all(dim=1)
    if empty.any():
        chosen = draw.argmin(dim=1, keepdim=True)
        fallback = torch.zeros_like(selected).scatter_(1, chosen, True)
        if word_starts is not None:
            word_fallback = (word_index == torch.gather(word_index, 1, chosen)) & ~special_mask
            if whole is None:
                fallback = word_fallback
            else:  # the whole word, unless mixed masking drew that word token by token
                fallback = torch.where(torch.gather(whole, 1, chosen), word_fallback, fallback)
        selected |= fallback & empty.unsqueeze(1)
    labels = input_ids.masked_fill(~selected, IGNORE_INDEX)
    action = torch.rand((batch, length), generator=generator)
    to_mask = selected & (action < mask_replace_prob)
    to_random = selected & (action >= mask_replace_prob) & (action < mask_replace_prob + random_replace_prob)
    corrupted = input_ids.masked_fill(to_mask, mask_token_id)
    n_random = int(to_random.sum())
    if n_random:
        picks = torch.randint(len(random_token_ids), (n_random,), generator=generator)
        corrupted[to_random] = random_token_ids[picks]
    return corrupted, labels


def _content_seed(input_ids: torch.Tensor, seed: int, epoch: int) -> int:
    # A cheap polynomial hash of the batch: deterministic, differs between batches and between ranks.
    weights = torch.arange(1, input_ids.numel() + 1, dtype=torch.int64).remainder_(1_000_003) + 1
    content = int((input_ids.reshape(-1).to(torch.int64) * weights).sum().remainder(2**31 - 1))
    return (seed * 1_000_003 + epoch * 7_919 + content) % (2**62)


@dataclass
class MLMCollator:
    """Pad a batch and mask it for masked-LM training.

    Features are dicts with ``input_ids`` (and ``word_starts`` for whole-word masking). Features that
    already carry ``labels`` (a pre-masked evaluation set) are only padded.

    Args:
        tokenizer: supplies the special token ids.
        mlm_probability: share of tokens (or words) selected.
        whole_word_mask: mask all pieces of a word together (needs ``word_starts``).
        whole_word_share: with ``whole_word_mask``, the share of words drawn as a unit (the rest token by
            token; see :func:`mask_tokens`).
        seed: base seed of the mask generator.
        pad_to_multiple_of: pad lengths to a multiple of this (tensor-core friendly on GPUs).

    Example:
        >>> collator = MLMCollator(tokenizer)  # doctest: +SKIP
        >>> batch = collator([{"input_ids": [2, 10, 11, 3]}])  # doctest: +SKIP
    """

    tokenizer: PreTrainedTokenizerBase
    mlm_probability: float = 0.15
    whole_word_mask: bool = False
    whole_word_share: float = 1.0
    seed: int = 42
    pad_to_multiple_of: int | None = None
    epoch: int = 0
    _special_ids: torch.Tensor = field(init=False, repr=False)
    _random_ids: torch.Tensor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_masking_options(
            mlm_probability=self.mlm_probability,
            whole_word_mask=self.whole_word_mask,
            whole_word_share=self.whole_word_share,
        )
        if self.tokenizer.mask_token_id is None or self.tokenizer.pad_token_id is None:
            raise ToolkitInputError("the tokenizer needs a mask token and a pad token for masked-LM training")
        special = sorted(set(self.tokenizer.all_special_ids))
        self._special_ids = torch.tensor(special, dtype=torch.long)
        allowed = torch.ones(len(self.tokenizer), dtype=torch.bool)
        allowed[self._special_ids[self._special_ids < len(allowed)]] = False
        self._random_ids = allowed.nonzero().squeeze(1)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _pad(self, rows: Sequence[Sequence[int]], value: int) -> torch.Tensor:
        length = max(len(r) for r in rows)
        if self.pad_to_multiple_of:
            length = -(-length // self.pad_to_multiple_of) * self.pad_to_multiple_of
        out = torch.full((len(rows), length), value, dtype=torch.long)
        for i, r in enumerate(rows):
            out[i, : len(r)] = torch.as_tensor(r, dtype=torch.long)
        return out

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        pad_id = self.tokenizer.pad_token_id
        input_ids = self._pad([f["input_ids"] for f in features], pad_id)
        attention_mask = self._pad([[1] * len(f["input_ids"]) for f in features], 0)
        if "labels" in features[0]:
            labels = self._pad([f["labels"] for f in features], IGNORE_INDEX)
            return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
        word_starts = None
        if self.whole_word_mask:
            if "word_starts" not in features[0]:
                raise ValueError(
                    "whole_word_mask needs a 'word_starts' column: prepare data with whole_word_mask=True"
                )
            word_starts = self._pad([f["word_starts"] for f in features], 1)
        generator = torch.Generator().manual_seed(_content_seed(input_ids, self.seed, self.epoch))
        special_mask = torch.isin(input_ids, self._special_ids) | (attention_mask == 0)
        corrupted, labels = mask_tokens(
            input_ids,
            special_mask=special_mask,
            mask_token_id=self.tokenizer.mask_token_id,
            random_token_ids=self._random_ids,
            mlm_probability=self.mlm_probability,
            word_starts=word_starts,
            generator=generator,
            whole_word_share=self.whole_word_share,
        )
        return {"input_ids": corrupted, "attention_mask": attention_mask, "labels": labels}


def premask_for_eval(batch: dict, *, collator: MLMCollator) -> dict[str, list[list[int]]]:
    """``datasets.map`` function fixing the masks of an evaluation set once, so every evaluation (and every
    run with the same seed) scores the same positions and validation losses are comparable."""
    features = [{k: batch[k][i] for k in batch} for i in range(len(batch["input_ids"]))]
    out = collator(features)
    lengths = [len(f["input_ids"]) for f in features]
    return {
        "input_ids": [row[:n].tolist() for row, n in zip(out["input_ids"], lengths, strict=True)],
        "labels": [row[:n].tolist() for row, n in zip(out["labels"], lengths, strict=True)],
    }


class CollatorEpochCallback(TrainerCallback):
    """Tells the collator the current epoch so each epoch draws new masks (also after a resume)."""

    def __init__(self, collator: MLMCollator) -> None:
        self.collator = collator

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.collator.set_epoch(int((state.epoch or 0) + 1e-6))
