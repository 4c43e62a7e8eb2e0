"""Every value written into a delivered file, made safe for the one context it lands in.

A name, a title or a correction may hold anything a person can type or a YAML escape can spell: markup,
comment openers, quotes, backslashes, ``%`` and ``#``, control characters, lone surrogates, bidi and
zero-width characters, emoji, combining marks, very long words. Each context has one rule here, and the
writers call it rather than escaping on their own:

- HTML text and attribute values: ``html_text`` (character references for ``& < > " '``).
- JSON inside a ``<script>`` element: ``script_json`` (``< > &`` and U+2028/U+2029 as ``\\uXXXX``, so no
  ``</script>``, ``<!--`` or ``]]>`` can end or change the element).
- A file name in a ``src`` or ``href``: ``href`` (percent-encoded, then HTML-escaped).
- XML (DOCX) and PDF text: ``printable`` (what XML 1.0 and a PDF cannot carry taken out).
- Document properties (DOCX core properties, PDF metadata): ``document_property`` (one line, at most
  ``PROPERTY_LIMIT`` characters, cut between characters with "…"); in a PDF's XMP metadata
  ``xmp_text`` (the same, with XML's specials as references).
- Text drawn in the shipped font: ``font_text`` (a character the font lacks shows as "�"); on a card
  also ``few_marks``, in a PDF ``pdf_text``.
- A value that shares a line with others: ``bidi_closed`` (direction overrides it opens end with it).

What is taken out is invisible anyway (control characters) or was never a character (a lone surrogate,
which becomes U+FFFD); everything else arrives as typed.
"""

from __future__ import annotations

import html
import json
import re
import unicodedata
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

REPLACEMENT = "\ufffd"
ELLIPSIS = "…"

# DOCX core properties hold at most 255 characters (python-docx refuses more); PDF metadata is held to
# the same, so the two documents of one delivery carry the same title.
PROPERTY_LIMIT = 255

