"""Cut: where each statement starts and ends in the clip, in which order, and the clip's timeline.

Pure: in and out points from the word timestamps (never inside a word), the form's length rules, the
order, and the timeline of cards and statements in whole frames. ``run`` only logs its notes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from pipeline.config import Form
from pipeline.models import Rejection, Segment, Statement, StatementTranscript, Word

log = logging.getLogger(__name__)

VERSION = 1


@dataclass(frozen=True)
class Cut:
    """The part of a recording that goes into the clip (recording time, ms)."""

    statement_id: str
    in_ms: int
    out_ms: int
    how: str  # "speech" (silence trimmed), "manual" (meeting.yaml trim), "whole"
    notes: tuple[str, ...] = ()  # what a person should know: shortened, over length, moved off a word

    @property
    def duration_ms(self) -> int:
        return self.out_ms - self.in_ms


@dataclass(frozen=True)
class Part:
    """One piece of the clip's timeline, in whole frames."""

    kind: str  # "title", "card" or "statement"
    statement_id: str | None
    start_frame: int
    frames: int
    fps: float

    # Times come from whole frames counted from the clip's start, so rounding never adds up.
    @property
    def start_ms(self) -> int:
        return frames_to_ms(self.start_frame, self.fps)

    @property
    def end_ms(self) -> int:
        return frames_to_ms(self.start_frame + self.frames, self.fps)

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms


def frames_to_ms(frames: int, fps: float) -> int:
    return round(frames * 1000 / fps)


def ms_to_frames(ms: int, fps: float) -> int:
    return max(1, round(ms * fps / 1000))


def _inside_word(words: tuple[Word, ...], ms: int) -> Word | None:
    return next((w for w in words if w.start_ms < ms < w.end_ms), None)


