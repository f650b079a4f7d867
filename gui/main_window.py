"""The main window: one tab per stage of the loop (annotate, browse, team, train, then the
rounds, chat, blind A/B, evaluate and learn tabs of ``gui.loop_tabs``), the menus and the status bar.

It owns the GUI's one ``DatabaseWorker`` (the only thread that runs the GUI's SQL) and hands it
to every view's constructor. Every ``Changes`` a view or an operation reports goes to every
view's ``on_changes`` (``forward_changes``), so a screen redraws what a write touched — never
because it was shown. The Train tab is built the first time it is shown (importing the
training view pulls in the engine, which the labelling screen never needs). Closing waits
for the verdicts still being stored (those kept in the offline outbox file stay there for the
next start), hands back the reserved pairs, then ends the database thread.

File ▸ Connect to team server… opens a PostgreSQL workspace in a new window, as File ▸ Open
workspace does a folder. The status bar's right end says how the connection stands
("offline — N verdicts waiting"); the title and status bar show the location with any
password masked.
"""

from __future__ import annotations

import time

from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (QApplication, QFileDialog, QLabel, QMainWindow, QMessageBox, QTabWidget,
                               QVBoxLayout, QWidget)

from core.operations.changes import Changes
from core.operations.connection import ConnectionState
from core.operations.outbox import is_unreachable
from gui.annotate.annotate_view import AnnotateView
from gui.common import settings as app_settings
from gui.common import theme
from gui.common.db_worker import DatabaseWorker
from gui.common.read_only_banner import with_read_only_banner
from gui.common.workers import running_workers, wait_for_all_workers
from gui.loop_tabs import LOOP_TABS, LazyPage, placeholder
from gui.pairs.pairs_browser import PairsBrowser
from gui.team.team_panel import TeamPanel
from gui.train.warm_up import warm_up_train_tab
from storage.workspace import SchemaTooNewError, Workspace, WorkspaceError

THEME_SETTING = "view/theme"
# Windows opened from File ▸ Open workspace: kept referenced until they close.
_windows: list["MainWindow"] = []


