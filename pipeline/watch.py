"""`hearing watch`: the meeting folder watched while recordings are copied in, each statement made ready
(transcribed, cut, its segments rendered) as soon as its file is complete, so that the delivery is only
the join, the documents and the check away when the last statement has been recorded.

Polling, not file events: it works the same on shared drives and memory cards, where events do not
arrive. A file is taken only when it is complete: not a temporary or hidden name, its size and
modification time unchanged over several polls, and its container whole (an MP4 being written has no
index yet, or boxes that claim more bytes than the file has). A container whose structure shows it whole
(MP4/MOV, a WAV with its size in its header) needs to stay unchanged for less time than one that cannot
show it (MPEG-TS, Matroska, FLAC, MP3), where the waiting is all there is. A file that changes after it
was taken is taken again. What is made goes into the same cache as `hearing run`, which then finds it there.

The pure core (names, sightings, what is settled) is here; ``Watcher`` does the polling.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from pipeline import interrupt, pace

if TYPE_CHECKING:
    from pipeline.engines.base import Engine
    from pipeline.engines.device import DeviceChoice
    from pipeline.report import Finished, RunOptions, RunReport
    from pipeline.steps import Progress, StageRecord

log = logging.getLogger(__name__)

# Names copying tools give a file until it is complete (browsers, rsync, Syncthing, Nextcloud, Office).
TEMPORARY_PREFIXES = (".", "~syncthing~", "~$")
TEMPORARY_SUFFIXES = (".part", ".partial", ".crdownload", ".download", ".opdownload", ".tmp", ".filepart")
POLL_SECONDS = 0.2
SETTLE_POLLS = 2  # unchanged polls in a row (0.4 s) before a file is looked at: enough for a whole MP4
UNPROVEN_POLLS = 8  # (1.6 s) for a file whose container cannot show whether it is whole
GIVE_UP_POLLS = 150  # a settled file whose container stays broken this long (30 s) is taken, to be rejected


def is_temporary(relpath: str) -> bool:
    """A name that is not (yet) a recording: hidden, or a copying tool's name for a file in transit."""
    path = PurePosixPath(relpath)
    if any(part.startswith(".") for part in path.parts):
        return True
    name = path.name.lower()
    return name.startswith(TEMPORARY_PREFIXES) or name.endswith(TEMPORARY_SUFFIXES)


@dataclass(frozen=True)
class Sighting:
    """A file as one poll saw it."""

    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Watched:
    sighting: Sighting
    unchanged: int = 0  # polls in a row that saw the same size and modification time


def observe(before: Mapping[str, Watched], now: Mapping[str, Sighting]) -> dict[str, Watched]:
    """The files of this poll, each counting how long it has stayed as it is; gone files are dropped."""
    seen: dict[str, Watched] = {}
    for relpath, sighting in now.items():
        earlier = before.get(relpath)
        if earlier is not None and earlier.sighting == sighting:
            seen[relpath] = replace(earlier, unchanged=earlier.unchanged + 1)
        else:
            seen[relpath] = Watched(sighting)
    return seen


def settled(
    watched: Mapping[str, Watched], taken: Mapping[str, Sighting], polls: int = SETTLE_POLLS
) -> list[str]:
    """Files unchanged for ``polls`` polls that are new, or changed since they were taken."""
    return sorted(
        relpath for relpath, w in watched.items() if w.unchanged >= polls and taken.get(relpath) != w.sighting
    )


def mp4_incomplete(boxes: Iterable[tuple[str, int]], size: int) -> str | None:
    """Why an MP4/MOV file's top-level boxes show it is not whole yet, or None."""
    listed = list(boxes)
    total = sum(box_size for _, box_size in listed)
    if total != size:
        return f"its boxes claim {total} bytes, the file has {size}"
    if not any(kind == "moov" for kind, _ in listed):
        return "no index (moov) yet"
    return None


def wav_declared_bytes(header: bytes) -> int | None:
    """The file size a WAV file's RIFF header gives, or None where it gives none: not a RIFF WAVE
    header, RF64 (its size is elsewhere), or a streaming writer's 0 or 0xFFFFFFFF."""
    if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
        return None
    (declared,) = struct.unpack("<I", header[4:8])
    return None if declared in (0, 0xFFFFFFFF) else declared + 8


