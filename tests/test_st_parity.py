"""encode_sentences gives SentenceTransformer.encode's vectors on sentence-transformers directories.

The directories are built here from a tiny random BERT and a WordPiece tokenizer (nothing is downloaded),
in the two layouts found in practice: as the hub's all-MiniLM-L6-v2 has it (``max_seq_length`` and
``do_lower_case`` in ``sentence_bert_config.json``, a tokenizer that neither truncates at that window nor
lower-cases, legacy ``pooling_mode_*`` booleans) and as sentence-transformers 6 saves it (window and
lower-casing baked into the tokenizer files, ``pooling_mode`` as a name). The window is 16 tokens, so the
long English and Chinese texts are truncated, and the 512 positions of the model would let them through.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("sentence_transformers")

from sentence_transformers import SentenceTransformer  # noqa: E402
from sentence_transformers.sentence_transformer import modules as st_modules  # noqa: E402
from transformers import BertConfig, BertModel  # noqa: E402

from toolkit import ToolkitInputError, encode_sentences, load_encoder  # noqa: E402
from toolkit._tokenizer import SPECIAL_TOKENS, build_wordpiece_tokenizer  # noqa: E402

WINDOW = 16  # tokens, [CLS] and [SEP] included
HIDDEN = 32

LONG_EN = (
    "The Quick brown fox jumps over the lazy dog and then runs into the big green Park where many children "
    "play football every Sunday afternoon while their parents sit on the old wooden benches and talk"
)
LONG_ZH = (
    "今天天气很好，我们一起去公园散步，看到很多人在跑步和打球。晚上回家做饭，吃完饭以后看了一会儿书，"
    "然后给远方的朋友写了一封长长的信，讲述这个城市里发生的新鲜事情。"
)
# 14 words + [CLS] + [SEP] = the window exactly; one word more is truncated (the window counts them).
FITS = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen"
ONE_OVER = FITS + " fifteen"
TEXTS = [
    "The Cat sat on the MAT",
    "a dog ran in the park",
    "我们在公园散步",
    "Hello 世界 and Friends",
    FITS,
    ONE_OVER,
    LONG_EN,
    LONG_ZH,
    LONG_EN.upper(),
    LONG_ZH + " " + LONG_EN,
    LONG_EN[:90],
]
N_LONG = 6  # ONE_OVER, LONG_EN, LONG_ZH, LONG_EN.upper(), the mix, LONG_EN[:90]


def _vocab() -> list[str]:
    text = " ".join(TEXTS).lower()
    chars = sorted({c for c in text if not c.isspace()})
    words = sorted({w.strip(",.，。") for w in text.split() if w.isascii()} - {""} - set(chars))
    letters = "abcdefghijklmnopqrstuvwxyz"
    return [*SPECIAL_TOKENS, *chars, *(f"##{c}" for c in letters), *words]


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory) -> Path:
    """A tiny random BERT (512 positions) and a tokenizer that does NOT lower-case (lowercase vocabulary:
    upper-case words become [UNK] unless do_lower_case is honoured) with a model_max_length of 512."""
    directory = tmp_path_factory.mktemp("tiny_bert")
    vocab = _vocab()
    tokenizer = build_wordpiece_tokenizer(vocab, lowercase=False, model_max_length=512)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        initializer_range=0.3,  # at BERT's 0.02 a random model's [CLS] vector hardly depends on the text
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    assert tokenizer.tokenize("The Cat") == ["[UNK]", "[UNK]"]  # lower-casing matters for these texts
    assert len(tokenizer(LONG_EN)["input_ids"]) > 2 * WINDOW
    assert len(tokenizer(LONG_ZH)["input_ids"]) > 2 * WINDOW
    assert len(tokenizer(FITS)["input_ids"]) == WINDOW
    return directory


LEGACY_POOLING = {
    "mean": "pooling_mode_mean_tokens",
    "cls": "pooling_mode_cls_token",
    "max": "pooling_mode_max_tokens",
}


def write_legacy_dir(
    base: Path, out: Path, pooling: dict, *, normalize: bool, sbert: dict | None = None
) -> Path:
    """The layout of the hub's all-MiniLM-L6-v2: weights and tokenizer at the root, the window and
    lower-casing only in sentence_bert_config.json, the pooling as legacy booleans."""
    out.mkdir(parents=True)
    for f in base.iterdir():
        (out / f.name).write_bytes(f.read_bytes())
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if normalize:
        modules.append(
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}
        )
    (out / "modules.json").write_text(json.dumps(modules, indent=2))
    sbert = {"max_seq_length": WINDOW, "do_lower_case": True} if sbert is None else sbert
    (out / "sentence_bert_config.json").write_text(json.dumps(sbert, indent=2))
    (out / "1_Pooling").mkdir()
    legacy = dict.fromkeys([*LEGACY_POOLING.values(), "pooling_mode_mean_sqrt_len_tokens"], False)
    (out / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": HIDDEN, **legacy, **pooling}, indent=2)
    )
    return out


def save_native_dir(base: Path, out: Path, pooling: str, *, normalize: bool) -> Path:
    """A directory saved by sentence-transformers 6 itself."""
    transformer = st_modules.Transformer(str(base), max_seq_length=WINDOW, do_lower_case=True)
    stack = [transformer, st_modules.Pooling(HIDDEN, pooling)]
    if normalize:
        stack.append(st_modules.Normalize())
    SentenceTransformer(modules=stack, device="cpu").save(str(out))
    return out


def st_vectors(directory: Path, texts: list[str]) -> np.ndarray:
    return SentenceTransformer(str(directory), device="cpu").encode(
        texts, convert_to_numpy=True, batch_size=4
    )


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def assert_parity(directory: Path, *, normalize: bool, texts: list[str] = TEXTS) -> np.ndarray:
    report: dict = {}
    ours = encode_sentences(directory, texts, batch_size=4, report=report)
    theirs = st_vectors(directory, texts)
    cos = cosines(ours, theirs)
    worst = sorted((round(float(c), 5), t[:30]) for c, t in zip(cos, texts, strict=True))[:4]
    assert cos.min() >= 0.9999, f"cosine with SentenceTransformer.encode below 0.9999: {worst}"
    assert report["max_length"] == WINDOW
    assert report["n_truncated"] == N_LONG
    norms = np.linalg.norm(ours, axis=1)
    np.testing.assert_allclose(norms, np.linalg.norm(theirs, axis=1), rtol=1e-4)
    if normalize:
        np.testing.assert_allclose(norms, 1.0, rtol=1e-5)
    else:
        assert np.all(np.abs(norms - 1.0) > 0.1)
    return ours


@pytest.mark.parametrize(
    ("pooling", "normalize"), [("mean", True), ("cls", True), ("max", True), ("mean", False), ("max", False)]
)
def test_parity_hub_layout(base_dir, tmp_path, pooling, normalize):
    directory = write_legacy_dir(
        base_dir, tmp_path / "st", {LEGACY_POOLING[pooling]: True}, normalize=normalize
    )
    assert_parity(directory, normalize=normalize)
    enc = load_encoder(directory)
    assert (enc.default_pooling, enc.normalize) == (pooling, normalize)
    assert enc.tokenizer.model_max_length == WINDOW
    assert enc.sentence_config["do_lower_case"] is True


@pytest.mark.parametrize(("pooling", "normalize"), [("mean", True), ("cls", False), ("max", True)])
def test_parity_saved_by_sentence_transformers(base_dir, tmp_path, pooling, normalize):
    directory = save_native_dir(base_dir, tmp_path / "st", pooling, normalize=normalize)
    assert_parity(directory, normalize=normalize)
    assert load_encoder(directory).default_pooling == pooling


def test_tokenizer_args_window_wins_over_max_seq_length_as_in_sentence_transformers(base_dir, tmp_path):
    sbert = {
        "max_seq_length": 2 * WINDOW,
        "do_lower_case": True,
        "tokenizer_args": {"model_max_length": WINDOW},
    }
    directory = write_legacy_dir(base_dir, tmp_path / "st", {}, normalize=True, sbert=sbert)
    assert_parity(directory, normalize=True)


def test_explicit_arguments_win_over_the_directory(base_dir, tmp_path, caplog):
    directory = write_legacy_dir(
        base_dir, tmp_path / "st", {"pooling_mode_mean_tokens": True}, normalize=True
    )
    with caplog.at_level(logging.INFO, logger="toolkit._encoder"):
        enc = load_encoder(directory)
    loaded = [r.getMessage() for r in caplog.records if "sentence-transformers directory" in r.getMessage()]
    assert len(loaded) == 1 and f"window {WINDOW} tokens" in loaded[0] and "normalize True" in loaded[0]
    default = encode_sentences(enc, TEXTS)
    raw = encode_sentences(enc, TEXTS, normalize=False)
    assert np.all(np.abs(np.linalg.norm(raw, axis=1) - 1.0) > 0.1)
    np.testing.assert_allclose(raw / np.linalg.norm(raw, axis=1, keepdims=True), default, atol=1e-5)
    report: dict = {}
    wide = encode_sentences(enc, TEXTS, max_length=64, report=report)
    assert report["max_length"] == 64
    assert report["n_truncated"] < N_LONG
    assert cosines(wide, default)[TEXTS.index(LONG_EN)] < 0.9999  # the long text is encoded further
    cls = encode_sentences(enc, TEXTS, pooling="cls")
    assert cosines(cls, default).min() < 0.9999


@pytest.mark.parametrize(
    "pooling",
    [
        {"pooling_mode_weightedmean_tokens": True},
        {"pooling_mode_lasttoken": True},
        {"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": True},  # concatenated
        {"pooling_mode": ["mean", "max"]},
    ],
)
def test_unsupported_pooling_is_an_input_error_unless_pooling_is_given(base_dir, tmp_path, pooling):
    directory = write_legacy_dir(base_dir, tmp_path / "st", pooling, normalize=False)
    enc = load_encoder(directory)  # token-level extraction still works with such a checkpoint
    with pytest.raises(ToolkitInputError, match=r"1_Pooling.config\.json.*not supported.*pass pooling="):
        encode_sentences(enc, ["a dog"])
    assert encode_sentences(enc, ["a dog"], pooling="mean").shape == (1, HIDDEN)


def test_malformed_sentence_transformers_files(base_dir, tmp_path):
    directory = write_legacy_dir(base_dir, tmp_path / "st", {}, normalize=False)
    (directory / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": "long"}))
    with pytest.raises(ToolkitInputError, match=r"sentence_bert_config\.json: max_seq_length"):
        load_encoder(directory)
    (directory / "modules.json").write_text("{not json")
    with pytest.raises(ToolkitInputError, match=r"modules\.json"):
        load_encoder(directory)
