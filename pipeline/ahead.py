"""Work done ahead of the plan: one background thread that fills the cache while the engine listens, and
the failures it had, reported once by the run that then does the same work itself."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pipeline import steps
from pipeline.errors import describe

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Failure:
    """Work done ahead that stopped: for what (a recording), and why."""

    what: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"for": self.what, "reason": self.reason}


class WorkAhead:
    """Work done ahead of the plan on one background thread, at a lower priority than the engine's.

    It only ever fills the cache: whatever it does not finish, or gets wrong, the run does in its turn.
    A failure is therefore no reason to stop, but it is no secret either: it is logged once as a
    warning, naming what it was for and why, and kept in ``failures`` for the run's report. The other
    log lines come again when the run gets to the same step, so they are shown only with -vv. Leaving
    the block waits for it. Statements heard side by side submit from threads of their own.
    """

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.RLock()
        self._pending: list[tuple[str, Future[str | None]]] = []
        self._quiet = _QuietAhead()
        self.failures: list[Failure] = []

    def __enter__(self) -> WorkAhead:
        for handler in logging.getLogger("pipeline").handlers:
            handler.addFilter(self._quiet)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
        finally:
            for handler in logging.getLogger("pipeline").handlers:
                handler.removeFilter(self._quiet)
            self._collect()

    def submit(self, what: str, work: Callable[..., object], *args: Any) -> None:
        """``work(*args)`` on the background thread; ``what`` names it (a recording) if it fails."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ahead")
            self._collect(wait=False)
            self._pending.append((what, self._pool.submit(self._do, work, *args)))

    def wait(self) -> None:
        """Until what was submitted is done, so that nothing is made twice at the same time."""
        with self._lock:
            pending = [f for _, f in self._pending]
        futures.wait(pending)
        self._collect()

    def _collect(self, *, wait: bool = True) -> None:
        """The failures of what is done, logged here on the run's own thread (the background thread's
        warnings are kept quiet); what is still running stays pending unless ``wait``."""
        with self._lock:
            self._collect_locked(wait=wait)

    def _collect_locked(self, *, wait: bool) -> None:
        pending = []
        for what, future in self._pending:
            if not future.done() and not wait:
                pending.append((what, future))
                continue
            reason = None if future.cancelled() else future.result()
            if reason is not None:
                log.warning("work done ahead for %s stopped (%s); the run does it in its turn", what, reason)
                self.failures.append(Failure(what, reason))
        self._pending = pending

    @staticmethod
    def _do(work: Callable[..., object], *args: Any) -> str | None:
        from pipeline import media

        with steps.working_ahead(), media.lower_priority():
            try:
                work(*args)
            except KeyboardInterrupt:
                pass  # the run itself stops at its next check
            except Exception as error:
                return describe(error)
        return None


class _QuietAhead(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not steps.is_ahead() or record.levelno >= logging.ERROR or log.isEnabledFor(logging.DEBUG)
