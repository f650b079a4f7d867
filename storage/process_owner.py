"""Which process owns a running training run, and whether that process is still there.

A run set running records its owner: the host name, the pid, and the process's start time
(the start time tells the original process from a later one that was given the same pid).
A run whose owner is gone was killed or crashed mid-run; ``storage.runs`` marks it
interrupted. Only an owner on *this* host can be checked; for any other host (a team store
shared by several computers) the answer is "unknown" and the run is left as it is.

Standard library only (``/proc`` on Linux, ``kill(pid, 0)`` elsewhere on POSIX, the Win32
process API on Windows).
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass

# Start times are compared with this much slack (Linux derives them from the boot time,
# which the kernel reports to the whole second).
START_TIME_TOLERANCE_S = 2.0


@dataclass(frozen=True)
class ProcessOwner:
    host: str
    pid: int
    #: Seconds since the epoch when the process started; None where the system does not say.
    started: float | None


def this_host() -> str:
    return socket.gethostname()


def this_process() -> ProcessOwner:
    pid = os.getpid()
    return ProcessOwner(this_host(), pid, process_start_time(pid))


def process_start_time(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), or None if unknown / not running."""
    if sys.platform.startswith("linux"):
        return _linux_start_time(pid)
    if sys.platform == "win32":
        return _windows_process(pid)[1]
    return None


def is_gone(owner: ProcessOwner) -> bool:
    """True only when sure: the owner ran on this host and no longer runs (or its pid now
    belongs to a process started at another time)."""
    if owner.host != this_host():
        return False
    if owner.pid == os.getpid():
        return False
    alive, started = _probe(owner.pid)
    if not alive:
        return True
    if owner.started is not None and started is not None:
        return abs(started - owner.started) > START_TIME_TOLERANCE_S
    return False


def _probe(pid: int) -> tuple[bool, float | None]:
    """(is a process with this pid running, its start time if known)."""
    if pid <= 0:
        return False, None
    if sys.platform.startswith("linux") and os.path.isdir("/proc/self"):
        started = _linux_start_time(pid)
        return started is not None, started
    if sys.platform == "win32":
        return _windows_process(pid)
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the pid exists
    except ProcessLookupError:
        return False, None
    except PermissionError:
        return True, None  # exists, owned by someone else
    except OSError:
        return True, None  # cannot tell: assume alive
    return True, None


def _linux_start_time(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
        with open("/proc/stat", encoding="ascii", errors="replace") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime "))
    except (OSError, StopIteration, ValueError):
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    fields = stat[stat.rfind(")") + 2:].split()
    if len(fields) < 20 or fields[0] == "Z":   # a zombie has ended; only its entry is left
        return None
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")   # field 22: start, in clock ticks


def _windows_process(pid: int) -> tuple[bool, float | None]:
    import ctypes
    from ctypes import wintypes

    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
    query_limited_information, still_active = 0x1000, 259
    handle = kernel32.OpenProcess(query_limited_information, False, pid)
    if not handle:
        # Access denied means the process exists; any other failure, that it does not.
        return ctypes.GetLastError() == 5, None  # type: ignore[attr-defined]
    try:
        code = wintypes.DWORD()
        if kernel32.GetExitCodeProcess(handle, ctypes.byref(code)) and code.value != still_active:
            return False, None
        times = [wintypes.FILETIME() for _ in range(4)]
        if not kernel32.GetProcessTimes(handle, *(ctypes.byref(t) for t in times)):
            return True, None
        created = (times[0].dwHighDateTime << 32) | times[0].dwLowDateTime  # 100 ns since 1601
        return True, created / 1e7 - 11_644_473_600
    finally:
        kernel32.CloseHandle(handle)
