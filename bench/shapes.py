"""Whisper models of a large model's shape, for measuring speed where the real weights cannot be fetched.

A model of Whisper large-v3's shape (32 encoder and 32 decoder layers, d_model 1280, 128 mel bands) and
one of large-v3-turbo's (the same encoder, 4 decoder layers), with random weights made by transformers
and converted with the same code path as `hearing models get` (``engines.convert.to_ctranslate2``, int8).
Made once and kept in the user's cache (``<cache>/bench-models/``), never in the repository. Their
vocabulary is base's (51865 tokens, that of large-v2; large-v3 has one language more): one row of the
output layer, no difference in the work.

A model of random weights would stop at once or run to the length limit, so ``forced`` makes it decode
as a real model decodes real speech: each 30 s window writes as many tokens as the base model writes for
that much speech (``TOKENS_PER_SECOND``, measured by ``base_token_rate``), the end token suppressed and
the new tokens capped, and what it wrote is then read as real Danish text of that many tokens (timestamps
at the window's two ends, a plausible score, no "no speech"), so faster-whisper and the pipeline do
everything after the decoding as they would with real words: no temperature fallback, the words timed,
the cues built. The words are nonsense for the audio; they are never reported as accuracy.

Run: python bench/shapes.py [large-v3 large-v3-turbo] makes (or finds) the models and prints their folders.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MEDIA = REPO / "tests" / "media"
WINDOW_S = 30.0
FRAMES_PER_SECOND = 100
MAX_LENGTH = 448


@dataclass(frozen=True)
class Shape:
    name: str
    decoder_layers: int
    alignment_heads: tuple[tuple[int, int], ...]  # as many as the real model's, in its decoder's layers
    encoder_layers: int = 32
    d_model: int = 1280
    heads: int = 20
    ffn: int = 5120
    mels: int = 128


SHAPES = {
    "large-v3": Shape(
        "large-v3",
        decoder_layers=32,
        alignment_heads=(
            (7, 0),
            (10, 17),
            (12, 18),
            (13, 12),
            (16, 1),
            (17, 14),
            (19, 11),
            (21, 4),
            (24, 1),
            (25, 6),
        ),
    ),
    "large-v3-turbo": Shape(
        "large-v3-turbo",
        decoder_layers=4,
        alignment_heads=((2, 4), (2, 11), (3, 3), (3, 6), (3, 11), (3, 14)),
    ),
}


def folder(shape: str) -> Path:
    sys.path.insert(0, str(REPO))
    from pipeline.files import cache_root

    return cache_root() / "bench-models" / f"{shape}-shape-ct2"


def ensure(shape: str) -> Path:
    """The converted model of ``shape``: made once (a few minutes and about 5 GB of memory for large-v3's),
    then found."""
    target = folder(shape)
    if (target / "model.bin").is_file():
        return target
    sys.path.insert(0, str(REPO))
    from pipeline.engines import convert

    source = target.parent / f".{shape}-transformers"
    shutil.rmtree(source, ignore_errors=True)
    started = time.monotonic()
    print(f"making a Whisper of {shape}'s shape with random weights (once) ...", flush=True)
    make_transformers(SHAPES[shape], source)
    print(f"  made in {time.monotonic() - started:.0f} s; converting ...", flush=True)
    try:
        convert.to_ctranslate2(source, target, quantization="int8")
    finally:
        shutil.rmtree(source, ignore_errors=True)
    print(f"  {target} ({_size_gb(target):.2f} GB) in {time.monotonic() - started:.0f} s", flush=True)
    return target


def _size_gb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.iterdir() if f.is_file()) / 1e9


def make_transformers(
    shape: Shape, source: Path, *, seed: int = 0, half: bool = True, preprocessor: bool = True
) -> Path:
    """A transformers Whisper of ``shape`` with random weights (``seed``), base's vocabulary and special
    tokens, saved in ``source`` with base's tokenizer.json and (``preprocessor``) a
    preprocessor_config.json: what `hearing models get` converts. (tests/test_convert.py makes its tiny
    models with it too.)"""
    import tokenizers
    import torch
    from transformers import GenerationConfig, WhisperConfig, WhisperForConditionalGeneration

    sys.path.insert(0, str(REPO))
    from pipeline.engines import embedded

    base = embedded.ensure_embedded_model().path
    base_config = json.loads((base / "config.json").read_text(encoding="utf-8"))
    tokenizer = tokenizers.Tokenizer.from_file(str(base / "tokenizer.json"))
    eot = tokenizer.token_to_id("<|endoftext|>")
    tokens = {
        "vocab_size": 51865,
        "suppress_tokens": base_config["suppress_ids"],
        "begin_suppress_tokens": base_config["suppress_ids_begin"],
        "decoder_start_token_id": tokenizer.token_to_id("<|startoftranscript|>"),
        "bos_token_id": eot,
        "eos_token_id": eot,
        "pad_token_id": eot,
    }
    config = WhisperConfig(
        num_mel_bins=shape.mels,
        d_model=shape.d_model,
        encoder_layers=shape.encoder_layers,
        decoder_layers=shape.decoder_layers,
        encoder_attention_heads=shape.heads,
        decoder_attention_heads=shape.heads,
        encoder_ffn_dim=shape.ffn,
        decoder_ffn_dim=shape.ffn,
        max_source_positions=1500,
        max_target_positions=448,
        **tokens,
    )
    torch.manual_seed(seed)
    with torch.no_grad():
        model = WhisperForConditionalGeneration(config)
        if half:  # large shapes: half the memory while saving; the conversion quantizes to int8 anyway
            model = model.half()
    model.generation_config = GenerationConfig(
        **tokens,
        lang_to_id={tokenizer.id_to_token(i): i for i in base_config["lang_ids"]},
        task_to_id={
            "transcribe": tokenizer.token_to_id("<|transcribe|>"),
            "translate": tokenizer.token_to_id("<|translate|>"),
        },
        no_timestamps_token_id=tokenizer.token_to_id("<|notimestamps|>"),
        is_multilingual=True,
        alignment_heads=[list(h) for h in shape.alignment_heads],
    )
    source.mkdir(parents=True)
    model.save_pretrained(source)
    del model
    shutil.copyfile(base / "tokenizer.json", source / "tokenizer.json")
    if preprocessor:
        (source / "preprocessor_config.json").write_text(
            json.dumps({"feature_extractor_type": "WhisperFeatureExtractor", "feature_size": shape.mels}),
            encoding="utf-8",
        )
    return source


# ------------------------------------------------------------------------------ realistic decoding


def danish_text() -> str:
    """The reference texts of the real Danish recordings, one after another: what the forced model is
    read as having written."""
    texts = [p.read_text(encoding="utf-8") for p in sorted(MEDIA.glob("da-*.ref.txt"))]
    return " ".join(" ".join(t.split()) for t in texts)


class _Words:
    """Text tokens of real Danish, handed out in order, round and round."""

    def __init__(self, tokenizer: Any) -> None:
        self.ids = list(tokenizer.encode(" " + danish_text()).ids)
        self.at = 0
        self._lock = threading.Lock()  # two statements heard at once take from it

    def take(self, count: int) -> list[int]:
        with self._lock:
            start, self.at = self.at, self.at + count
        return [self.ids[k % len(self.ids)] for k in range(start, start + count)]


@dataclass
class _Result:
    """What faster-whisper reads of a CTranslate2 generation result."""

    sequences_ids: list[list[int]]
    scores: list[float]
    no_speech_prob: float


class ForcedWhisper:
    """Stands in for ``ctranslate2.models.Whisper``: decodes as many tokens as real speech of the
    window's length would take, then reads them as real Danish text."""

    def __init__(self, model: Any, tokens_per_second: float, tokenizer: Any) -> None:
        self._model = model
        self._rate = tokens_per_second
        self._eot = tokenizer.token_to_id("<|endoftext|>")
        self._no_timestamps = tokenizer.token_to_id("<|notimestamps|>")
        self._timestamp_begin = self._no_timestamps + 1
        self._words = _Words(tokenizer)
        # Each window's seconds of speech, from its encoding to its generation. Per thread: a model of two
        # workers hears two statements at once, each from a thread of its own (faster-whisper encodes and
        # then generates a window on the thread that transcribes), and shared, one statement's windows
        # were decoded to the other's length and timestamps.
        self._local = threading.local()
        self._lock = threading.Lock()
        self.generated = 0
        self.windows: list[tuple[float, int]] = []  # (seconds of speech, tokens written) per window decoded

    def encode(self, features: Any, *args: Any, **kwargs: Any) -> Any:
        import numpy as np

        array = np.asarray(features)
        if array.ndim == 2:
            array = array[None]
        # faster-whisper pads a window's features with zeros to 30 s; real log-mel columns are never all zero.
        self._local.content_s = [float(np.any(a != 0, axis=0).sum()) / FRAMES_PER_SECOND for a in array]
        return self._model.encode(features, *args, **kwargs)

    def _content(self, index: int) -> float:
        content_s: list[float] = getattr(self._local, "content_s", [])
        return content_s[index] if index < len(content_s) else WINDOW_S

    def _tokens_for(self, index: int) -> int:
        content = self._content(index)
        return max(4, math.ceil(self._rate * content))

    def generate(self, encoder_output: Any, prompts: list[list[int]], **kwargs: Any) -> list[_Result]:
        counts = [self._tokens_for(i) for i in range(len(prompts))]
        # CTranslate2 writes at most half of ``max_length`` new tokens (as Whisper's own decoder samples
        # at most half its context), and no more than the prompt leaves of it.
        prompt = max(len(p) for p in prompts)
        kwargs["max_length"] = min(MAX_LENGTH, max(2 * max(counts), prompt - 1 + max(counts)))
        kwargs["suppress_tokens"] = [*list(kwargs.get("suppress_tokens") or [-1]), self._eot]
        raw = self._model.generate(encoder_output, prompts, **kwargs)
        results = []
        for i, (prompt, result) in enumerate(zip(prompts, raw, strict=True)):
            made = min(len(result.sequences_ids[0]) if result.sequences_ids else 0, counts[i])
            with self._lock:
                self.generated += made
                self.windows.append((self._content(i), made))
            results.append(self._as_words(prompt, made, i))
        return results

    def _as_words(self, prompt: list[int], count: int, index: int) -> _Result:
        timestamps = self._no_timestamps not in prompt
        if timestamps and count >= 3:
            content = self._content(index)
            end = self._timestamp_begin + min(1500, round(content / 0.02))
            ids = [self._timestamp_begin, *self._words.take(count - 2), end]
        else:
            ids = self._words.take(count)
        # An average log-probability of -0.25 per token: a confident decoding, no fallback.
        score = -0.25 * (len(ids) + 1) / max(len(ids), 1)
        return _Result(sequences_ids=[ids], scores=[score], no_speech_prob=0.0)

    def align(
        self,
        encoder_output: Any,
        start_sequence: Any,
        text_tokens: list[list[int]],
        num_frames: Any,
        **kwargs: Any,
    ) -> list[_Aligned]:
        """The aligner run as the model runs it (its time is part of the work measured), its result spread
        evenly over each window's speech: random weights' attention says nothing of where a word is, and
        timed by it a window's words could all fall into its last second, where no subtitles fit, and the
        run stop at its subtitle check."""
        results = self._model.align(encoder_output, start_sequence, text_tokens, num_frames, **kwargs)
        frames = num_frames if isinstance(num_frames, list) else [num_frames] * len(text_tokens)
        return [
            _Aligned(evenly(len(tokens) + 1, max(1, n // 2)), result.text_token_probs)
            for result, tokens, n in zip(results, text_tokens, frames, strict=True)
        ]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


@dataclass
class _Aligned:
    """What faster-whisper reads of a CTranslate2 alignment result: (text index, time index) pairs."""

    alignments: list[tuple[int, int]]
    text_token_probs: list[float]


def evenly(texts: int, times: int) -> list[tuple[int, int]]:
    """A path through every text index and every time index (the encoder's 20 ms steps), each text token
    given an equal share of the time, as dynamic time warping returns one."""
    steps = max(texts, times)
    return [(k * texts // steps, k * times // steps) for k in range(steps)]


def forcing(tokens_per_second: float, original: Any) -> Any:
    """A stand-in for the class ``original`` (``ctranslate2.models.Whisper``) whose models decode as
    ``ForcedWhisper``."""
    import tokenizers

    def whisper(model_path: str, *args: Any, **kwargs: Any) -> ForcedWhisper:
        tokenizer = tokenizers.Tokenizer.from_file(str(Path(model_path) / "tokenizer.json"))
        return ForcedWhisper(original(model_path, *args, **kwargs), tokens_per_second, tokenizer)

    whisper.forced = True  # type: ignore[attr-defined]
    return whisper


def forced(tokens_per_second: float) -> None:
    """From now on every CTranslate2 Whisper model this process loads decodes as ``ForcedWhisper``."""
    import ctranslate2

    if not getattr(ctranslate2.models.Whisper, "forced", False):
        ctranslate2.models.Whisper = forcing(tokens_per_second, ctranslate2.models.Whisper)


def base_token_rate(recordings: list[Path]) -> float:
    """Tokens the embedded base model writes per second of speech (after its voice detection), timestamps
    included, over ``recordings``: how much a real model decodes for real Danish speech."""
    sys.path.insert(0, str(REPO))
    from faster_whisper import WhisperModel, decode_audio

    from pipeline.engines import embedded

    model = WhisperModel(str(embedded.ensure_embedded_model().path), device="cpu", compute_type="int8")
    tokens = 0
    heard = 0.0
    for recording in recordings:
        audio = decode_audio(str(recording), sampling_rate=16000)
        segments, info = model.transcribe(audio, language="da", vad_filter=True)
        tokens += sum(len(s.tokens) for s in segments)
        heard += float(info.duration_after_vad)
    return tokens / heard


def danish_recordings() -> list[Path]:
    """The real Danish recordings of the repository that have a reference text."""
    return sorted(p for p in MEDIA.iterdir() if re.match(r"(da|nst)-", p.name) and _has_reference(p))


def _has_reference(path: Path) -> bool:
    return not path.name.endswith(".txt") and path.with_suffix(".ref.txt").is_file()


def _main(names: list[str]) -> Iterator[str]:
    for name in names or list(SHAPES):
        yield str(ensure(name))


if __name__ == "__main__":
    for line in _main(sys.argv[1:]):
        print(line)
