"""A corpus of odd and broken recordings, made at test time (nothing is downloaded).

Organisers collect statements from phones, tablets and cameras; this module makes small versions of
what arrives: odd but valid files that must be delivered, broken ones that must be rejected with one
reason, and file names that break naive quoting. Every valid case carries real speech (excerpts of the
JFK recording in tests/media, English), because synthetic speech or tones would be rejected as
"no speech found" and prove nothing.

Files are made with the same ffmpeg the product uses (``conftest.ffmpeg``: argument lists, no shell),
always under a plain scratch name and then renamed, so that a hostile target name never reaches
ffmpeg's own argument parsing here. Each case is small and quick: 1-4 s, 160x90 to 320x180 where the
case allows, ultrafast x264.
"""

from __future__ import annotations

import os
import random
import struct
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from conftest import MEDIA, ffmpeg

JFK = MEDIA / "en-jfk.flac"
X264 = ("-c:v", "libx264", "-preset", "ultrafast")
HEVC = ("-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=none", "-tag:v", "hvc1")
VP9 = ("-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "200k")
OPUS = ("-c:a", "libopus", "-ar", "48000")  # Opus has no 44.1 kHz
AAC = ("-c:a", "aac")
# A mid-grey picture with a white top-left quadrant: after turning and scaling, where the white lands
# shows which way up the picture is, and the grey tells the picture from the black bars beside it.
GREY = 128


@dataclass(frozen=True)
class Excerpt:
    """A stretch of the JFK recording and words the recogniser hears in it even when cut out alone
    (measured with the embedded Whisper base)."""

    start: float
    seconds: float
    words: tuple[str, ...]


# "And so my fellow Americans" | "ask not what your country can do for you" | "ask what you can do
# for your country": the word timings of the whole recording put the cuts in pauses.
FELLOW = Excerpt(0.0, 3.0, ("fellow", "americans"))
ASK_NOT = Excerpt(3.0, 4.5, ("country",))
ASK_WHAT = Excerpt(7.5, 3.5, ("country",))
# One second holding two whole words ("your country"); 1.0-2.0 s is heard as "I fell in America".
ONE_SECOND = Excerpt(5.5, 1.0, ("country",))
WHOLE = Excerpt(0.0, 11.0, ("fellow", "country"))
# Damage in the middle may take a word or two: any of these survives it.
DAMAGED_SPEECH = Excerpt(3.0, 4.5, ("ask", "not", "what", "country", "you"))


@dataclass(frozen=True)
class Case:
    """One recording of the corpus: its file name in the meeting folder and how to make it."""

    name: str
    make: Callable[[Path], None]  # writes the file at the path it is given
    speech: Excerpt | None = None  # what is said in it (None: nothing usable)

    def make_in(self, folder: Path) -> Path:
        target = folder / self.name
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = _scratch_beside(target, target.suffix)
        self.make(scratch)
        os.replace(scratch, target)
        return target


# ------------------------------------------------------------------------------------------ helpers


def _speech_input(excerpt: Excerpt) -> list[str]:
    return ["-ss", f"{excerpt.start:.3f}", "-t", f"{excerpt.seconds:.3f}", "-i", str(JFK)]


def _scratch_beside(target: Path, suffix: str) -> Path:
    return target.parent / f"scratch-{uuid.uuid4().hex}{suffix}"


def quadrant_picture(width: int, height: int, rate: str = "25") -> str:
    """The lavfi source of the grey picture with its white top-left quadrant."""
    return (
        f"color=c=0x808080:size={width}x{height}:rate={rate},"
        f"drawbox=x=0:y=0:w={width // 2}:h={height // 2}:color=white:t=fill"
    )


def video(
    target: Path,
    excerpt: Excerpt,
    *,
    picture: str = "testsrc2=size=320x180:rate=25",
    seconds: float | None = None,
    vfilter: str | None = None,
    vcodec: tuple[str, ...] = X264,
    pix_fmt: str = "yuv420p",
    acodec: tuple[str, ...] = AAC,
) -> None:
    """A picture from lavfi with an excerpt of the speech as its sound; ``seconds`` sets the picture's
    length when it differs from the sound's."""
    ffmpeg(
        "-f", "lavfi", "-t", f"{seconds or excerpt.seconds:.3f}", "-i", picture,
        *_speech_input(excerpt),
        "-map", "0:v", "-map", "1:a",
        *(("-vf", vfilter) if vfilter else ()),
        *vcodec, "-pix_fmt", pix_fmt, *acodec,
        target,
    )  # fmt: skip


def sound(target: Path, excerpt: Excerpt, *args: str) -> None:
    """An audio-only file of an excerpt; ``args`` are the output options (codec, rate, channels)."""
    ffmpeg(*_speech_input(excerpt), "-map", "0:a", *args, target)


def rotated(target: Path, make_coded: Callable[[Path], None], degrees: int) -> None:
    """A file whose stored picture a player turns ``degrees`` counter-clockwise for display, as phones
    write it. ffmpeg sets the display matrix when copying, not when encoding: ffmpeg 6 and later with
    ``-display_rotation``, 5.1 only with the ``rotate`` tag (PITFALLS.md)."""
    coded = _scratch_beside(target, target.suffix)
    make_coded(coded)
    try:
        try:
            ffmpeg("-display_rotation:v:0", str(degrees), "-i", coded, "-c", "copy", target)
        except subprocess.CalledProcessError:
            ffmpeg("-i", coded, "-c", "copy", "-metadata:s:v:0", f"rotate={degrees}", target)
    finally:
        coded.unlink(missing_ok=True)


# The stored picture that shows as the quadrant picture once turned counter-clockwise by the angle.
_STORED_FOR_DISPLAY = {0: None, 90: "transpose=clock", 180: "hflip,vflip", 270: "transpose=cclock"}


def portrait(target: Path, excerpt: Excerpt, *, width: int, height: int, degrees: int) -> None:
    """A portrait recording (``width`` x ``height`` as displayed) stored turned, with rotation metadata."""

    def coded(path: Path) -> None:
        turn = _STORED_FOR_DISPLAY[degrees]
        picture = quadrant_picture(width, height) + (f",{turn}" if turn else "")
        video(path, excerpt, picture=picture)

    rotated(target, coded, degrees)


def variable_frame_rate(target: Path, excerpt: Excerpt) -> None:
    """A phone-like VFR file: 30 fps for a second, then frames dropped unevenly (timestamps kept)."""
    ffmpeg(
        "-f", "lavfi", "-t", f"{excerpt.seconds:.3f}", "-i", "testsrc2=size=320x180:rate=30",
        *_speech_input(excerpt),
        "-map", "0:v", "-map", "1:a",
        "-vf", "select='lt(n,30)+eq(mod(n,3),0)+eq(mod(n,7),1)'", "-fps_mode", "vfr",
        *X264, "-pix_fmt", "yuv420p", *AAC,
        target,
    )  # fmt: skip


def two_audio_streams(target: Path, excerpt: Excerpt) -> None:
    """A camera file with a silent first audio track (an unplugged microphone) and the speech second:
    stream 0 video, 1 silence, 2 speech."""
    ffmpeg(
        "-f", "lavfi", "-t", f"{excerpt.seconds:.3f}", "-i", "testsrc2=size=320x180:rate=25",
        "-f", "lavfi", "-t", f"{excerpt.seconds:.3f}", "-i", "anullsrc=r=48000:cl=stereo",
        *_speech_input(excerpt),
        "-map", "0:v", "-map", "1:a", "-map", "2:a",
        *X264, "-pix_fmt", "yuv420p", *AAC,
        target,
    )  # fmt: skip


def integrated_loudness(path: Path, *, start: float | None = None, seconds: float | None = None) -> float:
    """EBU R 128 integrated loudness (LUFS) of a file or a stretch of it, measured as `hearing check` does."""
    from pipeline.media import measure_r128

    return measure_r128(
        path,
        start_ms=None if start is None else round(start * 1000),
        duration_ms=round(seconds * 1000) if seconds else None,
    ).integrated


def quiet(target: Path, excerpt: Excerpt, lufs: float = -45.0) -> None:
    """A recording made far from the speaker: the excerpt turned down to ``lufs``."""
    plain = _scratch_beside(target, ".wav")
    try:
        sound(plain, excerpt, "-c:a", "pcm_s16le")
        gain = lufs - integrated_loudness(plain)
        ffmpeg("-i", plain, "-af", f"volume={gain:.2f}dB", *AAC, target)
    finally:
        plain.unlink(missing_ok=True)


def clipping(target: Path, excerpt: Excerpt) -> None:
    """A microphone far too close: 24 dB too loud, flattened at full scale in 16-bit PCM."""
    sound(target, excerpt, "-af", "volume=24dB", "-c:a", "pcm_s16le")


def long_pause(target: Path, pause_s: float = 30.0) -> None:
    """A speaker who stops for longer than Whisper's 30 s window and then goes on."""
    graph = (
        f"[0:a]atrim=0:{FELLOW.seconds},asetpts=N/SR/TB,apad=pad_dur={pause_s}[first];"
        f"[0:a]atrim=start={ASK_WHAT.start},asetpts=N/SR/TB[second];"
        "[first][second]concat=n=2:v=0:a=1[out]"
    )
    ffmpeg("-i", JFK, "-filter_complex", graph, "-map", "[out]", *AAC, target)


def room_tone(target: Path, seconds: float = 5.0) -> None:
    """Somebody pressed record and said nothing: a picture and the hiss of the room."""
    ffmpeg(
        "-f", "lavfi", "-t", f"{seconds}", "-i", "testsrc2=size=160x90:rate=25",
        "-f", "lavfi", "-t", f"{seconds}", "-i", "anoisesrc=color=pink:amplitude=0.003:seed=6",
        "-map", "0:v", "-map", "1:a", *X264, "-pix_fmt", "yuv420p", *AAC,
        target,
    )  # fmt: skip


def music(target: Path, seconds: float = 8.0) -> None:
    """A chord that changes every half second (no voice): what a recording of the break sounds like.
    The expression is quoted because its commas would otherwise end the filter."""
    expression = "+".join(
        f"0.15*sin(2*PI*{base}*(1+0.25*mod(floor(2*t),4))*t)" for base in (220.0, 277.18, 329.63)
    )
    ffmpeg("-f", "lavfi", "-t", f"{seconds}", "-i", f"aevalsrc='{expression}':s=44100", *AAC, target)


def hours_of_silence(target: Path, hours: float = 2.0) -> None:
    """A phone left recording in a pocket: digital silence, 8 kHz mono AAC, small on disk."""
    ffmpeg(
        "-f", "lavfi", "-t", f"{hours * 3600:.0f}", "-i", "anullsrc=r=8000:cl=mono",
        "-c:a", "aac", "-b:a", "8k",
        target,
    )  # fmt: skip


def truncated_without_index(target: Path) -> None:
    """A copy that stopped half-way: ffmpeg writes the index (moov) last, so it is lost."""
    whole = _scratch_beside(target, ".mp4")
    try:
        video(whole, WHOLE, picture="testsrc2=size=160x90:rate=25")
        data = whole.read_bytes()
        target.write_bytes(data[: len(data) // 2])
    finally:
        whole.unlink(missing_ok=True)


def video_only(target: Path) -> None:
    ffmpeg(
        "-f", "lavfi", "-t", "3", "-i", "testsrc2=size=160x90:rate=25", *X264, "-pix_fmt", "yuv420p", target
    )


def top_level_boxes(data: bytes) -> list[tuple[str, int, int]]:
    """(type, offset, size) of the top-level boxes of an MP4/M4A."""
    boxes = []
    offset = 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
        elif size == 0:
            size = len(data) - offset
        if size < 8:
            break
        boxes.append((kind.decode("latin-1"), offset, size))
        offset += size
    return boxes


def damaged_audio(target: Path, garbage: int = 4096) -> None:
    """Speech whose middle packets were overwritten (a bad card sector): the index is intact, so the
    file opens and its first and last seconds decode."""
    whole = _scratch_beside(target, target.suffix)
    try:
        sound(whole, DAMAGED_SPEECH, *AAC)
        data = bytearray(whole.read_bytes())
    finally:
        whole.unlink(missing_ok=True)
    (mdat,) = [(offset, size) for kind, offset, size in top_level_boxes(bytes(data)) if kind == "mdat"]
    middle = mdat[0] + mdat[1] // 2
    data[middle : middle + garbage] = random.Random(6).randbytes(garbage)
    target.write_bytes(bytes(data))


def write_bytes(content: bytes) -> Callable[[Path], None]:
    return lambda target: target.write_bytes(content)


# -------------------------------------------------------------------------------------------- cases


def speech_video(excerpt: Excerpt, **options: object) -> Callable[[Path], None]:
    return lambda target: video(target, excerpt, **options)  # type: ignore[arg-type]


def speech_sound(excerpt: Excerpt, *args: str) -> Callable[[Path], None]:
    return lambda target: sound(target, excerpt, *args)


# Displayed sizes of the portrait and shaped cases, for checking where the picture lands in the clip.
DISPLAY_SIZE = {
    "portraet-1080x1920-rot90.mp4": (1080, 1920),
    "portraet-rot180.mp4": (180, 320),
    "portraet-rot270.mp4": (180, 320),
    "fire-tredjedele.mp4": (320, 240),
    "sar-2-3.mp4": (213, 180),  # 320x180 stored, pixels 2:3 wide
}

ODD_VIDEOS = (
    Case(
        "portraet-1080x1920-rot90.mp4",
        lambda t: portrait(t, FELLOW, width=1080, height=1920, degrees=90),
        FELLOW,
    ),
    Case("portraet-rot180.mp4", lambda t: portrait(t, ASK_NOT, width=180, height=320, degrees=180), ASK_NOT),
    Case(
        "portraet-rot270.mp4", lambda t: portrait(t, ASK_WHAT, width=180, height=320, degrees=270), ASK_WHAT
    ),
    # H.264 cannot store odd sizes in 4:2:0; old cameras wrote MPEG-4 Part 2, which can.
    Case(
        "skaev-853x479.mp4",
        speech_video(FELLOW, picture="testsrc=size=853x479:rate=25", vcodec=("-c:v", "mpeg4", "-q:v", "8")),
        FELLOW,
    ),
    Case("fire-tredjedele.mp4", speech_video(ASK_NOT, picture=quadrant_picture(320, 240)), ASK_NOT),
    Case(
        "sar-2-3.mp4",
        speech_video(ASK_WHAT, picture=quadrant_picture(320, 180), vfilter="setsar=2/3"),
        ASK_WHAT,
    ),
    Case("ti-bit.mp4", speech_video(FELLOW, pix_fmt="yuv420p10le"), FELLOW),
    Case("yuv422.mp4", speech_video(ASK_NOT, pix_fmt="yuv422p"), ASK_NOT),
    Case(
        "hevc.mov",
        speech_video(ASK_WHAT, vcodec=HEVC),
        ASK_WHAT,
    ),
    Case(
        "vp9-opus.webm",
        speech_video(FELLOW, vcodec=VP9, acodec=OPUS),
        FELLOW,
    ),
    Case("ntsc-29.97.mp4", speech_video(ASK_NOT, picture="testsrc2=size=320x180:rate=30000/1001"), ASK_NOT),
    Case("60fps.mp4", speech_video(ASK_WHAT, picture="testsrc2=size=320x180:rate=60"), ASK_WHAT),
    Case("vfr.mp4", lambda t: variable_frame_rate(t, FELLOW), FELLOW),
    # The picture runs on 2 s after the sound has stopped.
    Case("billede-laengst.mp4", speech_video(ASK_WHAT, seconds=ASK_WHAT.seconds + 2), ASK_WHAT),
    # The picture stops after 1.5 s and the speaker goes on.
    Case("lyd-laengst.mp4", speech_video(ASK_NOT, seconds=1.5), ASK_NOT),
    Case("to-lydspor.mp4", lambda t: two_audio_streams(t, ASK_NOT), ASK_NOT),
    Case("et-sekund.mp4", speech_video(ONE_SECOND, picture="testsrc2=size=160x90:rate=25"), ONE_SECOND),
)

# The audio stream carrying the speech in to-lydspor.mp4 (0 is the picture, 1 the silent track).
SPEECH_STREAM = {"to-lydspor.mp4": 2}
# The recording whose picture ends long before its sound.
LONGER_SOUND = "lyd-laengst.mp4"

ODD_AUDIO = (
    Case("lyd.m4a", speech_sound(ASK_NOT, *AAC), ASK_NOT),
    Case("lyd.mp3", speech_sound(FELLOW, "-c:a", "libmp3lame", "-b:a", "64k"), FELLOW),
    Case("lyd.wav", speech_sound(ASK_WHAT, "-c:a", "pcm_s16le"), ASK_WHAT),
    Case("mono.m4a", speech_sound(FELLOW, "-ac", "1", *AAC), FELLOW),
    # Cameras put the voice in the centre channel; the others carry nothing here.
    Case("surround-5.1.m4a", speech_sound(ASK_NOT, "-af", "pan=5.1|FC=0.5*c0+0.5*c1", *AAC), ASK_NOT),
    Case(
        "telefon-8khz.wav", speech_sound(ASK_WHAT, "-ar", "8000", "-ac", "1", "-c:a", "pcm_s16le"), ASK_WHAT
    ),
    Case("meget-stille.m4a", lambda t: quiet(t, FELLOW), FELLOW),
    Case("overstyret.wav", lambda t: clipping(t, ASK_NOT), ASK_NOT),
    Case("lang-pause.m4a", long_pause, Excerpt(0.0, FELLOW.seconds + 30 + 3.5, ("fellow", "country"))),
)
LONG_PAUSE = ("lang-pause.m4a", FELLOW.seconds, 30.0)  # file, where the pause starts, how long (s)

HOSTILE_NAMES = (
    Case('Søren\'s "indlæg" [2], 50%: ærø.mp4', speech_video(FELLOW), FELLOW),
    # A leading dash reads as an option; "%d" as an image-sequence pattern; ":" as a protocol.
    Case("-start.mp4", speech_video(ASK_NOT, picture="testsrc2=size=160x90:rate=25"), ASK_NOT),
    Case("back\\slash.mov", speech_video(ASK_WHAT, picture="testsrc=size=160x90:rate=25"), ASK_WHAT),
    Case("semi;colon.mp4", speech_video(ONE_SECOND, picture="testsrc2=size=192x108:rate=25"), ONE_SECOND),
    Case("mellemrum og, komma (1).m4a", speech_sound(ASK_NOT, *AAC), ASK_NOT),
    Case("procent %d %s 100%%.wav", speech_sound(FELLOW, "-c:a", "pcm_s16le"), FELLOW),
    Case(
        "Ærlig talt – ÆØÅ æøå.webm",
        speech_video(ASK_WHAT, vcodec=VP9, acodec=OPUS),
        ASK_WHAT,
    ),
    # In a sub-folder, with what a shell would expand or split on.
    Case(
        "mappe [a]; b's:c/$(id) `id` & *.mp4",
        speech_video(ASK_NOT, picture="testsrc=size=192x108:rate=25"),
        ASK_NOT,
    ),
)
# Folder names with the same characters: the clip's work files (and the burned-in subtitles' path in
# ffmpeg's filter graph) live under the output folder, the meeting's name goes on the title card.
HOSTILE_MEETING_NAME = 'Borgermøde "Nordby" [1]; 50%: Søren\'s'
HOSTILE_OUT_NAME = 'ud "data" [1], 50%: Søren\'s; back\\slash'

GOOD_FOR_REJECTIONS = (
    Case("01-god.mp4", speech_video(FELLOW, picture="testsrc2=size=160x90:rate=25"), FELLOW),
    Case("02-god.m4a", speech_sound(ASK_WHAT, *AAC), ASK_WHAT),
)
REJECTED = (
    Case("tom.mp4", write_bytes(b"")),
    Case("tekst.mp4", write_bytes("Husk at købe kaffe til mødet.\n".encode())),
    Case("uden-indeks.mp4", truncated_without_index),
    Case("kun-billede.mp4", video_only),
    Case("for-lang.mp4", speech_video(WHOLE, picture="testsrc2=size=160x90:rate=25")),
    Case("stilhed.mp4", room_tone),
    Case("musik.m4a", music),
)
DAMAGED = Case("beskadiget-lyd.m4a", damaged_audio, DAMAGED_SPEECH)
# A link inside the meeting folder to a recording outside it: must not be followed.
LINK_OUT = "link-ud.mp4"
