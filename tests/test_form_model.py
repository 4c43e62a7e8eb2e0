"""The model a run transcribes with: ``--model`` where given, else the form's ``speech.model``. The
default form asks for the best installed model fit for Danish and stops a run, a watch and a dry run
before any work where only the embedded base is there; the demo form and ``--model base`` take base.

The model store is a folder of the test's own (empty, or holding stored models made here with a valid
manifest), so that what this machine has downloaded changes nothing; the choice among them runs for real."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import Result
from conftest import hearing, tree_digest

from pipeline import run_record
from pipeline.engines import catalogue, download, embedded


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The store `hearing models get` fills, empty: this machine has only the embedded base."""
    folder = tmp_path / "store"
    folder.mkdir()
    monkeypatch.setattr(download, "store_dir", lambda: folder)
    return folder


def stored(store: Path, name: str) -> Path:
    """The catalogue model ``name`` as `hearing models get` leaves it: the embedded base's real files
    under that name, with a manifest naming each file and its digest (so it runs, and is known by it)."""
    entry = catalogue.entry(name)
    target = store / name
    shutil.copytree(embedded.model_dir(), target)
    files = []
    for path in sorted(p for p in target.rglob("*") if p.is_file()):
        size, sha = embedded.size_and_sha256(path)
        files.append({"name": path.relative_to(target).as_posix(), "size": size, "sha256": sha})
    manifest = {
        "manifest_version": download.MANIFEST_VERSION,
        "name": name,
        "repo": entry.repo,
        "revision": entry.revision or "0" * 40,
        "format": "ct2",
        "licence": entry.licence,
        "files": files,
        "conversion": None,
        "installed_files": files,
    }
    (target / download.MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    assert download.read_manifest(target) is not None
    return target


@pytest.fixture
def meeting(real_media: Path, make_meeting) -> Path:
    return make_meeting({"a.flac": real_media / "da-nst-u0042008.wav"})


def planned_model(result: Result) -> tuple[str | None, str]:
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    return report["options"]["model"], report["engine"]["model"]


def assert_refused_before_any_work(result: Result, out: Path) -> None:
    assert result.exit_code == 4, (result.exit_code, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    recommended = catalogue.recommended().name
    assert f"hearing models get {recommended}" in lines[0] and "--model base" in lines[0], lines[0]
    assert not out.exists()


def test_the_default_form_with_only_base_stops_before_any_work(
    store: Path, meeting: Path, tmp_path: Path
) -> None:
    before = tree_digest(meeting)
    out = tmp_path / "out"
    assert_refused_before_any_work(hearing("run", meeting, "--out", out), out)
    assert_refused_before_any_work(hearing("run", meeting, "--out", out, "--dry-run"), out)
    # The built-in form by its name, and a run with the openai engine (the recommended model is made for
    # faster-whisper only: the message names one that engine can run).
    assert_refused_before_any_work(hearing("run", meeting, "--out", out, "--form", "default"), out)
    by_openai = hearing("run", meeting, "--out", out, "--engine", "openai-whisper")
    assert by_openai.exit_code == 4 and "--model base" in by_openai.stderr
    wanted = catalogue.best_installed(e.name for e in catalogue.ENTRIES if "openai-whisper" in e.engines)
    assert wanted is not None and f"hearing models get {wanted.name}" in by_openai.stderr
    # `hearing watch` stops before it watches: its stdin is never read, nothing is made.
    assert_refused_before_any_work(hearing("watch", meeting, "--out", out, "--quiet"), out)
    assert tree_digest(meeting) == before


def test_model_base_accepts_base_knowingly(store: Path, meeting: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = hearing("run", meeting, "--out", out, "--model", "base", "--dry-run", "--json")
    assert planned_model(result) == ("base", "base")
    assert not out.exists()


def test_the_demo_form_and_a_form_naming_base_take_base(store: Path, meeting: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    demo = hearing("run", meeting, "--out", out, "--form", "demo", "--dry-run", "--json")
    assert planned_model(demo) == ("base", "base")
    form = tmp_path / "udvalg.yaml"
    form.write_text("name: udvalg\nspeech:\n  model: base\n", encoding="utf-8")
    custom = hearing("run", meeting, "--out", out, "--form", form, "--dry-run", "--json")
    assert planned_model(custom) == ("base", "base")
    # A form without the field: the engine's default, as before forms could name a model.
    form.write_text("name: udvalg\n", encoding="utf-8")
    plain = hearing("run", meeting, "--out", out, "--form", form, "--dry-run", "--json")
    assert planned_model(plain) == (None, "base")


@pytest.mark.parametrize(
    ("model", "exit_code", "said"),
    [
        ("no-such-model", 4, "no model named 'no-such-model'"),  # a name the engine does not know
        ("./modeller/ikke-her", 4, "does not exist"),  # a path that is not there
        ("roest-v3-1.5b", 4, "hearing models get roest-v3-1.5b"),  # in the catalogue, not stored here
        # Characters no model name holds: refused in one line that shows them escaped.
        ("base\u202e", 4, "no model named 'base\\u202e'"),
        ("base\nlarge-v3", 4, "no model named 'base\\nlarge-v3'"),
        ("base\x00", 3, "NUL"),
        ("", 3, "is empty"),
    ],
)
def test_a_form_naming_a_model_that_cannot_run_is_refused_at_the_edge(
    store: Path, meeting: Path, tmp_path: Path, model: str, exit_code: int, said: str
) -> None:
    form = tmp_path / "udvalg.yaml"
    form.write_text(f"name: udvalg\nspeech:\n  model: {json.dumps(model)}\n", encoding="utf-8")
    out = tmp_path / "out"
    result = hearing("run", meeting, "--out", out, "--form", form)
    assert result.exit_code == exit_code, result.stderr
    assert said in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()
    # --model wins over the form's model, whatever the form names.
    if exit_code == 4:
        taken = hearing(
            "run", meeting, "--out", out, "--form", form, "--model", "base", "--dry-run", "--json"
        )
        assert planned_model(taken) == ("base", "base")


def test_best_for_danish_takes_the_best_stored_model_for_the_engine(
    store: Path, meeting: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    stored(store, "large-v3-turbo")
    only_turbo = hearing("run", meeting, "--out", out, "--dry-run", "--json")
    assert planned_model(only_turbo) == ("large-v3-turbo", "large-v3-turbo")
    stored(store, "roest-v3-1.5b")
    stored(store, "large-v3")
    ranked = sorted(
        (e for e in catalogue.ENTRIES if e.name in {"roest-v3-1.5b", "large-v3", "large-v3-turbo"}),
        key=lambda e: e.mean_wer or 1e9,
    )
    best = hearing("run", meeting, "--out", out, "--dry-run", "--json")
    assert planned_model(best) == (ranked[0].name, ranked[0].name)
    # Røst is made for faster-whisper only: openai-whisper gets the best stored model it can run.
    for_openai = next(e.name for e in ranked if "openai-whisper" in e.engines)
    openai = hearing("run", meeting, "--out", out, "--dry-run", "--json", "--engine", "openai-whisper")
    assert planned_model(openai) == (for_openai, for_openai)
    # A broken manifest is not an installed model: the next best is taken.
    (store / ranked[0].name / download.MANIFEST).write_text("{", encoding="utf-8")
    next_best = hearing("run", meeting, "--out", out, "--dry-run", "--json")
    assert planned_model(next_best) == (ranked[1].name, ranked[1].name)
    assert not out.exists()


def test_a_run_records_the_model_it_used_and_a_render_reuses_it(
    store: Path, meeting: Path, out_dir: Path
) -> None:
    stored(store, "large-v3-turbo")
    run = hearing("run", meeting, "--out", out_dir, "--quiet")
    assert run.exit_code in (0, 6), run.stderr  # 6: a draft, the default form asks for approval
    report = json.loads(run_record.path_of(out_dir).read_text(encoding="utf-8"))
    assert report["options"]["model"] == report["engine"]["model"] == "large-v3-turbo"
    assert report["engine"]["model_source"] == "catalogue"
    # A better model installed since: the render keeps the model the run used.
    stored(store, "roest-v3-1.5b")
    render = hearing("render", out_dir, "--dry-run", "--json")
    assert planned_model(render) == ("large-v3-turbo", "large-v3-turbo")


def test_a_render_of_an_earlier_run_with_base_keeps_base(store: Path, meeting: Path, out_dir: Path) -> None:
    """A run made before forms named a model recorded none (the engine's default, base): its render
    takes base again, and is not refused because the default form now asks for a model fit for Danish."""

    run = hearing("run", meeting, "--out", out_dir, "--quiet", "--model", "base")
    assert run.exit_code in (0, 6), run.stderr
    record = run_record.path_of(out_dir)
    report = json.loads(record.read_text(encoding="utf-8"))
    assert report["options"]["model"] == report["engine"]["model"] == "base"
    report["options"]["model"] = None  # as the earlier version wrote it
    record.write_text(json.dumps(report), encoding="utf-8")
    render = hearing("render", out_dir, "--dry-run", "--json")
    assert planned_model(render) == ("base", "base")
