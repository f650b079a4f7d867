"""The labelling screen with its verdicts stored in the background: the next pair at once, a
locked database shown on a banner and retried, undo of verdicts not yet stored, notes that
stay with their pair, and the keys overlay."""

from __future__ import annotations

import sqlite3
import threading

import pytest
from PySide6.QtCore import Qt

import storage.sqlite_store as sqlite_store
import storage.workspace as workspace_module
from storage.models import Choice
from storage.workspace import Workspace
from tests.annotate_samples import add_sample_pairs
from tests.gui_db import db, settle  # noqa: F401  (fixture)
from tests.qt_settings import isolated_settings  # noqa: F401  (fixture)
from tests.test_annotate_view import active_verdicts, make_view

pytestmark = pytest.mark.usefixtures("isolated_settings")
UNDO = (Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)


@pytest.fixture
def impatient_ws(tmp_path, monkeypatch):
    """A workspace whose writes give up after 0.2 s on a lock (instead of 30 s)."""
    monkeypatch.setattr(sqlite_store, "BUSY_TIMEOUT_S", 0.2)   # where the SQLite engine is made
    ws = Workspace.open(tmp_path / "ws")
    add_sample_pairs(ws, 20)
    yield ws
    ws.close()


class WriteLock:
    """Another process's long write transaction on the workspace's database."""

    def __init__(self, ws: Workspace):
        self.connection = sqlite3.connect(ws.root / workspace_module.DB_NAME, isolation_level=None)
        self.connection.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        self.connection.execute("ROLLBACK")
        self.connection.close()


def test_the_next_pair_is_on_screen_before_the_verdict_is_stored(qtbot, db, workspace):
    add_sample_pairs(workspace, 10)
    view = make_view(qtbot, db, workspace)
    gate = threading.Event()
    db.submit(gate.wait, 10)   # the database thread is busy (e.g. a slow network store)
    shown = []
    for key in (Qt.Key.Key_1, Qt.Key.Key_2, Qt.Key.Key_3):
        before = view.current.pair_id
        qtbot.keyClick(view, key)
        assert view.current.pair_id != before   # at once, from the prefetched pairs
        shown.append(before)
    assert active_verdicts(workspace, "ada") == [] and len(view.unsaved) == 3
    gate.set()
    settle(db)
    assert [p for p, _, _ in active_verdicts(workspace, "ada")] == shown
    assert view.unsaved == []


def test_a_locked_database_is_shown_on_the_banner_retried_and_nothing_is_lost(qtbot, db, impatient_ws):
    changes = []
    view = make_view(qtbot, db, impatient_ws)
    view.changes_made.connect(changes.append)
    lock = WriteLock(impatient_ws)
    judged = []
    for key in (Qt.Key.Key_1, Qt.Key.Key_T, Qt.Key.Key_B):
        judged.append(view.current.pair_id)
        qtbot.keyClick(view, key)
        settle(db)
    assert active_verdicts(impatient_ws, "ada") == []
    assert view.banner.isVisible() and view.banner.retry.isVisible()
    assert "3 verdicts not saved yet" in view.banner.message and "locked" in view.banner.message
    assert len(view.unsaved) == 3 and view.pace.done == 3
    # The pairs waiting to be saved are never served again meanwhile.
    for _ in range(4):
        assert view.current.pair_id not in judged
        judged.append(view.current.pair_id)
        qtbot.keyClick(view, Qt.Key.Key_S)
        settle(db)
    assert len(view.unsaved) == 7
    lock.release()
    qtbot.mouseClick(view.banner.retry, Qt.MouseButton.LeftButton)
    settle(db)
    assert [p for p, _, _ in active_verdicts(impatient_ws, "ada")] == judged
    assert [c for _, c, _ in active_verdicts(impatient_ws, "ada")][:3] == [
        Choice.A if not _swapped(impatient_ws, judged[0]) else Choice.B, Choice.TIE, Choice.BOTH_BAD]
    assert view.unsaved == [] and not view.banner.isVisible()
    assert {p for c in changes for p in c.pair_ids} == set(judged) and all(c.verdicts for c in changes)


