"""Whether `hearing watch` keeps up with statements recorded back to back, and what it says where it
does not: the work a statement takes per second of recording, estimated from what a watch measures
and from this machine's earlier runs with the same model (its speed record), and what the delivery
will then wait after the last recording.

The pure core (estimate, verdict, wait, lines) is first; the speed record in the user's cache, written
by every run and watch after transcribing and read by watch at its start, is below it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import shlex
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.engines import ModelKey
    from pipeline.engines.catalogue import CatalogueEntry
    from pipeline.engines.device import DeviceChoice
    from pipeline.report import Finished, RunOptions
    from pipeline.steps import StageRecord

log = logging.getLogger(__name__)

# A recording shorter than this measures the fixed costs of a statement (probing, hashing, its card),
# not the pace of its speech: it is left out of every estimate (also a zero-length one).
MIN_RECORDED_S = 1.0
# Keeping up means each statement is ready before the next one, recorded right after it, has landed.
# At exactly 1 second of work per second recorded any bad luck (a statement dense with words, the laptop
# busy with something else, the seconds a file takes to be copied in and seen complete) is never made up,
# because there is no idle time left to catch up in: the queue then only grows. A tenth kept free
# absorbs that.
KEEP_UP_AT_MOST = 0.9
# Told again only when the estimate is clearly worse than when last told: a quarter more work.
CLEARLY_WORSE = 1.25
# This machine's earlier runs with the same model count as this many measured statements: a watch's first
# statement alone does not overrule them, its third does.
PRIOR_WEIGHT = 2
# The speed record keeps this many statements per model and machine, the most recent.
SAMPLES_KEPT = 50


@dataclass(frozen=True)
class Made:
    """One statement made ready (or transcribed): how long its recording is and the work it took."""

    recorded_s: float
    work_s: float


def _usable(made: Made) -> bool:
    return (
        math.isfinite(made.recorded_s)
        and math.isfinite(made.work_s)
        and made.recorded_s >= MIN_RECORDED_S
        and made.work_s >= 0
    )


def estimate(made: Iterable[Made], prior: float | None = None) -> float | None:
    """Seconds of work per second of recording: the median of each statement's own (the prior counted as
    PRIOR_WEIGHT of them), so that one statement far off (the laptop asleep, a hiccup of the disk) moves
    it little. None where there is nothing to go by."""
    ratios = [m.work_s / m.recorded_s for m in made if _usable(m)]
    if prior is not None and math.isfinite(prior) and prior >= 0:
        ratios += [prior] * PRIOR_WEIGHT
    return statistics.median(ratios) if ratios else None


def keeps_up(rate: float) -> bool:
    """Whether statements recorded back to back are each ready before the next has landed."""
    return rate <= KEEP_UP_AT_MOST


def typical_recorded_s(lengths_s: Iterable[float]) -> float | None:
    """The length of a typical statement so far (the median of those long enough to count), or None."""
    lengths = [s for s in lengths_s if math.isfinite(s) and s >= MIN_RECORDED_S]
    return statistics.median(lengths) if lengths else None


def delivery_wait_s(rate: float, backlog_recorded_s: Iterable[float]) -> float:
    """How long the delivery waits after the last recording has landed: the work of everything not ready
    yet (the files queued and that last one), one after the other; the join and the documents after it
    are not counted."""
    return rate * sum(s for s in backlog_recorded_s if math.isfinite(s) and s > 0)


def should_tell(rate: float | None, told: float | None) -> bool:
    """Whether to say now that watch falls behind: once, and again only where the estimate is clearly
    worse than the one last told."""
    if rate is None or keeps_up(rate):
        return False
    return told is None or rate >= told * CLEARLY_WORSE


def per_minute(rate: float) -> str:
    """``about 1 min 40 s of work per minute recorded``."""
    from pipeline.timefmt import duration_words

    return f"about {duration_words(round(rate * 60_000))} of work per minute recorded"


@dataclass(frozen=True)
class Offer:
    """The two models of the two-model way: the faster one for the draft now, the better one after."""

    faster: CatalogueEntry | None
    faster_installed: bool
    better: str  # as given to --model


def commands(options: RunOptions, offer: Offer) -> tuple[str, str] | None:
    """`hearing watch ... --model FASTER` now and `hearing run ... --model BETTER` afterwards, with the
    meeting folder, the output folder (so the run finds what the watch made) and every other setting as
    this watch was given them; None where there is no faster model to offer."""
    if offer.faster is None:
        return None
    # A folder named like an option (``-x``) is given as ./-x, so the command line does not read it so.
    folder = str(options.meeting_dir)
    same = [f"./{folder}" if folder.startswith("-") else folder]
    for flag, value, default in (
        ("--out", options.out_dir, None),
        ("--form", options.form, "default"),
        ("--engine", options.engine, "faster-whisper"),
        ("--language", options.language, None),
        ("--device", options.device, "auto"),
    ):
        if value is not None and value != default:
            same += [flag, str(value)]
    watch = shlex.join(["hearing", "watch", *same, "--model", offer.faster.name])
    run = shlex.join(["hearing", "run", *same, "--model", offer.better])
    return watch, run


def offer_text(options: RunOptions, offer: Offer) -> str:
    """What to do about it, in one sentence or two."""
    both = commands(options, offer)
    if both is None or offer.faster is None:
        return (
            "No faster model fit for Danish is in the catalogue: the delivery comes later than the last "
            "recording by the work still queued (base is never offered: it gets about every second Danish "
            "word wrong)."
        )
    watch, run = both
    get = "" if offer.faster_installed else f" (get it first: `{offer.faster.get_command}`)"
    return (
        f"For the closing presentation's draft, watch with the faster {offer.faster.name}{get}: `{watch}`; "
        f"make the final delivery the day after with the better model: `{run}` (the cache keeps both, and "
        "that run transcribes again only with the better model)."
    )


def start_line(model: str, cores: int, rate: float, options: RunOptions, offer: Offer) -> str:
    """At watch's start, where this machine's earlier runs say the model cannot keep up."""
    return (
        f"pace: {model} has taken {per_minute(rate)} on this computer ({cores} cores) in earlier runs: "
        "statements recorded one after another will pile up. " + offer_text(options, offer)
    )


def behind_line(rate: float, queued: int, wait_s: float | None, options: RunOptions, offer: Offer) -> str:
    """Once the measured pace says watch falls behind."""
    from pipeline.timefmt import duration_words

    wait = ""
    if wait_s is not None:
        wait = (
            f"; with {queued} more queued, the delivery would wait about "
            f"{duration_words(round(wait_s * 1000))} after the last recording"
        )
    return (
        f"pace: making each statement ready takes {per_minute(rate)}: watch falls behind statements "
        f"recorded one after another{wait}. " + offer_text(options, offer)
    )


# ----------------------------------------------------------------------------------- speed record

RECORD_KIND = "hearing-pipeline speed record"
RECORD_VERSION = 1
ENTRIES_KEPT = 100  # models times machines set-ups: far more than anyone has


def cores() -> int:
    """The cores this process may run on (a container or taskset may allow fewer than the machine has)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def record_key(engine_id: str, model_id: str, device: DeviceChoice, cores: int) -> str:
    """What decides the speed: the engine with its packages' versions, the model as the cache keys name
    it (by its content), where it runs and in what precision, and how many cores it has."""
    return f"{engine_id} | {model_id} | {device.device} {device.compute_type} | {cores} cores"


