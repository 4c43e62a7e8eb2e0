"""What the organiser reads in Danish about corrections, approvals and subtitle rules: one place for the
words, so that the review page, a stopped render and the documents say the same thing the same way.

Pure: values in, sentences out. The words of the rules follow docs/standards.md ("Subtitles").
"""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.stages import timing
from pipeline.stages.subtitles.rules import Cue, RuleBreak, SubtitleRules


def seconds(ms: int) -> str:
    """1234 -> "1,23 s", as Danish writes a decimal."""
    return f"{ms / 1000:.2f}".replace(".", ",") + " s"


def number(value: float) -> str:
    return f"{value:g}".replace(".", ",")


def listed(parts: list[str]) -> str:
    """["a", "b", "c"] -> "a, b og c"."""
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " og " + parts[-1] if parts else ""


def statement_label(number_in_clip: int, speaker: str | None) -> str:
    """How the organiser knows a statement: its number in the clip and, for them, the speaker's name."""
    return f"Indlæg {number_in_clip}" + (f" ({speaker})" if speaker else "")


def cue_label(index: int, text: str) -> str:
    """A person's cue by its number in their subtitles (1-based, as the page and the SRT count) and text."""
    shown = " ".join(text.split())
    if len(shown) > 60:
        shown = shown[:59] + "…"
    return f"undertekst {index + 1} »{shown}«"


# ------------------------------------------------------------------------------------------- rules

RULE_NAMES = {
    "subtitles.order": "rækkefølge",
    "subtitles.end_after_start": "slutter før den starter",
    "subtitles.overlap": "overlapper den forrige",
    "subtitles.gap": "afstand til forrige undertekst",
    "subtitles.inside_clip": "uden for klippet",
    "subtitles.lines": "antal linjer",
    "subtitles.chars_per_line": "tegn pr. linje",
    "subtitles.reading_speed": "læsehastighed",
    "subtitles.min_duration": "korteste tid på skærmen",
    "subtitles.max_duration": "længste tid på skærmen",
}


def rule_limit(rule: str, rules: SubtitleRules) -> str:
    """What the form asks for, as a Danish sentence an organiser understands (no signs such as "≤")."""
    close = number(rules.close_gap_ms / 1000)
    return {
        "subtitles.order": "hver undertekst starter efter den forrige",
        "subtitles.end_after_start": "hver undertekst slutter, efter at den er startet",
        "subtitles.overlap": "to undertekster vises aldrig på samme tid",
        "subtitles.gap": (
            f"mindst {rules.min_gap_ms} ms mellem to undertekster; pauser op til {close} s lukkes"
        ),
        "subtitles.inside_clip": "underteksterne ligger inden for klippet",
        "subtitles.lines": f"højst {rules.max_lines} linjer",
        "subtitles.chars_per_line": (
            f"højst {rules.max_chars_per_line} tegn på en linje; over {rules.warn_chars_per_line} markeres"
        ),
        "subtitles.reading_speed": (
            f"højst {number(rules.max_cps)} tegn i sekundet; over {number(rules.warn_cps)} markeres"
        ),
        "subtitles.min_duration": f"mindst {number(rules.min_duration_ms / 1000)} s på skærmen",
        "subtitles.max_duration": f"højst {number(rules.max_duration_ms / 1000)} s på skærmen",
    }[rule]


SEVERITY = {"fail": "Bryder formens regel", "warn": "Bemærk"}


def rule_break(found: RuleBreak, cue: Cue, previous_end: int | None, rules: SubtitleRules) -> str:
    """One rule break as the page shows it beside its cue: what the rule is, what the cue does."""
    lengths = [len(line) for line in cue.lines] or [0]
    between = cue.start_ms - previous_end if previous_end is not None else 0
    measured = {
        "subtitles.order": "starter før den forrige undertekst",
        "subtitles.end_after_start": "slutter før den starter",
        "subtitles.overlap": f"starter {-between} ms før den forrige slutter",
        "subtitles.gap": (
            f"{between} ms efter den forrige (mindst {rules.min_gap_ms} ms)"
            if found.severity == "fail"
            else f"{between} ms efter den forrige; afstande op til {number(rules.close_gap_ms / 1000)} s "
            f"lukkes normalt til {rules.min_gap_ms} ms"
        ),
        "subtitles.inside_clip": "ligger uden for klippet",
        "subtitles.lines": f"{len(cue.lines)} linjer (højst {rules.max_lines})",
        "subtitles.chars_per_line": f"{max(lengths)} tegn på en linje (højst {rules.max_chars_per_line}; "
        f"over {rules.warn_chars_per_line} markeres)",
        "subtitles.reading_speed": f"{number(round(cue.cps, 1))} tegn i sekundet "
        f"(højst {number(rules.max_cps)}; over {number(rules.warn_cps)} markeres)"
        + (
            "; talen er for hurtig til, at nogen tidsplacering kunne vise den langsommere"
            if "too fast for any timing" in found.kind
            else ""
        ),
        "subtitles.min_duration": f"{seconds(cue.duration_ms)} på skærmen "
        f"(mindst {number(rules.min_duration_ms / 1000)} s)",
        "subtitles.max_duration": f"{seconds(cue.duration_ms)} på skærmen "
        f"(højst {number(rules.max_duration_ms / 1000)} s)",
    }[found.rule]
    return f"{SEVERITY[found.severity]}, {RULE_NAMES[found.rule]}: {measured}."


