"""Finding the test that leaves a QTimer or a worker thread running.

A timer still running when its test ends fires during the next tests, into widgets that are
gone ("Signal source has been deleted" in five unrelated tests, once). So every QTimer is
tracked from its creation: ``install()`` replaces ``PySide6.QtCore.QTimer`` with a subclass
that notes each instance (weakly) with where it was created, and wraps the static
``QTimer.singleShot`` so a pending shot is known until it fires. ``install()`` must run before
any module does ``from PySide6.QtCore import QTimer`` (tests/conftest.py calls it first).

At a test's end, once pytest-qt has closed the test's widgets, ``leaked_timers(since)`` names
every timer created during the test that is still running; ``stop_leaked`` then stops them so
the next test starts clean. Worker threads (``gui.common.workers``, the database worker's
included) are named by ``leaked_threads()``, with where each one was started.
"""

from __future__ import annotations

import functools
import itertools
import sys
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import sysconfig

import shiboken6
from PySide6 import QtCore

ROOT = Path(__file__).resolve().parents[1]
_STDLIB = Path(sysconfig.get_paths()["stdlib"]).resolve()
_ORIGINAL_TIMER = QtCore.QTimer
_ORIGINAL_SINGLE_SHOT = QtCore.QTimer.singleShot
_sequence = itertools.count(1)


def creation_site(skip: int = 2, depth: int = 12) -> tuple[tuple[str, int, str], ...]:
    """The calling frames (file, line, function), innermost first: cheap enough for every timer."""
    frames = []
    frame = sys._getframe(skip)
    while frame is not None and len(frames) < depth:
        frames.append((frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name))
        frame = frame.f_back
    return tuple(frames)


def describe_site(frames: tuple[tuple[str, int, str], ...], shown: int = 3) -> str:
    """The code's own frames of ``frames`` (not pytest's, a library's or Python's), innermost first."""
    own = []
    for filename, line, function in frames:
        path = Path(filename)
        if path == Path(__file__) or "site-packages" in path.parts or _STDLIB in path.parents \
                or filename.startswith("<"):
            continue
        shown_path = path.relative_to(ROOT) if ROOT in path.parents else path
        own.append(f"{shown_path}:{line} in {function}")
    return " <- ".join(own[:shown]) or "an unknown place"


@dataclass(eq=False)
class PendingShot:
    """One call of the static ``QTimer.singleShot`` with a Python callable, until it fires."""
    msec: int
    site: tuple
    sequence: int
    context: Callable[[], Any] | None = None     # weak reference to the context QObject
    fired: bool = False
    cancelled: bool = False

    def alive(self) -> bool:
        if self.fired or self.cancelled:
            return False
        if self.context is None:
            return True
        context = self.context()
        return context is not None and shiboken6.isValid(context)   # Qt drops the shot with its context


_timers: "weakref.WeakKeyDictionary[Any, tuple[int, tuple]]" = weakref.WeakKeyDictionary()
_pending_shots: set[PendingShot] = set()


