"""Corrections: ``OUT/edits/``, what a person changed about each statement, by hand or on the review page.

Per recording (named after its path in the meeting folder, so that reordering meeting.yaml keeps them):

- ``<recording>.srt``: the statement's cues, timed from the start of the recording. ``hearing run``
  writes the recognised cues there; a person corrects text and timing in any text or subtitle editor.
- ``<recording>.yaml``: speaker, topic, group, in and out points (seconds into the recording), and the
  approval (``approved``, ``approved_by``, ``approved_at``). Lines left commented keep meeting.yaml's.

``.generated.json`` remembers what the pipeline itself wrote: an SRT nobody changed follows a new
transcription (another model, say); one a person changed is kept and wins.

Pure core: ``starting_cues``, ``apply_cues``, ``place_fixed_cues``, ``edit_names``; ``read`` and
``write_starting`` do the I/O.
"""

from __future__ import annotations

import datetime as dt
import difflib
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from pipeline.config import StatementEdit, load_statement_edit
from pipeline.errors import ConfigError
from pipeline.files import sha256_text, stable_json, write_json, write_text
from pipeline.models import Approval, Segment, Statement, StatementTranscript, Word
from pipeline.stages import subtitles
from pipeline.stages.subtitles import Cue, SubtitleRules

log = logging.getLogger(__name__)

GENERATED = ".generated.json"
FLAG_EDITED = "edited"  # a word a person wrote or changed


@dataclass(frozen=True)
class StatementEdits:
    """What a person changed about one statement (nothing, where the files are as the pipeline wrote
    them)."""

    relpath: str
    cues: tuple[Cue, ...] | None  # recording-relative; None: the recognised words stand
    fields: StatementEdit

    @property
    def approval(self) -> Approval | None:
        if not self.fields.approved or not self.fields.approved_by:
            return None
        at = self.fields.approved_at
        if isinstance(at, dt.datetime) and not at.second and not at.microsecond:
            shown: str | None = at.isoformat(timespec="minutes")
        else:
            shown = at.isoformat() if at is not None else None
        return Approval(self.fields.approved_by, shown)


def edit_names(relpath: str) -> tuple[str, str]:
    """The SRT and the YAML of a recording inside ``OUT/edits`` (its path in the meeting folder)."""
    return f"{relpath}.srt", f"{relpath}.yaml"


# ------------------------------------------------------------------------------------------ pure core


def editable_end_ms(duration_ms: int, rules: SubtitleRules) -> int:
    """How far past the end of its recording a person's cue may run: the last word's reading time (the
    clip holds the picture that long, see ``clip.reading_run_on``), never more."""
    return duration_ms + rules.min_duration_ms


def starting_cues(transcript: StatementTranscript, duration_ms: int, rules: SubtitleRules) -> tuple[Cue, ...]:
    """The recognised cues of the whole recording, as the starting point of a correction."""
    words = transcript.words
    if not words:
        return ()
    end = min(max(duration_ms, words[-1].end_ms + rules.min_duration_ms), editable_end_ms(duration_ms, rules))
    return subtitles.build_statement_cues(words, (0, end), rules, transcript.statement_id)


def starting_yaml(statement: Statement) -> str:
    """The per-statement file a person fills in: every field commented out, showing meeting.yaml's."""

    def shown(value: object) -> str:
        return "" if value is None else str(value)

    trim_in, trim_out = statement.trim_ms or (None, None)
    return (
        f"# Corrections to {statement.recording.relpath}: remove the '# ' before a line to change it.\n"
        "# The text is corrected in the .srt file beside this one (times from the start of the recording).\n"
        f"# speaker: {shown(statement.speaker)}\n"
        f"# topic: {shown(statement.topic)}\n"
        f"# group: {shown(statement.group)}\n"
        f"# in: {shown(None if trim_in is None else trim_in / 1000)}     # seconds into the recording\n"
        f"# out: {shown(None if trim_out is None else trim_out / 1000)}\n"
        "approved: false      # true once a person has read (and corrected) the text\n"
        "approved_by: null    # who, e.g. Ida Holm\n"
        "approved_at: null    # when, e.g. 2026-11-21 10:30\n"
    )


