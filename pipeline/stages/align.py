"""Align: the words a person added to a statement, timed where they are heard.

A word a person wrote over a recognised one takes that word's time; a word they added, or several
written where fewer were heard, is first timed by its characters in the pause it fills
(``edits.FLAG_BY_CHARACTERS``). Where the engine can align text to audio (faster-whisper and
openai-whisper both do, with Whisper's cross-attention: the same alignment that times every word it
writes), the whole cue is aligned to its stretch of the recording, offline, and those words take the
times the engine hears them at; the words nobody changed keep theirs. Where it cannot, or the alignment
does not match the cue's words, the character timing stands.

Pure core: ``requests`` and ``apply``. ``Aligner`` does the I/O: the speech audio, the engine (loaded
only when an alignment is not in the cache yet) and the cache: ``alignments`` in the output folder's
``work`` folder.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.models import StatementTranscript, Word
from pipeline.stages import timing
from pipeline.stages.edits import FLAG_BY_CHARACTERS

if TYPE_CHECKING:
    from pipeline.cache import WorkCache
    from pipeline.engines.base import Engine
    from pipeline.files import HashCache
    from pipeline.steps import StageLog

log = logging.getLogger(__name__)

VERSION = 1
FLAG_ALIGNED = "aligned"  # a word a person added, timed where the engine hears it
MARGIN_MS = 1000  # listened to before and after the cue
MAX_WINDOW_MS = 29_000  # one Whisper window, with room for its padding


@dataclass(frozen=True)
class Request:
    """One cue to align: its index among the statement's cues, the stretch of the recording to listen to
    and the cue's words as the person wrote them."""

    cue: int
    start_ms: int
    end_ms: int
    text: str

    def to_json(self) -> dict[str, Any]:
        return {"cue": self.cue, "start_ms": self.start_ms, "end_ms": self.end_ms, "text": self.text}


# A word as the engine aligned it: its text, start and end (ms from the start of the stretch listened
# to) and how sure the engine is of it.
Aligned = tuple[str, int, int, float]


def requests(transcript: StatementTranscript, duration_ms: int) -> list[Request]:
    """The cues of ``transcript`` (a statement as corrected, ``edits.apply_cues``) holding words timed by
    their characters, each with the stretch of the recording around it."""
    found = []
    for segment in transcript.segments:
        if segment.shown is None or not any(FLAG_BY_CHARACTERS in w.flags for w in segment.words):
            continue
        first = min(segment.start_ms, segment.words[0].start_ms)
        last = max(segment.end_ms, segment.words[-1].end_ms)
        start = max(0, first - MARGIN_MS)
        end = min(duration_ms, last + MARGIN_MS, start + MAX_WINDOW_MS)
        if end - start < 200:
            continue
        text = " ".join(w.text.strip() for w in segment.words)
        found.append(Request(segment.shown.index, start, end, text))
    return found


def _letters(text: str) -> str:
    return "".join(ch for ch in text.casefold() if ch.isalnum())


def _spans(words: Sequence[Word], aligned: Sequence[Aligned]) -> list[tuple[int, int, float] | None]:
    """For each word, the time the aligned words covering its letters span, or None where the letters of
    the two do not line up."""
    stream = [
        (ch, start, end, probability) for text, start, end, probability in aligned for ch in _letters(text)
    ]
    lined = timing.line_up([list(_letters(w.text)) for w in words], [ch for ch, *_ in stream])
    if lined is None:
        return [None] * len(words)
    return [
        None
        if taken is None
        else (min(s for _, s, _, _ in stream[taken]), max(e for _, _, e, _ in stream[taken]),
              min(p for *_, p in stream[taken]))
        for taken in lined
    ]  # fmt: skip


