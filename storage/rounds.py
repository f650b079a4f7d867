"""Rounds of the loop in SQL: which run continued which, the verdicts each run trained on, and
the pairs each model generated (blind A/B results between two rounds: ``storage.comparisons``).

A *round* is a training run. Its model (base + the run's adapter) can generate new candidates
(``generations.run_id`` -> ``responses.generation_id`` -> ``pairs``); once judged, they train the
next round, whose run row names its parent (``runs.parent_run_id``) and how it started
(``runs.start_from``: "adapter" or "base"). ``run_verdicts`` keeps the verdicts a run trained on,
as they were at its launch. ``None`` as a run id stands for the base model alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from sqlalchemy import delete, func, insert, or_, select

from storage.models import Choice, Generation, Pair, Response, RunVerdict, TrainingRun, Verdict
from storage.verdicts import current_verdicts, current_verdicts_select
from storage.workspace import Workspace


@dataclass(frozen=True)
class RunLineage:
    run_id: str
    name: str
    status: str
    base_model: str
    adapter_path: str | None
    parent_run_id: str | None
    start_from: str | None          # "adapter" | "base" | None (a first round)
    trained_verdicts: int           # rows of run_verdicts


@dataclass(frozen=True)
class GeneratedPairs:
    generated: int                  # pairs with a response this model wrote (blind A/B pairs left out)
    judged: int                     # of those, pairs with at least one verdict


#: A run with more training pairs than this reads every current verdict at once.
_READ_ALL_ABOVE = 2_000


def record_round_start(ws: Workspace, run_id: str, parent_run_id: str | None, start_from: str | None,
                       pair_ids: Iterable[int], verdict_ids: Iterable[int] | None = None) -> int:
    """Mark the run's parent and start, and store the verdicts it trained on, in one transaction:
    ``verdict_ids`` (those its training set was built from), else the current non-skip verdicts
    of ``pair_ids`` (its training pairs at launch). Returns how many."""
    wanted = sorted(set(pair_ids))
    with ws.writing() as session:
        run = session.get(TrainingRun, run_id)
        if run is None:
            raise LookupError(f"no run {run_id!r} in this workspace")
        run.parent_run_id, run.start_from = parent_run_id, start_from
        session.execute(delete(RunVerdict).where(RunVerdict.run_id == run_id))
        if verdict_ids is not None:
            verdict_ids = sorted(set(verdict_ids))
        elif len(wanted) > _READ_ALL_ABOVE:   # 100,000 pairs: every current vote in one query, filtered here
            chosen = set(wanted)
            rows = session.execute(current_verdicts_select().with_only_columns(Verdict.id, Verdict.pair_id)
                                   .where(Verdict.choice != Choice.SKIP))
            verdict_ids = sorted({verdict_id for verdict_id, pair_id in rows if pair_id in chosen})
        else:
            verdict_ids = sorted({v.verdict_id for v in current_verdicts(session, wanted) if v.choice != Choice.SKIP})
        if verdict_ids:   # one executemany of the table's INSERT, no ORM object per row
            session.connection().execute(insert(RunVerdict.__table__),
                                         [{"run_id": run_id, "verdict_id": v} for v in verdict_ids])
    return len(verdict_ids)


def trained_verdict_ids(ws: Workspace, run_id: str) -> list[int]:
    with ws.session() as session:
        return list(session.scalars(select(RunVerdict.verdict_id).where(RunVerdict.run_id == run_id)
                                    .order_by(RunVerdict.verdict_id)))


def run_lineages(ws: Workspace) -> list[RunLineage]:
    """Every run with its parent, start and number of trained verdicts, oldest first."""
    counts = (select(RunVerdict.run_id, func.count().label("n")).group_by(RunVerdict.run_id).subquery())
    with ws.session() as session:
        rows = session.execute(
            select(TrainingRun.id, TrainingRun.name, TrainingRun.status, TrainingRun.base_model,
                   TrainingRun.adapter_path, TrainingRun.parent_run_id, TrainingRun.start_from,
                   func.coalesce(counts.c.n, 0))
            .outerjoin(counts, counts.c.run_id == TrainingRun.id)
            .order_by(TrainingRun.created_at, TrainingRun.id)).all()
    return [RunLineage(r[0], r[1], getattr(r[2], "value", r[2]), r[3], r[4], r[5], r[6], int(r[7])) for r in rows]


def _written_by(run_id: str | None):
    """Response ids written by a generation of ``run_id`` (None: of the base model alone)."""
    which = Generation.run_id.is_(None) if run_id is None else Generation.run_id == run_id
    return select(Response.id).join(Generation, Generation.id == Response.generation_id).where(which)


def _generated_pairs_query(run_id: str | None):
    written = _written_by(run_id)
    return select(Pair.id, Pair.judged_count).where(
        Pair.comparison_id.is_(None), or_(Pair.response_a_id.in_(written), Pair.response_b_id.in_(written)))


def pairs_generated_by(ws: Workspace, run_id: str | None) -> set[int]:
    """Ids of the (non-blind) pairs with a response that ``run_id``'s model generated."""
    with ws.session() as session:
        return {pair_id for pair_id, _ in session.execute(_generated_pairs_query(run_id))}


def generated_pairs(ws: Workspace, run_id: str | None) -> GeneratedPairs:
    with ws.session() as session:
        rows = session.execute(_generated_pairs_query(run_id)).all()
    return GeneratedPairs(len(rows), sum(1 for _, judged in rows if judged > 0))