def edit_yaml(relpath: str, fields: StatementEdit, shown: Statement) -> str:
    """The per-statement file with a person's fields set (by hand or by `hearing review`); a field they
    left alone stays commented out, showing meeting.yaml's value, so a later change there still counts."""
    import yaml

    def value(v: object) -> str:
        if v is None:
            return "null"
        return (
            yaml.safe_dump(v, allow_unicode=True, default_flow_style=True, width=10_000)
            .strip()
            .removesuffix("\n...")
        )

    def line(name: str, set_to: object, meeting_value: object, note: str = "") -> str:
        if set_to is None:
            was = "" if meeting_value is None else " ".join(str(meeting_value).split())
            return f"# {name}: {was}{note}\n"
        return f"{name}: {value(set_to)}{note}\n"

    trim_in, trim_out = shown.trim_ms or (None, None)
    at = fields.approved_at
    when = at.isoformat(sep=" ", timespec="minutes") if isinstance(at, dt.datetime) else at
    approved = "true" if fields.approved else "false"
    return (
        f"# Corrections to {relpath}: remove the '# ' before a line to change it.\n"
        "# The text is corrected in the .srt file beside this one (times from the start of the recording).\n"
        + line("speaker", fields.speaker, shown.speaker)
        + line("topic", fields.topic, shown.topic)
        + line("group", fields.group, shown.group)
        + line(
            "in", fields.in_, None if trim_in is None else trim_in / 1000, "     # seconds into the recording"
        )
        + line("out", fields.out, None if trim_out is None else trim_out / 1000)
        + f"approved: {approved}      # true once a person has read (and corrected) the text\n"
        + f"approved_by: {value(fields.approved_by)}\n"
        + f"approved_at: {value(when)}\n"
    )


def _norm(text: str) -> str:
    return "".join(ch for ch in text.casefold() if ch.isalnum())


def _nearest_cue(word: Word, cues: Sequence[Cue]) -> int:
    middle = (word.start_ms + word.end_ms) // 2

    def distance(k: int) -> int:
        cue = cues[k]
        return (
            0
            if cue.start_ms <= middle < cue.end_ms
            else min(abs(middle - cue.start_ms), abs(middle - cue.end_ms))
        )

    return min(range(len(cues)), key=distance)


def _spread(tokens: Sequence[str], start_ms: int, end_ms: int) -> list[Word]:
    """Words a person wrote, timed by their share of the characters between ``start_ms`` and ``end_ms``."""
    end_ms = max(end_ms, start_ms)
    total = sum(len(t) + 1 for t in tokens) or 1
    out: list[Word] = []
    at = 0
    for token in tokens:
        begin = start_ms + (end_ms - start_ms) * at // total
        at += len(token) + 1
        finish = start_ms + (end_ms - start_ms) * at // total
        out.append(Word(begin, max(finish, begin), f" {token}", 1.0, (FLAG_EDITED,)))
    return out


def _cue_words(words: Sequence[Word], cue: Cue) -> list[Word]:
    """The corrected words of one cue: a recognised word the person left as it was keeps its time (and
    its text is the person's spelling of it); a changed or added word is timed inside the stretch of the
    words it replaces, by characters; a word the person removed is gone."""
    tokens = cue.text.split()
    if not words:
        return _spread(tokens, cue.start_ms, cue.end_ms)
    matcher = difflib.SequenceMatcher(
        a=[_norm(w.text) for w in words], b=[_norm(t) for t in tokens], autojunk=False
    )
    out: list[Word] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            for word, token in zip(words[i1:i2], tokens[j1:j2], strict=True):
                flags = word.flags if word.text.strip() == token else (*word.flags, FLAG_EDITED)
                out.append(replace(word, text=f" {token}", flags=flags))
        elif op == "delete":
            continue
        else:
            if i2 > i1:
                start, end = words[i1].start_ms, words[i2 - 1].end_ms
            else:
                start = out[-1].end_ms if out else cue.start_ms
                end = words[i1].start_ms if i1 < len(words) else max(start, cue.end_ms)
            out.extend(_spread(tokens[j1:j2], start, end))
    return out


