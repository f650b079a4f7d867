"""The annotation queue: which pair an annotator sees next, recording verdicts, undo.

A pair is *open* while fewer than ``overlap`` distinct annotators have judged it (a skip is
not a judgement; pseudo-annotators of labelled imports count). An annotator is never
served a pair they hold a current verdict on, skips included. Among open pairs the queue
serves those closest to their quota first (most judged, then oldest), so with overlap k a
team finishes pairs instead of spreading thin; the setting ``queue_order`` can put the pairs a
run's adapter is least sure or most wrong about first (storage.pair_scores), the rest following
in that default order. A pair another annotator has reserved (a live
lease, storage.reservations) is taken like a judged one: ``claim`` serves and reserves the
next pairs in one atomic step, ``record`` ends the lease in the verdict's transaction.
Claiming, recording and undoing need a role that labels (storage.members: a viewer is refused).

Speed: ``Pair.judged_count`` is kept in step with the verdicts in the same transaction as
every write, and the index ``(judged_count, id)`` lets ``next_pair`` read open pairs in order
without counting verdicts, so it answers in about a millisecond with 100,000 pairs
(benchmarks/bench_next_pair.py).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Collection

from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from storage.members import Action, check
from storage.models import Choice, Pair, Prompt, Response, Verdict
from storage.pair_scores import SCORED_ORDERS, ScoredRanking
from storage.reservations import (db_now, holds_verdict, lease_seconds, open_among, others_live_leases,
                                  release_leases, renew_leases, reserve)
from storage.settings import read_settings
from storage.verdicts import add_verdict, get_or_create_annotator, retract_last
from storage.workspace import Workspace

@dataclass(frozen=True)
class PairView:
    """What the annotate screen shows for one pair (already laid out left/right)."""

    pair_id: int
    prompt_text: str
    prompt_messages: list[dict] | None
    left_text: str
    right_text: str
    swapped: bool          # True: response b is shown on the left (Pair.display_swapped)
    source: str
    split: str


def choice_for_side(side: str, swapped: bool) -> Choice:
    """The stored choice for a click on ``side`` ("left"/"right") of a pair shown ``swapped``."""
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    left_is_a = not swapped
    return Choice.A if (side == "left") == left_is_a else Choice.B


def load_pair_view(session: Session, pair_id: int) -> PairView:
    response_a, response_b = aliased(Response), aliased(Response)
    row = session.execute(
        select(Pair.id, Pair.display_swapped, Pair.source, Pair.split, Prompt.text, Prompt.messages_json,
               response_a.text, response_b.text)
        .join(Prompt, Prompt.id == Pair.prompt_id)
        .join(response_a, response_a.id == Pair.response_a_id)
        .join(response_b, response_b.id == Pair.response_b_id)
        .where(Pair.id == pair_id)).first()
    if row is None:
        raise LookupError(f"no pair with id {pair_id}")
    pid, swapped, source, split, p_text, p_msgs, a_text, b_text = row
    left, right = (b_text, a_text) if swapped else (a_text, b_text)
    return PairView(pid, p_text, json.loads(p_msgs) if p_msgs else None, left, right, bool(swapped), source, split)


class AnnotationQueue:
    """One annotator's view of the workspace. Holds no session: each call is its own unit of work."""

    def __init__(self, ws: Workspace, annotator_name: str, overlap: int | None = None,
                 comparison_id: int | None = None, order: tuple[str, str | None] | None = None):
        """``comparison_id``: serve the pairs of that blind A/B comparison (storage.comparisons)
        instead of the preference pairs; the two never mix in one queue. ``order``: (queue
        order, run) as the settings ``queue_order`` / ``queue_order_run`` (None: the workspace's);
        a comparison's pairs always come in the default order."""
        self.ws = ws
        self.comparison_id = comparison_id
        if overlap is None or order is None:
            settings = read_settings(ws)
            overlap = settings.overlap if overlap is None else overlap
            order = (settings.queue_order, settings.queue_order_run) if order is None else order
        self.order = order
        self._ranking: ScoredRanking | None = None   # a scored order's ranking, kept a while
        if overlap < 1:
            raise ValueError(f"overlap must be at least 1, got {overlap}")
        self.overlap = overlap
        self.annotator_name = annotator_name.strip()
        with ws.writing() as session:
            self.annotator_id = get_or_create_annotator(session, self.annotator_name)

    def _mine(self):
        """EXISTS: this annotator holds an unretracted verdict on the outer ``Pair``."""
        return holds_verdict(self.annotator_id)

    def _in_queue(self):
        """WHERE: the outer ``Pair`` belongs to this queue (preference pairs, or one comparison's)."""
        if self.comparison_id is None:
            return Pair.comparison_id.is_(None)
        return Pair.comparison_id == self.comparison_id

    def _tiers(self, session: Session, exclude: Collection[int]):
        """The SELECTs to serve from, in turn, as callables ``(now, exclude)``: the pairs a scored
        queue order ranks (storage.pair_scores.ScoredRanking), a chunk at a time, then the open
        pairs nearest their quota first, each count in id order (the default order, and the
        rest of any other)."""
        kind, run_id = self.order
        if kind in SCORED_ORDERS and run_id is not None and self.comparison_id is None:
            if self._ranking is None or self._ranking.key != (kind, run_id, self.overlap):
                self._ranking = ScoredRanking(kind, run_id, self.overlap)
            for chunk in self._ranking.chunks(session, exclude):
                yield lambda now, exclude, chunk=chunk: self._among(chunk, now, exclude)
        for count in range(self.overlap - 1, -1, -1):
            yield lambda now, exclude, count=count: self._open_at(count, now, exclude)

    def _among(self, ranked: list[int], now, exclude: Collection[int]):
        """SELECT of those of the ``ranked`` pair ids (best first) this annotator may take now, in that order."""
        excluded = set(exclude)
        ranked = [pair_id for pair_id in ranked if pair_id not in excluded] or [-1]   # -1: no pair
        return (select(Pair.id)
                .where(Pair.id.in_(ranked), Pair.judged_count < self.overlap, self._in_queue(), ~self._mine(),
                       others_live_leases(self.annotator_id, now) < self.overlap - Pair.judged_count)
                .order_by(case({pair_id: rank for rank, pair_id in enumerate(ranked)}, value=Pair.id)))

    def _open_at(self, count: int, now, exclude: Collection[int]):
        """SELECT of the pairs judged ``count`` times that this annotator may take now (not
        theirs, and with room left beside the others' live leases), in id order. The index
        (judged_count, id) serves the range; the lease test runs per row it passes."""
        query = (select(Pair.id)
                 .where(Pair.judged_count == count, self._in_queue(), ~self._mine(),
                        others_live_leases(self.annotator_id, now) < self.overlap - count)
                 .order_by(Pair.id))
        if exclude:
            query = query.where(Pair.id.not_in(list(exclude)))
        return query

    def next_pair(self, exclude: Collection[int] = ()) -> PairView | None:
        """The next open pair this annotator has not judged (None when there is none); it is
        not reserved (``claim`` is). Pairs others hold leases on count as taken.

        ``exclude``: pair ids to pass over (e.g. the one on screen, pairs skipped this session).
        """
        with self.ws.session() as session:
            now = db_now(session)
            # The order's ranked pairs, then one indexed range per count value, nearest-to-done first.
            for tier in self._tiers(session, exclude):
                pair_id = session.scalar(tier(now, exclude).limit(1))
                if pair_id is not None:
                    return load_pair_view(session, pair_id)
        return None

    def claim(self, n: int, exclude: Collection[int] = (), lease_s: float | None = None) -> list[PairView]:
        """The next ``n`` (or fewer) open pairs, reserved for this annotator for ``lease_s``
        seconds (None: the workspace's lease time), in queue order; one atomic step.

        SQLite: the claim holds the write lock (BEGIN IMMEDIATE), so claims run one at a time.
        PostgreSQL: candidates are locked ``FOR UPDATE SKIP LOCKED`` (another claim's pairs are
        passed over, never waited for) and recounted under the lock (storage.reservations).
        """
        if n <= 0:
            return []
        with self.ws.writing() as session:
            check(session, Action.LABEL, self.annotator_name)   # a viewer holds no pairs
            expiry = dt.timedelta(seconds=lease_seconds(session, lease_s))
            now = db_now(session)
            seen, taken = set(exclude), []
            for tier in self._tiers(session, seen):
                while len(taken) < n:
                    candidates = list(session.scalars(
                        tier(now, seen).limit(n - len(taken))
                        .with_for_update(skip_locked=True, of=Pair)))
                    if not candidates:
                        break
                    seen.update(candidates)
                    still_open = open_among(session, candidates, self.annotator_id, self.overlap, now)
                    taken.extend(pair_id for pair_id in candidates if pair_id in still_open)
            reserve(session, self.annotator_id, taken, now + expiry)
            return [load_pair_view(session, pair_id) for pair_id in taken]

    def renew(self, pair_ids: Collection[int], lease_s: float | None = None) -> frozenset[int]:
        """Extend this annotator's leases on ``pair_ids`` (those on screen and prefetched);
        returns the pairs still theirs (a lapsed lease is taken again while the pair is open)."""
        with self.ws.writing() as session:
            return renew_leases(session, self.annotator_id, pair_ids, self.overlap, lease_s)

    def release(self, pair_ids: Collection[int] | None = None) -> None:
        """End this annotator's leases on ``pair_ids`` (all of theirs when None)."""
        with self.ws.writing() as session:
            release_leases(session, self.annotator_id, pair_ids)

    def pair_view(self, pair_id: int) -> PairView:
        with self.ws.session() as session:
            return load_pair_view(session, pair_id)

    def record(self, pair_id: int, choice: Choice | str, seconds_spent: float = 0.0, note: str = "",
               client_id: str | None = None) -> int:
        """Store a verdict in its own committed transaction, ending this annotator's lease on
        the pair in the same one; returns the verdict id.

        ``client_id`` (``new_client_id()``, made once per verdict by the client): sending the
        same verdict again — a retry after a dropped connection — returns the stored row's id
        and adds nothing. A verdict is stored even when the annotator's lease lapsed and the pair
        went to someone else meanwhile (work is never thrown away); the lease prevents that
        while it lives, and renewing it keeps it alive.
        """
        with self.ws.writing() as session:
            check(session, Action.LABEL, self.annotator_name)
            verdict_id = _verdict_by_client_id(session, client_id, pair_id, self.annotator_id)
            if verdict_id is None:
                try:
                    with session.begin_nested():   # a savepoint: a duplicate id undoes only the insert
                        verdict_id = add_verdict(session, pair_id, self.annotator_id, choice, seconds_spent,
                                                 note, client_id=client_id)
                except IntegrityError:
                    # PostgreSQL: a resend racing its first sending, which committed meanwhile.
                    verdict_id = _verdict_by_client_id(session, client_id, pair_id, self.annotator_id)
                    if verdict_id is None:
                        raise
            release_leases(session, self.annotator_id, [pair_id])
            return verdict_id

    def undo_last(self, verdict_id: int | None = None, reserve_again: bool = False,
                  lease_s: float | None = None) -> int | None:
        """Retract this annotator's newest verdict (or the verdict ``verdict_id`` of theirs, so a
        screen can undo only what it recorded); returns its pair id (None if nothing to undo).

        ``reserve_again``: the pair goes back on this annotator's screen, so it is reserved for
        them in the same transaction (their verdict's place in the overlap passes to the lease
        without the pair ever looking free to others)."""
        with self.ws.writing() as session:
            check(session, Action.LABEL, self.annotator_name)   # retract_last: only their own
            pair_id = retract_last(session, self.annotator_id, verdict_id)
            if pair_id is not None and reserve_again:
                expiry = dt.timedelta(seconds=lease_seconds(session, lease_s))
                reserve(session, self.annotator_id, [pair_id], db_now(session) + expiry)
            return pair_id

    def current_choice(self, pair_id: int) -> Choice | None:
        """This annotator's current verdict on the pair, if any."""
        with self.ws.session() as session:
            return session.scalar(
                select(Verdict.choice).where(Verdict.pair_id == pair_id, Verdict.annotator_id == self.annotator_id,
                                             Verdict.retracted_at.is_(None)).order_by(Verdict.id.desc()).limit(1))

    def done_count(self) -> int:
        """Pairs this annotator holds a current verdict on (skips included)."""
        with self.ws.session() as session:
            return session.scalar(
                select(func.count(func.distinct(Verdict.pair_id)))
                .where(Verdict.annotator_id == self.annotator_id, Verdict.retracted_at.is_(None)))

    def remaining_count(self) -> int:
        """Open pairs this annotator could still be served."""
        with self.ws.session() as session:
            open_pairs = session.scalar(select(func.count()).select_from(Pair)
                                        .where(Pair.judged_count < self.overlap, self._in_queue()))
            open_and_mine = session.scalar(
                select(func.count()).select_from(Pair).where(Pair.judged_count < self.overlap, self._in_queue(),
                                                             self._mine()))
            return open_pairs - open_and_mine


def new_client_id() -> str:
    """A verdict id made on the client: 32 hex digits, unique in practice across computers."""
    return uuid.uuid4().hex


def _verdict_by_client_id(session: Session, client_id: str | None, pair_id: int, annotator_id: int) -> int | None:
    """The stored verdict sent with ``client_id`` (None: none yet). A client id already used for
    another annotator's or another pair's verdict is refused: it is not a resend."""
    if client_id is None:
        return None
    row = session.execute(select(Verdict.id, Verdict.pair_id, Verdict.annotator_id)
                          .where(Verdict.client_id == client_id)).first()
    if row is None:
        return None
    if (row.pair_id, row.annotator_id) != (pair_id, annotator_id):
        raise ValueError(f"client id {client_id} already names verdict #{row.id} on another pair or by "
                         "another annotator")
    return row.id


def claim_pairs(ws: Workspace, annotator_name: str, n: int, lease_s: float | None = None,
                exclude: Collection[int] = ()) -> list[PairView]:
    """``AnnotationQueue.claim`` for a caller holding only a workspace and a name (created on
    first use), with the workspace's overlap."""
    return AnnotationQueue(ws, annotator_name).claim(n, exclude, lease_s)
