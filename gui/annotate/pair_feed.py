"""Keeps the labelling screen supplied with pairs, and those pairs reserved.

``PairFeed`` does the session's database work that is about pairs, through the database
worker: fetching (and topping up) the pairs ahead, renewing their leases every
``RENEW_EVERY_MS`` (the session says when a renewal is due: a third of the lease time),
handing them back when the sitting ends, and — while the screen says "nothing left" — asking
the queue again now and then (others' leases lapse, pairs get imported). A failure that says
the server is away is passed to the ``OutboxSender`` (which goes offline); any answer tells it
the server is back. Which pairs and when is the session's rule (``core.operations.labelling``).
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal

from core.operations.labelling import FetchRequest, LabellingSession
from gui.annotate.outbox_sender import OutboxSender
from gui.common.db_worker import DatabaseWorker
from storage.annotation_queue import PairView

RENEW_EVERY_MS = 30_000
REFETCH_AFTER_FAILURE_MS = 2_000
LOOK_AGAIN_MS = 20_000     # "nothing left": ask the queue again this often


class PairFeed(QObject):
    current_changed = Signal()     # a pair came on screen (render it)
    fetched = Signal()             # a fetch started or ended (redraw loading / nothing left)
    status_message = Signal(str)

    def __init__(self, db: DatabaseWorker, sender: OutboxSender, parent: QObject | None = None):
        super().__init__(parent)
        self.db = db
        self.sender = sender
        self.session: LabellingSession | None = None
        self._refetch = QTimer(self, singleShot=True, interval=REFETCH_AFTER_FAILURE_MS, timeout=self.fetch)
        self._renew = QTimer(self, interval=RENEW_EVERY_MS, timeout=self.renew)
        self._look_again = QTimer(self, singleShot=True, interval=LOOK_AGAIN_MS, timeout=self._ask_again)

    def attach(self, session: LabellingSession) -> None:
        """Feed ``session`` from now on (the previous one's pairs are handed back)."""
        self.detach()
        self.session = session
        session.take_renewal()   # starts the session's renewal clock: its leases are taken now
        self._renew.start()
        self.fetch()

    def detach(self) -> None:
        """The sitting ends: hand its pairs back (unless the server is away: they lapse)."""
        session, self.session = self.session, None
        self._look_again.stop()
        self._refetch.stop()
        if session is None:
            return
        pairs = session.close()
        if pairs and not self.sender.offline:
            try:
                self.db.submit(session.release_pairs, pairs, on_failed=self.sender.saw_failure)
            except RuntimeError:   # the database thread already ended: the leases lapse by themselves
                pass

    # -- fetching ------------------------------------------------------------------------
    def fetch(self) -> None:
        session = self.session
        request = session.take_fetch() if session is not None else None
        if request is not None:
            self.db.submit(session.fetch_pairs, request,
                           on_done=lambda pairs: self._received(session, request, pairs),
                           on_failed=lambda exc: self._fetch_failed(session, exc))
        self.fetched.emit()

    def _received(self, session: LabellingSession, request: FetchRequest, pairs: list[PairView]) -> None:
        self.sender.saw_answer()
        if session is not self.session:
            return
        if session.receive_pairs(request, pairs):
            self.current_changed.emit()
        self.fetch()   # top up (or fetch again after an answer that came too late)

    def _fetch_failed(self, session: LabellingSession, exc: BaseException) -> None:
        session.fetch_failed()
        if session is not self.session:
            return
        if not self.sender.saw_failure(exc):
            self.status_message.emit(f"Could not read the next pairs ({exc.__class__.__name__}); trying again")
        self._refetch.start()
        self.fetched.emit()

    def showing_nothing_left(self) -> None:
        """The screen says "nothing left": look again in a while."""
        if not self._look_again.isActive():
            self._look_again.start()

    def _ask_again(self) -> None:
        if self.session is not None and self.session.current is None:
            self.session.look_again()
            self.fetch()

    # -- leases --------------------------------------------------------------------------
    def renew(self) -> None:
        """Renew the leases of the pairs held, when the session says it is due."""
        session = self.session
        ids = session.take_renewal() if session is not None and not self.sender.offline else None
        if not ids:
            return
        self.db.submit(session.renew_leases, ids, on_done=lambda held: self._renewed(session, ids, held),
                       on_failed=self.sender.saw_failure)

    def _renewed(self, session: LabellingSession, ids: tuple[int, ...], held: frozenset[int]) -> None:
        self.sender.saw_answer()
        on_screen = session.current.pair_id if session.current is not None else None
        lost = session.renewed(ids, held)
        if session is not self.session or not lost:
            return
        if on_screen in lost:
            self.status_message.emit(
                f"Pair #{on_screen} is no longer reserved for you (its reservation lapsed and someone else "
                "took it); your verdict on it is still stored if you give one")
        self.fetch()   # refill what was dropped from ahead

    def stop(self) -> None:
        for timer in (self._refetch, self._renew, self._look_again):
            timer.stop()
