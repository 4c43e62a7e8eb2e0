"""Issue 23: every recording is judged on its own. Whatever a file in the meeting folder is (a named
pipe, a socket, a device, a folder, unreadable, any codec or channel layout, any bytes in its name), it is
used or rejected with one line naming it, within seconds, and the others still go on. Every path ffmpeg
reads is read as the file it is, and the ffmpeg a pipeline starts ends with the pipeline, even when that
is killed with SIGKILL.

The hostile files are made here, at test time; ffmpeg is the real one. Anything that could hang (opening
a named pipe) runs in a separate process with a time limit, so a regression fails instead of hanging.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import unicodedata
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import MEDIA, REPO, SMALL_FORM, ffmpeg, unprivileged_prefix

from pipeline import media
from pipeline.files import HashCache, NotAFile, kind_of, not_a_file, open_regular, shown_name

# Long enough for a cold start of Python and PyAV on a busy machine; a named pipe opened for reading
# blocks for ever, so a regression fails here instead of hanging.
LIMIT = 120

INGEST = """
import json, sys
from pathlib import Path
from pipeline.config import Form, load_meeting
from pipeline.files import HashCache
from pipeline.stages import ingest

meeting_dir, work = Path(sys.argv[1]), Path(sys.argv[2])
meeting, meeting_file = load_meeting(meeting_dir)
hashes = HashCache(work / "hashes.json")
found = ingest.run(meeting_dir, meeting, meeting_file, Form(), hashes, probe_cache=work / "probes")
hashes.save()
print(json.dumps({
    "statements": [s.recording.relpath for s in found.statements],
    "streams": {s.recording.relpath: s.audio_stream for s in found.statements},
    "rejected": {r.relpath: r.reason for r in found.rejections},
    "recordings": [r.relpath for r in found.recordings],
}, ensure_ascii=False))
"""


def python(code: str, *args: str | Path, prefix: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    """``code`` run by a Python of its own, with this repository's pipeline, within LIMIT seconds."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONIOENCODING": "utf-8"}
    return subprocess.run(
        [*(prefix or []), sys.executable, "-c", code, *map(str, args)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        timeout=LIMIT,
        check=False,
    )


def ingest(meeting: Path, work: Path, prefix: list[str] | None = None) -> dict[str, Any]:
    """What ingest makes of the folder, run as `hearing run` runs it, in a process of its own."""
    result = python(INGEST, meeting, work, prefix=prefix)
    assert result.returncode == 0, result.stderr
    found: dict[str, Any] = json.loads(result.stdout)
    # Every name and reason it reports is text that UTF-8 can carry; a reason is one line.
    for text in [*found["rejected"], *found["statements"], *found["rejected"].values()]:
        text.encode("utf-8")
    for reason in found["rejected"].values():
        assert "\n" not in reason and "\r" not in reason, reason
    return found


def tone_wav(
    path: Path,
    *,
    channels: int = 1,
    rate: int = 16_000,
    width: int = 2,
    seconds: float = 1.0,
    voiced: int = 0,
) -> Path:
    """A WAV written by Python's wave module (so with no channel layout at all): a 440 Hz tone on
    channel ``voiced``, silence on the others."""
    import numpy as np

    count = int(rate * seconds)
    tone = np.sin(2 * np.pi * 440 * np.arange(count) / rate) * 0.3
    frames = np.zeros((count, channels))
    frames[:, voiced] = tone
    if width == 1:
        data = (frames * 127 + 128).astype(np.uint8).tobytes()
    elif width == 3:
        ints = (frames * (2**23 - 1)).astype("<i4")
        data = b"".join(i.to_bytes(4, "little", signed=True)[:3] for i in ints.ravel().tolist())
    else:
        data = (frames * (2 ** (8 * width - 1) - 1)).astype(f"<i{width}").tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(width)
        out.setframerate(rate)
        out.writeframes(data)
    return path


# ------------------------------------------------------------------------------- files that are no files


def test_special_files_are_never_opened_each_is_rejected_and_the_rest_is_used(tmp_path: Path) -> None:
    meeting = tmp_path / "moede"
    tone_wav(meeting / "god.wav")
    os.mkfifo(meeting / "fifo.mp4")
    (meeting / "til-fifo.m4a").symlink_to("fifo.mp4")
    (meeting / "mappe.mov").mkdir()
    tone_wav(meeting / "mappe.mov" / "inde.wav")  # a folder named like a recording: what is in it counts
    (meeting / "ring.mp4").symlink_to("ring.mp4")
    (meeting / "vaek.mp3").symlink_to("findes-ikke.mp3")
    (meeting / "nul.mp3").symlink_to("/dev/zero")
    (meeting / "tom.wav").write_bytes(b"")
    here = Path.cwd()
    os.chdir(meeting)  # a socket's path is limited to about 100 bytes; the folder's may be longer
    try:
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind("sokkel.wav")
    finally:
        os.chdir(here)
    expected = {
        "fifo.mp4": "a named pipe (FIFO), not a recording file",
        "til-fifo.m4a": "a link to a named pipe (FIFO), not a recording file",
        "mappe.mov": "a folder, not a recording file",
        "ring.mp4": "a link that cannot be followed (too many levels of symbolic links)",
        "vaek.mp3": "a link to a file that does not exist",
        "nul.mp3": "a link to a file outside the meeting folder (not followed)",
        "tom.wav": "empty file (0 bytes)",
        "sokkel.wav": "a socket, not a recording file",
    }
    try:
        # A character device in the folder itself, where this user may make one (root may).
        os.mknod(meeting / "enhed.wav", 0o600 | stat.S_IFCHR, os.makedev(1, 5))
        expected["enhed.wav"] = "a character device, not a recording file"
    except (PermissionError, AttributeError):
        pass
    try:
        for _ in range(2):  # the second time from the hash and probe caches
            found = ingest(meeting, tmp_path / "work")
            assert found["statements"] == ["god.wav", "mappe.mov/inde.wav"]
            assert found["rejected"] == expected
            assert found["recordings"] == ["god.wav", "mappe.mov/inde.wav", "tom.wav"]
    finally:
        server.close()


NOT_OPENED = """
import sys
from pathlib import Path
from pipeline import media, watch
from pipeline.config import Form
from pipeline.errors import MediaError, RecordingRejected
from pipeline.files import HashCache, NotAFile
from pipeline.stages import render

path = Path(sys.argv[1])
for name, attempt in [
    ("hash", lambda: HashCache(Path(sys.argv[2])).sha256(path)),
    ("probe", lambda: media.probe(path)),
    ("speech", lambda: media.extract_speech_audio(path, 0, Path(sys.argv[2]))),
    ("meter", lambda: media.run_ffmpeg(render.meter_args(path, 0, Form()), what="meter it")),
    ("boxes", lambda: media.mp4_boxes(path)),
]:
    try:
        attempt()
        print(name, "opened it")
    except (NotAFile, MediaError, RecordingRejected) as error:
        print(name, error)
print("watch", watch.container_verdict(path))
"""


@pytest.mark.parametrize("kind", ["fifo", "link to fifo", "device"])
def test_nothing_opens_a_special_file(tmp_path: Path, kind: str) -> None:
    """Hashing, probing, decoding, ffmpeg and `hearing watch` each refuse it, naming what it is, at once
    (a named pipe opened for reading would wait for a writer for ever)."""
    fifo = tmp_path / "x.mp4"
    os.mkfifo(fifo)
    path = {"fifo": fifo, "link to fifo": tmp_path / "y.wav", "device": tmp_path / "z.wav"}[kind]
    if kind == "link to fifo":
        path.symlink_to(fifo)
    elif kind == "device":
        path.symlink_to("/dev/zero")
    result = python(NOT_OPENED, path, tmp_path / "out.wav")
    assert result.returncode == 0, result.stderr
    said = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    what = "character device" if kind == "device" else "named pipe (FIFO)"
    for step in ("hash", "probe", "speech", "meter", "boxes"):
        assert what in said[step] and said[step].endswith("not a recording file"), (step, said[step])
    assert said["watch"] == "Verdict(problem=None, proven=True)"  # taken at once, for ingest to reject


def test_what_a_file_is_is_told_without_opening_it(tmp_path: Path) -> None:
    assert kind_of(os.stat("/dev/null").st_mode) == "a character device"
    assert kind_of(os.stat(tmp_path).st_mode) == "a folder"
    assert kind_of(os.stat(MEDIA / "en-jfk.flac").st_mode) is None
    link = tmp_path / "null.wav"
    link.symlink_to("/dev/null")
    assert not_a_file(link) == "a link to a character device, not a recording file"
    with pytest.raises(NotAFile, match="character device"):
        HashCache(tmp_path / "hashes.json").sha256(link)
    with pytest.raises(NotAFile, match="a folder"), open_regular(tmp_path):
        pass
    with open_regular(MEDIA / "en-jfk.flac") as handle:
        assert handle.read(4) == b"fLaC"


def test_unreadable_files_and_folders_are_rejected_with_their_reason(tmp_path: Path) -> None:
    prefix = unprivileged_prefix()
    if prefix is None:
        pytest.skip("running as root without user namespaces (unshare): chmod 000 would prove nothing")
    meeting = tmp_path / "moede"
    tone_wav(meeting / "god.wav")
    locked = tone_wav(meeting / "laast.wav")
    closed = meeting / "lukket"
    tone_wav(closed / "inde.wav")
    work = tmp_path / "work"
    work.mkdir()
    locked.chmod(0)
    closed.chmod(0)
    try:
        found = ingest(meeting, work, prefix=prefix)
    finally:
        locked.chmod(0o644)
        closed.chmod(0o755)
    assert found["statements"] == ["god.wav"]
    assert found["rejected"] == {
        "laast.wav": "cannot be read (permission denied)",
        "lukket/": "a folder that cannot be read (permission denied): any recordings in it are left out",
    }


# ------------------------------------------------------------------------------------------------ names


def test_names_that_are_not_text_are_rejected_by_their_escaped_name(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 (a name from an old Windows or a camera's FAT card) cannot be written in
    run.json, the archive's manifests or the delivery: rejected, named with the bytes escaped. Control
    characters are text: such a file is used (its name escaped only where it is shown on a line)."""
    meeting = tmp_path / "moede"
    tone_wav(meeting / "god.wav")
    raw = os.fsencode(meeting)
    for name in (
        b"bad\xff\xfe.wav",
        b"latin1-\xe6\xf8\xe5.wav",
        b"mappe-\xff/inde.wav",
        b"ny\nlinje-\xff.wav",
    ):
        os.makedirs(os.path.dirname(raw + b"/" + name), exist_ok=True)
        shutil.copyfile(meeting / "god.wav", raw + b"/" + name)
    controls = ["to\nlinjer.wav", "tab\there.wav", "escape\x1b[31m.wav", "c1-\x85.wav"]
    for name in controls:
        shutil.copyfile(meeting / "god.wav", meeting / name)
    found = ingest(meeting, tmp_path / "work")
    assert sorted(found["statements"]) == sorted(["god.wav", *controls])
    not_utf8 = "the file name is not valid UTF-8: rename it"
    assert found["rejected"] == {
        "bad\\xff\\xfe.wav": not_utf8,
        "latin1-\\xe6\\xf8\\xe5.wav": not_utf8,
        "mappe-\\xff/inde.wav": not_utf8,
        "ny\\nlinje-\\xff.wav": not_utf8,
    }
    # Nothing of them reached the records: hashes.json stays what JSON and UTF-8 can carry.
    json.loads((tmp_path / "work" / "hashes.json").read_text(encoding="utf-8"))


def test_a_name_too_long_to_carry_into_the_edits_files_is_rejected(tmp_path: Path) -> None:
    """A name of up to 255 bytes can exist; the edits files and their temporary files are made from it
    and are longer: a name is carried up to files.MAX_NAME_BYTES, counted in bytes, not characters."""
    from pipeline.files import MAX_NAME_BYTES

    meeting = tmp_path / "moede"
    tone_wav(meeting / "god.wav")
    fits = "ø" * ((MAX_NAME_BYTES - 4) // 2) + ".wav"  # two bytes a letter
    too_long = "ø" * ((MAX_NAME_BYTES - 4) // 2 + 1) + ".wav"
    emoji = "🏛" * 60 + ".wav"  # 64 characters, 244 bytes
    for name in (fits, too_long, emoji):
        shutil.copyfile(meeting / "god.wav", meeting / name)
    found = ingest(meeting, tmp_path / "work")
    assert sorted(found["statements"]) == sorted(["god.wav", fits])
    assert set(found["rejected"]) == {too_long, emoji}
    assert all("too long to carry" in reason and "bytes" in reason for reason in found["rejected"].values())


@pytest.mark.parametrize("which", ["meeting", "out"])
def test_a_meeting_or_output_folder_whose_name_is_not_utf8_is_refused_at_once(
    which: str, tmp_path: Path
) -> None:
    """Every record, manifest and ffmpeg command carries these two paths: refused before any work, in
    one line with the bytes escaped, by the dry run as by the run."""
    from conftest import run_here

    raw = os.fsencode(tmp_path)
    meeting = os.fsdecode(raw + (b"/m\xf8de" if which == "meeting" else b"/moede"))
    out = os.fsdecode(raw + (b"/ud-\xff" if which == "out" else b"/ud"))
    os.makedirs(meeting)
    tone_wav(Path(meeting) / "a.wav")
    for extra in (("--dry-run",), ()):
        result = run_here("run", meeting, "--out", out, "--form", "demo", *extra)
        assert result.returncode == 2, result.stderr
        shown = "m\\xf8de" if which == "meeting" else "ud-\\xff"
        assert result.stderr.strip().splitlines() == [
            f"error: {'the meeting folder' if which == 'meeting' else '--out'} "
            f"{shown_name(meeting if which == 'meeting' else out)}: its name is not valid UTF-8: rename it"
        ], result.stderr
        assert shown in result.stderr
        assert not os.path.exists(out)


def test_a_record_carries_a_path_that_is_not_utf8_escaped(tmp_path: Path) -> None:
    from pipeline.files import write_json

    target = tmp_path / "run.json"
    write_json(
        target, {"meeting_dir": os.fsdecode(b"/m\xf8de"), os.fsdecode(b"k\xff"): [os.fsdecode(b"\xfe")]}
    )
    assert json.loads(target.read_text(encoding="utf-8")) == {"meeting_dir": "/m\\xf8de", "k\\xff": ["\\xfe"]}


def test_a_file_of_mostly_holes_is_rejected_without_reading_it(tmp_path: Path) -> None:
    """A file far longer than what it holds (``truncate -s 50G``) would be read for its digest and copied
    into the archive for minutes: rejected by its size on disk alone. A real recording of that size,
    written in full, is not."""
    meeting = tmp_path / "moede"
    tone_wav(meeting / "god.wav")
    with open(meeting / "hul.mp4", "wb") as handle:
        handle.truncate(10**12)  # 1 TB: reading it would take hours
    found = ingest(meeting, tmp_path / "work")
    assert found["statements"] == ["god.wav"]
    assert found["rejected"] == {
        "hul.mp4": "a file of 1000.0 GB that holds 0.0 MB on disk (mostly empty space), not a recording"
    }


DEPTH = 1100  # past Python's recursion limit (Python 3.11's os.walk and shutil.rmtree recurse)


def test_folders_nested_a_thousand_deep_are_walked_and_a_path_too_long_is_rejected(tmp_path: Path) -> None:
    meeting = tmp_path / "moede"
    tone_wav(meeting / "god.wav")
    shallow = "/".join(["d"] * 40) + "/inde.wav"
    levels = [os.open(meeting, os.O_RDONLY)]
    try:
        for _ in range(DEPTH):  # made through descriptors: the whole path is past what one call takes
            os.mkdir("d", dir_fd=levels[-1])
            levels.append(os.open("d", os.O_RDONLY, dir_fd=levels[-1]))
        fd = os.open("x.wav", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=levels[-1])
        os.write(fd, (meeting / "god.wav").read_bytes())
        os.close(fd)
        shutil.copyfile(meeting / "god.wav", meeting / shallow)
        found = ingest(meeting, tmp_path / "work")
        assert sorted(found["statements"]) == sorted(["god.wav", shallow])
        ((deepest, reason),) = found["rejected"].items()
        assert deepest == "d/" * DEPTH + "x.wav"
        assert reason == (
            f"the path inside the meeting folder is too long to carry ({len(deepest)} bytes, at most 1000): "
            "move the file up"
        )
    finally:
        # Taken down from the bottom here: pytest's own clean-up of old temporary folders recurses.
        while len(levels) > 1:
            for entry in os.scandir(levels[-1]):
                if entry.is_dir(follow_symlinks=False):
                    os.rmdir(entry.name, dir_fd=levels[-1])
                else:
                    os.unlink(entry.name, dir_fd=levels[-1])
            os.close(levels.pop())
            os.rmdir("d", dir_fd=levels[-1])
        os.close(levels[0])


def test_a_name_that_is_not_utf8_survives_the_hash_cache(tmp_path: Path) -> None:
    """hashes.json keeps such a name as its escape and reads it back as it was."""
    name = os.fsdecode(os.fsencode(tmp_path) + b"/\xff\xfe.wav")
    tone_wav(Path(name))
    hashes = HashCache(tmp_path / "hashes.json")
    digest = hashes.sha256(Path(name))
    hashes.save()
    again = HashCache(tmp_path / "hashes.json")
    assert str(Path(name).resolve()) in again._entries
    assert again.sha256(Path(name)) == digest


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("Åse.m4a", "Åse.m4a"),
        (os.fsdecode(b"a\xffb.wav"), "a\\xffb.wav"),
        ("to\nlinjer.wav", "to\\nlinjer.wav"),
        ("\x1b[2J.wav", "\\x1b[2J.wav"),
        ("del\x7f.wav", "del\\x7f.wav"),
    ],
)
def test_a_name_is_shown_on_one_line_saying_exactly_which_file(name: str, shown: str) -> None:
    assert shown_name(name) == shown


def test_meeting_yaml_finds_a_file_whatever_unicode_form_either_is_in(tmp_path: Path) -> None:
    """Åse typed composed (NFC) in meeting.yaml, the file stored decomposed (NFD, as macOS and some
    copies store it), and the other way round; two files whose names differ only so are both rejected,
    since which one is meant cannot be known."""
    meeting = tmp_path / "moede"
    nfd = unicodedata.normalize("NFD", "Åse.wav")
    nfc_name = unicodedata.normalize("NFC", "Ærø-Østergård.wav")
    tone_wav(meeting / nfd)
    tone_wav(meeting / unicodedata.normalize("NFD", nfc_name))
    both = ("Århus.wav", "Århus.wav")
    tone_wav(meeting / unicodedata.normalize("NFC", both[0]))
    tone_wav(meeting / unicodedata.normalize("NFD", both[1]))
    (meeting / "meeting.yaml").write_text(
        "statements:\n"
        f"  - {{file: {unicodedata.normalize('NFC', 'Åse.wav')}, speaker: Åse}}\n"
        f"  - {{file: {unicodedata.normalize('NFD', 'Ærø-Østergård.wav')}}}\n"
        f"  - {{file: {both[0]}}}\n",
        encoding="utf-8",
    )
    found = ingest(meeting, tmp_path / "work")
    assert found["statements"] == [nfd, unicodedata.normalize("NFD", nfc_name)]
    rejected = found["rejected"]
    assert sorted(rejected) == sorted(unicodedata.normalize(form, both[0]) for form in ("NFC", "NFD"))
    for reason in rejected.values():
        assert reason.startswith("2 files have this name, its letters encoded in different ways")
        assert "composed (NFC): '\\xc5rhus.wav'" in reason
        assert "decomposed (NFD): 'A\\u030arhus.wav'" in reason


def test_a_statement_named_twice_in_two_unicode_forms_is_named_again(tmp_path: Path) -> None:
    meeting = tmp_path / "moede"
    tone_wav(meeting / "Åse.wav")
    (meeting / "meeting.yaml").write_text(
        f"statements:\n  - {{file: {unicodedata.normalize('NFC', 'Åse.wav')}}}\n"
        f"  - {{file: {unicodedata.normalize('NFD', 'Åse.wav')}}}\n",
        encoding="utf-8",
    )
    result = python(INGEST, meeting, tmp_path / "work")
    assert result.returncode != 0 and "statements[1].file" in result.stderr and "again" in result.stderr


# -------------------------------------------------------------------------- any codec and channel layout


def _pan_layout(layout: str, channels: int) -> Callable[[Path], Path]:
    def make(path: Path) -> Path:
        mapping = "|".join(f"c{i}=c0" for i in range(channels))
        codec = ["-c:a", "pcm_s16le"] if path.suffix == ".mov" else []
        ffmpeg("-f", "lavfi", "-i", "sine=f=440:d=1", "-af", f"pan={layout}|{mapping}", *codec, path)
        return path

    return make


def _cover_art(path: Path) -> Path:
    cover = path.with_suffix(".png")
    ffmpeg("-f", "lavfi", "-i", "color=red:s=64x64:d=0.04", "-frames:v", "1", cover)
    ffmpeg("-f", "lavfi", "-i", "sine=d=1", "-i", cover, "-map", "0", "-map", "1", "-c:a", "libmp3lame",
           "-c:v", "png", "-disposition:v", "attached_pic", path)  # fmt: skip
    return path


def _encoded(codec: str, *options: str) -> Callable[[Path], Path]:
    def make(path: Path) -> Path:
        ffmpeg("-f", "lavfi", "-i", "sine=f=440:d=1", "-c:a", codec, *options, path)
        return path

    return make


# (file name, how to make it): every one is used, its sound mixed down to what the speech engine and
# the clip take.
USED: list[tuple[str, Callable[[Path], Path]]] = [
    ("48-kanaler.wav", lambda p: tone_wav(p, channels=48, voiced=5)),
    ("64-kanaler.wav", lambda p: tone_wav(p, channels=64, voiced=63)),
    ("3-kanaler.wav", lambda p: tone_wav(p, channels=3, voiced=2)),
    ("12-kanaler.mkv", lambda p: _remux(tone_wav(p.with_suffix(".wav"), channels=12, voiced=7), p)),
    ("1-kanal-8khz.wav", lambda p: tone_wav(p, rate=8000)),
    ("24-bit.wav", lambda p: tone_wav(p, width=3)),
    ("8-bit.wav", lambda p: tone_wav(p, width=1)),
    ("32-bit-float.wav", _encoded("pcm_f32le")),
    ("384khz.wav", lambda p: tone_wav(p, rate=384_000)),
    ("7.1.flac", _pan_layout("7.1", 8)),
    ("nedmiks.mov", _pan_layout("downmix", 2)),
    ("FC+LFE.wav", _pan_layout("FC+LFE", 2)),
    ("omslag.mp3", _cover_art),
    ("opus.ogg", _encoded("libopus", "-ac", "2")),
]


def _remux(source: Path, target: Path) -> Path:
    ffmpeg("-i", source, "-c", "copy", target)
    return target


@pytest.mark.parametrize(("name", "make"), USED, ids=[name for name, _ in USED])
def test_any_channel_layout_and_sample_format_is_mixed_down_for_the_engine_and_the_clip(
    tmp_path: Path, name: str, make: Callable[[Path], Path]
) -> None:
    from pipeline.config import Form
    from pipeline.media import loudness
    from pipeline.models import Consent, Recording, Statement
    from pipeline.stages import ingest as ingest_stage
    from pipeline.stages import render
    from pipeline.stages.cards import Card, render_png
    from pipeline.stages.cut import Cut, Part

    (tmp_path / "moede").mkdir()
    source = make(tmp_path / "moede" / name)
    probe = media.probe(source)
    assert ingest_stage.usable(probe) is None
    assert probe.video is None  # cover art is no picture of the speaker
    stream = ingest_stage.speech_stream(probe)
    speech = tmp_path / "speech.wav"
    media.extract_speech_audio(source, stream, speech)
    samples = media.read_wav_mono16k(speech)
    assert 900 <= media.wav_duration_ms(speech) <= 1100
    assert float(abs(samples).max()) > 0.001  # the tone is there, whichever channel carried it

    statement = Statement(
        "s01", Recording(name, 1, "sha"), probe, stream, None, None, None, Consent(), None
    )  # fmt: skip
    form = Form.model_validate({"video": {"width": 214, "height": 120, "preset": "ultrafast"}})
    audio = render.stream_info(statement)
    frames = loudness.meter(render.meter_args(source, stream, form, audio), what="meter")
    cut = Cut("s01", 0, 1000, "whole")
    measured = loudness.stretch(frames, cut.in_ms, cut.out_ms)
    png = tmp_path / "card.png"
    render_png(Card("statement", "Indlæg", ("x",), 1000, "s01", None), 214, 120, png)
    part = Part("statement", "s01", 0, 25, 25)
    target = tmp_path / "segment.mov"
    args = render.statement_args(
        source, statement, cut, part, form, measured, target, subtitles=None, fonts_dir=None, card_png=png
    )
    render.run_segment(args, target, what="render", duration_ms=1000)
    made = media.read_file_facts(target)
    assert [(t.kind, t.channels) for t in made.tracks if t.kind == "audio"] == [("audio", 2)]
    assert media.measure_r128(target).integrated > -40  # normalised towards -23 LUFS, not silence
    preview = tmp_path / "preview.mp4"
    media.run_ffmpeg(render.preview_args(source, statement, preview), what="preview")
    assert [t.channels for t in media.read_file_facts(preview).tracks if t.kind == "audio"] == [2]


def _no_audio_packets(path: Path) -> Path:
    ffmpeg("-f", "lavfi", "-i", "testsrc=s=160x90:d=2", "-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono",
           "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-c:a", "pcm_s16le", "-frames:a", "0", "-t", "2",
           path)  # fmt: skip
    return path


# (file name, how to make it, the reason ingest gives, or None where the decoding gives it)
REJECTED: list[tuple[str, Callable[[Path], Path], str | None]] = [
    ("65-kanaler.wav", lambda p: tone_wav(p, channels=65), "65 audio channels: at most 64 can be mixed"),
    ("1024-kanaler.wav", lambda p: tone_wav(p, channels=1024, rate=4000, seconds=0.6),
     "audio stream cannot be decoded (no sample rate or channels)"),
    ("1khz.wav", lambda p: tone_wav(p, rate=1000), "a sample rate of 1000 Hz is too low to carry speech"),
    ("uden-lyd.mp4", lambda p: (ffmpeg("-f", "lavfi", "-i", "testsrc=s=160x90:d=1", p), p)[1],
     "no audio stream (a statement needs sound)"),
    ("ingen-samples.wav", lambda p: tone_wav(p, seconds=0), "too short: 0.0 s"),
    ("tomt-lydspor.mkv", _no_audio_packets, None),
]  # fmt: skip


@pytest.mark.parametrize(("name", "make", "reason"), REJECTED, ids=[name for name, _, _ in REJECTED])
def test_sound_nothing_can_use_is_rejected_with_one_line(
    tmp_path: Path, name: str, make: Callable[[Path], Path], reason: str | None
) -> None:
    from pipeline.errors import MediaError
    from pipeline.stages import ingest as ingest_stage

    source = make(tmp_path / name)
    probe = media.probe(source)
    if reason is not None:
        said = ingest_stage.usable(probe)
        assert said is not None and said.startswith(reason), said
        return
    # Streams that promise sound but hold none: the decoding says so (transcribe rejects it with this).
    assert ingest_stage.usable(probe) is None
    with pytest.raises(MediaError) as caught:
        media.extract_speech_audio(source, ingest_stage.speech_stream(probe), tmp_path / "speech.wav")
    assert str(caught.value) == "no sound could be decoded from it (no samples)"


# -------------------------------------------------------------------------------- paths given to ffmpeg


def _ffmpegs() -> list[str]:
    import imageio_ffmpeg

    found = [str(imageio_ffmpeg.get_ffmpeg_exe())]
    system = shutil.which("ffmpeg")
    if system and Path(system).resolve() != Path(found[0]).resolve():
        found.append(system)
    return found


# A folder (an --out, a meeting folder) named with what ffmpeg could read as a pattern, a filter graph's
# syntax or an escape; and recordings named like protocols, options and patterns.
HOSTILE_FOLDER = "o%d 'q' [a],b;c:d=e\\f*g?h%03d"
HOSTILE_NAMES = ("concat:a.wav", "subfile,,start,0,end,0,,:b.wav", "http:c.wav", "-d.wav", "e%d.wav",
                 "*.wav", "?.wav", "pipe:0.wav", "file:f.wav", "[g];h,i.wav")  # fmt: skip


@pytest.mark.parametrize("binary", _ffmpegs(), ids=lambda b: "bundled" if "imageio" in b else "system")
def test_ffmpeg_reads_every_path_as_the_file_it_is(
    binary: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline import fonts
    from pipeline.config import Form
    from pipeline.media import loudness
    from pipeline.models import Consent, Recording, Statement
    from pipeline.stages import render
    from pipeline.stages.cards import Card, render_png
    from pipeline.stages.cut import Cut, Part
    from pipeline.stages.subtitles.io import to_ass
    from pipeline.stages.subtitles.rules import Cue

    monkeypatch.setenv(media.FFMPEG_ENV, binary)
    monkeypatch.setenv("HEARING_PIPELINE_CACHE", str(tmp_path / "cache"))
    media.ffmpeg_choice.cache_clear()
    try:
        folder = tmp_path / HOSTILE_FOLDER
        form = Form.model_validate({"video": {"width": 214, "height": 120, "preset": "ultrafast"}})
        for name in HOSTILE_NAMES:
            source = tone_wav(folder / name, seconds=0.6)
            frames = loudness.meter(render.meter_args(source, 0, form), what=f"meter {name}")
            assert len(frames.momentary) >= 5, name
        # A card's picture, burned-in subtitles and the font folder, all in that folder.
        png = folder / "kort%d.png"
        render_png(Card("statement", "Indlæg", ("x",), 1000, "s01", None), 214, 120, png)
        part = Part("card", None, 0, 25, 25)
        card = folder / "kort.mov"
        render.run_segment(render.card_args(png, part, form, card), card, what="card", duration_ms=1000)
        source = folder / HOSTILE_NAMES[0]
        probe = media.probe(source)
        statement = Statement(
            "s01", Recording(source.name, 1, "sha"), probe, 0, None, None, None, Consent(), None
        )
        ass = folder / "tekst%d.ass"
        ass.write_text(
            to_ass([Cue(0, 500, ("Hej",))], width=214, height=120, font_name=fonts.FONT_NAME,
                   font_size_px=9, offset_ms=0, duration_ms=1000),
            encoding="utf-8",
        )  # fmt: skip
        fonts_dir = folder / "fonts%d"
        shutil.copytree(fonts.fonts_dir(), fonts_dir)
        segment = folder / "indlaeg.mov"
        measured = media.Loudness(-23.0, -10.0, 1.0, -33.0, 0.0)
        args = render.statement_args(
            source, statement, Cut("s01", 0, 600, "whole"), Part("statement", "s01", 0, 25, 25), form,
            measured, segment, subtitles=ass, fonts_dir=fonts_dir, card_png=png,
        )  # fmt: skip
        render.run_segment(args, segment, what="render", duration_ms=1000)
        listing = folder / "liste%d.txt"
        listing.write_text(render.concat_list([card, segment]), encoding="utf-8")
        clip = folder / "klip%d.mp4"
        join = render.join_args(listing, form, clip, soft_subtitles=ass, language="da", title="Møde")
        render.run_segment(join, clip, what="join", duration_ms=2000)
        facts = media.read_file_facts(clip)
        assert 1900 <= facts.duration_ms <= 2200
        assert sorted(t.kind for t in facts.tracks) == ["audio", "subtitle", "video"]
        # Nothing was written anywhere but where it was asked: no "kort1.png" read, no "klip1.mp4" made.
        assert sorted(p.name for p in folder.iterdir() if p.suffix in (".mov", ".mp4")) == [
            "indlaeg.mov", "klip%d.mp4", "kort.mov"
        ]  # fmt: skip
    finally:
        media.ffmpeg_choice.cache_clear()


def test_every_path_is_given_to_ffmpeg_behind_the_file_protocol(tmp_path: Path) -> None:
    """In every command the pipeline builds, each input and output is a ``file:`` path, and the card's
    picture is read by the image demuxer with no pattern."""
    from pipeline.config import Form
    from pipeline.models import AudioInfo, Consent, MediaProbe, Recording, Statement
    from pipeline.stages import render
    from pipeline.stages.cut import Cut, Part

    form = Form()
    audio = AudioInfo(0, "pcm_s16le", 48000, 48, "48 channels", 1000)
    heard = Statement("s01", Recording("-x.wav", 1, "sha"), MediaProbe("wav", 1000, None, (audio,)), 0, None,
                      None, None, Consent(), None)  # fmt: skip
    folder = tmp_path / "%d"
    png, out = folder / "card.png", folder / "out.mov"
    commands = [
        render.statement_args(folder / "-x.wav", heard, Cut("s01", 0, 1000, "whole"),
                              Part("statement", "s01", 0, 25, 25), form, media.Loudness(-20, -3, 5, -30, 0),
                              out, subtitles=None, fonts_dir=None, card_png=png),
        render.card_args(png, Part("card", None, 0, 25, 25), form, out),
        render.meter_args(folder / "-x.wav", 0, form, audio),
        render.preview_args(folder / "-x.wav", heard, out),
        render.join_args(folder / "l.txt", form, out, soft_subtitles=folder / "s.ass", language="da",
                         title="t"),
    ]  # fmt: skip
    for args in commands:
        inputs = [v for f, v in itertools.pairwise(args) if f == "-i" and not v.startswith("anullsrc")]
        assert inputs and all(i.startswith("file:/") for i in inputs), args
        assert args[-1].startswith("file:/") or args[-2:] == ["null", "-"], args
        if str(png) in " ".join(args):
            at = args.index(media.input_path(png))
            assert args[at - 5 : at - 1] == ["-f", "image2", "-pattern_type", "none"], args
    # 48 channels in no known order are mixed with equal weight, with nothing that needs escaping.
    graph = commands[2][commands[2].index("-filter_complex") + 1]
    assert "pan=stereo|c0<c0+c1+" in graph and "c47|c1<c0+" in graph


# ------------------------------------------------------------------------------ children end with us


def _children(pid: int) -> dict[int, str]:
    """The processes whose parent is ``pid``, with their command lines."""
    found: dict[int, str] = {}
    if Path("/proc").is_dir():
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_bytes().rsplit(b")", 1)[1].split()
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != b"Z":
                found[int(entry.name)] = command
        return found
    listing = subprocess.run(["ps", "-A", "-o", "pid=,ppid=,stat=,args="], capture_output=True, text=True)
    for line in listing.stdout.splitlines():
        child, parent, state, command = [*line.split(None, 3), ""][:4]
        if int(parent) == pid and not state.startswith("Z"):
            found[int(child)] = command
    return found


def _running(pid: int) -> bool:
    """Alive and not a zombie (one nobody has reaped yet has ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat")
    if state.exists():
        try:
            return state.read_bytes().rsplit(b")", 1)[1].split()[0] != b"Z"
        except (OSError, IndexError):
            return False
    listing = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True)
    return bool(listing.stdout.strip()) and not listing.stdout.strip().startswith("Z")


def _wait_for_ffmpeg(pipeline: subprocess.Popen[str], seconds: float) -> int:
    """The id of the first ffmpeg that works on an input, started by ``pipeline``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for pid, command in _children(pipeline.pid).items():
            program = command.split(" ", 1)[0]
            if "ffmpeg" in os.path.basename(program) and " -i " in command:
                return pid
        if pipeline.poll() is not None:
            _, err = pipeline.communicate()
            pytest.fail(f"the pipeline ended (exit {pipeline.returncode}) before it started ffmpeg:\n{err}")
        time.sleep(0.02)
    pytest.fail(f"no ffmpeg started within {seconds} s")


def _kill_and_watch(pipeline: subprocess.Popen[str], child: int) -> float:
    """Kill ``pipeline`` with SIGKILL; how long its ffmpeg ``child`` ran on (at most 15 s are waited)."""
    pipeline.send_signal(signal.SIGKILL)
    pipeline.wait(timeout=LIMIT)
    killed = time.monotonic()
    try:
        while _running(child) and time.monotonic() - killed < 15:
            time.sleep(0.05)
        return time.monotonic() - killed
    finally:
        if _running(child):
            os.kill(child, signal.SIGKILL)


RUN_FFMPEG = """
import sys
from pipeline import media
media.run_ffmpeg(["-nostdin", "-hide_banner", "-loglevel", "info", "-re", "-f", "lavfi", "-i",
                  "sine=d=60", "-af", "ebur128=framelog=info", "-f", "null", "-"], what="meter a minute",
                 stderr_lines=None)
"""


def test_an_ffmpeg_ends_with_the_pipeline_killed_by_sigkill() -> None:
    """ffmpeg ignores the broken pipes a killed pipeline leaves; the watchdog ends it within seconds (it
    would otherwise run its minute)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    pipeline = subprocess.Popen([sys.executable, "-c", RUN_FFMPEG], env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        child = _wait_for_ffmpeg(pipeline, LIMIT)
        time.sleep(0.5)  # well into its work
        assert _kill_and_watch(pipeline, child) < 10
    finally:
        if pipeline.poll() is None:
            pipeline.kill()
            pipeline.wait()


def test_an_error_in_the_pipeline_stops_its_ffmpeg_at_once() -> None:
    seen: list[int] = []

    def fails(fraction: float) -> None:
        seen.extend(pid for pid, command in _children(os.getpid()).items() if "ffmpeg" in command)
        raise RuntimeError("the caller gives up")

    with pytest.raises(RuntimeError, match="gives up"):
        media.run_ffmpeg(
            ["-nostdin", "-re", "-f", "lavfi", "-i", "sine=d=60", "-f", "null", "-"],
            what="play a minute",
            duration_ms=60_000,
            on_progress=fails,
        )
    assert seen and not any(_running(pid) for pid in seen)


NORMAL_EXIT = """
from pipeline import media
from pipeline.media import process
media.run_ffmpeg(["-nostdin", "-f", "lavfi", "-i", "sine=d=0.2", "-f", "null", "-"], what="play")
print(process._watchdog.process.pid)
"""


def test_a_pipeline_that_ends_normally_ends_its_watchdog_too() -> None:
    result = python(NORMAL_EXIT)
    assert result.returncode == 0, result.stderr
    watchdog = int(result.stdout.split()[-1])
    deadline = time.monotonic() + 10
    while _running(watchdog) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(watchdog)


@pytest.mark.slow
def test_a_killed_hearing_run_takes_its_ffmpeg_along(tmp_path: Path, real_media: Path) -> None:
    """`hearing run` killed with SIGKILL while ffmpeg meters a recording: that ffmpeg stops within
    seconds. ffmpeg here reads its inputs at their own pace (``-re``, added by a wrapper that then runs
    the real ffmpeg in its place), so that it is certainly still at work when the run is killed and would
    run on for half a minute."""
    meeting = tmp_path / "moede"
    meeting.mkdir()
    ffmpeg("-stream_loop", "2", "-i", real_media / "en-jfk.flac", "-ac", "1", meeting / "tale.flac")
    wrapper = tmp_path / "bin" / "ffmpeg"
    wrapper.parent.mkdir()
    wrapper.write_text(
        f"#!{sys.executable}\n"
        "import os, sys\n"
        f"real = {media.ffmpeg_exe()!r}\n"
        "args = []\n"
        "for arg in sys.argv[1:]:\n"
        "    args += ['-re', arg] if arg == '-i' else [arg]\n"
        "os.execv(real, [real, *args])\n",
        encoding="utf-8",
    )
    wrapper.chmod(0o755)
    form = tmp_path / "form.yaml"
    form.write_text(SMALL_FORM, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO), media.FFMPEG_ENV: str(wrapper)}
    command = [sys.executable, "-m", "pipeline", "run", meeting, "--out", tmp_path / "ud", "--form", form,
               "--language", "en"]  # fmt: skip
    pipeline = subprocess.Popen(list(map(str, command)), env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        child = _wait_for_ffmpeg(pipeline, LIMIT * 3)
        time.sleep(0.5)
        assert _kill_and_watch(pipeline, child) < 10
    finally:
        if pipeline.poll() is None:
            pipeline.kill()
            pipeline.wait()
