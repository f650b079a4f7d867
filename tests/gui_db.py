"""The database worker for GUI tests: one per test, closed (after its jobs) at teardown."""

from __future__ import annotations

import pytest


@pytest.fixture
def db(qtbot):
    from gui.common.db_worker import DatabaseWorker

    worker = DatabaseWorker()
    worker.views = []   # views made on it stop their timers before it closes
    yield worker
    for view in worker.views:
        view.stop_timers()
    worker.close()


def settle(db, timeout_ms: int = 10_000) -> None:
    """Let every queued database job run and its answer reach the UI."""
    assert db.wait_idle(timeout_ms), "the database worker did not go idle"


def shown(qtbot, db, view, size: tuple[int, int] = (1300, 820)):
    """``view`` on screen at ``size``, active and focused (shortcuts fire only in the active
    window), its timers stopped before ``db`` closes, its first database answers in."""
    db.views.append(view)
    qtbot.addWidget(view)
    view.resize(*size)
    with qtbot.waitActive(view):
        view.show()
        view.activateWindow()
    view.setFocus()
    settle(db)
    return view
