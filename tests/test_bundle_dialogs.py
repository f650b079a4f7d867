"""File ▸ Export my verdicts as a bundle… / Merge a bundle…: the same operations as
``main.py bundle``, on a worker thread, no SQL on the UI thread; the merge reports its Changes."""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import event

from core.operations.bundles import export_bundle
from gui.common.workers import running_workers
from gui.data.bundle_dialogs import ExportBundleDialog, MergeBundleDialog
from storage.workspace import Workspace
from tests.qt_settings import isolated_settings  # noqa: F401  (fixture)
from tests.test_bundles import candidates_file, current_by_content, dump, label, new_ws, ways

pytestmark = pytest.mark.usefixtures("isolated_settings")
SHOTS = Path(os.environ.get("BUNDLE_SCREENSHOTS", "/tmp"))


class UiSqlWatch:
    """Records statements run on the UI (main) thread of the watched workspaces, except inside
    ``test_checks()`` (the test's own look at the database, not the dialog's)."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self._paused = False

    def __call__(self, ws: Workspace) -> Workspace:
        event.listen(ws.engine, "before_cursor_execute", self._on_statement)
        return ws

    def _on_statement(self, conn, cursor, statement, *args) -> None:
        if threading.current_thread() is threading.main_thread() and not self._paused:
            self.seen.append(statement.split("\n")[0][:100])

    @contextmanager
    def test_checks(self):
        self._paused = True
        try:
            yield
        finally:
            self._paused = False


@pytest.fixture
def no_ui_sql():
    """Fails the test if the dialogs run a statement on the UI thread."""
    watch = UiSqlWatch()
    yield watch
    assert not watch.seen, f"SQL on the UI thread: {watch.seen}"


@pytest.fixture
def team(tmp_path: Path):
    shared = candidates_file(tmp_path / "pairs.jsonl")
    owner, copy = new_ws(tmp_path / "owner", shared), new_ws(tmp_path / "copy", shared)
    label(copy, "alice", *ways(0, "first", "second"), "first", "clear")
    label(copy, "alice", *ways(1, "first", "third"), "tie")
    label(owner, "bob", *ways(0, "first", "second"), "second")
    yield owner, copy
    owner.close()
    copy.close()


def workers_done() -> bool:
    """No worker left but a main window's database thread."""
    return not [t for t in running_workers() if t.objectName() != "database"]


def finish(qtbot, signal, start):
    with qtbot.waitSignal(signal, timeout=30_000) as blocker:
        start()
    qtbot.waitUntil(workers_done, timeout=5_000)
    return blocker.args[0]


def test_merge_dialog_merges_reports_changes_and_refuses_a_bad_file(qtbot, team, tmp_path, no_ui_sql) -> None:
    owner, copy = team
    bundle = tmp_path / "alice.dpobundle"
    export_bundle(copy, "alice", bundle)
    dialog = MergeBundleDialog(no_ui_sql(owner))
    qtbot.addWidget(dialog)
    dialog.show()
    changes = []
    dialog.changes_made.connect(changes.append)

    outcome = finish(qtbot, dialog.merge_ended, lambda: dialog.start_merge(str(bundle)))
    assert outcome.ok and outcome.report.verdicts_added == 2
    assert "Merged the bundle of alice: 2 verdicts added, 0 already present" in dialog.status.text()
    assert len(changes) == 1 and changes[0].verdicts and changes[0].annotators and len(changes[0].pair_ids) == 2
    assert not dialog.error_box.isVisible() and dialog.action_button.isEnabled() and not dialog.running
    with no_ui_sql.test_checks():
        assert {name for name, _ in current_by_content(owner)} == {"alice", "bob"}
        before = dump(owner)
    dialog.grab().save(str(SHOTS / "bundle_merge_dialog.png"))

    again = finish(qtbot, dialog.merge_ended, lambda: dialog.start_merge())
    assert again.ok and again.report.verdicts_added == 0 and again.report.already_present == 2
    assert len(changes) == 1, "a merge that changed nothing reports no changes"

    refused = finish(qtbot, dialog.merge_ended, lambda: dialog.start_merge(str(tmp_path / "pairs.jsonl")))
    assert not refused.ok and dialog.error_box.isVisible()
    assert "not a DPO Studio bundle" in dialog.error_text.text()
    with no_ui_sql.test_checks():
        assert dump(owner) == before
    assert len(changes) == 1
    dialog.grab().save(str(SHOTS / "bundle_merge_refused.png"))


def test_export_dialog_lists_people_and_writes_the_bundle(qtbot, team, tmp_path, no_ui_sql) -> None:
    owner, copy = team
    copy = no_ui_sql(copy)
    dialog = ExportBundleDialog(copy, "alice", str(tmp_path))
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.names_loaded, timeout=10_000)
    qtbot.waitUntil(workers_done, timeout=5_000)
    assert [dialog.annotator.itemText(i) for i in range(dialog.annotator.count())] == ["alice"]
    assert dialog.path.text() == str(tmp_path / "alice.dpobundle")
    dialog.grab().save(str(SHOTS / "bundle_export_dialog.png"))
    outcome = finish(qtbot, dialog.export_ended, lambda: dialog.start_export())
    assert outcome.ok and outcome.report.verdicts == 2 and (tmp_path / "alice.dpobundle").is_file()
    assert "Wrote 2 verdicts of alice on 2 pairs" in dialog.status.text()

    missing = finish(qtbot, dialog.export_ended,
                     lambda: dialog.start_export(str(tmp_path / "nowhere" / "x.dpobundle")))
    assert not missing.ok and "no such folder" in dialog.status.text()


def test_file_menu_merges_a_bundle_and_the_window_forwards_its_changes(qtbot, team, tmp_path) -> None:
    from gui.main_window import MainWindow
    from tests.gui_db import settle

    owner, copy = team
    export_bundle(copy, "alice", tmp_path / "alice.dpobundle")
    window = MainWindow(owner, "bob")
    qtbot.addWidget(window)
    window.show()
    settle(window.db)
    received = []

    class Recorder:
        def on_changes(self, changes) -> None:
            received.append(changes)

    window.views.append(Recorder())
    file_menu = window.menuBar().actions()[0].menu()
    texts = [a.text() for a in file_menu.actions()]
    assert "Export my verdicts as a &bundle…" in texts and "&Merge a bundle…" in texts
    next(a for a in file_menu.actions() if a.text() == "&Merge a bundle…").trigger()
    dialog = window.findChild(MergeBundleDialog)
    assert dialog is not None and dialog.isVisible()
    finish(qtbot, dialog.merge_ended, lambda: dialog.start_merge(str(tmp_path / "alice.dpobundle")))
    assert len(received) == 1 and received[0].verdicts and received[0].annotators
    dialog.close()

    next(a for a in file_menu.actions() if a.text() == "Export my verdicts as a &bundle…").trigger()
    export = window.findChild(ExportBundleDialog)
    qtbot.waitUntil(lambda: export.names_loaded, timeout=10_000)
    qtbot.waitUntil(workers_done, timeout=5_000)
    assert export.annotator.currentText() == "bob"   # the window's annotator, preselected
    export.close()
    settle(window.db)
    window.close()
