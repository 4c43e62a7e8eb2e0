"""`hearing review`: a page on the organiser's own laptop to read, correct and approve every statement.

A small web server on the loopback address serves one page (plain HTML, CSS and JavaScript from
``pipeline/review_page``, nothing from a network), each statement's recording as a small preview every
browser plays, and a JSON API that reads and writes ``OUT/edits`` (the same files a person can edit by
hand, see ``stages/edits.py``). The Render button runs `hearing render` on a thread of the server.

Security, for a server that holds citizens' recordings and can write files. Any page the organiser
visits while it runs can send requests to 127.0.0.1 (and one on another port counts as the same site,
so it gets cookies along): only a secret stops it. So:

- it listens on 127.0.0.1 only; a request whose Host is not that address with the served port is
  refused (DNS rebinding), and so is one whose Origin is another site or that the browser marks as a
  subresource of another site (``Sec-Fetch-Site``);
- every request, reads included, carries the session's token: the address `hearing review` prints and
  opens ends in ``?token=...``, the page sends it in ``X-Review-Token`` with every call and in the
  address of its media and files; without it the answer is 403 (the page itself says to open the
  printed address). The lock file that lets a second `hearing review` join holds it, readable by the
  owner only;
- no other site may frame the page (``frame-ancestors 'none'``, ``X-Frame-Options``), and the page
  loads nothing but its own files (Content-Security-Policy);
- a request can name a statement by its id and nothing else, so no path it sends reaches the file
  system; a file it serves (a preview, the clip) must lie inside OUT once its links are resolved, and
  be a regular file;
- a refused request, or one whose body was not read, is answered with ``Connection: close`` and the
  connection closed, so no unread body is read as the next request; a JSON body nested deeper than
  ``MAX_DEPTH`` is 400; an unexpected failure is a 500 with one line, never a dropped connection;
- the times it stores (when an approval was made) are its own clock's, never a time the page sends.

One review at a time per output folder: a second `hearing review` opens the first one's page.

The pure core (``statement_view``, ``parse_change``, ``read_json``, ``allowed_hosts``, ``inside``) works
on data; ``Review`` holds the folder's state and ``serve`` runs the server.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import html
import json
import logging
import os
import re
import secrets
import socket
import stat
import sys
import threading
import time
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from pipeline import run_record
from pipeline.cache import WorkCache
from pipeline.config import Form, StatementEdit, load_form, load_meeting, not_text
from pipeline.errors import Busy, PipelineError, UsageError
from pipeline.files import folder_title, write_text
from pipeline.models import Statement, StatementTranscript
from pipeline.stages import edits, ingest
from pipeline.stages.subtitles.cues import StatementCues
from pipeline.stages.subtitles.io import to_srt, unsafe_text
from pipeline.stages.subtitles.rules import Cue, SubtitleRules

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
LOCK_FILE = ".review.lock"
PAGE_FILES = {"review.js": "text/javascript", "review.css": "text/css"}
TOKEN_HEADER = "X-Review-Token"
TOKEN_PARAM = "token"
MAX_BODY = 4 << 20
MAX_DEPTH = 64  # the page's own saves nest 3 deep
LINGER_S = 2.0  # how long a closing connection reads what the client still sends
LINGER_BYTES = 16 << 20
MAX_CUES = 5000
MAX_CUE_TEXT = 2000
CHUNK = 256 << 10
HTML = "text/html; charset=utf-8"
JSON = "application/json; charset=utf-8"


# ------------------------------------------------------------------------------------------ pure core


def allowed_hosts(port: int) -> frozenset[str]:
    """The Host headers of requests for this server: the loopback address as served (and localhost,
    which a person may type); a name that resolves here only by a rebinding trick is not among them."""
    return frozenset({f"{HOST}:{port}", f"localhost:{port}"})


def allowed_origins(port: int) -> frozenset[str]:
    return frozenset(f"http://{host}" for host in allowed_hosts(port))


# Every answer: no other site frames the page, and the page loads nothing but its own files.
SECURITY_HEADERS = (
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; media-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cache-Control", "no-store"),
)


def token_matches(given: str | None, token: str) -> bool:
    """Whether a request carries this session's token (compared in constant time; any bytes)."""
    if given is None:
        return False
    return secrets.compare_digest(given.encode("utf-8", "surrogateescape"), token.encode("utf-8"))


