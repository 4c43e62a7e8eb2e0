"""Cards: the opening title card and the short card before each statement.

The pure core (``opening_card``, ``statement_card``, ``layout``) decides what a card says and where each
line goes; ``render_png`` draws it with moviepy (the package the organisers asked for) in the font of
``pipeline.fonts``, the same one the burned-in subtitles use. A speaker's name appears on a card only
where the form shows names and the speaker consented to ``name_on_screen``; ``Card.caption`` repeats
what the card says about the speaker, for viewers who cannot see it (WCAG 1.2.5).
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pipeline import escape, texts
from pipeline.config import Form
from pipeline.files import atomic_path
from pipeline.fonts import font_identity, font_path
from pipeline.meeting_facts import MeetingFacts
from pipeline.models import Statement
from pipeline.texts.documents import KIND, danish_date

if TYPE_CHECKING:
    from PIL.ImageFont import FreeTypeFont

VERSION = 1

TITLE_FALLBACK = KIND

# Calm and official: dark blue-grey, white bold heading, lighter sub-lines, one quiet accent rule.
BACKGROUND = (0x1F, 0x2D, 0x3D)
HEADING_COLOUR = "#ffffff"
LINE_COLOUR = "#c8d3df"
ACCENT = (0x6F, 0x9F, 0xCF)

# Everything is measured in "units" of the frame height (of a 16:9 frame as wide as this one, so a
# portrait frame does not get letters too wide for it): 1280x720 and 1920x1080 look alike.
SAFE = 0.05  # graphics-safe area: 90 % of width and height
COLUMN = 0.10  # text column starts (and ends) this far in from the edges, well inside the safe area
HEADING_SIZE = 0.072
LINE_SIZE = 0.044
HEADING_MAX_LINES = 3
LINE_MAX_LINES = 2
SMALLEST = 0.7  # a long text may shrink to this share of its size before it is shortened with "…"


@dataclass(frozen=True)
class Card:
    kind: Literal["title", "statement"]
    heading: str
    lines: tuple[str, ...]
    duration_ms: int
    statement_id: str | None
    caption: str | None  # what the card says about the speaker, for the captions; None: names no one


# ------------------------------------------------------------------------------------------ pure core


def _clean(value: object) -> str | None:
    # One line (a line break inside a value would break the card's own line structure), composed (NFC),
    # so a letter typed as a letter and its accents is measured and never cut as one, and no pile of
    # accents that would draw over the other lines. A direction override it opens ends with it, so it
    # cannot turn around the rest of its line.
    text = escape.one_line(unicodedata.normalize("NFC", str(value))) if value is not None else ""
    return escape.bidi_closed(escape.few_marks(text)) or None


def title_values(meeting: MeetingFacts) -> dict[str, str | None]:
    """The values for the title card's placeholders; None where meeting.yaml does not say."""
    return {
        # Cleaned before the fallback: a title of nothing but control characters gives way to the folder's.
        "title": _clean(meeting.given_title) or _clean(meeting.folder_name),
        "date": danish_date(meeting.date) if meeting.date else None,
        "place": _clean(meeting.place),
        "committee": _clean(meeting.committee),
        "organiser": _clean(meeting.organiser),
    }


_SEPARATOR = re.compile(r"(\s*[·|–—,]\s*)")


def fill_template_line(line: str, values: Mapping[str, str | None]) -> str | None:
    """One line of the title card's template, filled in.

    A part of the line (between separators such as " · ") that needs a value the meeting lacks is left
    out with its separator and its own words, so "Til {committee}" never shows as a bare "Til". A line
    left with nothing is None; a line without placeholders always stays.
    """
    pieces = _SEPARATOR.split(line)
    kept: list[tuple[str, str]] = []  # (separator before it, filled part)
    had_fields = False
    for index in range(0, len(pieces), 2):
        separator = pieces[index - 1] if index else ""
        filled = _fill_part(pieces[index], values)
        if filled is None:
            had_fields = True
            continue
        text, used_fields = filled
        had_fields = had_fields or used_fields
        if text.strip():
            kept.append((separator if kept else "", text))
    result = "".join(sep + text for sep, text in kept).strip()
    if not result:
        return None if had_fields else (line.strip() or None)
    return result


def _fill_part(part: str, values: Mapping[str, str | None]) -> tuple[str, bool] | None:
    out = []
    used = False
    for literal, name, _spec, _conversion in string.Formatter().parse(part):
        out.append(literal)
        if name is None:
            continue
        used = True
        value = values.get(name)
        if value is None:
            return None
        out.append(value)
    return "".join(out), used


