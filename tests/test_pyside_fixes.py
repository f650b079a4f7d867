"""The None-refcount guard: void Qt calls cannot run None's reference count down to zero."""

from __future__ import annotations

import sys

import gui  # noqa: F401  (applies the guard)
from gui.pyside_fixes import make_none_immortal


def test_many_void_qt_calls_leave_none_alive(qtbot):
    from PySide6.QtWidgets import QApplication, QLabel

    label = QLabel()
    qtbot.addWidget(label)
    before = sys.getrefcount(None)
    for i in range(20_000):             # each of these once dropped None's count by one
        label.setText("x")
        QApplication.processEvents()
    assert sys.getrefcount(None) > 2**50 or sys.version_info >= (3, 12)
    assert before - sys.getrefcount(None) <= 40_000
    make_none_immortal()                # idempotent: no second top-up while the count is high
    assert sys.getrefcount(None) < 2**61 or sys.version_info >= (3, 12)
