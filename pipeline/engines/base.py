"""The one small interface every speech engine implements."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pipeline.errors import ModelError
from pipeline.models import Segment, Word

if TYPE_CHECKING:
    import numpy as np

SAMPLE_RATE = 16_000  # what Whisper listens to: mono float32 at 16 kHz

# Called with the share of the audio done so far, 0.0 to 1.0.
ProgressCallback = Callable[[float], None]


@dataclass(frozen=True)
class TranscribeSettings:
    """Decoding settings (docs/standards.md, Speech recognition). Part of the transcription cache key."""

    language: str = "da"
    vad: bool = True
    vad_threshold: float = 0.5
    # The engine's own defaults, chosen on the accuracy benchmark over every real recording at hand
    # (bench/accuracy_bench.py, bench/results/): no recording may lose a word against the bare engine.
    vad_min_silence_ms: int = 2000
    vad_speech_pad_ms: int = 400
    beam_size: int = 5
    condition_on_previous_text: bool = True
    word_timestamps: bool = True
    # Words timed after decoding, on the encoder output each window was decoded from (faster-whisper;
    # engines/word_times.py): timed while decoding, the windows move and words are lost.
    time_words_after_decoding: bool = True
    # Off: faster-whisper's skipping of "hallucinated" segments judges them by word probability and
    # length, and so also drops real speech the model is unsure of (whole statements of the demo, on
    # some seeds), while on the real recordings of the accuracy benchmark it changed no word. Text over
    # silence is flagged for review instead (flag_credits, review flags), never dropped.
    hallucination_silence_threshold: float | None = None
    compression_ratio_threshold: float = 2.4
    log_prob_threshold: float = -1.0
    no_speech_threshold: float = 0.6
    # The statement's vocabulary prompt (stages/transcribe.vocabulary_prompt), None without one.
    prompt: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ModelInfo:
    """Which model an engine runs and where it came from, for run.json and provenance."""

    name: str  # "base", "large-v3", or the folder/file name of a local model
    source: str  # "embedded" | "cache" | "download" | "path"
    path: str  # where the weights were loaded from
    sha256: str | None  # checksum of the weights file, where known


@dataclass(frozen=True)
class EngineResult:
    language: str
    segments: tuple[Segment, ...]
    # Audio the voice detector passed to the decoder (ms, padding included): an upper bound of the speech
    # heard, so that silence is known as silence without another pass over the audio.
    heard_ms: int | None = None


def model_location(engine: str, path: Path) -> Path:
    """What of a local model ``path`` the engine loads: a CTranslate2 folder (given as the folder or its
    ``model.bin``), or for openai-whisper also a checkpoint file. Checked without loading, the same way
    by the loaders and by the checks before a run; a path that cannot be a model is a ModelError."""
    folder = path.parent if path.is_file() and path.name == "model.bin" else path
    if engine == "faster-whisper" and path.suffix == ".pt":
        raise ModelError(
            f"{path} is an openai-whisper checkpoint; faster-whisper needs a CTranslate2 model folder",
            "use --engine openai-whisper with it, or pass a folder with model.bin",
        )
    if engine == "openai-whisper" and not folder.is_dir():
        return path
    if not (folder / "model.bin").is_file():
        if engine == "openai-whisper":
            raise ModelError(
                f"{path} is neither a Whisper checkpoint (.pt) nor a CTranslate2 model folder (no model.bin)",
                "pass --model with a .pt file or a folder holding model.bin",
            )
        raise ModelError(
            f"{path} is not a CTranslate2 model folder (no model.bin in it)",
            "pass --model with a folder holding model.bin, config.json and tokenizer.json",
        )
    return folder


class Engine(Protocol):
    name: str
    version: str
    model: ModelInfo

    def transcribe(
        self,
        audio: np.ndarray,
        settings: TranscribeSettings,
        on_progress: ProgressCallback | None = None,
        seed: int | None = None,
    ) -> EngineResult:
        """``seed`` seeds the engine's random generator before decoding: Whisper samples when it falls
        back to a higher temperature, and the same audio must give the same words every run."""
        ...


def seed_for(audio_sha256: str) -> int:
    """The random seed of one statement's transcription, from its audio's content: the same recording
    gives the same words in every run, whatever was transcribed before it. 31 bits suit every engine."""
    return int(audio_sha256[:8], 16) & 0x7FFF_FFFF


# --- Shared by the engines: turning their results into Segment/Word and flagging doubtful text. ---

# docs/standards.md asks to flag words with a low probability; below this one a person should listen again.
LOW_WORD_PROBABILITY = 0.5
FLAG_REPEATED = "repeated"
FLAG_LOW_CONFIDENCE = "low_confidence"
FLAG_OVER_SILENCE = "over_silence"


def mono_16k(audio: np.ndarray) -> np.ndarray:
    """The audio as a contiguous 1-D float32 array; both engines need exactly that."""
    import numpy as np

    array = np.ascontiguousarray(audio, dtype=np.float32)
    if array.ndim != 1:
        raise ValueError(f"expected mono audio as a 1-D array, got shape {array.shape}")
    return array


def duration_ms(audio: np.ndarray) -> int:
    return round(len(audio) * 1000 / SAMPLE_RATE)


def _ms(seconds: float, limit_ms: int) -> int:
    return min(max(round(seconds * 1000), 0), limit_ms)


def make_segment(
    *,
    start: float,
    end: float,
    text: str,
    words: Iterable[tuple[float, float, str, float]],
    avg_logprob: float,
    no_speech_prob: float,
    compression_ratio: float,
    audio_ms: int,
) -> Segment | None:
    """A Segment from an engine's numbers (seconds), or None when it holds no text.

    Times become integer milliseconds inside the audio, and never run backwards, so later stages can
    rely on ``start_ms <= end_ms`` and on words in order.
    """
    built: list[Word] = []
    floor = 0
    for word_start, word_end, word_text, probability in words:
        if not word_text.strip():
            continue
        w_start = max(_ms(word_start, audio_ms), floor)
        w_end = max(_ms(word_end, audio_ms), w_start)
        built.append(Word(w_start, w_end, word_text, min(max(float(probability), 0.0), 1.0)))
        floor = w_start
    if not text.strip() and not built:
        return None
    seg_start = _ms(start, audio_ms)
    seg_end = max(_ms(end, audio_ms), seg_start)
    if built:
        seg_start = min(seg_start, built[0].start_ms)
        seg_end = max(seg_end, max(w.end_ms for w in built))
    return Segment(
        start_ms=seg_start,
        end_ms=seg_end,
        text=text,
        words=tuple(built),
        avg_logprob=float(avg_logprob),
        no_speech_prob=float(no_speech_prob),
        compression_ratio=float(compression_ratio),
    )


def normalise_text(text: str) -> str:
    """Lower case, punctuation removed, single spaces: what "the same text" means for a repeat."""
    kept = "".join(ch if ch.isalnum() or ch.isspace() else " " for ch in text.casefold())
    return " ".join(kept.split())


# The same 1-3 words this many times in a row is Whisper's failure loop ("mener, mener, mener, ..."),
# beyond what people say; a person may say "nej, nej, nej" but rarely four times.
LOOP_REPEATS = 4
LOOP_MAX_WORDS = 3
FLAG_REDECODED = "redecoded"


@dataclass(frozen=True)
class Loop:
    """A stretch of words where one phrase repeats: words ``first`` to ``end`` (exclusive)."""

    first: int
    end: int
    phrase: str
    repeats: int


def find_loops(texts: Sequence[str]) -> list[Loop]:
    """Every stretch where the same 1-3 words follow each other LOOP_REPEATS times or more (compared
    without case and punctuation), longest stretch first at each place, in order."""
    tokens = [normalise_text(t) for t in texts]
    loops: list[Loop] = []
    i = 0
    while i < len(tokens):
        best: Loop | None = None
        for n in range(1, LOOP_MAX_WORDS + 1):
            phrase = tokens[i : i + n]
            if len(phrase) < n or not all(phrase):
                break
            repeats = 1
            while tokens[i + repeats * n : i + (repeats + 1) * n] == phrase:
                repeats += 1
            if repeats >= LOOP_REPEATS and (best is None or repeats * n > best.end - best.first):
                best = Loop(i, i + repeats * n, " ".join(phrase), repeats)
        if best is not None:
            loops.append(best)
            i = best.end
        else:
            i += 1
    return loops


def _loops(normalised: str) -> bool:
    return bool(find_loops(normalised.split()))


def _with_flag(word: Word, flag: str) -> Word:
    return word if flag in word.flags else replace(word, flags=(*word.flags, flag))


# A word is over silence when the voice detector hears speech under less than this share of its time
# (its regions widened by OVER_SILENCE_PAD_MS, since the detector's edges are tighter than Whisper's).
OVER_SILENCE_MAX_SPEECH_SHARE = 0.5
OVER_SILENCE_PAD_MS = 200

Regions = Callable[[], Sequence[tuple[int, int]]]


def heard_share(start_ms: int, end_ms: int, regions: Sequence[tuple[int, int]], pad_ms: int = 0) -> float:
    """How much of ``start_ms``-``end_ms`` the voice detector heard as speech (0 to 1); a word without
    length counts as heard where its moment is."""
    if end_ms <= start_ms:
        return 1.0 if any(a - pad_ms <= start_ms <= b + pad_ms for a, b in regions) else 0.0
    heard = sum(max(0, min(b + pad_ms, end_ms) - max(a - pad_ms, start_ms)) for a, b in regions)
    return min(heard / (end_ms - start_ms), 1.0)


def flag_words(
    segments: Sequence[Segment], settings: TranscribeSettings, speech: Regions | None = None
) -> tuple[Segment, ...]:
    """Flags on the words a person should listen to again: low probability, inside a repetition loop,
    and over silence: in a segment the model itself thought was not speech, where the voice detector
    (``speech``, asked only then) agrees that nobody speaks under the word."""
    words = [w for s in segments for w in s.words]
    looped = {k for loop in find_loops([w.text for w in words]) for k in range(loop.first, loop.end)}
    out: list[Segment] = []
    k = 0
    for segment in segments:
        flagged = []
        silent = bool(normalise_text(segment.text)) and segment.no_speech_prob > settings.no_speech_threshold
        regions = speech() if silent and speech is not None else None
        for word in segment.words:
            if word.probability < LOW_WORD_PROBABILITY:
                word = _with_flag(word, FLAG_LOW_CONFIDENCE)
            if k in looped:
                word = _with_flag(word, FLAG_REPEATED)
            if silent and (
                regions is None
                or heard_share(word.start_ms, word.end_ms, regions, OVER_SILENCE_PAD_MS)
                < OVER_SILENCE_MAX_SPEECH_SHARE
            ):
                word = _with_flag(word, FLAG_OVER_SILENCE)
            flagged.append(word)
            k += 1
        out.append(replace(segment, words=tuple(flagged)))
    return tuple(out)


def once(regions: Regions) -> Regions:
    """The voice detector's regions, found at most once (a pass over the whole audio) however often
    they are asked for."""
    found: list[Sequence[tuple[int, int]]] = []

    def get() -> Sequence[tuple[int, int]]:
        if not found:
            found.append(regions())
        return found[0]

    return get


def words_at(raw: Iterable[tuple[float, float, str, float]], offset_ms: int, audio_ms: int) -> list[Word]:
    """Words an engine gave for a stretch of the audio (start, end in seconds within the stretch, text,
    probability), timed in the whole audio's ms; empty words are left out."""

    def at(seconds: float) -> int:
        return min(offset_ms + round(seconds * 1000), audio_ms)

    return [Word(at(start), at(end), text, float(p)) for start, end, text, p in raw if text.strip()]


