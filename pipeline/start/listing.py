"""The recordings of a meeting folder as the page of `hearing start` lists them: found by the same walk
and probe a run makes (``ingest.run``, with the run's probe and hash caches in OUT/work), each with
what ingest says about it, a still from it and a preview to play (made with ffmpeg into OUT/work, never
into the meeting folder)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from pipeline.cache import WorkCache
from pipeline.config import DefaultConsent, Form, Meeting
from pipeline.models import MediaProbe, Statement
from pipeline.review.previews import Previews

STILL_VERSION = 1
STILL_HEIGHT = 180


@dataclass(frozen=True)
class Recording:
    """One file the walk found: its name, its probe and why ingest would leave it out (English, as
    ingest says it), and the statement a run would make of it (for its preview)."""

    relpath: str
    name_ok: bool
    probe: MediaProbe | None
    problem: str | None
    statement: Statement | None

    @property
    def duration_ms(self) -> int | None:
        return self.probe.duration_ms if self.probe else None

    @property
    def has_video(self) -> bool:
        return self.probe is not None and self.probe.video is not None


def find(meeting_dir: Path, out_dir: Path, form: Form) -> list[Recording]:
    """Every recording in the folder, in file-name order, as a run's ingest finds it. Judged without
    meeting.yaml and with every consent given: what the page shows is what the file itself allows."""
    from pipeline.stages import ingest

    work = WorkCache.of(out_dir)
    hashes = work.hashes()
    allowing = form.model_copy(update={"default_consent": DefaultConsent(committee=True, archive=True)})
    found = ingest.run(meeting_dir, Meeting(), None, allowing, hashes, probe_cache=work.probes)
    hashes.save()
    made = {s.recording.relpath: s for s in found.statements}
    why = {r.relpath: r.reason for r in found.rejections}
    names = sorted({*made, *why}, key=ingest.natural_key)
    ok = {f.relpath: f.name_ok for f in ingest.walk(meeting_dir)}
    recordings = []
    for relpath in names:
        probe = found.probes.get(relpath)
        recordings.append(
            Recording(
                relpath,
                ok.get(relpath, False),
                probe if isinstance(probe, MediaProbe) else None,
                why.get(relpath),
                made.get(relpath),
            )
        )
    return recordings


class Media:
    """The stills and previews of one meeting's recordings, each made once by one request at a time."""

    def __init__(self, meeting_dir: Path, out_dir: Path) -> None:
        self.meeting_dir = meeting_dir
        self.out_dir = out_dir
        self.work = WorkCache.of(out_dir)
        self.previews = Previews(out_dir, meeting_dir, self.work, threading.Lock())

    def still(self, statement: Statement) -> Path:
        """A picture from a third into the recording (at most a few seconds in), 180 lines high."""
        from pipeline import cache, media

        video = statement.probe.video
        assert video is not None
        at = min(3.0, statement.probe.duration_ms / 3000)
        key = cache.make_key(
            "start-still",
            STILL_VERSION,
            {"recording": statement.recording.sha256, "video": video.index, "at": round(at, 3)},
            tools={"ffmpeg": media.ffmpeg_version()},
        )

        def make(temp: Path) -> None:
            args = [
                *media.GLOBAL_ARGS,
                "-ss", f"{at:.3f}",
                "-i", media.input_path(self.meeting_dir / statement.recording.relpath),
                "-map", f"0:{video.index}",
                "-frames:v", "1",
                "-vf", f"scale=-2:{STILL_HEIGHT}",
                "-q:v", "5",
                "-f", "mjpeg",
                media.output_path(temp),
            ]  # fmt: skip
            media.run_ffmpeg(args, what=f"take a still from {statement.recording.relpath}")

        return self.previews.made_once(key, self.work.still(key), make)

    def preview(self, statement: Statement) -> Path:
        """The recording as a small MP4 every browser plays: the review page's own preview."""
        return self.previews.of(statement)
