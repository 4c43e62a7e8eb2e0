"""Generate the demo meeting folder ``samples/borgermoede-nordby/``.

What it makes
    ``samples/borgermoede-nordby/meeting.yaml`` and five short phone-like recordings in
    ``samples/borgermoede-nordby/recordings/`` of a made-up citizen meeting ("Borgermøde om
    trafiksikkerhed i Nordby"), plus ``samples/README.md`` describing them. The speech is Danish,
    synthesised with espeak-ng; the picture is a plain colour per speaker with the speaker's first name,
    "Borgermøde Nordby" and a running timestamp drawn on it. Each recording tests one thing the pipeline
    must handle (see the README it writes): a landscape MP4 with a manual trim, a portrait MOV stored
    with a display-rotation flag, an MP4 with long silence at both ends, an audio-only M4A and an MP4
    without committee consent (also variable frame rate). Everything generated is CC0.

What it needs
    - ``espeak-ng`` with its Danish voice (Debian: ``apt-get install espeak-ng``);
    - a TTF font: DejaVu Sans (Debian: ``apt-get install fonts-dejavu-core``), or any .ttf given in the
      environment variable ``SAMPLES_FONT``;
    - ffmpeg 6 or newer with drawtext, libx264 and aac (it must know ``-display_rotation``): the one in
      ``FFMPEG`` if set, else ``ffmpeg`` on PATH, else the one bundled in the ``imageio-ffmpeg`` wheel.
    Only the Python standard library is needed otherwise.

How to run it (from the repository root)
    python samples/make_samples.py

It replaces the whole ``samples/borgermoede-nordby/`` folder and ``samples/README.md``. Intermediate
files live in a temporary directory. The output is reproducible for a given espeak-ng and ffmpeg
version (bit-exact muxing, fixed metadata, single-threaded x264).
"""

from __future__ import annotations

import array
import os
import re
import shutil
import subprocess
import sys
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
MEETING_NAME = "borgermoede-nordby"
OUT_DIR = HERE / MEETING_NAME
README = HERE / "README.md"

MEETING = {
    "title": "Borgermøde om trafiksikkerhed i Nordby",
    "date": "2026-11-20",
    "place": "Nordby Forsamlingshus",
    "organiser": "Nordby Lokalråd",
    "committee": "Teknik- og Miljøudvalget",
    "committee_meeting": "2026-12-03",
    "language": "da",
}

ESPEAK_SPEED = 150  # words per minute
MIN_SPEECH_S = 10.0
MAX_SPEECH_S = 40.0


@dataclass(frozen=True)
class Statement:
    """One recording: who says what, and how the phone stored it."""

    file: str  # relative to the meeting folder
    speaker: str
    group: str
    topic: str
    consent: dict[str, bool]
    voice: str  # espeak-ng voice+variant
    text: str  # the statement itself (Danish)
    colour: str  # background colour of the picture
    kind: str  # landscape | portrait | audio
    fps: int
    sample_rate: int
    channels: int
    creation_time: str  # as a phone would stamp it (UTC)
    tests: str  # what this recording tests, for the README
    lead_s: float = 0.5  # silence before the speech
    tail_s: float = 0.7  # silence after the speech
    preamble: str = ""  # something said before the statement proper (cut away by a manual trim)
    vfr: bool = False  # drop frames irregularly, as phones do
    audio_bitrate: str = "64k"


