"""Withdrawal: a person takes back their consent after the delivery (`hearing withdraw`).

The withdrawal is an input of the output folder, like a person's corrections in ``OUT/edits``: it is
kept in ``OUT/withdrawn.json`` and every later `hearing run` or `hearing render` reads it. A withdrawn
recording is treated as a recording without consent to be shown to the committee (ingest leaves it
out, as withheld), so the statement stays out of the clip, the subtitles, the transcripts, the letters
and the page whatever is run later. With ``--from-archive`` it is also withheld from the archive: the
next bag is made without its bytes, and the provenance keeps their digests and the reason.

`hearing withdraw` itself only writes the record and deletes what was made from the recording (the
work cache entries and the person's correction files, which hold their words); the delivery is then made
again by the same run `hearing render` does, all new or all old.

Pure: ``resolve``, ``check_reason``, ``added`` and ``events``. ``read``, ``write`` and ``prepare`` do the
I/O.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError, UsageError

log = logging.getLogger(__name__)

RECORD = "withdrawn.json"
KIND = "hearing-pipeline withdrawals"
VERSION = 1
MAX_REASON = 4000  # characters: a paragraph or a few; a whole letter belongs in the case file
# Control characters would change what a terminal or a log shows; line breaks and tabs are text.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


class WithdrawalRefused(UsageError):
    """The statement cannot be withdrawn as asked: the one line says why (exit 2)."""


@dataclass(frozen=True)
class Withdrawal:
    """One withdrawn recording, as ``OUT/withdrawn.json`` keeps it."""

    file: str  # its path in the meeting folder
    sha256: str  # of the recording as it was delivered
    statement: str  # its id in the delivery it was withdrawn from ("s02")
    at: str  # UTC, ISO 8601 ("2026-12-05T15:40:00Z")
    by: str  # who withdrew it (the user name on the computer)
    reason: str
    from_archive: bool = False
    archive_at: str | None = None  # when it was withdrawn from the archive, where later than ``at``
    archive_reason: str | None = None  # why, where given then
    deleted: int = 0  # work cache files deleted
    edits_deleted: tuple[str, ...] = ()  # the person's correction files deleted (paths in OUT/edits)

    @property
    def day(self) -> dt.date:
        return dt.datetime.fromisoformat(self.at.replace("Z", "+00:00")).date()

    def withheld_reason(self) -> str:
        """Why the archive leaves the recording out (withheld.json, the provenance's deaccession)."""
        when = self.archive_at or self.at
        why = self.archive_reason or self.reason
        return f"consent withdrawn on {when} by {self.by} (hearing withdraw --from-archive): {why}"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["edits_deleted"] = list(self.edits_deleted)
        return data


# ------------------------------------------------------------------------------------------ pure core


def check_reason(text: str) -> str:
    """The reason as it is kept: line breaks made plain, the ends trimmed; refused when empty, too
    long or holding control characters."""
    reason = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not reason:
        raise WithdrawalRefused("--reason is empty: say why the statement is withdrawn")
    if len(reason) > MAX_REASON:
        raise WithdrawalRefused(
            f"--reason is {len(reason)} characters long; at most {MAX_REASON} (refer to the case file)"
        )
    found = _CONTROL.search(reason)
    if found:
        raise WithdrawalRefused(
            f"--reason holds the control character U+{ord(found.group()):04X}; write it as plain text"
        )
    return reason


def _normalised(path: str) -> str:
    from pipeline.stages.ingest import normalise_entry_path

    return normalise_entry_path(path) or path


def resolve(
    given: str,
    delivered: Sequence[Mapping[str, Any]],
    earlier: Sequence[Withdrawal],
    meeting_dir: Path,
    *,
    from_archive: bool,
) -> tuple[str, str, str]:
    """(file, sha256, statement id) of the statement ``given`` names: its id in the delivery (``s02``)
    or its recording's path in the meeting folder. ``delivered``: run.json's statements. Refused with
    the known ones listed when it names none; refused when it is withdrawn already (unless it is now
    also to leave the archive)."""
    text = given.strip()
    found = next((s for s in delivered if str(s.get("id", "")).lower() == text.lower()), None)
    if found is not None:
        wanted = _normalised(str(found.get("file", "")))
    else:
        path = Path(text)
        if path.is_absolute():
            try:
                text = path.resolve().relative_to(meeting_dir.resolve()).as_posix()
            except ValueError:
                text = path.as_posix()
        wanted = _normalised(text)
        found = next((s for s in delivered if _normalised(str(s.get("file", ""))) == wanted), None)
    again = next((w for w in earlier if _normalised(w.file) == wanted), None)
    if again is not None:
        if from_archive and not again.from_archive:
            return again.file, again.sha256, again.statement
        also = "" if again.from_archive else "; add --from-archive to remove it from the archive too"
        raise WithdrawalRefused(f"{again.file} was withdrawn already, on {again.at}{also}")
    if found is None:
        known = ", ".join(f"{s.get('id')} ({s.get('file')})" for s in delivered) or "none"
        raise WithdrawalRefused(f"no statement {given!r} in the delivery; the statements are: {known}")
    return str(found["file"]), str(found.get("sha256", "")), str(found["id"])


def added(earlier: Sequence[Withdrawal], new: Withdrawal) -> tuple[Withdrawal, ...]:
    """The record with ``new``: a recording withdrawn before now also leaving the archive keeps its
    first withdrawal as it was (the archive's record of it stays the same event) and gains the
    archive's time and reason."""
    kept = []
    for one in earlier:
        if one.file == new.file:
            new = replace(one, from_archive=True, archive_at=new.at, archive_reason=new.reason)
            continue
        kept.append(one)
    return (*kept, new)


def for_ingest(withdrawals: Sequence[Withdrawal]) -> dict[str, tuple[str, str]]:
    """What ingest needs of the withdrawals: each recording's path -> (why it is left out, its SHA-256
    as delivered)."""
    return {w.file: (f"consent withdrawn on {w.at} (hearing withdraw)", w.sha256) for w in withdrawals}


def from_archive(withdrawals: Sequence[Withdrawal]) -> dict[str, str]:
    """The recordings that leave the archive, with why (withheld), also where they have left the
    meeting folder since."""
    return {w.file: w.withheld_reason() for w in withdrawals if w.from_archive}


def events(withdrawals: Sequence[Withdrawal], program: Any = None) -> list[Any]:
    """The archive's record of each withdrawal: a PREMIS redaction (the statement left the delivery,
    and what was deleted with it), by ``program`` (this pipeline). Made from the record alone, so every
    later run makes the same event and the provenance keeps it once."""
    from pipeline import __version__
    from pipeline.stages.archive.premis import PIPELINE, REDACTION, Event, Link, Software

    program = program or Software(PIPELINE, __version__)

    made = []
    for w in withdrawals:
        edits = f" and {len(w.edits_deleted)} correction file(s)" if w.edits_deleted else ""
        made.append(
            Event(
                REDACTION,
                w.at,
                program,
                f"hearing withdraw OUT {w.file} --reason TEXT",
                note=(
                    f"consent withdrawn by {w.by}; statement {w.statement} ({w.file}, sha256={w.sha256}) "
                    "left the clip, the subtitles, the transcripts, the letters and the page, and the "
                    f"delivery was made again without it; {w.deleted} work cache file(s){edits} made from "
                    f"it were deleted; reason: {w.reason}"
                ),
                sources=(Link("meeting folder", w.file),),
            )
        )
    return made


# ------------------------------------------------------------------------------------------------ I/O


def path_of(out_dir: Path) -> Path:
    return out_dir / RECORD


def read(out_dir: Path) -> tuple[Withdrawal, ...]:
    """The withdrawals of ``out_dir``; ConfigError (exit 3) for a record that cannot be read: a run
    must never deliver a withdrawn statement again because its record was damaged."""
    path = path_of(out_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):
        # No output folder yet (or a file where it should be, which the place checks refuse after).
        return ()
    except (OSError, ValueError) as error:
        raise ConfigError(path, "", f"cannot be read ({error}); restore it from a copy") from None
    if not isinstance(data, dict) or data.get("kind") != KIND or data.get("version") != VERSION:
        raise ConfigError(path, "", "is not a record of withdrawals this version of hearing-pipeline reads")
    try:
        found = tuple(
            Withdrawal(**{**item, "edits_deleted": tuple(item.get("edits_deleted", ()))})
            for item in data["withdrawn"]
        )
        for one in found:
            if not isinstance(one.file, str) or not isinstance(one.sha256, str):
                raise TypeError(f"{one.file!r}: file and sha256 must be text")
            one.day  # noqa: B018 - its time must be one
        return found
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ConfigError(path, "withdrawn", f"an entry cannot be read ({error})") from None


def write(out_dir: Path, withdrawals: Sequence[Withdrawal]) -> None:
    from pipeline.files import write_json

    write_json(
        path_of(out_dir),
        {"kind": KIND, "version": VERSION, "withdrawn": [w.to_json() for w in withdrawals]},
    )


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def remove_outputs(out_dir: Path, report: dict[str, Any]) -> list[str]:
    """The delivery, the draft, a failed delivery and the ZIP made with the withdrawn statement: they hold
    its words, so they go now rather than with the delivery made next, which may not come (a draft
    waiting for approvals, or nothing left to deliver) and would then leave the old one in place."""
    import shutil

    from pipeline.stages import deliver

    removed = []
    for place in (deliver.DELIVERY, deliver.DRAFT, deliver.FAILED_DELIVERY, deliver.STAGING_DELIVERY):
        folder = out_dir / place
        if folder.is_symlink() or folder.is_file():
            folder.unlink()
        elif folder.is_dir():
            shutil.rmtree(folder)
        else:
            continue
        removed.append(f"{place}/")
    found = report.get("delivery")
    delivery: dict[str, Any] = found if isinstance(found, dict) else {}
    name = delivery.get("name")
    zips = {out_dir / f"{name}.zip"} if isinstance(name, str) and name and "/" not in name else set()
    zip_file = delivery.get("zip")
    if isinstance(zip_file, str) and Path(zip_file).parent == out_dir:
        zips.add(Path(zip_file))
    for packed in sorted(zips):
        if packed.is_file():
            packed.unlink()
            removed.append(packed.name)
    return removed


def prepare(out_dir: Path, given: str, reason: str, *, from_archive: bool) -> Withdrawal:
    """Record the withdrawal of ``given`` in ``out_dir`` and delete what was made from its recording;
    the caller then makes the delivery again. Holds the output folder's lock while it works."""
    from pipeline import run_record
    from pipeline.cache import WorkCache
    from pipeline.out_folder import hold_lock
    from pipeline.stages.archive.premis import operator_name
    from pipeline.stages.edits import forget_statement

    text = check_reason(reason)
    report = run_record.read_in(out_dir)
    if not report or not isinstance(report.get("options"), dict):
        raise UsageError(f"{out_dir} holds no earlier run (no run.json): nothing to withdraw from")
    delivered = [s for s in report.get("statements") or [] if isinstance(s, dict)]
    with hold_lock(out_dir):
        earlier = read(out_dir)
        meeting_dir = Path(str(report["options"].get("meeting_dir", "")))
        file, sha256, statement = resolve(given, delivered, earlier, meeting_dir, from_archive=from_archive)
        # The stages of the statement made from this recording in the run on record: after an earlier
        # withdrawal, its id is another statement's there.
        ids = {s.get("id") for s in delivered if s.get("file") == file}
        stages = [s for s in report.get("stages") or [] if isinstance(s, dict) and s.get("statement") in ids]
        deleted = WorkCache.of(out_dir).forget(
            {str(s["key"]) for s in stages if s.get("key")},
            named_in=[str(s["command"]) for s in stages if s.get("command")],
            sources=[meeting_dir / file],
        )
        edits_deleted = forget_statement(out_dir / "edits", file)
        new = Withdrawal(
            file=file,
            sha256=sha256,
            statement=statement,
            at=utc_now(),
            by=operator_name(),
            reason=text,
            from_archive=from_archive,
            deleted=len(deleted),
            edits_deleted=tuple(edits_deleted),
        )
        withdrawals = added(earlier, new)
        write(out_dir, withdrawals)
        outputs = remove_outputs(out_dir, report)
    log.info(
        "withdrew %s (%s): %d cache file(s) deleted; removed until made again without it: %s",
        statement, file, len(deleted), ", ".join(outputs) or "nothing",
    )  # fmt: skip
    return next(w for w in withdrawals if w.file == file)
