"""The Team tab's "Queue order" card: which open pairs the annotators are served first, and
scoring the pairs with a run's adapter so the queue can rank them.

Orders (``core.operations.pair_scores``): the default (closest to quota, then oldest), "least
sure first" (the run's implicit-reward margin nearest zero) and "most wrong first" (second
opinions where the run contradicts the verdicts; needs overlap > 1, and says so in its line and the
status bar while it falls back to the default). Choosing one is an owner's
setting (``set_queue_order`` on the database worker). Scoring is long work (the adapter on the
base model): a ``Worker`` runs ``score_pairs`` with progress and Stop. A finished run is not
scored by itself: when the newest run has no scores yet, the card offers it.
"""

from __future__ import annotations

import threading

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from core.operations.changes import Changes
from core.operations.pair_scores import (QUEUE_ORDERS, SCORED_ORDERS, QueueOrderState, ScoreOutcome,
                                         ScoringProgress, order_fallback, queue_order_state, score_pairs,
                                         set_queue_order)
from gui.annotate.response_panel import Card
from gui.common.db_worker import DatabaseWorker
from gui.common.workers import Worker, start_worker
from storage.workspace import Workspace


def score_open_pairs(ws: Workspace, run_id: str, report, should_stop) -> ScoreOutcome:
    """``score_pairs`` of the open pairs, reporting through a worker's ``report`` (worker thread)."""
    return score_pairs(ws, run_id, progress=report, should_stop=should_stop)


