"""The order of the stages, the content-addressed cache under ``OUT/work`` and the run report.

The runner reports progress through a ``Progress`` object the caller gives it; it never draws anything.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import platform
import re
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pipeline import __version__, cache, interrupt
from pipeline.config import Form, Meeting, load_form, load_meeting
from pipeline.engines.base import Engine, ModelInfo, TranscribeSettings
from pipeline.errors import (
    EXIT_DRAFT,
    EXIT_OK,
    EXIT_REJECTED,
    Busy,
    ConfigError,
    DiskFull,
    ModelError,
    NotConforming,
    NothingDelivered,
    PipelineError,
    UsageError,
    exit_code_for,
)
from pipeline.files import (
    HashCache,
    atomic_path,
    recover_folder,
    replace_folder,
    sha256_file,
    write_bytes,
    write_json,
    write_text,
)
from pipeline.models import Approval, Rejection, Statement, StatementTranscript
from pipeline.stages import archive, check, cut, edits, ingest, subtitles, transcribe, transcript
from pipeline.stages.clip import ClipMaker
from pipeline.stages.render import SEGMENT_SUFFIX
from pipeline.stages.subtitles import Cue, SubtitleRules
from pipeline.steps import NoProgress, Progress, StageLog, StageRecord, StopsOnCtrlC

log = logging.getLogger(__name__)

RUN_REPORT_VERSION = 1


@dataclass(frozen=True)
class RunOptions:
    meeting_dir: Path
    out_dir: Path | None = None
    form: str = "default"
    engine: str = "faster-whisper"
    model: str | None = None
    language: str | None = None
    dry_run: bool = False


@dataclass
class RunReport:
    """Everything run.json records; also what ``--json`` prints."""

    options: RunOptions
    started: str
    out_dir: Path
    form: Form | None = None
    form_path: Path | None = None
    meeting_file: Path | None = None
    language: str | None = None
    settings: TranscribeSettings | None = None
    recordings: list[dict[str, Any]] = field(default_factory=list)
    statements: list[Statement] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    stages: list[StageRecord] = field(default_factory=list)
    engine_info: dict[str, Any] = field(default_factory=dict)
    delivery_name: str | None = None
    cuts: dict[str, Any] = field(default_factory=dict)
    cues: list[Any] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    archive: dict[str, Any] | None = None
    qc: dict[str, Any] | None = None
    delivered: list[str] = field(default_factory=list)
    exit_code: int = EXIT_OK
    error: str | None = None
    seconds: float = 0.0
    ffmpeg: str | None = None
    ffmpeg_choice: dict[str, Any] | None = None
    seeds: dict[str, int | None] = field(default_factory=dict)  # statement id -> the engine's seed
    prompts: dict[str, str | None] = field(default_factory=dict)  # statement id -> vocabulary prompt
    no_text: list[str] = field(default_factory=list)  # statements with speech but no recognised words
    edited: list[str] = field(default_factory=list)  # statements whose text a person corrected
    draft: bool = False  # the delivery waits in draft/ for approvals
    approvals: dict[str, Approval | None] = field(default_factory=dict)  # statement id -> who approved

    @property
    def rejected(self) -> list[Rejection]:
        return [r for r in self.rejections if r.kind == "rejected"]

    @property
    def withheld(self) -> list[Rejection]:
        return [r for r in self.rejections if r.kind == "withheld"]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "hearing-pipeline run report",
            "version": RUN_REPORT_VERSION,
            "tool": {"name": "hearing-pipeline", "version": __version__, "python": platform.python_version()},
            "ffmpeg": self.ffmpeg_choice or {"version": self.ffmpeg},
            "started": self.started,
            "seconds": round(self.seconds, 3),
            "dry_run": self.options.dry_run,
            # As given, so that `hearing render` can run the same again with the corrections.
            "options": {
                "meeting_dir": str(self.options.meeting_dir.resolve()),
                "form": str(self.form_path) if self.form_path else self.options.form,
                "engine": self.options.engine,
                "model": self.options.model,
                "language": self.options.language,
            },
            "draft": self.draft,
            "meeting_dir": str(self.options.meeting_dir),
            "meeting_file": str(self.meeting_file) if self.meeting_file else None,
            "out_dir": str(self.out_dir),
            "form": {
                "name": self.form.name if self.form else self.options.form,
                "path": str(self.form_path) if self.form_path else None,
                "sha256": sha256_file(self.form_path) if self.form_path else None,
            },
            "language": self.language,
            "engine": {
                "name": self.options.engine,
                "model": self.options.model or "base",
                **self.engine_info,
            },
            "settings": self.settings.to_json() if self.settings else None,
            "recordings": self.recordings,
            "statements": [
                {
                    "id": s.id,
                    "file": s.recording.relpath,
                    "sha256": s.recording.sha256,
                    "speaker": s.speaker,
                    "topic": s.topic,
                    "group": s.group,
                    "consent": vars(s.consent),
                    "audio_stream": s.audio_stream,
                    "duration_ms": s.probe.duration_ms,
                    "seed": self.seeds.get(s.id),
                    "prompt": self.prompts.get(s.id),
                    "no_text": s.id in self.no_text,
                    "edited": s.id in self.edited,
                    "approved": (a.to_json() if (a := self.approvals.get(s.id)) else None),
                }
                for s in self.statements
            ],
            "rejected": [{"file": r.relpath, "reason": r.reason} for r in self.rejected],
            "withheld": [{"file": r.relpath, "reason": r.reason} for r in self.withheld],
            "stages": [s.to_json() for s in self.stages],
            "cuts": {
                sid: {"in_ms": c.in_ms, "out_ms": c.out_ms, "how": c.how, "notes": list(c.notes)}
                for sid, c in self.cuts.items()
            },
            "timeline": self.timeline,
            "subtitles": {
                "cues": len(self.cues),
                "warnings": [
                    {"start_ms": c.start_ms, "text": c.text, "warnings": list(c.warnings)}
                    for c in self.cues
                    if c.warnings
                ],
            },
            "delivery": {"name": self.delivery_name, "files": self.delivered},
            "archive": self.archive,
            "qc": self.qc,
            "exit_code": self.exit_code,
            "error": self.error,
        }


# ------------------------------------------------------------------------------------------ pure core

_UNSAFE_IN_NAME = re.compile(r'[\\/:*?"<>|\x00-\x1f]+')


def delivery_name(form: Form, meeting: Meeting, meeting_name: str) -> str:
    """The delivery's file-name stem from the form's template; safe on every file system officials use."""
    values = {
        "date": meeting.date.isoformat() if meeting.date else "udateret",
        "committee": meeting.committee or "udvalget",
        "title": meeting.title or meeting_name,
        "place": meeting.place or "",
        "organiser": meeting.organiser or "",
        "form": form.name,
    }
    raw = form.naming.format(**values)
    clean = _UNSAFE_IN_NAME.sub("-", raw)
    clean = re.sub(r"\s+", "-", clean.strip())
    clean = re.sub(r"-{2,}", "-", clean)
    clean = re.sub(r"-*_-*", "_", clean).strip(".-_")
    return clean[:120] or "hoeringssvar"


def default_out_dir(meeting_dir: Path) -> Path:
    resolved = meeting_dir.resolve()
    return resolved.parent / f"{resolved.name}-output"


# Bytes a second of clip takes while it is made: H.264 at about 0.1 bit a pixel (CRF 18-23 on talking
# heads stays well below), twice (segment and clip, where a hard link is impossible), plus PCM audio in
# the segments. An estimate on the safe side: running out of space half-way helps nobody.
BITS_PER_PIXEL = 0.1
SPEECH_AUDIO_BYTES_PER_S = 32_000  # 16 kHz mono 16-bit
SAFETY = 1.5


def estimate_need(form: Form, *, speech_ms: int, clip_ms: int, archive_bytes: int) -> int:
    """Free space a run needs for what it has not made yet."""
    video = form.video.width * form.video.height * form.video.fps * BITS_PER_PIXEL / 8
    pcm = form.audio.sample_rate * form.audio.channels * 2
    render = (2 * video + pcm) * clip_ms / 1000
    speech = SPEECH_AUDIO_BYTES_PER_S * speech_ms / 1000
    return round(SAFETY * (render + speech + archive_bytes))


@contextmanager
def hold_lock(out_dir: Path) -> Iterator[None]:
    """One run at a time in an output folder; a second one is refused, never interleaved."""
    import fcntl
    import os

    out_dir.mkdir(parents=True, exist_ok=True)
    lock = out_dir / ".hearing.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "another process"
            raise Busy(
                f"another hearing run (process {holder}) is working in {out_dir}; "
                "wait until it has finished, or choose another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)


# The delivery is built here, then swapped into place: delivery/ is always all new or all old.
STAGING_DELIVERY = ".delivery-next"
ASIDE_PREFIX = ".delivery-old-"
FAILED_DELIVERY = "failed-delivery"
DRAFT = "draft"  # a delivery that waits for statements to be approved
DRAFT_ASIDE_PREFIX = ".draft-old-"


def remove_partial_files(out_dir: Path) -> None:
    """Half-written files and deliveries of a run that was killed; only a run holding the lock may remove
    them. A run stopped in the middle of replacing ``delivery/`` gets its previous delivery back."""
    if recover_folder(out_dir / "delivery", list(out_dir.glob(f"{ASIDE_PREFIX}*"))):
        log.info("put the previous delivery back in place (a run was stopped while replacing it)")
    recover_folder(out_dir / DRAFT, list(out_dir.glob(f"{DRAFT_ASIDE_PREFIX}*")))
    shutil.rmtree(out_dir / STAGING_DELIVERY, ignore_errors=True)
    for partial in out_dir.rglob(".*.part"):
        if partial.is_file():
            partial.unlink(missing_ok=True)


def model_id(model: str | None) -> str:
    """What identifies the model in a cache key, without loading it."""
    from pipeline.engines import embedded

    name = model or "base"
    if name == "base" and embedded.embedded_available():
        return f"embedded:{embedded.MODEL_SHA256}"
    path = Path(name).expanduser()
    if path.exists():
        stat = path.stat()
        return f"path:{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    return f"name:{name}"


def model_label(model: str | None) -> str:
    return "base" if model is None else Path(model).name if Path(model).exists() else model


# ------------------------------------------------------------------------------------------------ I/O


class Runner:
    def __init__(self, options: RunOptions, progress: Progress | None = None) -> None:
        self.options = options
        self.progress: Progress = StopsOnCtrlC(progress or NoProgress())
        self.report = RunReport(
            options=options,
            started=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            out_dir=(options.out_dir or default_out_dir(options.meeting_dir)).resolve(),
        )
        # The report's list of stages is the log's: both name the same records.
        self.steps = StageLog(self.report.stages)
        self._engine: Engine | None = None
        self.hashes: HashCache | None = None
        self.transcript_files: dict[str, str] = {}  # statement id -> its transcript, relative to OUT

    @property
    def out_dir(self) -> Path:
        return self.report.out_dir

    @property
    def work(self) -> Path:
        return self.out_dir / "work"

    def stage(
        self, name: str, statement: str | None, key: str | None, cached: bool
    ) -> AbstractContextManager[StageRecord]:
        return self.steps.stage(name, statement, key, cached)

    def engine(self) -> Engine:
        if self._engine is None:
            from pipeline.engines import load_engine

            self.progress.begin("model", f"Indlæser talemodel ({model_label(self.options.model)})")
            try:
                self._engine = load_engine(self.options.engine, self.options.model)
            finally:
                self.progress.end("model")
            self.report.engine_info = {
                "version": self._engine.version,
                "model_source": self._engine.model.source,
                "model_path": self._engine.model.path,
                "model_sha256": self._engine.model.sha256,
            }
        return self._engine

    # ---------------------------------------------------------------------------------------- run

    def run(self) -> RunReport:
        started = time.monotonic()
        try:
            prepared = self._prepare()
        except PipelineError as error:
            self.report.exit_code = error.exit_code
            self.report.error = str(error)
            raise
        if self.options.dry_run:
            self._run(*prepared)
            return self.report
        with hold_lock(self.out_dir), interrupt.guard():
            try:
                remove_partial_files(self.out_dir)
                self._run(*prepared)
            except PipelineError as error:
                self.report.exit_code = error.exit_code
                self.report.error = str(error)
                raise
            except KeyboardInterrupt:
                self.report.exit_code = exit_code_for(KeyboardInterrupt())
                self.report.error = "interrupted; a re-run resumes"
                raise
            finally:
                self.report.seconds = time.monotonic() - started
                if self.hashes:
                    self.hashes.save()
                write_json(self.out_dir / "run.json", self.report.to_json())
        return self.report

    def _check_places(self) -> Path:
        meeting_dir = self.options.meeting_dir.resolve()
        if not meeting_dir.is_dir():
            raise UsageError(f"{self.options.meeting_dir}: not a folder")
        if self.out_dir == meeting_dir or self.out_dir.is_relative_to(meeting_dir):
            raise UsageError(
                f"--out {self.out_dir} is inside the meeting folder, which is never written to; "
                "choose a folder outside it"
            )
        if meeting_dir.is_relative_to(self.out_dir):
            # A run tidies its output folder (half-written files, an old delivery): never the meeting's.
            raise UsageError(
                f"--out {self.out_dir} contains the meeting folder, which is never written to; "
                "choose a folder beside it"
            )
        return meeting_dir

    def _check_language(self, form: Form, meeting: Meeting) -> str:
        """The spoken language (``--language``, else meeting.yaml, else the form). Each one given is
        checked against what the engine knows, naming where it was set, even where another overrides it:
        the next run may not pass the same option."""
        from pipeline.engines import known_languages

        known = known_languages()
        allowed = "a language code Whisper knows (da, en, de, sv, nb, ...)"
        if self.options.language is not None and self.options.language not in known:
            raise UsageError(f"--language {self.options.language}: not {allowed}")
        if meeting.language is not None and meeting.language not in known:
            where = self.report.meeting_file or "meeting.yaml"
            raise ConfigError(where, "language", f"{meeting.language!r} is not {allowed}")
        if form.language not in known:
            where = self.report.form_path or self.options.form
            raise ConfigError(where, "language", f"{form.language!r} is not {allowed}")
        return self.options.language or meeting.language or form.language

    def _check_engine(self) -> None:
        from pipeline.engines import ENGINES, looks_like_path

        if self.options.engine not in ENGINES:
            raise UsageError(f"--engine {self.options.engine}: choose one of {', '.join(ENGINES)}")
        model = self.options.model
        if model and looks_like_path(model) and not Path(model).expanduser().exists():
            raise ModelError(f"model {model} not found", "check the path, or run `hearing models`")

    def _prepare(self) -> tuple[Path, Form, Meeting, str]:
        """Everything that can be checked before anything is written."""
        from pipeline import media

        meeting_dir = self._check_places()
        self._check_engine()
        form, self.report.form_path = load_form(self.options.form)
        self.report.form = form
        meeting, self.report.meeting_file = load_meeting(meeting_dir)
        language = self._check_language(form, meeting)
        # Also proves that ffmpeg is there and can do the work, before any work starts.
        choice = media.ffmpeg_choice()
        self.report.ffmpeg = choice.version
        self.report.ffmpeg_choice = choice.to_json()
        return meeting_dir, form, meeting, language

    def _run(self, meeting_dir: Path, form: Form, meeting: Meeting, language: str) -> None:
        from pipeline import media

        options = self.options
        report = self.report
        report.language = language
        settings = TranscribeSettings(language=language)
        report.settings = settings
        self.hashes = HashCache(self.work / "hashes.json")

        self.progress.begin("ingest", "Finder og undersøger optagelser")
        with self.stage("ingest", None, None, cached=False) as record:
            found = ingest.run(
                meeting_dir,
                meeting,
                report.meeting_file,
                form,
                self.hashes,
                on_file=lambda relpath: log.debug("probing %s", relpath),
                probe_cache=None if options.dry_run else self.work / "probes",
            )
            record.cached = found.all_cached
        self.progress.end("ingest")
        report.recordings = [
            {"file": r.relpath, "size": r.size, "sha256": r.sha256} for r in found.recordings
        ]
        report.rejections = list(found.rejections)
        for rejection in found.rejections:
            log.info("%s: %s", rejection.relpath, rejection.reason)
        if not options.dry_run:
            # Before copying: the archive and the speech audio. The clip is checked once its length is known.
            decoder = media.speech_decoder()
            pending = [
                s
                for s in found.statements
                if not (self.work / "audio" / f"{transcribe.audio_key(s, decoder)}.wav").exists()
            ]
            self._check_disk(
                form,
                speech_ms=sum(s.probe.duration_ms for s in pending),
                archive_bytes=0
                if (self.out_dir / "archive").exists()
                else sum(r.size for r in found.recordings),
            )
            # The originals are safe in the archive before anything else is made from them.
            self._archive(meeting_dir, meeting, form, found, events=())

        transcripts: dict[str, StatementTranscript] = {}
        kept: list[Statement] = []
        for statement in found.statements:
            prompt = transcribe.vocabulary_prompt(meeting, form, statement)
            self.report.prompts[statement.id] = prompt
            statement, result = self._listen(meeting_dir, statement, replace(settings, prompt=prompt))
            if isinstance(result, Rejection):
                report.rejections.append(result)
                log.info("%s: %s", result.relpath, result.reason)
            else:
                if result is not None:
                    transcripts[statement.id] = result
                kept.append(statement)
        report.statements = kept

        if options.dry_run and len(transcripts) < len(kept):
            log.info("the clip can be planned once every statement is transcribed")
            return

        kept, fixed_cues = self._corrections(kept, transcripts, form)
        report.statements = kept

        ordered = cut.order_statements(kept, form)
        cuts: dict[str, cut.Cut] = {}
        clipped: dict[str, StatementTranscript] = {}
        with self.stage("cut", None, None, cached=False):
            for statement in ordered:
                planned = cut.plan_cut(statement, transcripts[statement.id], form)
                if isinstance(planned, Rejection):
                    report.rejections.append(planned)
                    continue
                for note in planned.notes:
                    log.warning("%s: %s", statement.recording.relpath, note)
                cuts[statement.id] = planned
                clipped[statement.id] = cut.words_in_cut(transcripts[statement.id], planned)
        ordered = [s for s in ordered if s.id in cuts]
        report.statements = ordered
        report.cuts = cuts
        if not ordered:
            raise NothingDelivered(
                "nothing to deliver: no recording in the meeting folder could be used"
                + (f" ({len(report.rejections)} left out, see above)" if report.rejections else "")
            )
        name = delivery_name(form, meeting, meeting_dir.name)
        report.delivery_name = name
        assert self.hashes is not None
        clip = ClipMaker(
            steps=self.steps,
            work=self.work,
            hashes=self.hashes,
            progress=self.progress,
            meeting_dir=meeting_dir,
            meeting=meeting,
            form=form,
            language=language,
            name=name,
        )
        timeline = clip.plan(ordered, cuts, clipped, fixed_cues)
        report.cuts = dict(timeline.cuts)
        if not options.dry_run and not self._delivered_clip():
            self._check_disk(form, clip_ms=timeline.duration_ms)
        if options.dry_run:
            clip.render(timeline, self._staging, dry_run=True)
            return
        made = clip.render(timeline, self._staging)
        assert made is not None
        report.delivered += made.delivered
        report.cues = list(made.cues)
        report.timeline = made.timeline
        starts = {
            p.statement_id: p.start_ms for p in timeline.parts if p.kind == "statement" and p.statement_id
        }
        self._deliver(meeting, meeting_dir.name, form, ordered, clipped, language, starts)
        self._archive(meeting_dir, meeting, form, found, events=self._events(ordered, settings))
        report.exit_code = EXIT_DRAFT if report.draft else EXIT_REJECTED if report.rejected else EXIT_OK

    def _corrections(
        self, statements: list[Statement], transcripts: dict[str, StatementTranscript], form: Form
    ) -> tuple[list[Statement], dict[str, tuple[Cue, ...]]]:
        """A person's corrections in OUT/edits applied to the statements and their transcripts; the
        starting files left there for the statements that have none. Returns the statements and the
        cues a person timed (recording-relative), which the clip shows as given."""
        rules = SubtitleRules.from_form(form)
        folder = self.out_dir / "edits"
        corrected: list[Statement] = []
        fixed: dict[str, tuple[Cue, ...]] = {}
        for statement in statements:
            heard = transcripts.get(statement.id)
            if heard is not None and not self.options.dry_run:
                edits.write_starting(folder, statement, heard, rules)
            found = edits.read(folder, statement)
            statement = edits.apply_fields(statement, found)
            if found.cues is not None and heard is not None:
                srt_name = edits.edit_names(statement.recording.relpath)[0]
                for problem in subtitles.validate(found.cues, rules, statement.probe.duration_ms):
                    log.warning("edits/%s: %s", srt_name, problem)
                transcripts[statement.id] = edits.apply_cues(heard, found.cues)
                fixed[statement.id] = found.cues
                self.report.edited.append(statement.id)
                log.info("%s: the text as corrected in edits/", statement.recording.relpath)
            self.report.approvals[statement.id] = found.approval
            corrected.append(statement)
        return corrected, fixed

    def _archive(
        self,
        meeting_dir: Path,
        meeting: Meeting,
        form: Form,
        found: ingest.IngestResult,
        events: tuple[archive.Event, ...],
    ) -> None:
        """Bag the recordings as received; later calls add the run's events to the same bag."""
        withheld = archive.withheld_from_archive(meeting, form, [r.relpath for r in found.recordings])
        engine, model = self._engine_identity()
        info = archive.archive_info(
            meeting, meeting_dir.name, ffmpeg_version=self.report.ffmpeg, engine=engine, model=model
        )
        with self.stage("archive", None, None, cached=False) as record:
            self.progress.begin("archive", "Arkiverer optagelserne")
            try:
                result = archive.build_archive(
                    self.out_dir,
                    meeting_dir,
                    found.recordings,
                    found.probes,
                    withheld,
                    self.report.meeting_file,
                    info,
                    events,
                    unusable={r.relpath: r.reason for r in self.report.rejected},
                    on_progress=lambda f: self.progress.update("archive", f),
                )
            finally:
                self.progress.end("archive")
            record.cached = result.action == "reused"
        self.report.archive = result.to_json()

    def _engine_identity(self) -> tuple[archive.Software, ModelInfo]:
        """The engine and model of this run, for provenance, also when every transcript was cached."""
        from importlib import metadata

        from pipeline.engines import embedded

        if self._engine is not None:
            software = archive.Software(self._engine.name, self._engine.version, role="speech engine")
            return software, self._engine.model
        distribution = "openai-whisper" if self.options.engine == "openai-whisper" else "faster-whisper"
        try:
            version = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            version = "unknown"
        name = self.options.model or "base"
        if name == "base" and embedded.embedded_available():
            model = ModelInfo("base", "embedded", str(embedded.model_dir()), embedded.MODEL_SHA256)
        else:
            model = ModelInfo(model_label(self.options.model), "cache", name, None)
        return archive.Software(self.options.engine, version, role="speech engine"), model

    def _events(self, statements: list[Statement], settings: TranscribeSettings) -> tuple[archive.Event, ...]:
        """Provenance of what this run made from the recordings: each transcription and the clip."""
        engine, model = self._engine_identity()
        events = [
            archive.transcription_event(
                s.recording.relpath,
                self.transcript_files[s.id],
                engine,
                archive.model_software(model),
                {
                    **settings.to_json(),
                    "prompt": self.report.prompts.get(s.id),
                    "seed": self.report.seeds.get(s.id),
                },
            )
            for s in statements
            if s.id in self.transcript_files
        ]
        join = next((stage for stage in reversed(self.report.stages) if stage.stage == "join"), None)
        name = self.report.delivery_name
        # A draft is not a derivation anyone receives: its clip enters the provenance once delivered.
        if join is not None and join.command and name and not self.report.draft:
            ffmpeg = archive.Software("ffmpeg", self.report.ffmpeg or "unknown")
            by_id = {s.id: s for s in statements}
            # Each statement's segment of this clip, made now or in an earlier run (the command is the
            # same either way: its key is in the file name).
            for stage in self.report.stages:
                if stage.part == "statement" and stage.statement in by_id and stage.command and stage.key:
                    events.append(
                        archive.creation_event(
                            [by_id[stage.statement].recording.relpath],
                            f"work/segments/{stage.key}{SEGMENT_SUFFIX}",
                            ffmpeg,
                            stage.command,
                        )
                    )
            clip = self.out_dir / "delivery" / f"{name}.mp4"
            events.append(
                archive.creation_event(
                    [s.recording.relpath for s in statements],
                    f"delivery/{clip.name}",
                    ffmpeg,
                    join.command,
                    clip_sha256=self.hashes.sha256(clip) if self.hashes else None,
                )
            )
        return tuple(events)

    def _check_disk(
        self, form: Form, *, speech_ms: int = 0, clip_ms: int = 0, archive_bytes: int = 0
    ) -> None:
        """Refuse to start work that cannot finish for lack of space, naming both numbers."""
        import shutil

        need = estimate_need(form, speech_ms=speech_ms, clip_ms=clip_ms, archive_bytes=archive_bytes)
        free = shutil.disk_usage(self.out_dir).free
        log.info("disk: about %d bytes needed, %d free", need, free)
        if need > free:
            raise DiskFull(str(self.out_dir), need, free)

    def _delivered_clip(self) -> bool:
        delivery = self.out_dir / "delivery"
        return delivery.is_dir() and any(delivery.glob("*.mp4"))

    def _speech_audio(self, meeting_dir: Path, statement: Statement) -> Path | Rejection | None:
        """The statement's speech as 16 kHz mono WAV in the cache (None: a dry run that would make it)."""
        from pipeline import media

        assert self.hashes is not None
        source = meeting_dir / statement.recording.relpath
        audio_key = transcribe.audio_key(statement, media.speech_decoder())
        audio_path = self.work / "audio" / f"{audio_key}.wav"
        cached = cache.is_intact(audio_path, self.hashes)
        with self.stage("speech-audio", statement.id, audio_key, cached) as record:
            record.command = media.speech_audio_plan(source, statement.audio_stream, audio_path)
            if cached:
                return audio_path
            if self.options.dry_run:
                return None
            progress_key = f"audio-{statement.id}-{statement.audio_stream}"
            self.progress.begin(progress_key, f"Lyd fra {statement.recording.relpath}")
            try:
                with atomic_path(audio_path) as temp:
                    damage = media.extract_speech_audio(
                        source,
                        statement.audio_stream,
                        temp,
                        duration_ms=statement.probe.duration_ms,
                        on_progress=lambda f: self.progress.update(progress_key, f),
                    )
                cache.seal(audio_path, self.hashes)
                if damage:
                    log.warning(
                        "%s: the audio had damaged parts that were skipped (%s)",
                        statement.recording.relpath,
                        damage[-1],
                    )
            except PipelineError as error:
                return Rejection(statement.recording.relpath, f"audio cannot be decoded: {error}")
            finally:
                self.progress.end(progress_key)
        return audio_path

    def _choose_speech_stream(
        self, meeting_dir: Path, statement: Statement, settings: TranscribeSettings
    ) -> Statement:
        """With several audio streams (a camera's two microphones, a dubbed track), the one with speech."""
        from pipeline import media

        candidates = [a.index for a in statement.probe.audio if a.sample_rate and a.channels]
        if len(candidates) < 2 or self.options.dry_run:
            return statement
        speech: dict[int, int] = {}
        for index in candidates:
            audio = self._speech_audio(meeting_dir, replace(statement, audio_stream=index))
            if isinstance(audio, Path):
                speech[index] = transcribe.speech_ms(media.read_wav_mono16k(audio), settings)
        if not speech:
            return statement
        best = max(speech, key=lambda index: (speech[index], -candidates.index(index)))
        position = candidates.index(best) + 1
        log.warning(
            "%s: using audio stream %d of %d, the one with the most speech (%s)",
            statement.recording.relpath,
            position,
            len(candidates),
            ", ".join(
                f"stream {candidates.index(i) + 1}: {ms / 1000:.1f} s speech" for i, ms in speech.items()
            ),
        )
        return replace(statement, audio_stream=best)

    def _listen(
        self, meeting_dir: Path, statement: Statement, settings: TranscribeSettings
    ) -> tuple[Statement, StatementTranscript | Rejection | None]:
        """Speech audio and transcript of one statement, from the cache where still valid. The statement
        comes back too: its speech stream may have been chosen here."""
        from pipeline import media

        assert self.hashes is not None
        statement = self._choose_speech_stream(meeting_dir, statement, settings)
        audio_path = self._speech_audio(meeting_dir, statement)
        if isinstance(audio_path, Rejection):
            return statement, audio_path
        if audio_path is None:
            # Without the audio its transcription key is unknown, so it cannot be in the cache either.
            with self.stage("transcribe", statement.id, None, cached=False):
                return statement, None
        problem = transcribe.truncation(statement, media.wav_duration_ms(audio_path))
        if problem:
            return statement, Rejection(statement.recording.relpath, problem)
        audio_sha = self.hashes.sha256(audio_path)
        key = transcribe.transcription_key(
            audio_sha, self.options.engine, model_id(self.options.model), settings
        )
        target = self.work / "transcripts" / f"{key}.json"
        self.transcript_files[statement.id] = target.relative_to(self.out_dir).as_posix()
        stored = transcribe.read_transcript(target)
        with self.stage("transcribe", statement.id, key, stored is not None):
            if stored is not None:
                result = replace(stored, statement_id=statement.id)
            elif self.options.dry_run:
                return statement, None
            else:
                engine = self.engine()
                progress_key = f"listen-{statement.id}"
                self.progress.begin(progress_key, f"Transskriberer {statement.recording.relpath}")
                try:
                    result = transcribe.run_transcription(
                        statement,
                        audio_path,
                        engine,
                        model_label(self.options.model),
                        settings,
                        target,
                        audio_sha,
                        on_progress=lambda f: self.progress.update(progress_key, f),
                    )
                finally:
                    self.progress.end(progress_key)
        if not result.words:
            if transcribe.no_words_upper_bound_rejects(result):
                return statement, Rejection(statement.recording.relpath, transcribe.NO_SPEECH_REASON)
            heard_ms = transcribe.speech_ms(media.read_wav_mono16k(audio_path), settings)
            verdict = transcribe.judge_no_words(heard_ms)
            if verdict is not None:
                return statement, Rejection(statement.recording.relpath, verdict)
            log.warning(
                "%s: the voice detector hears %.1f s of speech, but no words were recognised; the "
                "statement goes into the clip and is flagged for a person to write its text",
                statement.recording.relpath,
                heard_ms / 1000,
            )
            result = replace(result, no_text=True)
            self.report.no_text.append(statement.id)
        self.report.seeds[statement.id] = result.seed
        return statement, result

    def _deliver(
        self,
        meeting: Meeting,
        meeting_name: str,
        form: Form,
        statements: list[Statement],
        transcripts: dict[str, StatementTranscript],
        language: str,
        starts_ms: dict[str, int],
    ) -> None:
        report = self.report
        name = report.delivery_name or delivery_name(form, meeting, meeting_name)
        delivery = self._staging
        first = transcripts[statements[0].id]
        doc = transcript.build(
            meeting,
            meeting_name,
            form,
            statements,
            transcripts,
            engine=first.engine,
            model=first.model,
            language=language,
            starts_ms=starts_ms,
            approvals=report.approvals,
        )
        writers: dict[str, Callable[[Path], None]] = {
            "txt": lambda p: write_text(p, transcript.render_txt(doc)),
            "json": lambda p: write_json(p, transcript.render_json(doc)),
            "docx": lambda p: write_bytes(p, transcript.render_docx(doc)),
        }
        with self.stage("transcript", None, None, cached=False):
            for fmt in form.transcript.formats:
                target = delivery / f"{name}-transkription.{fmt}"
                writers[fmt](target)
                report.delivered.append(target.name)
        with self.stage("check", None, None, cached=False):
            # Measured from the files as delivered, never from the settings that made them.
            qc = check.run_check(
                delivery / f"{name}.mp4",
                form,
                subtitles=delivery / f"{name}.{language}.srt",
                transcript_json=(delivery / f"{name}-transkription.json")
                if "json" in form.transcript.formats
                else None,
                run_json=None,  # written only when the run ends; the timeline is passed instead
                timeline=report.timeline,
                language=language,
            )
            report.delivered += check.write_qc_report(delivery, qc)
        report.qc = {"passed": qc.passed, "verdict": qc.verdict(), "failures": [r.check for r in qc.failures]}
        # Through the hash cache: the clip's checksum is needed again for its provenance event.
        digest = self.hashes.sha256 if self.hashes else sha256_file
        sums = "".join(f"{digest(delivery / file)}  {file}\n" for file in sorted(report.delivered))
        write_text(delivery / "SHA256SUMS", sums)
        if not qc.passed:
            # The official keeps the last delivery that passed; this one is kept apart for a look.
            failed = self.out_dir / FAILED_DELIVERY
            replace_folder(delivery, failed, self.out_dir / f"{ASIDE_PREFIX}{os.getpid()}")
            raise NotConforming(
                f"{qc.summary()}; the files are kept for inspection in {failed}, and "
                f"{self.out_dir / 'delivery'} is unchanged"
            )
        unapproved = [s for s in statements if report.approvals.get(s.id) is None]
        if form.require_approval and unapproved:
            # Nothing reaches the official unread: the whole delivery waits in draft/ for the approvals.
            draft = self.out_dir / DRAFT
            replace_folder(delivery, draft, self.out_dir / f"{DRAFT_ASIDE_PREFIX}{os.getpid()}")
            report.draft = True
            log.warning(
                "a draft is in %s: %d of %d statements are not approved yet (%s); read and approve them "
                "with `hearing review %s` or in %s (approved: true, approved_by), then run "
                "`hearing render %s`",
                draft,
                len(unapproved),
                len(statements),
                ", ".join(s.recording.relpath for s in unapproved),
                self.out_dir,
                self.out_dir / "edits",
                self.out_dir,
            )
            return
        replace_folder(delivery, self.out_dir / "delivery", self.out_dir / f"{ASIDE_PREFIX}{os.getpid()}")
        # An earlier failure or draft is no longer what this folder delivers.
        shutil.rmtree(self.out_dir / FAILED_DELIVERY, ignore_errors=True)
        shutil.rmtree(self.out_dir / DRAFT, ignore_errors=True)

    @property
    def _staging(self) -> Path:
        """Where the next delivery is put together; it replaces ``delivery/`` as a whole once checked."""
        return self.out_dir / STAGING_DELIVERY


def options_of_earlier_run(out_dir: Path, *, dry_run: bool = False) -> RunOptions:
    """The options `hearing run` was given for ``out_dir`` (from its run.json), for `hearing render`."""
    report = cache.read_json(out_dir / "run.json")
    given = report.get("options") if isinstance(report, dict) else None
    if not isinstance(given, dict) or not given.get("meeting_dir"):
        raise UsageError(
            f"{out_dir} holds no earlier run (no run.json with its options): run `hearing run "
            f"MEETING_DIR --out {out_dir}` first"
        )
    return RunOptions(
        meeting_dir=Path(given["meeting_dir"]),
        out_dir=out_dir,
        form=str(given.get("form") or "default"),
        engine=str(given.get("engine") or "faster-whisper"),
        model=given.get("model"),
        language=given.get("language"),
        dry_run=dry_run,
    )


def run(options: RunOptions, progress: Progress | None = None) -> RunReport:
    return Runner(options, progress).run()
