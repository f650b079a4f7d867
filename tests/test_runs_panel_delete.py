"""The Train tab's runs list deletes a run: the Delete… button (and the context menu) asks first,
the database thread deletes it (or refuses, said in the panel's status line), and the change goes
out as ``changes_made``."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from gui.train.runs_panel import RunsPanel
from storage.workspace import Workspace
from tests.gui_db import db, settle  # noqa: F401  (fixture)
from tests.qt_settings import isolated_settings  # noqa: F401  (fixture)
from tests.test_run_deletion import _run

pytestmark = pytest.mark.usefixtures("isolated_settings")


def _answer(button_text: str, seen: list[str]) -> None:
    """Press ``button_text`` on the confirmation as soon as it is up."""
    def press(tries=[0]):
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            seen.append(box.text())
            next(b for b in box.buttons() if b.text().replace("&", "") == button_text).click()
        elif tries[0] < 300:
            tries[0] += 1
            QTimer.singleShot(10, press)
    QTimer.singleShot(0, press)


def test_the_runs_list_deletes_a_run_after_asking(qtbot, db, workspace: Workspace) -> None:  # noqa: F811
    _run(workspace, "r1")
    _run(workspace, "r2", parent="r1")
    panel = RunsPanel(workspace, db)
    qtbot.addWidget(panel)
    sent = []
    panel.changes_made.connect(sent.append)
    panel.changes_made.connect(lambda _changes: panel.refresh())    # what the Train tab's on_changes does
    panel.refresh()
    settle(db)
    assert panel.run_ids() == ["r2", "r1"] and not panel.delete_button.isEnabled()

    panel.select_runs(["r1"])
    menu = panel.context_menu(QPoint(5, 5))
    assert [a.text() for a in menu.actions()] == ["Open", "Compare", "Resume", "Delete…"]
    assert menu.actions()[3].isEnabled()
    menu.close()
    seen = []
    _answer("Cancel", seen)
    panel.delete_button.click()
    settle(db)
    assert seen == ["Delete run round r1 (r1)?"] and panel.run_ids() == ["r2", "r1"] and sent == []

    _answer("Delete", seen)
    panel.delete_button.click()                      # r2 started from r1: refused, said in the status line
    settle(db)
    assert panel.status_label.text().startswith("Not deleted: run 'r1' cannot be deleted: run r2 started from it")
    assert panel.status_label.property("error") and sent == []

    panel.select_runs(["r2"])
    _answer("Delete", seen)
    panel.delete_button.click()
    settle(db)
    assert [c.runs for c in sent] == [True] and panel.run_ids() == ["r1"]
    assert panel.status_label.text().startswith("Deleted run round r2 (r2)")
    assert not (workspace.runs_dir / "r2").exists()

    panel.select_runs(["r1"])
    panel.set_busy_run("r1")                         # the run training now: nothing to delete
    assert not panel.delete_button.isEnabled()