# ------------------------------------------------------------------------------------------- moves

_MOVED = {
    timing.MOVED_WINDOW_START: "den startede før indlæggets billede",
    timing.MOVED_WINDOW_END: "den sluttede efter indlæggets ud-punkt",
    timing.MOVED_NEXT: "den løb ind i den næste undertekst",
    timing.MOVED_PREVIOUS: "den forrige undertekst løb ind i den",
    timing.MOVED_SHORTEST: "den var kortere tid på skærmen end formen tillader",
    timing.MOVED_LONGEST: "den var længere tid på skærmen end formen tillader",
    timing.MOVED_READING: "den kunne ikke læses på sin tid",
}


def moved(why: Iterable[str], wanted: tuple[int, int], got: tuple[int, int], *, split: bool = False) -> str:
    """What the pipeline did to a person's timing, and why, in one sentence."""
    changes = []
    for word, a, b in (("starter", wanted[0], got[0]), ("slutter", wanted[1], got[1])):
        if b > a:
            changes.append(f"{word} {seconds(b - a)} senere")
        elif b < a:
            changes.append(f"{word} {seconds(a - b)} tidligere")
    reasons = [_MOVED[w] for w in sorted(why) if w in _MOVED]
    what = listed(changes) if changes else "er flyttet"
    because = f", fordi {listed(reasons)}" if reasons else ""
    text = f"Flyttet: {what}{because}."
    if split:
        text += " Teksten er for lang til formens linjer og vises som flere undertekster efter hinanden."
    return text


def split_only() -> str:
    return "Teksten er for lang til formens linjer og vises som flere undertekster efter hinanden."


# ---------------------------------------------------------------------------------------- problems


def too_crowded(
    statement: str, first: int, last: int, texts: tuple[str, str], window_ms: int, rules: SubtitleRules
) -> str:
    """A statement whose cues cannot each get the shortest time on screen: what to do about it."""
    which = (
        cue_label(first, texts[0])
        if first == last
        else f"{cue_label(first, texts[0])} til {cue_label(last, texts[1])}"
    )
    return (
        f"{statement}, {which}: der er ikke tid til at vise underteksterne hver i mindst "
        f"{number(rules.min_duration_ms / 1000)} s inden for indlæggets {seconds(window_ms)} "
        "(formens korteste tid på skærmen). Flet nogle af dem, eller flyt indlæggets ud-punkt senere."
    )


def rule_problem(statement: str, cue: str, found: RuleBreak, rules: SubtitleRules) -> str:
    """A rule a delivered cue would break and no timing could keep: what and what to do."""
    advice = {
        "subtitles.lines": "Del teksten i flere undertekster.",
        "subtitles.chars_per_line": "Del linjen, eller del teksten i flere undertekster.",
        "subtitles.min_duration": "Flet den med naboen, eller flyt indlæggets ud-punkt senere.",
        "subtitles.max_duration": "Del den i to.",
    }.get(found.rule, "Ret tiderne på siden eller i filen.")
    return (
        f"{statement}, {cue}: {RULE_NAMES[found.rule]} ({rule_limit(found.rule, rules)}) holdes ikke. "
        + advice
    )


# --------------------------------------------------------------------------------------- approvals


def approved_by(by: str, at: str | None) -> str:
    return f"godkendt af {by}" + (f", {at.replace('T', ' ')}" if at else "")


def changed_after_approval(by: str, at: str | None) -> str:
    """An approval that no longer holds: the text, times, in/out points, speaker or topic changed."""
    return f"ændret efter godkendelse af {by}" + (f" ({at.replace('T', ' ')})" if at else "")


# ------------------------------------------------------------------------------------------- text

UNSAFE = {
    "timing": "læses som tiden for en ny undertekst (to tidskoder omkring -->)",
    "format": "læses som formatering af videoafspillere og kan ikke stå som tekst i en SRT-fil",
    "control": "indeholder et usynligt kontroltegn",
    "font": "indeholder et tegn, som underteksternes skrifttype ikke kan vise",
}


def unsafe_line(index: int, reason: str, part: str) -> str:
    return f"Undertekst {index + 1}: »{part}« {UNSAFE[reason]}. Skriv det på en anden måde."


def not_text(field: str, code_point: int) -> str:
    """A character typed on the review page that no text field takes (a control character, a
    direction override, a noncharacter): which field, and which character."""
    return f"{field}: teksten indeholder et tegn, der ikke kan stå i et navn eller emne (U+{code_point:04X})"
