"""The transcript as the official receives it: its files are there, every statement has text, a person
approved it, Whisper's loops and invented credits are named, and a word diff says the subtitles and the
transcript carry the same words in the same order.

Pure: ``check_transcript`` and the checks it calls, ``words``, ``transcript_texts`` and ``compare_words``.

Bracketed captions ("[Anna Jensen, Bordgruppe 3]") name who speaks; they are not speech, so the word
comparison with the transcript leaves every bracketed span out, on both sides.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.config import Form
from pipeline.stages.check.results import EXAMPLES, CheckResult, _result
from pipeline.stages.subtitles.rules import Cue
from pipeline.timefmt import clock

_BRACKETED = re.compile(r"\[[^\]]*\]")
_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """Lowercase words without punctuation and without bracketed captions, for comparing texts."""
    return _WORD.findall(_BRACKETED.sub(" ", text).lower())


def transcript_texts(document: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, text) of each statement in a delivered transcript JSON."""
    out = []
    for number, statement in enumerate(document.get("statements") or [], 1):
        text = statement.get("text")
        if text is None:
            text = " ".join(str(s.get("text", "")) for s in statement.get("segments") or [])
        label = f"statement {statement.get('number', number)}"
        if statement.get("speaker_label"):
            label += f" ({statement['speaker_label']})"
        out.append((label, str(text)))
    return out


def check_transcript(
    form: Form,
    present: Mapping[str, bool],
    cues: Sequence[Cue] | None,
    transcript: Mapping[str, Any] | None,
) -> list[CheckResult]:
    """The transcript files the form asks for are there; the subtitles and the transcript carry the same
    words in the same order. ``present`` maps each format to whether its file was found."""
    wanted = list(form.transcript.formats)
    missing = [f for f in wanted if not present.get(f)]
    out = [
        _result(
            "transcript.files",
            "transcript files",
            ", ".join(wanted),
            "all present" if not missing else f"missing {', '.join(missing)}",
            not missing,
        )
    ]
    if transcript is not None:
        out.append(check_text_recognised(transcript))
        out.append(check_approved(transcript))
        out.append(check_repetitions(transcript))
        out.append(check_credits(transcript))
    if cues is None or transcript is None:
        return out
    out.append(compare_words(cues, transcript_texts(transcript)))
    return out


def _flagged_runs(document: Mapping[str, Any], flag: str) -> tuple[list[str], int]:
    """Each run of consecutive words carrying ``flag`` (statement, time in the clip, text), and how many
    words were decoded again."""
    found: list[str] = []
    redecoded = 0
    for (label, _), statement in zip(
        transcript_texts(document), document.get("statements") or [], strict=False
    ):
        offset = int(statement.get("start_ms") or 0)
        run: list[Mapping[str, Any]] = []
        for word in [*(w for s in statement.get("segments") or [] for w in s.get("words") or []), None]:
            flags = (word or {}).get("flags") or []
            redecoded += "redecoded" in flags
            if word is not None and flag in flags:
                run.append(word)
                continue
            if run:
                text = " ".join(str(w.get("text", "")).strip() for w in run)
                shown = text if len(text) <= 40 else text[:39] + "…"
                found.append(f"{label} at {clock(offset + int(run[0].get('start_ms', 0)))}: '{shown}'")
                run = []
    return found, redecoded


def _examples(found: Sequence[str]) -> str:
    more = f"\n… and {len(found) - EXAMPLES} more" if len(found) > EXAMPLES else ""
    return "\n".join(found[:EXAMPLES]) + more


def check_repetitions(document: Mapping[str, Any]) -> CheckResult:
    """Repetition loops that decoding again could not mend are kept, flagged, for a person to judge:
    each one is named with its statement and time in the clip."""
    found, redecoded = _flagged_runs(document, "repeated")
    note = f"; {redecoded} words decoded again where Whisper looped" if redecoded else ""
    return _result(
        "transcript.repetitions",
        "no repetition loops",
        "no phrase repeated 4 times in a row",
        (f"{len(found)} kept for review" if found else "none") + note,
        not found,
        _examples(found),
        warn=True,
    )


