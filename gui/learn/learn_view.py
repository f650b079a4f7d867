"""The Learn tab: DPO taught with numbers, after the explainer (``seed/dpo-explainer.txt``).

Three parts: the loss calculator (left), and on the right the explainer's worked example stepped
through its six steps, and the same six steps for one of the workspace's pairs under a run's
adapter ("what just happened"). The numbers are ``core.operations.learn``'s; this view renders them.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QTabWidget, QVBoxLayout, QWidget

from core.operations import learn
from gui.common.db_worker import DatabaseWorker
from gui.common.theme import colors, named_label
from gui.learn.calculator_panel import CalculatorPanel
from gui.learn.real_pair_panel import RealPairPanel
from gui.learn.steps_panel import StepsPanel

WORKED_TAB, REAL_TAB = 0, 1


class LearnView(QWidget):
    status_message = Signal(str)

    def __init__(self, workspace, db: DatabaseWorker, annotator_name: str | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.workspace = workspace
        self.db = db
        outer = QVBoxLayout(self)
        outer.setContentsMargins(18, 14, 18, 14)
        outer.setSpacing(10)
        outer.addWidget(named_label("Learn DPO with numbers", "heading"))
        outer.addWidget(named_label("DPO needs no reward model: the reward hides in how much the tuned model's "
                                    "probabilities have moved away from the original's. Play with the loss, walk "
                                    "through the explainer's example, then see what a run did to one of your own "
                                    "pairs.", "subheading", wrap=True))

        body = QHBoxLayout()
        body.setSpacing(14)
        self.calculator = CalculatorPanel()
        body.addWidget(self.calculator, 5)

        right = QFrame()
        right.setObjectName("card")
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(18, 10, 18, 14)
        self.tabs = QTabWidget()
        self.tabs.addTab(self._worked_example_page(), "Worked example")
        self.real_pair = RealPairPanel(workspace, db)
        self.tabs.addTab(self.real_pair, "What just happened: one of your pairs")
        right_layout.addWidget(self.tabs)
        body.addWidget(right, 6)
        outer.addLayout(body, 1)

        self.real_pair.open_in_calculator.connect(self.calculator.set_values)
        self.real_pair.status_message.connect(self.status_message)
        self.real_pair.load()

    def _worked_example_page(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 8, 0, 0)
        layout.setSpacing(10)
        self.setup = QLabel()
        self.setup.setTextFormat(Qt.TextFormat.RichText)
        self.setup.setWordWrap(True)
        layout.addWidget(self.setup)
        self._render_setup()
        self.worked_steps = StepsPanel()
        self.worked_steps.set_steps(learn.worked_example_steps())
        self.try_button = QPushButton("Try it in the calculator")
        self.try_button.setToolTip("Put the example's β and log-ratios into the loss calculator")
        self.try_button.clicked.connect(self._example_to_calculator)
        self.worked_steps.buttons_row.insertWidget(1, self.try_button)
        layout.addWidget(self.worked_steps, 1)
        return page

    def _example_to_calculator(self) -> None:
        n = learn.WORKED_EXAMPLE.inputs.numbers()
        self.calculator.set_values(n.beta, n.chosen_logratio, n.rejected_logratio)

    def _render_setup(self) -> None:
        example, c = learn.WORKED_EXAMPLE, colors()
        self.setup.setText(
            f"<b>Prompt</b> “{example.prompt}”<br><span style='color:{c['good']}'><b>Chosen</b></span> "
            f"“{example.chosen}” &nbsp; <span style='color:{c['bad']}'><b>Rejected</b></span> “{example.rejected}” "
            f"&nbsp; <b>β</b> {example.inputs.beta:g}")

    def on_changes(self, changes) -> None:
        self.real_pair.on_changes(changes)

    def refresh_theme(self) -> None:
        self._render_setup()
        self.calculator.refresh_theme()
        self.worked_steps.refresh_theme()
        self.real_pair.refresh_theme()
