"""Team queries: per-annotator counts, inter-annotator agreement, disputes and their resolution.

All of them read annotators' *current* verdicts (storage.verdicts). For agreement a skip is
not a label and resolution verdicts are left out (they settle disputes, they are not
independent judgements); pseudo-annotators (labelled imports) are left out unless asked.
An owner's label and their resolution of the same pair are current side by side, so an
owner who took part in a dispute and then settled it still counts as one side of it.
The statistics themselves are in storage.agreement.

Only an owner resolves a dispute (storage.members): once the workspace names owners,
``resolve`` refuses anyone else (``NotAnOwnerError``); with no owner named, anyone may. On
PostgreSQL the database refuses a resolution from anyone but an owner's role as well.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select

from storage.agreement import (fleiss_kappa, krippendorff_alpha_nominal, pairwise_cohen_kappa,
                               percent_agreement)
from storage.members import Role, RoleError, acting, owner_names
from storage.models import Annotator, Choice, Pair
from storage.pair_history import refuse_blind_pair
from storage.verdicts import add_verdict, current_verdicts, get_or_create_annotator
from storage.workspace import Workspace


class NotAnOwnerError(RoleError):
    """Someone who is not one of the workspace's owners tried to resolve a dispute."""


@dataclass
class AnnotatorCounts:
    annotator_id: int
    name: str
    is_pseudo: bool
    total: int                                  # current verdicts, skips included
    by_choice: dict[str, int]                   # "a", "b", "tie", "both_bad", "skip" -> count
    seconds_spent: float                        # summed over current verdicts

    def to_dict(self) -> dict:
        return {"name": self.name, "pseudo": self.is_pseudo, "total": self.total,
                "by_choice": dict(self.by_choice), "seconds_spent": round(self.seconds_spent, 3)}


@dataclass
class AgreementReport:
    n_pairs: int                                # pairs with >= 2 annotators' labels
    n_annotators: int
    percent_agreement: float | None
    fleiss_kappa: float | None
    krippendorff_alpha: float | None
    # (annotator, annotator) -> (Cohen's kappa or None, pairs both labelled)
    cohen_kappa: dict[tuple[str, str], tuple[float | None, int]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"pairs_with_2_or_more": self.n_pairs, "annotators": self.n_annotators,
                "percent_agreement": self.percent_agreement, "fleiss_kappa": self.fleiss_kappa,
                "krippendorff_alpha": self.krippendorff_alpha,
                "cohen_kappa": [{"annotators": list(names), "kappa": kappa, "pairs": n}
                                for names, (kappa, n) in sorted(self.cohen_kappa.items())]}


@dataclass(frozen=True)
class Disagreement:
    pair_id: int
    verdicts: dict[str, Choice]                 # annotator name -> current choice (skips left out)
    resolution: Choice | None                   # the owner's resolution, if the pair was settled


def annotator_counts(ws: Workspace) -> list[AnnotatorCounts]:
    """Counts by choice of every annotator's current verdicts, people first, then by name."""
    with ws.session() as session:
        return _counts(session, current_verdicts(session, per_kind=True))


def agreement(ws: Workspace, include_pseudo: bool = False) -> AgreementReport:
    with ws.session() as session:
        return _agreement(current_verdicts(session, per_kind=True), include_pseudo)


def disagreements(ws: Workspace, include_resolved: bool = True) -> list[Disagreement]:
    """Pairs whose annotators' current labels (pseudo-annotators included) are not all the same.
    Blind A/B pairs are left out: their judges' differences are the comparison's result, not a
    dispute to settle (``resolve`` refuses them)."""
    with ws.session() as session:
        return _disagreements(current_verdicts(session, per_kind=True), include_resolved, _blind_pairs(session))


def team_overview(ws: Workspace) -> tuple[AgreementReport, list[AnnotatorCounts], list[Disagreement]]:
    """``agreement``, ``annotator_counts`` and ``disagreements`` from one read of the current
    verdicts (the Team tab's numbers; each read is most of the cost: ~1 s at 100,000 verdicts)."""
    with ws.session() as session:
        rows = current_verdicts(session, per_kind=True)
        return _agreement(rows, False), _counts(session, rows), _disagreements(rows, True, _blind_pairs(session))


