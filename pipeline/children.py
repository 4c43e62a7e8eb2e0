"""The programs the pipeline starts stop with it, however it ends: also when it is killed with SIGKILL,
which nothing inside the pipeline can see.

ffmpeg ignores SIGPIPE, so a pipeline that is gone does not stop it: it runs on to its end, writing into
pipes nobody reads. A ``preexec_fn`` that asks the system to signal the child when its parent dies is
no answer: Python code run in the child of a process with threads can wait for ever on a lock another
thread held at the fork (seen twice), and it exists on Linux only. A process group of its own is none
either: killing the pipeline alone does not kill its group.

So one small watchdog process per pipeline process, started with the first child, holds the read end
of a pipe whose write end only the pipeline holds (it is not inherited by what the pipeline starts).
The pipeline tells it the process id of each child it starts, and of each that has ended. When the pipe
reaches its end, the pipeline has gone, whether it exited or was killed (the system closes its end
either way), and the watchdog ends the children still running: SIGTERM, then SIGKILL after a short
wait. It runs as ``python -I -S`` with nothing but the standard library, so it starts in a few
milliseconds and no setting of the pipeline's environment can change what it does.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import IO

log = logging.getLogger(__name__)

# How long a child has after SIGTERM to finish before it is killed (ffmpeg needs well under a second).
GRACE_SECONDS = 2.0

# The watchdog. Ctrl-C, a closed terminal or a broken pipe must not end it before it has done its work:
# it ends when the pipeline has gone, never before.
WATCHDOG = r"""
import os, signal, sys, time

for name in ("SIGINT", "SIGHUP", "SIGPIPE"):
    if hasattr(signal, name):
        signal.signal(getattr(signal, name), signal.SIG_IGN)
grace = float(sys.argv[1])


def started(pid):
    # When the process started, where the system says (Linux): a number that a later process given
    # the same id does not share. None elsewhere, or when it has gone; "Z" when it has ended.
    try:
        with open("/proc/%d/stat" % pid, "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return "Z" if fields[0] == b"Z" else fields[19]


def alive(pid, stamp):
    if stamp is not None and started(pid) != stamp:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


running = {}
for line in sys.stdin.buffer:
    try:
        pid = int(line[1:])
    except ValueError:
        continue
    if line[:1] == b"+":
        running[pid] = started(pid)
    elif line[:1] == b"-":
        running.pop(pid, None)
left = [pid for pid, stamp in running.items() if alive(pid, stamp)]
for pid in left:
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError:
        pass
deadline = time.monotonic() + grace
while left and time.monotonic() < deadline:
    time.sleep(0.05)
    left = [pid for pid in left if alive(pid, running[pid])]
for pid in left:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
"""


class _Watchdog:
    """The watchdog of this process, started at the first child it is told of."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.process: subprocess.Popen[bytes] | None = None
        self.owner = 0  # the pipeline process it watches: a forked copy of the pipeline needs its own
        self.registered = False

    def tell(self, line: bytes, *, start: bool) -> None:
        with self.lock:
            stdin = self._stdin(start)
            if stdin is None:
                return
            try:
                stdin.write(line)
                stdin.flush()
            except OSError:
                # It has gone (killed by someone): the next child starts another.
                self.process = None

    def _stdin(self, start: bool) -> IO[bytes] | None:
        process = self.process
        if process is not None and self.owner == os.getpid() and process.poll() is None:
            return process.stdin
        if not start or os.name != "posix" or not sys.executable:
            return None
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", WATCHDOG, str(GRACE_SECONDS)],
                stdin=subprocess.PIPE,
                # Nothing of the pipeline's own output: a caller waiting for it to close is not kept
                # waiting by the watchdog.
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                close_fds=True,
            )
        except OSError as error:
            log.debug("no watchdog for the programs the pipeline starts: %s", error)
            self.process = None
            return None
        self.owner = os.getpid()
        if not self.registered:
            atexit.register(self.close)
            self.registered = True
        return self.process.stdin

    def close(self) -> None:
        """At a normal exit: the watchdog ends what is still running (work left on a background
        thread) and then itself."""
        with self.lock:
            process, self.process = self.process, None
        if process is None or self.owner != os.getpid():
            return
        with contextlib.suppress(OSError):
            if process.stdin is not None:
                process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=GRACE_SECONDS + 1)


_watchdog = _Watchdog()


@contextlib.contextmanager
def watched(process: subprocess.Popen[bytes]) -> Iterator[None]:
    """While the block runs, ``process`` ends with the pipeline. Leave the block only once the process
    has ended (after ``wait``), so its id is not given to another process while the watchdog has it."""
    _watchdog.tell(b"+%d\n" % process.pid, start=True)
    try:
        yield
    finally:
        _watchdog.tell(b"-%d\n" % process.pid, start=False)
