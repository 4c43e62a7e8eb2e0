"""Captions a viewer can switch: the clean master beside the burned-in clip (``subtitles.master``).

Measured with ffprobe and ffmpeg on the demo's delivery (the demo form makes a master as the default form
does), never from the settings that made it; the delivery page's player is in test_documents.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pysubs2
import pytest
from conftest import TEST_OUTPUT, DemoRun, run_here
from PIL import Image, ImageChops

from pipeline.config import Form, SubtitleForm, load_form
from pipeline.stages.check.clip import ClipFacts, SubtitleTrack, VideoFacts, check_master


def probe(path: Path, *args: str) -> dict:  # type: ignore[type-arg]
    found = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", *args, str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(found.stdout)  # type: ignore[no-any-return]


def frames_of(path: Path) -> int:
    (stream,) = probe(
        path, "-select_streams", "v:0", "-count_packets", "-show_entries", "stream=nb_read_packets"
    )["streams"]
    return int(stream["nb_read_packets"])


def frame_at(path: Path, seconds: float, target: Path) -> Image.Image:
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-ss",
            f"{seconds:.3f}",
            "-i",
            str(path),
            "-frames:v",
            "1",
            str(target),
        ],
        check=True,
    )
    return Image.open(target).convert("L")


def test_the_default_form_delivers_a_clean_master_and_says_so() -> None:
    form, _ = load_form("default")
    assert form.subtitles.master and form.subtitles.burns and form.subtitles.clean_master
    # Nothing to make where nothing is burned in: a soft clip is itself clean, none has no subtitles.
    for mode in ("soft", "none"):
        assert not SubtitleForm(mode=mode, master=True).clean_master
    assert not Form().subtitles.clean_master  # a form file that leaves it out makes none


@pytest.mark.slow
def test_the_demo_delivers_a_clean_master_with_the_captions_as_a_track(demo_run: DemoRun) -> None:
    assert demo_run.result.returncode == 0, demo_run.result.stderr
    delivery = demo_run.out / "delivery"
    (master,) = delivery.glob("*-master.mp4")
    clip = delivery / master.name.replace("-master.mp4", ".mp4")
    (srt,) = delivery.glob("*.da.srt")
    cues = [c for c in pysubs2.load(str(srt), encoding="utf-8") if c.plaintext.strip()]

    # The track: mov_text in Danish, one sample with text for every subtitle of the SRT.
    streams = probe(master, "-show_entries", "stream=index,codec_type,codec_name:stream_tags=language")
    texts = [s for s in streams["streams"] if s["codec_type"] == "subtitle"]
    assert [(s["codec_name"], s["tags"]["language"]) for s in texts] == [("mov_text", "dan")]
    packets = probe(master, "-select_streams", "s:0", "-show_entries", "packet=size")["packets"]
    assert sum(1 for p in packets if int(p["size"]) > 2) == len(cues)
    # The burned-in clip has no track in the demo's mode burn: the master is the one to switch.
    assert not [
        s
        for s in probe(clip, "-show_entries", "stream=codec_type")["streams"]
        if s["codec_type"] == "subtitle"
    ]

    # The same picture and sound, as long to the frame.
    assert frames_of(master) == frames_of(clip)
    lengths = [
        float(probe(p, "-show_entries", "format=duration")["format"]["duration"]) for p in (master, clip)
    ]
    assert abs(lengths[0] - lengths[1]) <= 1 / 25

    # At a subtitle's middle, the burned clip differs from the master where subtitles are drawn (the
    # bottom of the frame) and nowhere else: the master has no text in its picture.
    cue = max(cues, key=lambda c: len(c.plaintext))
    seconds = (cue.start + cue.end) / 2000
    folder = TEST_OUTPUT / "captions"
    folder.mkdir(parents=True, exist_ok=True)
    burned = frame_at(clip, seconds, folder / "burned.png")
    clean = frame_at(master, seconds, folder / "master.png")
    width, height = burned.size
    band = (0, round(height * 0.75), width, height)  # two lines of 5 % text above the 5 % safe margin
    above = (0, 0, width, round(height * 0.6))
    changed = ImageChops.difference(burned, clean)
    text_pixels = sum(1 for v in changed.crop(band).getdata() if v > 64)
    assert text_pixels > 500, f"no burned-in text told apart at {seconds:.2f} s ({text_pixels} pixels)"
    assert sum(1 for v in changed.crop(above).getdata() if v > 64) < 50, "the pictures differ above the text"
    bright = sum(1 for v in clean.crop(band).getdata() if v > 235)
    assert bright < text_pixels / 4, f"white text in the master's subtitle band ({bright} pixels)"

    # The delivery lists it and its check measured it.
    sums = (delivery / "SHA256SUMS").read_text(encoding="utf-8")
    assert f"  {master.name}\n" in sums
    qc = json.loads((delivery / "qc-report.json").read_text(encoding="utf-8"))
    checks = {r["check"]: r["status"] for r in qc["checks"]}
    assert {
        k: checks.get(k) for k in ("master.file", "master.soft_track", "master.picture", "master.frames")
    } == {
        "master.file": "pass",
        "master.soft_track": "pass",
        "master.picture": "pass",
        "master.frames": "pass",
    }


@pytest.mark.slow
def test_hearing_check_fails_a_missing_or_wrong_master(demo_run: DemoRun, tmp_path: Path) -> None:
    """The official's own check of a copy of the delivery: a master that is gone, or one that is the
    burned clip again (no track) or shorter, fails, naming the master check."""
    assert demo_run.result.returncode == 0, demo_run.result.stderr
    form = Path(demo_run.report["options"]["form"])
    copy = tmp_path / "levering"
    copy.mkdir()
    for path in (demo_run.out / "delivery").iterdir():
        (copy / path.name).symlink_to(path)
    (master,) = copy.glob("*-master.mp4")
    clip = copy / master.name.replace("-master.mp4", ".mp4")

    def failed() -> set[str]:
        result = run_here("check", clip, "--form", form, "--json")
        report = json.loads(result.stdout)
        bad = {r["check"] for r in report["checks"] if r["status"] == "fail"}
        assert (result.returncode == 1) == bool(bad), result.stderr
        return bad

    assert failed() == set()
    master.unlink()
    assert failed() == {"master.file"}
    master.symlink_to(clip.resolve())  # the burned clip under the master's name: no track
    assert failed() == {"master.soft_track"}
    master.unlink()
    master.write_bytes(b"ikke en video " * 100)  # not media at all: named, never a traceback
    assert failed() == {"master.file"}
    master.unlink()
    whole = demo_run.out / "delivery" / master.name
    cut = ["ffmpeg", "-v", "error", "-i", str(whole), "-map", "0", "-c", "copy", "-t", "10", str(master)]
    subprocess.run(cut, check=True)
    assert "master.frames" in failed()


def facts(frames: int, *tracks: SubtitleTrack, duration_ms: int = 10_000) -> ClipFacts:
    video = VideoFacts("h264", "High", "yuv420p", 1920, 1080, "1:1", frames, 25.0, True, (40.0, 40.0))
    return ClipFacts(
        "x.mp4", "mov,mp4", "isom", ("moov", "mdat"), duration_ms, video, None, 0, tracks, None, None
    )


def test_the_master_check_by_kind() -> None:
    form = Form(subtitles=SubtitleForm(master=True))
    clip = facts(250)
    good = facts(250, SubtitleTrack("mov_text", "dan", 12))

    def failing(master: ClipFacts | None, cues: int | None = 12, language: str | None = None) -> list[str]:
        return [
            r.check
            for r in check_master("x-master.mp4", master, clip, cues, form, language)
            if r.status == "fail"
        ]

    assert failing(good) == []
    assert failing(None) == ["master.file"]
    assert failing(good, cues=11) == ["master.soft_track"]  # a subtitle missing from the track
    assert failing(good, cues=None) == ["master.soft_track"]  # no readable SRT to count against
    assert failing(good, language="en") == ["master.soft_track"]  # the track in another language
    assert failing(facts(250)) == ["master.soft_track"]
    assert failing(facts(250, SubtitleTrack("mov_text", "und", 12))) == ["master.soft_track"]
    two = facts(250, SubtitleTrack("mov_text", "dan", 12), SubtitleTrack("mov_text", "dan", 12))
    assert failing(two) == ["master.soft_track"]  # which one would a player show?
    assert failing(facts(249, SubtitleTrack("mov_text", "dan", 12))) == ["master.frames"]
    late = facts(250, SubtitleTrack("mov_text", "dan", 12), duration_ms=10_041)
    assert failing(late) == ["master.frames"]
    assert failing(facts(250, SubtitleTrack("mov_text", "dan", 12), duration_ms=10_040)) == []
    # A form without a master asks nothing of one.
    assert check_master("x-master.mp4", None, clip, 12, Form(), None) == []
