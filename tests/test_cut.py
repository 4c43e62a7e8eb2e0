"""The pure core of cutting: in and out points, the form's length rules, order and timeline."""

from __future__ import annotations

import itertools

import pytest

from pipeline.config import Form
from pipeline.models import (
    AudioInfo,
    Consent,
    MediaProbe,
    Recording,
    Rejection,
    Segment,
    Statement,
    StatementTranscript,
    VideoInfo,
    Word,
)
from pipeline.stages.cut import Cut, order_statements, plan_cut, plan_timeline, words_in_cut

AUDIO = AudioInfo(1, "aac", 48000, 2, "stereo", 30_000)
VIDEO = VideoInfo(0, "h264", 1920, 1080, 0, 25.0, False, "yuv420p", "1:1")


def statement(
    sid: str = "s01",
    relpath: str = "a.mp4",
    duration_ms: int = 30_000,
    trim: tuple[int | None, int | None] | None = None,
    topic: str | None = None,
    video: bool = True,
) -> Statement:
    probe = MediaProbe("mov", duration_ms, VIDEO if video else None, (AUDIO,))
    return Statement(sid, Recording(relpath, 1, "sha"), probe, 1, None, None, topic, Consent(), trim)


def transcript(*words: tuple[int, int, str]) -> StatementTranscript:
    built = tuple(Word(a, b, f" {t}", 0.9) for a, b, t in words)
    return StatementTranscript(
        "s01",
        "da",
        "faster-whisper",
        "base",
        (Segment(built[0].start_ms, built[-1].end_ms, "".join(w.text for w in built), built),),
    )


def form(**clip: object) -> Form:
    return Form.model_validate({"clip": clip})


SPEECH = transcript(
    (3000, 3400, "Kære"), (3500, 3900, "udvalg"), (4200, 4800, "tak."), (20_000, 20_500, "Hej.")
)


def test_silence_is_trimmed_to_the_speech_with_padding() -> None:
    cut = plan_cut(statement(), SPEECH, form(silence_trim={"enabled": True, "padding": 0.4}))
    assert cut == Cut("s01", 2600, 20_900, "speech")


def test_without_silence_trim_the_whole_recording_is_used() -> None:
    cut = plan_cut(statement(), SPEECH, form(silence_trim={"enabled": False}))
    assert isinstance(cut, Cut) and (cut.in_ms, cut.out_ms, cut.how) == (0, 30_000, "whole")


def test_manual_trim_wins_but_never_cuts_a_word() -> None:
    cut = plan_cut(statement(trim=(3600, 4500)), SPEECH, Form())
    assert isinstance(cut, Cut)
    assert (cut.in_ms, cut.out_ms, cut.how) == (3500, 4800, "manual")
    assert len(cut.notes) == 2
    # Only one point set: the other stays where the speech puts it (its last word, padded), as without
    # a trim; never the recording's start or end.
    open_end = plan_cut(statement(trim=(1000, None)), SPEECH, Form())
    speech = plan_cut(statement(), SPEECH, Form())
    assert isinstance(open_end, Cut) and isinstance(speech, Cut)
    assert (open_end.in_ms, open_end.out_ms) == (1000, speech.out_ms) and speech.out_ms < 30_000
    open_start = plan_cut(statement(trim=(None, 4500)), SPEECH, Form())
    assert isinstance(open_start, Cut) and (open_start.in_ms, open_start.out_ms) == (speech.in_ms, 4800)
    whole = Form.model_validate({"clip": {"silence_trim": {"enabled": False}}})
    open_end = plan_cut(statement(trim=(1000, None)), SPEECH, whole)
    assert isinstance(open_end, Cut) and (open_end.in_ms, open_end.out_ms) == (1000, 30_000)


