"""Deleting a training run's rows: the run, its metrics, its pair scores and the verdicts it
trained on (``run_verdicts``), in one transaction, after checking that nothing depends on it.

A run is not deleted while a live process trains it or holds it paused, nor while another row
names it: a later round that started from it (``runs.parent_run_id``), a blind A/B comparison
of it (``comparisons.run_a`` / ``run_b``), candidates its adapter generated (``generations.run_id``:
those responses would lose the model that wrote them), or the queue order that ranks the pairs by
its scores. The refusal names each. Only an owner deletes runs (``Action.DELETE_RUNS``; on
PostgreSQL the grants allow it to owners only). The run's folder is the caller's
(``core.operations.runs.delete_run``): files are not storage's.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from storage.members import Action, check
from storage.models import Comparison, Generation, Metric, PairScore, RunVerdict, TrainingRun
from storage.pair_scores import SCORED_ORDERS
from storage.runs import LIVE_STATUSES, get_run
from storage.settings import settings_in
from storage.workspace import Workspace


class RunInUseError(ValueError):
    """The run is training, or other rows depend on it; the message names what."""


@dataclass(frozen=True)
class DeletedRunRows:
    run_id: str
    name: str
    run_dir: str
    metrics: int
    pair_scores: int
    trained_verdicts: int     # run_verdicts rows (the verdicts themselves stay)


def run_dependents(session: Session, run_id: str) -> list[str]:
    """What keeps the run from being deleted, in words (empty: nothing)."""
    found = []
    children = session.scalars(select(TrainingRun.id).where(TrainingRun.parent_run_id == run_id)
                               .order_by(TrainingRun.created_at, TrainingRun.id)).all()
    if children:
        found.append(f"{_listed(children, 'run')} started from it (a later round)")
    comparisons = session.execute(select(Comparison.id, Comparison.name)
                                  .where(or_(Comparison.run_a == run_id, Comparison.run_b == run_id))
                                  .order_by(Comparison.id)).all()
    if comparisons:
        names = [f"{name!r} (#{cid})" if name else f"#{cid}" for cid, name in comparisons]
        found.append(f"the blind A/B {_listed(names, 'comparison')} compare{'s' if len(names) == 1 else ''} it")
    generations = session.scalar(select(func.count()).select_from(Generation).where(Generation.run_id == run_id))
    if generations:
        found.append(f"its adapter generated candidates ({generations} generation{'s' if generations != 1 else ''}: "
                     "the responses would lose the model that wrote them)")
    settings = settings_in(session)
    if settings.queue_order in SCORED_ORDERS and settings.queue_order_run == run_id:
        found.append("the queue order ranks the pairs by its scores (choose another order in the Team tab)")
    return found


def delete_run_rows(ws: Workspace, run_id: str, actor: str | None = None) -> DeletedRunRows:
    """Delete the run and its rows; ``LookupError`` when there is no such run, ``RunInUseError``
    when it trains or something depends on it, ``RoleError`` when ``actor`` may not delete runs."""
    if get_run(ws, run_id) is None:          # also settles a run whose process is gone (interrupted)
        raise LookupError(f"no run {run_id!r} in this workspace")
    with ws.writing() as session:
        check(session, Action.DELETE_RUNS, actor)
        run = session.get(TrainingRun, run_id)
        if run is None:
            raise LookupError(f"no run {run_id!r} in this workspace")
        if run.status in LIVE_STATUSES:
            raise RunInUseError(f"run {run_id!r} cannot be deleted while it is {run.status.value}: stop it first")
        reasons = run_dependents(session, run_id)
        if reasons:
            raise RunInUseError(f"run {run_id!r} cannot be deleted: {'; '.join(reasons)}")
        counts = [session.execute(delete(table).where(table.run_id == run_id)).rowcount
                  for table in (Metric, PairScore, RunVerdict)]
        deleted = DeletedRunRows(run.id, run.name or run.id, run.run_dir, *counts)
        session.delete(run)
        return deleted


def _listed(items: list[str], noun: str) -> str:
    return f"{noun}{'s' if len(items) != 1 else ''} {', '.join(items)}"
