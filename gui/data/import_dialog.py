"""File ▸ Import: the command line's importer behind a dialog.

The same reader (``core.formats.read_preference_file``) and the same all-or-nothing store
(``storage.ingest.import_records``) as ``main.py import``; a bad file is refused whole and
the dialog names the line and the field. The work runs on a worker thread
(``gui.common.workers``), reporting progress to the bar, so a 100,000-row file never freezes the app.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QDialog, QFileDialog, QFormLayout, QFrame, QHBoxLayout, QLabel,
                               QLineEdit, QProgressBar, QPushButton, QVBoxLayout, QWidget)

from gui.common.workers import Worker, start_worker

FORMAT_CHOICES = (
    ("auto", "Detect from the first row"),
    ("standard", "TRL standard — prompt, chosen, rejected"),
    ("conversational", "TRL conversational — lists of messages"),
    ("implicit", "Implicit prompt — chosen/rejected only (e.g. Anthropic HH)"),
    ("candidates", "Candidates to label — prompt + responses"),
)
FILE_FILTER = "Preference files (*.jsonl *.ndjson *.json *.csv);;All files (*)"


@dataclass
class ImportOutcome:
    """What an import did, or where the file is wrong (plain data, sent from the worker)."""

    path: str
    ok: bool
    description: str = ""        # e.g. "standard rows in JSONL (detected)"
    rows: int = 0
    pairs_added: int = 0
    verdicts_added: int = 0
    duplicates: int = 0
    line: int = 0                # where the file is wrong (0: the file as a whole)
    field: str | None = None
    message: str = ""

    def summary_text(self) -> str:
        return (f"Added {self.pairs_added:,} pairs and {self.verdicts_added:,} labels from {self.rows:,} rows "
                f"({self.description}); {self.duplicates:,} rows were already in the workspace.")

    def error_text(self) -> str:
        where = f"Line {self.line}" if self.line else "The file"
        what = f", field '{self.field}'" if self.field else ""
        return f"{where}{what}: {self.message}"


def import_file(location: str, path: str, format: str, source: str,
                report: Callable[[object], None]) -> ImportOutcome:
    """Read and store one file (runs on a worker thread; touches no widget).

    ``report`` receives ``(stage, done, total)`` with stage "reading" or "storing".
    """
    from core.formats import FormatError, read_preference_file
    from storage.ingest import IngestError, import_records
    from storage.workspace import Workspace

    try:
        parsed = read_preference_file(path, format, progress=lambda d, t: report(("reading", d, t)))
    except FormatError as exc:
        return ImportOutcome(path, False, line=exc.line, field=exc.field, message=exc.message)
    ws = Workspace.open(location, create=False)
    try:
        summary = import_records(ws, parsed.records, source or Path(path).name,
                                 progress=lambda d, t: report(("storing", d, t)))
    except IngestError as exc:
        return ImportOutcome(path, False, line=exc.line, field=exc.field, message=exc.message)
    finally:
        ws.close()
    return ImportOutcome(path, True, parsed.describe(), summary.rows, summary.pairs_added, summary.verdicts_added,
                         summary.duplicates)


class ImportDialog(QDialog):
    """Choose a file, a format and a source name; import; read the outcome."""

    imported = Signal(object)   # ImportOutcome of a successful import
    import_ended = Signal(object)  # ImportOutcome (failed or not) when the work ends

    def __init__(self, location: str, path: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self.location = location
        self.outcome: ImportOutcome | None = None
        self.setWindowTitle("Import preference data")
        self.setMinimumWidth(620)

        self.path = QLineEdit(path)
        self.path.setPlaceholderText("a .jsonl, .json or .csv file")
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._choose)
        file_row = QHBoxLayout()
        file_row.addWidget(self.path, 1)
        file_row.addWidget(browse)
        self.format = QComboBox()
        for key, label in FORMAT_CHOICES:
            self.format.addItem(label, key)
        self.source = QLineEdit()
        self.source.setPlaceholderText("the file name")
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        form.addRow("File", file_row)
        form.addRow("Format", self.format)
        form.addRow("Source name", self.source)

        note = QLabel("Labelled rows keep their labels (as the file's own annotator). A file with one bad row "
                      "is refused whole; importing the same file twice adds nothing.")
        note.setObjectName("muted")
        note.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setObjectName("importProgress")
        self.progress.setVisible(False)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.error_box = QFrame()
        self.error_box.setObjectName("card")
        error_layout = QVBoxLayout(self.error_box)
        self.error_title = QLabel("Nothing was imported")
        self.error_title.setObjectName("stat")
        self.error_where = QLabel("")
        self.error_where.setWordWrap(True)
        self.error_where.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_file = QLabel("")
        self.error_file.setObjectName("muted")
        self.error_file.setWordWrap(True)
        for widget in (self.error_title, self.error_where, self.error_file):
            error_layout.addWidget(widget)
        self.error_box.setVisible(False)

        self.import_button = QPushButton("Import")
        self.import_button.setObjectName("primary")
        self.import_button.clicked.connect(lambda: self.start_import())
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)
        buttons.addWidget(self.import_button)

        layout = QVBoxLayout(self)
        layout.setSpacing(12)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.error_box)
        layout.addLayout(buttons)

    def _choose(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import preference data", self.path.text(), FILE_FILTER)
        if path:
            self.path.setText(path)

    @property
    def running(self) -> bool:
        return not self.import_button.isEnabled()

    def start_import(self, path: str | None = None, format: str | None = None, source: str | None = None) -> None:
        if path is not None:
            self.path.setText(path)
        if format is not None:
            self.format.setCurrentIndex(self.format.findData(format))
        if source is not None:
            self.source.setText(source)
        file_path = self.path.text().strip()
        if not file_path:
            self._show_error(ImportOutcome("", False, message="choose a file to import"))
            return
        self.error_box.setVisible(False)
        self.import_button.setEnabled(False)
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.status.setText(f"Reading {Path(file_path).name}…")
        worker = Worker(import_file, self.location, file_path, self.format.currentData(), self.source.text().strip())
        worker.progress.connect(self._on_progress)
        worker.finished.connect(self._on_finished)
        worker.failed.connect(self._on_failed)
        start_worker(worker)

    def _on_progress(self, report: object) -> None:
        stage, done, total = report
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)
        self.progress.setFormat(f"{stage} %v / %m")
        self.status.setText(f"{stage.capitalize()}… {done:,} of {total:,}")

    def _on_finished(self, outcome: ImportOutcome) -> None:
        self.outcome = outcome
        self.import_button.setEnabled(True)
        self.progress.setVisible(False)
        if outcome.ok:
            self.status.setText(outcome.summary_text())
            self.imported.emit(outcome)
        else:
            self._show_error(outcome)
        self.import_ended.emit(outcome)

    def _on_failed(self, message: str) -> None:
        self._on_finished(ImportOutcome(self.path.text().strip(), False, message=message))

    def _show_error(self, outcome: ImportOutcome) -> None:
        self.outcome = outcome
        self.status.setText("")
        self.error_where.setText(outcome.error_text())
        self.error_file.setText(outcome.path)
        self.error_box.setVisible(True)

    def reject(self) -> None:
        if self.running:  # the import finishes (all or nothing) before the dialog may close
            self.status.setText("Finishing the import before closing…")
            return
        super().reject()
