"""The main window: tabs, menus, theme, and a session that survives closing the app."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from sqlalchemy import select

from core.operations.changes import Changes
from gui.common import theme
from gui.main_window import MainWindow
from gui.common.workers import running_workers
from storage.models import Annotator, Choice, Verdict
from storage.settings import read_settings
from storage.workspace import Workspace
from tests.annotate_samples import add_sample_pairs
from tests.gui_db import settle
from tests.qt_settings import isolated_settings  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("isolated_settings")


def open_window(qtbot, ws, annotator=None) -> MainWindow:
    window = MainWindow(ws, annotator)
    qtbot.addWidget(window)
    with qtbot.waitActive(window):
        window.show()
        window.activateWindow()
    window.annotate.setFocus()
    settle(window.db)   # the labelling session is open, its first pairs fetched
    return window


def press(qtbot, window, k, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    """A key on the Annotate tab, then its verdict stored (the database thread goes idle)."""
    qtbot.keyClick(window.annotate, k, modifier)
    settle(window.db)


def verdicts_of(ws, name):
    with ws.session() as s:
        return [tuple(r) for r in s.execute(
            select(Verdict.pair_id, Verdict.choice).join(Annotator, Annotator.id == Verdict.annotator_id)
            .where(Annotator.name == name, Verdict.retracted_at.is_(None)).order_by(Verdict.id)).all()]


def _import_running() -> bool:
    """A worker other than the window's database thread is running."""
    return any(t.objectName() != "database" for t in running_workers())


def test_closing_mid_session_loses_nothing_and_reopening_resumes(qtbot, workspace):
    add_sample_pairs(workspace, 30)
    root = workspace.root
    window = open_window(qtbot, workspace, "ada")
    judged = []
    for key in (Qt.Key.Key_1, Qt.Key.Key_2, Qt.Key.Key_T, Qt.Key.Key_B, Qt.Key.Key_S, Qt.Key.Key_1):
        judged.append(window.annotate.current.pair_id)
        qtbot.keyClick(window.annotate, key)   # not waited for: closing must store them
    on_screen = window.annotate.current.pair_id
    assert window.close()  # a real close event, mid-session
    workspace.close()

    # A new process would open the workspace again: same folder, nothing passed but the location.
    reopened = Workspace.open(root)
    try:
        again = open_window(qtbot, reopened)  # the annotator is remembered on this computer
        assert again.annotate.annotator_name == "ada"
        assert [p for p, _ in verdicts_of(reopened, "ada")] == judged
        assert [c for _, c in verdicts_of(reopened, "ada")][2:5] == [Choice.TIE, Choice.BOTH_BAD, Choice.SKIP]
        assert again.annotate.current.pair_id == on_screen  # resumes at the next unjudged pair
        press(qtbot, again, Qt.Key.Key_3)
        assert verdicts_of(reopened, "ada")[-1] == (on_screen, Choice.TIE)
        again.close()
    finally:
        reopened.close()


def test_tabs_menus_and_lazy_train_tab(qtbot, workspace):
    window = open_window(qtbot, workspace, "ada")
    assert [window.tabs.tabText(i) for i in range(window.tabs.count())] == ["Annotate", "Pairs", "Team", "Train", "Rounds", "Chat",
                                                                           "Blind A/B", "Evaluate", "Learn"]
    menus = [a.text().replace("&", "") for a in window.menuBar().actions()]
    assert menus == ["File", "View", "Help"]
    file_items = [a.text().replace("&", "") for a in window.menuBar().actions()[0].menu().actions() if a.text()]
    assert file_items == ["Open workspace…", "Connect to team server…", "Import…", "Export training data…", "Generate candidates…",
                          "Export my verdicts as a bundle…",
                          "Merge a bundle…", "Quit"]
    assert window.train_view is None  # not built (nor the engine imported) until shown
    window.tabs.setCurrentWidget(window.train_page)
    assert window.train_view is not None and window.train_page.layout().count() == 1
    qtbot.waitUntil(lambda: not _import_running(), timeout=30_000)  # whatever the Train tab started on show
    assert window.annotator_label.text() == "Annotator: ada"
    for page in window.loop_pages:   # each loop tab is built at its first opening, not before
        assert page.view is None
        window.tabs.setCurrentWidget(page)
        assert page.layout().count() == 1
    qtbot.waitUntil(lambda: window.train_view.is_built, timeout=30_000)  # built in stages
    qtbot.waitUntil(lambda: not _import_running(), timeout=60_000)


def test_theme_switch_is_applied_and_remembered(qtbot, workspace):
    window = open_window(qtbot, workspace, "ada")
    window.set_theme("dark")
    app = QApplication.instance()
    assert app.palette().window().color().name() == theme.DARK["window"]
    assert theme.DARK["card"] in app.styleSheet()
    window.close()
    second = open_window(qtbot, workspace, "ada")
    assert second.theme_name == "dark" and second.theme_actions["dark"].isChecked()
    second.set_theme("light")
    assert app.palette().window().color().name() == theme.LIGHT["window"]