def samples_of(entry: Any) -> list[Made]:
    """The statements an entry of the record holds; anything malformed in it is passed over."""
    raw = entry.get("samples") if isinstance(entry, Mapping) else None
    made: list[Made] = []
    for sample in raw if isinstance(raw, list) else []:
        if (
            isinstance(sample, list)
            and len(sample) == 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in sample)
        ):
            one = Made(float(sample[0]), float(sample[1]))
            if _usable(one):
                made.append(one)
    return made


def entries_of(data: Any) -> dict[str, Any]:
    """The entries of the record's content; none from a foreign or damaged file."""
    if not isinstance(data, dict) or data.get("kind") != RECORD_KIND or data.get("version") != RECORD_VERSION:
        return {}
    entries = data.get("entries")
    return {k: v for k, v in entries.items() if isinstance(v, dict)} if isinstance(entries, dict) else {}


def with_samples(
    entries: Mapping[str, Any], key: str, label: str, new: Sequence[Made], now: str
) -> dict[str, Any]:
    """The record's entries with ``new`` added under ``key`` (the most recent SAMPLES_KEPT kept), and
    only the ENTRIES_KEPT most recently updated entries."""
    samples = [*samples_of(entries.get(key)), *(m for m in new if _usable(m))][-SAMPLES_KEPT:]
    rate = estimate(samples)
    updated = dict(entries)
    updated[key] = {
        "model": label,
        "transcribe_per_recorded_second": None if rate is None else round(rate, 4),
        "samples": [[round(m.recorded_s, 3), round(m.work_s, 3)] for m in samples],
        "updated": now,
    }
    newest = sorted(updated, key=lambda k: str(updated[k].get("updated", "")), reverse=True)
    return {k: updated[k] for k in newest[:ENTRIES_KEPT]}


