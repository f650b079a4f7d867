"""The training run on a worker thread: ``gui.common.workers.Worker`` with the engine's observer
adapted to Qt signals.

    worker = TrainingWorker(workspace, config)          # or resume_run_id="..."
    worker.step_metrics.connect(view.on_step)           # (step, {"loss": ..., ...})
    start_worker(worker)
    worker.control.pause() / .resume() / .request_stop()  # safe from the UI thread

The observer only emits signals (queued to the UI thread, where the view buffers them); it
never touches a widget and never blocks the loop.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

from PySide6.QtCore import Signal

from core.engine.training_config import TrainingConfig
from core.engine.training_control import RunInfo, TrainingControl, TrainingObserver
from gui.common.workers import Worker
from storage.workspace import Workspace


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


class _SignalObserver(TrainingObserver):
    def __init__(self, worker: "TrainingWorker"):
        self._worker = worker

    def on_start(self, run_info: RunInfo) -> None:
        self._worker.run_started.emit(run_info)

    def on_step(self, step: int, metrics: dict[str, float]) -> None:
        self._worker.step_metrics.emit(step, dict(metrics))

    def on_eval(self, step: int, metrics: dict[str, float]) -> None:
        self._worker.eval_metrics.emit(step, dict(metrics))

    def on_message(self, text: str) -> None:
        self._worker.message.emit(text)

    def on_checkpoint(self, step: int, path: str) -> None:
        self._worker.checkpoint_saved.emit(step, path)

    def on_finish(self, status: str, error: str | None) -> None:
        self._worker.run_finished.emit(status, error)


class TrainingWorker(Worker):
    """One training run (new or resumed). Besides ``Worker``'s ``finished`` (the run id) and
    ``failed`` (a readable message), it reports every observer callback as a signal."""

    run_started = Signal(object)          # RunInfo
    step_metrics = Signal(int, object)    # step, train metrics dict
    eval_metrics = Signal(int, object)    # step, eval metrics dict
    message = Signal(str)
    checkpoint_saved = Signal(int, str)
    run_finished = Signal(str, object)    # "completed" | "stopped" | "failed", error or None

    def __init__(self, workspace: Workspace, config: TrainingConfig | None, resume_run_id: str | None = None):
        self.control = TrainingControl()
        self.resume_run_id = resume_run_id
        control = self.control

        def train_run(report) -> str:
            # Imported here, on the worker thread: core.engine.trainer imports torch, which would
            # freeze the window for seconds if the Train tab's first opening imported it.
            from core.engine.trainer import train

            # ``self`` is only read when the thread runs, after QObject.__init__ below.
            with cpu_threads_leaving_one_for_the_ui():
                return train(workspace, config, observer=_SignalObserver(self), control=control,
                             resume_run_id=resume_run_id)

        super().__init__(train_run)
