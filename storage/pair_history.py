"""Every verdict ever given on one pair, oldest first: what the pair dialog lists.

Verdicts are never overwritten (a changed mind is a new row, undo marks a row retracted),
so this is the pair's full history; ``current`` marks each annotator's standing verdict.
A blind A/B pair (``pairs.comparison_id``) is judged only through its comparison's queue:
``refuse_blind_pair`` is what the Pairs screen's change and an owner's resolution ask first.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.annotation_queue import PairView, load_pair_view
from storage.models import Annotator, Choice, Comparison, Pair, Verdict
from storage.settings import read_settings
from storage.workspace import Workspace


@dataclass(frozen=True)
class VerdictEntry:
    verdict_id: int
    annotator: str
    is_pseudo: bool
    choice: Choice
    note: str
    is_resolution: bool
    created_at: dt.datetime
    retracted: bool
    current: bool          # this annotator's standing verdict on the pair


class BlindPairError(ValueError):
    """A verdict on a blind A/B pair given anywhere but in its comparison's judging."""


def blind_comparison(session: Session, pair_id: int) -> str | None:
    """The comparison a blind A/B pair belongs to, in words ("'base vs r2' (#3)"); None for a preference pair."""
    row = session.execute(select(Comparison.id, Comparison.name).join(Pair, Pair.comparison_id == Comparison.id)
                          .where(Pair.id == pair_id)).first()
    if row is None:
        return None
    return f"{row.name!r} (#{row.id})" if row.name else f"#{row.id}"


def refuse_blind_pair(session: Session, pair_id: int) -> None:
    """Raise ``BlindPairError`` when the pair belongs to a blind A/B comparison."""
    comparison = blind_comparison(session, pair_id)
    if comparison is not None:
        raise BlindPairError(f"pair #{pair_id} belongs to the blind A/B comparison {comparison}: it is judged "
                             f"in the Blind A/B tab only, and read-only here")


def pair_history(ws: Workspace, pair_id: int) -> list[VerdictEntry]:
    with ws.session() as session:
        rows = session.execute(
            select(Verdict.id, Annotator.name, Annotator.is_pseudo, Verdict.choice, Verdict.note,
                   Verdict.is_resolution, Verdict.created_at, Verdict.retracted_at)
            .join(Annotator, Annotator.id == Verdict.annotator_id)
            .where(Verdict.pair_id == pair_id).order_by(Verdict.id)).all()
    newest_active: dict[str, int] = {}
    for vid, name, _pseudo, _choice, _note, _res, _at, retracted_at in rows:
        if retracted_at is None:
            newest_active[name] = vid  # ordered by id: the last one wins
    return [VerdictEntry(vid, name, bool(pseudo), Choice(choice), note, bool(res), at, retracted_at is not None,
                         newest_active.get(name) == vid)
            for vid, name, pseudo, choice, note, res, at, retracted_at in rows]


def owners(ws: Workspace) -> list[str] | None:
    """Names allowed to resolve disputes (workspace setting ``owners``); None: anyone may."""
    return list(read_settings(ws).owners) or None


def pair_view(ws: Workspace, pair_id: int) -> PairView:
    """The pair as the annotate screen lays it out (no annotator needed)."""
    with ws.session() as session:
        return load_pair_view(session, pair_id)


def pair_comparison(ws: Workspace, pair_id: int) -> str | None:
    """``blind_comparison`` in a session of its own."""
    with ws.session() as session:
        return blind_comparison(session, pair_id)


def check_editable(ws: Workspace, pair_id: int) -> None:
    """``refuse_blind_pair`` in a session of its own."""
    with ws.session() as session:
        refuse_blind_pair(session, pair_id)
