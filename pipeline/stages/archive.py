"""Archive: the raw recordings as received, in a BagIt 1.0 bag with their metadata and provenance.

``OUT/archive`` is what archivists keep for years, so every step is there to make it provable:

- Each recording is copied byte for byte (never moved, never re-encoded) to
  ``data/recordings/<its path in the meeting folder>``. SHA-512 and SHA-256 are computed once, from the
  bytes as they stream through the copy, and the SHA-256 is compared with the one ingest computed when
  the run began (a recording that changed in between is not archived under an old checksum).
- The bag is written with the Library of Congress ``bagit`` package, but not with ``bagit.make_bag``:
  that moves the files it bags, reads every payload byte a second time to hash it and writes
  ``BagIt-Version: 0.97``. Here ``bagit.txt`` (1.0) and the payload manifests are written from the
  digests already computed; ``bagit.Bag.save`` writes ``bag-info.txt`` and the tag manifests, and
  ``bagit.Bag.validate`` (completeness and sizes; the metadata files hashed again; the recordings'
  digests are the ones computed from their bytes on the way) decides whether the new bag may replace the
  old one. ``hearing verify`` reads every byte back and checks every checksum.
- The bag is built in ``archive-staging-*`` in the output folder's ``work`` and swapped into place, so
  ``OUT/archive`` is always a complete bag: the old one or the new one.
- A re-run with the same recordings, meeting.yaml and withheld set leaves the bag alone. When only the
  provenance has something new (a transcription or a clip made later), the bag is remade around hard
  links to the recordings already in it: nothing is copied or hashed again, and the provenance keeps
  every earlier event.

The pure core (events, agents, the provenance document, bag-info) works on data; ``build_archive`` and
``verify_archive`` do the I/O.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import errno
import getpass
import hashlib
import json
import logging
import os
import shlex
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import bagit

from pipeline import __version__
from pipeline.errors import PipelineError
from pipeline.files import fsync_path, open_regular, recover_folder, replace_folder
from pipeline.models import MediaProbe, Recording, Statement
from pipeline.stages.render import SEGMENT_SUFFIX

if TYPE_CHECKING:
    from pipeline.config import Form, Meeting
    from pipeline.engines.base import ModelInfo
    from pipeline.steps import StageRecord

log = logging.getLogger(__name__)

BAGIT_VERSION = "1.0"
# SHA-512 is RFC 8493's default; SHA-256 is what the rest of the pipeline (run.json, SHA256SUMS) uses.
ALGORITHMS = ("sha512", "sha256")
RECORDINGS = "data/recordings"
METADATA = "data/metadata"
MEETING_FILE = f"{METADATA}/meeting.yaml"
TECHNICAL = f"{METADATA}/technical"
WITHHELD_FILE = f"{METADATA}/withheld.json"
PROVENANCE_FILE = f"{METADATA}/provenance.json"
PROVENANCE_VERSION = 1
ARCHIVE_FOLDER = "archive"
STAGING_PREFIX = "archive-staging-"
ASIDE_PREFIX = "archive-old-"
# Big enough that the per-chunk overhead vanishes, small enough that memory stays flat on any file.
COPY_CHUNK = 4 << 20

PIPELINE = "hearing-pipeline"
BAGIT = "bagit-python"
PROBER = "PyAV"
UNKNOWN_ORGANISER = "unknown (meeting.yaml names no organiser)"

# PREMIS 3 event types (id.loc.gov/vocabulary/preservation/eventType), as docs/standards.md lists them.
INGESTION = "ingestion"
DIGEST = "message digest calculation"
FORMAT_IDENTIFICATION = "format identification"
VALIDATION = "validation"
TRANSCRIPTION = "transcription"
CREATION = "creation"
FIXITY_CHECK = "fixity check"
ARCHIVE_EVENT_TYPES = (INGESTION, DIGEST, FORMAT_IDENTIFICATION, VALIDATION, FIXITY_CHECK)

SUCCESS = "success"
FAILURE = "failure"


class ArchiveError(PipelineError):
    """The archive could not be built; the previous one (if any) is still in place, unchanged."""


# ------------------------------------------------------------------------------------------ pure core


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Software:
    """A program (or a speech model) that acted on the recordings: a PREMIS software agent."""

    name: str
    version: str
    role: str = "program"  # "program", "speech engine", "speech model"
    checksum: str | None = None  # SHA-256 of a model's weights, where known

    @property
    def agent_id(self) -> str:
        suffix = f"#sha256:{self.checksum[:16]}" if self.checksum else ""
        return f"software:{self.name}@{self.version}{suffix}"


def model_software(model: ModelInfo) -> Software:
    """The speech model as an agent: its checksum, not a version number, says which weights were used."""
    return Software(model.name, model.source, role="speech model", checksum=model.sha256)


@dataclass(frozen=True)
class ArchiveInfo:
    """What the bag says about the meeting, who ran the pipeline and with which programs."""

    organiser: str | None
    title: str
    meeting_date: dt.date | None
    committee: str | None
    operator: str  # the person who ran the pipeline (their user name on the computer)
    software: tuple[Software, ...] = ()

    def program(self, name: str) -> Software:
        found = next((s for s in self.software if s.name == name), None)
        if found:
            return found
        return Software(name, __version__ if name == PIPELINE else "unknown")


@dataclass(frozen=True)
class Link:
    """A file an event read (source) or made (outcome).

    ``place`` is ``recording`` (a path in the meeting folder, written as its path in the bag when the
    recording is archived), ``meeting folder``, ``bag`` or ``output folder`` (a path inside OUT).
    """

    place: str
    path: str

    @classmethod
    def recording(cls, relpath: str) -> Link:
        return cls("recording", relpath)

    @classmethod
    def output(cls, path: str) -> Link:
        return cls("output folder", path)


@dataclass(frozen=True)
class Event:
    """One PREMIS event: what was done to which files, by which program, when, with what result."""

    type: str
    time: str  # UTC, ISO 8601 ("2026-11-21T09:14:03Z")
    program: Software
    command: str
    outcome: str = SUCCESS
    note: str = ""
    sources: tuple[Link, ...] = ()
    outcomes: tuple[Link, ...] = ()
    uses: tuple[Software, ...] = ()  # further software the program relied on (the speech model)
    identifier: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def detail(self) -> str:
        command = self.command.replace("\\", "\\\\").replace('"', '\\"')
        return f'program={self.program.name}; version={self.program.version}; command="{command}"'


@dataclass(frozen=True)
class ArchivedFile:
    """A recording as it stands in the bag, with the digests computed while it was copied."""

    relpath: str  # in the meeting folder
    size: int
    sha512: str
    sha256: str

    @property
    def bag_path(self) -> str:
        return payload_path(self.relpath)


def payload_path(relpath: str) -> str:
    return f"{RECORDINGS}/{relpath}"


def technical_path(relpath: str) -> str:
    return f"{TECHNICAL}/{relpath}.json"


def withheld_from_archive(meeting: Meeting, form: Form, relpaths: Iterable[str]) -> dict[str, str]:
    """The recordings without consent to be archived, each with the reason in plain words.

    Consent for the archive is separate from consent for the committee: a recording can be in the clip
    and not in the archive, or the other way round.
    """
    from pipeline.stages.ingest import normalise_entry_path

    default = form.default_consent.as_consent()
    entries = {normalise_entry_path(e.file): e for e in meeting.statements or []}
    withheld: dict[str, str] = {}
    for relpath in relpaths:
        listed = entries.get(relpath)
        consent = listed.consent.over(default) if listed else default
        if consent.archive:
            continue
        if listed and listed.consent.archive is False:
            withheld[relpath] = "no consent to archive it (meeting.yaml: consent.archive is false)"
        else:
            withheld[relpath] = "no consent to archive it (the form's default consent leaves the archive out)"
    return withheld


def encode_manifest_path(path: str) -> str:
    # The encoding bagit-python decodes (CR and LF only); RFC 8493 also encodes "%", which bagit-python
    # would then look for literally, so a name with "%" is written as it is.
    return path.replace("\r", "%0D").replace("\n", "%0A")


def manifest_text(digests: Mapping[str, str]) -> str:
    """A payload manifest (RFC 8493 2.1.3): one ``checksum  path`` line per file, in path order."""
    return "".join(f"{digests[path]}  {encode_manifest_path(path)}\n" for path in sorted(digests))


def bagit_txt() -> str:
    return f"BagIt-Version: {BAGIT_VERSION}\nTag-File-Character-Encoding: UTF-8\n"


def bag_info_fields(
    info: ArchiveInfo,
    *,
    payload_bytes: int,
    payload_files: int,
    archived: int,
    withheld: int,
    bagging_date: dt.date,
) -> dict[str, str]:
    """bag-info.txt: the standard labels docs/standards.md asks for, then the meeting's own."""
    fields = {
        "Source-Organization": info.organiser or UNKNOWN_ORGANISER,
        "External-Description": info.title,
        "Bagging-Date": bagging_date.isoformat(),
        "Payload-Oxum": f"{payload_bytes}.{payload_files}",
        "Bag-Software-Agent": (
            f"{PIPELINE} {info.program(PIPELINE).version} (bag written with {BAGIT} "
            f"{info.program(BAGIT).version})"
        ),
        "Internal-Sender-Description": (
            f"{archived} recording(s) as received, with metadata and provenance; {withheld} recording(s) "
            f"withheld for lack of consent (listed in {WITHHELD_FILE})"
        ),
    }
    if info.meeting_date:
        fields["Meeting-Date"] = info.meeting_date.isoformat()
    if info.committee:
        fields["Committee"] = info.committee
    return fields


