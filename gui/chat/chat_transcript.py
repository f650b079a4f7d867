"""One column of the Chat tab: a model's side of the conversation as chat bubbles.

``ChatTranscript`` is a scrolling list of ``ChatBubble``s: the user's turns (tinted, indented
from the left) and the model's answers (cards, indented from the right), with a small meta line
under each answer (tokens, tokens/s, how it ended). An answer grows while it streams
(``append``); the view calls it at most a few times a second (deltas are coalesced upstream).
It keeps to the bottom while the user has not scrolled up to read.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QScrollArea, QVBoxLayout, QWidget

from gui.common.theme import colors

INDENT = 56          # px the other side of a bubble is kept free, so turns read as a dialogue
TYPING = "…"


class ChatBubble(QFrame):
    def __init__(self, role: str, text: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self.role = role                       # "user", "assistant" or "note"
        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 10, 14, 10)
        layout.setSpacing(4)
        self.text_label = QLabel(text or (TYPING if role == "assistant" else ""))
        self.text_label.setTextFormat(Qt.TextFormat.PlainText)
        self.text_label.setWordWrap(True)
        self.text_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.text_label)
        self.meta_label = QLabel("")
        self.meta_label.setVisible(False)
        layout.addWidget(self.meta_label)
        self._text = text
        self._meta_bad = False
        self.refresh_theme()

    @property
    def text(self) -> str:
        return self._text

    def append(self, delta: str) -> None:
        self._text += delta
        self.text_label.setText(self._text or TYPING)

    def set_text(self, text: str) -> None:
        self._text = text
        self.text_label.setText(text or TYPING)

    def set_meta(self, text: str, bad: bool = False) -> None:
        self._meta_bad = bad
        self.meta_label.setText(text)
        self.meta_label.setVisible(bool(text))
        self.meta_label.setStyleSheet(f"color: {colors()['bad' if bad else 'muted']}; font-size: 9pt;"
                                      "background: transparent; border: none;")

    def refresh_theme(self) -> None:
        c = colors()
        if self.role == "user":
            frame = f"background: {c['accent_soft']}; border: 1px solid {c['accent_soft']};"
        elif self.role == "note":
            frame = "background: transparent; border: none;"
        else:
            frame = f"background: {c['card']}; border: 1px solid {c['border']};"
        self.setStyleSheet(f"ChatBubble {{ {frame} border-radius: 12px; }}")
        colour = c["muted"] if self.role == "note" else c["text"]
        size = "9pt" if self.role == "note" else "10.5pt"
        self.text_label.setStyleSheet(f"color: {colour}; font-size: {size}; background: transparent; border: none;")
        self.set_meta(self.meta_label.text(), self._meta_bad)


class ChatTranscript(QScrollArea):
    def __init__(self, empty_text: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        body = QWidget()
        body.setObjectName("chatBody")
        self._rows = QVBoxLayout(body)
        self._rows.setContentsMargins(12, 12, 12, 12)
        self._rows.setSpacing(10)
        self.empty_label = QLabel(empty_text)
        self.empty_label.setObjectName("subheading")
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self._rows.addWidget(self.empty_label, 1)
        self._rows.addStretch(1)                 # bubbles go above it: top-aligned
        self.setWidget(body)
        self.bubbles: list[ChatBubble] = []
        self._follow = True
        bar = self.verticalScrollBar()
        bar.valueChanged.connect(self._note_position)
        bar.rangeChanged.connect(self._keep_to_bottom)
        self.refresh_theme()

    def add_user(self, text: str) -> ChatBubble:
        return self._add(ChatBubble("user", text), indent_left=True)

    def start_answer(self) -> ChatBubble:
        return self._add(ChatBubble("assistant"), indent_left=False)

    def add_note(self, text: str) -> ChatBubble:
        bubble = self._add(ChatBubble("note", text), indent_left=False)
        bubble.text_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        return bubble

    def clear(self) -> None:
        for bubble in self.bubbles:
            row = bubble.parentWidget()
            self._rows.removeWidget(row)
            row.deleteLater()
        self.bubbles.clear()
        self.empty_label.setVisible(True)
        self._follow = True

    def set_empty_text(self, text: str) -> None:
        self.empty_label.setText(text)

    def refresh_theme(self) -> None:
        self.widget().setStyleSheet(f"QWidget#chatBody {{ background: {colors()['alt']}; }}")
        for bubble in self.bubbles:
            bubble.refresh_theme()

    def _add(self, bubble: ChatBubble, indent_left: bool) -> ChatBubble:
        self.empty_label.setVisible(False)
        row = QWidget()
        line = QHBoxLayout(row)
        line.setContentsMargins(INDENT if indent_left else 0, 0, 0 if indent_left or bubble.role == "note" else INDENT, 0)
        line.addWidget(bubble)
        self._rows.insertWidget(len(self.bubbles), row)
        self.bubbles.append(bubble)
        self._follow = True
        return bubble

    def _note_position(self, value: int) -> None:
        bar = self.verticalScrollBar()
        self._follow = value >= bar.maximum() - 24

    def _keep_to_bottom(self, _minimum: int, maximum: int) -> None:
        if self._follow:
            self.verticalScrollBar().setValue(maximum)
