"""A statement with speech but no recognised words still reaches the committee, flagged for a person."""

from __future__ import annotations

from dataclasses import replace

from test_cut import statement

from pipeline.config import Form, Meeting
from pipeline.meeting_facts import MeetingFacts
from pipeline.models import StatementTranscript
from pipeline.stages import transcript
from pipeline.stages.check.transcript import check_text_recognised, compare_words, transcript_texts
from pipeline.stages.cut import Cut, plan_cut
from pipeline.stages.transcribe import MIN_SPEECH_WITHOUT_WORDS_MS, NO_SPEECH_REASON, judge_no_words


def test_no_words_is_a_rejection_only_without_speech() -> None:
    assert judge_no_words(0) == NO_SPEECH_REASON
    assert judge_no_words(MIN_SPEECH_WITHOUT_WORDS_MS - 1) == NO_SPEECH_REASON
    # The voice detector heard speech the engine could not write down: it goes to the committee.
    assert judge_no_words(MIN_SPEECH_WITHOUT_WORDS_MS) is None
    assert judge_no_words(45_000) is None


def test_silence_is_known_without_another_pass() -> None:
    from pipeline.stages.transcribe import no_words_upper_bound_rejects

    silent = StatementTranscript("s01", "da", "faster-whisper", "base", (), heard_ms=0)
    assert no_words_upper_bound_rejects(silent)
    # Enough voice passed on that only the exact count can tell; and an old transcript without the count.
    assert not no_words_upper_bound_rejects(replace(silent, heard_ms=MIN_SPEECH_WITHOUT_WORDS_MS))
    assert not no_words_upper_bound_rejects(replace(silent, heard_ms=None))


def _empty(sid: str) -> StatementTranscript:
    return StatementTranscript(sid, "da", "faster-whisper", "base", (), seed=7, no_text=True)


def test_a_statement_without_words_keeps_its_picture_and_sound() -> None:
    spoken = statement("s01", duration_ms=30_000)
    cut = plan_cut(spoken, _empty("s01"), Form())
    assert isinstance(cut, Cut)
    assert (cut.in_ms, cut.out_ms, cut.how) == (0, 30_000, "whole")


def test_the_transcript_and_the_qc_report_flag_it() -> None:
    spoken = statement("s01")
    doc = transcript.document(
        MeetingFacts.named(Meeting(title="Borgermøde"), "moede"),
        Form(),
        [spoken],
        {"s01": _empty("s01")},
        engine="faster-whisper",
        model="base",
        language="da",
        starts_ms={"s01": 4000},
    )
    text = transcript.render_txt(doc)
    assert transcript.NO_TEXT_NOTE in text
    document = transcript.render_json(doc)
    (entry,) = document["statements"]
    assert entry["no_text"] is True and entry["flags"] == ["no_text_recognised"] and entry["text"] == ""
    assert entry["seed"] == 7

    result = check_text_recognised(document)
    assert result.status == "warn"
    assert result.measured == "no text recognised in statement 1 (Borger 1)"
    # No subtitles and no words on either side: the word comparison has nothing to disagree about.
    assert compare_words([], transcript_texts(document)).status == "pass"


def test_statements_with_text_pass_the_check() -> None:
    document = {"statements": [{"number": 1, "text": "Kære udvalg", "no_text": False}]}
    assert check_text_recognised(document).status == "pass"
