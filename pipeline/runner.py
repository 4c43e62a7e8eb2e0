"""The order of the stages for one output folder: `hearing run` (and `render`, `demo`), the statements
`hearing watch` makes ready, and a dry run's plan. Each stage returns a frozen result; the runner keeps
what has finished (``report.Finished``) and builds the run report from it once, at the end.

The runner reports progress through a ``Progress`` object the caller gives it; it never draws anything.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Collection, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from pipeline import engines, interrupt, pace, retention, run_record, withdrawal
from pipeline.ahead import WorkAhead
from pipeline.cache import WorkCache
from pipeline.config import Form, Meeting, load_form, load_meeting
from pipeline.engines.base import Engine, ModelInfo, TranscribeSettings
from pipeline.engines.device import CPU_INT8, DeviceChoice, asked_device, for_engine
from pipeline.errors import (
    EXIT_DRAFT,
    EXIT_OK,
    EXIT_REJECTED,
    NotConforming,
    NothingDelivered,
    SubtitleProblems,
    describe,
    exit_code_for,
)
from pipeline.files import HashCache, write_json
from pipeline.meeting_facts import MeetingFacts
from pipeline.models import Rejection, Statement, StatementTranscript
from pipeline.out_folder import (
    check_disk,
    check_writable,
    default_out_dir,
    hold_lock,
    remove_partial_files,
)
from pipeline.preflight import check_meeting, check_places
from pipeline.ready import Readiness, StatementMaker, clip_numbers, readiness
from pipeline.report import (
    Finished,
    LoadedEngine,
    RunOptions,
    RunReport,
    build,
    judge_subtitles,
)
from pipeline.stages import align, archive, cut, deliver, edits, ingest, transcribe
from pipeline.stages.clip import ClipMaker, Timeline
from pipeline.stages.subtitles.rules import SubtitleRules
from pipeline.steps import NoProgress, Plan, PlannedStep, Progress, StageLog, StopsOnCtrlC

log = logging.getLogger(__name__)


class Runner:
    """Runs the stages in order for one output folder: holds its lock and writes its report.

    The stages do the work and return what they made; the runner only decides what comes next, and
    keeps what each returned in ``done``, of which the report is made when the run ends.
    """

    def __init__(
        self, options: RunOptions, progress: Progress | None = None, engine: Engine | None = None
    ) -> None:
        self.options = options
        self.progress: Progress = StopsOnCtrlC(progress or NoProgress())
        self.started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        self.out_dir = (options.out_dir or default_out_dir(options.meeting_dir)).resolve()
        self.steps = StageLog()
        self.plan = Plan()  # of a dry run
        self.done = Finished()
        self._report: RunReport | None = None
        self._ended_by: BaseException | None = None
        self._seconds = 0.0
        self._engine: Engine | None = engine  # already loaded by an earlier runner (`hearing watch`)
        # The engine and model as the cache keys name them (engine_id, model_key); set by the checks.
        self._identity: tuple[str, engines.ModelKey] = ("", engines.ModelKey("", None, None))
        self._device: DeviceChoice = CPU_INT8  # where the engine runs; set by the checks
        self.hashes: HashCache | None = None
        self.retention: retention.Retention | None = None  # the dates the archive records; set by the checks
        self.withdrawals: tuple[withdrawal.Withdrawal, ...] = ()  # OUT/withdrawn.json, read by the checks

    @property
    def report(self) -> RunReport:
        """The run's report once it has ended (also where it stopped); before, what has finished so far."""
        return self._report or self._build(EXIT_OK, None)

    @property
    def work(self) -> WorkCache:
        return WorkCache.of(self.out_dir)

    def engine(self, hearing: Sequence[int] = ()) -> Engine:
        """The engine; the first time it is loaded, set up for the statements of the lengths ``hearing``
        (``engines.load_engine``), so that a large model is built once."""
        if self._engine is None:
            from pipeline.engines import load_engine

            self.progress.begin("model", f"Indlæser talemodel ({engines.model_label(self.options.model)})")
            try:  # a stage of its own: loaded before statements heard side by side, outside theirs
                with self.steps.stage("model", None, None, cached=False):
                    self._engine = load_engine(self.options.engine, self.options.model, self._device, hearing)
            finally:
                self.progress.end("model")
            self._note_engine()
        return self._engine

    def _note_engine(self) -> None:
        """The engine run.json names: when this run loads it, or at its end where `hearing watch` did."""
        if self._engine is not None and self.done.engine is None:
            (_, key), model = self._identity, self._engine.model
            sha = model.sha256 or key.sha256
            self.done.engine = LoadedEngine(self._engine.version, model.source, model.path, sha)

    def loaded_engine(self) -> Engine | None:
        return self._engine

    # ---------------------------------------------------------------------------------------- run

    def run(self) -> RunReport:
        started = time.monotonic()
        try:
            prepared = self._prepare()
            # Not in `hearing watch`'s preparing, which reads the settings again for every file taken.
            for line in retention.passed_lines(self.retention, self.out_dir, dt.date.today()):
                log.warning("%s", line)
            if self.options.dry_run:
                self._plan(*prepared)
                # Exits as the run will for the recordings already known to be unusable.
                return self._end(EXIT_REJECTED if self.done.rejected() else EXIT_OK, None)
            with hold_lock(self.out_dir), interrupt.guard():
                return self._run_locked(prepared, started)
        except (Exception, KeyboardInterrupt) as error:
            if error is not self._ended_by:  # a stop the locked run has not recorded yet
                self._end(exit_code_for(error), error)
            raise

    def _run_locked(self, prepared: tuple[Path, Form, Meeting, str], started: float) -> RunReport:
        """The run proper, holding the lock; its report is written as run.json however it ends."""
        code, stop = EXIT_OK, None
        try:
            remove_partial_files(self.out_dir)
            code = self._run(*prepared)
        except (Exception, KeyboardInterrupt) as error:
            code, stop = exit_code_for(error), error
            raise
        finally:
            self._seconds = time.monotonic() - started
            if self.hashes:
                self.hashes.save()
            # Before the end names an engine `hearing watch` loaded: the record counts what this run loaded.
            pace.remember(self._identity, self._device, self.steps.records, self.done)
            report = self._end(code, stop)
            write_json(run_record.path_of(self.out_dir), report.to_json())
        return report

    def _end(self, exit_code: int, stop: BaseException | None) -> RunReport:
        """The report, built once from what had finished (a stopped run's says what ended it)."""
        self._ended_by = stop
        self._note_engine()
        self._report = self._build(exit_code, stop)
        return self._report

    def _build(self, exit_code: int, stop: BaseException | None) -> RunReport:
        return build(
            self.options, self.done, started=self.started, out_dir=self.out_dir, stages=self.steps.records,
            plan=self.plan, exit_code=exit_code, error=describe(stop) if stop is not None else None,
            seconds=self._seconds,
        )  # fmt: skip

    def prepare(self, taken: Collection[str]) -> Readiness:
        """For `hearing watch`: the statements of the files ``taken`` (complete so far) heard, cut and
        their segments rendered, into the cache where a run then finds them. meeting.yaml and the form
        are read again each time; nothing is archived, delivered or written to run.json."""
        meeting_dir, form, meeting, language = self._prepare()
        with hold_lock(self.out_dir):
            found = self._ingest(meeting_dir, form, meeting, language, remember=True, only=taken)
            maker = self._maker(meeting_dir, form, meeting, language, found.statements)
            with WorkAhead() as ahead:
                made = maker.ready_now(found.statements, ahead, *self._side_by_side(maker, found.statements))
        if self.hashes:
            self.hashes.save()
        pace.remember(self._identity, self._device, self.steps.records, self.done)
        return readiness(found.rejections, made, form)

    def _check_engine(self) -> None:
        """The engine and the model as far as they can be known without loading them, and the model's
        identity in the cache keys (its content digest, computed once per model file)."""
        engines.check_usable(self.options.engine, self.options.model)
        # The device asked (--device, else HEARING_DEVICE, else auto) as run.json records it for a render.
        asked = asked_device(self.options.device, os.environ)
        self.options = replace(self.options, device=asked)
        self._device = for_engine(self.options.engine, asked)
        self._identity = (
            engines.engine_id(self.options.engine, self._device),
            engines.model_key(self.options.engine, self.options.model),
        )
        origin = engines.model_origin(self.options.model)
        self._setup(
            packages=engines.engine_versions(self.options.engine), device=self._device, model_origin=origin
        )

    def _setup(self, **found: Any) -> None:
        self.done.setup = replace(self.done.setup, **found)

    def _prepare(self) -> tuple[Path, Form, Meeting, str]:
        """Everything that can be checked before anything is written; a dry run checks the same."""
        from pipeline import media

        meeting_dir = check_places(self.options.meeting_dir, self.out_dir)
        form, form_path = load_form(self.options.form)
        self._setup(form=form, form_path=form_path)
        meeting, meeting_file = load_meeting(meeting_dir)
        self._setup(meeting_file=meeting_file)
        where = form_path or self.options.form
        language, self.retention = check_meeting(
            self.options.language,
            form,
            meeting,
            meeting_file=meeting_file,
            form_where=where,
            out_dir=self.out_dir,
        )
        # A damaged record stops the run here: a withdrawn statement is never delivered again by mistake.
        self.withdrawals = withdrawal.read(self.out_dir)
        self._setup(delivery_name=deliver.delivery_stem(form, MeetingFacts.of(meeting, meeting_dir)))
        # After what the organiser wrote is known to be good, so that its mistakes are told first. The
        # model actually used from here on, and so in run.json (which `hearing render` runs again).
        model = engines.model_for_run(self.options.engine, self.options.model, form.speech.model)
        self.options = replace(self.options, model=model)
        self._check_engine()
        # Also proves that ffmpeg is there and can do the work, before any work starts.
        choice = media.ffmpeg_choice()
        self._setup(ffmpeg=choice.version, ffmpeg_choice=choice.to_json())
        # Last: a run makes the folder here, and only once every setting is known to be good.
        check_writable(self.out_dir, dry_run=self.options.dry_run)
        return meeting_dir, form, meeting, language

    # ------------------------------------------------------------------------------------- stages

    def _run(self, meeting_dir: Path, form: Form, meeting: Meeting, language: str) -> int:
        """The run: what the process exits with when everything was done."""
        found = self._ingest(meeting_dir, form, meeting, language, remember=True)
        listener = self._listener()
        self._check_disk_before_work(form, found, listener)
        # The originals are safe in the archive before anything else is made from them.
        self._archive(meeting_dir, meeting, form, found, events=())
        maker = self._maker(meeting_dir, form, meeting, language, found.statements, listener)
        self._listen(maker, found.statements)
        corrected = self._corrections(self.done.listened or (), form, leave_starting_files=True)
        made_cuts = self._cut(corrected.statements, corrected.transcripts, form)
        ordered = list(made_cuts.statements)
        timeline = maker.clip.plan(ordered, made_cuts.cuts, made_cuts.clipped)
        self.done.timeline = timeline
        self._judge_subtitles(timeline, form)
        # Also where a delivery is there already: the new one is made beside it before the swap.
        check_disk(self.out_dir, form, clip_ms=timeline.duration_ms)
        self._deliver(meeting_dir, meeting, form, language, maker.clip, made_cuts, timeline)
        withdrawn = withdrawal.events(self.withdrawals)
        self._archive(meeting_dir, meeting, form, found, events=[*self._events(ordered), *withdrawn])
        return EXIT_DRAFT if self.done.draft else EXIT_REJECTED if self.done.rejected() else EXIT_OK

    def _listen(self, maker: StatementMaker, statements: Sequence[Statement]) -> None:
        """Every statement heard (``StatementMaker.ready_all``: those heard are rendered ahead)."""
        unheard, side_by_side = self._side_by_side(maker, statements)
        ahead = WorkAhead()
        try:
            with ahead:
                for made in maker.ready_all(statements, ahead, unheard=unheard, side_by_side=side_by_side):
                    self.done.heard += (made.heard,)
                    if isinstance(made.heard.result, Rejection):
                        log.info("%s: %s", made.heard.result.relpath, made.heard.result.reason)
        finally:
            self.done.ahead_failures += tuple(ahead.failures)
        self.done.listened = tuple(
            h.statement for h in self.done.heard if not isinstance(h.result, Rejection)
        )

    def _side_by_side(self, maker: StatementMaker, statements: Sequence[Statement]) -> tuple[set[str], int]:
        """The statements still to be heard, and how many at once (the engine set up before the threads)."""
        plan = maker.listener.plan
        unheard = {s.id for s in statements if plan(maker.meeting_dir, s, maker.settings[s.id])[1] is None}
        if len(unheard) < 2 and self._engine is None:  # else set up again: it may have heard two at once
            return unheard, 1
        lengths = [s.probe.duration_ms or 0 for s in statements if s.id in unheard]
        if self._engine is None:  # loaded set up for them, in the model stage of its loading
            return unheard, engines.side_by_side(self.engine(lengths), lengths)
        with self.steps.stage("model", None, None, cached=False):  # an engine loaded before, set up again
            return unheard, engines.side_by_side(self._engine, lengths)

    def _deliver(
        self, meeting_dir: Path, meeting: Meeting, form: Form, language: str, clip: ClipMaker,
        made_cuts: cut.Cuts, timeline: Timeline,
    ) -> None:  # fmt: skip
        """Render and join the clip with the documents written alongside, then check and put the delivery
        in its place (delivery/, draft/ or failed-delivery/) and pack it."""
        corrected = self.done.corrected
        assert self.hashes is not None and corrected is not None
        contents = deliver.Contents(
            meeting=meeting,
            facts=MeetingFacts.of(meeting, meeting_dir),
            form=form,
            name=clip.name,
            language=language,
            statements=made_cuts.statements,
            transcripts=made_cuts.clipped,
            spans_ms=deliver.statement_spans(timeline.parts),
            approvals=dict(corrected.approvals),
            withdrawn=tuple(w.day for w in self.withdrawals),
        )
        with deliver.Documents(self.out_dir, contents, steps=self.steps) as documents:
            made = clip.render(timeline, self.out_dir / deliver.STAGING_DELIVERY)
            self.done.clip = made
            delivered = deliver.run(
                self.out_dir, contents, made.delivered, documents,
                steps=self.steps, timeline=made.timeline, cues=made.cues, digest=self.hashes.sha256,
            )  # fmt: skip
        self.done.delivered = delivered
        if delivered.where == "failed":
            raise NotConforming(
                f"{delivered.qc.summary()}; the files are kept for inspection in {delivered.folder}, and "
                f"{self.out_dir / deliver.DELIVERY} is unchanged"
            )
        if delivered.where == "draft":
            log.warning("%s", deliver.draft_note(delivered, len(made_cuts.statements), self.out_dir))
        if delivered.where == "delivery":
            self.done.zip_file = deliver.pack(self.out_dir, clip.name, make=self.options.zip)

    def _judge_subtitles(self, timeline: Timeline, form: Form) -> None:
        """A rule no timing can keep stops the run here, before anything is rendered."""
        self.done.judged = judge_subtitles(timeline, form)
        if self.done.judged.problems:
            raise SubtitleProblems([p["text"] for p in self.done.judged.problems])

    def _plan(self, meeting_dir: Path, form: Form, meeting: Meeting, language: str) -> None:
        """A dry run: the plan of what a run would do, from what the cache holds; nothing is written.
        What depends on a step still to be done is planned once that step has been done."""
        plan = self.plan
        found = self._ingest(meeting_dir, form, meeting, language, remember=False)
        self._check_edits(found)
        listener = self._listener()
        self._check_disk_before_work(form, found, listener)
        plan.add(PlannedStep("archive", None, None, False, tuple(r.relpath for r in found.recordings)))
        transcripts: dict[str, StatementTranscript] = {}
        for statement in found.statements:
            steps, stored = listener.plan(meeting_dir, statement, self._settings(meeting, form, statement))
            plan.add(*steps)
            if stored is not None:
                transcripts[statement.id] = stored
        kept = [s for s in found.statements if s.id in transcripts]
        self.done.listened = tuple(found.statements)
        if len(kept) < len(found.statements):
            plan.waiting.append("the cuts, cards, segments, join and delivery, once every statement is heard")
            plan.destination = deliver.DRAFT if form.require_approval else deliver.DELIVERY
            return
        corrected = self._corrections(kept, form, transcripts=transcripts, leave_starting_files=False)
        made_cuts = self._cut(corrected.statements, corrected.transcripts, form)
        plan.destination = deliver.outcome(True, form, made_cuts.statements, dict(corrected.approvals))
        clip = self._clip_maker(meeting_dir, meeting, form, language)
        timeline = clip.plan(list(made_cuts.statements), made_cuts.cuts, made_cuts.clipped)
        self._judge_subtitles(timeline, form)
        check_disk(self.out_dir, form, clip_ms=timeline.duration_ms)
        plan.add(*clip.plan_steps(timeline))
        plan.add(*deliver.plan(form, clip.name, language))

    def _ingest(
        self, meeting_dir: Path, form: Form, meeting: Meeting, language: str, *, remember: bool,
        only: Collection[str] | None = None,
    ) -> ingest.IngestResult:  # fmt: skip
        self.done.language = language
        self.hashes = self.work.hashes()
        self.progress.begin("ingest", "Finder og undersøger optagelser")
        with self.steps.stage("ingest", None, None, cached=False) as record:
            found = ingest.run(
                meeting_dir,
                meeting,
                self.done.setup.meeting_file,
                form,
                self.hashes,
                on_file=lambda relpath: log.debug("probing %s", relpath),
                probe_cache=self.work.probes if remember else None,
                only=only,
                withdrawn=withdrawal.for_ingest(self.withdrawals),
            )
            record.cached = found.all_cached
        self.progress.end("ingest")
        self.done.found = found
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
        settings = self.done.settings
        assert settings is not None
        prompt = transcribe.vocabulary_prompt(meeting, form, statement)
        self.done.prompts[statement.id] = prompt
        return replace(settings, prompt=prompt)

    def _maker(
        self, meeting_dir: Path, form: Form, meeting: Meeting, language: str, statements: Sequence[Statement],
        listener: transcribe.Listener | None = None,
    ) -> StatementMaker:  # fmt: skip
        """The one way a statement is made ready, in a run, for `hearing watch` and ahead of the plan."""
        return StatementMaker(
            meeting_dir=meeting_dir,
            edits_dir=self.out_dir / "edits",
            form=form,
            listener=listener or self._listener(),
            clip=self._clip_maker(meeting_dir, meeting, form, language),
            numbers=clip_numbers(statements, form),
            settings={s.id: self._settings(meeting, form, s) for s in statements},
        )

    def _clip_maker(self, meeting_dir: Path, meeting: Meeting, form: Form, language: str) -> ClipMaker:
        assert self.hashes is not None
        return ClipMaker(
            steps=self.steps,
            work=self.work,
            hashes=self.hashes,
            progress=self.progress,
            meeting_dir=meeting_dir,
            meeting=meeting,
            form=form,
            language=language,
            name=deliver.delivery_stem(form, MeetingFacts.of(meeting, meeting_dir)),
        )

    def _cut(
        self, kept: Sequence[Statement], transcripts: dict[str, StatementTranscript], form: Form
    ) -> cut.Cuts:
        with self.steps.stage("cut", None, None, cached=False):
            made = cut.run(kept, transcripts, form)
        self.done.cuts = made
        if not made.statements:
            rejections = self.done.rejections()
            raise NothingDelivered(
                "nothing to deliver: no recording in the meeting folder could be used"
                + (f" ({len(rejections)} left out, see above)" if rejections else "")
            )
        return made

    def _corrections(
        self, statements: Sequence[Statement], form: Form, *, leave_starting_files: bool,
        transcripts: dict[str, StatementTranscript] | None = None,
    ) -> edits.Corrected:  # fmt: skip
        """The statements as a person corrected them; a run takes the transcripts it heard."""
        if transcripts is None:
            transcripts = {
                h.statement.id: h.result for h in self.done.heard if isinstance(h.result, StatementTranscript)
            }
        corrected = edits.run(
            self.out_dir / "edits",
            statements,
            transcripts,
            SubtitleRules.from_form(form),
            leave_starting_files=leave_starting_files,
        )
        corrected = self._aligned(corrected, may_load=leave_starting_files)
        self.done.corrected = corrected
        return corrected

    def _aligned(self, corrected: edits.Corrected, *, may_load: bool) -> edits.Corrected:
        """The words people added, timed where the engine hears them (a dry run only from the cache)."""
        assert self.hashes is not None
        listener = self._listener()
        aligner = align.Aligner(
            self.work,
            self.hashes,
            self.engine if may_load else None,
            (self._identity[0], self._identity[1].id),
            self.steps,
        )
        transcripts = dict(corrected.transcripts)
        for statement in corrected.statements:
            if statement.id in corrected.edited and statement.id in transcripts:
                transcripts[statement.id] = aligner.aligned(
                    transcripts[statement.id], listener.speech_audio(statement), statement.probe.duration_ms
                )
        return replace(corrected, transcripts=transcripts)

    def _archive(
        self,
        meeting_dir: Path,
        meeting: Meeting,
        form: Form,
        found: ingest.IngestResult,
        events: Sequence[archive.Event],
    ) -> None:
        """Bag the recordings as received; later calls add the run's events to the same bag."""
        setup = self.done.setup
        taken_out = withdrawal.from_archive(self.withdrawals)
        withheld = (
            archive.withheld_from_archive(meeting, form, [r.relpath for r in found.recordings]) | taken_out
        )
        engine, model = self._engine_identity()
        facts = MeetingFacts.of(meeting, meeting_dir)
        info = archive.meeting_info(
            facts, ffmpeg_version=setup.ffmpeg, engine=engine, model=model, model_origin=setup.model_origin,
            retention=self.retention,
        )  # fmt: skip
        with self.steps.stage("archive", None, None, cached=False) as record:
            self.progress.begin("archive", "Arkiverer optagelserne")
            try:
                result = archive.build_archive(
                    self.out_dir, meeting_dir, found.recordings, found.probes, withheld, setup.meeting_file,
                    info, events, unusable={r.relpath: r.reason for r in self.done.rejected()},
                    on_progress=lambda f: self.progress.update("archive", f), taken_out=tuple(taken_out),
                )  # fmt: skip
            finally:
                self.progress.end("archive")
            record.cached = result.action == "reused"
        self.done.archive = result

    def _engine_identity(self) -> tuple[archive.Software, ModelInfo]:
        version, model = engines.identity(
            self.options.engine, self.options.model, self._engine, self._identity[1]
        )
        return archive.Software(self.options.engine, version, role="speech engine"), model

    def _events(self, statements: list[Statement]) -> list[archive.Event]:
        """Provenance of what this run made from the recordings: each transcription and the clip."""
        engine, model = self._engine_identity()
        done = self.done
        assert done.settings is not None
        seeds = done.seeds()
        # The device and compute type too: the words differ between int8 on the CPU and float16 on a GPU.
        base = {**done.settings.to_json(), **self._device._asdict()}
        settings = {
            s.id: {**base, "prompt": done.prompts.get(s.id), "seed": seeds.get(s.id)} for s in statements
        }
        name = done.setup.delivery_name
        clip = None
        # A draft is not a derivation anyone receives: its clip enters the provenance once delivered.
        if name and not done.draft:
            path = self.out_dir / deliver.DELIVERY / f"{name}.mp4"
            clip = (
                path.relative_to(self.out_dir).as_posix(),
                self.hashes.sha256(path) if self.hashes else None,
            )
        return archive.derivation_events(
            statements,
            done.transcript_files(self.out_dir),
            engine,
            archive.model_software(model, done.setup.model_origin),
            settings,
            self.steps.records,
            clip,
            archive.Software("ffmpeg", done.setup.ffmpeg or "unknown"),
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
        """Before copying: room for the archive and the speech audio (the clip's once its length is known)."""
        check_disk(
            self.out_dir,
            form,
            speech_ms=listener.pending_speech_ms(list(found.statements)),
            archive_bytes=0 if (self.out_dir / "archive").exists() else sum(r.size for r in found.recordings),
        )


def run(options: RunOptions, progress: Progress | None = None, engine: Engine | None = None) -> RunReport:
    return Runner(options, progress, engine).run()
