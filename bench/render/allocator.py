"""glibc allocator settings for the CPU renderer.

Each CPU render allocates and frees tens of megabytes in blocks of about a megabyte. With glibc's
defaults those blocks keep going back to the operating system (mmap/munmap and heap trimming), and
every reuse pays a page fault per 4 KiB: up to a third of a render step on a 2-core machine.
Raising the mmap and trim thresholds keeps freed blocks in the heap for reuse. The cost is that
up to TRIM_THRESHOLD bytes of freed memory stay mapped to the process.
"""

from __future__ import annotations

import ctypes
import ctypes.util

MMAP_THRESHOLD = 256 << 20  # allocations above this still get their own mapping
TRIM_THRESHOLD = 512 << 20  # free heap kept before returning memory to the OS
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc malloc.h parameter numbers

_tuned: bool | None = None


def tune_cpu_allocator() -> bool:
    """Apply the thresholds once per process; True when glibc accepted them (False elsewhere)."""
    global _tuned
    if _tuned is None:
        _tuned = _apply()
    return _tuned


def _apply() -> bool:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False  # not glibc (macOS, musl without mallopt): keep the platform allocator
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mmap_ok = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    return mmap_ok and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
