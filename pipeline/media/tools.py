"""Which ffmpeg a run uses and how it is called: the choice (``HEARING_FFMPEG``, PATH or the bundled
one), its version, ``run_ffmpeg`` on the chosen binary, and the way file names are put to it.

ffmpeg comes from PATH when the system has one, otherwise from the imageio-ffmpeg wheel, so that
``pip install`` alone is enough. ffprobe is not needed: probing uses PyAV (a faster-whisper dependency).
What a binary must offer, and how its answers are read, is ``media.needs``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shlex
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import MediaError, MissingToolError, PipelineError
from pipeline.media import needs, process
from pipeline.media.process import FfmpegResult

log = logging.getLogger("pipeline.media")

FFMPEG_ENV = "HEARING_FFMPEG"  # points at a specific ffmpeg binary; overrides PATH and the wheel
# Before the inputs: ffmpeg ignores options that trail the last output file.
GLOBAL_ARGS = ("-nostdin", "-hide_banner", "-loglevel", "warning", "-y")


BUNDLED_FIX = (
    "install ffmpeg 5.1 or newer (apt-get install ffmpeg), or reinstall hearing-pipeline, whose "
    "imageio-ffmpeg dependency brings one"
)


@dataclass(frozen=True)
class FfmpegChoice:
    """The ffmpeg binary a run uses, and why: recorded in run.json, the QC report and `hearing models`."""

    path: str
    version: str
    source: str  # "HEARING_FFMPEG", "PATH" or "bundled"
    reason: str
    passed_over: tuple[str, ...] = ()  # one line each: a candidate that was not used, and why

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "version": self.version,
            "source": self.source,
            "reason": self.reason,
            "passed_over": list(self.passed_over),
        }


def _bundled_ffmpeg() -> str | None:
    try:
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError):
        return None


@functools.cache
def ffmpeg_choice() -> FfmpegChoice:
    """``HEARING_FFMPEG`` if set (it must be able to do everything), else the ffmpeg on PATH if it can,
    else the bundled one. Each candidate is asked once what it offers; the answer is remembered."""
    override = os.environ.get(FFMPEG_ENV)
    if override:
        if not (Path(override).is_file() and os.access(override, os.X_OK)):
            raise MissingToolError(
                f"ffmpeg ({FFMPEG_ENV}={override}) is not an executable file",
                f"unset {FFMPEG_ENV} or point it at an ffmpeg binary",
            )
        version, missing = assess_ffmpeg(override)
        if missing:
            raise MissingToolError(
                f"the ffmpeg in {FFMPEG_ENV} ({override}, {version or 'unknown version'}) lacks "
                + "; ".join(missing),
                f"point {FFMPEG_ENV} at ffmpeg 5.1 or newer with libx264 and libass, or unset it",
            )
        return FfmpegChoice(override, version, FFMPEG_ENV, f"named by {FFMPEG_ENV}")
    passed_over: list[str] = []
    found = shutil.which("ffmpeg")
    if found:
        version, missing = assess_ffmpeg(found)
        if not missing:
            return FfmpegChoice(found, version, "PATH", "the system's ffmpeg on PATH can do everything")
        passed_over.append(
            f"the ffmpeg on PATH ({found}, {version or 'unknown version'}) lacks " + "; ".join(missing)
        )
    bundled = _bundled_ffmpeg()
    if bundled is None:
        raise MissingToolError(passed_over[0] if passed_over else "ffmpeg was not found", BUNDLED_FIX)
    version, missing = assess_ffmpeg(bundled)
    if missing:
        raise MissingToolError(
            "; ".join([*passed_over, f"the bundled ffmpeg ({version}) lacks " + "; ".join(missing)]),
            BUNDLED_FIX,
        )
    reason = "no ffmpeg on PATH" if not found else "the ffmpeg on PATH cannot do everything"
    choice = FfmpegChoice(bundled, version, "bundled", reason, tuple(passed_over))
    for line in passed_over:
        log.warning("%s; using the bundled ffmpeg %s instead", line, version)
    return choice


def ffmpeg_exe() -> str:
    return ffmpeg_choice().path


def command_line(args: Sequence[str]) -> str:
    """The exact command line of an ffmpeg call, as the logs, run.json and a dry run show it."""
    return shlex.join([ffmpeg_exe(), *args])


def ffmpeg_version() -> str:
    return ffmpeg_choice().version


def _checks_file() -> Path:
    from pipeline.files import cache_root

    return cache_root() / "ffmpeg-checks.json"


def assess_ffmpeg(exe: str) -> tuple[str, list[str]]:
    """(version, what it lacks) of one ffmpeg binary; remembered per binary (path, size, time), so a
    later run pays nothing."""
    import json

    from pipeline.files import write_json

    resolved = Path(exe).resolve()
    try:
        stat = resolved.stat()
    except OSError as error:
        return "", [f"it cannot be read ({error.strerror})"]
    key = f"{resolved}|{stat.st_size}|{stat.st_mtime_ns}|{needs.CHECK_VERSION}"
    store = _checks_file()
    try:
        known = json.loads(store.read_text(encoding="utf-8"))
        if not isinstance(known, dict):
            known = {}
    except (OSError, ValueError):
        known = {}
    offer = None
    if key in known:
        try:
            offer = needs.offer_from_json(known[key])
        except (KeyError, TypeError, ValueError, AttributeError):
            offer = None  # a damaged entry: ask again
    if offer is None:
        try:
            offer = _ask_ffmpeg(exe)
        except PipelineError as error:
            return "", [f"it does not run ({error})"]
        known = {k: v for k, v in known.items() if not k.startswith(f"{resolved}|")}
        known[key] = needs.offer_to_json(offer)
        with contextlib.suppress(OSError):
            write_json(store, known)
    return offer.version_text, needs.shortfalls(offer)


def _ask_ffmpeg(exe: str) -> Any:
    def ask(*args: str) -> str:
        return process.run(exe, ["-hide_banner", *args], what=f"ask {exe} {args[0]}", quiet=True).stdout

    version_text = needs.version_text(ask("-version"))
    if not version_text:
        raise MediaError(f"{exe} does not answer -version like ffmpeg")
    return needs.Offer(
        version_text=version_text,
        encoders=needs.parse_names(ask("-encoders")),
        muxers=needs.parse_names(ask("-muxers")),
        demuxers=needs.parse_names(ask("-demuxers")),
        filters=needs.parse_names(ask("-filters")),
        filter_options=needs.parse_filter_options(ask("-h", "full"), needs.wanted_filters()),
    )


def input_path(path: Path) -> str:
    """A file name ffmpeg cannot mistake for an option (``-x``), a protocol (``concat:``, ``subfile,``,
    ``http:``): the whole absolute path behind the ``file:`` protocol, which ffmpeg 5.1 and newer read
    as it is. Only an image (``IMAGE_INPUT``) is also read as a pattern (``%d``, ``*``): see there."""
    return "file:" + str(path.resolve())


def output_path(path: Path) -> str:
    """A file ffmpeg writes, passed as ``input_path`` passes what it reads."""
    return input_path(path)


# The demuxer for a still picture, named, and told that its name is no pattern: left to itself, ffmpeg
# reads a PNG's name with "%d" in it (an --out folder named so) as an image sequence.
IMAGE_INPUT = {"f": "image2", "pattern_type": "none"}


def run_ffmpeg(
    args: Sequence[str],
    *,
    what: str,
    duration_ms: int | None = None,
    on_progress: Callable[[float], None] | None = None,
    quiet: bool = False,
    stderr_lines: int | None = process.STDERR_TAIL_LINES,
) -> FfmpegResult:
    """Run the chosen ffmpeg with ``args`` (without the program name): see ``process.run``."""
    return process.run(
        ffmpeg_exe(),
        args,
        what=what,
        duration_ms=duration_ms,
        on_progress=on_progress,
        quiet=quiet,
        stderr_lines=stderr_lines,
    )
