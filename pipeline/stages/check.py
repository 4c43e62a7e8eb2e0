"""Check: proof that a delivered clip has the form agreed with the official.

Everything is measured from the delivered files, never taken from the settings that made them: the
container's boxes, the codec's own description of the streams, the timestamp of every video frame, the
loudness of the decoded audio, the subtitle files as a player reads them, and the transcript as the official
receives it. The rules and their sources are in docs/standards.md; the form may override every number.

Pure core: ``check_clip``, ``check_soft_track``, ``check_subtitle_file``, ``check_subtitles``,
``check_subtitle_pair``, ``check_transcript`` and ``check_durations`` turn facts into CheckResults.
Thin I/O: ``measure_clip`` (through pipeline.media), ``find_delivery_files``, ``run_check`` and
``write_qc_report``.

Decisions where the standards are silent:

- A cue above ``max_cps`` is a warning, not a failure, when no legal timing could show it slowly enough:
  ``timing.judge`` decides, with the room ``timing.room`` gives it (between its neighbours with the
  minimum gap, never more than 1.5 s before its first word or after its last, inside the part of the
  clip it is in, from run.json, ending the minimum gap before that part does, never longer than
  ``max_duration``), the same room the pipeline lengthens a fast cue into. Where its words are spoken
  comes from the word times of the delivered transcript JSON; without them the cue's own start and end
  stand for the speech.
- Bracketed captions ("[Anna Jensen, Bordgruppe 3]") name who speaks; they are not speech, so the word
  comparison with the transcript leaves every bracketed span out, on both sides.
- H.264 Main and Constrained Baseline (what x264's fastest presets make) are a warning: every High
  decoder plays them. Other profiles (High 10, 4:2:2, 4:4:4) fail: many players cannot decode them.
- The subtitle rules are judged on the SRT (or the file given); the WebVTT beside it must carry the same
  cues. A delivery without them fails: docs/design.md delivers both in every subtitle mode.
- A check that cannot be measured (no audio track: no loudness) is not repeated as a second failure; the
  missing track fails once and the report lists what could not be checked.
"""

from __future__ import annotations

import collections
import datetime as dt
import difflib
import glob
import itertools
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pipeline.config import Form
from pipeline.stages import timing
from pipeline.stages.subtitles.io import looks_like_timing, parse_srt, parse_vtt
from pipeline.stages.subtitles.rules import Cue, RuleBreak, SubtitleRules, cue_name, rule_titles

if TYPE_CHECKING:
    from pipeline.media import R128, FileFacts

VERSION = 1
REPORT_JSON = "qc-report.json"
REPORT_TXT = "qc-report.txt"
TRANSCRIPT_SUFFIX = "-transkription"

Status = Literal["pass", "warn", "fail"]
_RANK: dict[str, int] = {"pass": 0, "warn": 1, "fail": 2}

LOUDNESS_TOLERANCE_LU = 1.0  # EBU R 128 production tolerance
FPS_TOLERANCE = 0.01  # 29.97 and 30000/1001 are the same rate
# A run.json whose clip is longer or shorter than this describes another render of the clip.
TIMELINE_TOLERANCE_MS = 200
EXAMPLES = 4  # offending cues named in a check's detail; the rest are counted
# The major brand of a QuickTime MOV; an ftyp box with any other brand makes the file an MP4.
QUICKTIME_BRAND = "qt  "
# H.264 profiles every High decoder plays too.
SUBSET_PROFILES = ("Main", "Constrained Baseline")


# ---------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class CheckResult:
    check: str  # short id, e.g. "video.fps"
    title: str  # what it checks, readable
    expected: str
    measured: str
    status: Status
    detail: str = ""

    def to_json(self) -> dict[str, str]:
        return {
            "check": self.check,
            "title": self.title,
            "expected": self.expected,
            "measured": self.measured,
            "status": self.status,
            "detail": self.detail,
        }


def _result(
    check: str, title: str, expected: str, measured: str, ok: bool, detail: str = "", *, warn: bool = False
) -> CheckResult:
    status: Status = "pass" if ok else "warn" if warn else "fail"
    return CheckResult(check, title, expected, measured, status, detail)


def _worst(statuses: Sequence[Status]) -> Status:
    return max(statuses, key=lambda s: _RANK[s], default="pass")


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


def _fps_text(fps: float) -> str:
    return f"{fps:.3f}".rstrip("0").rstrip(".")


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
    rate = f"{_fps_text(video.fps)} fps" if video.frames > 1 else "fewer than 2 frames"
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
            f"{_fps_text(want.fps)} fps",
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


