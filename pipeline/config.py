"""meeting.yaml and forms: pydantic models, validated once at the edge.

Every error names the file, the field and what is allowed, and becomes exit code 3. Unknown fields are
errors: a misspelt field in a form agreed with an official must not be silently ignored. The rules of
each text field are in ``pipeline.text_fields``; the files are read by ``pipeline.strict_yaml``.
"""

from __future__ import annotations

import datetime as dt
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from pipeline.errors import ConfigError
from pipeline.models import Consent
from pipeline.retention import check_period
from pipeline.strict_yaml import read_yaml
from pipeline.text_fields import (
    EDIT_NAME_CHARS,
    EDIT_TOPIC_CHARS,
    TEMPLATE_CHARS,
    TITLE_CHARS,
    LineText,
    NameText,
    Term,
    TitleText,
    check_template,
    path_text,
    text_field,
)
from pipeline.text_fields import not_text as not_text  # the review page asks it of a person's text

BUILTIN_FORMS = ("default", "demo")
NAMING_FIELDS = ("date", "committee", "title", "place", "organiser", "form")
TITLE_FIELDS = ("title", "date", "place", "committee", "organiser")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------------------------------------- form


class TitleCard(_Strict):
    enabled: bool = True
    seconds: Annotated[float, Field(ge=0.5, le=30)] = 4.0
    text: Annotated[str, AfterValidator(text_field(TEMPLATE_CHARS, lines=True))] = (
        "Høringssvar fra borgermødet\n{title}\n{date} · {place}\nTil {committee}"
    )

    @field_validator("text")
    @classmethod
    def _known_placeholders(cls, value: str) -> str:
        return check_template(value, TITLE_FIELDS)


class StatementCards(_Strict):
    enabled: bool = True
    seconds: Annotated[float, Field(ge=0.5, le=30)] = 2.5
    show_name: bool = True


class SilenceTrim(_Strict):
    enabled: bool = True
    padding: Annotated[float, Field(ge=0, le=5)] = 0.4


class ClipForm(_Strict):
    max_duration: Annotated[float, Field(gt=0, le=86_400)] = 900
    max_statement: Annotated[float, Field(gt=0, le=86_400)] = 120
    over_length: Literal["reject", "trim", "warn"] = "trim"
    order: Literal["meeting", "file", "topic"] = "meeting"
    title_card: TitleCard = TitleCard()
    statement_cards: StatementCards = StatementCards()
    silence_trim: SilenceTrim = SilenceTrim()


class VideoForm(_Strict):
    width: Annotated[int, Field(ge=160, le=7680)] = 1920
    height: Annotated[int, Field(ge=120, le=4320)] = 1080
    fps: Annotated[float, Field(ge=1, le=120)] = 25
    codec: Literal["h264"] = "h264"
    crf: Annotated[int, Field(ge=0, le=51)] = 20
    preset: Literal[
        "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"
    ] = "veryfast"

    @field_validator("width", "height")
    @classmethod
    def _even(cls, value: int) -> int:
        # yuv420p halves the chroma planes, so odd sizes cannot be encoded.
        if value % 2:
            raise ValueError(f"must be an even number of pixels (got {value})")
        return value


class AudioForm(_Strict):
    loudness: Annotated[float, Field(ge=-70, le=-5)] = -23
    true_peak: Annotated[float, Field(ge=-20, le=0)] = -1
    sample_rate: Literal[44100, 48000] = 48000
    channels: Literal[1, 2] = 2