def apply_cues(transcript: StatementTranscript, cues: Sequence[Cue]) -> StatementTranscript:
    """The transcript as a person corrected it in its cues (recording-relative): one segment per cue,
    its text the person's. Words belong to the cue nearest to them in time."""
    speech = [c for c in cues if c.text.strip()]
    if not speech:
        return replace(transcript, segments=())
    groups: list[list[Word]] = [[] for _ in speech]
    origin: dict[int, Segment] = {}
    for segment in transcript.segments:
        for word in segment.words:
            k = _nearest_cue(word, speech)
            groups[k].append(word)
            origin.setdefault(k, segment)
    segments = []
    for k, cue in enumerate(speech):
        words = tuple(_cue_words(groups[k], cue))
        if not words:
            continue
        source = origin.get(k)
        flags = tuple(dict.fromkeys(f for w in words for f in w.flags))
        segments.append(
            Segment(
                start_ms=min(cue.start_ms, words[0].start_ms),
                end_ms=max(cue.end_ms, words[-1].end_ms),
                text=" " + " ".join(w.text.strip() for w in words),
                words=words,
                avg_logprob=source.avg_logprob if source else 0.0,
                no_speech_prob=source.no_speech_prob if source else 0.0,
                compression_ratio=source.compression_ratio if source else 0.0,
                flags=flags,
            )
        )
    return replace(transcript, segments=tuple(segments), no_text=False if segments else transcript.no_text)


def place_fixed_cues(
    cues: Sequence[Cue],
    shift_ms: int,
    window: tuple[int, int],
    rules: SubtitleRules,
    statement_id: str | None,
) -> tuple[Cue, ...]:
    """A person's cues (recording-relative) in the clip: moved by ``shift_ms``, cut to the statement's
    window, their lines kept where they fit the form (else broken by its rules). Their timing is the
    person's: rules they break are named in each cue's warnings, never silently mended."""
    placed = []
    for cue in cues:
        if not cue.text.strip():
            continue
        start = max(cue.start_ms + shift_ms, window[0])
        end = min(cue.end_ms + shift_ms, window[1])
        if end - start < rules.frame_ms:
            continue
        lines = tuple(line.strip() for line in cue.lines if line.strip())
        if len(lines) > rules.max_lines or any(len(line) > rules.max_chars_per_line for line in lines):
            lines = subtitles.break_lines(" ".join(lines), rules)
        placed.append(Cue(start, end, lines, "speech", statement_id))
    return tuple(placed)


# ------------------------------------------------------------------------------------------------ I/O


FROM = "#from"  # beside a file's checksum in .generated.json: what it was made from


def _source_id(transcript: StatementTranscript, duration_ms: int, rules: SubtitleRules) -> str:
    words = [(w.start_ms, w.end_ms, w.text) for w in transcript.words]
    return sha256_text(stable_json({"words": words, "duration_ms": duration_ms, "rules": asdict(rules)}))


def _generated(edits_dir: Path) -> dict[str, str]:
    from pipeline import cache

    data = cache.read_json(edits_dir / GENERATED)
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def write_starting(
    edits_dir: Path, statement: Statement, transcript: StatementTranscript, rules: SubtitleRules
) -> None:
    """Leave the starting files for a person: the recognised cues (again, where nobody changed them and
    the transcript did) and the commented YAML (once). A person's files are never touched."""
    srt_name, yaml_name = edit_names(statement.recording.relpath)
    generated = _generated(edits_dir)
    srt_path = edits_dir / srt_name
    current = srt_path.read_text(encoding="utf-8") if srt_path.exists() else None
    untouched = current is not None and sha256_text(current) == generated.get(srt_name)
    # Laying out the cues again is the slow part: only where the file is new, or nobody changed it and
    # it was made from other words or rules than these.
    source = _source_id(transcript, statement.probe.duration_ms, rules)
    if current is None or (untouched and generated.get(srt_name + FROM) != source):
        text = subtitles.to_srt(starting_cues(transcript, statement.probe.duration_ms, rules))
        if text != current:
            write_text(srt_path, text)
        generated[srt_name] = sha256_text(text)
        generated[srt_name + FROM] = source
        write_json(edits_dir / GENERATED, dict(sorted(generated.items())))
    yaml_path = edits_dir / yaml_name
    if not yaml_path.exists():
        write_text(yaml_path, starting_yaml(statement))


