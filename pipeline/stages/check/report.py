"""The QC report: the files it looked at, every result, what could not be checked, its bilingual
(Danish and English) verdict and text, its JSON, and writing both into the delivery."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.model_note import ModelNote
from pipeline.stages.check.results import CheckResult
from pipeline.texts import documents as document_words
from pipeline.texts import report as words

VERSION = 1
REPORT_JSON = "qc-report.json"
REPORT_TXT = "qc-report.txt"


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
    # The speech model that wrote the transcript and its published Danish error rate, as the other
    # documents name it; None: neither the run nor a transcript beside the clip says which it was.
    model: ModelNote | None = None

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
            return [words.conforms(len(self.warnings))]
        return [words.DOES_NOT_CONFORM, words.failed([r.check for r in self.failures])]

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
            "model": {**self.model.to_json(), "text": document_words.model_text(self.model)}
            if self.model
            else None,
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
        out.append(words.title(self.clip))
        out.append(words.form(self.form, self.agreed_with))
        out.append(words.measured(self.checked_at, self.tools))
        if self.ffmpeg:
            out.append(f"ffmpeg: {self.ffmpeg['path']} ({self.ffmpeg['reason']})")
        out += words.model(self.model)
        out.append("")
        out.append(words.FILES)
        width = max((len(f.role) for f in self.files), default=0)
        for item in self.files:
            name = item.name if item.name is not None else words.NOT_FOUND
            note = f"  ({item.note})" if item.note else ""
            out.append(f"  {item.role:<{width}}  {name}{note}")
        out.append("")
        header = words.COLUMNS
        rows = [
            (words.STATUS[r.status], f"{r.check}: {r.title}", r.expected, r.measured) for r in self.results
        ]
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]
        out.append(_row(header, widths))
        out.append(_row((*("-" * w for w in widths), "-" * len(header[3])), widths))
        for result, row in zip(self.results, rows, strict=True):
            out.append(_row(row, widths))
            if result.detail and result.status != "pass":
                out += [" " * (widths[0] + 2) + "↳ " + line for line in result.detail.splitlines()]
        if self.not_checked:
            out.append("")
            out.append(words.NOT_CHECKED)
            out += [f"  - {reason}" for reason in self.not_checked]
        return "\n".join(out) + "\n"


def _row(cells: tuple[str, ...], widths: Sequence[int]) -> str:
    first = [f"{cell:<{widths[i]}}" for i, cell in enumerate(cells[:-1])]
    return "  ".join([*first, cells[-1]]).rstrip()


def write_qc_report(delivery_dir: Path, report: QcReport) -> list[str]:
    """``qc-report.json`` and ``qc-report.txt`` in the delivery, each complete or not at all; returns
    their names."""
    from pipeline.files import write_json, write_text

    write_json(delivery_dir / REPORT_JSON, report.to_json())
    write_text(delivery_dir / REPORT_TXT, report.to_text())
    return [REPORT_JSON, REPORT_TXT]
