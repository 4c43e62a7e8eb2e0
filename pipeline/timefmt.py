"""Times and rates written as text: one function for each way the pipeline writes a time (a subtitle
file's time stamp, a time in a message, a transcript's time code, a length in seconds, what ffmpeg reads
for a time or a frame rate). Pure: numbers in, text out. Danish sentences with times in them are in
``pipeline.texts``."""

from __future__ import annotations


def srt_time(ms: int) -> str:
    """SubRip's time stamp, ``00:01:02,345``; a negative time as 0."""
    ms = max(ms, 0)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def vtt_time(ms: int) -> str:
    """WebVTT's time stamp, ``00:01:02.345``."""
    return srt_time(ms).replace(",", ".")


def clock(ms: int) -> str:
    """A time in the clip as a message names it: as the SRT file writes it, so a person finds the cue."""
    return srt_time(ms)


def timecode(ms: int) -> str:
    """A transcript's time code to the second, ``00:01:02``; a negative time as 0."""
    seconds = max(0, ms) // 1000
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}"


def minutes_seconds(ms: int) -> str:
    """A length as ``M:SS``."""
    return f"{ms // 60_000}:{ms // 1000 % 60:02d}"


def seconds_text(ms: int) -> str:
    """A length in a check's result, ``62.35 s (1:02)``: to the hundredth, so a clip 40 ms over its limit
    does not read as exactly at it; from a minute on with minutes and seconds too."""
    if ms >= 60_000:
        return f"{ms / 1000:.2f} s ({minutes_seconds(ms)})"
    return f"{ms / 1000:.2f} s"


def duration_words(ms: int) -> str:
    """A length to the second as a letter writes it: ``2 min 05 s``, ``45 s``."""
    seconds = round(ms / 1000)
    minutes, rest = divmod(seconds, 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def ffmpeg_seconds(ms: int) -> str:
    """A time as ffmpeg's ``-ss`` and ``-t`` read it, ``1.234``: to the millisecond."""
    return f"{ms / 1000:.3f}"


def ffmpeg_rate(fps: float) -> str:
    """A frame rate as ffmpeg reads it: 29.97 as ``30000/1001``, as every player has it (a decimal would
    drift), other rates as the shortest decimal."""
    for exact in ((24000, 1001), (30000, 1001), (60000, 1001)):
        if abs(fps - exact[0] / exact[1]) < 0.005:
            return f"{exact[0]}/{exact[1]}"
    return f"{fps:g}"


def fps_text(fps: float) -> str:
    """A measured frame rate as a check reports it: to the thousandth, trailing zeros dropped
    (``29.97``, ``25``)."""
    return f"{fps:.3f}".rstrip("0").rstrip(".")
