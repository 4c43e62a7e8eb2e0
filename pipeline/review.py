"""`hearing review`: a page on the organiser's own laptop to read, correct and approve every statement.

A small web server on the loopback address serves one page (plain HTML, CSS and JavaScript from
``pipeline/review_page``, nothing from a network), each statement's recording as a small preview every
browser plays, and a JSON API that reads and writes ``OUT/edits`` (the same files a person can edit by
hand, see ``stages/edits.py``). The Render button runs `hearing render` as its own process.

Security, for a server that can write files: it listens on 127.0.0.1 only; a request whose Host is not
that address with the served port is refused (DNS rebinding), and so is one whose Origin is another
site; every write carries the session's token, which only the served page knows; a request can name a
statement by its id and nothing else, so no path it sends reaches the file system. One review at a time
per output folder: a second `hearing review` opens the first one's page.

The pure core (``statement_payload``, ``parse_change``, ``allowed_hosts``) works on data; ``Review``
holds the folder's state and ``serve`` runs the server.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import re
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pipeline.config import StatementEdit, load_form, load_meeting, load_statement_edit
from pipeline.errors import Busy, PipelineError, UsageError
from pipeline.files import HashCache, write_text
from pipeline.models import Statement
from pipeline.stages import edits, ingest, subtitles
from pipeline.stages.subtitles import Cue, SubtitleRules

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
LOCK_FILE = ".review.lock"
PAGE_FILES = {"review.js": "text/javascript", "review.css": "text/css"}
TOKEN_HEADER = "X-Review-Token"
MAX_BODY = 4 << 20
MAX_CUES = 5000
MAX_CUE_TEXT = 2000
CHUNK = 256 << 10


# ------------------------------------------------------------------------------------------ pure core


def allowed_hosts(port: int) -> frozenset[str]:
    """The Host headers of requests for this server: the loopback address as served (and localhost,
    which a person may type); a name that resolves here only by a rebinding trick is not among them."""
    return frozenset({f"{HOST}:{port}", f"localhost:{port}"})


def allowed_origins(port: int) -> frozenset[str]:
    return frozenset(f"http://{host}" for host in allowed_hosts(port))


@dataclass(frozen=True)
class ReviewStatement:
    """One statement as the page shows it: its recording and what meeting.yaml says about it."""

    statement: Statement  # with meeting.yaml's fields, before a person's corrections
    transcript: Path | None  # the stored transcript it was heard as

    @property
    def id(self) -> str:
        return self.statement.id

    @property
    def relpath(self) -> str:
        return self.statement.recording.relpath


def _cue_json(cue: Cue) -> dict[str, Any]:
    return {"start_ms": cue.start_ms, "end_ms": cue.end_ms, "text": "\n".join(cue.lines)}


def problems_of(cues: Sequence[Cue], rules: SubtitleRules, duration_ms: int) -> list[dict[str, Any]]:
    """The form's subtitle rules each cue breaks (the one set of rules, ``subtitles.rule_breaks``), with
    what was measured apart from the cue's name, which the page shows by the cue itself."""
    end = edits.editable_end_ms(duration_ms, rules)
    titles = subtitles.rule_titles(rules, end)
    found = []
    for b in subtitles.rule_breaks(cues, rules, end):
        name = subtitles.cue_name(b.cue, cues[b.cue - 1])
        measured = b.detail.removeprefix(name).lstrip(":, ")
        found.append(
            {
                "cue": b.cue - 1,
                "rule": b.rule,
                "severity": b.severity,
                "title": titles[b.rule][0],
                "limit": titles[b.rule][1],
                "measured": measured,
                "detail": b.detail,
            }
        )
    return found


def statement_payload(
    item: ReviewStatement,
    cues: Sequence[Cue],
    fields: StatementEdit,
    flagged: Sequence[Mapping[str, Any]],
    rules: SubtitleRules,
) -> dict[str, Any]:
    s = item.statement
    trim_in, trim_out = s.trim_ms or (None, None)
    return {
        "id": s.id,
        "file": s.recording.relpath,
        "duration_ms": s.probe.duration_ms,
        "has_video": s.probe.video is not None,
        "name_on_screen": s.consent.name_on_screen,
        "meeting": {
            "speaker": s.speaker,
            "topic": s.topic,
            "in_ms": trim_in,
            "out_ms": trim_out,
        },
        "speaker": fields.speaker,
        "topic": fields.topic,
        "in_ms": None if fields.in_ is None else round(fields.in_ * 1000),
        "out_ms": None if fields.out is None else round(fields.out * 1000),
        "approved": fields.approved,
        "approved_by": fields.approved_by,
        "approved_at": _when(fields.approved_at),
        "cues": [_cue_json(c) for c in cues],
        "flagged": list(flagged),
        "problems": problems_of(cues, rules, s.probe.duration_ms),
    }


