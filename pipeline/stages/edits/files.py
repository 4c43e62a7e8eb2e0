"""The files of ``OUT/edits``: their names, the lock, their versions, the starting files the pipeline
leaves for a person, a person's SRT and YAML read (and refused where they cannot be delivered as typed),
and the YAML written.

``.generated.json`` remembers what the pipeline itself wrote: an SRT or YAML nobody changed follows a
new transcription (another model, say) or a changed meeting.yaml; one a person changed is kept and wins.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path

from pipeline.config import StatementEdit, load_statement_edit
from pipeline.errors import ConfigError
from pipeline.files import sha256_text, stable_json, write_json, write_text
from pipeline.models import Statement, StatementTranscript
from pipeline.stages.edits.correct import StatementEdits, starting_cues
from pipeline.stages.subtitles.io import (
    UNSAFE_WORDS,
    looks_like_timing,
    parse_srt,
    srt_time,
    to_srt,
    undrawable,
    unsafe_text,
)
from pipeline.stages.subtitles.rules import Cue, SubtitleRules

log = logging.getLogger(__name__)

GENERATED = ".generated.json"
LOCK = ".lock"


def edit_names(relpath: str) -> tuple[str, str]:
    """The SRT and the YAML of a recording inside ``OUT/edits`` (its path in the meeting folder)."""
    return f"{relpath}.srt", f"{relpath}.yaml"


def unsafe_cue(cues: Sequence[Cue], machine_wrote: str = "") -> tuple[int, str, str] | None:
    """The first cue whose text cannot be delivered as typed: (its index, why, the offending part).
    ``machine_wrote``: characters the font cannot draw that the engine wrote itself (``unsafe_text``)."""
    for k, cue in enumerate(cues):
        for line in cue.lines:
            found = unsafe_text(line, machine_wrote)
            if found is not None:
                return k, found[0], found[1]
    return None


# -------------------------------------------------------------------------------------- the YAML file


def _scalar(value: object) -> str:
    """One value as YAML on one line: strings double-quoted with every special character escaped, so a
    name with a line break or a '#' can never become another field or end a comment."""
    import yaml

    if isinstance(value, str):
        return yaml.dump(
            value, Dumper=yaml.SafeDumper, default_style='"', allow_unicode=True, width=1 << 30
        ).strip()
    if isinstance(value, dt.datetime):
        return _scalar(value.isoformat(sep=" ", timespec="minutes" if not value.second else "seconds"))
    if isinstance(value, dt.date):
        return _scalar(value.isoformat())
    return yaml.safe_dump(value, default_flow_style=True, width=1 << 30).strip().removesuffix("\n...").strip()


def _yaml_text(relpath: str, lines: Sequence[tuple[str, object, bool, str]]) -> str:
    """The per-statement file: a header, then each field ``(name, value, set, note)``; a field not set is
    a comment showing meeting.yaml's value, so a later change there still counts."""
    out = [
        f"# Corrections to {_scalar(relpath)}: remove the '# ' before a line to change it.",
        "# The text is corrected in the .srt file beside this one (times from the start of the recording).",
    ]
    for name, value, is_set, note in lines:
        shown = "" if value is None and not is_set else _scalar(value)
        line = f"{name}: {shown}".rstrip()
        if not is_set:
            line = f"# {line}"
        out.append(line + (f"    # {note}" if note else ""))
    return "\n".join(out) + "\n"


def _seconds(ms: int | None) -> float | None:
    return None if ms is None else ms / 1000


def starting_yaml(statement: Statement) -> str:
    """The per-statement file a person fills in: every field commented out, showing meeting.yaml's."""
    return edit_yaml(statement.recording.relpath, StatementEdit(), statement)


