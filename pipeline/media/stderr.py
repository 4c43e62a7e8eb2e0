"""What ffmpeg's stderr says: the one line of it that tells a person why ffmpeg failed.

Pure: ``process.run`` keeps the lines that look like errors while ffmpeg runs and asks here which one
to put in the MediaError.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# Lines that only say that something failed, never what: ffmpeg prints them after the real cause.
_GENERIC = re.compile(
    r"conversion failed|error while (?:processing|filtering|decoding|encoding)|error reinitializing filters"
    r"|failed to inject frame|error initializing filter|error applying options to the filter"
    r"|error initializing complex filters|error opening output files?$|exiting normally|terminating thread"
    r"|error configuring filter graph|nothing was written into output file|error while opening encoder"
    r"|task finished with error|error sending frames to consumers|^\s*$",
    re.IGNORECASE,
)
_CAUSE = re.compile(
    r"error setting option|error applying option '|option .* not found|no such (?:filter|file|option)"
    r"|unrecognized option"
    r"|unknown encoder|unknown decoder|invalid data found|permission denied|cannot select|no space left"
    r"|matches no streams|does not exist|not supported",
    re.IGNORECASE,
)
_HINT = re.compile(r"unable to parse|could not find|invalid argument for", re.I)
_ERRORISH = re.compile(r"error|invalid|unable|cannot|can't|could not|failed|not found|unknown|missing", re.I)
_CONTEXT = re.compile(r"^\[([^\]@]*?)\s*@ 0x[0-9a-f]+\]\s*(?:\[[^\]]*@ 0x[0-9a-f]+\]\s*)*", re.IGNORECASE)


def line_score(line: str) -> int:
    """4: names the cause; 3: a clue to it; 2: an error of some kind; 1: any other line; 0: says only
    that it failed."""
    if _GENERIC.search(line):
        return 0
    if _CAUSE.search(line):
        return 4
    if _HINT.search(line):
        return 3
    return 2 if _ERRORISH.search(line) else 1


def telling_line(lines: Sequence[str]) -> str:
    """The stderr line that says most about why ffmpeg failed: the first that names a cause, else the
    first error, else the last line that is not just "Conversion failed!". Log prefixes such as
    ``[Parsed_ebur128_0 @ 0x55f8]`` are shortened to the component's name."""
    best, best_score = "", 0
    for line in lines:
        score = line_score(line)
        # Causes and errors: the earliest wins (later ones are consequences); plain lines: the latest.
        if score > best_score or (score == best_score == 1):
            best, best_score = line, score
    if not best:
        return ""
    found = _CONTEXT.match(best)
    if found:
        component = re.sub(r"^Parsed_(\w+?)_\d+$", r"\1", found.group(1))
        text = best[found.end() :].strip()
        # ffmpeg's own plumbing ("fc#-1", "AVFilterGraph") tells a person nothing; a filter's name does.
        if re.fullmatch(r"[a-z][a-z0-9_]*", component) and component not in ("fc", "out", "in"):
            return f"{component}: {text}"
        return text
    return best.strip()
