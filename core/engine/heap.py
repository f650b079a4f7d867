"""Handing the C heap's freed memory back to the system during a CPU run.

On Linux, glibc's allocator keeps the blocks a phase freed resident for reuse: blocks under its
mapping threshold, which it raises itself up to 32 MiB as large tensors come and go, stay in its
heap once freed, fragmented among the live ones. On a CPU run at a 152k vocabulary (24 layers,
batch 8, checkpointed) that heap held about 4 GB of freed blocks at a step's peak, on top of the
1 GB the step needed: 7,448 MiB resident, 3,420 with ``keep_returning``.

- ``return_freed_memory()`` asks glibc to give back every free page it holds (``malloc_trim``:
  milliseconds, once, after the reference pass; the allocator is unchanged, so the steps run as fast).
- ``return_freed_memory(keep_returning=True)`` also maps every block of ``RETURNED_BLOCK_BYTES`` and
  more on its own from then on, so it goes back to the system the moment it is freed: the resident
  size follows the live memory. It costs speed where a step allocates many such blocks (each one's
  pages fault in and are zeroed again: +35% CPU time on the 32k benchmark shape, +8% at 152k), so the trainer
  asks for it only on a CPU run with gradient checkpointing, the setting that already trades speed
  for memory (BENCHMARKS.md, "At real shapes").
- ``default_heap()`` ends that: glibc's thresholds go back to where its own adjustment settles for
  large tensors (mapping from 32 MiB, trimming the heap's top from 64 MiB).

All three do nothing on other systems and C libraries.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# mallopt's parameter numbers (glibc's malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
RETURNED_BLOCK_BYTES = 1 << 20
_RETURNED_TRIM_BYTES = 128 << 10          # glibc's initial trim threshold
_SETTLED_MMAP_BYTES, _SETTLED_TRIM_BYTES = 32 << 20, 64 << 20

_libc = None
_returning = False


def _glibc():
    global _libc
    if _libc is None:
        _libc = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                libc.malloc_trim.argtypes = [ctypes.c_size_t]
                libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
                _libc = libc
            except (OSError, AttributeError):
                pass
    return _libc


def return_freed_memory(keep_returning: bool = False) -> bool:
    """True when the C library was asked to release its free pages (glibc on Linux); with
    ``keep_returning``, freed blocks of 1 MiB and more keep going back until ``default_heap()``."""
    global _returning
    libc = _glibc()
    if not libc:
        return False
    if keep_returning:
        libc.mallopt(_M_MMAP_THRESHOLD, RETURNED_BLOCK_BYTES)
        libc.mallopt(_M_TRIM_THRESHOLD, _RETURNED_TRIM_BYTES)
        _returning = True
    libc.malloc_trim(0)
    return True


def returning() -> bool:
    """True while ``keep_returning`` is in force."""
    return _returning


def default_heap() -> None:
    """Undo ``keep_returning`` (nothing to do if it was not asked for)."""
    global _returning
    libc = _glibc()
    if libc and _returning:
        libc.mallopt(_M_MMAP_THRESHOLD, _SETTLED_MMAP_BYTES)
        libc.mallopt(_M_TRIM_THRESHOLD, _SETTLED_TRIM_BYTES)
        _returning = False
