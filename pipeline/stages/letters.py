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
from pipeline.config import Agreement, Form, Meeting, WorkingGroup
from pipeline.stages.transcript import PDF_FONT, danish_date, pdf_document

COVER_LETTER_SUFFIX = "-foelgebrev.pdf"
PARTICIPANT_NOTE = "deltagerbrev"


@dataclass(frozen=True)
class Facts:
    """What the letters say, from meeting.yaml, the form and the delivery."""

    title: str
    date: dt.date | None
    place: str | None
    organiser: str | None
    committee: str | None
    agreed_with: str | None
    committee_meeting: dt.date | None
    form_name: str
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


def facts(
    meeting: Meeting,
    meeting_name: str,
    form: Form,
    *,
    statements: int,
    approved: int,
    clip_ms: int,
    changed_after_approval: Sequence[str] = (),
    check_passed: bool,
    check_verdict: str,
    files: Mapping[str, str],
) -> Facts:
    follow = meeting.follow_up
    contact = None
    if follow and follow.contact:
        c = follow.contact
        contact = ", ".join(part for part in (c.name, c.role, c.email, c.phone) if part)
    elif meeting.organiser:
        contact = meeting.organiser
    return Facts(
        title=meeting.title or meeting_name,
        date=meeting.date,
        place=meeting.place,
        organiser=meeting.organiser,
        committee=meeting.committee,
        agreed_with=form.agreed_with,
        committee_meeting=form.committee_meeting,
        form_name=form.name,
        statements=statements,
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


def duration_words(ms: int) -> str:
    seconds = round(ms / 1000)
    minutes, rest = divmod(seconds, 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def _committee(f: Facts) -> str:
    return f.committee or "udvalget"


def _when_committee(f: Facts) -> str:
    if f.committee_meeting:
        return f"{_committee(f)} ser høringssvaret på sit møde {danish_date(f.committee_meeting)}."
    return f"{_committee(f)} ser høringssvaret på sit næste møde."


# ----------------------------------------------------------------------------------- cover letter


def cover_letter_lines(f: Facts) -> list[tuple[str, str]]:
    """The letter as (kind, text) pairs: "h" a heading, "p" a paragraph, "kv" a label and value, "mono"
    a checksum line."""
    agreed = f" som aftalt med {f.agreed_with}" if f.agreed_with else ""
    meeting = f"borgermødet «{f.title}»" + (f", {danish_date(f.date)}" if f.date else "")
    when = danish_date(f.committee_meeting) if f.committee_meeting else "det næste møde"
    passed = (
        f"Klippet er kontrolleret mod den aftalte form «{f.form_name}» og består kontrollen "
        f"({f.check_verdict})."
        if f.check_passed
        else f"Klippet består ikke kontrollen mod den aftalte form «{f.form_name}» ({f.check_verdict})."
    )
    lines: list[tuple[str, str]] = [
        ("h", f"Følgebrev: høringssvar fra {meeting}"),
        ("kv", f"Til: {f.agreed_with or _committee(f)}"),
        ("kv", f"Udvalg: {_committee(f)}"),
        (
            "kv",
            f"Til udvalgsmødet: {when}",
        ),
        ("kv", f"Fra: {f.organiser or 'arrangøren'}"),
        ("p", f"Hermed sendes høringssvaret fra {meeting}{' i ' + f.place if f.place else ''}{agreed}."),
        (
            "p",
            f"Det er ét videoklip med {f.statements} indlæg fra borgerne, i alt {duration_words(f.clip_ms)}, "
            "med undertekster i klippet og som fil, og en skriftlig gengivelse af alle indlæg.",
        ),
        ("p", passed),
        ("p", f"{f.approved} af {f.statements} indlæg er læst igennem og godkendt af en person."),
        *(("p", f"{line}; den nye tekst er ikke godkendt.") for line in f.changed_after_approval),
        ("p", _when_committee(f)),
        ("h", "Filerne og deres kontrolsummer (SHA-256)"),
        *(("mono", f"{digest}  {name}") for name, digest in f.files),
        (
            "p",
            "Kontrolsummerne står også i filen SHA256SUMS; de viser, at filerne er de samme, som blev sendt.",
        ),
    ]
    if f.contact:
        lines.append(("p", f"Spørgsmål kan rettes til {f.contact}."))
    return lines


def cover_letter_pdf(f: Facts) -> bytes:
    pdf = pdf_document(
        f"Følgebrev: {f.title}", f"Følgebrev · {f.title} · formen «{f.form_name}»", "da", f.organiser
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
        elif kind == "mono":
            pdf.set_font(PDF_FONT, "", 6.5)
            pdf.multi_cell(width, 3.6, text, align="L", new_x="LMARGIN", new_y="NEXT")
        else:
            pdf.ln(2)
            pdf.set_font(PDF_FONT, "", 10.5)
            pdf.multi_cell(width, 5.5, text, align="L", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


# ------------------------------------------------------------------------------- participant note


def _group_line(g: WorkingGroup) -> str:
    parts = [g.name]
    if g.coordinator:
        parts.append(f"tovholder: {g.coordinator}")
    if g.meets:
        parts.append(f"mødes: {g.meets}")
    if g.costs:
        parts.append(
            f"udgifter: {g.costs}" + (f" (betales af {g.costs_covered_by})" if g.costs_covered_by else "")
        )
    elif g.costs_covered_by:
        parts.append(f"udgifter betales af {g.costs_covered_by}")
    return "; ".join(parts)


def _agreement_line(a: Agreement) -> str:
    return f"{a.who}: {a.what}" + (f" (senest {danish_date(a.by)})" if a.by else "")


def participant_sections(f: Facts) -> list[tuple[str, list[str]]]:
    """The note as (heading, paragraphs or list items) sections."""
    meeting = f"borgermødet «{f.title}»" + (f" {danish_date(f.date)}" if f.date else "")
    sent = [
        f"Tak for jeres indlæg på {meeting}. De {f.statements} videoindlæg er samlet i ét klip "
        f"({duration_words(f.clip_ms)}) med undertekster og en skriftlig gengivelse.",
        f"Høringssvaret er sendt til {_committee(f)}"
        + (f", som aftalt med {f.agreed_with}" if f.agreed_with else "")
        + ".",
        _when_committee(f),
    ]
    sections = [("Hvad er sendt, og til hvem", sent)]
    if f.agreements:
        sections.append(("Det aftalte vi på mødet", [_agreement_line(a) for a in f.agreements]))
    if f.next_steps:
        sections.append(("Det sker nu", list(f.next_steps)))
    if f.groups:
        sections.append(("Netværk og arbejdsgrupper", [_group_line(g) for g in f.groups]))
    if f.next_meeting:
        where = f", {f.next_meeting_place}" if f.next_meeting_place else ""
        sections.append(("Næste borgermøde", [f"{danish_date(f.next_meeting)}{where}."]))
    if f.contact:
        sections.append(("Spørgsmål", [f"Kontakt {f.contact}."]))
    return sections


def participant_note_txt(f: Facts) -> str:
    out = [f"Til deltagerne i {f.title}", ""]
    for heading, items in participant_sections(f):
        out += [heading, "-" * len(heading)]
        listed = heading not in ("Hvad er sendt, og til hvem", "Næste borgermøde", "Spørgsmål")
        out += [f"- {item}" if listed else item for item in items]
        out.append("")
    out.append(f"Venlig hilsen\n{f.organiser or 'Arrangørerne'}")
    return escape.printable("\n".join(out)) + "\n"


def participant_note_html(f: Facts) -> str:
    esc = escape.html_text
    body = [f"<h1>Til deltagerne i {esc(f.title)}</h1>"]
    for heading, items in participant_sections(f):
        body.append(f"<h2>{esc(heading)}</h2>")
        if heading in ("Hvad er sendt, og til hvem", "Næste borgermøde", "Spørgsmål"):
            body += [f"<p>{esc(item)}</p>" for item in items]
        else:
            body.append("<ul>" + "".join(f"<li>{esc(item)}</li>" for item in items) + "</ul>")
    body.append(f"<p>Venlig hilsen<br>{esc(f.organiser or 'Arrangørerne')}</p>")
    return (
        '<!doctype html>\n<html lang="da">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>Til deltagerne i {esc(f.title)}</title>\n"
        "<style>body{font-family:'DejaVu Sans','Segoe UI',system-ui,sans-serif;max-width:42rem;"
        "margin:2rem auto;padding:0 1rem;line-height:1.5;color:#1d232b}h1{font-size:1.4rem}"
        "h2{font-size:1.1rem;margin-top:1.5rem}"
        "</style>\n</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )
