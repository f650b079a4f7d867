"""The banner across the labelling screen when verdicts are not being saved.

Shown while a write waits for its retry (with how many are kept, the database's answer,
when the next try comes, and a button to try now), while the team server cannot be reached
(the verdicts kept on this computer, the pairs still in hand), or after a verdict could never
be saved (its pair was deleted), until dismissed. Hidden otherwise: when verdicts are saved
the screen says nothing about it.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

from core.operations.connection import ConnectionState
from core.operations.wording import plural
from gui.common import theme


def _verdicts(n: int) -> str:
    return f"{n} verdict{'s' if n != 1 else ''}"


class SaveBanner(QFrame):
    retry_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("saveBanner")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(14, 8, 10, 8)
        layout.setSpacing(10)
        self.icon = QLabel("⚠")
        self.icon.setObjectName("saveBannerIcon")
        self.text = QLabel("")
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.retry = QPushButton("Retry now")
        self.retry.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.retry.clicked.connect(self.retry_requested)
        self.dismiss = QPushButton("Dismiss")
        self.dismiss.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.dismiss.clicked.connect(self._dismiss)
        layout.addWidget(self.icon)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.retry)
        layout.addWidget(self.dismiss)
        self._dropped: list[str] = []
        self._failing: tuple[int, str, float | None] | None = None
        self._offline: tuple[ConnectionState, int] | None = None
        self._tick = QTimer(self, interval=1000, timeout=self._redraw)  # the "retrying in 4 s" countdown
        self._countdown = None
        self.apply_theme()
        self.hide()

    def apply_theme(self) -> None:
        c = theme.colors()
        self.setStyleSheet(
            f"QFrame#saveBanner {{ background: {c['bad_soft']}; border: 1px solid {c['bad']}; border-radius: 8px; }}"
            f" QFrame#saveBanner QLabel {{ color: {c['text']}; font-weight: 600; }}"
            f" QLabel#saveBannerIcon {{ color: {c['bad']}; font-size: 14pt; }}")

    def show_failing(self, unsaved: int, error: str, retry_in, countdown=None) -> None:
        """``unsaved`` writes kept; ``retry_in`` seconds to the next try (None: trying now);
        ``countdown`` a callable giving the seconds left, for the ticking text."""
        self._failing = (unsaved, error, retry_in)
        self._countdown = countdown
        self._tick.start()
        self._redraw()

    def show_offline(self, state: ConnectionState, pairs_in_hand: int) -> None:
        """The server cannot be reached: ``state.waiting`` verdicts kept, ``pairs_in_hand``
        reserved pairs left to label meanwhile."""
        self._failing = None
        self._offline = (state, pairs_in_hand)
        self._tick.stop()
        self._redraw()

    def show_saved(self) -> None:
        self._failing = None
        self._offline = None
        self._tick.stop()
        self._redraw()

    def add_dropped(self, text: str) -> None:
        self._dropped.append(text)
        self._redraw()

    def _dismiss(self) -> None:
        self._dropped.clear()
        self._redraw()

    def _redraw(self) -> None:
        lines = []
        if self._offline is not None:
            state, in_hand = self._offline
            where = "on this computer" if state.kept_in else "in this window"
            lines.append(f"Offline — the team server cannot be reached ({state.error or 'no answer'}). "
                         f"{plural(state.waiting, 'verdict')} kept {where}, sent by themselves when it is back; "
                         f"you can keep labelling the {plural(in_hand, 'pair')} already reserved for you.")
        if self._failing is not None:
            unsaved, error, retry_in = self._failing
            if self._countdown is not None:
                retry_in = self._countdown()
            when = f"retrying in {retry_in:.0f} s" if retry_in else "retrying now"
            lines.append(f"{_verdicts(unsaved)} not saved yet — the database did not accept "
                         f"{'them' if unsaved != 1 else 'it'} ({error}). Kept on this computer, "
                         f"{when}; you can keep labelling.")
        lines.extend(self._dropped)
        self.text.setText("\n".join(lines))
        self.retry.setVisible(self._failing is not None or self._offline is not None)
        self.dismiss.setVisible(bool(self._dropped) and self._failing is None and self._offline is None)
        self.setVisible(bool(lines))

    def stop(self) -> None:
        self._tick.stop()

    @property
    def message(self) -> str:
        return self.text.text() if self.isVisible() else ""
