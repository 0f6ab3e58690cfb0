"""Safety: no token in any file written or pushed, no silent overwrite, exact fine-tuning resume, and a
changed run refused in a finished output directory."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import tiny_recipe_flags
from hub_server import ALICE

import toolkit._secrets
from recipes import extract_vectors, pretrain, train_classifier, train_ner
from toolkit import ToolkitInputError
from toolkit._secrets import redact_argv
from toolkit.demo import write_demo_labelled
from toolkit.training import training_command


@pytest.fixture(autouse=True)
def forget_secrets(monkeypatch):
    """Each test starts with no token remembered, as a new process would."""
    monkeypatch.setattr(toolkit._secrets, "_registered", set())


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    return write_demo_labelled(tmp_path_factory.mktemp("labelled"), n=120)


def _everything_written(*roots: Path) -> str:
    return "\n".join(
        p.read_bytes().decode("utf-8", "replace")
        for root in roots
        for p in Path(root).rglob("*")
        if p.is_file()
    )


def _finetune_flags(recipe: str, base: Path, labelled: dict, out: Path, *extra: str) -> list[str]:
    data = ("topic_train", "topic_dev") if recipe == "classifier" else ("ner_train", "ner_dev")
    return [
        "--model_name_or_path", str(base),
        "--train_file", str(labelled[data[0]]),
        "--validation_file", str(labelled[data[1]]),
        "--output_dir", str(out),
        "--max_steps", "6",
        "--per_device_train_batch_size", "8",
        "--learning_rate", "1e-3",
        "--report_to", "none",
        "--disable_tqdm", "true",
        "--logging_steps", "1",
        "--seed", "3",
        *(["--max_length", "12", "--stride", "3"] if recipe == "ner" else []),
        *extra,
    ]  # fmt: skip


RECIPES = {"classifier": train_classifier.main, "ner": train_ner.main}

# ------------------------------------------------------------------------------------------ 1. token leak

SPELLINGS = {
    "underscore": lambda t: ["--hub_token", t],
    "dash (as --help lists it)": lambda t: ["--hub-token", t],
    "underscore=": lambda t: [f"--hub_token={t}"],
    "dash=": lambda t: [f"--hub-token={t}"],
    "HF_TOKEN only": lambda t: [],
}


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_pretrain_token_in_no_file_written_or_pushed(
    spelling, hub_env, corpus_dir, tmp_path, monkeypatch, capsys, caplog
):
    if spelling != "HF_TOKEN only":
        monkeypatch.delenv("HF_TOKEN")
    out = tmp_path / "mlm"
    flags = ["--push_to_hub", "true", "--hub_model_id", "tiny-mlm", *SPELLINGS[spelling](ALICE)]
    pretrain.main(tiny_recipe_flags(corpus_dir, out, "--save_strategy", "steps", "--save_steps", "2", *flags))
    pushed = hub_env.repos["alice/tiny-mlm"]["branches"]["main"]["files"]
    assert "README.md" in pushed and "toolkit_run.json" in pushed
    captured = capsys.readouterr()
    assert ALICE not in _everything_written(out) + captured.out + captured.err + caplog.text
    assert all(ALICE.encode() not in data for data in pushed.values())
    assert "***" in pushed["README.md"].decode() or spelling == "HF_TOKEN only"


@pytest.mark.parametrize("recipe", RECIPES)
@pytest.mark.parametrize("spelling", ["dash (as --help lists it)", "dash="])
def test_finetune_token_in_no_file_written_or_pushed(
    recipe, spelling, hub_env, tiny_mlm_dir, labelled, tmp_path, monkeypatch, capsys, caplog
):
    monkeypatch.delenv("HF_TOKEN")
    out = tmp_path / recipe
    flags = ["--push_to_hub", "true", "--hub_model_id", f"alice/{recipe}", *SPELLINGS[spelling](ALICE)]
    RECIPES[recipe](_finetune_flags(recipe, tiny_mlm_dir, labelled, out, *flags))
    pushed = hub_env.repos[f"alice/{recipe}"]["branches"]["main"]["files"]
    captured = capsys.readouterr()
    assert ALICE not in _everything_written(out) + captured.out + captured.err + caplog.text
    assert all(ALICE.encode() not in data for data in pushed.values())
    assert "--hub-token" in pushed["README.md"].decode()  # the command is shown, its value masked


def test_an_abbreviated_token_flag_is_refused_without_echoing_the_token(corpus_dir, tmp_path):
    for flag in ("--hub_tok", "--hub-tok", "--hub_t"):
        with pytest.raises(ToolkitInputError, match=f"unknown options: {flag} ") as err:
            pretrain.main(tiny_recipe_flags(corpus_dir, tmp_path / "o", flag, ALICE))
        assert ALICE not in str(err.value)
    with pytest.raises(ToolkitInputError, match="unknown options: --outp "):  # extraction: no prefix matching
        extract_vectors.main(["--checkpoint", "x", "--outp", "y.vec", "--input", "z"])


def test_redaction_is_by_value(monkeypatch):
    monkeypatch.setenv("HUGGING_FACE_HUB_TOKEN", "hf_from_the_environment")
    argv = ["--hub-token", "hf_given_once", "--note", "hf_given_once", "--x=hf_from_the_environment"]
    assert redact_argv(argv) == ["--hub-token", "***", "--note", "***", "--x=***"]
    command = training_command(["--hub-token=hf_other_value", "--seed", "1"], script="recipes/pretrain.py")
    assert "hf_other_value" not in command and "--hub-token=***" in command


def test_vector_push_keeps_the_token_out(hub_env, tiny_mlm_dir, corpus_dir, tmp_path, capsys, caplog):
    out = tmp_path / "vectors"
    out.mkdir()
    extract_vectors.main(
        [
            "--checkpoint",
            str(tiny_mlm_dir),
            "--input",
            str(corpus_dir / "train.txt"),
            "--output",
            str(out / "c.vec"),
        ]
        + ["--push_to_hub", "--hub_model_id", "alice/chars"]
    )
    captured = capsys.readouterr()
    assert ALICE not in _everything_written(out) + captured.out + captured.err + caplog.text
    files = hub_env.repos["alice/chars"]["branches"]["main"]["files"]
    assert all(ALICE.encode() not in data for data in files.values())


# ------------------------------------------------------------------------------- 2. overwrite and writing


def test_extraction_refuses_to_destroy_an_input_or_overwrite(tiny_mlm_dir, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "en.txt").write_text("hello world\n", encoding="utf-8")
    base = ["--checkpoint", str(tiny_mlm_dir), "--input", str(corpus)]
    with pytest.raises(ToolkitInputError, match="is one of the inputs"):
        extract_vectors.main([*base, "--output", str(corpus / "en.txt"), "--overwrite"])
    assert (corpus / "en.txt").read_text(encoding="utf-8") == "hello world\n"
    out = tmp_path / "v.vec"
    out.write_text("a user's file\n")
    with pytest.raises(ToolkitInputError, match="already exists: pass --overwrite"):
        extract_vectors.main([*base, "--output", str(out)])
    assert out.read_text() == "a user's file\n"
    extract_vectors.main([*base, "--output", str(out), "--overwrite"])
    assert out.read_text().split()[1] == "32"  # a word2vec header: n_vectors dim
    npy = tmp_path / "n.npy"
    (tmp_path / "n.vocab.txt").write_text("user data\n")  # a sidecar the npy format would write
    with pytest.raises(ToolkitInputError, match="n.vocab.txt' already exists"):
        extract_vectors.main([*base, "--output", str(npy)])


def test_unwritable_outputs_fail_before_any_work(tiny_mlm_dir, corpus_dir, tmp_path, monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("work started before the output was checked")

    monkeypatch.setattr(extract_vectors, "load_encoder", no_work)
    # /proc refuses new files even to root (a chmod'ed directory would not stop root).
    with pytest.raises(ToolkitInputError, match="'/proc' is not writable"):
        extract_vectors.main(
            ["--checkpoint", str(tiny_mlm_dir), "--input", str(corpus_dir), "--output", "/proc/v.vec"]
        )
    monkeypatch.setattr(pretrain, "load_corpus", no_work)
    with pytest.raises(ToolkitInputError, match="is not writable"):
        pretrain.main(tiny_recipe_flags(corpus_dir, Path("/proc/toolkit_out")))
    (tmp_path / "file").write_text("x")
    with pytest.raises(ToolkitInputError, match="is a file, not a directory"):
        pretrain.main(tiny_recipe_flags(corpus_dir, tmp_path / "file"))


@pytest.mark.parametrize("recipe", RECIPES)
def test_finetuning_refuses_a_directory_of_user_files(recipe, tiny_mlm_dir, labelled, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "README.md").write_text("my notes\n")
    (out / "config.json").write_text("{}")
    flags = _finetune_flags(recipe, tiny_mlm_dir, labelled, out, "--save_strategy", "no")
    with pytest.raises(ToolkitInputError, match="is not empty and holds no run of this toolkit .*README.md"):
        RECIPES[recipe](flags)
    assert (out / "README.md").read_text() == "my notes\n"
    RECIPES[recipe]([*flags, "--overwrite_output_dir", "true"])
    assert "fine-tuned by the toolkit" in (out / "README.md").read_text()
    # a re-run of the same run is welcome; a run of another recipe is not
    RECIPES[recipe](flags)
    other = "ner" if recipe == "classifier" else "classifier"
    with pytest.raises(ToolkitInputError, match=f"holds a run of 'train_{recipe}'"):
        RECIPES[other](_finetune_flags(other, tiny_mlm_dir, labelled, out, "--save_strategy", "no"))


# ------------------------------------------------------------------------------------ 3. fine-tuning resume


def _losses(output_dir: Path) -> dict[int, float]:
    state = json.loads((output_dir / "checkpoint-6" / "trainer_state.json").read_text())
    return {h["step"]: h["loss"] for h in state["log_history"] if "loss" in h}


@pytest.mark.parametrize("recipe", RECIPES)
def test_finetuning_resumes_exactly(recipe, tiny_mlm_dir, labelled, tmp_path):
    common = ("--save_strategy", "steps", "--save_steps", "3", "--dropout", "0.1")
    full = tmp_path / "full"
    first = RECIPES[recipe](_finetune_flags(recipe, tiny_mlm_dir, labelled, full, *common))
    # A run killed after its step-3 checkpoint: re-running the same command resumes from it.
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    shutil.copytree(full / "checkpoint-3", resumed / "checkpoint-3")
    second = RECIPES[recipe](_finetune_flags(recipe, tiny_mlm_dir, labelled, resumed, *common))
    a, b = _losses(full), _losses(resumed)
    assert sorted(b) == [1, 2, 3, 4, 5, 6]  # steps 1-3 from the checkpoint's history
    torch.testing.assert_close(
        torch.tensor([b[s] for s in (4, 5, 6)]), torch.tensor([a[s] for s in (4, 5, 6)])
    )
    assert (full / "model.safetensors").read_bytes() == (resumed / "model.safetensors").read_bytes()
    assert second["train"]["train_loss"] == pytest.approx(first["train"]["train_loss"], rel=1e-6)
    assert "train_loss_this_run" in second["train"]
    # A resume path that does not exist is an error, not a fresh run.
    with pytest.raises(ToolkitInputError, match="is not a directory"):
        RECIPES[recipe](
            _finetune_flags(
                recipe, tiny_mlm_dir, labelled, tmp_path / "x", "--resume_from_checkpoint", "/nope"
            )
        )
    # A checkpoint of another run is refused.
    with pytest.raises(
        ToolkitInputError,
        match=r"cannot resume from .*checkpoint-3': it holds a different run \(what changed: options\.(max_length|stride)",
    ):
        changed = ("--max_length", "16") if recipe == "classifier" else ("--stride", "2")
        RECIPES[recipe](
            _finetune_flags(recipe, tiny_mlm_dir, labelled, tmp_path / "y", *common, *changed)
            + ["--resume_from_checkpoint", str(full / "checkpoint-3")]
        )


# -------------------------------------------------------------------------------------------- 4. provenance


def test_a_changed_run_is_refused_in_a_finished_directory(corpus_dir, tmp_path):
    out = tmp_path / "run"
    pretrain.main(tiny_recipe_flags(corpus_dir, out, "--save_strategy", "steps", "--save_steps", "2"))
    card = (out / "README.md").read_text()
    other = tmp_path / "other.txt"
    other.write_text((corpus_dir / "train.txt").read_text(encoding="utf-8")[:-200], encoding="utf-8")
    flags = tiny_recipe_flags(corpus_dir, out, "--vocab_size", "350")
    flags[flags.index("--train_files") + 1] = str(other)
    with pytest.raises(
        ToolkitInputError,
        match=r"holds a different run \(what changed: .*other.txt.*tokenizer.vocab_size: 400 -> 350",
    ):
        pretrain.main(flags)
    assert (out / "README.md").read_text() == card  # nothing was changed
    pretrain.main(
        [
            *flags,
            "--overwrite_output_dir",
            "true",
            "--max_steps",
            "2",
            "--save_strategy",
            "steps",
            "--save_steps",
            "1",
        ]
    )
    assert json.loads((out / "config.json").read_text())["vocab_size"] <= 350
    assert "other.txt" in (out / "README.md").read_text()
    # The old run's checkpoints went with it (one at step 4, the new run stops at 2); the new ones are the new run's.
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
    record = json.loads((out / "checkpoint-2" / "toolkit_run.json").read_text())
    assert record["fingerprint"]["tokenizer"]["vocab_size"] == 350


def test_the_same_run_spelt_another_way_is_the_same_run(corpus_dir, tmp_path, monkeypatch):
    """Paths enter the run's definition by content: ./corpus/train.txt from the corpus's parent directory is
    the run that corpus/train.txt started, and it resumes."""
    out = tmp_path / "run"
    flags = tiny_recipe_flags(corpus_dir, out, "--save_strategy", "steps", "--save_steps", "2")
    pretrain.main(flags)
    monkeypatch.chdir(corpus_dir)
    flags[flags.index("--train_files") + 1] = "./train.txt"
    flags[flags.index("--validation_files") + 1] = "valid.txt"
    assert pretrain.main([*flags, "--max_steps", "6"])["resumed_from_step"] == 4


def test_a_checkpoint_cut_short_is_passed_over(corpus_dir, tmp_path, caplog):
    """kill -9 during a save leaves checkpoint-N without its run record (written last): the re-run resumes
    from the one before."""
    out = tmp_path / "run"
    flags = tiny_recipe_flags(corpus_dir, out, "--save_strategy", "steps", "--save_steps", "2")
    pretrain.main(flags)
    shutil.rmtree(out / "checkpoint-4")
    shutil.copytree(out / "checkpoint-2", out / "checkpoint-4")
    (out / "checkpoint-4" / "toolkit_run.json").unlink()  # the save of step 4 never finished
    assert pretrain.main(flags)["resumed_from_step"] == 2
    assert "checkpoint-4 was cut short" in caplog.text


def test_resumed_run_logs_the_whole_runs_loss_everywhere(corpus_dir, tmp_path):
    common = ("--max_steps", "6", "--save_strategy", "steps", "--save_steps", "3")
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    first = pretrain.main(tiny_recipe_flags(corpus_dir, full, *common))
    resumed.mkdir()
    shutil.copytree(full / "checkpoint-3", resumed / "checkpoint-3")
    second = pretrain.main(tiny_recipe_flags(corpus_dir, resumed, *common))
    final = [
        h
        for h in json.loads((resumed / "trainer_state.json").read_text())["log_history"]
        if "train_loss" in h
    ]
    assert final[-1]["train_loss"] == pytest.approx(first["train_loss"], rel=1e-6) == second["train_loss"]
    assert "train_loss_this_run" in final[-1]


def test_a_refused_output_dir_creates_no_hub_repository(hub_env, corpus_dir, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ToolkitInputError, match="holds no run of this toolkit"):
        pretrain.main(tiny_recipe_flags(corpus_dir, out, "--push_to_hub", "true", "--hub_model_id", "never"))
    assert "alice/never" not in hub_env.repos


def test_ner_evaluates_during_training(tiny_mlm_dir, labelled, tmp_path):
    """--eval_strategy with a validation file evaluates the validation windows' loss during training."""
    flags = _finetune_flags("ner", tiny_mlm_dir, labelled, tmp_path / "o", "--eval_strategy", "steps")
    train_ner.main([*flags, "--eval_steps", "3", "--save_strategy", "steps", "--save_steps", "6"])
    history = json.loads((tmp_path / "o" / "checkpoint-6" / "trainer_state.json").read_text())["log_history"]
    assert [h["step"] for h in history if "eval_loss" in h] == [3, 6]


