"""faster-whisper: Whisper on CTranslate2, int8 on the CPU or float16 on a CUDA GPU (``device``). The
default engine."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.engines import word_times
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
    speech_regions_ms,
    words_at,
)
from pipeline.engines.device import CPU_INT8, DeviceChoice
from pipeline.errors import MissingToolError, ModelError
from pipeline.models import Word

if TYPE_CHECKING:
    import numpy as np

NAME = "faster-whisper"
REDECODE_TEMPERATURES = (0.0, 0.4, 0.8)
NAME_FIX = "run once online with --model {name} to cache it, or pass --model /path/to/model"


def _version() -> str:
    try:
        return metadata.version("faster-whisper")
    except metadata.PackageNotFoundError:
        raise MissingToolError(
            "faster-whisper is not installed", "pip install hearing-pipeline (it is a dependency)"
        ) from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    line = text[0] if text else type(error).__name__
    return line if len(line) <= 200 else line[:197] + "…"


# A model folder whose weights are at least this large (medium, large-v3, turbo, Røst; base is 145 MB
# in int8) is worth every core to the engine: see engine_threads.
LARGE_MODEL_BYTES = 500_000_000


def engine_threads(cores: int, model_bytes: int) -> int:
    """How many threads the engine computes with.

    A small model gets one core fewer than the machine has: the run renders each statement on it while
    the engine listens to the next, and on two cores one thread was even faster for base alone than two
    (17.8 s against 20.7 s for the real Danish recordings, bench/large_bench.py's notes). A large
    model's matrices are worth splitting: with turbo's shape two threads took 64 s where one took 110 s
    for the same recordings, so it gets every core, and the render done meanwhile (at a lower priority)
    takes what the engine leaves. The words do not depend on the number of threads."""
    if model_bytes >= LARGE_MODEL_BYTES:
        return max(1, cores)
    return max(1, cores - 1)


# Side by side pays for a deep decoder only: large-v3's 32 layers, not turbo's 4 (whose work is mostly
# the encoder, which splits well over threads: two statements at once took 87 s on one thread each and
# 74 s on every core each, where one after the other took 70 s). On a queue of five statements turbo's
# engine alone was faster two at a time (52 s against 57 s), but the run was not (105 s against 93-97
# s): the engine then keeps both cores, and the statements heard wait for their render until the last
# word.
DEEP_DECODER_LAYERS = 8


def listening(
    cores: int, model_bytes: int, lengths_ms: Sequence[int], decoder_layers: int
) -> tuple[int, int]:
    """How many statements of these lengths the engine listens to at once, and on how many threads each.

    A large model's decoder reads all its weights for every token it writes, and two threads on one
    statement do not keep two cores busy: with large-v3's shape on two cores five statements of a queue
    took 303 s two at a time against 405 s one after another (bench/large_bench.py's children). Each of
    the two workers computes on every core: two at once the same 303 s as on one thread each, and a
    statement that ends up alone (the last of a queue, a long reading beside a short statement) keeps
    every core, where on one thread it took 1.36 times as long; so a long reading and a short statement
    too are heard side by side (332 s against 358 s one after another; on one thread each it was 191 s
    against 167 s). Those children's figures came from a forced model that could lend a window's length
    to the other statement (docs/performance.md); measured again with it mended, the whole run of the
    queue heard its statements in 0.85 times the bare engine's time. The weights are shared; the second
    worker costs about 0.7 GB. A small model hears one at a time (``engine_threads``)."""
    small = model_bytes < LARGE_MODEL_BYTES or cores < 2 or decoder_layers < DEEP_DECODER_LAYERS
    threads = engine_threads(cores, model_bytes)
    if small or len(lengths_ms) < 2:
        return 1, threads
    return 2, threads


def decoder_depth(model_dir: Path) -> int:
    """How deep the model's decoder is, at least: its cross-attention heads for word times lie in its
    layers (CTranslate2's config.json); 0 where that cannot be read."""
    import json

    try:
        heads = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))["alignment_heads"]
        return 1 + max(int(layer) for layer, _head in heads)
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def _weights_bytes(model_dir: Path) -> int:
    try:
        return (model_dir / "model.bin").stat().st_size
    except OSError:
        return 0


class FasterWhisperEngine:
    """Runs a CTranslate2 Whisper model folder with faster-whisper."""

    name = NAME

    def __init__(
        self,
        model_dir: Path,
        info: ModelInfo,
        device: DeviceChoice = CPU_INT8,
        workers: int | None = None,
        hearing: Sequence[int] = (),
    ) -> None:
        """``hearing``: the lengths (ms, 0 where not known yet) of the statements it is to hear first; it
        is built set up for them (``listening``), so that a large model is not built a second time for
        two at once (``listen_to``), with both copies of its weights in memory for a moment."""
        from faster_whisper import WhisperModel

        self.version = _version()
        self.model = info
        self.device = device
        self._model_dir = model_dir
        self._weights = _weights_bytes(model_dir)
        self._depth = decoder_depth(model_dir)
        wanted, self._threads = listening(os.cpu_count() or 1, self._weights, hearing, self._depth)
        # How many statements are transcribed at once, each from a thread of its own (``listen_to``).
        self.workers = max(1, workers or wanted)
        self._alone: FasterWhisperEngine | None = None
        self._alone_lock = threading.Lock()
        try:
            self._whisper = WhisperModel(
                str(model_dir),
                device=device.device,
                compute_type=device.compute_type,
                cpu_threads=self._threads,
                num_workers=self.workers,
            )
        except Exception as error:  # ctranslate2 raises RuntimeError/ValueError for broken folders
            if device.device != "cpu":
                # A GPU found but not usable (its CUDA libraries missing, out of memory): the folder is
                # not to blame.
                raise ModelError(
                    f"faster-whisper cannot load {model_dir.name} on {device.device} in "
                    f"{device.compute_type} ({_first_line(error)})",
                    "run with --device cpu (or set HEARING_DEVICE=cpu)",
                ) from error
            raise ModelError(
                f"faster-whisper cannot load the model in {model_dir} ({_first_line(error)})",
                "pass --model with a CTranslate2 Whisper model folder (model.bin, config.json, "
                "tokenizer.json), or delete the folder if it is a cached download",
            ) from error
        self._sampler = _SamplingWatch(self._whisper.model)
        self._whisper.model = self._sampler
        self._memory = word_times.remember(self._whisper)

    @property
    def model_dir(self) -> Path:
        return self._model_dir

    @property
    def threads(self) -> int:
        """The threads each statement heard is decoded on."""
        return self._threads

    @property
    def decoded_again_alone(self) -> bool:
        """Whether a statement that sampled beside another was decoded again alone (``transcribe``)."""
        return self._alone is not None

    def listen_to(self, lengths_ms: Sequence[int]) -> int:
        """Set up to hear statements of these lengths (``listening``); how many it hears at once."""
        workers, threads = listening(os.cpu_count() or 1, self._weights, lengths_ms, self._depth)
        if threads == self._threads and workers < self.workers:
            # Each worker computes on every core, so one statement is heard as fast by an engine of
            # two: not loaded again (`hearing watch` hears one, then two that landed at once, then one).
            return self.workers
        if (workers, threads) != (self.workers, self._threads):
            self.workers, self._threads = workers, threads
            self._load_model()
        return self.workers

    def _load_model(self) -> None:
        """The CTranslate2 model loaded afresh with this engine's workers and threads, fresh random
        generators with it, behind the sampling watch."""
        import ctranslate2

        model = ctranslate2.models.Whisper(
            str(self._model_dir),
            device=self.device.device,
            compute_type=self.device.compute_type,
            inter_threads=self.workers,
            intra_threads=self._threads,
        )
        self._sampler = _SamplingWatch(model)
        self._whisper.model = self._sampler

    def _seed(self, seed: int) -> None:
        """Seed the random draws of the next transcription.

        CTranslate2 gives each of its worker threads a generator seeded once, at the thread's first
        draw, from the seed set then; a later ``set_random_seed`` does not reach it. So once the model
        has sampled (Whisper's temperature fallback), it is loaded afresh (a fraction of a second for
        base), and every statement's words depend on its own audio only, not on what came before.
        """
        import ctranslate2

        ctranslate2.set_random_seed(seed)
        if self._sampler.sampled:
            self._load_model()

    def transcribe(
        self,
        audio: np.ndarray,
        settings: TranscribeSettings,
        on_progress: ProgressCallback | None = None,
        seed: int | None = None,
    ) -> EngineResult:
        if self.workers == 1:
            if seed is not None:
                self._seed(seed)
            return self._decode(audio, settings, on_progress)
        self._sampler.begin_call()
        result = self._decode(audio, settings, on_progress)
        if seed is None or not self._sampler.sampled_in_call():
            return result
        # It sampled (Whisper's temperature fallback) from a generator another statement may have drawn
        # from: its words would depend on what ran beside it. Decoded again alone, seeded, as an engine
        # of one worker decodes it, so they depend on its own audio only.
        return self._decoded_alone(audio, settings, on_progress, seed)

    def _decoded_alone(
        self, audio: np.ndarray, settings: TranscribeSettings, on_progress: ProgressCallback | None, seed: int
    ) -> EngineResult:
        with self._alone_lock:
            if self._alone is None:
                self._alone = FasterWhisperEngine(self._model_dir, self.model, self.device, workers=1)
            return self._alone.transcribe(audio, settings, on_progress, seed)

    def _decode(
        self, audio: np.ndarray, settings: TranscribeSettings, on_progress: ProgressCallback | None
    ) -> EngineResult:
        samples = mono_16k(audio)
        audio_ms = duration_ms(samples)
        total_s = len(samples) / SAMPLE_RATE
        if on_progress:
            on_progress(0.0)
        vad_parameters: dict[str, Any] | None = None
        if settings.vad:
            vad_parameters = {
                "threshold": settings.vad_threshold,
                "min_silence_duration_ms": settings.vad_min_silence_ms,
                "speech_pad_ms": settings.vad_speech_pad_ms,
            }
        options: dict[str, Any] = {
            "task": "transcribe",
            "beam_size": settings.beam_size,
            "condition_on_previous_text": settings.condition_on_previous_text,
            "compression_ratio_threshold": settings.compression_ratio_threshold,
            "log_prob_threshold": settings.log_prob_threshold,
            "no_speech_threshold": settings.no_speech_threshold,
            "initial_prompt": settings.prompt,
        }
        decoded: Iterable[Any]
        heard: float | None
        if settings.word_timestamps and settings.time_words_after_decoding:
            decoded, heard = word_times.transcribe(
                self._whisper,
                self._memory,
                samples,
                language=settings.language,
                vad_options=vad_parameters,
                options=options,
            )
        else:
            # Skipping "hallucinated" silence needs the words timed while decoding (its rule reads them).
            raw_segments, info = self._whisper.transcribe(
                samples,
                language=settings.language,
                word_timestamps=settings.word_timestamps,
                vad_filter=settings.vad,
                vad_parameters=vad_parameters,
                hallucination_silence_threshold=settings.hallucination_silence_threshold,
                **options,
            )
            decoded = (_as_timed(raw) for raw in raw_segments)
            heard = getattr(info, "duration_after_vad", None)
        segments = []
        # The result is a generator: decoding happens while it is consumed, so progress is live.
        for raw in decoded:
            segment = make_segment(
                start=raw.start,
                end=raw.end,
                text=raw.text,
                words=raw.words,
                avg_logprob=raw.avg_logprob,
                no_speech_prob=raw.no_speech_prob,
                compression_ratio=raw.compression_ratio,
                audio_ms=audio_ms,
            )
            if segment is not None:
                segments.append(segment)
            if on_progress and total_s > 0:
                on_progress(min(float(raw.end) / total_s, 1.0))
        segments = list(redecode_loops(segments, self._redecoder(samples, settings)))
        speech = once(lambda: speech_regions_ms(samples, settings))
        segments = list(flag_credits(segments, speech))
        if on_progress:
            on_progress(1.0)
        return EngineResult(
            language=settings.language,
            segments=add_review_flags(segments, settings, speech),
            heard_ms=round(heard * 1000) if heard is not None else None,
        )

    def align(self, audio: np.ndarray, text: str, language: str) -> list[tuple[str, int, int, float]]:
        """Where each word of ``text`` is heard in ``audio`` (at most one 30 s window): faster-whisper's
        own word alignment (Whisper's cross-attention, as for the words it writes), in ms from the
        start of ``audio``."""
        import numpy as np
        from faster_whisper.tokenizer import Tokenizer

        samples = mono_16k(audio)
        whisper = self._whisper
        features = whisper.feature_extractor(samples)
        window = int(getattr(whisper.feature_extractor, "nb_max_frames", 3000))
        frames = min(features.shape[-1], window)
        features = np.pad(features[:, :frames], ((0, 0), (0, window - frames)))
        encoded = whisper.encode(features)
        tokenizer = Tokenizer(
            whisper.hf_tokenizer, whisper.model.is_multilingual, task="transcribe", language=language
        )
        tokens = tokenizer.encode(" " + " ".join(text.split()))
        (found,) = whisper.find_alignment(tokenizer, [tokens], encoded, frames) or ([],)
        return [
            (
                str(w["word"]),
                round(float(w["start"]) * 1000),
                round(float(w["end"]) * 1000),
                float(w["probability"]),
            )
            for w in found
        ]

    def _redecoder(self, samples: np.ndarray, settings: TranscribeSettings) -> Redecode:
        """Decodes a stretch again where Whisper looped: without conditioning, with no 3-word phrase
        allowed twice, falling back to sampling only if that fails its checks."""
        audio_ms = duration_ms(samples)

        def redecode(start_ms: int, end_ms: int) -> list[Word]:
            piece = samples[start_ms * SAMPLE_RATE // 1000 : end_ms * SAMPLE_RATE // 1000]
            raw_segments, _info = self._whisper.transcribe(
                piece,
                language=settings.language,
                task="transcribe",
                beam_size=settings.beam_size,
                temperature=REDECODE_TEMPERATURES,
                condition_on_previous_text=False,
                word_timestamps=True,
                vad_filter=False,
                no_repeat_ngram_size=3,
                compression_ratio_threshold=settings.compression_ratio_threshold,
                log_prob_threshold=settings.log_prob_threshold,
                no_speech_threshold=settings.no_speech_threshold,
            )
            raw_words = ((w.start, w.end, w.word, w.probability) for r in raw_segments for w in r.words or ())
            return words_at(raw_words, start_ms, audio_ms)

        return redecode


def _as_timed(raw: Any) -> word_times.TimedSegment:
    return word_times.TimedSegment(
        start=raw.start,
        end=raw.end,
        text=raw.text,
        words=tuple((w.start, w.end, w.word, w.probability) for w in raw.words or ()),
        avg_logprob=raw.avg_logprob,
        no_speech_prob=raw.no_speech_prob,
        compression_ratio=raw.compression_ratio,
    )


class _SamplingWatch:
    """Stands in for the CTranslate2 model inside faster-whisper and notes whether a decode sampled
    (a temperature above zero), which draws from the model's thread-local random generators."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self.sampled = False
        self._call = threading.local()  # of the transcription on this thread, with several at once

    def begin_call(self) -> None:
        self._call.sampled = False

    def sampled_in_call(self) -> bool:
        return bool(getattr(self._call, "sampled", False))

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        if float(kwargs.get("sampling_temperature") or 0) > 0:
            self.sampled = True
            self._call.sampled = True
        return self._model.generate(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


def load_path(
    path: Path, device: DeviceChoice = CPU_INT8, hearing: Sequence[int] = ()
) -> FasterWhisperEngine:
    folder = model_location(NAME, path)
    return FasterWhisperEngine(
        folder, ModelInfo(folder.name, "path", str(folder), None), device, hearing=hearing
    )


def load_embedded(device: DeviceChoice = CPU_INT8, hearing: Sequence[int] = ()) -> FasterWhisperEngine:
    from pipeline.engines import embedded

    model = embedded.ensure_embedded_model()
    info = ModelInfo(embedded.NAME, "embedded", str(model.path), model.sha256)
    return FasterWhisperEngine(model.path, info, device, hearing=hearing)


def load_named(
    name: str, device: DeviceChoice = CPU_INT8, hearing: Sequence[int] = ()
) -> FasterWhisperEngine:
    """A model by name ("small", "large-v3") or Hugging Face id: the local cache first, then the
    network. Offline and not cached is a ModelError that says how to get it."""
    from faster_whisper.utils import available_models, download_model

    if "/" not in name and name not in available_models():
        raise ModelError(
            f"faster-whisper has no model named {name!r} (known: {', '.join(available_models())})",
            "pass one of those names, a Hugging Face id such as Systran/faster-whisper-small, "
            "or --model /path/to/model",
        )
    try:
        folder = download_model(name, local_files_only=True)
        source = "cache"
    except Exception:  # not in the Hugging Face cache: try the network
        try:
            folder = download_model(name, local_files_only=False)
            source = "download"
        except Exception as error:
            raise ModelError(
                f"model {name!r} is not cached for faster-whisper and could not be downloaded "
                f"({_first_line(error)})",
                NAME_FIX.format(name=name),
            ) from error
    info = ModelInfo(name, source, str(folder), None)
    return FasterWhisperEngine(Path(folder), info, device, hearing=hearing)
