"""The run the page of `hearing start` starts: the same ``Runner`` as `hearing run` (or, for the ZIP, as
`hearing render --zip`), on a thread of the server, its progress kept per step (each stage and
statement, with the time left where the step reports its share done) in a ``Job`` the page polls."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import PipelineError
from pipeline.review.render_job import logged_to
from pipeline.texts import start as texts

log = logging.getLogger(__name__)


@dataclass
class Step:
    label: str  # in the words of the progress bars ("Transskriberer 01-anna.mp4")
    began: float
    fraction: float = 0.0
    ended: bool = False

    def to_json(self, now: float) -> dict[str, Any]:
        left = None
        spent = now - self.began
        if not self.ended and 0.05 <= self.fraction < 1 and spent > 1:
            left = texts.PAGE["time_left"].format(
                time=texts.duration(int(spent / self.fraction * (1 - self.fraction) * 1000))
            )
        return {"label": self.label, "fraction": round(self.fraction, 3), "ended": self.ended, "left": left}


@dataclass
class Job:
    """A run the page started, as the page polls it."""

    kind: str = ""  # run, zip
    state: str = "idle"  # idle, running, done, failed
    exit_code: int | None = None
    steps: dict[str, Step] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)  # the log, for the page's details
    message: str = ""  # how it ended, in Danish
    rejected: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def to_json(self) -> dict[str, Any]:
        now = time.monotonic()
        with self.lock:
            steps = [step.to_json(now) for step in self.steps.values()]
        return {
            "kind": self.kind,
            "state": self.state,
            "exit_code": self.exit_code,
            "steps": steps,
            "lines": self.lines[-80:],
            "message": self.message,
            "rejected": self.rejected,
        }


def run(job: Job, make: Callable[[Any], Any], after: Callable[[int], None]) -> None:
    """Run the runner ``make(progress)`` returns, told to ``job`` as it goes; ``after(exit code)`` once it
    has ended, however it ended."""

    with logged_to(job.lines, 300):
        _run(job, make, after)


def _run(job: Job, make: Callable[[Any], Any], after: Callable[[int], None]) -> None:
    from pipeline.errors import exit_code_for

    code = 1
    runner = None
    try:
        runner = make(_JobProgress(job))
        code = runner.run().exit_code
    except PipelineError as error:
        job.lines.append(f"error: {error}")
        code = error.exit_code
    except KeyboardInterrupt as error:  # Ctrl-C on the server: the run stopped where a run stops
        code = exit_code_for(error)
    except BaseException as error:  # the page must learn of every end, whatever it was
        log.exception("start: the run stopped")
        job.lines.append(f"error: unexpected failure: {type(error).__name__}: {error}")
        code = exit_code_for(error)
    finally:
        if runner is not None:
            report = runner.report
            job.rejected = [
                {"file": r.relpath, "reason": texts.unusable(r.reason)}
                for r in (*report.rejected, *report.withheld)
            ]
        job.exit_code = code
        job.message = texts.run_ended(code)
        with job.lock:
            for step in job.steps.values():
                step.ended = True
        job.state = "done" if code in (0, 5, 6) else "failed"
        try:
            after(code)
        except Exception:
            log.exception("start: after the run")


class _JobProgress:
    """The runner's progress bars, as steps the page shows."""

    def __init__(self, job: Job) -> None:
        self.job = job

    def begin(self, key: str, label: str) -> None:
        with self.job.lock:
            self.job.steps[key] = Step(label, time.monotonic())

    def update(self, key: str, fraction: float) -> None:
        with self.job.lock:
            step = self.job.steps.get(key)
            if step is not None:
                step.fraction = max(0.0, min(1.0, fraction))

    def end(self, key: str) -> None:
        with self.job.lock:
            step = self.job.steps.get(key)
            if step is not None:
                step.ended = True
                step.fraction = 1.0
