"""One pair opened from the pair browser or the team panel: read it, change your verdict,
or (for an owner, on a disputed pair) settle it with a final verdict.

A change is a new verdict through ``AnnotationQueue.record``; a resolution goes through
``storage.team.resolve``. Nothing is overwritten: the history list shows every row.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QDialog, QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem,
                               QPushButton, QSplitter, QVBoxLayout, QWidget)

from gui.annotate.pair_display import PairDisplay
from gui.annotate.response_panel import Card
from gui.annotate.verdict_bar import VerdictBar
from storage.annotation_queue import AnnotationQueue, choice_for_side
from storage.models import Choice
from storage.pair_history import VerdictEntry, owners, pair_history, pair_view
from storage.team import resolve
from storage.workspace import Workspace

FIXED = {"tie": Choice.TIE, "both_bad": Choice.BOTH_BAD, "skip": Choice.SKIP}


def describe_choice(choice: Choice, swapped: bool) -> str:
    """A stored choice in the words of the screen ("left", "right", "tie", ...)."""
    if choice in (Choice.A, Choice.B):
        side = "left" if choice_for_side("left", swapped) == choice else "right"
        return f"{side} better"
    return {Choice.TIE: "tie", Choice.BOTH_BAD: "both bad", Choice.SKIP: "skipped"}[choice]


def describe_entry(entry: VerdictEntry, swapped: bool) -> str:
    who = entry.annotator + (" (import)" if entry.is_pseudo else "") + (" — resolution" if entry.is_resolution else "")
    state = "undone" if entry.retracted else ("current" if entry.current else "replaced")
    note = f"  “{entry.note}”" if entry.note else ""
    return f"{entry.created_at:%Y-%m-%d %H:%M}  {who}: {describe_choice(entry.choice, swapped)}  [{state}]{note}"


class PairDialog(QDialog):
    changed = Signal(int)   # pair id, after a verdict or a resolution was recorded

    def __init__(self, workspace: Workspace, pair_id: int, annotator: str | None, parent: QWidget | None = None):
        super().__init__(parent)
        self.workspace = workspace
        self.pair_id = pair_id
        self.annotator = annotator
        self.queue = AnnotationQueue(workspace, annotator) if annotator else None
        self.view = pair_view(workspace, pair_id)
        self.setWindowTitle(f"Pair #{pair_id}")
        self.resize(1200, 820)

        self.display = PairDisplay()
        self.display.show_pair(self.view)
        history_card = Card("Verdicts (full history)")
        self.history = QListWidget()
        self.history.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        history_card.body.addWidget(self.history)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.display)
        split.addWidget(history_card)
        split.setSizes([640, 160])

        self.note = QLineEdit()
        self.note.setPlaceholderText("Note (optional)")
        self.mine_label = QLabel(f"Your verdict as {annotator}:" if annotator else "Pick an annotator to give a verdict")
        self.mine_label.setObjectName("stat")
        self.mine = VerdictBar(actions=("left", "right", "tie", "both_bad", "skip"), show_keys=False)
        self.mine.setEnabled(self.queue is not None)
        self.mine.triggered.connect(self.record_mine)
        allowed = owners(workspace)
        self.can_resolve = annotator is not None and (allowed is None or annotator in allowed)
        self.resolve_label = QLabel(f"Final verdict as owner ({annotator}):" if self.can_resolve
                                    else "Only an owner can resolve this pair")
        self.resolve_label.setObjectName("stat")
        self.resolver = VerdictBar(actions=("left", "right", "tie", "both_bad"), show_keys=False)
        self.resolver.setEnabled(self.can_resolve)
        self.resolver.triggered.connect(self.record_resolution)
        close = QPushButton("Close")
        close.clicked.connect(self.accept)

        layout = QVBoxLayout(self)
        layout.addWidget(split, 1)
        layout.addWidget(self.note)
        layout.addWidget(self.mine_label)
        layout.addWidget(self.mine)
        layout.addWidget(self.resolve_label)
        layout.addWidget(self.resolver)
        bottom = QHBoxLayout()
        bottom.addStretch(1)
        bottom.addWidget(close)
        layout.addLayout(bottom)
        self.reload_history()

    def _choice(self, action: str) -> Choice:
        return FIXED[action] if action in FIXED else choice_for_side(action, self.view.swapped)

    def reload_history(self) -> None:
        self.history.clear()
        for entry in pair_history(self.workspace, self.pair_id):
            item = QListWidgetItem(describe_entry(entry, self.view.swapped))
            if not entry.current:
                item.setForeground(self.palette().placeholderText())
            self.history.addItem(item)

    def record_mine(self, action: str) -> int:
        verdict_id = self.queue.record(self.pair_id, self._choice(action), note=self.note.text().strip())
        self._after_write()
        return verdict_id

    def record_resolution(self, action: str) -> int:
        verdict_id = resolve(self.workspace, self.pair_id, self.annotator, self._choice(action),
                             note=self.note.text().strip())
        self._after_write()
        return verdict_id

    def _after_write(self) -> None:
        self.note.clear()
        self.reload_history()
        self.changed.emit(self.pair_id)
