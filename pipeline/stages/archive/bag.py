"""Making the bag: ``build_archive`` copies the recordings into a staging folder (or hard-links them
from the previous bag when only the provenance is new), writes the manifests, bag-info and tag
manifests, has bagit check the result and swaps it into ``OUT/archive``."""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bagit

from pipeline.cache import WorkCache
from pipeline.errors import PipelineError
from pipeline.files import fsync_path, recover_folder, replace_folder
from pipeline.models import MediaProbe, Recording
from pipeline.stages.archive.digests import copy_with_digests, file_digests, fsync_tree, write_small
from pipeline.stages.archive.layout import (
    ALGORITHMS,
    ARCHIVE_FOLDER,
    ASIDE_PREFIX,
    PROVENANCE_FILE,
    RECORDINGS,
    STAGING_PREFIX,
    payload_path,
)
from pipeline.stages.archive.metadata import (
    bag_info_fields,
    bag_info_text,
    bagit_txt,
    manifest_text,
    metadata_files,
)
from pipeline.stages.archive.premis import (
    PROVENANCE_VERSION,
    ArchivedFile,
    ArchiveInfo,
    Event,
    json_bytes,
    provenance_document,
    recording_events,
    removal_event,
    removed_json,
    utc_now,
)

# The logger the archive always used: log configuration and readers of the log know it by this name.
log = logging.getLogger("pipeline.stages.archive")


class ArchiveError(PipelineError):
    """The archive could not be built; the previous one (if any) is still in place, unchanged."""


@dataclass(frozen=True)
class ArchiveResult:
    path: Path
    action: str  # "built", "refreshed" (provenance only; recordings hard-linked) or "reused" (untouched)
    archived: tuple[str, ...]
    withheld: tuple[tuple[str, str], ...]
    payload_files: int
    payload_bytes: int
    copy_seconds: float = 0.0
    validate_seconds: float = 0.0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "action": self.action,
            "archived": list(self.archived),
            "withheld": [{"file": f, "reason": r} for f, r in self.withheld],
            "payload_files": self.payload_files,
            "payload_bytes": self.payload_bytes,
            "copy_seconds": round(self.copy_seconds, 3),
            "validate_seconds": round(self.validate_seconds, 3),
            "seconds": round(self.seconds, 3),
        }


@contextlib.contextmanager
def quiet_bagit() -> Iterator[None]:
    # bagit logs each problem as a warning; the caller reports them once, in its own words.
    logger = logging.getLogger("bagit")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _swap_into_place(staging: Path, target: Path, work: Path) -> None:
    """Make the finished bag ``target``: at every moment ``target`` is the old bag or the new one."""
    replace_folder(staging, target, work / f"{ASIDE_PREFIX}{uuid.uuid4().hex[:8]}")
    fsync_path(work)


def _tidy(target: Path, work: Path) -> None:
    """Clean up after a run that was stopped while archiving (killed, power cut)."""
    if not work.is_dir():
        return
    if recover_folder(target, list(work.glob(f"{ASIDE_PREFIX}*"))):
        log.info("put the previous archive back in place (a run was stopped while replacing it)")
    for stale in work.glob(f"{STAGING_PREFIX}*"):
        shutil.rmtree(stale, ignore_errors=True)


def _open_complete(path: Path) -> bagit.Bag | None:
    """The bag at ``path`` if it is complete (every listed file there, nothing added; no checksums read)."""
    if not (path / "bagit.txt").is_file():
        return None
    try:
        with quiet_bagit():
            bag = bagit.Bag(str(path))
            bag.validate(completeness_only=True)
    except (bagit.BagError, OSError, ValueError):
        return None
    return bag


def _previous_provenance(bag: bagit.Bag) -> dict[str, Any] | None:
    """The provenance of an existing bag, if it is still as its manifests record it: a refresh carries
    its events into the new bag, which must not give an edited history fresh checksums."""
    path = Path(bag.path, PROVENANCE_FILE)
    recorded = bag.entries.get(PROVENANCE_FILE, {})
    try:
        if not recorded or file_digests(path, recorded) != {a: v.lower() for a, v in recorded.items()}:
            log.warning("archive: %s differs from its manifest; the archive is made anew", PROVENANCE_FILE)
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if (
        isinstance(data, dict)
        and data.get("version") == PROVENANCE_VERSION
        and isinstance(data.get("agents"), list)
        and isinstance(data.get("events"), list)
    ):
        return data
    return None


