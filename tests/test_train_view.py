"""The Train tab end to end: real runs of a tiny model started from the form, live plots,
pause / resume / stop, resume from the runs list, close during training, errors, exports."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from core.engine.training_control import MetricSplit, Phase, StepMetrics
from core.operations.metric_series import MetricSeries
from storage.metrics import read_metrics
from storage.runs import get_run, list_runs
from storage.models import RunStatus
from tests.qt_settings import isolated_settings  # noqa: F401  (fixture)
from tests.train_view_helpers import configure, make_train_view, pairs_workspace, settle, tiny_model  # noqa: F401

pytestmark = pytest.mark.usefixtures("isolated_settings")
RUN_TIMEOUT = 90_000
STEPS = 200


def _wait_idle(qtbot, view):
    settle(qtbot, view, RUN_TIMEOUT)


@pytest.mark.slow   # trains twice
def test_live_run_pause_resume_stop_then_resume_from_the_runs_list(qtbot, make_train_view, pairs_workspace,
                                                                      tiny_model):
    view = make_train_view(pairs_workspace)
    configure(view, tiny_model, max_steps=STEPS)   # long enough to be caught running: it trains in a child process
    qtbot.mouseClick(view.start_button, Qt.MouseButton.LeftButton)
    assert view.is_running() and not view.start_button.isEnabled()

    # Metrics arrive and are drawn by the timer (not per step), one panel per tick.
    qtbot.waitUntil(lambda: min(view.plots.point_count("loss"), view.plots.point_count("rewards", "rewards/margins"),
                                view.plots.point_count("probs", "prob/chosen"),
                                view.plots.point_count("optimizer", "grad_norm")) >= 3, timeout=RUN_TIMEOUT)
    assert view.plots.point_count("loss", "loss", "eval") >= 1           # the step-0 evaluation
    assert view.redraw_count <= 6 * (len(view.series) + 2)     # one panel per tick, and only on news
    assert "step " in view.progress_label.text() and "tokens/s" in view.progress_label.text()
    run_id = view.current_run_id
    assert get_run(pairs_workspace, run_id).status == RunStatus.RUNNING

    # Pause: no step while paused, and the database says so.
    qtbot.mouseClick(view.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.phase == Phase.PAUSED, timeout=RUN_TIMEOUT)
    assert view.resume_button.isEnabled() and not view.pause_button.isEnabled()
    steps_when_paused = len(view.series)
    qtbot.wait(700)
    assert len(view.series) == steps_when_paused
    assert get_run(pairs_workspace, run_id).status == RunStatus.PAUSED

    # Resume, then stop: the step finishes, a checkpoint and the adapter are saved.
    qtbot.mouseClick(view.resume_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(view.series) > steps_when_paused, timeout=RUN_TIMEOUT)
    qtbot.mouseClick(view.stop_button, Qt.MouseButton.LeftButton)
    _wait_idle(qtbot, view)
    assert view.last_status == "stopped"
    run = get_run(pairs_workspace, run_id)
    assert run.status == RunStatus.STOPPED and 0 < run.step < STEPS
    stored = read_metrics(pairs_workspace, run_id, "train")
    assert [step for step, _ in stored["loss"]] == list(range(1, run.step + 1))
    assert stored["loss"][-1][1] == pytest.approx(view.series.last("loss"))
    assert "stopped" in view.run_label.text()

    # The runs list shows it; resume it to the end.
    assert view.runs.run_ids() == [run_id]
    assert view.runs.table.item(0, 1).text() == "stopped"
    assert "left" not in view.progress_label.text()           # a stopped run has no time left
    view.runs.select_runs([run_id])
    assert view.runs.resume_button.isEnabled()
    qtbot.mouseClick(view.runs.resume_button, Qt.MouseButton.LeftButton)
    assert view.is_running()
    _wait_idle(qtbot, view)
    assert view.last_status == "completed", view.last_error
    run = get_run(pairs_workspace, run_id)
    assert run.status == RunStatus.COMPLETED and run.step == STEPS
    steps, _ = view.series.get("loss")
    assert steps.tolist() == list(range(1, STEPS + 1))       # history before the checkpoint + the resumed steps
    assert [s for s, _ in read_metrics(pairs_workspace, run_id, "train")["loss"]] == list(range(1, STEPS + 1))


@pytest.mark.slow   # trains and exports
def test_runs_open_compare_and_export(qtbot, make_train_view, pairs_workspace, tiny_model, tmp_path):
    view = make_train_view(pairs_workspace)
    for beta in ("0.1", "0.5"):
        configure(view, tiny_model, max_steps=4, beta=beta, eval_interval=2)
        assert view.start()
        _wait_idle(qtbot, view)
        assert view.last_status == "completed", view.last_error
    first, second = [run.id for run in list_runs(pairs_workspace)]
    assert view.runs.run_ids() == [second, first]              # newest first
    assert "β=0.5" in view.runs.table.item(0, 3).text()

    view.open_run(first)
    assert view.db.wait_idle()
    assert view.current_run_id == first
    assert view.plots.point_count("loss") == 4
    stored = MetricSeries.load(pairs_workspace, first).get("rewards/margins")[1]
    drawn = view.plots.panels["rewards"].curves[2].raw.getData()[1]
    assert drawn.tolist() == pytest.approx(stored.tolist())

    view.compare_runs([first, second])
    assert view.db.wait_idle()
    assert len(view.overlays) == 1 and "dashed" in view.compare_label.text()
    overlay = view.plots.panels["loss"].overlay_curves[0]
    assert len(overlay.line.getData()[0]) == 4

    assert view.runs.export_csv(first, tmp_path / "first.csv")
    assert view.db.wait_idle() and "Metrics saved" in view.runs.status_label.text()
    header = (tmp_path / "first.csv").read_text().splitlines()[0].split(",")
    assert header[:2] == ["step", "split"] and "rewards/margins" in header
    assert view.runs.export_png(tmp_path / "plots.png")
    assert (tmp_path / "plots.png").stat().st_size > 10_000

    # The export starts its worker at once: wait on what the panel says, not on the worker's
    # signal, which a fast export can emit before a waitSignal here would connect to it.
    view.runs.export_adapter(first, tmp_path / "adapter")
    status = view.runs.status_label
    qtbot.waitUntil(lambda: status.text().startswith(("Exported to", "Export failed")), timeout=RUN_TIMEOUT)
    assert status.text() == f"Exported to {tmp_path / 'adapter'}", status.text()
    from core.engine.modeling import load_with_adapter
    loaded = load_with_adapter(str(tiny_model), tmp_path / "adapter", device="cpu", dtype="float32")
    assert loaded.model.peft_config["default"].r == 8


@pytest.mark.slow   # trains or spawns a process: over 5 s on a busy machine
def test_closing_during_training_asks_then_stops_and_saves(qtbot, make_train_view, pairs_workspace, tiny_model,
                                                          monkeypatch):
    view = make_train_view(pairs_workspace)
    configure(view, tiny_model, max_steps=500)
    assert view.start()
    qtbot.waitUntil(lambda: len(view.series) >= 2, timeout=RUN_TIMEOUT)
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a) or QMessageBox.StandardButton.No)
    assert view.confirm_close() is False and view.is_running()
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a) or QMessageBox.StandardButton.Yes)
    assert view.confirm_close() is True
    assert len(asked) == 2 and not view.is_running()
    run = get_run(pairs_workspace, view.current_run_id)
    assert run.status == RunStatus.STOPPED and run.adapter_path
    assert view.confirm_close() is True                    # nothing running: no question
    assert len(asked) == 2


@pytest.mark.slow   # trains or spawns a process: over 5 s on a busy machine
def test_a_model_that_cannot_load_arrives_as_a_readable_error(qtbot, make_train_view, pairs_workspace, tiny_model):
    config_file = tiny_model / "config.json"
    config_file.write_text(config_file.read_text().replace('"model_type": "llama"', '"model_type": "no-such-arch"'))
    view = make_train_view(pairs_workspace)
    configure(view, tiny_model, max_steps=3)
    assert view.start()                 # the folder looks like a model: the failure comes from the thread
    _wait_idle(qtbot, view)
    assert view.last_status == "failed"
    assert view.error_banner.isVisible()
    assert "cannot load the model" in view.error_banner.text()
    assert view.start_button.isEnabled()


def test_likelihood_displacement_banner_appears_with_the_remedy(qtbot, make_train_view, workspace):
    view = make_train_view(workspace)
    assert not view.displacement_banner.isVisible()
    # Metrics as the worker reports them: the chosen answers' reward below zero (their
    # log-prob fell under the reference) while the margin keeps growing.
    for step in range(1, 13):
        view._on_event(StepMetrics(step, MetricSplit.TRAIN, {
            "loss": 0.6, "rewards/chosen": -0.05 * step, "rewards/rejected": -0.2 * step,
            "rewards/margins": 0.15 * step, "likelihood_displacement": 1.0, "prob/preference": 0.5 + 0.02 * step}))
    qtbot.waitUntil(view.displacement_banner.isVisible, timeout=5_000)
    text = view.displacement_banner.text()
    assert "less" in text and "SFT weight" in text
    assert view.tug.bar.share == pytest.approx(0.74)


def test_the_tab_reads_the_database_off_the_ui_thread_and_offers_an_interrupted_run(
        qtbot, make_train_view, pairs_workspace, tiny_model, tmp_path):
    import subprocess
    import sys
    import threading

    from sqlalchemy import event

    from storage.models import TrainingRun
    from storage.process_owner import this_host
    from storage.runs import create_run

    # A run left "running" by a process that has since died (killed, crashed).
    create_run(pairs_workspace, "killed", name="killed", config_json='{"beta": 0.1}', base_model=str(tiny_model),
               run_dir=str(pairs_workspace.runs_dir / "killed"), total_steps=10)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with pairs_workspace.writing() as s:
        row = s.get(TrainingRun, "killed")
        row.owner_host, row.owner_pid, row.owner_started = this_host(), dead.pid, None

    ui_thread, on_ui_thread = threading.get_ident(), []

    def no_sql_here(_conn, _cursor, statement, *_args):
        if threading.get_ident() == ui_thread:
            on_ui_thread.append(statement)

    event.listen(pairs_workspace.engine, "before_cursor_execute", no_sql_here)
    try:
        view = make_train_view(pairs_workspace)
        qtbot.waitUntil(lambda: view.runs.run_ids() == ["killed"], timeout=20_000)
        assert view.runs.table.item(0, 1).text() == "interrupted"
        view.runs.select_runs(["killed"])
        assert view.runs.resume_button.isEnabled()
        assert view.db.wait_idle() and "interrupted" in view.run_label.text()   # the newest run, opened

        configure(view, tiny_model, max_steps=12, eval_interval=4)
        assert view.start()
        qtbot.waitUntil(lambda: len(view.series) >= 3, timeout=RUN_TIMEOUT)
        assert view.pause() is None and view.session.state.value == "paused"
        qtbot.waitUntil(lambda: view.phase == Phase.PAUSED, timeout=RUN_TIMEOUT)
        # The runs list follows the run's own events, not a database read now and then.
        row = view.runs.run_ids().index(view.current_run_id)
        qtbot.waitUntil(lambda: view.runs.table.item(row, 2).text() == f"{len(view.series)} / 12", timeout=5_000)
        assert view.runs.table.item(row, 1).text() == "paused"
        assert "(from max steps)" in view.progress_label.text() and "left" not in view.progress_label.text()
        view.resume()
        _wait_idle(qtbot, view)
        assert view.last_status == "completed", view.last_error
        assert view.runs.table.item(view.runs.run_ids().index(view.current_run_id), 2).text() == "12 / 12"
        first = view.current_run_id
        view.compare_runs([first, "killed"])
        assert view.runs.export_csv(first, tmp_path / "m.csv")
        assert view.db.wait_idle() and (tmp_path / "m.csv").exists()
    finally:
        event.remove(pairs_workspace.engine, "before_cursor_execute", no_sql_here)
    assert on_ui_thread == []
