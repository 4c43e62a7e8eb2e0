"""Cards: what they say (consent, missing meeting fields, Danish dates) and how they look when rendered.

The renders are real (moviepy, the shipped DejaVu Sans) and are kept in test-output/cards/ to be looked
at. The pitfall they guard against: moviepy 2.2.1 cuts off the bottom of the last line of a caption.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw
from test_escaping import HOSTILE

from pipeline import escape
from pipeline.config import Form, Meeting, load_form, load_meeting
from pipeline.errors import MissingToolError
from pipeline.fonts import FONT_NAME, font_identity, font_path, fonts_dir
from pipeline.meeting_facts import MeetingFacts
from pipeline.models import Consent, MediaProbe, Recording, Statement
from pipeline.stages import cards
from pipeline.stages.cards import Card, card_key, layout, opening_card, render_png, statement_card, text_clip

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "test-output" / "cards"
SAMPLE = REPO / "samples" / "borgermoede-nordby"
SIZES = [(1280, 720), (1920, 1080)]
LONG_TOPIC = (
    "Gadebelysning på stien fra Skolevej til stationen, og en sikker skolevej for børnene i hele Nordby"
)


def form_with(**clip: object) -> Form:
    return Form.model_validate({"clip": clip})


def statement(
    speaker: str | None = "Søren Ærø Østergård",
    group: str | None = "Bordgruppe 1",
    topic: str | None = "Cykelsti langs Åvej",
    name_on_screen: bool = True,
) -> Statement:
    return Statement(
        id="s02",
        recording=Recording("recordings/02-soeren.mov", 1, "0" * 64),
        probe=MediaProbe("mov", 10_000, None, ()),
        audio_stream=0,
        speaker=speaker,
        group=group,
        topic=topic,
        consent=Consent(name_on_screen=name_on_screen),
        trim_ms=None,
    )


# ------------------------------------------------------------------------------------------ the font


def test_font_ships_with_the_install_not_the_machine() -> None:
    assert FONT_NAME == "DejaVu Sans"
    assert font_path().name == "DejaVuSans.ttf"
    assert font_path(bold=True).name == "DejaVuSans-Bold.ttf"
    assert font_path().parent == fonts_dir()
    assert "matplotlib" in fonts_dir().parts
    assert font_identity().startswith("DejaVu Sans:")


def test_missing_font_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline import fonts

    fonts.fonts_dir.cache_clear()
    monkeypatch.setattr(fonts.importlib.util, "find_spec", lambda name: None)
    try:
        with pytest.raises(MissingToolError, match="pip install 'matplotlib") as caught:
            fonts.font_path()
        assert caught.value.exit_code == 4
    finally:
        fonts.fonts_dir.cache_clear()


# ------------------------------------------------------------------------------------ what cards say


def test_title_card_of_the_demo_meeting() -> None:
    meeting, _ = load_meeting(SAMPLE)
    form, _ = load_form("demo")
    card = opening_card(MeetingFacts.named(meeting, "borgermoede-nordby"), form)
    assert card == Card(
        kind="title",
        heading="Høringssvar fra borgermødet",
        lines=(
            "Borgermøde om trafiksikkerhed i Nordby",
            "20. november 2026 · Nordby Forsamlingshus",
            "Til Teknik- og Miljøudvalget",
        ),
        duration_ms=3000,
        statement_id=None,
        caption=None,
    )


def test_title_card_leaves_out_what_the_meeting_does_not_say() -> None:
    form = Form()
    card = opening_card(MeetingFacts.named(Meeting(date=dt.date(2027, 1, 5)), "moede-i-nordby"), form)
    assert card is not None
    # No place: no dangling "·"; no committee: no bare "Til"; no title: the folder's name.
    assert card.lines == ("moede-i-nordby", "5. januar 2027")
    card = opening_card(MeetingFacts.named(Meeting(title="Møde", place="Hallen"), "x"), form)
    assert card is not None
    assert card.lines == ("Møde", "Hallen")
    assert not any(line.strip().startswith(("·", "Til")) or line.endswith("·") for line in card.lines)


def test_title_card_template_placeholders_and_switch() -> None:
    meeting = Meeting(title="T", organiser="Nordby Lokalråd", committee="Udvalget", date=dt.date(2026, 5, 1))
    text = "{title}\nArrangeret af {organiser} – {date}\nTil {committee}"
    card = opening_card(
        MeetingFacts.named(meeting, "x"),
        form_with(title_card={"enabled": True, "seconds": 2.5, "text": text}),
    )
    assert card is not None
    assert (card.heading, card.lines, card.duration_ms) == (
        "T",
        ("Arrangeret af Nordby Lokalråd – 1. maj 2026", "Til Udvalget"),
        2500,
    )
    assert opening_card(MeetingFacts.named(meeting, "x"), form_with(title_card={"enabled": False})) is None


def test_statement_card_names_the_speaker_only_with_consent() -> None:
    form = Form()
    named = statement_card(statement(), 2, form)
    assert named == Card(
        kind="statement",
        heading="Cykelsti langs Åvej",
        lines=("Søren Ærø Østergård", "Bordgruppe 1"),
        duration_ms=2500,
        statement_id="s02",
        caption="Søren Ærø Østergård, Bordgruppe 1",
    )
    unnamed = statement_card(statement(name_on_screen=False), 2, form)
    assert unnamed is not None
    assert unnamed.lines == ("Bordgruppe 1",)
    assert unnamed.caption is None  # the card names no one, so the captions must not either
    hidden = statement_card(statement(), 2, form_with(statement_cards={"show_name": False}))
    assert hidden is not None
    assert hidden.lines == ("Bordgruppe 1",)
    assert hidden.caption is None


def test_statement_card_without_topic_name_or_group() -> None:
    card = statement_card(statement(speaker=None, group=None, topic=None), 4, Form())
    assert card is not None
    assert (card.heading, card.lines, card.caption) == ("Indlæg 4", (), None)
    card = statement_card(statement(group=None), 1, Form())
    assert card is not None
    assert card.caption == "Søren Ærø Østergård"
    assert statement_card(statement(), 1, form_with(statement_cards={"enabled": False})) is None


def test_card_key_changes_with_what_is_drawn() -> None:
    card = statement_card(statement(), 2, Form())
    assert card is not None
    key = card_key(card, 1280, 720)
    assert key == card_key(card, 1280, 720)
    assert key != card_key(card, 1920, 1080)
    assert key != card_key(replace(card, heading="Cykelsti langs Aavej"), 1280, 720)


def test_a_heading_too_long_for_three_lines_is_shortened_not_cut() -> None:
    card = Card("statement", " ".join([LONG_TOPIC] * 3), (), 2000, "s01", None)
    plan = layout(card, 1280, 720)
    heading = plan.blocks[0]
    assert plan.shortened
    assert heading.line_count == 3
    assert heading.text.endswith("…")
    assert not layout(Card("statement", LONG_TOPIC, (), 2000, "s01", None), 1280, 720).shortened


def test_a_long_word_shrinks_before_it_is_split() -> None:
    word = "Trafiksikkerhedsforanstaltningernes"
    heading = layout(Card("statement", f"{word} økonomi", (), 2000, "s01", None), 1280, 720).blocks[0]
    assert heading.text.split("\n")[0] == word
    assert heading.font_size < round(720 * cards.HEADING_SIZE)
    # Only a word too long for any allowed size is split, with a hyphen, never beyond the column.
    lines = cards.wrap("ab " + "x" * 30, lambda text: 10.0 * len(text), 100)
    assert lines == ["ab", "xxxxxxxxx-", "xxxxxxxxx-", "xxxxxxxxx-", "xxx"]


# ------------------------------------------------------------------------------------- how they look


def reference_ink(text: str, bold: bool, size: int, interline: int) -> tuple[int, int]:
    """Height and width of the ink of ``text`` drawn by Pillow alone on a canvas with room to spare."""
    from PIL import ImageFont

    font = ImageFont.truetype(str(font_path(bold)), size)
    canvas = Image.new("L", (size * 60, size * 12), 0)
    ImageDraw.Draw(canvas).multiline_text((size, size * 2), text, font=font, fill=255, spacing=interline)
    ink = np.asarray(canvas) > 0
    rows, cols = np.where(ink.any(axis=1))[0], np.where(ink.any(axis=0))[0]
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


def ink_mask(frame: np.ndarray) -> np.ndarray:
    return np.any(frame.astype(int) != np.array(cards.BACKGROUND), axis=2)


def demo_cards() -> list[tuple[str, Card]]:
    meeting, _ = load_meeting(SAMPLE)
    form, _ = load_form("demo")
    title = opening_card(MeetingFacts.named(meeting, "borgermoede-nordby"), form)
    soeren = statement_card(statement(), 2, form)
    karen = statement(speaker="Karen Mølgaard", group="Bordgruppe 2", topic=LONG_TOPIC)
    long = statement_card(karen, 3, form)
    assert title and soeren and long
    return [("title", title), ("statement", soeren), ("long-topic", long)]


@pytest.mark.parametrize("name,card", demo_cards(), ids=lambda value: value if isinstance(value, str) else "")
def test_text_blocks_are_whole(name: str, card: Card) -> None:
    # Each block as moviepy draws it alone, against Pillow with room to spare: the same ink, and none
    # on the edges of the box (a cut-off descender shows as ink on the last row).
    for block in layout(card, 1280, 720).blocks:
        clip, margin = text_clip(block)
        alpha = clip.mask.get_frame(0) > 0
        assert not alpha[-1].any() and not alpha[0].any(), (name, block.text)
        assert not alpha[:, 0].any() and not alpha[:, -1].any(), (name, block.text)
        rows, cols = np.where(alpha.any(axis=1))[0], np.where(alpha.any(axis=0))[0]
        drawn = (int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1))
        assert drawn == reference_ink(block.text, block.bold, block.font_size, block.interline), block.text
        # The ink stays inside the box the layout gave it (ascent to descent).
        assert rows[0] >= margin and rows[-1] < margin + block.height


@pytest.mark.parametrize("size", SIZES, ids=lambda size: f"{size[1]}p")
@pytest.mark.parametrize("name,card", demo_cards(), ids=lambda value: value if isinstance(value, str) else "")
def test_render(name: str, card: Card, size: tuple[int, int]) -> None:
    width, height = size
    target = OUT / f"{name}-{height}p.png"
    target.unlink(missing_ok=True)
    render_png(card, width, height, target)

    with Image.open(target) as image:
        assert image.size == (width, height)
        assert image.mode == "RGB"
        frame = np.asarray(image)
    assert not list(OUT.glob(f".{target.name}.*")), "a temporary file was left behind"

    for corner in (frame[0, 0], frame[0, -1], frame[-1, 0], frame[-1, -1]):
        assert tuple(corner) == cards.BACKGROUND
    ink = ink_mask(frame)
    assert ink.sum() > width * height * 0.005, "no text on the card"

    plan = layout(card, width, height)
    left, top, right, bottom = plan.safe_box
    rows, cols = np.where(ink.any(axis=1))[0], np.where(ink.any(axis=0))[0]
    assert rows[0] >= top and rows[-1] < bottom, "text outside the safe area"
    assert cols[0] >= left and cols[-1] < right, "text outside the safe area"

    # Each block's ink ends inside its box, with clean background below: nothing was cut at the bottom
    # of a line and nothing spills into the next block.
    for block in plan.blocks:
        inside = ink[block.y : block.y + block.height, block.x : block.x + block.width]
        block_rows = np.where(inside.any(axis=1))[0]
        assert block_rows.size, block.text
        assert block_rows[-1] < block.height - 1, f"ink touches the bottom of the box: {block.text!r}"
        assert not ink[block.y + block.height, :].any(), f"ink below the box: {block.text!r}"
        expected_height, _ = reference_ink(block.text, block.bold, block.font_size, block.interline)
        assert block_rows[-1] - block_rows[0] + 1 >= expected_height - 1, f"ink missing: {block.text!r}"

    # Sizes follow the frame height, so 720p and 1080p cards look alike.
    first = plan.blocks[0]
    assert abs(first.font_size / height - layout(card, 1280, 720).blocks[0].font_size / 720) < 0.003


# ------------------------------------------------------------------------ hostile names, linear time


class MeasureBudget(Exception):
    pass


def counting_measure(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count the layout's font measurements (calls, and characters measured: Pillow's cost grows with
    the length of what it measures); past ``budget`` characters it stops the layout with MeasureBudget,
    so a return to super-linear time fails at once instead of hanging the suite."""
    counts = {"calls": 0, "chars": 0, "budget": 10**12}
    real = cards._measure

    def measure(bold: bool, size: int) -> Any:
        inner = real(bold, size)

        def counted(text: str) -> float:
            counts["calls"] += 1
            counts["chars"] += len(text)
            if counts["chars"] > counts["budget"]:
                raise MeasureBudget(f"{counts['chars']} characters measured")
            return inner(text)

        return counted

    monkeypatch.setattr(cards, "_measure", measure)
    return counts


