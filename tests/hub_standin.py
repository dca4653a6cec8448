"""A local stand-in for the Hugging Face Hub: the HTTP endpoints huggingface_hub 2.4 calls to push
(create_repo, validate-yaml, preupload, commit) and to pull (repo info, tree, resolve).

Pushed commits are kept in memory and served back, so push -> pull round trips work. Every upload is
answered "regular" at preupload, so file contents arrive base64-inline in the NDJSON commit (no LFS).

    with HubStandIn() as hub:           # hub.url = "http://127.0.0.1:PORT"
        hub.fail("POST", r"/commit/", 500)   # inject a failure
        hub.tamper("me/model", "bundle/model.tflite", b"...")   # serve other bytes, same commit
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from urllib.parse import parse_qs, unquote, urlsplit

REPO = r"(?P<repo>[^/]+/[^/]+)"


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Commit:
    sha: str
    message: str
    description: str
    added: list[str]  # paths written by this commit, in request order
    files: dict[str, bytes]  # the whole tree after this commit


@dataclass
class Repo:
    repo_id: str
    private: bool
    commits: list[Commit] = field(default_factory=list)
    branches: dict[str, str] = field(default_factory=dict)  # name -> sha
    tampered: dict[str, bytes] = field(default_factory=dict)  # path -> bytes served instead

    def resolve(self, revision: str) -> Commit | None:
        sha = self.branches.get(revision, revision)
        return next((c for c in self.commits if c.sha == sha), None)


class HubStandIn:
    def __init__(self):
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request
        self.auth_headers: list[str | None] = []  # Authorization of every request: in memory only
        self._faults: list[tuple[str, re.Pattern, int, bool]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- control ---------------------------------------------------------------------------------
    def start(self) -> HubStandIn:
        standin = self

        class Handler(_Handler):
            hub = standin

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> HubStandIn:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def fail(self, method: str, path_regex: str, status: int, echo_auth: bool = False) -> None:
        """Answer `status` to every request whose method and path match. `echo_auth`: like a badly
        behaved proxy, put the request's Authorization header in the error message."""
        self._faults.append((method.upper(), re.compile(path_regex), status, echo_auth))

    def clear_faults(self) -> None:
        self._faults.clear()

    def tamper(self, repo_id: str, path: str, data: bytes) -> None:
        self.repos[repo_id].tampered[path] = data

    def commits(self, repo_id: str) -> list[Commit]:
        repo = self.repos.get(repo_id)
        return list(repo.commits) if repo else []

    def add_commit(self, repo_id: str, files: dict[str, bytes], message: str = "seed",
                   description: str = "", branch: str = "main") -> Commit:
        with self._lock:
            repo = self.repos.setdefault(repo_id, Repo(repo_id, private=False))
            parent = repo.resolve(branch)
            tree = dict(parent.files) if parent else {}
            tree.update(files)
            digest = hashlib.sha1(json.dumps([parent.sha if parent else None, message,
                                              sorted((p, git_blob_sha1(d)) for p, d in tree.items())]).encode())
            commit = Commit(digest.hexdigest(), message, description, list(files), tree)
            repo.commits.append(commit)
            repo.branches[branch] = commit.sha
            return commit

    def fault_for(self, method: str, path: str) -> tuple[int, bool] | None:
        for m, pattern, status, echo_auth in self._faults:
            if m == method and pattern.search(path):
                return status, echo_auth
        return None


