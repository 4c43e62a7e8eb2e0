"""Subtitles: cues from the word timestamps, to the form's rules, and the files that carry them.

The pure core works in integer milliseconds of the clip:

- ``build_statement_cues`` groups one statement's words into cues, breaks their lines and times them inside
  the statement's window (where its picture is in the clip);
- ``card_cue`` captions a card that names the speaker on screen only (WCAG 1.2.5);
- ``validate`` lists every rule a list of cues breaks, one readable line each.

The writers (``to_srt``, ``to_vtt``, ``to_ass``) and readers (``parse_srt``, ``parse_vtt``) go through
pysubs2; the ``write_*`` helpers put a file in place atomically. The rules and their sources are in
STANDARDS.md, section "Subtitles".

Decisions where the standards are silent:

- A cue never leaves its window and ends at least ``min_gap_ms`` before the window ends, so the next
  window's first cue (a card caption, or the next statement) may start on its very first frame.
- A cue's start or end within ``close_gap_ms`` of its window's edge snaps to the edge (the cut is a shot
  change; Netflix snaps to shot changes within 12 frames), so gaps across windows are closed too.
- A word longer than a line (a web address read aloud) gets a cue of its own and is split hard, without a
  hyphen (a hyphen would change an address), at ``max_chars_per_line``; the cue carries a warning.
- Whisper sometimes writes punctuation as a word of its own; it is joined to the word before it.
- A window too short to show every cue one after the other (at least one frame each) makes neighbouring
  cues share one cue, with a warning; no word is ever dropped.
"""

from __future__ import annotations

import functools
import html
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import pysubs2

from pipeline.models import Word

if TYPE_CHECKING:
    from pipeline.config import Form

VERSION = 1

# ------------------------------------------------------------------------------------------- the rules


@dataclass(frozen=True)
class SubtitleRules:
    """The form's subtitle rules in milliseconds; defaults are the numbers of STANDARDS.md."""

    max_lines: int = 2
    max_chars_per_line: int = 42
    warn_chars_per_line: int = 37
    max_cps: float = 17.0
    warn_cps: float = 15.0
    min_duration_ms: int = 833
    max_duration_ms: int = 7000
    min_gap_ms: int = 80
    close_gap_ms: int = 500
    hang_ms: int = 500  # how long a cue may stay up after its last word
    max_shift_ms: int = 1500  # never shown more than this before or after the speech
    fps: float = 25.0
    pause_ms: int = 600  # a pause this long always ends a cue

    def __post_init__(self) -> None:
        if self.max_lines < 1 or self.max_chars_per_line < 1 or self.max_cps <= 0 or self.fps <= 0:
            raise ValueError(f"subtitle rules out of range: {self}")
        if not 0 < self.min_duration_ms < self.max_duration_ms:
            raise ValueError(
                f"min_duration_ms ({self.min_duration_ms}) must be positive and below "
                f"max_duration_ms ({self.max_duration_ms})"
            )
        if self.min_gap_ms < 0 or self.close_gap_ms < self.min_gap_ms:
            raise ValueError(
                f"close_gap_ms ({self.close_gap_ms}) must be at least min_gap_ms ({self.min_gap_ms})"
            )

    @classmethod
    def from_form(cls, form: Form) -> SubtitleRules:
        sub = form.subtitles
        fps = float(form.video.fps)
        return cls(
            max_lines=sub.max_lines,
            max_chars_per_line=sub.max_chars_per_line,
            warn_chars_per_line=min(cls.warn_chars_per_line, sub.max_chars_per_line),
            max_cps=float(sub.max_cps),
            warn_cps=min(cls.warn_cps, float(sub.max_cps)),
            min_duration_ms=round(sub.min_duration * 1000),
            max_duration_ms=round(sub.max_duration * 1000),
            # Whole milliseconds, rounded up so that the gap is never less than the frames asked for.
            min_gap_ms=_ceil_ms(sub.min_gap_frames * 1000 / fps),
            fps=fps,
        )

    @property
    def frame_ms(self) -> int:
        return _ceil_ms(1000 / self.fps)

    def needed_ms(self, chars: int) -> int:
        """How long a cue of ``chars`` characters must stay up: the minimum, or longer to read it."""
        return min(self.max_duration_ms, max(self.min_duration_ms, math.ceil(chars * 1000 / self.max_cps)))


