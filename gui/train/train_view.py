"""The Train tab: set up a LoRA DPO run, launch it in a child process, watch it learn.

``TrainView(workspace, db)`` draws; the rules are below ``gui/``. A run is a
``core.operations.training.TrainingSession`` (its state machine: starting, running, paused,
stopping, finished) that trains in a child process (``core.operations.training_process``: the
window never shares the GIL with the launch check, the model load or the loop), followed by
``TrainingWorker``, whose typed events arrive here queued on the UI thread. A refusal of the
launch checks (run in the child) arrives as ``LaunchRefused``. Every database read of the tab
(the runs list, a run's stored curves) goes through the ``DatabaseWorker`` ``db``; the widgets are laid out by
``TrainLayout`` and the plots redrawn by ``RedrawSchedule`` (a few panels per timer tick, never
per step).
"""

from __future__ import annotations

import time

from PySide6.QtCore import QCoreApplication, Signal
from PySide6.QtWidgets import QMessageBox, QWidget

from core.engine.training_control import (MetricSplit, Phase, PhaseChanged, RunFinished, RunInfo, RunStarted,
                                          StepMetrics)
from core.operations.changes import Changes
from core.operations.metric_series import MetricSeries, check_displacement
from core.operations.runs import RunCurves, load_curves
from core.operations.training import LaunchRefused, SessionState, TrainingSession
from gui.common.db_worker import DatabaseWorker, Job
from gui.common.pyside_fixes import collect_garbage_on_ui_thread
from gui.common.staged_build import StagedBuild
from gui.common.workers import start_worker
from gui.train.event_text import event_text
from gui.train.redraw_schedule import RedrawSchedule
from gui.train.run_preparer import RunPreparer
from gui.train.runs_panel import RunsPanel
from gui.train.train_layout import TrainLayout
from gui.train.training_form import TrainingForm
from gui.train.training_plots import OVERLAY_NAMES, PANEL_BUILD_INTERVAL_MS, TrainingPlots
from gui.train.training_worker import RunEnd, TrainingWorker
from storage.models import RunStatus
from storage.workspace import Workspace

FIRST_CARD_DELAY_MS = 80     # the frame's first layout and paint come first, in turns of their own
STATE_SUFFIX = {SessionState.STARTING: "starting", SessionState.PAUSED: "paused", SessionState.STOPPING: "stopping"}


