"""The speech engine on the review page's side: loaded the first time a person adds words, it hears
where they are said (in the background, into the cache the render reads) and is lent to the render the
page starts; one user of it at a time."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.cache import WorkCache
from pipeline.review.view import ReviewStatement
from pipeline.stages import edits
from pipeline.stages.subtitles.rules import SubtitleRules

if TYPE_CHECKING:
    from pipeline.report import RunOptions

log = logging.getLogger(__name__)


class Alignment:
    """The run's engine for one review, and the alignments of the words a person added."""

    def __init__(self, options: RunOptions, work: WorkCache, edits_dir: Path, rules: SubtitleRules) -> None:
        self.options = options
        self.work = work
        self.edits_dir = edits_dir
        self.rules = rules
        # The engine, loaded the first time a person adds words (to hear where they are said), and lent
        # to the render; one user of it at a time.
        self.loaded: Any = None
        self.lock = threading.Lock()

    def speech_audio(self, item: ReviewStatement) -> Path | None:
        from pipeline import media
        from pipeline.stages.transcribe import audio_key

        path = self.work.audio(audio_key(item.statement, media.speech_decoder()))
        return path if path.exists() else None

    def aligner(self, engine: Any) -> Any:
        from pipeline import engines
        from pipeline.stages import align

        return align.Aligner(
            self.work,
            self.work.hashes(),
            engine,
            engines.cache_identity(self.options.engine, self.options.model, self.device()),
        )

    def device(self) -> Any:
        """Where the run's engine runs, asked as the run was (run.json), for the alignment keys."""
        import os

        from pipeline.engines import device

        return device.for_engine(self.options.engine, device.asked_device(self.options.device, os.environ))

    def engine(self) -> Any:
        """The run's engine and model, loaded once (only when a person added words)."""
        from pipeline.engines import load_engine

        if self.loaded is None:
            self.loaded = load_engine(self.options.engine, self.options.model, self.device())
        return self.loaded

    def align_soon(self, item: ReviewStatement) -> None:
        """Where the person added words, hear where they are said, in the background, into the cache the
        render reads: "Lav leverancen" then finds it done."""
        from pipeline import cache
        from pipeline.stages import align
        from pipeline.stages.transcribe import transcript_from_json

        def work() -> None:
            with self.lock:
                try:
                    stored = cache.read_json(item.transcript) if item.transcript else None
                    if not isinstance(stored, dict):
                        return
                    found = edits.read(self.edits_dir, item.statement)
                    _, transcript, _, _ = edits.corrected_one(
                        item.statement, transcript_from_json(stored), found, self.rules
                    )
                    if transcript is None or not align.requests(transcript, item.statement.probe.duration_ms):
                        return
                    self.aligner(self.engine).aligned(
                        transcript, self.speech_audio(item), item.statement.probe.duration_ms
                    )
                except Exception as error:  # the render aligns what is not done here
                    log.info("review: could not align the added words of %s (%s)", item.relpath, error)

        thread = threading.Thread(target=work, name="align", daemon=True)
        thread.start()