def _ceil_ms(value: float) -> int:
    # Float division leaves 80.00000000001 for 2 frames at 25 fps; that is 80 ms, not 81.
    return math.ceil(value - 1e-6)


# -------------------------------------------------------------------------------------------- the cue


@dataclass(frozen=True)
class Cue:
    start_ms: int
    end_ms: int
    lines: tuple[str, ...]
    kind: Literal["speech", "card"] = "speech"
    statement_id: str | None = None
    warnings: tuple[str, ...] = field(default_factory=tuple)  # for the review step, in plain words

    @property
    def text(self) -> str:
        return " ".join(self.lines)

    @property
    def chars(self) -> int:
        """Characters as Netflix counts them: spaces and punctuation count, line breaks do not."""
        return sum(len(line) for line in self.lines)

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms

    @property
    def cps(self) -> float:
        """Reading speed in characters per second."""
        if self.duration_ms <= 0:
            return math.inf
        return self.chars * 1000 / self.duration_ms


def clean_text(text: str) -> str:
    """A word or caption as it is shown: no leading or doubled spaces, the ellipsis as one character."""
    return " ".join(text.split()).replace("...", "…")


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
    """What breaking a line (or a cue) between two units costs; STANDARDS.md "line breaks"."""
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


def _tokens(words: Sequence[Word]) -> list[_Token]:
    tokens: list[_Token] = []
    floor = None
    for word in words:
        text = clean_text(word.text)
        if not text:
            continue
        # Never backwards: the engines promise it, and the timing below relies on it.
        start = word.start_ms if floor is None else max(word.start_ms, floor)
        end = max(word.end_ms, start)
        floor = start
        if tokens and set(text) <= GLUE_CHARS:
            last = tokens[-1]
            joined = last.text + text
            tokens[-1] = _Token(joined, last.start_ms, max(last.end_ms, end), tuple(_units_of(joined)))
            continue
        tokens.append(_Token(text, start, end, tuple(_units_of(text))))
    return tokens


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


# ----------------------------------------------------------------------------------------------- timing


@dataclass
class _Timing:
    start: list[int]
    end: list[int]


