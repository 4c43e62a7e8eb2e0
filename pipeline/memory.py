"""The engine's working memory kept by the process instead of handed back to the system after every layer.

Whisper's encoder asks afresh in each of its layers for the attention scores of a 30 s window: heads x
1500 x 1500 floats, 72 MB for base and 180 MB for large-v3 and turbo. glibc's malloc maps anything above
32 MB from the kernel on its own and unmaps it when freed, so every layer of every window mapped that
memory, faulted each of its pages in (44,000 for 180 MB) and gave it back. Measured with turbo's shape
on the repository's real recordings on two cores (bench/large_bench.py's tuning): 15 million page
faults and 36 s of system time in an 87 s transcription. Kept in the heap instead (one arena, nothing
mapped on its own, the heap's top not trimmed while the engine works), the same transcription took
62 s with 0.3 million faults and 4 s of system time, its peak memory the same. The words do not depend
on it: the engine computes the same numbers in other pages.

Only where glibc is the C library (Linux); elsewhere nothing changes. Set once, early, before the
process has threads: a thread keeps the malloc arena it first used, and only the main one grows its heap
for a request that large. ``give_back`` returns what the engine no longer uses once a statement is heard,
so a long `hearing watch` or review holds it only while it listens.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os

log = logging.getLogger(__name__)

# glibc's malloc.h
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
_NEVER_TRIM = 2**31 - 1  # mallopt takes an int


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return None
    except (ValueError, OSError, AttributeError):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
        libc.malloc_trim.argtypes = (ctypes.c_size_t,)
    except (OSError, AttributeError):
        return None
    return libc


def _user_chose() -> bool:
    """Whether malloc was set up by whoever started the process (GLIBC_TUNABLES): theirs stands."""
    return "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", "")


@functools.cache
def keep_engine_memory() -> bool:
    """Keep large allocations in the process's heap from now on; whether that was done."""
    libc = _glibc()
    if libc is None or _user_chose():
        return False
    done = all(
        libc.mallopt(option, value) == 1
        for option, value in ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, _NEVER_TRIM))
    )
    log.debug("engine memory kept in the heap: %s", done)
    return done


def give_back() -> None:
    """Return the heap's free memory to the system (the engine's, once a statement is heard)."""
    if keep_engine_memory.cache_info().currsize and keep_engine_memory():
        libc = _glibc()
        if libc is not None:
            libc.malloc_trim(0)
