"""Subtitle files: SubRip, WebVTT and the ASS that is burned in or becomes the clip's mov_text track.

The writers (``to_srt``, ``to_vtt``, ``to_ass``, ``to_soft_ass``) and readers (``parse_srt``,
``parse_vtt``) escape each line for the format it lands in, so a person's text comes back as typed;
``unsafe_text`` refuses beforehand what no format could carry so (a timing line, a formatting tag, a
control character, a character the font cannot draw), and ``UNSAFE_WORDS`` says why.
"""

from __future__ import annotations

import html
import math
import re
import unicodedata
from collections.abc import Sequence

import pysubs2

from pipeline.stages.subtitles.rules import Cue
from pipeline.timefmt import srt_time, vtt_time

# SubRip and WebVTT are written and read here, not by pysubs2: pysubs2 reads a line of digits at the end of
# a cue as the next cue's number, and "\\N" typed in a cue as a line break, so a person's text would
# not come back as typed.
_STAMP = r"(\d+):(\d{1,2}):(\d{1,2})[,.](\d{1,3})"
_SRT_TIMING = re.compile(rf"^\s*{_STAMP}\s*-->\s*{_STAMP}(?:\s.*)?$")
_VTT_STAMP = r"(?:(\d+):)?(\d{1,2}):(\d{1,2})\.(\d{1,3})"
_VTT_TIMING = re.compile(rf"^\s*{_VTT_STAMP}\s*-->\s*{_VTT_STAMP}(?:\s.*)?$")
_ANY_STAMP = re.compile(r"\d+:\d{1,2}:\d{1,2}[,.]\d{1,3}|\d{1,2}:\d{1,2}\.\d{1,3}")


def _ms_of(hours: str | None, minutes: str, seconds: str, fraction: str) -> int:
    return ((int(hours or 0) * 60 + int(minutes)) * 60 + int(seconds)) * 1000 + int(fraction.ljust(3, "0"))


def looks_like_timing(line: str) -> bool:
    """A line a subtitle reader would take for the timing of a new cue: two time codes around ``-->``."""
    return "-->" in line and len(_ANY_STAMP.findall(line)) >= 2


def _escape_vtt(line: str) -> str:
    # WebVTT cue text is markup: these three must be written as character references ("-->" too is then
    # never in a cue's text, as WebVTT requires).
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _escape_ass(line: str) -> str:
    # In ASS, braces open override tags and a backslash before N, n or h is a line break or a space.
    # libass shows \{ and \} as braces, and a backslash followed by a word joiner (invisible) as itself.
    return line.replace("\\", "\\\u2060").replace("{", "\\{").replace("}", "\\}")


# What a player reads as formatting in SubRip (SubRip has no way to write these as text).
_FORMAT_TAG = re.compile(r"</?(?:i|b|u|s|font)(?:\s[^>]*)?>", re.IGNORECASE)
_OVERRIDE = re.compile(r"\{\\[^}]*\}")

UNSAFE_TIMING = "timing"
UNSAFE_FORMAT = "format"
UNSAFE_CONTROL = "control"
UNSAFE_FONT = "font"


def unsafe_text(line: str, machine_wrote: str = "") -> tuple[str, str] | None:
    """Why a line a person wrote cannot reach every file as typed, as (UNSAFE_*, the offending part), or
    None. Everything else (any letter, "-->", braces, angle brackets, backslashes) is written so that it
    comes back exactly: escaped where a format reads markup (WebVTT, the burned-in ASS), as it is in
    SubRip, which has no markup but these. A character the font cannot draw that the speech engine wrote
    itself (``machine_wrote``) is not the person's doing: it stays as a run without corrections has it,
    so that one corrected word never refuses a file over a cue the person did not touch."""
    from pipeline import fonts

    if looks_like_timing(line):
        return UNSAFE_TIMING, line.strip()
    tag = _FORMAT_TAG.search(line) or _OVERRIDE.search(line)
    if tag:
        return UNSAFE_FORMAT, tag.group(0)
    for ch in line:
        if unicodedata.category(ch) in ("Cc", "Cs", "Co") or ch in "\u2028\u2029":
            return UNSAFE_CONTROL, f"U+{ord(ch):04X}"
    drawable = fonts.drawable()
    missing = next(
        (
            ch
            for ch in line
            if not ch.isspace() and ord(ch) not in drawable and not _invisible(ch) and ch not in machine_wrote
        ),
        None,
    )
    if missing is not None:
        return UNSAFE_FONT, f"{missing} (U+{ord(missing):04X})"
    return None


