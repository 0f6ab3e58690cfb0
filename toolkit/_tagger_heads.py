"""Output layers of the NER recipe beyond the stock token classifier: a CRF (``--crf true``: learned transition
scores, sequence log-likelihood, Viterbi decoding) and a BiLSTM between the encoder and the tag scores
(``--bilstm_hidden N``: the "BERT-BiLSTM-CRF" setup), for any token-classification model.

How they are saved, and what loads them:

- The model stays an instance of its stock class (``BertForTokenClassification``, ...) with the extra layers as
  submodules (``crf.*``, ``bilstm.*``, ``bilstm_classifier.*``) and ``config.tagger_head`` saying which. It is
  saved by ``save_pretrained`` like any model: one ``model.safetensors``, the stock ``architectures`` name.
- :func:`load_token_classifier` (used by :class:`~toolkit.NERTagger`) rebuilds the layers from the config and
  loads every weight; no ``trust_remote_code``.
- A stock ``AutoModelForTokenClassification`` / ``pipeline("token-classification")`` loads the same directory
  as its emission model: the encoder and the stock ``classifier``, ignoring the extra weights (it logs them as
  unused). With a CRF alone that classifier *is* the CRF's emission layer, so the pipeline loses the learned
  transitions (each token takes its best tag). With a BiLSTM the stock classifier is trained beside it on the
  encoder's output (a per-token cross-entropy added to the loss), so the pipeline still tags, without the
  BiLSTM and the CRF. Model cards say which.

Training windows: the CRF's sequence is the words a window owns (their first sub-tokens carry the labels and
are contiguous), so a long sentence trains as several sequences and decodes as one, after its windows' word
scores are merged (:func:`~toolkit.ner.word_scores`).
"""

from __future__ import annotations

import os
from functools import cache

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from transformers import AutoConfig, PreTrainedModel
from transformers.modeling_outputs import TokenClassifierOutput
from transformers.models.auto.modeling_auto import MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING

from ._crf import CRF, gather_words
from ._errors import ToolkitInputError
from ._tagging import IGNORE_INDEX, bio_transitions

__all__ = ["attach_tagger_head", "crf_scores", "has_tagger_head", "head_description", "load_token_classifier"]


def _labels(config) -> list[str]:
    id2label = {int(k): v for k, v in config.id2label.items()}
    return [id2label[i] for i in range(len(id2label))]


