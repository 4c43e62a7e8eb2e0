"""Cues: a statement's words grouped into cues, timed in the clip, and the caption of a card.

The pure core works in integer milliseconds of the clip:

- ``build_statement_cues`` groups one statement's words into cues and breaks their lines (the cues a
  person starts from, over the whole recording);
- ``statement_cues`` makes a statement's cues in the clip from its cues as the transcript holds them
  (the pipeline's or a person's), keeps a person's lines where the form allows them, and times them in
  the statement's window with the one timing model, ``pipeline.stages.timing.fit``;
- ``card_cue`` captions a card that names the speaker on screen only (WCAG 1.2.5);
- ``validate`` lists every rule a list of cues breaks, one readable line each.

Lines are broken in ``pipeline.stages.subtitles.layout``; the rules are
``pipeline.stages.subtitles.rules``; how a cue is timed and a rule break judged is
``pipeline.stages.timing``.

Decisions where the standards are silent:

- A word longer than a line gets a cue of its own and is split hard; the cue carries a warning.
- Whisper sometimes writes punctuation as a word of its own; it is joined to the word before it.
- A window too short to show every cue one after the other (at least one frame each) makes neighbouring
  cues of the pipeline's share one cue, with a warning; no word is ever dropped. A person's cues are
  never joined: they are told instead.
- A person's lines are kept as typed where they fit the form's lines; otherwise their words are broken
  into lines by the form's rules, and a cue with more words than the form's lines hold is shown as
  several cues one after the other, in its own time.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.models import Segment, StatementTranscript, Word
from pipeline.stages import timing
from pipeline.stages.subtitles.layout import (
    COST_FORBIDDEN_BETWEEN_CUES,
    COST_PAUSE,
    GLUE_CHARS,
    SENTENCE_END,
    Layout,
    Unit,
    break_cost,
    ends_with,
    lay_out,
    units_fit,
    units_of,
)
from pipeline.stages.subtitles.rules import Cue, SubtitleRules, clean_text, rule_titles

# What a cue costs when grouping words: fewer, fuller cues flicker less; a sentence should end a cue; a cue
# that cannot stay up long enough to be read costs by the second it lacks.
COST_CUE = 5.0
COST_SENTENCE_INSIDE = 8.0
COST_SHORT_PER_SECOND = 30.0
SHORT_PAUSE_MS = 250  # a pause this long is a good place to end a cue


# ------------------------------------------------------------------------------------ grouping words


@dataclass(frozen=True)
class _Token:
    """One spoken word as shown (punctuation Whisper wrote apart joined back), with its time."""

    text: str
    start_ms: int
    end_ms: int
    units: tuple[Unit, ...]


def shown_words(words: Sequence[Word]) -> list[Word]:
    """The words as the subtitles show them: the text cleaned (no doubled spaces, "..." as "…"),
    punctuation Whisper wrote as a word of its own joined to the word before it (its doubt too), and
    never starting before the word before them (the engines promise it; the timing relies on it)."""
    shown: list[Word] = []
    floor = None
    for word in words:
        text = clean_text(word.text)
        if not text:
            continue
        start = word.start_ms if floor is None else max(word.start_ms, floor)
        end = max(word.end_ms, start)
        floor = start
        if shown and set(text) <= GLUE_CHARS:
            last = shown[-1]
            shown[-1] = Word(
                last.start_ms,
                max(last.end_ms, end),
                last.text + text,
                min(last.probability, word.probability),
                tuple(dict.fromkeys((*last.flags, *word.flags))),
            )
            continue
        shown.append(Word(start, end, f" {text}", word.probability, word.flags))
    return shown


def _tokens(words: Sequence[Word]) -> list[_Token]:
    return [_Token(w.text[1:], w.start_ms, w.end_ms, tuple(units_of(w.text[1:]))) for w in shown_words(words)]


@dataclass(frozen=True)
class _Draft:
    """A cue before timing: its words, lines and the speech it covers."""

    tokens: tuple[_Token, ...]
    layout: Layout

    @property
    def speech_start(self) -> int:
        return self.tokens[0].start_ms

    @property
    def speech_end(self) -> int:
        return max(t.end_ms for t in self.tokens)

    @property
    def chars(self) -> int:
        return sum(len(line) for line in self.layout.lines)


def _group(tokens: Sequence[_Token], window: tuple[int, int], rules: SubtitleRules) -> list[_Draft]:
    """Split the words into cues: the cheapest sequence of cues by a shortest path over the breaks.

    A cue must fit its lines and ``max_duration`` and may not span a long pause. Its cost rewards
    breaking at sentence ends, punctuation, pauses and before conjunctions, and punishes cues too short to
    read (a cue that cannot get the time its text needs) and sentence ends inside a cue.
    """
    n = len(tokens)
    w0 = window[0]
    gap, last_end = rules.min_gap_ms, window[1] - rules.min_gap_ms
    pause_before = [0] + [tokens[k].start_ms - tokens[k - 1].end_ms for k in range(1, n)]
    forced = [False] + [pause_before[k] >= rules.pause_ms for k in range(1, n)]

    def boundary(k: int) -> float:
        """The cost of ending a cue between token k-1 and token k."""
        if forced[k]:
            return 0.0
        cost = break_cost(tokens[k - 1].units[-1], tokens[k].units[0])
        cost = min(cost, COST_FORBIDDEN_BETWEEN_CUES)
        if pause_before[k] >= SHORT_PAUSE_MS:
            cost = min(cost, COST_PAUSE)
        return cost

    def cue_cost(i: int, j: int, layout: Layout) -> float:
        chars = sum(len(line) for line in layout.lines)
        need = rules.needed_ms(chars)
        end_limit = min(
            tokens[j].start_ms - gap if j < n else last_end, tokens[j - 1].end_ms + rules.max_shift_ms
        )
        free_before = tokens[i].start_ms - (tokens[i - 1].end_ms + rules.hang_ms if i else w0)
        start_limit = tokens[i].start_ms - min(max(free_before, 0), rules.max_shift_ms)
        short_s = max(0, need - (end_limit - start_limit)) / 1000
        inner_sentence_ends = sum(ends_with(tokens[k].text, SENTENCE_END) for k in range(i, j - 1))
        return (
            COST_CUE
            + layout.cost
            + COST_SENTENCE_INSIDE * inner_sentence_ends
            + COST_SHORT_PER_SECOND * short_s
        )

    best: list[float] = [0.0] + [math.inf] * n
    back = [0] * (n + 1)
    layouts: dict[tuple[int, int], Layout] = {}
    for j in range(1, n + 1):
        end_cost = boundary(j) if j < n else 0.0
        units: list[Unit] = []
        speech_end = 0
        for i in range(j - 1, -1, -1):
            units[:0] = tokens[i].units
            speech_end = max(speech_end, tokens[i].end_ms)
            if i < j - 1 and (
                forced[i + 1]
                or speech_end - tokens[i].start_ms > rules.max_duration_ms
                or not units_fit(units, rules.max_lines, rules.max_chars_per_line)
            ):
                break  # a longer cue would break the same rule
            layout = lay_out(units, rules.max_lines, rules.max_chars_per_line)
            layouts[i, j] = layout
            cost = best[i] + cue_cost(i, j, layout) + end_cost
            if cost < best[j]:
                best[j], back[j] = cost, i
    drafts: list[_Draft] = []
    j = n
    while j > 0:
        i = back[j]
        drafts.append(_Draft(tuple(tokens[i:j]), layouts[i, j]))
        j = i
    drafts.reverse()
    return drafts


# ------------------------------------------------------------------------------------ a statement's cues


def _layout_warnings(layout: Layout, rules: SubtitleRules) -> list[str]:
    out = []
    if layout.hard_split:
        longest = max(len(u) for line in layout.lines for u in line.split(" "))
        out.append(
            f"a word longer than a line ({longest} characters; lines hold {rules.max_chars_per_line}) "
            "is split over lines"
        )
    if layout.overflow:
        out.append(f"needs {len(layout.lines)} lines, more than the {rules.max_lines} allowed")
    return out


@dataclass(frozen=True)
class _Piece:
    """One cue to be timed: its words, lines, a person's own times, and which of their cues it shows."""

    tokens: tuple[_Token, ...]
    layout: Layout
    wanted: tuple[int, int] | None = None  # clip ms
    source: int | None = None  # the person's cue (0-based, as in their SRT); None: the pipeline's
    split: bool = False  # one of several cues a person's cue is shown as

    @property
    def draft(self) -> timing.Draft:
        speech = (self.tokens[0].start_ms, max(t.end_ms for t in self.tokens))
        return timing.Draft(self.layout.lines, speech, self.wanted)

    @property
    def chars(self) -> int:
        return sum(len(line) for line in self.layout.lines)


@dataclass(frozen=True)
class StatementCues:
    """A statement's cues in the clip, with what the review page and the check ask about them."""

    cues: tuple[Cue, ...]
    sources: tuple[int | None, ...]  # for each cue, the person's cue it shows (None: the pipeline's)
    moved: tuple[frozenset[str], ...]  # for each cue, why a person's times were changed (timing.MOVED_*)
    split: tuple[bool, ...]  # for each cue, whether it is one of several a person's cue became
    speech: tuple[tuple[int, int], ...]  # for each cue, where its words are spoken (clip ms)
    short: tuple[int, ...] = ()  # cues the window cannot give the shortest time on screen (indexes)
    texts: tuple[str, ...] = ()  # for each cue, its text

    @classmethod
    def empty(cls) -> StatementCues:
        return cls((), (), (), (), ())


_MOVED_WORDS = {
    timing.MOVED_WINDOW_START: "started before the statement's picture",
    timing.MOVED_WINDOW_END: "ran past the statement's end (its out point)",
    timing.MOVED_NEXT: "ran into the next subtitle",
    timing.MOVED_PREVIOUS: "the subtitle before ran into it",
    timing.MOVED_SHORTEST: "was up for less than the shortest time on screen",
    timing.MOVED_LONGEST: "was up for longer than the longest time on screen",
    timing.MOVED_READING: "could not be read in its time",
}