STATEMENTS: list[Statement] = [
    Statement(
        file="recordings/01-anna.mp4",
        speaker="Anna Jensen",
        group="Bordgruppe 3",
        topic="Trafik på Skolevej",
        consent={"committee": True, "archive": True, "name_on_screen": True, "publish": False},
        voice="da+f2",
        preamble="Er den i gang nu? Okay.",
        text=(
            "Kære politikere i Teknik- og Miljøudvalget. Jeg hedder Anna, og jeg har to børn, der går på "
            "Nordby Skole. Hver morgen kører bilerne alt for stærkt på Skolevej, lige når børnene skal over "
            "vejen. Vi ønsker os et hævet fodgængerfelt og en skolepatrulje ved hovedindgangen. "
            "Tak fordi I lytter."
        ),
        colour="0x2E6F9E",
        kind="landscape",
        fps=25,
        sample_rate=48000,
        channels=2,
        creation_time="2026-11-20T20:04:12Z",
        tests=(
            "the ordinary case: landscape 16:9 H.264/AAC MP4, 25 fps, 48 kHz stereo. It starts with an "
            'aside ("Er den i gang nu? Okay.") that the manual `trim` in meeting.yaml cuts away.'
        ),
    ),
    Statement(
        file="recordings/02-soeren.mov",
        speaker="Søren Ærø Østergård",
        group="Bordgruppe 1",
        topic="Cykelsti langs Åvej",
        consent={"committee": True, "archive": True, "name_on_screen": True, "publish": True},
        voice="da+m3",
        text=(
            "Hej. Jeg cykler hver dag ad Åvej til mit arbejde inde i byen. Vejen er smal, og lastbilerne "
            "kører helt tæt forbi os cyklister. En rigtig cykelsti langs Åvej vil gøre det trygt for både "
            "børn og voksne at cykle. Jeg håber, at I vil sætte penge af til den i næste års budget."
        ),
        colour="0x3A7D44",
        kind="portrait",
        fps=30,
        sample_rate=44100,
        channels=2,
        creation_time="2026-11-20T20:07:41Z",
        tests=(
            "a portrait phone video: QuickTime MOV, 30 fps, 44.1 kHz stereo, pixels stored as 640x360 "
            "landscape with a display-rotation flag (-90, i.e. turn 90° clockwise) so that players show "
            "it upright as 360x640. Also Danish letters æ ø å in the speaker's name and the topic."
        ),
    ),
    Statement(
        file="recordings/03-karen.mp4",
        speaker="Karen Mølgaard",
        group="Bordgruppe 2",
        topic="Gadebelysning på stien til stationen",
        consent={"committee": True, "archive": True, "name_on_screen": False, "publish": False},
        voice="da+f4",
        text=(
            "Godaften. Om vinteren er det helt mørkt på stien mellem stationen og Møllebakken. Mange ældre "
            "tør ikke gå der, når det er blevet mørkt. Vi beder om bedre gadebelysning, og om at hækkene "
            "bliver klippet, så man kan se, hvem der kommer."
        ),
        colour="0x8E3B46",
        kind="landscape",
        fps=25,
        sample_rate=48000,
        channels=1,
        creation_time="2026-11-20T20:10:05Z",
        lead_s=3.5,
        tail_s=4.0,
        tests=(
            "silence trimming: 3.5 s of pure digital silence before and 4 s after the speech "
            "(landscape MP4, 25 fps, 48 kHz mono). No name on screen (consent.name_on_screen false)."
        ),
    ),
    Statement(
        file="recordings/04-mads.m4a",
        speaker="Mads Bøgh Nielsen",
        group="Seniorrådets netværk",
        topic="Fartdæmpning på Hovedgaden",
        consent={"committee": True, "archive": False, "name_on_screen": True, "publish": False},
        voice="da+m1",
        text=(
            "Det her er kun en lydoptagelse, for jeg ville ikke filmes. Hovedgaden gennem Nordby er blevet "
            "en racerbane. Vi foreslår bump eller chikaner og fyrre kilometer i timen fra kirken til "
            "købmanden. Og så vil vi gerne have en fartmåler, der viser bilisterne, hvor hurtigt de kører."
        ),
        colour="",
        kind="audio",
        fps=0,
        sample_rate=44100,
        channels=1,
        creation_time="2026-11-20T20:13:30Z",
        tests=(
            "an audio-only recording (AAC in M4A, 44.1 kHz mono, no video stream): the clip needs a "
            "picture for it. Also consent.archive false: it must not be archived, and that is reported."
        ),
    ),
    Statement(
        file="recordings/05-lise.mp4",
        speaker="Lise Kjær",
        group="Bordgruppe 4",
        topic="Krydset ved Brugsen",
        consent={"committee": False, "archive": True, "name_on_screen": False, "publish": False},
        voice="da+f3",
        text=(
            "Jeg vil gerne sige noget om krydset ved Brugsen. Der er meget dårlige oversigtsforhold, og der "
            "har været flere uheld i løbet af det sidste år. Et lysreguleret kryds eller en rundkørsel "
            "ville hjælpe rigtig meget."
        ),
        colour="0x7A5C99",
        kind="landscape",
        fps=30,
        sample_rate=48000,
        channels=2,
        creation_time="2026-11-20T20:16:52Z",
        vfr=True,
        tests=(
            "no committee consent (consent.committee false): it must never reach the clip or the "
            "transcript, and is reported. Still archived. Landscape MP4 with variable frame rate "
            "(30 fps with irregularly dropped frames, about 23 fps on average)."
        ),
    ),
]

