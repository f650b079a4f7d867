"""What the labelling screen shows in place of a pair: on a new, empty workspace (no pairs
yet) the welcome panel with three ways to start; otherwise a short message page.

Import a file (the import dialog), fill this workspace with the demo (on a worker thread,
with progress), or connect to a team server (File ▸ Connect to team server…, through
``connect_requested``). The panel asks nothing of the
database itself: the annotate view decides when the workspace is empty, and a filled demo
is reported as ``Changes`` (pairs, verdicts, settings) through ``demo_created``.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QFrame, QGridLayout, QHBoxLayout, QLabel, QProgressBar,
                               QPushButton, QSizePolicy, QVBoxLayout, QWidget)

from core.operations.changes import Changes
from gui.common.workers import Worker, start_worker
from storage.locations import display_location

DEMO_TEXT = (
    "Fills this workspace with 800 labelled pairs — a helpful answer preferred over a curt one and "
    "over a reckless one — and 300 pairs for you to label, plus a small assistant model that ships "
    "with the app (2M parameters, offline). Its training run takes about a minute on a laptop's "
    "CPU, a few minutes on a busy one.")
IMPORT_TEXT = (
    "JSONL, JSON or CSV: TRL preference pairs (prompt, chosen, rejected), conversations, Anthropic "
    "HH transcripts, or prompts with candidate responses to label. Labelled rows keep their labels.")
TEAM_TEXT = ("Label together on a shared PostgreSQL server: each pair reserved while it is on someone's "
             "screen, agreement measured, verdicts kept on this computer if the connection drops.")


def fill_with_demo(location: str, report) -> Changes:
    """Worker thread: the demo into the (empty) workspace at ``location``."""
    from core.demo.demo_workspace import fill_demo_workspace
    from storage.workspace import Workspace

    with Workspace.open(location, create=False) as ws:
        fill_demo_workspace(ws, progress=lambda done, total: report((done, total)))
    return Changes(pairs=True, verdicts=True, settings=True)


def message_page(title: str) -> tuple[QFrame, QLabel, QLabel]:
    """A card with a heading and a line of text, shown in place of a pair (loading, nothing left)."""
    page = QFrame()
    page.setObjectName("card")
    layout = QVBoxLayout(page)
    layout.setAlignment(Qt.AlignmentFlag.AlignCenter)
    heading = QLabel(title)
    heading.setObjectName("heading")
    text = QLabel("")
    text.setObjectName("subheading")
    text.setWordWrap(True)
    text.setAlignment(Qt.AlignmentFlag.AlignCenter)
    layout.addWidget(heading, 0, Qt.AlignmentFlag.AlignCenter)
    layout.addWidget(text, 0, Qt.AlignmentFlag.AlignCenter)
    return page, heading, text


class _Option(QFrame):
    def __init__(self, title: str, text: str, button: str, chip: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("card")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(22, 20, 22, 20)
        layout.setSpacing(10)
        head = QGridLayout()
        self.title = QLabel(title)
        self.title.setObjectName("stat")
        head.addWidget(self.title, 0, 0)
        if chip:
            tag = QLabel(chip)
            tag.setObjectName("chip")
            head.addWidget(tag, 0, 1, Qt.AlignmentFlag.AlignRight)
        layout.addLayout(head)
        self.text = QLabel(text)
        self.text.setObjectName("muted")
        self.text.setWordWrap(True)
        self.text.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.text)
        layout.addStretch(1)
        self.extra = QVBoxLayout()
        layout.addLayout(self.extra)
        self.button = QPushButton(button)
        layout.addWidget(self.button, 0, Qt.AlignmentFlag.AlignLeft)
        self.setFixedWidth(330)
        self.setMinimumHeight(250)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Maximum)


class WelcomePanel(QWidget):
    import_requested = Signal()
    connect_requested = Signal()
    demo_created = Signal(object)     # Changes
    status_message = Signal(str)

    def __init__(self, location: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.location = location
        self._worker: Worker | None = None
        outer = QVBoxLayout(self)
        outer.setSpacing(8)
        outer.addStretch(2)
        heading = QLabel("This workspace has no pairs yet")
        heading.setObjectName("heading")
        sub = QLabel("Bring pairs to label, or start from the demo: label, train and watch the curves in minutes.")
        sub.setObjectName("subheading")
        outer.addWidget(heading, 0, Qt.AlignmentFlag.AlignHCenter)
        outer.addWidget(sub, 0, Qt.AlignmentFlag.AlignHCenter)
        outer.addSpacing(18)

        self.import_option = _Option("Import a file", IMPORT_TEXT, "Import a file…")
        self.import_option.button.setObjectName("primary")
        self.import_option.button.clicked.connect(self.import_requested)
        self.demo_option = _Option("Create the demo here", DEMO_TEXT, "Create the demo workspace")
        self.demo_option.button.clicked.connect(self.create_demo)
        self.demo_progress = QProgressBar()
        self.demo_progress.setVisible(False)
        self.demo_progress.setTextVisible(False)
        self.demo_status = QLabel("")
        self.demo_status.setObjectName("muted")
        self.demo_status.setWordWrap(True)
        self.demo_status.setVisible(False)
        self.demo_option.extra.addWidget(self.demo_progress)
        self.demo_option.extra.addWidget(self.demo_status)
        self.team_option = _Option("Connect to a team server", TEAM_TEXT, "Connect…")
        self.team_option.button.clicked.connect(self.connect_requested)

        row = QHBoxLayout()
        row.setSpacing(16)
        row.addStretch(1)
        for option in (self.import_option, self.demo_option, self.team_option):
            row.addWidget(option)
        row.addStretch(1)
        outer.addLayout(row)
        outer.addStretch(3)

    @property
    def creating(self) -> bool:
        return self._worker is not None

    def create_demo(self) -> None:
        """Fill this workspace with the demo on a worker thread, showing progress."""
        if self._worker is not None:
            return
        self.demo_option.button.setEnabled(False)
        self.import_option.button.setEnabled(False)
        self.demo_progress.setRange(0, 0)
        self.demo_progress.setVisible(True)
        self._set_status("Writing the demo pairs…")
        worker = Worker(fill_with_demo, self.location)
        worker.progress.connect(self._on_progress)
        worker.finished.connect(self._on_done)
        worker.failed.connect(self._on_failed)
        self._worker = worker
        start_worker(worker)

    def _set_status(self, text: str) -> None:
        self.demo_status.setText(text)
        self.demo_status.setVisible(bool(text))

    def _on_progress(self, value) -> None:
        done, total = value
        self.demo_progress.setRange(0, max(1, total))
        self.demo_progress.setValue(done)
        self._set_status(f"Writing the demo pairs… {done:,} of {total:,} rows")

    def _on_done(self, changes: Changes) -> None:
        self._worker = None
        self.demo_progress.setVisible(False)
        self._set_status("")
        self.demo_option.button.setEnabled(True)
        self.import_option.button.setEnabled(True)
        self.status_message.emit("The demo is in this workspace: 300 pairs to label, 800 labelled for training")
        self.demo_created.emit(changes)

    def _on_failed(self, message: str) -> None:
        self._worker = None
        self.demo_progress.setVisible(False)
        self._set_status(f"The demo could not be created in {display_location(self.location)}: {message}")
        self.demo_option.button.setEnabled(True)
        self.import_option.button.setEnabled(True)
