"""One pair opened from the pair browser or the team panel: read it, change your verdict,
or (for an owner, on a disputed pair) settle it with a final verdict.

Every read and write goes through the database worker: ``core.operations.pairs.pair_details``
and ``change_verdict`` (a new verdict row), ``core.operations.team.resolve_dispute`` (storage
enforces the owner rule; the dialog only greys out what it would refuse). Nothing is
overwritten: the history list shows every row. Each write's ``Changes`` is emitted as
``changes_made`` for the main window to pass on. A blind A/B pair is shown read-only (its
verdicts are given in the Blind A/B tab; both operations refuse it).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QDialog, QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem,
                               QPushButton, QSplitter, QVBoxLayout, QWidget)

from core.operations.changes import Changes
from core.operations.pairs import PairDetails, change_verdict, pair_details
from core.operations.team import resolve_dispute
from gui.annotate.pair_display import PairDisplay
from gui.annotate.response_panel import Card
from gui.annotate.verdict_bar import VerdictBar
from gui.common.db_worker import DatabaseWorker
from storage.annotation_queue import choice_for_side
from storage.models import Choice
from storage.pair_history import VerdictEntry
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
    changes_made = Signal(object)   # Changes, after a verdict or a resolution was stored

    def __init__(self, workspace: Workspace, db: DatabaseWorker, pair_id: int, annotator: str | None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.workspace = workspace
        self.db = db
        self.pair_id = pair_id
        self.annotator = annotator
        self.details: PairDetails | None = None
        self.setWindowTitle(f"Pair #{pair_id}")
        self.resize(1200, 820)

        self.display = PairDisplay()
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
        self.mine.setEnabled(False)
        self.mine.triggered.connect(self.record_mine)
        self.resolve_label = QLabel("Final verdict as owner:")
        self.resolve_label.setObjectName("stat")
        self.resolver = VerdictBar(actions=("left", "right", "tie", "both_bad"), show_keys=False)
        self.resolver.setEnabled(False)
        self.resolver.triggered.connect(self.record_resolution)
        self.error = QLabel("")
        self.error.setObjectName("stat")
        self.error.setWordWrap(True)
        self.error.setVisible(False)
        close = QPushButton("Close")
        close.clicked.connect(self.accept)

        layout = QVBoxLayout(self)
        layout.addWidget(split, 1)
        layout.addWidget(self.note)
        layout.addWidget(self.mine_label)
        layout.addWidget(self.mine)
        layout.addWidget(self.resolve_label)
        layout.addWidget(self.resolver)
        layout.addWidget(self.error)
        bottom = QHBoxLayout()
        bottom.addStretch(1)
        bottom.addWidget(close)
        layout.addLayout(bottom)
        self.reload()

    @property
    def can_resolve(self) -> bool:
        return (self.details is not None and not self.details.read_only
                and self.details.settings.may_resolve(self.annotator))

    @property
    def view(self):
        return self.details.view if self.details else None

    def reload(self) -> None:
        """Read the pair, its history and the owner setting again (database thread)."""
        self.db.submit(pair_details, self.workspace, self.pair_id, on_done=self._show, on_failed=self._show_error)

    def _show(self, details: PairDetails) -> None:
        first = self.details is None
        self.details = details
        if first:
            self.display.show_pair(details.view)
        self.history.clear()
        for entry in details.history:
            item = QListWidgetItem(describe_entry(entry, details.view.swapped))
            if not entry.current:
                item.setForeground(self.palette().placeholderText())
            self.history.addItem(item)
        if details.read_only:
            self._show_read_only(details.blind_comparison)
            return
        self.mine.setEnabled(self.annotator is not None)
        self.resolver.setEnabled(self.can_resolve)
        if self.can_resolve:
            self.resolve_label.setText(f"Final verdict as owner ({self.annotator}):")
        else:
            owners = ", ".join(details.settings.owners)
            self.resolve_label.setText(f"Only an owner ({owners}) can resolve this pair" if owners
                                       else "Pick an annotator to resolve this pair")

    def _show_read_only(self, comparison: str) -> None:
        """A blind A/B pair: its verdicts are given in the Blind A/B tab (the operations refuse them here)."""
        self.mine_label.setText(f"A blind A/B pair of the comparison {comparison}: read-only here. "
                                "Judge it in the Blind A/B tab.")
        for widget in (self.note, self.mine, self.resolve_label, self.resolver):
            widget.setVisible(False)

    def _choice(self, action: str) -> Choice:
        return FIXED[action] if action in FIXED else choice_for_side(action, self.details.view.swapped)

    def record_mine(self, action: str) -> None:
        if self.details is None or self.annotator is None or self.details.read_only:
            return
        self._write(change_verdict, self.workspace, self.pair_id, self.annotator, self._choice(action),
                    self.note.text().strip())

    def record_resolution(self, action: str) -> None:
        if self.details is None or self.annotator is None:
            return
        self._write(resolve_dispute, self.workspace, self.pair_id, self.annotator, self._choice(action),
                    self.note.text().strip())

    def _write(self, operation, *args) -> None:
        self.error.setVisible(False)
        self.mine.setEnabled(False)
        self.resolver.setEnabled(False)   # one write at a time; enabled again when the pair is read back
        self.db.submit(operation, *args, on_done=self._after_write, on_failed=self._write_failed)

    def _after_write(self, changes: Changes) -> None:
        self.note.clear()
        self.reload()
        self.changes_made.emit(changes)

    def _write_failed(self, exc: BaseException) -> None:
        self._show_error(exc)
        self.reload()   # enables the buttons again as the stored state allows

    def _show_error(self, exc: BaseException) -> None:
        self.error.setText(f"Not saved: {exc}" if self.details is not None else f"Cannot read pair #{self.pair_id}: {exc}")
        self.error.setVisible(True)
