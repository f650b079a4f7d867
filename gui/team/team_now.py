"""The Team tab's live cards: who is labelling now, how the connection stands, and the members
with their roles.

``LabellingNowCard`` reads ``core.operations.team.who_is_labelling`` (everyone holding live
leases: their pairs and how long the soonest reservation lasts) through the database worker,
every ``POLL_MS`` while it is on screen — others label on other computers, so there is no
``Changes`` to wait for — and shows the connection line the main window hands it
(``show_connection``). ``MembersCard`` lists ``core.operations.members.members`` with their role;
an owner changes a role in place (``set_role``, refused by the store for anyone else).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QComboBox, QLabel, QTableWidgetItem, QWidget

from core.operations.connection import ConnectionState
from core.operations.members import ROLE_NAMES, Role, members, roles_note, set_role
from core.operations.team import LabellerNow, who_is_labelling
from core.operations.wording import format_duration, plural
from gui.annotate.response_panel import Card
from gui.common.db_worker import DatabaseWorker
from gui.team.tables import fit_columns, read_only_table
from storage.workspace import Workspace

POLL_MS = 10_000
CARD_HEIGHT = 230   # the live cards stay short: the agreement numbers below stay in view


class LabellingNowCard(Card):
    def __init__(self, workspace: Workspace, db: DatabaseWorker, parent: QWidget | None = None):
        super().__init__("Labelling now", parent)
        self.setMaximumHeight(CARD_HEIGHT)
        self.workspace = workspace
        self.db = db
        self.connection = QLabel("")
        self.connection.setObjectName("stat")
        self.connection.setContentsMargins(14, 2, 14, 4)
        self.connection.setWordWrap(True)
        self.body.addWidget(self.connection)
        self.table = read_only_table(("Annotator", "Pairs reserved", "Reserved for"))
        fit_columns(self.table, stretch=1)
        self.body.addWidget(self.table)
        self.empty = QLabel("Nobody holds a pair right now.")
        self.empty.setObjectName("muted")
        self.empty.setContentsMargins(14, 0, 14, 8)
        self.body.addWidget(self.empty)
        self.labellers: list[LabellerNow] = []
        self._reading = False
        self._poll = QTimer(self, interval=POLL_MS, timeout=self._tick)
        self._poll.start()
        self.show_connection(ConnectionState())

    def _tick(self) -> None:
        if self.isVisible():
            self.reload()

    def reload(self) -> None:
        if self._reading:
            return
        self._reading = True
        self.db.submit(who_is_labelling, self.workspace, on_done=self.show_labellers,
                       on_failed=lambda _exc: setattr(self, "_reading", False))

    def show_labellers(self, labellers: list[LabellerNow]) -> None:
        self._reading = False
        self.labellers = labellers
        self.table.setRowCount(len(labellers))
        for row, who in enumerate(labellers):
            values = (who.name, f"{plural(len(who.pair_ids), 'pair')}: {who.pairs_text()}",
                      format_duration(who.seconds_left))
            for col, value in enumerate(values):
                self.table.setItem(row, col, QTableWidgetItem(value))
        self.table.setVisible(bool(labellers))
        self.empty.setVisible(not labellers)

    def show_connection(self, state: ConnectionState) -> None:
        where = self.workspace.display_location
        if not state.online:
            text = (f"Offline — {where} cannot be reached ({state.error or 'no answer'}). "
                    f"{plural(state.waiting, 'verdict')} waiting on this computer; they are sent when it is back.")
        elif state.waiting:
            text = f"Connected to {where} — sending {plural(state.waiting, 'verdict')} kept while offline."
        else:
            text = f"Connected to {where}." if self.workspace.is_server else f"Workspace on this computer: {where}."
        self.connection.setText(text)

    def stop_timers(self) -> None:
        self._poll.stop()


class MembersCard(Card):
    changes_made = Signal(object)   # Changes: a role was changed

    def __init__(self, workspace: Workspace, db: DatabaseWorker, parent: QWidget | None = None):
        super().__init__("Members and roles", parent)
        self.setMaximumHeight(CARD_HEIGHT)
        self.workspace = workspace
        self.db = db
        self.annotator: str | None = None
        self.table = read_only_table(("Member", "Role", "Database role"))
        fit_columns(self.table, stretch=0)
        self.body.addWidget(self.table)
        self.note = QLabel("")
        self.note.setObjectName("muted")
        self.note.setWordWrap(True)
        self.note.setContentsMargins(14, 0, 14, 8)
        self.body.addWidget(self.note)
        self.listed = []

    def reload(self) -> None:
        self.db.submit(members, self.workspace, on_done=self.show_members,
                       on_failed=lambda exc: self.note.setText(f"Members could not be read: {exc}"))

    def _may_manage(self) -> bool:
        """Whether to offer role changes (the store decides; this only greys out what it would refuse)."""
        owners = [m for m in self.listed if m.role == Role.OWNER]
        return self.annotator is None or any(m.name == self.annotator for m in owners)

    def show_members(self, listed) -> None:
        self.listed = listed
        editable = self._may_manage()
        self.table.setRowCount(len(listed))
        for row, member in enumerate(listed):
            self.table.setItem(row, 0, QTableWidgetItem(member.name))
            role = QComboBox()
            role.addItems(ROLE_NAMES)
            role.setCurrentText(member.role.value)
            role.setEnabled(editable)
            role.setToolTip("" if editable else "Only an owner changes roles")
            role.currentTextChanged.connect(lambda value, name=member.name: self._set_role(name, value))
            self.table.setCellWidget(row, 1, role)
            item = QTableWidgetItem(member.db_role or "—")
            item.setTextAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
            self.table.setItem(row, 2, item)
        note = roles_note(self.workspace, listed)
        self.note.setText(note[0].upper() + note[1:] + "." if note else "")
        self.note.setVisible(bool(note))

    def _set_role(self, name: str, role: str) -> None:
        self.db.submit(set_role, self.workspace, name, role, actor=self.annotator,
                       on_done=lambda result: self.changes_made.emit(result[1]),
                       on_failed=self._role_refused)

    def _role_refused(self, exc: BaseException) -> None:
        self.note.setText(f"Role not changed: {exc}")
        self.note.setVisible(True)
        self.reload()
