"""The benchmark's forced decoding (bench/shapes.py), on a tiny converted Whisper and real Danish speech:
the speed figures of a large model's shape are only as true as the number of tokens it is made to write."""

from __future__ import annotations

import math
import sys
from itertools import pairwise
from pathlib import Path

import pytest
from conftest import MEDIA, REPO
from test_convert import converted

sys.path.insert(0, str(REPO / "bench"))
import shapes  # the benchmark's module, beside the benchmarks

RATE = 6.0  # tokens per second of speech


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return converted(tmp_path_factory.mktemp("forced"), "tiny-forced", seed=3).target


def test_each_window_writes_the_tokens_its_speech_takes_and_reads_as_danish(
    tiny: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ctranslate2
    from faster_whisper import WhisperModel, decode_audio

    monkeypatch.setattr(ctranslate2.models, "Whisper", shapes.forcing(RATE, ctranslate2.models.Whisper))
    model = WhisperModel(str(tiny), device="cpu", compute_type="int8", cpu_threads=1)
    forced = model.model
    assert isinstance(forced, shapes.ForcedWhisper)
    danish = set(shapes.danish_text().lower().split())
    # A short reading, and the long one cut to 70 s: one window and three (the last one partial).
    for recording, seconds in (("da-nst-u0042008.wav", None), ("da-udhr-preamble.mp3", 70)):
        audio = decode_audio(str(MEDIA / recording), sampling_rate=16_000)
        if seconds:
            audio = audio[: seconds * 16_000]
        forced.windows.clear()
        segments, info = model.transcribe(audio, language="da", vad_filter=True, word_timestamps=True)
        found = list(segments)
        windows = list(forced.windows)
        assert windows, recording
        # One decoding per window (no temperature fallback), each as long as its speech takes.
        for speech_s, made in windows:
            assert 0 < speech_s <= shapes.WINDOW_S
            assert made == max(4, math.ceil(RATE * speech_s)), (recording, speech_s, made)
        heard = float(info.duration_after_vad)
        assert sum(s for s, _ in windows) == pytest.approx(heard, abs=0.05 * len(windows) + 0.05)
        written = sum(m for _, m in windows)
        assert math.ceil(RATE * heard) <= written <= math.ceil(RATE * heard) + 4 * len(windows)
        # What it wrote reads as real Danish words, timed inside the recording.
        words = [w.word.strip().lower().strip(".,;:!?") for s in found for w in s.words or ()]
        assert len(words) >= 3
        assert sum(w in danish for w in words if w) >= 0.5 * len(words)
        assert all(0 <= w.start <= w.end <= len(audio) / 16_000 + 0.01 for s in found for w in s.words or ())
        # Timed as a speaker says them, one after another over the window's speech (random weights'
        # attention, used as it is, could crowd a window's words into its last second).
        starts = [w.start for s in found for w in s.words or ()]
        assert starts == sorted(starts)
        gaps = [b - a for a, b in pairwise(starts)]
        assert max(gaps) < 2.5, (recording, max(gaps))


def test_two_statements_heard_at_once_each_write_the_tokens_of_their_own_speech(
    tiny: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model of two workers hears two statements at once, each window encoded and then decoded on the
    thread that transcribes it: a window encoded on another thread in between must not lend it its length
    (shared, one statement was decoded to the other's length and its words timed into a few seconds)."""
    import threading

    import ctranslate2
    import numpy as np
    import tokenizers

    monkeypatch.setattr(ctranslate2.models, "Whisper", shapes.forcing(RATE, ctranslate2.models.Whisper))
    forced = ctranslate2.models.Whisper(str(tiny), device="cpu", compute_type="int8", inter_threads=2)
    tokenizer = tokenizers.Tokenizer.from_file(str(tiny / "tokenizer.json"))
    prompt = [tokenizer.token_to_id(t) for t in ("<|startoftranscript|>", "<|da|>", "<|transcribe|>")]

    def window(speech_s: int) -> ctranslate2.StorageView:
        features = np.zeros((1, 80, 3000), dtype=np.float32)
        features[:, :, : speech_s * shapes.FRAMES_PER_SECOND] = 0.5  # zeros are the padding to 30 s
        return ctranslate2.StorageView.from_array(features)

    def encoded(speech_s: int) -> ctranslate2.StorageView:
        return forced.encode(window(speech_s))

    short = encoded(5)  # this thread's window: 5 s of speech
    other = threading.Thread(target=encoded, args=(25,))  # meanwhile another statement's, 25 s
    other.start()
    other.join()
    forced.windows.clear()
    forced.generate(short, [prompt])
    assert forced.windows == [(5.0, max(4, math.ceil(RATE * 5)))]
