"""The pipeline never costs words against its engine: faster-whisper in the pipeline writes, on every real
recording, exactly the words the bare engine writes (its own defaults, its voice detector on, the language
forced) on the same audio and model, and times them on the encoder output they were decoded from."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import MEDIA, words_of

from pipeline.engines import SAMPLE_RATE, TranscribeSettings, load_engine
from pipeline.engines.faster import FasterWhisperEngine

pytestmark = pytest.mark.slow

SPOKEN = sorted(p for p in MEDIA.iterdir() if p.suffix in {".wav", ".mp3", ".flac"})


def language_of(path: Path) -> str:
    return path.name.split("-")[0]


def decoded(path: Path) -> np.ndarray:
    from faster_whisper import decode_audio

    return decode_audio(str(path), sampling_rate=SAMPLE_RATE)


@pytest.fixture(scope="module")
def engine() -> FasterWhisperEngine:
    loaded = load_engine("faster-whisper")
    assert isinstance(loaded, FasterWhisperEngine)
    return loaded


@pytest.fixture(scope="module")
def bare(engine: FasterWhisperEngine) -> Any:
    """The same model, loaded as a user of faster-whisper would load it."""
    from faster_whisper import WhisperModel

    return WhisperModel(engine.model.path, device="cpu", compute_type="int8")


def bare_words(bare: Any, audio: np.ndarray, language: str) -> list[str]:
    segments, _ = bare.transcribe(audio, language=language, vad_filter=True)
    return words_of(" ".join(s.text for s in segments))


def pipeline_words(engine: FasterWhisperEngine, audio: np.ndarray, settings: TranscribeSettings) -> list[str]:
    result = engine.transcribe(audio, settings, seed=1)
    return words_of(" ".join("".join(w.text for w in s.words) for s in result.segments))


def statement_of_readings() -> tuple[np.ndarray, str]:
    """A statement of a person speaking for 45 s: the NST readings in a row, with pauses between."""
    pause = np.zeros(SAMPLE_RATE * 3 // 2, dtype=np.float32)
    readings = sorted(MEDIA.glob("da-nst-*.wav"))
    assert len(readings) >= 2, "the NST readings are part of the repository"
    audio = np.concatenate([piece for path in readings for piece in (decoded(path), pause)])
    return audio, "da"


def test_every_real_recording_gets_the_bare_engines_words(engine: FasterWhisperEngine, bare: Any) -> None:
    assert len(SPOKEN) >= 8, "the real recordings are part of the repository"
    for path in SPOKEN:
        audio, language = decoded(path), language_of(path)
        expected = bare_words(bare, audio, language)
        assert expected, path.name
        assert pipeline_words(engine, audio, TranscribeSettings(language=language)) == expected, path.name


def test_a_statement_of_several_readings_gets_the_bare_engines_words(
    engine: FasterWhisperEngine, bare: Any
) -> None:
    audio, language = statement_of_readings()
    assert pipeline_words(engine, audio, TranscribeSettings(language=language)) == bare_words(
        bare, audio, language
    )


def test_words_timed_after_decoding_are_timed_as_while_decoding(engine: FasterWhisperEngine) -> None:
    """Where the windows do not move (one window of speech) both ways give the same words and times."""
    audio = decoded(MEDIA / "en-jfk.flac")
    after = engine.transcribe(audio, TranscribeSettings(language="en"), seed=1)
    during = engine.transcribe(
        audio, TranscribeSettings(language="en", time_words_after_decoding=False), seed=1
    )

    def timed(result: Any) -> list[tuple[str, int, int]]:
        return [(w.text, w.start_ms, w.end_ms) for s in result.segments for w in s.words]

    assert timed(after) == timed(during) and len(timed(after)) >= 20


def test_the_words_of_a_long_recording_are_timed_in_order_inside_their_speech(
    engine: FasterWhisperEngine,
) -> None:
    audio = decoded(MEDIA / "da-udhr-preamble.mp3")
    result = engine.transcribe(audio, TranscribeSettings(language="da"), seed=1)
    words = [w for s in result.segments for w in s.words]
    assert len(words) > 200
    length_ms = len(audio) * 1000 // SAMPLE_RATE
    assert all(0 <= w.start_ms <= w.end_ms <= length_ms for w in words)
    assert all(a.start_ms <= b.start_ms for a, b in itertools.pairwise(words))
    # Each segment holds its words: the times are the words', mapped back through the voice detection.
    for segment in result.segments:
        if segment.words:
            assert segment.start_ms <= segment.words[0].start_ms <= segment.words[-1].end_ms <= segment.end_ms


class _CountingEncoder:
    def __init__(self, model: Any) -> None:
        self._model = model
        self.calls = 0

    def encode(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self._model.encode(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


@pytest.fixture
def counted(engine: FasterWhisperEngine) -> Iterator[_CountingEncoder]:
    whisper: Any = engine._whisper
    original = whisper.model
    counter = _CountingEncoder(original)
    whisper.model = counter
    try:
        yield counter
    finally:
        whisper.model = original


def test_the_words_are_timed_without_a_second_pass_of_the_encoder(
    engine: FasterWhisperEngine, counted: _CountingEncoder
) -> None:
    audio = decoded(MEDIA / "da-udhr-preamble.mp3")
    settings = TranscribeSettings(language="da")
    engine.transcribe(audio, settings, seed=1)
    after = counted.calls
    counted.calls = 0
    engine.transcribe(audio, dataclasses.replace(settings, time_words_after_decoding=False), seed=1)
    # The 116 s reading is four or five windows; timed afterwards, not one encoding more than the
    # windows it was decoded in (timed while decoding, the windows move, so the count may differ by one).
    assert 4 <= after <= counted.calls + 1


@pytest.mark.parametrize("kind", ["silence", "noise"])
def test_audio_without_speech_gives_no_words(engine: FasterWhisperEngine, kind: str) -> None:
    rng = np.random.default_rng(7)
    audio = (
        np.zeros(SAMPLE_RATE * 20, dtype=np.float32)
        if kind == "silence"
        else (rng.standard_normal(SAMPLE_RATE * 20) * 0.001).astype(np.float32)
    )
    result = engine.transcribe(audio, TranscribeSettings(language="da"), seed=1)
    assert not [w for s in result.segments for w in s.words]
    assert result.heard_ms is not None and result.heard_ms < 20_000
