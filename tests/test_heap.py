"""core.engine.heap: the C heap's freed blocks, kept resident by glibc, go back to the system
(checked in a fresh process: 600 MiB of freed heap blocks, each held in place by a small live
one after it, leave its resident size); with ``keep_returning`` they go back as they are freed,
until ``default_heap()``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import ctypes, os, sys
sys.path.insert(0, ROOT)
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p; libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]; libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
size = 4 << 20
first = libc.malloc(size); libc.free(first)    # glibc raises its mmap threshold: the next blocks come from the heap
keep = []
def allocate_and_free():
    blocks = []
    for _ in range(150):      # each block with a small live one after it: freed, none can join the heap's top
        blocks.append(libc.malloc(size)); libc.memset(blocks[-1], 1, size)
        keep.append(libc.malloc(4096)); libc.memset(keep[-1], 1, 4096)
    for block in blocks:
        libc.free(block)
    return rss()
from core.engine.heap import default_heap, return_freed_memory
if MODE == "trim":
    freed = allocate_and_free()
    figures = [return_freed_memory(), round(freed), round(rss())]
else:
    before = rss()
    figures = [return_freed_memory(keep_returning=True), round(before)]
    figures.append(round(allocate_and_free()))    # each block mapped on its own: gone when freed
    default_heap()
    figures.append(round(allocate_and_free()))    # glibc's default again: kept in the heap
print(*figures)
"""


def run_script(mode: str) -> list[str]:
    code = SCRIPT.replace("ROOT", repr(str(ROOT))).replace("MODE", repr(mode))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim: Linux only")
def test_freed_heap_blocks_leave_the_resident_size() -> None:
    ok, freed, after = run_script("trim")
    assert ok == "True"
    assert float(freed) > 550 and float(after) < float(freed) - 500, (freed, after)   # 600 MiB resident until returned


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_keep_returning_gives_blocks_back_as_they_are_freed_until_default_heap() -> None:
    ok, before, returning, default = run_script("keep")
    assert ok == "True"
    assert float(returning) < float(before) + 50, (before, returning)     # 600 MiB freed, none of it kept
    assert float(default) > float(returning) + 500, (returning, default)     # kept again once back to the default
