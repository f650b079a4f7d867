"""File ▸ Import: a form over ``core.operations.data.import_file``, the function ``main.py import`` runs.

A bad file is refused whole and the dialog names the line (or item, row) and the field — unless
"Skip bad rows" is ticked: then the good rows are imported and the bad ones listed in a report
file in the workspace's exports folder, which the dialog names. The import runs on a
worker thread (``gui.common.workers``), reporting progress to the bar, so a 100,000-row file
never freezes the app; Cancel stops it with nothing written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QFileDialog, QFrame, QHBoxLayout, QLabel,
                               QLineEdit, QProgressBar, QPushButton, QVBoxLayout, QWidget)

from core.operations.changes import NOTHING, Changes
from core.operations.data import Cancelled, CancelFlag, DataProgress, ImportReport, InputRefused, import_file
from core.operations.wording import plural
from gui.common.workers import Worker, start_worker
from gui.data.dialog_form import form_rows, muted_note
from storage.workspace import Workspace

FORMAT_CHOICES = (
    ("auto", "Detect from the first row"),
    ("standard", "TRL standard — prompt, chosen, rejected"),
    ("conversational", "TRL conversational — lists of messages"),
    ("implicit", "Implicit prompt — chosen/rejected only (e.g. Anthropic HH)"),
    ("ultrafeedback", "UltraFeedback (HuggingFaceH4) — prompt + whole conversations"),
    ("openai", "OpenAI preference fine-tuning — input, preferred_output, …"),
    ("candidates", "Candidates to label — prompt + responses"),
    ("argilla", "Argilla export — fields + ranking, label or ratings"),
    ("labelstudio", "Label Studio export — pairwise choice"),
)
FILE_FILTER = ("Preference files (*.jsonl *.ndjson *.json *.csv *.parquet *.arrow *.feather);;"
               "All files (*)")


@dataclass(frozen=True)
class ImportOutcome:
    """How an import ended, as the dialog shows it: the operation's report, or where the
    file is wrong, or that it was cancelled (plain data, sent from the worker)."""

    path: str
    ok: bool
    report: ImportReport | None = None
    line: int = 0                # where the file is wrong (0: the file as a whole)
    field: str | None = None
    message: str = ""
    cancelled: bool = False
    where: str = ""              # the place in words: "line 4", "item 2 (line 1)", "row 7"

    @property
    def pairs_added(self) -> int:
        return self.report.pairs_added if self.report else 0

    @property
    def verdicts_added(self) -> int:
        return self.report.verdicts_added if self.report else 0

    @property
    def duplicates(self) -> int:
        return self.report.duplicates if self.report else 0

    @property
    def changes(self) -> Changes:
        return self.report.changes if self.report else NOTHING

    def summary_text(self) -> str:
        r = self.report
        splits = ", ".join(f"{r.pairs_by_split[s]:,} {s}" for s in ("train", "eval") if s in r.pairs_by_split)
        text = (f"Added {plural(r.pairs_added, 'pair')}{f' ({splits})' if splits else ''} and "
                f"{plural(r.verdicts_added, 'label')} "
                f"from {plural(r.rows, 'row')} ({r.description}); "
                f"{plural(r.duplicates, 'row')} {'was' if r.duplicates == 1 else 'were'} already in the workspace.")
        if r.skipped_rows:
            text += f" Left out {plural(r.skipped_rows, 'bad row')}, listed in {r.bad_rows_report}"
        return text

    def error_text(self) -> str:
        place = self.where or (f"line {self.line}" if self.line else "")
        where = place[:1].upper() + place[1:] if place else "The file"
        what = f", field '{self.field}'" if self.field else ""
        return f"{where}{what}: {self.message}"


def run_import(workspace: Workspace, path: str, format: str, source: str, cancelled: CancelFlag,
               report: Callable[[object], None], skip_bad_rows: bool = False) -> ImportOutcome:
    """``core.operations.data.import_file`` on the worker thread, its ending as an outcome."""
    try:
        result = import_file(workspace, path, format, source, progress=report, cancelled=cancelled,
                             skip_bad_rows=skip_bad_rows)
    except InputRefused as exc:
        return ImportOutcome(exc.path or path, False, line=exc.line, field=exc.field, message=exc.message,
                             where=exc.where)
    except Cancelled:
        return ImportOutcome(path, False, message="the import was cancelled", cancelled=True)
    return ImportOutcome(path, True, result)


class ImportDialog(QDialog):
    """Choose a file, a format and a source name; import; read the outcome."""

    imported = Signal(object)   # ImportOutcome of a successful import
    import_ended = Signal(object)  # ImportOutcome (failed or not) when the work ends
    changes_made = Signal(object)  # core.operations.changes.Changes of a successful import

    def __init__(self, workspace: Workspace, path: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self.workspace = workspace
        self.outcome: ImportOutcome | None = None
        self._cancel: CancelFlag | None = None
        self.setWindowTitle("Import preference data")
        self.setMinimumWidth(620)

        self.path = QLineEdit(path)
        self.path.setPlaceholderText("a .jsonl, .json, .csv, .parquet or .arrow file, or a dataset folder")
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._choose)
        folder = QPushButton("Folder…")
        folder.setToolTip("A folder written by datasets' save_to_disk, or a folder of Parquet files")
        folder.clicked.connect(self._choose_folder)
        file_row = QHBoxLayout()
        file_row.addWidget(self.path, 1)
        file_row.addWidget(browse)
        file_row.addWidget(folder)
        self.format = QComboBox()
        for key, label in FORMAT_CHOICES:
            self.format.addItem(label, key)
        self.source = QLineEdit()
        self.source.setPlaceholderText("the file name")
        self.skip_bad_rows = QCheckBox("Skip bad rows — import the good ones and list the bad ones in a report")
        self.skip_bad_rows.setObjectName("skipBadRows")
        form = form_rows([("File", file_row), ("Format", self.format), ("Source name", self.source),
                          ("", self.skip_bad_rows)])
        note = muted_note("Labelled rows keep their labels (as the file's own annotator). A file with one bad "
                          "row is refused whole unless you skip bad rows; importing the same file twice adds "
                          "nothing; Cancel stops an import with nothing written.")
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
        self.close_button.clicked.connect(self._close_or_cancel)
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

    def _choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Import a dataset folder", self.path.text())
        if path:
            self.path.setText(path)

    @property
    def running(self) -> bool:
        return not self.import_button.isEnabled()

    def start_import(self, path: str | None = None, format: str | None = None, source: str | None = None,
                     skip_bad_rows: bool | None = None) -> None:
        if path is not None:
            self.path.setText(path)
        if skip_bad_rows is not None:
            self.skip_bad_rows.setChecked(skip_bad_rows)
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
        self.close_button.setText("Cancel import")
        self._cancel = CancelFlag()
        worker = Worker(run_import, self.workspace, file_path, self.format.currentData(), self.source.text().strip(),
                        self._cancel, skip_bad_rows=self.skip_bad_rows.isChecked())
        worker.progress.connect(self._on_progress)
        worker.finished.connect(self._on_finished)
        worker.failed.connect(self._on_failed)
        start_worker(worker)

    def cancel(self) -> None:
        """Ask a running import to stop; it ends with nothing written."""
        if self._cancel is not None and self.running:
            self._cancel.cancel()
            self.status.setText("Cancelling…")

    def _close_or_cancel(self) -> None:
        if self.running:
            self.cancel()
        else:
            self.reject()

    def _on_progress(self, report: DataProgress) -> None:
        if self._cancel is not None and self._cancel():
            return
        stage = report.stage.value
        self.progress.setRange(0, max(1, report.total))
        self.progress.setValue(report.done)
        self.progress.setFormat(f"{stage} %v / %m")
        self.status.setText(f"{stage.capitalize()}… {report.done:,} of {report.total:,}")

    def _on_finished(self, outcome: ImportOutcome) -> None:
        self.outcome = outcome
        self.import_button.setEnabled(True)
        self.close_button.setText("Close")
        self.progress.setVisible(False)
        if outcome.ok:
            self.status.setText(outcome.summary_text())
            self.adjustSize()   # room for the whole summary (the report's path may wrap)
            self.imported.emit(outcome)
            if outcome.changes:
                self.changes_made.emit(outcome.changes)
        elif outcome.cancelled:
            self.status.setText("Import cancelled: nothing was imported.")
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
        self.adjustSize()   # room for the whole message (it may wrap over several lines)

    def reject(self) -> None:
        if self.running:  # the import ends (whole, or cancelled with nothing written) before the dialog closes
            self.status.setText("Finishing the import before closing… (Cancel import stops it)")
            return
        super().reject()
