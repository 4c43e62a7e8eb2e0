"""The clip's plan (pure): its parts and every cue in them on one timeline, the cuts that run on so that
their last subtitle can be read, and what the subtitles would break that no timing can keep.

``plan_timeline_cues`` is the one plan the render, the review page and the check's judgement share.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from pipeline.config import Form
from pipeline.models import Statement, StatementTranscript
from pipeline.stages import cards
from pipeline.stages.cut import Cut, Part, plan_timeline
from pipeline.stages.subtitles.cues import StatementCues, card_cue, statement_cues
from pipeline.stages.subtitles.rules import Cue, SubtitleRules


@dataclass(frozen=True)
class Timeline:
    parts: tuple[Part, ...]
    title: cards.Card | None
    statement_cards: dict[str, cards.Card]  # by statement id; also the picture of audio-only statements
    statements: dict[str, Statement]
    cuts: dict[str, Cut]
    cues: tuple[Cue, ...]
    # By statement id: its cues with what the page and the check ask about them (who timed them, why a
    # person's times were moved, where their words are spoken).
    fitted: dict[str, StatementCues] = field(default_factory=dict)

    @property
    def duration_ms(self) -> int:
        return self.parts[-1].end_ms if self.parts else 0

    def cue_context(self) -> tuple[list[tuple[int, int] | None], list[tuple[int, int]]]:
        """For each cue, where its words are spoken (None for a card's caption) and the part of the clip
        it is in: what ``timing.judge`` needs to judge them as the check will."""
        speech: list[tuple[int, int] | None] = []
        windows: list[tuple[int, int]] = []
        seen: dict[str, int] = {}
        for cue in self.cues:
            kind = "statement" if cue.kind == "speech" else "card"
            part = next(
                (p for p in self.parts if p.statement_id == cue.statement_id and p.kind == kind),
                None,
            )
            windows.append((part.start_ms, part.end_ms) if part else (0, self.duration_ms))
            fitted = self.fitted.get(cue.statement_id or "") if cue.kind == "speech" else None
            if fitted is None:
                speech.append(None)
                continue
            k = seen.get(cue.statement_id or "", 0)
            seen[cue.statement_id or ""] = k + 1
            speech.append(fitted.speech[k] if k < len(fitted.speech) else None)
        return speech, windows


@dataclass(frozen=True)
class Problem:
    """A subtitle rule the delivery would break that no timing can keep: the render stops on it."""

    statement_id: str
    cue: int | None  # the person's cue (0-based, as in the statement's subtitles), None: the statement
    rule: str
    text: str  # one Danish sentence: statement, cue, rule, and what to do

    def to_json(self) -> dict[str, Any]:
        return {"statement": self.statement_id, "cue": self.cue, "rule": self.rule, "text": self.text}


def statement_number(timeline: Timeline, statement_id: str) -> int:
    ids = [p.statement_id for p in timeline.parts if p.kind == "statement"]
    return ids.index(statement_id) + 1 if statement_id in ids else 0


def problems(timeline: Timeline, rules: SubtitleRules, first_number: int = 1) -> list[Problem]:
    """What the subtitles of ``timeline`` would break that no timing can keep, one Danish sentence each:
    cues the window cannot give their shortest time on screen, and any rule ``timing.judge`` calls a
    failure (the check of the delivery asks the same)."""
    from pipeline import texts
    from pipeline.stages import timing

    found: list[Problem] = []

    def label(statement_id: str) -> str:
        statement = timeline.statements[statement_id]
        return texts.statement_label(
            statement_number(timeline, statement_id) + first_number - 1, statement.speaker
        )

    for sid, fitted in timeline.fitted.items():
        if not fitted.short:
            continue
        part = next(p for p in timeline.parts if p.kind == "statement" and p.statement_id == sid)
        first, last = min(fitted.short), max(fitted.short)
        source = [s if s is not None else k for k, s in enumerate(fitted.sources)]
        shown = list(fitted.texts)
        found.append(
            Problem(
                sid,
                source[first] if first < len(source) else None,
                "subtitles.min_duration",
                texts.too_crowded(
                    label(sid),
                    source[first] if first < len(source) else first,
                    source[last] if last < len(source) else last,
                    (shown[first] if first < len(shown) else "", shown[last] if last < len(shown) else ""),
                    part.duration_ms,
                    rules,
                ),
            )
        )
    crowded = {p.statement_id for p in found}
    speech, windows = timeline.cue_context()
    seen: dict[str, int] = {}
    index_of: list[int | None] = []
    for cue in timeline.cues:
        if cue.kind != "speech" or cue.statement_id is None:
            index_of.append(None)
            continue
        k = seen.get(cue.statement_id, 0)
        seen[cue.statement_id] = k + 1
        sources = timeline.fitted[cue.statement_id].sources if cue.statement_id in timeline.fitted else ()
        index_of.append(sources[k] if k < len(sources) and sources[k] is not None else k)
    for found_break in timing.judge(
        timeline.cues, rules, timeline.duration_ms, speech=speech, windows=windows
    ):
        if found_break.severity != "fail":
            continue
        cue = timeline.cues[found_break.cue - 1]
        sid = cue.statement_id or ""
        if sid in crowded or sid not in timeline.statements:
            continue
        index = index_of[found_break.cue - 1]
        found.append(
            Problem(
                sid,
                index,
                found_break.rule,
                texts.rule_problem(
                    label(sid),
                    texts.cue_label(index if index is not None else 0, cue.text),
                    found_break,
                    rules,
                ),
            )
        )
    return found


def plan_timeline_cues(
    statements: list[Statement],
    cuts: dict[str, Cut],
    clipped: dict[str, StatementTranscript],
    form: Form,
    *,
    title: cards.Card | None,
    first_number: int = 1,
) -> Timeline:
    """The clip's parts and every cue in them (pure): the one plan the render, the page and the check's
    judgement share. Cuts whose last subtitle cannot be read in time run on, and the plan is made again."""
    rules = SubtitleRules.from_form(form)
    timeline = _plan_once(statements, cuts, clipped, form, rules, title, first_number)
    longer = reading_run_on(timeline, rules, form)
    if longer:
        timeline = _plan_once(statements, {**cuts, **longer}, clipped, form, rules, title, first_number)
    return timeline


def _plan_once(
    statements: list[Statement],
    cuts: dict[str, Cut],
    clipped: dict[str, StatementTranscript],
    form: Form,
    rules: SubtitleRules,
    title: cards.Card | None,
    first_number: int,
) -> Timeline:
    statement_cards = {
        s.id: cards.statement_picture(s, n, form) for n, s in enumerate(statements, start=first_number)
    }
    parts = plan_timeline(statements, cuts, form, title=title is not None)
    cues: list[Cue] = []
    fitted: dict[str, StatementCues] = {}
    for part in parts:
        window = (part.start_ms, part.end_ms)
        if part.kind == "card" and part.statement_id:
            caption = statement_cards[part.statement_id].caption
            cue = card_cue(caption, window, rules, part.statement_id) if caption else None
            if cue is not None:
                cues.append(cue)
        elif part.kind == "statement" and part.statement_id:
            made = statement_cues(clipped[part.statement_id], part.start_ms, window, rules, part.statement_id)
            fitted[part.statement_id] = made
            cues.extend(made.cues)
    return Timeline(
        parts=parts,
        title=title,
        statement_cards=statement_cards,
        statements={s.id: s for s in statements},
        cuts=cuts,
        cues=tuple(cues),
        fitted=fitted,
    )


def reading_run_on(timeline: Timeline, rules: SubtitleRules, form: Form) -> dict[str, Cut]:
    """Cuts that run on past the end of their statement so that its last subtitle, squeezed against
    the next part, gets its reading time: at most the cue's minimum duration or the form's silence-trim
    padding, whichever is longer (the picture holds and the sound is padded there)."""
    longest = max(rules.min_duration_ms, round(form.clip.silence_trim.padding * 1000))
    longer: dict[str, Cut] = {}
    for part in timeline.parts:
        if part.kind != "statement" or part.statement_id is None:
            continue
        own = [c for c in timeline.cues if c.statement_id == part.statement_id and c.kind == "speech"]
        if not own:
            continue
        last = own[-1]
        need = rules.needed_ms(last.chars)
        squeezed = last.end_ms >= part.end_ms - rules.min_gap_ms - rules.frame_ms
        if not squeezed or last.duration_ms >= need:
            continue
        # Two frames more: the part is rounded to whole frames, and the cue keeps its gap to the end.
        extra = min(need - last.duration_ms + 2 * rules.frame_ms, longest)
        cut = timeline.cuts[part.statement_id]
        # Never past the agreed length of a statement: a cut already at the limit does not run on.
        room = round(form.clip.max_statement * 1000) - (cut.out_ms - cut.in_ms) - rules.frame_ms
        extra = min(extra, room)
        if extra <= 0:
            continue
        longer[part.statement_id] = replace(
            cut,
            out_ms=cut.out_ms + extra,
            notes=(
                *cut.notes,
                f"runs on {extra / 1000:.2f} s after its last word so that the last subtitle can be read",
            ),
        )
    return longer


def describe(timeline: Timeline) -> list[dict[str, Any]]:
    """The timeline as run.json records it."""
    return [
        {
            "kind": p.kind,
            "statement": p.statement_id,
            "start_ms": p.start_ms,
            "duration_ms": p.duration_ms,
            "frames": p.frames,
        }
        for p in timeline.parts
    ]
