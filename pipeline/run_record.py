"""run.json, the record of a run, as the next command reads it back.

`hearing render` takes the options from it, the review page the statements and their transcripts, the
check the clip's timeline. Each asks ``read`` here, which knows the record's kind and versions: a file
that is not a run record, or one written by a newer hearing-pipeline, is refused with its reason instead
of being half understood.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline.errors import UsageError

RUN_JSON = "run.json"
KIND = "hearing-pipeline run report"
VERSION = 1  # raise it when a field changes meaning; ``read`` then learns to read the older one


class UnreadableRecord(UsageError):
    """run.json is there but cannot be used: damaged, of another kind, or of an unknown version."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path} cannot be used: {reason}")


def path_of(out_dir: Path) -> Path:
    return out_dir / RUN_JSON


def problem(data: Any) -> str | None:
    """Why ``data`` (run.json parsed) is not a run record this version can read; None when it is."""
    if not isinstance(data, dict):
        return "it is not a run record (no JSON object)"
    if data.get("kind") != KIND:
        return "it is not a run record of hearing-pipeline"
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        return f"its version ({version!r}) is not a record version"
    if version > VERSION:
        return (
            f"it was written by a newer hearing-pipeline (record version {version}; this one reads {VERSION})"
        )
    return None


def read(path: Path) -> dict[str, Any]:
    """The run record at ``path``; UnreadableRecord when it cannot be read or is not one this version
    knows. FileNotFoundError when there is none (a caller decides what a missing record means)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise UnreadableRecord(path, f"it cannot be read ({error})") from error
    reason = problem(data)
    if reason:
        raise UnreadableRecord(path, reason)
    return data


def read_in(out_dir: Path) -> dict[str, Any] | None:
    """The run record of the output folder ``out_dir``; None when it holds none."""
    try:
        return read(path_of(out_dir))
    except FileNotFoundError:
        return None
