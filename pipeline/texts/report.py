"""The QC report's own lines (``qc-report.txt`` and the verdict in ``qc-report.json``), each in Danish and
English: the official reads the Danish, a technician or another tool the English. The checks' results
themselves are written in English beside each check (pipeline.stages.check)."""

from __future__ import annotations

from collections.abc import Sequence

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


FILES = "Filer / files:"
NOT_FOUND = "ikke fundet / not found"
NOT_CHECKED = "Ikke kontrolleret / not checked:"
COLUMNS = ("Status", "Check", "Expected", "Measured")
STATUS = {"pass": "pass", "warn": "warn", "fail": "FAIL"}
