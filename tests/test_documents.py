"""The documents for the official: the PDF transcript (fonts embedded, æ ø å intact, page numbers)."""

from __future__ import annotations

import io
import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import TEST_OUTPUT, DemoRun, hearing
from test_cut import statement, transcript
from test_escaping import Page, pdf_properties
from test_review_page import axe_violations

from pipeline.config import Form, Meeting
from pipeline.meeting_facts import MeetingFacts
from pipeline.models import Approval
from pipeline.stages import transcript as documents

TOPICS = ("Cykelsti langs Åvej", "Støj fra Ørnevej", "Bænke på torvet")


def transcript_document() -> documents.TranscriptDocument:
    statements = [replace(statement(f"s0{n}", topic=topic), id=f"s0{n}") for n, topic in enumerate(TOPICS, 1)]
    words = [(0, 900, "Kære"), (900, 1800, "udvalg,"), (1800, 3000, "æbler"), (3000, 4000, "og"),
             (4000, 5200, "øer"), (5200, 6000, "på"), (6000, 7000, "åen.")]  # fmt: skip
    heard = {s.id: replace(transcript(*words), statement_id=s.id) for s in statements}
    # Long enough to need more than one page.
    long = heard["s03"]
    heard["s03"] = replace(long, segments=long.segments * 60)
    meeting = Meeting(
        title="Borgermøde i Ærøskøbing", committee="Teknik- og Miljøudvalget", organiser="Lokalrådet"
    )
    return documents.document(
        MeetingFacts.named(meeting, "moede"),
        Form(name="aftalt-form"),
        statements,
        heard,
        engine="faster-whisper",
        model="base",
        language="da",
        starts_ms={"s01": 1500, "s02": 12_000, "s03": 30_000},
        approvals={"s01": Approval("Ida Holm", "2026-12-01T10:30"), "s02": None, "s03": None},
    )


def test_the_pdf_transcript_has_every_heading_with_danish_letters_and_its_fonts_embedded() -> None:
    import pypdf

    data = documents.render_pdf(transcript_document())
    reader = pypdf.PdfReader(io.BytesIO(data))
    pages = [page.extract_text() for page in reader.pages]
    text = "\n".join(pages)
    assert len(pages) >= 2
    for n, topic in enumerate(TOPICS, 1):
        assert f"{n}. {topic}" in text, topic
    assert "[00:00:01]" in text and "[00:00:30]" in text  # each statement's time in the clip
    assert "Godkendt af Ida Holm, 2026-12-01 10:30." in text and "Ikke godkendt" in text
    assert "Kære udvalg, æbler og øer på åen." in text
    assert all(f"Side {n} af {len(pages)}" in page for n, page in enumerate(pages, 1))
    assert all("Borgermøde i Ærøskøbing" in page and "aftalt-form" in page for page in pages)
    fonts = {}
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            descriptor = font["/DescendantFonts"][0].get_object()["/FontDescriptor"].get_object()
            fonts[str(font["/BaseFont"])] = "/FontFile2" in descriptor
    assert fonts and all(fonts.values()), fonts  # every font embedded, none left to the reader's machine
    assert any("DejaVuSans" in name for name in fonts)


def test_the_same_transcript_gives_the_same_pdf_bytes() -> None:
    assert documents.render_pdf(transcript_document()) == documents.render_pdf(transcript_document())


def test_a_247_character_title_fits_the_properties_of_both_documents() -> None:
    import docx
    import pypdf

    title = ("Borgermøde om trafiksikkerhed i Nordby " * 7)[:247]
    organiser = "Nordby Lokalråd og " * 20  # 380 characters
    doc = transcript_document()
    doc = replace(doc, meeting=replace(doc.meeting, given_title=title, organiser=organiser))
    properties = docx.Document(io.BytesIO(documents.render_docx(doc))).core_properties
    assert len(properties.title) == 255 and properties.title.endswith("…")
    assert f"Høringssvar: {title}".startswith(properties.title.removesuffix("…"))
    assert len(properties.author) <= 255 and organiser.startswith(properties.author.removesuffix("…"))
    data = documents.render_pdf(doc)
    reader = pypdf.PdfReader(io.BytesIO(data))
    metadata = pdf_properties(data)
    assert metadata.title == properties.title and metadata.author == properties.author
    text = " ".join("\n".join(page.extract_text() for page in reader.pages).split())
    assert title.strip() in text  # the whole title in the document itself


