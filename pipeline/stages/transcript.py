"""Transcript: the text of the statements as documents an official can put on the agenda.

``build`` makes one frozen TranscriptDocument from the meeting, the form and the statements' transcripts;
``render_txt``, ``render_json`` and ``render_docx`` turn it into the delivered files. Speaker names appear
only where the speaker consented (form ``transcript.speaker_labels: consent``).
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from typing import Any

from pipeline.config import Form, Meeting
from pipeline.models import Approval, Segment, Statement, StatementTranscript

VERSION = 1

DANISH_MONTHS = (
    "januar", "februar", "marts", "april", "maj", "juni",
    "juli", "august", "september", "oktober", "november", "december",
)  # fmt: skip


@dataclass(frozen=True)
class TranscriptEntry:
    number: int
    statement: Statement
    speaker_label: str  # the name where consented, else "Borger N"
    named: bool
    start_ms: int | None  # where the statement starts in the clip; None while there is no clip
    transcript: StatementTranscript
    approval: Approval | None = None  # who read and approved the text, None: nobody yet


@dataclass(frozen=True)
class TranscriptDocument:
    title: str
    date: dt.date | None
    place: str | None
    organiser: str | None
    committee: str | None
    form_name: str
    agreed_with: str | None
    committee_meeting: dt.date | None
    language: str
    engine: str
    model: str
    timecodes: bool
    entries: tuple[TranscriptEntry, ...]


# ------------------------------------------------------------------------------------------ pure core


def danish_date(value: dt.date | None) -> str:
    if value is None:
        return "uden dato"
    return f"{value.day}. {DANISH_MONTHS[value.month - 1]} {value.year}"


def timecode(ms: int) -> str:
    seconds = max(0, ms) // 1000
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}"


def speaker_label(statement: Statement, number: int, form: Form) -> tuple[str, bool]:
    named = (
        form.transcript.speaker_labels == "consent"
        and statement.consent.name_on_screen
        and bool(statement.speaker)
    )
    return (statement.speaker or "", True) if named else (f"Borger {number}", False)


def build(
    meeting: Meeting,
    meeting_name: str,
    form: Form,
    statements: list[Statement],
    transcripts: dict[str, StatementTranscript],
    *,
    engine: str,
    model: str,
    language: str,
    starts_ms: dict[str, int] | None = None,
    approvals: dict[str, Approval | None] | None = None,
) -> TranscriptDocument:
    entries = []
    for number, statement in enumerate(statements, start=1):
        label, named = speaker_label(statement, number, form)
        entries.append(
            TranscriptEntry(
                number=number,
                statement=statement,
                speaker_label=label,
                named=named,
                start_ms=starts_ms.get(statement.id) if starts_ms else None,
                transcript=transcripts[statement.id],
                approval=(approvals or {}).get(statement.id),
            )
        )
    return TranscriptDocument(
        title=meeting.title or meeting_name,
        date=meeting.date,
        place=meeting.place,
        organiser=meeting.organiser,
        committee=meeting.committee,
        form_name=form.name,
        agreed_with=form.agreed_with,
        committee_meeting=form.committee_meeting,
        language=language,
        engine=engine,
        model=model,
        timecodes=form.transcript.timecodes,
        entries=tuple(entries),
    )


def header_lines(doc: TranscriptDocument) -> list[str]:
    lines = [f"Dato: {danish_date(doc.date)}"]
    if doc.place:
        lines.append(f"Sted: {doc.place}")
    if doc.organiser:
        lines.append(f"Arrangør: {doc.organiser}")
    if doc.committee:
        lines.append(f"Til: {doc.committee}")
    if doc.committee_meeting:
        lines.append(f"Vises på udvalgsmødet: {danish_date(doc.committee_meeting)}")
    lines.append(f"Antal indlæg: {len(doc.entries)}")
    approved = sum(e.approval is not None for e in doc.entries)
    lines.append(f"Godkendt: {approved} af {len(doc.entries)} indlæg er læst og godkendt af en person")
    return lines


def approval_line(entry: TranscriptEntry) -> str:
    if entry.approval is None:
        return "Ikke godkendt: teksten er ikke læst igennem af en person."
    when = f", {entry.approval.at.replace('T', ' ')}" if entry.approval.at else ""
    return f"Godkendt af {entry.approval.by}{when}."


def machine_note(doc: TranscriptDocument) -> str:
    return (
        f"Teksten er skrevet automatisk af talegenkendelse (Whisper {doc.model}, {doc.engine}) og kan "
        "indeholde fejl; lyt til optagelsen, hvis en formulering er vigtig."
    )


def entry_heading(entry: TranscriptEntry, timecodes: bool) -> str:
    parts = [entry.statement.topic] if entry.statement.topic else []
    parts.append(entry.speaker_label)
    if entry.statement.group:
        parts.append(entry.statement.group)
    heading = f"{entry.number}. " + " · ".join(parts)
    if timecodes and entry.start_ms is not None:
        heading += f"  [{timecode(entry.start_ms)}]"
    return heading


def paragraphs(entry: TranscriptEntry) -> list[tuple[Segment, str]]:
    """The statement's text, one paragraph a segment, each with its time (in the clip, once there is one)."""
    offset = entry.start_ms or 0
    return [
        (segment, timecode(offset + segment.start_ms))
        for segment in entry.transcript.segments
        if segment.text.strip()
    ]