def _cut_at_word_boundary(words: tuple[Word, ...], in_ms: int, limit_ms: int, padding_ms: int) -> int:
    """The latest out point at or before ``limit_ms`` that ends after a whole word: in the pause after
    the last word that fits, padded but never into the next word."""
    out = None
    for index, word in enumerate(words):
        if word.end_ms > limit_ms:
            break
        if word.start_ms < in_ms:
            continue
        following = words[index + 1].start_ms if index + 1 < len(words) else None
        end = word.end_ms + padding_ms
        if following is not None:
            end = min(end, (word.end_ms + following) // 2)
        out = min(end, limit_ms)
    return out if out is not None else limit_ms


def plan_cut(
    statement: Statement, transcript: StatementTranscript, form: Form, media_ms: int | None = None
) -> Cut | Rejection:
    """In and out points of one statement, or why it cannot be in the clip (``over_length: reject``)."""
    words = transcript.words
    end = media_ms if media_ms is not None else statement.probe.duration_ms
    padding = round(form.clip.silence_trim.padding * 1000)
    notes: list[str] = []
    if form.clip.silence_trim.enabled and words:
        in_ms, out_ms, how = (
            max(0, words[0].start_ms - padding),
            min(end, words[-1].end_ms + padding),
            "speech",
        )
    else:
        in_ms, out_ms, how = 0, end, "whole"
    if statement.trim_ms is not None:
        # A point set by hand replaces the one the speech gives; the other stays where the speech is.
        set_in, set_out = statement.trim_ms
        how = "manual"
        if set_in is not None:
            in_ms = min(set_in, end)
            # A hand-set point inside a word would cut the word in half: move it to the word's edge.
            inside = _inside_word(words, in_ms)
            if inside:
                in_ms = inside.start_ms
                notes.append(f"trim start moved to {in_ms / 1000:.2f} s so no word is cut")
        if set_out is not None:
            out_ms = min(set_out, end)
            inside = _inside_word(words, out_ms)
            if inside:
                out_ms = min(inside.end_ms, end)
                notes.append(f"trim end moved to {out_ms / 1000:.2f} s so no word is cut")
    if out_ms <= in_ms:
        return Rejection(
            statement.recording.relpath, "nothing left after trimming (check trim in meeting.yaml)"
        )

    limit = round(form.clip.max_statement * 1000)
    if out_ms - in_ms > limit:
        length = f"{(out_ms - in_ms) / 1000:.1f} s is longer than the agreed {form.clip.max_statement:g} s"
        if form.clip.over_length == "reject":
            return Rejection(statement.recording.relpath, f"too long: {length} (form: over_length reject)")
        if form.clip.over_length == "trim":
            kept = tuple(w for w in words if w.start_ms >= in_ms)
            out_ms = _cut_at_word_boundary(kept, in_ms, in_ms + limit, padding)
            notes.append(f"shortened: {length}; cut after the last whole word at {out_ms / 1000:.1f} s")
        else:
            notes.append(f"over length: {length} (form: over_length warn)")
    return Cut(statement.id, in_ms, out_ms, how, tuple(notes))


def words_in_cut(transcript: StatementTranscript, cut: Cut) -> StatementTranscript:
    """The transcript of what the clip keeps, timed from the cut's in point.

    A word is kept when its middle lies inside the cut; segments lose the words outside and their text
    is rebuilt from the words that remain, so subtitles and transcript say the same thing.
    """
    segments: list[Segment] = []
    for segment in transcript.segments:
        kept = tuple(
            replace(
                w,
                start_ms=max(w.start_ms, cut.in_ms) - cut.in_ms,
                end_ms=min(w.end_ms, cut.out_ms) - cut.in_ms,
            )
            for w in segment.words
            if cut.in_ms <= (w.start_ms + w.end_ms) // 2 < cut.out_ms
        )
        if not kept:
            continue
        text = segment.text if len(kept) == len(segment.words) else "".join(w.text for w in kept)
        shown = segment.shown
        if shown is not None and shown.start_ms is not None and shown.end_ms is not None:
            shown = replace(shown, start_ms=shown.start_ms - cut.in_ms, end_ms=shown.end_ms - cut.in_ms)
        segments.append(
            replace(
                segment,
                start_ms=max(segment.start_ms, cut.in_ms) - cut.in_ms,
                end_ms=min(segment.end_ms, cut.out_ms) - cut.in_ms,
                text=text,
                words=kept,
                shown=shown,
            )
        )
    return replace(transcript, segments=tuple(segments))


def order_statements(statements: list[Statement], form: Form) -> list[Statement]:
    """The clip order the form asks for; ties keep meeting.yaml's order."""
    if form.clip.order == "file":
        from pipeline.stages.ingest import natural_key

        return sorted(statements, key=lambda s: natural_key(s.recording.relpath))
    if form.clip.order == "topic":
        first_seen: dict[str, int] = {}
        for index, statement in enumerate(statements):
            first_seen.setdefault((statement.topic or "").casefold(), index)
        # Statements without a topic come last, still in meeting order.
        return sorted(
            statements,
            key=lambda s: (not s.topic, first_seen[(s.topic or "").casefold()]),
        )
    return list(statements)


def plan_timeline(
    statements: list[Statement],
    cuts: dict[str, Cut],
    form: Form,
    *,
    title: bool,
) -> tuple[Part, ...]:
    """Title card, then for each statement its card (``has_card_before``) and the statement itself, in
    whole frames."""
    fps = form.video.fps
    parts: list[Part] = []

    def add(kind: str, statement_id: str | None, ms: int) -> None:
        start = parts[-1].start_frame + parts[-1].frames if parts else 0
        parts.append(Part(kind, statement_id, start, ms_to_frames(ms, fps), fps))

    if title and form.clip.title_card.enabled:
        add("title", None, _card_ms(form, "title"))
    for statement in statements:
        if has_card_before(statement, form):
            add("card", statement.id, _card_ms(form, "card"))
        add("statement", statement.id, cuts[statement.id].duration_ms)
    return tuple(parts)


def has_card_before(statement: Statement, form: Form) -> bool:
    """Every statement is announced by its card where the form shows cards. A sound recording's card is
    also its picture throughout, even where the form shows no cards; it comes before it all the same,
    since that is where the caption of a card that names the speaker is (``card_cue``): a sound-only
    statement would otherwise name its speaker on screen and never in the subtitles."""
    return form.clip.statement_cards.enabled or statement.sound_only


def _card_ms(form: Form, kind: str) -> int:
    card = form.clip.title_card if kind == "title" else form.clip.statement_cards
    return round(card.seconds * 1000)


def cards_of(statement: Statement, form: Form, *, title: bool) -> tuple[Part, ...]:
    """The title card and the card before ``statement``, as long as ``plan_timeline`` makes them: a
    card's segment depends on its length, never on where it is, so it can be made before the cut."""
    fps = form.video.fps
    kinds: list[tuple[str, str | None]] = [("title", None)] if title and form.clip.title_card.enabled else []
    if has_card_before(statement, form):
        kinds.append(("card", statement.id))
    return tuple(Part(k, i, 0, ms_to_frames(_card_ms(form, k), fps), fps) for k, i in kinds)


@dataclass(frozen=True)
class Cuts:
    """The statements in the clip's order, each with its in and out points and the words inside them;
    the statements that cannot be cut, with the reason."""

    statements: tuple[Statement, ...]
    cuts: dict[str, Cut]
    clipped: dict[str, StatementTranscript]
    rejections: tuple[Rejection, ...]


def run(statements: Sequence[Statement], transcripts: Mapping[str, StatementTranscript], form: Form) -> Cuts:
    cuts: dict[str, Cut] = {}
    clipped: dict[str, StatementTranscript] = {}
    rejections: list[Rejection] = []
    ordered = order_statements(list(statements), form)
    for statement in ordered:
        planned = plan_cut(statement, transcripts[statement.id], form)
        if isinstance(planned, Rejection):
            rejections.append(planned)
            continue
        for note in planned.notes:
            log.warning("%s: %s", statement.recording.relpath, note)
        cuts[statement.id] = planned
        clipped[statement.id] = words_in_cut(transcripts[statement.id], planned)
    kept = tuple(s for s in ordered if s.id in cuts)
    return Cuts(kept, cuts, clipped, tuple(rejections))
