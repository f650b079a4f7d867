"""The Train tab: set up a LoRA DPO run, launch it on a worker thread, watch it learn.

Left: the set-up form (``TrainingForm``) and the run buttons. Right: banners (errors,
likelihood displacement), the progress line, the tug-of-war bar, the live plots and the runs
of the workspace. Metrics arrive as queued signals from ``TrainingWorker`` and are only
appended to a ``MetricSeries``; a 250 ms timer redraws whatever changed, so a fast run never
floods the UI thread.
"""

from __future__ import annotations

import gc
import time

from PySide6.QtCore import QCoreApplication, Qt, QThread, QTimer
from PySide6.QtWidgets import (QCheckBox, QHBoxLayout, QLabel, QMessageBox, QProgressBar, QPushButton, QScrollArea,
                               QSlider, QSplitter, QVBoxLayout, QWidget)

from core.operations.launch_checks import launch_problems
from core.engine.library_preload import preload_training_libraries
from core.operations.metric_series import MetricSeries, check_displacement
from storage.runs import get_run
from core.engine.training_config import TrainingConfig
from core.engine.training_control import RunInfo
from core.operations.training_progress import ProgressClock, steps_per_epoch
from gui.common.pyside_fixes import collect_garbage_on_ui_thread
from gui.train.runs_panel import RunsPanel
from gui.common.theme import colors
from gui.train.training_form import TrainingForm
from gui.train.training_plots import OVERLAY_NAMES, TrainingPlots
from gui.train.training_worker import TrainingWorker
from gui.train.tug_of_war import TugOfWar
from gui.common.workers import Worker, start_worker
from storage.workspace import Workspace

# The timer ticks every 60 ms and redraws one of the six panels per tick, so each panel is
# repainted about three times a second and no tick paints more than one plot (painting a
# plot costs ~10-30 ms on a 2-core machine; all six at once stalled the window for 60-150 ms).
REDRAW_INTERVAL_MS = 60
PANELS_PER_TICK = 1
DISPLACEMENT_TEXT = (
    "<b>Likelihood displacement.</b> The chosen answers are becoming <i>less</i> likely than in the original "
    "model even though the margin keeps growing: DPO is winning by pushing both answers down, which can make "
    "the tuned model's text drift. Remedy: set an <b>SFT weight</b> (e.g. 1.0) so training also keeps the "
    "chosen answers likely.")


