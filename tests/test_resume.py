"""A run that crashes after a checkpoint and is resumed ends exactly where an uninterrupted
run with the same seed ends (CPU training is deterministic under a seed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.metrics import read_metrics
from storage.runs import get_run
from core.engine.trainer import TrainingFailed, TrainingObserver, train
from core.engine.training_config import TrainingConfig
from storage.models import RunStatus
from tests.tiny_models import fill_workspace, make_tiny_model_dir


class Crash(RuntimeError):
    pass


class CrashAtStep(TrainingObserver):
    """Dies like a killed process would: mid-run, after the step-3 checkpoint, before step 5's."""

    def __init__(self, step: int):
        self.step = step

    def on_step(self, step, metrics):
        if step == self.step:
            raise Crash(f"simulated crash at step {step}")


@pytest.mark.slow
def test_resumed_run_matches_uninterrupted_run(workspace, tmp_path) -> None:
    model_dir = make_tiny_model_dir(tmp_path / "model")
    fill_workspace(workspace, 40)
    # Dropout on and gradient accumulation across epochs: RNG state and data order must both be restored.
    settings = TrainingConfig(base_model=str(model_dir), max_steps=7, batch_size=6, gradient_accumulation_steps=2,
                              learning_rate=3e-3, lora_dropout=0.1, eval_split="0.2", eval_interval=2,
                              checkpoint_interval=3, lr_schedule="cosine", warmup_steps=2, sft_weight=0.5, seed=5)

    reference_id = train(workspace, settings)

    with pytest.raises(TrainingFailed, match="simulated crash at step 5") as failure:
        train(workspace, settings, CrashAtStep(5))
    crashed_id = failure.value.run_id
    crashed = get_run(workspace, crashed_id)
    assert crashed.status == RunStatus.FAILED
    assert max(step for step, _ in read_metrics(workspace, crashed_id, "train")["loss"]) == 5

    assert train(workspace, None, resume_run_id=crashed_id) == crashed_id
    resumed = get_run(workspace, crashed_id)
    assert resumed.status == RunStatus.COMPLETED and resumed.step == 7 and resumed.error is None

    for split in ("train", "eval"):
        expected = read_metrics(workspace, reference_id, split)
        got = read_metrics(workspace, crashed_id, split)
        assert set(got) == set(expected)
        for name, series in expected.items():
            if name == "tokens_per_second":
                continue
            assert [s for s, _ in got[name]] == [s for s, _ in series], (split, name)
            for (step, value), (_, want) in zip(got[name], series):
                assert value == pytest.approx(want, rel=1e-4, abs=1e-6), (split, name, step)
    assert Path(resumed.adapter_path).exists()


def test_completed_run_cannot_be_resumed(workspace, tmp_path) -> None:
    model_dir = make_tiny_model_dir(tmp_path / "model")
    fill_workspace(workspace, 8)
    run_id = train(workspace, TrainingConfig(base_model=str(model_dir), max_steps=1, eval_split="none"))
    with pytest.raises(TrainingFailed, match="already completed"):
        train(workspace, None, resume_run_id=run_id)
    with pytest.raises(TrainingFailed, match="no run 'nope'"):
        train(workspace, None, resume_run_id="nope")


KILLED_TRAINER = """
import sys, time
from core.engine.trainer import TrainingObserver, train
from core.engine.training_config import TrainingConfig
from storage.workspace import Workspace

class Report(TrainingObserver):
    def on_step(self, step, metrics):
        print("step", step, flush=True)
        if step >= 3:
            time.sleep(0.3)   # slow enough to be killed mid-run

with Workspace.open(sys.argv[1]) as ws:
    train(ws, TrainingConfig(base_model=sys.argv[2], max_steps=60, batch_size=4, eval_split="none",
                             checkpoint_interval=1, seed=3), Report())
"""


@pytest.mark.slow
def test_a_killed_training_process_leaves_an_interrupted_run_that_resumes(workspace, tmp_path) -> None:
    import subprocess
    import sys

    from storage.process_owner import this_host
    from storage.runs import list_runs

    model_dir = make_tiny_model_dir(tmp_path / "model")
    fill_workspace(workspace, 16)
    child = subprocess.Popen([sys.executable, "-c", KILLED_TRAINER, str(workspace.root), str(model_dir)],
                             cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE, text=True)
    try:
        for line in child.stdout:
            if line.strip() == "step 3":
                break
        [running] = list_runs(workspace)
        assert running.status == RunStatus.RUNNING
        assert running.owner.pid == child.pid and running.owner.host == this_host()
        child.kill()   # no chance to record anything
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
        child.stdout.close()

    [run] = list_runs(workspace)
    assert run.status == RunStatus.INTERRUPTED and run.resumable and run.step < 60   # metrics flush every 0.5 s
    assert train(workspace, None, resume_run_id=run.id) == run.id
    resumed = get_run(workspace, run.id)
    assert resumed.status == RunStatus.COMPLETED and resumed.step == 60 and resumed.error is None
    loss_steps = [step for step, _ in read_metrics(workspace, run.id, "train")["loss"]]
    assert loss_steps == list(range(1, 61))
