"""The archive: a BagIt 1.0 bag of the demo meeting, checked with bagit's own validator and with
`hearing verify` (in this process: it needs no process of its own); consent, provenance, reuse and the
atomic swap; the pure parts."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import bagit
import pytest

from pipeline import files, media
from pipeline.config import Form, Meeting, StatementEntry, load_form, load_meeting
from pipeline.errors import RecordingRejected
from pipeline.files import HashCache
from pipeline.meeting_facts import MeetingFacts
from pipeline.models import AudioInfo, MediaProbe, Recording
from pipeline.stages import ingest
from pipeline.stages.archive.bag import ArchiveError, ArchiveResult, build_archive, tag_manifest_text
from pipeline.stages.archive.digests import COPY_CHUNK, copy_with_digests
from pipeline.stages.archive.metadata import (
    bag_info_fields,
    bag_info_text,
    manifest_text,
    withheld_from_archive,
)
from pipeline.stages.archive.premis import (
    ArchivedFile,
    ArchiveInfo,
    Event,
    Software,
    agents_json,
    creation_event,
    event_json,
    meeting_info,
    model_software,
    operator_name,
    provenance_document,
    recording_events,
    transcription_event,
)
from pipeline.stages.archive.verify import Problem, verify_archive
from tests.conftest import REPO, hearing, tree_digest

DEMO = REPO / "samples" / "borgermoede-nordby"
ANNA = "recordings/01-anna.mp4"
MADS = "recordings/04-mads.m4a"  # committee: true, archive: false
LISE = "recordings/05-lise.mp4"  # committee: false, archive: true
FFMPEG = Software("ffmpeg", "9.0.2")
ENGINE = Software("faster-whisper", "1.1.1", role="speech engine")
MODEL = Software("base", "embedded", role="speech model", checksum="ab" * 32)
ALL_EVENT_TYPES = {
    "ingestion",
    "message digest calculation",
    "format identification",
    "validation",
    "transcription",
    "creation",
    "fixity check",
}


@dataclass(frozen=True)
class Demo:
    out: Path
    result: ArchiveResult
    recordings: tuple[Recording, ...]
    probes: dict[str, MediaProbe | str]
    withheld: dict[str, str]
    meeting_file: Path
    info: ArchiveInfo
    events: tuple[Event, ...]

    @property
    def bag(self) -> Path:
        return self.out / "archive"

    def build(self, out: Path | None = None, **changes: object) -> ArchiveResult:
        args: dict[str, object] = {
            "recordings": self.recordings,
            "probes": self.probes,
            "withheld": self.withheld,
            "meeting_file": self.meeting_file,
            "info": self.info,
            "events": self.events,
            **changes,
        }
        return build_archive(out or self.out, DEMO, **args)  # type: ignore[arg-type]


def demo_events() -> tuple[Event, ...]:
    settings = {"language": "da", "beam_size": 5, "vad": True}
    return (
        transcription_event(ANNA, "work/transcripts/a.json", ENGINE, MODEL, settings),
        transcription_event(MADS, "work/transcripts/m.json", ENGINE, MODEL, settings),
        creation_event(
            [ANNA, MADS],
            "delivery/2026-11-20_hoeringssvar.mp4",
            FFMPEG,
            "ffmpeg -f concat -safe 0 -i work/join/list.txt -c:v copy delivery/2026-11-20_hoeringssvar.mp4",
            clip_sha256="cd" * 32,
        ),
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """The demo meeting bagged once through the API the runner uses; the samples are only read."""
    before = tree_digest(DEMO)
    out = tmp_path_factory.mktemp("demo") / "out"
    meeting, meeting_file = load_meeting(DEMO)
    assert meeting_file is not None
    form, _ = load_form("demo")
    found = ingest.run(DEMO, meeting, meeting_file, form, HashCache(out / "work" / "hashes.json"))
    probes: dict[str, MediaProbe | str] = {}
    for recording in found.recordings:
        try:
            probes[recording.relpath] = media.probe(DEMO / recording.relpath)
        except RecordingRejected as rejected:
            probes[recording.relpath] = rejected.reason
    withheld = withheld_from_archive(meeting, form, [r.relpath for r in found.recordings])
    info = meeting_info(MeetingFacts.named(meeting, DEMO.name), ffmpeg_version=FFMPEG.version, engine=ENGINE)
    info = replace(info, software=(*info.software, MODEL))
    progress: list[float] = []
    result = build_archive(
        out,
        DEMO,
        found.recordings,
        probes,
        withheld,
        meeting_file,
        info,
        demo_events(),
        on_progress=progress.append,
    )
    assert tree_digest(DEMO) == before, "the meeting folder was written to"
    assert progress == sorted(progress) and progress[-1] == 1.0
    return Demo(out, result, found.recordings, probes, withheld, meeting_file, info, demo_events())


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def sha(path: Path, alg: str = "sha256") -> str:
    return hashlib.new(alg, path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------------------- the demo bag


def test_demo_bag_is_valid_for_bagit_and_for_hearing_verify(demo: Demo) -> None:
    assert demo.result.action == "built"
    bag = bagit.Bag(str(demo.bag))
    assert bag.validate() is True  # completeness and every checksum, bagit's own validator
    assert bag.version_info == (1, 0)
    assert set(bag.algorithms) == {"sha512", "sha256"}

    done = hearing("verify", demo.bag)
    assert done.exit_code == 0, done.stdout + done.stderr
    assert done.stdout.startswith("valid:")
    as_json = hearing("verify", demo.bag, "--json")
    assert as_json.exit_code == 0
    report = json.loads(as_json.stdout)
    assert report["valid"] is True and report["problems"] == [] and report["bagit_version"] == "1.0"


def test_recordings_are_copied_byte_for_byte_except_the_withheld_one(demo: Demo) -> None:
    recordings = demo.bag / "data/recordings"
    archived = sorted(p.relative_to(recordings).as_posix() for p in recordings.rglob("*") if p.is_file())
    assert MADS not in archived
    assert LISE in archived  # kept out of the clip, but consent to be archived
    assert archived == sorted(r.relpath for r in demo.recordings if r.relpath != MADS)
    for relpath in archived:
        copy = demo.bag / "data/recordings" / relpath
        assert copy.read_bytes() == (DEMO / relpath).read_bytes()
        assert copy.stat().st_mtime_ns == (DEMO / relpath).stat().st_mtime_ns
    assert (demo.bag / "data/metadata/meeting.yaml").read_bytes() == (DEMO / "meeting.yaml").read_bytes()
    assert set(demo.result.archived) == set(archived)


def test_withheld_recording_is_listed_with_its_reason(demo: Demo) -> None:
    listed = read_json(demo.bag / "data/metadata/withheld.json")["withheld"]
    assert listed == [{"file": MADS, "reason": demo.withheld[MADS]}]
    assert "consent.archive is false" in demo.withheld[MADS]
    provenance = read_json(demo.bag / "data/metadata/provenance.json")
    assert provenance["withheld"] == listed
    assert not (demo.bag / "data/metadata/technical" / f"{MADS}.json").exists()
    # Its transcription is still on record, pointing at the meeting folder, not into the bag.
    links = [
        link
        for event in provenance["events"]
        if event["eventType"] == "transcription"
        for link in event["linkingObjectIdentifier"]
        if link["linkingObjectRole"] == "source"
    ]
    assert {"meeting folder path", "bag path"} == {link["linkingObjectIdentifierType"] for link in links}
    assert any(link["linkingObjectIdentifierValue"] == MADS for link in links)


def test_bag_info_has_the_standard_and_the_meeting_labels(demo: Demo) -> None:
    info = bagit.Bag(str(demo.bag)).info
    assert info["Source-Organization"] == "Nordby Lokalråd"
    assert info["External-Description"] == "Borgermøde om trafiksikkerhed i Nordby"
    assert info["Meeting-Date"] == "2026-11-20"
    assert info["Committee"] == "Teknik- og Miljøudvalget"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", info["Bagging-Date"])
    assert info["Bag-Software-Agent"].startswith("hearing-pipeline ")
    files = [p for p in (demo.bag / "data").rglob("*") if p.is_file()]
    assert info["Payload-Oxum"] == f"{sum(p.stat().st_size for p in files)}.{len(files)}"


def test_both_manifests_list_every_payload_file_and_tag_manifests_every_tag_file(demo: Demo) -> None:
    payload = sorted(
        p.relative_to(demo.bag).as_posix() for p in (demo.bag / "data").rglob("*") if p.is_file()
    )
    for alg in ("sha512", "sha256"):
        lines = (demo.bag / f"manifest-{alg}.txt").read_text(encoding="utf-8").splitlines()
        listed = dict(reversed(line.split("  ", 1)) for line in lines)
        assert sorted(listed) == payload
        assert listed[f"data/recordings/{ANNA}"] == sha(DEMO / ANNA, alg)
        tags = (demo.bag / f"tagmanifest-{alg}.txt").read_text(encoding="utf-8")
        for tag_file in ("bagit.txt", "bag-info.txt", "manifest-sha512.txt", "manifest-sha256.txt"):
            assert f"{sha(demo.bag / tag_file, alg)} {tag_file}\n" in tags
    assert (demo.bag / "bagit.txt").read_text() == "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"


def test_provenance_has_every_event_type_and_agent(demo: Demo) -> None:
    provenance = read_json(demo.bag / "data/metadata/provenance.json")
    events = provenance["events"]
    assert {e["eventType"] for e in events} == ALL_EVENT_TYPES
    for event in events:
        assert re.fullmatch(r"[0-9a-f-]{36}", event["eventIdentifier"]["eventIdentifierValue"])
        assert event["eventDateTime"].endswith("Z")
        assert re.fullmatch(
            r'program=[^;]+; version=[^;]+; command=".+"', event["eventDetailInformation"]["eventDetail"]
        )
        assert event["eventOutcomeInformation"]["eventOutcome"] in ("success", "failure")
        assert event["linkingObjectIdentifier"]
    digests = [e for e in events if e["eventType"] == "message digest calculation"]
    assert len(digests) == 4
    assert any(
        sha(DEMO / ANNA, "sha512")
        in e["eventOutcomeInformation"]["eventOutcomeDetail"]["eventOutcomeDetailNote"]
        for e in digests
    )
    transcription = next(e for e in events if e["eventType"] == "transcription")
    detail = transcription["eventDetailInformation"]["eventDetail"]
    assert (
        "faster-whisper" in detail
        and "base" in detail
        and MODEL.checksum in detail
        and "beam_size=5" in detail
    )
    creation = next(e for e in events if e["eventType"] == "creation")
    assert "ffmpeg -f concat" in creation["eventDetailInformation"]["eventDetail"]

    agents = {a["agentType"]: a for a in provenance["agents"]}
    assert agents["organization"]["agentName"] == "Nordby Lokalråd"
    assert agents["person"]["agentName"] == operator_name()
    software = {a["agentName"]: a for a in provenance["agents"] if a["agentType"] == "software"}
    assert software["hearing-pipeline"]["agentVersion"]
    assert software["ffmpeg"]["agentVersion"] == FFMPEG.version
    assert software["faster-whisper"]["agentVersion"] == ENGINE.version
    assert MODEL.checksum in software["base"]["agentNote"]
    linked = {ref["linkingAgentIdentifierValue"] for e in events for ref in e["linkingAgentIdentifier"]}
    assert linked <= {a["agentIdentifier"]["agentIdentifierValue"] for a in provenance["agents"]}


def test_technical_metadata_is_the_probe(demo: Demo) -> None:
    technical = read_json(demo.bag / "data/metadata/technical" / f"{ANNA}.json")
    probe = demo.probes[ANNA]
    assert isinstance(probe, MediaProbe)
    assert technical["probe"] == json.loads(json.dumps(probe.to_json()))


# ------------------------------------------------------------------------------------------ verify


def flip_a_byte(bag: Path) -> str:
    path = bag / "data/recordings" / ANNA
    with path.open("r+b") as handle:
        handle.seek(1000)
        byte = handle.read(1)
        handle.seek(1000)
        handle.write(bytes([byte[0] ^ 0x01]))
    return f"changed: data/recordings/{ANNA} (sha256, sha512 differ)"


def delete_a_file(bag: Path) -> str:
    (bag / "data/metadata/withheld.json").unlink()
    return "missing: data/metadata/withheld.json"


def add_a_file(bag: Path) -> str:
    (bag / "data/recordings/recordings/06-ny.mp4").write_bytes(b"not received at the meeting")
    return "extra: data/recordings/recordings/06-ny.mp4"


@pytest.mark.parametrize("tamper", [flip_a_byte, delete_a_file, add_a_file])
def test_verify_names_the_changed_missing_or_extra_file(
    demo: Demo, tmp_path: Path, tamper: Callable[[Path], str]
) -> None:
    bag = tmp_path / "archive"
    shutil.copytree(demo.bag, bag)
    expected = tamper(bag)
    assert not bagit.Bag(str(bag)).is_valid()
    done = hearing("verify", bag)
    assert done.exit_code == 1
    assert done.stdout.splitlines() == [expected]
    assert "not valid: 1 problem(s)" in done.stderr


def test_verify_reports_every_problem_at_once_and_as_json(demo: Demo, tmp_path: Path) -> None:
    bag = tmp_path / "archive"
    shutil.copytree(demo.bag, bag)
    expected = [flip_a_byte(bag), delete_a_file(bag), add_a_file(bag)]
    (bag / "notes.txt").write_text("added beside the bag")
    done = hearing("verify", bag, "--json")
    assert done.exit_code == 1
    report = json.loads(done.stdout)
    assert report["valid"] is False
    lines = [Problem(**p).line for p in report["problems"]]
    assert sorted(lines) == sorted([*expected, "extra: notes.txt (not listed in the tag manifests)"])


def test_verify_refuses_what_is_not_a_bag(tmp_path: Path) -> None:
    done = hearing("verify", tmp_path)
    assert done.exit_code == 1
    assert "not an archive: not a BagIt bag" in done.stderr
    nowhere = hearing("verify", tmp_path / "nowhere")
    assert nowhere.exit_code == 1
    assert nowhere.stderr == f"error: {tmp_path / 'nowhere'} is not an archive: no such folder\n"


def test_verify_accepts_the_output_folder(demo: Demo) -> None:
    assert verify_archive(demo.out).valid


# ------------------------------------------------------------------------- reuse, refresh, the swap


def copy_of(demo: Demo, tmp_path: Path) -> Path:
    out = tmp_path / "out"
    shutil.copytree(demo.out, out)
    return out


def test_unchanged_inputs_leave_the_bag_alone(demo: Demo, tmp_path: Path) -> None:
    out = copy_of(demo, tmp_path)
    before = tree_digest(out / "archive")
    later_events = tuple(replace(e, identifier="x", time="2030-01-01T00:00:00Z") for e in demo_events())
    assert demo.build(out, events=later_events).action == "reused"
    assert tree_digest(out / "archive") == before


def test_new_events_refresh_the_provenance_without_copying(demo: Demo, tmp_path: Path) -> None:
    out = copy_of(demo, tmp_path)
    anna = out / "archive/data/recordings" / ANNA
    inode = anna.stat().st_ino
    old = read_json(out / "archive/data/metadata/provenance.json")["events"]
    rerender = creation_event([ANNA], "delivery/ny.mp4", Software("ffmpeg", "9.1"), "ffmpeg -i x ny.mp4")
    result = demo.build(out, events=(*demo_events(), rerender))
    assert result.action == "refreshed"
    assert anna.stat().st_ino == inode  # the same file, linked into the new bag
    events = read_json(out / "archive/data/metadata/provenance.json")["events"]
    assert events[: len(old)] == old and len(events) == len(old) + 1
    assert bagit.Bag(str(out / "archive")).validate()
    assert not list((out / "work").glob("archive-*"))


def test_making_a_bag_never_moves_the_process_to_another_folder(
    demo: Demo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Other threads of a run (work ahead, the review server) resolve relative paths meanwhile.
    def moved(path: object) -> None:
        raise AssertionError(f"the working directory was changed to {path}")

    monkeypatch.setattr(os, "chdir", moved)
    out = copy_of(demo, tmp_path)
    later = creation_event([ANNA], "delivery/ny.mp4", FFMPEG, "ffmpeg -i x ny.mp4")
    assert demo.build(out, events=(*demo_events(), later)).action == "refreshed"
    assert demo.build(out, withheld={**demo.withheld, LISE: "withdrawn"}).action == "built"
    assert verify_archive(out / "archive").valid


def test_bag_info_and_tag_manifests_are_the_bytes_bagit_writes(demo: Demo, tmp_path: Path) -> None:
    bag = tmp_path / "bag"
    shutil.copytree(demo.bag, bag)
    assert bag_info_text(dict(bagit.Bag(str(bag)).info)) == (bag / "bag-info.txt").read_text("utf-8")
    # A tag folder beside data/ (RFC 8493 allows them) and a value with every kind of line break.
    (bag / "notes/inner").mkdir(parents=True)
    (bag / "notes/inner/ærø 50%.txt").write_bytes(b"a note\r\n")
    (bag / "notes/tagmanifest-x.txt").write_bytes(b"not a tag manifest of the bag")
    fields = {
        **bagit.Bag(str(bag)).info,
        "External-Description": "one\r\ntwo\rthree\nfour æøå 😀 %0A",
        "A-Label": "first in sorted order",
    }
    cwd = os.getcwd()
    saved = bagit.Bag(str(bag))
    saved.info = fields
    saved.save()
    os.chdir(cwd)
    assert (bag / "bag-info.txt").read_bytes() == bag_info_text(fields).encode("utf-8")
    for alg in ("sha512", "sha256"):
        written = (bag / f"tagmanifest-{alg}.txt").read_bytes()
        assert written == tag_manifest_text(bag, alg).encode("utf-8")
        assert b"notes/inner/\xc3\xa6r\xc3\xb8 50%.txt" in written and b"notes/tagmanifest-x" not in written


def test_an_edited_provenance_is_not_carried_into_a_new_bag(demo: Demo, tmp_path: Path) -> None:
    out = copy_of(demo, tmp_path)
    path = out / "archive/data/metadata/provenance.json"
    edited = read_json(path)
    edited["events"][0]["eventDateTime"] = "1999-01-01T00:00:00Z"
    path.write_text(json.dumps(edited), encoding="utf-8")
    rerender = creation_event([ANNA], "delivery/ny.mp4", FFMPEG, "ffmpeg -i x ny.mp4")
    assert demo.build(out, events=(rerender,)).action == "built"
    assert "1999" not in path.read_text(encoding="utf-8")
    assert verify_archive(out / "archive").valid


def test_a_changed_withheld_set_rebuilds_the_bag(demo: Demo, tmp_path: Path) -> None:
    out = copy_of(demo, tmp_path)
    withheld = {**demo.withheld, ANNA: "no consent to archive it (withdrawn)"}
    result = demo.build(out, withheld=withheld)
    assert result.action == "built"
    assert not (out / "archive/data/recordings" / ANNA).exists()
    assert bagit.Bag(str(out / "archive")).validate()


def test_a_failed_build_keeps_the_previous_archive(demo: Demo, tmp_path: Path) -> None:
    out = copy_of(demo, tmp_path)
    before = tree_digest(out / "archive")
    # Ingest saw other bytes than the copy reads: the recording changed during the run.
    changed = tuple(replace(r, sha256="0" * 64) if r.relpath == ANNA else r for r in demo.recordings)
    with pytest.raises(ArchiveError, match=r"01-anna\.mp4: changed since it was read"):
        demo.build(out, recordings=changed)
    assert tree_digest(out / "archive") == before
    assert not list((out / "work").glob("archive-*"))


def test_swap_by_two_renames_where_an_exchange_is_not_possible(
    demo: Demo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "_exchange", lambda a, b: False)
    out = copy_of(demo, tmp_path)
    assert demo.build(out, withheld={**demo.withheld, LISE: "withdrawn"}).action == "built"
    assert verify_archive(out / "archive").valid
    assert not list((out / "work").glob("archive-*"))


def test_a_run_stopped_in_the_middle_of_the_swap_gets_the_old_archive_back(
    demo: Demo, tmp_path: Path
) -> None:
    out = copy_of(demo, tmp_path)
    before = tree_digest(out / "archive")
    os.rename(out / "archive", out / "work/archive-old-dead1234")
    (out / "work/archive-staging-dead5678/data").mkdir(parents=True)
    assert demo.build(out).action == "reused"
    assert tree_digest(out / "archive") == before
    assert not list((out / "work").glob("archive-*"))


def test_copy_hashes_every_byte_while_copying(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    data = os.urandom(1000) * ((2 * COPY_CHUNK) // 1000 + 7)
    source = tmp_path / "big.mp4"
    source.write_bytes(data)
    seen: list[int] = []
    with ThreadPoolExecutor(1) as pool:
        size, sha512, sha256 = copy_with_digests(source, tmp_path / "a/b/copy.mp4", pool, seen.append)
    assert (size, sha512, sha256) == (
        len(data),
        hashlib.sha512(data).hexdigest(),
        hashlib.sha256(data).hexdigest(),
    )
    assert (tmp_path / "a/b/copy.mp4").read_bytes() == data
    assert sum(seen) == len(data) and len(seen) == 3


# ------------------------------------------------------------------------------------ the pure core

INFO = ArchiveInfo(
    organiser="Nordby Lokalråd",
    title="Borgermøde",
    meeting_date=dt.date(2026, 11, 20),
    committee="Teknik- og Miljøudvalget",
    operator="organiser",
    software=(
        Software("hearing-pipeline", "0.1.0"),
        Software("bagit-python", "1.9.0"),
        Software("PyAV", "18.1.0"),
    ),
)
FILE = ArchivedFile("recordings/a.mp4", 1234, "5" * 128, "2" * 64)
PROBE = MediaProbe("mov,mp4", 20_000, None, (AudioInfo(0, "aac", 48000, 2, "stereo", 20_000),))


def test_withheld_from_archive_follows_meeting_yaml_then_the_forms_default() -> None:
    meeting = Meeting(
        statements=[
            StatementEntry(file="./a.mp4", consent={"archive": False}),
            StatementEntry(file="b.mp4", consent={"committee": False}),
        ]
    )
    assert withheld_from_archive(meeting, Form(), ["a.mp4", "b.mp4", "c.mp4"]) == {
        "a.mp4": "no consent to archive it (meeting.yaml: consent.archive is false)"
    }
    strict = Form(default_consent={"archive": False})
    withheld = withheld_from_archive(meeting, strict, ["a.mp4", "b.mp4", "c.mp4"])
    assert sorted(withheld) == ["a.mp4", "b.mp4", "c.mp4"]
    assert "default consent" in withheld["c.mp4"]


def test_manifest_lines_are_sorted_with_two_spaces_and_encoded_line_breaks() -> None:
    text = manifest_text({"data/b.mp4": "bb", "data/a\nx.mp4": "aa", "data/50% ærø.mov": "cc"})
    assert text == "cc  data/50% ærø.mov\naa  data/a%0Ax.mp4\nbb  data/b.mp4\n"


def test_bag_info_fields() -> None:
    fields = bag_info_fields(
        INFO, payload_bytes=1000, payload_files=3, archived=2, withheld=1, bagging_date=dt.date(2026, 11, 21)
    )
    assert fields["Source-Organization"] == "Nordby Lokalråd"
    assert fields["External-Description"] == "Borgermøde"
    assert fields["Bagging-Date"] == "2026-11-21"
    assert fields["Payload-Oxum"] == "1000.3"
    assert fields["Bag-Software-Agent"] == "hearing-pipeline 0.1.0 (bag written with bagit-python 1.9.0)"
    assert fields["Meeting-Date"] == "2026-11-20" and fields["Committee"] == "Teknik- og Miljøudvalget"
    anonymous = replace(INFO, organiser=None, meeting_date=None, committee=None)
    fields = bag_info_fields(
        anonymous, payload_bytes=0, payload_files=0, archived=0, withheld=0, bagging_date=dt.date(2026, 1, 1)
    )
    assert fields["Source-Organization"].startswith("unknown")
    assert "Meeting-Date" not in fields and "Committee" not in fields


def test_event_detail_quotes_the_command() -> None:
    event = Event("creation", "2026-11-21T10:00:00Z", FFMPEG, 'ffmpeg -vf "subtitles=a.srt" out.mp4')
    assert event.detail == 'program=ffmpeg; version=9.0.2; command="ffmpeg -vf \\"subtitles=a.srt\\" out.mp4"'


def test_recording_events_record_digests_and_a_failed_probe() -> None:
    events = recording_events(FILE, PROBE, "too short: 0.2 s", INFO, "2026-11-21T10:00:00Z")
    assert [e.type for e in events] == [
        "ingestion",
        "message digest calculation",
        "fixity check",
        "format identification",
        "validation",
    ]
    assert FILE.sha512 in events[1].note and FILE.sha256 in events[1].note
    assert "not usable as a statement: too short" in events[4].note
    assert events[3].program.name == "PyAV" and events[0].program.name == "hearing-pipeline"
    failed = recording_events(FILE, "not a media file", None, INFO, "2026-11-21T10:00:00Z")
    assert [(e.outcome, e.note) for e in failed[3:]] == [("failure", "not a media file")] * 2
    assert len(recording_events(FILE, None, None, INFO, "t")) == 3


def test_links_point_into_the_bag_only_for_archived_recordings() -> None:
    event = creation_event(["recordings/a.mp4", "recordings/b.mp4"], "delivery/x.mp4", FFMPEG, "ffmpeg")
    links = event_json(event, INFO, {"recordings/a.mp4"})["linkingObjectIdentifier"]
    assert [
        (link["linkingObjectIdentifierType"], link["linkingObjectIdentifierValue"]) for link in links
    ] == [
        ("bag path", "data/recordings/recordings/a.mp4"),
        ("meeting folder path", "recordings/b.mp4"),
        ("output folder path", "delivery/x.mp4"),
    ]


def test_provenance_is_a_log_new_events_are_added_once() -> None:
    first = provenance_document(INFO, [FILE], {FILE.relpath: PROBE}, {}, demo_events())
    again = [replace(e, identifier="other", time="2030-01-01T00:00:00Z") for e in demo_events()]
    assert provenance_document(INFO, [FILE], {}, {}, again, first)["events"] == first["events"]
    later = Event("creation", "2030-01-01T00:00:00Z", Software("ffmpeg", "9.1"), "ffmpeg -i x y.mp4")
    merged = provenance_document(INFO, [FILE], {}, {}, [later], first)
    assert merged["events"][:-1] == first["events"] and merged["events"][-1]["eventType"] == "creation"
    names = [a["agentIdentifier"]["agentIdentifierValue"] for a in merged["agents"]]
    assert "software:ffmpeg@9.1" in names and len(names) == len(set(names))


def test_model_agent_carries_its_checksum() -> None:
    from pipeline.engines.base import ModelInfo

    model = model_software(ModelInfo("base", "embedded", "/models/base", "ef" * 32))
    agent = agents_json(INFO, [transcription_event("a.mp4", "t.json", ENGINE, model, {})])
    software = {a["agentName"]: a for a in agent if a["agentType"] == "software"}
    assert software["base"]["agentNote"] == f"speech model; sha256={'ef' * 32}"
    assert software["faster-whisper"]["agentVersion"] == "1.1.1"


def test_bytes_that_pass_for_a_raw_stream_are_rejected_and_still_archived(tmp_path: Path) -> None:
    # These bytes pass for a raw VVC stream that then cannot seek (EPERM): a reason to reject the
    # file, never an error of the system that would drop it from the archive.
    import random

    meeting_dir = tmp_path / "meeting"
    meeting_dir.mkdir()
    (meeting_dir / "02-stor.mp4").write_bytes(random.Random(6916).randbytes(32768))
    found = ingest.run(meeting_dir, Meeting(), None, Form(), HashCache(tmp_path / "hashes.json"))
    assert [r.relpath for r in found.recordings] == ["02-stor.mp4"]
    assert "02-stor.mp4" in {r.relpath for r in found.rejections}
