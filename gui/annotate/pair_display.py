"""A pair as the annotator sees it: the prompt on top, two responses side by side.

Shared by the labelling screen and the pair dialog (browse / resolve). It only renders a
``storage.annotation_queue.PairView``: which response is on which side was decided in
storage (``PairView.swapped``). Long responses scroll together, proportionally, so the same
part of both answers stays in view.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QScrollBar, QSplitter, QVBoxLayout, QWidget

from gui.annotate.response_panel import PromptPanel, ResponsePanel
from gui.annotate.word_diff import highlight_differences


class ScrollSync:
    """Keep two vertical scroll bars at the same relative position."""

    def __init__(self, first: QScrollBar, second: QScrollBar):
        self.enabled = True
        self._busy = False
        first.valueChanged.connect(lambda _v: self._follow(first, second))
        second.valueChanged.connect(lambda _v: self._follow(second, first))

    def _follow(self, source: QScrollBar, target: QScrollBar) -> None:
        if self._busy or not self.enabled:
            return
        span = source.maximum() - source.minimum()
        fraction = (source.value() - source.minimum()) / span if span > 0 else 0.0
        self._busy = True  # the target's own valueChanged must not echo back
        try:
            target.setValue(round(target.minimum() + fraction * (target.maximum() - target.minimum())))
        finally:
            self._busy = False


class PairDisplay(QWidget):
    def __init__(self, left_keys: tuple[str, ...] = (), right_keys: tuple[str, ...] = (),
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.raw = False
        self.diff = False
        self.view = None  # the PairView on screen
        self.prompt = PromptPanel()
        self.left = ResponsePanel("Left", left_keys)
        self.right = ResponsePanel("Right", right_keys)
        self.sides = QSplitter(Qt.Orientation.Horizontal)
        self.sides.setChildrenCollapsible(False)
        self.sides.addWidget(self.left)
        self.sides.addWidget(self.right)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(self.prompt)
        self.splitter.addWidget(self.sides)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 3)
        self.splitter.setSizes([200, 600])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)
        self.scroll_sync = ScrollSync(self.left.browser.verticalScrollBar(),
                                      self.right.browser.verticalScrollBar())

    def show_pair(self, view) -> None:
        """Render ``view`` (a PairView): texts are set in place, no widget is rebuilt."""
        self.view = view
        self.rerender()
        self.prompt.set_chip("source", view.source)
        self.prompt.set_chip("split", view.split)
        self.prompt.set_chip("pair", f"#{view.pair_id}")

    def rerender(self) -> None:
        """Draw the pair again with the current options and theme colours (no widget is rebuilt)."""
        view = self.view
        if view is None:
            return
        self.prompt.show_prompt(view.prompt_text, view.prompt_messages, self.raw)
        self.left.show_text(view.left_text, self.raw)
        self.right.show_text(view.right_text, self.raw)
        if self.diff:
            highlight_differences(self.left.browser.document(), self.right.browser.document())
        self._fit_prompt()

    def _fit_prompt(self) -> None:
        """Give the prompt the height its text needs, at most 40% of the screen: a one-line
        question should not push the answers down, a long conversation scrolls."""
        total = sum(self.splitter.sizes())
        if total <= 0:
            return
        doc = self.prompt.browser.document()
        doc.setTextWidth(self.prompt.browser.viewport().width())
        wanted = int(doc.size().height()) + self.prompt.title.sizeHint().height() + 22
        prompt_height = max(90, min(wanted, int(total * 0.4)))
        self.splitter.setSizes([prompt_height, total - prompt_height])

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_prompt()

    def set_raw(self, raw: bool) -> None:
        if raw != self.raw:
            self.raw = raw
            self.rerender()

    def set_diff(self, diff: bool) -> None:
        if diff != self.diff:
            self.diff = diff
            self.rerender()
