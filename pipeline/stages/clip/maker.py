"""The clip made: ``ClipMaker`` renders each part through the cache (card pictures, loudness
measurements, subtitle files, segments) under ``OUT/work`` by content key and joins them, so a second run
renders nothing and a corrected statement re-renders only its own segment. ``plan_steps`` says what
``render`` would do from what the cache holds, making nothing; ``render_ahead`` and ``prepare`` make a
statement's segments (or what they need) before the whole clip is planned.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline import cache, media
from pipeline.config import Form, Meeting
from pipeline.files import atomic_path, write_text
from pipeline.media import loudness
from pipeline.meeting_facts import MeetingFacts
from pipeline.models import Statement, StatementTranscript
from pipeline.stages import cards, render
from pipeline.stages.check.files import master_path
from pipeline.stages.clip.specs import ClipSpecs, JoinSpec, SegmentSpec, loudness_from_json
from pipeline.stages.clip.timeline import Timeline, describe, plan_timeline_cues, problems
from pipeline.stages.cut import Cut, Part, cards_of
from pipeline.stages.subtitles.io import to_srt, to_vtt
from pipeline.stages.subtitles.rules import Cue, SubtitleRules
from pipeline.steps import PlannedStep

if TYPE_CHECKING:
    from pipeline.cache import WorkCache
    from pipeline.files import HashCache
    from pipeline.steps import Progress, StageLog

log = logging.getLogger(__name__)

SEGMENTS_AT_ONCE = min(2, os.cpu_count() or 1)


@dataclass(frozen=True)
class ClipResult:
    """What the clip stage put into the delivery folder."""

    delivered: tuple[str, ...]  # file names
    cues: tuple[Cue, ...]
    timeline: list[dict[str, Any]]  # for run.json and the check


class ClipMaker:
    """Makes the clip of one meeting, each step through the cache and recorded in the stage log."""

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
        self.specs = ClipSpecs(work, meeting_dir, meeting, form, language)

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
        title = cards.opening_card(MeetingFacts.of(self.meeting, self.meeting_dir), form)
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
        if statement.sound_only:
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
            title=cards.opening_card(MeetingFacts.of(self.meeting, self.meeting_dir), self.form),
            first_number=first_number,
        )

    def plan_steps(self, timeline: Timeline) -> list[PlannedStep]:
        """The steps ``render`` takes for ``timeline``, from what the cache holds; makes nothing."""
        planned: list[PlannedStep] = []
        segments: list[Path] = []  # the clip's
        clean: list[Path] = []  # each part's own: the clean master's, where the form asks for one

        def card_step(card: cards.Card) -> None:
            key, png = self.specs.card(card)
            planned.append(PlannedStep("card", card.statement_id, key, self._intact(png)))

        for part in timeline.parts:
            measured: media.Loudness | None = None
            if part.kind == "statement":
                statement = timeline.statements[part.statement_id or ""]
                key, target = self.specs.loudness(statement, timeline.cuts[statement.id])
                measured = loudness_from_json(cache.read_json(target))
                if measured is None:
                    meter_key, frames_file, args = self.specs.meter(statement)
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
            segment = self.specs.segment(timeline, part, measured)
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
            clean.append(segment.target)
            planned.append(
                PlannedStep(
                    "render", part.statement_id, segment.key, self._intact(segment.target),
                    segment.inputs(), media.command_line(segment.args), part.kind,
                )
            )  # fmt: skip
            burned = self.specs.burned(timeline, segment)
            segments.append(burned.target if burned is not None else segment.target)
            if burned is not None:
                planned.append(
                    PlannedStep(
                        "burn", part.statement_id, burned.key, self._intact(burned.target),
                        burned.inputs(), media.command_line(burned.args), part.kind,
                    )
                )  # fmt: skip
        if len(segments) < len(timeline.parts):
            planned.append(PlannedStep("join", None, None, False, after="every segment is known"))
            return planned
        joins = (
            [(self.specs.join(timeline, clean, master=True), clean)]
            if self.form.subtitles.clean_master
            else []
        )
        joins.append((self.specs.join(timeline, segments), segments))  # the clip's last, as render does
        for join, joined in joins:
            planned.append(
                PlannedStep(
                    "join", None, join.key, self._intact(join.clip),
                    tuple(f"work/segments/{s.name}" for s in joined), media.command_line(join.args),
                )
            )  # fmt: skip
        return planned

    # ---------------------------------------------------------------------------------- render

    def render(self, timeline: Timeline, delivery: Path) -> ClipResult:
        """Render every part and join them; the clip and its subtitles go into ``delivery`` (a folder
        that becomes ``delivery/`` only once the whole delivery has passed its check)."""
        # Two parts at a time: one ffmpeg leaves part of two cores idle while it starts, reads ahead and
        # flushes (with a large model's shape, five statements rendered after the last word took 3-4 %
        # less of the whole run); the stages are recorded in the timeline's order all the same.
        made = self.steps.side_by_side(
            [partial(self._segment, timeline, part) for part in timeline.parts], SEGMENTS_AT_ONCE
        )
        segments = [clip for clip, _ in made]
        clip = delivery / f"{self.name}.mp4"
        delivered = [clip.name]
        joins = []
        if self.form.subtitles.clean_master:
            clean = [master for _, master in made if master is not None]
            master = master_path(clip)
            join = self.specs.join(timeline, clean, master=True)
            label = "Samler masteren uden tekst i billedet"
            joins.append(partial(self._join, join, clean, label, timeline, master, "master"))
            delivered.append(master.name)
        joined = self.specs.join(timeline, segments)
        joins.append(partial(self._join, joined, segments, "Samler klippet", timeline, clip))
        # Each join encodes the sound on one core: the master's is made beside the clip's (and recorded
        # before it, as plan_steps lists them).
        self.steps.side_by_side(joins, 2)
        write_text(delivery / f"{self.name}.{self.language}.srt", to_srt(timeline.cues))
        write_text(delivery / f"{self.name}.{self.language}.vtt", to_vtt(timeline.cues))
        return ClipResult(
            delivered=(
                *delivered,
                f"{self.name}.{self.language}.srt",
                f"{self.name}.{self.language}.vtt",
            ),
            cues=timeline.cues,
            timeline=describe(timeline),
        )

    def _segment(self, timeline: Timeline, part: Part) -> tuple[Path, Path | None]:
        """The part's segment of the clip, and of the clean master where the form asks for one."""
        own = self._rendered(timeline, part)
        if not self.form.subtitles.clean_master:
            return own.target, None
        burned = self.specs.burned(timeline, own)
        if burned is None:
            return own.target, own.target
        return self._render(burned, "burn").target, own.target

    def _rendered(self, timeline: Timeline, part: Part) -> SegmentSpec:
        measured = None
        if part.kind == "statement":
            statement = timeline.statements[part.statement_id or ""]
            measured = self._loudness(statement, timeline.cuts[statement.id])
        segment = self.specs.segment(timeline, part, measured)
        assert segment is not None
        if segment.card is not None:
            self._card_png(segment.card)
        return self._render(segment, "render")

    def _render(self, segment: SegmentSpec, stage: str) -> SegmentSpec:
        part = segment.part
        if segment.burn is not None:
            ass, text = segment.burn
            if not ass.exists():
                write_text(ass, text)
        cached = self._intact(segment.target)
        with self.steps.stage(stage, part.statement_id, segment.key, cached) as record:
            record.part = part.kind
            record.command = media.command_line(segment.args)
            if not cached:
                self._ffmpeg(segment.args, segment.target, segment.what, segment.label, part.duration_ms)
        return segment

    def _join(
        self,
        join: JoinSpec,
        segments: list[Path],
        label: str,
        timeline: Timeline,
        to: Path,
        part: str = "clip",
    ) -> None:
        cached = self._intact(join.clip)
        with self.steps.stage("join", None, join.key, cached) as record:
            record.part = part  # the archive's provenance names the clip's join (not the master's)
            record.command = media.command_line(join.args)
            if not cached:
                write_text(join.list_file, render.concat_list(segments))
                if join.soft_file is not None:
                    write_text(join.soft_file, join.soft_text)
                self._ffmpeg(join.args, join.clip, "join", label, timeline.duration_ms)
        _link_or_copy(join.clip, to)

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
        key, target = self.specs.card(card)
        cached = self._intact(target)
        with self.steps.stage("card", card.statement_id, key, cached):
            if not cached:
                cards.render_png(card, self.form.video.width, self.form.video.height, target)
                cache.seal(target, self.hashes)
        return target

    def _sound_frames(self, statement: Statement) -> loudness.SoundFrames:
        """The recording's sound metered every 100 ms, once for whatever cut is made of it."""
        key, target, args = self.specs.meter(statement)
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
        key, target = self.specs.loudness(statement, cut)
        stored = cache.read_json(target)
        measured = loudness_from_json(stored)
        by_loudnorm = isinstance(stored, dict) and stored.get("by") == "loudnorm"
        frames = self._sound_frames(statement) if measured is None else None
        with self.steps.stage("loudness", statement.id, key, measured is not None) as record:
            if measured is None:
                assert frames is not None
                measured = loudness.stretch(frames, cut.in_ms, cut.out_ms)
                by_loudnorm = not render.linear_gain_fits(measured, self.form)
                if by_loudnorm:
                    what = f"measure the loudness of {statement.recording.relpath}"
                    measured = media.measure_loudness(self.specs.loudnorm_args(statement, cut), what=what)
                cache.store_json(target, {**measured.to_json(), "by": "loudnorm" if by_loudnorm else "meter"})
            if by_loudnorm:
                record.command = media.command_line(self.specs.loudnorm_args(statement, cut))
            return measured


def _link_or_copy(source: Path, target: Path) -> None:
    """Put the finished clip into the delivery without doubling its size on disk where possible."""
    import shutil

    with atomic_path(target) as temp:
        temp.unlink()
        try:
            os.link(source, temp)
        except OSError:
            shutil.copyfile(source, temp)
