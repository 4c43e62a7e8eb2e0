"""`hearing models get NAME`: a catalogue model fetched once from the model hub, verified, stored.

Every file is checked against the digest the hub publishes for it (an LFS file's SHA-256; a small file's
git blob id, which is the SHA-1 of ``"blob <size>\\0"`` and the bytes), so a file changed on the way or on
a mirror is refused, not installed. Partial files are kept, named by that digest, beside the store: a
download cut short resumes where it stopped, and never mixes bytes of two versions of a file.

A model is installed when its folder holds ``hearing-model.json``. The folder is built beside the store
and renamed into place only after the manifest is written in it, so nothing half-made looks installed.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from pipeline.engines.embedded import models_dir
from pipeline.errors import Busy, ModelError, human_bytes

log = logging.getLogger(__name__)

MANIFEST = "hearing-model.json"
MANIFEST_VERSION = 1
ENDPOINT_SETTING = "HF_ENDPOINT"
_CHUNK = 1 << 20
_TRIES = 4  # attempts in a row without a byte received before a download gives up
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_HEX40 = re.compile(r"[0-9a-fA-F]{40}")
_SAFE_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")

# Called with (bytes done, bytes in all) across every file of the model.
DownloadProgress = Callable[[int, int], None]
# Free bytes where a folder is (or would be made): ``free_bytes``, or a test's own.
FreeSpace = Callable[[Path], int]
# Room for what is not the files themselves: the manifest, the converter's vocabulary and config, the
# file system's own blocks.
SPACE_MARGIN = 64 * 1000 * 1000


@dataclass(frozen=True)
class RemoteFile:
    """One file of the repository as the hub lists it."""

    name: str
    size: int
    digest: str  # hex, as the hub publishes it
    kind: str  # "sha256" (an LFS file) or "git-sha1" (a small file's git blob id)


@dataclass(frozen=True)
class Listing:
    commit: str  # the revision the hub answered with
    files: tuple[RemoteFile, ...]

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


@dataclass(frozen=True)
class InstalledModel:
    """A stored model, as its manifest describes it."""

    name: str
    path: Path
    repo: str
    revision: str  # the commit the hub answered with
    requested_revision: str  # as the catalogue named it
    format: str
    model_sha256: str  # of the installed model.bin: the model's identity in cache keys and provenance
    licence: str
    conversion: dict[str, Any] | None
    downloaded: str

    @property
    def identity(self) -> str:
        return f"catalogue:{self.name}:{self.repo}@{self.revision}:sha256:{self.model_sha256}"


class NoRoomForModel(ModelError):
    """Too little free space where the store lives for what ``hearing models get`` must still write."""

    def __init__(self, name: str, folder: Path, need: int, free: int) -> None:
        self.name = name
        self.folder = folder
        self.need = need
        self.free = free
        super().__init__(
            f"not enough free disk space to get {name} in {folder}: it needs about {human_bytes(need)}, "
            f"{human_bytes(free)} is free",
            "free some space, or set HEARING_PIPELINE_CACHE to a folder on a disk with more room",
        )


def store_dir() -> Path:
    """Downloaded models live beside the embedded one, one folder per catalogue name."""
    return models_dir()


def _check_name(name: str) -> str:
    if not _SAFE_NAME.fullmatch(name):
        raise ModelError(f"model name {name!r} cannot name a folder", "use a catalogue name such as large-v3")
    return name


def read_manifest(folder: Path) -> InstalledModel | None:
    """The model in ``folder``, or None when it is not a complete installed model."""
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        installed = {f["name"]: f for f in data["installed_files"]}
        model_bin = installed["model.bin"]
        if (folder / "model.bin").stat().st_size != model_bin["size"] or data["name"] != folder.name:
            return None
        return InstalledModel(
            name=str(data["name"]),
            path=folder,
            repo=str(data["repo"]),
            revision=str(data["revision"]),
            requested_revision=str(data.get("requested_revision") or data["revision"]),
            format=str(data["format"]),
            model_sha256=str(model_bin["sha256"]),
            licence=str(data.get("licence") or ""),
            conversion=data.get("conversion"),
            downloaded=str(data.get("downloaded") or ""),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def installed(store: Path | None = None) -> list[InstalledModel]:
    """Every stored model with a valid manifest, by name."""
    root = store or store_dir()
    if not root.is_dir():
        return []
    found = (read_manifest(p) for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith("."))
    return [m for m in found if m is not None]


def find_installed(name: str, store: Path | None = None) -> InstalledModel | None:
    if not _SAFE_NAME.fullmatch(name):
        return None
    return read_manifest((store or store_dir()) / name)


# --- what the hub publishes -------------------------------------------------------------------------


def _endpoint() -> str:
    from huggingface_hub import constants

    return str(constants.ENDPOINT)


def hub_error(error: BaseException, what: str) -> ModelError:
    """A failure to talk to the hub as one line that says what to do."""
    from huggingface_hub import errors

    first = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
    if isinstance(error, errors.OfflineModeIsEnabled):
        return ModelError(f"{what}: HF_HUB_OFFLINE is set", "unset HF_HUB_OFFLINE to download models")
    if isinstance(error, errors.GatedRepoError):
        return ModelError(
            f"{what}: the hub asks for its licence to be accepted ({first})",
            "accept it on the model's hub page and set HF_TOKEN",
        )
    if isinstance(error, errors.RevisionNotFoundError | errors.RepositoryNotFoundError):
        return ModelError(f"{what}: not on the hub at {_endpoint()} ({first})", f"check {ENDPOINT_SETTING}")
    return ModelError(
        f"{what}: cannot reach the model hub at {_endpoint()} ({first})",
        f"check the network connection, or set {ENDPOINT_SETTING} to a reachable hub or mirror",
    )


def _safe_file_name(name: str) -> bool:
    parts = name.split("/")
    return bool(name) and not name.startswith("/") and all(p not in ("", ".", "..") for p in parts)


def listing_of(entry: Any, siblings: list[Any], commit: str) -> Listing:
    """The files to fetch: the entry's (all the repository's when it names none), each with its size
    and published digest. A file the hub does not list, or lists without a digest, is refused."""
    by_name = {s.rfilename: s for s in siblings}
    wanted = tuple(entry.files) or tuple(sorted(by_name))
    files = []
    for name in wanted:
        sibling = by_name.get(name)
        if sibling is None:
            raise ModelError(
                f"{entry.repo} at {commit[:12]} has no file {name!r}", "the catalogue entry needs fixing"
            )
        if not _safe_file_name(name):
            raise ModelError(f"{entry.repo} lists a file named {name!r}", "refusing to write it")
        size = sibling.lfs.size if sibling.lfs is not None else sibling.size
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ModelError(f"the hub lists {entry.repo}/{name} with size {size!r}", "refusing it")
        if sibling.lfs is not None and _HEX64.fullmatch(str(sibling.lfs.sha256 or "")):
            files.append(RemoteFile(name, size, str(sibling.lfs.sha256).lower(), "sha256"))
        elif (
            sibling.lfs is None and _HEX40.fullmatch(str(sibling.blob_id or "")) and sibling.size is not None
        ):
            files.append(RemoteFile(name, int(sibling.size), str(sibling.blob_id).lower(), "git-sha1"))
        else:
            raise ModelError(
                f"the hub publishes no digest for {entry.repo}/{name}", "refusing an unverified file"
            )
    return Listing(commit, tuple(files))


def requested_revision(entry: Any) -> str:
    """The revision asked of the hub: the catalogue's commit, or the repository's main branch where the
    catalogue could name none (the commit the hub answers with is what the manifest records)."""
    return str(entry.revision or "main")


def list_remote(entry: Any) -> Listing:
    from huggingface_hub import HfApi

    what = f"cannot list {entry.repo} at {requested_revision(entry)[:12]}"
    try:
        info = HfApi().model_info(entry.repo, revision=requested_revision(entry), files_metadata=True)
    except Exception as error:  # huggingface_hub and httpx raise many kinds
        raise hub_error(error, what) from error
    if not info.sha or info.siblings is None:
        raise ModelError(f"{what}: the hub's answer names no commit or files", f"check {ENDPOINT_SETTING}")
    return listing_of(entry, info.siblings, info.sha)


# --- fetching one file --------------------------------------------------------------------------------


class _Digests:
    """SHA-256 of the bytes, and the digest the hub published, fed as the bytes arrive."""

    def __init__(self, remote: RemoteFile) -> None:
        self.sha256 = hashlib.sha256()
        self.git = hashlib.sha1(f"blob {remote.size}\0".encode(), usedforsecurity=False)
        self.kind = remote.kind

    def update(self, chunk: bytes) -> None:
        self.sha256.update(chunk)
        if self.kind == "git-sha1":
            self.git.update(chunk)

    def published(self) -> str:
        return self.sha256.hexdigest() if self.kind == "sha256" else self.git.hexdigest()


def _hash_existing(handle: BinaryIO, digests: _Digests) -> int:
    handle.seek(0)
    done = 0
    while chunk := handle.read(_CHUNK):
        digests.update(chunk)
        done += len(chunk)
    return done


def _file_url(repo: str, commit: str, name: str) -> str:
    from urllib.parse import quote

    return f"{_endpoint()}/{repo}/resolve/{commit}/{quote(name)}"


def fetch(url: str, partial: Path, remote: RemoteFile, on_bytes: Callable[[int], None] | None = None) -> str:
    """Download ``url`` into ``partial``, continuing from the bytes already there; return the file's
    SHA-256 once its size and published digest match. A mismatch deletes the partial file (it cannot be
    resumed into anything right) and raises."""
    import httpx2
    from huggingface_hub.utils import build_hf_headers, get_session

    digests = _Digests(remote)
    with open(partial, "ab+") as handle:
        done = _hash_existing(handle, digests)
        if done > remote.size:  # not this file: start again
            handle.truncate(0)
            digests, done = _Digests(remote), 0
        if on_bytes:
            on_bytes(done)
        tries = 0
        too_long = False
        while done < remote.size and not too_long:
            headers = build_hf_headers()
            if done:
                headers["Range"] = f"bytes={done}-"
            before = done
            try:
                with get_session().stream("GET", url, headers=headers, follow_redirects=True) as response:
                    if response.status_code == 200 and done:  # the server ignored the range
                        handle.truncate(0)
                        digests, done = _Digests(remote), 0
                    elif response.status_code not in (200, 206):
                        raise ModelError(
                            f"the hub answered HTTP {response.status_code} for {remote.name}",
                            f"try again later, or check {ENDPOINT_SETTING}",
                        )
                    for chunk in response.iter_bytes(_CHUNK):
                        if done + len(chunk) > remote.size:
                            too_long = True  # more than the hub listed: refused below
                            break
                        handle.write(chunk)
                        digests.update(chunk)
                        done += len(chunk)
                        if on_bytes:
                            on_bytes(done)
                if done < remote.size and not too_long:
                    raise httpx2.ReadError("the connection ended early")
            except httpx2.TransportError as error:
                handle.flush()
                tries = 0 if done > before else tries + 1
                if tries >= _TRIES:
                    raise hub_error(error, f"cannot download {remote.name}") from error
                log.warning("download of %s interrupted (%s); resuming", remote.name, error)
                time.sleep(0.5 * tries)
            except ModelError:
                raise
            except Exception as error:  # OfflineModeIsEnabled and other refusals before any byte
                raise hub_error(error, f"cannot download {remote.name}") from error
        handle.flush()
        os.fsync(handle.fileno())
    got = digests.published()
    if too_long or got != remote.digest:
        partial.unlink(missing_ok=True)
        size_note = f" (more than the {remote.size:,} bytes listed)" if too_long else ""
        raise ModelError(
            f"{remote.name} does not match the digest the hub publishes{size_note}: "
            f"expected {remote.kind} {remote.digest}, got {got}",
            "nothing was installed; run the command again, and if it repeats, the hub or a mirror "
            f"({ENDPOINT_SETTING}) serves a wrong file",
        )
    return digests.sha256.hexdigest()


# --- room on the disk -------------------------------------------------------------------------------


def bytes_present(listing: Listing, downloads: Path) -> dict[str, int]:
    """The bytes of each file already beside the store: a verified file whole, a partial one as far as
    it got (a resumed download fetches only the rest)."""
    present: dict[str, int] = {}
    for remote in listing.files:
        for path in (downloads / remote.digest, downloads / f"{remote.digest}.part"):
            try:
                present[remote.name] = min(path.stat().st_size, remote.size)
                break
            except OSError:
                continue
    return present


def space_needed(listing: Listing, present: dict[str, int], converts: bool) -> int:
    """What installing the model still writes, at most: the bytes still to fetch, and where the
    weights are converted, the converted model beside the downloaded files (they are deleted only once
    it is in place). The files are linked, not copied, into the model folder (the same file system).

    The conversion's size is estimated conservatively: int8 weights are a quarter of float32 ones but
    half of float16 ones (how many transformers models are published), so half of everything
    downloaded is counted, the tokenizer and configuration included."""
    to_fetch = sum(max(f.size - present.get(f.name, 0), 0) for f in listing.files)
    converted = listing.size // 2 if converts else 0
    return to_fetch + converted + SPACE_MARGIN


def free_bytes(folder: Path) -> int:
    """Free bytes on the file system ``folder`` is on (or would be made on)."""
    for place in (folder, *folder.parents):
        if place.exists():
            return shutil.disk_usage(place).free
    return shutil.disk_usage(Path.cwd()).free


def check_room(name: str, folder: Path, need: int, free: int) -> None:
    if need > free:
        raise NoRoomForModel(name, folder, need, free)


# --- installing ---------------------------------------------------------------------------------------


@contextmanager
def _locked(lock_path: Path, name: str) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+b") as lock:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Busy(f"another `hearing models get {name}` is running; wait for it to finish") from None
        yield


def _place(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _file_records(folder: Path) -> list[dict[str, Any]]:
    from pipeline.engines.embedded import size_and_sha256

    records = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        size, sha = size_and_sha256(path)
        records.append({"name": path.relative_to(folder).as_posix(), "size": size, "sha256": sha})
    return records


def _record(conversion: Any) -> dict[str, Any] | None:
    """The conversion (``convert.Conversion``) as the manifest records it."""
    if conversion is None:
        return None
    if dataclasses.is_dataclass(conversion) and not isinstance(conversion, type):
        return dataclasses.asdict(conversion)
    return dict(conversion)


def manifest(
    entry: Any,
    listing: Listing,
    sha256s: dict[str, str],
    installed_files: list[dict[str, Any]],
    conversion: Any,
    now: datetime,
) -> dict[str, Any]:
    return {
        "manifest_version": MANIFEST_VERSION,
        "name": entry.name,
        "repo": entry.repo,
        "revision": listing.commit,
        "requested_revision": requested_revision(entry),
        "format": entry.format,
        "licence": entry.licence,
        "licence_conditions": entry.licence_conditions,
        "downloaded": now.isoformat(timespec="seconds"),
        "files": [
            {"name": f.name, "size": f.size, "sha256": sha256s[f.name], "hub_digest": f"{f.kind}:{f.digest}"}
            for f in listing.files
        ],
        "conversion": (_record(conversion)),
        "installed_files": installed_files,
    }


def _swap_in(staging: Path, target: Path) -> None:
    """Rename the finished folder onto ``target``; an older copy there goes only after."""
    old = None
    if target.exists():
        old = target.with_name(f".old-{target.name}-{os.getpid()}")
        os.rename(target, old)
    os.rename(staging, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def get(
    entry: Any,
    *,
    store: Path | None = None,
    on_progress: DownloadProgress | None = None,
    free_space: FreeSpace = free_bytes,
) -> Path:
    """Fetch the catalogue ``entry`` once, verify every file, convert it when it is not CTranslate2
    already, and install it in ``store`` (default: the model cache). Returns the installed folder.

    Already installed at the entry's revision: returned without the network. Interrupted: the verified
    files and the partial one stay beside the store, and the next call resumes. Too little room for
    what is still to fetch and convert (``space_needed``): NoRoomForModel before any byte is fetched."""
    name = _check_name(entry.name)
    root = store or store_dir()
    target = root / name
    if _current(target, entry):
        return target
    try:
        with _locked(root / f".download-{name}.lock", name):
            if _current(target, entry):  # another process finished it while this one waited
                return target
            # Under the lock, a folder being built for this name was left by a process that died.
            for stale in [*root.glob(f".staging-{name}-*"), *root.glob(f".old-{name}-*")]:
                shutil.rmtree(stale, ignore_errors=True)
            listing = list_remote(entry)
            downloads = root / f".download-{name}"
            need = space_needed(listing, bytes_present(listing, downloads), entry.format == "transformers")
            check_room(name, root, need, free_space(root))
            sha256s = _download_all(entry, listing, downloads, on_progress)
            _install(entry, listing, sha256s, downloads, root / f".staging-{name}-{os.getpid()}", target)
            shutil.rmtree(downloads, ignore_errors=True)
    except OSError as error:
        raise ModelError(
            f"cannot store {name} in {root} ({error.strerror or error})",
            "free disk space, or set HEARING_PIPELINE_CACHE to a writable folder",
        ) from error
    log.info("installed %s (%s at %s) in %s", name, entry.repo, listing.commit[:12], target)
    return target


def _current(target: Path, entry: Any) -> bool:
    present = read_manifest(target)
    return (
        present is not None
        and present.repo == entry.repo
        and requested_revision(entry) in (present.revision, present.requested_revision)
    )


def _download_all(
    entry: Any, listing: Listing, downloads: Path, on_progress: DownloadProgress | None
) -> dict[str, str]:
    """Every file verified in ``downloads`` (named by its published digest); their SHA-256 by name."""
    downloads.mkdir(parents=True, exist_ok=True)
    total = listing.size
    finished = 0
    sha256s: dict[str, str] = {}
    for remote in listing.files:
        blob = downloads / remote.digest
        known = downloads / f"{remote.digest}.sha256"  # written before the blob is renamed into place
        if blob.is_file() and known.is_file() and blob.stat().st_size == remote.size:
            sha256s[remote.name] = known.read_text(encoding="ascii").strip()
        else:
            partial = downloads / f"{remote.digest}.part"

            def report(done: int, base: int = finished) -> None:
                if on_progress:
                    on_progress(base + done, total)

            url = _file_url(entry.repo, listing.commit, remote.name)
            sha256s[remote.name] = fetch(url, partial, remote, report)
            known.write_text(sha256s[remote.name], encoding="ascii")
            os.rename(partial, blob)
        finished += remote.size
        if on_progress:
            on_progress(finished, total)
    return sha256s


def _install(
    entry: Any, listing: Listing, sha256s: dict[str, str], downloads: Path, staging: Path, target: Path
) -> None:
    """Build the model folder in ``staging`` (converting where the entry says so), write its manifest
    last, and rename it onto ``target``."""
    shutil.rmtree(staging, ignore_errors=True)
    try:
        conversion = None
        if entry.format == "transformers":
            from pipeline.engines.convert import to_ctranslate2

            source = staging.with_name(staging.name + "-source")
            shutil.rmtree(source, ignore_errors=True)
            for remote in listing.files:
                _place(downloads / remote.digest, source / remote.name)
            try:
                conversion = to_ctranslate2(source, staging)
            finally:
                shutil.rmtree(source, ignore_errors=True)
        elif entry.format == "ct2":
            for remote in listing.files:
                _place(downloads / remote.digest, staging / remote.name)
        else:
            raise ModelError(
                f"catalogue entry {entry.name} has format {entry.format!r}", "expected ct2 or transformers"
            )
        if not (staging / "model.bin").is_file():
            raise ModelError(
                f"{entry.repo} gave no model.bin for {entry.name}", "the catalogue entry needs fixing"
            )
        from pipeline.files import write_json

        record = manifest(entry, listing, sha256s, _file_records(staging), conversion, datetime.now(UTC))
        write_json(staging / MANIFEST, record)  # last: the folder is a model only with it
        _swap_in(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
