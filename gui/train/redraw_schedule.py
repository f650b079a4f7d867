"""When the Train tab's plots are redrawn: never per step. Metrics are only appended to a
``MetricSeries`` as they arrive and the panels are marked stale; a timer ticks every 60 ms and
redraws one stale panel per tick, so each panel is repainted about three times a second and no
tick paints more than one plot (painting a plot costs ~10-30 ms on a 2-core machine; all six at
once stalled the window for 60-150 ms). The timer runs only while something is stale. Opening
or comparing runs redraws everything at once.
"""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QObject, QTimer

from core.operations.metric_series import MetricSeries
from gui.train.training_plots import TrainingPlots

REDRAW_INTERVAL_MS = 60
PANELS_PER_TICK = 1


class RedrawSchedule(QObject):
    """``mark_dirty()`` on news; ``redraw_all()`` for a whole new picture. ``what_to_draw()``
    returns (series, smoothing, overlays); ``on_news()`` runs once per batch of news (the
    progress line, the tug-of-war, the banners)."""

    def __init__(self, plots: TrainingPlots, what_to_draw: Callable[[], tuple[MetricSeries, float, list]],
                 on_news: Callable[[], None], parent: QObject | None = None):
        super().__init__(parent)
        self._plots = plots
        self._what_to_draw = what_to_draw
        self._on_news = on_news
        self._dirty = False
        self._stale_panels: list[str] = []
        self.count = 0      # redraws so far (one panel or all)
        self._timer = QTimer(self)
        self._timer.setObjectName("train-redraw")
        self._timer.setInterval(REDRAW_INTERVAL_MS)
        self._timer.timeout.connect(self._tick)
        plots.panel_built.connect(self.mark_dirty)   # a panel built late draws what is there

    def mark_dirty(self, *_args) -> None:
        self._dirty = True
        if not self._timer.isActive():
            self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def _tick(self) -> None:
        """New metrics mark every panel stale; each tick redraws the next few."""
        if self._dirty:
            self._dirty = False
            # Panels still waiting from the last change go first, then the rest.
            self._stale_panels += [key for key in self._plots.built_panels if key not in self._stale_panels]
            self._on_news()
        if self._stale_panels:
            batch, self._stale_panels = self._stale_panels[:PANELS_PER_TICK], self._stale_panels[PANELS_PER_TICK:]
            self.count += 1
            series, smoothing, overlays = self._what_to_draw()
            self._plots.redraw(series, smoothing, overlays, panels=batch)
        elif not self._dirty:
            self._timer.stop()   # nothing stale: no ticks until the next news

    def redraw_all(self) -> None:
        """Everything at once (opening or comparing runs)."""
        self._dirty = False
        self._stale_panels = []
        self.count += 1
        series, smoothing, overlays = self._what_to_draw()
        self._plots.redraw(series, smoothing, overlays)
        self._on_news()
