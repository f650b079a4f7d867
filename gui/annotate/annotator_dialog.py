"""Who is labelling? Pick an existing annotator of the workspace or type a new name.

``AnnotatorPicker`` is the welcome page of the labelling screen; ``AnnotatorDialog`` wraps
the same picker for switching annotator later. Neither stores anything: the annotate view
creates the annotator (through its queue) and remembers the name on this computer.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFrame, QLabel, QPushButton,
                               QVBoxLayout, QWidget)

from storage.annotator_session import annotator_names, validate_annotator_name
from storage.workspace import Workspace


class AnnotatorPicker(QWidget):
    """An editable list of names; emits ``chosen(name)`` with a validated name."""

    chosen = Signal(str)

    def __init__(self, workspace: Workspace, current: str | None = None, with_button: bool = True,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.workspace = workspace
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
        self.names.addItems(annotator_names(workspace))
        self.names.setCurrentText(current or "")
        self.error = QLabel("")
        self.error.setObjectName("muted")
        self.error.setVisible(False)
        inner.addWidget(heading)
        inner.addWidget(sub)
        inner.addSpacing(6)
        inner.addWidget(self.names)
        inner.addWidget(self.error)
        if with_button:
            self.start = QPushButton("Start labelling")
            self.start.setObjectName("primary")
            self.start.clicked.connect(self.accept_name)
            inner.addWidget(self.start, 0, Qt.AlignmentFlag.AlignRight)
        self.names.lineEdit().returnPressed.connect(self.accept_name)
        layout.addWidget(card)

    def name(self) -> str:
        return self.names.currentText()

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


class AnnotatorDialog(QDialog):
    def __init__(self, workspace: Workspace, current: str | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Switch annotator")
        self.picker = AnnotatorPicker(workspace, current, with_button=False)
        self.selected: str | None = None
        self.picker.chosen.connect(self._on_chosen)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.picker.accept_name)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.picker)
        layout.addWidget(buttons)

    def _on_chosen(self, name: str) -> None:
        self.selected = name
        self.accept()
