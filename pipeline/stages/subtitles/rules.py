"""The form's subtitle rules: their numbers, the cue they judge, and every rule a list of cues breaks.

``SubtitleRules`` is made from a form (``from_form``) and is the one place the form's subtitle fields are
checked against each other: a form it refuses is refused at the edge (exit 3, naming the field), never
after the work. ``rule_breaks`` lists what a list of cues breaks, for the builder, a person's cues and
the check of the delivered files alike; ``pipeline.stages.timing.judge`` gives each break its final
severity. The rules and their sources are in docs/standards.md, section "Subtitles".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from pipeline.timefmt import clock


class _SubtitleFields(Protocol):
    @property
    def max_lines(self) -> int: ...
    @property
    def max_chars_per_line(self) -> int: ...
    @property
    def max_cps(self) -> float: ...
    @property
    def min_duration(self) -> float: ...
    @property
    def max_duration(self) -> float: ...
    @property
    def min_gap_frames(self) -> int: ...


class _VideoFields(Protocol):
    @property
    def fps(self) -> float: ...


class Form(Protocol):
    """The fields of a form (``pipeline.config.Form``) the rules are made from."""

    @property
    def subtitles(self) -> _SubtitleFields: ...
    @property
    def video(self) -> _VideoFields: ...


VERSION = 1

# ------------------------------------------------------------------------------------------- the rules


class RulesError(ValueError):
    """Subtitle rules that contradict themselves; names the form's field, its value and what is allowed."""

    def __init__(self, field: str, value: object, problem: str) -> None:
        self.field = field
        self.value = value
        self.problem = problem
        super().__init__(f"{field}: {problem} (got {value!r})")


@dataclass(frozen=True)
class SubtitleRules:
    """The form's subtitle rules in milliseconds; defaults are the numbers of docs/standards.md."""

    max_lines: int = 2
    max_chars_per_line: int = 42
    warn_chars_per_line: int = 37
    max_cps: float = 17.0
    warn_cps: float = 15.0
    min_duration_ms: int = 833
    max_duration_ms: int = 7000
    min_gap_ms: int = 80
    close_gap_ms: int = 500
    hang_ms: int = 500  # how long a cue may stay up after its last word
    max_shift_ms: int = 1500  # never shown more than this before or after the speech
    fps: float = 25.0
    pause_ms: int = 600  # a pause this long always ends a cue

    def __post_init__(self) -> None:
        problem = self.problem()
        if problem is not None:
            raise RulesError(*problem)

    def problem(self) -> tuple[str, object, str] | None:
        """The first way these rules contradict themselves, as (the form's field, its value, what is
        allowed), or None. The form's fields are checked here, and only here, against each other."""
        if self.fps <= 0:
            return "video.fps", self.fps, "must be above 0"
        if self.max_lines < 1:
            return "subtitles.max_lines", self.max_lines, "must be at least 1"
        if self.max_chars_per_line < 1:
            return "subtitles.max_chars_per_line", self.max_chars_per_line, "must be at least 1"
        if self.max_cps <= 0:
            return "subtitles.max_cps", self.max_cps, "must be above 0"
        frame = self.frame_ms
        if self.min_duration_ms < frame:
            return (
                "subtitles.min_duration", self.min_duration_ms / 1000,
                f"must be at least one frame ({frame / 1000:g} s at {self.fps:g} fps)",
            )  # fmt: skip
        if self.max_duration_ms <= self.min_duration_ms:
            return (
                "subtitles.max_duration", self.max_duration_ms / 1000,
                f"must be greater than min_duration ({self.min_duration_ms / 1000:g} s)",
            )  # fmt: skip
        if self.min_gap_ms < 0:
            return "subtitles.min_gap_frames", self.min_gap_ms, "must be 0 or more"
        if self.min_gap_ms > self.close_gap_ms:
            frames = self.min_gap_ms * self.fps / 1000
            most = math.floor(self.close_gap_ms * self.fps / 1000 + 1e-6)
            return (
                "subtitles.min_gap_frames", round(frames),
                f"{frames:g} frames at {self.fps:g} fps is {self.min_gap_ms} ms; at most {most} frames at "
                f"{self.fps:g} fps ({self.close_gap_ms / 1000:g} s), since gaps up to "
                f"{self.close_gap_ms / 1000:g} s are closed to this minimum",
            )  # fmt: skip
        return None

    @classmethod
    def from_form(cls, form: Form) -> SubtitleRules:
        sub = form.subtitles
        fps = float(form.video.fps)
        return cls(
            max_lines=sub.max_lines,
            max_chars_per_line=sub.max_chars_per_line,
            warn_chars_per_line=min(cls.warn_chars_per_line, sub.max_chars_per_line),
            max_cps=float(sub.max_cps),
            warn_cps=min(cls.warn_cps, float(sub.max_cps)),
            min_duration_ms=round(sub.min_duration * 1000),
            max_duration_ms=round(sub.max_duration * 1000),
            # Whole milliseconds, rounded up so that the gap is never less than the frames asked for.
            min_gap_ms=_ceil_ms(sub.min_gap_frames * 1000 / fps),
            fps=fps,
        )

    @property
    def frame_ms(self) -> int:
        return _ceil_ms(1000 / self.fps)

    def needed_ms(self, chars: int) -> int:
        """How long a cue of ``chars`` characters must stay up: the minimum, or longer to read it."""
        return min(self.max_duration_ms, max(self.min_duration_ms, math.ceil(chars * 1000 / self.max_cps)))