def _place(drafts: Sequence[_Draft], window: tuple[int, int], rules: SubtitleRules) -> _Timing | None:
    """Times for the cues (STANDARDS.md "timing to speech"), or None when the window cannot hold them."""
    w0 = window[0]
    gap, hang, shift, longest = rules.min_gap_ms, rules.hang_ms, rules.max_shift_ms, rules.max_duration_ms
    last_end = window[1] - gap
    m = len(drafts)
    a = [min(max(d.speech_start, w0), last_end) for d in drafts]
    b = [min(max(d.speech_end, a[k]), last_end) for k, d in enumerate(drafts)]
    need = [rules.needed_ms(d.chars) for d in drafts]
    start = list(a)
    end = [b[k] + hang for k in range(m)]

    def limit_after(k: int) -> int:
        return start[k + 1] - gap if k + 1 < m else last_end

    def close(k: int, lengthen_only: bool = False) -> None:
        """Close a gap of at most close_gap_ms after cue k (or to the window's end) to exactly min_gap."""
        room = limit_after(k) - end[k]
        if room <= 0 or room + gap > rules.close_gap_ms:
            return
        if limit_after(k) - start[k] <= longest and limit_after(k) <= b[k] + shift:
            end[k] = limit_after(k)
        elif lengthen_only:
            return
        elif k + 1 < m and end[k] + gap >= a[k + 1] - shift and end[k + 1] - (end[k] + gap) <= longest:
            start[k + 1] = end[k] + gap
        elif end[k] - start[k] - (rules.close_gap_ms - room - gap + 1) >= need[k]:
            end[k] -= rules.close_gap_ms - room - gap + 1  # open it instead, where the cue can spare it

    def close_start() -> None:
        if 0 < start[0] - w0 <= rules.close_gap_ms and a[0] - w0 <= shift and end[0] - w0 <= longest:
            start[0] = w0

    for k in range(m):
        end[k] = min(end[k], limit_after(k), start[k] + longest)
    for k in range(m):
        close(k, lengthen_only=True)

    # Reading time: lengthen into the pauses around the cue, later first, then earlier.
    for k in range(m):
        if end[k] - start[k] >= need[k]:
            continue
        latest = min(limit_after(k), b[k] + shift, start[k] + longest)
        end[k] = max(end[k], min(start[k] + need[k], latest))
        if end[k] - start[k] >= need[k]:
            continue
        earliest = max(a[k] - shift, w0, end[k] - longest)
        wanted = max(end[k] - need[k], earliest)
        if k:
            # The cue before may give back the time it hangs after its speech, where it does not need it.
            floor = max(start[k - 1] + need[k - 1], min(end[k - 1], b[k - 1]))
            end[k - 1] = min(end[k - 1], max(wanted - gap, floor))
            wanted = max(wanted, end[k - 1] + gap)
        start[k] = min(start[k], wanted)
        if end[k] - start[k] < need[k] and k + 1 < m and end[k] == limit_after(k):
            # The next cue may start up to 3 frames after its first word (STANDARDS.md), if it can spare it.
            later = min(a[k + 1] + 3 * rules.frame_ms, start[k] + need[k] + gap)
            next_latest = min(limit_after(k + 1), b[k + 1] + shift, later + longest)
            if later > start[k + 1] and next_latest - later >= need[k + 1]:
                start[k + 1] = later
                end[k] = min(later - gap, b[k] + shift, start[k] + longest)

    close_start()
    for k in range(m):
        close(k)
    return _repair(start, end, w0, last_end, rules)


def _repair(start: list[int], end: list[int], w0: int, last_end: int, rules: SubtitleRules) -> _Timing | None:
    """Order, gaps and the window made hard; this changes anything only where the speech was crammed."""
    m, gap, least = len(start), rules.min_gap_ms, min(rules.frame_ms, rules.min_duration_ms)
    for k in range(m):
        start[k] = max(start[k], w0 if k == 0 else end[k - 1] + gap)
        end[k] = max(end[k], start[k] + least)
    for k in range(m - 1, -1, -1):
        end[k] = min(end[k], last_end if k == m - 1 else start[k + 1] - gap)
        start[k] = min(start[k], end[k] - least)
    if start[0] < w0:
        return None
    return _Timing(start, end)


def _timing_warnings(
    k: int, drafts: Sequence[_Draft], timing: _Timing, window: tuple[int, int], rules: SubtitleRules
) -> list[str]:
    start, end, m = timing.start[k], timing.end[k], len(drafts)
    duration = end - start
    chars = drafts[k].chars
    cps = chars * 1000 / duration
    short = duration < rules.min_duration_ms
    fast = cps > rules.max_cps
    first = min(max(drafts[k].speech_start, window[0]), window[1] - rules.min_gap_ms)
    out = []
    # Only where the words are crammed together does a cue start off its first word.
    if start - first > 3 * rules.frame_ms:
        out.append(
            f"starts {(start - first) / 1000:.2f} s after its first word: the speech is too dense here"
        )
    if first - start > rules.max_shift_ms:
        out.append(
            f"starts {(first - start) / 1000:.2f} s before its first word: the speech is too dense here"
        )
    if k and rules.min_gap_ms < start - timing.end[k - 1] <= rules.close_gap_ms:
        out.append(
            f"follows the subtitle before after {start - timing.end[k - 1]} ms, a gap that should be closed "
            f"to {rules.min_gap_ms} ms, but neither can be stretched further"
        )
    if not (short or fast):
        return out
    gap = rules.min_gap_ms
    limits = []
    if k + 1 < m and end >= timing.start[k + 1] - gap:
        limits.append("the next subtitle follows at once")
    if k + 1 == m and end >= window[1] - gap:
        limits.append("the statement's picture ends")
    if end >= drafts[k].speech_end + rules.max_shift_ms:
        limits.append(f"it stays up {rules.max_shift_ms / 1000:g} s after the speech already")
    if k and start <= timing.end[k - 1] + gap:
        limits.append("the subtitle before ends just before it")
    if not k and start <= window[0]:
        limits.append("the statement's picture starts")
    if start <= drafts[k].speech_start - rules.max_shift_ms:
        limits.append(f"it starts {rules.max_shift_ms / 1000:g} s before the speech already")
    if duration >= rules.max_duration_ms:
        limits.append(f"it is up for the {rules.max_duration_ms / 1000:g} s maximum")
    why = f" (no room to lengthen it: {'; '.join(limits)})" if limits else ""
    if fast:
        out.append(f"speech faster than {rules.max_cps:g} cps can show: {cps:.1f} cps{why}")
    if short:
        out.append(
            f"shown {duration / 1000:.2f} s, shorter than the {rules.min_duration_ms / 1000:g} s minimum{why}"
        )
    return out


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


