"""The one way to run long work off the UI thread.

A ``Worker`` is a QObject that calls a plain Python function on its own QThread and reports
through signals: ``progress`` (plain data from the function's ``report`` callback),
``finished`` (the function's return value) and ``failed`` (a readable message). The function
never touches a widget: it receives plain data and a ``report`` callable, nothing else.

    worker = Worker(import_file, path, workspace_location)
    worker.progress.connect(progress_bar.update_from)
    worker.finished.connect(on_done)
    worker.failed.connect(show_error)
    start_worker(worker)

``start_worker`` owns the thread's life: it quits and is deleted when the function returns,
and ``wait_for_all_workers()`` (used on window close and by tests) joins whatever is left.
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any, Callable

from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, Signal, Slot

from core.engine.native_preload import load_torch_libraries

log = logging.getLogger(__name__)
_live_threads: set[QThread] = set()


class Worker(QObject):
    progress = Signal(object)
    finished = Signal(object)
    failed = Signal(str)

    def __init__(self, fn: Callable[..., Any], *args: Any, loads_torch: bool = False, **kwargs: Any):
        """``loads_torch``: ``fn`` imports torch (a model, a generation) — its native libraries are
        loaded first with the GIL released (``core.engine.native_preload``), so the import holds the
        UI thread for tens of milliseconds rather than hundreds; and once it is done, what it
        imported leaves the garbage collector's reach (``gc.freeze``: a full collection over the
        million-odd objects of torch and transformers held the GIL for ~300 ms)."""
        super().__init__()
        self._fn = fn
        self._args = args
        self._kwargs = kwargs
        self._loads_torch = loads_torch

    @Slot()
    def run(self) -> None:
        if self._loads_torch:
            load_torch_libraries()
        try:
            result = self._fn(*self._args, report=self.progress.emit, **self._kwargs)
            if self._loads_torch:
                gc.freeze()
        except Exception as exc:  # every failure reaches the UI as a message, never a silent stop
            self._return_to_ui_thread()
            message = str(exc) or exc.__class__.__name__
            self.failed.emit(message)
            # The view shows the message; the trace is for a developer (logging), not the terminal.
            log.debug("worker %s failed", getattr(self._fn, "__name__", "task"), exc_info=True)
        else:
            self._return_to_ui_thread()
            self.finished.emit(result)

    def _return_to_ui_thread(self) -> None:
        # Hand the finished worker back to the UI thread so that it is destroyed there. A
        # QObject destroyed on the worker thread takes Qt's signal lock and then asks for the
        # GIL (PySide6 looks up Python overrides in ~QObject), while the UI thread may hold
        # the GIL and wait for that lock to connect a signal: a deadlock seen in the tests.
        app = QCoreApplication.instance()
        if app is not None:
            self.moveToThread(app.thread())


def start_worker(worker: Worker) -> QThread:
    """Move ``worker`` to a new QThread and start it. The thread ends when the work does."""
    thread = QThread()
    thread.setObjectName(f"worker:{getattr(worker._fn, '__name__', 'task')}")
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    # Direct: quit from the worker's own thread (QThread.quit is thread-safe). A queued quit
    # would wait for the UI thread's event loop, which is blocked while the UI joins the
    # thread in wait_for_all_workers() — the join would then run to its timeout.
    worker.finished.connect(thread.quit, Qt.ConnectionType.DirectConnection)
    worker.failed.connect(thread.quit, Qt.ConnectionType.DirectConnection)
    thread.finished.connect(worker.deleteLater)
    thread.finished.connect(lambda: _live_threads.discard(thread))
    thread.finished.connect(thread.deleteLater)
    # Keep Python references until the thread ends, or they would be collected mid-run.
    thread._worker = worker  # type: ignore[attr-defined]
    _live_threads.add(thread)
    thread.start()
    return thread


def register_thread(thread: QThread) -> None:
    """Count a long-lived thread (the database worker's) among the live workers until it ends."""
    thread.finished.connect(lambda: _live_threads.discard(thread))
    _live_threads.add(thread)


def wait_for_thread(thread: QThread, timeout_ms: int = 30_000) -> bool:
    """Wait for one thread to end, delivering events meanwhile (see wait_for_all_workers)."""
    deadline = time.monotonic() + timeout_ms / 1000
    while thread.isRunning() and time.monotonic() < deadline:
        QCoreApplication.processEvents()
        time.sleep(0.002)
    _live_threads.discard(thread)
    return not thread.isRunning()


def running_workers() -> list[QThread]:
    return [t for t in _live_threads if t.isRunning()]


def wait_for_all_workers(timeout_ms: int = 30_000) -> bool:
    """Join every worker thread still running; True when none is left."""
    # Poll instead of QThread.wait(): PySide6's wait() keeps the GIL, so a worker still running
    # Python code could never finish; processing events also delivers the worker's last
    # queued signals (finished, failed) to their receivers before the thread is forgotten.
    deadline = time.monotonic() + timeout_ms / 1000
    while running_workers() and time.monotonic() < deadline:
        QCoreApplication.processEvents()
        time.sleep(0.005)
    return not running_workers()
