"""A person's corrections applied (pure): the recognised cues a correction starts from, the transcript as
they show it, a person's cues and fields applied to a statement and its transcript.

A person's cue whose times are the ones the pipeline wrote (a correction of the text only) is timed by
the pipeline, from its words, as it would have been; a cue with times of the person's own keeps them
where the form allows (``pipeline.stages.timing``).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, replace

from pipeline.config import StatementEdit
from pipeline.models import Segment, ShownCue, Statement, StatementTranscript, Word
from pipeline.stages.subtitles.cues import build_statement_cues, cue_words, shown_words
from pipeline.stages.subtitles.rules import Cue, SubtitleRules

FLAG_EDITED = "edited"  # a word a person wrote or changed
FLAG_BY_CHARACTERS = "by_characters"  # a word a person added, timed by its characters (stages.align)
# Flags that doubt a word the engine wrote; a word a person wrote or changed is no longer in doubt.
DOUBTS = ("low_confidence", "repeated", "over_silence", "redecoded", "subtitle_credit")


@dataclass(frozen=True)
class StatementEdits:
    """What a person changed about one statement (nothing, where the files are as the pipeline wrote
    them), and the version of its files as they were read."""

    relpath: str
    cues: tuple[Cue, ...] | None  # recording-relative; None: the recognised cues stand
    fields: StatementEdit
    version: str = ""


def editable_end_ms(duration_ms: int, rules: SubtitleRules) -> int:
    """How far past the end of its recording a person's cue may run: the last word's reading time (the
    clip holds the picture that long, see ``clip.reading_run_on``), never more."""
    return duration_ms + rules.min_duration_ms


def _starting_window(
    transcript: StatementTranscript, duration_ms: int, rules: SubtitleRules
) -> tuple[int, int]:
    words = transcript.words
    last = words[-1].end_ms if words else 0
    return 0, min(max(duration_ms, last + rules.min_duration_ms), editable_end_ms(duration_ms, rules))


def starting_cues(transcript: StatementTranscript, duration_ms: int, rules: SubtitleRules) -> tuple[Cue, ...]:
    """The recognised cues of the whole recording, as the starting point of a correction."""
    if not transcript.words:
        return ()
    window = _starting_window(transcript, duration_ms, rules)
    return build_statement_cues(transcript.words, window, rules, transcript.statement_id)


def _segment_of(
    words: Sequence[Word], cue: Cue, index: int, origin: Segment | None, *, own_times: bool
) -> Segment:
    flags = tuple(dict.fromkeys(f for w in words for f in w.flags))
    return Segment(
        start_ms=min(cue.start_ms, words[0].start_ms),
        end_ms=max(cue.end_ms, max(w.end_ms for w in words)),
        text=" " + " ".join(w.text.strip() for w in words),
        words=tuple(words),
        avg_logprob=origin.avg_logprob if origin else 0.0,
        no_speech_prob=origin.no_speech_prob if origin else 0.0,
        compression_ratio=origin.compression_ratio if origin else 0.0,
        flags=flags,
        shown=ShownCue(
            lines=cue.lines,
            start_ms=cue.start_ms if own_times else None,
            end_ms=cue.end_ms if own_times else None,
            index=index,
            words=len(words),
        ),
    )


def _origins(transcript: StatementTranscript) -> list[Segment]:
    """For each word as shown, the engine's segment it came from (its log-probability and the like)."""
    found: list[Segment] = []
    for segment in transcript.segments:
        found.extend([segment] * len(shown_words(segment.words)))
    return found


def shown_transcript(
    transcript: StatementTranscript, duration_ms: int, rules: SubtitleRules
) -> StatementTranscript:
    """The recognised transcript as the starting cues show it: one segment a cue, its words as shown."""
    if not transcript.words:
        return replace(transcript, segments=())
    window = _starting_window(transcript, duration_ms, rules)
    origins = _origins(transcript)
    segments = []
    at = 0
    for index, (cue, words) in enumerate(cue_words(transcript.words, window, rules, transcript.statement_id)):
        if words:
            segments.append(
                _segment_of(words, cue, index, origins[at] if at < len(origins) else None, own_times=False)
            )
        at += len(words)
    return replace(transcript, segments=tuple(segments))


