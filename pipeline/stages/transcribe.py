"""Transcribe: decode each statement's speech audio and let a Whisper engine write down what was said.

Pure core: cache keys, (de)serialising transcripts, judging the decoded audio. ``Listener`` does the
I/O through the cache under ``OUT/work`` (``audio/`` and ``transcripts/``) and plans it for a dry run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.config import Form, Meeting
from pipeline.engines.base import SAMPLE_RATE, Engine, TranscribeSettings, seed_for, speech_chunks
from pipeline.errors import PipelineError
from pipeline.models import Rejection, Segment, Statement, StatementTranscript, Word
from pipeline.steps import PlannedStep

if TYPE_CHECKING:
    import numpy as np

    from pipeline.cache import WorkCache
    from pipeline.files import HashCache
    from pipeline.steps import Progress, StageLog

log = logging.getLogger(__name__)

AUDIO_VERSION = 3  # 3: decoded in-process by PyAV, its version in the key
VERSION = (
    5  # 2: seeded; 3: loops decoded again, flags per word; 4: prompt; 5: over silence as the VAD hears it
)

# Decoding that yields less than this share of the stream's stated duration means the file is cut short.
TRUNCATED_SHARE = 0.9
TRUNCATED_MIN_MISSING_MS = 1500


def audio_key(statement: Statement, decoder: str) -> str:
    from pipeline import cache

    return cache.make_key(
        "speech-audio",
        AUDIO_VERSION,
        {"recording": statement.recording.sha256, "stream": statement.audio_stream},
        tools={"decoder": decoder},
    )


def transcription_key(audio_sha256: str, engine: str, model: str, settings: TranscribeSettings) -> str:
    """``engine``: the engine with the versions of the packages it listens with; ``model``: the model
    by its content (``engines.cache_identity``). An upgrade or a model replaced in place is a miss."""
    from pipeline import cache

    return cache.make_key(
        "transcribe",
        VERSION,
        {"audio": audio_sha256, "settings": settings.to_json()},
        tools={"engine": engine, "model": model},
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
    from pipeline import cache, media, memory

    samples = media.read_wav_mono16k(audio_path)
    seed = seed_for(audio_sha256)
    try:
        result = engine.transcribe(samples, settings, on_progress, seed=seed)
    finally:
        memory.give_back()
    transcript = StatementTranscript(
        statement_id=statement.id,
        language=result.language,
        engine=engine.name,
        model=model_label,
        segments=result.segments,
        seed=seed,
        heard_ms=result.heard_ms,
    )
    cache.store_json(target, transcript_to_json(transcript))
    return transcript


@dataclass(frozen=True)
class Heard:
    """What listening to one statement gave: the statement (its speech stream may have been chosen),
    and its transcript or the reason it cannot be used."""

    statement: Statement
    result: StatementTranscript | Rejection
    transcript_file: Path | None = None  # the stored transcript, for its provenance

    @property
    def no_text(self) -> bool:
        return isinstance(self.result, StatementTranscript) and self.result.no_text


@dataclass(frozen=True)
class EngineChoice:
    """The engine as a cache key names it, and how to load it when a transcript must be made."""

    engine_id: str  # in the key: the engine and its packages' versions (engines.cache_identity)
    model_id: str  # in the key: what the model is, by its content, without loading it
    model_label: str  # in the transcript: what the model is called
    load: Callable[[], Engine]


class Listener:
    """Speech audio and transcript of each statement, from the cache where still valid."""

    def __init__(
        self, *, steps: StageLog, work: WorkCache, hashes: HashCache, progress: Progress, engine: EngineChoice
    ) -> None:
        self.steps = steps
        self.work = work
        self.hashes = hashes
        self.progress = progress
        self.engine = engine

    # ---------------------------------------------------------------------------------------- keys

    def _audio_path(self, statement: Statement) -> Path:
        from pipeline import media

        return self.work.audio(audio_key(statement, media.speech_decoder()))

    def speech_audio(self, statement: Statement) -> Path | None:
        """The statement's speech audio as decoded for the engine, where the cache holds it."""
        path = self._audio_path(statement)
        return path if path.exists() else None

    def _transcript_path(self, audio_sha256: str, settings: TranscribeSettings) -> Path:
        key = transcription_key(audio_sha256, self.engine.engine_id, self.engine.model_id, settings)
        return self.work.transcript(key)

    def pending_speech_ms(self, statements: list[Statement]) -> int:
        """Speech audio still to be decoded, for the estimate of the disk space a run needs."""
        return sum(s.probe.duration_ms for s in statements if not self._audio_path(s).exists())

    # ---------------------------------------------------------------------------------------- plan

    def plan(
        self, meeting_dir: Path, statement: Statement, settings: TranscribeSettings
    ) -> tuple[list[PlannedStep], StatementTranscript | None]:
        """The steps that listening to ``statement`` takes, from what the cache holds, and the transcript
        the cache already holds for it (None: still to be made); runs nothing. With several audio streams
        the one with speech is chosen from their audio, so the transcript waits for it."""
        from pipeline import cache, media

        source = meeting_dir / statement.recording.relpath
        candidates = _speech_candidates(statement)
        streams = candidates if len(candidates) > 1 else [statement.audio_stream]
        planned: list[PlannedStep] = []
        for index in streams:
            path = self._audio_path(replace(statement, audio_stream=index))
            planned.append(
                PlannedStep(
                    "speech-audio",
                    statement.id,
                    path.stem,
                    cache.is_intact(path, self.hashes),
                    (statement.recording.relpath,),
                    media.speech_audio_plan(source, index, path),
                )
            )
        audio = self._audio_path(statement)
        if len(streams) > 1 or not planned[0].cached:
            waiting = PlannedStep(
                "transcribe", statement.id, None, False, after="its speech audio is decoded"
            )
            return [*planned, waiting], None
        target = self._transcript_path(self.hashes.sha256(audio), settings)
        stored = read_transcript(target)
        planned.append(
            PlannedStep(
                "transcribe", statement.id, target.stem, stored is not None, (f"work/audio/{audio.name}",)
            )
        )
        return planned, replace(stored, statement_id=statement.id) if stored else None

    # ----------------------------------------------------------------------------------------- run

    def listen(self, meeting_dir: Path, statement: Statement, settings: TranscribeSettings) -> Heard:
        """Decode, transcribe and judge one statement."""
        from pipeline import media

        statement = self._choose_speech_stream(meeting_dir, statement, settings)
        audio_path = self._speech_audio(meeting_dir, statement)
        if isinstance(audio_path, Rejection):
            return Heard(statement, audio_path)
        problem = truncation(statement, media.wav_duration_ms(audio_path))
        if problem:
            return Heard(statement, Rejection(statement.recording.relpath, problem))
        audio_sha = self.hashes.sha256(audio_path)
        target = self._transcript_path(audio_sha, settings)
        stored = read_transcript(target)
        with self.steps.stage("transcribe", statement.id, target.stem, stored is not None):
            if stored is not None:
                result = replace(stored, statement_id=statement.id)
            else:
                engine = self.engine.load()
                progress_key = f"listen-{statement.id}"
                self.progress.begin(progress_key, f"Transskriberer {statement.recording.relpath}")
                try:
                    result = run_transcription(
                        statement,
                        audio_path,
                        engine,
                        self.engine.model_label,
                        settings,
                        target,
                        audio_sha,
                        on_progress=lambda f: self.progress.update(progress_key, f),
                    )
                finally:
                    self.progress.end(progress_key)
        if not result.words:
            if no_words_upper_bound_rejects(result):
                return Heard(statement, Rejection(statement.recording.relpath, NO_SPEECH_REASON), target)
            heard_ms = speech_ms(media.read_wav_mono16k(audio_path), settings)
            verdict = judge_no_words(heard_ms)
            if verdict is not None:
                return Heard(statement, Rejection(statement.recording.relpath, verdict), target)
            log.warning(
                "%s: the voice detector hears %.1f s of speech, but no words were recognised; the "
                "statement goes into the clip and is flagged for a person to write its text",
                statement.recording.relpath,
                heard_ms / 1000,
            )
            result = replace(result, no_text=True)
        return Heard(statement, result, target)

    def _speech_audio(self, meeting_dir: Path, statement: Statement) -> Path | Rejection:
        """The statement's speech as 16 kHz mono WAV in the cache."""
        from pipeline import cache, media
        from pipeline.files import atomic_path

        source = meeting_dir / statement.recording.relpath
        audio_path = self._audio_path(statement)
        cached = cache.is_intact(audio_path, self.hashes)
        with self.steps.stage("speech-audio", statement.id, audio_path.stem, cached) as record:
            record.command = media.speech_audio_plan(source, statement.audio_stream, audio_path)
            if cached:
                return audio_path
            progress_key = f"audio-{statement.id}-{statement.audio_stream}"
            self.progress.begin(progress_key, f"Lyd fra {statement.recording.relpath}")
            try:
                with atomic_path(audio_path) as temp:
                    damage = media.extract_speech_audio(
                        source,
                        statement.audio_stream,
                        temp,
                        duration_ms=statement.probe.duration_ms,
                        on_progress=lambda f: self.progress.update(progress_key, f),
                    )
                cache.seal(audio_path, self.hashes)
                if damage:
                    log.warning(
                        "%s: the audio had damaged parts that were skipped (%s)",
                        statement.recording.relpath,
                        damage[-1],
                    )
            except PipelineError as error:
                return Rejection(statement.recording.relpath, f"audio cannot be decoded: {error}")
            finally:
                self.progress.end(progress_key)
        return audio_path

    def _choose_speech_stream(
        self, meeting_dir: Path, statement: Statement, settings: TranscribeSettings
    ) -> Statement:
        """With several audio streams (a camera's two microphones, a dubbed track), the one with speech."""
        from pipeline import media

        candidates = _speech_candidates(statement)
        if len(candidates) < 2:
            return statement
        speech: dict[int, int] = {}
        for index in candidates:
            audio = self._speech_audio(meeting_dir, replace(statement, audio_stream=index))
            if isinstance(audio, Path):
                speech[index] = speech_ms(media.read_wav_mono16k(audio), settings)
        if not speech:
            return statement
        best = max(speech, key=lambda index: (speech[index], -candidates.index(index)))
        position = candidates.index(best) + 1
        log.warning(
            "%s: using audio stream %d of %d, the one with the most speech (%s)",
            statement.recording.relpath,
            position,
            len(candidates),
            ", ".join(
                f"stream {candidates.index(i) + 1}: {ms / 1000:.1f} s speech" for i, ms in speech.items()
            ),
        )
        return replace(statement, audio_stream=best)


def _speech_candidates(statement: Statement) -> list[int]:
    return [a.index for a in statement.probe.audio if a.sample_rate and a.channels]
