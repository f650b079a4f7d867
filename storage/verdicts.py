"""Writing verdicts and reading each annotator's current one.

Verdict rows are never updated in place except for retraction: a changed mind is a new
row and undo sets ``retracted_at``. An annotator's *current* verdict on a pair is their
newest (highest id) row that is not retracted. Every write here also refreshes the pair's
denormalised ``judged_count`` inside the same transaction, so the annotation queue can
find open pairs through an index.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, exists, func, select, update
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
                   Verdict.choice, Verdict.is_resolution)
            .join(Annotator, Annotator.id == Verdict.annotator_id)
            .where(Verdict.retracted_at.is_(None), ~newer_exists))


def current_verdicts(session: Session, pair_ids: list[int] | None = None,
                     per_kind: bool = False) -> list[CurrentVerdict]:
    """Every current verdict (of the given pairs, or of all pairs), ordered by pair then id;
    ``per_kind`` as in ``current_verdicts_select``."""
    query = current_verdicts_select(per_kind).order_by(Verdict.pair_id, Verdict.id)
    rows: list = []
    if pair_ids is None:
        rows = session.execute(query).all()
    else:
        ids = list(pair_ids)
        for start in range(0, len(ids), 500):  # stay below SQLite's bound-parameter limit
            rows.extend(session.execute(query.where(Verdict.pair_id.in_(ids[start:start + 500]))).all())
    return [CurrentVerdict(*row) for row in rows]


def refresh_judged_count(session: Session, pair_id: int) -> None:
    """Recount the distinct annotators whose current verdict on ``pair_id`` is not a skip."""
    current = current_verdicts_select().where(Verdict.pair_id == pair_id).subquery()
    count = (select(func.count(func.distinct(current.c.annotator_id)))
             .where(current.c.choice != Choice.SKIP).scalar_subquery())
    session.execute(update(Pair).where(Pair.id == pair_id).values(judged_count=count))


def add_verdict(session: Session, pair_id: int, annotator_id: int, choice: Choice | str,
                seconds_spent: float = 0.0, note: str = "", is_resolution: bool = False) -> int:
    """Insert one verdict and refresh the pair's count; the caller's transaction commits it."""
    choice = Choice(choice)
    if session.get(Pair, pair_id) is None:
        raise LookupError(f"no pair with id {pair_id}")
    if seconds_spent < 0:
        raise ValueError(f"seconds_spent must be >= 0, got {seconds_spent}")
    verdict = Verdict(pair_id=pair_id, annotator_id=annotator_id, choice=choice,
                      seconds_spent=float(seconds_spent), note=note, is_resolution=is_resolution)
    session.add(verdict)
    session.flush()
    refresh_judged_count(session, pair_id)
    return verdict.id


def retract_last(session: Session, annotator_id: int, verdict_id: int | None = None) -> int | None:
    """Retract the annotator's newest unretracted verdict — or, given ``verdict_id``, that one
    verdict of theirs if it is still current; returns its pair id (None if nothing to retract)."""
    query = select(Verdict).where(Verdict.annotator_id == annotator_id, Verdict.retracted_at.is_(None))
    if verdict_id is not None:
        newer = aliased(Verdict)
        query = query.where(Verdict.id == verdict_id, ~exists().where(  # still the current one on its pair
            newer.pair_id == Verdict.pair_id, newer.annotator_id == annotator_id,
            newer.retracted_at.is_(None), newer.id > Verdict.id))
    last = session.scalars(query.order_by(Verdict.id.desc()).limit(1)).first()
    if last is None:
        return None
    last.retracted_at = utcnow()
    session.flush()
    refresh_judged_count(session, last.pair_id)
    return last.pair_id


def get_or_create_annotator(session: Session, name: str, is_pseudo: bool = False) -> int:
    """The id of the annotator called ``name``, creating it on first use."""
    name = name.strip()
    if not name:
        raise ValueError("an annotator needs a non-empty name")
    found = session.scalar(select(Annotator.id).where(Annotator.name == name))
    if found is not None:
        return found
    annotator = Annotator(name=name, is_pseudo=is_pseudo)
    session.add(annotator)
    session.flush()
    return annotator.id