def _time_pieces(
    pieces: list[_Piece], window: tuple[int, int], rules: SubtitleRules, statement_id: str | None
) -> StatementCues:
    """The pieces timed by the one timing model. Where the window cannot show each for a frame, the two
    shortest neighbouring pieces the pipeline times share one cue (a person's own are never joined)."""
    fitted = timing.fit([p.draft for p in pieces], window, rules)
    crammed = False
    while fitted is None:
        joinable = [
            k for k in range(len(pieces) - 1) if pieces[k].wanted is None and pieces[k + 1].wanted is None
        ]
        if not joinable:
            break
        crammed = True
        pair = min(joinable, key=lambda k: pieces[k].chars + pieces[k + 1].chars)
        tokens = pieces[pair].tokens + pieces[pair + 1].tokens
        units = [u for t in tokens for u in t.units]
        layout = lay_out(units, rules.max_lines, rules.max_chars_per_line)
        pieces[pair : pair + 2] = [_Piece(tokens, layout, source=pieces[pair].source)]
        fitted = timing.fit([p.draft for p in pieces], window, rules)
    if fitted is None:
        # Not a frame for each of a person's cues: none is shown, every one is short, and the caller
        # stops on it (``clip.problems``).
        return StatementCues(
            (),
            tuple(p.source for p in pieces),
            tuple(frozenset() for _ in pieces),
            tuple(p.split for p in pieces),
            tuple(p.draft.speech for p in pieces),
            short=tuple(range(len(pieces))),
            texts=tuple(" ".join(p.layout.lines) for p in pieces),
        )
    drafts = [p.draft for p in pieces]
    cues = []
    for k, piece in enumerate(pieces):
        warnings = _layout_warnings(piece.layout, rules) + timing.timing_warnings(
            k, drafts, fitted, window, rules
        )
        if crammed:
            warnings.append("the statement's picture is too short for its words; cues were joined")
        if fitted.moved[k]:
            why = "; ".join(_MOVED_WORDS[m] for m in sorted(fitted.moved[k]))
            warnings.append(f"a person's timing was changed to keep the form's rules: it {why}")
        cues.append(
            Cue(
                start_ms=fitted.start[k],
                end_ms=fitted.end[k],
                lines=piece.layout.lines,
                kind="speech",
                statement_id=statement_id,
                warnings=tuple(warnings),
            )
        )
    return StatementCues(
        tuple(cues),
        tuple(p.source for p in pieces),
        fitted.moved,
        tuple(p.split for p in pieces),
        tuple(d.speech for d in drafts),
        fitted.short,
        tuple(c.text for c in cues),
    )


