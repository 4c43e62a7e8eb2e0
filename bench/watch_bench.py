"""Benchmark: `hearing watch`, from the last recording landing in the meeting folder to a finished delivery
(Enter pressed as soon as the status line counts it ready), against the floor of what must happen after
that recording lands: the bare engine on it (the model already loaded, as it is while watching), one
bare render of its segment (the command the pipeline logged, run again to a scratch file) and one bare
join of all the segments (the logged join command again). Target: at most 1.3 times the floor.

Real speech from tests/media, the real engine and ffmpeg; the median of three, each timed side by
side with its floor. Run: python bench/watch_bench.py
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import MEDIA, REPO, Watching, bare, land, write_result

TARGET = 1.3
REPEATS = 3
FIRST, LAST = "en-jfk.flac", "en-talking-head.mp4"
FORM = """\
name: bench
clip: {max_duration: 300, max_statement: 150, title_card: {enabled: true, seconds: 1.5}}
video: {width: 1280, height: 720, fps: 25, preset: veryfast}
subtitles: {mode: burn+soft}
"""


def bare_engine(audio_file: Path) -> float:
    """faster-whisper on the recording, its model loaded before the clock starts."""
    code = f"""
import os, sys, time
sys.path.insert(0, {str(REPO)!r})
from faster_whisper import WhisperModel, decode_audio
from pipeline.engines import embedded
model = WhisperModel(str(embedded.model_dir()), device="cpu", compute_type="int8", cpu_threads=os.cpu_count())
started = time.perf_counter()
audio = decode_audio({str(audio_file)!r}, sampling_rate=16000)
segments, _ = model.transcribe(audio, language="en", vad_filter=True, word_timestamps=True)
list(segments)
print(time.perf_counter() - started)
"""
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return float(done.stdout.strip().splitlines()[-1])


def one(root: Path, form: Path) -> dict[str, float]:
    meeting, out = root / "meeting", root / "out"
    meeting.mkdir()
    watching = Watching(
        [sys.executable, "-m", "pipeline", "watch", str(meeting), "--out", str(out), "--form", str(form),
         "--language", "en"]
    )  # fmt: skip
    watching.wait_for("watching")
    land(MEDIA / FIRST, meeting)
    watching.wait_for("1 statement(s) ready")
    started = land(MEDIA / LAST, meeting)
    watching.wait_for("2 statement(s) ready")
    seconds = watching.enter() - started
    report = json.loads((out / "run.json").read_text(encoding="utf-8"))
    last = next(s["id"] for s in report["statements"] if s["file"] == LAST)
    segment = next(
        s["command"] for s in report["stages"]
        if s["stage"] == "render" and s["statement"] == last and s.get("part") == "statement"
    )  # fmt: skip
    join = next(s["command"] for s in report["stages"] if s["stage"] == "join")
    engine = bare_engine(MEDIA / LAST)
    render = bare(segment, root / "bare-segment.mov")
    joined = bare(join, root / "bare-join.mp4")
    floor = engine + render + joined
    print(
        f"last recording landed -> delivered: {seconds:.1f} s; floor {floor:.1f} s (engine {engine:.1f} s, "
        f"its segment {render:.1f} s, the join {joined:.1f} s): {seconds / floor:.2f}x"
    )
    ratio = seconds / floor
    return {"seconds": seconds, "engine_s": engine, "segment_s": render, "join_s": joined, "ratio": ratio}


def main() -> int:
    if not all((MEDIA / name).is_file() for name in (FIRST, LAST)):
        print(f"the real recordings are missing from {MEDIA} (a folder of the repository)")
        return 1
    rows = []
    for _ in range(REPEATS):
        with tempfile.TemporaryDirectory(prefix="watch-bench-") as folder:
            root = Path(folder)
            form = root / "bench.yaml"
            form.write_text(FORM, encoding="utf-8")
            rows.append(one(root, form))
    ratio = statistics.median(r["ratio"] for r in rows)
    print(f"\nlast recording landing -> delivery, against its floor: {ratio:.2f}x (target {TARGET}x)")
    write_result(
        "watch",
        {
            "kind": "watch benchmark",
            "recordings": [FIRST, LAST],
            "target": TARGET,
            "ratio": ratio,
            "runs": rows,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
