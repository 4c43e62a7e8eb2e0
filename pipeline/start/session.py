"""The meeting being prepared on the page of `hearing start` (``Start``): reading and saving meeting.yaml,
the run, the review page once there is something to review, the delivery."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import logging
import os
import secrets
import tempfile
import threading
from pathlib import Path
from typing import Any

from pipeline import run_record
from pipeline.config import Meeting, load_form, load_meeting
from pipeline.errors import ConfigError, PipelineError, UsageError
from pipeline.report import RunOptions
from pipeline.start import fields
from pipeline.start.job import Job
from pipeline.start.listing import Media, Recording, find
from pipeline.texts import start as texts

log = logging.getLogger(__name__)

MEETING_NAMES = ("meeting.yaml", "meeting.yml")


class Refused(Exception):
    """A save the page cannot make: ``status`` and what to tell the organiser."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclasses.dataclass(frozen=True)
class _Read:
    """meeting.yaml as it is now: the meeting, its mapping, its digest (the version the page saves
    over), its path; or why the page cannot read it (then it is never written over)."""

    meeting: Meeting
    raw: dict[str, Any]
    version: str | None
    path: Path | None
    refused: str | None = None


class Start:
    """One meeting folder being prepared on the page."""

    def __init__(self, options: RunOptions, *, open_folders: bool = True) -> None:
        self.options = options
        self.meeting_dir = options.meeting_dir
        assert options.out_dir is not None
        self.out_dir = options.out_dir
        self.form, _ = load_form(options.form)
        self.token = secrets.token_urlsafe(32)
        self.media = Media(self.meeting_dir, self.out_dir)
        self.job = Job()
        self.open_folders = open_folders
        self._lock = threading.RLock()  # a save reads the state again while it holds it
        self._review: _ReviewServer | None = None
        self._thread: threading.Thread | None = None
        self.recordings: list[Recording] = []
        self.by_id: dict[str, Recording] = {}
        self.rows: list[fields.Row] = []
        self.scan()

    # ------------------------------------------------------------------------------------- reading

    def _read(self) -> _Read:
        present = [self.meeting_dir / n for n in MEETING_NAMES if (self.meeting_dir / n).exists()]
        try:
            meeting, path = load_meeting(self.meeting_dir)
        except ConfigError as error:
            name = Path(error.file).name or "meeting.yaml"
            return _Read(
                Meeting(),
                {},
                None,
                present[0] if present else None,
                texts.existing_file_refused(name, error.field),
            )
        if path is None:
            return _Read(meeting, {}, None, None)
        from pipeline.strict_yaml import read_yaml

        data = path.read_bytes()
        raw = read_yaml(path)
        return _Read(
            meeting, raw if isinstance(raw, dict) else {}, "sha256:" + hashlib.sha256(data).hexdigest(), path
        )

    def scan(self) -> None:
        """The recordings of the folder, found again (a file copied in since the page opened)."""
        recordings = find(self.meeting_dir, self.out_dir, self.form)
        read = self._read()
        rows, _ = fields.rows_in_order(read.meeting, [r.relpath for r in recordings if r.name_ok])
        by_path = {r.relpath: r for r in recordings}
        with self._lock:
            self.recordings = recordings
            self.rows = rows
            self.by_id = {row.id: by_path[row.relpath] for row in rows}

    def state(self) -> dict[str, Any]:
        read = self._read()
        rows, missing = fields.rows_in_order(read.meeting, [r.relpath for r in self.recordings if r.name_ok])
        if [r.relpath for r in rows] != [r.relpath for r in self.rows]:
            self.scan()  # meeting.yaml changed the order since: the ids follow the page's order
            rows = self.rows
        return {
            "texts": texts.PAGE,
            "folder": self.meeting_dir.name,
            "version": read.version,
            "refused": read.refused,
            "values": fields.page_values(read.meeting, rows, self.form.default_consent),
            "recordings": [self._recording(row.id, self.by_id[row.id]) for row in rows],
            "unnamed": [
                {"file": r.relpath, "reason": texts.unusable(r.problem or "")}
                for r in self.recordings
                if not r.name_ok
            ],
            "missing": missing,
            "job": self.job.to_json(),
            "review_url": self.review_url(),
            "delivery": self.delivery(),
            "command": self.command(),
            "model_problem": self.model_problem(),
        }

    def model_problem(self) -> str | None:
        """Why a run started now would stop before any work for want of a speech model, in Danish."""
        import re

        from pipeline import engines
        from pipeline.errors import ModelError

        try:
            engines.model_for_run(self.options.engine, self.options.model, self.form.speech.model)
        except ModelError as error:
            command = re.search(r"`([^`]+)`", error.how_to_fix)
            return texts.model_missing(command[1] if command else None)
        return None

    def _recording(self, row_id: str, recording: Recording) -> dict[str, Any]:
        length = recording.duration_ms
        return {
            "id": row_id,
            "file": recording.relpath,
            "length": texts.duration(length) if length is not None else "",
            "video": recording.has_video and recording.statement is not None,
            "playable": recording.statement is not None,
            "usable": recording.problem is None,
            "note": texts.PAGE["usable"] if recording.problem is None else texts.unusable(recording.problem),
        }

    def command(self) -> str:
        """The command that does what Start does, for the organiser who wants the command line."""
        import shlex

        parts = [
            "hearing",
            "run",
            str(self.meeting_dir),
            "--out",
            str(self.out_dir),
            "--form",
            self.options.form,
        ]
        for option, value in (
            ("--engine", self.options.engine if self.options.engine != "faster-whisper" else None),
            ("--model", self.options.model),
            ("--language", self.options.language),
            ("--device", self.options.device),
        ):
            if value:
                parts += [option, value]
        return shlex.join(parts)

    def delivery(self) -> dict[str, Any]:
        report = run_record.read_in(self.out_dir) or {}
        folder = self.out_dir / "delivery"
        made = report.get("exit_code") in (0, 5) and folder.is_dir() and not report.get("dry_run")
        shown = report.get("delivery")
        given: dict[str, Any] = shown if isinstance(shown, dict) else {}
        zip_file = given.get("zip") if made else None
        return {
            "made": bool(made),
            "folder": str(folder) if made else None,
            "zip": Path(zip_file).name if isinstance(zip_file, str) and Path(zip_file).exists() else None,
        }

    # ------------------------------------------------------------------------------------- saving

    def save(self, sent: Any) -> dict[str, Any]:
        """Write meeting.yaml from what the page sent: built with yaml.safe_dump, read back by the loader
        a hand-written file goes through, the previous one kept beside it, then put in its place.
        Refused (409) where the file changed since the page read it or the page cannot read it; the
        fields that cannot be saved come back by field, in Danish (422)."""
        import yaml
        from pydantic import ValidationError

        from pipeline.files import atomic_path
        from pipeline.stages import ingest

        if not isinstance(sent, dict):
            raise fields.BadPage("body: not an object")
        with self._lock:
            read = self._read()
            if read.refused:
                raise Refused(409, read.refused)
            if sent.get("version") != read.version:
                raise Refused(409, texts.PAGE["conflict"])
            given = sent.get("values")
            shown = given.get("statements") if isinstance(given, dict) else None
            if isinstance(shown, list) and sorted(
                str(s.get("id")) for s in shown if isinstance(s, dict)
            ) != sorted(row.id for row in self.rows):
                raise Refused(409, texts.PAGE["recordings_changed"])
            made = fields.meeting_of(read.raw, sent.get("values"), self.rows)
            errors = dict(made.problems)
            meeting = None
            try:
                meeting = Meeting.model_validate(made.data)
            except ValidationError as error:
                errors = {**fields.field_errors(error, made, self.rows), **errors}
            if errors or meeting is None:
                return {"saved": False, "errors": errors, "message": texts.PAGE["not_saved"]}
            document = meeting.model_dump(mode="python", exclude_none=True, exclude_defaults=True)
            stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
            text = (
                f"# meeting.yaml, gemt af hearing start {stamp}. Kan også rettes i hånden.\n"
                + yaml.safe_dump(document, allow_unicode=True, sort_keys=False, width=100)
            )
            target = read.path or self.meeting_dir / "meeting.yaml"
            # The same loader, on the same bytes, as a person's own file: what it refuses is never written.
            with tempfile.TemporaryDirectory() as scratch:
                trial = Path(scratch) / "meeting.yaml"
                trial.write_text(text, encoding="utf-8")
                try:
                    again, _ = load_meeting(Path(scratch))
                    present = {f.relpath for f in ingest.walk(self.meeting_dir) if f.name_ok}
                    ingest.check_meeting_files(again, target, present)
                except ConfigError as error:
                    log.error("start: meeting.yaml as the page would write it is refused: %s", error)
                    return {"saved": False, "errors": {"": texts.PAGE["not_saved"]}, "message": str(error)}
            previous = None
            if read.path is not None:
                old = read.path.read_bytes()
                if "sha256:" + hashlib.sha256(old).hexdigest() != read.version:
                    raise Refused(409, texts.PAGE["conflict"])
                if _body(old.decode("utf-8", "replace")) == _body(text):
                    return {"saved": True, "message": texts.PAGE["saved"], "state": self.state()}
                previous = self._previous_name(read.path)
                with atomic_path(previous) as temp:
                    temp.write_bytes(old)
            with atomic_path(target) as temp:
                temp.write_text(text, encoding="utf-8")
        log.info(
            "start: wrote %s%s", target, f" (the previous one kept as {previous.name})" if previous else ""
        )
        self.scan()
        saved = texts.PAGE["saved_previous"].format(name=previous.name) if previous else texts.PAGE["saved"]
        return {"saved": True, "message": saved, "state": self.state()}

    def _previous_name(self, path: Path) -> Path:
        """Beside meeting.yaml, under a name no recording has (ingest takes files by their extension)."""
        stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
        candidate = path.with_name(f"{path.name}.previous-{stamp}")
        n = 2
        while candidate.exists() or candidate.is_symlink():
            candidate = path.with_name(f"{path.name}.previous-{stamp}-{n}")
            n += 1
        return candidate

    # ---------------------------------------------------------------------------------------- runs

    def start_run(self) -> dict[str, Any]:
        """`hearing run` of the meeting, on a thread; then the review page of what it made."""
        from pipeline.runner import Runner

        return self._start_job("run", lambda progress: Runner(self.options, progress), self._after_run)

    def start_zip(self) -> dict[str, Any]:
        """`hearing render OUT --zip`: the delivery made again from the cache, and packed for sending."""
        from pipeline.report import options_of_earlier_run
        from pipeline.runner import Runner

        options = dataclasses.replace(options_of_earlier_run(self.out_dir), zip=True)
        return self._start_job("zip", lambda progress: Runner(options, progress), lambda code: None)

    def _start_job(self, kind: str, make: Any, after: Any) -> dict[str, Any]:
        from pipeline.start import job

        with self._lock:
            if self.job.state == "running":
                return self.job.to_json()
            self.job = Job(kind=kind, state="running")
            self._thread = threading.Thread(target=job.run, args=(self.job, make, after), daemon=True)
            self._thread.start()
            return self.job.to_json()

    def stop(self, wait: float = 20.0) -> None:
        """Ctrl-C: a run still going stops at its next check (its run.json says so, and a later run goes
        on from there), and the review page with it."""
        from pipeline import interrupt

        if self._thread is not None and self._thread.is_alive():
            interrupt.request()
            self._thread.join(wait)
        self.close_review()

    def _after_run(self, code: int) -> None:
        if code in (0, 5, 6):
            self.open_review()

    def open_review(self) -> str | None:
        """The review page of the out folder, served beside this page (a new one after each run: it
        reads the statements of the run it starts from)."""
        self.close_review()
        try:
            self._review = _ReviewServer.open(self.out_dir)
        except PipelineError as error:
            log.warning("start: no review page: %s", error)
            self._review = None
        return self._review.url if self._review else None

    def review_url(self) -> str | None:
        return self._review.url if self._review else None

    def close_review(self) -> None:
        if self._review is not None:
            self._review.close()
            self._review = None

    def open_folder(self) -> bool:
        """The delivery folder in the computer's file manager, where there is a desktop to show it."""
        folder = self.out_dir / "delivery"
        if not self.open_folders or not folder.is_dir():
            return False
        import webbrowser

        try:
            return bool(webbrowser.open(folder.as_uri()))
        except Exception:
            return False


