"""Every value escaped for every context it lands in (pipeline/escape.py and its writers).

Each test takes text of every kind a person can put into meeting.yaml, the form or a correction (markup,
comment and CDATA openers, quotes, backslashes, URL specials, control characters, zero-width and bidi
characters, lone surrogates, emoji, combining marks, NFD, very long words, line breaks) through one
context and reads it back the way a reader would: the HTML parsed, the script element's JSON decoded, the
URL unquoted to the file's name, the YAML loaded, the subtitles parsed, the DOCX opened with python-docx,
the PDF read with pypdf (its XMP metadata and outline with pikepdf). Each value must come back as typed,
or with only what the context cannot carry taken out or replaced (``escape.printable``), or be refused
with a reason; never crash a writer or break the reader. The delivery page is also opened in a real Chromium.
"""

from __future__ import annotations

import html
import io
import json
import re
import unicodedata
from dataclasses import dataclass, replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from conftest import ffmpeg
from test_cut import statement, transcript

from pipeline import escape
from pipeline.config import Agreement, StatementEdit, WorkingGroup, load_statement_edit
from pipeline.errors import ConfigError
from pipeline.meeting_facts import MeetingFacts
from pipeline.model_note import note_for
from pipeline.models import Approval, Consent
from pipeline.stages import delivery_page, edits, letters
from pipeline.stages import transcript as documents
from pipeline.stages.subtitles.io import (
    UNSAFE_WORDS,
    parse_srt,
    parse_vtt,
    to_ass,
    to_soft_ass,
    to_srt,
    to_vtt,
    unsafe_text,
)
from pipeline.stages.subtitles.rules import Cue
from pipeline.texts import page as page_words

# One example of each kind; the tests never rely on the example, only on what its kind is.
HOSTILE: dict[str, str] = {
    "markup": "<b>fed</b> & <i>kursiv</i> <img src=x onerror=alert(1)>",
    "comment-opener": "<!--<script>",
    "script-end": "</script><script>document.body.dataset.ready='hacked'</script>",
    "script-end-upper": "</SCRIPT ><!-- -->",
    "cdata-end": "]]> <![CDATA[ x ]]>",
    "quotes": "\"dobbelt\" 'enkelt' `back` ´ ‘’ “” «» „ ‹›",
    "backslashes": "C:\\sti\\n\\N\\\\x\\u003c \\",
    "url-specials": "50% #1 ?a=b&c=d %2F %%d %s /x",
    "template": "{title} {nb} ${x} {{y}} {0}",
    "pdf-syntax": "(åben ( ) \\) \\( endstream) /Name <<>>",
    "control": "bip\x07 nul\x00 esc\x1b[31m del\x7f c1\x85\x9f vt\x0b ff\x0c",
    "zero-width": "Anna\u200bJensen\u200c\u200d\u2060\ufeff",
    "bidi": "\u202eevil\u202c \u2067أحمد\u2069 \u202e open \u2066 open",
    "lone-surrogate": "Åse\ud800 og \udcff",
    "emoji": "👩‍👩‍👧 🇩🇰 👍🏽 ❤️ 😀",
    "combining": "Zalgo" + "\u0301\u0302\u0303\u0304" * 6,
    "nfd": unicodedata.normalize("NFD", "Åse Ærø Søren Østergård"),
    "long-word": "Trafiksikkerhed" * 170,
    "newlines": "første\nanden\r\ntredje\rfjerde\u2028femte\u2029sjette\tsyvende",
    "non-latin": "中文 Ελληνικά Русский עברית",
    "nonchar": "x\uffff\ufffe\U0010ffff\ufdd0y",
    "danish": "Søren Ærø Østergård, Åvej",
}
KINDS = list(HOSTILE)

# Characters no document carries (escape.printable takes them out or replaces them).
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def hostile(kind: str) -> str:
    return HOSTILE[kind]


# ------------------------------------------------------------------------------ the rules themselves


