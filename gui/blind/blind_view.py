"""The Blind A/B screen: choose or create a comparison of two models, judge their answers side by
side without their names, and read the tuned model's win rate with its interval.

``BlindView(workspace, db, annotator_name)``. Judging is the Annotate tab's machinery over the
comparison's queue: a ``LabellingSession`` from ``core.operations.blind.open_judging``, fed by a
``PairFeed`` and stored by an ``OutboxSender`` (the same outbox, retries, undo and leases, so a
verdict is never lost), shown in the Annotate tab's ``PairDisplay`` and ``VerdictBar`` with
the same keys (1 left, 2 right, 3 tie, 4 both bad, Ctrl+Z undo). While judging nothing names
a model: the pair's source chip says "blind A/B" and the sides were drawn when the comparison
was made. The models are named on the Results page only. Every database call goes through
``db.submit``; generation runs on a ``Worker`` (``gui.blind.comparison_form``).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QButtonGroup, QComboBox, QHBoxLayout, QLabel, QStackedWidget, QToolButton,
                               QVBoxLayout, QWidget)

from core.operations import blind
from core.operations.changes import Changes
from gui.annotate.annotate_keys import FIXED_CHOICES, install_shortcuts
from gui.annotate.outbox_sender import OutboxSender
from gui.annotate.pair_display import PairDisplay
from gui.annotate.pair_feed import PairFeed
from gui.annotate.verdict_bar import VerdictBar
from gui.annotate.welcome_panel import message_page
from gui.blind.comparison_form import ComparisonForm
from gui.blind.results_panel import ResultsPanel
from gui.common.db_worker import DatabaseWorker
from storage.annotation_queue import choice_for_side
from storage.workspace import Workspace

JUDGE_ACTIONS = ("left", "right", "tie", "both_bad", "skip", "undo")


def _comparison_title(record) -> str:
    """How a comparison is listed: its number and progress; the side of each model is not said."""
    return f"#{record.id}  {record.name}  ·  {record.judged_pairs} of {record.pairs} judged"


class BlindView(QWidget):
    changes_made = Signal(object)
    status_message = Signal(str)

    def __init__(self, workspace: Workspace, db: DatabaseWorker, annotator_name: str | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.workspace = workspace
        self.db = db
        self.annotator_name = annotator_name
        self.comparison_id: int | None = None
        self.session = None
        self.remaining: int | None = None
        self._own: list[Changes] = []
        self.sender = OutboxSender(db, workspace, self)
        self.sender.stored.connect(lambda _write, changes: self._stored(changes))
        self.sender.message.connect(self.status_message)
        self.feed = PairFeed(db, self.sender, self)
        self.feed.current_changed.connect(self._render)
        self.feed.fetched.connect(self._render)
        self._refresh = QTimer(self, singleShot=True, interval=300, timeout=self.refresh_numbers)
        self._build()
        self._shortcuts = install_shortcuts(self, self.trigger)
        self.reload_comparisons()
        self.form.reload_models()

    # -- layout --------------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 12, 14, 12)
        layout.setSpacing(10)
        top = QHBoxLayout()
        title = QLabel("Blind A/B")
        title.setObjectName("heading")
        top.addWidget(title)
        top.addSpacing(12)
        self.picker = QComboBox()
        self.picker.setMinimumWidth(380)
        self.picker.currentIndexChanged.connect(self._picked)
        top.addWidget(self.picker)
        self.new_button = QToolButton()
        self.new_button.setText("New comparison…")
        self.new_button.setCheckable(True)
        self.new_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.new_button.toggled.connect(lambda on: self.form.setVisible(on))
        top.addWidget(self.new_button)
        top.addStretch(1)
        self.pages_group = QButtonGroup(self)
        for index, name in enumerate(("Judge", "Results")):
            button = QToolButton()
            button.setText(name)
            button.setCheckable(True)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.setChecked(index == 0)
            self.pages_group.addButton(button, index)
            top.addWidget(button)
        self.pages_group.idClicked.connect(self.show_page)
        layout.addLayout(top)

        self.form = ComparisonForm(self.workspace, self.db)
        self.form.created.connect(self._created)
        self.form.status_message.connect(self.status_message)
        self.form.setVisible(False)
        layout.addWidget(self.form)

        self.pages = QStackedWidget()
        judge = QWidget()
        judge_layout = QVBoxLayout(judge)
        judge_layout.setContentsMargins(0, 0, 0, 0)
        judge_layout.setSpacing(8)
        self.info = QLabel("")
        self.info.setObjectName("subheading")
        judge_layout.addWidget(self.info)
        self.display = PairDisplay(left_keys=("1", "←"), right_keys=("2", "→"))
        self.message, self.message_title, self.message_text = message_page("")
        self.content = QStackedWidget()
        self.content.addWidget(self.display)
        self.content.addWidget(self.message)
        judge_layout.addWidget(self.content, 1)
        self.verdicts = VerdictBar(JUDGE_ACTIONS)
        self.verdicts.triggered.connect(self.trigger)
        judge_layout.addWidget(self.verdicts)
        self.pages.addWidget(judge)
        self.results = ResultsPanel()
        self.pages.addWidget(self.results)
        layout.addWidget(self.pages, 1)

    def show_page(self, index: int) -> None:
        self.pages.setCurrentIndex(index)
        self.pages_group.button(index).setChecked(True)

    # -- comparisons ---------------------------------------------------------------------
    def reload_comparisons(self, select: int | None = None) -> None:
        self.db.submit(blind.list_comparisons, self.workspace, on_done=lambda records: self._listed(records, select),
                       on_failed=lambda exc: self.status_message.emit(f"Cannot list the comparisons: {exc}"))

    def _listed(self, records, select: int | None) -> None:
        wanted = select if select is not None else self.comparison_id
        self.picker.blockSignals(True)
        self.picker.clear()
        for record in records:
            self.picker.addItem(_comparison_title(record), record.id)
        self.picker.blockSignals(False)
        if not records:
            self.new_button.setChecked(True)
            self._show_message("No blind comparison yet",
                               "Create one above: the base and a run (or two runs) answer held-out prompts, "
                               "and you judge the answers without knowing which model wrote which.")
            return
        index = self.picker.findData(wanted) if wanted is not None else 0
        self.picker.setCurrentIndex(max(0, index))
        self._picked()

    def _picked(self, _index: int = -1) -> None:
        comparison_id = self.picker.currentData()
        if comparison_id is None or comparison_id == self.comparison_id:
            return
        self.comparison_id = comparison_id
        self._open()
        self.refresh_numbers()

    def _created(self, outcome) -> None:
        if outcome.cancelled:
            return
        self._report(outcome.changes)
        self.new_button.setChecked(False)
        self.reload_comparisons(select=outcome.comparison_id)

    # -- judging -------------------------------------------------------------------------
    def _open(self) -> None:
        self.feed.detach()
        self.session = None
        if self.comparison_id is None:
            return
        if not self.annotator_name:
            self._show_message("Who is judging?", "Pick your name on the Annotate tab first; "
                               "your verdicts here are stored under it.")
            return
        self._show_message("Loading…", "")
        comparison_id = self.comparison_id
        self.db.submit(blind.open_judging, self.workspace, self.annotator_name, comparison_id,
                       on_done=lambda session: self._opened(session, comparison_id),
                       on_failed=lambda exc: self._show_message("Cannot start judging", str(exc)))

    def _opened(self, session, comparison_id: int) -> None:
        if comparison_id != self.comparison_id:
            self.db.submit(session.release_pairs, session.close())
            return
        self.session = session
        self.feed.attach(session)
        self.refresh_numbers()

    def _render(self) -> None:
        session = self.session
        if session is None:
            return
        if session.current is not None:
            self.display.show_pair(session.current)
            self.content.setCurrentWidget(self.display)
            self.verdicts.setVisible(True)
        elif not session.fetching:
            self.feed.showing_nothing_left()
            self._show_message("Nothing left for you to judge here",
                               "Every pair of this comparison has your verdict, or the verdicts (or reservations) "
                               "of others that it needs.\nThe Results page names the models and gives the win rate.")
        self._show_info()

    def _show_message(self, title: str, text: str) -> None:
        self.message_title.setText(title)
        self.message_text.setText(text)
        self.content.setCurrentWidget(self.message)
        self.verdicts.setVisible(False)

    def _show_info(self) -> None:
        if self.remaining is None or self.session is None:
            self.info.setText("")
            return
        self.info.setText(f"{self.remaining} pair{'s' if self.remaining != 1 else ''} left for you  ·  "
                          "which model wrote which side is hidden until Results")

    def trigger(self, action: str) -> None:
        if self.pages.currentIndex() != 0 or self.session is None or action not in JUDGE_ACTIONS:
            return
        session = self.session
        if action == "undo":
            outcome = session.undo()
            self.status_message.emit(outcome.message)
            if outcome.pair is None:
                return
        elif session.current is None:
            return
        elif action in ("left", "right"):
            session.judge(choice_for_side(action, session.current.swapped))
        else:
            session.judge(FIXED_CHOICES[action])
        self._render()
        self.sender.send(session)
        self.feed.fetch()

    def _stored(self, changes: Changes) -> None:
        self._report(changes)
        self._refresh.start()

    def refresh_numbers(self) -> None:
        """The counts left and the results of the comparison shown (database thread)."""
        if self.comparison_id is None:
            return
        comparison_id, session = self.comparison_id, self.session
        self.db.submit(blind.comparison_result, self.workspace, comparison_id,
                       on_done=lambda result: self._show_result(result, comparison_id),
                       on_failed=lambda exc: self.status_message.emit(f"Cannot read the results: {exc}"))
        if session is not None:
            self.db.submit(session.counts, on_done=lambda counts: self._counted(session, counts))

    def _counted(self, session, counts) -> None:
        if session is self.session:
            self.remaining = counts.remaining
            self._show_info()

    def _show_result(self, result, comparison_id: int) -> None:
        if comparison_id != self.comparison_id:
            return
        self.results.show_result(result)
        index = self.picker.findData(comparison_id)
        if index >= 0:
            self.picker.setItemText(index, _comparison_title(result.record))

    # -- the window's protocol -----------------------------------------------------------
    def _report(self, changes: Changes) -> None:
        self._own.append(changes)
        del self._own[:-64]
        self.changes_made.emit(changes)

    def on_changes(self, changes: Changes) -> None:
        if any(changes is mine for mine in self._own):
            return
        if changes.runs:
            self.form.reload_models()
        if changes.verdicts or changes.pairs:
            self._refresh.start()

    def set_annotator(self, name: str) -> None:
        if name != self.annotator_name:
            self.annotator_name = name
            self._open()

    @property
    def unsaved(self):
        return self.sender.unsaved

    def confirm_close(self) -> bool:
        """Closing: a generation under way is stopped (nothing of it is stored); verdicts still
        on their way are waited for, and the window asks before closing without them."""
        if self.form.worker is not None:
            self.form.cancel()
        if not self.sender.unsaved:
            return True
        self.sender.retry_now()
        self.db.wait_idle(15_000)
        unsaved = self.sender.unsaved
        ask = getattr(self.window(), "confirm_close_unsaved", None)
        return not unsaved or ask is None or ask(unsaved)

    def stop_timers(self) -> None:
        self._refresh.stop()
        self.form.stop()
        self.feed.stop()
        self.feed.detach()
        self.sender.stop()

    def refresh_theme(self) -> None:
        self.display.rerender()
        self.results.bar.update()