def build_statement_cues(
    words: Sequence[Word], window: tuple[int, int], rules: SubtitleRules, statement_id: str | None
) -> tuple[Cue, ...]:
    """One statement's cues, grouped from its words and timed inside ``window`` (start and end, ms).

    Every word appears in exactly one cue, in order; words outside the window are shown at its edge.
    Raises ValueError when there are words but the window cannot show even one frame.
    """
    tokens = _tokens(words)
    if not tokens:
        return ()
    w0, w1 = window
    if w1 - w0 < rules.min_gap_ms + min(rules.frame_ms, rules.min_duration_ms):
        raise ValueError(f"window {window} is too short to show subtitles for statement {statement_id}")
    pieces = [_Piece(d.tokens, d.layout) for d in _group(tokens, window, rules)]
    return _time_pieces(pieces, window, rules, statement_id).cues


def cue_words(
    words: Sequence[Word], window: tuple[int, int], rules: SubtitleRules, statement_id: str | None
) -> list[tuple[Cue, tuple[Word, ...]]]:
    """``build_statement_cues`` with the words each cue shows (as ``shown_words`` gives them)."""
    shown = shown_words(words)
    cues = build_statement_cues(words, window, rules, statement_id)
    out: list[tuple[Cue, tuple[Word, ...]]] = []
    at = 0
    for cue in cues:
        # Each cue holds the next words, whole: count them by their characters without spaces.
        wanted = len("".join(cue.text.split()))
        taken: list[Word] = []
        got = 0
        while got < wanted and at < len(shown):
            taken.append(shown[at])
            got += len("".join(shown[at].text.split()))
            at += 1
        out.append((cue, tuple(taken)))
    return out


def _person_tokens(words: Sequence[Word]) -> list[_Token]:
    """A person's words as they typed them: no punctuation joined, no ellipsis made one character."""
    tokens: list[_Token] = []
    floor: int | None = None
    for word in words:
        text = " ".join(word.text.split())
        if not text:
            continue
        start = word.start_ms if floor is None else max(word.start_ms, floor)
        tokens.append(_Token(text, start, max(word.end_ms, start), tuple(units_of(text))))
        floor = start
    return tokens


def _fits_lines(lines: Sequence[str], rules: SubtitleRules) -> bool:
    return 0 < len(lines) <= rules.max_lines and all(
        0 < len(line) <= rules.max_chars_per_line for line in lines
    )


