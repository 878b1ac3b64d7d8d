"""Keep freed memory for reuse: a process-wide malloc setting for training loops.

Backward releases the whole graph at once. With glibc's default settings the freed
activations are handed back to the operating system (heap trimming, or munmap for large
arrays), and the next step's forward pays a page fault for every 4 KiB it touches again —
about a third of a forward pass for a 784-128-64-10 MLP at batch 1024 (measured in
``benchmarks``). A hand-written loop that keeps its activations alive between steps never
pays it. ``keep_freed_memory()`` raises glibc's trim and mmap thresholds so freed blocks stay
in the heap and are reused by the next step. It changes the whole process and is opt-in:
the training CLI and the benchmarks call it (for every implementation they time alike).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

__all__ = ["keep_freed_memory"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def keep_freed_memory(trim_threshold: int = 512 << 20, mmap_threshold: int = 32 << 20) -> bool:
    """Ask glibc's malloc to keep up to ``trim_threshold`` bytes of freed memory for reuse and
    to serve blocks below ``mmap_threshold`` bytes from the heap. Returns True when applied,
    False where the C library is not glibc (nothing is changed there)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold))) and bool(
        mallopt(_M_TRIM_THRESHOLD, int(trim_threshold))
    )
