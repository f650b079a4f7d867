"""The Evaluate screen (gui.evaluate.evaluate_view) under pytest-qt: cached results drawn at
opening, one point per checkpoint per run, and a real evaluation on a Worker."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest
from PySide6.QtCore import Qt

from core.engine.run_records import create_run
from core.engine.training_config import TrainingConfig
from core.operations.evaluate import CACHE_VERSION, EVALUATION_FILE, CheckpointEval
from gui.evaluate.evaluate_view import EvaluateView
from tests.gui_db import db, settle  # noqa: F401  (fixture)
from tests.qt_settings import isolated_settings  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("isolated_settings")


def _row(label: str, step: int, kl: float, margin: float, helpful: float | None) -> CheckpointEval:
    return CheckpointEval(label, step, 40, 0.0 if step == 0 else 0.5 + step / 400, margin, margin / 2, -margin / 2,
                          0.69 - margin / 10, kl, 0.1 * kl, 64, kl / 30, helpful)


def _cached_run(ws, tmp_path, run_id: str, beta: float, rows: list[CheckpointEval]) -> None:
    """A run row and an evaluation.json in its folder, as ``core.operations.evaluate`` writes them."""
    folder = tmp_path / run_id
    create_run(ws, run_id, TrainingConfig(base_model="bundled:demo_model", beta=beta, run_name=f"beta-{beta}"),
               folder, total_steps=60)
    folder.mkdir(parents=True)
    entries = {row.label: {"key": "test", "row": asdict(row)} for row in rows}
    (folder / EVALUATION_FILE).write_text(json.dumps({"version": CACHE_VERSION, "rows": entries}))


def _view(qtbot, db, workspace) -> EvaluateView:
    view = EvaluateView(workspace, db, "ann")
    db.views.append(view)
    qtbot.addWidget(view)
    view.resize(1300, 820)
    settle(db)
    return view


def test_cached_runs_are_drawn_at_opening_one_point_per_checkpoint(qtbot, db, workspace, tmp_path):
    _cached_run(workspace, tmp_path, "run-a", 1.0, [_row("base", 0, 0.0, 0.0, 0.35), _row("step-20", 20, 1.2, 2.0, 0.5),
                                                    _row("step-40", 40, 2.1, 3.1, 0.62), _row("final", 60, 2.6, 3.5, 0.7)])
    _cached_run(workspace, tmp_path, "run-b", 0.2, [_row("base", 0, 0.0, 0.0, 0.35), _row("final", 60, 6.0, 1.1, 0.8)])
    view = _view(qtbot, db, workspace)

    assert view.checked_run_ids() == ["run-a", "run-b"]          # the evaluated runs are ticked
    assert view.metric_box.currentData() == "helpful"            # the demo's reward, when measured
    assert view.plot.points == {"run-a": [(0.0, 35.0), (1.2, 50.0), (2.1, 62.0), (2.6, 70.0)],
                                "run-b": [(0.0, 35.0), (6.0, 80.0)]}
    assert view.table.rowCount() == 6
    assert view.table.item(1, 0).text() == "●  beta-1.0" and view.table.item(1, 1).text() == "step-20"
    assert view.table.item(1, 5).text() == "1.200 ± 0.120" and view.table.item(1, 6).text() == "50%"
    assert view.table.item(0, 4).text() == "0.00" and view.table.item(1, 4).text() == "+2.00"

    view.metric_box.setCurrentIndex(view.metric_box.findData("margin"))
    assert [y for _, y in view.plot.points["run-a"]] == [0.0, 2.0, 3.1, 3.5]
    view.run_list.item(1).setCheckState(Qt.CheckState.Unchecked)
    assert list(view.plot.points) == ["run-a"] and view.table.rowCount() == 4


def test_no_runs_says_what_to_do(qtbot, db, workspace):
    view = _view(qtbot, db, workspace)
    assert view.run_list.count() == 0 and not view.evaluate_button.isEnabled()
    assert "Train" in view.progress_text.text()
    assert view.plot.points == {}


@pytest.mark.slow
def test_evaluate_measures_a_real_run_on_a_worker(qtbot, db, workspace, tmp_path):
    from core.engine.trainer import train
    from tests.tiny_models import fill_workspace, make_tiny_model_dir

    fill_workspace(workspace, 32)
    model_dir = make_tiny_model_dir(tmp_path / "model")
    run_id = train(workspace, TrainingConfig(base_model=str(model_dir), max_steps=8, batch_size=8,
                                             learning_rate=5e-3, eval_split="0.25", eval_interval=4,
                                             checkpoint_interval=4, keep_checkpoints=0, seed=1, run_name="tiny"))
    view = _view(qtbot, db, workspace)
    assert view.checked_run_ids() == [run_id]
    view.prompts.setValue(4)
    view.samples.setValue(1)
    view.max_tokens.setValue(8)
    events = []
    view.start()
    view.worker.progress.connect(events.append)
    assert view.cancel_button.isEnabled() and not view.evaluate_button.isEnabled()
    qtbot.waitUntil(lambda: view.worker is None, timeout=240_000)
    assert "3 checkpoints measured" in view.progress_text.text(), view.progress_text.text()
    assert events and {e.checkpoint for e in events} <= {"base", "step-4", "final"}
    assert view.metric_box.currentData() == "margin"              # no helpful share outside the demo
    assert len(view.plot.points[run_id]) == 3 and view.table.rowCount() == 3
    assert view.plot.points[run_id][0] == (0.0, 0.0)              # the base: no drift, no margin
    view.start()                                                  # again: all from the cache
    qtbot.waitUntil(lambda: view.worker is None, timeout=60_000)
    assert "0 checkpoints measured, 3 from the cache" in view.progress_text.text()


def test_the_view_module_imports_no_ml_library():
    """The tab is built on the UI thread: torch and friends load only on the evaluation's worker."""
    import subprocess
    import sys

    code = ("import sys, gui.evaluate.evaluate_view; "
            "print(sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"