def test_over_length_reject_trim_and_warn() -> None:
    rejected = plan_cut(statement(), SPEECH, form(max_statement=10, over_length="reject"))
    assert isinstance(rejected, Rejection) and rejected.reason.startswith("too long: 18.3 s")

    trimmed = plan_cut(statement(), SPEECH, form(max_statement=10, over_length="trim"))
    assert isinstance(trimmed, Cut)
    # cut in the pause after "tak." (ends 4.8 s), padded, far before the limit at 12.6 s
    assert (trimmed.in_ms, trimmed.out_ms) == (2600, 5200)
    assert trimmed.duration_ms <= 10_000 and "shortened" in trimmed.notes[0]

    warned = plan_cut(statement(), SPEECH, form(max_statement=10, over_length="warn"))
    assert isinstance(warned, Cut) and warned.out_ms == 20_900 and "over length" in warned.notes[0]


def test_trim_at_a_word_boundary_never_pads_into_the_next_word() -> None:
    dense = transcript(*[(1000 + i * 500, 1000 + i * 500 + 450, f"ord{i}") for i in range(40)])
    cut = plan_cut(statement(), dense, form(max_statement=5, over_length="trim"))
    assert isinstance(cut, Cut)
    assert cut.duration_ms <= 5000
    ends = [w.end_ms for w in dense.words]
    starts = [w.start_ms for w in dense.words]
    assert not any(s < cut.out_ms < e for s, e in zip(starts, ends, strict=True))


def test_words_in_cut_are_timed_from_the_in_point_and_text_follows_the_words() -> None:
    kept = words_in_cut(SPEECH, Cut("s01", 3450, 5000, "manual"))
    assert [(w.start_ms, w.end_ms, w.text) for w in kept.words] == [
        (50, 450, " udvalg"),
        (750, 1350, " tak."),
    ]
    assert kept.segments[0].text == " udvalg tak."


def test_order_by_file_and_by_topic() -> None:
    a = statement("s01", "b/2.mp4", topic="Trafik")
    b = statement("s02", "a/10.mp4", topic="Skole")
    c = statement("s03", "a/9.mp4", topic="trafik")
    d = statement("s04", "c.mp4", topic=None)
    assert [s.id for s in order_statements([a, b, c, d], form(order="meeting"))] == [
        "s01",
        "s02",
        "s03",
        "s04",
    ]
    assert [s.id for s in order_statements([a, b, c, d], form(order="file"))] == ["s03", "s02", "s01", "s04"]
    assert [s.id for s in order_statements([d, a, b, c], form(order="topic"))] == ["s01", "s03", "s02", "s04"]


def test_timeline_counts_whole_frames_and_announces_every_statement_by_its_card() -> None:
    one = statement("s01")
    two = statement("s02", video=False)
    cuts = {"s01": Cut("s01", 0, 10_010, "whole"), "s02": Cut("s02", 0, 5_000, "whole")}
    parts = plan_timeline(
        [one, two], cuts, form(title_card={"seconds": 3}, statement_cards={"seconds": 2}), title=True
    )
    assert [(p.kind, p.statement_id, p.start_ms, p.duration_ms) for p in parts] == [
        ("title", None, 0, 3000),
        ("card", "s01", 3000, 2000),
        ("statement", "s01", 5000, 10_000),
        ("card", "s02", 15_000, 2000),  # a sound recording's card too: it carries the name caption
        ("statement", "s02", 17_000, 5000),
    ]
    # Without cards, only the sound recording keeps its card before it: it is its picture anyway.
    off = form(title_card={"seconds": 3}, statement_cards={"enabled": False, "seconds": 2})
    assert [(p.kind, p.statement_id) for p in plan_timeline([one, two], cuts, off, title=False)] == [
        ("statement", "s01"),
        ("card", "s02"),
        ("statement", "s02"),
    ]


@pytest.mark.parametrize("fps", [25, 29.97, 30])
def test_timeline_has_no_rounding_drift(fps: float) -> None:
    statements = [statement(f"s{i:02d}") for i in range(1, 40)]
    cuts = {s.id: Cut(s.id, 0, 7_777, "whole") for s in statements}
    timeline_form = Form.model_validate({"video": {"fps": fps}})
    parts = plan_timeline(statements, cuts, timeline_form, title=True)
    for before, after in itertools.pairwise(parts):
        assert before.end_ms == after.start_ms
    total_frames = sum(p.frames for p in parts)
    assert parts[-1].end_ms == round(total_frames * 1000 / fps)