def _old_recordings(
    bag: bagit.Bag, wanted: Mapping[str, Recording], taken_out: Collection[str] = ()
) -> tuple[dict[str, ArchivedFile], list[ArchivedFile]] | None:
    """The recordings of an existing bag as ArchivedFiles, if it holds exactly ``wanted`` with the same
    content (by the SHA-256 ingest computed), and besides them at most the ``taken_out`` ones (returned
    second, to leave the bag); otherwise None."""
    entries = {
        path: hashes for path, hashes in bag.payload_entries().items() if path.startswith(RECORDINGS + "/")
    }
    leaving = {payload_path(r): r for r in taken_out if payload_path(r) in entries}
    if set(entries) - set(leaving) != {payload_path(r) for r in wanted}:
        return None
    removed = []
    for path, relpath in sorted(leaving.items()):
        hashes = entries[path]
        if "sha512" not in hashes or "sha256" not in hashes:
            return None
        size = Path(bag.path, path).stat().st_size
        removed.append(ArchivedFile(relpath, size, hashes["sha512"], hashes["sha256"]))
    files: dict[str, ArchivedFile] = {}
    for relpath, recording in wanted.items():
        hashes = entries[payload_path(relpath)]
        if hashes.get("sha256") != recording.sha256 or "sha512" not in hashes:
            return None
        files[relpath] = ArchivedFile(relpath, recording.size, hashes["sha512"], recording.sha256)
    return files, removed


def _write_bag(
    staging: Path,
    payload: Mapping[str, Mapping[str, str]],
    payload_bytes: int,
    info: ArchiveInfo,
    archived: int,
    withheld: int,
) -> None:
    """The tag files, from the digests in hand: bagit.txt and the payload manifests, then bag-info.txt and
    the tag manifests, byte for byte as ``bagit.Bag.save`` would write them. Not by ``save`` itself: it
    changes the process's working directory while it works, under every other thread of the run."""
    (staging / "bagit.txt").write_bytes(bagit_txt().encode("utf-8"))
    for alg in ALGORITHMS:
        text = manifest_text({path: digests[alg] for path, digests in payload.items()})
        (staging / f"manifest-{alg}.txt").write_bytes(text.encode("utf-8"))
    with quiet_bagit():
        # bagit reads the manifests as it opens the bag: one it cannot take stops the archive here.
        bagit.Bag(str(staging))
    fields = bag_info_fields(
        info,
        payload_bytes=payload_bytes,
        payload_files=len(payload),
        archived=archived,
        withheld=withheld,
        bagging_date=dt.datetime.now(dt.UTC).date(),
    )
    (staging / "bag-info.txt").write_bytes(bag_info_text(fields).encode("utf-8"))
    for alg in ALGORITHMS:
        (staging / f"tagmanifest-{alg}.txt").write_bytes(tag_manifest_text(staging, alg).encode("utf-8"))
    fsync_tree(staging)


def tag_manifest_text(root: Path, alg: str) -> str:
    """A tag manifest as bagit writes it: every file outside data/ but the tag manifests, in the order the
    folder lists them, one ``checksum path`` line each (one space)."""
    lines = []
    for name in os.listdir(root):
        if name == "data":
            continue
        if (root / name).is_file() and not name.startswith("tagmanifest-"):
            lines.append(f"{file_digests(root / name, [alg])[alg]} {name}\n")
        for folder, _dirs, names in os.walk(root / name):
            for inner in names:
                if not inner.startswith("tagmanifest-"):
                    path = Path(folder, inner)
                    lines.append(f"{file_digests(path, [alg])[alg]} {path.relative_to(root).as_posix()}\n")
    return "".join(lines)


def _check_written(staging: Path, linked: Collection[str]) -> None:
    """bagit's validation of the new bag; ArchiveError if it fails (the old bag then stays).

    bagit checks completeness and sizes, and every file except the ``linked`` recordings is hashed
    again (``hearing verify`` reads every file back and checks every checksum): the recordings are
    hard links to the previous bag's files (a provenance refresh), or copies whose digests were computed
    from their bytes as they were written (a new bag).
    """
    try:
        with quiet_bagit():
            bag = bagit.Bag(str(staging))
            bag.validate(completeness_only=True)
    except bagit.BagError as error:
        raise ArchiveError(
            f"the new archive did not pass validation, the previous one is kept: {error}"
        ) from None
    for path, hashes in bag.entries.items():
        if path in linked:
            continue
        found = file_digests(staging / path, hashes)
        if found != {alg: value.lower() for alg, value in hashes.items()}:
            raise ArchiveError(
                f"the new archive did not pass validation, the previous one is kept: {path} differs"
            )


