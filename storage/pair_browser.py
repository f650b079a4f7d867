"""Paged, filtered listing of pairs for the browser screen.

Filters (``status_filter``):
- ``all``: every pair;
- ``unlabelled``: no current verdict from anyone;
- ``mine``: ``annotator`` holds a current verdict on it;
- ``disputed``: current labels (skips and resolutions left out) of two or more kinds;
- ``tie`` / ``both_bad`` / ``skipped``: someone's current verdict is that (``annotator``'s,
  when given).
``source`` keeps pairs created by that import; ``search`` keeps pairs whose prompt or either
response contains the text (case-insensitive for ASCII). Rows come in pair-id order.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, and_, exists, func, or_, select
from sqlalchemy.orm import aliased

from storage.models import Annotator, Choice, Pair, Prompt, Response
from storage.verdicts import current_verdicts, current_verdicts_select
from storage.workspace import Workspace

STATUS_FILTERS = ("all", "unlabelled", "mine", "disputed", "tie", "both_bad", "skipped")
PREVIEW_CHARS = 120


@dataclass(frozen=True)
class PairRow:
    pair_id: int
    prompt_preview: str            # first line(s) of the prompt, at most PREVIEW_CHARS
    source: str
    split: str
    verdicts: dict[str, str]       # annotator name -> current choice value ("a", "tie", ...)
    blind: bool = False            # a blind A/B comparison's pair: judged in its comparison only

    @property
    def verdict_summary(self) -> str:
        """e.g. "alice: a, bob: tie" ("" when nobody judged it)."""
        return ", ".join(f"{name}: {choice}" for name, choice in sorted(self.verdicts.items()))


def _preview(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= PREVIEW_CHARS else flat[:PREVIEW_CHARS - 1] + "…"


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filtered(query: Select, status_filter: str, annotator: str | None, source: str | None,
              search: str | None) -> Select:
    if status_filter not in STATUS_FILTERS:
        raise ValueError(f"unknown status filter {status_filter!r}; expected one of {', '.join(STATUS_FILTERS)}")
    if status_filter == "mine" and not annotator:
        raise ValueError("the 'mine' filter needs an annotator name")
    current = current_verdicts_select().subquery()
    if status_filter == "unlabelled":
        query = query.where(~exists().where(current.c.pair_id == Pair.id))
    elif status_filter == "mine":
        query = query.where(exists().where(current.c.pair_id == Pair.id, current.c.name == annotator))
    elif status_filter == "disputed":
        labels = current_verdicts_select(per_kind=True).subquery()   # an owner's label stays beside their resolution
        disputed = (select(labels.c.pair_id)
                    .where(labels.c.choice != Choice.SKIP, labels.c.is_resolution.is_(False))
                    .group_by(labels.c.pair_id).having(func.count(func.distinct(labels.c.choice)) > 1))
        query = query.where(Pair.id.in_(disputed))
    elif status_filter in ("tie", "both_bad", "skipped"):
        wanted = {"tie": Choice.TIE, "both_bad": Choice.BOTH_BAD, "skipped": Choice.SKIP}[status_filter]
        conditions = [current.c.pair_id == Pair.id, current.c.choice == wanted]
        if annotator:
            conditions.append(current.c.name == annotator)
        query = query.where(exists().where(and_(*conditions)))
    if source is not None:
        query = query.where(Pair.source == source)
    if search:
        pattern = f"%{_escape_like(search)}%"
        response = aliased(Response)
        in_response = exists().where(
            response.id.in_([Pair.response_a_id, Pair.response_b_id]), response.text.ilike(pattern, escape="\\"))
        query = query.where(or_(Prompt.text.ilike(pattern, escape="\\"), in_response))
    return query


def list_pairs(ws: Workspace, status_filter: str = "all", annotator: str | None = None, source: str | None = None,
               search: str | None = None, offset: int = 0, limit: int = 200) -> list[PairRow]:
    query = (select(Pair.id, Prompt.text, Pair.source, Pair.split, Pair.comparison_id)
             .join(Prompt, Prompt.id == Pair.prompt_id)
             .order_by(Pair.id).offset(max(0, offset)).limit(max(0, limit)))
    query = _filtered(query, status_filter, annotator, source, search)
    with ws.session() as session:
        rows = session.execute(query).all()
        verdicts: dict[int, dict[str, str]] = {row[0]: {} for row in rows}
        for verdict in current_verdicts(session, list(verdicts)):
            label = verdict.choice.value + (" (resolution)" if verdict.is_resolution else "")
            verdicts[verdict.pair_id][verdict.annotator_name] = label
    return [PairRow(pid, _preview(text), source_name, split, verdicts[pid], comparison_id is not None)
            for pid, text, source_name, split, comparison_id in rows]


def count_pairs(ws: Workspace, status_filter: str = "all", annotator: str | None = None, source: str | None = None,
                search: str | None = None) -> int:
    query = select(func.count(Pair.id)).select_from(Pair).join(Prompt, Prompt.id == Pair.prompt_id)
    query = _filtered(query, status_filter, annotator, source, search)
    with ws.session() as session:
        return session.scalar(query)


def sources(ws: Workspace) -> list[str]:
    with ws.session() as session:
        return list(session.scalars(select(Pair.source).distinct().order_by(Pair.source)))


def annotator_names(ws: Workspace) -> list[str]:
    with ws.session() as session:
        return list(session.scalars(select(Annotator.name).order_by(Annotator.name)))
