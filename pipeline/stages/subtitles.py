"""Subtitles: cues from the word timestamps, to the form's rules, and the files that carry them.

The pure core works in integer milliseconds of the clip:

- ``build_statement_cues`` groups one statement's words into cues and breaks their lines (the cues a
  person starts from, over the whole recording);
- ``statement_cues`` makes a statement's cues in the clip from its cues as the transcript holds them
  (the pipeline's or a person's), keeps a person's lines where the form allows them, and times them in
  the statement's window with the one timing model, ``pipeline.stages.timing.fit``;
- ``card_cue`` captions a card that names the speaker on screen only (WCAG 1.2.5);
- ``validate`` lists every rule a list of cues breaks, one readable line each.

The rules are ``pipeline.stages.subtitle_rules``; how a cue is timed and a rule break judged is
``pipeline.stages.timing``. The writers (``to_srt``, ``to_vtt``, ``to_ass``) and readers (``parse_srt``,
``parse_vtt``) go through pysubs2. The rules and their sources are in docs/standards.md, section "Subtitles".

Decisions where the standards are silent:

- A word longer than a line (a web address read aloud) gets a cue of its own and is split hard, without a
  hyphen (a hyphen would change an address), at ``max_chars_per_line``; the cue carries a warning.
- Whisper sometimes writes punctuation as a word of its own; it is joined to the word before it.
- A window too short to show every cue one after the other (at least one frame each) makes neighbouring
  cues of the pipeline's share one cue, with a warning; no word is ever dropped. A person's cues are
  never joined: they are told instead.
- A person's lines are kept as typed where they fit the form's lines; otherwise their words are broken
  into lines by the form's rules, and a cue with more words than the form's lines hold is shown as
  several cues one after the other, in its own time.
"""

from __future__ import annotations

import functools
import html
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import pysubs2

from pipeline.models import Segment, StatementTranscript, Word
from pipeline.stages import timing
from pipeline.stages.subtitle_rules import (
    VERSION,
    Cue,
    RuleBreak,
    RulesError,
    SubtitleRules,
    clean_text,
    cue_name,
    rule_breaks,
    rule_titles,
)

__all__ = [
    "VERSION",
    "Cue",
    "RuleBreak",
    "RulesError",
    "StatementCues",
    "SubtitleRules",
    "break_lines",
    "build_statement_cues",
    "card_cue",
    "clean_text",
    "cue_name",
    "parse_srt",
    "parse_vtt",
    "rule_breaks",
    "rule_titles",
    "statement_cues",
    "to_ass",
    "to_srt",
    "to_vtt",
    "validate",
]

# ---------------------------------------------------------------------------------------- line breaks


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Words lowercased, without punctuation around them. Before these a line or cue may break well.
BREAK_BEFORE = _words(
    "og men eller for så at som der når hvis fordi mens da selvom skønt end hvor hvad hvem hvordan hvorfor "
    "hvornår hvilken hvilket hvilke både enten samt i på til fra med af om ved under over efter før mod "
    "hos uden gennem mellem bag langs omkring siden indtil inden blandt trods via ad per ifølge angående"
)
# Never break right after these: an article or determiner belongs to the word it introduces.
DETERMINERS = _words(
    "en et den det de denne dette disse min mit mine din dit dine sin sit sine vores jeres deres hans hendes "
    "dens dets hver hvert nogen noget nogle ingen intet ethvert enhver al alt alle begge"
)
# Never break right after these: an auxiliary or modal verb belongs to the verb that follows.
AUXILIARIES = _words(
    "er var har havde vil ville skal skulle kan kunne må måtte bør burde blev bliver bli'r blive være "
    "været have får fik tør turde gider"
)

SENTENCE_END = ".!?…"
CLAUSE_END = ",;:–—-"
CLOSING = "\"'”’»)]"
# A "word" made of these only is punctuation Whisper wrote apart; it belongs to the word before it.
GLUE_CHARS = frozenset(".,!?;:…)]»”’%")

