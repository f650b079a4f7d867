"""Sends the labelling session's writes to the database thread, retries the ones that fail, and
keeps them on this computer while the team server cannot be reached.

A verdict is on its way the moment its key is pressed; the next pair is already on screen
(``core.operations.labelling``). A write the database refuses for now (locked by a big import)
stays in the session's outbox and is sent again after a growing pause (1 s, 2 s, 4 s … at most
30 s), or at once by ``retry_now`` (the banner's button). A write that can never succeed (its
pair was deleted) is dropped and reported.

When a call fails because the server cannot be reached (``storage.reachability``), the
sender goes *offline*: every unsaved write is kept in the outbox file
(``core.operations.outbox``), new ones are kept as they are made instead of sent, and one
probe (the oldest write, else a cheap read) goes out every few seconds. The first answer
brings it back online: the kept writes are sent in order (their client ids make a resend
harmless) and leave the file as they are stored. ``start`` first stores what an earlier
sitting left in the file. Nothing here decides what a write means; the session does.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal

from core.operations.connection import ConnectionState
from core.operations.labelling import LabellingSession, Write
from core.operations.outbox import (DrainReport, OutboxFile, OutboxFileError, describe_error, drain, entry_for,
                                    has_kept_writes, is_unreachable, open_outbox)
from gui.common.db_worker import DatabaseWorker
from storage.locations import scrub
from storage.settings import read_settings
from storage.workspace import Workspace

FIRST_RETRY_S = 1.0
LONGEST_RETRY_S = 30.0
LONGEST_PROBE_S = 5.0   # offline: how long at most between two tries to reach the server


class OutboxSender(QObject):
    stored = Signal(object, object)      # Write (None: kept by an earlier sitting), Changes
    message = Signal(str)                # something to tell the annotator (status bar)
    dropped = Signal(object, str)        # Write (None: kept earlier), why: it will never be stored
    health_changed = Signal()            # failing/unsaved counts changed: redraw the banner
    connection_changed = Signal(object)  # ConnectionState

    def __init__(self, db: DatabaseWorker, workspace: Workspace | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.db = db
        self.workspace = workspace
        # Opened when first needed (an outage, or writes an earlier sitting kept): a workspace
        # that never lost its server gets no file.
        self.outbox: OutboxFile | None = None
        self._outbox_refused = workspace is None
        # Sessions with writes not yet stored: an earlier annotator's keep being sent after a switch.
        self._sessions: list[LabellingSession] = []
        self._failed_rounds = 0     # retry rounds since the last write that was stored
        self.last_error = ""
        self.offline = False
        self._kept: dict[str, tuple[LabellingSession, Write]] = {}   # client id -> the live write kept
        self._draining = False
        self._retry = QTimer(self, singleShot=True, timeout=self.retry_now)

    # -- what the screens show -------------------------------------------------------------
    @property
    def unsaved(self) -> list[Write]:
        return [w for session in self._sessions for w in session.unsaved]

    @property
    def failing(self) -> bool:
        """Some write failed and waits for its retry."""
        return self._failed_rounds > 0 and bool(self.unsaved) and not self.offline

    def seconds_to_retry(self) -> float | None:
        return self._retry.remainingTime() / 1000 if self._retry.isActive() else None

    def state(self) -> ConnectionState:
        if self.outbox is not None:
            waiting = len(self.outbox) + sum(not w.kept for w in self.unsaved) * self.offline
        else:
            waiting = len(self.unsaved) if self.offline else 0
        return ConnectionState(not self.offline, waiting, self.last_error if self.offline else "",
                               str(self.outbox.path) if self.outbox is not None else "")

    @property
    def all_kept(self) -> bool:
        """Every unsaved write is in the outbox file (closing loses none of them)."""
        return self.outbox is not None and all(w.kept for w in self.unsaved)

    def _changed(self) -> None:
        self.health_changed.emit()
        self.connection_changed.emit(self.state())

    # -- sending -------------------------------------------------------------------------
    def start(self) -> None:
        """Store what earlier sittings left in the outbox files (before anything else is sent)."""
        if self.workspace is not None and has_kept_writes(self.workspace):
            self._open_outbox()
        if self.outbox is not None:
            try:
                self.outbox.adopt()
            except OSError as exc:
                self.message.emit(f"Could not read every kept verdict: {exc}")
            for problem in self.outbox.problems:
                self.message.emit(f"A line of the outbox file could not be read: {problem}")
        self._drain_leftovers()
        self._changed()

    def send(self, session: LabellingSession) -> None:
        """Send every write of ``session`` not already on its way (after a key press or an undo)."""
        if session not in self._sessions:
            self._sessions.append(session)
        self._forget_finished()
        if self.offline:
            self._keep_unsaved()
            self._changed()
            return
        if self._retry.isActive():  # the database is failing: wait for the retry, do not pile up failures
            self._changed()
            return
        for write in session.writes_to_send():
            self._submit(session, write)
        self._changed()

    def _submit(self, session: LabellingSession, write: Write) -> None:
        write.in_flight = True
        self.db.submit(session.store, write,
                       on_done=lambda changes, s=session, w=write: self._on_stored(s, w, changes),
                       on_failed=lambda exc, s=session, w=write: self._on_failed(s, w, exc))

    def retry_now(self) -> None:
        self._retry.stop()
        if self.offline:
            self._probe()
            return
        for session in list(self._sessions):
            self.send(session)
        self._drain_leftovers()

    def _on_stored(self, session: LabellingSession, write: Write, changes) -> None:
        note = session.stored(write)
        recovered = self._failed_rounds > 0 or self.offline
        self._failed_rounds = 0
        self._forget_finished()
        if note:
            self.message.emit(note)
        self.stored.emit(write, changes)
        if recovered:  # the database accepts writes again: send the waiting ones now
            self._back_online()
        self._changed()

    def _on_failed(self, session: LabellingSession, write: Write, exc: BaseException) -> None:
        keep = session.store_failed(write, exc)
        self.last_error = self._shown(write.last_error)
        if not keep and not write.cancelled:
            self.dropped.emit(write, write.last_error)
        elif keep and is_unreachable(exc):
            self.saw_failure(exc)
        elif keep and not self._retry.isActive():
            self._failed_rounds += 1
            pause = min(LONGEST_RETRY_S, FIRST_RETRY_S * 2 ** min(self._failed_rounds - 1, 8))
            self._retry.start(int(pause * 1000))
        self._forget_finished()
        self._changed()

    # -- offline -------------------------------------------------------------------------
    def saw_failure(self, exc: BaseException) -> bool:
        """A database call failed; True when it says the server is away (the sender goes offline)."""
        if not is_unreachable(exc):
            return False
        self.last_error = self._shown(describe_error(exc))
        if not self.offline:
            self.offline = True
            self._failed_rounds = 0
            self._retry.stop()
            self._keep_unsaved()
            where = "on this computer" if self.outbox is not None else "in this window only (no outbox file)"
            self.message.emit(f"Offline — the server cannot be reached ({self.last_error}); verdicts are kept {where}")
        self._keep_unsaved()
        self._schedule_probe()
        self._changed()
        return True

    def saw_answer(self) -> None:
        """A database call answered: if offline, the server is back."""
        if self.offline:
            self._back_online()
            self._changed()

    def _back_online(self) -> None:
        was_offline = self.offline
        self.offline = False
        self._failed_rounds = 0
        self._retry.stop()
        waiting = len(self.unsaved) + (len(self.outbox) if self.outbox is not None else 0)
        if was_offline:
            self.message.emit("Connected again — sending the kept verdicts" if waiting else "Connected again")
        else:
            self.message.emit("Saved again: the database accepts verdicts")
        for session in list(self._sessions):
            for write in session.writes_to_send():
                self._submit(session, write)
        self._drain_leftovers()

    def _schedule_probe(self) -> None:
        if self._retry.isActive():
            return
        self._failed_rounds += 1
        self._retry.start(int(min(LONGEST_PROBE_S, FIRST_RETRY_S * 2 ** min(self._failed_rounds - 1, 8)) * 1000))

    def _probe(self) -> None:
        """Offline: one call to learn whether the server is back — the oldest write, else a read."""
        for session in self._sessions:
            waiting = session.writes_to_send()
            if waiting:
                self._submit(session, waiting[0])
                return
        if self._leftovers():
            self._drain_leftovers()
            return
        if any(w.in_flight for w in self.unsaved) or self.workspace is None:
            self._schedule_probe()
            return
        self.db.submit(read_settings, self.workspace, on_done=lambda _settings: self.saw_answer(),
                       on_failed=self._probe_failed)

    def _probe_failed(self, exc: BaseException) -> None:
        if not self.saw_failure(exc):
            self.saw_answer()    # the server answered, if only with an error of its own

    # -- the outbox file -----------------------------------------------------------------
    def _open_outbox(self) -> None:
        if self.outbox is not None or self._outbox_refused:
            return
        try:
            self.outbox = open_outbox(self.workspace)
        except OutboxFileError as exc:
            self._outbox_refused = True
            self.message.emit(f"{exc}; verdicts made while offline stay in this window only")

    def _keep_unsaved(self) -> None:
        self._open_outbox()
        if self.outbox is None:
            return
        for session in self._sessions:
            for write in session.unsaved:
                if write.kept:
                    continue
                try:
                    self.outbox.keep(entry_for(write, session.annotator_name))
                except OutboxFileError as exc:
                    self.message.emit(f"{exc}; the verdicts stay in this window only")
                    self.outbox, self._outbox_refused = None, True
                    return
                write.kept = True
                self._kept[write.client_id] = (session, write)

    def _forget_finished(self) -> None:
        """Writes stored, dropped or undone leave the file; sessions with nothing left are let go."""
        for key, (session, write) in list(self._kept.items()):
            if write not in session.outbox and not write.in_flight:
                del self._kept[key]
                if self.outbox is not None:
                    self.outbox.done(key)
        self._sessions = [s for s in self._sessions if s.unsaved]

    def _leftovers(self):
        if self.outbox is None:
            return []
        return [entry for entry in self.outbox.pending() if entry.key not in self._kept]

    def _drain_leftovers(self) -> None:
        entries = self._leftovers()
        if self._draining or not entries or self.workspace is None:
            return
        self._draining = True
        self.db.submit(drain, self.workspace, self.outbox, entries, on_done=self._drained,
                       on_failed=self._drain_failed)

    def _drained(self, report: DrainReport) -> None:
        self._draining = False
        for why in report.dropped:
            self.dropped.emit(None, why)
        if report.changes:
            self.stored.emit(None, report.changes)
        if report.stored:
            self.message.emit(f"Stored {report.stored} verdict{'s' if report.stored != 1 else ''} kept on this "
                              "computer from an earlier sitting")
        if report.unreachable:
            self.last_error = report.unreachable
            if not self.offline:
                self.offline = True
                self._keep_unsaved()
            self._schedule_probe()
        elif self.offline:
            self._back_online()
        self._changed()

    def _drain_failed(self, exc: BaseException) -> None:
        self._draining = False
        if not self.saw_failure(exc):
            self.last_error = self._shown(describe_error(exc))
            self.message.emit(f"Kept verdicts could not be stored yet ({self.last_error}); trying again")
            if not self._retry.isActive():
                self._failed_rounds += 1
                self._retry.start(int(LONGEST_RETRY_S * 1000))
        self._changed()

    def _shown(self, text: str) -> str:
        return scrub(text, self.workspace.location) if self.workspace is not None else text

    def stop(self) -> None:
        self._retry.stop()

    def close_outbox(self) -> None:
        """Release the outbox file (after the database thread ended): what is kept stays on disk."""
        if self.outbox is not None:
            self.outbox.close()
