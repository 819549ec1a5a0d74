"""A tiny local stand-in for the Hugging Face Hub HTTP API, for tests only.

It serves repos from local folders on a free 127.0.0.1 port and speaks just
enough of the hub's protocol for ``huggingface_hub.snapshot_download`` over
plain HTTP (no xet headers are ever sent):

- ``GET /api/models/{repo_id}[/revision/{rev}]``: repo info JSON with the
  commit ``sha`` and ``siblings`` (file names, sizes, blob ids).
- ``HEAD`` / ``GET /{repo_id}/resolve/{rev}/{path}``: the file, with
  ``X-Repo-Commit``, ``ETag`` (and ``X-Linked-Etag`` / ``X-Linked-Size`` for
  weight files, like LFS files on the real hub), ``Content-Length`` and
  ``Accept-Ranges``; ``Range: bytes=N-[M]`` answers 206 with ``Content-Range``.
- Unknown repos, revisions and files answer 404 with the hub's ``X-Error-Code``.

``fail_after(path, n)`` makes the next GET of a file send its headers and only
``n`` bytes of the body, then drop the connection (an interrupted download).
Every request is logged in ``requests`` so tests can assert what was asked,
e.g. that a resumed download sent a ``Range`` header.

The ``fake_hub`` fixture points huggingface_hub at the server in this process
(it reads ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` once, at import) and sets the
environment variables for subprocesses.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")
_LFS_SUFFIXES = (".safetensors", ".bin", ".pt")


@dataclass
class LoggedRequest:
    method: str
    path: str  # unquoted, without the query string
    query: str
    headers: dict[str, str]  # lower-case names
    status: int | None = None  # set before the response goes out

    @property
    def range(self) -> str | None:
        return self.headers.get("range")


@dataclass
class FakeRepo:
    repo_id: str
    sha: str  # the commit: 40 hex digits
    files: dict[str, bytes]  # repo path -> content (a snapshot taken when added)
    etags: dict[str, str] = field(default_factory=dict)

    @property
    def total_bytes(self) -> int:
        return sum(len(data) for data in self.files.values())


class FakeHub:
    def __init__(self) -> None:
        self.repos: dict[str, FakeRepo] = {}
        self.requests: list[LoggedRequest] = []
        self._failures: dict[str, list[int]] = {}  # repo path -> byte counts, one per failure
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- set-up ---------------------------------------------------------

    def add_repo(self, repo_id: str, folder: Path) -> FakeRepo:
        """Serves every file under ``folder`` (dot files left out) as ``repo_id`` at ``main``."""
        folder = Path(folder)
        files = {
            p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*"))
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        }
        etags = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
        commit = hashlib.sha1("".join(f"{name}\0{etag}\n" for name, etag in sorted(etags.items())).encode()).hexdigest()
        repo = FakeRepo(repo_id=repo_id, sha=commit, files=files, etags=etags)
        with self._lock:
            self.repos[repo_id] = repo
        return repo

    def fail_after(self, path: str, nbytes: int, times: int = 1) -> None:
        """The next ``times`` GETs of ``path`` (in any repo) stop after ``nbytes`` and drop the connection."""
        with self._lock:
            self._failures.setdefault(path, []).extend([nbytes] * times)

    def _take_failure(self, path: str) -> int | None:
        with self._lock:
            pending = self._failures.get(path)
            return pending.pop(0) if pending else None

    # --- queries -------------------------------------------------------

    def file_gets(self, path: str) -> list[LoggedRequest]:
        """The GET requests for one file of any repo, in order."""
        pattern = re.compile(r"/resolve/[^/]+/" + re.escape(path) + "$")
        return [r for r in self.requests if r.method == "GET" and pattern.search(r.path)]

    def clear_log(self) -> None:
        with self._lock:
            self.requests.clear()

    # --- server --------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None, "the fake hub is not running"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeHub:
        hub = self

        class Handler(_Handler):
            pass

        Handler.hub = hub
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeHub/1.0"
    hub: FakeHub

    def log_message(self, format, *args) -> None:  # keep pytest output clean
        pass

    def do_HEAD(self) -> None:
        self._dispatch(head=True)

    def do_GET(self) -> None:
        self._dispatch(head=False)

    # --- routing -------------------------------------------------------

    def _dispatch(self, *, head: bool) -> None:
        split = urlsplit(self.path)
        path = unquote(split.path)
        # Logged on arrival, so a client never sees an answer before the log shows the request.
        self._entry = LoggedRequest(
            method="HEAD" if head else "GET",
            path=path,
            query=split.query,
            headers={k.lower(): v for k, v in self.headers.items()},
        )
        with self.hub._lock:
            self.hub.requests.append(self._entry)
        try:
            if path.startswith("/api/models/"):
                self._repo_info(path[len("/api/models/") :], head)
            elif "/resolve/" in path:
                self._resolve(path, head)
            else:
                self._error(404, "RepoNotFound", "Not found", head)
        finally:
            self._entry = None

    def send_response(self, code: int, message: str | None = None) -> None:
        entry = getattr(self, "_entry", None)
        if entry is not None:
            entry.status = code
        super().send_response(code, message)

    def _find_repo(self, text: str) -> tuple[FakeRepo | None, str]:
        """The repo whose id starts ``text`` and what follows it."""
        for repo_id, repo in self.hub.repos.items():
            if text == repo_id or text.startswith(repo_id + "/"):
                return repo, text[len(repo_id) :]
        return None, ""

    def _repo_info(self, rest: str, head: bool) -> int:
        repo, tail = self._find_repo(rest)
        if repo is None:
            return self._error(404, "RepoNotFound", "Repository not found", head)
        revision = tail[len("/revision/") :] if tail.startswith("/revision/") else "main"
        if revision not in ("main", repo.sha):
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", head)
        info = {
            "_id": repo.sha[:24],
            "id": repo.repo_id,
            "modelId": repo.repo_id,
            "author": repo.repo_id.split("/")[0],
            "sha": repo.sha,
            "private": False,
            "gated": False,
            "disabled": False,
            "tags": ["safetensors"],
            "siblings": [
                {
                    "rfilename": name,
                    "size": len(data),
                    "blobId": hashlib.sha1(data).hexdigest(),
                    **(
                        {"lfs": {"sha256": repo.etags[name], "size": len(data), "pointerSize": 134}}
                        if name.endswith(_LFS_SUFFIXES)
                        else {}
                    ),
                }
                for name, data in repo.files.items()
            ],
            "usedStorage": repo.total_bytes,
        }
        body = json.dumps(info).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)
        return 200

    def _resolve(self, path: str, head: bool) -> int:
        repo, tail = self._find_repo(path.lstrip("/"))
        if repo is None:
            return self._error(404, "RepoNotFound", "Repository not found", head)
        match = re.match(r"^/resolve/([^/]+)/(.+)$", tail)
        if match is None:
            return self._error(404, "EntryNotFound", "Entry not found", head)
        revision, name = match.groups()
        if revision not in ("main", repo.sha):
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", head)
        data = repo.files.get(name)
        if data is None:
            return self._error(404, "EntryNotFound", f"{name} does not exist", head)

        size = len(data)
        start, end = 0, size - 1
        status = 200
        wanted = self.headers.get("Range")
        if wanted:
            m = _RANGE.match(wanted.strip())
            if m is None or int(m.group(1)) >= size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return 416
            start = int(m.group(1))
            end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
            status = 206
        body = data[start : end + 1]

        self.send_response(status)
        etag = f'"{repo.etags[name]}"'
        self.send_header("X-Repo-Commit", repo.sha)
        self.send_header("ETag", etag)
        if name.endswith(_LFS_SUFFIXES):  # how the real hub describes LFS files
            self.send_header("X-Linked-Etag", etag)
            self.send_header("X-Linked-Size", str(size))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if head:
            return status

        cut = self.hub._take_failure(name)
        if cut is None or cut >= len(body):
            self.wfile.write(body)
            return status
        # An interrupted transfer: part of the body, then the connection goes away.
        self.wfile.write(body[:cut])
        self.wfile.flush()
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        return status

    def _error(self, status: int, code: str, message: str, head: bool) -> int:
        body = json.dumps({"error": message}).encode()
        self.send_response(status)
        self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)
        return status


def point_huggingface_hub_at(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    """Makes huggingface_hub (in this process and in subprocesses) use ``url`` as the hub, online.

    huggingface_hub copies ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` into module
    constants at import (and ``file_download`` keeps its own copy of the URL
    template), so the environment alone only reaches subprocesses.
    """
    from huggingface_hub import constants, file_download
    from huggingface_hub.utils import reset_sessions

    template = url + "/{repo_id}/resolve/{revision}/{filename}"
    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
    monkeypatch.setattr(file_download, "HUGGINGFACE_CO_URL_TEMPLATE", template)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    # huggingface_hub writes a download to disk 10 MB at a time, and the bytes
    # of an unfinished chunk are lost when the connection drops; the test
    # checkpoint's files are smaller than that, so resumes need smaller chunks.
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 256 * 1024)
    monkeypatch.setenv("HF_ENDPOINT", url)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.delenv("HF_HUB_ENABLE_HF_TRANSFER", raising=False)
    # huggingface_hub caches one HTTP session per (process, thread id), and a session made while
    # offline (the suite's default) refuses every request. Thread ids are reused, so a download
    # thread could meet an earlier test's offline session: the cache starts afresh here.
    reset_sessions()


@pytest.fixture
def fake_hub(monkeypatch):
    """A running FakeHub (no repos yet) with huggingface_hub pointed at it; ``.url`` is its address."""
    with FakeHub() as hub:
        point_huggingface_hub_at(monkeypatch, hub.url)
        try:
            yield hub
        finally:
            from huggingface_hub.utils import reset_sessions

            reset_sessions()  # this test's online sessions do not outlive it


def closed_port_url() -> str:
    """The address of a localhost port nothing listens on (a hub that is down)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
