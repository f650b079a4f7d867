"""The training run on a worker thread: ``gui.common.workers.Worker`` running a
``core.operations.training.TrainingSession``, its events adapted to one Qt signal.

    session = TrainingSession(workspace, in_child=True)   # the run trains in a child process
    session.start(values=config.to_dict())
    worker = TrainingWorker(session)
    worker.event.connect(view.on_training_event)     # every typed event, queued to the UI thread
    start_worker(worker)
    session.pause() / .resume() / .stop()              # safe from the UI thread

The signal is emitted on the training thread and delivered on the UI thread, where the view
buffers metrics; nothing here touches a widget or blocks the loop.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Callable

from PySide6.QtCore import QObject, Signal, Slot

from core.operations.training import RunOutcome, TrainingSession
from gui.common.workers import Worker


@contextmanager
def cpu_threads_leaving_one_for_the_ui():
    """Train on all cores but one when training on the CPU. torch's intra-op threads spin on
    every core otherwise, and the UI thread (which needs a core and the GIL to answer the
    user) waits for the scheduler: on a 2-core machine the window stalled for 100-700 ms."""
    import torch

    previous = torch.get_num_threads()
    on_cpu = not torch.cuda.is_available() and not torch.backends.mps.is_available()
    if on_cpu:
        torch.set_num_threads(max(1, min(previous, (os.cpu_count() or 2) - 1)))
    try:
        yield
    finally:
        if on_cpu:
            torch.set_num_threads(previous)


class TrainingWorker(Worker):
    """One session's run. ``event`` carries each ``TrainingEvent`` (and ``LaunchRefused``);
    ``Worker.finished`` carries the session's ``RunOutcome``."""

    event = Signal(object)

    def __init__(self, session: TrainingSession):
        self.session = session

        def train_run(report) -> RunOutcome:
            if session.in_child:   # another process: it leaves a core for the window itself
                return session.run()
            with cpu_threads_leaving_one_for_the_ui():
                return session.run()

        super().__init__(train_run)
        session.subscribe(self.event.emit)


class RunEnd(QObject):
    """Hears one run's worker end, on the UI thread. It belongs to the view, so the worker's
    queued ``finished``/``failed`` reach it even when the worker and its thread were deleted
    first (a queued call to an object that is gone is dropped: that left a run "running")."""

    def __init__(self, owner: QObject, worker: TrainingWorker,
                 on_end: Callable[["RunEnd", str | None], None]):
        """``on_end(self, failure)`` is called once, on the UI thread: failure None, or the message."""
        super().__init__(owner)
        self._on_end = on_end
        worker.finished.connect(self._finished)
        worker.failed.connect(self._failed)

    @Slot(object)
    def _finished(self, _outcome) -> None:
        self._on_end(self, None)

    @Slot(str)
    def _failed(self, message: str) -> None:
        self._on_end(self, message)
