"""Ingest: find the recordings of a meeting folder, probe them and decide which statements go on.

The pure core (``check_meeting_files``, ``plan_statements``, ``usable``) works on names
and probes; ``run`` walks the folder, hashes and probes. Nothing is ever written into the meeting folder.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

from pipeline.config import Form, Meeting, StatementEntry
from pipeline.errors import ConfigError, RecordingRejected
from pipeline.files import HashCache, NotAFile, mostly_holes, name_problem, nfc, not_a_file, shown_name
from pipeline.models import AudioInfo, MediaProbe, Recording, Rejection, Statement, VideoInfo

VERSION = 1

VIDEO_EXTENSIONS = (
    ".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi", ".3gp", ".3g2", ".mts", ".m2ts", ".mpg", ".mpeg",
    ".wmv", ".flv", ".ogv",
)  # fmt: skip
SOUND_EXTENSIONS = (
    ".m4a", ".wav", ".mp3", ".aac", ".ogg", ".oga", ".opus", ".flac", ".wma", ".amr", ".caf", ".aif",
    ".aiff",
)  # fmt: skip
MEDIA_EXTENSIONS = frozenset(VIDEO_EXTENSIONS + SOUND_EXTENSIONS)
# A statement shorter than this cannot hold a sentence; a one-second "ja tak" still passes.
MIN_DURATION_MS = 500
# Telephone speech is sampled at 8 kHz; at half that little of a voice is left to hear or recognise.
MIN_SAMPLE_RATE = 4000


@dataclass(frozen=True)
class FoundFile:
    relpath: str  # POSIX, relative to the meeting folder; escaped (``files.shown_name``) when not name_ok
    problem: str | None = None  # set when the file must not be opened at all (e.g. a link leading out)
    name_ok: bool = True  # False: the name cannot be carried (not UTF-8, control characters), nor matched


@dataclass(frozen=True)
class IngestResult:
    statements: tuple[Statement, ...]
    rejections: tuple[Rejection, ...]
    recordings: tuple[Recording, ...]  # every readable recording, for the archive
    probes: dict[str, MediaProbe | str]  # each recording's probe, or why it could not be read
    all_cached: bool = False  # every probe came from the cache: nothing in the folder changed


# ------------------------------------------------------------------------------------------ pure core


def natural_key(relpath: str) -> list[object]:
    """File-name order as a person expects it: ``2.mp4`` before ``10.mp4``, case ignored."""
    return [int(part) if part.isdigit() else part.casefold() for part in re.split(r"(\d+)", relpath)]


def is_media_name(relpath: str) -> bool:
    name = PurePosixPath(relpath).name
    # Hidden files include macOS "._name.mp4" resource forks copied from a Mac: never recordings.
    return not name.startswith(".") and PurePosixPath(name).suffix.lower() in MEDIA_EXTENSIONS


def normalise_entry_path(raw: str) -> str | None:
    """A meeting.yaml ``file`` as a clean relative POSIX path, or None when it leaves the folder."""
    text = raw.replace("\\", "/")
    if text.startswith("/") or re.match(r"^[A-Za-z]:", text):
        return None
    parts: list[str] = []
    for part in text.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
            continue
        parts.append(part)
    return "/".join(parts) if parts else None


def name_index(present: Iterable[str]) -> dict[str, list[str]]:
    """The files by their name as Unicode composes it (NFC), each with every file of that name: one,
    or two and more that differ only in how their letters are encoded (``Åse`` as one character or as
    ``A`` and a ring)."""
    index: dict[str, list[str]] = {}
    for relpath in sorted(present):
        index.setdefault(nfc(relpath), []).append(relpath)
    return index


def check_meeting_files(
    meeting: Meeting, meeting_file: Path | str, present: Collection[str], *, arriving: bool = False
) -> list[tuple[int, str, StatementEntry]]:
    """Each meeting.yaml statement with the file it names (matched with Unicode normalised, so a name
    typed composed finds a file stored decomposed); ConfigError for a missing, repeated or escaping file
    (exit 3 names the field). ``arriving``: the folder is still being filled (`hearing watch`), so a
    file not there yet is left out, not an error. Where two files share a name once normalised, the
    first stands for both: ``same_names`` has already rejected each of them."""
    index = name_index(present)
    checked: list[tuple[int, str, StatementEntry]] = []
    seen: dict[str, int] = {}
    for index_no, entry in enumerate(meeting.statements or []):
        field = f"statements[{index_no}].file"
        clean = normalise_entry_path(entry.file)
        if clean is None:
            raise ConfigError(meeting_file, field, "must be a path inside the meeting folder", entry.file)
        key = nfc(clean)
        if key in seen:
            raise ConfigError(
                meeting_file,
                field,
                f"names {entry.file!r} again (already statements[{seen[key]}].file)",
                entry.file,
            )
        seen[key] = index_no
        if key not in index:
            if arriving:
                continue
            raise ConfigError(
                meeting_file, field, f"no such file in the meeting folder: {entry.file!r}", entry.file
            )
        checked.append((index_no, index[key][0], entry))
    return checked


def same_names(files: Iterable[FoundFile]) -> list[FoundFile]:
    """``files`` with each one whose name another file shares once Unicode is normalised (NFC) given
    that as its problem: which of them meeting.yaml means cannot be known, so neither is used."""
    files = list(files)
    index = name_index(f.relpath for f in files if f.name_ok)
    marked: list[FoundFile] = []
    for found in files:
        group = index.get(nfc(found.relpath), []) if found.name_ok else []
        if len(group) > 1 and found.problem is None:
            spelled = "; ".join(f"{_encoding_of(name)}: {name!a}" for name in group)
            found = replace(
                found,
                problem=f"{len(group)} files have this name, its letters encoded in different ways "
                f"({spelled}), so which one is meant cannot be known: rename all but one",
            )
        marked.append(found)
    return marked


def usable(probe: MediaProbe) -> str | None:
    """Why a probed recording cannot be a statement, or None when it can."""
    if not probe.audio:
        return "no audio stream (a statement needs sound)" if probe.video else "no audio or video stream"
    if probe.duration_ms < MIN_DURATION_MS:
        return (
            f"too short: {probe.duration_ms / 1000:.1f} s "
            f"(a statement needs at least {MIN_DURATION_MS / 1000:.1f} s)"
        )
    if not any(a.sample_rate and a.channels for a in probe.audio):
        return "audio stream cannot be decoded (no sample rate or channels)"
    problems = [audio_problem(a) for a in probe.audio]
    if all(problems):
        return next(p for p in problems if p)
    return None


def audio_problem(audio: AudioInfo) -> str | None:
    """Why one audio stream cannot carry a statement's sound, or None."""
    from pipeline.media import MAX_CHANNELS

    if not (audio.sample_rate and audio.channels):
        return "audio stream cannot be decoded (no sample rate or channels)"
    if audio.channels > MAX_CHANNELS:
        return f"{audio.channels} audio channels: at most {MAX_CHANNELS} can be mixed into one sound"
    if audio.sample_rate < MIN_SAMPLE_RATE:
        return (
            f"a sample rate of {audio.sample_rate} Hz is too low to carry speech "
            f"(at least {MIN_SAMPLE_RATE} Hz)"
        )
    return None