def wav_incomplete(header: bytes, size: int) -> str | None:
    """Why a WAV file's RIFF header shows it is not whole yet, or None (also where it says nothing)."""
    declared = wav_declared_bytes(header)
    if declared is not None and declared > size:
        return f"its header claims {declared} bytes, the file has {size}"
    return None


MP4_SUFFIXES = (".mp4", ".m4a", ".mov", ".m4v", ".3gp", ".3g2")


@dataclass(frozen=True)
class Verdict:
    """What a settled file's container says of it."""

    problem: str | None  # why it is not whole yet
    proven: bool = False  # its structure shows it whole, beyond opening with a duration


def container_verdict(path: Path) -> Verdict:
    """Whether a settled file looks whole: the structure of MP4/MOV and WAV, and for every file that it
    opens with the duration it claims."""
    from pipeline import media
    from pipeline.errors import RecordingRejected
    from pipeline.files import not_a_file

    if not_a_file(path):
        # Nothing to wait for and never to be opened (a named pipe would wait for ever): ingest rejects
        # it with its reason.
        return Verdict(None, proven=True)
    size = path.stat().st_size
    suffix = path.suffix.lower()
    proven = False
    if suffix in MP4_SUFFIXES:
        problem = mp4_incomplete(media.mp4_boxes(path), size)
        if problem:
            return Verdict(problem)
        proven = True
    elif suffix == ".wav":
        with path.open("rb") as handle:
            header = handle.read(12)
        problem = wav_incomplete(header, size)
        if problem:
            return Verdict(problem)
        proven = wav_declared_bytes(header) is not None
    try:
        probe = media.probe(path)
    except RecordingRejected as rejected:
        return Verdict(rejected.reason)
    if not probe.duration_ms:
        return Verdict("no duration yet")
    return Verdict(None, proven)


def sightings(meeting_dir: Path) -> dict[str, Sighting]:
    """Every media file ingest would find below the folder, but a temporary name, as it is now."""
    from pipeline.stages.ingest import walk

    found: dict[str, Sighting] = {}
    for file in walk(meeting_dir):
        if is_temporary(file.relpath):
            continue
        try:
            stat = (meeting_dir / file.relpath).stat()
        except OSError:
            continue  # renamed or removed between listing and looking, or a broken link
        found[file.relpath] = Sighting(stat.st_size, stat.st_mtime_ns)
    return found


# ------------------------------------------------------------------------------------------------ I/O


@dataclass(frozen=True)
class Status:
    """The live status line's facts."""

    ready: int
    waiting: tuple[str, ...]  # files seen, not complete yet
    rejections: tuple[tuple[str, str], ...]  # (file, reason)
    left_out: tuple[tuple[str, str], ...]  # (file, reason): withheld, such as without consent
    clip_ms: int
    max_clip_ms: int

    def line(self) -> str:
        from pipeline.timefmt import minutes_seconds as clock

        parts = [f"{self.ready} statement(s) ready"]
        if self.waiting:
            parts.append(f"{len(self.waiting)} arriving")
        if self.rejections:
            parts.append(f"{len(self.rejections)} rejected")
        if self.left_out:
            parts.append(f"{len(self.left_out)} left out")
        over = " - LONGER THAN AGREED" if self.clip_ms > self.max_clip_ms else ""
        parts.append(f"clip {clock(self.clip_ms)} of at most {clock(self.max_clip_ms)}{over}")
        return ", ".join(parts)