# One long word of narrow, wide, invisible and combined characters and emoji; many short words.
NAME_KINDS = ["x", "W", "Trafiksikkerhed", "\u200b", "a\u0301", "🇩🇰", "e ", "Åse Ærø "]


@pytest.mark.parametrize("unit", NAME_KINDS, ids=lambda u: f"{u!r}")
def test_card_layout_takes_linear_time_in_the_length_of_a_name(
    unit: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    counts = counting_measure(monkeypatch)

    def cost(n: int, budget: float = 10**12) -> tuple[int, int]:
        counts.update(calls=0, chars=0, budget=int(budget))
        name = "Anna " + unit * (n // len(unit))
        card = statement_card(statement(speaker=name, group=name, topic=name), 1, Form())
        assert card is not None
        layout(card, 1920, 1080)
        return counts["calls"], counts["chars"]

    calls, chars = cost(250)
    # Four times the text costs at most about four times the measuring (n log n allowed, not n²: 16).
    more_calls, more_chars = cost(1000, budget=6 * chars + 10_000)
    assert more_calls <= 6 * calls + 50 and more_chars <= 6 * chars + 10_000, (
        calls,
        chars,
        more_calls,
        more_chars,
    )
    # The name of 10,000 characters that once ran for ten minutes.
    cost(10_000, budget=60 * chars + 100_000)


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_hostile_names_are_drawn_inside_the_card_with_what_the_font_has(kind: str) -> None:
    from pipeline.fonts import drawable

    value = HOSTILE[kind]
    card = statement_card(statement(speaker=value, group=value, topic=value), 1, Form())
    assert card is not None
    assert (
        card.caption is not None
        and "\n" not in card.caption
        and escape.printable(card.caption) == card.caption
    )
    plan = layout(card, 640, 360)
    assert plan.blocks[0].line_count <= cards.HEADING_MAX_LINES
    assert all(block.line_count <= cards.LINE_MAX_LINES for block in plan.blocks[1:])
    for block in plan.blocks:
        assert all(ord(ch) in drawable() or ch == "\n" for ch in block.text), block.text
    target = OUT / "hostile" / f"{kind}.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    render_png(card, 640, 360, target)
    with Image.open(target) as image:
        ink = ink_mask(np.asarray(image))
    left, top, right, bottom = plan.safe_box
    rows, cols = np.where(ink.any(axis=1))[0], np.where(ink.any(axis=0))[0]
    assert rows.size and rows[0] >= top and rows[-1] < bottom, "text outside the safe area"
    assert cols[0] >= left and cols[-1] < right, "text outside the safe area"


def test_a_name_typed_decomposed_is_drawn_and_cut_as_composed_letters() -> None:
    import unicodedata

    decomposed = unicodedata.normalize("NFD", "Åse Ærø Søren Østergård")
    card = statement_card(statement(speaker=decomposed), 1, Form())
    assert card is not None and card.lines[0] == "Åse Ærø Søren Østergård"
    # A word split over lines is never split between a letter and its accent.
    lines = cards.wrap("A\u030a" * 40, lambda text: 10.0 * len(text), 100)
    assert all(not unicodedata.combining(line[0]) for line in lines)


def test_drawing_a_long_line_measures_it_a_few_times_not_once_a_character(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Zero-width characters make a line of any length fit the column; the drawing must not measure the
    # text again for every character (moviepy's own caption wrapping does: quadratic in the line).
    from PIL import ImageDraw as Draw

    real = Draw.ImageDraw.multiline_textbbox
    calls = []

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) > 50:
            raise AssertionError("the text is measured once a character")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Draw.ImageDraw, "multiline_textbbox", counted)
    name = "Anna" + "\u200b" * 5000 + " Jensen"
    card = statement_card(statement(speaker=name), 1, Form())
    assert card is not None
    plan = layout(card, 640, 360)
    assert len(plan.blocks[1].text) > 5000  # the whole name on its line
    for block in plan.blocks:
        text_clip(block)
    assert calls