def transcriptions(records: Iterable[StageRecord], lengths_ms: Mapping[str, int], loaded: bool) -> list[Made]:
    """The transcriptions a run made (not found in the cache), each with its recording's length.
    Statements heard side by side are one sample: their recordings together, and the time from the
    first one's start to the last one's end (each alone took longer than its share of the engine). Where
    the run loaded the model, the transcription that waited for it is no measure of transcription and is
    left out: the one the model's loading ran inside, else (no such stage) the first."""
    heard = [
        r
        for r in records
        if r.stage == "transcribe" and not r.cached and r.statement is not None and r.statement in lengths_ms
    ]
    if loaded:
        loads = [r.at for r in records if r.stage == "model"]
        inside = [r for r in heard if any(r.at <= at < r.at + r.seconds for at in loads)]
        waited = inside if loads else heard[:1]
        heard = [r for r in heard if all(r is not w for w in waited)]
    made: list[Made] = []
    reached = -math.inf
    for r in sorted(heard, key=lambda r: r.at):
        recorded = lengths_ms[r.statement or ""] / 1000
        if made and r.at < reached:
            until = max(reached, r.at + r.seconds)
            made[-1] = Made(made[-1].recorded_s + recorded, made[-1].work_s + until - reached)
            reached = until
        else:
            made.append(Made(recorded, r.seconds))
            reached = r.at + r.seconds
    return made


def record_path() -> Path:
    from pipeline.files import cache_root

    return cache_root() / "speed.json"


def read_entries(path: Path | None = None) -> dict[str, Any]:
    """The record's entries; none where it is missing, damaged or not ours (never fatal)."""
    try:
        return entries_of(json.loads((path or record_path()).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


def prior(key: str, path: Path | None = None) -> float | None:
    """Seconds of transcription per second recorded on this machine with this set-up, or None."""
    return estimate(samples_of(read_entries(path).get(key)))


def remember(
    identity: tuple[str, ModelKey], device: DeviceChoice, records: Sequence[StageRecord], done: Finished
) -> None:
    """Add what a run or a watch's making ready transcribed to the speed record (written whole and
    atomically; a failure to write it is logged, never fatal)."""
    lengths = {s.id: s.probe.duration_ms for s in (done.found.statements if done.found else ())}
    new = transcriptions(records, lengths, loaded=done.engine is not None)
    if not any(_usable(m) for m in new):
        return
    engine_id, model = identity
    label = Path(model.path).name if model.path else model.id
    store(record_path(), record_key(engine_id, model.id, device, cores()), label, new)


def store(path: Path, key: str, label: str, new: Sequence[Made]) -> None:
    """``new`` added to the record at ``path``, written whole and atomically; a record that cannot be
    written is logged, never fatal: it only makes a later warning come later."""
    from pipeline.files import write_json

    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    try:
        entries = with_samples(read_entries(path), key, label, new, now)
        write_json(path, {"kind": RECORD_KIND, "version": RECORD_VERSION, "entries": entries})
    except (OSError, ValueError, TypeError) as error:
        log.debug("the speed record %s was not written (%s)", path, error)
