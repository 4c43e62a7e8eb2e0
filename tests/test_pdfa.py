"""The PDF documents as an archive keeps them: PDF/A-2u (ISO 19005-2), read back with pikepdf.

Each delivered PDF (the transcript and the cover letter) must say it is PDF/A-2u in its XMP, carry its
title, author and language ``da`` there, hold an output intent with an ICC profile, embed every font it
uses (with a Unicode map, level U), and have a file ID; the transcript lists every statement in its
outline (the viewer's bookmarks), each pointing at the page where the statement starts. No PDF/A
validator installs here (veraPDF is Java and is neither a Debian nor a PyPI package; PDFBox's preflight
knows PDF/A-1b only): these checks are the rules such a validator would apply that fpdf2's writer
leaves to us. Hostile titles and names are in test_escaping.py (every kind, through the same XMP reader).
"""

from __future__ import annotations

import io
import json
import subprocess
from dataclasses import replace
from typing import Any

from conftest import TEST_OUTPUT, DemoRun
from test_documents import TOPICS, transcript_document
from test_escaping import hostile_facts, pdf_outline, pdf_properties

from pipeline import escape
from pipeline.stages import letters
from pipeline.stages import transcript as documents

ICC_SIGNATURE = b"acsp"  # every ICC profile has it at byte 36 (ICC.1 §7.2.6)


def font_embedded(font: Any) -> bool:
    """A font dictionary whose glyphs are in the file: a composite font through its descendant."""
    if font.get("/Subtype") == "/Type0":
        return all(font_embedded(descendant) for descendant in font.DescendantFonts)
    descriptor = font.get("/FontDescriptor")
    return descriptor is not None and any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3"))


def assert_pdfa(data: bytes, title: str, author: str) -> None:
    import pikepdf

    assert data.startswith(b"%PDF-1.7")  # PDF/A-2 is based on PDF 1.7 (ISO 32000-1)
    metadata = pdf_properties(data)
    assert (metadata.part, metadata.conformance) == ("2", "U")
    assert (metadata.title, metadata.author, metadata.language) == (title, author, "da")
    with pikepdf.open(io.BytesIO(data)) as pdf:
        assert pdf.Root.Lang == "da"
        assert "/Encrypt" not in pdf.trailer and len(pdf.trailer.ID) == 2  # PDF/A: an ID, no encryption
        (intent,) = pdf.Root.OutputIntents
        assert intent.S == "/GTS_PDFA1"
        profile = intent.DestOutputProfile
        assert profile.N == 3 and profile.read_bytes()[36:40] == ICC_SIGNATURE  # an RGB ICC profile
        fonts = 0
        for page in pdf.pages:
            for font in page.Resources.Font.values():
                fonts += 1
                assert font_embedded(font), font.get("/BaseFont")
                assert "/ToUnicode" in font, font.get("/BaseFont")  # level U: the text maps to Unicode
                assert "DejaVuSans" in str(font.BaseFont)
        assert fonts >= len(pdf.pages)


def test_the_transcript_is_pdfa_2u_with_a_bookmark_for_each_statement() -> None:
    import pikepdf
    import pypdf

    doc = transcript_document()
    data = documents.render_pdf(doc)
    assert_pdfa(data, "Høringssvar: Borgermøde i Ærøskøbing", "Lokalrådet")
    assert pdf_outline(data) == [f"{n}. {topic} · Borger {n}" for n, topic in enumerate(TOPICS, 1)]
    pages = [page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages]
    with pikepdf.open(io.BytesIO(data)) as pdf, pdf.open_outline() as outline:
        assert pdf.Root.PageMode == "/UseOutlines"  # the viewer opens with the list of statements
        numbers = {page.objgen: n for n, page in enumerate(pdf.pages)}
        for item in outline.root:
            # Each bookmark on the page that shows its statement's heading.
            assert item.title in pages[numbers[item.destination[0].objgen]], item.title


def test_the_cover_letter_is_pdfa_2u() -> None:
    facts = hostile_facts("Søren Ærø Østergård")
    data = letters.cover_letter_pdf(facts)
    assert_pdfa(data, "Følgebrev: Søren Ærø Østergård", "Søren Ærø Østergård")
    assert pdf_outline(data) == []


def test_the_same_inputs_give_the_same_bytes_dated_by_the_meeting() -> None:
    import datetime as dt

    doc = transcript_document()
    assert pdf_properties(documents.render_pdf(doc)).created == "2000-01-01T12:00:00+00:00"  # no date
    dated = replace(doc, meeting=replace(doc.meeting, date=dt.date(2026, 11, 20)))
    data = documents.render_pdf(dated)
    assert data == documents.render_pdf(dated)
    assert pdf_properties(data).created == "2026-11-20T12:00:00+00:00"
    facts = hostile_facts("Ida")
    facts = replace(facts, meeting=replace(facts.meeting, date=dt.date(2026, 11, 20)))
    letter = letters.cover_letter_pdf(facts)
    assert letter == letters.cover_letter_pdf(facts)
    assert pdf_properties(letter).created == "2026-11-20T12:00:00+00:00"


# ------------------------------------------------------------------------- the demo's delivery


def test_the_delivered_pdfs_are_pdfa_2u(demo_run: DemoRun) -> None:
    assert demo_run.result.returncode == 0, demo_run.result.stderr
    delivery = demo_run.out / "delivery"
    (pdf_path,) = delivery.glob("*-transkription.pdf")
    (json_path,) = delivery.glob("*-transkription.json")
    (letter_path,) = delivery.glob("*-foelgebrev.pdf")
    record = json.loads(json_path.read_text(encoding="utf-8"))
    title = record["meeting"]["title"]
    organiser = record["meeting"]["organiser"]
    data = pdf_path.read_bytes()
    assert_pdfa(data, escape.document_property(f"Høringssvar: {title}"), organiser)
    assert_pdfa(letter_path.read_bytes(), escape.document_property(f"Følgebrev: {title}"), organiser)
    # A bookmark per delivered statement, with its number, topic and the speaker as the page names them.
    outline = pdf_outline(data)
    statements = record["statements"]
    assert len(outline) == len(statements) >= 2
    for bookmark, statement in zip(outline, statements, strict=True):
        assert bookmark.startswith(f"{statement['number']}. {statement['topic']} · ")
        assert statement["speaker_label"] in bookmark
    assert pdf_properties(data).created.startswith(record["meeting"]["date"])

    # The first page as a picture, to look at (æ ø å drawn, not boxes): it must at least show something.
    from PIL import Image

    picture = TEST_OUTPUT / "pdfa" / "transkription-side-1"
    picture.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile", str(pdf_path), str(picture)],
        check=True,
        timeout=60,
    )
    with Image.open(picture.with_suffix(".png")) as image:
        low, high = image.convert("L").getextrema()
        assert image.width > 500 and low < 64 and high > 240  # dark text on a white page
