"""The QC report's own lines (``qc-report.txt`` and the verdict in ``qc-report.json``), each in Danish and
English: the official reads the Danish, a technician or another tool the English. The checks' results
themselves are written in English beside each check (pipeline.stages.check)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pipeline.texts import documents

if TYPE_CHECKING:
    from pipeline.model_note import ModelNote

SEPARATOR = " / "  # between the Danish and the English of one line


def conforms(warnings: int) -> str:
    note = f" ({warnings} advarsler / warnings)" if warnings else ""
    return f"Klippet OVERHOLDER den aftalte form / The clip conforms to the agreed form{note}"


DOES_NOT_CONFORM = "Klippet OVERHOLDER IKKE den aftalte form / The clip does NOT conform to the agreed form"


def failed(checks: Sequence[str]) -> str:
    return f"Fejl i / failed: {', '.join(checks)}"


def danish(line: str) -> str:
    """The Danish half of a bilingual line."""
    return line.split(SEPARATOR)[0]


def title(clip: str) -> str:
    return f"QC-rapport / QC report: {clip}"


def form(name: str, agreed_with: str | None) -> str:
    agreed = f" (aftalt med / agreed with {agreed_with})" if agreed_with else ""
    return f"Form: {name}{agreed}"


def measured(at: str, tools: str) -> str:
    return f"Målt / measured: {at} · {tools}"


def model(note: ModelNote | None) -> list[str]:
    """The speech model's lines, in Danish and then English, as the transcript and the letter say them;
    where the model is not known, one line that says so."""
    if note is None:
        return [
            "Talemodel / speech model: ikke kendt / not known (hverken en transskription i JSON eller "
            "run.json ved klippet / neither a JSON transcript nor run.json beside the clip)"
        ]
    return [documents.model_line(note), f"{documents.MODEL_EN}: {documents.model_text_en(note)}"]


FILES = "Filer / files:"
NOT_FOUND = "ikke fundet / not found"
NOT_CHECKED = "Ikke kontrolleret / not checked:"
COLUMNS = ("Status", "Check", "Expected", "Measured")
STATUS = {"pass": "pass", "warn": "warn", "fail": "FAIL"}
