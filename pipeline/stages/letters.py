"""Letters: the cover letter to the official and the follow-up note to the participants.

The method behind the tool: agree beforehand that the committee sees the response at its next meeting,
and show the participants clearly how the meeting is followed up, who is responsible for what, by when.
The cover letter (``<name>-foelgebrev.pdf``) says what is delivered, for which committee meeting, as agreed
with whom, how many statements and how long, that the clip passed the check of the agreed form, and the
checksums: ready to attach to the agenda item. The participant note (``deltagerbrev.txt`` and ``.html``)
says what was sent, to whom, when the committee will see it, who to contact, and what was agreed
(meeting.yaml ``follow_up:``).

Pure: ``facts`` gathers what both say; ``cover_letter_pdf``, ``participant_note_txt`` and
``participant_note_html`` write them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pipeline import escape
from pipeline.config import Agreement, FollowUp, Form, WorkingGroup
from pipeline.meeting_facts import MeetingFacts, committee_meeting
from pipeline.model_note import ModelNote, note_for
from pipeline.stages.transcript import PDF_FONT, pdf_document
from pipeline.texts import letters as words
from pipeline.texts.documents import danish_date, model_line
from pipeline.timefmt import duration_words

COVER_LETTER_SUFFIX = "-foelgebrev.pdf"
PARTICIPANT_NOTE = "deltagerbrev"


@dataclass(frozen=True)
class Facts:
    """What the letters say, from meeting.yaml, the form and the delivery."""

    meeting: MeetingFacts
    agreed_with: str | None
    committee_meeting: dt.date | None
    form_name: str
    model: ModelNote  # the speech model that wrote the transcript, and its published Danish error rate
    statements: int
    approved: int
    clip_ms: int
    changed_after_approval: tuple[str, ...]  # "Indlæg 3: ændret efter godkendelse af Ida Holm (...)"
    check_passed: bool
    check_verdict: str
    files: tuple[tuple[str, str], ...]  # (file name, SHA-256) of the delivered files
    contact: str | None  # who to contact, in one line
    next_steps: tuple[str, ...]
    groups: tuple[WorkingGroup, ...]
    agreements: tuple[Agreement, ...]
    next_meeting: dt.date | None
    next_meeting_place: str | None
    sound_only: int = 0  # of ``statements``, those without a picture (Statement.sound_only)
    withdrawn: tuple[dt.date, ...] = ()  # the day each withdrawn statement was withdrawn; never who


def facts(
    meeting: MeetingFacts,
    follow: FollowUp | None,
    form: Form,
    *,
    model: str,
    statements: int,
    sound_only: int = 0,
    approved: int,
    clip_ms: int,
    changed_after_approval: Sequence[str] = (),
    check_passed: bool,
    check_verdict: str,
    files: Mapping[str, str],
) -> Facts:
    """``follow``: meeting.yaml's ``follow_up:``; ``model``: as the transcript names it."""
    contact = None
    if follow and follow.contact:
        c = follow.contact
        contact = ", ".join(part for part in (c.name, c.role, c.email, c.phone) if part)
    elif meeting.organiser:
        contact = meeting.organiser
    return Facts(
        meeting=meeting,
        agreed_with=form.agreed_with,
        committee_meeting=committee_meeting(meeting, form),
        form_name=form.name,
        model=note_for(model),
        statements=statements,
        sound_only=sound_only,
        approved=approved,
        clip_ms=clip_ms,
        changed_after_approval=tuple(changed_after_approval),
        check_passed=check_passed,
        check_verdict=check_verdict,
        files=tuple(sorted(files.items())),
        contact=contact,
        next_steps=tuple(follow.next_steps) if follow else (),
        groups=tuple(follow.groups) if follow else (),
        agreements=tuple(follow.agreements) if follow else (),
        next_meeting=follow.next_meeting if follow else None,
        next_meeting_place=follow.next_meeting_place if follow else None,
    )


# ----------------------------------------------------------------------------------- cover letter


def cover_letter_lines(f: Facts) -> list[tuple[str, str]]:
    """The letter as (kind, text) pairs: "h" a heading, "p" a paragraph, "kv" a label and value, "file"
    a delivered file's name and its checksum (a line each)."""
    m = f.meeting
    meeting = words.meeting(m.title, m.date, comma=True)
    when = danish_date(f.committee_meeting) if f.committee_meeting else words.NEXT_MEETING
    lines: list[tuple[str, str]] = [
        ("h", words.cover_heading(meeting)),
        # The official where one is named; the committee once, not also as the addressee.
        *((("kv", f"{words.TO}: {f.agreed_with}"),) if f.agreed_with else ()),
        ("kv", f"{words.COMMITTEE}: {m.addressee}"),
        ("kv", f"{words.FOR_MEETING}: {when}"),
        ("kv", f"{words.FROM}: {m.organiser or words.ORGANISER}"),
        ("p", words.sent(meeting, m.place, f.agreed_with)),
        ("p", words.contents(f.statements, f.sound_only, duration_words(f.clip_ms))),
        ("p", words.check(f.check_passed, f.form_name, f.check_verdict)),
        ("p", words.approved(f.approved, f.statements)),
        *(("p", words.withdrawn(day)) for day in f.withdrawn),
        ("p", model_line(f.model)),
        *(("p", words.changed_unapproved(line)) for line in f.changed_after_approval),
        ("p", words.committee_sees(m.addressee, f.committee_meeting)),
        ("h", words.CHECKSUMS),
        *(("file", f"{name}\n{digest}") for name, digest in f.files),
        ("p", words.CHECKSUMS_NOTE),
    ]
    if f.contact:
        lines.append(("p", words.questions_to(f.contact)))
    return lines


