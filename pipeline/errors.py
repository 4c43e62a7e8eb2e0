"""One base error for everything the pipeline reports to a person, and the one map to exit codes.

Each subclass carries the offending value so that tests and the run report can name it; ``str(error)`` is
the one line a user sees.
"""

from __future__ import annotations

from pathlib import Path


class PipelineError(Exception):
    """Base of every error the pipeline raises on purpose."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(PipelineError):
    exit_code = 2


class ConfigError(PipelineError):
    """meeting.yaml or a form is invalid: names the file, the field and what is allowed."""

    exit_code = 3

    def __init__(self, file: Path | str, field: str, problem: str, value: object = None) -> None:
        self.file = str(file)
        self.field = field
        self.problem = problem
        self.value = value
        where = f"{self.file}: {field}: " if field else f"{self.file}: "
        super().__init__(where + problem)


class MissingToolError(PipelineError):
    """A program or model the run needs is not available; the message says how to get it."""

    exit_code = 4

    def __init__(self, what: str, how_to_fix: str) -> None:
        self.what = what
        self.how_to_fix = how_to_fix
        super().__init__(f"{what}: {how_to_fix}")


class ModelError(MissingToolError):
    """No usable speech model (not installed, not cached offline, corrupt)."""


class MediaError(PipelineError):
    """ffmpeg, ffprobe or PyAV failed; carries the command and the tail of stderr."""

    def __init__(self, message: str, command: list[str] | None = None, stderr_tail: str = "") -> None:
        self.command = command or []
        self.stderr_tail = stderr_tail
        super().__init__(message)


class RecordingRejected(PipelineError):
    """One recording is unusable; the run goes on without it (exit 5 at the end)."""

    def __init__(self, file: str, reason: str) -> None:
        self.file = file
        self.reason = reason
        super().__init__(f"{file}: {reason}")


class NothingDelivered(PipelineError):
    """No statement was left to deliver."""


class SubtitleProblems(PipelineError):
    """Subtitles no timing can fit to the form (a person's cues too many for their statement's time):
    the render stops before it starts, one Danish sentence a problem, each naming what to do."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class NotConforming(PipelineError):
    """The run's own clip fails `hearing check` against the form; the files stay for inspection."""


class Busy(PipelineError):
    """Another run holds the output folder; running beside it would corrupt its work."""


class DiskFull(PipelineError):
    """Not enough free space for what the run must write; carries both numbers."""

    def __init__(self, folder: str, need: int, free: int) -> None:
        self.folder = folder
        self.need = need
        self.free = free
        super().__init__(
            f"not enough free disk space in {folder}: the run needs about {human_bytes(need)}, "
            f"{human_bytes(free)} is free; free some space or choose another --out"
        )


def human_bytes(count: int) -> str:
    value = float(count)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{count} B"


# Exit codes of a finished run (docs/design.md). Errors carry their own; these are the outcomes.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_REJECTED = 5
EXIT_DRAFT = 6  # a draft was made; the form asks for every statement to be approved first


def exit_code_for(error: BaseException) -> int:
    """The one place that maps an error to the process exit code."""
    if isinstance(error, PipelineError):
        return error.exit_code
    if isinstance(error, KeyboardInterrupt):
        return 130
    return EXIT_FAILED


def describe(error: BaseException) -> str:
    """What a person is told about ``error``, the same on stderr and in run.json."""
    if isinstance(error, PipelineError):
        return str(error)
    if isinstance(error, KeyboardInterrupt):
        return "interrupted; a re-run resumes"
    return f"unexpected failure: {type(error).__name__}: {error}"
