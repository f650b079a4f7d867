"""The labelling screen's widgets and where they sit; ``AnnotateView``
(``gui.annotate.annotate_view``) adds the behaviour.

Top to bottom: the session header (who, progress, pace, queue, connection, view toggles), the
save banner, the pair (or the loading / nothing-left / welcome page) beside the guidelines,
the note line, the verdict buttons and, once a pair is judged, the run's preference on it.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit, QSplitter, QStackedWidget, QVBoxLayout, QWidget

from gui.annotate.adapter_preference import AdapterPreferenceLine
from gui.annotate.guidelines_panel import GuidelinesPanel
from gui.annotate.pair_display import PairDisplay
from gui.annotate.save_banner import SaveBanner
from gui.annotate.session_header import SessionHeader
from gui.annotate.verdict_bar import VerdictBar
from gui.annotate.welcome_panel import WelcomePanel, message_page
from gui.common import settings as app_settings

TARGET_SETTING = "session/target"


class AnnotateLayout(QWidget):
    """The widgets of the Annotate tab's labelling page, laid out; no behaviour beyond the layout."""

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
        self.welcome.connect_requested.connect(self.connect_requested)
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
        self.preference = AdapterPreferenceLine(self.workspace, self.db)   # after a verdict only
        layout.addWidget(self.preference)
        return page
