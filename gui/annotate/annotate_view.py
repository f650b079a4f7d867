"""The labelling screen: one pair at a time, a key per verdict, the next pair at once.

``AnnotateView(workspace, db, annotator_name)`` renders a ``core.operations.labelling.
LabellingSession`` and does its database work through the main window's ``DatabaseWorker``
(``db``): opening the session, fetching the next pairs, storing verdicts, counting the queue,
the annotator list and the guidelines — none on the UI thread. A key press shows the next
(prefetched) pair at once and hands the verdict to ``OutboxSender``, which stores it in the
background and retries it when the database refuses; ``SaveBanner`` says so across the screen.
Which pair comes next, what undo takes back and where a note belongs are the session's rules.

Every stored write is reported as ``Changes`` through ``changes_made``; the main window passes
every ``Changes`` back to ``on_changes`` (this view skips its own).
"""

from __future__ import annotations

from collections import deque

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QLineEdit, QSplitter, QStackedWidget, QVBoxLayout, QWidget

from core.operations.changes import Changes
from core.operations.labelling import LabellingSession, QueueCounts, Write
from gui.annotate.annotate_keys import FIXED_CHOICES, WRITING_ACTIONS, install_shortcuts
from gui.annotate.annotator_dialog import AnnotatorPicker
from gui.annotate.guidelines_panel import GuidelinesPanel
from gui.annotate.help_overlay import HelpOverlay
from gui.annotate.outbox_sender import OutboxSender
from gui.annotate.pair_display import PairDisplay
from gui.annotate.save_banner import SaveBanner
from gui.annotate.session_header import SessionHeader
from gui.annotate.verdict_bar import VerdictBar
from gui.annotate.welcome_panel import WelcomePanel, message_page
from gui.common import settings as app_settings
from gui.common.db_worker import DatabaseWorker
from storage.annotation_queue import PairView, choice_for_side
from storage.models import Choice
from storage.settings import read_settings
from storage.workspace import Workspace

TARGET_SETTING = "session/target"

