"""Whether `hearing watch` keeps up: the estimate of work per second recorded and what watch says from
it, the per-machine speed record, the faster model offered for the draft, and the cache that keeps the
transcripts of both models."""

from __future__ import annotations

import json
import math
import shlex
import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import MEDIA, ModelBuilds, run_cli

from pipeline import pace
from pipeline.engines import catalogue
from pipeline.engines.device import CPU_INT8
from pipeline.report import RunOptions
from pipeline.steps import StageRecord

# ------------------------------------------------------------------------------------ the estimate


def test_nothing_to_go_by_is_no_estimate_and_says_nothing() -> None:
    assert pace.estimate([]) is None
    assert pace.estimate([], prior=None) is None
    assert pace.typical_recorded_s([]) is None
    assert not pace.should_tell(None, None)


@pytest.mark.parametrize(
    "degenerate",
    [
        pace.Made(0.0, 5.0),  # a zero-length recording
        pace.Made(0.4, 30.0),  # shorter than a statement's fixed costs
        pace.Made(-3.0, 1.0),
        pace.Made(math.nan, 1.0),
        pace.Made(60.0, math.inf),
        pace.Made(math.inf, 1.0),
        pace.Made(60.0, -1.0),
    ],
    ids=repr,
)
def test_a_statement_that_measures_nothing_is_left_out(degenerate: pace.Made) -> None:
    assert pace.estimate([degenerate]) is None
    assert pace.estimate([degenerate, pace.Made(60.0, 30.0)]) == pytest.approx(0.5)
    assert pace.estimate([degenerate], prior=1.5) == pytest.approx(1.5)
    length_measures = math.isfinite(degenerate.recorded_s) and degenerate.recorded_s >= 1
    assert (pace.typical_recorded_s([degenerate.recorded_s]) is None) is not length_measures


def test_one_enormous_outlier_moves_the_estimate_little() -> None:
    usual = [pace.Made(60.0, 48.0), pace.Made(90.0, 75.0), pace.Made(30.0, 24.0)]
    asleep = pace.Made(45.0, 50_000.0)  # the laptop slept while it worked
    assert pace.estimate(usual) == pytest.approx(0.8)
    with_outlier = pace.estimate([*usual, asleep])
    assert with_outlier is not None and with_outlier < 0.85
    # A three-hour recording weighs as one statement, not as its hours.
    assert pace.estimate([*usual, pace.Made(10_800.0, 100.0)]) == pytest.approx(0.81, abs=0.02)
    assert pace.typical_recorded_s([60.0, 90.0, 30.0, 10_800.0]) == pytest.approx(75.0)


def test_earlier_runs_count_until_enough_is_measured_here() -> None:
    slow = 1.6
    # One fast statement does not overrule this machine's history ...
    assert pace.estimate([pace.Made(60.0, 30.0)], prior=slow) == pytest.approx(slow)
    # ... three do.
    fast = [pace.Made(60.0, 30.0)] * 3
    assert pace.estimate(fast, prior=slow) == pytest.approx(0.5)
    for broken in (math.nan, math.inf, -1.0):
        assert pace.estimate(fast, prior=broken) == pytest.approx(0.5)


def test_keeping_up_leaves_a_margin_below_real_time() -> None:
    assert pace.keeps_up(0.5) and pace.keeps_up(pace.KEEP_UP_AT_MOST)
    assert not pace.keeps_up(0.95) and not pace.keeps_up(1.0) and not pace.keeps_up(1.7)


def test_falling_behind_is_told_once_and_again_only_when_clearly_worse() -> None:
    assert not pace.should_tell(0.5, None)
    assert pace.should_tell(1.2, None)
    assert not pace.should_tell(1.2, 1.2)
    assert not pace.should_tell(1.3, 1.2)
    assert pace.should_tell(1.2 * pace.CLEARLY_WORSE, 1.2)
    # Better again says nothing.
    assert not pace.should_tell(1.0, 1.6)


def test_the_delivery_waits_for_everything_still_queued() -> None:
    assert pace.delivery_wait_s(1.5, [60.0, 60.0, 60.0]) == pytest.approx(270.0)
    assert pace.delivery_wait_s(1.5, []) == 0
    assert pace.delivery_wait_s(1.5, [60.0, math.nan, -5.0, math.inf]) == pytest.approx(90.0)


