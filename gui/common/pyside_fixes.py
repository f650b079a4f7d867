"""Work-arounds for bugs of the installed Qt binding, applied once when ``gui`` is imported.

PySide6 6.12 on Python 3.11 returns ``None`` from every C++ call without a return value
(``label.setText``, ``processEvents``, ``painter.drawPath``...) without taking a reference to
it: it assumes ``None`` is immortal, which it is only from Python 3.12 on. Each call drops
``None``'s reference count by one, and once it reaches zero Python aborts with "Fatal Python
error: none_dealloc". pyqtgraph makes thousands of such calls a second while the training
plots redraw, so the app crashed after a minute or two of training. Giving ``None`` the
huge reference count Python 3.12 gives it makes the bug harmless (``None`` is never freed
in any version). pyproject.toml keeps new installs off 6.12.0 on Python < 3.12; this guard
covers environments that already have it.
"""

from __future__ import annotations

import gc
import sys

_IMMORTAL = 2**60


def make_none_immortal() -> bool:
    """Raise ``None``'s reference count out of reach of the leak; True if it was needed."""
    if sys.version_info >= (3, 12):   # None is immortal there: its count is never changed
        return False
    import PySide6

    if not PySide6.__version__.startswith("6.12."):   # the leak was seen in 6.12.0 only
        return False
    import ctypes

    count = ctypes.c_ssize_t.from_address(id(None))   # ob_refcnt is the object's first field
    if count.value < _IMMORTAL // 2:
        count.value += _IMMORTAL
    return True


_collector = None


def collect_garbage_on_ui_thread(interval_s: float = 0.1):
    """Run Python's cyclic garbage collector only on the UI thread, on a timer.

    Left automatic, a collection runs in whichever thread happens to allocate: a training
    or import worker then destroys garbage Qt objects (widgets of a closed view) off the UI
    thread, and Qt crashes (a segfault seen in ``get_peft_model`` on the preload worker).
    pyqtgraph's ``GarbageCollector`` disables automatic collection and collects on a QTimer
    with the same thresholds. Installed once; later calls return the same collector. Every
    0.1 s, not pyqtgraph's 1 s: a worker building 100,000 pairs fills the youngest generation
    with ~10^5 objects a second, and collecting a second's worth at once held the UI for 130 ms.
    """
    global _collector
    if _collector is None:
        from pyqtgraph.util.garbage_collector import GarbageCollector

        class UiThreadCollector(GarbageCollector):
            """pyqtgraph's, but a full collection only when the objects that reached the oldest
            generation since the last one are a quarter of those it holds (CPython's own rule,
            which a manual ``gc.collect(2)`` skips). Without it every tenth collection of the
            middle generation walked the whole heap (torch, the training set: 100-300 ms on the
            UI thread, again and again while the Train tab loaded)."""

            def __init__(self, *args, **kwargs):
                self.long_lived_total = len(gc.get_objects(2))
                self.long_lived_pending = 0
                super().__init__(*args, **kwargs)

            def check(self):
                count0, count1, count2 = gc.get_count()
                low, middle, high = self.threshold
                if count0 <= low:
                    return
                gc.collect(0)
                if count1 <= middle:
                    return
                self.long_lived_pending += len(gc.get_objects(1))   # at most this many move up
                gc.collect(1)
                if count2 > high and self.long_lived_pending > self.long_lived_total // 4:
                    gc.collect(2)
                    self.long_lived_total, self.long_lived_pending = len(gc.get_objects(2)), 0

        _collector = UiThreadCollector(interval=interval_s)
    return _collector
