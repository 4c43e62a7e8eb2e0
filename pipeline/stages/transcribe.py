"""Transcribe: decode each statement's speech audio and let a Whisper engine write down what was said.

Pure core: cache keys, (de)serialising transcripts, judging the decoded audio. ``run_*`` do the I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.config import Form, Meeting
from pipeline.engines.base import SAMPLE_RATE, Engine, TranscribeSettings, seed_for, speech_chunks
from pipeline.files import sha256_text, stable_json, write_json
from pipeline.models import Segment, Statement, StatementTranscript, Word

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

AUDIO_VERSION = 3  # 3: decoded in-process by PyAV, its version in the key
VERSION = 4  # 2: seeded from the audio; 3: repetition loops decoded again, flags per word; 4: prompt

# Decoding that yields less than this share of the stream's stated duration means the file is cut short.
TRUNCATED_SHARE = 0.9
TRUNCATED_MIN_MISSING_MS = 1500


def audio_key(statement: Statement, decoder: str) -> str:
    return sha256_text(
        stable_json(
            {
                "stage": "speech-audio",
                "version": AUDIO_VERSION,
                "recording": statement.recording.sha256,
                "stream": statement.audio_stream,
                "decoder": decoder,
            }
        )
    )


def transcription_key(audio_sha256: str, engine: str, model: str, settings: TranscribeSettings) -> str:
    return sha256_text(
        stable_json(
            {
                "stage": "transcribe",
                "version": VERSION,
                "audio": audio_sha256,
                "engine": engine,
                "model": model,
                "settings": settings.to_json(),
            }
        )
    )


def truncation(statement: Statement, decoded_ms: int) -> str | None:
    """Why the decoded audio shows the recording is cut short or damaged, or None."""
    stream = next((a for a in statement.probe.audio if a.index == statement.audio_stream), None)
    expected = (stream.duration_ms if stream and stream.duration_ms else None) or statement.probe.duration_ms
    if not expected:
        return None
    missing = expected - decoded_ms
    if decoded_ms < expected * TRUNCATED_SHARE and missing > TRUNCATED_MIN_MISSING_MS:
        return (
            f"truncated or damaged: only {decoded_ms / 1000:.1f} s of its {expected / 1000:.1f} s of audio "
            "could be decoded"
        )
    return None


def speech_ms(samples: np.ndarray, settings: TranscribeSettings) -> int:
    """How much speech the voice-activity detector finds in 16 kHz mono samples."""
    return sum(end - start for start, end in speech_chunks(samples, settings, 0)) * 1000 // SAMPLE_RATE


# Less voice than this with no words is no statement (a cough, a door); more is speech nobody could read.
MIN_SPEECH_WITHOUT_WORDS_MS = 1000
NO_SPEECH_REASON = "no speech found (nothing to transcribe)"


def no_words_upper_bound_rejects(transcript: StatementTranscript) -> bool:
    """True when even the engine's padded voice-detector count is below the minimum: then the exact
    count (another pass over the audio, long for hours of silence) is not needed to reject."""
    return transcript.heard_ms is not None and transcript.heard_ms < MIN_SPEECH_WITHOUT_WORDS_MS


# Whisper keeps only the last 223 tokens of a prompt (Danish: about 3 characters each); beyond this the
# most general terms are left out, so the statement's own words are always heard.
PROMPT_MAX_CHARS = 600


def vocabulary_prompt(meeting: Meeting, form: Form, statement: Statement) -> str | None:
    """The meeting's own words as the engine's prompt for one statement, when the form asks for it: the
    title, committee, organiser and place, the vocabulary of meeting.yaml and the form, then the
    statement's group, topic and (with consent to be named) speaker. Each term once."""
    if not form.speech.vocabulary_prompt:
        return None
    speaker = statement.speaker if statement.consent.name_on_screen else None
    terms = [
        meeting.title, meeting.committee, meeting.organiser, meeting.place,
        *(meeting.vocabulary or ()), *form.speech.vocabulary,
        statement.group, statement.topic, speaker,
    ]  # fmt: skip
    seen: set[str] = set()
    kept: list[str] = []
    for term in terms:
        text = " ".join((term or "").split()).strip(" ,.")
        if text and text.casefold() not in seen:
            seen.add(text.casefold())
            kept.append(text)
    while kept and len(", ".join(kept)) + 1 > PROMPT_MAX_CHARS:
        kept.pop(0)
    return ", ".join(kept) + "." if kept else None


