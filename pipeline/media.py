"""The only module that starts ffmpeg or opens media with PyAV.

ffmpeg comes from PATH when the system has one, otherwise from the imageio-ffmpeg wheel, so that
``pip install`` alone is enough. ffprobe is not needed: probing uses PyAV (a faster-whisper dependency).
Every command is logged exactly (``shlex.join``) and a failure raises MediaError with the command and the
tail of ffmpeg's stderr.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import functools
import gc
import itertools
import logging
import os
import re
import shlex
import shutil
import subprocess
import threading
import wave
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline import interrupt
from pipeline.errors import MediaError, MissingToolError, PipelineError, RecordingRejected
from pipeline.models import AudioInfo, MediaProbe, VideoInfo

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

FFMPEG_ENV = "HEARING_FFMPEG"  # points at a specific ffmpeg binary; overrides PATH and the wheel
STDERR_TAIL_LINES = 12
ERROR_TAIL_LINES = 40  # of stderr kept with a failure, for -v
KEPT_ERROR_LINES = 20
# Before the inputs: ffmpeg ignores options that trail the last output file.
GLOBAL_ARGS = ("-nostdin", "-hide_banner", "-loglevel", "warning", "-y")
# Packets read to decide whether the frame rate is variable; phones show it within seconds.
VFR_PACKETS = 600


@dataclass(frozen=True)
class FfmpegResult:
    stdout: str
    stderr_tail: tuple[str, ...]  # warnings ffmpeg printed although it succeeded


BUNDLED_FIX = (
    "install ffmpeg 5.1 or newer (apt-get install ffmpeg), or reinstall hearing-pipeline, whose "
    "imageio-ffmpeg dependency brings one"
)


@dataclass(frozen=True)
class FfmpegChoice:
    """The ffmpeg binary a run uses, and why: recorded in run.json, the QC report and `hearing models`."""

    path: str
    version: str
    source: str  # "HEARING_FFMPEG", "PATH" or "bundled"
    reason: str
    passed_over: tuple[str, ...] = ()  # one line each: a candidate that was not used, and why

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "version": self.version,
            "source": self.source,
            "reason": self.reason,
            "passed_over": list(self.passed_over),
        }


def _bundled_ffmpeg() -> str | None:
    try:
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError):
        return None


@functools.cache
def ffmpeg_choice() -> FfmpegChoice:
    """``HEARING_FFMPEG`` if set (it must be able to do everything), else the ffmpeg on PATH if it can,
    else the bundled one. Each candidate is asked once what it offers; the answer is remembered."""
    override = os.environ.get(FFMPEG_ENV)
    if override:
        if not (Path(override).is_file() and os.access(override, os.X_OK)):
            raise MissingToolError(
                f"ffmpeg ({FFMPEG_ENV}={override}) is not an executable file",
                f"unset {FFMPEG_ENV} or point it at an ffmpeg binary",
            )
        version, missing = assess_ffmpeg(override)
        if missing:
            raise MissingToolError(
                f"the ffmpeg in {FFMPEG_ENV} ({override}, {version or 'unknown version'}) lacks "
                + "; ".join(missing),
                f"point {FFMPEG_ENV} at ffmpeg 5.1 or newer with libx264 and libass, or unset it",
            )
        return FfmpegChoice(override, version, FFMPEG_ENV, f"named by {FFMPEG_ENV}")
    passed_over: list[str] = []
    found = shutil.which("ffmpeg")
    if found:
        version, missing = assess_ffmpeg(found)
        if not missing:
            return FfmpegChoice(found, version, "PATH", "the system's ffmpeg on PATH can do everything")
        passed_over.append(
            f"the ffmpeg on PATH ({found}, {version or 'unknown version'}) lacks " + "; ".join(missing)
        )
    bundled = _bundled_ffmpeg()
    if bundled is None:
        raise MissingToolError(passed_over[0] if passed_over else "ffmpeg was not found", BUNDLED_FIX)
    version, missing = assess_ffmpeg(bundled)
    if missing:
        raise MissingToolError(
            "; ".join([*passed_over, f"the bundled ffmpeg ({version}) lacks " + "; ".join(missing)]),
            BUNDLED_FIX,
        )
    reason = "no ffmpeg on PATH" if not found else "the ffmpeg on PATH cannot do everything"
    choice = FfmpegChoice(bundled, version, "bundled", reason, tuple(passed_over))
    for line in passed_over:
        log.warning("%s; using the bundled ffmpeg %s instead", line, version)
    return choice


def ffmpeg_exe() -> str:
    return ffmpeg_choice().path


def command_line(args: Sequence[str]) -> str:
    """The exact command line of an ffmpeg call, as the logs, run.json and a dry run show it."""
    return shlex.join([ffmpeg_exe(), *args])


def ffmpeg_version() -> str:
    return ffmpeg_choice().version


def _checks_file() -> Path:
    from pipeline.files import cache_root

    return cache_root() / "ffmpeg-checks.json"


def assess_ffmpeg(exe: str) -> tuple[str, list[str]]:
    """(version, what it lacks) of one ffmpeg binary; remembered per binary (path, size, time), so a
    later run pays nothing."""
    import json

    from pipeline import ffmpeg_needs
    from pipeline.files import write_json

    resolved = Path(exe).resolve()
    try:
        stat = resolved.stat()
    except OSError as error:
        return "", [f"it cannot be read ({error.strerror})"]
    key = f"{resolved}|{stat.st_size}|{stat.st_mtime_ns}|{ffmpeg_needs.CHECK_VERSION}"
    store = _checks_file()
    try:
        known = json.loads(store.read_text(encoding="utf-8"))
        if not isinstance(known, dict):
            known = {}
    except (OSError, ValueError):
        known = {}
    offer = None
    if key in known:
        try:
            offer = ffmpeg_needs.offer_from_json(known[key])
        except (KeyError, TypeError, ValueError, AttributeError):
            offer = None  # a damaged entry: ask again
    if offer is None:
        try:
            offer = _ask_ffmpeg(exe)
        except PipelineError as error:
            return "", [f"it does not run ({error})"]
        known = {k: v for k, v in known.items() if not k.startswith(f"{resolved}|")}
        known[key] = ffmpeg_needs.offer_to_json(offer)
        with contextlib.suppress(OSError):
            write_json(store, known)
    return offer.version_text, ffmpeg_needs.shortfalls(offer)


def _ask_ffmpeg(exe: str) -> Any:
    from pipeline import ffmpeg_needs

    def ask(*args: str) -> str:
        return run_ffmpeg(["-hide_banner", *args], what=f"ask {exe} {args[0]}", quiet=True, exe=exe).stdout

    version_text = ffmpeg_needs.version_text(ask("-version"))
    if not version_text:
        raise MediaError(f"{exe} does not answer -version like ffmpeg")
    return ffmpeg_needs.Offer(
        version_text=version_text,
        encoders=ffmpeg_needs.parse_names(ask("-encoders")),
        muxers=ffmpeg_needs.parse_names(ask("-muxers")),
        demuxers=ffmpeg_needs.parse_names(ask("-demuxers")),
        filters=ffmpeg_needs.parse_names(ask("-filters")),
        filter_options=ffmpeg_needs.parse_filter_options(ask("-h", "full"), ffmpeg_needs.wanted_filters()),
    )


# How much lower than the pipeline's own the priority of the ffmpeg it starts is: raised for work done
# ahead (a statement rendered while the next is transcribed), which then fills only the cycles the
# engine leaves free and never slows it down. Per thread, like everything a context variable holds.
_niceness: contextvars.ContextVar[int] = contextvars.ContextVar("ffmpeg_niceness", default=0)
AHEAD_NICENESS = 10


@contextlib.contextmanager
def lower_priority(niceness: int = AHEAD_NICENESS) -> Iterator[None]:
    """ffmpeg started inside runs at a lower priority (``nice``) than the pipeline."""
    token = _niceness.set(niceness)
    try:
        yield
    finally:
        _niceness.reset(token)


def _lower_priority(pid: int, niceness: int) -> None:
    """Set from the parent (nothing more to do in the child): ``niceness`` below the pipeline's own."""
    if niceness and hasattr(os, "setpriority"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, pid, os.getpriority(os.PRIO_PROCESS, 0) + niceness)


