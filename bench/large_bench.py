"""Benchmark: the run and `hearing watch` with a large model's shape on this machine (issue 28).

Every other benchmark measures with the embedded base model. A model fit for Danish is large-v3's shape
(or turbo's); ``shapes.py`` makes models of both shapes with random weights, converted as `hearing models
get` converts, and forces them to decode as many tokens as real Danish speech takes. With them, measured
side by side in one run (ratios, never absolute times; one run each, as a large model's run takes
minutes). "The bare engine" is faster-whisper with its defaults (beam 5, its voice detector), the
language given, on every core, decoding only: no word times, which the pipeline must make as well, so
it is a floor below the pipeline's work. (Asked for word times while decoding, faster-whisper moves each
next window to the last word's end and, on the forced models' tails, decodes extra windows of a
fraction of a second each, a whole encoder pass apiece: that row is measured too.)

- tuning: the bare engine on every real Danish recording of the repository, against the same with one
  setting changed (engine threads, greedy instead of beam 5, faster-whisper's batched pipeline, no voice
  detection, CTranslate2's packed int8 kernels, 16-bit weights, words timed while decoding), and the
  pipeline's own engine as the run uses it: each in a process of its own, the model loaded before the
  clock starts, the file's decoding counted;
- transcription stage / bare engine and whole run / (bare transcription + bare render): `hearing run` of
  two meetings, the five statements of the watch below and one of a long reading and a short statement
  (Danish speech and a video), against the bare engine on the same recordings one after another in a
  process of its own (model load included; measured before the run and after it, their mean counted,
  as this machine's speed drifts within minutes) and one bare ffmpeg command making what the form
  delivers from the recordings (the clip, and the clean master the demo form asks for beside it:
  pipeline_bench.py's ``bare_render_from_recordings``; the delivery encoded again, the floor counted
  until 2026-12-06, is reported beside it); the CPU seconds of each too (the work done, which the
  machine's other load does not change);
- watch: five statements recorded back to back (each copied in when the next person would have
  finished recording it), from the last one landing to the delivery, against that statement's floor
  (the bare engine on it with the model loaded, its bare segment render and the bare join).

The real-time factor is reported, not a target. Run: python bench/large_bench.py [--shape NAME] [--only PART]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import shapes
from _common import (
    MEDIA,
    REPO,
    RESULTS,
    Watching,
    bare,
    delivered_clip,
    delivered_master,
    land,
    run_measured,
    with_cpu,
    write_result,
)

TARGETS = {"transcription": 1.0, "whole_run": 1.0, "watch": 1.3}
RUN_RECORDINGS = ("da-udhr-preamble.mp3", "en-talking-head.mp4")
RUN_MEETINGS = {
    "run": "five statements of a queue at the camera (24-39 s)",
    "run_long": "a long reading and a short statement (116 s and 42 s)",
}
CORES = os.cpu_count() or 1
CANDIDATES: dict[str, dict[str, Any]] = {
    "bare engine (beam 5, all cores, VAD)": {},
    "the pipeline's engine, as a run uses it": {"pipeline": True},
    "bare engine, words timed while decoding": {"words": True},
    # The encoder's attention scores (180 MB a layer for the large shapes) kept in the heap instead of
    # mapped and faulted in afresh in every layer: what pipeline.memory sets up in `hearing`'s process.
    "memory kept in the heap (glibc)": {"keep_memory": True},
    # Two recordings at once, each from a thread of its own, on one model of two workers (its weights
    # shared), each worker on every core: faster-whisper's num_workers.
    "two recordings at once (2 workers)": {"workers": 2},
    "two recordings at once, one thread each": {"workers": 2, "threads": 1},
    "one engine thread fewer": {"threads": max(1, CORES - 1)},
    "greedy (beam 1)": {"beam": 1},
    "batched pipeline, batch 8": {"batch": 8},
    "no voice detection": {"vad": False},
    # CTranslate2's int8 kernels on the CPU: its packed matrix products. (16-bit weights: this machine's
    # CPU backend refuses int16 as not efficient.)
    "packed int8 GEMM": {"env": {"CT2_USE_EXPERIMENTAL_PACKED_GEMM": "1"}},
}
BARE = "bare engine (beam 5, all cores, VAD)"
WATCH_FORM = """\
name: bench
clip: {max_duration: 900, max_statement: 150, title_card: {enabled: true, seconds: 1.5}}
video: {width: 1280, height: 720, fps: 25, preset: veryfast}
subtitles: {mode: burn+soft}
"""
STATEMENTS = 5


# ------------------------------------------------------------------------------------------- children


def child(spec: dict[str, Any]) -> None:
    """In a process of its own: the model loaded, then the recordings transcribed; one JSON line."""
    shapes.forced(spec["rate"])
    sys.path.insert(0, str(REPO))
    if spec.get("pipeline") or spec.get("keep_memory"):
        from pipeline.memory import keep_engine_memory

        keep_engine_memory()  # as `hearing` sets its process up, before any thread
    from faster_whisper import BatchedInferencePipeline, WhisperModel, decode_audio

    started = time.perf_counter()
    if spec.get("pipeline"):
        from pipeline.engines import load_engine
        from pipeline.engines.base import TranscribeSettings

        engine = load_engine("faster-whisper", spec["model"])
        settings = TranscribeSettings(language="da")
    else:
        threads = spec.get("threads") or CORES
        model = WhisperModel(
            spec["model"], device="cpu", compute_type=spec.get("compute_type", "int8"), cpu_threads=threads,
            num_workers=spec.get("workers", 1),
        )  # fmt: skip
        runner: Any = BatchedInferencePipeline(model) if spec.get("batch") else model
    load_s = time.perf_counter() - started

    def one(name: str) -> dict[str, Any]:
        started = time.perf_counter()  # decoding the file is the engine's work too, as it is the run's
        audio = decode_audio(str(Path(spec.get("media", MEDIA)) / name), sampling_rate=16000)
        if spec.get("pipeline"):
            engine.transcribe(audio, settings)
        else:
            options: dict[str, Any] = {"batch_size": spec["batch"]} if spec.get("batch") else {}
            segments, _ = runner.transcribe(
                audio, language="da", beam_size=spec.get("beam", 5), vad_filter=spec.get("vad", True),
                word_timestamps=spec.get("words", False), **options,
            )  # fmt: skip
            list(segments)
        return {"recording": name, "audio_s": len(audio) / 16000, "seconds": time.perf_counter() - started}

    started = time.perf_counter()
    if spec.get("workers", 1) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(spec["workers"]) as pool:
            rows = list(pool.map(one, spec["recordings"]))
    else:
        rows = [one(name) for name in spec["recordings"]]
    print(json.dumps({"load_s": load_s, "rows": rows, "wall_s": time.perf_counter() - started}))


def in_child(spec: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)],
        capture_output=True, text=True, check=False, env={**os.environ, **spec.get("env", {})},
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"the child failed: {done.stderr.strip()[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def hearing(rate: float, *args: str | Path, ahead: bool = True) -> list[str]:
    """`hearing ...` in a process whose Whisper models decode as ``shapes.forced`` makes them; without
    ``ahead``, nothing done ahead of the plan (``forced_hearing``)."""
    flag = "--hearing" if ahead else "--hearing-nothing-ahead"
    return [sys.executable, __file__, flag, str(rate), *map(str, args)]


def forced_hearing(rate: float, args: list[str], ahead: bool = True) -> int:
    shapes.forced(rate)
    sys.path.insert(0, str(REPO))
    from pipeline.cli import main

    if not ahead:
        # What rendering the statements heard while the engine listens costs the transcription stage
        # (and saves the whole run): nothing submitted ahead, the run does all of it in its turn.
        from pipeline.ahead import WorkAhead

        WorkAhead.submit = lambda self, what, work, *args: None  # type: ignore[method-assign]

    try:
        main.main(args=args, prog_name="hearing")
    except SystemExit as stop:
        return int(stop.code or 0)
    return 0


# --------------------------------------------------------------------------------------------- tuning


def tuning(model: Path, rate: float, only: list[str] | None = None) -> dict[str, Any]:
    recordings = [p.name for p in shapes.danish_recordings()]
    measured = {}
    for label, changes in CANDIDATES.items():
        if only and label not in only and label != BARE:
            continue
        result = in_child({"model": str(model), "rate": rate, "recordings": recordings, **changes})
        seconds = result["wall_s"]  # with several at once, more than the rows' seconds add up to
        audio = sum(r["audio_s"] for r in result["rows"])
        measured[label] = {
            "seconds": seconds,
            "audio_s": audio,
            "load_s": result["load_s"],
            "rows": result["rows"],
        }
        print(
            f"  {label:<44} {seconds:7.1f} s for {audio:.0f} s of audio (RTF {seconds / audio:.2f})",
            flush=True,
        )
    reference = measured[BARE]["seconds"]
    for row in measured.values():
        row["against_bare"] = row["seconds"] / reference
    return measured


# ---------------------------------------------------------------------------------------- whole run


def bare_transcription(model: Path, rate: float, recordings: list[Path]) -> float:
    """The bare engine on the run's recordings, one after another, in a process of its own, model load
    included (as pipeline_bench.py measures it)."""
    media = recordings[0].parent
    assert all(r.parent == media for r in recordings)
    names = [r.name for r in recordings]
    result = in_child({"model": str(model), "rate": rate, "recordings": names, "media": str(media)})
    return float(result["load_s"] + sum(r["seconds"] for r in result["rows"]))


def whole_run(
    model: Path, rate: float, root: Path, recordings: list[Path], ahead: bool = True
) -> dict[str, Any]:
    from pipeline_bench import bare_render, bare_render_from_recordings, stage_time

    meeting = root / "meeting"
    meeting.mkdir()
    for recording in recordings:
        shutil.copyfile(recording, meeting / recording.name)
    out = root / "out"
    # The bare engine before the run and after it, their mean the floor: this machine's speed drifts
    # by 10-20 % within minutes, and one measurement on one side of the run moved the ratio as much.
    before, before_cpu = with_cpu(lambda: bare_transcription(model, rate, recordings))
    (run_s, peak), run_cpu = with_cpu(
        lambda: run_measured(
            hearing(rate, "run", meeting, "--out", out, "--form", "demo", "--language", "da", "--model",
                    model, "--quiet", ahead=ahead)
        )
    )  # fmt: skip
    after, after_cpu = with_cpu(lambda: bare_transcription(model, rate, recordings))
    transcription, transcription_cpu = (before + after) / 2, (before_cpu + after_cpu) / 2
    report = json.loads((out / "run.json").read_text(encoding="utf-8"))
    # What the form delivers, made from the recordings: the clip and the clean master the demo form asks
    # for beside it. The floor counted until 2026-12-06, the delivered clip and master encoded again
    # (which skips decoding the recordings), is reported beside it.
    render, render_cpu = with_cpu(lambda: bare_render_from_recordings(out, meeting, root / "bare.mp4"))
    again = bare_render(delivered_clip(out), root / "again.mp4", delivered_master(out))
    stage = stage_time(report, ("model", "speech-audio", "transcribe"))
    audio = sum(s.get("duration_ms", 0) for s in report["statements"]) / 1000
    row = {
        "run_s": run_s,
        "peak_mb": peak,
        "bare_transcription_s": transcription,
        "bare_transcription_before_after_s": [before, after],
        "bare_render_s": render,
        "bare_render_again_s": again,
        "transcription_stage_s": stage,
        "audio_s": audio,
        "transcription_ratio": stage / transcription,
        "whole_run_ratio": run_s / (transcription + render),
        "whole_run_ratio_again": run_s / (transcription + again),
        # The work done, in CPU seconds, which the machine's other load does not change: how much more
        # the run computes than the bare engine and the bare render together.
        "cpu_s": {"run": run_cpu, "bare_transcription": transcription_cpu, "bare_render": render_cpu},
        "cpu_ratio": run_cpu / (transcription_cpu + render_cpu),
    }
    print(
        f"  run {run_s:.1f} s (peak {peak:.0f} MB); transcription stage {stage:.1f} s, bare engine "
        f"{before:.1f} s before and {after:.1f} s after: {row['transcription_ratio']:.2f}x; bare render "
        f"{render:.1f} s (the delivery encoded again {again:.1f} s); whole run {row['whole_run_ratio']:.2f}x "
        f"(against the delivery encoded again {row['whole_run_ratio_again']:.2f}x); CPU seconds "
        f"{run_cpu:.0f} against {transcription_cpu:.0f} + {render_cpu:.0f}: {row['cpu_ratio']:.2f}x",
        flush=True,
    )
    return row


def repeated(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One meeting's runs as one row: the run of the median whole-run ratio, with each run's ratios (this
    machine's speed drifts within minutes, and one run moves a ratio by several per cent)."""
    if len(rows) == 1:
        return rows[0]
    ordered = sorted(rows, key=lambda row: row["whole_run_ratio"])
    keys = (
        "transcription_ratio", "whole_run_ratio", "cpu_ratio", "run_s", "transcription_stage_s",
        "bare_transcription_before_after_s", "bare_render_s",
    )  # fmt: skip
    return {**ordered[len(ordered) // 2], "runs": [{key: row[key] for key in keys} for row in rows]}


# -------------------------------------------------------------------------------------------- watch


def statements(folder: Path) -> list[tuple[Path, float]]:
    """Five phone-like video statements of real Danish speech (cuts of the long reading and the short
    readings joined), each with its length."""
    sys.path.insert(0, str(REPO))
    from pipeline import media

    folder.mkdir()
    reading = MEDIA / "da-udhr-preamble.mp3"
    cuts = [(reading, 0, 27), (reading, 27, 24), (reading, 51, 33), (reading, 84, 31)]
    made = []
    for k, (source, start, length) in enumerate(cuts, 1):
        made.append(
            _video(
                media.ffmpeg_exe(),
                folder / f"{k}-indlaeg.mp4",
                ["-ss", str(start), "-t", str(length), "-i", str(source)],
            )
        )
    short = sorted(MEDIA.glob("da-nst-*.wav"))
    listing = folder / "short.txt"
    listing.write_text("".join(f"file '{p}'\n" for p in short), encoding="utf-8")
    made.append(_video(media.ffmpeg_exe(), folder / f"{len(cuts) + 1}-indlaeg.mp4",
                       ["-f", "concat", "-safe", "0", "-i", str(listing)]))  # fmt: skip
    return made


def _video(ffmpeg: str, target: Path, audio_input: list[str]) -> tuple[Path, float]:
    subprocess.run(
        [ffmpeg, "-nostdin", "-loglevel", "error", "-y", *audio_input, "-f", "lavfi", "-i",
         "testsrc2=size=1080x1920:rate=30", "-shortest", "-map", "1:v", "-map", "0:a", "-c:v", "libx264",
         "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", str(target)],
        check=True,
    )  # fmt: skip
    sys.path.insert(0, str(REPO))
    from pipeline import media

    return target, (media.probe(target).duration_ms or 0) / 1000


def bare_engine_loaded(model: Path, rate: float, recording: Path) -> float:
    """The bare engine on one recording, its model loaded before the clock starts."""
    spec = {"model": str(model), "rate": rate, "recordings": [recording.name], "media": str(recording.parent)}
    return float(in_child(spec)["rows"][0]["seconds"])


def watch_queue(model: Path, rate: float, root: Path) -> dict[str, Any]:
    made = statements(root / "statements")
    meeting, out = root / "meeting", root / "out"
    meeting.mkdir()
    form = root / "bench.yaml"
    form.write_text(WATCH_FORM, encoding="utf-8")
    watching = Watching(
        hearing(rate, "watch", meeting, "--out", out, "--form", form, "--language", "da", "--model", model)
    )
    watching.wait_for("watching")
    landed = []
    for k, (path, seconds) in enumerate(made):
        if k:
            time.sleep(seconds)  # the next person records their statement meanwhile
        landed.append(land(path, meeting))
    last = landed[-1]
    readied = watching.wait_for(f"{STATEMENTS} statement(s) ready")
    delivered = watching.enter()
    report = json.loads((out / "run.json").read_text(encoding="utf-8"))
    last_name = made[-1][0].name
    last_id = next(s["id"] for s in report["statements"] if s["file"] == last_name)
    segment = next(
        s["command"] for s in report["stages"]
        if s["stage"] == "render" and s["statement"] == last_id and s.get("part") == "statement"
    )  # fmt: skip
    join = next(s["command"] for s in report["stages"] if s["stage"] == "join")
    engine = bare_engine_loaded(model, rate, made[-1][0])
    render = bare(segment, root / "bare-segment.mov")
    joined = bare(join, root / "bare-join.mp4")
    floor = engine + render + joined
    waited = delivered - last
    # This machine's folders stay out of the results: the bench's own folder and the model's are named.
    warned = [
        line.replace(str(root), "BENCH").replace(str(model), model.name)
        for _, line in watching.lines
        if line.startswith("pace:")
    ]
    row = {
        "statements_s": [round(s, 1) for _, s in made],
        "last_landing_to_ready_s": readied - last,
        "last_landing_to_delivery_s": waited,
        "floor_s": floor,
        "engine_s": engine,
        "segment_s": render,
        "join_s": joined,
        "ratio": waited / floor,
        "watch_said": warned,
    }
    print(
        f"  watch: last of {STATEMENTS} landed -> delivered {waited:.1f} s; its floor {floor:.1f} s (engine "
        f"{engine:.1f} s, segment {render:.1f} s, join {joined:.1f} s): {row['ratio']:.2f}x",
        flush=True,
    )
    for line in warned:
        print(f"    watch said: {line}")
    return row


# --------------------------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", action="append", choices=list(shapes.SHAPES))
    parser.add_argument("--only", action="append", choices=["tuning", "run", "watch"])
    parser.add_argument(
        "--candidate", action="append", choices=list(CANDIDATES), help="tuning: these (and the bare engine)"
    )
    parser.add_argument("--meeting", action="append", choices=list(RUN_MEETINGS), help="run: these meetings")
    parser.add_argument(
        "--repeat", type=int, default=1, help="run: each meeting this many times; the median run is its row"
    )
    parser.add_argument(
        "--nothing-ahead", action="store_true",
        help="run: each meeting also with nothing done ahead of the plan, the two runs alternating",
    )  # fmt: skip
    args = parser.parse_args()
    if not (MEDIA / RUN_RECORDINGS[0]).is_file():
        print(f"the real recordings are missing from {MEDIA} (a folder of the repository)")
        return 1
    parts = args.only or ["tuning", "run", "watch"]
    rate = shapes.base_token_rate(shapes.danish_recordings())
    print(
        f"the base model writes {rate:.2f} tokens per second of Danish speech; the shapes are forced to that"
    )
    for name in args.shape or list(shapes.SHAPES):
        model = shapes.ensure(name)
        print(f"== {name}'s shape ({model.name})", flush=True)
        measured: dict[str, Any] = {}
        with tempfile.TemporaryDirectory(prefix="large-bench-") as folder:
            root = Path(folder)
            if "tuning" in parts:
                measured["tuning"] = tuning(model, rate, args.candidate)
            if "run" in parts:
                # The meeting a queue at the camera leaves, and one of a long reading and a short
                # statement (the reading is most of what is heard: nothing to hear beside it).
                queue = [path for path, _ in statements(root / "statements")]
                for key, recordings in (("run", queue), ("run_long", [MEDIA / n for n in RUN_RECORDINGS])):
                    if args.meeting and key not in args.meeting:
                        continue
                    print(f"  {RUN_MEETINGS[key]}:", flush=True)
                    variants = (True, False) if args.nothing_ahead else (True,)
                    rows: dict[bool, list[dict[str, Any]]] = {ahead: [] for ahead in variants}
                    for again in range(max(1, args.repeat)):
                        for ahead in variants:
                            if len(variants) > 1:
                                print("  as the run does:" if ahead else "  nothing done ahead:", flush=True)
                            where = root / key / f"{again}{'' if ahead else '-nothing-ahead'}"
                            where.mkdir(parents=True)
                            rows[ahead].append(whole_run(model, rate, where, recordings, ahead=ahead))
                    measured[key] = repeated(rows[True])
                    if not args.nothing_ahead:
                        continue
                    # Reported, not a target: the stage without its price for the render done meanwhile.
                    measured[f"{key}_nothing_ahead"] = repeated(rows[False])
            if "watch" in parts:
                (root / "watch").mkdir()
                measured["watch"] = watch_queue(model, rate, root / "watch")
        # Each part says how fast the shapes were forced to decode for it (the base model's rate is
        # measured each time and moves a little), since a part measured again alone replaces only that
        # part of the day's file.
        parts_measured = (*RUN_MEETINGS, *(f"{key}_nothing_ahead" for key in RUN_MEETINGS), "watch")
        for part in parts_measured:
            if part in measured:
                measured[part]["tokens_per_second"] = rate
        earlier = RESULTS / f"{name}-shape-{dt.date.today().isoformat()}.json"
        if earlier.is_file():
            kept = json.loads(earlier.read_text(encoding="utf-8"))
            if args.candidate and "tuning" in kept and "tuning" in measured:
                measured["tuning"] = kept["tuning"] | measured["tuning"]  # the candidates measured again
            parts_kept = ("tuning", *parts_measured)
            measured = {part: kept[part] for part in parts_kept if part in kept} | measured
        write_result(
            f"{name}-shape",
            {"kind": "large-shape benchmark", "shape": name, "tokens_per_second": rate, "targets": TARGETS,
             **measured},
        )  # fmt: skip
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(json.loads(sys.argv[2]))
    elif len(sys.argv) >= 3 and sys.argv[1] in ("--hearing", "--hearing-nothing-ahead"):
        sys.exit(forced_hearing(float(sys.argv[2]), sys.argv[3:], ahead=sys.argv[1] == "--hearing"))
    else:
        sys.exit(main())
