"""The review page's HTTP server: the request handler (its guards applied to every request, the page
and its files, the JSON API, media with byte ranges, every failure answered in one line) and the
server that ends each connection without losing the answer."""

from __future__ import annotations

import contextlib
import errno
import html
import json
import logging
import os
import re
import socket
import stat
import sys
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from pipeline.errors import PipelineError
from pipeline.review.changes import Conflict, read_json
from pipeline.review.guards import (
    HOST,
    SECURITY_HEADERS,
    TOKEN_HEADER,
    TOKEN_PARAM,
    Outside,
    allowed_hosts,
    allowed_origins,
    inside,
    token_matches,
)
from pipeline.review.state import Review

log = logging.getLogger(__name__)

PAGE_FILES = {"review.js": "text/javascript", "review.css": "text/css"}
MAX_BODY = 4 << 20
LINGER_S = 2.0  # how long a closing connection reads what the client still sends
LINGER_BYTES = 16 << 20
CHUNK = 256 << 10
HTML = "text/html; charset=utf-8"
JSON = "application/json; charset=utf-8"


def _shown(text: str | None) -> str:
    """A request's path or line as a log line may show it: short, without its query (which may hold the
    token, however spelt), and with no control character to reach the organiser's terminal."""
    text = re.sub(r"\?\S*", "?...", (text or "")[:1000])[:200]
    return "".join(c if c.isprintable() and c.isascii() else f"\\x{ord(c) & 0xFF:02x}" for c in text)


