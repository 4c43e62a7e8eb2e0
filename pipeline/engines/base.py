"""The one small interface every speech engine implements."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from pipeline.models import Segment, Word

if TYPE_CHECKING:
    import numpy as np

SAMPLE_RATE = 16_000  # what Whisper listens to: mono float32 at 16 kHz

# Called with the share of the audio done so far, 0.0 to 1.0.
ProgressCallback = Callable[[float], None]


@dataclass(frozen=True)
class TranscribeSettings:
    """Decoding settings (STANDARDS.md, Speech recognition). Part of the transcription cache key."""

    language: str = "da"
    vad: bool = True
    vad_threshold: float = 0.5
    # Chosen on the accuracy benchmark over every real recording at hand (bench/accuracy_bench.py,
    # bench/results/): lowest word error rate overall, never a point worse than the bare engine on any.
    vad_min_silence_ms: int = 1000
    vad_speech_pad_ms: int = 400
    beam_size: int = 5
    condition_on_previous_text: bool = False
    word_timestamps: bool = True
    hallucination_silence_threshold: float = 2.0
    compression_ratio_threshold: float = 2.4
    log_prob_threshold: float = -1.0
    no_speech_threshold: float = 0.6

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

# STANDARDS.md asks to flag words with a low probability; below this one a person should listen again.
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


# The same word this many times in a row is a decoding loop ("mener, mener, mener, ..."), not speech.
LOOP_WORDS = 4


def _loops(normalised: str) -> bool:
    words = normalised.split()
    run = 1
    for before, word in itertools.pairwise(words):
        run = run + 1 if word == before else 1
        if run >= LOOP_WORDS:
            return True
    return False


def add_review_flags(segments: Iterable[Segment], settings: TranscribeSettings) -> tuple[Segment, ...]:
    """Mark segments a person should check: a repeat of the previous segment (a typical hallucination
    loop), low confidence, or text where the model itself thought there was no speech."""
    flagged: list[Segment] = []
    previous = ""
    for segment in segments:
        flags: list[str] = []
        norm = normalise_text(segment.text)
        if norm and (norm == previous or _loops(norm)):
            flags.append(FLAG_REPEATED)
        if segment.avg_logprob < settings.log_prob_threshold or any(
            w.probability < LOW_WORD_PROBABILITY for w in segment.words
        ):
            flags.append(FLAG_LOW_CONFIDENCE)
        if norm and segment.no_speech_prob > settings.no_speech_threshold:
            flags.append(FLAG_OVER_SILENCE)
        flagged.append(replace(segment, flags=tuple(dict.fromkeys([*segment.flags, *flags]))))
        previous = norm
    return tuple(flagged)