def page_address(port: int, token: str) -> str:
    """The address `hearing review` prints and opens: the page, with the session's token."""
    return f"http://{HOST}:{port}/?{TOKEN_PARAM}={quote(token, safe='')}"


def inside(path: Path, root: Path) -> Path | None:
    """``path`` with every link resolved, if it lies inside ``root`` (itself resolved); else None."""
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError):  # a loop of links
        return None
    return resolved if resolved.is_relative_to(root) else None


_JSON_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[{]|[\]}]', re.DOTALL)


def json_depth(text: str, limit: int) -> int:
    """How deep the arrays and objects of a JSON text nest, counted up to ``limit + 1`` and no further
    (brackets inside strings are text); linear in the text, with no recursion."""
    depth = deepest = 0
    for found in _JSON_TOKENS.finditer(text):
        mark = found.group()
        if mark in ("[", "{"):
            depth += 1
            deepest = max(deepest, depth)
            if deepest > limit:
                break
        elif mark in ("]", "}"):
            depth -= 1
    return deepest


def _no_constant(name: str) -> Any:
    raise BadChange(f"{name} is not a JSON number")


def read_json(body: bytes) -> Any:
    """A request body as JSON: UTF-8, nested at most ``MAX_DEPTH`` deep, without NaN or Infinity; else
    BadChange with the reason."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadChange(f"the body is not UTF-8 (byte {error.start})") from None
    if json_depth(text, MAX_DEPTH) > MAX_DEPTH:
        raise BadChange(f"the JSON nests deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(text or "null", parse_constant=_no_constant)
    except RecursionError:  # cannot happen after the count above; a traceback must not be the answer
        raise BadChange(f"the JSON nests deeper than {MAX_DEPTH} levels") from None
    except ValueError as error:  # JSONDecodeError, and integers of more digits than Python reads
        raise BadChange(f"not JSON: {str(error).splitlines()[0][:200]}") from None


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


@dataclass(frozen=True)
class StatementView:
    """What the page says about one statement's cues: the same plan, judgement and problems the render
    makes of it (``clip.plan_timeline_cues``, ``timing.judge``, ``clip.problems``), in the person's cues."""

    notes: tuple[dict[str, Any], ...]  # per person's cue: a rule it breaks, or how its times were moved
    blocking: tuple[str, ...]  # what would stop the render, one Danish sentence each
    cut: tuple[int, int] | None  # the statement's in and out points in the recording (None: no cut)


def statement_view(
    statement: Statement, transcript: StatementTranscript, form: Form, number: int
) -> StatementView:
    """The statement (with a person's fields) and its transcript (its cues, ``edits.corrected_one``) as
    the render will plan and judge them; pure."""
    from pipeline import texts
    from pipeline.models import Rejection
    from pipeline.stages import clip, cut, timing

    rules = SubtitleRules.from_form(form)
    planned = cut.plan_cut(statement, transcript, form)
    if isinstance(planned, Rejection):
        return StatementView(
            (), (f"{texts.statement_label(number, statement.speaker)}: {planned.reason}",), None
        )
    timeline = clip.plan_timeline_cues(
        [statement], {statement.id: planned}, {statement.id: cut.words_in_cut(transcript, planned)}, form,
        title=None, first_number=number,
    )  # fmt: skip
    part = next(p for p in timeline.parts if p.kind == "statement")
    used = timeline.cuts[statement.id]
    offset = part.start_ms - used.in_ms  # clip ms minus recording ms
    fitted = timeline.fitted.get(statement.id, StatementCues.empty())
    speech, windows = timeline.cue_context()
    own = [k for k, c in enumerate(timeline.cues) if c.kind == "speech"]
    notes: list[dict[str, Any]] = []
    for found in timing.judge(timeline.cues, rules, timeline.duration_ms, speech=speech, windows=windows):
        if found.cue - 1 not in own:
            continue
        k = own.index(found.cue - 1)
        source = fitted.sources[k] if k < len(fitted.sources) else None
        notes.append(
            {
                "cue": source if source is not None else k,
                "kind": "rule",
                "rule": found.rule,
                "severity": found.severity,
                "text": texts.rule_break(
                    found,
                    timeline.cues[found.cue - 1],
                    timeline.cues[found.cue - 2].end_ms if found.cue > 1 else None,
                    rules,
                ),
                "detail": found.detail,
            }
        )
    shown = {c.index: c for c in (seg.shown for seg in transcript.segments) if c is not None}
    # Where no timing fits the cues, the render stops and says so: how they were squeezed is no news.
    for k, cue in enumerate(fitted.cues if not fitted.short else ()):
        source = fitted.sources[k]
        person = shown.get(source) if source is not None else None
        moved = fitted.moved[k]
        if person is None or person.start_ms is None or person.end_ms is None:
            if fitted.split[k] and source is not None and (k == 0 or fitted.sources[k - 1] != source):
                notes.append({"cue": source, "kind": "moved", "severity": "warn", "text": texts.split_only()})
            continue
        got = (cue.start_ms - offset, cue.end_ms - offset)
        first_of_split = not fitted.split[k] or k == 0 or fitted.sources[k - 1] != source
        if (moved or fitted.split[k]) and first_of_split:
            notes.append(
                {
                    "cue": source,
                    "kind": "moved",
                    "severity": "warn",
                    "text": texts.moved(moved, (person.start_ms, person.end_ms), got, split=fitted.split[k]),
                }
            )
    blocking = tuple(p.text for p in clip.problems(timeline, rules, first_number=number))
    return StatementView(tuple(notes), blocking, (used.in_ms, used.out_ms))


