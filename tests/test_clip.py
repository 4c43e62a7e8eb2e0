"""The committee-ready clip, end to end: real transcription, real renders, measured results."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from conftest import REPO, TEST_OUTPUT, DemoRun, ffmpeg, run_cli, tree_digest

pytestmark = pytest.mark.slow


def clip_facts(path: Path) -> dict:
    """What ffprobe would say, read with PyAV: codecs, profile, size, frame timing, audio layout."""
    import av

    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0]
        subtitle_streams = list(container.streams.subtitles)
        facts = {
            "codec": video.codec_context.name,
            "profile": video.profile,
            "pix_fmt": video.codec_context.pix_fmt,
            "size": (video.codec_context.width, video.codec_context.height),
            "sar": video.sample_aspect_ratio,
            "rate": float(video.average_rate),
            "audio": (
                audio.codec_context.name,
                audio.codec_context.sample_rate,
                audio.codec_context.channels,
            ),
            "subtitles": [(s.codec_context.name, s.language) for s in subtitle_streams],
            "duration_ms": round(container.duration / 1000),
        }
        times = sorted(p.pts for p in container.demux(video) if p.pts is not None)
        facts["frame_gaps"] = {b - a for a, b in itertools.pairwise(times)}
        facts["frames"] = len(times)
    return facts


def frame_png(clip: Path, at_ms: int, target: Path) -> None:
    ffmpeg("-ss", f"{at_ms / 1000:.3f}", "-i", clip, "-frames:v", "1", target)


def loudness(clip: Path):
    """Measured as `hearing check` measures it: EBU R 128 of the decoded audio."""
    from pipeline import media

    return media.measure_r128(clip)


def check_subtitles(path: Path, clip_ms: int, form) -> list:
    from pipeline.stages.subtitles.io import parse_srt, parse_vtt
    from pipeline.stages.subtitles.rules import SubtitleRules

    cues = (
        parse_srt(path.read_text(encoding="utf-8"))
        if path.suffix == ".srt"
        else parse_vtt(path.read_text(encoding="utf-8"))
    )
    assert cues, f"{path.name} has no cues"
    rules = SubtitleRules.from_form(form)
    for before, after in itertools.pairwise(cues):
        assert before.start_ms <= after.start_ms
        assert after.start_ms - before.end_ms >= rules.min_gap_ms, (before, after)
    for cue in cues:
        assert 0 <= cue.start_ms < cue.end_ms <= clip_ms
        assert len(cue.lines) <= form.subtitles.max_lines, cue
        assert all(len(line) <= form.subtitles.max_chars_per_line for line in cue.lines), cue
        assert rules.min_duration_ms <= cue.end_ms - cue.start_ms <= rules.max_duration_ms, cue
    return cues


def test_demo_delivers_a_committee_ready_clip(demo_run: DemoRun) -> None:
    from PIL import Image

    from pipeline.config import load_form

    form, _ = load_form("demo")
    out_dir, result, samples_before = demo_run.out, demo_run.result, demo_run.samples_before
    assert result.returncode == 0, result.stderr
    report = json.loads((out_dir / "run.json").read_text(encoding="utf-8"))
    name = report["delivery"]["name"]
    delivery = out_dir / "delivery"
    clip = delivery / f"{name}.mp4"

    facts = clip_facts(clip)
    assert facts["codec"] == "h264" and facts["profile"] == "High" and facts["pix_fmt"] == "yuv420p"
    assert facts["size"] == (1280, 720) and facts["sar"] in (None, 1)
    assert facts["rate"] == 25 and facts["frame_gaps"] == {min(facts["frame_gaps"])}, (
        "not constant frame rate"
    )
    assert facts["audio"] == ("aac", 48000, 2)
    boxes = [kind for kind, _ in __import__("pipeline.media", fromlist=["mp4_boxes"]).mp4_boxes(clip)]
    assert boxes.index("moov") < boxes.index("mdat"), boxes

    # Cards plus trimmed statements, as planned from the cuts alone.
    cuts = report["cuts"]
    expected = form.clip.title_card.seconds * 1000 + sum(c["out_ms"] - c["in_ms"] for c in cuts.values())
    # Every statement is announced by its card, the sound recording too (its name caption is there).
    expected += len(report["statements"]) * form.clip.statement_cards.seconds * 1000
    assert abs(facts["duration_ms"] - expected) <= 200, (facts["duration_ms"], expected)
    assert facts["duration_ms"] <= form.clip.max_duration * 1000

    measured = loudness(clip)
    assert abs(measured.integrated - form.audio.loudness) <= 1.0, measured
    assert measured.true_peak <= form.audio.true_peak + 0.1, measured

    cues = check_subtitles(delivery / f"{name}.da.srt", facts["duration_ms"], form)
    vtt = check_subtitles(delivery / f"{name}.da.vtt", facts["duration_ms"], form)
    assert [c.text for c in cues] == [c.text for c in vtt]
    assert any("Søren Ærø Østergård" in c.text for c in cues), "the card's name must be in the captions too"
    assert not any("Karen" in c.text or "Lise" in c.text for c in cues), "a name without consent"

    # Look at it: the title card, a burned-in subtitle, and the portrait statement pillarboxed.
    pictures = TEST_OUTPUT / "frames" / "demo"
    pictures.mkdir(parents=True, exist_ok=True)
    timeline = report["timeline"]
    frame_png(clip, 1000, pictures / "title-card.png")
    soeren = next(s["id"] for s in report["statements"] if s["file"].endswith("02-soeren.mov"))
    part = next(p for p in timeline if p["kind"] == "statement" and p["statement"] == soeren)
    speech_cue = next(
        c for c in cues if part["start_ms"] <= c.start_ms < part["start_ms"] + part["duration_ms"]
    )
    middle = (speech_cue.start_ms + speech_cue.end_ms) // 2
    frame_png(clip, middle, pictures / "portrait-with-subtitle.png")
    card = next(p for p in timeline if p["kind"] == "card" and p["statement"] == soeren)
    frame_png(clip, card["start_ms"] + card["duration_ms"] // 2, pictures / "statement-card.png")

    portrait = Image.open(pictures / "portrait-with-subtitle.png").convert("RGB")
    width, height = portrait.size
    left_bar = portrait.crop((0, 0, width // 5, height // 2))
    assert max(max(px) for px in left_bar.getdata()) < 24, "no black bar left of a portrait statement"
    centre = portrait.getpixel((width // 2, height // 4))
    assert centre[1] > 80, "the portrait picture is not in the middle"
    # The subtitle is burned in: bright text pixels in the bottom band over the picture.
    bottom = portrait.crop((width // 4, int(height * 0.8), 3 * width // 4, int(height * 0.95)))
    assert sum(1 for px in bottom.getdata() if min(px) > 220) > 50, "no burned-in subtitle"

    # The transcripts: consent respected, Danish letters intact, timed to the clip.
    from docx import Document

    doc = json.loads((delivery / f"{name}-transkription.json").read_text(encoding="utf-8"))
    labels = [s["speaker_label"] for s in doc["statements"]]
    assert labels == ["Anna Jensen", "Søren Ærø Østergård", "Borger 3", "Mads Bøgh Nielsen"]
    assert all(s["text"] for s in doc["statements"])
    starts = {p["statement"]: p["start_ms"] for p in timeline if p["kind"] == "statement"}
    assert [s["start_ms"] for s in doc["statements"]] == [starts[s["id"]] for s in doc["statements"]]
    text = (delivery / f"{name}-transkription.txt").read_text(encoding="utf-8")
    docx_text = "\n".join(p.text for p in Document(str(delivery / f"{name}-transkription.docx")).paragraphs)
    for body in (text, docx_text):
        assert "Borgermøde om trafiksikkerhed i Nordby" in body
        assert "Søren Ærø Østergård" in body and "Cykelsti langs Åvej" in body
        assert "Karen Mølgaard" not in body, "a name without consent reached the transcript"
        assert "Lise" not in body and "Krydset ved Brugsen" not in body, "a statement without consent"
    assert [w["file"] for w in report["withheld"]] == ["recordings/05-lise.mp4"]

    import hashlib

    sums = (delivery / "SHA256SUMS").read_text(encoding="utf-8").splitlines()
    assert sorted(line.split("  ", 1)[1] for line in sums) == sorted(
        [f"{name}.mp4", f"{name}-master.mp4", f"{name}.da.srt", f"{name}.da.vtt", f"{name}-tidslinje.json"]
        + ["qc-report.json", "qc-report.txt"]
        + [f"{name}-foelgebrev.pdf", "deltagerbrev.txt", "deltagerbrev.html", "index.html"]
        + [f"{name}-transkription.{x}" for x in ("txt", "json", "docx", "pdf")]
    )
    for line in sums:
        digest, file = line.split("  ", 1)
        assert hashlib.sha256((delivery / file).read_bytes()).hexdigest() == digest

    qc = json.loads((delivery / "qc-report.json").read_text(encoding="utf-8"))
    assert report["qc"]["passed"] and not report["qc"]["failures"], qc

    # Nothing changed: the second run renders nothing.
    again = run_cli("demo", "--out", out_dir)
    assert again.returncode == 0, again.stderr
    second = json.loads((out_dir / "run.json").read_text(encoding="utf-8"))
    work_stages = [
        s
        for s in second["stages"]
        if s["stage"] in ("speech-audio", "transcribe", "loudness", "render", "join", "card")
    ]
    assert work_stages and all(s["cached"] for s in work_stages), [s for s in work_stages if not s["cached"]]
    assert tree_digest(REPO / "samples") == samples_before


def test_statements_are_rendered_while_the_next_is_transcribed(demo_run: DemoRun) -> None:
    """The first run makes every card before the engine is done, renders statements while the engine
    listens to the next, and the clip's render then finds exactly those in the cache: nothing done
    ahead is done twice. What the background thread had not started when the engine was done (on a busy
    machine the engine may hear the last ones first), the run makes in its turn."""
    stages = demo_run.report["stages"]
    statements = [s["id"] for s in demo_run.report["statements"]]
    ahead = [s for s in stages if s.get("ahead")]
    made_ahead = [s["key"] for s in ahead if not s["cached"]]
    assert made_ahead and len(made_ahead) == len(set(made_ahead)), ahead
    heard = [s["statement"] for s in stages if s["stage"] == "transcribe"]
    first_heard = next(i for i, s in enumerate(stages) if s["stage"] == "transcribe")
    # A card needs no words: every statement's card is asked for before the engine listens, in the order
    # they are heard, so those made ahead are the first ones heard, in that order, and the first is made
    # while its own statement is heard.
    cards = [(i, s) for i, s in enumerate(stages) if s["stage"] == "render" and s.get("part") == "card"]
    made = {s["statement"]: i for i, s in cards if s.get("ahead") and not s["cached"]}
    assert sorted(made, key=made.__getitem__) == heard[: len(made)], (made, heard)
    assert heard[0] in made and made[heard[0]] < first_heard, stages
    ahead_renders = {s["key"]: s for s in ahead if s["stage"] == "render"}
    rendered_by_the_run = {s["key"]: s for s in stages if s["stage"] == "render" and not s.get("ahead")}
    assert set(ahead_renders) <= set(rendered_by_the_run)
    assert all(rendered_by_the_run[key]["cached"] for key in ahead_renders), "rendered twice"
    # A statement is rendered ahead once it is heard, while the engine listens to another: never the last
    # one heard (the run renders it in its turn, at full speed); those rendered ahead are the first ones
    # heard, in that order, and at least the first one is.
    rendered = [s["statement"] for s in ahead_renders.values() if s.get("part") == "statement"]
    done_ahead = list(dict.fromkeys(rendered))
    in_clip = [s for s in heard[:-1] if s in statements]
    assert done_ahead and done_ahead == in_clip[: len(done_ahead)], (done_ahead, heard)


def test_shared_recordings_as_statements(
    real_media: Path, make_meeting, out_dir: Path, small_form: Path
) -> None:
    meeting = make_meeting(
        {
            "1-talking-head.mp4": real_media / "en-talking-head.mp4",
            "2-iphone.mov": real_media / "portrait-rotated-iphone.mov",
        },
        "title: Test meeting\ncommittee: Udvalget\nstatements:\n"
        "  - file: 1-talking-head.mp4\n    speaker: Voice\n    consent: {name_on_screen: true}\n"
        "  - file: 2-iphone.mov\n",
    )
    result = run_cli("run", meeting, "--out", out_dir, "--form", small_form, "--language", "en")
    # The iPhone clip is near-silent: no speech, so it is reported and the rest is delivered.
    assert result.returncode == 5, result.stderr
    assert "2-iphone.mov" in result.stderr and "no speech found" in result.stderr
    report = json.loads((out_dir / "run.json").read_text(encoding="utf-8"))
    clip = out_dir / "delivery" / f"{report['delivery']['name']}.mp4"
    facts = clip_facts(clip)
    assert facts["size"] == (640, 360) and facts["rate"] == 25 and len(facts["frame_gaps"]) == 1
    # The statements are in English (--language en), so the soft track says so.
    assert facts["subtitles"] == [("mov_text", "eng")]
    text = (out_dir / "delivery" / f"{report['delivery']['name']}.en.srt").read_text(encoding="utf-8").lower()
    assert "example video" in text and "banana" in text
    measured = loudness(clip)
    assert abs(measured.integrated + 23) <= 1.0 and measured.true_peak <= -0.9, measured


def test_portrait_phone_video_renders_upright_and_pillarboxed(real_media: Path, tmp_path: Path) -> None:
    """The iPhone clip has no speech, so it never reaches a delivery; its picture is rendered directly."""
    from PIL import Image

    from pipeline import media
    from pipeline.config import Form
    from pipeline.media import loudness
    from pipeline.models import Consent, Recording, Statement
    from pipeline.stages import render
    from pipeline.stages.cut import Cut, Part

    source = real_media / "portrait-rotated-iphone.mov"
    probe = media.probe(source)
    assert probe.video is not None and probe.video.rotation == 90
    statement = Statement(
        "s01", Recording("x.mov", 1, "sha"), probe, probe.audio[0].index, None, None, None, Consent(), None
    )
    form = Form.model_validate({"video": {"width": 640, "height": 360, "preset": "ultrafast"}})
    cut = Cut("s01", 0, 2000, "whole")
    part = Part("statement", "s01", 0, 50, 25)
    frames = loudness.meter(render.meter_args(source, statement.audio_stream, form), what="meter")
    measured = loudness.stretch(frames, cut.in_ms, cut.out_ms)
    target = tmp_path / "segment.mov"
    args = render.statement_args(
        source, statement, cut, part, form, measured, target, subtitles=None, fonts_dir=None, card_png=None
    )
    render.run_segment(args, target, what="render", duration_ms=2000)
    facts = clip_facts(target)
    assert facts["size"] == (640, 360) and facts["frames"] == 50 and len(facts["frame_gaps"]) == 1
    picture = TEST_OUTPUT / "frames" / "iphone-portrait.png"
    picture.parent.mkdir(parents=True, exist_ok=True)
    frame_png(target, 1000, picture)
    image = Image.open(picture).convert("RGB")
    # Stored 568x320 turned by 90 degrees is 320x568 upright: scaled into 360 rows it is about 203 wide.
    columns = [
        x
        for x in range(640)
        if max(image.getpixel((x, y))[c] for y in range(0, 360, 8) for c in range(3)) > 30
    ]
    assert 180 <= columns[-1] - columns[0] + 1 <= 225, (columns[0], columns[-1])
    assert abs((columns[0] + columns[-1]) / 2 - 320) < 12


def test_a_cut_measures_from_the_metered_recording_as_the_cut_itself_does(real_media: Path) -> None:
    """The recording metered once, a cut's loudness follows from it as the same meter finds it run on
    the cut alone, to within 0.15 LU (the check allows the clip 1 LU either side of the target); its
    true peak is never lower."""
    from pipeline import media
    from pipeline.config import Form
    from pipeline.media import loudness
    from pipeline.stages import render

    form = Form.model_validate({})
    for name, cuts in (
        ("en-talking-head.mp4", [(1500, 31500), (3898, 41564), (10251, 31284)]),
        ("da-udhr-preamble.mp3", [(862, 112630), (30751, 66745)]),
        ("en-jfk.flac", [(785, 10489)]),
        ("da-nst-u0042009.wav", [(175, 4642)]),
    ):
        source = real_media / name
        stream = media.probe(source).audio[0].index
        frames = loudness.meter(render.meter_args(source, stream, form), what="meter")
        for in_ms, out_ms in cuts:
            metered = loudness.stretch(frames, in_ms, out_ms)
            alone = media.parse_r128(
                media.run_ffmpeg(
                    ["-nostdin", "-hide_banner", "-nostats", "-loglevel", "info",
                     "-ss", f"{in_ms / 1000:.3f}", "-t", f"{(out_ms - in_ms) / 1000:.3f}",
                     "-i", media.input_path(source), "-filter_complex",
                     f"[0:{stream}]aformat=channel_layouts=stereo,ebur128=peak=true", "-f", "null", "-"],
                    what="meter the cut",
                    stderr_lines=40,
                ).stderr_tail
            )  # fmt: skip
            # The meter says a tenth; the cut's own blocks start at its first sample, not on the 100 ms.
            assert abs(metered.integrated - alone.integrated) <= 0.15, (name, in_ms, out_ms, metered, alone)
            assert -0.05 <= metered.true_peak - alone.true_peak <= 0.5, (name, in_ms, out_ms, metered, alone)


def test_a_quiet_statement_with_a_loud_click_is_normalised_by_loudnorm_itself(
    real_media: Path, make_meeting, out_dir: Path, small_form: Path, tmp_path: Path
) -> None:
    """Brought up by a plain gain, the click would pass the true-peak limit: loudnorm's own two passes
    normalise it, and the clip still comes out at the target with its peak under the limit."""
    recording = tmp_path / "klik.wav"
    ffmpeg(
        "-i", real_media / "en-jfk.flac", "-f", "lavfi", "-i",
        "aevalsrc=if(between(t\\,5\\,5.003)\\,0.99\\,0):d=11:s=44100",
        "-filter_complex", "[0:a]volume=-20dB[q];[q][1:a]amix=inputs=2:normalize=0", recording,
    )  # fmt: skip
    meeting = make_meeting({"klik.wav": recording})
    result = run_cli("run", meeting, "--out", out_dir, "--form", small_form, "--language", "en")
    assert result.returncode == 0, result.stderr
    report = json.loads((out_dir / "run.json").read_text(encoding="utf-8"))
    (measured,) = [s for s in report["stages"] if s["stage"] == "loudness"]
    assert "loudnorm=" in measured["command"] and "print_format=json" in measured["command"], measured
    clip = out_dir / "delivery" / f"{report['delivery']['name']}.mp4"
    level = loudness(clip)
    assert abs(level.integrated + 23) <= 1.0 and level.true_peak <= -0.9, level
