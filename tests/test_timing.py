"""The one timing model (pipeline.stages.timing): the pipeline's cues and a person's cues fitted into a
statement's window by the same function, and judged the same way by the run, the page and the check."""

from __future__ import annotations

import pytest

from pipeline.config import Form
from pipeline.models import (
    Consent,
    MediaProbe,
    Recording,
    Segment,
    ShownCue,
    Statement,
    StatementTranscript,
    Word,
)
from pipeline.stages import clip, cut, edits, timing
from pipeline.stages.subtitles.cues import build_statement_cues, statement_cues
from pipeline.stages.subtitles.rules import Cue, SubtitleRules

RULES = SubtitleRules()
GAP = RULES.min_gap_ms


def draft(text: str, speech: tuple[int, int], wanted: tuple[int, int] | None = None) -> timing.Draft:
    return timing.Draft((text,), speech, wanted)


def assert_legal(fitted: timing.Fit, window: tuple[int, int], rules: SubtitleRules = RULES) -> None:
    assert fitted.legal
    for k, (start, end) in enumerate(zip(fitted.start, fitted.end, strict=True)):
        assert window[0] <= start < end <= window[1] - rules.min_gap_ms
        assert rules.min_duration_ms <= end - start <= rules.max_duration_ms
        if k:
            assert start - fitted.end[k - 1] >= rules.min_gap_ms


def test_a_persons_times_are_kept_where_they_keep_the_rules() -> None:
    drafts = [draft("Hej.", (1000, 1400), (1000, 2500)), draft("Farvel igen.", (3000, 3600), (2700, 4000))]
    fitted = timing.fit(drafts, (0, 10_000), RULES)
    assert fitted is not None
    assert list(zip(fitted.start, fitted.end, strict=True)) == [(1000, 2500), (2700, 4000)]
    assert fitted.moved == (frozenset(), frozenset())


def test_a_cue_running_into_the_next_ends_earlier_and_says_why() -> None:
    drafts = [draft("Hej med dig.", (1000, 1800), (1000, 3500)), draft("Farvel.", (3000, 3600), (3000, 4200))]
    fitted = timing.fit(drafts, (0, 10_000), RULES)
    assert fitted is not None
    assert_legal(fitted, (0, 10_000))
    assert (fitted.start[1], fitted.end[0]) == (3000, 3000 - GAP), "its end comes forward, the next stays"
    assert fitted.moved[0] == {timing.MOVED_NEXT} and not fitted.moved[1]


def test_a_cue_past_the_out_point_is_brought_inside_the_statement() -> None:
    window = (5000, 12_000)
    drafts = [draft("Det var det.", (10_000, 11_000), (10_000, 14_000))]
    fitted = timing.fit(drafts, window, RULES)
    assert fitted is not None
    assert_legal(fitted, window)
    assert (fitted.start[0], fitted.end[0]) == (10_000, 12_000 - GAP)
    assert timing.MOVED_WINDOW_END in fitted.moved[0]


def test_too_many_cues_for_their_statement_are_named_not_joined() -> None:
    window = (0, 2000)
    drafts = [draft(f"Ord {n}.", (n * 300, n * 300 + 200), (n * 300, n * 300 + 250)) for n in range(5)]
    fitted = timing.fit(drafts, window, RULES)
    assert fitted is not None and not fitted.legal and fitted.short
    # The pipeline's own cues in the same window are joined until they fit.
    words = [Word(n * 300, n * 300 + 200, f" Ord{n}.", 0.9) for n in range(5)]
    built = build_statement_cues(words, window, RULES, "s01")
    assert all(c.duration_ms >= RULES.min_duration_ms for c in built) or len(built) == 1


def test_a_fast_cue_is_lengthened_into_the_time_free_around_it() -> None:
    text = "Vi skal have en sti langs Åvej, og det nu."  # 42 characters: 2.5 s to read at 17 cps
    drafts = [draft(text, (1000, 2000), (1000, 2000))]
    fitted = timing.fit(drafts, (0, 10_000), RULES)
    assert fitted is not None
    assert fitted.end[0] - fitted.start[0] >= RULES.needed_ms(len(text))
    assert timing.MOVED_READING in fitted.moved[0]


def test_the_check_forgives_only_a_fast_cue_that_fills_its_room() -> None:
    text = "Vi skal have en sti langs Åvej, og det nu."
    before, after = Cue(0, 1920, ("Først.",)), Cue(3080, 5000, ("Så.",))
    crowded = [before, Cue(2000, 3000, (text,)), after]
    (fast,) = [b for b in timing.judge(crowded, RULES, 10_000) if b.rule == "subtitles.reading_speed"]
    assert fast.severity == "warn" and "too fast for any timing" in fast.kind
    roomy = [before, Cue(2000, 3000, (text,)), Cue(8000, 9000, ("Så.",))]
    (fast,) = [b for b in timing.judge(roomy, RULES, 10_000) if b.rule == "subtitles.reading_speed"]
    assert fast.severity == "fail"


