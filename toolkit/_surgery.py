"""Weight surgery on a model before training: freezing, and the start of its embedding tables (a sinusoidal
position table for a fresh model; rescaled word tables, a raised position table and uniform top-layer
attention for a pretrained one). Each function takes plain keyword arguments and reports what it did."""

from __future__ import annotations

import logging
import math

import torch
from transformers import PreTrainedModel

from ._checkpoint import base_model
from ._errors import ToolkitInputError

logger = logging.getLogger(__name__)


def freeze_parameters(model: PreTrainedModel, *, embeddings: bool = False, layers: int = 0) -> int:
    """Freeze the embeddings and/or the first ``layers`` encoder layers. Returns the frozen parameter count.

    Raises:
        ToolkitInputError: more layers than the model has.
    """
    base = base_model(model)
    n_layers = model.config.num_hidden_layers
    if layers > n_layers:
        raise ToolkitInputError(f"--freeze_layers {layers} but the model has {n_layers} layers")
    modules = []
    if embeddings:
        modules.append(base.embeddings)
    if layers:
        modules.extend(base.encoder.layer[:layers])
    frozen = 0
    for module in modules:
        for p in module.parameters():
            if p.requires_grad:
                p.requires_grad = False
                frozen += p.numel()
    if frozen:
        logger.info("Froze %d parameters (embeddings=%s, first %d layers)", frozen, embeddings, layers)
    return frozen


def _rms(weight: torch.Tensor) -> float:
    """Root mean square of a weight, in fp32, outside autograd."""
    return weight.detach().float().pow(2).mean().sqrt().item()


def rescale_embeddings(model: PreTrainedModel, rms: float) -> float:
    """Scale a BERT-style embedding layer down, without changing what it computes, so that its word
    embeddings' root mean square is at most ``rms``.

    The word, position and token-type tables are summed and then layer-normalised, so multiplying all three by
    the same factor leaves the layer's output unchanged (up to the normalisation's epsilon, ~1e-12 against a
    variance of ~4e-4 at RMS 0.02). What it changes is the pace of fine-tuning: Adam moves each weight by
    about the learning rate per step whatever its size, so a table that pretraining grew from RMS 0.02 to 0.4
    turns 20 times more slowly than a freshly initialised one at the same rate, and a model that is mostly
    embedding table (the ``tiny`` preset: 1.6 M of its 2.0 M parameters) then fine-tunes more slowly than
    its own random-init twin. Tables already at or below ``rms`` are left as they are (factor 1.0), so a
    random-init model is unchanged.

    Args:
        model: a BERT-style model whose base has ``embeddings.word_embeddings`` and ``embeddings.LayerNorm``
            (BERT, RoBERTa, ELECTRA, ...).
        rms: the largest word-embedding RMS to keep; positive.

    Returns:
        The factor applied (1.0 where nothing changed).

    Raises:
        ToolkitInputError: ``rms`` not positive, or a model without that layout.

    Example:
        >>> import torch
        >>> from transformers import BertConfig, BertModel
        >>> model = BertModel(BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        ...     intermediate_size=64, vocab_size=100))
        >>> with torch.no_grad():
        ...     _ = model.embeddings.word_embeddings.weight.mul_(10)
        >>> round(rescale_embeddings(model, 0.02), 1)
        0.1
    """
    if not rms > 0:
        raise ToolkitInputError(f"--embedding_rms must be positive, got {rms}")
    embeddings = getattr(base_model(model), "embeddings", None)
    word = getattr(embeddings, "word_embeddings", None)
    if not isinstance(word, torch.nn.Embedding) or not isinstance(
        getattr(embeddings, "LayerNorm", None), torch.nn.LayerNorm
    ):
        raise ToolkitInputError(
            f"--embedding_rms needs a BERT-style embedding layer (embeddings.word_embeddings followed by "
            f"embeddings.LayerNorm); {type(model).__name__} has none"
        )
    current = _rms(word.weight)
    if current <= rms:
        logger.info(
            "Word-embedding RMS %.4f is within --embedding_rms %g: embeddings unchanged", current, rms
        )
        return 1.0
    factor = rms / current
    tables = [
        table.weight
        for name in ("word_embeddings", "position_embeddings", "token_type_embeddings")
        if isinstance(table := getattr(embeddings, name, None), torch.nn.Embedding)
    ]
    with torch.no_grad():
        for weight in tables:
            weight.mul_(factor)
    logger.info(
        "Embedding tables scaled by %.4f (word-embedding RMS %.4f -> %g; %d tables, same output)",
        factor,
        current,
        rms,
        len(tables),
    )
    return factor


