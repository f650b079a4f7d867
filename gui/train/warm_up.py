"""Making the Train tab's first opening quick: its modules imported ahead, off the UI thread.

Importing the training view pulls in numpy, pyqtgraph, the engine's config and control types
and the tab's own modules: about 1.5 s on the 2-core machine, on the UI thread, at the first
click on the tab. ``warm_up_train_tab(window)`` imports them on a ``Worker`` a few seconds
after the window is shown (module imports are thread-safe in Python; no widget or other
QObject is made off the UI thread), so the click only builds widgets. No torch, transformers or
peft is imported here: that is the tab's own preload (``core.engine.library_preload``), once
the tab is open.

When the import is back, ``gc.freeze()`` moves what it allocated out of the cyclic collector's
reach: the UI-thread collector (``gui.common.pyside_fixes``) would otherwise walk those
objects again on every full collection (~250 ms, seen as a stall at the first opening).
"""

from __future__ import annotations

import gc
import importlib
import sys

from PySide6.QtCore import QObject, QTimer

from gui.common.pyside_fixes import collect_garbage_on_ui_thread
from gui.common.workers import Worker, start_worker

TRAIN_VIEW_MODULE = "gui.train.train_view"
WARM_UP_DELAY_MS = 1500     # after the window's first screen has drawn and loaded its pairs


def import_train_modules(report=None) -> str:
    """Import the training view and everything it imports (on a worker thread)."""
    importlib.import_module(TRAIN_VIEW_MODULE)
    return TRAIN_VIEW_MODULE


def warm_up_train_tab(owner: QObject, delay_ms: int = WARM_UP_DELAY_MS) -> None:
    """Import the Train tab's modules on a worker ``delay_ms`` after now (once per process)."""
    if TRAIN_VIEW_MODULE in sys.modules:
        return
    QTimer.singleShot(delay_ms, owner, _start)


_started = False


def _start() -> None:
    global _started
    if _started or TRAIN_VIEW_MODULE in sys.modules:
        return
    _started = True
    # Collections on the UI thread only, before any worker allocates (see pyside_fixes).
    collect_garbage_on_ui_thread()
    worker = Worker(import_train_modules)
    worker.finished.connect(lambda _name: gc.freeze())
    worker.failed.connect(lambda _message: None)   # the click imports it again and shows why
    start_worker(worker)
