"""The clip: cards, subtitles and segments planned on one timeline, rendered through the cache, joined.

``ClipMaker.plan`` is pure apart from reading nothing; ``ClipMaker.render`` does the I/O: card pictures,
loudness measurements, subtitle files, segments and the join, each under ``OUT/work`` by content key, so a
second run renders nothing and a corrected statement re-renders only its own segment.
"""

from __future__ import annotations

import logging
import os
import shlex
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline import cache, fonts, media
from pipeline.config import Form, Meeting
from pipeline.files import atomic_path, sha256_text, stable_json, write_json, write_text
from pipeline.models import Statement, StatementTranscript
from pipeline.stages import cards, edits, render, subtitles
from pipeline.stages.cut import Cut, Part, plan_timeline

if TYPE_CHECKING:
    from pipeline.files import HashCache
    from pipeline.steps import Progress, StageLog

log = logging.getLogger(__name__)

LOUDNESS_VERSION = 2  # 2: the ffmpeg version is part of the key
EMPTY_WEBVTT = "WEBVTT\n\n"


@dataclass(frozen=True)
class Timeline:
    parts: tuple[Part, ...]
    title: cards.Card | None
    statement_cards: dict[str, cards.Card]  # by statement id; also the picture of audio-only statements
    statements: dict[str, Statement]
    cuts: dict[str, Cut]
    cues: tuple[subtitles.Cue, ...]

    @property
    def duration_ms(self) -> int:
        return self.parts[-1].end_ms if self.parts else 0


@dataclass(frozen=True)
class ClipResult:
    """What the clip stage put into the delivery folder."""

    delivered: tuple[str, ...]  # file names
    cues: tuple[subtitles.Cue, ...]
    timeline: list[dict[str, Any]]  # for run.json and the check


