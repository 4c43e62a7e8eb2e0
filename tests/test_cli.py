"""The command line in this process (click's CliRunner, as sqlite-utils tests its commands): usage,
settings and tools refused with their exit code and one line, the plan of a dry run, the models list.
None of these needs a process of its own; the runs of engines and ffmpeg as a user makes them, kills
and signals stay in separate processes (test_run, test_resume, test_laptop)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import Result
from conftest import hearing, tree_digest


def assert_no_traceback(result: Result) -> None:
    assert "Traceback" not in result.stderr, result.stderr


def test_help_lists_every_command_and_a_command_its_options() -> None:
    result = hearing("--help")
    assert result.exit_code == 0, result.stderr
    for command in ("run", "watch", "render", "review", "check", "verify", "demo", "models"):
        assert f"  {command} " in result.stdout, (command, result.stdout)
    run = hearing("run", "-h")
    assert run.exit_code == 0 and "--dry-run" in run.stdout and "--form" in run.stdout


def test_a_usage_error_is_exit_2_with_click_s_reason(tmp_path: Path) -> None:
    unknown = hearing("fly")
    assert unknown.exit_code == 2 and "No such command 'fly'" in unknown.stderr
    missing = hearing("run", tmp_path / "no-such-meeting")
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
    assert hearing("run", tmp_path, "--engine", "none").exit_code == 2


def test_nothing_usable_fails_with_exit_1(make_meeting, out_dir: Path) -> None:
    meeting = make_meeting({"tom.mp4": b"", "tekst.mov": b"hello"})
    result = hearing("run", meeting, "--out", out_dir, "--quiet", "--model", "base")
    assert result.exit_code == 1
    assert_no_traceback(result)
    assert "nothing to deliver" in result.stderr
    assert not (out_dir / "delivery").exists()


def test_invalid_meeting_yaml_exits_3_naming_file_and_field(
    real_media: Path, make_meeting, out_dir: Path
) -> None:
    meeting = make_meeting(
        {"a.flac": real_media / "en-jfk.flac"},
        "statements:\n  - file: a.flac\n    speakr: Anna\n",
    )
    result = hearing("run", meeting, "--out", out_dir)
    assert result.exit_code == 3
    assert_no_traceback(result)
    assert "meeting.yaml: statements[0].speakr: unknown field" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_meeting_yaml_naming_a_missing_file_exits_3(real_media: Path, make_meeting, out_dir: Path) -> None:
    meeting = make_meeting({"a.flac": real_media / "en-jfk.flac"}, "statements:\n  - file: b.flac\n")
    result = hearing("run", meeting, "--out", out_dir, "--model", "base")
    assert result.exit_code == 3
    assert "statements[0].file: no such file in the meeting folder: 'b.flac'" in result.stderr


def test_invalid_form_exits_3(real_media: Path, make_meeting, out_dir: Path, tmp_path: Path) -> None:
    meeting = make_meeting({"a.flac": real_media / "en-jfk.flac"})
    form = tmp_path / "udvalg.yaml"
    form.write_text("video:\n  fps: 0\n", encoding="utf-8")
    result = hearing("run", meeting, "--out", out_dir, "--form", form)
    assert result.exit_code == 3
    assert f"{form}: video.fps: Input should be greater than or equal to 1 (got 0)" in result.stderr


def test_a_model_folder_that_is_not_there_exits_4(
    real_media: Path, make_meeting, out_dir: Path, tmp_path: Path
) -> None:
    meeting = make_meeting({"a.flac": real_media / "en-jfk.flac"})
    result = hearing("run", meeting, "--out", out_dir, "--model", tmp_path / "no-such-model")
    assert result.exit_code == 4, result.stderr
    assert_no_traceback(result)
    assert "no-such-model" in result.stderr


def test_out_inside_the_meeting_folder_is_refused(real_media: Path, make_meeting) -> None:
    meeting = make_meeting({"a.flac": real_media / "en-jfk.flac"})
    before = tree_digest(meeting)
    result = hearing("run", meeting, "--out", meeting / "output")
    assert result.exit_code == 2
    assert "never written to" in result.stderr
    assert tree_digest(meeting) == before


def test_dry_run_prints_the_plan_and_writes_nothing(real_media: Path, make_meeting, tmp_path: Path) -> None:
    meeting = make_meeting({"a.flac": real_media / "en-jfk.flac"})
    out = tmp_path / "plan-out"
    result = hearing("run", meeting, "--out", out, "--dry-run", "--model", "base")
    assert result.exit_code == 0, result.stderr
    assert not out.exists()
    assert "speech-audio" in result.stdout and "16 kHz mono" in result.stdout
    assert "transcribe" in result.stdout


def test_render_without_an_earlier_run_says_what_to_do(tmp_path: Path) -> None:
    result = hearing("render", tmp_path / "nothing-here")
    assert result.exit_code == 2
    assert "hearing run" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_models_lists_what_is_usable_offline() -> None:
    result = hearing("models")
    assert result.exit_code == 0, result.stderr
    assert "faster-whisper" in result.stdout and "base (embedded" in result.stdout
    assert "usable offline" in result.stdout
    rows = json.loads(hearing("models", "--json").stdout)
    embedded = next(r for r in rows if r["kind"] == "model" and r["source"] == "embedded")
    assert embedded["usable_offline"] and embedded["sha256"]


def test_models_lists_the_danish_catalogue_with_how_to_get_each() -> None:
    from pipeline.engines import catalogue

    result = hearing("models")
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    section = text[text.index("Models fit for Danish") :]
    best = catalogue.recommended()
    for e in catalogue.ENTRIES:
        block = re.split(r"\n(?=  \S|\S)", section[section.index(f"  {e.name}: ") :])[0]
        assert e.licence in block and e.speed in block
        assert f"{e.mean_wer:g} % mean" in block and e.published[0].source.split(",")[0] in block
        if e.name == "base":
            assert "installed" in block and "get it" not in block and "demos and tests only" in block
        else:
            assert f"not installed; get it: hearing models get {e.name}" in block
        assert ("recommended" in block) == (e is best)
        assert ("conditions are shown before download" in block) == (e.licence_conditions is not None)
    assert "about 1.6 GB" in section  # Røst's size after conversion is an estimate, and says so


def test_models_json_keeps_every_row_and_adds_the_catalogue() -> None:
    from pipeline.engines import catalogue

    rows = json.loads(hearing("models", "--json").stdout)
    kinds = [r["kind"] for r in rows]
    assert {"engine", "model", "ffmpeg", "catalogue"} <= set(kinds)
    engine_keys = {"kind", "name", "installed", "version", "default", "install"}
    assert all(engine_keys <= r.keys() for r in rows if r["kind"] == "engine")
    model_keys = {"kind", "engines", "name", "source", "path", "usable_offline", "use"}
    assert all(model_keys <= r.keys() for r in rows if r["kind"] == "model")
    listed = {r["name"]: r for r in rows if r["kind"] == "catalogue"}
    assert list(listed) == [e.name for e in catalogue.ENTRIES]
    for e in catalogue.ENTRIES:
        row = listed[e.name]
        assert (row["repo"], row["revision"], row["format"]) == (e.repo, e.revision, e.format)
        assert row["size_bytes"] == e.size_bytes and row["licence"] == e.licence
        assert row["licence_conditions"] == e.licence_conditions
        assert row["mean_wer"] == e.mean_wer and row["engines"] == list(e.engines)
        assert [(p["dataset"], p["wer_percent"], p["source"]) for p in row["published"]] == [
            (p.dataset, p.wer_percent, p.source) for p in e.published
        ]
        assert row["recommended"] == (e == catalogue.recommended())
        assert row["get"] == (None if row["installed"] else f"hearing models get {e.name}")
    # The embedded base is installed exactly when the embedded model row says it is usable offline.
    embedded = next(r for r in rows if r["kind"] == "model" and r["source"] == "embedded")
    assert listed["base"]["installed"] == embedded["usable_offline"] is True