def test_braces_in_a_title_are_text_not_the_page_count() -> None:
    import pypdf

    doc = transcript_document()
    doc = replace(doc, meeting=replace(doc.meeting, given_title="Møde {nb} om {title}"))
    pages = pypdf.PdfReader(io.BytesIO(documents.render_pdf(doc))).pages
    assert all("Møde {nb} om {title}" in page.extract_text() for page in pages)
    assert all(f"Side {n} af {len(pages)}" in page.extract_text() for n, page in enumerate(pages, 1))


# ------------------------------------------------------------------------- the demo's delivery


def test_the_letters_carry_the_facts_of_meeting_yaml_and_the_form(demo_run: DemoRun) -> None:
    import pypdf

    assert demo_run.result.returncode == 0, demo_run.result.stderr
    delivery = demo_run.out / "delivery"
    note = (delivery / "deltagerbrev.txt").read_text(encoding="utf-8")
    for words in (
        "Høringssvaret er sendt til Teknik- og Miljøudvalget",
        "Nordby Lokalråd: sende høringssvaret til udvalget (senest 27. november 2026)",
        "Trafikgruppen; tovholder: Søren Ærø Østergård",
        "udgifter: kaffe og kage (betales af Nordby Lokalråd)",
        "4. marts 2027, Nordby Forsamlingshus.",
        "Kontakt Ida Holm, formand for Nordby Lokalråd, ida.holm@example.org.",
    ):
        assert words in note, words
    page = (delivery / "deltagerbrev.html").read_text(encoding="utf-8")
    assert "<li>Trafikgruppen; tovholder: Søren Ærø Østergård" in page and 'lang="da"' in page

    (letter,) = delivery.glob("*-foelgebrev.pdf")
    text = "\n".join(p.extract_text() for p in pypdf.PdfReader(str(letter)).pages)
    flat = " ".join(text.split())
    assert "Udvalg: Teknik- og Miljøudvalget" in flat and "som aftalt med Demo: ingen aftale" in flat
    assert "4 indlæg fra borgerne" in flat and "består kontrollen" in flat
    sums = dict(
        reversed(line.split("  ", 1))
        for line in (delivery / "SHA256SUMS").read_text(encoding="utf-8").splitlines()
    )
    clips = list(delivery.glob("*.mp4"))  # the clip and its clean master: both in the letter's file list
    assert len(clips) == 2
    for clip in clips:
        assert sums[clip.name] in flat.replace(" ", "") or sums[clip.name] in text.replace("\n", "")


def pdftotext(path: Path) -> str:
    import subprocess

    result = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True)
    return " ".join(result.stdout.decode("utf-8").split())


def test_every_document_of_the_demo_names_the_model_and_its_published_error_rate(demo_run: DemoRun) -> None:
    """The demo runs with base: the transcript (every format), the cover letter, the delivery page and the
    QC report each name it, its published Danish error rate and the warning, read back from the files."""
    import docx

    from pipeline.engines import catalogue
    from pipeline.model_note import note_for
    from pipeline.texts import documents as words

    assert demo_run.result.returncode == 0, demo_run.result.stderr
    delivery = demo_run.out / "delivery"
    name = demo_run.report["delivery"]["name"]
    note = note_for("base")
    sentence = " ".join(words.model_text(note).split())
    published = " ".join(words.percent(catalogue.entry("base").mean_wer or 0).split())
    assert published == "122,1 %"

    def flat(text: str) -> str:
        return " ".join(text.split())

    transcript = delivery / f"{name}-transkription"
    texts = {
        "txt": flat(transcript.with_suffix(".txt").read_text(encoding="utf-8")),
        "docx": flat(
            "\n".join(p.text for p in docx.Document(str(transcript.with_suffix(".docx"))).paragraphs)
        ),
        "pdf": pdftotext(transcript.with_suffix(".pdf")),
        "cover letter": pdftotext(delivery / f"{name}-foelgebrev.pdf"),
        "qc report": flat((delivery / "qc-report.txt").read_text(encoding="utf-8")),
    }
    for where, text in texts.items():
        assert f"Talemodel: {sentence}" in text, where
        assert "«base»" in text and published in text and "ADVARSEL" in text, where
        assert "Rye-A1/danish-asr-leaderboard" in text, where
    assert "Speech model: Whisper base (OpenAI) («base»). WARNING" in texts["qc report"]

    data = json.loads(transcript.with_suffix(".json").read_text(encoding="utf-8"))
    assert data["model"] == "base" and data["model_note"]["fit_for_danish"] is False
    assert data["model_note"]["published_wer"]["mean_percent"] == catalogue.entry("base").mean_wer
    assert data["model_note"]["published_wer"]["source"] == catalogue.LEADERBOARD
    assert data["model_note"]["published_wer"]["measured_here"] is False
    qc = json.loads((delivery / "qc-report.json").read_text(encoding="utf-8"))
    assert qc["model"] == data["model_note"]

    page = Page((delivery / "index.html").read_text(encoding="utf-8"))
    assert words.model_text(note) in page.text_of("dd") and "Talemodel" in page.text_of("dt")


