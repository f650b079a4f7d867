"""Deleting a run (core.operations.runs.delete_run over storage.run_deletion): its rows and its
folder go, the verdicts it trained on stay; refused, with what to do, while it trains or while a
later round, a comparison, a generation or the queue order depends on it; ``main.py runs --delete``."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core.operations.pair_scores import set_queue_order
from core.operations.runs import RunInUseError, delete_run, list_runs
from storage.annotation_queue import AnnotationQueue
from storage.comparisons import ModelSide, add_generation
from storage.members import RoleError
from storage.models import Comparison, Metric, PairScore, RunStatus, RunVerdict, TrainingRun, Verdict
from storage.pair_scores import store_pair_scores
from storage.runs import create_run, update_run
from storage.settings import update_settings
from storage.workspace import Workspace
from tests.annotate_samples import add_sample_pairs

# Every test here runs on SQLite and on PostgreSQL (tests/backends.py).
pytestmark = pytest.mark.both_backends


def _run(ws: Workspace, run_id: str, status: RunStatus = RunStatus.COMPLETED, parent: str | None = None) -> None:
    folder = ws.runs_dir / run_id
    (folder / "adapter").mkdir(parents=True, exist_ok=True)
    (folder / "adapter" / "adapter_config.json").write_text("{}")
    create_run(ws, run_id, name=f"round {run_id}", config_json="{}", base_model="bundled:demo_model",
               run_dir=str(folder), total_steps=10)
    update_run(ws, run_id, status=status, parent_run_id=parent)


def _count(ws: Workspace, table, run_id: str) -> int:
    with ws.session() as s:
        return s.scalar(select(func.count()).select_from(table).where(table.run_id == run_id))


@pytest.fixture
def runs(workspace: Workspace) -> Workspace:
    """r1 (metrics, pair scores, trained verdicts, a folder) and r2 started from it; r3 compared
    blind, r4 generated candidates, r5 ranks the queue, r6 trains now."""
    pair_ids = add_sample_pairs(workspace, 3)
    queue = AnnotationQueue(workspace, "ada")
    verdict_ids = [queue.record(pair_id, "a") for pair_id in pair_ids]
    _run(workspace, "r1")
    _run(workspace, "r2", parent="r1")
    for run_id in ("r3", "r4", "r5"):
        _run(workspace, run_id)
    _run(workspace, "r6", status=RunStatus.RUNNING)          # owned by this (live) process
    store_pair_scores(workspace, "r1", {pair_id: 0.5 for pair_id in pair_ids})
    store_pair_scores(workspace, "r5", {pair_ids[0]: 0.1})
    with workspace.writing() as s:
        s.add_all([Metric(run_id="r1", step=step, split="train", name="loss", value=0.69) for step in range(4)])
        s.add_all([RunVerdict(run_id="r1", verdict_id=vid) for vid in verdict_ids])
        s.add(Comparison(name="r3 vs base", run_a=None, run_b="r3", settings_json="{}"))
        add_generation(s, ModelSide("bundled:demo_model", "r4", "round r4"), {"seed": 1})
    set_queue_order(workspace, "uncertain", "r5")
    return workspace


def test_a_run_is_deleted_with_its_rows_and_folder(runs: Workspace) -> None:
    with pytest.raises(RunInUseError, match=r"run 'r1' cannot be deleted: run r2 started from it"):
        delete_run(runs, "r1")
    assert delete_run(runs, "r2").changes.runs
    deleted = delete_run(runs, "r1")
    assert (deleted.metrics, deleted.pair_scores, deleted.folder_problem) == (4, 3, None)
    assert deleted.folders == (str(runs.runs_dir / "r1"),) and not (runs.runs_dir / "r1").exists()
    assert deleted.describe().startswith("Deleted run round r1 (r1): 4 metric values, 3 pair scores, folder ")
    for table in (Metric, PairScore, RunVerdict):
        assert _count(runs, table, "r1") == 0
    with runs.session() as s:
        assert s.get(TrainingRun, "r1") is None
        assert s.scalar(select(func.count()).select_from(Verdict)) == 3     # the verdicts themselves stay
    assert [run.id for run in list_runs(runs)] == ["r3", "r4", "r5", "r6"]
    with pytest.raises(LookupError, match="no run 'r1' in this workspace"):
        delete_run(runs, "r1")


def test_deleting_is_refused_while_something_depends_on_the_run(runs: Workspace) -> None:
    refusals = {"r3": r"the blind A/B comparison 'r3 vs base' \(#\d+\) compares it",
                "r4": r"its adapter generated candidates \(1 generation",
                "r5": r"the queue order ranks the pairs by its scores \(choose another order in the Team tab\)",
                "r6": r"run 'r6' cannot be deleted while it is running: stop it first"}
    for run_id, reason in refusals.items():
        with pytest.raises(RunInUseError, match=reason):
            delete_run(runs, run_id)
        assert (runs.runs_dir / run_id).is_dir() and _count(runs, PairScore, "r5") == 1
    set_queue_order(runs, "default")
    assert delete_run(runs, "r5").pair_scores == 1
    update_settings(runs, owners=["olga"])
    with pytest.raises(RoleError, match="may not delete runs"):
        delete_run(runs, "r1", actor="ben")


def test_main_runs_delete(tmp_path, capsys) -> None:
    from main import main

    with Workspace.open(tmp_path / "ws") as ws:
        _run(ws, "r1")
        _run(ws, "r2", parent="r1")
    assert main(["runs", str(tmp_path / "ws"), "--delete", "r1"]) == 2
    assert capsys.readouterr().err.strip() == ("error: run 'r1' cannot be deleted: run r2 started from it "
                                               "(a later round)")
    assert main(["runs", str(tmp_path / "ws"), "--delete", "r2"]) == 0
    assert capsys.readouterr().out.startswith("Deleted run round r2 (r2): 0 metric values, 0 pair scores, folder ")
    assert main(["runs", str(tmp_path / "ws"), "--delete", "r2"]) == 2
    assert "error: no run 'r2' in this workspace" in capsys.readouterr().err
    assert not (tmp_path / "ws" / "runs" / "r2").exists() and (tmp_path / "ws" / "runs" / "r1").is_dir()