@dataclass(frozen=True)
class _Job:
    """One archiving, worked out once from build_archive's arguments."""

    target: Path
    work: Path
    meeting_dir: Path
    wanted: Mapping[str, Recording]  # the recordings to archive, by relpath
    probes: Mapping[str, MediaProbe | str]
    withheld: Mapping[str, str]
    metadata: Mapping[str, bytes]  # every metadata file but provenance.json, by path in the bag
    info: ArchiveInfo
    events: Sequence[Event]
    unusable: Mapping[str, str]
    on_progress: Callable[[float], None] | None
    started: float

    def result(
        self, action: str, files: int, size: int, copy: float = 0.0, check: float = 0.0
    ) -> ArchiveResult:
        if self.on_progress:
            self.on_progress(1.0)
        return ArchiveResult(
            self.target,
            action,
            tuple(sorted(self.wanted)),
            tuple((f, self.withheld[f]) for f in sorted(self.withheld)),
            files,
            size,
            copy,
            check,
            time.monotonic() - self.started,
        )


def build_archive(
    out_dir: Path,
    meeting_dir: Path,
    recordings: Sequence[Recording],
    probes: Mapping[str, MediaProbe | str],
    withheld: Mapping[str, str],
    meeting_file: Path | None,
    info: ArchiveInfo,
    events: Sequence[Event] = (),
    *,
    unusable: Mapping[str, str] | None = None,
    on_progress: Callable[[float], None] | None = None,
    taken_out: Collection[str] = (),
) -> ArchiveResult:
    """Make ``OUT/archive`` the bag of ``recordings`` (all but the ``withheld`` ones), or leave it as it
    is when it already is that bag.

    ``probes``: each recording's probe, or the reason it could not be read. ``withheld``: relpath ->
    why it is not archived (see ``withheld_from_archive``). ``events``: the run's own events
    (``transcription_event``, ``creation_event``); the archive adds ingestion, digests, format
    identification, validation and fixity check itself. ``unusable``: recordings archived although
    rejected for the clip, with the reason. ``on_progress``: the share of the bytes copied so far.
    ``taken_out``: withheld recordings that leave a bag holding them (a consent withdrawn): the new bag
    is made around the others, and its provenance keeps the earlier events, their digests and the reason.
    """
    started = time.monotonic()
    target = out_dir / ARCHIVE_FOLDER
    work = WorkCache.of(out_dir).root
    _tidy(target, work)
    wanted = {r.relpath: r for r in recordings if r.relpath not in withheld}
    meeting_yaml = meeting_file.read_bytes() if meeting_file else None
    metadata = metadata_files(info, sorted(wanted), probes, withheld, meeting_yaml)
    job = _Job(
        target,
        work,
        meeting_dir,
        wanted,
        probes,
        withheld,
        metadata,
        info,
        events,
        unusable or {},
        on_progress,
        started,
    )

    old = _open_complete(target)
    previous = _previous_provenance(old) if old else None
    found = (
        _old_recordings(old, wanted, [r for r in taken_out if r in withheld]) if old and previous else None
    )
    if old is None or previous is None or found is None:
        return _build(job)
    old_files, removed = found
    now = utc_now()
    events = [*events, *(removal_event(f, withheld[f.relpath], info, now) for f in removed)]
    gone = [removed_json(f, withheld[f.relpath], now) for f in removed]
    unchanged = len(old.payload_entries()) == len(wanted) + len(metadata) + 1 and all(
        old.entries.get(path, {}).get("sha256") == hashlib.sha256(data).hexdigest()
        for path, data in metadata.items()
    )
    fresh = provenance_document(info, list(old_files.values()), probes, withheld, events, previous, gone)
    # A retention period changed in the form alone (meeting.yaml is in the metadata) makes new dates.
    unchanged = unchanged and fresh.get("retention") == previous.get("retention")
    if unchanged and not removed and len(fresh["events"]) == len(previous["events"]):
        log.info("archive: unchanged, kept as it is")
        size, count = str(old.info.get("Payload-Oxum", "0.0")).split(".")
        return job.result("reused", int(count), int(size))
    if removed:
        log.info("archive: %s taken out of the bag", ", ".join(f.relpath for f in removed))
    return _refresh(job, old_files, fresh) or _build(job)


def _staging(work: Path) -> Path:
    work.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=work))
    # mkdtemp makes a private folder; the archive gets the permissions any new folder would get.
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)
    return staging


