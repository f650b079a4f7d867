"""The layout both data dialogs share: a right-aligned form and a muted note under it."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFormLayout, QLabel, QLayout, QWidget


def form_rows(rows: list[tuple[str, QWidget | QLayout]]) -> QFormLayout:
    form = QFormLayout()
    form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
    for label, field in rows:
        form.addRow(label, field)
    return form


def muted_note(text: str) -> QLabel:
    note = QLabel(text)
    note.setObjectName("muted")
    note.setWordWrap(True)
    return note
