"""The state of one output folder under review (``Review``): the statements of the last run's clip,
each read from its files as they are now for the page, a save written atomically over the version the
page started from, and the parts it holds (previews, the engine and its alignments, the render job)."""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from pipeline import run_record
from pipeline.cache import WorkCache
from pipeline.config import load_form, load_meeting
from pipeline.errors import PipelineError, UsageError
from pipeline.files import write_text
from pipeline.meeting_facts import MeetingFacts
from pipeline.review.alignment import Alignment
from pipeline.review.changes import Conflict, fields_after, parse_change
from pipeline.review.previews import Previews, last_clip
from pipeline.review.render_job import RenderJob, run_render
from pipeline.review.view import ReviewStatement, StatementView, cue_json, flagged_words, statement_view
from pipeline.stages import edits, ingest
from pipeline.stages.subtitles.io import to_srt
from pipeline.stages.subtitles.rules import SubtitleRules

log = logging.getLogger(__name__)


class Review:
    """The state of one output folder under review."""

    def __init__(self, out_dir: Path) -> None:
        from pipeline.report import options_of_earlier_run

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
        self.previews = Previews(self.out_dir, self.meeting_dir, self.work, self._lock)
        self.alignment = Alignment(options, self.work, self.edits_dir, self.rules)
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
                "title": MeetingFacts.of(self.meeting, self.meeting_dir).title,
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
            transcript = self.alignment.aligner(None).aligned(
                transcript, self.alignment.speech_audio(item), item.statement.probe.duration_ms
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
            "cues": [cue_json(c) for c in cues],
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
        wrote = edits.machine_wrote(self.edits_dir, item.relpath)
        change = parse_change(data, item.statement.probe.duration_ms, wrote)
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
        self.alignment.align_soon(item)
        return self.statement_state(item)

    # ----------------------------------------------------------------------------------- the media

    def preview(self, statement_id: str) -> Path:
        """The statement's recording as a small MP4 every browser plays, made once and kept in the cache."""
        return self.previews.of(self.statements[statement_id].statement)

    def clip(self) -> Path | None:
        """The clip last made: the delivery's, else the draft's."""
        return last_clip(self.out_dir)

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
        threading.Thread(
            target=run_render, args=(job, self.out_dir, self.alignment), name="render", daemon=True
        ).start()
        return job