def input_path(path: Path) -> str:
    """A file name ffmpeg cannot mistake for an option (``-x``), a protocol (``concat:``, ``subfile,``,
    ``http:``): the whole absolute path behind the ``file:`` protocol, which ffmpeg 5.1 and newer read
    as it is. Only an image (``IMAGE_INPUT``) is also read as a pattern (``%d``, ``*``): see there."""
    return "file:" + str(path.resolve())


def output_path(path: Path) -> str:
    """A file ffmpeg writes, passed as ``input_path`` passes what it reads."""
    return input_path(path)


# The demuxer for a still picture, named, and told that its name is no pattern: left to itself, ffmpeg
# reads a PNG's name with "%d" in it (an --out folder named so) as an image sequence.
IMAGE_INPUT = {"f": "image2", "pattern_type": "none"}


def run_ffmpeg(
    args: Sequence[str],
    *,
    what: str,
    duration_ms: int | None = None,
    on_progress: Callable[[float], None] | None = None,
    quiet: bool = False,
    stderr_lines: int | None = STDERR_TAIL_LINES,
    exe: str | None = None,
) -> FfmpegResult:
    """Run ffmpeg (``exe``, default the chosen one) with ``args`` (without the program name); return its
    output, with the last ``stderr_lines`` lines of its stderr (None: every line).

    With ``duration_ms`` and ``on_progress`` the share done is reported from ffmpeg's ``-progress``
    output. Raises MediaError carrying the command, the tail of stderr and, as its message, the line of
    stderr that says most about what went wrong.
    """
    from pipeline import children

    command = [exe or ffmpeg_exe(), *args]
    if on_progress is not None and duration_ms:
        command[1:1] = ["-progress", "pipe:1", "-nostats"]
    (log.debug if quiet else log.info)("%s: %s", what, shlex.join(command))
    _check_inputs(command, what)
    kept = None if stderr_lines is None else max(stderr_lines, ERROR_TAIL_LINES)
    tail: collections.deque[str] = collections.deque(maxlen=kept)
    # The cause is often printed early and followed by pages of summary; keep the error lines apart.
    errors: list[str] = []
    out_lines: list[str] = []
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            # No preexec_fn (it once set PR_SET_PDEATHSIG): Python code in the child of a process with
            # other threads can wait for ever on a lock one of them held at the fork (seen twice: an
            # import lock, and a fork beside the engine). Without it the child only execs. A pipeline
            # that is killed still stops its ffmpeg: the watchdog of ``pipeline.children`` sees it go.
        )
    except OSError as error:
        raise MissingToolError(
            f"ffmpeg could not be started ({error.strerror})", "check the ffmpeg install"
        ) from None
    # From here on, whatever happens (an error, Ctrl-C, the pipeline killed) ends this ffmpeg too.
    try:
        with children.watched(process):
            _lower_priority(process.pid, _niceness.get())

            def read_stderr() -> None:
                assert process.stderr is not None
                for raw in process.stderr:
                    line = raw.decode("utf-8", "replace").rstrip()
                    tail.append(line)
                    if len(errors) < KEPT_ERROR_LINES and _line_score(line) >= 2:
                        errors.append(line)

            reader = threading.Thread(target=read_stderr, daemon=True)
            reader.start()
            assert process.stdout is not None
            for raw in process.stdout:
                line = raw.decode("utf-8", "replace")
                if on_progress is not None and duration_ms and line.startswith("out_time_us="):
                    value = line.split("=", 1)[1].strip()
                    if value.isdigit():
                        on_progress(min(1.0, int(value) / 1000 / duration_ms))
                else:
                    out_lines.append(line)
            code = process.wait()
    except BaseException:
        process.kill()
        process.wait()
        raise
    reader.join(timeout=5)
    # ffmpeg shares the terminal: Ctrl-C stops it too, and that is an interruption, not a broken file.
    interrupt.check()
    lines = list(tail)[-stderr_lines:] if stderr_lines is not None else list(tail)
    if code != 0:
        told = telling_line([*errors, *tail]) or f"exit code {code}"
        raise MediaError(
            f"ffmpeg could not {what}: {told}", command, "\n".join(list(tail)[-ERROR_TAIL_LINES:])
        )
    if lines:
        log.debug("ffmpeg said while it worked to %s:\n%s", what, "\n".join(lines[-STDERR_TAIL_LINES:]))
    return FfmpegResult("".join(out_lines), tuple(lines))