def check_durations(
    duration_ms: int, form: Form, timeline: Sequence[Mapping[str, Any]] | None
) -> list[CheckResult]:
    """The clip within ``clip.max_duration``; each statement within ``max_statement`` where the run's
    timeline (run.json) says where the statements are."""
    limit = round(form.clip.max_duration * 1000)
    out = [
        _result(
            "clip.duration",
            "length of the clip",
            f"≤ {_seconds(limit)}",
            _seconds(duration_ms),
            duration_ms <= limit,
            "" if duration_ms <= limit else f"{_seconds(duration_ms - limit)} too long",
        )
    ]
    if timeline is None:
        return out
    statements = [p for p in timeline if p.get("kind") == "statement"]
    if not statements:
        return out
    most = round(form.clip.max_statement * 1000)
    longest = max(statements, key=lambda p: int(p.get("duration_ms", 0)))
    over = [p for p in statements if int(p.get("duration_ms", 0)) > most]
    out.append(
        _result(
            "clip.statements",
            "length of each statement",
            f"≤ {_seconds(most)} each",
            f"longest {_seconds(int(longest.get('duration_ms', 0)))} ({longest.get('statement')}, run.json)",
            not over,
            "; ".join(f"{p.get('statement')}: {_seconds(int(p.get('duration_ms', 0)))}" for p in over),
        )
    )
    return out


def _seconds(ms: int) -> str:
    # To the hundredth: a clip 40 ms over its limit must not read as exactly at it.
    if ms >= 60_000:
        return f"{ms / 1000:.2f} s ({ms // 60_000}:{ms // 1000 % 60:02d})"
    return f"{ms / 1000:.2f} s"


# -------------------------------------------------------------------------- subtitle files (pure)

_SRT_TIMING = re.compile(r"^\d{2,}:\d{2}:\d{2},\d{3} --> \d{2,}:\d{2}:\d{2},\d{3}$")
_VTT_TIMING = re.compile(r"^(?:\d{2,}:)?\d{2}:\d{2}\.\d{3} --> (?:\d{2,}:)?\d{2}:\d{2}\.\d{3}(?:\s.*)?$")


def subtitle_kind(name: str) -> Literal["srt", "vtt"]:
    return "vtt" if name.lower().endswith(".vtt") else "srt"


def check_subtitle_file(name: str, data: bytes | None, form: Form) -> tuple[CheckResult, list[Cue] | None]:
    """The subtitle file is there, UTF-8, and every block parses; returns its cues when it can be read."""
    kind = subtitle_kind(name)
    title = f"{kind.upper()} subtitles beside the clip"
    expected = f"{kind.upper()}, UTF-8, every cue readable"
    if data is None:
        # .srt and .vtt are delivered in every mode (docs/design.md), also when none is burned in.
        return _result("subtitles.file", title, expected, "not found", False), None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        return _result("subtitles.file", title, expected, f"not UTF-8 (byte {error.start})", False), None
    bom = text.startswith("\ufeff")
    text = text.removeprefix("\ufeff")
    pattern = _VTT_TIMING if kind == "vtt" else _SRT_TIMING
    # Players skip a block whose timing they cannot read; pysubs2 reads more than players do.
    timing_lines = [line.strip() for line in text.splitlines() if looks_like_timing(line)]
    bad = [line for line in timing_lines if not pattern.match(line)]
    problems = []
    if kind == "vtt" and not text.startswith("WEBVTT"):
        problems.append("no WEBVTT header")
    if bad:
        problems.append(f"{len(bad)} unreadable timing line(s), first {bad[0]!r}")
    try:
        cues = parse_vtt(text) if kind == "vtt" else parse_srt(text)
    except Exception as error:  # pysubs2 raises several kinds; every one means "cannot be read"
        problems.append(f"cannot be read ({error})")
        cues = []
    if len(cues) < len(timing_lines) and not bad:
        problems.append(f"{len(timing_lines) - len(cues)} cue(s) a player would skip")
    if not cues:
        problems.append("no cues")
    if problems:
        return _result("subtitles.file", title, expected, "; ".join(problems), False), cues or None
    measured = f"{len(cues)} cues" + (", with a byte-order mark" if bom else "")
    return (
        _result(
            "subtitles.file",
            title,
            expected,
            measured,
            not bom,
            "UTF-8 without BOM is the convention; some players show the mark" if bom else "",
            warn=True,
        ),
        cues,
    )


