"""`hearing watch`: recordings taken only when complete, made ready as they arrive, the same delivery."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import ffmpeg, run_cli

from pipeline.watch import (
    SETTLE_POLLS,
    UNPROVEN_POLLS,
    Sighting,
    Status,
    Watched,
    Watcher,
    is_temporary,
    mp4_incomplete,
    observe,
    settled,
    wav_declared_bytes,
    wav_incomplete,
)

# ------------------------------------------------------------------------------------------- pure


@pytest.mark.parametrize(
    "name",
    [".a.mp4.part", "a.mp4.part", "a.mp4.crdownload", ".syncthing.a.mp4.tmp", "~syncthing~a.mp4.tmp",
     "~syncthing~a.mp4", ".hidden/a.mp4", "a.MP4.PART"],
)  # fmt: skip
def test_temporary_names_are_never_taken(name: str) -> None:
    assert is_temporary(name)


@pytest.mark.parametrize("name", ["a.mp4", "optagelser/02 Søren.mov", "a.part.mp4"])
def test_recording_names_are_looked_at(name: str) -> None:
    assert not is_temporary(name)


def test_a_file_is_settled_after_polls_unchanged_and_again_when_it_changes() -> None:
    watched: dict[str, Watched] = {}
    first, grown = Sighting(100, 1), Sighting(200, 2)
    for _ in range(SETTLE_POLLS):
        watched = observe(watched, {"a.mp4": first})
        assert settled(watched, {}) == []
    watched = observe(watched, {"a.mp4": first})
    assert settled(watched, {}) == ["a.mp4"]
    assert settled(watched, {"a.mp4": first}) == [], "taken once"
    watched = observe(watched, {"a.mp4": grown})
    assert watched["a.mp4"].unchanged == 0 and settled(watched, {"a.mp4": first}) == []
    for _ in range(SETTLE_POLLS):
        watched = observe(watched, {"a.mp4": grown})
    assert settled(watched, {"a.mp4": first}) == ["a.mp4"], "taken again once it changed"
    assert observe(watched, {}) == {}, "a file that went away is forgotten"


def test_an_mp4_is_whole_only_when_its_boxes_fill_it_and_it_has_an_index() -> None:
    assert mp4_incomplete([("ftyp", 32), ("moov", 968), ("mdat", 9000)], 10_000) is None
    assert mp4_incomplete([("ftyp", 32), ("mdat", 9968)], 10_000) == "no index (moov) yet"
    assert "claim 10000 bytes, the file has 6000" in (
        mp4_incomplete([("ftyp", 32), ("mdat", 9968)], 6000) or ""
    )


def test_a_wav_is_whole_when_its_header_size_is_there() -> None:
    header = b"RIFF" + (9992).to_bytes(4, "little") + b"WAVE"
    assert wav_incomplete(header, 10_000) is None
    assert wav_incomplete(header, 4000) == "its header claims 10000 bytes, the file has 4000"
    streaming = b"RIFF" + (0xFFFFFFFF).to_bytes(4, "little") + b"WAVE"
    assert wav_incomplete(streaming, 4000) is None
    assert wav_declared_bytes(header) == 10_000 and wav_declared_bytes(streaming) is None


def test_a_file_its_container_cannot_show_whole_waits_longer(real_media: Path, tmp_path: Path) -> None:
    """A WAV with its size in its header is taken after SETTLE_POLLS unchanged looks; a FLAC, whose
    header would say the same of half the file, only after UNPROVEN_POLLS."""
    from pipeline.report import RunOptions

    meeting = tmp_path / "moede"
    meeting.mkdir()
    ffmpeg("-i", real_media / "en-jfk.flac", "-t", "2", meeting / "a.wav")
    ffmpeg("-i", real_media / "en-jfk.flac", "-t", "2", meeting / "b.flac")
    watcher = Watcher(RunOptions(meeting_dir=meeting, out_dir=tmp_path / "out"))
    taken_at = {}
    for look in range(UNPROVEN_POLLS + 2):
        for relpath, _, _ in watcher.look():
            taken_at[relpath] = look
    assert taken_at == {"a.wav": SETTLE_POLLS, "b.flac": UNPROVEN_POLLS}


def test_the_status_line_warns_before_the_clip_is_too_long() -> None:
    status = Status(
        3, ("d.mp4",), (("e.mp4", "no speech found"),), (("f.mp4", "no consent"),), 605_000, 600_000
    )
    assert status.line() == (
        "3 statement(s) ready, 1 arriving, 1 rejected, 1 left out, clip 10:05 of at most 10:00"
        " - LONGER THAN AGREED"
    )


# ------------------------------------------------------------------------------------- end to end


def watch_empty_meeting(tmp_path: Path, out_dir: Path, form: Path) -> tuple[Path, Watching]:
    """An empty meeting folder, and `hearing watch` on it (English, the small form) once it is looking."""
    meeting = tmp_path / "moede"
    meeting.mkdir()
    watching = Watching(meeting, "--out", out_dir, "--form", form, "--language", "en")
    watching.wait_for("watching")
    return meeting, watching


class Watching:
    """`hearing watch` in a process of its own, its stderr lines kept with the time each arrived."""

    def __init__(self, *args: str | Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "watch", *map(str, args)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[tuple[float, str]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def wait_for(self, text: str, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for _, line in self.lines):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                pytest.fail(f"no {text!r} from hearing watch:\n" + "\n".join(li for _, li in self.lines))
            time.sleep(0.1)

    def enter(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("\n")
        self.process.stdin.flush()

    def press_enter(self, timeout: float = 600) -> int:
        """Enter, then the exit code once the delivery is made."""
        self.enter()
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code


def copy_in_chunks(source: Path, target: Path, chunk: int, pause: float) -> float:
    """Copied as a slow device does it, pausing after every chunk but the last; the moment the last byte
    was written."""
    data = source.read_bytes()
    with target.open("wb") as handle:
        for start in range(0, len(data), chunk):
            if start:
                time.sleep(pause)
            handle.write(data[start : start + chunk])
            handle.flush()
        return time.monotonic()


@pytest.mark.slow
def test_recordings_copied_in_one_by_one_give_the_delivery_of_a_plain_run(
    real_media: Path, tmp_path: Path, out_dir: Path, small_form: Path
) -> None:
    wav = tmp_path / "c.wav"
    ffmpeg("-i", real_media / "en-jfk.flac", "-ac", "1", "-ar", "16000", wav)
    meeting, watching = watch_empty_meeting(tmp_path, out_dir, small_form)
    landed: dict[str, float] = {}

    # A download under a temporary name, renamed once complete.
    (meeting / ".a.flac.part").write_bytes((real_media / "en-jfk.flac").read_bytes())
    time.sleep(2.5)
    (meeting / ".a.flac.part").rename(meeting / "a.flac")
    landed["a.flac"] = time.monotonic()
    # A video copied slowly in chunks, pausing longer than a whole MP4 needs to stay unchanged: only its
    # boxes show that it is not whole yet.
    landed["b.mp4"] = copy_in_chunks(
        real_media / "en-talking-head.mp4", meeting / "b.mp4", chunk=256 * 1024, pause=0.5
    )
    # A Syncthing transfer: its temporary name, then the real one.
    syncing = meeting / "~syncthing~c.wav.tmp"
    copy_in_chunks(wav, syncing, chunk=64 * 1024, pause=0.1)
    syncing.rename(meeting / "c.wav")
    landed["c.wav"] = time.monotonic()

    watching.wait_for("3 statement(s) ready")
    assert watching.press_enter() == 0, "\n".join(line for _, line in watching.lines)

    # Each file taken once, after its last byte had landed.
    taken = [(at, line) for at, line in watching.lines if line.startswith("taken")]
    names = [line.split(": ", 1)[1].split(" (")[0] for _, line in taken]
    assert sorted(names) == ["a.flac", "b.mp4", "c.wav"], taken
    for at, line in taken:
        name = line.split(": ", 1)[1].split(" (")[0]
        assert at > landed[name], f"{name} taken before its last byte: {line}"
        assert f"({(meeting / name).stat().st_size} bytes)" in line

    # The delivery only joined what was ready: no statement was heard or rendered again.
    report = json.loads((out_dir / "run.json").read_text(encoding="utf-8"))
    made = [
        s for s in report["stages"] if s["stage"] in ("transcribe", "loudness", "render") and not s["cached"]
    ]
    assert all(s.get("part") == "title" for s in made), made
    # The model watch loaded and heard them with is named, as a run that loads it names it.
    assert report["engine"]["model_sha256"] and report["engine"]["model_path"], report["engine"]

    # The same delivery as a plain run of the finished folder.
    plain_out = tmp_path / "plain"
    plain = run_cli("run", meeting, "--out", plain_out, "--form", small_form, "--language", "en", "--quiet")
    assert plain.returncode == 0, plain.stderr
    watched, alone = out_dir / "delivery", plain_out / "delivery"
    for pattern in ("*.srt", "*-transkription.txt"):
        (ours,), (theirs,) = watched.glob(pattern), alone.glob(pattern)
        assert ours.read_text(encoding="utf-8") == theirs.read_text(encoding="utf-8"), pattern
    qc = [json.loads((d / "qc-report.json").read_text(encoding="utf-8")) for d in (watched, alone)]
    assert [q["conforms"] for q in qc] == [True, True]
    assert qc[0]["warnings"] == qc[1]["warnings"]
    durations = [
        next(c["measured"] for c in q["checks"] if c["check"] == "clip.duration") for q in qc
    ]  # fmt: skip
    assert durations[0] == durations[1]


@pytest.mark.slow
def test_ctrl_c_stops_watching_cleanly_and_a_run_goes_on_from_there(
    real_media: Path, tmp_path: Path, out_dir: Path, small_form: Path
) -> None:
    import signal

    meeting, watching = watch_empty_meeting(tmp_path, out_dir, small_form)
    (meeting / "a.flac").write_bytes((real_media / "en-jfk.flac").read_bytes())
    watching.wait_for("1 statement(s) ready")
    watching.process.send_signal(signal.SIGINT)
    assert watching.process.wait(timeout=60) == 130
    watching._reader.join(timeout=10)
    said = "\n".join(line for _, line in watching.lines)
    assert "interrupted" in said and "Traceback" not in said, said
    assert not (out_dir / "delivery").exists()

    result = run_cli("run", meeting, "--out", out_dir, "--form", small_form, "--language", "en", "--quiet")
    assert result.returncode == 0, result.stderr
    report = json.loads((out_dir / "run.json").read_text(encoding="utf-8"))
    work = [s for s in report["stages"] if s["stage"] in ("speech-audio", "transcribe", "loudness")]
    assert work and all(s["cached"] for s in work), work
    assert "model_sha256" not in report["engine"], "the model was loaded although everything was heard"


@pytest.mark.slow
def test_enter_while_a_recording_is_still_being_copied_waits_for_all_of_it(
    real_media: Path, tmp_path: Path, out_dir: Path, small_form: Path
) -> None:
    meeting, watching = watch_empty_meeting(tmp_path, out_dir, small_form)
    copying = threading.Thread(
        target=copy_in_chunks, args=(real_media / "en-jfk.flac", meeting / "a.flac", 64 * 1024, 0.3)
    )
    copying.start()
    time.sleep(1.0)
    watching.enter()
    watching.wait_for("delivering once these have arrived completely: a.flac")
    copying.join()
    assert watching.process.wait(timeout=600) == 0, "\n".join(line for _, line in watching.lines)
    (txt,) = (out_dir / "delivery").glob("*-transkription.txt")
    assert "what you can do for your country" in txt.read_text(encoding="utf-8").lower()
