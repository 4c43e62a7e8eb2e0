"""The result of one check, and what every check shares: its status, how results are made and ranked, and
how times are written in a result's text. The underscored helpers are the check package's own, for its
modules only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Status = Literal["pass", "warn", "fail"]
_RANK: dict[str, int] = {"pass": 0, "warn": 1, "fail": 2}

EXAMPLES = 4  # offending cues named in a check's detail; the rest are counted


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


def _clock(ms: int) -> str:
    ms = max(ms, 0)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def _seconds(ms: int) -> str:
    # To the hundredth: a clip 40 ms over its limit must not read as exactly at it.
    if ms >= 60_000:
        return f"{ms / 1000:.2f} s ({ms // 60_000}:{ms // 1000 % 60:02d})"
    return f"{ms / 1000:.2f} s"
