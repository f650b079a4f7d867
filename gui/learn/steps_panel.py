"""The six steps of one pair, shown one at a time (Back / Next, or a step's number), as the
explainer walks through its worked example: why, the formula, the numbers, what they mean.

The steps are ``core.operations.learn.Step`` values; this panel only renders them.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QButtonGroup, QFrame, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout,
                               QWidget)

from core.operations.learn import Step
from gui.common.theme import colors
from gui.learn.formula import formula_html, scripts_html


class StepsPanel(QWidget):
    step_changed = Signal(int)      # the index shown now (0..5)

    def __init__(self, show_ladder: bool = True, parent: QWidget | None = None):
        super().__init__(parent)
        self.show_ladder = show_ladder
        self.steps: list[Step] = []
        self.index = 0
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(10)

        strip = QHBoxLayout()
        strip.setSpacing(6)
        self.step_buttons = QButtonGroup(self)
        self.step_buttons.setExclusive(True)
        for number in range(1, 7):
            button = QPushButton(str(number))
            button.setCheckable(True)
            button.setObjectName("stepButton")
            button.setFixedSize(38, 32)
            button.setToolTip(f"Step {number}")
            self.step_buttons.addButton(button, number - 1)
            strip.addWidget(button)
        self.step_buttons.idClicked.connect(self.show_step)
        strip.addSpacing(10)
        self.counter = QLabel()
        self.counter.setObjectName("cardTitle")
        strip.addWidget(self.counter)
        strip.addStretch(1)
        layout.addLayout(strip)

        self.title = QLabel()
        self.title.setObjectName("heading")
        self.title.setWordWrap(True)
        layout.addWidget(self.title)
        self.why = QLabel()
        self.why.setObjectName("subheading")
        self.why.setWordWrap(True)
        layout.addWidget(self.why)

        self.formula_box = QFrame()
        self.formula_box.setObjectName("formulaBox")
        box = QVBoxLayout(self.formula_box)
        box.setContentsMargins(16, 12, 16, 12)
        self.formula = QLabel()
        self.formula.setTextFormat(Qt.TextFormat.RichText)
        self.formula.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.formula.setWordWrap(True)
        box.addWidget(self.formula)
        layout.addWidget(self.formula_box)

        self.numbers = QLabel()
        self.numbers.setTextFormat(Qt.TextFormat.RichText)
        self.numbers.setWordWrap(True)
        self.numbers.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.numbers.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        layout.addWidget(self.numbers)
        self.note = QLabel()
        self.note.setWordWrap(True)
        layout.addWidget(self.note)
        self.so_far = QLabel()
        self.so_far.setObjectName("soFar")
        self.so_far.setTextFormat(Qt.TextFormat.RichText)
        self.so_far.setWordWrap(True)
        layout.addWidget(self.so_far)
        self.so_far.setVisible(show_ladder)
        layout.addStretch(1)

        self.buttons_row = buttons = QHBoxLayout()
        self.back_button = QPushButton("◀  Back")
        self.back_button.clicked.connect(self.back)
        self.next_button = QPushButton("Next  ▶")
        self.next_button.setObjectName("primary")
        self.next_button.clicked.connect(self.next)
        buttons.addWidget(self.back_button)
        buttons.addStretch(1)
        buttons.addWidget(self.next_button)
        layout.addLayout(buttons)
        self.refresh_theme()
        self._render()

    def set_steps(self, steps: list[Step] | tuple[Step, ...], keep_index: bool = False) -> None:
        self.steps = list(steps)
        if not keep_index:
            self.index = 0
        self._render()

    def show_step(self, index: int) -> None:
        if self.steps:
            self.index = max(0, min(index, len(self.steps) - 1))
            self._render()
            self.step_changed.emit(self.index)

    def next(self) -> None:
        self.show_step(self.index + 1)

    def back(self) -> None:
        self.show_step(self.index - 1)

    def current(self) -> Step | None:
        return self.steps[self.index] if self.steps else None

    def refresh_theme(self) -> None:
        c = colors()
        self.formula_box.setStyleSheet(f"QFrame#formulaBox {{ background: {c['accent_soft']}; border-radius: 8px; }}")
        self.note.setStyleSheet(f"color: {c['accent']};")
        self.so_far.setStyleSheet(f"QLabel#soFar {{ background: {c['alt']}; border: 1px solid {c['border']}; "
                                  "border-radius: 8px; padding: 8px 12px; }")
        for button in self.step_buttons.buttons():
            button.setStyleSheet(
                f"QPushButton#stepButton {{ padding: 0; border-radius: 16px; font-weight: 700; }}"
                f"QPushButton#stepButton:checked {{ background: {c['accent']}; color: {c['accent_text']}; "
                f"border: 1px solid {c['accent']}; }}")
        self._render()

    def _render(self) -> None:
        step = self.current()
        for button in self.step_buttons.buttons():
            button.setEnabled(bool(self.steps))
        self.back_button.setEnabled(step is not None and self.index > 0)
        self.next_button.setEnabled(step is not None and self.index < len(self.steps) - 1)
        if step is None:
            self.counter.setText("")
            self.title.setText("No steps yet")
            for label in (self.why, self.formula, self.numbers, self.note, self.so_far):
                label.setText("")
            return
        self.step_buttons.button(self.index).setChecked(True)
        self.counter.setText(f"STEP {step.number} OF {len(self.steps)}")
        self.title.setText(f"Step {step.number}: {step.title}")
        self.why.setText(f"Why: {step.why}")
        c = colors()
        self.formula.setText(formula_html(step.formula, color=c["text"]))
        self.numbers.setText(numbers_html(step.lines, c["accent"]))
        self.note.setText(f"({step.note})" if step.note else "")
        self.so_far.setText(ladder_html(self.steps, self.index, c))


def ladder_html(steps: list[Step], index: int, c: dict[str, str]) -> str:
    """All six steps as a ladder: the ones walked so far with their results, the current one
    highlighted, the rest still to come."""
    rows = []
    for i, step in enumerate(steps):
        color = c["accent"] if i == index else c["text"] if i < index else c["muted"]
        result = scripts_html(step.result) if i <= index else "…"
        weight = "700" if i == index else "400"
        rows.append(f"<tr style='color:{color}; font-weight:{weight};'><td style='padding: 3px 10px 3px 0;'>"
                    f"{step.number}</td><td style='padding: 3px 18px 3px 0;'>{html.escape(step.title)}</td>"
                    f"<td style='padding: 3px 0;'>{result}</td></tr>")
    return (f"<div style='color:{c['muted']}; font-size: 9pt; font-weight: 700;'>THE SIX STEPS SO FAR</div>"
            f"<table cellspacing='0' style='font-size: 10.5pt;'>{''.join(rows)}</table>")


def numbers_html(lines: tuple[str, ...], accent: str) -> str:
    """The step's lines as a table: what is computed on the left, the result (after the last
    " = " or ": ") large on the right."""
    rows = []
    for line in lines:
        cut = max(line.rfind(" = "), line.rfind(": "))
        left, right = (line[:cut + 1], line[cut + 3 if line[cut:cut + 3] == " = " else cut + 2:]) if cut > 0 \
            else ("", line)
        sign = "=" if line[cut:cut + 3] == " = " else ""
        rows.append(f"<tr><td style='padding: 5px 10px 5px 0; font-size: 12.5pt;'>{html.escape(left.rstrip(': '))}"
                    f" {sign}</td><td style='padding: 5px 0; font-size: 17pt; font-weight: 700; color: {accent};'>"
                    f"{html.escape(right)}</td></tr>")
    return f"<table cellspacing='0'>{''.join(rows)}</table>"