def check_subtitle_pair(
    name: str, cues: Sequence[Cue], other_name: str, other: Sequence[Cue] | None
) -> CheckResult:
    """The SRT and the WebVTT file are both there and show the same text at the same times."""
    title = "SRT and WebVTT agree"
    expected = "both files, same cues"
    if other is None:
        return _result("subtitles.formats", title, expected, f"{other_name} not found", False)
    for n, (a, b) in enumerate(zip(cues, other, strict=False), 1):
        if (a.start_ms, a.end_ms, a.lines) != (b.start_ms, b.end_ms, b.lines):
            return _result(
                "subtitles.formats",
                title,
                expected,
                f"cue {n} differs",
                False,
                f"{name}: {cue_name(n, a)}; {other_name}: {cue_name(n, b)}",
            )
    if len(cues) != len(other):
        return _result("subtitles.formats", title, expected, f"{len(cues)} and {len(other)} cues", False)
    return _result("subtitles.formats", title, expected, f"same {len(cues)} cues", True)


def _clock(ms: int) -> str:
    ms = max(ms, 0)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


@dataclass
class _Rule:
    """One subtitle rule being checked over every cue: what broke it, counted by kind."""

    check: str
    title: str
    expected: str
    hits: list[tuple[Status, str, str]] = field(default_factory=list)  # status, kind, note

    def hit(self, status: Status, kind: str, note: str) -> None:
        self.hits.append((status, kind, note))

    def result(self, measured: str) -> CheckResult:
        status = _worst([h[0] for h in self.hits])
        counts = collections.Counter(kind for _, kind, _ in self.hits)
        if counts:
            measured = "; ".join([measured] * bool(measured) + [f"{n} {kind}" for kind, n in counts.items()])
        # Failures first: they are what must be fixed.
        notes = [note for _, _, note in sorted(self.hits, key=lambda h: -_RANK[h[0]])]
        shown = notes[:EXAMPLES]
        more = len(notes) - len(shown)
        detail = "\n".join(shown) + (f"\n… and {more} more" if more else "")
        return CheckResult(self.check, self.title, self.expected, measured, status, detail)


def check_subtitles(
    cues: Sequence[Cue],
    form: Form,
    clip_ms: int,
    *,
    speech: Sequence[tuple[int, int] | None] | None = None,
    timeline: Sequence[Mapping[str, Any]] | None = None,
) -> list[CheckResult]:
    """Every subtitle rule of the form over the cues, one result a rule (docs/standards.md "Subtitles"), as
    ``timing.judge`` judges them: the run and the review page ask it the same.

    ``speech`` (from ``speech_spans``) says where each cue's words are spoken, and ``timeline`` (run.json)
    where each part of the clip is; both only sharpen the judgement of a cue read too fast, which without
    them takes the cue's own times for its speech and the whole clip as its window.
    """
    rules = SubtitleRules.from_form(form)
    titles = rule_titles(rules, clip_ms)
    checks = {name: _Rule(name, *titles[name]) for name in titles}
    checks["subtitles.gap"].expected = f"≥ {rules.min_gap_ms} ms ({form.subtitles.min_gap_frames} frames)"
    for found in subtitle_breaks(cues, form, clip_ms, speech=speech, timeline=timeline):
        checks[found.rule].hit(found.severity, found.kind, found.detail)

    timed = [c for c in cues if c.end_ms > c.start_ms]
    gaps = [
        b.start_ms - a.end_ms
        for a, b in itertools.pairwise(cues)
        if b.start_ms >= a.start_ms and b.start_ms >= a.end_ms
    ]
    durations = [c.duration_ms for c in timed]
    line_lengths = [len(line) for c in cues for line in c.lines]
    fastest = max((c.cps for c in timed), default=0.0)
    measured = {
        "subtitles.order": "" if checks["subtitles.order"].hits else "in order",
        "subtitles.end_after_start": f"{len(cues)} cues",
        "subtitles.overlap": "" if checks["subtitles.overlap"].hits else "none",
        "subtitles.gap": f"smallest {min(gaps)} ms" if gaps else "no gaps",
        "subtitles.inside_clip": f"last ends {_clock(max((c.end_ms for c in cues), default=0))}",
        "subtitles.lines": f"most {max((len(c.lines) for c in cues), default=0)}",
        "subtitles.chars_per_line": f"longest {max(line_lengths, default=0)}",
        "subtitles.reading_speed": f"fastest {fastest:.2f} characters/s",
        "subtitles.min_duration": f"shortest {min(durations, default=0) / 1000:.3f} s",
        "subtitles.max_duration": f"longest {max(durations, default=0) / 1000:.3f} s",
    }
    return [checks[name].result(measured[name]) for name in measured]


