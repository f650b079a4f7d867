"""File ▸ Export my verdicts as a bundle… and File ▸ Merge a bundle…: forms over
``core.operations.bundles`` (``export_bundle``, ``merge_bundle``), the functions
``main.py bundle export`` / ``bundle merge`` run, on a worker thread.

The merge reports its ``Changes`` (``changes_made``) for the main window to forward to
every screen; a bad bundle is refused whole and the dialog says where, with nothing written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QDialog, QFileDialog, QFrame, QHBoxLayout, QLabel, QLineEdit,
                               QProgressBar, QPushButton, QVBoxLayout, QWidget)

from core.operations.bundles import (BUNDLE_SUFFIX, BundleExportReport, BundleMergeReport, bundle_annotators,
                                     export_bundle, merge_bundle)
from core.operations.data import DataProgress, InputRefused
from gui.common.workers import Worker, start_worker
from gui.data.dialog_form import form_rows, muted_note
from storage.workspace import Workspace

FILE_FILTER = f"DPO Studio bundles (*{BUNDLE_SUFFIX});;All files (*)"


@dataclass(frozen=True)
class BundleOutcome:
    """How an export or a merge ended (plain data, sent from the worker): the report, or why not."""

    ok: bool
    report: BundleExportReport | BundleMergeReport | None = None
    message: str = ""            # why not, without the file's name
    path: str = ""               # the file it is about
    line: int = 0                # where in the file (0: the file as a whole)
    field: str | None = None

    @classmethod
    def refused(cls, exc: InputRefused) -> "BundleOutcome":
        return cls(False, message=exc.message, path=exc.path, line=exc.line, field=exc.field)

    def error_text(self) -> str:
        where = f"Line {self.line}{f', field {self.field!r}' if self.field else ''}: " if self.line else ""
        return f"{where}{self.message}"


def load_annotators(workspace: Workspace, report: Callable[[object], None]) -> list[str]:
    return bundle_annotators(workspace)


def run_bundle_export(workspace: Workspace, annotator: str, path: str,
                      report: Callable[[object], None]) -> BundleOutcome:
    """``core.operations.bundles.export_bundle`` on the worker thread, its ending as an outcome."""
    try:
        return BundleOutcome(True, export_bundle(workspace, annotator, path, progress=report))
    except InputRefused as exc:
        return BundleOutcome.refused(exc)


def run_bundle_merge(workspace: Workspace, path: str, report: Callable[[object], None]) -> BundleOutcome:
    """``core.operations.bundles.merge_bundle`` on the worker thread, its ending as an outcome."""
    try:
        return BundleOutcome(True, merge_bundle(workspace, path, progress=report))
    except InputRefused as exc:
        return BundleOutcome.refused(exc)


def _file_row(line: QLineEdit, choose: Callable[[], None]) -> QHBoxLayout:
    browse = QPushButton("Choose…")
    browse.clicked.connect(choose)
    row = QHBoxLayout()
    row.addWidget(line, 1)
    row.addWidget(browse)
    return row


def _status_label() -> QLabel:
    label = QLabel("")
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


class _BundleDialog(QDialog):
    """What both dialogs share: a file field, a status line, a busy bar, Close and one action button."""

    def __init__(self, title: str, action: str, parent: QWidget | None):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setMinimumWidth(620)
        self.path = QLineEdit()
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.status = _status_label()
        self.action_button = QPushButton(action)
        self.action_button.setObjectName("primary")
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.reject)
        self.buttons = QHBoxLayout()
        self.buttons.addStretch(1)
        self.buttons.addWidget(self.close_button)
        self.buttons.addWidget(self.action_button)

    @property
    def running(self) -> bool:
        return self.progress.isVisible()

    def _start(self, fn, *args, text: str) -> None:
        self.action_button.setEnabled(False)
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.status.setText(text)
        worker = Worker(fn, *args)
        worker.progress.connect(self._on_progress)
        worker.finished.connect(self._on_finished)
        worker.failed.connect(lambda message: self._on_finished(BundleOutcome(False, message=message)))
        start_worker(worker)

    def _on_progress(self, report: DataProgress) -> None:
        if report.total > 0:
            self.progress.setRange(0, report.total)
            self.progress.setValue(report.done)

    def _on_finished(self, outcome: BundleOutcome) -> None:
        self.progress.setVisible(False)
        self.action_button.setEnabled(True)
        self.status.setText(outcome.report.summary_text() if outcome.ok
                            else f"Nothing was written: {outcome.error_text()}")
        self._ended(outcome)
        self.adjustSize()   # room for the whole message (it may wrap over several lines)

    def _ended(self, outcome: BundleOutcome) -> None:
        raise NotImplementedError

    def reject(self) -> None:
        if self.running:
            return  # written whole or not at all; let it finish
        super().reject()


class ExportBundleDialog(_BundleDialog):
    """Choose whose verdicts (normally yours) and a file; write the bundle."""

    export_ended = Signal(object)   # BundleOutcome

    def __init__(self, workspace: Workspace, annotator: str | None = None, default_dir: str = "",
                 parent: QWidget | None = None):
        super().__init__("Export my verdicts as a bundle", "Export", parent)
        self.workspace = workspace
        self.default_dir = default_dir
        self._wanted = annotator or ""
        self._suggestion = ""
        self.annotator = QComboBox()
        self.annotator.setMinimumWidth(240)
        self.annotator.setEnabled(False)
        self.annotator.currentTextChanged.connect(self._suggest_path)
        self.path.setPlaceholderText(f"a {BUNDLE_SUFFIX} file")
        form = form_rows([("Whose verdicts", self.annotator), ("File", _file_row(self.path, self._choose))])
        note = muted_note("The bundle holds these verdicts (with notes, time spent and when they were given), "
                          "the ones taken back, and the pairs they judge, so the owner can merge it into their "
                          "workspace. Send it to the workspace's owner.")
        self.action_button.setEnabled(False)
        self.action_button.clicked.connect(lambda: self.start_export())
        layout = QVBoxLayout(self)
        layout.setSpacing(12)
        layout.addLayout(form)
        for widget in (note, self.progress, self.status):
            layout.addWidget(widget)
        layout.addLayout(self.buttons)
        self.names_loaded = False
        worker = Worker(load_annotators, workspace)
        worker.finished.connect(self._on_names)
        worker.failed.connect(lambda message: self.status.setText(f"Cannot list the annotators: {message}"))
        start_worker(worker)

    def _on_names(self, names: list[str]) -> None:
        self.names_loaded = True
        self.annotator.addItems(names)
        self.annotator.setEnabled(bool(names))
        if self._wanted in names:
            self.annotator.setCurrentText(self._wanted)
        self.action_button.setEnabled(bool(names))
        if not names:
            self.status.setText("Nobody has labelled in this workspace yet: there are no verdicts to export.")

    def _suggest_path(self, name: str) -> None:
        # Follow the chosen annotator until the user types or chooses a file name of their own.
        if name and self.path.text() in ("", self._suggestion):
            self._suggestion = self._suggested_for(name)
            self.path.setText(self._suggestion)

    def _suggested_for(self, name: str) -> str:
        file_name = "".join(c if c.isalnum() or c in "-_." else "-" for c in name) + BUNDLE_SUFFIX
        return str(Path(self.default_dir) / file_name) if self.default_dir else file_name

    def _choose(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export my verdicts as a bundle", self.path.text(), FILE_FILTER)
        if path:
            self.path.setText(path)

    def start_export(self, path: str | None = None, annotator: str | None = None) -> None:
        if annotator is not None:
            self.annotator.setCurrentText(annotator)
        if path is not None:
            self.path.setText(path)
        target = self.path.text().strip()
        if not target:
            self.status.setText("Choose a file to write the bundle to.")
            return
        self._start(run_bundle_export, self.workspace, self.annotator.currentText(), target,
                    text=f"Writing {Path(target).name}…")

    def _ended(self, outcome: BundleOutcome) -> None:
        self.export_ended.emit(outcome)


class MergeBundleDialog(_BundleDialog):
    """Choose a bundle; merge it; read what it added."""

    merge_ended = Signal(object)    # BundleOutcome, ok or not
    changes_made = Signal(object)   # core.operations.changes.Changes of a merge that changed something

    def __init__(self, workspace: Workspace, path: str = "", parent: QWidget | None = None):
        super().__init__("Merge a bundle", "Merge", parent)
        self.workspace = workspace
        self.outcome: BundleOutcome | None = None
        self.path.setText(path)
        self.path.setPlaceholderText(f"a {BUNDLE_SUFFIX} file an annotator sent you")
        form = form_rows([("Bundle", _file_row(self.path, self._choose))])
        note = muted_note("Adds the annotator's verdicts to this workspace, and the pairs it does not have yet "
                          "(matched by their text, not by number). Merging the same bundle twice adds nothing. "
                          "Where this workspace holds the same annotator's verdict on a pair, the newer one stays; "
                          "where annotators differ, the Team tab lists the pair among the disagreements.")
        self.error_box = QFrame()
        self.error_box.setObjectName("card")
        error_layout = QVBoxLayout(self.error_box)
        self.error_title = QLabel("Nothing was merged")
        self.error_title.setObjectName("stat")
        self.error_text = _status_label()
        self.error_file = _status_label()
        self.error_file.setObjectName("muted")
        for widget in (self.error_title, self.error_text, self.error_file):
            error_layout.addWidget(widget)
        self.error_box.setVisible(False)
        self.action_button.clicked.connect(lambda: self.start_merge())
        layout = QVBoxLayout(self)
        layout.setSpacing(12)
        layout.addLayout(form)
        for widget in (note, self.progress, self.status, self.error_box):
            layout.addWidget(widget)
        layout.addLayout(self.buttons)

    def _choose(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Merge a bundle", self.path.text(), FILE_FILTER)
        if path:
            self.path.setText(path)

    def start_merge(self, path: str | None = None) -> None:
        if path is not None:
            self.path.setText(path)
        source = self.path.text().strip()
        self.error_box.setVisible(False)
        if not source:
            self._show_error(BundleOutcome(False, message="choose a bundle file to merge"))
            return
        self._start(run_bundle_merge, self.workspace, source, text=f"Merging {Path(source).name}…")

    def _show_error(self, outcome: BundleOutcome) -> None:
        self.status.setText("")
        text = outcome.error_text()
        self.error_text.setText(text[:1].upper() + text[1:])
        self.error_file.setText(outcome.path)
        self.error_file.setVisible(bool(outcome.path))
        self.error_box.setVisible(True)
        self.adjustSize()

    def _ended(self, outcome: BundleOutcome) -> None:
        self.outcome = outcome
        if not outcome.ok:
            self._show_error(outcome)
        elif outcome.report.changes:
            self.changes_made.emit(outcome.report.changes)
        self.merge_ended.emit(outcome)
