"""Self-test of tests/hub_server.py: the installed huggingface_hub and transformers talk to the local hub."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx2
import hub_server
import pytest
from hub_server import LocalHub, git_blob_sha1
from huggingface_hub import HfApi, constants, hf_hub_download, snapshot_download
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

# The fixture, bound by assignment: `from hub_server import local_hub` works for pytest too, but ruff then
# reports F811 (redefinition of an unused import) on every test that takes `local_hub` as an argument.
local_hub = hub_server.local_hub

ALICE = "hf_test_alice_token_123"
BOB = "hf_test_bob_token_456"
BIG = 20 * 1024 * 1024


def _status(err: BaseException) -> int | None:
    return getattr(getattr(err, "response", None), "status_code", None)


def _folder(path: Path, text: str = "hello hub\n", big: bytes | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "notes.txt").write_text(text, encoding="utf-8")
    if big is not None:
        (path / "weights").mkdir(exist_ok=True)
        (path / "weights" / "model.safetensors").write_bytes(big)
    return path


def _commit_requests(hub: LocalHub) -> list[tuple[str, str, dict]]:
    return [r for r in hub.requests if r[0] == "POST" and "/commit/" in r[1]]


def test_whoami(local_hub):
    me = HfApi(endpoint=local_hub.url, token=ALICE).whoami()
    assert me["type"] == "user" and me["name"] == "alice"
    assert [org["name"] for org in me["orgs"]] == ["alice-org"]
    assert me["auth"]["accessToken"]["role"] == "write"
    with pytest.raises(HfHubHTTPError) as err:
        HfApi(endpoint=local_hub.url, token="hf_unknown").whoami()
    assert _status(err.value) == 401
    assert httpx2.get(f"{local_hub.url}/api/whoami-v2", timeout=10).status_code == 401


def test_create_repo(local_hub):
    api = HfApi(endpoint=local_hub.url, token=ALICE)
    url = api.create_repo("alice/private-one", private=True)
    assert url == f"{local_hub.url}/alice/private-one" and url.repo_id == "alice/private-one"
    assert local_hub.repos["alice/private-one"]["private"] is True
    assert api.create_repo("alice-org/shared", exist_ok=True).repo_id == "alice-org/shared"
    assert local_hub.repos["alice-org/shared"]["private"] is False
    assert api.create_repo("alice/private-one", exist_ok=True).repo_id == "alice/private-one"  # 409 swallowed
    with pytest.raises(HfHubHTTPError) as err:
        api.create_repo("alice/private-one")
    assert _status(err.value) == 409
    with pytest.raises(HfHubHTTPError) as err:
        api.create_repo("bob/not-yours")
    assert _status(err.value) == 403
    assert "bob/not-yours" not in local_hub.repos
    with pytest.raises(HfHubHTTPError) as err:
        HfApi(endpoint=local_hub.url, token="hf_unknown").create_repo("alice/anon")
    assert _status(err.value) == 401


def test_upload_folder_and_download_back_on_main_and_a_branch(local_hub, tmp_path):
    api = HfApi(endpoint=local_hub.url, token=ALICE)
    api.create_repo("alice/data", exist_ok=True)
    big = os.urandom(BIG)
    folder = _folder(tmp_path / "out", big=big)
    info = api.upload_folder(repo_id="alice/data", folder_path=folder, commit_message="first push")
    assert len(info.oid) == 40 and info.oid == local_hub.repos["alice/data"]["branches"]["main"]["sha"]
    assert info.commit_url.endswith(f"/alice/data/commit/{info.oid}")
    assert local_hub.files("alice/data") == {"notes.txt": b"hello hub\n", "weights/model.safetensors": big}
    # Every file went in the NDJSON commit itself: nothing was sent to an LFS or Xet endpoint.
    assert not [r for r in local_hub.requests if "lfs" in r[1] or "xet" in r[1]]

    cache = tmp_path / "cache"
    text = hf_hub_download("alice/data", "notes.txt", endpoint=local_hub.url, token=ALICE, cache_dir=cache)
    weights = hf_hub_download(
        "alice/data", "weights/model.safetensors", revision="main", endpoint=local_hub.url, cache_dir=cache
    )
    assert Path(text).read_bytes() == b"hello hub\n"
    assert Path(weights).read_bytes() == big
    assert (
        Path(weights).parent.name == "weights" and info.oid in Path(weights).parts
    )  # snapshots/<commit sha>/...

    # A branch made from main, then a commit to it: the unchanged 20 MB file is not sent again.
    api.create_branch("alice/data", branch="dev", exist_ok=True)
    api.create_branch("alice/data", branch="dev", exist_ok=True)
    _folder(folder, text="dev notes\n")
    dev = api.upload_folder(repo_id="alice/data", folder_path=folder, revision="dev", commit_message="on dev")
    dev_commit = _commit_requests(local_hub)[-1]
    assert dev_commit[1] == "/api/models/alice/data/commit/dev"
    assert int(dev_commit[2]["content-length"]) < 10_000
    assert local_hub.repos["alice/data"]["commits"][dev.oid]["parent"] == info.oid
    assert local_hub.files("alice/data", "dev") == {
        "notes.txt": b"dev notes\n",
        "weights/model.safetensors": big,
    }
    assert local_hub.files("alice/data")["notes.txt"] == b"hello hub\n"
    dev_text = hf_hub_download(
        "alice/data", "notes.txt", revision="dev", endpoint=local_hub.url, cache_dir=cache
    )
    dev_weights = hf_hub_download(
        "alice/data", "weights/model.safetensors", revision="dev", endpoint=local_hub.url, cache_dir=cache
    )
    assert Path(dev_text).read_bytes() == b"dev notes\n" and Path(dev_weights).read_bytes() == big
    by_sha = hf_hub_download(
        "alice/data", "notes.txt", revision=info.oid, endpoint=local_hub.url, cache_dir=cache
    )
    assert Path(by_sha).read_bytes() == b"hello hub\n"

    snapshot = Path(
        snapshot_download("alice/data", revision="dev", endpoint=local_hub.url, cache_dir=tmp_path / "s")
    )
    files = {p.relative_to(snapshot).as_posix(): p.read_bytes() for p in snapshot.rglob("*") if p.is_file()}
    assert files == {"notes.txt": b"dev notes\n", "weights/model.safetensors": big}
    assert api.model_info("alice/data", revision="dev").sha == dev.oid
    assert {s.rfilename for s in api.model_info("alice/data").siblings} == {
        "notes.txt",
        "weights/model.safetensors",
    }
    assert {r.name for r in api.list_repo_refs("alice/data").branches} == {"main", "dev"}
    tree = {
        f.path: f.blob_id for f in api.list_repo_tree("alice/data", recursive=True) if hasattr(f, "blob_id")
    }
    assert tree == {
        "notes.txt": git_blob_sha1(b"hello hub\n"),
        "weights/model.safetensors": git_blob_sha1(big),
    }
    assert not local_hub.unhandled


def test_missing_entries_get_the_hub_error_codes(local_hub, tmp_path):
    from huggingface_hub.errors import RemoteEntryNotFoundError, RevisionNotFoundError

    api = HfApi(endpoint=local_hub.url, token=ALICE)
    api.create_repo("alice/small")
    api.upload_file(path_or_fileobj=b"{}", path_in_repo="config.json", repo_id="alice/small")
    kwargs = {"endpoint": local_hub.url, "cache_dir": tmp_path, "etag_timeout": 5}
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download("alice/small", "missing.json", **kwargs)
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download("alice/small", "config.json", revision="nope", **kwargs)
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("alice/nothing-here", "config.json", **kwargs)
    head = httpx2.head(f"{local_hub.url}/alice/small/resolve/main/missing.json", timeout=10)
    assert head.status_code == 404 and head.headers["X-Error-Code"] == "EntryNotFound"
    assert head.headers["X-Repo-Commit"] == local_hub.repos["alice/small"]["branches"]["main"]["sha"]
    with pytest.raises(RevisionNotFoundError):  # a commit to a branch that was never created
        api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="alice/small", revision="nope")


def test_private_repo_is_invisible_to_others(local_hub, tmp_path):
    alice = HfApi(endpoint=local_hub.url, token=ALICE)
    alice.create_repo("alice/secret", private=True)
    alice.upload_file(path_or_fileobj=b"top secret", path_in_repo="s.txt", repo_id="alice/secret")
    assert alice.model_info("alice/secret").private is True
    for token in (BOB, False):
        with pytest.raises(RepositoryNotFoundError):
            HfApi(endpoint=local_hub.url, token=token).model_info("alice/secret")
        with pytest.raises(RepositoryNotFoundError):
            hf_hub_download(
                "alice/secret", "s.txt", endpoint=local_hub.url, token=token, cache_dir=tmp_path / "b"
            )
        with pytest.raises(RepositoryNotFoundError):
            snapshot_download("alice/secret", endpoint=local_hub.url, token=token, cache_dir=tmp_path / "b")
    got = hf_hub_download(
        "alice/secret", "s.txt", endpoint=local_hub.url, token=ALICE, cache_dir=tmp_path / "a"
    )
    assert Path(got).read_bytes() == b"top secret"
    # A public repo is readable by bob, not writable.
    alice.create_repo("alice/open")
    bob = HfApi(endpoint=local_hub.url, token=BOB)
    assert bob.model_info("alice/open").private is False
    with pytest.raises(HfHubHTTPError) as err:
        bob.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="alice/open")
    assert _status(err.value) == 403


def test_fail_next_commit_raises_then_a_retry_succeeds(local_hub, tmp_path):
    api = HfApi(endpoint=local_hub.url, token=ALICE)
    api.create_repo("alice/flaky")
    folder = _folder(tmp_path / "out", big=b"\0" * 1024)
    before = local_hub.repos["alice/flaky"]["branches"]["main"]["sha"]
    local_hub.fail_next_commit = True
    with pytest.raises(httpx2.TransportError):
        api.upload_folder(repo_id="alice/flaky", folder_path=folder, commit_message="push")
    assert local_hub.fail_next_commit is False
    assert local_hub.repos["alice/flaky"]["branches"]["main"]["sha"] == before
    assert len(_commit_requests(local_hub)) == 1
    info = api.upload_folder(repo_id="alice/flaky", folder_path=folder, commit_message="push")
    assert local_hub.repos["alice/flaky"]["branches"]["main"]["sha"] == info.oid
    assert set(local_hub.files("alice/flaky")) == {"notes.txt", "weights/model.safetensors"}

    local_hub.commit_failure_mode = "reset"
    local_hub.fail_next_commit = True
    with pytest.raises(httpx2.TransportError):
        api.upload_file(path_or_fileobj=b"more", path_in_repo="more.txt", repo_id="alice/flaky")
    assert "more.txt" not in local_hub.files("alice/flaky")


def test_pipelined_upload_folder_with_xet_enabled(local_hub, tmp_path, monkeypatch):
    """With hf_xet installed and not disabled, upload_folder takes the pipelined path: it works on the regular
    path too, retries a dropped commit by itself, and surfaces a response it cannot decode."""
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", False)
    api = HfApi(endpoint=local_hub.url, token=ALICE)
    api.create_repo("alice/piped")
    big = os.urandom(BIG)
    folder = _folder(tmp_path / "out", big=big)
    local_hub.fail_next_commit = True  # "drop": retried once, about 1 s later, by the client itself
    info = api.upload_folder(repo_id="alice/piped", folder_path=folder, commit_message="piped")
    assert len(_commit_requests(local_hub)) == 2
    assert local_hub.files("alice/piped")["weights/model.safetensors"] == big
    assert not [r for r in local_hub.requests if "xet" in r[1] or "lfs" in r[1]]
    local_hub.commit_failure_mode = "corrupt"
    local_hub.fail_next_commit = True
    _folder(folder, text="changed\n")
    with pytest.raises(httpx2.DecodingError):
        api.upload_folder(repo_id="alice/piped", folder_path=folder, commit_message="piped again")
    assert local_hub.repos["alice/piped"]["branches"]["main"]["sha"] == info.oid


def test_transformers_from_pretrained_by_repo_id_in_a_subprocess(local_hub, tmp_path):
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = ["hello", "world", "the", "hub", "is", "local"]
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab = special + words + letters + [f"##{c}" for c in letters]
    vocab += [f"[unused{i}]" for i in range(100 - len(vocab))]
    tokenizer = BertTokenizer(vocab={token: i for i, token in enumerate(vocab)})
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=64,
    )  # fmt: skip
    model = BertModel(config).eval()
    local = tmp_path / "tiny"
    model.save_pretrained(local)
    tokenizer.save_pretrained(local)

    api = HfApi(endpoint=local_hub.url, token=ALICE)
    api.create_repo("alice/tiny", private=True)
    api.upload_folder(repo_id="alice/tiny", folder_path=local, commit_message="tiny bert")

    script = textwrap.dedent(
        """
        import sys, torch
        from transformers import AutoModel, AutoTokenizer
        tokenizer = AutoTokenizer.from_pretrained("alice/tiny")
        model = AutoModel.from_pretrained("alice/tiny").eval()
        batch = tokenizer(["hello world", "the hub is local"], padding=True, return_tensors="pt")
        with torch.no_grad():
            out = model(**batch).last_hidden_state
        torch.save({"input_ids": batch["input_ids"], "out": out}, sys.argv[1])
        """
    )
    result_file = tmp_path / "result.pt"
    env = local_hub.env(
        token=ALICE, HF_HOME=str(tmp_path / "hf_home"), HF_HUB_CACHE=str(tmp_path / "hf_cache")
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(result_file)], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    remote = torch.load(result_file)
    batch = tokenizer(["hello world", "the hub is local"], padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = model(**batch).last_hidden_state
    assert torch.equal(remote["input_ids"], batch["input_ids"])
    assert torch.equal(remote["out"], expected)
    downloaded = {
        r[1].rsplit("/", 1)[-1] for r in local_hub.requests if r[0] == "GET" and "/resolve/" in r[1]
    }
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= downloaded
    assert not local_hub.unhandled

    # The repo is private: without a token, a download through HF_ENDPOINT fails.
    env = local_hub.env(HF_HOME=str(tmp_path / "hf_home2"), HF_HUB_CACHE=str(tmp_path / "hf_cache2"))
    code = "from huggingface_hub import hf_hub_download; hf_hub_download('alice/tiny', 'config.json')"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "RepositoryNotFoundError" in proc.stderr