def subtitle_breaks(
    cues: Sequence[Cue],
    form: Form,
    clip_ms: int,
    *,
    speech: Sequence[tuple[int, int] | None] | None = None,
    timeline: Sequence[Mapping[str, Any]] | None = None,
) -> list[RuleBreak]:
    """Every rule break of the delivered cues, judged by ``timing.judge`` with what the files say: where
    the words are spoken (the transcript JSON) and which part of the clip each cue is in (run.json)."""
    windows = [_window(timeline, c.start_ms, clip_ms) for c in cues] if timeline else None
    return timing.judge(cues, SubtitleRules.from_form(form), clip_ms, speech=speech, windows=windows)


def _window(timeline: Sequence[Mapping[str, Any]], ms: int, clip_ms: int) -> tuple[int, int] | None:
    """The part of the clip (start, end) that the moment ``ms`` lies in."""
    for part in timeline:
        start = int(part.get("start_ms", 0))
        end = start + int(part.get("duration_ms", 0))
        if start <= ms < end:
            return start, min(end, clip_ms)
    return None


def speech_spans(cues: Sequence[Cue], document: Mapping[str, Any]) -> list[tuple[int, int] | None] | None:
    """Where in the clip each cue's words are spoken (first word's start, last word's end), from the word
    times in the delivered transcript JSON; None for a cue without words. None altogether when the words of
    the two do not match one to one, or the transcript has no word times."""
    timed: list[tuple[str, int, int]] = []
    for statement in document.get("statements") or []:
        offset = statement.get("start_ms")
        if offset is None:
            return None
        for segment in statement.get("segments") or []:
            for word in segment.get("words") or []:
                try:
                    start, end = int(offset) + int(word["start_ms"]), int(offset) + int(word["end_ms"])
                except (KeyError, TypeError, ValueError):
                    return None
                timed += [(token, start, end) for token in words(str(word.get("text", "")))]
    spans: list[tuple[int, int] | None] = []
    at = 0
    for cue in cues:
        tokens = words(cue.text)
        if not tokens:
            spans.append(None)
            continue
        chunk = timed[at : at + len(tokens)]
        if [token for token, _, _ in chunk] != tokens:
            return None
        spans.append((min(s for _, s, _ in chunk), max(e for _, _, e in chunk)))
        at += len(tokens)
    return spans if at == len(timed) else None


# ------------------------------------------------------------------------------ transcript (pure)

_BRACKETED = re.compile(r"\[[^\]]*\]")
_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """Lowercase words without punctuation and without bracketed captions, for comparing texts."""
    return _WORD.findall(_BRACKETED.sub(" ", text).lower())