def edit_yaml(relpath: str, fields: StatementEdit, shown: Statement) -> str:
    """The per-statement file with a person's fields set (by hand or by `hearing review`); a field they
    left alone stays commented out, showing meeting.yaml's value. Every value is written by the YAML
    serializer."""
    trim_in, trim_out = shown.trim_ms or (None, None)

    def field(
        name: str, set_to: object, meeting_value: object, note: str = ""
    ) -> tuple[str, object, bool, str]:
        return (name, set_to if set_to is not None else meeting_value, set_to is not None, note)

    return _yaml_text(
        relpath,
        [
            field("speaker", fields.speaker, shown.speaker),
            field("topic", fields.topic, shown.topic),
            field("group", fields.group, shown.group),
            field("in", fields.in_, _seconds(trim_in), "seconds into the recording"),
            field("out", fields.out, _seconds(trim_out)),
            ("approved", fields.approved, True, "true once a person has read (and corrected) the text"),
            ("approved_by", fields.approved_by, True, "who, e.g. Ida Holm"),
            ("approved_at", fields.approved_at, True, "when, e.g. 2026-11-21 10:30"),
            ("approved_digest", fields.approved_digest, True, "what was approved; written by the pipeline"),
        ],
    )


# ------------------------------------------------------------------------------------------------ I/O


FROM = "#from"  # beside a file's checksum in .generated.json: what it was made from
# Beside it too: the characters of the engine's text the subtitle font cannot draw (unsafe_text).
MACHINE_WROTE = "#undrawable"


def _source_id(transcript: StatementTranscript, duration_ms: int, rules: SubtitleRules) -> str:
    words = [(w.start_ms, w.end_ms, w.text) for w in transcript.words]
    return sha256_text(stable_json({"words": words, "duration_ms": duration_ms, "rules": asdict(rules)}))


def _generated(edits_dir: Path) -> dict[str, str]:
    from pipeline import cache

    data = cache.read_json(edits_dir / GENERATED)
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


