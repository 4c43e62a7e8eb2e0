"""The one table of `make bench`: every benchmark's ratio against its target, from the latest results
of each (bench/results/<name>-<date>.json), written together to bench/results/<date>.json.

Run last: python bench/summary.py
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, latest, machine


def rows() -> list[tuple[str, str, str, bool | None]]:
    """(what, measured, target, met) for each line."""
    out: list[tuple[str, str, str, bool | None]] = []
    engines = latest("engines")
    if engines:
        wer = engines["wer"]
        out.append(("engines: openai-whisper time / faster-whisper time", f"{engines['speed_ratio']:.1f}x",
                    ">= 3x", engines["speed_ratio"] >= 3))  # fmt: skip
        out.append(("engines: word error rate faster - openai",
                    f"{wer['faster-whisper']:.1%} - {wer['openai-whisper']:.1%} = {engines['wer_gap']:+.1%}",
                    "<= +2 points", engines["wer_gap"] <= 0.02))  # fmt: skip
    pipeline = latest("pipeline")
    if pipeline:
        scaling = pipeline["scaling"]
        short, long = scaling["minutes"]
        out += [
            ("transcription stage / bare engine", f"{pipeline['transcription_ratio']:.2f}x", "<= 1.05x",
             pipeline["transcription_ratio"] <= 1.05),
            # Since 2026-12-06 the floor is made from the recordings; before, the delivery encoded again.
            ("render stages / bare render" + (" from the recordings" if "whole_run_ratio_again" in
             pipeline["runs"][0] else " (the delivery encoded again)"), f"{pipeline['render_ratio']:.2f}x",
             "<= 1.10x", pipeline["render_ratio"] <= 1.10),
            ("whole run / (bare transcription + bare render)", f"{pipeline['whole_run_ratio']:.2f}x",
             "<= 1.05x, then < 1.0x", pipeline["whole_run_ratio"] <= 1.05),
            (f"{scaling['input_ratio']:.0f}x the statements ({short} -> {long} min)",
             f"{scaling['time_ratio']:.2f}x the time", "<= 2.1x", scaling["time_ratio"] <= 2.1),
            ("peak memory of the whole process tree", f"{scaling['peak_mb']:.0f} MB", "<= 1500 MB, flat",
             scaling["peak_mb"] <= 1500),
        ]  # fmt: skip
    render = latest("render")
    if render:
        out.append(("re-render after a one-word correction / bare segment + join",
                    f"{render['median_ratio']:.2f}x", "<= 1.3x", render["median_ratio"] <= 1.3))  # fmt: skip
        if "median_ratio_with_check" in render:
            out.append(("... / bare segment + join + the check's metering",
                        f"{render['median_ratio_with_check']:.2f}x", "<= 1.3x",
                        render["median_ratio_with_check"] <= 1.3))  # fmt: skip
    review = latest("review")
    if review:
        out.append(("Lav leverancen after a one-word correction / segment + join + metering",
                    f"{review['median_ratio']:.2f}x", "<= 1.3x", review["median_ratio"] <= 1.3))  # fmt: skip
    watched = latest("watch")
    if watched:
        out.append(("hearing watch: last recording landing -> delivery / its floor",
                    f"{watched['ratio']:.2f}x", "<= 1.3x", watched["ratio"] <= 1.3))  # fmt: skip
    archive = latest("archive")
    if archive:
        speed = archive["speed_vs_floor"]
        out.append(("bagging 2 GB: speed / its floor (both digests, one copy)", f"{speed:.2f}x", ">= 0.8x",
                    speed >= 0.8))  # fmt: skip
        out.append(("bagging: peak memory", f"{archive['peak_mb']:.0f} MB", "<= 200 MB",
                    archive["peak_mb"] <= 200))  # fmt: skip
    for shape in ("large-v3", "large-v3-turbo"):
        out += _shape_rows(shape)
    accuracy = latest("accuracy")
    if accuracy and "models" in accuracy:
        from accuracy_bench import IN_USE, MAX_LOSS_WORDS

        for model, measured in accuracy["models"].items():
            wer = measured["wer"]
            pipe, bare = wer[IN_USE]["all"], wer["bare engine"]["all"]
            out.append((f"accuracy, {model}: the pipeline's word error rate - the bare engine's",
                        f"{pipe:.1%} - {bare:.1%} = {pipe - bare:+.1%}", "<= 0",
                        pipe <= bare + 1e-9))  # fmt: skip
            loss = measured["worst_loss_words"][IN_USE]
            out.append((f"... {model}: words lost on the recording where it does worst", f"{loss:+d}",
                        f"<= +{MAX_LOSS_WORDS}", loss <= MAX_LOSS_WORDS))  # fmt: skip
    return out


def _shape_rows(shape: str) -> list[tuple[str, str, str, bool | None]]:
    """The lines of bench/large_bench.py for one model shape (random weights, decoding forced)."""
    measured = latest(f"{shape}-shape")
    if not measured:
        return []
    out: list[tuple[str, str, str, bool | None]] = []
    watched = measured.get("watch")
    for key, meeting in (("run", "5 statements"), ("run_long", "a long reading + 1")):
        run = measured.get(key)
        if not run:
            continue
        out += [
            (f"{shape} shape, {meeting}: transcription stage / bare engine",
             f"{run['transcription_ratio']:.2f}x", "<= 1.0x", run["transcription_ratio"] <= 1.0),
            (f"... {shape} shape, {meeting}: real-time factor of the bare engine here",
             f"{run['bare_transcription_s'] / run['audio_s']:.2f}", "(reported)", None),
            (f"... {shape} shape, {meeting}: whole run / (bare transcription + bare render)",
             f"{run['whole_run_ratio']:.2f}x", "<= 1.0x", run["whole_run_ratio"] <= 1.0),
        ]  # fmt: skip
        if "whole_run_ratio_again" in run:  # the render's floor made from the recordings (2026-12-06)
            again = f"... {shape} shape, {meeting}: whole run / (bare transcription + delivery encoded again)"
            out.append((again, f"{run['whole_run_ratio_again']:.2f}x", "(reported)", None))
        if "cpu_ratio" in run:  # measured since 2026-12-06
            cpu = f"... {shape} shape, {meeting}: CPU seconds, run / (bare transcription + bare render)"
            out.append((cpu, f"{run['cpu_ratio']:.2f}x", "(reported)", None))
        unahead = measured.get(f"{key}_nothing_ahead")
        if unahead:  # large_bench.py --nothing-ahead: the run rendering nothing while the engine listens
            what = f"... {shape} shape, {meeting}, nothing done ahead: transcription stage / bare engine"
            out.append((what, f"{unahead['transcription_ratio']:.2f}x", "(reported)", None))
            what = f"... {shape} shape, {meeting}, nothing done ahead: whole run / its floor"
            out.append((what, f"{unahead['whole_run_ratio']:.2f}x", "(reported)", None))
    if watched:
        out.append((f"... {shape} shape: watch, 5 back to back: last landing -> delivery / its floor",
                    f"{watched['ratio']:.2f}x", "<= 1.3x", watched["ratio"] <= 1.3))  # fmt: skip
    return out


def main() -> int:
    table = rows()
    width = max((len(r[0]) for r in table), default=10) + 2
    print(f"\n{'what':<{width}}{'measured':<34}{'target':<24}met")
    print("-" * (width + 62))
    for what, measured, target, met in table:
        verdict = "" if met is None else "yes" if met else "NO"
        print(f"{what:<{width}}{measured:<34}{target:<24}{verdict}")
    info = machine()
    print(f"\nmachine: {info['cores']} cores, {info['cpu']}, {info['memory_mb']} MB, {info['system']}")
    document: dict[str, Any] = {
        "kind": "hearing-pipeline benchmarks",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": info,
        "lines": [{"what": w, "measured": m, "target": t, "met": ok} for w, m, t, ok in table],
    }
    target = RESULTS / f"{dt.date.today().isoformat()}.json"
    RESULTS.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"results: {target.relative_to(RESULTS.parent.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
