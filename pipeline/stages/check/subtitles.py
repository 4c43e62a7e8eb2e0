"""The subtitle files beside the clip, re-read as a player reads them and re-judged by the shared timing
model (``pipeline.stages.timing``): the file parses, the SRT and the WebVTT agree, and every subtitle rule
of the form holds.

Pure: ``check_subtitle_file``, ``check_subtitle_pair``, ``check_subtitles``, ``subtitle_breaks`` and
``speech_spans``.

A cue above ``max_cps`` is a warning, not a failure, when no legal timing could show it slowly enough:
``timing.judge`` decides, with the room ``timing.room`` gives it (between its neighbours with the minimum
gap, never more than 1.5 s before its first word or after its last, inside the part of the clip it is in,
from run.json, ending the minimum gap before that part does, never longer than ``max_duration``), the same
room the pipeline lengthens a fast cue into. Where its words are spoken comes from the word times of the
delivered transcript JSON; without them the cue's own start and end stand for the speech.

The subtitle rules are judged on the SRT (or the file given); the WebVTT beside it must carry the same
cues. A delivery without them fails: docs/design.md delivers both in every subtitle mode.
"""

from __future__ import annotations

import collections
import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pipeline.config import Form
from pipeline.stages import timing
from pipeline.stages.check.results import _RANK, EXAMPLES, CheckResult, Status, _result, _worst
from pipeline.stages.check.transcript import words
from pipeline.stages.subtitles.io import looks_like_timing, parse_srt, parse_vtt
from pipeline.stages.subtitles.rules import Cue, RuleBreak, SubtitleRules, cue_name, rule_titles
from pipeline.timefmt import clock

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
        "subtitles.inside_clip": f"last ends {clock(max((c.end_ms for c in cues), default=0))}",
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
    lined = timing.line_up([words(cue.text) for cue in cues], [token for token, _, _ in timed])
    if lined is None:
        return None
    return [
        (min(s for _, s, _ in timed[taken]), max(e for _, _, e in timed[taken]))
        if taken is not None
        else None
        for taken in lined
    ]
