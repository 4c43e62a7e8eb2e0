"""`hearing check`: deliberately wrong clips and subtitle files, one per check, each failing that check;
the pure checks with inline data; and the demo's own delivery, which must pass."""

from __future__ import annotations

import json
import shutil
from fractions import Fraction
from pathlib import Path

import pytest
from conftest import DemoRun, ffmpeg, hearing, run_cli

from pipeline import run_record
from pipeline.config import Form
from pipeline.stages.check.clip import (
    AudioFacts,
    ClipFacts,
    SubtitleTrack,
    VideoFacts,
    check_clip,
    check_durations,
    check_soft_track,
    frame_rate,
    measure_clip,
)
from pipeline.stages.check.files import find_delivery_files
from pipeline.stages.check.report import CheckedFile, QcReport, write_qc_report
from pipeline.stages.check.results import CheckResult
from pipeline.stages.check.subtitles import (
    check_subtitle_file,
    check_subtitle_pair,
    check_subtitles,
    speech_spans,
)
from pipeline.stages.check.transcript import check_transcript, compare_words, words
from pipeline.stages.subtitles.io import parse_srt
from pipeline.stages.subtitles.rules import Cue, SubtitleRules

# The form the test clips are made for: a tiny picture and short limits, so every clip takes a moment.
TEST_FORM = """\
name: proeve
agreed_with: "Test: Mette Holm"
clip: {max_duration: 5, max_statement: 3}
video: {width: 320, height: 180, fps: 25}
audio: {loudness: -23, true_peak: -1, sample_rate: 48000, channels: 2}
subtitles: {mode: burn+soft}
transcript: {formats: [txt, json]}
"""
FORM = Form.model_validate(
    {
        "name": "proeve",
        "clip": {"max_duration": 5, "max_statement": 3},
        "video": {"width": 320, "height": 180, "fps": 25},
        "subtitles": {"mode": "burn+soft"},
        "transcript": {"formats": ["txt", "json"]},
    }
)

GOOD_SRT = """\
1
00:00:00,000 --> 00:00:01,000
[Anna Jensen]

2
00:00:01,080 --> 00:00:02,500
Hej, jeg hedder Anna.

3
00:00:02,580 --> 00:00:03,980
Vi vil have en sti.
"""
# A 440 Hz tone this loud measures -23 LUFS after AAC (stereo); the calibration is checked by the good clip.
TONE = "0.109*sin(2*PI*440*t)"
# The same tone 13 dB louder: -10 LUFS, peaks still far below -1 dBTP.
LOUD_TONE = "0.49*sin(2*PI*440*t)"
# A quiet tone with a few very short loud bursts: about -23 LUFS, but peaks above 0 dBTP.
PEAKY_TONE = "0.056*sin(2*PI*440*t)+1.6*lt(mod(t,1),0.003)*sin(2*PI*1000*t)"

RECORD = {"kind": run_record.KIND, "version": run_record.VERSION}  # what makes run.json a run record


def make_clip(
    target: Path,
    *,
    size: str = "320x180",
    rate: int = 25,
    seconds: float = 4,
    pix_fmt: str = "yuv420p",
    audio: str | None = TONE,
    faststart: bool = True,
    soft: Path | None = None,
    variable_rate: bool = False,
) -> Path:
    """A tiny test clip made with ffmpeg: everything as the test form wants unless told otherwise."""
    args: list[str | Path] = ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}"]
    maps = ["-map", "0:v"]
    if audio is not None:
        expression = audio.replace(",", "\\,")
        args += ["-f", "lavfi", "-i", f"aevalsrc=exprs={expression}:s=48000:d={seconds}"]
        maps += ["-map", "1:a"]
    if soft is not None:
        args += ["-i", soft]
        maps += ["-map", f"{1 + (audio is not None)}:s"]
    args += maps
    if variable_rate:
        # Frames 30 and 50 ms apart by turns: 25 fps on average, but not a constant rate. An odd number
        # of frames keeps the average exactly at 25.
        frames = int(seconds * rate) - 1
        args += [
            "-vf", f"trim=end_frame={frames},settb=1/1000,setpts=N*40+mod(N\\,2)*10",
            "-fps_mode", "passthrough", "-enc_time_base", "1/1000", "-video_track_timescale", "1000",
        ]  # fmt: skip
    args += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "35", "-g", "50", "-pix_fmt", pix_fmt]
    if audio is not None:
        args += ["-c:a", "aac", "-b:a", "128k", "-ac", "2", "-ar", "48000"]
    if soft is not None:
        args += ["-c:s", "mov_text", "-metadata:s:s:0", "language=dan"]
    if faststart:
        args += ["-movflags", "+faststart"]
    ffmpeg(*args, target)
    return target