def _probe_note(probe: MediaProbe) -> str:
    parts = [f"format {probe.format_name}", f"{probe.duration_ms / 1000:.3f} s"]
    if probe.video:
        v = probe.video
        parts.append(f"video {v.codec} {v.width}x{v.height} {v.fps:g} fps")
    parts += [f"audio {a.codec} {a.sample_rate} Hz {a.channels} ch" for a in probe.audio]
    return "; ".join(parts)


def recording_events(
    file: ArchivedFile,
    probe: MediaProbe | str | None,
    unusable: str | None,
    info: ArchiveInfo,
    time: str,
) -> tuple[Event, ...]:
    """The archive's own events for one recording: ingestion, digests, format, validation, fixity."""
    pipeline = info.program(PIPELINE)
    original = Link("meeting folder", file.relpath)
    copy = Link("bag", file.bag_path)
    events = [
        Event(
            INGESTION,
            time,
            pipeline,
            f"copy {shlex.quote(file.relpath)} {shlex.quote(file.bag_path)} (byte for byte)",
            note=f"{file.size} bytes, as received; the meeting folder was only read",
            sources=(original,),
            outcomes=(copy,),
        ),
        Event(
            DIGEST,
            time,
            pipeline,
            "SHA-512 and SHA-256 of the bytes as they were copied",
            note=f"sha512={file.sha512}; sha256={file.sha256}",
            sources=(original,),
            outcomes=(copy,),
        ),
        Event(
            FIXITY_CHECK,
            time,
            pipeline,
            "compare the SHA-256 computed at ingestion with the SHA-256 of the bytes copied",
            note=f"sha256={file.sha256} both times",
            sources=(original,),
            outcomes=(copy,),
        ),
    ]
    if probe is not None:
        prober = info.program(PROBER)
        command = f"av.open({file.relpath!r}) at ingestion, then read every stream's parameters"
        if isinstance(probe, MediaProbe):
            identified = (SUCCESS, f"{_probe_note(probe)}; details in {technical_path(file.relpath)}")
            valid = (SUCCESS, "the container opens and every stream's parameters can be read")
            if unusable:
                valid = (SUCCESS, f"{valid[1]}; not usable as a statement: {unusable}")
        else:
            identified = valid = (FAILURE, probe)
        events += [
            Event(FORMAT_IDENTIFICATION, time, prober, command, *identified, sources=(copy,)),
            Event(VALIDATION, time, prober, command, *valid, sources=(copy,)),
        ]
    return tuple(events)


