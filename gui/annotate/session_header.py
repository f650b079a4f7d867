"""The strip above the pair: who labels, progress against the session target, pace, the
queue count and the view toggles (raw text, word diff, guidelines, keys).

It shows numbers it is given (``show_pace``, ``show_counts``, ``show_connection``: on a team
server, "offline — N verdicts waiting" while the server cannot be reached); the target spin
box is the one input, reported through ``target_changed``.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QProgressBar, QPushButton, QSizePolicy, QSpinBox, QToolButton,
                               QWidget)

from core.operations.connection import ConnectionState
from core.operations.wording import format_duration
from gui.common import theme
from storage.annotator_session import SessionPace


def _toggle(text: str, key: str, tip: str) -> QToolButton:
    button = QToolButton()
    button.setText(text)
    button.setCheckable(True)
    button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    button.setToolTip(f"{tip} ({key})")
    return button


class SessionHeader(QWidget):
    target_changed = Signal(int)

    def __init__(self, target: int, parent: QWidget | None = None):
        super().__init__(parent)
        header = QHBoxLayout(self)
        header.setContentsMargins(0, 0, 0, 0)
        header.setSpacing(10)
        self.who = QLabel("")
        self.who.setObjectName("stat")
        self.switch = QPushButton("Switch")
        self.switch.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.progress = QProgressBar()
        self.progress.setTextVisible(False)
        self.progress.setFixedWidth(160)
        self.progress_label = QLabel("")
        self.progress_label.setObjectName("stat")
        self.target = QSpinBox()
        self.target.setObjectName("inlineSpin")
        self.target.setRange(1, 100_000)
        self.target.setPrefix("/ ")
        self.target.setSuffix(" pairs")
        self.target.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.target.setToolTip("Session target: how many pairs you mean to label in this sitting")
        self.target.setValue(target)
        self.target.valueChanged.connect(self.target_changed)
        self.pace_label = QLabel("")
        self.pace_label.setObjectName("muted")
        self.queue_label = QLabel("")
        self.queue_label.setObjectName("muted")
        self.connection = QLabel("")
        self.connection.setObjectName("connectionChip")
        self.connection.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)   # never clipped
        self.pace_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # gives way first
        self.pace_label.setMinimumWidth(120)
        self.connection.hide()
        self.raw_toggle = _toggle("Raw text", "R", "Show the responses as stored, not rendered as Markdown")
        self.diff_toggle = _toggle("Word diff", "D", "Highlight the words that differ between the two responses")
        self.guidelines_toggle = _toggle("Guidelines", "G", "Show or hide the labelling guidelines")
        self.help_button = QToolButton()
        self.help_button.setText("Keys  ?")
        self.help_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        for widget in (self.who, self.switch):
            header.addWidget(widget)
        header.addSpacing(14)
        for widget in (self.progress, self.progress_label, self.target, self.pace_label):
            header.addWidget(widget)
        header.addStretch(1)
        for widget in (self.connection, self.queue_label, self.raw_toggle, self.diff_toggle, self.guidelines_toggle,
                       self.help_button):
            header.addWidget(widget)

    def show_annotator(self, name: str) -> None:
        self.who.setText(f"Labelling as  {name}")

    def show_pace(self, pace: SessionPace) -> None:
        self.progress.setMaximum(pace.target)
        self.progress.setValue(min(pace.done, pace.target))
        self.progress_label.setText(f"{pace.done}")
        per_hour = pace.pairs_per_hour()
        self.pace_label.setText(
            f"{per_hour:,.0f} pairs/h  ·  {format_duration(pace.seconds_left())} left" if per_hour
            else "pace appears after the first verdict")

    def show_counts(self, remaining: int) -> None:
        self.queue_label.setText(f"{remaining:,} in queue")

    def show_connection(self, state: ConnectionState) -> None:
        """Say nothing while connected with nothing waiting; otherwise the state, in a chip."""
        c = theme.colors()
        self.connection.setText(state.describe())
        self.connection.setToolTip(
            (f"The server cannot be reached: {state.error}\n" if state.error else "")
            + (f"Kept on this computer in {state.kept_in} until the server takes them." if state.kept_in
               else "Kept in this window until the server takes them."))
        tone = ("bad", "bad_soft") if not state.online else ("accent", "accent_soft")
        self.connection.setStyleSheet(f"QLabel#connectionChip {{ color: {c[tone[0]]}; background: {c[tone[1]]}; "
                                      f"border: 1px solid {c[tone[0]]}; border-radius: 9px; padding: 1px 8px; "
                                      "font-weight: 600; }")
        self.connection.setVisible(not state.online or state.waiting > 0)
        self.connection.ensurePolished()   # the chip's padding counts in its size
        self.connection.setMinimumWidth(self.connection.sizeHint().width())