def _when(at: dt.datetime | dt.date | None) -> str | None:
    if isinstance(at, dt.datetime):
        return at.isoformat(sep=" ", timespec="minutes" if not at.second else "seconds")
    return at.isoformat() if at is not None else None


class BadChange(ValueError):
    """A change the page sent that cannot be saved; the message says why, in one line."""


def _optional_text(data: Mapping[str, Any], name: str, limit: int) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise BadChange(f"{name}: text of at most {limit} characters, or null")
    value = " ".join(value.split())
    return value or None


def _optional_ms(data: Mapping[str, Any], name: str, duration_ms: int) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= duration_ms:
        raise BadChange(f"{name}: whole milliseconds from 0 to {duration_ms}, or null")
    return value


def parse_change(data: Any, duration_ms: int, *, now: dt.datetime) -> tuple[tuple[Cue, ...], StatementEdit]:
    """A statement as the page sent it: its cues (recording-relative; a cue whose text was cleared is
    gone) and its fields. The speaker, topic and in/out points are given only where a person set them;
    an approval gets its time here, on the laptop's clock."""
    if not isinstance(data, dict):
        raise BadChange("expected a JSON object")
    raw = data.get("cues")
    if not isinstance(raw, list) or len(raw) > MAX_CUES:
        raise BadChange(f"cues: a list of at most {MAX_CUES}")
    limit = duration_ms + 60_000  # a person may let the last cue stand a little past the recording
    cues: list[Cue] = []
    for n, cue in enumerate(raw, 1):
        if not isinstance(cue, dict):
            raise BadChange(f"cue {n}: expected an object")
        start, end, text = cue.get("start_ms"), cue.get("end_ms"), cue.get("text")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)):
            raise BadChange(f"cue {n}: start_ms and end_ms must be whole milliseconds")
        assert isinstance(start, int) and isinstance(end, int)
        if not 0 <= start < end <= limit:
            raise BadChange(f"cue {n}: needs 0 <= start_ms < end_ms <= {limit}")
        if not isinstance(text, str) or len(text) > MAX_CUE_TEXT:
            raise BadChange(f"cue {n}: text of at most {MAX_CUE_TEXT} characters")
        lines = tuple(" ".join(line.split()) for line in text.splitlines())
        lines = tuple(line for line in lines if line)
        if lines:
            cues.append(Cue(start, end, lines))
    in_ms = _optional_ms(data, "in_ms", duration_ms)
    out_ms = _optional_ms(data, "out_ms", duration_ms)
    if in_ms is not None and out_ms is not None and out_ms <= in_ms:
        raise BadChange("out_ms must be after in_ms")
    approved = data.get("approved", False)
    if not isinstance(approved, bool):
        raise BadChange("approved: true or false")
    approved_by = _optional_text(data, "approved_by", 200)
    if approved and not approved_by:
        raise BadChange("approved_by: who approved the text is needed to approve it")
    given_at = data.get("approved_at")
    at: dt.datetime | None = None
    if approved:
        at = now.replace(second=0, microsecond=0)
        if isinstance(given_at, str):
            with contextlib.suppress(ValueError):
                at = dt.datetime.fromisoformat(given_at)
    fields = StatementEdit.model_validate(
        {
            "speaker": _optional_text(data, "speaker", 200),
            "topic": _optional_text(data, "topic", 500),
            "in": None if in_ms is None else in_ms / 1000,
            "out": None if out_ms is None else out_ms / 1000,
            "approved": approved,
            "approved_by": approved_by if approved else None,
            "approved_at": at,
        }
    )
    return tuple(sorted(cues, key=lambda c: (c.start_ms, c.end_ms))), fields


