"""The Pairs screen's reads and its one write: a page of pairs, one pair with its history,
and a changed verdict (a new row; the history is kept).

Plain functions over a workspace, run on the GUI's database thread. Filtering and paging are
``storage.pair_browser``'s; the history ``storage.pair_history``'s.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.operations.changes import Changes
from core.operations.team import TeamSettings, team_settings
from storage.annotation_queue import AnnotationQueue, PairView
from storage.models import Choice
from storage.pair_browser import STATUS_FILTERS, PairRow, count_pairs, list_pairs, sources
from storage.pair_history import BlindPairError, VerdictEntry, check_editable, pair_comparison, pair_history, pair_view
from storage.workspace import Workspace

__all__ = ["PairFilters", "PairPage", "PairDetails", "browse_pairs", "pair_sources", "pair_details",
           "change_verdict", "BlindPairError", "STATUS_FILTERS"]


@dataclass(frozen=True)
class PairFilters:
    status_filter: str = "all"      # one of storage.pair_browser.STATUS_FILTERS
    annotator: str | None = None    # whose verdicts "mine" (and tie/both_bad/skipped) mean
    source: str | None = None
    search: str | None = None

    def as_kwargs(self) -> dict:
        return {"status_filter": self.status_filter, "annotator": self.annotator, "source": self.source,
                "search": self.search}


@dataclass(frozen=True)
class PairPage:
    filters: PairFilters
    offset: int
    rows: list[PairRow]
    total: int | None               # pairs matching the filters (counted with the first page only)


@dataclass(frozen=True)
class PairDetails:
    view: PairView
    history: list[VerdictEntry]
    settings: TeamSettings
    blind_comparison: str | None = None   # a blind A/B pair's comparison, in words: read-only here

    @property
    def read_only(self) -> bool:
        return self.blind_comparison is not None


def browse_pairs(ws: Workspace, filters: PairFilters, offset: int = 0, limit: int = 200) -> PairPage:
    total = count_pairs(ws, **filters.as_kwargs()) if offset == 0 else None
    return PairPage(filters, offset, list_pairs(ws, offset=offset, limit=limit, **filters.as_kwargs()), total)


def pair_sources(ws: Workspace) -> list[str]:
    return sources(ws)


def pair_details(ws: Workspace, pair_id: int) -> PairDetails:
    return PairDetails(pair_view(ws, pair_id), pair_history(ws, pair_id), team_settings(ws),
                       pair_comparison(ws, pair_id))


def change_verdict(ws: Workspace, pair_id: int, annotator: str, choice: Choice | str, note: str = "") -> Changes:
    """``annotator``'s new verdict on the pair (their earlier ones stay in the history).
    Raises ``BlindPairError`` on a blind A/B pair: those are judged in their comparison only."""
    check_editable(ws, pair_id)
    AnnotationQueue(ws, annotator).record(pair_id, choice, note=note)
    return Changes(verdicts=True, annotators=True, pair_ids=frozenset({pair_id}))
