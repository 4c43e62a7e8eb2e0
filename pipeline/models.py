"""Frozen data passed between stages. Media times are integer milliseconds throughout."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Consent:
    committee: bool = True
    archive: bool = True
    name_on_screen: bool = False
    publish: bool = False


@dataclass(frozen=True)
class VideoInfo:
    index: int
    codec: str
    width: int  # stored pixels
    height: int
    rotation: int  # degrees clockwise the picture must be turned to display upright: 0, 90, 180, 270
    fps: float  # average frame rate
    variable_frame_rate: bool
    pix_fmt: str
    sar: str  # sample aspect ratio "num:den"

    @property
    def display_width(self) -> int:
        return self.height if self.rotation in (90, 270) else self.width

    @property
    def display_height(self) -> int:
        return self.width if self.rotation in (90, 270) else self.height


@dataclass(frozen=True)
class AudioInfo:
    index: int
    codec: str
    sample_rate: int
    channels: int
    layout: str
    duration_ms: int | None


@dataclass(frozen=True)
class MediaProbe:
    format_name: str
    duration_ms: int
    video: VideoInfo | None
    audio: tuple[AudioInfo, ...]

    def to_json(self) -> dict[str, Any]:
        from dataclasses import asdict

        data = asdict(self)
        if self.video is not None:
            data["video"]["display_width"] = self.video.display_width
            data["video"]["display_height"] = self.video.display_height
        return data


@dataclass(frozen=True)
class Recording:
    """One file found in the meeting folder, as received."""

    relpath: str  # POSIX path relative to the meeting folder
    size: int
    sha256: str


@dataclass(frozen=True)
class Statement:
    """A usable recording with what meeting.yaml (or the form's defaults) says about it."""

    id: str  # "s01", "s02", ... in clip order
    recording: Recording
    probe: MediaProbe
    audio_stream: int  # index of the audio stream used for speech
    speaker: str | None
    group: str | None
    topic: str | None
    consent: Consent
    # Manual in and out points (meeting.yaml's trim, a person's in/out); None in either: where the speech is
    trim_ms: tuple[int | None, int | None] | None

    @property
    def sound_only(self) -> bool:
        """A sound recording (no picture): shown over its card, counted as a "lydindlæg"."""
        return self.probe.video is None


@dataclass(frozen=True)
class Rejection:
    """A recording that did not reach the clip, with the one-line reason. ``kind`` is ``rejected``
    (unusable, changes the exit code) or ``withheld`` (no consent, reported only)."""

    relpath: str
    reason: str
    kind: str = "rejected"


@dataclass(frozen=True)
class Word:
    start_ms: int
    end_ms: int
    text: str  # as the engine wrote it, leading space included
    probability: float
    flags: tuple[str, ...] = ()  # for a person to check: "low_confidence", "repeated", "redecoded", ...


@dataclass(frozen=True)
class ShownCue:
    """How a segment is shown as a subtitle: a cue of the statement's subtitles (the ones a person reads
    and corrects), with its lines and, where a person set them, its own times."""

    lines: tuple[str, ...]
    start_ms: int | None  # a person's times; None: the pipeline times it from its words
    end_ms: int | None
    index: int  # its place among the statement's cues (0-based; the SRT numbers it index + 1)
    words: int  # how many words it shows; fewer left in a segment: the cut took some


@dataclass(frozen=True)
class Segment:
    start_ms: int
    end_ms: int
    text: str
    words: tuple[Word, ...]
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0
    compression_ratio: float = 0.0
    flags: tuple[str, ...] = field(default_factory=tuple)  # reasons a person should look at it
    shown: ShownCue | None = None  # the cue it is shown as; None: grouped from the words


@dataclass(frozen=True)
class StatementTranscript:
    statement_id: str
    language: str
    engine: str
    model: str
    segments: tuple[Segment, ...]
    seed: int | None = None  # the engine's random seed, from the audio's content (provenance)
    # The voice detector heard speech, but the engine wrote down no words: a person must write them.
    no_text: bool = False
    heard_ms: int | None = None  # what the engine's voice detector passed on (padding included)

    @property
    def words(self) -> tuple[Word, ...]:
        return tuple(w for s in self.segments for w in s.words)

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())


@dataclass(frozen=True)
class Approval:
    """A person read (and corrected) a statement's text and approved it for the committee."""

    by: str
    at: str | None  # ISO date or time, as written
    # False: the text, times, in/out points, speaker or topic changed after it was approved; it no longer
    # counts, and every document says so.
    valid: bool = True

    def to_json(self) -> dict[str, str | bool | None]:
        return {"by": self.by, "at": self.at, "valid": self.valid}


def approved(approval: Approval | None) -> bool:
    """Whether an approval counts: given, and still about what the statement is now."""
    return approval is not None and approval.valid
