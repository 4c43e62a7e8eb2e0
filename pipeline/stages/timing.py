"""The subtitle timing model: when each cue of a statement is on screen, and how a rule break is judged.

One model for the cues the pipeline makes from the words and for the cues a person wrote, asked the same
questions by the run, the review page and the check of the delivered files:

- ``fit`` times a statement's cues inside its window (where its picture is in the clip): the pipeline's
  cues from their words (docs/standards.md "timing to speech"), a person's cues at their own times where
  those keep the rules, else moved the least needed; then every cue read too fast is lengthened into
  its ``room``;
- ``room`` is the longest a cue could stay up under the timing rules: ``fit`` lengthens a cue into it,
  and ``judge`` forgives a fast cue that fills it;
- ``judge`` lists every rule a list of cues breaks, with its final severity.

Pure: integer milliseconds of the clip in, the same out.

Decisions where the standards are silent:

- A cue never leaves its window and ends at least ``min_gap_ms`` before the window ends, so the next
  window's first cue (a card caption, or the next statement) may start on its very first frame.
- A cue's start or end within ``close_gap_ms`` of its window's edge snaps to the edge (the cut is a shot
  change; Netflix snaps to shot changes within 12 frames), so gaps across windows are closed too.
- A person's own times win where they keep the hard rules (order, the minimum gap, the window, the
  shortest and longest time on screen). Where they do not, the cue moves the least needed: an end that
  runs into the next cue comes forward before the next cue's start goes back, since a subtitle should
  start with its words; a cue outside the window is brought to its edge. A gap a person left open stays
  open (the check notes it); it is not closed behind their back.
- A cue read faster than ``max_cps`` is lengthened into the time free around it: later first, then
  earlier, never more than ``max_shift_ms`` from its words, across a neighbour's minimum gap or out of
  its window. Where that time is not enough, no timing could do better, and the check only warns.
- Where the window cannot hold every cue for the shortest time on screen, the cues get what there is
  (at least a frame each) and ``Fit.short`` names them: the builder then lets neighbours share a cue,
  and a person is told what to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from pipeline.stages.subtitles.rules import Cue, RuleBreak, SubtitleRules, rule_breaks

# Why a person's cue was moved, as ``Fit.moved`` names it; ``pipeline.texts`` says it in Danish.
MOVED_WINDOW_START = "window_start"  # it started before the statement's picture
MOVED_WINDOW_END = "window_end"  # it ran past the statement's picture (its out point)
MOVED_NEXT = "next"  # it ran into the next cue
MOVED_PREVIOUS = "previous"  # the cue before it ran into it
MOVED_SHORTEST = "shortest"  # it was up for less than the shortest time on screen
MOVED_LONGEST = "longest"  # it was up for more than the longest time on screen
MOVED_READING = "reading"  # it could not be read in its time, and there was room to lengthen it


@dataclass(frozen=True)
class Draft:
    """A cue before it is timed: its lines, where its words are spoken, and a person's own times."""

    lines: tuple[str, ...]
    speech: tuple[int, int]  # the first word's start and the last word's end, clip ms
    wanted: tuple[int, int] | None = None  # a person's times, clip ms; None: timed from its words

    @property
    def chars(self) -> int:
        return sum(len(line) for line in self.lines)

    @property
    def speech_start(self) -> int:
        return self.speech[0]

    @property
    def speech_end(self) -> int:
        return self.speech[1]


@dataclass(frozen=True)
class Fit:
    """The times of a statement's cues, and what a person should know about them."""

    start: tuple[int, ...]
    end: tuple[int, ...]
    # For each cue, why a person's times were changed (MOVED_*), empty where they were kept.
    moved: tuple[frozenset[str], ...] = ()
    # Cues up for less than the shortest time on screen: the window cannot give them more.
    short: tuple[int, ...] = ()

    @property
    def legal(self) -> bool:
        return not self.short


# ------------------------------------------------------------------------------------------------ room


