"""Deliver: the transcript documents, the check of the agreed form, the checksums, and the swap.

The clip stage leaves the clip and its subtitles in a staging folder; this stage adds the transcript in
the form's formats, checks the files as delivered (never the settings that made them), writes
``SHA256SUMS`` and then puts the folder in its place as a whole:

- ``delivery/`` when the check passed and every statement is approved (or the form asks no approval);
- ``draft/`` when the form asks for approval and a statement still lacks it: nothing reaches the official
  unread;
- ``failed-delivery/`` when the check failed: the official keeps the last delivery that passed.

The pure core is ``delivery_stem`` and ``outcome``; ``run`` does the I/O.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import shutil
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from pipeline.config import Form, Meeting
from pipeline.files import replace_folder, sha256_file, write_bytes, write_json, write_text
from pipeline.meeting_facts import MeetingFacts
from pipeline.models import Approval, Statement, StatementTranscript
from pipeline.models import approved as is_approved
from pipeline.stages import delivery_page, letters, transcript
from pipeline.stages.check import run_check
from pipeline.stages.check.files import master_path, timeline_path, timeline_record
from pipeline.stages.check.report import QcReport, write_qc_report
from pipeline.stages.cut import Part
from pipeline.stages.subtitles.rules import Cue
from pipeline.steps import PlannedStep, StageLog
from pipeline.texts import documents as words
from pipeline.texts import report as report_words

log = logging.getLogger(__name__)

DELIVERY = "delivery"
STAGING_DELIVERY = ".delivery-next"  # built here, then swapped in: delivery/ is all new or all old
ASIDE_PREFIX = ".delivery-old-"
FAILED_DELIVERY = "failed-delivery"
DRAFT = "draft"  # a delivery that waits for statements to be approved
DRAFT_ASIDE_PREFIX = ".draft-old-"
FAILED_ASIDE_PREFIX = ".failed-old-"

# A derived file name must hold on every file system a delivery is copied to: ext4 (255 bytes), NTFS
# and exFAT on a USB stick (255 UTF-16 units, never more than the UTF-8 bytes), and the characters and
# names Windows refuses. The stem is capped in UTF-8 bytes, leaving room for the longest suffix and the
# temporary name it is written under (``.<name>.XXXXXXXX.part``, pipeline/files.py).
NAME_MAX_BYTES = 120
FALLBACK_NAME = "hoeringssvar"
_WINDOWS_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"{port}{n}" for port in ("COM", "LPT") for n in (*"0123456789", "¹", "²", "³")]
)
# Danish letters as Danish writes them without: the fixed words of the names (hoeringssvar, foelgebrev)
# are written so, and a name must not mix "ø" in one word with "oe" in the next.
_DANISH = {"æ": "ae", "Æ": "Ae", "ø": "oe", "Ø": "Oe", "å": "aa", "Å": "Aa"}
_SEPARATORS = re.compile(r"[-_]{2,}")
_EDGES = "-_"


def _slug_letter(char: str) -> str | None:
    """``char`` as a name writes it: a Danish letter transliterated, another Latin letter without its
    accents (é as e), a letter or digit of another script kept; None: not a letter or digit."""
    if char in _DANISH:
        return _DANISH[char]
    if char.isascii():
        return char if char.isalnum() else None
    if not char.isalnum():
        return None
    if unicodedata.name(char, "").startswith("LATIN "):
        parts = unicodedata.normalize("NFKD", char)
        base = "".join(_DANISH.get(c, c) for c in parts if not unicodedata.combining(c))
        if base.isascii() and base.isalnum():
            return base
    return char


def _extends(char: str) -> bool:
    """Whether ``char`` belongs to the character before it (an accent, a joiner, a variation or skin
    tone of an emoji): a cut there would leave half a letter or half an emoji."""
    point = ord(char)
    return (
        unicodedata.combining(char) != 0
        or unicodedata.category(char) in ("Mn", "Mc", "Me")
        or char == "\u200d"
        or 0xFE00 <= point <= 0xFE0F
        or 0x1F3FB <= point <= 0x1F3FF
        or 0xE0020 <= point <= 0xE007F  # tag characters (subdivision flags)
        or 0xE0100 <= point <= 0xE01EF
    )


def _cut_to_bytes(text: str, max_bytes: int) -> str:
    """The longest start of ``text`` within ``max_bytes`` of UTF-8 that ends between two characters as
    a person sees them."""
    if len(text.encode("utf-8")) <= max_bytes:
        return text
    end, used = 0, 0
    for char in text:
        size = len(char.encode("utf-8"))
        if used + size > max_bytes:
            break
        used += size
        end += 1
    # Never before what attaches to the character before it (an accent, a skin tone, a joiner), nor
    # after a joiner; flags are pairs of regional indicators: never keep half of one. Stepping back for
    # one rule can break the other, so until neither moves the cut.
    while True:
        start = end
        while end > 0 and (_extends(text[end]) or text[end] == "\u200d" or text[end - 1] == "\u200d"):
            end -= 1
        indicators = 0
        while indicators < end and 0x1F1E6 <= ord(text[end - 1 - indicators]) <= 0x1F1FF:
            indicators += 1
        if indicators % 2 and end < len(text) and 0x1F1E6 <= ord(text[end]) <= 0x1F1FF:
            end -= 1
        if end == start:
            break
    return text[:end]


def safe_file_name(text: str, max_bytes: int = NAME_MAX_BYTES, fallback: str = FALLBACK_NAME) -> str:
    """The one rule for every name made from what a person wrote (the delivery's files, its ZIP):
    ``text`` (NFKC) with æ ø å as ae oe aa, other Latin letters without accents, letters and digits of
    other scripts kept (with their marks); every run of anything else (spaces, punctuation, dots,
    symbols, emoji, control and format characters) one ``-``, or ``_`` where the run holds one; no
    ``-`` or ``_`` at either end; at most ``max_bytes`` of UTF-8, cut between characters as a person
    sees them; a name Windows reserves (CON, NUL, COM1, ...) with a leading ``_``; ``fallback`` where
    nothing is left. So "2026-11-24_Plan-, Teknik- og Miljøudvalget_hoeringssvar" is
    "2026-11-24_Plan-Teknik-og-Miljoeudvalget_hoeringssvar"."""
    out: list[str] = []
    for char in unicodedata.normalize("NFKC", text):
        letter = _slug_letter(char)
        if letter is not None:
            out.append(letter)
        elif unicodedata.category(char) in ("Mn", "Mc", "Me"):
            # A mark belongs to the letter before it where that letter is kept as it is (Devanagari's
            # vowel signs); after anything else (a transliterated letter, a separator, an emoji's
            # variation selector) it is dropped.
            if out and not out[-1].isascii() and out[-1] not in _EDGES:
                out.append(char)
        else:
            out.append("_" if char == "_" else "-")
    clean = unicodedata.normalize("NFC", "".join(out))
    clean = _SEPARATORS.sub(lambda run: "_" if "_" in run.group() else "-", clean).strip(_EDGES)
    clean = _cut_to_bytes(clean, max_bytes).rstrip(_EDGES)
    if not clean:
        return fallback
    # Windows refuses a reserved name also before an extension ("nul.mp4"), in any case.
    if clean.upper() in _WINDOWS_RESERVED:
        clean = "_" + clean
    return clean


def delivery_stem(form: Form, meeting: MeetingFacts) -> str:
    """The delivery's file-name stem from the form's template; safe on every file system officials use."""
    values = {
        "date": meeting.date.isoformat() if meeting.date else words.UNDATED,
        "committee": meeting.addressee,
        "title": meeting.title,
        "place": meeting.place or "",
        "organiser": meeting.organiser or "",
        "form": form.name,
    }
    return safe_file_name(form.naming.format(**values))


def statement_spans(parts: Sequence[Part]) -> dict[str, tuple[int, int]]:
    """Where each statement starts and ends in the clip: the one timing every output states."""
    return {p.statement_id: (p.start_ms, p.end_ms) for p in parts if p.kind == "statement" and p.statement_id}


def outcome(
    passed: bool, form: Form, statements: Sequence[Statement], approvals: Mapping[str, Approval | None]
) -> Literal["delivery", "draft", "failed"]:
    """Where a checked delivery goes."""
    if not passed:
        return "failed"
    if form.require_approval and not all(is_approved(approvals.get(s.id)) for s in statements):
        return "draft"
    return "delivery"


@dataclass(frozen=True)
class Delivered:
    """What the stage put in place."""

    where: Literal["delivery", "draft", "failed"]
    folder: Path
    files: tuple[str, ...]  # every file of the folder, SHA256SUMS aside
    qc: QcReport
    unapproved: tuple[Statement, ...]

    def qc_summary(self) -> dict[str, Any]:
        return {
            "passed": self.qc.passed,
            "verdict": self.qc.verdict(),
            "failures": [r.check for r in self.qc.failures],
        }


def draft_note(delivered: Delivered, statements: int, out_dir: Path) -> str:
    """What a run that made a draft tells the organiser: what waits for approval, and how to go on."""
    waiting = ", ".join(s.recording.relpath for s in delivered.unapproved)
    return (
        f"a draft is in {delivered.folder}: {len(delivered.unapproved)} of {statements} statements are not "
        f"approved yet ({waiting}); read and approve them with `hearing review {out_dir}` or in "
        f"{out_dir / 'edits'} (approved: true, approved_by), then run `hearing render {out_dir}`"
    )


PARTICIPANTS = "deltagere"  # OUT/deltagere: the participant note, where the form keeps it from the official


def _letters(
    out_dir: Path,
    folder: Path,
    files: Sequence[str],
    doc: transcript.TranscriptDocument,
    meeting: Meeting,
    form: Form,
    name: str,
    language: str,
    qc: QcReport,
    cues: Sequence[Cue],
    timeline: Sequence[Mapping[str, Any]],
    digest: Callable[[Path], str],
    *,
    withdrawn: Sequence[dt.date] = (),
) -> list[str]:
    """The cover letter, the participant note and the delivery page; returns the files it added.
    ``withdrawn``: the days statements were withdrawn, which the letter and the page tell (no names)."""
    clip_ms = max((int(p["start_ms"]) + int(p["duration_ms"]) for p in timeline), default=0)
    facts = letters.facts(
        doc.meeting,
        meeting.follow_up,
        form,
        model=doc.model,
        statements=len(doc.entries),
        sound_only=sum(e.statement.sound_only for e in doc.entries),
        approved=sum(is_approved(e.approval) for e in doc.entries),
        clip_ms=clip_ms,
        changed_after_approval=[
            words.changed_statement(e.number, e.approval.by, e.approval.at)
            for e in doc.entries
            if e.approval is not None and not e.approval.valid
        ],
        check_passed=qc.passed,
        check_verdict=report_words.danish(qc.verdict()[0]),
        files=dict(digests := {file: digest(folder / file) for file in files}),
    )
    facts = replace(facts, withdrawn=tuple(withdrawn))
    added: list[str] = []
    cover = f"{name}{letters.COVER_LETTER_SUFFIX}"
    write_bytes(folder / cover, letters.cover_letter_pdf(facts))
    added.append(cover)
    note_folder = folder if form.participant_note == "with_delivery" else out_dir / PARTICIPANTS
    for suffix, text in (
        ("txt", letters.participant_note_txt(facts)),
        ("html", letters.participant_note_html(facts)),
    ):
        write_text(note_folder / f"{letters.PARTICIPANT_NOTE}.{suffix}", text)
        if note_folder == folder:
            added.append(f"{letters.PARTICIPANT_NOTE}.{suffix}")
    # The page plays the clean master where there is one, its captions on: a viewer can switch them.
    master = master_path(folder / f"{name}.mp4").name
    played = master if master in files else f"{name}.mp4"
    page = delivery_page.PageData(
        clip=played,
        language=language,
        page_language=form.language,
        facts=replace(
            facts, files=tuple(sorted({**digests, **{f: digest(folder / f) for f in added}}.items()))
        ),
        document=doc,
        cues=tuple(cues),
        qc=[r.to_json() for r in qc.results],
        burned=form.subtitles.burns and played != master,
    )
    write_text(folder / delivery_page.PAGE, delivery_page.render(page))
    added.append(delivery_page.PAGE)
    return added


def _write_timeline(folder: Path, name: str, timeline: Sequence[Mapping[str, Any]]) -> str:
    """``<name>-tidslinje.json``: where each part of the clip is, for the check of the delivery alone."""
    clip = folder / f"{name}.mp4"
    write_json(timeline_path(clip), timeline_record(clip.name, timeline))
    return timeline_path(clip).name


def _check(
    folder: Path,
    form: Form,
    name: str,
    language: str,
    steps: StageLog,
    files_ready: Callable[[], object],
    model: str | None,
) -> QcReport:
    """The check of the files as delivered, never of the settings that made them; ``model``: as the
    transcript names it, for the report to name it too."""
    with steps.stage("check", None, None, cached=False):
        return run_check(
            folder / f"{name}.mp4",
            form,
            subtitles=folder / f"{name}.{language}.srt",
            transcript_json=(folder / f"{name}-transkription.json")
            if "json" in form.transcript.formats
            else None,
            # run.json is written only when the run ends, and an official's copy of the delivery has
            # none: the run checks the statements' lengths from the delivery's timeline file, as they do.
            run_json=None,
            timeline_json=timeline_path(folder / f"{name}.mp4"),
            language=language,
            files_ready=files_ready,
            model=model,
        )


def plan(form: Form, name: str, language: str) -> list[PlannedStep]:
    """The steps ``run`` takes: they are never cached (they are quick and read the newest clip)."""
    documents = tuple(f"{name}-transkription.{fmt}" for fmt in form.transcript.formats)
    clip = Path(f"{name}.mp4")
    videos = (clip.name, master_path(clip).name) if form.subtitles.clean_master else (clip.name,)
    return [
        PlannedStep("transcript", None, None, False, ("the transcripts", "the corrections in edits/")),
        PlannedStep("check", None, None, False, (*videos, f"{name}.{language}.srt", *documents)),
        PlannedStep("letters", None, None, False, ("the check", "meeting.yaml follow_up")),
    ]


@dataclass(frozen=True)
class Contents:
    """What a delivery is made of besides the clip: the meeting, the form, and the statements in the
    clip's order with their transcripts, where each starts in the clip and who approved it."""

    meeting: Meeting  # what the letters need of meeting.yaml beyond its facts (the follow-up)
    facts: MeetingFacts
    form: Form
    name: str  # the delivery's name, the stem of its files
    language: str
    statements: tuple[Statement, ...]
    transcripts: Mapping[str, StatementTranscript]
    spans_ms: Mapping[str, tuple[int, int]]  # where each statement starts and ends (``statement_spans``)
    approvals: Mapping[str, Approval | None]
    withdrawn: tuple[dt.date, ...] = ()  # the day each withdrawn statement was withdrawn (`hearing withdraw`)


class Documents:
    """The transcript in every format the form asks for, written into the staging folder on a thread of
    its own while the clip is rendered and joined: it is made from the plan, never from the clip (the
    PDF and Word libraries alone take half a second to load).

    Making one does nothing; ``start`` (or entering it as a context manager) builds the document and
    starts the writer, and leaving the block waits for it."""

    def __init__(self, out_dir: Path, contents: Contents, *, steps: StageLog) -> None:
        self.contents = contents
        folder = out_dir / STAGING_DELIVERY
        self._targets = [
            (fmt, folder / f"{contents.name}-transkription.{fmt}") for fmt in contents.form.transcript.formats
        ]
        self._steps = steps
        self._pool: ThreadPoolExecutor | None = None
        self._written: Future[list[str]] | None = None
        self.doc: transcript.TranscriptDocument | None = None

    def __enter__(self) -> Documents:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        c = self.contents
        first = c.transcripts[c.statements[0].id]
        self.doc = transcript.document(
            c.facts,
            c.form,
            list(c.statements),
            dict(c.transcripts),
            engine=first.engine,
            model=first.model,
            language=c.language,
            starts_ms={sid: start for sid, (start, _) in c.spans_ms.items()},
            approvals=dict(c.approvals),
            ends_ms={sid: end for sid, (_, end) in c.spans_ms.items()},
        )
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="documents")
        self._written = self._pool.submit(self._write, self.doc)

    def _write(self, doc: transcript.TranscriptDocument) -> list[str]:
        writers: dict[str, Callable[[Path], None]] = {
            "txt": lambda p: write_text(p, transcript.render_txt(doc)),
            "json": lambda p: write_json(p, transcript.render_json(doc)),
            "docx": lambda p: write_bytes(p, transcript.render_docx(doc)),
            "pdf": lambda p: write_bytes(p, transcript.render_pdf(doc)),
        }
        with self._steps.stage("transcript", None, None, cached=False):
            for fmt, target in self._targets:
                writers[fmt](target)
        return [target.name for _, target in self._targets]

    def files(self) -> list[str]:
        """The files, once written; an error writing one is raised here."""
        if self._written is None:
            raise RuntimeError("the documents were never started")
        return self._written.result()

    def close(self) -> None:
        """Wait for the thread (a run that stops leaves no writer behind)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)


def run(
    out_dir: Path,
    contents: Contents,
    staged: Sequence[str],
    documents: Documents,
    *,
    steps: StageLog,
    timeline: list[dict[str, Any]],
    cues: Sequence[Cue] = (),
    digest: Callable[[Path], str] = sha256_file,
) -> Delivered:
    """Complete the delivery of ``contents`` staged in ``OUT/.delivery-next`` (holding the clip files
    ``staged`` and the ``documents`` being written) and put it in its place. ``digest`` computes a
    file's SHA-256 (the run's hash cache: the clip's checksum is needed again for its provenance)."""
    folder = out_dir / STAGING_DELIVERY
    form, name, language = contents.form, contents.name, contents.language
    statements, approvals = contents.statements, contents.approvals
    staged = [*staged, _write_timeline(folder, name, timeline)]
    try:
        # The check measures the clip first and waits for the documents only then.
        model = documents.doc.model if documents.doc is not None else None
        qc = _check(folder, form, name, language, steps, documents.files, model)
        files = [*staged, *documents.files()]
    finally:
        documents.close()
    assert documents.doc is not None  # written: files() returned
    files += write_qc_report(folder, qc)
    with steps.stage("letters", None, None, cached=False):
        files += _letters(
            out_dir,
            folder,
            files,
            documents.doc,
            contents.meeting,
            form,
            name,
            language,
            qc,
            cues,
            timeline,
            digest,
            withdrawn=contents.withdrawn,
        )
    sums = "".join(f"{digest(folder / file)}  {file}\n" for file in sorted(files))
    write_text(folder / "SHA256SUMS", sums)

    where = outcome(qc.passed, form, statements, approvals)
    unapproved = tuple(s for s in statements if not is_approved(approvals.get(s.id)))
    pid = os.getpid()
    if where == "failed":
        target = out_dir / FAILED_DELIVERY
        replace_folder(folder, target, out_dir / f"{FAILED_ASIDE_PREFIX}{pid}")
    elif where == "draft":
        target = out_dir / DRAFT
        replace_folder(folder, target, out_dir / f"{DRAFT_ASIDE_PREFIX}{pid}")
    else:
        target = out_dir / DELIVERY
        replace_folder(folder, target, out_dir / f"{ASIDE_PREFIX}{pid}")
        # An earlier failure or draft is no longer what this folder delivers.
        shutil.rmtree(out_dir / FAILED_DELIVERY, ignore_errors=True)
        shutil.rmtree(out_dir / DRAFT, ignore_errors=True)
    return Delivered(where, target, tuple(files), qc, unapproved)


# Already compressed: stored as they are, so packing costs a copy and nothing more.
_STORED = {".mp4", ".pdf", ".docx", ".zip"}


def pack(out_dir: Path, name: str, *, make: bool) -> Path | None:
    """``OUT/<name>.zip``: the delivery in one file for sending, its checksums inside; written complete or
    not at all. Without ``make`` an earlier ZIP is removed, as it no longer holds this delivery."""
    import zipfile

    from pipeline.files import atomic_path

    target = out_dir / f"{name}.zip"
    if not make:
        if target.exists():
            target.unlink()
            log.info("removed %s: it held an earlier delivery (use --zip for a new one)", target.name)
        return None
    folder = out_dir / DELIVERY
    with atomic_path(target) as temp, zipfile.ZipFile(temp, "w", allowZip64=True) as archive:
        for path in sorted(folder.iterdir()):
            if path.is_file():
                kind = zipfile.ZIP_STORED if path.suffix.lower() in _STORED else zipfile.ZIP_DEFLATED
                archive.write(path, f"{name}/{path.name}", compress_type=kind)
    log.info("the delivery packed for sending: %s", target)
    return target
