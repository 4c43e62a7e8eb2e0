"""The meeting's facts as every output states them, worked out once: its title (meeting.yaml's, else the
meeting folder's name), date, place, organiser and committee, with the words that stand in for a
committee meeting.yaml does not name. The letters, the transcript, the cards, the delivery's name and page
and the archive's description all read them from one ``MeetingFacts``."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.files import folder_title
from pipeline.texts import documents as words

if TYPE_CHECKING:
    from pipeline.config import Form, Meeting


@dataclass(frozen=True)
class MeetingFacts:
    given_title: str | None  # meeting.yaml's title, as written; None: it gives none
    folder_name: str  # the meeting folder's name as text (files.folder_title): the title's stand-in
    date: dt.date | None
    place: str | None
    organiser: str | None
    committee: str | None
    committee_meeting: dt.date | None = None  # meeting.yaml's; ``committee_meeting`` says which date counts

    @classmethod
    def of(cls, meeting: Meeting, meeting_dir: Path) -> MeetingFacts:
        """From meeting.yaml and the meeting folder."""
        return cls.named(meeting, folder_title(meeting_dir))

    @classmethod
    def named(cls, meeting: Meeting, folder_name: str) -> MeetingFacts:
        """From meeting.yaml and the folder's name already made text (``files.folder_title``)."""
        return cls(
            given_title=meeting.title,
            folder_name=folder_name,
            date=meeting.date,
            place=meeting.place,
            organiser=meeting.organiser,
            committee=meeting.committee,
            committee_meeting=meeting.committee_meeting,
        )

    @property
    def title(self) -> str:
        """The title the documents show: meeting.yaml's, else the folder's name."""
        return self.given_title or self.folder_name

    @property
    def archive_title(self) -> str:
        """The title in the archive's description: meeting.yaml's, else said to be the folder's."""
        return self.given_title or words.untitled_archive(self.folder_name)

    @property
    def addressee(self) -> str:
        """The committee the response goes to, named or not ("udvalget")."""
        return self.committee or words.COMMITTEE_FALLBACK


def committee_meeting(meeting: MeetingFacts, form: Form) -> dt.date | None:
    """The date the committee sees the response, as every document names it: the form's where it fixes
    one (the form is what was agreed with the official), else meeting.yaml's; None: "the next meeting".
    A meeting.yaml date that differs from the form's is refused before any work
    (``preflight.check_committee_meeting``), so the form's winning here never hides a disagreement."""
    return form.committee_meeting or meeting.committee_meeting
