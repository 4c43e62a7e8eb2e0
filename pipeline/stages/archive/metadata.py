"""What the bag says besides the recordings, worked out from data: which recordings are withheld and
why, the tag files' text (``bagit.txt``, the payload manifests, ``bag-info.txt``) and the metadata files
(meeting.yaml as received, each recording's technical facts, the withheld list)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pipeline.models import MediaProbe
from pipeline.stages.archive.layout import (
    BAGIT_VERSION,
    MEETING_FILE,
    WITHHELD_FILE,
    technical_path,
)
from pipeline.stages.archive.premis import (
    BAGIT,
    PIPELINE,
    PROBER,
    UNKNOWN_ORGANISER,
    ArchiveInfo,
    json_bytes,
    withheld_json,
)

if TYPE_CHECKING:
    from pipeline.config import Form, Meeting

# What bagit drops from a bag-info value so that it stays on its line.
LINE_BREAK = re.compile(r"\n|\r|(\r\n)")


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
    if info.retention:
        fields.update(info.retention.bag_info())
    return fields


def bag_info_text(fields: Mapping[str, str]) -> str:
    """bag-info.txt as bagit writes it: labels in sorted order, line breaks in a value dropped."""
    return "".join(f"{label}: {LINE_BREAK.sub('', fields[label])}\n" for label in sorted(fields))


def technical_json(relpath: str, probe: MediaProbe | str, info: ArchiveInfo) -> dict[str, Any]:
    prober = info.program(PROBER)
    probed = {"file": relpath, "program": prober.name, "version": prober.version}
    if isinstance(probe, MediaProbe):
        return {**probed, "probe": probe.to_json()}
    return {**probed, "probe": None, "problem": probe}


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
