"""File ▸ Export: a form over ``core.operations.data.export_training_data``, the function
``main.py export`` runs: the verdicts merged by the chosen policy, written as TRL-ready JSONL or
Parquet, or as OpenAI preference JSONL (whole or not at all), on a worker thread. The file type
follows the file name's suffix; choosing one in the form renames the file to match.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QDialog, QFileDialog, QHBoxLayout, QLabel, QLineEdit, QPushButton,
                               QVBoxLayout, QWidget)

from core.operations.data import ExportReport, export_training_data
from core.operations.wording import plural
from gui.common.workers import Worker, start_worker
from gui.data.dialog_form import form_rows, muted_note
from storage.training_set import POLICY_LABELS
from storage.workspace import Workspace

FORMAT_LABELS = {"trl": "TRL standard (prompt, chosen, rejected strings)",
                 "conversational": "TRL conversational (lists of messages)",
                 "openai": "OpenAI preference fine-tuning (JSONL only)"}
FILE_TYPES = {".jsonl": "JSON Lines (.jsonl)", ".parquet": "Parquet (.parquet)"}
SPLIT_LABELS = {"all": "Train and eval, with a 'split' column", "train": "Train only", "eval": "Eval only"}


def describe_export(report: ExportReport) -> str:
    dropped = ", ".join(f"{reason.replace('_', ' ')} {n}" for reason, n in report.dropped.items() if n) or "none"
    return (f"Wrote {plural(report.written, 'example')} to {report.path} ({report.train:,} train, {report.eval:,} eval). "
            f"Not exported: {dropped}.")


def run_export(workspace: Workspace, path: str, format: str, policy: str, split: str,
               report: Callable[[object], None]) -> ExportReport:
    """``core.operations.data.export_training_data`` on the worker thread."""
    return export_training_data(workspace, path, format, policy, split, progress=report)


class ExportDialog(QDialog):
    export_ended = Signal(object)   # ExportReport, or a str message on failure

    def __init__(self, workspace: Workspace, default_dir: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self.workspace = workspace
        self.setWindowTitle("Export training data")
        self.setMinimumWidth(600)
        self.path = QLineEdit(str(Path(default_dir) / "preferences.jsonl") if default_dir else "")
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._choose)
        row = QHBoxLayout()
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        self.format, self.file_type, self.policy, self.split = QComboBox(), QComboBox(), QComboBox(), QComboBox()
        for combo, labels in ((self.format, FORMAT_LABELS), (self.file_type, FILE_TYPES),
                              (self.policy, POLICY_LABELS), (self.split, SPLIT_LABELS)):
            for key, label in labels.items():
                combo.addItem(label, key)
        self.file_type.currentIndexChanged.connect(self._file_type_chosen)
        self.format.currentIndexChanged.connect(self._format_chosen)
        self.path.textChanged.connect(self._path_typed)
        form = form_rows([("File", row), ("Format", self.format), ("File type", self.file_type),
                          ("Merge verdicts", self.policy), ("Examples", self.split)])
        note = muted_note("Ties, both-bad and skipped pairs never become examples; an owner's resolution "
                          "overrides the merge policy.")
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
        path, _ = QFileDialog.getSaveFileName(self, "Export training data", self.path.text(),
                                              "JSON Lines (*.jsonl);;Parquet (*.parquet)")
        if path:
            self.path.setText(path)

    def _file_type_chosen(self) -> None:
        suffix = self.file_type.currentData()
        text = self.path.text().strip()
        if text and Path(text).suffix.lower() != suffix:
            self.path.setText(str(Path(text).with_suffix(suffix)))
        if suffix == ".parquet" and self.format.currentData() == "openai":
            self.format.setCurrentIndex(self.format.findData("trl"))

    def _format_chosen(self) -> None:
        if self.format.currentData() == "openai" and self.file_type.currentData() != ".jsonl":
            self.file_type.setCurrentIndex(self.file_type.findData(".jsonl"))

    def _path_typed(self, text: str) -> None:
        index = self.file_type.findData(Path(text.strip()).suffix.lower())
        if index >= 0 and index != self.file_type.currentIndex():
            self.file_type.blockSignals(True)
            self.file_type.setCurrentIndex(index)
            self.file_type.blockSignals(False)

    def start_export(self, path: str | None = None, format: str | None = None) -> None:
        if path is not None:
            self.path.setText(path)
        if format is not None:
            self.format.setCurrentIndex(self.format.findData(format))
        self.export_button.setEnabled(False)
        self.status.setText("Exporting…")
        worker = Worker(run_export, self.workspace, self.path.text().strip(), self.format.currentData(),
                        self.policy.currentData(), self.split.currentData())
        worker.finished.connect(self._on_finished)
        worker.failed.connect(self._on_failed)
        start_worker(worker)

    def _on_finished(self, report: ExportReport) -> None:
        self.export_button.setEnabled(True)
        self.status.setText(describe_export(report))
        self.adjustSize()
        self.export_ended.emit(report)

    def _on_failed(self, message: str) -> None:
        self.export_button.setEnabled(True)
        self.status.setText(f"Nothing was written: {message}")
        self.export_ended.emit(message)

    def reject(self) -> None:
        if not self.export_button.isEnabled():
            return  # the file is written whole or not at all; let it finish
        super().reject()