class TrackedTimer(_ORIGINAL_TIMER):
    """``QTimer`` that remembers where it was created (the class tests see as ``QTimer``)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        _timers[self] = (next(_sequence), creation_site())

    @staticmethod
    def singleShot(*args: Any, **kwargs: Any) -> None:
        *head, target = args
        if kwargs or not head or not callable(target):   # the (receiver, b"member") forms: untracked
            return _ORIGINAL_SINGLE_SHOT(*args, **kwargs)
        context = next((a for a in head[1:] if isinstance(a, QtCore.QObject)), None)
        shot = PendingShot(int(head[0]), creation_site(), next(_sequence),
                           weakref.ref(context) if context is not None else None)
        _pending_shots.add(shot)

        def fire(*fire_args: Any) -> None:
            shot.fired = True
            _pending_shots.discard(shot)
            if not shot.cancelled:
                target(*fire_args)

        return _ORIGINAL_SINGLE_SHOT(*head, fire)


def install() -> None:
    """Make ``PySide6.QtCore.QTimer`` the tracked class (idempotent)."""
    QtCore.QTimer = TrackedTimer


def current_sequence() -> int:
    """A mark: timers and shots created after it have a larger sequence number."""
    return next(_sequence)


@dataclass
class Leak:
    description: str
    stop: Callable[[], None] = field(repr=False)


def _describe_object(obj: Any) -> str:
    name = obj.objectName()
    return f"{type(obj).__name__}" + (f" {name!r}" if name else "")


def leaked_timers(since: int, exempt: Callable[[Any], bool] = lambda timer: False) -> list[Leak]:
    """Every timer created after ``since`` and still running, and every pending single shot."""
    leaks = []
    for timer, (sequence, site) in list(_timers.items()):
        if sequence <= since or not shiboken6.isValid(timer) or exempt(timer):
            continue
        try:
            active = timer.isActive()
        except RuntimeError:    # deleted meanwhile
            continue
        if not active:
            continue
        parent = timer.parent()
        owner = f", parent {_describe_object(parent)}" if parent is not None else ", no parent"
        kind = "single-shot " if timer.isSingleShot() else ""
        name = f" {timer.objectName()!r}" if timer.objectName() else ""
        subclass = f" ({type(timer).__name__})" if type(timer) is not TrackedTimer else ""
        leaks.append(Leak(f"{kind}QTimer{subclass}{name} every {timer.interval()} ms{owner}, "
                          f"created at {describe_site(site)}", timer.stop))
    for shot in sorted(_pending_shots, key=lambda s: s.sequence):
        if shot.sequence > since and shot.alive():
            leaks.append(Leak(f"QTimer.singleShot({shot.msec} ms, ...) not fired yet, called at "
                              f"{describe_site(shot.site)}", lambda shot=shot: setattr(shot, "cancelled", True)))
    return leaks


def stop_leaked(leaks: list[Leak]) -> None:
    for leak in leaks:
        try:
            leak.stop()
        except RuntimeError:
            pass


# Threads: where each worker thread was started, recorded by wrapping the two functions of
# gui.common.workers that register one (start_worker for a job, register_thread for the
# database worker's long-lived thread).
_thread_sites: "weakref.WeakKeyDictionary[Any, tuple]" = weakref.WeakKeyDictionary()


def track_worker_threads() -> None:
    from gui.common import workers

    if getattr(workers.register_thread, "_tracked", False):
        return
    original_register, original_start = workers.register_thread, workers.start_worker

    @functools.wraps(original_register)
    def register_thread(thread):
        _thread_sites[thread] = creation_site()
        return original_register(thread)

    @functools.wraps(original_start)
    def start_worker(worker):
        thread = original_start(worker)
        _thread_sites[thread] = creation_site()
        return thread

    register_thread._tracked = start_worker._tracked = True
    workers.register_thread, workers.start_worker = register_thread, start_worker


def leaked_threads() -> list[str]:
    """The worker threads still running, each named with where it was started."""
    workers = sys.modules.get("gui.common.workers")
    if workers is None:
        return []
    named = []
    for thread in workers.running_workers():
        site = _thread_sites.get(thread)
        hint = " (a DatabaseWorker never closed: call its close())" if thread.objectName() == "database" else ""
        named.append(f"QThread {thread.objectName() or type(thread).__name__!r}{hint}, started at "
                     f"{describe_site(site) if site else 'an unknown place'}")
    return named


def end_leaked_threads(timeout_ms: int = 10_000) -> None:
    """Ask the leaked threads' event loops to end, so the next test does not inherit them."""
    workers = sys.modules.get("gui.common.workers")
    if workers is None:
        return
    for thread in workers.running_workers():
        thread.quit()
    workers.wait_for_all_workers(timeout_ms)


def lives_with_the_app(timer) -> bool:
    """The one timer meant to outlive every window: the UI-thread garbage collector's."""
    fixes = sys.modules.get("gui.common.pyside_fixes")
    collector = getattr(fixes, "_collector", None)
    return collector is not None and timer is collector.timer


def leaks_at_teardown(since: int) -> list[str]:
    """What was left running since the mark ``since``, named; each is stopped afterwards so the
    next test starts clean. Call after pytest-qt has closed the test's widgets."""
    if QtCore.QCoreApplication.instance() is not None:
        # Widgets pytest-qt closed were deleteLater()'d: delete them (and their timers) now.
        QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete)
    workers = sys.modules.get("gui.common.workers")
    problems: list[str] = []
    if workers is not None and workers.running_workers():
        # A job's thread may still be delivering its result; the database thread never ends alone.
        if any(thread.objectName() != "database" for thread in workers.running_workers()):
            workers.wait_for_all_workers(timeout_ms=5_000)
        problems += leaked_threads()
        end_leaked_threads()
    timers = leaked_timers(since, exempt=lives_with_the_app)
    stop_leaked(timers)
    return problems + [leak.description for leak in timers]
