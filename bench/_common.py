"""What the benchmarks share: where results go, the machine they ran on, and the peak memory of a
whole process tree (the pipeline starts ffmpeg, and the engine runs in the pipeline's own process)."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import resource
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[1]
MEDIA = REPO / "tests" / "media"
RESULTS = REPO / "bench" / "results"
T = TypeVar("T")


def machine() -> dict[str, Any]:
    model, flags = "", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and not model:
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    memory = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) // 1024
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        # Hosts of the same name may differ in their vector units, and CTranslate2's int8 kernels with
        # them: the base model's words came out up to three apart per recording on two days here.
        "vectors": next((v for v in ("avx512f", "avx2", "avx") if v in flags), ""),
        "memory_mb": memory,
        "system": platform.platform(),
        "python": platform.python_version(),
    }


def write_result(name: str, data: dict[str, Any]) -> Path:
    """``bench/results/<name>-<date>.json``, with the date and the machine."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    target = RESULTS / f"{name}-{dt.date.today().isoformat()}.json"
    document = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "machine": machine(), **data}
    target.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"results: {target.relative_to(REPO)}")
    return target


def latest(name: str) -> dict[str, Any] | None:
    found = sorted(RESULTS.glob(f"{name}-????-??-??.json"))
    return json.loads(found[-1].read_text(encoding="utf-8")) if found else None


def bare(command: str, scratch: Path) -> float:
    """A command the pipeline logged (run.json) again, writing to ``scratch`` instead of the cache: the
    floor of a step, timed."""
    import shlex

    args = shlex.split(command)
    args[-1] = str(scratch.with_suffix(Path(args[-1]).suffix))
    started = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True)
    return time.perf_counter() - started


def _tree_rss_kb(root: int) -> int:
    """Resident memory of ``root`` and every process below it, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry))
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss[int(entry)] = int(line.split()[1])
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += children.get(pid, [])
    return total


def run_measured(command: Sequence[str], *, cwd: Path | None = None) -> tuple[float, float]:
    """Run ``command``; its wall time and the peak memory (MB) of its whole process tree, sampled."""
    started = time.perf_counter()
    process = subprocess.Popen(list(command), cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss_kb(process.pid))
            done.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = process.communicate()
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    if process.returncode not in (0, 5):
        raise SystemExit(
            f"{' '.join(map(str, command))} failed ({process.returncode}):\n{stderr.decode()[-2000:]}"
        )
    return seconds, peak / 1024


def delivered_clip(out: Path) -> Path:
    """The delivered clip (the subtitles burned in), not the clean master beside it."""
    (clip,) = (p for p in (out / "delivery").glob("*.mp4") if not p.name.endswith("-master.mp4"))
    return clip


def delivered_master(out: Path) -> Path | None:
    """The clean master beside the clip, where the form asks for one (named as the check names it)."""
    import sys

    sys.path.insert(0, str(REPO))
    from pipeline.stages.check.files import master_path

    master = master_path(delivered_clip(out))
    return master if master.is_file() else None


def with_cpu(work: Callable[[], T]) -> tuple[T, float]:
    """What ``work`` returns, and the CPU seconds (user + system) of the processes it started and
    waited for, with theirs: the work done, which a machine shared with others does not change as it
    changes the wall time."""

    def children() -> float:
        used = resource.getrusage(resource.RUSAGE_CHILDREN)
        return used.ru_utime + used.ru_stime

    before = children()
    result = work()
    return result, children() - before


class Watching:
    """`hearing watch` started with ``command``, each line it writes to stderr kept with the moment it
    came."""

    def __init__(self, command: Sequence[str]) -> None:
        self.process = subprocess.Popen(
            list(command), stdin=subprocess.PIPE, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
        )
        self.lines: list[tuple[float, str]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append((time.perf_counter(), line.rstrip("\n")))

    def said(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def wait_for(self, text: str, timeout: float = 3600) -> float:
        """The moment of the first line with ``text``."""
        deadline = time.monotonic() + timeout
        while True:
            for moment, line in list(self.lines):
                if text in line:
                    return moment
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                raise SystemExit(f"no {text!r} from hearing watch:\n{self.said()}")
            time.sleep(0.02)

    def enter(self) -> float:
        """Enter, and the moment the delivery is in place (its line is printed once ``delivery/`` is
        complete, before the process has ended)."""
        assert self.process.stdin is not None
        self.process.stdin.write("\n")
        self.process.stdin.flush()
        delivered = self.wait_for("delivered ")
        if self.process.wait(timeout=3600) != 0:
            raise SystemExit(f"hearing watch failed:\n{self.said()}")
        return delivered


def land(source: Path, meeting: Path) -> float:
    """``source`` copied into ``meeting`` under a temporary name, then renamed: the moment it lands."""
    temporary = meeting / f".{source.name}.part"
    shutil.copyfile(source, temporary)
    temporary.rename(meeting / source.name)
    return time.perf_counter()