class AnnotateView(QWidget):
    """The Annotate tab. ``annotator_name`` None shows the "who is labelling?" page first."""

    changes_made = Signal(object)        # Changes of a write this screen made
    annotator_changed = Signal(str)
    search_requested = Signal()
    import_requested = Signal()
    status_message = Signal(str)

    def __init__(self, workspace: Workspace, db: DatabaseWorker, annotator_name: str | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.workspace = workspace
        self.db = db
        self.session: LabellingSession | None = None
        self.counts: QueueCounts | None = None
        self._own_changes: deque[Changes] = deque(maxlen=64)
        self.sender = OutboxSender(db, self)
        self.sender.stored.connect(lambda _w, changes: self._report(changes))
        self.sender.message.connect(self.status_message)
        self.sender.dropped.connect(self._on_dropped)
        self.sender.health_changed.connect(self._show_health)
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
        self._refetch_timer = QTimer(self, singleShot=True, interval=2000, timeout=self._fetch)
        if annotator_name:
            self.set_annotator(annotator_name)

    # -- building ----------------------------------------------------------------------
    def _build_label_page(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.setContentsMargins(14, 12, 14, 12)
        layout.setSpacing(10)
        self.header = SessionHeader(max(1, int(app_settings.get_value(TARGET_SETTING, 100))))
        self.header.switch.clicked.connect(self.show_picker)
        self.header.target_changed.connect(self._set_target)
        self.header.raw_toggle.toggled.connect(lambda raw: self.display.set_raw(raw))
        self.header.diff_toggle.toggled.connect(lambda diff: self.display.set_diff(diff))
        self.header.guidelines_toggle.toggled.connect(self._set_guidelines)
        self.header.help_button.clicked.connect(lambda: self.help.toggle())
        layout.addWidget(self.header)
        self.banner = SaveBanner()
        self.banner.retry_requested.connect(self.sender.retry_now)
        layout.addWidget(self.banner)

        self.display = PairDisplay(left_keys=("1", "←"), right_keys=("2", "→"))
        self.empty, self.empty_title, self.empty_text = message_page("Nothing left to label")
        self.loading, _title, _text = message_page("Loading the next pair…")
        self.welcome = WelcomePanel(self.workspace.location)
        self.welcome.import_requested.connect(self.import_requested)
        self.welcome.demo_created.connect(lambda changes: self._report(changes, own=False))
        self.welcome.status_message.connect(self.status_message)
        self.content = QStackedWidget()
        for widget in (self.display, self.empty, self.loading, self.welcome):
            self.content.addWidget(widget)
        self.content.setCurrentWidget(self.loading)

        self.guidelines = GuidelinesPanel(self.workspace, self.db)
        self.guidelines.saved.connect(self._report)
        self.guidelines.setMinimumWidth(240)
        self.body = QSplitter(Qt.Orientation.Horizontal)
        self.body.setChildrenCollapsible(False)
        self.body.addWidget(self.content)
        self.body.addWidget(self.guidelines)
        self.body.setStretchFactor(0, 4)
        self.body.setStretchFactor(1, 1)
        self.body.setSizes([1000, 300])
        show_guidelines = bool(app_settings.get_value("view/guidelines", False))
        self.guidelines.setVisible(show_guidelines)
        self.header.guidelines_toggle.setChecked(show_guidelines)
        layout.addWidget(self.body, 1)

        self.note = QLineEdit()
        self.note.setObjectName("note")
        self.note.setPlaceholderText("Note for this verdict (optional) — press N to write, Esc to go back to the keys")
        self.note.setClearButtonEnabled(True)
        self.note.returnPressed.connect(self.setFocus)
        self.note.textChanged.connect(self._note_typed)
        layout.addWidget(self.note)

        self.verdicts = VerdictBar()
        self.verdicts.triggered.connect(self.trigger)
        layout.addWidget(self.verdicts)
        return page

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
        previous annotator's unsaved verdicts keep being sent."""
        self.session = None
        self.pages.setCurrentIndex(1)
        self.content.setCurrentWidget(self.loading)
        self.setFocus()
        self.db.submit(LabellingSession.open, self.workspace, name, self.header.target.value(),
                       on_done=self._opened, on_failed=self._open_failed)

    def _opened(self, session: LabellingSession) -> None:
        new_name = session.annotator_name not in self.picker.known_names()
        self.session = session
        app_settings.remember_annotator(self.workspace.location, session.annotator_name)
        self.header.show_annotator(session.annotator_name)
        self._pace_timer.start()
        self.refresh_counts()   # before the fetch (the database thread answers in order)
        self._fetch()
        self._show_pace()
        self.annotator_changed.emit(session.annotator_name)
        if new_name:
            self._report(Changes(annotators=True))
            self.picker.reload_names()

    def _open_failed(self, exc: BaseException) -> None:
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
        session = self.session
        request = session.take_fetch() if session is not None else None
        if request is None:
            self._update_content()
            return
        self.db.submit(session.fetch_pairs, request,
                       on_done=lambda pairs: self._received(session, request, pairs),
                       on_failed=lambda exc: self._fetch_failed(session, exc))
        self._update_content()

    def _received(self, session: LabellingSession, request, pairs: list[PairView]) -> None:
        if session is not self.session:
            return
        if session.receive_pairs(request, pairs):
            self._render_current()
        self._fetch()   # top up (or fetch again after an answer that came too late)

    def _fetch_failed(self, session: LabellingSession, exc: BaseException) -> None:
        session.fetch_failed()
        if session is self.session:
            self.status_message.emit(f"Could not read the next pairs ({exc.__class__.__name__}); trying again")
            self._refetch_timer.start()

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
        self.help.hide()
        self._render_current()
        self.sender.send(self.session)
        self._fetch()
        self._after_change()
        self.status_message.emit(f"Recorded: {write.describe()}")
        return write

    def undo(self) -> int | None:
        """Take back this session's newest verdict and show its pair again (with its note)."""
        if self.session is None:
            return None
        outcome = self.session.undo()
        self.status_message.emit(outcome.message)
        if outcome.pair is None:
            return None
        self._render_current()
        if outcome.write is not None:
            self.sender.send(self.session)
        self._after_change()
        return outcome.pair.pair_id

    def _on_dropped(self, write: Write, why: str) -> None:
        text = (f"Not saved — pair #{write.pair_id} is no longer in the workspace (deleted meanwhile), "
                f"so your {write.describe()} cannot be stored.")
        self.banner.add_dropped(text)
        self.status_message.emit(text)
        self._show_pace()

    def _show_health(self) -> None:
        if self.sender.failing:
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
        if self.session is not None and settings.overlap != self.session.overlap:
            self.session.set_overlap(settings.overlap)
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
        for timer in (self._counts_timer, self._pace_timer, self._refetch_timer):
            timer.stop()
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
            self.db.submit(session.counts, on_done=lambda counts: self._show_counts(session, counts))

    def _show_counts(self, session: LabellingSession, counts: QueueCounts) -> None:
        if session is not self.session:
            return
        self.counts = counts
        self.header.show_counts(counts.remaining)
        self._update_content()