def cover_letter_pdf(f: Facts) -> bytes:
    title = f.meeting.title
    pdf = pdf_document(
        words.cover_title(title),
        words.cover_header(title, f.form_name),
        "da",
        f.meeting.organiser,
        f.meeting.date,
    )
    width = pdf.w - pdf.l_margin - pdf.r_margin
    for kind, text in cover_letter_lines(f):
        if kind == "h":
            pdf.ln(3)
            pdf.set_font(PDF_FONT, "B", 13)
            pdf.multi_cell(width, 7, text, align="L", new_x="LMARGIN", new_y="NEXT")
            pdf.ln(1)
        elif kind == "kv":
            label, _, value = text.partition(": ")
            pdf.set_font(PDF_FONT, "B", 10)
            pdf.cell(pdf.get_string_width(f"{label}: ") + 1, 5.5, f"{label}: ")
            pdf.set_font(PDF_FONT, "", 10)
            pdf.multi_cell(0, 5.5, value, align="L", new_x="LMARGIN", new_y="NEXT")
        elif kind == "file":
            # The name, then its checksum on a line of its own: a checksum never wraps, so every file's
            # block looks the same whatever the length of its name.
            name, _, digest = text.partition("\n")
            pdf.ln(1)
            pdf.set_font(PDF_FONT, "", 8.5)
            pdf.multi_cell(width, 4.2, name, align="L", new_x="LMARGIN", new_y="NEXT")
            pdf.set_font(PDF_FONT, "", 7)
            pdf.set_text_color(0x44, 0x44, 0x44)
            pdf.cell(width, 3.6, digest, new_x="LMARGIN", new_y="NEXT")
            pdf.set_text_color(0, 0, 0)
        else:
            pdf.ln(2)
            pdf.set_font(PDF_FONT, "", 10.5)
            pdf.multi_cell(width, 5.5, text, align="L", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


# ------------------------------------------------------------------------------- participant note


def participant_sections(f: Facts) -> list[tuple[str, list[str]]]:
    """The note as (heading, paragraphs or list items) sections."""
    m = f.meeting
    sent = [
        words.thanks(
            words.meeting(m.title, m.date, comma=False), f.statements, f.sound_only, duration_words(f.clip_ms)
        ),
        words.sent_to(m.addressee, f.agreed_with),
        words.committee_sees(m.addressee, f.committee_meeting),
    ]
    sections = [(words.SENT, sent)]
    if f.agreements:
        sections.append((words.AGREED, [words.agreement(a.who, a.what, a.by) for a in f.agreements]))
    if f.next_steps:
        sections.append((words.NEXT_STEPS, list(f.next_steps)))
    if f.groups:
        sections.append(
            (
                words.GROUPS,
                [words.group(g.name, g.coordinator, g.meets, g.costs, g.costs_covered_by) for g in f.groups],
            )
        )
    if f.next_meeting:
        sections.append(
            (words.NEXT_CITIZEN_MEETING, [words.next_meeting(f.next_meeting, f.next_meeting_place)])
        )
    if f.contact:
        sections.append((words.QUESTIONS, [words.contact(f.contact)]))
    return sections


def participant_note_txt(f: Facts) -> str:
    out = [words.note_title(f.meeting.title), ""]
    for heading, items in participant_sections(f):
        out += [heading, "-" * len(heading)]
        listed = heading not in words.PROSE
        out += [f"- {item}" if listed else item for item in items]
        out.append("")
    out.append(f"{words.GREETING}\n{f.meeting.organiser or words.SIGNED}")
    return escape.printable("\n".join(out)) + "\n"


def participant_note_html(f: Facts) -> str:
    esc = escape.html_text
    title = words.note_title(f.meeting.title)
    body = [f"<h1>{esc(title)}</h1>"]
    for heading, items in participant_sections(f):
        body.append(f"<h2>{esc(heading)}</h2>")
        if heading in words.PROSE:
            body += [f"<p>{esc(item)}</p>" for item in items]
        else:
            body.append("<ul>" + "".join(f"<li>{esc(item)}</li>" for item in items) + "</ul>")
    body.append(f"<p>{esc(words.GREETING)}<br>{esc(f.meeting.organiser or words.SIGNED)}</p>")
    return (
        '<!doctype html>\n<html lang="da">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n"
        "<style>body{font-family:'DejaVu Sans','Segoe UI',system-ui,sans-serif;max-width:42rem;"
        "margin:2rem auto;padding:0 1rem;line-height:1.5;color:#1d232b}h1{font-size:1.4rem}"
        "h2{font-size:1.1rem;margin-top:1.5rem}"
        "</style>\n</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )
