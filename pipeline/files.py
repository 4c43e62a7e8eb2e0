"""Writing files so that they appear complete or not at all, and hashing them once."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import stat
import tempfile
import threading
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from pipeline.escape import encodable

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


@contextlib.contextmanager
def lock_file(path: Path, mode: int, *, flags: int = 0) -> Iterator[tuple[int | None, str]]:
    """An exclusive lock on the file ``path`` (made with ``mode``; ``flags`` added to the open, e.g.
    ``os.O_NOFOLLOW``): (its descriptor, "") to the process that gets it, (None, what the holder wrote
    in it) to one that does not. The holder's file is removed when it lets go, whether it ends normally,
    on an error or on Ctrl-C: no lock file stays behind. One left by a killed process holds no lock
    (the system let go of it with the process) and is taken over as before. An error opening the file
    (a link, with ``os.O_NOFOLLOW``) is the caller's to tell."""
    import fcntl

    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | flags, mode)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 1000, 0).decode("ascii", "replace").strip()
            os.close(fd)
            yield None, holder
            return
        except BaseException:
            os.close(fd)
            raise
        # The holder before may have removed the file between this open and this lock: the lock is then
        # on a file nobody else finds, so open the one that is there now.
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path, follow_symlinks=False))
        except OSError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        yield fd, ""
    finally:
        # Removed while still held, so that no one takes the lock of a file about to go.
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)


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
    # A path that is not UTF-8 (the meeting folder's own name, say) is recorded with its bytes escaped
    # rather than stopping the record.
    text = json.dumps(encodable(data, shown_name), ensure_ascii=False, indent=2, sort_keys=False)
    write_text(target, text + "\n")


# ------------------------------------------------------------------------- files that must not be opened


class NotAFile(OSError):
    """A name that is not an ordinary file (a named pipe, a device, a socket, a folder): opening it could
    wait for ever (a FIFO), never end (``/dev/zero``) or act on a device, so it is never opened.
    ``reason`` is the one line a person reads."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(reason)
        self.path = str(path)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


def kind_of(mode: int) -> str | None:
    """What a file is, in words, when it is not an ordinary file; None for an ordinary file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not an ordinary file"


def not_a_file(path: Path) -> str | None:
    """Why ``path`` must not be opened as a file (what it is, or where its link leads), or None for an
    ordinary file or link to one. Looks without opening: ``lstat`` and ``stat`` only."""
    try:
        own = os.lstat(path)
    except FileNotFoundError:
        return "it does not exist"
    except OSError as error:
        return f"cannot be read ({_strerror(error)})"
    if not stat.S_ISLNK(own.st_mode):
        kind = kind_of(own.st_mode)
        return f"{kind}, not a recording file" if kind else None
    try:
        target = os.stat(path)
    except FileNotFoundError:
        return "a link to a file that does not exist"
    except OSError as error:
        return f"a link that cannot be followed ({_strerror(error)})"
    kind = kind_of(target.st_mode)
    return f"a link to {kind}, not a recording file" if kind else None


# A file this long that holds almost nothing on disk is mostly holes (``truncate -s 50G``): no camera or
# phone writes one, and reading it for its digest and copying it into the archive would take minutes
# and the disk. Compressing file systems store silence small too, hence a wide margin.
SPARSE_FROM_BYTES = 256 * 1024 * 1024
SPARSE_RATIO = 16


def mostly_holes(path: Path) -> str | None:
    """Why ``path`` (an ordinary file, or a link to one) is not a recording though it looks like one:
    it is far longer than what it holds on disk. None for any other file; looked at, never opened."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    held = getattr(info, "st_blocks", None)
    if held is None or info.st_size < SPARSE_FROM_BYTES or held * 512 * SPARSE_RATIO >= info.st_size:
        return None
    return (
        f"a file of {info.st_size / 1e9:.1f} GB that holds {held * 512 / 1e6:.1f} MB on disk (mostly "
        "empty space), not a recording"
    )


def _strerror(error: OSError) -> str:
    return (error.strerror or str(error)).lower()


@contextlib.contextmanager
def open_regular(path: Path) -> Iterator[io.FileIO]:
    """``path`` opened for reading only when it is an ordinary file (else NotAFile, without opening it).

    Looked at first, then opened without waiting (a FIFO put in its place meanwhile opens at once
    instead of waiting for a writer) and looked at again through the open descriptor, so what is read
    is what was checked."""
    problem = not_a_file(path)
    if problem:
        raise NotAFile(path, problem)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    fd = os.open(path, flags | getattr(os, "O_BINARY", 0))
    try:
        kind = kind_of(os.fstat(fd).st_mode)
        if kind:
            raise NotAFile(path, f"{kind}, not a recording file (it changed while it was looked at)")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        handle = open(fd, "rb", buffering=0)  # noqa: SIM115 - closed below
    except BaseException:
        os.close(fd)
        raise
    with handle:
        # The name, for whoever reads it through the handle (PyAV guesses a format from its ending).
        handle.name = str(path)
        yield handle


def sha256_file(path: Path) -> str:
    with open_regular(path) as handle:
        return _sha256(handle)


def _sha256(handle: BinaryIO) -> str:
    digest = hashlib.sha256()
    while chunk := handle.read(CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


# -------------------------------------------------------------------------------------- names of files


def shown_name(name: str) -> str:
    """A file name as one line of text that says exactly which file it is: bytes that are not UTF-8
    as ``\\xff``, control characters (a line break, an escape) as ``\\n``, ``\\x1b``; everything
    else as it is."""
    if not any(_unsafe_char(c) for c in name):
        return name
    raw = os.fsencode(name).decode("utf-8", "backslashreplace") if not_utf8(name) else name
    out = []
    for char in raw:
        if _unsafe_char(char):
            out.append(char.encode("unicode_escape").decode("ascii"))
        else:
            out.append(char)
    return "".join(out)


def not_utf8(text: str) -> bool:
    """A name read from the file system whose bytes are not UTF-8 (Python holds them as surrogates)."""
    return any("\ud800" <= c <= "\udfff" for c in text)


def _unsafe_char(char: str) -> bool:
    return "\ud800" <= char <= "\udfff" or unicodedata.category(char) == "Cc"


# A recording's name is carried into names made from it (its edits files, and their temporary files
# beside them, 20 bytes longer), which must stay within the 255 bytes of ext4, NTFS and exFAT.
MAX_NAME_BYTES = 200
# And its whole path inside the meeting folder, which OUT/edits and the archive repeat below their own.
MAX_PATH_BYTES = 1000


def name_problem(name: str) -> str | None:
    """Why a file of this name cannot be carried honestly into the records, the archive's manifests
    and the delivery, which are UTF-8 text; or None. (A line break in a name is carried: the manifests
    encode it, and every other record is JSON or YAML, which escape it.)"""
    if not_utf8(name):
        return "the file name is not valid UTF-8: rename it"
    if len(name.encode("utf-8")) > MAX_PATH_BYTES:
        return (
            f"the path inside the meeting folder is too long to carry ({len(name.encode('utf-8'))} bytes, "
            f"at most {MAX_PATH_BYTES}): move the file up"
        )
    longest = max((len(part.encode("utf-8")) for part in name.split("/")), default=0)
    if longest > MAX_NAME_BYTES:
        return f"the file name is too long to carry ({longest} bytes, at most {MAX_NAME_BYTES}): rename it"
    return None


def folder_title(folder: Path) -> str:
    """A meeting folder's name as the text that stands in for a missing title: bytes that are not UTF-8
    as U+FFFD, control characters left out, composed (NFC). Never a lone surrogate in a card or a
    document."""
    text = os.fsencode(folder.name).decode("utf-8", "replace")
    return nfc("".join(c for c in text if unicodedata.category(c) != "Cc")) or "møde"


def nfc(name: str) -> str:
    """A name as Unicode composes it (NFC): "Åse" typed on one machine and stored decomposed (NFD) by
    another's file system are the same name."""
    return unicodedata.normalize("NFC", name)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stable_json(data: Any) -> str:
    """JSON with sorted keys and no spaces: the same data always gives the same text (for cache keys)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


class HashCache:
    """SHA-256 of files, remembered by (size, mtime, inode) so a re-run does not read gigabytes again.

    Like git's index: a file whose size, modification time and inode are unchanged is taken to have the
    same content. Work done ahead asks it from its own thread while the run asks from the main one, so
    its entries change under a lock.
    """

    def __init__(self, store: Path) -> None:
        self.store = store
        self._entries: dict[str, dict[str, Any]] = {}
        self._dirty = False
        self._lock = threading.Lock()
        try:
            self._entries = json.loads(store.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            self._entries = {}

    def sha256(self, path: Path) -> str:
        """The file's SHA-256; NotAFile (an OSError) for anything but an ordinary file, never opened."""
        problem = not_a_file(path)
        if problem:
            raise NotAFile(path, problem)
        key = str(path.resolve())
        with self._lock:
            entry = self._entries.get(key)
        if entry and all(entry.get(k) == v for k, v in _stamp(path.stat()).items()):
            return str(entry["sha256"])
        with open_regular(path) as handle:
            # The stamp of what is read, through the descriptor: not of whatever has the name now.
            stamp = _stamp(os.fstat(handle.fileno()))
            digest = _sha256(handle)
        with self._lock:
            self._entries[key] = {**stamp, "sha256": digest}
            self._dirty = True
        return digest

    def forget(self, paths: Iterable[Path]) -> None:
        """Drop the digests of files deleted (a withdrawn statement's cache entries)."""
        with self._lock:
            for path in paths:
                if self._entries.pop(str(path.resolve()), None) is not None:
                    self._dirty = True

    def save(self) -> None:
        with self._lock:
            if not self._dirty:
                return
            # ASCII JSON: a name with bytes that are not UTF-8 is kept as its escape and read back as it
            # was, where UTF-8 text could not hold it at all.
            text = json.dumps(self._entries, ensure_ascii=True, indent=2) + "\n"
            self._dirty = False
        write_text(self.store, text)


def _stamp(found: os.stat_result) -> dict[str, int]:
    return {"size": found.st_size, "mtime_ns": found.st_mtime_ns, "ino": found.st_ino}


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
