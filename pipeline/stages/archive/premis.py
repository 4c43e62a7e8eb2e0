"""The provenance model (PREMIS 3 events, agents and objects) and its JSON, ``provenance.json``.

Pure: data in, data out. What the archive did to each recording (``recording_events``), what a run made
from them (``transcription_event``, ``creation_event``, ``derivation_events``), who and which programs
acted (``ArchiveInfo``, ``Software``), and the document that keeps them, a log that a later run extends
(``provenance_document``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import json
import shlex
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import bagit

from pipeline import __version__
from pipeline.cache import WORK, WorkCache
from pipeline.meeting_facts import MeetingFacts
from pipeline.models import MediaProbe, Statement
from pipeline.retention import Retention
from pipeline.stages.archive.layout import payload_path, technical_path

if TYPE_CHECKING:
    from pipeline.engines.base import ModelInfo
    from pipeline.steps import StageRecord

PROVENANCE_VERSION = 1
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
DELETION = "deletion"  # what a retention period made due was removed (`hearing purge`)
REDACTION = "redaction"  # a withdrawn statement left the delivery (`hearing withdraw`)
DEACCESSION = "deaccession"  # a recording's bytes left the bag (`hearing withdraw --from-archive`)

SUCCESS = "success"
FAILURE = "failure"


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Software:
    """A program (or a speech model) that acted on the recordings: a PREMIS software agent."""

    name: str
    version: str
    role: str = "program"  # "program", "speech engine", "speech model"
    checksum: str | None = None  # SHA-256 of a model's weights, where known
    # A stored model's manifest facts (engines.model_origin): its hub repository and revision, and the
    # conversion of its weights where they were converted. The checksum already tells the weights apart.
    origin: Mapping[str, Any] | None = field(default=None, compare=False)

    @property
    def agent_id(self) -> str:
        suffix = f"#sha256:{self.checksum[:16]}" if self.checksum else ""
        return f"software:{self.name}@{self.version}{suffix}"


def model_software(model: ModelInfo, origin: Mapping[str, Any] | None = None) -> Software:
    """The speech model as an agent: its checksum, not a version number, says which weights were used;
    ``origin`` where it came from (a model `hearing models get` stored)."""
    return Software(model.name, model.source, role="speech model", checksum=model.sha256, origin=origin)


def _origin_note(origin: Mapping[str, Any]) -> str:
    note = f"from {origin.get('repo')} at revision {origin.get('revision')}"
    conversion = origin.get("conversion")
    if isinstance(conversion, Mapping):
        note += (
            f"; converted to CTranslate2 ({conversion.get('quantization')}) by "
            f"{conversion.get('converter')} {conversion.get('converter_version', '')}".rstrip()
            + f": {conversion.get('command')}"
        )
    return note


@dataclass(frozen=True)
class ArchiveInfo:
    """What the bag says about the meeting, who ran the pipeline and with which programs."""

    organiser: str | None
    title: str
    meeting_date: dt.date | None
    committee: str | None
    operator: str  # the person who ran the pipeline (their user name on the computer)
    software: tuple[Software, ...] = ()
    retention: Retention | None = None  # how long the recordings and the work cache are kept

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
    join = next((s for s in reversed(stages) if s.stage == "join" and s.part in (None, "clip")), None)
    if clip is None or join is None or not join.command:
        return events
    by_id = {s.id: s for s in statements}
    for stage in stages:
        if stage.part == "statement" and stage.statement in by_id and stage.command and stage.key:
            events.append(
                creation_event(
                    [by_id[stage.statement].recording.relpath],
                    f"{WORK}/{WorkCache.segment_name(stage.key)}",
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


def deletion_event(
    removed: Sequence[tuple[Link, str]], command: str, reason: str, time: str | None = None
) -> Event:
    """Files removed on purpose (``removed``: each file with what identifies its bytes, its digests where
    known): the record that stays once they are gone."""
    listed = "; ".join(f"{link.path}: {what}" if what else link.path for link, what in removed)
    return Event(
        DELETION,
        time or utc_now(),
        Software(PIPELINE, __version__),
        command,
        note=f"{reason}. Removed: {listed}",
        sources=tuple(link for link, _ in removed),
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
    if software.origin:
        agent["agentNote"] += f"; {_origin_note(software.origin)}"
        # The manifest's facts as they are, for a reader that wants them without parsing the note.
        agent["agentExtension"] = {"model_origin": dict(software.origin)}
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


def removal_event(file: ArchivedFile, reason: str, info: ArchiveInfo, time: str) -> Event:
    """A recording's bytes taken out of the bag (the new bag is made without them): its digests and the
    reason stay in the provenance."""
    return Event(
        DEACCESSION,
        time,
        info.program(PIPELINE),
        f"make a new bag without {file.bag_path}",
        note=f"{file.size} bytes; sha512={file.sha512}; sha256={file.sha256}; reason: {reason}",
        sources=(Link("bag", file.bag_path),),
    )


def removed_json(file: ArchivedFile, reason: str, time: str) -> dict[str, Any]:
    """A recording no longer in the bag, as the provenance keeps it: where it was and what it was."""
    return {
        "file": file.relpath,
        "bag_path": file.bag_path,
        "size": file.size,
        "sha512": file.sha512,
        "sha256": file.sha256,
        "removed": time,
        "reason": reason,
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
    removed: Sequence[Mapping[str, Any]] = (),
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
        **({"retention": info.retention.to_json()} if info.retention else {}),
        "objects": [object_json(f, probes.get(f.relpath)) for f in files],
        "withheld": withheld_json(withheld),
        # Recordings taken out of the bag (a withdrawn consent): their digests and why, kept for good.
        **_removed_section(previous, removed),
        "agents": agents,
        "events": all_events,
    }


def _removed_section(
    previous: Mapping[str, Any] | None, removed: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    # Absent until a recording leaves the bag: an unchanged bag keeps its provenance's bytes.
    earlier = list(previous.get("removed") or []) if previous else []
    every = [*earlier, *removed]
    return {"removed": every} if every else {}


def json_bytes(data: Any) -> bytes:
    # Same data, same bytes: the reuse check compares these files by checksum.
    return (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def meeting_info(
    meeting: MeetingFacts,
    *,
    ffmpeg_version: str | None = None,
    engine: Software | None = None,
    model: ModelInfo | None = None,
    model_origin: Mapping[str, Any] | None = None,
    retention: Retention | None = None,
) -> ArchiveInfo:
    """ArchiveInfo from the meeting's facts and the programs of this run (the versions are looked up
    here)."""
    software = [Software(PIPELINE, __version__), Software(BAGIT, bagit.VERSION)]
    with contextlib.suppress(ImportError):
        import av

        software.append(Software(PROBER, str(av.__version__), role="format identification (libavformat)"))
    if ffmpeg_version:
        software.append(Software("ffmpeg", ffmpeg_version))
    if engine:
        software.append(engine)
    if model:
        software.append(model_software(model, model_origin))
    return ArchiveInfo(
        organiser=meeting.organiser,
        title=meeting.archive_title,
        meeting_date=meeting.date,
        committee=meeting.committee,
        operator=operator_name(),
        software=tuple(software),
        retention=retention,
    )


def operator_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in the environment nor in the password database
        return "unknown"
