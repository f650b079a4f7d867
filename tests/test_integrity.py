"""storage.integrity and ``main.py check``: a recount finds wrong judged counts and --fix
repairs them; rows pointing at missing ones are reported, never deleted. On both backends."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from main import main
from storage.annotation_queue import AnnotationQueue
from storage.ingest import ImportRecord, import_records
from storage.integrity import check_workspace
from storage.models import Choice, Pair, Verdict
from storage.workspace import Workspace

pytestmark = pytest.mark.both_backends


def _labelled(ws: Workspace) -> list[int]:
    pair_ids = import_records(ws, [ImportRecord(f"p {i}", [f"a {i}", f"b {i}"]) for i in range(5)], "c").pair_ids
    ann, ben = AnnotationQueue(ws, "ann"), AnnotationQueue(ws, "ben")
    ann.record(pair_ids[0], Choice.A)
    ben.record(pair_ids[0], Choice.B)
    ann.record(pair_ids[1], Choice.SKIP)
    ben.record(pair_ids[2], Choice.TIE)
    ben.undo_last()
    return pair_ids


def test_a_clean_workspace_checks_clean_and_check_exits_0(workspace: Workspace, capsys) -> None:
    _labelled(workspace)
    report = check_workspace(workspace)
    assert report.clean and report.pairs_checked == 5 and report.verdicts_checked == 4
    assert main(["check", workspace.location]) == 0
    assert "no problems found" in capsys.readouterr().out


def test_wrong_counts_are_found_exit_1_and_fix_repairs_them(workspace: Workspace, capsys) -> None:
    pair_ids = _labelled(workspace)
    with workspace.session() as s:
        s.execute(update(Pair).where(Pair.id.in_(pair_ids[:3])).values(judged_count=1))
    assert main(["check", workspace.location, "--json"]) == 1
    found = json.loads(capsys.readouterr().out)
    assert [(p["kind"], p["count"]) for p in found["problems"]] == [("judged_count", 3)]
    assert found["problems"][0]["examples"] == [{"pair": pair_ids[0], "stored": 1, "recount": 2},   # two people
                                                {"pair": pair_ids[1], "stored": 1, "recount": 0},   # a skip
                                                {"pair": pair_ids[2], "stored": 1, "recount": 0}]   # undone
    assert main(["check", workspace.location, "--fix"]) == 0
    assert "repaired: 3 pairs recounted" in capsys.readouterr().out
    with workspace.session() as s:
        assert dict(s.execute(select(Pair.id, Pair.judged_count)).all()) == {
            pair_ids[0]: 2, pair_ids[1]: 0, pair_ids[2]: 0, pair_ids[3]: 0, pair_ids[4]: 0}


def test_a_workspace_that_cannot_be_opened_exits_2(tmp_path: Path, capsys) -> None:
    assert main(["check", str(tmp_path / "nothing-here")]) == 2
    assert "is not a DPO Studio workspace" in capsys.readouterr().err


def test_rows_pointing_at_missing_ones_are_reported_not_deleted(workspace: Workspace, backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("PostgreSQL always enforces foreign keys: such rows cannot be written there")
    pair_ids = _labelled(workspace)
    with sqlite3.connect(workspace.root / "studio.db") as conn:   # a tool that left foreign keys off
        conn.execute("DELETE FROM annotators WHERE name = 'ben'")
        conn.execute("DELETE FROM responses WHERE id = (SELECT response_b_id FROM pairs WHERE id = ?)",
                     (pair_ids[4],))
    report = check_workspace(workspace, fix=True)
    found = {p.description: p.count for p in report.problems}
    assert found["verdicts of an annotator who does not exist"] == 2
    assert found["pairs whose response b does not exist"] == 1
    with workspace.session() as s:
        assert s.scalar(select(func.count()).select_from(Verdict)) == 4
