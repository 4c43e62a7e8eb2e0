"""Render: every part of the clip encoded once into a segment, then the segments joined without
re-encoding the picture.

Each statement is decoded from its original recording, turned upright, scaled and padded into the form's
frame at a constant frame rate, its subtitles burned in, its audio normalised on its own (two-pass
loudnorm) and written as H.264 with PCM audio. PCM keeps the audio lossless until the join, where it is
encoded to AAC in one pass over the whole clip, so the joins have no priming gaps or clicks. Cards are
still pictures with silence, encoded with the very same parameters.

The functions that build ffmpeg arguments are pure (ffmpeg-python graphs, ``get_args()``); ``run_*`` do
the work through pipeline.media.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.config import Form
from pipeline.media import GLOBAL_ARGS, IMAGE_INPUT, Loudness, downmix_pan, input_path, output_path
from pipeline.media.loudness import ABSOLUTE_GATE
from pipeline.models import AudioInfo, Statement
from pipeline.stages.cut import Cut, Part
from pipeline.timefmt import ffmpeg_rate, ffmpeg_seconds

# 2: the ffmpeg version is part of the key; 3: a card's picture is prepared once; 4: a short statement's
# gain stays linear (MIN_MEASURED_LRA)
VERSION = 4
AUDIO_BITRATE = "160k"
LRA_TARGET = 11  # loudness range loudnorm aims at; with linear=true it only matters as a limit


# ------------------------------------------------------------------------------------------ pure core


def form_slice(form: Form) -> dict[str, Any]:
    """The parts of the form a segment depends on (a changed loudness target re-renders; a changed
    transcript format does not)."""
    return {"video": form.video.model_dump(), "audio": form.audio.model_dump()}


def _encode_options(form: Form, frames: int) -> dict[str, Any]:
    fps = form.video.fps
    return {
        "vcodec": "libx264",
        "preset": form.video.preset,
        "crf": form.video.crf,
        "profile:v": "high",
        "pix_fmt": "yuv420p",
        "g": max(1, round(2 * fps)),  # a key frame every 2 s lets players seek
        "r": ffmpeg_rate(fps),
        "frames:v": frames,
        "acodec": "pcm_s16le",
        "ar": form.audio.sample_rate,
        "ac": form.audio.channels,
        "map_metadata": -1,
        "f": "mov",
    }


def _samples(part: Part, form: Form) -> int:
    return round(part.frames * form.audio.sample_rate / part.fps)


def _fitted(stream: Any, form: Form) -> Any:
    """Upright (ffmpeg turns the picture by its rotation flag while decoding), square pixels, scaled into
    the frame keeping its shape, black bars where it does not fill it."""
    width, height = form.video.width, form.video.height
    return (
        stream.filter("scale", w="trunc(iw*sar/2)*2", h="ih")
        .filter("setsar", 1)
        .filter("scale", w=width, h=height, force_original_aspect_ratio="decrease", force_divisible_by=2)
        .filter("pad", w=width, h=height, x="(ow-iw)/2", y="(oh-ih)/2", color="black")
        .filter("setsar", 1)
    )


def _frame_chain(stream: Any, form: Form) -> Any:
    """Fitted into the frame, at a constant frame rate, yuv420p."""
    return _fitted(stream, form).filter("fps", fps=ffmpeg_rate(form.video.fps)).filter("format", "yuv420p")


def _still(card_png: Path, form: Form) -> Any:
    """A card's picture as frames at the form's rate, for as long as the output takes them: fitted and
    converted once, then repeated. (Read again for every frame, as ``-loop 1`` does, the picture's
    decoding and scaling took half of a card's encoding time.)"""
    import ffmpeg

    picture = _fitted(ffmpeg.input(input_path(card_png), **IMAGE_INPUT).video, form).filter(
        "format", "yuv420p"
    )
    return picture.filter("loop", loop=-1, size=1, start=0).filter(
        "setpts", f"N/({ffmpeg_rate(form.video.fps)})/TB"
    )


def _audio_pre(stream: Any, form: Form, audio: AudioInfo | None) -> Any:
    # The layout the clip will have, before measuring, so that measurement and result agree.
    return _mixed(stream, form.audio.channels, audio).filter(
        "aformat", channel_layouts="stereo" if form.audio.channels == 2 else "mono"
    )


def _mixed(stream: Any, channels: int, audio: AudioInfo | None) -> Any:
    """Channels ffmpeg cannot mix down by itself (many, in no known order) mixed with equal weight."""
    pan = downmix_pan(audio, channels) if audio is not None else None
    return stream.filter("pan", pan) if pan else stream


def stream_info(statement: Statement) -> AudioInfo | None:
    """What the probe says of the statement's audio stream."""
    return next((a for a in statement.probe.audio if a.index == statement.audio_stream), None)


def meter_args(source: Path, audio_stream: int, form: Form, audio: AudioInfo | None = None) -> list[str]:
    """Meter the whole of a recording's sound, every 100 ms, in the layout the clip will have: any cut's
    loudness then follows from it (media.loudness). ebur128 takes a third of the time of a measuring
    loudnorm pass, which resamples to 192 kHz and normalises as it measures. ``audio``: the stream as
    probed, for its channels."""
    import ffmpeg

    stream = ffmpeg.input(input_path(source))
    return _measuring(
        _audio_pre(stream[str(audio_stream)], form, audio).filter("ebur128", peak="true", framelog="info")
    )


def loudnorm_pass_args(
    source: Path, audio_stream: int, cut: Cut, form: Form, audio: AudioInfo | None = None
) -> list[str]:
    """First loudnorm pass over the cut: its own measurement, for a statement that a plain gain cannot
    bring to the target within the true-peak limit (``linear_gain_fits``)."""
    import ffmpeg

    stream = ffmpeg.input(input_path(source), ss=ffmpeg_seconds(cut.in_ms), t=ffmpeg_seconds(cut.duration_ms))
    chain = _audio_pre(stream[str(audio_stream)], form, audio).filter(
        "loudnorm", I=form.audio.loudness, TP=form.audio.true_peak, LRA=LRA_TARGET, print_format="json"
    )
    return _measuring(chain)


def _measuring(chain: Any) -> list[str]:
    """A measuring pass over ``chain``: nothing written, the measurement logged on stderr."""
    import ffmpeg

    graph = ffmpeg.output(chain, "-", f="null")
    return ["-nostdin", "-hide_banner", "-nostats", "-loglevel", "info", *graph.get_args()]


LINEAR_MARGIN_DB = 0.3  # the meter logs to 0.1 dB, and a stretch is taken to the nearest 100 ms


# The smallest loudness range loudnorm takes as measured (its parameter's precision is 0.01 LU).
MIN_MEASURED_LRA = 0.01


def linear_gain_fits(metered: Loudness, form: Form) -> bool:
    """Whether the second loudnorm pass, given this measurement, brings the statement to the target by
    a plain gain (its linear mode): something above the gate, and the true peak kept under the form's
    limit with a margin. Otherwise loudnorm normalises dynamically, from its own measuring pass."""
    gain = form.audio.loudness - min(metered.integrated, 0.0)
    fits_peak = metered.true_peak + gain <= form.audio.true_peak - LINEAR_MARGIN_DB
    return metered.threshold > ABSOLUTE_GATE and fits_peak


def _normalised_audio(
    stream: Any, form: Form, measured: Loudness, samples: int, audio: AudioInfo | None
) -> Any:
    """Second loudnorm pass with the measured values: a linear gain where the target allows it, so speech
    keeps its dynamics; then exactly the segment's number of samples."""
    chain = _audio_pre(stream, form, audio).filter(
        "loudnorm",
        I=form.audio.loudness,
        TP=form.audio.true_peak,
        LRA=LRA_TARGET,
        # loudnorm takes measured values only up to 0 LUFS; clipping recordings can measure above it.
        measured_I=min(measured.integrated, 0.0),
        measured_TP=measured.true_peak,
        # loudnorm reads a measured range of exactly 0 as "not measured" and then normalises dynamically
        # (a statement shorter than a few seconds has no range to measure): the smallest range it reads
        # as given keeps the plain gain that linear_gain_fits promised.
        measured_LRA=max(measured.lra, MIN_MEASURED_LRA),
        measured_thresh=min(measured.threshold, 0.0),
        offset=measured.offset,
        linear="true",
    )
    return (
        chain.filter("aresample", form.audio.sample_rate)
        .filter("apad", whole_len=samples)
        .filter("atrim", end_sample=samples)
        .filter("asetpts", "N/SR/TB")
    )


def statement_args(
    source: Path,
    statement: Statement,
    cut: Cut,
    part: Part,
    form: Form,
    measured: Loudness,
    target: Path,
    *,
    subtitles: Path | None,
    fonts_dir: Path | None,
    card_png: Path | None,
) -> list[str]:
    """ffmpeg arguments for one statement's segment. ``card_png`` is the picture of an audio-only
    statement; ``subtitles`` an ASS file timed to this segment, burned in with the shipped font."""
    import ffmpeg

    duration = ffmpeg_seconds(part.duration_ms)
    recording = ffmpeg.input(input_path(source), ss=ffmpeg_seconds(cut.in_ms), t=duration)
    if statement.probe.video is not None and card_png is None:
        # A picture that ends before the sound holds its last frame instead of going black.
        picture = _frame_chain(recording[str(statement.probe.video.index)], form).filter(
            "tpad", stop_mode="clone", stop_duration=duration
        )
    else:
        assert card_png is not None, "an audio-only statement needs its card as picture"
        picture = _still(card_png, form)
    if subtitles is not None:
        picture = picture.filter(
            "subtitles",
            filename=str(subtitles.resolve()),
            fontsdir=str(fonts_dir.resolve()) if fonts_dir else "",
        )
    sound = _normalised_audio(
        recording[str(statement.audio_stream)], form, measured, _samples(part, form), stream_info(statement)
    )
    graph = ffmpeg.output(picture, sound, output_path(target), **_encode_options(form, part.frames))
    return [*GLOBAL_ARGS, *graph.get_args()]


def burn_args(
    clean: Path, subtitles: Path, fonts_dir: Path | None, part: Part, form: Form, target: Path
) -> list[str]:
    """A statement's segment with its subtitles burned in, made from its clean segment (the clean
    master's): the picture encoded once more with the text, the sound copied as it is. Decoding a
    segment already fitted into the frame costs a fraction of decoding, turning and scaling the
    recording and measuring its sound again, and the two segments cannot differ but by the text."""
    import ffmpeg

    segment = ffmpeg.input(input_path(clean))
    picture = segment.video.filter(
        "subtitles",
        filename=str(subtitles.resolve()),
        fontsdir=str(fonts_dir.resolve()) if fonts_dir else "",
    )
    options = {**_encode_options(form, part.frames), "acodec": "copy"}
    options.pop("ar")
    options.pop("ac")
    graph = ffmpeg.output(picture, segment.audio, output_path(target), **options)
    return [*GLOBAL_ARGS, *graph.get_args()]


def card_args(card_png: Path, part: Part, form: Form, target: Path) -> list[str]:
    """A card: its still picture for the part's length, with silence."""
    import ffmpeg

    duration = ffmpeg_seconds(part.duration_ms)
    layout = "stereo" if form.audio.channels == 2 else "mono"
    silence = ffmpeg.input(
        f"anullsrc=r={form.audio.sample_rate}:cl={layout}", f="lavfi", t=duration
    ).audio.filter("atrim", end_sample=_samples(part, form))
    graph = ffmpeg.output(
        _still(card_png, form), silence, output_path(target), **_encode_options(form, part.frames)
    )
    return [*GLOBAL_ARGS, *graph.get_args()]


PREVIEW_VERSION = 1
PREVIEW_HEIGHT = 360


def preview_args(source: Path, statement: Statement, target: Path) -> list[str]:
    """A small copy of a recording that every browser plays (H.264 and AAC in MP4, upright, 360 lines,
    the index first), for the review page: phones record HEVC or MOV that a browser may refuse. Times
    are the recording's own, so that a cue's time points at the same words."""
    import ffmpeg

    stream = ffmpeg.input(input_path(source))
    outputs: list[Any] = []
    if statement.probe.video is not None:
        picture = stream[str(statement.probe.video.index)].filter("scale", -2, PREVIEW_HEIGHT)
        outputs.append(picture.filter("format", "yuv420p"))
    outputs.append(_mixed(stream[str(statement.audio_stream)], 2, stream_info(statement)))
    options: dict[str, Any] = {
        "acodec": "aac",
        "b:a": "96k",
        "ac": 2,
        "movflags": "+faststart",
        "map_metadata": -1,
        "f": "mp4",
    }
    if statement.probe.video is not None:
        options.update(vcodec="libx264", preset="veryfast", crf=30, g=25)
    graph = ffmpeg.output(*outputs, output_path(target), **options)
    return [*GLOBAL_ARGS, *graph.get_args()]


def concat_list(segments: list[Path]) -> str:
    """The concat demuxer's list; quotes in a path are closed, escaped and reopened as it requires."""
    lines = ["ffconcat version 1.0"]
    for path in segments:
        escaped = str(path.resolve()).replace("'", "'\\''")
        lines.append(f"file '{escaped}'")
    return "\n".join(lines) + "\n"


def join_args(
    list_file: Path,
    form: Form,
    target: Path,
    *,
    soft_subtitles: Path | None,
    language: str,
    title: str,
) -> list[str]:
    """Join the segments: the picture copied as encoded, the audio encoded once to AAC, the soft
    subtitle track added when the form says so, the index moved to the front for playback on the web."""
    args = [
        *GLOBAL_ARGS,
        "-f", "concat", "-safe", "0", "-i", input_path(list_file),
    ]  # fmt: skip
    if soft_subtitles is not None:
        args += ["-i", input_path(soft_subtitles)]
    args += ["-map", "0:v:0", "-map", "0:a:0"]
    if soft_subtitles is not None:
        args += ["-map", "1:s:0", "-c:s", "mov_text", "-metadata:s:s:0", f"language={iso639_2(language)}"]
    args += [
        "-c:v", "copy",
        "-c:a", "aac", "-b:a", AUDIO_BITRATE,
        "-ar", str(form.audio.sample_rate), "-ac", str(form.audio.channels),
        "-metadata", f"title={title}",
        "-metadata:s:a:0", f"language={iso639_2(language)}",
        "-movflags", "+faststart",
        "-f", "mp4",
        output_path(target),
    ]  # fmt: skip
    return args


_ISO639_2 = {"da": "dan", "en": "eng", "de": "ger", "sv": "swe", "no": "nor", "nb": "nob", "nn": "nno"}


def iso639_2(language: str) -> str:
    """MP4 tracks name their language in three letters."""
    return _ISO639_2.get(language, language if len(language) == 3 else "und")


def segment_key(kind: str, inputs: dict[str, Any], form: Form, ffmpeg_version: str) -> str:
    """Another ffmpeg may encode other bytes (or, when older, fail where this one worked): its version
    is part of every rendered thing's key."""
    from pipeline import cache

    return cache.make_key(
        "render", VERSION, {"kind": kind, **inputs}, form=form_slice(form), tools={"ffmpeg": ffmpeg_version}
    )


# ------------------------------------------------------------------------------------------------ I/O


def run_segment(
    args: list[str],
    target: Path,
    *,
    what: str,
    duration_ms: int,
    on_progress: Callable[[float], None] | None = None,
) -> None:
    """Encode one segment beside its place in the cache and rename it there when complete."""
    from pipeline import media
    from pipeline.files import atomic_path

    with atomic_path(target) as temp:
        media.run_ffmpeg(
            [output_path(temp) if a == output_path(target) else a for a in args],
            what=what,
            duration_ms=duration_ms,
            on_progress=on_progress,
        )
