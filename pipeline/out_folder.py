"""The output folder as a run finds it: where it is by default, what a run writes there, its lock, the
free space a run needs, whether it can be written, and the tidying after a run that was killed."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline import run_record
from pipeline.cache import WORK
from pipeline.config import Form
from pipeline.errors import Busy, DiskFull, UsageError
from pipeline.files import lock_file, recover_folder
from pipeline.stages import deliver

log = logging.getLogger(__name__)

LOCK = ".hearing.lock"

# What a run writes in the output folder (docs/design.md): folders, and files a folder must not stand for.
OUT_FOLDERS = (
    WORK, "edits", "archive",
    deliver.DELIVERY, deliver.DRAFT, deliver.FAILED_DELIVERY, deliver.PARTICIPANTS,
)  # fmt: skip
OUT_FILES = (run_record.RUN_JSON, LOCK)

# Bytes a second of clip takes while it is made: H.264 at about 0.1 bit a pixel (CRF 18-23 on talking
# heads stays well below), twice (segment and clip, where a hard link is impossible), plus PCM audio in
# the segments. An estimate on the safe side: running out of space half-way helps nobody.
BITS_PER_PIXEL = 0.1
SPEECH_AUDIO_BYTES_PER_S = 32_000  # 16 kHz mono 16-bit
SAFETY = 1.5


def default_out_dir(meeting_dir: Path) -> Path:
    resolved = meeting_dir.resolve()
    return resolved.parent / f"{resolved.name}-output"


def nearest_existing(path: Path) -> Path:
    """``path``, or the nearest folder above it that exists: where it would be made."""
    while not (path.exists() or path.is_symlink()) and path.parent != path:
        path = path.parent
    return path


def estimate_need(form: Form, *, speech_ms: int, clip_ms: int, archive_bytes: int) -> int:
    """Free space a run needs for what it has not made yet."""
    video = form.video.width * form.video.height * form.video.fps * BITS_PER_PIXEL / 8
    pcm = form.audio.sample_rate * form.audio.channels * 2
    render = (2 * video + pcm) * clip_ms / 1000
    speech = SPEECH_AUDIO_BYTES_PER_S * speech_ms / 1000
    return round(SAFETY * (render + speech + archive_bytes))


def check_disk(
    out_dir: Path, form: Form, *, speech_ms: int = 0, clip_ms: int = 0, archive_bytes: int = 0
) -> None:
    """Refuse to start work that cannot finish for lack of space, naming both numbers. A dry run asks
    the same of the folder the output folder would be made in."""
    need = estimate_need(form, speech_ms=speech_ms, clip_ms=clip_ms, archive_bytes=archive_bytes)
    free = shutil.disk_usage(nearest_existing(out_dir)).free
    log.info("disk: about %d bytes needed, %d free", need, free)
    if need > free:
        raise DiskFull(str(out_dir), need, free)


def check_writable(out: Path, *, dry_run: bool) -> None:
    """The output folder can be made and written, and nothing is in the way of what the run writes
    there, before any work: a read-only or misplaced folder is one line naming it, not a failure
    half-way. A dry run only looks; a run makes the folder and writes a test file in it."""
    import os
    import tempfile

    existing = nearest_existing(out)
    if not existing.is_dir():
        raise UsageError(
            f"the output folder {out} cannot be made: {existing} is "
            f"{'a file' if existing.is_file() else 'not a folder'}; choose another with --out"
        )
    in_the_way = [
        out / name for name in OUT_FOLDERS if (out / name).exists() and not (out / name).is_dir()
    ] + [out / name for name in OUT_FILES if (out / name).is_dir()]
    if in_the_way:
        what = "a folder" if in_the_way[0].is_dir() else "a file"
        raise UsageError(
            f"the output folder {out} holds {what} where the run writes: {in_the_way[0]}; move it "
            "away, or choose another output folder with --out"
        )
    places = [existing, *(out / name for name in OUT_FOLDERS if (out / name).is_dir())]
    for place in places:
        if not os.access(place, os.W_OK | os.X_OK):
            raise UsageError(
                f"the output folder {out} cannot be written ({place} is read-only for this user); "
                "choose another with --out"
            )
    if dry_run:
        return
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out, prefix=".hearing-write-test-"):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise UsageError(
            f"the output folder {out} cannot be written ({reason}); choose another with --out"
        ) from None


@contextmanager
def hold_lock(out_dir: Path) -> Iterator[None]:
    """One run at a time in an output folder; a second one is refused, never interleaved. The lock file
    holds the run's process id and goes when the run ends (``files.lock_file``)."""
    import os

    out_dir.mkdir(parents=True, exist_ok=True)
    with lock_file(out_dir / LOCK, 0o644) as (fd, holder):
        if fd is None:
            raise Busy(
                f"another hearing run (process {holder[:32] or 'another process'}) is working in "
                f"{out_dir}; wait until it has finished, or choose another --out"
            )
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield


def remove_partial_files(out_dir: Path) -> None:
    """Half-written files and deliveries of a run that was killed; only a run holding the lock may remove
    them. A run stopped in the middle of replacing ``delivery/`` gets its previous delivery back."""
    if recover_folder(out_dir / deliver.DELIVERY, list(out_dir.glob(f"{deliver.ASIDE_PREFIX}*"))):
        log.info("put the previous delivery back in place (a run was stopped while replacing it)")
    recover_folder(out_dir / deliver.DRAFT, list(out_dir.glob(f"{deliver.DRAFT_ASIDE_PREFIX}*")))
    recover_folder(out_dir / deliver.FAILED_DELIVERY, list(out_dir.glob(f"{deliver.FAILED_ASIDE_PREFIX}*")))
    shutil.rmtree(out_dir / deliver.STAGING_DELIVERY, ignore_errors=True)
    for partial in out_dir.rglob(".*.part"):
        if partial.is_file():
            partial.unlink(missing_ok=True)
