"""Team actions and reads: the overlap and lease time, resolving a dispute, agreement and
per-annotator counts, and who is labelling now (their live leases).

Plain functions over a workspace, for the Team tab (run on the GUI's database thread) and any
headless caller alike. The owner rule — only a workspace owner settles a dispute, anyone when
no owner is named — is enforced by ``storage.team.resolve`` (``NotAnOwnerError``); screens ask
``storage.team.may_resolve`` only to grey out what would be refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.operations.changes import Changes
from storage.reservations import live_leases
from storage.models import Choice
from storage.settings import DEFAULT_LEASE_MINUTES, SettingsError, read_settings, update_settings
from storage.team import (AgreementReport, AnnotatorCounts, Disagreement, NotAnOwnerError, may_resolve, resolve,
                          team_overview)
from storage.workspace import Workspace

__all__ = ["TeamStats", "TeamSettings", "LabellerNow", "team_stats", "team_settings", "set_overlap",
           "set_lease_minutes", "who_is_labelling", "resolve_dispute", "NotAnOwnerError", "SettingsError"]


@dataclass(frozen=True)
class TeamStats:
    """What the Team tab shows of the verdicts: agreement, counts by annotator, the disputes."""

    agreement: AgreementReport
    annotators: list[AnnotatorCounts]
    disputes: list[Disagreement]


@dataclass(frozen=True)
class TeamSettings:
    overlap: int                    # distinct annotators who judge each pair
    owners: tuple[str, ...]         # who may resolve disputes (empty: anyone)
    lease_minutes: float = DEFAULT_LEASE_MINUTES   # how long a pair on someone's screen stays reserved for them

    def may_resolve(self, name: str | None) -> bool:
        """Whether ``name`` would be allowed to resolve (the rule is storage's; this only asks it)."""
        return name is not None and bool(name.strip()) and may_resolve(self.owners, name)


def team_stats(ws: Workspace) -> TeamStats:
    return TeamStats(*team_overview(ws))


def team_settings(ws: Workspace) -> TeamSettings:
    settings = read_settings(ws)
    return TeamSettings(settings.overlap, tuple(settings.owners), settings.lease_minutes)


def set_overlap(ws: Workspace, overlap: int, actor: str | None = None) -> Changes:
    """How many distinct annotators must judge each pair; ``SettingsError`` below 1. ``actor``:
    who asks (only an owner may, storage.members)."""
    update_settings(ws, actor=actor, overlap=int(overlap))
    return Changes(settings=True)


def set_lease_minutes(ws: Workspace, minutes: float, actor: str | None = None) -> Changes:
    """How long a pair served to someone stays reserved for them without being renewed (a
    screen renews it while the pair is on it); ``SettingsError`` unless positive."""
    update_settings(ws, actor=actor, lease_minutes=float(minutes))
    return Changes(settings=True)


@dataclass(frozen=True)
class LabellerNow:
    """Someone holding reserved pairs right now (their screen and what it has ready)."""

    name: str
    pair_ids: tuple[int, ...]
    seconds_left: float          # until the soonest of their reservations lapses, unless renewed

    def pairs_text(self, shown: int = 4) -> str:
        ids = ", ".join(f"#{pair_id}" for pair_id in self.pair_ids[:shown])
        more = len(self.pair_ids) - shown
        return f"{ids} and {more} more" if more > 0 else ids


def who_is_labelling(ws: Workspace) -> list[LabellerNow]:
    """Everyone holding a live lease, by name: what they hold and how long it lasts."""
    by_name: dict[str, list] = {}
    for lease in live_leases(ws):
        by_name.setdefault(lease.annotator_name, []).append(lease)
    return [LabellerNow(name, tuple(sorted(lease.pair_id for lease in leases)),
                        min(lease.seconds_left for lease in leases))
            for name, leases in sorted(by_name.items())]


def resolve_dispute(ws: Workspace, pair_id: int, owner: str, choice: Choice | str, note: str = "") -> Changes:
    """The owner's final verdict on a pair (it overrides the merge policy in exports and training).

    Raises ``NotAnOwnerError`` (from storage) when the workspace names owners and ``owner`` is not one.
    """
    resolve(ws, pair_id, owner, choice, note=note)
    return Changes(verdicts=True, annotators=True, pair_ids=frozenset({pair_id}))