# What a break costs, by kind; lower is better. A forbidden break is taken only when nothing else fits.
COST_SENTENCE = 0.0
COST_CLAUSE = 1.0
COST_PAUSE = 2.0  # between cues only: a short pause in the speech
COST_BEFORE_CONJUNCTION = 3.0
COST_ORDINARY = 6.0
COST_AFTER_PREPOSITION = 9.0
COST_HARD_SPLIT = 50.0
COST_FORBIDDEN = 100.0
COST_FORBIDDEN_BETWEEN_CUES = 30.0
BALANCE_WEIGHT = 16.0  # how much an uneven pair of lines costs, relative to the break kinds above
# What a cue costs when grouping words: fewer, fuller cues flicker less; a sentence should end a cue; a cue
# that cannot stay up long enough to be read costs by the second it lacks.
COST_CUE = 5.0
COST_SENTENCE_INSIDE = 8.0
COST_SHORT_PER_SECOND = 30.0
SHORT_PAUSE_MS = 250  # a pause this long is a good place to end a cue


@dataclass(frozen=True)
class _Unit:
    """A piece of text that a line may break before: a word, or part of a word split hard."""

    text: str
    glued: bool = False  # no space before it (the rest of a word split hard)


def _bare(text: str) -> str:
    return text.strip("\"'“”‘’«»()[]{}.,!?;:…–—-")


def _ends_with(text: str, marks: str) -> bool:
    stripped = text.rstrip(CLOSING)
    return bool(stripped) and stripped[-1] in marks


def _is_name_part(text: str) -> bool:
    bare = _bare(text)
    return bool(bare) and bare[0].isupper() and not _ends_with(text, SENTENCE_END + CLAUSE_END)


def _break_cost(before: _Unit, after: _Unit) -> float:
    """What breaking a line (or a cue) between two units costs; docs/standards.md "line breaks"."""
    if after.glued:
        return COST_HARD_SPLIT
    if _ends_with(before.text, SENTENCE_END):
        return COST_SENTENCE
    if _ends_with(before.text, CLAUSE_END):
        return COST_CLAUSE
    left = _bare(before.text).lower()
    if left in DETERMINERS or left in AUXILIARIES:
        return COST_FORBIDDEN
    if _is_name_part(before.text) and _is_name_part(after.text):
        return COST_FORBIDDEN  # first and last name, or a name of several words
    if _bare(after.text).lower() in BREAK_BEFORE:
        return COST_BEFORE_CONJUNCTION
    if left in BREAK_BEFORE or left.isdigit():
        return COST_AFTER_PREPOSITION  # "på | Skolevej", "50 | km/t"
    return COST_ORDINARY


def _units_of(text: str) -> list[_Unit]:
    return [_Unit(part) for part in text.split(" ") if part]


def _split_long_units(units: Sequence[_Unit], max_chars: int) -> list[_Unit]:
    out: list[_Unit] = []
    for unit in units:
        if len(unit.text) <= max_chars:
            out.append(unit)
            continue
        chunks = [unit.text[i : i + max_chars] for i in range(0, len(unit.text), max_chars)]
        out.append(_Unit(chunks[0], unit.glued))
        out.extend(_Unit(chunk, glued=True) for chunk in chunks[1:])
    return out


def _line_text(units: Sequence[_Unit]) -> str:
    return "".join(("" if i == 0 or u.glued else " ") + u.text for i, u in enumerate(units))


def _lines_needed(units: Sequence[_Unit], max_chars: int) -> int | None:
    """The fewest lines of ``max_chars`` that hold the units (filling each line greedily is optimal), or
    None when a unit alone is longer than a line."""
    lines, length = 1, -1
    for unit in units:
        if len(unit.text) > max_chars:
            return None
        if length < 0:
            length = len(unit.text)
        elif length + len(unit.text) + (0 if unit.glued else 1) > max_chars:
            lines, length = lines + 1, len(unit.text)
        else:
            length += len(unit.text) + (0 if unit.glued else 1)
    return lines


def _fits(units: Sequence[_Unit], max_lines: int, max_chars: int) -> bool:
    needed = _lines_needed(units, max_chars)
    return needed is not None and needed <= max_lines


@dataclass(frozen=True)
class _Layout:
    lines: tuple[str, ...]
    cost: float
    hard_split: bool  # a word longer than a line was split
    overflow: bool  # more lines than allowed were needed


def break_lines(text: str, rules: SubtitleRules) -> tuple[str, ...]:
    """The lines a cue of ``text`` is shown in: one line when it fits, else the best allowed breaks."""
    return _layout(_units_of(clean_text(text)), rules.max_lines, rules.max_chars_per_line).lines


