"""meeting.yaml and forms: pydantic models, validated once at the edge.

Every error names the file, the field and what is allowed, and becomes exit code 3. Unknown fields are
errors: a misspelt field in a form agreed with an official must not be silently ignored.
"""

from __future__ import annotations

import datetime as dt
import string
import unicodedata
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
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

BUILTIN_FORMS = ("default", "demo")
NAMING_FIELDS = ("date", "committee", "title", "place", "organiser", "form")
TITLE_FIELDS = ("title", "date", "place", "committee", "organiser")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------------------------------------- text
#
# Every text a person writes in meeting.yaml, a form or an edits file lands on cards, in subtitles, file
# names, documents and metadata, each with its own limits. So each field has one rule, checked here at
# the edge (docs/design.md, "Text fields"): normalised to NFC, surrounding spaces dropped (one-line
# fields), not blank, at most so many characters, and no character that is not text: control characters
# (a newline only where the field has lines), lone surrogates, line and paragraph separators, the bidi
# controls that can make a name read as another, and Unicode's noncharacters.

_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def not_text(char: str, *, lines: bool) -> str | None:
    """Why ``char`` cannot stand in a text field, or None."""
    point = ord(char)
    category = unicodedata.category(char)
    if category == "Cs":
        return "a lone surrogate, which is not a character (a damaged or mis-converted text)"
    if char == "\n":
        return None if lines else "a line break (this field is one line)"
    if category == "Cc":
        return "a control character"
    if category in ("Zl", "Zp"):
        return "a line or paragraph separator" + ("" if lines else " (this field is one line)")
    if char in _BIDI_CONTROLS:
        return "a bidirectional control character, which can make the text read as something else"
    if 0xFDD0 <= point <= 0xFDEF or (point & 0xFFFE) == 0xFFFE:
        return "a Unicode noncharacter"
    return None


def _only_text(value: str, *, lines: bool) -> None:
    for index, char in enumerate(value):
        why = not_text(char, lines=lines)
        if why is not None:
            raise ValueError(f"contains {why}: U+{ord(char):04X} at character {index + 1}")


def clean_text(value: str, *, limit: int, lines: bool = False) -> str:
    """``value`` as a text field keeps it (NFC; a one-line field without surrounding spaces), or a
    ValueError saying what breaks the field's rule (pydantic names the field)."""
    _only_text(value, lines=lines)
    text = unicodedata.normalize("NFC", value)
    if not lines:
        text = text.strip()
    if not text.strip():
        raise ValueError("is empty; leave the field out instead")
    if len(text) > limit:
        raise ValueError(f"is {len(text)} characters long; at most {limit} are allowed")
    return text


def _text(limit: int, *, lines: bool = False) -> Callable[[str], str]:
    def check(value: str) -> str:
        return clean_text(value, limit=limit, lines=lines)

    return check


# The limits (docs/design.md): a name fits a card line and a file name; a title a card; a line a sentence.
NAME_CHARS = 100
TITLE_CHARS = 200
LINE_CHARS = 1000
TEMPLATE_CHARS = 1000
PATH_CHARS = 1000
# A person's corrections in edits/ (and on the review page, pipeline/review/) allow longer ones.
EDIT_NAME_CHARS = 200
EDIT_TOPIC_CHARS = 500

NameText = Annotated[str, AfterValidator(_text(NAME_CHARS))]
TitleText = Annotated[str, AfterValidator(_text(TITLE_CHARS))]
LineText = Annotated[str, AfterValidator(_text(LINE_CHARS))]
Term = Annotated[str, AfterValidator(_text(NAME_CHARS))]


