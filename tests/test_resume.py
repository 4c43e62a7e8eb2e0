"""Nothing lost: a killed run resumes, a second run is refused, Ctrl-C says how to go on, disk is checked."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import REPO, run_cli, tree_digest

DEMO = REPO / "samples" / "borgermoede-nordby"


def start(*args: str | Path) -> subprocess.Popen[str]:
    """`hearing ARGS` in its own process group, so a kill takes its ffmpeg children along, as a crash does."""
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_for(
    condition: Callable[[], bool], process: subprocess.Popen[str], what: str, timeout: float = 300
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the run ended before {what}: {process.stderr.read() if process.stderr else ''}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def kill(process: subprocess.Popen[str]) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def files_in(folder: Path, pattern: str) -> list[Path]:
    return sorted(folder.glob(pattern)) if folder.is_dir() else []


def assert_delivery_complete(out: Path) -> None:
    delivery = out / "delivery"
    sums = (delivery / "SHA256SUMS").read_text(encoding="utf-8").splitlines()
    assert len(sums) >= 6
    for line in sums:
        digest, name = line.split("  ", 1)
        assert hashlib.sha256((delivery / name).read_bytes()).hexdigest() == digest, name
    leftovers = [p for p in out.rglob("*.part")]
    assert not leftovers, leftovers


@pytest.mark.slow
def test_killed_runs_resume_and_reuse_what_was_finished(out_dir: Path, small_form: Path) -> None:
    before = tree_digest(DEMO)
    args = ("run", DEMO, "--out", out_dir, "--form", small_form, "--quiet")
    work = out_dir / "work"

    # 1. Killed during transcription, after the first statement was written down.
    process = start(*args)
    wait_for(lambda: len(files_in(work / "transcripts", "*.json")) >= 1, process, "the first transcript")
    kill(process)
    done_transcripts = {p.name for p in files_in(work / "transcripts", "*.json")}
    assert not (out_dir / "delivery").exists()

    # 2. Killed while rendering, after the first segments were finished.
    process = start(*args)
    wait_for(lambda: len(files_in(work / "segments", "*.mov")) >= 2, process, "the first segments")
    kill(process)
    # run.json is written when a run ends: a killed one leaves no report that could pass for finished.
    assert not (out_dir / "run.json").exists()
    assert done_transcripts <= {p.name for p in files_in(work / "transcripts", "*.json")}
    done_segments = {p.name for p in files_in(work / "segments", "*.mov")}

    # 3. Killed while joining the segments into the clip.
    process = start(*args)
    wait_for(lambda: len(files_in(work / "clip", "*.txt")) >= 1, process, "the join")
    kill(process)
    assert not files_in(out_dir / "delivery", "*.mp4"), "a half-joined clip reached the delivery"

    # 4. The last run finishes, reusing everything that was done.
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    report = json.loads((out_dir / "run.json").read_text(encoding="utf-8"))
    cached = {(s["stage"], s["key"]) for s in report["stages"] if s["cached"]}
    transcribed = {f"{key}.json" for stage, key in cached if stage == "transcribe"}
    assert done_transcripts <= transcribed, "a transcript finished before the kill was made again"
    rendered = {f"{key}.mov" for stage, key in cached if stage == "render"}
    assert done_segments <= rendered, "a segment finished before the kill was rendered again"
    assert_delivery_complete(out_dir)
    verified = run_cli("verify", out_dir / "archive")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert tree_digest(DEMO) == before


@pytest.mark.slow
def test_a_second_run_on_the_same_output_is_refused(out_dir: Path, small_form: Path) -> None:
    args = ("run", DEMO, "--out", out_dir, "--form", small_form, "--quiet")
    first = start(*args)
    try:
        wait_for(
            lambda: (out_dir / "work" / "hashes.json").exists() or (out_dir / "work").is_dir(),
            first,
            "the first run to start",
        )
        second = run_cli(*args)
        assert second.returncode == 1
        assert "another hearing run" in second.stderr and "Traceback" not in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1
    finally:
        kill(first)


@pytest.mark.slow
@pytest.mark.parametrize("when", ["audio", "transcripts"])
def test_ctrl_c_exits_130_and_says_how_to_resume(when: str, out_dir: Path, small_form: Path) -> None:
    process = start("run", DEMO, "--out", out_dir, "--form", small_form, "--quiet")
    # While decoding the first audio (ffmpeg running), or while the engine is busy with the second statement.
    wait_for(lambda: bool(files_in(out_dir / "work" / when, "*")), process, f"work in {when}")
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "run the same command again to resume" in stderr and "Traceback" not in stderr
    assert (out_dir / "run.json").exists(), stderr
    report = json.loads((out_dir / "run.json").read_text(encoding="utf-8"))
    assert report["exit_code"] == 130


def test_disk_space_estimate_and_refusal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil
    from collections import namedtuple

    from pipeline.config import Form
    from pipeline.errors import DiskFull
    from pipeline.out_folder import estimate_need
    from pipeline.report import RunOptions
    from pipeline.runner import Runner

    form = Form()
    one_minute = estimate_need(form, speech_ms=60_000, clip_ms=60_000, archive_bytes=100_000_000)
    assert 150_000_000 < one_minute < 400_000_000
    assert estimate_need(form, speech_ms=0, clip_ms=0, archive_bytes=0) == 0

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _path: usage(10**9, 10**9 - 1000, 1000))
    runner = Runner(RunOptions(meeting_dir=DEMO, out_dir=tmp_path / "out", form="demo"))
    with pytest.raises(DiskFull) as caught:
        runner.run()
    message = str(caught.value)
    assert "needs about" in message and "1.0 kB is free" in message
    assert caught.value.exit_code == 1


@pytest.mark.slow
def test_killed_while_bagging_leaves_no_half_bag_and_resumes(
    real_media: Path, make_meeting, out_dir: Path, small_form: Path, tmp_path: Path
) -> None:
    # A large (unusable, but received and so archived) file makes the copy take long enough to interrupt.
    big = tmp_path / "big.bin"
    with big.open("wb") as handle:
        block = os.urandom(1 << 20)
        for _ in range(400):
            handle.write(block)
    meeting = make_meeting({"01-tale.flac": real_media / "en-jfk.flac", "02-stor.mp4": big})
    args = ("run", meeting, "--out", out_dir, "--form", small_form, "--language", "en", "--quiet")
    process = start(*args)

    def halfway() -> bool:
        copies = files_in(out_dir / "work", "archive-staging-*/data/recordings/02-stor.mp4")
        return any(0 < copy.stat().st_size < 400 << 20 for copy in copies)

    wait_for(halfway, process, "the large file halfway copied into the bag")
    kill(process)
    archive = out_dir / "archive"
    # Killed halfway through the copy: the half bag stays in work/, OUT/archive is never a half bag.
    assert not archive.exists()
    assert files_in(out_dir / "work", "archive-staging-*")

    result = run_cli(*args)
    assert result.returncode == 5, result.stderr  # the large file is no recording: rejected, but archived
    assert "02-stor.mp4" in result.stderr
    verified = run_cli("verify", archive)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert (archive / "data" / "recordings" / "02-stor.mp4").stat().st_size == 400 << 20
    assert_delivery_complete(out_dir)
    assert not files_in(out_dir / "work", "archive-staging-*")
