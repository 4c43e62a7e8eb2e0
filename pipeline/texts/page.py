"""The delivery page's own words (``delivery/index.html``), in Danish and in English: the form's language
chooses (Danish unless it says otherwise). The meeting's facts, the transcript and the checks' words come
from their own rooms."""

from __future__ import annotations

LABELS = {
    "da": {
        "kind": "Høringssvar fra borgermødet", "captions": "Dansk", "transcript": "Skriftlig gengivelse",
        "facts": "Om høringssvaret", "date": "Dato", "place": "Sted", "organiser": "Arrangør",
        "committee": "Til", "form": "Aftalt form", "agreed_with": "Aftalt med", "meeting": "Til udvalgsmødet",
        "length": "Længde", "statements": "Indlæg", "check": "Kontrol mod formen", "passed": "bestået",
        "failed": "ikke bestået", "approved": "Godkendt", "of": "af",
        "files": "Filer og kontrolsummer (SHA-256)",
        "machine": "Teksten er skrevet af talegenkendelse og rettet og godkendt af en person, hvor det står.",
        "next": "næste møde",
        "withdrawn": "Trukket tilbage", "withdrawn_note": "indlæg trukket tilbage efter afleveringen, den",
    },
    "en": {
        "kind": "Consultation response from the citizen meeting", "captions": "Captions",
        "transcript": "Transcript", "facts": "About this response", "date": "Date", "place": "Place",
        "organiser": "Organiser", "committee": "To", "form": "Agreed form", "agreed_with": "Agreed with",
        "meeting": "For the committee meeting", "length": "Length", "statements": "Statements",
        "check": "Check against the form", "passed": "passed", "failed": "failed", "approved": "Approved",
        "of": "of", "files": "Files and checksums (SHA-256)",
        "machine": "The text was written by speech recognition; corrected and approved by a person where so "
                   "stated.",
        "next": "the next meeting",
        "withdrawn": "Withdrawn", "withdrawn_note": "statement(s) withdrawn after the delivery, on",
    },
}  # fmt: skip
