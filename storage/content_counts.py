"""How much a workspace holds: prompts, responses, pairs (judged, and by split).

The counts behind ``main.py stats`` and an import's summary; verdict counts by annotator and
agreement are in ``storage.team``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from sqlalchemy import func, select

from storage.models import Pair, Prompt, Response
from storage.workspace import Workspace


@dataclass(frozen=True)
class ContentCounts:
    prompts: int
    responses: int
    pairs: int
    pairs_judged: int                                   # pairs with at least one non-skip verdict
    pairs_by_split: dict[str, int] = field(default_factory=dict)   # "train"/"eval" -> pairs


def content_counts(ws: Workspace) -> ContentCounts:
    with ws.session() as s:
        prompts, responses, pairs = (s.scalar(select(func.count()).select_from(model))
                                     for model in (Prompt, Response, Pair))
        judged = s.scalar(select(func.count()).select_from(Pair).where(Pair.judged_count > 0))
        by_split = dict(s.execute(select(Pair.split, func.count()).group_by(Pair.split)).all())
    return ContentCounts(prompts, responses, pairs, judged, {k: by_split[k] for k in sorted(by_split)})