FONT_CANDIDATES = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/local/share/fonts/DejaVuSans.ttf",
    "/Library/Fonts/DejaVuSans.ttf",
]


class SampleError(Exception):
    """A missing tool or a failed step; its message is one line for the user."""


# ---------------------------------------------------------------------------------------------- tools


def run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    """Run a command (argument list, never a shell); raise with its stderr tail on failure."""
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-5:])
        raise SampleError(f"{Path(cmd[0]).name} failed (exit {proc.returncode}): {tail}")
    return proc


def _ffmpeg_ok(exe: str) -> bool:
    """True if this ffmpeg has drawtext, libx264, aac and -display_rotation."""
    try:
        filters = run([exe, "-hide_banner", "-filters"]).stdout
        encoders = run([exe, "-hide_banner", "-encoders"]).stdout
        options = run([exe, "-hide_banner", "-h", "full"]).stdout
    except (OSError, SampleError):
        return False
    return (
        re.search(r"\bdrawtext\b", filters) is not None
        and re.search(r"\blibx264\b", encoders) is not None
        and re.search(r"\baac\b", encoders) is not None
        and "-display_rotation" in options
    )


def find_ffmpeg() -> str:
    candidates: list[str] = []
    if os.environ.get("FFMPEG"):
        candidates.append(os.environ["FFMPEG"])
    on_path = shutil.which("ffmpeg")
    if on_path:
        candidates.append(on_path)
    try:
        import imageio_ffmpeg  # type: ignore[import-untyped]

        candidates.append(imageio_ffmpeg.get_ffmpeg_exe())
    except Exception:  # not installed, or its binary is missing
        pass
    for exe in candidates:
        if _ffmpeg_ok(exe):
            return exe
    raise SampleError(
        "no usable ffmpeg (need 6+ with drawtext, libx264, aac): set FFMPEG, or `pip install imageio-ffmpeg`"
        + (f" (tried: {', '.join(candidates)})" if candidates else "")
    )


def find_espeak() -> str:
    exe = shutil.which("espeak-ng")
    if not exe:
        raise SampleError("espeak-ng not found: install it (Debian: apt-get install espeak-ng)")
    return exe


def find_font() -> str:
    env = os.environ.get("SAMPLES_FONT")
    if env:
        if Path(env).is_file():
            return env
        raise SampleError(f"SAMPLES_FONT={env} is not a file")
    for cand in FONT_CANDIDATES:
        if Path(cand).is_file():
            return cand
    fc_match = shutil.which("fc-match")
    if fc_match:
        proc = subprocess.run(
            [fc_match, "-f", "%{file}", "DejaVu Sans:style=Book"], capture_output=True, text=True, check=False
        )
        path = proc.stdout.strip()
        if proc.returncode == 0 and path.lower().endswith(".ttf") and "dejavusans" in path.lower():
            return path
    raise SampleError(
        "font DejaVuSans.ttf not found: apt-get install fonts-dejavu-core,"
        " or set SAMPLES_FONT=/path/to/font.ttf"
    )


# ------------------------------------------------------------------------------------------- escaping


def filter_value(value: str) -> str:
    """Escape a filter option value for use inside a filtergraph string (both levels of escaping).

    Level 1 (option value): backslash-escape ``\\ ' :``. Level 2 (filtergraph): backslash-escape
    ``\\ ' [ ] , ;``. See "Notes on filtergraph escaping" in the ffmpeg-filters manual.
    """
    level1 = re.sub(r"([\\':])", r"\\\1", value)
    return re.sub(r"([\\'\[\],;])", r"\\\1", level1)


def yaml_str(value: str) -> str:
    """A YAML scalar: plain when unambiguous, otherwise double-quoted."""
    if re.fullmatch(r"[A-Za-zÆØÅæøåÉé0-9][\w .,/()-]*", value) and not value.endswith(" "):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


# ---------------------------------------------------------------------------------------------- audio


def read_wav(path: Path) -> tuple[array.array[int], int]:
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise SampleError(f"unexpected espeak-ng output format in {path.name}")
        rate = w.getframerate()
        samples = array.array("h", w.readframes(w.getnframes()))
    if sys.byteorder == "big":
        samples.byteswap()
    return samples, rate