def transcript_of(srt: str) -> dict:
    """A transcript JSON with the words of the subtitles (captions in brackets left out), as delivered."""
    text = " ".join(c.text for c in parse_srt(srt) if not c.text.startswith("["))
    return {"statements": [{"number": 1, "speaker_label": "Anna Jensen", "text": text}]}


def vtt_of(srt: str) -> str:
    """The same cues as WebVTT, in the same order (a subtitle library would sort them)."""
    blocks = []
    for block in srt.strip().split("\n\n"):
        _, timing, *lines = block.split("\n")
        blocks.append("\n".join([timing.replace(",", "."), *lines]))
    return "WEBVTT\n\n" + "\n\n".join(blocks) + "\n"


def deliver(folder: Path, clip: Path, srt: str = GOOD_SRT, transcript: dict | None = None) -> Path:
    """A delivery folder: the clip, its .da.srt and .da.vtt, and the transcript as .txt and .json."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "hoeringssvar.mp4"
    shutil.copyfile(clip, target)
    (folder / "hoeringssvar.da.srt").write_text(srt, encoding="utf-8")
    (folder / "hoeringssvar.da.vtt").write_text(vtt_of(srt), encoding="utf-8")
    document = transcript if transcript is not None else transcript_of(srt)
    (folder / "hoeringssvar-transkription.json").write_text(json.dumps(document), encoding="utf-8")
    (folder / "hoeringssvar-transkription.txt").write_text("Høringssvar\n", encoding="utf-8")
    return target


def hearing_check(clip: Path, form: Path, *extra: str | Path) -> tuple[int, dict, str]:
    result = run_cli("check", clip, "--form", form, "--json", *extra, timeout=120)
    assert result.stdout, result.stderr
    return result.returncode, json.loads(result.stdout), result.stderr


def failed(report: dict) -> set[str]:
    return {c["check"] for c in report["checks"] if c["status"] == "fail"}


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("check-media")
    (folder / "proeve.yaml").write_text(TEST_FORM, encoding="utf-8")
    (folder / "good.srt").write_text(GOOD_SRT, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def good_clip(media_dir: Path) -> Path:
    return make_clip(media_dir / "good.mp4", soft=media_dir / "good.srt")


# ------------------------------------------------------------------------- real clips, real process


@pytest.mark.slow
def test_the_reference_clip_passes(media_dir: Path, good_clip: Path, tmp_path: Path) -> None:
    clip = deliver(tmp_path / "delivery", good_clip)
    result = run_cli("check", clip, "--form", media_dir / "proeve.yaml", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OVERHOLDER den aftalte form" in result.stdout and "IKKE" not in result.stdout.splitlines()[1]
    code, report, _ = hearing_check(clip, media_dir / "proeve.yaml")
    assert code == 0 and report["conforms"] and not failed(report), report
    by_id = {c["check"]: c for c in report["checks"]}
    # The calibration of the test tones: measured, not assumed.
    assert by_id["audio.loudness"]["measured"] in ("-23.0 LUFS", "-22.9 LUFS", "-23.1 LUFS"), by_id
    assert by_id["video.fps"]["measured"] == "25 fps"
    assert by_id["subtitles.soft_track"]["measured"] == "mov_text (dan)"
    assert by_id["transcript.words"]["status"] == "pass"
    assert [f["found"] for f in report["files"] if f["role"] == "run report"] == [False]
    assert any("run.json" in reason for reason in report["not_checked"])


# (name, how the clip differs from the reference, the checks that must fail)
WRONG_CLIPS = [
    ("wrong-size", {"size": "320x240"}, {"video.size"}),
    ("30-fps", {"rate": 30}, {"video.fps"}),
    ("variable-frame-rate", {"variable_rate": True}, {"video.constant_rate"}),
    # x264 encodes 4:4:4 in its own profile, which most players cannot decode either.
    ("yuv444p", {"pix_fmt": "yuv444p"}, {"video.pix_fmt", "video.profile"}),
    ("no-faststart", {"faststart": False}, {"container.faststart"}),
    ("minus-10-lufs", {"audio": LOUD_TONE}, {"audio.loudness"}),
    ("true-peak-0-dbtp", {"audio": PEAKY_TONE}, {"audio.true_peak"}),
    ("too-long", {"seconds": 6}, {"clip.duration"}),
    ("no-audio", {"audio": None}, {"audio.track"}),
    ("no-soft-track", {"soft": None}, {"subtitles.soft_track"}),
]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "changes", "expected"), WRONG_CLIPS, ids=[c[0] for c in WRONG_CLIPS])
def test_a_wrong_clip_fails_its_check(
    media_dir: Path, tmp_path: Path, name: str, changes: dict, expected: set[str]
) -> None:
    options = {"soft": media_dir / "good.srt", **changes}
    source = make_clip(tmp_path / f"{name}.mp4", **options)
    clip = deliver(tmp_path / "delivery", source)
    code, report, stderr = hearing_check(clip, media_dir / "proeve.yaml")
    assert code == 1, report
    assert failed(report) == expected, [c for c in report["checks"] if c["status"] == "fail"]
    assert not report["conforms"] and set(report["failed"]) == expected
    assert all(check_id in stderr for check_id in expected), stderr
    assert "does NOT conform" in report["verdict"][0]


@pytest.mark.slow
def test_the_peaky_tone_is_still_at_the_agreed_loudness(tmp_path: Path) -> None:
    """The true-peak clip must fail on its peaks alone, not on its loudness as well."""
    facts = measure_clip(make_clip(tmp_path / "peaky.mp4", audio=PEAKY_TONE))
    assert facts.true_peak_dbtp is not None and facts.true_peak_dbtp >= 0
    assert facts.loudness_lufs is not None and abs(facts.loudness_lufs + 23) <= 0.8


def cue(start: float, end: float, *lines: str) -> str:
    def clock(s: float) -> str:
        ms = round(s * 1000)
        return f"00:00:{ms // 1000:02d},{ms % 1000:03d}"

    return f"{clock(start)} --> {clock(end)}\n" + "\n".join(lines)


def srt(*cues: str) -> str:
    return "\n\n".join(f"{n}\n{c}" for n, c in enumerate(cues, 1)) + "\n"


# (name, the subtitle file, the checks that must fail)
WRONG_SUBTITLES = [
    ("three-lines", srt(cue(1.0, 3.5, "Hej, jeg", "hedder Anna", "Jensen.")), {"subtitles.lines"}),
    (
        "50-characters",
        srt(cue(0.5, 3.9, "Vi vil have en sti langs Åvej og en ny cykelbro nu")),
        {"subtitles.chars_per_line"},
    ),
    ("25-cps", srt(cue(1.0, 2.0, "Vi vil have en sti nu tak")), {"subtitles.reading_speed"}),
    ("0.3-seconds", srt(cue(1.0, 1.3, "Ja.")), {"subtitles.min_duration"}),
    (
        "overlapping",
        srt(cue(0.5, 2.0, "Hej, jeg hedder Anna."), cue(1.5, 3.0, "Vi vil have en sti.")),
        {"subtitles.overlap"},
    ),
    (
        "gap-of-one-frame",
        srt(cue(0.5, 2.0, "Hej, jeg hedder Anna."), cue(2.04, 3.5, "Vi vil have en sti.")),
        {"subtitles.gap"},
    ),
    ("outside-the-clip", srt(cue(3.0, 4.8, "Hej, jeg hedder Anna.")), {"subtitles.inside_clip"}),
    ("out-of-order", srt(cue(2.0, 3.0, "Vi vil."), cue(0.5, 1.5, "Hej.")), {"subtitles.order"}),
]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "text", "expected"), WRONG_SUBTITLES, ids=[s[0] for s in WRONG_SUBTITLES])
def test_wrong_subtitles_fail_their_check(
    media_dir: Path, good_clip: Path, tmp_path: Path, name: str, text: str, expected: set[str]
) -> None:
    clip = deliver(tmp_path / "delivery", good_clip, srt=text)
    given = tmp_path / "delivery" / "hoeringssvar.da.srt"
    code, report, stderr = hearing_check(clip, media_dir / "proeve.yaml", "--subtitles", given)
    assert failed(report) == expected, [c for c in report["checks"] if c["status"] != "pass"]
    assert code == (1 if expected else 0), stderr
    assert all(check_id in stderr for check_id in expected), stderr


@pytest.mark.slow
def test_subtitles_and_transcript_must_carry_the_same_words(
    media_dir: Path, good_clip: Path, tmp_path: Path
) -> None:
    dropped = {"statements": [{"number": 1, "speaker_label": "Anna Jensen", "text": "Hej, jeg hedder Anna."}]}
    clip = deliver(tmp_path / "delivery", good_clip, transcript=dropped)
    (clip.parent / "hoeringssvar-transkription.txt").unlink()
    code, report, _ = hearing_check(clip, media_dir / "proeve.yaml")
    assert code == 1
    assert failed(report) == {"transcript.words", "transcript.files"}
    words = next(c for c in report["checks"] if c["check"] == "transcript.words")
    assert "subtitle 3" in words["detail"] and "'vi vil have en sti'" in words["detail"], words
    files = next(c for c in report["checks"] if c["check"] == "transcript.files")
    assert files["measured"] == "missing txt"


@pytest.mark.slow
def test_a_missing_vtt_and_unusable_run_json_are_reported(
    media_dir: Path, good_clip: Path, tmp_path: Path
) -> None:
    clip = deliver(tmp_path / "out" / "delivery", good_clip)
    (clip.parent / "hoeringssvar.da.vtt").unlink()
    # run.json of another clip beside the delivery: it must not be used for this one.
    (tmp_path / "out" / "run.json").write_text(
        json.dumps({**RECORD, "delivery": {"name": "andet"}, "timeline": []}), encoding="utf-8"
    )
    code, report, _ = hearing_check(clip, media_dir / "proeve.yaml")
    assert code == 1 and failed(report) == {"subtitles.formats"}
    run = next(f for f in report["files"] if f["role"] == "run report")
    assert run["file"] == "../run.json" and "andet" in run["note"]


@pytest.mark.slow
def test_statement_lengths_come_from_run_json(media_dir: Path, good_clip: Path, tmp_path: Path) -> None:
    clip = deliver(tmp_path / "out" / "delivery", good_clip)
    timeline = [
        {"kind": "card", "statement": "s01", "start_ms": 0, "duration_ms": 500},
        {"kind": "statement", "statement": "s01", "start_ms": 500, "duration_ms": 3500},
    ]
    (tmp_path / "out" / "run.json").write_text(
        json.dumps({**RECORD, "delivery": {"name": "hoeringssvar"}, "timeline": timeline}), encoding="utf-8"
    )
    code, report, stderr = hearing_check(clip, media_dir / "proeve.yaml")
    assert code == 1 and failed(report) == {"clip.statement.s01"}, stderr
    statement = next(c for c in report["checks"] if c["check"] == "clip.statement.s01")
    assert statement["measured"] == "3.50 s" and "too long" in statement["detail"]


def test_check_usage_and_errors(tmp_path: Path) -> None:
    not_media = tmp_path / "clip.mp4"
    not_media.write_bytes(b"not a video")
    result = hearing("check", not_media, "--form", "demo")
    assert result.exit_code == 1 and "cannot be read as media" in result.stderr
    assert hearing("check", not_media, "--form", tmp_path / "none.yaml").exit_code == 3
    assert hearing("check", tmp_path / "absent.mp4", "--form", "demo").exit_code == 2
    assert hearing("check", not_media).exit_code == 2  # the form is not optional


# ------------------------------------------------------------------------------ the demo's delivery


@pytest.fixture(scope="module")
def demo_delivery(demo_run: DemoRun) -> Path:
    out, result = demo_run.out, demo_run.result
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "run.json").read_text(encoding="utf-8"))
    return out / "delivery" / f"{report['delivery']['name']}.mp4"


@pytest.mark.slow
def test_the_demo_delivery_passes(demo_delivery: Path) -> None:
    result = run_cli("check", demo_delivery, "--form", "demo")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[1].startswith("Klippet OVERHOLDER den aftalte form")
    code, report, _ = hearing_check(demo_delivery, Path("demo"))
    assert code == 0 and not failed(report)
    by_id = {c["check"]: c for c in report["checks"]}
    # Everything was found and used: run.json for the statements, the transcript for the words.
    lengths = [c for c in report["checks"] if c["check"].startswith("clip.statement.")]
    assert len(lengths) == 4 and all(c["status"] == "pass" for c in lengths)
    assert by_id["transcript.words"]["status"] == "pass"
    assert by_id["subtitles.formats"]["status"] == "pass"
    assert not report["not_checked"]
    assert all(f["found"] for f in report["files"]), report["files"]


@pytest.mark.slow
def test_a_tampered_demo_delivery_fails(demo_delivery: Path, tmp_path: Path) -> None:
    copy = tmp_path / "out"
    shutil.copytree(demo_delivery.parent.parent, copy, ignore=shutil.ignore_patterns("work"))
    clip = copy / "delivery" / demo_delivery.name
    transcript = clip.with_name(f"{clip.stem}-transkription.json")
    document = json.loads(transcript.read_text(encoding="utf-8"))
    first, rest = document["statements"][1]["text"].split(" ", 1)
    document["statements"][1]["text"] = rest
    transcript.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    code, report, _ = hearing_check(clip, Path("default"))
    # The default form wants 1920×1080; the words no longer match.
    assert code == 1 and failed(report) == {"video.size", "transcript.words"}
    diff = next(c for c in report["checks"] if c["check"] == "transcript.words")
    dropped = words(first)[0]
    assert f"'{dropped}'" in diff["detail"] and "which the transcript does not" in diff["detail"]


@pytest.mark.slow
def test_an_officials_check_names_the_model_from_the_transcript_or_else_run_json(
    demo_delivery: Path, tmp_path: Path
) -> None:
    from pipeline.model_note import note_for
    from pipeline.texts import documents as words

    base = {**note_for("base").to_json(), "text": words.model_text(note_for("base"))}
    # The delivery folder alone, as the official has it: no run.json, the transcript JSON names the model.
    alone = tmp_path / "alone" / "delivery"
    shutil.copytree(demo_delivery.parent, alone)
    clip = alone / demo_delivery.name
    assert not (alone.parent / "run.json").exists()
    code, report, _ = hearing_check(clip, Path("demo"))
    assert code == 0 and report["model"] == base
    # The transcript JSON says another model: the report names what the delivered transcript says.
    transcript = clip.with_name(f"{clip.stem}-transkription.json")
    document = json.loads(transcript.read_text(encoding="utf-8"))
    transcript.write_text(json.dumps({**document, "model": "<i>eget</i>"}), encoding="utf-8")
    text = run_cli("check", clip, "--form", "demo").stdout
    assert "Talemodel: «<i>eget</i>». Der kendes ingen offentliggjort dansk ordfejlrate" in text
    # No transcript JSON at all, run.json beside the delivery: run.json names it.
    transcript.unlink()
    shutil.copy(demo_delivery.parent.parent / "run.json", alone.parent / "run.json")
    code, report, _ = hearing_check(clip, Path("demo"))
    assert report["model"] == base
    # Neither: the report says the model is not known.
    (alone.parent / "run.json").unlink()
    code, report, _ = hearing_check(clip, Path("demo"))
    assert report["model"] is None


# ----------------------------------------------------------------------------- the pure checks


def facts(**changes) -> ClipFacts:
    video = VideoFacts("h264", "High", "yuv420p", 320, 180, "1:1", 100, 25.0, True, (40.0, 40.0))
    audio = AudioFacts("aac", "LC", 48000, 2)
    base = ClipFacts(
        name="x.mp4",
        format_name="mov,mp4,m4a,3gp,3g2,mj2",
        brand="isom",
        boxes=("ftyp", "moov", "mdat"),
        duration_ms=4000,
        video=video,
        audio=audio,
        audio_tracks=1,
        subtitle_tracks=(SubtitleTrack("mov_text", "dan"),),
        loudness_lufs=-23.0,
        true_peak_dbtp=-3.0,
    )
    from dataclasses import replace

    return replace(base, **changes)


def statuses(results: list[CheckResult]) -> dict[str, str]:
    return {r.check: r.status for r in results}


def test_a_conforming_clip_passes_every_clip_check() -> None:
    results = check_clip(facts(), FORM)
    assert set(statuses(results).values()) == {"pass"}, results
    assert check_soft_track(facts(), FORM).status == "pass"


def test_clip_checks_name_what_is_wrong() -> None:
    from dataclasses import replace

    good = facts()
    assert good.video is not None
    assert statuses(check_clip(facts(brand="qt  "), FORM))["container.mp4"] == "fail"
    assert statuses(check_clip(facts(boxes=("ftyp", "mdat", "moov")), FORM))["container.faststart"] == "fail"
    subset = check_clip(facts(video=replace(good.video, profile="Constrained Baseline")), FORM)
    assert statuses(subset)["video.profile"] == "warn"
    assert statuses(check_clip(facts(video=replace(good.video, sar="4:3")), FORM))["video.sar"] == "fail"
    assert statuses(check_clip(facts(loudness_lufs=-24.0), FORM))["audio.loudness"] == "pass"
    assert statuses(check_clip(facts(loudness_lufs=-24.2), FORM))["audio.loudness"] == "fail"
    assert statuses(check_clip(facts(true_peak_dbtp=-0.9), FORM))["audio.true_peak"] == "fail"
    two = statuses(check_clip(facts(audio_tracks=2), FORM))
    assert two["audio.track"] == "warn"
    no_video = check_clip(facts(video=None), FORM)
    assert [r.check for r in no_video if r.check.startswith("video.")] == ["video.track"]
    english = facts(subtitle_tracks=(SubtitleTrack("mov_text", "eng"),))
    assert check_soft_track(english, FORM).status == "fail"
    burn = FORM.model_copy(update={"subtitles": FORM.subtitles.model_copy(update={"mode": "burn"})})
    assert check_soft_track(facts(subtitle_tracks=()), burn).status == "pass"


def test_frame_rate_from_timestamps() -> None:
    steady = frame_rate([n * 512 for n in range(50)], Fraction(1, 12800))
    assert steady.constant and steady.fps == 25
    # 29.97 fps in a 1/30000 time base: every gap 1001 ticks; in 1/1000 the gaps are 33 or 34 ms.
    ntsc = frame_rate([round(n * 1001 / 30) for n in range(60)], Fraction(1, 1000))
    assert ntsc.constant and abs(ntsc.fps - 30000 / 1001) < 0.01
    shaky = frame_rate([0, 40, 80, 130, 160, 200], Fraction(1, 1000))
    assert not shaky.constant and shaky.longest_gap_ms == 50
    assert not frame_rate([0], Fraction(1, 1000)).constant


def test_durations_of_the_clip_and_each_statement() -> None:
    timeline = [
        {"kind": "title", "statement": None, "start_ms": 0, "duration_ms": 1000},
        {"kind": "statement", "statement": "s01", "start_ms": 1000, "duration_ms": 2000},
        {"kind": "statement", "statement": "s02", "start_ms": 3000, "duration_ms": 3100},
    ]
    results = check_durations(6100, FORM, timeline)
    assert statuses(results) == {
        "clip.duration": "fail",
        "clip.statement.s01": "pass",
        "clip.statement.s02": "fail",
    }
    assert results[1].title == "length of statement 1 (s01)" and results[1].measured == "2.00 s"
    assert results[2].measured == "3.10 s" and results[2].detail == "0.10 s too long"
    assert [r.check for r in check_durations(4000, FORM, None)] == ["clip.duration"]


def cues(*spec: tuple[int, int, str]) -> list[Cue]:
    return [Cue(start, end, tuple(text.split("\n"))) for start, end, text in spec]


def by_check(results: list[CheckResult], check_id: str) -> CheckResult:
    return next(r for r in results if r.check == check_id)


def legal_room(
    cue: Cue,
    before: Cue | None,
    after: Cue | None,
    rules: SubtitleRules,
    clip_ms: int,
    *,
    speech: tuple[int, int] | None = None,
    window: tuple[int, int] | None = None,
) -> int:
    """The longest ``cue`` could stay up: the timing model's room, as the pipeline and the check use it."""
    from pipeline.stages import timing

    earliest, latest = timing.room(
        cue.start_ms,
        cue.end_ms,
        before.end_ms if before else None,
        after.start_ms if after else None,
        rules,
        window=window or (0, clip_ms),
        speech=speech,
    )
    return timing.room_ms(earliest, latest, cue.duration_ms, rules)


