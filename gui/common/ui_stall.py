"""Measuring how responsive the UI thread stays: a 10 ms timer notes the longest gap between
its ticks. A gap much longer than the interval is time the event loop could not answer
(a redraw that took too long, the GIL held by a worker, a blocking call on the UI thread)."""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, QTimer


class StallMeter(QObject):
    def __init__(self, interval_ms: int = 10, parent: QObject | None = None):
        super().__init__(parent)
        self.interval_ms = interval_ms
        self.gaps_ms: list[float] = []
        self.gap_starts: list[float] = []     # perf_counter() at the start of each gap
        self._last: float | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)

    def start(self) -> None:
        self.gaps_ms.clear()
        self.gap_starts.clear()
        self._last = time.perf_counter()
        self._timer.start()

    def pause(self) -> None:
        """Stop measuring for a while (e.g. while the caller itself blocks to take a screenshot)."""
        self._tick()
        self._timer.stop()

    def resume(self) -> None:
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()
        self._tick()

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.gaps_ms.append((now - self._last) * 1000)
            self.gap_starts.append(self._last)
        self._last = now

    @property
    def longest_ms(self) -> float:
        return max(self.gaps_ms, default=0.0)

    def worst(self, count: int = 3) -> list[tuple[float, float]]:
        """The ``count`` longest gaps as (start time, milliseconds), longest first."""
        return sorted(zip(self.gap_starts, self.gaps_ms), key=lambda pair: -pair[1])[:count]

    def percentile_ms(self, share: float) -> float:
        if not self.gaps_ms:
            return 0.0
        ordered = sorted(self.gaps_ms)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]
