"""The run report: the options a run was given, what each stage that finished returned (with the
subtitles' judgement before rendering), and ``RunReport`` (what run.json records and ``--json``
prints), built once from them when the run ends, however it ends; the options read back from run.json."""

from __future__ import annotations

import logging
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline import __version__, run_record, texts
from pipeline.engines.base import TranscribeSettings
from pipeline.engines.device import DeviceChoice
from pipeline.errors import UsageError
from pipeline.files import sha256_file
from pipeline.models import Approval, Rejection, Statement, StatementTranscript
from pipeline.steps import Plan, StageRecord

if TYPE_CHECKING:
    from pipeline.ahead import Failure
    from pipeline.config import Form
    from pipeline.stages import cut, edits, ingest, transcribe
    from pipeline.stages.archive import ArchiveResult
    from pipeline.stages.clip import ClipResult, Timeline
    from pipeline.stages.deliver import Delivered

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOptions:
    meeting_dir: Path
    out_dir: Path | None = None
    form: str = "default"
    engine: str = "faster-whisper"
    model: str | None = None
    language: str | None = None
    # auto, cpu or cuda (``engines.device``); None: the HEARING_DEVICE setting, else auto. A run records
    # what it resolved this to, so that a render asks the same.
    device: str | None = None
    dry_run: bool = False
    zip: bool = False  # also pack the delivery into OUT/<name>.zip


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
        # None: the engine's default, base, which the run used whatever its form now asks for.
        model=given.get("model") or "base",
        language=given.get("language"),
        # Absent from a record older than the choice: the setting, else auto (the CPU where no GPU is).
        device=given.get("device") if given.get("device") in ("auto", "cpu", "cuda") else None,
        dry_run=dry_run,
    )


@dataclass(frozen=True)
class Setup:
    """What the checks before any work found out, as far as they got."""

    form: Form | None = None
    form_path: Path | None = None
    meeting_file: Path | None = None
    delivery_name: str | None = None
    ffmpeg: str | None = None
    ffmpeg_choice: dict[str, Any] | None = None
    packages: dict[str, Any] | None = None  # the engine's package versions
    device: DeviceChoice | None = None  # where the engine runs, and in which compute type
    model_origin: dict[str, Any] | None = None  # a stored model's manifest facts (engines.model_origin)


@dataclass(frozen=True)
class LoadedEngine:
    """The engine this run loaded, as its model was found."""

    version: str | None
    model_source: str | None
    model_path: str | None
    model_sha256: str | None


@dataclass(frozen=True)
class Judged:
    """The subtitles judged before rendering (``Runner._judge_subtitles``), as the check judges them."""

    breaks: tuple[dict[str, Any], ...]
    problems: tuple[dict[str, Any], ...]  # what stops the render, in Danish


def judge_subtitles(timeline: Timeline, form: Form) -> Judged:
    """The subtitles judged as the check will judge the delivery, before anything is rendered: what no
    timing can keep is a problem (one Danish sentence each); the rest are warnings."""
    from pipeline.stages import timing
    from pipeline.stages.clip import problems
    from pipeline.stages.subtitles.rules import SubtitleRules

    rules = SubtitleRules.from_form(form)
    speech, windows = timeline.cue_context()
    breaks = timing.judge(timeline.cues, rules, timeline.duration_ms, speech=speech, windows=windows)
    for b in breaks:
        if b.severity == "warn" and b.rule == "subtitles.gap":
            log.warning("subtitles: %s", b.detail)
    return Judged(
        breaks=tuple(
            {
                "rule": b.rule,
                "severity": b.severity,
                "statement": timeline.cues[b.cue - 1].statement_id,
                "cue": b.cue,
                "detail": b.detail,
            }
            for b in breaks
        ),
        problems=tuple(p.to_json() for p in problems(timeline, rules)),
    )