def run_bilstm(lstm: nn.LSTM, hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """A bidirectional LSTM over each row's unpadded positions (right padding, from ``attention_mask``; padding
    never enters the backward direction); padded positions come out as zeros."""
    if attention_mask is None:
        lengths = torch.full((hidden.shape[0],), hidden.shape[1], dtype=torch.long)
    else:
        lengths = attention_mask.sum(-1).clamp(min=1).long()
    packed = pack_padded_sequence(hidden, lengths.cpu(), batch_first=True, enforce_sorted=False)
    out, _ = lstm(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=hidden.shape[1])
    return out


def token_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-token cross-entropy over the labelled positions (``IGNORE_INDEX`` elsewhere), as the stock heads."""
    return nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX)


class _TaggerHead:
    """Mixed in before a stock token-classification class (see :func:`_head_class`)."""

    # The loss is a plain mean per batch: the Trainer must scale it for gradient accumulation and processes
    # (a forward taking **kwargs would otherwise be trusted to normalise by num_items_in_batch itself).
    accepts_loss_kwargs = False

    def _build_tagger_head(self) -> None:
        head = self.config.tagger_head
        hidden = head.get("bilstm_hidden") or 0
        dropout = head.get("dropout", 0.1)
        if hidden:
            self.bilstm = nn.LSTM(self.config.hidden_size, hidden, batch_first=True, bidirectional=True)
            self.bilstm_dropout = nn.Dropout(dropout)
            self.bilstm_classifier = nn.Linear(2 * hidden, self.config.num_labels)
        if head.get("crf"):
            allowed, may_start = bio_transitions(_labels(self.config))
            self.crf = CRF(self.config.num_labels, allowed, may_start)

    def forward(self, input_ids=None, attention_mask=None, labels=None, **kwargs):
        head = self.config.tagger_head
        kwargs.pop("return_dict", None)
        kwargs.pop("num_items_in_batch", None)
        if head.get("bilstm_hidden"):
            encoded = self.base_model(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
            hidden = self.bilstm_dropout(encoded[0])
            stock_logits = self.classifier(hidden)  # what a stock pipeline runs
            out = run_bilstm(self.bilstm, hidden, attention_mask)
            logits = self.bilstm_classifier(self.bilstm_dropout(out))
        else:
            logits = super().forward(input_ids=input_ids, attention_mask=attention_mask, **kwargs).logits
            stock_logits = None
        loss = None
        if labels is not None:
            if head.get("crf"):
                loss = self.crf.nll(*gather_words(logits, labels, IGNORE_INDEX))
            else:
                loss = token_loss(logits, labels)
            if stock_logits is not None:
                loss = loss + token_loss(stock_logits, labels)
        return TokenClassifierOutput(loss=loss, logits=logits)


@cache
def _head_class(base: type[PreTrainedModel]) -> type[PreTrainedModel]:
    """``base`` with the tagger head mixed in. It keeps the stock class's name, so a saved config names the
    stock architecture; its ``__init__`` builds the layers ``config.tagger_head`` names (for loading)."""

    def __init__(self, config, *args, **kwargs):
        base.__init__(self, config, *args, **kwargs)
        self._build_tagger_head()

    return type(base.__name__, (_TaggerHead, base), {"__init__": __init__, "__module__": base.__module__})


def _stock_class(config) -> type[PreTrainedModel]:
    try:
        return MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING[type(config)]
    except KeyError:
        raise ToolkitInputError(
            f"model type {config.model_type!r} has no token-classification class in transformers"
        ) from None


def has_tagger_head(config) -> bool:
    return bool(getattr(config, "tagger_head", None))


def attach_tagger_head(model: PreTrainedModel, *, crf: bool, bilstm_hidden: int = 0) -> PreTrainedModel:
    """Give a freshly loaded token classifier a CRF and/or a BiLSTM (new layers with PyTorch's default
    initialisation; the CRF's transitions start at zero, forbidden BIO transitions masked). No-op when
    neither is asked for.

    Raises:
        ToolkitInputError: a negative ``bilstm_hidden``, or the model's labels are not all set.
    """
    if bilstm_hidden < 0:
        raise ToolkitInputError(f"--bilstm_hidden must be 0 (none) or positive, got {bilstm_hidden}")
    if isinstance(model, _TaggerHead):
        raise ToolkitInputError(
            "the model already has tagger layers: attach them to a stock token classifier"
        )
    if not crf and not bilstm_hidden:
        # A checkpoint fine-tuned with these layers passes its config on: the new model has none of them.
        if hasattr(model.config, "tagger_head"):
            del model.config.tagger_head
        return model
    dropout = getattr(model.config, "classifier_dropout", None)
    if dropout is None:
        dropout = getattr(model.config, "hidden_dropout_prob", 0.1)
    model.config.tagger_head = {
        "crf": bool(crf),
        "bilstm_hidden": int(bilstm_hidden),
        "dropout": float(dropout),
    }
    model.__class__ = _head_class(type(model))
    model._build_tagger_head()
    return model


def load_token_classifier(model_dir: str | os.PathLike) -> PreTrainedModel:
    """A saved token classifier with its CRF/BiLSTM layers if it has them (else the stock class), in eval mode.

    Raises:
        ToolkitInputError: no loadable config at ``model_dir``.
    """
    from . import _light_tagger  # noqa: F401  (registers the BiLSTM encoder's model type)

    try:
        config = AutoConfig.from_pretrained(str(model_dir))
    except (OSError, ValueError) as err:
        raise ToolkitInputError(f"cannot load a model config from {str(model_dir)!r}: {err}") from None
    cls = _stock_class(config)
    if has_tagger_head(config):
        cls = _head_class(cls)
    model, info = cls.from_pretrained(str(model_dir), config=config, output_loading_info=True)
    missing = [k for k in info.get("missing_keys", []) if k.startswith(("crf.", "bilstm"))]
    if missing:
        raise ToolkitInputError(
            f"{model_dir}: its config names CRF / BiLSTM layers (tagger_head) but the weights lack {missing[:4]}: "
            "the directory was re-saved without them; retrain, or delete tagger_head from config.json to use the "
            "emission model alone"
        )
    if "bigram_keys" in info.get("missing_keys", []) and getattr(config, "bigram_rows", 0):
        raise ToolkitInputError(
            f"{model_dir}: its config names a bigram table of {config.bigram_rows} rows but the weights lack "
            "bigram_keys (the directory was re-saved without its buffers): retrain it"
        )
    model.eval()
    crf = getattr(model, "crf", None)
    if isinstance(crf, CRF):
        # from_pretrained builds the model without initialising what the checkpoint does not hold: the CRF's
        # constraints (not saved, they follow from the labels) are set again here.
        allowed, may_start = bio_transitions(_labels(config))
        with torch.no_grad():
            crf.allowed.copy_(torch.as_tensor(allowed))
            crf.may_start.copy_(torch.as_tensor(may_start))
    return model


def crf_scores(model) -> tuple | None:
    """``(transitions, start, end)`` of a model's CRF for :func:`~toolkit.decode_tags` (numpy, ``-inf`` where a
    transition or start is forbidden), or ``None`` without a CRF."""
    crf = getattr(model, "crf", None)
    return crf.numpy_scores() if isinstance(crf, CRF) else None


def head_description(config) -> str:
    """The tagger's output layers in words (for logs and cards)."""
    head = getattr(config, "tagger_head", None) or {}
    parts = []
    if head.get("bilstm_hidden"):
        parts.append(f"BiLSTM ({head['bilstm_hidden']} per direction)")
    parts.append("CRF (learned transitions, Viterbi decoding)" if head.get("crf") else "softmax per token")
    return " + ".join(parts)
