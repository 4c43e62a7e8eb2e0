"""`hearing review` started: one review per output folder (``review_lock``: a second one reads the
first one's address from the lock file and joins it), and ``serve``, which listens until Ctrl-C."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline import run_record
from pipeline.errors import Busy, UsageError
from pipeline.files import lock_file
from pipeline.review.guards import page_address
from pipeline.review.server import Server
from pipeline.review.state import Review

log = logging.getLogger(__name__)

LOCK_FILE = ".review.lock"


@contextlib.contextmanager
def review_lock(out_dir: Path) -> Iterator[tuple[int, str | None]]:
    """One review per output folder. Yields (the lock's descriptor, None) to the first review; a second
    one gets (-1, the first one's address) and joins it. The lock file goes when the first review ends
    (``files.lock_file``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        # It holds the page's address with the session's token: for this user's eyes only.
        try:
            fd, address = stack.enter_context(lock_file(out_dir / LOCK_FILE, 0o600, flags=os.O_NOFOLLOW))
        except OSError as error:  # a link there would have us write the address wherever it points
            raise UsageError(
                f"{out_dir / LOCK_FILE}: cannot be opened as a plain file ({error.strerror})"
            ) from None
        if fd is None:
            yield -1, address or None
            return
        with contextlib.suppress(OSError):  # a file system without modes (exFAT)
            os.fchmod(fd, 0o600)
        yield fd, None


def serve(
    out_dir: Path,
    *,
    port: int = 0,
    open_browser: bool = True,
    on_ready: Any = None,
) -> int:
    """Serve the review page until Ctrl-C; ``on_ready(url)`` is told the address once it listens."""
    out_dir = out_dir.resolve()
    if not run_record.path_of(out_dir).exists():
        raise UsageError(
            f"{out_dir} holds no earlier run: run `hearing run MEETING_DIR --out {out_dir}` first"
        )
    with review_lock(out_dir) as (fd, running):
        if fd < 0:
            if not running:
                raise Busy(f"another hearing review is starting in {out_dir}; try again in a moment")
            log.warning("a review of %s is already open at %s: joining it", out_dir, running)
            if on_ready:
                on_ready(running)
            if open_browser:
                _open(running)
            return 0
        review = Review(out_dir)
        try:
            server = Server(review, port)
        except OSError as error:
            raise UsageError(f"--port {port}: cannot listen there ({error.strerror or error})") from None
        url = page_address(server.server_address[1], review.token)
        os.ftruncate(fd, 0)
        os.pwrite(fd, url.encode("ascii"), 0)
        try:
            serve_page(server, url, on_ready=on_ready, open_browser=open_browser, name="review")
        finally:
            os.ftruncate(fd, 0)
    return 0


def serve_page(server: Any, url: str, *, on_ready: Any, open_browser: bool, name: str) -> None:
    """Tell ``url``, open it where asked, and serve until Ctrl-C (the review page and the start page);
    the server is closed however it ends."""
    try:  # a Ctrl-C from the moment the address is out stops it as cleanly as a later one
        if on_ready:
            on_ready(url)
        if open_browser:
            _open(url)
        with _ctrl_c_stops():
            server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        log.info("%s: stopped", name)
    finally:
        server.server_close()


@contextlib.contextmanager
def _ctrl_c_stops() -> Iterator[None]:
    """Ctrl-C stops the server, as it stops a run (``interrupt.guard``): also where the review was started
    with Ctrl-C ignored (a shell's background job), which would leave a server no key can stop."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _open(url: str) -> None:
    import webbrowser

    with contextlib.suppress(Exception):  # no browser (a server without a desktop): the URL is printed
        webbrowser.open(url)
