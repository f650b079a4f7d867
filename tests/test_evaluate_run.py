"""Evaluating a real tiny run per checkpoint (core.operations.evaluate): rows, KL, cache, demo share."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.operations.evaluate import (
    EVALUATION_FILE,
    EvaluateError,
    EvaluateOptions,
    EvaluationCancelled,
    cached_evaluation,
    evaluate_runs,
    run_folder,
)
from storage.runs import get_run
from storage.workspace import Workspace
from tests.tiny_models import fill_workspace, make_tiny_model_dir

OPTIONS = EvaluateOptions(prompts=4, samples_per_prompt=2, max_new_tokens=8)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A workspace with one 8-step run of the tiny model (checkpoints at steps 4 and 8)."""
    from core.engine.trainer import train
    from core.engine.training_config import TrainingConfig

    root = tmp_path_factory.mktemp("evaluate_run")
    model_dir = make_tiny_model_dir(root / "model")
    ws = Workspace.open(str(root / "ws"))
    fill_workspace(ws, 32)
    config = TrainingConfig(base_model=str(model_dir), max_steps=8, batch_size=8, learning_rate=5e-3,
                            eval_split="0.25", eval_interval=4, checkpoint_interval=4, keep_checkpoints=0,
                            seed=1, beta=0.2, run_name="tiny-beta-0.2")
    run_id = train(ws, config)
    yield ws, run_id
    ws.close()


def test_unknown_run_is_refused(workspace):
    with pytest.raises(EvaluateError, match="no run 'nope'"):
        evaluate_runs(workspace, ["nope"], OPTIONS)
    assert cached_evaluation(workspace, "nope") is None


@pytest.mark.slow
def test_each_checkpoint_gets_a_row_and_the_cache_is_reused(trained):
    ws, run_id = trained
    folder = run_folder(ws, get_run(ws, run_id))
    (folder / EVALUATION_FILE).unlink(missing_ok=True)
    events = []
    [evaluation] = evaluate_runs(ws, [run_id], OPTIONS, progress=events.append)
    assert evaluation.run_name == "tiny-beta-0.2" and evaluation.beta == 0.2
    assert [r.label for r in evaluation.rows] == ["base", "step-4", "final"]
    assert [r.step for r in evaluation.rows] == [0, 4, 8]
    assert (evaluation.computed, evaluation.reused) == (3, 0)
    held_out = evaluation.rows[0].pairs
    assert 0 < held_out < 32                                    # the eval split's pairs only
    for row in evaluation.rows:
        assert row.pairs == held_out and 0.0 <= row.accuracy <= 1.0
        # KL prompts: the held-out pairs' prompts (at most 4), two replies each.
        assert row.kl_samples == 2 * min(4, held_out) and row.helpful_share is None  # not the demo domain
    base, _, final = evaluation.rows
    assert (base.kl, base.kl_stderr) == (0.0, 0.0)              # the base against itself
    assert base.margin == 0.0 and base.accuracy == 0.0          # policy == reference: every reward 0
    assert final.kl != 0.0 and final.kl_stderr > 0.0
    assert final.margin > 0.0                                   # training moved the held-out margins
    assert {e.checkpoint for e in events} == {"base", "step-4", "final"}
    assert {e.count for e in events} == {3} and max(e.index for e in events) == 3
    assert json.loads((folder / EVALUATION_FILE).read_text())["rows"].keys() == {"base", "step-4", "final"}

    [again] = evaluate_runs(ws, [run_id], OPTIONS, progress=events.append)
    assert (again.computed, again.reused) == (0, 3)
    assert again.rows == evaluation.rows
    assert cached_evaluation(ws, run_id).rows == evaluation.rows

    # Other options measure again; a row stays valid only for what it was measured with.
    [longer] = evaluate_runs(ws, [run_id], EvaluateOptions(prompts=4, samples_per_prompt=1, max_new_tokens=8,
                                                           include_base=False, all_checkpoints=False))
    assert [r.label for r in longer.rows] == ["final"] and longer.computed == 1
    assert longer.rows[0].kl_samples == min(4, held_out)


