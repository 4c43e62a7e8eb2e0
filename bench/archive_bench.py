"""Benchmark (not a test): bag a generated 2 GB recording, next to `cp` of the same file.

Reports throughput and the peak memory of the process that bags (target: at most 200 MB whatever the
file size). Each measured step runs in its own child process, so that its peak memory is its own.

    python bench/archive_bench.py [--size-gb 2] [--dir FOLDER]

The file is generated just before, so it is in the page cache for every reader: the numbers compare the
work each step does (copying, hashing, fsync), not the speed of the disk it was read from.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result

REPO = Path(__file__).resolve().parents[1]
BLOCK = 16 << 20
RELPATH = "recordings/generated.mp4"
MEMORY_TARGET_MB = 200


def peak_memory_mb() -> float:
    """This process's peak resident memory (VmHWM on Linux; ru_maxrss elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


def generate(path: Path, size: int) -> None:
    """Random-looking bytes, fast: one random block, each copy stamped with its number so no two
    blocks are alike."""
    path.parent.mkdir(parents=True, exist_ok=True)
    block = bytearray(os.urandom(BLOCK))
    with path.open("wb") as handle:
        written = 0
        number = 0
        while written < size:
            block[:8] = number.to_bytes(8, "little")
            part = memoryview(block)[: min(BLOCK, size - written)]
            handle.write(part)
            written += len(part)
            number += 1


# ------------------------------------------------------------------------------- child processes


def child_baseline() -> dict[str, float]:
    from pipeline.stages import archive  # noqa: F401  (what every child imports, measured alone)

    return {"peak_mb": peak_memory_mb()}


def child_bag(meeting_dir: Path, out_dir: Path, sha256: str, size: int) -> dict[str, float]:
    from pipeline import __version__
    from pipeline.models import Recording
    from pipeline.stages.archive.bag import build_archive
    from pipeline.stages.archive.premis import PIPELINE, ArchiveInfo, Software

    info = ArchiveInfo(
        organiser="Benchmark",
        title="A generated recording",
        meeting_date=None,
        committee=None,
        operator="bench",
        software=(Software(PIPELINE, __version__),),
    )
    started = time.perf_counter()
    result = build_archive(out_dir, meeting_dir, [Recording(RELPATH, size, sha256)], {}, {}, None, info)
    return {
        "seconds": time.perf_counter() - started,
        "copy_seconds": result.copy_seconds,
        "validate_seconds": result.validate_seconds,
        "peak_mb": peak_memory_mb(),
    }


def child_verify(bag: Path) -> dict[str, float]:
    from pipeline.stages.archive.verify import verify_archive

    started = time.perf_counter()
    result = verify_archive(bag)
    if not result.valid:
        raise SystemExit(f"the benchmark bag is not valid: {result.problems}")
    return {"seconds": time.perf_counter() - started, "peak_mb": peak_memory_mb()}


def in_child(*args: str) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"child {args[0]} failed:\n{done.stderr}")
    return dict(json.loads(done.stdout.splitlines()[-1]))