def room(
    start: int,
    end: int,
    before_end: int | None,
    after_start: int | None,
    rules: SubtitleRules,
    *,
    window: tuple[int, int],
    speech: tuple[int, int] | None = None,
) -> tuple[int, int]:
    """The earliest start and latest end a cue now at ``start``-``end`` could have under the timing rules:
    after the cue before (``before_end``) and before the cue after (``after_start``) with the minimum gap,
    never more than ``max_shift_ms`` before its words start or after they end, and inside its window,
    ending ``min_gap_ms`` before the window does. Without ``speech`` the cue's own times stand for its
    words. The cue's own time is always available, even where a neighbour already crowds it."""
    gap, shift = rules.min_gap_ms, rules.max_shift_ms
    spoken_from, spoken_to = speech if speech is not None else (start, end)
    earliest = max(window[0], spoken_from - shift)
    if before_end is not None:
        earliest = max(earliest, before_end + gap)
    latest = min(window[1] - gap, spoken_to + shift)
    if after_start is not None:
        latest = min(latest, after_start - gap)
    return min(earliest, start), max(latest, end)


def room_ms(earliest: int, latest: int, duration_ms: int, rules: SubtitleRules) -> int:
    """How long a cue could stay up between ``earliest`` and ``latest``: never above ``max_duration_ms``
    (unless it already is)."""
    return min(latest - earliest, max(rules.max_duration_ms, duration_ms))


# ------------------------------------------------------------------------------------------------- fit


@dataclass
class _Timing:
    start: list[int]
    end: list[int]


def fit(drafts: Sequence[Draft], window: tuple[int, int], rules: SubtitleRules) -> Fit | None:
    """Times for a statement's cues inside ``window``; None when the window cannot show each of them for
    even a frame. Drafts without ``wanted`` are timed from their words; a person's drafts keep their
    times where the rules allow. Every cue ends at least ``min_gap_ms`` before the window does."""
    m = len(drafts)
    if not m:
        return Fit((), (), (), ())
    w0, w1 = window
    last_end = w1 - rules.min_gap_ms
    if last_end - w0 < m * min(rules.frame_ms, rules.min_duration_ms) + (m - 1) * rules.min_gap_ms:
        return None
    base = _place(drafts, window, rules)
    if base is None:
        return None
    start, end = base.start, base.end
    person = [d.wanted is not None for d in drafts]
    moved: list[set[str]] = [set() for _ in drafts]
    if any(person):
        for k, draft in enumerate(drafts):
            if draft.wanted is not None:
                start[k], end[k] = draft.wanted
        _settle(start, end, person, moved, w0, last_end, rules)
    trial = _Timing(list(start), list(end))
    short: tuple[int, ...] = ()
    if not _hold(trial.start, trial.end, person, moved, w0, last_end, rules, rules.min_duration_ms):
        # Not even the shortest time on screen for each: what there is, at least a frame each.
        least = min(rules.frame_ms, rules.min_duration_ms)
        if not _hold(start, end, person, moved, w0, last_end, rules, least):
            return None
        short = tuple(k for k in range(m) if end[k] - start[k] < rules.min_duration_ms)
    else:
        start, end = trial.start, trial.end
    _reading_time(start, end, drafts, person, moved, window, rules)
    return Fit(tuple(start), tuple(end), tuple(frozenset(w) for w in moved), short)


def _settle(
    start: list[int],
    end: list[int],
    person: Sequence[bool],
    moved: list[set[str]],
    w0: int,
    last_end: int,
    rules: SubtitleRules,
) -> None:
    """A person's times brought within the rules, each change the least needed and noted."""
    m, gap = len(start), rules.min_gap_ms
    shortest, longest = rules.min_duration_ms, rules.max_duration_ms

    def note(k: int, why: str) -> None:
        if person[k]:
            moved[k].add(why)

    for k in range(m):
        if start[k] < w0:
            start[k] = w0
            note(k, MOVED_WINDOW_START)
        if end[k] > last_end:
            end[k] = last_end
            note(k, MOVED_WINDOW_END)
        if end[k] - start[k] > longest:
            end[k] = start[k] + longest
            note(k, MOVED_LONGEST)
        if end[k] <= start[k]:
            # A cue the window's edge left without time: its time on screen from that edge.
            if start[k] >= last_end:
                start[k] = max(w0, last_end - shortest)
            end[k] = min(start[k] + shortest, last_end)
    for k in range(m - 1):
        overlap = end[k] + gap - start[k + 1]
        if overlap <= 0:
            continue
        # The end comes forward first (a subtitle should start with its words), keeping its shortest time.
        spare = max(0, end[k] - (start[k] + shortest))
        forward = min(overlap, spare)
        if forward:
            end[k] -= forward
            note(k, MOVED_NEXT)
        if overlap > forward:
            start[k + 1] += overlap - forward
            note(k + 1, MOVED_PREVIOUS)
            end[k + 1] = max(end[k + 1], min(start[k + 1] + shortest, last_end))
    for k in range(m):
        if end[k] - start[k] >= shortest:
            continue
        after = start[k + 1] - gap if k + 1 < m else last_end
        longer = min(start[k] + shortest, after)
        if longer > end[k]:
            end[k] = longer
            note(k, MOVED_SHORTEST)
        if end[k] - start[k] < shortest:
            before = end[k - 1] + gap if k else w0
            earlier = max(end[k] - shortest, before)
            if earlier < start[k]:
                start[k] = earlier
                note(k, MOVED_SHORTEST)