def transcript_texts(document: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, text) of each statement in a delivered transcript JSON."""
    out = []
    for number, statement in enumerate(document.get("statements") or [], 1):
        text = statement.get("text")
        if text is None:
            text = " ".join(str(s.get("text", "")) for s in statement.get("segments") or [])
        label = f"statement {statement.get('number', number)}"
        if statement.get("speaker_label"):
            label += f" ({statement['speaker_label']})"
        out.append((label, str(text)))
    return out


def check_transcript(
    form: Form,
    present: Mapping[str, bool],
    cues: Sequence[Cue] | None,
    transcript: Mapping[str, Any] | None,
) -> list[CheckResult]:
    """The transcript files the form asks for are there; the subtitles and the transcript carry the same
    words in the same order. ``present`` maps each format to whether its file was found."""
    wanted = list(form.transcript.formats)
    missing = [f for f in wanted if not present.get(f)]
    out = [
        _result(
            "transcript.files",
            "transcript files",
            ", ".join(wanted),
            "all present" if not missing else f"missing {', '.join(missing)}",
            not missing,
        )
    ]
    if transcript is not None:
        out.append(check_text_recognised(transcript))
        out.append(check_approved(transcript))
        out.append(check_repetitions(transcript))
        out.append(check_credits(transcript))
    if cues is None or transcript is None:
        return out
    out.append(compare_words(cues, transcript_texts(transcript)))
    return out


def _flagged_runs(document: Mapping[str, Any], flag: str) -> tuple[list[str], int]:
    """Each run of consecutive words carrying ``flag`` (statement, time in the clip, text), and how many
    words were decoded again."""
    found: list[str] = []
    redecoded = 0
    for (label, _), statement in zip(
        transcript_texts(document), document.get("statements") or [], strict=False
    ):
        offset = int(statement.get("start_ms") or 0)
        run: list[Mapping[str, Any]] = []
        for word in [*(w for s in statement.get("segments") or [] for w in s.get("words") or []), None]:
            flags = (word or {}).get("flags") or []
            redecoded += "redecoded" in flags
            if word is not None and flag in flags:
                run.append(word)
                continue
            if run:
                text = " ".join(str(w.get("text", "")).strip() for w in run)
                shown = text if len(text) <= 40 else text[:39] + "…"
                found.append(f"{label} at {_clock(offset + int(run[0].get('start_ms', 0)))}: '{shown}'")
                run = []
    return found, redecoded


def _examples(found: Sequence[str]) -> str:
    more = f"\n… and {len(found) - EXAMPLES} more" if len(found) > EXAMPLES else ""
    return "\n".join(found[:EXAMPLES]) + more


def check_repetitions(document: Mapping[str, Any]) -> CheckResult:
    """Repetition loops that decoding again could not mend are kept, flagged, for a person to judge:
    each one is named with its statement and time in the clip."""
    found, redecoded = _flagged_runs(document, "repeated")
    note = f"; {redecoded} words decoded again where Whisper looped" if redecoded else ""
    return _result(
        "transcript.repetitions",
        "no repetition loops",
        "no phrase repeated 4 times in a row",
        (f"{len(found)} kept for review" if found else "none") + note,
        not found,
        _examples(found),
        warn=True,
    )


def check_credits(document: Mapping[str, Any]) -> CheckResult:
    """Subtitle credits ("Undertekster af ...") Whisper writes over silence: nobody said them."""
    found, _ = _flagged_runs(document, "subtitle_credit")
    return _result(
        "transcript.credits",
        "no invented subtitle credits",
        "none over silence",
        f"{len(found)} for review: nobody said them" if found else "none",
        not found,
        _examples(found),
        warn=True,
    )


def check_text_recognised(document: Mapping[str, Any]) -> CheckResult:
    """A statement whose speech the recogniser could not write down reaches the committee with its
    picture and sound; a person must write its text, so the report says which."""
    empty = [
        label
        for (label, _), statement in zip(
            transcript_texts(document), document.get("statements") or [], strict=False
        )
        if statement.get("no_text")
    ]
    return _result(
        "transcript.text_recognised",
        "every statement has text",
        "text for every statement",
        "all have text" if not empty else f"no text recognised in {', '.join(empty)}",
        not empty,
        "write the text of these statements by hand" if empty else "",
        warn=True,
    )


def check_approved(document: Mapping[str, Any]) -> CheckResult:
    """Whether a person read and approved each statement's text (and who, when): speech recognition
    gets many Danish words wrong. The gate itself is the run's (form ``require_approval``)."""
    labels = transcript_texts(document)
    statements = document.get("statements") or []
    approved = []
    missing = []
    for (label, _), statement in zip(labels, statements, strict=False):
        approval = statement.get("approved")
        if approval:
            approved.append(
                f"{label}: {approval.get('by')}" + (f", {approval['at']}" if approval.get("at") else "")
            )
        else:
            missing.append(label)
    return _result(
        "transcript.approved",
        "text approved by a person",
        "every statement approved",
        f"{len(approved)} of {len(statements)} approved"
        + (f"; not approved: {', '.join(missing)}" if missing else ""),
        not missing,
        "\n".join(approved),
        warn=True,
    )


def compare_words(cues: Sequence[Cue], statements: Sequence[tuple[str, str]]) -> CheckResult:
    """Nothing dropped, added or changed between the subtitles and the transcript; names the first
    difference by the subtitle and the statement where it is."""
    sub_words: list[str] = []
    sub_where: list[int] = []
    for n, cue in enumerate(cues, 1):
        found = words(cue.text)
        sub_words += found
        sub_where += [n] * len(found)
    doc_words: list[str] = []
    doc_where: list[str] = []
    for label, text in statements:
        found = words(text)
        doc_words += found
        doc_where += [label] * len(found)
    title = "subtitles and transcript say the same"
    expected = "same words, same order"
    matcher = difflib.SequenceMatcher(None, sub_words, doc_words, autojunk=False)
    changes = [op for op in matcher.get_opcodes() if op[0] != "equal"]
    if not changes:
        return _result("transcript.words", title, expected, f"same {len(sub_words)} words", True)
    differing = sum(max(i2 - i1, j2 - j1) for _, i1, i2, j1, j2 in changes)
    tag, i1, i2, j1, j2 = changes[0]

    def cue_at(i: int) -> Cue:
        return cues[sub_where[min(i, len(sub_where) - 1)] - 1]

    def show(seq: list[str], a: int, b: int) -> str:
        part = seq[a : min(b, a + 8)]
        return "'" + " ".join(part) + (" …" if b - a > 8 else "") + "'"

    if tag == "replace":
        n = sub_where[i1]
        first = (
            f"subtitle {n} at {_clock(cues[n - 1].start_ms)} says {show(sub_words, i1, i2)} where the "
            f"transcript ({doc_where[j1]}) says {show(doc_words, j1, j2)}"
        )
    elif tag == "delete":
        n = sub_where[i1]
        first = (
            f"subtitle {n} at {_clock(cues[n - 1].start_ms)} has {show(sub_words, i1, i2)}, "
            "which the transcript does not"
        )
    else:
        where = f"after subtitle {sub_where[i1 - 1]}" if i1 else "before the first subtitle"
        if sub_words:
            where += f" at {_clock(cue_at(i1 - 1 if i1 else 0).start_ms)}"
        first = (
            f"the transcript ({doc_where[j1]}) has {show(doc_words, j1, j2)}, "
            f"which the subtitles do not ({where})"
        )
    return _result(
        "transcript.words",
        title,
        expected,
        f"{differing} of {max(len(sub_words), len(doc_words))} words differ",
        False,
        f"first difference: {first}",
    )


