"""The pure core of ingest: which files, in which order, with which consent, and why one is left out."""

from __future__ import annotations

import unicodedata
from dataclasses import replace
from pathlib import Path

import pytest

from pipeline.config import Form, Meeting, StatementEntry
from pipeline.errors import ConfigError
from pipeline.models import AudioInfo, MediaProbe, Recording, VideoInfo
from pipeline.stages.ingest import (
    FoundFile,
    normalise_entry_path,
    plan_statements,
    same_names,
    speech_stream,
    usable,
    walk,
)

AUDIO = AudioInfo(index=1, codec="aac", sample_rate=48000, channels=2, layout="stereo", duration_ms=20_000)
VIDEO = VideoInfo(0, "h264", 1920, 1080, 0, 25.0, False, "yuv420p", "1:1")


def probe(
    duration_ms: int = 20_000, audio: tuple[AudioInfo, ...] = (AUDIO,), video: VideoInfo | None = VIDEO
):
    return MediaProbe("mov,mp4,m4a,3gp,3g2,mj2", duration_ms, video, audio)


def test_file_name_order_is_natural_and_skips_non_media(tmp_path: Path) -> None:
    names = ["10-b.mp4", "2-a.MOV", "notes.txt", "meeting.yaml", "._2-a.MOV", "sub/1.m4a", "x.WAV"]
    for name in names:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert [f.relpath for f in walk(tmp_path)] == ["2-a.MOV", "10-b.mp4", "sub/1.m4a", "x.WAV"]


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


def test_a_name_typed_composed_finds_the_file_stored_decomposed_and_the_other_way() -> None:
    nfd = unicodedata.normalize("NFD", "optagelser/Åse Ærø.m4a")
    nfc = unicodedata.normalize("NFC", "Øster Åby.mp4")
    meeting = Meeting(
        statements=[
            StatementEntry(file=unicodedata.normalize("NFC", nfd), speaker="Åse"),
            StatementEntry(file=unicodedata.normalize("NFD", nfc)),
        ]
    )
    statements, left_out = plan(meeting, [nfd, nfc])
    # The statement is of the file as it is stored: that is the name the archive and edits/ keep.
    assert [s.recording.relpath for s in statements] == [nfd, nfc] and not left_out
    assert statements[0].speaker == "Åse"


def test_one_name_in_two_unicode_forms_is_ambiguous_and_both_files_are_rejected() -> None:
    forms = [unicodedata.normalize(form, "Århus.wav") for form in ("NFC", "NFD")]
    files = same_names([FoundFile(forms[0]), FoundFile(forms[1]), FoundFile("andet.wav")])
    assert files[2].problem is None
    for found in files[:2]:
        assert found.problem is not None
        assert "'\\xc5rhus.wav'" in found.problem and "'A\\u030arhus.wav'" in found.problem
    meeting = Meeting(statements=[StatementEntry(file=forms[0])])
    recordings = {f.relpath: Recording(f.relpath, 1, "sha") for f in files}
    probes = {f.relpath: probe() for f in files}
    statements, left_out = plan_statements(meeting, "meeting.yaml", Form(), files, recordings, probes)
    assert [s.recording.relpath for s in statements] == ["andet.wav"]
    assert sorted(r.relpath for r in left_out) == sorted(forms)


def test_a_name_that_is_not_text_is_not_mistaken_for_a_file_named_like_its_escape() -> None:
    """A file whose name has the byte 0xff is shown as ``a\\xff.wav``; a file really named so (with a
    backslash, as Linux allows) is another file, and each is judged on its own."""
    escaped = FoundFile("a\\xff.wav", "the file name is not valid UTF-8: rename it", name_ok=False)
    real = FoundFile("a\\xff.wav")
    recordings = {"a\\xff.wav": Recording("a\\xff.wav", 1, "sha")}
    statements, left_out = plan_statements(
        Meeting(), "meeting.yaml", Form(), [escaped, real], recordings, {"a\\xff.wav": probe()}
    )
    assert [s.recording.relpath for s in statements] == ["a\\xff.wav"]
    assert [(r.relpath, r.reason) for r in left_out] == [(escaped.relpath, escaped.problem)]


@pytest.mark.parametrize(
    ("audio", "reason"),
    [
        (replace(AUDIO, channels=48, layout="48 channels"), None),
        (replace(AUDIO, channels=64, layout="64 channels"), None),
        (replace(AUDIO, channels=65, layout="65 channels"), "65 audio channels: at most 64"),
        (replace(AUDIO, sample_rate=8000, channels=1), None),
        (replace(AUDIO, sample_rate=4000), None),
        (replace(AUDIO, sample_rate=3999), "a sample rate of 3999 Hz is too low to carry speech"),
        (replace(AUDIO, sample_rate=10_000_000), None),
        (replace(AUDIO, channels=0), "audio stream cannot be decoded"),
    ],
)
def test_what_sound_a_statement_can_be_made_of(audio: AudioInfo, reason: str | None) -> None:
    said = usable(probe(audio=(audio,)))
    assert said is None if reason is None else said is not None and said.startswith(reason)


def test_the_first_usable_stream_carries_the_speech() -> None:
    many = replace(AUDIO, index=1, channels=100, layout="100 channels")
    assert speech_stream(probe(audio=(many, replace(AUDIO, index=2)))) == 2
    assert usable(probe(audio=(many, replace(AUDIO, index=2)))) is None
