"""One editor per training setting, chosen from its type and ``FieldSpec``: a check box, a combo
box of the choices' labels, a spin box with the field's range and unit, a number box that
reads "5e-5" as well as "0.00005", or a line of text.

A ``FieldEditor`` holds the editor, a caption line (what the value means, e.g. "≈ 4.4 epochs")
and the problem line shown when the value is bad. A value the editor cannot hold (out of its
range, or not a number: a preset or saved config may have one) is kept as given and shown as
typed, so it is refused with its reason rather than silently changed; the user's next edit
replaces it.
"""

from __future__ import annotations

import math
import re
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (QAbstractSpinBox, QCheckBox, QComboBox, QDoubleSpinBox, QHBoxLayout, QLabel,
                               QLineEdit, QSizePolicy, QSpinBox, QVBoxLayout, QWidget)

from core.engine.config_fields import FieldSpec, coerce

INT_LIMIT = 2**31 - 1
_PARTIAL_NUMBER = re.compile(r"^[+-]?(\d*\.?\d*)?([eE][+-]?\d*)?$")
_NO_RAW = object()


def format_number(value: float, decimals: int, log_scale: bool = False) -> str:
    """"0.1", "16", "5e-5": as short as the value allows."""
    if log_scale and value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        mantissa, exponent = f"{value:.3g}".split("e") if "e" in f"{value:.3g}" else (f"{value:.3g}", "0")
        return f"{mantissa}e{int(exponent)}"
    text = f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


class NumberSpinBox(QDoubleSpinBox):
    """A double spin box that shows the shortest text of its value and accepts scientific
    notation; a log-scale field steps through 1, 2, 5, 10, 20, 50…"""

    def __init__(self, spec: FieldSpec):
        super().__init__()
        self._log = spec.log_scale
        self.setDecimals(spec.decimals)
        self.setSingleStep(spec.step)

    def textFromValue(self, value: float) -> str:  # noqa: N802 (Qt's name)
        return format_number(value, self.decimals(), self._log)

    def valueFromText(self, text: str) -> float:  # noqa: N802
        try:
            return float(self._strip(text))
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):
        core = self._strip(text)
        if self.specialValueText() and text == self.specialValueText():
            return QValidator.State.Acceptable, text, pos
        try:
            number = float(core)
        except ValueError:
            state = QValidator.State.Intermediate if _PARTIAL_NUMBER.match(core) else QValidator.State.Invalid
            return state, text, pos
        inside = self.minimum() <= number <= self.maximum() and math.isfinite(number)
        return (QValidator.State.Acceptable if inside else QValidator.State.Intermediate), text, pos

    def fixup(self, text: str) -> str:
        return self.textFromValue(self.value())

    def stepBy(self, steps: int) -> None:  # noqa: N802
        if not self._log or self.value() <= 0:
            super().stepBy(steps)
            return
        value = self.value()
        for _ in range(abs(steps)):
            value = _next_log_step(value, up=steps > 0)
        self.setValue(min(max(value, self.minimum()), self.maximum()))

    def _strip(self, text: str) -> str:
        return text.removeprefix(self.prefix()).removesuffix(self.suffix()).strip().replace(",", "")


def _next_log_step(value: float, up: bool) -> float:
    """The next value of the 1-2-5 series above (or below) ``value``."""
    exponent = math.floor(math.log10(value))
    candidates = [m * 10.0 ** e for e in (exponent - 1, exponent, exponent + 1) for m in (1, 2, 5)]
    if up:
        return min(c for c in candidates if c > value * (1 + 1e-9))
    return max(c for c in candidates if c < value * (1 - 1e-9))


