"""Loudness: what ffmpeg's meters print (loudnorm's measuring pass, ebur128's summary of a finished
file), and the loudness of any stretch of a recording from one metering of the whole of it.

ffmpeg's ebur128 meter logs, every 100 ms, the momentary loudness (the 400 ms ending there), the
short-term loudness (the 3 s ending there) and the frame's true peak. ITU-R BS.1770 defines integrated
loudness over exactly those 400 ms blocks, 100 ms apart, gated at -70 LUFS and then 10 LU below their
mean; EBU Tech 3342 defines the loudness range over the short-term values, gated at -70 LUFS and 20 LU
below their mean. So once a recording is metered, its statement's loudness follows for whatever cut is
chosen, without decoding it again: the meter runs while the engine listens, before the cut is known.

The stretch is taken to the nearest 100 ms; against the same meter run on the cut alone the integrated
loudness agrees to within 0.15 LU (tests/test_clip.py), where the check allows 1 LU. It is the check's
meter too, so the delivered clip measures as the gain was reckoned. (ffmpeg's loudnorm measures some
recordings a few tenths of a LU otherwise; its own passes are used only where a plain gain will not do.)
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import MediaError
from pipeline.media.tools import input_path, run_ffmpeg
from pipeline.timefmt import ffmpeg_seconds


@dataclass(frozen=True)
class Loudness:
    """EBU R 128 / ITU-R BS.1770 measurement of what a statement's second loudnorm pass is given."""

    integrated: float  # LUFS
    true_peak: float  # dBTP
    lra: float  # LU
    threshold: float  # LUFS, the relative gate
    offset: float  # the target offset loudnorm suggests for its second pass (0 from ``stretch``)

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
        *(("-ss", ffmpeg_seconds(start_ms)) if start_ms is not None else ()),
        *(("-t", ffmpeg_seconds(duration_ms)) if duration_ms is not None else ()),
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


# ----------------------------------------------------------------------- the loudness of a stretch

FRAME_MS = 100  # the meter logs every 100 ms
BLOCK_MS = 400  # BS.1770's gating block: the momentary loudness
SHORT_TERM_MS = 3000  # EBU Tech 3342's loudness range blocks
ABSOLUTE_GATE = -70.0  # LUFS
RELATIVE_GATE = 10.0  # LU below the mean of the blocks above the absolute gate
RANGE_GATE = 20.0  # LU, for the loudness range
SILENCE = -120.7  # what the meter logs for a block without sound

_NUMBER = r"(-?inf|nan|-?\d+(?:\.\d+)?)"
_FRAME = re.compile(
    rf"\bt:\s*\S+\s+TARGET:.*?\bM:\s*{_NUMBER}\s+S:\s*{_NUMBER}.*?\bFTPK:((?:\s+{_NUMBER})+)\s+dBFS"
)


@dataclass(frozen=True)
class SoundFrames:
    """A recording's sound as the meter logged it: value ``i`` of each belongs to the frame that ends
    at ``(i + 1) * FRAME_MS``."""

    momentary: tuple[float, ...]  # LUFS
    short_term: tuple[float, ...]  # LUFS
    peaks: tuple[float, ...]  # dBTP, the loudest channel's

    def to_json(self) -> dict[str, Any]:
        return {"momentary": self.momentary, "short_term": self.short_term, "peaks": self.peaks}

    @classmethod
    def from_json(cls, data: Any) -> SoundFrames | None:
        """Stored frames, or None when there are none or they are damaged."""
        try:
            values = [tuple(float(v) for v in data[k]) for k in ("momentary", "short_term", "peaks")]
        except (KeyError, TypeError, ValueError):
            return None
        if len({len(v) for v in values}) != 1:
            return None
        return cls(*values)


def parse_frame_log(lines: Iterable[str]) -> SoundFrames:
    """The meter's frame lines (``framelog=info``, ``peak=true``), in order."""
    momentary: list[float] = []
    short_term: list[float] = []
    peaks: list[float] = []
    for line in lines:
        found = _FRAME.search(line)
        if found is None:
            continue
        momentary.append(_finite(found.group(1)))
        short_term.append(_finite(found.group(2)))
        peaks.append(max(_finite(value) for value in found.group(3).split()))
    return SoundFrames(tuple(momentary), tuple(short_term), tuple(peaks))


def meter(args: Sequence[str], *, what: str) -> SoundFrames:
    """Run the meter (``args`` end in ebur128 with ``framelog=info`` and a null output)."""
    return parse_frame_log(run_ffmpeg(args, what=what, stderr_lines=None).stderr_tail)


def _finite(text: str) -> float:
    value = float(text)
    return SILENCE if value != value or value == -math.inf else value


def stretch(frames: SoundFrames, in_ms: int, out_ms: int) -> Loudness:
    """Integrated loudness, true peak, loudness range and relative gate of ``in_ms``-``out_ms``."""
    blocks = [b for b in _inside(frames.momentary, BLOCK_MS, in_ms, out_ms) if b > ABSOLUTE_GATE]
    peaks = [p for i, p in enumerate(frames.peaks) if (i + 1) * FRAME_MS > in_ms and i * FRAME_MS < out_ms]
    true_peak = max(peaks, default=-99.0)
    if not blocks:
        return Loudness(ABSOLUTE_GATE, true_peak, 0.0, ABSOLUTE_GATE, 0.0)
    threshold = _mean_loudness(blocks) - RELATIVE_GATE
    integrated = _mean_loudness([b for b in blocks if b > threshold])
    return Loudness(
        round(integrated, 2),
        true_peak,
        round(_range(_inside(frames.short_term, SHORT_TERM_MS, in_ms, out_ms)), 2),
        round(threshold, 2),
        0.0,
    )


def _inside(values: Sequence[float], window_ms: int, in_ms: int, out_ms: int) -> list[float]:
    """The values whose window lies inside the stretch, to the nearest frame."""
    slack = FRAME_MS // 2
    return [
        v
        for i, v in enumerate(values)
        if (i + 1) * FRAME_MS - window_ms >= in_ms - slack and (i + 1) * FRAME_MS <= out_ms + slack
    ]


def _mean_loudness(levels: Sequence[float]) -> float:
    """The loudness of the mean energy of blocks given in LUFS."""
    energy = statistics.fmean(10 ** ((level + 0.691) / 10) for level in levels)
    return -0.691 + 10 * math.log10(energy)


def _range(short_term: Sequence[float]) -> float:
    """EBU Tech 3342: the spread between the 10th and 95th percentiles of the gated short-term values."""
    loud = [s for s in short_term if s > ABSOLUTE_GATE]
    if not loud:
        return 0.0
    gate = _mean_loudness(loud) - RANGE_GATE
    kept = sorted(s for s in loud if s > gate)

    def percentile(share: float) -> float:
        return kept[round(share * (len(kept) - 1))]

    return percentile(0.95) - percentile(0.10)
