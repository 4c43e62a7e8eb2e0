"""Media: everything that runs ffmpeg or opens a media file with PyAV, one module per concern.

- ``process``: the one module that starts programs (ffmpeg, and the watchdog that ends them with the
  pipeline); every command logged exactly, a failure a MediaError with the tail of ffmpeg's stderr.
- ``stderr``: the line of ffmpeg's stderr that says why it failed.
- ``tools``: which ffmpeg a run uses (``HEARING_FFMPEG``, PATH or the bundled one), ``run_ffmpeg``, and
  how file names are put to it; ``needs``: what the pipeline needs of a binary and how its answers read.
- ``probing``: what a recording (``probe``) or a finished clip holds.
- ``audio``: the speech engines' 16 kHz mono WAV, and how channels are mixed down.
- ``loudness``: loudness measurements, and the loudness of any stretch of a metered recording.

The rest of the pipeline calls ``media.X`` (``from pipeline import media``): the names it uses are
re-exported here.
"""

from pipeline.media.audio import (
    MAX_CHANNELS,
    SPEECH_RATE,
    downmix_pan,
    extract_speech_audio,
    read_wav_mono16k,
    speech_audio_plan,
    speech_decoder,
    wav_duration_ms,
)
from pipeline.media.loudness import (
    R128,
    Loudness,
    measure_loudness,
    measure_r128,
    parse_loudnorm,
    parse_r128,
    r128_args,
)
from pipeline.media.probing import FileFacts, TrackFacts, mp4_boxes, probe, read_file_facts
from pipeline.media.process import AHEAD_NICENESS, FfmpegResult, lower_priority
from pipeline.media.stderr import telling_line
from pipeline.media.tools import (
    FFMPEG_ENV,
    GLOBAL_ARGS,
    IMAGE_INPUT,
    FfmpegChoice,
    assess_ffmpeg,
    command_line,
    ffmpeg_choice,
    ffmpeg_exe,
    ffmpeg_version,
    input_path,
    output_path,
    run_ffmpeg,
)

__all__ = [
    "AHEAD_NICENESS",
    "FFMPEG_ENV",
    "GLOBAL_ARGS",
    "IMAGE_INPUT",
    "MAX_CHANNELS",
    "R128",
    "SPEECH_RATE",
    "FfmpegChoice",
    "FfmpegResult",
    "FileFacts",
    "Loudness",
    "TrackFacts",
    "assess_ffmpeg",
    "command_line",
    "downmix_pan",
    "extract_speech_audio",
    "ffmpeg_choice",
    "ffmpeg_exe",
    "ffmpeg_version",
    "input_path",
    "lower_priority",
    "measure_loudness",
    "measure_r128",
    "mp4_boxes",
    "output_path",
    "parse_loudnorm",
    "parse_r128",
    "probe",
    "r128_args",
    "read_file_facts",
    "read_wav_mono16k",
    "run_ffmpeg",
    "speech_audio_plan",
    "speech_decoder",
    "telling_line",
    "wav_duration_ms",
]
