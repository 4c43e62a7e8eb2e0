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

Pure core: ``starting_cues``, ``shown_transcript``, ``apply_cues``, ``content_digest``, ``approval``,
``apply_fields``, ``starting_yaml``, ``edit_yaml``; ``read``, ``write_starting`` and ``run`` do the I/O.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import fcntl
import hashlib
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from pipeline.config import StatementEdit, load_statement_edit
from pipeline.errors import ConfigError
from pipeline.files import sha256_text, stable_json, write_json, write_text
from pipeline.models import Approval, Segment, ShownCue, Statement, StatementTranscript, Word
from pipeline.stages.subtitles.cues import build_statement_cues, cue_words, shown_words
from pipeline.stages.subtitles.io import (
    UNSAFE_WORDS,
    looks_like_timing,
    parse_srt,
    srt_time,
    to_srt,
    unsafe_text,
)
from pipeline.stages.subtitles.rules import Cue, SubtitleRules

log = logging.getLogger(__name__)

GENERATED = ".generated.json"
LOCK = ".lock"
FLAG_EDITED = "edited"  # a word a person wrote or changed
FLAG_BY_CHARACTERS = "by_characters"  # a word a person added, timed by its characters (stages.align)
# Flags that doubt a word the engine wrote; a word a person wrote or changed is no longer in doubt.
DOUBTS = ("low_confidence", "repeated", "over_silence", "redecoded", "subtitle_credit")
DIGEST_PREFIX = "sha256:"


@dataclass(frozen=True)
class StatementEdits:
    """What a person changed about one statement (nothing, where the files are as the pipeline wrote
    them), and the version of its files as they were read."""

    relpath: str
    cues: tuple[Cue, ...] | None  # recording-relative; None: the recognised cues stand
    fields: StatementEdit
    version: str = ""


def edit_names(relpath: str) -> tuple[str, str]:
    """The SRT and the YAML of a recording inside ``OUT/edits`` (its path in the meeting folder)."""
    return f"{relpath}.srt", f"{relpath}.yaml"


# ------------------------------------------------------------------------------------------ pure core


def editable_end_ms(duration_ms: int, rules: SubtitleRules) -> int:
    """How far past the end of its recording a person's cue may run: the last word's reading time (the
    clip holds the picture that long, see ``clip.reading_run_on``), never more."""
    return duration_ms + rules.min_duration_ms


def _starting_window(
    transcript: StatementTranscript, duration_ms: int, rules: SubtitleRules
) -> tuple[int, int]:
    words = transcript.words
    last = words[-1].end_ms if words else 0
    return 0, min(max(duration_ms, last + rules.min_duration_ms), editable_end_ms(duration_ms, rules))


def starting_cues(transcript: StatementTranscript, duration_ms: int, rules: SubtitleRules) -> tuple[Cue, ...]:
    """The recognised cues of the whole recording, as the starting point of a correction."""
    if not transcript.words:
        return ()
    window = _starting_window(transcript, duration_ms, rules)
    return build_statement_cues(transcript.words, window, rules, transcript.statement_id)


def _segment_of(
    words: Sequence[Word], cue: Cue, index: int, origin: Segment | None, *, own_times: bool
) -> Segment:
    flags = tuple(dict.fromkeys(f for w in words for f in w.flags))
    return Segment(
        start_ms=min(cue.start_ms, words[0].start_ms),
        end_ms=max(cue.end_ms, max(w.end_ms for w in words)),
        text=" " + " ".join(w.text.strip() for w in words),
        words=tuple(words),
        avg_logprob=origin.avg_logprob if origin else 0.0,
        no_speech_prob=origin.no_speech_prob if origin else 0.0,
        compression_ratio=origin.compression_ratio if origin else 0.0,
        flags=flags,
        shown=ShownCue(
            lines=cue.lines,
            start_ms=cue.start_ms if own_times else None,
            end_ms=cue.end_ms if own_times else None,
            index=index,
            words=len(words),
        ),
    )


def _origins(transcript: StatementTranscript) -> list[Segment]:
    """For each word as shown, the engine's segment it came from (its log-probability and the like)."""
    found: list[Segment] = []
    for segment in transcript.segments:
        found.extend([segment] * len(shown_words(segment.words)))
    return found