def check_template(value: str, allowed: tuple[str, ...]) -> str:
    """A str.format template whose placeholders are all in ``allowed``."""
    try:
        fields = [
            (name, spec, conv) for _, name, spec, conv in string.Formatter().parse(value) if name is not None
        ]
    except ValueError as error:
        raise ValueError(f"is not a valid template ({error})") from None
    unknown = [name for name, _, _ in fields if name not in allowed]
    if unknown:
        raise ValueError(f"unknown placeholder {{{unknown[0]}}}; allowed: {', '.join(allowed)}")
    # Every value is filled in as text, so a format ("{date:%Y}") or conversion ("{title!r}") would only
    # fail once the run has done its work.
    shaped = next(((name, spec, conv) for name, spec, conv in fields if spec or conv), None)
    if shaped is not None:
        name, spec, conv = shaped
        written = "{" + name + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "") + "}"
        raise ValueError(
            f"placeholder {written} has a format; write {{{name}}} (allowed: {', '.join(allowed)})"
        )
    try:
        value.format(**dict.fromkeys(allowed, "x"))
    except (ValueError, KeyError, IndexError) as error:
        raise ValueError(f"is not a valid template ({error})") from None
    return value


# ---------------------------------------------------------------------------------------------- form


class TitleCard(_Strict):
    enabled: bool = True
    seconds: Annotated[float, Field(ge=0.5, le=30)] = 4.0
    text: Annotated[str, AfterValidator(_text(TEMPLATE_CHARS, lines=True))] = (
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
    # How the fields go together (min_duration below max_duration, a gap the frame rate allows) is
    # checked by the subtitle rules themselves, when the form is loaded: see ``load_form``.


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


def _path_text(value: str) -> str:
    # Matched against the names on disk as written (pipeline/stages/ingest.py), so neither normalised nor
    # stripped, and a character a file name may hold (a line break, even) is allowed: the organiser must
    # be able to name any recording to give its consent. What no path can hold is refused.
    for index, char in enumerate(value):
        if char == "\0" or unicodedata.category(char) == "Cs":
            why = "a NUL character" if char == "\0" else "a lone surrogate, which is not a character"
            raise ValueError(f"contains {why}: U+{ord(char):04X} at character {index + 1}")
    if not value.strip():
        raise ValueError("is empty")
    if len(value) > PATH_CHARS:
        raise ValueError(f"is {len(value)} characters long; at most {PATH_CHARS} are allowed")
    return value


class StatementEntry(_Strict):
    file: Annotated[str, AfterValidator(_path_text)]
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
            AfterValidator(_text(TITLE_CHARS)),
            Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
        ]
        | None
    ) = None
    phone: Annotated[str, AfterValidator(_text(40)), Field(min_length=3)] | None = None


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
    language: Annotated[str, Field(pattern=r"^[a-z]{2,3}$")] | None = None
    statements: list[StatementEntry] | None = None
    vocabulary: Annotated[list[Term], Field(max_length=500)] | None = None  # words the recogniser should know
    follow_up: FollowUp | None = None


class StatementEdit(_Strict):
    """``OUT/edits/<recording>.yaml``: what a person corrected about a statement that is not a cue, and
    whether they approved its text. Every field is optional; a field left out keeps meeting.yaml's."""

    # The character rules of meeting.yaml's fields they stand in for; the lengths the review page takes.
    speaker: Annotated[str, AfterValidator(_text(EDIT_NAME_CHARS))] | None = None
    topic: Annotated[str, AfterValidator(_text(EDIT_TOPIC_CHARS))] | None = None
    group: Annotated[str, AfterValidator(_text(EDIT_NAME_CHARS))] | None = None
    in_: float | None = Field(default=None, ge=0, alias="in")  # seconds into the recording
    out: float | None = Field(default=None, gt=0)
    approved: bool = False
    approved_by: Annotated[str, AfterValidator(_text(EDIT_NAME_CHARS))] | None = None
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


# A meeting.yaml with hundreds of statements is some 100 kB; a form a few kB.
MAX_YAML_BYTES = 4 * 1024 * 1024
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Refused(Exception):
    """A YAML construct a file a person writes may not use; carries where it is."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(problem)
        self.field = field
        self.problem = problem


# The tags a person may write to say what a plain value is ("phone: !!str 12345678"); any other (a
# Python object, !!binary, !!set, a tag of its own) is refused, never turned into something else.
_PLAIN_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "seq", "map", "timestamp")
)


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader without the constructs that let a file say one thing and mean another:
    tags other than the plain ones, aliases (``*name``, which also make the small files that expand
    to gigabytes) and merge keys (``<<``, whose keys are silently overridden). Duplicate keys are
    found by ``_duplicate_keys`` on the composed nodes, where their lines are known."""

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event = self.peek_event()
        mark = event.start_mark
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(
                "", f"line {mark.line + 1}: an alias (*name) is not allowed; write the value out in full"
            )
        tag = getattr(event, "tag", None)
        if tag not in (None, "!") and tag not in _PLAIN_TAGS:
            raise _Refused(
                "",
                f"not valid YAML at line {mark.line + 1}, column {mark.column + 1}: the tag {tag} is not "
                "allowed; write the value as plain text",
            )
        return super().compose_node(parent, index)