# ------------------------------------------------------------------------------------- the report


@dataclass(frozen=True)
class CheckedFile:
    role: str  # "clip", "subtitles (SRT)", "transcript (json)", "run report", ...
    name: str | None  # as seen from the clip's folder; None when it was not found
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"role": self.role, "file": self.name, "found": self.name is not None, "note": self.note}


@dataclass(frozen=True)
class QcReport:
    clip: str
    form: str
    agreed_with: str | None
    checked_at: str  # UTC, ISO 8601
    tools: str  # the checker's and ffmpeg's versions
    files: tuple[CheckedFile, ...]
    results: tuple[CheckResult, ...]
    not_checked: tuple[str, ...] = ()  # checks that could not be made, with the reason
    ffmpeg: dict[str, Any] | None = None  # the binary that measured: path, version, why it was chosen

    @property
    def passed(self) -> bool:
        """True when no check failed; warnings are allowed."""
        return not self.failures

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if r.status == "fail"]

    @property
    def warnings(self) -> list[CheckResult]:
        return [r for r in self.results if r.status == "warn"]

    def verdict(self) -> list[str]:
        """The first lines of the report, in Danish and English."""
        if self.passed:
            note = f" ({len(self.warnings)} advarsler / warnings)" if self.warnings else ""
            return [f"Klippet OVERHOLDER den aftalte form / The clip conforms to the agreed form{note}"]
        failed = ", ".join(r.check for r in self.failures)
        return [
            "Klippet OVERHOLDER IKKE den aftalte form / The clip does NOT conform to the agreed form",
            f"Fejl i / failed: {failed}",
        ]

    def summary(self) -> str:
        """One line naming the failed checks with what was measured, for a log or an error message."""
        if self.passed:
            return self.verdict()[0]
        failed = "; ".join(f"{r.check}: {r.measured} (expected {r.expected})" for r in self.failures)
        return f"{self.clip} does not conform to the agreed form: {failed}"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "hearing-pipeline QC report",
            "version": VERSION,
            "clip": self.clip,
            "form": {"name": self.form, "agreed_with": self.agreed_with},
            "checked_at": self.checked_at,
            "tools": self.tools,
            "ffmpeg": self.ffmpeg,
            "conforms": self.passed,
            "verdict": self.verdict(),
            "failed": [r.check for r in self.failures],
            "warnings": [r.check for r in self.warnings],
            "files": [f.to_json() for f in self.files],
            "checks": [r.to_json() for r in self.results],
            "not_checked": list(self.not_checked),
        }

    def to_text(self) -> str:
        marker = "=" * 100
        out = [marker, *self.verdict(), marker, ""]
        out.append(f"QC-rapport / QC report: {self.clip}")
        agreed = f" (aftalt med / agreed with {self.agreed_with})" if self.agreed_with else ""
        out.append(f"Form: {self.form}{agreed}")
        out.append(f"Målt / measured: {self.checked_at} · {self.tools}")
        if self.ffmpeg:
            out.append(f"ffmpeg: {self.ffmpeg['path']} ({self.ffmpeg['reason']})")
        out.append("")
        out.append("Filer / files:")
        width = max((len(f.role) for f in self.files), default=0)
        for item in self.files:
            name = item.name if item.name is not None else "ikke fundet / not found"
            note = f"  ({item.note})" if item.note else ""
            out.append(f"  {item.role:<{width}}  {name}{note}")
        out.append("")
        header = ("Status", "Check", "Expected", "Measured")
        rows = [(_LABEL[r.status], f"{r.check}: {r.title}", r.expected, r.measured) for r in self.results]
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]
        out.append(_row(header, widths))
        out.append(_row((*("-" * w for w in widths), "-" * len(header[3])), widths))
        for result, row in zip(self.results, rows, strict=True):
            out.append(_row(row, widths))
            if result.detail and result.status != "pass":
                out += [" " * (widths[0] + 2) + "↳ " + line for line in result.detail.splitlines()]
        if self.not_checked:
            out.append("")
            out.append("Ikke kontrolleret / not checked:")
            out += [f"  - {reason}" for reason in self.not_checked]
        return "\n".join(out) + "\n"


