"""The rules of the text fields a person writes (meeting.yaml, a form, an edits file, the review page),
checked at the edge (docs/design.md, "Text fields").

Every such text lands on cards, in subtitles, file names, documents and metadata, each with its own
limits. So each field has one rule: normalised to NFC, surrounding spaces dropped (one-line fields), not
blank, at most so many characters, and no character that is not text: control characters (a newline only
where the field has lines), lone surrogates, line and paragraph separators, the bidi controls that can
make a name read as another, and Unicode's noncharacters. A path in meeting.yaml has a rule of its own.
"""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator

_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def not_text(char: str, *, lines: bool) -> str | None:
    """Why ``char`` cannot stand in a text field, or None."""
    point = ord(char)
    category = unicodedata.category(char)
    if category == "Cs":
        return "a lone surrogate, which is not a character (a damaged or mis-converted text)"
    if char == "\n":
        return None if lines else "a line break (this field is one line)"
    if category == "Cc":
        return "a control character"
    if category in ("Zl", "Zp"):
        return "a line or paragraph separator" + ("" if lines else " (this field is one line)")
    if char in _BIDI_CONTROLS:
        return "a bidirectional control character, which can make the text read as something else"
    if 0xFDD0 <= point <= 0xFDEF or (point & 0xFFFE) == 0xFFFE:
        return "a Unicode noncharacter"
    return None


def _only_text(value: str, *, lines: bool) -> None:
    for index, char in enumerate(value):
        why = not_text(char, lines=lines)
        if why is not None:
            raise ValueError(f"contains {why}: U+{ord(char):04X} at character {index + 1}")


def clean_text(value: str, *, limit: int, lines: bool = False) -> str:
    """``value`` as a text field keeps it (NFC; a one-line field without surrounding spaces), or a
    ValueError saying what breaks the field's rule (pydantic names the field)."""
    _only_text(value, lines=lines)
    text = unicodedata.normalize("NFC", value)
    if not lines:
        text = text.strip()
    if not text.strip():
        raise ValueError("is empty; leave the field out instead")
    if len(text) > limit:
        raise ValueError(f"is {len(text)} characters long; at most {limit} are allowed")
    return text


def text_field(limit: int, *, lines: bool = False) -> Callable[[str], str]:
    def check(value: str) -> str:
        return clean_text(value, limit=limit, lines=lines)

    return check


# The limits (docs/design.md): a name fits a card line and a file name; a title a card; a line a sentence.
NAME_CHARS = 100
TITLE_CHARS = 200
LINE_CHARS = 1000
TEMPLATE_CHARS = 1000
PATH_CHARS = 1000
# A person's corrections in edits/ (and on the review page, pipeline/review/) allow longer ones.
EDIT_NAME_CHARS = 200
EDIT_TOPIC_CHARS = 500

NameText = Annotated[str, AfterValidator(text_field(NAME_CHARS))]
TitleText = Annotated[str, AfterValidator(text_field(TITLE_CHARS))]
LineText = Annotated[str, AfterValidator(text_field(LINE_CHARS))]
Term = Annotated[str, AfterValidator(text_field(NAME_CHARS))]


def check_template(value: str, allowed: tuple[str, ...]) -> str:
    """A str.format template whose placeholders are all in ``allowed``."""
    try:
        fields = [
            (name, spec, conv) for _, name, spec, conv in string.Formatter().parse(value) if name is not None
        ]
    except ValueError as error:
        raise ValueError(f"is not a valid template ({error})") from None
    unknown = [name for name, _, _ in fields if name not in allowed]
    if unknown:
        raise ValueError(f"unknown placeholder {{{unknown[0]}}}; allowed: {', '.join(allowed)}")
    # Every value is filled in as text, so a format ("{date:%Y}") or conversion ("{title!r}") would only
    # fail once the run has done its work.
    shaped = next(((name, spec, conv) for name, spec, conv in fields if spec or conv), None)
    if shaped is not None:
        name, spec, conv = shaped
        written = "{" + name + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "") + "}"
        raise ValueError(
            f"placeholder {written} has a format; write {{{name}}} (allowed: {', '.join(allowed)})"
        )
    try:
        value.format(**dict.fromkeys(allowed, "x"))
    except (ValueError, KeyError, IndexError) as error:
        raise ValueError(f"is not a valid template ({error})") from None
    return value


def path_text(value: str) -> str:
    # Matched against the names on disk as written (pipeline/stages/ingest.py), so neither normalised nor
    # stripped, and a character a file name may hold (a line break, even) is allowed: the organiser must
    # be able to name any recording to give its consent. What no path can hold is refused.
    for index, char in enumerate(value):
        if char == "\0" or unicodedata.category(char) == "Cs":
            why = "a NUL character" if char == "\0" else "a lone surrogate, which is not a character"
            raise ValueError(f"contains {why}: U+{ord(char):04X} at character {index + 1}")
    if not value.strip():
        raise ValueError("is empty")
    if len(value) > PATH_CHARS:
        raise ValueError(f"is {len(value)} characters long; at most {PATH_CHARS} are allowed")
    return value
