"""The Chat tab's inputs: the message box (Enter sends, Shift+Enter a new line) and the compact
bar of sampling settings (temperature, top-p, max new tokens, seed).

The bar starts at ``core.engine.generation.SamplingSettings()`` (plain data: that module imports
torch only where it generates) and hands plain values (``values()``, its fields but ``n``); the
worker builds the settings object.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QDoubleSpinBox, QHBoxLayout, QLabel, QPlainTextEdit, QSpinBox, QWidget

from core.engine.generation import SamplingSettings


class MessageBox(QPlainTextEdit):
    send_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setPlaceholderText("Message both models…  (Enter sends, Shift+Enter adds a line)")
        self.setTabChangesFocus(True)
        self.setFixedHeight(72)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not (
                event.modifiers() & Qt.KeyboardModifier.ShiftModifier):
            text = self.toPlainText().strip()
            if text:
                self.send_requested.emit(text)
            event.accept()
            return
        super().keyPressEvent(event)


class SamplingBar(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        defaults = SamplingSettings()
        self.temperature = self._double(layout, "Temperature", 0.0, 2.0, 0.05, defaults.temperature,
                                        "0 answers greedily (the same every time); higher is more varied.")
        self.top_p = self._double(layout, "Top-p", 0.05, 1.0, 0.05, defaults.top_p,
                                  "Sample only from the most likely tokens holding this much probability.")
        self.max_new_tokens = self._integer(layout, "Max tokens", 1, 4096, defaults.max_new_tokens,
                                            "The longest answer, in tokens.")
        self.seed = self._integer(layout, "Seed", 0, 2**31 - 1, defaults.seed,
                                  "The same seed, conversation and settings give the same answers.")

    def values(self) -> dict:
        return {"temperature": round(self.temperature.value(), 4), "top_p": round(self.top_p.value(), 4),
                "max_new_tokens": self.max_new_tokens.value(), "seed": self.seed.value()}

    def _label(self, layout: QHBoxLayout, text: str, tip: str) -> None:
        label = QLabel(text)
        label.setObjectName("muted")
        label.setToolTip(tip)
        if layout.count():
            layout.addSpacing(10)
        layout.addWidget(label)

    def _double(self, layout, text, low, high, step, value, tip) -> QDoubleSpinBox:
        self._label(layout, text, tip)
        box = QDoubleSpinBox()
        box.setRange(low, high)
        box.setSingleStep(step)
        box.setDecimals(2)
        box.setValue(value)
        box.setToolTip(tip)
        box.setFixedWidth(64)
        layout.addWidget(box)
        return box

    def _integer(self, layout, text, low, high, value, tip) -> QSpinBox:
        self._label(layout, text, tip)
        box = QSpinBox()
        box.setRange(low, high)
        box.setValue(value)
        box.setToolTip(tip)
        box.setFixedWidth(72)
        layout.addWidget(box)
        return box
