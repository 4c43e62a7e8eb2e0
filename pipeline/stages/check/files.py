"""The files that belong with a clip: found beside it (subtitles, transcript JSON, the timeline, run.json),
read, and the run's timeline taken from the delivery's own timeline file, else from run.json, only when it
describes this clip."""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline import run_record
from pipeline.config import Form
from pipeline.stages.check.subtitles import subtitle_kind
from pipeline.timefmt import seconds_text

TRANSCRIPT_SUFFIX = "-transkription"
# ``<name>-tidslinje.json`` in the delivery: where each part of the clip is (title, cards, statements), so
# that an official's check of the delivery folder alone judges every statement's length, as the run did.
TIMELINE_SUFFIX = "-tidslinje"
MASTER_SUFFIX = "-master"
TIMELINE_KIND = "hearing-pipeline timeline"
# A run.json whose clip is longer or shorter than this describes another render of the clip.
TIMELINE_TOLERANCE_MS = 200


@dataclass(frozen=True)
class DeliveryFiles:
    """The files that belong with a clip, as found beside it (None: not there)."""

    subtitles: Path | None
    transcript_json: Path | None
    run_json: Path | None
    language: str | None  # from the subtitle file's name, <stem>.<language>.srt
    timeline_json: Path | None = None  # the delivery's ``<stem>-tidslinje.json``


def transcript_path(clip: Path, fmt: str) -> Path:
    return clip.with_name(f"{clip.stem}{TRANSCRIPT_SUFFIX}.{fmt}")


def master_path(clip: Path) -> Path:
    """The clean master beside a clip with burned-in subtitles (``subtitles.master`` in the form)."""
    return clip.with_name(f"{clip.stem}{MASTER_SUFFIX}.mp4")


def timeline_path(clip: Path) -> Path:
    return clip.with_name(f"{clip.stem}{TIMELINE_SUFFIX}.json")


def timeline_record(clip_name: str, timeline: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The delivery's timeline file: the parts as run.json records them, with the clip they describe."""
    return {
        "kind": TIMELINE_KIND,
        "version": 1,
        "clip": clip_name,
        "duration_ms": _end_of(timeline),
        "times": "milliseconds in the clip; a statement's part is its length in the clip",
        "parts": [dict(p) for p in timeline],
    }


def find_delivery_files(clip: Path, form: Form, subtitles: Path | None = None) -> DeliveryFiles:
    """The subtitles (``<stem>.<language>.srt``, else any ``<stem>.*.srt`` or ``<stem>.srt``), the
    transcript JSON (``<stem>-transkription.json``) and the run report (``../run.json``) of a clip, and the
    language the subtitle file is named for (a meeting may be held in another language than the form's)."""
    if subtitles is None:
        stem = glob.escape(clip.stem)
        preferred = clip.with_name(f"{clip.stem}.{form.language}.srt")
        found = sorted(clip.parent.glob(f"{stem}.*.srt")) + sorted(clip.parent.glob(f"{stem}.srt"))
        subtitles = preferred if preferred.is_file() else next((p for p in found if p.is_file()), None)
    transcript = transcript_path(clip, "json")
    timeline = timeline_path(clip)
    run_json = run_record.path_of(clip.parent.parent)
    tag = subtitles.suffixes[-2].lstrip(".") if subtitles is not None and len(subtitles.suffixes) > 1 else ""
    return DeliveryFiles(
        subtitles=subtitles,
        transcript_json=transcript if transcript.is_file() else None,
        run_json=run_json if run_json.is_file() else None,
        timeline_json=timeline if timeline.is_file() else None,
        language=tag if re.fullmatch(r"[a-z]{2,3}", tag) else None,
    )


def _relative(path: Path, folder: Path) -> str:
    try:
        return os.path.relpath(path, folder)
    except ValueError:  # another drive on Windows
        return str(path)


def _companion(path: Path) -> Path:
    return path.with_suffix(".vtt" if subtitle_kind(path.name) == "srt" else ".srt")


def _read_bytes(path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _timeline_from_run(
    run_json: Path, clip: Path, duration_ms: int
) -> tuple[list[Mapping[str, Any]] | None, str]:
    """The run's timeline when run.json is about this clip; otherwise None and why it was not used."""
    try:
        data = run_record.read(run_json)
    except (OSError, run_record.UnreadableRecord) as error:
        return None, getattr(error, "reason", None) or f"cannot be read ({error})"
    name = (data.get("delivery") or {}).get("name")
    if name and name != clip.stem:
        return None, f"describes the clip {name}, not this one"
    return _usable(data.get("timeline"), duration_ms)


def _timeline_from_file(
    path: Path, clip: Path, duration_ms: int
) -> tuple[list[Mapping[str, Any]] | None, str]:
    """The delivery's timeline file when it is about this clip; otherwise None and why it was not used."""
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        return None, f"cannot be read ({error})"
    if not isinstance(data, dict) or data.get("kind") != TIMELINE_KIND:
        return None, "is not a timeline of hearing-pipeline"
    if data.get("clip") != clip.name:
        return None, f"describes the clip {data.get('clip')!r}, not this one"
    return _usable(data.get("parts"), duration_ms)


def _usable(timeline: object, duration_ms: int) -> tuple[list[Mapping[str, Any]] | None, str]:
    """A timeline of parts that ends where the measured clip ends; otherwise None and why not."""
    if not isinstance(timeline, list) or not timeline:
        return None, "has no timeline"
    parts: list[Mapping[str, Any]] = []
    for part in timeline:
        if not (
            isinstance(part, dict)
            and all(isinstance(part.get(k), int) and part[k] >= 0 for k in ("start_ms", "duration_ms"))
            and not isinstance(part.get("start_ms"), bool)
            and not isinstance(part.get("duration_ms"), bool)
        ):
            return None, "has a part without whole milliseconds for its start and length"
        parts.append(part)
    end = _end_of(parts)
    if abs(end - duration_ms) > TIMELINE_TOLERANCE_MS:
        return None, f"describes a clip of {seconds_text(end)}, not the {seconds_text(duration_ms)} measured"
    return parts, ""


def _end_of(timeline: Sequence[Mapping[str, Any]]) -> int:
    return max((int(p["start_ms"]) + int(p["duration_ms"]) for p in timeline), default=0)


def _model_from_run(run_json: Path, clip: Path) -> str | None:
    """The speech model run.json names, as the transcript names it, when run.json is about this clip."""
    from pipeline.engines import model_label

    try:
        data = run_record.read(run_json)
    except (OSError, run_record.UnreadableRecord):
        return None
    name = (data.get("delivery") or {}).get("name")
    model = (data.get("engine") or {}).get("model")
    if (name and name != clip.stem) or not isinstance(model, str) or not model:
        return None
    return model_label(model)