def _ceil_ms(value: float) -> int:
    # Float division leaves 80.00000000001 for 2 frames at 25 fps; that is 80 ms, not 81.
    return math.ceil(value - 1e-6)


# -------------------------------------------------------------------------------------------- the cue


@dataclass(frozen=True)
class Cue:
    start_ms: int
    end_ms: int
    lines: tuple[str, ...]
    kind: Literal["speech", "card"] = "speech"
    statement_id: str | None = None
    warnings: tuple[str, ...] = field(default_factory=tuple)  # for the review step, in plain words

    @property
    def text(self) -> str:
        return " ".join(self.lines)

    @property
    def chars(self) -> int:
        """Characters as Netflix counts them: spaces and punctuation count, line breaks do not."""
        return sum(len(line) for line in self.lines)

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms

    @property
    def cps(self) -> float:
        """Reading speed in characters per second."""
        if self.duration_ms <= 0:
            return math.inf
        return self.chars * 1000 / self.duration_ms


def clean_text(text: str) -> str:
    """A word or caption as it is shown: no leading or doubled spaces, the ellipsis as one character."""
    return " ".join(text.split()).replace("...", "…")


# ---------------------------------------------------------------------------------------- rule breaks


@dataclass(frozen=True)
class RuleBreak:
    """One cue breaking one of the form's subtitle rules (docs/standards.md "Subtitles").

    ``rule`` is the check's name for it (``subtitles.gap``); ``severity`` "fail" breaks the form, "warn"
    is worth a look; ``kind`` is the short label the check counts by; ``detail`` names the cue.
    """

    rule: str
    severity: Literal["fail", "warn"]
    kind: str
    cue: int  # 1-based, in the order given
    detail: str


def cue_name(n: int, cue: Cue) -> str:
    text = cue.text if len(cue.text) <= 32 else cue.text[:31] + "…"
    return f"subtitle {n} at {clock(cue.start_ms)} {text!r}"