def _invisible(ch: str) -> bool:
    # Joiners, direction marks and variation selectors change how the letters around them are drawn.
    return unicodedata.category(ch) == "Cf" or 0xFE00 <= ord(ch) <= 0xFE0F


def undrawable(text: str) -> str:
    """The characters of ``text`` the subtitle font cannot draw, each once, in order."""
    from pipeline import fonts

    drawable = fonts.drawable()
    found = (ch for ch in text if not ch.isspace() and ord(ch) not in drawable and not _invisible(ch))
    return "".join(sorted(set(found)))


UNSAFE_WORDS = {
    UNSAFE_TIMING: "reads as the timing of a new subtitle (two time codes around -->)",
    UNSAFE_FORMAT: "reads as formatting to video players (SubRip cannot show it as text)",
    UNSAFE_CONTROL: "holds an invisible control character",
    UNSAFE_FONT: "holds a character the subtitle font cannot draw",
}


def to_srt(cues: Sequence[Cue]) -> str:
    """SubRip: blocks numbered from 1, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``, one text line per line, a blank
    line after each. A cue's text is written as it is (SubRip has no escapes): what cannot be written so
    is refused before, see ``unsafe_text``."""
    blocks = [
        f"{n}\n{srt_time(c.start_ms)} --> {srt_time(c.end_ms)}\n" + "".join(f"{line}\n" for line in c.lines)
        for n, c in enumerate(cues, 1)
    ]
    return "".join(f"{block}\n" for block in blocks)


def to_vtt(cues: Sequence[Cue]) -> str:
    """WebVTT: the ``WEBVTT`` header, then blocks timed ``hh:mm:ss.ttt``, text as character references
    where WebVTT reads markup."""
    blocks = [
        f"{vtt_time(c.start_ms)} --> {vtt_time(c.end_ms)}\n" + "".join(f"{_escape_vtt(x)}\n" for x in c.lines)
        for c in cues
    ]
    return "WEBVTT\n\n" + "".join(f"{block}\n" for block in blocks)


def _escape_soft(line: str) -> str:
    # ffmpeg's mov_text encoder reads ASS text as ASS splits it: only "\N" (or "\n") and "{\" mean
    # anything there. A word joiner (invisible) keeps them text.
    return line.replace("\\N", "\\\u2060N").replace("\\n", "\\\u2060n").replace("{\\", "{\u2060\\")


def to_soft_ass(cues: Sequence[Cue]) -> str:
    """The cues as ASS for ffmpeg to turn into the clip's selectable ``mov_text`` track: every character
    reaches the track as typed (SubRip or WebVTT as the source would lose "<...>" or a backslash)."""
    subs = pysubs2.SSAFile()
    for cue in cues:
        subs.append(
            pysubs2.SSAEvent(
                start=cue.start_ms, end=cue.end_ms, text="\\N".join(map(_escape_soft, cue.lines))
            )
        )
    return subs.to_string("ass", header_notice="The selectable subtitle track of hearing-pipeline")