@pytest.mark.parametrize("form_fields", [{}, {"subtitles": {"min_gap_frames": 12}}, {"video": {"fps": 30}}])
def test_a_text_only_correction_keeps_the_pipelines_times(form_fields: dict[str, object]) -> None:
    form = Form.model_validate(form_fields)
    rules = SubtitleRules.from_form(form)
    words = [
        Word(start, start + 350, f" {text}", 0.4)
        for start, text in zip(range(1200, 20_000, 420), ("ord " * 40).split(), strict=False)
    ]
    heard = StatementTranscript(
        "s01", "da", "faster-whisper", "base", (Segment(1200, words[-1].end_ms, "", tuple(words)),)
    )
    statement = Statement(
        "s01",
        Recording("a.wav", 1, "x"),
        MediaProbe("wav", 20_000, None, ()),
        0,
        None,
        None,
        None,
        Consent(),
        None,
    )

    def clip_cues(found: edits.StatementEdits) -> tuple[Cue, ...]:
        fixed, transcript, _, _ = edits.corrected_one(statement, heard, found, rules)
        assert transcript is not None
        planned = cut.plan_cut(fixed, transcript, form)
        assert isinstance(planned, cut.Cut)
        timeline = clip.plan_timeline_cues(
            [fixed], {fixed.id: planned}, {fixed.id: cut.words_in_cut(transcript, planned)}, form, title=None
        )
        return timeline.cues

    untouched = clip_cues(edits.StatementEdits("a.wav", None, edits.StatementEdit()))
    starting = edits.starting_cues(heard, 20_000, rules)
    # Every other cue's first word written anew, as long as it was (a cue needs the time its text takes
    # to read; the same length needs the same time).
    corrected = tuple(
        Cue(c.start_ms, c.end_ms, (c.lines[0].replace("ord", "rod", 1), *c.lines[1:])) if k % 2 == 0 else c
        for k, c in enumerate(starting)
    )
    again = clip_cues(edits.StatementEdits("a.wav", corrected, edits.StatementEdit()))
    assert [(c.start_ms, c.end_ms) for c in again] == [(c.start_ms, c.end_ms) for c in untouched]
    assert any("rod" in c.text for c in again)


def test_the_cut_never_splits_a_persons_cue_from_its_words() -> None:
    shown = ShownCue(("alt dette", "og mere"), 1000, 4000, 0, 4)
    words = tuple(
        Word(1000 + i * 700, 1500 + i * 700, f" {t}", 1.0)
        for i, t in enumerate(["alt", "dette", "og", "mere"])
    )
    transcript = StatementTranscript(
        "s01",
        "da",
        "faster-whisper",
        "base",
        (Segment(1000, 4000, " alt dette og mere", words, shown=shown),),
    )
    kept = cut.words_in_cut(transcript, cut.Cut("s01", 0, 2500, "manual"))
    made = statement_cues(kept, 0, (0, 2500), RULES, "s01")
    # Only the words inside the cut are shown, on lines of their own, never the words the cut left out.
    assert [c.text for c in made.cues] == ["alt dette"]


def test_the_pipelines_cues_in_a_window_too_short_for_them_share_cues_a_persons_do_not() -> None:
    words = [Word(n * 60, n * 60 + 50, f" ord{n}.", 0.9) for n in range(8)]

    def segments(own_times: bool) -> StatementTranscript:
        made = []
        for k in range(0, 8, 2):
            pair = tuple(words[k : k + 2])
            times = (pair[0].start_ms, pair[-1].end_ms) if own_times else (None, None)
            shown = ShownCue((" ".join(w.text.strip() for w in pair),), *times, k // 2, 2)
            made.append(Segment(pair[0].start_ms, pair[-1].end_ms, "", pair, shown=shown))
        return StatementTranscript("s01", "da", "faster-whisper", "base", tuple(made))

    window = (0, 240)  # not a frame (40 ms) and a gap (80 ms) for each of four cues
    joined = statement_cues(segments(False), 0, window, RULES, "s01")
    assert 0 < len(joined.cues) < 4 and "cues were joined" in " ".join(joined.cues[0].warnings)
    told = statement_cues(segments(True), 0, window, RULES, "s01")
    assert told.cues == () and told.short == (0, 1, 2, 3) and told.sources == (0, 1, 2, 3)
