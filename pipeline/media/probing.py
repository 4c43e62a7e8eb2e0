"""What a media file holds, read with PyAV without decoding more than a frame: ``probe`` for a
recording (streams, duration, rotation, frame rate), ``read_file_facts`` for a finished clip (every
stream and every video frame's time, for the delivery check), ``mp4_boxes`` for an MP4's top level.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from pipeline.errors import MediaError, RecordingRejected
from pipeline.models import AudioInfo, MediaProbe, VideoInfo

# Packets read to decide whether the frame rate is variable; phones show it within seconds.
VFR_PACKETS = 600
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
    cues: int = 0  # subtitles: the samples that hold text


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
        texts = list(container.streams.subtitles)
        cues: dict[int, int] = {s.index: 0 for s in texts}
        if times or cues:
            try:
                for packet in container.demux([*pictures[:1], *texts]):
                    if packet.stream.index in cues:
                        # A mov_text sample is its text's length in two bytes, then the text: the
                        # empty ones the muxer writes between subtitles are no subtitle.
                        cues[packet.stream.index] += packet.size > 2
                    elif packet.pts is not None:
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
            elif stream.index in cues:
                track = replace(track, cues=cues[stream.index])
            tracks.append(track)
        brand = str(container.metadata.get("major_brand", "")) if _looks_like_isobmff(path) else ""
        return FileFacts(
            format_name=container.format.name,
            brand=brand,
            duration_ms=round(container.duration / 1000) if container.duration else 0,
            tracks=tuple(tracks),
        )
