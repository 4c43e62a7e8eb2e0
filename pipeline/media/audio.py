"""The sound of a recording for the speech engines, and how channels are mixed down: decoding one
audio stream to 16 kHz mono WAV in-process (PyAV, as faster-whisper decodes), the ``pan`` argument that
mixes channels ffmpeg cannot, and reading that WAV back.
"""

from __future__ import annotations

import gc
import re
import shlex
import wave
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline import interrupt
from pipeline.errors import MediaError
from pipeline.models import AudioInfo

if TYPE_CHECKING:
    import numpy as np


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