def test_an_invalid_follow_up_is_exit_3_naming_the_field(real_media: Path, make_meeting) -> None:  # type: ignore[no-untyped-def]
    meeting = make_meeting(
        {"a.flac": real_media / "en-jfk.flac"},
        "follow_up:\n  agreements:\n    - {who: Lokalrådet, by: 2026-12-01}\n",
    )
    result = hearing("run", meeting, "--dry-run")
    assert result.exit_code == 3
    assert "follow_up.agreements[0].what" in result.stderr or "follow_up.agreements.0.what" in result.stderr


@pytest.mark.slow
@pytest.mark.skipif(
    not (shutil.which("chromium") and shutil.which("chromedriver")),
    reason="needs Debian's chromium and chromium-driver (.ci/run installs them)",
)
def test_the_delivery_page_works_from_the_file_system(demo_run: DemoRun, tmp_path: Path) -> None:
    import pysubs2
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    delivery = demo_run.out / "delivery"
    (srt,) = delivery.glob("*.srt")
    cues = [c for c in pysubs2.load(str(srt), encoding="utf-8") if c.plaintext.strip()]
    options = webdriver.ChromeOptions()
    options.binary_location = str(shutil.which("chromium"))
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000",
                     "--mute-audio", "--autoplay-policy=no-user-gesture-required"):  # fmt: skip
        options.add_argument(argument)
    os.environ["SE_OFFLINE"] = "true"
    driver = webdriver.Chrome(service=Service(str(shutil.which("chromedriver"))), options=options)
    wait = WebDriverWait(driver, 60)
    # The same page for a form without a clean master: it plays the clip with the subtitles burned in,
    # and the captions wait in the player's menu, not twice on screen.
    page = (delivery / "index.html").read_text(encoding="utf-8")
    (master,) = delivery.glob("*-master.mp4")
    clip = delivery / master.name.replace("-master.mp4", ".mp4")
    assert f'src="{master.name}"' in page and '"burned": false' in page
    (tmp_path / clip.name).symlink_to(clip)
    burned = tmp_path / "index.html"
    burned.write_text(
        page.replace('"burned": false', '"burned": true').replace(master.name, clip.name), encoding="utf-8"
    )
    tracks = (
        "const v = document.getElementById('clip'); const t = v.textTracks[0];"
        "return {src: v.currentSrc, mode: t.mode, language: t.language,"
        " cues: Array.from(t.cues).map(c => c.text)};"
    )
    try:
        driver.get(burned.as_uri())
        wait.until(lambda d: d.execute_script("return document.body.dataset.ready") == "true")
        track = driver.execute_script(tracks)
        assert track["src"].endswith(clip.name) and track["mode"] == "hidden"
        assert len(track["cues"]) == len(cues)

        # The delivery as made: the clean master plays, with the captions on (a viewer can switch
        # them off in the player's menu), and the page passes axe-core's WCAG 2.1 A and AA rules.
        driver.get((delivery / "index.html").as_uri())
        wait.until(lambda d: d.execute_script("return document.body.dataset.ready") == "true")
        wait.until(lambda d: d.execute_script("return document.getElementById('clip').readyState") >= 1)
        track = driver.execute_script(tracks)
        assert track["src"].endswith(master.name), track["src"]
        assert track["mode"] == "showing" and track["language"] == "da"
        assert len(track["cues"]) == len(cues)
        assert axe_violations(driver) == []
        assert track["cues"][0].split() == cues[0].plaintext.split()
        wait.until(lambda d: d.execute_script("return document.getElementById('clip').readyState") >= 1)
        button = driver.find_elements(By.CSS_SELECTOR, ".cue")[3]
        start = float(button.get_attribute("data-start"))
        button.click()
        now = "return document.getElementById('clip').currentTime"
        wait.until(lambda d: abs(d.execute_script(now) - start) < 1.5)
        wait.until(lambda d: "now" in button.get_attribute("class"))
        resources = driver.execute_script("return performance.getEntriesByType('resource').map(r => r.name)")
        assert all(name.startswith("file:") for name in resources), resources  # nothing from a network
        assert "Teknik- og Miljøudvalget" in driver.find_element(By.TAG_NAME, "dl").text
        TEST_OUTPUT.mkdir(exist_ok=True)
        driver.save_screenshot(str(TEST_OUTPUT / "delivery-page.png"))
    finally:
        driver.quit()