def transcription_event(
    relpath: str,
    transcript: str,
    engine: Software,
    model: Software,
    settings: Mapping[str, Any],
    time: str | None = None,
) -> Event:
    """The transcription of one recording (``transcript``: its file, relative to OUT)."""
    shown = " ".join(f"{key}={value}" for key, value in settings.items())
    checksum = f"sha256 {model.checksum}" if model.checksum else "checksum unknown"
    return Event(
        TRANSCRIPTION,
        time or utc_now(),
        engine,
        f"transcribe {relpath} with model {model.name} ({model.version}, {checksum}) {shown}".strip(),
        sources=(Link.recording(relpath),),
        outcomes=(Link.output(transcript),),
        uses=(model,),
    )


def derivation_events(
    statements: Sequence[Statement],
    transcript_files: Mapping[str, str],
    engine: Software,
    model: Software,
    settings: Mapping[str, Mapping[str, Any]],
    stages: Sequence[StageRecord],
    clip: tuple[str, str | None] | None,
    ffmpeg: Software,
) -> list[Event]:
    """Provenance of what a run made from the recordings: each statement's transcription (with its
    settings, by statement id), each statement's segment of the clip and the clip itself (``clip``: its
    path in the output folder and checksum; None for a draft, which nobody receives). ``stages``: the
    run's records, whose commands made the segments, now or in an earlier run (the command is the same
    either way: its key is in the file name)."""
    events = [
        transcription_event(s.recording.relpath, transcript_files[s.id], engine, model, settings[s.id])
        for s in statements
        if s.id in transcript_files
    ]
    join = next((stage for stage in reversed(stages) if stage.stage == "join"), None)
    if clip is None or join is None or not join.command:
        return events
    by_id = {s.id: s for s in statements}
    for stage in stages:
        if stage.part == "statement" and stage.statement in by_id and stage.command and stage.key:
            events.append(
                creation_event(
                    [by_id[stage.statement].recording.relpath],
                    f"work/segments/{stage.key}{SEGMENT_SUFFIX}",
                    ffmpeg,
                    stage.command,
                )
            )
    path, sha256 = clip
    events.append(
        creation_event(
            [s.recording.relpath for s in statements], path, ffmpeg, join.command, clip_sha256=sha256
        )
    )
    return events


def creation_event(
    relpaths: Sequence[str],
    clip: str,
    ffmpeg: Software,
    command: str,
    *,
    clip_sha256: str | None = None,
    time: str | None = None,
) -> Event:
    """The making of the clip (``clip``: relative to OUT) from the recordings, with the ffmpeg command."""
    return Event(
        CREATION,
        time or utc_now(),
        ffmpeg,
        command,
        note=f"sha256={clip_sha256}" if clip_sha256 else "",
        sources=tuple(Link.recording(r) for r in relpaths),
        outcomes=(Link.output(clip),),
    )


def _link_json(link: Link, role: str, archived: Collection[str]) -> dict[str, str]:
    kind, value = link.place, link.path
    if link.place == "recording":
        kind, value = (
            ("bag", payload_path(link.path)) if link.path in archived else ("meeting folder", link.path)
        )
    return {
        "linkingObjectIdentifierType": f"{kind} path",
        "linkingObjectIdentifierValue": value,
        "linkingObjectRole": role,
    }


def _agent_ref(agent_id: str, role: str) -> dict[str, str]:
    return {
        "linkingAgentIdentifierType": "local",
        "linkingAgentIdentifierValue": agent_id,
        "linkingAgentRole": role,
    }


def _organisation_id(info: ArchiveInfo) -> str:
    return f"organization:{info.organiser or 'unknown'}"


def _person_id(info: ArchiveInfo) -> str:
    return f"person:{info.operator}"


def event_json(event: Event, info: ArchiveInfo, archived: Collection[str]) -> dict[str, Any]:
    outcome: dict[str, Any] = {"eventOutcome": event.outcome}
    if event.note:
        outcome["eventOutcomeDetail"] = {"eventOutcomeDetailNote": event.note}
    return {
        "eventIdentifier": {"eventIdentifierType": "UUID", "eventIdentifierValue": event.identifier},
        "eventType": event.type,
        "eventDateTime": event.time,
        "eventDetailInformation": {"eventDetail": event.detail},
        "eventOutcomeInformation": outcome,
        "linkingAgentIdentifier": [
            _agent_ref(event.program.agent_id, "executing program"),
            *(_agent_ref(s.agent_id, "tool") for s in event.uses),
            _agent_ref(_person_id(info), "implementer"),
            _agent_ref(_organisation_id(info), "authorizer"),
        ],
        "linkingObjectIdentifier": [
            *(_link_json(link, "source", archived) for link in event.sources),
            *(_link_json(link, "outcome", archived) for link in event.outcomes),
        ],
    }


def event_signature(event: Mapping[str, Any]) -> str:
    """What an event did, without when, under which identifier or by whom: the same work run again (a
    re-run that found everything cached) has the same signature and is not recorded twice."""
    return json.dumps(
        [
            event.get("eventType"),
            event.get("eventDetailInformation"),
            event.get("eventOutcomeInformation"),
            event.get("linkingObjectIdentifier"),
        ],
        sort_keys=True,
        ensure_ascii=False,
    )


def _software_json(software: Software) -> dict[str, Any]:
    agent: dict[str, Any] = {
        "agentIdentifier": {"agentIdentifierType": "local", "agentIdentifierValue": software.agent_id},
        "agentName": software.name,
        "agentType": "software",
        "agentVersion": software.version,
        "agentNote": software.role,
    }
    if software.checksum:
        agent["agentNote"] = f"{software.role}; sha256={software.checksum}"
    return agent


