"""The Train tab's widgets and where they sit; ``TrainView`` (``gui.train.train_view``) adds
the behaviour.

Left: the heading, the set-up form in a scroll area, and the run buttons. Right: banners
(errors, likelihood displacement), the run's header (name and state, progress bar, step /
epoch / speed / time left), a line saying what the run is doing, the tug-of-war bar, the plot
tools, the live plots, and under a splitter the workspace's runs.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QCheckBox, QHBoxLayout, QLabel, QProgressBar, QPushButton, QScrollArea, QSlider,
                               QSplitter, QVBoxLayout, QWidget)

from gui.common.theme import named_label
from gui.train.runs_panel import RunsPanel
from gui.train.training_form import TrainingForm
from gui.train.training_plots import TrainingPlots
from gui.train.tug_of_war import TugOfWar

DISPLACEMENT_TEXT = (
    "<b>Likelihood displacement.</b> The chosen answers are becoming <i>less</i> likely than in the original "
    "model even though the margin keeps growing: DPO is winning by pushing both answers down, which can make "
    "the tuned model's text drift. Remedy: set an <b>SFT weight</b> (e.g. 1.0) so training also keeps the "
    "chosen answers likely.")


class TrainLayout(QWidget):
    """The widgets of the Train tab, laid out; no behaviour beyond the layout."""

    def _build_layout(self, form: TrainingForm, plots: TrainingPlots, runs: RunsPanel, with_runs: bool = True) -> None:
        """``with_runs=False``: the runs list joins later (``add_runs_panel``), in a turn of its own."""
        # Containers are made inside their parents, top down: a container joining its parent
        # later re-resolves the style of everything in it, once per level (half of this build's
        # time on the UI thread, at the Train tab's first opening).
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        layout.addWidget(splitter)
        self._build_left(QWidget(splitter), form)
        self._build_right(QWidget(splitter), plots)
        self._runs_panel: RunsPanel | None = runs
        if with_runs:
            self.add_runs_panel()
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([400, 880])

    def _build_left(self, left: QWidget, form: TrainingForm) -> None:
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(named_label("Train a LoRA adapter with DPO", "trainHeading"))
        left_layout.addWidget(named_label(
            "Teaches the model to prefer the answers marked <i>chosen</i> over the <i>rejected</i> "
            "ones, while staying close to the original model.", "muted", wrap=True))
        scroll = QScrollArea(left)
        scroll.setWidgetResizable(True)
        scroll.setWidget(form)
        scroll.setMinimumWidth(380)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        left_layout.addWidget(scroll, 1)
        buttons = QHBoxLayout()
        self.start_button = QPushButton("Start training")
        self.start_button.setObjectName("primary")
        self.start_button.setToolTip("Check the settings and the data, then train in a process of its own.")
        self.pause_button = QPushButton("Pause")
        self.pause_button.setToolTip("Hold the run after the current step (the model stays loaded).")
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue a paused run.")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Finish the current step, save a checkpoint and the adapter, and stop.")
        for button in (self.start_button, self.pause_button, self.resume_button, self.stop_button):
            buttons.addWidget(button)
        left_layout.addLayout(buttons)

    def _build_right(self, right: QWidget, plots: TrainingPlots) -> None:
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        self._vertical = vertical = QSplitter(Qt.Orientation.Vertical, right)
        right_layout.addWidget(vertical)
        top = QWidget(vertical)
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        self.error_banner = _banner("errorBanner")
        self.displacement_banner = _banner("warningBanner")
        self.displacement_banner.setText(DISPLACEMENT_TEXT)
        for widget in (self.error_banner, self.displacement_banner):
            top_layout.addWidget(widget)
        status_row = QHBoxLayout()
        self.run_label = named_label("No run yet", "stat")
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setTextVisible(False)
        self.progress_bar.setMaximumHeight(10)
        self.progress_label = QLabel("")
        status_row.addWidget(self.run_label)
        status_row.addWidget(self.progress_bar, 1)
        status_row.addWidget(self.progress_label)
        top_layout.addLayout(status_row)
        self.message_label = named_label("", "smallMuted")
        top_layout.addWidget(self.message_label)
        self.tug = TugOfWar()
        top_layout.addWidget(self.tug)
        top_layout.addLayout(self._build_tools(plots))
        top_layout.addWidget(plots, 1)

    def add_runs_panel(self) -> None:
        """The runs list under the plots (once)."""
        runs, self._runs_panel = self._runs_panel, None
        if runs is not None:
            self._vertical.addWidget(runs)
            self._vertical.setStretchFactor(0, 4)
            self._vertical.setStretchFactor(1, 1)
            self._vertical.setSizes([640, 170])

    def _build_tools(self, plots: TrainingPlots) -> QHBoxLayout:
        tools = QHBoxLayout()
        tools.addWidget(QLabel("Smoothing"))
        self.smoothing_slider = QSlider(Qt.Orientation.Horizontal)
        self.smoothing_slider.setRange(0, 99)
        self.smoothing_slider.setValue(60)
        self.smoothing_slider.setMaximumWidth(160)
        self.smoothing_slider.setToolTip("Exponential moving average of the curves; the raw values stay faint "
                                         "behind.")
        tools.addWidget(self.smoothing_slider)
        self.log_loss = QCheckBox("Log-scale loss")
        self.log_loss.setToolTip("Show the loss on a logarithmic axis.")
        self.log_loss.toggled.connect(plots.set_log_loss)
        tools.addWidget(self.log_loss)
        self.compare_label = named_label("", "muted")
        tools.addWidget(self.compare_label, 1)
        return tools

    def smoothing(self) -> float:
        return self.smoothing_slider.value() / 100.0

    def show_error(self, text: str) -> None:
        self.error_banner.setText(f"<b>Training stopped with an error.</b> {_escape(text)}")
        self.error_banner.setVisible(True)


def _banner(name: str) -> QLabel:
    banner = named_label("", name, wrap=True)     # the app stylesheet dresses it by name
    banner.setTextFormat(Qt.TextFormat.RichText)
    banner.setVisible(False)
    return banner


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