# ------------------------------------------------------------------------------------------- parent


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def sha256_of(path: Path) -> str:
    """What ingest computes before the archive is made (the parent runs without the pipeline imported)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def both_digests(path: Path) -> Callable[[], None]:
    def run() -> None:
        started = [
            subprocess.Popen([tool, str(path)], stdout=subprocess.DEVNULL)
            for tool in ("sha512sum", "sha256sum")
        ]
        for process in started:
            if process.wait() != 0:
                raise SystemExit(f"{process.args[0]} failed")

    return run


def fsync_file(path: Path) -> None:
    with path.open("rb+") as handle:
        os.fsync(handle.fileno())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=2.0, help="size of the generated recording")
    parser.add_argument("--dir", type=Path, default=None, help="where the temporary files go")
    options = parser.parse_args()
    size = int(options.size_gb * 1e9)
    base = options.dir or Path(tempfile.gettempdir())
    free = shutil.disk_usage(base).free
    if free < 2.2 * size:
        raise SystemExit(
            f"not enough free space in {base}: {free / 1e9:.1f} GB free, {2.2 * size / 1e9:.1f} GB needed"
        )

    temp = Path(tempfile.mkdtemp(prefix="archive-bench-", dir=base))
    try:
        meeting = temp / "meeting"
        source = meeting / RELPATH
        print(f"generating {size / 1e9:.1f} GB in {temp} ...", file=sys.stderr)
        generate(source, size)
        fsync_file(source)

        started = time.perf_counter()
        sha256 = sha256_of(source)
        ingest_seconds = time.perf_counter() - started

        copy = temp / "cp-copy.mp4"
        cp_seconds = timed(lambda: subprocess.run(["cp", str(source), str(copy)], check=True))
        sync_seconds = timed(lambda: fsync_file(copy))
        copy.unlink()
        # The floor of what bagging must do: read the file once for both digests (sha512sum and
        # sha256sum side by side, one core each) and write one copy of it.
        digests_seconds = timed(both_digests(source))

        baseline = in_child("baseline")
        bag = in_child("bag", str(meeting), str(temp / "out"), sha256, str(size))
        verify = in_child("verify", str(temp / "out" / "archive"))
    finally:
        shutil.rmtree(temp, ignore_errors=True)

    megabytes = size / 1e6
    floor = max(digests_seconds, cp_seconds + sync_seconds)
    rows = [
        ("sha512sum and sha256sum side by side", digests_seconds, None),
        ("floor: the slower of the digests and cp + fsync", floor, None),
        ("cp", cp_seconds, None),
        ("cp + fsync", cp_seconds + sync_seconds, None),
        ("ingest: SHA-256 of the source (for reference)", ingest_seconds, None),
        ("bag: copy + SHA-512 + SHA-256 + fsync", bag["copy_seconds"], None),
        ("bag: check (completeness, sizes, metadata hashed again)", bag["validate_seconds"], None),
        ("bag: total (build_archive)", bag["seconds"], bag["peak_mb"]),
        ("hearing verify (bagit full validation)", verify["seconds"], verify["peak_mb"]),
        ("python + imports alone", None, baseline["peak_mb"]),
    ]
    print(f"\nArchive benchmark: one generated recording of {megabytes:,.0f} MB\n")
    print(f"{'step':<52} {'seconds':>8} {'MB/s':>8} {'peak MB':>8}")
    print("-" * 79)
    for name, seconds, peak in rows:
        shown_seconds = f"{seconds:8.2f}" if seconds is not None else " " * 8
        rate = f"{megabytes / seconds:8.0f}" if seconds else " " * 8
        shown_peak = f"{peak:8.0f}" if peak is not None else " " * 8
        print(f"{name:<52} {shown_seconds} {rate} {shown_peak}")
    verdict = "within" if bag["peak_mb"] <= MEMORY_TARGET_MB else "OVER"
    print(f"\npeak memory of bagging: {bag['peak_mb']:.0f} MB, {verdict} the target of {MEMORY_TARGET_MB} MB")
    speed = floor / bag["seconds"]
    print(f"bagging runs at {speed:.2f}x the speed of its floor (target 0.8x)")
    write_result(
        "archive",
        {
            "kind": "archive benchmark",
            "size_bytes": size,
            "speed_vs_floor": speed,
            "peak_mb": bag["peak_mb"],
            "targets": {"speed_vs_floor": 0.8, "peak_mb": MEMORY_TARGET_MB},
            "steps": {name: {"seconds": sec, "peak_mb": peak} for name, sec, peak in rows},
        },
    )


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        what, args = sys.argv[2], sys.argv[3:]
        if what == "baseline":
            out = child_baseline()
        elif what == "bag":
            out = child_bag(Path(args[0]), Path(args[1]), args[2], int(args[3]))
        else:
            out = child_verify(Path(args[0]))
        print(json.dumps(out))
    else:
        main()