def test_extraction_never_writes_into_the_checkpoint_or_beside_a_wrong_name(
    tiny_mlm_dir, corpus_dir, tmp_path
):
    ckpt = tmp_path / "ckpt"
    shutil.copytree(tiny_mlm_dir, ckpt)
    before = (ckpt / "config.json").read_bytes()
    with pytest.raises(ToolkitInputError, match="is one of the inputs"):
        extract_vectors.main(
            [
                "--checkpoint",
                str(ckpt),
                "--input",
                str(corpus_dir / "train.txt"),
                "--output",
                str(ckpt / "config.json"),
            ]
            + ["--format", "npy", "--overwrite"]
        )
    assert (ckpt / "config.json").read_bytes() == before
    out = tmp_path / "v.vec"
    extract_vectors.main(
        ["--checkpoint", str(ckpt), "--input", str(corpus_dir / "train.txt"), "--output", str(out)]
        + ["--format", "npy"]
    )
    assert out.is_file() and not (tmp_path / "v.vec.npy").exists()


def test_early_errors_do_not_show_a_token(corpus_dir, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("hub_token: hf_secret_in_yaml_123\nmax_steps: [1\n")
    with pytest.raises(ToolkitInputError, match="not valid YAML at line") as err:
        pretrain.main(["--config", str(bad)])
    assert "hf_secret_in_yaml_123" not in str(err.value)
    with pytest.raises(ToolkitInputError, match="invalid int value") as err:
        pretrain.main(
            tiny_recipe_flags(
                corpus_dir, tmp_path / "o", "--hub_token", "hf_flag_secret_9", "--max_steps", "x"
            )
        )
    assert "hf_flag_secret_9" not in toolkit._secrets.redact(str(err.value))
