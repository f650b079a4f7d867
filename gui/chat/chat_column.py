"""One column of the Chat tab: a slot's model picker, its decoding speed and its transcript."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from gui.chat.chat_transcript import ChatBubble, ChatTranscript
from gui.common.theme import colors

OFF = "off"      # the picker's item for a column that does not answer


class ChatColumn(QFrame):
    """One slot: its model picker, its speed, "Continue from this answer" (both models take this
    column's last answer as the turn's reply) and its side of the conversation."""

    def __init__(self, slot: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.slot = slot
        self.setObjectName("card")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(1, 1, 1, 1)
        layout.setSpacing(0)
        self.header = QWidget()
        self.header.setObjectName("chatColumnHeader")
        header = QHBoxLayout(self.header)
        header.setContentsMargins(12, 10, 12, 10)
        header.setSpacing(10)
        self.picker = QComboBox()
        self.picker.setMinimumWidth(200)
        self.picker.setToolTip("Which model answers in this column: the base, or the base with a run's adapter.")
        header.addWidget(self.picker)
        self.detail = QLabel("")
        self.detail.setObjectName("muted")
        header.addWidget(self.detail, 1)
        self.speed = QLabel("")
        self.speed.setObjectName("chip")
        self.speed.setVisible(False)
        header.addWidget(self.speed)
        layout.addWidget(self.header)
        self.transcript = ChatTranscript("Ask something below: both columns answer the same message.")
        layout.addWidget(self.transcript, 1)
        footer = QHBoxLayout()          # under the last answer, which it is about
        footer.setContentsMargins(12, 6, 12, 8)
        footer.addStretch(1)
        self.continue_button = QPushButton("Continue from this answer")
        self.continue_button.setEnabled(False)
        footer.addWidget(self.continue_button)
        layout.addLayout(footer)
        self.pending: ChatBubble | None = None
        self.refresh_theme()

    def refresh_theme(self) -> None:
        c = colors()
        self.header.setStyleSheet(f"QWidget#chatColumnHeader {{ border-bottom: 1px solid {c['border']}; "
                                  "border-top-left-radius: 10px; border-top-right-radius: 10px; }")
        self.picker.setStyleSheet("QComboBox { font-weight: 600; }")
        self.transcript.refresh_theme()

    def choice_key(self) -> str:
        return self.picker.currentData() or OFF

    def show_speed(self, tokens: int, tokens_per_second: float) -> None:
        self.speed.setText(f"{tokens} tokens · {tokens_per_second:.0f} tok/s")
        self.speed.setVisible(True)
