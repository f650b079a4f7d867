"""The reward-against-KL frontier (Rafailov et al. 2023, figure 2, left), one curve per run.

x: the KL of each checkpoint to the base, nats per reply, with a ±1 standard error bar;
y: what was gained — the held-out reward margin, the preference accuracy or (demo) the helpful
share. Each run's checkpoints are joined in step order (base → step-N → final), runs overlaid
in distinct colours with a legend; each point is labelled with its step. It draws
``core.operations.evaluate.RunEvaluation`` values and computes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont

from core.operations.evaluate import CheckpointEval, RunEvaluation
from gui.common.theme import colors

# Distinct, colour-blind-friendly hues (Okabe-Ito, darkened for a white card), then the theme accent.
RUN_COLORS = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#7f3c8d", "#4d4d4d")


@dataclass(frozen=True)
class YMetric:
    key: str
    label: str                      # the axis title, with its unit
    value: Callable[[CheckpointEval], float | None]
    percent: bool = False


Y_METRICS = (
    YMetric("margin", "Reward margin on held-out pairs (β·nats)", lambda r: r.margin),
    YMetric("helpful", "Helpful share of replies (%)", lambda r: r.helpful_share, percent=True),
    YMetric("accuracy", "Preference accuracy on held-out pairs (%)", lambda r: r.accuracy, percent=True),
)


def run_color(index: int) -> str:
    return RUN_COLORS[index % len(RUN_COLORS)]


def run_title(evaluation: RunEvaluation) -> str:
    """The run's name, with its β unless the name already says it."""
    if evaluation.beta is None or "β" in evaluation.run_name or "beta" in evaluation.run_name.lower():
        return evaluation.run_name
    return f"{evaluation.run_name}  (β = {evaluation.beta:g})"


class FrontierPlot(pg.PlotWidget):
    """``show_runs(evaluations, metric_key)`` redraws; ``points`` holds what each curve shows."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.points: dict[str, list[tuple[float, float]]] = {}   # run id -> (kl, y) in step order
        self._metric = Y_METRICS[0]
        self.showGrid(x=True, y=True, alpha=0.18)
        self.setMenuEnabled(False)
        # Bottom right: the corner a frontier leaves empty (much drift, little gain).
        self.legend = self.addLegend(offset=(-12, -12), labelTextSize="9pt")
        self.refresh_theme()

    def refresh_theme(self) -> None:
        c = colors()
        self.setBackground(c["card"])
        for side in ("left", "bottom"):
            axis = self.getAxis(side)
            axis.enableAutoSIPrefix(False)     # "nats" stay nats: no "(x0.001)" rescaling of the axis
            axis.setPen(pg.mkPen(c["border_strong"]))
            axis.setTextPen(pg.mkPen(c["muted"]))
        self.legend.setBrush(pg.mkBrush(QColor(c["card"])))
        self.legend.setPen(pg.mkPen(c["border"]))
        self.legend.setLabelTextColor(c["text"])
        self._axis_titles()

    def _axis_titles(self) -> None:
        c = colors()
        style = {"color": c["text"], "font-size": "10pt"}
        self.setLabel("bottom", "KL(tuned ‖ base), nats per reply  (±1 s.e.)", **style)
        self.setLabel("left", self._metric.label, **style)

    def metric(self, key: str) -> YMetric:
        return next((m for m in Y_METRICS if m.key == key), Y_METRICS[0])

    def show_runs(self, evaluations: Sequence[RunEvaluation], metric_key: str,
                  run_colors: Sequence[str] | None = None) -> None:
        """Draw each run in ``run_colors[i]`` (default: ``run_color(i)``)."""
        self._metric = metric = self.metric(metric_key)
        self.clear()
        self.legend.clear()
        self.points = {}
        self._axis_titles()
        c = colors()
        zero = pg.InfiniteLine(0, angle=90, pen=pg.mkPen(c["border_strong"], width=1, style=Qt.PenStyle.DashLine))
        self.addItem(zero)
        scale = 100.0 if metric.percent else 1.0
        font = QFont()
        font.setPointSizeF(8)
        base_labelled = False
        for index, evaluation in enumerate(evaluations):
            rows = [r for r in evaluation.rows if metric.value(r) is not None]
            if not rows:
                continue
            color = run_colors[index] if run_colors is not None else run_color(index)
            kl = np.array([r.kl for r in rows])
            y = np.array([metric.value(r) * scale for r in rows])
            stderr = np.array([r.kl_stderr for r in rows])
            self.points[evaluation.run_id] = list(zip(kl.tolist(), y.tolist()))
            error = pg.ErrorBarItem(x=kl, y=y, left=stderr, right=stderr, beam=0.0,
                                    pen=pg.mkPen(QColor(color), width=1.4))
            self.addItem(error)
            self.plot(kl, y, pen=pg.mkPen(QColor(color), width=2.2), symbol="o", symbolSize=9,
                      symbolBrush=QColor(color), symbolPen=pg.mkPen(c["card"], width=1.5),
                      name=run_title(evaluation))
            for row, x_value, y_value in zip(rows, kl, y):
                if row.label == "base":
                    if base_labelled:       # every run starts at the same base: label it once
                        continue
                    base_labelled = True
                label = pg.TextItem("base" if row.label == "base" else f"step {row.step}", color=c["muted"],
                                    anchor=(-0.12, 1.1))
                label.setFont(font)
                label.setPos(float(x_value), float(y_value))
                self.addItem(label)
        self.enableAutoRange()