def check_credits(document: Mapping[str, Any]) -> CheckResult:
    """Subtitle credits ("Undertekster af ...") Whisper writes over silence: nobody said them."""
    found, _ = _flagged_runs(document, "subtitle_credit")
    return _result(
        "transcript.credits",
        "no invented subtitle credits",
        "none over silence",
        f"{len(found)} for review: nobody said them" if found else "none",
        not found,
        _examples(found),
        warn=True,
    )


def check_text_recognised(document: Mapping[str, Any]) -> CheckResult:
    """A statement whose speech the recogniser could not write down reaches the committee with its
    picture and sound; a person must write its text, so the report says which."""
    empty = [
        label
        for (label, _), statement in zip(
            transcript_texts(document), document.get("statements") or [], strict=False
        )
        if statement.get("no_text")
    ]
    return _result(
        "transcript.text_recognised",
        "every statement has text",
        "text for every statement",
        "all have text" if not empty else f"no text recognised in {', '.join(empty)}",
        not empty,
        "write the text of these statements by hand" if empty else "",
        warn=True,
    )


def check_approved(document: Mapping[str, Any]) -> CheckResult:
    """Whether a person read and approved each statement's text (and who, when): speech recognition
    gets many Danish words wrong. The gate itself is the run's (form ``require_approval``)."""
    labels = transcript_texts(document)
    statements = document.get("statements") or []
    approved = []
    missing = []
    for (label, _), statement in zip(labels, statements, strict=False):
        approval = statement.get("approved")
        if approval:
            approved.append(
                f"{label}: {approval.get('by')}" + (f", {approval['at']}" if approval.get("at") else "")
            )
        else:
            missing.append(label)
    return _result(
        "transcript.approved",
        "text approved by a person",
        "every statement approved",
        f"{len(approved)} of {len(statements)} approved"
        + (f"; not approved: {', '.join(missing)}" if missing else ""),
        not missing,
        "\n".join(approved),
        warn=True,
    )


def compare_words(cues: Sequence[Cue], statements: Sequence[tuple[str, str]]) -> CheckResult:
    """Nothing dropped, added or changed between the subtitles and the transcript; names the first
    difference by the subtitle and the statement where it is."""
    sub_words: list[str] = []
    sub_where: list[int] = []
    for n, cue in enumerate(cues, 1):
        found = words(cue.text)
        sub_words += found
        sub_where += [n] * len(found)
    doc_words: list[str] = []
    doc_where: list[str] = []
    for label, text in statements:
        found = words(text)
        doc_words += found
        doc_where += [label] * len(found)
    title = "subtitles and transcript say the same"
    expected = "same words, same order"
    matcher = difflib.SequenceMatcher(None, sub_words, doc_words, autojunk=False)
    changes = [op for op in matcher.get_opcodes() if op[0] != "equal"]
    if not changes:
        return _result("transcript.words", title, expected, f"same {len(sub_words)} words", True)
    differing = sum(max(i2 - i1, j2 - j1) for _, i1, i2, j1, j2 in changes)
    tag, i1, i2, j1, j2 = changes[0]

    def cue_at(i: int) -> Cue:
        return cues[sub_where[min(i, len(sub_where) - 1)] - 1]

    def show(seq: list[str], a: int, b: int) -> str:
        part = seq[a : min(b, a + 8)]
        return "'" + " ".join(part) + (" …" if b - a > 8 else "") + "'"

    if tag == "replace":
        n = sub_where[i1]
        first = (
            f"subtitle {n} at {clock(cues[n - 1].start_ms)} says {show(sub_words, i1, i2)} where the "
            f"transcript ({doc_where[j1]}) says {show(doc_words, j1, j2)}"
        )
    elif tag == "delete":
        n = sub_where[i1]
        first = (
            f"subtitle {n} at {clock(cues[n - 1].start_ms)} has {show(sub_words, i1, i2)}, "
            "which the transcript does not"
        )
    else:
        where = f"after subtitle {sub_where[i1 - 1]}" if i1 else "before the first subtitle"
        if sub_words:
            where += f" at {clock(cue_at(i1 - 1 if i1 else 0).start_ms)}"
        first = (
            f"the transcript ({doc_where[j1]}) has {show(doc_words, j1, j2)}, "
            f"which the subtitles do not ({where})"
        )
    return _result(
        "transcript.words",
        title,
        expected,
        f"{differing} of {max(len(sub_words), len(doc_words))} words differ",
        False,
        f"first difference: {first}",
    )
