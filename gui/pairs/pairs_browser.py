"""The Pairs tab: every pair in a table, filtered and searched, any one opened in a dialog.

Rows come from ``storage.pair_browser`` a page at a time (Qt asks for more as the table
scrolls), so 100,000 pairs cost one page of queries, not a full load.
"""

from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit,
                               QTableView, QVBoxLayout, QWidget)

from gui.pairs.pair_dialog import PairDialog
from storage.pair_browser import PairRow, count_pairs, list_pairs, sources
from storage.workspace import Workspace

PAGE = 200
FILTERS = (("all", "All pairs"), ("unlabelled", "Unlabelled"), ("mine", "Labelled by me"),
           ("disputed", "Disputed"), ("tie", "Ties"), ("both_bad", "Both bad"), ("skipped", "Skipped"))
COLUMNS = ("Pair", "Prompt", "Source", "Split", "Verdicts")


class PairsModel(QAbstractTableModel):
    def __init__(self, workspace: Workspace):
        super().__init__()
        self.workspace = workspace
        self.rows: list[PairRow] = []
        self.total = 0
        self.filters: dict = {"status_filter": "all"}

    def load(self, **filters) -> None:
        self.beginResetModel()
        self.filters = filters
        self.total = count_pairs(self.workspace, **filters)
        self.rows = list_pairs(self.workspace, offset=0, limit=PAGE, **filters)
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def canFetchMore(self, parent=QModelIndex()) -> bool:
        return not parent.isValid() and len(self.rows) < self.total

    def fetchMore(self, parent=QModelIndex()) -> None:
        more = list_pairs(self.workspace, offset=len(self.rows), limit=PAGE, **self.filters)
        if more:
            self.beginInsertRows(QModelIndex(), len(self.rows), len(self.rows) + len(more) - 1)
            self.rows.extend(more)
            self.endInsertRows()

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
        return None


class PairsBrowser(QWidget):
    changed = Signal(int)  # a verdict was given in an opened pair

    def __init__(self, workspace: Workspace, parent: QWidget | None = None):
        super().__init__(parent)
        self.workspace = workspace
        self.annotator: str | None = None
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

        self.model = PairsModel(workspace)
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
                      "a change is stored as a new verdict, the history is kept.")
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

    def set_annotator(self, name: str | None) -> None:
        self.annotator = name

    def reload_sources(self) -> None:
        current = self.source.currentData()
        self.source.blockSignals(True)
        self.source.clear()
        self.source.addItem("All sources", None)
        for name in sources(self.workspace):
            self.source.addItem(name or "(no source)", name)
        index = self.source.findData(current)
        self.source.setCurrentIndex(max(0, index))
        self.source.blockSignals(False)

    def current_filters(self) -> dict:
        status = self.status.currentData()
        if status == "mine" and not self.annotator:
            status = "all"
        return {"status_filter": status, "annotator": self.annotator, "source": self.source.currentData(),
                "search": self.search.text().strip() or None}

    def reload(self) -> None:
        self.model.load(**self.current_filters())
        self.count.setText(f"{self.model.total:,} pairs")

    def focus_search(self) -> None:
        self.search.setFocus()
        self.search.selectAll()

    def open_pair(self, pair_id: int | None) -> PairDialog | None:
        if pair_id is None:
            return None
        dialog = PairDialog(self.workspace, pair_id, self.annotator, self)
        dialog.changed.connect(self._on_changed)
        dialog.open()
        return dialog

    def _on_changed(self, pair_id: int) -> None:
        self.reload()
        self.changed.emit(pair_id)

    def showEvent(self, event) -> None:
        self.reload_sources()
        self.reload()
        super().showEvent(event)
