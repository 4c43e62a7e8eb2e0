"""meeting.yaml as the page of `hearing start` shows and sends it: the page's values from a meeting
(``page_values``), the meeting a save makes of what the page sent (``meeting_of``), and why a field
cannot be saved, in Danish and next to the field (``field_errors``). Pure.

What the page does not show (the spoken language, the vocabulary, the next steps) is kept as it was:
the page changes the fields it shows and nothing else.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from pipeline.config import DefaultConsent, Meeting, StatementEntry
from pipeline.files import nfc
from pipeline.stages.ingest import normalise_entry_path
from pipeline.texts import start as texts

FACTS = ("title", "date", "place", "organiser", "committee", "committee_meeting")
CONSENTS = ("committee", "archive", "name_on_screen", "publish")
CONTACT = ("name", "role", "email", "phone")
GROUP = ("name", "coordinator", "meets", "costs", "costs_covered_by")
AGREEMENT = ("who", "what", "by")
ROW_TEXTS = ("speaker", "group", "topic", "trim_start", "trim_end")


class BadPage(ValueError):
    """What the page sent is not in the shape it sends (a bug, or not the page): 400."""


@dataclass(frozen=True)
class Row:
    """One recording as the page lists it: its id on the page (``r1``...), its file and its entry."""

    id: str
    relpath: str
    entry: StatementEntry | None


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def entry_key(file: str) -> str | None:
    clean = normalise_entry_path(file)
    return None if clean is None else nfc(clean)


def rows_in_order(meeting: Meeting, found: list[str]) -> tuple[list[Row], list[str]]:
    """Every recording found, in the clip's order as a run takes it (meeting.yaml's statements first,
    then the others in file-name order, ``found``'s order), each with its meeting.yaml entry; and the
    files meeting.yaml lists that are not in the folder."""
    by_key = {nfc(relpath): relpath for relpath in found}
    rows: list[Row] = []
    listed: set[str] = set()
    missing: list[str] = []
    for entry in meeting.statements or []:
        key = entry_key(entry.file)
        if key is None or key not in by_key:
            missing.append(entry.file)
            continue
        if by_key[key] in listed:
            continue
        listed.add(by_key[key])
        rows.append(Row("", by_key[key], entry))
    rows += [Row("", relpath, None) for relpath in found if relpath not in listed]
    return [Row(f"r{n}", row.relpath, row.entry) for n, row in enumerate(rows, start=1)], missing


def page_values(meeting: Meeting, rows: list[Row], default: DefaultConsent) -> dict[str, Any]:
    """The page's fields filled from ``meeting`` (as values, never as placeholders); each consent as
    meeting.yaml gives it, else as the form's ``default_consent`` does."""
    follow = meeting.follow_up
    contact = follow.contact if follow else None
    return {
        "meeting": {name: _text(getattr(meeting, name, None)) for name in FACTS},
        "statements": [
            {
                "id": row.id,
                "speaker": _text(row.entry.speaker if row.entry else None),
                "group": _text(row.entry.group if row.entry else None),
                "topic": _text(row.entry.topic if row.entry else None),
                "trim_start": _text(row.entry.trim.start if row.entry and row.entry.trim else None),
                "trim_end": _text(row.entry.trim.end if row.entry and row.entry.trim else None),
                "consent": {name: _consent(row.entry, default, name) for name in CONSENTS},
            }
            for row in rows
        ],
        "follow_up": {
            "contact": {name: _text(getattr(contact, name, None)) for name in CONTACT},
            "groups": [{n: _text(getattr(g, n)) for n in GROUP} for g in (follow.groups if follow else [])],
            "agreements": [
                {n: _text(getattr(a, n)) for n in AGREEMENT} for a in (follow.agreements if follow else [])
            ],
            "next_meeting": _text(follow.next_meeting if follow else None),
            "next_meeting_place": _text(follow.next_meeting_place if follow else None),
        },
    }


def _consent(entry: StatementEntry | None, default: DefaultConsent, name: str) -> bool:
    given = getattr(entry.consent, name) if entry else None
    return bool(getattr(default, name) if given is None else given)


# ------------------------------------------------------------------------------------ what was sent


@dataclass(frozen=True)
class Made:
    """What a save makes of the page's values: meeting.yaml's mapping, the problems found before the
    model looks (by the page's field), and where each group and agreement kept stands on the page (the
    empty rows of the page are left out)."""

    data: dict[str, Any]
    problems: dict[str, str]
    groups: list[int]
    agreements: list[int]


