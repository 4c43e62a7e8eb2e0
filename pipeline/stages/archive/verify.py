"""``hearing verify``: bagit's full validation of a bag (completeness and every checksum, every byte
read back), with each changed, missing or extra file named."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bagit

from pipeline.stages.archive.bag import quiet_bagit
from pipeline.stages.archive.digests import file_digests
from pipeline.stages.archive.layout import ARCHIVE_FOLDER, PROVENANCE_FILE


@dataclass(frozen=True)
class Problem:
    kind: str  # "changed", "missing", "extra" or "invalid"
    path: str
    detail: str = ""

    @property
    def line(self) -> str:
        where = f": {self.path}" if self.path else ""
        return f"{self.kind}{where}" + (f" ({self.detail})" if self.detail else "")


@dataclass(frozen=True)
class VerifyResult:
    path: Path
    is_bag: bool
    problems: tuple[Problem, ...] = ()
    error: str | None = None  # why it is not a bag at all
    version: str | None = None
    algorithms: tuple[str, ...] = ()
    payload_files: int = 0
    payload_bytes: int = 0
    seconds: float = 0.0
    # What the provenance says left the bag or the delivery (a consent withdrawn), one line each.
    withdrawals: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        return self.is_bag and not self.problems and self.error is None

    def to_json(self) -> dict[str, Any]:
        return {
            "archive": str(self.path),
            "valid": self.valid,
            "is_bag": self.is_bag,
            "error": self.error,
            "bagit_version": self.version,
            "algorithms": list(self.algorithms),
            "payload_files": self.payload_files,
            "payload_bytes": self.payload_bytes,
            "problems": [dataclasses.asdict(p) for p in self.problems],
            "withdrawals": list(self.withdrawals),
            "seconds": round(self.seconds, 3),
        }


def _problems_named(bag: bagit.Bag, error: bagit.BagValidationError) -> list[Problem]:
    """Each file behind a failed validation: changed, missing or extra.

    bagit stops at the first failing stage (Payload-Oxum, then completeness, then checksums), so when it
    stopped before the checksums they are compared here, to name every changed file in one go.
    """
    changed: dict[str, list[str]] = {}
    missing: list[str] = []
    extra: list[str] = []
    for detail in error.details:
        if isinstance(detail, bagit.ChecksumMismatch):
            changed.setdefault(str(detail.path), []).append(str(detail.algorithm))
        elif isinstance(detail, bagit.FileMissing):
            missing.append(str(detail.path))
        elif isinstance(detail, bagit.UnexpectedFile):
            extra.append(str(detail.path))
    if not changed:
        if not (missing or extra):
            missing, extra = (list(found) for found in bag.compare_manifests_with_fs())
        for path, hashes in bag.entries.items():
            full = Path(bag.path, path)
            if path in missing or not full.is_file():
                continue
            found = file_digests(full, hashes)
            differ = [alg for alg, value in hashes.items() if value.lower() != found[alg]]
            if differ:
                changed[path] = differ
    problems = [
        Problem("changed", path, f"{', '.join(sorted(algs))} differ{'s' if len(algs) == 1 else ''}")
        for path, algs in sorted(changed.items())
    ]
    problems += [Problem("missing", path) for path in sorted(missing)]
    problems += [Problem("extra", path) for path in sorted(extra)]
    if not problems:
        problems.append(Problem("invalid", "", str(error)))
    return problems


def _unlisted_tag_files(bag: bagit.Bag) -> list[Problem]:
    """Files beside data/ that no tag manifest lists. bagit allows them; an archive that must show that
    nothing changed reports them (only when there are tag manifests, which every bag made here has)."""
    root = Path(bag.path)
    if not list(bag.tagmanifest_files()):
        return []
    listed = set(bag.tagfile_entries())
    found: list[Problem] = []
    for folder, dirs, names in os.walk(root):
        here = Path(folder)
        if here == root:
            dirs[:] = [d for d in dirs if d != "data"]
        for name in names:
            rel = (here / name).relative_to(root).as_posix()
            if rel not in listed and not (here == root and name.startswith("tagmanifest-")):
                found.append(Problem("extra", rel, "not listed in the tag manifests"))
    return sorted(found, key=lambda p: p.path)


def archive_folder(path: Path) -> Path:
    """The bag to verify: ``path`` itself, or ``path/archive`` when given an output folder."""
    if not (path / "bagit.txt").exists() and (path / ARCHIVE_FOLDER / "bagit.txt").is_file():
        return path / ARCHIVE_FOLDER
    return path


def verify_archive(path: Path, processes: int = 1) -> VerifyResult:
    """bagit's full validation (completeness and every checksum) of the bag at ``path``, with every
    changed, missing or extra file named."""
    started = time.monotonic()
    path = archive_folder(path)
    if not path.is_dir():
        return VerifyResult(path, False, error="no such folder" if not path.exists() else "not a folder")
    if not (path / "bagit.txt").is_file():
        if (path / "data").is_dir() or list(path.glob("manifest-*.txt")):
            return VerifyResult(path, True, (Problem("missing", "bagit.txt"),))
        return VerifyResult(path, False, error="not a BagIt bag (no bagit.txt)")
    try:
        with quiet_bagit():
            bag = bagit.Bag(str(path))
    except (bagit.BagError, ValueError) as error:
        return VerifyResult(path, True, (Problem("invalid", "", str(error) or type(error).__name__),))
    problems: list[Problem] = []
    try:
        with quiet_bagit():
            bag.validate(processes=processes)
    except bagit.BagValidationError as error:
        problems = _problems_named(bag, error)
    except (bagit.BagError, ValueError) as error:
        problems = [Problem("invalid", "", str(error))]
    problems += _unlisted_tag_files(bag)
    payload = bag.payload_entries()
    size = 0
    for entry in payload:
        with contextlib.suppress(OSError):
            size += Path(bag.path, entry).stat().st_size
    return VerifyResult(
        path,
        True,
        tuple(problems),
        version=str(bag.tags.get("BagIt-Version")),
        algorithms=tuple(sorted(bag.algorithms)),
        payload_files=len(payload),
        payload_bytes=size,
        seconds=time.monotonic() - started,
        withdrawals=withdrawals_of(path) if not problems else (),
    )


def withdrawals_of(bag: Path) -> tuple[str, ...]:
    """The withdrawals the bag's provenance records: each recording taken out of the bag (with its
    digests) and each statement taken out of the delivery. The provenance is JSON; its reasons are
    shown on one line, their line breaks and quotes escaped."""
    from pipeline.stages.archive.premis import REDACTION

    try:
        data = json.loads((bag / PROVENANCE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ()
    if not isinstance(data, dict):
        return ()
    lines = []
    for gone in data.get("removed") or []:
        if isinstance(gone, dict):
            lines.append(
                f"removed from the bag: {gone.get('file')} on {gone.get('removed')} (sha256 "
                f"{gone.get('sha256')}); reason: {json.dumps(gone.get('reason'), ensure_ascii=False)}"
            )
    for event in data.get("events") or []:
        if isinstance(event, dict) and event.get("eventType") == REDACTION:
            sources = [
                link.get("linkingObjectIdentifierValue")
                for link in event.get("linkingObjectIdentifier") or []
                if isinstance(link, dict)
            ]
            lines.append(
                f"withdrawn from the delivery: {', '.join(map(str, sources))} on {event.get('eventDateTime')}"
            )
    return tuple(lines)
