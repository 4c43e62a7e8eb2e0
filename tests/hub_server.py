"""A local stand-in for the model hub on 127.0.0.1, for testing downloads offline.

It answers the routes huggingface_hub and `hearing models get` use, as the hub does: the model info API
(``/api/models/<repo>/revision/<rev>?blobs=true``: the commit and each file's size, git blob id and, for
LFS files, SHA-256) and ``/<repo>/resolve/<rev>/<file>`` (HEAD and GET, with ETag, X-Repo-Commit,
X-Linked-Etag, X-Linked-Size and byte ranges). Faults are switched on per file: bytes changed on the way
(``tamper``), the connection cut after some bytes (``cut_after``), slowed after some bytes (``slow_after``).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

DEFAULT_COMMIT = "0123456789abcdef0123456789abcdef01234567"
_HEX40 = re.compile(r"[0-9a-f]{40}")
_CHUNK = 64 * 1024


@dataclass
class HubFile:
    path: Path
    size: int
    sha256: str
    git_sha1: str
    lfs: bool


def describe(path: Path, lfs: bool) -> HubFile:
    sha = hashlib.sha256()
    size = path.stat().st_size
    git = hashlib.sha1(f"blob {size}\0".encode())
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
            git.update(chunk)
    return HubFile(path, size, sha.hexdigest(), git.hexdigest(), lfs)


@dataclass
class Faults:
    tamper: set[str] = field(default_factory=set)  # files served with one byte changed
    cut_after: dict[str, int] = field(default_factory=dict)  # file: bytes sent before the cut (once)
    slow_after: dict[str, int] = field(default_factory=dict)  # file: bytes sent at full speed


class Hub:
    def __init__(self, repos: dict[str, dict[str, HubFile]]) -> None:
        self.repos = repos
        self.faults = Faults()
        self.requests: list[tuple[str, str, str | None]] = []  # method, path, Range header
        self.sent: dict[str, int] = {}  # bytes of each file sent
        self._lock = threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                hub._answer(self, head=False)

            def do_HEAD(self) -> None:
                hub._answer(self, head=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> Hub:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self._lock:
            self.faults = Faults()
            self.requests.clear()
            self.sent.clear()

    def ranges(self, file: str) -> list[str | None]:
        return [r for m, p, r in self.requests if m == "GET" and p.endswith("/" + file) and "/resolve/" in p]

    # ---------------------------------------------------------------------------------------------------

    def _answer(self, handler: BaseHTTPRequestHandler, head: bool) -> None:
        path = unquote(urlsplit(handler.path).path)
        with self._lock:
            self.requests.append((handler.command, path, handler.headers.get("Range")))
        api = re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?", path)
        resolve = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if api:
            self._info(handler, api[1], api[2] or "main")
        elif resolve:
            self._file(handler, resolve[1], resolve[2], resolve[3], head)
        else:
            self._error(handler, 404, "EntryNotFound", "no such route")

    def _commit(self, revision: str) -> str | None:
        return revision if _HEX40.fullmatch(revision) else DEFAULT_COMMIT if revision == "main" else None

    def _error(self, handler: BaseHTTPRequestHandler, status: int, code: str, message: str) -> None:
        body = json.dumps({"error": message}).encode()
        handler.send_response(status)
        handler.send_header("X-Error-Code", code)
        handler.send_header("X-Error-Message", message)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _info(self, handler: BaseHTTPRequestHandler, repo: str, revision: str) -> None:
        files = self.repos.get(repo)
        commit = self._commit(revision)
        if files is None:
            return self._error(handler, 404, "RepoNotFound", f"Repository {repo} not found")
        if commit is None:
            return self._error(handler, 404, "RevisionNotFound", f"Invalid rev id: {revision}")
        siblings = []
        for name, f in sorted(files.items()):
            sibling: dict[str, object] = {"rfilename": name, "size": f.size}
            if f.lfs:
                pointer = (
                    f"version https://git-lfs.github.com/spec/v1\noid sha256:{f.sha256}\nsize {f.size}\n"
                )
                sibling["blobId"] = hashlib.sha1(f"blob {len(pointer)}\0{pointer}".encode()).hexdigest()
                sibling["lfs"] = {"size": f.size, "sha256": f.sha256, "pointerSize": len(pointer)}
            else:
                sibling["blobId"] = f.git_sha1
            siblings.append(sibling)
        body = json.dumps(
            {"_id": "x", "id": repo, "modelId": repo, "sha": commit, "private": False, "siblings": siblings}
        ).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _file(self, handler: BaseHTTPRequestHandler, repo: str, revision: str, name: str, head: bool) -> None:
        files = self.repos.get(repo)
        commit = self._commit(revision)
        f = files.get(name) if files else None
        if f is None or commit is None:
            return self._error(handler, 404, "EntryNotFound", f"{name} not found")
        start = 0
        wanted = handler.headers.get("Range")
        if wanted:
            match = re.fullmatch(r"bytes=(\d+)-", wanted)
            if match is None or int(match[1]) >= f.size:
                return self._error(handler, 416, "RangeNotSatisfiable", wanted)
            start = int(match[1])
        etag = f.sha256 if f.lfs else f.git_sha1
        handler.send_response(206 if start else 200)
        handler.send_header("ETag", f'"{etag}"')
        handler.send_header("X-Repo-Commit", commit)
        handler.send_header("Accept-Ranges", "bytes")
        if f.lfs:
            handler.send_header("X-Linked-Etag", f'"{f.sha256}"')
            handler.send_header("X-Linked-Size", str(f.size))
        if start:
            handler.send_header("Content-Range", f"bytes {start}-{f.size - 1}/{f.size}")
        handler.send_header("Content-Length", str(f.size - start))
        handler.end_headers()
        if head:
            return
        with self._lock:
            cut = self.faults.cut_after.pop(name, None)
            slow = self.faults.slow_after.get(name)
            tamper = name in self.faults.tamper
        position = start
        with open(f.path, "rb") as source:
            source.seek(start)
            while chunk := source.read(_CHUNK):
                if tamper and position <= f.size // 2 < position + len(chunk):
                    at = f.size // 2 - position
                    chunk = chunk[:at] + bytes([chunk[at] ^ 0xFF]) + chunk[at + 1 :]
                if cut is not None and position + len(chunk) > cut:
                    chunk = chunk[: max(0, cut - position)]
                try:
                    handler.wfile.write(chunk)
                    handler.wfile.flush()
                except OSError:
                    return
                position += len(chunk)
                with self._lock:
                    self.sent[name] = self.sent.get(name, 0) + len(chunk)
                if cut is not None and position >= cut:
                    handler.close_connection = True
                    handler.connection.shutdown(2)
                    return
                if slow is not None and position >= slow:
                    time.sleep(0.05)
