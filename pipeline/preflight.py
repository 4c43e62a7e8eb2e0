"""The checks a run makes before any work, that a dry run makes too: the places (the meeting folder and
the output folder, and how they stand to each other), the spoken language and the committee meeting's
date."""

from __future__ import annotations

from pathlib import Path

from pipeline import engines, retention
from pipeline.config import Form, Meeting
from pipeline.errors import ConfigError, UsageError
from pipeline.files import not_utf8, shown_name


def check_places(given: Path, out_dir: Path) -> Path:
    """The meeting folder ``given`` (resolved), once it and the output folder are usable together."""
    meeting_dir = given.resolve()
    for what, path in (("the meeting folder", meeting_dir), ("--out", out_dir)):
        # Every record, manifest and ffmpeg command names these paths as UTF-8 text. (A recording
        # whose own name is not UTF-8 is rejected alone; these carry every statement.)
        if not_utf8(str(path)):
            raise UsageError(f"{what} {shown_name(str(path))}: its name is not valid UTF-8: rename it")
    if not meeting_dir.is_dir():
        raise UsageError(f"{given}: not a folder")
    if out_dir == meeting_dir or out_dir.is_relative_to(meeting_dir):
        raise UsageError(
            f"--out {out_dir} is inside the meeting folder, which is never written to; "
            "choose a folder outside it"
        )
    if meeting_dir.is_relative_to(out_dir):
        # A run tidies its output folder (half-written files, an old delivery): never the meeting's.
        raise UsageError(
            f"--out {out_dir} contains the meeting folder, which is never written to; "
            "choose a folder beside it"
        )
    return meeting_dir


def spoken_language(
    given: str | None, form: Form, meeting: Meeting, *, meeting_file: Path | None, form_where: Path | str
) -> str:
    """The spoken language (``--language`` as ``given``, else meeting.yaml, else the form). Each one
    given is checked against what the engine knows, naming where it was set, even where another
    overrides it: the next run may not pass the same option."""
    known = engines.known_languages()
    allowed = "a language code Whisper knows (da, en, de, sv, no, ...)"
    if given is not None and given not in known:
        raise UsageError(f"--language {given}: not {allowed}")
    if meeting.language is not None and meeting.language not in known:
        raise ConfigError(
            meeting_file or "meeting.yaml", "language", f"{meeting.language!r} is not {allowed}"
        )
    if form.language not in known:
        raise ConfigError(form_where, "language", f"{form.language!r} is not {allowed}")
    return given or meeting.language or form.language


def check_committee_meeting(
    form: Form, meeting: Meeting, *, meeting_file: Path | None, form_where: Path | str
) -> None:
    """meeting.yaml's ``committee_meeting`` where the form fixes another date: refused, since the documents
    would otherwise promise the committee a date one of the two did not mean (the form's wins where both
    agree: ``meeting_facts.committee_meeting``)."""
    given, agreed = meeting.committee_meeting, form.committee_meeting
    if given is not None and agreed is not None and given != agreed:
        raise ConfigError(
            meeting_file or "meeting.yaml",
            "committee_meeting",
            f"{given.isoformat()} differs from the date agreed with the official in the form "
            f"({form_where}: committee_meeting: {agreed.isoformat()}); remove it from meeting.yaml or ask "
            "the official for a form with the new date",
        )


def check_meeting(
    given_language: str | None,
    form: Form,
    meeting: Meeting,
    *,
    meeting_file: Path | None,
    form_where: Path | str,
    out_dir: Path,
) -> tuple[str, retention.Retention | None]:
    """What meeting.yaml and the form say together, checked before any work: the spoken language
    (``spoken_language``), the committee meeting's date, and the retention dates the archive will record
    (a period given twice and differing is exit 3)."""
    from pipeline.stages import archive

    language = spoken_language(
        given_language, form, meeting, meeting_file=meeting_file, form_where=form_where
    )
    check_committee_meeting(form, meeting, meeting_file=meeting_file, form_where=form_where)
    kept = retention.of_run(
        form,
        meeting,
        form_where=form_where,
        meeting_file=meeting_file,
        first_archived=archive.first_archived(out_dir),
    )
    return language, kept
