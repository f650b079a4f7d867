"""The None-refcount guard: void Qt calls cannot run None's reference count down to zero."""

from __future__ import annotations

import sys

import gui  # noqa: F401  (applies the guard)
from gui.common.pyside_fixes import make_none_immortal


def test_many_void_qt_calls_leave_none_alive(qtbot):
    from PySide6.QtWidgets import QApplication, QLabel

    label = QLabel()
    qtbot.addWidget(label)
    for _ in range(20_000):             # with PySide6 6.12.0 on Python 3.11 each call dropped None's count by one
        label.setText("x")
        QApplication.processEvents()
    # Without the guard (or a fixed binding) the loop above aborts the interpreter; with it,
    # None keeps a healthy count.
    assert sys.getrefcount(None) > 1_000


def test_guard_is_idempotent():
    applied = make_none_immortal()
    count = sys.getrefcount(None)
    make_none_immortal()                # no second top-up while the count is high
    if applied:
        assert abs(sys.getrefcount(None) - count) < 1_000


def test_garbage_is_collected_on_the_ui_thread_only(qtbot):
    import gc

    from gui.common.pyside_fixes import collect_garbage_on_ui_thread

    collector = collect_garbage_on_ui_thread()
    assert collect_garbage_on_ui_thread() is collector
    assert not gc.isenabled()                   # no collection in a worker thread
    assert collector.timer.isActive()           # the UI thread's timer collects instead
    junk = [[] for _ in range(2 * gc.get_threshold()[0])]   # allocations past the gen-0 threshold
    assert gc.get_count()[0] > gc.get_threshold()[0]
    collector.check()                                        # what the timer does
    assert gc.get_count()[0] < gc.get_threshold()[0]
    del junk
