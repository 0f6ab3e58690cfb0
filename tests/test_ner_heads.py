"""The NER recipe's output layers and light tagger end to end on tiny models: ``--crf``, ``--bilstm_hidden``,
``--encoder bilstm`` with and without ``--vectors``; what NERTagger and a stock pipeline load from each saved
directory; the option checks; width folding."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import is_valid_bio
from safetensors.torch import load_file, save_file
from transformers import AutoTokenizer, pipeline

from recipes import train_ner
from toolkit import NERTagger, ToolkitInputError, VectorSet, read_conll
from toolkit._tagging import bio_transitions, decode_tags, word_pieces
from toolkit._text import fold_width
from toolkit.demo import write_demo_labelled
from toolkit.ner import CRF_DECODING
from toolkit.taggers import (
    CRF,
    attach_tagger_head,
    bigram_vocabulary,
    build_word_tokenizer,
    load_token_classifier,
    new_light_tagger,
)


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    return write_demo_labelled(tmp_path_factory.mktemp("labelled"), n=120)


def _flags(labelled, out: Path, *extra: str) -> list[str]:
    return [
        "--train_file", str(labelled["ner_train"]),
        "--validation_file", str(labelled["ner_dev"]),
        "--test_file", str(labelled["ner_test"]),
        "--output_dir", str(out),
        "--max_steps", "8",
        "--per_device_train_batch_size", "8",
        "--report_to", "none",
        "--save_strategy", "no",
        "--disable_tqdm", "true",
        "--seed", "3",
        *extra,
    ]  # fmt: skip


def _predicted(out: Path) -> list[list[str]]:
    blocks = (out / "test_predictions.conll").read_text(encoding="utf-8").strip().split("\n\n")
    return [[line.split("\t")[2] for line in block.splitlines()] for block in blocks]


HEADS = {
    "crf": ("--crf", "true"),
    "bilstm_crf": ("--crf", "true", "--bilstm_hidden", "8"),
    "bilstm": ("--bilstm_hidden", "8"),
}


@pytest.fixture(scope="module", params=list(HEADS))
def transformer_run(request, tiny_mlm_dir, labelled, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param)
    extra = (
        "--model_name_or_path",
        str(tiny_mlm_dir),
        "--max_length",
        "12",
        "--stride",
        "3",
        *HEADS[request.param],
    )
    results = train_ner.main(_flags(labelled, out, *extra))
    return request.param, out, results


def test_transformer_heads_end_to_end(transformer_run, labelled):
    """Each head trains, scores with its decoding, saves one stock-named model directory, and NERTagger (with the
    training window) gives exactly the recipe's predictions, merged over windows, valid BIO."""
    name, out, results = transformer_run
    crf = "crf" in name
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["BertForTokenClassification"]
    assert config["tagger_head"]["crf"] is crf
    assert config["tagger_head"]["bilstm_hidden"] == (8 if "bilstm" in name else 0)
    assert results["test"]["decoding"] == (CRF_DECODING if crf else "most probable valid BIO sequence")
    assert results["alignment"]["train"]["n_windowed_sentences"] > 0  # 12-token windows split sentences
    tagger = NERTagger(out)
    assert (
        tagger.model.accepts_loss_kwargs is False
    )  # the Trainer scales the loss for accumulation / processes
    assert (tagger.crf is not None) is crf
    assert hasattr(tagger.model, "bilstm") is ("bilstm" in name)
    sentences = read_conll(labelled["ner_test"])
    expected = tagger.predict_words([s.tokens for s in sentences])
    assert _predicted(out) == expected
    assert all(is_valid_bio(tags) for tags in expected)
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "loses" in card and "NERTagger" in card


def test_a_stock_pipeline_loads_the_emission_model(transformer_run):
    """A stock pipeline loads the emission part (encoder + the stock classifier) and tags."""
    _, out, _ = transformer_run
    ner = pipeline("token-classification", model=str(out), aggregation_strategy="first", device=-1)
    entities = ner("张三在北京工作。")
    assert isinstance(entities, list) and all(e["entity_group"] in ("LOC", "PER") for e in entities)


def test_crf_decoding_in_the_tagger_is_the_crf_layers_viterbi(tiny_tagger_dir, tmp_path):
    """A saved CRF tagger reloads with its learned scores and BIO constraints (rebuilt from the labels), and
    decode_tags with them gives the CRF module's own batched Viterbi path."""
    model = attach_tagger_head(load_token_classifier(tiny_tagger_dir), crf=True)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in (model.crf.transitions, model.crf.start, model.crf.end):
            p.normal_()
    model.save_pretrained(tmp_path / "crf")
    AutoTokenizer.from_pretrained(tiny_tagger_dir).save_pretrained(tmp_path / "crf")
    tagger = NERTagger(tmp_path / "crf")
    assert torch.equal(tagger.model.crf.transitions, model.crf.transitions)
    assert torch.equal(tagger.model.crf.allowed, model.crf.allowed) and not tagger.model.crf.allowed.all()
    scores = np.random.default_rng(0).normal(size=(9, len(tagger.labels))).astype(np.float32)
    path = decode_tags(scores, tagger.labels, crf=tagger.crf)
    mask = torch.ones(1, 9, dtype=torch.bool)
    assert path == tagger.model.crf.decode(torch.from_numpy(scores)[None], mask)[0]
    assert decode_tags(scores, tagger.labels, constrained=False, crf=tagger.crf) == scores.argmax(-1).tolist()


# ----------------------------------------------------------------------------------------- light tagger
@pytest.fixture(scope="module")
def vectors_file(labelled, tmp_path_factory) -> tuple[Path, VectorSet]:
    words = sorted({w for s in read_conll(labelled["ner_train"]) for w in s.tokens})[:25]
    rng = np.random.default_rng(1)
    vs = VectorSet([*words, "未见"], rng.normal(size=(len(words) + 1, 16)).astype(np.float32))
    path = tmp_path_factory.mktemp("vectors") / "chars.vec"
    vs.save(path)
    return path, VectorSet.load(path)


@pytest.mark.parametrize("variant", ["random", "vectors", "bigrams"])
def test_light_tagger_end_to_end(variant, labelled, vectors_file, tmp_path):
    path, vectors = vectors_file
    with_vectors = variant == "vectors"
    out = tmp_path / "light"
    extra = (
        "--encoder",
        "bilstm",
        "--bilstm_hidden",
        "8",
        "--embedding_dim",
        "12",
        "--learning_rate",
        "1e-2",
    )
    frozen = ("--vectors", str(path), "--freeze_embeddings", "true") if with_vectors else ()
    bigrams = ("--bigram_dim", "6", "--min_word_count", "1") if variant == "bigrams" else ()
    results = train_ner.main(_flags(labelled, out, *extra, *frozen, *bigrams))
    embeddings = results["loading_report"]["embeddings"]
    if with_vectors:
        # Every vector's item is in the vocabulary and its row copied; the rest are counted, not dropped.
        assert embeddings["copied"] == len(vectors) and embeddings["vectors_dim"] == 16
        assert (
            embeddings["random"] > 0
            and embeddings["rows"] == results["loading_report"]["vocabulary"]["vocabulary"]
        )
    else:
        assert embeddings == {"embeddings": "random", "dim": 12}
    assert results["test"]["decoding"] == CRF_DECODING
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "toolkit_bilstm" and config["tagger_head"]["crf"] is True
    tagger = NERTagger(out)
    if with_vectors:  # frozen: the saved rows are still the vectors
        vocab = tagger.tokenizer.get_vocab()
        weight = tagger.model.embeddings.weight.detach().numpy()
        for token in vectors.tokens:
            np.testing.assert_array_equal(weight[vocab[token]], vectors[token])
    if variant == "bigrams":  # the table travels with the weights: the loaded model looks up the same rows
        table = results["loading_report"]["bigrams"]
        assert config["bigram_dim"] == 6 and config["bigram_rows"] == table["kept"] > 0
        train_words = [s.tokens for s in read_conll(labelled["ner_train"])]
        expected, _ = bigram_vocabulary(tagger.tokenizer, train_words, min_count=1)
        assert tagger.model.bigram_keys.tolist() == expected.tolist()  # saved, loaded, as built
        assert tagger.model.lstm.input_size == 12 + 2 * 6
    else:
        assert "bigram_rows" not in config or config["bigram_rows"] == 0
    sentences = read_conll(labelled["ner_test"])
    assert _predicted(out) == tagger.predict_words([s.tokens for s in sentences])
    spans = tagger("张三在北京工作。")
    assert all({"label", "start", "end", "text"} <= set(s) for s in spans)
    assert "toolkit_bilstm" in (out / "README.md").read_text(encoding="utf-8")
    # The toolkit registers the model type, so a stock pipeline loads it too (emission scores only).
    ner = pipeline("token-classification", model=str(out), aggregation_strategy="first", device=-1)
    assert isinstance(ner("张三在北京工作。"), list)


def test_light_tagger_rows_are_the_vectors(vectors_file):
    _, vectors = vectors_file
    tokenizer, report = build_word_tokenizer([["Paris", "is", "big"], ["is"]], extra_words=vectors.tokens)
    model, emb = new_light_tagger(
        tokenizer, ["O", "B-LOC", "I-LOC"], embedding_dim=4, lstm_hidden=4, dropout=0.1, vectors=vectors
    )
    vocab = tokenizer.get_vocab()
    weight = model.embeddings.weight.detach().numpy()
    for token in vectors.tokens:
        np.testing.assert_array_equal(weight[vocab[token]], vectors[token])
    assert np.all(weight[vocab["[PAD]"]] == 0)
    np.testing.assert_allclose(weight[vocab["[UNK]"]], vectors.vectors.mean(0), rtol=1e-6)
    assert emb["copied"] == len(vectors)
    cased = [t for t in vocab if t not in vectors and t.lower() in vectors]  # "Paris" from "paris"
    assert cased and emb["copied_lowercased"] == len(cased)
    assert emb["random"] == len(vocab) - 2 - 3 - len(vectors) - len(cased)  # less PAD/UNK, CLS/SEP/MASK


def test_bigram_table_and_lookup(tmp_path):
    sentences = [["北", "京", "大"], ["北", "京"], ["上", "海"]]
    tokenizer, _ = build_word_tokenizer(sentences, min_count=1)
    keys, report = bigram_vocabulary(tokenizer, sentences, min_count=2)
    vocab = tokenizer.get_vocab()
    size = max(vocab.values()) + 1
    cls, sep, pad = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id
    # [CLS] 北 京 大 [SEP], [CLS] 北 京 [SEP], [CLS] 上 海 [SEP]: only ([CLS], 北) and (北, 京) twice
    assert keys.tolist() == sorted([cls * size + vocab["北"], vocab["北"] * size + vocab["京"]])
    assert report == {"distinct": 8, "kept": 2, "min_count": 2, "occurrences_covered": 0.4}
    model, _ = new_light_tagger(
        tokenizer, ["O", "B-LOC"], embedding_dim=4, lstm_hidden=4, dropout=0.0, bigram_dim=3, bigram_keys=keys
    )
    row = {int(k): i + 1 for i, k in enumerate(keys)}  # brute force: a dict of the kept bigrams
    ids = torch.randint(0, size, (5, 9))
    ids[0, :5] = torch.tensor([cls, vocab["北"], vocab["京"], sep, pad])
    left, right = model.bigram_ids(ids)
    for b in range(ids.shape[0]):
        seq = [pad, *ids[b].tolist(), pad]
        assert left[b].tolist() == [row.get(a * size + c, 0) for a, c in pairwise(seq[:-1])]
        assert right[b].tolist() == [row.get(a * size + c, 0) for a, c in pairwise(seq[1:])]
    assert left[0, :4].tolist() == [
        0,
        row[cls * size + vocab["北"]],
        row[vocab["北"] * size + vocab["京"]],
        0,
    ]
    out = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
    assert out.shape == (5, 9, 2)
    plain, _ = new_light_tagger(tokenizer, ["O", "B-LOC"], embedding_dim=4, lstm_hidden=4, dropout=0.0)
    assert plain.bigram_embeddings is None and plain.lstm.input_size == 4
    assert "bigram_keys" not in plain.state_dict()
    # A directory re-saved without the table would look bigrams up in garbage: refused when loading.
    model.save_pretrained(tmp_path / "bigrams")
    weights = load_file(tmp_path / "bigrams" / "model.safetensors")
    assert torch.equal(weights.pop("bigram_keys"), torch.from_numpy(keys))
    save_file(weights, tmp_path / "bigrams" / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ToolkitInputError, match="lack bigram_keys"):
        load_token_classifier(tmp_path / "bigrams")
    with pytest.raises(ToolkitInputError, match="sorted, distinct"):
        new_light_tagger(
            tokenizer,
            ["O"],
            embedding_dim=4,
            lstm_hidden=4,
            dropout=0.0,
            bigram_dim=3,
            bigram_keys=keys[::-1],
        )