def speech_stream(probe: MediaProbe) -> int:
    """The audio stream to transcribe: the first usable one."""
    for audio in probe.audio:
        if audio_problem(audio) is None:
            return audio.index
    return probe.audio[0].index


def plan_statements(
    meeting: Meeting,
    meeting_file: Path | str,
    form: Form,
    files: list[FoundFile],
    recordings: dict[str, Recording],
    probes: dict[str, MediaProbe | str],
    *,
    arriving: bool = False,
    withdrawn: Mapping[str, str] | None = None,
) -> tuple[list[Statement], list[Rejection]]:
    """Statements in clip order (meeting.yaml's, then the unlisted files in file-name order) and what was
    left out. ``probes`` maps a path to its probe or to the reason it could not be read. ``withdrawn``:
    the recordings whose consent was withdrawn (`hearing withdraw`), with the reason told: left out as
    a missing consent for the committee is."""
    # Only names that are text can be matched; the others are known by their escaped form alone.
    by_name = {f.relpath: f for f in files if f.name_ok}
    listed = check_meeting_files(meeting, meeting_file, by_name, arriving=arriving)
    listed_paths = {path for _, path, _ in listed}
    entries: list[tuple[FoundFile, StatementEntry | None]] = [
        (by_name[path], entry) for _, path, entry in listed
    ]
    entries += [(f, None) for f in files if not (f.name_ok and f.relpath in listed_paths)]
    default = form.default_consent.as_consent()

    statements: list[Statement] = []
    rejections: list[Rejection] = []
    for found, entry in entries:
        relpath = found.relpath
        if withdrawn and relpath in withdrawn:
            rejections.append(Rejection(relpath, withdrawn[relpath], kind="withheld"))
            continue
        if found.problem:
            rejections.append(Rejection(relpath, found.problem))
            continue
        probe = probes.get(relpath)
        if isinstance(probe, str) or probe is None:
            rejections.append(Rejection(relpath, probe or "could not be read"))
            continue
        problem = usable(probe)
        if problem:
            rejections.append(Rejection(relpath, problem))
            continue
        consent = entry.consent.over(default) if entry else default
        if not consent.committee:
            rejections.append(Rejection(relpath, "no consent to show it to the committee", kind="withheld"))
            continue
        trim = None
        if entry and entry.trim:
            trim = (
                None if entry.trim.start is None else round(entry.trim.start * 1000),
                None if entry.trim.end is None else round(entry.trim.end * 1000),
            )
        statements.append(
            Statement(
                id=f"s{len(statements) + 1:02d}",
                recording=recordings[relpath],
                probe=probe,
                audio_stream=speech_stream(probe),
                speaker=entry.speaker if entry else None,
                group=entry.group if entry else None,
                topic=entry.topic if entry else None,
                consent=consent,
                trim_ms=trim,
            )
        )
    return statements, rejections