def _check_inputs(command: Sequence[str], what: str) -> None:
    """Every file ffmpeg is to read is an ordinary file: ffmpeg itself would wait for ever on a named
    pipe put in a recording's place since it was looked at."""
    from pipeline.files import not_a_file

    for flag, value in itertools.pairwise(command):
        if flag == "-i" and value.startswith("file:"):
            path = Path(value.removeprefix("file:"))
            problem = not_a_file(path)
            if problem:
                raise MediaError(f"ffmpeg could not {what}: {path.name}: {problem}")


# Lines that only say that something failed, never what: ffmpeg prints them after the real cause.
_GENERIC = re.compile(
    r"conversion failed|error while (?:processing|filtering|decoding|encoding)|error reinitializing filters"
    r"|failed to inject frame|error initializing filter|error applying options to the filter"
    r"|error initializing complex filters|error opening output files?$|exiting normally|terminating thread"
    r"|error configuring filter graph|nothing was written into output file|error while opening encoder"
    r"|task finished with error|error sending frames to consumers|^\s*$",
    re.IGNORECASE,
)
_CAUSE = re.compile(
    r"error setting option|error applying option '|option .* not found|no such (?:filter|file|option)"
    r"|unrecognized option"
    r"|unknown encoder|unknown decoder|invalid data found|permission denied|cannot select|no space left"
    r"|matches no streams|does not exist|not supported",
    re.IGNORECASE,
)
_HINT = re.compile(r"unable to parse|could not find|invalid argument for", re.I)
_ERRORISH = re.compile(r"error|invalid|unable|cannot|can't|could not|failed|not found|unknown|missing", re.I)
_CONTEXT = re.compile(r"^\[([^\]@]*?)\s*@ 0x[0-9a-f]+\]\s*(?:\[[^\]]*@ 0x[0-9a-f]+\]\s*)*", re.IGNORECASE)


