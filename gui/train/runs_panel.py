"""The workspace's training runs: status and settings of each, and what can be done with one
(open its curves, overlay several, resume, export adapter / merged model / metrics / plots,
delete it — after a confirmation; the same actions in the table's context menu).

The rules are ``core.operations.runs``'s (which runs exist, which can be resumed and why not,
the exports). The list is read through the view's ``DatabaseWorker`` (``refresh``) and the row
of the run training now follows that run's own events (``show_live``), not the database.
Exports that copy or load weights run in workers; the panel reports results in its status line.
A deleted run (``core.operations.runs.delete_run`` on the database thread, which refuses a run that
trains or that something depends on) is announced as ``changes_made``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QAbstractItemView, QFileDialog, QHBoxLayout, QHeaderView, QMenu, QMessageBox,
                               QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from core.operations import runs as run_ops
from core.operations.runs import RunRecord
from gui.common.db_worker import DatabaseWorker, Job
from gui.common.theme import named_label
from gui.common.workers import Worker, start_worker
from storage.workspace import Workspace

COLUMNS = ("Run", "Status", "Steps", "Settings", "Base model", "Started")
STATUS_COLUMN, STEPS_COLUMN = 1, 2


class RunsPanel(QWidget):
    open_requested = Signal(str)          # run id
    compare_requested = Signal(list)      # run ids (two or more)
    resume_requested = Signal(str)        # run id
    changes_made = Signal(object)         # Changes(runs=True): a run was deleted
    loaded = Signal()                     # a refresh has come back from the database

    def __init__(self, workspace: Workspace, db: DatabaseWorker, grab_plots: Callable[[], object] | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.workspace = workspace
        self.db = db
        self._grab_plots = grab_plots
        self.has_loaded = False
        self._runs: list[RunRecord] = []
        self.busy_run_id: str | None = None     # the run training now cannot be resumed or exported

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        header = QHBoxLayout()
        title = named_label("Runs", "stat")
        header.addWidget(title)
        self.status_label = named_label("Select a run to open its curves; select several to compare them.",
                                        "runsStatus")
        header.addWidget(self.status_label, 1)
        layout.addLayout(header)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.itemDoubleClicked.connect(lambda _item: self._open_selected())
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self.context_menu)
        layout.addWidget(self.table, 1)

        buttons = QHBoxLayout()
        self.open_button = self._button(buttons, "Open", "Redraw the selected run's curves from the stored metrics.",
                                        self._open_selected)
        self.compare_button = self._button(buttons, "Compare", "Overlay the curves of the selected runs.",
                                           self._compare_selected)
        self.resume_button = self._button(buttons, "Resume", "Continue a stopped, failed or interrupted run "
                                          "from its newest checkpoint.", self._resume_selected)
        buttons.addSpacing(12)
        self.adapter_button = self._button(buttons, "Export adapter…", "Copy the LoRA adapter to a folder "
                                           "(loadable with peft's PeftModel.from_pretrained).", self._ask_export_adapter)
        self.merged_button = self._button(buttons, "Export merged…", "Write the base model with the adapter merged "
                                          "in, as a plain model folder.", self._ask_export_merged)
        self.csv_button = self._button(buttons, "Metrics CSV…", "Save every metric of the run as a CSV file.",
                                       self._ask_export_csv)
        self.png_button = self._button(buttons, "Plots PNG…", "Save the plots as shown as a PNG image.",
                                       self._ask_export_png)
        buttons.addStretch(1)
        self.delete_button = self._button(buttons, "Delete…", "Delete the run: its metrics, pair scores and folder "
                                          "(checkpoints, adapter). Asks first.", self._ask_delete)
        self.refresh_button = self._button(buttons, "Refresh", "Re-read the runs from the workspace.", self.refresh)
        layout.addLayout(buttons)

    @staticmethod
    def _button(row: QHBoxLayout, text: str, tip: str, slot) -> QPushButton:
        button = QPushButton(text)
        button.setToolTip(tip)
        button.clicked.connect(slot)
        row.addWidget(button)
        return button

    # -- the list ---------------------------------------------------------------------------
    def refresh(self) -> Job:
        """Re-read the runs (on the database thread); ``loaded`` fires when they are shown."""
        return self.db.submit(run_ops.list_runs, self.workspace, newest_first=True, on_done=self._show_runs,
                              on_failed=lambda exc: self._say(f"Could not read the runs: {exc}", error=True))

    def _show_runs(self, runs: list[RunRecord]) -> None:
        selected = set(self.selected_run_ids())
        self._runs = list(runs)
        # Columns sized to their contents once, after the fill: sized per item, each of the
        # (runs x 6) items measured every row again (0.43 s of the UI thread for 54 runs).
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.setRowCount(len(self._runs))
        for row, run in enumerate(self._runs):
            started = run.started_at.strftime("%Y-%m-%d %H:%M") if run.started_at else ""
            cells = (run.name or run.id, run.status.value, f"{run.step} / {run.total_steps}",
                     run_ops.settings_summary(run), Path(run.base_model).name or run.base_model, started)
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, run.id)
                if column == 1 and run.error:
                    item.setToolTip(run.error)
                elif column == 3:
                    item.setToolTip(json.dumps(run.config, indent=1, sort_keys=True))
                self.table.setItem(row, column, item)
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.select_runs(selected)
        self._update_buttons()
        self.has_loaded = True
        self.loaded.emit()

    def show_live(self, run_id: str, status: str, step: int, total_steps: int) -> None:
        """The training run's row as its events report it (no database read)."""
        row = next((i for i, run in enumerate(self._runs) if run.id == run_id), None)
        if row is None:
            return
        for column, text in ((STATUS_COLUMN, status), (STEPS_COLUMN, f"{step} / {total_steps}")):
            item = self.table.item(row, column)
            if item is not None and item.text() != text:
                item.setText(text)

    def run_ids(self) -> list[str]:
        return [run.id for run in self._runs]

    def run(self, run_id: str) -> RunRecord | None:
        return next((run for run in self._runs if run.id == run_id), None)

    def selected_run_ids(self) -> list[str]:
        rows = sorted({index.row() for index in self.table.selectionModel().selectedRows()})
        return [self._runs[row].id for row in rows if row < len(self._runs)]

    def select_runs(self, run_ids) -> None:
        wanted = set(run_ids)
        self.table.clearSelection()
        mode = self.table.selectionMode()
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.MultiSelection)
        for row, run in enumerate(self._runs):
            if run.id in wanted:
                self.table.selectRow(row)
        self.table.setSelectionMode(mode)

    def _update_buttons(self) -> None:
        ids = self.selected_run_ids()
        one = len(ids) == 1
        run = self.run(ids[0]) if one else None
        idle = run is not None and run.id != self.busy_run_id
        self.open_button.setEnabled(one)
        self.compare_button.setEnabled(len(ids) >= 2)
        refusal = run_ops.resume_refusal(run.id, run) if run is not None else None
        self.resume_button.setEnabled(idle and refusal is None and self.busy_run_id is None)
        self.resume_button.setToolTip(refusal or "Continue a stopped, failed or interrupted run from its newest "
                                      "checkpoint.")
        has_adapter = idle and bool(run.adapter_path)
        self.adapter_button.setEnabled(has_adapter)
        self.merged_button.setEnabled(has_adapter)
        self.csv_button.setEnabled(one)
        self.png_button.setEnabled(self._grab_plots is not None)
        self.delete_button.setEnabled(idle)

    def set_busy_run(self, run_id: str | None) -> None:
        self.busy_run_id = run_id
        self._update_buttons()

    # -- actions ----------------------------------------------------------------------------
    def _open_selected(self) -> None:
        ids = self.selected_run_ids()
        if ids:
            self.open_requested.emit(ids[0])

    def _compare_selected(self) -> None:
        ids = self.selected_run_ids()
        if len(ids) >= 2:
            self.compare_requested.emit(ids)

    def _resume_selected(self) -> None:
        ids = self.selected_run_ids()
        if len(ids) == 1:
            self.resume_requested.emit(ids[0])

    def context_menu(self, position) -> QMenu:
        """The selected runs' actions, as the buttons allow them now."""
        menu = QMenu(self)
        for button in (self.open_button, self.compare_button, self.resume_button, self.delete_button):
            menu.addAction(button.text(), button.click).setEnabled(button.isEnabled())
        menu.popup(self.table.viewport().mapToGlobal(position))
        return menu

    def _ask_delete(self) -> None:
        run = self._selected_one()
        if run is not None and run.id != self.busy_run_id and self.confirm_delete(run):
            self.delete_run(run.id)

    def confirm_delete(self, run: RunRecord) -> bool:
        box, delete = self.confirmation(run)
        box.exec()
        return box.clickedButton() is delete

    def confirmation(self, run: RunRecord) -> tuple[QMessageBox, QPushButton]:
        """The question asked before ``run`` is deleted, and its Delete button (Cancel is the default)."""
        box = QMessageBox(QMessageBox.Icon.Warning, "Delete the run?", f"Delete run {run.name or run.id} ({run.id})?",
                          parent=self)
        box.setInformativeText("Its metrics, its pair scores and its folder (checkpoints, adapter) are deleted; "
                               "the verdicts it trained on stay. This cannot be undone.")
        delete = box.addButton("Delete", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(box.addButton(QMessageBox.StandardButton.Cancel))
        return box, delete

    def delete_run(self, run_id: str) -> Job:
        """Delete the run (database thread); the refusal, if any, goes to the status line."""
        return self.db.submit(run_ops.delete_run, self.workspace, run_id, on_done=self._deleted,
                              on_failed=lambda exc: self._say(f"Not deleted: {exc}", error=True))

    def _deleted(self, deleted: run_ops.RunDeleted) -> None:
        self._say(deleted.describe(), error=deleted.folder_problem is not None)
        self.changes_made.emit(deleted.changes)

    def _selected_one(self) -> RunRecord | None:
        ids = self.selected_run_ids()
        return self.run(ids[0]) if len(ids) == 1 else None

    def _ask_export_adapter(self) -> None:
        run = self._selected_one()
        folder = run and QFileDialog.getExistingDirectory(self, "Export the adapter into…",
                                                          str(self._exports_dir()))
        if folder:
            self.export_adapter(run.id, Path(folder) / f"{run.name or run.id}-adapter")

    def _ask_export_merged(self) -> None:
        run = self._selected_one()
        folder = run and QFileDialog.getExistingDirectory(self, "Export the merged model into…",
                                                          str(self._exports_dir()))
        if folder:
            self.export_merged(run.id, Path(folder) / f"{run.name or run.id}-merged")

    def _ask_export_csv(self) -> None:
        run = self._selected_one()
        path = run and QFileDialog.getSaveFileName(self, "Save metrics as CSV",
                                                   str(self._exports_dir() / f"{run.name or run.id}-metrics.csv"),
                                                   "CSV files (*.csv)")[0]
        if path:
            self.export_csv(run.id, path)

    def _ask_export_png(self) -> None:
        path = QFileDialog.getSaveFileName(self, "Save the plots as PNG", str(self._exports_dir() / "plots.png"),
                                           "PNG images (*.png)")[0]
        if path:
            self.export_png(path)

    def _exports_dir(self) -> Path:
        try:
            return self.workspace.exports_dir
        except Exception:  # noqa: BLE001 - a database-URL workspace has no folder
            return Path.home()

    def export_adapter(self, run_id: str, destination: str | Path) -> Worker:
        return self._export(run_ops.export_adapter, run_id, destination, "adapter")

    def export_merged(self, run_id: str, destination: str | Path) -> Worker:
        return self._export(run_ops.export_merged, run_id, destination, "merged model")

    def export_csv(self, run_id: str, path: str | Path) -> Job:
        """The metrics CSV, written by the database thread (it reads every metric row)."""
        return self.db.submit(run_ops.export_metrics, self.workspace, run_id, path,
                              on_done=lambda written: self._say(f"Metrics saved to {written}"),
                              on_failed=lambda exc: self._say(f"Could not export the metrics: {exc}", error=True))

    def export_png(self, path: str | Path) -> bool:
        image = self._grab_plots() if self._grab_plots else None
        if image is None or not image.save(str(path)):
            self._say(f"Could not save the plots to {path}", error=True)
            return False
        self._say(f"Plots saved to {path}")
        return True

    def _export(self, fn, run_id: str, destination, what: str) -> Worker:
        def run_export(report):
            return str(fn(self.workspace, run_id, destination))

        worker = Worker(run_export)
        worker.finished.connect(self._on_export_done)
        worker.failed.connect(self._on_export_failed)
        self._say(f"Exporting the {what} of {run_id}…")
        start_worker(worker)
        return worker

    def _on_export_done(self, path: str) -> None:
        self._say(f"Exported to {path}")

    def _on_export_failed(self, message: str) -> None:
        self._say(f"Export failed: {message}", error=True)

    def _say(self, text: str, error: bool = False) -> None:
        self.status_label.setText(text)
        if bool(self.status_label.property("error")) != error:   # the stylesheet colours it by this
            self.status_label.setProperty("error", error)
            self.status_label.style().unpolish(self.status_label)
            self.status_label.style().polish(self.status_label)