def raise_position_embeddings(model: PreTrainedModel, ratio: float, positions: int | None = None) -> float:
    """Scale a BERT-style position table up until its RMS is at least ``ratio`` times the word table's.

    The word and position tables are summed before the embedding layer norm, so their relative size is how
    much of what the first layer sees is content and how much is order. A fresh initialisation draws both at
    the same scale (ratio 1); masked-LM pretraining of the small presets grows the word table to about three
    times the position table's size (Chinese ``tiny``: RMS 0.45 against 0.15), so a fine-tuned tagger starts
    from inputs in which order is a faint signal, where the random-init twin starts from a strong one. This
    brings the position table back to ``ratio`` times the word table's RMS. It changes the model's function
    (the encoder sees a stronger position signal than it was pretrained on), so it is a fine-tuning choice to
    measure, not a reparametrisation like :func:`rescale_embeddings` (which keeps the ratio: the two compose
    in either order).

    Args:
        model: a BERT-style model whose base has ``embeddings.word_embeddings`` and
            ``embeddings.position_embeddings`` (absolute positions).
        ratio: the smallest position/word RMS ratio to keep; positive.
        positions: measure the position table's RMS over its first ``positions`` rows (the ones fine-tuning
            uses; rows past the pretraining length never trained); default all. The whole table is scaled.

    Returns:
        The factor applied to the position table (1.0 where nothing changed).

    Raises:
        ToolkitInputError: ``ratio`` or ``positions`` not positive, or a model without that layout.

    Example:
        >>> import torch
        >>> from transformers import BertConfig, BertModel
        >>> model = BertModel(BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        ...     intermediate_size=64, vocab_size=100))
        >>> with torch.no_grad():
        ...     _ = model.embeddings.position_embeddings.weight.mul_(0.25)
        >>> round(raise_position_embeddings(model, 1.0), 0)
        4.0
    """
    if not ratio > 0:
        raise ToolkitInputError(f"--position_rms_ratio must be positive, got {ratio}")
    if positions is not None and positions < 1:
        raise ToolkitInputError(f"positions must be at least 1, got {positions}")
    embeddings = getattr(base_model(model), "embeddings", None)
    word = getattr(embeddings, "word_embeddings", None)
    position = getattr(embeddings, "position_embeddings", None)
    if not isinstance(word, torch.nn.Embedding) or not isinstance(position, torch.nn.Embedding):
        raise ToolkitInputError(
            f"--position_rms_ratio needs a BERT-style embedding layer with an absolute position table "
            f"(embeddings.word_embeddings and embeddings.position_embeddings); {type(model).__name__} has none"
        )
    word_rms = _rms(word.weight)
    position_rms = _rms(position.weight[:positions])
    if position_rms <= 0:
        raise ToolkitInputError("--position_rms_ratio: the position table is all zeros; nothing to scale")
    if position_rms >= ratio * word_rms:
        logger.info(
            "Position-table RMS %.4f is at least %g x the word table's %.4f: position table unchanged",
            position_rms,
            ratio,
            word_rms,
        )
        return 1.0
    factor = ratio * word_rms / position_rms
    with torch.no_grad():
        position.weight.mul_(factor)
    logger.info(
        "Position table scaled by %.3f (RMS %.4f -> %.4f, %g x the word table's %.4f; the model's output changes)",
        factor,
        position_rms,
        position_rms * factor,
        ratio,
        word_rms,
    )
    return factor


def adjust_embeddings(
    model: PreTrainedModel,
    *,
    embedding_rms: float | None = None,
    position_rms_ratio: float | None = None,
    max_length: int | None = None,
) -> tuple[dict, dict]:
    """Apply the fine-tuning options that act on a loaded model's embedding tables, in order:
    ``embedding_rms`` (:func:`rescale_embeddings`, same function) then ``position_rms_ratio``
    (:func:`raise_position_embeddings`, measured over the first ``max_length`` positions).

    Returns:
        ``(report, card)``: the factors applied, for the loading report (``embedding_scale``,
        ``position_scale``), and the options set, for the model card's hyperparameter table; both empty when
        neither option is set.
    """
    report, card = {}, {}
    if embedding_rms is not None:
        report["embedding_scale"] = rescale_embeddings(model, embedding_rms)
        card["embedding RMS cap"] = embedding_rms
    if position_rms_ratio is not None:
        report["position_scale"] = raise_position_embeddings(model, position_rms_ratio, max_length)
        card["position/word RMS floor"] = position_rms_ratio
    return report, card