# C0 controls but tab and line feed (carriage returns are made line feeds first), DEL, C1 controls, and
# the noncharacters (U+FFFE and U+FFFF are not XML 1.0 characters; the others are not for interchange).
_NONCHARACTERS = "".join(
    f"\\U{plane + 0xFFFE:08x}\\U{plane + 0xFFFF:08x}" for plane in range(0, 0x110000, 0x10000)
)
_NOT_CARRIED = re.compile(rf"[\x00-\x08\x0b-\x1f\x7f-\x9f\ufdd0-\ufdef{_NONCHARACTERS}]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_WHITESPACE = re.compile(r"\s+")
# A lone surrogate that does not stand for a byte of a non-UTF-8 file name (U+DC80 to U+DCFF do).
_NOT_A_BYTE = re.compile(r"[\ud800-\udc7f\udd00-\udfff]")


def printable(text: str) -> str:
    """``text`` as any document can carry it: line breaks as ``\\n``, control characters and
    noncharacters left out, a lone surrogate (half a character, e.g. a ``"\\ud800"`` escape in YAML)
    replaced by U+FFFD. Tabs, line breaks and every real character stay as they are."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _SURROGATE.sub(REPLACEMENT, _NOT_CARRIED.sub("", text))


def one_line(text: str) -> str:
    """``printable`` with every run of white space (line breaks too) made one space."""
    return _WHITESPACE.sub(" ", printable(text)).strip()


def _attaches_to_previous(ch: str) -> bool:
    # Combining marks, joiners, variation selectors, emoji skin tones and tag characters belong to the
    # character before them: a cut before one would leave a mark alone or split an emoji.
    code = ord(ch)
    return (
        unicodedata.category(ch) in ("Mn", "Mc", "Me")
        or ch in "\u200c\u200d"
        or 0xFE00 <= code <= 0xFE0F
        or 0xE0100 <= code <= 0xE01EF
        or 0x1F3FB <= code <= 0x1F3FF
        or 0xE0020 <= code <= 0xE007F
    )


def _regional_indicator(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def cut_point(text: str, limit: int, start: int = 0) -> int:
    """The largest index in ``start + 1 .. limit`` at which ``text`` may be cut without splitting a
    character as a reader sees it (a letter and its marks, an emoji sequence, a flag). Where there is
    none (one such character longer than the room), ``limit`` itself: cut inside it rather than show
    nothing. Looks no further back than ``start``."""
    limit = max(start, min(limit, len(text)))
    cut = limit
    while start < cut < len(text) and (_attaches_to_previous(text[cut]) or text[cut - 1] == "\u200d"):
        cut -= 1
    if start < cut < len(text) and _regional_indicator(text[cut]):
        run = 0
        while cut - run > start and _regional_indicator(text[cut - 1 - run]):
            run += 1
        cut -= run % 2  # flags are pairs: never leave half of one on either side
    return cut if cut > start else limit


def fit(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters: as it is when it fits, else cut between characters and
    ended with "…"."""
    if len(text) <= limit:
        return text
    if limit < 1:
        return ""
    return text[: cut_point(text, limit - 1)].rstrip() + ELLIPSIS


def document_property(value: object, limit: int = PROPERTY_LIMIT) -> str:
    """A DOCX core property or a PDF metadata field: one printable line of at most ``limit`` characters."""
    return fit(one_line("" if value is None else str(value)), limit)


def xmp_text(value: object) -> str:
    """A document property as the text of an XMP (XML) element: ``document_property`` with ``& < > " '``
    as references, so a title cannot close the element or add one."""
    return html.escape(document_property(value), quote=True)


def html_text(value: object) -> str:
    """A value as HTML text or as a quoted attribute value (``& < > " '`` as character references)."""
    return html.escape(printable("" if value is None else str(value)), quote=True)


def url_segment(name: str) -> str:
    """A file name as one path segment of a URL: every byte but letters, digits and ``_.-~``
    percent-encoded from UTF-8, so ``#``, ``?``, ``%``, ``/``, quotes and spaces stay part of the name.
    A byte that was not UTF-8 (kept in the name as a lone surrogate by Python) is encoded as that byte,
    which is the name on disk."""
    return quote(_NOT_A_BYTE.sub(REPLACEMENT, name), safe="", encoding="utf-8", errors="surrogateescape")


def href(name: str) -> str:
    """A file beside the page, as the value of a quoted ``src`` or ``href`` attribute."""
    return html.escape(url_segment(name), quote=True)


_SCRIPT_UNSAFE = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_SCRIPT_UNSAFE_RE = re.compile(r"[<>&\u2028\u2029\ud800-\udfff]")


def script_json(data: Any) -> str:
    """``data`` as JSON for the inside of a ``<script>`` element. Outside strings JSON has none of the
    characters escaped here, so the result is the same JSON: ``JSON.parse`` of the element's text gives
    ``data`` back, every character as it was (a lone surrogate too, as a ``\\uXXXX`` escape)."""
    text = json.dumps(data, ensure_ascii=False)
    return _SCRIPT_UNSAFE_RE.sub(
        lambda m: _SCRIPT_UNSAFE.get(m.group(0)) or f"\\u{ord(m.group(0)):04x}", text
    )


def encodable(data: Any, shown: Callable[[str], str] | None = None) -> Any:
    """``data`` (JSON-like) with every string that holds a lone surrogate made writable as UTF-8: by
    ``shown`` where given (a file name with its bytes escaped, say), else each surrogate as U+FFFD."""
    if isinstance(data, str):
        if not _SURROGATE.search(data):
            return data
        return shown(data) if shown is not None else _SURROGATE.sub(REPLACEMENT, data)
    if isinstance(data, dict):
        return {encodable(k, shown): encodable(v, shown) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [encodable(v, shown) for v in data]
    return data


def _invisible(ch: str) -> bool:
    # Format characters (joiners, bidi marks, the BOM) and variation selectors draw nothing themselves.
    code = ord(ch)
    return unicodedata.category(ch) == "Cf" or 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF


def font_text(text: str) -> str:
    """``text`` for drawing in the shipped DejaVu Sans (the PDF documents, the cards): ``printable``, and
    a character the font cannot draw shown as "�" (the PDF library would leave it out without a trace,
    a card would show an empty box); an invisible one the font lacks is left out, as it draws nothing."""
    from pipeline import fonts

    drawable = fonts.drawable()
    text = printable(text)
    if all(ord(ch) in drawable or ch in "\t\n" for ch in text):
        return text
    return "".join(
        ch
        if ord(ch) in drawable or ch in "\t\n"
        else ""
        if _invisible(ch)
        else " "
        if ch.isspace()
        else REPLACEMENT
        for ch in text
    )


MAX_MARKS = 3  # combining marks drawn on one letter; more only pile up over the lines around it


def few_marks(text: str, limit: int = MAX_MARKS) -> str:
    """``text`` with at most ``limit`` combining marks on any one letter (Vietnamese needs two): a pile
    of them ("Zalgo" text) draws over the lines above and below, and off a card."""
    out = []
    marks = 0
    for ch in text:
        marks = marks + 1 if unicodedata.category(ch) in ("Mn", "Me") else 0
        if marks <= limit:
            out.append(ch)
    return "".join(out)


def pdf_text(text: str) -> str:
    """``text`` for the PDF documents: ``font_text`` with at most ``MAX_MARKS`` marks on a letter and no
    format characters (joiners, direction marks, zero-width spaces). The PDF library draws without
    shaping or the bidirectional algorithm, so those change nothing there, and it measures a whole
    line again for every character it adds: a line of invisible characters would take quadratic time."""
    return "".join(ch for ch in few_marks(font_text(text)) if not _invisible(ch))


# Unicode's directional embeddings and overrides (closed by U+202C) and isolates (closed by U+2069).
_EMBEDDINGS = "\u202a\u202b\u202d\u202e"
_ISOLATES = "\u2066\u2067\u2068"


def bidi_closed(text: str) -> str:
    """``text`` with every direction embedding, override or isolate it opens and leaves open closed at
    its end (as the Unicode bidirectional algorithm pairs them), so a value cannot turn around the words
    that follow it on the same line, such as the name after a topic."""
    if not any(ch in text for ch in _EMBEDDINGS + _ISOLATES):
        return text
    open_: list[str] = []
    isolates = 0  # of those open
    for ch in text:
        if ch in _EMBEDDINGS or ch in _ISOLATES:
            open_.append(ch)
            isolates += ch in _ISOLATES
        elif ch == "\u202c" and open_ and open_[-1] in _EMBEDDINGS:
            open_.pop()
        elif ch == "\u2069" and isolates:
            while open_.pop() not in _ISOLATES:
                pass
            isolates -= 1
    return text + "".join("\u2069" if o in _ISOLATES else "\u202c" for o in reversed(open_))
