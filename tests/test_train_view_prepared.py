"""The Train tab keeps a training process prepared for its next run (gui.train.run_preparer):
Start hands the run to it, the run trains in it, and after the run another is prepared; closing
the tab ends the one waiting (real processes, a tiny model)."""

from __future__ import annotations

import os

import pytest
from PySide6.QtCore import Qt

from storage.models import RunStatus
from storage.runs import get_run
from tests.qt_settings import isolated_settings  # noqa: F401  (fixture)
from tests.train_view_helpers import configure, make_train_view, pairs_workspace, settle, tiny_model  # noqa: F401

pytestmark = pytest.mark.usefixtures("isolated_settings")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow   # trains in a prepared process, then prepares the next one
def test_start_trains_in_the_prepared_process_and_the_next_run_gets_a_new_one(qtbot, make_train_view,
                                                                               pairs_workspace, tiny_model):
    view = make_train_view(pairs_workspace, prepare_runs=True)
    assert view.preparer.scheduled                 # a moment after the tab is there, not at once
    view.preparer.prepare_now()
    prepared = view.preparer.prepared
    assert prepared is not None and prepared.wait_ready(120)
    pid = prepared.pid

    configure(view, tiny_model, max_steps=6)
    qtbot.mouseClick(view.start_button, Qt.MouseButton.LeftButton)
    assert view.preparer.prepared is None          # the session has it; its run takes it on its thread
    qtbot.waitUntil(lambda: len(view.series) >= 1, timeout=90_000)
    assert not prepared.available
    assert _alive(pid)                             # the run trains in the prepared process
    settle(qtbot, view)
    assert view.last_status == "completed", view.last_error
    assert get_run(pairs_workspace, view.current_run_id).status == RunStatus.COMPLETED
    qtbot.waitUntil(lambda: not _alive(pid), timeout=30_000)         # it ended with its run
    assert view.preparer.scheduled                 # the next run's process, after the delay
    view.preparer.prepare_now()
    second = view.preparer.prepared
    assert second is not None and second.pid != pid and second.available
    view.stop_timers()                             # the tab closes: the waiting process ends
    assert not second.available
    qtbot.waitUntil(lambda: not _alive(second.pid), timeout=30_000)