class _Handler(BaseHTTPRequestHandler):
    hub: HubStandIn
    protocol_version = "HTTP/1.0"
    server_version = "HubStandIn/1"

    def log_message(self, format, *args):  # keep pytest output clean (and never log headers)
        pass

    # -- plumbing --------------------------------------------------------------------------------
    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None,
              content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data, headers: dict | None = None) -> None:
        self._send(status, json.dumps(data).encode(), headers)

    def _error(self, status: int, message: str, code: str | None = None) -> None:
        headers = {"X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        self._json(status, {"error": message}, headers)

    def _dispatch(self) -> None:
        path = urlsplit(self.path).path
        self.hub.requests.append((self.command, path))
        self.hub.auth_headers.append(self.headers.get("Authorization"))
        body = self._body() if self.command in ("POST", "PUT") else b""
        fault = self.hub.fault_for(self.command, path)
        if fault is not None:
            status, echo_auth = fault
            echo = f" (request had Authorization: {self.headers.get('Authorization')})" if echo_auth else ""
            return self._error(status, f"stand-in fault {status}{echo}")
        for method, pattern, handler in ROUTES:
            if method == self.command and (m := re.fullmatch(pattern, path)):
                return handler(self, body=body, **{k: unquote(v) for k, v in m.groupdict().items() if v is not None})
        self._error(404, f"no such endpoint: {self.command} {path}")

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _dispatch

    def _repo(self, repo_id: str) -> Repo | None:
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            self._error(404, "Repository not found", "RepoNotFound")
        return repo

    def _commit(self, repo: Repo, revision: str) -> Commit | None:
        commit = repo.resolve(revision)
        if commit is None:
            self._error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    # -- pull ------------------------------------------------------------------------------------
    def model_info(self, repo, body, revision="main"):
        if (r := self._repo(repo)) is None or (c := self._commit(r, revision)) is None:
            return
        self._json(200, {"id": repo, "modelId": repo, "sha": c.sha, "private": r.private,
                         "siblings": [{"rfilename": p} for p in sorted(c.files)], "tags": []})

    def tree(self, repo, revision, body, subpath=""):
        if (r := self._repo(repo)) is None or (c := self._commit(r, revision)) is None:
            return
        recursive = parse_qs(urlsplit(self.path).query).get("recursive", ["false"])[0].lower() == "true"
        prefix = subpath.strip("/")
        entries, folders = [], set()
        for p in sorted(c.files):
            rel = p[len(prefix) + 1:] if prefix else p
            if prefix and not p.startswith(prefix + "/"):
                continue
            parts = PurePosixPath(rel).parts
            for i in range(1, len(parts)):
                folders.add("/".join(([prefix] if prefix else []) + list(parts[:i])))
            if recursive or len(parts) == 1:
                entries.append({"type": "file", "path": p, "size": len(c.files[p]),
                                 "oid": git_blob_sha1(c.files[p])})
        for d in sorted(folders):
            depth = len(PurePosixPath(d).parts) - len(PurePosixPath(prefix).parts if prefix else ())
            if recursive or depth == 1:
                entries.append({"type": "directory", "path": d, "oid": hashlib.sha1(d.encode()).hexdigest()})
        self._json(200, entries)

    def resolve(self, repo, revision, path, body):
        if (r := self._repo(repo)) is None or (c := self._commit(r, revision)) is None:
            return
        if path not in c.files:
            return self._send(404, b'{"error": "Entry not found"}',
                              {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": c.sha})
        data = r.tampered.get(path, c.files[path])
        self._send(200, data, {"X-Repo-Commit": c.sha, "ETag": f'"{git_blob_sha1(c.files[path])}"'},
                   content_type="application/octet-stream")

    # -- push ------------------------------------------------------------------------------------
    def create_repo(self, body):
        payload = json.loads(body or b"{}")
        repo_id = f"{payload.get('organization')}/{payload['name']}"
        url = f"{self.hub.url}/{repo_id}"
        if repo_id in self.hub.repos:
            return self._json(409, {"error": "You already created this model repo", "url": url},
                              {"X-Error-Message": "You already created this model repo"})
        self.hub.repos[repo_id] = Repo(repo_id, private=payload.get("visibility") == "private")
        self._json(200, {"url": url, "name": repo_id, "id": repo_id})

    def validate_yaml(self, body):
        self._json(200, {"errors": [], "warnings": []})

    def preupload(self, repo, revision, body):
        if self._repo(repo) is None:
            return
        files = json.loads(body)["files"]
        self._json(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                                    "oid": None} for f in files], "commitOid": None})

    def commit(self, repo, revision, body):
        if self._repo(repo) is None:
            return
        header, files = None, {}
        for line in body.splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            if item["key"] == "header":
                header = item["value"]
            elif item["key"] == "file" and item["value"].get("encoding") == "base64":
                files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            else:
                return self._error(422, f"stand-in does not support commit item {item['key']!r}")
        if header is None:
            return self._error(400, "commit without a header")
        c = self.hub.add_commit(repo, files, header["summary"], header.get("description", ""), revision)
        self._json(200, {"success": True, "commitOid": c.sha, "commitUrl": f"{self.hub.url}/{repo}/commit/{c.sha}",
                         "pullRequestUrl": None})


ROUTES = [
    ("GET", rf"/api/models/{REPO}", _Handler.model_info),
    ("GET", rf"/api/models/{REPO}/revision/(?P<revision>[^/]+)", _Handler.model_info),
    ("GET", rf"/api/models/{REPO}/tree/(?P<revision>[^/]+)(?P<subpath>/.*)?", _Handler.tree),
    ("HEAD", rf"/{REPO}/resolve/(?P<revision>[^/]+)/(?P<path>.+)", _Handler.resolve),
    ("GET", rf"/{REPO}/resolve/(?P<revision>[^/]+)/(?P<path>.+)", _Handler.resolve),
    ("POST", r"/api/repos/create", _Handler.create_repo),
    ("POST", r"/api/validate-yaml", _Handler.validate_yaml),
    ("POST", rf"/api/models/{REPO}/preupload/(?P<revision>[^/]+)", _Handler.preupload),
    ("POST", rf"/api/models/{REPO}/commit/(?P<revision>[^/]+)", _Handler.commit),
]


def closed_port() -> int:
    """A local port with nothing listening on it (connections are refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def isolate_hf(monkeypatch, home: Path, endpoint: str) -> None:
    """Point huggingface_hub at `endpoint` and keep every file it writes under `home`.

    huggingface_hub reads HF_ENDPOINT / HF_HOME once, at import (keras imports it early), so the
    environment variables alone are not enough inside this process: the module constants are
    patched too. Subprocesses get the environment variables.
    """
    from huggingface_hub import constants

    home = Path(home)
    hub_cache = home / "hub"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(hub_cache))
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    for name, value in {
        "ENDPOINT": endpoint,
        "HUGGINGFACE_CO_URL_TEMPLATE": endpoint + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(hub_cache),
        "HUGGINGFACE_HUB_CACHE": str(hub_cache),
        "HF_ASSETS_CACHE": str(home / "assets"),
        "HF_TOKEN_PATH": str(home / "token"),
        "HF_STORED_TOKENS_PATH": str(home / "stored_tokens"),
        "AGENT_HARNESSES_PATH": str(home / ".agent_harnesses.json"),
        "HF_HUB_OFFLINE": False,
    }.items():
        monkeypatch.setattr(constants, name, value, raising=False)
