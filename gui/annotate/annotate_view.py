"""The labelling screen: one pair at a time, a key per verdict, committed at once.

``AnnotateView`` renders what ``storage.annotation_queue.AnnotationQueue`` serves and hands
every verdict straight back to it (one committed transaction per key press); which pair
comes next, overlap and undo are the queue's business. Session pace is
``storage.annotator_session.SessionPace``. The view only keeps what is on screen: the
current pair, when it appeared (for ``seconds_spent``) and this session's verdicts (so
Ctrl+Z walks back through them).
"""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (QFrame, QHBoxLayout, QLabel, QLineEdit, QProgressBar, QPushButton,
                               QSpinBox, QSplitter, QStackedWidget, QToolButton, QVBoxLayout, QWidget)

from sqlalchemy.exc import SQLAlchemyError

from gui.common import settings as app_settings
from gui.annotate.annotator_dialog import AnnotatorPicker
from gui.annotate.guidelines_panel import GuidelinesPanel
from gui.annotate.help_overlay import HelpOverlay
from gui.annotate.pair_display import PairDisplay
from gui.annotate.verdict_bar import VerdictBar
from storage.annotation_queue import AnnotationQueue, PairView, choice_for_side
from core.operations.wording import format_duration
from storage.annotator_session import MAX_GAP_S, SessionPace
from storage.models import Choice
from storage.workspace import Workspace

# Keys of each action. Letters and digits are also typed into the note field: QLineEdit
# claims them (ShortcutOverride) while it has the focus, so a note never triggers a verdict.
ACTION_KEYS = {
    "left": ("1", "Left"),
    "right": ("2", "Right"),
    "tie": ("3", "T"),
    "both_bad": ("4", "B"),
    "skip": ("S", "0"),
    "undo": ("Ctrl+Z",),
    "search": ("Ctrl+F",),
    "help": ("?", "Shift+?", "F1"),
    "note": ("N",),
    "raw": ("R",),
    "diff": ("D",),
    "guidelines": ("G",),
    "page_down": ("PgDown", "Space"),
    "page_up": ("PgUp", "Shift+Space"),
    "escape": ("Esc",),   # leaves the note field, or closes the keys overlay
}
FIXED_CHOICES = {"tie": Choice.TIE, "both_bad": Choice.BOTH_BAD, "skip": Choice.SKIP}
CHOICE_WORDS = {Choice.A: "response A", Choice.B: "response B", Choice.TIE: "tie",
                Choice.BOTH_BAD: "both bad", Choice.SKIP: "skipped"}
TARGET_SETTING = "session/target"


def _toggle(text: str, key: str, tip: str) -> QToolButton:
    button = QToolButton()
    button.setText(text)
    button.setCheckable(True)
    button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    button.setToolTip(f"{tip} ({key})")
    return button


