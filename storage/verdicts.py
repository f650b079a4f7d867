"""Writing verdicts and reading each annotator's current one.

Verdict rows are never updated in place except for retraction: a changed mind is a new
row and undo sets ``retracted_at``. An annotator's *current* verdict on a pair is their
newest (highest id) row that is not retracted. Every write here also refreshes the pair's
denormalised ``judged_count`` inside the same transaction, so the annotation queue can
find open pairs through an index.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from sqlalchemy import and_, bindparam, exists, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, aliased

from storage.models import Annotator, Choice, Pair, Verdict, utcnow


@dataclass(frozen=True)
class CurrentVerdict:
    verdict_id: int
    pair_id: int
    annotator_id: int
    annotator_name: str
    is_pseudo: bool
    choice: Choice
    is_resolution: bool
    seconds_spent: float = 0.0


def current_verdicts_select(per_kind: bool = False):
    """SELECT of current verdicts (columns of ``Verdict`` plus the annotator's name/pseudo flag).

    A row is current when it is not retracted and no newer unretracted row of the same
    annotator on the same pair exists (the index on (pair_id, annotator_id) serves that test).
    ``per_kind``: labels and resolutions are current separately, so an owner who labelled a
    pair and then resolved it keeps both their label (one side of the dispute) and the
    resolution (how it was settled).
    """
    newer = aliased(Verdict)
    same_kind = [newer.is_resolution == Verdict.is_resolution] if per_kind else []
    newer_exists = exists().where(
        and_(newer.pair_id == Verdict.pair_id, newer.annotator_id == Verdict.annotator_id,
             newer.retracted_at.is_(None), newer.id > Verdict.id, *same_kind))
    return (select(Verdict.id, Verdict.pair_id, Verdict.annotator_id, Annotator.name, Annotator.is_pseudo,
                   Verdict.choice, Verdict.is_resolution, Verdict.seconds_spent)
            .join(Annotator, Annotator.id == Verdict.annotator_id)
            .where(Verdict.retracted_at.is_(None), ~newer_exists))


def current_verdicts(session: Session, pair_ids: list[int] | None = None,
                     per_kind: bool = False) -> list[CurrentVerdict]:
    """Every current verdict (of the given pairs, or of all pairs), ordered by pair then id;
    ``per_kind`` as in ``current_verdicts_select``."""
    query = current_verdicts_select(per_kind).order_by(Verdict.pair_id, Verdict.id)
    rows: list = []
    connection = session.connection()   # Core rows: 100,000 of them read in half the ORM's time
    if pair_ids is None:
        rows = connection.execute(query).all()
    else:
        ids = list(pair_ids)
        for start in range(0, len(ids), 500):  # stay below SQLite's bound-parameter limit
            rows.extend(connection.execute(query.where(Verdict.pair_id.in_(ids[start:start + 500]))).all())
    return [CurrentVerdict(*row) for row in rows]


def lock_pair(session: Session, pair_id: int) -> bool:
    """Lock the pair's row until the transaction ends; False when there is no such pair.

    Every write that recounts a pair takes this lock first, so on PostgreSQL (READ COMMITTED)
    the writers of one pair run one after another and each recount, a statement started after
    the lock was granted, sees every verdict committed before it: a count read from a snapshot
    taken before another writer committed would be too low. ``FOR NO KEY UPDATE`` does not
    block the foreign-key checks of inserts that refer to the pair. SQLite leaves the clause
    out: its writers already run one at a time (``BEGIN IMMEDIATE``).
    """
    return session.scalar(select(Pair.id).where(Pair.id == pair_id).with_for_update(key_share=True)) is not None


def refresh_judged_count(session: Session, pair_id: int) -> None:
    """Recount the distinct annotators whose current verdict on ``pair_id`` is not a skip
    (under the pair's row lock, see ``lock_pair``)."""
    lock_pair(session, pair_id)
    current = current_verdicts_select().where(Verdict.pair_id == pair_id).subquery()
    count = (select(func.count(func.distinct(current.c.annotator_id)))
             .where(current.c.choice != Choice.SKIP).scalar_subquery())
    session.execute(update(Pair).where(Pair.id == pair_id).values(judged_count=count))


def refresh_judged_counts(session: Session, pair_ids: Iterable[int]) -> None:
    """``refresh_judged_count`` for many pairs, locked in id order (two writers of overlapping
    sets never wait on each other in a circle). Set-based, a few statements per 500 pairs: a
    merge of thousands of verdicts must not pay one recount query per pair."""
    ids = sorted(set(pair_ids))
    for start in range(0, len(ids), 500):  # stay below SQLite's bound-parameter limit
        chunk = ids[start:start + 500]
        # Each pair's lock is held before its recount, as in refresh_judged_count.
        session.execute(select(Pair.id).where(Pair.id.in_(chunk)).order_by(Pair.id).with_for_update(key_share=True))
        current = current_verdicts_select().where(Verdict.pair_id.in_(chunk)).subquery()
        counts = dict(session.execute(
            select(current.c.pair_id, func.count(func.distinct(current.c.annotator_id)))
            .where(current.c.choice != Choice.SKIP).group_by(current.c.pair_id)).all())
        session.execute(update(Pair.__table__).where(Pair.__table__.c.id == bindparam("pair_id"))
                        .values(judged_count=bindparam("count")),
                        [{"pair_id": pid, "count": counts.get(pid, 0)} for pid in chunk])


def add_verdict(session: Session, pair_id: int, annotator_id: int, choice: Choice | str,
                seconds_spent: float = 0.0, note: str = "", is_resolution: bool = False,
                client_id: str | None = None) -> int:
    """Insert one verdict and refresh the pair's count; the caller's transaction commits it.
    ``client_id``: the id the client made for it (unique; see storage.annotation_queue.record)."""
    choice = Choice(choice)
    if not lock_pair(session, pair_id):  # locked before the insert: see lock_pair
        raise LookupError(f"no pair with id {pair_id}")
    if seconds_spent < 0:
        raise ValueError(f"seconds_spent must be >= 0, got {seconds_spent}")
    verdict = Verdict(pair_id=pair_id, annotator_id=annotator_id, choice=choice,
                      seconds_spent=float(seconds_spent), note=note, is_resolution=is_resolution,
                      client_id=client_id)
    session.add(verdict)
    session.flush()
    refresh_judged_count(session, pair_id)
    return verdict.id


def retract_last(session: Session, annotator_id: int, verdict_id: int | None = None) -> int | None:
    """Retract the annotator's newest unretracted verdict — or, given ``verdict_id``, that one
    verdict of theirs if it is still current; returns its pair id (None if nothing to retract)."""
    query = select(Verdict.id, Verdict.pair_id).where(Verdict.annotator_id == annotator_id,
                                                      Verdict.retracted_at.is_(None))
    if verdict_id is not None:
        newer = aliased(Verdict)
        query = query.where(Verdict.id == verdict_id, ~exists().where(  # still the current one on its pair
            newer.pair_id == Verdict.pair_id, newer.annotator_id == annotator_id,
            newer.retracted_at.is_(None), newer.id > Verdict.id))
    query = query.order_by(Verdict.id.desc()).limit(1)
    found = session.execute(query).first()
    while found is not None:
        lock_pair(session, found.pair_id)
        # Read again under the lock: on PostgreSQL the same annotator on another computer may
        # have changed their verdicts while this transaction waited for it.
        again = session.execute(query).first()
        if again == found:
            break
        found = again
    if found is None:
        return None
    session.execute(update(Verdict).where(Verdict.id == found.id).values(retracted_at=utcnow()))
    refresh_judged_count(session, found.pair_id)
    return found.pair_id


def get_or_create_annotator(session: Session, name: str, is_pseudo: bool = False) -> int:
    """The id of the annotator called ``name``, creating it on first use (two processes doing
    so at once get the same row: the insert does nothing when the name already exists)."""
    name = name.strip()
    if not name:
        raise ValueError("an annotator needs a non-empty name")
    found = session.scalar(select(Annotator.id).where(Annotator.name == name))
    if found is not None:
        return found
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(Annotator).values(name=name, is_pseudo=is_pseudo, created_at=utcnow())
                    .on_conflict_do_nothing(index_elements=["name"]))
    return session.scalar(select(Annotator.id).where(Annotator.name == name))