@pytest.mark.parametrize("kind", KINDS)
def test_printable_takes_out_only_what_no_document_carries(kind: str) -> None:
    value = hostile(kind)
    out = escape.printable(value)
    assert not CONTROL.search(out), repr(out)
    assert escape.printable(out) == out
    out.encode("utf-8")  # a lone surrogate became U+FFFD: the text can be written
    # Every character kept is kept in order: only control characters and noncharacters went.
    kept = [ch for ch in value.replace("\r\n", "\n").replace("\r", "\n") if not CONTROL.search(ch)]
    kept = [ch for ch in kept if not (0xFDD0 <= ord(ch) <= 0xFDEF or (ord(ch) & 0xFFFE) == 0xFFFE)]
    surrogates = [ch for ch in value if 0xD800 <= ord(ch) <= 0xDFFF]
    assert out.replace(escape.REPLACEMENT, "") == "".join(kept)
    assert out.count(escape.REPLACEMENT) == len(surrogates)
    one = escape.one_line(value)
    assert "\n" not in one and "\u2028" not in one and one == one.strip()


@pytest.mark.parametrize("limit", [1, 2, 5, 17, 254, 255])
@pytest.mark.parametrize("kind", KINDS)
def test_fit_cuts_between_characters_as_a_reader_sees_them(kind: str, limit: int) -> None:
    value = escape.one_line(hostile(kind)) * 300  # long enough to be cut at every limit
    fitted = escape.fit(value, limit)
    assert len(fitted) <= limit
    assert fitted.endswith(escape.ELLIPSIS)
    body = fitted.removesuffix(escape.ELLIPSIS)
    assert value.startswith(body)
    if body and len(body) < len(value):
        following = value[len(body.rstrip()) :].lstrip() or " "
        # Never a combining mark, a joiner or a skin tone left without the letter it belongs to (but
        # where one such character is longer than the room, which only a tiny limit makes so).
        if limit > 8:
            assert unicodedata.category(following[0]) not in ("Mn", "Me"), (body[-3:], following[:3])
            assert not body.endswith("\u200d") and following[0] not in "\u200d\ufe0f"
            assert not 0x1F3FB <= ord(following[0]) <= 0x1F3FF
        flags = re.search(r"[\U0001F1E6-\U0001F1FF]+$", body)
        if flags and len(body) > len(flags.group(0)):
            assert len(flags.group(0)) % 2 == 0
    assert escape.fit("kort", limit) == ("kort" if limit >= 4 else escape.fit("kort", limit))


@pytest.mark.parametrize("kind", KINDS)
def test_document_properties_are_one_printable_line_of_at_most_255_characters(kind: str) -> None:
    for value in (hostile(kind), hostile(kind) * 40):
        prop = escape.document_property(value)
        assert len(prop) <= escape.PROPERTY_LIMIT
        assert not CONTROL.search(prop) and "\n" not in prop
        if len(escape.one_line(value)) <= escape.PROPERTY_LIMIT:
            assert prop == escape.one_line(value)


@pytest.mark.parametrize("kind", KINDS)
def test_json_for_a_script_element_decodes_to_the_value_and_cannot_end_the_element(kind: str) -> None:
    value = hostile(kind)
    data = {"text": value, "list": [value, {"k": value}], value: 1}
    text = escape.script_json(data)
    assert json.loads(text) == data  # every character as it was, lone surrogates too
    # The HTML tokenizer, in a script element, reacts to "<" only (</script, <!--, <script): none left.
    # U+2028 and U+2029 end a line in older JavaScript; "&" and ">" are escaped as well, so the same
    # text is safe inside any element or attribute.
    assert not set(text) & {"<", ">", "&", "\u2028", "\u2029"}
    text.encode("utf-8")


