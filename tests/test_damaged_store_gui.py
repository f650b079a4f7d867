"""The app on a damaged, newer or read-only store (tests/damaged_stores.py), offscreen: the
start-up path and File ▸ Open workspace refuse a damaged or newer one in one dialog whose text
is the CLI's line, leaving the folder byte for byte; a read-only one opens under a banner."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QLabel, QMessageBox

from gui.common.read_only_banner import BANNER_NAME
from gui.main_window import MainWindow
from storage.workspace import Workspace, WorkspaceError
from tests.damaged_stores import DAMAGED, NEWER, READ_ONLY, case, fingerprint, labelled_workspace
from tests.gui_db import settle
from tests.qt_settings import isolated_settings  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("isolated_settings")
REPO = Path(__file__).resolve().parents[1]

# Runs the real start-up path (gui.app.run_app) once per workspace; each dialog is answered by a
# timer that records its title and text. Prints one JSON object per workspace.
START_UP = """
import json, sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox
app = QApplication(sys.argv)
from gui.app import run_app
for root in sys.argv[1:]:
    seen = []
    def answer(tries=[0]):
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            seen.append([box.windowTitle(), box.text()])
            box.accept()
        elif tries[0] < 500:
            tries[0] += 1
            QTimer.singleShot(10, answer)
    QTimer.singleShot(0, answer)
    code = run_app(root)
    print(json.dumps({"root": root, "code": code, "dialogs": seen}), flush=True)
"""


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return labelled_workspace(tmp_path_factory.mktemp("gui-damage-template") / "ws")


def _copy(template: Path, folder: Path) -> Path:
    shutil.copytree(template, folder)
    return folder


def _cli_line(root: Path) -> str:
    try:
        Workspace.open(root, create=False).close()
    except WorkspaceError as exc:
        return str(exc)
    raise AssertionError(f"{root} opened")


def test_the_app_refuses_each_damaged_or_newer_store_at_start_up_in_one_dialog(template, tmp_path) -> None:
    names = DAMAGED + (NEWER,)
    roots = {name: _copy(template, tmp_path / name) for name in names}
    for name, root in roots.items():
        with case(name, root):   # damages stay after the block (only read-only ones are undone)
            pass
    before = {name: fingerprint(root) for name, root in roots.items()}
    lines = {name: _cli_line(root) for name, root in roots.items()}
    assert {name: fingerprint(root) for name, root in roots.items()} == before
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    run = subprocess.run([sys.executable, "-c", START_UP, *map(str, roots.values())], capture_output=True,
                         text=True, cwd=REPO, env=env, timeout=300)
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
    results = {Path(r["root"]).name: r for r in map(json.loads, run.stdout.splitlines())}
    for name, root in roots.items():
        assert results[name]["code"] == 2
        assert results[name]["dialogs"] == [["DPO Studio cannot open the workspace", lines[name]]], name
        assert "\n" not in lines[name]
        assert fingerprint(root) == before[name], name


def _answer_next_box(seen: list) -> None:
    """Record and accept the next modal message box (polls the event loop; gives up after 5 s)."""
    tries = [0]

    def answer() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            seen.append((box.windowTitle(), box.text()))
            box.accept()
        elif tries[0] < 500:
            tries[0] += 1
            QTimer.singleShot(10, answer)

    QTimer.singleShot(0, answer)


@pytest.mark.parametrize("name", DAMAGED + (NEWER,))
def test_file_open_workspace_refuses_a_damaged_or_newer_store_in_one_dialog(name, template, tmp_path, qtbot) -> None:
    healthy = _copy(template, tmp_path / "healthy")
    damaged = _copy(template, tmp_path / "damaged")
    with case(name, damaged):
        before = fingerprint(damaged)
        line = _cli_line(damaged)
        ws = Workspace.open(healthy)
        window = MainWindow(ws, "ada")
        qtbot.addWidget(window)
        window.show()
        settle(window.db)
        seen: list = []
        _answer_next_box(seen)
        assert window.open_workspace(str(damaged)) is None
        qtbot.waitUntil(lambda: bool(seen), timeout=5000)
        assert seen == [("Cannot open the workspace", line)]
        assert window.isVisible() and window.workspace is ws     # the window stays on its own workspace
        window.close()
        settle(window.db)
        ws.close()
        assert fingerprint(damaged) == before


@pytest.mark.parametrize("name", READ_ONLY)
def test_a_read_only_store_opens_under_a_banner_and_its_file_is_unchanged(name, template, tmp_path, qtbot) -> None:
    root = _copy(template, tmp_path / "ws")
    with case(name, root):
        before = fingerprint(root)
        ws = Workspace.open(root)
        assert ws.read_only
        window = MainWindow(ws, "ada")
        qtbot.addWidget(window)
        window.resize(1100, 700)
        window.show()
        settle(window.db)
        banner = window.findChild(QLabel, BANNER_NAME)
        assert banner is not None and banner.isVisible()
        assert ws.read_only_reason in banner.text() and "labelling, import and training" in banner.text()
        window.grab().save(str(tmp_path / f"{name}.png"))
        if os.environ.get("DPO_SCREENSHOTS"):
            window.grab().save(os.path.join(os.environ["DPO_SCREENSHOTS"], f"{name}.png"))
        window.close()
        settle(window.db)
        ws.close()
        after = fingerprint(root)
    # Every file that was there is byte for byte the same (beside a read-only file in a writable
    # folder, new ones may appear: SQLite's -shm/-wal, the annotate screen's outbox lock).
    assert {k: after.get(k) for k in before} == before
    if name == "read_only_folder":
        assert after == before


def test_a_writable_store_has_no_banner(template, tmp_path, qtbot) -> None:
    ws = Workspace.open(_copy(template, tmp_path / "ws"))
    window = MainWindow(ws, "ada")
    qtbot.addWidget(window)
    window.show()
    settle(window.db)
    assert window.findChild(QLabel, BANNER_NAME) is None
    window.close()
    settle(window.db)
    ws.close()