# Decodes a stretch of the audio again (ms, in the audio's time) and returns its words there.
Redecode = Callable[[int, int], Sequence[Word]]
REDECODE_CONTEXT_MS = 1000


def redecode_loops(segments: Sequence[Segment], redecode: Redecode) -> tuple[Segment, ...]:
    """Each repetition loop decoded again (``redecode`` chooses how: another temperature, no repeated
    n-grams). Where the new words have no loop, they replace the loop's words, marked ``redecoded``;
    where the loop persists, or nothing comes back, the words stay as they were (``flag_words`` marks
    them ``repeated``). Words are never dropped silently."""
    words = [w for s in segments for w in s.words]
    loops = find_loops([w.text for w in words])
    if not loops:
        return tuple(segments)
    replacement: dict[int, list[Word]] = {}  # index of a loop's first word -> its new words
    dropped: set[int] = set()
    for loop in loops:
        start, end = words[loop.first].start_ms, words[loop.end - 1].end_ms
        again = [
            w for w in redecode(max(0, start - REDECODE_CONTEXT_MS), end + REDECODE_CONTEXT_MS)
            if start <= (w.start_ms + w.end_ms) // 2 <= end
        ]  # fmt: skip
        if not again or find_loops([w.text for w in again]):
            continue
        replacement[loop.first] = [_with_flag(w, FLAG_REDECODED) for w in again]
        dropped.update(range(loop.first + 1, loop.end))
    if not replacement:
        return tuple(segments)
    out: list[Segment] = []
    k = 0
    for segment in segments:
        kept: list[Word] = []
        for word in segment.words:
            if k in replacement:
                kept.extend(replacement[k])
            elif k not in dropped:
                kept.append(word)
            k += 1
        if kept != list(segment.words):
            text = "".join(w.text for w in kept)
            segment = replace(segment, words=tuple(kept), text=text)
        if segment.words or segment.text.strip():
            out.append(segment)
    return tuple(out)