@pytest.mark.parametrize("kind", KINDS)
def test_a_file_name_in_src_or_href_unquotes_to_the_name(kind: str, tmp_path: Path) -> None:
    name = escape.one_line(hostile(kind)).replace("/", "-")[:100] + ".mp4"
    attribute = escape.href(name)
    assert re.fullmatch(r"[A-Za-z0-9_.~%-]+", attribute), attribute  # nothing a URL or HTML reads
    back = unquote(html.unescape(attribute), errors="surrogateescape")
    if "\ud800" in name:
        # Half a character can never be a file name: it is named as U+FFFD, and nothing crashes.
        assert back == name.replace("\ud800", escape.REPLACEMENT)
        return
    assert back == name
    # The URL names the real file: a byte that is not UTF-8 (a surrogate escape) is that byte again.
    target = tmp_path / name
    target.write_bytes(b"x")
    assert (tmp_path / back).read_bytes() == b"x"


def test_a_file_name_of_bytes_that_are_not_utf8_is_percent_encoded_as_those_bytes() -> None:
    raw = b"m\xf8de #1 100%.mp4"  # Latin-1, as an old USB stick may hold it
    name = raw.decode("utf-8", errors="surrogateescape")
    assert escape.url_segment(name) == "m%F8de%20%231%20100%25.mp4"


@pytest.mark.parametrize("kind", KINDS)
def test_bidi_controls_a_value_opens_are_closed_at_its_end(kind: str) -> None:
    value = hostile(kind)
    closed = escape.bidi_closed(value)
    assert closed.startswith(value)
    added = closed[len(value) :]
    assert set(added) <= {"\u202c", "\u2069"}
    opened = sum(value.count(c) for c in "\u202a\u202b\u202d\u202e\u2066\u2067\u2068")
    assert len(added) <= opened
    if not opened:
        assert closed == value


def test_bidi_closed_pairs_as_the_unicode_algorithm_does() -> None:
    assert escape.bidi_closed("\u202eevil") == "\u202eevil\u202c"
    assert escape.bidi_closed("\u202eevil\u202c") == "\u202eevil\u202c"
    assert escape.bidi_closed("\u2067x\u202ey") == "\u2067x\u202ey\u202c\u2069"
    assert escape.bidi_closed("\u2067x\u202ey\u2069") == "\u2067x\u202ey\u2069"  # the isolate closes both
    assert escape.bidi_closed("x\u2069\u202c") == "x\u2069\u202c"  # a closer alone closes nothing


@pytest.mark.parametrize("kind", KINDS)
def test_text_for_the_font_is_drawable_or_marked(kind: str) -> None:
    from pipeline import fonts

    drawn = escape.font_text(hostile(kind))
    assert all(ord(ch) in fonts.drawable() or ch in "\t\n " for ch in drawn), drawn
    if all(ord(ch) in fonts.drawable() for ch in escape.printable(hostile(kind)) if ch not in "\t\n"):
        assert drawn == escape.printable(hostile(kind))
    # In a PDF (no shaping, no bidi) format characters do nothing, and the PDF library measures the
    # whole line again for each character it adds: a line of invisible ones would take quadratic time.
    pdf = escape.pdf_text(hostile(kind) * 50)
    assert not any(unicodedata.category(ch) == "Cf" for ch in pdf)
    assert not re.search(r"[\u0300-\u036f]{4}", pdf)  # no more than three marks on one letter
    assert set(pdf) <= set(drawn) | {" "}


# ------------------------------------------------------------------------------------- the documents


def hostile_document(value: str, number: int = 1) -> documents.TranscriptDocument:
    """A transcript whose every field a person writes holds ``value``."""
    person = replace(
        statement("s01", topic=value),
        speaker=value,
        group=value,
        consent=Consent(name_on_screen=True),
    )
    words = replace(transcript((0, 900, value), (900, 1800, "slut.")), statement_id="s01")
    entry = documents.TranscriptEntry(
        number, person, value, True, 1500, words, Approval(value, "2026-12-01T10:30")
    )
    benign = replace(statement("s02", topic="Cykelsti"), id="s02")
    other = documents.TranscriptEntry(
        number + 1, benign, "Borger 2", False, 9000, replace(transcript((0, 900, "Hej.")), statement_id="s02")
    )
    return documents.TranscriptDocument(
        meeting=hostile_meeting(value),
        form_name=value,
        agreed_with=value,
        committee_meeting=None,
        language="da",
        engine="faster-whisper",
        model=value,
        timecodes=True,
        entries=(entry, other),
    )