def rule_breaks(cues: Sequence[Cue], rules: SubtitleRules, clip_ms: int) -> list[RuleBreak]:
    """Every rule of the form the cues break, in one place for the builder, a person's edits and the
    check of the delivered files. A cue read too fast is a "fail" here; the check, which knows where the
    words are spoken, may find that no legal timing could do better and call it a "warn"."""
    breaks: list[RuleBreak] = []

    def hit(rule: str, severity: Literal["fail", "warn"], kind: str, n: int, detail: str) -> None:
        breaks.append(RuleBreak(rule, severity, kind, n, detail))

    gap = rules.min_gap_ms
    for n, cue in enumerate(cues, 1):
        name = cue_name(n, cue)
        if n > 1:
            before = cues[n - 2]
            between = cue.start_ms - before.end_ms
            if cue.start_ms < before.start_ms:
                hit("subtitles.order", "fail", "out of order", n, f"{name} starts before subtitle {n - 1}")
            elif between < 0:
                hit(
                    "subtitles.overlap", "fail", "overlapping", n,
                    f"{name} starts {-between} ms before subtitle {n - 1} ends",
                )  # fmt: skip
            elif between < gap:
                hit(
                    "subtitles.gap",
                    "fail",
                    f"below {gap} ms",
                    n,
                    f"{name}: {between} ms after subtitle {n - 1}",
                )
            elif gap < between <= rules.close_gap_ms:
                hit(
                    "subtitles.gap", "warn", f"up to {rules.close_gap_ms / 1000:g} s, not closed", n,
                    f"{name}: {between} ms after subtitle {n - 1}; gaps up to "
                    f"{rules.close_gap_ms / 1000:g} s are usually closed to {gap} ms",
                )  # fmt: skip
        if cue.end_ms <= cue.start_ms:
            hit(
                "subtitles.end_after_start",
                "fail",
                "end before they start",
                n,
                f"{name} ends at {clock(cue.end_ms)}",
            )
        if cue.start_ms < 0 or cue.end_ms > clip_ms:
            hit(
                "subtitles.inside_clip", "fail", "outside", n,
                f"{name} ends at {clock(cue.end_ms)}" if cue.start_ms >= 0 else f"{name} starts before 0",
            )  # fmt: skip
        if not cue.lines or any(not line.strip() for line in cue.lines):
            hit("subtitles.lines", "fail", "empty", n, f"{name} has an empty line")
        elif len(cue.lines) > rules.max_lines:
            hit("subtitles.lines", "fail", f"over {rules.max_lines}", n, f"{name} has {len(cue.lines)} lines")
        for number, line in enumerate(cue.lines, 1):
            if len(line) > rules.max_chars_per_line:
                hit(
                    "subtitles.chars_per_line", "fail", f"over {rules.max_chars_per_line}", n,
                    f"{name}, line {number}: {len(line)} characters",
                )  # fmt: skip
            elif len(line) > rules.warn_chars_per_line:
                hit(
                    "subtitles.chars_per_line", "warn", f"above {rules.warn_chars_per_line}", n,
                    f"{name}, line {number}: {len(line)} characters",
                )  # fmt: skip
        if cue.end_ms <= cue.start_ms:
            continue
        seconds = f"{cue.duration_ms / 1000:.3f} s"
        if cue.duration_ms < rules.min_duration_ms:
            hit("subtitles.min_duration", "fail", "too short", n, f"{name}: {seconds}")
        if cue.duration_ms > rules.max_duration_ms:
            hit("subtitles.max_duration", "fail", "too long", n, f"{name}: {seconds}")
        if cue.cps > rules.max_cps + 1e-9:
            hit(
                "subtitles.reading_speed", "fail", f"above {rules.max_cps:g}", n,
                f"{name}: {cue.cps:.2f} characters/s",
            )  # fmt: skip
        elif cue.cps > rules.warn_cps + 1e-9:
            hit(
                "subtitles.reading_speed", "warn", f"above {rules.warn_cps:g}", n,
                f"{name}: {cue.cps:.2f} characters/s",
            )  # fmt: skip
    return breaks


def rule_titles(rules: SubtitleRules, clip_ms: int | None = None) -> dict[str, tuple[str, str]]:
    """Each rule's name in words and what it asks for, as the check's report and the warnings say it."""
    return {
        "subtitles.order": ("subtitles in time order", "each starts after the one before"),
        "subtitles.end_after_start": ("each subtitle ends after it starts", "end > start"),
        "subtitles.overlap": ("no two subtitles at once", "no overlap"),
        "subtitles.gap": (
            "gap between subtitles",
            f"≥ {rules.min_gap_ms} ms; gaps up to {rules.close_gap_ms / 1000:g} s closed",
        ),
        "subtitles.inside_clip": (
            "subtitles within the clip",
            f"00:00:00,000 – {clock(clip_ms)}" if clip_ms is not None else "within the clip",
        ),
        "subtitles.lines": ("lines per subtitle", f"≤ {rules.max_lines}"),
        "subtitles.chars_per_line": (
            "characters per line",
            f"≤ {rules.max_chars_per_line} (note above {rules.warn_chars_per_line})",
        ),
        "subtitles.reading_speed": (
            "reading speed",
            f"≤ {rules.max_cps:g} characters/s (note above {rules.warn_cps:g})",
        ),
        "subtitles.min_duration": ("shortest time on screen", f"≥ {rules.min_duration_ms / 1000:g} s"),
        "subtitles.max_duration": ("longest time on screen", f"≤ {rules.max_duration_ms / 1000:g} s"),
    }
