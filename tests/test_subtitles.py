"""Subtitles: words grouped into cues, lines broken and timed to the form's rules, and the files."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pysubs2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from pipeline.config import Form, SubtitleForm, VideoForm
from pipeline.files import write_text
from pipeline.models import Word
from pipeline.stages.subtitles.cues import build_statement_cues, card_cue, validate
from pipeline.stages.subtitles.io import parse_srt, parse_vtt, to_ass, to_srt, to_vtt
from pipeline.stages.subtitles.layout import break_lines
from pipeline.stages.subtitles.rules import Cue, SubtitleRules, clean_text

# Hypothesis keeps caches; they belong with the rest of the test output, not in the repository's root.
set_hypothesis_home_dir(Path(__file__).resolve().parents[1] / "test-output" / "hypothesis")

RULES = SubtitleRules()
EXAMPLE = "Vi ønsker en cykelsti langs Åvej, og vi håber at udvalget vil hjælpe os."


def spoken(text: str, start: int = 1000, length: int = 300, pause: int = 50) -> list[Word]:
    """Words as Whisper writes them (leading space), evenly spoken from ``start``."""
    words, t = [], start
    for token in text.split(" "):
        words.append(Word(t, t + length, " " + token, 0.9))
        t += length + pause
    return words


def cues_of(text: str, window: tuple[int, int] = (0, 60_000), **kwargs: int) -> tuple[Cue, ...]:
    return build_statement_cues(spoken(text, **kwargs), window, RULES, "s01")


# ---------------------------------------------------------------------------------------------- rules


def test_rules_from_the_default_form_are_the_standards() -> None:
    assert SubtitleRules.from_form(Form()) == SubtitleRules()


def test_rules_from_form_gap_is_whole_frames_rounded_up() -> None:
    form = Form(video=VideoForm(fps=30), subtitles=SubtitleForm(min_gap_frames=2, max_cps=20, min_duration=1))
    rules = SubtitleRules.from_form(form)
    assert rules.min_gap_ms == 67  # 2 frames at 30 fps are 66.7 ms
    assert rules.max_cps == 20 and rules.warn_cps == 15
    assert rules.min_duration_ms == 1000 and rules.fps == 30


# ---------------------------------------------------------------------------------------- line breaks


def test_a_line_breaks_after_punctuation_before_the_conjunction() -> None:
    assert break_lines(EXAMPLE, RULES) == (
        "Vi ønsker en cykelsti langs Åvej,",
        "og vi håber at udvalget vil hjælpe os.",
    )


def test_one_line_when_it_fits() -> None:
    assert break_lines("Vi ønsker en cykelsti langs Åvej.", RULES) == ("Vi ønsker en cykelsti langs Åvej.",)


def test_a_line_breaks_before_a_preposition_rather_than_anywhere() -> None:
    lines = break_lines("Mange børn cykler hver eneste morgen ad den smalle vej til skolen", RULES)
    assert lines == ("Mange børn cykler hver eneste morgen", "ad den smalle vej til skolen")


def test_a_name_is_never_split() -> None:
    # The most even break would fall inside the name.
    lines = break_lines("Det mener vores formand Søren Ærø Østergård fra Nordby Lokalråd", RULES)
    assert lines == ("Det mener vores formand", "Søren Ærø Østergård fra Nordby Lokalråd")
    for line in lines[:-1]:
        assert not line.endswith(("Søren", "Ærø", "Nordby"))


def test_an_article_stays_with_its_noun() -> None:
    # The most even break would end the first line with "en".
    lines = break_lines("Vi har i mange år ønsket os en sikker skolevej til børnene", RULES)
    assert lines == ("Vi har i mange år ønsket os", "en sikker skolevej til børnene")


def test_never_right_after_an_auxiliary() -> None:
    # The most even break would end the first line with "er".
    lines = break_lines("Hele vores lille lokalsamfund er meget bekymret over trafikken", RULES)
    assert lines == ("Hele vores lille lokalsamfund", "er meget bekymret over trafikken")


def test_danish_typography() -> None:
    assert clean_text("  Det   er ... ja... ") == "Det er … ja…"
    cues = build_statement_cues(
        [Word(0, 300, " Det", 0.9), Word(300, 600, " er...", 0.9), Word(900, 1200, "  svært ", 0.9)],
        (0, 5000),
        RULES,
        "s01",
    )
    assert " ".join(c.text for c in cues) == "Det er… svært"


def test_punctuation_written_as_a_word_of_its_own_joins_the_word_before() -> None:
    words = [
        Word(0, 300, " Hej", 0.9),
        Word(300, 310, ",", 0.9),
        Word(310, 600, " du", 0.9),
        Word(600, 610, ".", 1),
    ]
    assert [c.text for c in build_statement_cues(words, (0, 5000), RULES, None)] == ["Hej, du."]


def test_a_word_longer_than_a_line_gets_its_own_cue_split_hard_with_a_warning() -> None:
    url = "https://www.nordby-lokalraad.dk/hoeringer/2026/trafiksikkerhed-skolevej"
    cues = cues_of(f"Læs mere på {url} tak", length=400)
    long_cue = next(c for c in cues if "https" in c.text)
    assert "".join(long_cue.lines) == url
    assert all(len(line) <= RULES.max_chars_per_line for line in long_cue.lines)
    assert any("longer than a line" in w for w in long_cue.warnings)
    assert [c.text for c in cues if c is not long_cue] == ["Læs mere på", "tak"]


# -------------------------------------------------------------------------------------- grouping words


def test_cues_break_at_sentence_ends() -> None:
    cues = cues_of("Det er farligt. Børnene cykler hver dag til skole ad Åvej.")
    assert [c.lines for c in cues] == [
        ("Det er farligt.",),
        ("Børnene cykler hver dag til skole ad Åvej.",),
    ]


def test_cues_break_at_a_long_pause_even_mid_sentence() -> None:
    words = spoken("Vi håber at", start=1000) + spoken("udvalget vil hjælpe os.", start=3000)
    cues = build_statement_cues(words, (0, 10_000), RULES, "s01")
    assert [c.text for c in cues] == ["Vi håber at", "udvalget vil hjælpe os."]


def test_a_long_text_is_split_into_cues_that_fit_two_lines() -> None:
    text = " ".join([EXAMPLE] * 3)
    cues = cues_of(text)
    assert " ".join(c.text for c in cues) == text
    assert [c.lines for c in cues] == [break_lines(EXAMPLE, RULES)] * 3


def test_slow_speech_is_split_at_the_maximum_duration() -> None:
    cues = cues_of(" ".join(["ja"] * 30), length=300, pause=100)  # 12 s of "ja"
    assert len(cues) >= 2
    assert all(c.duration_ms <= RULES.max_duration_ms for c in cues)


# ---------------------------------------------------------------------------------------------- timing


def test_a_cue_starts_with_the_first_word_and_hangs_half_a_second() -> None:
    (cue,) = cues_of("Vi ønsker en cykelsti langs Åvej.", start=5000, length=300, pause=50)
    assert cue.start_ms == 5000
    assert cue.end_ms == 5000 + 6 * 350 - 50 + 500  # the last word's end plus the hang


def test_a_short_cue_lasts_the_minimum() -> None:
    (cue,) = cues_of("Ja.", start=5000, length=150)
    assert (cue.start_ms, cue.duration_ms) == (5000, RULES.min_duration_ms)


def test_a_short_gap_is_closed_to_two_frames() -> None:
    words = spoken("Det er farligt.", start=1000) + spoken("Vi vil have en cykelsti.", start=2300)
    first, second = build_statement_cues(words, (0, 10_000), RULES, "s01")
    assert second.start_ms == 2300
    assert second.start_ms - first.end_ms == RULES.min_gap_ms


def test_a_long_gap_stays_open() -> None:
    words = spoken("Det er farligt.", start=1000) + spoken("Vi vil have en cykelsti.", start=6000)
    first, second = build_statement_cues(words, (0, 10_000), RULES, "s01")
    assert first.end_ms == 1000 + 3 * 350 - 50 + 500
    assert second.start_ms == 6000


def test_cues_stay_inside_the_window_and_snap_to_its_edges() -> None:
    # First word 0.4 s after the window starts, last word ends 0.3 s before it ends: both are the cut.
    words = spoken("Vi ønsker en cykelsti langs Åvej.", start=10_400)
    window = (10_000, words[-1].end_ms + 300)
    (cue,) = build_statement_cues(words, window, RULES, "s01")
    assert cue.start_ms == window[0]
    assert cue.end_ms == window[1] - RULES.min_gap_ms


def test_a_fast_cue_is_lengthened_into_the_pause_after_it() -> None:
    # 38 characters said in 0.9 s need 38/17 = 2.24 s on screen; the pause after gives the time.
    (cue,) = cues_of("Vi ønsker en cykelsti langs Åvej nu.", start=5000, length=120, pause=10)
    assert cue.start_ms == 5000
    assert cue.cps <= RULES.max_cps and cue.warnings == ()


def test_a_fast_cue_is_lengthened_into_the_pause_before_it() -> None:
    fast = spoken("Vi ønsker en cykelsti langs Åvej nu.", start=5000, length=120, pause=10)
    after = spoken(
        "Tak for ordet, og tak fordi I lyttede til os alle sammen i aften.", start=5920, length=300
    )
    cues = build_statement_cues(fast + after, (0, 20_000), RULES, "s01")
    assert cues[0].text == "Vi ønsker en cykelsti langs Åvej nu."
    assert 5000 - RULES.max_shift_ms <= cues[0].start_ms < 5000
    assert cues[0].cps <= RULES.max_cps and cues[0].warnings == ()


def test_speech_faster_than_can_be_shown_keeps_every_word_and_warns() -> None:
    text = " ".join([EXAMPLE] * 3)
    cues = cues_of(text, start=500, length=100, pause=0)  # about 40 characters a second, no pauses
    assert " ".join(c.text for c in cues) == text
    fast = [c for c in cues if c.cps > RULES.max_cps]
    assert fast
    for cue in fast:
        assert any(re.search(r"speech faster than 17 cps can show: \d+\.\d cps", w) for w in cue.warnings)
    assert any("characters/s" in problem for problem in validate(cues, RULES, 60_000))


def test_a_window_too_short_for_its_words_joins_cues_and_keeps_every_word() -> None:
    words = spoken(" ".join([EXAMPLE] * 2), start=1000, length=10, pause=0)
    cues = build_statement_cues(words, (1000, 1300), RULES, "s01")
    assert " ".join(c.text for c in cues) == " ".join([EXAMPLE] * 2)
    assert all(1000 <= c.start_ms < c.end_ms <= 1300 - RULES.min_gap_ms for c in cues)
    assert all(c.warnings for c in cues)


def test_a_window_that_cannot_show_a_frame_is_an_error() -> None:
    with pytest.raises(ValueError, match="too short"):
        build_statement_cues(spoken("Ja."), (1000, 1100), RULES, "s01")


def test_no_words_no_cues() -> None:
    assert build_statement_cues([], (0, 1000), RULES, "s01") == ()
    assert build_statement_cues([Word(0, 10, "  ", 0.5)], (0, 1000), RULES, "s01") == ()


# ----------------------------------------------------------------------------------------------- cards


def test_a_card_caption_names_the_speaker_in_brackets() -> None:
    cue = card_cue("Anna Jensen, Bordgruppe 3", (4000, 6500), RULES, "s01")
    assert cue is not None
    assert (cue.start_ms, cue.end_ms, cue.lines) == (4000, 6500 - 80, ("[Anna Jensen, Bordgruppe 3]",))
    assert cue.kind == "card" and cue.statement_id == "s01"
    assert validate([cue], RULES, 6500) == []


def test_a_card_caption_drops_the_group_then_shortens_the_name_to_be_read_in_time() -> None:
    long_name = "Anna-Kristine Jensen-Broberg Østergaard"
    cue = card_cue(f"{long_name}, Bordgruppe 3 ved vinduet", (0, 2500), RULES)
    assert cue is not None and cue.text == f"[{long_name}]"
    cue = card_cue(f"{long_name} Villadsen, Bordgruppe 3", (0, 2500), RULES)
    assert cue is not None and cue.text == "[Anna-Kristine Jensen-Broberg…]"  # 41 characters at most
    short = card_cue(f"{long_name}, Bordgruppe 3", (0, 1200), RULES)  # 1.12 s: 19 characters
    assert short is not None and short.text == "[Anna-Kristine…]"
    for c in (cue, short):
        assert c.cps <= RULES.max_cps and validate([c], RULES, 2500) == []


def test_a_card_caption_may_come_as_lines() -> None:
    cue = card_cue("Anna Jensen\nBordgruppe 3", (0, 2500), RULES)
    assert cue is not None and cue.lines == ("[Anna Jensen, Bordgruppe 3]",)


def test_a_card_and_the_statement_after_it_join_with_a_gap_of_two_frames() -> None:
    card = card_cue("Anna Jensen, Bordgruppe 3", (4000, 6500), RULES, "s01")
    assert card is not None
    # The statement's picture starts at 6.5 s; its first word 0.4 s later (the form's padding).
    speech = build_statement_cues(spoken(EXAMPLE, start=6900), (6500, 20_000), RULES, "s01")
    assert speech[0].start_ms - card.end_ms == RULES.min_gap_ms
    assert validate([card, *speech], RULES, 20_000) == []


def test_no_card_caption_for_nothing_or_too_short_a_card() -> None:
    assert card_cue("", (0, 2500), RULES) is None
    assert card_cue("Anna Jensen", (0, 800), RULES) is None


# ------------------------------------------------------------------------------------------- validation


def test_validate_names_every_broken_rule() -> None:
    cues = [
        Cue(0, 500, ("Alt for kort",)),
        Cue(540, 8000, ("En linje der er alt for lang til at stå på en linje i undertekster", "to", "tre")),
        Cue(8200, 9000, ("Det her læses alt for hurtigt af alle",)),
        Cue(8900, 9500, ("Overlapper",)),
        Cue(9400, 9000, ("Baglæns",)),
        Cue(12_000, 13_000, ("Tom", "")),
    ]
    problems = "\n".join(validate(cues, RULES, 9200))
    for words in [
        "subtitle 1 at 00:00:00,000 'Alt for kort': 0.500 s (shortest time on screen ≥ 0.833 s)",
        "subtitle 2 at 00:00:00,540",
        ": 40 ms after subtitle 1 (gap between subtitles ≥ 80 ms",
        "has 3 lines (lines per subtitle ≤ 2)",
        "line 1: 66 characters (characters per line ≤ 42",
        ": 7.460 s (longest time on screen ≤ 7 s)",
        "subtitle 3 at 00:00:08,200 'Det her læses alt for hurtigt a…': 200 ms after subtitle 2; "
        "gaps up to 0.5 s are usually closed to 80 ms",
        "subtitle 4 at 00:00:08,900 'Overlapper' starts 100 ms before subtitle 3 ends",
        "'Overlapper' ends at 00:00:09,500 (subtitles within the clip 00:00:00,000 – 00:00:09,200)",
        "subtitle 5 at 00:00:09,400 'Baglæns' ends at 00:00:09,000 (each subtitle ends after it starts",
        "subtitle 6 at 00:00:12,000 'Tom ' has an empty line",
    ]:
        assert words in problems
    # Read too fast, but no timing between its neighbours could show it slower: a note, not a break.
    assert "characters/s" not in problems


def test_validate_accepts_good_cues() -> None:
    cues = cues_of(" ".join([EXAMPLE] * 3))
    assert validate(cues, RULES, 60_000) == []


# ----------------------------------------------------------------------------------------------- files

TWO = [
    Cue(1000, 3500, ("Vi ønsker en cykelsti langs Åvej,", "og vi håber…")),
    Cue(3580, 3_725_042, ("Tak for ordet & <alt> det der.",)),
]


def test_srt_is_numbered_from_one_with_comma_milliseconds() -> None:
    assert to_srt(TWO) == (
        "1\n"
        "00:00:01,000 --> 00:00:03,500\n"
        "Vi ønsker en cykelsti langs Åvej,\n"
        "og vi håber…\n"
        "\n"
        "2\n"
        "00:00:03,580 --> 01:02:05,042\n"
        "Tak for ordet & <alt> det der.\n"
        "\n"
    )


def test_vtt_has_its_header_dot_milliseconds_and_escaped_markup() -> None:
    assert to_vtt(TWO) == (
        "WEBVTT\n"
        "\n"
        "00:00:01.000 --> 00:00:03.500\n"
        "Vi ønsker en cykelsti langs Åvej,\n"
        "og vi håber…\n"
        "\n"
        "00:00:03.580 --> 01:02:05.042\n"
        "Tak for ordet &amp; &lt;alt&gt; det der.\n"
        "\n"
    )


def test_srt_and_vtt_read_back_as_written() -> None:
    for parsed in (parse_srt(to_srt(TWO)), parse_vtt(to_vtt(TWO))):
        assert [(c.start_ms, c.end_ms, c.lines) for c in parsed] == [
            (c.start_ms, c.end_ms, c.lines) for c in TWO
        ]


def test_braces_in_speech_survive_srt() -> None:
    cues = [Cue(0, 1000, ("Se punkt {3} på listen",))]
    assert [c.lines for c in parse_srt(to_srt(cues))] == [("Se punkt {3} på listen",)]


def test_files_are_utf8_without_bom(tmp_path: Path) -> None:
    # As the delivery writes them.
    write_text(tmp_path / "clip.da.srt", to_srt(TWO))
    write_text(tmp_path / "clip.da.vtt", to_vtt(TWO))
    srt = (tmp_path / "clip.da.srt").read_bytes()
    vtt = (tmp_path / "clip.da.vtt").read_bytes()
    assert srt.startswith(b"1\n") and vtt.startswith(b"WEBVTT\n")
    assert "ø".encode() in srt and "…".encode() in vtt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.da.srt", "clip.da.vtt"]


def test_ass_for_burning_in_one_segment() -> None:
    cues = [
        Cue(9000, 9900, ("Før segmentet",)),
        Cue(9950, 11_000, ("Hen over starten",)),
        Cue(12_000, 14_500, ("Vi ønsker en cykelsti langs Åvej,", "og vi håber {det}…")),
        Cue(19_500, 21_000, ("Hen over slutningen",)),
        Cue(21_000, 22_000, ("Efter segmentet",)),
    ]
    text = to_ass(
        cues,
        width=1920,
        height=1080,
        font_name="DejaVu Sans",
        font_size_px=54,
        offset_ms=10_000,
        duration_ms=10_000,
    )
    assert "PlayResX: 1920\nPlayResY: 1080\n" in text and "WrapStyle: 2\n" in text
    assert "ScaledBorderAndShadow: yes" in text
    dialogue = r"Dialogue: 0,0:00:02.00,0:00:04.50,Default,,0,0,0,,"
    # Braces are escaped as libass reads them, so they are shown as braces, never read as a style.
    assert dialogue + r"Vi ønsker en cykelsti langs Åvej,\Nog vi håber \{det\}…" in text
    subs = pysubs2.SSAFile.from_string(text)
    style = subs.styles["Default"]
    assert (style.fontname, style.fontsize) == ("DejaVu Sans", 54)
    assert style.primarycolor == pysubs2.Color(255, 255, 255, 0) and style.outlinecolor == pysubs2.Color(
        0, 0, 0, 0
    )
    assert 0.06 * 54 <= style.outline <= 0.08 * 54 and style.shadow == 0
    assert style.alignment == pysubs2.Alignment.BOTTOM_CENTER
    # Inside the 90 % graphics-safe area: 5 % of the frame on each side, outline included.
    assert style.marginv >= 54 + style.outline and style.marginl >= 96 + style.outline
    assert style.marginr == style.marginl and style.marginv < 0.08 * 1080
    assert [(e.start, e.end) for e in subs.events] == [(0, 1000), (2000, 4500), (9500, 10_000)]


# ------------------------------------------------------------------------------------ every word, always

SYLLABLES = [
    "ko",
    "mmu",
    "ne",
    "cyk",
    "el",
    "sti",
    "æb",
    "le",
    "ø",
    "re",
    "å",
    "vej",
    "skole",
    "bør",
    "n",
    "s",
]
SMALL = ["og", "en", "et", "i", "på", "til", "vil", "er", "at", "som", "den", "det"]


@st.composite
def word_texts(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 30))
    if kind == 0:  # an address read aloud, longer than any line
        return "https://" + "".join(draw(st.lists(st.sampled_from(SYLLABLES), min_size=20, max_size=40)))
    if kind <= 6:
        word = draw(st.sampled_from(SMALL))
    else:
        word = "".join(draw(st.lists(st.sampled_from(SYLLABLES), min_size=1, max_size=5)))
    if draw(st.integers(0, 5)) == 0:
        word = word.capitalize()
    word += draw(st.sampled_from(["", "", "", "", "", ",", ".", "?", "...", "!"]))
    return draw(st.sampled_from([" " + word, " " + word, word, "  " + word + " "]))


@st.composite
def statements(draw: st.DrawFn) -> tuple[list[Word], tuple[int, int]]:
    count = draw(st.integers(1, 60))
    speed = draw(st.sampled_from([30, 120, 300, 600]))  # ms a word: very fast to slow
    words, t = [], draw(st.integers(0, 5000))
    for _ in range(count):
        text = draw(word_texts())
        if draw(st.integers(0, 12)) == 0:
            text = draw(st.sampled_from([",", ".", "?"]))  # punctuation written as a word
        length = draw(st.integers(0, speed * 2))
        words.append(Word(t, t + length, text, 0.9))
        pause = draw(st.sampled_from([0, 0, 0, 20, 100, 300, 550, 700, 2500, -50]))
        t = max(t, t + length + pause)
    first, last = words[0].start_ms, max(w.end_ms for w in words)
    lead = draw(st.sampled_from([0, 200, 400, 1000, 3000]))
    tail = draw(st.sampled_from([0, 100, 300, 1000, 3000]))
    return words, (max(first - lead, 0), last + tail + 200)


RULE_SETS = [
    RULES,
    SubtitleRules(max_lines=1, max_chars_per_line=30, max_cps=12, warn_cps=12, warn_chars_per_line=30),
    SubtitleRules(max_lines=3, max_chars_per_line=37, min_gap_ms=67, fps=30, max_duration_ms=5000),
]


def _shown(word: Word) -> str:
    return clean_text(word.text)


# No example database: a test run must not write into the repository.
@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(statements(), st.sampled_from(RULE_SETS))
def test_every_word_is_shown_once_in_order_and_every_rule_holds_or_is_warned(
    statement: tuple[list[Word], tuple[int, int]], rules: SubtitleRules
) -> None:
    words, window = statement
    cues = build_statement_cues(words, window, rules, "s07")

    # Every word in exactly one cue, in order: walk the words through the cues' text.
    shown = [w for w in words if _shown(w)]
    index = 0
    first_words = []
    for cue in cues:
        text = re.sub(r"\s", "", "".join(cue.lines))
        assert text, cue
        first_words.append(shown[index])
        taken = ""
        while taken != text:
            assert index < len(shown) and text.startswith(taken + re.sub(r"\s", "", _shown(shown[index]))), (
                cue,
                shown[index:],
            )
            taken += re.sub(r"\s", "", _shown(shown[index]))
            index += 1
    assert index == len(shown)

    w0, w1 = window
    for n, cue in enumerate(cues):
        assert cue.kind == "speech" and cue.statement_id == "s07"
        assert w0 <= cue.start_ms < cue.end_ms <= w1 - rules.min_gap_ms
        assert cue.duration_ms <= rules.max_duration_ms
        if n:
            gap = cue.start_ms - cues[n - 1].end_ms
            assert gap >= rules.min_gap_ms, (cues[n - 1], cue)
            if rules.min_gap_ms < gap <= rules.close_gap_ms:
                assert "should be closed" in " ".join(cue.warnings), (gap, cues[n - 1], cue)
        warned = " ".join(cue.warnings)
        if len(cue.lines) > rules.max_lines or any(
            len(line) > rules.max_chars_per_line for line in cue.lines
        ):
            assert "longer than a line" in warned or "joined" in warned, cue
        if cue.duration_ms < rules.min_duration_ms:
            assert "shorter than" in warned, cue
        if cue.cps > rules.max_cps:
            assert f"speech faster than {rules.max_cps:g} cps can show" in warned, cue
        if "joined" not in warned and "too dense" not in warned:
            # With the speech, never early or late by more than the standards allow.
            first = min(max(first_words[n].start_ms, w0), w1 - rules.min_gap_ms)
            assert first - rules.max_shift_ms <= cue.start_ms <= first + 3 * rules.frame_ms, (cue, first)

    if not any(cue.warnings for cue in cues):
        assert validate(cues, rules, w1) == []
    for parsed in (parse_srt(to_srt(cues)), parse_vtt(to_vtt(cues))):
        assert [(c.start_ms, c.end_ms, c.lines) for c in parsed] == [
            (c.start_ms, c.end_ms, c.lines) for c in cues
        ]


def test_a_statement_at_its_agreed_length_does_not_run_on_for_its_last_subtitle() -> None:
    from pipeline.config import Form
    from pipeline.stages.clip import Timeline, reading_run_on
    from pipeline.stages.cut import Cut, Part

    form = Form.model_validate({"clip": {"max_statement": 60}})
    rules = SubtitleRules.from_form(form)

    def timeline(length_ms: int) -> Timeline:
        part = Part("statement", "s01", 0, length_ms * 25 // 1000, 25.0)
        # The last subtitle squeezed against the end: 0.4 s for 30 characters.
        cue = Cue(part.end_ms - 480, part.end_ms - 80, ("Og det var alt, tak for i dag",), "speech", "s01")
        cut = Cut("s01", 10_000, 10_000 + length_ms, "speech")
        return Timeline((part,), None, {}, {}, {"s01": cut}, (cue,))

    longer = reading_run_on(timeline(30_000), rules, form)
    assert longer["s01"].out_ms > 40_000  # room left: it runs on to be read
    assert reading_run_on(timeline(60_000), rules, form) == {}  # at the agreed length: it does not
    near = reading_run_on(timeline(59_800), rules, form)
    assert near["s01"].duration_ms <= 60_000 - rules.frame_ms


@pytest.mark.parametrize(
    "module",
    [
        "pipeline.stages.timing",
        "pipeline.stages.subtitles.rules",
        "pipeline.stages.subtitles.layout",
        "pipeline.stages.subtitles.cues",
        "pipeline.stages.subtitles.io",
        "pipeline.texts",
    ],
)
def test_each_room_of_the_subtitles_imports_first_in_a_fresh_interpreter(module: str) -> None:
    """The timing model reads the rules from inside the subtitles package while the cues use the timing
    model: importing either first must work, which holds while the package's ``__init__`` imports
    nothing (the import graph of test_shape does not see a package's ``__init__`` run)."""
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