def read(edits_dir: Path, statement: Statement) -> StatementEdits:
    """A statement's corrections; raises ConfigError (exit 3) for a YAML a person got wrong."""
    srt_name, yaml_name = edit_names(statement.recording.relpath)
    yaml_path = edits_dir / yaml_name
    fields = load_statement_edit(yaml_path) if yaml_path.exists() else StatementEdit()
    srt_path = edits_dir / srt_name
    if not srt_path.exists():
        return StatementEdits(statement.recording.relpath, None, fields)
    text = read_srt_text(srt_path)
    if sha256_text(text) == _generated(edits_dir).get(srt_name):
        return StatementEdits(statement.recording.relpath, None, fields)
    return StatementEdits(statement.recording.relpath, parse_edited_srt(text, srt_path), fields)


def read_srt_text(path: Path) -> str:
    """A person's SRT: UTF-8 (with or without the byte-order mark subtitle editors write), else the
    Windows code page older editors save in."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        log.warning("edits/%s is not UTF-8; read as Windows-1252", path.name)
        return raw.decode("cp1252", errors="replace")


def parse_edited_srt(text: str, path: Path | str) -> tuple[Cue, ...]:
    """The cues of a person's SRT, in time order. A cue that cannot be read is an error naming the file
    (exit 3), never a silent loss of the words in it."""
    cues = subtitles.parse_srt(text)
    timed = text.count("-->")
    if len(cues) < timed:
        raise ConfigError(
            path,
            "",
            f"{timed - len(cues)} of its {timed} cues cannot be read as SubRip (each needs a number, a "
            "line like 00:00:01,000 --> 00:00:02,500 and its text)",
        )
    return tuple(sorted(cues, key=lambda c: (c.start_ms, c.end_ms)))


def apply_fields(statement: Statement, edits: StatementEdits) -> Statement:
    """The statement with a person's speaker, topic, group and in/out points."""
    f = edits.fields
    trim = statement.trim_ms
    if f.in_ is not None or f.out is not None:
        old_in, old_out = trim or (0, None)
        trim = (
            round(f.in_ * 1000) if f.in_ is not None else old_in,
            round(f.out * 1000) if f.out is not None else old_out,
        )
    return replace(
        statement,
        speaker=f.speaker if f.speaker is not None else statement.speaker,
        topic=f.topic if f.topic is not None else statement.topic,
        group=f.group if f.group is not None else statement.group,
        trim_ms=trim,
    )


@dataclass(frozen=True)
class Corrected:
    """The statements and transcripts as a person corrected them in ``OUT/edits``."""

    statements: tuple[Statement, ...]
    transcripts: dict[str, StatementTranscript]  # by statement id
    fixed_cues: dict[str, tuple[Cue, ...]]  # a person's cues (recording-relative), shown as given
    edited: tuple[str, ...]  # statements whose text a person changed
    approvals: dict[str, Approval | None]


def run(
    edits_dir: Path,
    statements: Sequence[Statement],
    transcripts: dict[str, StatementTranscript],
    rules: SubtitleRules,
    *,
    leave_starting_files: bool,
) -> Corrected:
    """Apply a person's corrections; leave the starting files for the statements that have none (not
    in a dry run, which writes nothing). Cues that break the form's rules are named, rule by rule."""
    corrected: list[Statement] = []
    texts = dict(transcripts)
    fixed: dict[str, tuple[Cue, ...]] = {}
    edited: list[str] = []
    approvals: dict[str, Approval | None] = {}
    for statement in statements:
        heard = texts.get(statement.id)
        if heard is not None and leave_starting_files:
            write_starting(edits_dir, statement, heard, rules)
        found = read(edits_dir, statement)
        statement = apply_fields(statement, found)
        if found.cues is not None and heard is not None:
            srt_name = edit_names(statement.recording.relpath)[0]
            end = editable_end_ms(statement.probe.duration_ms, rules)
            for problem in subtitles.validate(found.cues, rules, end):
                log.warning("edits/%s: %s", srt_name, problem)
            texts[statement.id] = apply_cues(heard, found.cues)
            fixed[statement.id] = found.cues
            edited.append(statement.id)
            log.info("%s: the text as corrected in edits/", statement.recording.relpath)
        approvals[statement.id] = found.approval
        corrected.append(statement)
    return Corrected(tuple(corrected), texts, fixed, tuple(edited), approvals)