def _pieces_of(
    segment: Segment, offset_ms: int, window: tuple[int, int], rules: SubtitleRules
) -> list[_Piece]:
    """The cue (or cues) one segment of a transcript is shown as: a person's cue with its lines and times
    where they fit, else its words broken by the form's rules; the pipeline's words grouped as usual."""
    words = [
        Word(w.start_ms + offset_ms, w.end_ms + offset_ms, w.text, w.probability, w.flags)
        for w in segment.words
    ]
    shown = segment.shown
    if shown is None:
        tokens = _tokens(words)
        return [_Piece(d.tokens, d.layout) for d in _group(tokens, window, rules)] if tokens else []
    tokens = _person_tokens(words)
    if not tokens:
        return []
    wanted = (
        (shown.start_ms + offset_ms, shown.end_ms + offset_ms)
        if shown.start_ms is not None and shown.end_ms is not None
        else None
    )
    whole = len(segment.words) == shown.words
    lines = tuple(" ".join(line.split()) for line in shown.lines if line.strip())
    if whole and _fits_lines(lines, rules):
        layout = Layout(lines, 0.0, False, False)
        return [_Piece(tuple(tokens), layout, wanted, shown.index)]
    units_all = [u for t in tokens for u in t.units]
    layout = lay_out(units_all, rules.max_lines, rules.max_chars_per_line)
    if not layout.overflow:
        return [_Piece(tuple(tokens), layout, wanted, shown.index)]
    # More words than the form's lines hold: shown as several cues one after the other, in its own time.
    groups = _group(tokens, window, rules)
    total = sum(g.chars for g in groups) or 1
    pieces = []
    done = 0
    for g in groups:
        part = None
        if wanted is not None:
            span = wanted[1] - wanted[0]
            part = (wanted[0] + span * done // total, wanted[0] + span * (done + g.chars) // total)
        done += g.chars
        pieces.append(_Piece(g.tokens, g.layout, part, shown.index, split=True))
    return pieces


def statement_cues(
    transcript: StatementTranscript,
    offset_ms: int,
    window: tuple[int, int],
    rules: SubtitleRules,
    statement_id: str | None,
) -> StatementCues:
    """A statement's cues in the clip: each segment of ``transcript`` (timed from the cut's in point,
    ``offset_ms`` earlier than the clip) shown as its cue, timed inside ``window`` by the timing model."""
    pieces = [p for segment in transcript.segments for p in _pieces_of(segment, offset_ms, window, rules)]
    if not pieces:
        return StatementCues.empty()
    return _time_pieces(pieces, window, rules, statement_id)


# ----------------------------------------------------------------------------------------------- cards


def card_cue(
    text: str, window: tuple[int, int], rules: SubtitleRules, statement_id: str | None = None
) -> Cue | None:
    """A bracketed caption for a card, e.g. "[Anna Jensen, Bordgruppe 3]", up for the card's window.

    ``text`` lists the parts, most important first, separated by commas or new lines. Where the caption
    cannot be read in the time the card is up (``max_cps``) or does not fit the lines, the last parts are
    dropped, then the first part is cut after a whole word with "…". None when there is nothing to say or
    the card is up too briefly for any subtitle (``min_duration``); the transcript then names the speaker.
    """
    w0, w1 = window
    duration = min(w1 - rules.min_gap_ms - w0, rules.max_duration_ms)
    parts = [p for p in (clean_text(p).strip("[] ") for p in re.split(r"[\n,]", text)) if p]
    if not parts or duration < rules.min_duration_ms:
        return None
    budget = min(rules.max_lines * rules.max_chars_per_line, math.floor(rules.max_cps * duration / 1000))

    def fits(caption: str) -> bool:
        units = units_of(caption)
        return len(caption) <= budget and units_fit(units, rules.max_lines, rules.max_chars_per_line)

    caption = None
    for count in range(len(parts), 0, -1):
        candidate = "[" + ", ".join(parts[:count]) + "]"
        if fits(candidate):
            caption = candidate
            break
    if caption is None:
        words = parts[0].split(" ")
        for count in range(len(words) - 1, 0, -1):
            candidate = "[" + " ".join(words[:count]) + "…]"
            if fits(candidate):
                caption = candidate
                break
    if caption is None:
        # Not even one word fits: a part of it, which still says a name is shown.
        room = min(budget, rules.max_chars_per_line) - 3
        if room < 1:
            return None
        caption = "[" + parts[0][:room].rstrip() + "…]"
    layout = lay_out(units_of(caption), rules.max_lines, rules.max_chars_per_line)
    return Cue(w0, w0 + duration, layout.lines, kind="card", statement_id=statement_id)


# ------------------------------------------------------------------------------------------- checking

# What a person or the builder is told about: what breaks the form, and gaps left open that the form
# would close. Mild notes (a long line, a fast but legal pace) are left to the check's report.
_TOLD = {"subtitles.gap"}


def validate(cues: Sequence[Cue], rules: SubtitleRules, clip_ms: int) -> list[str]:
    """Every rule of the form the cues break, one readable line each naming the rule and its limit;
    empty when all is well."""
    titles = rule_titles(rules, clip_ms)
    return [
        f"{b.detail} ({titles[b.rule][0]} {titles[b.rule][1]})"
        for b in timing.judge(cues, rules, clip_ms)
        if b.severity == "fail" or b.rule in _TOLD
    ]