class MainWindow(QMainWindow):
    def __init__(self, workspace: Workspace, annotator_name: str | None = None, owns_workspace: bool = False):
        super().__init__()
        self.workspace = workspace
        self.owns_workspace = owns_workspace
        self.theme_name = str(app_settings.get_value(THEME_SETTING, "system"))
        if self.theme_name not in theme.THEMES:
            self.theme_name = "system"
        theme.apply_theme(self.theme_name)
        self.setWindowTitle(f"DPO Studio — {workspace.display_location}")
        self.resize(1380, 880)

        self._closing = False
        self.db = DatabaseWorker(self)
        self.db.job_failed.connect(self._on_job_failed)
        remembered = annotator_name or app_settings.remembered_annotator(workspace.location)
        self.annotate = AnnotateView(workspace, self.db, remembered)
        self.pairs = PairsBrowser(workspace, self.db)
        self.team = TeamPanel(workspace, self.db)
        self.train_page = QWidget()
        QVBoxLayout(self.train_page).setContentsMargins(0, 0, 0, 0)
        self.train_view: QWidget | None = None
        self.views: list[QWidget] = []
        for view in (self.annotate, self.pairs, self.team):
            self._add_view(view)

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.annotate, "Annotate")
        self.tabs.addTab(self.pairs, "Pairs")
        self.tabs.addTab(self.team, "Team")
        self.tabs.addTab(self.train_page, "Train")
        self.loop_pages = [LazyPage(tab) for tab in LOOP_TABS]   # rounds, chat, blind A/B, evaluate, learn
        for page in self.loop_pages:
            self.tabs.addTab(page, page.tab.title)
        self.tabs.currentChanged.connect(self._on_tab)
        self.setCentralWidget(with_read_only_banner(self.tabs, workspace))

        self.workspace_label = QLabel(f"Workspace: {workspace.display_location}")
        self.annotator_label = QLabel("")
        self.connection_label = QLabel("")
        self.connection_label.setObjectName("stat")
        self.connection_label.setVisible(False)
        self.statusBar().addPermanentWidget(self.connection_label)
        self.statusBar().addPermanentWidget(self.annotator_label)
        self.statusBar().addWidget(self.workspace_label, 1)
        self._build_menus()

        self.annotate.search_requested.connect(self.search_pairs)
        self.annotate.import_requested.connect(self.open_import)
        self.annotate.annotator_changed.connect(self._on_annotator)
        self.annotate.connect_requested.connect(self.open_connect_dialog)
        self.annotate.connection_changed.connect(self._show_connection)
        self._show_connection(self.annotate.connection)
        if remembered:
            self.annotate.setFocus()
        else:
            self.annotate.show_picker()  # first start on this computer: type a name right away

    # -- changes -----------------------------------------------------------------------
    def _add_view(self, view: QWidget) -> None:
        self.views.append(view)
        status = getattr(view, "status_message", None)
        if status is not None:
            status.connect(self.show_status)
        if hasattr(view, "changes_made"):
            view.changes_made.connect(self.forward_changes)

    def forward_changes(self, changes: Changes) -> None:
        """Give ``changes`` to every view; each redraws what it shows of them."""
        if not changes or self._closing:
            return
        for view in self.views:
            on_changes = getattr(view, "on_changes", None)
            if on_changes is not None:
                on_changes(changes)

    def show_status(self, text: str) -> None:
        self.statusBar().showMessage(text, 6000)

    def _on_job_failed(self, job, exc: BaseException) -> None:
        if job.on_failed is None and not is_unreachable(exc):
            # A read or write nobody answers for: say so rather than nothing (a server away is
            # said once, by the connection line).
            self.show_status(f"A database task failed ({job.name}): {exc.__class__.__name__}: {exc}")

    # -- menus -------------------------------------------------------------------------
    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._add(file_menu, "&Open workspace…", self.choose_workspace, QKeySequence.StandardKey.Open)
        self._add(file_menu, "&Connect to team server…", self.open_connect_dialog)
        file_menu.addSeparator()
        self._add(file_menu, "&Import…", self.open_import, "Ctrl+I")
        self._add(file_menu, "&Export training data…", self.open_export, "Ctrl+E")
        self._add(file_menu, "&Generate candidates…", self.open_generate, "Ctrl+G")
        file_menu.addSeparator()
        self._add(file_menu, "Export my verdicts as a &bundle…", self.open_bundle_export)
        self._add(file_menu, "&Merge a bundle…", self.open_bundle_merge)
        file_menu.addSeparator()
        self._add(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)

        view_menu = self.menuBar().addMenu("&View")
        theme_menu = view_menu.addMenu("&Theme")
        group = QActionGroup(self)
        self.theme_actions: dict[str, QAction] = {}
        for name in theme.THEMES:
            action = QAction(name.capitalize(), self, checkable=True)
            action.setChecked(name == self.theme_name)
            action.triggered.connect(lambda _c=False, n=name: self.set_theme(n))
            group.addAction(action)
            theme_menu.addAction(action)
            self.theme_actions[name] = action
        view_menu.addSeparator()
        header = self.annotate.header
        for toggle in (header.guidelines_toggle, header.raw_toggle, header.diff_toggle):
            action = QAction(toggle.text(), self, checkable=True)
            action.setChecked(toggle.isChecked())
            action.toggled.connect(toggle.setChecked)
            toggle.toggled.connect(action.setChecked)
            view_menu.addAction(action)
        view_menu.addSeparator()
        self._add(view_menu, "Switch &annotator…", self._switch_annotator)

        help_menu = self.menuBar().addMenu("&Help")
        self._add(help_menu, "&Keyboard shortcuts", self.show_keys)
        self._add(help_menu, "&About DPO Studio", self._about)

    def _add(self, menu, text: str, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(lambda _c=False: slot())
        menu.addAction(action)
        return action

    # -- actions -----------------------------------------------------------------------
    def set_theme(self, name: str) -> None:
        self.theme_name = name
        theme.apply_theme(name)
        app_settings.set_value(THEME_SETTING, name)
        self.theme_actions[name].setChecked(True)
        for view in self.views:
            refresh = getattr(view, "refresh_theme", None)
            if refresh is not None:
                refresh()

    def search_pairs(self) -> None:
        self.tabs.setCurrentWidget(self.pairs)
        self.pairs.focus_search()

    def show_keys(self) -> None:
        self.tabs.setCurrentWidget(self.annotate)
        self.annotate.help.show()

    def open_import(self, path: str = ""):
        from gui.data.import_dialog import ImportDialog

        dialog = ImportDialog(self.workspace, path, self)
        dialog.imported.connect(lambda outcome: self._after_import(outcome))
        dialog.open()
        return dialog

    def _after_import(self, outcome) -> None:
        self.forward_changes(Changes(pairs=True, verdicts=bool(outcome.verdicts_added)))
        self.statusBar().showMessage(outcome.summary_text(), 8000)

    def open_export(self):
        from gui.data.export_dialog import ExportDialog

        default_dir = str(self.workspace.exports_dir) if self.workspace.root is not None else ""
        dialog = ExportDialog(self.workspace, default_dir, self)
        dialog.open()
        return dialog

    def open_generate(self, prompts=None):
        """Sample new responses from the base model or a run's adapter; they become pairs to judge."""
        from gui.generate.generate_dialog import GenerateDialog

        dialog = GenerateDialog(self.workspace, self.db, self, prompts=prompts)
        dialog.changes_made.connect(self.forward_changes)
        dialog.open()
        return dialog

    def open_training(self, values: dict):
        """The Train tab with ``values`` in its form (the Rounds tab's next round); returns the view."""
        self.tabs.setCurrentWidget(self.train_page)    # builds the view at its first opening
        form = getattr(self.train_view, "form", None)
        if form is not None:
            form.set_values(values)
        return self.train_view

    def open_bundle_export(self):
        from gui.data.bundle_dialogs import ExportBundleDialog

        default_dir = str(self.workspace.exports_dir) if self.workspace.root is not None else ""
        dialog = ExportBundleDialog(self.workspace, self.annotate.annotator_name, default_dir, self)
        dialog.open()
        return dialog

    def open_bundle_merge(self, path: str = ""):
        from gui.data.bundle_dialogs import MergeBundleDialog

        dialog = MergeBundleDialog(self.workspace, path, self)
        dialog.changes_made.connect(self.forward_changes)
        dialog.open()
        return dialog

    def choose_workspace(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open or create a workspace folder")
        if folder:
            self.open_workspace(folder)

    def open_workspace(self, location: str) -> "MainWindow | None":
        """Open ``location`` in a new window and close this one."""
        try:
            workspace = Workspace.open(location)
        except (WorkspaceError, SchemaTooNewError) as exc:
            QMessageBox.warning(self, "Cannot open the workspace", str(exc))
            return None
        return self.show_workspace(workspace)

    def open_connect_dialog(self):
        """File ▸ Connect to team server…: the dialog opens the database off the UI thread."""
        from gui.data.connect_dialog import ConnectDialog

        dialog = ConnectDialog(self)
        dialog.connected.connect(self.show_workspace)
        dialog.open()
        return dialog

    def show_workspace(self, workspace: Workspace) -> "MainWindow":
        """Show the opened ``workspace`` in a new window (which owns it) and close this one."""
        window = MainWindow(workspace, owns_workspace=True)
        _windows.append(window)
        window.show()
        self.close()
        return window

    def _switch_annotator(self) -> None:
        self.tabs.setCurrentWidget(self.annotate)
        self.annotate.show_picker()

    def _about(self) -> None:
        QMessageBox.about(self, "About DPO Studio",
                          "DPO Studio — label preference pairs and train LoRA adapters with DPO.\n\n"
                          f"Workspace: {self.workspace.display_location}")

    # -- wiring ------------------------------------------------------------------------
    def _show_connection(self, state: ConnectionState) -> None:
        """The status bar's connection line: shown on a team server, or while verdicts wait."""
        self.connection_label.setText(state.describe())
        self.connection_label.setToolTip(state.error)
        self.connection_label.setVisible(self.workspace.is_server or not state.online or state.waiting > 0)
        self.team.show_connection(state)

    def _on_annotator(self, name: str) -> None:
        self.annotator_label.setText(f"Annotator: {name}")
        self.pairs.set_annotator(name)
        self.team.set_annotator(name)
        for page in self.loop_pages:
            if page.view is not None and hasattr(page.view, "set_annotator"):
                page.view.set_annotator(name)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        warm_up_train_tab(self)   # the Train tab's modules, imported off the UI thread before its first opening

    def _on_tab(self, index: int) -> None:
        widget = self.tabs.widget(index)
        if widget is self.annotate:
            self.annotate.setFocus()
        elif widget is self.train_page and self.train_view is None:
            self.train_view = self._build_train_view()
            self.train_page.layout().addWidget(self.train_view)
            self._add_view(self.train_view)
        elif isinstance(widget, LazyPage) and widget.view is None:
            view = widget.build(self.workspace, self.db, self.annotate.annotator_name or None)
            if view is not None:
                self._add_view(view)

    def _build_train_view(self) -> QWidget:
        try:
            from gui.train.train_view import TrainView
        except ModuleNotFoundError as exc:
            if exc.name != "gui.train.train_view":
                raise
            return placeholder("The training view is not part of this build yet.")
        # A frame, then a card or plot per turn; then a process prepared for the first run.
        return TrainView(self.workspace, self.db, gradually=True, prepare_runs=True)

    def closeEvent(self, event: QCloseEvent) -> None:
        # A training run: ask, then stop and save it. Verdicts still being stored: wait for them,
        # and ask before closing without the ones the database does not accept.
        for view in [self.train_view] + [page.view for page in self.loop_pages]:
            confirm = getattr(view, "confirm_close", None)
            if confirm is not None and not confirm():
                event.ignore()
                return
        if self.annotate.unsaved and self.annotate.sender.offline and self.annotate.sender.all_kept:
            pass   # offline: they are in the outbox file, stored at the next start
        elif self.annotate.unsaved:
            self.statusBar().showMessage("Saving the last verdicts…")
            unsaved = self.annotate.flush(timeout_ms=15_000)
            if unsaved and not self.confirm_close_unsaved(unsaved):
                event.ignore()
                return
        if running_workers():  # background work (an import, the demo) finishes or stops cleanly first
            self.statusBar().showMessage("Waiting for background work to finish…")
            deadline = time.monotonic() + 120
            while [t for t in running_workers() if t.objectName() != "database"] and time.monotonic() < deadline:
                # A worker's thread quits through the event loop: keep delivering while waiting.
                QApplication.processEvents()
                wait_for_all_workers(timeout_ms=50)
        QApplication.processEvents()   # the finished workers' last reports (e.g. "imported") first
        self._closing = True
        self.annotate.stop_timers()
        for view in self.views:
            stop = getattr(view, "stop_timers", None)
            if stop is not None and view is not self.annotate:
                stop()
        self.db.close()
        self.annotate.sender.close_outbox()
        if self.owns_workspace:
            self.workspace.close()
        if self in _windows:
            _windows.remove(self)
        super().closeEvent(event)

    def confirm_close_unsaved(self, unsaved) -> bool:
        """Ask whether to close although ``unsaved`` writes could not be stored (False: stay open)."""
        error = unsaved[0].last_error or "no answer from the database"
        box = QMessageBox(QMessageBox.Icon.Warning, "Verdicts not saved",
                          f"{len(unsaved)} of your verdicts could not be saved to {self.workspace.display_location} "
                          f"({error}).\n\nKeep the window open and the app keeps retrying; close now and "
                          "they are lost.", parent=self)
        keep = box.addButton("Keep open and retry", QMessageBox.ButtonRole.RejectRole)
        box.addButton("Close without them", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(keep)
        box.exec()
        return box.clickedButton() is not keep
