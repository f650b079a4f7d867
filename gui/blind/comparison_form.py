"""The "new comparison" card of the Blind A/B screen: two models, how many held-out prompts,
the sampling settings, and the generation running on a ``Worker`` with progress and cancel.

The models offered are ``core.operations.blind.comparable_models`` (read on the database
thread); the work is ``core.operations.blind.create_comparison`` on its own thread. The card
emits ``created`` with the outcome; it never touches the database or torch itself.
"""

from __future__ import annotations

import threading

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QGridLayout, QHBoxLayout, QLabel, QProgressBar,
                               QPushButton, QSpinBox, QWidget)

from core.operations import blind
from gui.annotate.response_panel import Card
from gui.common.db_worker import DatabaseWorker
from gui.common.workers import Worker, start_worker
from storage.workspace import Workspace


def _create(ws: Workspace, key_a: str, key_b: str, limit: int, sampling: dict, stop: threading.Event, report):
    return blind.create_comparison(ws, key_a, key_b, settings=sampling, limit=limit, progress=report,
                                   should_stop=stop.is_set)


class ComparisonForm(Card):
    created = Signal(object)        # ComparisonOutcome (cancelled ones too)
    status_message = Signal(str)

    def __init__(self, workspace: Workspace, db: DatabaseWorker, parent: QWidget | None = None):
        super().__init__("New blind comparison", parent)
        self.workspace = workspace
        self.db = db
        self.worker: Worker | None = None
        self._stop = threading.Event()
        grid = QGridLayout()
        grid.setContentsMargins(16, 8, 16, 12)
        grid.setHorizontalSpacing(14)
        grid.setVerticalSpacing(8)
        self.model_a = QComboBox()
        self.model_b = QComboBox()
        for combo in (self.model_a, self.model_b):
            combo.setMinimumWidth(220)
        self.prompts = QSpinBox(minimum=1, maximum=2000, value=blind.DEFAULT_PROMPTS)
        self.max_tokens = QSpinBox(minimum=8, maximum=4096, value=128, singleStep=16)
        self.temperature = QDoubleSpinBox(minimum=0.0, maximum=2.0, value=0.8, singleStep=0.1, decimals=2)
        fields = (("Reference (A)", self.model_a), ("Under test (B)", self.model_b),
                  ("Held-out prompts", self.prompts), ("Max new tokens", self.max_tokens),
                  ("Temperature", self.temperature))
        for column, (title, widget) in enumerate(fields):
            caption = QLabel(title)
            caption.setObjectName("muted")
            grid.addWidget(caption, 0, column)
            grid.addWidget(widget, 1, column)
        self.create_button = QPushButton("Generate answers")
        self.create_button.setObjectName("primary")
        self.create_button.clicked.connect(self.start)
        grid.addWidget(self.create_button, 1, len(fields))
        grid.setColumnStretch(len(fields) + 1, 1)
        self.body.addLayout(grid)

        row = QHBoxLayout()
        row.setContentsMargins(16, 0, 16, 12)
        self.progress = QProgressBar()
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(8)
        self.progress_text = QLabel("Each model answers every prompt once; which answer is shown left is "
                                    "drawn per pair and kept. Names stay hidden until Results.")
        self.progress_text.setObjectName("muted")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        row.addWidget(self.progress_text, 1)
        row.addWidget(self.progress, 1)
        row.addWidget(self.cancel_button)
        self.body.addLayout(row)
        self._set_running(False)

    def reload_models(self) -> None:
        self.db.submit(blind.comparable_models, self.workspace, on_done=self._show_models,
                       on_failed=lambda exc: self.status_message.emit(f"Cannot list the models: {exc}"))

    def _show_models(self, choices) -> None:
        for combo in (self.model_a, self.model_b):
            kept = combo.currentData()
            combo.clear()
            for choice in choices:
                combo.addItem(choice.label if choice.run_id is None else f"{choice.label}  ({choice.run_id})",
                              choice.key)
            if kept is not None and combo.findData(kept) >= 0:
                combo.setCurrentIndex(combo.findData(kept))
        if self.model_a.currentData() == self.model_b.currentData() and self.model_b.count() > 1:
            self.model_a.setCurrentIndex(0)   # the base as reference
            self.model_b.setCurrentIndex(1)   # the newest run under test
        enough = self.model_b.count() > 1
        self.create_button.setEnabled(enough and self.worker is None)
        if not enough:
            self.progress_text.setText("Train a run first: a comparison needs the base and at least one adapter.")

    # -- the work ----------------------------------------------------------------------
    def start(self) -> None:
        key_a, key_b = self.model_a.currentData(), self.model_b.currentData()
        if key_a is None or key_b is None or self.worker is not None:
            return
        if key_a == key_b:
            self.progress_text.setText("Choose two different models.")
            return
        self._stop = threading.Event()
        sampling = {"temperature": self.temperature.value(), "max_new_tokens": self.max_tokens.value()}
        self.worker = Worker(_create, self.workspace, key_a, key_b, self.prompts.value(), sampling, self._stop,
                             loads_torch=True)
        self.worker.progress.connect(self._progress)
        self.worker.finished.connect(self._finished)
        self.worker.failed.connect(self._failed)
        self._set_running(True)
        self.progress_text.setText("Loading the first model…")
        self.progress.setRange(0, 0)
        start_worker(self.worker)

    def cancel(self) -> None:
        self._stop.set()
        self.progress_text.setText("Stopping after the current step…")

    def _progress(self, update) -> None:
        self.progress.setRange(0, max(1, update.total))
        self.progress.setValue(update.done)
        self.progress_text.setText(f"Generating answers… {update.done} of {update.total}")

    def _finished(self, outcome) -> None:
        self.worker = None
        self._set_running(False)
        if outcome.cancelled:
            self.progress_text.setText("Cancelled; nothing was stored.")
        else:
            skipped = outcome.skipped_identical + outcome.skipped_stored
            self.progress_text.setText(f"Comparison #{outcome.comparison_id}: {outcome.pairs} pairs to judge"
                                       + (f" ({skipped} prompts left out: the same answer twice, or already stored)"
                                          if skipped else ""))
        self.created.emit(outcome)

    def _failed(self, message: str) -> None:
        self.worker = None
        self._set_running(False)
        self.progress_text.setText(f"Could not create the comparison: {message}")
        self.status_message.emit(f"Blind A/B: {message}")

    def _set_running(self, running: bool) -> None:
        self.progress.setVisible(running)
        self.cancel_button.setVisible(running)
        self.create_button.setEnabled(not running and self.model_b.count() > 1)
        for widget in (self.model_a, self.model_b, self.prompts, self.max_tokens, self.temperature):
            widget.setEnabled(not running)

    def stop(self) -> None:
        """The screen closes: a running generation stops at its next step."""
        self._stop.set()
