"""Pair reservations (leases): a pair on an annotator's screen, or in their prefetch, is theirs
until its lease expires.

With overlap k a pair is *taken* by the distinct annotators holding a current non-skip
verdict on it (``Pair.judged_count``) plus the other annotators holding a live lease on it;
the queue serves a pair only while it is taken fewer than k times, so k people never hold or
judge it at once. A lease is renewed while the pair stays on screen and released on a
verdict (in the verdict's own transaction), a skip, an undo or when the sitting closes; an
annotator who vanishes simply stops renewing and the pair returns to the queue when the lease
expires. Expired rows are ignored everywhere and replaced by the next claim of their
annotator, so nothing has to sweep them.

Claiming is one atomic step (``storage.annotation_queue.AnnotationQueue.claim``): on SQLite
the whole claim runs under ``ws.writing()`` (BEGIN IMMEDIATE: one claimer at a time); on
PostgreSQL the candidate pairs are locked with ``FOR UPDATE SKIP LOCKED`` and recounted after
the lock (``open_among``), because the first look used a snapshot taken before the lock.
Every write that changes what a pair is taken by (a verdict, a lease) holds that pair's row
lock, so the recount sees everything committed before it and nothing can change it until the
claim commits.

Times are UTC and naive like every timestamp of the schema. On PostgreSQL "now" is the
server's clock, so the computers of a team need not agree on the time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Collection, Iterable

from sqlalchemy import and_, delete, exists, func, insert, select, update
from sqlalchemy.orm import Session

from storage.models import Annotator, Pair, Reservation, Verdict, utcnow
from storage.settings import settings_in
from storage.workspace import Workspace

_CHUNK = 500   # ids per IN (...) list: below SQLite's bound-parameter limit


@dataclass(frozen=True)
class Lease:
    """A live reservation, for "who is labelling now"."""

    pair_id: int
    annotator_name: str
    expires_at: dt.datetime
    seconds_left: float


def db_now(session: Session) -> dt.datetime:
    """The current UTC time as the database sees it (the server's clock on PostgreSQL; the
    time of this call, not of the transaction's start, so it is read after any lock wait)."""
    if session.get_bind().dialect.name == "postgresql":
        return session.scalar(select(func.timezone("UTC", func.clock_timestamp())))
    return utcnow()


def lease_seconds(session: Session, lease_s: float | None) -> float:
    """``lease_s``, or the workspace's ``lease_minutes`` setting when None."""
    seconds = settings_in(session).lease_minutes * 60.0 if lease_s is None else float(lease_s)
    if seconds <= 0:
        raise ValueError(f"a lease must last more than 0 seconds, got {seconds}")
    return seconds


def others_live_leases(annotator_id: int, now: dt.datetime):
    """Scalar subquery correlated to the outer ``Pair``: live leases of other annotators on it."""
    return (select(func.count()).select_from(Reservation)
            .where(Reservation.pair_id == Pair.id, Reservation.annotator_id != annotator_id,
                   Reservation.expires_at > now)
            .scalar_subquery())


def holds_verdict(annotator_id: int):
    """EXISTS: the annotator holds an unretracted verdict (skips included) on the outer ``Pair``."""
    return exists().where(and_(Verdict.pair_id == Pair.id, Verdict.annotator_id == annotator_id,
                               Verdict.retracted_at.is_(None)))


def open_among(session: Session, pair_ids: Collection[int], annotator_id: int, overlap: int,
               now: dt.datetime) -> set[int]:
    """Those of ``pair_ids`` the annotator may take now: taken fewer than ``overlap`` times
    by others and not already judged (or skipped) by them. Read in a fresh statement, so on
    PostgreSQL it sees every commit made before the caller locked the pairs."""
    found: set[int] = set()
    ids = list(pair_ids)
    for start in range(0, len(ids), _CHUNK):
        found.update(session.scalars(
            select(Pair.id).where(Pair.id.in_(ids[start:start + _CHUNK]),
                                  Pair.judged_count + others_live_leases(annotator_id, now) < overlap,
                                  ~holds_verdict(annotator_id))))
    return found


def lock_pairs(session: Session, pair_ids: Iterable[int], skip_locked: bool) -> list[int]:
    """Lock the pairs' rows until the transaction ends (PostgreSQL; a no-op on SQLite, where
    ``ws.writing()`` already holds the write lock). ``skip_locked``: pass over pairs another
    claim holds instead of waiting. Returns the ids locked, ascending."""
    ids = sorted(set(pair_ids))
    if session.get_bind().dialect.name != "postgresql":
        return ids
    locked: list[int] = []
    for start in range(0, len(ids), _CHUNK):
        locked.extend(session.scalars(
            select(Pair.id).where(Pair.id.in_(ids[start:start + _CHUNK])).order_by(Pair.id)
            .with_for_update(skip_locked=skip_locked, of=Pair)))
    return locked


def reserve(session: Session, annotator_id: int, pair_ids: Collection[int], expires_at: dt.datetime) -> None:
    """Give the annotator a lease on each pair until ``expires_at`` (replacing any of theirs).
    The caller has checked the pairs are open and holds their locks."""
    ids = list(pair_ids)
    if not ids:
        return
    release_leases(session, annotator_id, ids)
    now = utcnow()
    session.execute(insert(Reservation), [
        {"pair_id": pair_id, "annotator_id": annotator_id, "expires_at": expires_at, "created_at": now}
        for pair_id in ids])


def release_leases(session: Session, annotator_id: int, pair_ids: Collection[int] | None = None) -> None:
    """End the annotator's leases on ``pair_ids`` (all of their leases when None)."""
    if pair_ids is None:
        session.execute(delete(Reservation).where(Reservation.annotator_id == annotator_id))
        return
    ids = list(pair_ids)
    for start in range(0, len(ids), _CHUNK):
        session.execute(delete(Reservation).where(Reservation.annotator_id == annotator_id,
                                                  Reservation.pair_id.in_(ids[start:start + _CHUNK])))


def renew_leases(session: Session, annotator_id: int, pair_ids: Collection[int], overlap: int,
                 lease_s: float | None = None) -> frozenset[int]:
    """Extend the annotator's live leases on ``pair_ids``; a lease that expired is taken again
    if the pair is still open to them. Returns the pairs they now hold (the others went to
    someone else meanwhile: take them off the screen, or at least out of the prefetch)."""
    ids = set(pair_ids)
    if not ids:
        return frozenset()
    seconds = lease_seconds(session, lease_s)
    # Lock first, read the clock after: a claim that saw one of these leases expired has
    # committed by now, and this renewal then sees it expired too (and the pair taken).
    id_list = lock_pairs(session, ids, skip_locked=False)
    now = db_now(session)
    expires_at = now + dt.timedelta(seconds=seconds)
    held: set[int] = set()
    for start in range(0, len(id_list), _CHUNK):
        chunk = id_list[start:start + _CHUNK]
        held.update(session.scalars(
            update(Reservation)
            .where(Reservation.annotator_id == annotator_id, Reservation.pair_id.in_(chunk),
                   Reservation.expires_at > now)
            .values(expires_at=expires_at).returning(Reservation.pair_id)))
    retaken = open_among(session, ids - held, annotator_id, overlap, now)
    reserve(session, annotator_id, retaken, expires_at)
    return frozenset(held | retaken)


# -- one call, one transaction (for callers holding a workspace, not a session) -------------
def _annotator_id(session: Session, annotator_name: str) -> int | None:
    return session.scalar(select(Annotator.id).where(Annotator.name == annotator_name.strip()))


def renew(ws: Workspace, annotator_name: str, pair_ids: Collection[int],
          lease_s: float | None = None) -> frozenset[int]:
    """``renew_leases`` in its own transaction, with the workspace's overlap."""
    with ws.writing() as session:
        annotator_id = _annotator_id(session, annotator_name)
        if annotator_id is None:
            return frozenset()
        return renew_leases(session, annotator_id, pair_ids, settings_in(session).overlap, lease_s)


def release(ws: Workspace, annotator_name: str, pair_ids: Collection[int] | None = None) -> None:
    """End the annotator's leases on ``pair_ids`` (all of theirs when None): the pairs left
    their screen without a verdict (skipped in the prefetch, the sitting closed)."""
    with ws.writing() as session:
        annotator_id = _annotator_id(session, annotator_name)
        if annotator_id is not None:
            release_leases(session, annotator_id, pair_ids)


def live_leases(ws: Workspace) -> list[Lease]:
    """Every live lease, by annotator then pair: who is labelling now, and what they hold."""
    with ws.session() as session:
        now = db_now(session)
        rows = session.execute(
            select(Reservation.pair_id, Annotator.name, Reservation.expires_at)
            .join(Annotator, Annotator.id == Reservation.annotator_id)
            .where(Reservation.expires_at > now).order_by(Annotator.name, Reservation.pair_id)).all()
    return [Lease(pair_id, name, expires, (expires - now).total_seconds()) for pair_id, name, expires in rows]
