"""The order of the stages, the content-addressed cache under ``OUT/work`` and the run report.

The runner reports progress through a ``Progress`` object the caller gives it; it never draws anything.
"""

from __future__ import annotations

import datetime as dt
import logging
import platform
import shutil
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pipeline import __version__, engines, interrupt, run_record, steps, texts
from pipeline.cache import WORK, WorkCache
from pipeline.config import Form, Meeting, load_form, load_meeting
from pipeline.engines.base import Engine, ModelInfo, TranscribeSettings
from pipeline.errors import (
    EXIT_DRAFT,
    EXIT_OK,
    EXIT_REJECTED,
    Busy,
    ConfigError,
    DiskFull,
    NotConforming,
    NothingDelivered,
    SubtitleProblems,
    UsageError,
    describe,
    exit_code_for,
)
from pipeline.files import (
    HashCache,
    folder_title,
    not_utf8,
    recover_folder,
    sha256_file,
    shown_name,
    write_json,
)
from pipeline.models import Approval, Rejection, Statement, StatementTranscript
from pipeline.stages import align, archive, cut, deliver, edits, ingest, transcribe
from pipeline.stages.clip import ClipMaker, Timeline
from pipeline.stages.clip import problems as clip_problems
from pipeline.stages.subtitles.rules import SubtitleRules
from pipeline.steps import NoProgress, Plan, PlannedStep, Progress, StageLog, StageRecord, StopsOnCtrlC

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOptions:
    meeting_dir: Path
    out_dir: Path | None = None
    form: str = "default"
    engine: str = "faster-whisper"
    model: str | None = None
    language: str | None = None
    dry_run: bool = False
    zip: bool = False  # also pack the delivery into OUT/<name>.zip


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
    versions: dict[str, str] = field(default_factory=dict)  # statement id -> version of its edit files
    subtitle_breaks: list[dict[str, Any]] = field(default_factory=list)  # the judge's, as the check's
    problems: list[dict[str, Any]] = field(default_factory=list)  # what stopped the render, in Danish
    plan: Plan = field(default_factory=Plan)  # of a dry run
    zip_file: Path | None = None  # the delivery packed for sending

    @property
    def rejected(self) -> list[Rejection]:
        return [r for r in self.rejections if r.kind == "rejected"]

    @property
    def withheld(self) -> list[Rejection]:
        return [r for r in self.rejections if r.kind == "withheld"]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": run_record.KIND,
            "version": run_record.VERSION,
            "tool": {"name": "hearing-pipeline", "version": __version__, "python": platform.python_version()},
            "ffmpeg": self.ffmpeg_choice or {"version": self.ffmpeg},
            "started": self.started,
            "seconds": round(self.seconds, 3),
            "dry_run": self.options.dry_run,
            **({"plan": self.plan.to_json()} if self.options.dry_run else {}),
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
                    "approved": (a.to_json() if (a := self.approvals.get(s.id)) and a.valid else None),
                    # An approval that no longer holds: what changed was never approved.
                    "approval_void": (
                        {**a.to_json(), "note": texts.changed_after_approval(a.by, a.at)}
                        if (a := self.approvals.get(s.id)) and not a.valid
                        else None
                    ),
                    "edits_version": self.versions.get(s.id),
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
            "problems": self.problems,
            "subtitles": {
                "cues": len(self.cues),
                "breaks": self.subtitle_breaks,
                "warnings": [
                    {"start_ms": c.start_ms, "text": c.text, "warnings": list(c.warnings)}
                    for c in self.cues
                    if c.warnings
                ],
            },
            "delivery": {
                "name": self.delivery_name,
                "files": self.delivered,
                "zip": str(self.zip_file) if self.zip_file else None,
            },
            "archive": self.archive,
            "qc": self.qc,
            "exit_code": self.exit_code,
            "error": self.error,
        }


# ------------------------------------------------------------------------------------------ pure core


def default_out_dir(meeting_dir: Path) -> Path:
    resolved = meeting_dir.resolve()
    return resolved.parent / f"{resolved.name}-output"