def flagged_words(transcript: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The words of a stored transcript that a person should look at (doubtful, repeated, decoded
    again), recording-relative, for the page to show beside the cue they are in."""
    if not isinstance(transcript, dict):
        return []
    found = []
    for segment in transcript.get("segments", []):
        for word in segment.get("words", []):
            flags = [f for f in word.get("flags", []) if f != edits.FLAG_EDITED]
            if flags:
                found.append(
                    {
                        "start_ms": word["start_ms"],
                        "end_ms": word["end_ms"],
                        "text": str(word["text"]).strip(),
                        "flags": flags,
                    }
                )
    return found


# ------------------------------------------------------------------------------------------------ I/O


@dataclass
class RenderJob:
    """The `hearing render` the page started, as the page polls it."""

    state: str = "idle"  # idle, running, done, failed
    exit_code: int | None = None
    lines: list[str] = field(default_factory=list)
    started: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "exit_code": self.exit_code,
            "last": self.lines[-1] if self.lines else "",
            "lines": self.lines[-8:],
            "started": self.started,
        }


class Review:
    """The state of one output folder under review."""

    def __init__(self, out_dir: Path) -> None:
        from pipeline import cache
        from pipeline.runner import options_of_earlier_run

        self.out_dir = out_dir.resolve()
        options = options_of_earlier_run(self.out_dir)
        self.meeting_dir = options.meeting_dir
        if not self.meeting_dir.is_dir():
            raise UsageError(f"the meeting folder of this run, {self.meeting_dir}, is not there any more")
        self.form, _ = load_form(options.form)
        self.meeting, meeting_file = load_meeting(self.meeting_dir)
        self.rules = SubtitleRules.from_form(self.form)
        self.edits_dir = self.out_dir / "edits"
        self.token = secrets.token_urlsafe(32)
        self.render = RenderJob()
        self._lock = threading.Lock()
        self._previews: dict[str, threading.Lock] = {}
        report = cache.read_json(self.out_dir / "run.json") or {}
        chosen = {s["id"]: s for s in report.get("statements", []) if isinstance(s, dict)}
        transcripts = {
            s["statement"]: self.out_dir / "work" / "transcripts" / f"{s['key']}.json"
            for s in report.get("stages", [])
            if s.get("stage") == "transcribe" and s.get("key")
        }
        found = ingest.run(
            self.meeting_dir,
            self.meeting,
            meeting_file,
            self.form,
            HashCache(self.out_dir / "work" / "hashes.json"),
            probe_cache=self.out_dir / "work" / "probes",
        )
        self.statements: dict[str, ReviewStatement] = {}
        for statement in found.statements:
            given = chosen.get(statement.id)
            if given is None or given.get("file") != statement.recording.relpath:
                continue  # not in the last run's clip (rejected, or the folder changed since)
            statement = replace(
                statement, audio_stream=int(given.get("audio_stream", statement.audio_stream))
            )
            self.statements[statement.id] = ReviewStatement(statement, transcripts.get(statement.id))
        if not self.statements:
            raise UsageError(f"{self.out_dir}: the last run delivered no statement to review")

    # ------------------------------------------------------------------------------------- reading

    def state(self) -> dict[str, Any]:
        return {
            "language": self.form.language,
            "meeting": {
                "title": self.meeting.title or self.meeting_dir.name,
                "date": self.meeting.date.isoformat() if self.meeting.date else None,
                "committee": self.meeting.committee,
            },
            "form": {"name": self.form.name, "require_approval": self.form.require_approval},
            "rules": {
                "max_lines": self.rules.max_lines,
                "max_chars_per_line": self.rules.max_chars_per_line,
                "max_cps": self.rules.max_cps,
                "min_gap_ms": self.rules.min_gap_ms,
            },
            "statements": [self.statement_state(item) for item in self.statements.values()],
            "render": self.render.to_json(),
            "clip": (clip := self.clip()) is not None,
            "clip_is_draft": clip is not None and clip.parent.name == "draft",
        }

    def statement_state(self, item: ReviewStatement) -> dict[str, Any]:
        from pipeline import cache

        srt_name, yaml_name = edits.edit_names(item.relpath)
        srt = self.edits_dir / srt_name
        stored = cache.read_json(item.transcript) if item.transcript else None
        if srt.exists():
            cues = edits.parse_edited_srt(edits.read_srt_text(srt), srt)
        elif isinstance(stored, dict):
            from pipeline.stages.transcribe import transcript_from_json

            heard = transcript_from_json(stored)
            cues = edits.starting_cues(heard, item.statement.probe.duration_ms, self.rules)
        else:
            cues = ()
        yaml_path = self.edits_dir / yaml_name
        fields = load_statement_edit(yaml_path) if yaml_path.exists() else StatementEdit()
        return statement_payload(item, cues, fields, flagged_words(stored), self.rules)

    # ------------------------------------------------------------------------------------- writing

    def save(self, statement_id: str, data: Any) -> dict[str, Any]:
        item = self.statements[statement_id]
        cues, fields = parse_change(data, item.statement.probe.duration_ms, now=dt.datetime.now())
        srt_name, yaml_name = edits.edit_names(item.relpath)
        with self._lock:
            write_text(self.edits_dir / srt_name, subtitles.to_srt(cues))
            write_text(self.edits_dir / yaml_name, edits.edit_yaml(item.relpath, fields, item.statement))
        return self.statement_state(item)

    # ----------------------------------------------------------------------------------- the media

    def preview(self, statement_id: str) -> Path:
        """The statement's recording as a small MP4 every browser plays, made once and kept in the cache."""
        from pipeline import cache, media
        from pipeline.stages import render

        item = self.statements[statement_id]
        s = item.statement
        key = cache.make_key(
            "review-preview",
            render.PREVIEW_VERSION,
            {
                "recording": s.recording.sha256,
                "video": s.probe.video.index if s.probe.video else None,
                "audio": s.audio_stream,
            },
            tools={"ffmpeg": media.ffmpeg_version()},
        )
        target = self.out_dir / "work" / "review" / f"{key}.mp4"
        with self._lock:
            lock = self._previews.setdefault(key, threading.Lock())
        with lock:
            if not target.exists():
                from pipeline.files import atomic_path

                with atomic_path(target) as temp:
                    args = render.preview_args(self.meeting_dir / s.recording.relpath, s, temp)
                    media.run_ffmpeg(args, what=f"make a preview of {s.recording.relpath}")
        return target

    def clip(self) -> Path | None:
        """The clip last made: the delivery's, else the draft's."""
        for folder in ("delivery", "draft"):
            found = sorted((self.out_dir / folder).glob("*.mp4"))
            if found:
                return found[0]
        return None

    # ------------------------------------------------------------------------------------- render

    def start_render(self) -> RenderJob:
        with self._lock:
            if self.render.state == "running":
                return self.render
            self.render = RenderJob("running", started=dt.datetime.now().isoformat(timespec="seconds"))
            job = self.render
        command = [sys.executable, "-m", "pipeline", "render", str(self.out_dir), "-v"]
        log.info("review: %s", " ".join(command))
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
        )

        def follow() -> None:
            assert process.stderr is not None
            for line in process.stderr:
                text = line.rstrip()
                if text:
                    job.lines.append(text)
                    del job.lines[:-200]
            code = process.wait()
            job.exit_code = code
            # 5 (some recordings rejected) and 6 (a draft, waiting for approvals) made a clip too.
            job.state = "done" if code in (0, 5, 6) else "failed"

        threading.Thread(target=follow, name="render", daemon=True).start()
        return job