def _mapping(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadPage(f"{where}: not an object")
    return value


def _string(data: dict[str, Any], name: str, where: str) -> str:
    value = data.get(name, "")
    if not isinstance(value, str):
        raise BadPage(f"{where}.{name}: not a string")
    return value.strip()


def _date(text: str) -> object:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return text  # the model says why, at its field


def _seconds(text: str, field: str, problems: dict[str, str]) -> object:
    try:
        value = float(text.replace(",", "."))
    except ValueError:
        return text
    if not math.isfinite(value):
        problems[field] = texts.field_problem("float_parsing", "")
    return value


def _facts(
    sent: dict[str, Any], names: tuple[str, ...], where: str, dates: tuple[str, ...] = ()
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in names:
        text = _string(sent, name, where)
        if text:
            out[name] = _date(text) if name in dates else text
    return out


def meeting_of(kept: dict[str, Any], sent: Any, rows: list[Row]) -> Made:
    """The meeting.yaml mapping the page's ``sent`` values make, over ``kept`` (what meeting.yaml held:
    the fields the page does not show stay as they were); and the problems found before the model
    looks (the key of the page's field, a Danish sentence). BadPage where ``sent`` is not the page's
    shape."""
    sent = _mapping(sent, "body")
    problems: dict[str, str] = {}
    data = {k: v for k, v in kept.items() if k not in (*FACTS, "statements", "follow_up")}
    facts = _facts(_mapping(sent.get("meeting"), "meeting"), FACTS, "meeting", ("date", "committee_meeting"))
    # The facts first, in the order a person writes them.
    data = {**facts, **data}

    by_id = {row.id: row for row in rows}
    given = sent.get("statements")
    if not isinstance(given, list) or sorted(_mapping(s, "statement").get("id", "") for s in given) != sorted(
        by_id
    ):
        raise BadPage("statements: not every recording of the page, once each")
    statements = []
    for item in given:
        row = by_id[item["id"]]
        entry: dict[str, Any] = {"file": row.relpath}
        entry.update(_facts(item, ("speaker", "group", "topic"), row.id))
        consent = _mapping(item.get("consent"), f"{row.id}.consent")
        if any(not isinstance(consent.get(name), bool) for name in CONSENTS):
            raise BadPage(f"{row.id}.consent: a yes or no for each consent")
        entry["consent"] = {name: consent[name] for name in CONSENTS}
        trim: dict[str, Any] = {}
        for name, key in (("trim_start", "start"), ("trim_end", "end")):
            text = _string(item, name, row.id)
            if text:
                trim[key] = _seconds(text, f"statements.{row.id}.{name}", problems)
        if trim:
            entry["trim"] = trim
        statements.append(entry)
    if statements:
        data["statements"] = statements

    follow = _mapping(sent.get("follow_up"), "follow_up")
    old = kept.get("follow_up")
    old_follow: dict[str, Any] = old if isinstance(old, dict) else {}
    follow_up: dict[str, Any] = {
        k: v
        for k, v in old_follow.items()
        if k not in ("contact", "groups", "agreements", "next_meeting", "next_meeting_place")
    }
    contact = _facts(_mapping(follow.get("contact"), "contact"), CONTACT, "contact")
    if contact:
        follow_up["contact"] = contact
    groups = [_facts(_mapping(g, "group"), GROUP, "group") for g in _list(follow.get("groups"), "groups")]
    agreements = [
        _facts(_mapping(a, "agreement"), AGREEMENT, "agreement", ("by",))
        for a in _list(follow.get("agreements"), "agreements")
    ]
    if any(groups):
        follow_up["groups"] = [g for g in groups if g]
    if any(agreements):
        follow_up["agreements"] = [a for a in agreements if a]
    follow_up.update(_facts(follow, ("next_meeting", "next_meeting_place"), "follow_up", ("next_meeting",)))
    if follow_up:
        data["follow_up"] = follow_up
    return Made(
        data,
        problems,
        [n for n, g in enumerate(groups) if g],
        [n for n, a in enumerate(agreements) if a],
    )


def _list(value: object, where: str) -> list[Any]:
    if not isinstance(value, list) or len(value) > 200:
        raise BadPage(f"{where}: not a list")
    return value


def page_field(loc: tuple[int | str, ...], made: Made, rows: list[Row]) -> str:
    """The key of the page's field a model error is about (``statements.r2.speaker``)."""
    data = made.data
    parts = list(loc)
    if not parts:
        return ""
    head = parts[0]
    if head in FACTS:
        return f"meeting.{head}"
    if head == "statements" and len(parts) >= 2 and isinstance(parts[1], int):
        files = [s["file"] for s in data.get("statements", [])]
        ids = {row.relpath: row.id for row in rows}
        row_id = ids.get(files[parts[1]], "") if parts[1] < len(files) else ""
        rest = parts[2:]
        if rest[:1] == ["trim"]:
            return f"statements.{row_id}.trim_{'start' if rest[1:2] == ['start'] else 'end'}"
        return f"statements.{row_id}.{rest[0] if rest else 'speaker'}"
    if head == "follow_up" and len(parts) >= 2:
        if parts[1] in ("groups", "agreements") and len(parts) >= 3 and isinstance(parts[2], int):
            shown = made.groups if parts[1] == "groups" else made.agreements
            if parts[2] < len(shown):
                parts[2] = shown[parts[2]]
        return "follow_up." + ".".join(str(p) for p in parts[1:])
    return ".".join(str(p) for p in parts)


def field_errors(error: ValidationError, made: Made, rows: list[Row]) -> dict[str, str]:
    """Each of the model's errors as the Danish sentence shown next to its field on the page."""
    found: dict[str, str] = {}
    for item in error.errors(include_url=False):
        loc = tuple(p for p in item["loc"] if not (isinstance(p, str) and p in ("float", "int", "str")))
        key = page_field(loc, made, rows)
        context = dict(item.get("ctx") or {})
        found.setdefault(key, texts.field_problem(item["type"], item["msg"], context))
    return found
