"""The set-up form's slow checks, none of them on the UI thread.

- the data preview (``core.operations.data_preview``): the training set's counts and the
  too-long count of a sample, in a child process followed by a ``Worker`` thread (the window
  never shares the GIL with that work);
- the device's free memory: ``device_memory`` imports torch, so it runs on a ``Worker`` and
  arrives later (``memory_ready``); the form shows the estimate when it does.

One preview runs at a time; asked again meanwhile, the newest request runs when it is back.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable

from PySide6.QtCore import QObject, Signal, Slot

from core.engine.native_preload import load_torch_libraries
from core.engine.memory_estimate import DeviceMemory, device_memory, system_memory
from core.engine.training_config import TrainingConfig
from core.operations.child_call import call_in_child
from core.operations.data_preview import PreviewResult
from core.operations.launch_checks import token_preview
from gui.common.workers import Worker, start_worker
from storage.workspace import Workspace

MEMORY_MAX_AGE_S = 30.0     # free memory changes slowly; asking on every keystroke would be waste


def _preview_job(location: str, runs_dir: str | None, config: TrainingConfig, with_tokens: bool,
                 report=None) -> PreviewResult:
    # The counts in a child process (core.operations.child_call): building the training set of
    # 100,000 pairs is seconds of Python that, on a thread of the window's process, held the UI
    # thread for hundreds of milliseconds at a time. The sample it sends back (at most 5,000
    # examples) is tokenised here, where the tokenizer's library is loaded once for the tab.
    part = call_in_child("core.operations.data_preview", "preview", location, runs_dir, config)
    if not (with_tokens and part.sample) or part.result.data is None:
        return part.result
    try:
        tokens = token_preview(config, part.sample, of=part.total)
    except Exception as exc:  # noqa: BLE001 - the counts stand; the too-long count says why it is missing
        return dataclasses.replace(part.result, token_error=str(exc) or type(exc).__name__)
    return dataclasses.replace(part.result, tokens=tokens)


def _memory_job(device: str, report=None) -> DeviceMemory:
    load_torch_libraries()      # torch's libraries loaded with the GIL released, before its import
    return device_memory(device)


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

    # -- data preview -----------------------------------------------------------------------
    def request_preview(self, config: TrainingConfig, with_tokens: bool) -> None:
        if self._preview_busy:
            self._pending = (dataclasses.replace(config), with_tokens)
            return
        self._preview_busy = True
        config = dataclasses.replace(config)
        self.run_worker(_preview_job, self.workspace.location, self.workspace.runs_dir_choice, config, with_tokens,
                        on_done=self._preview_done,
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
            self.run_worker(_memory_job, device, on_done=lambda memory: self.set_device_memory(device, memory),
                            on_failed=lambda _message: self._memory_asked.discard(device))
        return cached[1] if cached else None

    def set_device_memory(self, device: str, memory: DeviceMemory) -> None:
        self._memory_asked.discard(device)
        self._memory[device] = (time.monotonic(), memory)
        self.memory_ready.emit(memory)