def trim_silence(samples: array.array[int], threshold: int = 64) -> array.array[int]:
    """Cut espeak-ng's own leading/trailing near-silence so that our padding is exact."""
    start = 0
    while start < len(samples) and abs(samples[start]) <= threshold:
        start += 1
    end = len(samples)
    while end > start and abs(samples[end - 1]) <= threshold:
        end -= 1
    return samples[start:end]


def speak(espeak: str, voice: str, text: str, out: Path) -> tuple[array.array[int], int]:
    run([espeak, "-v", voice, "-s", str(ESPEAK_SPEED), "-w", str(out), text])
    samples, rate = read_wav(out)
    return trim_silence(samples), rate


def write_wav(path: Path, samples: array.array[int], rate: int) -> None:
    data = array.array("h", samples)
    if sys.byteorder == "big":
        data.byteswap()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(data.tobytes())


@dataclass(frozen=True)
class Voiced:
    wav: Path
    total_s: float  # length of the whole recording
    speech_start_s: float  # where the statement proper starts
    speech_end_s: float  # where it ends
    preamble_end_s: float  # end of the aside before it (0 if none)


def build_audio(espeak: str, st: Statement, tmp: Path, stem: str) -> Voiced:
    speech, rate = speak(espeak, st.voice, st.text, tmp / f"{stem}-speech.wav")

    def zeros(seconds: float) -> array.array[int]:
        return array.array("h", bytes(2 * round(seconds * rate)))

    parts = [zeros(st.lead_s)]
    preamble_end = 0.0
    if st.preamble:
        pre, pre_rate = speak(espeak, st.voice, st.preamble, tmp / f"{stem}-preamble.wav")
        if pre_rate != rate:
            raise SampleError("espeak-ng gave two sample rates")
        parts += [pre]
        preamble_end = (len(parts[0]) + len(pre)) / rate
        parts += [zeros(1.4)]
    speech_start = sum(len(p) for p in parts) / rate
    parts += [speech, zeros(st.tail_s)]
    total = array.array("h")
    for p in parts:
        total.extend(p)
    speech_s = len(speech) / rate
    if not MIN_SPEECH_S <= speech_s <= MAX_SPEECH_S:
        raise SampleError(f"{st.file}: speech is {speech_s:.1f} s, outside {MIN_SPEECH_S}-{MAX_SPEECH_S} s")
    wav = tmp / f"{stem}.wav"
    write_wav(wav, total, rate)
    return Voiced(wav, len(total) / rate, speech_start, speech_start + speech_s, preamble_end)


# ---------------------------------------------------------------------------------------------- video


def drawtext_chain(font: str, name: str, width: int, height: int) -> str:
    """Speaker's first name, the meeting, and a running timestamp (so that frames differ)."""
    f = filter_value(font)
    big, mid, small = round(height * 0.13), round(height * 0.065), round(height * 0.05)
    if width < height:  # portrait: the same text, sized to the narrow width
        big, mid, small = round(width * 0.16), round(width * 0.075), round(width * 0.06)
    parts = [
        f"drawtext=fontfile={f}:expansion=none:text={filter_value(name)}:fontsize={big}:fontcolor=white"
        f":x=(w-text_w)/2:y=h*0.30",
        f"drawtext=fontfile={f}:expansion=none:text={filter_value('Borgermøde Nordby')}:fontsize={mid}"
        f":fontcolor=white@0.9:x=(w-text_w)/2:y=h*0.50",
        f"drawtext=fontfile={f}:expansion=normal:text={filter_value('%{pts:hms}')}:fontsize={small}"
        f":fontcolor=white@0.8:box=1:boxcolor=black@0.35:boxborderw=6:x=(w-text_w)/2:y=h*0.82",
    ]
    return ",".join(parts)


def common_output_args(st: Statement) -> list[str]:
    """Bit-exact, fixed metadata, single-threaded encoders: reproducible output."""
    return [
        "-map_metadata", "-1",
        "-fflags", "+bitexact",
        "-flags:v", "+bitexact",
        "-flags:a", "+bitexact",
        "-metadata", f"creation_time={st.creation_time}",
        "-threads", "1",
    ]  # fmt: skip


def audio_args(st: Statement) -> list[str]:
    return [
        "-c:a", "aac", "-b:a", st.audio_bitrate,
        "-ar", str(st.sample_rate), "-ac", str(st.channels),
    ]  # fmt: skip


