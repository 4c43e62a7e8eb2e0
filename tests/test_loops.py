"""Whisper's repetition loops: found, decoded again, and where they persist kept and flagged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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
from pipeline.stages.check.transcript import check_credits, check_repetitions


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


def test_words_over_silence_need_the_voice_detector_to_agree() -> None:
    from dataclasses import replace

    from pipeline.engines.base import FLAG_OVER_SILENCE

    # Whisper thinks the whole segment is not speech (no_speech_prob 0.9); the voice detector hears the
    # first two words and silence under the last.
    doubted = (replace(segment(words("Kære", "udvalg", "Amara", start=0, step=1000)), no_speech_prob=0.9),)
    asked = []

    def regions() -> list[tuple[int, int]]:
        asked.append(True)
        return [(0, 1300)]

    (flagged,) = add_review_flags(doubted, TranscribeSettings(), regions)
    assert [FLAG_OVER_SILENCE in w.flags for w in flagged.words] == [False, False, True]
    assert FLAG_OVER_SILENCE in flagged.flags and asked == [True]
    # Continuous speech under it: nothing is over silence, whatever Whisper thought.
    (heard,) = add_review_flags(doubted, TranscribeSettings(), lambda: [(0, 3000)])
    assert not any(FLAG_OVER_SILENCE in w.flags for w in heard.words) and FLAG_OVER_SILENCE not in heard.flags
    # A segment Whisper hears as speech never asks the voice detector.
    asked.clear()
    add_review_flags((segment(words("Hej")),), TranscribeSettings(), regions)
    assert asked == []


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
    result = check_repetitions(document)
    assert result.status == "warn"
    assert result.measured == "1 kept for review; 1 words decoded again where Whisper looped"
    assert result.detail == "statement 2 (Søren) at 00:00:44,300: 'nævrige nævrige nævrige nævrige nævrige…'"
    clean = {"statements": [{"number": 1, "segments": [{"words": [{"start_ms": 0, "text": " Tak"}]}]}]}
    assert check_repetitions(clean).status == "pass"


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
    result = check_credits(document)
    assert result.status == "warn"
    assert result.detail == "statement 1 at 00:00:06,000: 'Undertekster af Amara.org'"


@pytest.mark.slow
def test_real_speech_made_to_loop_is_decoded_again_and_listed(
    real_media: Path, make_meeting, out_dir: Path, small_form: Path, tmp_path: Path
) -> None:
    """Real speech with "ask not what" said six times over (cut from the JFK recording): Whisper writes a
    loop; the pipeline decodes that stretch again or keeps it flagged, never drops it silently, and the
    QC report and the transcript JSON say so."""
    from conftest import run_cli

    from pipeline import media

    looped = tmp_path / "looped.flac"
    phrase = "atrim=start=3.1:end=5.3,asetpts=PTS-STARTPTS"
    graph = (
        f"[0:a]{phrase},asplit=6[p1][p2][p3][p4][p5][p6];"
        "[0:a]atrim=end=3.1,asetpts=PTS-STARTPTS[head];[0:a]atrim=start=5.3,asetpts=PTS-STARTPTS[tail];"
        "[head][p1][p2][p3][p4][p5][p6][tail]concat=n=8:v=0:a=1[out]"
    )
    media.run_ffmpeg(
        ["-nostdin", "-v", "error", "-i", str(real_media / "en-jfk.flac"), "-filter_complex", graph,
         "-map", "[out]", str(looped)],
        what="repeat a phrase",
    )  # fmt: skip
    meeting = make_meeting({"looped.flac": looped})
    result = run_cli("run", meeting, "--out", out_dir, "--form", small_form, "--language", "en", "--quiet")
    assert result.returncode == 0, result.stderr
    delivery = out_dir / "delivery"
    (document_file,) = delivery.glob("*-transkription.json")
    document = json.loads(document_file.read_text(encoding="utf-8"))
    words = [w for st in document["statements"] for s in st["segments"] for w in s["words"]]
    marked = [w for w in words if {"redecoded", "repeated"} & set(w.get("flags", ()))]
    assert marked, [w["text"] for w in words]
    # What was said around the loop is all there.
    text = " ".join(w["text"].strip(" ,.").lower() for w in words)
    assert text.startswith("and so my fellow americans") and text.endswith("what you can do for your country")
    # Nothing unmarked repeats four times in a row.
    plain = [w["text"].strip(" ,.").lower() for w in words if w not in marked]
    assert not find_loops(plain), plain
    qc = json.loads((delivery / "qc-report.json").read_text(encoding="utf-8"))
    (repetitions,) = [c for c in qc["checks"] if c["check"] == "transcript.repetitions"]
    kept = [w for w in marked if "repeated" in w.get("flags", ())]
    if kept:
        assert repetitions["status"] == "warn" and "kept for review" in repetitions["measured"]
    redecoded = sum("redecoded" in w.get("flags", ()) for w in words)
    if redecoded:
        assert f"{redecoded} words decoded again" in repetitions["measured"]
