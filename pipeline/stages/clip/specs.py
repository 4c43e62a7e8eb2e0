"""What each step of the clip makes, under which key and with which command (it makes nothing): card
pictures, the sound's metering, loudness, segments and the join. Shared by the plan and the render, so
that a dry run shows exactly what a run does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline import cache, fonts, media
from pipeline.config import Form, Meeting
from pipeline.files import sha256_text
from pipeline.meeting_facts import MeetingFacts
from pipeline.models import Statement
from pipeline.stages import cards, render
from pipeline.stages.clip.timeline import Timeline
from pipeline.stages.cut import Cut, Part
from pipeline.stages.subtitles.io import to_ass, to_soft_ass

if TYPE_CHECKING:
    from pipeline.cache import WorkCache

LOUDNESS_VERSION = 3  # 2: the ffmpeg version is part of the key; 3: from the meter, loudnorm if need be
METER_VERSION = 1


@dataclass(frozen=True)
class ClipSpecs:
    """The keys, files and commands of one meeting's clip, from the form and the work folder."""

    work: WorkCache
    meeting_dir: Path
    meeting: Meeting
    form: Form
    language: str

    def card(self, card: cards.Card) -> tuple[str, Path]:
        key = cards.card_key(card, self.form.video.width, self.form.video.height)
        return key, self.work.card(key)

    def meter(self, statement: Statement) -> tuple[str, Path, list[str]]:
        key = cache.make_key(
            "meter",
            METER_VERSION,
            {"recording": statement.recording.sha256, "stream": statement.audio_stream, **_mix(statement)},
            form={"channels": self.form.audio.channels},
            tools={"ffmpeg": media.ffmpeg_version()},
        )
        source = self.meeting_dir / statement.recording.relpath
        args = render.meter_args(source, statement.audio_stream, self.form, render.stream_info(statement))
        return key, self.work.loudness_frames(key), args

    def loudness(self, statement: Statement, cut: Cut) -> tuple[str, Path]:
        form = self.form
        key = cache.make_key(
            "loudness",
            LOUDNESS_VERSION,
            {
                "recording": statement.recording.sha256,
                "stream": statement.audio_stream,
                "in_ms": cut.in_ms,
                "out_ms": cut.out_ms,
                **_mix(statement),
            },
            form={"audio": form.audio.model_dump()},
            tools={"ffmpeg": media.ffmpeg_version()},
        )
        return key, self.work.loudness(key)

    def segment(self, timeline: Timeline, part: Part, measured: media.Loudness | None) -> SegmentSpec | None:
        """The segment of ``part``; None for a statement whose loudness is not measured yet."""
        form = self.form
        if part.kind in ("title", "card"):
            card = (
                timeline.title if part.kind == "title" else timeline.statement_cards[part.statement_id or ""]
            )
            assert card is not None
            shown, png = self.card(card)
            key = render.segment_key(
                "card", {"card": shown, "frames": part.frames}, form, media.ffmpeg_version()
            )
            target = self.work.segment(key)
            if part.kind == "title":
                return SegmentSpec(part, key, target, render.card_args(png, part, form, target),
                                "render the title card", "Titelkort", card=card)  # fmt: skip
            return SegmentSpec(part, key, target, render.card_args(png, part, form, target),
                            f"render the card before {part.statement_id}", f"Kort: {card.heading}",
                            card=card)  # fmt: skip
        if measured is None:
            return None
        statement = timeline.statements[part.statement_id or ""]
        cut = timeline.cuts[statement.id]
        # With a clean master, the statement's own segment is clean and the text is burned in a pass
        # over it (``burned``): a corrected word then makes only that pass again.
        burns_here = form.subtitles.burns and not form.subtitles.clean_master
        burn = self.burn_text(timeline, part) if burns_here else None
        ass = self.work.subtitles(sha256_text(burn)) if burn is not None else None
        picture = timeline.statement_cards[statement.id] if statement.sound_only else None
        card_id: str | None = None
        card_png: Path | None = None
        if picture is not None:
            card_id, card_png = self.card(picture)
        key = render.segment_key(
            "statement",
            {
                "recording": statement.recording.sha256,
                "video_stream": statement.probe.video.index if statement.probe.video else None,
                "audio_stream": statement.audio_stream,
                "in_ms": cut.in_ms,
                "frames": part.frames,
                "loudness": measured.to_json(),
                "subtitles": ass.stem if ass else None,
                "font": fonts.font_identity() if ass else None,
                "card": card_id,
                **_mix(statement),
            },
            form,
            media.ffmpeg_version(),
        )
        target = self.work.segment(key)
        args = render.statement_args(
            self.meeting_dir / statement.recording.relpath,
            statement,
            cut,
            part,
            form,
            measured,
            target,
            subtitles=ass,
            fonts_dir=fonts.fonts_dir() if ass else None,
            card_png=card_png,
        )
        return SegmentSpec(
            part, key, target, args, f"render {statement.recording.relpath}",
            f"Indlæg {statement.recording.relpath}", card=picture,
            burn=(ass, burn) if ass and burn is not None else None,
        )  # fmt: skip

    def burned(self, timeline: Timeline, clean: SegmentSpec) -> SegmentSpec | None:
        """The segment of the clip with the subtitles burned into ``clean`` (a statement's segment of
        the clean master); None where the clip takes the clean segment as it is: a card, a statement
        without a subtitle, or a form without a clean master."""
        form = self.form
        part = clean.part
        if not form.subtitles.clean_master or part.kind != "statement":
            return None
        if not any(c.statement_id == part.statement_id and c.kind == "speech" for c in timeline.cues):
            return None
        text = self.burn_text(timeline, part)
        ass = self.work.subtitles(sha256_text(text))
        key = render.segment_key(
            "burn",
            {"clean": clean.key, "subtitles": ass.stem, "font": fonts.font_identity()},
            form,
            media.ffmpeg_version(),
        )
        target = self.work.segment(key)
        args = render.burn_args(clean.target, ass, fonts.fonts_dir(), part, form, target)
        return SegmentSpec(
            part, key, target, args, f"burn the subtitles into {clean.what.removeprefix('render ')}",
            f"Undertekster i {part.statement_id}", burn=(ass, text), clean=clean.target,
        )  # fmt: skip

    def join(self, timeline: Timeline, segments: list[Path], *, master: bool = False) -> JoinSpec:
        """The join of ``segments`` into the clip, or (``master``) into the clean master, which always
        carries the selectable track."""
        form = self.form
        soft = master or form.subtitles.mode in ("soft", "burn+soft")
        # The selectable track is read from ASS written for it: ffmpeg reads SubRip as HTML (it drops
        # "<what>" and makes "\N" a line break) but passes ASS text to mov_text as it is.
        soft_text = to_soft_ass(timeline.cues)
        title = MeetingFacts.of(self.meeting, self.meeting_dir).title
        key = cache.make_key(
            "join",
            render.VERSION,
            {
                "segments": [s.stem for s in segments],
                "soft": sha256_text(soft_text) if soft else None,
                "language": self.language,
                "title": title,
            },
            form={"audio": form.audio.model_dump()},
            tools={"ffmpeg": media.ffmpeg_version()},
        )
        folder = self.work.clip_folder
        clip = folder / f"{key}.mp4"
        list_file = folder / f"{key}.txt"
        # A clip without one recognised word still gets its (empty) track, as the form asks.
        soft_file = folder / f"{key}.ass" if soft else None
        args = render.join_args(
            list_file, form, clip, soft_subtitles=soft_file, language=self.language, title=title
        )
        return JoinSpec(key, clip, list_file, soft_file, soft_text, args)

    def loudnorm_args(self, statement: Statement, cut: Cut) -> list[str]:
        source = self.meeting_dir / statement.recording.relpath
        return render.loudnorm_pass_args(
            source, statement.audio_stream, cut, self.form, render.stream_info(statement)
        )

    def burn_text(self, timeline: Timeline, part: Part) -> str:
        """The ASS text with this statement's cues, timed to its segment."""
        form = self.form
        cues = [c for c in timeline.cues if c.statement_id == part.statement_id and c.kind == "speech"]
        return to_ass(
            cues,
            width=form.video.width,
            height=form.video.height,
            font_name=fonts.FONT_NAME,
            font_size_px=round(form.subtitles.font_size * form.video.height),
            offset_ms=part.start_ms,
            duration_ms=part.duration_ms,
        )