def build_statement_cues(
    words: Sequence[Word], window: tuple[int, int], rules: SubtitleRules, statement_id: str | None
) -> tuple[Cue, ...]:
    """One statement's cues, timed in the clip and all inside ``window`` (clip ms, start and end).

    Every word appears in exactly one cue, in order; words outside the window are shown at its edge.
    Raises ValueError when there are words but the window cannot show even one frame.
    """
    tokens = _tokens(words)
    if not tokens:
        return ()
    w0, w1 = window
    if w1 - w0 < rules.min_gap_ms + min(rules.frame_ms, rules.min_duration_ms):
        raise ValueError(f"window {window} is too short to show subtitles for statement {statement_id}")
    drafts = _group(tokens, window, rules)
    timing = _place(drafts, window, rules)
    crammed = False
    while timing is None:
        # The window cannot show every cue for a frame: let the two shortest neighbours share one.
        crammed = True
        pair = min(range(len(drafts) - 1), key=lambda k: drafts[k].chars + drafts[k + 1].chars)
        merged = _draft(drafts[pair].tokens + drafts[pair + 1].tokens, rules)
        drafts[pair : pair + 2] = [merged]
        timing = _place(drafts, window, rules)
    cues = []
    for k, draft in enumerate(drafts):
        warnings = _layout_warnings(draft.layout, rules) + _timing_warnings(k, drafts, timing, window, rules)
        if crammed:
            warnings.append("the statement's picture is too short for its words; cues were joined")
        cues.append(
            Cue(
                start_ms=timing.start[k],
                end_ms=timing.end[k],
                lines=draft.layout.lines,
                kind="speech",
                statement_id=statement_id,
                warnings=tuple(warnings),
            )
        )
    return tuple(cues)


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


def _clock(ms: int) -> str:
    ms = max(ms, 0)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


@dataclass(frozen=True)
class RuleBreak:
    """One cue breaking one of the form's subtitle rules (STANDARDS.md "Subtitles").

    ``rule`` is the check's name for it (``subtitles.gap``); ``severity`` "fail" breaks the form, "warn"
    is worth a look; ``kind`` is the short label the check counts by; ``detail`` names the cue.
    """

    rule: str
    severity: Literal["fail", "warn"]
    kind: str
    cue: int  # 1-based, in the order given
    detail: str


def cue_name(n: int, cue: Cue) -> str:
    text = cue.text if len(cue.text) <= 32 else cue.text[:31] + "…"
    return f"subtitle {n} at {_clock(cue.start_ms)} {text!r}"


