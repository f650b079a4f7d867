"""Opening a v1 or v2 workspace upgrades it in place to exactly the schema a new workspace gets."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from sqlalchemy import create_engine, inspect, select, text

from storage.annotation_queue import AnnotationQueue
from storage.ingest import ImportRecord, import_records, response_hash, prompt_hash
from storage.migrations import MIGRATIONS, SCHEMA_VERSION
from storage.models import Pair, RunStatus, Verdict
from storage.runs import get_run, list_runs, update_run
from storage.splits import display_swapped_for, split_for
from storage.training_set import build_training_set
from storage.workspace import Workspace

SCHEMA_V1 = Path(__file__).resolve().parents[1] / "storage" / "schema_v1.sql"
NOW = "2024-05-01 12:00:00.000000"


def make_v1_workspace(root: Path) -> Path:
    """A genuine v1 workspace: the frozen v1 DDL plus rows as v1 wrote them."""
    root.mkdir(parents=True)
    (root / "runs").mkdir()
    (root / "exports").mkdir()
    with sqlite3.connect(root / "studio.db") as conn:
        conn.executescript(SCHEMA_V1.read_text())
        conn.executemany("INSERT INTO annotators VALUES (?, ?, ?, ?)",
                         [(1, "alice", 0, NOW), (2, "bob", 0, NOW), (3, "old.jsonl", 1, NOW)])
        conn.execute("INSERT INTO prompts VALUES (1, 'Capital of France?', NULL, ?, ?)",
                     (prompt_hash("Capital of France?"), NOW))
        for rid, reply in [(1, "Paris"), (2, "Lyon"), (3, "Marseille")]:
            conn.execute("INSERT INTO responses VALUES (?, 1, ?, NULL, 'imported', NULL, NULL, ?, ?)",
                         (rid, reply, response_hash(reply), NOW))
        conn.executemany("INSERT INTO pairs VALUES (?, 1, ?, ?, 'old.jsonl', ?)",
                         [(1, 1, 2, NOW), (2, 1, 3, NOW), (3, 2, 3, NOW)])
        conn.executemany("INSERT INTO verdicts VALUES (?, ?, ?, ?, 1.5, ?)", [
            (1, 1, 3, "a", NOW),      # pseudo-annotator: Paris over Lyon
            (2, 1, 1, "a", NOW),      # alice agrees
            (3, 2, 1, "skip", NOW),   # alice skipped pair 2: not a judgement
            (4, 2, 2, "b", NOW),      # bob: Marseille over Paris
        ])
    return root


def _schema(ws: Workspace) -> dict[str, tuple]:
    inspector = inspect(ws.engine)
    tables = {}
    for table in sorted(inspector.get_table_names()):
        columns = sorted((c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table))
        indexes = sorted((i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in inspector.get_indexes(table))
        uniques = sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(table))
        foreign = sorted((tuple(f["constrained_columns"]), f["referred_table"]) for f in inspector.get_foreign_keys(table))
        tables[table] = (columns, indexes, uniques, foreign)
    return tables


def test_v1_workspace_is_upgraded_to_the_same_schema_as_a_fresh_one(tmp_path: Path) -> None:
    with Workspace.open(make_v1_workspace(tmp_path / "old")) as old, Workspace.open(tmp_path / "new") as new:
        assert old.upgraded_from == 1 and new.upgraded_from == SCHEMA_VERSION
        assert _schema(old) == _schema(new)
        with old.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT version FROM schema_version").scalar() == SCHEMA_VERSION


def test_upgrade_keeps_rows_and_fills_the_new_columns(tmp_path: Path) -> None:
    with Workspace.open(make_v1_workspace(tmp_path / "old")) as ws:
        with ws.session() as s:
            pairs = {p.id: p for p in s.scalars(select(Pair))}
            # judged_count: pair 1 by the pseudo-annotator and alice, pair 2 by bob (alice skipped).
            assert {pid: p.judged_count for pid, p in pairs.items()} == {1: 2, 2: 1, 3: 0}
            for pair in pairs.values():
                low, high = sorted((pair.response_a.hash, pair.response_b.hash))
                assert pair.split == split_for(pair.prompt.hash, low, high)
                assert pair.display_swapped == display_swapped_for(pair.prompt.hash, low, high)
            verdicts = s.scalars(select(Verdict)).all()
            assert len(verdicts) == 4 and all(v.retracted_at is None and v.note == "" for v in verdicts)
            assert not any(v.is_resolution for v in verdicts)


def test_upgraded_workspace_works_with_queue_training_set_and_import(tmp_path: Path) -> None:
    with Workspace.open(make_v1_workspace(tmp_path / "old")) as ws:
        queue = AnnotationQueue(ws, "alice", overlap=2)
        served = queue.next_pair()
        assert served is not None and served.pair_id == 3  # 1 is full, she skipped 2
        training = build_training_set(ws, "majority")
        assert [(e.pair_id, e.chosen, e.rejected) for e in training.examples] == [
            (1, "Paris", "Lyon"), (2, "Marseille", "Paris")]
        # The same texts re-imported are recognised as the v1 rows (same hashes).
        again = import_records(ws, [ImportRecord("Capital of France?", ["Paris", "Lyon"])], "old.jsonl")
        assert again.pairs_added == 0 and again.duplicates == 1


def test_opening_twice_runs_the_migration_once(tmp_path: Path) -> None:
    root = make_v1_workspace(tmp_path / "old")
    Workspace.open(root).close()
    with Workspace.open(root) as ws:
        assert ws.upgraded_from == SCHEMA_VERSION


def make_v2_workspace(root: Path) -> Path:
    """A genuine v2 workspace: the v1 one upgraded by the v1 -> v2 step alone, plus runs as
    v2 wrote them (no owner columns) in each status."""
    make_v1_workspace(root)
    engine = create_engine(f"sqlite:///{root / 'studio.db'}")
    with engine.begin() as conn:
        MIGRATIONS[1](conn)
        conn.execute(text("UPDATE schema_version SET version = 2"))
        for run_id, status in [("r-running", "running"), ("r-paused", "paused"), ("r-done", "completed"),
                               ("r-stopped", "stopped")]:
            conn.execute(text(
                "INSERT INTO runs (id, name, status, config_json, base_model, run_dir, step, total_steps, "
                "created_at) VALUES (:id, :id, :status, '{}', 'bundled:demo_model', '/tmp/x', 3, 10, :now)"),
                {"id": run_id, "status": status, "now": NOW})
    engine.dispose()
    return root


def test_v2_workspace_is_upgraded_to_the_same_schema_as_a_fresh_one(tmp_path: Path) -> None:
    with Workspace.open(make_v2_workspace(tmp_path / "old")) as old, Workspace.open(tmp_path / "new") as new:
        assert old.upgraded_from == 2
        assert _schema(old) == _schema(new)
        with old.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT version FROM schema_version").scalar() == SCHEMA_VERSION


def test_v2_runs_left_running_become_interrupted_and_resumable(tmp_path: Path) -> None:
    with Workspace.open(make_v2_workspace(tmp_path / "old")) as ws:
        runs = {r.id: r for r in list_runs(ws)}
        assert {rid: r.status for rid, r in runs.items()} == {
            "r-running": RunStatus.INTERRUPTED, "r-paused": RunStatus.INTERRUPTED,
            "r-done": RunStatus.COMPLETED, "r-stopped": RunStatus.STOPPED}
        assert all(r.owner is None and r.step == 3 for r in runs.values())
        assert runs["r-running"].resumable and not runs["r-done"].resumable
        # The upgraded table takes owners like a new one.
        update_run(ws, "r-running", status=RunStatus.RUNNING)
        assert get_run(ws, "r-running").owner.pid == os.getpid()
