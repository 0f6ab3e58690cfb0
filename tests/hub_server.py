"""A local, in-memory imitation of the Hugging Face Hub HTTP API, for tests that must not reach the network.

It serves what the installed ``huggingface_hub`` client (2.x) calls for the toolkit's workflows: ``whoami``,
``create_repo`` / ``delete_repo``, ``create_branch`` / ``delete_branch``, ``upload_folder`` / ``upload_file`` /
``create_commit`` (preupload + NDJSON commit), ``model_info`` / ``repo_info``, ``list_repo_tree`` /
``list_repo_files`` / ``get_paths_info``, ``list_repo_refs`` / ``list_repo_commits``, and the ``resolve`` URLs used
by ``hf_hub_download``, ``snapshot_download`` and transformers' ``from_pretrained(repo_id)``.

Every file is stored as a regular git blob: the preupload endpoint answers ``uploadMode: "regular"`` for every
file (the client never forces LFS or Xet on its own: the mode comes from that answer, whatever the size), so no
LFS batch or Xet transfer is needed, and downloads are plain HTTP GETs (no ``X-Xet-Hash`` header is ever sent).

Usage::

    with LocalHub({"hf_token": {"name": "alice", "orgs": ["team"]}}) as hub:
        HfApi(endpoint=hub.url, token="hf_token").create_repo("alice/demo")

or the ``local_hub`` pytest fixture below. To use it from another test module without lint noise, bind it by
assignment: ``import hub_server`` then ``local_hub = hub_server.local_hub`` (``from hub_server import local_hub
# noqa: F401`` works for pytest too, but ruff then reports F811 on every test taking ``local_hub`` as argument).

As on the Hub: a new repo has one (here empty) initial commit on ``main``; a commit to a branch that does not
exist fails with ``RevisionNotFound`` (create it first with ``create_branch``, which starts from ``main``);
private repos answer 404 ``RepoNotFound`` to anyone outside the owner's namespace (the user or an org member).

Fault injection: ``hub.fail_next_commit = True`` (or an int N: the next N commit requests) makes the next commit
request fail without being applied, as set by ``hub.commit_failure_mode``:

- ``"drop"`` (default): the connection is closed without a response (``httpx2.RemoteProtocolError``);
- ``"reset"``: the connection is reset (TCP RST; ``httpx2.ReadError`` or ``RemoteProtocolError``);
- ``"corrupt"``: a response whose gzip body cannot be decoded (``httpx2.DecodingError``).

Note on the client: with ``hf_xet`` installed, ``upload_folder`` goes through a pipelined uploader that retries a
failed commit POST on network errors (5 retries, 1 s to 8 s apart), so one dropped or reset connection is
retried transparently there; ``create_commit`` / ``upload_file``, and ``upload_folder`` with Xet disabled, make
one attempt. The ``"corrupt"`` mode is never retried by any path. The ``local_hub`` fixture disables Xet (as
``HF_HUB_DISABLE_XET=1`` does), so that ``upload_folder`` makes a single commit attempt.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import itertools
import json
import os
import socket
import struct
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

__all__ = ["DEFAULT_USERS", "Headers", "LocalHub", "git_blob_sha1", "local_hub"]

DEFAULT_USERS: dict[str, dict] = {
    "hf_test_alice_token_123": {"name": "alice", "orgs": ["alice-org"]},
    "hf_test_bob_token_456": {"name": "bob", "orgs": []},
}

_TYPE_PREFIXES = {"models": "model", "datasets": "dataset", "spaces": "space", "kernels": "kernel"}
_FAILURE_MODES = ("drop", "reset", "corrupt")


def git_blob_sha1(content: bytes) -> str:
    """The git object id of a blob: what the Hub returns as the ETag / ``oid`` of a regular file."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _repo_key(repo_type: str, repo_id: str) -> str:
    """Key of a repo in ``LocalHub.repos``: the bare id for models, ``"datasets/<id>"`` etc. otherwise."""
    return repo_id if repo_type == "model" else f"{repo_type}s/{repo_id}"


