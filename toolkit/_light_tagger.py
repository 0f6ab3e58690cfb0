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

Optionally (``--bigram_dim N``) each token also carries embeddings of its bigrams with its left and right
neighbours, the classic character-bigram feature of Chinese taggers: the bigrams of the training text seen
``--min_word_count`` times, kept as a sorted table of token-id pairs inside the model (a buffer saved with the
weights), so the stock tokenizer stays as it is and every other bigram shares one "unknown" row.

The model is a :class:`~transformers.PreTrainedModel` of model type ``toolkit_bilstm``, registered with the
``Auto`` classes when this module is imported (``import toolkit.taggers`` and any use of
:class:`~toolkit.NERTagger` do it): ``save_pretrained`` / ``from_pretrained`` work as for any model, without ``trust_remote_code``.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import pairwise

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
    "bigram_vocabulary",
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
        bigram_dim: width of each bigram embedding (0: none); the BiLSTM reads the token's embedding and
            its left and right bigrams' side by side.
        bigram_rows: known bigrams (the table has one more row, for every other bigram).
        bigram_base: the multiplier of the table's keys (``left * bigram_base + right``): the vocabulary size
            when the table was built, kept apart from ``vocab_size`` so that resizing the embeddings leaves the
            keys valid.
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
        bigram_dim: int = 0,
        bigram_rows: int = 0,
        bigram_base: int | None = None,
        **kwargs,
    ) -> None:
        self.vocab_size = vocab_size
        self.bigram_dim = bigram_dim
        self.bigram_rows = bigram_rows
        self.bigram_base = bigram_base if bigram_base is not None else vocab_size
        self.hidden_size = hidden_size
        self.lstm_hidden = lstm_hidden
        self.num_lstm_layers = num_lstm_layers
        self.dropout = dropout
        self.max_position_embeddings = max_position_embeddings  # no position limit; NERTagger reads this
        super().__init__(pad_token_id=pad_token_id, **kwargs)