# Credits Whisper learnt from subtitled video and writes over silence or music; never said by a citizen.
FLAG_CREDIT = "subtitle_credit"
_CREDITS = re.compile(
    r"\b(?:under)?tekst(?:er|et)?\s+(?:af|by)\b|amara\.org|\bsubtitles?\s+by\b|\boversat\s+af\b"
    r"|\bdanske\s+tekster\b|\bundertekster\b",
    re.IGNORECASE,
)
# A credit counts as over silence when the voice detector hears less than this share of its time.
CREDIT_MAX_SPEECH_SHARE = 0.3


def flag_credits(
    segments: Sequence[Segment], speech: Callable[[], Sequence[tuple[int, int]]]
) -> tuple[Segment, ...]:
    """Mark the words of a segment that reads like a subtitle credit ("Undertekster af ...", "Tekstet af",
    "Amara.org") and lies over no detected speech. ``speech`` gives the voice detector's regions (ms);
    it is asked only when a segment reads like a credit, since it is a pass over the whole audio."""
    if not any(_CREDITS.search(segment.text) for segment in segments):
        return tuple(segments)
    regions = speech()
    out = []
    for segment in segments:
        length = max(segment.end_ms - segment.start_ms, 1)
        heard = sum(max(0, min(b, segment.end_ms) - max(a, segment.start_ms)) for a, b in regions)
        if _CREDITS.search(segment.text) and heard / length < CREDIT_MAX_SPEECH_SHARE:
            words = tuple(_with_flag(w, FLAG_CREDIT) for w in segment.words)
            segment = replace(segment, words=words, flags=tuple(dict.fromkeys([*segment.flags, FLAG_CREDIT])))
        out.append(segment)
    return tuple(out)


