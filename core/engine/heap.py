"""Handing the C heap's freed memory back to the system between a run's phases.

On Linux, glibc's allocator keeps the blocks a phase freed resident for reuse; on a CPU run the
reference pass's activations (gigabytes at a 152k vocabulary) stayed in the process's resident
size while the training steps allocated theirs elsewhere, and the run's peak was both.
``return_freed_memory()`` asks glibc to give back every free page it holds (``malloc_trim``:
milliseconds, once per phase; the allocator itself is unchanged, so the steps run as fast). It
does nothing on other systems and C libraries.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_libc = None


def return_freed_memory() -> bool:
    """True when the C library was asked to release its free pages (glibc on Linux)."""
    global _libc
    if not sys.platform.startswith("linux"):
        return False
    if _libc is None:
        try:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _libc.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):
            _libc = False
    if not _libc:
        return False
    _libc.malloc_trim(0)
    return True