def test_word_tokenizer_spells_out_unknown_words():
    tokenizer, report = build_word_tokenizer([["Paris", "is", "big"], ["is", "Paris"]], min_count=2)
    assert report["words_kept"] == 2  # Paris, is; "big" seen once is spelt out
    assert tokenizer.tokenize("Paris") == ["Paris"]
    assert tokenizer.tokenize("big") == ["b", "##i", "##g"]
    assert tokenizer.tokenize("Zap") == ["[UNK]"]  # a character never seen in training
    uncased, _ = build_word_tokenizer([["x"]], min_count=1, extra_words=["london", "ibm"])
    assert uncased.tokenize("London") == ["London"] and uncased.tokenize("london") == ["london"]
    with pytest.raises(ToolkitInputError, match="min_word_count"):
        build_word_tokenizer([["a"]], min_count=0)


def test_crf_scores_of_the_bio_constraints_forbid_invalid_paths():
    labels = ["O", "B-PER", "I-PER"]
    allowed, may_start = bio_transitions(labels)
    crf = CRF(3, allowed, may_start)
    scores = np.array([[0.0, 0.0, 9.0], [9.0, 0.0, 0.0], [0.0, 0.0, 9.0]], dtype=np.float32)  # I, O, I
    path = [labels[i] for i in decode_tags(scores, labels, crf=crf.numpy_scores())]
    assert is_valid_bio(path), path


# ------------------------------------------------------------------------------------------- option checks
@pytest.mark.parametrize(
    "extra, message",
    [
        (("--vectors", "x.vec"), "add --encoder bilstm"),
        (("--encoder", "bilstm", "--model_name_or_path", "m"), "drop --model_name_or_path"),
        (("--encoder", "lstm"), "--encoder must be"),
        (("--crf", "true", "--label_all_tokens", "true", "--model_name_or_path", "m"), "label_all_tokens"),
        (("--encoder", "bilstm", "--vectors", "absent.vec"), "no such file"),
        (("--encoder", "bilstm", "--bilstm_hidden", "0"), "bilstm_hidden"),
        (("--bigram_dim", "8", "--model_name_or_path", "m"), "add --encoder bilstm"),
        (("--encoder", "bilstm", "--bigram_dim", "-1"), "bigram_dim"),
        (("--encoder", "bilstm", "--embedding_rms", "0.02"), "for a transformer checkpoint"),
        (("--encoder", "bilstm", "--vectors", "{tmp}/words.glove"), "read from the extension"),
    ],
)
def test_tagger_options_are_checked_before_loading(extra, message, labelled, tmp_path):
    (tmp_path / "words.glove").write_text("a 0.1 0.2\n")
    extra = [e.replace("{tmp}", str(tmp_path)) for e in extra]
    with pytest.raises(ToolkitInputError, match=message):
        train_ner.main(_flags(labelled, tmp_path / "o", *extra))


def test_a_config_naming_layers_the_weights_lack_is_refused(tiny_tagger_dir, tmp_path):
    """A stock re-save of a CRF tagger keeps config.tagger_head but drops crf.*: loading it would leave the CRF
    uninitialised, so it is refused; fine-tuning such a checkpoint without the layers drops the stale entry."""
    model = load_token_classifier(tiny_tagger_dir)
    model.config.tagger_head = {"crf": True, "bilstm_hidden": 0, "dropout": 0.1}
    model.save_pretrained(tmp_path / "stale")
    with pytest.raises(ToolkitInputError, match="weights lack"):
        load_token_classifier(tmp_path / "stale")
    plain = attach_tagger_head(model, crf=False)
    assert not hasattr(plain.config, "tagger_head")
    with pytest.raises(ToolkitInputError, match="already has tagger layers"):
        attach_tagger_head(attach_tagger_head(load_token_classifier(tiny_tagger_dir), crf=True), crf=True)


def test_full_width_digits_and_letters_meet_the_tokenizer_as_ascii(tokenizer):
    assert fold_width("ＡＢ１２，") == "AB12，"  # full-width punctuation is Chinese text's own: kept
    assert word_pieces(["１９９７", "ＩＢＭ"], tokenizer) == word_pieces(["1997", "IBM"], tokenizer)
