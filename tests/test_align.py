"""Words a person added, timed where the engine hears them (pipeline.stages.align): pure placement, and
the real engines aligning real speech."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from pipeline.cache import WorkCache
from pipeline.models import Segment, StatementTranscript, Word
from pipeline.stages import align, edits
from pipeline.stages.subtitles.rules import Cue, SubtitleRules

RULES = SubtitleRules()


def transcript_of(words: list[Word]) -> StatementTranscript:
    segment = Segment(words[0].start_ms, words[-1].end_ms, "".join(w.text for w in words), tuple(words))
    return StatementTranscript("s01", "en", "faster-whisper", "base", (segment,))


def test_only_added_words_are_aligned_and_each_lands_where_it_is_heard() -> None:
    heard = transcript_of(
        [
            Word(0, 400, " ask", 0.9),
            Word(400, 800, " not", 0.9),
            Word(800, 1300, " your", 0.9),
            Word(1800, 2300, " can", 0.9),
        ]
    )
    shown = edits.shown_transcript(heard, 5000, RULES)
    starting = edits.starting_cues(heard, 5000, RULES)
    (cue,) = starting
    # "country" was said between "your" and "can" and the engine missed it; the person adds it.
    corrected = edits.apply_cues(
        shown, [Cue(cue.start_ms, cue.end_ms, ("ask not your country can",))], starting
    )
    added = corrected.words[3]
    assert added.text == " country" and edits.FLAG_BY_CHARACTERS in added.flags
    (request,) = align.requests(corrected, 5000)
    assert request.text == "ask not your country can" and request.start_ms == 0
    # The engine hears it at 1.35-1.75 s (its own alignment of the whole cue, from the listened stretch).
    answer = [(" ask", 0, 400, 0.9), (" not", 400, 800, 0.9), (" your", 800, 1300, 0.9),
              (" coun", 1350, 1500, 0.8), ("try", 1500, 1750, 0.8), (" can", 1800, 2300, 0.9)]  # fmt: skip
    aligned = align.apply(corrected, {request.cue: (request, answer)})
    words = aligned.words
    assert (words[3].start_ms, words[3].end_ms) == (1350, 1750)
    assert align.FLAG_ALIGNED in words[3].flags and edits.FLAG_BY_CHARACTERS not in words[3].flags
    assert words[:3] == corrected.words[:3] and words[4] == corrected.words[4], "the other words keep theirs"
    # An answer whose words do not line up with the cue's changes nothing.
    assert align.apply(corrected, {request.cue: (request, answer[:3])}).words == corrected.words


def test_a_word_written_over_one_recognised_takes_its_time_and_is_not_aligned() -> None:
    heard = transcript_of(
        [Word(0, 400, " my", 0.9), Word(400, 900, " fellow", 0.9), Word(900, 1500, " Amerikans", 0.4)]
    )
    starting = edits.starting_cues(heard, 5000, RULES)
    (cue,) = starting
    fixed = edits.apply_cues(
        edits.shown_transcript(heard, 5000, RULES),
        [Cue(cue.start_ms, cue.end_ms, ("my fellow Americans",))],
        starting,
    )
    assert (fixed.words[2].start_ms, fixed.words[2].end_ms) == (900, 1500)
    assert align.requests(fixed, 5000) == []


def write_wav(path: Path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(16_000)
        handle.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())


@pytest.mark.slow
@pytest.mark.parametrize("engine_name", ["faster-whisper", "openai-whisper"])
def test_the_engine_hears_where_a_missed_word_was_said(
    real_media: Path, tmp_path: Path, engine_name: str
) -> None:
    from faster_whisper import decode_audio

    from pipeline.engines import load_engine
    from pipeline.engines.base import TranscribeSettings
    from pipeline.files import HashCache

    samples = decode_audio(str(real_media / "en-jfk.flac"), sampling_rate=16_000)
    audio = tmp_path / "jfk.wav"
    write_wav(audio, samples)
    engine = load_engine(engine_name, None)
    recognised = engine.transcribe(samples, TranscribeSettings(language="en")).segments
    words = [w for s in recognised for w in s.words]
    # "... ask not what your country can do for you, | ask what you can do ...": the second "ask" is
    # said after a pause. The engine as if it had missed it: the person writes it back.
    (ask,) = [k for k, w in enumerate(words) if w.text.strip().lower() == "ask" and w.start_ms > 6000]
    missed = transcript_of([w for k, w in enumerate(words) if k != ask])
    duration = len(samples) // 16
    starting = edits.starting_cues(missed, duration, RULES)
    cues = [
        Cue(c.start_ms, c.end_ms, ("ask " + " ".join(c.lines),))
        if " ".join(c.lines).startswith("what you")
        else c
        for c in starting
    ]
    assert any(c.text.startswith("ask what you") for c in cues), starting
    corrected = edits.apply_cues(edits.shown_transcript(missed, duration, RULES), cues, starting)
    (added,) = [w for w in corrected.words if edits.FLAG_BY_CHARACTERS in w.flags]
    aligner = align.Aligner(
        WorkCache(tmp_path / "work"),
        HashCache(tmp_path / "hashes.json"),
        lambda: engine,
        (engine_name, "base"),
    )
    aligned = aligner.aligned(corrected, audio, duration)
    (heard,) = [w for w in aligned.words if align.FLAG_ALIGNED in w.flags]
    # Where it was said, from the sound itself: the first 10 ms after the pause loud enough for speech.
    onset = next(
        t
        for t in range(words[ask - 1].end_ms + 150, duration, 10)
        if float(np.sqrt(np.mean(samples[t * 16 : (t + 10) * 16] ** 2))) > 0.08
    )
    print(f"{engine_name}: said from {onset}; by characters {added.start_ms}, heard {heard.start_ms}")
    assert abs(heard.start_ms - onset) <= 200, (heard, onset)
    assert abs(added.start_ms - onset) > abs(heard.start_ms - onset)
    assert heard.end_ms >= onset + 150
    # Cached: asked again, the engine is not needed.
    again = align.Aligner(
        WorkCache(tmp_path / "work"), HashCache(tmp_path / "hashes.json"), None, (engine_name, "base")
    )
    assert again.aligned(corrected, audio, duration) == aligned
