"""The steps of a run as they happen: what each stage did (cached or made, how long, the exact command),
and the progress of long work. Shared by the runner and the stages it hands work to, so that no stage
needs the runner itself."""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from pipeline import interrupt

T = TypeVar("T")


class Progress(Protocol):
    """What the runner tells the caller about long work; the caller draws it (or not)."""

    def begin(self, key: str, label: str) -> None: ...
    def update(self, key: str, fraction: float) -> None: ...
    def end(self, key: str) -> None: ...


class NoProgress:
    def begin(self, key: str, label: str) -> None:
        pass

    def update(self, key: str, fraction: float) -> None:
        pass

    def end(self, key: str) -> None:
        pass


class StopsOnCtrlC:
    """Progress reports come often from deep inside the engines: a good place to notice Ctrl-C."""

    def __init__(self, inner: Progress) -> None:
        self.inner = inner

    def begin(self, key: str, label: str) -> None:
        interrupt.check()
        self.inner.begin(key, label)

    def update(self, key: str, fraction: float) -> None:
        interrupt.check()
        self.inner.update(key, fraction)

    def end(self, key: str) -> None:
        self.inner.end(key)


_ahead: contextvars.ContextVar[bool] = contextvars.ContextVar("working_ahead", default=False)


@contextmanager
def working_ahead() -> Iterator[None]:
    """Stages run inside are work done ahead of the plan (a statement rendered while the engine listens
    to the next one): recorded as such, beside the record of the step that later finds it cached."""
    token = _ahead.set(True)
    try:
        yield
    finally:
        _ahead.reset(token)


def is_ahead() -> bool:
    return _ahead.get()


# Where the stages of work done side by side are recorded until they can take their place in order.
_held: contextvars.ContextVar[list[StageRecord] | None] = contextvars.ContextVar("held_records", default=None)


@dataclass
class StageRecord:
    stage: str
    statement: str | None
    key: str | None
    cached: bool
    seconds: float
    command: str | None = None
    part: str | None = None  # of a render: "title", "card" or "statement"
    ahead: bool = False  # done while the engine listened to a later statement
    # When it began, in seconds after the run's first stage: statements are heard side by side, so
    # stages overlap and their seconds add up to more than the time they took.
    at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "statement": self.statement,
            "key": self.key,
            "cached": self.cached,
            "at": round(self.at, 3),
            "seconds": round(self.seconds, 3),
            **({"part": self.part} if self.part else {}),
            **({"ahead": True} if self.ahead else {}),
            **({"command": self.command} if self.command else {}),
        }


@dataclass
class StageLog:
    """Every stage of a run in the order it ran."""

    records: list[StageRecord] = field(default_factory=list)
    origin: float | None = None

    @contextmanager
    def stage(self, name: str, statement: str | None, key: str | None, cached: bool) -> Iterator[StageRecord]:
        interrupt.check()
        started = time.monotonic()
        if self.origin is None:
            self.origin = started
        record = StageRecord(name, statement, key, cached, 0.0, ahead=is_ahead(), at=started - self.origin)
        try:
            yield record
        finally:
            record.seconds = time.monotonic() - started
            held = _held.get()
            (self.records if held is None else held).append(record)

    def side_by_side(self, works: Sequence[Callable[[], T]], at_once: int) -> list[T]:
        """What each of ``works`` returns, ``at_once`` of them running at a time; their stages are
        recorded in the order of ``works``, as if one had run after the other, so that the record of a
        run reads as its plan (``hearing render --dry-run``) reads, whichever finished first."""
        if at_once < 2 or len(works) < 2:
            return [work() for work in works]
        from concurrent.futures import ThreadPoolExecutor

        held: list[list[StageRecord]] = [[] for _ in works]

        def run(k: int) -> T:
            _held.set(held[k])
            return works[k]()

        with ThreadPoolExecutor(at_once, thread_name_prefix="side-by-side") as pool:
            # Each in a copy of this thread's context: whether the work is done ahead goes with it.
            running = [pool.submit(contextvars.copy_context().run, run, k) for k in range(len(works))]
            try:
                results = [future.result() for future in running]
            finally:
                for future in running:
                    future.cancel()
                for records in held:
                    self.records.extend(records)
        return results


@dataclass(frozen=True)
class PlannedStep:
    """One step of a run's plan: what it makes, from what, under which key, and how.

    ``after`` names what the step waits for where its key depends on what an earlier step makes (a
    transcript's key on the speech audio, a segment's on the measured loudness): the plan is made in
    phases, and a dry run shows such a step as waiting. Steps without a cache (the archive, which keeps
    itself when nothing changed; the check, which always reads the newest files) have no key.
    """

    stage: str
    statement: str | None
    key: str | None
    cached: bool
    inputs: tuple[str, ...] = ()
    command: str | None = None
    part: str | None = None
    after: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "statement": self.statement,
            "key": self.key,
            "cached": self.cached,
            "inputs": list(self.inputs),
            **({"part": self.part} if self.part else {}),
            **({"command": self.command} if self.command else {}),
            **({"after": self.after} if self.after else {}),
        }

    def lines(self) -> list[str]:
        where = f" {self.statement}" if self.statement else ""
        what = f" ({self.part})" if self.part and self.part != "statement" else ""
        state = f"to do, once {self.after}" if self.after else "cached" if self.cached else "to do"
        shown = [f"{self.stage}{what}{where}: {state}"]
        if self.inputs:
            shown.append(f"    from {', '.join(self.inputs)}")
        if self.command and not self.cached:
            shown.append(f"    {self.command}")
        return shown


@dataclass
class Plan:
    """A run's steps in order; a phase that cannot be planned yet says so in ``waiting``."""

    steps: list[PlannedStep] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    # The folder of OUT_DIR the run would put the result in: "delivery", or "draft" where the form
    # requires approval and a statement lacks it (``deliver.outcome``, the check taken as passed).
    destination: str = "delivery"

    def to_json(self) -> dict[str, Any]:
        return {
            "steps": [s.to_json() for s in self.steps],
            "waiting": self.waiting,
            "destination": self.destination,
        }

    def add(self, *steps: PlannedStep) -> None:
        self.steps.extend(steps)

    def lines(self) -> list[str]:
        return [line for step in self.steps for line in step.lines()] + [f"then: {w}" for w in self.waiting]