class ClipMaker:
    def __init__(
        self,
        *,
        steps: StageLog,
        work: Path,
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
        fixed_cues: dict[str, tuple[subtitles.Cue, ...]] | None = None,
    ) -> Timeline:
        """The clip's parts and cues; a person's cues (recording-relative, in ``fixed_cues``) as given.
        A statement whose last subtitle cannot be read in time because the recording ends runs on
        (picture held, sound padded) for that subtitle's reading time."""
        rules = subtitles.SubtitleRules.from_form(self.form)
        fixed = fixed_cues or {}
        timeline = self._plan(statements, cuts, clipped, fixed)
        longer = reading_run_on(timeline, rules, self.form)
        if longer:
            for cut in longer.values():
                log.info("%s: %s", timeline.statements[cut.statement_id].recording.relpath, cut.notes[-1])
            timeline = self._plan(statements, {**cuts, **longer}, clipped, fixed)
        for problem in subtitles.validate(timeline.cues, rules, timeline.duration_ms):
            log.warning("subtitles: %s", problem)
        if timeline.duration_ms > self.form.clip.max_duration * 1000:
            log.warning(
                "the clip is %.1f s, longer than the agreed %g s",
                timeline.duration_ms / 1000,
                self.form.clip.max_duration,
            )
        return timeline

    def _plan(
        self,
        statements: list[Statement],
        cuts: dict[str, Cut],
        clipped: dict[str, StatementTranscript],
        fixed: dict[str, tuple[subtitles.Cue, ...]],
    ) -> Timeline:
        form = self.form
        title = cards.title_card(self.meeting, self.meeting_dir.name, form)
        statement_cards = {
            s.id: cards.statement_picture(s, n, form) for n, s in enumerate(statements, start=1)
        }
        parts = plan_timeline(statements, cuts, form, title=title is not None)
        rules = subtitles.SubtitleRules.from_form(form)
        cues: list[subtitles.Cue] = []
        for part in parts:
            window = (part.start_ms, part.end_ms)
            if part.kind == "card" and part.statement_id:
                caption = statement_cards[part.statement_id].caption
                cue = subtitles.card_cue(caption, window, rules, part.statement_id) if caption else None
                if cue is not None:
                    cues.append(cue)
            elif part.kind == "statement" and part.statement_id in fixed:
                shift = part.start_ms - cuts[part.statement_id].in_ms
                cues.extend(
                    edits.place_fixed_cues(fixed[part.statement_id], shift, window, rules, part.statement_id)
                )
            elif part.kind == "statement" and part.statement_id:
                words = [
                    replace(w, start_ms=w.start_ms + part.start_ms, end_ms=w.end_ms + part.start_ms)
                    for w in clipped[part.statement_id].words
                ]
                cues.extend(subtitles.build_statement_cues(words, window, rules, part.statement_id))
        timeline = Timeline(
            parts=parts,
            title=title,
            statement_cards=statement_cards,
            statements={s.id: s for s in statements},
            cuts=cuts,
            cues=tuple(cues),
        )
        return timeline

    # ---------------------------------------------------------------------------------- render

    def render(self, timeline: Timeline, delivery: Path, *, dry_run: bool = False) -> ClipResult | None:
        """Render every part and join them; the clip and its subtitles go into ``delivery`` (a folder
        that becomes ``delivery/`` only once the whole delivery has passed its check)."""
        form = self.form
        segments: list[Path] = []
        keys: list[str] = []
        for part in timeline.parts:
            segment = self._segment(timeline, part, dry_run=dry_run)
            if segment is None:
                continue
            keys.append(segment.stem)
            segments.append(segment)
        if dry_run and len(segments) < len(timeline.parts):
            log.info("the join can be planned once every segment is known")
            return None

        srt_text = subtitles.to_srt(timeline.cues)
        vtt_text = subtitles.to_vtt(timeline.cues)
        soft = form.subtitles.mode in ("soft", "burn+soft")
        title = self.meeting.title or self.meeting_dir.name
        join_key = sha256_text(
            stable_json(
                {
                    "stage": "join",
                    "version": render.VERSION,
                    "segments": keys,
                    "soft": sha256_text(srt_text) if soft else None,
                    "language": self.language,
                    "title": title,
                    "audio": form.audio.model_dump(),
                    "ffmpeg": media.ffmpeg_version(),
                }
            )
        )
        folder = self.work / "clip"
        clip = folder / f"{join_key}.mp4"
        list_file = folder / f"{join_key}.txt"
        # A clip without one recognised word still gets its (empty) track, as the form asks; ffmpeg reads
        # no subtitles from an empty SRT, but does from a WebVTT file that is only its header.
        soft_text = srt_text if timeline.cues else EMPTY_WEBVTT
        soft_file = folder / f"{join_key}.{'srt' if timeline.cues else 'vtt'}" if soft else None
        args = render.join_args(
            list_file, form, clip, soft_subtitles=soft_file, language=self.language, title=title
        )
        cached = self._intact(clip)
        with self.steps.stage("join", None, join_key, cached) as record:
            record.command = shlex.join([media.ffmpeg_exe(), *args])
            if not cached and not dry_run:
                write_text(list_file, render.concat_list(segments))
                if soft_file is not None:
                    write_text(soft_file, soft_text)
                self._ffmpeg(args, clip, "join", "Samler klippet", timeline.duration_ms)
        if dry_run:
            return None

        _link_or_copy(clip, delivery / f"{self.name}.mp4")
        write_text(delivery / f"{self.name}.{self.language}.srt", srt_text)
        write_text(delivery / f"{self.name}.{self.language}.vtt", vtt_text)
        return ClipResult(
            delivered=(
                f"{self.name}.mp4",
                f"{self.name}.{self.language}.srt",
                f"{self.name}.{self.language}.vtt",
            ),
            cues=timeline.cues,
            timeline=describe(timeline),
        )

    def _segment(self, timeline: Timeline, part: Part, *, dry_run: bool) -> Path | None:
        form = self.form
        width, height = form.video.width, form.video.height
        if part.kind in ("title", "card"):
            card = (
                timeline.title if part.kind == "title" else timeline.statement_cards[part.statement_id or ""]
            )
            assert card is not None
            png = self._card_png(card, dry_run=dry_run)
            key = render.segment_key(
                "card",
                {"card": cards.card_key(card, width, height), "frames": part.frames},
                form,
                media.ffmpeg_version(),
            )
            target = self.work / "segments" / f"{key}{render.SEGMENT_SUFFIX}"
            args = render.card_args(png, part, form, target)
            label = "Titelkort" if part.kind == "title" else f"Kort før {part.statement_id}"
            what = (
                "render the title card"
                if part.kind == "title"
                else f"render the card before {part.statement_id}"
            )
        else:
            statement = timeline.statements[part.statement_id or ""]
            cut = timeline.cuts[statement.id]
            source = self.meeting_dir / statement.recording.relpath
            measured = self._loudness(statement, source, cut, dry_run=dry_run)
            if measured is None:
                with self.steps.stage("render", statement.id, None, cached=False):
                    return None
            ass = self._burn_file(timeline, part) if form.subtitles.mode in ("burn", "burn+soft") else None
            card_png = None
            card_id = None
            if statement.probe.video is None:
                card = timeline.statement_cards[statement.id]
                card_png = self._card_png(card, dry_run=dry_run)
                card_id = cards.card_key(card, width, height)
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
                },
                form,
                media.ffmpeg_version(),
            )
            target = self.work / "segments" / f"{key}{render.SEGMENT_SUFFIX}"
            args = render.statement_args(
                source,
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
            label = f"Indlæg {statement.recording.relpath}"
            what = f"render {statement.recording.relpath}"
        cached = self._intact(target)
        with self.steps.stage("render", part.statement_id, key, cached) as record:
            record.part = part.kind
            record.command = shlex.join([media.ffmpeg_exe(), *args])
            if not cached and not dry_run:
                self._ffmpeg(args, target, what, label, part.duration_ms)
        return target

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

    def _card_png(self, card: cards.Card, *, dry_run: bool) -> Path:
        width, height = self.form.video.width, self.form.video.height
        key = cards.card_key(card, width, height)
        target = self.work / "cards" / f"{key}.png"
        cached = self._intact(target)
        with self.steps.stage("card", card.statement_id, key, cached):
            if not cached and not dry_run:
                cards.render_png(card, width, height, target)
                cache.seal(target, self.hashes)
        return target

    def _loudness(
        self, statement: Statement, source: Path, cut: Cut, *, dry_run: bool
    ) -> media.Loudness | None:
        form = self.form
        key = sha256_text(
            stable_json(
                {
                    "stage": "loudness",
                    "version": LOUDNESS_VERSION,
                    "recording": statement.recording.sha256,
                    "stream": statement.audio_stream,
                    "in_ms": cut.in_ms,
                    "out_ms": cut.out_ms,
                    "audio": form.audio.model_dump(),
                    "ffmpeg": media.ffmpeg_version(),
                }
            )
        )
        target = self.work / "loudness" / f"{key}.json"
        stored = _loudness_from_json(cache.read_json(target))
        args = render.loudness_args(source, statement.audio_stream, cut, form)
        with self.steps.stage("loudness", statement.id, key, stored is not None) as record:
            record.command = shlex.join([media.ffmpeg_exe(), *args])
            if stored is not None:
                return stored
            if dry_run:
                return None
            measured = media.measure_loudness(
                args, what=f"measure the loudness of {statement.recording.relpath}"
            )
            write_json(target, measured.to_json())
            return measured

    def _burn_file(self, timeline: Timeline, part: Part) -> Path:
        """The ASS file with this statement's cues, timed to its segment."""
        form = self.form
        cues = [c for c in timeline.cues if c.statement_id == part.statement_id and c.kind == "speech"]
        text = subtitles.to_ass(
            cues,
            width=form.video.width,
            height=form.video.height,
            font_name=fonts.FONT_NAME,
            font_size_px=round(form.subtitles.font_size * form.video.height),
            offset_ms=part.start_ms,
            duration_ms=part.duration_ms,
        )
        target = self.work / "subtitles" / f"{sha256_text(text)}.ass"
        if not target.exists():
            write_text(target, text)
        return target


def reading_run_on(timeline: Timeline, rules: subtitles.SubtitleRules, form: Form) -> dict[str, Cut]:
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
        return media.Loudness(**{k: float(v) for k, v in data.items()})
    except (AttributeError, TypeError, ValueError):
        return None


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
