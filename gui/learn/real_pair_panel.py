""""What just happened" for one of the workspace's pairs: pick a run and a labelled pair, and the
policy (base + the run's adapter) and reference (the base) log-probs of its chosen and rejected
answers are computed on a worker (``core.operations.learn.explain_pair``); the pair's texts, their
log-probs and the same six steps as the worked example follow, with the real numbers."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QFrame, QGridLayout, QHBoxLayout, QLabel, QPushButton, QSizePolicy,
                               QVBoxLayout, QWidget)

from core.operations import learn
from gui.common.db_worker import DatabaseWorker
from gui.common.theme import colors
from gui.common.workers import Worker, start_worker
from gui.learn.steps_panel import StepsPanel

TEXT_LIMIT = 170


class TextBox(QFrame):
    """One of the pair's texts, shortened, with a coloured edge and a line of numbers under it."""

    def __init__(self, title: str, color_key: str, parent=None):
        super().__init__(parent)
        self.setObjectName("pairText")
        self.setMaximumHeight(150)
        self.color_key = color_key
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 8)
        layout.setSpacing(4)
        self.title = QLabel(title)
        self.title.setObjectName("cardTitle")
        self.text = QLabel("—")
        self.text.setWordWrap(True)
        self.text.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.text.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.meta = QLabel("")
        self.meta.setObjectName("muted")
        self.meta.setWordWrap(True)
        layout.addWidget(self.title)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.meta)
        self.refresh_theme()

    def refresh_theme(self) -> None:
        c = colors()
        self.setStyleSheet(f"QFrame#pairText {{ background: {c['alt']}; border: 1px solid {c['border']}; "
                           f"border-left: 4px solid {c[self.color_key]}; border-radius: 6px; }}")


