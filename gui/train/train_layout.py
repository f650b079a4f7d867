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

from gui.common.theme import colors
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

    def _build_layout(self, form: TrainingForm, plots: TrainingPlots, runs: RunsPanel) -> None:
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self._build_left(form))
        splitter.addWidget(self._build_right(plots, runs))
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([400, 880])
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addWidget(splitter)

    def _build_left(self, form: TrainingForm) -> QWidget:
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
        scroll.setWidget(form)
        scroll.setMinimumWidth(380)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        buttons = QHBoxLayout()
        self.start_button = QPushButton("Start training")
        self.start_button.setObjectName("primaryButton")
        self.start_button.setToolTip("Check the settings and the data, then train on a background thread.")
        self.pause_button = QPushButton("Pause")
        self.pause_button.setToolTip("Hold the run after the current step (the model stays loaded).")
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue a paused run.")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Finish the current step, save a checkpoint and the adapter, and stop.")
        for button in (self.start_button, self.pause_button, self.resume_button, self.stop_button):
            buttons.addWidget(button)
        left_layout.addWidget(heading)
        left_layout.addWidget(explainer)
        left_layout.addWidget(scroll, 1)
        left_layout.addLayout(buttons)
        return left

    def _build_right(self, plots: TrainingPlots, runs: RunsPanel) -> QWidget:
        c = colors()
        self.error_banner = _banner(c["bad_soft"], c["bad"])
        self.displacement_banner = _banner("#fff4e6", "#d9480f")
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

        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        for widget in (self.error_banner, self.displacement_banner):
            top_layout.addWidget(widget)
        top_layout.addLayout(status_row)
        top_layout.addWidget(self.message_label)
        top_layout.addWidget(self.tug)
        top_layout.addLayout(self._build_tools(plots))
        top_layout.addWidget(plots, 1)
        vertical = QSplitter(Qt.Orientation.Vertical)
        vertical.addWidget(top)
        vertical.addWidget(runs)
        vertical.setStretchFactor(0, 4)
        vertical.setStretchFactor(1, 1)
        vertical.setSizes([640, 170])
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(vertical)
        return right

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
        self.compare_label = QLabel("")
        self.compare_label.setStyleSheet(f"color: {colors()['muted']};")
        tools.addWidget(self.compare_label, 1)
        return tools

    def smoothing(self) -> float:
        return self.smoothing_slider.value() / 100.0

    def show_error(self, text: str) -> None:
        self.error_banner.setText(f"<b>Training stopped with an error.</b> {_escape(text)}")
        self.error_banner.setVisible(True)


def _banner(background: str, foreground: str) -> QLabel:
    banner = QLabel("")
    banner.setWordWrap(True)
    banner.setTextFormat(Qt.TextFormat.RichText)
    banner.setStyleSheet(f"background: {background}; color: {foreground}; border: 1px solid {foreground};"
                         "border-radius: 6px; padding: 6px 8px;")
    banner.setVisible(False)
    return banner


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
