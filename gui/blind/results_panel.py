"""The results of a blind A/B comparison: the tuned model's win rate with its interval, drawn,
the counts behind it and each annotator's verdicts. The only place the models are named.

It renders a ``core.operations.blind.ComparisonResult``; the rate and its Wilson interval are
``core.operations.win_rate``'s (ties half, both-bad apart), nothing is computed here.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPen
from PySide6.QtWidgets import (QAbstractItemView, QGridLayout, QHeaderView, QLabel, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from core.operations.blind import ComparisonResult
from core.operations.win_rate import WinRate
from gui.annotate.response_panel import Card
from gui.common.theme import colors


def percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f}%"


class IntervalBar(QWidget):
    """A 0–100% axis with the even line at 50%, the interval as a band and the rate as a dot."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.rate: WinRate | None = None
        self.setMinimumHeight(74)

    def show_rate(self, rate: WinRate | None) -> None:
        self.rate = rate
        self.update()

    def paintEvent(self, _event) -> None:
        c = colors()
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        margin, width = 16.0, self.width() - 32.0
        axis_y = 30.0

        def x_of(value: float) -> float:
            return margin + value * width

        painter.setPen(QPen(QColor(c["border_strong"]), 2))
        painter.drawLine(int(x_of(0)), int(axis_y), int(x_of(1)), int(axis_y))
        small = QFont(self.font())
        small.setPointSizeF(max(7.5, small.pointSizeF() - 1))
        painter.setFont(small)
        for tick in (0, 0.25, 0.5, 0.75, 1):
            x = x_of(tick)
            painter.setPen(QPen(QColor(c["muted"]), 1))
            painter.drawLine(int(x), int(axis_y - 5), int(x), int(axis_y + 5))
            label = QRectF(x - 30, axis_y + 10, 60, 16)
            painter.drawText(label, Qt.AlignmentFlag.AlignCenter, f"{tick:.0%}")
        painter.setPen(QPen(QColor(c["muted"]), 1, Qt.PenStyle.DashLine))
        painter.drawLine(int(x_of(0.5)), 6, int(x_of(0.5)), int(axis_y + 6))
        painter.drawText(QRectF(x_of(0.5) + 6, 2, 120, 14), Qt.AlignmentFlag.AlignLeft, "even")
        rate = self.rate
        if rate is None or rate.rate is None:
            return
        good = rate.low > 0.5
        bad = rate.high < 0.5
        tone = QColor(c["good"] if good else c["bad"] if bad else c["accent"])
        band = QColor(tone)
        band.setAlpha(70)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(band)
        painter.drawRoundedRect(QRectF(x_of(rate.low), axis_y - 9, max(2.0, x_of(rate.high) - x_of(rate.low)), 18),
                                6, 6)
        painter.setBrush(tone)
        painter.drawEllipse(QRectF(x_of(rate.rate) - 7, axis_y - 7, 14, 14))
        painter.end()


def _stat(title: str) -> tuple[QWidget, QLabel]:
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(2)
    value = QLabel("—")
    value.setObjectName("heading")
    caption = QLabel(title)
    caption.setObjectName("muted")
    layout.addWidget(value)
    layout.addWidget(caption)
    return box, value


OUTCOME_WORDS = {"a_won": "A won", "b_won": "B won", "ties": "tie", "both_bad": "both bad", "skipped": "skipped"}


def _table(columns: tuple[str, ...]) -> QTableWidget:
    table = QTableWidget(0, len(columns))
    table.setHorizontalHeaderLabels(columns)
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
    table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    table.setShowGrid(False)
    table.setWordWrap(False)
    return table


def _fill_row(table: QTableWidget, row: int, cells, centred_from: int = 1) -> None:
    for column, value in enumerate(cells):
        text = " ".join(str(value).split())
        item = QTableWidgetItem(text if len(text) <= 160 else text[:157] + "…")
        item.setToolTip(str(value) if len(str(value)) > 60 else "")
        if column >= centred_from:
            item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
        table.setItem(row, column, item)