# ------------------------------------------------------------------------------------------------ I/O


def _encoding_of(name: str) -> str:
    import unicodedata

    if unicodedata.is_normalized("NFC", name):
        return "composed (NFC)"
    if unicodedata.is_normalized("NFD", name):
        return "decomposed (NFD)"
    return "partly decomposed"


def walk(meeting_dir: Path) -> list[FoundFile]:
    """Every media file below the folder, looked at but never opened. Links are not followed out of it,
    and what is not an ordinary file (a named pipe, a device, a socket, a folder named like a recording),
    a name that is not text, or a folder that cannot be read, is found with its problem."""
    root = meeting_dir.resolve()
    found: list[FoundFile] = []

    def unreadable(error: OSError) -> None:
        folder = Path(error.filename) if error.filename else root
        if folder == root:
            raise error
        relpath = folder.relative_to(root).as_posix() + "/"
        name_ok = name_problem(relpath) is None
        found.append(
            FoundFile(
                relpath if name_ok else shown_name(relpath),
                f"a folder that cannot be read ({(error.strerror or str(error)).lower()}): any "
                "recordings in it are left out",
                name_ok=name_ok,
            )
        )

    for folder, dirs, names in _walk(root, unreadable):
        here = Path(folder)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        # A folder (or a link to one) named like a recording is reported; what is in it is still found.
        for name in [*dirs, *names]:
            relpath = (here / name).relative_to(root).as_posix()
            if is_media_name(relpath):
                found.append(look_at(root, relpath))
    return sorted(same_names(found), key=lambda f: natural_key(f.relpath))


def _walk(root: Path, onerror: Callable[[OSError], None]) -> Iterator[tuple[str, list[str], list[str]]]:
    """os.walk without following links, but with a list instead of recursion: folders nested a
    thousand deep are walked, not a RecursionError (Python 3.11's os.walk recurses)."""
    pending = [str(root)]
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as entries:
                listed = list(entries)
        except OSError as error:
            onerror(error)
            continue
        dirs: list[str] = []
        names: list[str] = []
        for entry in listed:
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                is_dir = False
            (dirs if is_dir else names).append(entry.name)
        yield folder, dirs, names
        pending.extend(os.path.join(folder, d) for d in reversed(dirs))


def look_at(root: Path, relpath: str) -> FoundFile:
    """One name found in the folder and what is wrong with it, by ``lstat`` and ``stat`` alone."""
    bad_name = name_problem(relpath)
    if bad_name:
        return FoundFile(shown_name(relpath), bad_name, name_ok=False)
    path = root / relpath
    if path.is_symlink():
        # realpath, not resolve: a loop of links gives a path here and a clear reason below.
        target = Path(os.path.realpath(path))
        if not target.is_relative_to(root):
            return FoundFile(relpath, "a link to a file outside the meeting folder (not followed)")
    return FoundFile(relpath, not_a_file(path) or mostly_holes(path))


