"""The one place times, rates and the meeting's facts are written: each way of writing a time says what it
said before it moved here, at the edges (negative, past an hour, past a hundred hours, rounding), and a
meeting's facts fall back the same way in every output."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline import timefmt
from pipeline.config import Meeting
from pipeline.meeting_facts import MeetingFacts
from pipeline.stages.subtitles.io import parse_srt, parse_vtt, to_srt, to_vtt
from pipeline.stages.subtitles.rules import Cue
from pipeline.texts import documents, report


@pytest.mark.parametrize(
    ("ms", "srt", "code", "short"),
    [
        (-5, "00:00:00,000", "00:00:00", "0:00"),
        (0, "00:00:00,000", "00:00:00", "0:00"),
        (999, "00:00:00,999", "00:00:00", "0:00"),
        (61_001, "00:01:01,001", "00:01:01", "1:01"),
        (3_599_999, "00:59:59,999", "00:59:59", "59:59"),
        (3_600_000, "01:00:00,000", "01:00:00", "60:00"),
        (360_000_000, "100:00:00,000", "100:00:00", "6000:00"),
    ],
)
def test_each_time_stamp_at_its_edges(ms: int, srt: str, code: str, short: str) -> None:
    assert timefmt.srt_time(ms) == timefmt.clock(ms) == srt
    assert timefmt.vtt_time(ms) == srt.replace(",", ".")
    assert timefmt.timecode(ms) == code
    assert timefmt.minutes_seconds(max(ms, 0)) == short


@given(st.integers(0, 10**9))
def test_a_written_time_stamp_reads_back_as_the_same_millisecond(ms: int) -> None:
    cue = Cue(ms, ms + 1, ("x",))
    assert [(c.start_ms, c.end_ms) for c in parse_srt(to_srt([cue]))] == [(ms, ms + 1)]
    assert [(c.start_ms, c.end_ms) for c in parse_vtt(to_vtt([cue]))] == [(ms, ms + 1)]


def test_lengths_and_rates_as_each_reader_takes_them() -> None:
    assert timefmt.seconds_text(59_999) == "60.00 s"  # rounds, and still under a minute
    assert timefmt.seconds_text(60_040) == "60.04 s (1:00)"
    assert timefmt.duration_words(59_400) == "59 s"
    assert timefmt.duration_words(59_500) == "1 min 00 s"  # rounded to the second first
    assert timefmt.duration_words(125_000) == "2 min 05 s"
    assert timefmt.ffmpeg_seconds(1) == "0.001" and timefmt.ffmpeg_seconds(3_600_000) == "3600.000"
    assert timefmt.ffmpeg_rate(29.97) == timefmt.ffmpeg_rate(30000 / 1001) == "30000/1001"
    assert timefmt.ffmpeg_rate(23.976) == "24000/1001" and timefmt.ffmpeg_rate(59.94) == "60000/1001"
    assert timefmt.ffmpeg_rate(25.0) == "25" and timefmt.ffmpeg_rate(12.5) == "12.5"
    # A measured rate is reported as measured, never as the exact fraction it is near.
    assert timefmt.fps_text(30000 / 1001) == "29.97" and timefmt.fps_text(25.0) == "25"
    assert timefmt.fps_text(24.0004) == "24"


def test_the_meeting_facts_fall_back_to_the_folder_and_the_committee_word(tmp_path: Path) -> None:
    folder = tmp_path / "borgermøde-nordby"
    bare = MeetingFacts.of(Meeting(), folder)
    assert bare.title == "borgermøde-nordby" and bare.given_title is None
    assert bare.addressee == documents.COMMITTEE_FALLBACK == "udvalget"
    assert bare.archive_title == "Recordings of the citizen meeting borgermøde-nordby"
    given = MeetingFacts.of(
        Meeting(title="Møde i hallen", committee="Teknik", date=dt.date(2026, 11, 20)), folder
    )
    assert (given.title, given.archive_title, given.addressee) == ("Møde i hallen", "Møde i hallen", "Teknik")
    assert documents.danish_date(given.date) == "20. november 2026"
    assert documents.danish_date(None) == "uden dato"


def test_a_folder_name_that_is_not_text_stands_in_as_text(tmp_path: Path) -> None:
    folder = tmp_path / "m\udcf8de\x07"
    facts = MeetingFacts.of(Meeting(), folder)
    assert facts.title == "m\ufffdde"  # not UTF-8: U+FFFD; a control character: left out
    assert MeetingFacts.of(Meeting(), tmp_path / "\x01").title == "møde"


def test_the_report_verdict_has_its_danish_half() -> None:
    line = report.conforms(2)
    assert line.startswith("Klippet OVERHOLDER") and "2 advarsler / warnings" in line
    assert report.danish(line) == "Klippet OVERHOLDER den aftalte form"
    assert report.danish(report.DOES_NOT_CONFORM) == "Klippet OVERHOLDER IKKE den aftalte form"
