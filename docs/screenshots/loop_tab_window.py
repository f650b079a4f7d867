"""The screenshot scripts' main window: the real ``MainWindow`` in the light theme, 1300x820,
on a throw-away workspace, turned to one of the loop tabs with its first database answers in.

    with loop_tab_window(lambda root: build(root, ...), "Rounds") as (app, window, page):
        window.grab().save(str(OUT / "rounds.png"))
"""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator


@contextmanager
def loop_tab_window(build: Callable[[Path], object], tab_title: str | None, annotator: str = "ana") -> Iterator[tuple]:
    """Yield (app, window, page): ``build(folder)`` makes the workspace (an open ``Workspace``) in
    a temporary folder, where the window's settings live too; all is closed afterwards. With
    ``tab_title`` None the window stays on its first tab and ``page`` is None (the caller turns to one)."""
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from gui.common import settings
    from gui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    app.setApplicationName("DPO Studio")
    with tempfile.TemporaryDirectory() as tmp:
        QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tmp)
        ws = build(Path(tmp) / "ws")
        settings.set_value("view/theme", "light")
        window = MainWindow(ws, annotator)
        window.resize(1300, 820)
        window.show()
        window.db.wait_idle()
        page = None if tab_title is None else next(p for p in window.loop_pages if p.tab.title == tab_title)
        if page is not None:
            window.tabs.setCurrentWidget(page)
        for _ in range(4):
            window.db.wait_idle()
            app.processEvents()
        try:
            yield app, window, page
        finally:
            window.close()
            window.deleteLater()
            app.processEvents()
            ws.close()
