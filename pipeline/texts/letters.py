"""The Danish of the letters: the cover letter to the official (``<name>-foelgebrev.pdf``) and the note
to the participants (``deltagerbrev``). The letters' order and layout are in pipeline.stages.letters."""

from __future__ import annotations

import datetime as dt

from pipeline.texts.documents import danish_date, statements_by_kind

# ------------------------------------------------------------------------------------------- shared


def meeting(title: str, date: dt.date | None, *, comma: bool) -> str:
    """The meeting as the letters name it: «title» and, where known, its date (after a comma or not)."""
    return f"borgermødet «{title}»" + (f"{',' if comma else ''} {danish_date(date)}" if date else "")


def committee_sees(committee: str, on: dt.date | None) -> str:
    """When the committee sees the response: on the agreed date, else at its next meeting."""
    if on:
        return f"{committee} ser høringssvaret på sit møde {danish_date(on)}."
    return f"{committee} ser høringssvaret på sit næste møde."


# ------------------------------------------------------------------------------------ cover letter

TO = "Til"
COMMITTEE = "Udvalg"
FOR_MEETING = "Til udvalgsmødet"
FROM = "Fra"
NEXT_MEETING = "det næste møde"
ORGANISER = "arrangøren"
CHECKSUMS = "Filerne og deres kontrolsummer (SHA-256)"
CHECKSUMS_NOTE = (
    "Kontrolsummerne står også i filen SHA256SUMS; de viser, at filerne er de samme, som blev sendt."
)


def cover_title(title: str) -> str:
    return f"Følgebrev: {title}"


def cover_header(title: str, form_name: str) -> str:
    return f"Følgebrev · {title} · formen «{form_name}»"


def cover_heading(meeting: str) -> str:
    return f"Følgebrev: høringssvar fra {meeting}"


def sent(meeting: str, place: str | None, agreed_with: str | None) -> str:
    agreed = f" som aftalt med {agreed_with}" if agreed_with else ""
    return f"Hermed sendes høringssvaret fra {meeting}{' i ' + place if place else ''}{agreed}."


def contents(statements: int, sound_only: int, duration: str) -> str:
    kinds = f" ({statements_by_kind(statements, sound_only)})" if sound_only else ""
    return (
        f"Det er ét videoklip med {statements} indlæg fra borgerne{kinds}, i alt {duration}, "
        "med undertekster i klippet og som fil, og en skriftlig gengivelse af alle indlæg."
    )


def check(passed: bool, form_name: str, verdict: str) -> str:
    if passed:
        return f"Klippet er kontrolleret mod den aftalte form «{form_name}» og består kontrollen ({verdict})."
    return f"Klippet består ikke kontrollen mod den aftalte form «{form_name}» ({verdict})."


def approved(approved: int, statements: int) -> str:
    return f"{approved} af {statements} indlæg er læst igennem og godkendt af en person."


def withdrawn(on: dt.date) -> str:
    """A statement taken out after the delivery (`hearing withdraw`): when, never who."""
    return (
        f"Et indlæg er trukket tilbage den {danish_date(on)}, fordi samtykket blev trukket tilbage. Det er "
        "ikke med i klippet, underteksterne, den skriftlige gengivelse eller dette brev."
    )


def changed_unapproved(line: str) -> str:
    """``line``: a statement changed after it was approved (texts.documents.changed_statement)."""
    return f"{line}; den nye tekst er ikke godkendt."


def questions_to(contact: str) -> str:
    return f"Spørgsmål kan rettes til {contact}."


# -------------------------------------------------------------------------------- participant note

SENT = "Hvad er sendt, og til hvem"
AGREED = "Det aftalte vi på mødet"
NEXT_STEPS = "Det sker nu"
GROUPS = "Netværk og arbejdsgrupper"
NEXT_CITIZEN_MEETING = "Næste borgermøde"
QUESTIONS = "Spørgsmål"
PROSE = (SENT, NEXT_CITIZEN_MEETING, QUESTIONS)  # sections of paragraphs; the others are lists
GREETING = "Venlig hilsen"
SIGNED = "Arrangørerne"  # when meeting.yaml names no organiser


def note_title(title: str) -> str:
    return f"Til deltagerne i {title}"


def thanks(meeting: str, statements: int, sound_only: int, duration: str) -> str:
    return (
        f"Tak for jeres indlæg på {meeting}. Jeres {statements_by_kind(statements, sound_only)} er samlet "
        "i ét klip "
        f"({duration}) med undertekster og en skriftlig gengivelse."
    )


def sent_to(committee: str, agreed_with: str | None) -> str:
    return (
        f"Høringssvaret er sendt til {committee}"
        + (f", som aftalt med {agreed_with}" if agreed_with else "")
        + "."
    )


def group(
    name: str, coordinator: str | None, meets: str | None, costs: str | None, costs_covered_by: str | None
) -> str:
    """A working group in one line: who coordinates it, when it meets, who pays."""
    parts = [name]
    if coordinator:
        parts.append(f"tovholder: {coordinator}")
    if meets:
        parts.append(f"mødes: {meets}")
    if costs:
        parts.append(f"udgifter: {costs}" + (f" (betales af {costs_covered_by})" if costs_covered_by else ""))
    elif costs_covered_by:
        parts.append(f"udgifter betales af {costs_covered_by}")
    return "; ".join(parts)


def agreement(who: str, what: str, by: dt.date | None) -> str:
    return f"{who}: {what}" + (f" (senest {danish_date(by)})" if by else "")


def next_meeting(on: dt.date, place: str | None) -> str:
    where = f", {place}" if place else ""
    return f"{danish_date(on)}{where}."


def contact(who: str) -> str:
    return f"Kontakt {who}."