def _layout(units: Sequence[_Unit], max_lines: int, max_chars: int) -> _Layout:
    """The fewest lines that hold the units; among those, the cheapest breaks and the most even lines."""
    return _layout_of(tuple(units), max_lines, max_chars)


# The cue builder tries the same runs of words again and again (every cue it weighs, and the clip is
# planned more than once a run): remembered, they are laid out once.
@functools.lru_cache(maxsize=1 << 14)
def _layout_of(units: tuple[_Unit, ...], max_lines: int, max_chars: int) -> _Layout:
    split = _split_long_units(units, max_chars)
    hard_split = len(split) != len(units)
    n = len(split)
    if n == 0:
        return _Layout((), 0.0, False, False)
    # starts[j]: the length of split[:j] written on one line
    starts = [0] * (n + 1)
    for i, unit in enumerate(split):
        starts[i + 1] = starts[i] + len(unit.text) + (0 if i == 0 or unit.glued else 1)

    def length(i: int, j: int) -> int:
        return starts[j] - starts[i] - (0 if i == 0 or split[i].glued else 1)

    count = _lines_needed(split, max_chars)
    assert count is not None  # every unit fits a line once long words are split
    costs = [0.0] + [_break_cost(split[k - 1], split[k]) for k in range(1, n)]
    weight = BALANCE_WEIGHT / max_chars**2
    # best[l][j]: the cheapest way to put split[:j] on l lines, and where its last line starts
    best: list[list[tuple[float, int] | None]] = [[None] * (n + 1) for _ in range(count + 1)]
    best[0][0] = (0.0, 0)
    for lines in range(1, count + 1):
        for j in range(1, n + 1):
            for i in range(j - 1, -1, -1):
                size = length(i, j)
                if size > max_chars:
                    break
                previous = best[lines - 1][i]
                if previous is None:
                    continue
                cost = previous[0] + (costs[i] if i else 0.0) + weight * size * size
                current = best[lines][j]
                if current is None or cost < current[0]:
                    best[lines][j] = (cost, i)
    bounds, j = [], n
    for lines in range(count, 0, -1):
        entry = best[lines][j]
        assert entry is not None  # the greedy count proves that count lines can hold the units
        bounds.append((entry[1], j))
        j = entry[1]
    bounds.reverse()
    sizes = [length(i, j) for i, j in bounds]
    # Only how uneven the lines are counts, not how long the text is.
    evenness = weight * (sum(s * s for s in sizes) - sum(sizes) ** 2 / count)
    cost = sum(costs[i] for i, _ in bounds[1:]) + evenness
    texts = tuple(_line_text(split[i:j]) for i, j in bounds)
    return _Layout(texts, cost, hard_split, count > max_lines)


# ------------------------------------------------------------------------------------ grouping words


@dataclass(frozen=True)
class _Token:
    """One spoken word as shown (punctuation Whisper wrote apart joined back), with its time."""

    text: str
    start_ms: int
    end_ms: int
    units: tuple[_Unit, ...]


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
    return [
        _Token(w.text[1:], w.start_ms, w.end_ms, tuple(_units_of(w.text[1:]))) for w in shown_words(words)
    ]


@dataclass(frozen=True)
class _Draft:
    """A cue before timing: its words, lines and the speech it covers."""

    tokens: tuple[_Token, ...]
    layout: _Layout

    @property
    def speech_start(self) -> int:
        return self.tokens[0].start_ms

    @property
    def speech_end(self) -> int:
        return max(t.end_ms for t in self.tokens)

    @property
    def chars(self) -> int:
        return sum(len(line) for line in self.layout.lines)


def _draft(tokens: Sequence[_Token], rules: SubtitleRules) -> _Draft:
    units = [u for t in tokens for u in t.units]
    return _Draft(tuple(tokens), _layout(units, rules.max_lines, rules.max_chars_per_line))


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
        cost = _break_cost(tokens[k - 1].units[-1], tokens[k].units[0])
        cost = min(cost, COST_FORBIDDEN_BETWEEN_CUES)
        if pause_before[k] >= SHORT_PAUSE_MS:
            cost = min(cost, COST_PAUSE)
        return cost

    def cue_cost(i: int, j: int, layout: _Layout) -> float:
        chars = sum(len(line) for line in layout.lines)
        need = rules.needed_ms(chars)
        end_limit = min(
            tokens[j].start_ms - gap if j < n else last_end, tokens[j - 1].end_ms + rules.max_shift_ms
        )
        free_before = tokens[i].start_ms - (tokens[i - 1].end_ms + rules.hang_ms if i else w0)
        start_limit = tokens[i].start_ms - min(max(free_before, 0), rules.max_shift_ms)
        short_s = max(0, need - (end_limit - start_limit)) / 1000
        inner_sentence_ends = sum(_ends_with(tokens[k].text, SENTENCE_END) for k in range(i, j - 1))
        return (
            COST_CUE
            + layout.cost
            + COST_SENTENCE_INSIDE * inner_sentence_ends
            + COST_SHORT_PER_SECOND * short_s
        )

    best: list[float] = [0.0] + [math.inf] * n
    back = [0] * (n + 1)
    layouts: dict[tuple[int, int], _Layout] = {}
    for j in range(1, n + 1):
        end_cost = boundary(j) if j < n else 0.0
        units: list[_Unit] = []
        speech_end = 0
        for i in range(j - 1, -1, -1):
            units[:0] = tokens[i].units
            speech_end = max(speech_end, tokens[i].end_ms)
            if i < j - 1 and (
                forced[i + 1]
                or speech_end - tokens[i].start_ms > rules.max_duration_ms
                or not _fits(units, rules.max_lines, rules.max_chars_per_line)
            ):
                break  # a longer cue would break the same rule
            layout = _layout(units, rules.max_lines, rules.max_chars_per_line)
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


def _layout_warnings(layout: _Layout, rules: SubtitleRules) -> list[str]:
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
    layout: _Layout
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
        layout = _layout(units, rules.max_lines, rules.max_chars_per_line)
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
        tokens.append(_Token(text, start, max(word.end_ms, start), tuple(_units_of(text))))
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
        layout = _Layout(lines, 0.0, False, False)
        return [_Piece(tuple(tokens), layout, wanted, shown.index)]
    units_all = [u for t in tokens for u in t.units]
    layout = _layout(units_all, rules.max_lines, rules.max_chars_per_line)
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
        units = _units_of(caption)
        return len(caption) <= budget and _fits(units, rules.max_lines, rules.max_chars_per_line)

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
    layout = _layout(_units_of(caption), rules.max_lines, rules.max_chars_per_line)
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


# ----------------------------------------------------------------------------------------------- files


# SubRip and WebVTT are written and read here, not by pysubs2: pysubs2 reads a line of digits at the end of
# a cue as the next cue's number, and "\\N" typed in a cue as a line break, so a person's text would
# not come back as typed.
_STAMP = r"(\d+):(\d{1,2}):(\d{1,2})[,.](\d{1,3})"
_SRT_TIMING = re.compile(rf"^\s*{_STAMP}\s*-->\s*{_STAMP}(?:\s.*)?$")
_VTT_STAMP = r"(?:(\d+):)?(\d{1,2}):(\d{1,2})\.(\d{1,3})"
_VTT_TIMING = re.compile(rf"^\s*{_VTT_STAMP}\s*-->\s*{_VTT_STAMP}(?:\s.*)?$")
_ANY_STAMP = re.compile(r"\d+:\d{1,2}:\d{1,2}[,.]\d{1,3}|\d{1,2}:\d{1,2}\.\d{1,3}")


def _ms_of(hours: str | None, minutes: str, seconds: str, fraction: str) -> int:
    return ((int(hours or 0) * 60 + int(minutes)) * 60 + int(seconds)) * 1000 + int(fraction.ljust(3, "0"))


def srt_time(ms: int) -> str:
    ms = max(ms, 0)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def vtt_time(ms: int) -> str:
    return srt_time(ms).replace(",", ".")


def looks_like_timing(line: str) -> bool:
    """A line a subtitle reader would take for the timing of a new cue: two time codes around ``-->``."""
    return "-->" in line and len(_ANY_STAMP.findall(line)) >= 2


def _escape_vtt(line: str) -> str:
    # WebVTT cue text is markup: these three must be written as character references ("-->" too is then
    # never in a cue's text, as WebVTT requires).
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _escape_ass(line: str) -> str:
    # In ASS, braces open override tags and a backslash before N, n or h is a line break or a space.
    # libass shows \{ and \} as braces, and a backslash followed by a word joiner (invisible) as itself.
    return line.replace("\\", "\\\u2060").replace("{", "\\{").replace("}", "\\}")