def uniform_top_attention(model: PreTrainedModel) -> int:
    """Zero the query projection of the top encoder layer, so that its attention starts uniform.

    With zero queries every attention score in that layer is 0, so the attention output at each position,
    ``[CLS]`` included, starts as the average of the layer's values over the unmasked tokens (the layer's
    residual path and feed-forward block still carry the position's own state). A model pretrained by masked-LM
    alone has never used its ``[CLS]`` output: what the pretrained attention puts there need not summarise
    the input (on ChnSentiCorp a linear probe on the ``[CLS]`` vector of the Chinese ``tiny`` model scores
    no higher than on a random-init model's, while on mean-pooled vectors it scores 5 points higher), and the
    sequence classifier reads only ``[CLS]``. Started this way it reads the mean of the pretrained features
    from the first step. Fine-tuning learns the queries back: their gradient is not zero, because the keys
    are not (with every layer frozen, ``--freeze_layers`` = the model's depth, they stay zero for good). Only
    the top layer is changed, and only at the start, so the saved model is a stock one; for token
    classification, which reads every position of the top layer, the option makes no sense.

    Args:
        model: a BERT-style model (BERT, RoBERTa, ELECTRA, ...: ``encoder.layer[-1].attention.self.query``).

    Returns:
        The number of parameters set to zero.

    Raises:
        ToolkitInputError: a model without that layout.

    Example:
        >>> from transformers import BertConfig, BertForSequenceClassification
        >>> model = BertForSequenceClassification(BertConfig(hidden_size=32, num_hidden_layers=2,
        ...     num_attention_heads=2, intermediate_size=64, vocab_size=100))
        >>> uniform_top_attention(model)
        1056
    """
    base = base_model(model)
    try:
        query = base.encoder.layer[-1].attention.self.query
    except (AttributeError, IndexError, TypeError):
        raise ToolkitInputError(
            f"--uniform_top_attention needs a BERT-style encoder (encoder.layer[-1].attention.self.query); "
            f"{type(model).__name__} has none"
        ) from None
    with torch.no_grad():
        for p in query.parameters():
            p.zero_()
    zeroed = sum(p.numel() for p in query.parameters())
    logger.info("Top encoder layer's attention queries zeroed (%d parameters): it starts uniform", zeroed)
    return zeroed


POSITION_INITS = ("random", "sinusoidal")


DEFAULT_POSITION_RMS = 0.1  # the size measured to end the English plateau early (benchmarks/RESULTS.md)


def check_position_init(scheme: str, rms: float | None) -> None:
    """Reject an unknown ``--position_init`` scheme or a non-positive ``--position_init_rms``.

    Raises:
        ToolkitInputError: naming the flag and the value.
    """
    if scheme not in POSITION_INITS:
        raise ToolkitInputError(f"--position_init must be one of {', '.join(POSITION_INITS)}, got {scheme!r}")
    if rms is not None and rms <= 0:
        raise ToolkitInputError(f"--position_init_rms must be positive, got {rms}")


def sinusoidal_positions(num_positions: int, dim: int, rms: float) -> torch.Tensor:
    """Transformer sine/cosine position table (Vaswani et al., 2017), scaled to root-mean-square ``rms``.

    Column pair ``(2i, 2i + 1)`` of row ``p`` holds ``sin(p * w_i)`` and ``cos(p * w_i)`` with
    ``w_i = 10000^(-2i / dim)``; an odd ``dim`` ends with a lone sine column. The row for position ``p + k`` is
    a fixed rotation of the row for ``p``: one linear map of the query or key lets attention look ``k`` tokens
    back at every position, which a random table only allows position by position. The slowest pairs barely
    turn over a few hundred positions, so part of the table is a near-constant vector shared by all positions.
    """
    position = torch.arange(num_positions, dtype=torch.float64).unsqueeze(1)
    frequency = torch.exp(torch.arange(0, dim, 2, dtype=torch.float64) * (-math.log(10000.0) / dim))
    table = torch.zeros(num_positions, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency[: dim // 2])
    return (table * (rms / table.pow(2).mean().sqrt())).float()


def init_position_embeddings(model, scheme: str, rms: float | None = None) -> None:
    """Re-initialise a fresh BERT's absolute position embeddings in place.

    ``"random"`` leaves the preset's normal init (std ``initializer_range``) and records nothing.
    ``"sinusoidal"`` starts the (still trainable) table from :func:`sinusoidal_positions` at root-mean-square
    ``rms`` (default :data:`DEFAULT_POSITION_RMS`, 0.1) and records ``config.position_init`` and
    ``config.position_init_rms``, so a random-init twin can be started the same way.

    Raises:
        ToolkitInputError: an unknown scheme or a non-positive ``rms``.
    """
    check_position_init(scheme, rms)
    if scheme == "random":
        return
    rms = DEFAULT_POSITION_RMS if rms is None else rms
    weight = base_model(model).embeddings.position_embeddings.weight
    with torch.no_grad():
        weight.copy_(sinusoidal_positions(weight.shape[0], weight.shape[1], rms).to(weight.dtype))
    model.config.position_init, model.config.position_init_rms = scheme, rms