def judge_no_words(heard_speech_ms: int) -> str | None:
    """For a transcript without words: the reason to reject the recording, or None when the voice
    detector heard speech and the statement must reach the committee anyway, flagged "no text
    recognised" for a person to write."""
    return NO_SPEECH_REASON if heard_speech_ms < MIN_SPEECH_WITHOUT_WORDS_MS else None


def read_transcript(path: Path) -> StatementTranscript | None:
    """A stored transcript, or None when it is missing or damaged (then it is made again)."""
    from pipeline import cache

    data = cache.read_json(path)
    if data is None:
        return None
    try:
        return transcript_from_json(data)
    except (KeyError, TypeError, ValueError, AttributeError):
        log.warning("cache: %s is not a transcript; transcribing again", path.name)
        path.unlink(missing_ok=True)
        return None


def transcript_to_json(transcript: StatementTranscript) -> dict[str, Any]:
    return {
        "statement_id": transcript.statement_id,
        "language": transcript.language,
        "engine": transcript.engine,
        "model": transcript.model,
        "seed": transcript.seed,
        "heard_ms": transcript.heard_ms,
        "segments": [
            {
                "start_ms": s.start_ms,
                "end_ms": s.end_ms,
                "text": s.text,
                "avg_logprob": round(s.avg_logprob, 4),
                "no_speech_prob": round(s.no_speech_prob, 4),
                "compression_ratio": round(s.compression_ratio, 4),
                "flags": list(s.flags),
                "words": [
                    {
                        "start_ms": w.start_ms,
                        "end_ms": w.end_ms,
                        "text": w.text,
                        "probability": round(w.probability, 4),
                        **({"flags": list(w.flags)} if w.flags else {}),
                    }
                    for w in s.words
                ],
            }
            for s in transcript.segments
        ],
    }


def transcript_from_json(data: dict[str, Any]) -> StatementTranscript:
    return StatementTranscript(
        statement_id=data["statement_id"],
        language=data["language"],
        engine=data["engine"],
        model=data["model"],
        segments=tuple(
            Segment(
                start_ms=s["start_ms"],
                end_ms=s["end_ms"],
                text=s["text"],
                words=tuple(
                    Word(w["start_ms"], w["end_ms"], w["text"], w["probability"], tuple(w.get("flags", ())))
                    for w in s["words"]
                ),
                avg_logprob=s["avg_logprob"],
                no_speech_prob=s["no_speech_prob"],
                compression_ratio=s["compression_ratio"],
                flags=tuple(s["flags"]),
            )
            for s in data["segments"]
        ),
        seed=data.get("seed"),
        heard_ms=data.get("heard_ms"),
    )


def run_transcription(
    statement: Statement,
    audio_path: Path,
    engine: Engine,
    model_label: str,
    settings: TranscribeSettings,
    target: Path,
    audio_sha256: str,
    on_progress: Callable[[float], None] | None = None,
) -> StatementTranscript:
    from pipeline import media

    samples = media.read_wav_mono16k(audio_path)
    seed = seed_for(audio_sha256)
    result = engine.transcribe(samples, settings, on_progress, seed=seed)
    transcript = StatementTranscript(
        statement_id=statement.id,
        language=result.language,
        engine=engine.name,
        model=model_label,
        segments=result.segments,
        seed=seed,
        heard_ms=result.heard_ms,
    )
    write_json(target, transcript_to_json(transcript))
    return transcript