def make_video(ffmpeg: str, font: str, st: Statement, voiced: Voiced, out: Path, tmp: Path) -> None:
    portrait = st.kind == "portrait"
    width, height = (360, 640) if portrait else (640, 360)
    first_name = st.speaker.split()[0]
    vf = drawtext_chain(font, first_name, width, height)
    if st.vfr:
        # Drop frames at an irregular pattern and keep the timestamps: variable frame rate.
        vf += "," + "select=" + filter_value("not(eq(mod(n,7),3))*not(eq(mod(n,11),5))")
    if portrait:
        # A phone stores the sensor's landscape pixels: the upright picture turned 90° anticlockwise.
        vf += ",transpose=cclock"
    duration = f"{voiced.total_s:.3f}"
    source = f"color=c={st.colour}:s={width}x{height}:r={st.fps}:d={duration}"
    cmd = [
        ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", source,
        "-i", str(voiced.wav),
        "-map", "0:v:0", "-map", "1:a:0",
        "-vf", vf,
        "-c:v", "libx264", "-preset", "medium", "-crf", "32", "-profile:v", "high",
        "-pix_fmt", "yuv420p", "-g", str(2 * st.fps),
        *(["-fps_mode", "vfr"] if st.vfr else []),
        *audio_args(st),
        "-t", duration,
        *common_output_args(st),
    ]  # fmt: skip
    if not portrait:
        run([*cmd, str(out)])
        return
    # Encode the transposed pixels first, then remux with the display matrix: the flag is honoured
    # only with -c copy. -90 = "turn 90° clockwise to show it", which undoes the anticlockwise turn above.
    stored = tmp / f"{out.stem}-stored.mov"
    run([*cmd, "-f", "mov", str(stored)])
    run([
        ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
        "-display_rotation:v:0", "-90",
        "-i", str(stored),
        "-map", "0", "-c", "copy",
        *common_output_args(st),
        "-f", "mov", str(out),
    ])  # fmt: skip


def make_audio_only(ffmpeg: str, st: Statement, voiced: Voiced, out: Path) -> None:
    run([
        ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
        "-i", str(voiced.wav),
        "-map", "0:a:0",
        *audio_args(st),
        *common_output_args(st),
        str(out),
    ])  # fmt: skip


# ------------------------------------------------------------------------------------ yaml and readme


# meeting.yaml follow_up: what the note to the participants says happens next (all made up).
FOLLOW_UP = """\
follow_up:                        # how the meeting is followed up: the note to the participants
  contact: {name: Ida Holm, role: formand for Nordby Lokalråd, email: ida.holm@example.org}
  next_steps:
    - Teknik- og Miljøudvalget ser høringssvaret og svarer lokalrådet skriftligt.
    - Lokalrådet sender udvalgets svar til alle, der var med på mødet.
  groups:
    - name: Trafikgruppen
      coordinator: Søren Ærø Østergård
      meets: første tirsdag i måneden kl. 19 i Forsamlingshuset
      costs: kaffe og kage
      costs_covered_by: Nordby Lokalråd
  agreements:
    - {who: Nordby Lokalråd, what: sende høringssvaret til udvalget, by: 2026-11-27}
    - {who: Trafikgruppen, what: tælle biler på Skolevej en uge i december, by: 2026-12-18}
  next_meeting: 2027-03-04
  next_meeting_place: Nordby Forsamlingshus
"""


def meeting_yaml(trims: dict[str, tuple[float, float]]) -> str:
    lines = [
        "# Demo meeting, generated by samples/make_samples.py (do not edit by hand; re-run the script).",
        "# All names, places and statements are made up. Licence: CC0 1.0.",
    ]
    lines += [f"{key}: {yaml_str(value)}" for key, value in MEETING.items()]
    lines.append("statements:                       # order here is the order in the clip")
    for st in STATEMENTS:
        consent = ", ".join(f"{k}: {'true' if v else 'false'}" for k, v in st.consent.items())
        lines += [
            f"  - file: {st.file}",
            f"    speaker: {yaml_str(st.speaker)}",
            f"    group: {yaml_str(st.group)}",
            f"    topic: {yaml_str(st.topic)}",
            f"    consent: {{{consent}}}",
        ]
        if st.file in trims:
            start, end = trims[st.file]
            lines.append(f"    trim: {{start: {start:.1f}, end: {end:.1f}}}")
    return "\n".join(lines) + "\n" + FOLLOW_UP


