"""The tug-of-war bar of the DPO explainer: how the model splits its preference between the
chosen and the rejected answer of the current batch (σ of the reward margin), 50/50 at step 0."""

from __future__ import annotations

import math

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPainterPath
from PySide6.QtWidgets import QSizePolicy, QVBoxLayout, QWidget

from gui.common.theme import colors, named_label


def tug_caption(share: float | None, chosen_reward: float | None = None,
                rejected_reward: float | None = None) -> str:
    """One sentence on what the bar shows now."""
    if share is None:
        return "At 50/50 the model has no preference. Training pulls the bar towards the chosen answer."
    lead = ("no preference yet" if abs(share - 0.5) < 0.02 else
            "leans towards the chosen answers" if share > 0.5 else "leans towards the rejected answers")
    text = f"This batch: the model {lead} ({share:.0%} vs {1 - share:.0%})."
    if chosen_reward is not None and rejected_reward is not None:
        text += (f" Chosen answers became {'more' if chosen_reward >= 0 else 'less'} likely than in the original"
                 f" model, rejected ones {'more' if rejected_reward >= 0 else 'less'} likely.")
    return text


class TugOfWarBar(QWidget):
    """A two-coloured bar split at the chosen share, with both percentages written on it."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.share: float | None = None
        self.setMinimumHeight(30)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_share(self, share: float | None) -> None:
        if share is not None and not math.isfinite(share):
            share = None
        self.share = None if share is None else min(1.0, max(0.0, share))
        self.update()

    def paintEvent(self, _event) -> None:  # noqa: N802 - Qt's name
        c = colors()
        share = 0.5 if self.share is None else self.share
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(self.rect()).adjusted(1, 1, -1, -1)
        clip = QPainterPath()
        clip.addRoundedRect(rect, 6, 6)
        painter.setClipPath(clip)
        split = rect.left() + rect.width() * share
        painter.fillRect(QRectF(rect.left(), rect.top(), split - rect.left(), rect.height()), QColor(c["good"]))
        painter.fillRect(QRectF(split, rect.top(), rect.right() - split, rect.height()), QColor(c["bad"]))
        painter.setClipping(False)
        painter.setPen(QColor("#ffffff"))
        font = QFont(self.font())
        font.setBold(True)
        painter.setFont(font)
        painter.drawText(rect.adjusted(10, 0, -10, 0), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                         f"Chosen {share:.0%}")
        painter.drawText(rect.adjusted(10, 0, -10, 0), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                         f"Rejected {1 - share:.0%}")
        painter.setPen(QColor("#ffffff"))
        painter.drawLine(int(rect.left() + rect.width() / 2), int(rect.top()), int(rect.left() + rect.width() / 2),
                         int(rect.bottom()))
        painter.end()


class TugOfWar(QWidget):
    """The bar and its caption."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        title = named_label("Tug-of-war: which answer the model prefers", "stat")
        self.bar = TugOfWarBar()
        self.caption = named_label(tug_caption(None), "smallMuted", wrap=True)
        # A fixed height of two lines: a caption that re-wrapped to another height would
        # re-lay out the window and repaint every plot below it on each update.
        self.caption.setFixedHeight(2 * self.caption.fontMetrics().lineSpacing() + 4)
        layout.addWidget(title)
        layout.addWidget(self.bar)
        layout.addWidget(self.caption)

    def show_metrics(self, metrics: dict[str, float] | None) -> None:
        if not metrics:
            self.bar.set_share(None)
            self.caption.setText(tug_caption(None))
            return
        share = metrics.get("prob/preference")
        self.bar.set_share(share)
        self.caption.setText(tug_caption(share, metrics.get("rewards/chosen"), metrics.get("rewards/rejected")))
