"""The Danish of the delivered documents: the transcript's headings and notes, the cards' fallbacks,
dates as Danish writes them, the words that stand in for what meeting.yaml does not say, and the
archive's (English) description of a meeting without a title."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from pipeline.texts.review import approved_by, changed_after_approval, statement_label

DANISH_MONTHS = (
    "januar", "februar", "marts", "april", "maj", "juni",
    "juli", "august", "september", "oktober", "november", "december",
)  # fmt: skip

# What stands in for a fact meeting.yaml does not give.
COMMITTEE_FALLBACK = "udvalget"
UNDATED = "udateret"  # in a delivery's file name
NO_DATE = "uden dato"

KIND = (
    "Høringssvar fra borgermødet"  # what the delivery is: the transcript's heading, the title card's fallback
)


def danish_date(value: dt.date | None) -> str:
    """2026-11-20 -> "20. november 2026"."""
    if value is None:
        return NO_DATE
    return f"{value.day}. {DANISH_MONTHS[value.month - 1]} {value.year}"


def untitled_archive(folder_name: str) -> str:
    """The archive's title of a meeting meeting.yaml gives no title: English, for the archivist."""
    return f"Recordings of the citizen meeting {folder_name}"


def _sentence(text: str) -> str:
    return f"{text[0].upper()}{text[1:]}"


# ------------------------------------------------------------------------------------- transcript


def document_title(title: str) -> str:
    """The transcript's title in its metadata."""
    return f"Høringssvar: {title}"


def page_header(title: str, form_name: str) -> str:
    """The line at the top of every page of the transcript."""
    return f"{KIND} · {title} · formen «{form_name}»"


def page_footer(page: int, pages: str) -> str:
    return f"Side {page} af {pages}"


def citizen(number: int) -> str:
    """A speaker who did not consent to their name: by their number."""
    return f"Borger {number}"


def header_lines(
    *,
    date: dt.date | None,
    place: str | None,
    organiser: str | None,
    committee: str | None,
    committee_meeting: dt.date | None,
    statements: int,
    approved: int,
    changed: Sequence[int],
) -> list[str]:
    """The transcript's facts, one "label: value" a line; ``changed``: the numbers of the statements
    changed after they were approved."""
    lines = [f"Dato: {danish_date(date)}"]
    if place:
        lines.append(f"Sted: {place}")
    if organiser:
        lines.append(f"Arrangør: {organiser}")
    if committee:
        lines.append(f"Til: {committee}")
    if committee_meeting:
        lines.append(f"Vises på udvalgsmødet: {danish_date(committee_meeting)}")
    lines.append(f"Antal indlæg: {statements}")
    lines.append(f"Godkendt: {approved} af {statements} indlæg er læst og godkendt af en person")
    if changed:
        lines.append(
            f"Ændret efter godkendelse: {len(changed)} indlæg (" + ", ".join(str(n) for n in changed) + ")"
        )
    return lines


NOT_APPROVED = "Ikke godkendt: teksten er ikke læst igennem af en person."


def approval_line(by: str | None, at: str | None, valid: bool) -> str:
    """Whether a person approved a statement's text; ``by`` None: nobody has."""
    if by is None:
        return NOT_APPROVED
    if not valid:
        return f"Ikke godkendt: {_sentence(changed_after_approval(by, at))}; den nye tekst er ikke godkendt."
    return f"{_sentence(approved_by(by, at))}."


def machine_note(model: str, engine: str) -> str:
    return (
        f"Teksten er skrevet automatisk af talegenkendelse (Whisper {model}, {engine}) og kan "
        "indeholde fejl; lyt til optagelsen, hvis en formulering er vigtig."
    )


NO_TEXT_NOTE = "[Ingen tekst genkendt: talegenkendelsen hørte tale, men skrev intet. Lyt til optagelsen.]"


def changed_statement(number: int, by: str, at: str | None) -> str:
    """A statement changed after it was approved, as the cover letter lists it."""
    return f"{statement_label(number, None)}: {changed_after_approval(by, at)}"