@dataclass
class Finished:
    """The results of the stages that have finished, in the order a run gets them: each one is frozen
    and set once it is complete, so a run that stops reports exactly what had finished."""

    setup: Setup = Setup()
    engine: LoadedEngine | None = None
    language: str | None = None
    prompts: dict[str, str | None] = field(default_factory=dict)  # statement id -> vocabulary prompt
    found: ingest.IngestResult | None = None
    heard: tuple[transcribe.Heard, ...] = ()  # in the order they were heard
    listened: tuple[Statement, ...] | None = None  # the statements once every one is heard
    corrected: edits.Corrected | None = None
    cuts: cut.Cuts | None = None
    timeline: Timeline | None = None
    judged: Judged | None = None
    clip: ClipResult | None = None
    delivered: Delivered | None = None
    zip_file: Path | None = None
    archive: ArchiveResult | None = None
    ahead_failures: tuple[Failure, ...] = ()

    @property
    def settings(self) -> TranscribeSettings | None:
        return TranscribeSettings(language=self.language) if self.language is not None else None

    @property
    def draft(self) -> bool:
        return self.delivered is not None and self.delivered.where == "draft"

    def rejections(self) -> list[Rejection]:
        found = list(self.found.rejections) if self.found else []
        heard = [h.result for h in self.heard if isinstance(h.result, Rejection)]
        return found + heard + (list(self.cuts.rejections) if self.cuts else [])

    def rejected(self) -> list[Rejection]:
        return [r for r in self.rejections() if r.kind == "rejected"]

    def statements(self) -> list[Statement]:
        """The statements as far as the run got: cut, else corrected, else heard."""
        if self.cuts is not None:
            return list(self.cuts.statements)
        if self.corrected is not None:
            return list(self.corrected.statements)
        return list(self.listened or ())

    def seeds(self) -> dict[str, int | None]:
        return {
            h.statement.id: h.result.seed for h in self.heard if isinstance(h.result, StatementTranscript)
        }

    def transcript_files(self, out_dir: Path) -> dict[str, str]:
        """Statement id -> its stored transcript, relative to the output folder."""
        return {
            h.statement.id: h.transcript_file.relative_to(out_dir).as_posix()
            for h in self.heard
            if h.transcript_file is not None
        }


@dataclass(frozen=True)
class RunReport:
    """Everything run.json records; also what ``--json`` prints. Made by ``build`` only."""

    options: RunOptions
    started: str
    out_dir: Path
    form: Form | None = None
    form_path: Path | None = None
    meeting_file: Path | None = None
    language: str | None = None
    settings: TranscribeSettings | None = None
    recordings: tuple[dict[str, Any], ...] = ()
    statements: tuple[Statement, ...] = ()
    rejections: tuple[Rejection, ...] = ()
    stages: tuple[StageRecord, ...] = ()
    engine_info: dict[str, Any] = field(default_factory=dict)
    delivery_name: str | None = None
    cuts: dict[str, Any] = field(default_factory=dict)
    cues: tuple[Any, ...] = ()
    timeline: tuple[dict[str, Any], ...] = ()
    archive: dict[str, Any] | None = None
    qc: dict[str, Any] | None = None
    delivered: tuple[str, ...] = ()
    exit_code: int = 0
    error: str | None = None
    seconds: float = 0.0
    ffmpeg: str | None = None
    ffmpeg_choice: dict[str, Any] | None = None
    seeds: dict[str, int | None] = field(default_factory=dict)  # statement id -> the engine's seed
    prompts: dict[str, str | None] = field(default_factory=dict)  # statement id -> vocabulary prompt
    no_text: tuple[str, ...] = ()  # statements with speech but no recognised words
    edited: tuple[str, ...] = ()  # statements whose text a person corrected
    draft: bool = False  # the delivery waits in draft/ for approvals
    approvals: dict[str, Approval | None] = field(default_factory=dict)  # statement id -> who approved
    versions: dict[str, str] = field(default_factory=dict)  # statement id -> version of its edit files
    subtitle_breaks: tuple[dict[str, Any], ...] = ()  # the judge's, as the check's
    problems: tuple[dict[str, Any], ...] = ()  # what stopped the render, in Danish
    plan: Plan = field(default_factory=Plan)  # of a dry run
    zip_file: Path | None = None  # the delivery packed for sending
    ahead_failures: tuple[Failure, ...] = ()  # work done ahead that stopped (the run did it itself)

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
            # As given (the model as the form's choice resolved it), so that `hearing render` can run the
            # same again with the corrections.
            "options": {
                "meeting_dir": str(self.options.meeting_dir.resolve()),
                "form": str(self.form_path) if self.form_path else self.options.form,
                "engine": self.options.engine,
                "model": self.options.model,
                "language": self.options.language,
                "device": self.options.device,
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
            "recordings": list(self.recordings),
            "statements": [self._statement_json(s) for s in self.statements],
            "rejected": [{"file": r.relpath, "reason": r.reason} for r in self.rejected],
            "withheld": [{"file": r.relpath, "reason": r.reason} for r in self.withheld],
            "stages": [s.to_json() for s in self.stages],
            "cuts": {
                sid: {"in_ms": c.in_ms, "out_ms": c.out_ms, "how": c.how, "notes": list(c.notes)}
                for sid, c in self.cuts.items()
            },
            "timeline": list(self.timeline),
            "problems": list(self.problems),
            "subtitles": {
                "cues": len(self.cues),
                "breaks": list(self.subtitle_breaks),
                "warnings": [
                    {"start_ms": c.start_ms, "text": c.text, "warnings": list(c.warnings)}
                    for c in self.cues
                    if c.warnings
                ],
            },
            "delivery": {
                "name": self.delivery_name,
                "files": list(self.delivered),
                "zip": str(self.zip_file) if self.zip_file else None,
            },
            "archive": self.archive,
            "qc": self.qc,
            "exit_code": self.exit_code,
            "error": self.error,
            # Only where some work done ahead stopped: a run where nothing failed records what it did.
            **({"ahead_failures": [f.to_json() for f in self.ahead_failures]} if self.ahead_failures else {}),
        }

    def _statement_json(self, s: Statement) -> dict[str, Any]:
        approval = self.approvals.get(s.id)
        return {
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
            "approved": approval.to_json() if approval and approval.valid else None,
            # An approval that no longer holds: what changed was never approved.
            "approval_void": (
                {**approval.to_json(), "note": texts.changed_after_approval(approval.by, approval.at)}
                if approval and not approval.valid
                else None
            ),
            "edits_version": self.versions.get(s.id),
        }