# What a player reads as formatting in SubRip (SubRip has no way to write these as text).
_FORMAT_TAG = re.compile(r"</?(?:i|b|u|s|font)(?:\s[^>]*)?>", re.IGNORECASE)
_OVERRIDE = re.compile(r"\{\\[^}]*\}")

UNSAFE_TIMING = "timing"
UNSAFE_FORMAT = "format"
UNSAFE_CONTROL = "control"
UNSAFE_FONT = "font"


def unsafe_text(line: str) -> tuple[str, str] | None:
    """Why a line a person wrote cannot reach every file as typed, as (UNSAFE_*, the offending part), or
    None. Everything else (any letter, "-->", braces, angle brackets, backslashes) is written so that it
    comes back exactly: escaped where a format reads markup (WebVTT, the burned-in ASS), as it is in
    SubRip, which has no markup but these."""
    from pipeline import fonts

    if looks_like_timing(line):
        return UNSAFE_TIMING, line.strip()
    tag = _FORMAT_TAG.search(line) or _OVERRIDE.search(line)
    if tag:
        return UNSAFE_FORMAT, tag.group(0)
    for ch in line:
        if unicodedata.category(ch) in ("Cc", "Cs", "Co") or ch in "\u2028\u2029":
            return UNSAFE_CONTROL, f"U+{ord(ch):04X}"
    drawable = fonts.drawable()
    missing = next(
        (ch for ch in line if not ch.isspace() and ord(ch) not in drawable and not _invisible(ch)), None
    )
    if missing is not None:
        return UNSAFE_FONT, f"{missing} (U+{ord(missing):04X})"
    return None


def _invisible(ch: str) -> bool:
    # Joiners, direction marks and variation selectors change how the letters around them are drawn.
    return unicodedata.category(ch) == "Cf" or 0xFE00 <= ord(ch) <= 0xFE0F


UNSAFE_WORDS = {
    UNSAFE_TIMING: "reads as the timing of a new subtitle (two time codes around -->)",
    UNSAFE_FORMAT: "reads as formatting to video players (SubRip cannot show it as text)",
    UNSAFE_CONTROL: "holds an invisible control character",
    UNSAFE_FONT: "holds a character the subtitle font cannot draw",
}


def to_srt(cues: Sequence[Cue]) -> str:
    """SubRip: blocks numbered from 1, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``, one text line per line, a blank
    line after each. A cue's text is written as it is (SubRip has no escapes): what cannot be written so
    is refused before, see ``unsafe_text``."""
    blocks = [
        f"{n}\n{srt_time(c.start_ms)} --> {srt_time(c.end_ms)}\n" + "".join(f"{line}\n" for line in c.lines)
        for n, c in enumerate(cues, 1)
    ]
    return "".join(f"{block}\n" for block in blocks)


def to_vtt(cues: Sequence[Cue]) -> str:
    """WebVTT: the ``WEBVTT`` header, then blocks timed ``hh:mm:ss.ttt``, text as character references
    where WebVTT reads markup."""
    blocks = [
        f"{vtt_time(c.start_ms)} --> {vtt_time(c.end_ms)}\n" + "".join(f"{_escape_vtt(x)}\n" for x in c.lines)
        for c in cues
    ]
    return "WEBVTT\n\n" + "".join(f"{block}\n" for block in blocks)


def _escape_soft(line: str) -> str:
    # ffmpeg's mov_text encoder reads ASS text as ASS splits it: only "\N" (or "\n") and "{\" mean
    # anything there. A word joiner (invisible) keeps them text.
    return line.replace("\\N", "\\\u2060N").replace("\\n", "\\\u2060n").replace("{\\", "{\u2060\\")


def to_soft_ass(cues: Sequence[Cue]) -> str:
    """The cues as ASS for ffmpeg to turn into the clip's selectable ``mov_text`` track: every character
    reaches the track as typed (SubRip or WebVTT as the source would lose "<...>" or a backslash)."""
    subs = pysubs2.SSAFile()
    for cue in cues:
        subs.append(
            pysubs2.SSAEvent(
                start=cue.start_ms, end=cue.end_ms, text="\\N".join(map(_escape_soft, cue.lines))
            )
        )
    return subs.to_string("ass", header_notice="The selectable subtitle track of hearing-pipeline")


