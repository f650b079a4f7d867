"""The Pairs tab: every pair in a table, filtered and searched, any one opened in a dialog.

Rows come from ``core.operations.pairs.browse_pairs`` a page at a time through the database
worker (Qt asks for more as the table scrolls), so 100,000 pairs cost one page of queries, not
a full load, and the UI thread runs no query. ``on_changes`` reloads only when a change can
alter what the table shows.
"""

from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (QAbstractItemView, QApplication, QComboBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit,
                               QTableView, QVBoxLayout, QWidget)

from core.operations.changes import Changes
from core.operations.pairs import PairFilters, PairPage, browse_pairs, pair_sources
from core.operations.wording import plural
from gui.common.db_worker import DatabaseWorker
from gui.pairs.pair_dialog import PairDialog
from storage.pair_browser import PairRow
from storage.workspace import Workspace

PAGE = 200
FILTERS = (("all", "All pairs"), ("unlabelled", "Unlabelled"), ("mine", "Labelled by me"),
           ("disputed", "Disputed"), ("tie", "Ties"), ("both_bad", "Both bad"), ("skipped", "Skipped"))
COLUMNS = ("Pair", "Prompt", "Source", "Split", "Verdicts")
BLIND_TIP = "A blind A/B pair: judged in the Blind A/B tab, read-only here"


class PairsModel(QAbstractTableModel):
    """The rows loaded so far; asks for the next page through ``request_more`` (it reads nothing itself)."""

    def __init__(self, request_more):
        super().__init__()
        self.request_more = request_more
        self.rows: list[PairRow] = []
        self.total = 0
        self.loading = False

    def reset(self, page: PairPage) -> None:
        self.beginResetModel()
        self.rows = list(page.rows)
        self.total = page.total or 0
        self.loading = False
        self.endResetModel()

    def append(self, page: PairPage) -> None:
        self.loading = False
        if page.offset != len(self.rows) or not page.rows:
            return
        self.beginInsertRows(QModelIndex(), len(self.rows), len(self.rows) + len(page.rows) - 1)
        self.rows.extend(page.rows)
        self.endInsertRows()

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def canFetchMore(self, parent=QModelIndex()) -> bool:
        return not parent.isValid() and not self.loading and len(self.rows) < self.total

    def fetchMore(self, parent=QModelIndex()) -> None:
        if self.canFetchMore(parent):
            self.loading = True
            self.request_more(len(self.rows))

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return (f"#{row.pair_id}", row.prompt_preview, row.source, row.split,
                    row.verdict_summary or "—")[index.column()]
        if role == Qt.ItemDataRole.UserRole:
            return row.pair_id
        if row.blind and role == Qt.ItemDataRole.ToolTipRole:
            return BLIND_TIP
        if row.blind and role == Qt.ItemDataRole.ForegroundRole:
            return QApplication.palette().placeholderText()
        return None