def test_speech_faster_than_any_legal_timing_is_a_warning() -> None:
    # 40 characters with its neighbours 80 ms away on both sides: 2 s is all it can get, 20 cps.
    text = "Vi skal have en sti langs Åvej, og nu!!!"
    crowded = cues((0, 1920, "Først."), (2000, 4000, text), (4080, 6000, "Så."))
    result = by_check(check_subtitles(crowded, FORM, 10_000), "subtitles.reading_speed")
    assert result.status == "warn", result
    assert "faster than any legal timing" in result.detail and "2.00 s" in result.detail
    # The same cue with free time after it could have stayed up longer: a failure.
    free = cues((0, 1920, "Først."), (2000, 4000, text), (8000, 9000, "Så."))
    result = by_check(check_subtitles(free, FORM, 10_000), "subtitles.reading_speed")
    assert result.status == "fail" and "enough for 17" in result.detail
    # Free time only beyond the 1.5 s the rules allow after it does not count.
    far = cues((0, 1920, "Først."), (2000, 4000, text), (9000, 9900, "Så."))
    assert legal_room(far[1], far[0], far[2], SubtitleRules.from_form(FORM), 10_000) == 3500


def test_subtitle_rules_warn_where_the_standards_say_warn() -> None:
    results = check_subtitles(
        cues(
            (0, 3000, "Denne linje har otteogtredive tegn her"),  # 38 characters
            (3300, 5000, "Og så videre."),  # a 300 ms gap that could have been closed
            (5080, 7000, "Lidt hurtigere tale her, tak!"),  # 29 characters in 1.92 s: 15.1 cps
        ),
        FORM,
        10_000,
    )
    assert statuses(results)["subtitles.chars_per_line"] == "warn"
    assert statuses(results)["subtitles.gap"] == "warn"
    assert statuses(results)["subtitles.reading_speed"] == "warn"
    assert "fail" not in statuses(results).values()


