"""Labelling through an outage of the team server (issue 11's done-when): a scripted session of
100 verdicts on PostgreSQL, the server stopped (``pg_ctl stop -m immediate``) after 30 and
started again after 60, ends with exactly 100 verdicts in the database — none lost, none
doubled — and while it is stopped the window says "offline — N verdicts waiting" (the Annotate
header, the banner and the status bar); the outbox drains by itself. And a sitting closed while
offline leaves its verdicts in the outbox file, stored first when the workspace opens again.

The server is the test's own (tests/private_pg.py): stopping the shared one would break the
other tests.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from sqlalchemy import func, select

from core.operations.outbox import outbox_folder
from core.operations.outbox_file import read_entries
from gui.main_window import MainWindow
from storage.models import Verdict
from storage.workspace import Workspace
from tests.annotate_samples import add_sample_pairs
from tests.private_pg import private_server  # noqa: F401  (fixture)
from tests.qt_settings import isolated_settings  # noqa: F401  (fixture)

pytestmark = [pytest.mark.usefixtures("isolated_settings"), pytest.mark.slow]   # a private server, stopped and started
KEYS = (Qt.Key.Key_1, Qt.Key.Key_2, Qt.Key.Key_T, Qt.Key.Key_B)


@pytest.fixture
def local_data(tmp_path, monkeypatch):
    """This computer's data folder (the outbox file's home) under tmp_path."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("DPO_STUDIO_RUNS_DIR", str(tmp_path / "runs"))
    return tmp_path / "data"


def open_window(qtbot, ws) -> MainWindow:
    window = MainWindow(ws, "ada")
    qtbot.addWidget(window)
    window.resize(1300, 820)
    with qtbot.waitActive(window):
        window.show()
        window.activateWindow()
    window.annotate.setFocus()
    qtbot.waitUntil(lambda: window.annotate.current is not None, timeout=20_000)
    return window


def judge(qtbot, window, n: int) -> None:
    view = window.annotate
    qtbot.waitUntil(lambda: view.current is not None, timeout=20_000)
    qtbot.keyClick(view, KEYS[n % len(KEYS)])


def label_online(qtbot, window, count: int) -> None:
    """``count`` verdicts, stored, with the screen's reserve of pairs ahead full again (an
    annotator's think time lets it top up; a script has none)."""
    view = window.annotate
    for n in range(count):
        judge(qtbot, window, n)
    qtbot.waitUntil(lambda: view.unsaved == [] and len(view.session.ahead) == view.session.prefetch,
                    timeout=20_000)


def verdict_rows(url: str) -> tuple[int, int, int]:
    """(verdict rows, distinct client ids, distinct pairs) in the database."""
    with Workspace.open(url) as ws, ws.session() as s:
        return (s.scalar(select(func.count()).select_from(Verdict)),
                s.scalar(select(func.count(func.distinct(Verdict.client_id)))),
                s.scalar(select(func.count(func.distinct(Verdict.pair_id)))))


def test_a_hundred_verdicts_through_an_outage_are_stored_once_each(qtbot, private_server, local_data, tmp_path):
    url = private_server.create_database("outage_hundred")
    ws = Workspace.open(url)
    add_sample_pairs(ws, 130)
    window = open_window(qtbot, ws)
    view = window.annotate
    label_online(qtbot, window, 30)
    assert verdict_rows(url) == (30, 30, 30)
    assert window.connection_label.text() == "connected"

    private_server.stop_now()
    for n in range(30, 60):
        judge(qtbot, window, n)   # the pairs already reserved and prefetched keep coming
    qtbot.waitUntil(lambda: view.sender.offline, timeout=20_000)
    state = view.connection
    assert not state.online and state.waiting == 30
    assert view.header.connection.isVisible() and view.header.connection.text() == "offline — 30 verdicts waiting"
    assert window.connection_label.text() == "offline — 30 verdicts waiting"
    assert "Offline — the team server cannot be reached" in view.banner.message
    assert "30 verdicts kept on this computer" in view.banner.message
    assert window.team.now.connection.text().startswith("Offline")
    window.grab().save(str(tmp_path / "offline-window.png"))
    view.header.grab().save(str(tmp_path / "offline-header.png"))
    kept, problems = read_entries(view.sender.outbox.path)   # on disk, fsync'd, one line per write
    assert len(kept) == 30 and not problems
    assert view.sender.outbox.path.parent == outbox_folder(ws)

    private_server.start_again()
    for n in range(60, 100):
        judge(qtbot, window, n)
    qtbot.waitUntil(lambda: not view.sender.offline and view.unsaved == [], timeout=60_000)
    assert not view.sender.outbox.path.exists()   # drained: the file goes
    assert verdict_rows(url) == (100, 100, 100)
    assert window.connection_label.text() == "connected"
    assert not view.header.connection.isVisible() and not view.banner.isVisible()
    window.close()
    ws.close()


def test_verdicts_kept_when_the_window_closes_offline_are_stored_first_at_the_next_start(
        qtbot, private_server, local_data):
    url = private_server.create_database("outage_restart")
    ws = Workspace.open(url)
    add_sample_pairs(ws, 60)
    window = open_window(qtbot, ws)
    view = window.annotate
    label_online(qtbot, window, 5)
    private_server.stop_now()
    for n in range(5, 12):
        judge(qtbot, window, n)
    qtbot.waitUntil(lambda: view.sender.offline and view.connection.waiting == 7, timeout=20_000)
    path = view.sender.outbox.path
    window.close()   # offline: no question asked, the verdicts are in the outbox file
    assert not window.isVisible()
    ws.close()
    assert len(read_entries(path)[0]) == 7

    private_server.start_again()
    ws = Workspace.open(url)
    again = open_window(qtbot, ws)
    qtbot.waitUntil(lambda: not path.exists(), timeout=20_000)
    assert verdict_rows(url) == (12, 12, 12)
    again.close()
    ws.close()
