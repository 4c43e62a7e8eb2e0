"""Dependable on the organiser's own laptop: whatever ffmpeg it has, every bad setting caught before work
starts, a delivery that is all new or all old, a cache that never crashes a run, the same words every run.

End to end: real ffmpeg (the system's and the bundled one), the real engine, real recordings.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from conftest import DemoRun, hearing, run_cli, tree_digest
from test_ffmpeg import bundled_ffmpeg, fake_ffmpeg

from pipeline import media

pytestmark = pytest.mark.slow

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "borgermoede-nordby" / "recordings"


def run_report(out: Path) -> dict:
    return json.loads((out / "run.json").read_text(encoding="utf-8"))


def sums_verify(delivery: Path) -> bool:
    lines = (delivery / "SHA256SUMS").read_text(encoding="utf-8").splitlines()
    listed = {}
    for line in lines:
        digest, name = line.split("  ", 1)
        listed[name] = digest
    present = {p.name for p in delivery.iterdir()} - {"SHA256SUMS"}
    return present == set(listed) and all(
        hashlib.sha256((delivery / name).read_bytes()).hexdigest() == digest
        for name, digest in listed.items()
    )


@pytest.fixture
def jfk_meeting(real_media: Path, make_meeting):  # type: ignore[no-untyped-def]
    return make_meeting({"jfk.flac": real_media / "en-jfk.flac"})


def no_named_ffmpeg(**extra: str) -> dict[str, str]:
    """The environment of a user who has not set HEARING_FFMPEG (CI sets it for one pass)."""
    return {media.FFMPEG_ENV: "", **extra}


def test_an_old_ffmpeg_on_path_is_passed_over_for_the_bundled_one(
    jfk_meeting: Path, out_dir: Path, small_form: Path, tmp_path: Path
) -> None:
    fake = fake_ffmpeg(tmp_path / "old-bin", version="4.4.2-0ubuntu0.22.04.1")
    env = no_named_ffmpeg(PATH=f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    result = run_cli("run", jfk_meeting, "--out", out_dir, "--form", small_form, "--language", "en", env=env)
    assert result.returncode == 0, result.stderr
    said = [line for line in result.stderr.splitlines() if line.startswith(("warning:", "error:"))]
    assert said == [
        f"warning: the ffmpeg on PATH ({fake}, 4.4.2-0ubuntu0.22.04.1) lacks version 4.4.2-0ubuntu0.22.04.1 "
        f"is older than 5.1, the oldest supported; using the bundled ffmpeg "
        f"{media.assess_ffmpeg(bundled_ffmpeg())[0]} instead"
    ]
    report = run_report(out_dir)
    assert report["ffmpeg"]["source"] == "bundled" and report["ffmpeg"]["path"] == bundled_ffmpeg()
    assert report["ffmpeg"]["passed_over"] and "4.4.2" in report["ffmpeg"]["passed_over"][0]
    assert report["qc"]["passed"]
    qc = json.loads((out_dir / "delivery" / "qc-report.json").read_text(encoding="utf-8"))
    assert qc["ffmpeg"]["path"] == bundled_ffmpeg() and qc["ffmpeg"]["source"] == "bundled"


# An ffmpeg whose loudness meter breaks ("fail") or measures a quiet clip ("quiet") once told so.
FAILING_METER = """#!{python}
import os, sys
real, marker = {real!r}, {marker!r}
mode = open(marker).read().strip() if os.path.exists(marker) else ""
if mode and any("ebur128=" in a for a in sys.argv[1:]):
    if mode == "quiet":
        sys.stderr.write("[Parsed_ebur128_0 @ 0x55d1] Summary:\\n\\n  Integrated loudness:\\n")
        sys.stderr.write("    I:         -40.0 LUFS\\n\\n  Loudness range:\\n    LRA:         5.0 LU\\n")
        sys.stderr.write("\\n  True peak:\\n    Peak:       -20.0 dBFS\\n")
        sys.exit(0)
    sys.stderr.write("[Parsed_ebur128_0 @ 0x55d1] Error setting option peak to value broken.\\n")
    sys.stderr.write("Conversion failed!\\n")
    sys.exit(1)
