"""Corrections: ``OUT/edits/``, what a person changed about each statement, by hand or on the review page.

Per recording (named after its path in the meeting folder, so that reordering meeting.yaml keeps them):

- ``<recording>.srt``: the statement's cues, timed from the start of the recording. ``hearing run``
  writes the recognised cues there; a person corrects text and timing in any text or subtitle editor.
- ``<recording>.yaml``: speaker, topic, group, in and out points (seconds into the recording), and the
  approval (``approved``, ``approved_by``, ``approved_at``, ``approved_digest``). Lines left commented
  keep meeting.yaml's.

``.generated.json`` remembers what the pipeline itself wrote: an SRT or YAML nobody changed follows a
new transcription (another model, say) or a changed meeting.yaml; one a person changed is kept and wins.

The statement's cues are what the clip shows, grouped as the SRT groups them: the recognised cues where
nobody changed the SRT, else the person's. A person's cue whose times are the ones the pipeline wrote
(a correction of the text only) is timed by the pipeline, from its words, as it would have been; a cue
with times of the person's own keeps them where the form allows (``pipeline.stages.timing``).

An approval holds a digest of exactly what was approved: the cues' texts and times, the in and out
points, speaker and topic. Any later change to any of them, from any source, voids it (``approval``).
A statement's files carry a version (a digest of their bytes): a change made from an older version is
refused, never written over what someone else saved (``pipeline.review``).

Rooms: ``correct`` (pure: ``starting_cues``, ``shown_transcript``, ``apply_cues``, ``apply_fields``),
``approval`` (``content_digest``, ``approval``, and binding a hand-written approval) and ``files`` (the
files' names, lock and versions, ``starting_yaml``, ``edit_yaml``, ``read``, ``write_starting``). Here:
``corrected_one`` (pure) and ``run``, which apply a person's corrections to every statement.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import StatementEdit
from pipeline.models import Approval, Statement, StatementTranscript
from pipeline.stages.edits.approval import (
    DIGEST_PREFIX,
    approval,
    bind_approval,
    content_digest,
    effective_trim,
)
from pipeline.stages.edits.correct import (
    DOUBTS,
    FLAG_BY_CHARACTERS,
    FLAG_EDITED,
    StatementEdits,
    apply_cues,
    apply_fields,
    editable_end_ms,
    shown_transcript,
    starting_cues,
)
from pipeline.stages.edits.files import (
    GENERATED,
    LOCK,
    edit_names,
    edit_yaml,
    edits_lock,
    forget_statement,
    machine_wrote,
    parse_edited_srt,
    read,
    read_srt_text,
    starting_yaml,
    unsafe_cue,
    version_of,
    write_starting,
)
from pipeline.stages.subtitles.rules import Cue, SubtitleRules

log = logging.getLogger(__name__)

__all__ = [
    "DIGEST_PREFIX",
    "DOUBTS",
    "FLAG_BY_CHARACTERS",
    "FLAG_EDITED",
    "GENERATED",
    "LOCK",
    "Corrected",
    "StatementEdit",
    "StatementEdits",
    "apply_cues",
    "apply_fields",
    "approval",
    "bind_approval",
    "content_digest",
    "corrected_one",
    "edit_names",
    "edit_yaml",
    "editable_end_ms",
    "edits_lock",
    "effective_trim",
    "forget_statement",
    "machine_wrote",
    "parse_edited_srt",
    "read",
    "read_srt_text",
    "run",
    "shown_transcript",
    "starting_cues",
    "starting_yaml",
    "unsafe_cue",
    "version_of",
    "write_starting",
]


@dataclass(frozen=True)
class Corrected:
    """The statements and transcripts as a person corrected them in ``OUT/edits``: every transcript's
    segments are the statement's cues (``Segment.shown``), the recognised ones or the person's."""

    statements: tuple[Statement, ...]
    transcripts: dict[str, StatementTranscript]  # by statement id
    edited: tuple[str, ...]  # statements whose text a person changed
    approvals: dict[str, Approval | None]
    cues: dict[str, tuple[Cue, ...]]  # by statement id: the cues as the SRT holds them (recording time)
    versions: dict[str, str]  # by statement id: the version of its edit files


def corrected_one(
    statement: Statement,
    heard: StatementTranscript | None,
    found: StatementEdits,
    rules: SubtitleRules,
) -> tuple[Statement, StatementTranscript | None, tuple[Cue, ...], Approval | None]:
    """One statement with a person's corrections (pure): the statement with their fields, its transcript
    shown as its cues, the cues as the SRT holds them, and the approval judged against them."""
    statement = apply_fields(statement, found)
    if heard is None:
        return (
            statement,
            None,
            found.cues or (),
            approval(found.fields, content_digest(found.cues or (), statement)),
        )
    duration = statement.probe.duration_ms
    starting = starting_cues(heard, duration, rules)
    shown = shown_transcript(heard, duration, rules)
    if found.cues is None:
        cues, transcript = starting, shown
    else:
        cues, transcript = found.cues, apply_cues(shown, found.cues, starting)
    return statement, transcript, cues, approval(found.fields, content_digest(cues, statement))


def run(
    edits_dir: Path,
    statements: Sequence[Statement],
    transcripts: dict[str, StatementTranscript],
    rules: SubtitleRules,
    *,
    leave_starting_files: bool,
) -> Corrected:
    """Apply a person's corrections; leave the starting files for the statements that have none, and bind
    hand-written approvals to what they approve (not in a dry run, which writes nothing)."""
    corrected: list[Statement] = []
    texts: dict[str, StatementTranscript] = {}
    edited: list[str] = []
    approvals: dict[str, Approval | None] = {}
    shown_cues: dict[str, tuple[Cue, ...]] = {}
    versions: dict[str, str] = {}
    for given in statements:
        heard = transcripts.get(given.id)
        if heard is not None and leave_starting_files:
            write_starting(edits_dir, given, heard, rules)
        found = read(edits_dir, given)
        statement, transcript, cues, approved = corrected_one(given, heard, found, rules)
        if approved is not None and found.fields.approved_digest is None and leave_starting_files:
            bind_approval(edits_dir, statement, given, content_digest(cues, statement))
            found = read(edits_dir, given)
        if transcript is not None:
            texts[statement.id] = transcript
        if found.cues is not None and heard is not None:
            edited.append(statement.id)
            log.info("%s: the text as corrected in edits/", statement.recording.relpath)
        if approved is not None and not approved.valid:
            log.warning(
                "%s: %s: approval void, the statement changed after it was approved",
                statement.recording.relpath,
                approved.by,
            )
        approvals[statement.id] = approved
        shown_cues[statement.id] = cues
        versions[statement.id] = found.version
        corrected.append(statement)
    return Corrected(tuple(corrected), texts, tuple(edited), approvals, shown_cues, versions)
