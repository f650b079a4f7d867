"""Who is labelling? Pick an existing annotator of the workspace or type a new name.

``AnnotatorPicker`` is the first page of the labelling screen (and where "Switch" leads). It
stores nothing: the annotate view creates the annotator (through its labelling session) and
remembers the name on this computer. The names are read on the database thread.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QFrame, QLabel, QPushButton, QVBoxLayout, QWidget

from gui.common.db_worker import DatabaseWorker
from storage.annotator_session import annotator_names, validate_annotator_name
from storage.workspace import Workspace


class AnnotatorPicker(QWidget):
    """An editable list of names; emits ``chosen(name)`` with a validated name."""

    chosen = Signal(str)

    def __init__(self, workspace: Workspace, db: DatabaseWorker, current: str | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.workspace = workspace
        self.db = db
        layout = QVBoxLayout(self)
        layout.setAlignment(Qt.AlignmentFlag.AlignCenter)
        card = QFrame()
        card.setObjectName("card")
        card.setMinimumWidth(420)
        card.setMaximumWidth(520)
        inner = QVBoxLayout(card)
        inner.setContentsMargins(28, 24, 28, 24)
        inner.setSpacing(10)
        heading = QLabel("Who is labelling?")
        heading.setObjectName("heading")
        sub = QLabel("Pick your name or type a new one. This computer remembers it for this workspace.")
        sub.setObjectName("subheading")
        sub.setWordWrap(True)
        self.names = QComboBox()
        self.names.setEditable(True)
        self.names.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.names.lineEdit().setPlaceholderText("Your name")
        self.names.setCurrentText(current or "")
        self.error = QLabel("")
        self.error.setObjectName("muted")
        self.error.setVisible(False)
        inner.addWidget(heading)
        inner.addWidget(sub)
        inner.addSpacing(6)
        inner.addWidget(self.names)
        inner.addWidget(self.error)
        self.start = QPushButton("Start labelling")
        self.start.setObjectName("primary")
        self.start.clicked.connect(self.accept_name)
        inner.addWidget(self.start, 0, Qt.AlignmentFlag.AlignRight)
        self.names.lineEdit().returnPressed.connect(self.accept_name)
        layout.addWidget(card)
        self.reload_names()

    def reload_names(self) -> None:
        """Read the workspace's annotators again (database thread); the typed text stays."""
        self.db.submit(annotator_names, self.workspace, on_done=self._show_names)

    def _show_names(self, names: list[str]) -> None:
        typed = self.names.currentText()
        self.names.blockSignals(True)
        self.names.clear()
        self.names.addItems(names)
        self.names.setCurrentText(typed)
        self.names.blockSignals(False)

    def name(self) -> str:
        return self.names.currentText()

    def known_names(self) -> list[str]:
        return [self.names.itemText(i) for i in range(self.names.count())]

    def show_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.setVisible(True)

    def accept_name(self) -> bool:
        try:
            name = validate_annotator_name(self.name())
        except ValueError as exc:
            self.error.setText(f"Cannot use this name: {exc}.")
            self.error.setVisible(True)
            return False
        self.error.setVisible(False)
        self.chosen.emit(name)
        return True
