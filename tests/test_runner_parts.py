"""The runner's parts on their own: the shape of runner.py, work done ahead that fails, the transcript
writer that starts only when asked, and the run report built once from what had finished."""

from __future__ import annotations

import ast
import dataclasses
import logging
import threading
from pathlib import Path

import pytest

from pipeline.ahead import Failure, WorkAhead
from pipeline.errors import EXIT_OK, UsageError
from pipeline.report import Finished, RunOptions, RunReport, Setup, build
from pipeline.steps import Plan

RUNNER = Path(__file__).resolve().parent.parent / "pipeline" / "runner.py"


def test_runner_is_short_and_so_are_its_functions() -> None:
    source = RUNNER.read_text(encoding="utf-8")
    assert len(source.splitlines()) <= 600
    functions = [
        (node.end_lineno - node.lineno + 1, node.name)  # type: ignore[operator]
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]
    assert functions, "no function found: the count would prove nothing"
    too_long = [(n, name) for n, name in functions if n > 80]
    assert not too_long, too_long


def _broken(what: str) -> None:
    raise OSError(f"no room for {what}")


@pytest.mark.parametrize(
    "error", [OSError("disk full"), ValueError(""), RuntimeError("line one\nline two")], ids=repr
)
def test_work_ahead_that_fails_is_told_once_and_kept(
    error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    done: list[str] = []

    def fails() -> None:
        raise error

    caplog.set_level(logging.INFO, logger="pipeline")
    with WorkAhead() as ahead:
        ahead.submit("recordings/01-anna.mp4", fails)
        ahead.submit("recordings/02-bo.mp4", done.append, "made")
        ahead.wait()
        ahead.submit("recordings/03-eva.mp4", done.append, "made again")
        ahead.wait()  # leaving the block cancels what has not started
    # What did not fail is done; the failure does not stop the work that follows it.
    assert done == ["made", "made again"]
    assert len(ahead.failures) == 1
    (failure,) = ahead.failures
    assert failure.what == "recordings/01-anna.mp4"
    assert type(error).__name__ in failure.reason or str(error) in failure.reason
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "ahead" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]
    assert "recordings/01-anna.mp4" in warnings[0].getMessage()
    # Told on the run's own thread, where the progress display lets it through.
    assert warnings[0].threadName == threading.current_thread().name