os.execv(real, [real, *sys.argv[1:]])
"""


def test_a_failed_check_leaves_the_previous_delivery_intact(
    jfk_meeting: Path, out_dir: Path, small_form: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "fail-now"
    wrapper = tmp_path / "bin" / "ffmpeg"
    wrapper.parent.mkdir()
    wrapper.write_text(
        FAILING_METER.format(python=sys.executable, real=media.ffmpeg_exe(), marker=str(marker)),
        encoding="utf-8",
    )
    wrapper.chmod(0o755)
    env = {media.FFMPEG_ENV: str(wrapper)}
    args = ("run", jfk_meeting, "--out", out_dir, "--form", small_form, "--language", "en")
    first = run_cli(*args, env=env)
    assert first.returncode == 0, first.stderr
    delivery = out_dir / "delivery"
    before = tree_digest(delivery)
    assert sums_verify(delivery)

    marker.write_text("fail", encoding="utf-8")
    small_form.write_text(
        small_form.read_text(encoding="utf-8").replace("crf: 30", "crf: 31"), encoding="utf-8"
    )
    second = run_cli(*args, "-v", env=env)
    assert second.returncode == 1, second.stderr
    assert "Traceback" not in second.stderr
    errors = [line for line in second.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        "error: ffmpeg could not measure the loudness of "
        f"{next(p.name for p in delivery.glob('*.mp4'))}: ebur128: Error setting option peak to value broken."
    ]
    # -v shows the command and ffmpeg's whole tail.
    assert "  ffmpeg: Conversion failed!" in second.stderr and "  command: " in second.stderr
    assert tree_digest(delivery) == before
    assert sums_verify(delivery)
    assert run_report(out_dir)["exit_code"] == 1

    # A clip that is measured and does not conform is kept apart for a look, and the message says where.
    marker.write_text("quiet", encoding="utf-8")
    third = run_cli(*args, env=env)
    assert third.returncode == 1, third.stderr
    failed = out_dir / "failed-delivery"
    (error,) = [line for line in third.stderr.splitlines() if line.startswith("error: ")]
    assert "audio.loudness" in error and f"kept for inspection in {failed}" in error
    assert f"{delivery} is unchanged" in error
    assert sums_verify(failed) and list(failed.glob("*.mp4"))
    assert json.loads((failed / "qc-report.json").read_text(encoding="utf-8"))["conforms"] is False
    assert tree_digest(delivery) == before

    # The next good run replaces the delivery as a whole, and tidies what the failed one left.
    marker.unlink()
    fourth = run_cli(*args, env=env)
    assert fourth.returncode == 0, fourth.stderr
    assert tree_digest(delivery) != before and sums_verify(delivery)
    assert not (out_dir / ".delivery-next").exists() and not failed.exists()


def test_every_setting_is_checked_before_work_starts(jfk_meeting: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"

    def refused(*args: str | Path, meeting: Path = jfk_meeting) -> tuple[int, str]:
        result = hearing("run", meeting, "--out", out, *args)
        assert "Traceback" not in result.stderr
        assert not out.exists(), "nothing may be written before the settings are checked"
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        return result.exit_code, result.stderr.strip()

    form = tmp_path / "form.yaml"
    form.write_text('naming: "{date:%Y}_{committee}"\n', encoding="utf-8")
    code, said = refused("--form", form)
    assert code == 3
    assert said.startswith(f"error: {form}: naming: placeholder {{date:%Y}} has a format; write {{date}}")

    form.write_text("language: zz\n", encoding="utf-8")
    code, said = refused("--form", form)
    assert code == 3 and said.startswith(f"error: {form}: language: 'zz' is not a language code Whisper")

    code, said = refused("--language", "zz")
    assert code == 2 and said.startswith("error: --language zz: not a language code Whisper knows")

    (jfk_meeting / "meeting.yaml").write_text("language: xx\n", encoding="utf-8")
    code, said = refused()
    assert code == 3 and said.startswith(f"error: {jfk_meeting / 'meeting.yaml'}: language: 'xx' is not")
    (jfk_meeting / "meeting.yaml").unlink()

    # An output folder that contains the meeting folder would have its tidying reach into the meeting.
    parent = jfk_meeting.parent
    (jfk_meeting / ".half.mp4.part").write_bytes(b"a participant's file")
    before = tree_digest(jfk_meeting)
    result = hearing("run", jfk_meeting, "--out", parent)
    assert result.exit_code == 2 and "contains the meeting folder" in result.stderr
    assert tree_digest(jfk_meeting) == before
    assert not (parent / "work").exists() and not (parent / "run.json").exists()


def test_damaged_cache_entries_are_made_again(jfk_meeting: Path, out_dir: Path, small_form: Path) -> None:
    args = ("run", jfk_meeting, "--out", out_dir, "--form", small_form, "--language", "en", "--quiet")
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    work = out_dir / "work"
    (transcript,) = (work / "transcripts").glob("*.json")
    transcript.write_text(transcript.read_text(encoding="utf-8")[:100], encoding="utf-8")
    for loudness in (work / "loudness").glob("*.json"):
        loudness.write_text('{"integrated": ', encoding="utf-8")
    segments = sorted((work / "segments").glob("*.mov"), key=lambda p: p.stat().st_size)
    biggest = segments[-1]
    with biggest.open("r+b") as handle:
        handle.truncate(biggest.stat().st_size // 2)
    (audio,) = (work / "audio").glob("*.wav")
    (clip,) = (work / "clip").glob("*.mp4")
    for damaged in (audio, clip):
        with damaged.open("r+b") as handle:
            handle.seek(5000)
            handle.write(b"\xff" * 64)

    again = run_cli(*args)
    assert again.returncode == 0, again.stderr
    assert "Traceback" not in again.stderr
    stages = run_report(out_dir)["stages"]
    made = {(s["stage"], s["cached"]) for s in stages}
    assert ("speech-audio", False) in made and ("transcribe", False) in made
    assert ("loudness", False) in made and ("render", False) in made and ("join", False) in made
    # The segments that were intact are reused.
    assert ("render", True) in made
    assert run_report(out_dir)["qc"]["passed"]


def _system_ffmpeg() -> str | None:
    found = shutil.which("ffmpeg")
    if found is None or Path(found).resolve() == Path(bundled_ffmpeg()).resolve():
        return None
    return found


def test_the_same_delivery_with_the_system_and_the_bundled_ffmpeg(
    make_meeting, tmp_path: Path, small_form: Path
) -> None:
    system = _system_ffmpeg()
    if system is None:
        pytest.skip("no system ffmpeg on PATH to compare with the bundled one")
    assert not media.assess_ffmpeg(system)[1], f"the system's ffmpeg cannot do the work: {system}"
    # AAC from a phone: ffmpeg 5.1 and 9.x decode it to slightly different samples, so words that came
    # from the ffmpeg binary would differ here.
    meeting = make_meeting({"anna.mp4": SAMPLES / "01-anna.mp4"})
    facts = {}
    for label, binary in (("system", system), ("bundled", bundled_ffmpeg())):
        out = tmp_path / label
        result = run_cli(
            "run", meeting, "--out", out, "--form", small_form, "--quiet", env={media.FFMPEG_ENV: binary}
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        report = run_report(out)
        assert report["ffmpeg"]["path"] == binary
        (clip,) = (out / "delivery").glob("*.mp4")
        file_facts = media.read_file_facts(clip)
        video = next(t for t in file_facts.tracks if t.kind == "video")
        (srt,) = (out / "delivery").glob("*.srt")
        facts[label] = {
            "frames": len(video.frame_times),
            "size": (video.width, video.height),
            "loudness": media.measure_r128(clip).integrated,
            "subtitles": srt.read_text(encoding="utf-8"),
            "duration_ms": file_facts.duration_ms,
            "speech_audio": (out / "work" / "audio").glob("*.wav").__next__().read_bytes(),
        }
    system_facts, bundled_facts = facts["system"], facts["bundled"]
    assert system_facts["speech_audio"] == bundled_facts["speech_audio"]
    assert system_facts["subtitles"] == bundled_facts["subtitles"] and "-->" in system_facts["subtitles"]
    assert system_facts["frames"] == bundled_facts["frames"]
    assert system_facts["size"] == bundled_facts["size"]
    assert abs(system_facts["loudness"] - bundled_facts["loudness"]) <= 0.1 + 1e-9
    assert abs(system_facts["duration_ms"] - bundled_facts["duration_ms"]) <= 30

    # Switching ffmpeg in one output folder renders everything again but keeps the words.
    result = run_cli(
        "run", meeting, "--out", tmp_path / "system", "--form", small_form, "--quiet",
        env={media.FFMPEG_ENV: bundled_ffmpeg()},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    cached = {s["stage"]: s["cached"] for s in run_report(tmp_path / "system")["stages"]}
    assert cached["speech-audio"] and cached["transcribe"]
    assert not any(cached[stage] for stage in ("loudness", "render", "join"))


def test_the_speech_audio_is_what_the_bare_engine_hears_whatever_ffmpeg_is_chosen(
    real_media: Path, tmp_path: Path
) -> None:
    """Decoded in-process with PyAV the way faster-whisper decodes a file itself: the pipeline's engine
    hears the same samples as the bare engine, and no ffmpeg binary has a say in them."""
    from faster_whisper.audio import decode_audio

    for source in (real_media / "en-talking-head.mp4", real_media / "da-udhr-preamble.mp3",
                   SAMPLES / "04-mads.m4a", SAMPLES / "02-soeren.mov"):  # fmt: skip
        probe = media.probe(source)
        target = tmp_path / f"{source.stem}.wav"
        notes = media.extract_speech_audio(source, probe.audio[0].index, target)
        assert notes == ()
        ours = media.read_wav_mono16k(target)
        assert ours.size > 16_000 and (ours == decode_audio(str(source))).all(), source.name


def test_the_demo_from_scratch_gives_the_same_words_every_time(demo_run: DemoRun, tmp_path: Path) -> None:
    texts = []
    for out in (demo_run.out, tmp_path / "demo-2"):
        result = demo_run.result if out == demo_run.out else run_cli("demo", "--out", out, "--quiet")
        assert result.returncode == 0, result.stderr
        (srt,) = (out / "delivery").glob("*.srt")
        (txt,) = (out / "delivery").glob("*-transkription.txt")
        seeds = [s["seed"] for s in run_report(out)["statements"]]
        assert all(isinstance(seed, int) for seed in seeds)
        texts.append((srt.read_text(encoding="utf-8"), txt.read_text(encoding="utf-8"), seeds))
    assert texts[0] == texts[1]
    assert_demo_subtitles_can_be_read(demo_run.out)


def assert_demo_subtitles_can_be_read(out: Path) -> None:
    """Every statement has words; every cue is up its minimum time; no loop is shown unflagged."""
    import pysubs2

    from pipeline.config import load_form
    from pipeline.engines.base import find_loops

    form, _ = load_form("demo")
    report = run_report(out)
    assert not any(s["no_text"] for s in report["statements"]), report["statements"]
    (srt,) = (out / "delivery").glob("*.srt")
    cues = [c for c in pysubs2.load(str(srt), encoding="utf-8") if c.plaintext.strip()]
    assert cues
    short = [(c.start, c.plaintext) for c in cues if c.end - c.start < form.subtitles.min_duration * 1000]
    assert not short, short
    # The last cue of each statement can be read at max_cps, unless the run-on allowed was not enough.
    longest = max(form.subtitles.min_duration, form.clip.silence_trim.padding)
    for part in (p for p in report["timeline"] if p["kind"] == "statement"):
        start, end = part["start_ms"], part["start_ms"] + part["duration_ms"]
        last = [c for c in cues if start <= c.start < end][-1]
        cps = len(last.plaintext.replace("\n", " ")) / ((last.end - last.start) / 1000)
        ran_on = [n for n in report["cuts"][part["statement"]]["notes"] if n.startswith("runs on")]
        assert cps <= form.subtitles.max_cps + 0.05 or ran_on == [
            f"runs on {longest:.2f} s after its last word so that the last subtitle can be read"
        ], (last.plaintext, cps, ran_on)
    (document_file,) = (out / "delivery").glob("*-transkription.json")
    document = json.loads(document_file.read_text(encoding="utf-8"))
    flagged = {
        w["text"].strip(" ,.").lower()
        for st in document["statements"]
        for s in st["segments"]
        for w in s["words"]
        if "repeated" in w.get("flags", ())
    }
    for cue in cues:
        words = cue.plaintext.lower().replace(",", " ").replace(".", " ").split()
        for loop in find_loops(words):
            assert set(words[loop.first : loop.end]) <= flagged, cue.plaintext
    qc = json.loads((out / "delivery" / "qc-report.json").read_text(encoding="utf-8"))
    (repetitions,) = [c for c in qc["checks"] if c["check"] == "transcript.repetitions"]
    assert (repetitions["status"] == "pass") == (not flagged)


def test_a_real_run_records_its_transcription_and_the_clip_in_provenance(
    jfk_meeting: Path, out_dir: Path, small_form: Path
) -> None:
    result = run_cli(
        "run", jfk_meeting, "--out", out_dir, "--form", small_form, "--language", "en", "--quiet"
    )
    assert result.returncode == 0, result.stderr
    report = run_report(out_dir)
    provenance = json.loads((out_dir / "archive/data/metadata/provenance.json").read_text(encoding="utf-8"))
    events = provenance["events"]
    (transcription,) = [e for e in events if e["eventType"] == "transcription"]
    detail = transcription["eventDetailInformation"]["eventDetail"]
    seed = report["statements"][0]["seed"]
    assert isinstance(seed, int)
    assert "transcribe jfk.flac with model base" in detail and f"seed={seed}" in detail
    assert report["engine"]["model_sha256"] in detail
    links = {
        (o["linkingObjectRole"], o["linkingObjectIdentifierValue"])
        for o in transcription["linkingObjectIdentifier"]
    }
    (transcript_file,) = (out_dir / "work" / "transcripts").glob("*.json")
    assert links == {
        ("source", "data/recordings/jfk.flac"),
        ("outcome", f"work/transcripts/{transcript_file.name}"),
    }
    (clip,) = (out_dir / "delivery").glob("*.mp4")
    made = [e for e in events if e["eventType"] == "creation"]
    (creation,) = [e for e in made if f"delivery/{clip.name}" in json.dumps(e["linkingObjectIdentifier"])]
    # The statement's segment too, from its recording, with the command that made it.
    (segment,) = [e for e in made if e is not creation]
    assert "data/recordings/jfk.flac" in json.dumps(segment["linkingObjectIdentifier"])
    assert "work/segments/" in json.dumps(segment["linkingObjectIdentifier"])
    assert "ebur128" not in segment["eventDetailInformation"]["eventDetail"]
    assert "loudnorm" in segment["eventDetailInformation"]["eventDetail"]
    sha = hashlib.sha256(clip.read_bytes()).hexdigest()
    assert (
        creation["eventOutcomeInformation"]["eventOutcomeDetail"]["eventOutcomeDetailNote"] == f"sha256={sha}"
    )
    assert "-f concat" in creation["eventDetailInformation"]["eventDetail"]
    assert f"{sha}  {clip.name}" in (out_dir / "delivery" / "SHA256SUMS").read_text(encoding="utf-8")