class RealPairPanel(QWidget):
    open_in_calculator = Signal(float, float, float)     # β, chosen log-ratio, rejected log-ratio
    status_message = Signal(str)

    def __init__(self, workspace, db: DatabaseWorker, parent: QWidget | None = None):
        super().__init__(parent)
        self.workspace = workspace
        self.db = db
        self.result: learn.RealPair | None = None
        self.computing = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 8, 0, 0)
        layout.setSpacing(10)

        choose = QHBoxLayout()
        choose.addWidget(QLabel("Run"))
        self.run_combo = QComboBox()
        self.run_combo.setMinimumWidth(210)
        choose.addWidget(self.run_combo, 2)
        choose.addSpacing(8)
        choose.addWidget(QLabel("Pair"))
        self.pair_combo = QComboBox()
        self.pair_combo.setMinimumWidth(200)
        choose.addWidget(self.pair_combo, 3)
        self.explain_button = QPushButton("Compute")
        self.explain_button.setObjectName("primary")
        self.explain_button.setToolTip("Load the run's model on a worker and compute this pair's log-probs")
        self.explain_button.clicked.connect(self.explain)
        choose.addWidget(self.explain_button)
        layout.addLayout(choose)
        self.status = QLabel("Loading the runs and pairs…")
        self.status.setObjectName("muted")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)

        texts = QGridLayout()
        texts.setHorizontalSpacing(8)
        self.prompt_box = TextBox("PROMPT", "user")
        self.chosen_box = TextBox("CHOSEN", "good")
        self.rejected_box = TextBox("REJECTED", "bad")
        for column, box in enumerate((self.prompt_box, self.chosen_box, self.rejected_box)):
            texts.addWidget(box, 0, column)
            texts.setColumnStretch(column, 1)
        self.texts = QWidget()
        self.texts.setLayout(texts)
        texts.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.texts)

        self.steps = StepsPanel(show_ladder=False)     # the summary line under it says where the steps end
        layout.addWidget(self.steps, 1)
        bottom = QHBoxLayout()
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        bottom.addWidget(self.summary, 1)
        self.calculator_button = QPushButton("Open in the calculator")
        self.calculator_button.setToolTip("Put this pair's β and log-ratios into the loss calculator")
        self.calculator_button.clicked.connect(self._send_to_calculator)
        bottom.addWidget(self.calculator_button)
        layout.addLayout(bottom)
        self._show_result(None)

    # -- choices, read on the database thread ---------------------------------------------------
    def load(self) -> None:
        self.db.submit(learn.run_choices, self.workspace, on_done=self._runs_loaded, on_failed=self._failed)
        self.db.submit(learn.pair_choices, self.workspace, on_done=self._pairs_loaded, on_failed=self._failed)

    def on_changes(self, changes) -> None:
        if changes.runs:
            self.db.submit(learn.run_choices, self.workspace, on_done=self._runs_loaded, on_failed=self._failed)
        if changes.verdicts or changes.pairs:
            self.db.submit(learn.pair_choices, self.workspace, on_done=self._pairs_loaded, on_failed=self._failed)

    def _runs_loaded(self, runs: list[learn.RunChoice]) -> None:
        self._refill(self.run_combo, [(r.label, r.run_id) for r in runs])
        self._update_state()

    def _pairs_loaded(self, pairs: list[learn.PairChoice]) -> None:
        items = [(f"#{p.pair_id} · {p.label}" + ("  (eval)" if p.split == "eval" else ""), p.pair_id) for p in pairs]
        self._refill(self.pair_combo, items)
        self._update_state()

    @staticmethod
    def _refill(combo: QComboBox, items: list[tuple[str, object]]) -> None:
        current = combo.currentData()
        combo.blockSignals(True)
        combo.clear()
        for label, data in items:
            combo.addItem(label, data)
        index = combo.findData(current)
        combo.setCurrentIndex(index if index >= 0 else (0 if items else -1))
        combo.blockSignals(False)

    def _update_state(self) -> None:
        runs, pairs = self.run_combo.count(), self.pair_combo.count()
        self.explain_button.setEnabled(bool(runs and pairs) and not self.computing)
        if self.computing:
            return
        if not runs:
            self.status.setText("No run has an adapter yet: train one in the Train tab, then pick one of its pairs here.")
        elif not pairs:
            self.status.setText("No labelled pair yet: judge a few pairs in the Annotate tab first.")
        elif self.result is None:
            self.status.setText("Pick a run and a pair, then Compute: the run's model scores both answers "
                                "(on a worker; the first time loads the model).")

    def _failed(self, message: str) -> None:
        self.computing = False
        self.status.setText(f"Could not explain the pair: {message}")
        self._update_state()

    # -- the computation, on a worker -----------------------------------------------------------
    def explain(self) -> None:
        run_id, pair_id = self.run_combo.currentData(), self.pair_combo.currentData()
        if run_id is None or pair_id is None or self.computing:
            return
        self.computing = True
        self._update_state()
        self.status.setText(f"Computing pair #{pair_id} under run {run_id}…")
        worker = Worker(learn.explain_pair, self.workspace, run_id, pair_id, loads_torch=True)
        worker.progress.connect(lambda text: self.status.setText(f"{text}…"))
        worker.finished.connect(self._explained)
        worker.failed.connect(self._failed)
        start_worker(worker)

    def _explained(self, result: learn.RealPair) -> None:
        self.computing = False
        self._show_result(result)
        self._update_state()
        self.status_message.emit(f"Learn: pair #{result.pair_id} under run {result.run_id}, "
                                 f"loss {learn.num(result.numbers.loss)}")

    def _show_result(self, result: learn.RealPair | None) -> None:
        self.result = result
        self.texts.setVisible(result is not None)
        self.calculator_button.setEnabled(result is not None)
        if result is None:
            self.steps.set_steps([])
            self.steps.title.setText("Six steps, with your numbers")
            self.steps.why.setText("The same walk as the worked example, with the log-probabilities the run's "
                                   "model gives one of your pairs.")
            self.summary.setText("")
            return
        i = result.inputs
        self.prompt_box.text.setText(learn.shorten(result.prompt, TEXT_LIMIT))
        self.prompt_box.meta.setText({True: "held out: the run never trained on it",
                                      False: "in the run's training split"}.get(result.held_out, ""))
        self.chosen_box.text.setText(learn.shorten(result.chosen, TEXT_LIMIT))
        self.chosen_box.meta.setText(f"log π {learn.num(i.policy_chosen, digits=2)} · "
                                     f"ref {learn.num(i.reference_chosen, digits=2)} · {i.chosen_tokens} tokens")
        self.rejected_box.text.setText(learn.shorten(result.rejected, TEXT_LIMIT))
        self.rejected_box.meta.setText(f"log π {learn.num(i.policy_rejected, digits=2)} · "
                                       f"ref {learn.num(i.reference_rejected, digits=2)} · {i.rejected_tokens} tokens")
        self.steps.set_steps(result.steps)
        n = result.numbers
        notes = [] if result.loss_type == "sigmoid" else [f"the run trained with the {result.loss_type} loss"]
        if result.sft_weight > 0:
            notes.append(f"its training loss also had an SFT term (weight {result.sft_weight:g}), left out here")
        self.summary.setText(f"β {n.beta:g} · margin <b>{learn.num(n.margin, signed=True)}</b> · "
                             f"P <b>{learn.percent(n.preference)}</b> · loss <b>{learn.num(n.loss)}</b>" + (
                                 f"<br><span style='color:{colors()['muted']}'>{'; '.join(notes)}</span>" if notes else ""))
        self.status.setText(f"Pair #{result.pair_id} under run {result.run_id}: policy = base + the run's adapter, "
                            "reference = the base model.")

    def _send_to_calculator(self) -> None:
        if self.result is not None:
            n = self.result.numbers
            self.open_in_calculator.emit(n.beta, n.chosen_logratio, n.rejected_logratio)

    def refresh_theme(self) -> None:
        for box in (self.prompt_box, self.chosen_box, self.rejected_box):
            box.refresh_theme()
        self.steps.refresh_theme()