class SubtitleForm(_Strict):
    mode: Literal["burn", "soft", "burn+soft", "none"] = "burn"
    max_lines: Annotated[int, Field(ge=1, le=4)] = 2
    max_chars_per_line: Annotated[int, Field(ge=10, le=100)] = 42
    max_cps: Annotated[float, Field(gt=0, le=50)] = 17
    min_duration: Annotated[float, Field(gt=0, le=10)] = 0.833
    max_duration: Annotated[float, Field(gt=0, le=30)] = 7
    min_gap_frames: Annotated[int, Field(ge=0, le=25)] = 2
    font_size: Annotated[float, Field(ge=0.02, le=0.2)] = 0.05
    # Beside a clip with the subtitles burned in, a clean master (``<name>-master.mp4``): the same clip
    # without text in the picture and with the selectable track, for a player whose viewer switches the
    # captions (WCAG 2.1 SC 1.2.2). Nothing to make where nothing is burned in (``clean_master``).
    master: bool = False
    # How the fields go together (min_duration below max_duration, a gap the frame rate allows) is
    # checked by the subtitle rules themselves, when the form is loaded: see ``load_form``.

    @property
    def burns(self) -> bool:
        """Whether the subtitles are burned into the clip's picture."""
        return self.mode in ("burn", "burn+soft")

    @property
    def clean_master(self) -> bool:
        """Whether a clean master goes beside the clip: asked for, and the clip has text burned in (in
        mode soft the clip is itself clean with the track; in mode none there are no subtitles)."""
        return self.master and self.burns


class TranscriptForm(_Strict):
    formats: Annotated[list[Literal["txt", "docx", "pdf", "json"]], Field(min_length=1)] = [
        "txt", "docx", "pdf", "json",
    ]  # fmt: skip
    timecodes: bool = True
    speaker_labels: Literal["consent", "none"] = "consent"

    @field_validator("formats")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"lists a format twice: {value}")
        return value


class SpeechForm(_Strict):
    # The meeting's own words (names, places, topics, the committee; meeting.yaml's and this form's
    # vocabulary) given to the engine as its prompt. Off by default: on the accuracy benchmark it cost
    # words overall (bench/results/).
    vocabulary_prompt: bool = False
    vocabulary: Annotated[list[Term], Field(max_length=500)] = []
    # The model to transcribe with, as ``--model`` names one (which wins over it); "best-for-danish":
    # the installed catalogue model with the lowest published Danish error rate, and a run stops before
    # any work where there is none. Left out: the engine's default, the embedded base.
    model: Annotated[str, AfterValidator(path_text)] | None = None


class ConsentEntry(_Strict):
    committee: bool | None = None
    archive: bool | None = None
    name_on_screen: bool | None = None
    publish: bool | None = None

    def over(self, default: Consent) -> Consent:
        """This partial consent, with the form's default for every field not given."""
        return Consent(
            committee=default.committee if self.committee is None else self.committee,
            archive=default.archive if self.archive is None else self.archive,
            name_on_screen=default.name_on_screen if self.name_on_screen is None else self.name_on_screen,
            publish=default.publish if self.publish is None else self.publish,
        )


class DefaultConsent(_Strict):
    committee: bool = True
    archive: bool = True
    name_on_screen: bool = False
    publish: bool = False

    def as_consent(self) -> Consent:
        return Consent(**self.model_dump())


RetentionPeriod = Annotated[str, AfterValidator(check_period)]


class RetentionPeriods(_Strict):
    """``retention:`` in a form or meeting.yaml: how long each is kept, counted from the meeting's date
    (``pipeline.retention``). Left out: kept until a person removes it."""

    recordings: RetentionPeriod | None = None  # the raw recordings in the archive
    work: RetentionPeriod | None = None  # the work cache, its previews, and draft/ and failed-delivery/

    def periods(self) -> dict[str, str | None]:
        return {"recordings": self.recordings, "work": self.work}