def opening_card(meeting: MeetingFacts, form: Form) -> Card | None:
    """The opening card, from the form's template; None when the form has no title card."""
    settings = form.clip.title_card
    if not settings.enabled:
        return None
    values = title_values(meeting)
    lines = [
        filled
        for line in settings.text.splitlines()
        if (filled := fill_template_line(line, values)) is not None
    ]
    heading, *rest = lines or [TITLE_FALLBACK]
    return Card(
        kind="title",
        heading=heading,
        lines=tuple(rest),
        duration_ms=round(settings.seconds * 1000),
        statement_id=None,
        caption=None,
    )


def shows_name(statement: Statement, form: Form) -> bool:
    return bool(
        form.clip.statement_cards.show_name and statement.consent.name_on_screen and _clean(statement.speaker)
    )


def statement_card(statement: Statement, number: int, form: Form) -> Card | None:
    """The card before statement ``number`` (1-based, in clip order); None when the form has none."""
    return statement_picture(statement, number, form) if form.clip.statement_cards.enabled else None


def statement_picture(statement: Statement, number: int, form: Form) -> Card:
    """The statement's card as a picture: shown before it, and under the whole of an audio-only
    statement, which needs something to show even where the form switches cards off."""
    settings = form.clip.statement_cards
    name = _clean(statement.speaker) if shows_name(statement, form) else None
    group = _clean(statement.group)
    lines = tuple(text for text in (name, group) if text)
    return Card(
        kind="statement",
        heading=_clean(statement.topic) or texts.statement_label(number, None),
        lines=lines,
        duration_ms=round(settings.seconds * 1000),
        statement_id=statement.id,
        caption=", ".join(lines) if name else None,
    )


def card_key(card: Card, width: int, height: int) -> str:
    """Cache identity of a rendered card: its fields, the frame, the font files and this code."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(package: str) -> str:
        try:
            return version(package)
        except PackageNotFoundError:
            return "absent"

    from pipeline import cache

    drawn = {k: v for k, v in asdict(card).items() if k != "statement_id"}
    return cache.make_key(
        "cards",
        VERSION,
        # What is drawn: not which statement it belongs to, which `hearing watch` may number otherwise.
        {"card": drawn, "size": [width, height], "font": font_identity()},
        # The text drawing lives in moviepy and Pillow; an upgrade may move pixels.
        tools={"moviepy": installed("moviepy"), "pillow": installed("pillow")},
    )


# ------------------------------------------------------------------------------------------- layout


def _longest(limit: int, fits: Callable[[int], bool]) -> int:
    """The largest n in 0..``limit`` with ``fits(n)`` (``fits`` true up to some n, false after it; 0 is
    taken to fit). Searched by doubling, then halving: O(log n) calls, none asking about more than twice
    the answer, so the cost follows what fits on a line, not the length of the text."""
    low, high = 0, 1
    while high <= limit and fits(high):
        low, high = high, high * 2
    high = min(high, limit + 1)  # high does not fit, or lies beyond the text
    while high - low > 1:
        middle = (low + high) // 2
        if fits(middle):
            low = middle
        else:
            high = middle
    return low


def _fitting(
    text: str, start: int, limit: int, measure: Callable[[str], float], max_width: float, suffix: str = ""
) -> int:
    """How many characters of ``text`` from ``start`` (at most ``limit``), followed by ``suffix``, fit in
    ``max_width``."""

    def fits(n: int) -> bool:
        return measure(text[start : start + n] + suffix) <= max_width

    return _longest(limit, fits)


def wrap(
    text: str, measure: Callable[[str], float], max_width: float, max_lines: int | None = None
) -> list[str]:
    """Greedy word wrap; a word wider than the column is split with a hyphen rather than overflow.

    With ``max_lines``, it stops once it has more lines than that: what comes after can never be shown.
    Linear in the length of the text: a long word is cut a line at a time, each line found by measuring
    a few strings about as long as the line (``_longest``), never the rest of the word again and again.
    """
    lines: list[str] = []
    current = ""

    def full() -> bool:
        return max_lines is not None and len(lines) > max_lines

    for word in text.split():
        candidate = f"{current} {word}" if current else word
        if measure(candidate) <= max_width:
            current = candidate
            continue
        if current:
            lines.append(current)
            current = ""
            if full():
                return lines
        start = 0
        while (rest := len(word) - start) > _fitting(word, start, rest, measure, max_width):
            cut = max(1, _fitting(word, start, rest - 1, measure, max_width, "-"))
            # Between letters as a reader sees them: never a combining mark or half an emoji alone.
            end = escape.cut_point(word, start + cut, start)
            lines.append(word[start:end] + "-")
            start = end
            if full():
                return lines
        current = word[start:]
    if current:
        lines.append(current)
    return lines or [""]


def _shorten(
    lines: list[str], max_lines: int, measure: Callable[[str], float], max_width: float
) -> list[str]:
    kept = lines[:max_lines]
    last = kept[-1]

    def fits(n: int) -> bool:
        return measure(last[:n].rstrip(" -") + escape.ELLIPSIS) <= max_width

    kept[-1] = last[: escape.cut_point(last, _longest(len(last), fits))].rstrip(" -") + escape.ELLIPSIS
    return kept


@dataclass(frozen=True)
class TextBlock:
    """One block of text as drawn: the box's top-left corner and size in frame pixels."""

    text: str  # lines joined by "\n"
    bold: bool
    colour: str
    font_size: int
    interline: int  # extra pixels between lines (Pillow's spacing)
    x: int
    y: int  # top of the box = first baseline minus the font's ascent
    width: int
    height: int  # ascent + (lines - 1) * line pitch + descent: every glyph fits inside

    @property
    def line_count(self) -> int:
        return self.text.count("\n") + 1