class _Handler(BaseHTTPRequestHandler):
    server: Server
    protocol_version = "HTTP/1.1"
    _body_read = False  # the request's body was read to its end
    _answered = False  # the status line of this request's answer was sent

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("review: %s %s", self.address_string(), _shown(format % args))

    def parse_request(self) -> bool:
        self._body_read = False
        self._answered = False
        return super().parse_request()

    # ---------------------------------------------------------------------------------- guards

    def _refuse(self, status: HTTPStatus, reason: str) -> None:
        log.warning("review: refused %s %s: %s", _shown(self.command), _shown(self.path), reason)
        self._json({"error": reason}, status)

    def _given_token(self) -> str | None:
        header = self.headers.get(TOKEN_HEADER)
        if header is not None:
            return header
        given = parse_qs(urlsplit(self.path).query, keep_blank_values=True).get(TOKEN_PARAM, [])
        return given[0] if len(given) == 1 else None

    def _session_token(self) -> str:
        """The token every request must carry (the page of `hearing start` has its own)."""
        return self.server.review.token

    def _served_root(self) -> Path:
        """The folder every file served must lie inside."""
        return self.server.review.out_dir

    # The package whose page/ folder holds this page's files, and which of them are served as they are.
    page_package = "pipeline.review"
    page_files = PAGE_FILES

    def _page_file(self, name: str) -> str:
        return (resources.files(self.page_package) / "page" / name).read_text(encoding="utf-8")

    def _no_token_page(self) -> str:
        return self._page_file("no_token.html")

    def _page(self, path: str) -> bool:
        """The page itself, its script and style, and no icon; False where ``path`` is none of these."""
        token = self._session_token()
        if path in ("/", "/index.html"):
            page = (
                self._page_file("index.html")
                .replace("{{TOKEN}}", html.escape(token))
                .replace("{{TOKEN_URL}}", html.escape(quote(token, safe="")))
            )
            self._send(HTTPStatus.OK, page.encode("utf-8"), HTML)
        elif path.startswith("/static/") and path[len("/static/") :] in self.page_files:
            name = path[len("/static/") :]
            kind = f"{self.page_files[name]}; charset=utf-8"
            self._send(HTTPStatus.OK, self._page_file(name).encode("utf-8"), kind)
        elif path == "/favicon.ico":
            self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
        else:
            return False
        return True

    def _trusted(self) -> bool:
        port = self.server.server_address[1]
        if self.headers.get("Host", "") not in allowed_hosts(port):
            self._refuse(HTTPStatus.FORBIDDEN, "unknown Host (this page is served only as 127.0.0.1)")
            return False
        origin = self.headers.get("Origin")
        if origin is not None and origin not in allowed_origins(port):
            self._refuse(HTTPStatus.FORBIDDEN, "requests from another site are refused")
            return False
        # A browser says which page a request comes from; only a person's own navigation may come from
        # elsewhere (a link, the address bar), never what another page loads or sends.
        site = self.headers.get("Sec-Fetch-Site")
        if site in ("cross-site", "same-site") and self.headers.get("Sec-Fetch-Mode") != "navigate":
            self._refuse(HTTPStatus.FORBIDDEN, "requests from another site's page are refused")
            return False
        if not token_matches(self._given_token(), self._session_token()):
            if urlsplit(self.path).path in ("/", "/index.html") and self.command in ("GET", "HEAD"):
                log.warning(
                    "review: refused %s %s: without the session's token", self.command, _shown(self.path)
                )
                self._send(HTTPStatus.FORBIDDEN, self._no_token_page().encode("utf-8"), HTML)
            else:
                self._refuse(
                    HTTPStatus.FORBIDDEN,
                    "needs this session's token: open the address `hearing review` printed",
                )
            return False
        return True

    # -------------------------------------------------------------------------------- responses

    def _body_unread(self) -> bool:
        headers = getattr(self, "headers", None)
        if self._body_read or headers is None:
            return False
        return headers.get("Content-Length", "0").strip() not in ("", "0") or "Transfer-Encoding" in headers

    def _start(self, status: HTTPStatus, headers: tuple[tuple[str, str], ...]) -> None:
        self.send_response(status)
        for name, value in (*headers, *SECURITY_HEADERS):
            self.send_header(name, value)
        if status >= 400 or self._body_unread():
            # What the client sent after a refused request (a body never read) must not be read as
            # the next request: the connection ends with this answer.
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self._answered = True

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self._start(status, (("Content-Type", content_type), ("Content-Length", str(len(body)))))
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, data: Any, status: HTTPStatus = HTTPStatus.OK) -> None:
        self._send(status, json.dumps(data, ensure_ascii=False).encode("utf-8"), JSON)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The answer to what http.server refuses itself (a malformed request line, an unknown method, a
        line too long): the same headers as every other answer, and the connection closed."""
        reason = message or HTTPStatus(code).phrase
        log.warning("review: refused %s: %s", _shown(getattr(self, "requestline", "")), reason)
        self._json({"error": reason}, HTTPStatus(code))

    def _file(self, path: Path, content_type: str) -> None:
        """A file inside OUT, with byte ranges, which a video element needs to seek."""
        resolved = inside(path, self._served_root())
        if resolved is None:
            raise Outside(path)
        try:
            # Not through a link swapped in since it was resolved; a FIFO must not block the open.
            fd = os.open(resolved, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise Outside(path, "became a link") from None
            raise
        try:
            info = os.fstat(fd)
            regular = stat.S_ISREG(info.st_mode)
        except OSError:
            os.close(fd)
            raise
        if not regular:
            os.close(fd)
            raise Outside(path, "is not a regular file")
        with os.fdopen(fd, "rb") as handle:
            self._stream(handle, info.st_size, content_type)

    def _stream(self, handle: Any, size: int, content_type: str) -> None:
        start, end = 0, size - 1
        status = HTTPStatus.OK
        wanted = re.fullmatch(r"bytes=(\d{0,18})-(\d{0,18})", self.headers.get("Range", "").strip())
        if wanted and (wanted[1] or wanted[2]):
            if wanted[1]:
                start = int(wanted[1])
                end = min(int(wanted[2]), size - 1) if wanted[2] else size - 1
            else:
                start = max(0, size - int(wanted[2]))
            if start > end or start >= size:
                self._start(
                    HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE,
                    (("Content-Range", f"bytes */{size}"), ("Content-Length", "0")),
                )
                return
            status = HTTPStatus.PARTIAL_CONTENT
        headers = [
            ("Content-Type", content_type),
            ("Accept-Ranges", "bytes"),
            ("Content-Length", str(end - start + 1)),
        ]
        if status == HTTPStatus.PARTIAL_CONTENT:
            headers.append(("Content-Range", f"bytes {start}-{end}/{size}"))
        self._start(status, tuple(headers))
        if self.command == "HEAD":
            return
        handle.seek(start)
        left = end - start + 1
        while left > 0:
            chunk = handle.read(min(CHUNK, left))
            if not chunk:  # the file shrank: the answer is shorter than it said, the connection ends
                self.close_connection = True
                break
            self.wfile.write(chunk)
            left -= len(chunk)

    # ---------------------------------------------------------------------------------- routes

    def _route(self, action: Any) -> None:
        """Run one request's route; whatever fails, the client gets an answer with one line of why (or,
        where the answer had begun, the connection ends), never a traceback or a silent close."""
        try:
            action()
        except ConnectionError:  # the client went away (a video element seeking elsewhere, a closed tab)
            self.close_connection = True
        except Outside as error:
            log.warning("review: refused %s %s: %s", self.command, _shown(self.path), error)
            self._fail(HTTPStatus.FORBIDDEN, "the file is not a regular file inside the output folder")
        except (PipelineError, OSError) as error:
            log.error("review: %s %s: %s", self.command, _shown(self.path), error)
            self._fail(HTTPStatus.INTERNAL_SERVER_ERROR, str(error))
        except Exception as error:
            reason = f"unexpected failure: {type(error).__name__}: {error}"
            log.error("review: %s %s: %s", self.command, _shown(self.path), _shown(reason))
            log.debug("review: where it failed", exc_info=True)
            self._fail(HTTPStatus.INTERNAL_SERVER_ERROR, reason)

    def _fail(self, status: HTTPStatus, reason: str) -> None:
        if self._answered:
            self.close_connection = True
            return
        with contextlib.suppress(OSError):
            self._json({"error": " ".join(reason.split())[:500]}, status)

    def do_GET(self) -> None:
        self._route(self._get)

    def do_HEAD(self) -> None:
        self._route(self._get)

    def do_POST(self) -> None:
        self._route(self._post)

    def do_PUT(self) -> None:
        self._route(lambda: self._refuse(HTTPStatus.METHOD_NOT_ALLOWED, "only GET and POST"))

    do_DELETE = do_PUT
    do_PATCH = do_PUT
    do_OPTIONS = do_PUT  # no preflight passes: no other page may send a header of its own here

    def _get(self) -> None:
        if not self._trusted():
            return
        review = self.server.review
        path = urlsplit(self.path).path
        if self._page(path):
            return
        if path == "/api/state":
            self._json(review.state())
        elif path == "/api/render":
            self._json(review.render.to_json())
        elif path.startswith("/media/") and path[len("/media/") :] in review.statements:
            self._file(review.preview(path[len("/media/") :]), "video/mp4")
        elif path == "/clip":
            clip = review.clip()
            if clip is None:
                self._refuse(HTTPStatus.NOT_FOUND, "no clip has been made yet")
            else:
                self._file(clip, "video/mp4")
        else:
            self._refuse(HTTPStatus.NOT_FOUND, "no such page")

    def _read_body(self) -> bytes | None:
        """A POST's body, read to its end; None where it was refused (answered) or the client stopped."""
        if "Transfer-Encoding" in self.headers:
            self._refuse(HTTPStatus.LENGTH_REQUIRED, "a request body needs a Content-Length")
            return None
        given = self.headers.get("Content-Length", "0").strip()
        length = int(given) if re.fullmatch(r"[0-9]{1,12}", given) else -1
        if not 0 <= length <= MAX_BODY:
            self._refuse(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"a request body of at most {MAX_BODY} bytes")
            return None
        body = self.rfile.read(length)
        if len(body) < length:  # the client stopped sending
            self.close_connection = True
            return None
        self._body_read = True
        return body

    def _post(self) -> None:
        if not self._trusted():
            return
        review = self.server.review
        path = urlsplit(self.path).path
        body = self._read_body()
        if body is None:
            return
        if path.startswith("/api/statements/") and path[len("/api/statements/") :] in review.statements:
            statement_id = path[len("/api/statements/") :]
            try:
                answer = review.save(statement_id, read_json(body))
            except Conflict:
                self._json(
                    {
                        "error": "indlægget er gemt et andet sted (en anden fane eller filen) siden du "
                        "åbnede det",
                        "current": review.statement_state(review.statements[statement_id]),
                    },
                    HTTPStatus.CONFLICT,
                )
                return
            except ValueError as error:  # BadChange, and a field the edits' model refuses
                self._json({"error": " ".join(str(error).split())[:500]}, HTTPStatus.BAD_REQUEST)
                return
            self._json(answer)
        elif path == "/api/render":
            self._json(review.start_render().to_json())
        else:
            self._refuse(HTTPStatus.NOT_FOUND, "no such statement or action")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False
    # A page opens several connections at once (its media, saves of several statements, other tabs).
    request_queue_size = 64

    def __init__(self, review: Review, port: int) -> None:
        self.review = review
        super().__init__((HOST, port), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """What fails outside a route (a client gone while its next request was awaited): one line in
        the log, never a traceback on the organiser's console."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):
            log.debug("review: %s went away (%s)", client_address[0], error)
        else:
            log.error("review: a connection failed: %s: %s", type(error).__name__, error)
        log.debug("review: where it failed", exc_info=True)

    def shutdown_request(self, request: Any) -> None:
        """End a connection without resetting away the answer just written: a socket closed with bytes
        still unread (a refused request's body) is reset, and a reset can lose what the client had not
        read yet. So: say we are done, read what still comes for a moment, then close."""
        with contextlib.suppress(OSError):
            request.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + LINGER_S
            left = LINGER_BYTES
            while left > 0 and (wait := deadline - time.monotonic()) > 0:
                request.settimeout(wait)
                chunk = request.recv(min(left, CHUNK))
                if not chunk:
                    break
                left -= len(chunk)
        self.close_request(request)