# ------------------------------------------------------------------------------------------- server


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("review: %s %s", self.address_string(), format % args)

    # ---------------------------------------------------------------------------------- guards

    def _refuse(self, status: HTTPStatus, reason: str) -> None:
        log.warning("review: refused %s %s: %s", self.command, self.path[:200], reason)
        self._json({"error": reason}, status)

    def _trusted(self, write: bool) -> bool:
        port = self.server.server_address[1]
        if self.headers.get("Host", "") not in allowed_hosts(port):
            self._refuse(HTTPStatus.FORBIDDEN, "unknown Host (this page is served only as 127.0.0.1)")
            return False
        origin = self.headers.get("Origin")
        if origin is not None and origin not in allowed_origins(port):
            self._refuse(HTTPStatus.FORBIDDEN, "requests from another site are refused")
            return False
        if write and not secrets.compare_digest(self.headers.get(TOKEN_HEADER, ""), self.server.review.token):
            self._refuse(HTTPStatus.FORBIDDEN, "a change needs this session's token")
            return False
        return True

    # -------------------------------------------------------------------------------- responses

    def _send(
        self, status: HTTPStatus, body: bytes, content_type: str, extra: Mapping[str, str] = {}
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, data: Any, status: HTTPStatus = HTTPStatus.OK) -> None:
        self._send(
            status, json.dumps(data, ensure_ascii=False).encode("utf-8"), "application/json; charset=utf-8"
        )

    def _file(self, path: Path, content_type: str) -> None:
        """A file with byte ranges, which a video element needs to seek."""
        size = path.stat().st_size
        start, end = 0, size - 1
        status = HTTPStatus.OK
        wanted = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", "").strip())
        if wanted and (wanted[1] or wanted[2]):
            if wanted[1]:
                start = int(wanted[1])
                end = min(int(wanted[2]), size - 1) if wanted[2] else size - 1
            else:
                start = max(0, size - int(wanted[2]))
            if start > end or start >= size:
                self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = HTTPStatus.PARTIAL_CONTENT
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Cache-Control", "no-store")
        if status == HTTPStatus.PARTIAL_CONTENT:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if self.command == "HEAD":
            return
        with path.open("rb") as handle:
            handle.seek(start)
            left = end - start + 1
            while left > 0:
                chunk = handle.read(min(CHUNK, left))
                if not chunk:
                    break
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(chunk)
                left -= len(chunk)

    # ---------------------------------------------------------------------------------- routes

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        if not self._trusted(write=False):
            return
        review = self.server.review
        path = urlsplit(self.path).path
        try:
            if path in ("/", "/index.html"):
                page = _page_file("index.html").replace("{{TOKEN}}", review.token)
                self._send(HTTPStatus.OK, page.encode("utf-8"), "text/html; charset=utf-8")
            elif path.startswith("/static/") and path[len("/static/") :] in PAGE_FILES:
                name = path[len("/static/") :]
                self._send(
                    HTTPStatus.OK, _page_file(name).encode("utf-8"), f"{PAGE_FILES[name]}; charset=utf-8"
                )
            elif path == "/favicon.ico":
                self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
            elif path == "/api/state":
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
        except (PipelineError, OSError) as error:
            self._json({"error": str(error)}, HTTPStatus.INTERNAL_SERVER_ERROR)

    def do_POST(self) -> None:
        if not self._trusted(write=True):
            return
        review = self.server.review
        path = urlsplit(self.path).path
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self._refuse(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"a request body of at most {MAX_BODY} bytes")
            return
        body = self.rfile.read(length)
        try:
            if path.startswith("/api/statements/") and path[len("/api/statements/") :] in review.statements:
                data = json.loads(body.decode("utf-8") or "null")
                self._json(review.save(path[len("/api/statements/") :], data))
            elif path == "/api/render":
                self._json(review.start_render().to_json())
            else:
                self._refuse(HTTPStatus.NOT_FOUND, "no such statement or action")
        except (BadChange, ValueError) as error:
            self._json({"error": str(error)}, HTTPStatus.BAD_REQUEST)
        except (PipelineError, OSError) as error:
            self._json({"error": str(error)}, HTTPStatus.INTERNAL_SERVER_ERROR)

    def do_PUT(self) -> None:
        self._refuse(HTTPStatus.METHOD_NOT_ALLOWED, "only GET and POST")

    do_DELETE = do_PUT
    do_PATCH = do_PUT


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, review: Review, port: int) -> None:
        self.review = review
        super().__init__((HOST, port), _Handler)