def _line_score(line: str) -> int:
    """4: names the cause; 3: a clue to it; 2: an error of some kind; 1: any other line; 0: says only
    that it failed."""
    if _GENERIC.search(line):
        return 0
    if _CAUSE.search(line):
        return 4
    if _HINT.search(line):
        return 3
    return 2 if _ERRORISH.search(line) else 1


def telling_line(lines: Sequence[str]) -> str:
    """The stderr line that says most about why ffmpeg failed: the first that names a cause, else the
    first error, else the last line that is not just "Conversion failed!". Log prefixes such as
    ``[Parsed_ebur128_0 @ 0x55f8]`` are shortened to the component's name."""
    best, best_score = "", 0
    for line in lines:
        score = _line_score(line)
        # Causes and errors: the earliest wins (later ones are consequences); plain lines: the latest.
        if score > best_score or (score == best_score == 1):
            best, best_score = line, score
    if not best:
        return ""
    found = _CONTEXT.match(best)
    if found:
        component = re.sub(r"^Parsed_(\w+?)_\d+$", r"\1", found.group(1))
        text = best[found.end() :].strip()
        # ffmpeg's own plumbing ("fc#-1", "AVFilterGraph") tells a person nothing; a filter's name does.
        if re.fullmatch(r"[a-z][a-z0-9_]*", component) and component not in ("fc", "out", "in"):
            return f"{component}: {text}"
        return text
    return best.strip()


# --------------------------------------------------------------------------------------------- probe

_FTYP_MAGIC = b"ftyp"


def _looks_like_isobmff(path: Path) -> bool:
    from pipeline.files import open_regular

    with open_regular(path) as handle:
        return _isobmff_head(handle.read(12))


def _isobmff_head(head: bytes) -> bool:
    return head[4:8] == _FTYP_MAGIC


def _sar(value: Fraction | None) -> str:
    if not value:
        return "1:1"
    return f"{value.numerator}:{value.denominator}"


def probe(path: Path) -> MediaProbe:
    """Streams, duration, rotation and frame rate of a recording, via PyAV.

    Raises RecordingRejected with one plain reason when the file cannot be read as media; NotAFile (an
    OSError) when it is no ordinary file, which is then never opened.
    """
    import av

    from pipeline.files import open_regular

    name = path.name
    try:
        with open_regular(path) as handle:
            size = os.fstat(handle.fileno()).st_size
            if size == 0:
                raise RecordingRejected(name, "empty file (0 bytes)")
            isobmff = _isobmff_head(handle.read(12))
            handle.seek(0)
            # PyAV reads through the handle that was checked, never the name again: what is probed is
            # the ordinary file that was looked at, whatever has that name by now.
            try:
                container = av.open(handle, metadata_errors="replace")
            except av.FFmpegError as error:
                detail = getattr(error, "strerror", None) or str(error)
                if isobmff:
                    raise RecordingRejected(
                        name, f"truncated or corrupt: an MP4/MOV whose index cannot be read ({detail})"
                    ) from None
                raise RecordingRejected(name, f"not a media file that ffmpeg can read ({detail})") from None
            with container:
                try:
                    return _probe_streams(container)
                except av.FFmpegError as error:
                    # Random bytes can pass for a raw stream (VVC, H.263) that then fails to read or seek.
                    detail = getattr(error, "strerror", None) or str(error)
                    raise RecordingRejected(
                        name, f"not a media file that ffmpeg can read ({detail})"
                    ) from None
    except PermissionError:
        raise RecordingRejected(name, "cannot be read (permission denied)") from None


def _probe_streams(container: Any) -> MediaProbe:
    video = _probe_video(container)
    audio = tuple(
        AudioInfo(
            index=s.index,
            codec=s.codec_context.name,
            sample_rate=int(s.codec_context.sample_rate or 0),
            channels=int(s.codec_context.channels or 0),
            layout=s.codec_context.layout.name if s.codec_context.layout else "",
            duration_ms=(int(s.duration * s.time_base * 1000) if s.duration and s.time_base else None),
        )
        for s in container.streams.audio
    )
    duration_ms = int(container.duration / 1000) if container.duration else 0
    if not duration_ms:
        durations = [a.duration_ms or 0 for a in audio]
        duration_ms = max(durations, default=0)
    return MediaProbe(
        format_name=container.format.name,
        duration_ms=duration_ms,
        video=video,
        audio=audio,
    )