@contextlib.contextmanager
def edits_lock(edits_dir: Path) -> Iterator[None]:
    """One writer at a time in ``OUT/edits``: the review page saving a statement and a run leaving its
    starting files never interleave, so neither writes over what the other just wrote."""
    edits_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(edits_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def version_of(edits_dir: Path, relpath: str) -> str:
    """The version of a statement's edit files: a digest of their bytes as they are now."""
    digest = hashlib.sha256()
    for name in edit_names(relpath):
        try:
            data = (edits_dir / name).read_bytes()
        except FileNotFoundError:
            digest.update(b"-\0")
            continue
        digest.update(b"+" + str(len(data)).encode() + b"\0" + data)
    return digest.hexdigest()[:32]


def _bytes_digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def write_starting(
    edits_dir: Path, statement: Statement, transcript: StatementTranscript, rules: SubtitleRules
) -> None:
    """Leave the starting files for a person: the recognised cues (again, where nobody changed them and
    the transcript did) and the commented YAML (again, where nobody changed it and meeting.yaml did). A
    person's files are never touched."""
    srt_name, yaml_name = edit_names(statement.recording.relpath)
    with edits_lock(edits_dir):
        generated = _generated(edits_dir)
        changed = False
        srt_path = edits_dir / srt_name
        current = srt_path.read_text(encoding="utf-8") if srt_path.exists() else None
        untouched = current is not None and sha256_text(current) == generated.get(srt_name)
        # Laying out the cues again is the slow part: only where the file is new, or nobody changed it and
        # it was made from other words or rules than these.
        source = _source_id(transcript, statement.probe.duration_ms, rules)
        if current is None or (untouched and generated.get(srt_name + FROM) != source):
            text = to_srt(starting_cues(transcript, statement.probe.duration_ms, rules))
            if text != current:
                write_text(srt_path, text)
            generated[srt_name] = sha256_text(text)
            generated[srt_name + FROM] = source
            generated[srt_name + MACHINE_WROTE] = undrawable(text)
            changed = True
        yaml_path = edits_dir / yaml_name
        on_disk = _bytes_digest(yaml_path)
        if on_disk is None or on_disk == generated.get(yaml_name):
            text = starting_yaml(statement)
            wanted = hashlib.sha256(text.encode("utf-8")).hexdigest()
            if on_disk != wanted:
                write_text(yaml_path, text)
            if generated.get(yaml_name) != wanted:
                generated[yaml_name] = wanted
                changed = True
        if changed:
            write_json(edits_dir / GENERATED, dict(sorted(generated.items())))


def forget_statement(edits_dir: Path, relpath: str) -> list[str]:
    """Delete a withdrawn recording's SRT and YAML (they hold the person's words and name) and what
    ``.generated.json`` remembers of them; returns the files deleted, as paths in ``OUT/edits``."""
    if not edits_dir.is_dir():
        return []
    names = edit_names(relpath)
    deleted = []
    with edits_lock(edits_dir):
        for name in names:
            path = edits_dir / name
            if path.is_file():
                path.unlink()
                deleted.append(name)
        generated = _generated(edits_dir)
        kept = {k: v for k, v in generated.items() if not any(k == n or k.startswith(n + "#") for n in names)}
        if kept != generated:
            write_json(edits_dir / GENERATED, dict(sorted(kept.items())))
    return deleted


def read(edits_dir: Path, statement: Statement) -> StatementEdits:
    """A statement's corrections; raises ConfigError (exit 3) for a YAML a person got wrong, or an SRT
    whose text cannot be delivered as typed."""
    srt_name, yaml_name = edit_names(statement.recording.relpath)
    version = version_of(edits_dir, statement.recording.relpath)
    yaml_path = edits_dir / yaml_name
    fields = load_statement_edit(yaml_path) if yaml_path.exists() else StatementEdit()
    srt_path = edits_dir / srt_name
    if not srt_path.exists():
        return StatementEdits(statement.recording.relpath, None, fields, version)
    text = read_srt_text(srt_path)
    generated = _generated(edits_dir)
    if sha256_text(text) == generated.get(srt_name):
        return StatementEdits(statement.recording.relpath, None, fields, version)
    cues = parse_edited_srt(text, srt_path, generated.get(srt_name + MACHINE_WROTE, ""))
    return StatementEdits(statement.recording.relpath, cues, fields, version)


def machine_wrote(edits_dir: Path, relpath: str) -> str:
    """The characters the subtitle font cannot draw that the engine wrote in this statement's starting
    cues (a person's correction is not refused for those)."""
    return _generated(edits_dir).get(edit_names(relpath)[0] + MACHINE_WROTE, "")


def read_srt_text(path: Path) -> str:
    """A person's SRT: UTF-8 (with or without the byte-order mark subtitle editors write), else the
    Windows code page older editors save in."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        log.warning("edits/%s is not UTF-8; read as Windows-1252", path.name)
        return raw.decode("cp1252", errors="replace")


def _timing_lines(text: str) -> list[str]:
    """The lines meant as a cue's timing: two time codes around "-->", or "-->" on the line after a
    cue's number (which starts a block), however badly written."""
    lines = text.replace("\r\n", "\n").removeprefix("\ufeff").split("\n")
    found = []
    for i, line in enumerate(lines):
        numbered = i > 0 and lines[i - 1].strip().isdigit() and (i == 1 or not lines[i - 2].strip())
        if "-->" in line and (looks_like_timing(line) or numbered):
            found.append(line)
    return found


def parse_edited_srt(text: str, path: Path | str, machine_wrote: str = "") -> tuple[Cue, ...]:
    """The cues of a person's SRT, in time order, each line with its spaces made single. A cue that
    cannot be read, or whose text could not be delivered as typed, is an error naming the file and the
    cue (exit 3), never a silent loss or change of the words in it."""
    cues = parse_srt(text)
    timed = len(_timing_lines(text))
    if len(cues) < timed:
        raise ConfigError(
            path,
            "",
            f"{timed - len(cues)} of its {timed} cues cannot be read as SubRip (each needs a number, a "
            "line like 00:00:01,000 --> 00:00:02,500 and its text)",
        )
    tidy = []
    for cue in cues:
        lines = tuple(" ".join(line.split()) for line in cue.lines)
        lines = tuple(line for line in lines if line)
        if lines:
            tidy.append(Cue(cue.start_ms, cue.end_ms, lines))
    ordered = tuple(sorted(tidy, key=lambda c: (c.start_ms, c.end_ms)))
    bad = unsafe_cue(ordered, machine_wrote)
    if bad is not None:
        k, why, part = bad
        raise ConfigError(path, f"cue {k + 1}", f"{part!r} {UNSAFE_WORDS[why]}; write it another way", part)
    for cue in ordered:
        if cue.end_ms <= cue.start_ms:
            raise ConfigError(
                path,
                f"cue at {srt_time(cue.start_ms)}",
                "ends before it starts: give it an end after its start",
            )
    return ordered