def flagged_words(transcript: StatementTranscript | None) -> list[dict[str, Any]]:
    """The words a person should look at (doubtful, repeated, decoded again, over silence), as the
    statement is now: a word a person wrote or changed is no longer in doubt. Recording-relative."""
    if transcript is None:
        return []
    from pipeline.stages import align

    # How a person's word was timed is no doubt about it.
    timing = {edits.FLAG_EDITED, edits.FLAG_BY_CHARACTERS, align.FLAG_ALIGNED}
    found = []
    for word in transcript.words:
        flags = [f for f in word.flags if f not in timing]
        if flags:
            found.append(
                {"start_ms": word.start_ms, "end_ms": word.end_ms, "text": word.text.strip(), "flags": flags}
            )
    return found


def _when(at: dt.datetime | dt.date | None) -> str | None:
    if isinstance(at, dt.datetime):
        return at.isoformat(sep=" ", timespec="minutes" if not at.second else "seconds")
    return at.isoformat() if at is not None else None


class BadChange(ValueError):
    """A change the page sent that cannot be saved; the message says why, in one line."""


class Conflict(Exception):
    """A change made from an older version of the statement's files: someone else saved in between."""


class Outside(Exception):
    """A file to serve that is not inside OUT once its links are resolved, or not a regular file."""

    def __init__(self, path: Path, why: str = "leads out of the output folder") -> None:
        super().__init__(f"{path}: {why}")
        self.path = path


def _optional_text(data: Mapping[str, Any], name: str, limit: int) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise BadChange(f"{name}: tekst på højst {limit} tegn, eller tom")
    value = " ".join(value.split())
    found = unsafe_text(value)
    if found is not None:
        raise BadChange(f"{name}: »{found[1]}« {texts_unsafe(found[0])}")
    # The rule of every text field of the tool (config), so the page takes what a hand edit may hold.
    bad = next((c for c in value if not_text(c, lines=False) is not None), None)
    if bad is not None:
        from pipeline import texts

        raise BadChange(texts.not_text(name, ord(bad)))
    value = unicodedata.normalize("NFC", value)
    return value or None


def texts_unsafe(reason: str) -> str:
    from pipeline import texts

    return texts.UNSAFE[reason]


def _optional_ms(data: Mapping[str, Any], name: str, duration_ms: int) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= duration_ms:
        raise BadChange(f"{name}: whole milliseconds from 0 to {duration_ms}, or null")
    return value


@dataclass(frozen=True)
class Change:
    """A statement as the page sent it."""

    version: str  # the version of the files the page started from
    cues: tuple[Cue, ...]  # recording-relative; a cue whose text was cleared is gone
    speaker: str | None
    topic: str | None
    in_ms: int | None
    out_ms: int | None
    approve: str | None  # who approves what is saved now
    withdraw: bool  # the approval is taken back


