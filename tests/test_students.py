"""A student cut from a teacher (toolkit.students, recipes/cut_student.py): the kept layers land where they
should and nowhere else, heads and labels survive, and the saved directory is a plain model directory."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import NER_LABELS, write_sentence_transformers_dir
from transformers import (
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    BertConfig,
    BertForMaskedLM,
    BertForSequenceClassification,
    BertModel,
    DistilBertConfig,
    DistilBertModel,
    RobertaConfig,
    RobertaForSequenceClassification,
    pipeline,
)

from recipes import cut_student as recipe
from toolkit import ToolkitInputError
from toolkit.students import CutReport, cut_student, save_student

N_TEACHER = 4
TOPICS = ["sports", "science", "politics"]


def small_config(tokenizer, **extra) -> BertConfig:
    return BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=N_TEACHER,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        pad_token_id=tokenizer.pad_token_id,
        **extra,
    )


def save_teacher(model, tokenizer, directory):
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def mlm_teacher(tokenizer) -> BertForMaskedLM:
    torch.manual_seed(0)
    return BertForMaskedLM(small_config(tokenizer)).eval()


@pytest.fixture(scope="module")
def mlm_dir(mlm_teacher, tokenizer, tmp_path_factory):
    return save_teacher(mlm_teacher, tokenizer, tmp_path_factory.mktemp("mlm4"))


@pytest.fixture(scope="module")
def classifier_dir(tokenizer, tmp_path_factory):
    torch.manual_seed(1)
    labels = {"id2label": dict(enumerate(TOPICS)), "label2id": {t: i for i, t in enumerate(TOPICS)}}
    model = BertForSequenceClassification(
        small_config(tokenizer, problem_type="single_label_classification", **labels)
    )
    return save_teacher(model, tokenizer, tmp_path_factory.mktemp("classifier4"))


def layer(model, j: int) -> dict[str, torch.Tensor]:
    """Layer ``j``'s tensors by their name inside the layer."""
    prefix = f"encoder.layer.{j}."
    return {k.split(prefix, 1)[1]: v for k, v in model.state_dict().items() if prefix in k}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def outside_layers(model) -> dict[str, torch.Tensor]:
    return {k: v for k, v in model.state_dict().items() if ".encoder.layer." not in k}


# ------------------------------------------------------------------------------------------ layer specs
@pytest.mark.parametrize(
    ("spec", "kept"),
    [
        ("every_other", [0, 2]),
        ("every-other", [0, 2]),
        ("0,2,3", [0, 2, 3]),
        (" 1, 3 ", [1, 3]),
        ("3", [3]),
        ([1, 3], [1, 3]),
        ((0, 1, 2, 3), [0, 1, 2, 3]),
    ],
)
def test_layer_specs(mlm_teacher, spec, kept):
    student, report = cut_student(mlm_teacher, layers=spec)
    assert report.kept_layers == kept
    assert student.config.num_hidden_layers == len(kept) == report.student_layers
    assert mlm_teacher.config.num_hidden_layers == N_TEACHER  # the teacher is not changed


def test_every_other_of_an_odd_count_keeps_the_first_and_last(tokenizer):
    config = small_config(tokenizer)
    config.num_hidden_layers = 5
    _, report = cut_student(BertModel(config))
    assert report.kept_layers == [0, 2, 4]


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ("0,4", "layer 4 is out of range"),
        ([0, -1], "layer -1 is out of range"),
        ("2,1", "strictly increasing"),
        ("1,1", "strictly increasing"),
        ("", "no layer given"),
        ([], "no layer given"),
        ("first,last", "not a list of layer numbers"),
        ("every_third", "not a list of layer numbers"),
        ([0.0, 1.0], "not a list of layer numbers"),
    ],
)
def test_bad_layer_specs_name_the_teachers_layer_count(mlm_teacher, spec, why):
    with pytest.raises(ToolkitInputError, match=why) as err:
        cut_student(mlm_teacher, layers=spec)
    assert "the teacher has 4 layers (0 to 3)" in str(err.value)


def test_num_layers_must_match_the_kept_layers_unless_embeddings_only(mlm_teacher):
    with pytest.raises(ToolkitInputError, match="num_layers 3 does not match the 2 layers kept"):
        cut_student(mlm_teacher, layers="0,2", num_layers=3)
    with pytest.raises(ToolkitInputError, match="at least 1"):
        cut_student(mlm_teacher, embeddings_only=True, num_layers=0)


def test_a_model_without_encoder_layer_names_is_refused(tokenizer):
    config = DistilBertConfig(vocab_size=len(tokenizer), dim=32, n_layers=2, n_heads=2, hidden_dim=64)
    with pytest.raises(ToolkitInputError, match=r"encoder\.layer\.N"):
        cut_student(DistilBertModel(config), layers="0")


