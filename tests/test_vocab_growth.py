"""Vocabulary growth for continued pretraining (--extend_vocab): what is found, how rows start, what is kept."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
import torch
from conftest import write_sentence_transformers_dir
from transformers import AutoTokenizer, BertConfig, BertForMaskedLM, BertModel

import toolkit.pretrain
from recipes import pretrain
from toolkit import ToolkitInputError, build_mlm_model
from toolkit._tokenizer import SPECIAL_TOKENS, build_wordpiece_tokenizer
from toolkit._vocab_growth import (
    coverage_report,
    extend_embeddings,
    extend_tokenizer,
    extend_vocabulary,
    find_new_tokens,
)

LETTERS = "abcdefghijklmnopqrstuvwxyz"
WORDS = ["the", "cat", "sat", "on", "mat", "tok", "caf", "a", "dog", "ran"]
# "é" only as a word start: "café" is [UNK] until "##é" is added. No CJK character at all.
VOCAB = [*SPECIAL_TOKENS, *LETTERS, *(f"##{c}" for c in LETTERS), "é", "##en", "##iza", "##tion", "."]
VOCAB += [w for w in WORDS if w not in VOCAB]


def _tokenizer(**options):
    options = {"lowercase": True, "strip_accents": False, "model_max_length": 64} | options
    return build_wordpiece_tokenizer(VOCAB, **options)


def _model(n_rows: int, *, tied: bool = True) -> BertForMaskedLM:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=n_rows,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        tie_word_embeddings=tied,
    )
    model = BertForMaskedLM(config).eval()
    with torch.no_grad():  # a trained head's bias is not zero: make the bias start visible
        model.cls.predictions.decoder.bias.normal_()  # the bias the head adds (BERT's `bias` when tied)
    return model


def _id(tokenizer, token: str) -> int:
    return tokenizer.get_vocab()[token]


def test_find_new_tokens_counts_normalised_forms_above_min_count():
    texts = ["CAFÉ café Ω 龍", "café ω 龍 鳳", "the cat sat on the mat."]
    found = find_new_tokens(iter(texts), _tokenizer(), min_count=2, show_progress=False)
    # Lower-cased first (Ω -> ω, É -> é); "é" inside a word needs "##é"; a CJK character is a word of its own
    # (no "##龍"); 鳳 occurs once, under min_count.
    assert found == ["##é", "ω", "龍"]
    assert find_new_tokens(texts, _tokenizer(), min_count=1, show_progress=False)[-1] == "鳳"
    assert find_new_tokens(texts, _tokenizer(), min_count=4, show_progress=False) == []
    assert find_new_tokens(texts, _tokenizer(), min_count=1, max_texts=1, show_progress=False) == [
        "##é",
        "ω",
        "龍",
    ]
    # An accent-stripping tokenizer reads "café" as "cafe": nothing is missing there.
    stripped = find_new_tokens(texts, _tokenizer(strip_accents=True), min_count=2, show_progress=False)
    assert "##é" not in stripped and "ω" in stripped
    with pytest.raises(ToolkitInputError, match="min_count"):
        find_new_tokens(texts, _tokenizer(), min_count=0)


def test_find_new_tokens_words_that_split_badly_come_after_the_characters():
    tokenizer = _tokenizer()
    assert tokenizer.tokenize("tokenization") == ["tok", "##en", "##iza", "##tion"]
    texts = ["tokenization of the cat 龍"] * 3 + ["tokenen"]
    found = find_new_tokens(texts, tokenizer, min_count=3, words=True, show_progress=False)
    # "tokenen" (3 pieces) is too rare; "cat" is one piece; "of" is two (o ##f)
    assert found == ["龍", "tokenization"]
    assert find_new_tokens(texts, tokenizer, min_count=3, show_progress=False) == ["龍"]
    assert find_new_tokens(texts, tokenizer, min_count=3, words=True, max_new=1, show_progress=False) == [
        "龍"
    ]


@pytest.mark.parametrize("tied", [True, False])
def test_growth_keeps_every_old_row_and_prediction(tied):
    tokenizer = _tokenizer()
    model = _model(len(tokenizer), tied=tied)
    old_n = len(tokenizer)
    head = model.cls.predictions
    before = {
        "input": model.get_input_embeddings().weight.detach().clone(),
        "decoder": head.decoder.weight.detach().clone(),
        "bias": head.decoder.bias.detach().clone(),
    }
    text = tokenizer("the cat sat on the mat.", return_tensors="pt")
    with torch.no_grad():
        logits = model(**text).logits
    grown, report = extend_vocabulary(model, tokenizer, ["龍", "##é", "tokenization"])
    assert (report.old_size, report.new_size, report.added) == (
        old_n,
        old_n + 3,
        ["龍", "##é", "tokenization"],
    )
    assert model.config.vocab_size == len(grown) == old_n + 3
    assert head.decoder.weight.shape[0] == head.decoder.bias.shape[0] == old_n + 3
    assert (head.decoder.weight is model.get_input_embeddings().weight) is tied
    torch.testing.assert_close(model.get_input_embeddings().weight[:old_n], before["input"], rtol=0, atol=0)
    torch.testing.assert_close(head.decoder.weight[:old_n], before["decoder"], rtol=0, atol=0)
    torch.testing.assert_close(head.decoder.bias[:old_n], before["bias"], rtol=0, atol=0)
    again = grown("the cat sat on the mat.", return_tensors="pt")
    assert again["input_ids"].tolist() == text["input_ids"].tolist()
    with torch.no_grad():  # the same up to float rounding (a wider matmul may sum in another order)
        torch.testing.assert_close(model(**again).logits[..., :old_n], logits, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("tied", [True, False])
def test_new_rows_start_from_their_old_pieces_or_the_mean_row(tied):
    tokenizer = _tokenizer()
    model = _model(len(tokenizer), tied=tied)
    head = model.cls.predictions
    rows = {
        "input": model.get_input_embeddings().weight.detach().clone(),
        "decoder": head.decoder.weight.detach().clone(),
        "bias": head.decoder.bias.detach().clone(),
    }
    grown, report = extend_vocabulary(model, tokenizer, ["龍", "##é", "tokenization"], fallback_noise=0)
    assert (report.from_pieces, report.fallback) == (2, 1)
    pieces = {
        "tokenization": [_id(tokenizer, p) for p in ("tok", "##en", "##iza", "##tion")],
        "##é": [_id(tokenizer, "é")],  # the character the old vocabulary had as a word start only
    }
    now = {
        "input": model.get_input_embeddings().weight,
        "decoder": head.decoder.weight,
        "bias": head.decoder.bias,
    }
    for name, old in rows.items():
        for token, ids in pieces.items():
            torch.testing.assert_close(now[name][_id(grown, token)], old[ids].mean(0))
        # 龍 was [UNK] to the old tokenizer: the mean of all old rows (with no noise asked for)
        torch.testing.assert_close(now[name][_id(grown, "龍")], old.mean(0))


@pytest.mark.parametrize("tied", [True, False])
def test_unknown_characters_start_apart_at_the_rows_spread(tied):
    """Characters the old vocabulary only had as [UNK] start from the mean row plus noise at the old rows'
    spread: apart from each other, reproducibly, with the mean bias; rows built from pieces get no noise."""
    new = [chr(0x4E00 + i) for i in range(40)]  # 40 CJK characters, all [UNK] to the old vocabulary

    def grow(noise, seed=0):
        tokenizer = _tokenizer()
        model = _model(len(tokenizer), tied=tied)
        with torch.no_grad():  # dimensions of different spreads: the noise must follow each one's
            scale = torch.linspace(0.5, 4.0, model.config.hidden_size)
            model.get_input_embeddings().weight.mul_(scale)
            if not tied:
                model.cls.predictions.decoder.weight.mul_(scale.flip(0))
        old = {
            "input": model.get_input_embeddings().weight.detach().clone(),
            "decoder": model.cls.predictions.decoder.weight.detach().clone(),
            "bias": model.cls.predictions.decoder.bias.detach().clone(),
        }
        _, report = extend_vocabulary(
            model, tokenizer, [*new, "tokenization"], fallback_noise=noise, seed=seed
        )
        now = {
            "input": model.get_input_embeddings().weight.detach(),
            "decoder": model.cls.predictions.decoder.weight.detach(),
            "bias": model.cls.predictions.decoder.bias.detach(),
        }
        return old, now, report, len(tokenizer)

    old, now, report, n = grow(1.0)
    assert (report.fallback, report.from_pieces, report.fallback_noise) == (40, 1, 1.0)
    assert "noise x1" in report.summary()
    for name in ("input", "decoder"):
        rows = now[name][n : n + 40]
        z = (rows - old[name].mean(0)) / old[name].std(0)  # standard normal draws if the spread is right
        assert 0.8 < z.std().item() < 1.2 and abs(z.mean().item()) < 0.2
        assert ((z.std(0) > 0.6) & (z.std(0) < 1.4)).all()  # in every dimension, narrow or wide
        assert torch.cdist(rows, rows).add(torch.eye(40) * 1e9).min() > 0  # no two rows alike
        pieces = [_id(_tokenizer(), p) for p in ("tok", "##en", "##iza", "##tion")]
        torch.testing.assert_close(now[name][n + 40], old[name][pieces].mean(0))  # no noise from pieces
    torch.testing.assert_close(now["bias"][n : n + 40], old["bias"].mean().expand(40))
    _, again, _, _ = grow(1.0)
    torch.testing.assert_close(again["input"], now["input"], rtol=0, atol=0)  # seeded
    _, other, _, _ = grow(1.0, seed=1)
    assert not torch.equal(other["input"][n:], now["input"][n:])
    _, half, _, _ = grow(0.5)  # the same draw at half the scale
    mean = old["input"].mean(0)
    torch.testing.assert_close(half["input"][n : n + 40] - mean, (now["input"][n : n + 40] - mean) / 2)
    with pytest.raises(ToolkitInputError, match="noise"):
        extend_vocabulary(_model(n), _tokenizer(), ["龍"], fallback_noise=-1)


def test_saved_tokenizer_maps_new_entries_to_new_ids_and_old_ones_to_theirs(tmp_path):
    tokenizer = _tokenizer()
    grown = extend_tokenizer(tokenizer, ["龍", "##é", "tokenization", "cat"])  # "cat" is already there
    grown.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    old_vocab, new_vocab = tokenizer.get_vocab(), loaded.get_vocab()
    assert all(new_vocab[t] == i for t, i in old_vocab.items())
    n = len(tokenizer)
    assert [new_vocab[t] for t in ("龍", "##é", "tokenization")] == [n, n + 1, n + 2] and len(loaded) == n + 3
    cls, sep = loaded.cls_token_id, loaded.sep_token_id
    assert loaded("龍")["input_ids"] == [cls, n, sep]
    assert loaded.tokenize("CAFÉ 龍龍 Tokenization") == ["caf", "##é", "龍", "龍", "tokenization"]
    assert tokenizer.tokenize("CAFÉ 龍") == ["[UNK]", "[UNK]"]
    assert loaded("the cat sat")["input_ids"] == tokenizer("the cat sat")["input_ids"]
    assert loaded.model_max_length == 64 and loaded.do_lower_case


def test_coverage_report_before_and_after():
    tokenizer = _tokenizer()
    texts = ["the cat sat on the 龍 mat", "café 龍"]
    before = coverage_report(tokenizer, texts)
    after = coverage_report(extend_tokenizer(tokenizer, ["龍", "##é"]), texts)
    assert before["unk_rate"] == pytest.approx(3 / 9) and after["unk_rate"] == 0.0
    # 23 non-space characters in 9 tokens, then in 10 ("café" was one [UNK], now caf ##é)
    assert before["chars_per_token"] == pytest.approx(23 / 9)
    assert after["chars_per_token"] == pytest.approx(23 / 10)
    assert after["vocab_size"] == before["vocab_size"] + 2


def test_mismatched_rows_are_refused():
    tokenizer = _tokenizer()
    with pytest.raises(ToolkitInputError, match="embedding rows"):
        extend_vocabulary(_model(len(tokenizer) + 8), tokenizer, ["龍"])
    with pytest.raises(ToolkitInputError, match="fewer than the model"):
        extend_embeddings(_model(len(tokenizer) + 8), tokenizer)


def _sentence_transformers_dir(directory: Path, tokenizer) -> tuple[Path, BertModel]:
    directory, encoder = write_sentence_transformers_dir(directory, tokenizer)
    assert json.loads((directory / "config.json").read_text())["architectures"] == ["BertModel"]
    return directory, encoder


def test_sentence_transformers_directory_loads_as_masked_lm_with_a_fresh_head(tmp_path, caplog):
    directory, encoder = _sentence_transformers_dir(tmp_path / "st", _tokenizer())
    with caplog.at_level(logging.WARNING, logger="toolkit._model"):
        model = build_mlm_model(checkpoint=directory, sparse_head=False)
    assert f"no MLM head in {directory}: a fresh head is initialised" in caplog.text
    assert "lacks" not in caplog.text  # every encoder weight was found
    state = model.bert.state_dict()
    for name, tensor in encoder.state_dict().items():
        if not name.startswith("pooler."):
            torch.testing.assert_close(state[name], tensor, rtol=0, atol=0, msg=name)
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    model.save_pretrained(tmp_path / "mlm")
    assert json.loads((tmp_path / "mlm" / "config.json").read_text())["architectures"] == ["BertForMaskedLM"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="toolkit._model"):
        build_mlm_model(checkpoint=tmp_path / "mlm")  # a masked-LM checkpoint: nothing to say
    assert "no MLM head" not in caplog.text


ENGLISH = "the cat sat on the mat . a dog ran on the mat ."
CHINESE = "龍鳳呈祥 鳳凰 龍"


def _corpus(path: Path) -> Path:
    path.write_text("\n".join(f"{ENGLISH} {CHINESE}" for _ in range(30)) + "\n", encoding="utf-8")
    return path


def _flags(train: Path, checkpoint: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--train_files", str(train),
        "--output_dir", str(out),
        "--model_name_or_path", str(checkpoint),
        "--extend_vocab", "true",
        "--extend_vocab_min_count", "2",
        "--block_size", "32",
        "--max_steps", "2",
        "--per_device_train_batch_size", "4",
        "--learning_rate", "0.001",
        "--warmup_steps", "0",
        "--save_strategy", "no",
        "--report_to", "none",
        "--disable_tqdm", "true",
        "--seed", "7",
        *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def grown_run(tmp_path_factory):
    """The recipe with --extend_vocab on a sentence-transformers checkpoint whose vocabulary has no Chinese,
    2 steps, a checkpoint after each; returns its tokenizer, the flags and the output directory."""
    root = tmp_path_factory.mktemp("grown")
    tokenizer = _tokenizer()
    checkpoint, _ = _sentence_transformers_dir(root / "st", tokenizer)
    flags = _flags(_corpus(root / "train.txt"), checkpoint, root / "out", "--save_strategy", "steps")
    logger = logging.getLogger()
    records = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: records.append(record.getMessage())
    logger.addHandler(handler)
    try:
        pretrain.main([*flags, "--save_steps", "1"])
    finally:
        logger.removeHandler(handler)
    return tokenizer, flags, root / "out", "\n".join(records)


def test_recipe_grows_a_sentence_transformers_checkpoint(grown_run):
    tokenizer, _, out, log = grown_run
    assert "no MLM head in" in log and "Vocabulary growth: 5 entries added" in log
    growth = json.loads((out / "metrics.json").read_text())["tokenizer"]["vocabulary_growth"]
    assert growth["added"] == ["龍", "鳳", "呈", "祥", "凰"] and growth["n_added"] == 5  # most frequent first
    assert (growth["from_pieces"], growth["fallback"], growth["fallback_noise"]) == (0, 5, 1.0)
    # 7 of the 21 tokens of a line were [UNK] (its Chinese characters), none after
    assert growth["before"]["unk_rate"] == pytest.approx(7 / 21) and growth["after"]["unk_rate"] == 0.0
    # each Chinese character was one [UNK] token and is one token now
    assert growth["after"]["chars_per_token"] == growth["before"]["chars_per_token"] == pytest.approx(41 / 21)
    config = json.loads((out / "config.json").read_text())
    saved = AutoTokenizer.from_pretrained(out)
    assert config["architectures"] == ["BertForMaskedLM"] and config["vocab_size"] == len(saved)
    assert saved("龍")["input_ids"][1] == len(tokenizer)
    assert all(saved.get_vocab()[t] == i for t, i in tokenizer.get_vocab().items())
    loaded = BertForMaskedLM.from_pretrained(out)
    assert loaded.get_input_embeddings().num_embeddings == len(saved)


def test_a_resumed_run_reuses_its_grown_vocabulary(grown_run, tmp_path, monkeypatch):
    _, flags, out, _ = grown_run
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    shutil.copytree(out / "checkpoint-1", resumed / "checkpoint-1")

    def grow_again(*args, **kwargs):
        raise AssertionError("a resumed run grew its vocabulary again")

    monkeypatch.setattr(toolkit.pretrain, "find_new_tokens", grow_again)
    i = flags.index("--output_dir")
    metrics = pretrain.main([*flags[:i], "--output_dir", str(resumed), *flags[i + 2 :], "--save_steps", "1"])
    assert metrics["resumed_from_step"] == 1
    assert (
        AutoTokenizer.from_pretrained(resumed).get_vocab() == AutoTokenizer.from_pretrained(out).get_vocab()
    )
    growth = json.loads((resumed / "metrics.json").read_text())["tokenizer"]["vocabulary_growth"]
    assert growth["added"] == ["龍", "鳳", "呈", "祥", "凰"]
    a, b = (
        BertForMaskedLM.from_pretrained(out).state_dict(),
        BertForMaskedLM.from_pretrained(resumed).state_dict(),
    )
    for name, tensor in a.items():
        torch.testing.assert_close(b[name], tensor, msg=name)


def test_extend_vocab_options_are_checked_before_any_data_is_read(tmp_path):
    train = _corpus(tmp_path / "train.txt")
    fresh = _flags(train, tmp_path, tmp_path / "o")
    i = fresh.index("--model_name_or_path")
    del fresh[i : i + 2]
    with pytest.raises(ToolkitInputError, match="--extend_vocab grows a checkpoint's vocabulary"):
        pretrain.main(fresh)
    with pytest.raises(ToolkitInputError, match="--extend_vocab_words only applies with --extend_vocab"):
        pretrain.main([*fresh, "--extend_vocab", "false", "--extend_vocab_words", "true"])
    with pytest.raises(ToolkitInputError, match="--extend_vocab_min_count must be at least 1"):
        pretrain.main([*_flags(train, tmp_path, tmp_path / "o"), "--extend_vocab_min_count", "0"])
    with pytest.raises(ToolkitInputError, match="--extend_vocab_noise only applies with --extend_vocab"):
        pretrain.main([*fresh, "--extend_vocab", "false", "--extend_vocab_noise", "0.5"])
    with pytest.raises(ToolkitInputError, match="--extend_vocab_noise must be 0 or more"):
        pretrain.main([*_flags(train, tmp_path, tmp_path / "o"), "--extend_vocab_noise", "-1"])


def test_growth_options_define_the_run_only_when_growing():
    from toolkit.config import CorpusArguments, MLMArguments, TokenizerArguments
    from toolkit.pretrain import pretraining_fingerprint

    def model_options(**mlm):
        return pretraining_fingerprint(CorpusArguments(), TokenizerArguments(), MLMArguments(**mlm))["model"]

    assert not any(k.startswith("extend_vocab") for k in model_options())  # as recorded before the option
    grown = model_options(extend_vocab=True, extend_vocab_min_count=3)
    assert (grown["extend_vocab"], grown["extend_vocab_min_count"], grown["extend_vocab_words"]) == (
        True,
        3,
        False,
    )
    assert grown["extend_vocab_noise"] == 1.0


def test_a_grown_vocabulary_must_extend_the_checkpoints(grown_run, tmp_path):
    from toolkit.config import MLMArguments, TokenizerArguments
    from toolkit.pretrain import grow_pretraining_vocabulary

    tokenizer, flags, _, _ = grown_run
    mlm = MLMArguments(model_name_or_path=flags[flags.index("--model_name_or_path") + 1], extend_vocab=True)
    other = build_wordpiece_tokenizer([*SPECIAL_TOKENS, *reversed(LETTERS)])  # same letters, other ids
    other.save_pretrained(tmp_path / "other")
    grow = dict(tok=TokenizerArguments(), mlm=mlm, before={}, grown_in=tmp_path / "other")
    with pytest.raises(ToolkitInputError, match="does not extend the vocabulary of"):
        grow_pretraining_vocabulary(tokenizer, ["the cat"], **grow)
    with pytest.raises(ToolkitInputError, match="has 71 embedding rows but its tokenizer has 31 entries"):
        grow_pretraining_vocabulary(other, ["the cat"], **grow)
