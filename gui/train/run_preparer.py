"""A training process kept ready for the Train tab's next run.

A run trains in a process of its own, and a fresh one spends seconds importing torch and reading
the training set before its first step (12 s at 100,000 pairs, BENCHMARKS.md). ``RunPreparer``
starts one ahead (``core.operations.training_child.prepare_training_process``: at low priority,
no SQL on this thread) a moment after the tab is built, and again after each run, so that Start
hands the run to a process that has done that already. ``take()`` gives it to the next run (or
None: the run then starts a process of its own); ``close()`` ends it with the tab.

Not at the window's start: an annotator who never trains would pay the process's memory (the
run's data: 0.8 GB at 100,000 pairs) for nothing; opening the Train tab says a run may follow.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer

from core.operations.training_child import PreparedTrainingProcess, prepare_training_process
from storage.workspace import Workspace

PREPARE_DELAY_MS = 1500    # after the tab's last piece is built and painted, before the user can reach Start


class RunPreparer(QObject):
    def __init__(self, workspace: Workspace, parent: QObject, delay_ms: int = PREPARE_DELAY_MS):
        super().__init__(parent)
        self.workspace = workspace
        self.prepared: PreparedTrainingProcess | None = None
        self._closed = False
        self._timer = QTimer(self)
        self._timer.setObjectName("prepare-run")
        self._timer.setSingleShot(True)
        self._timer.setInterval(delay_ms)
        self._timer.timeout.connect(self.prepare_now)

    def schedule(self) -> None:
        """Prepare a process ``delay_ms`` from now, unless one is ready for the next run."""
        if not self._closed and not (self.prepared is not None and self.prepared.available):
            self._timer.start()

    @property
    def scheduled(self) -> bool:
        """A process will be prepared once the delay has passed."""
        return self._timer.isActive()

    def prepare_now(self) -> None:
        if self._closed or (self.prepared is not None and self.prepared.available):
            return
        try:
            self.prepared = prepare_training_process(self.workspace)
        except OSError:           # no process could start: the run will say why when it starts its own
            self.prepared = None

    def take(self) -> PreparedTrainingProcess | None:
        """The prepared process for the run starting now (once), or None."""
        self._timer.stop()
        prepared, self.prepared = self.prepared, None
        return prepared

    def close(self) -> None:
        """No more processes; the one waiting ends (a run that took one keeps it)."""
        self._closed = True
        self._timer.stop()
        prepared, self.prepared = self.prepared, None
        if prepared is not None:
            prepared.close()