def _refresh(
    job: _Job, files: Mapping[str, ArchivedFile], provenance: Mapping[str, Any]
) -> ArchiveResult | None:
    """A new bag around hard links to the recordings of the current one, with new metadata; None where
    hard links are not possible (exFAT, some network drives): the caller then copies."""
    staging = _staging(job.work)
    try:
        payload: dict[str, Mapping[str, str]] = {}
        size = 0
        for file in files.values():
            link = staging / file.bag_path
            link.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(job.target / file.bag_path, link)
            except OSError as error:
                log.info("archive: cannot link the recordings of the previous bag (%s); copying", error)
                return None
            payload[file.bag_path] = {"sha512": file.sha512, "sha256": file.sha256}
            size += file.size
        for path, data in {**job.metadata, PROVENANCE_FILE: json_bytes(provenance)}.items():
            payload[path] = write_small(staging / path, data)
            size += len(data)
        _write_bag(staging, payload, size, job.info, len(files), len(job.withheld))
        check_started = time.monotonic()
        _check_written(staging, {f.bag_path for f in files.values()})
        checked = time.monotonic() - check_started
        _swap_into_place(staging, job.target, job.work)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("archive: provenance brought up to date; recordings unchanged")
    return job.result("refreshed", len(payload), size, 0.0, checked)


def _build(job: _Job) -> ArchiveResult:
    """A new bag: every recording copied from the meeting folder and hashed on the way."""
    staging = _staging(job.work)
    total = sum(r.size for r in job.wanted.values()) or 1
    done = 0

    def copied(count: int) -> None:
        nonlocal done
        done += count
        if job.on_progress:
            job.on_progress(min(done / total, 1.0))

    try:
        payload: dict[str, Mapping[str, str]] = {}
        files: list[ArchivedFile] = []
        archive_events: list[Event] = []
        size = 0
        copy_started = time.monotonic()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha512") as pool:
            for relpath in sorted(job.wanted):
                file = _copy_recording(job.meeting_dir, job.wanted[relpath], staging, pool, copied)
                files.append(file)
                payload[file.bag_path] = {"sha512": file.sha512, "sha256": file.sha256}
                size += file.size
                probe, unusable = job.probes.get(relpath), job.unusable.get(relpath)
                archive_events += recording_events(file, probe, unusable, job.info, utc_now())
        copy_seconds = time.monotonic() - copy_started
        provenance = provenance_document(
            job.info, files, job.probes, job.withheld, [*archive_events, *job.events]
        )
        for path, data in {**job.metadata, PROVENANCE_FILE: json_bytes(provenance)}.items():
            payload[path] = write_small(staging / path, data)
            size += len(data)
        _write_bag(staging, payload, size, job.info, len(files), len(job.withheld))
        check_started = time.monotonic()
        # From the digests computed as the bytes streamed through the copy, not by reading 2 GB back:
        # completeness and sizes by bagit, the small metadata files hashed again. `hearing verify` is
        # the full re-read, whenever an archivist asks for it.
        _check_written(staging, {f.bag_path for f in files})
        check_seconds = time.monotonic() - check_started
        _swap_into_place(staging, job.target, job.work)
    except OSError as error:
        if error.errno == errno.ENOSPC:
            free = shutil.disk_usage(job.work).free
            raise ArchiveError(
                f"not enough free disk space for the archive in {job.target.parent}: it needs about "
                f"{_megabytes(total)}, {_megabytes(free)} free; the previous archive is kept"
            ) from None
        raise ArchiveError(f"the archive could not be made: {error}; the previous archive is kept") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("archive: %d recording(s), %s, bag checked", len(files), _megabytes(size))
    return job.result("built", len(payload), size, copy_seconds, check_seconds)


def _copy_recording(
    meeting_dir: Path,
    recording: Recording,
    staging: Path,
    pool: ThreadPoolExecutor,
    on_bytes: Callable[[int], None],
) -> ArchivedFile:
    source = meeting_dir / recording.relpath
    try:
        size, sha512, sha256 = copy_with_digests(
            source, staging / payload_path(recording.relpath), pool, on_bytes
        )
    except FileNotFoundError:
        raise ArchiveError(
            f"{recording.relpath}: disappeared from the meeting folder during the run"
        ) from None
    if sha256 != recording.sha256 or size != recording.size:
        raise ArchiveError(
            f"{recording.relpath}: changed since it was read at the start of the run (its SHA-256 differs "
            "now); it is not archived under the old checksum: run again"
        )
    return ArchivedFile(recording.relpath, size, sha512, sha256)


def _megabytes(count: int) -> str:
    return f"{count / 1e6:,.1f} MB"