# ------------------------------------------------------------------------------------- what is copied
def test_student_layer_j_is_teacher_layer_kept_j_and_not_teacher_layer_j(mlm_teacher):
    student, report = cut_student(mlm_teacher, layers=[1, 3])
    assert isinstance(student, BertForMaskedLM) and isinstance(report, CutReport)
    for j, i in enumerate([1, 3]):
        assert same(layer(student, j), layer(mlm_teacher, i))
        assert not same(layer(student, j), layer(mlm_teacher, j))
    assert same(outside_layers(student), outside_layers(mlm_teacher))  # embeddings and MLM head
    assert report.missing == [] and report.shape_mismatch == []
    assert (
        "bert.encoder.layer.0.output.dense.weight",
        "bert.encoder.layer.1.output.dense.weight",
    ) in report.copied
    dropped = {k for k in mlm_teacher.state_dict() if ".layer.0." in k or ".layer.2." in k}
    assert set(report.unexpected) == dropped
    assert report.summary().startswith("kept layers 1, 3 of 4; copied")
    ids = torch.tensor([[2, 10, 11, 12, 3]])
    assert student(input_ids=ids).logits.shape == mlm_teacher(input_ids=ids).logits.shape


def test_embeddings_only_copies_the_embeddings_and_leaves_layers_and_head_fresh(mlm_teacher):
    student, report = cut_student(mlm_teacher, embeddings_only=True, num_layers=3)
    assert student.config.num_hidden_layers == 3 and report.kept_layers == [] and report.embeddings_only
    teacher_state, state = mlm_teacher.state_dict(), student.state_dict()
    embeddings = [k for k in state if ".embeddings." in k]
    assert embeddings and all(torch.equal(state[k], teacher_state[k]) for k in embeddings)
    # the decoder is tied to the word embeddings: it follows them
    assert (
        student.cls.predictions.decoder.weight.data_ptr()
        == student.bert.embeddings.word_embeddings.weight.data_ptr()
    )
    assert torch.equal(student.cls.predictions.decoder.weight, mlm_teacher.cls.predictions.decoder.weight)
    for j in range(3):
        for i in range(N_TEACHER):
            assert not any(
                torch.equal(layer(student, j)[k], v)
                for k, v in layer(mlm_teacher, i).items()
                if "weight" in k and v.dim() == 2
            )
    head = "cls.predictions.transform.dense.weight"
    assert not torch.equal(state[head], teacher_state[head]) and head in report.missing
    assert "bert.encoder.layer.0.attention.self.query.weight" in report.missing
    assert report.summary().startswith("embeddings only, 3 fresh layers")


def test_embeddings_only_defaults_to_as_many_layers_as_named(mlm_teacher):
    assert cut_student(mlm_teacher, embeddings_only=True)[0].config.num_hidden_layers == 2
    assert cut_student(mlm_teacher, layers="0,1,2", embeddings_only=True)[0].config.num_hidden_layers == 3


def test_roberta_layers_are_found_under_their_own_prefix():
    torch.manual_seed(0)
    config = RobertaConfig(
        vocab_size=60, hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=40, num_labels=2,
    )  # fmt: skip
    teacher = RobertaForSequenceClassification(config)
    student, report = cut_student(teacher, layers="2")
    assert same(layer(student, 0), layer(teacher, 2)) and report.missing == []
    assert torch.equal(student.classifier.out_proj.weight, teacher.classifier.out_proj.weight)


# ------------------------------------------------------------------------------ saved directories
def test_a_cut_classifier_works_in_a_stock_pipeline(classifier_dir, tmp_path):
    student, report = cut_student(classifier_dir, layers="0,3")
    out = save_student(student, tmp_path / "student", report=report)
    loaded, info = AutoModelForSequenceClassification.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert loaded.config.num_hidden_layers == 2 and loaded.config.id2label == dict(enumerate(TOPICS))
    assert loaded.config.problem_type == "single_label_classification"
    teacher = AutoModelForSequenceClassification.from_pretrained(classifier_dir)
    assert torch.equal(loaded.classifier.weight, teacher.classifier.weight)
    assert same(layer(loaded, 1), layer(teacher, 3))
    predictions = pipeline("text-classification", model=str(out), device="cpu")(["the team won the match"])
    assert predictions[0]["label"] in TOPICS
    record = json.loads((out / "cut_report.json").read_text(encoding="utf-8"))
    assert record["teacher"] == str(classifier_dir) and record["kept_layers"] == [0, 3]
    assert record["teacher_layers"] == 4 and record["student_layers"] == 2 and record["missing"] == []
    assert record["summary"] == report.summary()


def test_a_cut_token_classifier_keeps_its_labels(tiny_tagger_dir, tmp_path):
    student, report = cut_student(tiny_tagger_dir, layers=[1])
    out = save_student(student, tmp_path / "tagger", report=report)
    loaded, info = AutoModelForTokenClassification.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and loaded.config.num_hidden_layers == 1
    assert [loaded.config.id2label[i] for i in range(len(NER_LABELS))] == NER_LABELS
    teacher = AutoModelForTokenClassification.from_pretrained(tiny_tagger_dir)
    assert same(layer(loaded, 0), layer(teacher, 1))
    assert torch.equal(loaded.classifier.weight, teacher.classifier.weight)