def _blocks(text: str, timing: re.Pattern[str], *, vtt: bool) -> list[tuple[re.Match[str], list[str]]]:
    """Each timing line with the text lines after it: in WebVTT up to the first blank line; in SubRip
    every line up to the next cue, but for that cue's number."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").removeprefix("\ufeff").split("\n")
    found: list[tuple[re.Match[str], list[str]]] = []
    for line in lines:
        match = timing.match(line)
        if match:
            found.append((match, []))
        elif found:
            found[-1][1].append(line)
    out = []
    for k, (match, body) in enumerate(found):
        if vtt:
            end = next((i for i, line in enumerate(body) if not line.strip()), len(body))
            body = body[:end]
        elif k + 1 < len(found):
            # The next cue's number: digits alone on the last line, after a blank one.
            filled = [i for i, line in enumerate(body) if line.strip()]
            if (
                filled
                and filled[-1] > 0
                and not body[filled[-1] - 1].strip()
                and body[filled[-1]].strip().isdigit()
            ):
                body = body[: filled[-1]]
        out.append((match, [line.strip() for line in body if line.strip()]))
    return out


def parse_srt(text: str) -> list[Cue]:
    """The cues of a SubRip file, their text exactly as written (SubRip has no escapes)."""
    cues = []
    for match, lines in _blocks(text, _SRT_TIMING, vtt=False):
        g = match.groups()
        cues.append(Cue(_ms_of(*g[0:4]), _ms_of(*g[4:8]), tuple(lines)))
    return cues


_VTT_TAG = re.compile(r"<[^>]*>")


def parse_vtt(text: str) -> list[Cue]:
    """The cues of a WebVTT file, their text with WebVTT's tags left out and its character references
    read."""
    cues = []
    for match, lines in _blocks(text, _VTT_TIMING, vtt=True):
        g = match.groups()
        shown = tuple(html.unescape(_VTT_TAG.sub("", line)) for line in lines)
        cues.append(Cue(_ms_of(*g[0:4]), _ms_of(*g[4:8]), tuple(x for x in shown if x.strip())))
    return cues


def to_ass(
    cues: Sequence[Cue],
    *,
    width: int,
    height: int,
    font_name: str,
    font_size_px: float,
    duration_ms: int,
    offset_ms: int = 0,
) -> str:
    """Advanced SubStation for burning into one segment of the clip with libass.

    The segment starts at ``offset_ms`` of the clip and lasts ``duration_ms``: cue times are shifted by
    ``-offset_ms`` and cut to the segment; cues outside it are left out. PlayRes is the frame size, so
    font size, outline and margins are output pixels. White text with a black outline of 7 % of the font
    size and no shadow, bottom-centred, inside the 90 % graphics-safe area. WrapStyle 2: libass never
    wraps, the lines are ours. A line wider than the safe area is not wrapped either: at 5 % of the
    height, 42 characters of DejaVu Sans fit a 16:9 frame with room to spare.
    """
    outline = round(font_size_px * 0.07, 1)
    subs = pysubs2.SSAFile()
    subs.info.update(
        {
            "PlayResX": str(width),
            "PlayResY": str(height),
            "WrapStyle": "2",
            "ScaledBorderAndShadow": "yes",
        }
    )
    subs.styles["Default"] = pysubs2.SSAStyle(
        fontname=font_name,
        fontsize=float(font_size_px),
        primarycolor=pysubs2.Color(255, 255, 255, 0),
        secondarycolor=pysubs2.Color(255, 255, 255, 0),
        outlinecolor=pysubs2.Color(0, 0, 0, 0),
        backcolor=pysubs2.Color(0, 0, 0, 0),
        bold=False,
        borderstyle=1,
        outline=outline,
        shadow=0.0,
        alignment=pysubs2.Alignment.BOTTOM_CENTER,
        # 5 % of the frame on every side, plus the outline, which reaches out beyond the letters.
        marginl=math.ceil(width * 0.05 + outline),
        marginr=math.ceil(width * 0.05 + outline),
        marginv=math.ceil(height * 0.05 + outline),
    )
    for cue in cues:
        start = max(cue.start_ms - offset_ms, 0)
        end = min(cue.end_ms - offset_ms, duration_ms)
        if end <= start:
            continue
        subs.append(pysubs2.SSAEvent(start=start, end=end, text="\\N".join(map(_escape_ass, cue.lines))))
    return subs.to_string("ass", header_notice="Subtitles of hearing-pipeline, to burn in with libass")
