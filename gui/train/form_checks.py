"""The set-up form's slow checks, none of them on the UI thread, nor in the window's process.

The window's helper process (``core.operations.child_call.shared_helper``, at a lower priority)
answers them, each call followed by a ``Worker`` thread that waits for it; the window's process
never imports torch or transformers for the form, so no thread of it holds the GIL for what
they do (their imports held it in C calls of 300 ms and more):

- the data preview (``core.operations.data_preview.checked_preview``): the training set's counts
  and the too-long count of a sample;
- the devices this computer has (``core.engine.devices.available_devices``), for the picker;
- the device's free memory (``device_memory``): it arrives later (``memory_ready``); the form
  shows the estimate when it does.

One preview runs at a time; asked again meanwhile, the newest request runs when it is back.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable

from PySide6.QtCore import QObject, Signal, Slot

from core.engine.memory_estimate import DeviceMemory, system_memory
from core.engine.training_config import TrainingConfig
from core.operations.child_call import shared_helper
from core.operations.data_preview import PreviewResult
from core.operations.error_log import scrubbed
from gui.common.workers import Worker, start_worker
from storage.workspace import Workspace

MEMORY_MAX_AGE_S = 30.0     # free memory changes slowly; asking on every keystroke would be waste


class _Callback(QObject):
    def __init__(self, on_done: Callable[[Any], None], on_failed: Callable[[str], None], parent: QObject):
        super().__init__(parent)
        self._on_done, self._on_failed = on_done, on_failed

    @Slot(object)
    def done(self, result: Any) -> None:
        self.deleteLater()
        self._on_done(result)

    @Slot(str)
    def failed(self, message: str) -> None:
        self.deleteLater()
        self._on_failed(message)


class FormChecks(QObject):
    preview_ready = Signal(object)     # PreviewResult
    memory_ready = Signal(object)      # DeviceMemory

    def __init__(self, workspace: Workspace, db=None, parent: QObject | None = None):
        super().__init__(parent)
        self.workspace = workspace
        self.db = db
        self._preview_busy = False
        self._pending: tuple[TrainingConfig, bool] | None = None
        self._memory: dict[str, tuple[float, DeviceMemory]] = {}
        self._memory_asked: set[str] = set()
        self.helper = shared_helper()     # the window's: torch stays imported for the next form
        self._closed = False

    def close(self) -> None:
        """The view is closing: no new call (one in flight still comes back, and is dropped)."""
        self._closed = True

    # -- running work off the UI thread ------------------------------------------------------
    def run_db(self, fn: Callable[..., Any], *args: Any, on_done: Callable[[Any], None],
               on_failed: Callable[[str], None]) -> None:
        """``fn(*args)`` on the database thread (or, without one, on a worker thread)."""
        if self.db is not None:
            try:
                self.db.submit(fn, *args, on_done=on_done,
                               on_failed=lambda exc: on_failed(str(exc) or type(exc).__name__))
            except RuntimeError:   # the database worker is closed: the window is closing, nothing to show
                pass
            return

        def job(*job_args, report=None):
            return fn(*job_args)
        job.__name__ = getattr(fn, "__name__", "database_job")
        self.run_worker(job, *args, on_done=on_done, on_failed=on_failed)

    def run_worker(self, fn: Callable[..., Any], *args: Any, on_done: Callable[[Any], None],
                   on_failed: Callable[[str], None]) -> None:
        """``fn(*args)`` on a worker thread of its own; the callbacks run on the UI thread."""
        worker = Worker(fn, *args)
        callback = _Callback(on_done, on_failed, self)   # a UI-thread receiver: the slots are queued here
        worker.finished.connect(callback.done)
        worker.failed.connect(callback.failed)
        start_worker(worker)

    def ask_helper(self, module: str, function: str, *args: Any, on_done: Callable[[Any], None],
                   on_failed: Callable[[str], None]) -> None:
        """``module.function(*args)`` in the form's helper process, waited for on a worker thread."""
        if self._closed:
            return
        helper = self.helper

        def job(report=None):
            return helper.call(module, function, *args)
        job.__name__ = function
        # The helper knows no workspace: a message that came through it has the password masked here.
        location = self.workspace.location
        self.run_worker(job, on_done=lambda result: self._closed or on_done(result),
                        on_failed=lambda message: self._closed or on_failed(scrubbed(message, location)))

    # -- data preview -----------------------------------------------------------------------
    def request_preview(self, config: TrainingConfig, with_tokens: bool) -> None:
        if self._preview_busy:
            self._pending = (dataclasses.replace(config), with_tokens)
            return
        self._preview_busy = True
        config = dataclasses.replace(config)
        self.ask_helper("core.operations.data_preview", "checked_preview", self.workspace.location,
                        self.workspace.runs_dir_choice, config, with_tokens, on_done=self._preview_done,
                        on_failed=lambda message: self._preview_done(PreviewResult(None, error=message)))

    def _preview_done(self, result: PreviewResult) -> None:
        self._preview_busy = False
        if self._pending is not None:    # settings changed meanwhile: only the newest counts
            config, with_tokens = self._pending
            self._pending = None
            self.request_preview(config, with_tokens)
            return
        self.preview_ready.emit(result)

    @property
    def preview_busy(self) -> bool:
        return self._preview_busy

    # -- device memory ------------------------------------------------------------------------
    def device_memory(self, device: str) -> DeviceMemory | None:
        """The free memory of the device a run would use, when known; asks for it (off the UI
        thread) when it is not, or is old, and reports it through ``memory_ready``."""
        if device == "cpu":
            return system_memory()      # no torch needed
        cached = self._memory.get(device)
        if (cached is None or time.monotonic() - cached[0] > MEMORY_MAX_AGE_S) and device not in self._memory_asked:
            self._memory_asked.add(device)
            self.ask_helper("core.engine.memory_estimate", "device_memory", device,
                            on_done=lambda memory: self.set_device_memory(device, memory),
                            on_failed=lambda _message: self._memory_asked.discard(device))
        return cached[1] if cached else None

    def set_device_memory(self, device: str, memory: DeviceMemory) -> None:
        self._memory_asked.discard(device)
        self._memory[device] = (time.monotonic(), memory)
        self.memory_ready.emit(memory)