@pytest.mark.parametrize(
    ("rate", "said"),
    [
        (1 + 40 / 60, "about 1 min 40 s of work per minute recorded"),
        (0.5, "about 30 s of work per minute recorded"),
        (0.0, "about 0 s of work per minute recorded"),
    ],
)
def test_the_estimate_is_said_per_minute_recorded(rate: float, said: str) -> None:
    assert pace.per_minute(rate) == said


# ------------------------------------------------------------------------------- the faster model


def test_every_catalogue_model_has_its_shape_and_turbo_is_less_work() -> None:
    for e in catalogue.ENTRIES:
        assert e.encoder_layers > 0 and e.decoder_layers > 0 and e.d_model % 64 == 0, e.name
    work = {e.name: e.relative_work for e in catalogue.ENTRIES}
    assert work["large-v3"] == pytest.approx(1.0) == work["roest-v3-1.5b"]
    assert work["base"] < work["large-v3-turbo"] < work["large-v3"]


@pytest.mark.parametrize(
    ("current", "engine", "faster"),
    [
        ("large-v3", "faster-whisper", "large-v3-turbo"),
        ("roest-v3-1.5b", "faster-whisper", "large-v3-turbo"),
        ("Systran/faster-whisper-large-v3", "faster-whisper", "large-v3-turbo"),  # by its repository
        ("large-v3", "openai-whisper", "large-v3-turbo"),
        ("/somewhere/my-own-model", "faster-whisper", "large-v3-turbo"),  # its shape is not known here
        # Nothing fit for Danish is faster than these: base is never offered for the draft.
        ("large-v3-turbo", "faster-whisper", None),
        ("base", "faster-whisper", None),
        (None, "faster-whisper", None),
    ],
)
def test_the_faster_model_for_the_draft_is_fit_for_danish(
    current: str | None, engine: str, faster: str | None
) -> None:
    found = catalogue.faster_for_draft(current, engine)
    assert (found.name if found else None) == faster
    assert found is None or (found.fit_for_danish and engine in found.engines)


def options(meeting: Path, **given: object) -> RunOptions:
    return RunOptions(meeting_dir=meeting, **given)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "folder", ["møde 1", 'it\'s a "meeting"', "-rf", "$(touch x)", "a;b|c&d", "*"], ids=repr
)
def test_the_offered_commands_give_back_the_same_folder_and_settings(folder: str, tmp_path: Path) -> None:
    turbo = catalogue.entry("large-v3-turbo")
    opts = options(
        Path(folder), out_dir=tmp_path / f"ud {folder}", form="/forms/lille.yaml", language="da",
        model="large-v3", device="cpu",
    )  # fmt: skip
    both = pace.commands(opts, pace.Offer(turbo, True, "large-v3"))
    assert both is not None
    watch, run = (shlex.split(c) for c in both)
    shown = f"./{folder}" if folder.startswith("-") else folder
    rest = ["--out", str(tmp_path / f"ud {folder}"), "--form", "/forms/lille.yaml", "--language", "da"]
    assert watch == ["hearing", "watch", shown, *rest, "--device", "cpu", "--model", "large-v3-turbo"]
    assert run == ["hearing", "run", shown, *rest, "--device", "cpu", "--model", "large-v3"]
    text = pace.offer_text(opts, pace.Offer(turbo, False, "large-v3"))
    assert "`hearing models get large-v3-turbo`" in text and both[0] in text and both[1] in text
    # The defaults are not repeated.
    plain = pace.commands(options(Path("m")), pace.Offer(turbo, True, "large-v3"))
    assert plain == ("hearing watch m --model large-v3-turbo", "hearing run m --model large-v3")


def test_without_a_faster_model_nothing_is_offered() -> None:
    opts = options(Path("m"), model="large-v3-turbo")
    assert pace.commands(opts, pace.Offer(None, False, "large-v3-turbo")) is None
    text = pace.offer_text(opts, pace.Offer(None, False, "large-v3-turbo"))
    assert "base is never offered" in text and "--model" not in text


# ---------------------------------------------------------------------------------- speed record


def records(*rows: tuple[str, str | None, bool, float]) -> list[StageRecord]:
    """Stages one after another, as a run without statements heard side by side logs them."""
    made, at = [], 0.0
    for stage, statement, cached, seconds in rows:
        made.append(StageRecord(stage, statement, None, cached, seconds, at=at))
        at += seconds
    return made


