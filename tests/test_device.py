"""Where the speech engine runs: the pure choice of device and compute type, the setting and the option
that say otherwise (checked once, the same by a run and a dry run), the cache keys that tell the devices
apart, and a real run's record. This machine has no GPU, and none is faked: cuda is tested as asked
where there is none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPO, DemoRun, hearing

from pipeline import engines
from pipeline.engines.device import (
    CPU_INT8,
    CUDA_FLOAT16,
    DEVICES,
    OPENAI_CPU,
    SETTING,
    DeviceChoice,
    asked_device,
    choose_device,
    cuda_device_count,
    key_part,
)
from pipeline.errors import ModelError, UsageError, exit_code_for

DEMO = REPO / "samples" / "borgermoede-nordby"

# ------------------------------------------------------------------------------------- the choice


@pytest.mark.parametrize(
    ("asked", "cuda_devices", "expected"),
    [
        ("auto", 0, CPU_INT8),
        ("auto", 1, CUDA_FLOAT16),
        ("auto", 4, CUDA_FLOAT16),
        ("cpu", 0, CPU_INT8),
        ("cpu", 2, CPU_INT8),  # told otherwise: the GPU is left alone
        ("cuda", 1, CUDA_FLOAT16),
    ],
)
def test_faster_whisper_runs_on_a_gpu_where_one_is_found_unless_told_otherwise(
    asked: str, cuda_devices: int, expected: DeviceChoice
) -> None:
    choice = choose_device(asked, cuda_devices)
    assert choice == expected
    device, compute_type = choice  # a pair, as the engine is given it
    assert (device, compute_type) == (expected.device, expected.compute_type)


def test_cuda_asked_where_there_is_none_stops_with_one_line_exit_4() -> None:
    with pytest.raises(ModelError) as caught:
        choose_device("cuda", 0)
    line = str(caught.value)
    assert "\n" not in line and "no CUDA device" in line and "--device cpu" in line
    assert exit_code_for(caught.value) == 4


@pytest.mark.parametrize("asked", ["auto", "cpu"])
@pytest.mark.parametrize("cuda_devices", [0, 1])
def test_openai_whisper_stays_on_the_cpu(asked: str, cuda_devices: int) -> None:
    assert choose_device(asked, cuda_devices, "openai-whisper") == OPENAI_CPU


@pytest.mark.parametrize("cuda_devices", [0, 1])
def test_openai_whisper_asked_for_cuda_is_refused_not_ignored(cuda_devices: int) -> None:
    with pytest.raises(UsageError, match="openai-whisper runs on the CPU") as caught:
        choose_device("cuda", cuda_devices, "openai-whisper")
    assert exit_code_for(caught.value) == 2


@pytest.mark.parametrize("bad", ["gpu", "CUDA", "", " cpu", "cuda:0", "auto\n", "cpu; rm -rf /", "ø"])
def test_what_is_not_a_device_is_refused_naming_the_allowed_ones(bad: str) -> None:
    with pytest.raises(UsageError) as caught:
        choose_device(bad, 1)
    assert "auto, cpu, cuda" in str(caught.value)
    with pytest.raises(UsageError) as given:
        asked_device(bad, {})
    assert str(given.value).startswith("--device ") and "auto, cpu, cuda" in str(given.value)
    if bad:  # an empty setting is no setting
        with pytest.raises(UsageError) as setting:
            asked_device(None, {SETTING: bad})
        assert str(setting.value).startswith(SETTING) and "auto, cpu, cuda" in str(setting.value)


def test_the_option_wins_over_the_setting_and_auto_is_the_default() -> None:
    assert asked_device(None, {}) == "auto"
    assert asked_device(None, {SETTING: ""}) == "auto"
    assert asked_device(None, {SETTING: "cpu"}) == "cpu"
    assert asked_device("cuda", {SETTING: "cpu"}) == "cuda"
    assert asked_device("cpu", {SETTING: "not a device"}) == "cpu"
    assert set(DEVICES) == {"auto", "cpu", "cuda"}


def test_this_machine_has_no_cuda_device() -> None:
    # What the end-to-end tests below rely on: auto is the CPU here.
    assert cuda_device_count() == 0


# ------------------------------------------------------------------------------------- cache keys


def test_the_device_is_in_the_keys_and_the_cpu_keys_made_before_are_kept() -> None:
    for engine, before in (("faster-whisper", CPU_INT8), ("openai-whisper", OPENAI_CPU)):
        versions = engines.engine_versions(engine)
        # The key every transcript had before the device was a choice.
        old = "; ".join([engine, *(f"{name} {version}" for name, version in versions.items())])
        assert engines.engine_id(engine) == old
        assert engines.engine_id(engine, before) == old
        assert key_part(engine, before) is None
    gpu = engines.engine_id("faster-whisper", CUDA_FLOAT16)
    assert gpu != engines.engine_id("faster-whisper", CPU_INT8) and gpu.endswith("; device cuda float16")
    other = DeviceChoice("cpu", "float32")
    assert engines.engine_id("faster-whisper", other).endswith("; device cpu float32")


# ------------------------------------------------------------------------------- the command line


def dry_run(tmp_path: Path, *extra: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return hearing(
        "run", DEMO, "--form", "demo", "--out", tmp_path / "out", "--dry-run", "--json", *extra, env=env
    )


def test_a_bad_device_option_is_refused_by_the_command_line(tmp_path: Path) -> None:
    result = hearing("run", DEMO, "--form", "demo", "--out", tmp_path / "out", "--device", "gpu")
    assert result.exit_code == 2
    assert "'gpu' is not one of 'auto', 'cpu', 'cuda'" in result.stderr
    assert not (tmp_path / "out").exists()
    render = hearing("render", tmp_path / "out", "--device", "tpu")
    assert render.exit_code == 2 and "'tpu' is not one of" in render.stderr


@pytest.mark.parametrize("command", ["run", "dry run"])
def test_a_bad_setting_is_refused_before_any_work(command: str, tmp_path: Path) -> None:
    args = ["run", DEMO, "--form", "demo", "--out", tmp_path / "out"]
    result = hearing(*args, *(["--dry-run"] if command == "dry run" else []), env={SETTING: "gpu"})
    assert result.exit_code == 2, result.stderr
    assert f"{SETTING} 'gpu' is not a device; choose one of auto, cpu, cuda" in result.stderr
    assert not (tmp_path / "out" / "work").exists()


def test_cuda_asked_here_stops_a_dry_run_and_a_run_with_exit_4(tmp_path: Path) -> None:
    for extra in (["--dry-run"], []):
        result = hearing("run", DEMO, "--form", "demo", "--out", tmp_path / "out", "--device", "cuda", *extra)
        assert result.exit_code == 4, result.stderr
        assert "no CUDA device" in result.stderr
        assert not (tmp_path / "out" / "work").exists()
    by_setting = hearing("run", DEMO, "--form", "demo", "--out", tmp_path / "o", env={SETTING: "cuda"})
    assert by_setting.exit_code == 4 and "no CUDA device" in by_setting.stderr


@pytest.mark.parametrize(("extra", "env", "asked"), [((), {}, "auto"), (("--device", "cpu"), {}, "cpu")])
def test_a_dry_run_accepts_what_the_run_accepts_and_records_it(
    tmp_path: Path, extra: tuple[str, ...], env: dict[str, str], asked: str
) -> None:
    result = dry_run(tmp_path, *extra, env=env)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["options"]["device"] == asked
    assert (report["engine"]["device"], report["engine"]["compute_type"]) == ("cpu", "int8")


def test_openai_whisper_with_cuda_is_refused_by_the_dry_run(tmp_path: Path) -> None:
    result = dry_run(tmp_path, "--engine", "openai-whisper", "--device", "cuda")
    assert result.exit_code == 2 and "openai-whisper runs on the CPU" in result.stderr


# ------------------------------------------------------------------------------------- a real run


@pytest.mark.slow
def test_the_demo_run_records_where_its_words_were_made(demo_run: DemoRun) -> None:
    assert demo_run.result.returncode in (0, 5), demo_run.result.stderr
    report = demo_run.report
    assert report["options"]["device"] == "auto"
    assert (report["engine"]["device"], report["engine"]["compute_type"]) == ("cpu", "int8")
    assert "model_origin" not in report["engine"]  # the embedded base comes from no hub download
    provenance = json.loads(
        (demo_run.out / "archive" / "data" / "metadata" / "provenance.json").read_text(encoding="utf-8")
    )
    transcriptions = [e for e in provenance["events"] if e["eventType"] == "transcription"]
    assert transcriptions
    for event in transcriptions:
        assert "device=cpu compute_type=int8" in event["eventDetailInformation"]["eventDetail"]


@pytest.mark.parametrize(
    ("recorded", "read"),
    [({}, None), ({"device": "cpu"}, "cpu"), ({"device": "cuda"}, "cuda"), ({"device": "gpu"}, None)],
)
def test_a_render_asks_what_the_run_was_asked(
    tmp_path: Path, recorded: dict[str, str], read: str | None
) -> None:
    """A record older than the choice (no device), or one whose device is not a device, reads as the
    setting, else auto."""
    from pipeline import run_record
    from pipeline.report import options_of_earlier_run

    options = {"meeting_dir": str(DEMO), "form": "demo", "engine": "faster-whisper", "model": "base"}
    record = {"kind": run_record.KIND, "version": run_record.VERSION, "options": {**options, **recorded}}
    (tmp_path / "run.json").write_text(json.dumps(record), encoding="utf-8")
    assert options_of_earlier_run(tmp_path).device == read