def _probe_video(container: object) -> VideoInfo | None:
    import av

    streams = [
        s
        for s in container.streams.video  # type: ignore[attr-defined]
        # Cover art in an m4a or mp3 is a one-picture "video" stream; it is not a recording's picture.
        if not (s.disposition & av.stream.Disposition.attached_pic)
    ]
    if not streams:
        return None
    stream = streams[0]
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    rotation = 0
    pix_fmt = stream.codec_context.pix_fmt or ""
    try:
        first = next(container.decode(stream), None)  # type: ignore[attr-defined]
        if first is not None:
            # PyAV gives the display matrix angle counter-clockwise; players turn the picture clockwise.
            rotation = round(-float(first.rotation)) % 360
            pix_fmt = first.format.name or pix_fmt
    except (av.FFmpegError, StopIteration, ValueError):
        pass
    _rewind(container)
    return VideoInfo(
        index=stream.index,
        codec=stream.codec_context.name,
        width=int(stream.codec_context.width),
        height=int(stream.codec_context.height),
        rotation=rotation if rotation in (0, 90, 180, 270) else 0,
        fps=float(rate) if rate else 0.0,
        variable_frame_rate=_is_variable_frame_rate(container, stream),
        pix_fmt=pix_fmt,
        sar=_sar(stream.sample_aspect_ratio),
    )


def _rewind(container: Any) -> None:
    """Back to the start for the next look; a stream that cannot seek (a raw elementary stream) is
    left where it is, since what is probed next does not depend on it."""
    import av

    with contextlib.suppress(av.FFmpegError):
        container.seek(0)


def _is_variable_frame_rate(container: object, stream: object) -> bool:
    """True when the gaps between frames differ by more than timestamp rounding allows."""
    import av

    times: list[int] = []
    try:
        for packet in container.demux(stream):  # type: ignore[attr-defined]
            if packet.pts is not None:
                times.append(packet.pts)
            if len(times) >= VFR_PACKETS:
                break
    except av.FFmpegError:
        pass
    finally:
        _rewind(container)
    times.sort()
    gaps = [b - a for a, b in itertools.pairwise(times) if b > a]
    if len(gaps) < 3:
        return False
    # Rounding a constant rate to the time base makes gaps differ by one tick; more than that is VFR.
    return max(gaps) - min(gaps) > 1 + max(gaps) // 100


# ----------------------------------------------------------------------------------------- speech


SPEECH_RATE = 16_000
# Decoded frames are resampled in groups this big (samples), as faster-whisper's own decoder does.
RESAMPLE_GROUP = 500_000


def speech_decoder() -> str:
    """What decodes the speech audio: PyAV and the FFmpeg libraries it brings, whatever ffmpeg binary the
    system has, so the same recording gives the same samples (and so the same words) on every laptop."""
    import av

    codec = ".".join(str(n) for n in av.library_versions["libavcodec"])
    resample = ".".join(str(n) for n in av.library_versions["libswresample"])
    return f"PyAV {av.__version__} (libavcodec {codec}, libswresample {resample})"


def speech_audio_plan(source: Path, stream_index: int, target: Path) -> str:
    """The speech decoding in words, for the plan and run.json: it runs in-process, not as a command."""
    return (
        f"{speech_decoder()}: decode stream {stream_index} of {shlex.quote(str(source))} to "
        f"{SPEECH_RATE // 1000} kHz mono 16-bit WAV {shlex.quote(str(target))}"
    )