def _key_text(key: object) -> str:
    return key if isinstance(key, str) else repr(key)


def _duplicate_keys(loader: _StrictLoader, root: yaml.Node) -> None:
    """Refuse a key given twice in one mapping, at any depth: YAML would keep the last one silently
    (a later ``consent: {committee: true}`` undoing an earlier ``false``). Names the key and both lines."""
    todo: list[tuple[yaml.Node, str]] = [(root, "")]
    while todo:
        node, where = todo.pop()
        if isinstance(node, yaml.SequenceNode):
            todo += [(item, f"{where}[{i}]") for i, item in enumerate(node.value)]
        elif isinstance(node, yaml.MappingNode):
            seen: dict[object, yaml.Node] = {}
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE_TAG:
                    line = key_node.start_mark.line + 1
                    raise _Refused(where, f"line {line}: a merge key (<<) is not allowed; write the keys out")
                if not isinstance(key_node, yaml.ScalarNode):
                    continue  # a list or mapping as a key: the models refuse it by name
                key = loader.construct_object(key_node)
                field = f"{where}.{_key_text(key)}" if where else _key_text(key)
                first = seen.setdefault(key, key_node)
                if first is not key_node:
                    a, b = first.start_mark, key_node.start_mark
                    places = (
                        f"at line {a.line + 1} and at line {b.line + 1}"
                        if a.line != b.line
                        else f"at line {a.line + 1}, columns {a.column + 1} and {b.column + 1}"
                    )
                    raise _Refused(
                        field,
                        f"given twice, {places}; a field may appear only once (YAML would silently "
                        "keep the last one)",
                    )
                todo.append((value_node, field))


def read_yaml(path: Path) -> Any:
    """A YAML file a person wrote (meeting.yaml, a form, an edits file), read strictly: a regular file
    of UTF-8 text (a byte-order mark allowed), at most MAX_YAML_BYTES, one document, no object tags,
    aliases, merge keys or duplicate keys. Every refusal is a ConfigError naming the file."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ConfigError(path, "", "file not found") from None
    except OSError as error:
        raise ConfigError(path, "", f"cannot be read ({error.strerror})") from None
    import stat

    # A FIFO or a device would block the read (or never end); only a plain file is read.
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(path, "", "is not a regular file")
    if info.st_size > MAX_YAML_BYTES:
        raise ConfigError(path, "", f"is {info.st_size} bytes; at most {MAX_YAML_BYTES} are read")
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ConfigError(path, "", f"cannot be read ({error.strerror})") from None
    try:
        text = raw[: MAX_YAML_BYTES + 1].decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ConfigError(path, "", f"not UTF-8 text (line {line}); save it as UTF-8") from None
    loader: _StrictLoader | None = None
    try:
        # The reader already refuses characters YAML does not allow in a file (raw control characters).
        loader = _StrictLoader(text)
        node = loader.get_single_node()
        if node is None:
            return None
        _duplicate_keys(loader, node)
        return loader.construct_document(node)
    except _Refused as refused:
        raise ConfigError(path, refused.field, refused.problem) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        if isinstance(error, yaml.reader.ReaderError):
            where = f" at line {text[: error.position].count(chr(10)) + 1}"
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(path, "", f"not valid YAML{where}: {problem}") from None
    except RecursionError:
        raise ConfigError(path, "", "nested too deeply to be a meeting.yaml, form or edits file") from None
    finally:
        if loader is not None:
            loader.dispose()


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
