"""An adapter's implicit-reward margins on the workspace's pairs (table ``pair_scores``) and the
queue orders built on them.

A score is ``margin = r(a) - r(b)`` with ``r(y) = β·(log π(y|x) − log π_ref(y|x))``: how much more
the run's adapter (against its base model) prefers response ``a`` than ``b``, in the order
the pair stores them (``core.engine.pair_scoring`` computes them). Scores are keyed by run, so
every run keeps its own and re-scoring replaces a run's score on a pair.

Queue orders (``QUEUE_ORDERS``, the setting ``queue_order`` with the run ``queue_order_run``):

- ``default``: the pairs closest to their quota first (most judged), then the oldest (lowest id);
- ``uncertain``: the open pairs the run is least sure about first: ``|margin|`` ascending;
- ``disagree``: pairs that already have a verdict and are still open for another opinion
  (overlap > 1), where the run's preference most strongly contradicts the verdicts first:
  ``−margin × (votes for a − votes for b)`` descending, only where it is positive.

``ScoredRanking`` is the queue's first look under these orders (``storage.annotation_queue``);
pairs the order does not rank (unscored, or not contradicted) then come in the default order,
so the queue still drains.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Collection, Iterable, Iterator, Mapping

from sqlalchemy import and_, case, delete, exists, func, insert, select
from sqlalchemy.orm import Session, aliased

from storage.models import Choice, Pair, PairScore, TrainingRun, Verdict, utcnow
from storage.training_set import PreferenceExample, pair_texts, pair_texts_select
from storage.workspace import Workspace

#: The queue orders and how a screen names them.
QUEUE_ORDERS = {"default": "Closest to quota, then oldest",
                "uncertain": "Least sure first (margin near zero)",
                "disagree": "Most wrong first (a second opinion where the run disagrees)"}
SCORED_ORDERS = ("uncertain", "disagree")
#: How long a queue keeps a scored order's ranking before reading it again (seconds).
RANK_TTL_S = 30.0
#: How many of the best-ranked open pairs one reading keeps.
RANK_WINDOW = 2048
#: How many ranked pairs the queue tests in its first statement (then twice as many, up to 256).
RANK_CHUNK = 32
_CHUNK = 500   # ids per IN (...) list / rows per insert: below SQLite's bound-parameter limit


@dataclass(frozen=True)
class AdapterPreference:
    """What a run's adapter thinks of one pair: ``margin`` = r(a) − r(b) (> 0: it prefers a)."""

    run_id: str
    run_name: str
    pair_id: int
    margin: float

    def side_margin(self, swapped: bool) -> float:
        """The margin of the left response over the right one, for a pair shown ``swapped``."""
        return -self.margin if swapped else self.margin


@dataclass(frozen=True)
class RunScores:
    """How many pairs a run has scores for."""

    run_id: str
    run_name: str
    scored: int


# -- writing and reading scores ---------------------------------------------------------------
def store_pair_scores(ws: Workspace, run_id: str, margins: Mapping[int, float]) -> int:
    """Store (or replace) the run's margins on the given pairs in one transaction; returns how many."""
    items = sorted(margins.items())
    with ws.writing() as session:
        now = utcnow()
        for start in range(0, len(items), _CHUNK):
            chunk = items[start:start + _CHUNK]
            session.execute(delete(PairScore).where(PairScore.run_id == run_id,
                                                    PairScore.pair_id.in_([pair_id for pair_id, _ in chunk])))
            session.execute(insert(PairScore), [{"run_id": run_id, "pair_id": pair_id, "margin": float(margin),
                                                 "created_at": now} for pair_id, margin in chunk])
    return len(items)


def load_pair_scores(ws: Workspace, run_id: str, pair_ids: Iterable[int] | None = None) -> dict[int, float]:
    """pair id -> margin of the run (of the given pairs, or of all it scored)."""
    query = select(PairScore.pair_id, PairScore.margin).where(PairScore.run_id == run_id)
    with ws.session() as session:
        if pair_ids is None:
            return dict(session.execute(query).all())
        ids, found = sorted(set(pair_ids)), {}
        for start in range(0, len(ids), _CHUNK):
            found.update(session.execute(query.where(PairScore.pair_id.in_(ids[start:start + _CHUNK]))).all())
        return found


def scored_runs(ws: Workspace) -> list[RunScores]:
    """Every run with scores, newest run first."""
    with ws.session() as session:
        rows = session.execute(
            select(TrainingRun.id, TrainingRun.name, func.count(PairScore.pair_id))
            .join(PairScore, PairScore.run_id == TrainingRun.id)
            .group_by(TrainingRun.id, TrainingRun.name, TrainingRun.created_at)
            .order_by(TrainingRun.created_at.desc(), TrainingRun.id)).all()
    return [RunScores(run_id, name or run_id, count) for run_id, name, count in rows]


