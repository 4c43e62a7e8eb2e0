"""A bag read back for what it records (when the recordings were first archived, the retention dates),
and a new version of the bag that records events after the run: some of its recordings removed, or
something removed beside it, each removal an event in the provenance with the removed files' digests.

The new version is made as a provenance refresh is (``bag``): a staging folder of hard links to the
files that stay, new provenance, manifests and tag files, bagit's check, the swap. Every earlier event
and object stays in the provenance; the objects of removed recordings keep their digests there.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import bagit

from pipeline.cache import WorkCache
from pipeline.retention import Retention, recorded
from pipeline.stages.archive.bag import (
    ArchiveError,
    _check_written,
    _open_complete,
    _previous_provenance,
    _staging,
    _swap_into_place,
    _tidy,
    quiet_bagit,
    tag_manifest_text,
)
from pipeline.stages.archive.digests import fsync_tree, write_small
from pipeline.stages.archive.layout import (
    ALGORITHMS,
    ARCHIVE_FOLDER,
    PROVENANCE_FILE,
    RECORDINGS,
)
from pipeline.stages.archive.metadata import bag_info_text, bagit_txt, manifest_text
from pipeline.stages.archive.premis import (
    INGESTION,
    ArchiveInfo,
    Event,
    agents_json,
    event_json,
    json_bytes,
    operator_name,
)


def _provenance(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((path / PROVENANCE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def first_archived(out_dir: Path) -> dt.date | None:
    """The day the bag in ``out_dir`` first took in a recording (its earliest ingestion event); None
    without a bag or an ingestion in it."""
    data = _provenance(out_dir / ARCHIVE_FOLDER)
    events = data.get("events") if data else None
    days = []
    for event in events if isinstance(events, list) else ():
        if isinstance(event, dict) and event.get("eventType") == INGESTION:
            try:
                days.append(dt.date.fromisoformat(str(event.get("eventDateTime", ""))[:10]))
            except ValueError:
                continue
    return min(days, default=None)


def bag_info_of(bag_path: Path) -> dict[str, Any]:
    """bag-info.txt's fields as bagit reads them; empty where there is no readable bag."""
    try:
        with quiet_bagit():
            return dict(bagit.Bag(str(bag_path)).info)
    except (bagit.BagError, OSError, ValueError):
        return {}


def recorded_retention(bag_path: Path) -> Retention | None:
    return recorded(bag_info_of(bag_path))


def archived_recordings(bag_path: Path) -> dict[str, dict[str, str]]:
    """The recordings in the bag, by bag path, with the digests its manifests record."""
    try:
        with quiet_bagit():
            bag = bagit.Bag(str(bag_path))
    except (bagit.BagError, OSError, ValueError):
        return {}
    return {
        path: dict(hashes)
        for path, hashes in bag.payload_entries().items()
        if path.startswith(RECORDINGS + "/")
    }


def _info_from(previous: Mapping[str, Any]) -> ArchiveInfo:
    meeting = previous.get("meeting") if isinstance(previous.get("meeting"), dict) else {}
    assert isinstance(meeting, dict)
    date = meeting.get("date")
    return ArchiveInfo(
        organiser=meeting.get("organiser"),
        title=str(meeting.get("title") or ""),
        meeting_date=dt.date.fromisoformat(date) if isinstance(date, str) else None,
        committee=meeting.get("committee"),
        operator=operator_name(),
    )


def new_version(
    out_dir: Path,
    events: Sequence[Event],
    *,
    remove: Collection[str] = (),
    note: str = "",
) -> tuple[str, ...]:
    """Make ``OUT/archive`` a new version of itself that records ``events`` and holds the payload files
    of the current one except ``remove`` (bag paths). ``note`` is added to bag-info's description. The
    bag paths removed; ArchiveError (and the current bag kept) where it is not a complete bag with a
    provenance this version reads, or the new one does not pass bagit's check."""
    target = out_dir / ARCHIVE_FOLDER
    work = WorkCache.of(out_dir).root
    made_work = not work.exists()
    _tidy(target, work)
    old = _open_complete(target)
    previous = _previous_provenance(old) if old else None
    if old is None or previous is None:
        raise ArchiveError(
            f"{target} is not a complete archive with its provenance (hearing verify says what is wrong); "
            "nothing was changed"
        )
    entries = old.payload_entries()
    removed = tuple(sorted(p for p in remove if p in entries))
    info = _info_from(previous)
    agents = {a["agentIdentifier"]["agentIdentifierValue"]: a for a in previous["agents"]}
    for agent in agents_json(info, events):
        agents.setdefault(agent["agentIdentifier"]["agentIdentifierValue"], agent)
    document = {
        **previous,
        "agents": list(agents.values()),
        "events": [*previous["events"], *(event_json(e, info, ()) for e in events)],
    }
    staging = _staging(work)
    try:
        payload: dict[str, Mapping[str, str]] = {}
        linked: set[str] = set()
        size = 0
        for path, hashes in entries.items():
            if path in removed or path == PROVENANCE_FILE:
                continue
            link = staging / path
            link.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(target / path, link)
                linked.add(path)
            except OSError:  # no hard links on this drive: a copy, hashed again below
                shutil.copy2(target / path, link)
            payload[path] = {alg: hashes[alg].lower() for alg in ALGORITHMS}
            size += link.stat().st_size
        data = json_bytes(document)
        payload[PROVENANCE_FILE] = write_small(staging / PROVENANCE_FILE, data)
        size += len(data)
        (staging / "bagit.txt").write_bytes(bagit_txt().encode("utf-8"))
        for alg in ALGORITHMS:
            text = manifest_text({path: digests[alg] for path, digests in payload.items()})
            (staging / f"manifest-{alg}.txt").write_bytes(text.encode("utf-8"))
        fields = {k: v for k, v in old.info.items() if isinstance(v, str)}
        fields["Payload-Oxum"] = f"{size}.{len(payload)}"
        fields["Bagging-Date"] = dt.datetime.now(dt.UTC).date().isoformat()
        if note:
            described = fields.get("Internal-Sender-Description", "")
            fields["Internal-Sender-Description"] = f"{described}; {note}" if described else note
        (staging / "bag-info.txt").write_bytes(bag_info_text(fields).encode("utf-8"))
        for alg in ALGORITHMS:
            (staging / f"tagmanifest-{alg}.txt").write_bytes(tag_manifest_text(staging, alg).encode("utf-8"))
        fsync_tree(staging)
        # The recordings linked are the current bag's own files; the rest is hashed again.
        _check_written(staging, {p for p in linked if p.startswith(RECORDINGS + "/")})
        _swap_into_place(staging, target, work)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if made_work:
            # Only made for the staging folder: leave the output folder as it was found.
            with contextlib.suppress(OSError):
                work.rmdir()
    return removed
