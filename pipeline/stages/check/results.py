"""The result of one check, and what every check shares: its status, how results are made and ranked, and
The underscored helpers are the check package's own, for its
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
