"""How long the raw recordings and the work cache are kept: the periods meeting.yaml and the form give
(``retention: {recordings: 5y, work: 90d}``), the dates they come to, and whether a date has passed.

Pure: values in, values out. The periods are checked where the files are read (``check_period``, from
``config``); the dates are worked out once per run (``resolve``) and recorded in the archive, which
``hearing verify``, ``hearing run`` and ``hearing purge`` read back (``recorded``).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError

# A whole number of days, weeks, months or years, as people write a retention period ("5y", "90d").
_PERIOD = re.compile(r"([1-9][0-9]{0,5})([dwmy])")
UNITS = {"d": "days", "w": "weeks", "m": "months", "y": "years"}
# A hundred years in each unit: longer is a typing mistake, not a retention period.
LONGEST = {"d": 36_525, "w": 5_218, "m": 1_200, "y": 100}
ALLOWED = "a whole number and a unit: d (days), w (weeks), m (months) or y (years), e.g. 90d or 5y"

RECORDINGS = "recordings"
WORK = "work"
WHAT = {RECORDINGS: "the recordings in the archive", WORK: "the work cache, previews and drafts"}

MEETING_DATE = "meeting date"
FIRST_ARCHIVED = "first archived"
RUN_DATE = "run date"


def check_period(value: str) -> str:
    """A retention period as written: 1 to 100 years' worth of d, w, m or y; ValueError otherwise (the
    caller names the file and the field)."""
    found = _PERIOD.fullmatch(value)
    if not found:
        raise ValueError(f"must be {ALLOWED}")
    count, unit = int(found[1]), found[2]
    if count > LONGEST[unit]:
        raise ValueError(f"at most {LONGEST[unit]}{unit} (a hundred years); {ALLOWED}")
    return value


def add_period(start: dt.date, period: str) -> dt.date:
    """``start`` plus ``period``. A month or year that lands past the end of its month (31 January plus
    one month, 29 February plus a year) ends on that month's last day. OverflowError past year 9999."""
    count, unit = int(period[:-1]), period[-1]
    if unit in "dw":
        return start + dt.timedelta(days=count * (7 if unit == "w" else 1))
    months = start.month - 1 + count * (12 if unit == "y" else 1)
    year, month = start.year + months // 12, months % 12 + 1
    if year > dt.MAXYEAR:
        raise OverflowError(f"{start.isoformat()} plus {period} is past the year {dt.MAXYEAR}")
    return dt.date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class Kept:
    """How long one kind of thing is kept: the period, the date it ends on, and who set it."""

    period: str
    until: dt.date
    source: str  # "form" or "meeting.yaml"

    def passed(self, today: dt.date) -> bool:
        """Kept up to and including ``until``; due for removal from the day after."""
        return today > self.until


@dataclass(frozen=True)
class Retention:
    """The retention dates of one meeting, counted from ``basis`` (the meeting's date, else the date its
    recordings were first archived, else the date of this run)."""

    basis: dt.date
    basis_kind: str  # MEETING_DATE, FIRST_ARCHIVED or RUN_DATE
    recordings: Kept | None = None
    work: Kept | None = None

    def kept(self) -> dict[str, Kept]:
        return {k: v for k, v in ((RECORDINGS, self.recordings), (WORK, self.work)) if v is not None}

    def due(self, today: dt.date) -> dict[str, Kept]:
        """What is kept no longer, by kind (RECORDINGS, WORK)."""
        return {kind: kept for kind, kept in self.kept().items() if kept.passed(today)}

    def to_json(self) -> dict[str, Any]:
        return {
            "basis": {"date": self.basis.isoformat(), "kind": self.basis_kind},
            **{
                kind: {"period": kept.period, "until": kept.until.isoformat(), "source": kept.source}
                for kind, kept in self.kept().items()
            },
        }

    def bag_info(self) -> dict[str, str]:
        """bag-info.txt's retention fields: the dates an archivist reads without opening the provenance."""
        fields = {"Retention-Basis": f"{self.basis.isoformat()} ({self.basis_kind})"}
        for kind, kept in self.kept().items():
            label = kind.capitalize()
            fields[f"Retention-{label}-Period"] = f"{kept.period} (set by {kept.source})"
            fields[f"Retention-{label}-Until"] = kept.until.isoformat()
        return fields


def of_run(
    form: Any,
    meeting: Any,
    *,
    form_where: Path | str,
    meeting_file: Path | str | None,
    first_archived: dt.date | None,
) -> Retention | None:
    """``resolve`` for a validated form and meeting.yaml (config.Form, config.Meeting), today."""
    return resolve(
        form.retention.periods(),
        meeting.retention.periods() if meeting.retention else {},
        form_where=form_where,
        meeting_file=meeting_file,
        meeting_date=meeting.date,
        first_archived=first_archived,
        today=dt.date.today(),
    )