class ResultsPanel(QWidget):
    ANNOTATOR_COLUMNS = ("Annotator", "B won", "A won", "Tie", "Both bad", "B's win rate (95% interval)")
    PAIR_COLUMNS = ("Pair", "Prompt", "Left was", "Verdict", "A's answer", "B's answer")

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(12)

        summary = Card("Win rate of the model under test")
        self.headline = QLabel("")
        self.headline.setObjectName("heading")
        self.headline.setWordWrap(True)
        self.detail = QLabel("")
        self.detail.setObjectName("subheading")
        self.detail.setWordWrap(True)
        self.bar = IntervalBar()
        inner = QVBoxLayout()
        inner.setContentsMargins(16, 4, 16, 12)
        inner.setSpacing(6)
        inner.addWidget(self.headline)
        inner.addWidget(self.detail)
        inner.addWidget(self.bar)
        grid = QGridLayout()
        grid.setHorizontalSpacing(40)
        self.values: dict[str, QLabel] = {}
        for column, (key, title) in enumerate((("b_won", "B won"), ("a_won", "A won"), ("ties", "ties (count ½)"),
                                               ("both_bad", "both bad (not in the rate)"), ("n", "n in the rate"))):
            box, value = _stat(title)
            self.values[key] = value
            grid.addWidget(box, 0, column)
        grid.setColumnStretch(5, 1)
        inner.addLayout(grid)
        summary.body.addLayout(inner)
        layout.addWidget(summary)

        people = Card("By annotator")
        self.table = _table(self.ANNOTATOR_COLUMNS)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        people.body.addWidget(self.table)
        layout.addWidget(people)

        revealed = Card("Pairs, sides revealed")
        self.pairs = _table(self.PAIR_COLUMNS)
        header = self.pairs.horizontalHeader()
        for column, mode in enumerate((QHeaderView.ResizeMode.ResizeToContents, QHeaderView.ResizeMode.Stretch,
                                       QHeaderView.ResizeMode.ResizeToContents, QHeaderView.ResizeMode.ResizeToContents,
                                       QHeaderView.ResizeMode.Stretch, QHeaderView.ResizeMode.Stretch)):
            header.setSectionResizeMode(column, mode)
        revealed.body.addWidget(self.pairs, 1)
        layout.addWidget(revealed, 1)

        note = QLabel("Ties count half a win; both-bad verdicts are reported but left out of the rate. "
                      "The interval is Wilson's 95% score interval (closed form, honest for small n and near "
                      "0% or 100%). Each annotator's current verdict counts once.")
        note.setObjectName("muted")
        note.setWordWrap(True)
        layout.addWidget(note)
        self.result: ComparisonResult | None = None

    def show_result(self, result: ComparisonResult) -> None:
        self.result = result
        rate, a, b = result.win_rate, result.label_a, result.label_b
        if rate.rate is None:
            self.headline.setText(f"No verdicts yet on {b} against {a}")
            self.detail.setText("Judge the pairs on the Judge page; the win rate appears here.")
        else:
            self.headline.setText(f"{b} wins {percent(rate.rate)} against {a}")
            verdict = ("better than" if rate.low > 0.5 else "worse than" if rate.high < 0.5
                       else "not distinguishable from")
            self.detail.setText(f"95% interval {percent(rate.low)} – {percent(rate.high)} over {rate.n} "
                                f"verdict{'s' if rate.n != 1 else ''}: {b} is {verdict} {a} on these prompts.  "
                                f"A = {a}, B = {b}.")
        self.bar.show_rate(rate)
        outcomes = result.outcomes
        for key in ("b_won", "a_won", "ties", "both_bad"):
            self.values[key].setText(str(getattr(outcomes, key)))
        self.values["n"].setText(str(rate.n))
        self.table.setRowCount(len(result.by_annotator))
        for row, (name, own) in enumerate(result.annotator_rates.items()):
            counts = result.by_annotator[name]
            interval = f"{percent(own.rate)}  ({percent(own.low)} – {percent(own.high)})" if own.rate is not None else "—"
            _fill_row(self.table, row, (name, counts.b_won, counts.a_won, counts.ties, counts.both_bad, interval))
        rows = max(1, min(4, len(result.by_annotator)))   # room for the rows there are, up to four
        self.table.setFixedHeight(self.table.horizontalHeader().height() + rows * self.table.verticalHeader()
                                  .defaultSectionSize() + 2 * self.table.frameWidth() + 2)
        self.pairs.setRowCount(len(result.pairs))
        for row, pair in enumerate(result.pairs):
            said = ", ".join(OUTCOME_WORDS[o] for o in pair.outcomes) or "not judged"
            _fill_row(self.pairs, row, (f"#{pair.pair_id}", pair.prompt_text, f"{b if pair.b_shown_left else a}",
                                        said, pair.answer_a, pair.answer_b), centred_from=2)
            for column in (1, 4, 5):
                self.pairs.item(row, column).setTextAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
