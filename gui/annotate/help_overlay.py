"""The keys overlay (press ``?``): every shortcut of the labelling screen on one card.

It covers its parent with a translucent veil; a click or Esc (or ``?`` again) closes it.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QVBoxLayout, QWidget

from gui.common import theme
from gui.annotate.response_panel import keycap

KEY_HELP = (
    (("1", "←"), "Left response is better"),
    (("2", "→"), "Right response is better"),
    (("3", "T"), "Tie: both equally good"),
    (("4", "B"), "Both bad"),
    (("S", "0"), "Skip this pair"),
    (("Ctrl+Z",), "Undo the last verdict (repeatable)"),
    (("N",), "Write a note for this verdict (Esc returns)"),
    (("R",), "Markdown / raw text"),
    (("D",), "Highlight differing words"),
    (("G",), "Show / hide guidelines"),
    (("PgUp", "PgDn"), "Scroll both responses"),
    (("Ctrl+F",), "Search all pairs"),
    (("?",), "This help"),
)


class HelpOverlay(QWidget):
    def __init__(self, parent: QWidget):
        super().__init__(parent)
        self.setObjectName("helpOverlay")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, False)
        outer = QVBoxLayout(self)
        outer.setAlignment(Qt.AlignmentFlag.AlignCenter)
        card = QFrame()
        card.setObjectName("helpCard")
        card.setMinimumWidth(440)
        card.setMaximumWidth(560)
        grid = QGridLayout(card)
        grid.setContentsMargins(26, 22, 26, 22)
        grid.setHorizontalSpacing(18)
        grid.setVerticalSpacing(9)
        title = QLabel("Keyboard")
        title.setObjectName("heading")
        grid.addWidget(title, 0, 0, 1, 2)
        for row, (keys, text) in enumerate(KEY_HELP, start=1):
            caps = QWidget()
            caps_layout = QGridLayout(caps)
            caps_layout.setContentsMargins(0, 0, 0, 0)
            caps_layout.setHorizontalSpacing(4)
            for col, key in enumerate(keys):
                caps_layout.addWidget(keycap(key), 0, col)
            caps_layout.setColumnStretch(len(keys), 1)
            grid.addWidget(caps, row, 0)
            grid.addWidget(QLabel(text), row, 1)
        hint = QLabel("Verdicts are saved the moment you press a key.")
        hint.setObjectName("muted")
        grid.addWidget(hint, len(KEY_HELP) + 1, 0, 1, 2)
        grid.setColumnStretch(1, 1)
        outer.addWidget(card, 0, Qt.AlignmentFlag.AlignCenter)
        self.hide()
        parent.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.parent() and event.type() == QEvent.Type.Resize:
            self.setGeometry(self.parentWidget().rect())
        return False

    def toggle(self) -> None:
        self.setVisible(not self.isVisible())

    def showEvent(self, event) -> None:
        self.setGeometry(self.parentWidget().rect())
        self.raise_()
        super().showEvent(event)

    def paintEvent(self, event) -> None:
        veil = QColor(theme.colors()["window"])
        veil.setAlpha(200)
        QPainter(self).fillRect(self.rect(), veil)

    def mousePressEvent(self, event) -> None:
        self.hide()