def _body(text: str) -> str:
    """meeting.yaml without the line that says when the page saved it: what a save would change."""
    return text.split("\n", 1)[1] if text.startswith("# meeting.yaml, gemt af hearing start") else text


class _ReviewServer:
    """`hearing review` of the out folder on a thread of this process, holding its lock as it does."""

    def __init__(
        self, stack: contextlib.ExitStack, server: Any, url: str, thread: threading.Thread | None
    ) -> None:
        self.stack = stack
        self.server = server
        self.url = url
        self.thread = thread

    @classmethod
    def open(cls, out_dir: Path) -> _ReviewServer:
        from pipeline.review.guards import page_address
        from pipeline.review.server import Server
        from pipeline.review.session import review_lock
        from pipeline.review.state import Review

        stack = contextlib.ExitStack()
        try:
            fd, running = stack.enter_context(review_lock(out_dir))
            if fd < 0:  # a `hearing review` of this folder is open: its page is the review
                if not running:
                    raise UsageError("another hearing review is starting in the output folder")
                return cls(stack, None, running, None)
            review = Review(out_dir)
            server = Server(review, 0)
            url = page_address(server.server_address[1], review.token)
            os.ftruncate(fd, 0)
            os.pwrite(fd, url.encode("ascii"), 0)
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
            thread.start()
            return cls(stack, server, url, thread)
        except BaseException:
            stack.close()
            raise

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        self.stack.close()
