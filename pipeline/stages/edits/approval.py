"""Approvals: what a person approved (a digest of the cues' texts and times, the in and out points,
speaker and topic), judged against the statement as it is now, and a hand-written approval bound to what
it approves when it is first read. Any later change, from any source, voids it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from pathlib import Path

from pipeline.config import StatementEdit, load_statement_edit
from pipeline.files import sha256_text, stable_json, write_text
from pipeline.models import Approval, Statement
from pipeline.stages.edits.files import edit_names, edit_yaml, edits_lock
from pipeline.stages.subtitles.rules import Cue

log = logging.getLogger(__name__)

DIGEST_PREFIX = "sha256:"


def effective_trim(statement: Statement) -> tuple[int | None, int | None]:
    return statement.trim_ms or (None, None)


def content_digest(cues: Sequence[Cue], statement: Statement) -> str:
    """What an approval approves: the cues' texts and times (recording-relative, as the SRT holds them),
    the in and out points set by hand, speaker and topic (``statement`` with a person's fields)."""
    trim_in, trim_out = effective_trim(statement)
    content = {
        "cues": [[c.start_ms, c.end_ms, list(c.lines)] for c in cues],
        "in_ms": trim_in,
        "out_ms": trim_out,
        "speaker": statement.speaker,
        "topic": statement.topic,
    }
    return DIGEST_PREFIX + sha256_text(stable_json(content))


def approval(fields: StatementEdit, digest: str) -> Approval | None:
    """The approval in a statement's YAML, judged against what the statement is now (``digest``): valid
    where it approved exactly this, void where anything changed since; None where nobody approved it.
    An approval written by hand, without a digest, approves what is there when it is first read."""
    if not fields.approved or not fields.approved_by:
        return None
    at = fields.approved_at
    if isinstance(at, dt.datetime) and not at.second and not at.microsecond:
        shown: str | None = at.isoformat(timespec="minutes")
    else:
        shown = at.isoformat() if at is not None else None
    valid = fields.approved_digest is None or fields.approved_digest == digest
    return Approval(fields.approved_by, shown, valid=valid)


def bind_approval(edits_dir: Path, statement: Statement, meeting_statement: Statement, digest: str) -> None:
    """Write the digest of what a hand-written approval approved into its YAML, now that it is first read:
    a later change then voids it. Only where the file is as it was read; the person's fields are kept."""
    _, yaml_name = edit_names(statement.recording.relpath)
    path = edits_dir / yaml_name
    with edits_lock(edits_dir):
        if not path.exists():
            return
        fields = load_statement_edit(path)
        if not fields.approved or fields.approved_digest is not None:
            return
        at = fields.approved_at or dt.datetime.now().replace(second=0, microsecond=0)
        bound = fields.model_copy(update={"approved_digest": digest, "approved_at": at})
        write_text(path, edit_yaml(statement.recording.relpath, bound, meeting_statement))
    log.info("edits/%s: the approval by %s now holds what it approved", yaml_name, fields.approved_by)