def test_only_what_was_transcribed_counts_and_not_the_wait_for_the_model() -> None:
    made = records(
        ("speech-audio", "s01", False, 2.0),
        ("transcribe", "s01", False, 80.0),  # also loaded the model
        ("transcribe", "s02", True, 0.01),  # found in the cache
        ("transcribe", "s03", False, 45.0),
        ("transcribe", None, False, 9.0),
        ("transcribe", "s09", False, 9.0),  # not a statement of this run
    )
    lengths = {"s01": 40_000, "s02": 30_000, "s03": 30_000}
    assert pace.transcriptions(made, lengths, loaded=True) == [pace.Made(30.0, 45.0)]
    assert pace.transcriptions(made, lengths, loaded=False) == [pace.Made(40.0, 80.0), pace.Made(30.0, 45.0)]


def test_statements_heard_side_by_side_are_one_sample_of_the_time_they_took_together() -> None:
    def heard(statement: str, at: float, seconds: float) -> StageRecord:
        return StageRecord("transcribe", statement, None, False, seconds, at=at)

    lengths = {"s01": 60_000, "s02": 30_000, "s03": 40_000, "s04": 20_000}
    side_by_side = [
        StageRecord("model", None, None, False, 2.0, at=0.0),  # loaded before the first was heard
        heard("s02", 2.0, 40.0),
        heard("s01", 2.0, 70.0),
        heard("s03", 42.5, 50.0),  # began when s02 was done, ended after s01
        heard("s04", 100.0, 12.0),  # alone, after a pause
    ]
    assert pace.transcriptions(side_by_side, lengths, loaded=True) == [
        pace.Made(130.0, 90.5),
        pace.Made(20.0, 12.0),
    ]
    # Loaded inside the first statement's transcription: that one waited for it and is left out.
    loads = StageRecord("model", None, None, False, 5.0, at=1.0)
    inside = [loads, heard("s01", 0.0, 30.0), heard("s02", 30, 9)]
    assert pace.transcriptions(inside, lengths, loaded=True) == [pace.Made(30.0, 9.0)]


