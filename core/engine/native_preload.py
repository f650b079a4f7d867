"""Loading torch's shared libraries without holding the GIL.

``import torch`` loads libtorch_cpu (hundreds of megabytes; its static initialisers register
every operator) through Python's import machinery, which keeps the GIL for the whole
``dlopen``: every other thread, the UI thread included, stood still for 250 ms on the 2-core
machine. Calling the C library's ``dlopen`` through ctypes releases the GIL (ctypes does for
every foreign call), so the same loading runs beside the UI thread; the later ``import torch``
finds the libraries loaded and only binds them (longest hold ~65 ms). Only on Linux; elsewhere,
or when anything is missing, it does nothing and the import loads them as usual.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import sys
from pathlib import Path

LIBRARIES = ("libtorch_python.so",)     # pulls in libtorch, libtorch_cpu, libc10 and the rest
_handles: list[int] = []


def torch_library_dir() -> Path | None:
    """torch's ``lib`` folder, found without importing torch."""
    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    return Path(spec.origin).parent / "lib"


def load_torch_libraries() -> bool:
    """``dlopen`` torch's native libraries with the GIL released; True when they are loaded
    (now or before). Call it on a worker thread before the first ``import torch``."""
    if _handles or "torch" in sys.modules:
        return bool(_handles)
    folder = torch_library_dir()
    if not sys.platform.startswith("linux") or folder is None:
        return False
    paths = [folder / name for name in LIBRARIES]
    if not all(path.is_file() for path in paths):
        return False
    try:
        libc = ctypes.CDLL(None)
        dlopen = libc.dlopen
    except (OSError, AttributeError):
        return False
    dlopen.restype = ctypes.c_void_p
    dlopen.argtypes = [ctypes.c_char_p, ctypes.c_int]
    for path in paths:
        handle = dlopen(os.fsencode(path), sys.getdlopenflags())   # Python's own flags, as import uses
        if not handle:
            return False
        _handles.append(handle)     # kept open: the libraries stay loaded for the import
    return True
