"""Every verdict ever given on one pair, oldest first: what the pair dialog lists.

Verdicts are never overwritten (a changed mind is a new row, undo marks a row retracted),
so this is the pair's full history; ``current`` marks each annotator's standing verdict.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select

from storage.annotation_queue import PairView, load_pair_view
from storage.models import Annotator, Choice, Verdict
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