def extract_speech_audio(
    source: Path,
    stream_index: int,
    target: Path,
    *,
    duration_ms: int | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> tuple[str, ...]:
    """Decode one audio stream to 16 kHz mono 16-bit WAV for the speech engines, the way faster-whisper's
    own decoder does (PyAV, swresample to s16 mono): the engine hears what it would hear on its own.
    Channels swresample cannot mix (many channels in no known order) are mixed with equal weight first.
    Returns notes on damage that was skipped (packets that would not decode, a file ending in junk);
    raises MediaError when nothing can be decoded at all."""
    import av

    from pipeline.files import NotAFile, open_regular

    try:
        with open_regular(source) as handle:
            return _extract_speech_audio(handle, source, stream_index, target, duration_ms, on_progress)
    except NotAFile as error:
        raise MediaError(f"{source.name}: {error.reason}") from None
    except (av.FFmpegError, ValueError) as error:
        # Whatever PyAV refuses mid-stream is this recording's trouble, never the run's.
        raise MediaError(f"the sound of {source.name} cannot be decoded ({_av_reason(error)})") from None
    except OSError as error:
        raise MediaError(f"cannot read {source.name} ({error.strerror or error})") from None
    finally:
        # PyAV frees some resampler state only on a collection (faster-whisper does the same).
        gc.collect()


def _extract_speech_audio(
    handle: Any,
    source: Path,
    stream_index: int,
    target: Path,
    duration_ms: int | None,
    on_progress: Callable[[float], None] | None,
) -> tuple[str, ...]:
    import av

    damaged = 0
    last_error = ""
    stopped_at: float | None = None
    written = 0
    try:
        container = av.open(handle, metadata_errors="replace")
    except av.FFmpegError as error:
        raise MediaError(f"cannot open {source.name}: {_av_reason(error)}") from None
    with container, wave.open(str(target), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SPEECH_RATE)
        try:
            stream = container.streams[stream_index]
        except IndexError:
            raise MediaError(f"{source.name} has no stream {stream_index}") from None
        if stream.type != "audio":
            raise MediaError(f"stream {stream_index} of {source.name} is not audio")
        resampler = _speech_resampler()
        fifo = av.AudioFifo()
        shape: tuple[int, str, str] | None = None
        mix = False
        seconds = 0.0

        def write(frames: Sequence[Any]) -> None:
            nonlocal written
            for frame in frames:
                out.writeframes(frame.to_ndarray().tobytes())
                written += frame.samples

        packets = container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.FFmpegError as error:
                # The demuxer cannot go on (a file cut off mid-packet): keep what was decoded.
                stopped_at, last_error = seconds, _av_reason(error)
                break
            interrupt.check()
            try:
                frames: list[Any] = list(packet.decode())
            except av.FFmpegError as error:
                damaged += 1
                last_error = _av_reason(error)
                continue
            for frame in frames:
                frame.pts = None  # the fifo refuses frames whose timestamps jump (gaps in a damaged file)
                here = (frame.sample_rate, frame.layout.name, frame.format.name)
                if here != shape:
                    # The first frame, or a stream that changes its rate or channels midway: flush and
                    # start again.
                    if shape is not None:
                        write(resampler.resample(fifo.read()) if fifo.samples else [])
                        write(resampler.resample(None))
                        resampler = _speech_resampler()
                        fifo = av.AudioFifo()
                    shape = here
                    mix = not _resampler_takes(frame)
                seconds += frame.samples / (frame.sample_rate or SPEECH_RATE)
                fifo.write(equal_mix(frame) if mix else frame)
            if fifo.samples >= RESAMPLE_GROUP:
                write(resampler.resample(fifo.read()))
                if on_progress and duration_ms:
                    on_progress(min(1.0, seconds * 1000 / duration_ms))
        if fifo.samples:
            write(resampler.resample(fifo.read()))
        write(resampler.resample(None))
        del resampler
    if not written:
        raise MediaError(
            "no sound could be decoded from it" + (f" ({last_error})" if last_error else " (no samples)")
        )
    notes = []
    if damaged:
        notes.append(f"{damaged} damaged audio packet{'s' if damaged != 1 else ''} skipped ({last_error})")
    if stopped_at is not None:
        notes.append(f"the audio stops at {stopped_at:.1f} s in unreadable data ({last_error})")
    return tuple(notes)


def _speech_resampler() -> Any:
    import av

    return av.AudioResampler(format="s16", layout="mono", rate=SPEECH_RATE)


def _resampler_takes(frame: Any) -> bool:
    """Whether swresample can mix these channels to mono itself: not where they are many in no known
    order (48 channels from a mixing desk), which it refuses. Tried on a resampler of its own, so the
    real one starts clean."""
    import av

    if not mixes_by_itself(frame.layout.name, frame.layout.nb_channels):
        return False
    try:
        _speech_resampler().resample(frame)
    except (av.FFmpegError, ValueError):
        return False
    return True


def equal_mix(frame: Any) -> Any:
    """One channel, every channel of ``frame`` at equal weight, as 32-bit float samples."""
    import av
    import numpy as np

    data = frame.to_ndarray()
    channels = frame.layout.nb_channels
    if not frame.format.is_planar:
        data = data.reshape(-1, channels).T
    if data.dtype == np.uint8:
        samples = (data.astype(np.float32) - 128) / 128
    elif np.issubdtype(data.dtype, np.integer):
        samples = data.astype(np.float32) / float(np.iinfo(data.dtype).max + 1)
    else:
        samples = data.astype(np.float32)
    mixed = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(samples.mean(axis=0, dtype=np.float32)[np.newaxis, :]),
        format="flt",
        layout="mono",
    )
    mixed.sample_rate = frame.sample_rate
    return mixed


# ffmpeg's pan filter mixes at most this many channels; a recording with more is refused.
MAX_CHANNELS = 64
_UNORDERED = re.compile(r"\d+ channels")


def mixes_by_itself(layout: str, channels: int) -> bool:
    """Whether ffmpeg's resampler knows these channels well enough to mix them down: mono, two
    channels, or a layout whose channels are named. Three or more channels in no known order (a WAV
    from a multitrack recorder) it takes for a layout only up to a count that differs between
    versions, and refuses beyond: those are mixed with equal weight instead (``downmix_pan``)."""
    return channels <= 2 or not (not layout or _UNORDERED.fullmatch(layout))