def readme_text(rows: list[tuple[Statement, Voiced]], trims: dict[str, tuple[float, float]]) -> str:
    table = [
        "| # | file | speaker | topic | length | what it tests |",
        "|---|---|---|---|---|---|",
    ]
    for i, (st, voiced) in enumerate(rows, 1):
        speech = voiced.speech_end_s - voiced.speech_start_s
        tests = st.tests
        if st.file in trims:
            start, end = trims[st.file]
            tests += f" Trim: {start:.1f}–{end:.1f} s."
        table.append(
            f"| {i} | `{st.file}` | {st.speaker} | {st.topic} | {voiced.total_s:.1f} s "
            f"({speech:.1f} s speech) | {tests} |"
        )
    return f"""# Demo meeting: {MEETING["title"]}

`{MEETING_NAME}/` is a small, made-up meeting folder in the format of the design contract
(`meeting.yaml` + `recordings/`) for `hearing demo` and for tests. It is generated by
`make_samples.py`; re-run that script rather than editing the files:

```
python samples/make_samples.py
```

It needs espeak-ng (Danish voice), a TTF font (DejaVu Sans) and ffmpeg 6+ with drawtext, libx264 and
aac (from PATH, `FFMPEG`, or the `imageio-ffmpeg` wheel); see the docstring at the top of the script.

The meeting: {MEETING["title"]}, {MEETING["date"]}, {MEETING["place"]}, organised by
{MEETING["organiser"]}, for {MEETING["committee"]}. Five residents each recorded a short message to
the politicians on a phone at the end of the meeting. The speech is Danish synthesised with espeak-ng
(so a speech recogniser will get some words wrong: do not assert on exact words with these files); the
picture is a plain colour per speaker with the first name, "Borgermøde Nordby" and a running timestamp.
The order in `meeting.yaml` is the clip order.

{chr(10).join(table)}

What the pipeline should do with them: use 01–04 in that order (01 cut to its trim, 02
shown upright, 03's silence trimmed, 04 given a picture), show names for 01, 02 and 04 only, leave 05
out of the clip and the transcript and report it, and archive all but 04 (reported too).

## Licence

Everything in `{MEETING_NAME}/` is generated by `make_samples.py` and dedicated to the public domain
under CC0 1.0 (https://creativecommons.org/publicdomain/zero/1.0/). The people, statements and
recordings are fictitious.
"""


# ----------------------------------------------------------------------------------------------- main


def main() -> int:
    try:
        ffmpeg = find_ffmpeg()
        espeak = find_espeak()
        font = find_font()
        with tempfile.TemporaryDirectory(prefix="make-samples-") as tmp_name:
            tmp = Path(tmp_name)
            staging = tmp / MEETING_NAME
            (staging / "recordings").mkdir(parents=True)
            rows: list[tuple[Statement, Voiced]] = []
            trims: dict[str, tuple[float, float]] = {}
            for st in STATEMENTS:
                stem = Path(st.file).stem
                voiced = build_audio(espeak, st, tmp, stem)
                out = staging / st.file
                if st.kind == "audio":
                    make_audio_only(ffmpeg, st, voiced, out)
                else:
                    make_video(ffmpeg, font, st, voiced, out, tmp)
                if st.preamble:
                    # In the pause after the aside; out half a second after the speech ends.
                    start = (voiced.preamble_end_s + voiced.speech_start_s) / 2
                    end = min(voiced.speech_end_s + 0.5, voiced.total_s)
                    trims[st.file] = (round(start, 1), round(end, 1))
                rows.append((st, voiced))
                print(
                    f"{st.file}: {voiced.total_s:.1f} s, speech {voiced.speech_start_s:.1f}–"
                    f"{voiced.speech_end_s:.1f} s, {out.stat().st_size / 1024:.0f} KiB"
                )
            (staging / "meeting.yaml").write_text(meeting_yaml(trims), encoding="utf-8")
            if OUT_DIR.exists():
                shutil.rmtree(OUT_DIR)
            shutil.copytree(staging, OUT_DIR)
        README.write_text(readme_text(rows, trims), encoding="utf-8")
    except SampleError as exc:
        print(f"make_samples: {exc}", file=sys.stderr)
        return 1
    total = sum(p.stat().st_size for p in OUT_DIR.rglob("*") if p.is_file())
    print(f"wrote {OUT_DIR.relative_to(HERE.parent)}/ ({total / 1024 / 1024:.2f} MiB) and {README.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
