"""File ▸ Generate candidates: a form over ``core.operations.generate.generate_candidates``, the
operation ``main.py generate`` runs.

Pick the model (the base, or the base plus a run's adapter), the prompts (those without a
verdict, every prompt of the workspace, a prompts-only file, or typed one per line) and the
sampling settings. The generation runs on a ``Worker`` thread (never the UI thread) with a
progress bar, tokens/s and Cancel (the replies of the batches already done are kept); at the
end a summary, and ``changes_made`` carries the new pairs to the other screens.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QDialog, QDoubleSpinBox, QFileDialog, QFrame, QGridLayout, QHBoxLayout,
                               QLabel, QLineEdit, QPlainTextEdit, QProgressBar, QPushButton, QSpinBox, QVBoxLayout,
                               QWidget)

from core.engine.generation import GenerationProgress, SamplingSettings
from core.operations.data import CancelFlag
from core.operations.generate import GenerateOutcome, GenerateRequest, check_request, generate_candidates, model_choices
from gui.common.workers import Worker, start_worker
from gui.data.dialog_form import form_rows, muted_note

SOURCES = (("unlabelled", "Prompts without a verdict"), ("workspace", "Every prompt of the workspace"),
           ("file", "A prompts file"), ("typed", "Typed below, one per line"))
FILE_FILTER = "Prompts (*.jsonl *.json *.csv *.txt);;All files (*)"


def run_generation(workspace, request: GenerateRequest, cancelled: CancelFlag, report) -> GenerateOutcome:
    """On the worker thread: the operation, its progress reported as plain data."""
    return generate_candidates(workspace, request, progress=report, should_stop=cancelled)


def _spin(low: int, high: int, value: int, tip: str) -> QSpinBox:
    box = QSpinBox()
    box.setRange(low, high)
    box.setValue(value)
    box.setToolTip(tip)
    return box


def _real(low: float, high: float, value: float, step: float, tip: str) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(low, high)
    box.setDecimals(2)
    box.setSingleStep(step)
    box.setValue(value)
    box.setToolTip(tip)
    return box


class GenerateDialog(QDialog):
    """Choose a model, prompts and sampling settings; generate; read the outcome."""

    changes_made = Signal(object)     # core.operations.changes.Changes of the new pairs
    generation_ended = Signal(object)  # GenerateOutcome, or None when it failed

    def __init__(self, workspace, db, parent: QWidget | None = None, prompts=None):
        super().__init__(parent)
        self.workspace, self.db = workspace, db
        self.outcome: GenerateOutcome | None = None
        self._cancel: CancelFlag | None = None
        self.setWindowTitle("Generate candidates")
        self.setMinimumWidth(640)

        title = QLabel("Generate candidates")
        title.setObjectName("subheading")
        intro = muted_note("Sample several replies per prompt from a model; each two different replies of a prompt "
                           "become a pair to judge in Annotate, tagged with the model and these settings.")

        self.model = QComboBox()
        self.model.addItem("Loading the models…", None)
        self.model.setEnabled(False)
        self.source = QComboBox()
        for key, label in SOURCES:
            self.source.addItem(label, key)
        self.source.currentIndexChanged.connect(self._source_changed)
        self.path = QLineEdit()
        self.path.setPlaceholderText(".jsonl / .json rows with a \"prompt\" field, .csv with a prompt column, "
                                     ".txt one per line")
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._choose)
        self.file_row = QWidget()
        file_layout = QHBoxLayout(self.file_row)
        file_layout.setContentsMargins(0, 0, 0, 0)
        file_layout.addWidget(self.path, 1)
        file_layout.addWidget(browse)
        self.typed = QPlainTextEdit()
        self.typed.setPlaceholderText("One prompt per line")
        self.typed.setFixedHeight(96)
        self.limit = _spin(0, 1_000_000, 20, "at most this many prompts (0: all of them)")
        self.limit.setSpecialValueText("all")
        self.limit.setFixedWidth(120)
        limit_row = QHBoxLayout()
        limit_row.addWidget(self.limit)
        limit_row.addWidget(muted_note("prompts, in the order they were added (0: all)"), 1)
        form = form_rows([("Model", self.model), ("Prompts", self.source), ("File", self.file_row),
                          ("Typed prompts", self.typed), ("At most", limit_row)])
        self.form = form

        defaults = SamplingSettings(n=4)
        self.n = _spin(2, 64, defaults.n, "replies per prompt; consecutive replies pair up: n/2 pairs per prompt")
        self.temperature = _real(0.0, 2.0, defaults.temperature, 0.05, "0 = greedy (always the likeliest token)")
        self.top_p = _real(0.01, 1.0, defaults.top_p, 0.05, "sample from the smallest set of tokens holding this "
                                                              "much probability")
        self.max_new_tokens = _spin(1, 4096, defaults.max_new_tokens, "a reply stops at the model's end of turn, "
                                                                      "or here")
        self.seed = _spin(0, 2_147_483_647, defaults.seed, "the same prompts, model and seed give the same replies")
        sampling = QGridLayout()
        sampling.setHorizontalSpacing(14)
        for column, (label, box) in enumerate([("Replies per prompt", self.n), ("Temperature", self.temperature),
                                               ("Top-p", self.top_p), ("Max new tokens", self.max_new_tokens),
                                               ("Seed", self.seed)]):
            caption = QLabel(label)
            caption.setObjectName("muted")
            box.setFixedWidth(120)
            sampling.addWidget(caption, 0, column)
            sampling.addWidget(box, 1, column)
        sampling.setColumnStretch(5, 1)
        sampling_title = QLabel("Sampling")
        sampling_title.setObjectName("subheading")
        pairing = muted_note("Pairs: the distinct replies of a prompt in order, (1, 2), (3, 4)… — each reply is "
                             "judged once, as in the paper's setting. Identical replies never make a pair.")

        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.rate = QLabel("")
        self.rate.setObjectName("stat")
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.result_box = QFrame()
        self.result_box.setObjectName("card")
        result_layout = QVBoxLayout(self.result_box)
        result_layout.addWidget(self.rate)
        result_layout.addWidget(self.progress)
        result_layout.addWidget(self.status)
        self.result_box.setVisible(False)

        self.generate_button = QPushButton("Generate")
        self.generate_button.setObjectName("primary")
        self.generate_button.clicked.connect(lambda: self.start())
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self._close_or_cancel)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)
        buttons.addWidget(self.generate_button)

        layout = QVBoxLayout(self)
        layout.setSpacing(10)
        layout.setContentsMargins(20, 18, 20, 18)
        layout.addWidget(title)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addSpacing(4)
        layout.addWidget(sampling_title)
        layout.addLayout(sampling)
        layout.addWidget(pairing)
        layout.addWidget(self.result_box)
        layout.addStretch(1)
        layout.addLayout(buttons)

        if prompts:
            self.source.setCurrentIndex(self.source.findData("typed"))
            self.typed.setPlainText("\n".join(p if isinstance(p, str) else p[-1]["content"] for p in prompts))
        self._source_changed()
        self.db.submit(model_choices, workspace, on_done=self._models_loaded, on_failed=self._models_failed)

    # -- the form -------------------------------------------------------------------------------
    def _models_loaded(self, choices) -> None:
        self.model.clear()
        for choice in choices:
            label = "Base model" if choice.run_id is None else f"{choice.label} — run {choice.run_id}"
            self.model.addItem(label, choice.key)
        self.model.setEnabled(True)

    def _models_failed(self, exc: BaseException) -> None:
        self.model.clear()
        self.model.addItem("Base model", "base")
        self.model.setEnabled(True)
        self._say(f"Could not list the runs: {exc}")

    def _source_changed(self) -> None:
        key = self.source.currentData()
        for widget, shown in ((self.file_row, key == "file"), (self.typed, key == "typed")):
            widget.setVisible(shown)
            self.form.labelForField(widget).setVisible(shown)

    def _choose(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Prompts to generate for", self.path.text(), FILE_FILTER)
        if path:
            self.path.setText(path)

    def request(self) -> GenerateRequest:
        settings = SamplingSettings(temperature=self.temperature.value(), top_p=self.top_p.value(),
                                    max_new_tokens=self.max_new_tokens.value(), seed=self.seed.value(),
                                    n=self.n.value())
        key = self.source.currentData()
        prompts = [line for line in self.typed.toPlainText().splitlines() if line.strip()] if key == "typed" else None
        source = self.path.text().strip() if key == "file" else (key if key != "typed" else None)
        return GenerateRequest(self.model.currentData() or "base", prompts=prompts, prompt_source=source,
                               settings=settings, limit=self.limit.value() or None)

    @property
    def running(self) -> bool:
        return self._cancel is not None

    # -- running -------------------------------------------------------------------------------
    def start(self) -> None:
        request = self.request()
        if request.prompt_source == "" or (request.prompts is not None and not request.prompts):
            self._say("Choose a prompts file." if request.prompts is None else "Type at least one prompt.")
            return
        try:
            check_request(request)
        except ValueError as exc:
            self._say(str(exc))
            return
        self.outcome = None
        self._cancel = CancelFlag()
        self.generate_button.setEnabled(False)
        self.close_button.setText("Cancel")
        self.result_box.setVisible(True)
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.rate.setText("Loading the model…")
        self.status.setText(f"{self.model.currentText()}; the first run loads the libraries (a few seconds).")
        worker = Worker(run_generation, self.workspace, request, self._cancel, loads_torch=True)
        worker.progress.connect(self._on_progress)
        worker.finished.connect(self._on_finished)
        worker.failed.connect(self._on_failed)
        start_worker(worker)

    def cancel(self) -> None:
        if self._cancel is not None:
            self._cancel.cancel()
            self.status.setText("Cancelling… the replies of the batches already done are kept.")

    def _close_or_cancel(self) -> None:
        if self.running:
            self.cancel()
        else:
            self.reject()

    def _on_progress(self, p: GenerationProgress) -> None:
        if self._cancel is None or self._cancel():
            return
        self.progress.setRange(0, max(1, p.total))
        self.progress.setValue(p.done)
        self.rate.setText(f"{p.tokens_per_second:,.0f} tokens/s")
        self.status.setText(f"{p.done:,} of {p.total:,} replies done · {p.tokens:,} tokens in {p.seconds:.1f} s")

    def _finish(self) -> None:
        self._cancel = None
        self.generate_button.setEnabled(True)
        self.close_button.setText("Close")
        self.progress.setVisible(False)

    def _on_finished(self, outcome: GenerateOutcome) -> None:
        self._finish()
        self.outcome = outcome
        self.rate.setText(f"{outcome.pairs:,} new pairs to judge" if outcome.replies else "Nothing generated")
        self.status.setText(outcome.summary_text() + (". They are in the Annotate queue." if outcome.pairs else "."))
        if outcome.changes:
            self.changes_made.emit(outcome.changes)
        self.generation_ended.emit(outcome)

    def _on_failed(self, message: str) -> None:
        self._finish()
        self.rate.setText("Nothing was generated")
        self.status.setText(message)
        self.generation_ended.emit(None)

    def _say(self, message: str) -> None:
        self.result_box.setVisible(True)
        self.progress.setVisible(False)
        self.rate.setText("")
        self.status.setText(message)

    def reject(self) -> None:
        if self.running:   # the worker ends (whole, or cancelled) before the dialog closes
            self.cancel()
            return
        super().reject()
