"""The one thread that does the GUI's database work.

Every read and write the views make goes through ``DatabaseWorker.submit``: the function runs
on the worker's own thread (jobs strictly one after another, in the order submitted, like
Anki's single collection executor), and its result comes back on the UI thread to
``on_done`` — or the exception to ``on_failed``. The function receives plain data and returns
plain data; it never touches a widget. The UI thread never executes a statement.

    db = DatabaseWorker()
    db.submit(queue_stats, workspace, "alice", on_done=self._show_stats)

``DatabaseWorker`` is the long-lived twin of ``gui.common.workers.Worker`` (which runs one
long job on its own thread): a QObject on a QThread, plain data in, signals out. Its thread is
registered with ``gui.common.workers`` so ``wait_for_all_workers`` and the tests' leak check
see it; ``close()`` finishes the jobs already queued and ends the thread.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from PySide6.QtCore import QObject, QThread, Signal, Slot

from gui.common import workers

log = logging.getLogger(__name__)
_job_ids = itertools.count(1)


@dataclass
class Job:
    fn: Callable[..., Any]
    args: tuple
    kwargs: dict
    on_done: Callable[[Any], None] | None = None
    on_failed: Callable[[BaseException], None] | None = None
    id: int = field(default_factory=lambda: next(_job_ids))

    @property
    def name(self) -> str:
        return getattr(self.fn, "__qualname__", getattr(self.fn, "__name__", "job"))


class _Executor(QObject):
    """Lives on the database thread; runs each job it is sent."""

    done = Signal(object, object)      # job, result
    failed = Signal(object, object)    # job, exception

    @Slot(object)
    def run(self, job: Job) -> None:
        try:
            result = job.fn(*job.args, **job.kwargs)
        except Exception as exc:  # reaches the UI as on_failed(exc), never a silent stop
            log.debug("database job %s failed", job.name, exc_info=True)
            self.failed.emit(job, exc)
        else:
            self.done.emit(job, result)


class DatabaseWorker(QObject):
    """Owns the database thread. Create and use on the UI thread."""

    _send = Signal(object)
    job_failed = Signal(object, object)   # job, exception — also for jobs without on_failed
    idle = Signal()                       # the last queued job has come back

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._thread = QThread()
        self._thread.setObjectName("database")
        self._executor = _Executor()
        self._executor.moveToThread(self._thread)
        self._send.connect(self._executor.run)
        self._executor.done.connect(self._on_done)
        self._executor.failed.connect(self._on_failed)
        self._thread.finished.connect(self._executor.deleteLater)
        self._pending: set[int] = set()
        self._closed = False
        workers.register_thread(self._thread)
        self._thread.start()

    def submit(self, fn: Callable[..., Any], *args: Any, on_done: Callable[[Any], None] | None = None,
               on_failed: Callable[[BaseException], None] | None = None, **kwargs: Any) -> Job:
        """Queue ``fn(*args, **kwargs)`` for the database thread; callbacks run on the UI thread."""
        if self._closed:
            raise RuntimeError("the database worker is closed")
        job = Job(fn, args, kwargs, on_done, on_failed)
        self._pending.add(job.id)
        self._send.emit(job)
        return job

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    def _finish(self, job: Job) -> None:
        self._pending.discard(job.id)
        if not self._pending:
            self.idle.emit()

    def _on_done(self, job: Job, result: Any) -> None:
        try:
            if job.on_done is not None:
                job.on_done(result)
        finally:
            self._finish(job)

    def _on_failed(self, job: Job, exc: BaseException) -> None:
        try:
            self.job_failed.emit(job, exc)
            if job.on_failed is not None:
                job.on_failed(exc)
        finally:
            self._finish(job)

    def wait_idle(self, timeout_ms: int = 30_000) -> bool:
        """Process events until every queued job has come back (tests, closing). True when idle."""
        import time

        from PySide6.QtCore import QCoreApplication

        deadline = time.monotonic() + timeout_ms / 1000
        while self._pending and time.monotonic() < deadline:
            QCoreApplication.processEvents()
            time.sleep(0.002)
        return not self._pending

    def close(self, timeout_ms: int = 30_000) -> None:
        """Finish the queued jobs, deliver their results, and end the thread."""
        if self._closed:
            return
        self.wait_idle(timeout_ms)
        self._closed = True
        self._thread.quit()
        workers.wait_for_thread(self._thread, timeout_ms)
