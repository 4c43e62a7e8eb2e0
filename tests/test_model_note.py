"""What the documents tell the official about the speech model (pipeline/model_note.py): the catalogue
lookup, the published Danish error rate as Danish writes it, the warning for the demo model, the plain
"none known" for a model outside the catalogue, and the same words in the transcript, the cover letter,
the delivery page and the QC report, every name escaped for where it lands."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import replace

import pytest
from test_escaping import HOSTILE, KINDS, Page, docx_texts, hostile_document, hostile_facts, pdf_read

from pipeline import escape
from pipeline.engines import catalogue
from pipeline.model_note import NAME_LIMIT, ModelNote, note_for
from pipeline.stages import delivery_page, letters
from pipeline.stages import transcript as documents
from pipeline.stages.check.report import QcReport
from pipeline.stages.subtitles.rules import Cue
from pipeline.texts import documents as words

NBSP = "\u00a0"


# ------------------------------------------------------------------------------------- the lookup


@pytest.mark.parametrize("entry", catalogue.ENTRIES, ids=lambda e: e.name)
def test_a_catalogue_model_is_found_by_its_name_and_by_its_hub_repository(
    entry: catalogue.CatalogueEntry,
) -> None:
    assert catalogue.lookup(entry.name) is entry
    assert catalogue.lookup(entry.repo) is entry


@pytest.mark.parametrize(
    "name",
    [
        "my-danish-model",  # a folder of one's own
        "someone/whisper-danish",  # another hub repository
        "/home/ida/modeller/large-v3",  # a path whose last part is a catalogue name
        "C:\\modeller\\roest-v3-1.5b",
        "./base",
        "BASE",  # names are exact: a lookalike is not the catalogue's model
        " base",
        "",
    ],
)
def test_a_name_outside_the_catalogue_is_not_looked_up_as_one(name: str) -> None:
    assert catalogue.lookup(name) is None
    note = note_for(name or "x")
    assert note.title is None and not note.known and note.fit_for_danish is None and not note.warn
    assert note.to_json()["published_wer"] is None and note.to_json()["in_catalogue"] is False
    text = words.model_text(note)
    assert "Der kendes ingen offentliggjort dansk ordfejlrate" in text
    assert "No published Danish word error rate is known" in words.model_text_en(note)
    assert "%" not in text  # no figure of another model's


# ------------------------------------------------------------------------------- what it says


@pytest.mark.parametrize(
    ("value", "danish"),
    [(21.06, "21,1 %"), (122.14, "122,1 %"), (0.0, "0,0 %"), (9.96, "10,0 %"), (276.28, "276,3 %")],
)
def test_percent_as_danish_writes_it_with_the_sign_kept_on_the_line(value: float, danish: str) -> None:
    assert words.percent(value) == danish.replace(" ", NBSP)
    assert words.percent_en(value) == danish.replace(",", ".").replace(" ", NBSP)


@pytest.mark.parametrize("entry", catalogue.ENTRIES, ids=lambda e: e.name)
def test_every_catalogue_model_is_named_with_its_published_figures_and_source(
    entry: catalogue.CatalogueEntry,
) -> None:
    note = note_for(entry.name)
    assert note.known and note.mean_wer == entry.mean_wer and note.source == catalogue.LEADERBOARD
    for text, rate in (
        (words.model_text(note), words.percent),
        (words.model_text_en(note), words.percent_en),
    ):
        assert f"«{entry.name}»" in text and note.title and text.startswith(note.title)
        assert rate(entry.mean_wer or 0) in text and catalogue.LEADERBOARD in text
        conversation = next(p for p in entry.published if p.dataset == catalogue.CORAL_CONVERSATION)
        assert rate(conversation.wer_percent) in text
    # Marked as published by others, never as measured on the meeting.
    assert "Offentliggjort dansk ordfejlrate" in words.model_text(note)
    assert "ikke målt på dette møde" in words.model_text(note)
    data = note.to_json()["published_wer"]
    assert data["measured_here"] is False and data["mean_percent"] == entry.mean_wer
    assert {d["dataset"] for d in data["datasets"]} == {
        p.dataset for p in entry.published if p.dataset != catalogue.MEAN
    }
    # A model for demos and tests carries a warning; a model fit for Danish none.
    assert note.warn is (not entry.fit_for_danish)
    assert ("ADVARSEL" in words.model_text(note)) is note.warn
    assert ("WARNING" in words.model_text_en(note)) is note.warn


def test_base_warns_the_official_that_it_is_a_demo_model_with_a_published_rate_over_100_percent() -> None:
    note = note_for("base")
    assert note_for(None) == note  # the engine's default is base
    text = words.model_text(note)
    assert "122,1\u00a0%" in text and "flere fejl end ord" in text
    assert "ADVARSEL: en lille model til demonstration og test, ikke til et rigtigt møde" in text
    assert "Ret teksten efter optagelsen" in text
    roest = words.model_text(note_for("roest-v3-1.5b"))
    assert roest.startswith("Røst v3 Whisper 1.5B") and "21,1\u00a0%" in roest and "ADVARSEL" not in roest


# -------------------------------------------------------------------- the same words everywhere


def _documents(model: str) -> tuple[ModelNote, str, str, str, str, str, dict]:
    """The model's note and each document with ``model`` and nothing else hostile: the transcript's
    text, its DOCX body, the cover letter's lines, the delivery page and the QC report."""
    doc = replace(hostile_document("Anna"), model=model)
    facts = replace(hostile_facts("Anna"), model=note_for(model))
    cues = (Cue(1500, 2400, ("Hej",), statement_id="s01"),)
    page = delivery_page.render(delivery_page.PageData("klip.mp4", "da", "da", facts, doc, cues, [], False))
    report = QcReport(
        "klip.mp4", "demo", None, "2026-12-01T10:00:00+00:00", "t", (), (), model=note_for(model)
    )
    letter = "\n".join(text for _, text in letters.cover_letter_lines(facts))
    _, body = docx_texts(documents.render_docx(doc))
    return (
        note_for(model),
        documents.render_txt(doc),
        body,
        letter,
        page,
        report.to_text(),
        documents.render_json(doc),
    )


