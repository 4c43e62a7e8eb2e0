"""Bytes to disk with their digests: a recording copied and hashed in one pass, the small metadata
files written and hashed, and a file's digests read back."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pipeline.files import fsync_path, open_regular
from pipeline.stages.archive.layout import ALGORITHMS

# Big enough that the per-chunk overhead vanishes, small enough that memory stays flat on any file.
COPY_CHUNK = 4 << 20


def fsync_tree(root: Path) -> None:
    for folder, _dirs, names in os.walk(root, topdown=False):
        for name in names:
            fsync_path(Path(folder, name))
        fsync_path(Path(folder))


def _new_file(path: Path) -> Any:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("xb", buffering=0)


def _write_all(handle: Any, view: memoryview) -> None:
    while view:
        written = handle.write(view)
        view = view[written:]


# Written bytes are handed to the disk every so often while the digests go on, so that the fsync at the
# end does not wait for the whole file: the copy then costs about the slower of hashing and writing,
# not their sum.
WRITEBACK_EVERY = 64 << 20


def _start_writeback(handle: Any, offset: int, length: int) -> None:
    # On Linux, "don't need" on dirty pages starts their writeback without waiting for it.
    if hasattr(os, "posix_fadvise"):
        with contextlib.suppress(OSError):
            os.posix_fadvise(handle.fileno(), offset, length, os.POSIX_FADV_DONTNEED)


def _drop_cached(handle: Any) -> None:
    # After the fsync the copy is on the disk; dropping it from the page cache makes the validation
    # that follows read the disk, not memory.
    if hasattr(os, "posix_fadvise"):
        with contextlib.suppress(OSError):
            os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def copy_with_digests(
    source: Path,
    target: Path,
    pool: ThreadPoolExecutor,
    on_bytes: Callable[[int], None] | None = None,
) -> tuple[int, str, str]:
    """Copy ``source`` to a new file ``target`` and return (size, sha512, sha256) of the bytes copied.

    One buffer, reused: memory stays flat whatever the file size. SHA-512 runs in ``pool`` while this
    thread computes SHA-256 and writes (hashlib and file writes release the GIL), so the copy costs
    about as much as the slower of the two digests.
    """
    sha512, sha256 = hashlib.sha512(), hashlib.sha256()
    buffer = bytearray(COPY_CHUNK)
    view = memoryview(buffer)
    size = flushed = 0
    # Opened only as an ordinary file: one swapped for a named pipe since it was found must not block.
    with open_regular(source) as src, _new_file(target) as dst:
        while count := src.readinto(buffer):
            chunk = view[:count]
            pending = pool.submit(sha512.update, chunk)
            sha256.update(chunk)
            _write_all(dst, chunk)
            pending.result()
            size += count
            if size - flushed >= WRITEBACK_EVERY:
                _start_writeback(dst, flushed, size - flushed)
                flushed = size
            if on_bytes:
                on_bytes(count)
        os.fsync(dst.fileno())
        _drop_cached(dst)
    stat = source.stat()
    # The file's own date is part of what was received.
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    return size, sha512.hexdigest(), sha256.hexdigest()


def write_small(path: Path, data: bytes) -> dict[str, str]:
    with _new_file(path) as handle:
        _write_all(handle, memoryview(data))
        os.fsync(handle.fileno())
    return {alg: hashlib.new(alg, data).hexdigest() for alg in ALGORITHMS}


def file_digests(path: Path, algorithms: Iterable[str]) -> dict[str, str]:
    hashers = {alg: hashlib.new(alg) for alg in algorithms}
    with path.open("rb") as handle:
        while chunk := handle.read(COPY_CHUNK):
            for hasher in hashers.values():
                hasher.update(chunk)
    return {alg: h.hexdigest() for alg, h in hashers.items()}
