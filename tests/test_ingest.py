"""The pure core of ingest: which files, in which order, with which consent, and why one is left out."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import Form, Meeting, StatementEntry
from pipeline.errors import ConfigError
from pipeline.models import AudioInfo, MediaProbe, Recording, VideoInfo
from pipeline.stages.ingest import (
    FoundFile,
    normalise_entry_path,
    plan_statements,
    select_files,
    usable,
    walk,
)

AUDIO = AudioInfo(index=1, codec="aac", sample_rate=48000, channels=2, layout="stereo", duration_ms=20_000)
VIDEO = VideoInfo(0, "h264", 1920, 1080, 0, 25.0, False, "yuv420p", "1:1")


def probe(
    duration_ms: int = 20_000, audio: tuple[AudioInfo, ...] = (AUDIO,), video: VideoInfo | None = VIDEO
):
    return MediaProbe("mov,mp4,m4a,3gp,3g2,mj2", duration_ms, video, audio)


def test_file_name_order_is_natural_and_skips_non_media() -> None:
    names = ["10-b.mp4", "2-a.MOV", "notes.txt", "meeting.yaml", "._2-a.MOV", "sub/1.m4a", "x.WAV"]
    assert select_files(names) == ["2-a.MOV", "10-b.mp4", "sub/1.m4a", "x.WAV"]


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("recordings/01-anna.mp4", "recordings/01-anna.mp4"),
        ("./a/../b.mp4", "b.mp4"),
        ("recordings\\x.mov", "recordings/x.mov"),
        ("../../etc/passwd", None),
        ("/etc/passwd", None),
        ("C:/video.mp4", None),
    ],
)
def test_meeting_paths_stay_inside_the_folder(raw: str, clean: str | None) -> None:
    assert normalise_entry_path(raw) == clean


def plan(meeting: Meeting, files: list[str], probes: dict | None = None, form: Form | None = None):
    found = [FoundFile(f) for f in files]
    recordings = {f: Recording(f, 1000, f"sha-{f}") for f in files}
    return plan_statements(
        meeting, "meeting.yaml", form or Form(), found, recordings, probes or {f: probe() for f in files}
    )


def test_listed_statements_come_first_then_unlisted_in_file_order_with_default_consent() -> None:
    meeting = Meeting(
        statements=[
            StatementEntry(file="b.mp4", speaker="Bo", consent={"name_on_screen": True}),
            StatementEntry(file="c.mp4", speaker="Cia", consent={"committee": False}),
        ]
    )
    statements, left_out = plan(meeting, ["a.mp4", "b.mp4", "c.mp4"])
    assert [s.recording.relpath for s in statements] == ["b.mp4", "a.mp4"]
    assert [s.id for s in statements] == ["s01", "s02"]
    assert statements[0].consent.name_on_screen and statements[0].consent.committee
    assert statements[1].speaker is None and not statements[1].consent.name_on_screen
    assert [(r.relpath, r.kind) for r in left_out] == [("c.mp4", "withheld")]
    assert "consent" in left_out[0].reason


def test_trim_is_in_milliseconds() -> None:
    meeting = Meeting(statements=[StatementEntry(file="a.mp4", trim={"start": 1.5, "end": 62.0})])
    statements, _ = plan(meeting, ["a.mp4"])
    assert statements[0].trim_ms == (1500, 62000)


@pytest.mark.parametrize(
    ("entries", "field", "words"),
    [
        (["missing.mp4"], "statements[0].file", "no such file"),
        (["a.mp4", "./a.mp4"], "statements[1].file", "again"),
        (["../../etc/passwd"], "statements[0].file", "inside the meeting folder"),
    ],
)
def test_bad_statement_files_are_config_errors(entries: list[str], field: str, words: str) -> None:
    meeting = Meeting(statements=[StatementEntry(file=e) for e in entries])
    with pytest.raises(ConfigError) as caught:
        plan(meeting, ["a.mp4"])
    assert caught.value.field == field and words in str(caught.value)


def test_unusable_recordings_get_one_reason_each() -> None:
    silent_video = probe(audio=())
    short = probe(duration_ms=300)
    statements, left_out = plan(
        Meeting(),
        ["good.mp4", "novideo.mp4", "short.wav", "broken.mp4"],
        {
            "good.mp4": probe(),
            "novideo.mp4": silent_video,
            "short.wav": short,
            "broken.mp4": "truncated or corrupt: an MP4/MOV whose index cannot be read",
        },
    )
    assert [s.recording.relpath for s in statements] == ["good.mp4"]
    reasons = {r.relpath: r.reason for r in left_out}
    assert reasons["novideo.mp4"].startswith("no audio stream")
    assert reasons["short.wav"].startswith("too short: 0.3 s")
    assert reasons["broken.mp4"].startswith("truncated or corrupt")
    assert all(r.kind == "rejected" for r in left_out)


def test_a_one_second_statement_is_usable() -> None:
    assert usable(probe(duration_ms=1000)) is None


def test_walk_reports_links_that_leave_the_folder(tmp_path: Path) -> None:
    meeting = tmp_path / "m"
    (meeting / "sub").mkdir(parents=True)
    (meeting / "sub" / "a.mp4").write_bytes(b"x")
    outside = tmp_path / "secret.mp4"
    outside.write_bytes(b"y")
    (meeting / "link.mp4").symlink_to(outside)
    (meeting / "inside.mp4").symlink_to(meeting / "sub" / "a.mp4")
    found = {f.relpath: f.problem for f in walk(meeting)}
    assert found["sub/a.mp4"] is None
    assert found["inside.mp4"] is None
    assert found["link.mp4"] is not None and "outside the meeting folder" in found["link.mp4"]
