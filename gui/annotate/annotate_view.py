"""The labelling screen: one pair at a time, a key per verdict, the next pair at once.

``AnnotateView(workspace, db, annotator_name)`` renders a ``core.operations.labelling.
LabellingSession`` and does its database work through the main window's ``DatabaseWorker``
(``db``): opening the session, fetching the next pairs, storing verdicts, counting the queue,
the annotator list and the guidelines — none on the UI thread. A key press shows the next
(prefetched) pair at once and hands the verdict to ``OutboxSender``, which stores it in the
background and retries it when the database refuses; ``SaveBanner`` says so across the screen.
``PairFeed`` keeps the pairs coming and reserved (fetch, lease renewal, hand-back on close).
When a team server cannot be reached the verdicts are kept in this computer's outbox file and
the header says "offline — N verdicts waiting" (``connection_changed`` tells the main window);
labelling goes on over the pairs already reserved, and the outbox drains by itself later.
Which pair comes next, what undo takes back and where a note belongs are the session's rules.

Every stored write is reported as ``Changes`` through ``changes_made``; the main window passes
every ``Changes`` back to ``on_changes`` (this view skips its own).
"""

from __future__ import annotations

from collections import deque

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QStackedWidget, QVBoxLayout, QWidget

from core.operations.changes import Changes
from core.operations.connection import ConnectionState
from core.operations.labelling import LabellingSession, QueueCounts, Write, held_ahead
from gui.annotate.annotate_keys import FIXED_CHOICES, WRITING_ACTIONS, install_shortcuts
from gui.annotate.annotate_layout import TARGET_SETTING, AnnotateLayout
from gui.annotate.annotator_dialog import AnnotatorPicker
from gui.annotate.help_overlay import HelpOverlay
from gui.annotate.outbox_sender import OutboxSender
from gui.annotate.pair_feed import PairFeed
from gui.common import settings as app_settings
from gui.common.db_worker import DatabaseWorker
from storage.annotation_queue import PairView, choice_for_side
from storage.models import Choice
from storage.settings import read_settings
from storage.workspace import Workspace

REOPEN_OFFLINE_MS = 3000   # the server was away when the sitting began: try again this often