def run(
    meeting_dir: Path,
    meeting: Meeting,
    meeting_file: Path | None,
    form: Form,
    hashes: HashCache,
    *,
    on_file: Callable[[str], None] | None = None,
    probe_cache: Path | None = None,
    only: Collection[str] | None = None,
    withdrawn: Mapping[str, tuple[str, str]] | None = None,
) -> IngestResult:
    """The recordings of the folder (``only``: of those files, while the folder is still being filled)
    and the statements made of them. ``withdrawn``: path -> (why, its SHA-256 as delivered) of the
    recordings whose consent was withdrawn: not read again (their digest as delivered is what the
    archive needs), so that nothing of them enters the work cache."""
    from pipeline import media

    files = [f for f in walk(meeting_dir) if only is None or f.relpath in only]
    arriving = only is not None
    recordings: dict[str, Recording] = {}
    probes: dict[str, MediaProbe | str] = {}
    # Check meeting.yaml against the folder before any slow work, so a typo fails at once.
    where = meeting_file or "meeting.yaml"
    check_meeting_files(meeting, where, {f.relpath for f in files if f.name_ok}, arriving=arriving)
    probed = 0
    for found in files:
        if on_file:
            on_file(found.relpath)
        if found.problem:
            continue
        path = meeting_dir / found.relpath
        if withdrawn and found.relpath in withdrawn:
            with contextlib.suppress(OSError):
                sha256 = withdrawn[found.relpath][1]
                recordings[found.relpath] = Recording(found.relpath, path.stat().st_size, sha256)
                stored = _stored_probe(probe_cache, sha256) if probe_cache else None
                if stored is not None:
                    probes[found.relpath] = stored
            continue
        try:
            digest = hashes.sha256(path)
            recording = Recording(found.relpath, path.stat().st_size, digest)
        except NotAFile as error:
            probes[found.relpath] = error.reason
            continue
        except OSError as error:
            probes[found.relpath] = f"cannot be read ({(error.strerror or str(error)).lower()})"
            continue
        recordings[found.relpath] = recording
        stored = _stored_probe(probe_cache, recording.sha256) if probe_cache else None
        if stored is not None:
            probes[found.relpath] = stored
            continue
        probed += 1
        try:
            probes[found.relpath] = media.probe(path)
        except RecordingRejected as rejected:
            probes[found.relpath] = rejected.reason
        except NotAFile as error:
            probes[found.relpath] = error.reason  # it changed since it was hashed: not remembered
            del recordings[found.relpath]
            continue
        except OSError as error:
            probes[found.relpath] = f"cannot be read ({(error.strerror or str(error)).lower()})"
            del recordings[found.relpath]
            continue  # the system's trouble, not the file's: not remembered
        if probe_cache:
            _store_probe(probe_cache, recording.sha256, probes[found.relpath])
    statements, rejections = plan_statements(
        meeting,
        meeting_file or "meeting.yaml",
        form,
        files,
        recordings,
        probes,
        arriving=arriving,
        withdrawn={relpath: why for relpath, (why, _) in (withdrawn or {}).items()},
    )
    return IngestResult(
        tuple(statements), tuple(rejections), tuple(recordings.values()), probes, all_cached=probed == 0
    )


PROBE_VERSION = 1


def _probe_file(folder: Path, sha256: str) -> Path:
    import av

    from pipeline import cache

    # The prober's version is in the key: another FFmpeg may read the same bytes otherwise.
    key = cache.make_key("probe", PROBE_VERSION, {"recording": sha256}, tools={"pyav": av.__version__})
    return folder / f"{key}.json"


def _stored_probe(folder: Path, sha256: str) -> MediaProbe | str | None:
    """What probing a recording with this content found before: its streams, or why it is unusable."""
    from pipeline import cache

    data = cache.read_json(_probe_file(folder, sha256))
    if not isinstance(data, dict):
        return None
    try:
        if "rejected" in data:
            return str(data["rejected"])
        return probe_from_json(data["probe"])
    except (KeyError, TypeError, ValueError):
        return None


def _store_probe(folder: Path, sha256: str, probe: MediaProbe | str) -> None:
    from pipeline import cache

    cache.store_json(
        _probe_file(folder, sha256),
        {"rejected": probe} if isinstance(probe, str) else {"probe": probe.to_json()},
    )


def probe_from_json(data: dict[str, Any]) -> MediaProbe:
    video = data.get("video")
    return MediaProbe(
        format_name=str(data["format_name"]),
        duration_ms=int(data["duration_ms"]),
        video=VideoInfo(
            **{k: video[k] for k in VideoInfo.__dataclass_fields__}  # display sizes are derived
        )
        if video
        else None,
        audio=tuple(AudioInfo(**{k: a[k] for k in AudioInfo.__dataclass_fields__}) for a in data["audio"]),
    )
