"""A scripted session in the main window, run by tests/test_ui_thread_isolation.py in a fresh
interpreter (so torch, transformers and peft are not imported yet when it starts).

    python tests/ui_isolation_session.py WORKSPACE MODEL_DIR RESULT.json

First thing, before any other import, it installs a meta-path hook that records the thread on
which torch, transformers and peft are first imported, and a SQLAlchemy
``before_cursor_execute`` listener (on every engine, so the workspace's too) that records every
statement executed on the UI thread, with where it came from. Then it drives the window: 200
verdict keys with notes and undos, every tab, the Train tab's first opening, a run started,
paused, resumed and stopped, the runs list opened, the loop tabs, a pair explained under the run
in Learn (a model loaded in this process, on a worker); closes the window and writes what it saw.
"""

from __future__ import annotations

import sys
import threading

WATCHED = ("torch", "transformers", "peft")
first_import_thread: dict[str, str] = {}


class _ImportWatch:
    """Records the thread of the first import of each watched package; finds nothing itself."""

    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in WATCHED and top not in first_import_thread:
            first_import_thread[top] = threading.current_thread().name
        return None


sys.meta_path.insert(0, _ImportWatch())

import json  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
threading.main_thread().name = "ui"
ui_statements: list[dict] = []


def _on_statement(conn, cursor, statement, parameters, context, executemany) -> None:
    if threading.current_thread() is threading.main_thread():
        frames = [f"{Path(f.filename).relative_to(ROOT)}:{f.lineno} {f.name}"
                  for f in traceback.extract_stack()[:-1] if f.filename.startswith(str(ROOT))
                  and "ui_isolation_session" not in f.filename]
        ui_statements.append({"statement": statement.split("\n")[0][:120], "stack": frames[-6:]})


def main(workspace_dir: str, model_dir: str, result_path: str) -> int:
    from sqlalchemy import Engine, event

    from PySide6.QtCore import QCoreApplication, QSettings, Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    app = QApplication([])
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(Path(result_path).parent))
    from gui.main_window import MainWindow
    from storage.workspace import Workspace

    steps: list[str] = []
    started = time.monotonic()

    class Steps(list):
        def append(self, what: str) -> None:   # each step with the seconds since the start
            super().append(f"{time.monotonic() - started:6.1f} s  {what}")

    steps = Steps()
    ws = Workspace.open(workspace_dir)   # as gui/app.py does before the window: the schema check
    event.listen(Engine, "before_cursor_execute", _on_statement)   # from here on, none on the UI thread
    window = MainWindow(ws, "ada")
    window.resize(1300, 850)
    window.show()
    window.activateWindow()
    QTest.qWaitForWindowActive(window, 5000)

    def settle() -> None:
        window.db.wait_idle(30_000)
        app.processEvents()

    def wait_until(condition, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout_s:.0f} s for {what}")
            QTest.qWait(20)

    settle()
    view = window.annotate
    view.setFocus()
    keys = (Qt.Key.Key_1, Qt.Key.Key_2, Qt.Key.Key_3, Qt.Key.Key_4, Qt.Key.Key_S)
    for i in range(200):
        # An annotator answers the pair they see: wait (briefly) for one to be on screen.
        wait_until(lambda: view.current is not None, 30, f"a pair on screen before key {i}")
        if i % 9 == 4:
            QTest.keyClick(view, Qt.Key.Key_N)
            QTest.keyClicks(view.note, f"note {i}")
            QTest.keyClick(view.note, Qt.Key.Key_Escape)
        QTest.keyClick(view, keys[i % len(keys)])
        if i % 7 == 6:
            QTest.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
        QCoreApplication.processEvents()
        if i % 25 == 0:
            settle()
    settle()
    steps.append("200 verdict keys")
    expected = [(w.pair_id, w.choice.value, w.note) for w in view.session.undo_stack]

    for tab in (window.pairs, window.team, window.annotate):
        window.tabs.setCurrentWidget(tab)
        settle()
        QTest.qWait(50)
    steps.append("pairs, team and annotate tabs")

    window.tabs.setCurrentWidget(window.train_page)
    train = window.train_view
    QTest.qWait(200)
    settle()
    steps.append("train tab first opened")
    train.form.set_values({"base_model": model_dir, "batch_size": 4, "learning_rate": "0.002",
                           "eval_interval": 5, "checkpoint_interval": 10, "max_length": 128, "max_steps": 400})
    QTest.qWait(100)
    settle()
    if not train.start():
        raise RuntimeError("the run did not start")
    def first_step() -> bool:
        if train.last_error:
            raise RuntimeError(f"the run ended before its first step: {train.last_error!r}")
        return train.is_running() and bool(train.series.names("train"))

    wait_until(first_step, 180, "the run's first step")
    steps.append("run started")
    train.pause()
    wait_until(lambda: train.paused, 60, "the run to pause")
    steps.append("paused")
    QTest.qWait(200)
    train.resume()
    wait_until(lambda: not train.paused, 60, "the run to resume")
    steps.append("resumed")
    QTest.qWait(300)
    train.stop()
    wait_until(lambda: not train.is_running(), 120, "the run to stop")
    settle()
    steps.append("stopped")
    run_ids = train.runs.run_ids()
    if run_ids:
        train.runs.open_requested.emit(run_ids[0])
        settle()
        QTest.qWait(100)
    steps.append(f"runs list opened ({len(run_ids)} runs)")

    # The loop tabs, each built at its first opening; in Learn, one of the pairs explained under
    # the run just trained: its worker loads the model (torch, transformers, peft) in this process.
    for page in window.loop_pages:
        window.tabs.setCurrentWidget(page)
        settle()
        QTest.qWait(50)
    steps.append("loop tabs: " + ", ".join(window.tabs.tabText(window.tabs.indexOf(p)) for p in window.loop_pages))
    learn = next(page.view for page in window.loop_pages if type(page.view).__name__ == "LearnView")
    panel = learn.real_pair
    wait_until(lambda: panel.explain_button.isEnabled(), 60, "a run and a pair to explain")
    panel.explain()
    wait_until(lambda: panel.result is not None or "Could not" in panel.status.text(), 180, "the pair explained")
    if panel.result is None:
        raise RuntimeError(panel.status.text())
    steps.append(f"learn: pair #{panel.result.pair_id} explained under {panel.result.run_id}")

    window.close()
    settle()
    steps.append("closed")
    Path(result_path).write_text(json.dumps({
        "ui_statements": ui_statements, "first_import_thread": first_import_thread, "steps": steps,
        "expected_verdicts": expected, "runs": run_ids}, indent=1), encoding="utf-8")
    ws.close()
    return 0


if __name__ == "__main__":
    try:
        code = main(*sys.argv[1:4])
    except Exception:
        traceback.print_exc()
        Path(sys.argv[3]).write_text(json.dumps({
            "ui_statements": ui_statements, "first_import_thread": first_import_thread,
            "error": traceback.format_exc()}, indent=1), encoding="utf-8")
        code = 1
    sys.exit(code)