def _counts(session, rows) -> list[AnnotatorCounts]:
    annotators = session.execute(select(Annotator.id, Annotator.name, Annotator.is_pseudo)).all()
    # Time is summed over every current row: a changed mind's older label and an undone one are
    # not, while an owner's label keeps its time beside the resolution that came after it.
    seconds: dict[int, float] = defaultdict(float)
    for verdict in rows:
        seconds[verdict.annotator_id] += verdict.seconds_spent
    # An annotator's current verdict on a pair, of either kind, is their newest one (rows come
    # ordered by pair, then id): the label, or the resolution that came after it.
    newest = {(verdict.pair_id, verdict.annotator_id): verdict for verdict in rows}
    counts: dict[int, dict[str, int]] = defaultdict(lambda: {c.value: 0 for c in Choice})
    for verdict in newest.values():
        counts[verdict.annotator_id][verdict.choice.value] += 1
    result = [AnnotatorCounts(aid, name, bool(pseudo), sum(counts[aid].values()), dict(counts[aid]),
                              seconds.get(aid, 0.0))
              for aid, name, pseudo in annotators]
    return sorted(result, key=lambda c: (c.is_pseudo, c.name.lower()))


def _agreement(rows, include_pseudo: bool) -> AgreementReport:
    units: dict[int, dict[str, Choice]] = defaultdict(dict)
    for verdict in rows:
        if verdict.choice == Choice.SKIP or verdict.is_resolution:
            continue
        if verdict.is_pseudo and not include_pseudo:
            continue
        units[verdict.pair_id][verdict.annotator_name] = verdict.choice
    rated = [u for u in units.values() if len(u) >= 2]
    return AgreementReport(
        n_pairs=len(rated),
        n_annotators=len({name for unit in rated for name in unit}),
        percent_agreement=percent_agreement(rated),
        fleiss_kappa=fleiss_kappa(rated),
        krippendorff_alpha=krippendorff_alpha_nominal(rated),
        cohen_kappa=pairwise_cohen_kappa(rated))


def _blind_pairs(session) -> set[int]:
    return set(session.scalars(select(Pair.id).where(Pair.comparison_id.is_not(None))))


def _disagreements(rows, include_resolved: bool, blind: set[int]) -> list[Disagreement]:
    labels: dict[int, dict[str, Choice]] = defaultdict(dict)
    resolutions: dict[int, Choice] = {}
    for verdict in rows:
        if verdict.is_resolution:
            resolutions[verdict.pair_id] = verdict.choice  # ordered by id: the newest wins
        elif verdict.choice != Choice.SKIP:
            labels[verdict.pair_id][verdict.annotator_name] = verdict.choice
    result = []
    for pair_id in sorted(labels):
        if len(set(labels[pair_id].values())) < 2 or pair_id in blind:
            continue
        if pair_id in resolutions and not include_resolved:
            continue
        result.append(Disagreement(pair_id, labels[pair_id], resolutions.get(pair_id)))
    return result


def may_resolve(owners: tuple[str, ...] | list[str], name: str | None) -> bool:
    """The owner rule: with owners named only they may resolve; with none named, anyone may."""
    return not owners or (name or "").strip() in owners


def resolve(ws: Workspace, pair_id: int, owner_name: str, choice: Choice | str, note: str = "") -> int:
    """Record the owner's final say on a pair (overrides the merge policy); returns the verdict id.

    Raises ``NotAnOwnerError`` when the workspace names owners and ``owner_name`` is not one
    (on PostgreSQL: when this connection is a member's role that is not an owner's), and
    ``BlindPairError`` on a blind A/B pair (judged only in its comparison).
    """
    with ws.writing() as session:
        refuse_blind_pair(session, pair_id)
        actor = acting(session, owner_name)
        if actor.role != Role.OWNER:
            raise NotAnOwnerError(f"{owner_name.strip()!r} cannot resolve pair {pair_id}: only the workspace's "
                                  f"owners ({', '.join(owner_names(session))}) resolve disputes")
        owner_id = get_or_create_annotator(session, owner_name)
        return add_verdict(session, pair_id, owner_id, choice, note=note, is_resolution=True)