def parse_change(data: Any, duration_ms: int) -> Change:
    """A statement as the page sent it: its cues and the fields a person set. Text that could not reach
    every file as typed is refused here, with the reason, before anything is written. The page never
    says when an approval was made: the server's clock does."""
    from pipeline import texts

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
    ordered = tuple(sorted(cues, key=lambda c: (c.start_ms, c.end_ms)))
    bad = edits.unsafe_cue(ordered)
    if bad is not None:
        raise BadChange(texts.unsafe_line(*bad))
    in_ms = _optional_ms(data, "in_ms", duration_ms)
    out_ms = _optional_ms(data, "out_ms", duration_ms)
    if in_ms is not None and out_ms is not None and out_ms <= in_ms:
        raise BadChange("out_ms must be after in_ms")
    version = data.get("version")
    if not isinstance(version, str) or not version:
        # Without the version it started from, a save could write over one it never saw.
        raise BadChange("version: the version of the statement's files the change was made from")
    approval = data.get("approval", "keep")
    approve: str | None = None
    withdraw = False
    if approval is False:
        withdraw = True
    elif isinstance(approval, dict):
        approve = _optional_text(approval, "by", 200)
        if not approve:
            raise BadChange("approval.by: who approves the text is needed to approve it")
    elif approval != "keep":
        raise BadChange('approval: "keep", false, or {"by": NAME}')
    return Change(
        version,
        ordered,
        _optional_text(data, "speaker", 200),
        _optional_text(data, "topic", 500),
        in_ms,
        out_ms,
        approve,
        withdraw,
    )


def fields_after(current: StatementEdit, change: Change, *, now: dt.datetime) -> StatementEdit:
    """The statement's YAML fields once ``change`` is saved: the person's speaker, topic and in/out
    points; the group as it was; the approval kept, taken back, or given now (its digest is added by
    the caller, of exactly what is saved)."""
    approval: dict[str, Any] = {
        "approved": current.approved,
        "approved_by": current.approved_by,
        "approved_at": current.approved_at,
        "approved_digest": current.approved_digest,
    }
    if change.withdraw:
        approval = {"approved": False, "approved_by": None, "approved_at": None, "approved_digest": None}
    elif change.approve is not None:
        approval = {
            "approved": True,
            "approved_by": change.approve,
            "approved_at": now.replace(second=0, microsecond=0),
            "approved_digest": None,
        }
    return StatementEdit.model_validate(
        {
            "speaker": change.speaker,
            "topic": change.topic,
            "group": current.group,
            "in": None if change.in_ms is None else change.in_ms / 1000,
            "out": None if change.out_ms is None else change.out_ms / 1000,
            **approval,
        }
    )


# ------------------------------------------------------------------------------------------------ I/O


@dataclass
class RenderJob:
    """The `hearing render` the page started, as the page polls it."""

    state: str = "idle"  # idle, running, done, failed
    exit_code: int | None = None
    lines: list[str] = field(default_factory=list)  # the log, for the page's "detaljer"
    started: str | None = None
    step: str = ""  # what it is doing now, in the words of the progress bars ("Samler klippet")
    problems: list[str] = field(default_factory=list)  # why it stopped, one Danish sentence each
    error: str | None = None  # why it failed otherwise

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "exit_code": self.exit_code,
            "last": self.step,
            "lines": self.lines[-60:],
            "started": self.started,
            "problems": self.problems,
            "error": self.error,
        }