class AnnotateView(AnnotateLayout):
    """The Annotate tab. ``annotator_name`` None shows the "who is labelling?" page first."""

    changes_made = Signal(object)        # Changes of a write this screen made
    annotator_changed = Signal(str)
    search_requested = Signal()
    import_requested = Signal()
    connect_requested = Signal()         # the welcome panel's "Connect to a team server…"
    status_message = Signal(str)
    connection_changed = Signal(object)  # ConnectionState

    def __init__(self, workspace: Workspace, db: DatabaseWorker, annotator_name: str | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.workspace = workspace
        self.db = db
        self.session: LabellingSession | None = None
        self.counts: QueueCounts | None = None
        self._own_changes: deque[Changes] = deque(maxlen=64)
        self.sender = OutboxSender(db, workspace, self)
        self.sender.stored.connect(lambda _w, changes: self._report(changes))
        self.sender.message.connect(self.status_message)
        self.sender.dropped.connect(self._on_dropped)
        self.sender.health_changed.connect(self._show_health)
        self.sender.connection_changed.connect(self._show_connection)
        self.feed = PairFeed(db, self.sender, self)
        self.feed.current_changed.connect(self._render_current)
        self.feed.fetched.connect(self._update_content)
        self.feed.status_message.connect(self.status_message)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

        self.pages = QStackedWidget()
        self.picker = AnnotatorPicker(workspace, db, app_settings.remembered_annotator(workspace.location))
        self.picker.chosen.connect(self.set_annotator)
        self.pages.addWidget(self.picker)
        self.pages.addWidget(self._build_label_page())
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.pages)

        self.help = HelpOverlay(self)
        self._shortcuts = install_shortcuts(self, self.trigger)
        self._counts_timer = QTimer(self, singleShot=True, interval=400, timeout=self.refresh_counts)
        self._pace_timer = QTimer(self, interval=5000, timeout=self._show_pace)
        self._reopen_timer = QTimer(self, singleShot=True, interval=REOPEN_OFFLINE_MS, timeout=self._reopen)
        self._opening: str | None = None
        self.sender.start()   # what an earlier sitting kept offline is stored first (the queue is FIFO)
        if annotator_name:
            self.set_annotator(annotator_name)

    # -- annotator and session ---------------------------------------------------------
    @property
    def annotator_name(self) -> str | None:
        return self.session.annotator_name if self.session else None

    @property
    def current(self) -> PairView | None:
        return self.session.current if self.session else None

    @property
    def pace(self):
        return self.session.pace if self.session else None

    def set_annotator(self, name: str) -> None:
        """Label as ``name`` (created if new) from the first pair they have not judged. The
        previous annotator's unsaved verdicts keep being sent, their pairs handed back."""
        self.feed.detach()
        self.session = None
        self.preference.clear(keep_space=False)
        self._opening = name
        self.pages.setCurrentIndex(1)
        self.content.setCurrentWidget(self.loading)
        self.setFocus()
        self.db.submit(LabellingSession.open, self.workspace, name, self.header.target.value(),
                       prefetch=held_ahead(self.workspace), on_done=self._opened, on_failed=self._open_failed)

    def _reopen(self) -> None:
        if self._opening is not None and self.session is None:
            self.set_annotator(self._opening)

    def _opened(self, session: LabellingSession) -> None:
        self.sender.saw_answer()
        self._opening = None
        new_name = session.annotator_name not in self.picker.known_names()
        self.session = session
        app_settings.remember_annotator(self.workspace.location, session.annotator_name)
        self.header.show_annotator(session.annotator_name)
        self._pace_timer.start()
        self.refresh_counts()   # before the fetch (the database thread answers in order)
        self.feed.attach(session)
        self._show_pace()
        self.annotator_changed.emit(session.annotator_name)
        if new_name:
            self._report(Changes(annotators=True))
            self.picker.reload_names()

    def _open_failed(self, exc: BaseException) -> None:
        if self.sender.saw_failure(exc):   # the server is away: keep trying, say so on the header
            self._reopen_timer.start()
            return
        self._opening = None
        self.show_picker()
        self.picker.show_error(f"Cannot start labelling: {exc}")

    def show_picker(self) -> None:
        self.pages.setCurrentIndex(0)
        self.picker.names.setFocus()

    def _set_target(self, value: int) -> None:
        if self.session is not None:
            self.session.pace.target = value
        app_settings.set_value(TARGET_SETTING, value)
        self._show_pace()

    # -- the pairs ---------------------------------------------------------------------
    def _fetch(self) -> None:
        self.feed.fetch()

    def _render_current(self) -> None:
        view = self.current
        if view is not None:
            self.display.show_pair(view)
        self.note.blockSignals(True)
        self.note.setText(self.session.draft(view.pair_id) if view is not None else "")
        self.note.blockSignals(False)
        self._update_content()

    def _update_content(self) -> None:
        session = self.session
        if session is not None and session.current is not None:
            page = self.display
        elif session is None or session.fetching or self.counts is None:
            page = self.loading
        elif self.counts.total_pairs == 0:
            page = self.welcome
        else:
            page = self.empty
            self.feed.showing_nothing_left()
            overlap = session.overlap
            self.empty_text.setText(
                "Every pair has a verdict from you, or already has the "
                f"{overlap} annotator{'s' if overlap != 1 else ''} the workspace asks for.\n"
                "Import more pairs (File ▸ Import) or browse the pairs to change a verdict.")
        self.content.setCurrentWidget(page)
        for widget in (self.note, self.verdicts):   # nothing to judge on the welcome panel
            widget.setVisible(page is not self.welcome)

    def _note_typed(self, text: str) -> None:
        if self.current is not None:
            self.session.set_draft(self.current.pair_id, text)

    # -- actions -----------------------------------------------------------------------
    def trigger(self, action: str) -> None:
        """Run one action of the screen (a key press or a button click)."""
        if self.pages.currentIndex() != 1:
            return
        if action in WRITING_ACTIONS and self.help.isVisible():
            self.help.hide()   # a verdict key meant for the overlay's reader: close it, record nothing
            self.status_message.emit("Keys overlay closed — press the key again to record")
            return
        if action in ("left", "right"):
            if self.current is not None:
                self.judge(choice_for_side(action, self.current.swapped))
        elif action in FIXED_CHOICES:
            if self.current is not None:
                self.judge(FIXED_CHOICES[action])
        elif action == "undo":
            self.undo()
        elif action == "search":
            self.search_requested.emit()
        elif action == "help":
            self.help.toggle()
        elif action == "note":
            self.note.setFocus()
        elif action == "escape":
            self.help.hide()
            self.setFocus()
        elif action in ("raw", "diff", "guidelines"):
            getattr(self.header, f"{action}_toggle").toggle()
        elif action in ("page_down", "page_up"):
            bar = self.display.left.browser.verticalScrollBar()
            step = bar.pageStep() if action == "page_down" else -bar.pageStep()
            bar.setValue(bar.value() + step)

    def judge(self, choice: Choice) -> Write | None:
        """Record ``choice`` for the pair on screen and show the next pair at once; the verdict
        is stored in the background. Returns the write (None when no pair is on screen)."""
        if self.current is None:
            return None
        write = self.session.judge(choice)
        self.preference.judged(write, self._still_judged)
        self.help.hide()
        self._render_current()
        self.sender.send(self.session)
        self._fetch()
        self._after_change()
        self.status_message.emit(f"Recorded: {write.describe()}")
        return write

    def _still_judged(self, write: Write) -> bool:
        """``write``'s verdict stands: this sitting's, and not undone."""
        return self.session is not None and any(done is write for done in self.session.undo_stack)

    def undo(self) -> int | None:
        """Take back this session's newest verdict and show its pair again (with its note)."""
        if self.session is None:
            return None
        outcome = self.session.undo()
        self.preference.clear()   # the undone pair is judged again: its score stays hidden till then
        self.status_message.emit(outcome.message)
        if outcome.pair is None:
            return None
        self._render_current()
        self.sender.send(self.session)   # a retraction to store, or a kept verdict to forget
        self._after_change()
        return outcome.pair.pair_id

    def _on_dropped(self, write: Write, why: str) -> None:
        text = (f"Not saved — pair #{write.pair_id} is no longer in the workspace (deleted meanwhile), "
                f"so your {write.describe()} cannot be stored.")
        self.banner.add_dropped(text)
        self.status_message.emit(text)
        self._show_pace()

    def _show_health(self) -> None:
        if self.sender.offline:
            self.banner.show_offline(self.sender.state(), self._pairs_in_hand())
        elif self.sender.failing:
            self.banner.show_failing(len(self.sender.unsaved), self.sender.last_error,
                                     self.sender.seconds_to_retry(), countdown=self.sender.seconds_to_retry)
        else:
            self.banner.show_saved()

    # -- changes -----------------------------------------------------------------------
    def _report(self, changes: Changes, own: bool = True) -> None:
        if own:
            self._own_changes.append(changes)
        self.changes_made.emit(changes)

    def on_changes(self, changes: Changes) -> None:
        """Redraw what ``changes`` touches (the main window sends every write's changes)."""
        if any(changes is mine for mine in self._own_changes):
            return
        if changes.annotators:
            self.picker.reload_names()
        if changes.settings:
            self.guidelines.reload()
            self.db.submit(read_settings, self.workspace, on_done=self._settings_read)
        if (changes.pairs or changes.verdicts) and self.session is not None:
            self.session.forget_ahead()   # the prefetched pairs may be judged or outranked now
            self.refresh_counts()
            self._fetch()

    def _settings_read(self, settings) -> None:
        order = (settings.queue_order, settings.queue_order_run)
        if self.session is not None and (settings.overlap, order) != (self.session.overlap, self.session.queue.order):
            self.session.set_overlap(settings.overlap, order)
            self.refresh_counts()
            self._fetch()

    def refresh_theme(self) -> None:
        """Re-render the texts in the new theme's colours (code tint, role labels, diff)."""
        self.display.rerender()
        self.guidelines.rerender()
        self.banner.apply_theme()
        self.help.update()

    # -- closing -----------------------------------------------------------------------
    @property
    def unsaved(self) -> list[Write]:
        """Verdicts and undos not yet stored, of every annotator of this window."""
        return self.sender.unsaved

    def flush(self, timeout_ms: int = 10_000) -> list[Write]:
        """Send what waits now and wait for the answers (closing); returns what is still unsaved."""
        self.sender.retry_now()
        self.db.wait_idle(timeout_ms)
        return self.unsaved

    def stop_timers(self) -> None:
        """The screen is going away (before the database thread ends): timers stop and the
        sitting's reserved pairs are handed back."""
        for timer in (self._counts_timer, self._pace_timer, self._reopen_timer):
            timer.stop()
        self.feed.stop()
        self.feed.detach()
        self.sender.stop()
        self.banner.stop()

    # -- numbers -----------------------------------------------------------------------
    def _set_guidelines(self, visible: bool) -> None:
        self.guidelines.setVisible(visible)
        app_settings.set_value("view/guidelines", visible)

    def _after_change(self) -> None:
        self._show_pace()
        # Counting the queue scans an index; coalesce it so fast key presses never wait on it.
        self._counts_timer.start()

    def _show_pace(self) -> None:
        if self.session is not None:
            self.header.show_pace(self.session.pace)

    def refresh_counts(self) -> None:
        if self.session is not None:
            session = self.session
            self.db.submit(session.counts, on_done=lambda counts: self._show_counts(session, counts),
                           on_failed=self.sender.saw_failure)

    def _show_counts(self, session: LabellingSession, counts: QueueCounts) -> None:
        self.sender.saw_answer()
        if session is not self.session:
            return
        self.counts = counts
        self.header.show_counts(counts.remaining)
        self._update_content()

    # -- the connection ----------------------------------------------------------------
    def _pairs_in_hand(self) -> int:
        session = self.session
        return len(session.ahead) + (session.current is not None) if session is not None else 0

    def _show_connection(self, state: ConnectionState) -> None:
        self.header.show_connection(state)
        self.connection_changed.emit(state)

    @property
    def connection(self) -> ConnectionState:
        return self.sender.state()