def _norm(text: str) -> str:
    return "".join(ch for ch in text.casefold() if ch.isalnum())


def _spread(tokens: Sequence[str], start_ms: int, end_ms: int) -> list[tuple[int, int]]:
    """Times for words a person wrote, by their share of the characters between ``start_ms`` and
    ``end_ms``."""
    end_ms = max(end_ms, start_ms)
    total = sum(len(t) + 1 for t in tokens) or 1
    out = []
    at = 0
    for token in tokens:
        begin = start_ms + (end_ms - start_ms) * at // total
        at += len(token) + 1
        out.append((begin, max(start_ms + (end_ms - start_ms) * at // total, begin)))
    return out


def apply_cues(
    shown: StatementTranscript, cues: Sequence[Cue], starting: Sequence[Cue]
) -> StatementTranscript:
    """The transcript as a person corrected it in its cues (recording-relative): one segment a cue, its
    text the person's, shown with their lines.

    A cue whose times are the ones the pipeline wrote (``starting``) is matched to the words of that
    recognised cue, and timed by the pipeline in the clip as if only its text had changed; the other
    cues, with times of the person's own, keep them, and their words are matched to the words left over
    in order, so that a cue moved in time keeps its words. A word left as it was keeps its time and
    flags; a word written over a recognised one takes that word's time (inside its cue, where the person
    timed it); a word added is timed inside its cue, by its characters, in the pause it fills. A word a
    person wrote or changed loses its doubt flags."""
    words = list(shown.words)
    origins: list[Segment | None] = [s for s in shown.segments for _ in s.words]
    ranges: dict[int, range] = {}
    at = 0
    for segment in shown.segments:
        if segment.shown is not None:
            ranges[segment.shown.index] = range(at, at + len(segment.words))
        at += len(segment.words)
    recognised = {(c.start_ms, c.end_ms): k for k, c in enumerate(starting)}
    pipeline_times = set(recognised)
    tokens = [(k, token) for k, cue in enumerate(cues) for token in " ".join(cue.lines).split()]
    placed: list[Word | None] = [None] * len(tokens)
    origin_of: list[Segment | None] = [None] * len(tokens)

    def match(word_at: Sequence[int], token_at: Sequence[int]) -> None:
        """Place the tokens at ``token_at`` on the words at ``word_at`` (both in order)."""
        matcher = difflib.SequenceMatcher(
            a=[_norm(words[i].text) for i in word_at],
            b=[_norm(tokens[j][1]) for j in token_at],
            autojunk=False,
        )
        for op, i1, i2, j1, j2 in matcher.get_opcodes():
            if op == "equal":
                for i, j in zip(word_at[i1:i2], token_at[j1:j2], strict=True):
                    word, token = words[i], tokens[j][1]
                    flags = (
                        word.flags if word.text.strip() == token else (*_no_doubts(word.flags), FLAG_EDITED)
                    )
                    placed[j] = replace(word, text=f" {token}", flags=tuple(dict.fromkeys(flags)))
                    origin_of[j] = origins[i]
            elif op in ("replace", "insert"):
                replaced = [words[i] for i in word_at[i1:i2]]
                one_for_one = len(replaced) == j2 - j1
                if one_for_one:
                    # Each word written over one recognised: that word's time, as the engine heard it.
                    times = [(w.start_ms, w.end_ms) for w in replaced]
                else:
                    if replaced:
                        start, end = replaced[0].start_ms, max(w.end_ms for w in replaced)
                    else:
                        start = words[word_at[i1 - 1]].end_ms if i1 else 0
                        end = words[word_at[i1]].start_ms if i1 < len(word_at) else start
                    times = _spread([tokens[j][1] for j in token_at[j1:j2]], start, end)
                flags = (FLAG_EDITED,) if one_for_one else (FLAG_EDITED, FLAG_BY_CHARACTERS)
                for j, (a, b) in zip(token_at[j1:j2], times, strict=True):
                    cue = cues[tokens[j][0]]
                    if op == "insert" or (cue.start_ms, cue.end_ms) not in pipeline_times:
                        a = min(max(a, cue.start_ms), cue.end_ms)
                        b = min(max(b, a), cue.end_ms)
                    placed[j] = Word(a, b, f" {tokens[j][1]}", 1.0, flags)
                    near = word_at[i1] if i1 < len(word_at) else (word_at[-1] if word_at else None)
                    origin_of[j] = origins[near] if near is not None else None

    claimed: set[int] = set()
    loose_cues: list[int] = []
    for k, cue in enumerate(cues):
        own = recognised.get((cue.start_ms, cue.end_ms))
        if own is not None and own in ranges and own not in claimed:
            claimed.add(own)
            match(list(ranges[own]), [j for j, (c, _) in enumerate(tokens) if c == k])
        else:
            loose_cues.append(k)
    taken = {i for k in claimed for i in ranges[k]}
    match(
        [i for i in range(len(words)) if i not in taken],
        [j for j, (c, _) in enumerate(tokens) if c in set(loose_cues)],
    )
    placed = _repeats_again(placed)
    segments = []
    at = 0
    for k, cue in enumerate(cues):
        count = sum(1 for c, _ in tokens if c == k)
        own_words = [w for w in placed[at : at + count] if w is not None]
        origin = next((o for o in origin_of[at : at + count] if o is not None), None)
        at += count
        if not own_words:
            continue
        timed_by_pipeline = (cue.start_ms, cue.end_ms) in pipeline_times
        segments.append(_segment_of(_in_order(own_words), cue, k, origin, own_times=not timed_by_pipeline))
    return replace(shown, segments=tuple(segments), no_text=False if segments else shown.no_text)


def _no_doubts(flags: Sequence[str]) -> tuple[str, ...]:
    return tuple(f for f in flags if f not in DOUBTS)


def _in_order(words: list[Word]) -> list[Word]:
    """Never starting before the word before: a cue moved by a person may hold words of other times."""
    out: list[Word] = []
    for word in words:
        if out and word.start_ms < out[-1].start_ms:
            word = replace(word, start_ms=out[-1].start_ms, end_ms=max(word.end_ms, out[-1].start_ms))
        out.append(word)
    return out


def _repeats_again(words: Sequence[Word | None]) -> list[Word | None]:
    """ "repeated" only where the corrected text still repeats itself (a loop a person removed is gone)."""
    from pipeline.engines.base import FLAG_REPEATED, find_loops

    present = [(k, w) for k, w in enumerate(words) if w is not None]
    looped = {
        present[i][0]
        for loop in find_loops([w.text for _, w in present])
        for i in range(loop.first, loop.end)
    }
    out = list(words)
    for k, word in present:
        if FLAG_REPEATED in word.flags and k not in looped:
            out[k] = replace(word, flags=tuple(f for f in word.flags if f != FLAG_REPEATED))
    return out


def apply_fields(statement: Statement, edits: StatementEdits) -> Statement:
    """The statement with a person's speaker, topic, group and in/out points; a point they left alone
    stays meeting.yaml's, or where the speech is."""
    f = edits.fields
    trim = statement.trim_ms
    if f.in_ is not None or f.out is not None:
        old_in, old_out = trim or (None, None)
        trim = (
            round(f.in_ * 1000) if f.in_ is not None else old_in,
            round(f.out * 1000) if f.out is not None else old_out,
        )
    return replace(
        statement,
        speaker=f.speaker if f.speaker is not None else statement.speaker,
        topic=f.topic if f.topic is not None else statement.topic,
        group=f.group if f.group is not None else statement.group,
        trim_ms=trim,
    )
