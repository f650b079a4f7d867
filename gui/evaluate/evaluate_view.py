"""The Evaluate screen: reward against drift, per checkpoint — the paper's frontier.

``EvaluateView(workspace, db, annotator_name)``. Pick one or more runs; "Evaluate" measures every
checkpoint of each (``core.operations.evaluate.evaluate_runs``) on a ``Worker``, with progress
and Cancel; the table lists each checkpoint's held-out accuracy and margin, its KL to the base
± its standard error and (demo) its helpful share; ``FrontierPlot`` draws the chosen measure
against the KL, runs overlaid. Results are cached in each run folder, so opening the screen
shows the last evaluation at once (read on the database thread). Nothing is computed here.
"""

from __future__ import annotations

import threading

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QFormLayout, QHBoxLayout, QHeaderView, QLabel,
                               QListWidget, QListWidgetItem, QProgressBar, QPushButton, QSpinBox, QSplitter,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from core.operations.evaluate import EvaluateOptions, EvaluateProgress, evaluate_or_keep, runs_and_cached
from gui.annotate.response_panel import Card
from gui.common.db_worker import DatabaseWorker
from gui.common.workers import Worker, start_worker
from gui.evaluate.frontier_plot import Y_METRICS, FrontierPlot, run_color, run_title
from storage.workspace import Workspace

COLUMNS = ("Run", "Checkpoint", "Step", "Accuracy", "Margin", "KL ± s.e. (nats)", "Helpful")


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f}%"


def _number(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "—"
    if round(value, digits) == 0:          # float noise around 0 (the base's margins) is not "-0.00"
        return f"{0:.{digits}f}"
    return f"{value:+.{digits}f}"


def _swatch(color: str) -> QIcon:
    pixmap = QPixmap(14, 14)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(color))
    painter.drawEllipse(1, 1, 12, 12)
    painter.end()
    return QIcon(pixmap)


def _holding(card: Card, widget: QWidget) -> Card:
    body = QVBoxLayout()
    body.setContentsMargins(8, 4, 8, 8)
    body.addWidget(widget)
    card.body.addLayout(body)
    return card


def _evaluate(workspace, run_ids, options, should_stop, report):
    """The worker's function: progress events go out through ``report`` (a Qt signal)."""
    return evaluate_or_keep(workspace, run_ids, options, progress=report, should_stop=should_stop)