class _WheelOnlyWhenFocused(QObject):
    """A scrolled form must scroll, not change the field under the pointer."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.Wheel and isinstance(watched, QWidget) and not watched.hasFocus():
            event.ignore()
            return True
        return False


class FieldEditor(QWidget):
    """The editor of one setting with its caption and problem lines."""

    changed = Signal()

    def __init__(self, key: str, spec: FieldSpec, type_name: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.key, self.spec, self.type_name = key, spec, type_name
        self._raw: Any = _NO_RAW
        self.widget = self._make_widget()
        self.widget.setObjectName(f"field_{key}")
        self.widget.setToolTip(spec.help)
        self.widget.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self._wheel_filter = _WheelOnlyWhenFocused(self)
        if isinstance(self.widget, (QAbstractSpinBox, QComboBox)):
            self.widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
            self.widget.installEventFilter(self._wheel_filter)
        self.label = QLabel("" if type_name == "bool" else spec.label)   # a check box says its own label
        self.label.setObjectName("fieldLabel")
        self.label.setToolTip(spec.help)
        self.label.setBuddy(self.widget)
        self.row = QHBoxLayout(self)
        self.row.setContentsMargins(0, 0, 0, 0)
        self.row.setSpacing(6)
        self.row.addWidget(self.widget, 1)
        # Caption and problem sit under the editor, in the form's grid (see ``notes``).
        self.caption = self._line("fieldCaption")
        self.error = self._line("fieldError")
        self.notes = QWidget()
        column = QVBoxLayout(self.notes)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        column.addWidget(self.caption)
        column.addWidget(self.error)
        self.notes.setVisible(False)
        self._folded = False

    def parts(self) -> tuple[QLabel, QWidget, QWidget]:
        """Label, editor and notes: the three cells the form lays out."""
        return self.label, self, self.notes

    def set_folded(self, folded: bool) -> None:
        """Hide the whole setting (an advanced one, until "More settings" is opened)."""
        self._folded = folded
        self.label.setVisible(not folded)
        self.setVisible(not folded)
        self._update_notes()

    def _update_notes(self) -> None:
        problem = bool(self.error.text())
        self.error.setVisible(problem)
        self.caption.setVisible(bool(self.caption.text()) and not problem)
        self.notes.setVisible(not self._folded and (problem or bool(self.caption.text())))

    @staticmethod
    def _line(name: str) -> QLabel:
        label = QLabel("")
        label.setObjectName(name)
        label.setWordWrap(True)
        return label

    def _make_widget(self) -> QWidget:
        spec = self.spec
        if self.type_name == "bool":
            widget: QWidget = QCheckBox(spec.label)
            widget.toggled.connect(self._edited)
        elif spec.choices:
            widget = QComboBox()
            # May be narrower than its longest label (elided): a narrow panel must not scroll sideways.
            widget.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            widget.setMinimumContentsLength(10)
            for choice in spec.choices:
                widget.addItem(choice.label, choice.value)
            widget.currentIndexChanged.connect(self._edited)
        elif self.type_name in ("int", "float"):
            widget = NumberSpinBox(spec) if self.type_name == "float" else QSpinBox()
            low, high = _bounds(spec, self.type_name, getattr(widget, "decimals", lambda: 0)())
            widget.setRange(low, high)
            if self.type_name == "int":
                widget.setSingleStep(max(1, int(spec.step)))
            if spec.unit:
                widget.setSuffix(f" {spec.unit}")
            if spec.zero_means and low == 0:
                widget.setSpecialValueText(f"0 · {spec.zero_means}")
            widget.valueChanged.connect(self._edited)
            widget.editingFinished.connect(self._finished)
        else:
            widget = QLineEdit()
            widget.setProperty("textField", True)
            widget.textEdited.connect(self._edited)
        return widget

    # -- the value ------------------------------------------------------------------------
    def value(self) -> Any:
        if self._raw is not _NO_RAW:
            return self._raw
        widget = self.widget
        if isinstance(widget, QCheckBox):
            return widget.isChecked()
        if isinstance(widget, QComboBox):
            return widget.currentData()
        if isinstance(widget, QAbstractSpinBox):
            return widget.value()
        return widget.text().strip()

    def set_value(self, value: Any) -> None:
        widget = self.widget
        self._raw = _NO_RAW
        widget.blockSignals(True)
        try:
            if isinstance(widget, QComboBox):
                index = widget.findData(str(value))
                if index < 0:     # not one of the choices: shown, and refused by the checks
                    widget.addItem(f"{value} (unknown)", str(value))
                    index = widget.count() - 1
                widget.setCurrentIndex(index)
            elif isinstance(widget, QLineEdit):
                widget.setText("" if value is None else str(value))
                widget.setCursorPosition(0)   # a long path shows its start, not its tail
            else:
                self._set_typed(widget, value)
        finally:
            widget.blockSignals(False)
        self.changed.emit()

    def _set_typed(self, widget: QWidget, value: Any) -> None:
        try:
            typed = coerce(self.key, self.type_name, value)
        except ValueError:
            typed = None
        if isinstance(widget, QCheckBox):
            if typed is None:
                self._raw = value
            else:
                widget.setChecked(typed)
            return
        fits = typed is not None and math.isfinite(typed) and widget.minimum() <= typed <= widget.maximum()
        if fits and self.type_name == "float":
            fits = round(typed, widget.decimals()) == typed or self.spec.log_scale
        if fits:
            widget.setValue(typed)
        else:
            self._raw = value
            widget.lineEdit().setText(str(value))

    def _edited(self, *_args) -> None:
        self._raw = _NO_RAW
        self.changed.emit()

    def _finished(self) -> None:
        # Leaving a spin box that showed a kept value: it now shows (and holds) its own value.
        if self._raw is not _NO_RAW and self.widget.text() != str(self._raw):
            self._edited()

    # -- caption and problem -----------------------------------------------------------------
    def set_caption(self, text: str) -> None:
        self.caption.setText(text)
        self._update_notes()

    def set_problem(self, message: str) -> None:
        self.error.setText(message)
        self._update_notes()
        if bool(self.widget.property("invalid")) != bool(message):
            self.widget.setProperty("invalid", bool(message))
            self.widget.style().unpolish(self.widget)
            self.widget.style().polish(self.widget)

    def problem(self) -> str:
        return self.error.text()


def _bounds(spec: FieldSpec, type_name: str, decimals: int) -> tuple[float, float]:
    """The editor's range: the field's valid range (an open end nudged inside by one step of
    the editor's precision), within what a Qt spin box can hold."""
    tiny = 1 if type_name == "int" else 10.0 ** -decimals
    low = -INT_LIMIT if spec.minimum is None else spec.minimum + (tiny if spec.exclusive_min else 0)
    high = INT_LIMIT if spec.maximum is None else spec.maximum - (tiny if spec.exclusive_max else 0)
    if type_name == "int":
        return int(max(low, -INT_LIMIT)), int(min(high, INT_LIMIT))
    return float(low), float(high)