def _hold(
    start: list[int],
    end: list[int],
    person: Sequence[bool],
    moved: list[set[str]],
    w0: int,
    last_end: int,
    rules: SubtitleRules,
    least: int,
) -> bool:
    """Order, gaps, the window and at least ``least`` ms on screen made hard, in place: later where a cue
    starts too early, earlier where one ends too late. False when the window cannot hold them so."""
    m, gap, longest = len(start), rules.min_gap_ms, rules.max_duration_ms
    before = [(start[k], end[k]) for k in range(m)]
    for k in range(m):
        start[k] = max(start[k], w0 if k == 0 else end[k - 1] + gap)
        end[k] = min(max(end[k], start[k] + least), start[k] + max(longest, least))
    for k in range(m - 1, -1, -1):
        end[k] = min(end[k], last_end if k == m - 1 else start[k + 1] - gap)
        start[k] = min(start[k], end[k] - least)
    for k in range(m):
        if person[k] and (start[k], end[k]) != before[k]:
            if start[k] > before[k][0]:
                moved[k].add(MOVED_PREVIOUS if k else MOVED_WINDOW_START)
            if end[k] < before[k][1]:
                moved[k].add(MOVED_NEXT if k + 1 < m else MOVED_WINDOW_END)
            if end[k] > before[k][1] or start[k] < before[k][0]:
                moved[k].add(MOVED_SHORTEST)
    return start[0] >= w0


def _reading_time(
    start: list[int],
    end: list[int],
    drafts: Sequence[Draft],
    person: Sequence[bool],
    moved: list[set[str]],
    window: tuple[int, int],
    rules: SubtitleRules,
) -> None:
    """Each cue read too fast lengthened into its ``room``: later first, then earlier."""
    m = len(start)
    for k in range(m):
        need = rules.needed_ms(drafts[k].chars)
        if end[k] - start[k] >= need:
            continue
        earliest, latest = room(
            start[k],
            end[k],
            end[k - 1] if k else None,
            start[k + 1] if k + 1 < m else None,
            rules,
            window=window,
            speech=drafts[k].speech,
        )
        was = (start[k], end[k])
        end[k] = max(end[k], min(latest, start[k] + need))
        if end[k] - start[k] < need:
            start[k] = min(start[k], max(earliest, end[k] - need))
        if person[k] and (start[k], end[k]) != was:
            moved[k].add(MOVED_READING)


