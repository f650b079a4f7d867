"""Sends the labelling session's writes to the database thread, and retries the ones that fail.

A verdict is on its way the moment its key is pressed; the next pair is already on screen
(``core.operations.labelling``). A write that fails (the database is locked by a big import,
a network store dropped) stays in the session's outbox and is sent again after a growing
pause (1 s, 2 s, 4 s … at most 30 s), or at once by ``retry_now`` (the banner's button). A
write that can never succeed (its pair was deleted) is dropped and reported. Nothing here
decides what a write means; the session does.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal

from core.operations.labelling import LabellingSession, Write
from gui.common.db_worker import DatabaseWorker

FIRST_RETRY_S = 1.0
LONGEST_RETRY_S = 30.0


class OutboxSender(QObject):
    stored = Signal(object, object)      # Write, Changes
    message = Signal(str)                # something to tell the annotator (status bar)
    dropped = Signal(object, str)        # Write, why: it will never be stored
    health_changed = Signal()            # failing/unsaved counts changed: redraw the banner

    def __init__(self, db: DatabaseWorker, parent: QObject | None = None):
        super().__init__(parent)
        self.db = db
        # Sessions with writes not yet stored: an earlier annotator's keep being sent after a switch.
        self._sessions: list[LabellingSession] = []
        self._failed_rounds = 0     # retry rounds since the last write that was stored
        self.last_error = ""
        self._retry = QTimer(self, singleShot=True, timeout=self.retry_now)

    # -- what the banner shows -------------------------------------------------------------
    @property
    def unsaved(self) -> list[Write]:
        return [w for session in self._sessions for w in session.unsaved]

    @property
    def failing(self) -> bool:
        """Some write failed and waits for its retry."""
        return self._failed_rounds > 0 and bool(self.unsaved)

    def seconds_to_retry(self) -> float | None:
        return self._retry.remainingTime() / 1000 if self._retry.isActive() else None

    # -- sending -------------------------------------------------------------------------
    def send(self, session: LabellingSession) -> None:
        """Send every write of ``session`` not already on its way (after a key press)."""
        if session not in self._sessions:
            self._sessions.append(session)
        if self._retry.isActive():  # the database is failing: wait for the retry, do not pile up failures
            self.health_changed.emit()
            return
        for write in session.writes_to_send():
            write.in_flight = True
            self.db.submit(session.store, write,
                           on_done=lambda changes, s=session, w=write: self._on_stored(s, w, changes),
                           on_failed=lambda exc, s=session, w=write: self._on_failed(s, w, exc))
        self.health_changed.emit()

    def retry_now(self) -> None:
        self._retry.stop()
        for session in list(self._sessions):
            self.send(session)

    def _on_stored(self, session: LabellingSession, write: Write, changes) -> None:
        note = session.stored(write)
        recovered = self._failed_rounds > 0
        self._failed_rounds = 0
        if not session.unsaved and session in self._sessions:
            self._sessions.remove(session)
        if note:
            self.message.emit(note)
        self.stored.emit(write, changes)
        if recovered:  # the database accepts writes again: send the waiting ones now
            self.message.emit("Saved again: the database accepts verdicts")
            self.retry_now()
        self.health_changed.emit()

    def _on_failed(self, session: LabellingSession, write: Write, exc: BaseException) -> None:
        keep = session.store_failed(write, exc)
        self.last_error = write.last_error
        if not keep and not write.cancelled:
            self.dropped.emit(write, write.last_error)
        elif keep:
            if not self._retry.isActive():
                self._failed_rounds += 1
                pause = min(LONGEST_RETRY_S, FIRST_RETRY_S * 2 ** min(self._failed_rounds - 1, 8))
                self._retry.start(int(pause * 1000))
        if not session.unsaved and session in self._sessions:
            self._sessions.remove(session)
        self.health_changed.emit()

    def stop(self) -> None:
        self._retry.stop()