def test_the_record_keeps_the_latest_samples_per_set_up() -> None:
    key = pace.record_key("faster-whisper", "model:sha256:ab", CPU_INT8, 2)
    assert "faster-whisper" in key and "sha256:ab" in key and "cpu int8" in key and "2 cores" in key
    other = pace.record_key("faster-whisper", "model:sha256:ab", CPU_INT8, 8)
    entries = pace.with_samples({}, other, "large-v3", [pace.Made(60.0, 30.0)], "2020-01-01T00:00:00+00:00")
    for n in range(pace.SAMPLES_KEPT + 5):
        entries = pace.with_samples(entries, key, "large-v3", [pace.Made(60.0, 90.0 + n)], f"2026-{n:05d}")
    samples = pace.samples_of(entries[key])
    assert len(samples) == pace.SAMPLES_KEPT and samples[-1] == pace.Made(60.0, 90.0 + pace.SAMPLES_KEPT + 4)
    assert pace.samples_of(entries[other]) == [pace.Made(60.0, 30.0)]
    assert entries[key]["transcribe_per_recorded_second"] > 1.5


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{",
        b"\xff\xfe not text",
        b"[]",
        b"null",
        b'{"kind": "something else", "version": 1, "entries": {}}',
        b'{"kind": "hearing-pipeline speed record", "version": 99, "entries": {}}',
        b'{"kind": "hearing-pipeline speed record", "version": 1, "entries": []}',
        b'{"kind": "hearing-pipeline speed record", "version": 1, "entries": {"K": "x"}}',
        b'{"kind": "hearing-pipeline speed record", "version": 1, "entries": {"K": {"samples": "x"}}}',
        b'{"kind": "hearing-pipeline speed record", "version": 1, "entries": {"K": {"samples": '
        b'[[60], ["60", 30], [true, 1], [0, 5], [60, -1], [1e999, 1], {"a": 1}]}}}',
    ],
    ids=repr,
)
def test_a_broken_or_foreign_record_is_ignored_and_replaced(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "speed.json"
    path.write_bytes(content)
    assert pace.prior("K", path) is None
    entries = pace.with_samples(pace.read_entries(path), "K", "m", [pace.Made(60.0, 90.0)], "now")
    assert pace.estimate(pace.samples_of(entries["K"])) == pytest.approx(1.5)


def test_a_record_that_cannot_be_read_or_written_is_never_fatal(tmp_path: Path) -> None:
    assert pace.prior("K", tmp_path / "missing.json") is None
    assert pace.prior("K", tmp_path) is None  # a folder
    blocked = tmp_path / "file"
    blocked.write_text("not a folder", encoding="utf-8")
    pace.store(blocked / "speed.json", "K", "m", [pace.Made(60.0, 90.0)])
    pace.store(tmp_path, "K", "m", [pace.Made(60.0, 90.0)])
    assert blocked.read_text(encoding="utf-8") == "not a folder" and tmp_path.is_dir()
    # Written whole: what a later watch reads.
    path = tmp_path / "cache" / "speed.json"
    pace.store(path, "K", "m", [pace.Made(60.0, 90.0)])
    pace.store(path, "K", "m", [pace.Made(60.0, 96.0)])
    assert pace.prior("K", path) == pytest.approx(1.55)
    assert [p.name for p in path.parent.iterdir()] == ["speed.json"]


# ------------------------------------------------------------------------------------ in watch


@pytest.fixture
def record_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "speed-record.json"
    monkeypatch.setattr(pace, "record_path", lambda: path)
    return path


def too_slow_record(path: Path, key: str, rate: float) -> None:
    samples = [[60.0, 60.0 * rate]] * 5
    entries = {key: {"model": "m", "samples": samples, "updated": "2026-01-01T00:00:00+00:00"}}
    path.write_text(
        json.dumps({"kind": pace.RECORD_KIND, "version": pace.RECORD_VERSION, "entries": entries}), "utf-8"
    )


def test_watch_says_at_once_when_earlier_runs_say_the_model_cannot_keep_up(
    tmp_path: Path, record_file: Path, small_form: Path
) -> None:
    from pipeline.watch import Watcher

    meeting = tmp_path / "moede"
    meeting.mkdir()
    opts = RunOptions(
        meeting_dir=meeting, out_dir=tmp_path / "ud", form=str(small_form), model="large-v3", language="da"
    )
    watcher = Watcher(opts)
    watcher.choose_model()
    assert watcher.start_line() is None  # nothing known of this machine yet
    too_slow_record(record_file, watcher.pace_key(), 1 + 40 / 60)

    watcher = Watcher(opts)
    watcher.choose_model()
    line = watcher.start_line()
    assert line is not None
    assert line.startswith("pace: large-v3 has taken about 1 min 40 s of work per minute recorded")
    assert f"`hearing watch {meeting} --out {tmp_path / 'ud'} --form {small_form}" in line
    assert "--model large-v3-turbo`" in line and "--model large-v3`" in line and "--device" not in line
    assert "`hearing models get large-v3-turbo`" in line  # not installed here

    # What it measures afterwards tells again only where it gets clearly worse, with the queue's wait.
    for name in ("a.wav", "b.wav"):
        (meeting / name).write_bytes(b"queued")
    watcher.made = [pace.Made(60.0, 100.0)]
    watcher.lengths = [60.0]
    assert watcher.pace_line() is None
    watcher.made += [pace.Made(60.0, 200.0)] * 4
    line = watcher.pace_line()
    assert line is not None and "about 3 min 20 s of work per minute recorded" in line
    # Two files queued and the last one still to come: three statements of a minute each.
    assert "with 2 more queued, the delivery would wait about 10 min 00 s after the last recording" in line
    assert watcher.pace_line() is None
    assert watcher.pace_json() == {
        "work_per_recorded_second": pytest.approx(3.333, abs=0.001),
        "keeps_up": False,
        "from_earlier_runs": pytest.approx(1.667, abs=0.001),
        "measured": 5,
    }


def test_a_model_that_keeps_up_is_not_warned_about(
    tmp_path: Path, record_file: Path, small_form: Path
) -> None:
    from pipeline.watch import Watcher

    meeting = tmp_path / "moede"
    meeting.mkdir()
    watcher = Watcher(RunOptions(meeting_dir=meeting, form=str(small_form), model="base", language="da"))
    watcher.choose_model()
    too_slow_record(record_file, watcher.pace_key(), 0.2)
    watcher.choose_model()
    assert watcher.prior == pytest.approx(0.2)
    assert watcher.start_line() is None
    watcher.made = [pace.Made(60.0, 12.0)] * 3
    assert watcher.pace_line() is None


@pytest.mark.parametrize(("rate", "workers"), [(1.7, 2), (0.5, 1)])
def test_where_statements_will_pile_up_watch_sets_a_large_model_up_for_two_before_the_first(
    rate: float,
    workers: int,
    tmp_path: Path,
    record_file: Path,
    small_form: Path,
    model_builds: ModelBuilds,
    base_as_a_large_model: None,
) -> None:
    """Two files that land together are heard side by side; set up for it at the start, the model is not
    loaded again between recordings, where each load of a large model is seconds on the way to the
    delivery. Where the model keeps up, files land one by one and the second worker would only take
    memory."""
    from pipeline.engines import faster
    from pipeline.watch import Watcher

    meeting = tmp_path / "moede"
    meeting.mkdir()
    watcher = Watcher(RunOptions(meeting_dir=meeting, form=str(small_form), model="base", language="da"))
    watcher.choose_model()
    too_slow_record(record_file, watcher.pace_key(), rate)
    watcher.choose_model()
    watcher.load()
    assert isinstance(watcher.engine, faster.FasterWhisperEngine)
    assert watcher.engine.workers == workers
    # Built set up for two, not built for one and then again (its weights twice in memory).
    assert model_builds.of(watcher.engine) == ["made"]


@pytest.mark.slow
def test_watch_tells_its_pace_before_any_statement_and_records_what_it_transcribed(
    tmp_path: Path, record_file: Path, small_form: Path
) -> None:
    from pipeline.watch import Watcher

    meeting = tmp_path / "moede"
    meeting.mkdir()
    opts = RunOptions(
        meeting_dir=meeting, out_dir=tmp_path / "ud", form=str(small_form), model="base", language="en"
    )
    watcher = Watcher(opts)
    watcher.choose_model()
    key = watcher.pace_key()
    too_slow_record(record_file, key, 1.7)
    watcher.choose_model()
    said: list[str] = []
    enter = threading.Event()

    def pace_told(line: str) -> None:
        said.append(line)
        (meeting / "a.flac").write_bytes((MEDIA / "en-jfk.flac").read_bytes())

    def ready(status: object) -> None:
        said.append(f"ready: {status}")
        enter.set()

    watcher.watch(
        enter, on_taken=lambda *a: said.append("taken"), on_ready=ready, on_waiting=lambda n: None,
        on_pace=pace_told,
    )  # fmt: skip
    assert said[0].startswith("pace: base has taken about 1 min 42 s of work per minute recorded"), said
    assert "No faster model fit for Danish" in said[0]
    assert said[1] == "taken" and said[2].startswith("ready:") and len(said) == 3, said
    # The statement it transcribed is in the record now (the model was loaded before it arrived).
    stored = json.loads(record_file.read_text(encoding="utf-8"))
    assert len(pace.samples_of(stored["entries"][key])) == 6
    assert watcher.pace_json()["measured"] == 1


# ------------------------------------------------------------------------ both models in the cache


@pytest.mark.slow
def test_a_run_with_the_first_model_again_transcribes_nothing(
    tmp_path: Path, make_meeting, small_form: Path
) -> None:
    """The draft with one model, the final run with another, and the first again: the cache keeps the
    transcripts of both, so the third run finds every transcript it needs."""
    from test_convert import converted

    tiny = converted(tmp_path, "tiny-whisper", seed=1)
    meeting = make_meeting({"s.wav": MEDIA / "da-nst-u0013002.wav"})
    out = tmp_path / "ud"

    def run(model: str | Path) -> dict[str, Any]:
        done = run_cli(
            "run", meeting, "--out", out, "--form", small_form, "--language", "da", "--model", model
        )
        assert done.returncode == 0, done.stderr
        return json.loads((out / "run.json").read_text(encoding="utf-8"))

    def transcribed(report: dict[str, Any]) -> list[bool]:
        return [s["cached"] for s in report["stages"] if s["stage"] == "transcribe"]

    assert transcribed(run("base")) == [False]
    assert transcribed(run(tiny.target)) == [False]
    third = run("base")
    assert transcribed(third) == [True]
    assert "model_sha256" not in third["engine"], "the model was loaded although everything was heard"
