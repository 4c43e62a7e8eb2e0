"""The engine's working memory kept in the process (pipeline.memory): large allocations reuse their pages
instead of being mapped and faulted in afresh, memory is given back when asked, the command line sets it
up before anything else, and the words heard are the same either way."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pipeline.memory import _glibc
from tests.conftest import MEDIA, REPO

needs_glibc = pytest.mark.skipif(_glibc() is None, reason="malloc's settings are glibc's (Linux)")

# A request the size of an encoder layer's attention scores, made, written and freed six times, as the
# engine does layer after layer: the page faults it took, and the resident memory before and after the
# memory was given back.
_LAYERS = """
import ctypes, json, resource, sys
from pipeline import memory
kept = memory.keep_engine_memory() if sys.argv[1] == "keep" else False
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
size = 180_000_000
def resident():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(6):
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    libc.free(block)
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
held = resident()
memory.give_back()
print(json.dumps({"kept": kept, "faults": faults, "held": held, "given_back": resident()}))
"""


def _layers(mode: str, **env: str) -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", _LAYERS, mode],
        capture_output=True, text=True, check=True, cwd=REPO, env={**os.environ, **env},
    )  # fmt: skip
    return dict(json.loads(done.stdout))


@needs_glibc
def test_large_allocations_reuse_their_pages_and_are_given_back() -> None:
    default = _layers("default")
    kept = _layers("keep")
    assert kept["kept"] and not default["kept"]
    # Mapped afresh each time, every page faults in six times; kept, once.
    assert kept["faults"] * 3 < default["faults"], (kept, default)
    assert kept["held"] - kept["given_back"] > 150_000_000, kept


@needs_glibc
def test_malloc_set_up_by_the_user_stands() -> None:
    mine = _layers("keep", GLIBC_TUNABLES="glibc.malloc.trim_threshold=1000000")
    assert not mine["kept"]


def test_the_command_line_keeps_the_engines_memory_before_the_command_runs() -> None:
    code = (
        "from pipeline import memory\n"
        "from pipeline.cli import main\n"
        "try:\n    main(['models', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('SET', memory.keep_engine_memory.cache_info().currsize)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert "SET 1" in done.stdout


_HEAR = """
import json, sys
from faster_whisper import decode_audio
from pipeline import memory
from pipeline.engines.base import TranscribeSettings
from pipeline.engines.faster import load_embedded
if sys.argv[1] == "keep":
    assert memory.keep_engine_memory()
engine = load_embedded()
heard = []
for path in sys.argv[2:]:
    result = engine.transcribe(decode_audio(path), TranscribeSettings(language="da"), seed=1)
    heard.append([[w.text, w.start_ms, w.end_ms, w.probability] for s in result.segments for w in s.words])
print(json.dumps(heard))
"""


@needs_glibc
@pytest.mark.slow
def test_the_words_heard_are_the_same_with_the_memory_kept() -> None:
    recordings = [str(MEDIA / "da-nst-u0042009.wav"), str(MEDIA / "da-udhr-preamble.mp3")]

    def hear(mode: str) -> list[list[list[object]]]:
        done = subprocess.run(
            [sys.executable, "-c", _HEAR, mode, *recordings],
            capture_output=True, text=True, check=True, cwd=REPO,
        )  # fmt: skip
        return list(json.loads(done.stdout.strip().splitlines()[-1]))

    kept, default = hear("keep"), hear("default")
    assert all(kept) and kept == default
