"""Check: proof that a delivered clip has the form agreed with the official.

Everything is measured from the delivered files, never taken from the settings that made them: the
container's boxes, the codec's own description of the streams, the timestamp of every video frame, the
loudness of the decoded audio, the subtitle files as a player reads them, and the transcript as the official
receives it. The rules and their sources are in docs/standards.md; the form may override every number.

Rooms: ``results`` (a check's result), ``clip`` (the clip file's facts and their checks), ``subtitles``
(the subtitle files re-judged by the shared timing model), ``transcript`` (transcript checks and the word
diff), ``files`` (the files beside the clip) and ``report`` (the QC report's text, JSON and writing).
``run_check`` here measures a clip and everything beside it and builds the report.

A check that cannot be measured (no audio track: no loudness) is not repeated as a second failure; the
missing track fails once and the report lists what could not be checked.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline.config import Form
from pipeline.model_note import note_for
from pipeline.stages.check.clip import (
    check_clip,
    check_durations,
    check_master,
    check_soft_track,
    measure_clip,
    measure_master,
)
from pipeline.stages.check.files import (
    _companion,
    _model_from_run,
    _read_bytes,
    _relative,
    _timeline_from_file,
    _timeline_from_run,
    master_path,
    timeline_path,
    transcript_path,
)
from pipeline.stages.check.report import CheckedFile, QcReport
from pipeline.stages.check.subtitles import (
    check_subtitle_file,
    check_subtitle_pair,
    check_subtitles,
    speech_spans,
    subtitle_kind,
)
from pipeline.stages.check.transcript import check_transcript
from pipeline.stages.subtitles.rules import Cue


def run_check(
    clip: Path,
    form: Form,
    *,
    subtitles: Path | None,
    transcript_json: Path | None,
    run_json: Path | None,
    timeline: Sequence[Mapping[str, Any]] | None = None,
    timeline_json: Path | None = None,
    language: str | None = None,
    files_ready: Callable[[], object] | None = None,
    model: str | None = None,
) -> QcReport:
    """Measure ``clip`` and the files that belong with it, and judge them against ``form``.

    ``files_ready`` is called once the clip is measured, before any file beside it is looked at: a caller
    still writing one of them (on another core, while ffmpeg meters the clip) finishes it there.

    ``timeline`` (the parts as run.json records them) may be given by a caller that has it in hand;
    otherwise ``timeline_json`` (the delivery's ``<stem>-tidslinje.json``, which the run writes and checks
    too) says where the statements are, else ``run_json`` (an official's copy of the delivery has none).

    ``language`` is the language the clip is in
    (the soft subtitle track must say so); default the form's. The transcript files are looked for beside
    the clip (``<stem>-transkription.<format>``); ``transcript_json`` may point elsewhere. The SRT's
    companion (the .vtt of the same name, or the .srt of a .vtt) is looked for beside it.

    ``model`` is the speech model that wrote the transcript, as the transcript names it, given by a
    caller that knows it; otherwise the transcript JSON says it, else run.json where it is about this
    clip (an official's check of a delivery folder has no run.json).
    """
    from pipeline import __version__, media

    folder = clip.parent
    facts = measure_clip(clip)
    if files_ready is not None:
        files_ready()
    results = check_clip(facts, form)
    files = [CheckedFile("clip", clip.name)]
    not_checked: list[str] = []
    if facts.audio is None:
        not_checked.append("loudness and true peak: the clip has no sound")

    # Where the statements are: given by the caller, else the delivery's own timeline file, else run.json.
    used_timeline = list(timeline) if timeline is not None else None
    if used_timeline is None and timeline_json is not None:
        used_timeline, why = _timeline_from_file(timeline_json, clip, facts.duration_ms)
        files.append(
            CheckedFile("timeline", _relative(timeline_json, folder), f"not used: {why}" if why else "")
        )
    if used_timeline is None and run_json is not None:
        used_timeline, why = _timeline_from_run(run_json, clip, facts.duration_ms)
        files.append(
            CheckedFile("run report", _relative(run_json, folder), f"not used: {why}" if why else "")
        )
    elif used_timeline is None:
        if timeline_json is None:
            files.append(CheckedFile("timeline", None, f"looked for {timeline_path(clip).name}"))
        files.append(CheckedFile("run report", None))
    if used_timeline is None:
        not_checked.append(
            f"length of each statement: needs the clip's timeline ({timeline_path(clip).name} or run.json)"
        )
    results += check_durations(facts.duration_ms, form, used_timeline)
    results.append(check_soft_track(facts, form, language))

    document: Mapping[str, Any] | None = None
    if transcript_json is not None and transcript_json.is_file():
        try:
            loaded = json.loads(transcript_json.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            not_checked.append(f"the transcript's words: {transcript_json.name} cannot be read ({error})")
        else:
            if isinstance(loaded, dict):
                document = loaded
            else:
                not_checked.append(f"the transcript's words: {transcript_json.name} is not a transcript")

    cues: list[Cue] | None = None
    if subtitles is not None:
        data = _read_bytes(subtitles)
        kind = subtitle_kind(subtitles.name).upper()
        files.append(
            CheckedFile(f"subtitles ({kind})", _relative(subtitles, folder) if data is not None else None)
        )
        file_result, cues = check_subtitle_file(subtitles.name, data, form)
        results.append(file_result)
        other = _companion(subtitles)
        other_data = _read_bytes(other)
        other_kind = subtitle_kind(other.name).upper()
        files.append(
            CheckedFile(
                f"subtitles ({other_kind})", _relative(other, folder) if other_data is not None else None
            )
        )
        if cues is not None:
            other_cues = (
                check_subtitle_file(other.name, other_data, form)[1] if other_data is not None else None
            )
            results.append(check_subtitle_pair(subtitles.name, cues, other.name, other_cues))
            speech = speech_spans(cues, document) if document is not None else None
            results += check_subtitles(cues, form, facts.duration_ms, speech=speech, timeline=used_timeline)
    else:
        files.append(CheckedFile("subtitles (SRT)", None, f"looked for {clip.stem}.*.srt"))
        results.append(check_subtitle_file(f"{clip.stem}.srt", None, form)[0])
    if cues is None:
        not_checked.append("the subtitle rules: no readable subtitle file")
    if form.subtitles.clean_master:
        master = master_path(clip)
        master_facts = measure_master(master)
        files.append(CheckedFile("clean master", master.name if master_facts is not None else None))
        count = len(cues) if cues is not None else None
        results += check_master(master.name, master_facts, facts, count, form, language)

    present: dict[str, bool] = {}
    for fmt in form.transcript.formats:
        path = (
            transcript_json if fmt == "json" and transcript_json is not None else transcript_path(clip, fmt)
        )
        present[fmt] = path.is_file() and path.stat().st_size > 0
        files.append(CheckedFile(f"transcript ({fmt})", _relative(path, folder) if present[fmt] else None))
    if transcript_json is not None and "json" not in form.transcript.formats:
        files.append(CheckedFile("transcript (json)", _relative(transcript_json, folder)))
    if document is None and cues is not None and transcript_json is None:
        not_checked.append("the transcript's words: no transcript JSON beside the clip")
    results += check_transcript(form, present, cues, document)

    if model is None and document is not None and isinstance(document.get("model"), str):
        model = document["model"]
    if model is None and run_json is not None:
        model = _model_from_run(run_json, clip)

    choice = media.ffmpeg_choice()  # the measurements above ran with it, so it is there
    ffmpeg = choice.version
    return QcReport(
        clip=clip.name,
        form=form.name,
        agreed_with=form.agreed_with,
        checked_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        tools=f"hearing-pipeline {__version__}, ffmpeg {ffmpeg}",
        files=tuple(files),
        results=tuple(results),
        not_checked=tuple(not_checked),
        ffmpeg=choice.to_json(),
        model=note_for(model) if model else None,
    )
