"""File ▸ Export: the training set as TRL-ready JSONL, like ``main.py export``.

Same building blocks as the command: ``storage.training_set.build_training_set`` merges the
verdicts by the chosen policy and ``core.formats.write_preference_file`` writes the file
(whole or not at all). Runs on a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QDialog, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
                               QPushButton, QVBoxLayout, QWidget)

from gui.common.workers import Worker, start_worker

FORMATS = (("trl", "TRL standard (prompt, chosen, rejected strings)"),
           ("conversational", "TRL conversational (lists of messages)"))
POLICIES = (("majority", "Majority of verdicts"), ("unanimous", "Only unanimous pairs"),
            ("all", "Every a/b verdict is an example"))
SPLITS = (("all", "Train and eval, with a 'split' column"), ("train", "Train only"), ("eval", "Eval only"))


@dataclass
class ExportOutcome:
    path: str
    written: int
    train: int
    eval: int
    dropped: dict[str, int]

    def text(self) -> str:
        dropped = ", ".join(f"{reason.replace('_', ' ')} {n}" for reason, n in self.dropped.items() if n) or "none"
        return (f"Wrote {self.written:,} examples to {self.path} ({self.train:,} train, {self.eval:,} eval). "
                f"Not exported: {dropped}.")


def export_file(location: str, path: str, format: str, policy: str, split: str,
                report: Callable[[object], None]) -> ExportOutcome:
    """Build the training set and write it (runs on a worker thread; touches no widget)."""
    from core.formats import write_preference_file
    from storage.training_set import build_training_set
    from storage.workspace import Workspace

    out = Path(path)
    if not out.parent.is_dir():
        raise ValueError(f"{out.parent}: no such folder for the output file")
    ws = Workspace.open(location, create=False)
    try:
        training = build_training_set(ws, policy)
    finally:
        ws.close()
    examples = training.examples if split == "all" else [e for e in training.examples if e.split == split]
    written = write_preference_file(out, examples, format, include_split=split == "all")
    return ExportOutcome(str(out), written, len(training.train), len(training.eval), dict(training.dropped))


class ExportDialog(QDialog):
    export_ended = Signal(object)   # ExportOutcome, or a str message on failure

    def __init__(self, location: str, default_dir: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self.location = location
        self.setWindowTitle("Export training data")
        self.setMinimumWidth(600)
        self.path = QLineEdit(str(Path(default_dir) / "preferences.jsonl") if default_dir else "")
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._choose)
        row = QHBoxLayout()
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        self.format, self.policy, self.split = QComboBox(), QComboBox(), QComboBox()
        for combo, choices in ((self.format, FORMATS), (self.policy, POLICIES), (self.split, SPLITS)):
            for key, label in choices:
                combo.addItem(label, key)
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        form.addRow("File", row)
        form.addRow("Format", self.format)
        form.addRow("Merge verdicts", self.policy)
        form.addRow("Examples", self.split)
        note = QLabel("Ties, both-bad and skipped pairs never become examples; an owner's resolution "
                      "overrides the merge policy.")
        note.setObjectName("muted")
        note.setWordWrap(True)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.export_button = QPushButton("Export")
        self.export_button.setObjectName("primary")
        self.export_button.clicked.connect(lambda: self.start_export())
        close = QPushButton("Close")
        close.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(close)
        buttons.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(self.status)
        layout.addLayout(buttons)

    def _choose(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export training data", self.path.text(), "JSON Lines (*.jsonl)")
        if path:
            self.path.setText(path)

    def start_export(self, path: str | None = None) -> None:
        if path is not None:
            self.path.setText(path)
        self.export_button.setEnabled(False)
        self.status.setText("Exporting…")
        worker = Worker(export_file, self.location, self.path.text().strip(), self.format.currentData(),
                        self.policy.currentData(), self.split.currentData())
        worker.finished.connect(self._on_finished)
        worker.failed.connect(self._on_failed)
        start_worker(worker)

    def _on_finished(self, outcome: ExportOutcome) -> None:
        self.export_button.setEnabled(True)
        self.status.setText(outcome.text())
        self.export_ended.emit(outcome)

    def _on_failed(self, message: str) -> None:
        self.export_button.setEnabled(True)
        self.status.setText(f"Nothing was written: {message}")
        self.export_ended.emit(message)

    def reject(self) -> None:
        if not self.export_button.isEnabled():
            return  # the file is written whole or not at all; let it finish
        super().reject()
