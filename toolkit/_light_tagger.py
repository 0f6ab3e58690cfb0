"""The light tagger of the NER recipe (``--encoder bilstm``): an embedding layer, a bidirectional LSTM and tag
scores (with the CRF of :mod:`toolkit._tagger_heads` by default): the classic BiLSTM-CRF, much faster on a CPU
than a transformer, and the classic use of extracted vectors (``--vectors``, a :class:`~toolkit.VectorSet`).

Its vocabulary is built from the training file: every word seen ``--min_word_count`` times, every word of the
vectors, and every character seen in training twice, as a word's first piece (``x``) and as a continuation
(``##x``). It is saved as a stock WordPiece tokenizer (``tokenizer.json``), so a known word is one token and an
unknown word is spelt in its characters, which the BiLSTM reads in order: the character-level signal for words
the vocabulary lacks. Rare training words are left out of the vocabulary on purpose, so that the model learns
to read spelt-out words during training. Chinese text is tagged by character, so there every word is a
character.

The model is a :class:`~transformers.PreTrainedModel` of model type ``toolkit_bilstm``, registered with the
``Auto`` classes when this module is imported (``import toolkit.taggers`` and any use of
:class:`~toolkit.NERTagger` do it): ``save_pretrained`` / ``from_pretrained`` work as for any model, without ``trust_remote_code``.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForTokenClassification,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)
from transformers.modeling_outputs import TokenClassifierOutput

from ._errors import ToolkitInputError
from ._tagger_heads import run_bilstm, token_loss
from ._text import fold_width
from ._tokenizer import SPECIAL_TOKEN_ROLES, SPECIAL_TOKENS
from ._vectors import VectorSet

__all__ = [
    "BiLSTMTaggerConfig",
    "BiLSTMForTokenClassification",
    "SPECIAL_TOKENS",
    "build_word_tokenizer",
    "embedding_from_vectors",
    "new_light_tagger",
]

logger = logging.getLogger(__name__)

MODEL_TYPE = "toolkit_bilstm"


class BiLSTMTaggerConfig(PretrainedConfig):
    """Configuration of :class:`BiLSTMForTokenClassification`.

    Args:
        vocab_size: rows of the embedding table.
        hidden_size: embedding width (the vectors' dimension when initialised from vectors).
        lstm_hidden: LSTM units per direction.
        num_lstm_layers: stacked BiLSTM layers.
        dropout: dropout on the embeddings and on the BiLSTM's output.
    """

    model_type = MODEL_TYPE

    def __init__(
        self,
        vocab_size: int = 100,
        hidden_size: int = 128,
        lstm_hidden: int = 128,
        num_lstm_layers: int = 1,
        dropout: float = 0.5,
        pad_token_id: int = 0,
        max_position_embeddings: int = 1_000_000,
        **kwargs,
    ) -> None:
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.lstm_hidden = lstm_hidden
        self.num_lstm_layers = num_lstm_layers
        self.dropout = dropout
        self.max_position_embeddings = max_position_embeddings  # no position limit; NERTagger reads this
        super().__init__(pad_token_id=pad_token_id, **kwargs)


class BiLSTMForTokenClassification(PreTrainedModel):
    """Embeddings → dropout → BiLSTM (padding packed away) → dropout → tag scores per token."""

    config_class = BiLSTMTaggerConfig
    base_model_prefix = "tagger"
    accepts_loss_kwargs = False  # a plain mean per batch: the Trainer scales it (see toolkit._tagger_heads)

    def __init__(self, config: BiLSTMTaggerConfig) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        self.embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.dropout = nn.Dropout(config.dropout)
        self.lstm = nn.LSTM(
            config.hidden_size,
            config.lstm_hidden,
            num_layers=config.num_lstm_layers,
            batch_first=True,
            bidirectional=True,
            dropout=config.dropout if config.num_lstm_layers > 1 else 0.0,
        )
        self.classifier = nn.Linear(2 * config.lstm_hidden, config.num_labels)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Embedding):
            bound = math.sqrt(
                3.0 / module.embedding_dim
            )  # unit-variance-per-row scale of the classic taggers
            with torch.no_grad():
                module.weight.uniform_(-bound, bound)
                if module.padding_idx is not None:
                    module.weight[module.padding_idx].zero_()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings = value

    def forward(self, input_ids=None, attention_mask=None, labels=None, **kwargs) -> TokenClassifierOutput:
        hidden = self.dropout(self.embeddings(input_ids))
        out = run_bilstm(self.lstm, hidden, attention_mask)
        logits = self.classifier(self.dropout(out))
        loss = token_loss(logits, labels) if labels is not None else None
        return TokenClassifierOutput(loss=loss, logits=logits)


AutoConfig.register(MODEL_TYPE, BiLSTMTaggerConfig, exist_ok=True)
AutoModelForTokenClassification.register(BiLSTMTaggerConfig, BiLSTMForTokenClassification, exist_ok=True)


# ------------------------------------------------------------------------------------------ vocabulary
def build_word_tokenizer(
    sentences: Iterable[Sequence[str]],
    *,
    min_count: int = 2,
    extra_words: Iterable[str] = (),
    max_length: int = 512,
) -> tuple[PreTrainedTokenizerFast, dict]:
    """The light tagger's tokenizer: a WordPiece vocabulary of whole words (seen ``min_count`` times in
    ``sentences``, or in ``extra_words``, e.g. the vectors' items) plus every training character as a first
    piece and as a ``##`` continuation, so an unknown word is spelt out rather than lost. Case is kept; words
    are folded to half-width like every NER input (:func:`~toolkit._text.fold_width`). When ``extra_words``
    are all lower case (an uncased model's vectors) each also joins in capitalised form (``paris`` and
    ``Paris``), the form names take in text.

    Returns:
        ``(tokenizer, report)`` with the counts of words, characters and vocabulary entries.

    Raises:
        ToolkitInputError: ``min_count`` below 1 or no words at all.
    """
    if min_count < 1:
        raise ToolkitInputError(f"--min_word_count must be at least 1, got {min_count}")
    words: Counter[str] = Counter()
    for sentence in sentences:  # a token holding a space could never come out of the whitespace split
        words.update(fold_width(w) for w in sentence if w and not any(c.isspace() for c in w))
    if not words:
        raise ToolkitInputError("the training file has no words to build the tagger's vocabulary from")
    chars = sorted({c for w in words for c in w})
    vocab: dict[str, int] = {t: i for i, t in enumerate(SPECIAL_TOKENS)}

    def add(token: str) -> None:
        if token not in vocab:
            vocab[token] = len(vocab)

    kept = sorted((w for w, n in words.items() if n >= min_count), key=lambda w: (-words[w], w))
    for w in kept:
        add(w)
    n_extra = len(vocab)
    extra = [fold_width(w) for w in extra_words if w and not any(c.isspace() for c in w)]
    uncased = bool(extra) and all(w == w.lower() for w in extra)
    for w in extra:
        add(w)
        if uncased and w[:1].isalpha() and w.capitalize() != w:
            add(w.capitalize())  # an uncased vector set: its words in the form names take, too
    n_extra = len(vocab) - n_extra
    for c in chars:
        add(c)
        add("##" + c)
    backend = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=1000))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.decoder = decoders.WordPiece()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, model_max_length=max_length, **SPECIAL_TOKEN_ROLES
    )
    report = {
        "training_words": len(words),
        "words_kept": len(kept),
        "min_word_count": min_count,
        "words_from_vectors": n_extra,
        "characters": len(chars),
        "vocabulary": len(vocab),
    }
    logger.info(
        "Tagger vocabulary: %d entries (%d of %d training words seen %d+ times, %d more from the vectors, %d "
        "characters, each also as a ## continuation)",
        len(vocab),
        len(kept),
        len(words),
        min_count,
        n_extra,
        len(chars),
    )
    return tokenizer, report


def embedding_from_vectors(vectors: VectorSet, vocab: dict[str, int]) -> tuple[np.ndarray, dict]:
    """Embedding rows for ``vocab`` from ``vectors``: an item's own vector, else its lower-cased form's (a
    vector set from an uncased model), else (continuation pieces ``##x``) the character's; the padding row
    zeros, ``[UNK]`` the mean vector, anything else random with the vectors' spread. Nothing is dropped: the
    report counts each kind and names examples of the random ones.

    Returns:
        ``(weight (len(vocab), dim) float32, report)``.
    """
    rng = np.random.default_rng(0)
    std = float(vectors.vectors.std()) or 0.1
    weight = rng.normal(0.0, std, size=(max(vocab.values()) + 1, vectors.dim)).astype(np.float32)
    exact = lowered = pieces = 0
    random_items: list[str] = []
    for token, i in vocab.items():
        if token in ("[PAD]", "[UNK]"):
            continue
        if token in vectors:
            weight[i] = vectors[token]
            exact += 1
        elif token.lower() in vectors:
            weight[i] = vectors[token.lower()]
            lowered += 1
        elif token.startswith("##") and len(token) > 2 and token[2:] in vectors:
            weight[i] = vectors[token[2:]]
            pieces += 1
        elif token not in SPECIAL_TOKENS:
            random_items.append(token)
    weight[vocab["[PAD]"]] = 0.0
    weight[vocab["[UNK]"]] = vectors.vectors.mean(axis=0)
    report = {
        "rows": len(vocab),
        "copied": exact,
        "copied_lowercased": lowered,
        "copied_for_continuation_pieces": pieces,
        "random": len(random_items),
        "random_examples": random_items[:20],
        "vectors_dim": vectors.dim,
    }
    logger.info(
        "Embeddings from vectors: %d rows copied (%d exact, %d lower-cased, %d continuation pieces), %d random "
        "(e.g. %s)",
        exact + lowered + pieces,
        exact,
        lowered,
        pieces,
        len(random_items),
        ", ".join(random_items[:5]) or "none",
    )
    return weight, report


def new_light_tagger(
    tokenizer: PreTrainedTokenizerFast,
    labels: Sequence[str],
    *,
    embedding_dim: int,
    lstm_hidden: int,
    dropout: float,
    vectors: VectorSet | None = None,
) -> tuple[BiLSTMForTokenClassification, dict]:
    """A fresh light tagger for ``tokenizer``'s vocabulary and ``labels``, its embeddings from ``vectors`` when
    given (their dimension wins over ``embedding_dim``; see :func:`embedding_from_vectors`).

    Returns:
        ``(model, report)``: the report of the embedding rows (``{"embeddings": "random"}`` without vectors).
    """
    if lstm_hidden < 1:
        raise ToolkitInputError(f"--lstm_hidden must be at least 1, got {lstm_hidden}")
    if not 0.0 <= dropout < 1.0:
        raise ToolkitInputError(f"--dropout must be in [0, 1), got {dropout}")
    vocab = tokenizer.get_vocab()
    dim = vectors.dim if vectors is not None else embedding_dim
    if dim < 1:
        raise ToolkitInputError(f"--embedding_dim must be at least 1, got {dim}")
    config = BiLSTMTaggerConfig(
        vocab_size=max(vocab.values()) + 1,
        hidden_size=dim,
        lstm_hidden=lstm_hidden,
        dropout=dropout,
        pad_token_id=tokenizer.pad_token_id,
        id2label=dict(enumerate(labels)),
        label2id={lab: i for i, lab in enumerate(labels)},
    )
    model = BiLSTMForTokenClassification(config)
    report: dict = {"embeddings": "random", "dim": dim}
    if vectors is not None:
        weight, report = embedding_from_vectors(vectors, vocab)
        with torch.no_grad():
            model.embeddings.weight.copy_(torch.from_numpy(weight))
    return model, report