def speech_chunks(audio: np.ndarray, settings: TranscribeSettings, pad_ms: int) -> list[tuple[int, int]]:
    """Where Silero VAD hears speech, with the settings' threshold and minimum silence and ``pad_ms`` of
    padding: (start, end) in samples."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    options = VadOptions(
        threshold=settings.vad_threshold,
        min_silence_duration_ms=settings.vad_min_silence_ms,
        speech_pad_ms=pad_ms,
    )
    return [(c["start"], c["end"]) for c in get_speech_timestamps(audio, options, sampling_rate=SAMPLE_RATE)]


def speech_regions_ms(audio: np.ndarray, settings: TranscribeSettings) -> list[tuple[int, int]]:
    """Where the voice detector hears speech, without padding, in ms."""
    return [(a * 1000 // SAMPLE_RATE, b * 1000 // SAMPLE_RATE) for a, b in speech_chunks(audio, settings, 0)]


def add_review_flags(
    segments: Iterable[Segment], settings: TranscribeSettings, speech: Regions | None = None
) -> tuple[Segment, ...]:
    """Mark words and segments a person should check: a repeat of the previous segment or a loop inside
    one (a typical hallucination), low confidence, or text over silence (the model thought there was no
    speech, and the voice detector, ``speech``, agrees). The segment flags summarise its words' flags."""
    flagged: list[Segment] = []
    previous = ""
    for segment in flag_words(list(segments), settings, speech):
        flags: list[str] = []
        norm = normalise_text(segment.text)
        looped = any(FLAG_REPEATED in w.flags for w in segment.words)
        if norm and (norm == previous or looped or _loops(norm)):
            flags.append(FLAG_REPEATED)
        if segment.avg_logprob < settings.log_prob_threshold or any(
            w.probability < LOW_WORD_PROBABILITY for w in segment.words
        ):
            flags.append(FLAG_LOW_CONFIDENCE)
        if any(FLAG_OVER_SILENCE in w.flags for w in segment.words) or (
            norm and not segment.words and segment.no_speech_prob > settings.no_speech_threshold
        ):
            flags.append(FLAG_OVER_SILENCE)
        flagged.append(replace(segment, flags=tuple(dict.fromkeys([*segment.flags, *flags]))))
        previous = norm
    return tuple(flagged)
