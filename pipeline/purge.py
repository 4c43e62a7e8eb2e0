"""``hearing purge OUT``: what the retention dates the archive records say is due, removed and recorded.

Due once its date has passed (``retention.Kept.passed``): the work cache with its previews, and the
drafts (``draft/``, ``failed-delivery/``, a half-made ``.delivery-next/``) when the work period has
ended; the recordings in the archive when theirs has, and only with ``--recordings``, in a new version
of the bag whose provenance keeps each removed recording's digests. Every removal is a PREMIS deletion
event in the bag's provenance. The delivery, ``edits/``, ``run.json`` and the meeting folder are never
touched. ``plan`` is pure; ``run`` does the I/O, holding the output folder's lock.
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline import retention, run_record
from pipeline.cache import WORK
from pipeline.errors import PipelineError, UsageError
from pipeline.out_folder import hold_lock
from pipeline.retention import RECORDINGS, Kept, Retention
from pipeline.stages.archive.layout import ARCHIVE_FOLDER
from pipeline.stages.archive.premis import Link, deletion_event
from pipeline.stages.archive.versions import archived_recordings, new_version, recorded_retention
from pipeline.stages.deliver import DRAFT, FAILED_DELIVERY, STAGING_DELIVERY

# What the work period covers, beside the archive: the cache (previews in work/review and work/start
# included) and every delivery nobody received.
WORK_ITEMS = (WORK, DRAFT, FAILED_DELIVERY, STAGING_DELIVERY)


class PurgeError(PipelineError):
    """Something due could not be removed; the message says what was removed before it."""


@dataclass(frozen=True)
class Item:
    """One thing due: a folder of OUT (``kind`` work) or a recording in the bag (``kind`` recordings)."""

    kind: str
    path: str  # relative to OUT, or the bag path of a recording
    files: int
    bytes: int
    digests: Mapping[str, str] = field(default_factory=dict)  # a recording's, from the bag's manifests

    @property
    def shown(self) -> str:
        where = f"{ARCHIVE_FOLDER}/{self.path}" if self.kind == RECORDINGS else self.path
        return f"{where} ({self.files} file(s), {self.bytes / 1e6:,.1f} MB)"

    def to_json(self) -> dict[str, Any]:
        facts = {"kind": self.kind, "path": self.path, "files": self.files, "bytes": self.bytes}
        return {**facts, **self.digests}


@dataclass(frozen=True)
class Plan:
    retention: Retention | None
    remove: tuple[Item, ...]
    notes: tuple[str, ...]  # what is kept and why, one line each

    def to_json(self) -> dict[str, Any]:
        return {
            "retention": self.retention.to_json() if self.retention else None,
            "remove": [item.to_json() for item in self.remove],
            "notes": list(self.notes),
        }


def plan(
    kept: Retention | None,
    today: dt.date,
    work: Sequence[Item],
    recordings: Sequence[Item],
    with_recordings: bool,
) -> Plan:
    """What is due today of the ``work`` items and ``recordings`` there, given the recorded dates."""
    if kept is None:
        return Plan(None, (), ("the archive records no retention period: nothing is due",))
    due = kept.due(today)
    remove: list[Item] = []
    notes: list[str] = []

    def keep(kind: str, dates: Kept | None, what: str, there: bool) -> bool:
        if dates is None:
            notes.append(f"{what}: no retention period recorded; kept")
        elif not there:
            notes.append(f"{what}: none left")
        elif kind not in due:
            notes.append(f"{what}: kept until {dates.until.isoformat()}")
        else:
            return False
        return True

    if not keep(retention.WORK, kept.work, retention.WHAT[retention.WORK], bool(work)):
        remove += work
    if not keep(RECORDINGS, kept.recordings, retention.WHAT[RECORDINGS], bool(recordings)):
        if with_recordings:
            remove += recordings
        else:
            assert kept.recordings is not None
            notes.append(
                f"{retention.WHAT[RECORDINGS]}: due since {kept.recordings.until.isoformat()}; kept "
                "(add --recordings to remove them)"
            )
    return Plan(kept, tuple(remove), tuple(notes))


def output_folder(given: Path) -> Path:
    """``given`` as a run's output folder: run.json of hearing-pipeline and an archive there; else
    UsageError with the one-line reason (nothing is removed from a folder that is not one)."""
    out = given.resolve()
    if not out.is_dir():
        raise UsageError(f"{given}: not a folder")
    try:
        run_record.read(run_record.path_of(out))
    except FileNotFoundError:
        raise UsageError(
            f"{given} is not the output folder of a hearing run (no {run_record.RUN_JSON}); nothing removed"
        ) from None
    if not (out / ARCHIVE_FOLDER / "bagit.txt").is_file():
        raise UsageError(f"{given} has no archive ({ARCHIVE_FOLDER}/bagit.txt); nothing removed")
    return out


def _measure(path: Path) -> tuple[int, int]:
    """Files and bytes under ``path``, links counted as themselves and never followed."""
    if path.is_symlink() or not path.is_dir():
        return 1, path.lstat().st_size
    files = size = 0
    for folder, _dirs, names in os.walk(path):
        for name in names:
            files += 1
            size += Path(folder, name).lstat().st_size
    return files, size


def _found(out: Path) -> tuple[list[Item], list[Item]]:
    work = []
    for name in WORK_ITEMS:
        path = out / name
        if path.is_symlink() or path.exists():
            work.append(Item(retention.WORK, name, *_measure(path)))
    recordings = []
    bag = out / ARCHIVE_FOLDER
    for bag_path, digests in sorted(archived_recordings(bag).items()):
        file = bag / bag_path
        size = file.stat().st_size if file.is_file() else 0
        recordings.append(Item(RECORDINGS, bag_path, 1, size, digests))
    return work, recordings


def _remove(path: Path) -> None:
    # A link is removed as a link: what it points to is not OUT's to delete.
    if path.is_symlink() or not path.is_dir():
        path.unlink()
    else:
        shutil.rmtree(path)


def _reason(kind: str, kept: Kept, dates: Retention) -> str:
    return (
        f"retention: {retention.WHAT[kind]} kept until {kept.until.isoformat()} ({kept.period} from the "
        f"{dates.basis_kind} {dates.basis.isoformat()}, set by {kept.source}); removed by hearing purge"
    )


def run(given: Path, *, with_recordings: bool, dry_run: bool, today: dt.date | None = None) -> Plan:
    """Remove what is due in the output folder ``given`` (nothing with ``dry_run``) and record it in the
    archive's provenance; the plan of what was (or would be) removed."""
    out = output_folder(given)
    today = today or dt.date.today()
    if dry_run:
        return plan(recorded_retention(out / ARCHIVE_FOLDER), today, *_found(out), with_recordings)
    with hold_lock(out):
        dates = recorded_retention(out / ARCHIVE_FOLDER)
        planned = plan(dates, today, *_found(out), with_recordings)
        if not planned.remove or dates is None:
            return planned
        command = shlex.join(["hearing", "purge", str(out), *(["--recordings"] if with_recordings else [])])
        work = [item for item in planned.remove if item.kind == retention.WORK]
        recordings = [item for item in planned.remove if item.kind == RECORDINGS]
        removed: list[str] = []
        try:
            for item in work:
                _remove(out / item.path)
                removed.append(item.path)
        except OSError as error:
            raise PurgeError(
                f"could not remove {item.path}: {error.strerror or error}; removed before it: "
                f"{', '.join(removed) or 'nothing'} (not recorded in the archive)"
            ) from None
        events = []
        if work and dates.work:
            events.append(
                deletion_event(
                    [(Link.output(i.path), f"{i.files} file(s), {i.bytes} bytes") for i in work],
                    command,
                    _reason(retention.WORK, dates.work, dates),
                )
            )
        if recordings and dates.recordings:
            events.append(
                deletion_event(
                    [
                        (
                            Link("bag", i.path),
                            f"{i.bytes} bytes; "
                            + "; ".join(f"{alg}={value}" for alg, value in sorted(i.digests.items())),
                        )
                        for i in recordings
                    ],
                    command,
                    _reason(RECORDINGS, dates.recordings, dates),
                )
            )
        note = (
            f"{len(recordings)} recording(s) removed on {today.isoformat()} when their retention period "
            "ended (see provenance.json)"
            if recordings
            else ""
        )
        new_version(out, events, remove=[i.path for i in recordings], note=note)
    return planned


def notes(bag_path: Path, today: dt.date | None = None) -> tuple[Retention | None, list[str]]:
    """For ``hearing verify``: the retention dates the bag records, and a line for each one passed whose
    things are still there (the recordings in the bag; the work cache beside it, where the bag is a run's
    archive)."""
    today = today or dt.date.today()
    dates = recorded_retention(bag_path)
    if dates is None:
        return None, []
    out = bag_path.parent
    lines = []
    for kind, kept in dates.due(today).items():
        if kind == RECORDINGS:
            there = bool(archived_recordings(bag_path))
            remedy = f"`hearing purge {out} --recordings` removes them"
        else:
            there = bag_path.name == ARCHIVE_FOLDER and any(
                (out / name).is_symlink() or (out / name).exists() for name in WORK_ITEMS
            )
            remedy = f"`hearing purge {out}` removes them"
        if there:
            lines.append(retention.due_line(kind, kept, dates, remedy))
    return dates, lines