def rule_breaks(cues: Sequence[Cue], rules: SubtitleRules, clip_ms: int) -> list[RuleBreak]:
    """Every rule of the form the cues break, in one place for the builder, a person's edits and the
    check of the delivered files. A cue read too fast is a "fail" here; the check, which knows where the
    words are spoken, may find that no legal timing could do better and call it a "warn"."""
    breaks: list[RuleBreak] = []

    def hit(rule: str, severity: Literal["fail", "warn"], kind: str, n: int, detail: str) -> None:
        breaks.append(RuleBreak(rule, severity, kind, n, detail))

    gap = rules.min_gap_ms
    for n, cue in enumerate(cues, 1):
        name = cue_name(n, cue)
        if n > 1:
            before = cues[n - 2]
            between = cue.start_ms - before.end_ms
            if cue.start_ms < before.start_ms:
                hit("subtitles.order", "fail", "out of order", n, f"{name} starts before subtitle {n - 1}")
            elif between < 0:
                hit(
                    "subtitles.overlap", "fail", "overlapping", n,
                    f"{name} starts {-between} ms before subtitle {n - 1} ends",
                )  # fmt: skip
            elif between < gap:
                hit(
                    "subtitles.gap",
                    "fail",
                    f"below {gap} ms",
                    n,
                    f"{name}: {between} ms after subtitle {n - 1}",
                )
            elif gap < between <= rules.close_gap_ms:
                hit(
                    "subtitles.gap", "warn", f"up to {rules.close_gap_ms / 1000:g} s, not closed", n,
                    f"{name}: {between} ms after subtitle {n - 1}; gaps up to "
                    f"{rules.close_gap_ms / 1000:g} s are usually closed to {gap} ms",
                )  # fmt: skip
        if cue.end_ms <= cue.start_ms:
            hit(
                "subtitles.end_after_start",
                "fail",
                "end before they start",
                n,
                f"{name} ends at {_clock(cue.end_ms)}",
            )
        if cue.start_ms < 0 or cue.end_ms > clip_ms:
            hit(
                "subtitles.inside_clip", "fail", "outside", n,
                f"{name} ends at {_clock(cue.end_ms)}" if cue.start_ms >= 0 else f"{name} starts before 0",
            )  # fmt: skip
        if not cue.lines or any(not line.strip() for line in cue.lines):
            hit("subtitles.lines", "fail", "empty", n, f"{name} has an empty line")
        elif len(cue.lines) > rules.max_lines:
            hit("subtitles.lines", "fail", f"over {rules.max_lines}", n, f"{name} has {len(cue.lines)} lines")
        for number, line in enumerate(cue.lines, 1):
            if len(line) > rules.max_chars_per_line:
                hit(
                    "subtitles.chars_per_line", "fail", f"over {rules.max_chars_per_line}", n,
                    f"{name}, line {number}: {len(line)} characters",
                )  # fmt: skip
            elif len(line) > rules.warn_chars_per_line:
                hit(
                    "subtitles.chars_per_line", "warn", f"above {rules.warn_chars_per_line}", n,
                    f"{name}, line {number}: {len(line)} characters",
                )  # fmt: skip
        if cue.end_ms <= cue.start_ms:
            continue
        seconds = f"{cue.duration_ms / 1000:.3f} s"
        if cue.duration_ms < rules.min_duration_ms:
            hit("subtitles.min_duration", "fail", "too short", n, f"{name}: {seconds}")
        if cue.duration_ms > rules.max_duration_ms:
            hit("subtitles.max_duration", "fail", "too long", n, f"{name}: {seconds}")
        if cue.cps > rules.max_cps + 1e-9:
            hit(
                "subtitles.reading_speed", "fail", f"above {rules.max_cps:g}", n,
                f"{name}: {cue.cps:.2f} characters/s",
            )  # fmt: skip
        elif cue.cps > rules.warn_cps + 1e-9:
            hit(
                "subtitles.reading_speed", "warn", f"above {rules.warn_cps:g}", n,
                f"{name}: {cue.cps:.2f} characters/s",
            )  # fmt: skip
    return breaks