@pytest.mark.slow
def test_cancel_keeps_the_rows_done_and_the_demo_share_is_measured(trained):
    from storage.settings import update_settings

    ws, run_id = trained
    folder = run_folder(ws, get_run(ws, run_id))
    (folder / EVALUATION_FILE).unlink(missing_ok=True)
    seen = set()

    def stop_after_base() -> bool:
        return len(seen) > 1

    with pytest.raises(EvaluationCancelled):
        evaluate_runs(ws, [run_id], OPTIONS, progress=lambda e: seen.add(e.checkpoint), should_stop=stop_after_base)
    assert list(json.loads((folder / EVALUATION_FILE).read_text())["rows"]) == ["base"]

    update_settings(ws, demo={"version": 1})     # the demo domain: the helpful share is measured too
    try:
        [demo] = evaluate_runs(ws, [run_id], EvaluateOptions(prompts=3, samples_per_prompt=1, max_new_tokens=8,
                                                             all_checkpoints=False))
    finally:
        update_settings(ws, demo=None)
    assert [r.label for r in demo.rows] == ["base", "final"]
    assert all(0.0 <= r.helpful_share <= 1.0 for r in demo.rows)   # the tiny model writes no helpful reply
    assert demo.rows[0].kl == 0.0


def test_a_run_without_adapter_or_checkpoint_is_refused(workspace, tmp_path):
    from core.engine.run_records import create_run
    from core.engine.training_config import TrainingConfig

    create_run(workspace, "r1", TrainingConfig(base_model="bundled:demo_model", run_name="empty"),
               tmp_path / "r1", total_steps=10)
    with pytest.raises(EvaluateError, match="r1 .empty. has no checkpoint or adapter yet"):
        evaluate_runs(workspace, ["r1"], OPTIONS)
    assert cached_evaluation(workspace, "r1") is None
    assert not Path(tmp_path / "r1" / EVALUATION_FILE).exists()


def test_cli_refuses_bad_input_with_one_line(workspace, capsys):
    from main import main

    assert main(["evaluate-run", str(workspace.root), "nope", "--quiet"]) == 2
    assert capsys.readouterr().err.strip() == f"error: no run 'nope' in {workspace.display_location} " \
                                              "(see `python main.py runs`)"
    assert main(["evaluate-run", str(workspace.root), "nope", "--prompts", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: --prompts must be at least 1"


@pytest.mark.slow
def test_cli_prints_the_table_from_the_cache(trained, capsys):
    from main import main

    ws, run_id = trained
    argv = ["evaluate-run", str(ws.root), run_id, "--prompts", "4", "--samples", "2", "--max-new-tokens", "8"]
    assert main(argv + ["--quiet"]) == 0
    first = capsys.readouterr().out
    assert f"run {run_id} (tiny-beta-0.2, β 0.2)" in first
    assert [line.split()[0] for line in first.splitlines()[2:]] == ["base", "step-4", "final"]
    assert main(argv + ["--json"]) == 0
    [data] = json.loads(capsys.readouterr().out)
    assert data["computed"] == 0 and data["reused"] == 3     # the second call reads the cache
    assert data["rows"][0]["kl"] == 0.0


def test_a_running_runs_leftover_adapter_is_not_its_final(workspace, tmp_path):
    """A resumed run still has the adapter folder of its stop: not the weights of its current step."""
    from core.engine.run_records import create_run
    from core.engine.training_config import TrainingConfig
    from storage.models import RunStatus
    from storage.runs import update_run

    create_run(workspace, "r2", TrainingConfig(base_model="bundled:demo_model", run_name="resumed"),
               tmp_path / "r2", total_steps=10)
    (tmp_path / "r2" / "adapter").mkdir(parents=True)
    (tmp_path / "r2" / "adapter" / "adapter_model.safetensors").write_bytes(b"")
    update_run(workspace, "r2", step=7, adapter_path=str(tmp_path / "r2" / "adapter"))
    with pytest.raises(EvaluateError, match="no checkpoint or adapter yet .status running"):
        evaluate_runs(workspace, ["r2"], OPTIONS)
    update_run(workspace, "r2", status=RunStatus.STOPPED)
    from core.operations.evaluate import checkpoint_targets

    targets = checkpoint_targets(workspace, get_run(workspace, "r2"), OPTIONS)
    assert [(t.label, t.step) for t in targets] == [("base", 0), ("final", 7)]
