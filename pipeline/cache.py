"""The work cache under ``OUT/work``: making a key, looking an entry up, storing a result.

Every key is made by ``make_key`` from the same parts: the stage's name and version, the slice of the
form it reads, the content hashes (or values) of its inputs, and the versions of the tools whose output
it keeps. Entries are stored atomically (``pipeline.files``); a file entry is sealed with its checksum
beside it, so a damaged entry (truncated JSON, a half-written segment, a changed byte) is a miss that is
made again, never a crash or a broken clip.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.files import HashCache, sha256_text, stable_json, write_json, write_text

log = logging.getLogger(__name__)

SEAL_SUFFIX = ".sha256"
SEGMENT_SUFFIX = ".mov"  # QuickTime keeps exact frame timing and PCM audio; Matroska rounds to 1 ms
WORK = "work"


@dataclass(frozen=True)
class WorkCache:
    """Where every entry of ``OUT/work`` lives: the one place that knows the work folder's layout.

    A stage makes its key with ``make_key`` and asks here for the path under that key; nothing else
    joins a folder name onto ``OUT/work``, so a reader (the review page, the archive's provenance) finds
    exactly what a run stored.
    """

    root: Path

    @classmethod
    def of(cls, out_dir: Path) -> WorkCache:
        return cls(out_dir / WORK)

    def audio(self, key: str) -> Path:
        """A statement's speech audio (16 kHz mono WAV), as the engine hears it."""
        return self.root / "audio" / f"{key}.wav"

    def transcript(self, key: str) -> Path:
        return self.root / "transcripts" / f"{key}.json"

    def alignment(self, key: str) -> Path:
        return self.root / "alignments" / f"{key}.json"

    def card(self, key: str) -> Path:
        return self.root / "cards" / f"{key}.png"

    def loudness(self, key: str) -> Path:
        return self.root / "loudness" / f"{key}.json"

    def loudness_frames(self, key: str) -> Path:
        return self.root / "loudness" / f"{key}.frames.json"

    def segment(self, key: str) -> Path:
        return self.root / self.segment_name(key)

    @staticmethod
    def segment_name(key: str) -> str:
        """A segment's path relative to the work folder (as the archive's provenance names it)."""
        return f"segments/{key}{SEGMENT_SUFFIX}"

    def subtitles(self, key: str) -> Path:
        """The ASS file a segment's subtitles are burned in from."""
        return self.root / "subtitles" / f"{key}.ass"

    def review_video(self, key: str) -> Path:
        """A statement's video as the review page plays it."""
        return self.root / "review" / f"{key}.mp4"

    def still(self, key: str) -> Path:
        """A picture from a recording, as the page of `hearing start` lists it."""
        return self.root / "start" / f"{key}.jpg"

    @property
    def clip_folder(self) -> Path:
        return self.root / "clip"

    @property
    def probes(self) -> Path:
        return self.root / "probes"

    @property
    def hashes_file(self) -> Path:
        return self.root / "hashes.json"

    def hashes(self) -> HashCache:
        """The remembered digests of files under the output folder (``HashCache``)."""
        return HashCache(self.hashes_file)

    def forget(
        self, keys: Collection[str], *, named_in: Sequence[str] = (), sources: Sequence[Path] = ()
    ) -> list[Path]:
        """Delete what was made from one recording (a withdrawn statement's): every entry stored under
        one of ``keys`` (the keys its stages recorded), every file a command in ``named_in`` names (the
        subtitles burned into its segment), each with its seal, and the entries that are made from
        every statement or that are made again on demand: the joined clips, the review page's previews
        and the start page's pictures. Their digests leave ``hashes.json`` too, and so do those of the
        ``sources`` (the recording itself: its path may carry the person's name). Returns what was
        deleted."""
        if not self.root.is_dir():
            return []
        stems = set(keys)
        everything = [p for p in sorted(self.root.rglob("*")) if p.is_file() and p != self.hashes_file]
        # By name (a content key): a command names the folder the run was made in, which may have moved.
        stems |= {p.name.split(".", 1)[0] for p in everything if any(p.name in c for c in named_in)}
        shared = (self.clip_folder, self.root / "review", self.root / "start")
        gone = [
            p
            for p in everything
            if p.name.split(".", 1)[0] in stems or any(p.is_relative_to(folder) for folder in shared)
        ]
        for path in gone:
            path.unlink(missing_ok=True)
        hashes = self.hashes()
        hashes.forget([*gone, *sources])
        hashes.save()
        return gone


def make_key(
    stage: str,
    version: int,
    inputs: Mapping[str, Any],
    *,
    form: Mapping[str, Any] | None = None,
    tools: Mapping[str, str] | None = None,
) -> str:
    """The content key of a stage's result: the same parts give the same key on any machine."""
    return sha256_text(
        stable_json({"stage": stage, "version": version, "form": form, "inputs": inputs, "tools": tools})
    )


def store_json(path: Path, data: Any) -> None:
    """Store a JSON result atomically; ``read_json`` finds it, or a miss when it is damaged."""
    write_json(path, data)


def read_json(path: Path) -> Any | None:
    """A stored JSON result, or None when it is missing or damaged (the damaged file is removed)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        log.warning("cache: %s cannot be read (%s); making it again", path.name, error)
        _discard(path)
        return None
    try:
        return json.loads(text)
    except ValueError:
        log.warning("cache: %s is damaged; making it again", path.name)
        _discard(path)
        return None


def _seal_path(path: Path) -> Path:
    return path.with_name(path.name + SEAL_SUFFIX)


def seal(path: Path, hashes: HashCache) -> None:
    """Record the checksum of a file just stored, so that a later lookup can tell it is intact."""
    write_text(_seal_path(path), hashes.sha256(path) + "\n")


def is_intact(path: Path, hashes: HashCache) -> bool:
    """True when ``path`` is a stored entry with the content it was sealed with. A file that is there
    but unsealed or changed is removed, so that it is made again."""
    if not path.is_file():
        return False
    seal_file = _seal_path(path)
    try:
        recorded = seal_file.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        recorded = ""
    if recorded and hashes.sha256(path) == recorded:
        return True
    log.warning("cache: %s is incomplete or damaged; making it again", path.name)
    _discard(path)
    _discard(seal_file)
    return False


def _discard(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as error:
        log.warning("cache: %s cannot be removed (%s)", path, error)


class ContentDigests:
    """The SHA-256 of a file or a folder's content (a speech model: gigabytes), remembered by each file's
    stamp so that it is read once, not on every run. The stamp is the resolved path, size, inode,
    device, and both the modification and the change time: a file replaced in place keeping its size
    and modification time (``cp -p``, a new file under the old inode) still has a new change time."""

    def __init__(self, store: Path) -> None:
        self.store = store
        self._dirty = False
        data = read_json(store)
        self._entries: dict[str, dict[str, Any]] = data if isinstance(data, dict) else {}

    def _file(self, path: Path) -> str:
        from pipeline.files import sha256_file

        info = path.stat()
        stamp = {
            "size": info.st_size,
            "mtime_ns": info.st_mtime_ns,
            "ctime_ns": info.st_ctime_ns,
            "ino": info.st_ino,
            "dev": info.st_dev,
        }
        key = str(path.resolve())
        entry = self._entries.get(key)
        if isinstance(entry, dict) and all(entry.get(k) == v for k, v in stamp.items()):
            return str(entry["sha256"])
        digest = sha256_file(path)
        self._entries[key] = {**stamp, "sha256": digest}
        self._dirty = True
        return digest

    def of(self, path: Path) -> str:
        """A file's SHA-256; for a folder, the SHA-256 of the list of every file below it (links
        followed) with its own SHA-256, so that any change to any file changes it."""
        if not path.is_dir():
            return self._file(path)
        lines = [
            f"{self._file(file)}  {file.relative_to(path).as_posix()}\n"
            for file in sorted(path.rglob("*"))
            if file.is_file()
        ]
        return sha256_text("".join(lines))

    def save(self) -> None:
        """Keep what was read for the next run; a cache that cannot be written only costs time."""
        if not self._dirty:
            return
        try:
            write_json(self.store, self._entries)
        except OSError as error:
            log.debug("cache: %s cannot be written (%s)", self.store, error)
        self._dirty = False