def agents_json(info: ArchiveInfo, events: Sequence[Event]) -> list[dict[str, Any]]:
    """The organisation, the person who ran it, and every program (with its version) the events name."""
    agents: dict[str, dict[str, Any]] = {
        _organisation_id(info): {
            "agentIdentifier": {
                "agentIdentifierType": "local",
                "agentIdentifierValue": _organisation_id(info),
            },
            "agentName": info.organiser or UNKNOWN_ORGANISER,
            "agentType": "organization",
            "agentNote": "organiser of the meeting",
        },
        _person_id(info): {
            "agentIdentifier": {"agentIdentifierType": "local", "agentIdentifierValue": _person_id(info)},
            "agentName": info.operator,
            "agentType": "person",
            "agentNote": "ran hearing-pipeline (user name on the computer)",
        },
    }
    for software in [*info.software, *(s for e in events for s in (e.program, *e.uses))]:
        agents.setdefault(software.agent_id, _software_json(software))
    return list(agents.values())


def object_json(file: ArchivedFile, probe: MediaProbe | str | None) -> dict[str, Any]:
    characteristics: dict[str, Any] = {
        "compositionLevel": 0,
        "fixity": [
            {
                "messageDigestAlgorithm": "SHA-512",
                "messageDigest": file.sha512,
                "messageDigestOriginator": PIPELINE,
            },
            {
                "messageDigestAlgorithm": "SHA-256",
                "messageDigest": file.sha256,
                "messageDigestOriginator": PIPELINE,
            },
        ],
        "size": file.size,
    }
    if isinstance(probe, MediaProbe):
        characteristics["format"] = {"formatDesignation": {"formatName": probe.format_name}}
    return {
        "objectIdentifier": {"objectIdentifierType": "bag path", "objectIdentifierValue": file.bag_path},
        "objectCategory": "file",
        "originalName": file.relpath,
        "objectCharacteristics": characteristics,
    }


def withheld_json(withheld: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"file": relpath, "reason": withheld[relpath]} for relpath in sorted(withheld)]


