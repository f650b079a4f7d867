"""A new, empty workspace opens on the welcome panel: import a file, or fill it with the demo."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from sqlalchemy import func, select

from core.demo.demo_workspace import CANDIDATE_PROMPTS, LABELLED_PAIRS
from gui.common.workers import running_workers
from storage.models import Pair
from storage.settings import read_settings
from tests.annotate_samples import add_sample_pairs
from tests.gui_db import settle
from tests.qt_settings import isolated_settings  # noqa: F401  (fixture)
from tests.test_main_window import open_window

pytestmark = pytest.mark.usefixtures("isolated_settings")


def _others_running() -> bool:
    return any(t.objectName() != "database" for t in running_workers())


def test_an_empty_workspace_opens_on_the_welcome_panel(qtbot, workspace):
    window = open_window(qtbot, workspace, "ada")
    view = window.annotate
    assert view.content.currentWidget() is view.welcome
    assert not view.verdicts.isVisible() and not view.note.isVisible()
    # Team servers are here: the slot is live (tests/test_connect_dialog.py opens the dialog from it).
    assert view.welcome.team_option.isEnabled() and "coming" not in [
        label.text() for label in view.welcome.team_option.findChildren(type(view.welcome.team_option.title))]
    assert "800 labelled pairs" in view.welcome.demo_option.text.text()
    assert "minute" in view.welcome.demo_option.text.text()  # says how long training takes
    qtbot.keyClick(view, Qt.Key.Key_1)   # nothing to judge
    settle(window.db)
    assert view.current is None


def test_a_workspace_with_pairs_all_judged_shows_the_done_page_not_the_welcome(qtbot, workspace):
    add_sample_pairs(workspace, 1)
    window = open_window(qtbot, workspace, "ada")
    qtbot.keyClick(window.annotate, Qt.Key.Key_1)
    settle(window.db)
    assert window.annotate.content.currentWidget() is window.annotate.empty


def test_import_on_the_welcome_panel_opens_the_import_dialog(qtbot, workspace):
    from gui.data.import_dialog import ImportDialog

    window = open_window(qtbot, workspace, "ada")
    qtbot.mouseClick(window.annotate.welcome.import_option.button, Qt.MouseButton.LeftButton)
    dialogs = [d for d in window.findChildren(ImportDialog) if d.isVisible()]
    assert len(dialogs) == 1
    dialogs[0].reject()


@pytest.mark.slow   # fills a workspace with the demo
def test_the_demo_fills_this_workspace_off_the_ui_thread_and_the_queue_appears(qtbot, workspace):
    window = open_window(qtbot, workspace, "ada")
    welcome = window.annotate.welcome
    qtbot.mouseClick(welcome.demo_option.button, Qt.MouseButton.LeftButton)
    assert welcome.creating and welcome.demo_progress.isVisible()
    assert not welcome.demo_option.button.isEnabled()
    qtbot.waitUntil(lambda: not welcome.creating, timeout=60_000)
    qtbot.waitUntil(lambda: not _others_running(), timeout=10_000)
    settle(window.db)
    with workspace.session() as s:
        assert s.scalar(select(func.count()).select_from(Pair)) == LABELLED_PAIRS + 3 * CANDIDATE_PROMPTS
    assert read_settings(workspace).demo is not None
    view = window.annotate
    assert view.current is not None and view.content.currentWidget() is view.display
    assert view.counts.remaining == 3 * CANDIDATE_PROMPTS
    assert view.verdicts.isVisible()