@pytest.mark.parametrize("model", ["base", "large-v3", "eget-dansk"])
def test_the_transcript_letter_page_and_report_say_the_same_about_the_model(model: str) -> None:
    note, txt, body, letter, page, report, data = _documents(model)
    line = words.model_line(note)
    for where, text in (("txt", txt), ("docx", body), ("letter", letter), ("report", report)):
        assert line in text, where
    parsed = Page(page)
    assert words.model_text(note) in parsed.text_of("dd")
    assert words.MODEL in parsed.text_of("dt")
    assert f"{words.MODEL_EN}: {words.model_text_en(note)}" in report
    assert data["model"] == model
    assert data["model_note"] == {**note.to_json(), "text": words.model_text(note)}


def test_the_page_in_english_names_the_model_in_english() -> None:
    doc = replace(hostile_document("Anna"), model="base")
    facts = replace(hostile_facts("Anna"), model=note_for("base"))
    page = Page(delivery_page.render(delivery_page.PageData("k.mp4", "da", "en", facts, doc, (), [], False)))
    assert words.model_text_en(note_for("base")) in page.text_of("dd")
    assert words.MODEL_EN in page.text_of("dt")


def test_a_report_that_does_not_know_the_model_says_so() -> None:
    report = QcReport("klip.mp4", "demo", None, "2026-12-01T10:00:00+00:00", "t", (), ())
    assert "Talemodel / speech model: ikke kendt / not known" in report.to_text()
    assert report.to_json()["model"] is None


# ------------------------------------------------------------------------------- hostile names


@pytest.mark.parametrize("kind", [*KINDS, "very-long", "path"])
def test_a_hostile_model_name_lands_as_text_in_every_document(kind: str) -> None:
    value = {"very-long": "model-" + "æøå" * 5000, "path": "/srv/<b>modeller</b>/large-v3"}.get(kind)
    value = value if value is not None else HOSTILE[kind]
    note, txt, body, letter, page_text, report, data = _documents(value)
    shown = note.model
    # One printable line, its direction closed, no longer than any real name.
    assert shown == escape.bidi_closed(escape.fit(escape.one_line(value), NAME_LIMIT))
    assert "\n" not in shown and len(shown) <= NAME_LIMIT + 2
    assert not note.known  # nothing hostile is taken for a catalogue model
    page_text.encode("utf-8")
    page, plain = Page(page_text), Page(_documents("Anna")[4])
    assert page.tags == plain.tags  # no element or attribute made of the name
    assert words.model_text(note) in page.text_of("dd")
    for where, text in (("txt", txt), ("docx", body), ("letter", letter), ("report", report)):
        assert f"«{shown}»" in text, where
    json.dumps(data, ensure_ascii=False).encode("utf-8")
    if kind in ("danish", "nfd"):  # æ ø å come through as typed
        assert unicodedata.normalize("NFC", shown) == unicodedata.normalize("NFC", value)
    if kind == "very-long":
        assert shown.startswith("model-æøåæøå") and shown.endswith(escape.ELLIPSIS)


def test_a_hostile_model_name_in_the_pdf_transcript_and_letter() -> None:
    value = "<script>æøå</script> & «model» {nb}"
    doc = replace(hostile_document("Anna"), model=value)
    facts = replace(hostile_facts("Anna"), model=note_for(value))
    for data in (documents.render_pdf(doc), letters.cover_letter_pdf(facts)):
        _, text = pdf_read(data)
        flat = " ".join(text.split())
        assert f"«{value}»" in flat and "Der kendes ingen offentliggjort dansk ordfejlrate" in flat
