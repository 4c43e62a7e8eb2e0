"""Transcript: the text of the statements as documents an official can put on the agenda.

``document`` makes one frozen TranscriptDocument from the meeting's facts, the form and the statements'
transcripts (``build``: the same from meeting.yaml and the folder's name);
``render_txt``, ``render_json``, ``render_docx`` and ``render_pdf`` turn it into the delivered files.
Speaker names appear only where the speaker consented (form ``transcript.speaker_labels: consent``).
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeline import escape
from pipeline.config import Form
from pipeline.meeting_facts import MeetingFacts, committee_meeting
from pipeline.model_note import ModelNote, note_for
from pipeline.models import Approval, Segment, Statement, StatementTranscript
from pipeline.models import approved as is_approved
from pipeline.texts import documents as words
from pipeline.timefmt import timecode

VERSION = 2  # 2: a statement's times are the clip's, the recording's length its own field; the
# committee meeting's date is the meeting's


@dataclass(frozen=True)
class TranscriptEntry:
    number: int
    statement: Statement
    speaker_label: str  # the name where consented, else "Borger N"
    named: bool
    start_ms: int | None  # where the statement starts in the clip; None while there is no clip
    transcript: StatementTranscript
    approval: Approval | None = None  # who read and approved the text, None: nobody yet
    end_ms: int | None = None  # where it ends in the clip (its part of the timeline); None: no clip yet


@dataclass(frozen=True)
class TranscriptDocument:
    meeting: MeetingFacts
    form_name: str
    agreed_with: str | None
    committee_meeting: dt.date | None
    language: str
    engine: str
    model: str
    timecodes: bool
    entries: tuple[TranscriptEntry, ...]


# ------------------------------------------------------------------------------------------ pure core


def speaker_label(statement: Statement, number: int, form: Form) -> tuple[str, bool]:
    named = (
        form.transcript.speaker_labels == "consent"
        and statement.consent.name_on_screen
        and bool(statement.speaker)
    )
    return (statement.speaker or "", True) if named else (words.citizen(number), False)


def document(
    meeting: MeetingFacts,
    form: Form,
    statements: list[Statement],
    transcripts: dict[str, StatementTranscript],
    *,
    engine: str,
    model: str,
    language: str,
    starts_ms: dict[str, int] | None = None,
    approvals: dict[str, Approval | None] | None = None,
    ends_ms: Mapping[str, int] | None = None,
) -> TranscriptDocument:
    """``starts_ms`` and ``ends_ms``: where each statement's part of the clip starts and ends (the
    clip's timeline, ``cut.Part``), the one timing every output of the delivery states."""
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
                end_ms=ends_ms.get(statement.id) if ends_ms else None,
            )
        )
    return TranscriptDocument(
        meeting=meeting,
        form_name=form.name,
        agreed_with=form.agreed_with,
        committee_meeting=committee_meeting(meeting, form),
        language=language,
        engine=engine,
        model=model,
        timecodes=form.transcript.timecodes,
        entries=tuple(entries),
    )


def model_note(doc: TranscriptDocument) -> ModelNote:
    return note_for(doc.model)


def header_lines(doc: TranscriptDocument) -> list[str]:
    """The transcript's facts, one "label: value" a line, the speech model and its published Danish
    error rate last."""
    m = doc.meeting
    lines = words.header_lines(
        date=m.date,
        place=m.place,
        organiser=m.organiser,
        committee=m.committee,
        committee_meeting=doc.committee_meeting,
        statements=len(doc.entries),
        sound_only=sum(e.statement.sound_only for e in doc.entries),
        approved=sum(is_approved(e.approval) for e in doc.entries),
        changed=[e.number for e in doc.entries if e.approval is not None and not e.approval.valid],
    )
    return [*lines, words.model_line(model_note(doc))]


def approval_line(entry: TranscriptEntry) -> str:
    a = entry.approval
    return words.approval_line(a.by, a.at, a.valid) if a else words.approval_line(None, None, True)


def machine_note(doc: TranscriptDocument) -> str:
    return words.machine_note(doc.model, doc.engine)


def entry_heading(entry: TranscriptEntry, timecodes: bool) -> str:
    parts = [entry.statement.topic] if entry.statement.topic else []
    parts.append(entry.speaker_label)
    if entry.statement.group:
        parts.append(entry.statement.group)
    # Three values on one line: a direction override in the topic must not turn the speaker's name around.
    heading = f"{entry.number}. " + " · ".join(map(escape.bidi_closed, parts))
    if timecodes and entry.start_ms is not None:
        heading += f"  [{timecode(entry.start_ms)}]"
    return heading


def outline_title(entry: TranscriptEntry) -> str:
    """The statement's entry in the PDF's outline: its heading without the time, as one line."""
    return escape.document_property(entry_heading(entry, timecodes=False))