def test_work_ahead_failure_is_told_when_the_block_ends(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pipeline")
    with WorkAhead() as ahead:
        ahead.submit("recordings/ø æ å.wav", _broken, "the segment")
    assert [f.what for f in ahead.failures] == ["recordings/ø æ å.wav"]
    assert "no room for the segment" in ahead.failures[0].reason
    assert sum("ø æ å.wav" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING) == 1


def test_documents_start_only_when_asked(tmp_path: Path) -> None:
    from pipeline.stages import deliver

    before = {t.name for t in threading.enumerate()}
    # Contents the writer could not even build a document of: constructing must not look at them.
    contents = deliver.Contents(
        meeting=None,  # type: ignore[arg-type]
        facts=None,  # type: ignore[arg-type]
        form=dataclasses.make_dataclass("F", ["transcript"])(  # the formats are all it reads up front
            dataclasses.make_dataclass("T", ["formats"])(("txt",))
        ),
        name="møde",
        language="da",
        statements=(),
        transcripts={},
        spans_ms={},
        approvals={},
    )
    documents = deliver.Documents(tmp_path, contents, steps=None)  # type: ignore[arg-type]
    assert {t.name for t in threading.enumerate()} == before
    assert not any(name.startswith("documents") for name in {t.name for t in threading.enumerate()})
    assert not list(tmp_path.iterdir())
    with pytest.raises(RuntimeError, match="never started"):
        documents.files()
    documents.close()  # closing what never started is harmless


def _report(done: Finished, *, exit_code: int = EXIT_OK, error: str | None = None) -> RunReport:
    return build(
        RunOptions(meeting_dir=Path("/møde")),
        done,
        started="2024-01-01T00:00:00+00:00",
        out_dir=Path("/møde-output"),
        stages=[],
        plan=Plan(),
        exit_code=exit_code,
        error=error,
    )


def test_report_is_frozen_and_records_failures_ahead_only_where_there_were_some() -> None:
    quiet = _report(Finished())
    with pytest.raises(dataclasses.FrozenInstanceError):
        quiet.exit_code = 1  # type: ignore[misc]
    assert "ahead_failures" not in quiet.to_json()
    done = Finished(ahead_failures=(Failure("recordings/01.mp4", "unexpected failure: OSError: full"),))
    record = _report(done).to_json()
    assert record["ahead_failures"] == [
        {"for": "recordings/01.mp4", "reason": "unexpected failure: OSError: full"}
    ]
    # Everything else is as for a run where nothing failed ahead.
    rest = {k: v for k, v in record.items() if k != "ahead_failures"}
    assert rest == quiet.to_json()


def test_report_of_a_stopped_run_says_what_had_finished() -> None:
    stopped = _report(
        Finished(setup=Setup(delivery_name="borgermøde", ffmpeg="5.1"), language="da"),
        exit_code=UsageError.exit_code,
        error="interrupted; a re-run resumes",
    ).to_json()
    assert (
        stopped["exit_code"] == UsageError.exit_code and stopped["error"] == "interrupted; a re-run resumes"
    )
    assert stopped["delivery"]["name"] == "borgermøde" and stopped["ffmpeg"] == {"version": "5.1"}
    assert stopped["language"] == "da" and stopped["settings"]["language"] == "da"
    # Nothing was heard, cut or delivered: none of it is claimed.
    assert stopped["statements"] == [] and stopped["cuts"] == {} and stopped["delivery"]["files"] == []
    assert stopped["qc"] is None and stopped["archive"] is None and stopped["draft"] is False


def test_a_run_that_stops_before_work_reports_once_with_its_reason(tmp_path: Path) -> None:
    from pipeline.runner import Runner

    missing = tmp_path / "ikke-her"
    runner = Runner(RunOptions(meeting_dir=missing, out_dir=tmp_path / "out"))
    with pytest.raises(UsageError) as raised:
        runner.run()
    report = runner.report
    assert report is runner.report, "the report is built once, when the run ends"
    assert report.exit_code == UsageError.exit_code == raised.value.exit_code
    assert report.error == str(raised.value) and "not a folder" in report.error
    assert not (tmp_path / "out").exists(), "nothing is written before the checks pass"


def test_work_side_by_side_is_recorded_in_the_order_it_was_given() -> None:
    """The first work finishes last, yet the stages read as the plan reads; each work's own stages stay
    together, its results come back in order, and work done ahead stays marked as such."""
    from pipeline.steps import StageLog, working_ahead

    log = StageLog()
    second_done = threading.Event()

    def work(name: str, wait: threading.Event | None, done: threading.Event | None) -> str:
        with log.stage("render", name, f"{name}-clean", False):
            if wait is not None:
                assert wait.wait(10), "the works did not run side by side"
        with log.stage("burn", name, f"{name}-burned", False):
            pass
        if done is not None:
            done.set()
        return name

    with working_ahead():
        results = log.side_by_side(
            [lambda: work("s01", second_done, None), lambda: work("s02", None, second_done)], 2
        )
    assert results == ["s01", "s02"]
    assert [(r.stage, r.statement) for r in log.records] == [
        ("render", "s01"), ("burn", "s01"), ("render", "s02"), ("burn", "s02"),
    ]  # fmt: skip
    assert all(r.ahead for r in log.records)
    # One at a time where there is one core: in the order given, nothing held back.
    alone = StageLog()
    assert alone.side_by_side([lambda: 1, lambda: 2], 1) == [1, 2]