def hostile_meeting(value: str) -> MeetingFacts:
    return MeetingFacts(
        given_title=value, folder_name="moede", date=None, place=value, organiser=value, committee=value
    )


def hostile_facts(value: str, clip: str = "klip.mp4") -> letters.Facts:
    return letters.Facts(
        meeting=hostile_meeting(value),
        agreed_with=value,
        committee_meeting=None,
        form_name=value,
        model=note_for(value),
        statements=2,
        approved=1,
        clip_ms=61_000,
        changed_after_approval=(f"Indlæg 1: ændret efter godkendelse af {value}",),
        check_passed=True,
        check_verdict=value,
        files=((clip, "0" * 64), (value, "1" * 64)),
        contact=value,
        next_steps=(value,),
        groups=(WorkingGroup.model_construct(name=value, coordinator=value, meets=value),),
        agreements=(Agreement.model_construct(who=value, what=value, by=None),),
        next_meeting=None,
        next_meeting_place=value,
    )


class Page(HTMLParser):
    """A page as a browser's parser sees it: its elements with their attributes, and the text of each."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, tuple[str, ...]]] = []
        self.attrs: list[dict[str, str | None]] = []
        self.texts: list[tuple[str, str]] = []  # (innermost element, text)
        self.open: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, tuple(name for name, _ in attrs)))
        self.attrs.append(dict(attrs))
        if tag not in ("meta", "br", "img", "input", "link"):
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.open and self.open[-1] == tag:
            self.open.pop()

    def handle_data(self, data: str) -> None:
        self.texts.append((self.open[-1] if self.open else "", data))

    def text_of(self, tag: str) -> list[str]:
        return [text for element, text in self.texts if element == tag]

    def element(self, tag: str, **attrs: str) -> dict[str, str | None]:
        return next(
            a
            for (t, _), a in zip(self.tags, self.attrs, strict=True)
            if t == tag and attrs.items() <= a.items()
        )


def hostile_page(value: str, clip: str = "klip.mp4") -> str:
    doc = hostile_document(value)
    cues = (
        Cue(1500, 2400, (value, "næste linje"), statement_id="s01"),
        Cue(9000, 9900, ("Hej.",), statement_id="s02"),
    )
    qc = [{"check": "loudness", "title": value, "status": "pass", "measured": value}]
    return delivery_page.render(
        delivery_page.PageData(clip, "da", "da", hostile_facts(value, clip), doc, cues, qc, burned=False)
    )


@pytest.mark.parametrize("kind", KINDS)
def test_delivery_page_carries_every_value_as_text_and_its_script_data_intact(kind: str) -> None:
    value = hostile(kind)
    page_text = hostile_page(value)
    page_text.encode("utf-8")  # written as UTF-8 without an error, lone surrogates too
    page, plain = Page(page_text), Page(hostile_page("Anna"))
    # No value adds, removes or changes an element or attribute.
    assert page.tags == plain.tags
    shown = escape.printable(value)
    assert page.text_of("h1") == [shown]
    assert page.text_of("title") == [f"{page_words.LABELS['da']['kind']}: {shown}"]
    for label in ("place", "organiser", "committee", "form", "agreed_with"):
        assert shown in page.text_of("dd"), label
    (heading, *_) = page.text_of("h3")
    assert heading == documents.entry_heading(hostile_document(shown).entries[0], True)
    assert page.text_of("button")[0] == f"{shown} næste linje"
    assert any(text.endswith(shown) for text in page.text_of("li")), "the file list"
    # The captions' data: the script element's text is JSON that decodes to the cue exactly as typed,
    # and holds no "<", so nothing in it can end or change the element (</script>, <!--<script>).
    data_text = "".join(page.text_of("script")[:1])
    assert "<" not in data_text and "\u2028" not in data_text
    data = json.loads(data_text)
    assert data["cues"][0]["text"] == f"{value}\nnæste linje"
    assert page.element("script", id="cues") == {"type": "application/json", "id": "cues"}
    assert page.text_of("script")[1] == delivery_page.SCRIPT


@pytest.mark.parametrize("kind", KINDS)
def test_delivery_page_names_its_clip_by_a_url_that_unquotes_to_the_file_name(kind: str) -> None:
    clip = escape.one_line(hostile(kind)).replace("/", "-")[:80] + " #1 100% ?.mp4"
    page = Page(hostile_page("Anna", clip))
    src = page.element("video")["src"]
    assert src is not None and re.fullmatch(r"[A-Za-z0-9_.~%-]+", src), src
    assert unquote(src, errors="surrogateescape") == clip.replace("\ud800", escape.REPLACEMENT)


@pytest.mark.parametrize("kind", KINDS)
def test_participant_note_html_and_txt_carry_every_value(kind: str) -> None:
    value = hostile(kind)
    facts = hostile_facts(value)
    note = letters.participant_note_html(facts)
    note.encode("utf-8")
    page, plain = Page(note), Page(letters.participant_note_html(hostile_facts("Anna")))
    assert page.tags == plain.tags
    shown = escape.printable(value)
    assert page.text_of("h1") == [f"Til deltagerne i {shown}"]
    assert any(shown in text for text in page.text_of("li"))
    txt = letters.participant_note_txt(facts)
    txt.encode("utf-8")
    assert not CONTROL.search(txt) and shown in txt


def docx_texts(data: bytes) -> tuple[Any, str]:
    import docx

    document = docx.Document(io.BytesIO(data))
    return document.core_properties, "\n".join(p.text for p in document.paragraphs)


@pytest.mark.parametrize("kind", KINDS)
def test_docx_core_properties_and_body_carry_every_value(kind: str) -> None:
    value = hostile(kind)
    properties, body = docx_texts(documents.render_docx(hostile_document(value)))
    for name in ("title", "author", "comments", "language", "subject", "keywords", "category"):
        text = getattr(properties, name)
        assert len(text) <= 255 and not CONTROL.search(text) and "\n" not in text, name
    assert properties.title == escape.document_property(f"Høringssvar: {value}")
    assert properties.author == escape.document_property(value)
    shown = escape.printable(value)
    assert shown in body  # the title, the header, the heading, the approval and the text itself
    assert f"Godkendt af {shown}, 2026-12-01 10:30." in body


@pytest.mark.parametrize("kind", KINDS)
def test_txt_and_json_transcripts_carry_every_value(kind: str) -> None:
    value = hostile(kind)
    doc = hostile_document(value)
    txt = documents.render_txt(doc)
    assert not CONTROL.search(txt) and escape.printable(value) in txt
    data = documents.render_json(doc)
    text = json.dumps(data, ensure_ascii=False)
    text.encode("utf-8")  # as write_json writes it
    speaker = json.loads(text)["statements"][0]["speaker"]
    # JSON carries everything but half a character, which UTF-8 cannot hold.
    assert speaker == value.replace("\ud800", "\ufffd").replace("\udcff", "\ufffd")


@dataclass(frozen=True)
class PdfProperties:
    """A PDF/A document's metadata, read from its XMP (it has no Info dictionary)."""

    title: str
    author: str
    creator: str
    language: str
    part: str
    conformance: str
    created: str
    elements: tuple[str, ...]  # every property in the XMP, in order