def provenance_document(
    info: ArchiveInfo,
    files: Sequence[ArchivedFile],
    probes: Mapping[str, MediaProbe | str],
    withheld: Mapping[str, str],
    events: Sequence[Event],
    previous: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """provenance.json: PREMIS 3 objects, agents and events as JSON (the PREMIS semantic-unit names are
    the keys). With ``previous`` (the document of the bag being replaced) its agents and events are kept
    and only what is new is added: provenance is a log, not a snapshot."""
    archived = {f.relpath for f in files}
    new_events = [event_json(e, info, archived) for e in events]
    new_agents = agents_json(info, events)
    if previous:
        known_agents = {a["agentIdentifier"]["agentIdentifierValue"] for a in previous["agents"]}
        known_events = {event_signature(e) for e in previous["events"]}
        agents = [
            *previous["agents"],
            *(a for a in new_agents if a["agentIdentifier"]["agentIdentifierValue"] not in known_agents),
        ]
        new_events = [e for e in new_events if event_signature(e) not in known_events]
        all_events = [*previous["events"], *new_events]
    else:
        agents, all_events = new_agents, new_events
    return {
        "kind": "hearing-pipeline archive provenance",
        "version": PROVENANCE_VERSION,
        "vocabulary": "PREMIS 3.0: semantic units as JSON keys; event types from id.loc.gov",
        "meeting": {
            "title": info.title,
            "date": info.meeting_date.isoformat() if info.meeting_date else None,
            "organiser": info.organiser,
            "committee": info.committee,
        },
        "objects": [object_json(f, probes.get(f.relpath)) for f in files],
        "withheld": withheld_json(withheld),
        "agents": agents,
        "events": all_events,
    }


def technical_json(relpath: str, probe: MediaProbe | str, info: ArchiveInfo) -> dict[str, Any]:
    prober = info.program(PROBER)
    probed = {"file": relpath, "program": prober.name, "version": prober.version}
    if isinstance(probe, MediaProbe):
        return {**probed, "probe": probe.to_json()}
    return {**probed, "probe": None, "problem": probe}


def json_bytes(data: Any) -> bytes:
    # Same data, same bytes: the reuse check compares these files by checksum.
    return (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def metadata_files(
    info: ArchiveInfo,
    archived: Sequence[str],
    probes: Mapping[str, MediaProbe | str],
    withheld: Mapping[str, str],
    meeting_yaml: bytes | None,
) -> dict[str, bytes]:
    """Every metadata file of the bag except provenance.json, by path in the bag."""
    files: dict[str, bytes] = {}
    if meeting_yaml is not None:
        files[MEETING_FILE] = meeting_yaml
    for relpath in archived:
        probe = probes.get(relpath)
        if probe is not None:
            files[technical_path(relpath)] = json_bytes(technical_json(relpath, probe, info))
    files[WITHHELD_FILE] = json_bytes(
        {
            "about": "Recordings received with the meeting but not archived, and why. meeting.yaml "
            "(beside this file) holds the consent each speaker gave.",
            "withheld": withheld_json(withheld),
        }
    )
    return files


# ------------------------------------------------------------------------------------------------ I/O


@dataclass(frozen=True)
class ArchiveResult:
    path: Path
    action: str  # "built", "refreshed" (provenance only; recordings hard-linked) or "reused" (untouched)
    archived: tuple[str, ...]
    withheld: tuple[tuple[str, str], ...]
    payload_files: int
    payload_bytes: int
    copy_seconds: float = 0.0
    validate_seconds: float = 0.0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "action": self.action,
            "archived": list(self.archived),
            "withheld": [{"file": f, "reason": r} for f, r in self.withheld],
            "payload_files": self.payload_files,
            "payload_bytes": self.payload_bytes,
            "copy_seconds": round(self.copy_seconds, 3),
            "validate_seconds": round(self.validate_seconds, 3),
            "seconds": round(self.seconds, 3),
        }


def archive_info(
    meeting: Meeting,
    meeting_name: str,
    *,
    ffmpeg_version: str | None = None,
    engine: Software | None = None,
    model: ModelInfo | None = None,
) -> ArchiveInfo:
    """ArchiveInfo from meeting.yaml and the programs of this run (the versions are looked up here)."""
    software = [Software(PIPELINE, __version__), Software(BAGIT, bagit.VERSION)]
    with contextlib.suppress(ImportError):
        import av

        software.append(Software(PROBER, str(av.__version__), role="format identification (libavformat)"))
    if ffmpeg_version:
        software.append(Software("ffmpeg", ffmpeg_version))
    if engine:
        software.append(engine)
    if model:
        software.append(model_software(model))
    return ArchiveInfo(
        organiser=meeting.organiser,
        title=meeting.title or f"Recordings of the citizen meeting {meeting_name}",
        meeting_date=meeting.date,
        committee=meeting.committee,
        operator=operator_name(),
        software=tuple(software),
    )


def operator_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in the environment nor in the password database
        return "unknown"


@contextlib.contextmanager
def _quiet_bagit() -> Iterator[None]:
    # bagit logs each problem as a warning; the caller reports them once, in its own words.
    logger = logging.getLogger("bagit")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def _kept_cwd() -> Iterator[None]:
    # Bag.save works by changing the current directory and does not change it back after an error.
    cwd = os.getcwd()
    try:
        yield
    finally:
        os.chdir(cwd)


def _fsync_tree(root: Path) -> None:
    for folder, _dirs, names in os.walk(root, topdown=False):
        for name in names:
            fsync_path(Path(folder, name))
        fsync_path(Path(folder))


def _new_file(path: Path) -> Any:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("xb", buffering=0)


def _write_all(handle: Any, view: memoryview) -> None:
    while view:
        written = handle.write(view)
        view = view[written:]


# Written bytes are handed to the disk every so often while the digests go on, so that the fsync at the
# end does not wait for the whole file: the copy then costs about the slower of hashing and writing,
# not their sum.
WRITEBACK_EVERY = 64 << 20


def _start_writeback(handle: Any, offset: int, length: int) -> None:
    # On Linux, "don't need" on dirty pages starts their writeback without waiting for it.
    if hasattr(os, "posix_fadvise"):
        with contextlib.suppress(OSError):
            os.posix_fadvise(handle.fileno(), offset, length, os.POSIX_FADV_DONTNEED)


def _drop_cached(handle: Any) -> None:
    # After the fsync the copy is on the disk; dropping it from the page cache makes the validation
    # that follows read the disk, not memory.
    if hasattr(os, "posix_fadvise"):
        with contextlib.suppress(OSError):
            os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def copy_with_digests(
    source: Path,
    target: Path,
    pool: ThreadPoolExecutor,
    on_bytes: Callable[[int], None] | None = None,
) -> tuple[int, str, str]:
    """Copy ``source`` to a new file ``target`` and return (size, sha512, sha256) of the bytes copied.

    One buffer, reused: memory stays flat whatever the file size. SHA-512 runs in ``pool`` while this
    thread computes SHA-256 and writes (hashlib and file writes release the GIL), so the copy costs
    about as much as the slower of the two digests.
    """
    sha512, sha256 = hashlib.sha512(), hashlib.sha256()
    buffer = bytearray(COPY_CHUNK)
    view = memoryview(buffer)
    size = flushed = 0
    # Opened only as an ordinary file: one swapped for a named pipe since it was found must not block.
    with open_regular(source) as src, _new_file(target) as dst:
        while count := src.readinto(buffer):
            chunk = view[:count]
            pending = pool.submit(sha512.update, chunk)
            sha256.update(chunk)
            _write_all(dst, chunk)
            pending.result()
            size += count
            if size - flushed >= WRITEBACK_EVERY:
                _start_writeback(dst, flushed, size - flushed)
                flushed = size
            if on_bytes:
                on_bytes(count)
        os.fsync(dst.fileno())
        _drop_cached(dst)
    stat = source.stat()
    # The file's own date is part of what was received.
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    return size, sha512.hexdigest(), sha256.hexdigest()


def _write_small(path: Path, data: bytes) -> dict[str, str]:
    with _new_file(path) as handle:
        _write_all(handle, memoryview(data))
        os.fsync(handle.fileno())
    return {alg: hashlib.new(alg, data).hexdigest() for alg in ALGORITHMS}


def _swap_into_place(staging: Path, target: Path, work: Path) -> None:
    """Make the finished bag ``target``: at every moment ``target`` is the old bag or the new one."""
    replace_folder(staging, target, work / f"{ASIDE_PREFIX}{uuid.uuid4().hex[:8]}")
    fsync_path(work)


def _tidy(target: Path, work: Path) -> None:
    """Clean up after a run that was stopped while archiving (killed, power cut)."""
    if not work.is_dir():
        return
    if recover_folder(target, list(work.glob(f"{ASIDE_PREFIX}*"))):
        log.info("put the previous archive back in place (a run was stopped while replacing it)")
    for stale in work.glob(f"{STAGING_PREFIX}*"):
        shutil.rmtree(stale, ignore_errors=True)


def _open_complete(path: Path) -> bagit.Bag | None:
    """The bag at ``path`` if it is complete (every listed file there, nothing added; no checksums read)."""
    if not (path / "bagit.txt").is_file():
        return None
    try:
        with _quiet_bagit():
            bag = bagit.Bag(str(path))
            bag.validate(completeness_only=True)
    except (bagit.BagError, OSError, ValueError):
        return None
    return bag


def _previous_provenance(bag: bagit.Bag) -> dict[str, Any] | None:
    """The provenance of an existing bag, if it is still as its manifests record it: a refresh carries
    its events into the new bag, which must not give an edited history fresh checksums."""
    path = Path(bag.path, PROVENANCE_FILE)
    recorded = bag.entries.get(PROVENANCE_FILE, {})
    try:
        if not recorded or file_digests(path, recorded) != {a: v.lower() for a, v in recorded.items()}:
            log.warning("archive: %s differs from its manifest; the archive is made anew", PROVENANCE_FILE)
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if (
        isinstance(data, dict)
        and data.get("version") == PROVENANCE_VERSION
        and isinstance(data.get("agents"), list)
        and isinstance(data.get("events"), list)
    ):
        return data
    return None


def _old_recordings(bag: bagit.Bag, wanted: Mapping[str, Recording]) -> dict[str, ArchivedFile] | None:
    """The recordings of an existing bag as ArchivedFiles, if it holds exactly ``wanted`` with the same
    content (by the SHA-256 ingest computed); otherwise None."""
    entries = {
        path: hashes for path, hashes in bag.payload_entries().items() if path.startswith(RECORDINGS + "/")
    }
    if set(entries) != {payload_path(r) for r in wanted}:
        return None
    files: dict[str, ArchivedFile] = {}
    for relpath, recording in wanted.items():
        hashes = entries[payload_path(relpath)]
        if hashes.get("sha256") != recording.sha256 or "sha512" not in hashes:
            return None
        files[relpath] = ArchivedFile(relpath, recording.size, hashes["sha512"], recording.sha256)
    return files


def _write_bag(
    staging: Path,
    payload: Mapping[str, Mapping[str, str]],
    payload_bytes: int,
    info: ArchiveInfo,
    archived: int,
    withheld: int,
) -> None:
    """The tag files: bagit.txt and the payload manifests from the digests in hand, then bag-info.txt and
    the tag manifests by bagit."""
    (staging / "bagit.txt").write_bytes(bagit_txt().encode("utf-8"))
    for alg in ALGORITHMS:
        text = manifest_text({path: digests[alg] for path, digests in payload.items()})
        (staging / f"manifest-{alg}.txt").write_bytes(text.encode("utf-8"))
    with _quiet_bagit(), _kept_cwd():
        bag = bagit.Bag(str(staging))
        bag.info = bag_info_fields(
            info,
            payload_bytes=payload_bytes,
            payload_files=len(payload),
            archived=archived,
            withheld=withheld,
            bagging_date=dt.datetime.now(dt.UTC).date(),
        )
        bag.save(manifests=False)
    _fsync_tree(staging)


def _check_written(staging: Path, linked: Collection[str]) -> None:
    """bagit's validation of the new bag; ArchiveError if it fails (the old bag then stays).

    bagit checks completeness and sizes, and every file except the ``linked`` recordings is hashed
    again (``hearing verify`` reads every file back and checks every checksum): the recordings are
    hard links to the previous bag's files (a provenance refresh), or copies whose digests were computed
    from their bytes as they were written (a new bag).
    """
    try:
        with _quiet_bagit():
            bag = bagit.Bag(str(staging))
            bag.validate(completeness_only=True)
    except bagit.BagError as error:
        raise ArchiveError(
            f"the new archive did not pass validation, the previous one is kept: {error}"
        ) from None
    for path, hashes in bag.entries.items():
        if path in linked:
            continue
        found = file_digests(staging / path, hashes)
        if found != {alg: value.lower() for alg, value in hashes.items()}:
            raise ArchiveError(
                f"the new archive did not pass validation, the previous one is kept: {path} differs"
            )


def file_digests(path: Path, algorithms: Iterable[str]) -> dict[str, str]:
    hashers = {alg: hashlib.new(alg) for alg in algorithms}
    with path.open("rb") as handle:
        while chunk := handle.read(COPY_CHUNK):
            for hasher in hashers.values():
                hasher.update(chunk)
    return {alg: h.hexdigest() for alg, h in hashers.items()}


@dataclass(frozen=True)
class _Job:
    """One archiving, worked out once from build_archive's arguments."""

    target: Path
    work: Path
    meeting_dir: Path
    wanted: Mapping[str, Recording]  # the recordings to archive, by relpath
    probes: Mapping[str, MediaProbe | str]
    withheld: Mapping[str, str]
    metadata: Mapping[str, bytes]  # every metadata file but provenance.json, by path in the bag
    info: ArchiveInfo
    events: Sequence[Event]
    unusable: Mapping[str, str]
    on_progress: Callable[[float], None] | None
    started: float

    def result(
        self, action: str, files: int, size: int, copy: float = 0.0, check: float = 0.0
    ) -> ArchiveResult:
        if self.on_progress:
            self.on_progress(1.0)
        return ArchiveResult(
            self.target,
            action,
            tuple(sorted(self.wanted)),
            tuple((f, self.withheld[f]) for f in sorted(self.withheld)),
            files,
            size,
            copy,
            check,
            time.monotonic() - self.started,
        )


def build_archive(
    out_dir: Path,
    meeting_dir: Path,
    recordings: Sequence[Recording],
    probes: Mapping[str, MediaProbe | str],
    withheld: Mapping[str, str],
    meeting_file: Path | None,
    info: ArchiveInfo,
    events: Sequence[Event] = (),
    *,
    unusable: Mapping[str, str] | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> ArchiveResult:
    """Make ``OUT/archive`` the bag of ``recordings`` (all but the ``withheld`` ones), or leave it as it
    is when it already is that bag.

    ``probes``: each recording's probe, or the reason it could not be read. ``withheld``: relpath ->
    why it is not archived (see ``withheld_from_archive``). ``events``: the run's own events
    (``transcription_event``, ``creation_event``); the archive adds ingestion, digests, format
    identification, validation and fixity check itself. ``unusable``: recordings archived although
    rejected for the clip, with the reason. ``on_progress``: the share of the bytes copied so far.
    """
    started = time.monotonic()
    target = out_dir / ARCHIVE_FOLDER
    work = out_dir / "work"
    _tidy(target, work)
    wanted = {r.relpath: r for r in recordings if r.relpath not in withheld}
    meeting_yaml = meeting_file.read_bytes() if meeting_file else None
    metadata = metadata_files(info, sorted(wanted), probes, withheld, meeting_yaml)
    job = _Job(
        target,
        work,
        meeting_dir,
        wanted,
        probes,
        withheld,
        metadata,
        info,
        events,
        unusable or {},
        on_progress,
        started,
    )

    old = _open_complete(target)
    previous = _previous_provenance(old) if old else None
    old_files = _old_recordings(old, wanted) if old and previous else None
    if old is None or previous is None or old_files is None:
        return _build(job)
    unchanged = len(old.payload_entries()) == len(wanted) + len(metadata) + 1 and all(
        old.entries.get(path, {}).get("sha256") == hashlib.sha256(data).hexdigest()
        for path, data in metadata.items()
    )
    fresh = provenance_document(info, list(old_files.values()), probes, withheld, events, previous)
    if unchanged and len(fresh["events"]) == len(previous["events"]):
        log.info("archive: unchanged, kept as it is")
        size, count = str(old.info.get("Payload-Oxum", "0.0")).split(".")
        return job.result("reused", int(count), int(size))
    return _refresh(job, old_files, fresh) or _build(job)


def _staging(work: Path) -> Path:
    work.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=work))
    # mkdtemp makes a private folder; the archive gets the permissions any new folder would get.
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)
    return staging


