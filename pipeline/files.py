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


def cache_root() -> Path:
    """The per-user cache of models, converted checkpoints and what each ffmpeg can do (not the per-run
    work cache)."""
    env = os.environ.get("HEARING_PIPELINE_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    # The XDG spec says a relative path there is invalid and must be ignored.
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "hearing-pipeline"
    return Path.home() / ".cache" / "hearing-pipeline"


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


def _exchange(a: Path, b: Path) -> bool:
    """Swap two folders in one step (Linux renameat2 RENAME_EXCHANGE); False where that is not possible,
    so that the caller falls back to two renames."""
    import ctypes
    import errno
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def replace_folder(staging: Path, target: Path, aside: Path) -> None:
    """Make the finished folder ``staging`` the folder ``target``: at every moment ``target`` is the old
    folder or the new one. Where the system cannot swap two folders in one step, the old one is renamed
    to ``aside`` for an instant; ``recover_folder`` puts it back if the run stops exactly there."""
    import shutil

    if not target.exists():
        os.rename(staging, target)
    elif _exchange(staging, target):
        shutil.rmtree(staging)  # now the old folder
    else:
        os.rename(target, aside)
        os.rename(staging, target)
        fsync_path(target.parent)
        shutil.rmtree(aside)
    fsync_path(target.parent)


def recover_folder(target: Path, asides: list[Path]) -> bool:
    """After a run stopped while replacing ``target``: put the old folder back if ``target`` is gone, and
    remove what was set aside. True when something was put back."""
    import shutil

    asides = sorted((p for p in asides if p.is_dir()), key=lambda p: p.stat().st_mtime)
    restored = False
    if asides and not target.exists():
        os.rename(asides.pop(), target)
        fsync_path(target.parent)
        restored = True
    for stale in asides:
        shutil.rmtree(stale, ignore_errors=True)
    return restored
