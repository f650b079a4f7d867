"""One annotator's sitting at the labelling screen: who they are and how fast it goes.

``SessionPace`` is the arithmetic behind the progress bar (target, pace in pairs per hour,
time left); it is plain Python with an injectable clock so it is tested without Qt or
waiting. ``annotator_names`` lists the people (not the pseudo-annotators of imported
labels) to offer on the "who are you?" screen; ``pair_count`` tells a new, empty workspace.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from sqlalchemy import func, select

from storage.models import Annotator, Pair
from storage.workspace import Workspace

# A pause longer than this (lunch, a meeting) counts as this long, so one break does not
# halve the pace shown for the rest of the session.
MAX_GAP_S = 300.0


def annotator_names(ws: Workspace) -> list[str]:
    """Names of the real annotators of the workspace, oldest first."""
    with ws.session() as s:
        return list(s.scalars(select(Annotator.name).where(Annotator.is_pseudo.is_(False))
                              .order_by(Annotator.created_at, Annotator.id)))


def pair_count(ws: Workspace) -> int:
    """How many pairs the workspace holds (0: a new, empty workspace)."""
    with ws.session() as s:
        return s.scalar(select(func.count()).select_from(Pair))


def validate_annotator_name(name: str) -> str:
    """The name as stored (trimmed); raises ValueError with a readable reason when unusable."""
    cleaned = " ".join(name.split())
    if not cleaned:
        raise ValueError("annotator name is empty")
    if len(cleaned) > 200:
        raise ValueError(f"annotator name is {len(cleaned)} characters long; at most 200")
    return cleaned


@dataclass
class SessionPace:
    """Verdicts given in this session against a target.

    ``record()`` on each verdict, ``undo()`` when one is taken back. Pace is verdicts per
    hour of *working* time: the gaps between verdicts, each capped at ``MAX_GAP_S``, counted
    from the session start.
    """

    target: int = 100
    clock: Callable[[], float] = time.monotonic
    started_at: float = field(default=0.0)
    _stamps: list[float] = field(default_factory=list)
    _worked_s: float = 0.0

    def __post_init__(self) -> None:
        if self.target < 1:
            raise ValueError(f"session target must be at least 1 pair, got {self.target}")
        self.started_at = self.started_at or self.clock()
        self._last = self.started_at

    @property
    def done(self) -> int:
        return len(self._stamps)

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.target)

    def record(self) -> None:
        now = self.clock()
        self._worked_s += min(max(0.0, now - self._last), MAX_GAP_S)
        self._last = now
        self._stamps.append(now)

    def undo(self) -> None:
        """Take back the newest verdict of the session (no effect on an empty session)."""
        if self._stamps:
            self._stamps.pop()

    def worked_seconds(self) -> float:
        """Working time so far, including the current (capped) gap since the last verdict."""
        return self._worked_s + min(max(0.0, self.clock() - self._last), MAX_GAP_S)

    def pairs_per_hour(self) -> float | None:
        """None until there is something to measure (no verdict yet)."""
        worked = self.worked_seconds()
        if not self._stamps or worked <= 0:
            return None
        return self.done * 3600.0 / worked

    def seconds_left(self) -> float | None:
        """Time to reach the target at the current pace; 0 once reached, None while unknown."""
        left = self.target - self.done
        if left <= 0:
            return 0.0
        pace = self.pairs_per_hour()
        if not pace:
            return None
        return left * 3600.0 / pace