@dataclass(frozen=True)
class Rule:
    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class CardLayout:
    width: int
    height: int
    blocks: tuple[TextBlock, ...]
    rule: Rule | None
    shortened: bool  # a text was too long even for the smallest size and ends in "…": worth a warning

    @property
    def safe_box(self) -> tuple[int, int, int, int]:
        """left, top, right, bottom of the graphics-safe area (right and bottom exclusive)."""
        return (
            round(self.width * SAFE),
            round(self.height * SAFE),
            self.width - round(self.width * SAFE),
            self.height - round(self.height * SAFE),
        )


@cache
def _font(bold: bool, size: int) -> FreeTypeFont:
    from PIL import ImageFont

    return ImageFont.truetype(str(font_path(bold)), size)


def _metrics(bold: bool, size: int, interline: int) -> tuple[int, int, int]:
    """ascent, descent, line pitch as Pillow draws multi-line text."""
    font = _font(bold, size)
    ascent, descent = font.getmetrics()
    pitch = int(font.getbbox("A")[3]) + interline
    return ascent, descent, pitch


def _measure(bold: bool, size: int) -> Callable[[str], float]:
    """The width of a text in pixels, as Pillow draws it (the one measure of the layout)."""
    return _font(bold, size).getlength


def _fit(text: str, bold: bool, size: int, max_lines: int, max_width: int) -> tuple[list[str], int, bool]:
    """The lines and font size for ``text``, and whether it had to be shortened with "…".

    A long text first shrinks a little; only what still does not fit in ``max_lines`` is shortened. A
    size at which no word has to be split is preferred: a hyphen in the middle of a word reads badly.
    A few sizes are tried, each in time linear in the length of the text.
    """
    smallest = max(8, round(size * SMALLEST))
    trials = range(size, smallest - 1, -max(1, round(size * 0.05)))
    for split_words in (False, True):
        for trial in trials:
            measure = _measure(bold, trial)
            if not split_words and any(
                _fitting(word, 0, len(word), measure, max_width) < len(word) for word in text.split()
            ):
                continue
            lines = wrap(text, measure, max_width, max_lines)
            if len(lines) <= max_lines:
                return lines, trial, False
    measure = _measure(bold, smallest)
    lines = wrap(text, measure, max_width, max_lines)
    if len(lines) <= max_lines:
        return lines, smallest, False
    return _shorten(lines, max_lines, measure, max_width), smallest, True