def build(
    options: RunOptions,
    done: Finished,
    *,
    started: str,
    out_dir: Path,
    stages: list[StageRecord],
    plan: Plan,
    exit_code: int,
    error: str | None = None,
    seconds: float = 0.0,
) -> RunReport:
    """The report of a run from what its stages returned: the one place run.json's content is put
    together, for a run that delivered and for one that stopped (its ``exit_code`` and ``error``)."""
    setup, found, corrected, delivered = done.setup, done.found, done.corrected, done.delivered
    engine = done.engine
    return RunReport(
        options=options,
        started=started,
        out_dir=out_dir,
        form=setup.form,
        form_path=setup.form_path,
        meeting_file=setup.meeting_file,
        language=done.language,
        settings=done.settings,
        recordings=tuple(
            {"file": r.relpath, "size": r.size, "sha256": r.sha256}
            for r in (found.recordings if found else ())
        ),
        statements=tuple(done.statements()),
        rejections=tuple(done.rejections()),
        stages=tuple(stages),
        engine_info={
            **({"packages": setup.packages} if setup.packages is not None else {}),
            **(vars(engine) if engine else {}),
            **(setup.device._asdict() if setup.device is not None else {}),
            **({"model_origin": setup.model_origin} if setup.model_origin is not None else {}),
        },
        delivery_name=setup.delivery_name,
        cuts=dict(done.timeline.cuts if done.timeline else done.cuts.cuts if done.cuts else {}),
        cues=done.clip.cues if done.clip else (),
        timeline=tuple(done.clip.timeline) if done.clip else (),
        archive=done.archive.to_json() if done.archive else None,
        qc=delivered.qc_summary() if delivered else None,
        delivered=delivered.files if delivered else (),
        exit_code=exit_code,
        error=error,
        seconds=seconds,
        ffmpeg=setup.ffmpeg,
        ffmpeg_choice=setup.ffmpeg_choice,
        seeds=done.seeds(),
        prompts=dict(done.prompts),
        no_text=tuple(h.statement.id for h in done.heard if h.no_text),
        edited=corrected.edited if corrected else (),
        draft=done.draft,
        approvals=dict(corrected.approvals) if corrected else {},
        versions=dict(corrected.versions) if corrected else {},
        subtitle_breaks=done.judged.breaks if done.judged else (),
        problems=done.judged.problems if done.judged else (),
        plan=plan,
        zip_file=done.zip_file,
        ahead_failures=done.ahead_failures,
    )
