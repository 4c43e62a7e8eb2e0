"""Two statements heard at once (issue 28): the engine of a large model listens to two statements side by
side, each from a thread of its own; the words must be those heard one after another."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import MEDIA, REPO, DemoRun, ModelBuilds

from pipeline.engines import faster, load_engine, side_by_side
from pipeline.engines.base import TranscribeSettings, seed_for

DEMO = REPO / "samples" / "borgermoede-nordby"


def test_a_large_model_with_a_deep_decoder_hears_two_at_once_each_on_every_core(tmp_path: Path) -> None:
    large, small, deep = faster.LARGE_MODEL_BYTES, faster.LARGE_MODEL_BYTES - 1, 32
    queue = [27_000, 24_000, 33_000, 31_000, 39_000]  # five statements at the camera
    for cores in (2, 4, 8):
        # Each of the two workers on every core: one left alone (a queue's last statement, a long reading
        # beside a short one) keeps every core.
        assert faster.listening(cores, large, queue, deep) == (2, cores)
        assert faster.listening(cores, large, [40_000, 40_000], deep) == (2, cores)
        assert faster.listening(cores, large, [116_000, 42_000], deep) == (2, cores)
        assert faster.listening(cores, large, [60_000], deep) == (1, cores)
        assert faster.listening(cores, large, queue, 4) == (1, cores)  # turbo: its work is the encoder's
        assert faster.listening(cores, small, queue, deep) == (1, cores - 1)  # the render gets a core
    assert faster.listening(1, large, queue, deep) == (1, 1)  # one core: nothing to share
    assert faster.listening(2, 0, queue, deep) == (1, 1)  # weights not readable: counted as small
    assert side_by_side(object(), queue) == 1  # an engine that does not say (openai-whisper)
    one = load_engine("faster-whisper")
    assert isinstance(one, faster.FasterWhisperEngine)
    assert faster.decoder_depth(one.model_dir) == 6  # base's alignment heads reach its sixth layer
    assert faster.decoder_depth(tmp_path) == 0
    (tmp_path / "config.json").write_text('{"alignment_heads": "none"}', encoding="utf-8")
    assert faster.decoder_depth(tmp_path) == 0


def test_a_large_model_loaded_for_two_statements_is_built_once_set_up_for_them(
    model_builds: ModelBuilds, base_as_a_large_model: None
) -> None:
    """Built for one and set up again for two, a large model's weights are in memory twice for a moment
    (about 3 GB with large-v3): the loaders take the statements it is to hear first."""
    two = load_engine("faster-whisper", hearing=(0, 0))
    assert isinstance(two, faster.FasterWhisperEngine)
    assert (two.workers, two.threads) == (2, 2)
    assert side_by_side(two, [27_000, 24_000]) == 2
    assert model_builds.of(two) == ["made"]
    one = load_engine("faster-whisper")
    assert isinstance(one, faster.FasterWhisperEngine) and one.workers == 1
    assert model_builds.of(one) == ["made"]


def _words(engine: Any, audio: np.ndarray, seed: int) -> list[tuple[int, int, str]]:
    result = engine.transcribe(audio, TranscribeSettings(language="da"), seed=seed)
    return [(w.start_ms, w.end_ms, w.text) for s in result.segments for w in s.words]


@pytest.mark.slow
def test_statements_heard_side_by_side_have_the_words_heard_one_after_another() -> None:
    """Real Danish speech, two at a time on an engine of two workers, against one after another on an
    engine of one. The demo's first statement makes Whisper sample (its temperature fallback): that one
    is decoded again alone, seeded, so its words depend on its own audio only."""
    from test_engines import _speech_of

    one = load_engine("faster-whisper")
    assert isinstance(one, faster.FasterWhisperEngine) and one.workers == 1  # base is small
    two = faster.FasterWhisperEngine(one.model_dir, one.model, workers=2)
    recordings = DEMO / "recordings"
    audios = [
        _speech_of(recordings / "01-anna.mp4"),
        _speech_of(MEDIA / "da-nst-u0042010.wav"),
        _speech_of(MEDIA / "da-nst-u0042012.wav"),
    ]
    seeds = [seed_for(f"{k:x}" * 64) for k in range(len(audios))]
    alone = [_words(one, audio, seed) for audio, seed in zip(audios, seeds, strict=True)]
    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(lambda k: _words(two, audios[k], seeds[k]), range(len(audios))))
    assert together == alone
    assert all(alone), "every recording has words"
    assert two.decoded_again_alone, "the first statement must make the engine sample, or half is not shown"


def _overlap(records: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """The times each statement was transcribed (the run's own, not cached): some overlap where they were
    heard side by side."""
    heard = sorted(
        (r["at"], r["at"] + r["seconds"])
        for r in records
        if r["stage"] == "transcribe" and not r["cached"] and not r.get("ahead")
    )
    assert any(later < end for (_, end), (later, _) in pairwise(heard)), (
        f"no two statements were heard at the same time: {heard}"
    )
    return heard


@pytest.mark.slow
def test_a_run_on_an_engine_of_two_workers_delivers_what_one_worker_delivers(
    demo_run: DemoRun,
    out_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    base_as_a_large_model: None,
    model_builds: ModelBuilds,
) -> None:
    """The demo meeting on an engine that hears two statements at once: two of its recordings made ready
    as `hearing watch` makes files that landed at once, then the run, which hears the other two side by
    side (the fifth is no statement: its speaker did not consent to the committee). The same
    transcripts and subtitles as the demo run on the engine of one."""
    from pipeline.report import RunOptions
    from pipeline.runner import Runner, run

    assert demo_run.result.returncode == 0, demo_run.result.stderr
    # On one thread each: base's small matrices gain little from a second thread, and two workers of
    # two threads on two cores made this test half as long again (the threads' rule: the test above).
    monkeypatch.setattr(faster, "engine_threads", lambda cores, model_bytes: 1)
    options = RunOptions(meeting_dir=DEMO, out_dir=out_dir, form="demo")
    first = sorted(p.relative_to(DEMO).as_posix() for p in (DEMO / "recordings").iterdir())[:2]
    watching = Runner(options)
    readiness = watching.prepare(first)
    assert sorted(readiness.ready) == first
    assert len(_overlap([r.to_json() for r in watching.steps.records])) == 2
    assert [r.stage for r in watching.steps.records].count("model") == 1  # its loading, nothing around it
    two = watching.loaded_engine()
    assert isinstance(two, faster.FasterWhisperEngine)
    assert (two.workers, two.threads) == (2, 1)
    # Once, set up for the two statements it hears (the first of the demo samples, and is decoded again
    # alone on an engine of its own).
    assert model_builds.of(two) == ["made"]
    report = run(options, engine=two)
    assert report.exit_code == 0

    def transcripts(out: Path) -> dict[str, Any]:
        folder = out / "work" / "transcripts"
        return {p.name: json.loads(p.read_text("utf-8")) for p in folder.glob("*.json")}

    assert transcripts(out_dir) == transcripts(demo_run.out)
    assert len(transcripts(out_dir)) >= 4
    srt = sorted((out_dir / "delivery").glob("*.srt"))
    assert srt and [p.read_text("utf-8") for p in srt] == [
        (demo_run.out / "delivery" / p.name).read_text("utf-8") for p in srt
    ]
    stages = json.loads((out_dir / "run.json").read_text("utf-8"))["stages"]
    assert len(_overlap(stages)) == 2
    assert [s["stage"] for s in stages].count("model") == 1  # the loaded engine set up again
    # One statement heard alone (watch's next file) on the engine of two: each worker computes on the
    # threads a statement alone gets, so it is heard as fast, and its model is not loaded again (the
    # engine it decodes a sampling statement again on loads its own).
    for transcript in (out_dir / "work" / "transcripts").glob("*.json"):
        transcript.unlink()  # heard again; the rest is in the cache
    watching = Runner(options, engine=two)
    assert watching.prepare(first[:1]).ready == tuple(first[:1])
    heard = [r for r in watching.steps.records if r.stage == "transcribe" and not r.cached]
    assert len(heard) == 1
    assert (two.workers, two.threads) == (2, 1)
    assert model_builds.of(two) == ["made"]