_LABEL = {"pass": "pass", "warn": "warn", "fail": "FAIL"}


def _row(cells: tuple[str, ...], widths: Sequence[int]) -> str:
    first = [f"{cell:<{widths[i]}}" for i, cell in enumerate(cells[:-1])]
    return "  ".join([*first, cells[-1]]).rstrip()


# ------------------------------------------------------------------------------------------------ I/O


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


def _clip_facts(clip: Path, raw: FileFacts, metered: Callable[[], R128]) -> ClipFacts:
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
        subtitle_tracks=tuple(SubtitleTrack(t.codec, t.language) for t in raw.tracks if t.kind == "subtitle"),
        loudness_lufs=loudness,
        true_peak_dbtp=peak,
    )


@dataclass(frozen=True)
class DeliveryFiles:
    """The files that belong with a clip, as found beside it (None: not there)."""

    subtitles: Path | None
    transcript_json: Path | None
    run_json: Path | None
    language: str | None  # from the subtitle file's name, <stem>.<language>.srt


def transcript_path(clip: Path, fmt: str) -> Path:
    return clip.with_name(f"{clip.stem}{TRANSCRIPT_SUFFIX}.{fmt}")


def find_delivery_files(clip: Path, form: Form, subtitles: Path | None = None) -> DeliveryFiles:
    """The subtitles (``<stem>.<language>.srt``, else any ``<stem>.*.srt`` or ``<stem>.srt``), the
    transcript JSON (``<stem>-transkription.json``) and the run report (``../run.json``) of a clip, and the
    language the subtitle file is named for (a meeting may be held in another language than the form's)."""
    if subtitles is None:
        stem = glob.escape(clip.stem)
        preferred = clip.with_name(f"{clip.stem}.{form.language}.srt")
        found = sorted(clip.parent.glob(f"{stem}.*.srt")) + sorted(clip.parent.glob(f"{stem}.srt"))
        subtitles = preferred if preferred.is_file() else next((p for p in found if p.is_file()), None)
    transcript = transcript_path(clip, "json")
    run_json = clip.parent.parent / "run.json"
    tag = subtitles.suffixes[-2].lstrip(".") if subtitles is not None and len(subtitles.suffixes) > 1 else ""
    return DeliveryFiles(
        subtitles=subtitles,
        transcript_json=transcript if transcript.is_file() else None,
        run_json=run_json if run_json.is_file() else None,
        language=tag if re.fullmatch(r"[a-z]{2,3}", tag) else None,
    )


def _relative(path: Path, folder: Path) -> str:
    try:
        return os.path.relpath(path, folder)
    except ValueError:  # another drive on Windows
        return str(path)


def _companion(path: Path) -> Path:
    return path.with_suffix(".vtt" if subtitle_kind(path.name) == "srt" else ".srt")


