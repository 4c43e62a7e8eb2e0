"""Benchmark: "Lav leverancen" on the review page after a one-word correction, against its floor: one bare
ffmpeg render of the corrected statement's segment, the join, and the check's metering of the delivered
clip (the very commands the pipeline logged, run again by hand to scratch files). Target: at most 1.3
times the floor.

The correction is saved through the page's own API (as typing in a cue does); then the button: the time
runs from the page asking for the render until the page, polling as it does, learns it is delivered.

Real speech from tests/media (two statements), the real engine, real ffmpeg; the median of three
corrections, each timed side by side with the bare commands. Run: python bench/review_bench.py
"""

from __future__ import annotations

import http.client
import json
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, bare, delivered_clip, write_result
from render_bench import media_missing, meter, two_statements_run

TARGET = 1.3
REPEATS = 3
POLL_S = 0.25  # as the page polls (pipeline/review/page/review.js)


class Page:
    def __init__(self, url: str) -> None:
        # The address `hearing review` prints carries the session's token, which every request needs.
        self.address = urlsplit(url).netloc
        self.token = parse_qs(urlsplit(url).query)["token"][0]

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        host, port = self.address.split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=600)
        headers = {"Host": self.address, "X-Review-Token": self.token}
        data = None if body is None else json.dumps(body).encode("utf-8")
        connection.request(method, path, body=data, headers=headers)
        response = connection.getresponse()
        raw = response.read().decode("utf-8")
        connection.close()
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, raw


def start_review(out: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "review", str(out), "--no-browser"],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    for line in process.stderr:
        if "http://" in line:
            return process, line[line.index("http://") :].split()[0]
    raise SystemExit("hearing review did not start")


def main() -> int:
    if media_missing():
        return 1
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        out = two_statements_run(root)
        process, url = start_review(out)
        try:
            page = Page(url)
            for n, word in enumerate(("citizens", "friends", "neighbours")[:REPEATS]):
                _, state = page.call("GET", "/api/state")
                st = next(s for s in state["statements"] if s["file"] == "en-jfk.flac")
                cues = [
                    dict(c, text=re.sub(r"Americans|citizens|friends", word, c["text"])) for c in st["cues"]
                ]
                change = {k: st[k] for k in ("version", "speaker", "topic", "in_ms", "out_ms")}
                status, _ = page.call("POST", f"/api/statements/{st['id']}", {**change, "cues": cues})
                assert status == 200, status
                started = time.perf_counter()
                status, job = page.call("POST", "/api/render", {})
                while job["state"] == "running":
                    time.sleep(POLL_S)
                    _, job = page.call("GET", "/api/render")
                seconds = time.perf_counter() - started
                assert job["state"] == "done", job
                report = json.loads((out / "run.json").read_text(encoding="utf-8"))
                made = [s for s in report["stages"] if not s["cached"] and s.get("command")]
                segment = next(s for s in made if s["stage"] == "render")
                join = next(s for s in made if s["stage"] == "join")
                floor = bare(segment["command"], root / f"segment-{n}")
                floor += bare(join["command"], root / f"clip-{n}")
                floor += meter(delivered_clip(out))
                rows.append({"lav_leverancen_s": seconds, "floor_s": floor, "ratio": seconds / floor})
                print(f"correction {n + 1}: Lav leverancen {seconds:.2f} s, floor {floor:.2f} s")
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)
    ratio = statistics.median(r["ratio"] for r in rows)
    verdict = "meets" if ratio <= TARGET else "misses"
    print(f"Lav leverancen after a one-word correction: {ratio:.2f}x its floor ({verdict} {TARGET}x)")
    write_result(
        "review",
        {
            "kind": "review page render benchmark",
            "what": "Lav leverancen after one corrected word, against bare segment + join + check metering",
            "target": TARGET,
            "median_ratio": round(ratio, 3),
            "runs": rows,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