class AnnotateView(QWidget):
    """The Annotate tab. ``annotator_name`` None shows the "who is labelling?" page first."""

    verdict_recorded = Signal(int, str)     # pair id, stored choice value
    verdict_undone = Signal(int)            # pair id
    annotator_changed = Signal(str)
    search_requested = Signal()
    status_message = Signal(str)

    def __init__(self, workspace: Workspace, annotator_name: str | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.workspace = workspace
        self.queue: AnnotationQueue | None = None
        self.current: PairView | None = None
        self._shown_at = time.monotonic()
        # Verdicts given on this screen this session, newest last: undo retracts exactly these,
        # never a correction the same annotator made meanwhile in the Pairs tab.
        self._session_verdicts: list[int] = []
        self.pace = SessionPace(target=max(1, app_settings.get_value(TARGET_SETTING, 100)))
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

        self.pages = QStackedWidget()
        self.picker = AnnotatorPicker(workspace, app_settings.remembered_annotator(workspace.location))
        self.picker.chosen.connect(self.set_annotator)
        self.pages.addWidget(self.picker)
        self.pages.addWidget(self._build_label_page())
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.pages)

        self.help = HelpOverlay(self)
        self._shortcuts = self._install_shortcuts()
        self._stats_timer = QTimer(self, singleShot=True, interval=400, timeout=self._refresh_queue_stats)
        self._pace_timer = QTimer(self, interval=5000, timeout=self._refresh_pace)
        if annotator_name:
            self.set_annotator(annotator_name)

    # -- building ----------------------------------------------------------------------
    def _build_label_page(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.setContentsMargins(14, 12, 14, 12)
        layout.setSpacing(10)
        layout.addLayout(self._build_header())

        self.display = PairDisplay(left_keys=("1", "←"), right_keys=("2", "→"))
        self.empty = QFrame()
        self.empty.setObjectName("card")
        empty_layout = QVBoxLayout(self.empty)
        empty_layout.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_title = QLabel("Nothing left to label")
        self.empty_title.setObjectName("heading")
        self.empty_text = QLabel("")
        self.empty_text.setObjectName("subheading")
        self.empty_text.setWordWrap(True)
        self.empty_text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        empty_layout.addWidget(self.empty_title, 0, Qt.AlignmentFlag.AlignCenter)
        empty_layout.addWidget(self.empty_text, 0, Qt.AlignmentFlag.AlignCenter)
        self.content = QStackedWidget()
        self.content.addWidget(self.display)
        self.content.addWidget(self.empty)

        self.guidelines = GuidelinesPanel(self.workspace)
        self.guidelines.setMinimumWidth(240)
        self.body = QSplitter(Qt.Orientation.Horizontal)
        self.body.setChildrenCollapsible(False)
        self.body.addWidget(self.content)
        self.body.addWidget(self.guidelines)
        self.body.setStretchFactor(0, 4)
        self.body.setStretchFactor(1, 1)
        self.body.setSizes([1000, 300])
        show_guidelines = app_settings.get_value("view/guidelines", False)
        self.guidelines.setVisible(show_guidelines)
        self.guidelines_toggle.setChecked(show_guidelines)
        layout.addWidget(self.body, 1)

        self.note = QLineEdit()
        self.note.setObjectName("note")
        self.note.setPlaceholderText("Note for this verdict (optional) — press N to write, Esc to go back to the keys")
        self.note.setClearButtonEnabled(True)
        self.note.returnPressed.connect(self.setFocus)
        layout.addWidget(self.note)

        self.verdicts = VerdictBar()
        self.verdicts.triggered.connect(self.trigger)
        layout.addWidget(self.verdicts)
        return page

    def _build_header(self) -> QHBoxLayout:
        header = QHBoxLayout()
        header.setSpacing(10)
        self.who = QLabel("")
        self.who.setObjectName("stat")
        self.switch = QPushButton("Switch")
        self.switch.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.switch.clicked.connect(self.show_picker)
        self.progress = QProgressBar()
        self.progress.setTextVisible(False)
        self.progress.setFixedWidth(220)
        self.progress_label = QLabel("")
        self.progress_label.setObjectName("stat")
        self.target = QSpinBox()
        self.target.setObjectName("inlineSpin")
        self.target.setRange(1, 100_000)
        self.target.setPrefix("/ ")
        self.target.setSuffix(" pairs")
        self.target.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.target.setToolTip("Session target: how many pairs you mean to label in this sitting")
        self.target.setValue(self.pace.target)
        self.target.valueChanged.connect(self._set_target)
        self.pace_label = QLabel("")
        self.pace_label.setObjectName("muted")
        self.queue_label = QLabel("")
        self.queue_label.setObjectName("muted")
        self.raw_toggle = _toggle("Raw text", "R", "Show the responses as stored, not rendered as Markdown")
        self.raw_toggle.toggled.connect(self._set_raw)
        self.diff_toggle = _toggle("Word diff", "D", "Highlight the words that differ between the two responses")
        self.diff_toggle.toggled.connect(self._set_diff)
        self.guidelines_toggle = _toggle("Guidelines", "G", "Show or hide the labelling guidelines")
        self.guidelines_toggle.toggled.connect(self._set_guidelines)
        self.help_button = QToolButton()
        self.help_button.setText("Keys  ?")
        self.help_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.help_button.clicked.connect(lambda: self.help.toggle())
        for widget in (self.who, self.switch):
            header.addWidget(widget)
        header.addSpacing(14)
        for widget in (self.progress, self.progress_label, self.target, self.pace_label):
            header.addWidget(widget)
        header.addStretch(1)
        for widget in (self.queue_label, self.raw_toggle, self.diff_toggle, self.guidelines_toggle,
                       self.help_button):
            header.addWidget(widget)
        return header

    def _install_shortcuts(self) -> list[QShortcut]:
        shortcuts = []
        for action, keys in ACTION_KEYS.items():
            for key in keys:
                # Window-wide, but Qt only fires it while this view is visible (its tab is current).
                shortcut = QShortcut(QKeySequence(key), self, context=Qt.ShortcutContext.WindowShortcut)
                shortcut.setAutoRepeat(action in ("page_down", "page_up"))
                shortcut.activated.connect(lambda a=action: self.trigger(a))
                shortcuts.append(shortcut)
        return shortcuts

    # -- annotator and session ---------------------------------------------------------
    @property
    def annotator_name(self) -> str | None:
        return self.queue.annotator_name if self.queue else None

    def set_annotator(self, name: str) -> None:
        """Label as ``name`` (created if new) from the first pair they have not judged."""
        self.queue = AnnotationQueue(self.workspace, name)
        app_settings.remember_annotator(self.workspace.location, self.queue.annotator_name)
        self._session_verdicts.clear()
        self.pace = SessionPace(target=self.target.value())
        self.who.setText(f"Labelling as  {self.queue.annotator_name}")
        self.pages.setCurrentIndex(1)
        self.setFocus()
        self._pace_timer.start()
        self.show_next()
        self._refresh_queue_stats()
        self.annotator_changed.emit(self.queue.annotator_name)

    def reload_queue(self) -> None:
        """Rebuild the queue (the workspace's overlap changed), keeping this session's progress."""
        if self.queue is not None:
            self.queue = AnnotationQueue(self.workspace, self.queue.annotator_name)
            if self.current is None:
                self.show_next()
            self._refresh_queue_stats()

    def show_picker(self) -> None:
        self.pages.setCurrentIndex(0)
        self.picker.names.setFocus()

    def _set_target(self, value: int) -> None:
        self.pace.target = value
        app_settings.set_value(TARGET_SETTING, value)
        self._refresh_pace()

    # -- what is on screen -------------------------------------------------------------
    def show_pair(self, view: PairView | None) -> None:
        """Put ``view`` on screen (None: the "nothing left" page)."""
        self.current = view
        self._shown_at = time.monotonic()
        if view is None:
            self.content.setCurrentWidget(self.empty)
            overlap = self.queue.overlap if self.queue else 1
            self.empty_text.setText(
                "Every pair has a verdict from you, or already has the "
                f"{overlap} annotator{'s' if overlap != 1 else ''} the workspace asks for.\n"
                "Import more pairs (File ▸ Import) or browse the pairs to change a verdict.")
        else:
            self.display.show_pair(view)
            self.content.setCurrentWidget(self.display)

    def show_next(self) -> None:
        self.show_pair(self.queue.next_pair() if self.queue else None)

    # -- actions -----------------------------------------------------------------------
    def trigger(self, action: str) -> None:
        """Run one action of the screen (a key press or a button click)."""
        if self.pages.currentIndex() != 1:
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
        elif action == "raw":
            self.raw_toggle.toggle()
        elif action == "diff":
            self.diff_toggle.toggle()
        elif action == "guidelines":
            self.guidelines_toggle.toggle()
        elif action in ("page_down", "page_up"):
            bar = self.display.left.browser.verticalScrollBar()
            step = bar.pageStep() if action == "page_down" else -bar.pageStep()
            bar.setValue(bar.value() + step)

    def judge(self, choice: Choice) -> int | None:
        """Commit ``choice`` for the pair on screen, then show the next pair. Returns the verdict
        id, or None when it could not be saved (the pair then stays on screen)."""
        view = self.current
        seconds = min(time.monotonic() - self._shown_at, MAX_GAP_S)
        try:
            verdict_id = self.queue.record(view.pair_id, choice, seconds_spent=seconds,
                                           note=self.note.text().strip())
        except (SQLAlchemyError, LookupError) as exc:
            # e.g. another process held the workspace's write lock past the busy timeout: say
            # so and keep the pair, so the annotator can press the key again.
            self.status_message.emit(f"Not saved — pair #{view.pair_id} stays on screen; press the key "
                                     f"again. ({exc.__class__.__name__}: {str(exc).splitlines()[0]})")
            return None
        self._session_verdicts.append(verdict_id)
        self.pace.record()
        self.note.clear()
        self.help.hide()
        self.show_next()
        self._after_change()
        self.status_message.emit(f"Saved: {CHOICE_WORDS[choice]} on pair #{view.pair_id}")
        self.verdict_recorded.emit(view.pair_id, choice.value)
        return verdict_id

    def undo(self) -> int | None:
        """Take back this session's newest verdict and show its pair again."""
        if not self._session_verdicts or self.queue is None:
            self.status_message.emit("Nothing to undo in this session")
            return None
        pair_id = self.queue.undo_last(self._session_verdicts.pop())
        if pair_id is None:  # already replaced elsewhere (a change in the Pairs tab): nothing of ours to undo
            self.status_message.emit("That verdict was already changed elsewhere; nothing undone")
            return None
        self.pace.undo()
        self.show_pair(self.queue.pair_view(pair_id))
        self._after_change()
        self.status_message.emit(f"Undone: your verdict on pair #{pair_id}")
        self.verdict_undone.emit(pair_id)
        return pair_id

    def refresh(self) -> None:
        """Re-read the queue (after an import, or verdicts given elsewhere)."""
        if self.queue is not None and self.current is None:
            self.show_next()
        self.guidelines.reload()
        self._refresh_queue_stats()

    def refresh_theme(self) -> None:
        """Re-render the texts in the new theme's colours (code tint, role labels, diff)."""
        self.display._render()
        self.guidelines.reload()
        self.help.update()

    # -- toggles -----------------------------------------------------------------------
    def _set_raw(self, raw: bool) -> None:
        self.display.set_raw(raw)

    def _set_diff(self, diff: bool) -> None:
        self.display.set_diff(diff)

    def _set_guidelines(self, visible: bool) -> None:
        self.guidelines.setVisible(visible)
        app_settings.set_value("view/guidelines", visible)

    # -- numbers -----------------------------------------------------------------------
    def _after_change(self) -> None:
        self._refresh_pace()
        # Counting the queue scans an index; coalesce it so fast key presses never wait on it.
        self._stats_timer.start()

    def _refresh_pace(self) -> None:
        pace = self.pace
        self.progress.setMaximum(pace.target)
        self.progress.setValue(min(pace.done, pace.target))
        self.progress_label.setText(f"{pace.done}")
        per_hour = pace.pairs_per_hour()
        self.pace_label.setText(
            f"{per_hour:,.0f} pairs/h  ·  {format_duration(pace.seconds_left())} left" if per_hour
            else "pace appears after the first verdict")

    def _refresh_queue_stats(self) -> None:
        if self.queue is None:
            return
        remaining = self.queue.remaining_count()
        self.queue_label.setText(f"{remaining:,} in queue")
        self._refresh_pace()

    def hideEvent(self, event) -> None:
        self._pace_timer.stop()
        super().hideEvent(event)

    def showEvent(self, event) -> None:
        if self.queue is not None:
            self._pace_timer.start()
        super().showEvent(event)
