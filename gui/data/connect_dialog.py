"""File ▸ Connect to team server…: host, port, database, user and password of a PostgreSQL team
store, opened off the UI thread; the main window shows it in a new window.

The password field does not echo; the password is never stored (it lives in the opened
workspace's location, in memory, like a URL typed on the command line — or comes from
``PGPASSWORD`` / ``~/.pgpass`` when left empty). "Remember" keeps host, port, database and user
in this computer's settings, nothing else. A refusal (no such server, wrong password, missing
driver) is shown in the dialog in one line, the password masked.
"""

from __future__ import annotations

import getpass

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QCheckBox, QDialog, QHBoxLayout, QLabel, QLineEdit, QProgressBar, QPushButton,
                               QSpinBox, QVBoxLayout, QWidget)

from core.operations.connection import DEFAULT_PORT, ServerDetails, ServerDetailsError, open_server
from gui.common import settings as app_settings
from gui.common.workers import Worker, start_worker
from gui.data.dialog_form import form_rows, muted_note
from storage.locations import scrub
from storage.workspace import Workspace

REMEMBERED = "team/server"   # QSettings group: host, port, database, user (never a password)


def _default_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


class ConnectDialog(QDialog):
    connected = Signal(object)   # the opened Workspace

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Connect to a team server")
        self.setMinimumWidth(520)
        self.host = QLineEdit(str(app_settings.get_value(f"{REMEMBERED}/host", "")))
        self.host.setPlaceholderText("labelling.example.org")
        self.port = QSpinBox()
        self.port.setRange(1, 65535)
        self.port.setValue(int(app_settings.get_value(f"{REMEMBERED}/port", DEFAULT_PORT)))
        self.database = QLineEdit(str(app_settings.get_value(f"{REMEMBERED}/database", "")))
        self.database.setPlaceholderText("the team's database, e.g. labelling")
        self.user = QLineEdit(str(app_settings.get_value(f"{REMEMBERED}/user", "")) or _default_user())
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setPlaceholderText("left empty: PGPASSWORD or ~/.pgpass")
        self.remember = QCheckBox("Remember server, database and user on this computer (never the password)")
        self.remember.setChecked(bool(self.host.text()))
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.setVisible(False)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.connect_button = QPushButton("Connect")
        self.connect_button.setObjectName("primary")
        self.connect_button.setDefault(True)
        self.connect_button.clicked.connect(self.start_connecting)
        self.close_button = QPushButton("Cancel")
        self.close_button.clicked.connect(self.reject)

        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)
        buttons.addWidget(self.connect_button)
        layout = QVBoxLayout(self)
        layout.addWidget(muted_note("A team labels together in one PostgreSQL database: pairs on someone's screen "
                                    "are reserved for them, and verdicts made while the server is away wait on "
                                    "this computer. Ask the workspace's owner for these details."))
        layout.addLayout(form_rows([("Host:", self.host), ("Port:", self.port), ("Database:", self.database),
                                    ("User:", self.user), ("Password:", self.password)]))
        layout.addWidget(self.remember)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        self._worker: Worker | None = None
        self.workspace: Workspace | None = None
        for field in (self.host, self.database, self.user):
            field.textEdited.connect(lambda _text: self.status.clear() if not self.running else None)

    def details(self) -> ServerDetails:
        return ServerDetails(self.host.text(), self.database.text(), self.user.text(), self.port.value(),
                             self.password.text())

    @property
    def running(self) -> bool:
        return self._worker is not None

    def start_connecting(self) -> None:
        details = self.details()
        problems = details.problems()
        if problems:
            self.status.setText("\n".join(problems))
            return
        self.status.setText(f"Connecting to {details.shown()}…")
        self.progress.setVisible(True)
        self.connect_button.setEnabled(False)
        self._worker = Worker(open_server, details)
        self._worker.finished.connect(lambda workspace: self._connected(details, workspace))
        self._worker.failed.connect(lambda message: self._failed(details, message))
        start_worker(self._worker)

    def _connected(self, details: ServerDetails, workspace: Workspace) -> None:
        self._worker = None
        self.progress.setVisible(False)
        self.password.clear()
        if self.remember.isChecked():
            for key, value in details.remembered().items():
                app_settings.set_value(f"{REMEMBERED}/{key}", value)
        else:
            settings = app_settings.app_settings()
            settings.remove(REMEMBERED)
            settings.sync()
        self.workspace = workspace
        self.accept()
        self.connected.emit(workspace)

    def _failed(self, details: ServerDetails, message: str) -> None:
        self._worker = None
        self.progress.setVisible(False)
        self.connect_button.setEnabled(True)
        try:
            message = scrub(message, details.url())
        except ServerDetailsError:
            pass
        if details.password:
            message = message.replace(details.password, "***")
        self.status.setText(f"Could not connect: {message}")

    def reject(self) -> None:
        if self.running:
            return   # the connection attempt ends by itself (at most the connect timeout)
        super().reject()
