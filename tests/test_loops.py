"""Whisper's repetition loops: found, decoded again, and where they persist kept and flagged."""

from __future__ import annotations

from pipeline.engines.base import (
    FLAG_LOW_CONFIDENCE,
    FLAG_REDECODED,
    FLAG_REPEATED,
    Loop,
    TranscribeSettings,
    add_review_flags,
    find_loops,
    redecode_loops,
)
from pipeline.models import Segment, Word
from pipeline.stages import check


def test_loops_of_one_to_three_words() -> None:
    assert find_loops(["jeg", "mener", "mener", "mener", "mener", "at"]) == [Loop(1, 5, "mener", 4)]
    # Punctuation and case do not hide a loop.
    assert find_loops(["Mener,", "mener,", "mener.", "MENER"]) == [Loop(0, 4, "mener", 4)]
    said = ["i", "de", "i", "de", "i", "de", "i", "de", "og"]
    assert find_loops(said) == [Loop(0, 8, "i de", 4)]
    thanks = ["tak", "for", "det"] * 4
    assert find_loops(thanks) == [Loop(0, 12, "tak for det", 4)]
    # What people say: three times is speech, not a loop.
    assert find_loops(["nej", "nej", "nej", "det", "vil", "vi", "ikke"]) == []
    assert find_loops([]) == []


def words(*texts: str, start: int = 0, step: int = 300, probability: float = 0.9) -> tuple[Word, ...]:
    return tuple(
        Word(start + k * step, start + k * step + 250, f" {t}", probability) for k, t in enumerate(texts)
    )


def segment(ws: tuple[Word, ...]) -> Segment:
    return Segment(ws[0].start_ms, ws[-1].end_ms, "".join(w.text for w in ws), ws, -0.3, 0.01, 1.5)


LOOPED = (
    segment(words("Jeg", "håber", "i", start=0)),
    segment(words("nævrige", "nævrige", "nævrige", "nævrige", "nævrige", start=1000)),
    segment(words("Tak.", start=3000)),
)


def test_a_loop_decoded_again_is_replaced_and_marked() -> None:
    asked: list[tuple[int, int]] = []

    def redecode(start_ms: int, end_ms: int) -> list[Word]:
        asked.append((start_ms, end_ms))
        # The stretch again, with context around it that must not be taken twice.
        return [
            *words("i", start=700),
            *words("næste", "uge", start=1300, step=800),
            *words("Tak.", start=3000),
        ]

    mended = redecode_loops(LOOPED, redecode)
    assert asked == [(0, 3450)]
    texts = [w.text for s in mended for w in s.words]
    assert texts == [" Jeg", " håber", " i", " næste", " uge", " Tak."]
    again = [w for s in mended for w in s.words if FLAG_REDECODED in w.flags]
    assert [w.text for w in again] == [" næste", " uge"]
    assert mended[1].text == " næste uge"


def test_a_loop_that_persists_is_kept_and_flagged() -> None:
    def still_looping(start_ms: int, end_ms: int) -> list[Word]:
        return list(words("nævrige", "nævrige", "nævrige", "nævrige", start=1000))

    def nothing(start_ms: int, end_ms: int) -> list[Word]:
        return []

    for redecode in (still_looping, nothing):
        kept = redecode_loops(LOOPED, redecode)
        assert kept == LOOPED
    flagged = add_review_flags(LOOPED, TranscribeSettings())
    looped = [w for w in flagged[1].words]
    assert all(FLAG_REPEATED in w.flags for w in looped) and len(looped) == 5
    assert FLAG_REPEATED in flagged[1].flags
    assert not any(w.flags for w in flagged[0].words) and not flagged[0].flags


def test_flags_are_per_word() -> None:
    doubtful = (segment((*words("Kære", "udvalg"), *words("Skolevej", start=600, probability=0.2))),)
    (flagged,) = add_review_flags(doubtful, TranscribeSettings())
    assert [w.flags for w in flagged.words] == [(), (), (FLAG_LOW_CONFIDENCE,)]


def test_the_qc_report_names_every_loop_kept() -> None:
    document = {
        "statements": [
            {
                "number": 2,
                "speaker_label": "Søren",
                "start_ms": 27_200,
                "segments": [
                    {
                        "words": [
                            {"start_ms": 17_000, "text": " i"},
                            *(
                                {"start_ms": 17_100 + k, "text": " nævrige", "flags": ["repeated"]}
                                for k in range(8)
                            ),
                            {"start_ms": 17_900, "text": " Tak", "flags": ["redecoded"]},
                        ]
                    }
                ],
            }
        ]
    }
    result = check.check_repetitions(document)
    assert result.status == "warn"
    assert result.measured == "1 kept for review; 1 words decoded again where Whisper looped"
    assert result.detail == "statement 2 (Søren) at 00:00:44,300: 'nævrige nævrige nævrige nævrige nævrige…'"
    clean = {"statements": [{"number": 1, "segments": [{"words": [{"start_ms": 0, "text": " Tak"}]}]}]}
    assert check.check_repetitions(clean).status == "pass"


def test_subtitle_credits_over_silence_are_flagged() -> None:
    from pipeline.engines.base import FLAG_CREDIT, flag_credits

    spoken = segment(words("Tak", "for", "ordet.", start=0))
    credit = segment(words("Undertekster", "af", "Amara.org", start=5000))
    speech = [(0, 1000)]
    flagged = flag_credits((spoken, credit), lambda: speech)
    assert not flagged[0].flags and all(FLAG_CREDIT in w.flags for w in flagged[1].words)
    # Said aloud, over detected speech, it is what a citizen said.
    assert flag_credits((credit,), lambda: [(5000, 6000)]) == (credit,)

    # Without anything that reads like a credit, the audio is not passed over again.
    def never() -> list[tuple[int, int]]:
        raise AssertionError("the voice detector was asked for nothing")

    assert flag_credits((spoken,), never) == (spoken,)
    document = {
        "statements": [
            {
                "number": 1,
                "start_ms": 1000,
                "segments": [{"words": [{"start_ms": w.start_ms, "text": w.text, "flags": list(w.flags)}
                                        for w in flagged[1].words]}],
            }
        ]
    }  # fmt: skip
    result = check.check_credits(document)
    assert result.status == "warn"
    assert result.detail == "statement 1 at 00:00:06,000: 'Undertekster af Amara.org'"
