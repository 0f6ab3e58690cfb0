"""Vector extraction: checkpoint sources, modes, coverage, formats (gensim round trip), CLI, weight transfer."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import ROOT
from transformers import BertForMaskedLM, BertForSequenceClassification, BertModel

from recipes import extract_vectors as cli
from toolkit import (
    ToolkitInputError,
    VectorSet,
    encode_sentences,
    extract_vectors,
    load_encoder,
    transfer_weights,
)
from toolkit._vectors import escape_token, unescape_token

ODD = [
    "emoji 😀 here",
    "zero\u200bwidth",
    "joiner 👩\u200d💻",
    "line\u2028sep",
    "combining e\u0301",
    "full-width ＡＢＣ１２３",
    "lone \ud800 surrogate",
]


@pytest.fixture(scope="module")
def checkpoint(tiny_mlm_dir):
    return tiny_mlm_dir


@pytest.fixture(scope="module")
def corpus_file(corpus_lines, tmp_path_factory):
    path = tmp_path_factory.mktemp("vec_corpus") / "text.txt"
    path.write_text("\n".join(corpus_lines[:80]) + "\n", encoding="utf-8")
    return path


def test_static_char_vectors_are_embedding_rows(checkpoint, corpus_file, tokenizer):
    vs = extract_vectors(checkpoint, inputs=[str(corpus_file)])
    text = corpus_file.read_text(encoding="utf-8")
    assert set(vs.tokens) == {c for c in text if not c.isspace()}
    table = BertModel.from_pretrained(checkpoint).get_input_embeddings().weight.detach().numpy()
    for ch in ("北", "a", "。"):
        np.testing.assert_allclose(vs[ch], table[tokenizer.convert_tokens_to_ids(ch)], rtol=1e-6)
    assert vs.coverage["n_missing"] == 0 and vs.provenance["mode"] == "static"
    assert len(vs.provenance["corpus_sha256"]) == 64


def test_static_word_vectors_pool_pieces(checkpoint, tokenizer):
    pieces = tokenizer.tokenize("gardenhorse")
    assert len(pieces) > 1
    table = BertModel.from_pretrained(checkpoint).get_input_embeddings().weight.detach()
    ids = tokenizer.convert_tokens_to_ids(pieces)
    for pooling, expected in [
        ("first", table[ids[0]]),
        ("last", table[ids[-1]]),
        ("mean", table[ids].mean(0)),
    ]:
        vs = extract_vectors(checkpoint, words=["gardenhorse"], pooling=pooling)
        np.testing.assert_allclose(vs["gardenhorse"], expected.numpy(), rtol=1e-5, atol=1e-6)


def test_contextual_vectors_average_occurrences(checkpoint):
    enc = load_encoder(checkpoint)
    texts = ["北京是中国的首都。", "北京很大。"]
    vs = extract_vectors(enc, texts=texts, mode="contextual", layers=[-1])
    expected = []
    for t in texts:
        batch = enc.tokenizer(t, return_tensors="pt")
        hidden = enc.model(**batch).last_hidden_state[0]
        expected.append(hidden[1])  # 北 is the first token after [CLS]
    np.testing.assert_allclose(vs["北"], torch.stack(expected).mean(0).detach().numpy(), rtol=1e-4, atol=1e-5)
    with pytest.raises(ToolkitInputError, match="out of range"):
        extract_vectors(enc, texts=texts, mode="contextual", layers=[5])


def test_contextual_words_with_jieba_and_long_lines(checkpoint):
    long_line = "北京是中国的首都。" * 30  # longer than the 64-position window: split, not truncated
    vs = extract_vectors(
        checkpoint,
        texts=[long_line],
        unit="word",
        segmenter="jieba",
        mode="contextual",
        layers=[0, -1],
        show_progress=False,
    )
    assert "北京" in vs and "首都" in vs
    assert np.isfinite(vs.vectors).all()


def test_sentence_vectors_pooling_and_layers(checkpoint):
    enc = load_encoder(checkpoint)
    sents = ["北京是中国的首都。", "the cat sat.", "a"]
    mean = encode_sentences(enc, sents, pooling="mean")
    cls = encode_sentences(enc, sents, pooling="cls", normalize=True)
    mx = encode_sentences(enc, sents, pooling="max", layers=[-1, -2])
    assert mean.shape == cls.shape == mx.shape == (3, 32)
    np.testing.assert_allclose(np.linalg.norm(cls, axis=1), 1.0, rtol=1e-5)
    batch = enc.tokenizer(sents[1], return_tensors="pt")
    hidden = enc.model(**batch).last_hidden_state[0]
    np.testing.assert_allclose(mean[1], hidden.mean(0).detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(encode_sentences(enc, sents[::-1])[::-1], mean, rtol=1e-4, atol=1e-5)


def test_coverage_normalisation_and_missing_policies(checkpoint):
    texts = ["ＡＢＣ abc 北京 猫☃"]
    vs = extract_vectors(checkpoint, texts=texts, missing="skip")
    cov = vs.coverage
    assert cov["normalized"]["Ａ"] == "A"  # full-width matched after NFKC
    assert "猫" in cov["missing"] and "☃" in cov["missing"] and "猫" not in vs
    assert cov["unk_rate"] > 0
    zeros = extract_vectors(checkpoint, texts=texts, missing="zeros")
    assert not zeros["猫"].any()
    unk = extract_vectors(checkpoint, texts=texts, missing="unk")
    enc = load_encoder(checkpoint)
    table = enc.model.get_input_embeddings().weight.detach().numpy()
    np.testing.assert_allclose(unk["猫"], table[enc.tokenizer.unk_token_id])


@pytest.mark.parametrize("mode", ["static", "contextual"])
def test_odd_unicode_goes_through_every_mode(checkpoint, mode, tmp_path):
    vs = extract_vectors(checkpoint, texts=ODD, mode=mode, missing="skip", show_progress=False)
    accounted = set(vs.tokens) | set(vs.coverage["missing"]) | set(vs.coverage.get("case_folded", {}))
    expected = {c for line in ODD for c in line if not c.isspace()}
    assert expected == accounted  # nothing silently lost
    for fmt in ("word2vec", "word2vec-binary", "npy", "safetensors"):
        path = vs.save(tmp_path / f"v.{fmt}", format=fmt)
        assert len(VectorSet.load(path, format=fmt)) == len(vs)
    assert encode_sentences(checkpoint, ODD).shape == (len(ODD), 32)


@pytest.mark.parametrize("fmt", ["word2vec", "word2vec-binary"])
def test_word2vec_files_load_in_gensim(fmt, tmp_path):
    gensim_models = pytest.importorskip("gensim.models")
    tokens = ["北", "a", "has space", "tab\there", "back\\slash", "line\u2028sep"]
    vs = VectorSet(tokens, np.random.default_rng(0).normal(size=(6, 8)).astype(np.float32))
    path = vs.save(tmp_path / "v.out", format=fmt)
    kv = gensim_models.KeyedVectors.load_word2vec_format(str(path), binary=fmt == "word2vec-binary")
    assert len(kv) == 6
    np.testing.assert_allclose(kv["北"], vs["北"], rtol=1e-6)
    np.testing.assert_allclose(kv[escape_token("has space")], vs["has space"], rtol=1e-6)
    back = VectorSet.load(path, format=fmt)
    assert back.tokens == tokens
    np.testing.assert_allclose(back.vectors, vs.vectors, rtol=1e-6)
    with pytest.raises(ToolkitInputError, match="contain whitespace"):
        vs.save(tmp_path / "r.vec", whitespace="refuse")


def test_escape_round_trip():
    for t in ["plain", "a b", "\\u0020", "x\\", "\u2028", "\t\n"]:
        assert unescape_token(escape_token(t)) == t
        assert not any(c.isspace() for c in escape_token(t))


def test_npy_and_safetensors_keep_provenance(checkpoint, corpus_file, tmp_path):
    vs = extract_vectors(checkpoint, inputs=[str(corpus_file)])
    for name in ("v.npy", "v.safetensors"):
        back = VectorSet.load(vs.save(tmp_path / name))
        assert back.tokens == vs.tokens
        assert back.provenance["checkpoint"] == vs.provenance["checkpoint"]
        assert back.coverage["n_items"] == vs.coverage["n_items"]
    assert (tmp_path / "v.vocab.txt").is_file() and (tmp_path / "v.json").is_file()


def test_embedding_layer_conversion_and_one_training_step(checkpoint, corpus_file):
    vs = extract_vectors(checkpoint, inputs=[str(corpus_file)])
    vocab = ["[PAD]", "[UNK]", "北", "京", "never-seen"]
    emb, report = vs.to_embedding(vocab)
    assert report["copied"] == 2 and report["random"] == 1 and report["padding_idx"] == 0
    assert torch.equal(emb.weight[0], torch.zeros(vs.dim))
    np.testing.assert_allclose(emb.weight[2].detach().numpy(), vs["北"])

    class CharCNN(torch.nn.Module):  # a small non-BERT model initialised from extracted vectors
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(len(vocab), vs.dim, padding_idx=0)
            self.conv = torch.nn.Conv1d(vs.dim, 8, 2)
            self.out = torch.nn.Linear(8, 2)

        def forward(self, x):
            h = self.conv(self.emb(x).transpose(1, 2)).relu().max(-1).values
            return self.out(h)

    net = CharCNN()
    report = transfer_weights({"emb.weight": emb.weight.detach()}, net)
    assert report.copied == [("emb.weight", "emb.weight")] and "conv.weight" in report.missing
    before = net.emb.weight[2].detach().clone()
    np.testing.assert_allclose(before.numpy(), vs["北"])
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    loss = torch.nn.functional.cross_entropy(net(torch.tensor([[2, 3, 4], [3, 2, 0]])), torch.tensor([0, 1]))
    loss.backward()
    opt.step()
    assert not torch.equal(net.emb.weight[2], before)


def test_transfer_by_mapping_and_pattern_with_report(checkpoint):
    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.word = torch.nn.Embedding(10, 32)  # wrong vocabulary size: a shape mismatch
            self.proj = torch.nn.Linear(32, 32)
            self.ln = torch.nn.LayerNorm(32)

    net = Tiny()
    report = transfer_weights(
        checkpoint,
        net,
        mapping={"word.weight": "bert.embeddings.word_embeddings.weight"},
        patterns=[
            (r"^bert\.encoder\.layer\.0\.attention\.self\.query\.(weight|bias)$", r"proj.\1"),
            (r"^bert\.embeddings\.LayerNorm\.(weight|bias)$", r"ln.\1"),
        ],
    )
    assert {t for t, _ in report.copied} == {"proj.weight", "proj.bias", "ln.weight", "ln.bias"}
    assert report.shape_mismatch[0][0] == "word.weight" and "word.weight" in report.missing
    assert "bert.encoder.layer.1.output.dense.weight" in report.unexpected
    source = BertForMaskedLM.from_pretrained(checkpoint)
    assert torch.equal(net.proj.weight, source.bert.encoder.layer[0].attention.self.query.weight)
    with pytest.raises(ToolkitInputError, match="shape mismatch"):
        transfer_weights(
            checkpoint,
            Tiny(),
            mapping={"word.weight": "bert.embeddings.word_embeddings.weight"},
            strict_shapes=True,
        )
    with pytest.raises(ToolkitInputError, match="not in the checkpoint"):
        transfer_weights(checkpoint, Tiny(), mapping={"word.weight": "nope"})


def test_checkpoint_sources(checkpoint, tokenizer, tmp_path):
    reference = load_encoder(checkpoint)
    sents = ["北京是中国的首都。"]
    ref = encode_sentences(reference, sents)
    # fine-tuned classifier directory: its encoder is used
    clf = BertForSequenceClassification.from_pretrained(checkpoint, num_labels=2)
    clf.save_pretrained(tmp_path / "clf")
    tokenizer.save_pretrained(tmp_path / "clf")
    np.testing.assert_allclose(encode_sentences(tmp_path / "clf", sents), ref, rtol=1e-5, atol=1e-6)
    # a single safetensors file with a vocab.txt, no config beside it (shapes inferred)
    single = tmp_path / "single"
    single.mkdir()
    (single / "weights.safetensors").write_bytes((checkpoint / "model.safetensors").read_bytes())
    vocab = sorted(tokenizer.get_vocab(), key=tokenizer.get_vocab().get)
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    inferred = load_encoder(single / "weights.safetensors", vocab=tmp_path / "vocab.txt")
    assert inferred.model.config.num_hidden_layers == 2 and inferred.model.config.hidden_size == 32
    assert encode_sentences(inferred, sents).shape == (
        1,
        32,
    )  # heads cannot be inferred from shapes: give config=
    enc = load_encoder(
        single / "weights.safetensors", vocab=tmp_path / "vocab.txt", config=checkpoint / "config.json"
    )
    np.testing.assert_allclose(encode_sentences(enc, sents), ref, rtol=1e-5, atol=1e-6)
    # pytorch_model.bin (pickle, read with weights_only)
    torch.save(BertForMaskedLM.from_pretrained(checkpoint).state_dict(), single / "pytorch_model.bin")
    enc = load_encoder(single / "pytorch_model.bin", vocab=checkpoint, config=checkpoint / "config.json")
    np.testing.assert_allclose(encode_sentences(enc, sents), ref, rtol=1e-5, atol=1e-6)
    # sentence-transformers layout with CLS pooling
    st = tmp_path / "st"
    (st / "1_Pooling").mkdir(parents=True)
    for f in checkpoint.iterdir():
        (st / f.name).write_bytes(f.read_bytes())
    (st / "modules.json").write_text(
        json.dumps(
            [
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            ]
        )
    )
    (st / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    enc = load_encoder(st)
    assert enc.default_pooling == "cls"
    np.testing.assert_allclose(
        encode_sentences(enc, sents), encode_sentences(reference, sents, pooling="cls"), rtol=1e-5, atol=1e-6
    )


def test_bad_checkpoints_and_inputs(checkpoint, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text((checkpoint / "config.json").read_text())
    with pytest.raises(ToolkitInputError, match="no weights"):
        load_encoder(empty)
    notok = tmp_path / "notok"
    notok.mkdir()
    for name in ("config.json", "model.safetensors"):
        (notok / name).write_bytes((checkpoint / name).read_bytes())
    with pytest.raises(ToolkitInputError, match="no tokenizer"):
        load_encoder(notok)
    gpt = tmp_path / "gpt"
    gpt.mkdir()
    (gpt / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    (gpt / "model.safetensors").write_bytes(b"")
    (gpt / "tokenizer.json").write_text("{}")
    with pytest.raises(ToolkitInputError, match="not a BERT-like encoder"):
        load_encoder(gpt)
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"\x00\x01\x02")
    with pytest.raises(ToolkitInputError, match="binary"):
        extract_vectors(checkpoint, inputs=[str(binary)])
    blank = tmp_path / "blank.txt"
    blank.write_text("\n\n", encoding="utf-8")
    with pytest.raises(ToolkitInputError, match="only whitespace"):
        extract_vectors(checkpoint, inputs=[str(blank)])
    with pytest.raises(ToolkitInputError, match="does not exist"):
        VectorSet(["a"], np.zeros((1, 2))).save(tmp_path / "missing_dir" / "v.vec")
    with pytest.raises(ToolkitInputError, match="does not exist"):
        load_encoder(tmp_path / "nothing" / "here")


def test_cli_end_to_end(checkpoint, corpus_file, tmp_path, capsys):
    out = tmp_path / "chars.vec"
    vs = cli.main(["--checkpoint", str(checkpoint), "--input", str(corpus_file.parent), "--output", str(out)])
    assert "vectors of dim 32" in capsys.readouterr().out
    assert VectorSet.load(out).tokens == vs.tokens
    assert json.loads((tmp_path / "chars.vec.coverage.json").read_text())["n_items"] == len(vs)
    sents = cli.main(
        [
            "--checkpoint",
            str(checkpoint),
            "--input",
            str(corpus_file),
            "--unit",
            "sentence",
            "--output",
            str(tmp_path / "s.npy"),
        ]
    )
    assert sents.vectors.shape[1] == 32
    # stdin, words, binary format, as a separate process with the error path too
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "recipes" / "extract_vectors.py"),
            "--checkpoint",
            str(checkpoint),
            "--input",
            "-",
            "--unit",
            "word",
            "--output",
            str(tmp_path / "w.bin"),
        ],
        input="the cat sat\nthe dog\n",
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert set(VectorSet.load(tmp_path / "w.bin").tokens) == {"the", "cat", "sat", "dog"}
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "recipes" / "extract_vectors.py"),
            "--checkpoint",
            str(checkpoint),
            "--input",
            str(corpus_file),
            "--output",
            str(tmp_path / "no" / "x.vec"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2 and "does not exist" in result.stderr


def test_jsonl_inputs_give_their_text_field(checkpoint, tmp_path):
    """A .jsonl input is read through its text field, as pretraining reads it: no '{' or '"' items."""
    path = tmp_path / "docs.jsonl"
    path.write_text('{"text": "北京 paris", "id": 1}\n{"text": "上海"}\n', encoding="utf-8")
    vs = extract_vectors(checkpoint, inputs=[path], unit="char")
    assert set(vs.tokens) | set(vs.coverage["missing"]) == set("北京paris上海")  # no '{', '"', 't', 'e', 'x'
    assert vs.provenance["corpus_sha256"]
    (tmp_path / "bad.jsonl").write_text('{"body": "x"}\n', encoding="utf-8")
    with pytest.raises(ToolkitInputError, match=r"bad.jsonl:1: no string field 'text'.*--text_field"):
        extract_vectors(checkpoint, inputs=[tmp_path / "bad.jsonl"])
    vs = extract_vectors(checkpoint, inputs=[tmp_path / "bad.jsonl"], text_field="body")
    assert set(vs.tokens) | set(vs.coverage["missing"]) == {"x"}


def test_uncased_checkpoint_folds_case_variants(checkpoint):
    """The fixture's vocabulary is uncased: Good, GOOD and good share one row, listed once, and counted."""
    vs = extract_vectors(checkpoint, texts=["good Good GOOD dog"], unit="word")
    assert sorted(vs.tokens) == ["dog", "good"]
    assert vs.coverage["n_case_folded"] == 2 and vs.coverage["case_folded"] == {
        "Good": "good",
        "GOOD": "good",
    }