def apply(
    transcript: StatementTranscript, results: Mapping[int, tuple[Request, Sequence[Aligned]]]
) -> StatementTranscript:
    """The words timed by their characters moved to where the engine heard them, in each cue aligned
    (``results`` by cue index: the request and what the engine answered). Never before the word before
    them or after the word after them that keeps its own time, and inside a cue a person timed."""
    segments = []
    for segment in transcript.segments:
        found = results.get(segment.shown.index) if segment.shown is not None else None
        if found is None:
            segments.append(segment)
            continue
        request, aligned = found
        spans = _spans(segment.words, aligned)
        # As Whisper times the words it writes: a word aligned over a pause is cut to twice the median
        # word (at most 1.4 s), from its end, since the alignment stretches a word after a pause back into it.
        lengths = sorted(e - s for _, s, e, _ in aligned if e > s)
        longest = 2 * min(700, lengths[len(lengths) // 2]) if lengths else None
        words = list(segment.words)
        for k, (word, span) in enumerate(zip(words, spans, strict=True)):
            if FLAG_BY_CHARACTERS not in word.flags or span is None:
                continue
            before = max((w.end_ms for w in words[:k]), default=0)
            after = min(
                (w.start_ms for w in words[k + 1 :] if FLAG_BY_CHARACTERS not in w.flags), default=None
            )
            start, end = request.start_ms + span[0], request.start_ms + span[1]
            if longest is not None and end - start > longest:
                start = end - longest
            low, high = before, after if after is not None else max(end, before)
            shown = segment.shown
            if shown is not None and shown.start_ms is not None and shown.end_ms is not None:
                low, high = max(low, shown.start_ms), min(high, shown.end_ms)
            if high < low:
                continue
            start = min(max(start, low), high)
            end = min(max(end, start), high)
            flags = (*(f for f in word.flags if f != FLAG_BY_CHARACTERS), FLAG_ALIGNED)
            words[k] = replace(word, start_ms=start, end_ms=end, flags=flags)
        segments.append(
            replace(
                segment, words=tuple(words), flags=tuple(dict.fromkeys(f for w in words for f in w.flags))
            )
        )
    return replace(transcript, segments=tuple(segments))


# ------------------------------------------------------------------------------------------------ I/O


class Aligner:
    """Aligns a statement's added words through the cache: the engine is asked (and loaded) only for what
    the cache does not hold yet, and never where ``engine`` is None (then what is cached is used)."""

    def __init__(
        self,
        work: WorkCache,
        hashes: HashCache,
        engine: Callable[[], Engine] | None,
        engine_id: tuple[str, str],
        steps: StageLog | None = None,
    ) -> None:
        self.work = work
        self.hashes = hashes
        self.engine = engine
        self.engine_id = engine_id  # (engine name, model id): part of every key
        # A run's record: each alignment it used, by statement, so that a withdrawal finds and deletes it.
        self.steps = steps

    def _key(self, audio_sha256: str, request: Request, language: str) -> str:
        from pipeline import cache

        return cache.make_key(
            "align",
            VERSION,
            {"audio": audio_sha256, **request.to_json(), "language": language},
            tools={"engine": self.engine_id[0], "model": self.engine_id[1]},
        )

    def aligned(
        self, transcript: StatementTranscript, audio: Path | None, duration_ms: int
    ) -> StatementTranscript:
        """``transcript`` with its added words timed where they are heard, as far as the engine can."""
        from pipeline import cache, media

        wanted = requests(transcript, duration_ms)
        if not wanted or audio is None or not audio.exists():
            return transcript
        sha = self.hashes.sha256(audio)
        samples = None
        results: dict[int, tuple[Request, Sequence[Aligned]]] = {}
        for request in wanted:
            key = self._key(sha, request, transcript.language)
            target = self.work.alignment(key)
            stored = _stored(cache.read_json(target))
            if self.steps is not None:
                with self.steps.stage("align", transcript.statement_id, key, stored is not None):
                    pass
            if stored is not None:
                results[request.cue] = (request, stored)
                continue
            engine = self.engine() if self.engine is not None else None
            align = getattr(engine, "align", None)
            if align is None:
                continue
            if samples is None:
                samples = media.read_wav_mono16k(audio)
            piece = samples[request.start_ms * 16 : request.end_ms * 16]
            try:
                words = align(piece, request.text, transcript.language)
            except Exception as error:  # an engine that cannot align this leaves the character timing
                log.info(
                    "could not align cue %d to its recording (%s): timed by its characters",
                    request.cue + 1,
                    error,
                )
                continue
            if words is None:
                continue
            cache.store_json(target, {"request": request.to_json(), "words": [list(w) for w in words]})
            results[request.cue] = (request, words)
        return apply(transcript, results)


def _stored(data: Any) -> list[Aligned] | None:
    """An alignment from the cache; None where there is none or it is damaged (then it is made again)."""
    try:
        return [(str(t), int(a), int(b), float(p)) for t, a, b, p in data["words"]]
    except (KeyError, TypeError, ValueError):
        return None