class Form(_Strict):
    """What was agreed with the official; `hearing check` verifies a clip against it."""

    name: NameText = "default"
    agreed_with: TitleText | None = None
    committee_meeting: dt.date | None = None
    language: Annotated[str, Field(pattern=r"^[a-z]{2,3}$")] = "da"
    clip: ClipForm = ClipForm()
    video: VideoForm = VideoForm()
    audio: AudioForm = AudioForm()
    subtitles: SubtitleForm = SubtitleForm()
    transcript: TranscriptForm = TranscriptForm()
    speech: SpeechForm = SpeechForm()
    naming: TitleText = "{date}_{committee}_hoeringssvar"
    # Every statement read and approved by a person before anything reaches delivery/ (docs/design.md: true
    # in the default form). A form file that leaves it out does not require it.
    require_approval: bool = False
    default_consent: DefaultConsent = DefaultConsent()
    # The note to the participants goes with the delivery (the official sees what they were told), or
    # beside it in OUT/deltagere/ where the form says it is not for the official.
    participant_note: Literal["with_delivery", "separate"] = "with_delivery"
    # What the official agreed on keeping; it wins over meeting.yaml's (``retention.resolve``).
    retention: RetentionPeriods = RetentionPeriods()

    @field_validator("naming")
    @classmethod
    def _known_placeholders(cls, value: str) -> str:
        return check_template(value, NAMING_FIELDS)


# ------------------------------------------------------------------------------------------- meeting