class BiLSTMForTokenClassification(PreTrainedModel):
    """Embeddings (and bigram embeddings) → dropout → BiLSTM (padding packed away) → dropout → tag scores per
    token."""

    config_class = BiLSTMTaggerConfig
    base_model_prefix = "tagger"
    accepts_loss_kwargs = False  # a plain mean per batch: the Trainer scales it (see toolkit._tagger_heads)

    def __init__(self, config: BiLSTMTaggerConfig) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        self.embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.bigram_embeddings = (
            nn.Embedding(config.bigram_rows + 1, config.bigram_dim) if config.bigram_dim > 0 else None
        )
        if self.bigram_embeddings is not None:
            # The known bigrams as sorted keys left * bigram_base + right (bigram_base: the vocabulary size the
            # table was built with); row i + 1 of bigram_embeddings is key i's.
            self.register_buffer("bigram_keys", torch.zeros(config.bigram_rows, dtype=torch.long))
        self.dropout = nn.Dropout(config.dropout)
        self.lstm = nn.LSTM(
            config.hidden_size + 2 * max(config.bigram_dim, 0),
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

    def bigram_ids(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows of ``bigram_embeddings`` for each token's bigram with its left and right neighbour (padding
        beyond either end); 0 for a bigram not in the table."""
        input_ids = input_ids.long()  # the keys outgrow int32
        pad = self.config.pad_token_id
        left = nn.functional.pad(input_ids[:, :-1], (1, 0), value=pad)
        right = nn.functional.pad(input_ids[:, 1:], (0, 1), value=pad)
        base = self.config.bigram_base
        return self._bigram_row(left * base + input_ids), self._bigram_row(input_ids * base + right)

    def _bigram_row(self, keys: torch.Tensor) -> torch.Tensor:
        table = self.bigram_keys
        if table.numel() == 0:
            return torch.zeros_like(keys)
        at = torch.searchsorted(table, keys).clamp_(max=table.numel() - 1)
        return torch.where(table[at] == keys, at + 1, torch.zeros_like(at))

    def forward(self, input_ids=None, attention_mask=None, labels=None, **kwargs) -> TokenClassifierOutput:
        hidden = self.embeddings(input_ids)
        if self.bigram_embeddings is not None:
            left, right = self.bigram_ids(input_ids)
            hidden = torch.cat([hidden, self.bigram_embeddings(left), self.bigram_embeddings(right)], dim=-1)
        hidden = self.dropout(hidden)
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


def bigram_vocabulary(
    tokenizer: PreTrainedTokenizerFast, sentences: Iterable[Sequence[str]], *, min_count: int = 2
) -> tuple[np.ndarray, dict]:
    """The bigram table of the light tagger (``--bigram_dim``): every pair of adjacent token ids in
    ``sentences`` as the tagger reads them (``[CLS]`` first, ``[SEP]`` last, each word as the tokenizer splits
    it), seen at least ``min_count`` times, as sorted keys ``left * vocabulary size + right``.

    Returns:
        ``(keys int64, report)``: the report counts distinct and kept bigrams and the share of the text's
        bigram occurrences the table covers.
    """
    from ._tagging import word_pieces

    sentences = [list(s) for s in sentences]
    flat = [w for s in sentences for w in s]
    pieces = iter(word_pieces(flat, tokenizer))
    vocab_size = max(tokenizer.get_vocab().values()) + 1
    counts: Counter[int] = Counter()
    for sentence in sentences:
        ids = [tokenizer.cls_token_id]
        for _ in sentence:
            ids.extend(next(pieces))
        ids.append(tokenizer.sep_token_id)
        counts.update(a * vocab_size + b for a, b in pairwise(ids))
    keys = np.array(sorted(k for k, n in counts.items() if n >= min_count), dtype=np.int64)
    total = sum(counts.values())
    covered = sum(counts[int(k)] for k in keys)
    report = {
        "distinct": len(counts),
        "kept": len(keys),
        "min_count": min_count,
        "occurrences_covered": round(covered / total, 4) if total else 0.0,
    }
    logger.info(
        "Bigram table: %d of %d distinct bigrams seen %d+ times, covering %.1f%% of the training text's bigrams",
        len(keys),
        len(counts),
        min_count,
        100 * report["occurrences_covered"],
    )
    return keys, report


def new_light_tagger(
    tokenizer: PreTrainedTokenizerFast,
    labels: Sequence[str],
    *,
    embedding_dim: int,
    lstm_hidden: int,
    dropout: float,
    vectors: VectorSet | None = None,
    bigram_dim: int = 0,
    bigram_keys: np.ndarray | None = None,
) -> tuple[BiLSTMForTokenClassification, dict]:
    """A fresh light tagger for ``tokenizer``'s vocabulary and ``labels``, its embeddings from ``vectors`` when
    given (their dimension wins over ``embedding_dim``; see :func:`embedding_from_vectors`), and bigram
    embeddings ``bigram_dim`` wide for the table ``bigram_keys`` (:func:`bigram_vocabulary`) when
    ``bigram_dim`` is positive.

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
    if bigram_dim < 0:
        raise ToolkitInputError(f"--bigram_dim must be 0 (none) or a width, got {bigram_dim}")
    keys = np.zeros(0, dtype=np.int64) if bigram_keys is None or bigram_dim == 0 else np.asarray(bigram_keys)
    base = max(vocab.values()) + 1
    if len(keys) and not (np.all(keys[1:] > keys[:-1]) and keys[0] >= 0 and keys[-1] < base * base):
        raise ToolkitInputError(
            "the bigram table must hold sorted, distinct keys left * vocabulary size + right "
            "(see bigram_vocabulary) for this tokenizer"
        )
    config = BiLSTMTaggerConfig(
        vocab_size=base,
        hidden_size=dim,
        lstm_hidden=lstm_hidden,
        dropout=dropout,
        bigram_dim=bigram_dim,
        bigram_rows=len(keys),
        bigram_base=base,
        pad_token_id=tokenizer.pad_token_id,
        id2label=dict(enumerate(labels)),
        label2id={lab: i for i, lab in enumerate(labels)},
    )
    model = BiLSTMForTokenClassification(config)
    if model.bigram_embeddings is not None:
        model.bigram_keys.copy_(torch.from_numpy(keys.astype(np.int64)))
    report: dict = {"embeddings": "random", "dim": dim}
    if vectors is not None:
        weight, report = embedding_from_vectors(vectors, vocab)
        with torch.no_grad():
            model.embeddings.weight.copy_(torch.from_numpy(weight))
    return model, report