class QueueOrderCard(Card):
    changes_made = Signal(object)   # Changes: the order setting changed, or pairs were scored
    status_message = Signal(str)

    def __init__(self, workspace: Workspace, db: DatabaseWorker, parent: QWidget | None = None):
        super().__init__("Queue order", parent)
        self.workspace = workspace
        self.db = db
        self.annotator: str | None = None
        self.state: QueueOrderState | None = None
        self._worker: Worker | None = None
        self._stop = threading.Event()

        self.order = QComboBox()
        for key, label in QUEUE_ORDERS.items():
            self.order.addItem(label, key)
        self.order.setToolTip("Which open pairs each annotator is served first. The scored orders rank pairs by a "
                              "run's implicit-reward margin r(a) − r(b); pairs it has not scored follow in the "
                              "default order.")
        self.run = QComboBox()
        self.run.setMinimumWidth(180)
        self.run.setToolTip("The run whose adapter ranks the pairs (and whose preference annotators see after "
                            "their verdict)")
        for combo in (self.order, self.run):
            combo.setEnabled(False)                  # until the stored setting has been read
            combo.activated.connect(self._choose)
        self.score_button = QPushButton("Score open pairs")
        self.score_button.setToolTip("Compute the chosen run's margin on every open pair it has not scored")
        self.score_button.clicked.connect(self.score)
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(self._stop.set)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(180)
        self.progress.setTextVisible(False)
        self.info = QLabel("")
        self.info.setObjectName("muted")
        self.info.setWordWrap(True)

        row = QHBoxLayout()
        row.setContentsMargins(14, 6, 14, 10)
        row.setSpacing(8)
        for text, widget in (("Serve first:", self.order), ("by run:", self.run)):
            label = QLabel(text)
            label.setObjectName("stat")
            row.addWidget(label)
            row.addWidget(widget)
        row.addSpacing(10)
        row.addWidget(self.info, 1)
        for widget in (self.progress, self.stop_button, self.score_button):
            row.addWidget(widget)
        self.body.addLayout(row)
        self._set_scoring(False)

    # -- reads ------------------------------------------------------------------------
    def reload(self) -> None:
        self.db.submit(queue_order_state, self.workspace, on_done=self._show)

    def on_changes(self, changes: Changes) -> None:
        if changes.settings or changes.runs or changes.pairs:
            self.reload()

    def _show(self, state: QueueOrderState) -> None:
        self.state = state
        self.order.setCurrentIndex(max(0, self.order.findData(state.order)))
        current = self.run.currentData()
        self.run.clear()
        for run in state.runs:
            self.run.addItem(run.name, run.run_id)
        wanted = state.run_id or current
        self.run.setCurrentIndex(max(0, self.run.findData(wanted)))
        self.order.setEnabled(True)
        self.run.setEnabled(bool(state.runs))
        self._describe()

    def _describe(self) -> None:
        state = self.state
        if state is None or self._worker is not None:
            return
        run = state.run(self.run.currentData())
        offered = state.unscored_newest()
        if not state.runs:
            text = "Train a run to rank the open pairs by what its adapter is least sure or most wrong about."
        elif offered is not None and offered.run_id == self.run.currentData():
            text = (f"Run {offered.name} has finished: score its {state.open_pairs:,} open pairs to serve them "
                    "by what it is least sure about.")
        else:
            text = f"{run.name}: {run.scored_open:,} of {state.open_pairs:,} open pairs scored."
        if state.fallback is not None:
            text = f"{text} {state.fallback}"
        self.info.setText(text)
        self.score_button.setEnabled(run is not None and run.scored_open < state.open_pairs)

    # -- writes -----------------------------------------------------------------------
    def _choose(self, _index: int = 0) -> None:
        order, run_id = self.order.currentData(), self.run.currentData()
        if order in SCORED_ORDERS and run_id is None:
            self.status_message.emit("Order not changed: train a run first, its adapter ranks the pairs")
            self.reload()
            return
        overlap = self.state.overlap if self.state is not None else 1
        self.db.submit(set_queue_order, self.workspace, order, run_id, actor=self.annotator,
                       on_done=lambda changes: self._chosen(changes, order_fallback(order, overlap)),
                       on_failed=self._refused)
        self._describe()

    def _chosen(self, changes: Changes, fallback: str | None) -> None:
        if fallback is not None:
            self.status_message.emit(fallback)     # said at once, not only in the card's line
        self.changes_made.emit(changes)

    def _refused(self, exc: BaseException) -> None:
        self.status_message.emit(f"Queue order not changed: {exc}")
        self.reload()

    def score(self) -> None:
        """Score the chosen run's unscored open pairs on a worker thread."""
        run_id = self.run.currentData()
        if run_id is None or self._worker is not None:
            return
        self._stop.clear()
        worker = Worker(score_open_pairs, self.workspace, run_id, should_stop=self._stop.is_set)
        worker.progress.connect(self._on_progress)
        worker.finished.connect(self._on_scored)
        worker.failed.connect(self._on_failed)
        self._worker = worker
        self._set_scoring(True)
        self.info.setText(f"Loading run {self.run.currentText()}…")
        start_worker(worker)

    def _set_scoring(self, scoring: bool) -> None:
        self.progress.setVisible(scoring)
        self.stop_button.setVisible(scoring)
        self.score_button.setVisible(not scoring)
        self.run.setEnabled(not scoring and self.run.count() > 0)

    def _on_progress(self, event: ScoringProgress) -> None:
        self.progress.setRange(0, max(1, event.total))
        self.progress.setValue(event.done)
        self.info.setText(f"{event.stage.value.capitalize()}… {event.done:,} of {event.total:,} batches"
                          if event.total > 1 else f"{event.stage.value.capitalize()}…")

    def _on_scored(self, outcome: ScoreOutcome) -> None:
        self._worker = None
        self._set_scoring(False)
        self.status_message.emit(outcome.describe().capitalize())
        self.changes_made.emit(outcome.changes)
        self.reload()

    def _on_failed(self, message: str) -> None:
        self._worker = None
        self._set_scoring(False)
        self.info.setText(f"Scoring failed: {message}")
        self.status_message.emit(f"Scoring failed: {message}")

    def stop(self) -> None:
        """The tab is closing: a running scoring stops after its batch."""
        self._stop.set()