def layout(card: Card, width: int, height: int) -> CardLayout:
    """Where each line of ``card`` goes on a ``width`` x ``height`` frame (needs the font, not moviepy)."""
    unit = min(height, width * 9 / 16)
    left = round(width * COLUMN)
    column = width - 2 * left
    safe_top, safe_bottom = round(height * SAFE), height - round(height * SAFE)

    for scale in (1.0, 0.9, 0.8, 0.7, 0.6):
        heading_size = max(8, round(unit * HEADING_SIZE * scale))
        line_size = max(8, round(unit * LINE_SIZE * scale))
        parts: list[tuple[str, bool, str, int, int, int]] = []  # text, bold, colour, size, interline, gap
        # What the font cannot draw shows as "�" rather than an empty box.
        lines, size, shortened = _fit(
            escape.font_text(card.heading), True, heading_size, HEADING_MAX_LINES, column
        )
        parts.append(("\n".join(lines), True, HEADING_COLOUR, size, round(size * 0.22), 0))
        for index, line in enumerate(card.lines):
            wrapped, size, cut = _fit(escape.font_text(line), False, line_size, LINE_MAX_LINES, column)
            shortened = shortened or cut
            # The first sub-line sits below the rule; the others a little apart from each other.
            gap = round(unit * 0.075 * scale) if index == 0 else round(size * 0.45)
            parts.append(("\n".join(wrapped), False, LINE_COLOUR, size, round(size * 0.2), gap))

        heights = []
        for text, bold, _colour, size, interline, _gap in parts:
            ascent, descent, pitch = _metrics(bold, size, interline)
            heights.append(ascent + text.count("\n") * pitch + descent)
        total = sum(heights) + sum(part[5] for part in parts)
        if total <= (safe_bottom - safe_top) * 0.9 or scale == 0.6:
            break

    # A touch above the middle looks centred to the eye; never above the safe area.
    top = max(safe_top, round((height - total) * 0.46))
    blocks = []
    rule = None
    y = top
    for (text, bold, colour, size, interline, gap), box_height in zip(parts, heights, strict=True):
        y += gap
        blocks.append(TextBlock(text, bold, colour, size, interline, left, y, column, box_height))
        y += box_height
    if len(blocks) > 1:
        # The rule sits in the middle of the gap between the heading and the first sub-line.
        thickness = max(2, round(unit * 0.005))
        gap = blocks[1].y - (blocks[0].y + blocks[0].height)
        rule_y = blocks[0].y + blocks[0].height + (gap - thickness) // 2
        rule = Rule(left, rule_y, round(unit * 0.12), thickness)
    return CardLayout(width, height, tuple(blocks), rule, shortened)


# ------------------------------------------------------------------------------------------- render


def text_clip(block: TextBlock) -> tuple[Any, int]:
    """A moviepy TextClip of ``block``, with a transparent margin all round.

    moviepy 2.2.1 sizes a caption box by the ink of the text, but draws from the font's ascent, so the
    bottom of the last line is cut off (PITFALLS.md). Giving the box's full height (ascent, line pitches,
    descent), aligning to the top and adding a margin keeps every descender whole. Returns the clip and
    the margin, so the caller can put the box (not the margin) where the layout says.
    """
    from moviepy import TextClip

    margin = max(2, round(block.font_size * 0.25))
    clip = TextClip(
        font=str(font_path(block.bold)),
        text=block.text,
        font_size=block.font_size,
        color=block.colour,
        # "label", not "caption": the lines are wrapped already, and moviepy's own wrapping measures the
        # whole text again for every character (quadratic in the length of a line).
        method="label",
        # Wider than the column by the margin, so no letter touches the edge of the box.
        size=(block.width + margin, block.height),
        margin=(margin, margin, margin, margin),
        interline=block.interline,
        text_align="left",
        horizontal_align="left",
        vertical_align="top",
        transparent=True,
    )
    return clip, margin


def render_frame(card: Card, width: int, height: int) -> Any:
    """The card as an RGB numpy array (height x width x 3, uint8)."""
    from moviepy import ColorClip, CompositeVideoClip

    plan = layout(card, width, height)
    layers = [ColorClip(size=(width, height), color=BACKGROUND, duration=1)]
    if plan.rule is not None:
        rule = plan.rule
        layers.append(
            ColorClip(size=(rule.width, rule.height), color=ACCENT, duration=1).with_position(
                (rule.x, rule.y)
            )
        )
    for block in plan.blocks:
        clip, margin = text_clip(block)
        layers.append(clip.with_duration(1).with_position((block.x - margin, block.y - margin)))
    composite = CompositeVideoClip(layers, size=(width, height))
    try:
        return composite.get_frame(0).astype("uint8")
    finally:
        composite.close()


def render_png(card: Card, width: int, height: int, target: Path) -> None:
    """Draw ``card`` on a ``width`` x ``height`` frame and write it to ``target`` as PNG, atomically."""
    from PIL import Image

    frame = render_frame(card, width, height)
    image = Image.fromarray(frame)
    with atomic_path(target) as temp:
        image.save(temp, format="PNG")