NO_TEXT_NOTE = "[Ingen tekst genkendt: talegenkendelsen hørte tale, men skrev intet. Lyt til optagelsen.]"


def render_txt(doc: TranscriptDocument) -> str:
    out = ["Høringssvar fra borgermødet", doc.title, "", *header_lines(doc), "", machine_note(doc), ""]
    for entry in doc.entries:
        out.append("")
        out.append(entry_heading(entry, doc.timecodes))
        out.append(approval_line(entry))
        out.append("")
        if entry.transcript.no_text:
            out.append(NO_TEXT_NOTE)
        for segment, code in paragraphs(entry):
            text = segment.text.strip()
            out.append(f"[{code}] {text}" if doc.timecodes else text)
    return "\n".join(out).rstrip() + "\n"


def render_json(doc: TranscriptDocument) -> dict[str, Any]:
    from pipeline.stages.transcribe import transcript_to_json

    return {
        "kind": "hearing-pipeline transcript",
        "version": VERSION,
        "meeting": {
            "title": doc.title,
            "date": doc.date.isoformat() if doc.date else None,
            "place": doc.place,
            "organiser": doc.organiser,
            "committee": doc.committee,
        },
        "form": {
            "name": doc.form_name,
            "agreed_with": doc.agreed_with,
            "committee_meeting": doc.committee_meeting.isoformat() if doc.committee_meeting else None,
        },
        "language": doc.language,
        "engine": doc.engine,
        "model": doc.model,
        "statements": [
            {
                "number": entry.number,
                "id": entry.statement.id,
                "speaker": entry.speaker_label if entry.named else None,
                "speaker_label": entry.speaker_label,
                "group": entry.statement.group,
                "topic": entry.statement.topic,
                "recording_sha256": entry.statement.recording.sha256,
                "start_ms": entry.start_ms,
                "duration_ms": entry.statement.probe.duration_ms,
                "text": entry.transcript.text,
                "no_text": entry.transcript.no_text,
                "flags": ["no_text_recognised"] if entry.transcript.no_text else [],
                "seed": entry.transcript.seed,
                "approved": entry.approval.to_json() if entry.approval else None,
                "segments": transcript_to_json(entry.transcript)["segments"],
            }
            for entry in doc.entries
        ],
    }


def render_docx(doc: TranscriptDocument) -> bytes:
    import docx
    from docx.shared import Pt, RGBColor

    document = docx.Document()
    core = document.core_properties
    core.title = f"Høringssvar: {doc.title}"
    core.language = doc.language
    core.author = doc.organiser or "hearing-pipeline"
    core.comments = machine_note(doc)
    style = document.styles["Normal"]
    style.font.name = "Calibri"
    style.font.size = Pt(11)

    document.add_heading("Høringssvar fra borgermødet", level=0)
    document.add_heading(doc.title, level=1)
    for line in header_lines(doc):
        label, _, value = line.partition(": ")
        paragraph = document.add_paragraph()
        paragraph.add_run(f"{label}: ").bold = True
        paragraph.add_run(value)
    note = document.add_paragraph().add_run(machine_note(doc))
    note.italic = True
    note.font.color.rgb = RGBColor(0x55, 0x55, 0x55)

    for entry in doc.entries:
        document.add_heading(entry_heading(entry, doc.timecodes), level=2)
        approval = document.add_paragraph().add_run(approval_line(entry))
        approval.italic = True
        approval.font.size = Pt(9)
        if entry.transcript.no_text:
            document.add_paragraph().add_run(NO_TEXT_NOTE).italic = True
        for segment, code in paragraphs(entry):
            paragraph = document.add_paragraph()
            if doc.timecodes:
                stamp = paragraph.add_run(f"[{code}] ")
                stamp.font.color.rgb = RGBColor(0x66, 0x66, 0x66)
                stamp.font.size = Pt(9)
            paragraph.add_run(segment.text.strip())
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()