def _swapped(ws, pair_id):
    from storage.models import Pair

    with ws.session() as s:
        return s.get(Pair, pair_id).display_swapped


def test_a_failed_verdict_is_retried_by_itself(qtbot, db, impatient_ws):
    view = make_view(qtbot, db, impatient_ws)
    lock = WriteLock(impatient_ws)
    first = view.current.pair_id
    qtbot.keyClick(view, Qt.Key.Key_3)
    settle(db)
    assert view.banner.isVisible() and view.sender.seconds_to_retry() is not None
    lock.release()
    qtbot.waitUntil(lambda: active_verdicts(impatient_ws, "ada") == [(first, Choice.TIE, "")], timeout=5000)
    settle(db)
    assert not view.banner.isVisible()


def test_undo_with_verdicts_not_yet_stored(qtbot, db, impatient_ws):
    view = make_view(qtbot, db, impatient_ws)
    first = view.current.pair_id
    qtbot.keyClick(view, Qt.Key.Key_1)
    settle(db)                                  # stored
    lock = WriteLock(impatient_ws)
    second = view.current.pair_id
    qtbot.keyClick(view, Qt.Key.Key_2)
    third = view.current.pair_id
    qtbot.keyClick(view, Qt.Key.Key_3)
    settle(db)                                  # both failed: waiting for a retry
    assert len(view.unsaved) == 2
    qtbot.keyClick(view, *UNDO)                 # not stored: simply never stored
    assert view.current.pair_id == third and len(view.unsaved) == 1
    qtbot.keyClick(view, *UNDO)
    assert view.current.pair_id == second and view.unsaved == []
    qtbot.keyClick(view, *UNDO)                 # stored: a retraction waits in the outbox
    assert view.current.pair_id == first and len(view.unsaved) == 1
    lock.release()
    view.sender.retry_now()
    settle(db)
    assert active_verdicts(impatient_ws, "ada") == [] and view.unsaved == []
    assert view.pace.done == 0


def test_a_note_stays_with_the_pair_it_was_typed_for(qtbot, db, workspace):
    add_sample_pairs(workspace, 10)
    view = make_view(qtbot, db, workspace)
    first = view.current.pair_id
    qtbot.keyClick(view, Qt.Key.Key_1)
    second = view.current.pair_id
    qtbot.keyClick(view, Qt.Key.Key_N)          # N, text, Esc, Ctrl+Z: the old bug
    qtbot.keyClicks(view.note, "typed for the second pair")
    qtbot.keyClick(view.note, Qt.Key.Key_Escape)
    qtbot.keyClick(view, *UNDO)
    assert view.current.pair_id == first and view.note.text() == ""
    qtbot.keyClick(view, Qt.Key.Key_2)          # first judged again, without the note
    assert view.current.pair_id == second and view.note.text() == "typed for the second pair"
    qtbot.keyClick(view, Qt.Key.Key_T)
    settle(db)
    assert [(p, n) for p, _, n in active_verdicts(workspace, "ada")] == [
        (first, ""), (second, "typed for the second pair")]
    qtbot.keyClick(view, *UNDO)                 # undo brings the saved note back into the field
    settle(db)
    assert view.current.pair_id == second and view.note.text() == "typed for the second pair"


def test_verdict_keys_do_not_act_through_the_keys_overlay(qtbot, db, workspace):
    add_sample_pairs(workspace, 10)
    view = make_view(qtbot, db, workspace)
    first = view.current.pair_id
    qtbot.keyClick(view, Qt.Key.Key_Question)
    assert view.help.isVisible()
    for key in ((Qt.Key.Key_1,), (Qt.Key.Key_T,), UNDO):
        qtbot.keyClick(view, *key)              # the first press closes the overlay, records nothing
        assert not view.help.isVisible() and view.current.pair_id == first
        qtbot.keyClick(view, Qt.Key.Key_Question)
    settle(db)
    assert active_verdicts(workspace, "ada") == []
    qtbot.keyClick(view, Qt.Key.Key_Escape)
    qtbot.keyClick(view, Qt.Key.Key_1)
    settle(db)
    assert [p for p, _, _ in active_verdicts(workspace, "ada")] == [first]
