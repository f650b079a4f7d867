"""The subtle line under the verdict buttons: what the current run's adapter preferred on the
pair the annotator has just judged — only after the verdict, so it cannot bias it.

``AdapterPreferenceLine.judged(write, still_judged)`` asks the database worker for the run's
score (``core.operations.pair_scores.preference_for``) once the verdict is given; the answer is
shown only if that verdict still stands when it arrives (``still_judged``). ``clear()`` (on undo,
or a new sitting) empties it at once, so an undone pair never shows its score while it is judged again.
"""

from __future__ import annotations

from typing import Callable

from PySide6.QtWidgets import QLabel, QWidget

from core.operations.labelling import Write
from core.operations.pair_scores import PreferenceNote, preference_for
from gui.common.db_worker import DatabaseWorker
from storage.models import Choice
from storage.workspace import Workspace


def chosen_side(write: Write) -> str | None:
    """"left" / "right" as the annotator saw the side they chose (None: tie, both bad, skip)."""
    if write.choice not in (Choice.A, Choice.B):
        return None
    return "left" if (write.choice == Choice.A) != write.pair.swapped else "right"


def preference_text(write: Write, note: PreferenceNote) -> str:
    """"Pair #12: run round 1 preferred the left answer (margin +0.42) — as you did"."""
    text = f"Pair #{write.pair_id}: {note.describe()}"
    agrees = note.agrees_with(chosen_side(write) or "")
    if agrees is None:
        return text
    return text + (" — as you did" if agrees else " — you chose the other one")


class AdapterPreferenceLine(QLabel):
    def __init__(self, workspace: Workspace, db: DatabaseWorker, parent: QWidget | None = None):
        super().__init__(parent)
        self.workspace = workspace
        self.db = db
        self.setObjectName("muted")
        self.setToolTip("The implicit-reward margin r(left) − r(right) of the run's adapter against its base "
                        "model, shown only after your verdict")
        self._asked: Write | None = None
        self.hide()

    def judged(self, write: Write, still_judged: Callable[[Write], bool]) -> None:
        """The annotator gave ``write``'s verdict: look up the run's preference and show it if
        ``still_judged(write)`` holds when the answer comes."""
        self._asked = write
        self.db.submit(preference_for, self.workspace, write.pair_id, write.pair.swapped,
                       on_done=lambda note: self._answer(write, note, still_judged), on_failed=lambda _exc: None)

    def clear(self, keep_space: bool = True) -> None:
        """Show nothing; ``keep_space``: keep the line's room once it has been shown, so the
        pair above does not jump with every verdict (False: a new sitting, hidden until needed)."""
        self._asked = None
        self.setText("")
        if not keep_space:
            self.hide()

    def _answer(self, write: Write, note: PreferenceNote | None, still_judged: Callable[[Write], bool]) -> None:
        if write is not self._asked or not still_judged(write):
            return   # a later verdict asked meanwhile, or this one was undone
        if note is None:
            self.clear()
            return
        self.setText(preference_text(write, note))
        self.show()
