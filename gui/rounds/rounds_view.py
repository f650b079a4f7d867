"""The Rounds tab: the chain of training rounds and the plan for the next one.

Each round is a run; its model (base + the run's adapter) writes new candidates, people judge
them, and the next round trains on them. The table shows, per round, how its run started, how
many verdicts it trained on, how many pairs its model generated and how many are judged, the
run trained on them, and its win rate against the previous round from the blind A/B
comparisons (``core.operations.rounds``: all numbers and the plan come from there). The card
below says what to do next for the selected round (the latest by default): generate candidates
from its model (the main window's Generate dialog), label them, and train the next round from
its adapter — the DPO paper's setting — or from the base on all verdicts (the Train tab's form,
filled in). The chain is read through the ``DatabaseWorker``; ``on_changes`` reads it again
when runs, pairs or verdicts changed.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QButtonGroup, QHBoxLayout, QLabel, QPushButton, QRadioButton, QTableWidgetItem,
                               QVBoxLayout, QWidget)

from core.operations.changes import Changes
from core.operations.rounds import (PAPER_SETTING, START_EXPLANATIONS, START_LABELS, NextRound, NextStep, Round,
                                    RoundChain, next_round, round_chain)
from core.operations.wording import plural
from gui.annotate.response_panel import Card
from gui.common.db_worker import DatabaseWorker
from gui.team.tables import fit_columns, read_only_table
from storage.workspace import Workspace

COLUMNS = ("Round", "Model", "Started from", "Trained on", "Its model wrote", "Judged", "Trained next",
           "Win rate vs previous")
STARTS = {None: "the base model (fresh adapter)", "adapter": "round {parent}'s adapter",
          "base": "the base model, all verdicts"}


def win_rate_text(round_: Round, previous: str) -> str:
    """"62% (48–74%) over the base, 25 judged", or "—" when the two were never compared blind."""
    rate = round_.win_rate
    if rate is None or rate.rate is None:
        return "—"
    return f"{rate.rate:.0%} ({rate.low:.0%}–{rate.high:.0%}) over {previous}, {rate.judged} judged"


def _item(text: str, tooltip: str = "", align_right: bool = False) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    if tooltip:
        item.setToolTip(tooltip)
    if align_right:
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return item


class RoundsView(QWidget):
    changes_made = Signal(object)     # Changes (none of its own: the dialogs it opens write)
    status_message = Signal(str)

    def __init__(self, workspace: Workspace, db: DatabaseWorker, annotator_name: str | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.workspace = workspace
        self.db = db
        self.annotator_name = annotator_name
        self.chain: RoundChain | None = None
        self.plan: NextRound | None = None
        self._selected: int | None = None      # the round number picked in the table (None: the latest)

        heading = QLabel("Rounds")
        heading.setObjectName("heading")
        intro = QLabel("Train → generate candidates from the tuned model → judge them → train the next round "
                       "on them. Each row is one round: its model and the pairs it wrote for the next.")
        intro.setObjectName("subheading")
        intro.setWordWrap(True)

        chain_card = Card("Chain of rounds")
        self.summary = QLabel("Reading the rounds…")
        self.summary.setObjectName("chip")
        chain_card.header.addStretch(1)
        chain_card.header.addWidget(self.summary)
        self.table = read_only_table(COLUMNS)
        fit_columns(self.table, 1)
        self.table.verticalHeader().setDefaultSectionSize(34)
        self.table.itemSelectionChanged.connect(self._on_selection)
        chain_card.body.addWidget(self.table)
        hint = QLabel("Select a round to plan what follows it. Win rates come from Blind A/B comparisons "
                      "between a round and the one before it (ties count half).")
        hint.setObjectName("muted")
        hint.setWordWrap(True)
        hint.setContentsMargins(14, 2, 14, 8)
        chain_card.body.addWidget(hint)

        self.next_card = Card("Next round")
        self.plan_label = QLabel("")
        self.plan_label.setObjectName("stat")
        self.plan_label.setWordWrap(True)
        self.plan_label.setContentsMargins(14, 6, 14, 2)
        self.next_card.body.addWidget(self.plan_label)
        self.steps = QLabel("")
        self.steps.setObjectName("muted")
        self.steps.setWordWrap(True)
        self.steps.setTextFormat(Qt.TextFormat.RichText)
        self.steps.setContentsMargins(14, 2, 14, 6)
        self.next_card.body.addWidget(self.steps)

        self.start_group = QButtonGroup(self)
        self.start_buttons: dict[str, QRadioButton] = {}
        starts = QVBoxLayout()
        starts.setContentsMargins(14, 0, 14, 4)
        for value, label in START_LABELS.items():
            button = QRadioButton(f"{label} — {START_EXPLANATIONS[value]}")
            button.setChecked(value == PAPER_SETTING)
            self.start_group.addButton(button)
            self.start_buttons[value] = button
            starts.addWidget(button)
        self.next_card.body.addLayout(starts)

        actions = QHBoxLayout()
        actions.setContentsMargins(14, 4, 14, 10)
        self.generate_button = QPushButton("Generate candidates from this round…")
        self.generate_button.setToolTip("Sample new responses from the selected round's model; they become "
                                        "pairs to judge in Annotate")
        self.generate_button.clicked.connect(self.generate_from_round)
        self.train_button = QPushButton("Train next round…")
        self.train_button.setObjectName("primary")
        self.train_button.setToolTip("Open the Train tab with the next round's start filled in")
        self.train_button.clicked.connect(self.train_next_round)
        actions.addWidget(self.generate_button)
        actions.addWidget(self.train_button)
        actions.addStretch(1)
        self.next_card.body.addLayout(actions)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 14, 18, 14)
        layout.setSpacing(10)
        layout.addWidget(heading)
        layout.addWidget(intro)
        layout.addWidget(chain_card, 3)
        layout.addWidget(self.next_card, 0)
        self._show_plan()
        self.reload()

    # -- reading ----------------------------------------------------------------------------
    def reload(self):
        return self.db.submit(round_chain, self.workspace, on_done=self.show_chain, on_failed=self._on_failed)

    def on_changes(self, changes: Changes) -> None:
        if changes.runs or changes.pairs or changes.verdicts:
            self.reload()

    def set_annotator(self, name: str) -> None:
        self.annotator_name = name

    def _on_failed(self, exc: BaseException) -> None:
        self.summary.setText("Could not read the rounds")
        self.status_message.emit(f"Rounds: could not read the runs ({exc})")

    # -- drawing ----------------------------------------------------------------------------
    def show_chain(self, chain: RoundChain) -> None:
        self.chain = chain
        rounds = chain.rounds
        if self._selected is not None and self._selected > len(rounds):
            self._selected = None
        self.table.blockSignals(True)
        self.table.setRowCount(len(rounds) + 1)
        base = chain.base_generated
        self._fill_row(0, ["Base", chain.base_model or "the base model", "—", "—", plural(base.generated, "pair"),
                           str(base.judged), rounds[0].name if rounds else "—", "—"])
        for row, round_ in enumerate(rounds, 1):
            parent = str(round_.number - 1)
            started = STARTS.get(round_.start_from, round_.start_from or "").format(parent=parent)
            previous = "the base" if round_.number == 1 else f"round {parent}"
            following = rounds[row].name if row < len(rounds) else "—"
            status = "" if round_.status == "completed" else f" · {round_.status}"
            self._fill_row(row, [str(round_.number), f"{round_.name}{status}", started,
                                 plural(round_.trained_verdicts, "verdict"), plural(round_.generated, "pair"),
                                 str(round_.judged), following, win_rate_text(round_, previous)],
                           tooltip=f"run {round_.run_id}")
        self.table.blockSignals(False)
        if rounds:
            self.table.selectRow(self._selected or len(rounds))
        others = f" · {plural(chain.other_runs, 'other run')} not on this chain" if chain.other_runs else ""
        self.summary.setText(f"{plural(len(rounds), 'round')}{others}")
        self._show_plan()

    def _fill_row(self, row: int, values: list[str], tooltip: str = "") -> None:
        for column, value in enumerate(values):
            self.table.setItem(row, column, _item(value, tooltip, align_right=column in (3, 4, 5)))

    def _on_selection(self) -> None:
        rows = {index.row() for index in self.table.selectedIndexes()}
        if self.chain is None or not rows:
            return
        row = min(rows)
        self._selected = row if row >= 1 else None
        self._show_plan()

    def _show_plan(self) -> None:
        self.plan = next_round(self.chain, self._selected) if self.chain is not None else None
        plan = self.plan
        if plan is None:
            self.plan_label.setText("Reading the rounds…")
            self.steps.setText("")
            self.generate_button.setEnabled(False)
            self.train_button.setEnabled(False)
            return
        self.next_card.title.setText(f"NEXT: ROUND {plan.number}")
        self.plan_label.setText(plan.text)
        parent = plan.parent
        if parent is None:
            self.steps.setText("Round 1 trains a fresh adapter on the base model with the workspace's verdicts.")
        else:
            done = {NextStep.GENERATE: 0, NextStep.LABEL: 1, NextStep.TRAIN: 2}.get(plan.step, 0)
            steps = [f"Generate candidates from round {parent.number}'s model ({plural(parent.generated, 'pair')} so far)",
                     f"Label them in Annotate ({parent.judged} of {parent.generated} judged)",
                     f"Train round {plan.number}"]
            self.steps.setText(" &nbsp;→&nbsp; ".join(
                f"<b>{i + 1}. {text}</b>" if i == done else f"{i + 1}. {text}" for i, text in enumerate(steps)))
        for button in self.start_buttons.values():
            button.setVisible(parent is not None)
        self.generate_button.setEnabled(parent is not None and parent.finished)
        self.train_button.setEnabled(plan.step != NextStep.WAIT)   # the Train tab's checks say what is missing

    # -- actions ----------------------------------------------------------------------------
    def start_from(self) -> str:
        return next(value for value, button in self.start_buttons.items() if button.isChecked())

    def training_values(self) -> dict[str, str]:
        """The next round's settings for the Train tab's form."""
        return self.plan.training_values(self.start_from()) if self.plan is not None else {}

    def train_next_round(self) -> None:
        values = self.training_values()
        opener = getattr(self.window(), "open_training", None)
        if opener is None:
            self.status_message.emit("Open the Train tab and set 'Previous round' to "
                                     f"{values.get('start_from_run') or 'nothing'}")
            return
        opener(values)
        self.status_message.emit(f"Train tab: {values.get('run_name', 'the next round')} set up; check and Start")

    def generate_from_round(self):
        """The main window's Generate dialog, with the selected round's model picked when it can."""
        parent = self.plan.parent if self.plan is not None else None
        opener = getattr(self.window(), "open_generate", None)
        if parent is None or opener is None:
            return None
        try:
            dialog = opener()
        except ModuleNotFoundError:
            self.status_message.emit("Generating candidates is not part of this build yet")
            return None
        select = getattr(dialog, "select_model", None)
        if select is not None:
            select(parent.run_id)
        return dialog