def _place(drafts: Sequence[Draft], window: tuple[int, int], rules: SubtitleRules) -> _Timing | None:
    """Times for the cues from their words (docs/standards.md "timing to speech"), or None when the window
    cannot hold them."""
    w0 = window[0]
    gap, hang, shift, longest = rules.min_gap_ms, rules.hang_ms, rules.max_shift_ms, rules.max_duration_ms
    last_end = window[1] - gap
    m = len(drafts)
    a = [min(max(d.speech_start, w0), last_end) for d in drafts]
    b = [min(max(d.speech_end, a[k]), last_end) for k, d in enumerate(drafts)]
    need = [rules.needed_ms(d.chars) for d in drafts]
    start = list(a)
    end = [b[k] + hang for k in range(m)]

    def limit_after(k: int) -> int:
        return start[k + 1] - gap if k + 1 < m else last_end

    def close(k: int, lengthen_only: bool = False) -> None:
        """Close a gap of at most close_gap_ms after cue k (or to the window's end) to exactly min_gap."""
        free = limit_after(k) - end[k]
        if free <= 0 or free + gap > rules.close_gap_ms:
            return
        if limit_after(k) - start[k] <= longest and limit_after(k) <= b[k] + shift:
            end[k] = limit_after(k)
        elif lengthen_only:
            return
        elif k + 1 < m and end[k] + gap >= a[k + 1] - shift and end[k + 1] - (end[k] + gap) <= longest:
            start[k + 1] = end[k] + gap
        elif end[k] - start[k] - (rules.close_gap_ms - free - gap + 1) >= need[k]:
            end[k] -= rules.close_gap_ms - free - gap + 1  # open it instead, where the cue can spare it

    def close_start() -> None:
        if 0 < start[0] - w0 <= rules.close_gap_ms and a[0] - w0 <= shift and end[0] - w0 <= longest:
            start[0] = w0

    for k in range(m):
        end[k] = min(end[k], limit_after(k), start[k] + longest)
    for k in range(m):
        close(k, lengthen_only=True)

    # Reading time: lengthen into the pauses around the cue, later first, then earlier.
    for k in range(m):
        if end[k] - start[k] >= need[k]:
            continue
        latest = min(limit_after(k), b[k] + shift, start[k] + longest)
        end[k] = max(end[k], min(start[k] + need[k], latest))
        if end[k] - start[k] >= need[k]:
            continue
        earliest = max(a[k] - shift, w0, end[k] - longest)
        wanted = max(end[k] - need[k], earliest)
        if k:
            # The cue before may give back the time it hangs after its speech, where it does not need it.
            floor = max(start[k - 1] + need[k - 1], min(end[k - 1], b[k - 1]))
            end[k - 1] = min(end[k - 1], max(wanted - gap, floor))
            wanted = max(wanted, end[k - 1] + gap)
        start[k] = min(start[k], wanted)
        if end[k] - start[k] < need[k] and k + 1 < m and end[k] == limit_after(k):
            # The next cue may start up to 3 frames after its first word (docs/standards.md), if it can.
            later = min(a[k + 1] + 3 * rules.frame_ms, start[k] + need[k] + gap)
            next_latest = min(limit_after(k + 1), b[k + 1] + shift, later + longest)
            if later > start[k + 1] and next_latest - later >= need[k + 1]:
                start[k + 1] = later
                end[k] = min(later - gap, b[k] + shift, start[k] + longest)

    close_start()
    for k in range(m):
        close(k)
    # Order, gaps and the window made hard; this changes anything only where the speech was crammed.
    least = min(rules.frame_ms, rules.min_duration_ms)
    if not _hold(start, end, [False] * m, [set() for _ in range(m)], w0, last_end, rules, least):
        return None
    return _Timing(start, end)


def timing_warnings(
    k: int, drafts: Sequence[Draft], timed: Fit, window: tuple[int, int], rules: SubtitleRules
) -> list[str]:
    """What a person should know about the time cue ``k`` got, in plain words (for run.json)."""
    start, end, m = timed.start[k], timed.end[k], len(drafts)
    duration = end - start
    chars = drafts[k].chars
    cps = chars * 1000 / duration
    short = duration < rules.min_duration_ms
    fast = cps > rules.max_cps
    first = min(max(drafts[k].speech_start, window[0]), window[1] - rules.min_gap_ms)
    out = []
    if drafts[k].wanted is None:
        # Only where the words are crammed together does a cue start off its first word.
        if start - first > 3 * rules.frame_ms:
            out.append(
                f"starts {(start - first) / 1000:.2f} s after its first word: the speech is too dense here"
            )
        if first - start > rules.max_shift_ms:
            out.append(
                f"starts {(first - start) / 1000:.2f} s before its first word: the speech is too dense here"
            )
    if k and rules.min_gap_ms < start - timed.end[k - 1] <= rules.close_gap_ms:
        out.append(
            f"follows the subtitle before after {start - timed.end[k - 1]} ms, a gap that should be closed "
            f"to {rules.min_gap_ms} ms, but neither can be stretched further"
        )
    if not (short or fast):
        return out
    gap = rules.min_gap_ms
    limits = []
    if k + 1 < m and end >= timed.start[k + 1] - gap:
        limits.append("the next subtitle follows at once")
    if k + 1 == m and end >= window[1] - gap:
        limits.append("the statement's picture ends")
    if end >= drafts[k].speech_end + rules.max_shift_ms:
        limits.append(f"it stays up {rules.max_shift_ms / 1000:g} s after the speech already")
    if k and start <= timed.end[k - 1] + gap:
        limits.append("the subtitle before ends just before it")
    if not k and start <= window[0]:
        limits.append("the statement's picture starts")
    if start <= drafts[k].speech_start - rules.max_shift_ms:
        limits.append(f"it starts {rules.max_shift_ms / 1000:g} s before the speech already")
    if duration >= rules.max_duration_ms:
        limits.append(f"it is up for the {rules.max_duration_ms / 1000:g} s maximum")
    why = f" (no room to lengthen it: {'; '.join(limits)})" if limits else ""
    if fast:
        out.append(f"speech faster than {rules.max_cps:g} cps can show: {cps:.1f} cps{why}")
    if short:
        out.append(
            f"shown {duration / 1000:.2f} s, shorter than the {rules.min_duration_ms / 1000:g} s minimum{why}"
        )
    return out


