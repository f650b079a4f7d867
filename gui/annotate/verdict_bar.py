"""The row of verdict buttons under the responses, each showing its keys.

The buttons only emit; the keys themselves are shortcuts owned by the annotate view (so they
work wherever the focus is, except while typing in the note field). Buttons never take the
keyboard focus, so a click does not steal the keys from the screen.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from gui.annotate.response_panel import keycap

# (action, button title, keys shown on the button)
VERDICT_BUTTONS = (
    ("left", "Left is better", ("1", "←")),
    ("right", "Right is better", ("2", "→")),
    ("tie", "Tie", ("3", "T")),
    ("both_bad", "Both bad", ("4", "B")),
    ("skip", "Skip", ("S", "0")),
    ("undo", "Undo", ("Ctrl+Z",)),
)


class VerdictButton(QPushButton):
    def __init__(self, action: str, title: str, keys: tuple[str, ...], parent: QWidget | None = None):
        super().__init__(parent)
        self.action = action
        self.setProperty("verdict", action)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip(f"{title} ({' or '.join(keys)})")
        self.setAccessibleName(title)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(14, 6, 10, 6)
        layout.setSpacing(5)
        self.title = QLabel(title)
        self.title.setObjectName("verdictTitle")
        layout.addWidget(self.title)
        layout.addStretch(1)
        for key in keys:
            layout.addWidget(keycap(key))
        for child in self.findChildren(QLabel):
            child.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setMinimumHeight(42)
        self.setMinimumWidth(layout.sizeHint().width())


class VerdictBar(QWidget):
    """Emits ``triggered(action)`` with "left", "right", "tie", "both_bad", "skip" or "undo"."""

    triggered = Signal(str)

    def __init__(self, actions: tuple[str, ...] | None = None, show_keys: bool = True,
                 parent: QWidget | None = None):
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)
        self.buttons: dict[str, VerdictButton] = {}
        for action, title, keys in VERDICT_BUTTONS:
            if actions is not None and action not in actions:
                continue
            keys = keys if show_keys else ()
            button = VerdictButton(action, title, keys)
            button.clicked.connect(lambda _checked=False, a=action: self.triggered.emit(a))
            # The two main answers get the most room; skip and undo the least.
            layout.addWidget(button, 3 if action in ("left", "right") else 2 if action != "undo" else 1)
            if action == "both_bad" and (actions is None or "skip" in actions):
                layout.addSpacing(10)
            self.buttons[action] = button
