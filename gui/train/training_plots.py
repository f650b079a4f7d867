"""The live plots of a training run (pyqtgraph): one panel per question a user asks of DPO.

Each panel has a title, a one-sentence caption for a reader new to DPO, smoothed curves over
faint raw points, eval points, and a hover read-out. ``TrainingPlots.redraw`` is called by the
view's timer (a few times a second), never per step; smoothing is incremental so a redraw
costs the new points only. Past runs can be overlaid (dashed, dotted...) to compare.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QGridLayout, QSizePolicy, QVBoxLayout, QWidget

from core.operations.metric_series import IncrementalEma, MetricSeries
from gui.common.staged_build import StagedBuild
from gui.common.theme import colors, named_label

PANEL_BUILD_INTERVAL_MS = 90

CHOSEN, REJECTED, MARGIN, LOSS, EVAL, OTHER = "#2b8a3e", "#c92a2a", "#3b5bdb", "#5f3dc4", "#e8590c", "#495057"
OVERLAY_STYLES = (Qt.PenStyle.DashLine, Qt.PenStyle.DotLine, Qt.PenStyle.DashDotLine, Qt.PenStyle.DashDotDotLine)
OVERLAY_NAMES = ("dashed", "dotted", "dash-dot", "dash-dot-dot")


@dataclass(frozen=True)
class CurveSpec:
    metric: str
    label: str
    color: str
    split: str = "train"
    dashed: bool = False        # reference-model curves


@dataclass(frozen=True)
class PanelSpec:
    key: str
    title: str
    caption: str
    y_label: str
    curves: tuple[CurveSpec, ...]
    percent: bool = False
    zero_line: bool = False


PANELS = (
    PanelSpec("loss", "Loss", "How wrong the model still is about the pairs; it falls as it learns "
              "(0.69 = coin flip, plus the SFT term if on).", "loss",
              (CurveSpec("loss", "train", LOSS), CurveSpec("loss", "eval (held-out pairs)", EVAL, "eval"))),
    PanelSpec("rewards", "Hidden rewards", "How much more (above 0) or less (below 0) likely the tuned model finds "
              "each answer than the original did, times β.", "reward",
              (CurveSpec("rewards/chosen", "chosen", CHOSEN), CurveSpec("rewards/rejected", "rejected", REJECTED),
               CurveSpec("rewards/margins", "margin (chosen − rejected)", MARGIN),
               CurveSpec("rewards/margins", "eval margin", EVAL, "eval")), zero_line=True),
    PanelSpec("accuracy", "Accuracy", "Share of pairs where the chosen answer got the higher reward.", "pairs",
              (CurveSpec("rewards/accuracies", "train", MARGIN),
               CurveSpec("rewards/accuracies", "eval", EVAL, "eval")), percent=True),
    PanelSpec("probs", "Answer probabilities", "Average per-token probability of each answer: tuned model "
              "(solid) against the original (dashed).", "per-token prob.",
              (CurveSpec("prob/chosen", "chosen", CHOSEN), CurveSpec("prob/rejected", "rejected", REJECTED),
               CurveSpec("prob/ref_chosen", "original", CHOSEN, dashed=True),
               CurveSpec("prob/ref_rejected", "original", REJECTED, dashed=True))),
    PanelSpec("preference", "Preference", "How sure the model is that the chosen answer beats the rejected one "
              "(50% = no preference yet).", "σ(margin)",
              (CurveSpec("prob/preference", "train", MARGIN),
               CurveSpec("prob/preference", "eval", EVAL, "eval")), percent=True),
    PanelSpec("optimizer", "Optimizer", "Learning rate (schedule) and gradient norm (size of each update "
              "before clipping).", "",
              (CurveSpec("grad_norm", "grad norm", OTHER), CurveSpec("learning_rate", "learning rate ×1e4", LOSS))),
)
# Learning rates are ~1e-4: scaled so they share the optimizer panel's axis with grad norms.
SCALE = {"learning_rate": 1e4}


def _pen(color: str, width: float = 2.0, alpha: int = 255, style=Qt.PenStyle.SolidLine):
    qcolor = QColor(color)
    qcolor.setAlpha(alpha)
    return pg.mkPen(qcolor, width=width, style=style)


def _legend_html(spec: PanelSpec) -> str:
    """"━ chosen  ━ rejected  ● eval", each mark in its curve's colour."""
    items = []
    for curve in spec.curves:
        mark = "●" if curve.split == "eval" else "╌╌" if curve.dashed else "━━"
        items.append(f'<span style="color:{curve.color}; font-weight:700">{mark}</span>&nbsp;{curve.label}')
    return "&nbsp;&nbsp; ".join(items)