# What a run writes in the output folder (docs/design.md): folders, and files a folder must not stand for.
OUT_FOLDERS = (
    WORK, "edits", "archive",
    deliver.DELIVERY, deliver.DRAFT, deliver.FAILED_DELIVERY, deliver.PARTICIPANTS,
)  # fmt: skip
OUT_FILES = (run_record.RUN_JSON, ".hearing.lock")


def nearest_existing(path: Path) -> Path:
    """``path``, or the nearest folder above it that exists: where it would be made."""
    while not (path.exists() or path.is_symlink()) and path.parent != path:
        path = path.parent
    return path


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


def remove_partial_files(out_dir: Path) -> None:
    """Half-written files and deliveries of a run that was killed; only a run holding the lock may remove
    them. A run stopped in the middle of replacing ``delivery/`` gets its previous delivery back."""
    if recover_folder(out_dir / deliver.DELIVERY, list(out_dir.glob(f"{deliver.ASIDE_PREFIX}*"))):
        log.info("put the previous delivery back in place (a run was stopped while replacing it)")
    recover_folder(out_dir / deliver.DRAFT, list(out_dir.glob(f"{deliver.DRAFT_ASIDE_PREFIX}*")))
    recover_folder(out_dir / deliver.FAILED_DELIVERY, list(out_dir.glob(f"{deliver.FAILED_ASIDE_PREFIX}*")))
    shutil.rmtree(out_dir / deliver.STAGING_DELIVERY, ignore_errors=True)
    for partial in out_dir.rglob(".*.part"):
        if partial.is_file():
            partial.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------------ I/O


@dataclass(frozen=True)
class Readiness:
    """What `hearing watch` has made ready so far."""

    ready: tuple[str, ...]  # recordings whose statement is heard, cut and rendered
    rejections: tuple[Rejection, ...]
    clip_ms: int  # the clip as long as it would be with these statements
    max_clip_ms: int  # the form's maximum


def clip_numbers(statements: Sequence[Statement], form: Form) -> dict[str, int]:
    """Each statement's number in the clip (its card says "Indlæg N"), as far as they are known now:
    what is made ahead of the plan is made as that number."""
    return {s.id: n for n, s in enumerate(cut.order_statements(list(statements), form), start=1)}


class WorkAhead:
    """Work done ahead of the plan on one background thread, at a lower priority than the engine's.

    It only ever fills the cache: whatever it does not finish, or gets wrong, the run does in its turn,
    so a failure here is logged at debug level and otherwise ignored. Its log lines come again when the
    run gets to the same step, so they are shown only with -vv. Leaving the block waits for it.
    """

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._pending: list[Future[None]] = []
        self._quiet = _QuietAhead()

    def __enter__(self) -> WorkAhead:
        for handler in logging.getLogger("pipeline").handlers:
            handler.addFilter(self._quiet)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
        finally:
            for handler in logging.getLogger("pipeline").handlers:
                handler.removeFilter(self._quiet)

    def submit(self, work: Callable[..., object], *args: Any) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ahead")
        self._pending = [f for f in self._pending if not f.done()]
        self._pending.append(self._pool.submit(self._do, work, *args))

    def wait(self) -> None:
        """Until what was submitted is done, so that nothing is made twice at the same time."""
        futures.wait(self._pending)
        self._pending = []

    @staticmethod
    def _do(work: Callable[..., object], *args: Any) -> None:
        from pipeline import media

        with steps.working_ahead(), media.lower_priority():
            try:
                work(*args)
            except KeyboardInterrupt:
                pass  # the run itself stops at its next check
            except Exception as error:
                log.debug("work done ahead stopped (%s); the run does it in its turn", error)


