"""The render the page starts: `hearing render` of the folder run on a thread of the server
(``run_render``), its log lines and the step it is at kept in a ``RenderJob`` the page polls."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError
from pipeline.review.alignment import Alignment

log = logging.getLogger(__name__)


@dataclass
class RenderJob:
    """The `hearing render` the page started, as the page polls it."""

    state: str = "idle"  # idle, running, done, failed
    exit_code: int | None = None
    lines: list[str] = field(default_factory=list)  # the log, for the page's "detaljer"
    started: str | None = None
    step: str = ""  # what it is doing now, in the words of the progress bars ("Samler klippet")
    problems: list[str] = field(default_factory=list)  # why it stopped, one Danish sentence each
    error: str | None = None  # why it failed otherwise

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "exit_code": self.exit_code,
            "last": self.step,
            "lines": self.lines[-60:],
            "started": self.started,
            "problems": self.problems,
            "error": self.error,
        }


def run_render(job: RenderJob, out_dir: Path, alignment: Alignment) -> None:
    """`hearing render` of ``out_dir`` in this process, told to ``job`` as it goes; lent the engine
    ``alignment`` holds (and keeping the one the render loaded)."""
    # The page's "detaljer" get what `hearing render -v` prints; the server's own console keeps its level.
    with logged_to(job.lines, 200):
        _render(job, out_dir, alignment)


def _render(job: RenderJob, out_dir: Path, alignment: Alignment) -> None:
    from pipeline import report, runner
    from pipeline.errors import SubtitleProblems, exit_code_for

    code = 1
    try:
        options = report.options_of_earlier_run(out_dir)
        with alignment.lock:  # after the alignments the page asked for; one user of the engine
            made = runner.Runner(options, _JobProgress(job), alignment.loaded)
            try:
                code = made.run().exit_code
            finally:
                alignment.loaded = alignment.loaded or made.loaded_engine()
    except SubtitleProblems as error:
        job.problems = list(error.problems)
        code = error.exit_code
    except PipelineError as error:
        job.error = str(error)
        code = error.exit_code
    except BaseException as error:  # the page must learn of every end, whatever it was
        log.exception("review: the render stopped")
        job.error = f"unexpected failure: {type(error).__name__}: {error}"
        code = exit_code_for(error)
    finally:
        job.exit_code = code
        # 5 (some recordings rejected) and 6 (a draft, waiting for approvals) made a clip too.
        job.state = "done" if code in (0, 5, 6) else "failed"


@contextlib.contextmanager
def logged_to(lines: list[str], keep: int) -> Iterator[None]:
    """The pipeline's log at info level into ``lines`` (the last ``keep``) while the block runs, for a
    page that shows a job's details; the handlers already there keep their own level."""
    logger = logging.getLogger("pipeline")
    capture = LogLines(lines, keep)
    before = logger.level
    for handler in logger.handlers:
        handler.setLevel(max(handler.level, before))
    logger.addHandler(capture)
    logger.setLevel(min(before or logging.WARNING, logging.INFO))
    try:
        yield
    finally:
        logger.removeHandler(capture)
        logger.setLevel(before)


class LogLines(logging.Handler):
    """A job's log lines, for the page that shows them (the last ``keep``)."""

    def __init__(self, lines: list[str], keep: int) -> None:
        super().__init__(logging.INFO)
        self.lines = lines
        self.keep = keep

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = f"{record.levelname.lower()}: {record.getMessage()}"
        except Exception:  # a record that cannot be formatted must not stop the work
            return
        self.lines.append(text)
        del self.lines[: -self.keep]


class _JobProgress:
    """The render's progress as the page shows it: the step it is at."""

    def __init__(self, job: RenderJob) -> None:
        self.job = job

    def begin(self, key: str, label: str) -> None:
        self.job.step = label

    def update(self, key: str, fraction: float) -> None:
        pass

    def end(self, key: str) -> None:
        pass
