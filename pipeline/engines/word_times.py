"""faster-whisper's words as its bare decoding writes them, timed afterwards.

Asked for word timestamps while decoding, faster-whisper moves each next 30 s window to the end of the
last word it timed instead of to the last timestamp the model wrote: the windows, and so the words,
differ from the engine's own decoding. Measured over the real recordings (bench/accuracy_bench.py), that
cost words: 5 of the 289 of the long Danish reading, 2 of a 40 s statement. So the pipeline decodes
exactly as the bare engine does (its own voice detection, its own windows) and then times the words of
each window with the engine's own aligner on the very encoder output the window was decoded from, kept
from the decoding: no second pass of the encoder, and not one word different from the bare engine.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

SAMPLE_RATE = 16_000
# Encoder outputs kept from the decoding: the window being read and the ones decoded (or skipped as
# silence) since; an older one is encoded again, which costs time, never words.
_KEPT_WINDOWS = 4


@dataclass(frozen=True)
class TimedSegment:
    """One segment of the bare decoding, in seconds of the original audio, with its timed words."""

    start: float
    end: float
    text: str
    words: tuple[tuple[float, float, str, float], ...]  # start, end, word, probability
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float


def _fingerprint(features: Any) -> bytes:
    import numpy as np

    return hashlib.blake2b(np.ascontiguousarray(features).tobytes(), digest_size=16).digest()


class EncoderMemory:
    """Stands in for ``WhisperModel.encode`` and ``feature_extractor``: remembers the features of the
    last audio and the encoder's latest outputs by the window they came from. Each thread has its own
    memory: the engine may transcribe two statements at once, each from a thread of its own."""

    def __init__(self, whisper: Any) -> None:
        self._encode = whisper.encode
        self._extract = whisper.feature_extractor
        self._mine = threading.local()

    @property
    def _outputs(self) -> OrderedDict[bytes, Any]:
        if not hasattr(self._mine, "outputs"):
            self._mine.outputs = OrderedDict()
        outputs: OrderedDict[bytes, Any] = self._mine.outputs
        return outputs

    @property
    def features(self) -> Any:
        return getattr(self._mine, "features", None)

    def extract(self, *args: Any, **kwargs: Any) -> Any:
        self._mine.features = self._extract(*args, **kwargs)
        return self._mine.features

    def encode(self, features: Any) -> Any:
        output = self._encode(features)
        self._outputs[_fingerprint(features)] = output
        while len(self._outputs) > _KEPT_WINDOWS:
            self._outputs.popitem(last=False)
        return output

    def encoded(self, window: Any) -> Any:
        found = self._outputs.get(_fingerprint(window))
        return found if found is not None else self._encode(window)

    def forget(self) -> None:
        self._outputs.clear()
        self._mine.features = None


class _Extractor:
    """The feature extractor with the memory in front; its attributes (frame counts) stay readable."""

    def __init__(self, memory: EncoderMemory, extractor: Any) -> None:
        self._memory = memory
        self._extractor = extractor

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._memory.extract(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._extractor, name)


def remember(whisper: Any) -> EncoderMemory:
    """Put an EncoderMemory in front of a loaded ``WhisperModel``."""
    memory = EncoderMemory(whisper)
    whisper.encode = memory.encode
    whisper.feature_extractor = _Extractor(memory, whisper.feature_extractor)
    return memory


@functools.cache
def _punctuation() -> tuple[str, str]:
    from faster_whisper import WhisperModel

    parameters = inspect.signature(WhisperModel.transcribe).parameters
    return parameters["prepend_punctuations"].default, parameters["append_punctuations"].default


def transcribe(
    whisper: Any,
    memory: EncoderMemory,
    samples: np.ndarray,
    *,
    language: str,
    vad_options: dict[str, Any] | None,
    options: dict[str, Any],
) -> tuple[Iterator[TimedSegment], float]:
    """Decode ``samples`` as ``whisper.transcribe`` does with ``vad_filter`` on ``vad_options`` (off
    when None) and without word timestamps, and time the words of each window afterwards. Returns the
    segments (decoded while consumed) and the seconds of audio the voice detector let through."""
    import numpy as np
    from faster_whisper.vad import SpeechTimestampsMap, VadOptions, collect_chunks, get_speech_timestamps

    timeline: Any = None
    heard = samples
    if vad_options is not None:
        chunks = get_speech_timestamps(samples, VadOptions(**vad_options))
        heard = np.concatenate(collect_chunks(samples, chunks)[0])
        timeline = SpeechTimestampsMap(chunks, SAMPLE_RATE) if chunks else None
    memory.forget()
    segments, _info = whisper.transcribe(
        heard, language=language, vad_filter=False, word_timestamps=False, **options
    )
    return _timed(whisper, memory, segments, language, timeline), len(heard) / SAMPLE_RATE


def _timed(
    whisper: Any, memory: EncoderMemory, segments: Any, language: str, timeline: Any
) -> Iterator[TimedSegment]:
    """The decoded segments, a window at a time, with their words timed."""
    from faster_whisper.tokenizer import Tokenizer

    tokenizer = Tokenizer(
        whisper.hf_tokenizer, whisper.model.is_multilingual, task="transcribe", language=language
    )
    window: list[Any] = []
    last_speech = 0.0
    for segment in segments:
        if window and segment.seek != window[0].seek:
            timed, last_speech = _time_window(whisper, memory, window, tokenizer, last_speech)
            yield from (_restored(s, timeline) for s in timed)
            window = []
        window.append(segment)
    if window:
        timed, _ = _time_window(whisper, memory, window, tokenizer, last_speech)
        yield from (_restored(s, timeline) for s in timed)
    memory.forget()


def _time_window(
    whisper: Any, memory: EncoderMemory, window: list[Any], tokenizer: Any, last_speech: float
) -> tuple[list[dict[str, Any]], float]:
    from faster_whisper.audio import pad_or_trim

    seek = window[0].seek
    features = memory.features
    extractor = whisper.feature_extractor
    content_frames = features.shape[-1] - 1
    frames = min(int(extractor.nb_max_frames), content_frames - seek)
    encoder_output = memory.encoded(pad_or_trim(features[:, seek : seek + frames]))
    pieces = [
        {
            "seek": seek,
            "start": s.start,
            "end": s.end,
            "tokens": list(s.tokens),
            "text": s.text,
            "avg_logprob": s.avg_logprob,
            "no_speech_prob": s.no_speech_prob,
            "compression_ratio": s.compression_ratio,
        }
        for s in window
    ]
    prepend, append = _punctuation()
    whisper.add_word_timestamps([pieces], tokenizer, encoder_output, frames, prepend, append, last_speech)
    ends = [w["end"] for p in pieces for w in p.get("words", ())]
    return pieces, (ends[-1] if ends else last_speech)


def _restored(piece: dict[str, Any], timeline: Any) -> TimedSegment:
    """The segment in the original audio's time, as faster-whisper restores it after voice detection:
    a word's start and end from the same stretch of speech."""
    words = []
    for w in piece.get("words", ()):
        start, end = float(w["start"]), float(w["end"])
        if timeline is not None:
            chunk = timeline.get_chunk_index((start + end) / 2)
            start, end = timeline.get_original_time(start, chunk), timeline.get_original_time(end, chunk)
        words.append((start, end, str(w["word"]), float(w["probability"])))
    if words:
        start, end = words[0][0], words[-1][1]
    elif timeline is not None:
        start = timeline.get_original_time(piece["start"])
        end = timeline.get_original_time(piece["end"], is_end=True)
    else:
        start, end = float(piece["start"]), float(piece["end"])
    return TimedSegment(
        start=start,
        end=end,
        text=piece["text"],
        words=tuple(words),
        avg_logprob=float(piece["avg_logprob"]),
        no_speech_prob=float(piece["no_speech_prob"]),
        compression_ratio=float(piece["compression_ratio"]),
    )