@dataclass(frozen=True)
class SegmentSpec:
    part: Part
    key: str
    target: Path
    args: list[str]
    what: str  # for an error: "render 01-anna.mp4"
    label: str  # for the progress bar
    card: cards.Card | None = None  # the picture it shows
    burn: tuple[Path, str] | None = None  # the burned-in subtitles' file and text
    clean: Path | None = None  # the clean segment the subtitles are burned into

    def inputs(self) -> tuple[str, ...]:
        found: list[str] = []
        if self.clean is not None:
            found.append(f"work/segments/{self.clean.name}")
        if self.card is not None:
            found.append(f"card {self.card.statement_id or 'title'}")
        if self.burn is not None:
            found.append(f"work/subtitles/{self.burn[0].name}")
        return tuple(found)


@dataclass(frozen=True)
class JoinSpec:
    key: str
    clip: Path
    list_file: Path
    soft_file: Path | None
    soft_text: str
    args: list[str]


def loudness_from_json(data: Any) -> media.Loudness | None:
    """A stored measurement, or None when there is none or it is damaged."""
    try:
        return media.Loudness(**{k: float(v) for k, v in data.items() if k != "by"})
    except (AttributeError, TypeError, ValueError):
        return None


def _mix(statement: Statement) -> dict[str, Any]:
    """For the keys of what is made of a statement's sound: the equal mix of channels ffmpeg cannot mix
    by itself, where it applies (and nothing where it does not, so that every other key is as it was)."""
    audio = render.stream_info(statement)
    pan = media.downmix_pan(audio, 2) if audio is not None else None
    return {"mix": "equal"} if pan else {}