def test_ctrl_f_opens_the_pair_search(qtbot, workspace):
    add_sample_pairs(workspace, 5)
    window = open_window(qtbot, workspace, "ada")
    qtbot.keyClick(window.annotate, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentWidget() is window.pairs
    assert window.pairs.search.hasFocus()
    qtbot.keyClicks(window.pairs.search, "Question 3")
    qtbot.waitUntil(lambda: window.pairs.model.total == 1, timeout=3000)


def test_browser_edit_is_a_new_verdict_and_history_is_kept(qtbot, workspace):
    ids = add_sample_pairs(workspace, 5)
    window = open_window(qtbot, workspace, "ada")
    press(qtbot, window, Qt.Key.Key_1)
    window.tabs.setCurrentWidget(window.pairs)
    window.pairs.status.setCurrentIndex(window.pairs.status.findData("mine"))
    settle(window.db)
    assert window.pairs.model.total == 1 and window.pairs.model.rows[0].pair_id == ids[0]
    dialog = window.pairs.open_pair(ids[0])
    qtbot.addWidget(dialog)
    settle(window.db)   # the pair and its history read
    dialog.note.setText("second thoughts")
    qtbot.mouseClick(dialog.mine.buttons["tie"], Qt.MouseButton.LeftButton)
    settle(window.db)
    with workspace.session() as s:
        rows = s.execute(select(Verdict.choice, Verdict.note).where(Verdict.pair_id == ids[0])
                         .order_by(Verdict.id)).all()
    assert [r[0] for r in rows] == [Choice.A if not dialog.view.swapped else Choice.B, Choice.TIE]
    assert rows[1][1] == "second thoughts"
    assert dialog.history.count() == 2 and "[replaced]" in dialog.history.item(0).text()
    window.pairs.status.setCurrentIndex(window.pairs.status.findData("tie"))
    settle(window.db)
    assert [r.pair_id for r in window.pairs.model.rows] == [ids[0]]


def test_team_panel_overlap_and_resolving_a_dispute(qtbot, workspace):
    ids = add_sample_pairs(workspace, 4)
    window = open_window(qtbot, workspace, "ada")
    window.tabs.setCurrentWidget(window.team)
    window.team.overlap.setValue(2)
    settle(window.db)
    assert read_settings(workspace).overlap == 2 and window.annotate.session.overlap == 2
    window.tabs.setCurrentWidget(window.annotate)
    first = window.annotate.current
    press(qtbot, window, Qt.Key.Key_1)
    from storage.annotation_queue import AnnotationQueue, choice_for_side
    AnnotationQueue(workspace, "bob").record(first.pair_id, choice_for_side("right", first.swapped))
    # Bob labels elsewhere; what a team store will announce, the test announces itself.
    window.forward_changes(Changes(verdicts=True, annotators=True, pair_ids=frozenset({first.pair_id})))

    window.tabs.setCurrentWidget(window.team)
    settle(window.db)
    assert window.team.disputes.rowCount() == 1
    assert window.team.stats["pairs"].text() == "1" and window.team.stats["percent"].text() == "0%"
    dialog = window.team.open_dispute(0)
    qtbot.addWidget(dialog)
    settle(window.db)   # the pair and the owner setting read
    qtbot.mouseClick(dialog.resolver.buttons["right"], Qt.MouseButton.LeftButton)
    settle(window.db)
    with workspace.session() as s:
        resolution = s.scalars(select(Verdict).where(Verdict.is_resolution.is_(True))).one()
    assert resolution.pair_id == first.pair_id
    assert resolution.choice == choice_for_side("right", first.swapped)
    # Settled: listed as resolved, or gone when the owner was one of the disagreeing annotators
    # (their own current verdict is now the resolution).
    table = window.team.disputes
    assert all(table.item(r, 2).text() != "open" for r in range(table.rowCount()))
    assert len(ids) == 4


def test_import_from_the_file_menu_fills_an_empty_queue(qtbot, workspace, tmp_path):
    window = open_window(qtbot, workspace, "ada")
    assert window.annotate.current is None
    path = tmp_path / "cands.jsonl"
    path.write_text(json.dumps({"prompt": "Which?", "responses": ["one", "two"]}) + "\n", encoding="utf-8")
    dialog = window.open_import(str(path))
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.import_ended, timeout=30_000):
        dialog.start_import()
    qtbot.waitUntil(lambda: not _import_running(), timeout=5_000)
    settle(window.db)
    assert window.annotate.current is not None and window.annotate.current.prompt_text == "Which?"


def test_export_from_the_file_menu_writes_trl_jsonl(qtbot, workspace, tmp_path):
    add_sample_pairs(workspace, 3)
    window = open_window(qtbot, workspace, "ada")
    for _ in range(3):
        press(qtbot, window, Qt.Key.Key_1)
    dialog = window.open_export()
    qtbot.addWidget(dialog)
    out = tmp_path / "out.jsonl"
    with qtbot.waitSignal(dialog.export_ended, timeout=30_000) as blocker:
        dialog.start_export(str(out))
    qtbot.waitUntil(lambda: not _import_running(), timeout=5_000)
    assert blocker.args[0].written == 3
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 3 and {"prompt", "chosen", "rejected"} <= set(rows[0])


def test_closing_during_an_import_waits_for_it_to_finish_whole(qtbot, workspace, tmp_path):
    path = tmp_path / "big.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"Q{i}", "chosen": f"c{i}", "rejected": f"r{i}"}) + "\n"
                            for i in range(5000)), encoding="utf-8")
    window = open_window(qtbot, workspace, "ada")
    dialog = window.open_import(str(path))
    qtbot.addWidget(dialog)
    dialog.start_import()
    assert _import_running()
    assert window.close()
    assert not running_workers()   # the import finished whole, and the database thread ended
    from storage.models import Pair
    from sqlalchemy import func
    with workspace.session() as s:
        assert s.scalar(select(func.count()).select_from(Pair)) == 5000  # all of it, not half
