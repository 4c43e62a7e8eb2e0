"""Loudness arithmetic: a cut's loudness from the recording's metering, and when a plain gain will do."""

from __future__ import annotations

import json
import math


def test_a_plain_gain_is_taken_only_with_the_true_peak_safely_under_the_limit() -> None:
    from pipeline import media
    from pipeline.config import Form
    from pipeline.stages import render

    form = Form.model_validate({"audio": {"loudness": -23, "true_peak": -1}})

    def fits(integrated: float, true_peak: float, threshold: float = -40.0) -> bool:
        return render.linear_gain_fits(media.Loudness(integrated, true_peak, 5.0, threshold, 0.0), form)

    assert fits(-20.0, -5.0)  # 3 dB down: the peak goes to -8
    assert fits(-30.0, -8.5)  # 7 dB up: the peak goes to -1.5, under -1 with the margin
    assert not fits(-30.0, -8.0)  # to -1.0: at the limit, loudnorm decides
    assert not fits(-25.0, 0.5)  # a clipping recording
    assert not fits(-70.0, -60.0, threshold=-70.0)  # nothing above the gate


FRAME_LOG = [
    "[Parsed_ebur128_1 @ 0x55e9] t: 0.0999773  TARGET:-23 LUFS    M:-120.7 S:-120.7     I: -70.0 LUFS"
    "       LRA:   0.0 LU  FTPK: -35.0 -35.4 dBFS  TPK: -35.0 -35.4 dBFS",
    "[Parsed_ebur128_1 @ 0x55e9] t: 0.199977   TARGET:-23 LUFS    M: -26.2 S:-120.7     I: -26.2 LUFS"
    "       LRA:   0.0 LU  FTPK:  -9.5 dBFS  TPK:  -9.5 dBFS",
    "[Parsed_ebur128_1 @ 0x55e9] Summary:",
]


def test_the_frame_log_is_read_frame_by_frame() -> None:
    from pipeline.media import loudness

    frames = loudness.parse_frame_log(FRAME_LOG)
    assert frames.momentary == (-120.7, -26.2) and frames.short_term == (-120.7, -120.7)
    assert frames.peaks == (-35.0, -9.5), "the loudest channel's peak"
    assert loudness.SoundFrames.from_json(json.loads(json.dumps(frames.to_json()))) == frames


def test_a_stretch_is_gated_as_bs1770_gates_it() -> None:
    from pipeline.media import loudness

    # After 0.4 s of silence, 10 s at -20 LUFS, then 10 s at -40 (more than 10 LU below the mean:
    # gated out), then silence; a frame's value belongs to the 100 ms that end there.
    momentary = (-120.7,) * 4 + (-20.0,) * 100 + (-40.0,) * 100 + (-120.7,) * 50
    frames = loudness.SoundFrames(momentary, momentary, (-6.0,) * 104 + (-30.0,) * 150)
    whole = loudness.stretch(frames, 0, 25_400)
    assert abs(whole.integrated - -20.0) < 0.01 and whole.true_peak == -6.0
    assert abs(whole.threshold - (-20 + 10 * math.log10((1 + 0.01) / 2) - 10)) < 0.01
    quiet = loudness.stretch(frames, 10_400, 20_400)
    assert abs(quiet.integrated - -40.0) < 0.01 and quiet.true_peak == -30.0 and quiet.lra == 0.0
    silent = loudness.stretch(frames, 20_900, 25_400)
    assert silent.integrated == silent.threshold == -70.0, "nothing above the gate"
    # The range: the short-term values from -20 to -40 all lie within 20 LU of their mean.
    assert abs(whole.lra - 20.0) < 0.01