class Review:
    """The state of one output folder under review."""

    def __init__(self, out_dir: Path) -> None:
        from pipeline.runner import options_of_earlier_run

        self.out_dir = out_dir.resolve()
        options = options_of_earlier_run(self.out_dir)
        self.options = options
        self.meeting_dir = options.meeting_dir
        if not self.meeting_dir.is_dir():
            raise UsageError(f"the meeting folder of this run, {self.meeting_dir}, is not there any more")
        self.form, _ = load_form(options.form)
        self.meeting, meeting_file = load_meeting(self.meeting_dir)
        self.rules = SubtitleRules.from_form(self.form)
        self.edits_dir = self.out_dir / "edits"
        self.work = WorkCache.of(self.out_dir)
        self.token = secrets.token_urlsafe(32)
        self.render = RenderJob()
        self._lock = threading.Lock()
        self._previews: dict[str, threading.Lock] = {}
        # The engine, loaded the first time a person adds words (to hear where they are said), and lent
        # to the render; one user of it at a time.
        self._engine: Any = None
        self._engine_lock = threading.Lock()
        self._aligning: threading.Thread | None = None
        report = run_record.read_in(self.out_dir) or {}
        chosen = {s["id"]: s for s in report.get("statements", []) if isinstance(s, dict)}
        transcripts = {
            s["statement"]: self.work.transcript(s["key"])
            for s in report.get("stages", [])
            if s.get("stage") == "transcribe" and s.get("key")
        }
        found = ingest.run(
            self.meeting_dir,
            self.meeting,
            meeting_file,
            self.form,
            self.work.hashes(),
            probe_cache=self.work.probes,
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
        # Each statement's number in the clip: run.json lists them in the clip's order.
        self.numbers = {sid: n for n, sid in enumerate((s for s in chosen if s in self.statements), start=1)}
        self.statements = dict(sorted(self.statements.items(), key=lambda kv: self.numbers.get(kv[0], 0)))
        if not self.statements:
            raise UsageError(f"{self.out_dir}: the last run delivered no statement to review")

    # ------------------------------------------------------------------------------------- reading

    def state(self) -> dict[str, Any]:
        return {
            "language": self.form.language,
            "meeting": {
                "title": self.meeting.title or folder_title(self.meeting_dir),
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
        """One statement as the page shows it, read from the files as they are now."""
        from pipeline import cache, texts
        from pipeline.stages.transcribe import transcript_from_json

        stored = cache.read_json(item.transcript) if item.transcript else None
        try:
            heard = transcript_from_json(stored) if isinstance(stored, dict) else None
        except (KeyError, TypeError, ValueError, AttributeError):
            # A damaged cache entry: the statement is shown from its edits alone (the next run hears it
            # again), and the other statements are not taken down with it.
            log.warning("review: the stored transcript of %s cannot be read; showing its edits", item.id)
            heard = None
        try:
            found = edits.read(self.edits_dir, item.statement)
        except PipelineError as error:
            # A file edited by hand that cannot be read: the page says why and leaves it alone (a save
            # would write over what the person wrote), and every other statement stays usable.
            return {
                "id": item.id,
                "number": self.numbers.get(item.id, 0),
                "file": item.relpath,
                "label": texts.statement_label(self.numbers.get(item.id, 0), item.statement.speaker),
                "readonly": True,
                "blocking": [str(error)],
            }
        statement, transcript, cues, approval = edits.corrected_one(item.statement, heard, found, self.rules)
        if transcript is not None and found.cues is not None:
            transcript = self._aligner(None).aligned(
                transcript, self._speech_audio(item), item.statement.probe.duration_ms
            )
        number = self.numbers.get(item.id, 0)
        view = (
            statement_view(statement, transcript, self.form, number)
            if transcript is not None
            else StatementView((), (), None)
        )
        f = found.fields
        meeting_in, meeting_out = item.statement.trim_ms or (None, None)
        return {
            "id": item.id,
            "number": number,
            "file": item.relpath,
            "label": texts.statement_label(number, statement.speaker),
            "duration_ms": item.statement.probe.duration_ms,
            "has_video": item.statement.probe.video is not None,
            "name_on_screen": item.statement.consent.name_on_screen,
            "meeting": {
                "speaker": item.statement.speaker,
                "topic": item.statement.topic,
                "in_ms": meeting_in,
                "out_ms": meeting_out,
            },
            "speaker": f.speaker,
            "topic": f.topic,
            "in_ms": None if f.in_ is None else round(f.in_ * 1000),
            "out_ms": None if f.out is None else round(f.out * 1000),
            "cut": list(view.cut) if view.cut else None,
            "approval": None
            if approval is None
            else {
                **approval.to_json(),
                "text": texts.approved_by(approval.by, approval.at)
                if approval.valid
                else texts.changed_after_approval(approval.by, approval.at),
            },
            "version": found.version,
            "cues": [_cue_json(c) for c in cues],
            "flagged": flagged_words(transcript),
            "notes": list(view.notes),
            "blocking": list(view.blocking),
            "readonly": False,
        }

    # ------------------------------------------------------------------------------------- writing

    def save(self, statement_id: str, data: Any) -> dict[str, Any]:
        """Save a statement as the page sent it, atomically, only over the version the page started
        from: raises Conflict (with the statement as it is now) where someone saved in between."""
        item = self.statements[statement_id]
        change = parse_change(data, item.statement.probe.duration_ms)
        srt_name, yaml_name = edits.edit_names(item.relpath)
        with self._lock, edits.edits_lock(self.edits_dir):
            if change.version is not None and change.version != edits.version_of(
                self.edits_dir, item.relpath
            ):
                raise Conflict(statement_id)
            current = edits.read(self.edits_dir, item.statement).fields
            fields = fields_after(current, change, now=dt.datetime.now())
            if change.approve is not None:
                # The approval holds exactly what is saved now: the cues, in/out, speaker and topic.
                shown = edits.apply_fields(
                    item.statement, edits.StatementEdits(item.relpath, change.cues, fields)
                )
                digest = edits.content_digest(change.cues, shown)
                fields = fields.model_copy(update={"approved_digest": digest})
            write_text(self.edits_dir / srt_name, to_srt(change.cues))
            write_text(self.edits_dir / yaml_name, edits.edit_yaml(item.relpath, fields, item.statement))
        self._align_soon(item)
        return self.statement_state(item)

    # -------------------------------------------------------------------------------- alignment

    def _speech_audio(self, item: ReviewStatement) -> Path | None:
        from pipeline import media
        from pipeline.stages.transcribe import audio_key

        path = self.work.audio(audio_key(item.statement, media.speech_decoder()))
        return path if path.exists() else None

    def _aligner(self, engine: Any) -> Any:
        from pipeline import engines
        from pipeline.stages import align

        return align.Aligner(
            self.work,
            self.work.hashes(),
            engine,
            engines.cache_identity(self.options.engine, self.options.model),
        )

    def engine(self) -> Any:
        """The run's engine and model, loaded once (only when a person added words)."""
        from pipeline.engines import load_engine

        if self._engine is None:
            self._engine = load_engine(self.options.engine, self.options.model)
        return self._engine

    def _align_soon(self, item: ReviewStatement) -> None:
        """Where the person added words, hear where they are said, in the background, into the cache the
        render reads: "Lav leverancen" then finds it done."""
        from pipeline import cache
        from pipeline.stages import align
        from pipeline.stages.transcribe import transcript_from_json

        def work() -> None:
            with self._engine_lock:
                try:
                    stored = cache.read_json(item.transcript) if item.transcript else None
                    if not isinstance(stored, dict):
                        return
                    found = edits.read(self.edits_dir, item.statement)
                    _, transcript, _, _ = edits.corrected_one(
                        item.statement, transcript_from_json(stored), found, self.rules
                    )
                    if transcript is None or not align.requests(transcript, item.statement.probe.duration_ms):
                        return
                    self._aligner(self.engine).aligned(
                        transcript, self._speech_audio(item), item.statement.probe.duration_ms
                    )
                except Exception as error:  # the render aligns what is not done here
                    log.info("review: could not align the added words of %s (%s)", item.relpath, error)

        thread = threading.Thread(target=work, name="align", daemon=True)
        self._aligning = thread
        thread.start()

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
        target = self.work.review_video(key)
        if inside(target, self.out_dir) is None:  # work/review, or the file, a link out of OUT
            raise Outside(target)
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
        """`hearing render` of this folder, in this process (its modules and the ffmpeg it chose are
        loaded already, which is most of what a separate process would spend before its first frame),
        on a thread of its own; the page polls the job."""
        with self._lock:
            if self.render.state == "running":
                return self.render
            self.render = RenderJob("running", started=dt.datetime.now().isoformat(timespec="seconds"))
            job = self.render
        threading.Thread(target=self._render, args=(job,), name="render", daemon=True).start()
        return job

    def _render(self, job: RenderJob) -> None:
        from pipeline import runner
        from pipeline.errors import SubtitleProblems, exit_code_for

        logger = logging.getLogger("pipeline")
        capture = _JobLog(job)
        # The page's "detaljer" get what `hearing render -v` prints; the server's own console keeps its
        # level.
        before = logger.level
        for handler in logger.handlers:
            handler.setLevel(max(handler.level, before))
        logger.addHandler(capture)
        logger.setLevel(min(before or logging.WARNING, logging.INFO))
        code = 1
        try:
            options = runner.options_of_earlier_run(self.out_dir)
            with self._engine_lock:  # after the alignments the page asked for; one user of the engine
                made = runner.Runner(options, _JobProgress(job), self._engine)
                try:
                    code = made.run().exit_code
                finally:
                    self._engine = self._engine or made.loaded_engine()
        except SubtitleProblems as error:
            job.problems = list(error.problems)
            code = error.exit_code
        except PipelineError as error:
            job.error = str(error)
            code = error.exit_code
        except BaseException as error:  # the page must learn of every end, whatever it was
            log.exception("review: the render stopped")
            job.error = f"unexpected failure: {type(error).__name__}: {error}"
            code = exit_code_for(error)
        finally:
            logger.removeHandler(capture)
            logger.setLevel(before)
            job.exit_code = code
            # 5 (some recordings rejected) and 6 (a draft, waiting for approvals) made a clip too.
            job.state = "done" if code in (0, 5, 6) else "failed"


class _JobLog(logging.Handler):
    """The render's log lines, for the page."""

    def __init__(self, job: RenderJob) -> None:
        super().__init__(logging.INFO)
        self.job = job

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = f"{record.levelname.lower()}: {record.getMessage()}"
        except Exception:  # a record that cannot be formatted must not stop the render
            return
        self.job.lines.append(text)
        del self.job.lines[:-200]


class _JobProgress:
    """The render's progress as the page shows it: the step it is at."""

    def __init__(self, job: RenderJob) -> None:
        self.job = job

    def begin(self, key: str, label: str) -> None:
        self.job.step = label

    def update(self, key: str, fraction: float) -> None:
        pass

    def end(self, key: str) -> None:
        pass


# ------------------------------------------------------------------------------------------- server


def _shown(text: str | None) -> str:
    """A request's path or line as a log line may show it: short, without its query (which may hold the
    token, however spelt), and with no control character to reach the organiser's terminal."""
    text = re.sub(r"\?\S*", "?...", (text or "")[:1000])[:200]
    return "".join(c if c.isprintable() and c.isascii() else f"\\x{ord(c) & 0xFF:02x}" for c in text)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
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
        if not token_matches(self._given_token(), self.server.review.token):
            if urlsplit(self.path).path in ("/", "/index.html") and self.command in ("GET", "HEAD"):
                log.warning(
                    "review: refused %s %s: without the session's token", self.command, _shown(self.path)
                )
                self._send(HTTPStatus.FORBIDDEN, _page_file("no_token.html").encode("utf-8"), HTML)
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
        resolved = inside(path, self.server.review.out_dir)
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
        if path in ("/", "/index.html"):
            page = (
                _page_file("index.html")
                .replace("{{TOKEN}}", html.escape(review.token))
                .replace("{{TOKEN_URL}}", html.escape(quote(review.token, safe="")))
            )
            self._send(HTTPStatus.OK, page.encode("utf-8"), HTML)
        elif path.startswith("/static/") and path[len("/static/") :] in PAGE_FILES:
            name = path[len("/static/") :]
            self._send(HTTPStatus.OK, _page_file(name).encode("utf-8"), f"{PAGE_FILES[name]}; charset=utf-8")
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

    def _post(self) -> None:
        if not self._trusted():
            return
        review = self.server.review
        path = urlsplit(self.path).path
        if "Transfer-Encoding" in self.headers:
            self._refuse(HTTPStatus.LENGTH_REQUIRED, "a request body needs a Content-Length")
            return
        given = self.headers.get("Content-Length", "0").strip()
        length = int(given) if re.fullmatch(r"[0-9]{1,12}", given) else -1
        if not 0 <= length <= MAX_BODY:
            self._refuse(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"a request body of at most {MAX_BODY} bytes")
            return
        body = self.rfile.read(length)
        if len(body) < length:  # the client stopped sending
            self.close_connection = True
            return
        self._body_read = True
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


class _Server(ThreadingHTTPServer):
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


def _page_file(name: str) -> str:
    return (resources.files("pipeline") / "review_page" / name).read_text(encoding="utf-8")


@contextlib.contextmanager
def review_lock(out_dir: Path) -> Iterator[tuple[int, str | None]]:
    """One review per output folder. Yields (the lock's descriptor, None) to the first review; a second
    one gets (-1, the first one's address) and joins it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    # It holds the page's address with the session's token: for this user's eyes only.
    try:
        fd = os.open(out_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as error:  # a link there would have us write the address wherever it points
        raise UsageError(
            f"{out_dir / LOCK_FILE}: cannot be opened as a plain file ({error.strerror})"
        ) from None
    try:
        with contextlib.suppress(OSError):  # a file system without modes (exFAT)
            os.fchmod(fd, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            address = os.pread(fd, 1000, 0).decode("ascii", "replace").strip()
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
    if not run_record.path_of(out_dir).exists():
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
        url = page_address(server.server_address[1], review.token)
        os.ftruncate(fd, 0)
        os.pwrite(fd, url.encode("ascii"), 0)
        try:  # a Ctrl-C from the moment the address is out stops it as cleanly as a later one
            if on_ready:
                on_ready(url)
            if open_browser:
                _open(url)
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