class TrainView(TrainLayout):
    changes_made = Signal(object)    # Changes(runs=True): a run was created or has ended

    def __init__(self, workspace: Workspace, db: DatabaseWorker, parent: QWidget | None = None,
                 gradually: bool = False, prepare_runs: bool = False):
        """``prepare_runs``: keep a training process ready for the next run (``RunPreparer``)."""
        super().__init__(parent)
        collect_garbage_on_ui_thread()   # before any worker thread of this view starts
        self.workspace = workspace
        self.db = db
        self.session: TrainingSession | None = None
        self.worker: TrainingWorker | None = None
        self._run_end: RunEnd | None = None
        self.series = MetricSeries()
        self.overlays: list[MetricSeries] = []
        self.current_run_id: str | None = None
        self.run_info: RunInfo | None = None
        self.phase: Phase | None = None
        self.last_status: RunStatus | None = None
        self.last_error: str | None = None
        self._latest_metrics: dict[str, float] | None = None
        self._waiting_for_history: list[StepMetrics] | None = None
        self._opened_newest = False
        self.preparer = RunPreparer(workspace, self) if prepare_runs else None

        # Gradually (the main window's first opening): a frame, then a piece per turn (cards, plots, runs list).
        self.form = TrainingForm(workspace, db, gradually=gradually)
        self.plots = TrainingPlots(gradually=True, start=not gradually)
        self.runs = RunsPanel(workspace, db, grab_plots=self.plots.grab)
        self._build_layout(self.form, self.plots, self.runs, with_runs=not gradually)
        self.redraws = RedrawSchedule(self.plots, self._what_to_draw, self._update_status, self)
        self.smoothing_slider.valueChanged.connect(self.redraws.mark_dirty)
        for button, slot in ((self.start_button, self.start), (self.pause_button, self.pause),
                             (self.resume_button, self.resume), (self.stop_button, self.stop)):
            button.clicked.connect(slot)
        for signal, slot in ((self.runs.open_requested, self.open_run), (self.runs.compare_requested, self.compare_runs),
                             (self.runs.resume_requested, self.resume_run), (self.runs.changes_made, self.changes_made)):
            signal.connect(slot)
        self.runs.loaded.connect(self._on_runs_loaded)
        self._update_buttons()
        self.runs.refresh()
        # After the cards: the runs list, then the plots (at their final size), then the run's process.
        self._last_pieces = [self.add_runs_panel, self.plots.start_building]
        self._finishing = StagedBuild("train-build", self, lambda: self._last_pieces.pop(0)(),
                                      lambda: bool(self._last_pieces), interval_ms=PANEL_BUILD_INTERVAL_MS)
        if self.preparer is not None:
            self.plots.panel_built.connect(lambda _key: self.plots.is_built and self.preparer.schedule())
        if gradually:      # after this frame's first paint
            self.form.built.connect(self._finishing.start)
            self.form.start_building(FIRST_CARD_DELAY_MS)
        else:
            self._finishing.finish()
            if self.preparer is not None:
                self.preparer.schedule()

    @property
    def is_built(self) -> bool:
        """Every form card, plot panel and the runs list are there (a piece per turn at the first opening)."""
        return self.form.is_built and self.plots.is_built and self._runs_panel is None

    @property
    def redraw_count(self) -> int:
        return self.redraws.count

    def stop_timers(self) -> None:
        """Before the window closes (and at a test's end): no timer of this tab fires again."""
        self.redraws.stop()
        if self.preparer is not None:
            self.preparer.close()
        self.plots.build_all()
        self._finishing.finish()     # the runs list (the plots are all built already)
        form_timers = getattr(self.form, "stop_timers", None)   # the form's, once it has any to stop
        if form_timers is not None:
            form_timers()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self.stop_timers()
        super().closeEvent(event)

    def on_changes(self, changes: Changes) -> None:
        """A write elsewhere (the main window forwards it): re-read what this tab shows of it."""
        if changes.runs:
            self.runs.refresh()
        self.form.on_changes(changes)

    # -- state --------------------------------------------------------------------------------
    def is_running(self) -> bool:
        """From Start (or Resume) until the run's worker has returned (or the launch was refused)."""
        return self.worker is not None

    @property
    def paused(self) -> bool:
        return self.session is not None and self.session.state == SessionState.PAUSED

    def _update_buttons(self) -> None:
        running = self.is_running()
        state = self.session.state if self.session is not None and running else None
        self.start_button.setEnabled(not running)
        self.pause_button.setEnabled(state == SessionState.RUNNING)
        self.resume_button.setEnabled(state == SessionState.PAUSED)
        self.stop_button.setEnabled(state in (SessionState.STARTING, SessionState.RUNNING, SessionState.PAUSED))
        self.form.set_enabled_for_run(running)
        self.runs.set_busy_run((self.current_run_id or "") if running else None)   # "": a new run is starting

    # -- launching ------------------------------------------------------------------------------
    def start(self) -> bool:
        """Start a new run from the form. Settings and the model folder are checked at once
        (False, each problem shown at its field); the data check reads the database, so it runs
        on the database thread and a refusal arrives a moment later, shown the same way."""
        if self.is_running():
            return False
        self.form.refresh()
        if self.form.config() is None or self.form.problems:
            self._say_not_started(self.form.problems)
            return False
        session = TrainingSession(self.workspace, in_child=True, prepared=self._prepared())
        session.start(values=self.form.full_values())   # the data check runs in the run's process
        self._begin(session, "Checking the settings and the data…")
        self._start_worker(session)
        return True

    def resume_run(self, run_id: str) -> bool:
        """Continue a stopped, failed or interrupted run from its newest checkpoint (its own
        settings); the trainer refuses one that cannot be resumed, with the reason."""
        if self.is_running():
            return False
        session = TrainingSession(self.workspace, in_child=True, prepared=self._prepared())
        session.start(resume_run_id=run_id)
        self._begin(session, "Loading the run…")
        self.current_run_id = run_id
        self._start_worker(session)
        return True

    def _prepared(self):
        return self.preparer.take() if self.preparer is not None else None

    def _begin(self, session: TrainingSession, text: str) -> None:
        self.session = session
        self._opened_newest = True   # the live run is what the tab shows now
        self.error_banner.setVisible(False)
        self.displacement_banner.setVisible(False)
        self.series, self.overlays = MetricSeries(), []
        self.current_run_id, self.run_info, self.phase = None, None, None
        self.last_status, self.last_error, self._latest_metrics = None, None, None
        self._waiting_for_history = None
        self.compare_label.setText("")
        self.run_label.setText("New run")
        self.message_label.setText(text)
        self.progress_label.setText("")
        self.progress_bar.setValue(0)
        self.tug.show_metrics(None)
        self.redraws.mark_dirty()

    def _on_refused(self, problems: dict[str, str]) -> None:
        self.form.show_problems(problems)
        self._say_not_started(problems)
        self.run_label.setText("No run started")

    def _say_not_started(self, problems: dict[str, str]) -> None:
        key, message = next(iter(problems.items()), ("settings", "check the fields marked in red"))
        self.message_label.setText(f"Not started: {key}: {message}")

    def _start_worker(self, session: TrainingSession) -> None:
        worker = TrainingWorker(session)
        worker.event.connect(self._on_event)
        self._run_end = RunEnd(self, worker, self._on_run_ended)
        self.worker = worker
        start_worker(worker)
        self._update_buttons()

    # -- controls ---------------------------------------------------------------------------------
    def pause(self) -> None:
        if self.session is not None and self.session.pause():
            self.message_label.setText("Pausing after the current step…")
        self._update_buttons()
        self.redraws.mark_dirty()

    def resume(self) -> None:
        if self.session is not None and self.session.resume():
            self.message_label.setText("Resuming…")
        self._update_buttons()
        self.redraws.mark_dirty()

    def stop(self) -> None:
        if self.session is not None and self.session.stop():
            self.message_label.setText("Stopping: finishing the step, saving a checkpoint and the adapter…")
        self._update_buttons()
        self.redraws.mark_dirty()

    def stop_and_wait(self, timeout_ms: int = 120_000) -> bool:
        """Request a stop and wait (processing events, so the run's last events and its thread's
        end arrive) until the run has saved and its thread has ended. True when it has."""
        self.stop()
        deadline = time.monotonic() + timeout_ms / 1000
        while self.is_running() and time.monotonic() < deadline:
            QCoreApplication.processEvents()
            time.sleep(0.01)
        return not self.is_running()

    def confirm_close(self) -> bool:
        """Called by the main window before it closes: ask, then stop cleanly and save."""
        if not self.is_running():
            return True
        answer = QMessageBox.question(
            self, "Training is running",
            "A training run is in progress. Stop it, save a checkpoint and the adapter, and close?\n"
            "(The run can be resumed later from the Runs list.)",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
        if answer != QMessageBox.StandardButton.Yes:
            return False
        return self.stop_and_wait()

    # -- what the run reports (queued onto the UI thread) --------------------------------------------
    def _on_event(self, event: object) -> None:
        if isinstance(event, LaunchRefused):
            self._on_refused(event.problems)
            self._update_buttons()
            return
        if isinstance(event, StepMetrics):
            self._on_metrics(event)
        elif isinstance(event, PhaseChanged):
            self.phase = event.phase
            if event.phase == Phase.REFERENCE_PASS:
                self.progress_bar.setValue(int(1000 * (event.done or 0) / max(1, event.total or 1)))
        elif isinstance(event, RunStarted):
            self._on_run_started(event.info)
        elif isinstance(event, RunFinished):
            self._on_run_finished(event)
        text = event_text(event, self.run_info)
        if text is not None:
            self.message_label.setText(text)
        self._update_buttons()
        self.redraws.mark_dirty()

    def _on_run_started(self, info: RunInfo) -> None:
        self.run_info = info
        self.current_run_id = info.run_id
        self.run_label.setText(f"Run {info.run_name or info.run_id}")
        if info.start_step > 0:
            # A resumed run: its history up to the checkpoint, then the live steps on top.
            self._waiting_for_history = []
            self.db.submit(load_curves, self.workspace, [info.run_id], max_step=info.start_step,
                           on_done=lambda curves: self._on_history(info.run_id, curves))
        self.runs.refresh()   # the new run's row; from now on it follows the run's events
        self.changes_made.emit(Changes(runs=True))

    def _on_history(self, run_id: str, curves: list[RunCurves]) -> None:
        if run_id != self.current_run_id or self._waiting_for_history is None:
            return
        live, self._waiting_for_history = self._waiting_for_history, None
        self.series = curves[0].series if curves else MetricSeries()
        for event in live:
            self._on_metrics(event)
        self.redraws.mark_dirty()

    def _on_metrics(self, event: StepMetrics) -> None:
        if self._waiting_for_history is not None:
            self._waiting_for_history.append(event)
            return
        self.series.add(event.step, event.split.value, event.metrics)
        if event.split == MetricSplit.TRAIN:
            self._latest_metrics = dict(event.metrics)

    def _on_run_finished(self, event: RunFinished) -> None:
        self.last_status, self.last_error = event.status, event.error
        if event.status == RunStatus.FAILED:
            self.show_error(event.error or "the run failed")

    def _on_run_ended(self, run_end: "RunEnd", failure: str | None) -> None:
        # Only the current run's end counts (a late report must never clear a newer run).
        if run_end is not self._run_end:
            return
        self._run_end = None
        run_end.deleteLater()
        if failure is not None and self.last_status is None:
            # The session reports a failed run as RunFinished; this is a failure around it.
            self.last_status, self.last_error = RunStatus.FAILED, failure
            self.show_error(failure)
        self.worker = None
        if self.preparer is not None:
            self.preparer.schedule()      # the next run's process
        self.runs.refresh()
        if self.last_status is not None:
            self.changes_made.emit(Changes(runs=True))
        self._update_buttons()
        self._update_status()       # the header says how it ended at once ("stopped", not "stopping")
        self.redraws.mark_dirty()   # the last steps are drawn by the timer, one panel per tick

    # -- past runs ------------------------------------------------------------------------------------
    def _on_runs_loaded(self) -> None:
        if not self._opened_newest and not self.is_running() and self.runs.run_ids():
            self._opened_newest = True
            # The newest run, so the tab is never blank: drawn one panel per tick, as the tab is
            # still opening (all six at once held the UI thread for 100-300 ms).
            self.open_run(self.runs.run_ids()[0], gradually=True)

    def open_run(self, run_id: str, gradually: bool = False) -> Job | None:
        """Redraw a stored run's curves (not while a run trains: the live curves stay)."""
        return self.compare_runs([run_id], gradually)

    def compare_runs(self, run_ids: list[str], gradually: bool = False) -> Job | None:
        """The first run drawn solid, the others overlaid (dashed, dotted, ...)."""
        if self.is_running() or not run_ids:
            return None
        self._opened_newest = True
        return self.db.submit(load_curves, self.workspace, list(run_ids),
                              on_done=lambda curves: self._show_curves(curves, gradually))

    def _show_curves(self, curves: list[RunCurves], gradually: bool = False) -> None:
        if self.is_running() or not curves:
            return
        first = curves[0]
        run = first.run
        self.session, self.run_info = None, None
        self.current_run_id = run.id
        self.series = first.series
        self.overlays = [c.series for c in curves[1:]]
        self.run_label.setText(f"Run {run.name or run.id} — {run.status.value}")
        self.progress_bar.setValue(int(1000 * run.step / run.total_steps) if run.total_steps else 0)
        self.progress_label.setText(f"step {run.step} / {run.total_steps}")
        self.message_label.setText(run.error or "")
        self.compare_label.setText("")
        if self.overlays:
            styles = ["solid"] + [OVERLAY_NAMES[i % len(OVERLAY_NAMES)] for i in range(len(self.overlays))]
            self.compare_label.setText("Comparing: " + ", ".join(
                f"{c.run.name or c.run.id} ({style})" for c, style in zip(curves, styles)))
        names = self.series.names("train")
        self._latest_metrics = {name: self.series.last(name) for name in names} if names else None
        if gradually:
            self.redraws.mark_dirty()
        else:
            self.redraws.redraw_all()

    # -- drawing ------------------------------------------------------------------------------------
    def _what_to_draw(self) -> tuple[MetricSeries, float, list[MetricSeries]]:
        return self.series, self.smoothing(), self.overlays

    def _update_status(self) -> None:
        """Once per batch of news: the tug-of-war, the banner, and the live run's header and row."""
        self.tug.show_metrics(self._latest_metrics)
        check = check_displacement(self.series)
        self.displacement_banner.setVisible(bool(check and check.displaced))
        session = self.session
        if session is None or self.run_info is None:
            return
        snapshot = session.progress()
        name = self.run_info.run_name or self.run_info.run_id
        state = session.state
        suffix = (session.outcome.status.value if state == SessionState.FINISHED and session.outcome
                  and session.outcome.status else STATE_SUFFIX.get(state, ""))
        self.run_label.setText(f"Run {name}" + (f" — {suffix}" if suffix else ""))
        if snapshot is not None:
            self.progress_bar.setValue(int(1000 * snapshot.fraction))
            self.progress_label.setText(snapshot.describe())
            self.runs.show_live(self.run_info.run_id, suffix or "running", snapshot.step, snapshot.total_steps)
