"""openai-whisper (the optional extra ``[openai]``): the reference implementation on PyTorch, fp32 on CPU.

openai-whisper has no voice activity detection, so faster-whisper's Silero VAD (always installed) finds
the speech and openai-whisper decodes only those regions (``clip_timestamps``): without it, long silences
invite invented text.
"""

from __future__ import annotations

import importlib
import threading
import types
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.engines.base import (
    SAMPLE_RATE,
    EngineResult,
    ModelInfo,
    ProgressCallback,
    Redecode,
    TranscribeSettings,
    add_review_flags,
    duration_ms,
    flag_credits,
    make_segment,
    model_location,
    mono_16k,
    once,
    redecode_loops,
    speech_chunks,
    speech_regions_ms,
    words_at,
)
from pipeline.errors import MissingToolError, ModelError
from pipeline.models import Word

if TYPE_CHECKING:
    import numpy as np

NAME = "openai-whisper"
INSTALL_HINT = "pip install 'hearing-pipeline[openai]'"
REDECODE_TEMPERATURES = (0.4, 0.8)
NAME_FIX = "run once online with --model {name} to cache it, or pass --model /path/to/model"
# The progress hook swaps a module global inside openai-whisper for the duration of one call.
_progress_lock = threading.Lock()


def import_whisper() -> types.ModuleType:
    try:
        import whisper
    except ImportError as error:
        raise MissingToolError("openai-whisper is not installed", INSTALL_HINT) from error
    return whisper


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    line = text[0] if text else type(error).__name__
    return line if len(line) <= 200 else line[:197] + "…"


def download_root() -> Path:
    from pipeline.engines.embedded import cache_root

    return cache_root() / "openai-whisper"


class _ProgressBar:
    """Stands in for the tqdm bar openai-whisper drives (in mel frames) and reports a share instead."""

    def __init__(self, report: ProgressCallback, speech_frames: int) -> None:
        self._report = report
        self._total = max(speech_frames, 1)
        self._done = 0

    def __enter__(self) -> _ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int = 1) -> None:
        # Frames skipped between clips are never counted, so the share is of the speech only.
        self._done += max(int(n), 0)
        self._report(min(self._done / self._total, 1.0))


@contextmanager
def _reporting_progress(report: ProgressCallback | None, speech_frames: int) -> Iterator[None]:
    # Not "import whisper.transcribe": the package re-exports a function under that name.
    module: Any = importlib.import_module("whisper.transcribe")
    original = getattr(module, "tqdm", None)
    if report is None or original is None or not hasattr(original, "tqdm"):
        yield
        return
    with _progress_lock:
        bar = _ProgressBar(report, speech_frames)
        module.tqdm = types.SimpleNamespace(tqdm=lambda *args, **kwargs: bar)
        try:
            yield
        finally:
            module.tqdm = original


def speech_regions(audio: np.ndarray, settings: TranscribeSettings) -> list[tuple[float, float]]:
    """Where Silero VAD hears speech, in seconds, with the settings' threshold, silence and padding."""
    chunks = speech_chunks(audio, settings, settings.vad_speech_pad_ms)
    return [(start / SAMPLE_RATE, end / SAMPLE_RATE) for start, end in chunks]


MEL_HOP = 160  # samples per mel frame in openai-whisper (10 ms at 16 kHz)


def clip_times(regions: list[tuple[float, float]], samples: int) -> list[float]:
    """openai-whisper's ``clip_timestamps`` for the speech regions, every one inside the mel frames the
    audio has. A clip that ends even one frame past them never ends: openai-whisper then decodes a
    zero-length window over and over without moving on (seen on the demo: an 18.00 s region over 1799
    frames)."""
    frames = samples // MEL_HOP
    out: list[float] = []
    for start, end in regions:
        first = min(round(start * 100), frames)
        last = min(round(end * 100), frames)
        if last > first:
            out += [first / 100, last / 100]
    return out


# Pauses up to this long stay inside one clip of speech (openai-whisper decodes each clip on its own).
MERGE_GAP_S = 2.0


def merge_regions(regions: list[tuple[float, float]], max_gap_s: float) -> list[tuple[float, float]]:
    """Join speech regions separated by pauses of at most ``max_gap_s``.

    openai-whisper decodes every clip on its own, in its own 30 s window: a sentence cut at a breath
    loses its context (and each clip costs a full encoder pass), while Whisper itself copes well with
    short pauses. Longer silences stay outside the clips, where nothing can be invented.
    """
    merged: list[tuple[float, float]] = []
    for start, end in regions:
        if merged and start - merged[-1][1] <= max_gap_s:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