def _refresh(
    job: _Job, files: Mapping[str, ArchivedFile], provenance: Mapping[str, Any]
) -> ArchiveResult | None:
    """A new bag around hard links to the recordings of the current one, with new metadata; None where
    hard links are not possible (exFAT, some network drives): the caller then copies."""
    staging = _staging(job.work)
    try:
        payload: dict[str, Mapping[str, str]] = {}
        size = 0
        for file in files.values():
            link = staging / file.bag_path
            link.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(job.target / file.bag_path, link)
            except OSError as error:
                log.info("archive: cannot link the recordings of the previous bag (%s); copying", error)
                return None
            payload[file.bag_path] = {"sha512": file.sha512, "sha256": file.sha256}
            size += file.size
        for path, data in {**job.metadata, PROVENANCE_FILE: json_bytes(provenance)}.items():
            payload[path] = _write_small(staging / path, data)
            size += len(data)
        _write_bag(staging, payload, size, job.info, len(files), len(job.withheld))
        check_started = time.monotonic()
        _check_written(staging, {f.bag_path for f in files.values()})
        checked = time.monotonic() - check_started
        _swap_into_place(staging, job.target, job.work)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("archive: provenance brought up to date; recordings unchanged")
    return job.result("refreshed", len(payload), size, 0.0, checked)