def test_subtitle_rules_fail_each_on_its_own() -> None:
    backwards = check_subtitles(cues((0, 1000, "Hej."), (2000, 2000, "Hov.")), FORM, 5000)
    assert statuses(backwards)["subtitles.end_after_start"] == "fail"
    # A cue that does not end after it starts is not also counted as too short or too fast.
    assert statuses(backwards)["subtitles.min_duration"] == "pass"
    assert statuses(backwards)["subtitles.reading_speed"] == "pass"
    long = check_subtitles(cues((0, 7100, "Hej med jer alle sammen.")), FORM, 8000)
    assert {k for k, v in statuses(long).items() if v == "fail"} == {"subtitles.max_duration"}


def test_subtitle_files_parse_or_say_why_not() -> None:
    good, parsed = check_subtitle_file("x.da.srt", GOOD_SRT.encode(), FORM)
    assert good.status == "pass" and parsed is not None and len(parsed) == 3
    bom, _ = check_subtitle_file("x.da.srt", ("\ufeff" + GOOD_SRT).encode(), FORM)
    assert bom.status == "warn"
    latin, _ = check_subtitle_file(
        "x.da.srt", "1\n00:00:01,000 --> 00:00:02,000\nSø\n".encode("latin-1"), FORM
    )
    assert latin.status == "fail" and "UTF-8" in latin.measured
    broken, _ = check_subtitle_file("x.da.srt", b"1\n00:00:01.000 -> 00:00:02,000\nHej\n", FORM)
    assert broken.status == "fail"
    headless, _ = check_subtitle_file("x.da.vtt", b"00:01.000 --> 00:02.000\nHej\n", FORM)
    assert headless.status == "fail" and "WEBVTT" in headless.measured
    missing, none = check_subtitle_file("x.da.srt", None, FORM)
    assert missing.status == "fail" and none is None
    srt_cues = parse_srt(GOOD_SRT)
    shifted = [Cue(c.start_ms + 10, c.end_ms, c.lines) for c in srt_cues]
    pair = check_subtitle_pair("x.srt", srt_cues, "x.vtt", shifted)
    assert pair.status == "fail" and "subtitle 1" in pair.detail


