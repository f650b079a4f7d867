"""The annotation queue: which pair an annotator sees next, recording verdicts, undo.

A pair is *open* while fewer than ``overlap`` distinct annotators have judged it (a skip is
not a judgement; pseudo-annotators of labelled imports count). An annotator is never
served a pair they hold a current verdict on, skips included. Among open pairs the queue
serves those closest to their quota first (most judged, then oldest), so with overlap k a
team finishes pairs instead of spreading thin.

Speed: ``Pair.judged_count`` is kept in step with the verdicts in the same transaction as
every write, and the index ``(judged_count, id)`` lets ``next_pair`` read open pairs in order
without counting verdicts, so it answers in about a millisecond with 100,000 pairs
(benchmarks/bench_next_pair.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Collection

from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import Session, aliased

from storage.models import Choice, Pair, Prompt, Response, Verdict
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

    def __init__(self, ws: Workspace, annotator_name: str, overlap: int | None = None):
        self.ws = ws
        if overlap is None:
            overlap = read_settings(ws).overlap
        if overlap < 1:
            raise ValueError(f"overlap must be at least 1, got {overlap}")
        self.overlap = overlap
        self.annotator_name = annotator_name.strip()
        with ws.writing() as session:
            self.annotator_id = get_or_create_annotator(session, self.annotator_name)

    def _mine(self):
        """EXISTS: this annotator holds an unretracted verdict on the outer ``Pair``."""
        return exists().where(and_(Verdict.pair_id == Pair.id, Verdict.annotator_id == self.annotator_id,
                                   Verdict.retracted_at.is_(None)))

    def next_pair(self, exclude: Collection[int] = ()) -> PairView | None:
        """The next open pair this annotator has not judged (None when there is none).

        ``exclude``: pair ids to pass over (e.g. the one on screen, pairs skipped this session).
        """
        exclude = list(exclude)
        with self.ws.session() as session:
            # One indexed range per count value, nearest-to-done first (overlap is small).
            for count in range(self.overlap - 1, -1, -1):
                query = (select(Pair.id).where(Pair.judged_count == count, ~self._mine())
                         .order_by(Pair.id).limit(1))
                if exclude:
                    query = query.where(Pair.id.not_in(exclude))
                pair_id = session.scalar(query)
                if pair_id is not None:
                    return load_pair_view(session, pair_id)
        return None

    def pair_view(self, pair_id: int) -> PairView:
        with self.ws.session() as session:
            return load_pair_view(session, pair_id)

    def record(self, pair_id: int, choice: Choice | str, seconds_spent: float = 0.0, note: str = "") -> int:
        """Store a verdict in its own committed transaction; returns the verdict id."""
        with self.ws.writing() as session:
            return add_verdict(session, pair_id, self.annotator_id, choice, seconds_spent, note)

    def undo_last(self, verdict_id: int | None = None) -> int | None:
        """Retract this annotator's newest verdict (or the verdict ``verdict_id`` of theirs, so a
        screen can undo only what it recorded); returns its pair id (None if nothing to undo)."""
        with self.ws.writing() as session:
            return retract_last(session, self.annotator_id, verdict_id)

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
                                        .where(Pair.judged_count < self.overlap))
            open_and_mine = session.scalar(
                select(func.count()).select_from(Pair).where(Pair.judged_count < self.overlap, self._mine()))
            return open_pairs - open_and_mine