def downmix_pan(audio: AudioInfo, channels_out: int) -> str | None:
    """The ``pan`` filter's argument that mixes every channel of ``audio`` at equal weight into
    ``channels_out`` (1 or 2), or None where ffmpeg mixes them down by itself. "<" makes pan scale the
    gains to sum to one, so no "=" needs escaping in the filter graph."""
    if mixes_by_itself(audio.layout, audio.channels):
        return None
    every = "+".join(f"c{i}" for i in range(audio.channels))
    layout = "stereo" if channels_out == 2 else "mono"
    return "|".join([layout, *(f"c{k}<{every}" for k in range(channels_out))])


def _av_reason(error: Exception) -> str:
    return str(getattr(error, "strerror", None) or error)


def read_wav_mono16k(path: Path) -> np.ndarray:
    """The samples of a WAV written by ``extract_speech_audio`` as float32 in [-1, 1]."""
    import numpy as np

    with wave.open(str(path), "rb") as handle:
        if handle.getnchannels() != 1 or handle.getsampwidth() != 2 or handle.getframerate() != 16_000:
            raise MediaError(f"{path.name} is not 16 kHz mono 16-bit audio")
        raw = handle.readframes(handle.getnframes())
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0


def wav_duration_ms(path: Path) -> int:
    with wave.open(str(path), "rb") as handle:
        return handle.getnframes() * 1000 // handle.getframerate()


# -------------------------------------------------------------------------------------------- loudness


@dataclass(frozen=True)
class Loudness:
    """EBU R 128 / ITU-R BS.1770 measurement of what a statement's second loudnorm pass is given."""

    integrated: float  # LUFS
    true_peak: float  # dBTP
    lra: float  # LU
    threshold: float  # LUFS, the relative gate
    offset: float  # the target offset loudnorm suggests for its second pass (0 from pipeline.loudness)

    def to_json(self) -> dict[str, float]:
        return {
            "integrated": self.integrated,
            "true_peak": self.true_peak,
            "lra": self.lra,
            "threshold": self.threshold,
            "offset": self.offset,
        }


def parse_loudnorm(stderr: Sequence[str]) -> Loudness:
    """The JSON block loudnorm prints at the end of a measuring pass."""
    import json

    text = "\n".join(stderr)
    start, end = text.rfind("{"), text.rfind("}")
    if start < 0 or end < start:
        raise MediaError("ffmpeg's loudnorm printed no measurement")
    data = json.loads(text[start : end + 1])

    def number(key: str) -> float:
        value = float(data[key])
        # Silence measures as -inf; keep the numbers finite so JSON and arithmetic stay sane.
        return max(value, -99.0) if value == value else -99.0

    return Loudness(
        integrated=number("input_i"),
        true_peak=number("input_tp"),
        lra=number("input_lra"),
        threshold=number("input_thresh"),
        offset=number("target_offset"),
    )


def measure_loudness(args: Sequence[str], *, what: str) -> Loudness:
    """Run a measuring pass (``args`` ends in a loudnorm with print_format=json and a null output)."""
    result = run_ffmpeg(args, what=what, stderr_lines=60)
    return parse_loudnorm(result.stderr_tail)


def mp4_boxes(path: Path) -> list[tuple[str, int]]:
    """The top-level boxes of an MP4 file with their sizes, in file order (``moov`` before ``mdat`` means
    a browser can start playing before the whole file has arrived)."""
    import struct

    from pipeline.files import open_regular

    boxes: list[tuple[str, int]] = []
    with open_regular(path) as handle:
        size_total = os.fstat(handle.fileno()).st_size
        offset = 0
        while offset + 8 <= size_total:
            handle.seek(offset)
            header = handle.read(16)
            size, kind = struct.unpack(">I4s", header[:8])
            if size == 1:
                size = struct.unpack(">Q", header[8:16])[0]
            elif size == 0:
                size = size_total - offset
            if size < 8:
                break
            boxes.append((kind.decode("latin-1"), size))
            offset += size
    return boxes


# ------------------------------------------------------------------------------ measuring a finished clip


@dataclass(frozen=True)
class TrackFacts:
    """One stream of a finished file, as its container and codec describe it."""

    index: int
    kind: str  # video, audio, subtitle, data
    codec: str
    profile: str  # "High", "LC", ... ; empty where the codec has none
    language: str  # ISO 639-2 as the container stores it; "und" or empty when not set
    width: int = 0
    height: int = 0
    pix_fmt: str = ""
    sar: str = ""
    sample_rate: int = 0
    channels: int = 0
    time_base: Fraction | None = None
    frame_times: tuple[int, ...] = ()  # video: every packet's presentation time in time_base ticks, sorted


@dataclass(frozen=True)
class FileFacts:
    format_name: str  # as ffmpeg's demuxer names it, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
    brand: str  # the ISO base media major brand ("isom", "mp42", "qt  "); empty for other containers
    duration_ms: int
    tracks: tuple[TrackFacts, ...]


