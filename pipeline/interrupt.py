"""Ctrl-C that is never lost.

Python raises KeyboardInterrupt wherever the main thread happens to be, and an interrupt that lands in a
finaliser or a library callback is swallowed ("Exception ignored in ..."). The handler therefore also
remembers the request, and the pipeline checks it at every stage and around every child process.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

_requested = threading.Event()


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    _requested.set()
    raise KeyboardInterrupt


def requested() -> bool:
    return _requested.is_set()


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
