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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.files import HashCache, sha256_text, stable_json, write_json, write_text

log = logging.getLogger(__name__)

SEAL_SUFFIX = ".sha256"


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
