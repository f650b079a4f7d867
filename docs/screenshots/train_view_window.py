"""The screenshot scripts' Train tab: the real ``TrainView`` in the light theme, 1300x820, on a
workspace of labelled pairs, and a ``wait(condition)`` that keeps the event loop turning.

    app, ws, db, view, wait, close = train_view_window(folder)
"""

from __future__ import annotations

import time
from pathlib import Path


def train_view_window(folder: Path, pairs: int = 24):
    from PySide6.QtWidgets import QApplication

    from gui.common.db_worker import DatabaseWorker
    from gui.common.theme import apply_theme
    from gui.train.train_view import TrainView
    from storage.workspace import Workspace
    from tests.tiny_models import fill_workspace

    app = QApplication.instance() or QApplication([])
    apply_theme("light", app)
    ws = Workspace.open(folder / "ws")
    fill_workspace(ws, pairs)
    db = DatabaseWorker()
    view = TrainView(ws, db)
    view.resize(1300, 820)
    view.show()

    def wait(condition, seconds=120.0):
        deadline = time.monotonic() + seconds
        while not condition() and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.01)

    def close():
        from gui.common.workers import wait_for_all_workers

        view.stop_timers()
        db.close()
        wait_for_all_workers(30_000)
        ws.close()

    return app, ws, db, view, wait, close