XMP_NS = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "pdfaid": "http://www.aiim.org/pdfa/ns/id/",
    "pdf": "http://ns.adobe.com/pdf/1.3/",
}


def pdf_properties(data: bytes) -> PdfProperties:
    """The XMP parsed as XML, strictly: a value that broke out of its element would fail to parse or
    show up as a property of its own in ``elements``."""
    import xml.etree.ElementTree as ET

    import pikepdf

    with pikepdf.open(io.BytesIO(data)) as pdf:
        assert "/Info" not in pdf.trailer  # PDF/A: the XMP is the one place of the metadata
        root = ET.fromstring(pdf.Root.Metadata.read_bytes())
    (description,) = root.iterfind("rdf:RDF/rdf:Description", XMP_NS)

    def one(path: str) -> str:
        (element,) = description.iterfind(path, XMP_NS)
        return element.text or ""

    return PdfProperties(
        title=one("dc:title/rdf:Alt/rdf:li"),
        author=one("dc:creator/rdf:Seq/rdf:li"),
        creator=one("xmp:CreatorTool"),
        language=one("dc:language/rdf:Bag/rdf:li"),
        part=one("pdfaid:part"),
        conformance=one("pdfaid:conformance"),
        created=one("xmp:CreateDate"),
        elements=tuple(element.tag for element in description),
    )