class _Curve:
    """One metric in one panel: faint raw points, a smoothed line (train) or points (eval).

    Its plot items are made at its first data: a panel holds up to a dozen curves, most of
    them empty until a run (or a comparison) has that metric, and each item costs ~1 ms to make
    on the UI thread."""

    def __init__(self, plot: pg.PlotItem, spec: CurveSpec, overlay: int | None = None):
        self.spec = spec
        self.overlay = overlay
        self.smoother = IncrementalEma()
        self._plot = plot
        self.raw = None
        self.line = None

    def _make_items(self) -> None:
        spec, overlay, plot = self.spec, self.overlay, self._plot
        style = Qt.PenStyle.DashLine if spec.dashed else Qt.PenStyle.SolidLine
        if overlay is not None:
            style = OVERLAY_STYLES[overlay % len(OVERLAY_STYLES)]
        name = spec.label if overlay is None else None
        if spec.split == "eval":
            self.line = plot.plot([], [], pen=_pen(spec.color, 1.5, 220 if overlay is None else 150, style),
                                  symbol="o", symbolSize=6, symbolBrush=spec.color, symbolPen=None, name=name)
        else:
            if overlay is None and not spec.dashed:
                # Faint and thin: no antialiasing needed, and it is the cheapest line Qt draws.
                self.raw = plot.plot([], [], pen=_pen(spec.color, 1.0, 60), antialias=False)
            width = 2.0 if overlay is None else 1.6
            self.line = plot.plot([], [], pen=_pen(spec.color, width, 255 if overlay is None else 170, style),
                                  name=name)
        for item in (self.raw, self.line):
            if item is not None:
                # Peak downsampling keeps long runs cheap to draw (no clip-to-view: it breaks auto-range).
                item.setDownsampling(auto=True, method="peak")

    def update(self, series: MetricSeries, smoothing: float) -> None:
        steps, values = series.get(self.spec.metric, self.spec.split)
        if self.line is None:
            if steps.size == 0:
                return
            self._make_items()
        values = values * SCALE.get(self.spec.metric, 1.0)
        if self.spec.split == "eval":
            self.line.setData(steps, values)
            return
        if self.raw is not None:
            self.raw.setData(steps, values)
        self.line.setData(steps, self.smoother.update(values, smoothing))

    def remove(self, plot: pg.PlotItem) -> None:
        for item in (self.raw, self.line):
            if item is not None:
                plot.removeItem(item)


class _LazyMenuViewBox(pg.ViewBox):
    """A ViewBox whose right-click menu (a QMenu of a dozen widgets, ~4 ms on the UI thread,
    six times at the Train tab's first opening) is made at the first right-click."""

    def __init__(self):
        super().__init__(enableMenu=False)
        self.state["enableMenu"] = True       # right-clicks still open it: getMenu makes it then

    def getMenu(self, ev):  # noqa: N802 - pyqtgraph's name
        if self.menu is None:
            from pyqtgraph.graphicsItems.ViewBox.ViewBoxMenu import ViewBoxMenu

            self.menu = ViewBoxMenu(self)
            self.updateViewLists()
        return self.menu

    def getContextMenus(self, event):  # noqa: N802 - pyqtgraph's name
        return self.getMenu(event).actions()


