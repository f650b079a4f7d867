"""The loss calculator, after the explainer's: β and the two log-ratios (or the four log-probs they
come from) in, the implicit rewards, P(chosen ≻ rejected), the loss and the gradient weight out,
with the loss curve −log σ(β·x) and the current point on it. Plain maths
(``core.operations.learn.calculate``), recomputed on every move."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QCheckBox, QDoubleSpinBox, QFrame, QGridLayout, QHBoxLayout, QLabel, QSlider,
                               QVBoxLayout, QWidget)

from core.operations import learn
from gui.common.theme import colors, named_label

PREFERENCE, LOSS = "#3b5bdb", "#5f3dc4"
# The plot's x axis: log-ratio differences in [−span, +span] with β·span about 4 (the curve's bend in
# view at any β), widened to keep the current point inside.
CURVE_BETA_SPAN, CURVE_MIN_SPAN, CURVE_MAX_SPAN = 4.0, 3.0, 40.0


class ValueControl(QWidget):
    """A slider and a spin box on one value, with a one-line explanation under them."""

    value_changed = Signal(float)

    def __init__(self, name_html: str, help_text: str, low: float, high: float, value: float,
                 slider_low: float | None = None, slider_high: float | None = None, decimals: int = 2, parent=None):
        super().__init__(parent)
        self._scale = 100
        self._exact: float | None = None     # a value set from outside, more precise than the spin box shows
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(12)
        grid.setVerticalSpacing(2)
        name = QLabel(name_html)
        name.setTextFormat(Qt.TextFormat.RichText)
        name.setMinimumWidth(150)
        grid.addWidget(name, 0, 0)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(round((low if slider_low is None else slider_low) * self._scale),
                             round((high if slider_high is None else slider_high) * self._scale))
        grid.addWidget(self.slider, 0, 1)
        self.spin = QDoubleSpinBox()
        self.spin.setRange(low, high)
        self.spin.setDecimals(decimals)     # a real pair's log-ratios keep their third decimal
        self.spin.setSingleStep(0.05)
        self.spin.setFixedWidth(96)
        self.spin.setAlignment(Qt.AlignmentFlag.AlignRight)
        grid.addWidget(self.spin, 0, 2)
        self.help = QLabel(help_text)
        self.help.setObjectName("muted")
        self.help.setWordWrap(True)
        grid.addWidget(self.help, 1, 0, 1, 3)
        grid.setColumnStretch(1, 1)
        self.spin.setValue(value)
        self.slider.setValue(round(value * self._scale))
        self.slider.valueChanged.connect(self._slider_moved)
        self.spin.valueChanged.connect(self._spin_changed)

    def value(self) -> float:
        shown = self.spin.value()
        if self._exact is not None and shown == round(self._exact, self.spin.decimals()):
            return self._exact
        return shown

    def set_value(self, value: float) -> None:
        """Show ``value`` (rounded by the spin box) but compute with it exactly until the user edits it."""
        self._exact = value
        if self.spin.value() == round(value, self.spin.decimals()):
            self.value_changed.emit(value)
        else:
            self.spin.setValue(value)

    def _slider_moved(self, position: int) -> None:
        self._exact = None
        self.spin.setValue(position / self._scale)

    def _spin_changed(self, value: float) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(round(value * self._scale))       # the slider clamps; the spin box does not
        self.slider.blockSignals(False)
        self.value_changed.emit(value)


class StatTile(QFrame):
    def __init__(self, caption: str, color: str, parent=None):
        super().__init__(parent)
        self.setObjectName("statTile")
        self.color = color          # a theme colour name, or a fixed colour
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 8)
        layout.setSpacing(0)
        self.value = QLabel("—")
        self.caption = QLabel(caption)
        self.caption.setObjectName("muted")
        self.caption.setWordWrap(True)
        layout.addWidget(self.value)
        layout.addWidget(self.caption)


class CalculatorPanel(QFrame):
    numbers_changed = Signal(object)       # a learn.DpoNumbers

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("card")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 14, 18, 14)
        layout.setSpacing(10)
        layout.addWidget(named_label("LOSS CALCULATOR", "cardTitle"))
        layout.addWidget(named_label("Move the sliders: the hidden rewards, the model's confidence and the loss "
                                     "follow.", "subheading", wrap=True))

        self.beta = ValueControl("<b>β</b> &nbsp;drift penalty", "Higher = stay closer to the reference model.",
                                 0.01, 5.0, 0.10, slider_high=1.0)
        self.chosen = ValueControl("<b>log-ratio</b> (chosen)", "log π<sub>θ</sub>(y<sub>w</sub>|x) / "
                                   "π<sub>ref</sub>(y<sub>w</sub>|x): positive means the trained model favours the "
                                   "chosen answer more than the reference does.", -500.0, 500.0, 1.50, -5.0, 5.0, 3)
        self.rejected = ValueControl("<b>log-ratio</b> (rejected)", "log π<sub>θ</sub>(y<sub>l</sub>|x) / "
                                     "π<sub>ref</sub>(y<sub>l</sub>|x): negative means it disfavours the rejected "
                                     "answer more than the reference does.", -500.0, 500.0, -0.50, -5.0, 5.0, 3)
        for control in (self.beta, self.chosen, self.rejected):
            control.help.setTextFormat(Qt.TextFormat.RichText)
            control.value_changed.connect(self.update_readouts)
            layout.addWidget(control)
        layout.addWidget(self._logp_inputs())

        tiles = QGridLayout()
        tiles.setSpacing(8)
        self.chosen_tile = StatTile("reward, chosen\nβ × log-ratio", "good")
        self.rejected_tile = StatTile("reward, rejected\nβ × log-ratio", "bad")
        self.preference_tile = StatTile("P(chosen wins)\nσ(margin)", "accent")
        self.loss_tile = StatTile("loss\n−log σ(margin)", LOSS)
        for column, tile in enumerate((self.chosen_tile, self.rejected_tile, self.preference_tile, self.loss_tile)):
            tiles.addWidget(tile, 0, column)
        layout.addLayout(tiles)
        self.detail = QLabel()
        self.detail.setTextFormat(Qt.TextFormat.RichText)
        self.detail.setWordWrap(True)
        layout.addWidget(self.detail)

        self.plot_widget = pg.PlotWidget(background=colors()["card"])
        self.plot_widget.setMinimumHeight(190)
        self.plot_widget.setMenuEnabled(False)
        self.plot_widget.setMouseEnabled(x=False, y=False)
        self.plot_widget.hideButtons()
        plot = self.plot_widget.getPlotItem()
        plot.showGrid(x=True, y=True, alpha=0.15)
        plot.setLabel("bottom", "log-ratio difference  h(chosen) − h(rejected)")
        plot.setLabel("left", "loss")
        for axis in ("bottom", "left"):
            plot.getAxis(axis).enableAutoSIPrefix(False)
        self.coin_flip = pg.InfiniteLine(pos=learn.LN2, angle=0, pen=pg.mkPen(QColor("#868e96"), width=1,
                                                                               style=Qt.PenStyle.DashLine),
                                         label="coin flip (ln 2)", labelOpts={"position": 0.88, "color": "#868e96"})
        plot.addItem(self.coin_flip)
        self.curve = plot.plot(pen=pg.mkPen(QColor(LOSS), width=2.5))
        self.point = pg.ScatterPlotItem(size=12, brush=pg.mkBrush(PREFERENCE), pen=pg.mkPen("w", width=1.5))
        plot.addItem(self.point)
        layout.addWidget(self.plot_widget, 1)
        self.numbers = learn.calculate(0.1, 1.5, -0.5)
        self.refresh_theme()
        self.update_readouts()

    def _logp_inputs(self) -> QWidget:
        box = QWidget()
        column = QVBoxLayout(box)
        column.setContentsMargins(0, 0, 0, 0)
        self.from_logps = QCheckBox("Enter the four log-probabilities instead (the log-ratios follow)")
        column.addWidget(self.from_logps)
        self.logp_row = QWidget()
        row = QHBoxLayout(self.logp_row)
        row.setContentsMargins(0, 0, 0, 0)
        self.logp_spins: list[QDoubleSpinBox] = []
        names = ("log π<sub>θ</sub>(y<sub>w</sub>)", "log π<sub>ref</sub>(y<sub>w</sub>)",
                 "log π<sub>θ</sub>(y<sub>l</sub>)", "log π<sub>ref</sub>(y<sub>l</sub>)")
        for name, value in zip(names, (-10.5, -12.0, -14.5, -14.0)):
            label = QLabel(name)
            label.setTextFormat(Qt.TextFormat.RichText)
            spin = QDoubleSpinBox()
            spin.setRange(-10_000.0, 0.0)
            spin.setDecimals(3)
            spin.setValue(value)
            spin.valueChanged.connect(self._logps_changed)
            row.addWidget(label)
            row.addWidget(spin, 1)
            self.logp_spins.append(spin)
        column.addWidget(self.logp_row)
        self.logp_row.setVisible(False)
        self.from_logps.toggled.connect(self._use_logps)
        return box

    def _use_logps(self, on: bool) -> None:
        self.logp_row.setVisible(on)
        if on:
            self._logps_changed()

    def _logps_changed(self) -> None:
        policy_chosen, reference_chosen, policy_rejected, reference_rejected = (s.value() for s in self.logp_spins)
        self.chosen.set_value(policy_chosen - reference_chosen)
        self.rejected.set_value(policy_rejected - reference_rejected)

    def set_values(self, beta: float, chosen_logratio: float, rejected_logratio: float) -> None:
        self.from_logps.setChecked(False)
        self.beta.set_value(beta)
        self.chosen.set_value(chosen_logratio)
        self.rejected.set_value(rejected_logratio)

    def update_readouts(self, *_args) -> None:
        n = learn.calculate(self.beta.value(), self.chosen.value(), self.rejected.value())
        self.numbers = n
        self.chosen_tile.value.setText(learn.num(n.chosen_reward, signed=True))
        self.rejected_tile.value.setText(learn.num(n.rejected_reward, signed=True))
        self.preference_tile.value.setText(learn.percent(n.preference))
        self.loss_tile.value.setText(learn.num(n.loss))
        verdict = ("the model ranks this pair the right way" if n.margin > 0 else
                   "no preference yet" if n.margin == 0 else "the model prefers the rejected answer")
        self.detail.setText(
            f"margin r<sub>w</sub> − r<sub>l</sub> = <b>{learn.num(n.margin, signed=True)}</b> ({verdict}) · "
            f"gradient weight σ(−margin) = <b>{learn.num(n.gradient_weight)}</b>, how hard this pair still pushes")
        difference = n.chosen_logratio - n.rejected_logratio
        span = min(max(CURVE_BETA_SPAN / n.beta, CURVE_MIN_SPAN), CURVE_MAX_SPAN)
        span = max(span, abs(difference) * 1.2)
        xs = [-span + 2 * span * i / 200 for i in range(201)]
        self.curve.setData(xs, learn.loss_curve(n.beta, xs))
        self.point.setData([difference], [n.loss])
        self.numbers_changed.emit(n)

    def refresh_theme(self) -> None:
        c = colors()
        self.plot_widget.setBackground(c["card"])
        for tile in (self.chosen_tile, self.rejected_tile, self.preference_tile, self.loss_tile):
            tile.setStyleSheet(f"QFrame#statTile {{ background: {c['alt']}; border: 1px solid {c['border']}; "
                               "border-radius: 8px; }")
            tile.value.setStyleSheet(f"font-size: 20pt; font-weight: 700; color: {c.get(tile.color, tile.color)};")