XMP_ELEMENTS = tuple(
    f"{{{XMP_NS[prefix]}}}{name}"
    for prefix, name in (
        ("pdfaid", "part"),
        ("pdfaid", "conformance"),
        ("dc", "title"),
        ("dc", "creator"),
        ("dc", "language"),
        ("dc", "format"),
        ("xmp", "CreatorTool"),
        ("xmp", "CreateDate"),
        ("xmp", "ModifyDate"),
        ("xmp", "MetadataDate"),
        ("pdf", "Producer"),
    )
)


def pdf_read(data: bytes) -> tuple[PdfProperties, str]:
    import pypdf

    reader = pypdf.PdfReader(io.BytesIO(data))
    return pdf_properties(data), "\n".join(page.extract_text() for page in reader.pages)


# Kinds pypdf reads back letter for letter (the others: see the test below).
PDF_EXACT = ("markup", "comment-opener", "script-end", "cdata-end", "url-specials", "template", "danish")


@pytest.mark.parametrize("kind", KINDS)
def test_pdf_metadata_and_body_carry_every_value(kind: str) -> None:
    value = hostile(kind)
    doc = hostile_document(value)
    transcript_pdf = documents.render_pdf(doc)
    for data, title in (
        (transcript_pdf, f"Høringssvar: {value}"),
        (letters.cover_letter_pdf(hostile_facts(value)), f"Følgebrev: {value}"),
    ):
        assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
        metadata, text = pdf_read(data)
        assert metadata.title == escape.document_property(title)
        assert metadata.author == escape.document_property(value)
        assert metadata.language == "da" and (metadata.part, metadata.conformance) == ("2", "U")
        assert metadata.elements == XMP_ELEMENTS  # nothing the value spelt became a property
        for field in (metadata.title, metadata.author, metadata.creator):
            assert not CONTROL.search(field) and "\n" not in field and len(field) <= 255
        flat = " ".join(text.split())
        if kind in PDF_EXACT:
            assert " ".join(value.split()) in flat, flat[:300]
        # "{nb}" is the page count only where the footer puts it, never in a person's text.
        pages = len(re.findall(r"Side \d+ af \d+", flat))
        assert pages >= 1 and "\ufdd0" not in text
    # The statement's bookmark: its heading as one line, the value in it as typed but for what no PDF
    # string carries.
    assert pdf_outline(transcript_pdf) == [
        escape.document_property(documents.entry_heading(entry, timecodes=False)) for entry in doc.entries
    ]


def pdf_outline(data: bytes) -> list[str]:
    """The titles of a PDF's document outline (bookmarks), top level, in order."""
    import pikepdf

    with pikepdf.open(io.BytesIO(data)) as pdf, pdf.open_outline() as outline:
        return [item.title for item in outline.root]


def test_pdf_text_the_font_cannot_draw_is_marked_not_lost() -> None:
    _, text = pdf_read(documents.render_pdf(hostile_document(HOSTILE["non-latin"])))
    assert "Ελληνικά Русский" in text  # DejaVu Sans draws Greek and Cyrillic
    assert "\ufffd\ufffd" in text and "中" not in text  # it has no Chinese: marked, not silently dropped


