"""Ctrl-C that is never lost, and never shows a traceback.

Python's own handler raises KeyboardInterrupt wherever the main thread happens to be; one that lands in a
finaliser or an at-fork callback (every time a child process starts) is swallowed and printed as
"Exception ignored in ...". So the first Ctrl-C only records the request, and the pipeline stops at the
next check: at every stage, every progress report and around every child process (which the same Ctrl-C
stops too). A second Ctrl-C stops at once.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

_requested = threading.Event()


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    if _requested.is_set():
        raise KeyboardInterrupt
    _requested.set()


def request() -> None:
    """Ask for a stop as a first Ctrl-C does: for a run on another thread than the one Ctrl-C reached
    (the run `hearing start` started on a thread of its server)."""
    _requested.set()


def check() -> None:
    """Raise KeyboardInterrupt if Ctrl-C was pressed, even when the first one was swallowed."""
    if _requested.is_set():
        raise KeyboardInterrupt


@contextmanager
def guard() -> Iterator[None]:
    """Install the handler for the duration of a run (main thread only, where signals are delivered)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, _on_sigint)
    _requested.clear()
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
