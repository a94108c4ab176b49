"""Giving the memory a request freed back to the system, so the app's resident memory stays flat under load.

glibc's malloc keeps freed heap pages for reuse. In the app, worker threads allocate large buffers of varied sizes
(torch activations, decoded audio, rendered figures) in several arenas; what they free stays resident, fragmented,
and the app's RSS crept up round after round of load although no request keeps anything (`benchmarks/space_load.py`,
4 rounds of 8 clients: 830 -> 1053 MiB; with `MALLOC_ARENA_MAX=2`, 742 -> 832 MiB). Python objects were flat
(tracemalloc: +1.5 MB a round, Gradio's per-session state), and `malloc_trim(0)` took the RSS back to the first
round's. So the app calls `release_freed_memory` when a request ends: a few milliseconds, little more than the pages
it returns. What only Python's cycle collector frees (a request's figure, a traceback and its frames) is freed by
`release_idle_memory`, which the app runs every few seconds with its upload sweep, so memory returns after idle.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, or None where the C library has none (macOS, musl)."""
    try:
        trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def release_freed_memory() -> bool:
    """Return the free pages of every malloc arena to the system; whether the C library can (glibc)."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


def release_idle_memory() -> bool:
    """Collect unreachable reference cycles, then return the free pages of every arena (`release_freed_memory`)."""
    gc.collect()
    return release_freed_memory()