class Watcher:
    """Polls the meeting folder and makes each complete recording's statement ready; ``deliver`` then
    makes the delivery with a plain run, which finds everything else in the cache."""

    def __init__(self, options: RunOptions, progress: Progress | None = None) -> None:
        self.options = options
        self.progress = progress
        self.watched: dict[str, Watched] = {}
        self.taken: dict[str, Sighting] = {}
        self.engine: Engine | None = None
        self.status: Status | None = None
        self._verdicts: dict[str, tuple[Sighting, Verdict]] = {}  # one look at a container per state
        # The pace (pipeline.pace): this machine's earlier runs with the model, what this watch measured
        # (a sample per time files were made ready), each statement's length, and the estimate last told.
        self.prior: float | None = None
        self.made: list[pace.Made] = []
        self.lengths: list[float] = []
        self.told: float | None = None
        self._device: DeviceChoice | None = None

    def choose_model(self) -> None:
        """The model the whole watch transcribes with, chosen and checked before it watches (as a run
        does before any work): every statement is heard by the same model, whatever is installed meanwhile."""
        from pipeline import engines
        from pipeline.config import load_form
        from pipeline.engines import device

        form, _ = load_form(self.options.form)
        model = engines.model_for_run(self.options.engine, self.options.model, form.speech.model)
        engines.check_usable(self.options.engine, model)
        # The device too (a bad HEARING_DEVICE, cuda asked where there is none), and asked once.
        asked = device.asked_device(self.options.device, os.environ)
        self._device = device.for_engine(self.options.engine, asked)
        self.options = replace(self.options, model=model, device=asked)
        self.prior = pace.prior(self.pace_key())

    def pace_key(self) -> str:
        """This watch's set-up in the speed record (after ``choose_model``)."""
        from pipeline import engines

        assert self._device is not None
        engine_id, model_id = engines.cache_identity(self.options.engine, self.options.model, self._device)
        return pace.record_key(engine_id, model_id, self._device, pace.cores())

    def offer(self) -> pace.Offer:
        """The faster model fit for Danish for the draft, and this watch's model for the run after."""
        from pipeline.engines import catalogue, download, embedded

        faster = catalogue.faster_for_draft(self.options.model, self.options.engine)
        installed = {m.name for m in download.installed()} | (
            {"base"} if embedded.embedded_available() else set()
        )
        better = self.options.model or "base"
        return pace.Offer(faster, faster is not None and faster.name in installed, better)

    def start_line(self) -> str | None:
        """What the speed record says before any statement, where this model cannot keep up here."""
        from pipeline.engines import model_label

        if self.prior is None or pace.keeps_up(self.prior):
            return None
        self.told = self.prior
        label = model_label(self.options.model)
        return pace.start_line(label, pace.cores(), self.prior, self.options, self.offer())

    def pace_line(self) -> str | None:
        """Once what this watch measured says it falls behind (and again where it gets clearly worse)."""
        rate = pace.estimate(self.made, self.prior)
        if rate is None or not pace.should_tell(rate, self.told):
            return None
        self.told = rate
        here = sightings(self.options.meeting_dir)
        queued = sum(1 for relpath, seen in here.items() if self.taken.get(relpath) != seen)
        typical = pace.typical_recorded_s(self.lengths)
        wait = None if typical is None else pace.delivery_wait_s(rate, [typical] * (queued + 1))
        return pace.behind_line(rate, queued, wait, self.options, self.offer())

    def pace_json(self) -> dict[str, object]:
        """The pace for ``--json``."""
        rate = pace.estimate(self.made, self.prior)
        return {
            "work_per_recorded_second": None if rate is None else round(rate, 3),
            "keeps_up": None if rate is None else pace.keeps_up(rate),
            "from_earlier_runs": None if self.prior is None else round(self.prior, 3),
            "measured": len(self.made),
        }

    def look(self) -> list[tuple[str, int, bool]]:
        """One look at the folder: the files complete since the last look, as (file, bytes, taken
        before)."""
        meeting_dir = self.options.meeting_dir
        self.watched = observe(self.watched, sightings(meeting_dir))
        newly: list[tuple[str, int, bool]] = []
        for relpath in settled(self.watched, self.taken):
            watched = self.watched[relpath]
            verdict = self._verdict(relpath, watched.sighting)
            if verdict.problem is None and not verdict.proven and watched.unchanged < UNPROVEN_POLLS:
                continue
            if verdict.problem is not None and watched.unchanged < GIVE_UP_POLLS:
                continue
            newly.append((relpath, watched.sighting.size, relpath in self.taken))
            self.taken[relpath] = watched.sighting
        return newly

    def _verdict(self, relpath: str, sighting: Sighting) -> Verdict:
        earlier = self._verdicts.get(relpath)
        if earlier is not None and earlier[0] == sighting:
            return earlier[1]
        verdict = container_verdict(self.options.meeting_dir / relpath)
        if verdict.problem:
            log.debug("%s: not complete yet (%s)", relpath, verdict.problem)
        self._verdicts[relpath] = (sighting, verdict)
        return verdict

    def arriving(self) -> list[str]:
        """Files seen that are not complete yet (or changed since they were taken)."""
        return sorted(r for r, w in self.watched.items() if self.taken.get(r) != w.sighting)

    def make_ready(self) -> Status:
        """Every statement of the files taken so far heard, cut and rendered (what is in the cache
        already costs nothing), and the status that results."""
        from pipeline.runner import Runner

        runner = Runner(self.options, self.progress, self.engine)
        started = time.monotonic()
        readiness = runner.prepare(set(self.taken))
        self._measure(runner.steps.records, runner.done, time.monotonic() - started)
        self.engine = runner.loaded_engine()
        self.status = Status(
            ready=len(readiness.ready),
            waiting=tuple(self.arriving()),
            rejections=tuple((r.relpath, r.reason) for r in readiness.rejections if r.kind == "rejected"),
            left_out=tuple((r.relpath, r.reason) for r in readiness.rejections if r.kind != "rejected"),
            clip_ms=readiness.clip_ms,
            max_clip_ms=readiness.max_clip_ms,
        )
        return self.status

    def _measure(self, records: Iterable[StageRecord], done: Finished, seconds: float) -> None:
        """The statements transcribed this time (not found in the cache) and how long making them ready
        took, as one sample: they were made ready together. The time includes the model's loading where
        this was the first time (``load`` loads it before the first statement to avoid that)."""
        lengths = {s.id: s.probe.duration_ms / 1000 for s in (done.found.statements if done.found else ())}
        heard = [
            lengths[r.statement]
            for r in records
            if r.stage == "transcribe" and not r.cached and r.statement in lengths
        ]
        if heard:
            self.made.append(pace.Made(sum(heard), seconds))
            self.lengths += heard

    def load(self) -> None:
        """The model loaded before the first recording arrives: the first statement does not wait for it,
        and the time it takes is not taken for the pace of transcribing. Where the speed record says
        statements recorded back to back will pile up here, it is built to hear two at once (where the
        model pays for it, ``engines.load_engine``): two files that land together are then heard side by
        side without building the model again between recordings."""
        from pipeline.engines import load_engine

        if self.engine is None and self._device is not None:
            piles_up = self.prior is not None and not pace.keeps_up(self.prior)
            hearing = (0, 0) if piles_up else ()  # two statements, their lengths not known yet
            self.engine = load_engine(self.options.engine, self.options.model, self._device, hearing)

    def watch(
        self,
        enter: threading.Event,
        *,
        on_taken: Callable[[str, int, bool], None],
        on_ready: Callable[[Status], None],
        on_waiting: Callable[[list[str]], None],
        on_pace: Callable[[str], None] = lambda line: None,
    ) -> None:
        """Look every POLL_SECONDS and make what arrived ready, until ``enter`` is set and nothing is
        still arriving: a file still being copied is waited for, never delivered half. Where the pace
        says statements recorded back to back will pile up, ``on_pace`` is told so (``pipeline.pace``)."""
        if self._device is None:
            self.choose_model()
        line = self.start_line()
        if line:
            on_pace(line)
        self.load()
        told = False
        while not enter.is_set() or self.arriving():
            if enter.is_set() and not told:
                on_waiting(self.arriving())
                told = True
            taken = self.look()
            for relpath, size, again in taken:
                on_taken(relpath, size, again)
            if taken:
                on_ready(self.make_ready())
                line = self.pace_line()
                if line:
                    on_pace(line)
            interrupt.check()
            if enter.is_set():
                time.sleep(POLL_SECONDS)
            else:
                enter.wait(POLL_SECONDS)

    def deliver(self) -> RunReport:
        """The delivery, as `hearing run` makes it."""
        from pipeline.runner import Runner

        return Runner(self.options, self.progress, self.engine).run()