def test_words_compare_without_captions_and_punctuation() -> None:
    subtitle_cues = cues(
        (0, 1000, "[Søren Ærø Østergård, Bordgruppe 1]"),
        (1100, 3000, "Hej, jeg cykler\nad Åvej …"),
        (3100, 4000, "Bl .a. om morgenen."),
    )
    same = compare_words(subtitle_cues, [("statement 1", "Hej jeg cykler ad Åvej... Bl.a. om morgenen")])
    assert same.status == "pass" and same.measured == "same 9 words"
    changed = compare_words(subtitle_cues, [("statement 1", "Hej jeg cykler ad Åvej. Bl.a. om aftenen")])
    assert changed.status == "fail"
    assert "subtitle 3" in changed.detail and "'morgenen'" in changed.detail and "'aftenen'" in changed.detail
    extra = compare_words(
        subtitle_cues, [("statement 1", "Hej jeg cykler ad Åvej bl a om morgenen"), ("statement 2", "Tak")]
    )
    assert (
        extra.status == "fail"
        and "statement 2" in extra.detail
        and "which the subtitles do not" in extra.detail
    )
    results = check_transcript(FORM, {"txt": True, "json": True}, subtitle_cues, None)
    assert [r.check for r in results] == ["transcript.files"]


def test_the_report_says_at_the_top_when_the_clip_does_not_conform(tmp_path: Path) -> None:
    bad = CheckResult("video.fps", "frame rate", "25 fps", "30 fps", "fail")
    note = CheckResult("subtitles.chars_per_line", "characters per line", "≤ 42", "longest 40", "warn")
    report = QcReport(
        clip="x.mp4",
        form="proeve",
        agreed_with="Mette Holm",
        checked_at="2026-11-21T10:00:00+00:00",
        tools="hearing-pipeline test",
        files=(CheckedFile("clip", "x.mp4"), CheckedFile("run report", None)),
        results=(bad, note),
        not_checked=("length of each statement: needs the run's timeline (run.json)",),
    )
    assert not report.passed and report.failures == [bad] and report.warnings == [note]
    names = write_qc_report(tmp_path, report)
    assert names == ["qc-report.json", "qc-report.txt"]
    text = (tmp_path / "qc-report.txt").read_text(encoding="utf-8")
    top = text.splitlines()[:4]
    assert any("OVERHOLDER IKKE den aftalte form" in line and "does NOT conform" in line for line in top)
    assert any("video.fps" in line for line in top)
    assert "FAIL    video.fps: frame rate" in text and "ikke fundet / not found" in text
    data = json.loads((tmp_path / "qc-report.json").read_text(encoding="utf-8"))
    assert data["conforms"] is False and data["failed"] == ["video.fps"]
    assert data["checks"][0] == bad.to_json()
    assert not list(tmp_path.glob(".*.part")), "a temporary file was left behind"
    good = QcReport("x.mp4", "proeve", None, "t", "tools", (), (note,))
    assert good.passed and good.to_text().splitlines()[1].startswith("Klippet OVERHOLDER den aftalte form")


