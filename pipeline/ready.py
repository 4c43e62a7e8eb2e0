"""Making one statement ready: heard, corrected, cut and its segments rendered into the cache. The one
path `hearing run`, `hearing watch` and the work done ahead of the plan share; also what `hearing
watch` tells about the statements made ready so far."""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pipeline.ahead import WorkAhead
from pipeline.config import Form
from pipeline.engines.base import TranscribeSettings
from pipeline.models import Rejection, Statement, StatementTranscript
from pipeline.stages import cut, edits, transcribe
from pipeline.stages.clip import ClipMaker
from pipeline.stages.subtitles.rules import SubtitleRules


@dataclass(frozen=True)
class Ready:
    """One statement as far as it was made ready: heard, and where its render was asked for now, cut
    (its segments are in the cache then)."""

    heard: transcribe.Heard
    made: cut.Cuts | None = None


@dataclass(frozen=True)
class Readiness:
    """What `hearing watch` has made ready so far."""

    ready: tuple[str, ...]  # recordings whose statement is heard, cut and rendered
    rejections: tuple[Rejection, ...]
    clip_ms: int  # the clip as long as it would be with these statements
    max_clip_ms: int  # the form's maximum


def clip_numbers(statements: Sequence[Statement], form: Form) -> dict[str, int]:
    """Each statement's number in the clip (its card says "Indlæg N"), as far as they are known now:
    what is made ahead of the plan is made as that number."""
    return {s.id: n for n, s in enumerate(cut.order_statements(list(statements), form), start=1)}


@dataclass(frozen=True)
class StatementMaker:
    """What making a statement ready needs: where its recording and corrections are, the form, the
    listener and the clip maker of this run, each statement's number and transcription settings."""

    meeting_dir: Path
    edits_dir: Path
    form: Form
    listener: transcribe.Listener
    clip: ClipMaker
    numbers: Mapping[str, int]
    settings: Mapping[str, TranscribeSettings]

    def ready(
        self,
        statement: Statement,
        ahead: WorkAhead,
        *,
        prepare_ahead: bool,
        render: Literal["now", "ahead"] | None,
    ) -> Ready:
        """``statement`` heard (its card and loudness prepared ahead while the engine listens, with
        ``prepare_ahead``), then corrected, cut and rendered: ``now``, ``ahead`` (on the background
        thread, while the engine listens to the next one) or not at all (the run renders it in its turn).
        """
        number = self.numbers[statement.id]
        what = statement.recording.relpath
        if prepare_ahead:
            ahead.submit(what, self.clip.prepare, statement, number)
        heard = self.listener.listen(self.meeting_dir, statement, self.settings[statement.id])
        if render == "now":
            ahead.wait()  # nothing is made twice at the same time
        if isinstance(heard.result, Rejection) or render is None:
            return Ready(heard)
        if render == "ahead":
            ahead.submit(what, self.render, heard.statement, heard.result, number)
            return Ready(heard)
        return Ready(heard, self.render(heard.statement, heard.result, number))

    def ready_all(
        self,
        statements: Sequence[Statement],
        ahead: WorkAhead,
        *,
        unheard: Collection[str],
        side_by_side: int,
    ) -> list[Ready]:
        """Every statement heard, returned in order, ``side_by_side`` at a time (the engine's workers;
        each listened to from a thread of its own, the longest first: the last to be heard are short, and
        so is the wait for them at the end). Each one heard is rendered ahead while the engine still
        listens to another; the last one heard the run renders in its turn, at full speed. What needs
        no words (each card and its sound metered) is asked for first, for every statement in the order
        they are heard: asked for one by one, each card waited behind the render of the statement
        before it, and on a busy machine the engine could hear the rest first."""
        order = list(range(len(statements)))
        if side_by_side > 1:
            order.sort(key=lambda index: -(statements[index].probe.duration_ms or 0))
        for statement in (statements[index] for index in order if statements[index].id in unheard):
            number = self.numbers[statement.id]
            ahead.submit(statement.recording.relpath, self.clip.prepare, statement, number)
        still = set(unheard)
        lock = threading.Lock()

        def one(place: int) -> Ready:
            statement = statements[order[place]]
            made = self.ready(statement, ahead, prepare_ahead=False, render=None)
            with lock:
                still.discard(statement.id)
                later = bool(still)
            if later and not isinstance(made.heard.result, Rejection):
                heard = made.heard
                number = self.numbers[statement.id]
                ahead.submit(statement.recording.relpath, self.render, heard.statement, heard.result, number)
            return made

        if side_by_side <= 1:
            return [one(place) for place in range(len(statements))]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(side_by_side, thread_name_prefix="listen") as pool:
            heard = [pool.submit(one, place) for place in range(len(statements))]
            try:
                made = [future.result() for future in heard]
            finally:
                for future in heard:
                    future.cancel()  # after a failure or Ctrl-C: nothing more is started
        return [ready for _, ready in sorted(zip(order, made, strict=True), key=lambda pair: pair[0])]

    def ready_now(
        self, statements: Sequence[Statement], ahead: WorkAhead, unheard: Collection[str], side_by_side: int
    ) -> list[Ready]:
        """For `hearing watch`: every statement heard, cut and rendered now. Files that landed at once
        are heard ``side_by_side`` at a time first (``ready_all``), then made ready from the cache."""
        if side_by_side > 1:
            self.ready_all(statements, ahead, unheard=unheard, side_by_side=side_by_side)
            ahead.wait()
        return [self.ready(s, ahead, prepare_ahead=True, render="now") for s in statements]

    def render(self, statement: Statement, transcript: StatementTranscript, number: int) -> cut.Cuts:
        """One statement's segments from its own corrections and cut, as the clip will ask for them."""
        corrected = edits.run(
            self.edits_dir,
            [statement],
            {statement.id: transcript},
            SubtitleRules.from_form(self.form),
            leave_starting_files=False,
        )
        made = cut.run(corrected.statements, corrected.transcripts, self.form)
        for kept in made.statements:
            self.clip.render_ahead(kept, made.cuts[kept.id], made.clipped[kept.id], number)
        return made


def readiness(found: Sequence[Rejection], made: Sequence[Ready], form: Form) -> Readiness:
    """What the statements made ready ``now`` come to: the recordings ready, those left out (``found``
    by ingest, on hearing or on cutting) and the clip's length with the ready ones."""
    rejections = list(found)
    ready: dict[str, tuple[Statement, cut.Cut]] = {}
    for one in made:
        if isinstance(one.heard.result, Rejection):
            rejections.append(one.heard.result)
            continue
        assert one.made is not None, "render 'now' makes every heard statement"
        rejections += one.made.rejections
        ready |= {s.id: (s, one.made.cuts[s.id]) for s in one.made.statements}
    kept = [s for s, _ in ready.values()]
    parts = cut.plan_timeline(kept, {k: c for k, (_, c) in ready.items()}, form, title=True)
    return Readiness(
        ready=tuple(s.recording.relpath for s in kept),
        rejections=tuple(rejections),
        clip_ms=sum(p.duration_ms for p in parts) if kept else 0,
        max_clip_ms=round(form.clip.max_duration * 1000),
    )
