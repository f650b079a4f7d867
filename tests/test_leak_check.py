"""The suite's leak check (tests/conftest.py, tests/qt_leaks.py): a test that leaves a QTimer,
a pending single shot or a worker thread running fails itself, naming the object and where
it was created, and the next test is not touched by it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from PySide6.QtCore import QObject, QTimer

from tests import qt_leaks

ROOT = Path(__file__).resolve().parents[1]


def test_a_running_timer_is_named_with_where_it_was_created_and_stopped(qtbot):
    since = qt_leaks.current_sequence()
    owner = QObject()
    owner.setObjectName("plot-owner")
    timer = QTimer(owner)
    timer.setObjectName("panner")
    timer.start(1_000)
    stopped = QTimer()
    stopped.start(1_000)
    stopped.stop()

    problems = qt_leaks.leaks_at_teardown(since)

    assert len(problems) == 1, problems
    assert "QTimer 'panner' every 1000 ms, parent QObject 'plot-owner'" in problems[0]
    assert "tests/test_leak_check.py:" in problems[0] and "in test_a_running_timer" in problems[0]
    assert not timer.isActive()        # stopped, so that it cannot fire into the next test
    assert qt_leaks.leaks_at_teardown(since) == []


def test_a_pending_single_shot_is_named_and_never_fires(qtbot):
    since = qt_leaks.current_sequence()
    fired = []
    QTimer.singleShot(50, lambda: fired.append("late"))
    context = QObject()
    QTimer.singleShot(50, context, lambda: fired.append("with context"))
    context.deleteLater()       # Qt drops a shot whose context object is deleted: no leak

    problems = qt_leaks.leaks_at_teardown(since)

    assert len(problems) == 1 and "QTimer.singleShot(50 ms, ...) not fired yet" in problems[0], problems
    assert "tests/test_leak_check.py:" in problems[0]
    qtbot.wait(200)
    assert fired == []


def test_a_single_shot_that_fired_is_no_leak(qtbot):
    since = qt_leaks.current_sequence()
    fired = []
    QTimer.singleShot(0, lambda: fired.append(1))
    qtbot.waitUntil(lambda: fired == [1], timeout=5_000)
    assert qt_leaks.leaks_at_teardown(since) == []


LEAKY_TESTS = '''
from PySide6.QtCore import QTimer

def test_leaks_a_timer(qtbot):
    timer = QTimer()
    timer.setObjectName("panner")
    timer.timeout.connect(lambda: None)
    timer.start(20)
    test_leaks_a_timer.kept = timer      # still alive after the test

def test_runs_after_the_leak(qtbot):
    qtbot.wait(200)

def test_leaves_a_database_worker_open(qtbot):
    from gui.common.db_worker import DatabaseWorker
    test_leaves_a_database_worker_open.kept = DatabaseWorker()

def test_cleans_up(qtbot):
    timer = QTimer()
    timer.start(20)
    timer.stop()
'''


def test_the_suite_fails_the_leaking_test_and_only_that_one(tmp_path):
    (tmp_path / "conftest.py").write_text("from tests.conftest import _no_timer_or_thread_left_running  # noqa: F401\n")
    (tmp_path / "test_leaky.py").write_text(textwrap.dedent(LEAKY_TESTS))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rE", str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert "4 passed, 2 errors" in out, out
    assert "ERROR test_leaky.py::test_leaks_a_timer" in out
    assert "ERROR test_leaky.py::test_leaves_a_database_worker_open" in out
    assert f"QTimer 'panner' every 20 ms, no parent, created at {tmp_path / 'test_leaky.py'}:5 in test_leaks_a_timer" in out
    assert "QThread 'database' (a DatabaseWorker never closed: call its close()), started at " \
           "gui/common/db_worker.py:" in out and "in test_leaves_a_database_worker_open" in out
