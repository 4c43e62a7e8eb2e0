"""Line breaking: the lines a cue's words are shown in, by the form's rules and docs/standards.md.

``break_lines`` lays out a cue's text; ``lay_out`` does so for the units (words, or parts of a word split
hard) the cue builder in ``pipeline.stages.subtitles.cues`` weighs, with what the breaks cost. The cost
of a break by its kind (``break_cost``) is shared with the cue builder, which ends cues where lines would
break well.

Decisions where the standards are silent:

- A word longer than a line (a web address read aloud) is split hard, without a hyphen (a hyphen would
  change an address), at ``max_chars_per_line``; the cue builder gives it a cue of its own, with a warning.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.stages.subtitles.rules import SubtitleRules, clean_text


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


@dataclass(frozen=True)
class Unit:
    """A piece of text that a line may break before: a word, or part of a word split hard."""

    text: str
    glued: bool = False  # no space before it (the rest of a word split hard)


def _bare(text: str) -> str:
    return text.strip("\"'“”‘’«»()[]{}.,!?;:…–—-")


def ends_with(text: str, marks: str) -> bool:
    stripped = text.rstrip(CLOSING)
    return bool(stripped) and stripped[-1] in marks


def _is_name_part(text: str) -> bool:
    bare = _bare(text)
    return bool(bare) and bare[0].isupper() and not ends_with(text, SENTENCE_END + CLAUSE_END)


def break_cost(before: Unit, after: Unit) -> float:
    """What breaking a line (or a cue) between two units costs; docs/standards.md "line breaks"."""
    if after.glued:
        return COST_HARD_SPLIT
    if ends_with(before.text, SENTENCE_END):
        return COST_SENTENCE
    if ends_with(before.text, CLAUSE_END):
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


def units_of(text: str) -> list[Unit]:
    return [Unit(part) for part in text.split(" ") if part]


def _split_long_units(units: Sequence[Unit], max_chars: int) -> list[Unit]:
    out: list[Unit] = []
    for unit in units:
        if len(unit.text) <= max_chars:
            out.append(unit)
            continue
        chunks = [unit.text[i : i + max_chars] for i in range(0, len(unit.text), max_chars)]
        out.append(Unit(chunks[0], unit.glued))
        out.extend(Unit(chunk, glued=True) for chunk in chunks[1:])
    return out


def _line_text(units: Sequence[Unit]) -> str:
    return "".join(("" if i == 0 or u.glued else " ") + u.text for i, u in enumerate(units))


def _lines_needed(units: Sequence[Unit], max_chars: int) -> int | None:
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


def units_fit(units: Sequence[Unit], max_lines: int, max_chars: int) -> bool:
    needed = _lines_needed(units, max_chars)
    return needed is not None and needed <= max_lines


@dataclass(frozen=True)
class Layout:
    lines: tuple[str, ...]
    cost: float
    hard_split: bool  # a word longer than a line was split
    overflow: bool  # more lines than allowed were needed


def break_lines(text: str, rules: SubtitleRules) -> tuple[str, ...]:
    """The lines a cue of ``text`` is shown in: one line when it fits, else the best allowed breaks."""
    return lay_out(units_of(clean_text(text)), rules.max_lines, rules.max_chars_per_line).lines


def lay_out(units: Sequence[Unit], max_lines: int, max_chars: int) -> Layout:
    """The fewest lines that hold the units; among those, the cheapest breaks and the most even lines."""
    return _layout_of(tuple(units), max_lines, max_chars)


# The cue builder tries the same runs of words again and again (every cue it weighs, and the clip is
# planned more than once a run): remembered, they are laid out once.
@functools.lru_cache(maxsize=1 << 14)
def _layout_of(units: tuple[Unit, ...], max_lines: int, max_chars: int) -> Layout:
    split = _split_long_units(units, max_chars)
    hard_split = len(split) != len(units)
    n = len(split)
    if n == 0:
        return Layout((), 0.0, False, False)
    # starts[j]: the length of split[:j] written on one line
    starts = [0] * (n + 1)
    for i, unit in enumerate(split):
        starts[i + 1] = starts[i] + len(unit.text) + (0 if i == 0 or unit.glued else 1)

    def length(i: int, j: int) -> int:
        return starts[j] - starts[i] - (0 if i == 0 or split[i].glued else 1)

    count = _lines_needed(split, max_chars)
    assert count is not None  # every unit fits a line once long words are split
    costs = [0.0] + [break_cost(split[k - 1], split[k]) for k in range(1, n)]
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
    return Layout(texts, cost, hard_split, count > max_lines)
