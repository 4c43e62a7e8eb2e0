"""The one module that starts programs: ffmpeg (``run``), and the watchdog that ends what is still
running when the pipeline ends. Each command is logged exactly (``shlex.join``) and a failure raises
MediaError with the command and the tail of ffmpeg's stderr.

The programs the pipeline starts stop with it, however it ends: also when it is killed with SIGKILL,
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
import collections
import contextlib
import contextvars
import itertools
import logging
import os
import shlex
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pipeline import interrupt
from pipeline.errors import MediaError, MissingToolError
from pipeline.media import stderr

log = logging.getLogger("pipeline.media")

STDERR_TAIL_LINES = 12
ERROR_TAIL_LINES = 40  # of stderr kept with a failure, for -v
KEPT_ERROR_LINES = 20


@dataclass(frozen=True)
class FfmpegResult:
    stdout: str
    stderr_tail: tuple[str, ...]  # warnings ffmpeg printed although it succeeded


# How much lower than the pipeline's own the priority of the ffmpeg it starts is: raised for work done
# ahead (a statement rendered while the next is transcribed), which should fill only the cycles the
# engine leaves free. Nice alone does not do that: the scheduler weighs each thread, and ffmpeg's dozen
# threads at nice 10 together took a large share from the engine's two. In Linux's idle class they run
# only where no other thread wants the core (measured side by side on a queue of five statements: the
# transcription stage 62-65 s against 71-73 s at nice 19 and 78-84 s at nice 10 with turbo's shape,
# 135 s against 150 s at nice 10 with large-v3's, the whole run the same within the machine's noise;
# docs/performance.md). Elsewhere nice 19. Per thread, like everything a context variable holds.
_niceness: contextvars.ContextVar[int] = contextvars.ContextVar("ffmpeg_niceness", default=0)
AHEAD_NICENESS = 19


@contextlib.contextmanager
def lower_priority(niceness: int = AHEAD_NICENESS) -> Iterator[None]:
    """ffmpeg started inside runs at a lower priority than the pipeline: ``niceness`` below it, and in
    the idle class where the system has one."""
    token = _niceness.set(niceness)
    try:
        yield
    finally:
        _niceness.reset(token)


def _lower_priority(pid: int, niceness: int) -> None:
    """Set from the parent right after the start, before ffmpeg makes its threads (they inherit it):
    ``niceness`` below the pipeline's own, and the idle class where there is one."""
    if not niceness:
        return
    if hasattr(os, "setpriority"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, pid, os.getpriority(os.PRIO_PROCESS, 0) + niceness)
    if hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_IDLE"):
        with contextlib.suppress(OSError):
            os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0))


def run(
    program: str,
    args: Sequence[str],
    *,
    what: str,
    duration_ms: int | None = None,
    on_progress: Callable[[float], None] | None = None,
    quiet: bool = False,
    stderr_lines: int | None = STDERR_TAIL_LINES,
) -> FfmpegResult:
    """Run the ffmpeg ``program`` with ``args`` (without the program name); return its output, with the
    last ``stderr_lines`` lines of its stderr (None: every line). ``media.run_ffmpeg`` runs the chosen
    ffmpeg through this.

    With ``duration_ms`` and ``on_progress`` the share done is reported from ffmpeg's ``-progress``
    output. Raises MediaError carrying the command, the tail of stderr and, as its message, the line of
    stderr that says most about what went wrong.
    """
    command = [program, *args]
    if on_progress is not None and duration_ms:
        command[1:1] = ["-progress", "pipe:1", "-nostats"]
    (log.debug if quiet else log.info)("%s: %s", what, shlex.join(command))
    _check_inputs(command, what)
    kept = None if stderr_lines is None else max(stderr_lines, ERROR_TAIL_LINES)
    tail: collections.deque[str] = collections.deque(maxlen=kept)
    # The cause is often printed early and followed by pages of summary; keep the error lines apart.
    errors: list[str] = []
    out_lines: list[str] = []
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            # No preexec_fn (it once set PR_SET_PDEATHSIG): Python code in the child of a process with
            # other threads can wait for ever on a lock one of them held at the fork (seen twice: an
            # import lock, and a fork beside the engine). Without it the child only execs. A pipeline
            # that is killed still stops its ffmpeg: the watchdog below sees it go.
        )
    except OSError as error:
        raise MissingToolError(
            f"ffmpeg could not be started ({error.strerror})", "check the ffmpeg install"
        ) from None
    # From here on, whatever happens (an error, Ctrl-C, the pipeline killed) ends this ffmpeg too.
    try:
        with watched(process):
            _lower_priority(process.pid, _niceness.get())

            def read_stderr() -> None:
                assert process.stderr is not None
                for raw in process.stderr:
                    line = raw.decode("utf-8", "replace").rstrip()
                    tail.append(line)
                    if len(errors) < KEPT_ERROR_LINES and stderr.line_score(line) >= 2:
                        errors.append(line)

            reader = threading.Thread(target=read_stderr, daemon=True)
            reader.start()
            assert process.stdout is not None
            for raw in process.stdout:
                line = raw.decode("utf-8", "replace")
                if on_progress is not None and duration_ms and line.startswith("out_time_us="):
                    value = line.split("=", 1)[1].strip()
                    if value.isdigit():
                        on_progress(min(1.0, int(value) / 1000 / duration_ms))
                else:
                    out_lines.append(line)
            code = process.wait()
    except BaseException:
        process.kill()
        process.wait()
        raise
    reader.join(timeout=5)
    # ffmpeg shares the terminal: Ctrl-C stops it too, and that is an interruption, not a broken file.
    interrupt.check()
    lines = list(tail)[-stderr_lines:] if stderr_lines is not None else list(tail)
    if code != 0:
        told = stderr.telling_line([*errors, *tail]) or f"exit code {code}"
        raise MediaError(
            f"ffmpeg could not {what}: {told}", command, "\n".join(list(tail)[-ERROR_TAIL_LINES:])
        )
    if lines:
        log.debug("ffmpeg said while it worked to %s:\n%s", what, "\n".join(lines[-STDERR_TAIL_LINES:]))
    return FfmpegResult("".join(out_lines), tuple(lines))


def _check_inputs(command: Sequence[str], what: str) -> None:
    """Every file ffmpeg is to read is an ordinary file: ffmpeg itself would wait for ever on a named
    pipe put in a recording's place since it was looked at."""
    from pipeline.files import not_a_file

    for flag, value in itertools.pairwise(command):
        if flag == "-i" and value.startswith("file:"):
            path = Path(value.removeprefix("file:"))
            problem = not_a_file(path)
            if problem:
                raise MediaError(f"ffmpeg could not {what}: {path.name}: {problem}")


# ---------------------------------------------------------------------------------- the watchdog

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