def _build(job: _Job) -> ArchiveResult:
    """A new bag: every recording copied from the meeting folder and hashed on the way."""
    staging = _staging(job.work)
    total = sum(r.size for r in job.wanted.values()) or 1
    done = 0

    def copied(count: int) -> None:
        nonlocal done
        done += count
        if job.on_progress:
            job.on_progress(min(done / total, 1.0))

    try:
        payload: dict[str, Mapping[str, str]] = {}
        files: list[ArchivedFile] = []
        archive_events: list[Event] = []
        size = 0
        copy_started = time.monotonic()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha512") as pool:
            for relpath in sorted(job.wanted):
                file = _copy_recording(job.meeting_dir, job.wanted[relpath], staging, pool, copied)
                files.append(file)
                payload[file.bag_path] = {"sha512": file.sha512, "sha256": file.sha256}
                size += file.size
                probe, unusable = job.probes.get(relpath), job.unusable.get(relpath)
                archive_events += recording_events(file, probe, unusable, job.info, utc_now())
        copy_seconds = time.monotonic() - copy_started
        provenance = provenance_document(
            job.info, files, job.probes, job.withheld, [*archive_events, *job.events]
        )
        for path, data in {**job.metadata, PROVENANCE_FILE: json_bytes(provenance)}.items():
            payload[path] = _write_small(staging / path, data)
            size += len(data)
        _write_bag(staging, payload, size, job.info, len(files), len(job.withheld))
        check_started = time.monotonic()
        # From the digests computed as the bytes streamed through the copy, not by reading 2 GB back:
        # completeness and sizes by bagit, the small metadata files hashed again. `hearing verify` is
        # the full re-read, whenever an archivist asks for it.
        _check_written(staging, {f.bag_path for f in files})
        check_seconds = time.monotonic() - check_started
        _swap_into_place(staging, job.target, job.work)
    except OSError as error:
        if error.errno == errno.ENOSPC:
            free = shutil.disk_usage(job.work).free
            raise ArchiveError(
                f"not enough free disk space for the archive in {job.target.parent}: it needs about "
                f"{_megabytes(total)}, {_megabytes(free)} free; the previous archive is kept"
            ) from None
        raise ArchiveError(f"the archive could not be made: {error}; the previous archive is kept") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("archive: %d recording(s), %s, bag checked", len(files), _megabytes(size))
    return job.result("built", len(payload), size, copy_seconds, check_seconds)


def _copy_recording(
    meeting_dir: Path,
    recording: Recording,
    staging: Path,
    pool: ThreadPoolExecutor,
    on_bytes: Callable[[int], None],
) -> ArchivedFile:
    source = meeting_dir / recording.relpath
    try:
        size, sha512, sha256 = copy_with_digests(
            source, staging / payload_path(recording.relpath), pool, on_bytes
        )
    except FileNotFoundError:
        raise ArchiveError(
            f"{recording.relpath}: disappeared from the meeting folder during the run"
        ) from None
    if sha256 != recording.sha256 or size != recording.size:
        raise ArchiveError(
            f"{recording.relpath}: changed since it was read at the start of the run (its SHA-256 differs "
            "now); it is not archived under the old checksum: run again"
        )
    return ArchivedFile(recording.relpath, size, sha512, sha256)


def _megabytes(count: int) -> str:
    return f"{count / 1e6:,.1f} MB"


