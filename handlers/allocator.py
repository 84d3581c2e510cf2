"""The C allocator's settings for a process that runs networks: freed memory stays with it.

glibc's malloc serves a block of 128 KiB or more with a fresh mmap and unmaps it when it is
freed, and gives the heap's top back to the system above 128 KiB. A network's activations
are such blocks (50 positions x 32 channels x 64 cells x 4 bytes = 400 KiB), so a forward
pass page-faults through new zeroed pages on every call. glibc learns to stop this in the
main thread's arena only: measured 2026-12-07 (2x32 network, batch 50, one torch thread),
its frozen inference graph ran 14,300-17,600 positions/s in a worker thread against
22,800-24,700 in the main thread; with both thresholds raised, 22,300-23,500 in either.
The selfplay pipeline runs its forward passes in a worker thread.
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD = -1  # mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 << 20  # glibc's largest on 64-bit: blocks below it come from the heap
TRIM_THRESHOLD_BYTES = 256 << 20  # free memory a heap keeps at its top before giving it back


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process; False where the C library
    has no mallopt (not glibc): nothing changed."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )
