"""Building a screen a piece per turn of the event loop, so that no turn holds the UI thread long.

``StagedBuild(name, owner, step, pending)`` calls ``step()`` (build one piece: a form card, a plot
panel) on a single-shot timer while ``pending()`` says there is more. The next piece is built
``interval_ms`` after the last, not at once: with a 0 ms timer Qt ran the layout and first paint of
the piece just built (posted events) and the building of the next one in the same turn of the
loop, 50-70 ms of the UI thread a turn on the 2-core machine; with a pause between them they are
turns of their own. ``finish()`` builds what is left at once (a test, a grab, a closing view).
"""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QObject, QTimer

BUILD_STEP_INTERVAL_MS = 30     # a piece's layout and paint happen in this pause, before the next piece


class StagedBuild(QObject):
    def __init__(self, name: str, owner: QObject, step: Callable[[], None], pending: Callable[[], bool],
                 interval_ms: int = BUILD_STEP_INTERVAL_MS):
        super().__init__(owner)
        self._step, self._pending = step, pending
        self._timer = QTimer(self)
        self._timer.setObjectName(name)
        self._timer.setSingleShot(True)
        self._interval = interval_ms
        self._timer.timeout.connect(self._next)

    def start(self, delay_ms: int | None = None) -> None:
        """Build the pieces one per turn, the first ``delay_ms`` from now (by default the
        interval); nothing when none is left or it is under way."""
        if self._pending() and not self._timer.isActive():
            self._timer.start(self._interval if delay_ms is None else delay_ms)

    def finish(self) -> None:
        """Build every piece left, now."""
        self._timer.stop()
        while self._pending():
            self._step()

    def stop(self) -> None:
        """No piece is built on the timer any more (``finish`` still builds them)."""
        self._timer.stop()

    def _next(self) -> None:
        if self._pending():
            self._step()
        if self._pending():
            self._timer.start(self._interval)
