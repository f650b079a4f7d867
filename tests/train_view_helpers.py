"""Shared set-up for the training-view tests: a view on a workspace (with its database worker),
a tiny model in the form, and a teardown that stops any run and waits for its thread."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tiny_models import fill_workspace, make_tiny_model_dir

FAST_SETTINGS = {"batch_size": 4, "learning_rate": "0.002", "eval_interval": 5, "checkpoint_interval": 10,
                 "max_length": 128}


def configure(view, model_dir: Path, **values) -> None:
    """Type the tiny model and small-run settings into the form."""
    view.form.set_value("base_model", str(model_dir))
    for key, value in {**FAST_SETTINGS, **values}.items():
        view.form.set_value(key, value)


@pytest.fixture
def tiny_model(tmp_path) -> Path:
    return make_tiny_model_dir(tmp_path / "tiny-model")


@pytest.fixture
def pairs_workspace(workspace):
    fill_workspace(workspace, 24)
    return workspace


@pytest.fixture
def make_train_view(qtbot):
    """``make_train_view(ws, **options)`` -> a shown TrainView on its own DatabaseWorker (``view.db``); any
    run it started is stopped at the end, its timers stopped and the database worker closed."""
    from gui.common.db_worker import DatabaseWorker
    from gui.common.workers import wait_for_all_workers
    from gui.train.train_view import TrainView

    views = []

    def make(ws, **options):
        db = DatabaseWorker()
        view = TrainView(ws, db, **options)
        qtbot.addWidget(view)
        view.resize(1280, 820)
        view.show()
        views.append(view)
        return view

    yield make
    for view in views:
        if view.is_running():
            view.stop_and_wait(60_000)
    for view in views:
        view.stop_timers()
        view.db.close()     # after the jobs already queued; its thread counts among the workers
    assert wait_for_all_workers(60_000)
    qtbot.wait(50)   # deliver the queued thread-finished signals before the widgets go


def settle(qtbot, view, timeout_ms: int = 90_000) -> None:
    """Wait until no run is going and every database job the view asked for has come back."""
    qtbot.waitUntil(lambda: not view.is_running(), timeout=timeout_ms)
    assert view.db.wait_idle(30_000)