def read_file_facts(path: Path) -> FileFacts:
    """Every stream of ``path`` with what a delivery check needs, and the timestamp of every video frame.

    Only packets are read (nothing is decoded), so this is quick even for a long clip.
    """
    import av

    try:
        container = av.open(str(path), metadata_errors="replace")
    except av.FFmpegError as error:
        detail = getattr(error, "strerror", None) or str(error)
        raise MediaError(f"{path.name} cannot be read as media ({detail})") from None
    except OSError as error:
        raise MediaError(f"{path.name} cannot be read ({error.strerror})") from None
    with container:
        tracks: list[TrackFacts] = []
        # Cover art is a one-picture "video" stream; it is not the clip's picture.
        pictures = [
            s for s in container.streams.video if not (s.disposition & av.stream.Disposition.attached_pic)
        ]
        times: dict[int, list[int]] = {s.index: [] for s in pictures[:1]}
        if times:
            try:
                for packet in container.demux(pictures[0]):
                    if packet.pts is not None:
                        times[packet.stream.index].append(packet.pts)
            except av.FFmpegError as error:
                raise MediaError(f"{path.name}: the video cannot be read to its end ({error})") from None
        for stream in container.streams:
            context = stream.codec_context
            track = TrackFacts(
                index=stream.index,
                kind=stream.type,
                codec=context.name if context is not None else "",
                profile=stream.profile or "",
                language=stream.language or stream.metadata.get("language", "") or "",
                time_base=stream.time_base,
            )
            if isinstance(stream, av.VideoStream):
                track = replace(
                    track,
                    width=int(stream.codec_context.width),
                    height=int(stream.codec_context.height),
                    pix_fmt=stream.codec_context.pix_fmt or "",
                    sar=_sar(stream.sample_aspect_ratio),
                    frame_times=tuple(sorted(times.get(stream.index, ()))),
                )
            elif isinstance(stream, av.AudioStream):
                track = replace(
                    track,
                    sample_rate=int(stream.codec_context.sample_rate or 0),
                    channels=int(stream.codec_context.channels or 0),
                )
            tracks.append(track)
        brand = str(container.metadata.get("major_brand", "")) if _looks_like_isobmff(path) else ""
        return FileFacts(
            format_name=container.format.name,
            brand=brand,
            duration_ms=round(container.duration / 1000) if container.duration else 0,
            tracks=tuple(tracks),
        )


@dataclass(frozen=True)
class R128:
    """EBU R 128 measurement of decoded audio, as ffmpeg's ebur128 filter reports it (0.1 precision)."""

    integrated: float  # LUFS
    true_peak: float  # dBTP
    lra: float  # LU


def r128_args(
    path: Path, audio_index: int = 0, *, start_ms: int | None = None, duration_ms: int | None = None
) -> list[str]:
    """Arguments that decode one audio track (or a stretch of it) and meter it: integrated loudness,
    true peak, range."""
    window = [
        *(("-ss", f"{start_ms / 1000:.3f}") if start_ms is not None else ()),
        *(("-t", f"{duration_ms / 1000:.3f}") if duration_ms is not None else ()),
    ]
    return [
        "-nostdin", "-hide_banner", "-nostats", "-loglevel", "info", *window, "-i", input_path(path),
        "-map", f"0:a:{audio_index}", "-af", "ebur128=peak=true:framelog=verbose", "-f", "null", "-",
    ]  # fmt: skip


def parse_r128(stderr: Sequence[str]) -> R128:
    """The summary ebur128 prints when the stream ends."""
    import re

    text = "\n".join(stderr)
    start = text.rfind("Summary:")
    if start < 0:
        raise MediaError("ffmpeg's ebur128 printed no summary")
    summary = text[start:]

    def number(label: str, unit: str) -> float:
        found = re.search(rf"{label}:\s+(-?inf|-?\d+(?:\.\d+)?)\s+{unit}", summary)
        if found is None:
            raise MediaError(f"ffmpeg's ebur128 summary has no {label.strip()} value")
        # Silence measures as -inf (or the -70 LUFS gate); keep the numbers finite for JSON.
        return max(float(found.group(1)), -99.0)

    return R128(
        integrated=number("I", "LUFS"),
        true_peak=number("Peak", "dBFS"),
        lra=number("LRA", "LU"),
    )


def measure_r128(
    path: Path, audio_index: int = 0, *, start_ms: int | None = None, duration_ms: int | None = None
) -> R128:
    """Loudness and true peak of a finished file (or a stretch of it), measured from its decoded audio."""
    result = run_ffmpeg(
        r128_args(path, audio_index, start_ms=start_ms, duration_ms=duration_ms),
        what=f"measure the loudness of {path.name}",
        stderr_lines=40,
    )
    return parse_r128(result.stderr_tail)