class Headers(dict):
    """The headers of a recorded request: a dict with lower-case keys, looked up in any case."""

    def __init__(self, items=()):
        super().__init__((str(k).lower(), v) for k, v in items)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key.lower() if isinstance(key, str) else key)

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


class HubError(Exception):
    """An HTTP error answer, raised inside a route handler."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers or {}


class _DropConnection(Exception):
    """Raised by the commit route to simulate a network failure."""


class LocalHub:
    """An in-memory Hub served on ``127.0.0.1`` (random free port) by a ``ThreadingHTTPServer`` daemon thread.

    Attributes:
        url: ``"http://127.0.0.1:PORT"`` once started.
        users: token -> ``{"name": str, "orgs": [str], "role": "write" | "read" (default "write")}``.
        repos: repo key (the repo id for models, ``"datasets/<id>"`` for datasets) ->
            ``{"type", "private", "owner", "branches": {name: {"files": {path: bytes}, "sha": str}},
            "commits": {sha: {"files", "parent", "title", "message", "author", "date"}}}``.
        requests: ``(method, path, headers)`` of every request received (path with its query string; headers
            a dict with lower-case keys that also answers ``headers["Authorization"]``).
        unhandled: ``(method, path)`` of the requests no route matched (answered 404): a test can assert it empty.
        fail_next_commit: ``True`` or a count: fail the next commit request(s), see the module docstring.
        commit_failure_mode: ``"drop"`` (default), ``"reset"`` or ``"corrupt"``.
    """

    def __init__(self, users: dict[str, dict]):
        self.users: dict[str, dict] = {token: dict(info) for token, info in users.items()}
        self.repos: dict[str, dict] = {}
        self.requests: list[tuple[str, str, Headers]] = []
        self.unhandled: list[tuple[str, str]] = []
        self.fail_next_commit: bool | int = False
        self.commit_failure_mode: str = "drop"
        self.url: str = ""
        self._lock = threading.RLock()
        self._counter = itertools.count()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> LocalHub:
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", 0), _Handler)
        server.hub = self
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="local-hub", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> LocalHub:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def env(self, token: str | None = None, **extra: str) -> dict[str, str]:
        """A copy of ``os.environ`` for a subprocess that must use this hub (online, no Xet, optional token)."""
        env = dict(os.environ)
        env.update({"HF_ENDPOINT": self.url, "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_XET": "1"})
        env.pop("TRANSFORMERS_OFFLINE", None)
        for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
            env.pop(name, None)
        if token is not None:
            env["HF_TOKEN"] = token
        env.update(extra)
        return env

    # ------------------------------------------------------------------ helpers for tests

    def files(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> dict[str, bytes]:
        """The files of ``repo_id`` at ``revision`` (a branch or a commit sha)."""
        with self._lock:
            repo = self.repos[_repo_key(repo_type, repo_id)]
            return dict(self._resolve(repo, repo_id, revision)[1])

    # ------------------------------------------------------------------ state (callers hold self._lock)

    def _user(self, token: str | None) -> dict | None:
        return self.users.get(token) if token else None

    @staticmethod
    def _namespaces(user: dict) -> set[str]:
        return {user["name"], *user.get("orgs", [])}

    def _can_read(self, repo: dict, user: dict | None) -> bool:
        return not repo["private"] or (user is not None and repo["owner"] in self._namespaces(user))

    def _get_repo(self, repo_type: str, repo_id: str, user: dict | None) -> dict:
        repo = self.repos.get(_repo_key(repo_type, repo_id))
        if repo is None or not self._can_read(repo, user):
            raise HubError(404, "Repository not found", "RepoNotFound")
        return repo

    def _check_write(self, repo: dict, user: dict | None) -> None:
        if user is None:
            raise HubError(401, "Invalid username or password.")
        if repo["owner"] not in self._namespaces(user) or user.get("role", "write") == "read":
            raise HubError(403, f"You don't have the rights to write to {repo['owner']!r}")

    def _resolve(self, repo: dict, repo_id: str, revision: str) -> tuple[str, dict[str, bytes]]:
        """``(commit sha, files)`` of a branch name or a commit sha (full or abbreviated)."""
        name = revision.removeprefix("refs/heads/")
        branch = repo["branches"].get(name)
        if branch is not None:
            return branch["sha"], branch["files"]
        commit = repo["commits"].get(revision)
        if commit is None and 7 <= len(revision) < 40:
            matches = [sha for sha in repo["commits"] if sha.startswith(revision.lower())]
            commit = repo["commits"][matches[0]] if len(matches) == 1 else None
            revision = matches[0] if commit is not None else revision
        if commit is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return revision, commit["files"]

    def _new_commit(
        self,
        repo: dict,
        branch: str,
        files: dict[str, bytes],
        title: str,
        message: str,
        author: str,
        parent: str | None,
    ) -> str:
        seed = f"{parent}\n{title}\n{message}\n{next(self._counter)}\n{_now()}\n"
        seed += "".join(f"{path}\0{git_blob_sha1(data)}\n" for path, data in sorted(files.items()))
        sha = hashlib.sha1(seed.encode()).hexdigest()
        repo["commits"][sha] = {
            "files": files,
            "parent": parent,
            "title": title,
            "message": message,
            "author": author,
            "date": _now(),
        }
        repo["branches"][branch] = {"files": files, "sha": sha}
        return sha

    def _repo_url(self, repo_type: str, repo_id: str) -> str:
        return f"{self.url}/{_repo_key(repo_type, repo_id)}"

    def _take_commit_failure(self) -> str | None:
        """The failure mode to apply to this commit request, or ``None``; counts down ``fail_next_commit``."""
        if not self.fail_next_commit:
            return None
        remaining = int(self.fail_next_commit) - 1
        self.fail_next_commit = remaining if remaining > 0 else False
        mode = self.commit_failure_mode
        if mode not in _FAILURE_MODES:
            raise ValueError(f"commit_failure_mode must be one of {_FAILURE_MODES}, not {mode!r}")
        return mode


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    hub: LocalHub

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def close_connections(self) -> None:
        """Close the kept-alive connections so that their handler threads end."""
        with self.connections_lock:
            connections = list(self.connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "LocalHub/1.0"
    timeout = 60  # idle keep-alive connections end after this
    server: _Server

    # ------------------------------------------------------------------ plumbing

    def setup(self) -> None:
        super().setup()
        self._reset_on_finish = False
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.connections_lock:
                self.server.connections.discard(self.connection)
            if self._reset_on_finish:
                self.connection.close()  # with SO_LINGER 0 and no file object left: an RST

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        pass

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    @property
    def hub(self) -> LocalHub:
        return self.server.hub

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(
        self,
        status: int,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        """Prepare the answer; it is written by `_dispatch` once the hub lock is released."""
        all_headers = {"Content-Type": content_type, "Content-Length": str(len(body))}
        all_headers.update(headers or {})
        self._answer = (status, body, all_headers)

    def _write_answer(self) -> None:
        if self._answer is None:  # a route that forgot to answer: a bug in the imitation
            self._send(500, b'{"error": "LocalHub: no answer"}')
        status, body, headers = self._answer
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _json(self, payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), headers)

    def _error(self, err: HubError) -> None:
        headers = {"X-Error-Message": err.message.encode("ascii", "replace").decode(), **err.headers}
        if err.code:
            headers["X-Error-Code"] = err.code
        self._json({"error": err.message}, err.status, headers)

    def _token(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        return auth[7:].strip() if auth.lower().startswith("bearer ") else None

    def _dispatch(self) -> None:
        hub = self.hub
        with hub._lock:
            hub.requests.append((self.command, self.path, Headers(self.headers.items())))
        body = self._read_body() if self.command in ("POST", "PUT", "DELETE") else b""
        parts = urlsplit(self.path)
        segments = [unquote(s) for s in parts.path.split("/")[1:]]
        query = parse_qs(parts.query)
        self._answer = None
        try:
            with hub._lock:  # state is read and changed under the lock; answers are written outside it
                user = hub._user(self._token())
                self._route(segments, query, body, user)
        except HubError as err:
            self._error(err)
        except _DropConnection:
            self.close_connection = True
            return
        except Exception as err:  # noqa: BLE001 - a bug in the imitation: answer it rather than hang the client
            self._error(HubError(500, f"LocalHub internal error: {type(err).__name__}: {err}"))
        self._write_answer()

    # ------------------------------------------------------------------ routing

    def _route(self, seg: list[str], query: dict, body: bytes, user: dict | None) -> None:
        method = self.command
        if seg[:1] == ["api"]:
            rest = seg[1:]
            if rest == ["whoami-v2"] and method == "GET":
                return self._whoami(user)
            if rest == ["repos", "create"] and method == "POST":
                return self._create_repo(json.loads(body or b"{}"), user)
            if rest == ["repos", "delete"] and method == "DELETE":
                return self._delete_repo(json.loads(body or b"{}"), user)
            if rest == ["validate-yaml"] and method == "POST":
                return self._validate_yaml(json.loads(body or b"{}"))
            if rest[:1] == ["telemetry"]:
                return self._json({})
            if rest == ["agent-harnesses"] and method == "GET":  # fetched by the client for its user agent
                return self._json({"standardEnvVars": [], "harnesses": {}})
            if len(rest) >= 3 and rest[0] in _TYPE_PREFIXES:
                return self._repo_api(
                    _TYPE_PREFIXES[rest[0]], f"{rest[1]}/{rest[2]}", rest[3:], query, body, user
                )
        else:
            repo_type = "model"
            if seg and seg[0] in _TYPE_PREFIXES and seg[0] != "models":
                repo_type, seg = _TYPE_PREFIXES[seg[0]], seg[1:]
            if len(seg) >= 5 and seg[2] == "resolve" and method in ("GET", "HEAD"):
                return self._resolve_file(repo_type, f"{seg[0]}/{seg[1]}", seg[3], "/".join(seg[4:]), user)
            if len(seg) >= 2 and seg[1].endswith(".git"):
                raise HubError(
                    501, "LocalHub serves every file as a regular git blob: no git / LFS endpoints"
                )
        with self.hub._lock:
            self.hub.unhandled.append((method, self.path))
        raise HubError(404, f"LocalHub: no route for {method} {urlsplit(self.path).path}")

    def _repo_api(
        self, repo_type: str, repo_id: str, rest: list[str], query: dict, body: bytes, user: dict | None
    ) -> None:
        hub = self.hub
        method = self.command
        action = rest[0] if rest else ""
        repo = hub._get_repo(repo_type, repo_id, user)
        if not rest and method == "GET":
            return self._info(repo, repo_type, repo_id, "main", query)
        if action == "revision" and len(rest) == 2 and method == "GET":
            return self._info(repo, repo_type, repo_id, rest[1], query)
        if action == "tree" and len(rest) >= 2 and method == "GET":
            return self._tree(repo, repo_id, rest[1], "/".join(rest[2:]), query)
        if action == "paths-info" and len(rest) == 2 and method == "POST":
            return self._paths_info(repo, repo_id, rest[1], body)
        if action == "refs" and len(rest) == 1 and method == "GET":
            return self._refs(repo)
        if action == "commits" and len(rest) == 2 and method == "GET":
            return self._commits(repo, repo_id, rest[1])
        if action == "preupload" and len(rest) == 2 and method == "POST":
            hub._check_write(repo, user)
            return self._preupload(repo, repo_id, rest[1], json.loads(body or b"{}"), query)
        if action == "commit" and len(rest) == 2 and method == "POST":
            hub._check_write(repo, user)
            return self._commit(repo, repo_type, repo_id, rest[1], body, query, user)
        if action == "branch" and len(rest) == 2 and method in ("POST", "DELETE"):
            hub._check_write(repo, user)
            if method == "DELETE":
                return self._delete_branch(repo, rest[1])
            return self._create_branch(repo, repo_id, rest[1], json.loads(body or b"{}"))
        if action in ("xet-read-token", "xet-write-token"):
            raise HubError(501, "LocalHub does not serve Xet storage: every file is a regular git blob")
        with hub._lock:
            hub.unhandled.append((method, self.path))
        raise HubError(404, f"LocalHub: no route for {method} {urlsplit(self.path).path}")

    # ------------------------------------------------------------------ account and repos

    def _whoami(self, user: dict | None) -> None:
        if user is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        self._json(
            {
                "type": "user",
                "id": hashlib.sha1(user["name"].encode()).hexdigest()[:24],
                "name": user["name"],
                "fullname": user.get("fullname", user["name"]),
                "email": f"{user['name']}@localhub.invalid",
                "emailVerified": True,
                "isPro": False,
                "canPay": False,
                "orgs": [
                    {"type": "org", "name": org, "fullname": org, "roleInOrg": "write"}
                    for org in user.get("orgs", [])
                ],
                "auth": {
                    "type": "access_token",
                    "accessToken": {
                        "displayName": "local-hub",
                        "role": user.get("role", "write"),
                        "createdAt": _now(),
                    },
                },
            }
        )

    def _create_repo(self, payload: dict, user: dict | None) -> None:
        hub = self.hub
        if user is None:
            raise HubError(401, "Invalid username or password.")
        repo_type = payload.get("type") or "model"
        name = payload.get("name") or ""
        namespace = payload.get("organization") or user["name"]
        if repo_type not in _TYPE_PREFIXES.values() or not name or "/" in name:
            raise HubError(400, f"Invalid repo name or type: {namespace}/{name} ({repo_type})")
        repo_id = f"{namespace}/{name}"
        if namespace not in hub._namespaces(user) or user.get("role", "write") == "read":
            raise HubError(
                403, f"You don't have the rights to create a {repo_type} under the namespace {namespace!r}"
            )
        key = _repo_key(repo_type, repo_id)
        if key in hub.repos:
            # The client's `exist_ok=True` swallows the 409 and reads "url" from this very body.
            message = f"You already created this {repo_type} repo"
            self._json(
                {"error": message, "url": hub._repo_url(repo_type, repo_id)},
                409,
                {"X-Error-Message": message},
            )
            return
        repo = {
            "type": repo_type,
            "private": payload.get("visibility") == "private" or payload.get("private") is True,
            "owner": namespace,
            "created_at": _now(),
            "branches": {},
            "commits": {},
        }
        hub._new_commit(repo, "main", {}, "initial commit", "", user["name"], None)
        hub.repos[key] = repo
        self._json({"url": hub._repo_url(repo_type, repo_id), "name": repo_id, "id": key})

    def _delete_repo(self, payload: dict, user: dict | None) -> None:
        hub = self.hub
        repo_type = payload.get("type") or "model"
        namespace = payload.get("organization") or (user["name"] if user else "")
        repo_id = f"{namespace}/{payload.get('name', '')}"
        repo = hub._get_repo(repo_type, repo_id, user)
        hub._check_write(repo, user)
        del hub.repos[_repo_key(repo_type, repo_id)]
        self._json({})

    def _validate_yaml(self, payload: dict) -> None:
        content = payload.get("content", "")
        if content.startswith("---"):
            import yaml

            end = content.find("\n---", 3)
            try:
                yaml.safe_load(content[3:end] if end >= 0 else content[3:])
            except yaml.YAMLError as err:
                self._json({"errors": [{"message": f"Invalid YAML: {err}"}], "warnings": []}, 400)
                return
        self._json({"errors": [], "warnings": []})

    # ------------------------------------------------------------------ reading

    def _info(self, repo: dict, repo_type: str, repo_id: str, revision: str, query: dict) -> None:
        sha, files = self.hub._resolve(repo, repo_id, revision)
        commit = repo["commits"][sha]
        siblings = []
        for path in sorted(files):
            sibling: dict[str, Any] = {"rfilename": path}
            if query.get("blobs"):
                sibling.update(size=len(files[path]), blobId=git_blob_sha1(files[path]))
            siblings.append(sibling)
        self._json(
            {
                "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24],
                "id": repo_id,
                **({"modelId": repo_id} if repo_type == "model" else {}),
                "author": repo["owner"],
                "sha": sha,
                "lastModified": commit["date"],
                "createdAt": repo["created_at"],
                "private": repo["private"],
                "gated": False,
                "disabled": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "siblings": siblings,
                "usedStorage": sum(len(data) for data in files.values()),
            }
        )

    @staticmethod
    def _entry(path: str, files: dict[str, bytes], commit: dict | None, sha: str) -> dict:
        if path in files:
            entry: dict[str, Any] = {
                "type": "file",
                "oid": git_blob_sha1(files[path]),
                "size": len(files[path]),
                "path": path,
            }
        else:
            entry = {
                "type": "directory",
                "oid": hashlib.sha1(f"tree:{sha}:{path}".encode()).hexdigest(),
                "size": 0,
                "path": path,
            }
        if commit is not None:
            entry["lastCommit"] = {"id": sha, "title": commit["title"], "date": commit["date"]}
        return entry

    def _tree(self, repo: dict, repo_id: str, revision: str, folder: str, query: dict) -> None:
        sha, files = self.hub._resolve(repo, repo_id, revision)
        commit = repo["commits"][sha] if query.get("expand", ["false"])[0].lower() == "true" else None
        recursive = query.get("recursive", ["false"])[0].lower() == "true"
        folder = folder.strip("/")
        prefix = f"{folder}/" if folder else ""
        if folder and folder in files:
            raise HubError(400, f"{folder} is a file, not a folder")
        below = [path for path in files if path.startswith(prefix)]
        if folder and not below:
            raise HubError(404, f"Entry not found: {folder}", "EntryNotFound")
        entries: set[str] = set()
        for path in below:
            parts = path[len(prefix) :].split("/")
            depth = len(parts) if recursive else 1
            for i in range(1, depth + 1):
                entries.add(prefix + "/".join(parts[:i]))
        listing = sorted(entries, key=lambda p: (p in files, p))  # folders first, as the Hub
        self._json([self._entry(path, files, commit, sha) for path in listing])

    def _paths_info(self, repo: dict, repo_id: str, revision: str, body: bytes) -> None:
        sha, files = self.hub._resolve(repo, repo_id, revision)
        content_type = self.headers.get("Content-Type", "")
        form = json.loads(body) if "json" in content_type else parse_qs(body.decode())
        paths = form.get("paths", [])
        paths = [paths] if isinstance(paths, str) else paths
        expand = (
            str(
                (form.get("expand") or ["false"])[0]
                if isinstance(form.get("expand"), list)
                else form.get("expand")
            ).lower()
            == "true"
        )
        commit = repo["commits"][sha] if expand else None
        folders = {"/".join(p.split("/")[:i]) for p in files for i in range(1, p.count("/") + 1)}
        known = [p.strip("/") for p in paths if p.strip("/") in files or p.strip("/") in folders]
        self._json([self._entry(path, files, commit, sha) for path in known])

    def _refs(self, repo: dict) -> None:
        branches = [
            {"name": name, "ref": f"refs/heads/{name}", "targetCommit": branch["sha"]}
            for name, branch in sorted(repo["branches"].items())
            if not name.startswith("refs/pr/")
        ]
        pulls = [
            {"name": name, "ref": name, "targetCommit": branch["sha"]}
            for name, branch in sorted(repo["branches"].items())
            if name.startswith("refs/pr/")
        ]
        self._json({"branches": branches, "converts": [], "tags": [], "pullRequests": pulls})

    def _commits(self, repo: dict, repo_id: str, revision: str) -> None:
        sha, _ = self.hub._resolve(repo, repo_id, revision)
        history = []
        while sha is not None:
            commit = repo["commits"][sha]
            history.append(
                {
                    "id": sha,
                    "title": commit["title"],
                    "message": commit["message"],
                    "authors": [{"user": commit["author"]}],
                    "date": commit["date"],
                }
            )
            sha = commit["parent"]
        self._json(history)

    def _resolve_file(
        self, repo_type: str, repo_id: str, revision: str, path: str, user: dict | None
    ) -> None:
        repo = self.hub._get_repo(repo_type, repo_id, user)
        sha, files = self.hub._resolve(repo, repo_id, revision)
        if path not in files:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": sha})
        data = files[path]
        headers = {
            "X-Repo-Commit": sha,
            "ETag": f'"{git_blob_sha1(data)}"',
            "Accept-Ranges": "bytes",
            "Cache-Control": "no-cache",
        }
        status, start, end = 200, 0, len(data)
        range_header = self.headers.get("Range")
        if range_header and range_header.startswith("bytes=") and "," not in range_header and data:
            first, _, last = range_header[6:].strip().partition("-")
            if first:
                start, end = int(first), (int(last) + 1 if last else len(data))
            elif last:
                start, end = max(len(data) - int(last), 0), len(data)
            end = min(end, len(data))
            if start >= len(data) or start >= end:
                raise HubError(
                    416, "Range not satisfiable", headers={"Content-Range": f"bytes */{len(data)}"}
                )
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{len(data)}"
        self._send(status, data[start:end], headers, content_type="application/octet-stream")

    # ------------------------------------------------------------------ writing

    def _preupload(self, repo: dict, repo_id: str, revision: str, payload: dict, query: dict) -> None:
        create_pr = query.get("create_pr", ["0"])[0] == "1"
        _, files = self.hub._resolve(repo, repo_id, "main" if create_pr else revision)
        answer = []
        for item in payload.get("files", []):
            path = item["path"]
            answer.append(
                {
                    "path": path,
                    "uploadMode": "regular",  # never LFS / Xet: the commit carries the content, base64-encoded
                    "shouldIgnore": False,
                    "oid": git_blob_sha1(files[path]) if path in files else None,
                }
            )
        self._json({"files": answer, "commitOid": None})

    def _commit(
        self, repo: dict, repo_type: str, repo_id: str, revision: str, body: bytes, query: dict, user: dict
    ) -> None:
        hub = self.hub
        failure = hub._take_commit_failure()
        if failure is not None:
            self._fail(failure)
            return
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "The commit payload must start with a header line")
        header = lines[0]["value"]
        create_pr = query.get("create_pr", ["0"])[0] == "1"
        pr_url = None
        if create_pr:
            base_sha, _ = hub._resolve(repo, repo_id, revision)
            number = 1 + sum(1 for name in repo["branches"] if name.startswith("refs/pr/"))
            branch = f"refs/pr/{number}"
            repo["branches"][branch] = {"files": repo["commits"][base_sha]["files"], "sha": base_sha}
            pr_url = f"{hub._repo_url(repo_type, repo_id)}/discussions/{number}"
        else:
            branch = revision.removeprefix("refs/heads/")
            if branch not in repo["branches"]:
                raise HubError(404, f"Invalid rev id: {revision} (not a branch)", "RevisionNotFound")
        head = repo["branches"][branch]
        parent_commit = header.get("parentCommit")
        if parent_commit and parent_commit != head["sha"]:
            raise HubError(
                412, f"A commit has happened since {parent_commit}: the branch head is {head['sha']}"
            )
        files = dict(head["files"])
        for line in lines[1:]:
            key, value = line.get("key"), line.get("value", {})
            path = str(value.get("path", "")).strip("/")
            if not path or ".." in path.split("/"):
                raise HubError(400, f"Invalid path in commit: {value.get('path')!r}")
            if key == "file":
                if value.get("encoding", "base64") != "base64":
                    raise HubError(400, f"Unsupported encoding {value.get('encoding')!r}")
                files[path] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                if path not in files:
                    raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                del files[path]
            elif key == "deletedFolder":
                for existing in [p for p in files if p.startswith(f"{path}/")]:
                    del files[existing]
            elif key == "lfsFile":
                raise HubError(400, f"LocalHub stores no LFS objects (preupload answers 'regular'): {path}")
            else:
                raise HubError(400, f"Unknown commit operation {key!r}")
        sha = hub._new_commit(
            repo,
            branch,
            files,
            header.get("summary") or "",
            header.get("description") or "",
            user["name"],
            head["sha"],
        )
        self._json(
            {
                "success": True,
                "commitOid": sha,
                "commitUrl": f"{hub._repo_url(repo_type, repo_id)}/commit/{sha}",
                "commitMessage": header.get("summary") or "",
                "hookOutput": "",
                "pullRequestUrl": pr_url,
            }
        )

    def _fail(self, mode: str) -> None:
        if mode == "corrupt":
            garbage = b"this is not a gzip stream"
            self._send(200, garbage, {"Content-Encoding": "gzip"})
            self.close_connection = True
            return
        if mode == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self._reset_on_finish = True
        raise _DropConnection

    def _create_branch(self, repo: dict, repo_id: str, branch: str, payload: dict) -> None:
        if branch in repo["branches"] or branch.startswith("refs/"):
            raise HubError(409, f"Reference already exists or is invalid: {branch}")
        sha, files = self.hub._resolve(repo, repo_id, payload.get("startingPoint") or "main")
        repo["branches"][branch] = {"files": files, "sha": sha}
        self._json({})

    def _delete_branch(self, repo: dict, branch: str) -> None:
        if branch == "main":
            raise HubError(403, "Cannot delete the default branch")
        if branch not in repo["branches"]:
            raise HubError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
        del repo["branches"][branch]
        self._json({})


ALICE = "hf_test_alice_token_123"  # a user of the local hub (see USERS)
BOB = "hf_test_bob_token_456"


@pytest.fixture()
def local_hub(monkeypatch):
    """A started :class:`LocalHub` with two users, and this process's ``huggingface_hub`` pointed at it.

    Users: ``hf_test_alice_token_123`` (alice, member of ``alice-org``) and ``hf_test_bob_token_456`` (bob).

    For the test's duration: ``huggingface_hub.constants`` is switched online (the project's conftest sets
    ``HF_HUB_OFFLINE=1`` before the import), its default endpoint is the local hub (an ``HfApi()`` without
    ``endpoint`` cannot reach huggingface.co), and Xet is disabled (a single commit attempt per
    ``upload_folder``); ``HF_ENDPOINT``, ``HF_HUB_OFFLINE=0`` and ``HF_HUB_DISABLE_XET=1`` are set in
    ``os.environ`` for subprocesses. ``HF_TOKEN`` is left alone: pass tokens explicitly, or use ``hub.env(token)``.
    """
    from huggingface_hub import constants

    with LocalHub(copy.deepcopy(DEFAULT_USERS)) as hub:
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
        monkeypatch.setattr(constants, "ENDPOINT", hub.url)
        monkeypatch.setattr(
            constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.url + "/{repo_id}/resolve/{revision}/{filename}"
        )
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
        monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
        yield hub