class TrimEntry(_Strict):
    # Seconds into the recording; one left out is where the speech starts (or ends), as without a trim.
    start: Annotated[float, Field(ge=0)] | None = None
    end: Annotated[float, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _order(self) -> TrimEntry:
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        return self


class StatementEntry(_Strict):
    file: Annotated[str, AfterValidator(path_text)]
    speaker: NameText | None = None
    group: NameText | None = None
    topic: TitleText | None = None
    consent: ConsentEntry = ConsentEntry()
    trim: TrimEntry | None = None


class Contact(_Strict):
    """Who the participants can ask about what happens next."""

    name: NameText
    role: NameText | None = None
    email: (
        Annotated[
            str,
            AfterValidator(text_field(TITLE_CHARS)),
            Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
        ]
        | None
    ) = None
    phone: Annotated[str, AfterValidator(text_field(40)), Field(min_length=3)] | None = None


class WorkingGroup(_Strict):
    """A network or working group that came out of the meeting."""

    name: NameText
    coordinator: NameText | None = None
    meets: LineText | None = None  # where and when it meets
    costs: LineText | None = None
    costs_covered_by: NameText | None = None


class Agreement(_Strict):
    """Who does what, by when: what the meeting agreed."""

    who: NameText
    what: LineText
    by: dt.date | None = None


class FollowUp(_Strict):
    """meeting.yaml ``follow_up:``: how the meeting is followed up, for the note to the participants."""

    contact: Contact | None = None
    next_steps: Annotated[list[LineText], Field(max_length=50)] = []
    groups: Annotated[list[WorkingGroup], Field(max_length=50)] = []
    agreements: Annotated[list[Agreement], Field(max_length=100)] = []
    next_meeting: dt.date | None = None  # the next citizen meeting
    next_meeting_place: LineText | None = None


class Meeting(_Strict):
    title: TitleText | None = None
    date: dt.date | None = None
    place: TitleText | None = None
    organiser: TitleText | None = None
    committee: NameText | None = None
    # The date the committee sees the response. The form may fix it too: the form is what was agreed with
    # the official, so a different date here stops the run (``meeting_facts.committee_meeting``).
    committee_meeting: dt.date | None = None
    language: Annotated[str, Field(pattern=r"^[a-z]{2,3}$")] | None = None
    statements: list[StatementEntry] | None = None
    vocabulary: Annotated[list[Term], Field(max_length=500)] | None = None  # words the recogniser should know
    follow_up: FollowUp | None = None
    retention: RetentionPeriods | None = None  # where the form sets none; one that differs is refused


class StatementEdit(_Strict):
    """``OUT/edits/<recording>.yaml``: what a person corrected about a statement that is not a cue, and
    whether they approved its text. Every field is optional; a field left out keeps meeting.yaml's."""

    # The character rules of meeting.yaml's fields they stand in for; the lengths the review page takes.
    speaker: Annotated[str, AfterValidator(text_field(EDIT_NAME_CHARS))] | None = None
    topic: Annotated[str, AfterValidator(text_field(EDIT_TOPIC_CHARS))] | None = None
    group: Annotated[str, AfterValidator(text_field(EDIT_NAME_CHARS))] | None = None
    in_: float | None = Field(default=None, ge=0, alias="in")  # seconds into the recording
    out: float | None = Field(default=None, gt=0)
    approved: bool = False
    approved_by: Annotated[str, AfterValidator(text_field(EDIT_NAME_CHARS))] | None = None
    approved_at: dt.datetime | dt.date | None = None
    # What was approved (the pipeline writes it): any later change of text, times, in/out, speaker or
    # topic voids the approval. Left out of a hand-written approval, it is written at the next run.
    approved_digest: Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")] | None = None

    @model_validator(mode="after")
    def _in_before_out(self) -> StatementEdit:
        if self.in_ is not None and self.out is not None and self.out <= self.in_:
            raise ValueError(f"out ({self.out}) must be after in ({self.in_})")
        if self.approved and not self.approved_by:
            raise ValueError("approved: true needs approved_by (who read and approved the text)")
        return self


def load_statement_edit(path: Path) -> StatementEdit:
    return _validate(StatementEdit, read_yaml(path), path)


# ------------------------------------------------------------------------------------------- loading


def _field_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _shown(value: object, limit: int = 60) -> str:
    """A value as an error line shows it: its repr (control characters escaped), cut short."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _config_error(file: Path | str, error: ValidationError) -> ConfigError:
    lines = []
    for item in error.errors(include_url=False):
        # Unions add their member names to the location; they mean nothing to a person.
        loc = tuple(p for p in item["loc"] if not (isinstance(p, str) and p in ("float", "int", "str")))
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field (misspelt? see configs/forms/default.yaml for the allowed fields)"
        elif "input" in item and not isinstance(item["input"], dict | list):
            message += f" (got {_shown(item['input'])})"
        lines.append((_field_path(loc), message))
    first_field, first_problem = lines[0]
    problem = first_problem + "".join(f"\n{file}: {f}: {p}" for f, p in lines[1:])
    return ConfigError(file, first_field, problem)


def _validate(model: type[BaseModel], data: Any, path: Path | str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(path, "", f"must be a mapping of fields, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise _config_error(path, error) from None


def load_meeting(meeting_dir: Path) -> tuple[Meeting, Path | None]:
    """The meeting.yaml of a meeting folder, or an empty Meeting when there is none."""
    given = [
        p for p in (meeting_dir / "meeting.yaml", meeting_dir / "meeting.yml") if p.is_symlink() or p.exists()
    ]
    if not given:
        return Meeting(), None
    if len(given) > 1:
        # Reading one would silently ignore what the other says.
        raise ConfigError(given[1], "", f"{given[0].name} is there too; keep one of them")
    path = given[0]
    return _validate(Meeting, read_yaml(path), path), path


def builtin_form_path(name: str) -> Path:
    """A built-in form: shipped inside the installed package, or in configs/forms of a source checkout."""
    packaged = resources.files("pipeline").joinpath("forms", f"{name}.yaml")
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "configs" / "forms" / f"{name}.yaml"


def load_form(name_or_path: str | Path) -> tuple[Form, Path]:
    text = str(name_or_path)
    if text in BUILTIN_FORMS:
        path = builtin_form_path(text)
    else:
        path = Path(text)
        if not path.exists():
            raise ConfigError(text, "", f"no such form file; built-in forms are: {', '.join(BUILTIN_FORMS)}")
    form: Form = _validate(Form, read_yaml(path), path)
    check_rules(form, path)
    return form, path


def check_rules(form: Form, path: Path | str) -> None:
    """The form's subtitle fields as the subtitle rules read them: the one check of how they go
    together, made here at the edge so that a run never stops on them after its work."""
    from pipeline.stages.subtitles.rules import RulesError, SubtitleRules

    try:
        SubtitleRules.from_form(form)
    except RulesError as error:
        raise ConfigError(path, error.field, f"{error.problem} (got {error.value!r})", error.value) from None