# ----------------------------------------------------------------------------------------------- judge


def judge(
    cues: Sequence[Cue],
    rules: SubtitleRules,
    clip_ms: int,
    *,
    speech: Sequence[tuple[int, int] | None] | None = None,
    windows: Sequence[tuple[int, int] | None] | None = None,
) -> list[RuleBreak]:
    """Every rule of the form the cues break, with its final severity: the one judgement the run, the
    review page and the check make of subtitles.

    ``speech`` says where each cue's words are spoken and ``windows`` which part of the clip each cue is
    in (a subtitle is not carried over a cut); without them a cue's own times stand for its words and the
    whole clip is its window. A cue read faster than ``max_cps`` fails only where its ``room`` would have
    let it be read in time; where no timing could, it is a warning."""
    timed = [(n, c) for n, c in enumerate(cues, 1) if c.end_ms > c.start_ms]
    position = {n: k for k, (n, _) in enumerate(timed)}
    out = []
    for found in rule_breaks(cues, rules, clip_ms):
        if found.rule == "subtitles.reading_speed" and found.severity == "fail":
            cue = cues[found.cue - 1]
            k = position[found.cue]
            window = windows[found.cue - 1] if windows is not None else None
            earliest, latest = room(
                cue.start_ms,
                cue.end_ms,
                timed[k - 1][1].end_ms if k else None,
                timed[k + 1][1].start_ms if k + 1 < len(timed) else None,
                rules,
                window=window if window is not None else (0, clip_ms),
                speech=speech[found.cue - 1] if speech is not None else None,
            )
            free = room_ms(earliest, latest, cue.duration_ms, rules)
            if cue.chars * 1000 > rules.max_cps * free:
                found = replace(
                    found,
                    severity="warn",
                    kind=f"above {rules.max_cps:g}, spoken too fast for any timing",
                    detail=found.detail + f"; spoken faster than any legal timing could show: at most "
                    f"{free / 1000:.2f} s is free for it, {cue.chars * 1000 / max(free, 1):.2f} characters/s "
                    "at best",
                )
            else:
                found = replace(
                    found,
                    detail=found.detail + f", though up to {free / 1000:.2f} s is free for it, enough for "
                    f"{rules.max_cps:g}",
                )
        out.append(found)
    return out


def line_up(groups: Sequence[Sequence[str]], stream: Sequence[str]) -> list[slice | None] | None:
    """Where each group's tokens stand in ``stream`` read in order (a cue's words among a transcript's
    timed words, a word's letters among an aligner's): a slice of ``stream`` per group, None for a group
    without tokens. None altogether when they do not line up one to one or leave part of ``stream``
    unread, so that no time is ever taken from a word that is not the same word."""
    found: list[slice | None] = []
    at = 0
    for tokens in groups:
        if not tokens:
            found.append(None)
            continue
        taken = slice(at, at + len(tokens))
        if list(stream[taken]) != list(tokens):
            return None
        found.append(taken)
        at = taken.stop
    return found if at == len(stream) else None