def archive_bytes_needed(recordings: Sequence[Recording], withheld: Collection[str]) -> int:
    """Disk space the archive may need at most: a full copy beside the previous bag, while it is built."""
    return sum(r.size for r in recordings if r.relpath not in withheld) + (1 << 20)


# --------------------------------------------------------------------------------------------- verify


@dataclass(frozen=True)
class Problem:
    kind: str  # "changed", "missing", "extra" or "invalid"
    path: str
    detail: str = ""

    @property
    def line(self) -> str:
        where = f": {self.path}" if self.path else ""
        return f"{self.kind}{where}" + (f" ({self.detail})" if self.detail else "")


@dataclass(frozen=True)
class VerifyResult:
    path: Path
    is_bag: bool
    problems: tuple[Problem, ...] = ()
    error: str | None = None  # why it is not a bag at all
    version: str | None = None
    algorithms: tuple[str, ...] = ()
    payload_files: int = 0
    payload_bytes: int = 0
    seconds: float = 0.0

    @property
    def valid(self) -> bool:
        return self.is_bag and not self.problems and self.error is None

    def to_json(self) -> dict[str, Any]:
        return {
            "archive": str(self.path),
            "valid": self.valid,
            "is_bag": self.is_bag,
            "error": self.error,
            "bagit_version": self.version,
            "algorithms": list(self.algorithms),
            "payload_files": self.payload_files,
            "payload_bytes": self.payload_bytes,
            "problems": [dataclasses.asdict(p) for p in self.problems],
            "seconds": round(self.seconds, 3),
        }


def _problems_named(bag: bagit.Bag, error: bagit.BagValidationError) -> list[Problem]:
    """Each file behind a failed validation: changed, missing or extra.

    bagit stops at the first failing stage (Payload-Oxum, then completeness, then checksums), so when it
    stopped before the checksums they are compared here, to name every changed file in one go.
    """
    changed: dict[str, list[str]] = {}
    missing: list[str] = []
    extra: list[str] = []
    for detail in error.details:
        if isinstance(detail, bagit.ChecksumMismatch):
            changed.setdefault(str(detail.path), []).append(str(detail.algorithm))
        elif isinstance(detail, bagit.FileMissing):
            missing.append(str(detail.path))
        elif isinstance(detail, bagit.UnexpectedFile):
            extra.append(str(detail.path))
    if not changed:
        if not (missing or extra):
            missing, extra = (list(found) for found in bag.compare_manifests_with_fs())
        for path, hashes in bag.entries.items():
            full = Path(bag.path, path)
            if path in missing or not full.is_file():
                continue
            found = file_digests(full, hashes)
            differ = [alg for alg, value in hashes.items() if value.lower() != found[alg]]
            if differ:
                changed[path] = differ
    problems = [
        Problem("changed", path, f"{', '.join(sorted(algs))} differ{'s' if len(algs) == 1 else ''}")
        for path, algs in sorted(changed.items())
    ]
    problems += [Problem("missing", path) for path in sorted(missing)]
    problems += [Problem("extra", path) for path in sorted(extra)]
    if not problems:
        problems.append(Problem("invalid", "", str(error)))
    return problems


def _unlisted_tag_files(bag: bagit.Bag) -> list[Problem]:
    """Files beside data/ that no tag manifest lists. bagit allows them; an archive that must show that
    nothing changed reports them (only when there are tag manifests, which every bag made here has)."""
    root = Path(bag.path)
    if not list(bag.tagmanifest_files()):
        return []
    listed = set(bag.tagfile_entries())
    found: list[Problem] = []
    for folder, dirs, names in os.walk(root):
        here = Path(folder)
        if here == root:
            dirs[:] = [d for d in dirs if d != "data"]
        for name in names:
            rel = (here / name).relative_to(root).as_posix()
            if rel not in listed and not (here == root and name.startswith("tagmanifest-")):
                found.append(Problem("extra", rel, "not listed in the tag manifests"))
    return sorted(found, key=lambda p: p.path)


def archive_folder(path: Path) -> Path:
    """The bag to verify: ``path`` itself, or ``path/archive`` when given an output folder."""
    if not (path / "bagit.txt").exists() and (path / ARCHIVE_FOLDER / "bagit.txt").is_file():
        return path / ARCHIVE_FOLDER
    return path


def verify_archive(path: Path, processes: int = 1) -> VerifyResult:
    """bagit's full validation (completeness and every checksum) of the bag at ``path``, with every
    changed, missing or extra file named."""
    started = time.monotonic()
    path = archive_folder(path)
    if not path.is_dir():
        return VerifyResult(path, False, error="no such folder" if not path.exists() else "not a folder")
    if not (path / "bagit.txt").is_file():
        if (path / "data").is_dir() or list(path.glob("manifest-*.txt")):
            return VerifyResult(path, True, (Problem("missing", "bagit.txt"),))
        return VerifyResult(path, False, error="not a BagIt bag (no bagit.txt)")
    try:
        with _quiet_bagit():
            bag = bagit.Bag(str(path))
    except (bagit.BagError, ValueError) as error:
        return VerifyResult(path, True, (Problem("invalid", "", str(error) or type(error).__name__),))
    problems: list[Problem] = []
    try:
        with _quiet_bagit():
            bag.validate(processes=processes)
    except bagit.BagValidationError as error:
        problems = _problems_named(bag, error)
    except (bagit.BagError, ValueError) as error:
        problems = [Problem("invalid", "", str(error))]
    problems += _unlisted_tag_files(bag)
    payload = bag.payload_entries()
    size = 0
    for entry in payload:
        with contextlib.suppress(OSError):
            size += Path(bag.path, entry).stat().st_size
    return VerifyResult(
        path,
        True,
        tuple(problems),
        version=str(bag.tags.get("BagIt-Version")),
        algorithms=tuple(sorted(bag.algorithms)),
        payload_files=len(payload),
        payload_bytes=size,
        seconds=time.monotonic() - started,
    )