def test_pdf_header_is_one_line_however_long_the_title() -> None:
    import pypdf

    data = documents.render_pdf(hostile_document("Trafiksikkerhed " * 60 + "\nanden linje"))
    pages = pypdf.PdfReader(io.BytesIO(data)).pages
    assert len(pages) >= 1
    for page in pages:
        header = page.extract_text().split("\n")[0]
        assert header.startswith("Høringssvar fra borgermødet · Trafiksikkerhed") and header.endswith("…")


# ------------------------------------------------------------------------------- YAML and subtitles


@pytest.mark.parametrize("kind", KINDS)
def test_an_edits_yaml_value_round_trips_or_is_refused_with_its_field(kind: str, tmp_path: Path) -> None:
    value = hostile(kind)[:200]
    fields = StatementEdit.model_construct(
        speaker=value, topic=value, group=value, approved=True, approved_by=value, approved_at=None
    )
    shown = replace(statement("s01", relpath=f"optagelser/{escape.one_line(value)[:40]}.mp4"), speaker=value)
    try:
        text = edits.edit_yaml(shown.recording.relpath, fields, shown)
    except UnicodeEncodeError:  # pragma: no cover - a failure, named
        pytest.fail(f"the YAML writer cannot write {value!r}")
    path = tmp_path / "x.yaml"
    try:
        path.write_text(text, encoding="utf-8")
    except UnicodeEncodeError:
        pytest.fail(f"the YAML of {value!r} cannot be written as UTF-8")
    try:
        loaded = load_statement_edit(path)
    except ConfigError as error:
        # Refused: with the file and a field named, never a crash or a silent change.
        assert error.field or "x.yaml" in str(error), error
        assert kind in ("control", "lone-surrogate", "nonchar", "newlines", "zero-width", "bidi"), error
        return
    # Read back as typed, composed (NFC) as every text field of the tool is.
    composed = unicodedata.normalize("NFC", value)
    assert (loaded.speaker, loaded.topic, loaded.group, loaded.approved_by) == (composed,) * 4


SUBTITLE_KINDS = {
    **{kind: value for kind, value in HOSTILE.items() if kind not in ("long-word",)},
    "number-alone": "42",
    "arrow": "a --> b",
    "timing": "00:00:01,000 --> 00:00:02,000",
    "vtt-tags": "<c.yellow>gul</c> <v Anna>tale</v> &amp; &lt;",
    "ass-overrides": "{\\an8}top {\\b1}fed{\\b0} \\N ny \\h hård",
    "srt-tags": "<i>kursiv</i> <font color=red>rød</font>",
    "braces": "{ikke en kode} \\{ \\}",
}


@pytest.mark.parametrize("kind", list(SUBTITLE_KINDS))
def test_subtitle_text_round_trips_through_srt_vtt_and_ass_or_is_refused(kind: str) -> None:
    import pysubs2

    lines = tuple(x.strip() for x in SUBTITLE_KINDS[kind].split("\n") if x.strip()) or ("x",)
    refused = [unsafe_text(line) for line in lines]
    if any(refused):
        why, part = next(r for r in refused if r)
        assert why in UNSAFE_WORDS and part, refused
        return
    cue = Cue(1000, 3000, lines)
    assert parse_srt(to_srt([cue, cue]))[0].lines == lines
    assert parse_vtt(to_vtt([cue, cue]))[0].lines == lines
    vtt = to_vtt([cue])
    assert "-->" not in vtt.split("\n", 3)[3]  # only in the timing line
    # The burned-in ASS as libass reads it: no override block, no \N, \n or \h but the line breaks.
    ass = pysubs2.SSAFile.from_string(
        to_ass([cue], width=1280, height=720, font_name="DejaVu Sans", font_size_px=36, duration_ms=5000)
    )
    (event,) = ass.events
    parts = event.text.split("\\N")
    assert len(parts) == len(lines)
    for part, line in zip(parts, lines, strict=True):
        assert not re.search(r"(?<!\\)\{", part), part  # every brace escaped
        assert not re.search(r"\\[nNh]", part), part  # a backslash typed is followed by a word joiner
        assert part.replace("\\{", "{").replace("\\}", "}").replace("\\\u2060", "\\") == line
    # The selectable track's ASS as ffmpeg's mov_text encoder reads it: no "\N", "\n" or "{\" of ours.
    soft = pysubs2.SSAFile.from_string(to_soft_ass([cue])).events[0].text
    assert len(soft.split("\\N")) == len(lines) and "{\\" not in soft