def rule_titles(rules: SubtitleRules, clip_ms: int | None = None) -> dict[str, tuple[str, str]]:
    """Each rule's name in words and what it asks for, as the check's report and the warnings say it."""
    return {
        "subtitles.order": ("subtitles in time order", "each starts after the one before"),
        "subtitles.end_after_start": ("each subtitle ends after it starts", "end > start"),
        "subtitles.overlap": ("no two subtitles at once", "no overlap"),
        "subtitles.gap": (
            "gap between subtitles",
            f"≥ {rules.min_gap_ms} ms; gaps up to {rules.close_gap_ms / 1000:g} s closed",
        ),
        "subtitles.inside_clip": (
            "subtitles within the clip",
            f"00:00:00,000 – {_clock(clip_ms)}" if clip_ms is not None else "within the clip",
        ),
        "subtitles.lines": ("lines per subtitle", f"≤ {rules.max_lines}"),
        "subtitles.chars_per_line": (
            "characters per line",
            f"≤ {rules.max_chars_per_line} (note above {rules.warn_chars_per_line})",
        ),
        "subtitles.reading_speed": (
            "reading speed",
            f"≤ {rules.max_cps:g} characters/s (note above {rules.warn_cps:g})",
        ),
        "subtitles.min_duration": ("shortest time on screen", f"≥ {rules.min_duration_ms / 1000:g} s"),
        "subtitles.max_duration": ("longest time on screen", f"≤ {rules.max_duration_ms / 1000:g} s"),
    }


# What a person or the builder is told about: what breaks the form, and gaps left open that the form
# would close. Mild notes (a long line, a fast but legal pace) are left to the check's report.
_TOLD = {"subtitles.gap"}


def validate(cues: Sequence[Cue], rules: SubtitleRules, clip_ms: int) -> list[str]:
    """Every rule of the form the cues break, one readable line each naming the rule and its limit;
    empty when all is well."""
    titles = rule_titles(rules, clip_ms)
    return [
        f"{b.detail} ({titles[b.rule][0]} {titles[b.rule][1]})"
        for b in rule_breaks(cues, rules, clip_ms)
        if b.severity == "fail" or b.rule in _TOLD
    ]


# ----------------------------------------------------------------------------------------------- files


def _subs(cues: Sequence[Cue], line_text: Callable[[str], str]) -> pysubs2.SSAFile:
    subs = pysubs2.SSAFile()
    for cue in cues:
        subs.append(
            pysubs2.SSAEvent(start=cue.start_ms, end=cue.end_ms, text="\\N".join(map(line_text, cue.lines)))
        )
    return subs


def _same(line: str) -> str:
    return line


def _escape_vtt(line: str) -> str:
    # WebVTT cue text is markup: these three must be written as character references.
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _escape_ass(line: str) -> str:
    # Braces open override tags and a backslash starts an escape in ASS; show look-alikes instead.
    return line.replace("\\", "\u2216").replace("{", "(").replace("}", ")")


def to_srt(cues: Sequence[Cue]) -> str:
    """SubRip: blocks numbered from 1, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``, one text line per line."""
    # keep_ssa_tags: the text is plain, so pysubs2 must not read braces in it as styling.
    return _subs(cues, _same).to_string("srt", keep_ssa_tags=True)


def to_vtt(cues: Sequence[Cue]) -> str:
    """WebVTT: the ``WEBVTT`` header, then blocks timed ``hh:mm:ss.ttt``."""
    return _subs(cues, _escape_vtt).to_string("vtt", keep_ssa_tags=True)


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


def _cues_from(subs: pysubs2.SSAFile, unescape: Callable[[str], str]) -> list[Cue]:
    cues = []
    for event in subs.events:
        if event.is_comment:
            continue
        text = re.sub(r"\{\\[^}]*\}", "", event.text)  # styling pysubs2 made of <i> and the like
        text = text.replace("\\h", " ").replace("\\n", "\n").replace("\\N", "\n")
        lines = tuple(unescape(line).strip() for line in text.split("\n"))
        cues.append(Cue(event.start, event.end, lines))
    return cues


def parse_srt(text: str) -> list[Cue]:
    # SubRip has no escapes: "<" in speech is text, except the few tags SubRip players know.
    subs = pysubs2.SSAFile.from_string(text, format_="srt", keep_unknown_html_tags=True)
    return _cues_from(subs, _same)


def parse_vtt(text: str) -> list[Cue]:
    return _cues_from(pysubs2.SSAFile.from_string(text, format_="vtt"), html.unescape)
