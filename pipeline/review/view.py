"""A statement as the page shows it: its recording (``ReviewStatement``), the notes and blocking
problems the render would find in a person's cues (``statement_view``, the render's own plan and
judgement), and the words a person should look at (``flagged_words``). Pure."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config import Form
from pipeline.models import Statement, StatementTranscript
from pipeline.stages import edits
from pipeline.stages.subtitles.cues import StatementCues
from pipeline.stages.subtitles.rules import Cue, SubtitleRules


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


def cue_json(cue: Cue) -> dict[str, Any]:
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
