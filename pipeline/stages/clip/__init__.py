"""The clip: cards, subtitles and segments planned on one timeline, rendered through the cache, joined.

Rooms: ``timeline`` (the pure plan: parts, cues, cuts that run on, the problems the render stops on),
``specs`` (what each step makes, under which key and with which command) and ``maker`` (``ClipMaker``:
the plan's steps, the render, and the segments made ahead of the whole clip).
"""

from pipeline.stages.clip.maker import ClipMaker, ClipResult
from pipeline.stages.clip.timeline import (
    Problem,
    Timeline,
    describe,
    plan_timeline_cues,
    problems,
    reading_run_on,
    statement_number,
)

__all__ = [
    "ClipMaker",
    "ClipResult",
    "Problem",
    "Timeline",
    "describe",
    "plan_timeline_cues",
    "problems",
    "reading_run_on",
    "statement_number",
]
