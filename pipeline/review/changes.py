"""What a save from the page sends, before anything is written: the request body read as JSON (nesting
counted, no NaN), a statement's change checked field by field (``parse_change``), and the YAML fields it
leaves once saved (``fields_after``, the approval given, kept or taken back). Pure."""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.config import StatementEdit, not_text
from pipeline.stages import edits
from pipeline.stages.subtitles.io import unsafe_text
from pipeline.stages.subtitles.rules import Cue

MAX_DEPTH = 64  # the page's own saves nest 3 deep
MAX_CUES = 5000
MAX_CUE_TEXT = 2000


_JSON_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[{]|[\]}]', re.DOTALL)


def json_depth(text: str, limit: int) -> int:
    """How deep the arrays and objects of a JSON text nest, counted up to ``limit + 1`` and no further
    (brackets inside strings are text); linear in the text, with no recursion."""
    depth = deepest = 0
    for found in _JSON_TOKENS.finditer(text):
        mark = found.group()
        if mark in ("[", "{"):
            depth += 1
            deepest = max(deepest, depth)
            if deepest > limit:
                break
        elif mark in ("]", "}"):
            depth -= 1
    return deepest


def _no_constant(name: str) -> Any:
    raise BadChange(f"{name} is not a JSON number")


def read_json(body: bytes) -> Any:
    """A request body as JSON: UTF-8, nested at most ``MAX_DEPTH`` deep, without NaN or Infinity; else
    BadChange with the reason."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadChange(f"the body is not UTF-8 (byte {error.start})") from None
    if json_depth(text, MAX_DEPTH) > MAX_DEPTH:
        raise BadChange(f"the JSON nests deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(text or "null", parse_constant=_no_constant)
    except RecursionError:  # cannot happen after the count above; a traceback must not be the answer
        raise BadChange(f"the JSON nests deeper than {MAX_DEPTH} levels") from None
    except ValueError as error:  # JSONDecodeError, and integers of more digits than Python reads
        raise BadChange(f"not JSON: {str(error).splitlines()[0][:200]}") from None


class BadChange(ValueError):
    """A change the page sent that cannot be saved; the message says why, in one line."""


class Conflict(Exception):
    """A change made from an older version of the statement's files: someone else saved in between."""


def _optional_text(data: Mapping[str, Any], name: str, limit: int) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise BadChange(f"{name}: tekst på højst {limit} tegn, eller tom")
    value = " ".join(value.split())
    found = unsafe_text(value)
    if found is not None:
        raise BadChange(f"{name}: »{found[1]}« {texts_unsafe(found[0])}")
    # The rule of every text field of the tool (config), so the page takes what a hand edit may hold.
    bad = next((c for c in value if not_text(c, lines=False) is not None), None)
    if bad is not None:
        from pipeline import texts

        raise BadChange(texts.not_text(name, ord(bad)))
    value = unicodedata.normalize("NFC", value)
    return value or None


def texts_unsafe(reason: str) -> str:
    from pipeline import texts

    return texts.UNSAFE[reason]


def _optional_ms(data: Mapping[str, Any], name: str, duration_ms: int) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= duration_ms:
        raise BadChange(f"{name}: whole milliseconds from 0 to {duration_ms}, or null")
    return value


@dataclass(frozen=True)
class Change:
    """A statement as the page sent it."""

    version: str  # the version of the files the page started from
    cues: tuple[Cue, ...]  # recording-relative; a cue whose text was cleared is gone
    speaker: str | None
    topic: str | None
    in_ms: int | None
    out_ms: int | None
    approve: str | None  # who approves what is saved now
    withdraw: bool  # the approval is taken back


def parse_change(data: Any, duration_ms: int, machine_wrote: str = "") -> Change:
    """A statement as the page sent it: its cues and the fields a person set. Text that could not reach
    every file as typed is refused here, with the reason, before anything is written. The page never
    says when an approval was made: the server's clock does."""
    from pipeline import texts

    if not isinstance(data, dict):
        raise BadChange("expected a JSON object")
    raw = data.get("cues")
    if not isinstance(raw, list) or len(raw) > MAX_CUES:
        raise BadChange(f"cues: a list of at most {MAX_CUES}")
    limit = duration_ms + 60_000  # a person may let the last cue stand a little past the recording
    cues: list[Cue] = []
    for n, cue in enumerate(raw, 1):
        if not isinstance(cue, dict):
            raise BadChange(f"cue {n}: expected an object")
        start, end, text = cue.get("start_ms"), cue.get("end_ms"), cue.get("text")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)):
            raise BadChange(f"cue {n}: start_ms and end_ms must be whole milliseconds")
        assert isinstance(start, int) and isinstance(end, int)
        if not 0 <= start < end <= limit:
            raise BadChange(f"cue {n}: needs 0 <= start_ms < end_ms <= {limit}")
        if not isinstance(text, str) or len(text) > MAX_CUE_TEXT:
            raise BadChange(f"cue {n}: text of at most {MAX_CUE_TEXT} characters")
        lines = tuple(" ".join(line.split()) for line in text.splitlines())
        lines = tuple(line for line in lines if line)
        if lines:
            cues.append(Cue(start, end, lines))
    ordered = tuple(sorted(cues, key=lambda c: (c.start_ms, c.end_ms)))
    bad = edits.unsafe_cue(ordered, machine_wrote)
    if bad is not None:
        raise BadChange(texts.unsafe_line(*bad))
    in_ms = _optional_ms(data, "in_ms", duration_ms)
    out_ms = _optional_ms(data, "out_ms", duration_ms)
    if in_ms is not None and out_ms is not None and out_ms <= in_ms:
        raise BadChange("out_ms must be after in_ms")
    version = data.get("version")
    if not isinstance(version, str) or not version:
        # Without the version it started from, a save could write over one it never saw.
        raise BadChange("version: the version of the statement's files the change was made from")
    approval = data.get("approval", "keep")
    approve: str | None = None
    withdraw = False
    if approval is False:
        withdraw = True
    elif isinstance(approval, dict):
        approve = _optional_text(approval, "by", 200)
        if not approve:
            raise BadChange("approval.by: who approves the text is needed to approve it")
    elif approval != "keep":
        raise BadChange('approval: "keep", false, or {"by": NAME}')
    return Change(
        version,
        ordered,
        _optional_text(data, "speaker", 200),
        _optional_text(data, "topic", 500),
        in_ms,
        out_ms,
        approve,
        withdraw,
    )


def fields_after(current: StatementEdit, change: Change, *, now: dt.datetime) -> StatementEdit:
    """The statement's YAML fields once ``change`` is saved: the person's speaker, topic and in/out
    points; the group as it was; the approval kept, taken back, or given now (its digest is added by
    the caller, of exactly what is saved)."""
    approval: dict[str, Any] = {
        "approved": current.approved,
        "approved_by": current.approved_by,
        "approved_at": current.approved_at,
        "approved_digest": current.approved_digest,
    }
    if change.withdraw:
        approval = {"approved": False, "approved_by": None, "approved_at": None, "approved_digest": None}
    elif change.approve is not None:
        approval = {
            "approved": True,
            "approved_by": change.approve,
            "approved_at": now.replace(second=0, microsecond=0),
            "approved_digest": None,
        }
    return StatementEdit.model_validate(
        {
            "speaker": change.speaker,
            "topic": change.topic,
            "group": current.group,
            "in": None if change.in_ms is None else change.in_ms / 1000,
            "out": None if change.out_ms is None else change.out_ms / 1000,
            **approval,
        }
    )