class EvaluateView(QWidget):
    changes_made = Signal(object)
    status_message = Signal(str)

    def __init__(self, workspace: Workspace, db: DatabaseWorker, annotator_name: str | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.workspace, self.db, self.annotator_name = workspace, db, annotator_name
        self.runs: list = []                      # RunRecord, oldest first
        self.evaluations: dict = {}               # run id -> RunEvaluation
        self.worker: Worker | None = None
        self._stop = threading.Event()
        self._build()
        self.reload_runs()

    # -- layout --------------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 12, 14, 12)
        layout.setSpacing(10)
        title = QLabel("Evaluate")
        title.setObjectName("heading")
        caption = QLabel("What each checkpoint gained against how far it drifted from the base model: "
                         "one point per checkpoint, joined in step order — the reward-against-KL frontier "
                         "of the DPO paper. Better runs reach higher at the same KL.")
        caption.setObjectName("subheading")
        caption.setWordWrap(True)
        layout.addWidget(title)
        layout.addWidget(caption)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self._runs_card())
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self._plot_card())
        right.addWidget(self._table_card())
        right.setSizes([470, 250])
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([330, 950])
        layout.addWidget(splitter, 1)

    def _runs_card(self) -> Card:
        card = Card("Runs")
        body = QVBoxLayout()
        body.setContentsMargins(14, 6, 14, 12)
        body.setSpacing(8)
        self.run_list = QListWidget()
        self.run_list.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)   # the ticks choose
        self.run_list.itemChanged.connect(lambda _item: self._redraw())
        body.addWidget(self.run_list, 1)
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        defaults = EvaluateOptions()
        self.prompts = self._spin(4, 512, defaults.prompts, "Held-out prompts the KL (and the helpful share) "
                                  "is sampled on")
        self.samples = self._spin(1, 16, defaults.samples_per_prompt, "KL replies sampled per prompt "
                                  "(temperature 1): more gives a smaller standard error")
        self.max_tokens = self._spin(8, 1024, defaults.max_new_tokens, "Longest reply sampled, in tokens")
        form.addRow("Prompts", self.prompts)
        form.addRow("Replies per prompt", self.samples)
        form.addRow("Max new tokens", self.max_tokens)
        body.addLayout(form)
        note = QLabel("KL is sampled at temperature 1 (the model's own distribution) on held-out prompts; "
                      "the demo's helpful share by its style scorer at the demo evaluation's temperature.")
        note.setObjectName("muted")
        note.setWordWrap(True)
        body.addWidget(note)
        buttons = QHBoxLayout()
        self.evaluate_button = QPushButton("Evaluate")
        self.evaluate_button.setObjectName("primary")
        self.evaluate_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        buttons.addWidget(self.evaluate_button, 1)
        buttons.addWidget(self.cancel_button)
        body.addLayout(buttons)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.setFixedHeight(6)
        self.progress_text = QLabel("")
        self.progress_text.setObjectName("muted")
        self.progress_text.setWordWrap(True)
        body.addWidget(self.progress)
        body.addWidget(self.progress_text)
        card.body.addLayout(body)
        return card

    def _spin(self, low: int, high: int, value: int, tip: str) -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(low, high)
        spin.setValue(value)
        spin.setToolTip(tip)
        return spin

    def _plot_card(self) -> Card:
        card = Card("Reward against KL")
        self.metric_box = QComboBox()
        for metric in Y_METRICS:
            self.metric_box.addItem(metric.label.split(" (")[0], metric.key)
        self.metric_box.currentIndexChanged.connect(lambda _i: self._redraw())
        card.header.addStretch(1)
        card.header.addWidget(QLabel("Show"))
        card.header.addWidget(self.metric_box)
        self.plot = FrontierPlot()
        self.plot.setMinimumHeight(300)
        return _holding(card, self.plot)

    def _table_card(self) -> Card:
        card = Card("Checkpoints")
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in range(1, len(COLUMNS)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        return _holding(card, self.table)

    # -- runs and cached results (database thread) -------------------------------------------
    def reload_runs(self) -> None:
        self.db.submit(runs_and_cached, self.workspace, on_done=self._runs_loaded,
                       on_failed=lambda exc: self.progress_text.setText(f"Cannot read the runs: {exc}"))

    def _runs_loaded(self, loaded) -> None:
        runs, cached = loaded
        checked = set(self.checked_run_ids()) if self.runs else {r for r, e in cached.items() if e is not None}
        if not checked:   # nothing evaluated yet: offer the two newest runs that have weights
            checked = {run.id for run in runs if run.adapter_path or run.step > 0}
            checked = set(sorted(checked, key=lambda i: [r.id for r in runs].index(i))[-2:])
        self.runs = runs
        self.evaluations.update({run_id: e for run_id, e in cached.items() if e is not None})
        self.run_list.blockSignals(True)
        self.run_list.clear()
        for run in runs:
            beta = run.config.get("beta")
            item = QListWidgetItem(f"{run.name}\nβ {beta} · {run.step} of {run.total_steps} steps · "
                                   f"{run.status.value}")
            item.setData(Qt.ItemDataRole.UserRole, run.id)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if run.id in checked else Qt.CheckState.Unchecked)
            item.setToolTip(run.id)
            item.setIcon(_swatch(self.color_of(run.id)))
            self.run_list.addItem(item)
        self.run_list.blockSignals(False)
        if not runs:
            self.progress_text.setText("No runs yet: train one in the Train tab, then evaluate it here.")
        self.evaluate_button.setEnabled(bool(runs) and self.worker is None)
        self._pick_default_metric()
        self._redraw()

    def checked_run_ids(self) -> list[str]:
        items = (self.run_list.item(i) for i in range(self.run_list.count()))
        return [item.data(Qt.ItemDataRole.UserRole) for item in items if item.checkState() == Qt.CheckState.Checked]

    def _pick_default_metric(self) -> None:
        """The demo's helpful share when there is one (the paper's reward), else the margin."""
        helpful = any(r.helpful_share is not None for e in self.evaluations.values() for r in e.rows)
        self.metric_box.setCurrentIndex(self.metric_box.findData("helpful" if helpful else "margin"))

    # -- the work (a Worker thread) ------------------------------------------------------------
    def options(self) -> EvaluateOptions:
        return EvaluateOptions(prompts=self.prompts.value(), samples_per_prompt=self.samples.value(),
                               max_new_tokens=self.max_tokens.value())

    def start(self) -> None:
        run_ids = self.checked_run_ids()
        if self.worker is not None:
            return
        if not run_ids:
            self.progress_text.setText("Tick the runs to evaluate.")
            return
        self._stop = threading.Event()
        self.worker = Worker(_evaluate, self.workspace, run_ids, self.options(), self._stop.is_set, loads_torch=True)
        self.worker.progress.connect(self._progress)
        self.worker.finished.connect(self._finished)
        self.worker.failed.connect(self._failed)
        self._set_running(True)
        self.progress_text.setText("Loading the model…")
        start_worker(self.worker)

    def cancel(self) -> None:
        self._stop.set()
        self.progress_text.setText("Stopping after the current batch…")

    def _set_running(self, running: bool) -> None:
        self.evaluate_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        for widget in (self.prompts, self.samples, self.max_tokens):
            widget.setEnabled(not running)
        if not running:
            self.progress.setValue(0)

    def _progress(self, event: EvaluateProgress) -> None:
        fraction = (event.index - 1 + (event.done / event.total if event.total else 0)) / max(event.count, 1)
        self.progress.setValue(int(1000 * fraction))
        self.progress_text.setText(f"{event.run_name} · {event.checkpoint} ({event.index} of {event.count}): "
                                   f"{event.stage} {event.done}/{event.total}")

    def _finished(self, outcome) -> None:
        self.worker = None
        self._set_running(False)
        self.evaluations.update({e.run_id: e for e in outcome.evaluations})
        computed = sum(e.computed for e in outcome.evaluations)
        reused = sum(e.reused for e in outcome.evaluations)
        if outcome.cancelled:
            self.progress_text.setText("Cancelled; the checkpoints measured so far are kept.")
        else:
            self.progress_text.setText(f"{computed} checkpoints measured, {reused} from the cache.")
        self.status_message.emit(self.progress_text.text())
        self._pick_default_metric()
        self._redraw()

    def _failed(self, message: str) -> None:
        self.worker = None
        self._set_running(False)
        self.progress_text.setText(f"Evaluation failed: {message}")
        self.status_message.emit(self.progress_text.text())

    # -- drawing -------------------------------------------------------------------------------
    def color_of(self, run_id: str) -> str:
        """A run keeps its colour whichever runs are ticked: its place in the list picks it."""
        ids = [run.id for run in self.runs]
        return run_color(ids.index(run_id) if run_id in ids else len(ids))

    def shown_evaluations(self) -> list:
        return [self.evaluations[run_id] for run_id in self.checked_run_ids() if run_id in self.evaluations]

    def _redraw(self) -> None:
        shown = self.shown_evaluations()
        palette = [self.color_of(e.run_id) for e in shown]
        self.plot.show_runs(shown, self.metric_box.currentData(), palette)
        rows = [(color, evaluation, row) for color, evaluation in zip(palette, shown) for row in evaluation.rows]
        self.table.setRowCount(len(rows))
        for r, (color, evaluation, row) in enumerate(rows):
            values = (f"●  {run_title(evaluation)}", row.label, str(row.step), _percent(row.accuracy),
                      _number(row.margin), f"{row.kl:.3f} ± {row.kl_stderr:.3f}", _percent(row.helpful_share))
            for column, text in enumerate(values):
                item = QTableWidgetItem(text)
                if column == 0:
                    item.setForeground(QColor(color))
                else:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, column, item)

    # -- the main window's hooks ---------------------------------------------------------------
    def on_changes(self, changes) -> None:
        if getattr(changes, "runs", False):
            self.reload_runs()

    def set_annotator(self, name: str) -> None:
        self.annotator_name = name

    def stop_timers(self) -> None:
        self._stop.set()

    def confirm_close(self) -> bool:
        self._stop.set()           # an evaluation stops at its next batch; its finished rows are cached
        return True

    def refresh_theme(self) -> None:
        self.plot.refresh_theme()
        self._redraw()
