"""The tabs that close the loop (rounds, chat, blind A/B, evaluate, learn), each built the first
time it is opened.

A tab's view is ``ViewClass(workspace, db, annotator_name)``: the workspace, the window's one
``DatabaseWorker`` and the annotator at the keys (None before one is picked). Like every view it
may have ``changes_made`` / ``status_message`` signals and ``on_changes``, ``set_annotator``,
``stop_timers``, ``confirm_close`` and ``refresh_theme`` methods; the main window wires what it
finds. Importing a view's module is deferred to the first opening, so labelling never pays for
the screens it does not use.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget


@dataclass(frozen=True)
class LoopTab:
    title: str
    module: str
    view_class: str


LOOP_TABS = (
    LoopTab("Rounds", "gui.rounds.rounds_view", "RoundsView"),
    LoopTab("Chat", "gui.chat.chat_view", "ChatView"),
    LoopTab("Blind A/B", "gui.blind.blind_view", "BlindView"),
    LoopTab("Evaluate", "gui.evaluate.evaluate_view", "EvaluateView"),
    LoopTab("Learn", "gui.learn.learn_view", "LearnView"),
)


def placeholder(text: str) -> QWidget:
    widget = QWidget()
    layout = QVBoxLayout(widget)
    label = QLabel(text)
    label.setObjectName("subheading")
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    layout.addWidget(label)
    return widget


class LazyPage(QWidget):
    """A tab's page: empty until ``build`` puts the real view in it."""

    def __init__(self, tab: LoopTab, parent: QWidget | None = None):
        super().__init__(parent)
        self.tab = tab
        self.view: QWidget | None = None
        QVBoxLayout(self).setContentsMargins(0, 0, 0, 0)

    def build(self, workspace, db, annotator_name: str | None) -> QWidget | None:
        """Make the view (once); returns it, or None when this build lacks it (a placeholder shows)."""
        if self.view is not None:
            return self.view
        try:
            module = importlib.import_module(self.tab.module)
        except ModuleNotFoundError as exc:
            if exc.name != self.tab.module:
                raise
            self.layout().addWidget(placeholder(f"The {self.tab.title} screen is not part of this build yet."))
            return None
        self.view = getattr(module, self.tab.view_class)(workspace, db, annotator_name)
        self.layout().addWidget(self.view)
        return self.view
