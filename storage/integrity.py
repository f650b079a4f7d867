"""A workspace's integrity check (``python main.py check WS``): what a recount or a join finds
wrong, and the repairs that lose nothing.

Found:
- ``judged_count``: a pair whose stored count differs from a recount of its current verdicts
  (repaired: recounted under the pair's row lock, as every verdict write does);
- ``current_verdicts``: more than one current verdict of one annotator on one pair (labels and
  resolutions counted apart) — the current one must be a single newest row;
- ``missing_rows``: verdicts of a pair or annotator that is gone, pairs of a prompt or response
  that is gone (or of responses to another prompt), responses of a prompt that is gone,
  metrics of a run that is gone (a SQLite file written without foreign keys can hold them);
- ``pair_order``: a pair whose responses are not stored low id first (the same two responses
  could then make two pairs);
- ``id_sequence`` (PostgreSQL): a table's id sequence behind its largest id, so the next insert
  would fail on a duplicate key (rows written with explicit ids; repaired with ``setval``);
- ``sqlite_integrity`` (SQLite): what SQLite's full ``PRAGMA integrity_check`` finds (pages,
  free lists, every index against its table), read-only. A ``studio.db`` too damaged to open
  gets only this check (``damaged_file_findings``); the remedy is a backup (``main.py restore``).

Missing rows and bad pairs are reported, never deleted: what to do with them is a person's call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, aliased

from storage.models import Annotator, Choice, Metric, Pair, Prompt, Response, TrainingRun, Verdict
from storage.sqlite_file import integrity_findings, unlocked_read_is_safe
from storage.sqlite_store import DB_NAME
from storage.verdicts import current_verdicts_select, refresh_judged_counts
from storage.workspace import Workspace

EXAMPLES = 10   # ids shown per problem


@dataclass(frozen=True)
class Problem:
    kind: str
    count: int
    description: str
    examples: list = field(default_factory=list)
    repairable: bool = False

    def to_dict(self) -> dict:
        return {"kind": self.kind, "count": self.count, "description": self.description,
                "examples": list(self.examples), "repairable": self.repairable}


@dataclass(frozen=True)
class IntegrityReport:
    location: str
    pairs_checked: int
    verdicts_checked: int
    problems: list[Problem]
    repaired: list[Problem] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {"workspace": self.location, "pairs_checked": self.pairs_checked,
                "verdicts_checked": self.verdicts_checked, "clean": self.clean,
                "problems": [p.to_dict() for p in self.problems],
                "repaired": [p.to_dict() for p in self.repaired]}


def recounted_judged_counts(session: Session) -> dict[int, int]:
    """pair id -> distinct annotators whose current verdict on it is not a skip (pairs with none left out)."""
    current = current_verdicts_select().subquery()
    return dict(session.execute(
        select(current.c.pair_id, func.count(func.distinct(current.c.annotator_id)))
        .where(current.c.choice != Choice.SKIP).group_by(current.c.pair_id)).all())


def _wrong_counts(session: Session) -> list[tuple[int, int, int]]:
    recount = recounted_judged_counts(session)
    return [(pair_id, stored, recount.get(pair_id, 0))
            for pair_id, stored in session.execute(select(Pair.id, Pair.judged_count).order_by(Pair.id))
            if stored != recount.get(pair_id, 0)]


def _orphans(session: Session, child, column, parent, label: str) -> Problem | None:
    """Rows of ``child`` whose ``column`` names no ``parent`` row."""
    ids = session.scalars(select(child.id).outerjoin(parent, parent.id == column)
                          .where(parent.id.is_(None)).order_by(child.id)).all()
    if not ids:
        return None
    return Problem("missing_rows", len(ids), label, ids[:EXAMPLES])


def _missing_rows(session: Session) -> list[Problem]:
    checks = [(Verdict, Verdict.pair_id, Pair, "verdicts of a pair that does not exist"),
              (Verdict, Verdict.annotator_id, Annotator, "verdicts of an annotator who does not exist"),
              (Pair, Pair.prompt_id, Prompt, "pairs of a prompt that does not exist"),
              (Pair, Pair.response_a_id, Response, "pairs whose response a does not exist"),
              (Pair, Pair.response_b_id, Response, "pairs whose response b does not exist"),
              (Response, Response.prompt_id, Prompt, "responses to a prompt that does not exist"),
              (Metric, Metric.run_id, TrainingRun, "metrics of a run that does not exist")]
    found = [_orphans(session, *check) for check in checks]
    a, b = aliased(Response), aliased(Response)
    foreign = session.scalars(
        select(Pair.id).join(a, a.id == Pair.response_a_id).join(b, b.id == Pair.response_b_id)
        .where((a.prompt_id != Pair.prompt_id) | (b.prompt_id != Pair.prompt_id)).order_by(Pair.id)).all()
    if foreign:
        found.append(Problem("missing_rows", len(foreign), "pairs of responses to another prompt",
                             foreign[:EXAMPLES]))
    return [problem for problem in found if problem is not None]


def _duplicate_current(session: Session) -> Problem | None:
    current = current_verdicts_select(per_kind=True).subquery()
    rows = session.execute(
        select(current.c.pair_id, current.c.annotator_id, current.c.is_resolution)
        .group_by(current.c.pair_id, current.c.annotator_id, current.c.is_resolution)
        .having(func.count() > 1).order_by(current.c.pair_id)).all()
    if not rows:
        return None
    return Problem("current_verdicts", len(rows), "annotators with more than one current verdict on a pair",
                   [{"pair": r.pair_id, "annotator": r.annotator_id, "resolution": bool(r.is_resolution)}
                    for r in rows[:EXAMPLES]])


def _misordered_pairs(session: Session) -> Problem | None:
    ids = session.scalars(select(Pair.id).where(Pair.response_a_id >= Pair.response_b_id).order_by(Pair.id)).all()
    if not ids:
        return None
    return Problem("pair_order", len(ids), "pairs whose responses are not stored low id first", ids[:EXAMPLES])


def _sequences_behind(session: Session) -> list[tuple[str, str, int, int]]:
    """PostgreSQL: (table, sequence, its next value, largest id) where the next value is taken."""
    if session.get_bind().dialect.name != "postgresql":
        return []
    behind = []
    for model in (Annotator, Prompt, Response, Pair, Verdict, Metric):
        table = model.__tablename__
        sequence = session.scalar(text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table})
        if sequence is None:
            continue
        largest = session.scalar(select(func.max(model.id))) or 0
        last, called = session.execute(text(f"SELECT last_value, is_called FROM {sequence}")).one()
        next_value = last + 1 if called else last
        if next_value <= largest:
            behind.append((table, sequence, next_value, largest))
    return behind


def _sqlite_integrity(ws: Workspace) -> Problem | None:
    if ws.root is None:
        return None
    db_path = ws.root / DB_NAME
    findings = integrity_findings(db_path, immutable=unlocked_read_is_safe(db_path), limit=100)
    if not findings:
        return None
    return Problem("sqlite_integrity", len(findings), "findings of SQLite's integrity_check", findings[:EXAMPLES])


def damaged_file_findings(folder: str) -> list[str]:
    """SQLite's ``integrity_check`` of a workspace folder's ``studio.db`` that cannot be opened."""
    db_path = Path(folder).expanduser().resolve() / DB_NAME
    if not db_path.is_file():
        return []
    return integrity_findings(db_path, immutable=unlocked_read_is_safe(db_path), limit=100)


def _find(session: Session) -> list[Problem]:
    problems: list[Problem] = []
    wrong = _wrong_counts(session)
    if wrong:
        problems.append(Problem("judged_count", len(wrong), "pairs whose judged_count differs from a recount",
                                [{"pair": p, "stored": s, "recount": r} for p, s, r in wrong[:EXAMPLES]], True))
    duplicate = _duplicate_current(session)
    if duplicate is not None:
        problems.append(duplicate)
    problems.extend(_missing_rows(session))
    misordered = _misordered_pairs(session)
    if misordered is not None:
        problems.append(misordered)
    behind = _sequences_behind(session)
    if behind:
        problems.append(Problem("id_sequence", len(behind), "id sequences behind their table's largest id",
                                [{"table": t, "next": n, "largest": m} for t, _, n, m in behind], True))
    return problems


def check_workspace(ws: Workspace, fix: bool = False) -> IntegrityReport:
    """Every problem found; with ``fix`` the repairable ones (counts, sequences) are repaired in
    one transaction and the report lists them under ``repaired`` and what is left under ``problems``."""
    repaired: list[Problem] = []
    if fix:
        with ws.writing() as session:
            wrong = _wrong_counts(session)
            if wrong:
                refresh_judged_counts(session, [pair_id for pair_id, _, _ in wrong])
                repaired.append(Problem("judged_count", len(wrong), "pairs recounted",
                                        [p for p, _, _ in wrong[:EXAMPLES]], True))
            behind = _sequences_behind(session)
            for table, sequence, _, largest in behind:
                session.execute(text("SELECT setval(:s, :v)"), {"s": sequence, "v": largest})
            if behind:
                repaired.append(Problem("id_sequence", len(behind), "id sequences moved past their largest id",
                                        [t for t, *_ in behind], True))
    with ws.session() as session:
        problems = _find(session)
        pairs = session.scalar(select(func.count()).select_from(Pair))
        verdicts = session.scalar(select(func.count()).select_from(Verdict))
    sqlite_problem = _sqlite_integrity(ws)
    if sqlite_problem is not None:
        problems.append(sqlite_problem)
    return IntegrityReport(ws.display_location, pairs, verdicts, problems, repaired)
