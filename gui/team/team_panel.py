"""The Team tab: who is labelling now, the members and their roles, who labelled what, how much
annotators agree, and the disputes to settle.

Numbers come from ``core.operations.team`` (``team_stats``, ``team_settings``), read through
the database worker; the overlap (how many distinct annotators must judge each pair) and the
lease time (how long a pair on someone's screen stays reserved for them) are set with
``set_overlap`` / ``set_lease_minutes``, as the annotator labelling here (only an owner may).
The live cards (``gui.team.team_now``) show the live leases and the connection state the main
window hands over (``show_connection``). Opening a dispute shows the pair with its history and
lets an owner record the final verdict. The queue-order card (``gui.team.queue_order_card``) sets
which open pairs come first and scores the pairs with a run's adapter. ``on_changes`` redraws the numbers when verdicts or
annotators changed and the settings when settings did.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QDoubleSpinBox, QGridLayout, QHBoxLayout, QHeaderView, QLabel, QPushButton, QSpinBox,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from core.operations.changes import Changes
from core.operations.connection import ConnectionState
from core.operations.team import (TeamSettings, TeamStats, set_lease_minutes, set_overlap, team_settings,
                                  team_stats)
from core.operations.wording import plural
from gui.annotate.response_panel import Card
from gui.common.db_worker import DatabaseWorker
from gui.pairs.pair_dialog import PairDialog
from gui.team.queue_order_card import QueueOrderCard
from gui.team.tables import read_only_table
from gui.team.team_now import LabellingNowCard, MembersCard
from storage.workspace import Workspace

COUNT_COLUMNS = ("Annotator", "Verdicts", "A", "B", "Tie", "Both bad", "Skip", "s / pair")
CHOICE_NAMES = {"a": "A", "b": "B", "tie": "tie", "both_bad": "both bad", "skip": "skip"}


def _fmt(value: float | None, digits: int = 2, percent: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value * 100:.0f}%" if percent else f"{value:.{digits}f}"


class TeamPanel(QWidget):
    changes_made = Signal(object)   # Changes: a setting or a role was changed, or a dispute resolved
    status_message = Signal(str)

    def __init__(self, workspace: Workspace, db: DatabaseWorker, parent: QWidget | None = None):
        super().__init__(parent)
        self.workspace = workspace
        self.db = db
        self.annotator: str | None = None
        self._disputes = []

        self.overlap = QSpinBox()
        self.overlap.setRange(1, 20)
        self.overlap.setEnabled(False)           # until the stored value has been read
        self.overlap.valueChanged.connect(self._set_overlap)
        self.lease = QDoubleSpinBox()
        self.lease.setRange(0.5, 24 * 60)
        self.lease.setDecimals(1)
        self.lease.setSuffix(" min")
        self.lease.setEnabled(False)
        self.lease.setKeyboardTracking(False)    # one write when the value is entered, not per digit
        self.lease.setToolTip("How long a pair on someone's screen stays reserved for them; the screen renews "
                              "it while the pair is shown, so this is how soon a vanished annotator's pairs return")
        self.lease.valueChanged.connect(self._set_lease)
        refresh = QPushButton("Refresh")
        refresh.setToolTip("Read the numbers again (other people may be labelling meanwhile)")
        refresh.clicked.connect(self.reload)
        top = QHBoxLayout()
        label = QLabel("Annotators per pair:")
        label.setObjectName("stat")
        top.addWidget(label)
        top.addWidget(self.overlap)
        note = QLabel("each pair is shown until this many different people have judged it (the overlap)")
        note.setObjectName("muted")
        top.addWidget(note)
        top.addSpacing(18)
        lease_label = QLabel("Reserved for:")
        lease_label.setObjectName("stat")
        top.addWidget(lease_label)
        top.addWidget(self.lease)
        top.addStretch(1)
        top.addWidget(refresh)

        stats_card = Card("Agreement")
        grid = QGridLayout()
        grid.setContentsMargins(14, 6, 14, 10)
        self.stats: dict[str, QLabel] = {}
        for col, (key, title) in enumerate((("pairs", "pairs judged by 2+"), ("percent", "raw agreement"),
                                            ("fleiss", "Fleiss' κ"), ("alpha", "Krippendorff's α"))):
            value = QLabel("—")
            value.setObjectName("heading")
            caption = QLabel(title)
            caption.setObjectName("muted")
            grid.addWidget(value, 0, col)
            grid.addWidget(caption, 1, col)
            self.stats[key] = value
        stats_card.body.addLayout(grid)
        self.kappas = QLabel("")
        self.kappas.setObjectName("muted")
        self.kappas.setWordWrap(True)
        self.kappas.setContentsMargins(14, 0, 14, 8)
        stats_card.body.addWidget(self.kappas)

        counts_card = Card("Annotators")
        self.counts = read_only_table(COUNT_COLUMNS)
        for column in range(1, len(COUNT_COLUMNS)):
            self.counts.horizontalHeader().setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        counts_card.body.addWidget(self.counts)
        disputes_card = Card("Disagreements")
        self.disputes = read_only_table(("Pair", "Verdicts", "Resolution"))
        self.disputes.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.disputes.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.disputes.cellDoubleClicked.connect(lambda row, _c: self.open_dispute(row))
        hint = QLabel("Double-click a disagreement to read the pair and record the final verdict.")
        hint.setObjectName("muted")
        hint.setContentsMargins(14, 0, 14, 8)
        disputes_card.body.addWidget(self.disputes)
        disputes_card.body.addWidget(hint)

        self.now = LabellingNowCard(workspace, db)
        self.members = MembersCard(workspace, db)
        self.members.changes_made.connect(self.changes_made)
        self.queue_order = QueueOrderCard(workspace, db)
        self.queue_order.changes_made.connect(self.changes_made)
        self.queue_order.status_message.connect(self.status_message)
        live = QHBoxLayout()
        live.addWidget(self.now, 1)
        live.addWidget(self.members, 1)
        columns = QHBoxLayout()
        columns.addWidget(counts_card, 1)
        columns.addWidget(disputes_card, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 12, 14, 12)
        layout.setSpacing(10)
        layout.addLayout(top)
        layout.addWidget(self.queue_order)
        layout.addLayout(live)
        layout.addWidget(stats_card)
        layout.addLayout(columns, 1)
        self.reload()

    def set_annotator(self, name: str | None) -> None:
        self.annotator = name
        self.members.annotator = name
        self.queue_order.annotator = name
        self.members.reload()

    def show_connection(self, state: ConnectionState) -> None:
        self.now.show_connection(state)

    def stop_timers(self) -> None:
        self.now.stop_timers()
        self.queue_order.stop()

    # -- reads (database thread) -----------------------------------------------------
    def reload(self) -> None:
        self.reload_settings()
        self.reload_stats()
        self.now.reload()
        self.members.reload()
        self.queue_order.reload()

    def reload_settings(self) -> None:
        self.db.submit(team_settings, self.workspace, on_done=self._show_settings)

    def reload_stats(self) -> None:
        self.db.submit(team_stats, self.workspace, on_done=self._show_stats)

    def on_changes(self, changes: Changes) -> None:
        self.queue_order.on_changes(changes)
        if changes.settings:
            self.reload_settings()
        if changes.verdicts or changes.annotators:
            self.reload_stats()
            self.now.reload()     # a verdict ends a lease
        if changes.annotators:
            self.members.reload()

    # -- writes ----------------------------------------------------------------------
    def _set_overlap(self, value: int) -> None:
        self.db.submit(set_overlap, self.workspace, value, actor=self.annotator, on_done=self.changes_made.emit,
                       on_failed=self._setting_refused)

    def _set_lease(self, minutes: float) -> None:
        self.db.submit(set_lease_minutes, self.workspace, minutes, actor=self.annotator,
                       on_done=self.changes_made.emit, on_failed=self._setting_refused)

    def _setting_refused(self, exc: BaseException) -> None:
        self.status_message.emit(f"Setting not changed: {exc}")
        self.reload_settings()

    # -- drawing ---------------------------------------------------------------------
    def _show_settings(self, settings: TeamSettings) -> None:
        self.overlap.blockSignals(True)
        self.overlap.setValue(settings.overlap)
        self.overlap.blockSignals(False)
        self.overlap.setEnabled(True)
        self.lease.blockSignals(True)
        self.lease.setValue(settings.lease_minutes)
        self.lease.blockSignals(False)
        self.lease.setEnabled(True)

    def _show_stats(self, stats: TeamStats) -> None:
        report = stats.agreement
        self.stats["pairs"].setText(f"{report.n_pairs:,}")
        self.stats["percent"].setText(_fmt(report.percent_agreement, percent=True))
        self.stats["fleiss"].setText(_fmt(report.fleiss_kappa))
        self.stats["alpha"].setText(_fmt(report.krippendorff_alpha))
        self.kappas.setText("Cohen's κ per pair of annotators: " + ", ".join(
            f"{a} & {b}: {_fmt(kappa)} ({plural(n, 'pair')})" for (a, b), (kappa, n) in sorted(report.cohen_kappa.items()))
            if report.cohen_kappa else "Cohen's κ appears once two annotators judged the same pairs.")

        rows = stats.annotators
        self.counts.setRowCount(len(rows))
        for r, c in enumerate(rows):
            per_pair = c.seconds_spent / c.total if c.total and not c.is_pseudo else None
            values = (c.name + (" (import)" if c.is_pseudo else ""), c.total, c.by_choice.get("a", 0),
                      c.by_choice.get("b", 0), c.by_choice.get("tie", 0), c.by_choice.get("both_bad", 0),
                      c.by_choice.get("skip", 0), "—" if per_pair is None else f"{per_pair:.0f}")
            for col, value in enumerate(values):
                item = QTableWidgetItem(f"{value:,}" if isinstance(value, int) else str(value))
                if col:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.counts.setItem(r, col, item)

        self._disputes = stats.disputes
        self.disputes.setRowCount(len(self._disputes))
        for r, d in enumerate(self._disputes):
            verdicts = ", ".join(f"{name}: {CHOICE_NAMES[choice.value]}" for name, choice in sorted(d.verdicts.items()))
            resolution = CHOICE_NAMES[d.resolution.value] if d.resolution else "open"
            for col, value in enumerate((f"#{d.pair_id}", verdicts, resolution)):
                self.disputes.setItem(r, col, QTableWidgetItem(value))

    def open_dispute(self, row: int) -> PairDialog | None:
        if not 0 <= row < len(self._disputes):
            return None
        dialog = PairDialog(self.workspace, self.db, self._disputes[row].pair_id, self.annotator, self)
        dialog.changes_made.connect(self.changes_made)
        dialog.open()
        return dialog
