"""The keys of the labelling screen: which key runs which action, installed as shortcuts."""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QWidget

from storage.models import Choice

# Keys of each action. Letters and digits are also typed into the note field: QLineEdit
# claims them (ShortcutOverride) while it has the focus, so a note never triggers a verdict.
ACTION_KEYS = {
    "left": ("1", "Left"),
    "right": ("2", "Right"),
    "tie": ("3", "T"),
    "both_bad": ("4", "B"),
    "skip": ("S", "0"),
    "undo": ("Ctrl+Z",),
    "search": ("Ctrl+F",),
    "help": ("?", "Shift+?", "F1"),
    "note": ("N",),
    "raw": ("R",),
    "diff": ("D",),
    "guidelines": ("G",),
    "page_down": ("PgDown", "Space"),
    "page_up": ("PgUp", "Shift+Space"),
    "escape": ("Esc",),   # leaves the note field, or closes the keys overlay
}
FIXED_CHOICES = {"tie": Choice.TIE, "both_bad": Choice.BOTH_BAD, "skip": Choice.SKIP}
# While the keys overlay is up these do not act: the first press closes the overlay.
WRITING_ACTIONS = ("left", "right", "undo", *FIXED_CHOICES)


def install_shortcuts(view: QWidget, trigger: Callable[[str], None]) -> list[QShortcut]:
    """One window-wide shortcut per key of ``ACTION_KEYS``, calling ``trigger(action)``; Qt
    fires them only while ``view`` is visible (its tab is current)."""
    shortcuts = []
    for action, keys in ACTION_KEYS.items():
        for key in keys:
            shortcut = QShortcut(QKeySequence(key), view, context=Qt.ShortcutContext.WindowShortcut)
            shortcut.setAutoRepeat(action in ("page_down", "page_up"))
            shortcut.activated.connect(lambda a=action: trigger(a))
            shortcuts.append(shortcut)
    return shortcuts
