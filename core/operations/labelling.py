"""Labelling: one annotator's sitting at the queue, as plain Python shared by the GUI and the CLI.

``LabellingSession`` holds what the sitting knows and the database does not (yet): the pair
on screen and a few prefetched ones, this sitting's verdicts (the undo stack, with their
notes), the note typed for each pair, the writes not yet stored (the outbox) and the pace.
Which pair comes next, overlap and the stored rows are ``storage.annotation_queue``'s job.

Two kinds of methods, so a GUI can keep the database off its UI thread:

- **state** (``judge``, ``undo``, ``receive_pairs``, ``stored``, ``store_failed``, ``take_fetch``…):
  instant, no database; call them on one thread (the GUI's UI thread);
- **database work** (``open``, ``fetch_pairs``, ``store``, ``counts``): touch only the
  workspace and the plain values passed in, never the session's state, so they run on a
  database thread; their result is handed back to a state method.

    session = LabellingSession.open(ws, "ada")            # database
    session.receive_pairs(session.fetch_pairs(*session.take_fetch()))
    write = session.judge(Choice.TIE)                       # the next pair is current at once
    changes = session.store(write); session.stored(write)   # database, then state

``record`` and ``undo_now`` do both halves at once for callers without threads (CLI, tests).

Rules kept here (not in a screen): undo retracts exactly what this sitting recorded, never a
later change made elsewhere; a verdict not yet stored is undone by not storing it; a pair
with a write in the outbox is never served again meanwhile; a note belongs to the pair it
was typed for.

Reservations (storage.reservations): each pair held, on screen or ahead, is leased to this
annotator. ``fetch_pairs`` claims what it fetches (after ending the leases of pairs dropped since);
a stored verdict ends its lease, a stored undo keeps the pair reserved. ``take_renewal`` /
``renew_leases`` / ``renewed`` keep leases alive (a screen calls them from a timer); ``close`` /
``release_pairs`` hand the pairs back. A verdict's client id makes a resend harmless.

The writes themselves (``Write``) and what keeps them on this computer while a team server
cannot be reached (the outbox file) are ``core.operations.outbox``'s. A screen on a team server
keeps ``held_ahead(ws)`` pairs reserved ahead, so labelling goes on through an outage.
"""

from __future__ import annotations

import copy
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from core.operations.changes import Changes
from core.operations.outbox import (CHOICE_WORDS, PermanentWriteError, Write, WriteKind, describe_error,
                                    is_unreachable, resend_for_row)
from storage.annotation_queue import AnnotationQueue, PairView
from storage.annotator_session import MAX_GAP_S, SessionPace, pair_count
from storage.models import Choice
from storage.settings import read_settings
from storage.workspace import Workspace

PREFETCH = 8          # pairs kept ready behind the one on screen (a burst of keys never waits)
# On a team server the screen keeps more pairs reserved ahead, so that labelling goes on through
# an outage of the server (the offline outbox keeps the verdicts meanwhile).
SERVER_PREFETCH = 40

__all__ = ["LabellingSession", "QueueCounts", "FetchRequest", "UndoOutcome", "PREFETCH", "SERVER_PREFETCH",
           "held_ahead", "Write", "WriteKind", "PermanentWriteError", "CHOICE_WORDS"]


def held_ahead(ws: Workspace) -> int:
    """How many pairs a screen keeps reserved behind the one shown: more on a team server."""
    return SERVER_PREFETCH if ws.is_server else PREFETCH


@dataclass(frozen=True)
class QueueCounts:
    remaining: int      # open pairs this annotator could still be served
    total_pairs: int    # every pair of the workspace (0: a new, empty workspace)


@dataclass(frozen=True)
class FetchRequest:
    exclude: tuple[int, ...]    # pairs held by the session (on screen, ready, judged this sitting)
    count: int
    generation: int             # answers to an older generation are dropped
    release: tuple[int, ...] = ()   # pairs the sitting dropped: end their leases first


@dataclass(frozen=True)
class UndoOutcome:
    pair: PairView | None        # what is now on screen (the undone verdict's pair)
    write: Write | None          # the retraction to store (None: nothing stored needs taking back)
    message: str


