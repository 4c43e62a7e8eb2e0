"""Shared test helpers: the real recordings in tests/media, meeting folders, and running the CLI.

No test skips for a file of the repository or a tool `.ci/run` installs: such a skip fails the suite
(``pytest_runtest_makereport``), naming what is missing. Only what a user's machine may really lack
(``MAY_LACK``) skips."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from click.testing import Result

REPO = Path(__file__).resolve().parents[1]
MEDIA = REPO / "tests" / "media"  # the real recordings, with their licences (tests/media/README.md)
TEST_OUTPUT = REPO / "test-output"


def pytest_configure(config: pytest.Config) -> None:
    # One model cache for the whole session (and across local runs), never the user's own.
    os.environ.setdefault("HEARING_PIPELINE_CACHE", str(TEST_OUTPUT / "cache"))
    # A test must never reach a model hub; a model asked for by name has to fail offline.
    os.environ["HF_HUB_OFFLINE"] = "1"
    # The property tests draw the same examples on every run (a failure found once is made an explicit
    # @example), so the suite's verdict does not depend on luck; HYPOTHESIS_PROFILE=explore draws anew.
    from hypothesis import settings

    settings.register_profile("repeatable", derandomize=True)
    settings.register_profile("explore", derandomize=False)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


@pytest.fixture(scope="session")
def real_media() -> Path:
    if not (MEDIA / "en-jfk.flac").exists():
        pytest.fail(
            f"the real recordings are missing from {MEDIA.relative_to(REPO)} (a file of the repository)"
        )
    return MEDIA


# Skips allowed: what a user's machine may really lack. Any other skip is a missing file of the
# repository or a missing tool that .ci/run installs, and fails the suite.
MAY_LACK = ("without user namespaces",)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if not any(allowed in reason for allowed in MAY_LACK):
            report.outcome = "failed"
            report.longrepr = f"skipped for what the repository or .ci/run provides: {reason}"


def unprivileged_prefix() -> list[str] | None:
    """How to start a process so that file permissions apply to it: as it is, or, for root (who reads and
    writes any file), inside a user namespace where this user is mapped to an ordinary one and owns its
    files as that user, so chmod locks it out while everything else stays as it was. None when neither
    works here (a machine without user namespaces: ``MAY_LACK``)."""
    import shutil

    if os.geteuid() != 0:
        return []
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    prefix = [unshare, "--user", "--map-user=65534", "--map-group=65534"]
    works = subprocess.run([*prefix, "true"], capture_output=True, check=False)
    return prefix if works.returncode == 0 else None


@pytest.fixture
def out_dir(request: pytest.FixtureRequest) -> Path:
    """A folder under test-output/ named after the test, kept after the run so results can be looked at."""
    import shutil

    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    path = TEST_OUTPUT / "runs" / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def hearing(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    """`hearing ARGS` in this process (click's CliRunner), for what needs no process of its own: the same
    exit code, stdout and stderr in milliseconds. The logging the command sets up and the collector it
    freezes are put back afterwards, so that later tests see them as they were. A run of the engines
    and ffmpeg as a user makes it, a kill or a signal, or settings read once per process (the model
    hub's) take ``run_cli``."""
    import gc
    import logging

    from click.testing import CliRunner

    from pipeline.cli import main

    logger = logging.getLogger("pipeline")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    try:
        return CliRunner().invoke(main, [str(a) for a in args], env=env, catch_exceptions=False)
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved
        gc.unfreeze()


def run_here(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`hearing ARGS` in this process (``hearing``), answered in the shape ``run_cli`` answers: for a test
    written against a separate process that needs none. Not for an ``env`` the product reads once per
    process (``HEARING_FFMPEG``, the model cache): those take ``run_cli``."""
    result = hearing(*args, env=env)
    return subprocess.CompletedProcess(
        ["hearing", *map(str, args)], result.exit_code, result.stdout, result.stderr
    )


def run_cli(
    *args: str | Path, env: dict[str, str] | None = None, timeout: int = 900
) -> subprocess.CompletedProcess[str]:
    """`hearing ARGS` as a user runs it, in a separate process."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *map(str, args)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        check=False,
    )


def ffmpeg(*args: str | Path) -> None:
    """Make a test file with the same ffmpeg the product uses (quiet, failing loudly)."""
    from pipeline.media import ffmpeg_exe

    subprocess.run(
        [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *map(str, args)],
        check=True,
    )


def tree_digest(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` with its SHA-256, and every folder: to prove nothing was written."""
    result: dict[str, str] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_symlink():
            result[rel] = "link:" + os.readlink(path)
        elif path.is_dir():
            result[rel] = "dir"
        else:
            result[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return result


def words_of(text: str) -> list[str]:
    """Lowercase words without punctuation, for word error rate (Danish letters kept)."""
    return re.findall(r"[\wæøåÆØÅ']+", text.lower().replace("-", " "))


def word_error_rate(reference: str, hypothesis: str) -> float:
    import jiwer

    ref = " ".join(words_of(reference))
    hyp = " ".join(words_of(hypothesis))
    return float(jiwer.wer(ref, hyp))


@pytest.fixture
def make_meeting(tmp_path: Path) -> Callable[..., Path]:
    """A meeting folder with the given files (name -> source path or bytes) and optional meeting.yaml."""

    def make(files: dict[str, Path | bytes], meeting_yaml: str | None = None, name: str = "moede") -> Path:
        folder = tmp_path / name
        folder.mkdir()
        for relpath, content in files.items():
            target = folder / relpath
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_bytes(Path(content).read_bytes())
        if meeting_yaml is not None:
            (folder / "meeting.yaml").write_text(meeting_yaml, encoding="utf-8")
        return folder

    return make


# A form that keeps renders quick: a small picture and the fastest encoder preset.
SMALL_FORM = """\
name: lille
clip:
  max_duration: 300
  max_statement: 150
  over_length: trim
  title_card: {enabled: true, seconds: 1.5}
  statement_cards: {enabled: true, seconds: 1}
  silence_trim: {enabled: true, padding: 0.4}
video: {width: 640, height: 360, fps: 25, crf: 30, preset: ultrafast}
subtitles: {mode: burn+soft}
"""


@pytest.fixture
def small_form(tmp_path: Path) -> Path:
    path = tmp_path / "lille.yaml"
    path.write_text(SMALL_FORM, encoding="utf-8")
    return path


@pytest.fixture
def base_as_a_large_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """The embedded base model set up as a large model with a deep decoder is, on two cores: two statements
    heard at once (``faster.listening``), in seconds where a real large model would take minutes."""
    from pipeline.engines import faster

    monkeypatch.setattr(faster, "LARGE_MODEL_BYTES", 0)
    monkeypatch.setattr(faster, "DEEP_DECODER_LAYERS", 0)
    monkeypatch.setattr(faster.os, "cpu_count", lambda: 2)


class ModelBuilds:
    """Each time faster-whisper's engine builds its model, and for which engine: at its making ("made")
    or set up again ("again")."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from pipeline.engines import faster

        self.built: list[tuple[str, Any]] = []
        make, again = faster.FasterWhisperEngine.__init__, faster.FasterWhisperEngine._load_model

        def making(engine: Any, *args: Any, **kwargs: Any) -> None:
            self.built.append(("made", engine))
            make(engine, *args, **kwargs)

        def setting_up_again(engine: Any) -> None:
            self.built.append(("again", engine))
            again(engine)

        monkeypatch.setattr(faster.FasterWhisperEngine, "__init__", making)
        monkeypatch.setattr(faster.FasterWhisperEngine, "_load_model", setting_up_again)

    def of(self, engine: object) -> list[str]:
        return [kind for kind, made in self.built if made is engine]


@pytest.fixture
def model_builds(monkeypatch: pytest.MonkeyPatch) -> ModelBuilds:
    return ModelBuilds(monkeypatch)


class DemoRun:
    """One `hearing demo` from scratch, shared by the tests that look at what it delivered."""

    def __init__(self, out: Path, result: subprocess.CompletedProcess[str], samples: dict[str, str]) -> None:
        self.out = out
        self.result = result
        self.samples_before = samples  # samples/ before the run, which only ever reads it
        # Its own run.json, as it was: tests that run the demo again in the same folder replace the file.
        report = out / "run.json"
        self.report = json.loads(report.read_text(encoding="utf-8")) if report.exists() else {}


@pytest.fixture(scope="session")
def demo_run() -> DemoRun:
    # A demo from scratch takes a minute: the tests that only look at its delivery share one run.
    import shutil

    out = TEST_OUTPUT / "runs" / "demo-shared"
    shutil.rmtree(out, ignore_errors=True)
    samples = tree_digest(REPO / "samples")
    return DemoRun(out, run_cli("demo", "--out", out), samples)