class _QuietAhead(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not steps.is_ahead() or record.levelno >= logging.ERROR or log.isEnabledFor(logging.DEBUG)


class Runner:
    """Runs the stages in order for one output folder: holds its lock and writes its report.

    The stages do the work and return what they made; the runner only decides what comes next, and
    records it.
    """

    def __init__(
        self, options: RunOptions, progress: Progress | None = None, engine: Engine | None = None
    ) -> None:
        self.options = options
        self.progress: Progress = StopsOnCtrlC(progress or NoProgress())
        self.report = RunReport(
            options=options,
            started=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            out_dir=(options.out_dir or default_out_dir(options.meeting_dir)).resolve(),
        )
        # The report's list of stages is the log's: both name the same records.
        self.steps = StageLog(self.report.stages)
        self._engine: Engine | None = engine  # already loaded by an earlier runner (`hearing watch`)
        # The engine and model as the cache keys name them (engine_id, model_key); set by the checks.
        self._identity: tuple[str, engines.ModelKey] = ("", engines.ModelKey("", None, None))
        self.hashes: HashCache | None = None
        self.transcript_files: dict[str, str] = {}  # statement id -> its transcript, relative to OUT

    @property
    def out_dir(self) -> Path:
        return self.report.out_dir

    @property
    def work(self) -> WorkCache:
        return WorkCache.of(self.out_dir)

    def engine(self) -> Engine:
        if self._engine is None:
            from pipeline.engines import load_engine

            self.progress.begin("model", f"Indlæser talemodel ({engines.model_label(self.options.model)})")
            try:
                self._engine = load_engine(self.options.engine, self.options.model)
            finally:
                self.progress.end("model")
            _, key = self._identity
            self.report.engine_info |= {
                "version": self._engine.version,
                "model_source": self._engine.model.source,
                "model_path": self._engine.model.path,
                "model_sha256": self._engine.model.sha256 or key.sha256,
            }
        return self._engine

    # ---------------------------------------------------------------------------------------- run

    def run(self) -> RunReport:
        started = time.monotonic()
        try:
            prepared = self._prepare()
            if self.options.dry_run:
                self._plan(*prepared)
                # Exits as the run will for the recordings already known to be unusable.
                self.report.exit_code = EXIT_REJECTED if self.report.rejected else EXIT_OK
                return self.report
            with hold_lock(self.out_dir), interrupt.guard():
                try:
                    remove_partial_files(self.out_dir)
                    self._run(*prepared)
                except (Exception, KeyboardInterrupt) as error:
                    self._stopped(error)
                    raise
                finally:
                    self.report.seconds = time.monotonic() - started
                    if self.hashes:
                        self.hashes.save()
                    write_json(run_record.path_of(self.out_dir), self.report.to_json())
        except (Exception, KeyboardInterrupt) as error:
            self._stopped(error)
            raise
        return self.report

    def _stopped(self, error: BaseException) -> None:
        """The report of a run that stopped says what the process exits with, whatever stopped it."""
        self.report.exit_code = exit_code_for(error)
        self.report.error = describe(error)

    def prepare(self, taken: Collection[str]) -> Readiness:
        """For `hearing watch`: the statements of the files ``taken`` (complete so far) heard, cut and
        their segments rendered, into the cache where a run then finds them. meeting.yaml and the form
        are read again each time; nothing is archived, delivered or written to run.json."""
        meeting_dir, form, meeting, language = self._prepare()
        with hold_lock(self.out_dir):
            found = self._ingest(meeting_dir, form, meeting, language, remember=True, only=taken)
            listener = self._listener()
            clip = self._clip_maker(meeting_dir, meeting, form, language)
            statements = list(found.statements)
            numbers = clip_numbers(statements, form)
            rejections = list(found.rejections)
            ready: dict[str, tuple[Statement, cut.Cut]] = {}
            with WorkAhead() as ahead:
                for statement in statements:
                    ahead.submit(clip.prepare, statement, numbers[statement.id])
                    heard = listener.listen(meeting_dir, statement, self._settings(meeting, form, statement))
                    ahead.wait()
                    if isinstance(heard.result, Rejection):
                        rejections.append(heard.result)
                        continue
                    number = numbers[statement.id]
                    made = self._render_ahead(clip, form, heard.statement, heard.result, number)
                    rejections += made.rejections
                    ready |= {s.id: (s, made.cuts[s.id]) for s in made.statements}
        if self.hashes:
            self.hashes.save()
        kept = [s for s, _ in ready.values()]
        parts = cut.plan_timeline(kept, {k: c for k, (_, c) in ready.items()}, form, title=True)
        return Readiness(
            ready=tuple(s.recording.relpath for s in kept),
            rejections=tuple(rejections),
            clip_ms=sum(p.duration_ms for p in parts) if kept else 0,
            max_clip_ms=round(form.clip.max_duration * 1000),
        )

    def loaded_engine(self) -> Engine | None:
        return self._engine

    def _check_places(self) -> Path:
        meeting_dir = self.options.meeting_dir.resolve()
        for what, path in (("the meeting folder", meeting_dir), ("--out", self.out_dir)):
            # Every record, manifest and ffmpeg command names these paths as UTF-8 text. (A recording
            # whose own name is not UTF-8 is rejected alone; these carry every statement.)
            if not_utf8(str(path)):
                raise UsageError(f"{what} {shown_name(str(path))}: its name is not valid UTF-8: rename it")
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
        known = engines.known_languages()
        allowed = "a language code Whisper knows (da, en, de, sv, no, ...)"
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
        """The engine and the model as far as they can be known without loading them, and the model's
        identity in the cache keys (its content digest, computed once per model file)."""
        engines.check_usable(self.options.engine, self.options.model)
        self._identity = (
            engines.engine_id(self.options.engine),
            engines.model_key(self.options.engine, self.options.model),
        )
        self.report.engine_info["packages"] = engines.engine_versions(self.options.engine)

    def _check_out_dir(self) -> None:
        """The output folder can be made and written, and nothing is in the way of what the run writes
        there, before any work: a read-only or misplaced folder is one line naming it, not a failure
        half-way. A dry run only looks; a run makes the folder and writes a test file in it."""
        import os
        import tempfile

        out = self.out_dir
        existing = nearest_existing(out)
        if not existing.is_dir():
            raise UsageError(
                f"the output folder {out} cannot be made: {existing} is "
                f"{'a file' if existing.is_file() else 'not a folder'}; choose another with --out"
            )
        in_the_way = [
            out / name for name in OUT_FOLDERS if (out / name).exists() and not (out / name).is_dir()
        ] + [out / name for name in OUT_FILES if (out / name).is_dir()]
        if in_the_way:
            what = "a folder" if in_the_way[0].is_dir() else "a file"
            raise UsageError(
                f"the output folder {out} holds {what} where the run writes: {in_the_way[0]}; move it "
                "away, or choose another output folder with --out"
            )
        places = [existing, *(out / name for name in OUT_FOLDERS if (out / name).is_dir())]
        for place in places:
            if not os.access(place, os.W_OK | os.X_OK):
                raise UsageError(
                    f"the output folder {out} cannot be written ({place} is read-only for this user); "
                    "choose another with --out"
                )
        if self.options.dry_run:
            return
        try:
            out.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=out, prefix=".hearing-write-test-"):
                pass
        except OSError as error:
            reason = error.strerror or type(error).__name__
            raise UsageError(
                f"the output folder {out} cannot be written ({reason}); choose another with --out"
            ) from None

    def _prepare(self) -> tuple[Path, Form, Meeting, str]:
        """Everything that can be checked before anything is written; a dry run checks the same."""
        from pipeline import media

        meeting_dir = self._check_places()
        self._check_engine()
        form, self.report.form_path = load_form(self.options.form)
        self.report.form = form
        meeting, self.report.meeting_file = load_meeting(meeting_dir)
        language = self._check_language(form, meeting)
        self.report.delivery_name = deliver.delivery_name(form, meeting, folder_title(meeting_dir))
        # Also proves that ffmpeg is there and can do the work, before any work starts.
        choice = media.ffmpeg_choice()
        self.report.ffmpeg = choice.version
        self.report.ffmpeg_choice = choice.to_json()
        # Last: a run makes the folder here, and only once every setting is known to be good.
        self._check_out_dir()
        return meeting_dir, form, meeting, language

    # ------------------------------------------------------------------------------------- stages

    def _ingest(
        self, meeting_dir: Path, form: Form, meeting: Meeting, language: str, *, remember: bool,
        only: Collection[str] | None = None,
    ) -> ingest.IngestResult:  # fmt: skip
        report = self.report
        report.language = language
        report.settings = TranscribeSettings(language=language)
        self.hashes = self.work.hashes()
        self.progress.begin("ingest", "Finder og undersøger optagelser")
        with self.steps.stage("ingest", None, None, cached=False) as record:
            found = ingest.run(
                meeting_dir,
                meeting,
                report.meeting_file,
                form,
                self.hashes,
                on_file=lambda relpath: log.debug("probing %s", relpath),
                probe_cache=self.work.probes if remember else None,
                only=only,
            )
            record.cached = found.all_cached
        self.progress.end("ingest")
        report.recordings = [
            {"file": r.relpath, "size": r.size, "sha256": r.sha256} for r in found.recordings
        ]
        report.rejections = list(found.rejections)
        for rejection in found.rejections:
            log.info("%s: %s", rejection.relpath, rejection.reason)
        return found

    def _listener(self) -> transcribe.Listener:
        assert self.hashes is not None
        return transcribe.Listener(
            steps=self.steps,
            work=self.work,
            hashes=self.hashes,
            progress=self.progress,
            engine=transcribe.EngineChoice(
                self._identity[0],
                self._identity[1].id,
                engines.model_label(self.options.model),
                self.engine,
            ),
        )

    def _settings(self, meeting: Meeting, form: Form, statement: Statement) -> TranscribeSettings:
        assert self.report.settings is not None
        prompt = transcribe.vocabulary_prompt(meeting, form, statement)
        self.report.prompts[statement.id] = prompt
        return replace(self.report.settings, prompt=prompt)

    def _clip_maker(self, meeting_dir: Path, meeting: Meeting, form: Form, language: str) -> ClipMaker:
        assert self.hashes is not None
        name = deliver.delivery_name(form, meeting, folder_title(meeting_dir))
        self.report.delivery_name = name
        return ClipMaker(
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

    def _cut(
        self, kept: Sequence[Statement], transcripts: dict[str, StatementTranscript], form: Form
    ) -> cut.Cuts:
        with self.steps.stage("cut", None, None, cached=False):
            made = cut.run(kept, transcripts, form)
        report = self.report
        report.rejections += made.rejections
        report.statements = list(made.statements)
        report.cuts = made.cuts
        if not made.statements:
            raise NothingDelivered(
                "nothing to deliver: no recording in the meeting folder could be used"
                + (f" ({len(report.rejections)} left out, see above)" if report.rejections else "")
            )
        return made

    def _corrections(
        self, statements: Sequence[Statement], transcripts: dict[str, StatementTranscript], form: Form, *,
        leave_starting_files: bool,
    ) -> edits.Corrected:  # fmt: skip
        corrected = edits.run(
            self.out_dir / "edits",
            statements,
            transcripts,
            SubtitleRules.from_form(form),
            leave_starting_files=leave_starting_files,
        )
        corrected = self._aligned(corrected, may_load=leave_starting_files)
        self.report.statements = list(corrected.statements)
        self.report.edited = list(corrected.edited)
        self.report.approvals = dict(corrected.approvals)
        self.report.versions = dict(corrected.versions)
        return corrected

    def _aligned(self, corrected: edits.Corrected, *, may_load: bool) -> edits.Corrected:
        """The words people added timed where the engine hears them (``stages.align``); a dry run only
        uses what is in the cache."""
        assert self.hashes is not None
        listener = self._listener()
        aligner = align.Aligner(
            self.work,
            self.hashes,
            self.engine if may_load else None,
            (self._identity[0], self._identity[1].id),
        )
        transcripts = dict(corrected.transcripts)
        for statement in corrected.statements:
            if statement.id in corrected.edited and statement.id in transcripts:
                transcripts[statement.id] = aligner.aligned(
                    transcripts[statement.id], listener.speech_audio(statement), statement.probe.duration_ms
                )
        return replace(corrected, transcripts=transcripts)

    def _judge_subtitles(self, timeline: Timeline, form: Form) -> None:
        """The subtitles judged as the check will judge the delivery, before anything is rendered: a rule
        no timing can keep stops the run here, one Danish sentence a problem; the rest are warnings."""
        from pipeline.stages import timing

        rules = SubtitleRules.from_form(form)
        speech, windows = timeline.cue_context()
        breaks = timing.judge(timeline.cues, rules, timeline.duration_ms, speech=speech, windows=windows)
        self.report.subtitle_breaks = [
            {
                "rule": b.rule,
                "severity": b.severity,
                "statement": timeline.cues[b.cue - 1].statement_id,
                "cue": b.cue,
                "detail": b.detail,
            }
            for b in breaks
        ]
        for b in breaks:
            if b.severity == "warn" and b.rule == "subtitles.gap":
                log.warning("subtitles: %s", b.detail)
        found = clip_problems(timeline, rules)
        self.report.problems = [p.to_json() for p in found]
        if found:
            raise SubtitleProblems([p.text for p in found])

    def _run(self, meeting_dir: Path, form: Form, meeting: Meeting, language: str) -> None:
        report = self.report
        found = self._ingest(meeting_dir, form, meeting, language, remember=True)
        listener = self._listener()
        self._check_disk_before_work(form, found, listener)
        # The originals are safe in the archive before anything else is made from them.
        self._archive(meeting_dir, meeting, form, found, events=())

        clip = self._clip_maker(meeting_dir, meeting, form, language)
        statements = list(found.statements)
        settings = {s.id: self._settings(meeting, form, s) for s in statements}
        # While the engine listens to a statement, the one before it is measured and rendered on what
        # the engine leaves of the cores; only worth it while some statement still needs the engine.
        unheard = {s.id for s in statements if listener.plan(meeting_dir, s, settings[s.id])[1] is None}
        numbers = clip_numbers(statements, form)
        transcripts: dict[str, StatementTranscript] = {}
        kept: list[Statement] = []
        with WorkAhead() as ahead:
            for index, statement in enumerate(statements):
                if statement.id in unheard:
                    ahead.submit(clip.prepare, statement, numbers[statement.id])
                heard = listener.listen(meeting_dir, statement, settings[statement.id])
                self._record_heard(heard)
                if isinstance(heard.result, Rejection):
                    report.rejections.append(heard.result)
                    log.info("%s: %s", heard.result.relpath, heard.result.reason)
                    continue
                transcripts[heard.statement.id] = heard.result
                kept.append(heard.statement)
                if any(later.id in unheard for later in statements[index + 1 :]):
                    ahead.submit(
                        self._render_ahead, clip, form, heard.statement, heard.result, numbers[statement.id]
                    )
        report.statements = kept

        corrected = self._corrections(kept, transcripts, form, leave_starting_files=True)
        made_cuts = self._cut(corrected.statements, corrected.transcripts, form)
        ordered = list(made_cuts.statements)
        timeline = clip.plan(ordered, made_cuts.cuts, made_cuts.clipped)
        report.cuts = dict(timeline.cuts)
        self._judge_subtitles(timeline, form)
        # Also where a delivery is there already: the new one is made beside it before the swap.
        self._check_disk(form, clip_ms=timeline.duration_ms)
        staging = self.out_dir / deliver.STAGING_DELIVERY
        starts = {
            p.statement_id: p.start_ms for p in timeline.parts if p.kind == "statement" and p.statement_id
        }
        documents = deliver.Documents(
            self.out_dir,
            steps=self.steps,
            meeting=meeting,
            meeting_name=folder_title(meeting_dir),
            form=form,
            name=clip.name,
            statements=ordered,
            transcripts=made_cuts.clipped,
            language=language,
            starts_ms=starts,
            approvals=report.approvals,
        )
        try:
            made = clip.render(timeline, staging)
        except BaseException:
            documents.close()
            raise
        report.cues = list(made.cues)
        report.timeline = made.timeline
        assert self.hashes is not None
        delivered = deliver.run(
            self.out_dir,
            made.delivered,
            documents,
            steps=self.steps,
            timeline=report.timeline,
            cues=made.cues,
            digest=self.hashes.sha256,
        )
        report.delivered = list(delivered.files)
        report.qc = delivered.qc_summary()
        if delivered.where == "failed":
            raise NotConforming(
                f"{delivered.qc.summary()}; the files are kept for inspection in {delivered.folder}, and "
                f"{self.out_dir / deliver.DELIVERY} is unchanged"
            )
        if delivered.where == "draft":
            report.draft = True
            log.warning(
                "a draft is in %s: %d of %d statements are not approved yet (%s); read and approve them "
                "with `hearing review %s` or in %s (approved: true, approved_by), then run "
                "`hearing render %s`",
                delivered.folder,
                len(delivered.unapproved),
                len(ordered),
                ", ".join(s.recording.relpath for s in delivered.unapproved),
                self.out_dir,
                self.out_dir / "edits",
                self.out_dir,
            )
        if delivered.where == "delivery":
            report.zip_file = deliver.pack(self.out_dir, clip.name, make=self.options.zip)
        self._archive(meeting_dir, meeting, form, found, events=self._events(ordered))
        report.exit_code = EXIT_DRAFT if report.draft else EXIT_REJECTED if report.rejected else EXIT_OK

    def _plan(self, meeting_dir: Path, form: Form, meeting: Meeting, language: str) -> None:
        """A dry run: the plan of what a run would do, from what the cache holds; nothing is written.
        What depends on a step still to be done is planned once that step has been done."""
        plan = self.report.plan
        found = self._ingest(meeting_dir, form, meeting, language, remember=False)
        self._check_edits(found)
        listener = self._listener()
        self._check_disk_before_work(form, found, listener)
        plan.add(PlannedStep("archive", None, None, False, tuple(r.relpath for r in found.recordings)))
        transcripts: dict[str, StatementTranscript] = {}
        for statement in found.statements:
            settings = self._settings(meeting, form, statement)
            steps, stored = listener.plan(meeting_dir, statement, settings)
            plan.add(*steps)
            if stored is not None:
                transcripts[statement.id] = stored
        kept = [s for s in found.statements if s.id in transcripts]
        self.report.statements = list(found.statements)
        if len(kept) < len(found.statements):
            plan.waiting.append("the cuts, cards, segments, join and delivery, once every statement is heard")
            return
        corrected = self._corrections(kept, transcripts, form, leave_starting_files=False)
        made_cuts = self._cut(corrected.statements, corrected.transcripts, form)
        clip = self._clip_maker(meeting_dir, meeting, form, language)
        timeline = clip.plan(list(made_cuts.statements), made_cuts.cuts, made_cuts.clipped)
        self._judge_subtitles(timeline, form)
        self._check_disk(form, clip_ms=timeline.duration_ms)
        plan.add(*clip.plan_steps(timeline))
        plan.add(*deliver.plan(form, clip.name, language))

    def _render_ahead(
        self, clip: ClipMaker, form: Form, statement: Statement, transcript: StatementTranscript, number: int
    ) -> cut.Cuts:
        """One statement's segments from its own corrections and cut, as the render will ask for them."""
        corrected = edits.run(
            self.out_dir / "edits",
            [statement],
            {statement.id: transcript},
            SubtitleRules.from_form(form),
            leave_starting_files=False,
        )
        made = cut.run(corrected.statements, corrected.transcripts, form)
        for kept in made.statements:
            clip.render_ahead(kept, made.cuts[kept.id], made.clipped[kept.id], number)
        return made

    def _record_heard(self, heard: transcribe.Heard) -> None:
        statement = heard.statement
        if heard.transcript_file is not None:
            self.transcript_files[statement.id] = heard.transcript_file.relative_to(self.out_dir).as_posix()
        if isinstance(heard.result, StatementTranscript):
            self.report.seeds[statement.id] = heard.result.seed
            if heard.no_text:
                self.report.no_text.append(statement.id)

    def _archive(
        self,
        meeting_dir: Path,
        meeting: Meeting,
        form: Form,
        found: ingest.IngestResult,
        events: Sequence[archive.Event],
    ) -> None:
        """Bag the recordings as received; later calls add the run's events to the same bag."""
        withheld = archive.withheld_from_archive(meeting, form, [r.relpath for r in found.recordings])
        engine, model = self._engine_identity()
        info = archive.archive_info(
            meeting, folder_title(meeting_dir), ffmpeg_version=self.report.ffmpeg, engine=engine, model=model
        )
        with self.steps.stage("archive", None, None, cached=False) as record:
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
        version, model = engines.identity(
            self.options.engine, self.options.model, self._engine, self._identity[1]
        )
        return archive.Software(self.options.engine, version, role="speech engine"), model

    def _events(self, statements: list[Statement]) -> list[archive.Event]:
        """Provenance of what this run made from the recordings: each transcription and the clip."""
        engine, model = self._engine_identity()
        assert self.report.settings is not None
        base = self.report.settings.to_json()
        settings = {
            s.id: {**base, "prompt": self.report.prompts.get(s.id), "seed": self.report.seeds.get(s.id)}
            for s in statements
        }
        name = self.report.delivery_name
        clip = None
        # A draft is not a derivation anyone receives: its clip enters the provenance once delivered.
        if name and not self.report.draft:
            path = self.out_dir / deliver.DELIVERY / f"{name}.mp4"
            clip = (
                path.relative_to(self.out_dir).as_posix(),
                self.hashes.sha256(path) if self.hashes else None,
            )
        return archive.derivation_events(
            statements,
            self.transcript_files,
            engine,
            archive.model_software(model),
            settings,
            self.report.stages,
            clip,
            archive.Software("ffmpeg", self.report.ffmpeg or "unknown"),
        )

    def _check_edits(self, found: ingest.IngestResult) -> None:
        """A dry run reads a person's corrections (without applying them) also where the statements are
        not heard yet, so that it refuses every edits file the run will refuse (exit 3). The run reads
        them once its statements are heard (``_corrections``): the review page finds in its run.json
        what was heard when an edits file stopped it."""
        folder = self.out_dir / "edits"
        if folder.is_dir():
            for statement in found.statements:
                edits.read(folder, statement)

    def _check_disk_before_work(
        self, form: Form, found: ingest.IngestResult, listener: transcribe.Listener
    ) -> None:
        """Before copying: room for the archive and the speech audio. The clip is checked once its
        length is known."""
        self._check_disk(
            form,
            speech_ms=listener.pending_speech_ms(list(found.statements)),
            archive_bytes=0 if (self.out_dir / "archive").exists() else sum(r.size for r in found.recordings),
        )

    def _check_disk(
        self, form: Form, *, speech_ms: int = 0, clip_ms: int = 0, archive_bytes: int = 0
    ) -> None:
        """Refuse to start work that cannot finish for lack of space, naming both numbers. A dry run
        asks the same of the folder the output folder would be made in."""
        need = estimate_need(form, speech_ms=speech_ms, clip_ms=clip_ms, archive_bytes=archive_bytes)
        free = shutil.disk_usage(nearest_existing(self.out_dir)).free
        log.info("disk: about %d bytes needed, %d free", need, free)
        if need > free:
            raise DiskFull(str(self.out_dir), need, free)


def options_of_earlier_run(out_dir: Path, *, dry_run: bool = False) -> RunOptions:
    """The options `hearing run` was given for ``out_dir`` (from its run.json), for `hearing render`."""
    report = run_record.read_in(out_dir)
    given = report.get("options") if report else None
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


def run(options: RunOptions, progress: Progress | None = None, engine: Engine | None = None) -> RunReport:
    return Runner(options, progress, engine).run()