class MetricPanel(QWidget):
    """Title, caption and plot of one ``PanelSpec``, with a hover read-out of the values."""

    def __init__(self, spec: PanelSpec, parent: QWidget | None = None):
        super().__init__(parent)
        self.spec = spec
        c = colors()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(1)
        title = named_label(spec.title, "panelTitle")
        caption = named_label(spec.caption, "smallMuted", wrap=True)
        caption.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.plot_widget = pg.PlotWidget(background=c["card"], viewBox=_LazyMenuViewBox())
        # Ignore the plot's size hint: it changes as the axis labels widen, and every change
        # would re-lay out the grid and repaint all six plots instead of the one that changed.
        self.plot_widget.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.plot_widget.setMinimumSize(180, 120)
        self.plot = self.plot_widget.getPlotItem()
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        self.plot.setLabel("bottom", "step")
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).enableAutoSIPrefix(False)   # "loss (x0.001)" reads badly
        if spec.y_label:
            self.plot.setLabel("left", spec.y_label)
        if spec.zero_line:
            self.plot.addItem(pg.InfiniteLine(0, angle=0, pen=_pen(c["muted"], 1, 120, Qt.PenStyle.DotLine)))
        if spec.percent:
            self.plot.setYRange(0, 1, padding=0.05)
        self.curves = [_Curve(self.plot, curve) for curve in spec.curves]
        self.overlay_curves: list[_Curve] = []
        self.hover_label = named_label(" ", "small")
        self.hover_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.hover_line = pg.InfiniteLine(angle=90, pen=_pen(c["muted"], 1, 150))
        self.hover_line.setVisible(False)
        self.plot.addItem(self.hover_line, ignoreBounds=True)
        self.plot_widget.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self._series: MetricSeries | None = None
        # The legend is a line of text above the plot: a legend box inside it hid the curves.
        self.legend_label = named_label(_legend_html(spec), "small", wrap=True)
        self.legend_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        layout.addWidget(title)
        layout.addWidget(caption)
        layout.addWidget(self.legend_label)
        layout.addWidget(self.plot_widget, 1)
        layout.addWidget(self.hover_label)

    def set_overlays(self, count: int) -> None:
        for curve in self.overlay_curves:
            curve.remove(self.plot)
        self.overlay_curves = [_Curve(self.plot, spec, overlay=i) for i in range(count)
                               for spec in self.spec.curves if not spec.dashed]

    def redraw(self, series: MetricSeries, smoothing: float, overlays: list[MetricSeries]) -> None:
        self._series = series
        for curve in self.curves:
            curve.update(series, smoothing)
        per_run = max(1, len(self.overlay_curves) // max(1, len(overlays))) if overlays else 0
        for index, curve in enumerate(self.overlay_curves):
            curve.update(overlays[index // per_run], smoothing)

    def set_log_y(self, on: bool) -> None:
        self.plot.setLogMode(y=on)

    def point_count(self, metric: str | None = None, split: str = "train") -> int:
        """Points drawn for ``metric`` (first curve's metric by default): for tests and checks."""
        for curve in self.curves:
            if (metric is None or curve.spec.metric == metric) and curve.spec.split == split:
                if curve.line is None:
                    return 0
                xs, _ = curve.line.getData()
                return 0 if xs is None else len(xs)
        return 0

    def describe_at(self, step: float) -> str:
        """"step 40 · chosen 0.12 · rejected −0.30 …" for the recorded step nearest ``step``."""
        if self._series is None:
            return " "
        parts: list[str] = []
        shown_step = None
        for curve in self.curves:
            steps, values = self._series.get(curve.spec.metric, curve.spec.split)
            if steps.size == 0:
                continue
            index = int(np.clip(np.searchsorted(steps, step), 0, steps.size - 1))
            if index > 0 and abs(steps[index - 1] - step) < abs(steps[index] - step):
                index -= 1
            shown_step = shown_step if shown_step is not None else int(steps[index])
            value = values[index]
            text = f"{value:.1%}" if self.spec.percent else f"{value:.4g}"
            parts.append(f"{curve.spec.label} {text}" + (f" @{int(steps[index])}" if curve.spec.split == "eval" else ""))
        if shown_step is None:
            return " "
        return f"step {shown_step} · " + " · ".join(parts)

    def _on_mouse_moved(self, position) -> None:
        if not self.plot.sceneBoundingRect().contains(position):
            self.hover_line.setVisible(False)
            return
        point = self.plot.vb.mapSceneToView(position)
        self.hover_line.setPos(point.x())
        self.hover_line.setVisible(True)
        self.hover_label.setText(self.describe_at(point.x()))


class TrainingPlots(QWidget):
    """The grid of panels (two rows of three).

    With ``gradually=True`` the panels are built one per turn of the event loop (a pyqtgraph
    plot costs tens of milliseconds to make; six at once froze the Train tab's first opening);
    ``panel_built`` fires for each. Reading ``panels`` builds the rest at once."""

    panel_built = Signal(str)

    def __init__(self, parent: QWidget | None = None, gradually: bool = False, start: bool = True):
        super().__init__(parent)
        pg.setConfigOptions(antialias=True, foreground=colors()["text"])
        self._grid = grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(6)
        for column in range(3):
            grid.setColumnStretch(column, 1)
        for row in range(2):
            grid.setRowStretch(row, 1)
        self._overlay_count = 0
        self._built: dict[str, MetricPanel] = {}
        self._waiting = list(PANELS)
        # A panel's first layout and paints take two or three turns after it is built: the next
        # one is built after them, not in the same turns.
        self._next = StagedBuild("plots-build", self, self._build_one, lambda: bool(self._waiting),
                                 interval_ms=PANEL_BUILD_INTERVAL_MS)
        # One empty cell per panel, so a panel joining the grid leaves the others' sizes alone
        # (re-laying out the grid repainted every plot built so far).
        self._cells = []
        for index in range(len(PANELS)):
            cell = QWidget()
            QVBoxLayout(cell).setContentsMargins(0, 0, 0, 0)
            grid.addWidget(cell, index // 3, index % 3)
            self._cells.append(cell)
        if gradually and start:
            self._next.start()
        elif not gradually:
            self.build_all()

    def start_building(self) -> None:
        """Begin building the panels one per turn (``gradually=True, start=False``)."""
        self._next.start()

    @property
    def is_built(self) -> bool:
        return not self._waiting

    @property
    def panels(self) -> dict[str, MetricPanel]:
        """Every panel (building those not built yet)."""
        self.build_all()
        return self._built

    @property
    def built_panels(self) -> dict[str, MetricPanel]:
        return self._built

    def build_all(self) -> None:
        self._next.finish()

    def _build_one(self) -> None:
        spec = self._waiting.pop(0)
        panel = MetricPanel(spec)
        if self._overlay_count:
            panel.set_overlays(self._overlay_count)
        self._cells[len(self._built)].layout().addWidget(panel)
        self._built[spec.key] = panel
        self.panel_built.emit(spec.key)

    def grab(self, *args):  # noqa: D102 - QWidget.grab, with every panel there
        self.build_all()
        return super().grab(*args)

    def redraw(self, series: MetricSeries, smoothing: float, overlays: list[MetricSeries] | None = None,
               panels: list[str] | None = None) -> None:
        """Update the curves of ``panels`` (all by default) from ``series`` and the overlays."""
        overlays = overlays or []
        if len(overlays) != self._overlay_count:
            for panel in self._built.values():
                panel.set_overlays(len(overlays))
            self._overlay_count = len(overlays)
        for key in panels or list(self._built):
            if key in self._built:
                self._built[key].redraw(series, smoothing, overlays)

    def set_log_loss(self, on: bool) -> None:
        self.panels["loss"].set_log_y(on)

    def point_count(self, panel: str, metric: str | None = None, split: str = "train") -> int:
        return self.panels[panel].point_count(metric, split)
