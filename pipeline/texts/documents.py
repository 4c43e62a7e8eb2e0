"""The Danish of the delivered documents: the transcript's headings and notes, the cards' fallbacks,
dates as Danish writes them, the words that stand in for what meeting.yaml does not say, and the
archive's (English) description of a meeting without a title."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pipeline.texts.review import approved_by, changed_after_approval, statement_label

if TYPE_CHECKING:
    from pipeline.model_note import ModelNote

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


def statements_by_kind(statements: int, sound_only: int) -> str:
    """How many statements of each kind, as every document counts them: "3 videoindlæg og 1 lydindlæg"
    ("indlæg" is the same in the plural); a kind with none is left out, and none at all is "0 indlæg"."""
    kinds = ((statements - sound_only, "videoindlæg"), (sound_only, "lydindlæg"))
    return " og ".join(f"{n} {word}" for n, word in kinds if n) or "0 indlæg"


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
    sound_only: int = 0,
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
    kinds = f" ({statements_by_kind(statements, sound_only)})" if sound_only else ""
    lines.append(f"Antal indlæg: {statements}{kinds}")
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


# ------------------------------------------------------------------------------------- the model
# What the transcript's header, the cover letter, the delivery page and the QC report say about the
# speech model (pipeline.model_note): each as "label: text", the same words in all four.

MODEL = "Talemodel"
MODEL_EN = "Speech model"


def percent(value: float) -> str:
    """21.06 -> "21,1 %": one decimal, as Danish writes it, the sign never on a line of its own."""
    return f"{value:.1f}".replace(".", ",") + "\u00a0%"


def percent_en(value: float) -> str:
    return f"{value:.1f}\u00a0%"


def model_text(note: ModelNote) -> str:
    """The model named, with its published Danish word error rate and where it was published; a model
    for demos and tests with a warning; a model outside the catalogue with the plain fact that no
    published figure is known."""
    if note.title is None or note.mean_wer is None:
        return (
            f"«{note.model}». Der kendes ingen offentliggjort dansk ordfejlrate for denne model, og hvor "
            "mange fejl teksten har, er ikke målt."
        )
    parts = [f"{note.title} («{note.model}»)."]
    if note.warn:
        parts.append(
            "ADVARSEL: en lille model til demonstration og test, ikke til et rigtigt møde; den skriver "
            "mange danske ord forkert."
        )
    rate = (
        "Offentliggjort dansk ordfejlrate (andelen af ord, modellen skriver forkert): "
        f"{percent(note.mean_wer)} i gennemsnit over fem danske testsæt"
    )
    if note.mean_wer > 100:
        rate += " (over 100\u00a0%: flere fejl end ord)"
    if note.conversation_wer is not None:
        rate += f", {percent(note.conversation_wer)} på samtale (CoRal v3)"
    parts.append(f"{rate}; kilde: {note.source}.")
    parts.append("Tallene er offentliggjort af andre, ikke målt på dette møde.")
    if note.warn:
        parts.append("Ret teksten efter optagelsen, før den bruges.")
    return " ".join(parts)


def model_text_en(note: ModelNote) -> str:
    """``model_text`` in English: for the delivery page in English and the QC report's English line."""
    if note.title is None or note.mean_wer is None:
        return (
            f"«{note.model}». No published Danish word error rate is known for this model, and how many "
            "errors the text has was not measured."
        )
    parts = [f"{note.title} («{note.model}»)."]
    if note.warn:
        parts.append(
            "WARNING: a small model for demos and tests, not for a real meeting; it gets many Danish words "
            "wrong."
        )
    rate = (
        f"Published Danish word error rate: {percent_en(note.mean_wer)} on average over five Danish test sets"
    )
    if note.mean_wer > 100:
        rate += " (over 100\u00a0%: more errors than words)"
    if note.conversation_wer is not None:
        rate += f", {percent_en(note.conversation_wer)} on conversation (CoRal v3)"
    parts.append(f"{rate}; source: {note.source}.")
    parts.append("The figures were published by others, not measured on this meeting.")
    if note.warn:
        parts.append("Correct the text against the recording before it is used.")
    return " ".join(parts)


def model_line(note: ModelNote) -> str:
    """The model as the transcript's header and the cover letter give it: "Talemodel: …"."""
    return f"{MODEL}: {model_text(note)}"


NO_TEXT_NOTE = "[Ingen tekst genkendt: talegenkendelsen hørte tale, men skrev intet. Lyt til optagelsen.]"


def changed_statement(number: int, by: str, at: str | None) -> str:
    """A statement changed after it was approved, as the cover letter lists it."""
    return f"{statement_label(number, None)}: {changed_after_approval(by, at)}"