def test_the_speech_times_and_the_cut_limit_how_long_a_cue_may_stay() -> None:
    text = "Vi skal have en sti langs Åvej, og nu!!!"  # 40 characters in 2 s: 20 cps
    subtitle_cues = cues((0, 1920, "Først."), (2000, 4000, text), (8000, 9000, "Så."))
    rules = SubtitleRules.from_form(FORM)
    mid, before, after = subtitle_cues[1], subtitle_cues[0], subtitle_cues[2]
    # Without the speech the cue's own end stands for it: it could hang on to 5.5 s.
    assert legal_room(mid, before, after, rules, 10_000) == 3500
    # Spoken 1.0-2.5 s: 1.5 s after the last word is 4.0 s, so 2 s is all the rules give it.
    assert legal_room(mid, before, after, rules, 10_000, speech=(1000, 2500)) == 2000
    # Its statement ends at 4.08 s (a cut): the cue may not be carried over it.
    assert legal_room(mid, None, None, rules, 10_000, window=(2000, 4080)) == 2000
    speech = [(0, 1900), (1000, 2500), (8000, 8900)]
    result = by_check(check_subtitles(subtitle_cues, FORM, 10_000, speech=speech), "subtitles.reading_speed")
    assert result.status == "warn" and "spoken faster than any legal timing" in result.detail
    result = by_check(check_subtitles(subtitle_cues, FORM, 10_000), "subtitles.reading_speed")
    assert result.status == "fail"


def test_speech_times_come_from_the_words_of_the_transcript() -> None:
    subtitle_cues = cues(
        (500, 1500, "[Anna Jensen]"), (1600, 3000, "Hej, jeg\nhedder Anna."), (3100, 4000, "Bl.a.")
    )
    words = [
        (100, 400, " Hej,"),
        (400, 600, " jeg"),
        (600, 900, " hedder"),
        (900, 1300, " Anna."),
        (1500, 1900, " Bl.a."),
    ]
    document = {
        "statements": [
            {
                "start_ms": 1500,
                "segments": [{"words": [{"start_ms": s, "end_ms": e, "text": t} for s, e, t in words]}],
            }
        ]
    }
    assert speech_spans(subtitle_cues, document) == [None, (1600, 2800), (3000, 3400)]
    document["statements"][0]["segments"][0]["words"].pop()
    assert speech_spans(subtitle_cues, document) is None


def test_the_soft_track_is_in_the_language_the_subtitles_are_named_for(tmp_path: Path) -> None:
    clip = tmp_path / "svar.mp4"
    clip.write_bytes(b"")
    (tmp_path / "svar.en.srt").write_text(GOOD_SRT, encoding="utf-8")
    found = find_delivery_files(clip, FORM)
    assert found.subtitles == tmp_path / "svar.en.srt" and found.language == "en"
    assert found.transcript_json is None and found.run_json is None
    english = facts(subtitle_tracks=(SubtitleTrack("mov_text", "eng"),))
    assert check_soft_track(english, FORM, found.language).status == "pass"
    assert check_soft_track(english, FORM).status == "fail"
    (tmp_path / "svar.da.srt").write_text(GOOD_SRT, encoding="utf-8")
    assert find_delivery_files(clip, FORM).subtitles == tmp_path / "svar.da.srt"