class PairsBrowser(QWidget):
    changes_made = Signal(object)  # Changes of a verdict given in an opened pair

    def __init__(self, workspace: Workspace, db: DatabaseWorker, parent: QWidget | None = None):
        super().__init__(parent)
        self.workspace = workspace
        self.db = db
        self.annotator: str | None = None
        self._filters = PairFilters()
        self._generation = 0          # a page of an older reload is dropped
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search prompts and responses  (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self.status = QComboBox()
        for key, label in FILTERS:
            self.status.addItem(label, key)
        self.source = QComboBox()
        self.count = QLabel("")
        self.count.setObjectName("muted")
        top = QHBoxLayout()
        top.addWidget(self.search, 3)
        top.addWidget(self.status, 1)
        top.addWidget(self.source, 1)
        top.addWidget(self.count)

        self.model = PairsModel(self._request_more)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setAlternatingRowColors(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.setShowGrid(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        for column, width in ((0, 80), (2, 170), (3, 70), (4, 260)):
            self.table.setColumnWidth(column, width)
        self.table.doubleClicked.connect(lambda index: self.open_pair(index.data(Qt.ItemDataRole.UserRole)))
        self.table.activated.connect(lambda index: self.open_pair(index.data(Qt.ItemDataRole.UserRole)))
        hint = QLabel("Double-click a pair (or press Enter) to read it and change its verdict; "
                      "a change is stored as a new verdict, the history is kept. Blind A/B pairs (greyed) "
                      "are read-only here.")
        hint.setObjectName("muted")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 12, 14, 12)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addWidget(hint)

        QShortcut(QKeySequence("Ctrl+F"), self, context=Qt.ShortcutContext.WindowShortcut).activated.connect(
            self.focus_search)
        self._debounce = QTimer(self, singleShot=True, interval=250, timeout=self.reload)
        self.search.textChanged.connect(lambda _t: self._debounce.start())
        self.status.currentIndexChanged.connect(lambda _i: self.reload())
        self.source.currentIndexChanged.connect(lambda _i: self.reload())
        self.reload_sources()
        self.reload()

    def set_annotator(self, name: str | None) -> None:
        if name == self.annotator:
            return
        self.annotator = name
        if self._filters.annotator is not None or self.status.currentData() == "mine":
            self.reload()         # "mine", and the tie/both bad/skipped filters, follow the annotator

    def reload_sources(self) -> None:
        self.db.submit(pair_sources, self.workspace, on_done=self._show_sources)

    def _show_sources(self, names: list[str]) -> None:
        current = self.source.currentData()
        self.source.blockSignals(True)
        self.source.clear()
        self.source.addItem("All sources", None)
        for name in names:
            self.source.addItem(name or "(no source)", name)
        index = self.source.findData(current)
        self.source.setCurrentIndex(max(0, index))
        self.source.blockSignals(False)
        if index < 0 and current is not None:
            self.reload()         # the chosen source is gone

    def current_filters(self) -> PairFilters:
        status = self.status.currentData()
        if status == "mine" and not self.annotator:
            status = "all"
        annotator = self.annotator if status in ("mine", "tie", "both_bad", "skipped") else None
        return PairFilters(status, annotator, self.source.currentData(), self.search.text().strip() or None)

    def reload(self) -> None:
        """Read the first page again with the current filters (database thread)."""
        self._filters = self.current_filters()
        self._generation += 1
        generation = self._generation
        self.db.submit(browse_pairs, self.workspace, self._filters, 0, PAGE,
                       on_done=lambda page: self._show_first_page(generation, page))

    def _show_first_page(self, generation: int, page: PairPage) -> None:
        if generation != self._generation:
            return
        self.model.reset(page)
        self.count.setText(plural(self.model.total, "pair"))

    def _request_more(self, offset: int) -> None:
        generation = self._generation
        self.db.submit(browse_pairs, self.workspace, self._filters, offset, PAGE,
                       on_done=lambda page: self._show_more(generation, page))

    def _show_more(self, generation: int, page: PairPage) -> None:
        if generation == self._generation:
            self.model.append(page)
        else:
            self.model.loading = False

    def on_changes(self, changes: Changes) -> None:
        """Reload when a change can alter the table: new pairs, or verdicts on pairs listed
        (or that a filter on verdicts may now list)."""
        if changes.pairs:
            self.reload_sources()
            self.reload()
        elif changes.verdicts:
            shown = {row.pair_id for row in self.model.rows}
            filtered_by_verdicts = self._filters.status_filter != "all"
            if filtered_by_verdicts or not changes.pair_ids or changes.pair_ids & shown:
                self.reload()

    def stop_timers(self) -> None:
        """The window is closing: a pending search is not run."""
        self._debounce.stop()

    def focus_search(self) -> None:
        self.search.setFocus()
        self.search.selectAll()

    def open_pair(self, pair_id: int | None) -> PairDialog | None:
        if pair_id is None:
            return None
        dialog = PairDialog(self.workspace, self.db, pair_id, self.annotator, self)
        dialog.changes_made.connect(self.changes_made)
        dialog.open()
        return dialog
