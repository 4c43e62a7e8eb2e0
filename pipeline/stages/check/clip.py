"""The clip file: what is measured in it (container boxes, streams, frame timestamps, loudness) and the
checks of those facts against the form: container, picture, sound, loudness, the soft subtitle track and
the lengths of the clip and of its statements.

Pure core: ``frame_rate``, ``check_clip``, ``check_soft_track`` and ``check_durations``. Thin I/O:
``measure_clip`` (through pipeline.media).

H.264 Main and Constrained Baseline (what x264's fastest presets make) are a warning: every High decoder
plays them. Other profiles (High 10, 4:2:2, 4:4:4) fail: many players cannot decode them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.config import Form
from pipeline.stages.check.results import CheckResult, _result
from pipeline.timefmt import fps_text, seconds_text

if TYPE_CHECKING:
    from pipeline.media import R128, FileFacts

LOUDNESS_TOLERANCE_LU = 1.0  # EBU R 128 production tolerance
FPS_TOLERANCE = 0.01  # 29.97 and 30000/1001 are the same rate
# The major brand of a QuickTime MOV; an ftyp box with any other brand makes the file an MP4.
QUICKTIME_BRAND = "qt  "
# H.264 profiles every High decoder plays too.
SUBSET_PROFILES = ("Main", "Constrained Baseline")


# ------------------------------------------------------------------------------------------ facts


@dataclass(frozen=True)
class VideoFacts:
    codec: str
    profile: str
    pix_fmt: str
    width: int
    height: int
    sar: str  # "1:1"
    frames: int
    fps: float  # average over the whole clip, from the frame timestamps; 0 below two frames
    constant_rate: bool  # every frame follows the one before after the same time
    frame_gap_ms: tuple[float, float]  # shortest and longest time between two frames


@dataclass(frozen=True)
class AudioFacts:
    codec: str
    profile: str
    sample_rate: int
    channels: int


@dataclass(frozen=True)
class SubtitleTrack:
    codec: str
    language: str
    cues: int = 0  # the samples that hold text


@dataclass(frozen=True)
class ClipFacts:
    """What was measured in a clip; the pure checks judge this against the form."""

    name: str
    format_name: str  # ffmpeg's demuxer names, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
    brand: str  # the MP4 major brand, e.g. "isom"; empty when the file has no ftyp box
    boxes: tuple[str, ...]  # top-level MP4 boxes in file order
    duration_ms: int
    video: VideoFacts | None
    audio: AudioFacts | None  # the first audio track
    audio_tracks: int
    subtitle_tracks: tuple[SubtitleTrack, ...]
    loudness_lufs: float | None  # integrated, EBU R 128, of the decoded first audio track
    true_peak_dbtp: float | None


@dataclass(frozen=True)
class FrameRate:
    fps: float
    constant: bool
    shortest_gap_ms: float
    longest_gap_ms: float


def frame_rate(times: Sequence[int], time_base: Fraction) -> FrameRate:
    """The frame rate the timestamps show. Constant when every gap is the same, give or take the one tick
    that rounding a rate like 30000/1001 to the time base leaves."""
    ordered = sorted(times)
    gaps = [b - a for a, b in itertools.pairwise(ordered)]
    if not gaps or ordered[-1] == ordered[0]:
        return FrameRate(0.0, False, 0.0, 0.0)
    fps = float(len(gaps) / ((ordered[-1] - ordered[0]) * time_base))
    shortest, longest = min(gaps), max(gaps)
    return FrameRate(
        fps=fps,
        constant=shortest > 0 and longest - shortest <= 1,
        shortest_gap_ms=float(shortest * time_base * 1000),
        longest_gap_ms=float(longest * time_base * 1000),
    )


# ------------------------------------------------------------------------------- the clip (pure)


def _is_mp4(facts: ClipFacts) -> bool:
    return "mp4" in facts.format_name.split(",") and bool(facts.brand) and facts.brand != QUICKTIME_BRAND


def check_clip(facts: ClipFacts, form: Form) -> list[CheckResult]:
    """Container, picture, sound and loudness of the clip against the form (docs/standards.md "Delivery
    video", "Loudness")."""
    out: list[CheckResult] = []
    if facts.brand == QUICKTIME_BRAND:
        container = "QuickTime MOV (brand qt)"
    elif facts.brand:
        container = f"MP4 (brand {facts.brand.strip()})"
    else:
        container = f"not MP4 ({facts.format_name.split(',')[0]})"
    out.append(_result("container.mp4", "MP4 container", "MP4 (ISO base media)", container, _is_mp4(facts)))
    if facts.brand:  # where the index lies means something only in an MP4 or MOV
        kinds = [k for k in facts.boxes if k in ("moov", "mdat")]
        order = " before ".join(dict.fromkeys(kinds)) if "moov" in kinds else "no moov box"
        first = kinds[:1] == ["moov"]
        out.append(
            _result(
                "container.faststart",
                "index first (fast start)",
                "moov before mdat",
                order,
                first,
                "" if first else "re-mux with -movflags +faststart",
            )
        )
    out += _check_video(facts.video, form)
    out += _check_audio(facts, form)
    return out


def _check_video(video: VideoFacts | None, form: Form) -> list[CheckResult]:
    if video is None:
        return [
            _result(
                "video.track",
                "a video track",
                "1 video track",
                "none",
                False,
                "codec, size, pixel format and frame rate cannot be checked",
            )
        ]
    want = form.video
    rate = f"{fps_text(video.fps)} fps" if video.frames > 1 else "fewer than 2 frames"
    gaps = f"{video.frame_gap_ms[0]:.2f}–{video.frame_gap_ms[1]:.2f} ms between frames"
    # A profile is judged only for H.264; another codec has failed already.
    profile = [_check_profile(video.profile)] if video.codec == "h264" else []
    return [
        _result("video.codec", "video codec", want.codec, video.codec, video.codec == want.codec),
        *profile,
        _result(
            "video.pix_fmt", "pixel format", "yuv420p", video.pix_fmt or "unknown", video.pix_fmt == "yuv420p"
        ),
        _result(
            "video.size",
            "picture size",
            f"{want.width}×{want.height}",
            f"{video.width}×{video.height}",
            (video.width, video.height) == (want.width, want.height),
        ),
        _result("video.sar", "square pixels (SAR)", "1:1", video.sar or "1:1", (video.sar or "1:1") == "1:1"),
        _result(
            "video.constant_rate",
            "constant frame rate",
            "constant",
            f"constant ({gaps})" if video.constant_rate else f"variable ({gaps})",
            video.constant_rate,
            "" if video.constant_rate else "phones record a variable frame rate; the clip must not",
        ),
        _result(
            "video.fps",
            "frame rate",
            f"{fps_text(want.fps)} fps",
            rate if video.constant_rate or video.frames <= 1 else f"{rate} on average",
            video.frames > 1 and abs(video.fps - want.fps) <= FPS_TOLERANCE,
        ),
    ]


def _check_profile(profile: str) -> CheckResult:
    expected = "High"
    if profile == "High":
        return _result("video.profile", "H.264 profile", expected, profile, True)
    if profile in SUBSET_PROFILES:
        # What a High decoder plays anyway (x264's fastest presets make these): noted, not refused.
        return _result(
            "video.profile",
            "H.264 profile",
            expected,
            profile,
            False,
            f"{profile} is a subset of High and plays wherever High does; docs/standards.md asks for High",
            warn=True,
        )
    return _result(
        "video.profile",
        "H.264 profile",
        expected,
        profile or "unknown",
        False,
        "many PCs, projectors and browsers cannot play this profile; docs/standards.md asks for High",
    )


def _check_audio(facts: ClipFacts, form: Form) -> list[CheckResult]:
    want = form.audio
    audio = facts.audio
    if audio is None:
        return [
            _result(
                "audio.track",
                "a sound track",
                "1 audio track",
                "none",
                False,
                "codec, sample rate, channels and loudness cannot be checked",
            )
        ]
    out = [
        _result(
            "audio.track",
            "a sound track",
            "1 audio track",
            f"{facts.audio_tracks} audio tracks" if facts.audio_tracks > 1 else "1 audio track",
            facts.audio_tracks == 1,
            "players differ in which track they play; the first was measured"
            if facts.audio_tracks > 1
            else "",
            warn=True,
        )
    ]
    aac_lc = audio.codec == "aac" and audio.profile in ("LC", "")
    measured = f"{audio.codec}" + (f" ({audio.profile})" if audio.profile else "")
    out.append(_result("audio.codec", "audio codec", "aac (LC)", measured, aac_lc))
    out.append(
        _result(
            "audio.sample_rate",
            "sample rate",
            f"{want.sample_rate} Hz",
            f"{audio.sample_rate} Hz",
            audio.sample_rate == want.sample_rate,
        )
    )
    out.append(
        _result(
            "audio.channels",
            "channels",
            _channels(want.channels),
            _channels(audio.channels),
            audio.channels == want.channels,
        )
    )
    if facts.loudness_lufs is not None:
        off = facts.loudness_lufs - want.loudness
        out.append(
            _result(
                "audio.loudness",
                "integrated loudness (EBU R 128)",
                f"{want.loudness:g} ± {LOUDNESS_TOLERANCE_LU:g} LUFS",
                f"{facts.loudness_lufs:.1f} LUFS",
                abs(off) <= LOUDNESS_TOLERANCE_LU + 1e-9,
                "" if abs(off) <= LOUDNESS_TOLERANCE_LU + 1e-9 else f"{off:+.1f} LU from the agreed level",
            )
        )
    if facts.true_peak_dbtp is not None:
        ok = facts.true_peak_dbtp <= want.true_peak + 1e-9
        out.append(
            _result(
                "audio.true_peak",
                "true peak",
                f"≤ {want.true_peak:g} dBTP",
                f"{facts.true_peak_dbtp:.1f} dBTP",
                ok,
                "" if ok else "peaks this high may distort on the way to the loudspeakers",
            )
        )
    return out


def _channels(count: int) -> str:
    return {1: "1 (mono)", 2: "2 (stereo)"}.get(count, str(count))


def _language_code(language: str) -> str:
    from pipeline.stages.render import iso639_2

    return iso639_2(language)


def check_soft_track(facts: ClipFacts, form: Form, language: str | None = None) -> CheckResult:
    """A selectable subtitle track (mov_text, in the clip's language: ``language``, else the form's) where
    the form says soft."""
    code = _language_code(language or form.language)
    mode = form.subtitles.mode
    tracks = ", ".join(f"{t.codec} ({t.language or 'und'})" for t in facts.subtitle_tracks) or "none"
    wanted = [t for t in facts.subtitle_tracks if t.codec == "mov_text" and t.language == code]
    title = "subtitle track in the clip"
    if mode in ("soft", "burn+soft"):
        return _result("subtitles.soft_track", title, f"mov_text ({code})", tracks, bool(wanted))
    return _result("subtitles.soft_track", title, f"not required (mode {mode})", tracks, True)


def check_master(
    name: str,
    master: ClipFacts | None,
    clip: ClipFacts,
    cues: int | None,
    form: Form,
    language: str | None = None,
) -> list[CheckResult]:
    """The clean master (``name``) beside a clip with burned-in subtitles, where the form asks for one: an MP4
    with the selectable track in the clip's language holding as many subtitles as the SRT (``cues``;
    None: no readable SRT), and the clip's very picture: as many frames, of the same size and kind, as
    long to the frame. That the text is not burned into it is seen only in its pictures (the tests
    compare them)."""
    if not form.subtitles.clean_master:
        return []
    if master is None:
        return [_result("master.file", "clean master beside the clip", f"{name}, MP4", "missing", False)]
    code = _language_code(language or form.language)
    container = f"MP4 (brand {master.brand.strip()})" if _is_mp4(master) else master.format_name.split(",")[0]
    out = [_result("master.file", "clean master beside the clip", f"{name}, MP4", container, _is_mp4(master))]
    wanted = [t for t in master.subtitle_tracks if t.codec == "mov_text" and t.language == code]
    tracks = (
        ", ".join(f"{t.codec} ({t.language or 'und'}), {t.cues}" for t in master.subtitle_tracks) or "none"
    )
    expected = f"mov_text ({code}), {cues if cues is not None else 'as many as the SRT'}"
    out.append(
        _result(
            "master.soft_track",
            "subtitle track in the clean master, one subtitle per subtitle of the SRT",
            expected,
            tracks,
            len(wanted) == 1 and cues is not None and wanted[0].cues == cues,
        )
    )

    def picture(facts: ClipFacts) -> str:
        v = facts.video
        return f"{v.width}×{v.height} {v.codec} {v.pix_fmt} {fps_text(v.fps)} fps" if v else "no picture"

    out.append(
        _result("master.picture", "the clean master's picture as the clip's", picture(clip), picture(master),
                picture(master) == picture(clip))
    )  # fmt: skip
    frames = master.video.frames if master.video else 0
    want = clip.video.frames if clip.video else 0
    frame_ms = 1000 / form.video.fps
    close = abs(master.duration_ms - clip.duration_ms) <= frame_ms
    out.append(
        _result(
            "master.frames",
            "the clean master as long as the clip",
            f"{want} frames, {seconds_text(clip.duration_ms)}",
            f"{frames} frames, {seconds_text(master.duration_ms)}",
            frames == want and close,
        )
    )
    return out


def check_durations(
    duration_ms: int, form: Form, timeline: Sequence[Mapping[str, Any]] | None
) -> list[CheckResult]:
    """The clip within ``clip.max_duration``; each statement within ``max_statement``, one result a
    statement (``clip.statement.<id>``, numbered in the clip's order), where the timeline (the delivery's
    ``<name>-tidslinje.json``, else run.json) says where the statements are."""
    limit = round(form.clip.max_duration * 1000)
    out = [
        _result(
            "clip.duration",
            "length of the clip",
            f"≤ {seconds_text(limit)}",
            seconds_text(duration_ms),
            duration_ms <= limit,
            "" if duration_ms <= limit else f"{seconds_text(duration_ms - limit)} too long",
        )
    ]
    if timeline is None:
        return out
    most = round(form.clip.max_statement * 1000)
    statements = [p for p in timeline if p.get("kind") == "statement"]
    for number, part in enumerate(statements, start=1):
        length = int(part.get("duration_ms", 0))
        sid = str(part.get("statement") or number)
        out.append(
            _result(
                f"clip.statement.{sid}",
                f"length of statement {number} ({sid})",
                f"≤ {seconds_text(most)}",
                seconds_text(length),
                length <= most,
                "" if length <= most else f"{seconds_text(length - most)} too long",
            )
        )
    return out


def measure_clip(clip: Path) -> ClipFacts:
    """Everything the checks judge, measured from the file: its boxes, streams, frame timestamps and the
    loudness of its decoded audio."""
    from concurrent.futures import ThreadPoolExecutor

    from pipeline import media

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="meter") as pool:
        # ffmpeg meters the sound on one core while the frames are read here on the other; a file
        # without sound fails the meter, which is then never asked.
        metering = pool.submit(media.measure_r128, clip, 0)
        return _clip_facts(clip, media.read_file_facts(clip), metering.result)


