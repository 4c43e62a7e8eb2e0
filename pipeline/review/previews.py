"""What the page plays: each statement's recording as a small MP4 every browser plays (made once, kept
in the work folder's cache, never outside OUT), and the clip last made."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from pipeline.cache import WorkCache
from pipeline.models import Statement
from pipeline.review.guards import Outside, inside


class Previews:
    """The previews of one output folder's statements (and what else a page shows from the cache), each
    made by one request at a time."""

    def __init__(self, out_dir: Path, meeting_dir: Path, work: WorkCache, lock: threading.Lock) -> None:
        self.out_dir = out_dir
        self.meeting_dir = meeting_dir
        self.work = work
        self._lock = lock  # the review's, which guards the table of locks below
        self._making: dict[str, threading.Lock] = {}

    def of(self, s: Statement) -> Path:
        """The statement's recording as a small MP4 every browser plays, made once and kept in the cache."""
        from pipeline import cache, media
        from pipeline.stages import render

        key = cache.make_key(
            "review-preview",
            render.PREVIEW_VERSION,
            {
                "recording": s.recording.sha256,
                "video": s.probe.video.index if s.probe.video else None,
                "audio": s.audio_stream,
            },
            tools={"ffmpeg": media.ffmpeg_version()},
        )
        source = self.meeting_dir / s.recording.relpath

        def make(temp: Path) -> None:
            media.run_ffmpeg(
                render.preview_args(source, s, temp), what=f"make a preview of {s.recording.relpath}"
            )

        return self.made_once(key, self.work.review_video(key), make)

    def made_once(self, key: str, target: Path, make: Callable[[Path], None]) -> Path:
        """``target`` in the work cache, made by ``make`` (given the file to write) once, by one request
        at a time, complete or not at all; never a path that leads out of OUT."""
        from pipeline.files import atomic_path

        if inside(target, self.out_dir) is None:  # work/review, or the file, a link out of OUT
            raise Outside(target)
        with self._lock:
            lock = self._making.setdefault(key, threading.Lock())
        with lock:
            if not target.exists():
                with atomic_path(target) as temp:
                    make(temp)
        return target


def last_clip(out_dir: Path) -> Path | None:
    """The clip last made: the delivery's, else the draft's."""
    from pipeline.stages.check.files import master_path

    for folder in ("delivery", "draft"):
        videos = set((out_dir / folder).glob("*.mp4"))
        # The clip, not the clean master beside it: the clip shows the text the page is about.
        found = sorted(videos - {master_path(p) for p in videos})
        if found:
            return found[0]
    return None
