"""BERT masked-LM with a sparse prediction head for training, saved as a plain ``BertForMaskedLM``.

The stock ``BertForMaskedLM`` projects every position onto the vocabulary and takes the loss over all of
them, though only ~15% carry a label. Here the head runs only at labelled positions: with a 20k-30k
vocabulary that removes most of the head's matmul and the softmax over ``batch × length × vocab`` logits.
The parameters are exactly ``BertForMaskedLM``'s, so saved weights load into the stock class unchanged.
"""

from __future__ import annotations

import json
import logging
import os

import torch
import torch.nn.functional as F
from transformers import BertConfig, BertForMaskedLM
from transformers.modeling_outputs import MaskedLMOutput

from ._errors import ToolkitInputError
from ._masking import IGNORE_INDEX

logger = logging.getLogger(__name__)
HEAD_ROWS_MULTIPLE = 64


class SparseHeadBertForMaskedLM(BertForMaskedLM):
    """``BertForMaskedLM`` whose training forward computes head and loss only where ``labels != -100``.

    With ``labels`` the returned ``logits`` have shape ``(n_labelled, vocab)`` (rows in row-major order of
    the labelled positions); without ``labels`` the forward is the stock dense one, so ``pipeline("fill-mask")``
    and generation-free inference behave as usual. ``save_pretrained`` writes ``BertForMaskedLM`` as the
    architecture.
    """

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs,
    ) -> MaskedLMOutput:
        if labels is None:
            return super().forward(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=token_type_ids,
                position_ids=position_ids,
                inputs_embeds=inputs_embeds,
                **kwargs,
            )
        # Under gradient accumulation Trainer passes the labelled-token count of the whole accumulated
        # batch; normalising by it makes the loss independent of how the batch was split.
        num_items = kwargs.pop("num_items_in_batch", None)
        outputs = self.bert(
            input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            return_dict=True,
            **kwargs,
        )
        hidden = outputs[0]
        flat_labels = labels.reshape(-1)
        positions = (flat_labels != IGNORE_INDEX).nonzero().squeeze(1)
        n_labelled = positions.numel()
        # The head's row count rounded up to a multiple of HEAD_ROWS_MULTIPLE (the extra rows repeat position
        # 0 and are ignored by the loss): a few distinct matmul shapes instead of a new one almost every
        # step, each of which oneDNN would cache with its own buffers (memory growing with the steps run).
        extra = -n_labelled % HEAD_ROWS_MULTIPLE
        if extra:
            positions = torch.cat([positions, positions.new_zeros(extra)])
        selected = hidden.reshape(-1, hidden.size(-1)).index_select(0, positions)
        logits = self.cls(selected)
        targets = flat_labels.index_select(0, positions)
        targets[n_labelled:] = IGNORE_INDEX
        if num_items is None:
            loss = F.cross_entropy(logits, targets, ignore_index=IGNORE_INDEX)
        else:
            loss = F.cross_entropy(logits, targets, ignore_index=IGNORE_INDEX, reduction="sum") / num_items
        return MaskedLMOutput(loss=loss, logits=logits[:n_labelled])

    def save_pretrained(self, save_directory: str | os.PathLike, *args, **kwargs) -> None:
        super().save_pretrained(save_directory, *args, **kwargs)
        # The training-time class is an implementation detail: the saved model is a stock BertForMaskedLM.
        if kwargs.get("is_main_process", True):
            self.config.architectures = ["BertForMaskedLM"]
            path = os.path.join(save_directory, "config.json")
            if os.path.isfile(path):
                with open(path, encoding="utf-8") as fh:
                    data = json.load(fh)
                data["architectures"] = ["BertForMaskedLM"]
                with open(path, "w", encoding="utf-8") as fh:
                    json.dump(data, fh, indent=2, sort_keys=True)
                    fh.write("\n")


def build_mlm_model(
    *,
    config: BertConfig | None = None,
    checkpoint: str | os.PathLike | None = None,
    sparse_head: bool = True,
    attn_implementation: str = "sdpa",
) -> BertForMaskedLM:
    """Create a masked-LM model from a config (random init) or continue from a BERT checkpoint.

    Args:
        config: a ``BertConfig`` (e.g. from :func:`toolkit.load_preset`) for a model trained from scratch.
        checkpoint: a BERT model directory or hub id to continue pretraining from; a bare encoder
            (``BertModel``, e.g. a sentence-transformers directory) gets a fresh MLM head, said in the log.
        sparse_head: use :class:`SparseHeadBertForMaskedLM` (fast); ``False`` gives the stock class.
        attn_implementation: ``"sdpa"`` (PyTorch scaled-dot-product attention) or ``"eager"``.

    Returns:
        The model.

    Raises:
        ToolkitInputError: both or neither of ``config`` and ``checkpoint``, or a non-BERT checkpoint.
    """
    if (config is None) == (checkpoint is None):
        raise ToolkitInputError("give exactly one of a size preset (config) and a checkpoint")
    cls = SparseHeadBertForMaskedLM if sparse_head else BertForMaskedLM
    if config is not None:
        return cls._from_config(config, attn_implementation=attn_implementation)
    try:
        loaded_config = BertConfig.from_pretrained(str(checkpoint))
    except (OSError, ValueError) as err:
        raise ToolkitInputError(f"cannot read a model config from {str(checkpoint)!r}: {err}") from None
    if loaded_config.model_type != "bert":
        raise ToolkitInputError(
            f"{str(checkpoint)!r} is a {loaded_config.model_type!r} model; masked-LM pretraining here supports BERT"
        )
    # A bare encoder (a BertModel, e.g. a sentence-transformers directory) loads too: its weights fill
    # `bert.*`, and the MLM head starts fresh. Said here, as transformers' load report is easily missed.
    model, info = cls.from_pretrained(
        str(checkpoint), attn_implementation=attn_implementation, output_loading_info=True
    )
    missing = sorted(info["missing_keys"])
    if any(k.startswith("cls.predictions.") for k in missing):
        tied = " (its decoder tied to the word embeddings)" if loaded_config.tie_word_embeddings else ""
        logger.warning("no MLM head in %s: a fresh head is initialised%s", checkpoint, tied)
    encoder_missing = [k for k in missing if not k.startswith("cls.")]
    if encoder_missing:
        logger.warning(
            "%s lacks %d encoder weights, initialised at random: %s",
            checkpoint,
            len(encoder_missing),
            ", ".join(encoder_missing[:10]) + (" ..." if len(encoder_missing) > 10 else ""),
        )
    return model