def paragraphs(entry: TranscriptEntry) -> list[tuple[Segment, str]]:
    """The statement's text, one paragraph a segment, each with its time (in the clip, once there is one)."""
    offset = entry.start_ms or 0
    return [
        (segment, timecode(offset + segment.start_ms))
        for segment in entry.transcript.segments
        if segment.text.strip()
    ]


NO_TEXT_NOTE = words.NO_TEXT_NOTE


def render_txt(doc: TranscriptDocument) -> str:
    out = [words.KIND, doc.meeting.title, "", *header_lines(doc), "", machine_note(doc), ""]
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
    # Plain text too is read by programs (a terminal, an agenda system): no control characters.
    return escape.printable("\n".join(out)).rstrip() + "\n"


TIMES_NOTE = (
    "milliseconds in the clip: a statement's start_ms, end_ms and duration_ms are its part of the clip, "
    "its segments' and words' times are from that start; recording_duration_ms is the length of the "
    "recording it was cut from"
)


def render_json(doc: TranscriptDocument) -> dict[str, Any]:
    from pipeline.stages.transcribe import transcript_to_json

    # A lone surrogate (a YAML escape) cannot be written as UTF-8: the one thing JSON cannot carry.
    return escape.encodable(
        {
            "kind": "hearing-pipeline transcript",
            "version": VERSION,
            "meeting": {
                "title": doc.meeting.title,
                "date": doc.meeting.date.isoformat() if doc.meeting.date else None,
                "place": doc.meeting.place,
                "organiser": doc.meeting.organiser,
                "committee": doc.meeting.committee,
                # When the committee sees the response: the form's agreed date, else meeting.yaml's.
                "committee_meeting": doc.committee_meeting.isoformat() if doc.committee_meeting else None,
            },
            "form": {"name": doc.form_name, "agreed_with": doc.agreed_with},
            "language": doc.language,
            "engine": doc.engine,
            "model": doc.model,
            # What the header says about the model, as fields: its published Danish error rate (None
            # where none is known) with the source, never measured on this meeting.
            "model_note": {**model_note(doc).to_json(), "text": words.model_text(model_note(doc))},
            "times": TIMES_NOTE,
            "statements": [
                {
                    "number": entry.number,
                    "id": entry.statement.id,
                    "speaker": entry.speaker_label if entry.named else None,
                    "speaker_label": entry.speaker_label,
                    "group": entry.statement.group,
                    "topic": entry.statement.topic,
                    "recording_sha256": entry.statement.recording.sha256,
                    # In the clip: the statements follow one another, never overlap.
                    "start_ms": entry.start_ms,
                    "end_ms": entry.end_ms,
                    "duration_ms": (
                        entry.end_ms - entry.start_ms
                        if entry.start_ms is not None and entry.end_ms is not None
                        else None
                    ),
                    # The whole recording the statement was cut from, as long as it is on its own.
                    "recording_duration_ms": entry.statement.probe.duration_ms,
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
    )


def render_docx(doc: TranscriptDocument) -> bytes:
    import docx
    from docx.shared import Pt, RGBColor

    # Word's XML carries no control characters or lone surrogates (python-docx refuses them): every text
    # goes in through escape.printable, every core property through escape.document_property.
    text = escape.printable
    document = docx.Document()
    core = document.core_properties
    core.title = escape.document_property(words.document_title(doc.meeting.title))
    core.language = escape.document_property(doc.language)
    core.author = escape.document_property(doc.meeting.organiser or "hearing-pipeline")
    core.comments = escape.document_property(machine_note(doc))
    style = document.styles["Normal"]
    style.font.name = "Calibri"
    style.font.size = Pt(11)

    document.add_heading(words.KIND, level=0)
    document.add_heading(text(doc.meeting.title), level=1)
    for line in header_lines(doc):
        label, _, value = line.partition(": ")
        paragraph = document.add_paragraph()
        paragraph.add_run(text(f"{label}: ")).bold = True
        paragraph.add_run(text(value))
    note = document.add_paragraph().add_run(text(machine_note(doc)))
    note.italic = True
    note.font.color.rgb = RGBColor(0x55, 0x55, 0x55)

    for entry in doc.entries:
        document.add_heading(text(entry_heading(entry, doc.timecodes)), level=2)
        approval = document.add_paragraph().add_run(text(approval_line(entry)))
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
            paragraph.add_run(text(segment.text.strip()))
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


PDF_FONT = "DejaVu"  # embedded from the files the clip's cards use: the same letters everywhere
# The total page count in the footer: fpdf2 puts it wherever this string is drawn, so it is made of
# characters escape.printable takes out of every text, which therefore can never spell it.
PAGE_COUNT = "\ufdd0nb\ufdd0"


# The documents are PDF/A-2u (ISO 19005-2, level U: every character also maps to Unicode, so the text
# can be searched and copied years later): fonts embedded, XMP metadata, the sRGB output intent fpdf2
# ships (sRGB2014.icc, added by fpdf2 itself when the document has none).
PDFA = "PDFA_2U"
CREATOR = "hearing-pipeline"
# The date a document says it was made where the meeting has none: a date from the inputs keeps the same
# document byte for byte the same (the delivery's checksums are compared to reuse it).
NO_DATE = dt.date(2000, 1, 1)


def pdf_created(date: dt.date | None) -> dt.datetime:
    """When a document says it was made: the meeting's day (an input, so the same inputs give the same
    bytes on any day they are run), at noon UTC so that no time zone moves it to another day."""
    return dt.datetime.combine(date or NO_DATE, dt.time(12), tzinfo=dt.UTC)


def pdf_xmp(title: str, author: str, language: str, created: dt.datetime) -> str:
    """The XMP metadata of a PDF/A document (without the ``<?xpacket>`` wrapper, which fpdf2 adds):
    its PDF/A part and level, title, author, language, the program and the dates. Each value is
    ``escape.xmp_text``: one line, at most 255 characters, XML's specials as references."""
    from fpdf.enums import DocumentCompliance

    level = DocumentCompliance.coerce(PDFA)  # the part and level fpdf2 writes to
    esc = escape.xmp_text
    stamp = created.astimezone(dt.UTC).isoformat(timespec="seconds")
    return "\n".join(
        (
            '<x:xmpmeta xmlns:x="adobe:ns:meta/">',
            ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">',
            '  <rdf:Description rdf:about=""',
            '    xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/"',
            '    xmlns:dc="http://purl.org/dc/elements/1.1/"',
            '    xmlns:xmp="http://ns.adobe.com/xap/1.0/"',
            '    xmlns:pdf="http://ns.adobe.com/pdf/1.3/">',
            f"   <pdfaid:part>{level.part}</pdfaid:part>",
            f"   <pdfaid:conformance>{level.conformance}</pdfaid:conformance>",
            f'   <dc:title><rdf:Alt><rdf:li xml:lang="x-default">{esc(title)}</rdf:li></rdf:Alt></dc:title>',
            f"   <dc:creator><rdf:Seq><rdf:li>{esc(author)}</rdf:li></rdf:Seq></dc:creator>",
            f"   <dc:language><rdf:Bag><rdf:li>{esc(language)}</rdf:li></rdf:Bag></dc:language>",
            "   <dc:format>application/pdf</dc:format>",
            f"   <xmp:CreatorTool>{CREATOR}</xmp:CreatorTool>",
            f"   <xmp:CreateDate>{stamp}</xmp:CreateDate>",
            f"   <xmp:ModifyDate>{stamp}</xmp:ModifyDate>",
            f"   <xmp:MetadataDate>{stamp}</xmp:MetadataDate>",
            f"   <pdf:Producer>{CREATOR}</pdf:Producer>",
            "  </rdf:Description>",
            " </rdf:RDF>",
            "</x:xmpmeta>",
        )
    )


def pdf_document(
    title: str, header: str, language: str, author: str | None, created: dt.date | None = None
) -> Any:
    """An A4 PDF/A-2u document with the fonts embedded (a subset of DejaVu Sans, æ ø å and all), the
    header on every page and "Side N af M" at the foot; for the transcript and the cover letter alike.
    Every text drawn with ``cell`` or ``multi_cell`` goes through ``escape.pdf_text``; the metadata
    through ``escape.document_property`` (and ``escape.xmp_text`` in the XMP); ``created``: the
    meeting's date (``pdf_created``)."""
    from fpdf import FPDF

    from pipeline import fonts

    class _Document(FPDF):
        def cell(
            self, w: float | None = None, h: float | None = None, text: str = "", *args: Any, **kwargs: Any
        ) -> Any:
            return super().cell(w, h, escape.pdf_text(text), *args, **kwargs)

        def multi_cell(
            self, w: float, h: float | None = None, text: str = "", *args: Any, **kwargs: Any
        ) -> Any:
            return super().multi_cell(w, h, escape.pdf_text(text), *args, **kwargs)

        def header(self) -> None:
            self.set_font(PDF_FONT, "", 8)
            self.set_text_color(0x55, 0x55, 0x55)
            # One line whatever the title: shortened with "…" to the width of the page.
            self.cell(0, 5, pdf_fit_width(self, header, self.epw), new_x="LMARGIN", new_y="NEXT")
            self.set_draw_color(0xCC, 0xCC, 0xCC)
            self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
            self.ln(4)
            self.set_text_color(0, 0, 0)

        def footer(self) -> None:
            self.set_y(-14)
            self.set_font(PDF_FONT, "", 8)
            self.set_text_color(0x55, 0x55, 0x55)
            # Our own words and the page-count alias, which pdf_text would take out.
            super().cell(0, 6, words.page_footer(self.page_no(), PAGE_COUNT), align="C")

    pdf = _Document(format="A4", enforce_compliance=PDFA)
    pdf.set_margins(20, 16, 20)
    pdf.set_auto_page_break(True, margin=20)
    for style, bold, italic in (
        ("", False, False),
        ("B", True, False),
        ("I", False, True),
        ("BI", True, True),
    ):
        pdf.add_font(PDF_FONT, style, str(fonts.font_path(bold, italic)))
    title, language = escape.document_property(title), escape.document_property(language)
    author = escape.document_property(author or CREATOR)
    pdf.set_title(title)
    pdf.set_lang(language)
    pdf.set_author(author)
    pdf.set_creator(CREATOR)
    pdf.alias_nb_pages(PAGE_COUNT)
    # A date from the inputs and the document ID fpdf2 derives from the bytes and that date: the same
    # document byte for byte the same.
    stamp = pdf_created(created)
    pdf.set_creation_date(stamp)
    pdf.set_xmp_metadata(pdf_xmp(title, author, language, stamp))
    pdf.add_page()
    return pdf


def pdf_fit_width(pdf: Any, text: str, width: float) -> str:
    """``text`` on one line no wider than ``width`` in the current font, shortened with "…" where it is
    wider; found by halving, so a title of any length costs a few measurements."""
    line = escape.pdf_text(escape.one_line(text))
    if pdf.get_string_width(line) <= width:
        return line
    low, high = 0, len(line)  # the longest prefix that fits with "…" is at least low, less than high
    while high - low > 1:
        middle = (low + high) // 2
        if pdf.get_string_width(line[:middle] + escape.ELLIPSIS) <= width:
            low = middle
        else:
            high = middle
    return line[: escape.cut_point(line, low)].rstrip() + escape.ELLIPSIS


def render_pdf(doc: TranscriptDocument) -> bytes:
    title = doc.meeting.title
    pdf = pdf_document(
        words.document_title(title),
        words.page_header(title, doc.form_name),
        doc.language,
        doc.meeting.organiser,
        doc.meeting.date,
    )
    pdf.page_mode = "USE_OUTLINES"  # the viewer opens with the statements listed beside the pages
    width = pdf.w - pdf.l_margin - pdf.r_margin
    pdf.set_font(PDF_FONT, "B", 18)
    pdf.multi_cell(width, 9, words.KIND, align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(PDF_FONT, "B", 13)
    pdf.multi_cell(width, 7, title, align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    for line in header_lines(doc):
        label, _, value = line.partition(": ")
        pdf.set_font(PDF_FONT, "B", 10)
        pdf.cell(pdf.get_string_width(f"{label}: ") + 1, 5.5, f"{label}: ")
        pdf.set_font(PDF_FONT, "", 10)
        pdf.multi_cell(0, 5.5, value, align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font(PDF_FONT, "I", 9)
    pdf.set_text_color(0x55, 0x55, 0x55)
    pdf.multi_cell(width, 4.5, machine_note(doc), align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0, 0, 0)
    for entry in doc.entries:
        pdf.ln(4)
        if pdf.will_page_break(24):
            pdf.add_page()
        # An entry in the document outline (the viewer's bookmarks) where the statement starts.
        pdf.start_section(outline_title(entry))
        pdf.set_font(PDF_FONT, "B", 12)
        pdf.multi_cell(
            width, 6.5, entry_heading(entry, doc.timecodes), align="L", new_x="LMARGIN", new_y="NEXT"
        )
        pdf.set_font(PDF_FONT, "I", 8.5)
        pdf.set_text_color(0x1E, 0x7B, 0x34) if is_approved(entry.approval) else pdf.set_text_color(
            0xB3, 0x26, 0x1E
        )
        pdf.multi_cell(width, 4.5, approval_line(entry), align="L", new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(0, 0, 0)
        pdf.ln(1)
        if entry.transcript.no_text:
            pdf.set_font(PDF_FONT, "I", 10)
            pdf.multi_cell(width, 5.5, NO_TEXT_NOTE, align="L", new_x="LMARGIN", new_y="NEXT")
        for segment, code in paragraphs(entry):
            if doc.timecodes:
                pdf.set_font(PDF_FONT, "", 8)
                pdf.set_text_color(0x66, 0x66, 0x66)
                pdf.cell(17, 5.5, f"[{code}]")
                pdf.set_text_color(0, 0, 0)
            pdf.set_font(PDF_FONT, "", 10.5)
            pdf.multi_cell(0, 5.5, segment.text.strip(), align="L", new_x="LMARGIN", new_y="NEXT")
            pdf.ln(0.8)
    return bytes(pdf.output())
