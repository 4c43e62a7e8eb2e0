"""Writing files so that they appear complete or not at all, and hashing them once."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

CHUNK = 1 << 20


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def fsync_path(path: Path) -> None:
    """Flush a file or a folder entry to disk; a rename is durable only once its folder is flushed too.
    Not every platform lets a folder be opened for this, so failing quietly is right."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """A temporary path beside ``target``; renamed onto it only when the block finishes without error.

    The caller (or a program it starts) writes the temporary file; a crash leaves at most a hidden
    ``.*.part`` file, never a half-written target.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    # mkstemp makes the file private; a delivered file gets the permissions any new file would get.
    os.fchmod(fd, 0o666 & ~_umask())
    os.close(fd)
    temp = Path(name)
    try:
        yield temp
        with contextlib.suppress(OSError), temp.open("rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temp, target)
        fsync_path(target.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


@contextlib.contextmanager
def atomic_open(target: Path) -> Iterator[BinaryIO]:
    """``atomic_path`` for a caller that writes a stream itself: a binary handle on the temporary file."""
    with atomic_path(target) as temp, temp.open("wb") as handle:
        yield handle


def write_bytes(target: Path, data: bytes) -> None:
    with atomic_path(target) as temp:
        temp.write_bytes(data)


def write_text(target: Path, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))


def write_json(target: Path, data: Any) -> None:
    write_text(target, json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False) + "\n")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stable_json(data: Any) -> str:
    """JSON with sorted keys and no spaces: the same data always gives the same text (for cache keys)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


class HashCache:
    """SHA-256 of files, remembered by (size, mtime, inode) so a re-run does not read gigabytes again.

    Like git's index: a file whose size, modification time and inode are unchanged is taken to have the
    same content.
    """

    def __init__(self, store: Path) -> None:
        self.store = store
        self._entries: dict[str, dict[str, Any]] = {}
        self._dirty = False
        try:
            self._entries = json.loads(store.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            self._entries = {}

    def sha256(self, path: Path) -> str:
        stat = path.stat()
        key = str(path.resolve())
        stamp = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "ino": stat.st_ino}
        entry = self._entries.get(key)
        if entry and all(entry.get(k) == v for k, v in stamp.items()):
            return str(entry["sha256"])
        digest = sha256_file(path)
        self._entries[key] = {**stamp, "sha256": digest}
        self._dirty = True
        return digest

    def save(self) -> None:
        if self._dirty:
            write_json(self.store, self._entries)
            self._dirty = False