def measure_master(master: Path) -> ClipFacts | None:
    """The clean master's facts, its loudness aside (its sound is the clip's); None when it is not
    there or cannot be read as media."""
    from pipeline import media
    from pipeline.errors import MediaError

    if not master.is_file():
        return None
    try:
        return _clip_facts(master, media.read_file_facts(master), None)
    except MediaError:
        return None


def _clip_facts(clip: Path, raw: FileFacts, metered: Callable[[], R128] | None) -> ClipFacts:
    from pipeline import media

    boxes: tuple[str, ...] = ()
    if raw.brand:
        boxes = tuple(kind for kind, _ in media.mp4_boxes(clip))
    pictures = [t for t in raw.tracks if t.kind == "video" and t.frame_times]
    video = None
    if pictures or any(t.kind == "video" for t in raw.tracks):
        track = pictures[0] if pictures else next(t for t in raw.tracks if t.kind == "video")
        rate = frame_rate(track.frame_times, track.time_base or Fraction(1, 1000))
        video = VideoFacts(
            codec=track.codec,
            profile=track.profile,
            pix_fmt=track.pix_fmt,
            width=track.width,
            height=track.height,
            sar=track.sar,
            frames=len(track.frame_times),
            fps=rate.fps,
            constant_rate=rate.constant,
            frame_gap_ms=(rate.shortest_gap_ms, rate.longest_gap_ms),
        )
    sounds = [t for t in raw.tracks if t.kind == "audio"]
    audio = None
    loudness = peak = None
    if sounds:
        audio = AudioFacts(sounds[0].codec, sounds[0].profile, sounds[0].sample_rate, sounds[0].channels)
    if sounds and metered is not None:
        measured = metered()
        loudness, peak = measured.integrated, measured.true_peak
    return ClipFacts(
        name=clip.name,
        format_name=raw.format_name,
        brand=raw.brand,
        boxes=boxes,
        duration_ms=raw.duration_ms,
        video=video,
        audio=audio,
        audio_tracks=len(sounds),
        subtitle_tracks=tuple(
            SubtitleTrack(t.codec, t.language, t.cues) for t in raw.tracks if t.kind == "subtitle"
        ),
        loudness_lufs=loudness,
        true_peak_dbtp=peak,
    )