def _page_file(name: str) -> str:
    return (resources.files("pipeline") / "review_page" / name).read_text(encoding="utf-8")


@contextlib.contextmanager
def review_lock(out_dir: Path) -> Iterator[tuple[int, str | None]]:
    """One review per output folder. Yields (the lock's descriptor, None) to the first review; a second
    one gets (-1, the first one's address) and joins it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(out_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            address = os.pread(fd, 200, 0).decode("ascii", "replace").strip()
            yield -1, address or None
            return
        yield fd, None
    finally:
        os.close(fd)


def serve(
    out_dir: Path,
    *,
    port: int = 0,
    open_browser: bool = True,
    on_ready: Any = None,
) -> int:
    """Serve the review page until Ctrl-C; ``on_ready(url)`` is told the address once it listens."""
    out_dir = out_dir.resolve()
    if not (out_dir / "run.json").exists():
        raise UsageError(
            f"{out_dir} holds no earlier run: run `hearing run MEETING_DIR --out {out_dir}` first"
        )
    with review_lock(out_dir) as (fd, running):
        if fd < 0:
            if not running:
                raise Busy(f"another hearing review is starting in {out_dir}; try again in a moment")
            log.warning("a review of %s is already open at %s: joining it", out_dir, running)
            if on_ready:
                on_ready(running)
            if open_browser:
                _open(running)
            return 0
        review = Review(out_dir)
        try:
            server = _Server(review, port)
        except OSError as error:
            raise UsageError(f"--port {port}: cannot listen there ({error.strerror or error})") from None
        url = f"http://{HOST}:{server.server_address[1]}/"
        os.ftruncate(fd, 0)
        os.pwrite(fd, url.encode("ascii"), 0)
        if on_ready:
            on_ready(url)
        if open_browser:
            _open(url)
        try:
            server.serve_forever(poll_interval=0.2)
        except KeyboardInterrupt:
            log.info("review: stopped")
        finally:
            server.server_close()
            os.ftruncate(fd, 0)
    return 0


def _open(url: str) -> None:
    import webbrowser

    with contextlib.suppress(Exception):  # no browser (a server without a desktop): the URL is printed
        webbrowser.open(url)
