"""Benchmark: `hearing render` after a one-word correction in one statement, against the floor of what it
must do: one bare ffmpeg render of that statement's segment plus the join (the very commands the
pipeline logged, run again by hand to a scratch file). Target: at most 1.3 times the floor.

A second floor adds the one more thing every delivery must do: meter the delivered clip's loudness and
true peak for its check (the same ebur128 command the check runs), because the check measures the files
as delivered, never the settings that made them.

Real speech from tests/media (two statements), the real engine, real ffmpeg; the median of three
corrections, each timed side by side with the bare commands. Run: python bench/render_bench.py
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import bare, delivered_clip, write_result

REPO = Path(__file__).resolve().parents[1]
MEDIA = REPO / "tests" / "media"
RESULTS = REPO / "bench" / "results"
TARGET = 1.3
REPEATS = 3
FORM = """\
name: bench
clip: {max_duration: 300, max_statement: 150, title_card: {enabled: true, seconds: 1.5}}
video: {width: 1280, height: 720, fps: 25, preset: veryfast}
subtitles: {mode: burn+soft}
"""


def hearing(*args: str | Path) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pipeline", *map(str, args)], check=True, cwd=REPO)
    return time.perf_counter() - started


def meter(clip: Path) -> float:
    """The check's loudness and true-peak metering of the delivered clip, as a bare command."""
    sys.path.insert(0, str(REPO))
    from pipeline import media

    started = time.perf_counter()
    subprocess.run([media.ffmpeg_exe(), *media.r128_args(clip)], check=True, capture_output=True)
    return time.perf_counter() - started


SOURCES = [MEDIA / "en-jfk.flac", MEDIA / "en-talking-head.mp4"]


def media_missing() -> bool:
    if all(p.is_file() for p in SOURCES):
        return False
    print(f"the real recordings are missing from {MEDIA} (a folder of the repository)")
    return True


def two_statements_run(root: Path, sources: list[Path] = SOURCES) -> Path:
    """A meeting of ``sources`` under ``root``, run with the benchmark's form; its output folder."""
    meeting = root / "meeting"
    meeting.mkdir()
    for source in sources:
        shutil.copy(source, meeting / source.name)
    form = root / "bench.yaml"
    form.write_text(FORM, encoding="utf-8")
    out = root / "out"
    hearing("run", meeting, "--out", out, "--form", form, "--language", "en", "--quiet")
    return out


def main() -> int:
    if media_missing():
        return 1
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        out = two_statements_run(root)
        srt = out / "edits" / "en-jfk.flac.srt"
        original = srt.read_text(encoding="utf-8")
        for n, word in enumerate(("citizens", "friends", "neighbours")[:REPEATS]):
            srt.write_text(original.replace("Americans", word), encoding="utf-8")
            seconds = hearing("render", out, "--quiet")
            report = json.loads((out / "run.json").read_text(encoding="utf-8"))
            made = [s for s in report["stages"] if not s["cached"] and s.get("command")]
            segment = next(s for s in made if s["stage"] == "render")
            join = next(s for s in made if s["stage"] == "join")
            floor = bare(segment["command"], root / f"segment-{n}")
            floor += bare(join["command"], root / f"clip-{n}")
            check = meter(delivered_clip(out))
            rows.append(
                {
                    "render_s": seconds,
                    "floor_s": floor,
                    "ratio": seconds / floor,
                    "check_meter_s": check,
                    "ratio_with_check": seconds / (floor + check),
                }
            )
            print(
                f"correction {n + 1}: render {seconds:.2f} s, bare segment + join {floor:.2f} s, "
                f"metering the clip for its check {check:.2f} s"
            )
    ratio = statistics.median(r["ratio"] for r in rows)
    with_check = statistics.median(r["ratio_with_check"] for r in rows)
    verdict = "meets" if ratio <= TARGET else "misses"
    print(f"re-render after a one-word correction: {ratio:.2f}x the bare commands ({verdict} {TARGET}x)")
    verdict = "meets" if with_check <= TARGET else "misses"
    print(f"... and {with_check:.2f}x the bare commands with the check's metering ({verdict} {TARGET}x)")
    write_result(
        "render",
        {
            "kind": "re-render benchmark",
            "what": "hearing render after one corrected word, against the bare segment render + join",
            "target": TARGET,
            "median_ratio": round(ratio, 3),
            "median_ratio_with_check": round(with_check, 3),
            "runs": rows,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