def _read_bytes(path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _timeline_from_run(
    run_json: Path, clip: Path, duration_ms: int
) -> tuple[list[Mapping[str, Any]] | None, str]:
    """The run's timeline when run.json is about this clip; otherwise None and why it was not used."""
    try:
        data = json.loads(run_json.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        return None, f"cannot be read ({error})"
    name = (data.get("delivery") or {}).get("name")
    if name and name != clip.stem:
        return None, f"describes the clip {name}, not this one"
    timeline = data.get("timeline") or []
    if not timeline:
        return None, "has no timeline"
    end = max(int(p.get("start_ms", 0)) + int(p.get("duration_ms", 0)) for p in timeline)
    if abs(end - duration_ms) > TIMELINE_TOLERANCE_MS:
        return None, f"describes a clip of {_seconds(end)}, not the {_seconds(duration_ms)} measured"
    return timeline, ""


def run_check(
    clip: Path,
    form: Form,
    *,
    subtitles: Path | None,
    transcript_json: Path | None,
    run_json: Path | None,
    timeline: Sequence[Mapping[str, Any]] | None = None,
    language: str | None = None,
    files_ready: Callable[[], object] | None = None,
) -> QcReport:
    """Measure ``clip`` and the files that belong with it, and judge them against ``form``.

    ``files_ready`` is called once the clip is measured, before any file beside it is looked at: a caller
    still writing one of them (on another core, while ffmpeg meters the clip) finishes it there.

    ``timeline`` (the parts as run.json records them) may be given instead of ``run_json`` by a caller that
    has it in hand, e.g. the runner before it writes run.json. ``language`` is the language the clip is in
    (the soft subtitle track must say so); default the form's. The transcript files are looked for beside
    the clip (``<stem>-transkription.<format>``); ``transcript_json`` may point elsewhere. The SRT's
    companion (the .vtt of the same name, or the .srt of a .vtt) is looked for beside it.
    """
    from pipeline import __version__, media

    folder = clip.parent
    facts = measure_clip(clip)
    if files_ready is not None:
        files_ready()
    results = check_clip(facts, form)
    files = [CheckedFile("clip", clip.name)]
    not_checked: list[str] = []
    if facts.audio is None:
        not_checked.append("loudness and true peak: the clip has no sound")

    used_timeline = list(timeline) if timeline is not None else None
    if used_timeline is None and run_json is not None:
        used_timeline, why = _timeline_from_run(run_json, clip, facts.duration_ms)
        files.append(
            CheckedFile("run report", _relative(run_json, folder), f"not used: {why}" if why else "")
        )
    elif used_timeline is None:
        files.append(CheckedFile("run report", None))
    if used_timeline is None:
        not_checked.append("length of each statement: needs the run's timeline (run.json)")
    results += check_durations(facts.duration_ms, form, used_timeline)
    results.append(check_soft_track(facts, form, language))

    document: Mapping[str, Any] | None = None
    if transcript_json is not None and transcript_json.is_file():
        try:
            loaded = json.loads(transcript_json.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            not_checked.append(f"the transcript's words: {transcript_json.name} cannot be read ({error})")
        else:
            if isinstance(loaded, dict):
                document = loaded
            else:
                not_checked.append(f"the transcript's words: {transcript_json.name} is not a transcript")

    cues: list[Cue] | None = None
    if subtitles is not None:
        data = _read_bytes(subtitles)
        kind = subtitle_kind(subtitles.name).upper()
        files.append(
            CheckedFile(f"subtitles ({kind})", _relative(subtitles, folder) if data is not None else None)
        )
        file_result, cues = check_subtitle_file(subtitles.name, data, form)
        results.append(file_result)
        other = _companion(subtitles)
        other_data = _read_bytes(other)
        other_kind = subtitle_kind(other.name).upper()
        files.append(
            CheckedFile(
                f"subtitles ({other_kind})", _relative(other, folder) if other_data is not None else None
            )
        )
        if cues is not None:
            other_cues = (
                check_subtitle_file(other.name, other_data, form)[1] if other_data is not None else None
            )
            results.append(check_subtitle_pair(subtitles.name, cues, other.name, other_cues))
            speech = speech_spans(cues, document) if document is not None else None
            results += check_subtitles(cues, form, facts.duration_ms, speech=speech, timeline=used_timeline)
    else:
        files.append(CheckedFile("subtitles (SRT)", None, f"looked for {clip.stem}.*.srt"))
        results.append(check_subtitle_file(f"{clip.stem}.srt", None, form)[0])
    if cues is None:
        not_checked.append("the subtitle rules: no readable subtitle file")

    present: dict[str, bool] = {}
    for fmt in form.transcript.formats:
        path = (
            transcript_json if fmt == "json" and transcript_json is not None else transcript_path(clip, fmt)
        )
        present[fmt] = path.is_file() and path.stat().st_size > 0
        files.append(CheckedFile(f"transcript ({fmt})", _relative(path, folder) if present[fmt] else None))
    if transcript_json is not None and "json" not in form.transcript.formats:
        files.append(CheckedFile("transcript (json)", _relative(transcript_json, folder)))
    if document is None and cues is not None and transcript_json is None:
        not_checked.append("the transcript's words: no transcript JSON beside the clip")
    results += check_transcript(form, present, cues, document)

    choice = media.ffmpeg_choice()  # the measurements above ran with it, so it is there
    ffmpeg = choice.version
    return QcReport(
        clip=clip.name,
        form=form.name,
        agreed_with=form.agreed_with,
        checked_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        tools=f"hearing-pipeline {__version__}, ffmpeg {ffmpeg}",
        files=tuple(files),
        results=tuple(results),
        not_checked=tuple(not_checked),
        ffmpeg=choice.to_json(),
    )


def write_qc_report(delivery_dir: Path, report: QcReport) -> list[str]:
    """``qc-report.json`` and ``qc-report.txt`` in the delivery, each complete or not at all; returns
    their names."""
    from pipeline.files import write_json, write_text

    write_json(delivery_dir / REPORT_JSON, report.to_json())
    write_text(delivery_dir / REPORT_TXT, report.to_text())
    return [REPORT_JSON, REPORT_TXT]
