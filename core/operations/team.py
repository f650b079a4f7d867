"""Team actions and reads: the overlap, resolving a dispute, agreement and per-annotator counts.

Plain functions over a workspace, for the Team tab (run on the GUI's database thread) and any
headless caller alike. The owner rule — only a workspace owner settles a dispute, anyone when
no owner is named — is enforced by ``storage.team.resolve`` (``NotAnOwnerError``); screens ask
``storage.team.may_resolve`` only to grey out what would be refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.operations.changes import Changes
from storage.models import Choice
from storage.settings import SettingsError, read_settings, update_settings
from storage.team import (AgreementReport, AnnotatorCounts, Disagreement, NotAnOwnerError, agreement,
                          annotator_counts, disagreements, may_resolve, resolve)
from storage.workspace import Workspace

__all__ = ["TeamStats", "TeamSettings", "team_stats", "team_settings", "set_overlap", "resolve_dispute",
           "NotAnOwnerError", "SettingsError"]


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

    def may_resolve(self, name: str | None) -> bool:
        """Whether ``name`` would be allowed to resolve (the rule is storage's; this only asks it)."""
        return name is not None and bool(name.strip()) and may_resolve(self.owners, name)


def team_stats(ws: Workspace) -> TeamStats:
    return TeamStats(agreement(ws), annotator_counts(ws), disagreements(ws))


def team_settings(ws: Workspace) -> TeamSettings:
    settings = read_settings(ws)
    return TeamSettings(settings.overlap, tuple(settings.owners))


def set_overlap(ws: Workspace, overlap: int) -> Changes:
    """How many distinct annotators must judge each pair; ``SettingsError`` below 1."""
    update_settings(ws, overlap=int(overlap))
    return Changes(settings=True)


def resolve_dispute(ws: Workspace, pair_id: int, owner: str, choice: Choice | str, note: str = "") -> Changes:
    """The owner's final verdict on a pair (it overrides the merge policy in exports and training).

    Raises ``NotAnOwnerError`` (from storage) when the workspace names owners and ``owner`` is not one.
    """
    resolve(ws, pair_id, owner, choice, note=note)
    return Changes(verdicts=True, annotators=True, pair_ids=frozenset({pair_id}))