def _blocks(text: str, timing: re.Pattern[str], *, vtt: bool) -> list[tuple[re.Match[str], list[str]]]:
    """Each timing line with the text lines after it: in WebVTT up to the first blank line; in SubRip
    every line up to the next cue, but for that cue's number."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").removeprefix("\ufeff").split("\n")
    found: list[tuple[re.Match[str], list[str]]] = []
    for line in lines:
        match = timing.match(line)
        if match:
            found.append((match, []))
        elif found:
            found[-1][1].append(line)
    out = []
    for k, (match, body) in enumerate(found):
        if vtt:
            end = next((i for i, line in enumerate(body) if not line.strip()), len(body))
            body = body[:end]
        elif k + 1 < len(found):
            # The next cue's number: digits alone on the last line, after a blank one.
            filled = [i for i, line in enumerate(body) if line.strip()]
            if (
                filled
                and filled[-1] > 0
                and not body[filled[-1] - 1].strip()
                and body[filled[-1]].strip().isdigit()
            ):
                body = body[: filled[-1]]
        out.append((match, [line.strip() for line in body if line.strip()]))
    return out


def parse_srt(text: str) -> list[Cue]:
    """The cues of a SubRip file, their text exactly as written (SubRip has no escapes)."""
    cues = []
    for match, lines in _blocks(text, _SRT_TIMING, vtt=False):
        g = match.groups()
        cues.append(Cue(_ms_of(*g[0:4]), _ms_of(*g[4:8]), tuple(lines)))
    return cues


_VTT_TAG = re.compile(r"<[^>]*>")


def parse_vtt(text: str) -> list[Cue]:
    """The cues of a WebVTT file, their text with WebVTT's tags left out and its character references
    read."""
    cues = []
    for match, lines in _blocks(text, _VTT_TIMING, vtt=True):
        g = match.groups()
        shown = tuple(html.unescape(_VTT_TAG.sub("", line)) for line in lines)
        cues.append(Cue(_ms_of(*g[0:4]), _ms_of(*g[4:8]), tuple(x for x in shown if x.strip())))
    return cues


def to_ass(
    cues: Sequence[Cue],
    *,
    width: int,
    height: int,
    font_name: str,
    font_size_px: float,
    duration_ms: int,
    offset_ms: int = 0,
) -> str:
    """Advanced SubStation for burning into one segment of the clip with libass.

    The segment starts at ``offset_ms`` of the clip and lasts ``duration_ms``: cue times are shifted by
    ``-offset_ms`` and cut to the segment; cues outside it are left out. PlayRes is the frame size, so
    font size, outline and margins are output pixels. White text with a black outline of 7 % of the font
    size and no shadow, bottom-centred, inside the 90 % graphics-safe area. WrapStyle 2: libass never
    wraps, the lines are ours. A line wider than the safe area is not wrapped either: at 5 % of the
    height, 42 characters of DejaVu Sans fit a 16:9 frame with room to spare.
    """
    outline = round(font_size_px * 0.07, 1)
    subs = pysubs2.SSAFile()
    subs.info.update(
        {
            "PlayResX": str(width),
            "PlayResY": str(height),
            "WrapStyle": "2",
            "ScaledBorderAndShadow": "yes",
        }
    )
    subs.styles["Default"] = pysubs2.SSAStyle(
        fontname=font_name,
        fontsize=float(font_size_px),
        primarycolor=pysubs2.Color(255, 255, 255, 0),
        secondarycolor=pysubs2.Color(255, 255, 255, 0),
        outlinecolor=pysubs2.Color(0, 0, 0, 0),
        backcolor=pysubs2.Color(0, 0, 0, 0),
        bold=False,
        borderstyle=1,
        outline=outline,
        shadow=0.0,
        alignment=pysubs2.Alignment.BOTTOM_CENTER,
        # 5 % of the frame on every side, plus the outline, which reaches out beyond the letters.
        marginl=math.ceil(width * 0.05 + outline),
        marginr=math.ceil(width * 0.05 + outline),
        marginv=math.ceil(height * 0.05 + outline),
    )
    for cue in cues:
        start = max(cue.start_ms - offset_ms, 0)
        end = min(cue.end_ms - offset_ms, duration_ms)
        if end <= start:
            continue
        subs.append(pysubs2.SSAEvent(start=start, end=end, text="\\N".join(map(_escape_ass, cue.lines))))
    return subs.to_string("ass", header_notice="Subtitles of hearing-pipeline, to burn in with libass")