class OpenAIWhisperEngine:
    """Runs an openai-whisper model (a loaded ``whisper.model.Whisper``) on the CPU in fp32."""

    name = NAME

    def __init__(self, whisper_model: Any, info: ModelInfo) -> None:
        self.version = metadata.version("openai-whisper")
        self.model = info
        self._whisper = whisper_model

    def transcribe(
        self,
        audio: np.ndarray,
        settings: TranscribeSettings,
        on_progress: ProgressCallback | None = None,
        seed: int | None = None,
    ) -> EngineResult:
        samples = mono_16k(audio)
        if seed is not None:
            import torch

            # openai-whisper samples its temperature fallback with torch's global generator.
            torch.manual_seed(seed)
        audio_ms = duration_ms(samples)
        total_s = len(samples) / SAMPLE_RATE
        if on_progress:
            on_progress(0.0)
        if settings.vad:
            regions = merge_regions(speech_regions(samples, settings), MERGE_GAP_S)
        else:
            regions = [(0.0, total_s)] if len(samples) else []
        if not regions:
            if on_progress:
                on_progress(1.0)
            return EngineResult(language=settings.language, segments=(), heard_ms=0)
        heard_ms = round(sum(end - start for start, end in regions) * 1000)

        clip_timestamps = clip_times(regions, len(samples))
        frames_per_second = 100  # openai-whisper's mel hop is 10 ms
        speech_frames = round(sum(end - start for start, end in regions) * frames_per_second)
        with _reporting_progress(on_progress, speech_frames):
            result = self._whisper.transcribe(
                samples,
                verbose=None,  # None: neither the text nor a progress bar on stdout/stderr
                language=settings.language,
                task="transcribe",
                fp16=False,
                beam_size=settings.beam_size,
                # faster-whisper's default; openai-whisper would otherwise sample a single candidate
                # when it falls back to a higher temperature.
                best_of=5,
                condition_on_previous_text=settings.condition_on_previous_text,
                word_timestamps=settings.word_timestamps,
                hallucination_silence_threshold=(
                    settings.hallucination_silence_threshold if settings.word_timestamps else None
                ),
                compression_ratio_threshold=settings.compression_ratio_threshold,
                logprob_threshold=settings.log_prob_threshold,
                no_speech_threshold=settings.no_speech_threshold,
                clip_timestamps=clip_timestamps,
                initial_prompt=settings.prompt,
            )
        segments = []
        for raw in result["segments"]:
            segment = make_segment(
                start=raw["start"],
                end=raw["end"],
                text=raw["text"],
                words=((w["start"], w["end"], w["word"], w["probability"]) for w in raw.get("words") or ()),
                avg_logprob=raw["avg_logprob"],
                no_speech_prob=raw["no_speech_prob"],
                compression_ratio=raw["compression_ratio"],
                audio_ms=audio_ms,
            )
            if segment is not None:
                segments.append(segment)
        segments = list(redecode_loops(segments, self._redecoder(samples, settings)))
        speech = once(lambda: speech_regions_ms(samples, settings))
        segments = list(flag_credits(segments, speech))
        if on_progress:
            on_progress(1.0)
        return EngineResult(
            language=settings.language,
            segments=add_review_flags(segments, settings, speech),
            heard_ms=heard_ms,
        )

    def align(self, audio: np.ndarray, text: str, language: str) -> list[tuple[str, int, int, float]]:
        """Where each word of ``text`` is heard in ``audio`` (at most one 30 s window): openai-whisper's
        own word alignment (``whisper.timing.find_alignment``), in ms from the start of ``audio``."""
        import torch
        from whisper.audio import HOP_LENGTH, N_FRAMES, log_mel_spectrogram, pad_or_trim
        from whisper.timing import find_alignment
        from whisper.tokenizer import get_tokenizer

        samples = mono_16k(audio)
        model = self._whisper
        frames = min(len(samples) // HOP_LENGTH, N_FRAMES)
        mel = pad_or_trim(log_mel_spectrogram(samples, model.dims.n_mels), N_FRAMES)
        tokenizer = get_tokenizer(
            model.is_multilingual, num_languages=model.num_languages, language=language, task="transcribe"
        )
        tokens = tokenizer.encode(" " + " ".join(text.split()))
        with torch.no_grad():
            found = find_alignment(model, tokenizer, tokens, mel.to(model.device), frames)
        return [(w.word, round(w.start * 1000), round(w.end * 1000), float(w.probability)) for w in found]

    def _redecoder(self, samples: np.ndarray, settings: TranscribeSettings) -> Redecode:
        """Decodes a stretch again where Whisper looped: without conditioning and at a higher
        temperature (openai-whisper has no way to forbid repeated phrases)."""
        audio_ms = duration_ms(samples)

        def redecode(start_ms: int, end_ms: int) -> list[Word]:
            piece = samples[start_ms * SAMPLE_RATE // 1000 : end_ms * SAMPLE_RATE // 1000]
            result = self._whisper.transcribe(
                piece,
                verbose=None,
                language=settings.language,
                task="transcribe",
                fp16=False,
                best_of=5,
                temperature=REDECODE_TEMPERATURES,
                condition_on_previous_text=False,
                word_timestamps=True,
                compression_ratio_threshold=settings.compression_ratio_threshold,
                logprob_threshold=settings.log_prob_threshold,
                no_speech_threshold=settings.no_speech_threshold,
            )
            raw_words = (
                (w["start"], w["end"], w["word"], w["probability"])
                for r in result["segments"]
                for w in r.get("words") or ()
            )
            return words_at(raw_words, start_ms, audio_ms)

        return redecode


def _load_checkpoint(path: Path, info: ModelInfo, alignment_heads: bytes | None) -> OpenAIWhisperEngine:
    whisper = import_whisper()
    try:
        model = whisper.load_model(str(path), device="cpu")
    except Exception as error:  # torch raises many kinds for a file that is not a checkpoint
        raise ModelError(
            f"openai-whisper cannot load {path} ({_first_line(error)})",
            "pass --model with a Whisper checkpoint (.pt) or a CTranslate2 model folder",
        ) from error
    if alignment_heads is not None:
        model.set_alignment_heads(alignment_heads)
    return OpenAIWhisperEngine(model, info)


def load_ct2_folder(
    folder: Path, name: str, source: str, model_bin_sha256: str | None = None, target: Path | None = None
) -> OpenAIWhisperEngine:
    """A CTranslate2 Whisper folder, converted once to an openai-whisper checkpoint (cached)."""
    from pipeline.engines import ct2

    import_whisper()  # before a conversion that would be wasted without it
    converted = ct2.ensure_converted(
        folder / "model.bin", folder / "config.json", target=target, source_sha256=model_bin_sha256
    )
    info = ModelInfo(name, source, str(converted.path), converted.sha256)
    return _load_checkpoint(converted.path, info, converted.alignment_heads_dump())


def load_embedded() -> OpenAIWhisperEngine:
    from pipeline.engines import embedded

    import_whisper()
    model = embedded.ensure_embedded_model()
    target = embedded.models_dir() / "whisper-base-openai.pt"
    return load_ct2_folder(model.path, embedded.NAME, "embedded", model.sha256, target)


def load_path(path: Path) -> OpenAIWhisperEngine:
    target = model_location(NAME, path)
    if target.is_dir():
        return load_ct2_folder(target, target.name, "path")
    return _load_checkpoint(target, ModelInfo(target.stem, "path", str(target), None), None)


def load_named(name: str) -> OpenAIWhisperEngine:
    """An official model name, from openai-whisper's download folder in our cache, or downloaded."""
    whisper = import_whisper()
    if name not in whisper.available_models():
        raise ModelError(
            f"openai-whisper has no model named {name!r} (known: {', '.join(whisper.available_models())})",
            "pass one of those names, or --model /path/to/model",
        )
    root = download_root()
    url = whisper._MODELS[name]
    cached = root / Path(url).name
    source = "cache" if cached.is_file() else "download"
    try:
        model = whisper.load_model(name, device="cpu", download_root=str(root))
    except Exception as error:  # urllib errors offline, RuntimeError on a bad checksum
        raise ModelError(
            f"model {name!r} is not cached for openai-whisper and could not be downloaded "
            f"({_first_line(error)})",
            NAME_FIX.format(name=name),
        ) from error
    # openai-whisper checks the file against the SHA-256 in its download address.
    sha256 = url.split("/")[-2]
    return OpenAIWhisperEngine(model, ModelInfo(name, source, str(cached), sha256))
