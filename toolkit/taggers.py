"""The NER recipe's taggers beyond a stock token classifier, for use from Python: the CRF output layer, the
BiLSTM layer, the light BiLSTM-CRF tagger (``train_ner.py --encoder bilstm``) and the loader that rebuilds any
of them from a saved directory. Importing this module registers the light tagger's model type
(``toolkit_bilstm``) with transformers' ``Auto`` classes, so that a stock ``pipeline`` loads it too.

Example:
    >>> from toolkit.taggers import load_token_classifier  # doctest: +SKIP
    >>> model = load_token_classifier("outputs/ner/light")  # doctest: +SKIP
"""

from __future__ import annotations

from ._crf import CRF, viterbi
from ._light_tagger import (
    BiLSTMForTokenClassification,
    BiLSTMTaggerConfig,
    bigram_vocabulary,
    build_word_tokenizer,
    embedding_from_vectors,
    new_light_tagger,
)
from ._tagger_heads import attach_tagger_head, crf_scores, head_description, load_token_classifier

__all__ = [
    "CRF",
    "BiLSTMForTokenClassification",
    "BiLSTMTaggerConfig",
    "attach_tagger_head",
    "bigram_vocabulary",
    "build_word_tokenizer",
    "crf_scores",
    "embedding_from_vectors",
    "head_description",
    "load_token_classifier",
    "new_light_tagger",
    "viterbi",
]