@dataclass
class LabellingSession:
    queue: AnnotationQueue
    pace: SessionPace = field(default_factory=SessionPace)
    clock: Callable[[], float] = time.monotonic
    current: PairView | None = None
    exhausted: bool = False      # the last fetch found no more open pairs
    ahead: deque = field(default_factory=deque)
    undo_stack: list[Write] = field(default_factory=list)
    outbox: list[Write] = field(default_factory=list)
    _drafts: dict[int, str] = field(default_factory=dict)
    _fetching: bool = False
    _generation: int = 0
    _shown_at: float = 0.0
    lease_s: float | None = None     # None: the workspace's lease time
    _to_release: set = field(default_factory=set)
    _renewed_at: float | None = None
    prefetch: int = PREFETCH         # pairs kept ready behind the one on screen (``held_ahead``)

    # -- database work ------------------------------------------------------------------
    @classmethod
    def open(cls, ws: Workspace, annotator_name: str, target: int = 100,
             clock: Callable[[], float] = time.monotonic, prefetch: int = PREFETCH,
             comparison_id: int | None = None) -> "LabellingSession":
        """Start labelling as ``annotator_name`` (created on first use). Database work.
        ``comparison_id``: judge that blind A/B comparison's pairs instead (core.operations.blind)."""
        settings = read_settings(ws)
        queue = AnnotationQueue(ws, annotator_name, settings.overlap, comparison_id=comparison_id,
                                order=(settings.queue_order, settings.queue_order_run))
        return cls(queue, pace=SessionPace(target=target, clock=clock), clock=clock,
                   lease_s=settings.lease_minutes * 60.0, prefetch=prefetch)

    @property
    def annotator_name(self) -> str:
        return self.queue.annotator_name

    @property
    def overlap(self) -> int:
        return self.queue.overlap

    def set_overlap(self, overlap: int, order: tuple[str, str | None] | None = None) -> None:
        """The workspace's overlap (or queue order, storage.pair_scores) changed: serve by the new
        ones from the next fetch on."""
        order = self.queue.order if order is None else order
        if overlap != self.queue.overlap or order != self.queue.order:
            queue = copy.copy(self.queue)   # the queue holds no session: a copy is a new view
            queue.overlap, queue.order = overlap, order
            self.queue = queue
            self.forget_ahead()

    def fetch_pairs(self, request: "FetchRequest") -> list[PairView]:
        """Up to ``request.count`` open pairs, none of ``request.exclude``, in queue order, claimed
        (leased) for this annotator in one step. Database work."""
        if request.release:
            self.queue.release(request.release)
        return self.queue.claim(request.count, request.exclude, self.lease_s)

    def renew_leases(self, pair_ids: tuple[int, ...]) -> frozenset[int]:
        """Extend the leases of the pairs held (``take_renewal``); returns those still ours. Database work."""
        return self.queue.renew(pair_ids, self.lease_s)

    def release_pairs(self, pair_ids: tuple[int, ...]) -> None:
        """End the leases of ``pair_ids`` (``close``). Database work."""
        self.queue.release(pair_ids)

    def store(self, write: Write) -> Changes:
        """Store one write in its own committed transaction. Database work: it touches only
        ``write`` (the database thread runs writes one after another, in the order sent)."""
        queue = self.queue
        if write.kind is WriteKind.VERDICT:
            if write.verdict_id is None:
                try:
                    write.verdict_id = queue.record(write.pair_id, write.choice, write.seconds_spent, write.note,
                                                    client_id=write.client_id)
                except LookupError as exc:   # the pair was deleted meanwhile
                    raise PermanentWriteError(str(exc)) from exc
        else:
            target = write.retracts
            verdict_id = target.verdict_id if target is not None else None
            if verdict_id is None and target is not None and target.maybe_stored:
                # Its store was cut off by a lost connection: it may be stored; find out by its id.
                verdict_id = target.verdict_id = resend_for_row(queue, target.pair_id, target.choice,
                                                                target.seconds_spent, target.note, target.client_id)
            # None: the verdict never reached the database (its store failed): nothing to take back.
            # The undone pair is back on screen: it stays reserved for this annotator.
            write.retracted_pair = (queue.undo_last(verdict_id, reserve_again=True, lease_s=self.lease_s)
                                    if verdict_id is not None else None)
        return Changes(verdicts=True, pair_ids=frozenset({write.pair_id}))

    def counts(self) -> QueueCounts:
        """Database work."""
        return QueueCounts(self.queue.remaining_count(), pair_count(self.queue.ws))

    # -- the pairs ----------------------------------------------------------------------
    def _held(self) -> set[int]:
        """Pairs not to serve now: on screen, ready, or with a verdict of this sitting."""
        held = {v.pair_id for v in self.ahead}
        held.update(w.pair_id for w in self.undo_stack)
        held.update(w.pair_id for w in self.outbox if w.kind is WriteKind.VERDICT and not w.cancelled)
        if self.current is not None:
            held.add(self.current.pair_id)
        return held

    def take_fetch(self) -> "FetchRequest | None":
        """What to fetch (answer with ``fetch_pairs``, then ``receive_pairs``) when more pairs
        are needed, none is being fetched and the queue is not known to be empty."""
        wanted = self.prefetch + (self.current is None) - len(self.ahead)
        if self._fetching or wanted <= 0 or self.exhausted:
            return None
        self._fetching = True
        return FetchRequest(tuple(sorted(self._held())), wanted, self._generation, tuple(sorted(self._to_release)))

    def receive_pairs(self, request: "FetchRequest", pairs: list[PairView]) -> bool:
        """Take the fetched pairs; True when the pair on screen changed. The answer to a fetch
        made before ``forget_ahead`` is dropped (fetch again)."""
        self._fetching = False
        self._to_release.difference_update(request.release)
        held = self._held()
        if request.generation != self._generation:
            self._to_release.update(p.pair_id for p in pairs if p.pair_id not in held)
            return False
        self.exhausted = len(pairs) < request.count
        self.ahead.extend(p for p in pairs if p.pair_id not in held)
        if self.current is None and self.ahead:
            self._show(self.ahead.popleft())
            return True
        return False

    @property
    def fetching(self) -> bool:
        """A fetch is under way (a screen without a pair shows "loading", not "nothing left")."""
        return self._fetching

    def fetch_failed(self) -> None:
        self._fetching = False

    def look_again(self) -> None:
        """The queue was found empty a while ago: ask it again at the next fetch (others' leases
        may have lapsed, pairs may have been imported)."""
        self.exhausted = False

    def forget_ahead(self) -> None:
        """Drop the prefetched pairs (the queue changed elsewhere: import, overlap, Pairs tab);
        the next fetch ends their leases."""
        self._to_release.update(v.pair_id for v in self.ahead)
        self.ahead.clear()
        self.exhausted = False
        self._generation += 1

    def _show(self, view: PairView | None) -> None:
        self.current = view
        self._shown_at = self.clock()

    # -- reservations -------------------------------------------------------------------
    def _leased(self) -> tuple[int, ...]:
        return tuple(sorted({v.pair_id for v in self.ahead} | ({self.current.pair_id} if self.current else set())))

    def take_renewal(self) -> tuple[int, ...] | None:
        """The pairs whose leases to renew now (answer with ``renew_leases``, then ``renewed``),
        or None when not due: a third of the lease time after the last renewal."""
        now, interval = self.clock(), (self.lease_s or 600.0) / 3
        if self._renewed_at is None:
            self._renewed_at = now        # the leases were taken with the first fetch
        if now - self._renewed_at < interval or not self._leased():
            return None
        self._renewed_at = now
        return self._leased()

    def renewed(self, pair_ids: tuple[int, ...], held: frozenset[int]) -> set[int]:
        """Take the renewal's answer: prefetched pairs no longer ours are dropped. Returns the
        pairs lost (the one on screen among them: its verdict is still stored if given)."""
        lost = set(pair_ids) - held
        self.ahead = deque(v for v in self.ahead if v.pair_id not in lost)
        return lost

    def close(self) -> tuple[int, ...]:
        """The sitting ends: the pairs to hand back (answer with ``release_pairs``)."""
        pairs = tuple(sorted(set(self._leased()) | self._to_release))
        self.ahead.clear()
        self._to_release.clear()
        self._show(None)
        return pairs

    # -- notes --------------------------------------------------------------------------
    def draft(self, pair_id: int) -> str:
        """The note typed for this pair and not yet saved."""
        return self._drafts.get(pair_id, "")

    def set_draft(self, pair_id: int, text: str) -> None:
        if text:
            self._drafts[pair_id] = text
        else:
            self._drafts.pop(pair_id, None)

    # -- verdicts -----------------------------------------------------------------------
    def judge(self, choice: Choice | str, note: str | None = None) -> Write:
        """Record ``choice`` for the pair on screen and show the next one at once. Returns the
        write to store (it stays in ``outbox`` until ``stored``). ``note`` None: the draft."""
        view = self.current
        if view is None:
            raise LookupError("no pair on screen to judge")
        if note is None:
            note = self.draft(view.pair_id)
        self._drafts.pop(view.pair_id, None)
        seconds = min(max(0.0, self.clock() - self._shown_at), MAX_GAP_S)
        write = Write(WriteKind.VERDICT, view, Choice(choice), note.strip(), seconds)
        self.undo_stack.append(write)
        self.outbox.append(write)
        self.pace.record()
        self.current = None   # judged: not released, the verdict ends its reservation
        self._show(self.ahead.popleft() if self.ahead else None)
        return write

    def undo(self) -> UndoOutcome:
        """Take back this sitting's newest verdict and put its pair back on screen (its note in
        the draft). A verdict still in the outbox is simply not stored; a stored one gets a
        retraction to store, which takes back that very row only if it is still current."""
        if not self.undo_stack:
            return UndoOutcome(None, None, "Nothing to undo in this session")
        undone = self.undo_stack.pop()
        self.pace.undo()
        if self.current is not None:
            self.ahead.appendleft(self.current)   # served again right after the undone pair
        self._show(undone.pair)
        if undone.note:
            self._drafts[undone.pair_id] = undone.note
        message = f"Undone: your verdict on pair #{undone.pair_id}"
        if undone in self.outbox and not undone.in_flight:
            self.outbox.remove(undone)            # never sent again
            if not undone.maybe_stored:           # never reached the database: nothing to retract
                return UndoOutcome(undone.pair, None, message)
        undone.cancelled = True                   # if its store fails now, do not retry it
        retract = Write(WriteKind.RETRACT, undone.pair, retracts=undone)
        self.outbox.append(retract)
        return UndoOutcome(undone.pair, retract, message)

    def stored(self, write: Write) -> str | None:
        """The write reached the database. Returns a message when it had nothing to take back."""
        write.in_flight = False
        if write in self.outbox:
            self.outbox.remove(write)
        if write.kind is WriteKind.RETRACT and write.retracted_pair is None and write.retracts.verdict_id is not None:
            return f"Your verdict on pair #{write.pair_id} was already changed elsewhere; nothing undone there"
        return None

    def store_failed(self, write: Write, error: BaseException) -> bool:
        """The write could not be stored. True: keep it and retry; False: it is dropped
        (undone meanwhile, or it can never succeed — its pair is gone)."""
        write.in_flight = False
        write.attempts += 1
        write.last_error = describe_error(error)
        write.maybe_stored = write.maybe_stored or is_unreachable(error)
        permanent = isinstance(error, PermanentWriteError)
        if write.cancelled or permanent:
            if write in self.outbox:
                self.outbox.remove(write)
            if permanent and write in self.undo_stack:
                self.undo_stack.remove(write)
                self.pace.undo()
            return False
        return True

    def writes_to_send(self) -> list[Write]:
        """The outbox's writes not on their way to the database, oldest first."""
        return [w for w in self.outbox if not w.in_flight]

    @property
    def unsaved(self) -> list[Write]:
        """Writes not yet stored (in flight or waiting for a retry)."""
        return list(self.outbox)

    # -- without threads (CLI, tests) ----------------------------------------------------
    def _store_now(self, write: Write) -> Changes:
        write.in_flight = True
        try:
            changes = self.store(write)
        except Exception as exc:
            self.store_failed(write, exc)
            raise
        self.stored(write)
        return changes

    def fill(self) -> None:
        """Fetch pairs until the session has a pair on screen and its prefetch (no threads)."""
        request = self.take_fetch()
        if request is not None:
            self.receive_pairs(request, self.fetch_pairs(request))
        renewal = self.take_renewal()
        if renewal is not None:
            self.renewed(renewal, self.renew_leases(renewal))

    def record(self, choice: Choice | str, note: str | None = None) -> Changes:
        """Judge the pair on screen and store the verdict now; the next pair is current."""
        changes = self._store_now(self.judge(choice, note))
        self.fill()
        return changes

    def undo_now(self) -> Changes:
        outcome = self.undo()
        return self._store_now(outcome.write) if outcome.write is not None else Changes()