def test_a_cut_crf_tagger_keeps_its_crf(tiny_tagger_dir, tokenizer, tmp_path):
    from toolkit.taggers import attach_tagger_head, load_token_classifier

    teacher = attach_tagger_head(AutoModelForTokenClassification.from_pretrained(tiny_tagger_dir), crf=True)
    with torch.no_grad():
        teacher.crf.transitions.normal_()
    teacher_dir = save_teacher(teacher, tokenizer, tmp_path / "crf")
    student, report = cut_student(teacher_dir, layers="1")
    out = save_student(student, tmp_path / "student", report=report)
    loaded = load_token_classifier(out)
    assert report.missing == [] and loaded.config.num_hidden_layers == 1
    assert torch.equal(loaded.crf.transitions, teacher.crf.transitions)


def test_a_sentence_transformers_directory_keeps_its_modules(tokenizer, tmp_path):
    teacher_dir, _ = write_sentence_transformers_dir(tmp_path / "st", tokenizer, seed=2, layers=N_TEACHER)
    student, report = cut_student(teacher_dir)
    assert type(student).__name__ == "BertModel" and report.kept_layers == [0, 2] and report.missing == []
    out = save_student(student, tmp_path / "student", report=report)
    for name in ("modules.json", "sentence_bert_config.json", "1_Pooling/config.json"):
        assert (out / name).read_text() == (teacher_dir / name).read_text()
    loaded, info = AutoModel.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and same(
        layer(loaded, 1), layer(BertModel.from_pretrained(teacher_dir), 2)
    )


def test_a_sentence_transformers_directory_with_a_subfolder_names_the_remedy(tmp_path):
    (tmp_path / "modules.json").write_text("[]")
    with pytest.raises(ToolkitInputError, match="give that folder"):
        cut_student(tmp_path)


def test_save_refuses_the_teachers_directory_a_full_one_and_a_missing_tokenizer(
    mlm_dir, mlm_teacher, tmp_path
):
    student, report = cut_student(mlm_dir)
    with pytest.raises(ToolkitInputError, match="is the teacher's"):
        save_student(student, mlm_dir, report=report)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    with pytest.raises(ToolkitInputError, match="not empty"):
        save_student(student, tmp_path / "full", report=report)
    assert sorted(p.name for p in (tmp_path / "full").iterdir()) == ["notes.txt"]
    in_memory_student, in_memory_report = cut_student(mlm_teacher)
    with pytest.raises(ToolkitInputError, match="pass tokenizer="):
        save_student(in_memory_student, tmp_path / "memory", report=in_memory_report)
    assert not (tmp_path / "memory").exists()
    save_student(in_memory_student, tmp_path / "memory", report=in_memory_report, tokenizer=mlm_dir)
    assert (tmp_path / "memory" / "tokenizer_config.json").is_file()


# -------------------------------------------------------------------------------------------- the CLI
def test_cli_end_to_end(mlm_dir, mlm_teacher, tmp_path, capsys):
    out = tmp_path / "half"
    result = recipe.main([str(mlm_dir), "--output_dir", str(out), "--student_layers", "1,2"])
    assert result["kept_layers"] == [1, 2] and result["output_dir"] == str(out)
    printed = capsys.readouterr().out
    assert "kept layers 1, 2 of 4" in printed and str(out) in printed
    loaded = AutoModelForMaskedLM.from_pretrained(out)
    assert same(layer(loaded, 0), layer(mlm_teacher, 1)) and same(layer(loaded, 1), layer(mlm_teacher, 2))
    assert (out / "cut_report.json").is_file() and (out / "tokenizer_config.json").is_file()
    fill = pipeline("fill-mask", model=str(out), device="cpu")
    assert len(fill(f"the {fill.tokenizer.mask_token} barks")) == 5

    with pytest.raises(ToolkitInputError, match="not empty"):
        recipe.main([str(mlm_dir), "--output_dir", str(out)])
    result = recipe.main(
        [str(mlm_dir), "--output_dir", str(out), "--overwrite", "--embeddings_only", "--num_layers", "1"]
    )
    assert result["embeddings_only"] and result["student_layers"] == 1
    assert AutoModelForMaskedLM.from_pretrained(out).config.num_hidden_layers == 1


def test_cli_takes_keyword_options(mlm_dir, tmp_path):
    result = recipe.main(teacher=str(mlm_dir), output_dir=str(tmp_path / "kw"), student_layers=[0, 3])
    assert result["kept_layers"] == [0, 3]
    with pytest.raises(ToolkitInputError, match="unknown options: student_layer"):
        recipe.main(teacher=str(mlm_dir), output_dir=str(tmp_path / "kw2"), student_layer="0")
    with pytest.raises(ToolkitInputError, match="--output_dir"):
        recipe.main([str(mlm_dir)])
    with pytest.raises(ToolkitInputError, match="the teacher has 4 layers"):
        recipe.main([str(mlm_dir), "--output_dir", str(tmp_path / "bad"), "--student_layers", "0,9"])
    assert not (tmp_path / "bad").exists()