def adapter_preference(ws: Workspace, pair_id: int, run_id: str | None = None) -> AdapterPreference | None:
    """The run's score on the pair (``run_id`` None: the newest run that scored it); None when
    there is none."""
    query = (select(PairScore.run_id, TrainingRun.name, PairScore.margin)
             .join(TrainingRun, TrainingRun.id == PairScore.run_id)
             .where(PairScore.pair_id == pair_id))
    if run_id is not None:
        query = query.where(PairScore.run_id == run_id)
    with ws.session() as session:
        row = session.execute(query.order_by(TrainingRun.created_at.desc(), TrainingRun.id).limit(1)).first()
    if row is None:
        return None
    return AdapterPreference(row.run_id, row.name or row.run_id, pair_id, float(row.margin))


def pairs_to_score(ws: Workspace, open_below: int | None = None) -> list[PreferenceExample]:
    """The preference pairs as examples with ``chosen`` = response a and ``rejected`` = response b
    (the stored order, which is what a margin is measured in), by pair id. ``open_below``: only
    pairs judged fewer times (the open pairs under that overlap); None: every pair. Blind A/B
    pairs are left out."""
    query = pair_texts_select().where(Pair.comparison_id.is_(None))
    if open_below is not None:
        query = query.where(Pair.judged_count < open_below)
    with ws.session() as session:
        return [PreferenceExample(pair_id, prompt, a, b, split)
                for pair_id, split, prompt, a, b in map(pair_texts, session.execute(query))]


# -- queue orders -----------------------------------------------------------------------------
def vote_balance():
    """Scalar subquery correlated to the outer ``Pair``: its current verdicts for a minus those for b
    (current as in ``storage.verdicts.current_verdicts_select``; without its join to the annotators,
    which this sum does not need and which doubles its cost)."""
    vote = case((Verdict.choice == Choice.A, 1), (Verdict.choice == Choice.B, -1), else_=0)
    newer = aliased(Verdict)
    newer_exists = exists().where(newer.pair_id == Verdict.pair_id, newer.annotator_id == Verdict.annotator_id,
                                  newer.retracted_at.is_(None), newer.id > Verdict.id)
    return (select(func.coalesce(func.sum(vote), 0))
            .where(Verdict.pair_id == Pair.id, Verdict.retracted_at.is_(None), ~newer_exists).scalar_subquery())


class ScoredRanking:
    """The pairs a scored order ranks, best first: the run's scored pairs open under ``overlap``
    (``uncertain``: all of them by ``|margin|``; ``disagree``: those with a verdict that the run
    contradicts, most first). The best ``RANK_WINDOW`` are read in one statement and kept
    ``RANK_TTL_S`` seconds, because the scores have no index in rank order: every look would
    otherwise rank every scored pair. The queue tests each candidate's openness, the annotator's
    verdicts and the leases itself, a chunk at a time (storage.annotation_queue), so a stale
    ranking can order pairs as they stood a little while ago but never serve a pair it should
    not; pairs scored meanwhile, or past a window used up, wait for the next reading (the
    default order serves them until then)."""

    def __init__(self, order: str, run_id: str, overlap: int, clock: Callable[[], float] = time.monotonic):
        if order not in SCORED_ORDERS:
            raise ValueError(f"queue order {order!r} does not use scores; scored orders: {', '.join(SCORED_ORDERS)}")
        self.key = (order, run_id, overlap)
        self._clock = clock
        self._ids: list[int] | None = None
        self._read_at = 0.0

    def chunks(self, session: Session, exclude: Collection[int]) -> Iterator[list[int]]:
        """The ranked pair ids not in ``exclude``, best first, ``RANK_CHUNK`` at a time."""
        if self._ids is None or self._clock() - self._read_at > RANK_TTL_S:
            self._ids, self._read_at = self._read(session), self._clock()
        excluded = set(exclude)
        ids = [pair_id for pair_id in self._ids if pair_id not in excluded] if excluded else self._ids
        start, size = 0, RANK_CHUNK
        while start < len(ids):
            yield ids[start:start + size]
            start, size = start + size, min(2 * size, 256)

    def _read(self, session: Session) -> list[int]:
        order, run_id, overlap = self.key
        scored = (select(Pair.id).join(PairScore, and_(PairScore.pair_id == Pair.id, PairScore.run_id == run_id))
                  .where(Pair.judged_count < overlap, Pair.comparison_id.is_(None)))
        if order == "uncertain":
            rank = func.abs(PairScore.margin).label("rank")
        else:   # rank = margin x (votes a - votes b) = -contradiction, kept where it is negative
            rank = (PairScore.margin * vote_balance()).label("rank")
            scored = scored.where(Pair.judged_count > 0)
        rows = session.execute(scored.add_columns(rank).order_by(rank, Pair.id).limit(RANK_WINDOW))
        return [pair_id for pair_id, value in rows if order == "uncertain" or value < 0]


def open_scored_counts(ws: Workspace, overlap: int) -> tuple[int, dict[str, int]]:
    """(open preference pairs under ``overlap``, run id -> how many of them the run scored)."""
    is_open = and_(Pair.judged_count < overlap, Pair.comparison_id.is_(None))
    with ws.session() as session:
        total = session.scalar(select(func.count()).select_from(Pair).where(is_open))
        scored = dict(session.execute(select(PairScore.run_id, func.count())
                                      .join(Pair, Pair.id == PairScore.pair_id).where(is_open)
                                      .group_by(PairScore.run_id)).all())
    return total, scored
