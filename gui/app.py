"""Start the desktop app: QApplication, the workspace, the main window."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QThread
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMessageBox

from gui.common.pyside_fixes import collect_garbage_on_ui_thread

from storage.workspace import SchemaTooNewError, Workspace, WorkspaceError, default_workspace_dir


def open_startup_workspace(location: str | None) -> Workspace:
    """The workspace named on the command line, else the default one in the user's data folder.

    The default workspace starts as the bundled demo (pairs to label, labelled pairs, the demo
    model as base): a first start shows the whole loop working, offline.
    """
    if location is None:
        from core.demo.demo_workspace import ensure_demo_workspace

        ensure_demo_workspace(default_workspace_dir())
        location = str(default_workspace_dir())
    return Workspace.open(location)


def install_exception_hook(location: str) -> None:
    """An exception no code caught (a bug in a slot) is logged and shown in one line, not as a
    traceback on the terminal; the app goes on."""
    from core.operations.error_log import one_line, write_error_log

    def hook(kind, exc, trace) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, exc, trace)
            return
        log = write_error_log(exc, location)
        where = f"\n\nThe full trace is in {log}." if log else ""
        text = f"{kind.__name__}: {one_line(exc, location)}"
        print(f"error: {text}" + (f" (the full trace is in {log})" if log else ""), file=sys.stderr)
        app = QApplication.instance()
        if app is not None and QThread.currentThread() is app.thread():
            QMessageBox.warning(None, "Something went wrong", f"{text}{where}")

    sys.excepthook = hook


def run_app(location: str | None = None) -> int:
    app = QApplication.instance() or QApplication(sys.argv)
    app.setApplicationName("DPO Studio")
    app.setOrganizationName("DPO Studio")
    app.setWindowIcon(QIcon(str(Path(__file__).resolve().parents[1] / "resources" / "desktop" / "dpo-studio.svg")))
    # Before any worker starts: a collection on a worker thread would destroy Qt objects there.
    collect_garbage_on_ui_thread()
    try:
        workspace = open_startup_workspace(location)
    except (WorkspaceError, SchemaTooNewError) as exc:
        QMessageBox.critical(None, "DPO Studio cannot open the workspace", str(exc))
        return 2
    install_exception_hook(workspace.location)
    from gui.main_window import MainWindow

    window = MainWindow(workspace)
    window.show()
    code = app.exec()
    workspace.close()
    return code