def shown_transcript(
    transcript: StatementTranscript, duration_ms: int, rules: SubtitleRules
) -> StatementTranscript:
    """The recognised transcript as the starting cues show it: one segment a cue, its words as shown."""
    if not transcript.words:
        return replace(transcript, segments=())
    window = _starting_window(transcript, duration_ms, rules)
    origins = _origins(transcript)
    segments = []
    at = 0
    for index, (cue, words) in enumerate(cue_words(transcript.words, window, rules, transcript.statement_id)):
        if words:
            segments.append(
                _segment_of(words, cue, index, origins[at] if at < len(origins) else None, own_times=False)
            )
        at += len(words)
    return replace(transcript, segments=tuple(segments))


def _norm(text: str) -> str:
    return "".join(ch for ch in text.casefold() if ch.isalnum())


def _spread(tokens: Sequence[str], start_ms: int, end_ms: int) -> list[tuple[int, int]]:
    """Times for words a person wrote, by their share of the characters between ``start_ms`` and
    ``end_ms``."""
    end_ms = max(end_ms, start_ms)
    total = sum(len(t) + 1 for t in tokens) or 1
    out = []
    at = 0
    for token in tokens:
        begin = start_ms + (end_ms - start_ms) * at // total
        at += len(token) + 1
        out.append((begin, max(start_ms + (end_ms - start_ms) * at // total, begin)))
    return out


def apply_cues(
    shown: StatementTranscript, cues: Sequence[Cue], starting: Sequence[Cue]
) -> StatementTranscript:
    """The transcript as a person corrected it in its cues (recording-relative): one segment a cue, its
    text the person's, shown with their lines.

    A cue whose times are the ones the pipeline wrote (``starting``) is matched to the words of that
    recognised cue, and timed by the pipeline in the clip as if only its text had changed; the other
    cues, with times of the person's own, keep them, and their words are matched to the words left over
    in order, so that a cue moved in time keeps its words. A word left as it was keeps its time and
    flags; a word written over a recognised one takes that word's time (inside its cue, where the person
    timed it); a word added is timed inside its cue, by its characters, in the pause it fills. A word a
    person wrote or changed loses its doubt flags."""
    words = list(shown.words)
    origins: list[Segment | None] = [s for s in shown.segments for _ in s.words]
    ranges: dict[int, range] = {}
    at = 0
    for segment in shown.segments:
        if segment.shown is not None:
            ranges[segment.shown.index] = range(at, at + len(segment.words))
        at += len(segment.words)
    recognised = {(c.start_ms, c.end_ms): k for k, c in enumerate(starting)}
    pipeline_times = set(recognised)
    tokens = [(k, token) for k, cue in enumerate(cues) for token in " ".join(cue.lines).split()]
    placed: list[Word | None] = [None] * len(tokens)
    origin_of: list[Segment | None] = [None] * len(tokens)

    def match(word_at: Sequence[int], token_at: Sequence[int]) -> None:
        """Place the tokens at ``token_at`` on the words at ``word_at`` (both in order)."""
        matcher = difflib.SequenceMatcher(
            a=[_norm(words[i].text) for i in word_at],
            b=[_norm(tokens[j][1]) for j in token_at],
            autojunk=False,
        )
        for op, i1, i2, j1, j2 in matcher.get_opcodes():
            if op == "equal":
                for i, j in zip(word_at[i1:i2], token_at[j1:j2], strict=True):
                    word, token = words[i], tokens[j][1]
                    flags = (
                        word.flags if word.text.strip() == token else (*_no_doubts(word.flags), FLAG_EDITED)
                    )
                    placed[j] = replace(word, text=f" {token}", flags=tuple(dict.fromkeys(flags)))
                    origin_of[j] = origins[i]
            elif op in ("replace", "insert"):
                replaced = [words[i] for i in word_at[i1:i2]]
                one_for_one = len(replaced) == j2 - j1
                if one_for_one:
                    # Each word written over one recognised: that word's time, as the engine heard it.
                    times = [(w.start_ms, w.end_ms) for w in replaced]
                else:
                    if replaced:
                        start, end = replaced[0].start_ms, max(w.end_ms for w in replaced)
                    else:
                        start = words[word_at[i1 - 1]].end_ms if i1 else 0
                        end = words[word_at[i1]].start_ms if i1 < len(word_at) else start
                    times = _spread([tokens[j][1] for j in token_at[j1:j2]], start, end)
                flags = (FLAG_EDITED,) if one_for_one else (FLAG_EDITED, FLAG_BY_CHARACTERS)
                for j, (a, b) in zip(token_at[j1:j2], times, strict=True):
                    cue = cues[tokens[j][0]]
                    if op == "insert" or (cue.start_ms, cue.end_ms) not in pipeline_times:
                        a = min(max(a, cue.start_ms), cue.end_ms)
                        b = min(max(b, a), cue.end_ms)
                    placed[j] = Word(a, b, f" {tokens[j][1]}", 1.0, flags)
                    near = word_at[i1] if i1 < len(word_at) else (word_at[-1] if word_at else None)
                    origin_of[j] = origins[near] if near is not None else None

    claimed: set[int] = set()
    loose_cues: list[int] = []
    for k, cue in enumerate(cues):
        own = recognised.get((cue.start_ms, cue.end_ms))
        if own is not None and own in ranges and own not in claimed:
            claimed.add(own)
            match(list(ranges[own]), [j for j, (c, _) in enumerate(tokens) if c == k])
        else:
            loose_cues.append(k)
    taken = {i for k in claimed for i in ranges[k]}
    match(
        [i for i in range(len(words)) if i not in taken],
        [j for j, (c, _) in enumerate(tokens) if c in set(loose_cues)],
    )
    placed = _repeats_again(placed)
    segments = []
    at = 0
    for k, cue in enumerate(cues):
        count = sum(1 for c, _ in tokens if c == k)
        own_words = [w for w in placed[at : at + count] if w is not None]
        origin = next((o for o in origin_of[at : at + count] if o is not None), None)
        at += count
        if not own_words:
            continue
        timed_by_pipeline = (cue.start_ms, cue.end_ms) in pipeline_times
        segments.append(_segment_of(_in_order(own_words), cue, k, origin, own_times=not timed_by_pipeline))
    return replace(shown, segments=tuple(segments), no_text=False if segments else shown.no_text)


def _no_doubts(flags: Sequence[str]) -> tuple[str, ...]:
    return tuple(f for f in flags if f not in DOUBTS)


def _in_order(words: list[Word]) -> list[Word]:
    """Never starting before the word before: a cue moved by a person may hold words of other times."""
    out: list[Word] = []
    for word in words:
        if out and word.start_ms < out[-1].start_ms:
            word = replace(word, start_ms=out[-1].start_ms, end_ms=max(word.end_ms, out[-1].start_ms))
        out.append(word)
    return out


def _repeats_again(words: Sequence[Word | None]) -> list[Word | None]:
    """ "repeated" only where the corrected text still repeats itself (a loop a person removed is gone)."""
    from pipeline.engines.base import FLAG_REPEATED, find_loops

    present = [(k, w) for k, w in enumerate(words) if w is not None]
    looped = {
        present[i][0]
        for loop in find_loops([w.text for _, w in present])
        for i in range(loop.first, loop.end)
    }
    out = list(words)
    for k, word in present:
        if FLAG_REPEATED in word.flags and k not in looped:
            out[k] = replace(word, flags=tuple(f for f in word.flags if f != FLAG_REPEATED))
    return out


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


def apply_fields(statement: Statement, edits: StatementEdits) -> Statement:
    """The statement with a person's speaker, topic, group and in/out points; a point they left alone
    stays meeting.yaml's, or where the speech is."""
    f = edits.fields
    trim = statement.trim_ms
    if f.in_ is not None or f.out is not None:
        old_in, old_out = trim or (None, None)
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


def unsafe_cue(cues: Sequence[Cue]) -> tuple[int, str, str] | None:
    """The first cue whose text cannot be delivered as typed: (its index, why, the offending part)."""
    for k, cue in enumerate(cues):
        for line in cue.lines:
            found = unsafe_text(line)
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
    if sha256_text(text) == _generated(edits_dir).get(srt_name):
        return StatementEdits(statement.recording.relpath, None, fields, version)
    return StatementEdits(statement.recording.relpath, parse_edited_srt(text, srt_path), fields, version)


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


def parse_edited_srt(text: str, path: Path | str) -> tuple[Cue, ...]:
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
    bad = unsafe_cue(ordered)
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