# -------------------------------------------------------------------------------- in a real browser


def test_delivery_page_works_with_a_hostile_speaker_and_clip_name_in_chromium(tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    from test_review import CHROMIUM, DRIVER, chromium

    assert CHROMIUM and DRIVER, "needs Debian's chromium and chromium-driver (.ci/run installs them)"
    # A clip named as no URL may carry as it is: "#" starts a fragment, "%" an escape, "?" a query.
    clip = "2026-11-20_Udvalg #1 100% ?a=b&c 'æøå'.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=160x120:rate=25:duration=4", "-f", "lavfi", "-i",
           "sine=frequency=440:duration=4", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
           "-c:a", "aac", "-shortest", "-movflags", "+faststart", tmp_path / clip)  # fmt: skip
    speaker = "<!--<script>"
    doc = hostile_document(speaker)
    cues = (
        Cue(500, 1500, (speaker, "</script><!--"), statement_id="s01"),
        Cue(2000, 3000, ("]]> & \u2028 \"'",), statement_id="s01"),
        Cue(3100, 3900, ("Hej.",), statement_id="s02"),
    )
    qc = [{"check": "loudness", "title": speaker, "status": "pass", "measured": speaker}]
    page = delivery_page.render(
        delivery_page.PageData(clip, "da", "da", hostile_facts(speaker, clip), doc, cues, qc, burned=False)
    )
    (tmp_path / delivery_page.PAGE).write_text(page, encoding="utf-8")
    with chromium() as driver:
        driver.get((tmp_path / delivery_page.PAGE).as_uri())
        wait = WebDriverWait(driver, 30)
        # The page's own script ran to its end: nothing in the data ended or swallowed it.
        wait.until(lambda d: d.execute_script("return document.body.dataset.ready") == "true")
        track = driver.execute_script(
            "const t = document.getElementById('clip').textTracks[0];"
            "return {mode: t.mode, cues: Array.from(t.cues).map(c => c.text)};"
        )
        assert track == {"mode": "showing", "cues": ["\n".join(c.lines) for c in cues]}
        # The clip's src reaches the file: it loads, with no error.
        wait.until(lambda d: d.execute_script("return document.getElementById('clip').readyState") >= 1)
        assert driver.execute_script("return document.getElementById('clip').error") is None
        src = driver.execute_script("return document.getElementById('clip').currentSrc")
        assert unquote(src.rsplit("/", 1)[1]) == clip
        duration = driver.execute_script("return document.getElementById('clip').duration")
        assert 3.5 < duration < 4.5
        # The transcript's buttons work: a click takes the clip there.
        button = driver.find_elements(By.CSS_SELECTOR, ".cue")[1]
        assert button.text == "]]> & \"'" or button.text.startswith("]]> &")
        button.click()
        now = "return document.getElementById('clip').currentTime"
        wait.until(lambda d: abs(d.execute_script(now) - 2.0) < 1.0)
        wait.until(lambda d: "now" in (button.get_attribute("class") or ""))
        # The name is shown as text, and no element was made of it.
        assert speaker in driver.find_element(By.CSS_SELECTOR, "section.statement h3").text
        assert driver.execute_script("return document.scripts.length") == 2
        assert driver.title == f"{page_words.LABELS['da']['kind']}: {speaker}"
