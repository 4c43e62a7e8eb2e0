"""The clip: cards, subtitles and segments planned on one timeline, rendered through the cache, joined.

``ClipMaker.plan`` is pure apart from reading nothing; ``ClipMaker.render`` does the I/O: card pictures,
loudness measurements, subtitle files, segments and the join, each under ``OUT/work`` by content key, so a
second run renders nothing and a corrected statement re-renders only its own segment.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline import cache, fonts, media
from pipeline.config import Form, Meeting
from pipeline.files import atomic_path, folder_title, sha256_text, write_text
from pipeline.media import loudness
from pipeline.models import Statement, StatementTranscript
from pipeline.stages import cards, render
from pipeline.stages.cut import Cut, Part, cards_of, plan_timeline
from pipeline.stages.subtitles.cues import StatementCues, card_cue, statement_cues
from pipeline.stages.subtitles.io import to_ass, to_soft_ass, to_srt, to_vtt
from pipeline.stages.subtitles.rules import Cue, SubtitleRules
from pipeline.steps import PlannedStep

if TYPE_CHECKING:
    from pipeline.cache import WorkCache
    from pipeline.files import HashCache
    from pipeline.steps import Progress, StageLog

log = logging.getLogger(__name__)

LOUDNESS_VERSION = 3  # 2: the ffmpeg version is part of the key; 3: from the meter, loudnorm if need be
METER_VERSION = 1


@dataclass(frozen=True)
class Timeline:
    parts: tuple[Part, ...]
    title: cards.Card | None
    statement_cards: dict[str, cards.Card]  # by statement id; also the picture of audio-only statements
    statements: dict[str, Statement]
    cuts: dict[str, Cut]
    cues: tuple[Cue, ...]
    # By statement id: its cues with what the page and the check ask about them (who timed them, why a
    # person's times were moved, where their words are spoken).
    fitted: dict[str, StatementCues] = field(default_factory=dict)

    @property
    def duration_ms(self) -> int:
        return self.parts[-1].end_ms if self.parts else 0

    def cue_context(self) -> tuple[list[tuple[int, int] | None], list[tuple[int, int]]]:
        """For each cue, where its words are spoken (None for a card's caption) and the part of the clip
        it is in: what ``timing.judge`` needs to judge them as the check will."""
        speech: list[tuple[int, int] | None] = []
        windows: list[tuple[int, int]] = []
        seen: dict[str, int] = {}
        for cue in self.cues:
            kind = "statement" if cue.kind == "speech" else "card"
            part = next(
                (p for p in self.parts if p.statement_id == cue.statement_id and p.kind == kind),
                None,
            )
            windows.append((part.start_ms, part.end_ms) if part else (0, self.duration_ms))
            fitted = self.fitted.get(cue.statement_id or "") if cue.kind == "speech" else None
            if fitted is None:
                speech.append(None)
                continue
            k = seen.get(cue.statement_id or "", 0)
            seen[cue.statement_id or ""] = k + 1
            speech.append(fitted.speech[k] if k < len(fitted.speech) else None)
        return speech, windows


@dataclass(frozen=True)
class Problem:
    """A subtitle rule the delivery would break that no timing can keep: the render stops on it."""

    statement_id: str
    cue: int | None  # the person's cue (0-based, as in the statement's subtitles), None: the statement
    rule: str
    text: str  # one Danish sentence: statement, cue, rule, and what to do

    def to_json(self) -> dict[str, Any]:
        return {"statement": self.statement_id, "cue": self.cue, "rule": self.rule, "text": self.text}


def statement_number(timeline: Timeline, statement_id: str) -> int:
    ids = [p.statement_id for p in timeline.parts if p.kind == "statement"]
    return ids.index(statement_id) + 1 if statement_id in ids else 0


def problems(timeline: Timeline, rules: SubtitleRules, first_number: int = 1) -> list[Problem]:
    """What the subtitles of ``timeline`` would break that no timing can keep, one Danish sentence each:
    cues the window cannot give their shortest time on screen, and any rule ``timing.judge`` calls a
    failure (the check of the delivery asks the same)."""
    from pipeline import texts
    from pipeline.stages import timing

    found: list[Problem] = []

    def label(statement_id: str) -> str:
        statement = timeline.statements[statement_id]
        return texts.statement_label(
            statement_number(timeline, statement_id) + first_number - 1, statement.speaker
        )

    for sid, fitted in timeline.fitted.items():
        if not fitted.short:
            continue
        part = next(p for p in timeline.parts if p.kind == "statement" and p.statement_id == sid)
        first, last = min(fitted.short), max(fitted.short)
        source = [s if s is not None else k for k, s in enumerate(fitted.sources)]
        shown = list(fitted.texts)
        found.append(
            Problem(
                sid,
                source[first] if first < len(source) else None,
                "subtitles.min_duration",
                texts.too_crowded(
                    label(sid),
                    source[first] if first < len(source) else first,
                    source[last] if last < len(source) else last,
                    (shown[first] if first < len(shown) else "", shown[last] if last < len(shown) else ""),
                    part.duration_ms,
                    rules,
                ),
            )
        )
    crowded = {p.statement_id for p in found}
    speech, windows = timeline.cue_context()
    seen: dict[str, int] = {}
    index_of: list[int | None] = []
    for cue in timeline.cues:
        if cue.kind != "speech" or cue.statement_id is None:
            index_of.append(None)
            continue
        k = seen.get(cue.statement_id, 0)
        seen[cue.statement_id] = k + 1
        sources = timeline.fitted[cue.statement_id].sources if cue.statement_id in timeline.fitted else ()
        index_of.append(sources[k] if k < len(sources) and sources[k] is not None else k)
    for found_break in timing.judge(
        timeline.cues, rules, timeline.duration_ms, speech=speech, windows=windows
    ):
        if found_break.severity != "fail":
            continue
        cue = timeline.cues[found_break.cue - 1]
        sid = cue.statement_id or ""
        if sid in crowded or sid not in timeline.statements:
            continue
        index = index_of[found_break.cue - 1]
        found.append(
            Problem(
                sid,
                index,
                found_break.rule,
                texts.rule_problem(
                    label(sid),
                    texts.cue_label(index if index is not None else 0, cue.text),
                    found_break,
                    rules,
                ),
            )
        )
    return found


@dataclass(frozen=True)
class ClipResult:
    """What the clip stage put into the delivery folder."""

    delivered: tuple[str, ...]  # file names
    cues: tuple[Cue, ...]
    timeline: list[dict[str, Any]]  # for run.json and the check


class ClipMaker:
    def __init__(
        self,
        *,
        steps: StageLog,
        work: WorkCache,
        hashes: HashCache,
        progress: Progress,
        meeting_dir: Path,
        meeting: Meeting,
        form: Form,
        language: str,
        name: str,
    ) -> None:
        self.steps = steps
        self.work = work
        self.hashes = hashes
        self.progress = progress
        self.meeting_dir = meeting_dir
        self.meeting = meeting
        self.form = form
        self.language = language
        self.name = name

    # ------------------------------------------------------------------------------------ plan

    def plan(
        self,
        statements: list[Statement],
        cuts: dict[str, Cut],
        clipped: dict[str, StatementTranscript],
    ) -> Timeline:
        """The clip's parts and cues. A statement whose last subtitle cannot be read in time because the
        recording ends runs on (picture held, sound padded) for that subtitle's reading time."""
        timeline = self._timeline(statements, cuts, clipped)
        for statement_id, cut in timeline.cuts.items():
            if cut is not cuts[statement_id]:
                log.info("%s: %s", timeline.statements[statement_id].recording.relpath, cut.notes[-1])
        if timeline.duration_ms > self.form.clip.max_duration * 1000:
            log.warning(
                "the clip is %.1f s, longer than the agreed %g s",
                timeline.duration_ms / 1000,
                self.form.clip.max_duration,
            )
        return timeline

    def render_ahead(self, statement: Statement, cut: Cut, clipped: StatementTranscript, number: int) -> None:
        """Measure and render one statement's segments (its card, then the statement), and the title
        card, before the whole clip is planned, as ``number`` in the clip: the render later finds them
        in the cache. They depend only on the statement itself and its number, never on where the clip
        puts it."""
        timeline = self._timeline([statement], {statement.id: cut}, {statement.id: clipped}, number)
        if problems(timeline, SubtitleRules.from_form(self.form)):
            return  # the render stops on these; nothing to make ahead
        for part in timeline.parts:
            if part.statement_id == statement.id or part.kind == "title":
                self._segment(timeline, part)

    def prepare(self, statement: Statement, number: int) -> None:
        """What the segments of ``statement`` (``number`` in the clip) need that does not depend on its
        words, made while the engine listens so that the render finds it in the cache: its sound
        metered, the title card and its own card (or the picture it is shown over, without a picture of
        its own)."""
        self._sound_frames(statement)
        form = self.form
        title = cards.title_card(self.meeting, folder_title(self.meeting_dir), form)
        picture = cards.statement_picture(statement, number, form)
        timeline = Timeline(
            parts=cards_of(statement, form, title=title is not None),
            title=title,
            statement_cards={statement.id: picture},
            statements={statement.id: statement},
            cuts={},
            cues=(),
        )
        for part in timeline.parts:
            self._segment(timeline, part)
        if statement.probe.video is None:
            self._card_png(picture)

    def _timeline(
        self,
        statements: list[Statement],
        cuts: dict[str, Cut],
        clipped: dict[str, StatementTranscript],
        first_number: int = 1,
    ) -> Timeline:
        """The timeline, with the cuts that must run on for their last subtitle run on."""
        return plan_timeline_cues(
            statements,
            cuts,
            clipped,
            self.form,
            title=cards.title_card(self.meeting, folder_title(self.meeting_dir), self.form),
            first_number=first_number,
        )

    # ----------------------------------------------------------------------------------- specs
    # What each step makes, under which key and with which command: shared by the plan and the render,
    # so that a dry run shows exactly what a run does.

    def _card_spec(self, card: cards.Card) -> tuple[str, Path]:
        key = cards.card_key(card, self.form.video.width, self.form.video.height)
        return key, self.work.card(key)

    def _meter_spec(self, statement: Statement) -> tuple[str, Path, list[str]]:
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

    def _loudness_spec(self, statement: Statement, cut: Cut) -> tuple[str, Path]:
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

    def _segment_spec(
        self, timeline: Timeline, part: Part, measured: media.Loudness | None
    ) -> _Segment | None:
        """The segment of ``part``; None for a statement whose loudness is not measured yet."""
        form = self.form
        if part.kind in ("title", "card"):
            card = (
                timeline.title if part.kind == "title" else timeline.statement_cards[part.statement_id or ""]
            )
            assert card is not None
            shown, png = self._card_spec(card)
            key = render.segment_key(
                "card", {"card": shown, "frames": part.frames}, form, media.ffmpeg_version()
            )
            target = self.work.segment(key)
            if part.kind == "title":
                return _Segment(part, key, target, render.card_args(png, part, form, target),
                                "render the title card", "Titelkort", card=card)  # fmt: skip
            return _Segment(part, key, target, render.card_args(png, part, form, target),
                            f"render the card before {part.statement_id}", f"Kort før {part.statement_id}",
                            card=card)  # fmt: skip
        if measured is None:
            return None
        statement = timeline.statements[part.statement_id or ""]
        cut = timeline.cuts[statement.id]
        burn = self._burn_text(timeline, part) if form.subtitles.mode in ("burn", "burn+soft") else None
        ass = self.work.subtitles(sha256_text(burn)) if burn is not None else None
        picture = timeline.statement_cards[statement.id] if statement.probe.video is None else None
        card_id: str | None = None
        card_png: Path | None = None
        if picture is not None:
            card_id, card_png = self._card_spec(picture)
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
        return _Segment(
            part, key, target, args, f"render {statement.recording.relpath}",
            f"Indlæg {statement.recording.relpath}", card=picture,
            burn=(ass, burn) if ass and burn is not None else None,
        )  # fmt: skip

    def _join_spec(self, timeline: Timeline, segments: list[Path]) -> _Join:
        form = self.form
        soft = form.subtitles.mode in ("soft", "burn+soft")
        # The selectable track is read from ASS written for it: ffmpeg reads SubRip as HTML (it drops
        # "<what>" and makes "\N" a line break) but passes ASS text to mov_text as it is.
        soft_text = to_soft_ass(timeline.cues)
        title = self.meeting.title or folder_title(self.meeting_dir)
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
        return _Join(key, clip, list_file, soft_file, soft_text, args)

    # ------------------------------------------------------------------------------------ plan

    def plan_steps(self, timeline: Timeline) -> list[PlannedStep]:
        """The steps ``render`` takes for ``timeline``, from what the cache holds; makes nothing."""
        planned: list[PlannedStep] = []
        segments: list[Path] = []

        def card_step(card: cards.Card) -> None:
            key, png = self._card_spec(card)
            planned.append(PlannedStep("card", card.statement_id, key, self._intact(png)))

        for part in timeline.parts:
            measured: media.Loudness | None = None
            if part.kind == "statement":
                statement = timeline.statements[part.statement_id or ""]
                key, target = self._loudness_spec(statement, timeline.cuts[statement.id])
                measured = _loudness_from_json(cache.read_json(target))
                if measured is None:
                    meter_key, frames_file, args = self._meter_spec(statement)
                    planned.append(
                        PlannedStep(
                            "meter", statement.id, meter_key, self._stored_frames(frames_file) is not None,
                            (statement.recording.relpath,), media.command_line(args),
                        )
                    )  # fmt: skip
                planned.append(
                    PlannedStep(
                        "loudness", statement.id, key, measured is not None, (statement.recording.relpath,)
                    )
                )
            segment = self._segment_spec(timeline, part, measured)
            if segment is None:
                planned.append(
                    PlannedStep(
                        "render",
                        part.statement_id,
                        None,
                        False,
                        part=part.kind,
                        after="its loudness is measured",
                    )
                )
                continue
            if segment.card is not None:
                card_step(segment.card)
            segments.append(segment.target)
            planned.append(
                PlannedStep(
                    "render", part.statement_id, segment.key, self._intact(segment.target),
                    segment.inputs(), media.command_line(segment.args), part.kind,
                )
            )  # fmt: skip
        if len(segments) < len(timeline.parts):
            planned.append(PlannedStep("join", None, None, False, after="every segment is known"))
            return planned
        join = self._join_spec(timeline, segments)
        planned.append(
            PlannedStep(
                "join", None, join.key, self._intact(join.clip),
                tuple(f"work/segments/{s.name}" for s in segments), media.command_line(join.args),
            )
        )  # fmt: skip
        return planned

    # ---------------------------------------------------------------------------------- render

    def render(self, timeline: Timeline, delivery: Path) -> ClipResult:
        """Render every part and join them; the clip and its subtitles go into ``delivery`` (a folder
        that becomes ``delivery/`` only once the whole delivery has passed its check)."""
        segments = [self._segment(timeline, part) for part in timeline.parts]
        join = self._join_spec(timeline, segments)
        cached = self._intact(join.clip)
        with self.steps.stage("join", None, join.key, cached) as record:
            record.command = media.command_line(join.args)
            if not cached:
                write_text(join.list_file, render.concat_list(segments))
                if join.soft_file is not None:
                    write_text(join.soft_file, join.soft_text)
                self._ffmpeg(join.args, join.clip, "join", "Samler klippet", timeline.duration_ms)

        _link_or_copy(join.clip, delivery / f"{self.name}.mp4")
        write_text(delivery / f"{self.name}.{self.language}.srt", to_srt(timeline.cues))
        write_text(delivery / f"{self.name}.{self.language}.vtt", to_vtt(timeline.cues))
        return ClipResult(
            delivered=(
                f"{self.name}.mp4",
                f"{self.name}.{self.language}.srt",
                f"{self.name}.{self.language}.vtt",
            ),
            cues=timeline.cues,
            timeline=describe(timeline),
        )

    def _segment(self, timeline: Timeline, part: Part) -> Path:
        measured = None
        if part.kind == "statement":
            statement = timeline.statements[part.statement_id or ""]
            measured = self._loudness(statement, timeline.cuts[statement.id])
        segment = self._segment_spec(timeline, part, measured)
        assert segment is not None
        if segment.card is not None:
            self._card_png(segment.card)
        if segment.burn is not None:
            ass, text = segment.burn
            if not ass.exists():
                write_text(ass, text)
        cached = self._intact(segment.target)
        with self.steps.stage("render", part.statement_id, segment.key, cached) as record:
            record.part = part.kind
            record.command = media.command_line(segment.args)
            if not cached:
                self._ffmpeg(segment.args, segment.target, segment.what, segment.label, part.duration_ms)
        return segment.target

    def _intact(self, path: Path) -> bool:
        return cache.is_intact(path, self.hashes)

    def _ffmpeg(self, args: list[str], target: Path, what: str, label: str, duration_ms: int) -> None:
        progress = self.progress
        key = f"render-{target.stem}"
        progress.begin(key, label)
        try:
            render.run_segment(
                args,
                target,
                what=what,
                duration_ms=duration_ms,
                on_progress=lambda f: progress.update(key, f),
            )
            cache.seal(target, self.hashes)
        finally:
            progress.end(key)

    def _card_png(self, card: cards.Card) -> Path:
        key, target = self._card_spec(card)
        cached = self._intact(target)
        with self.steps.stage("card", card.statement_id, key, cached):
            if not cached:
                cards.render_png(card, self.form.video.width, self.form.video.height, target)
                cache.seal(target, self.hashes)
        return target

    def _sound_frames(self, statement: Statement) -> loudness.SoundFrames:
        """The recording's sound metered every 100 ms, once for whatever cut is made of it."""
        key, target, args = self._meter_spec(statement)
        stored = self._stored_frames(target)
        with self.steps.stage("meter", statement.id, key, stored is not None) as record:
            record.command = media.command_line(args)
            if stored is not None:
                return stored
            what = f"meter the sound of {statement.recording.relpath}"
            frames = loudness.meter(args, what=what)
            cache.store_json(target, frames.to_json())
            return frames

    @staticmethod
    def _stored_frames(target: Path) -> loudness.SoundFrames | None:
        return loudness.SoundFrames.from_json(cache.read_json(target))

    def _loudness(self, statement: Statement, cut: Cut) -> media.Loudness:
        """The cut's loudness from the recording's metering; measured by loudnorm's own pass where a
        plain gain would not do (the stored measurement says which, so that run.json names the command
        that made it)."""
        key, target = self._loudness_spec(statement, cut)
        stored = cache.read_json(target)
        measured = _loudness_from_json(stored)
        by_loudnorm = isinstance(stored, dict) and stored.get("by") == "loudnorm"
        frames = self._sound_frames(statement) if measured is None else None
        with self.steps.stage("loudness", statement.id, key, measured is not None) as record:
            if measured is None:
                assert frames is not None
                measured = loudness.stretch(frames, cut.in_ms, cut.out_ms)
                by_loudnorm = not render.linear_gain_fits(measured, self.form)
                if by_loudnorm:
                    what = f"measure the loudness of {statement.recording.relpath}"
                    measured = media.measure_loudness(self._loudnorm_args(statement, cut), what=what)
                cache.store_json(target, {**measured.to_json(), "by": "loudnorm" if by_loudnorm else "meter"})
            if by_loudnorm:
                record.command = media.command_line(self._loudnorm_args(statement, cut))
            return measured

    def _loudnorm_args(self, statement: Statement, cut: Cut) -> list[str]:
        source = self.meeting_dir / statement.recording.relpath
        return render.loudnorm_pass_args(
            source, statement.audio_stream, cut, self.form, render.stream_info(statement)
        )

    def _burn_text(self, timeline: Timeline, part: Part) -> str:
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


def plan_timeline_cues(
    statements: list[Statement],
    cuts: dict[str, Cut],
    clipped: dict[str, StatementTranscript],
    form: Form,
    *,
    title: cards.Card | None,
    first_number: int = 1,
) -> Timeline:
    """The clip's parts and every cue in them (pure): the one plan the render, the page and the check's
    judgement share. Cuts whose last subtitle cannot be read in time run on, and the plan is made again."""
    rules = SubtitleRules.from_form(form)
    timeline = _plan_once(statements, cuts, clipped, form, rules, title, first_number)
    longer = reading_run_on(timeline, rules, form)
    if longer:
        timeline = _plan_once(statements, {**cuts, **longer}, clipped, form, rules, title, first_number)
    return timeline


def _plan_once(
    statements: list[Statement],
    cuts: dict[str, Cut],
    clipped: dict[str, StatementTranscript],
    form: Form,
    rules: SubtitleRules,
    title: cards.Card | None,
    first_number: int,
) -> Timeline:
    statement_cards = {
        s.id: cards.statement_picture(s, n, form) for n, s in enumerate(statements, start=first_number)
    }
    parts = plan_timeline(statements, cuts, form, title=title is not None)
    cues: list[Cue] = []
    fitted: dict[str, StatementCues] = {}
    for part in parts:
        window = (part.start_ms, part.end_ms)
        if part.kind == "card" and part.statement_id:
            caption = statement_cards[part.statement_id].caption
            cue = card_cue(caption, window, rules, part.statement_id) if caption else None
            if cue is not None:
                cues.append(cue)
        elif part.kind == "statement" and part.statement_id:
            made = statement_cues(clipped[part.statement_id], part.start_ms, window, rules, part.statement_id)
            fitted[part.statement_id] = made
            cues.extend(made.cues)
    return Timeline(
        parts=parts,
        title=title,
        statement_cards=statement_cards,
        statements={s.id: s for s in statements},
        cuts=cuts,
        cues=tuple(cues),
        fitted=fitted,
    )


@dataclass(frozen=True)
class _Segment:
    part: Part
    key: str
    target: Path
    args: list[str]
    what: str  # for an error: "render 01-anna.mp4"
    label: str  # for the progress bar
    card: cards.Card | None = None  # the picture it shows
    burn: tuple[Path, str] | None = None  # the burned-in subtitles' file and text

    def inputs(self) -> tuple[str, ...]:
        found: list[str] = []
        if self.card is not None:
            found.append(f"card {self.card.statement_id or 'title'}")
        if self.burn is not None:
            found.append(f"work/subtitles/{self.burn[0].name}")
        return tuple(found)


@dataclass(frozen=True)
class _Join:
    key: str
    clip: Path
    list_file: Path
    soft_file: Path | None
    soft_text: str
    args: list[str]


def reading_run_on(timeline: Timeline, rules: SubtitleRules, form: Form) -> dict[str, Cut]:
    """Cuts that run on past the end of their statement so that its last subtitle, squeezed against
    the next part, gets its reading time: at most the cue's minimum duration or the form's silence-trim
    padding, whichever is longer (the picture holds and the sound is padded there)."""
    longest = max(rules.min_duration_ms, round(form.clip.silence_trim.padding * 1000))
    longer: dict[str, Cut] = {}
    for part in timeline.parts:
        if part.kind != "statement" or part.statement_id is None:
            continue
        own = [c for c in timeline.cues if c.statement_id == part.statement_id and c.kind == "speech"]
        if not own:
            continue
        last = own[-1]
        need = rules.needed_ms(last.chars)
        squeezed = last.end_ms >= part.end_ms - rules.min_gap_ms - rules.frame_ms
        if not squeezed or last.duration_ms >= need:
            continue
        # Two frames more: the part is rounded to whole frames, and the cue keeps its gap to the end.
        extra = min(need - last.duration_ms + 2 * rules.frame_ms, longest)
        cut = timeline.cuts[part.statement_id]
        # Never past the agreed length of a statement: a cut already at the limit does not run on.
        room = round(form.clip.max_statement * 1000) - (cut.out_ms - cut.in_ms) - rules.frame_ms
        extra = min(extra, room)
        if extra <= 0:
            continue
        longer[part.statement_id] = replace(
            cut,
            out_ms=cut.out_ms + extra,
            notes=(
                *cut.notes,
                f"runs on {extra / 1000:.2f} s after its last word so that the last subtitle can be read",
            ),
        )
    return longer


def _loudness_from_json(data: Any) -> media.Loudness | None:
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


def _link_or_copy(source: Path, target: Path) -> None:
    """Put the finished clip into the delivery without doubling its size on disk where possible."""
    import shutil

    with atomic_path(target) as temp:
        temp.unlink()
        try:
            os.link(source, temp)
        except OSError:
            shutil.copyfile(source, temp)


def describe(timeline: Timeline) -> list[dict[str, Any]]:
    """The timeline as run.json records it."""
    return [
        {
            "kind": p.kind,
            "statement": p.statement_id,
            "start_ms": p.start_ms,
            "duration_ms": p.duration_ms,
            "frames": p.frames,
        }
        for p in timeline.parts
    ]