def resolve(
    form: Mapping[str, str | None],
    meeting: Mapping[str, str | None],
    *,
    form_where: Path | str,
    meeting_file: Path | str | None,
    meeting_date: dt.date | None,
    first_archived: dt.date | None,
    today: dt.date,
) -> Retention | None:
    """The retention dates of a run, from the form's and meeting.yaml's periods (by kind); None where
    neither sets one.

    The form is what was agreed with the official, so its period wins; meeting.yaml may set one the form
    leaves open, and one that differs from the form's is refused (ConfigError) rather than silently
    dropped. Counted from the meeting's date; without one, from the date the recordings were first
    archived (a later run does not move the date), and for a first run from today.
    """
    kept: dict[str, tuple[str, str, Path | str]] = {}
    for kind in (RECORDINGS, WORK):
        agreed, given = form.get(kind), meeting.get(kind)
        if agreed and given and agreed != given:
            raise ConfigError(
                meeting_file or "meeting.yaml",
                f"retention.{kind}",
                f"{given} differs from the period agreed with the official in the form ({form_where}: "
                f"retention.{kind}: {agreed}); remove it from meeting.yaml or ask the official for a form "
                "with the new period",
                given,
            )
        if agreed:
            kept[kind] = (agreed, "form", form_where)
        elif given:
            kept[kind] = (given, "meeting.yaml", meeting_file or "meeting.yaml")
    if not kept:
        return None
    if meeting_date is not None:
        basis, basis_kind = meeting_date, MEETING_DATE
    elif first_archived is not None:
        basis, basis_kind = first_archived, FIRST_ARCHIVED
    else:
        basis, basis_kind = today, RUN_DATE
    dates: dict[str, Kept] = {}
    for kind, (period, source, where) in kept.items():
        try:
            dates[kind] = Kept(period, add_period(basis, period), source)
        except (OverflowError, ValueError):
            raise ConfigError(
                where,
                f"retention.{kind}",
                f"{period} from the {basis_kind} {basis.isoformat()} ends past the year {dt.MAXYEAR}",
                period,
            ) from None
    return Retention(basis, basis_kind, dates.get(RECORDINGS), dates.get(WORK))


def recorded(bag_info: Mapping[str, Any]) -> Retention | None:
    """The retention dates a bag's bag-info.txt records (``Retention.bag_info``); None where it records
    none or they cannot be read (a hand-edited bag-info: ``hearing verify`` judges its checksum)."""

    def one(label: str) -> str | None:
        value = bag_info.get(label)
        return value.strip() if isinstance(value, str) else None

    def date_of(text: str | None) -> dt.date | None:
        try:
            return dt.date.fromisoformat(text[:10]) if text else None
        except ValueError:
            return None

    basis_text = one("Retention-Basis")
    basis = date_of(basis_text)
    if basis is None or basis_text is None:
        return None
    kind_found = re.search(r"\(([^)]*)\)", basis_text)
    kinds: dict[str, Kept] = {}
    for kind in (RECORDINGS, WORK):
        label = kind.capitalize()
        until = date_of(one(f"Retention-{label}-Until"))
        period_text = one(f"Retention-{label}-Period") or ""
        source = re.search(r"set by ([^)]*)\)", period_text)
        if until is not None:
            kinds[kind] = Kept(period_text.split(" ")[0], until, source[1] if source else "unknown")
    if not kinds:
        return None
    return Retention(
        basis, kind_found[1] if kind_found else "unknown", kinds.get(RECORDINGS), kinds.get(WORK)
    )


def due_line(kind: str, kept: Kept, retention: Retention, remedy: str) -> str:
    """The one warning line that says a retention date has passed."""
    return (
        f"retention: {WHAT[kind]} were to be kept until {kept.until.isoformat()} ({kept.period} from the "
        f"{retention.basis_kind} {retention.basis.isoformat()}, set by {kept.source}); that date has "
        f"passed: {remedy}"
    )


def passed_lines(retention: Retention | None, out_dir: Any, today: dt.date) -> list[str]:
    """The warning line of each retention date passed by ``today``, each naming the purge that is due."""
    if retention is None:
        return []
    lines = []
    for kind, kept in retention.due(today).items():
        flag = " --recordings" if kind == RECORDINGS else ""
        lines.append(due_line(kind, kept, retention, f"`hearing purge {out_dir}{flag}` removes them"))
    return lines