class TrainView(QWidget):
    def __init__(self, workspace: Workspace, parent: QWidget | None = None):
        super().__init__(parent)
        collect_garbage_on_ui_thread()   # before any worker thread of this view starts
        self.workspace = workspace
        self.worker: TrainingWorker | None = None
        self._thread: QThread | None = None
        self.series = MetricSeries()
        self.overlays: list[MetricSeries] = []
        self.current_run_id: str | None = None
        self.run_info: RunInfo | None = None
        self.last_status: str | None = None
        self.last_error: str | None = None
        self.last_message = ""
        self._latest_metrics: dict[str, float] | None = None
        self._clock: ProgressClock | None = None
        self._dirty = False
        self._stale_panels: list[str] = []
        self._stop_requested = False
        self.redraw_count = 0

        self.form = TrainingForm(workspace)
        self.plots = TrainingPlots()
        self.runs = RunsPanel(workspace, grab_plots=self.plots.grab)
        self._build()

        self.runs.open_requested.connect(self.open_run)
        self.runs.compare_requested.connect(self.compare_runs)
        self.runs.resume_requested.connect(self.resume_run)
        self._timer = QTimer(self)
        self._timer.setInterval(REDRAW_INTERVAL_MS)
        self._timer.timeout.connect(self._redraw_if_dirty)
        self._timer.start()
        self._update_buttons()
        if self.runs.run_ids():
            self.open_run(self.runs.run_ids()[0])   # the newest run, so the tab is never blank
        self.preload_worker = Worker(preload_training_libraries, self.form.values()["base_model"])
        self.preload_worker.finished.connect(self._on_libraries_loaded)
        start_worker(self.preload_worker)

    def _on_libraries_loaded(self, _modules: list) -> None:
        # Move the million-odd objects of torch, transformers and Qt out of the garbage
        # collector's reach: a full collection over them held the GIL for ~300 ms, in
        # whichever thread triggered it, and froze the window while a run was loading.
        gc.freeze()

    # -- layout -----------------------------------------------------------------------------
    def _build(self) -> None:
        c = colors()
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        heading = QLabel("Train a LoRA adapter with DPO")
        heading.setStyleSheet("font-weight: 700; font-size: 15px;")
        explainer = QLabel("Teaches the model to prefer the answers marked <i>chosen</i> over the <i>rejected</i> "
                           "ones, while staying close to the original model.")
        explainer.setWordWrap(True)
        explainer.setStyleSheet(f"color: {c['muted']};")
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.form)
        scroll.setMinimumWidth(360)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        buttons = QHBoxLayout()
        self.start_button = QPushButton("Start training")
        self.start_button.setObjectName("primaryButton")
        self.start_button.setToolTip("Check the settings, then train on a background thread.")
        self.pause_button = QPushButton("Pause")
        self.pause_button.setToolTip("Hold the run after the current step (the model stays loaded).")
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue a paused run.")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Finish the current step, save a checkpoint and the adapter, and stop.")
        for button, slot in ((self.start_button, self.start), (self.pause_button, self.pause),
                             (self.resume_button, self.resume), (self.stop_button, self.stop)):
            button.clicked.connect(slot)
            buttons.addWidget(button)
        left_layout.addWidget(heading)
        left_layout.addWidget(explainer)
        left_layout.addWidget(scroll, 1)
        left_layout.addLayout(buttons)

        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        self.error_banner = self._banner(c["bad_soft"], c["bad"])
        self.displacement_banner = self._banner("#fff4e6", "#d9480f")
        self.displacement_banner.setText(DISPLACEMENT_TEXT)
        status_row = QHBoxLayout()
        self.run_label = QLabel("No run yet")
        self.run_label.setStyleSheet("font-weight: 600;")
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setTextVisible(False)
        self.progress_bar.setMaximumHeight(10)
        self.progress_label = QLabel("")
        status_row.addWidget(self.run_label)
        status_row.addWidget(self.progress_bar, 1)
        status_row.addWidget(self.progress_label)
        self.message_label = QLabel("")
        self.message_label.setStyleSheet(f"color: {c['muted']}; font-size: 11px;")
        self.tug = TugOfWar()

        tools = QHBoxLayout()
        tools.addWidget(QLabel("Smoothing"))
        self.smoothing_slider = QSlider(Qt.Orientation.Horizontal)
        self.smoothing_slider.setRange(0, 99)
        self.smoothing_slider.setValue(60)
        self.smoothing_slider.setMaximumWidth(160)
        self.smoothing_slider.setToolTip("Exponential moving average of the curves; the raw values stay faint "
                                         "behind.")
        self.smoothing_slider.valueChanged.connect(self._mark_dirty)
        tools.addWidget(self.smoothing_slider)
        self.log_loss = QCheckBox("Log-scale loss")
        self.log_loss.setToolTip("Show the loss on a logarithmic axis.")
        self.log_loss.toggled.connect(self.plots.set_log_loss)
        tools.addWidget(self.log_loss)
        self.compare_label = QLabel("")
        self.compare_label.setStyleSheet(f"color: {c['muted']};")
        tools.addWidget(self.compare_label, 1)

        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        for widget in (self.error_banner, self.displacement_banner):
            top_layout.addWidget(widget)
        top_layout.addLayout(status_row)
        top_layout.addWidget(self.message_label)
        top_layout.addWidget(self.tug)
        top_layout.addLayout(tools)
        top_layout.addWidget(self.plots, 1)
        vertical = QSplitter(Qt.Orientation.Vertical)
        vertical.addWidget(top)
        vertical.addWidget(self.runs)
        vertical.setStretchFactor(0, 4)
        vertical.setStretchFactor(1, 1)
        vertical.setSizes([640, 170])
        right_layout.addWidget(vertical)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([380, 900])
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addWidget(splitter)

    @staticmethod
    def _banner(background: str, foreground: str) -> QLabel:
        banner = QLabel("")
        banner.setWordWrap(True)
        banner.setTextFormat(Qt.TextFormat.RichText)
        banner.setStyleSheet(f"background: {background}; color: {foreground}; border: 1px solid {foreground};"
                             "border-radius: 6px; padding: 6px 8px;")
        banner.setVisible(False)
        return banner

    # -- state --------------------------------------------------------------------------------
    def is_running(self) -> bool:
        return self.worker is not None

    @property
    def paused(self) -> bool:
        return self.worker is not None and self.worker.control.paused

    def _update_buttons(self) -> None:
        running = self.is_running()
        self.start_button.setEnabled(not running)
        self.pause_button.setEnabled(running and not self.paused and not self._stop_requested)
        self.resume_button.setEnabled(running and self.paused and not self._stop_requested)
        self.stop_button.setEnabled(running and not self._stop_requested)
        self.form.set_enabled_for_run(running)
        self.runs.set_busy_run(self.current_run_id if running else None)
        if running and self.current_run_id is None:
            self.runs.set_busy_run("")   # nothing may be resumed while a new run is starting

    def show_error(self, text: str) -> None:
        self.error_banner.setText(f"<b>Training stopped with an error.</b> {_escape(text)}")
        self.error_banner.setVisible(True)

    # -- launching ------------------------------------------------------------------------------
    def start(self) -> bool:
        """Validate every setting, the model and the data; start a new run only if all are good."""
        if self.is_running():
            return False
        config, problems = launch_problems(self.workspace, self.form._full_values())
        self.form.show_problems(problems)
        if config is None:
            first = next(iter(problems.items()))
            self.message_label.setText(f"Not started: {first[0]}: {first[1]}")
            return False
        self._launch(TrainingWorker(self.workspace, config), MetricSeries())
        return True

    def resume_run(self, run_id: str) -> bool:
        """Continue a stopped run from its newest checkpoint (with its own settings)."""
        if self.is_running():
            return False
        run = get_run(self.workspace, run_id)
        if run is None:
            return False
        self.overlays = []
        self._launch(TrainingWorker(self.workspace, None, resume_run_id=run_id), MetricSeries())
        return True

    def _launch(self, worker: TrainingWorker, series: MetricSeries) -> None:
        self.error_banner.setVisible(False)
        self.displacement_banner.setVisible(False)
        self.series, self.overlays = series, []
        self.current_run_id = worker.resume_run_id
        self.run_info, self.last_status, self.last_error = None, None, None
        self._latest_metrics, self._clock, self._stop_requested = None, None, False
        self.compare_label.setText("")
        self.run_label.setText("Loading the model…")
        self.progress_label.setText("")
        self.progress_bar.setValue(0)
        worker.run_started.connect(self._on_run_started)
        worker.step_metrics.connect(self._on_step)
        worker.eval_metrics.connect(self._on_eval)
        worker.message.connect(self._on_message)
        worker.checkpoint_saved.connect(self._on_checkpoint)
        worker.run_finished.connect(self._on_run_finished)
        worker.failed.connect(self._on_failed)
        self.worker = worker
        thread = self._thread = start_worker(worker)
        thread.finished.connect(lambda: self._on_thread_finished(thread))
        if thread.isFinished():   # ended before the connection was made (an instant failure)
            QTimer.singleShot(0, lambda: self._on_thread_finished(thread))
        self.tug.show_metrics(None)
        self._dirty = True
        self._update_buttons()

    # -- controls ---------------------------------------------------------------------------------
    def pause(self) -> None:
        if self.worker is not None:
            self.worker.control.pause()
            self.message_label.setText("Pausing after the current step…")
        self._update_buttons()

    def resume(self) -> None:
        if self.worker is not None:
            self.worker.control.resume()
            if self._clock is not None:
                self._clock.restart_pace()
        self._update_buttons()

    def stop(self) -> None:
        if self.worker is not None:
            self._stop_requested = True
            self.worker.control.request_stop()
            self.message_label.setText("Stopping: finishing the step, saving a checkpoint and the adapter…")
        self._update_buttons()

    def stop_and_wait(self, timeout_ms: int = 120_000) -> bool:
        """Request a stop and wait (processing events, so the run's last signals and its thread's
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

    # -- what the worker reports (queued onto the UI thread) ----------------------------------------
    def _on_run_started(self, info: RunInfo) -> None:
        self.run_info = info
        self.current_run_id = info.run_id
        run = get_run(self.workspace, info.run_id)
        config = TrainingConfig.from_dict(run.config) if run is not None else TrainingConfig()
        if info.start_step > 0:
            # A resumed run: its history up to the checkpoint, then live steps on top.
            self.series = MetricSeries.load(self.workspace, info.run_id, max_step=info.start_step)
        per_epoch = steps_per_epoch(info.train_pairs, config.batch_size, config.gradient_accumulation_steps)
        self._clock = ProgressClock(info.total_steps, info.start_step, per_epoch)
        name = run.name if run is not None else info.run_id
        self.run_label.setText(f"Run {name}")
        self.message_label.setText(
            f"{info.train_pairs} training pairs, {info.eval_pairs} held out · {info.device} {info.dtype} · "
            f"{info.trainable_parameters:,} of {info.total_parameters:,} parameters trained")
        self.runs.refresh()
        self._update_buttons()
        self._dirty = True

    def _on_step(self, step: int, metrics: dict) -> None:
        self.series.add(step, "train", metrics)
        self._latest_metrics = metrics
        if self._clock is not None:
            self._clock.step(step, metrics.get("tokens_per_second"))
        self._dirty = True

    def _on_eval(self, step: int, metrics: dict) -> None:
        self.series.add(step, "eval", metrics)
        self._dirty = True
        self.runs.refresh()   # the list's step count and status, now and then (not per step)

    def _on_message(self, text: str) -> None:
        self.last_message = text
        self.message_label.setText(text)
        if text in ("paused", "resumed"):
            self.run_label.setText(self.run_label.text().split(" — ")[0] + (" — paused" if text == "paused" else ""))
            if text == "resumed" and self._clock is not None:
                self._clock.restart_pace()
        self._update_buttons()

    def _on_checkpoint(self, step: int, path: str) -> None:
        self.message_label.setText(f"checkpoint saved at step {step}")

    def _on_run_finished(self, status: str, error: object) -> None:
        self.last_status = status
        self.last_error = error if isinstance(error, str) else None
        if status == "failed" and self.last_error:
            if self._stop_requested and self.last_error.startswith("stopped"):
                self.message_label.setText(f"Stopped before training began ({self.last_error}).")
            else:
                self.show_error(self.last_error)
        elif status in ("completed", "stopped"):
            self.message_label.setText(f"Run {status}: adapter saved.")

    def _on_failed(self, message: str) -> None:
        # TrainingFailed after on_finish (already shown), or a failure before the run began.
        if self.last_status is None:
            self.last_status = "failed"
            self.last_error = message
            self.show_error(message)

    def _on_thread_finished(self, thread: QThread) -> None:
        # Both the signal and the fallback timer may report the same thread; only the first
        # report of the current run's thread counts (a later one must not clear a new run).
        if thread is not self._thread:
            return
        self.worker = None
        self._thread = None
        self._stop_requested = False
        label = {"completed": "completed", "stopped": "stopped", "failed": "failed"}.get(self.last_status or "", "")
        if label:
            self.run_label.setText(self.run_label.text().split(" — ")[0] + f" — {label}")
        self.runs.refresh()
        self._update_buttons()
        self._dirty = True   # the last steps are drawn by the timer, one panel per tick

    # -- past runs ------------------------------------------------------------------------------------
    def open_run(self, run_id: str) -> None:
        """Redraw a stored run's curves (not while a run trains: the live curves stay)."""
        if self.is_running():
            return
        run = get_run(self.workspace, run_id)
        if run is None:
            return
        self.current_run_id = run_id
        self.series = MetricSeries.load(self.workspace, run_id)
        self.overlays = []
        self.compare_label.setText("")
        self.run_label.setText(f"Run {run.name or run.id} — {run.status.value}")
        self.progress_bar.setValue(int(1000 * run.step / run.total_steps) if run.total_steps else 0)
        self.progress_label.setText(f"step {run.step} / {run.total_steps}")
        self.message_label.setText(run.error or "")
        self._latest_metrics = self._last_train_metrics()
        self._redraw()

    def compare_runs(self, run_ids: list[str]) -> None:
        """The first run drawn solid, the others overlaid (dashed, dotted, ...)."""
        if self.is_running() or not run_ids:
            return
        self.open_run(run_ids[0])
        self.overlays = [MetricSeries.load(self.workspace, run_id) for run_id in run_ids[1:]]
        names = [self._run_name(run_id) for run_id in run_ids]
        styles = ["solid"] + [OVERLAY_NAMES[i % len(OVERLAY_NAMES)] for i in range(len(run_ids) - 1)]
        self.compare_label.setText("Comparing: " + ", ".join(f"{n} ({s})" for n, s in zip(names, styles)))
        self._redraw()

    def _run_name(self, run_id: str) -> str:
        run = self.runs.run(run_id)
        return (run.name or run.id) if run is not None else run_id

    def _last_train_metrics(self) -> dict[str, float] | None:
        names = self.series.names("train")
        if not names:
            return None
        return {name: self.series.last(name) for name in names}

    # -- drawing ------------------------------------------------------------------------------------
    def _mark_dirty(self, *_args) -> None:
        self._dirty = True

    def _redraw_if_dirty(self) -> None:
        """Timer tick: new metrics mark every panel stale; each tick redraws the next few."""
        if self._dirty:
            self._dirty = False
            # Panels still waiting from the last change go first, then the rest.
            self._stale_panels += [key for key in self.plots.panels if key not in self._stale_panels]
            self._update_status()
        if self._stale_panels:
            batch, self._stale_panels = self._stale_panels[:PANELS_PER_TICK], self._stale_panels[PANELS_PER_TICK:]
            self.redraw_count += 1
            self.plots.redraw(self.series, self.smoothing(), self.overlays, panels=batch)

    def _redraw(self) -> None:
        """Everything at once (opening or comparing runs, the end of a run)."""
        self._dirty = False
        self._stale_panels = []
        self.redraw_count += 1
        self.plots.redraw(self.series, self.smoothing(), self.overlays)
        self._update_status()

    def _update_status(self) -> None:
        self.tug.show_metrics(self._latest_metrics)
        check = check_displacement(self.series)
        self.displacement_banner.setVisible(bool(check and check.displaced))
        if self._clock is not None:
            snapshot = self._clock.snapshot()
            self.progress_bar.setValue(int(1000 * snapshot.fraction))
            self.progress_label.setText(snapshot.describe())

    def smoothing(self) -> float:
        return self.smoothing_slider.value() / 100.0


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

